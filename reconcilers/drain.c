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
#include "metricsource.h"
#include "podstate.h"
#include "presets.h"
#include "promtext.h"
#include "keys.h"
#include "ktime.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DRAIN_MAX_PODS 512
#define METRICS_BODY_MAX (4 << 20)
#define DRAIN_SCRAPE_TIMEOUT_MS 3000                 /* one pod's in-flight count */
#define DRAIN_POLL_NS (1 * KTIME_NSEC_PER_SEC)       /* look again while pods drain */

struct gather {
	const char *ns;
	struct drain_candidate *c;
	int n;
};

static int gather_pod(const struct cache_obj *o, void *ud)
{
	struct gather *g = ud;
	const struct kpod *p = (const struct kpod *)o;
	if (strcmp(o->ns, g->ns) != 0 || o->deleted || p->phase == KPHASE_SUCCEEDED ||
	    p->phase == KPHASE_FAILED || g->n == DRAIN_MAX_PODS)
		return 0;
	struct drain_candidate *c = &g->c[g->n++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", o->name);
	snprintf(c->uid, sizeof(c->uid), "%s", o->uid ? o->uid : "");
	snprintf(c->ip, sizeof(c->ip), "%s", p->pod_ip ? p->pod_ip : "");
	c->created = o->created;
	c->draining = p->warm_reason && strcmp(p->warm_reason, "Draining") == 0;
	c->draining_since = p->draining_since;
	c->warm = p->warmed == KCOND_TRUE;
	c->inflight = -1;
	return 0;
}

/* ---- reading a pod's load ------------------------------------------------- */

int drain_inflight(const char *ip, int32_t port, const char *path,
		   const char *const *metrics, double *ret)
{
	struct promtext *page = NULL;
	char *body = NULL;
	size_t len = 0;
	int r = metricsource_fetch(ip, port, path, DRAIN_SCRAPE_TIMEOUT_MS, METRICS_BODY_MAX, &body, &len, NULL, 0);

	if (r < 0)
		return r;
	r = -EIO;
	if (promtext_parse(body, len, NULL, NULL, &page) == 0) {
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
		promtext_free(page);
		if (found > 0) {
			*ret = total;
			r = 0;
		} else {
			r = -ENODATA;
		}
	}
	free(body);
	return r;
}

/* ---- choosing ------------------------------------------------------------- */

/* Victims first: draining, not warm, least loaded, newest. */
static int victim_order(const void *a, const void *b)
{
	const struct drain_candidate *x = a, *y = b;
	if (x->draining != y->draining)
		return x->draining ? -1 : 1;
	if (x->warm != y->warm)
		return x->warm ? 1 : -1;
	/* An unknown load (-1) sorts after every known one. */
	double lx = x->inflight < 0 ? HUGE_VAL : x->inflight, ly = y->inflight < 0 ? HUGE_VAL : y->inflight;
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

struct endpoint {
	int32_t port;
	char path[256];
	const char *const *metrics;
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
	e->metrics = pr->inflight;
	e->timeout_s = (int)cache_json_int(spec, "drain.timeoutSeconds", ISVC_DRAIN_TIMEOUT_S_DEFAULT);
}

static void event(struct reconcile_ctx *ctx, const struct drain_service *svc, const char *type,
		  const char *reason, const char *note)
{
	context_event(ctx, "kinfer.io/v1alpha1", "InferenceService", svc->ns, svc->name, svc->uid,
		      type, reason, "Drain", note);
}

/* Put back in service the pods a scale-up still needs. */
static int undrain(struct reconcile_ctx *ctx, const struct drain_service *svc, struct drain_candidate *c)
{
	int r = podstate_set_gate(ctx->client, svc->ns, c->name, true, "DrainCancelled",
				  "back in service: the scale-down was cancelled", NULL);
	if (r == 0)
		r = podstate_annotate(ctx->client, svc->ns, c->name, KINFER_DRAINING_SINCE, NULL, NULL);
	if (r == 0)
		log_info("drain cancelled", "pod=%s/%s", svc->ns, c->name);
	return r;
}

int drain_step(struct reconcile_ctx *ctx, const struct drain_service *svc, int32_t current,
	       int32_t desired, int32_t *ret_replicas, uint64_t *ret_requeue_ns)
{
	struct cache *pc = manager_cache(ctx->manager, &kind_pods);
	struct gather g = { .ns = svc->ns };
	struct endpoint ep;
	char note[512];
	int64_t now = (int64_t)time(NULL);
	int need = current - desired, r = 0;

	*ret_requeue_ns = 0;
	*ret_replicas = desired;
	g.c = calloc(DRAIN_MAX_PODS, sizeof(*g.c));
	if (!g.c)
		return -ENOMEM;
	cache_read_lock();
	cache_index_foreach(pc, KPOD_BY_SERVICE, svc->name, gather_pod, &g);
	cache_read_unlock();
	endpoint_of(svc->spec, &ep);
	if (need <= 0) {
		/* No scale-down pending. Draining pods are either on their way out
		 * (the Deployment already shrank; the ReplicaSet deletes them next)
		 * or wanted back by a scale-up: bring back only as many as the
		 * serving pods fall short of desired. */
		int serving = 0;
		for (int i = 0; i < g.n; i++)
			serving += !g.c[i].draining;
		for (int i = 0; i < g.n && r == 0 && serving < desired; i++)
			if (g.c[i].draining) {
				r = undrain(ctx, svc, &g.c[i]);
				serving++;
			}
		goto free_candidates;
	}
	/* The load of warm candidates decides among them. */
	for (int i = 0; i < g.n; i++)
		if ((g.c[i].warm || g.c[i].draining) && g.c[i].ip[0])
			drain_inflight(g.c[i].ip, ep.port, ep.path, ep.metrics, &g.c[i].inflight);
	drain_order(g.c, (size_t)g.n);
	if (need > g.n)
		need = g.n;
	/* Pods draining beyond what is needed now go back in service. */
	for (int i = need; i < g.n && r == 0; i++)
		if (g.c[i].draining)
			r = undrain(ctx, svc, &g.c[i]);
	bool all_drained = true;
	int started = 0;
	for (int i = 0; i < need && r == 0; i++) {
		struct drain_candidate *c = &g.c[i];
		if (!c->warm && !c->draining)
			continue;   /* never served traffic: nothing to drain */
		if (!c->draining) {
			char since[32];
			snprintf(since, sizeof(since), "%lld", (long long)now);
			snprintf(note, sizeof(note), "draining before scale-down from %d to %d replicas",
				 current, desired);
			r = podstate_annotate(ctx->client, svc->ns, c->name, KINFER_DRAINING_SINCE, since, NULL);
			if (r == 0)
				r = podstate_set_gate(ctx->client, svc->ns, c->name, false, "Draining", note, NULL);
			c->draining_since = now;
			started++;
			all_drained = false;
			continue;
		}
		int64_t waited = now - (c->draining_since ? c->draining_since : now);
		int min_s = ep.timeout_s < DRAIN_MIN_SECONDS ? ep.timeout_s : DRAIN_MIN_SECONDS;
		bool idle = c->inflight == 0 || (c->inflight < 0 && !ep.metrics);
		if (waited >= ep.timeout_s) {
			snprintf(note, sizeof(note), "pod %s still had %.0f request(s) in flight after the "
				 "%d s drain timeout; removing it anyway", c->name, c->inflight, ep.timeout_s);
			event(ctx, svc, "Warning", "DrainTimedOut", note);
		} else if (!(idle && waited >= min_s)) {
			all_drained = false;
		}
	}
	if (r < 0) {
		snprintf(ctx->error, sizeof(ctx->error), "drain of %s/%.200s failed", svc->ns, svc->name);
		goto free_candidates;
	}
	if (started) {
		snprintf(note, sizeof(note), "draining %d pod(s) before scaling from %d to %d replicas",
			 started, current, desired);
		event(ctx, svc, "Normal", "Draining", note);
	}
	if (!all_drained) {
		*ret_replicas = current;
		*ret_requeue_ns = DRAIN_POLL_NS;
		goto free_candidates;
	}
	/* Drained: make these the ReplicaSet's first choice, then shrink. */
	for (int i = 0; i < need && r == 0; i++)
		r = podstate_annotate(ctx->client, svc->ns, g.c[i].name,
				      "controller.kubernetes.io/pod-deletion-cost", DRAIN_DELETION_COST, NULL);
	if (r < 0) {
		*ret_replicas = current;
		snprintf(ctx->error, sizeof(ctx->error), "set pod-deletion-cost in %s: failed", svc->ns);
		goto free_candidates;
	}
	snprintf(note, sizeof(note), "drained %d pod(s); scaling from %d to %d replicas", need,
		 current, desired);
	event(ctx, svc, "Normal", "Drained", note);
	log_info("drained", "service=%s/%s from=%d to=%d", svc->ns, svc->name, current, desired);
free_candidates:
	free(g.c);
	return r;
}
