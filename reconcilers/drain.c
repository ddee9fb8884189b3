/*
 * Drain-before-terminate; see drain.h for the sequence. Everything drain
 * knows lives in the pods (condition, annotations), read from the cache on
 * every step, so the step is idempotent and survives a change of leader.
 */
#include "drain.h"

#include "context.h"
#include "isvc.h"
#include "kinds.h"
#include "log.h"
#include "metrics.h"
#include "metricsource.h"
#include "podstate.h"
#include "presets.h"
#include "promtext.h"
#include "keys.h"
#include "ktime.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define METRICS_BODY_MAX (4 << 20)
#define DRAIN_SCRAPE_TIMEOUT_MS 3000               /* one pod's in-flight count */
#define DRAIN_POLL_NS (1 * KTIME_NSEC_PER_SEC)     /* look again while pods drain */
#define DRAIN_DEFERRED_POLL_NS (2 * DRAIN_POLL_NS) /* look again while a rollout runs */

/* ---- the candidates -------------------------------------------------------- */

struct gather {
	const char *ns;
	struct drain_candidate *c;
	size_t n, cap;
	int error;
};

static int gather_pod(const struct cache_obj *o, void *ud)
{
	struct gather *g = ud;
	const struct kpod *p = (const struct kpod *)o;
	if (strcmp(o->ns, g->ns) != 0 || o->deleted || p->phase == KPHASE_SUCCEEDED ||
	    p->phase == KPHASE_FAILED)
		return 0;
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 16;
		if (g->cap == DRAIN_MAX_PODS)
			return g->error = -E2BIG;
		if (cap > DRAIN_MAX_PODS)
			cap = DRAIN_MAX_PODS;
		struct drain_candidate *c = realloc(g->c, cap * sizeof(*c));
		if (!c)
			return g->error = -ENOMEM;
		g->c = c;
		g->cap = cap;
	}
	struct drain_candidate *c = &g->c[g->n++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", cache_obj_name(o));
	cache_obj_uid_copy(o, c->uid, sizeof(c->uid));
	kpod_ip_copy(p, c->ip, sizeof(c->ip));
	const char *hash = kpod_template_hash(p);
	snprintf(c->template_hash, sizeof(c->template_hash), "%s", hash ? hash : "");
	c->created = o->created;
	c->draining = p->warm_reason && strcmp(p->warm_reason, "Draining") == 0;
	c->draining_since = p->draining_since;
	c->warm = p->warmed == KCOND_TRUE;
	c->our_cost = p->has_deletion_cost && p->deletion_cost == DRAIN_DELETION_COST_VALUE;
	c->inflight = -1;
	c->answered = -1;
	c->arrived = -1;
	return 0;
}

int drain_candidates(struct cache *pods, const char *ns, const char *service,
		     struct drain_candidate **ret, size_t *ret_n)
{
	struct gather g = { .ns = ns };
	cache_index_foreach(pods, KPOD_BY_SERVICE, service, gather_pod, &g);
	if (g.error < 0) {
		free(g.c);
		return g.error;
	}
	*ret = g.c;
	*ret_n = g.n;
	return 0;
}

/* ---- reading a pod's load ------------------------------------------------- */

/* The sum of the series of metrics a page has; -ENODATA when none. */
static int sum_of(const struct promtext *page, const char *const *metrics, double *ret)
{
	double total = 0;
	size_t found = 0;

	for (size_t i = 0; metrics && metrics[i]; i++) {
		double v;
		size_t series = 0;
		if (promtext_sum(page, metrics[i], NULL, 0, &v, &series) == 0 && series > 0) {
			total += v;
			found += series;
		}
	}
	if (!found)
		return -ENODATA;
	*ret = total;
	return 0;
}

/* A candidate's requests in flight and answered from its metrics page. */
static void load_of(struct drain_candidate *c, const char *body, size_t len, const struct preset *pr)
{
	struct promtext *page = NULL;

	if (promtext_parse(body, len, NULL, NULL, &page) < 0)
		return;
	sum_of(page, pr->inflight, &c->inflight);
	sum_of(page, pr->answered, &c->answered);
	promtext_free(page);
}

/* ---- requests still reaching a draining pod --------------------------- */

struct look {
	char uid[64];
	int64_t t_ms; /* 0: free */
	double answered, inflight;
};
static struct look looks[DRAIN_LOOKS];
static pthread_mutex_t looks_lock = PTHREAD_MUTEX_INITIALIZER;

int drain_look(const char *uid, int64_t now_ms, double answered, double inflight,
	       double *ret_arrived, int64_t *ret_from_ms)
{
	struct look *l = NULL, *oldest = &looks[0];
	int r = -ENOENT;

	if (!uid || !uid[0] || strlen(uid) >= sizeof(looks[0].uid) || answered < 0 ||
	    inflight < 0 || now_ms <= 0)
		return -EINVAL;
	pthread_mutex_lock(&looks_lock);
	for (size_t i = 0; i < DRAIN_LOOKS && !l; i++) {
		if (looks[i].t_ms && strcmp(looks[i].uid, uid) == 0)
			l = &looks[i];
		else if (looks[i].t_ms < oldest->t_ms)
			oldest = &looks[i];
	}
	if (l && now_ms > l->t_ms && answered >= l->answered) {
		*ret_arrived = answered - l->answered + inflight - l->inflight;
		*ret_from_ms = l->t_ms;
		r = 0;
	}
	if (!l) {
		l = oldest;
		snprintf(l->uid, sizeof(l->uid), "%s", uid);
	}
	if (now_ms >= l->t_ms) {
		l->t_ms = now_ms;
		l->answered = answered;
		l->inflight = inflight;
	}
	pthread_mutex_unlock(&looks_lock);
	return r;
}

/*
 * The load of the candidates that served (warm or draining), all at once:
 * one scrape timeout for the whole service, never one after another in
 * the worker (issue 12, item 6). A pod that does not answer stays unknown.
 * A draining one's look is kept, for the requests that still reach it.
 */
static int read_loads(struct drain_candidate *c, size_t n, int32_t port, const char *path,
		      const struct preset *pr)
{
	struct metricsource_pod *pods = calloc(n ? n : 1, sizeof(*pods));
	char **bodies = calloc(n ? n : 1, sizeof(*bodies));
	size_t *lens = calloc(n ? n : 1, sizeof(*lens));
	int r = -ENOMEM;

	if (!pods || !bodies || !lens)
		goto free_arrays;
	for (size_t i = 0; i < n; i++) {
		bool wanted = (c[i].warm || c[i].draining) && c[i].ip[0];
		pods[i] = (struct metricsource_pod){ c[i].name, c[i].ip,
						     wanted ? AUTOSCALE_POD_READY :
							      AUTOSCALE_POD_IGNORED };
	}
	r = metricsource_fetch_all(pods, n, port, path, DRAIN_SCRAPE_TIMEOUT_MS, METRICS_BODY_MAX,
				   bodies, lens);
	int64_t now_ms = ktime_wall_ms();
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (bodies[i])
			load_of(&c[i], bodies[i], lens[i], pr);
		if (c[i].draining && c[i].inflight >= 0 && c[i].answered >= 0 &&
		    drain_look(c[i].uid, now_ms, c[i].answered, c[i].inflight, &c[i].arrived,
			       &c[i].arrived_from_ms) == 0)
			c[i].arrived_for_ms = now_ms - c[i].arrived_from_ms;
		free(bodies[i]);
	}
free_arrays:
	free(pods);
	free(bodies);
	free(lens);
	return r;
}

/* ---- choosing ------------------------------------------------------------- */

/* Chosen by an earlier step: draining, or its start written (start()
 * writes the annotation first) and the gate not in the cache yet. A step
 * reading the cache in between must not choose another pod by its load. */
static bool chosen(const struct drain_candidate *c)
{
	return c->draining || c->draining_since > 0;
}

/* Victims first: chosen before, not warm, least loaded, newest. */
static int victim_order(const void *a, const void *b)
{
	const struct drain_candidate *x = a, *y = b;
	if (chosen(x) != chosen(y))
		return chosen(x) ? -1 : 1;
	if (x->warm != y->warm)
		return x->warm ? 1 : -1;
	/* An unknown load (-1) sorts after every known one. */
	double lx = x->inflight < 0 ? HUGE_VAL : x->inflight,
	       ly = y->inflight < 0 ? HUGE_VAL : y->inflight;
	if (lx != ly)
		return lx < ly ? -1 : 1;
	if (x->created != y->created)
		return x->created > y->created ? -1 : 1;
	return strcmp(x->name, y->name);
}

void drain_order(struct drain_candidate *c, size_t n)
{
	if (c && n > 1)
		qsort(c, n, sizeof(*c), victim_order);
}

/* Pods of two pod templates: a rollout is under way. */
static bool two_templates(const struct drain_candidate *c, size_t n)
{
	const char *first = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!c[i].template_hash[0])
			continue;
		if (!first)
			first = c[i].template_hash;
		else if (strcmp(first, c[i].template_hash) != 0)
			return true;
	}
	return false;
}

/* No scale-down pending: bring back only as many draining pods as the
 * serving ones fall short of desired (the others are on their way out:
 * the Deployment already shrank and the ReplicaSet deletes them next). */
static void decide_no_shrink(struct drain_candidate *c, size_t n, int32_t desired)
{
	int32_t serving = 0;
	for (size_t i = 0; i < n; i++)
		serving += !c[i].draining;
	for (size_t i = 0; i < n && serving < desired; i++)
		if (c[i].draining) {
			c[i].action = DRAIN_UNDRAIN;
			serving++;
		}
}

/* A victim's action from its state, its load and the time it drained. */
static enum drain_action victim_action(const struct drain_candidate *c, const struct drain_input *in)
{
	if (!c->warm && !c->draining)
		return DRAIN_DONE; /* never served traffic: nothing to drain */
	if (!c->draining)
		return DRAIN_START;
	if (c->draining_since <= 0 || c->draining_since > in->now)
		return DRAIN_RESTAMP;
	int64_t waited = in->now - c->draining_since;
	int min_s = in->timeout_s < DRAIN_MIN_SECONDS ? in->timeout_s : DRAIN_MIN_SECONDS;
	bool idle = c->inflight == 0 || (c->inflight < 0 && !in->knows_load);
	if (waited >= in->timeout_s)
		return DRAIN_TIMED_OUT;
	if (waited < min_s)
		return DRAIN_WAIT;
	if (idle)
		return DRAIN_DONE;
	/* New requests between two looks after the minimum: they come on
	 * connections opened before, which only the server's shutdown closes. */
	if (c->draining_since > 0 && c->arrived > 0 &&
	    c->arrived_from_ms >= (c->draining_since + min_s) * 1000)
		return DRAIN_HANDOVER;
	return DRAIN_WAIT;
}

void drain_decide(struct drain_candidate *c, size_t n, const struct drain_input *in,
		  struct drain_decision *ret)
{
	struct drain_decision d = { .replicas = in->desired };
	int64_t need = (int64_t)in->current - in->desired;

	for (size_t i = 0; i < n; i++)
		c[i].action = DRAIN_NONE;
	if (need <= 0) {
		decide_no_shrink(c, n, in->desired);
		goto out;
	}
	if (in->rolling || two_templates(c, n)) {
		/* pod-deletion-cost ranks pods inside one ReplicaSet only. A
		 * drain begun before the rollout ends here: its pods serve
		 * again until the scale-down can go on (kept out of service,
		 * they stayed so for the whole rollout, and for ever where it
		 * cannot finish). Not the ones the Deployment already shrank
		 * for (kinfer's pod-deletion-cost on them): those go next. A
		 * pod never warm is not put in service by this (its warm-up
		 * does that). */
		for (size_t i = 0; i < n; i++)
			if (chosen(&c[i]) && (c[i].draining || c[i].warm) && !c[i].our_cost)
				c[i].action = DRAIN_UNDRAIN;
		d.replicas = in->current;
		d.deferred = true;
		d.requeue_ns = DRAIN_DEFERRED_POLL_NS;
		goto out;
	}
	drain_order(c, n);
	if ((size_t)need > n)
		need = (int64_t)n;
	/* Pods draining beyond what is needed now go back in service. */
	for (size_t i = (size_t)need; i < n; i++)
		if (c[i].draining)
			c[i].action = DRAIN_UNDRAIN;
	bool drained = true;
	for (size_t i = 0; i < (size_t)need; i++) {
		c[i].action = victim_action(&c[i], in);
		d.started += c[i].action == DRAIN_START;
		drained = drained && (c[i].action == DRAIN_DONE || c[i].action == DRAIN_TIMED_OUT ||
				      c[i].action == DRAIN_HANDOVER);
	}
	if (!drained) {
		d.replicas = in->current;
		d.requeue_ns = DRAIN_POLL_NS;
		goto out;
	}
	d.shrink = true;
	d.victims = (size_t)need;
out:
	*ret = d;
}

struct endpoint {
	int32_t port;
	char path[256];
	const struct preset *pr; /* the framework's load metrics */
	int timeout_s;
};

static void endpoint_of(json_object *spec, struct endpoint *e)
{
	enum isvc_framework fw = ISVC_VLLM;
	isvc_framework_parse(cache_json_str(spec, "model.framework"), &fw);
	const struct preset *pr = preset_for(fw);
	const char *path;
	preset_endpoint(pr, spec, NULL, &e->port, &path);
	snprintf(e->path, sizeof(e->path), "%s", path);
	e->pr = pr;
	e->timeout_s = (int)cache_json_int(spec, "drain.timeoutSeconds",
					   ISVC_DRAIN_TIMEOUT_S_DEFAULT);
}

static const char *const outcome_labels[] = { "outcome", NULL };
static const struct metric_family fam_victims = {
	"kinfer_drain_victims_total",
	"Pods a scale-down removed, by how their drain ended: drained (no request in flight), "
	"handed_over (still sent requests on kept connections: left to the server's shutdown), "
	"timed_out (spec.drain.timeoutSeconds), not_serving (never warm: nothing to drain).",
	METRIC_COUNTER,
	outcome_labels,
	NULL,
	0
};

static const char *outcome_of(const struct drain_candidate *c)
{
	switch (c->action) {
	case DRAIN_HANDOVER:
		return "handed_over";
	case DRAIN_TIMED_OUT:
		return "timed_out";
	default:
		return c->draining ? "drained" : "not_serving";
	}
}

static void event(struct reconcile_ctx *ctx, const struct drain_service *svc, const char *type,
		  const char *reason, const char *note)
{
	context_event(ctx, "kinfer.io/v1alpha1", "InferenceService", svc->ns, svc->name, svc->uid,
		      type, reason, "Drain", note);
}

/* Put back in service the pods a scale-up still needs: the gate, the
 * drain's start and kinfer's pod-deletion-cost (left on a pod, it would
 * make the ReplicaSet remove it first at the next scale-down, drained or
 * not). */
static int undrain(struct reconcile_ctx *ctx, const struct drain_service *svc,
		   const struct drain_candidate *c, bool deferred)
{
	int r = podstate_set_gate(ctx->client, svc->ns, c->name, true, "DrainCancelled",
				  deferred ? "back in service: the scale-down waits for the rollout "
					     "to finish" :
					     "back in service: the scale-down was cancelled",
				  NULL);
	if (r == 0)
		r = podstate_annotate(ctx->client, svc->ns, c->name, KINFER_DRAINING_SINCE, NULL,
				      NULL);
	if (r == 0 && c->our_cost)
		r = podstate_annotate(ctx->client, svc->ns, c->name, DRAIN_POD_DELETION_COST, NULL,
				      NULL);
	if (r == 0)
		log_info("drain cancelled", "pod=%s/%s rollout=%s", svc->ns, c->name,
			 deferred ? "true" : "false");
	return r;
}

/* The drain's start, now, in the pod's kinfer.io/draining-since. */
static int write_since(struct reconcile_ctx *ctx, const struct drain_service *svc,
		       const struct drain_candidate *c, int64_t now)
{
	char since[32];
	snprintf(since, sizeof(since), "%lld", (long long)now);
	return podstate_annotate(ctx->client, svc->ns, c->name, KINFER_DRAINING_SINCE, since, NULL);
}

/* Take a victim out of service: the drain's start, then the gate. */
static int start(struct reconcile_ctx *ctx, const struct drain_service *svc,
		 const struct drain_candidate *c, int32_t current, int32_t desired, int64_t now)
{
	char note[256];
	snprintf(note, sizeof(note), "draining before scale-down from %d to %d replicas", current,
		 desired);
	int r = write_since(ctx, svc, c, now);
	if (r == 0)
		r = podstate_set_gate(ctx->client, svc->ns, c->name, false, "Draining", note, NULL);
	return r;
}

/* A victim draining with no start to count from: its start, now, by this
 * clock (so its minimum and its timeout hold from here), and a Warning,
 * since only a hand edit or clocks apart bring it. */
static int restamp(struct reconcile_ctx *ctx, const struct drain_service *svc,
		   const struct drain_candidate *c, int64_t now)
{
	char note[512];
	int r = write_since(ctx, svc, c, now);
	if (r < 0)
		return r;
	if (c->draining_since > now)
		snprintf(note, sizeof(note),
			 "pod %s was draining with a start %lld s ahead of this clock (%s %lld): "
			 "its drain counts from now",
			 c->name, (long long)(c->draining_since - now), KINFER_DRAINING_SINCE,
			 (long long)c->draining_since);
	else
		snprintf(note, sizeof(note),
			 "pod %s was draining without a start (%s missing or not seconds since "
			 "the epoch): its drain counts from now",
			 c->name, KINFER_DRAINING_SINCE);
	event(ctx, svc, "Warning", "DrainRestarted", note);
	log_warn("drain restarted", "pod=%s/%s since=%lld now=%lld", svc->ns, c->name,
		 (long long)c->draining_since, (long long)now);
	return 0;
}

/* The writes of one decision; 0 or the first error. */
static int carry_out(struct reconcile_ctx *ctx, const struct drain_service *svc,
		     struct drain_candidate *c, size_t n, const struct drain_input *in,
		     const struct drain_decision *d)
{
	char note[512];
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++) {
		switch (c[i].action) {
		case DRAIN_UNDRAIN:
			r = undrain(ctx, svc, &c[i], d->deferred);
			break;
		case DRAIN_START:
			r = start(ctx, svc, &c[i], in->current, in->desired, in->now);
			break;
		case DRAIN_RESTAMP:
			r = restamp(ctx, svc, &c[i], in->now);
			break;
		case DRAIN_TIMED_OUT:
			snprintf(note, sizeof(note),
				 "pod %s still had %.0f request(s) in flight after "
				 "the %d s drain timeout; removing it anyway",
				 c[i].name, c[i].inflight, in->timeout_s);
			event(ctx, svc, "Warning", "DrainTimedOut", note);
			break;
		case DRAIN_HANDOVER:
			snprintf(note, sizeof(note),
				 "pod %s still got %.0f new request(s) in %.1f s, %d s after it "
				 "left the endpoints: its clients keep connections open to it "
				 "(HTTP keep-alive), which only its shutdown closes; removing "
				 "it now, it answers the %.0f in flight in its grace period",
				 c[i].name, c[i].arrived, (double)c[i].arrived_for_ms / 1000.0,
				 (int)(in->now - c[i].draining_since), c[i].inflight);
			event(ctx, svc, "Normal", "DrainHandedOver", note);
			log_info("drain handed over", "pod=%s/%s arrived=%.0f inflight=%.0f",
				 svc->ns, c[i].name, c[i].arrived, c[i].inflight);
			break;
		default:
			break;
		}
	}
	if (r < 0) {
		snprintf(ctx->error, sizeof(ctx->error), "drain of %s/%.200s failed", svc->ns,
			 svc->name);
		return r;
	}
	if (d->started) {
		snprintf(note, sizeof(note),
			 "draining %d pod(s) before scaling from %d to %d replicas", d->started,
			 in->current, in->desired);
		event(ctx, svc, "Normal", "Draining", note);
	}
	if (d->deferred) {
		snprintf(note, sizeof(note),
			 "scale-down from %d to %d replicas waits for the rollout "
			 "to finish, so no pod leaves undrained",
			 in->current, in->desired);
		event(ctx, svc, "Normal", "ScaleDownDeferred", note);
	}
	if (!d->shrink)
		return 0;
	/* Drained: make these the ReplicaSet's first choice, then shrink. */
	for (size_t i = 0; i < d->victims && r == 0; i++)
		r = podstate_annotate(ctx->client, svc->ns, c[i].name, DRAIN_POD_DELETION_COST,
				      DRAIN_DELETION_COST, NULL);
	if (r < 0) {
		snprintf(ctx->error, sizeof(ctx->error), "set pod-deletion-cost in %s: failed",
			 svc->ns);
		return r;
	}
	snprintf(note, sizeof(note), "drained %zu pod(s); scaling from %d to %d replicas",
		 d->victims, in->current, in->desired);
	event(ctx, svc, "Normal", "Drained", note);
	const struct kinfer_context *kc = context_of(ctx);
	for (size_t i = 0; i < d->victims && kc; i++)
		metric_add(metrics_series(kc->metrics, &fam_victims,
					  (const char *const[]){ outcome_of(&c[i]), NULL }),
			   1);
	log_info("drained", "service=%s/%s from=%d to=%d", svc->ns, svc->name, in->current,
		 in->desired);
	return 0;
}

int drain_step(struct reconcile_ctx *ctx, const struct drain_service *svc, int32_t current,
	       int32_t desired, struct drain_result *ret)
{
	struct cache *pc = manager_cache(ctx->manager, &kind_pods);
	struct drain_candidate *c = NULL;
	struct drain_decision d;
	struct endpoint ep;
	size_t n = 0;
	int r;

	cache_read_lock();
	r = drain_candidates(pc, svc->ns, svc->name, &c, &n);
	cache_read_unlock();
	if (r < 0) {
		snprintf(ctx->error, sizeof(ctx->error), "drain of %s/%.200s: %s pods", svc->ns,
			 svc->name, r == -E2BIG ? "too many" : "cannot gather the");
		return r;
	}
	endpoint_of(svc->spec, &ep);
	struct drain_input in = {
		.current = current,
		.desired = desired,
		.now = (int64_t)time(NULL),
		.timeout_s = ep.timeout_s,
		.knows_load = ep.pr->inflight != NULL,
		.rolling = svc->rolling || two_templates(c, n),
	};
	/* The load of warm candidates decides among them (unknown when it
	 * cannot be read: the order puts those last, the drain waits). */
	if (current > desired && !in.rolling)
		read_loads(c, n, ep.port, ep.path, ep.pr);
	drain_decide(c, n, &in, &d);
	r = carry_out(ctx, svc, c, n, &in, &d);
	if (r == 0)
		*ret = (struct drain_result){ d.replicas, d.requeue_ns, d.deferred };
	free(c);
	return r;
}
