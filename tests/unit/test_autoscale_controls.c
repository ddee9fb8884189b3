/*
 * autoscale, part two: the controls on top of the HPA core (activation
 * threshold, fallback, pause, panic mode, schedules), run as a second
 * cmocka group of the autoscale unit group. Where the anchor has tests,
 * the case names its source:
 *  - KEDA pkg/fallback/fallback_test.go and doFallback's behaviors
 *    (pkg/fallback/fallback.go);
 *  - Knative pkg/autoscaler/scaling/autoscaler_test.go (the KPA's panic
 *    mode), mapped so: Knative's concurrency per pod is a per-pod
 *    QueueDepth with target 1, its ready pod count the READY pods, its
 *    "panic concurrency" the latest reading (kinfer's short window);
 *  - robfig/cron (the library KEDA's cron scaler uses) for the cron
 *    field rules.
 */
#include "unit.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "autoscale.h"
#include "controls.h"
#include "cron.h"
#include "status.h"

#include <json-c/json.h>

#define NOW 1796632200000LL /* 2026-12-07T08:30:00Z, a Monday */
#define SEC 1000LL
#define MAXPODS 2000

static struct autoscale_pod pods[MAXPODS];

/* QueueDepth at target, min..max, scale-up as fast as Knative allows
 * (x10 per 15 s), scale-down with the HPA's default window. */
static struct autoscale_spec qspec(double target, int32_t min, int32_t max)
{
	struct autoscale_spec s;

	memset(&s, 0, sizeof(s));
	s.min_replicas = min;
	s.max_replicas = max;
	s.n_metrics = 1;
	s.metrics[0] = (struct autoscale_metric_spec){ AUTOSCALE_QUEUE_DEPTH, target };
	s.behavior.scale_up.set_policies = true;
	s.behavior.scale_up.n_policies = 2;
	s.behavior.scale_up.policies[0] = (struct autoscale_policy){ AUTOSCALE_POLICY_PERCENT, 900,
								     15 };
	s.behavior.scale_up.policies[1] = (struct autoscale_policy){ AUTOSCALE_POLICY_PODS, 4, 15 };
	return s;
}

/* n ready pods each with value v (NAN: no value), then unready ones. */
static void set_pods(size_t n, double v, size_t unready)
{
	assert_true(n + unready <= MAXPODS);
	memset(pods, 0, sizeof(pods));
	for (size_t k = 0; k < n + unready; k++) {
		pods[k].state = k < n ? AUTOSCALE_POD_READY : AUTOSCALE_POD_UNREADY;
		if (k < n && !isnan(v)) {
			pods[k].present = 1;
			pods[k].values[0] = v;
		}
	}
}

static struct autoscale_result eval_at(const struct autoscale_spec *s, int32_t current,
				       size_t n_pods, int64_t now, const struct autoscale_state *st,
				       const struct autoscale_pause *pause)
{
	struct autoscale_input in;
	struct autoscale_result res;

	memset(&in, 0, sizeof(in));
	in.spec = s;
	in.current_replicas = current;
	in.pods = pods;
	in.n_pods = n_pods;
	in.now_ms = now;
	in.pause = pause;
	if (st)
		in.state = *st;
	assert_int_equal(autoscale_evaluate(&in, &res), 0);
	return res;
}

/* One evaluation with a history, recorded as the controller does. */
static struct autoscale_result step(struct autoscale_history *h, const struct autoscale_spec *s,
				    int32_t current, size_t n_pods, int64_t now,
				    const struct autoscale_pause *pause)
{
	struct autoscale_input in;
	struct autoscale_result res;

	memset(&in, 0, sizeof(in));
	in.spec = s;
	in.current_replicas = current;
	in.pods = pods;
	in.n_pods = n_pods;
	in.now_ms = now;
	in.pause = pause;
	autoscale_history_attach(h, &in);
	assert_int_equal(autoscale_evaluate(&in, &res), 0);
	assert_int_equal(autoscale_history_record(h, s, &res, now), 0);
	return res;
}

/* ---- activation threshold (KEDA activationThreshold) ------------------ */

static void activation_at_the_floor(void **state)
{
	struct autoscale_spec s = qspec(1, 1, 10);
	struct autoscale_result r;
	(void)state;

	s.activation[0] = 3;
	/* At minReplicas, 2 waiting (2x the target) is not above 3: stay. */
	set_pods(1, 2, 0);
	r = eval_at(&s, 1, 1, NOW, NULL, NULL);
	assert_int_equal(r.desired, 1);
	assert_true(r.below_activation);
	assert_string_equal(r.reason, "BelowActivationThreshold");
	/* Above the activation, the target decides how far: 4. */
	set_pods(1, 4, 0);
	r = eval_at(&s, 1, 1, NOW, NULL, NULL);
	assert_int_equal(r.desired, 4);
	assert_false(r.below_activation);
	/* Above the floor the activation does not apply: 2 pods at 2 -> 4. */
	set_pods(2, 2, 0);
	r = eval_at(&s, 2, 2, NOW, NULL, NULL);
	assert_int_equal(r.desired, 4);
	/* Exactly at the activation is not above it (KEDA: value > threshold). */
	set_pods(1, 3, 0);
	r = eval_at(&s, 1, 1, NOW, NULL, NULL);
	assert_int_equal(r.desired, 1);
}

static void activation_from_zero(void **state)
{
	struct autoscale_spec s = qspec(1000, 0, 10);
	struct autoscale_service sv = { 1, { 500 } };
	struct autoscale_input in;
	struct autoscale_result r;
	(void)state;

	s.metrics[0].type = AUTOSCALE_LATENCY_P99;
	s.activation[0] = 600;
	memset(&in, 0, sizeof(in));
	in.spec = &s;
	in.service = &sv;
	in.now_ms = NOW;
	/* From 0: 500 ms would ask for ceil(0.5) = 1, but is below 600. */
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	assert_int_equal(r.desired, 0);
	assert_true(r.below_activation);
	/* Default activation 0 (KEDA's): any value above 0 activates. */
	s.activation[0] = 0;
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	assert_int_equal(r.desired, 1);
	sv.values[0] = 700;
	s.activation[0] = 600;
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	assert_int_equal(r.desired, 1);
	/* A negative activation is refused. */
	s.activation[0] = -1;
	assert_int_equal(autoscale_evaluate(&in, &r), -EINVAL);
}

/* ---- fallback (KEDA) ------------------------------------------------- */

static struct autoscale_spec fspec(int32_t threshold, int32_t replicas,
				   enum autoscale_fallback_behavior b)
{
	struct autoscale_spec s = qspec(5, 1, 20);

	s.fallback = (struct autoscale_fallback){ true, threshold, replicas, b };
	return s;
}

/* fallback_test.go: "should reset the health status when scaler metrics
 * are available", "should propagate the error when fallback is
 * disabled", "should bump the number of failures when metrics call
 * fails", "should return a normalised metric when number of failures
 * are beyond threshold". */
static void keda_fallback_cases(void **state)
{
	struct autoscale_spec s = fspec(3, 10, AUTOSCALE_FALLBACK_STATIC);
	struct autoscale_spec off = qspec(5, 1, 20);
	struct autoscale_state st = { 0 };
	struct autoscale_result r;
	(void)state;

	/* Reset: 5 failures, metrics back: 0, and the metric decides. */
	st.failures = 5;
	set_pods(3, 6, 0);
	r = eval_at(&s, 3, 3, NOW, &st, NULL);
	assert_int_equal(r.state.failures, 0);
	assert_false(r.fallback);
	assert_true(r.active);
	/* Disabled: the error stands, kinfer holds (its default). */
	set_pods(3, NAN, 0);
	st.failures = 7;
	r = eval_at(&off, 3, 3, NOW, &st, NULL);
	assert_true(r.hold);
	assert_false(r.fallback);
	assert_int_equal(r.desired, 3);
	assert_false(r.active);
	/* Bump: 0 -> 1, no fallback yet. */
	st.failures = 0;
	r = eval_at(&s, 3, 3, NOW, &st, NULL);
	assert_int_equal(r.state.failures, 1);
	assert_true(r.hold);
	assert_int_equal(r.desired, 3);
	/* Beyond: 3 -> 4 > failureThreshold 3: fallback to 10 replicas. */
	st.failures = 3;
	r = eval_at(&s, 3, 3, NOW, &st, NULL);
	assert_int_equal(r.state.failures, 4);
	assert_true(r.fallback);
	assert_false(r.hold);
	assert_int_equal(r.desired, 10);
	assert_false(r.active);
	assert_string_equal(r.active_reason, "Fallback");
	assert_string_equal(r.reason, "Fallback");
	assert_non_null(strstr(r.message, "fallback to 10 replicas"));
}

/* fallback_test.go: "should return error when fallback is enabled but
 * scaledobject has invalid parameter" (failureThreshold -3): kinfer
 * refuses the spec instead. */
static void keda_fallback_invalid(void **state)
{
	struct autoscale_spec s = fspec(-3, 10, AUTOSCALE_FALLBACK_STATIC);
	char why[160];
	(void)state;

	assert_int_equal(autoscale_spec_check(&s, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "failureThreshold"));
	s = fspec(3, -1, AUTOSCALE_FALLBACK_STATIC);
	assert_int_equal(autoscale_spec_check(&s, why, sizeof(why)), -EINVAL);
	s = fspec(3, 1, (enum autoscale_fallback_behavior)9);
	assert_int_equal(autoscale_spec_check(&s, why, sizeof(why)), -EINVAL);
}

/* doFallback's four behaviors with fallback.replicas 10. */
static void keda_fallback_behaviors(void **state)
{
	static const struct {
		enum autoscale_fallback_behavior b;
		int32_t current, want;
	} cases[] = {
		{ AUTOSCALE_FALLBACK_STATIC, 5, 10 },
		{ AUTOSCALE_FALLBACK_STATIC, 12, 10 },
		{ AUTOSCALE_FALLBACK_CURRENT_REPLICAS, 5, 5 },
		{ AUTOSCALE_FALLBACK_CURRENT_REPLICAS, 12, 12 },
		{ AUTOSCALE_FALLBACK_CURRENT_REPLICAS_IF_HIGHER, 5, 10 },
		{ AUTOSCALE_FALLBACK_CURRENT_REPLICAS_IF_HIGHER, 12, 12 },
		{ AUTOSCALE_FALLBACK_CURRENT_REPLICAS_IF_LOWER, 5, 5 },
		{ AUTOSCALE_FALLBACK_CURRENT_REPLICAS_IF_LOWER, 12, 10 },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct autoscale_spec s = fspec(0, 10, cases[i].b);
		struct autoscale_result r;
		/* Down without waiting: the scale-down rule allows it. */
		s.behavior.scale_down.set_window = true;
		s.behavior.scale_down.stabilization_window_seconds = 0;
		s.behavior.scale_down.set_policies = true;
		s.behavior.scale_down.n_policies = 1;
		s.behavior.scale_down.policies[0] = (struct autoscale_policy){
			AUTOSCALE_POLICY_PERCENT, 100, 15
		};
		set_pods((size_t)cases[i].current, NAN, 0);
		r = eval_at(&s, cases[i].current, (size_t)cases[i].current, NOW, NULL, NULL);
		assert_true(r.fallback);
		assert_int_equal(r.recommendation, cases[i].want);
		assert_int_equal(r.desired, cases[i].want);
	}
}

/* KEDA's fallback goes through the HPA: its behavior and bounds apply.
 * With kinfer's default 300 s scale-down window a lower fallback waits;
 * a fallback above maxReplicas is capped. And with a history: three
 * holds, then fallback; metrics back: the count resets. */
static void fallback_through_behavior(void **state)
{
	struct autoscale_spec s = fspec(3, 2, AUTOSCALE_FALLBACK_STATIC);
	struct autoscale_history *h;
	struct autoscale_result r;
	(void)state;

	s.behavior = (struct autoscale_behavior){ 0 };
	assert_int_equal(autoscale_history_new(&h), 0);
	set_pods(8, NAN, 0);
	for (int i = 0; i < 3; i++) {
		r = step(h, &s, 8, 8, NOW + i * 15 * SEC, NULL);
		assert_true(r.hold);
		assert_int_equal(r.desired, 8);
	}
	r = step(h, &s, 8, 8, NOW + 45 * SEC, NULL);
	assert_true(r.fallback);
	assert_int_equal(r.recommendation, 2);
	assert_int_equal(r.desired, 8); /* stabilized: the window holds 8 */
	assert_string_equal(r.able_reason, "ScaleDownStabilized");
	/* After the window, one pod a minute (the default policy). */
	r = step(h, &s, 8, 8, NOW + 400 * SEC, NULL);
	assert_true(r.fallback);
	assert_int_equal(r.desired, 7);
	/* Metrics come back: failures reset, the metric decides again. */
	set_pods(7, 5, 0);
	r = step(h, &s, 7, 7, NOW + 415 * SEC, NULL);
	assert_false(r.fallback);
	assert_int_equal(r.state.failures, 0);
	autoscale_history_free(h);
	/* Capped by maxReplicas. */
	s = fspec(0, 50, AUTOSCALE_FALLBACK_STATIC);
	set_pods(3, NAN, 0);
	r = eval_at(&s, 3, 3, NOW, NULL, NULL);
	assert_true(r.fallback);
	assert_int_equal(r.desired, 20);
	assert_true(r.limited);
}

/* ---- pause (KEDA's paused-replicas, paused-scale-in/out) --------------- */

static void pause_replicas(void **state)
{
	struct autoscale_spec s = qspec(5, 1, 10);
	struct autoscale_pause p = { true, 7, false, false };
	struct autoscale_history *h;
	struct autoscale_input in;
	struct autoscale_result r;
	size_t n_recs;
	(void)state;

	assert_int_equal(autoscale_history_new(&h), 0);
	set_pods(3, 20, 0); /* would scale up to 12 -> capped at 10 */
	r = step(h, &s, 3, 3, NOW, NULL);
	assert_int_equal(r.desired, 10);
	memset(&in, 0, sizeof(in));
	autoscale_history_attach(h, &in);
	n_recs = in.n_recommendations;
	/* Pinned at 7, whatever the metrics say; nothing recorded. */
	r = step(h, &s, 10, 3, NOW + 15 * SEC, &p);
	assert_true(r.paused);
	assert_int_equal(r.desired, 7);
	assert_true(r.rescale);
	assert_false(r.active);
	assert_string_equal(r.active_reason, "Paused");
	autoscale_history_attach(h, &in);
	assert_int_equal(in.n_recommendations, n_recs);
	assert_int_equal(in.n_down_events, 0);
	/* Outside min..max too, as KEDA does. */
	p.replicas = 0;
	r = step(h, &s, 7, 3, NOW + 30 * SEC, &p);
	assert_int_equal(r.desired, 0);
	/* Pinned at 0, then resumed: back to minReplicas, not the HPA's
	 * "ScalingDisabled" of a target someone scaled to 0. */
	{
		struct autoscale_history *h0;
		assert_int_equal(autoscale_history_new(&h0), 0);
		r = step(h0, &s, 3, 0, NOW, &p);
		assert_int_equal(r.desired, 0);
		r = step(h0, &s, 0, 0, NOW + 15 * SEC, NULL);
		assert_int_equal(r.desired, 1);
		assert_string_equal(r.reason, "TooFewReplicas");
		/* At 0 again, not after a pause: the HPA's rule. */
		r = step(h0, &s, 0, 0, NOW + 30 * SEC, NULL);
		assert_int_equal(r.desired, 0);
		autoscale_history_free(h0);
		r = eval_at(&s, 0, 0, NOW, NULL, NULL);
		assert_string_equal(r.reason, "ScalingDisabled");
	}
	/* Resumed with the history kept: the 300 s scale-down window still
	 * holds the recommendation of 10 from before the pause. */
	set_pods(7, 1, 0);
	r = step(h, &s, 7, 7, NOW + 45 * SEC, NULL);
	assert_false(r.paused);
	assert_true(r.active);
	assert_int_equal(r.desired, 7);
	assert_string_equal(r.reason, "ScaleDownStabilized");
	autoscale_history_free(h);
}

static void pause_one_direction(void **state)
{
	struct autoscale_spec s = qspec(5, 1, 10);
	struct autoscale_pause in_p = { false, 0, true, false };
	struct autoscale_pause out_p = { false, 0, false, true };
	struct autoscale_pause both = { false, 0, true, true };
	struct autoscale_result r;
	(void)state;

	s.behavior.scale_down.set_window = true; /* down at once */
	s.behavior.scale_down.stabilization_window_seconds = 0;
	/* Down is wanted: paused-scale-in holds, paused-scale-out lets it. */
	set_pods(4, 1, 0);
	r = eval_at(&s, 4, 4, NOW, NULL, &in_p);
	assert_int_equal(r.desired, 4);
	assert_true(r.direction_paused);
	assert_string_equal(r.reason, "ScaleInPaused");
	assert_true(r.active);
	r = eval_at(&s, 4, 4, NOW, NULL, &out_p);
	assert_int_equal(r.desired, 3);
	assert_false(r.direction_paused);
	/* Up is wanted: the other way round. */
	set_pods(4, 10, 0);
	r = eval_at(&s, 4, 4, NOW, NULL, &in_p);
	assert_int_equal(r.desired, 8);
	r = eval_at(&s, 4, 4, NOW, NULL, &out_p);
	assert_int_equal(r.desired, 4);
	assert_string_equal(r.reason, "ScaleOutPaused");
	/* Both: paused at the current count. */
	r = eval_at(&s, 4, 4, NOW, NULL, &both);
	assert_int_equal(r.desired, 4);
	assert_false(r.active);
	assert_string_equal(r.active_reason, "Paused");
	/* Out of range still wins (the HPA's bounds come before behavior). */
	r = eval_at(&s, 12, 4, NOW, NULL, &in_p);
	assert_int_equal(r.desired, 10);
}

/* ---- panic mode (Knative KPA) ---------------------------------------- */

static struct autoscale_spec pspec(void)
{
	struct autoscale_spec s = qspec(1, 1, MAXPODS);

	s.panic = (struct autoscale_panic){ true, 6, 200, 60 };
	/* kinfer's default scale-up policies: panic must bypass them. */
	s.behavior.scale_up.set_policies = false;
	/* Knative decides on the exact ratio: no tolerance. */
	s.set_tolerance = true;
	s.tolerance = 0;
	return s;
}

/* TestAutoscalerPanicModeExponentialTrackAndStabilize: demand grows 6x
 * per step; each step scales to it at once, and panic time follows. */
static void knative_panic_exponential(void **state)
{
	struct autoscale_spec s = pspec();
	struct autoscale_state st = { 0 };
	struct autoscale_result r;
	int64_t tm = NOW;
	(void)state;

	set_pods(1, 6, 0);
	r = eval_at(&s, 1, 1, tm, &st, NULL);
	assert_int_equal(r.desired, 6);
	assert_true(r.panic_started);
	assert_true(r.panicking);
	assert_string_equal(r.reason, "PanicMode");
	assert_int_equal(r.state.panic_time_ms, tm);
	st = r.state;
	set_pods(6, 6, 0); /* 36 in total */
	r = eval_at(&s, 6, 6, tm, &st, NULL);
	assert_int_equal(r.desired, 36);
	assert_false(r.panic_started);
	assert_int_equal(r.state.panic_time_ms, tm);
	st = r.state;
	tm += SEC;
	set_pods(36, 6, 0); /* 216 */
	r = eval_at(&s, 36, 36, tm, &st, NULL);
	assert_int_equal(r.desired, 216);
	assert_int_equal(r.state.panic_time_ms, tm);
	st = r.state;
	set_pods(216, 6, 0); /* 1296 */
	r = eval_at(&s, 216, 216, tm, &st, NULL);
	assert_int_equal(r.desired, 1296);
	st = r.state;
	tm += SEC;
	set_pods(1296, 1, 0); /* stable at the target */
	r = eval_at(&s, 1296, 1296, tm, &st, NULL);
	assert_int_equal(r.desired, 1296);
	assert_true(r.panicking);
}

/* TestAutoscalerExtendPanicWindow: still surging half a stable window
 * later moves the panic time. */
static void knative_extend_panic_window(void **state)
{
	struct autoscale_spec s = pspec();
	struct autoscale_state st = { 0 };
	struct autoscale_result r;
	int64_t start = NOW, tm;
	(void)state;

	set_pods(10, 2.5, 0); /* 25 over 10 ready: 250% */
	r = eval_at(&s, 10, 10, start, &st, NULL);
	assert_int_equal(r.desired, 25);
	assert_int_equal(r.state.panic_time_ms, start);
	st = r.state;
	tm = start + 30 * SEC;
	set_pods(40, 2, 0); /* 80 over 40: 200%, still panicking */
	r = eval_at(&s, 40, 40, tm, &st, NULL);
	assert_int_equal(r.desired, 80);
	assert_int_equal(r.state.panic_time_ms, tm);
	assert_int_equal(r.state.panic_start_ms, start);
}

/* TestAutoscalerUnpanicAfterSlowIncrease: below the threshold the panic
 * time stays; a full stable window after it, panic ends and the normal
 * decision takes over. (Knative's stable value there is a 60 s average;
 * kinfer's normal decision is the HPA path on the same reading.) */
static void knative_unpanic_after_slow_increase(void **state)
{
	struct autoscale_spec s = pspec();
	struct autoscale_state st = { 0 };
	struct autoscale_result r;
	int64_t start = NOW, tm;
	(void)state;

	set_pods(10, 2.5, 0);
	r = eval_at(&s, 10, 10, start, &st, NULL);
	assert_int_equal(r.desired, 25);
	st = r.state;
	tm = start + 30 * SEC;
	set_pods(40, 41.0 / 40, 0); /* 41 over 40: not over 200% */
	r = eval_at(&s, 40, 40, tm, &st, NULL);
	assert_int_equal(r.desired, 41);
	assert_true(r.panicking);
	assert_int_equal(r.state.panic_time_ms, start);
	st = r.state;
	tm += 30 * SEC + 2 * SEC; /* past start + stable window */
	set_pods(55, 56.0 / 55, 0);
	r = eval_at(&s, 55, 55, tm, &st, NULL);
	assert_false(r.panicking);
	assert_true(r.panic_ended);
	assert_int_equal(r.state.panic_time_ms, 0);
	assert_int_equal(r.state.max_panic, 0);
	assert_int_equal(r.desired, 56);
	assert_string_equal(r.reason, "DesiredWithinRange");
}

/* The KPA "does not scale down while in panic mode" (Scale: "Skipping
 * pod count decrease"), and the most asked during a panic stays. */
static void knative_no_scale_down_in_panic(void **state)
{
	struct autoscale_spec s = pspec();
	struct autoscale_state st = { 0 };
	struct autoscale_result r;
	(void)state;

	s.behavior.scale_down.set_window = true;
	s.behavior.scale_down.stabilization_window_seconds = 0;
	s.behavior.scale_down.set_policies = true;
	s.behavior.scale_down.n_policies = 1;
	s.behavior.scale_down.policies[0] = (struct autoscale_policy){ AUTOSCALE_POLICY_PERCENT,
								       100, 15 };
	st.panic_time_ms = st.panic_start_ms = NOW - 5 * SEC;
	st.max_panic = 8;
	set_pods(5, 0.2, 0); /* 1 replica's worth */
	r = eval_at(&s, 5, 5, NOW, &st, NULL);
	assert_true(r.panicking);
	assert_int_equal(r.desired, 8);
	r = eval_at(&s, 10, 5, NOW, &st, NULL);
	assert_int_equal(r.desired, 10);
	/* Without panic set, the same reading scales down. */
	s.panic.set = false;
	r = eval_at(&s, 5, 5, NOW, &st, NULL);
	assert_int_equal(r.desired, 1);
	assert_int_equal(r.state.panic_time_ms, 0);
	/* Capped by maxReplicas. */
	s = pspec();
	s.max_replicas = 20;
	set_pods(2, 50, 0);
	r = eval_at(&s, 2, 2, NOW, NULL, NULL);
	assert_int_equal(r.desired, 20);
	assert_true(r.limited);
	/* Knative's bounds (panic-threshold-percentage 110..1000). */
	s.panic.threshold_percent = 100;
	assert_int_equal(autoscale_spec_check(&s, NULL, 0), -EINVAL);
	s.panic.threshold_percent = 200;
	s.panic.window_seconds = 61;
	assert_int_equal(autoscale_spec_check(&s, NULL, 0), -EINVAL);
}

/* ---- schedules (KEDA cron / AIBrix) ------------------------------------ */

static void cron_expressions(void **state)
{
	struct cron_expr c;
	char why[200];
	(void)state;

	/* Weekday mornings: Monday 2026-12-07 09:00 UTC matches, Saturday not. */
	assert_int_equal(cron_parse("0 9 * * MON-FRI", &c, why, sizeof(why)), 0);
	assert_true(cron_matches(&c, 1796634000));
	assert_false(cron_matches(&c, 1796634000 + 60));
	assert_false(cron_matches(&c, 1796634000 - 2 * 86400));
	/* Steps, lists, ranges; 7 is Sunday too. */
	assert_int_equal(cron_parse("*/15 0-6,22 1 JAN,feb 7", &c, why, sizeof(why)), 0);
	assert_int_equal(c.minutes, (1ULL << 0) | (1ULL << 15) | (1ULL << 30) | (1ULL << 45));
	assert_int_equal(c.weekdays, 1);
	/* Day of month and day of week both given: either matches (Vixie
	 * cron, robfig/cron). 2026-02-28 is a Saturday. */
	assert_int_equal(cron_parse("59 23 1 * SAT", &c, why, sizeof(why)), 0);
	assert_true(cron_matches(&c, 1772323140));
	assert_int_equal(cron_parse("59 23 1 * *", &c, why, sizeof(why)), 0);
	assert_false(cron_matches(&c, 1772323140));
	/* Leap day. */
	assert_int_equal(cron_parse("0 12 29 2 *", &c, why, sizeof(why)), 0);
	assert_true(cron_matches(&c, 1709208000));
	assert_int_equal(cron_parse("@daily", &c, why, sizeof(why)), 0);
	assert_true(cron_matches(&c, 1796601600)); /* 2026-12-07T00:00Z */
	/* Bad ones name the field. */
	assert_int_equal(cron_parse("60 * * * *", &c, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "minute"));
	assert_int_equal(cron_parse("0 9 * * MON-FRI extra", &c, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "five fields"));
	assert_int_equal(cron_parse("0 9 * 13 *", &c, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "month"));
	assert_int_equal(cron_parse("0 9 5-1 * *", &c, why, sizeof(why)), -EINVAL);
	assert_int_equal(cron_parse("*/0 * * * *", &c, why, sizeof(why)), -EINVAL);
	assert_int_equal(cron_parse("", &c, why, sizeof(why)), -EINVAL);
	assert_int_equal(cron_parse(NULL, &c, why, sizeof(why)), -EINVAL);
}

/* cron_prev skips what cannot match, and agrees with a minute-by-minute
 * search over a week for a mix of expressions. */
static void cron_previous(void **state)
{
	static const char *const exprs[] = { "0 9 * * 1-5", "*/15 * * * *", "30 22 1 * SAT",
					     "0 0 29 2 *",  "5 4 * * SUN",  "@hourly" };
	struct cron_expr c;
	(void)state;

	for (size_t e = 0; e < sizeof(exprs) / sizeof(exprs[0]); e++) {
		assert_int_equal(cron_parse(exprs[e], &c, NULL, 0), 0);
		for (int64_t t = 1796632200 - 3 * 86400; t < 1796632200 + 3 * 86400; t += 7919) {
			int64_t lo = t - 7 * 86400, want = INT64_MIN;
			for (int64_t m = t / 60 * 60; m >= lo; m -= 60)
				if (cron_matches(&c, m)) {
					want = m;
					break;
				}
			assert_true(cron_prev(&c, t, lo) == want);
		}
	}
	assert_int_equal(cron_parse("0 9 * * 1-5", &c, NULL, 0), 0);
	assert_true(cron_prev(&c, 1796634000 + 59, 1796634000) == 1796634000);
	assert_true(cron_prev(&c, 1796634000 - 1, 1796634000 - 3600) == INT64_MIN);
	assert_true(cron_prev(NULL, 0, 0) == INT64_MIN);
}

static void time_zones(void **state)
{
	int32_t off = 1;
	char why[300];
	(void)state;

	assert_int_equal(cron_tz_parse("UTC", &off, why, sizeof(why)), 0);
	assert_int_equal(off, 0);
	assert_int_equal(cron_tz_parse("UTC+05:30", &off, why, sizeof(why)), 0);
	assert_int_equal(off, 5 * 3600 + 1800);
	assert_int_equal(cron_tz_parse("-08:00", &off, why, sizeof(why)), 0);
	assert_int_equal(off, -8 * 3600);
	assert_int_equal(cron_tz_parse("Europe/Berlin", &off, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "daylight saving"));
	assert_int_equal(cron_tz_parse("UTC+15:00", &off, why, sizeof(why)), -EINVAL);
	assert_int_equal(cron_tz_parse("UTC+1", &off, why, sizeof(why)), -EINVAL);
}

/* Weekday mornings in UTC+01:00: floor 4 from 09:00 for 8 hours; batch
 * nights: cap 20 from 22:00 for 6 hours. */
static struct autoscale_spec sspec(void)
{
	struct autoscale_spec s = qspec(5, 1, 10);

	s.n_schedules = 2;
	s.schedules[0].time_zone_offset_seconds = 3600;
	s.schedules[1].time_zone_offset_seconds = 3600;
	assert_int_equal(cron_parse("0 9 * * 1-5", &s.schedules[0].cron, NULL, 0), 0);
	s.schedules[0].duration_seconds = 8 * 3600;
	s.schedules[0].min_replicas = 4;
	s.schedules[0].max_replicas = -1;
	assert_int_equal(cron_parse("0 22 * * *", &s.schedules[1].cron, NULL, 0), 0);
	s.schedules[1].duration_seconds = 6 * 3600;
	s.schedules[1].min_replicas = -1;
	s.schedules[1].max_replicas = 20;
	return s;
}

static void schedule_bounds(void **state)
{
	struct autoscale_spec s = sspec();
	int32_t lo, hi;
	uint32_t act;
	struct autoscale_result r;
	(void)state;

	/* 08:30 UTC = 09:30 local, Monday: the morning window is open. */
	autoscale_bounds(&s, NOW, &lo, &hi, &act);
	assert_int_equal(lo, 4);
	assert_int_equal(hi, 10);
	assert_int_equal(act, 1);
	/* 07:59 UTC = 08:59 local: not yet. */
	autoscale_bounds(&s, NOW - 31 * 60 * SEC, &lo, &hi, &act);
	assert_int_equal(lo, 1);
	assert_int_equal(act, 0);
	/* 15:59 UTC = 16:59 local: still; 16:00 UTC = 17:00: closed. */
	autoscale_bounds(&s, NOW + (7 * 3600 + 29 * 60) * SEC, &lo, &hi, &act);
	assert_int_equal(lo, 4);
	autoscale_bounds(&s, NOW + (7 * 3600 + 30 * 60) * SEC, &lo, &hi, &act);
	assert_int_equal(lo, 1);
	/* Saturday morning: closed. */
	autoscale_bounds(&s, NOW - 2 * 86400 * SEC, &lo, &hi, &act);
	assert_int_equal(lo, 1);
	/* 21:30 UTC = 22:30 local: the batch night raises the cap. */
	autoscale_bounds(&s, NOW + 13 * 3600 * SEC, &lo, &hi, &act);
	assert_int_equal(hi, 20);
	assert_int_equal(act, 2);
	/* Opening the window lifts a quiet service to the floor at once
	 * (the HPA's TooFewReplicas), and the result shows the bounds. */
	set_pods(1, 0, 0);
	r = eval_at(&s, 1, 1, NOW, NULL, NULL);
	assert_int_equal(r.desired, 4);
	assert_int_equal(r.min_replicas, 4);
	assert_string_equal(r.reason, "TooFewReplicas");
	/* In the night window load may take it past 10. */
	set_pods(10, 15, 0);
	r = eval_at(&s, 10, 10, NOW + 13 * 3600 * SEC, NULL, NULL);
	assert_int_equal(r.desired, 20);
	assert_int_equal(r.max_replicas, 20);
	/* A window that closes with more than the cap: back to it. */
	r = eval_at(&s, 20, 10, NOW + 19 * 3600 * SEC, NULL, NULL);
	assert_int_equal(r.desired, 10);
	assert_string_equal(r.reason, "TooManyReplicas");
	/* Checks: a floor above the cap in its window, too long a window. */
	s.schedules[0].min_replicas = 11;
	assert_int_equal(autoscale_spec_check(&s, NULL, 0), -EINVAL);
	s = sspec();
	s.schedules[0].duration_seconds = 8 * 86400;
	assert_int_equal(autoscale_spec_check(&s, NULL, 0), -EINVAL);
	s = sspec();
	s.schedules[0].min_replicas = -1;
	assert_int_equal(autoscale_spec_check(&s, NULL, 0), -EINVAL);
}

/* ---- reading the controls from spec.scaling and the annotations -------- */

static int read_json(const char *text, struct autoscale_spec *s, char *err, size_t errlen)
{
	json_object *o = json_tokener_parse(text);
	int r;

	assert_non_null(o);
	memset(s, 0, sizeof(*s));
	s->n_metrics = 1;
	r = controls_read(o, s, err, errlen);
	json_object_put(o);
	return r;
}

static void controls_from_json(void **state)
{
	struct autoscale_spec s;
	struct autoscale_pause p;
	char err[300];
	json_object *a;
	(void)state;

	assert_int_equal(read_json("{\"metrics\":[{\"type\":\"QueueDepth\",\"target\":2,"
				   "\"activationThreshold\":3.5}],"
				   "\"fallback\":{\"failureThreshold\":3,\"replicas\":6},"
				   "\"behavior\":{\"panic\":{}},"
				   "\"schedules\":[{\"cron\":\"@daily\",\"timeZone\":\"UTC-05:00\","
				   "\"durationSeconds\":600,\"minReplicas\":2}]}",
				   &s, err, sizeof(err)),
			 0);
	assert_true(s.activation[0] == 3.5);
	assert_true(s.fallback.set);
	assert_int_equal(s.fallback.behavior, AUTOSCALE_FALLBACK_STATIC);
	assert_true(s.panic.set);
	assert_int_equal(s.panic.window_seconds, 6);
	assert_int_equal(s.panic.threshold_percent, 200);
	assert_int_equal(s.panic.stable_window_seconds, 60);
	assert_int_equal(s.n_schedules, 1);
	assert_int_equal(s.schedules[0].time_zone_offset_seconds, -5 * 3600);
	assert_int_equal(s.schedules[0].max_replicas, -1);
	assert_int_equal(read_json("{\"fallback\":{\"replicas\":6}}", &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "spec.scaling.fallback.failureThreshold is missing");
	assert_int_equal(read_json("{\"behavior\":{\"panic\":{\"windowSeconds\":120}}}", &s, err,
				   sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "spec.scaling.behavior.panic.windowSeconds must be <= "
				 "stableWindowSeconds");
	assert_int_equal(read_json("{\"schedules\":[{\"cron\":\"* * *\",\"timeZone\":\"UTC\","
				   "\"durationSeconds\":600,\"minReplicas\":2}]}",
				   &s, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "spec.scaling.schedules[0].cron: want five fields"));
	assert_int_equal(read_json("{\"metrics\":[{\"activationThreshold\":\"x\"}]}", &s, err,
				   sizeof(err)),
			 -EINVAL);
	/* Annotations. */
	a = json_tokener_parse("{\"kinfer.io/paused\":\"true\",\"other\":\"x\"}");
	assert_int_equal(controls_pause(a, 5, &p, err, sizeof(err)), 0);
	assert_true(p.replicas_set);
	assert_int_equal(p.replicas, 5);
	json_object_put(a);
	a = json_tokener_parse("{\"kinfer.io/paused-replicas\":\"2\","
			       "\"kinfer.io/paused\":\"true\"}");
	assert_int_equal(controls_pause(a, 5, &p, err, sizeof(err)), 0);
	assert_int_equal(p.replicas, 2); /* paused-replicas wins, as in KEDA */
	json_object_put(a);
	a = json_tokener_parse("{\"kinfer.io/paused-replicas\":\"-1\"}");
	assert_int_equal(controls_pause(a, 5, &p, err, sizeof(err)), -EINVAL);
	assert_false(p.replicas_set);
	json_object_put(a);
	assert_int_equal(controls_pause(NULL, 5, &p, err, sizeof(err)), 0);
	assert_false(p.replicas_set || p.scale_in || p.scale_out);
}

/* The status a decision with controls gives (status.scaling, conditions). */
static void controls_in_status(void **state)
{
	struct autoscale_spec s = fspec(0, 6, AUTOSCALE_FALLBACK_STATIC);
	struct autoscale_pause in_p = { false, 0, true, false };
	struct status_scaling st;
	struct autoscale_result r;
	(void)state;

	set_pods(3, NAN, 0);
	r = eval_at(&s, 3, 3, NOW, NULL, NULL);
	memset(&st, 0, sizeof(st));
	st.active = true;
	controls_status(&s, &r, &st);
	assert_false(st.active);
	assert_string_equal(st.active_reason, "Fallback");
	assert_int_equal(st.failures, 1);
	assert_int_equal(st.min_replicas, 1);
	assert_int_equal(st.max_replicas, 20);
	assert_false(st.panic_set);
	s.behavior.scale_down.set_window = true; /* down at once */
	s.behavior.scale_down.stabilization_window_seconds = 0;
	set_pods(4, 0.1, 0);
	r = eval_at(&s, 4, 4, NOW, NULL, &in_p);
	memset(&st, 0, sizeof(st));
	st.active = true;
	controls_status(&s, &r, &st);
	assert_true(st.active);
	assert_true(st.limited);
	assert_string_equal(st.limited_reason, "ScaleInPaused");
	s = pspec();
	set_pods(1, 6, 0);
	r = eval_at(&s, 1, 1, NOW, NULL, NULL);
	memset(&st, 0, sizeof(st));
	controls_status(&s, &r, &st);
	assert_true(st.panic_set && st.panicking);
	assert_string_equal(st.panic_reason, "PanicStarted");
	assert_int_equal(st.panic_since, NOW / 1000);
	assert_int_equal(controls_interval(&s, 15), 6);
	s.panic.set = false;
	assert_int_equal(controls_interval(&s, 15), 15);
}

/* ---- predictive floor (AIBrix's proposal; optional) -------------------- */

static void predictive_floor(void **state)
{
	struct autoscale_spec s = qspec(1, 1, 20);
	struct autoscale_recommendation rising[] = {
		{ NOW - 60 * SEC, 2 },
		{ NOW - 45 * SEC, 3 },
		{ NOW - 30 * SEC, 4 },
		{ NOW - 15 * SEC, 5 },
	};
	struct autoscale_recommendation falling[] = {
		{ NOW - 60 * SEC, 9 },
		{ NOW - 45 * SEC, 8 },
		{ NOW - 30 * SEC, 7 },
		{ NOW - 15 * SEC, 6 },
	};
	struct autoscale_input in;
	struct autoscale_result r;
	(void)state;

	memset(&in, 0, sizeof(in));
	in.spec = &s;
	in.current_replicas = 5;
	in.pods = pods;
	in.n_pods = 5;
	in.now_ms = NOW;
	in.recommendations = rising;
	in.n_recommendations = 4;
	set_pods(5, 6.0 / 5, 0); /* 6 replicas' worth now */
	/* Off by default: the metrics' 6. */
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	assert_int_equal(r.desired, 6);
	assert_int_equal(r.predicted, 0);
	/* On: +1 per 15 s, 60 s ahead: 10; recorded stays 6. */
	s.predictive = (struct autoscale_predictive){ true, 300, 60, 100 };
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	assert_int_equal(r.recommendation, 6);
	assert_int_equal(r.predicted, 10);
	assert_int_equal(r.desired, 10);
	assert_string_equal(r.reason, "PredictiveFloor");
	/* Capped: at most +20% of 6 -> 8. */
	s.predictive.max_increase_percent = 20;
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	assert_int_equal(r.desired, 8);
	/* A window that sees only the last two points has too few. */
	s.predictive = (struct autoscale_predictive){ true, 60, 60, 100 };
	in.now_ms = NOW + 35 * SEC;
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	assert_int_equal(r.predicted, 0);
	/* Falling: never lowers (the scale-down window holds as always). */
	in.now_ms = NOW;
	s.predictive = (struct autoscale_predictive){ true, 300, 60, 100 };
	in.recommendations = falling;
	set_pods(5, 1, 0);
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	assert_int_equal(r.predicted, 0);
	assert_int_equal(r.recommendation, 5);
	/* Bounds. */
	s.predictive.window_seconds = 30;
	assert_int_equal(autoscale_spec_check(&s, NULL, 0), -EINVAL);
}

int tests_autoscale_controls(void);

int tests_autoscale_controls(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(activation_at_the_floor),
		cmocka_unit_test(activation_from_zero),
		cmocka_unit_test(keda_fallback_cases),
		cmocka_unit_test(keda_fallback_invalid),
		cmocka_unit_test(keda_fallback_behaviors),
		cmocka_unit_test(fallback_through_behavior),
		cmocka_unit_test(pause_replicas),
		cmocka_unit_test(pause_one_direction),
		cmocka_unit_test(knative_panic_exponential),
		cmocka_unit_test(knative_extend_panic_window),
		cmocka_unit_test(knative_unpanic_after_slow_increase),
		cmocka_unit_test(knative_no_scale_down_in_panic),
		cmocka_unit_test(cron_expressions),
		cmocka_unit_test(cron_previous),
		cmocka_unit_test(time_zones),
		cmocka_unit_test(schedule_bounds),
		cmocka_unit_test(controls_from_json),
		cmocka_unit_test(controls_in_status),
		cmocka_unit_test(predictive_floor),
	};
	return cmocka_run_group_tests_name("autoscale controls", tests, NULL, NULL);
}
