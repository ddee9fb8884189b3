/*
 * The InferenceService status, written by one controller only (so two
 * writers never undo each other's merge patches): replica counts, the
 * selector for the scale subresource, the Ready, Progressing, Degraded and
 * WarmedUp conditions, and, from the autoscaler's last decision, the
 * ScalingActive and ScalingLimited conditions, currentMetrics and
 * lastScaleTime (metav1.Condition rules: lastTransitionTime changes only
 * when status changes; reasons in CamelCase; messages for people).
 * Conditions of other types are carried over untouched. Pure: the
 * reconciler gathers the input from the caches.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "kinds.h"

/* One spec.scaling metric's last value, for status.currentMetrics. */
struct status_metric {
	char type[32];
	bool has_value;
	double value, target;
};

/* What the autoscaler decided last (autoscale_controller.h), for the status. */
struct status_scaling {
	bool active; /* ScalingActive */
	char active_reason[48];
	char active_message[256];
	bool limited; /* ScalingLimited */
	char limited_reason[48];
	char limited_message[256];
	int64_t last_scale_time; /* seconds since the epoch; 0 = never */
	size_t n_metrics;
	struct status_metric metrics[8];
	/* status.scaling: the bounds in force (schedules), the controls. */
	int32_t min_replicas, max_replicas;
	uint32_t active_schedules; /* bit i: spec.scaling.schedules[i] */
	int32_t failures;          /* evaluations in a row without metrics */
	/* The ScalingPanic condition, when behavior.panic is set. */
	bool panic_set;
	bool panicking;
	int64_t panic_since; /* seconds since the epoch; 0 = calm */
	char panic_reason[48];
	char panic_message[256];
	/* spec.scaling.scaleToZero (issue 16): status.scaling.scaledToZeroAt
	 * and lastActivation (ms since the epoch; 0 = none), and whether a
	 * cold start is under way (woken by an activation, no pod warm yet). */
	bool scale_to_zero;
	int64_t scaled_to_zero_at_ms;
	int64_t last_activation_ms;
	bool waking;
};

struct status_input {
	int64_t generation;
	int32_t desired;               /* replicas asked of the Deployment */
	const struct kdeployment *dep; /* NULL = not created yet */
	int32_t pods;                  /* pods of the service, not terminating */
	int32_t ready, warm;
	int32_t warm_failed;   /* pods whose warm-up failed */
	int32_t unschedulable; /* pods the scheduler could not place */
	const char *unschedulable_msg;
	int32_t image_errors; /* pods waiting on an image or a crash */
	const char *image_reason;
	const char *selector;
	const char *invalid;        /* why the spec cannot run, or NULL */
	const char *invalid_reason; /* its CamelCase reason; NULL = InvalidSpec */
	bool scale_down_deferred;   /* the drain waits for a rollout to finish */
	/* Another autoscaler writes the Deployment's replicas (a
	 * HorizontalPodAutoscaler, snapshot.h): what the Degraded condition
	 * says of it, or NULL. */
	const char *other_autoscaler;
	/* The Deployment or Service of an earlier InferenceService of this
	 * name still exists (snapshot.h): why nothing of this one runs yet,
	 * or NULL. */
	const char *replacing;
	json_object *old_status; /* the status the server holds (parsed), or NULL */
	/*
	 * Autoscaling: when scaling_enabled, the ScalingActive and
	 * ScalingLimited conditions, currentMetrics and lastScaleTime come from
	 * scaling, or are carried over from the old status while scaling is
	 * NULL (no decision yet, e.g. just after a change of leader); when not
	 * enabled, they are dropped.
	 */
	bool scaling_enabled;
	const struct status_scaling *scaling;
	/* spec.scaling.scaleToZero with minReplicas 0: at zero the service
	 * still answers (the activator holds requests), so Ready stays True. */
	bool scale_to_zero;
	int64_t now; /* seconds since the epoch */
};

/* The full status to write (a new object the caller puts). */
json_object *status_build(const struct status_input *in);
/* Does old (the parsed status the server holds) already say what status
 * says (fields this module owns)? */
bool status_same(json_object *status, json_object *old);
/* Does status turn a condition on or off against old (a condition's
 * status changed, or one came or went)? No when only counts, reasons or
 * messages moved: the progress of a rollout. */
bool status_flipped(json_object *status, json_object *old);
/* The Ready condition's status ("True"/"False") and reason in status. */
const char *status_condition(json_object *status, const char *type, const char **ret_reason,
			     const char **ret_message);

/*
 * What Degraded ConflictingAutoscaler and its Event say of the
 * HorizontalPodAutoscaler NAME (bounds MIN to MAX) that scales the
 * service's Deployment DEPLOYMENT while the service asks for WANTED: what
 * kinfer does, and the way out (with SCALING, spec.scaling scales the
 * service, so only deleting it; without, also scaling the InferenceService
 * itself, whose scale-downs kinfer drains). Names are cut to 100 bytes.
 */
void status_autoscaler_message(char *buf, size_t len, const char *name, int32_t min, int32_t max,
			       const char *deployment, int32_t wanted, bool scaling);
/*
 * The same for the HorizontalPodAutoscaler NAME (MIN to MAX) that scales
 * the InferenceService itself while its spec.scaling is set: the
 * spec.replicas it writes is ignored; delete it or remove spec.scaling.
 */
void status_autoscaler_isvc_message(char *buf, size_t len, const char *name, int32_t min,
				    int32_t max);
