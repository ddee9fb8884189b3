/*
 * autoscale: the replica-count decision for an InferenceService, as a pure
 * function. No I/O, no clock, no allocation in the evaluation: the caller
 * passes the spec, the pods' and the service's metric values, the history
 * of past recommendations and scale events, and `now`; it gets back the
 * desired replicas, why, and what to record for the next evaluation. The
 * same code runs in the controller and in `kinfer-operator simulate`.
 *
 * The core is a port of the Kubernetes HPA (pkg/controller/podautoscaler:
 * replica_calculator.go and horizontal.go, v1.33): usage ratio against the
 * target, per-direction tolerance (0.1 by default), conservative treatment
 * of unready pods and pods without metrics with the "do not flip
 * direction" rule, the maximum over metrics, hold when metrics are missing
 * and we would scale down, stabilization windows over the recommendation
 * history, behavior policies over scale events within periodSeconds,
 * selectPolicy, min/max clamping, and the HPA's condition reasons.
 *
 * Two kinds of metric, as in the HPA:
 *  - per-pod (QueueDepth, Concurrency, RequestsPerSecond, GPUUtilization,
 *    KVCacheUtilization) behave like HPA "Pods" metrics with an AverageValue
 *    target: the average over ready pods is compared to the target, and
 *    desired = ceil(ratio * pods counted) (calcPlainMetricReplicas);
 *  - service-level (LatencyP99, TimeToFirstTokenP99, Custom) behave like
 *    HPA "Object" metrics with a Value target: ratio = value / target and
 *    desired = ceil(ratio * ready pods) (GetObjectMetricReplicas).
 *
 * Pod states map onto the HPA's pod groups: READY pods count (their
 * missing metrics are the HPA's "missing pods"), UNREADY pods (loading the
 * model, warming up) are the HPA's unready pods, counted at 0 only when
 * scaling up, IGNORED pods (being deleted or drained, failed) are left out.
 *
 * On top of the core, the inference rules are the DEFAULT behavior, which
 * a user's behavior replaces field by field as the HPA's defaulting does:
 *   scaleUp:   stabilizationWindowSeconds 0, selectPolicy Max,
 *              policies [Percent 50 per 15 s, Pods 1 per 15 s]
 *              -> up as soon as any metric breaches, at most +50% and at
 *                 least +1 pod per 15 s;
 *   scaleDown: stabilizationWindowSeconds 300, selectPolicy Max,
 *              policies [Pods 1 per 60 s]
 *              -> down only when every metric's recommendation stayed below
 *                 the current count for 300 s, one pod per minute.
 * And while metrics are missing, hold the current count and recommend it,
 * so after an outage the scale-down window starts again (the HPA records
 * nothing then, and may scale down on the first reading after it).
 *
 * The controls users know from KEDA and Knative, each as its anchor does
 * unless the .c says why not:
 *  - activation (KEDA activationThreshold): at the floor, a metric at or
 *    below its activation does not scale up; above, its target decides;
 *  - fallback (KEDA fallback): after more than failureThreshold held
 *    evaluations in a row, recommend the fallback's replicas (through
 *    the behavior, as KEDA's fallback goes through the HPA);
 *  - pause (KEDA's paused-replicas, paused-scale-in, paused-scale-out
 *    annotations): pin the size, or drop one direction of the decision;
 *  - panic (Knative KPA): when the latest demand, in replicas, is at
 *    least thresholdPercent of the ready pods, scale to it at once (no
 *    scale-up window or policies), never down, until it has stayed below
 *    for stableWindowSeconds;
 *  - schedules (KEDA cron, AIBrix): while a cron window is open, its
 *    minReplicas / maxReplicas raise the floor / cap.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cron.h"

#define AUTOSCALE_MAX_METRICS 8
#define AUTOSCALE_MAX_SCHEDULES 10
#define AUTOSCALE_MAX_SCHEDULE_SECONDS (7 * 86400) /* a window's length */
#define AUTOSCALE_MAX_POLICIES 10                  /* the CRD's maxItems, as autoscaling/v2 */

enum autoscale_metric_type {
	AUTOSCALE_QUEUE_DEPTH,             /* requests waiting, per replica */
	AUTOSCALE_CONCURRENCY,             /* requests running, per replica */
	AUTOSCALE_REQUESTS_PER_SECOND,     /* per replica */
	AUTOSCALE_GPU_UTILIZATION,         /* percent, per replica */
	AUTOSCALE_KV_CACHE_UTILIZATION,    /* percent, per replica */
	AUTOSCALE_LATENCY_P99,             /* ms, whole service */
	AUTOSCALE_TIME_TO_FIRST_TOKEN_P99, /* ms, whole service */
	AUTOSCALE_CUSTOM,                  /* a user's PromQL, whole service */
	AUTOSCALE_METRIC_TYPE_COUNT,
};

/* "QueueDepth", "LatencyP99", ...; NULL for an unknown type. */
const char *autoscale_metric_type_name(enum autoscale_metric_type type);
int autoscale_metric_type_parse(const char *name, enum autoscale_metric_type *ret_type);
/* True for the per-pod (HPA "Pods") types, false for the service ones. */
bool autoscale_metric_per_pod(enum autoscale_metric_type type);

enum autoscale_policy_type {
	AUTOSCALE_POLICY_PODS,
	AUTOSCALE_POLICY_PERCENT,
};

enum autoscale_select {
	AUTOSCALE_SELECT_MAX,
	AUTOSCALE_SELECT_MIN,
	AUTOSCALE_SELECT_DISABLED,
};

/* The autoscaling/v2 spellings: "Pods", "Percent"; "Max", "Min",
 * "Disabled" (the webhook writes the defaults with them). */
const char *autoscale_policy_type_name(enum autoscale_policy_type type);
const char *autoscale_select_name(enum autoscale_select select);

struct autoscale_policy {
	enum autoscale_policy_type type;
	int32_t value;
	int32_t period_seconds;
};

/* One direction of autoscaling/v2 behavior; set_* marks a field the user
 * gave, the others take the default (field by field, as the HPA does). */
struct autoscale_rules {
	bool set_window;
	int32_t stabilization_window_seconds;
	bool set_select;
	enum autoscale_select select;
	bool set_policies;
	size_t n_policies;
	struct autoscale_policy policies[AUTOSCALE_MAX_POLICIES];
	bool set_tolerance;
	double tolerance;
};

struct autoscale_behavior {
	struct autoscale_rules scale_up;
	struct autoscale_rules scale_down;
};

struct autoscale_metric_spec {
	enum autoscale_metric_type type;
	double target; /* in the metric's unit; > 0 */
};

/* KEDA's fallback.behavior. */
enum autoscale_fallback_behavior {
	AUTOSCALE_FALLBACK_STATIC,                     /* fallback.replicas */
	AUTOSCALE_FALLBACK_CURRENT_REPLICAS,           /* stay */
	AUTOSCALE_FALLBACK_CURRENT_REPLICAS_IF_HIGHER, /* max(current, replicas) */
	AUTOSCALE_FALLBACK_CURRENT_REPLICAS_IF_LOWER,  /* min(current, replicas) */
};

/* KEDA's fallback: after more than failure_threshold evaluations in a row
 * held for missing metrics, recommend replicas (by behavior). */
struct autoscale_fallback {
	bool set;
	int32_t failure_threshold; /* >= 0 */
	int32_t replicas;          /* >= 0 */
	enum autoscale_fallback_behavior behavior;
};

/* Knative KPA's panic mode (behavior.panic). */
struct autoscale_panic {
	bool set;
	int32_t window_seconds;        /* the short window (6) */
	int32_t threshold_percent;     /* of the ready pods' capacity (200) */
	int32_t stable_window_seconds; /* leave after this long below (60) */
};

/* The predictive floor (AIBrix's proposal): a least-squares line through
 * the recommendations of the last window_seconds, projected
 * lookahead_seconds ahead, may raise the recommendation (never lower
 * it), by at most max_increase_percent. Off unless set. */
struct autoscale_predictive {
	bool set;
	int32_t window_seconds;       /* 60..3600 (300) */
	int32_t lookahead_seconds;    /* 1..3600 (60) */
	int32_t max_increase_percent; /* 1..1000 (100) */
};

/* One spec.scaling.schedules entry: from each time cron fires, for
 * duration_seconds, the floor is at least min_replicas and the cap at
 * least max_replicas (-1: not given). */
struct autoscale_schedule {
	struct cron_expr cron;
	int32_t time_zone_offset_seconds; /* the cron's local time - UTC */
	int32_t duration_seconds;
	int32_t min_replicas;
	int32_t max_replicas;
};

/* spec.scaling of an InferenceService. */
struct autoscale_spec {
	int32_t min_replicas;
	int32_t max_replicas;
	size_t n_metrics;
	struct autoscale_metric_spec metrics[AUTOSCALE_MAX_METRICS];
	/*
	 * metrics[i].activationThreshold (KEDA's): at minReplicas (or 0),
	 * metric i asks for more replicas only once its value (per-pod: the
	 * average over ready pods) is above it; 0, the default as in KEDA,
	 * lets any value above 0 activate. (A parallel array so that the
	 * many {type, target} initializers stay valid.)
	 */
	double activation[AUTOSCALE_MAX_METRICS];
	bool set_tolerance; /* default 0.1, both directions */
	double tolerance;
	struct autoscale_behavior behavior;
	struct autoscale_fallback fallback;
	struct autoscale_panic panic; /* behavior.panic */
	struct autoscale_predictive predictive;
	size_t n_schedules;
	struct autoscale_schedule schedules[AUTOSCALE_MAX_SCHEDULES];
};

/*
 * The pause annotations (KEDA's under autoscaling.keda.sh/, kinfer's
 * under kinfer.io/): replicas pins the size and stops the autoscaler;
 * scale_in / scale_out stop one direction of the metrics' decisions.
 */
struct autoscale_pause {
	bool replicas_set;
	int32_t replicas;
	bool scale_in;
	bool scale_out;
};

#define AUTOSCALE_ANNOTATION_PAUSED_REPLICAS "kinfer.io/paused-replicas"
#define AUTOSCALE_ANNOTATION_PAUSED "kinfer.io/paused"
#define AUTOSCALE_ANNOTATION_PAUSED_SCALE_IN "kinfer.io/paused-scale-in"
#define AUTOSCALE_ANNOTATION_PAUSED_SCALE_OUT "kinfer.io/paused-scale-out"

/*
 * The annotations' values (NULL: absent) to a pause, as KEDA reads its
 * own: paused-replicas a whole number 0..1000; paused, paused-scale-in
 * and paused-scale-out "true" or "false"; paused "true" pins the current
 * count (current). -EINVAL with why naming the annotation; then ret is
 * what the valid ones say.
 */
int autoscale_pause_parse(const char *paused_replicas, const char *paused, const char *scale_in,
			  const char *scale_out, int32_t current, struct autoscale_pause *ret,
			  char *why, size_t why_len);

/* What one evaluation hands the next, besides the recommendation and
 * scale event lists: kept in the history. */
struct autoscale_state {
	int32_t failures;      /* evaluations in a row held for missing metrics */
	int64_t panic_time_ms; /* last time over the panic threshold; 0: calm */
	int64_t panic_start_ms;
	int32_t max_panic; /* the most replicas asked during this panic */
	bool paused;       /* the last evaluation was pinned by a pause */
};

enum autoscale_pod_state {
	AUTOSCALE_POD_READY,   /* serving: its metrics count */
	AUTOSCALE_POD_UNREADY, /* loading or warming: 0 when scaling up */
	AUTOSCALE_POD_IGNORED, /* terminating, draining or failed */
};

/* One pod's scrape; values[i] is for spec metric i when bit i of present
 * is set. A missing or NaN value is a missing metric. */
struct autoscale_pod {
	enum autoscale_pod_state state;
	uint32_t present;
	double values[AUTOSCALE_MAX_METRICS];
};

/* Service-level values, indexed like the spec's metrics. */
struct autoscale_service {
	uint32_t present;
	double values[AUTOSCALE_MAX_METRICS];
};

/* An unstabilized recommendation, kept for the stabilization windows. */
struct autoscale_recommendation {
	int64_t time_ms;
	int32_t replicas;
};

/* A scale event: change is the absolute number of replicas added (in the
 * up list) or removed (in the down list). outdated marks a slot that the
 * history may reuse; evaluation ignores it. */
struct autoscale_scale_event {
	int64_t time_ms;
	int32_t change;
	bool outdated;
};

struct autoscale_input {
	const struct autoscale_spec *spec;
	int32_t current_replicas; /* the target's spec.replicas */
	const struct autoscale_pod *pods;
	size_t n_pods;
	const struct autoscale_service *service; /* may be NULL */
	const struct autoscale_recommendation *recommendations;
	size_t n_recommendations;
	const struct autoscale_scale_event *up_events;
	size_t n_up_events;
	const struct autoscale_scale_event *down_events;
	size_t n_down_events;
	int64_t now_ms;
	const struct autoscale_pause *pause; /* may be NULL */
	struct autoscale_state state;        /* from the last evaluation */
	/*
	 * The HPA takes a target at 0 replicas (with minReplicas > 0) as
	 * "autoscaling disabled" (ScalingDisabled). kinfer has the pause
	 * annotations for that, and a service scaled to 0 before spec.scaling
	 * was added must not stay there: true makes 0 below minReplicas
	 * (TooFewReplicas, scaled to minReplicas).
	 */
	bool zero_is_below_min;
};

/* What one metric says; goes to status.currentMetrics. */
struct autoscale_metric_status {
	bool valid;
	double current; /* per-pod: average over ready pods; service: value */
	double target;
	int32_t replicas;  /* this metric's proposal */
	const char *error; /* when !valid: why, a sentence */
};

struct autoscale_result {
	int32_t current; /* echo of current_replicas */
	int32_t desired; /* scale to this */
	bool rescale;    /* desired != current */
	/*
	 * Metrics unavailable (all of them, or some while the rest would scale
	 * down): keep the current replicas, never fall to min, and report
	 * ScalingActive=False with active_reason.
	 */
	bool hold;
	/* The metrics' recommendation before stabilization; record it. */
	int32_t recommendation;
	bool record_recommendation;
	int metric;       /* index of the metric that drove it, or -1 */
	size_t n_invalid; /* metrics that could not be computed */
	/* One CamelCase reason summing up the decision (see .c). */
	const char *reason;
	/* The HPA's three conditions. */
	bool active;
	const char *active_reason; /* ValidMetricFound, FailedGet..., ScalingDisabled */
	const char *able_reason;   /* ReadyForNewScale, ScaleUpStabilized, ScaleDownStabilized */
	bool limited;
	const char *limited_reason; /* DesiredWithinRange, ScaleUpLimit, ScaleDownLimit, TooManyReplicas, TooFewReplicas */
	char message[160]; /* for people: "QueueDepth above target" */
	struct autoscale_metric_status metrics[AUTOSCALE_MAX_METRICS];
	/* The controls on top of the HPA core (see the .c). */
	bool paused;           /* pinned by the paused-replicas annotation */
	bool direction_paused; /* a paused-scale-in/out annotation held it */
	bool fallback;         /* desired is the fallback's */
	bool below_activation; /* a metric at the floor is below activation */
	int32_t predicted;     /* the predictive floor when it raised, else 0 */
	bool panicking, panic_started, panic_ended;
	int32_t min_replicas, max_replicas; /* in force: spec and schedules */
	uint32_t schedules_active;          /* bit i: schedules[i] */
	struct autoscale_state state;       /* for the next evaluation */
};

/* The output of one normalization step (stabilize, rate limit). */
struct autoscale_step {
	int32_t replicas;
	const char *reason;
};

/* kinfer's default behavior (the inference rules), every field set. */
void autoscale_behavior_defaults(struct autoscale_behavior *ret_behavior);
/* The behavior in force: the spec's fields over the defaults. */
int autoscale_resolve(const struct autoscale_spec *spec, struct autoscale_behavior *ret_behavior);
/* -EINVAL if the spec breaks a rule; why (if not NULL) says which. */
int autoscale_spec_check(const struct autoscale_spec *spec, char *why, size_t why_len);

/* The bounds in force at now_ms: minReplicas and maxReplicas raised by
 * the schedules whose window is open; bit i of *ret_active is schedule i. */
void autoscale_bounds(const struct autoscale_spec *spec, int64_t now_ms, int32_t *ret_min,
		      int32_t *ret_max, uint32_t *ret_active);

/* The whole decision (reconcileAutoscaler without the API calls). */
int autoscale_evaluate(const struct autoscale_input *in, struct autoscale_result *ret_result);

/* Its steps, exposed for simulate and the tests. computeReplicasForMetrics:
 * fills metrics, metric, n_invalid, hold, recommendation. */
int autoscale_replicas_for_metrics(const struct autoscale_input *in,
				   struct autoscale_result *ret_result);
/* stabilizeRecommendationWithBehaviors over in->recommendations. */
int autoscale_stabilize(const struct autoscale_input *in, int32_t desired,
			struct autoscale_step *ret_step);
/* convertDesiredReplicasWithBehaviorRate over in's scale events. */
int autoscale_rate_limit(const struct autoscale_input *in, int32_t desired,
			 struct autoscale_step *ret_step);

/*
 * The history one InferenceService needs between evaluations, kept the
 * way the HPA controller keeps it: recommendations older than both
 * windows and events older than the longest policy period are reused.
 * Each list holds at most 4096 entries; past that the oldest is dropped.
 */
struct autoscale_history;

int autoscale_history_new(struct autoscale_history **ret_history);
void autoscale_history_free(struct autoscale_history *h);
/* Record what evaluate decided at now_ms (after the scale was applied),
 * and the state it hands the next evaluation. */
int autoscale_history_record(struct autoscale_history *h, const struct autoscale_spec *spec,
			     const struct autoscale_result *res, int64_t now_ms);
/* Replace the content, e.g. after a leader change; NULL/0 empties a list. */
int autoscale_history_restore(struct autoscale_history *h,
			      const struct autoscale_recommendation *recs, size_t n_recs,
			      const struct autoscale_scale_event *up, size_t n_up,
			      const struct autoscale_scale_event *down, size_t n_down);
/* Point in's history fields at h's lists (valid until h changes), and
 * set in->state. */
void autoscale_history_attach(const struct autoscale_history *h, struct autoscale_input *in);
