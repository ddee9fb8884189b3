/*
 * YAML to json-c: reads a (multi-document) YAML stream with libyaml and
 * hands each document to a callback as a json_object, with the line it
 * starts on. Plain scalars are typed by the YAML 1.2 core schema (null,
 * true/false, integers, floats); quoted scalars are always strings.
 *
 * Limits: nesting depth, node count and alias uses are bounded, so a hostile
 * file (deep nesting, "billion laughs") gets an error, not a crash.
 */
#pragma once

#include <json-c/json.h>
#include <stddef.h>

#define YAMLJSON_MAX_DEPTH 64
#define YAMLJSON_MAX_NODES 1000000
#define YAMLJSON_MAX_ALIASES 1000

/*
 * Called once per document. doc is borrowed (the callee takes a reference
 * with json_object_get to keep it); a NULL doc is an empty document. A
 * negative return stops the parse and is returned by yamljson_parse.
 */
typedef int (*yamljson_doc_fn)(json_object *doc, int line, void *userdata);

/*
 * Returns 0, or a negative errno with a message naming the line in err:
 * -EINVAL for malformed YAML or a limit exceeded, -ENOMEM.
 */
int yamljson_parse(const char *buf, size_t len, yamljson_doc_fn fn, void *userdata, char *err,
		   size_t errlen);

/* Convenience: exactly the first document (NULL if empty); caller puts. */
int yamljson_parse_one(const char *buf, size_t len, json_object **ret_doc, char *err, size_t errlen);

/* Type a plain scalar as the core schema says. Never returns NULL for
 * non-null input unless out of memory; "null" yields NULL with *is_null. */
json_object *yamljson_plain_scalar(const char *s, size_t len, int *is_null);
