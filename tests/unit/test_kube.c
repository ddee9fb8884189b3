/*
 * kube: paths and queries, error decoding from Status bodies that a real
 * kube-apiserver sent (tests/data/status-*.json, recorded from v1.33), and
 * the retry policy, driven by a small HTTP server on loopback that replays
 * canned answers (429 with Retry-After, 5xx, a body over the bound).
 */
#include "unit.h"

#include "kube.h"
#include "informer.h"
#include "intern.h"
#include "kinds.h"
#include "ratelimit.h"
#include "ktime.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct kube_resource res_cm = { "", "v1", "ConfigMap", "configmaps", true };
static const struct kube_resource res_dep = { "apps", "v1", "Deployment", "deployments", true };
static const struct kube_resource res_node = { "", "v1", "Node", "nodes", false };

static void paths(void **state)
{
	char p[512];
	struct kube_opts o = { .label_selector = "app in (a,b),tier!=x",
			       .limit = 500,
			       .continue_token = "eyJ2Ijo=",
			       .field_manager = "kinfer-operator",
			       .force = true };
	(void)state;
	assert_int_equal(kube_path(p, sizeof(p), &res_cm, "default", "x", NULL, NULL), 0);
	assert_string_equal(p, "/api/v1/namespaces/default/configmaps/x");
	assert_int_equal(kube_path(p, sizeof(p), &res_dep, "ns", "web", "scale", NULL), 0);
	assert_string_equal(p, "/apis/apps/v1/namespaces/ns/deployments/web/scale");
	assert_int_equal(kube_path(p, sizeof(p), &res_node, "ignored", "n1", "status", NULL), 0);
	assert_string_equal(p, "/api/v1/nodes/n1/status");
	assert_int_equal(kube_path(p, sizeof(p), &res_dep, NULL, NULL, NULL, NULL), 0);
	assert_string_equal(p, "/apis/apps/v1/deployments");
	assert_int_equal(kube_path(p, sizeof(p), &res_cm, "ns", NULL, NULL, &o), 0);
	assert_string_equal(
		p, "/api/v1/namespaces/ns/configmaps?labelSelector=app%20in%20%28a%2Cb%29%2Ctier%21%3Dx"
		   "&limit=500&continue=eyJ2Ijo%3D&fieldManager=kinfer-operator&force=true");
	struct kube_opts w = { .watch = true,
			       .allow_bookmarks = true,
			       .resource_version = "123",
			       .timeout_seconds = 400 };
	assert_int_equal(kube_path(p, sizeof(p), &res_cm, "ns", NULL, NULL, &w), 0);
	assert_string_equal(p, "/api/v1/namespaces/ns/configmaps?resourceVersion=123"
			       "&watch=true&allowWatchBookmarks=true&timeoutSeconds=400");
}

static void bad_names_are_refused(void **state)
{
	char p[64];
	(void)state;
	assert_int_equal(kube_path(p, sizeof(p), &res_cm, "ns", "a/b", NULL, NULL), -EINVAL);
	assert_int_equal(kube_path(p, sizeof(p), &res_cm, "..", "x", NULL, NULL), -EINVAL);
	assert_int_equal(kube_path(p, sizeof(p), &res_cm, "ns", "x?y", NULL, NULL), -EINVAL);
	assert_int_equal(kube_path(p, sizeof(p), &res_cm, "ns", "", NULL, NULL), -EINVAL);
	assert_int_equal(kube_path(p, sizeof(p), &res_cm, "ns", NULL, "status", NULL), -EINVAL);
	assert_int_equal(kube_path(p, 16, &res_cm, "ns", "x", NULL, NULL), -ENAMETOOLONG);
}

struct recorded {
	const char *file;
	long code;
	enum kube_reason reason;
	int err;
	const char *needle;
};

static void recorded_statuses(void **state)
{
	static const struct recorded cases[] = {
		{ "status-notfound.json", 404, KUBE_REASON_NOT_FOUND, -ENOENT,
		  "configmaps \"does-not-exist\" not found" },
		{ "status-alreadyexists.json", 409, KUBE_REASON_ALREADY_EXISTS, -EEXIST,
		  "already exists" },
		{ "status-conflict.json", 409, KUBE_REASON_CONFLICT, -ESTALE,
		  "the object has been modified" },
		{ "status-invalid.json", 422, KUBE_REASON_INVALID, -EINVAL,
		  "metadata.name: Invalid value" },
		{ "status-expired.json", 410, KUBE_REASON_EXPIRED, -EIDRM,
		  "continue parameter is too old" },
		{ "status-forbidden.json", 403, KUBE_REASON_FORBIDDEN, -EPERM,
		  "cannot list resource" },
		{ "status-unauthorized.json", 401, KUBE_REASON_UNAUTHORIZED, -EACCES, "Unauthorized" },
		{ "status-namespace-terminating.json", 403, KUBE_REASON_FORBIDDEN, -EPERM,
		  "because it is being terminated" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kube_status st = { 0 };
		size_t len;
		char *body = test_read_data(cases[i].file, &len);
		if (!body)
			fail_msg("missing tests/data/%s", cases[i].file);
		kube_status_decode(cases[i].code, body, len, &st);
		assert_int_equal(st.code, cases[i].code);
		assert_int_equal(st.reason, cases[i].reason);
		assert_int_equal(kube_reason_errno(st.reason), cases[i].err);
		/* Only the terminating namespace's Status names that cause (the
		 * other Forbidden is RBAC's, which a retry may outlive). */
		assert_int_equal(st.ns_terminating,
				 strcmp(cases[i].file, "status-namespace-terminating.json") == 0);
		if (!strstr(st.message, cases[i].needle))
			fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].file, st.message,
				 cases[i].needle);
		free(body);
	}
}

static void non_status_bodies(void **state)
{
	struct kube_status st = { 0 };
	(void)state;
	kube_status_decode(502, "<html>bad gateway</html>\n", 25, &st);
	assert_int_equal(st.reason, KUBE_REASON_INTERNAL_ERROR);
	assert_string_equal(st.message, "<html>bad gateway</html> ");
	kube_status_decode(404, NULL, 0, &st);
	assert_int_equal(st.reason, KUBE_REASON_NOT_FOUND);
	assert_string_equal(st.message, "the server answered 404");
	kube_status_decode(429, "{\"kind\":\"Status\",\"details\":{\"retryAfterSeconds\":3}}", 51,
			   &st);
	assert_int_equal(st.reason, KUBE_REASON_TOO_MANY_REQUESTS);
	assert_int_equal(st.retry_after_s, 3);
	kube_status_decode(500, "{\"kind\":\"Status\",\"reason\":\"Weird\"}", 34, &st);
	assert_int_equal(st.reason, KUBE_REASON_INTERNAL_ERROR);
	assert_string_equal(st.reason_text, "Weird");
	/* JSON that is not a Status, found by fuzz_status: a null kind
	 * crashed the reader (strcmp of NULL); a cause of the wrong type is
	 * not the namespace's. */
	kube_status_decode(401, "{\"kind\": null}", 14, &st);
	assert_int_equal(st.reason, KUBE_REASON_UNAUTHORIZED);
	assert_string_equal(st.message, "{\"kind\": null}");
	static const char odd[] = "{\"kind\":\"Status\",\"message\":null,\"details\":{\"causes\":"
				  "[null,5,{\"reason\":7},{\"reason\":\"NamespaceTerminatingX\"}]}}";
	kube_status_decode(403, odd, sizeof(odd) - 1, &st);
	assert_int_equal(st.reason, KUBE_REASON_FORBIDDEN);
	assert_false(st.ns_terminating);
	assert_string_equal(st.message, "the server answered 403");
}

/* ---- a replaying server --------------------------------------------- */

struct answer {
	unsigned code;
	const char *body;
	const char *retry_after;
	size_t repeat_bytes; /* >0: send this many bytes of 'x' */
};

struct replay {
	struct MHD_Daemon *d;
	const struct answer *answers;
	int n, next;
	int hits;
	char last_method[16];
	pthread_mutex_t lock;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_size, void **con_cls)
{
	struct replay *rp = cls;
	struct MHD_Response *resp;
	const struct answer *a;
	enum MHD_Result ret;
	(void)url;
	(void)version;
	(void)data;

	if (!*con_cls) {
		*con_cls = rp;
		return MHD_YES;
	}
	if (*data_size) {
		*data_size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&rp->lock);
	a = &rp->answers[rp->next < rp->n ? rp->next : rp->n - 1];
	rp->next++;
	rp->hits++;
	snprintf(rp->last_method, sizeof(rp->last_method), "%s", method);
	pthread_mutex_unlock(&rp->lock);
	if (a->repeat_bytes) {
		char *big = malloc(a->repeat_bytes);
		memset(big, 'x', a->repeat_bytes);
		resp = MHD_create_response_from_buffer(a->repeat_bytes, big, MHD_RESPMEM_MUST_FREE);
	} else {
		resp = MHD_create_response_from_buffer(strlen(a->body), (void *)a->body,
						       MHD_RESPMEM_PERSISTENT);
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	if (a->retry_after)
		MHD_add_response_header(resp, "Retry-After", a->retry_after);
	ret = MHD_queue_response(conn, a->code, resp);
	MHD_destroy_response(resp);
	return ret;
}

static struct kube_client *replay_client(struct replay *rp, const struct answer *answers, int n)
{
	struct kube_auth auth = { 0 };
	struct kube_client_options o = { .qps = -1,
					 .backoff_base_ms = 5,
					 .backoff_cap_ms = 20,
					 .max_retries = 3,
					 .max_body = 4096,
					 .timeout_ms = 5000 };
	struct kube_client *c = NULL;
	char server[64];
	const union MHD_DaemonInfo *info;

	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	memset(rp, 0, sizeof(*rp));
	pthread_mutex_init(&rp->lock, NULL);
	rp->answers = answers;
	rp->n = n;
	rp->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
				 on_request, rp, MHD_OPTION_SOCK_ADDR, &sin, MHD_OPTION_END);
	assert_non_null(rp->d);
	info = MHD_get_daemon_info(rp->d, MHD_DAEMON_INFO_BIND_PORT);
	snprintf(server, sizeof(server), "http://127.0.0.1:%u", info->port);
	auth.server = server;
	assert_int_equal(kube_client_new(&auth, &o, &c), 0);
	return c;
}

static void replay_stop(struct replay *rp, struct kube_client *c)
{
	kube_client_free(c);
	MHD_stop_daemon(rp->d);
	pthread_mutex_destroy(&rp->lock);
}

static const char ok_body[] = "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"x\"}}";
static const char status_503[] = "{\"kind\":\"Status\",\"code\":503,\"reason\":\"ServiceUnavailable\"}";
static const char status_500[] =
	"{\"kind\":\"Status\",\"code\":500,\"reason\":\"InternalError\",\"message\":\"etcd is down\"}";
static const char status_409[] =
	"{\"kind\":\"Status\",\"code\":409,\"reason\":\"Conflict\",\"message\":\"modified\"}";
static const char status_429[] = "{\"kind\":\"Status\",\"code\":429,\"reason\":\"TooManyRequests\"}";

/*
 * An informer told to come back in 1 s (429 with details.retryAfterSeconds,
 * as kube-apiserver answers while a resource's storage initializes after a
 * restart) comes back then, not at its growing backoff: four such answers
 * and then the list sync in about 4 s (with the backoff alone, 0.8 + 1.6 +
 * 3.2 + 6.4 s at the least: over 12 s).
 */
static void informer_honours_retry_after(void **state)
{
	static const char busy[] =
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
		"\"message\":\"storage is (re)initializing\",\"reason\":\"TooManyRequests\","
		"\"details\":{\"retryAfterSeconds\":1},\"code\":429}";
	static const char list[] =
		"{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"5\"},"
		"\"items\":[]}";
	const struct answer a[] = {
		{ 429, busy, NULL, 0 }, { 429, busy, NULL, 0 }, { 429, busy, NULL, 0 },
		{ 429, busy, NULL, 0 }, { 200, list, NULL, 0 },
	};
	struct informer_options o = { .kind = &kind_configmaps, .namespace = "ns" };
	struct replay rp;
	struct kube_client *c = replay_client(&rp, a, 5);
	struct informer_set *set;
	struct informer *inf;
	struct intern *interns;
	(void)state;

	assert_int_equal(intern_new(&interns), 0);
	assert_int_equal(informer_set_new(c, interns, NULL, &set), 0);
	assert_int_equal(informer_add(set, &o, &inf), 0);
	uint64_t t0 = ktime_mono_ns();
	assert_int_equal(informer_set_start(set), 0);
	int r = informer_set_wait_synced(set, 8 * KTIME_NSEC_PER_SEC);
	uint64_t took = ktime_mono_ns() - t0;
	informer_set_stop(set);
	pthread_mutex_lock(&rp.lock);
	int hits = rp.hits;
	pthread_mutex_unlock(&rp.lock);
	if (r != 0)
		fail_msg("not synced 8 s after the start (%d requests)", hits);
	assert_true(hits >= 5);
	assert_true(took >= 3 * KTIME_NSEC_PER_SEC); /* it did wait the second each time */
	informer_set_free(set);
	intern_free(interns);
	replay_stop(&rp, c);
}

static void retries_429_honouring_retry_after(void **state)
{
	const struct answer a[] = {
		{ 429, status_429, "1", 0 },
		{ 200, ok_body, NULL, 0 },
	};
	struct replay rp;
	struct kube_client *c = replay_client(&rp, a, 2);
	struct kube_status st;
	json_object *o = NULL;
	(void)state;
	uint64_t t0 = ktime_mono_ns();
	assert_int_equal(kube_get(c, &res_cm, "ns", "x", NULL, &o, &st), 0);
	uint64_t waited = ktime_mono_ns() - t0;
	assert_int_equal(rp.hits, 2);
	assert_int_equal(st.attempts, 2);
	assert_true(waited >= 1000000000ULL); /* Retry-After: 1 was honoured */
	assert_non_null(o);
	json_object_put(o);
	replay_stop(&rp, c);
}

static void retries_5xx_then_gives_up(void **state)
{
	const struct answer a[] = { { 500, status_500, NULL, 0 } };
	struct replay rp;
	struct kube_client *c = replay_client(&rp, a, 1);
	struct kube_status st;
	(void)state;
	assert_int_equal(kube_get(c, &res_cm, "ns", "x", NULL, NULL, &st), -EIO);
	assert_int_equal(rp.hits, 4); /* 1 + max_retries */
	assert_int_equal(st.code, 500);
	assert_string_equal(st.message, "etcd is down");
	replay_stop(&rp, c);
}

static void post_not_retried_on_500_but_on_503(void **state)
{
	const struct answer a[] = { { 500, status_500, NULL, 0 } };
	const struct answer b[] = { { 503, status_503, NULL, 0 }, { 201, ok_body, NULL, 0 } };
	struct replay rp;
	struct kube_client *c = replay_client(&rp, a, 1);
	json_object *body = json_object_new_object();
	(void)state;
	assert_int_equal(kube_create(c, &res_cm, "ns", NULL, NULL, body, NULL, NULL, NULL), -EIO);
	assert_int_equal(rp.hits, 1);
	assert_string_equal(rp.last_method, "POST");
	replay_stop(&rp, c);
	c = replay_client(&rp, b, 2);
	assert_int_equal(kube_create(c, &res_cm, "ns", NULL, NULL, body, NULL, NULL, NULL), 0);
	assert_int_equal(rp.hits, 2);
	replay_stop(&rp, c);
	json_object_put(body);
}

static void conflict_goes_back_to_caller(void **state)
{
	const struct answer a[] = { { 409, status_409, NULL, 0 } };
	struct replay rp;
	struct kube_client *c = replay_client(&rp, a, 1);
	struct kube_status st;
	json_object *body = json_object_new_object();
	(void)state;
	assert_int_equal(kube_update(c, &res_cm, "ns", "x", NULL, body, NULL, NULL, &st), -ESTALE);
	assert_int_equal(rp.hits, 1);
	assert_int_equal(st.reason, KUBE_REASON_CONFLICT);
	assert_string_equal(rp.last_method, "PUT");
	json_object_put(body);
	replay_stop(&rp, c);
}

static void body_over_bound_and_bad_json(void **state)
{
	const struct answer a[] = { { 200, NULL, NULL, 100000 } };
	const struct answer b[] = { { 200, "{\"kind\": ", NULL, 0 } };
	struct replay rp;
	struct kube_client *c = replay_client(&rp, a, 1);
	struct kube_status st;
	json_object *o = NULL;
	(void)state;
	assert_int_equal(kube_get(c, &res_cm, "ns", "x", NULL, &o, &st), -EFBIG);
	assert_null(o);
	assert_non_null(strstr(st.message, "exceeds the 4096-byte bound"));
	replay_stop(&rp, c);
	c = replay_client(&rp, b, 1);
	assert_int_equal(kube_get(c, &res_cm, "ns", "x", NULL, &o, &st), -EBADMSG);
	assert_null(o);
	replay_stop(&rp, c);
}

static void connection_refused(void **state)
{
	struct kube_auth auth = { .server = "http://127.0.0.1:1" };
	struct kube_client_options o = { .max_retries = 2, .backoff_base_ms = 1, .backoff_cap_ms = 2 };
	struct kube_client *c;
	struct kube_status st;
	(void)state;
	assert_int_equal(kube_client_new(&auth, &o, &c), 0);
	assert_int_equal(kube_get(c, &res_cm, "ns", "x", NULL, NULL, &st), -ECONNREFUSED);
	assert_int_equal(st.attempts, 3);
	assert_int_equal(st.reason, KUBE_REASON_TRANSPORT);
	kube_client_free(c);
}

/*
 * A control plane down as kinfer starts is waited for (kube_wait_for_server):
 * answers that mean "not serving yet" (503, no answer at all) are tried
 * again until /version answers; one that waiting does not mend (401) ends
 * the wait at once with its status; a stop signal ends it too.
 */
static void count_call(void *ud)
{
	(*(int *)ud)++;
}

static void wait_for_server(void **state)
{
	static const char version[] = "{\"major\":\"1\",\"minor\":\"33\",\"gitVersion\":\"v1.33.13\"}";
	static const char unauthorized[] =
		"{\"kind\":\"Status\",\"code\":401,\"reason\":\"Unauthorized\",\"message\":\"Unauthorized\"}";
	/* The client tries each call 4 times (max_retries 3): two calls fail. */
	const struct answer a[] = {
		{ 503, status_503, NULL, 0 }, { 503, status_503, NULL, 0 },
		{ 503, status_503, NULL, 0 }, { 503, status_503, NULL, 0 },
		{ 503, status_503, NULL, 0 }, { 503, status_503, NULL, 0 },
		{ 503, status_503, NULL, 0 }, { 503, status_503, NULL, 0 },
		{ 200, version, NULL, 0 },
	};
	const struct answer denied[] = { { 401, unauthorized, NULL, 0 } };
	const struct answer busy[] = { { 503, status_503, NULL, 0 } };
	struct replay rp;
	struct kube_client *c = replay_client(&rp, a, 9);
	struct kube_status st;
	char v[64] = "";
	sigset_t stop;
	int sig = -1, waits = 0;
	(void)state;

	sigemptyset(&stop);
	sigaddset(&stop, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	uint64_t t0 = ktime_mono_ns();
	assert_int_equal(kube_wait_for_server(c, &stop, count_call, &waits, v, sizeof(v), &st, &sig),
			 0);
	uint64_t took = ktime_mono_ns() - t0;
	assert_string_equal(v, "v1.33.13");
	assert_int_equal(sig, 0);
	assert_int_equal(waits, 1); /* told once, as the wait began */
	assert_int_equal(rp.hits, 9);
	/* Two waits: 0.5 s and 1 s, each up to 20% longer. */
	assert_true(took >= 1500 * KTIME_NSEC_PER_MSEC);
	assert_true(took < 4 * KTIME_NSEC_PER_SEC);
	replay_stop(&rp, c);

	c = replay_client(&rp, denied, 1);
	waits = 0;
	assert_int_equal(kube_wait_for_server(c, &stop, count_call, &waits, v, sizeof(v), &st, &sig),
			 -EACCES);
	assert_int_equal(waits, 0);
	assert_int_equal(st.code, 401);
	assert_int_equal(rp.hits, 1);
	replay_stop(&rp, c);

	/* Still 503 when SIGUSR1 is pending: the wait ends on it. */
	c = replay_client(&rp, busy, 1);
	raise(SIGUSR1);
	assert_int_equal(kube_wait_for_server(c, &stop, NULL, NULL, v, sizeof(v), &st, &sig), -EINTR);
	assert_int_equal(sig, SIGUSR1);
	assert_int_equal(st.code, 503);
	replay_stop(&rp, c);

	/* No answer at all (nothing listens): waited for as well. */
	struct kube_auth auth = { .server = "http://127.0.0.1:1" };
	struct kube_client_options o = { .max_retries = 1, .backoff_base_ms = 1, .backoff_cap_ms = 2 };
	assert_int_equal(kube_client_new(&auth, &o, &c), 0);
	raise(SIGUSR1);
	sig = -1;
	assert_int_equal(kube_wait_for_server(c, &stop, NULL, NULL, v, sizeof(v), &st, &sig), -EINTR);
	assert_int_equal(sig, SIGUSR1);
	assert_int_equal(st.code, 0);
	kube_client_free(c);
	pthread_sigmask(SIG_UNBLOCK, &stop, NULL);
}

int tests_kube(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(paths),
		cmocka_unit_test(bad_names_are_refused),
		cmocka_unit_test(recorded_statuses),
		cmocka_unit_test(non_status_bodies),
		cmocka_unit_test(retries_429_honouring_retry_after),
		cmocka_unit_test(informer_honours_retry_after),
		cmocka_unit_test(retries_5xx_then_gives_up),
		cmocka_unit_test(post_not_retried_on_500_but_on_503),
		cmocka_unit_test(conflict_goes_back_to_caller),
		cmocka_unit_test(body_over_bound_and_bad_json),
		cmocka_unit_test(connection_refused),
		cmocka_unit_test(wait_for_server),
	};
	return cmocka_run_group_tests_name("kube", tests, NULL, NULL);
}
