/*
 * status: the conditions for each situation the controller meets, and
 * metav1.Condition rules (lastTransitionTime moves only with status; other
 * controllers' conditions survive).
 */
#include "unit.h"

#include "status.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static struct kdeployment dep(int32_t spec, int32_t replicas, int32_t updated)
{
	struct kdeployment d;
	memset(&d, 0, sizeof(d));
	d.generation = d.observed_generation = 2;
	d.spec_replicas = spec;
	d.replicas = replicas;
	d.updated = updated;
	d.progressing = KCOND_TRUE;
	return d;
}

static const char *cond(json_object *st, const char *type, const char **reason)
{
	return status_condition(st, type, reason, NULL);
}

static void all_ready(void **state)
{
	struct kdeployment d = dep(3, 3, 3);
	struct status_input in = { .generation = 2,
				   .desired = 3,
				   .dep = &d,
				   .pods = 3,
				   .ready = 3,
				   .warm = 3,
				   .selector = "kinfer.io/service=x",
				   .now = 1000 };
	const char *r;
	(void)state;
	json_object *st = status_build(&in);
	assert_string_equal(cond(st, "Ready", &r), "True");
	assert_string_equal(r, "AllReplicasReady");
	assert_string_equal(cond(st, "Progressing", &r), "False");
	assert_string_equal(r, "Complete");
	assert_string_equal(cond(st, "Degraded", &r), "False");
	assert_string_equal(cond(st, "WarmedUp", &r), "True");
	assert_string_equal(r, "AllReplicasWarm");
	assert_string_equal(json_object_get_string(json_object_object_get(st, "selector")),
			    "kinfer.io/service=x");
	json_object_put(st);
}

/* A new InferenceService whose name's Deployment is still its deleted
 * predecessor's: waiting, not degraded, whatever that one's pods do. */
static void waiting_for_cleanup(void **state)
{
	const char *msg = "Deployment x still belongs to the InferenceService of this name "
			  "deleted before this one (uid u1)";
	struct status_input in = { .generation = 1,
				   .desired = 1,
				   .pods = 1,
				   .ready = 1,
				   .warm = 1,
				   .replacing = msg,
				   .selector = "kinfer.io/service=x",
				   .now = 1000 };
	const char *r, *m = NULL;
	(void)state;
	json_object *st = status_build(&in);
	assert_string_equal(status_condition(st, "Ready", &r, &m), "False");
	assert_string_equal(r, "WaitingForCleanup");
	assert_string_equal(m, msg);
	assert_string_equal(cond(st, "Progressing", &r), "True");
	assert_string_equal(r, "WaitingForCleanup");
	assert_string_equal(cond(st, "Degraded", &r), "False");
	assert_string_equal(r, "AsExpected");
	json_object_put(st);
	/* A spec that cannot run says so first. */
	in.invalid = "spec.resources: bad";
	st = status_build(&in);
	assert_string_equal(cond(st, "Ready", &r), "False");
	assert_string_equal(r, "InvalidSpec");
	assert_string_equal(cond(st, "Progressing", &r), "False");
	json_object_put(st);
}

static void starting_and_cold(void **state)
{
	struct kdeployment d = dep(2, 2, 2);
	struct status_input in = {
		.generation = 2, .desired = 2, .dep = &d, .pods = 2, .ready = 0, .warm = 0, .now = 1000
	};
	const char *r;
	(void)state;
	json_object *st = status_build(&in);
	assert_string_equal(cond(st, "Ready", &r), "False");
	assert_string_equal(r, "ReplicasNotReady");
	assert_string_equal(cond(st, "Progressing", &r), "True");
	assert_string_equal(r, "WaitingForReady");
	assert_string_equal(cond(st, "WarmedUp", &r), "False");
	assert_string_equal(r, "Warming");
	json_object_put(st);
	in.warm_failed = 1;
	st = status_build(&in);
	assert_string_equal(cond(st, "WarmedUp", &r), "False");
	assert_string_equal(r, "WarmupFailed");
	json_object_put(st);
	in.warm_failed = 0;
	in.dep = NULL;
	st = status_build(&in);
	assert_string_equal(cond(st, "Progressing", &r), "True");
	assert_string_equal(r, "Creating");
	json_object_put(st);
}

static void degraded_reasons(void **state)
{
	struct kdeployment d = dep(2, 0, 0);
	struct status_input in = { .generation = 2, .desired = 2, .dep = &d, .now = 1000 };
	const char *r, *m;
	(void)state;
	d.replica_failure = KCOND_TRUE;
	d.failure_message = "pods \"x\" is forbidden: exceeded quota: q";
	json_object *st = status_build(&in);
	assert_string_equal(status_condition(st, "Degraded", &r, &m), "True");
	assert_string_equal(r, "ReplicaFailure");
	assert_non_null(strstr(m, "exceeded quota"));
	assert_string_equal(cond(st, "Ready", &r), "False");
	json_object_put(st);
	d.replica_failure = KCOND_FALSE;
	in.pods = 2;
	in.unschedulable = 2;
	in.unschedulable_msg = "0/4 nodes are available: 4 Insufficient nvidia.com/gpu.";
	st = status_build(&in);
	assert_string_equal(status_condition(st, "Degraded", &r, &m), "True");
	assert_string_equal(r, "Unschedulable");
	assert_non_null(strstr(m, "4 Insufficient nvidia.com/gpu"));
	json_object_put(st);
	in.unschedulable = 0;
	in.image_errors = 1;
	in.image_reason = "ImagePullBackOff";
	st = status_build(&in);
	assert_string_equal(cond(st, "Degraded", &r), "True");
	assert_string_equal(r, "ImagePullBackOff");
	json_object_put(st);
	/* Another autoscaler has the replicas: said first (it is why the
	 * count is not the spec's); Ready still counts what runs. */
	in.image_errors = 0;
	in.ready = in.warm = 2;
	d.ready = d.updated = d.replicas = 2;
	in.other_autoscaler = "HorizontalPodAutoscaler llm (1 to 4 replicas) also scales "
			      "Deployment llm";
	st = status_build(&in);
	assert_string_equal(status_condition(st, "Degraded", &r, &m), "True");
	assert_string_equal(r, "ConflictingAutoscaler");
	assert_string_equal(m, in.other_autoscaler);
	assert_string_equal(cond(st, "Ready", &r), "True");
	assert_string_equal(r, "AllReplicasReady");
	json_object_put(st);
	in.other_autoscaler = NULL;
	in.ready = in.warm = 0;
	in.invalid = "spec.image: required for framework custom";
	st = status_build(&in);
	assert_string_equal(status_condition(st, "Ready", &r, &m), "False");
	assert_string_equal(r, "InvalidSpec");
	assert_string_equal(m, "spec.image: required for framework custom");
	json_object_put(st);
	/* An object kinfer must not take over: its own reason everywhere. */
	in.invalid = "Service api already exists in namespace ns and is not controlled by this "
		     "InferenceService: kinfer does not take it over; delete or rename it";
	in.invalid_reason = "ResourceExists";
	st = status_build(&in);
	assert_string_equal(status_condition(st, "Degraded", &r, &m), "True");
	assert_string_equal(r, "ResourceExists");
	assert_non_null(strstr(m, "Service api already exists"));
	assert_string_equal(cond(st, "Ready", &r), "False");
	assert_string_equal(r, "ResourceExists");
	assert_string_equal(cond(st, "Progressing", &r), "False");
	assert_string_equal(r, "ResourceExists");
	json_object_put(st);
}

static void transition_time_and_foreign_conditions(void **state)
{
	struct kdeployment d = dep(1, 1, 1);
	/* Autoscaled, before the autoscaler's first decision: its conditions
	 * are carried over. */
	struct status_input in = { .generation = 1,
				   .desired = 1,
				   .dep = &d,
				   .pods = 1,
				   .ready = 0,
				   .now = 1000,
				   .scaling_enabled = true };
	(void)state;
	json_object *a = status_build(&in);
	json_object *conds = json_object_object_get(a, "conditions");
	/* Another controller's condition in the stored status. */
	json_object *w = json_tokener_parse("{\"type\":\"ScalingActive\",\"status\":\"True\","
					    "\"reason\":\"ValidMetricFound\",\"message\":\"m\","
					    "\"lastTransitionTime\":\"2026-01-01T00:00:00Z\"}");
	json_object_array_add(conds, w);
	json_object *old = json_tokener_parse(json_object_to_json_string(a));
	assert_true(status_same(a, old));

	/* Same situation later: nothing changes, so nothing to write. */
	in.old_status = old;
	in.now = 2000;
	json_object *b = status_build(&in);
	assert_true(status_same(b, old));
	assert_string_equal(cond(b, "ScalingActive", NULL), "True");
	json_object_put(b);

	/* Ready flips: its time moves, Degraded's does not. */
	in.ready = 1;
	in.warm = 1;
	json_object *c = status_build(&in);
	assert_false(status_same(c, old));
	json_object *cc = json_object_object_get(c, "conditions");
	for (size_t i = 0; i < json_object_array_length(cc); i++) {
		json_object *x = json_object_array_get_idx(cc, i);
		const char *t = json_object_get_string(json_object_object_get(x, "type"));
		const char *ts = json_object_get_string(
			json_object_object_get(x, "lastTransitionTime"));
		if (!strcmp(t, "Ready"))
			assert_string_equal(ts, "1970-01-01T00:33:20Z");
		if (!strcmp(t, "Degraded"))
			assert_string_equal(ts, "1970-01-01T00:16:40Z");
		if (!strcmp(t, "ScalingActive"))
			assert_string_equal(ts, "2026-01-01T00:00:00Z");
	}
	json_object_put(c);
	json_object_put(a);
	json_object_put(old);
}

/* A rollout's progress (pods made, scheduled) flips nothing; Ready
 * turning True, a condition added, or no status before, does. */
static void flipped_only_by_condition_status(void **state)
{
	struct kdeployment d = dep(2, 2, 0);
	struct status_input in = { .generation = 2, .desired = 2, .dep = &d, .now = 1000 };
	const char *r;
	(void)state;
	json_object *a = status_build(&in);
	assert_true(status_flipped(a, NULL));
	json_object *old = json_tokener_parse(json_object_to_json_string(a));
	assert_false(status_flipped(a, old));

	/* The pods made and running, not ready: counts and reasons move, no
	 * condition's status. */
	d.updated = 2;
	in.pods = 2;
	json_object *b = status_build(&in);
	assert_false(status_same(b, old));
	assert_false(status_flipped(b, old));
	assert_string_equal(cond(b, "Ready", &r), "False");

	/* One ready: Ready turns True (serving while the other starts). */
	in.ready = 1;
	json_object *c = status_build(&in);
	assert_string_equal(cond(c, "Ready", NULL), "True");
	assert_true(status_flipped(c, old));

	/* A condition another controller added to the stored status is one
	 * more than the new status has (it is carried over only by build). */
	json_object *w = json_tokener_parse("{\"type\":\"Foo\",\"status\":\"True\"}");
	json_object_array_add(json_object_object_get(old, "conditions"), w);
	assert_true(status_flipped(b, old));
	json_object_put(a);
	json_object_put(b);
	json_object_put(c);
	json_object_put(old);
}

static json_object *metric_of(json_object *st, const char *type)
{
	json_object *cm = json_object_object_get(st, "currentMetrics");
	for (size_t i = 0; cm && i < json_object_array_length(cm); i++) {
		json_object *m = json_object_array_get_idx(cm, i);
		if (!strcmp(json_object_get_string(json_object_object_get(m, "type")), type))
			return m;
	}
	return NULL;
}

/* The autoscaler's decision in the status, and what happens when scaling
 * is turned off. */
/* Issue 17: status.scaling (bounds in force, open schedules, failures,
 * panicSince) and the ScalingPanic condition; a cleared field is a JSON
 * null, since the status goes out as a merge patch. */
static void scaling_controls_fields(void **state)
{
	struct kdeployment d = dep(3, 3, 3);
	struct status_scaling sc = {
		.active = false,
		.active_reason = "Fallback",
		.active_message = "metrics missing in 4 evaluations in a row",
		.limited_reason = "DesiredWithinRange",
		.limited_message = "",
		.n_metrics = 1,
		.metrics = { { "QueueDepth", false, 0, 5 } },
		.min_replicas = 4,
		.max_replicas = 10,
		.active_schedules = 5,
		.failures = 4,
		.panic_set = true,
		.panicking = true,
		.panic_since = 1800000000,
		.panic_reason = "PanicStarted",
		.panic_message = "panic: demand of 8 replicas",
	};
	struct status_input in = { .generation = 2,
				   .desired = 3,
				   .dep = &d,
				   .pods = 3,
				   .ready = 3,
				   .warm = 3,
				   .now = 1800000000,
				   .scaling_enabled = true,
				   .scaling = &sc };
	json_object *sv;
	(void)state;
	json_object *a = status_build(&in);
	json_object *x = json_object_object_get(a, "scaling");
	assert_int_equal(json_object_get_int(json_object_object_get(x, "minReplicas")), 4);
	assert_int_equal(json_object_get_int(json_object_object_get(x, "maxReplicas")), 10);
	assert_string_equal(json_object_to_json_string_ext(json_object_object_get(x, "activeSchedules"),
							   JSON_C_TO_STRING_PLAIN),
			    "[0,2]");
	assert_int_equal(json_object_get_int(json_object_object_get(x, "failures")), 4);
	assert_string_equal(json_object_get_string(json_object_object_get(x, "panicSince")),
			    "2027-01-15T08:00:00Z");
	assert_string_equal(cond(a, "ScalingActive", NULL), "False");
	assert_string_equal(cond(a, "ScalingPanic", NULL), "True");
	/* Calm again: nulls clear the old values; the server drops them. */
	in.old_status = json_tokener_parse(json_object_to_json_string(a));
	sc.failures = 0;
	sc.panicking = false;
	sc.panic_since = 0;
	snprintf(sc.panic_reason, sizeof(sc.panic_reason), "Stable");
	json_object *b = status_build(&in);
	assert_false(status_same(b, in.old_status));
	x = json_object_object_get(b, "scaling");
	assert_true(json_object_object_get_ex(x, "failures", &sv) && sv == NULL);
	assert_true(json_object_object_get_ex(x, "panicSince", &sv) && sv == NULL);
	assert_string_equal(cond(b, "ScalingPanic", NULL), "False");
	json_object *server = json_tokener_parse("{\"minReplicas\":4,\"maxReplicas\":10,"
						 "\"activeSchedules\":[0,2]}");
	json_object *c = json_tokener_parse(json_object_to_json_string(b));
	json_object_object_add(c, "scaling", server);
	assert_true(status_same(b, c));
	/* Without behavior.panic there is no ScalingPanic condition. */
	sc.panic_set = false;
	json_object *e = status_build(&in);
	assert_null(cond(e, "ScalingPanic", NULL));
	json_object_put(in.old_status);
	json_object_put(a);
	json_object_put(b);
	json_object_put(c);
	json_object_put(e);
}

static void scaling_fields(void **state)
{
	struct kdeployment d = dep(3, 3, 3);
	struct status_scaling sc = {
		.active = true,
		.active_reason = "ValidMetricFound",
		.active_message = "the autoscaler computed the replica count from QueueDepth",
		.limited = true,
		.limited_reason = "ScaleUpLimit",
		.limited_message =
			"the desired replica count is increasing faster than the maximum scale rate",
		.last_scale_time = 1800000000,
		.n_metrics = 2,
		.metrics = { { "QueueDepth", true, 7.123456, 5 }, { "LatencyP99", false, 0, 2000 } },
	};
	struct status_input in = { .generation = 2,
				   .desired = 3,
				   .dep = &d,
				   .pods = 3,
				   .ready = 3,
				   .warm = 3,
				   .now = 1800000000,
				   .scaling_enabled = true,
				   .scaling = &sc };
	(void)state;
	json_object *a = status_build(&in);
	assert_string_equal(cond(a, "ScalingActive", NULL), "True");
	assert_string_equal(cond(a, "ScalingLimited", NULL), "True");
	assert_string_equal(json_object_get_string(json_object_object_get(a, "lastScaleTime")),
			    "2027-01-15T08:00:00Z");
	json_object *q = metric_of(a, "QueueDepth"), *l = metric_of(a, "LatencyP99");
	assert_non_null(q);
	assert_non_null(l);
	/* Four significant digits, as written. */
	assert_string_equal(json_object_to_json_string(json_object_object_get(q, "value")), "7.123");
	assert_null(json_object_object_get(l, "value"));
	assert_int_equal(json_object_get_int(json_object_object_get(l, "target")), 2000);

	/* The server gives numbers back its own way (2000 for 2000.0). */
	json_object *server = json_tokener_parse(json_object_to_json_string(a));
	json_object_object_add(metric_of(server, "LatencyP99"), "target",
			       json_object_new_double(2000.0));
	assert_non_null(strstr(json_object_to_json_string(server), "2000.0"));
	json_object *old = json_tokener_parse(json_object_to_json_string(server));
	json_object_put(server);
	assert_true(status_same(a, old));
	in.old_status = old;
	/* A new value is a change to write. */
	sc.metrics[0].value = 9;
	json_object *b = status_build(&in);
	assert_false(status_same(b, old));
	json_object_put(b);

	/* No decision yet (a new leader): everything is carried over. */
	in.scaling = NULL;
	b = status_build(&in);
	assert_true(status_same(b, old));
	json_object_put(b);

	/* Scaling turned off: the fields go (null in the merge patch) and so
	 * do the two conditions. */
	in.scaling_enabled = false;
	b = status_build(&in);
	assert_true(json_object_object_get_ex(b, "lastScaleTime", NULL));
	assert_null(json_object_object_get(b, "lastScaleTime"));
	assert_null(json_object_object_get(b, "currentMetrics"));
	assert_null(cond(b, "ScalingActive", NULL));
	assert_false(status_same(b, old));
	json_object_put(b);
	json_object_put(a);
	json_object_put(old);
}

/* spec.scaling.scaleToZero: at zero Ready stays True (ScaledToZero), a
 * cold start is ScalingFromZero until a replica is warm, and
 * status.scaling has the zero time and the last activation in ms. */
static void scale_to_zero_ready(void **state)
{
	struct kdeployment d = dep(0, 0, 0);
	struct status_scaling sc = {
		.active = true,
		.active_reason = "ScaledToZero",
		.active_message = "",
		.limited_reason = "DesiredWithinRange",
		.limited_message = "",
		.min_replicas = 0,
		.max_replicas = 2,
		.scale_to_zero = true,
		.scaled_to_zero_at_ms = 1800000000123LL,
		.last_activation_ms = 1799999990456LL,
	};
	struct status_input in = { .generation = 2,
				   .desired = 0,
				   .dep = &d,
				   .now = 1800000000,
				   .scaling_enabled = true,
				   .scaling = &sc,
				   .scale_to_zero = true };
	const char *reason;
	(void)state;
	json_object *a = status_build(&in);
	assert_string_equal(cond(a, "Ready", &reason), "True");
	assert_string_equal(reason, "ScaledToZero");
	json_object *x = json_object_object_get(a, "scaling");
	assert_string_equal(json_object_get_string(json_object_object_get(x, "scaledToZeroAt")),
			    "2027-01-15T08:00:00.123Z");
	assert_string_equal(json_object_get_string(json_object_object_get(x, "lastActivation")),
			    "2027-01-15T07:59:50.456Z");
	/* Without scaleToZero, 0 wanted is not ready (as before). */
	in.scale_to_zero = false;
	json_object *b = status_build(&in);
	assert_string_equal(cond(b, "Ready", &reason), "False");
	assert_string_equal(reason, "ScaledToZero");
	/* Woken: one replica wanted, none ready yet. */
	in.scale_to_zero = true;
	in.desired = 1;
	d = dep(1, 1, 1);
	sc.waking = true;
	sc.scaled_to_zero_at_ms = 0;
	in.old_status = json_tokener_parse(json_object_to_json_string(a));
	json_object *c = status_build(&in);
	assert_string_equal(cond(c, "Ready", &reason), "True");
	assert_string_equal(reason, "ScalingFromZero");
	assert_false(status_same(c, in.old_status));
	json_object *sv;
	assert_true(json_object_object_get_ex(json_object_object_get(c, "scaling"),
					      "scaledToZeroAt", &sv) &&
		    sv == NULL);
	/* Warm: AllReplicasReady. */
	in.ready = in.warm = in.pods = 1;
	json_object *e = status_build(&in);
	assert_string_equal(cond(e, "Ready", &reason), "True");
	assert_string_equal(reason, "AllReplicasReady");
	json_object_put(in.old_status);
	json_object_put(a);
	json_object_put(b);
	json_object_put(c);
	json_object_put(e);
}

/* What Degraded ConflictingAutoscaler says: the way out depends on
 * spec.scaling; long names are cut, the message always ends. */
static void autoscaler_message(void **state)
{
	char buf[1024], name[300];
	(void)state;
	status_autoscaler_message(buf, sizeof(buf), "keda-hpa-llm", 1, 4, "llm", 2, false);
	assert_string_equal(buf,
			    "HorizontalPodAutoscaler keda-hpa-llm (1 to 4 replicas) also scales "
			    "Deployment llm: kinfer leaves the replicas to it (this "
			    "InferenceService asks for 2), and its scale-downs remove pods "
			    "undrained where the webhook scale.kinfer.io does not refuse them. "
			    "Delete it, or make it scale InferenceService llm instead (its scale "
			    "subresource: kinfer drains each scale-down)");
	status_autoscaler_message(buf, sizeof(buf), "llm", 2, 2, "llm", 5, true);
	assert_non_null(strstr(buf, "(this InferenceService asks for 5)"));
	assert_non_null(
		strstr(buf, "does not refuse them. Delete it: spec.scaling scales this service"));
	assert_null(strstr(buf, "scale subresource"));
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	status_autoscaler_message(buf, sizeof(buf), name, 0, INT32_MAX, name, INT32_MAX, false);
	assert_true(strlen(buf) < sizeof(buf) - 1);
	assert_non_null(strstr(buf, "(0 to 2147483647 replicas)"));
	assert_non_null(strstr(buf, "drains each scale-down)"));
	status_autoscaler_message(buf, 8, "llm", 1, 1, "llm", 1, false); /* cut to its buffer */
	assert_string_equal(buf, "Horizon");
	status_autoscaler_message(buf, 0, "llm", 1, 1, "llm", 1, false); /* nothing written */
	assert_string_equal(buf, "Horizon");
	/* One aimed at the InferenceService while spec.scaling decides. */
	status_autoscaler_isvc_message(buf, sizeof(buf), "keda-hpa-llm", 3, 3);
	assert_string_equal(buf, "HorizontalPodAutoscaler keda-hpa-llm (3 to 3 replicas) scales "
				 "this InferenceService, but spec.scaling decides its replicas: "
				 "the spec.replicas it writes is ignored. Delete it, or remove "
				 "spec.scaling to let it scale the service");
	status_autoscaler_isvc_message(buf, sizeof(buf), name, 0, INT32_MAX);
	assert_true(strlen(buf) < sizeof(buf) - 1);
	assert_non_null(strstr(buf, "to let it scale the service"));
	status_autoscaler_isvc_message(buf, 8, "llm", 1, 1);
	assert_string_equal(buf, "Horizon");
}

int tests_status(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(autoscaler_message),
		cmocka_unit_test(all_ready),
		cmocka_unit_test(starting_and_cold),
		cmocka_unit_test(waiting_for_cleanup),
		cmocka_unit_test(degraded_reasons),
		cmocka_unit_test(transition_time_and_foreign_conditions),
		cmocka_unit_test(scaling_fields),
		cmocka_unit_test(scaling_controls_fields),
		cmocka_unit_test(scale_to_zero_ready),
		cmocka_unit_test(flipped_only_by_condition_status),
	};
	return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
