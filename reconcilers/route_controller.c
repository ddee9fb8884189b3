/*
 * The routing objects of scale-to-zero services: gather the service's
 * pods and the activator's from the pod cache, choose (route.c), and
 * write only what changed. kinfer's EndpointSlices (label
 * endpointslice.kubernetes.io/managed-by=kinfer.io) have a cache of their
 * own, watched by the InferenceService controller: a slice deleted or
 * edited by someone else is written again at once. What was applied last
 * (the body's hash and the resourceVersion the apply returned) is
 * remembered per service in a table of fixed size (a service without
 * memory, after a restart or a collision, costs a no-op apply, which also
 * undoes an edit made while no operator watched); a slice the cache does
 * not show as ours is read once to check who owns it before it is written.
 */
#include "route_controller.h"

#include "context.h"
#include "isvc.h"
#include "kinds.h"
#include "kube.h"
#include "ktime.h"
#include "log.h"
#include "presets.h"
#include "route.h"
#include "written.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IP_MAX 48

/* ERR: KIND NAME in NS is someone else's (ownership rule of issue 12). */
static void not_ours(char *err, size_t errlen, const char *kind, const char *name, const char *ns)
{
	snprintf(err, errlen,
		 "%s %s already exists in namespace %s and is not controlled by this "
		 "InferenceService: kinfer does not take it over; delete or rename it",
		 kind, name, ns);
}

static const struct kube_resource res_endpoints = { "", "v1", "Endpoints", "endpoints", true };

/*
 * Our write that the cache has not shown yet (the watch is a few ms
 * behind, seconds under load) is trusted this long, as the
 * InferenceService controller trusts its applies; the key comes back then.
 */
#define SENT_NS (10 * KTIME_NSEC_PER_SEC)
/* A slice NAME-kinfer of someone else's is read again this often. */
#define FOREIGN_RECHECK_NS (30 * KTIME_NSEC_PER_SEC)

/* kinfer's slices only: who controls NAME-kinfer, and what was applied
 * (the applied-hash annotation, as for Services). */
const struct cache_kind kind_endpointslices = {
	.name = "EndpointSlice",
	.res = &kube_res_endpointslices,
	.size = sizeof(struct kservice),
	.project = kservice_project,
	.label_selector = "endpointslice.kubernetes.io/managed-by=" ROUTE_MANAGED_BY,
};

static struct written_table written = WRITTEN_TABLE_INIT;

static bool recall(const struct snapshot *s, struct written *ret)
{
	return written_recall(&written, s, ret);
}

/* hash applied (rv returned) at sent_ns; hash NULL: forget. */
static void remember(const struct snapshot *s, const char *hash, const char *rv, uint64_t sent_ns)
{
	written_remember(&written, s, hash, rv, 0, sent_ns);
}

/* ---- the pods ------------------------------------------------------------ */

/* The port the model server serves on (its container port "http"). */
static int32_t pod_port(json_object *spec)
{
	enum isvc_framework fw = ISVC_VLLM;
	const struct preset *pr;
	int32_t port = 0, mport = 0;
	isvc_framework_parse(cache_json_str(spec, "model.framework"), &fw);
	pr = preset_for(fw);
	preset_endpoint(pr, spec, &port, &mport, NULL);
	return port;
}

struct gather {
	const char *ns;
	size_t n, cap;
	struct route_pod *pods;
	char (*ips)[IP_MAX];
};

static int gather_pod(const struct cache_obj *o, void *ud)
{
	struct gather *g = ud;
	const struct kpod *p = (const struct kpod *)o;
	if (strcmp(o->ns, g->ns) != 0 || g->n >= g->cap)
		return 0;
	kpod_ip_copy(p, g->ips[g->n], IP_MAX);
	g->pods[g->n] = (struct route_pod){
		.ip = g->ips[g->n],
		.ready = p->ready == KCOND_TRUE,
		.deleting = o->deleted != 0,
	};
	g->n++;
	return 0;
}

static int gather_init(struct gather *g, const char *ns)
{
	g->ns = ns;
	g->n = 0;
	g->cap = ROUTE_MAX_ENDPOINTS;
	g->pods = calloc(g->cap, sizeof(*g->pods));
	g->ips = calloc(g->cap, sizeof(*g->ips));
	return g->pods && g->ips ? 0 : -ENOMEM;
}

static void gather_free(struct gather *g)
{
	free(g->pods);
	free(g->ips);
}

/* ---- the objects --------------------------------------------------------- */

static int api_error(struct reconcile_ctx *ctx, int r, const char *what, const char *ns,
		     const char *name, const struct kube_status *st)
{
	snprintf(ctx->error, sizeof(ctx->error), "%s %s/%.200s: %.500s", what, ns, name, st->message);
	ctx->ns_terminating |= st->ns_terminating;
	return r;
}

/* Who controls the slice NAME-kinfer: 0 nobody (absent), 1 this
 * InferenceService, -1 another owner, -2 an earlier InferenceService of
 * this name (its uid in prev_uid). */
static int slice_owner(struct reconcile_ctx *ctx, const struct snapshot *s, const char *slice,
		       int *ret, char prev_uid[64])
{
	json_object *o = NULL, *refs;
	const char *managed = NULL;
	struct kube_status st;
	int r = kube_get(ctx->client, &kube_res_endpointslices, s->ns, slice, NULL, &o, &st);
	if (r == -ENOENT) {
		*ret = 0;
		return 0;
	}
	if (r < 0)
		return api_error(ctx, r, "get EndpointSlice", s->ns, slice, &st);
	*ret = -1;
	prev_uid[0] = '\0';
	json_object *labels = cache_json_get(o, "metadata.labels");
	json_object *m = NULL;
	if (labels && json_object_is_type(labels, json_type_object) &&
	    json_object_object_get_ex(labels, "endpointslice.kubernetes.io/managed-by", &m))
		managed = json_object_get_string(m);
	refs = cache_json_get(o, "metadata.ownerReferences");
	for (size_t i = 0; refs && json_object_is_type(refs, json_type_array) &&
			   i < json_object_array_length(refs);
	     i++) {
		json_object *ref = json_object_array_get_idx(refs, i);
		json_object *ctl = cache_json_get(ref, "controller");
		const char *uid = cache_json_str(ref, "uid");
		if (!ctl || !json_object_get_boolean(ctl) || !uid)
			continue;
		if (strcmp(uid, s->uid) == 0) {
			*ret = 1;
		} else if (snapshot_earlier(s, cache_json_str(ref, "kind"),
					    cache_json_str(ref, "name"), uid,
					    managed && strcmp(managed, "kinfer.io") == 0)) {
			*ret = -2;
			snprintf(prev_uid, 64, "%s", uid);
		}
	}
	json_object_put(o);
	return 0;
}

/*
 * The public Service lost its selector (it had one before scaleToZero):
 * the Endpoints and EndpointSlice controllers leave what they made for it
 * (they skip Services without a selector), and the mirroring controller
 * would copy those Endpoints into a slice. Both go, so kube-proxy sees
 * only kinfer's slice.
 */
static int drop_controller_endpoints(struct reconcile_ctx *ctx, const struct snapshot *s)
{
	char path[1024], sel[400];
	struct kube_status st;
	struct kube_opts o = { .label_selector = sel };
	int r;

	r = kube_delete(ctx->client, &res_endpoints, s->ns, s->name, NULL, NULL, &st);
	if (r < 0 && r != -ENOENT)
		return api_error(ctx, r, "delete Endpoints", s->ns, s->name, &st);
	snprintf(sel, sizeof(sel),
		 "kubernetes.io/service-name=%s,"
		 "endpointslice.kubernetes.io/managed-by in "
		 "(endpointslice-controller.k8s.io,endpointslicemirroring-controller.k8s.io)",
		 s->name);
	r = kube_path(path, sizeof(path), &kube_res_endpointslices, s->ns, NULL, NULL, &o);
	if (r == 0)
		r = kube_request(ctx->client, KUBE_DELETE, "deletecollection", path, NULL, NULL, 0,
				 0, NULL, &st);
	if (r < 0 && r != -ENOENT)
		return api_error(ctx, r, "delete the controllers' EndpointSlices of", s->ns,
				 s->name, &st);
	return 0;
}

/* rv (when not NULL) gets the resourceVersion the apply returned. */
static int apply(struct reconcile_ctx *ctx, const struct kube_resource *res, const char *ns,
		 const char *name, json_object *body, char rv[CACHE_RV_MAX])
{
	struct kube_opts o = { .field_manager = KINFER_FIELD_MANAGER, .force = true };
	struct kube_status st;
	json_object *reply = NULL;
	int r = kube_apply(ctx->client, res, ns, name, NULL, body, &o, rv ? &reply : NULL, &st);
	if (r < 0)
		return api_error(ctx, r,
				 res == &kube_res_services ? "apply Service" : "apply EndpointSlice",
				 ns, name, &st);
	if (rv) {
		const char *v = cache_json_str(reply, "metadata.resourceVersion");
		snprintf(rv, CACHE_RV_MAX, "%s", v ? v : "");
	}
	json_object_put(reply);
	return 0;
}

static int sync_private(struct reconcile_ctx *ctx, const struct snapshot *s,
			const struct workload *w, const char *priv, char *err, size_t errlen)
{
	struct cache *sc = manager_cache(ctx->manager, &kind_services);
	char key[400], hash[17] = "";
	char uid[64] = "";
	int state = 0; /* 0 absent, 1 ours, -1 another's, -2 an earlier one's or leaving */

	snprintf(key, sizeof(key), "%s/%s", s->ns, priv);
	cache_read_lock();
	const struct kservice *sv = sc ? (const struct kservice *)cache_get(sc, key) : NULL;
	if (sv && sv->meta.controller_uid && strcmp(sv->meta.controller_uid, s->uid) == 0) {
		state = 1;
		snprintf(hash, sizeof(hash), "%s", sv->applied_hash ? sv->applied_hash : "");
	} else if (sv && (sv->meta.deleted ||
			  snapshot_earlier(s, sv->meta.controller_kind, sv->meta.controller_name,
					   sv->meta.controller_uid, sv->applied_hash != NULL))) {
		/* An earlier service's, or anyone's on its way out (a
		 * finalizer holds it): never applied into, waited for as
		 * snapshot.c does for the Deployment and Service. */
		state = -2;
		if (!sv->meta.deleted)
			snprintf(uid, sizeof(uid), "%s", sv->meta.controller_uid);
	} else if (sv) {
		state = -1;
	}
	cache_read_unlock();
	if (state == -2) {
		snapshot_wait_message(err, errlen, "Service", priv, false, uid);
		return 2;
	}
	if (state < 0) {
		not_ours(err, errlen, "Service", priv, s->ns);
		return 1;
	}
	if (state == 1 && strcmp(hash, w->private_hash) == 0)
		return 0;
	return apply(ctx, &kube_res_services, s->ns, priv, w->private_service, NULL);
}

static int sync_slice(struct reconcile_ctx *ctx, const struct snapshot *s, const char *slice,
		      char *err, size_t errlen, uint64_t *ret_wait)
{
	const struct kinfer_context *k = context_of(ctx);
	struct cache *pc = manager_cache(ctx->manager, &kind_pods);
	struct gather pods, acts;
	struct route_choice *c = NULL;
	json_object *body = NULL;
	char hash[17];
	int r, owner;
	char prev_uid[64];

	const char *act_ns = k && k->activator_namespace ? k->activator_namespace : "kinfer-system";
	int32_t act_port = k && k->activator_port > 0 ? k->activator_port :
							ROUTE_ACTIVATOR_PORT_DEFAULT;
	r = gather_init(&pods, s->ns);
	if (r == 0)
		r = gather_init(&acts, act_ns);
	c = calloc(1, sizeof(*c));
	if (r < 0 || !c) {
		r = -ENOMEM;
		goto out;
	}
	cache_read_lock();
	if (pc) {
		cache_index_foreach(pc, KPOD_BY_SERVICE, s->name, gather_pod, &pods);
		cache_index_foreach(pc, KPOD_BY_COMPONENT, "activator", gather_pod, &acts);
	}
	cache_read_unlock();
	route_choose(pods.pods, pods.n, pod_port(s->spec), acts.pods, acts.n, act_port, c);
	body = route_slice(s->ns, s->name, s->uid, c, hash);
	if (!body) {
		r = -ENOMEM;
		goto out;
	}
	/* What the cache shows: 0 no slice, 1 ours (its hash, its rv), -1
	 * another's or being deleted. */
	struct cache *ec = manager_cache(ctx->manager, &kind_endpointslices);
	char key[400], chash[17] = "", crv[CACHE_RV_MAX] = "";
	int state = 0;
	snprintf(key, sizeof(key), "%s/%s", s->ns, slice);
	cache_read_lock();
	const struct kservice *es = ec ? (const struct kservice *)cache_get(ec, key) : NULL;
	if (es && !es->meta.deleted && es->meta.controller_uid &&
	    strcmp(es->meta.controller_uid, s->uid) == 0) {
		state = 1;
		snprintf(chash, sizeof(chash), "%s", es->applied_hash ? es->applied_hash : "");
		cache_obj_rv_copy(&es->meta, crv, sizeof(crv));
	} else if (es) {
		state = -1;
	}
	cache_read_unlock();

	struct written m = { 0 };
	uint64_t now = ktime_mono_ns();
	bool known = recall(s, &m), same = state == 1 && strcmp(chash, hash) == 0;
	if (same && known && strcmp(m.hash, hash) == 0 && strcmp(m.rv, crv) == 0) {
		/* As we wrote it: from now on the cache, not the write, is
		 * trusted. */
		if (m.sent_ns)
			remember(s, hash, crv, 0);
		goto out;
	}
	if (!same && known && strcmp(m.hash, hash) == 0 && m.sent_ns && now - m.sent_ns < SENT_NS) {
		/* Ours, on its way to the cache: its watch event comes back. */
		*ret_wait = ktime_sooner(*ret_wait, m.sent_ns + SENT_NS - now);
		goto out;
	}
	/* Else: absent, changed by someone else (the resourceVersion moved
	 * past ours), not what it should be, or not known (the first look
	 * after a start, or a slot another service took: a no-op apply unless
	 * someone edited the slice while nobody watched): written, and the
	 * reply's resourceVersion remembered. A slice the cache does not show
	 * as ours is read first: one of that name without kinfer's label is
	 * not in the cache at all. */
	if (state != 1) {
		r = slice_owner(ctx, s, slice, &owner, prev_uid);
		if (r < 0)
			goto out;
		if (owner == -2) {
			/* Its deletion enqueues this key (kinfer's label, its
			 * owner's name); the recheck is the fallback. */
			snapshot_wait_message(err, errlen, "EndpointSlice", slice, false, prev_uid);
			*ret_wait = ktime_sooner(*ret_wait, FOREIGN_RECHECK_NS);
			r = 2;
			goto out;
		}
		if (owner < 0) {
			/* One without kinfer's label is not in the cache: its
			 * removal enqueues nothing, so look again later. */
			not_ours(err, errlen, "EndpointSlice", slice, s->ns);
			*ret_wait = ktime_sooner(*ret_wait, FOREIGN_RECHECK_NS);
			r = 1;
			goto out;
		}
		/* The selector's Endpoints and slices, when the Service had
		 * one before (first write after a start, or a new slice). */
		if (!known || owner == 0) {
			r = drop_controller_endpoints(ctx, s);
			if (r < 0)
				goto out;
		}
	}
	char rv[CACHE_RV_MAX];
	r = apply(ctx, &kube_res_endpointslices, s->ns, slice, body, rv);
	if (r == 0) {
		remember(s, hash, rv, now);
		if (known && strcmp(m.hash, hash) == 0)
			log_info("routing",
				 "namespace=%s name=%s to=%s endpoints=%zu port=%d reason=%s",
				 s->ns, s->name, c->activator ? "activator" : "pods", c->n, c->port,
				 "written again: the slice was deleted or changed");
		else
			log_info("routing", "namespace=%s name=%s to=%s endpoints=%zu port=%d",
				 s->ns, s->name, c->activator ? "activator" : "pods", c->n, c->port);
	}
out:
	json_object_put(body);
	free(c);
	gather_free(&pods);
	gather_free(&acts);
	return r;
}

/* scaleToZero went away: the private Service and the slice go too (the
 * public Service has its selector again, applied before this). */
static int unroute(struct reconcile_ctx *ctx, const struct snapshot *s, const char *priv,
		   const char *slice)
{
	struct cache *sc = manager_cache(ctx->manager, &kind_services);
	struct kube_status st;
	char key[400];
	bool ours;
	int r;

	snprintf(key, sizeof(key), "%s/%s", s->ns, priv);
	cache_read_lock();
	const struct cache_obj *sv = sc ? cache_get(sc, key) : NULL;
	ours = sv && !sv->deleted && sv->controller_uid && strcmp(sv->controller_uid, s->uid) == 0;
	cache_read_unlock();
	if (!ours)
		return 0;
	int owner = 0;
	char prev_uid[64];
	r = slice_owner(ctx, s, slice, &owner, prev_uid);
	if (r < 0)
		return r;
	if (owner > 0) {
		r = kube_delete(ctx->client, &kube_res_endpointslices, s->ns, slice, NULL, NULL, &st);
		if (r < 0 && r != -ENOENT)
			return api_error(ctx, r, "delete EndpointSlice", s->ns, slice, &st);
	}
	remember(s, NULL, NULL, 0);
	r = kube_delete(ctx->client, &kube_res_services, s->ns, priv, NULL, NULL, &st);
	if (r < 0 && r != -ENOENT)
		return api_error(ctx, r, "delete Service", s->ns, priv, &st);
	log_info("routing", "namespace=%s name=%s to=pods reason=%s", s->ns, s->name,
		 "scaleToZero removed");
	return 0;
}

int route_sync(struct reconcile_ctx *ctx, const struct snapshot *s, const struct workload *w,
	       char *err, size_t errlen, uint64_t *ret_wait)
{
	char priv[128], slice[128];
	int r;

	if (route_private_name(s->name, priv, sizeof(priv)) < 0 ||
	    route_slice_name(s->name, slice, sizeof(slice)) < 0) {
		if (!w->scale_to_zero)
			return 0;
		snprintf(err, errlen,
			 "metadata.name: %s is too long for scaleToZero (its Services "
			 "NAME-private and EndpointSlice NAME-kinfer need at most 63 characters)",
			 s->name);
		return 1;
	}
	if (!w->scale_to_zero)
		return unroute(ctx, s, priv, slice);
	r = sync_private(ctx, s, w, priv, err, errlen);
	if (r != 0)
		return r;
	return sync_slice(ctx, s, slice, err, errlen, ret_wait);
}
