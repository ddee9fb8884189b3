/*
 * admission: the rules for InferenceService that the CRD's schema and CEL
 * cannot say, and the defaults kinfer fills in. Shared by the admission
 * webhook (webhook.c) and the offline `kinfer-operator validate`.
 *
 *   admission_default(obj, &patch)       fill defaults in obj, in place;
 *                                        patch is the JSON Patch (RFC 6902)
 *                                        that does the same to the original
 *   admission_validate(obj, old, report) every violation and warning
 *
 * Messages follow Kubernetes: "spec.resources.gpu.memory: 90Gi exceeds the
 * 80Gi of NVIDIA-H100-80GB-HBM3". Every violation is listed, not only the
 * first. The functions read any JSON without crashing: a field of the
 * wrong type is a violation, never a fault.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#define ADMISSION_MAX_ERRORS 64
#define ADMISSION_MAX_WARNINGS 32
#define ADMISSION_MAX_MESSAGE 512

struct admission_report;

int admission_report_new(struct admission_report **ret);
void admission_report_free(struct admission_report *r);
size_t admission_report_n_errors(const struct admission_report *r);
size_t admission_report_n_warnings(const struct admission_report *r);
const char *admission_report_error(const struct admission_report *r, size_t i);
const char *admission_report_warning(const struct admission_report *r, size_t i);
/* The errors joined with "; ", malloc'ed ("" when none). */
int admission_report_message(const struct admission_report *r, char **ret);

/*
 * Validate an InferenceService (obj) and, on UPDATE, the change from old
 * (NULL on CREATE). Violations and warnings go into report. Returns 0, or
 * -ENOMEM. An UPDATE that leaves spec as it was is checked only for
 * immutable fields, so an object admitted before a rule existed can still
 * get its labels or finalizers changed.
 */
int admission_validate(json_object *obj, json_object *old, struct admission_report *report);
/*
 * The same, and the CRD schema checked offline (schema.h): a field the CRD
 * does not define is a warning naming its path, or with strict an error
 * (`validate --strict`, as kubectl's --validate=strict); a wrong type,
 * enum value or bound is an error.
 */
int admission_validate_strict(json_object *obj, json_object *old, struct admission_report *report,
			      bool strict);

/*
 * Default obj in place and return the JSON Patch array that does the same
 * to the original (empty when nothing was missing). Idempotent: a second
 * call on the result returns an empty patch. An object too broken to
 * default (no spec, unknown framework) is left alone: validation says why.
 */
int admission_default(json_object *obj, json_object **ret_patch);

/*
 * The refusal of an object nested past KUBE_JSON_MAX_DEPTH, naming the
 * field (path): the informers could not read it, so it is never admitted.
 */
void admission_too_deep_message(const char *path, char *buf, size_t len);

/* GPU products kinfer knows: memory in GiB, 0 when unknown. */
int admission_gpu_memory_gib(const char *product);
