/*
 * autoscale: a port of the Kubernetes HPA decision (v1.33,
 * pkg/controller/podautoscaler) with kinfer's inference rules as the
 * default behavior. Function comments name the Go function each one ports;
 * where kinfer differs on purpose, the comment says so and why.
 *
 * Deliberate differences from the HPA, all in the direction of not
 * scaling on bad data:
 *  - values are doubles, not milli-quantities: the average is not
 *    truncated to an integer number of milli-units first;
 *  - a service-level metric with no ready pod is invalid (the HPA would
 *    propose ceil(ratio * 0) = 0 replicas);
 *  - a NaN value is a missing value;
 *  - current > max or < min report TooManyReplicas / TooFewReplicas as
 *    the reason (the HPA leaves ScalingLimited untouched there).
 */
#include "autoscale.h"
#include "ktime.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TOLERANCE 0.1
#define MAX_WINDOW_SECONDS 3600
#define MAX_PERIOD_SECONDS 1800
#define HISTORY_CAP 4096
#define MAX_FAILURE_THRESHOLD 1000

static const char *const type_names[AUTOSCALE_METRIC_TYPE_COUNT] = {
	[AUTOSCALE_QUEUE_DEPTH] = "QueueDepth",
	[AUTOSCALE_CONCURRENCY] = "Concurrency",
	[AUTOSCALE_REQUESTS_PER_SECOND] = "RequestsPerSecond",
	[AUTOSCALE_GPU_UTILIZATION] = "GPUUtilization",
	[AUTOSCALE_KV_CACHE_UTILIZATION] = "KVCacheUtilization",
	[AUTOSCALE_LATENCY_P99] = "LatencyP99",
	[AUTOSCALE_TIME_TO_FIRST_TOKEN_P99] = "TimeToFirstTokenP99",
	[AUTOSCALE_CUSTOM] = "Custom",
};

const char *autoscale_metric_type_name(enum autoscale_metric_type type)
{
	if ((unsigned)type >= AUTOSCALE_METRIC_TYPE_COUNT)
		return NULL;
	return type_names[type];
}

const char *autoscale_policy_type_name(enum autoscale_policy_type type)
{
	return type == AUTOSCALE_POLICY_PERCENT ? "Percent" : "Pods";
}

const char *autoscale_select_name(enum autoscale_select select)
{
	return select == AUTOSCALE_SELECT_MIN      ? "Min" :
	       select == AUTOSCALE_SELECT_DISABLED ? "Disabled" :
						     "Max";
}

int autoscale_metric_type_parse(const char *name, enum autoscale_metric_type *ret_type)
{
	if (!name)
		return -EINVAL;
	for (unsigned t = 0; t < AUTOSCALE_METRIC_TYPE_COUNT; t++) {
		if (strcmp(name, type_names[t]) == 0) {
			*ret_type = (enum autoscale_metric_type)t;
			return 0;
		}
	}
	return -EINVAL;
}

bool autoscale_metric_per_pod(enum autoscale_metric_type type)
{
	return type <= AUTOSCALE_KV_CACHE_UTILIZATION;
}

/* The inference rules; see the header for why these numbers. */
void autoscale_behavior_defaults(struct autoscale_behavior *ret_behavior)
{
	static const struct autoscale_behavior def = {
		.scale_up = {
			.set_window = true,
			.stabilization_window_seconds = 0,
			.set_select = true,
			.select = AUTOSCALE_SELECT_MAX,
			.set_policies = true,
			.n_policies = 2,
			.policies = {
				{ AUTOSCALE_POLICY_PERCENT, 50, 15 },
				{ AUTOSCALE_POLICY_PODS, 1, 15 },
			},
			.set_tolerance = true,
			.tolerance = DEFAULT_TOLERANCE,
		},
		.scale_down = {
			.set_window = true,
			.stabilization_window_seconds = 300,
			.set_select = true,
			.select = AUTOSCALE_SELECT_MAX,
			.set_policies = true,
			.n_policies = 1,
			.policies = { { AUTOSCALE_POLICY_PODS, 1, 60 } },
			.set_tolerance = true,
			.tolerance = DEFAULT_TOLERANCE,
		},
	};

	*ret_behavior = def;
}

/* copyHPAScalingRules: every field the user set replaces the default. */
static void overlay(const struct autoscale_rules *from, struct autoscale_rules *to)
{
	if (from->set_select)
		to->select = from->select;
	if (from->set_window)
		to->stabilization_window_seconds = from->stabilization_window_seconds;
	if (from->set_policies) {
		to->n_policies = from->n_policies;
		memcpy(to->policies, from->policies, sizeof(to->policies));
	}
	if (from->set_tolerance)
		to->tolerance = from->tolerance;
}

int autoscale_resolve(const struct autoscale_spec *spec, struct autoscale_behavior *ret_behavior)
{
	struct autoscale_behavior b;

	if (!spec)
		return -EINVAL;
	autoscale_behavior_defaults(&b);
	if (spec->set_tolerance) {
		b.scale_up.tolerance = spec->tolerance;
		b.scale_down.tolerance = spec->tolerance;
	}
	overlay(&spec->behavior.scale_up, &b.scale_up);
	overlay(&spec->behavior.scale_down, &b.scale_down);
	*ret_behavior = b;
	return 0;
}

static int check_rules(const struct autoscale_rules *r, const char *dir, char *why, size_t len)
{
	if (r->set_window && (r->stabilization_window_seconds < 0 ||
			      r->stabilization_window_seconds > MAX_WINDOW_SECONDS)) {
		snprintf(why, len,
			 "%s.stabilizationWindowSeconds must be "
			 "between 0 and %d",
			 dir, MAX_WINDOW_SECONDS);
		return -EINVAL;
	}
	if (r->set_select && (unsigned)r->select > AUTOSCALE_SELECT_DISABLED) {
		snprintf(why, len,
			 "%s.selectPolicy must be Max, Min or "
			 "Disabled",
			 dir);
		return -EINVAL;
	}
	if (r->set_tolerance && !(r->tolerance >= 0 && isfinite(r->tolerance))) {
		snprintf(why, len, "%s.tolerance must be >= 0", dir);
		return -EINVAL;
	}
	if (r->set_policies && (r->n_policies == 0 || r->n_policies > AUTOSCALE_MAX_POLICIES)) {
		snprintf(why, len, "%s.policies must have 1 to %d entries", dir,
			 AUTOSCALE_MAX_POLICIES);
		return -EINVAL;
	}
	for (size_t i = 0; r->set_policies && i < r->n_policies; i++) {
		const struct autoscale_policy *p = &r->policies[i];
		if ((unsigned)p->type > AUTOSCALE_POLICY_PERCENT || p->value <= 0 ||
		    p->period_seconds <= 0 || p->period_seconds > MAX_PERIOD_SECONDS) {
			snprintf(why, len,
				 "%s.policies[%zu]: type Pods or "
				 "Percent, value > 0, periodSeconds 1..%d",
				 dir, i, MAX_PERIOD_SECONDS);
			return -EINVAL;
		}
	}
	return 0;
}

static int check_metrics(const struct autoscale_spec *s, char *why, size_t len)
{
	if (s->n_metrics == 0 || s->n_metrics > AUTOSCALE_MAX_METRICS) {
		snprintf(why, len, "metrics must have 1 to %d entries", AUTOSCALE_MAX_METRICS);
		return -EINVAL;
	}
	for (size_t i = 0; i < s->n_metrics; i++) {
		const struct autoscale_metric_spec *m = &s->metrics[i];
		if ((unsigned)m->type >= AUTOSCALE_METRIC_TYPE_COUNT) {
			snprintf(why, len, "metrics[%zu].type is unknown", i);
			return -EINVAL;
		}
		if (!(m->target > 0 && isfinite(m->target))) {
			snprintf(why, len, "metrics[%zu].target must be > 0", i);
			return -EINVAL;
		}
		if (!(s->activation[i] >= 0 && isfinite(s->activation[i]))) {
			snprintf(why, len,
				 "metrics[%zu].activationThreshold "
				 "must be >= 0",
				 i);
			return -EINVAL;
		}
	}
	return 0;
}

static int check_fallback_panic(const struct autoscale_spec *s, char *why, size_t len)
{
	const struct autoscale_fallback *f = &s->fallback;
	const struct autoscale_panic *p = &s->panic;

	if (f->set && (f->failure_threshold < 0 || f->failure_threshold > MAX_FAILURE_THRESHOLD ||
		       f->replicas < 0 ||
		       (unsigned)f->behavior > AUTOSCALE_FALLBACK_CURRENT_REPLICAS_IF_LOWER)) {
		snprintf(why, len,
			 "fallback: failureThreshold 0..%d, replicas "
			 ">= 0, behavior static, currentReplicas, "
			 "currentReplicasIfHigher or currentReplicasIfLower",
			 MAX_FAILURE_THRESHOLD);
		return -EINVAL;
	}
	if (s->predictive.set &&
	    (s->predictive.window_seconds < 60 || s->predictive.window_seconds > MAX_WINDOW_SECONDS ||
	     s->predictive.lookahead_seconds < 1 || s->predictive.lookahead_seconds > 3600 ||
	     s->predictive.max_increase_percent < 1 || s->predictive.max_increase_percent > 1000)) {
		snprintf(why, len,
			 "predictive: windowSeconds 60..%d, "
			 "lookaheadSeconds 1..3600, maxIncreasePercent 1..1000",
			 MAX_WINDOW_SECONDS);
		return -EINVAL;
	}
	if (p->set && (p->window_seconds < 1 || p->stable_window_seconds < 6 ||
		       p->stable_window_seconds > MAX_WINDOW_SECONDS ||
		       p->window_seconds > p->stable_window_seconds || p->threshold_percent < 110 ||
		       p->threshold_percent > 1000)) {
		snprintf(why, len,
			 "behavior.panic: thresholdPercent 110..1000, "
			 "stableWindowSeconds 6..%d, windowSeconds 1..its "
			 "stableWindowSeconds",
			 MAX_WINDOW_SECONDS);
		return -EINVAL;
	}
	return 0;
}

static int check_schedules(const struct autoscale_spec *s, char *why, size_t len)
{
	if (s->n_schedules > AUTOSCALE_MAX_SCHEDULES) {
		snprintf(why, len, "schedules: at most %d", AUTOSCALE_MAX_SCHEDULES);
		return -EINVAL;
	}
	for (size_t i = 0; i < s->n_schedules; i++) {
		const struct autoscale_schedule *c = &s->schedules[i];
		int32_t cap = c->max_replicas > s->max_replicas ? c->max_replicas : s->max_replicas;
		if (c->time_zone_offset_seconds < -14 * 3600 ||
		    c->time_zone_offset_seconds > 14 * 3600) {
			snprintf(why, len,
				 "schedules[%zu].timeZone: an offset "
				 "within 14 hours of UTC",
				 i);
			return -EINVAL;
		}
		if (c->duration_seconds < 60 || c->duration_seconds > AUTOSCALE_MAX_SCHEDULE_SECONDS) {
			snprintf(why, len,
				 "schedules[%zu].durationSeconds must "
				 "be from 60 to %d",
				 i, AUTOSCALE_MAX_SCHEDULE_SECONDS);
			return -EINVAL;
		}
		if ((c->min_replicas < 0 && c->max_replicas < 0) || c->min_replicas < -1 ||
		    c->max_replicas < -1 || c->max_replicas == 0) {
			snprintf(why, len,
				 "schedules[%zu]: give minReplicas "
				 "(>= 0) or maxReplicas (>= 1), or both",
				 i);
			return -EINVAL;
		}
		if (c->min_replicas > cap) {
			snprintf(why, len,
				 "schedules[%zu].minReplicas %d is "
				 "above the cap in its window (%d)",
				 i, c->min_replicas, cap);
			return -EINVAL;
		}
	}
	return 0;
}

int autoscale_spec_check(const struct autoscale_spec *spec, char *why, size_t why_len)
{
	char dummy[1];
	int r;

	if (!why) {
		why = dummy;
		why_len = sizeof(dummy);
	}
	if (!spec) {
		snprintf(why, why_len, "no spec");
		return -EINVAL;
	}
	if (spec->min_replicas < 0 || spec->max_replicas < 1 ||
	    spec->min_replicas > spec->max_replicas) {
		snprintf(why, why_len,
			 "need 0 <= minReplicas <= maxReplicas "
			 "and maxReplicas >= 1");
		return -EINVAL;
	}
	if (spec->set_tolerance && !(spec->tolerance >= 0 && isfinite(spec->tolerance))) {
		snprintf(why, why_len, "tolerance must be >= 0");
		return -EINVAL;
	}
	r = check_metrics(spec, why, why_len);
	if (r == 0)
		r = check_fallback_panic(spec, why, why_len);
	if (r == 0)
		r = check_schedules(spec, why, why_len);
	if (r == 0)
		r = check_rules(&spec->behavior.scale_up, "scaleUp", why, why_len);
	if (r == 0)
		r = check_rules(&spec->behavior.scale_down, "scaleDown", why, why_len);
	return r;
}

/* "true" -> 1, "false" or absent -> 0, else -1. */
static int flag_value(const char *v)
{
	if (!v || strcmp(v, "false") == 0)
		return 0;
	return strcmp(v, "true") == 0 ? 1 : -1;
}

int autoscale_pause_parse(const char *paused_replicas, const char *paused, const char *scale_in,
			  const char *scale_out, int32_t current, struct autoscale_pause *ret,
			  char *why, size_t why_len)
{
	struct autoscale_pause p = { false, 0, false, false };
	const char *bad = NULL;
	char dummy[1];
	int f;

	if (!why) {
		why = dummy;
		why_len = sizeof(dummy);
	}
	if (paused_replicas) {
		char *end = NULL;
		long v;
		errno = 0;
		v = strtol(paused_replicas, &end, 10);
		if (errno || end == paused_replicas || *end || v < 0 || v > 1000 ||
		    !isdigit((unsigned char)paused_replicas[0]))
			bad = AUTOSCALE_ANNOTATION_PAUSED_REPLICAS;
		else
			p = (struct autoscale_pause){ true, (int32_t)v, false, false };
	}
	f = flag_value(paused);
	if (f < 0)
		bad = bad ? bad : AUTOSCALE_ANNOTATION_PAUSED;
	else if (f && !p.replicas_set)
		p = (struct autoscale_pause){ true, current < 0 ? 0 : current, false, false };
	f = flag_value(scale_in);
	if (f < 0)
		bad = bad ? bad : AUTOSCALE_ANNOTATION_PAUSED_SCALE_IN;
	p.scale_in = f > 0;
	f = flag_value(scale_out);
	if (f < 0)
		bad = bad ? bad : AUTOSCALE_ANNOTATION_PAUSED_SCALE_OUT;
	p.scale_out = f > 0;
	*ret = p;
	if (!bad)
		return 0;
	snprintf(why, why_len, "annotation %s: %s", bad,
		 strcmp(bad, AUTOSCALE_ANNOTATION_PAUSED_REPLICAS) == 0 ?
			 "want a whole number of replicas from 0 to 1000" :
			 "want \"true\" or \"false\"");
	return -EINVAL;
}

/* What every entry point needs before it may index anything. */
static int check_input(const struct autoscale_input *in)
{
	if (!in || in->current_replicas < 0 || autoscale_spec_check(in->spec, NULL, 0) < 0 ||
	    (in->n_pods && !in->pods) || (in->n_recommendations && !in->recommendations) ||
	    (in->n_up_events && !in->up_events) || (in->n_down_events && !in->down_events) ||
	    (in->pause && in->pause->replicas_set && in->pause->replicas < 0))
		return -EINVAL;
	return 0;
}

/* Tolerances.isWithin: no change when the ratio is this close to 1. */
static bool within(const struct autoscale_behavior *b, double ratio)
{
	return 1.0 - b->scale_down.tolerance <= ratio && ratio <= 1.0 + b->scale_up.tolerance;
}

/* int32(math.Ceil(x)), saturating instead of overflowing. */
static int32_t ceil_replicas(double x)
{
	if (isnan(x) || x <= 0)
		return 0;
	if (x >= (double)INT32_MAX)
		return INT32_MAX;
	return (int32_t)ceil(x);
}

static void invalid(struct autoscale_metric_status *st, const char *why)
{
	st->valid = false;
	st->error = why;
}

/* The groups groupPods sorts pods into, and the ready pods' metric sum. */
struct groups {
	size_t ready; /* ready with a value */
	size_t unready;
	size_t missing; /* ready without a value */
	size_t pods;    /* not ignored */
	double sum;
};

static void group_pods(const struct autoscale_input *in, size_t i, struct groups *g)
{
	memset(g, 0, sizeof(*g));
	for (size_t k = 0; k < in->n_pods; k++) {
		const struct autoscale_pod *p = &in->pods[k];
		if (p->state == AUTOSCALE_POD_IGNORED)
			continue;
		g->pods++;
		if (p->state != AUTOSCALE_POD_READY) {
			g->unready++;
			continue;
		}
		if (!(p->present & (1u << i)) || isnan(p->values[i])) {
			g->missing++;
			continue;
		}
		g->sum += p->values[i];
		g->ready++;
	}
}

/*
 * calcPlainMetricReplicas: a per-pod metric against an average target.
 * Missing pods count at the target when scaling down and at 0 when
 * scaling up; unready pods count at 0, and only when scaling up; if that
 * flips the direction or lands within the tolerance, keep the current
 * count; so also if the extra pods would flip the direction.
 */
static void plain_metric(const struct autoscale_input *in, const struct autoscale_behavior *b,
			 size_t i, struct autoscale_metric_status *st)
{
	double target = in->spec->metrics[i].target, ratio, nratio, sum;
	int32_t cur = in->current_replicas, nrep;
	bool up_unready;
	struct groups g;
	size_t n;

	group_pods(in, i, &g);
	if (g.pods == 0) {
		invalid(st, "no pods to take metrics from");
		return;
	}
	if (g.ready == 0) {
		invalid(st, "did not receive metrics for targeted "
			    "pods (pods might be unready)");
		return;
	}
	st->current = g.sum / (double)g.ready;
	ratio = st->current / target;
	up_unready = g.unready > 0 && ratio > 1.0;
	st->valid = true;
	if (!up_unready && g.missing == 0) {
		st->replicas = within(b, ratio) ? cur : ceil_replicas(ratio * (double)g.ready);
		return;
	}
	sum = g.sum;
	n = g.ready;
	if (g.missing && ratio < 1.0) {
		sum += target * (double)g.missing;
		n += g.missing;
	} else if (g.missing && ratio > 1.0) {
		n += g.missing;
	}
	if (up_unready)
		n += g.unready;
	nratio = sum / (double)n / target;
	st->replicas = cur;
	if (within(b, nratio) || (ratio < 1.0 && nratio > 1.0) || (ratio > 1.0 && nratio < 1.0))
		return;
	nrep = ceil_replicas(nratio * (double)n);
	if ((nratio < 1.0 && nrep > cur) || (nratio > 1.0 && nrep < cur))
		return;
	st->replicas = nrep;
}

/*
 * GetObjectMetricReplicas / getUsageRatioReplicaCount: a service-level
 * value against a target, scaled by the ready pods. With 0 current
 * replicas (scaled to zero, min 0) the ratio alone decides.
 */
static void service_metric(const struct autoscale_input *in, const struct autoscale_behavior *b,
			   size_t i, struct autoscale_metric_status *st)
{
	const struct autoscale_service *sv = in->service;
	double ratio;
	size_t ready = 0;

	if (!sv || !(sv->present & (1u << i)) || isnan(sv->values[i])) {
		invalid(st, "no value for the service");
		return;
	}
	st->current = sv->values[i];
	ratio = st->current / in->spec->metrics[i].target;
	if (in->current_replicas == 0) {
		st->valid = true;
		st->replicas = ceil_replicas(ratio);
		return;
	}
	if (within(b, ratio)) {
		st->valid = true;
		st->replicas = in->current_replicas;
		return;
	}
	for (size_t k = 0; k < in->n_pods; k++)
		ready += in->pods[k].state == AUTOSCALE_POD_READY;
	if (!ready) {
		invalid(st, "no ready pods to scale from");
		return;
	}
	st->valid = true;
	st->replicas = ceil_replicas(ratio * (double)ready);
}

/*
 * KEDA's activationThreshold: at the floor (minReplicas, or 0), a metric
 * whose value is at or below its activation asks for no more replicas;
 * above it, its target decides how many. KEDA compares a scaler's value,
 * which for its per-pod style targets is a total; kinfer compares the
 * metric's value in the unit of its target (a per-pod average), so one
 * number means the same for the target and the activation.
 */
static void activation(const struct autoscale_input *in, size_t i,
		       struct autoscale_metric_status *st, struct autoscale_result *res)
{
	int32_t cur = in->current_replicas;

	if (cur > in->spec->min_replicas || st->replicas <= cur ||
	    st->current > in->spec->activation[i])
		return;
	st->replicas = cur;
	res->below_activation = true;
}

static const char *failed_reason(enum autoscale_metric_type t)
{
	return autoscale_metric_per_pod(t) ? "FailedGetPodsMetric" : "FailedGetServiceMetric";
}

/* computeReplicasForMetrics: the largest proposal over valid metrics. */
int autoscale_replicas_for_metrics(const struct autoscale_input *in,
				   struct autoscale_result *ret_result)
{
	struct autoscale_behavior b;
	struct autoscale_result *res = ret_result;
	const char *first_invalid = NULL;
	int32_t replicas = 0;
	int r;

	if (!res || check_input(in) < 0)
		return -EINVAL;
	r = autoscale_resolve(in->spec, &b);
	if (r < 0)
		return r;
	res->metric = -1;
	res->n_invalid = 0;
	res->below_activation = false;
	for (size_t i = 0; i < in->spec->n_metrics; i++) {
		struct autoscale_metric_status *st = &res->metrics[i];
		enum autoscale_metric_type t = in->spec->metrics[i].type;
		memset(st, 0, sizeof(*st));
		st->target = in->spec->metrics[i].target;
		if (autoscale_metric_per_pod(t))
			plain_metric(in, &b, i, st);
		else
			service_metric(in, &b, i, st);
		if (!st->valid) {
			if (!res->n_invalid++)
				first_invalid = failed_reason(t);
			continue;
		}
		activation(in, i, st, res);
		if (replicas == 0 || st->replicas > replicas) {
			replicas = st->replicas;
			res->metric = (int)i;
		}
	}
	res->recommendation = replicas;
	res->hold = res->n_invalid >= in->spec->n_metrics ||
		    (res->n_invalid > 0 && replicas < in->current_replicas);
	res->active = !res->hold;
	res->active_reason = res->hold ? first_invalid : "ValidMetricFound";
	return 0;
}

/*
 * stabilizeRecommendationWithBehaviors: the lowest recommendation within
 * the scale-up window bounds a scale-up, the highest within the
 * scale-down window bounds a scale-down.
 */
int autoscale_stabilize(const struct autoscale_input *in, int32_t desired,
			struct autoscale_step *ret_step)
{
	struct autoscale_behavior b;
	int64_t up_cut, down_cut;
	int32_t up = desired, down = desired, r;
	int rc;

	if (!ret_step || check_input(in) < 0)
		return -EINVAL;
	rc = autoscale_resolve(in->spec, &b);
	if (rc < 0)
		return rc;
	up_cut = in->now_ms - b.scale_up.stabilization_window_seconds * KTIME_MSEC_PER_SEC;
	down_cut = in->now_ms - b.scale_down.stabilization_window_seconds * KTIME_MSEC_PER_SEC;
	for (size_t i = 0; i < in->n_recommendations; i++) {
		const struct autoscale_recommendation *rec = &in->recommendations[i];
		if (rec->time_ms > up_cut && rec->replicas < up)
			up = rec->replicas;
		if (rec->time_ms > down_cut && rec->replicas > down)
			down = rec->replicas;
	}
	r = in->current_replicas;
	if (r < up)
		r = up;
	if (r > down)
		r = down;
	ret_step->replicas = r;
	if (r == desired)
		ret_step->reason = "ReadyForNewScale";
	else if (desired >= in->current_replicas)
		ret_step->reason = "ScaleUpStabilized";
	else
		ret_step->reason = "ScaleDownStabilized";
	return 0;
}

/* getReplicasChangePerPeriod: replicas changed within the last period. */
static int64_t change_in_period(int64_t now_ms, int32_t period,
				const struct autoscale_scale_event *ev, size_t n)
{
	int64_t cut = now_ms - period * KTIME_MSEC_PER_SEC, sum = 0;

	for (size_t i = 0; i < n; i++)
		if (ev[i].time_ms > cut)
			sum += ev[i].change;
	return sum;
}

static int32_t clamp32(int64_t v)
{
	return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

/*
 * calculateScaleUpLimitWithScalingRules (up) and
 * calculateScaleDownLimitWithBehaviors (down): each policy allows a count
 * relative to the replicas at the start of its period; selectPolicy picks
 * the largest change (Max) or the smallest (Min).
 */
static int32_t policy_limit(const struct autoscale_input *in, const struct autoscale_rules *rules,
			    bool up)
{
	int64_t result, cur = in->current_replicas;
	bool take_max = (rules->select == AUTOSCALE_SELECT_MAX) == up;

	if (rules->select == AUTOSCALE_SELECT_DISABLED)
		return in->current_replicas;
	result = take_max ? INT32_MIN : INT32_MAX;
	for (size_t i = 0; i < rules->n_policies; i++) {
		const struct autoscale_policy *p = &rules->policies[i];
		int64_t start = cur -
				change_in_period(in->now_ms, p->period_seconds, in->up_events,
						 in->n_up_events) +
				change_in_period(in->now_ms, p->period_seconds, in->down_events,
						 in->n_down_events);
		int64_t prop;
		if (p->type == AUTOSCALE_POLICY_PODS)
			prop = up ? start + p->value : start - p->value;
		else if (up)
			prop = (int64_t)ceil((double)start * (1 + p->value / 100.0));
		else
			prop = (int64_t)((double)start * (1 - p->value / 100.0));
		prop = clamp32(prop);
		result = take_max ? (prop > result ? prop : result) : (prop < result ? prop : result);
	}
	return (int32_t)result;
}

/* convertDesiredReplicasWithBehaviorRate: policies, then min/max. */
int autoscale_rate_limit(const struct autoscale_input *in, int32_t desired,
			 struct autoscale_step *ret_step)
{
	struct autoscale_behavior b;
	int32_t cur, limit, bound;
	const char *why;
	int r;

	if (!ret_step || check_input(in) < 0)
		return -EINVAL;
	r = autoscale_resolve(in->spec, &b);
	if (r < 0)
		return r;
	cur = in->current_replicas;
	*ret_step = (struct autoscale_step){ desired, "DesiredWithinRange" };
	if (desired > cur) {
		limit = policy_limit(in, &b.scale_up, true);
		if (limit < cur)
			limit = cur;
		bound = in->spec->max_replicas;
		why = "TooManyReplicas";
		if (bound > limit) {
			bound = limit;
			why = "ScaleUpLimit";
		}
		if (desired > bound)
			*ret_step = (struct autoscale_step){ bound, why };
	} else if (desired < cur) {
		limit = policy_limit(in, &b.scale_down, false);
		if (limit > cur)
			limit = cur;
		bound = in->spec->min_replicas;
		why = "TooFewReplicas";
		if (bound < limit) {
			bound = limit;
			why = "ScaleDownLimit";
		}
		if (desired < bound)
			*ret_step = (struct autoscale_step){ bound, why };
	}
	return 0;
}

/* The cases reconcileAutoscaler settles before looking at metrics. A
 * target at 0 disables the HPA; but 0 because a pause pinned it there is
 * kinfer's own doing, and the end of the pause resumes at minReplicas. */
static bool out_of_range(const struct autoscale_input *in, struct autoscale_result *res)
{
	const struct autoscale_spec *s = in->spec;
	int32_t cur = in->current_replicas;

	if (cur == 0 && s->min_replicas != 0 && !in->state.paused && !in->zero_is_below_min) {
		res->desired = 0;
		res->active = false;
		res->active_reason = res->reason = "ScalingDisabled";
		snprintf(res->message, sizeof(res->message),
			 "scaling is "
			 "disabled since the replica count of the target is "
			 "zero");
	} else if (cur > s->max_replicas) {
		res->desired = s->max_replicas;
		res->limited = true;
		res->limited_reason = res->reason = "TooManyReplicas";
		snprintf(res->message, sizeof(res->message),
			 "Current number "
			 "of replicas above Spec.MaxReplicas");
	} else if (cur < s->min_replicas) {
		res->desired = s->min_replicas;
		res->limited = true;
		res->limited_reason = res->reason = "TooFewReplicas";
		snprintf(res->message, sizeof(res->message),
			 "Current number "
			 "of replicas below Spec.MinReplicas");
	} else {
		return false;
	}
	res->rescale = res->desired != cur;
	return true;
}

/* The rescale reason the HPA puts in its SuccessfulRescale event. */
static void describe(const struct autoscale_input *in, struct autoscale_result *res)
{
	const char *name = res->metric >= 0 ?
				   autoscale_metric_type_name(in->spec->metrics[res->metric].type) :
				   "";

	if (res->recommendation > in->current_replicas)
		snprintf(res->message, sizeof(res->message), "%s above target", name);
	else if (res->recommendation < in->current_replicas)
		snprintf(res->message, sizeof(res->message), "All metrics below target");
	else
		snprintf(res->message, sizeof(res->message), "recommended size matches current size");
}

/*
 * Normalization (normalizeDesiredReplicasWithBehaviors). The first
 * evaluation has no history; the HPA then records the current count as
 * a recommendation first (recordInitialRecommendation), so a scale-down
 * right after start is stabilized: we do the same with a virtual entry.
 */
static int normalize(const struct autoscale_input *in, struct autoscale_result *res)
{
	struct autoscale_input local = *in;
	struct autoscale_recommendation initial = { in->now_ms, in->current_replicas };
	struct autoscale_step st, lim;
	int32_t want;
	int r;

	if (in->n_recommendations == 0) {
		local.recommendations = &initial;
		local.n_recommendations = 1;
	}
	want = res->predicted > res->recommendation ? res->predicted : res->recommendation;
	r = autoscale_stabilize(&local, want, &st);
	if (r == 0)
		r = autoscale_rate_limit(&local, st.replicas, &lim);
	if (r < 0)
		return r;
	res->able_reason = st.reason;
	res->limited = lim.replicas != st.replicas;
	res->limited_reason = lim.reason;
	res->desired = lim.replicas;
	if (res->limited)
		res->reason = lim.reason;
	else if (st.replicas != want)
		res->reason = st.reason;
	else if (want != res->recommendation && want > res->current)
		res->reason = "PredictiveFloor";
	else
		res->reason = "DesiredWithinRange";
	return 0;
}

/*
 * The predictive floor: ordinary least squares through (t, replicas) of
 * the recommendations within the window and the one just made, evaluated
 * lookahead seconds from now. Only a rising line raises, and by at most
 * max_increase_percent (at least one replica), never past maxReplicas.
 * The recorded recommendation stays the metrics' own, so the trend never
 * feeds on its own predictions.
 */
static void predictive_floor(const struct autoscale_input *in, struct autoscale_result *res)
{
	const struct autoscale_predictive *p = &in->spec->predictive;
	int64_t cut = in->now_ms - p->window_seconds * KTIME_MSEC_PER_SEC;
	double sx = 0, sy = 0, sxx = 0, sxy = 0, n = 0, slope, mx, my, y, cap;
	int32_t floor_r;

	res->predicted = 0;
	if (!p->set)
		return;
	for (size_t i = 0; i <= in->n_recommendations; i++) {
		double x, v;
		if (i < in->n_recommendations) {
			if (in->recommendations[i].time_ms <= cut ||
			    in->recommendations[i].time_ms > in->now_ms)
				continue;
			x = (double)(in->recommendations[i].time_ms - in->now_ms) /
			    (double)KTIME_MSEC_PER_SEC;
			v = in->recommendations[i].replicas;
		} else {
			x = 0;
			v = res->recommendation;
		}
		sx += x;
		sy += v;
		sxx += x * x;
		sxy += x * v;
		n++;
	}
	if (n < 3 || n * sxx - sx * sx <= 0)
		return;
	slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
	if (!(slope > 0))
		return;
	mx = sx / n;
	my = sy / n;
	y = my + slope * ((double)p->lookahead_seconds - mx);
	cap = ceil((double)res->recommendation * (1 + p->max_increase_percent / 100.0));
	if (cap < res->recommendation + 1.0)
		cap = res->recommendation + 1.0;
	if (y > cap)
		y = cap;
	if (y > in->spec->max_replicas)
		y = in->spec->max_replicas;
	floor_r = ceil_replicas(y - 1e-9);
	if (floor_r > res->recommendation)
		res->predicted = floor_r;
}

/* Is the window of schedule c open at local_s (local seconds)? It opens
 * at each minute cron matches and stays open duration_seconds. */
static bool schedule_open(const struct autoscale_schedule *c, int64_t local_s)
{
	return cron_prev(&c->cron, local_s, local_s - c->duration_seconds + 1) != INT64_MIN;
}

void autoscale_bounds(const struct autoscale_spec *spec, int64_t now_ms, int32_t *ret_min,
		      int32_t *ret_max, uint32_t *ret_active)
{
	int64_t utc_s;
	int32_t lo, hi;
	uint32_t active = 0;

	if (!spec)
		return;
	lo = spec->min_replicas;
	hi = spec->max_replicas;
	utc_s = now_ms >= 0 ? now_ms / KTIME_MSEC_PER_SEC :
			      -((-now_ms + KTIME_MSEC_PER_SEC - 1) / KTIME_MSEC_PER_SEC);
	for (size_t i = 0; i < spec->n_schedules && i < AUTOSCALE_MAX_SCHEDULES; i++) {
		const struct autoscale_schedule *c = &spec->schedules[i];
		if (!schedule_open(c, utc_s + c->time_zone_offset_seconds))
			continue;
		active |= 1u << i;
		if (c->min_replicas > lo)
			lo = c->min_replicas;
		if (c->max_replicas > hi)
			hi = c->max_replicas;
	}
	if (lo > hi)
		lo = hi;
	if (ret_min)
		*ret_min = lo;
	if (ret_max)
		*ret_max = hi;
	if (ret_active)
		*ret_active = active;
}

/* The paused-replicas annotation: KEDA scales to the count given, even
 * outside min..max, and stops autoscaling; nothing goes to the history,
 * so the autoscaler resumes where it stopped when the annotation goes. */
static void pin(const struct autoscale_input *in, struct autoscale_result *res)
{
	res->paused = true;
	res->state.paused = true;
	res->desired = in->pause->replicas;
	res->rescale = res->desired != res->current;
	res->active = false;
	res->active_reason = res->reason = "Paused";
	snprintf(res->message, sizeof(res->message),
		 "paused at %d replicas "
		 "by the paused-replicas annotation",
		 res->desired);
}

/* doFallback (KEDA pkg/fallback/fallback.go): the replicas by behavior. */
static int32_t fallback_replicas(const struct autoscale_fallback *f, int32_t cur)
{
	switch (f->behavior) {
	case AUTOSCALE_FALLBACK_CURRENT_REPLICAS:
		return cur;
	case AUTOSCALE_FALLBACK_CURRENT_REPLICAS_IF_HIGHER:
		return cur > f->replicas ? cur : f->replicas;
	case AUTOSCALE_FALLBACK_CURRENT_REPLICAS_IF_LOWER:
		return cur < f->replicas ? cur : f->replicas;
	case AUTOSCALE_FALLBACK_STATIC:
	default:
		return f->replicas;
	}
}

/*
 * GetMetricsWithFallback: past failureThreshold failures in a row, KEDA
 * hands the HPA a metric worth fallback.replicas, and the HPA takes the
 * largest over the metrics and applies its behavior and bounds. So here:
 * the fallback's count, or a valid metric's if larger, as the
 * recommendation, then the same normalization as any other.
 */
static int fallback(const struct autoscale_input *in, struct autoscale_result *res)
{
	const struct autoscale_fallback *f = &in->spec->fallback;
	int32_t want = fallback_replicas(f, in->current_replicas);
	static const char *const names[] = { "static", "currentReplicas", "currentReplicasIfHigher",
					     "currentReplicasIfLower" };
	int r;

	if (res->n_invalid < in->spec->n_metrics && res->recommendation > want)
		want = res->recommendation;
	res->hold = false;
	res->fallback = true;
	res->recommendation = want;
	res->record_recommendation = true;
	r = normalize(in, res);
	if (r < 0)
		return r;
	res->active = false;
	res->active_reason = res->reason = "Fallback";
	snprintf(res->message, sizeof(res->message),
		 "metrics missing in %d "
		 "evaluations in a row (failureThreshold %d): fallback to %d "
		 "replicas (behavior %s)",
		 res->state.failures, f->failure_threshold, want, names[f->behavior]);
	return 0;
}

/*
 * Knative's KPA panic mode (pkg/autoscaler/scaling/autoscaler.go Scale):
 * the demand, in replicas, over the ready pods (at least 1) at or above
 * thresholdPercent starts panic, or extends it; panic ends once it has
 * stayed below for a full stable window. While panicking the decision is
 * the larger of the normal one and the demand itself (no scale-up
 * stabilization, no scale-up policies: the KPA has neither), never less
 * than the most asked during this panic nor the current count.
 *
 * kinfer's "short window" is the latest evaluation: its readings are
 * what the pods show now (rates over the last scrape interval), and with
 * panic set the controller evaluates every windowSeconds. The "stable"
 * decision is the HPA path with its own windows.
 */
static void panic_mode(const struct autoscale_input *in, struct autoscale_result *res)
{
	const struct autoscale_panic *p = &in->spec->panic;
	struct autoscale_state *st = &res->state;
	int32_t cur = in->current_replicas, max = in->spec->max_replicas, want;
	size_t ready = 0;
	bool over;

	if (!p->set) {
		st->panic_time_ms = st->panic_start_ms = 0;
		st->max_panic = 0;
		return;
	}
	for (size_t k = 0; k < in->n_pods; k++)
		ready += in->pods[k].state == AUTOSCALE_POD_READY;
	if (ready == 0)
		ready = 1;
	over = (double)res->recommendation * 100.0 >= (double)ready * p->threshold_percent;
	if (over) {
		if (!st->panic_time_ms) {
			st->panic_start_ms = in->now_ms;
			res->panic_started = true;
		}
		st->panic_time_ms = in->now_ms;
	} else if (st->panic_time_ms &&
		   st->panic_time_ms + p->stable_window_seconds * KTIME_MSEC_PER_SEC < in->now_ms) {
		st->panic_time_ms = st->panic_start_ms = 0;
		st->max_panic = 0;
		res->panic_ended = true;
	}
	if (!st->panic_time_ms)
		return;
	res->panicking = true;
	want = res->recommendation > res->desired ? res->recommendation : res->desired;
	if (want > st->max_panic)
		st->max_panic = want;
	else
		want = st->max_panic;
	if (want < cur)
		want = cur;
	if (want > max) {
		want = max;
		res->limited = true;
		res->limited_reason = "TooManyReplicas";
	}
	res->desired = want;
	res->reason = "PanicMode";
	snprintf(res->message, sizeof(res->message),
		 "panic: demand of %d "
		 "replicas is %.0f%% of %zu ready (threshold %d%%)",
		 res->recommendation, 100.0 * res->recommendation / (double)ready, ready,
		 p->threshold_percent);
}

/* The paused-scale-in / paused-scale-out annotations drop one direction
 * of the decision (KEDA sets the HPA's selectPolicy Disabled there);
 * both at once pause like paused-replicas at the current count, but
 * keep recording, as the HPA would. */
static void pause_direction(const struct autoscale_input *in, struct autoscale_result *res)
{
	const struct autoscale_pause *p = in->pause;
	int32_t cur = in->current_replicas;

	if (!p || (!p->scale_in && !p->scale_out))
		return;
	if (p->scale_in && p->scale_out) {
		res->desired = cur;
		res->direction_paused = true;
		res->active = false;
		res->active_reason = res->reason = "Paused";
		snprintf(res->message, sizeof(res->message),
			 "paused at %d "
			 "replicas by the paused-scale-in and "
			 "paused-scale-out annotations",
			 cur);
	} else if (p->scale_in && res->desired < cur) {
		res->desired = cur;
		res->direction_paused = true;
		res->limited = false;
		res->reason = "ScaleInPaused";
		snprintf(res->message, sizeof(res->message),
			 "scale-in paused "
			 "by annotation: holding %d replicas",
			 cur);
	} else if (p->scale_out && res->desired > cur) {
		res->desired = cur;
		res->direction_paused = true;
		res->limited = false;
		res->reason = "ScaleOutPaused";
		snprintf(res->message, sizeof(res->message),
			 "scale-out paused "
			 "by annotation: holding %d replicas",
			 cur);
	}
}

/* The metrics' part of the decision, on the spec in force (local). */
static int decide(const struct autoscale_input *in, struct autoscale_result *res)
{
	int r;

	r = autoscale_replicas_for_metrics(in, res);
	if (r < 0)
		return r;
	res->desired = in->current_replicas;
	if (res->hold) {
		if (res->state.failures < INT32_MAX)
			res->state.failures++;
		if (in->spec->fallback.set &&
		    res->state.failures > in->spec->fallback.failure_threshold)
			return fallback(in, res);
		/*
		 * Inference rule: while the metrics are missing, the current
		 * count is what we recommend, so the scale-down window
		 * starts again when they come back (the HPA would scale down
		 * at once on the first good reading after an outage longer
		 * than its window).
		 */
		res->record_recommendation = true;
		res->recommendation = res->current;
		res->reason = res->active_reason;
		snprintf(res->message, sizeof(res->message),
			 "holding %d "
			 "replicas: %zu of %zu metrics unavailable",
			 res->current, res->n_invalid, in->spec->n_metrics);
		return 0;
	}
	res->state.failures = 0;
	res->record_recommendation = true;
	describe(in, res);
	predictive_floor(in, res);
	r = normalize(in, res);
	if (r == 0)
		panic_mode(in, res);
	if (r == 0 && res->below_activation && res->desired == res->current &&
	    strcmp(res->reason, "DesiredWithinRange") == 0)
		res->reason = "BelowActivationThreshold";
	return r;
}

/*
 * reconcileAutoscaler's decision, with the controls on top. reason is,
 * in order of precedence: Paused; the ScalingActive reason when holding,
 * falling back or disabled; PanicMode; the ScalingLimited reason when
 * limited; the AbleToScale reason when stabilized; else
 * DesiredWithinRange (BelowActivationThreshold when activation kept it).
 */
int autoscale_evaluate(const struct autoscale_input *in, struct autoscale_result *ret_result)
{
	struct autoscale_result res;
	struct autoscale_spec eff;
	struct autoscale_input local;
	int r;

	if (!ret_result || check_input(in) < 0)
		return -EINVAL;
	memset(&res, 0, sizeof(res));
	res.current = in->current_replicas;
	res.metric = -1;
	res.active = true;
	res.active_reason = "ValidMetricFound";
	res.able_reason = "ReadyForNewScale";
	res.limited_reason = "DesiredWithinRange";
	res.state = in->state;
	res.state.paused = false;
	res.min_replicas = in->spec->min_replicas;
	res.max_replicas = in->spec->max_replicas;
	local = *in;
	if (in->spec->n_schedules) {
		/* The spec in force: its bounds raised by the open windows
		 * (copied only then: the copy is a kilobyte). */
		eff = *in->spec;
		autoscale_bounds(in->spec, in->now_ms, &eff.min_replicas, &eff.max_replicas,
				 &res.schedules_active);
		res.min_replicas = eff.min_replicas;
		res.max_replicas = eff.max_replicas;
		local.spec = &eff;
	}
	if (in->pause && in->pause->replicas_set) {
		pin(in, &res);
	} else if (!out_of_range(&local, &res)) {
		r = decide(&local, &res);
		if (r < 0)
			return r;
		pause_direction(in, &res);
		res.rescale = res.desired != res.current;
	}
	*ret_result = res;
	return 0;
}

struct autoscale_history {
	struct autoscale_recommendation *recs;
	size_t n_recs, cap_recs;
	struct autoscale_scale_event *up, *down;
	size_t n_up, cap_up, n_down, cap_down;
	struct autoscale_state state;
};

int autoscale_history_new(struct autoscale_history **ret_history)
{
	struct autoscale_history *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	*ret_history = h;
	return 0;
}

void autoscale_history_free(struct autoscale_history *h)
{
	if (!h)
		return;
	free(h->recs);
	free(h->up);
	free(h->down);
	free(h);
}

/*
 * Make room for one more element of size sz in *arr (n used, *cap
 * allocated). At HISTORY_CAP the oldest element is dropped instead.
 */
static int room(void **arr, size_t *n, size_t *cap, size_t sz)
{
	size_t ncap;
	void *a;

	if (*n < *cap)
		return 0;
	if (*n >= HISTORY_CAP) {
		memmove(*arr, (char *)*arr + sz, (*n - 1) * sz);
		(*n)--;
		return 0;
	}
	ncap = *cap ? *cap * 2 : 16;
	if (ncap > HISTORY_CAP)
		ncap = HISTORY_CAP;
	a = realloc(*arr, ncap * sz);
	if (!a)
		return -ENOMEM;
	*arr = a;
	*cap = ncap;
	return 0;
}

static int push_rec(struct autoscale_history *h, struct autoscale_recommendation rec)
{
	int r = room((void **)&h->recs, &h->n_recs, &h->cap_recs, sizeof(*h->recs));

	if (r < 0)
		return r;
	h->recs[h->n_recs++] = rec;
	return 0;
}

/* The storage half of stabilizeRecommendationWithBehaviors: reuse the
 * last entry older than both windows, else append. */
static int store_recommendation(struct autoscale_history *h, const struct autoscale_behavior *b,
				int64_t keep_ms, int32_t replicas, int64_t now)
{
	int64_t up_cut = now - b->scale_up.stabilization_window_seconds * KTIME_MSEC_PER_SEC;
	int64_t down_cut = now - b->scale_down.stabilization_window_seconds * KTIME_MSEC_PER_SEC;
	long old = -1;

	if (keep_ms > 0 && now - keep_ms < up_cut)
		up_cut = now - keep_ms; /* the predictive window reads them too */

	for (size_t i = 0; i < h->n_recs; i++)
		if (h->recs[i].time_ms < up_cut && h->recs[i].time_ms < down_cut)
			old = (long)i;
	if (old >= 0) {
		h->recs[old] = (struct autoscale_recommendation){ now, replicas };
		return 0;
	}
	return push_rec(h, (struct autoscale_recommendation){ now, replicas });
}

static int32_t longest_period(const struct autoscale_rules *r)
{
	int32_t p = 0;

	for (size_t i = 0; i < r->n_policies; i++)
		if (r->policies[i].period_seconds > p)
			p = r->policies[i].period_seconds;
	return p;
}

/* storeScaleEvent with markScaleEventsOutdated: mark events older than
 * the longest period, reuse the last of them, else append. */
static int store_event(struct autoscale_scale_event **ev, size_t *n, size_t *cap,
		       const struct autoscale_rules *rules, int32_t change, int64_t now)
{
	int64_t cut = now - longest_period(rules) * KTIME_MSEC_PER_SEC;
	struct autoscale_scale_event e = { now, change, false };
	long old = -1;
	int r;

	for (size_t i = 0; i < *n; i++) {
		if ((*ev)[i].time_ms < cut)
			(*ev)[i].outdated = true;
		if ((*ev)[i].outdated)
			old = (long)i;
	}
	if (old >= 0) {
		(*ev)[old] = e;
		return 0;
	}
	r = room((void **)ev, n, cap, sizeof(**ev));
	if (r < 0)
		return r;
	(*ev)[(*n)++] = e;
	return 0;
}

int autoscale_history_record(struct autoscale_history *h, const struct autoscale_spec *spec,
			     const struct autoscale_result *res, int64_t now_ms)
{
	struct autoscale_behavior b;
	int r;

	if (!h || !res || autoscale_spec_check(spec, NULL, 0) < 0)
		return -EINVAL;
	h->state = res->state;
	if (res->paused)
		return 0;
	r = autoscale_resolve(spec, &b);
	if (r == 0 && h->n_recs == 0)
		r = push_rec(h, (struct autoscale_recommendation){ now_ms, res->current });
	if (r == 0 && res->record_recommendation)
		r = store_recommendation(h, &b,
					 spec->predictive.set ? spec->predictive.window_seconds *
									KTIME_MSEC_PER_SEC :
								0,
					 res->recommendation, now_ms);
	if (r == 0 && res->rescale && res->desired > res->current)
		r = store_event(&h->up, &h->n_up, &h->cap_up, &b.scale_up,
				res->desired - res->current, now_ms);
	else if (r == 0 && res->rescale)
		r = store_event(&h->down, &h->n_down, &h->cap_down, &b.scale_down,
				res->current - res->desired, now_ms);
	return r;
}

/* Copy n elements of size sz into a fresh array (NULL when n is 0). */
static int dup_array(const void *src, size_t n, size_t sz, void **ret, size_t *ret_cap)
{
	void *a = NULL;

	if (n > HISTORY_CAP)
		return -E2BIG;
	if (n) {
		if (!src)
			return -EINVAL;
		a = malloc(n * sz);
		if (!a)
			return -ENOMEM;
		memcpy(a, src, n * sz);
	}
	*ret = a;
	*ret_cap = n;
	return 0;
}

int autoscale_history_restore(struct autoscale_history *h,
			      const struct autoscale_recommendation *recs, size_t n_recs,
			      const struct autoscale_scale_event *up, size_t n_up,
			      const struct autoscale_scale_event *down, size_t n_down)
{
	void *r_arr = NULL, *u_arr = NULL, *d_arr = NULL;
	size_t r_cap = 0, u_cap = 0, d_cap = 0;
	int r;

	if (!h)
		return -EINVAL;
	r = dup_array(recs, n_recs, sizeof(*recs), &r_arr, &r_cap);
	if (r < 0)
		goto fail;
	r = dup_array(up, n_up, sizeof(*up), &u_arr, &u_cap);
	if (r < 0)
		goto fail;
	r = dup_array(down, n_down, sizeof(*down), &d_arr, &d_cap);
	if (r < 0)
		goto fail;
	free(h->recs);
	free(h->up);
	free(h->down);
	*h = (struct autoscale_history){ r_arr, n_recs, r_cap,  u_arr, d_arr,
					 n_up,  u_cap,  n_down, d_cap, h->state };
	return 0;
fail:
	free(r_arr);
	free(u_arr);
	free(d_arr);
	return r;
}

void autoscale_history_attach(const struct autoscale_history *h, struct autoscale_input *in)
{
	if (!h || !in)
		return;
	in->recommendations = h->recs;
	in->n_recommendations = h->n_recs;
	in->up_events = h->up;
	in->n_up_events = h->n_up;
	in->down_events = h->down;
	in->n_down_events = h->n_down;
	in->state = h->state;
}
