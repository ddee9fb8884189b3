/*
 * The warm-up controller. For each gated pod whose containers are ready,
 * one reconcile walks the states of warmup.h with warmup_step():
 *
 *   WAITING   GET the health path; not 200 yet: look again in 2 s (never
 *             a long wait in a worker); the deadline counts from when the
 *             containers became ready (or from the last failed attempt),
 *             so it survives restarts
 *   WARMING   send the warm-up requests, `concurrency` at a time (curl multi)
 *   WARM      set kinfer.io/warmed-up=True through pods/status: the pod
 *             becomes Ready and joins the Service endpoints
 *   FAILED    set the condition False with the reason, count the attempt in
 *             an annotation, retry with backoff (10 s doubling to 5 min);
 *             after maxAttempts the pod is deleted so the ReplicaSet makes a
 *             new one
 *
 * A pod already warm, draining (reason Draining) or going away is left
 * alone, unless its containers stop being ready: then it is cold again
 * (reason ContainerRestarted) and goes through WAITING and WARMING anew
 * (cold_again). The spec comes from the InferenceService's snapshot (snapshot.h).
 */
#include "warmup_controller.h"

#include "backoff.h"
#include "context.h"
#include "isvc.h"
#include "kinds.h"
#include "log.h"
#include "podstate.h"
#include "ratelimit.h"
#include "snapshot.h"
#include "warmup.h"
#include "ktime.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEALTH_RETRY_NS (2 * KTIME_NSEC_PER_SEC)
/*
 * The warm-up requests run off the workers (issue 12, item 6): a stalled
 * model server holds one job thread for up to its timeoutSeconds, never a
 * worker, and one service holds at most WARM_PER_SERVICE of them, so no
 * service can keep another's pods from turning warm.
 */
#define WARM_MAX_JOBS 256  /* warm-ups running at once */
#define WARM_PER_SERVICE 4 /* of one service */
#define WARM_BUDGET_RETRY_NS (2 * KTIME_NSEC_PER_SEC)
#define WARM_JOB_CHECK_NS (30 * KTIME_NSEC_PER_SEC) /* the job also enqueues when done */
#define WARM_JOB_STACK (256 * 1024)
/*
 * A pod just written warm is not needing a warm-up, even while the cache
 * still shows it cold: the write of its condition (and the annotation
 * before it, itself a pod update that enqueues the pod) reach the cache one
 * at a time, and a reconcile in between would warm the model up again.
 * Remembered until the cache shows it warm, or WARM_SETTLE_NS at the most
 * (a watch that never shows it: warm it again rather than never).
 */
#define WARM_SETTLE_NS (30 * KTIME_NSEC_PER_SEC)
#define WARM_SETTLE_RETRY_NS (KTIME_NSEC_PER_SEC)

/* ---- the row's data: warm-ups in flight ----------------------------------- */

enum job_state {
	JOB_RUNNING, /* its thread sends the requests */
	JOB_DONE,    /* r and res hold the outcome, for the next reconcile */
};

struct wctl;

struct job {
	struct wctl *w;
	char key[320], uid[64], service[320], ip[64];
	struct warmup_plan plan; /* owned copy */
	uint64_t deadline_ns;
	enum job_state state; /* under w->lock */
	int r;
	struct warmup_result res;
	pthread_t thread;
};

/* A pod written warm whose warm condition the cache does not show yet. */
struct settling {
	char key[320], uid[64];
	uint64_t until_ns; /* 0: a free row */
};

struct wctl {
	struct controller *self;
	pthread_mutex_t lock;
	struct job *jobs[WARM_MAX_JOBS];
	struct settling settling[WARM_MAX_JOBS]; /* under lock */
	atomic_bool stopping;
};

static int wctl_new(const struct controller_env *env, void **ret)
{
	struct wctl *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->self = env->self;
	pthread_mutex_init(&w->lock, NULL);
	*ret = w;
	return 0;
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	warmup_plan_free(&j->plan);
	free(j);
}

/* After the workers stopped: cancel the warm-ups (each sees it within
 * 100 ms) and wait for their threads. */
static void wctl_free(void *data)
{
	struct wctl *w = data;
	if (!w)
		return;
	atomic_store(&w->stopping, true);
	for (size_t i = 0; i < WARM_MAX_JOBS; i++)
		if (w->jobs[i]) {
			pthread_join(w->jobs[i]->thread, NULL);
			job_free(w->jobs[i]);
		}
	pthread_mutex_destroy(&w->lock);
	free(w);
}

static void *job_main(void *ud)
{
	struct job *j = ud;
	struct warmup_result res;
	int r = warmup_send(j->ip, &j->plan, j->deadline_ns, &j->w->stopping, &res);
	pthread_mutex_lock(&j->w->lock);
	j->r = r;
	j->res = res;
	j->state = JOB_DONE;
	pthread_mutex_unlock(&j->w->lock);
	if (!atomic_load(&j->w->stopping))
		controller_enqueue(j->w->self, j->key);
	return NULL;
}

/* Under w->lock. */
static struct job **job_slot(struct wctl *w, const char *key)
{
	for (size_t i = 0; i < WARM_MAX_JOBS; i++)
		if (w->jobs[i] && strcmp(w->jobs[i]->key, key) == 0)
			return &w->jobs[i];
	return NULL;
}

/* Under w->lock: may another warm-up of service start? */
static bool within_budget(struct wctl *w, const char *service, struct job ***ret_free)
{
	size_t of_service = 0;
	*ret_free = NULL;
	for (size_t i = 0; i < WARM_MAX_JOBS; i++) {
		if (!w->jobs[i]) {
			if (!*ret_free)
				*ret_free = &w->jobs[i];
		} else if (w->jobs[i]->state == JOB_RUNNING &&
			   strcmp(w->jobs[i]->service, service) == 0) {
			of_service++;
		}
	}
	return *ret_free && of_service < WARM_PER_SERVICE;
}

static bool has_job(struct wctl *w, const char *key)
{
	pthread_mutex_lock(&w->lock);
	bool has = job_slot(w, key) != NULL;
	pthread_mutex_unlock(&w->lock);
	return has;
}

/* Forget a finished job (its pod went away or was reconciled). */
static void job_drop(struct wctl *w, const char *key)
{
	struct job *gone = NULL;
	pthread_mutex_lock(&w->lock);
	struct job **slot = job_slot(w, key);
	if (slot && (*slot)->state == JOB_DONE) {
		gone = *slot;
		*slot = NULL;
	}
	pthread_mutex_unlock(&w->lock);
	if (gone) {
		pthread_join(gone->thread, NULL);
		job_free(gone);
	}
}

/* Remember that key (of uid) was written warm. A full table remembers
 * nothing: the pod may then be warmed twice, never left cold. */
static void settling_mark(struct wctl *w, const char *key, const char *uid)
{
	uint64_t now = ktime_mono_ns();
	struct settling *row = NULL;
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < WARM_MAX_JOBS; i++) {
		struct settling *e = &w->settling[i];
		if (e->until_ns && strcmp(e->key, key) == 0) {
			row = e; /* its own row first */
			break;
		}
		if (!row && e->until_ns <= now)
			row = e;
	}
	if (row) {
		snprintf(row->key, sizeof(row->key), "%s", key);
		snprintf(row->uid, sizeof(row->uid), "%s", uid);
		row->until_ns = now + WARM_SETTLE_NS;
	}
	pthread_mutex_unlock(&w->lock);
}

/* Was key (of uid) written warm within WARM_SETTLE_NS? forget: drop it. */
static bool settling_check(struct wctl *w, const char *key, const char *uid, bool forget)
{
	uint64_t now = ktime_mono_ns();
	bool found = false;
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < WARM_MAX_JOBS; i++) {
		struct settling *e = &w->settling[i];
		if (!e->until_ns || strcmp(e->key, key) != 0)
			continue;
		found = e->until_ns > now && strcmp(e->uid, uid) == 0;
		if (forget || !found)
			e->until_ns = 0;
		break;
	}
	pthread_mutex_unlock(&w->lock);
	return found;
}

/* What the warm-up reads of a pod, copied out of the cache. */
struct pod_copy {
	char ns[64], name[256], uid[64], ip[64], service[256], reason[64];
	int32_t attempts;
	int32_t restarts, warm_restarts; /* now; when it turned warm (-1: not recorded) */
	int64_t since, containers_since;
	bool ready_containers, warm, deleting;
	bool stopped; /* a container not running: its process gone */
};

/* 0; -ENOENT when the pod is gone, not gated or of no service. */
static int copy_pod(struct manager *m, const char *key, struct pod_copy *c)
{
	struct cache *pc = manager_cache(m, &kind_pods);
	int r = -ENOENT;

	memset(c, 0, sizeof(*c));
	cache_read_lock();
	const struct kpod *p = (const struct kpod *)cache_get(pc, key);
	if (p && p->has_gate && p->service) {
		snprintf(c->ns, sizeof(c->ns), "%s", p->meta.ns);
		snprintf(c->name, sizeof(c->name), "%s", cache_obj_name(&p->meta));
		cache_obj_uid_copy(&p->meta, c->uid, sizeof(c->uid));
		kpod_ip_copy(p, c->ip, sizeof(c->ip));
		snprintf(c->service, sizeof(c->service), "%s", p->service);
		snprintf(c->reason, sizeof(c->reason), "%s", p->warm_reason ? p->warm_reason : "");
		c->attempts = p->warmup_attempts;
		c->restarts = p->restarts;
		c->warm_restarts = p->warm_restarts;
		c->since = p->warm_since;
		c->containers_since = p->containers_ready_since;
		c->ready_containers = p->containers_ready == KCOND_TRUE;
		c->warm = p->warmed == KCOND_TRUE;
		c->deleting = p->meta.deleted != 0;
		c->stopped = p->stopped;
		r = 0;
	}
	cache_read_unlock();
	return r;
}

/* One reconcile's run through the states. */
struct run {
	struct reconcile_ctx *ctx;
	const struct pod_copy *pod;
	struct warmup_plan plan;
	struct warmup_result res;
	int64_t left; /* seconds left of timeoutSeconds */
	enum reconcile_result out;
};

static void pod_event(struct run *run, const char *type, const char *reason, const char *note)
{
	const struct pod_copy *p = run->pod;
	context_event(run->ctx, "v1", "Pod", p->ns, p->name, p->uid, type, reason, "WarmUp", note);
}

static int set_condition(struct reconcile_ctx *ctx, const struct pod_copy *p, bool ok,
			 const char *reason, const char *message)
{
	struct kube_status st;
	int r = podstate_set_gate(ctx->client, p->ns, p->name, ok, reason, message, &st);
	if (r < 0)
		snprintf(ctx->error, sizeof(ctx->error), "set %s on %s/%.200s: %.400s", KINFER_GATE,
			 p->ns, p->name, st.message);
	return r;
}

static int count_attempt(struct reconcile_ctx *ctx, const struct pod_copy *p, int attempts)
{
	char v[16];
	snprintf(v, sizeof(v), "%d", attempts);
	return podstate_annotate(ctx->client, p->ns, p->name, KINFER_WARMUP_ATTEMPTS, v, NULL);
}

/* ---- one function per state ---------------------------------------------- */

static enum warmup_event on_waiting(struct run *run)
{
	/* The probe's answer also goes into the timeout's message: a model
	 * still loading (503), a server that does not listen, and one that
	 * takes the connection and never answers are three different faults. */
	int probe = warmup_probe(run->pod->ip, &run->plan, &run->res);
	if (probe == 0)
		return WARMUP_EV_HEALTHY;
	if (run->left <= 0) {
		char last[sizeof(run->res.error)];
		snprintf(last, sizeof(last), "%s", run->res.error);
		snprintf(run->res.error, sizeof(run->res.error),
			 "the model server was not healthy within %d s (last: %.200s)",
			 run->plan.timeout_s, last[0] ? last : "no answer");
		return WARMUP_EV_TIMED_OUT;
	}
	run->ctx->requeue_after_ns = HEALTH_RETRY_NS;
	run->out = RECONCILE_REQUEUE_AFTER;
	return WARMUP_EV_NOT_YET;
}

/* Start the warm-up's job; NOT_YET (the job enqueues the pod when done). */
static enum warmup_event start_job(struct run *run, struct wctl *w, struct job **slot)
{
	const struct pod_copy *p = run->pod;
	struct job *j = calloc(1, sizeof(*j));
	pthread_attr_t attr;
	int r = -ENOMEM;

	if (!j || warmup_plan_copy(&run->plan, &j->plan) < 0)
		goto fail;
	j->w = w;
	snprintf(j->key, sizeof(j->key), "%s/%s", p->ns, p->name);
	snprintf(j->uid, sizeof(j->uid), "%s", p->uid);
	snprintf(j->service, sizeof(j->service), "%s/%s", p->ns, p->service);
	snprintf(j->ip, sizeof(j->ip), "%s", p->ip);
	j->deadline_ns = ktime_mono_ns() + (uint64_t)run->left * KTIME_NSEC_PER_SEC;
	j->state = JOB_RUNNING;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, WARM_JOB_STACK);
	r = -pthread_create(&j->thread, &attr, job_main, j);
	pthread_attr_destroy(&attr);
	if (r < 0)
		goto fail;
	*slot = j;
	run->ctx->requeue_after_ns = WARM_JOB_CHECK_NS;
	run->out = RECONCILE_REQUEUE_AFTER;
	return WARMUP_EV_NOT_YET;
fail:
	if (j)
		warmup_plan_free(&j->plan);
	free(j);
	snprintf(run->ctx->error, sizeof(run->ctx->error), "start the warm-up of %s/%.200s: %s",
		 p->ns, p->name, strerror(-r));
	run->out = RECONCILE_ERROR;
	return WARMUP_EV_NOT_YET;
}

/*
 * WARMING, off the worker: the pod's job's outcome when it is done; else
 * start one when the service's budget allows, or look again shortly.
 */
static enum warmup_event on_warming(struct run *run)
{
	struct wctl *w = run->ctx->data;
	const struct pod_copy *p = run->pod;
	struct job *done = NULL, **free_slot;
	enum warmup_event ev = WARMUP_EV_NOT_YET;
	char key[320], service[320];

	snprintf(key, sizeof(key), "%s/%s", p->ns, p->name);
	snprintf(service, sizeof(service), "%s/%s", p->ns, p->service);
	pthread_mutex_lock(&w->lock);
	struct job **slot = job_slot(w, key);
	if (slot && (*slot)->state == JOB_RUNNING) {
		run->ctx->requeue_after_ns = WARM_JOB_CHECK_NS;
		run->out = RECONCILE_REQUEUE_AFTER;
	} else if (slot) {
		done = *slot;
		*slot = NULL;
	} else if (within_budget(w, service, &free_slot)) {
		ev = start_job(run, w, free_slot);
	} else {
		run->ctx->requeue_after_ns = WARM_BUDGET_RETRY_NS;
		run->out = RECONCILE_REQUEUE_AFTER;
	}
	pthread_mutex_unlock(&w->lock);
	if (!done)
		return ev;
	pthread_join(done->thread, NULL);
	if (strcmp(done->uid, p->uid) != 0) {
		/* A job of an earlier pod of that name: start afresh. */
		job_free(done);
		return on_warming(run);
	}
	run->res = done->res;
	ev = done->r == 0 ? WARMUP_EV_ANSWERED : WARMUP_EV_FAILED;
	job_free(done);
	return ev;
}

static void on_warm(struct run *run)
{
	const struct pod_copy *p = run->pod;
	char msg[512];
	snprintf(msg, sizeof(msg), "%d warm-up request(s) answered in %.1f s (slowest %.0f ms)",
		 run->plan.requests, run->res.seconds, run->res.max_latency_s * KTIME_MSEC_PER_SEC);
	char restarts[16];
	snprintf(restarts, sizeof(restarts), "%d", p->restarts);
	/* The restarts it is warm with, first: a restart after this is cold. */
	if (podstate_annotate(run->ctx->client, p->ns, p->name, KINFER_WARM_RESTARTS, restarts,
			      NULL) < 0 ||
	    set_condition(run->ctx, p, true,
			  run->plan.requests ? "WarmupSucceeded" : "NoWarmupRequests", msg) < 0) {
		run->out = RECONCILE_ERROR;
		return;
	}
	char key[320];
	snprintf(key, sizeof(key), "%s/%s", p->ns, p->name);
	settling_mark(run->ctx->data, key, p->uid);
	log_info("pod warm", "pod=%s/%s seconds=%.1f", p->ns, p->name, run->res.seconds);
}

static void on_failed(struct run *run)
{
	const struct pod_copy *p = run->pod;
	struct reconcile_ctx *ctx = run->ctx;
	int attempts = p->attempts + 1;
	char msg[512];

	snprintf(msg, sizeof(msg), "attempt %d of %d failed: %s", attempts, run->plan.max_attempts,
		 run->res.error);
	log_warn("warm-up failed", "pod=%s/%s attempt=%d error=%s", p->ns, p->name, attempts,
		 run->res.error);
	pod_event(run, "Warning", "WarmupFailed", msg);
	if (set_condition(ctx, p, false, "WarmupFailed", msg) < 0 ||
	    count_attempt(ctx, p, attempts) < 0) {
		run->out = RECONCILE_ERROR;
	} else if (attempts >= run->plan.max_attempts) {
		/* A model that will not warm: replace the pod. */
		struct kube_opts o = { .precondition_uid = p->uid };
		snprintf(msg, sizeof(msg), "deleting the pod after %d failed warm-up attempts",
			 attempts);
		pod_event(run, "Warning", "WarmupGaveUp", msg);
		kube_delete(ctx->client, &kube_res_pods, p->ns, p->name, &o, NULL, NULL);
	} else {
		ctx->requeue_after_ns = warmup_retry_after_s(attempts) * KTIME_NSEC_PER_SEC;
		run->out = RECONCILE_REQUEUE_AFTER;
	}
}

/* Walk the states from st until one waits (not yet healthy, requests
 * in flight) or ends. */
static void run_states(struct run *run, enum warmup_state st)
{
	enum warmup_state next;
	for (;;) {
		switch (st) {
		case WARMUP_WAITING:
			next = warmup_step(st, on_waiting(run));
			break;
		case WARMUP_WARMING:
			next = warmup_step(st, on_warming(run));
			break;
		case WARMUP_WARM:
			on_warm(run);
			return;
		case WARMUP_FAILED:
			on_failed(run);
			return;
		default:
			return;
		}
		if (next == st)
			return;
		st = next;
	}
}

/* ---- reconcile ------------------------------------------------------------ */

/*
 * A warm pod whose model server's process ended (it crashed or was
 * killed, a liveness probe failed) comes back with a cold model: it leaves
 * the Service as soon as its container is seen not running, before the
 * restarted one passes its readiness probe, and is warmed again. A restart
 * missed between two events shows as more container restarts than the pod
 * had when it turned warm.
 *
 * Containers that are only not ready, still running the same process, are
 * still warm: a kubelet that restarts (an upgrade of the node's agent)
 * forgets its startup probes' results and reports every container not
 * ready until they pass again, and a readiness probe can fail for a while
 * under load. The kubelet keeps such a pod out of the Service meanwhile
 * and puts it back when its probes pass; warming it again would keep it
 * out for the whole warm-up (on a kubelet restart, every replica on that
 * node at once) for a model that never left memory.
 *
 * A pod warmed before kinfer recorded its restarts (warm_restarts -1):
 * containers not ready, or ready since after the warm-up, as before.
 */
/* More container restarts than when it turned warm (recorded). */
static bool restarted_since_warm(const struct pod_copy *p)
{
	return p->warm_restarts >= 0 && p->restarts > p->warm_restarts;
}

static bool went_cold(const struct pod_copy *p)
{
	if (p->deleting || !p->warm)
		return false;
	if (p->warm_restarts < 0)
		return !p->ready_containers || (p->since > 0 && p->containers_since > p->since);
	return restarted_since_warm(p) || (!p->ready_containers && p->stopped);
}

static enum reconcile_result cold_again(struct reconcile_ctx *ctx, const struct pod_copy *p)
{
	struct run run = { .ctx = ctx, .pod = p, .out = RECONCILE_OK };
	char msg[160];
	bool restarted = p->ready_containers || restarted_since_warm(p);
	snprintf(msg, sizeof(msg), "the model server's container %s: warming up again",
		 restarted  ? "restarted" :
		 p->stopped ? "stopped" :
			      "is not ready");
	log_info("pod cold again", "pod=%s/%s reason=%s", p->ns, p->name, msg);
	pod_event(&run, "Normal", "ContainerRestarted", msg);
	return set_condition(ctx, p, false, "ContainerRestarted", msg) < 0 ? RECONCILE_ERROR :
									     RECONCILE_OK;
}

static bool needs_warmup(const struct pod_copy *p)
{
	return !p->deleting && !p->warm && strcmp(p->reason, "Draining") != 0 &&
	       p->ready_containers && p->ip[0];
}

static enum reconcile_result reconcile(struct reconcile_ctx *ctx, const char *key)
{
	struct pod_copy pod;
	struct snapshot s;
	struct run run = { .ctx = ctx, .pod = &pod, .out = RECONCILE_OK };
	char err[256], ikey[512];
	int r;

	if (copy_pod(ctx->manager, key, &pod) < 0) {
		job_drop(ctx->data, key); /* gone: a finished warm-up of it is moot */
		return RECONCILE_OK;
	}
	if (pod.warm || !needs_warmup(&pod))
		settling_check(ctx->data, key, pod.uid, true); /* the cache caught up */
	if (went_cold(&pod))
		return cold_again(ctx, &pod);
	if (!needs_warmup(&pod)) {
		job_drop(ctx->data, key);
		return RECONCILE_OK;
	}
	if (settling_check(ctx->data, key, pod.uid, false)) {
		/* Written warm a moment ago; the cache will show it. */
		ctx->requeue_after_ns = WARM_SETTLE_RETRY_NS;
		return RECONCILE_REQUEUE_AFTER;
	}
	snprintf(ikey, sizeof(ikey), "%s/%s", pod.ns, pod.service);
	r = snapshot_take(ctx->manager, ikey, &s);
	if (r == -ENOENT)
		return RECONCILE_OK; /* its service is gone: so will the pod be */
	if (r < 0) {
		snprintf(ctx->error, sizeof(ctx->error), "%s: %s", ikey, strerror(-r));
		return r == -EBADMSG ? RECONCILE_TERMINAL : RECONCILE_ERROR;
	}
	r = warmup_plan_from_spec(s.spec, &run.plan, err, sizeof(err));
	if (r < 0) {
		set_condition(ctx, &pod, false, "InvalidWarmup", err);
		goto free_snapshot;
	}
	/* After a failure, wait out the backoff before the next attempt. The
	 * condition alone decides: our two writes (condition, then the
	 * attempt count) reach the cache one at a time. */
	int64_t now = (int64_t)time(NULL);
	bool after_failure = strcmp(pod.reason, "WarmupFailed") == 0;
	if (after_failure) {
		int64_t due = pod.since +
			      (int64_t)warmup_retry_after_s(pod.attempts > 0 ? pod.attempts : 1);
		if (now < due) {
			ctx->requeue_after_ns = (uint64_t)(due - now) * KTIME_NSEC_PER_SEC;
			run.out = RECONCILE_REQUEUE_AFTER;
			goto free_plan;
		}
	}
	int64_t from = after_failure && pod.since > pod.containers_since ? pod.since :
									   pod.containers_since;
	run.left = from > 0 ? from + run.plan.timeout_s - now : run.plan.timeout_s;
	/* Requests in flight (or their outcome waiting): straight to WARMING. */
	run_states(&run, has_job(ctx->data, key) ? WARMUP_WARMING : WARMUP_WAITING);
free_plan:
	warmup_plan_free(&run.plan);
free_snapshot:
	snapshot_free(&s);
	return run.out;
}

static void pods_of_service(void *data, const struct cache_obj *o, controller_emit_fn emit, void *ud)
{
	(void)data;
	(void)o;
	(void)emit;
	(void)ud;
	/* The pods' own events drive warm-up; a spec change rolls new pods. */
}

static const struct controller_watch watches[] = {
	{ .kind = &kind_pods, .map = NULL },
	{ .kind = &kind_inferenceservices, .map = pods_of_service },
};

const struct controller_def warmup_controller = {
	.name = "warmup",
	.watches = watches,
	.n_watches = sizeof(watches) / sizeof(watches[0]),
	.reconcile = reconcile,
	.workers = 8,
	.data_new = wctl_new,
	.data_free = wctl_free,
};
