/*
 * Schedule one pod (the key is the pod's "ns/name"):
 *
 *   1. a pod that is gone, bound, terminal, not ours or still held by a
 *      scheduling gate (its update wakes it when the gate goes): drop its
 *      assumption (the watch confirmed the binding, or it no longer
 *      matters); a pod of ours that went away frees room, so the pods
 *      waiting for room are retried at once;
 *   2. priority: while a pod of a higher priority is waiting for its first
 *      decision since the cluster last changed, look again in 20 ms, so
 *      when GPUs are short the high-priority services get them first;
 *   3. decide from the caches and assume the pod on the node, both under
 *      placement_lock (the workers decide one at a time; they bind in
 *      parallel, outside any lock), then bind;
 *   4. no fit: Event FailedScheduling, PodScheduled=False/Unschedulable,
 *      retry with backoff or when the cluster changes.
 *
 * The table of pods waiting (for priority and to wake them) is fed by the
 * watch handlers, which see every pod add at once, before any worker. It
 * and the placement state are this row's own data (data_new, from the
 * shared context's placement settings), handed to reconcile and to the
 * map functions.
 */
#include "placement_controller.h"

#include "backoff.h"
#include "context.h"
#include "kinds.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "ktime.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_WAITING 16384
#define BLOCK_FOR_NS (10 * KTIME_NSEC_PER_SEC) /* a higher pod blocks at most this long */
#define GATE_RETRY_NS (20 * KTIME_NSEC_PER_MSEC)
#define MAX_BACKOFF_S 60
#define WAKE_RETRY_NS (100 * KTIME_NSEC_PER_MSEC) /* a change came during the decision */

enum wait_state {
	WAIT_NEW,           /* not decided since it came or the cluster changed */
	WAIT_UNSCHEDULABLE, /* fitted nowhere; retried on a change or backoff */
};

struct waiting {
	char *key;
	uint8_t priority;
	uint8_t state;
	int attempts;
	uint64_t since_ns;
};

static const char *const result_labels[] = { "result", NULL };
static const struct metric_family fam_decisions = {
	"kinfer_placement_decisions_total",
	"Placement decisions by result: bound, unschedulable, bind_failed.",
	METRIC_COUNTER,
	result_labels,
	NULL,
	0
};
/* Decisions take microseconds to milliseconds. */
static const double decision_buckets[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
					   0.01,   0.025,   0.05,   0.1,   0.25 };
static const struct metric_family fam_duration = {
	"kinfer_placement_decision_duration_seconds",
	"Time of one placement decision (the index, filter and score the nodes it yields, assume; waiting for the lock not included).",
	METRIC_HISTOGRAM,
	NULL,
	decision_buckets,
	sizeof(decision_buckets) / sizeof(decision_buckets[0])
};
static const struct metric_family fam_waiting = { "kinfer_placement_waiting_pods",
						  "Pods of kinfer's waiting for a node.",
						  METRIC_GAUGE,
						  NULL,
						  NULL,
						  0 };
static const struct metric_family fam_assumed = { "kinfer_placement_assumed_pods",
						  "Pods assumed on a node, their binding not yet seen.",
						  METRIC_GAUGE,
						  NULL,
						  NULL,
						  0 };

static const struct metric_family fam_mismatches = {
	"kinfer_placement_index_mismatches_total",
	"Decisions where the index and the scan chose differently on the same state (only with --placement-index-check; the scan's choice is bound).",
	METRIC_COUNTER,
	NULL,
	NULL,
	0
};

enum { M_BOUND, M_UNSCHEDULABLE, M_BIND_FAILED, M_DURATION, M_WAITING, M_ASSUMED, M_MISMATCH, M_N };

struct pctl {
	struct metric_series *m[M_N];
	bool enabled;
	bool check; /* --placement-index-check */
	char scheduler[64];
	struct placement *pl;
	struct controller *self; /* to wake waiting pods from a worker */
	pthread_mutex_t lock;    /* the waiting table */
	struct waiting *waiting;
	size_t n_waiting;
	uint64_t wakes; /* waiting_wake calls (S->lock) */
};

int placement_controller_check(const struct placement_weights *w, const char *scheduler_name)
{
	if (w->cached < 0 || w->cached > 1000 || w->utilization < 0 || w->utilization > 1000 ||
	    w->packing < 0 || w->packing > 1000 || w->fragmentation < 0 || w->fragmentation > 1000)
		return -EINVAL;
	if (!scheduler_name || !*scheduler_name ||
	    strlen(scheduler_name) >= sizeof(((struct pctl *)0)->scheduler))
		return -EINVAL;
	return 0;
}

static void pctl_free(void *data)
{
	struct pctl *S = data;
	if (!S)
		return;
	placement_free(S->pl);
	for (size_t i = 0; S->waiting && i < S->n_waiting; i++)
		free(S->waiting[i].key);
	free(S->waiting);
	pthread_mutex_destroy(&S->lock);
	free(S);
}

/* Disabled (or no shared context): the row does nothing. */
static int pctl_new(const struct controller_env *env, void **ret)
{
	const struct kinfer_context *k = env->shared;
	struct pctl *S = calloc(1, sizeof(*S));
	int r;

	if (!S)
		return -ENOMEM;
	pthread_mutex_init(&S->lock, NULL);
	S->self = env->self;
	if (!k || !k->placement.enabled) {
		*ret = S;
		return 0;
	}
	r = placement_controller_check(&k->placement.weights, k->placement.scheduler_name);
	if (r == 0)
		r = placement_new(&k->placement.weights, &S->pl);
	if (r == 0)
		placement_use_index(S->pl, k->placement.index);
	if (r == 0 && !(S->waiting = calloc(MAX_WAITING, sizeof(*S->waiting))))
		r = -ENOMEM;
	if (r < 0) {
		pctl_free(S);
		return r;
	}
	snprintf(S->scheduler, sizeof(S->scheduler), "%s", k->placement.scheduler_name);
	S->m[M_BOUND] = metrics_series(env->metrics, &fam_decisions, (const char *[]){ "bound" });
	S->m[M_UNSCHEDULABLE] = metrics_series(env->metrics, &fam_decisions,
					       (const char *[]){ "unschedulable" });
	S->m[M_BIND_FAILED] = metrics_series(env->metrics, &fam_decisions,
					     (const char *[]){ "bind_failed" });
	S->m[M_DURATION] = metrics_series(env->metrics, &fam_duration, NULL);
	S->m[M_WAITING] = metrics_series(env->metrics, &fam_waiting, NULL);
	S->m[M_ASSUMED] = metrics_series(env->metrics, &fam_assumed, NULL);
	S->m[M_MISMATCH] = metrics_series(env->metrics, &fam_mismatches, NULL);
	S->check = k->placement.index && k->placement.index_check;
	S->enabled = true;
	*ret = S;
	return 0;
}

static bool active(const struct pctl *S)
{
	return S && S->enabled;
}

static bool ours(const struct pctl *S, const struct kpod *p)
{
	return p->scheduler && strcmp(p->scheduler, S->scheduler) == 0;
}

/* ---- the waiting table (S->lock) ----------------------------------------- */

static struct waiting *waiting_find(struct pctl *S, const char *key)
{
	for (size_t i = 0; i < S->n_waiting; i++)
		if (strcmp(S->waiting[i].key, key) == 0)
			return &S->waiting[i];
	return NULL;
}

static void waiting_note(struct pctl *S, const char *key, uint8_t priority)
{
	pthread_mutex_lock(&S->lock);
	struct waiting *w = waiting_find(S, key);
	if (!w && S->n_waiting < MAX_WAITING) {
		char *k = strdup(key);
		if (k) {
			w = &S->waiting[S->n_waiting++];
			*w = (struct waiting){ .key = k,
					       .state = WAIT_NEW,
					       .since_ns = ktime_mono_ns() };
		}
	}
	if (w)
		w->priority = priority;
	metric_set(S->m[M_WAITING], (double)S->n_waiting);
	pthread_mutex_unlock(&S->lock);
}

static void waiting_remove(struct pctl *S, const char *key)
{
	pthread_mutex_lock(&S->lock);
	struct waiting *w = waiting_find(S, key);
	if (w) {
		free(w->key);
		*w = S->waiting[--S->n_waiting];
	}
	metric_set(S->m[M_WAITING], (double)S->n_waiting);
	pthread_mutex_unlock(&S->lock);
}

/* True while a pod of higher priority waits for its first decision. */
static bool waiting_blocked(struct pctl *S, uint8_t priority)
{
	uint64_t now = ktime_mono_ns();
	bool blocked = false;
	pthread_mutex_lock(&S->lock);
	for (size_t i = 0; i < S->n_waiting && !blocked; i++) {
		const struct waiting *w = &S->waiting[i];
		blocked = w->priority > priority && w->state == WAIT_NEW &&
			  now - w->since_ns < BLOCK_FOR_NS;
	}
	pthread_mutex_unlock(&S->lock);
	return blocked;
}

static uint64_t waiting_wakes(struct pctl *S)
{
	pthread_mutex_lock(&S->lock);
	uint64_t n = S->wakes;
	pthread_mutex_unlock(&S->lock);
	return n;
}

/* The pod fitted nowhere; returns how many times in a row. stale: the
 * cluster changed during the decision, which is taken again at once: the
 * pod stays NEW, so pods of lower priority still wait for it. */
static int waiting_unschedulable(struct pctl *S, const char *key, uint8_t priority, bool stale)
{
	int attempts = 1;
	waiting_note(S, key, priority);
	pthread_mutex_lock(&S->lock);
	struct waiting *w = waiting_find(S, key);
	if (w) {
		/* since_ns stays: it blocks the others BLOCK_FOR_NS at most,
		 * however many of its decisions come out stale. */
		w->state = stale ? WAIT_NEW : WAIT_UNSCHEDULABLE;
		attempts = ++w->attempts;
	}
	pthread_mutex_unlock(&S->lock);
	return attempts;
}

/* The cluster changed: every unschedulable pod gets a new first decision.
 * A pod whose decision is in flight is not woken here; that decision sees
 * the count move (waiting_wakes) and looks again soon. */
static void waiting_wake(struct pctl *S, controller_emit_fn emit, void *emit_ud)
{
	uint64_t now = ktime_mono_ns();
	pthread_mutex_lock(&S->lock);
	S->wakes++;
	for (size_t i = 0; i < S->n_waiting; i++) {
		struct waiting *w = &S->waiting[i];
		if (w->state != WAIT_UNSCHEDULABLE)
			continue;
		w->state = WAIT_NEW;
		w->since_ns = now;
		if (emit)
			emit(emit_ud, w->key);
		else
			controller_enqueue(S->self, w->key);
	}
	pthread_mutex_unlock(&S->lock);
}

/* ---- watches ------------------------------------------------------------- */

static void map_pod(void *data, const struct cache_obj *o, controller_emit_fn emit, void *ud)
{
	struct pctl *S = data;
	const struct kpod *p = (const struct kpod *)o;
	/* Any pod on a node, whoever placed it, changes what is free there
	 * (told on a standby too: the index must be right when it leads). */
	placement_node_changed(S ? S->pl : NULL, p->node);
	if (!active(S))
		return;
	if (!ours(S, p))
		return;
	if (!p->node && !o->deleted && !p->gated && p->phase == KPHASE_PENDING)
		waiting_note(S, o->key, p->priority);
	emit(ud, o->key);
}

static void map_node(void *data, const struct cache_obj *o, controller_emit_fn emit, void *ud)
{
	struct pctl *S = data;
	/* The placement index reads the node again (allocatable, labels,
	 * utilization) at its next decision. */
	placement_node_changed(S ? S->pl : NULL, cache_obj_name(o));
	if (active(S))
		waiting_wake(S, emit, ud);
}

/* ---- reconcile ----------------------------------------------------------- */

struct pod_copy {
	char ns[64], name[256], uid[64];
	char condition_message[1024]; /* the PodScheduled=False message it has */
	uint8_t priority;
};

static void copy_pod(const struct kpod *p, struct pod_copy *c)
{
	snprintf(c->ns, sizeof(c->ns), "%s", p->meta.ns ? p->meta.ns : "");
	snprintf(c->name, sizeof(c->name), "%s", cache_obj_name(&p->meta));
	cache_obj_uid_copy(&p->meta, c->uid, sizeof(c->uid));
	const char *msg = kpod_unschedulable(p);
	snprintf(c->condition_message, sizeof(c->condition_message), "%s", msg ? msg : "");
	c->priority = p->priority;
}

/* PodScheduled=False/Unschedulable, as kube-scheduler writes it. */
static void set_unschedulable(struct reconcile_ctx *ctx, const struct pod_copy *c, const char *message)
{
	json_object *patch = json_object_new_object(), *st = json_object_new_object(),
		    *conds = json_object_new_array(), *cond = json_object_new_object();
	struct kube_status ks;
	char now[32];
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(cond, "type", json_object_new_string("PodScheduled"));
	json_object_object_add(cond, "status", json_object_new_string("False"));
	json_object_object_add(cond, "reason", json_object_new_string("Unschedulable"));
	json_object_object_add(cond, "message", json_object_new_string(message));
	json_object_object_add(cond, "lastProbeTime", NULL);
	json_object_object_add(cond, "lastTransitionTime", json_object_new_string(now));
	json_object_array_add(conds, cond);
	json_object_object_add(st, "conditions", conds);
	json_object_object_add(patch, "status", st);
	if (kube_patch(ctx->client, &kube_res_pods, c->ns, c->name, "status", KUBE_PATCH_STRATEGIC,
		       json_object_to_json_string_ext(patch, JSON_C_TO_STRING_PLAIN), NULL, NULL,
		       &ks) < 0)
		log_warn("cannot set PodScheduled=False", "pod=%s/%s error=%s", c->ns, c->name,
			 ks.message);
	json_object_put(patch);
}

/* wakes: waiting_wakes before the decision read the caches. */
static enum reconcile_result no_fit(struct reconcile_ctx *ctx, const char *key,
				    const struct pod_copy *c, const char *message, uint64_t wakes)
{
	struct pctl *S = ctx->data;
	/* The cluster changed while this decision ran (a node added or made
	 * Ready, a pod gone) and the wake found the pod still NEW, so it was
	 * not woken: the decision may predate the change. Look again now,
	 * still NEW, instead of after the backoff as Unschedulable
	 * (scenario.placement: the node added for the high-priority pod
	 * became Ready during the decision its addition started; the wake
	 * woke the lower pods, which no longer waited for it and took the
	 * node). */
	bool changed = waiting_wakes(S) != wakes;
	int attempts = waiting_unschedulable(S, key, c->priority, changed);
	metric_add(S->m[M_UNSCHEDULABLE], 1);
	uint64_t delay_s = attempts >= 7 ? MAX_BACKOFF_S : 1ULL << (attempts - 1);

	context_event(ctx, "v1", "Pod", c->ns, c->name, c->uid, "Warning", "FailedScheduling",
		      "Scheduling", message);
	if (strcmp(c->condition_message, message) != 0)
		set_unschedulable(ctx, c, message);
	log_info("pod does not fit", "pod=%s attempts=%d message=\"%s\"", key, attempts, message);
	ctx->requeue_after_ns = changed ? WAKE_RETRY_NS :
					  (delay_s > MAX_BACKOFF_S ? MAX_BACKOFF_S : delay_s) *
						  KTIME_NSEC_PER_SEC;
	return RECONCILE_REQUEUE_AFTER;
}

static enum reconcile_result bind(struct reconcile_ctx *ctx, const char *key,
				  const struct pod_copy *c, const struct placement_decision *d)
{
	struct pctl *S = ctx->data;
	const char *node = d->node;
	struct kube_status st;
	int r = kube_bind_pod(ctx->client, c->ns, c->name, c->uid, node, &st);

	if (r == 0) {
		waiting_remove(S, key);
		metric_add(S->m[M_BOUND], 1);
		/* Why this node, in the log (an Event would cost one more API
		 * write per pod). */
		log_info("pod bound", "pod=%s node=%s score=%lld cached=%s fit=%d nodes=%d by=%s",
			 key, node, (long long)d->score, d->cached ? "true" : "false", d->feasible,
			 d->nodes, d->indexed ? "index" : "scan");
		return RECONCILE_OK;
	}
	metric_add(S->m[M_BIND_FAILED], 1);
	placement_lock(S->pl);
	placement_forget(S->pl, key);
	placement_unlock(S->pl);
	if (st.code == 404 || st.code == 409) {
		/* Gone, or bound already (by an earlier attempt whose answer was
		 * lost): the watch tells the rest. */
		waiting_remove(S, key);
		return RECONCILE_OK;
	}
	snprintf(ctx->error, sizeof(ctx->error), "bind %.300s to %.253s: %.400s", key, node,
		 st.message);
	ctx->ns_terminating = st.ns_terminating;
	return RECONCILE_ERROR;
}

/* Step 1: true when the pod needs no decision. A bound pod's assumption
 * is forgotten only once the by-node index shows it; until then the
 * handler that indexes it enqueues the pod again. */
static bool settled(struct pctl *S, struct cache *pc, const char *key, const struct kpod *p)
{
	bool gone = !p || p->meta.deleted || p->phase == KPHASE_SUCCEEDED ||
		    p->phase == KPHASE_FAILED;
	if (!gone && !p->node && ours(S, p) && !p->gated)
		return false;
	if (gone || !p->node || placement_pod_indexed(pc, p)) {
		placement_lock(S->pl);
		placement_forget(S->pl, key);
		placement_unlock(S->pl);
	}
	waiting_remove(S, key);
	if (gone)
		waiting_wake(S, NULL, NULL);
	return true;
}

#define ASSUMED_RECHECK_NS KTIME_NSEC_PER_SEC

/*
 * --placement-index-check: the index's decision and the scan's on the
 * same state (no write to either cache in between, read by their write
 * counters; else no verdict), a warning with both when they differ, and
 * the scan's choice is the one bound. The test suite runs with it.
 */
static int decide_checked(struct pctl *S, struct cache *nc, struct cache *pc, const char *key,
			  const struct kpod *p, uint64_t now_ns, struct placement_decision *d)
{
	struct placement_decision scan;
	uint64_t ns = cache_write_seq(nc), ps = cache_write_seq(pc);
	int r = placement_decide(S->pl, nc, pc, p, now_ns, d);

	if (r < 0 || !d->indexed)
		return r; /* the scan decided already */
	int rs = placement_decide_scan(S->pl, nc, pc, p, now_ns, &scan);
	if ((ns & 1) || (ps & 1) || ns != cache_write_seq(nc) || ps != cache_write_seq(pc))
		return r; /* the state moved: no verdict */
	if (rs == r && strcmp(scan.node, d->node) == 0 && scan.score == d->score)
		return r;
	metric_add(S->m[M_MISMATCH], 1);
	log_warn("placement index differs from scan",
		 "pod=%s index_node=%s index_score=%lld index_cached=%s index_fit=%d scan_node=%s "
		 "scan_score=%lld scan_cached=%s scan_fit=%d scan_result=%d",
		 key, d->node, (long long)d->score, d->cached ? "true" : "false", d->feasible,
		 rs == 0 ? scan.node : "-", (long long)scan.score, scan.cached ? "true" : "false",
		 scan.feasible, rs);
	*d = scan;
	return rs;
}

static enum reconcile_result reconcile(struct reconcile_ctx *ctx, const char *key)
{
	struct cache *pc = manager_cache(ctx->manager, &kind_pods);
	struct cache *nc = manager_cache(ctx->manager, &kind_nodes);
	struct pctl *S = ctx->data;
	struct placement_decision d;
	struct pod_copy c;
	int r;

	if (!active(S))
		return RECONCILE_OK;
	uint64_t wakes = waiting_wakes(S); /* before the caches are read */
	cache_read_lock();
	const struct kpod *p = (const struct kpod *)cache_get(pc, key);
	if (settled(S, pc, key, p)) {
		cache_read_unlock();
		return RECONCILE_OK;
	}
	if (waiting_blocked(S, p->priority)) {
		cache_read_unlock();
		ctx->requeue_after_ns = GATE_RETRY_NS;
		return RECONCILE_REQUEUE_AFTER;
	}
	copy_pod(p, &c);
	placement_lock(S->pl);
	uint64_t t0 = ktime_mono_ns();
	if (placement_is_assumed(S->pl, key, t0)) {
		/* Bound (or binding) already; an event of the pod from before
		 * its binding brought it here. Look again once the watch shows
		 * it: settled() then forgets the assumption. */
		placement_unlock(S->pl);
		cache_read_unlock();
		ctx->requeue_after_ns = ASSUMED_RECHECK_NS;
		return RECONCILE_REQUEUE_AFTER;
	}
	r = S->check ? decide_checked(S, nc, pc, key, p, t0, &d) :
		       placement_decide(S->pl, nc, pc, p, t0, &d);
	if (r == 0)
		r = placement_assume(S->pl, p, d.node, ktime_mono_ns());
	metric_set(S->m[M_ASSUMED], (double)placement_assumed(S->pl));
	placement_unlock(S->pl);
	metric_observe(S->m[M_DURATION], ktime_ns_to_s(ktime_mono_ns() - t0));
	cache_read_unlock();
	if (r == -ENOSPC)
		return no_fit(ctx, key, &c, d.message, wakes);
	if (r < 0) {
		snprintf(ctx->error, sizeof(ctx->error), "placing %s: %s", key, strerror(-r));
		return RECONCILE_ERROR;
	}
	return bind(ctx, key, &c, &d);
}

static const struct controller_watch watches[] = {
	{ .kind = &kind_pods, .map = map_pod },
	{ .kind = &kind_nodes, .map = map_node },
};

const struct controller_def placement_controller = {
	.name = "placement",
	.watches = watches,
	.n_watches = sizeof(watches) / sizeof(watches[0]),
	.reconcile = reconcile,
	.workers = 16,
	.data_new = pctl_new,
	.data_free = pctl_free,
};
