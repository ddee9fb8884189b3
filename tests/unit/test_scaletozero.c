/*
 * scaletozero: the idle decision of spec.scaling.scaleToZero (issue 16).
 * Idle for idleSeconds goes to zero, work or an activation restarts the
 * clock, a newer activation wakes it at once and an older one does not,
 * a restart at zero stays there, and the controls around it (pauses,
 * schedules' floor, maxReplicas) win as README.md says.
 */
#include "unit.h"

#include "scaletozero.h"

#include <string.h>

#define S 1000LL /* ms per second */
#define T0 1796409000000LL

static struct scaletozero_input base(int64_t now, int32_t current)
{
	return (struct scaletozero_input){ .idle_seconds = 30,
					   .now_ms = now,
					   .current = current,
					   .floor = 0,
					   .max_replicas = 4,
					   .known = true };
}

static void idle_goes_to_zero(void **state)
{
	struct scaletozero_state st = { 0 };
	struct scaletozero_input in = base(T0, 2);
	(void)state;

	/* The first look starts the clock: never zero at once after a restart. */
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_NONE);
	assert_int_equal(st.last_activity_ms, T0);
	in.now_ms = T0 + 29 * S;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_NONE);
	in.now_ms = T0 + 30 * S;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_TO_ZERO);
	assert_int_equal(st.zero_at_ms, T0 + 30 * S);

	/* The result says it, whatever the metrics recommended. */
	struct autoscale_result res = {
		.current = 2, .desired = 2, .state = { .failures = 3 }, .fallback = true
	};
	scaletozero_apply(SCALETOZERO_TO_ZERO, &in, &res);
	assert_int_equal(res.desired, 0);
	assert_true(res.rescale);
	assert_string_equal(res.reason, "ScaledToZero");
	assert_false(res.fallback);
	assert_int_equal(res.state.failures, 0);
}

static void work_restarts_the_clock(void **state)
{
	struct scaletozero_state st = { 0 };
	struct scaletozero_input in = base(T0, 1);
	(void)state;

	scaletozero_decide(&in, &st);
	in.now_ms = T0 + 20 * S;
	in.busy = true;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_NONE);
	in.busy = false;
	in.now_ms = T0 + 49 * S;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_NONE);
	/* Not every ready pod read (or none ready): never zero on a guess. */
	in.now_ms = T0 + 60 * S;
	in.known = false;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_NONE);
	in.known = true;
	/* An activation is traffic too (the activator held a request). */
	in.activation_ms = T0 + 55 * S;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_NONE);
	in.now_ms = T0 + 84 * S;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_NONE);
	in.now_ms = T0 + 85 * S;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_TO_ZERO);
}

static void activation_wakes_only_when_newer(void **state)
{
	struct scaletozero_state st = { .last_activity_ms = T0, .zero_at_ms = T0 + 30 * S };
	struct scaletozero_input in = base(T0 + 40 * S, 0);
	struct autoscale_result res;
	(void)state;

	/* At zero, an annotation older than the zero time: stay. */
	in.activation_ms = T0 + 10 * S;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_STAY_ZERO);
	memset(&res, 0, sizeof(res));
	res.state.failures = 5;
	scaletozero_apply(SCALETOZERO_STAY_ZERO, &in, &res);
	assert_int_equal(res.desired, 0);
	assert_false(res.rescale);
	assert_true(res.active);
	assert_string_equal(res.active_reason, "ScaledToZero");
	assert_int_equal(res.state.failures, 0); /* no pods is not a metrics failure */

	/* A newer one: wake at once, to max(1, floor). */
	in.activation_ms = T0 + 39 * S;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_WAKE);
	assert_int_equal(st.woken_ms, T0 + 39 * S);
	memset(&res, 0, sizeof(res));
	scaletozero_apply(SCALETOZERO_WAKE, &in, &res);
	assert_int_equal(res.desired, 1);
	assert_true(res.rescale);
	assert_string_equal(res.reason, "ScaledFromZero");

	/* The Deployment does not show it yet: still wake, not back to 0. */
	in.now_ms = T0 + 41 * S;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_WAKE);
	/* A replica runs but is not warm: the autoscaler decides (floor 1). */
	in.current = 1;
	in.known = false;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_NONE);
	assert_int_equal(st.woken_ms, T0 + 39 * S);
	/* Warm and read: the cold start is over, and the clock runs from the
	 * activation, not from the zero time. */
	in.known = true;
	in.now_ms = T0 + 60 * S;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_NONE);
	assert_int_equal(st.woken_ms, 0);
	in.now_ms = T0 + 69 * S;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_TO_ZERO);
}

/* An activation while the drain to zero is under way (the autoscaler
 * counts the size being carried out, 0): woken, the drain is undone by
 * the InferenceService controller. And the floor of one is WaitingForIdle,
 * not a limit. */
static void activation_during_drain(void **state)
{
	struct scaletozero_state st = { 0 };
	struct scaletozero_input in = base(T0, 2);
	struct autoscale_result res;
	(void)state;

	scaletozero_decide(&in, &st);
	in.now_ms = T0 + 20 * S;
	memset(&res, 0, sizeof(res));
	res.current = 2;
	res.desired = 1;
	res.limited = true;
	res.limited_reason = res.reason = "TooFewReplicas";
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_NONE);
	scaletozero_apply(SCALETOZERO_NONE, &in, &res);
	assert_false(res.limited);
	assert_string_equal(res.reason, "WaitingForIdle");
	assert_string_equal(res.limited_reason, "DesiredWithinRange");
	in.now_ms = T0 + 30 * S;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_TO_ZERO);
	in.current = 0; /* draining: the decision being carried out */
	in.now_ms = T0 + 31 * S;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_STAY_ZERO);
	in.activation_ms = T0 + 31 * S + 500;
	in.now_ms = T0 + 32 * S;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_WAKE);
}

/* A restart at zero: the zero time comes back from the status; without
 * one, the first look is the zero time. The old annotation wakes nothing. */
static void restart_at_zero_stays(void **state)
{
	struct scaletozero_state st = { .zero_at_ms = T0 + 30 * S, .activation_ms = T0 + 5 * S };
	struct scaletozero_input in = base(T0 + 1000 * S, 0);
	(void)state;

	in.activation_ms = T0 + 5 * S;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_STAY_ZERO);
	struct scaletozero_state fresh = { 0 };
	assert_int_equal(scaletozero_decide(&in, &fresh), SCALETOZERO_STAY_ZERO);
	assert_int_equal(fresh.zero_at_ms, T0 + 1000 * S);
	in.now_ms += 5 * S;
	assert_int_equal(scaletozero_decide(&in, &fresh), SCALETOZERO_STAY_ZERO);
	/* An annotation from a skewed clock in the future counts as now. */
	in.activation_ms = T0 + 5000 * S;
	assert_int_equal(scaletozero_decide(&in, &fresh), SCALETOZERO_WAKE);
	assert_int_equal(fresh.woken_ms, in.now_ms);
}

/* The status's times written by a leader whose clock ran an hour ahead
 * count as now: the old code compared each activation with a zero time an
 * hour ahead and stayed at zero for that hour (the activator's requests
 * timing out), and an hour-ahead last activation kept it from idling. */
static void status_times_ahead_of_the_clock(void **state)
{
	struct scaletozero_state st = { .zero_at_ms = T0 + 3600 * S, .activation_ms = T0 + 3600 * S };
	struct scaletozero_input in = base(T0, 0);
	(void)state;

	in.activation_ms = T0 - 10 * S; /* the annotation still on the object */
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_STAY_ZERO);
	assert_int_equal(st.zero_at_ms, T0);
	/* The activator's next write (every 5 s while it holds requests). */
	in.now_ms = T0 + 5 * S;
	in.activation_ms = T0 + 4 * S;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_WAKE);

	struct scaletozero_state up = { .activation_ms = T0 + 3600 * S,
					.last_activity_ms = T0 + 3600 * S };
	in = base(T0, 1);
	assert_int_equal(scaletozero_decide(&in, &up), SCALETOZERO_NONE);
	in.now_ms = T0 + 30 * S;
	assert_int_equal(scaletozero_decide(&in, &up), SCALETOZERO_TO_ZERO);
}

/* The activator's clock runs 10 min behind the operator's: its
 * activations were all older than the zero time, and the old code woke
 * nothing until the activator's clock passed it (its requests timing out
 * meanwhile). They compare with the activation the annotation held at
 * zero now (the same clock); one no newer, as a restart reads it, still
 * wakes nothing, and with none held only the zero time can tell. */
static void activator_clock_behind(void **state)
{
	struct scaletozero_state st = { 0 };
	struct scaletozero_input in = base(T0, 1);
	(void)state;

	in.activation_ms = T0 - 600 * S; /* its last activation, 10 min behind */
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_NONE);
	in.now_ms = T0 + 30 * S;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_TO_ZERO);
	in.current = 0;
	in.now_ms = T0 + 40 * S;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_STAY_ZERO);
	/* A request at T0 + 45 s, stamped by the activator T0 - 555 s. */
	in.now_ms = T0 + 45 * S;
	in.activation_ms = T0 - 555 * S;
	assert_true(scaletozero_may_wake(&st, in.activation_ms));
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_WAKE);
	assert_int_equal(st.woken_ms, T0 + 45 * S); /* the cold start, by this clock */

	/* A new leader at zero: the zero time from the status, the annotation
	 * read at its first look stands for the one held then. */
	struct scaletozero_state fresh = { .zero_at_ms = T0 + 30 * S };
	in.now_ms = T0 + 50 * S;
	assert_int_equal(scaletozero_decide(&in, &fresh), SCALETOZERO_STAY_ZERO);
	assert_false(scaletozero_may_wake(&fresh, T0 - 555 * S));
	assert_true(scaletozero_may_wake(&fresh, T0 - 550 * S));
	in.now_ms = T0 + 55 * S;
	in.activation_ms = T0 - 550 * S; /* the activator's next write, 5 s on */
	assert_int_equal(scaletozero_decide(&in, &fresh), SCALETOZERO_WAKE);

	/* None held at zero: an activation older than the zero time does
	 * nothing (it cannot be told from an old one). */
	struct scaletozero_state none = { .zero_at_ms = T0 + 30 * S };
	in.activation_ms = 0;
	assert_int_equal(scaletozero_decide(&in, &none), SCALETOZERO_STAY_ZERO);
	in.activation_ms = T0;
	assert_false(scaletozero_may_wake(&none, T0));
	assert_int_equal(scaletozero_decide(&in, &none), SCALETOZERO_STAY_ZERO);
	in.activation_ms = T0 + 31 * S;
	assert_int_equal(scaletozero_decide(&in, &none), SCALETOZERO_WAKE);
}

/* What wins: a pause pins the size (or stops scale-in / scale-out), a
 * schedule's floor above 0 keeps replicas, maxReplicas caps the wake. */
static void controls_win(void **state)
{
	struct scaletozero_state st = { .last_activity_ms = T0 };
	struct scaletozero_input in = base(T0 + 100 * S, 2);
	struct autoscale_result res;
	(void)state;

	in.pinned = true;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_NONE);
	in.pinned = false;
	in.scale_in_paused = true;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_NONE);
	in.scale_in_paused = false;
	in.floor = 2; /* a cron window open */
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_NONE);
	in.floor = 0;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_TO_ZERO);

	/* At zero: the pause or the floor decide (the autoscaler's own rules). */
	in.current = 0;
	in.now_ms += 10 * S;
	in.activation_ms = in.now_ms - 1;
	in.pinned = true;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_AT_ZERO);
	in.pinned = false;
	in.scale_out_paused = true;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_STAY_ZERO);
	in.scale_out_paused = false;
	in.floor = 3;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_AT_ZERO);
	in.floor = 3;
	in.max_replicas = 2;
	memset(&res, 0, sizeof(res));
	scaletozero_apply(SCALETOZERO_WAKE, &in, &res);
	assert_int_equal(res.desired, 2);
	in.floor = 0;
	assert_int_equal(scaletozero_decide(&in, &st), SCALETOZERO_WAKE);
	assert_string_equal(scaletozero_action_name(SCALETOZERO_WAKE), "Wake");
}

int tests_scaletozero(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(idle_goes_to_zero),
		cmocka_unit_test(work_restarts_the_clock),
		cmocka_unit_test(activation_wakes_only_when_newer),
		cmocka_unit_test(activation_during_drain),
		cmocka_unit_test(restart_at_zero_stays),
		cmocka_unit_test(status_times_ahead_of_the_clock),
		cmocka_unit_test(activator_clock_behind),
		cmocka_unit_test(controls_win),
	};
	return cmocka_run_group_tests_name("scaletozero", tests, NULL, NULL);
}
