/*
 * The InferenceService kind: its projection in the RCU cache.
 *
 * The spec is kept as one compact JSON string (spec_json) that a reconcile
 * parses when it needs the whole of it (to build the Deployment), plus the
 * few typed fields that hot paths and map functions read. The status the
 * server holds is kept the same way (status_json), so the reconciler can
 * tell whether the status it computes differs before it writes.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"

/* Defaults and bounds of the spec that the CRD (crds/inferenceservice.yaml)
 * also states; the webhook, the builders and the controllers read them from
 * here (unit.admission checks the CRD agrees). */
#define ISVC_DRAIN_TIMEOUT_S_DEFAULT 120
#define ISVC_DRAIN_TIMEOUT_S_MAX 3600
#define ISVC_WARMUP_TIMEOUT_S_DEFAULT 600

enum isvc_framework { ISVC_VLLM, ISVC_TRITON, ISVC_TGI, ISVC_CUSTOM };
enum isvc_sharing { ISVC_EXCLUSIVE, ISVC_TIME_SLICING, ISVC_MPS, ISVC_MIG };

struct isvc {
	struct cache_obj meta;
	const char *spec_json;       /* compact JSON of .spec */
	const char *status_json;     /* compact JSON of .status, or NULL */
	const char *model;           /* spec.model.name */
	int64_t generation;
	int32_t replicas;            /* spec.replicas (scaling off) */
	int32_t min_replicas, max_replicas;
	uint8_t framework;           /* enum isvc_framework */
	uint8_t scaling;             /* spec.scaling present */
	/* The pause annotations (autoscale.h), NULL when absent. */
	const char *paused_replicas; /* kinfer.io/paused-replicas */
	const char *paused;          /* kinfer.io/paused */
	const char *paused_scale_in; /* kinfer.io/paused-scale-in */
	const char *paused_scale_out; /* kinfer.io/paused-scale-out */
};

extern const struct cache_kind kind_inferenceservices;

int isvc_framework_parse(const char *s, enum isvc_framework *ret);
int isvc_sharing_parse(const char *s, enum isvc_sharing *ret);
