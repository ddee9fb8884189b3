/*
 * autoscale: cases ported from Kubernetes' own HPA tests
 * (pkg/controller/podautoscaler/replica_calculator_test.go and
 * horizontal_test.go, v1.33), each citing its original, then kinfer's
 * inference rules, hold-on-missing-metrics, the spec checks and the
 * history.
 *
 * How the originals map: a CPU utilization test with equal requests is a
 * per-pod metric whose value is the pod's utilization in percent (usage /
 * request); "qps" pod metrics are per-pod values; object metrics are
 * service-level values; an unready or pending pod is UNREADY; a failed pod
 * or one with a deletion timestamp is IGNORED. The HPA's default behavior
 * (GenerateHPAScaleUpRules/ScaleDownRules) is set explicitly where a test
 * relies on it, since kinfer's defaults differ.
 */
#include "unit.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "autoscale.h"

#define NOW 1000000000000LL
#define SEC 1000LL
#define MISSING NAN

/* A pod in a test table: its state and its value for metric 0. */
struct tpod {
	enum autoscale_pod_state st;
	double v;
};

#define R(v) \
	{ \
		AUTOSCALE_POD_READY, (v) \
	}
#define U(v) \
	{ \
		AUTOSCALE_POD_UNREADY, (v) \
	}
#define I(v) \
	{ \
		AUTOSCALE_POD_IGNORED, (v) \
	}

static struct autoscale_spec spec1(enum autoscale_metric_type t, double target, int32_t min,
				   int32_t max)
{
	struct autoscale_spec s;

	memset(&s, 0, sizeof(s));
	s.min_replicas = min;
	s.max_replicas = max;
	s.n_metrics = 1;
	s.metrics[0] = (struct autoscale_metric_spec){ t, target };
	return s;
}

static void set_rules(struct autoscale_rules *r, int32_t window, enum autoscale_select sel,
		      size_t n, const struct autoscale_policy *p)
{
	memset(r, 0, sizeof(*r));
	r->set_window = true;
	r->stabilization_window_seconds = window;
	r->set_select = true;
	r->select = sel;
	r->set_policies = true;
	r->n_policies = n;
	memcpy(r->policies, p, n * sizeof(*p));
}

/* GenerateHPAScaleUpRules(nil) / GenerateHPAScaleDownRules(nil) with the
 * controller's 300 s downscale window. */
static void hpa_defaults(struct autoscale_spec *s)
{
	const struct autoscale_policy up[] = {
		{ AUTOSCALE_POLICY_PODS, 4, 15 },
		{ AUTOSCALE_POLICY_PERCENT, 100, 15 },
	};
	const struct autoscale_policy down[] = {
		{ AUTOSCALE_POLICY_PERCENT, 100, 15 },
	};

	set_rules(&s->behavior.scale_up, 0, AUTOSCALE_SELECT_MAX, 2, up);
	set_rules(&s->behavior.scale_down, 300, AUTOSCALE_SELECT_MAX, 1, down);
}

/* horizontal_test.go's generateScalingRules: a zero value drops that
 * policy; the unset direction keeps the HPA default. */
static void gen_rules(struct autoscale_rules *r, int32_t pods, int32_t pods_period, int32_t percent,
		      int32_t percent_period, int32_t window)
{
	struct autoscale_policy p[2];
	size_t n = 0;

	if (pods)
		p[n++] = (struct autoscale_policy){ AUTOSCALE_POLICY_PODS, pods, pods_period };
	if (percent)
		p[n++] = (struct autoscale_policy){ AUTOSCALE_POLICY_PERCENT, percent,
						    percent_period };
	set_rules(r, window, AUTOSCALE_SELECT_MAX, n, p);
}

static void fill_pods(struct autoscale_pod *pods, const struct tpod *tp, size_t n)
{
	memset(pods, 0, n * sizeof(*pods));
	for (size_t k = 0; k < n; k++) {
		pods[k].state = tp[k].st;
		if (!isnan(tp[k].v)) {
			pods[k].present = 1;
			pods[k].values[0] = tp[k].v;
		}
	}
}

static struct autoscale_input input(const struct autoscale_spec *s, int32_t current,
				    const struct autoscale_pod *pods, size_t n)
{
	struct autoscale_input in;

	memset(&in, 0, sizeof(in));
	in.spec = s;
	in.current_replicas = current;
	in.pods = pods;
	in.n_pods = n;
	in.now_ms = NOW;
	return in;
}

/* The replica calculator alone: metric 0's proposal, or -1 if invalid. */
static int32_t calc(const struct autoscale_spec *s, int32_t current, const struct tpod *tp, size_t n)
{
	struct autoscale_pod pods[16];
	struct autoscale_input in;
	struct autoscale_result res;

	assert_true(n <= 16);
	fill_pods(pods, tp, n);
	in = input(s, current, pods, n);
	memset(&res, 0, sizeof(res));
	assert_int_equal(autoscale_replicas_for_metrics(&in, &res), 0);
	return res.metrics[0].valid ? res.metrics[0].replicas : -1;
}

/* A service-level metric 0 of value v with the pods given. */
static int32_t calc_service(const struct autoscale_spec *s, int32_t current, double v,
			    const struct tpod *tp, size_t n)
{
	struct autoscale_pod pods[16];
	struct autoscale_service sv = { 1, { v } };
	struct autoscale_input in;
	struct autoscale_result res;

	fill_pods(pods, tp, n);
	in = input(s, current, pods, n);
	in.service = &sv;
	memset(&res, 0, sizeof(res));
	assert_int_equal(autoscale_replicas_for_metrics(&in, &res), 0);
	return res.metrics[0].valid ? res.metrics[0].replicas : -1;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* TestReplicaCalcResourceScale, CPU utilization as percent per pod. */
static void hpa_resource_scale(void **state)
{
	struct autoscale_spec s30 = spec1(AUTOSCALE_GPU_UTILIZATION, 30, 1, 100);
	struct autoscale_spec s50 = spec1(AUTOSCALE_GPU_UTILIZATION, 50, 1, 100);
	/* "scale up" */
	const struct tpod up[] = { R(30), R(50), R(70) };
	/* "scale up: unready pod scales less" */
	const struct tpod up_unready[] = { U(30), R(50), R(70) };
	/* "no scale: unready pods ignored" */
	const struct tpod no_scale[] = { R(40), U(50), U(70) };
	/* "scale up: failed pods ignored", "...pods being deleted are ignored" */
	const struct tpod up_failed[] = { R(50), R(70), I(MISSING), I(MISSING) };
	/* "scale down" */
	const struct tpod down[] = { R(10), R(30), R(50), R(25), R(25) };
	/* "scale down: exclude unready pods" */
	const struct tpod down_unready[] = { R(10), R(30), R(50), U(25), U(25) };
	/* "scale down: exclude unscheduled pods" (pending, no metrics) */
	const struct tpod down_pending[] = { R(10), U(MISSING), U(MISSING), U(MISSING), U(MISSING) };
	/* "scale down: failed pods ignored", "...being deleted are ignored" */
	const struct tpod down_failed[] = { R(10), R(30),      R(50),     R(25),
					    R(25), I(MISSING), I(MISSING) };
	(void)state;

	assert_int_equal(calc(&s30, 3, up, N(up)), 5);
	assert_int_equal(calc(&s30, 3, up_unready, N(up_unready)), 4);
	assert_int_equal(calc(&s30, 3, no_scale, N(no_scale)), 3);
	assert_int_equal(calc(&s30, 2, up_failed, N(up_failed)), 4);
	assert_int_equal(calc(&s50, 5, down, N(down)), 3);
	assert_int_equal(calc(&s50, 5, down_unready, N(down_unready)), 2);
	assert_int_equal(calc(&s50, 5, down_pending, N(down_pending)), 1);
	assert_int_equal(calc(&s50, 5, down_failed, N(down_failed)), 3);
}

/* TestReplicaCalcScaleUpCM, TestReplicaCalcScaleDownCM,
 * TestReplicaCalcToleranceCM, TestReplicaCalcConfigurableToleranceCM. */
static void hpa_pods_metric(void **state)
{
	struct autoscale_spec s15 = spec1(AUTOSCALE_QUEUE_DEPTH, 15, 1, 100);
	struct autoscale_spec s20 = spec1(AUTOSCALE_QUEUE_DEPTH, 20, 1, 100);
	const struct tpod up[] = { R(20), R(10), R(30) };
	const struct tpod down[] = { R(12), R(12), R(12), R(12), R(12) };
	const struct tpod tol[] = { R(20), R(21), R(21) };
	(void)state;

	assert_int_equal(calc(&s15, 3, up, N(up)), 4);
	assert_int_equal(calc(&s20, 5, down, N(down)), 3);
	assert_int_equal(calc(&s20, 3, tol, N(tol)), 3);
	s20.behavior.scale_up.set_tolerance = true;
	s20.behavior.scale_up.tolerance = 0.01;
	assert_int_equal(calc(&s20, 3, tol, N(tol)), 4);
}

/* TestReplicaCalcTolerance and TestReplicaCalcConfigurableTolerance: the
 * requests 0.9/1.0/1.1 sum to 3.0, so the pooled utilization is the
 * average of the per-pod values used here. */
static void hpa_configurable_tolerance(void **state)
{
	static const struct {
		const char *name;
		double down, up, v[3];
		int32_t want;
	} cases[] = {
		{ "TestReplicaCalcTolerance", 0.1, 0.1, { 101, 103, 102 }, 3 },
		{ "Outside of a 0% tolerance", 0, 0, { 90.9, 101, 111.1 }, 4 },
		{ "Within a 200% scale-up tolerance", 0.1, 2, { 189, 191, 190 }, 3 },
		{ "Outside 8% scale-up tolerance", 2, 0.08, { 110, 108, 109 }, 4 },
		{ "Within a 36% scale-down tolerance", 0.36, 0.1, { 66, 64, 65 }, 3 },
		{ "Outside a 34% scale-down tolerance", 0.34, 0.1, { 66, 64, 65 }, 2 },
	};
	(void)state;

	for (size_t k = 0; k < N(cases); k++) {
		struct autoscale_spec s = spec1(AUTOSCALE_GPU_UTILIZATION, 100, 1, 100);
		const struct tpod p[] = { R(cases[k].v[0]), R(cases[k].v[1]), R(cases[k].v[2]) };
		s.behavior.scale_down.set_tolerance = true;
		s.behavior.scale_down.tolerance = cases[k].down;
		s.behavior.scale_up.set_tolerance = true;
		s.behavior.scale_up.tolerance = cases[k].up;
		if (calc(&s, 3, p, 3) != cases[k].want)
			fail_msg("%s: got %d, want %d", cases[k].name, calc(&s, 3, p, 3),
				 cases[k].want);
	}
}

/* Missing metrics: TestReplicaCalcMissingMetrics,
 * TestPlainMetricReplicaCalcMissingMetricsNoChangeEq,
 * TestReplicaCalcMissingMetricsNoChangeGt / NoChangeLt. */
static void hpa_missing_metrics(void **state)
{
	struct autoscale_spec s100 = spec1(AUTOSCALE_GPU_UTILIZATION, 100, 1, 100);
	struct autoscale_spec qps = spec1(AUTOSCALE_REQUESTS_PER_SECOND, 20000, 1, 100);
	/* 40% and 9.5%, two pods silent: (49.5 + 2 * 100) / 4 -> ceil(2.495). */
	const struct tpod missing[] = { R(40), R(9.5), R(MISSING), R(MISSING) };
	/* Exactly at target: missing pods are not filled in at all. */
	const struct tpod eq[] = { R(20000), R(19000), R(21000), R(MISSING), R(MISSING) };
	const struct tpod gt[] = { R(190), R(MISSING) };
	const struct tpod lt[] = { R(60), R(MISSING) };
	(void)state;

	assert_int_equal(calc(&s100, 4, missing, N(missing)), 3);
	assert_int_equal(calc(&qps, 5, eq, N(eq)), 5);
	assert_int_equal(calc(&s100, 2, gt, N(gt)), 2);
	assert_int_equal(calc(&s100, 2, lt, N(lt)), 2);
}

/* Missing and unready together: TestReplicaCalcMissingMetricsUnreadyChange,
 * ...UnreadyScaleUp, ...UnreadyScaleDown (adapted, see below),
 * TestReplicaCalcDuringRollingUpdateWithMaxSurge and ...WithMaxSurgeCM. */
static void hpa_missing_and_unready(void **state)
{
	struct autoscale_spec s50 = spec1(AUTOSCALE_GPU_UTILIZATION, 50, 1, 100);
	struct autoscale_spec qps = spec1(AUTOSCALE_REQUESTS_PER_SECOND, 17000, 1, 100);
	const struct tpod change[] = { U(10), R(45), R(MISSING) };
	const struct tpod up[] = { U(10), R(200), R(MISSING) };
	const struct tpod down[] = { U(10), R(10), R(10), R(MISSING) };
	const struct tpod surge[] = { R(10), R(10), R(MISSING) };
	const struct tpod surge_cm[] = { R(10000), R(10000), R(MISSING) };
	(void)state;

	assert_int_equal(calc(&s50, 3, change, N(change)), 3);
	assert_int_equal(calc(&s50, 3, up, N(up)), 4);
	/*
	 * The Go test expects 3 for CPU, where a missing pod counts at 100%
	 * of its request; for per-pod metrics (calcPlainMetricReplicas) it
	 * counts at the target: (10 + 10 + 50) / 3 / 50 * 3 -> ceil(1.4).
	 */
	assert_int_equal(calc(&s50, 4, down, N(down)), 2);
	/* A surge pod without metrics must not turn a scale-down into an
	 * increase over the current count: keep 2. */
	assert_int_equal(calc(&s50, 2, surge, N(surge)), 2);
	assert_int_equal(calc(&qps, 2, surge_cm, N(surge_cm)), 2);
}

/* TestReplicaCalcComputedToleranceAlgImplementation: 50% used, target
 * just outside the tolerance (56) scales 10 -> 9, just inside (55) not. */
static void hpa_computed_tolerance(void **state)
{
	struct autoscale_spec out = spec1(AUTOSCALE_GPU_UTILIZATION, 56, 1, 100);
	struct autoscale_spec in = spec1(AUTOSCALE_GPU_UTILIZATION, 55, 1, 100);
	struct tpod p[10];
	(void)state;

	for (size_t k = 0; k < 10; k++)
		p[k] = (struct tpod)R(50);
	assert_int_equal(calc(&out, 10, p, 10), 9);
	assert_int_equal(calc(&in, 10, p, 10), 10);
}

/* Object metrics as service-level ones: TestReplicaCalcScaleUpCMObject,
 * ...ScaleUpCMObjectIgnoresUnreadyPods, ...ScaleDownCMObject,
 * ...ToleranceCMObject, ...ConfigurableToleranceCMObject,
 * TestReplicaCalcScaleUpOverflow. */
static void hpa_object_metric(void **state)
{
	struct autoscale_spec s15 = spec1(AUTOSCALE_LATENCY_P99, 15000, 1, 100);
	struct autoscale_spec s10 = spec1(AUTOSCALE_LATENCY_P99, 10000, 1, 100);
	struct autoscale_spec s20 = spec1(AUTOSCALE_CUSTOM, 20000, 1, 100);
	struct autoscale_spec s1 = spec1(AUTOSCALE_CUSTOM, 0.001, 1, 100);
	const struct tpod three[] = { R(MISSING), R(MISSING), R(MISSING) };
	const struct tpod unready[] = { U(MISSING), R(MISSING), U(MISSING) };
	const struct tpod five[] = { R(MISSING), R(MISSING), R(MISSING), R(MISSING), R(MISSING) };
	(void)state;

	assert_int_equal(calc_service(&s15, 3, 20000, three, 3), 4);
	/* 15 if unready pods counted; only the ready one does: 5 * 1. */
	assert_int_equal(calc_service(&s10, 3, 50000, unready, 3), 5);
	assert_int_equal(calc_service(&s20, 5, 12000, five, 5), 3);
	assert_int_equal(calc_service(&s20, 3, 20666, three, 3), 3);
	s20.behavior.scale_up.set_tolerance = true;
	s20.behavior.scale_up.tolerance = 0.01;
	assert_int_equal(calc_service(&s20, 3, 20666, three, 3), 4);
	assert_int_equal(calc_service(&s1, 3, 9.2e18, three, 3), INT32_MAX);
}

/* TestReplicaCalcEmptyMetrics and "did not receive metrics for targeted
 * pods (pods might be unready)": the metric is invalid. */
static void hpa_empty_metrics(void **state)
{
	struct autoscale_spec s = spec1(AUTOSCALE_QUEUE_DEPTH, 5, 1, 10);
	const struct tpod none[] = { R(MISSING), R(MISSING), R(MISSING) };
	const struct tpod unready[] = { U(3), U(4) };
	(void)state;

	assert_int_equal(calc(&s, 4, none, N(none)), -1);
	assert_int_equal(calc(&s, 2, unready, N(unready)), -1);
	assert_int_equal(calc(&s, 2, NULL, 0), -1);
}

/* One full evaluation with the HPA's default behavior. An "old" entry
 * stands in for the Go tests' empty, non-nil recommendation list, which
 * skips recordInitialRecommendation. */
static struct autoscale_result evaluate(struct autoscale_spec *s, int32_t current,
					const struct tpod *tp, size_t n, bool fresh)
{
	const struct autoscale_recommendation old = { NOW - 3600 * SEC, 1 };
	struct autoscale_pod pods[16];
	struct autoscale_input in;
	struct autoscale_result res;

	fill_pods(pods, tp, n);
	in = input(s, current, pods, n);
	if (!fresh) {
		in.recommendations = &old;
		in.n_recommendations = 1;
	}
	assert_int_equal(autoscale_evaluate(&in, &res), 0);
	return res;
}

#define expect(res, want_desired, want_reason) \
	do { \
		if ((res).desired != (want_desired) || strcmp((res).reason, (want_reason)) != 0) \
			fail_msg("got %d %s, want %d %s", (res).desired, (res).reason, \
				 (want_desired), (want_reason)); \
	} while (0)

/* horizontal_test.go through the whole decision. */
static void hpa_controller_cases(void **state)
{
	struct autoscale_spec s;
	struct autoscale_result r;
	const struct tpod up3[] = { R(30), R(50), R(70) };
	const struct tpod down5[] = { R(10), R(30), R(50), R(25), R(25) };
	const struct tpod down_unready[] = { R(10), R(30), R(50), U(25), U(25) };
	const struct tpod down_failed[] = { R(10), R(30),      R(50),     R(25),
					    R(25), I(MISSING), I(MISSING) };
	const struct tpod min3[] = { R(10.0 / 9), R(9.5), R(10.0 / 11) };
	const struct tpod zero3[] = { R(0), R(0), R(0) };
	const struct tpod max3[] = { R(8000.0 / 9), R(950), R(1000.0 / 11) };
	(void)state;

	/* TestScaleUp */
	s = spec1(AUTOSCALE_GPU_UTILIZATION, 30, 2, 6);
	hpa_defaults(&s);
	r = evaluate(&s, 3, up3, 3, false);
	expect(r, 5, "DesiredWithinRange");
	assert_true(r.rescale && r.active);
	assert_string_equal(r.message, "GPUUtilization above target");
	/* TestScaleDown */
	s = spec1(AUTOSCALE_GPU_UTILIZATION, 50, 2, 6);
	hpa_defaults(&s);
	r = evaluate(&s, 5, down5, 5, false);
	expect(r, 3, "DesiredWithinRange");
	assert_string_equal(r.message, "All metrics below target");
	/* TestScaleDownStabilizeInitialSize: no history at all. */
	r = evaluate(&s, 5, down5, 5, true);
	expect(r, 5, "ScaleDownStabilized");
	assert_string_equal(r.able_reason, "ScaleDownStabilized");
	assert_false(r.rescale);
	/* TestScaleDownIncludeUnreadyPods */
	r = evaluate(&s, 5, down_unready, 5, false);
	expect(r, 2, "DesiredWithinRange");
	/* TestScaleDownIgnoresFailedPods, TestScaleDownIgnoresDeletionPods */
	r = evaluate(&s, 5, down_failed, 7, false);
	expect(r, 3, "DesiredWithinRange");
	/* TestMinReplicas */
	s = spec1(AUTOSCALE_GPU_UTILIZATION, 90, 2, 5);
	hpa_defaults(&s);
	r = evaluate(&s, 3, min3, 3, false);
	expect(r, 2, "TooFewReplicas");
	assert_true(r.limited);
	/* TestMinReplicasDesiredZero */
	r = evaluate(&s, 3, zero3, 3, false);
	expect(r, 2, "TooFewReplicas");
	/* TestMaxReplicas */
	r = evaluate(&s, 3, max3, 3, false);
	expect(r, 5, "TooManyReplicas");
	/* TestZeroMinReplicasDesiredZero */
	s.min_replicas = 0;
	r = evaluate(&s, 3, zero3, 3, false);
	expect(r, 0, "DesiredWithinRange");
	assert_false(r.limited);
}

static void hpa_controller_bounds(void **state)
{
	struct autoscale_spec s = spec1(AUTOSCALE_GPU_UTILIZATION, 90, 3, 5);
	struct autoscale_result r;
	const struct tpod none[] = { R(MISSING) };
	(void)state;

	hpa_defaults(&s);
	/* TestZeroReplicas */
	r = evaluate(&s, 0, NULL, 0, true);
	expect(r, 0, "ScalingDisabled");
	assert_false(r.active);
	assert_false(r.rescale);
	/* kinfer (issue 12 item 7): a service at 0 when spec.scaling came is
	 * below minReplicas, not disabled. */
	{
		struct autoscale_input in = input(&s, 0, NULL, 0);
		in.zero_is_below_min = true;
		assert_int_equal(autoscale_evaluate(&in, &r), 0);
		expect(r, 3, "TooFewReplicas");
		assert_true(r.rescale);
	}
	/* TestTooFewReplicas */
	r = evaluate(&s, 2, none, 1, true);
	expect(r, 3, "TooFewReplicas");
	assert_true(r.rescale);
	assert_false(r.record_recommendation);
	/* TestTooManyReplicas */
	r = evaluate(&s, 10, none, 1, true);
	expect(r, 5, "TooManyReplicas");
	assert_true(r.rescale);
}

static void hpa_controller_more(void **state)
{
	struct autoscale_spec s;
	struct autoscale_result r;
	const struct tpod tol[] = { R(101), R(103), R(102) };
	const struct tpod one100[] = { R(100) };
	const struct tpod two50[] = { R(50), R(50) };
	const struct tpod cap[] = { R(100), R(200), R(300) };
	const struct tpod surge[] = { R(50), R(50), R(50), R(50), R(50) };
	const struct tpod cm[] = { R(20), R(10), R(30) };
	(void)state;

	/* TestTolerance */
	s = spec1(AUTOSCALE_GPU_UTILIZATION, 100, 1, 5);
	hpa_defaults(&s);
	r = evaluate(&s, 3, tol, 3, false);
	expect(r, 3, "DesiredWithinRange");
	assert_string_equal(r.able_reason, "ReadyForNewScale");
	/* TestEventCreated: 100% of a 50% target on one pod. */
	s = spec1(AUTOSCALE_GPU_UTILIZATION, 50, 1, 5);
	hpa_defaults(&s);
	r = evaluate(&s, 1, one100, 1, false);
	expect(r, 2, "DesiredWithinRange");
	assert_true(r.rescale);
	/* TestEventNotCreated */
	r = evaluate(&s, 2, two50, 2, false);
	expect(r, 2, "DesiredWithinRange");
	assert_false(r.rescale);
	/* TestMissingReports: spec says 4, one pod exists and reports. */
	r = evaluate(&s, 4, one100, 1, false);
	expect(r, 2, "DesiredWithinRange");
	/* TestMoreReplicasThanSpecNoScale: 5 pods during a surge, spec 4. */
	s.max_replicas = 8;
	r = evaluate(&s, 4, surge, 5, false);
	expect(r, 4, "DesiredWithinRange");
	/* TestUpscaleCap: Percent 700 per 60 s caps 3 -> 60 at 24. */
	s = spec1(AUTOSCALE_GPU_UTILIZATION, 10, 1, 100);
	hpa_defaults(&s);
	gen_rules(&s.behavior.scale_up, 0, 0, 700, 60, 0);
	r = evaluate(&s, 3, cap, 3, false);
	expect(r, 24, "ScaleUpLimit");
	/* TestUpscaleCapGreaterThanMaxReplicas */
	s.max_replicas = 20;
	r = evaluate(&s, 3, cap, 3, false);
	expect(r, 20, "TooManyReplicas");
	/* TestScaleUpCM, TestNoBackoffUpscaleCM */
	s = spec1(AUTOSCALE_REQUESTS_PER_SECOND, 15, 1, 5);
	hpa_defaults(&s);
	r = evaluate(&s, 3, cm, 3, false);
	expect(r, 4, "DesiredWithinRange");
	/* TestScaleDownWithScalingRules: only scale-up rules given. */
	s = spec1(AUTOSCALE_GPU_UTILIZATION, 50, 2, 6);
	hpa_defaults(&s);
	gen_rules(&s.behavior.scale_up, 0, 0, 100, 15, 30);
	{
		const struct tpod down5[] = { R(10), R(30), R(50), R(25), R(25) };
		r = evaluate(&s, 5, down5, 5, false);
		expect(r, 3, "DesiredWithinRange");
	}
}

/* Object metrics through the controller: TestScaleDownCMObject,
 * TestScaleDownToZeroCMObject (minReplicas 0). */
static void hpa_controller_object(void **state)
{
	struct autoscale_spec s = spec1(AUTOSCALE_CUSTOM, 20, 2, 6);
	const struct autoscale_recommendation old = { NOW - 3600 * SEC, 1 };
	struct autoscale_pod pods[5];
	struct autoscale_service sv = { 1, { 12 } };
	struct autoscale_input in;
	struct autoscale_result r;
	(void)state;

	hpa_defaults(&s);
	memset(pods, 0, sizeof(pods));
	in = input(&s, 5, pods, 5);
	in.service = &sv;
	in.recommendations = &old;
	in.n_recommendations = 1;
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	expect(r, 3, "DesiredWithinRange");
	s.min_replicas = 0;
	sv.values[0] = 0;
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	expect(r, 0, "DesiredWithinRange");
}

/* TestScaleUpOneMetricInvalid, TestNoScaleDownOneMetricInvalid,
 * TestScaleUpBothMetricsEmpty, TestEmptyMetrics. */
static void hpa_invalid_metrics(void **state)
{
	struct autoscale_spec s = spec1(AUTOSCALE_GPU_UTILIZATION, 30, 2, 6);
	const struct autoscale_recommendation old = { NOW - 3600 * SEC, 1 };
	struct autoscale_pod pods[5];
	const struct tpod up[] = { R(30), R(40), R(50) };
	const struct tpod down[] = { R(10), R(30), R(50), R(25), R(25) };
	const struct tpod none[] = { R(MISSING), R(MISSING), R(MISSING) };
	struct autoscale_input in;
	struct autoscale_result r;
	(void)state;

	hpa_defaults(&s);
	s.n_metrics = 2; /* the second, a service metric, never has a value */
	s.metrics[1] = (struct autoscale_metric_spec){ AUTOSCALE_LATENCY_P99, 100 };
	fill_pods(pods, up, 3);
	in = input(&s, 3, pods, 3);
	in.recommendations = &old;
	in.n_recommendations = 1;
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	expect(r, 4, "DesiredWithinRange");
	assert_true(r.active && r.n_invalid == 1 && r.metric == 0);
	assert_false(r.metrics[1].valid);
	assert_non_null(r.metrics[1].error);
	/* The same invalid metric while the valid one would scale down. */
	s.metrics[0].target = 50;
	fill_pods(pods, down, 5);
	in = input(&s, 5, pods, 5);
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	expect(r, 5, "FailedGetServiceMetric");
	assert_true(r.hold && !r.active && !r.rescale);
	/* Inference rule: a hold recommends the current count, so the
	 * scale-down window restarts when the metric comes back. */
	assert_true(r.record_recommendation);
	assert_int_equal(r.recommendation, 5);
	/* Both empty. */
	fill_pods(pods, none, 3);
	in = input(&s, 3, pods, 3);
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	expect(r, 3, "FailedGetPodsMetric");
	assert_true(r.hold);
	assert_int_equal(r.n_invalid, 2);
}

/* TestCalculateScaleUpLimitWithScalingRules and
 * TestCalculateScaleDownLimitWithBehaviors: selectPolicy Min. */
static void hpa_select_min(void **state)
{
	const struct autoscale_policy p[] = {
		{ AUTOSCALE_POLICY_PODS, 2, 60 },
		{ AUTOSCALE_POLICY_PERCENT, 50, 60 },
	};
	struct autoscale_spec s = spec1(AUTOSCALE_QUEUE_DEPTH, 1, 0, 1000);
	struct autoscale_input in = input(&s, 1, NULL, 0);
	struct autoscale_step st;
	(void)state;

	set_rules(&s.behavior.scale_up, 300, AUTOSCALE_SELECT_MIN, 2, p);
	set_rules(&s.behavior.scale_down, 300, AUTOSCALE_SELECT_MIN, 2, p);
	assert_int_equal(autoscale_rate_limit(&in, 100, &st), 0);
	assert_int_equal(st.replicas, 2);
	assert_string_equal(st.reason, "ScaleUpLimit");
	in.current_replicas = 5;
	assert_int_equal(autoscale_rate_limit(&in, 0, &st), 0);
	assert_int_equal(st.replicas, 3);
	assert_string_equal(st.reason, "ScaleDownLimit");
	/* Disabled: no change in that direction. */
	s.behavior.scale_down.select = AUTOSCALE_SELECT_DISABLED;
	assert_int_equal(autoscale_rate_limit(&in, 0, &st), 0);
	assert_int_equal(st.replicas, 5);
	assert_string_equal(st.reason, "ScaleDownLimit");
}

/* generateEventsUniformDistribution: n events spread over the last
 * period seconds, each in the middle of its segment. */
static size_t uniform_events(struct autoscale_scale_event *ev, const int *changes, size_t n,
			     int period)
{
	double seg = (double)period / (double)n;

	for (size_t k = 0; k < n; k++) {
		double ago = (double)period - seg * (double)(k + 1) + seg / 2;
		ev[k] = (struct autoscale_scale_event){ NOW - (int64_t)(ago * 1000), changes[k],
							false };
	}
	return n;
}

/* TestScalingWithRules, every case (convertDesiredReplicasWithBehaviorRate). */
static void hpa_scaling_with_rules(void **state)
{
	static const int e159[] = { 1, 5, 9 }, e246[] = { 2, 4, 6 }, e101010[] = { 10, 10, 10 },
			 e812911[] = { 8, 12, 9, 11 };
	static const struct {
		const char *name;
		const int *up_ev, *down_ev;
		size_t n_up_ev, n_down_ev;
		int32_t min, max;
		int up[5], down[5]; /* pods, period, percent, period, window */
		int32_t current, desired, want;
		const char *cond;
	} c[] = {
		{ "prenormalized desired replicas within range",
		  NULL,
		  NULL,
		  0,
		  0,
		  3,
		  8,
		  { -1 },
		  { -1 },
		  5,
		  7,
		  7,
		  "DesiredWithinRange" },
		{ "prenormalized desired replicas < minReplicas",
		  NULL,
		  NULL,
		  0,
		  0,
		  2,
		  8,
		  { -1 },
		  { -1 },
		  3,
		  1,
		  2,
		  "TooFewReplicas" },
		{ "desired replicas within range when minReplicas is 0",
		  NULL,
		  NULL,
		  0,
		  0,
		  0,
		  10,
		  { -1 },
		  { -1 },
		  1,
		  0,
		  0,
		  "DesiredWithinRange" },
		{ "maxReplicas is the limit because maxReplicas < scaleUpLimit",
		  NULL,
		  NULL,
		  0,
		  0,
		  1,
		  10,
		  { -1 },
		  { -1 },
		  20,
		  1000,
		  10,
		  "TooManyReplicas" },
		{ "desired replica count is more than the maximum replica count",
		  NULL,
		  NULL,
		  0,
		  0,
		  100,
		  150,
		  { -1 },
		  { -1 },
		  100,
		  1000,
		  150,
		  "TooManyReplicas" },
		{ "scaleUpLimit < maxReplicas with user policies",
		  NULL,
		  NULL,
		  0,
		  0,
		  1,
		  2000,
		  { 0, 0, 1, 60, 0 },
		  { -1 },
		  3,
		  1000,
		  4,
		  "ScaleUpLimit" },
		{ "scaleDownLimit > minReplicas with user defined policies",
		  NULL,
		  NULL,
		  0,
		  0,
		  3,
		  2000,
		  { -1 },
		  { 20, 60, 0, 0, 0 },
		  1000,
		  3,
		  980,
		  "ScaleDownLimit" },
		{ "scaleUp with default behavior",
		  NULL,
		  NULL,
		  0,
		  0,
		  1,
		  1000,
		  { -1 },
		  { -1 },
		  10,
		  50,
		  20,
		  "ScaleUpLimit" },
		{ "scaleUp with pods policy larger than percent policy",
		  NULL,
		  NULL,
		  0,
		  0,
		  1,
		  1000,
		  { 100, 60, 100, 60, 0 },
		  { -1 },
		  10,
		  500,
		  110,
		  "ScaleUpLimit" },
		{ "scaleUp with percent policy larger than pods policy",
		  NULL,
		  NULL,
		  0,
		  0,
		  1,
		  1000,
		  { 2, 60, 100, 60, 0 },
		  { -1 },
		  10,
		  500,
		  20,
		  "ScaleUpLimit" },
		{ "scaleUp with spec MaxReplicas limitation with large pod policy",
		  NULL,
		  NULL,
		  0,
		  0,
		  1,
		  1000,
		  { 100, 60, 0, 0, 0 },
		  { -1 },
		  10,
		  50,
		  50,
		  "DesiredWithinRange" },
		{ "scaleUp with spec MaxReplicas limitation with large percent "
		  "policy",
		  NULL,
		  NULL,
		  0,
		  0,
		  1,
		  1000,
		  { 10000, 60, 0, 0, 0 },
		  { -1 },
		  10,
		  50,
		  50,
		  "DesiredWithinRange" },
		{ "scaleUp with pod policy limitation",
		  NULL,
		  NULL,
		  0,
		  0,
		  1,
		  1000,
		  { 30, 60, 0, 0, 0 },
		  { -1 },
		  10,
		  50,
		  40,
		  "ScaleUpLimit" },
		{ "scaleUp with percent policy limitation",
		  NULL,
		  NULL,
		  0,
		  0,
		  1,
		  1000,
		  { 0, 0, 200, 60, 0 },
		  { -1 },
		  10,
		  50,
		  30,
		  "ScaleUpLimit" },
		{ "scaleDown with percent policy larger than pod policy",
		  NULL,
		  NULL,
		  0,
		  0,
		  1,
		  1000,
		  { -1 },
		  { 20, 60, 1, 60, 300 },
		  100,
		  2,
		  80,
		  "ScaleDownLimit" },
		{ "scaleDown with pod policy larger than percent policy",
		  NULL,
		  NULL,
		  0,
		  0,
		  1,
		  1000,
		  { -1 },
		  { 2, 60, 1, 60, 300 },
		  100,
		  2,
		  98,
		  "ScaleDownLimit" },
		{ "scaleDown with spec MinReplicas limitation with large pod "
		  "policy",
		  NULL,
		  NULL,
		  0,
		  0,
		  1,
		  1000,
		  { -1 },
		  { 100, 60, 0, 0, 300 },
		  10,
		  0,
		  1,
		  "TooFewReplicas" },
		{ "scaleDown with spec MinReplicas limitation with large percent "
		  "policy",
		  NULL,
		  NULL,
		  0,
		  0,
		  5,
		  1000,
		  { -1 },
		  { 0, 0, 100, 60, 300 },
		  10,
		  2,
		  5,
		  "TooFewReplicas" },
		{ "scaleDown with pod policy limitation",
		  NULL,
		  NULL,
		  0,
		  0,
		  1,
		  1000,
		  { -1 },
		  { 5, 60, 0, 0, 300 },
		  10,
		  2,
		  5,
		  "ScaleDownLimit" },
		{ "scaleDown with percent policy limitation",
		  NULL,
		  NULL,
		  0,
		  0,
		  1,
		  1000,
		  { -1 },
		  { 0, 0, 50, 60, 300 },
		  10,
		  5,
		  5,
		  "DesiredWithinRange" },
		{ "scaleUp with spec MaxReplicas limitation with large pod policy "
		  "and events",
		  e159,
		  NULL,
		  3,
		  0,
		  1,
		  200,
		  { 300, 60, 0, 0, 0 },
		  { -1 },
		  100,
		  500,
		  200,
		  "TooManyReplicas" },
		{ "scaleUp with spec MaxReplicas limitation with large percent "
		  "policy and events",
		  e159,
		  NULL,
		  3,
		  0,
		  1,
		  200,
		  { 0, 0, 10000, 60, 0 },
		  { -1 },
		  100,
		  500,
		  200,
		  "TooManyReplicas" },
		{ "scaleUp with currentReplicas limitation with rate.PeriodSeconds "
		  "with a lot of recent scale up events",
		  e159,
		  NULL,
		  3,
		  0,
		  1,
		  1000,
		  { 5, 120, 0, 0, 0 },
		  { -1 },
		  100,
		  500,
		  100,
		  "ScaleUpLimit" },
		{ "scaleUp with pod policy and previous scale up events",
		  e159,
		  NULL,
		  3,
		  0,
		  1,
		  1000,
		  { 150, 120, 0, 0, 0 },
		  { -1 },
		  100,
		  500,
		  235,
		  "ScaleUpLimit" },
		{ "scaleUp with percent policy and previous scale up events",
		  e159,
		  NULL,
		  3,
		  0,
		  1,
		  1000,
		  { 0, 0, 200, 120, 0 },
		  { -1 },
		  100,
		  500,
		  255,
		  "ScaleUpLimit" },
		{ "scaleDown with default policy and previous events",
		  NULL,
		  e159,
		  0,
		  3,
		  1,
		  1000,
		  { -1 },
		  { -1 },
		  10,
		  5,
		  5,
		  "DesiredWithinRange" },
		{ "scaleDown with spec MinReplicas=nil limitation with large pod "
		  "policy and previous events",
		  NULL,
		  e159,
		  0,
		  3,
		  1,
		  1000,
		  { -1 },
		  { 115, 120, 0, 0, 300 },
		  100,
		  0,
		  1,
		  "TooFewReplicas" },
		{ "scaleDown with spec MinReplicas limitation with large pod "
		  "policy and previous events",
		  NULL,
		  e159,
		  0,
		  3,
		  5,
		  1000,
		  { -1 },
		  { 130, 120, 0, 0, 300 },
		  100,
		  0,
		  5,
		  "TooFewReplicas" },
		{ "scaleDown with spec MinReplicas limitation with large percent "
		  "policy and previous events",
		  NULL,
		  e159,
		  0,
		  3,
		  5,
		  1000,
		  { -1 },
		  { 0, 0, 100, 120, 300 },
		  100,
		  2,
		  5,
		  "TooFewReplicas" },
		{ "scaleDown with pod policy limitation and previous events",
		  NULL,
		  e159,
		  0,
		  3,
		  1,
		  1000,
		  { -1 },
		  { 5, 120, 0, 0, 300 },
		  100,
		  2,
		  100,
		  "ScaleDownLimit" },
		{ "scaleDown with percent policy limitation and previous events",
		  NULL,
		  e246,
		  0,
		  3,
		  1,
		  1000,
		  { -1 },
		  { 0, 0, 50, 120, 300 },
		  100,
		  0,
		  56,
		  "ScaleDownLimit" },
		{ "scaleDown with previous events preventing further scale down",
		  NULL,
		  e101010,
		  0,
		  3,
		  1,
		  1000,
		  { -1 },
		  { 0, 0, 10, 120, 300 },
		  100,
		  0,
		  100,
		  "ScaleDownLimit" },
		{ "scaleDown with with previous events still allowing more scale "
		  "down",
		  NULL,
		  e101010,
		  0,
		  3,
		  1,
		  1000,
		  { -1 },
		  { 0, 0, 1000, 120, 300 },
		  10,
		  5,
		  5,
		  "DesiredWithinRange" },
		{ "check 'outdated' flag for events for one behavior for up",
		  e812911,
		  NULL,
		  4,
		  0,
		  1,
		  1000,
		  { 1000, 60, 0, 0, 0 },
		  { -1 },
		  100,
		  200,
		  200,
		  "DesiredWithinRange" },
		{ "check that events were not marked 'outdated' for two different "
		  "policies in the behavior for up",
		  e812911,
		  NULL,
		  4,
		  0,
		  1,
		  1000,
		  { 1000, 120, 100, 60, 0 },
		  { -1 },
		  100,
		  200,
		  200,
		  "DesiredWithinRange" },
		{ "check that events were marked 'outdated' for two different "
		  "policies in the behavior for up",
		  e812911,
		  NULL,
		  4,
		  0,
		  1,
		  1000,
		  { 1000, 30, 100, 60, 0 },
		  { -1 },
		  100,
		  200,
		  200,
		  "DesiredWithinRange" },
		{ "check 'outdated' flag for events for one behavior for down",
		  NULL,
		  e812911,
		  0,
		  4,
		  1,
		  1000,
		  { -1 },
		  { 1000, 60, 0, 0, 300 },
		  100,
		  5,
		  5,
		  "DesiredWithinRange" },
		{ "check that events were not marked 'outdated' for two different "
		  "policies in the behavior for down",
		  NULL,
		  e812911,
		  0,
		  4,
		  1,
		  1000,
		  { -1 },
		  { 1000, 120, 100, 60, 300 },
		  100,
		  5,
		  5,
		  "DesiredWithinRange" },
		{ "check that events were marked 'outdated' for two different "
		  "policies in the behavior for down",
		  NULL,
		  e812911,
		  0,
		  4,
		  1,
		  1000,
		  { -1 },
		  { 1000, 30, 100, 60, 300 },
		  100,
		  5,
		  5,
		  "DesiredWithinRange" },
	};
	(void)state;

	for (size_t k = 0; k < N(c); k++) {
		struct autoscale_spec s = spec1(AUTOSCALE_QUEUE_DEPTH, 1, c[k].min, c[k].max);
		struct autoscale_scale_event up[4], down[4];
		struct autoscale_input in = input(&s, c[k].current, NULL, 0);
		struct autoscale_step st;

		hpa_defaults(&s);
		if (c[k].up[0] >= 0)
			gen_rules(&s.behavior.scale_up, c[k].up[0], c[k].up[1], c[k].up[2],
				  c[k].up[3], c[k].up[4]);
		if (c[k].down[0] >= 0)
			gen_rules(&s.behavior.scale_down, c[k].down[0], c[k].down[1], c[k].down[2],
				  c[k].down[3], c[k].down[4]);
		in.up_events = up;
		in.n_up_events = c[k].n_up_ev ? uniform_events(up, c[k].up_ev, c[k].n_up_ev, 120) : 0;
		in.down_events = down;
		in.n_down_events = c[k].n_down_ev ?
					   uniform_events(down, c[k].down_ev, c[k].n_down_ev, 120) :
					   0;
		assert_int_equal(autoscale_rate_limit(&in, c[k].desired, &st), 0);
		if (st.replicas != c[k].want || strcmp(st.reason, c[k].cond))
			fail_msg("%s: got %d %s, want %d %s", c[k].name, st.replicas, st.reason,
				 c[k].want, c[k].cond);
	}
}

/* TestNormalizeDesiredReplicasWithBehavior: the stabilized value and the
 * recommendations stored afterwards. Our history also performs
 * recordInitialRecommendation (reconcileAutoscaler does it in the HPA),
 * so an empty history gains the current count first. */
static void hpa_normalize_with_behavior(void **state)
{
	static const struct {
		const char *name;
		int n;
		int32_t rec[4];
		int ago_min[4];
		int32_t current, desired, want;
		int up_window, down_window;
		int n_stored;
		int32_t stored[5];
	} c[] = {
		{ "empty recommendations for scaling down", 0, { 0 }, { 0 }, 100, 5, 5, 0, 0, 2, { 100, 5 } },
		{ "simple scale down stabilization", 2, { 4, 5 }, { 2, 1 }, 100, 3, 5, 0, 180, 3, { 4, 5, 3 } },
		{ "simple scale up stabilization", 2, { 4, 5 }, { 2, 1 }, 1, 7, 4, 300, 0, 3, { 4, 5, 7 } },
		{ "no scale down stabilization", 2, { 1, 2 }, { 2, 1 }, 100, 3, 3, 300, 0, 3, { 1, 2, 3 } },
		{ "no scale up stabilization", 2, { 4, 5 }, { 2, 1 }, 1, 3, 3, 0, 300, 3, { 4, 5, 3 } },
		{ "no scale down stabilization, reuse recommendation element",
		  2,
		  { 10, 9 },
		  { 10, 9 },
		  100,
		  3,
		  3,
		  0,
		  0,
		  2,
		  { 10, 3 } },
		{ "no scale up stabilization, reuse recommendation element",
		  2,
		  { 10, 9 },
		  { 10, 9 },
		  1,
		  100,
		  100,
		  0,
		  0,
		  2,
		  { 10, 100 } },
		{ "scale down stabilization, reuse one of obsolete recommendation "
		  "element",
		  4,
		  { 10, 4, 5, 9 },
		  { 10, 1, 2, 9 },
		  100,
		  3,
		  5,
		  0,
		  180,
		  4,
		  { 10, 4, 5, 3 } },
		{ "scale up stabilization, reuse one of obsolete recommendation "
		  "element",
		  4,
		  { 10, 6, 5, 9 },
		  { 100, 1, 2, 3 },
		  1,
		  100,
		  5,
		  300,
		  0,
		  4,
		  { 100, 6, 5, 9 } },
	};
	(void)state;

	for (size_t k = 0; k < N(c); k++) {
		struct autoscale_spec s = spec1(AUTOSCALE_QUEUE_DEPTH, 1, 0, 1000);
		struct autoscale_recommendation recs[4];
		struct autoscale_history *h;
		struct autoscale_input in;
		struct autoscale_result res;
		struct autoscale_step st;

		s.behavior.scale_up.set_window = true;
		s.behavior.scale_up.stabilization_window_seconds = c[k].up_window;
		s.behavior.scale_down.set_window = true;
		s.behavior.scale_down.stabilization_window_seconds = c[k].down_window;
		for (int i = 0; i < c[k].n; i++)
			recs[i] = (struct autoscale_recommendation){ NOW - c[k].ago_min[i] * 60 * SEC,
								     c[k].rec[i] };
		in = input(&s, c[k].current, NULL, 0);
		in.recommendations = recs;
		in.n_recommendations = (size_t)c[k].n;
		assert_int_equal(autoscale_stabilize(&in, c[k].desired, &st), 0);
		if (st.replicas != c[k].want)
			fail_msg("%s: got %d, want %d", c[k].name, st.replicas, c[k].want);
		assert_int_equal(autoscale_history_new(&h), 0);
		assert_int_equal(autoscale_history_restore(h, recs, (size_t)c[k].n, NULL, 0, NULL, 0),
				 0);
		memset(&res, 0, sizeof(res));
		res.current = c[k].current;
		res.desired = c[k].current;
		res.recommendation = c[k].desired;
		res.record_recommendation = true;
		assert_int_equal(autoscale_history_record(h, &s, &res, NOW), 0);
		autoscale_history_attach(h, &in);
		assert_int_equal(in.n_recommendations, c[k].n_stored);
		for (int i = 0; i < c[k].n_stored; i++)
			if (in.recommendations[i].replicas != c[k].stored[i])
				fail_msg("%s: stored[%d] = %d, want %d", c[k].name, i,
					 in.recommendations[i].replicas, c[k].stored[i]);
		autoscale_history_free(h);
	}
}

/* TestStoreScaleEvents (the cases with a behavior; kinfer always has
 * one). The change within 60 s is read back through a Pods 100/60 s
 * policy: the scale-up limit is current - change + 100. */
static void hpa_store_scale_events(void **state)
{
	static const struct {
		const char *name;
		int n_prev;
		int32_t prev[4];
		int ago[4];
		int rules[5];
		int32_t want_change;
		int n_new;
		int32_t next[4];
		bool outdated[4];
	} c[] = {
		{ "empty entries with two-policy-behavior",
		  0,
		  { 0 },
		  { 0 },
		  { 10, 60, 100, 60, 0 },
		  0,
		  1,
		  { 5 },
		  { false } },
		{ "one outdated entry to be replaced with behavior",
		  1,
		  { 7 },
		  { 61 },
		  { 10, 60, 100, 60, 0 },
		  0,
		  1,
		  { 5 },
		  { false } },
		{ "one actual entry to be not touched with behavior",
		  1,
		  { 7 },
		  { 58 },
		  { 10, 60, 100, 60, 0 },
		  7,
		  2,
		  { 7, 5 },
		  { false, false } },
		{ "two entries, one of them to be replaced",
		  2,
		  { 7, 6 },
		  { 61, 59 },
		  { 10, 60, 0, 0, 0 },
		  6,
		  2,
		  { 5, 6 },
		  { false, false } },
		{ "replace one entry, use policies with different periods",
		  4,
		  { 8, 6, 7, 9 },
		  { 29, 59, 61, 61 },
		  { 10, 60, 100, 30, 0 },
		  14,
		  4,
		  { 8, 6, 7, 5 },
		  { false, false, true, false } },
		{ "two entries, both actual",
		  2,
		  { 7, 6 },
		  { 58, 59 },
		  { 10, 120, 100, 30, 0 },
		  13,
		  3,
		  { 7, 6, 5 },
		  { false, false, false } },
	};
	(void)state;

	for (size_t k = 0; k < N(c); k++) {
		for (int dir = 0; dir < 2; dir++) {
			struct autoscale_spec s = spec1(AUTOSCALE_QUEUE_DEPTH, 1, 0, 10000);
			struct autoscale_rules *rules = dir ? &s.behavior.scale_down :
							      &s.behavior.scale_up;
			const struct autoscale_policy probe = { AUTOSCALE_POLICY_PODS, 100, 60 };
			struct autoscale_scale_event prev[4];
			const struct autoscale_scale_event *got;
			struct autoscale_history *h;
			struct autoscale_input in;
			struct autoscale_result res;
			struct autoscale_step st;
			size_t n;

			for (int i = 0; i < c[k].n_prev; i++)
				prev[i] = (struct autoscale_scale_event){ NOW - c[k].ago[i] * SEC,
									  c[k].prev[i], false };
			/* The change within 60 s, through the probe policy. */
			in = input(&s, 10, NULL, 0);
			set_rules(&s.behavior.scale_up, 0, AUTOSCALE_SELECT_MAX, 1, &probe);
			in.up_events = prev;
			in.n_up_events = (size_t)c[k].n_prev;
			assert_int_equal(autoscale_rate_limit(&in, 10000, &st), 0);
			assert_int_equal(st.replicas, 110 - c[k].want_change);
			/* Store a change of 5 and compare the lists. */
			memset(&s.behavior, 0, sizeof(s.behavior));
			gen_rules(rules, c[k].rules[0], c[k].rules[1], c[k].rules[2], c[k].rules[3],
				  c[k].rules[4]);
			assert_int_equal(autoscale_history_new(&h), 0);
			assert_int_equal(autoscale_history_restore(h, NULL, 0, dir ? NULL : prev,
								   dir ? 0 : (size_t)c[k].n_prev,
								   dir ? prev : NULL,
								   dir ? (size_t)c[k].n_prev : 0),
					 0);
			memset(&res, 0, sizeof(res));
			res.current = 10;
			res.desired = dir ? 5 : 15;
			res.rescale = true;
			assert_int_equal(autoscale_history_record(h, &s, &res, NOW), 0);
			autoscale_history_attach(h, &in);
			got = dir ? in.down_events : in.up_events;
			n = dir ? in.n_down_events : in.n_up_events;
			if (n != (size_t)c[k].n_new)
				fail_msg("%s (%s): %zu events, want %d", c[k].name,
					 dir ? "down" : "up", n, c[k].n_new);
			for (size_t i = 0; i < n; i++)
				if (got[i].change != c[k].next[i] ||
				    got[i].outdated != c[k].outdated[i])
					fail_msg("%s (%s): event %zu is %d/%d", c[k].name,
						 dir ? "down" : "up", i, got[i].change,
						 got[i].outdated);
			autoscale_history_free(h);
		}
	}
}

/* kinfer's defaults: the inference rules, every field set. */
static void defaults_are_the_inference_rules(void **state)
{
	struct autoscale_behavior b;
	struct autoscale_spec s = spec1(AUTOSCALE_QUEUE_DEPTH, 5, 1, 10);
	(void)state;

	autoscale_behavior_defaults(&b);
	assert_int_equal(b.scale_up.stabilization_window_seconds, 0);
	assert_int_equal(b.scale_up.n_policies, 2);
	assert_int_equal(b.scale_up.policies[0].type, AUTOSCALE_POLICY_PERCENT);
	assert_int_equal(b.scale_up.policies[0].value, 50);
	assert_int_equal(b.scale_up.policies[1].type, AUTOSCALE_POLICY_PODS);
	assert_int_equal(b.scale_up.policies[1].value, 1);
	assert_int_equal(b.scale_down.stabilization_window_seconds, 300);
	assert_int_equal(b.scale_down.n_policies, 1);
	assert_int_equal(b.scale_down.policies[0].value, 1);
	assert_int_equal(b.scale_down.policies[0].period_seconds, 60);
	assert_true(b.scale_up.tolerance == 0.1 && b.scale_down.tolerance == 0.1);
	/* A user's field replaces only that field. */
	s.behavior.scale_down.set_window = true;
	s.behavior.scale_down.stabilization_window_seconds = 60;
	s.set_tolerance = true;
	s.tolerance = 0.05;
	s.behavior.scale_up.set_tolerance = true;
	s.behavior.scale_up.tolerance = 0.2;
	assert_int_equal(autoscale_resolve(&s, &b), 0);
	assert_int_equal(b.scale_down.stabilization_window_seconds, 60);
	assert_int_equal(b.scale_down.n_policies, 1);
	assert_int_equal(b.scale_down.policies[0].period_seconds, 60);
	assert_int_equal(b.scale_up.n_policies, 2);
	assert_true(b.scale_down.tolerance == 0.05);
	assert_true(b.scale_up.tolerance == 0.2);
}

/* One evaluation under the defaults, recorded into h as the controller
 * would do after applying it. */
static struct autoscale_result step(struct autoscale_history *h, const struct autoscale_spec *s,
				    int32_t current, const struct autoscale_pod *p, size_t n,
				    int64_t now)
{
	struct autoscale_input in = input(s, current, p, n);
	struct autoscale_result res;

	in.now_ms = now;
	autoscale_history_attach(h, &in);
	assert_int_equal(autoscale_evaluate(&in, &res), 0);
	assert_int_equal(autoscale_history_record(h, s, &res, now), 0);
	return res;
}

static void queue_pods(struct autoscale_pod *p, size_t n, double q)
{
	memset(p, 0, n * sizeof(*p));
	for (size_t k = 0; k < n; k++) {
		p[k].present = 1;
		p[k].values[0] = q;
	}
}

/* A burst: +50% or +1 per 15 s, no faster. */
static void inference_burst_scale_up(void **state)
{
	struct autoscale_spec s = spec1(AUTOSCALE_QUEUE_DEPTH, 5, 1, 10);
	struct autoscale_history *h;
	struct autoscale_pod p[10];
	struct autoscale_result r;
	int32_t cur = 2;
	static const struct {
		int t;
		int32_t want;
		const char *reason;
	} timeline[] = {
		{ 0, 3, "ScaleUpLimit" },  /* max(ceil(2*1.5), 2+1) */
		{ 10, 3, "ScaleUpLimit" }, /* the +1 is within 15 s */
		{ 15, 5, "ScaleUpLimit" }, /* ceil(3*1.5) */
		{ 30, 8, "ScaleUpLimit" }, /* ceil(5*1.5) */
		{ 45, 10, "TooManyReplicas" }, { 60, 10, "TooManyReplicas" },
	};
	(void)state;

	assert_int_equal(autoscale_history_new(&h), 0);
	for (size_t k = 0; k < N(timeline); k++) {
		queue_pods(p, (size_t)cur, 30);
		r = step(h, &s, cur, p, (size_t)cur, NOW + timeline[k].t * SEC);
		if (r.desired != timeline[k].want || strcmp(r.reason, timeline[k].reason))
			fail_msg("t=%d: got %d %s, want %d %s", timeline[k].t, r.desired, r.reason,
				 timeline[k].want, timeline[k].reason);
		assert_string_equal(r.message, "QueueDepth above target");
		cur = r.desired;
	}
	autoscale_history_free(h);
}

/* Quiet: nothing for 300 s, then one pod a minute. */
static void inference_slow_scale_down(void **state)
{
	struct autoscale_spec s = spec1(AUTOSCALE_QUEUE_DEPTH, 5, 1, 10);
	struct autoscale_history *h;
	struct autoscale_pod p[10];
	struct autoscale_result r;
	int32_t cur = 4;
	(void)state;

	assert_int_equal(autoscale_history_new(&h), 0);
	for (int t = 0; t <= 480; t += 15) {
		int32_t want = t < 300 ? 4 : t < 360 ? 3 : t < 420 ? 2 : 1;
		queue_pods(p, (size_t)cur, 0.5);
		r = step(h, &s, cur, p, (size_t)cur, NOW + t * SEC);
		if (r.desired != want)
			fail_msg("t=%d: got %d (%s), want %d", t, r.desired, r.reason, want);
		if (t < 300)
			assert_string_equal(r.reason, "ScaleDownStabilized");
		cur = r.desired;
	}
	/* At min: the metrics recommend 1 too. */
	assert_string_equal(r.reason, "DesiredWithinRange");
	autoscale_history_free(h);
}

/* Down only when every metric is below target for the whole window. */
static void inference_down_needs_all_metrics_low(void **state)
{
	struct autoscale_spec s = spec1(AUTOSCALE_QUEUE_DEPTH, 5, 1, 10);
	struct autoscale_history *h;
	struct autoscale_pod p[4];
	struct autoscale_result r;
	(void)state;

	s.n_metrics = 2;
	s.metrics[1] = (struct autoscale_metric_spec){ AUTOSCALE_GPU_UTILIZATION, 70 };
	assert_int_equal(autoscale_history_new(&h), 0);
	/* The queue is empty, but the GPUs sit at their target: stay. */
	for (int t = 0; t <= 600; t += 15) {
		for (int k = 0; k < 4; k++)
			p[k] = (struct autoscale_pod){ AUTOSCALE_POD_READY, 3, { 0, 71 } };
		r = step(h, &s, 4, p, 4, NOW + t * SEC);
		assert_int_equal(r.desired, 4);
		assert_int_equal(r.recommendation, 4);
	}
	/*
	 * Both low from 615 s, except the queue back at its target once at
	 * 700 s: that recommendation of 4 keeps the count for 300 s more,
	 * so the first pod goes at 1000 s, not at 900 s.
	 */
	for (int t = 615; t <= 1000; t += 15) {
		for (int k = 0; k < 4; k++)
			p[k] = (struct autoscale_pod){ AUTOSCALE_POD_READY,
						       3,
						       { t == 705 ? 5 : 0, 10 } };
		r = step(h, &s, 4, p, 4, NOW + t * SEC);
		if (r.desired != (t < 1005 ? 4 : 3))
			fail_msg("t=%d: got %d (%s)", t, r.desired, r.reason);
	}
	r = step(h, &s, 4, p, 4, NOW + 1005 * SEC);
	assert_int_equal(r.desired, 3);
	assert_string_equal(r.reason, "ScaleDownLimit");
	autoscale_history_free(h);
}

/* Any metric breaching drives the scale-up; the status names it. */
static void inference_any_metric_breach(void **state)
{
	struct autoscale_spec s = spec1(AUTOSCALE_QUEUE_DEPTH, 5, 1, 20);
	struct autoscale_pod p[4];
	struct autoscale_input in;
	struct autoscale_result r;
	(void)state;

	s.n_metrics = 3;
	s.metrics[1] = (struct autoscale_metric_spec){ AUTOSCALE_GPU_UTILIZATION, 70 };
	s.metrics[2] = (struct autoscale_metric_spec){ AUTOSCALE_KV_CACHE_UTILIZATION, 90 };
	for (int k = 0; k < 4; k++)
		p[k] = (struct autoscale_pod){ AUTOSCALE_POD_READY, 7, { 2, 95, 80 } };
	in = input(&s, 4, p, 4);
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	/* GPU: ceil(95/70*4) = 6 = ceil(4*1.5): not limited. */
	expect(r, 6, "DesiredWithinRange");
	assert_int_equal(r.metric, 1);
	assert_string_equal(r.message, "GPUUtilization above target");
	assert_int_equal(r.metrics[0].replicas, 2);
	assert_int_equal(r.metrics[1].replicas, 6);
	assert_int_equal(r.metrics[2].replicas, 4);
	assert_true(r.metrics[0].current == 2 && r.metrics[0].target == 5);
	assert_true(r.record_recommendation && r.recommendation == 6);
}

/* Pods still loading the model hold back a scale-up that the two ready
 * pods alone would ask for: (6+6+0+0)/4 flips the direction. */
static void inference_loading_pods(void **state)
{
	struct autoscale_spec s = spec1(AUTOSCALE_QUEUE_DEPTH, 5, 1, 20);
	struct autoscale_pod p[4];
	struct autoscale_input in;
	struct autoscale_result r;
	(void)state;

	memset(p, 0, sizeof(p));
	for (int k = 0; k < 4; k++)
		p[k].state = k < 2 ? AUTOSCALE_POD_READY : AUTOSCALE_POD_UNREADY;
	p[0] = (struct autoscale_pod){ AUTOSCALE_POD_READY, 1, { 6 } };
	p[1] = (struct autoscale_pod){ AUTOSCALE_POD_READY, 1, { 6 } };
	in = input(&s, 4, p, 4);
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	expect(r, 4, "DesiredWithinRange");
	assert_false(r.rescale);
	/* Without the loading pods the same queue would scale 2 -> 3. */
	in = input(&s, 2, p, 2);
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	expect(r, 3, "DesiredWithinRange");
	/*
	 * During a rollout with surge: spec 1, a ready pod at 1.5x its target
	 * and a new pod still loading. Counted at 0 the loading pod halves
	 * the ratio (0.75): the direction flips, so stay at 1 rather than
	 * add a replica that is already on its way.
	 */
	p[0].values[0] = 7.5;
	p[1] = (struct autoscale_pod){ AUTOSCALE_POD_UNREADY, 0, { 0 } };
	in = input(&s, 1, p, 2);
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	expect(r, 1, "DesiredWithinRange");
}

/* Metrics source down: hold the current count, never fall to min. */
static void inference_hold_when_metrics_fail(void **state)
{
	struct autoscale_spec s = spec1(AUTOSCALE_QUEUE_DEPTH, 5, 1, 10);
	struct autoscale_pod p[6];
	struct autoscale_service sv = { 0, { 0 } };
	struct autoscale_input in;
	struct autoscale_result r;
	(void)state;

	memset(p, 0, sizeof(p));
	in = input(&s, 6, p, 6);
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	expect(r, 6, "FailedGetPodsMetric");
	assert_true(r.hold && !r.active && !r.rescale);
	assert_string_equal(r.active_reason, "FailedGetPodsMetric");
	assert_non_null(strstr(r.message, "holding 6 replicas"));
	/* A service metric without a value: the same. */
	s.metrics[0] = (struct autoscale_metric_spec){ AUTOSCALE_LATENCY_P99, 2000 };
	in.service = &sv;
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	expect(r, 6, "FailedGetServiceMetric");
	/* A latency with no ready pod to scale from is not a reason to
	 * drop to 0 (the HPA would compute ceil(ratio * 0)). */
	sv = (struct autoscale_service){ 1, { 4000 } };
	for (int k = 0; k < 6; k++)
		p[k].state = AUTOSCALE_POD_UNREADY;
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	expect(r, 6, "FailedGetServiceMetric");
}

/* After a metrics outage longer than the window, the window starts again:
 * the holds recommended the current count. */
static void inference_window_restarts_after_outage(void **state)
{
	struct autoscale_spec s = spec1(AUTOSCALE_QUEUE_DEPTH, 5, 1, 10);
	struct autoscale_history *h = NULL;
	struct autoscale_pod p[6];
	struct autoscale_input in;
	struct autoscale_result r;
	int64_t t = 0;
	(void)state;

	assert_int_equal(autoscale_history_new(&h), 0);
	/* Busy at 6 replicas. */
	for (int k = 0; k < 6; k++)
		p[k] = (struct autoscale_pod){ AUTOSCALE_POD_READY, 1, { 5 } };
	in = input(&s, 6, p, 6);
	in.now_ms = t;
	autoscale_history_attach(h, &in);
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	expect(r, 6, "DesiredWithinRange");
	assert_int_equal(autoscale_history_record(h, &s, &r, t), 0);
	/* Ten minutes without metrics: held every 15 s. */
	for (int k = 0; k < 6; k++)
		p[k].present = 0;
	for (t = 15000; t <= 600000; t += 15000) {
		in.now_ms = t;
		autoscale_history_attach(h, &in);
		assert_int_equal(autoscale_evaluate(&in, &r), 0);
		assert_true(r.hold);
		assert_int_equal(autoscale_history_record(h, &s, &r, t), 0);
	}
	/* Back and idle: no scale-down inside the window after the outage. */
	for (int k = 0; k < 6; k++)
		p[k] = (struct autoscale_pod){ AUTOSCALE_POD_READY, 1, { 0 } };
	for (t = 615000; t < 900000; t += 15000) {
		in.now_ms = t;
		autoscale_history_attach(h, &in);
		assert_int_equal(autoscale_evaluate(&in, &r), 0);
		expect(r, 6, "ScaleDownStabilized");
		assert_int_equal(autoscale_history_record(h, &s, &r, t), 0);
	}
	/* The window has passed since the last hold: one pod down. */
	in.now_ms = t;
	autoscale_history_attach(h, &in);
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	expect(r, 5, "ScaleDownLimit");
	autoscale_history_free(h);
}

/* Service-level metrics: ratio times the ready pods. */
static void inference_service_latency(void **state)
{
	struct autoscale_spec s = spec1(AUTOSCALE_LATENCY_P99, 2000, 1, 10);
	struct autoscale_pod p[5];
	struct autoscale_service sv = { 1, { 3000 } };
	struct autoscale_input in;
	struct autoscale_result r;
	(void)state;

	memset(p, 0, sizeof(p));
	p[4].state = AUTOSCALE_POD_UNREADY;
	in = input(&s, 5, p, 5);
	in.service = &sv;
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	/* ceil(1.5 * 4 ready) = 6 <= ceil(5 * 1.5). */
	expect(r, 6, "DesiredWithinRange");
	assert_string_equal(r.message, "LatencyP99 above target");
	assert_true(r.metrics[0].current == 3000);
	/* TimeToFirstTokenP99 within the tolerance: no change. */
	s.metrics[0] = (struct autoscale_metric_spec){ AUTOSCALE_TIME_TO_FIRST_TOKEN_P99, 500 };
	sv.values[0] = 540;
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	expect(r, 5, "DesiredWithinRange");
	assert_false(r.rescale);
}

/* From zero (minReplicas 0): the ratio alone, one pod at a time. */
static void inference_from_zero(void **state)
{
	struct autoscale_spec s = spec1(AUTOSCALE_CUSTOM, 10, 0, 10);
	struct autoscale_service sv = { 1, { 25 } };
	struct autoscale_input in;
	struct autoscale_result r;
	(void)state;

	in = input(&s, 0, NULL, 0);
	in.service = &sv;
	assert_int_equal(autoscale_evaluate(&in, &r), 0);
	assert_int_equal(r.recommendation, 3);
	expect(r, 1, "ScaleUpLimit");
}

static void spec_checks(void **state)
{
	struct autoscale_spec s;
	char why[128];
	static const struct {
		int field;
		const char *msg;
	} bad[] = {
		{ 0, "minReplicas" },
		{ 1, "maxReplicas" },
		{ 2, "target" },
		{ 3, "1 to 8" },
		{ 4, "scaleUp.policies[0]" },
		{ 5, "scaleDown.stabilizationWindowSeconds" },
		{ 6, "scaleUp.policies must have" },
		{ 7, "tolerance" },
		{ 8, "type is unknown" },
	};
	(void)state;

	s = spec1(AUTOSCALE_QUEUE_DEPTH, 5, 1, 10);
	assert_int_equal(autoscale_spec_check(&s, why, sizeof(why)), 0);
	for (size_t k = 0; k < N(bad); k++) {
		s = spec1(AUTOSCALE_QUEUE_DEPTH, 5, 1, 10);
		switch (bad[k].field) {
		case 0:
			s.min_replicas = 11;
			break;
		case 1:
			s.max_replicas = 0;
			s.min_replicas = 0;
			break;
		case 2:
			s.metrics[0].target = 0;
			break;
		case 3:
			s.n_metrics = 9;
			break;
		case 4:
			s.behavior.scale_up.set_policies = true;
			s.behavior.scale_up.n_policies = 1;
			s.behavior.scale_up.policies[0] = (struct autoscale_policy){
				AUTOSCALE_POLICY_PODS, 1, 1801
			};
			break;
		case 5:
			s.behavior.scale_down.set_window = true;
			s.behavior.scale_down.stabilization_window_seconds = 3601;
			break;
		case 6:
			s.behavior.scale_up.set_policies = true;
			break;
		case 7:
			s.set_tolerance = true;
			s.tolerance = -1;
			break;
		case 8:
			s.metrics[0].type = AUTOSCALE_METRIC_TYPE_COUNT;
			break;
		}
		assert_int_equal(autoscale_spec_check(&s, why, sizeof(why)), -EINVAL);
		if (!strstr(why, bad[k].msg))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", k, why, bad[k].msg);
		struct autoscale_input in = input(&s, 1, NULL, 0);
		struct autoscale_result r;
		assert_int_equal(autoscale_evaluate(&in, &r), -EINVAL);
	}
}

static void metric_type_names(void **state)
{
	enum autoscale_metric_type t;
	(void)state;

	for (unsigned k = 0; k < AUTOSCALE_METRIC_TYPE_COUNT; k++) {
		const char *name = autoscale_metric_type_name((enum autoscale_metric_type)k);
		assert_non_null(name);
		assert_int_equal(autoscale_metric_type_parse(name, &t), 0);
		assert_int_equal(t, k);
	}
	assert_int_equal(autoscale_metric_type_parse("CPU", &t), -EINVAL);
	assert_null(autoscale_metric_type_name(AUTOSCALE_METRIC_TYPE_COUNT));
	assert_true(autoscale_metric_per_pod(AUTOSCALE_KV_CACHE_UTILIZATION));
	assert_false(autoscale_metric_per_pod(AUTOSCALE_LATENCY_P99));
	assert_false(autoscale_metric_per_pod(AUTOSCALE_CUSTOM));
}

/* The history stays bounded however long it runs. */
static void history_is_bounded(void **state)
{
	struct autoscale_spec s = spec1(AUTOSCALE_QUEUE_DEPTH, 5, 1, 10);
	struct autoscale_history *h;
	struct autoscale_input in;
	struct autoscale_pod p[4];
	(void)state;

	assert_int_equal(autoscale_history_new(&h), 0);
	queue_pods(p, 4, 5);
	for (int t = 0; t < 20000; t++)
		step(h, &s, 4, p, 4, NOW + t * 15 * SEC);
	memset(&in, 0, sizeof(in));
	autoscale_history_attach(h, &in);
	/* Entries older than both windows are reused: 300 s / 15 s + 1. */
	assert_true(in.n_recommendations <= 22);
	assert_int_equal(autoscale_history_restore(h, NULL, 5000, NULL, 0, NULL, 0), -E2BIG);
	autoscale_history_free(h);
	autoscale_history_free(NULL);
}

int tests_autoscale_controls(void);

int tests_autoscale(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hpa_resource_scale),
		cmocka_unit_test(hpa_pods_metric),
		cmocka_unit_test(hpa_configurable_tolerance),
		cmocka_unit_test(hpa_missing_metrics),
		cmocka_unit_test(hpa_missing_and_unready),
		cmocka_unit_test(hpa_computed_tolerance),
		cmocka_unit_test(hpa_object_metric),
		cmocka_unit_test(hpa_empty_metrics),
		cmocka_unit_test(hpa_controller_cases),
		cmocka_unit_test(hpa_controller_bounds),
		cmocka_unit_test(hpa_controller_more),
		cmocka_unit_test(hpa_controller_object),
		cmocka_unit_test(hpa_invalid_metrics),
		cmocka_unit_test(hpa_select_min),
		cmocka_unit_test(hpa_scaling_with_rules),
		cmocka_unit_test(hpa_normalize_with_behavior),
		cmocka_unit_test(hpa_store_scale_events),
		cmocka_unit_test(defaults_are_the_inference_rules),
		cmocka_unit_test(inference_burst_scale_up),
		cmocka_unit_test(inference_slow_scale_down),
		cmocka_unit_test(inference_down_needs_all_metrics_low),
		cmocka_unit_test(inference_any_metric_breach),
		cmocka_unit_test(inference_loading_pods),
		cmocka_unit_test(inference_hold_when_metrics_fail),
		cmocka_unit_test(inference_window_restarts_after_outage),
		cmocka_unit_test(inference_service_latency),
		cmocka_unit_test(inference_from_zero),
		cmocka_unit_test(spec_checks),
		cmocka_unit_test(metric_type_names),
		cmocka_unit_test(history_is_bounded),
	};
	/* The controls on top of the core: test_autoscale_controls.c. */
	return cmocka_run_group_tests_name("autoscale", tests, NULL, NULL) +
	       tests_autoscale_controls();
}
