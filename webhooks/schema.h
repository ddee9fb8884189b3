/*
 * The InferenceService CRD's OpenAPI schema, checked offline: the very
 * crds/inferenceservice.yaml the cluster gets, embedded into the binary at
 * build time (CMake regenerates it when the file changes), so the webhook,
 * `validate` and the API server cannot drift apart.
 *
 * What it reports, with the field's path:
 *   - a field the schema does not define (the API server prunes it and the
 *     setting silently does nothing; kubectl warns "unknown field"):
 *     SCHEMA_UNKNOWN_FIELD;
 *   - a value of the wrong type, outside an enum, or past a bound
 *     (minimum/maximum, exclusiveMinimum, int32/int64, minLength/maxLength,
 *     minItems/maxItems, maxProperties, pattern): SCHEMA_INVALID.
 * CEL rules (x-kubernetes-validations) stay the API server's. metadata is
 * the API server's ObjectMeta and is not checked here.
 *
 * The schema is read once (thread-safe) into C structs: no json-c object is
 * shared between threads.
 */
#pragma once

#include <json-c/json.h>

enum schema_finding { SCHEMA_UNKNOWN_FIELD, SCHEMA_INVALID };

typedef void (*schema_report_fn)(void *ud, enum schema_finding what, const char *message);

/* Check obj (an InferenceService) against the CRD's v1alpha1 schema;
 * 0, or -ENOMEM, or -EINVAL when the embedded CRD cannot be read. */
int schema_check(json_object *obj, schema_report_fn fn, void *ud);

/* Bounds on what one check reports and how deep it walks. */
#define SCHEMA_MAX_FINDINGS 64
