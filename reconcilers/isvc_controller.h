/*
 * The InferenceService controller: InferenceService -> Deployment +
 * Service (server-side apply, owner references), and the status.
 */
#pragma once

#include "manager.h"
#include "workload.h"

struct events;
struct autoscaler;
struct metrics;

/* What the controllers need besides the manager (main fills it). */
struct kinfer_controller_data {
	struct events *events;
	struct workload_options workload;
	struct autoscaler *autoscaler;   /* decisions of the autoscaler controller */
	struct metrics *metrics;
};

/*
 * Record an Event about an object through the controller data's recorder.
 * An event is advice: a failure is logged, never retried or returned.
 */
void kinfer_event(struct reconcile_ctx *ctx, const char *api_version, const char *kind,
		  const char *ns, const char *name, const char *uid, const char *type,
		  const char *reason, const char *action, const char *note);

extern const struct controller_def isvc_controller;
