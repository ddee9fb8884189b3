/*
 * The manager running a real controller against the control plane: a
 * "mirror" controller that server-side-applies <name>-mirror for every
 * ConfigMap labelled for it. Checks keys flow from informer to queue to
 * worker, that failing keys are retried with backoff and counted, that
 * terminal and requeue-after results behave, and that a stop waits for an
 * in-flight reconcile. Also: each row's own data reaches its reconcile and
 * its map function, rows reach each other through handles, and a row whose
 * constructor fails fails manager_new with every row's data freed. And a
 * leader that loses its Lease in the middle of a reconcile that writes
 * issues no write from that moment (issue 12, item 9).
 */
#include "itest.h"

#include "kinds.h"
#include "manager.h"
#include "metrics.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char ns[64];
static struct kube_client *kc;
static atomic_int fail_attempts, terminal_runs, requeue_runs, slow_done;

static int setup(void **state)
{
	(void)state;
	kc = itest_client(-1);
	itest_namespace(kc, "manager", ns, sizeof(ns));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	itest_namespace_delete(kc, ns);
	kube_client_free(kc);
	return 0;
}

static enum reconcile_result mirror(struct reconcile_ctx *ctx, const char *key)
{
	struct cache *c = manager_cache(ctx->manager, &kind_configmaps);
	const char *slash = strchr(key, '/');
	char name[256];
	bool exists;

	if (!slash || strncmp(key, ns, (size_t)(slash - key)) != 0)
		return RECONCILE_OK;
	snprintf(name, sizeof(name), "%s", slash + 1);
	if (strstr(name, "-mirror"))
		return RECONCILE_OK;
	cache_read_lock();
	exists = cache_get(c, key) != NULL;
	cache_read_unlock();
	if (!exists)
		return RECONCILE_OK;
	if (strncmp(name, "fail-", 5) == 0 && atomic_fetch_add(&fail_attempts, 1) < 3) {
		snprintf(ctx->error, sizeof(ctx->error), "failing on purpose");
		return RECONCILE_ERROR;
	}
	if (strncmp(name, "bad-", 4) == 0) {
		atomic_fetch_add(&terminal_runs, 1);
		snprintf(ctx->error, sizeof(ctx->error), "never works");
		return RECONCILE_TERMINAL;
	}
	if (strncmp(name, "again-", 6) == 0 && atomic_fetch_add(&requeue_runs, 1) < 2) {
		ctx->requeue_after_ns = 200ULL * 1000000ULL;
		return RECONCILE_REQUEUE_AFTER;
	}
	if (strncmp(name, "slow-", 5) == 0) {
		usleep(1500000);
		atomic_store(&slow_done, 1);
	}
	char body[1024], mname[300];
	snprintf(mname, sizeof(mname), "%s-mirror", name);
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
		 "\"metadata\":{\"name\":\"%s\"},\"data\":{\"of\":\"%s\"}}",
		 mname, name);
	json_object *b = json_tokener_parse(body);
	struct kube_opts o = { .field_manager = "kinfer-operator", .force = true };
	struct kube_status st;
	int r = kube_apply(ctx->client, &kube_res_configmaps, ns, mname, NULL, b, &o, NULL, &st);
	json_object_put(b);
	if (r < 0) {
		snprintf(ctx->error, sizeof(ctx->error), "%s", st.message);
		return RECONCILE_ERROR;
	}
	return RECONCILE_OK;
}

static const struct controller_watch mirror_watches[] = { { .kind = &kind_configmaps, .map = NULL } };
static const struct controller_def mirror_def = {
	.name = "mirror",
	.watches = mirror_watches,
	.n_watches = 1,
	.reconcile = mirror,
	.workers = 2,
};
static const struct controller_def *const defs[] = { &mirror_def };

static void create(const char *name)
{
	char body[256];
	snprintf(body, sizeof(body), "{\"metadata\":{\"name\":\"%s\"},\"data\":{\"k\":\"v\"}}", name);
	json_object *b = json_tokener_parse(body);
	assert_int_equal(kube_create(kc, &kube_res_configmaps, ns, NULL, NULL, b, NULL, NULL, NULL),
			 0);
	json_object_put(b);
}

static bool mirrored(const char *name)
{
	char m[300];
	snprintf(m, sizeof(m), "%s-mirror", name);
	for (int i = 0; i < 100; i++) {
		if (kube_get(kc, &kube_res_configmaps, ns, m, NULL, NULL, NULL) == 0)
			return true;
		usleep(100000);
	}
	return false;
}

static double metric_of(struct metrics *m, const char *needle)
{
	char *text, *p;
	size_t len;
	double v = -1;
	assert_int_equal(metrics_render(m, &text, &len), 0);
	if ((p = strstr(text, needle)))
		v = strtod(p + strlen(needle), NULL);
	free(text);
	return v;
}

static void controller_loop(void **state)
{
	struct metrics *m;
	struct manager *mgr;
	struct manager_options o = { .client = kc,
				     .controllers = defs,
				     .n_controllers = 1,
				     .watch_namespace = ns,
				     .http_addr = "127.0.0.1:0",
				     .shutdown_timeout_ns = 10ULL * 1000000000ULL };
	(void)state;
	assert_int_equal(metrics_new(&m), 0);
	o.metrics = m;
	create("plain");
	assert_int_equal(manager_new(&o, &mgr), 0);
	assert_int_equal(manager_start(mgr), 0);
	assert_true(manager_http_port(mgr) > 0);
	/* An object that existed before start, and new ones. */
	assert_true(mirrored("plain"));
	create("fail-1");
	create("bad-1");
	create("again-1");
	assert_true(mirrored("fail-1"));
	assert_true(mirrored("again-1"));
	assert_true(atomic_load(&fail_attempts) >= 4);
	assert_int_equal(atomic_load(&terminal_runs), 1);
	assert_int_equal(atomic_load(&requeue_runs), 3);
	assert_true(metric_of(m, "kinfer_reconcile_total{controller=\"mirror\",result=\"error\"} ") >=
		    3);
	assert_true(metric_of(m, "kinfer_reconcile_total{controller=\"mirror\",result=\"terminal\"} ") ==
		    1);
	assert_true(metric_of(m, "kinfer_workqueue_retries_total{name=\"mirror\"} ") >= 3);
	/* The bad key is not retried: give it time to prove it. */
	usleep(500000);
	assert_int_equal(atomic_load(&terminal_runs), 1);
	/* Stop while a slow reconcile runs: the stop waits for it. */
	create("slow-1");
	usleep(400000);
	manager_stop(mgr);
	assert_int_equal(atomic_load(&slow_done), 1);
	manager_free(mgr);
	metrics_free(m);
}

/* ---- rows with their own data ------------------------------------------ */

#define ROW_MAGIC 0x5eed
struct rowdata {
	int magic;
	atomic_int maps, reconciles;
	struct controller *peer; /* row_a's handle, in row_b */
};
static atomic_int row_frees, row_news;
static bool row_b_fails;
static const struct controller_def row_a, row_b;

static int row_new(const struct controller_env *env, void **ret)
{
	if (row_b_fails && env->self == manager_controller(env->manager, &row_b))
		return -EPERM;
	struct rowdata *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->magic = ROW_MAGIC;
	atomic_fetch_add(&row_news, 1);
	*ret = d;
	return 0;
}

static int row_link(void *data, const struct controller_env *env)
{
	struct rowdata *d = data;
	d->peer = manager_controller(env->manager, &row_a);
	return d->peer ? 0 : -ENOENT;
}

static void row_free(void *data)
{
	if (!data)
		return;
	atomic_fetch_add(&row_frees, 1);
	free(data);
}

static bool relay_key(const char *key)
{
	return strstr(key, "/relay-") != NULL;
}

/* Row a: its map drops relay- keys, so they reach it only through b. */
static void map_a(void *data, const struct cache_obj *o, controller_emit_fn emit, void *ud)
{
	struct rowdata *d = data;
	if (d && d->magic == ROW_MAGIC)
		atomic_fetch_add(&d->maps, 1);
	if (!relay_key(o->key))
		emit(ud, o->key);
}

static enum reconcile_result reconcile_a(struct reconcile_ctx *ctx, const char *key)
{
	struct rowdata *d = ctx->data;
	if (d && d->magic == ROW_MAGIC && relay_key(key))
		atomic_fetch_add(&d->reconciles, 1);
	return RECONCILE_OK;
}

/* Row b hands relay- keys to a through its handle. */
static enum reconcile_result reconcile_b(struct reconcile_ctx *ctx, const char *key)
{
	struct rowdata *d = ctx->data;
	if (relay_key(key) && d && d->magic == ROW_MAGIC) {
		atomic_fetch_add(&d->reconciles, 1);
		controller_enqueue(d->peer, key);
	}
	return RECONCILE_OK;
}

static const struct controller_watch watches_a[] = { { .kind = &kind_configmaps, .map = map_a } };
static const struct controller_watch watches_b[] = { { .kind = &kind_configmaps, .map = NULL } };
static const struct controller_def row_a = {
	.name = "row-a",
	.watches = watches_a,
	.n_watches = 1,
	.reconcile = reconcile_a,
	.workers = 1,
	.data_new = row_new,
	.data_free = row_free,
};
static const struct controller_def row_b = {
	.name = "row-b",
	.watches = watches_b,
	.n_watches = 1,
	.reconcile = reconcile_b,
	.workers = 1,
	.data_new = row_new,
	.data_link = row_link,
	.data_free = row_free,
};
static const struct controller_def *const rows[] = { &row_a, &row_b };

static void rows_own_data(void **state)
{
	struct manager *mgr = NULL;
	struct manager_options o = { .client = kc,
				     .controllers = rows,
				     .n_controllers = 2,
				     .watch_namespace = ns,
				     .shutdown_timeout_ns = 10ULL * 1000000000ULL };
	(void)state;
	/* A failing constructor: manager_new fails with its error, and the
	 * row made before it is freed. */
	row_b_fails = true;
	assert_int_equal(manager_new(&o, &mgr), -EPERM);
	assert_int_equal(atomic_load(&row_news), 1);
	assert_int_equal(atomic_load(&row_frees), 1);
	row_b_fails = false;

	assert_int_equal(manager_new(&o, &mgr), 0);
	struct rowdata *a = controller_data(manager_controller(mgr, &row_a));
	struct rowdata *b = controller_data(manager_controller(mgr, &row_b));
	assert_non_null(a);
	assert_non_null(b);
	assert_true(a != b);
	assert_ptr_equal(b->peer, manager_controller(mgr, &row_a));
	assert_null(manager_controller(mgr, &mirror_def));
	assert_int_equal(manager_start(mgr), 0);
	create("relay-1");
	for (int i = 0; i < 100 && atomic_load(&a->reconciles) == 0; i++)
		usleep(100000);
	assert_true(atomic_load(&a->maps) >= 1);
	assert_true(atomic_load(&b->reconciles) >= 1);
	assert_true(atomic_load(&a->reconciles) >= 1);
	manager_stop(mgr);
	manager_free(mgr);
	assert_int_equal(atomic_load(&row_frees), 3);
}

/* ---- a lost Lease fences the writes ------------------------------------- */

#define FENCE_WRITES 60
static atomic_int fence_ok, fence_refused;
static _Atomic uint64_t fence_last_ok_ns;

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* One long reconcile writing a ConfigMap every 100 ms, as a drain of many
 * pods or a burst of binds would. */
static enum reconcile_result writer(struct reconcile_ctx *ctx, const char *key)
{
	char body[256], name[64];
	if (!strstr(key, "/fence-go"))
		return RECONCILE_OK;
	for (int i = 0; i < FENCE_WRITES; i++) {
		snprintf(name, sizeof(name), "fence-w%d", i);
		snprintf(body, sizeof(body),
			 "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
			 "\"metadata\":{\"name\":\"%s\"}}",
			 name);
		json_object *b = json_tokener_parse(body);
		struct kube_opts o = { .field_manager = "kinfer-operator", .force = true };
		int r = kube_apply(ctx->client, &kube_res_configmaps, ns, name, NULL, b, &o, NULL,
				   NULL);
		json_object_put(b);
		if (r == 0) {
			atomic_fetch_add(&fence_ok, 1);
			atomic_store(&fence_last_ok_ns, mono_ns());
		} else if (r == -ENOLCK) {
			atomic_fetch_add(&fence_refused, 1);
		}
		usleep(100000);
	}
	return RECONCILE_OK;
}

static const struct controller_watch fence_watches[] = { { .kind = &kind_configmaps, .map = NULL } };
static const struct controller_def fence_def = {
	.name = "fence",
	.watches = fence_watches,
	.n_watches = 1,
	.reconcile = writer,
	.workers = 1,
};
static const struct controller_def *const fence_defs[] = { &fence_def };

static void lost_lease_fences_writes(void **state)
{
	struct manager *mgr;
	struct kube_client *lease_client = itest_client(-1);
	struct manager_options o = {
		.client = kc,
		.lease_client = lease_client,
		.controllers = fence_defs,
		.n_controllers = 1,
		.watch_namespace = ns,
		.shutdown_timeout_ns = 15ULL * 1000000000ULL,
		.leader_elect = true,
		.lease_namespace = ns,
		.lease_name = "fence",
		.identity = "fence-test",
		.lease_ns = 4000000000ULL,
		.renew_deadline_ns = 2000000000ULL,
		.retry_ns = 500000000ULL,
	};
	sigset_t set;
	int st;
	(void)state;
	/* The manager signals the process when it loses the lease. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	assert_int_equal(manager_new(&o, &mgr), 0);
	assert_int_equal(manager_start(mgr), 0);
	for (int i = 0; i < 100 && !manager_is_leader(mgr); i++)
		usleep(100000);
	assert_true(manager_is_leader(mgr));
	create("fence-go");
	for (int i = 0; i < 100 && atomic_load(&fence_ok) < 5; i++)
		usleep(100000);
	assert_true(atomic_load(&fence_ok) >= 5);
	/* Another replica takes the Lease over. */
	char *out = itest_kubectl(&st,
				  "-n %s patch lease fence --type=merge -p "
				  "'{\"spec\":{\"holderIdentity\":\"thief\",\"leaseDurationSeconds\":60}}'",
				  ns);
	free(out);
	assert_int_equal(st, 0);
	for (int i = 0; i < 100 && manager_is_leader(mgr); i++)
		usleep(50000);
	assert_false(manager_is_leader(mgr));
	uint64_t lost_at = mono_ns();
	/* The reconcile goes on; its writes do not. */
	usleep(2000000);
	uint64_t last_ok = atomic_load(&fence_last_ok_ns);
	/* A write already on the wire when the lease went may land: 100 ms. */
	assert_true(last_ok < lost_at + 100000000ULL);
	assert_true(atomic_load(&fence_refused) >= 5);
	struct timespec zero = { 0, 0 };
	while (sigtimedwait(&set, NULL, &zero) > 0)
		;
	manager_stop(mgr);
	manager_free(mgr);
	while (sigtimedwait(&set, NULL, &zero) > 0)
		;
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	kube_client_free(lease_client);
}

int itests_manager(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(controller_loop),
		cmocka_unit_test(rows_own_data),
		cmocka_unit_test(lost_lease_fences_writes),
	};
	return cmocka_run_group_tests_name("manager", tests, setup, teardown);
}
