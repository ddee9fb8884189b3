/*
 * The autoscaler controller: every spec.scaling.evaluationIntervalSeconds,
 * for each autoscaled InferenceService, read the metrics (metricsource.h),
 * run the decision (autoscale.h) with the history this controller keeps,
 * and publish the decision: desired replicas, the ScalingActive and
 * ScalingLimited conditions, the metrics' values, the last scale time.
 *
 * The decision is not written to the API here. The InferenceService
 * controller reads it (autoscale_controller_decision) and acts on it like on any
 * other change of the desired count: scale-up by raising the Deployment's
 * replicas, scale-down through the drain, and the status in the same
 * patch as the rest of it, so one writer owns the status. A change of
 * decision enqueues the InferenceService for that controller, through the
 * handle autoscale_controller_notify gave.
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

struct autoscale_controller_decision {
	int32_t desired;
	int64_t generation; /* of the InferenceService evaluated */
	struct status_scaling status;
};

/*
 * A copy of the last decision for "namespace/name" of the autoscaler row
 * whose handle is autoscaler; -ENOENT if none (or autoscaler is NULL).
 */
int autoscale_controller_decision(struct controller *autoscaler, const char *key,
				  struct autoscale_controller_decision *ret_decision);

/*
 * The row told to look again at a service whose decision changed (the
 * InferenceService controller): set once, while the manager links its
 * rows, before any worker runs.
 */
int autoscale_controller_notify(struct controller *autoscaler, struct controller *to);

/* The row; its data is made from the shared context (context.h). */
extern const struct controller_def autoscale_controller;
