/*
 * activator: the pure parts of `kinfer-operator activator` (Host parsing,
 * stream detection, the headers a proxy drops) and its service table
 * (the per-service bound on held requests, waiting for an endpoint that
 * another thread publishes, the activation write's one-second gap, the
 * table's own bound).
 */
#include "unit.h"

#include "actreq.h"
#include "actsvc.h"
#include "ktime.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void host_ok(const char *host, const char *ns, const char *name)
{
	struct actreq_target t;
	char err[256] = "";
	int r = actreq_parse_host(host, &t, err, sizeof(err));
	if (r != 0)
		fail_msg("%s: %s", host, err);
	assert_string_equal(t.ns, ns);
	assert_string_equal(t.name, name);
}

static void host_bad(const char *host, const char *want)
{
	struct actreq_target t;
	char err[256] = "";
	assert_int_equal(actreq_parse_host(host, &t, err, sizeof(err)), -EINVAL);
	if (!strstr(err, want))
		fail_msg("%s: \"%s\" does not say \"%s\"", host ? host : "(null)", err, want);
}

static void hosts(void **state)
{
	(void)state;
	host_ok("llm.serving", "serving", "llm");
	host_ok("llm.serving:8000", "serving", "llm");
	host_ok("llm.serving.svc", "serving", "llm");
	host_ok("llm.serving.svc:80", "serving", "llm");
	host_ok("llm-7b.team-a.svc.cluster.local", "team-a", "llm-7b");
	host_ok("llm-7b.team-a.svc.cluster.local.:8000", "team-a", "llm-7b");
	host_ok("LLM.Serving.SVC.example.org", "serving", "llm");
	host_ok("a.0ns", "0ns", "a");

	host_bad(NULL, "no Host header");
	host_bad("", "no Host header");
	host_bad("llm", "no namespace");
	host_bad("llm:8000", "no namespace");
	host_bad("198.19.0.10:8000", "IP address");
	host_bad("198.19.0.10", "IP address");
	host_bad("[::1]:8000", "IP address");
	host_bad("llm.serving:0", "bad port");
	host_bad("llm.serving:65536", "bad port");
	host_bad("llm.serving:", "bad port");
	host_bad("llm.serving:80x", "bad port");
	host_bad("llm.serving.pod", "not \"pod\" after the namespace");
	host_bad("llm.serving.svc.bad_domain", "bad cluster domain");
	host_bad("llm.serving.svc..local", "bad cluster domain");
	host_bad("1llm.serving", "not a Service name");
	host_bad("-llm.serving", "not a Service name");
	host_bad("ll_m.serving", "not a Service name");
	host_bad("llm.-serving", "not a namespace");
	host_bad("llm..svc", "not a namespace");
	host_bad(".serving", "not a Service name");
	char long_name[100];
	memset(long_name, 'a', 64);
	snprintf(long_name + 64, sizeof(long_name) - 64, ".ns");
	host_bad(long_name, "at most 63");
	char huge[400];
	memset(huge, 'a', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	host_bad(huge, "too long");
}

static void streams(void **state)
{
	(void)state;
	assert_true(actreq_wants_stream("text/event-stream", NULL, 0));
	assert_true(actreq_wants_stream("application/json, TEXT/EVENT-STREAM;q=0.9", NULL, 0));
	assert_false(actreq_wants_stream("application/json", NULL, 0));
	assert_false(actreq_wants_stream("text/event-streamx", NULL, 0));
	assert_false(actreq_wants_stream(NULL, NULL, 0));

	const char *b1 = "{\"model\":\"m\",\"stream\":true,\"prompt\":\"hi\"}";
	const char *b2 = "  {\"stream\": false}";
	const char *b3 = "{\"x\":{\"stream\":true}}"; /* not top level */
	const char *b4 = "{\"stream\":\"true\"}";     /* a string, not true */
	const char *b5 = "[{\"stream\":true}]";
	const char *b6 = "{\"stream\":true"; /* cut */
	const char *b7 = "\n{\"messages\":[{\"role\":\"user\"}],\"stream\" : true }";
	assert_true(actreq_wants_stream(NULL, b1, strlen(b1)));
	assert_false(actreq_wants_stream(NULL, b2, strlen(b2)));
	assert_false(actreq_wants_stream(NULL, b3, strlen(b3)));
	assert_false(actreq_wants_stream(NULL, b4, strlen(b4)));
	assert_false(actreq_wants_stream(NULL, b5, strlen(b5)));
	assert_false(actreq_wants_stream(NULL, b6, strlen(b6)));
	assert_true(actreq_wants_stream(NULL, b7, strlen(b7)));
	/* Only len bytes are read: the same text cut before "true". */
	assert_false(actreq_wants_stream(NULL, b1, 20));
}

static void headers(void **state)
{
	(void)state;
	assert_true(actreq_drop_request_header("connection"));
	assert_true(actreq_drop_request_header("Transfer-Encoding"));
	assert_true(actreq_drop_request_header("Content-Length"));
	assert_true(actreq_drop_request_header("expect"));
	assert_false(actreq_drop_request_header("Host"));
	assert_false(actreq_drop_request_header("Authorization"));
	assert_false(actreq_drop_request_header("Content-Type"));
	assert_true(actreq_drop_response_header("Keep-Alive"));
	assert_true(actreq_drop_response_header("content-length"));
	assert_false(actreq_drop_response_header("Content-Type"));
	assert_false(actreq_drop_response_header("Expect"));
}

static const struct actreq_target svc_a = { "a", "ns" }, svc_b = { "b", "ns" };

static void queue_bounds(void **state)
{
	struct actsvc_table *t;
	(void)state;
	assert_int_equal(actsvc_table_new(&t), 0);
	struct actsvc *a = actsvc_get(t, &svc_a), *b = actsvc_get(t, &svc_b);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_equal(actsvc_get(t, &svc_a), a); /* the same entry, two refs */
	actsvc_put(t, a);
	for (int i = 0; i < 3; i++)
		assert_int_equal(actsvc_hold(a, 3), 0);
	assert_int_equal(actsvc_hold(a, 3), -EBUSY); /* the 4th of 3 */
	assert_int_equal(actsvc_hold(b, 3), 0);      /* per service */
	assert_int_equal(actsvc_held(a), 3);
	actsvc_unhold(a);
	assert_int_equal(actsvc_hold(a, 3), 0);
	assert_int_equal(actsvc_hold(a, 3), -EBUSY);
	int held;
	size_t n;
	actsvc_totals(t, &held, &n);
	assert_int_equal(held, 4);
	assert_int_equal(n, 2);
	struct actsvc *busy[4];
	size_t k = actsvc_busy(t, busy, 4);
	assert_int_equal(k, 2);
	for (size_t i = 0; i < k; i++)
		actsvc_put(t, busy[i]);
	for (int i = 0; i < 3; i++)
		actsvc_unhold(a);
	actsvc_unhold(a); /* never below 0 */
	assert_int_equal(actsvc_held(a), 0);
	actsvc_put(t, a);
	actsvc_put(t, b);
	actsvc_table_free(t);
}

struct publisher {
	struct actsvc *s;
	useconds_t after_us;
};

static void *publish_later(void *ud)
{
	struct publisher *p = ud;
	struct actsvc_endpoint ep[2] = { { "198.18.0.5", 8000 }, { "198.18.0.6", 8000 } };
	usleep(p->after_us);
	actsvc_publish(p->s, ep, 2);
	return NULL;
}

static void wait_for_endpoint(void **state)
{
	struct actsvc_table *t;
	struct actsvc_endpoint ep;
	pthread_t th;
	(void)state;
	assert_int_equal(actsvc_table_new(&t), 0);
	struct actsvc *a = actsvc_get(t, &svc_a);

	/* Nothing published: the wait ends at its deadline. */
	uint64_t t0 = ktime_mono_ns();
	assert_int_equal(actsvc_wait(a, 0, t0 + 50 * KTIME_NSEC_PER_MSEC, &ep), -ETIMEDOUT);
	assert_true(ktime_mono_ns() - t0 >= 50 * KTIME_NSEC_PER_MSEC);
	assert_int_equal(actsvc_pick(a, KTIME_NSEC_PER_SEC, &ep), -ENOENT);

	/* Published by another thread while waiting: woken, round robin. */
	struct publisher p = { a, 30000 };
	assert_int_equal(pthread_create(&th, NULL, publish_later, &p), 0);
	assert_int_equal(actsvc_wait(a, ktime_mono_ns(), ktime_mono_ns() + 5 * KTIME_NSEC_PER_SEC,
				     &ep),
			 0);
	pthread_join(th, NULL);
	assert_string_equal(ep.ip, "198.18.0.5");
	assert_int_equal(ep.port, 8000);
	assert_int_equal(actsvc_pick(a, KTIME_NSEC_PER_SEC, &ep), 0);
	assert_string_equal(ep.ip, "198.18.0.6");
	/* Too old for a pick without waiting. */
	usleep(20000);
	assert_int_equal(actsvc_pick(a, 10 * KTIME_NSEC_PER_MSEC, &ep), -ENOENT);
	/* A list older than the wait's start is not taken (its pods may be
	 * gone): the wait times out although endpoints are known. */
	uint64_t later = ktime_mono_ns();
	assert_int_equal(actsvc_wait(a, later, later + 10 * KTIME_NSEC_PER_MSEC, &ep), -ETIMEDOUT);
	assert_int_equal(actsvc_wait(a, 0, later + 10 * KTIME_NSEC_PER_MSEC, &ep), 0);
	/* Gone again: waits time out. */
	actsvc_publish(a, NULL, 0);
	assert_int_equal(actsvc_wait(a, 0, ktime_mono_ns() + 10 * KTIME_NSEC_PER_MSEC, &ep),
			 -ETIMEDOUT);

	/* The first list after a moment, whatever it holds: none yet
	 * (-ETIMEDOUT), one naming none (-ENOENT: really at zero), one naming
	 * pods (0, an endpoint), published meanwhile by another thread. */
	uint64_t since = ktime_mono_ns();
	assert_int_equal(actsvc_listed(a, since, since + 10 * KTIME_NSEC_PER_MSEC, &ep), -ETIMEDOUT);
	actsvc_publish(a, NULL, 0);
	assert_int_equal(actsvc_listed(a, since, ktime_mono_ns(), &ep), -ENOENT);
	since = ktime_mono_ns();
	assert_int_equal(pthread_create(&th, NULL, publish_later, &p), 0);
	assert_int_equal(actsvc_listed(a, since, since + 5 * KTIME_NSEC_PER_SEC, &ep), 0);
	pthread_join(th, NULL);
	assert_true(strcmp(ep.ip, "198.18.0.5") == 0 || strcmp(ep.ip, "198.18.0.6") == 0);
	actsvc_publish(a, NULL, 0);

	/* The activation write: at once, then not within the gap. */
	assert_true(actsvc_activation_due(a, 50 * KTIME_NSEC_PER_MSEC));
	assert_false(actsvc_activation_due(a, 50 * KTIME_NSEC_PER_MSEC));
	usleep(60000);
	assert_true(actsvc_activation_due(a, 50 * KTIME_NSEC_PER_MSEC));
	/* The release: once after an activation was written, then not; a new
	 * wait after it writes at once. */
	assert_true(actsvc_release_due(a));
	assert_false(actsvc_release_due(a));
	assert_true(actsvc_activation_due(a, KTIME_NSEC_PER_SEC));
	assert_true(actsvc_release_due(a));
	actsvc_put(t, a);
	actsvc_table_free(t);
}

static void table_bound(void **state)
{
	struct actsvc_table *t;
	struct actsvc *first = NULL;
	struct actreq_target id;
	(void)state;
	assert_int_equal(actsvc_table_new(&t), 0);
	/* Fill the table with entries in use: the next service is refused. */
	static struct actsvc *all[ACTSVC_MAX_SERVICES];
	for (int i = 0; i < ACTSVC_MAX_SERVICES; i++) {
		snprintf(id.name, sizeof(id.name), "s%d", i);
		snprintf(id.ns, sizeof(id.ns), "ns");
		all[i] = actsvc_get(t, &id);
		assert_non_null(all[i]);
	}
	first = all[0];
	snprintf(id.name, sizeof(id.name), "one-more");
	assert_null(actsvc_get(t, &id));
	/* One given back: its entry serves the new service. */
	actsvc_put(t, first);
	struct actsvc *n = actsvc_get(t, &id);
	assert_ptr_equal(n, first);
	assert_string_equal(n->id.name, "one-more");
	assert_int_equal(n->held, 0);
	actsvc_put(t, n);
	for (int i = 1; i < ACTSVC_MAX_SERVICES; i++)
		actsvc_put(t, all[i]);
	actsvc_table_free(t);
}

int tests_activator(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hosts),
		cmocka_unit_test(streams),
		cmocka_unit_test(headers),
		cmocka_unit_test(queue_bounds),
		cmocka_unit_test(wait_for_endpoint),
		cmocka_unit_test(table_bound),
	};
	return cmocka_run_group_tests_name("activator", tests, NULL, NULL);
}
