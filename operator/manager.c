/*
 * Manager. Owns the informer set, one work queue and worker pool per
 * controller, the leader elector and the HTTP server; see manager.h for
 * the order of things.
 */
#include "manager.h"

#include "backoff.h"
#include "httpserver.h"
#include "informer.h"
#include "leader.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "workqueue.h"
#include "ktime.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONTROLLERS 16
#define MAX_WORKERS 64
#define MAX_KINDS 16

struct binding { /* (controller, watch) for a handler */
	struct manager *m;
	struct controller *ctl;
	const struct controller_watch *watch;
};

struct controller {
	const struct controller_def *def;
	struct manager *m;
	void *data; /* def->data_new's */
	bool data_made;
	struct workqueue *queue;
	pthread_t workers[MAX_WORKERS];
	int n_workers;
	atomic_int running; /* workers still in their loop */
	struct binding bindings[CONTROLLER_MAX_WATCHES];
	struct metric_series *m_ok, *m_error, *m_terminal, *m_requeue, *m_duration;
};

struct manager {
	struct manager_options o;
	struct intern *interns;
	struct informer_set *informers;
	struct informer *by_kind[MAX_KINDS];
	const struct cache_kind *kinds[MAX_KINDS];
	int n_kinds;
	struct controller ctls[MAX_CONTROLLERS];
	int n_ctls;
	struct leader *leader;
	struct httpserver *http;
	atomic_bool workers_started;
	atomic_bool lost;
	atomic_bool stopped;
	pthread_mutex_t start_lock;
	pthread_t starter;
	bool starter_running;
};

static const char *const ctl_result_labels[] = { "controller", "result", NULL };
static const char *const ctl_labels[] = { "controller", NULL };
static const struct metric_family fam_reconciles = { "kinfer_reconcile_total",
						     "Reconciles by controller and result.",
						     METRIC_COUNTER,
						     ctl_result_labels,
						     NULL,
						     0 };
static const struct metric_family fam_duration = { "kinfer_reconcile_duration_seconds",
						   "Time spent in one reconcile.",
						   METRIC_HISTOGRAM,
						   ctl_labels,
						   metrics_latency_buckets,
						   15 };

/* ---- event handlers ---------------------------------------------------- */

static void emit_key(void *ud, const char *key)
{
	struct controller *c = ud;
	int r = workqueue_add(c->queue, key);
	if (r < 0 && r != -ESHUTDOWN)
		log_warn("cannot queue a key", "controller=%s key=%s error=%s", c->def->name, key,
			 strerror(-r));
}

static void on_event(void *ud, enum informer_event ev, const struct cache_obj *old,
		     const struct cache_obj *obj)
{
	struct binding *b = ud;
	const struct cache_obj *o = obj ? obj : old;
	(void)ev;
	if (!o)
		return;
	if (b->watch->map && b->watch->map_old && old && obj)
		b->watch->map(b->ctl->data, old, emit_key, b->ctl);
	if (b->watch->map)
		b->watch->map(b->ctl->data, o, emit_key, b->ctl);
	else
		emit_key(b->ctl, o->key);
}

/* ---- workers ----------------------------------------------------------- */

static void *worker_main(void *ud)
{
	struct controller *c = ud;
	struct manager *m = c->m;
	const char *key;

	rcu_register_thread();
	while (workqueue_get(c->queue, 0, &key) == 0) {
		struct reconcile_ctx ctx = { .manager = m,
					     .client = m->o.client,
					     .controller = c->def,
					     .data = c->data,
					     .shared = m->o.controller_data };
		uint64_t t0 = ktime_mono_ns();
		enum reconcile_result res = c->def->reconcile(&ctx, key);
		metric_observe(c->m_duration, ktime_ns_to_s(ktime_mono_ns() - t0));
		switch (res) {
		case RECONCILE_OK:
			metric_add(c->m_ok, 1);
			workqueue_forget(c->queue, key);
			break;
		case RECONCILE_ERROR:
			if (ctx.ns_terminating) {
				metric_add(c->m_ok, 1);
				log_info("namespace is being deleted: not retried",
					 "controller=%s key=%s error=%s", c->def->name, key,
					 ctx.error);
				workqueue_forget(c->queue, key);
				break;
			}
			metric_add(c->m_error, 1);
			log_warn("reconcile failed, will retry",
				 "controller=%s key=%s retries=%d error=%s", c->def->name, key,
				 workqueue_requeues(c->queue, key), ctx.error);
			workqueue_add_rate_limited(c->queue, key);
			break;
		case RECONCILE_TERMINAL:
			metric_add(c->m_terminal, 1);
			log_error("reconcile failed for good", "controller=%s key=%s error=%s",
				  c->def->name, key, ctx.error);
			workqueue_forget(c->queue, key);
			break;
		case RECONCILE_REQUEUE_AFTER:
			metric_add(c->m_requeue, 1);
			workqueue_forget(c->queue, key);
			workqueue_add_after(c->queue, key, ctx.requeue_after_ns);
			break;
		}
		workqueue_done(c->queue, key);
	}
	atomic_fetch_sub(&c->running, 1);
	rcu_unregister_thread();
	return NULL;
}

static void start_workers(struct manager *m)
{
	pthread_mutex_lock(&m->start_lock);
	if (atomic_load(&m->workers_started) || atomic_load(&m->stopped)) {
		pthread_mutex_unlock(&m->start_lock);
		return;
	}
	for (int i = 0; i < m->n_ctls; i++) {
		struct controller *c = &m->ctls[i];
		int n = c->def->workers > 0 ? c->def->workers : 2;
		if (n > MAX_WORKERS)
			n = MAX_WORKERS;
		for (int w = 0; w < n; w++) {
			if (pthread_create(&c->workers[c->n_workers], NULL, worker_main, c) != 0)
				break;
			c->n_workers++;
			atomic_fetch_add(&c->running, 1);
		}
		log_info("controller started", "controller=%s workers=%d", c->def->name,
			 c->n_workers);
	}
	atomic_store(&m->workers_started, true);
	pthread_mutex_unlock(&m->start_lock);
}

/*
 * Start the workers once every cache has synced: reconciling on a half-full
 * cache would act on a partial view. This runs on its own thread, so the
 * election thread keeps renewing the lease meanwhile (a missing CRD can keep
 * a cache from syncing for as long as it is missing).
 */
static void *starter_main(void *ud)
{
	struct manager *m = ud;
	uint64_t logged = 0;
	while (!atomic_load(&m->stopped)) {
		if (informer_set_wait_synced(m->informers, KTIME_NSEC_PER_SEC) == 0) {
			start_workers(m);
			break;
		}
		if (++logged % 30 == 0)
			log_warn("leader waiting for caches to sync before reconciling",
				 "seconds=%llu", (unsigned long long)logged);
	}
	return NULL;
}

static void on_started_leading(void *ud)
{
	struct manager *m = ud;
	pthread_mutex_lock(&m->start_lock);
	if (!m->starter_running && !atomic_load(&m->stopped) &&
	    pthread_create(&m->starter, NULL, starter_main, m) == 0)
		m->starter_running = true;
	pthread_mutex_unlock(&m->start_lock);
}

static void on_stopped_leading(void *ud)
{
	struct manager *m = ud;
	/* The new leader may act from now on: no write of ours goes out,
	 * not even from a reconcile in the middle of a drain or a bind. */
	kube_client_fence(m->o.client);
	atomic_store(&m->lost, true);
	/* The main thread waits in sigwait: wake it to stop with exit 1. */
	kill(getpid(), SIGTERM);
}

/* ---- HTTP hooks -------------------------------------------------------- */

static bool hook_healthy(void *ud, char *msg, size_t len)
{
	struct manager *m = ud;
	bool lost = atomic_load(&m->lost);
	snprintf(msg, len, lost ? "leader lease lost" : "ok");
	return !lost;
}

static bool hook_ready(void *ud, char *msg, size_t len)
{
	struct manager *m = ud;
	size_t n = 0;
	bool ready = true;
	for (int i = 0; i < m->n_kinds; i++)
		if (!cache_synced(informer_cache(m->by_kind[i]))) {
			if (ready)
				n += (size_t)snprintf(msg + n, len - n, "caches not synced:");
			ready = false;
			if (n < len)
				n += (size_t)snprintf(msg + n, len - n, " %s", m->kinds[i]->name);
		}
	if (ready)
		snprintf(msg, len, "ok (%s)",
			 !m->leader                  ? "leader election off" :
			 leader_is_leader(m->leader) ? "leader" :
						       "standby");
	return ready;
}

static void hook_before_metrics(void *ud)
{
	struct manager *m = ud;
	for (int i = 0; i < m->n_ctls; i++)
		workqueue_update_metrics(m->ctls[i].queue);
}

/* ---- lifecycle ---------------------------------------------------------- */

static struct informer *informer_for(struct manager *m, const struct cache_kind *k)
{
	struct informer *inf;
	for (int i = 0; i < m->n_kinds; i++)
		if (m->kinds[i] == k)
			return m->by_kind[i];
	if (m->n_kinds == MAX_KINDS)
		return NULL;
	struct informer_options io = { .kind = k,
				       .namespace = k->res->namespaced ? m->o.watch_namespace : NULL,
				       .label_selector = k->label_selector,
				       .resync_ns = m->o.resync_ns };
	if (informer_add(m->informers, &io, &inf) < 0)
		return NULL;
	m->kinds[m->n_kinds] = k;
	m->by_kind[m->n_kinds++] = inf;
	return inf;
}

static int add_controller(struct manager *m, const struct controller_def *def)
{
	struct controller *c = &m->ctls[m->n_ctls];
	struct workqueue_options qo = { .name = def->name, .metrics = m->o.metrics };
	int r;

	if (m->n_ctls == MAX_CONTROLLERS || def->n_watches > CONTROLLER_MAX_WATCHES)
		return -E2BIG;
	c->def = def;
	c->m = m;
	r = workqueue_new(&qo, &c->queue);
	if (r < 0)
		return r;
	m->n_ctls++;
	const char *lv[][2] = { { def->name, "success" },
				{ def->name, "error" },
				{ def->name, "terminal" },
				{ def->name, "requeue_after" } };
	c->m_ok = metrics_series(m->o.metrics, &fam_reconciles, lv[0]);
	c->m_error = metrics_series(m->o.metrics, &fam_reconciles, lv[1]);
	c->m_terminal = metrics_series(m->o.metrics, &fam_reconciles, lv[2]);
	c->m_requeue = metrics_series(m->o.metrics, &fam_reconciles, lv[3]);
	const char *dl[] = { def->name };
	c->m_duration = metrics_series(m->o.metrics, &fam_duration, dl);
	return 0;
}

static struct controller_env env_of(struct manager *m, struct controller *c)
{
	return (struct controller_env){
		.manager = m, .self = c, .shared = m->o.controller_data, .metrics = m->o.metrics
	};
}

/* Every row has its handle: make each row's data, then link them. */
static int make_data(struct manager *m)
{
	int r;
	for (int i = 0; i < m->n_ctls; i++) {
		struct controller *c = &m->ctls[i];
		struct controller_env env = env_of(m, c);
		if (!c->def->data_new)
			continue;
		r = c->def->data_new(&env, &c->data);
		if (r < 0)
			return r;
		c->data_made = true;
	}
	for (int i = 0; i < m->n_ctls; i++) {
		struct controller *c = &m->ctls[i];
		struct controller_env env = env_of(m, c);
		if (c->def->data_link && (r = c->def->data_link(c->data, &env)) < 0)
			return r;
	}
	return 0;
}

/* Last: the handlers see the rows' data from the first event on. */
static int add_handlers(struct manager *m, struct controller *c)
{
	const struct controller_def *def = c->def;
	for (size_t w = 0; w < def->n_watches; w++) {
		struct informer *inf = informer_for(m, def->watches[w].kind);
		if (!inf)
			return -ENOMEM;
		c->bindings[w] = (struct binding){ m, c, &def->watches[w] };
		int r = informer_add_handler(inf, on_event, &c->bindings[w]);
		if (r < 0)
			return r;
	}
	return 0;
}

int manager_new(const struct manager_options *o, struct manager **ret)
{
	struct manager *m = calloc(1, sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	m->o = *o;
	if (!m->o.shutdown_timeout_ns)
		m->o.shutdown_timeout_ns = 30 * KTIME_NSEC_PER_SEC;
	pthread_mutex_init(&m->start_lock, NULL);
	r = intern_new(&m->interns);
	if (r < 0)
		goto fail;
	r = informer_set_new(o->client, m->interns, o->metrics, &m->informers);
	if (r < 0)
		goto fail;
	informer_set_events(m->informers, o->events);
	for (size_t i = 0; i < o->n_controllers; i++) {
		r = add_controller(m, o->controllers[i]);
		if (r < 0)
			goto fail;
	}
	r = make_data(m);
	if (r < 0)
		goto fail;
	for (int i = 0; i < m->n_ctls; i++) {
		r = add_handlers(m, &m->ctls[i]);
		if (r < 0)
			goto fail;
	}
	if (o->leader_elect) {
		struct leader_options lo = {
			.namespace = o->lease_namespace,
			.name = o->lease_name,
			.identity = o->identity,
			.lease_ns = o->lease_ns,
			.renew_deadline_ns = o->renew_deadline_ns,
			.retry_ns = o->retry_ns,
			.on_started = on_started_leading,
			.on_stopped = on_stopped_leading,
			.ud = m,
			.metrics = o->metrics,
		};
		r = leader_new(o->lease_client ? o->lease_client : o->client, &lo, &m->leader);
		if (r < 0)
			goto fail;
	}
	*ret = m;
	return 0;
fail:
	manager_free(m);
	return r;
}

int manager_start(struct manager *m)
{
	int r;
	if (m->o.http_addr) {
		struct httpserver_hooks h = { hook_healthy, hook_ready, hook_before_metrics, m };
		r = httpserver_start(m->o.http_addr, m->o.metrics, &h, &m->http);
		if (r < 0) {
			log_error("cannot serve HTTP", "addr=%s error=%s", m->o.http_addr,
				  strerror(-r));
			return r;
		}
		log_info("serving health and metrics", "addr=%s port=%u", m->o.http_addr,
			 httpserver_port(m->http));
	}
	r = informer_set_start(m->informers);
	if (r < 0)
		return r;
	if (m->leader)
		return leader_start(m->leader);
	on_started_leading(m);
	return 0;
}

static void join_workers(struct manager *m, uint64_t deadline)
{
	for (int i = 0; i < m->n_ctls; i++) {
		struct controller *c = &m->ctls[i];
		for (int w = 0; w < c->n_workers; w++) {
			uint64_t now = ktime_mono_ns(), left = deadline > now ? deadline - now : 0;
			/* pthread_timedjoin_np waits on CLOCK_REALTIME. */
			struct timespec ts = ktime_deadline(CLOCK_REALTIME, left);
			if (pthread_timedjoin_np(c->workers[w], NULL, &ts) != 0) {
				log_warn("reconciles still running at the shutdown deadline",
					 "controller=%s running=%d", c->def->name,
					 atomic_load(&c->running));
				return;
			}
		}
		c->n_workers = 0;
	}
}

void manager_stop(struct manager *m)
{
	if (atomic_exchange(&m->stopped, true))
		return;
	uint64_t deadline = ktime_mono_ns() + m->o.shutdown_timeout_ns;
	pthread_mutex_lock(&m->start_lock);
	for (int i = 0; i < m->n_ctls; i++)
		workqueue_shutdown(m->ctls[i].queue);
	bool starter = m->starter_running;
	m->starter_running = false;
	pthread_mutex_unlock(&m->start_lock);
	if (starter)
		pthread_join(m->starter, NULL); /* it sees stopped within a second */
	join_workers(m, deadline);
	if (m->leader)
		leader_stop(m->leader); /* releases the lease */
	informer_set_stop(m->informers);
	httpserver_stop(m->http);
	m->http = NULL;
}

int manager_run_until_signal(struct manager *m, uint64_t *signal_ns)
{
	sigset_t set;
	int sig = 0;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigwait(&set, &sig);
	if (signal_ns)
		*signal_ns = ktime_mono_ns();
	bool lost = atomic_load(&m->lost);
	log_info("stopping", "reason=%s",
		 lost          ? "lost leadership" :
		 sig == SIGINT ? "SIGINT" :
				 "SIGTERM");
	manager_stop(m);
	return lost ? 1 : 0;
}

void manager_free(struct manager *m)
{
	if (!m)
		return;
	manager_stop(m);
	leader_free(m->leader);
	informer_set_free(m->informers);
	for (int i = m->n_ctls - 1; i >= 0; i--) {
		struct controller *c = &m->ctls[i];
		if (c->n_workers) /* never free what a stuck worker uses */
			continue;
		if (c->data_made && c->def->data_free)
			c->def->data_free(c->data);
		workqueue_free(c->queue);
	}
	intern_free(m->interns);
	pthread_mutex_destroy(&m->start_lock);
	free(m);
}

struct cache *manager_cache(struct manager *m, const struct cache_kind *kind)
{
	for (int i = 0; i < m->n_kinds; i++)
		if (m->kinds[i] == kind)
			return informer_cache(m->by_kind[i]);
	return NULL;
}

unsigned manager_http_port(const struct manager *m)
{
	return m->http ? httpserver_port(m->http) : 0;
}

bool manager_is_leader(struct manager *m)
{
	return m->leader ? leader_is_leader(m->leader) : true;
}

struct controller *manager_controller(struct manager *m, const struct controller_def *def)
{
	for (int i = 0; i < m->n_ctls; i++)
		if (m->ctls[i].def == def)
			return &m->ctls[i];
	return NULL;
}

void *controller_data(const struct controller *c)
{
	return c ? c->data : NULL;
}

int controller_enqueue(struct controller *c, const char *key)
{
	if (!c)
		return -EINVAL;
	return workqueue_add(c->queue, key);
}
