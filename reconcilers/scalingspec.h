/*
 * spec.scaling read with the field meanings and bounds of
 * crds/inferenceservice.yaml, onto struct autoscale_spec. One reader for
 * the live autoscaler (autoscale_controller.c) and for `simulate`, so the
 * two cannot drift. Pure: no I/O; errors name the field that is wrong
 * ("spec.scaling.metrics[1].type: unknown metric type \"Foo\"").
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autoscale.h"

#define SCALINGSPEC_DEFAULT_INTERVAL 15 /* evaluationIntervalSeconds */
#define SCALINGSPEC_MAX_REPLICAS 1000   /* the CRD's bound on replica counts */

/* spec.scaling.scaleToZero's defaults and bounds (the CRD's). The
 * activation timeout's default is the service's warm-up timeout. */
#define SCALETOZERO_IDLE_S_DEFAULT 300
#define SCALETOZERO_IDLE_S_MAX 86400
#define SCALETOZERO_MAX_PENDING_DEFAULT 100
#define SCALETOZERO_MAX_PENDING_MAX 10000
#define SCALETOZERO_ACTIVATION_TIMEOUT_S_MAX 3600

/* spec.scaling.scaleToZero (issue 16; the contract with the activator is
 * in README.md "Scale to zero"). */
struct scaletozero {
	bool set;                           /* spec.scaling.scaleToZero present */
	int32_t idle_seconds;               /* idleSeconds (300) */
	int32_t max_pending_requests;       /* maxPendingRequests (100) */
	int32_t activation_timeout_seconds; /* 0: not given (the warm-up timeout) */
};

struct scalingspec {
	struct autoscale_spec spec;
	int32_t interval_seconds;         /* evaluationIntervalSeconds (15) */
	struct scaletozero scale_to_zero; /* scaleToZero */
};

/* spec.scaling.scaleToZero of scaling (NULL or absent: ret->set false),
 * with the defaults filled in; activation_timeout_seconds is left 0 when
 * not given. -EINVAL with err naming the field. */
int scalingspec_scale_to_zero(json_object *scaling, struct scaletozero *ret, char *err,
			      size_t errlen);

/* Map spec.scaling (a JSON object) to ret. -EINVAL with err naming the field. */
int scalingspec_from_json(json_object *scaling, struct scalingspec *ret, char *err, size_t errlen);

/* JSON values as the API server reads them, for other readers of a spec. */
/* A JSON number, integer or not, as a finite double. */
bool scalingspec_json_number(json_object *o, double *ret);
/* A whole number in [min, max]: an integer, or a float with no fraction. */
bool scalingspec_json_whole(json_object *o, int64_t min, int64_t max, int64_t *ret);
/* The value of key, NULL when absent or null. */
json_object *scalingspec_field(json_object *o, const char *key);
/* 1 and *ret when o.key is set, 0 when absent, -EINVAL (err names
 * path.key) when it is not a whole number in [min, max]. */
int scalingspec_get_int(json_object *o, const char *path, const char *key, int64_t min, int64_t max,
			int64_t *ret, char *err, size_t errlen);
