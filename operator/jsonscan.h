/*
 * A JSON scanner that builds nothing: it finds where values start and end
 * in a text, at any nesting depth, with no recursion and no allocation.
 *
 * json-c is the parser: it builds trees, and its tokener refuses what nests
 * deeper than it was told (KUBE_JSON_PARSE_DEPTH). The scanner is what
 * reads around such a value: the name of an object too deep to parse, the
 * items of a LIST page one at a time (so one bad item does not cost the
 * page), the uid of an AdmissionReview to answer, and the path of the field
 * that nests too deep (jsonscan_depth), to name it to the user.
 *
 * Positions are byte offsets into p[0..n); a value's range is [start, end).
 * Errors: -EBADMSG for text that is not JSON, -ENOENT for a member or path
 * that is not there.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The end of the value that starts at p[i] (after whitespace). */
int jsonscan_skip(const char *p, size_t n, size_t i, size_t *ret_end);

/* The value at a dotted path ("metadata.name") inside the object that
 * starts at p[i]; "" is the object itself. */
int jsonscan_path(const char *p, size_t n, size_t i, const char *path, size_t *ret_start,
		  size_t *ret_end);

/* The string at path copied into out (NUL-terminated; \uXXXX outside
 * ASCII and anything longer than len-1 bytes is -E2BIG). */
int jsonscan_string(const char *p, size_t n, size_t i, const char *path, char *out, size_t len);

/* Iterate the array that starts at p[i]: *cursor = i before the first call;
 * each call returns 1 with the next element's range, 0 after the last. */
int jsonscan_next(const char *p, size_t n, size_t *cursor, size_t *ret_start, size_t *ret_end);

/*
 * Is the value at p[i] nested deeper than limit levels (the value itself is
 * level 1 when it is an object or array)? 0 when it is not, 1 when it is,
 * with the path of the first container past the limit written to path
 * ("spec.warmup.body.a.a", "[3].x"), truncated to len. With
 * skip_managed_fields, the object's metadata.managedFields (which the API
 * server writes, mirroring every field a few levels deeper) is not counted.
 */
int jsonscan_depth(const char *p, size_t n, size_t i, unsigned limit, bool skip_managed_fields,
		   char *path, size_t len);
/* The same, and when it returns 0 (within the limit), the end of the value
 * in *ret_end: one pass both checks the depth and finds the value's range.
 * With skip_managed_fields and ret_mf (else NULL), ret_mf[0..1] is the
 * range of metadata.managedFields' value (the first one), from just after
 * its colon, or 0, 0 when the object has none. */
int jsonscan_depth_end(const char *p, size_t n, size_t i, unsigned limit, bool skip_managed_fields,
		       char *path, size_t len, size_t *ret_end, size_t ret_mf[2]);
/* Where the value of member key of the object at p[i] starts, without
 * reading that value (the members before it are skipped). */
int jsonscan_member_start(const char *p, size_t n, size_t i, const char *key, size_t *ret_start);
