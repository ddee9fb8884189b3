/*
 * The autoscaler controller: every spec.scaling.evaluationIntervalSeconds,
 * for each autoscaled InferenceService, read the metrics (metricsource.h),
 * run the decision (autoscale.h) with the history this controller keeps,
 * and publish the decision: desired replicas, the ScalingActive and
 * ScalingLimited conditions, the metrics' values, the last scale time.
 *
 * The decision is not written to the API here. The InferenceService
 * controller reads it (autoscaler_decision) and acts on it like on any
 * other change of the desired count: scale-up by raising the Deployment's
 * replicas, scale-down through the drain, and the status in the same
 * patch as the rest of it, so one writer owns the status. A change of
 * decision enqueues the InferenceService for that controller.
 *
 * State per service (the history of recommendations and scale events, the
 * last scrapes for rates and P99 windows) lives in memory, as the HPA's
 * does; a new leader starts afresh, and because the algorithm records the
 * current count as its first recommendation, it does not scale down before
 * a full stabilization window of its own observations.
 */
#pragma once

#include <stdint.h>

#include "manager.h"
#include "status.h"

struct autoscaler;
struct metrics;

struct autoscaler_options {
	long scrape_timeout_ms;   /* each pod scrape or Prometheus query (2000) */
	struct metrics *metrics;  /* may be NULL */
};

struct autoscaler_decision {
	int32_t desired;
	int64_t generation;       /* of the InferenceService evaluated */
	struct status_scaling status;
};

int autoscaler_new(const struct autoscaler_options *o, struct autoscaler **ret);
void autoscaler_free(struct autoscaler *a);

/* A copy of the last decision for "namespace/name"; -ENOENT if none. */
int autoscaler_decision(struct autoscaler *a, const char *key,
			struct autoscaler_decision *ret_decision);

extern const struct controller_def autoscaler_controller;
