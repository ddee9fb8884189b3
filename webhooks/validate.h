/*
 * `kinfer-operator validate -f FILE|DIR|- ...`: the webhook's defaulting
 * and validation, offline. Reads multi-document YAML (or JSON), prints one
 * result per InferenceService with its file and line, and exits 0 when all
 * pass, 1 when any fails, 2 when an input cannot be read or parsed.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

int validate_main(int argc, char **argv, int argi);

/*
 * Check one buffer (a file's contents) named name; results go to out.
 * Returns 0 all passed, 1 some failed, 2 unreadable (malformed YAML).
 * Exposed for the fuzz target and the unit tests.
 */
int validate_buffer(const char *name, const char *buf, size_t len, FILE *out);
/* With strict, a field the CRD does not define is an error, not a warning. */
int validate_buffer_strict(const char *name, const char *buf, size_t len, FILE *out, bool strict);
