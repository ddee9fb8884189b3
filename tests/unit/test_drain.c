/*
 * drain: the victim order (chosen before: draining, or started with its gate
 * not cached yet; then not warm; then least loaded with unknown load last,
 * then newest, then by name); one step's
 * decisions (start, wait, done, timed out, handed over on requests still
 * arriving, undrain), the looks that count those arrivals; a scale-down during a
 * rollout deferred (issue 12 item 3); every pod of a 1000-replica service
 * gathered from the real pod projection and drained (item 5).
 */
#include "unit.h"

#include "cache.h"
#include "drain.h"
#include "kinds.h"
#include "presets.h"
#include "promtext.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct drain_candidate cand(const char *name, bool warm, bool draining, double inflight,
				   int64_t created)
{
	struct drain_candidate c;
	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "%s", name);
	snprintf(c.template_hash, sizeof(c.template_hash), "h1");
	c.warm = warm;
	c.draining = draining;
	c.inflight = inflight;
	c.created = created;
	return c;
}

static void order_is(struct drain_candidate *c, size_t n, const char *const *want)
{
	drain_order(c, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(c[i].name, want[i]);
}

static void draining_then_cold_then_load(void **state)
{
	struct drain_candidate c[] = {
		cand("busy", true, false, 9, 100),     cand("idle", true, false, 0, 100),
		cand("cold", false, false, -1, 50),    cand("leaving", true, true, 3, 10),
		cand("unknown", true, false, -1, 200),
	};
	static const char *const want[] = { "leaving", "cold", "idle", "busy", "unknown" };
	(void)state;
	order_is(c, 5, want);
}

static void newest_then_name_break_ties(void **state)
{
	struct drain_candidate c[] = {
		cand("b", true, false, 1, 100),
		cand("old", true, false, 1, 50),
		cand("a", true, false, 1, 100),
		cand("new", true, false, 1, 300),
	};
	static const char *const want[] = { "new", "a", "b", "old" };
	(void)state;
	order_is(c, 4, want);
}

/* Nothing to sort is not an error. */
static void empty_and_one(void **state)
{
	struct drain_candidate one = cand("x", true, false, 0, 1);
	(void)state;
	drain_order(NULL, 0);
	drain_order(&one, 1);
	assert_string_equal(one.name, "x");
}

static struct drain_candidate *find(struct drain_candidate *c, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(c[i].name, name) == 0)
			return &c[i];
	fail_msg("no candidate %s", name);
	return NULL;
}

/* A pod whose start is written but whose gate the cache does not show
 * yet stays chosen, whatever its load now (else a second step would take
 * the third pod out of service too). */
static void started_stays_chosen(void **state)
{
	struct drain_candidate c[] = {
		cand("idle", true, false, 0, 100),
		cand("started", true, false, 7, 50),
		cand("leaving", true, true, 3, 10),
	};
	static const char *const want[] = { "leaving", "started", "idle" };
	struct drain_input in = {
		.current = 3, .desired = 1, .now = 1000, .timeout_s = 60, .knows_load = true
	};
	struct drain_decision d;
	(void)state;
	c[1].draining_since = 1000;
	c[2].draining_since = 990;
	order_is(c, 3, want);
	drain_decide(c, 3, &in, &d);
	assert_int_equal(find(c, 3, "started")->action, DRAIN_START); /* the gate, again */
	assert_int_equal(find(c, 3, "leaving")->action, DRAIN_WAIT);
	assert_int_equal(find(c, 3, "idle")->action, DRAIN_NONE);
	assert_false(d.shrink);
}

/* 3 -> 1: two victims start draining, the Deployment keeps 3; later,
 * idle and past the minimum, they are done and the Deployment shrinks. */
static void drain_then_shrink(void **state)
{
	struct drain_candidate c[] = {
		cand("a", true, false, 2, 100),
		cand("b", true, false, 0, 100),
		cand("c", true, false, 1, 100),
	};
	struct drain_input in = {
		.current = 3, .desired = 1, .now = 1000, .timeout_s = 60, .knows_load = true
	};
	struct drain_decision d;
	(void)state;
	drain_decide(c, 3, &in, &d);
	assert_int_equal(d.replicas, 3);
	assert_false(d.shrink);
	assert_int_equal(d.started, 2);
	assert_true(d.requeue_ns > 0);
	assert_int_equal(find(c, 3, "b")->action, DRAIN_START);
	assert_int_equal(find(c, 3, "c")->action, DRAIN_START);
	assert_int_equal(find(c, 3, "a")->action, DRAIN_NONE);

	/* Draining since 1000; at 1003 one request is still in flight on c. */
	struct drain_candidate c2[] = {
		cand("a", true, false, 2, 100),
		cand("b", false, true, 0, 100),
		cand("c", false, true, 1, 100),
	};
	c2[1].draining_since = c2[2].draining_since = 1000;
	in.now = 1003;
	drain_decide(c2, 3, &in, &d);
	assert_int_equal(d.replicas, 3);
	assert_int_equal(find(c2, 3, "b")->action, DRAIN_WAIT); /* under the 5 s minimum */
	assert_int_equal(find(c2, 3, "c")->action, DRAIN_WAIT);
	find(c2, 3, "c")->inflight = 0;
	in.now = 1006;
	drain_decide(c2, 3, &in, &d);
	assert_true(d.shrink);
	assert_int_equal(d.replicas, 1);
	assert_int_equal(d.victims, 2);
	assert_int_equal(c2[0].action, DRAIN_DONE);
	assert_int_equal(c2[1].action, DRAIN_DONE);
	assert_string_equal(c2[2].name, "a");
	/* Past the timeout a busy pod goes anyway. */
	find(c2, 3, "c")->inflight = 5;
	in.now = 1000 + 61;
	drain_decide(c2, 3, &in, &d);
	assert_true(d.shrink);
	assert_int_equal(find(c2, 3, "c")->action, DRAIN_TIMED_OUT);
}

/* A pod that never served is a victim with nothing to drain. */
static void cold_victim_is_done(void **state)
{
	struct drain_candidate c[] = { cand("warm", true, false, 0, 1),
				       cand("cold", false, false, -1, 2) };
	struct drain_input in = {
		.current = 2, .desired = 1, .now = 50, .timeout_s = 60, .knows_load = true
	};
	struct drain_decision d;
	(void)state;
	drain_decide(c, 2, &in, &d);
	assert_true(d.shrink);
	assert_int_equal(d.replicas, 1);
	assert_string_equal(c[0].name, "cold");
	assert_int_equal(c[0].action, DRAIN_DONE);
}

/*
 * A victim draining with no start to count from (its annotation removed by
 * hand, not a number, or ahead of this clock: written by a replica whose
 * clock runs ahead) was waited on for ever: the minimum never passed, the
 * timeout never came, and the scale-down never ended. Now its start is
 * written anew and the drain goes on from there, to its minimum and its
 * timeout, as any other.
 */
static void drain_without_start(void **state)
{
	struct drain_candidate c[] = {
		cand("keep", true, false, 0, 1),
		cand("v", false, true, 2, 1),
	};
	struct drain_input in = {
		.current = 2, .desired = 1, .now = 5000, .timeout_s = 60, .knows_load = true
	};
	struct drain_decision d;
	(void)state;
	static const int64_t no_start[] = { 0, -1, 5001, 4000000000LL };
	for (size_t i = 0; i < sizeof(no_start) / sizeof(no_start[0]); i++) {
		struct drain_candidate *v = find(c, 2, "v");
		v->draining_since = no_start[i];
		drain_decide(c, 2, &in, &d);
		v = find(c, 2, "v");
		assert_int_equal(v->action, DRAIN_RESTAMP);
		assert_false(d.shrink);
		assert_int_equal(d.replicas, 2);
		assert_true(d.requeue_ns > 0);
		assert_int_equal(d.started, 0);
	}
	/* Written anew (now, by this clock): the minimum, then the timeout. */
	struct drain_candidate *v = find(c, 2, "v");
	v->draining_since = 5000;
	drain_decide(c, 2, &in, &d);
	assert_int_equal(find(c, 2, "v")->action, DRAIN_WAIT);
	in.now = 5000 + 60;
	drain_decide(c, 2, &in, &d);
	assert_int_equal(find(c, 2, "v")->action, DRAIN_TIMED_OUT);
	assert_true(d.shrink);
	/* Its start exactly now is a start, not one ahead of the clock. */
	in.now = 5000;
	find(c, 2, "v")->inflight = 0;
	drain_decide(c, 2, &in, &d);
	assert_int_equal(find(c, 2, "v")->action, DRAIN_WAIT);
}

/*
 * Requests still reaching a victim after the minimum (clients that keep
 * their connections, which only the server's shutdown closes): handed over
 * at once instead of waiting for the timeout; not before the minimum, not
 * on a look that began inside it, not without a request seen arriving.
 */
static void arrivals_hand_over(void **state)
{
	struct drain_candidate c[] = {
		cand("keep", true, false, 0, 1),
		cand("v", false, true, 13, 1),
	};
	c[1].draining_since = 1000;
	c[1].arrived = 4;
	c[1].arrived_from_ms = 1005200;
	c[1].arrived_for_ms = 1000;
	struct drain_input in = {
		.current = 2, .desired = 1, .now = 1006, .timeout_s = 60, .knows_load = true
	};
	struct drain_decision d;
	(void)state;
	drain_decide(c, 2, &in, &d);
	assert_int_equal(c[0].action, DRAIN_HANDOVER);
	assert_string_equal(c[0].name, "v");
	assert_true(d.shrink);
	assert_int_equal(d.replicas, 1);
	assert_int_equal(d.victims, 1);

	/* The look began inside the minimum: endpoints may still be spreading. */
	c[0].arrived_from_ms = 1004900;
	drain_decide(c, 2, &in, &d);
	assert_int_equal(c[0].action, DRAIN_WAIT);
	assert_false(d.shrink);
	assert_int_equal(d.replicas, 2);
	/* Nothing new arrived, or not known: long requests, wait for them. */
	c[0].arrived_from_ms = 1005200;
	c[0].arrived = 0;
	drain_decide(c, 2, &in, &d);
	assert_int_equal(c[0].action, DRAIN_WAIT);
	c[0].arrived = -1;
	drain_decide(c, 2, &in, &d);
	assert_int_equal(c[0].action, DRAIN_WAIT);
	/* Under the minimum: wait, whatever arrives. */
	c[0].arrived = 4;
	in.now = 1004;
	drain_decide(c, 2, &in, &d);
	assert_int_equal(c[0].action, DRAIN_WAIT);
	/* No start recorded (annotation lost): no hand-over on arrivals; the
	 * start is written anew (drain_without_start). */
	c[0].draining_since = 0;
	in.now = 1006;
	drain_decide(c, 2, &in, &d);
	assert_int_equal(c[0].action, DRAIN_RESTAMP);
	assert_false(d.shrink);
	/* Past the timeout it is the timeout that says so. */
	c[0].draining_since = 1000;
	in.now = 1061;
	drain_decide(c, 2, &in, &d);
	assert_int_equal(c[0].action, DRAIN_TIMED_OUT);
}

/* The looks kept per draining pod: what arrived between two of them. */
static void looks_count_arrivals(void **state)
{
	double arrived = -7;
	int64_t from = -7;
	char uid[64];
	(void)state;
	assert_int_equal(drain_look("la-1", 10000, 100, 13, &arrived, &from), -ENOENT);
	assert_true(arrived == -7 && from == -7); /* untouched on the first look */
	/* 3 answered, 1 fewer in flight: 2 arrived. */
	assert_int_equal(drain_look("la-1", 11000, 103, 12, &arrived, &from), 0);
	assert_true(arrived == 2);
	assert_int_equal(from, 10000);
	/* Other pods are kept apart. */
	assert_int_equal(drain_look("la-2", 11000, 5, 0, &arrived, &from), -ENOENT);
	assert_int_equal(drain_look("la-1", 12000, 103, 0, &arrived, &from), 0);
	assert_true(arrived == -12); /* answered nothing new, 12 left: none arrived */
	/* A counter that went down (the server restarted) gives no figure, but
	 * the next look counts from it. */
	assert_int_equal(drain_look("la-1", 13000, 4, 1, &arrived, &from), -ENOENT);
	assert_int_equal(drain_look("la-1", 14000, 9, 1, &arrived, &from), 0);
	assert_true(arrived == 5);
	/* The clock did not move: no figure. */
	assert_int_equal(drain_look("la-1", 14000, 9, 1, &arrived, &from), -ENOENT);
	/* Bad input. */
	assert_int_equal(drain_look(NULL, 1, 1, 1, &arrived, &from), -EINVAL);
	assert_int_equal(drain_look("", 1, 1, 1, &arrived, &from), -EINVAL);
	assert_int_equal(drain_look("la-1", 15000, -1, 1, &arrived, &from), -EINVAL);
	/* Bounded: more pods than DRAIN_LOOKS, the oldest look is forgotten. */
	for (int i = 0; i < DRAIN_LOOKS; i++) {
		snprintf(uid, sizeof(uid), "lb-%d", i);
		assert_int_equal(drain_look(uid, 20000 + i, 0, 0, &arrived, &from), -ENOENT);
	}
	assert_int_equal(drain_look("la-1", 30000, 9, 1, &arrived, &from), -ENOENT);
	assert_int_equal(drain_look("lb-511", 30000, 2, 0, &arrived, &from), 0);
	assert_true(arrived == 2);
}

/* The counters drain reads for the requests answered are on the pages real
 * servers export (recorded captures, tests/data/metrics), as the in-flight
 * gauges are. */
static void answered_on_real_pages(void **state)
{
	static const struct {
		const char *file;
		enum isvc_framework fw;
	} pages[] = {
		{ "metrics/vllm.txt", ISVC_VLLM },
		{ "metrics/vllm-0.7-v0engine-aibrix-doc.prom", ISVC_VLLM },
		{ "metrics/vllm-datadog-opt125m.prom", ISVC_VLLM },
		{ "metrics/triton.txt", ISVC_TRITON },
		{ "metrics/triton-trtllm-23.12plus-readme-sample.prom", ISVC_TRITON },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		const struct preset *pr = preset_for(pages[i].fw);
		size_t len, found = 0, gauges = 0;
		char *buf = test_read_data(pages[i].file, &len);
		struct promtext *p = NULL;
		double v;

		assert_non_null(buf);
		assert_int_equal(promtext_parse(buf, len, NULL, NULL, &p), 0);
		for (size_t k = 0; pr->answered[k]; k++) {
			size_t series = 0;
			if (promtext_sum(p, pr->answered[k], NULL, 0, &v, &series) == 0)
				found += series;
		}
		for (size_t k = 0; pr->inflight[k]; k++) {
			size_t series = 0;
			if (promtext_sum(p, pr->inflight[k], NULL, 0, &v, &series) == 0)
				gauges += series;
		}
		if (!found || !gauges)
			fail_msg("%s: %zu answered, %zu in-flight series", pages[i].file, found,
				 gauges);
		promtext_free(p);
		free(buf);
	}
	assert_null(preset_for(ISVC_CUSTOM)->answered); /* nothing known: no hand-over */
}

/* Scale-up mid-drain: as many draining pods come back as are short. */
static void scale_up_undrains(void **state)
{
	struct drain_candidate c[] = {
		cand("s1", true, false, 0, 1),
		cand("d1", false, true, 0, 1),
		cand("d2", false, true, 0, 1),
	};
	c[1].draining_since = c[2].draining_since = 40;
	struct drain_input in = { .current = 1, .desired = 2, .now = 50, .timeout_s = 60 };
	struct drain_decision d;
	(void)state;
	drain_decide(c, 3, &in, &d);
	assert_int_equal(d.replicas, 2);
	assert_false(d.shrink);
	int undrained = 0;
	for (size_t i = 0; i < 3; i++)
		undrained += c[i].action == DRAIN_UNDRAIN;
	assert_int_equal(undrained, 1);
	assert_int_equal(find(c, 3, "s1")->action, DRAIN_NONE);
	/* A smaller scale-down: the extra draining pod goes back. */
	in.current = 3;
	in.desired = 2;
	drain_decide(c, 3, &in, &d);
	assert_int_equal(c[0].action, DRAIN_DONE); /* d1 or d2, drained */
	assert_int_equal(find(c, 3, "s1")->action, DRAIN_NONE);
	assert_int_equal(c[1].action, DRAIN_UNDRAIN);
}

/*
 * Issue 12 item 3: 4 warm pods, a rollout started (a new, warming pod of
 * another template) and a scale-down to 3 at once. The warming pod must
 * not be taken as the victim with the Deployment lowered (the Deployment
 * controller would take the pod from the old ReplicaSet, undrained): the
 * scale-down waits, nothing starts draining, the replicas stay.
 */
static void scale_down_waits_for_rollout(void **state)
{
	struct drain_candidate c[] = {
		cand("old1", true, false, 0, 1),   cand("old2", true, false, 0, 1),
		cand("old3", true, false, 0, 1),   cand("old4", true, false, 0, 1),
		cand("new1", false, false, -1, 9),
	};
	snprintf(c[4].template_hash, sizeof(c[4].template_hash), "h2");
	struct drain_input in = {
		.current = 4, .desired = 3, .now = 50, .timeout_s = 60, .knows_load = true
	};
	struct drain_decision d;
	(void)state;
	drain_decide(c, 5, &in, &d);
	assert_true(d.deferred);
	assert_false(d.shrink);
	assert_int_equal(d.replicas, 4);
	assert_true(d.requeue_ns > 0);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(c[i].action, DRAIN_NONE);
	/* The Deployment's status says so even before a new pod exists. */
	snprintf(c[4].template_hash, sizeof(c[4].template_hash), "h1");
	in.rolling = true;
	drain_decide(c, 5, &in, &d);
	assert_true(d.deferred);
	assert_int_equal(d.replicas, 4);
	/* Rollout done: one template, the scale-down is drained. */
	in.rolling = false;
	drain_decide(c, 5, &in, &d);
	assert_false(d.deferred);
	/* A scale-up is never deferred. */
	in.rolling = true;
	in.current = 3;
	in.desired = 5;
	drain_decide(c, 5, &in, &d);
	assert_false(d.deferred);
	assert_int_equal(d.replicas, 5);
}

/*
 * A drain under way when a rollout starts (or the rollout's new template
 * in the same apply as the scale-down that follows it). The victims go
 * back in service while the scale-down waits: kept out, they stayed so for
 * the whole rollout, and for ever where the rollout cannot finish. A pod
 * the Deployment already shrank for (kinfer's pod-deletion-cost on it) is
 * on its way out and stays as it is.
 */
static void drain_under_way_ends_at_rollout(void **state)
{
	struct drain_candidate c[] = {
		cand("old1", false, true, 1, 1),   cand("old2", true, false, 0, 1),
		cand("old3", true, false, 0, 1),   cand("gone", false, true, 0, 1),
		cand("chosen", true, false, 0, 1), cand("cold", false, false, 0, 1),
	};
	c[0].draining_since = 40;
	c[3].draining_since = 30;
	c[3].our_cost = true;
	c[4].draining_since = 45; /* start written, the gate not in the cache yet */
	c[5].draining_since = 45; /* by hand on a pod never warm: not put in service */
	struct drain_input in = {
		.current = 4, .desired = 3, .now = 50, .timeout_s = 60, .knows_load = true
	};
	struct drain_decision d;
	(void)state;

	/* The rollout starts: the scale-down waits, the drain is called off. */
	in.rolling = true;
	drain_decide(c, 6, &in, &d);
	assert_true(d.deferred);
	assert_false(d.shrink);
	assert_int_equal(d.replicas, 4);
	assert_int_equal(d.started, 0);
	for (size_t i = 0; i < 6; i++) {
		const char *n = c[i].name;
		if (strcmp(n, "old1") == 0 || strcmp(n, "chosen") == 0)
			assert_int_equal(c[i].action, DRAIN_UNDRAIN);
		else
			assert_int_equal(c[i].action, DRAIN_NONE);
	}
	/* The same when the rollout shows only in the pods' templates. */
	in.rolling = false;
	snprintf(c[2].template_hash, sizeof(c[2].template_hash), "h2");
	drain_decide(c, 6, &in, &d);
	assert_true(d.deferred);
	size_t undrained = 0;
	for (size_t i = 0; i < 6; i++)
		undrained += c[i].action == DRAIN_UNDRAIN;
	assert_int_equal(undrained, 2);
}

/* ---- the pods of a 1000-replica service, through the real projection ---- */

static void publish_pod(struct cache *pods, int i, bool warm)
{
	char buf[2048];
	snprintf(buf, sizeof(buf),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p-%d\","
		 "\"namespace\":\"ns\",\"uid\":\"u-%d\",\"resourceVersion\":\"1\","
		 "\"creationTimestamp\":\"2026-01-01T00:00:00Z\","
		 "\"labels\":{\"kinfer.io/service\":\"big\",\"pod-template-hash\":\"abc\"}},"
		 "\"spec\":{\"readinessGates\":[{\"conditionType\":\"kinfer.io/warmed-up\"}],"
		 "\"containers\":[{\"name\":\"m\"}]},"
		 "\"status\":{\"phase\":\"Running\",\"podIP\":\"127.0.%d.%d\",\"conditions\":["
		 "{\"type\":\"kinfer.io/warmed-up\",\"status\":\"%s\"}]}}",
		 i, i, i / 250, i % 250 + 1, warm ? "True" : "False");
	json_object *j = json_tokener_parse(buf);
	struct cache_obj *obj, *old;
	assert_non_null(j);
	assert_int_equal(cache_project(pods, j, &obj), 0);
	cache_publish(pods, obj, &old);
	if (old)
		cache_retire(pods, old);
	json_object_put(j);
}

/* Issue 12 item 5: 1000 -> 100 drains 900 pods, not the first 512. */
static void thousand_replicas(void **state)
{
	struct cache *pods;
	struct drain_candidate *c = NULL;
	size_t n = 0;
	(void)state;
	assert_int_equal(cache_new(&kind_pods, test_interns, &pods), 0);
	for (int i = 0; i < 1000; i++)
		publish_pod(pods, i, true);
	cache_read_lock();
	assert_int_equal(drain_candidates(pods, "ns", "big", &c, &n), 0);
	cache_read_unlock();
	assert_int_equal(n, 1000);
	for (size_t i = 0; i < n; i++)
		c[i].inflight = 0;
	struct drain_input in = {
		.current = 1000, .desired = 100, .now = 50, .timeout_s = 60, .knows_load = true
	};
	struct drain_decision d;
	drain_decide(c, n, &in, &d);
	assert_int_equal(d.started, 900);
	assert_int_equal(d.replicas, 1000);
	free(c);
	/* Past the bound: an error, never a partial list. */
	for (int i = 1000; i < DRAIN_MAX_PODS + 1; i++)
		publish_pod(pods, i, false);
	cache_read_lock();
	assert_int_equal(drain_candidates(pods, "ns", "big", &c, &n), -E2BIG);
	cache_read_unlock();
	cache_free(pods);
	cache_barrier();
}

int tests_drain(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(draining_then_cold_then_load),
		cmocka_unit_test(newest_then_name_break_ties),
		cmocka_unit_test(empty_and_one),
		cmocka_unit_test(started_stays_chosen),
		cmocka_unit_test(drain_then_shrink),
		cmocka_unit_test(cold_victim_is_done),
		cmocka_unit_test(arrivals_hand_over),
		cmocka_unit_test(drain_without_start),
		cmocka_unit_test(looks_count_arrivals),
		cmocka_unit_test(answered_on_real_pages),
		cmocka_unit_test(scale_up_undrains),
		cmocka_unit_test(scale_down_waits_for_rollout),
		cmocka_unit_test(drain_under_way_ends_at_rollout),
		cmocka_unit_test(thousand_replicas),
	};
	return cmocka_run_group_tests_name("drain", tests, test_rcu_setup, test_rcu_teardown);
}
