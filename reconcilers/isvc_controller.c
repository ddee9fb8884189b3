/*
 * Reconcile one InferenceService:
 *
 *   1. take its snapshot (snapshot.h: copied out of the caches, never
 *      holding a read-side section across an API call; spec and old
 *      status parsed once and passed down);
 *   2. build the Deployment and Service bodies (workload.c);
 *   3. apply each only when its hash differs from the one on the cached
 *      object, or when someone else changed it since our last apply (the
 *      Deployment's generation moved; the Service's resourceVersion) — a
 *      steady state makes no API writes;
 *   4. count the pods (ready, warm, unschedulable, failing to start) and
 *      build the status (status.c); patch /status only when it differs;
 *   5. record Events for changes a person wants to see.
 */
#include "isvc_controller.h"

#include "autoscale_controller.h"
#include "budget.h"
#include "context.h"
#include "drain.h"
#include "placement.h"
#include "quota.h"
#include "isvc.h"
#include "kinds.h"
#include "log.h"
#include "ktime.h"
#include "route_controller.h"
#include "snapshot.h"
#include "status.h"
#include "statuspatch.h"
#include "fnv.h"
#include "text.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- this row's data: what we last applied, to notice changes by others */

#define APPLIED_SLOTS 65536

struct applied {
	uint64_t key;
	uint64_t uid; /* hash of the object's uid: a new incarnation starts afresh */
	int64_t dep_generation;
	char svc_rv[32];
	uint64_t status_due_ns; /* a changed status waits until then; 0 = none */
	/* Sent, not yet seen in the caches (see SENT_NS): the hash of the
	 * applied-hash of the Deployment and the Service we applied, and the
	 * generation our last status write observed, each with when. */
	uint64_t dep_sent, svc_sent;
	uint64_t dep_sent_ns, svc_sent_ns;
	int64_t status_gen;
	uint64_t status_ns;
	/* The pod template we build (its hash's hash) and since when: how
	 * long a rollout's template has stood. */
	uint64_t tmpl, tmpl_ns;
};

/*
 * A write of ours reaches the caches through the watch, a few ms later,
 * or seconds under load. A reconcile in between (another object's event
 * enqueued the key) would read the old state and write the same thing
 * again: apply the Deployment a second time (and record a second
 * "Created" Event, its note naming only what that pass applied), or
 * patch the status conditionally on a resourceVersion already gone (409,
 * then a retry). So what we sent is trusted until the cache shows it, or
 * for this long; the key is requeued for that moment, so an object
 * deleted before the cache ever saw it is made again then.
 */
#define SENT_NS (10 * KTIME_NSEC_PER_SEC)

/*
 * Status changes come in bursts (the Deployment's status, then its pods
 * scheduled, running, ready, warm, each a watch event a few hundred ms
 * apart): a change first seen waits this long, so what arrives meanwhile
 * goes into the same patch, and one object's patches are at least this
 * far apart. The reconcile that finds the change requeues itself for the
 * moment it is due (level-based: that reconcile writes the status as it
 * is then). A changed desiredReplicas is written at once.
 */
#define STATUS_WINDOW_NS (2 * KTIME_NSEC_PER_SEC)
/*
 * A service not Ready yet whose change turns no condition on or off (its
 * replicas made, scheduled, started: the counts and reasons of a rollout
 * on its way) waits longer: the condition it leads to (Ready, Degraded)
 * usually comes within it and goes out in the same patch, at the short
 * window from when that is seen. A serving service's counts (warmReplicas
 * while it scales) keep the short window.
 */
#define STATUS_PROGRESS_WINDOW_NS (10 * KTIME_NSEC_PER_SEC)
/*
 * Except the status of a new generation (a new object, a spec change):
 * its observedGeneration is what `kubectl wait` and people watch for, so
 * it is written as soon as its rollout is over (complete, or stopped by a
 * problem the status names), at the end of the short window at the
 * latest.
 */

struct isvc_ctl {
	struct manager *manager;       /* for the map functions' cache reads */
	pthread_mutex_t lock;          /* the applied table */
	struct applied *applied;       /* APPLIED_SLOTS */
	struct controller *autoscaler; /* its decisions; NULL = none */
};

static int ctl_new(const struct controller_env *env, void **ret)
{
	struct isvc_ctl *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->manager = env->manager;
	c->applied = calloc(APPLIED_SLOTS, sizeof(*c->applied));
	if (!c->applied) {
		free(c);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	*ret = c;
	return 0;
}

/* The autoscaler row (when the table has one) tells us of new decisions. */
static int ctl_link(void *data, const struct controller_env *env)
{
	struct isvc_ctl *c = data;
	c->autoscaler = manager_controller(env->manager, &autoscale_controller);
	return c->autoscaler ? autoscale_controller_notify(c->autoscaler, env->self) : 0;
}

static void ctl_free(void *data)
{
	struct isvc_ctl *c = data;
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->applied);
	free(c);
}

static uint64_t key_hash(const char *s)
{
	return fnv64_str(s) | 1;
}

/*
 * The table is a set of APPLIED_WAYS slots per hash: two InferenceServices
 * whose keys met in one slot used to take it from each other at every
 * reconcile, and one whose status waited for its window saw the window
 * start again each time, forever (5 of 10,000 in bench_reconcile.sh never
 * got a status). A slot whose memory is needed now (a status waiting, a
 * write in flight) is never taken; when all of a set are, the key goes
 * without memory: at worst a no-op write, and its status written at once.
 */
#define APPLIED_WAYS 4

static bool busy(const struct applied *a, uint64_t now)
{
	return (a->status_due_ns && now < a->status_due_ns + SENT_NS) ||
	       (a->dep_sent && now - a->dep_sent_ns < SENT_NS) ||
	       (a->svc_sent && now - a->svc_sent_ns < SENT_NS) ||
	       (a->status_gen && now - a->status_ns < SENT_NS);
}

/* The slot holding key h (any uid), or NULL; the lock held. */
static struct applied *find_locked(struct isvc_ctl *c, uint64_t h)
{
	struct applied *set = &c->applied[h % (APPLIED_SLOTS / APPLIED_WAYS) * APPLIED_WAYS];
	for (int i = 0; i < APPLIED_WAYS; i++)
		if (set[i].key == h)
			return &set[i];
	return NULL;
}

/* The slot of key h for incarnation uid (emptied when it held another
 * one), else an empty or idle slot of its set, emptied; NULL when every
 * slot of the set is busy. The lock held. */
static struct applied *slot_locked(struct isvc_ctl *c, uint64_t h, uint64_t uid, uint64_t now)
{
	struct applied *set = &c->applied[h % (APPLIED_SLOTS / APPLIED_WAYS) * APPLIED_WAYS];
	struct applied *a = find_locked(c, h);

	for (int i = 0; !a && i < APPLIED_WAYS; i++)
		if (!set[i].key)
			a = &set[i];
	for (int i = 0; !a && i < APPLIED_WAYS; i++)
		if (!busy(&set[i], now))
			a = &set[i];
	if (a && (a->key != h || a->uid != uid)) {
		memset(a, 0, sizeof(*a));
		a->key = h;
		a->uid = uid;
	}
	return a;
}

/* A key without memory only costs an extra (no-op) apply. */
static struct applied recall(struct isvc_ctl *c, const char *key, const char *uid)
{
	uint64_t h = key_hash(key), u = key_hash(uid);
	struct applied a = { 0 };
	pthread_mutex_lock(&c->lock);
	struct applied *f = find_locked(c, h);
	if (f && f->uid == u)
		a = *f;
	pthread_mutex_unlock(&c->lock);
	return a;
}

/* What the caches show of our Deployment (dep_gen >= 0) or Service
 * (svc_rv), after an apply (sent: the hash of its applied-hash, now) or
 * once the cache caught up with it (sent 0). */
static void remember(struct isvc_ctl *c, const char *key, const char *uid, int64_t dep_gen,
		     const char *svc_rv, uint64_t sent, uint64_t now)
{
	pthread_mutex_lock(&c->lock);
	struct applied *a = slot_locked(c, key_hash(key), key_hash(uid), now);
	if (!a)
		goto unlock;
	if (dep_gen >= 0) {
		a->dep_generation = dep_gen;
		a->dep_sent = sent;
		a->dep_sent_ns = now;
	}
	if (svc_rv) {
		snprintf(a->svc_rv, sizeof(a->svc_rv), "%s", svc_rv);
		a->svc_sent = sent;
		a->svc_sent_ns = now;
	}
unlock:
	pthread_mutex_unlock(&c->lock);
}

/* sent (applied at sent_ns) is not in the cache yet: how long to trust it. */
static bool in_flight(uint64_t sent, uint64_t sent_ns, uint64_t want, uint64_t now, uint64_t *ret_wait)
{
	if (!sent || sent != want || now - sent_ns >= SENT_NS)
		return false;
	*ret_wait = ktime_sooner(*ret_wait, sent_ns + SENT_NS - now);
	return true;
}

/*
 * Our last Deployment write is not in the cache yet (it shows an older
 * generation), for SENT_NS at most: the replicas it shows are not the
 * ones the ReplicaSet acts on. A drain deciding from them takes the
 * shrink it has just made for one still to make: it picks the survivor
 * as a victim (the victims are already going) and applies the old
 * replicas again, and the ReplicaSet makes the removed pods anew.
 */
static bool dep_behind(struct isvc_ctl *c, const char *key, const struct snapshot *s, uint64_t now,
		       uint64_t *ret_wait)
{
	if (!c || !s->have_dep)
		return false;
	struct applied a = recall(c, key, s->uid);
	if (!a.dep_sent || a.dep_generation <= s->dep.generation || now - a.dep_sent_ns >= SENT_NS)
		return false;
	*ret_wait = a.dep_sent_ns + SENT_NS - now;
	return true;
}

/* Our status write that observed generation gen, sent at now. */
static void status_sent(struct isvc_ctl *c, const char *key, const char *uid, int64_t gen,
			uint64_t now)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	struct applied *a = slot_locked(c, key_hash(key), key_hash(uid), now);
	if (a) {
		a->status_gen = gen;
		a->status_ns = now;
		a->status_due_ns = 0;
	}
	pthread_mutex_unlock(&c->lock);
}

/* Was the status of generation gen written by us less than SENT_NS ago
 * (and the cache still shows an older one)? */
static bool status_in_flight(struct isvc_ctl *c, const char *key, const char *uid, int64_t gen,
			     uint64_t now, uint64_t *ret_wait)
{
	if (!c)
		return false;
	struct applied a = recall(c, key, uid);
	if (a.key == 0 || a.status_gen != gen || now - a.status_ns >= SENT_NS)
		return false;
	*ret_wait = a.status_ns + SENT_NS - now;
	return true;
}

/* Since when the pod template we build (hash) has been this one; without
 * memory of it (a new leader, an evicted slot), now. */
static uint64_t template_since(struct isvc_ctl *c, const char *key, const char *uid,
			       const char *hash, uint64_t now)
{
	uint64_t h = key_hash(hash), since = now;

	if (!c)
		return now;
	pthread_mutex_lock(&c->lock);
	struct applied *a = slot_locked(c, key_hash(key), key_hash(uid), now);
	if (a) {
		if (a->tmpl != h) {
			a->tmpl = h;
			a->tmpl_ns = now;
		}
		since = a->tmpl_ns;
	}
	pthread_mutex_unlock(&c->lock);
	return since;
}

/* Whether a changed status may be written now; else *ret_wait says when. */
static bool status_due(struct isvc_ctl *c, const char *key, const char *uid, uint64_t now,
		       uint64_t window, uint64_t *ret_wait)
{
	uint64_t h = key_hash(key);
	bool go;

	if (!c)
		return true;
	pthread_mutex_lock(&c->lock);
	struct applied *a = slot_locked(c, h, key_hash(uid), now);
	if (!a) {
		/* Every slot of its set holds another InferenceService's
		 * waiting change or write in flight: write this one now. */
		pthread_mutex_unlock(&c->lock);
		return true;
	}
	/* A change that asks for a shorter wait than the one already waiting
	 * brings the write forward. */
	if (!a->status_due_ns || now + window < a->status_due_ns)
		a->status_due_ns = now + window;
	go = now >= a->status_due_ns;
	if (go)
		a->status_due_ns = 0;
	else
		*ret_wait = a->status_due_ns - now;
	pthread_mutex_unlock(&c->lock);
	return go;
}

/* The status is as it should be: nothing waits. */
static void status_settled(struct isvc_ctl *c, const char *key, const char *uid)
{
	uint64_t h = key_hash(key);

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	struct applied *a = find_locked(c, h);
	if (a && a->uid == key_hash(uid))
		a->status_due_ns = 0;
	pthread_mutex_unlock(&c->lock);
}

/* ---- the pods ------------------------------------------------------------ */

struct pod_count {
	const char *ns;
	int32_t pods, ready, warm, warm_failed, unschedulable, image_errors;
	char unsched_msg[512];
	char image_reason[64];
};

static bool start_failure(const char *reason)
{
	static const char *const bad[] = { "ImagePullBackOff",           "ErrImagePull",
					   "InvalidImageName",           "CrashLoopBackOff",
					   "CreateContainerConfigError", "CreateContainerError" };
	for (size_t i = 0; reason && i < sizeof(bad) / sizeof(bad[0]); i++)
		if (strcmp(reason, bad[i]) == 0)
			return true;
	return false;
}

static int count_pod(const struct cache_obj *o, void *ud)
{
	struct pod_count *c = ud;
	const struct kpod *p = (const struct kpod *)o;
	if (strcmp(o->ns, c->ns) != 0 || o->deleted || p->phase == KPHASE_SUCCEEDED ||
	    p->phase == KPHASE_FAILED)
		return 0;
	c->pods++;
	if (p->ready == KCOND_TRUE)
		c->ready++;
	if (p->warmed == KCOND_TRUE)
		c->warm++;
	else if (p->warmed == KCOND_FALSE && p->warm_reason &&
		 strcmp(p->warm_reason, "WarmupFailed") == 0)
		c->warm_failed++;
	if (p->scheduled == KCOND_FALSE && !p->node) {
		if (!c->unschedulable++)
			text_copy(c->unsched_msg, sizeof(c->unsched_msg), kpod_unschedulable(p));
	}
	if (start_failure(kpod_waiting_reason(p))) {
		if (!c->image_errors++)
			text_copy(c->image_reason, sizeof(c->image_reason), kpod_waiting_reason(p));
	}
	return 0;
}

/* ---- steps ------------------------------------------------------------ */

/*
 * The replicas wanted: spec.replicas, or when autoscaled the autoscaler's
 * last decision (dec), else (no decision yet: just created, or a new
 * leader) what the Deployment runs, within [min, max].
 */
static int32_t desired_replicas(const struct snapshot *s,
				const struct autoscale_controller_decision *dec)
{
	if (!s->scaling)
		return s->replicas;
	/* The decision already applies the bounds in force, which schedules
	 * raise and the paused-replicas annotation overrides (issue 17). */
	if (dec)
		return dec->desired < 0 ? 0 : dec->desired;
	int32_t cur = s->have_dep ? s->dep.spec_replicas : s->min_replicas;
	/* A new service that scales to zero starts with one replica, as
	 * Knative's initial scale: the model is seen to load and warm once,
	 * and idleness takes it to zero. */
	if (!s->have_dep && cur == 0 && cache_json_get(s->spec, "scaling.scaleToZero"))
		cur = 1;
	if (cur < s->min_replicas)
		cur = s->min_replicas;
	if (cur > s->max_replicas)
		cur = s->max_replicas;
	return cur;
}

static void event(struct reconcile_ctx *ctx, const struct snapshot *s, const char *type,
		  const char *reason, const char *action, const char *note)
{
	context_event(ctx, "kinfer.io/v1alpha1", "InferenceService", s->ns, s->name, s->uid, type,
		      reason, action, note);
}

static int apply(struct reconcile_ctx *ctx, const struct kube_resource *res,
		 const struct snapshot *s, json_object *body, json_object **ret)
{
	struct kube_opts o = { .field_manager = KINFER_FIELD_MANAGER, .force = true };
	struct kube_status st;
	int r = kube_apply(ctx->client, res, s->ns, s->name, NULL, body, &o, ret, &st);
	if (r < 0) {
		snprintf(ctx->error, sizeof(ctx->error), "apply %s %s/%.200s: %.500s", res->kind,
			 s->ns, s->name, st.message);
		ctx->ns_terminating |= st.ns_terminating;
	}
	return r;
}

/* The note of the one Event an apply pass writes (reason NULL: none yet). */
struct apply_note {
	const char *reason;
	char text[600];
};

/*
 * The Deployment the apply returned, in place of the cached one the
 * snapshot holds (or has not yet): the status written in this pass then
 * says what the watch will show next (the new generation, not yet
 * observed), and the next pass finds nothing new to write.
 */
static void dep_from_reply(struct snapshot *s, json_object *out)
{
	const char *reason = NULL;

	if (!s->have_dep) {
		memset(&s->dep, 0, sizeof(s->dep));
		s->dep_failure[0] = s->dep_reason[0] = '\0';
	}
	s->have_dep = true;
	/* A new one has no conditions; an old one's stay as cached. */
	if (!kdeployment_read_status(&s->dep, out, &reason))
		return;
	text_copy(s->dep_reason, sizeof(s->dep_reason), reason);
	s->dep.progress_reason = s->dep_reason[0] ? s->dep_reason : NULL;
}

static int sync_deployment(struct reconcile_ctx *ctx, const char *key, struct snapshot *s,
			   struct workload *w, struct apply_note *n, uint64_t *ret_wait)
{
	struct isvc_ctl *c = ctx->data;
	struct applied a = recall(c, key, s->uid);
	uint64_t now = ktime_mono_ns(), want = key_hash(w->deployment_hash);
	bool current = s->have_dep && strcmp(s->dep_hash, w->deployment_hash) == 0;
	bool known = a.dep_generation > 0; /* a generation is 1 or more */
	json_object *out = NULL;

	/* Without memory of our last write (after a start), one that another
	 * field manager edited (perhaps while no operator ran) is applied
	 * again; the others are trusted. */
	if (current && (known ? a.dep_generation == s->dep.generation : !s->dep.edited)) {
		if (!known || a.dep_sent)
			remember(c, key, s->uid, s->dep.generation, NULL, 0, now);
		return 0;
	}
	/* Ours, applied moments ago, not yet in the cache: also when the
	 * cache shows our body edited by someone else, which that write has
	 * just put back (it would be applied twice). Once the cache showed
	 * our write, a change by someone else is reverted at once. */
	if (in_flight(a.dep_sent, a.dep_sent_ns, want, now, ret_wait))
		return 0;
	int r = apply(ctx, &kube_res_deployments, s, w->deployment, &out);
	if (r < 0)
		return r;
	remember(c, key, s->uid, cache_json_int(out, "metadata.generation", 0), NULL, want, now);
	if (!s->have_dep)
		snprintf(n->text, sizeof(n->text), "Created Deployment %s with %d replica(s)",
			 s->name, w->replicas);
	else
		snprintf(n->text, sizeof(n->text), "Updated Deployment %s (%s)", s->name,
			 strcmp(s->dep_hash, w->deployment_hash) ?
				 "spec changed" :
				 "reverted a change made by someone else");
	n->reason = s->have_dep ? "DeploymentUpdated" : "DeploymentCreated";
	dep_from_reply(s, out);
	json_object_put(out);
	return 0;
}

static int sync_service(struct reconcile_ctx *ctx, const char *key, const struct snapshot *s,
			struct workload *w, struct apply_note *n, uint64_t *ret_wait)
{
	struct isvc_ctl *c = ctx->data;
	struct applied a = recall(c, key, s->uid);
	uint64_t now = ktime_mono_ns(), want = key_hash(w->service_hash);
	bool current = s->have_svc && strcmp(s->svc_hash, w->service_hash) == 0;
	bool known = a.svc_rv[0] != '\0';
	json_object *out = NULL;

	/* As for the Deployment. */
	if (current && (known ? strcmp(a.svc_rv, s->svc_rv) == 0 : !s->svc_edited)) {
		if (!known || a.svc_sent)
			remember(c, key, s->uid, -1, s->svc_rv, 0, now);
		return 0;
	}
	if (in_flight(a.svc_sent, a.svc_sent_ns, want, now, ret_wait))
		return 0;
	int r = apply(ctx, &kube_res_services, s, w->service, &out);
	if (r < 0)
		return r;
	remember(c, key, s->uid, -1, cache_json_str(out, "metadata.resourceVersion"), want, now);
	json_object_put(out);
	if (s->have_svc)
		return 0;
	/* One Event for both when the Deployment was applied too. */
	if (n->reason) {
		size_t len = strlen(n->text);
		snprintf(n->text + len, sizeof(n->text) - len, " and its Service");
	} else {
		n->reason = "ServiceCreated";
		snprintf(n->text, sizeof(n->text), "Created Service for the model server");
	}
	return 0;
}

/* Ready's reason while the service has no warm replica of its own. */
static bool cold_reason(const char *reason)
{
	return reason &&
	       (strcmp(reason, "ScaledToZero") == 0 || strcmp(reason, "ScalingFromZero") == 0);
}

/*
 * ScaledFromZero (issue 16): Ready leaves ScaledToZero or ScalingFromZero
 * for a warm replica; the cold start is from the activation the
 * autoscaler acted on to now, the status write that saw the pod warm.
 */
static void scaled_from_zero(struct reconcile_ctx *ctx, const struct snapshot *s, const char *oreason,
			     const char *reason, const struct autoscale_controller_decision *dec)
{
	char note[256], t[KTIME_MICRO_LEN];
	int64_t act = dec && dec->status.scale_to_zero ? dec->status.last_activation_ms : 0;
	int64_t now = ktime_wall_ms();

	if (!cold_reason(oreason) || cold_reason(reason) || !reason ||
	    (strcmp(reason, "AllReplicasReady") != 0 && strcmp(reason, "MinimumReplicasReady") != 0))
		return;
	if (act > 0 && act <= now) {
		ktime_format(act * 1000, 3, t, sizeof(t));
		snprintf(note, sizeof(note),
			 "Scaled from zero: the first replica is warm %.3f s after "
			 "the activation requested at %s (cold start)",
			 (double)(now - act) / 1000.0, t);
		log_info("isvc scaled from zero", "isvc=%s/%s cold_start_ms=%lld", s->ns, s->name,
			 (long long)(now - act));
	} else {
		snprintf(note, sizeof(note), "Scaled from zero: the first replica is warm");
	}
	event(ctx, s, "Normal", "ScaledFromZero", "Scale", note);
}

static void status_events(struct reconcile_ctx *ctx, const struct snapshot *s, json_object *st,
			  const struct autoscale_controller_decision *dec)
{
	json_object *old = s->status;
	const char *reason, *msg, *oreason = NULL;
	const char *now = status_condition(st, "Ready", &reason, &msg);
	const char *was = old ? status_condition(old, "Ready", &oreason, NULL) : NULL;
	if (now && (!was || strcmp(now, was) != 0) && strcmp(now, "True") == 0)
		event(ctx, s, "Normal", "Ready", "Reconcile", msg);
	if (now && was)
		scaled_from_zero(ctx, s, oreason, reason, dec);
	now = status_condition(st, "Degraded", &reason, &msg);
	was = old ? status_condition(old, "Degraded", &oreason, NULL) : NULL;
	if (now && strcmp(now, "True") == 0 &&
	    (!was || strcmp(was, "True") != 0 || (oreason && strcmp(oreason, reason) != 0)))
		event(ctx, s, "Warning", reason, "Reconcile", msg);
}

/*
 * The status says the rollout is still on its way: pods being made,
 * scheduled, started, warmed, with nothing wrong yet. A new generation's
 * status written then is followed by another when they are ready, so it
 * waits for that within the short window.
 */
static bool rolling_out(json_object *status)
{
	const char *progressing = status_condition(status, "Progressing", NULL, NULL);
	const char *degraded = status_condition(status, "Degraded", NULL, NULL);
	return progressing && strcmp(progressing, "True") == 0 &&
	       !(degraded && strcmp(degraded, "True") == 0);
}

/* The wait for a predecessor's objects (previous_message) is over: the
 * objects are being made, which the user waits to read. */
static bool cleanup_over(json_object *status, json_object *old)
{
	const char *now = NULL, *before = NULL;
	if (!old)
		return false;
	status_condition(status, "Progressing", &now, NULL);
	status_condition(old, "Progressing", &before, NULL);
	return before && strcmp(before, "WaitingForCleanup") == 0 &&
	       !(now && strcmp(now, "WaitingForCleanup") == 0);
}

static bool coming_up(json_object *status, json_object *old)
{
	const char *ready = status_condition(status, "Ready", NULL, NULL);
	return !(ready && strcmp(ready, "True") == 0) && !status_flipped(status, old) &&
	       !cleanup_over(status, old);
}

/*
 * A HorizontalPodAutoscaler scales the service's Deployment (snapshot.h):
 * left in place from before kinfer (a migration from the HPA or KEDA,
 * whose ScaledObject makes one), it wrote the replicas every 15 s and
 * kinfer wrote its own back, each turn a pod killed mid-request or a cold
 * one started for nothing. kinfer leaves the replicas to it (true) and
 * says why (status_autoscaler_message); "" when there is none.
 */
static bool other_autoscaler(const struct snapshot *s, int32_t wanted, char *buf, size_t len)
{
	buf[0] = '\0';
	if (s->hpa[0] && s->have_dep) {
		status_autoscaler_message(buf, len, s->hpa, s->hpa_min, s->hpa_max, s->name, wanted,
					  s->scaling);
		return true;
	}
	/* One aimed at the InferenceService while spec.scaling decides: its
	 * writes change nothing (scale.kinfer.io refuses them), but it was
	 * meant to do something, so say so. The replicas stay kinfer's. */
	if (s->hpa_isvc[0] && s->scaling)
		status_autoscaler_isvc_message(buf, len, s->hpa_isvc, s->hpa_isvc_min,
					       s->hpa_isvc_max);
	return false;
}

static int sync_status(struct reconcile_ctx *ctx, const char *key, const struct snapshot *s,
		       int32_t desired, const struct autoscale_controller_decision *dec,
		       const char *invalid, const char *invalid_reason, const char *replacing,
		       bool deferred, uint64_t *ret_wait)
{
	struct cache *pc = manager_cache(ctx->manager, &kind_pods);
	struct pod_count pods = { .ns = s->ns };
	char selector[320], other[1024];
	struct kube_status st;
	int r = 0;

	cache_read_lock();
	cache_index_foreach(pc, KPOD_BY_SERVICE, s->name, count_pod, &pods);
	cache_read_unlock();
	workload_selector(s->name, selector, sizeof(selector));
	if (other_autoscaler(s, desired, other, sizeof(other)))
		desired = s->dep.spec_replicas; /* what the Deployment is asked */
	struct status_input in = {
		.generation = s->generation,
		.desired = desired,
		.dep = s->have_dep ? &s->dep : NULL,
		.pods = pods.pods,
		.ready = pods.ready,
		.warm = pods.warm,
		.warm_failed = pods.warm_failed,
		.unschedulable = pods.unschedulable,
		.unschedulable_msg = pods.unsched_msg[0] ? pods.unsched_msg : NULL,
		.image_errors = pods.image_errors,
		.image_reason = pods.image_reason[0] ? pods.image_reason : NULL,
		.selector = selector,
		.invalid = invalid,
		.invalid_reason = invalid_reason,
		.scale_down_deferred = deferred,
		.other_autoscaler = other[0] ? other : NULL,
		.replacing = replacing,
		.old_status = s->status,
		.now = (int64_t)time(NULL),
		.scaling_enabled = s->scaling,
		.scaling = dec ? &dec->status : NULL,
		.scale_to_zero = s->scaling && s->min_replicas == 0 &&
				 cache_json_get(s->spec, "scaling.scaleToZero") != NULL,
	};
	json_object *status = status_build(&in);
	/* A new desired replica count (an autoscaling decision) is written at
	 * once: people and tests watch it next to the Deployment's replicas. */
	bool rescaled = s->status && cache_json_int(status, "desiredReplicas", -1) !=
					     cache_json_int(s->status, "desiredReplicas", -1);
	/* So is the way into and out of zero (Ready's ScaledToZero and
	 * ScalingFromZero): ScaledFromZero's cold start is timed by this
	 * write, and a user waiting at zero should not wait for the window. */
	if (s->status && !rescaled) {
		const char *reason = NULL, *oreason = NULL;
		status_condition(status, "Ready", &reason, NULL);
		status_condition(s->status, "Ready", &oreason, NULL);
		rescaled = cold_reason(reason) != cold_reason(oreason);
	}
	/* A new generation (a new object, a spec change) is written once, as
	 * soon as its rollout is over (complete, or stopped by a problem the
	 * status names), and within the window at the latest. */
	uint64_t now = ktime_mono_ns();
	bool fresh = cache_json_int(s->status, "observedGeneration", 0) != s->generation;
	bool in_progress = !invalid && (!s->have_dep || rolling_out(status));
	if (status_same(status, s->status))
		status_settled(ctx->data, key, s->uid);
	else if (fresh && status_in_flight(ctx->data, key, s->uid, s->generation, now, ret_wait))
		; /* ours, on its way to the cache: its watch event comes back */
	else if ((fresh && !in_progress) || rescaled ||
		 status_due(ctx->data, key, s->uid, now,
			    fresh || !coming_up(status, s->status) ? STATUS_WINDOW_NS :
								     STATUS_PROGRESS_WINDOW_NS,
			    ret_wait)) {
		if (rescaled)
			status_settled(ctx->data, key, s->uid);
		/* Conditional on the copy read: another writer's condition added
		 * since is never dropped (statuspatch.h). */
		r = statuspatch_write(ctx->client, s->ns, s->name, s->rv, status, &st);
		if (r == -EAGAIN)
			snprintf(ctx->error, sizeof(ctx->error),
				 "status of %s/%.200s changed since it was "
				 "read; computing it again",
				 s->ns, s->name);
		else if (r < 0 && r != -ENOENT)
			snprintf(ctx->error, sizeof(ctx->error),
				 "patch status of %s/%.200s: %.500s", s->ns, s->name, st.message);
		if (r == 0 && fresh)
			status_sent(ctx->data, key, s->uid, s->generation, now);
		if (r == 0)
			status_events(ctx, s, status, dec);
		if (r == -ENOENT)
			r = 0; /* deleted meanwhile */
	}
	json_object_put(status);
	return r;
}

/* The Deployment is mid-rollout: pods of more than one ReplicaSet. */
static bool rolling(const struct kdeployment *d)
{
	return d->observed_generation < d->generation || d->updated < d->replicas;
}

/*
 * A rollout on a full cluster. The Deployment adds a pod of the new
 * template before it removes an old one (maxSurge 1, maxUnavailable 0);
 * when no node has room for that extra pod (every GPU in use: the usual
 * state of a GPU cluster) it waits for ever, the old pods serving the old
 * model, Degraded Unschedulable. So when a pod of the service has waited
 * SURGE_BLOCKED_S unscheduled and taking one old pod away would make room
 * for it (the old pod's node passes the new pod's node filters, and the
 * new pod asks for no more of any resource than the old one), the rollout
 * goes on one pod at a time without the extra pod (maxSurge 0,
 * maxUnavailable 1): the Deployment controller removes one old pod (its
 * preStop pause, then its requests finish within the grace period, as any
 * old pod of a rollout), the new pod takes its place and must turn warm
 * (Ready) before the next old pod goes. Never below 2 replicas: one
 * replica replaced first would stop the service. Kept until the rollout
 * is over (the Deployment already without surge), then back to surge.
 */
#define SURGE_BLOCKED_S 30

struct surge_scan {
	const char *ns;
	const struct kpod *stuck; /* the oldest pod no node had room for */
	struct cache *nodes;
	bool room; /* an old pod's place would take it */
};

static int find_stuck(const struct cache_obj *o, void *ud)
{
	struct surge_scan *sc = ud;
	const struct kpod *p = (const struct kpod *)o;

	if (strcmp(o->ns, sc->ns) == 0 && !o->deleted && !p->node && p->scheduled == KCOND_FALSE &&
	    o->created && (!sc->stuck || o->created < sc->stuck->meta.created))
		sc->stuck = p;
	return 0;
}

static int find_room(const struct cache_obj *o, void *ud)
{
	struct surge_scan *sc = ud;
	const struct kpod *p = (const struct kpod *)o, *n = sc->stuck;
	char buf[160];

	if (strcmp(o->ns, sc->ns) != 0 || o->deleted || !p->node || p == n ||
	    text_same(kpod_template_hash(p), kpod_template_hash(n)) ||
	    !text_same(p->gpu_resource, n->gpu_resource) || n->gpu > p->gpu ||
	    n->cpu_milli > p->cpu_milli || n->mem_bytes > p->mem_bytes)
		return 0;
	const struct knode *node = (const struct knode *)cache_get(sc->nodes, p->node);
	if (!node || placement_node_filter(n, node, buf, sizeof(buf)))
		return 0;
	sc->room = true;
	return 1;
}

/* The least of each resource the service's live pods hold: what removing
 * any one of them gives back to the namespace's quota at the least. */
struct least_pod {
	const char *ns;
	struct quota_pod q;
	bool any;
};

static int find_least(const struct cache_obj *o, void *ud)
{
	struct least_pod *lp = ud;
	const struct kpod *p = (const struct kpod *)o;

	if (strcmp(o->ns, lp->ns) != 0 || o->deleted || p->phase == KPHASE_SUCCEEDED ||
	    p->phase == KPHASE_FAILED)
		return 0;
	if (!lp->any || p->cpu_milli < lp->q.cpu_milli)
		lp->q.cpu_milli = p->cpu_milli;
	if (!lp->any || p->mem_bytes < lp->q.mem_bytes)
		lp->q.mem_bytes = p->mem_bytes;
	if (!lp->any || p->gpu < lp->q.gpu)
		lp->q.gpu = p->gpu;
	if (!lp->any)
		lp->q.gpu_resource = p->gpu_resource;
	else if (!text_same(lp->q.gpu_resource, p->gpu_resource))
		lp->q.gpu_resource = NULL; /* mixed: no GPU given back for sure */
	lp->any = true;
	return 0;
}

/*
 * Is this rollout blocked for want of room for its extra pod, and would
 * one old pod's place do? Either a pod of the service has waited
 * unscheduled SURGE_BLOCKED_S (no node has room for it) and an old pod's
 * node would take it, or the namespace's ResourceQuota refused to create
 * it (the Deployment's ReplicaFailure) and one old pod's share would let
 * it in (quota.h). WHY gets the reason for the Event. When a pod is
 * unscheduled but younger, *ret_wait is the time left.
 */
static bool surge_blocked(struct reconcile_ctx *ctx, const struct snapshot *s, char *why,
			  size_t len, uint64_t *ret_wait)
{
	struct cache *pc = manager_cache(ctx->manager, &kind_pods);
	struct surge_scan sc = { .ns = s->ns, .nodes = manager_cache(ctx->manager, &kind_nodes) };
	struct least_pod lp = { .ns = s->ns };
	int64_t now = (int64_t)time(NULL);
	bool quota = s->dep.replica_failure == KCOND_TRUE && strstr(s->dep_failure, "exceeded quota");
	char name[128] = "";

	if (!pc || !sc.nodes)
		return false;
	cache_read_lock();
	cache_index_foreach(pc, KPOD_BY_SERVICE, s->name, find_stuck, &sc);
	if (sc.stuck && sc.stuck->meta.created + SURGE_BLOCKED_S > now)
		*ret_wait = (uint64_t)(sc.stuck->meta.created + SURGE_BLOCKED_S - now) *
			    KTIME_NSEC_PER_SEC;
	else if (sc.stuck)
		cache_index_foreach(pc, KPOD_BY_SERVICE, s->name, find_room, &sc);
	if (sc.room)
		snprintf(why, len,
			 "no node has room for a new pod beside the %d old ones (%.200s "
			 "unschedulable for %d s)",
			 s->dep.spec_replicas, cache_obj_name(&sc.stuck->meta), SURGE_BLOCKED_S);
	if (!sc.room && quota)
		cache_index_foreach(pc, KPOD_BY_SERVICE, s->name, find_least, &lp);
	/* (gpu_resource is interned: read it before the section ends.) */
	if (lp.any && quota_room_after_one(s->dep_failure, &lp.q, name, sizeof(name))) {
		sc.room = true;
		snprintf(why, len,
			 "the namespace's ResourceQuota %.128s has no room for a new pod beside "
			 "the %d old ones, and one old pod's share would make it",
			 name, s->dep.spec_replicas);
	}
	cache_read_unlock();
	return sc.room;
}

/*
 * Build the workload; during a rollout with no room for its extra pod,
 * without it (above). Kept without surge only while the Deployment holds
 * our current template that way: a new template starts with surge again
 * and waits its SURGE_BLOCKED_S, so a revision no node could ever take
 * (its pod would fit no old pod's place either) never costs a replica.
 */
static int build_workload(struct reconcile_ctx *ctx, const char *key, const struct snapshot *s,
			  int32_t run, struct workload *w, char *stuck, size_t stuck_len,
			  uint64_t *ret_wait, char *err, size_t errlen)
{
	const struct kinfer_context *k = context_of(ctx);
	struct workload_options wo = { 0 };
	uint64_t now = ktime_mono_ns(), since;
	int r;

	if (k)
		wo = k->workload;
	r = workload_build(s->ns, s->name, s->uid, s->spec, run, &wo, w, err, errlen);
	if (r < 0 || !s->have_dep || run < 2 || s->dep.spec_replicas < 2 || !rolling(&s->dep))
		return r;
	since = template_since(ctx->data, key, s->uid, w->template_hash, now);
	if (s->dep.no_surge) {
		/* Ours without surge, and still our template (at the replicas it
		 * runs: a scale in the middle keeps it)? Keep it. */
		struct workload one;
		wo.no_surge = true;
		if (workload_build(s->ns, s->name, s->uid, s->spec, run, &wo, &one, err, errlen) < 0)
			return 0;
		bool same = strcmp(s->dep_hash, one.deployment_hash) == 0;
		if (!same && s->dep.spec_replicas != run) {
			struct workload at;
			if (workload_build(s->ns, s->name, s->uid, s->spec, s->dep.spec_replicas,
					   &wo, &at, err, errlen) == 0) {
				same = strcmp(s->dep_hash, at.deployment_hash) == 0;
				workload_free(&at);
			}
		}
		if (!same) {
			workload_free(&one);
			return 0;
		}
		workload_free(w);
		*w = one;
		return 0;
	}
	if (strcmp(s->dep_hash, w->deployment_hash) != 0)
		return 0; /* our template is not in the Deployment yet */
	if (now - since < (uint64_t)SURGE_BLOCKED_S * KTIME_NSEC_PER_SEC) {
		*ret_wait = since + (uint64_t)SURGE_BLOCKED_S * KTIME_NSEC_PER_SEC - now;
		return 0;
	}
	if (!surge_blocked(ctx, s, stuck, stuck_len, ret_wait))
		return 0;
	workload_free(w);
	wo.no_surge = true;
	return workload_build(s->ns, s->name, s->uid, s->spec, run, &wo, w, err, errlen);
}

/*
 * Is the spec about to change the Deployment's pod template (a new
 * revision, image, resources...)? Built at the replicas the Deployment
 * has, the body differs from the one it holds. A scale-down that arrives
 * with such a change (the same apply, or before the Deployment took it)
 * must wait for the rollout as one during it does: a drain started now
 * would take its victim out of service for the whole rollout (it is
 * deferred once the Deployment rolls), and on a full cluster, where the
 * rollout may never finish, for ever. Only asked when a scale-down is
 * pending (the one extra build), and not of a Deployment someone else
 * edited: its replicas may not be the ones kinfer applied, so the bodies
 * differ whatever the template (it is applied again anyway).
 */
static bool template_changing(struct reconcile_ctx *ctx, const struct snapshot *s)
{
	const struct kinfer_context *k = context_of(ctx);
	struct workload_options wo = { 0 };
	struct workload w;
	char err[256];
	bool changing;

	if (s->dep.edited)
		return false;
	if (k)
		wo = k->workload;
	wo.no_surge = s->dep.no_surge;
	if (workload_build(s->ns, s->name, s->uid, s->spec, s->dep.spec_replicas, &wo, &w, err,
			   sizeof(err)) < 0)
		return false;
	changing = strcmp(w.deployment_hash, s->dep_hash) != 0;
	workload_free(&w);
	return changing;
}

/*
 * What a person reads when the Deployment or the Service kinfer would make
 * already exists and is not controlled by this InferenceService (as
 * Knative's NotOwned, and controller-runtime's refusal to adopt an object
 * with another controller).
 */
static void foreign_message(const struct snapshot *s, char *buf, size_t len)
{
	const char *what = s->dep_foreign && s->svc_foreign ? "Deployment and Service" :
			   s->dep_foreign                   ? "Deployment" :
							      "Service";
	snprintf(buf, len,
		 "%s %.200s already exist%s in namespace %s and %s not controlled by "
		 "this InferenceService: kinfer does not take it over; delete or rename it",
		 what, s->name, s->dep_foreign && s->svc_foreign ? "" : "s", s->ns,
		 s->dep_foreign && s->svc_foreign ? "are" : "is");
}

/*
 * The Deployment or the Service is still the one kinfer made for the
 * InferenceService of this name deleted before this one (`kubectl delete`
 * then `apply`, `kubectl replace --force`, a GitOps tool's recreate): not
 * someone else's, so no ResourceExists; Kubernetes' garbage collector
 * removes it (its deletion brings this key back: owned_by_isvc), and
 * kinfer makes its own then. kinfer never deletes it itself: that is the
 * collector's call (an orphaning delete, another owner). The same wait for
 * an object not ours already being deleted (a finalizer holds it): an
 * apply would write into it on its way out.
 */
static void previous_message(const struct snapshot *s, char *buf, size_t len)
{
	bool both = s->dep_previous && s->svc_previous;
	snapshot_wait_message(buf, len,
			      both            ? "Deployment and Service" :
			      s->dep_previous ? "Deployment" :
						"Service",
			      s->name, both, s->previous_uid);
}

/* Write the status saying what we wait for (message), record the Event. */
static enum reconcile_result wait_previous(struct reconcile_ctx *ctx, const char *key,
					   const struct snapshot *s, int32_t desired,
					   const struct autoscale_controller_decision *dec,
					   const char *message, uint64_t wait)
{
	uint64_t status_wait = 0;

	if (sync_status(ctx, key, s, desired, dec, NULL, NULL, message, false, &status_wait) < 0)
		return RECONCILE_ERROR;
	event(ctx, s, "Normal", "WaitingForCleanup", "Reconcile", message);
	wait = ktime_sooner(wait, status_wait);
	if (!wait)
		return RECONCILE_OK;
	ctx->requeue_after_ns = wait;
	return RECONCILE_REQUEUE_AFTER;
}

static enum reconcile_result reconcile(struct reconcile_ctx *ctx, const char *key)
{
	struct isvc_ctl *c = ctx->data;
	struct autoscale_controller_decision decision, *dec = NULL;
	struct snapshot s;
	struct workload w;
	char err[512];
	enum reconcile_result res = RECONCILE_OK;
	uint64_t requeue = 0, status_wait = 0;
	int r;

	r = snapshot_take(ctx->manager, key, &s);
	if (r == -ENOENT)
		return RECONCILE_OK; /* deleted: owner references clean up */
	if (r < 0) {
		snprintf(ctx->error, sizeof(ctx->error), "%s: %s", key,
			 r == -EBADMSG ? "spec or status cannot be parsed" : strerror(-r));
		return r == -EBADMSG ? RECONCILE_TERMINAL : RECONCILE_ERROR;
	}
	if (s.scaling && c && autoscale_controller_decision(c->autoscaler, key, &decision) == 0)
		dec = &decision;
	int32_t desired = desired_replicas(&s, dec), run = desired;
	bool deferred = false;
	/* Nothing is decided on a Deployment older than our own write: its
	 * watch event brings the key back (the requeue is the fallback). */
	if (dep_behind(c, key, &s, ktime_mono_ns(), &requeue)) {
		ctx->requeue_after_ns = requeue;
		res = RECONCILE_REQUEUE_AFTER;
		goto free_snapshot;
	}
	/* Another autoscaler has the replicas: kinfer keeps the Deployment's
	 * (and puts back in service any pod its own scale-down drained). */
	char other[1024];
	bool yield = other_autoscaler(&s, desired, other, sizeof(other));
	if (s.have_dep) {
		/* Shrinking goes through the drain: the Deployment keeps its
		 * replicas until the pods leaving have no request in flight. */
		int32_t want = yield ? s.dep.spec_replicas : desired;
		bool roll = rolling(&s.dep) ||
			    (want < s.dep.spec_replicas && template_changing(ctx, &s));
		struct drain_service ds = { s.ns, s.name, s.uid, s.spec, roll };
		struct drain_result dr;
		if (drain_step(ctx, &ds, s.dep.spec_replicas, want, &dr) == 0) {
			run = dr.replicas;
			requeue = dr.requeue_ns;
			deferred = dr.deferred;
		} else {
			/* Never shrink past a drain that failed; growing is safe. */
			run = want > s.dep.spec_replicas ? want : s.dep.spec_replicas;
			res = RECONCILE_ERROR;
		}
	}
	/* A rollout with no room for its extra pod: one at a time instead. */
	char stuck[512] = "";
	uint64_t surge_wait = 0;
	r = build_workload(ctx, key, &s, run, &w, stuck, sizeof(stuck), &surge_wait, err,
			   sizeof(err));
	requeue = ktime_sooner(requeue, surge_wait);
	if (r < 0) {
		/* The spec cannot run: say so in the status; retrying cannot help
		 * until the spec changes, which enqueues the key again. */
		if (sync_status(ctx, key, &s, desired, dec, err, NULL, NULL, deferred,
				&status_wait) < 0)
			res = RECONCILE_ERROR;
		event(ctx, &s, "Warning", "InvalidSpec", "Reconcile", err);
		if (res == RECONCILE_OK && status_wait) {
			ctx->requeue_after_ns = status_wait;
			res = RECONCILE_REQUEUE_AFTER;
		}
		goto free_snapshot;
	}
	if (s.dep_foreign || s.svc_foreign) {
		/* Never adopt: the object's watch enqueues us again when it goes. */
		foreign_message(&s, err, sizeof(err));
		if (sync_status(ctx, key, &s, desired, dec, err, "ResourceExists", NULL, false,
				&status_wait) < 0)
			res = RECONCILE_ERROR;
		event(ctx, &s, "Warning", "ResourceExists", "Reconcile", err);
		if (res == RECONCILE_OK && status_wait) {
			ctx->requeue_after_ns = status_wait;
			res = RECONCILE_REQUEUE_AFTER;
		}
		goto free_workload;
	}
	if (s.dep_previous || s.svc_previous) {
		previous_message(&s, err, sizeof(err));
		res = wait_previous(ctx, key, &s, desired, dec, err, 0);
		goto free_workload;
	}
	struct apply_note note = { 0 };
	uint64_t sent_wait = 0;
	/* (The apply's reply updates s.dep.) */
	bool one_at_a_time_now = stuck[0] && !s.dep.no_surge;
	if (sync_deployment(ctx, key, &s, &w, &note, &sent_wait) < 0 ||
	    sync_service(ctx, key, &s, &w, &note, &sent_wait) < 0) {
		res = RECONCILE_ERROR;
		if (note.reason)
			event(ctx, &s, "Normal", note.reason, "Apply", note.text);
		goto free_workload;
	}
	if (other[0])
		event(ctx, &s, "Warning", "ConflictingAutoscaler", "Reconcile", other);
	if (one_at_a_time_now) {
		char msg[640];
		snprintf(msg, sizeof(msg),
			 "%s: replacing them one at a time, each new pod warm before the next old "
			 "one goes",
			 stuck);
		log_info("rollout without an extra pod", "namespace=%s name=%s why=%s", s.ns,
			 s.name, stuck);
		event(ctx, &s, "Normal", "RollingOneAtATime", "Rollout", msg);
	}
	/* Scale to zero: the private Service and the public one's endpoints
	 * (route.h); without scaleToZero it only removes what it made. */
	r = route_sync(ctx, &s, &w, err, sizeof(err), &sent_wait);
	if (r == 2) {
		if (note.reason)
			event(ctx, &s, "Normal", note.reason, "Apply", note.text);
		res = wait_previous(ctx, key, &s, desired, dec, err, sent_wait);
		goto free_workload;
	}
	if (r == 1) {
		if (sync_status(ctx, key, &s, desired, dec, err, "ResourceExists", NULL, false,
				&status_wait) < 0)
			res = RECONCILE_ERROR;
		event(ctx, &s, "Warning", "ResourceExists", "Reconcile", err);
		if (note.reason)
			event(ctx, &s, "Normal", note.reason, "Apply", note.text);
		/* (route_sync's wait: a slice no watch of ours sees.) */
		status_wait = ktime_sooner(status_wait, sent_wait);
		if (res == RECONCILE_OK && status_wait) {
			ctx->requeue_after_ns = status_wait;
			res = RECONCILE_REQUEUE_AFTER;
		}
		goto free_workload;
	}
	/* The pods' disruption budget (budget.h). A routing or budget write
	 * that failed is retried; the status is written anyway (it depends on
	 * neither). */
	bool budget_failed = budget_sync(ctx, &s, &w, &sent_wait) < 0;
	if (sync_status(ctx, key, &s, desired, dec, NULL, NULL, NULL, deferred, &status_wait) < 0 ||
	    r < 0 || budget_failed)
		res = RECONCILE_ERROR;
	if (note.reason)
		event(ctx, &s, "Normal", note.reason, "Apply", note.text);
	/* Come back when the drain or a waiting status change is due, or
	 * when a write of ours the cache has not shown is no longer trusted. */
	requeue = ktime_sooner(ktime_sooner(requeue, status_wait), sent_wait);
	if (res == RECONCILE_OK && requeue) {
		ctx->requeue_after_ns = requeue;
		res = RECONCILE_REQUEUE_AFTER;
	}
free_workload:
	workload_free(&w);
free_snapshot:
	snapshot_free(&s);
	return res;
}

/* ---- watches ---------------------------------------------------------- */

/*
 * A Deployment or Service: its controlling InferenceService; or, when it
 * has none, the InferenceService of the same name, if there is one, which
 * waits for this object (not its own) to go away (ResourceExists).
 */
static void owned_by_isvc(void *data, const struct cache_obj *o, controller_emit_fn emit, void *ud)
{
	struct isvc_ctl *c = data;
	char key[512];
	bool named = false;

	if (o->controller_kind && strcmp(o->controller_kind, "InferenceService") == 0) {
		snprintf(key, sizeof(key), "%s/%s", o->ns, o->controller_name);
		emit(ud, key);
		return;
	}
	if (!c || !c->manager || !o->ns)
		return;
	snprintf(key, sizeof(key), "%s/%s", o->ns, cache_obj_name(o));
	struct cache *ic = manager_cache(c->manager, &kind_inferenceservices);
	cache_read_lock();
	named = ic && cache_get(ic, key) != NULL;
	cache_read_unlock();
	if (named)
		emit(ud, key);
}

struct emit_ns {
	const char *ns;
	controller_emit_fn emit;
	void *ud;
};

static int emit_in_ns(const struct cache_obj *o, void *ud)
{
	struct emit_ns *e = ud;
	if (strcmp(o->ns, e->ns) == 0)
		e->emit(e->ud, o->key);
	return 0;
}

/* A PodDisruptionBudget: kinfer's, its InferenceService; another one (a
 * user's, which may select a service's pods, budget.h): every
 * InferenceService of its namespace. Budgets change rarely (their
 * status, written at every pod change, is not a change: same_pdb). */
static void budget_services(void *data, const struct cache_obj *o, controller_emit_fn emit, void *ud)
{
	struct isvc_ctl *c = data;
	struct emit_ns e = { o->ns, emit, ud };

	if (o->controller_kind && strcmp(o->controller_kind, "InferenceService") == 0) {
		owned_by_isvc(data, o, emit, ud);
		return;
	}
	if (!c || !c->manager || !o->ns)
		return;
	struct cache *ic = manager_cache(c->manager, &kind_inferenceservices);
	cache_read_lock();
	if (ic)
		cache_foreach(ic, emit_in_ns, &e);
	cache_read_unlock();
}

struct emit_s2z {
	controller_emit_fn emit;
	void *ud;
};

static int emit_if_s2z(const struct cache_obj *o, void *ud)
{
	struct emit_s2z *e = ud;
	if (isvc_scale_to_zero((const struct isvc *)o))
		e->emit(e->ud, o->key);
	return 0;
}

/* A pod: its InferenceService; an activator pod: every InferenceService
 * with scaleToZero (their EndpointSlices may name it). */
static void pod_service(void *data, const struct cache_obj *o, controller_emit_fn emit, void *ud)
{
	const struct kpod *p = (const struct kpod *)o;
	struct isvc_ctl *c = data;
	char key[512];
	if (p->activator && c && c->manager) {
		struct cache *ic = manager_cache(c->manager, &kind_inferenceservices);
		struct emit_s2z e = { emit, ud };
		cache_read_lock();
		if (ic)
			cache_foreach(ic, emit_if_s2z, &e);
		cache_read_unlock();
		return;
	}
	if (!p->service)
		return;
	snprintf(key, sizeof(key), "%s/%s", o->ns, p->service);
	emit(ud, key);
}

/* A HorizontalPodAutoscaler: the InferenceService whose Deployment it
 * scales, or that it scales, before and after a change (map_old). */
static void hpa_service(void *data, const struct cache_obj *o, controller_emit_fn emit, void *ud)
{
	const struct khpa *h = (const struct khpa *)o;
	const char *target = h->deployment ? h->deployment : h->isvc;
	char key[512];
	(void)data;
	if (!target || !o->ns)
		return;
	snprintf(key, sizeof(key), "%s/%s", o->ns, target);
	emit(ud, key);
}

static const struct controller_watch watches[] = {
	{ .kind = &kind_inferenceservices, .map = NULL },
	{ .kind = &kind_deployments, .map = owned_by_isvc },
	{ .kind = &kind_services, .map = owned_by_isvc },
	{ .kind = &kind_endpointslices, .map = owned_by_isvc },
	{ .kind = &kind_pods, .map = pod_service },
	{ .kind = &kind_pdbs, .map = budget_services },
	{ .kind = &kind_hpas, .map = hpa_service, .map_old = true },
};

const struct controller_def isvc_controller = {
	.name = "inferenceservice",
	.watches = watches,
	.n_watches = sizeof(watches) / sizeof(watches[0]),
	.reconcile = reconcile,
	/* A reconcile mostly waits on the API server (a new object: two
	 * applies and an Event in a row, ~60 ms on a busy server): with 4
	 * workers 1,000 new services queued behind each other's round trips
	 * while the client's QPS was far from used (bench_reconcile.sh). The
	 * QPS limiter, not the worker count, is what bounds the writes. */
	.workers = 16,
	.data_new = ctl_new,
	.data_link = ctl_link,
	.data_free = ctl_free,
};
