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
/* How long the startup probe kinfer writes lets a model load (the webhook
 * refuses a warm-up longer than that: the kubelet would restart it). */
#define ISVC_STARTUP_WINDOW_S 1800

/* The activator's signal (issue 16): a JSON merge patch of this
 * annotation, an RFC 3339 UTC time with milliseconds, at the first request
 * it holds for a service at zero, every 5 s after while it holds, and once
 * more when a ready pod takes the held requests. */
#define ISVC_ANNOTATION_ACTIVATION_REQUESTED "kinfer.io/activation-requested"

/* spec.scaling.scaleToZero, defaults filled in (scalingspec.h has the
 * field meanings and bounds). */
struct isvc_scale_to_zero {
	bool set;                           /* present (and spec.scaling too) */
	int32_t idle_seconds;               /* idleSeconds (300) */
	int32_t max_pending_requests;       /* maxPendingRequests (100) */
	int32_t activation_timeout_seconds; /* given, else spec.warmup's timeout (600) */
};

enum isvc_framework { ISVC_VLLM, ISVC_TRITON, ISVC_TGI, ISVC_CUSTOM };
enum isvc_sharing { ISVC_EXCLUSIVE, ISVC_TIME_SLICING, ISVC_MPS, ISVC_MIG };

struct isvc {
	struct cache_obj meta;
	const char *spec_json;   /* compact JSON of .spec */
	const char *status_json; /* compact JSON of .status, or NULL */
	const char *model;       /* spec.model.name */
	int64_t generation;
	int32_t replicas; /* spec.replicas (scaling off) */
	int32_t min_replicas, max_replicas;
	uint8_t framework; /* enum isvc_framework */
	uint8_t scaling;   /* spec.scaling present */
	/* The pause annotations (autoscale.h), NULL when absent. */
	const char *paused_replicas;  /* kinfer.io/paused-replicas */
	const char *paused;           /* kinfer.io/paused */
	const char *paused_scale_in;  /* kinfer.io/paused-scale-in */
	const char *paused_scale_out; /* kinfer.io/paused-scale-out */
	struct isvc_scale_to_zero scale_to_zero;
	/* kinfer.io/activation-requested: as written (NULL when absent), and
	 * in ms since the epoch (0 when absent or not a time). */
	const char *activation_requested;
	int64_t activation_requested_ms;
};

/* The service's scale-to-zero settings, NULL when it has none (no
 * spec.scaling.scaleToZero, or no spec.scaling at all). */
const struct isvc_scale_to_zero *isvc_scale_to_zero(const struct isvc *s);

extern const struct cache_kind kind_inferenceservices;

/* spec.replicas (default 1), scaling.minReplicas (default 1) and
 * scaling.maxReplicas (default minReplicas): the projection's and the
 * workload's one reading of them. */
struct isvc_replicas {
	int32_t replicas, min, max;
	bool scaling; /* spec.scaling is an object: min and max apply */
};
void isvc_spec_replicas(json_object *spec, struct isvc_replicas *ret);

int isvc_framework_parse(const char *s, enum isvc_framework *ret);
int isvc_sharing_parse(const char *s, enum isvc_sharing *ret);
