/*
 * Workload translation. The Deployment:
 *
 * - one container from the framework preset, overridden by the spec
 *   (image, args, env, port, health path, metrics endpoint);
 * - GPUs per sharing mode: exclusive -> nvidia.com/gpu, time-slicing and
 *   mps -> the shared resource the device plugin advertises, mig ->
 *   nvidia.com/mig-<profile>; product and memory become node selection on
 *   GPU feature discovery labels; the nvidia.com/gpu toleration;
 * - the kinfer.io/warmed-up readiness gate, so a pod joins the Service only
 *   once warm;
 * - a rolling update that adds before it removes (maxUnavailable 0), a
 *   preStop pause and a termination grace period above the drain timeout.
 */
#include "workload.h"

#include "route.h"

#include "isvc.h"
#include "kinds.h"
#include "presets.h"
#include "quantity.h"
#include "fnv.h"
#include "text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static json_object *jstr(const char *s)
{
	return json_object_new_string(s ? s : "");
}
static json_object *jint(int64_t v)
{
	return json_object_new_int64(v);
}

static void put(json_object *o, const char *k, json_object *v)
{
	json_object_object_add(o, k, v);
}

static json_object *obj(void)
{
	return json_object_new_object();
}

static const char *sget(json_object *o, const char *path)
{
	return cache_json_str(o, path);
}

static int64_t iget(json_object *o, const char *path, int64_t dflt)
{
	return cache_json_int(o, path, dflt);
}

/* FNV-1a 64 of the compact JSON, as 16 hex digits. */
static void hash_of(json_object *o, char out[17])
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE);
	uint64_t h = fnv64_str(s);
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}

int workload_selector(const char *name, char *buf, size_t len)
{
	return (size_t)snprintf(buf, len, "%s=%s", KINFER_SERVICE_LABEL, name) < len ? 0 :
										       -ENAMETOOLONG;
}

static json_object *labels(const char *name, const char *model)
{
	json_object *l = obj();
	put(l, "app.kubernetes.io/name", jstr(name));
	put(l, "app.kubernetes.io/managed-by", jstr("kinfer"));
	put(l, "app.kubernetes.io/component", jstr("model-server"));
	put(l, KINFER_SERVICE_LABEL, jstr(name));
	/* A label value: 63 characters of [A-Za-z0-9._-]; model names fit the
	 * CRD's pattern, others are left out rather than refused. */
	if (model && strlen(model) <= 63 &&
	    strspn(model, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
		    strlen(model))
		put(l, "kinfer.io/model", jstr(model));
	return l;
}

json_object *workload_owner_refs(const char *name, const char *uid)
{
	json_object *a = json_object_new_array(), *r = obj();
	put(r, "apiVersion", jstr("kinfer.io/v1alpha1"));
	put(r, "kind", jstr("InferenceService"));
	put(r, "name", jstr(name));
	put(r, "uid", jstr(uid));
	put(r, "controller", json_object_new_boolean(1));
	put(r, "blockOwnerDeletion", json_object_new_boolean(1));
	json_object_array_add(a, r);
	return a;
}

static json_object *meta(const char *ns, const char *name, const char *uid, const char *model)
{
	json_object *m = obj();
	put(m, "name", jstr(name));
	put(m, "namespace", jstr(ns));
	put(m, "labels", labels(name, model));
	put(m, "ownerReferences", workload_owner_refs(name, uid));
	return m;
}

/* The GPU resource name and count for the sharing mode. */
static int gpu_resource(json_object *gpu, const struct workload_options *o, char *name, size_t len,
			int64_t *ret_count, char *err, size_t errlen)
{
	enum isvc_sharing mode = ISVC_EXCLUSIVE;
	int64_t count = iget(gpu, "count", 0);
	const char *sharing = sget(gpu, "sharing");

	*ret_count = count;
	name[0] = '\0';
	if (count <= 0)
		return 0;
	if (sharing && isvc_sharing_parse(sharing, &mode) < 0)
		return text_errf(err, errlen, -EINVAL,
				 "spec.resources.gpu.sharing: unknown mode \"%s\"", sharing);
	switch (mode) {
	case ISVC_EXCLUSIVE:
		snprintf(name, len, "nvidia.com/gpu");
		break;
	case ISVC_TIME_SLICING:
	case ISVC_MPS:
		snprintf(name, len, "%s",
			 o && o->shared_gpu_resource ? o->shared_gpu_resource :
						       "nvidia.com/gpu.shared");
		break;
	case ISVC_MIG: {
		const char *p = sget(gpu, "migProfile");
		if (!p || !*p)
			return text_errf(err, errlen, -EINVAL,
					 "spec.resources.gpu.migProfile: required with sharing mig");
		snprintf(name, len, "nvidia.com/mig-%s", p);
		break;
	}
	}
	return 0;
}

/* A quantity field that may be written as a number (int-or-string). */
static const char *quantity_field(json_object *spec, const char *path, char *buf, size_t len)
{
	json_object *v = cache_json_get(spec, path);
	if (!v)
		return NULL;
	if (json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) {
		snprintf(buf, len, "%s", json_object_get_string(v));
		return buf;
	}
	return NULL;
}

static json_object *resources(json_object *spec, const char *gpu_name, int64_t gpus)
{
	json_object *r = obj(), *req = obj(), *lim = obj();
	char cpu_num[32], mem_num[32];
	const char *cpu = quantity_field(spec, "resources.cpu", cpu_num, sizeof(cpu_num));
	const char *mem = quantity_field(spec, "resources.memory", mem_num, sizeof(mem_num));
	if (cpu) {
		put(req, "cpu", jstr(cpu));
		put(lim, "cpu", jstr(cpu));
	}
	if (mem) {
		put(req, "memory", jstr(mem));
		put(lim, "memory", jstr(mem));
	}
	if (gpus > 0) {
		char n[32];
		snprintf(n, sizeof(n), "%lld", (long long)gpus);
		put(req, gpu_name, jstr(n));
		put(lim, gpu_name, jstr(n));
	}
	put(r, "requests", req);
	put(r, "limits", lim);
	return r;
}

static json_object *probe(const char *path, int32_t port, int period, int failures)
{
	json_object *p = obj(), *get = obj();
	put(get, "path", jstr(path));
	put(get, "port", jint(port));
	put(p, "httpGet", get);
	put(p, "periodSeconds", jint(period));
	put(p, "failureThreshold", jint(failures));
	put(p, "timeoutSeconds", jint(5));
	return p;
}

/*
 * The preset's command or args with {uri}, {name} and {port} filled in.
 * Room for the longest the CRD allows (uri 2048, name 253); past it the
 * spec is refused, naming the field: an argument is never dropped (a
 * server started without --model= would serve something else).
 */
#define ARG_MAX_LEN 4096

static json_object *string_array(const char *const *items, const char *uri, const char *name,
				 int32_t port, char *err, size_t errlen)
{
	json_object *a = json_object_new_array();
	char buf[ARG_MAX_LEN];
	for (size_t i = 0; items && items[i]; i++) {
		if (preset_expand(items[i], uri, name, port, buf, sizeof(buf)) < 0) {
			text_errf(err, errlen, -EINVAL,
				  "spec.model.uri: %zu characters make the "
				  "server's argument %.20s... longer than %d characters",
				  uri ? strlen(uri) : 0, items[i], ARG_MAX_LEN - 1);
			json_object_put(a);
			return NULL;
		}
		json_object_array_add(a, jstr(buf));
	}
	return a;
}

static json_object *container(json_object *spec, const struct preset *pr, const char *name,
			      const char *gpu_name, int64_t gpus, int32_t port, int32_t drain_s,
			      char *err, size_t errlen)
{
	json_object *c = obj(), *ports = json_object_new_array(), *p;
	const char *image = sget(spec, "image");
	const char *uri = sget(spec, "model.uri"), *model = sget(spec, "model.name");
	const char *health = sget(spec, "healthPath");
	int32_t mport;

	preset_endpoint(pr, spec, NULL, &mport, NULL);
	if (!image)
		image = pr->image;
	if (!image) {
		json_object_put(c);
		json_object_put(ports);
		text_errf(err, errlen, -EINVAL, "spec.image: required for framework %s", pr->name);
		return NULL;
	}
	json_object *cmd = pr->command ? string_array(pr->command, uri, model, port, err, errlen) :
					 NULL;
	json_object *args = string_array(pr->args, uri, model, port, err, errlen);
	if ((pr->command && !cmd) || !args) {
		json_object_put(cmd);
		json_object_put(args);
		json_object_put(c);
		json_object_put(ports);
		return NULL;
	}
	put(c, "name", jstr("model-server"));
	put(c, "image", jstr(image));
	if (cmd)
		put(c, "command", cmd);
	json_object *extra = cache_json_get(spec, "args");
	for (size_t i = 0; extra && json_object_is_type(extra, json_type_array) &&
			   i < json_object_array_length(extra);
	     i++)
		json_object_array_add(args, json_object_get(json_object_array_get_idx(extra, i)));
	if (json_object_array_length(args))
		put(c, "args", args);
	else
		json_object_put(args);
	json_object *env = json_object_new_array(), *e;
	e = obj();
	put(e, "name", jstr("KINFER_MODEL_NAME"));
	put(e, "value", jstr(model));
	json_object_array_add(env, e);
	e = obj();
	put(e, "name", jstr("KINFER_MODEL_URI"));
	put(e, "value", jstr(uri));
	json_object_array_add(env, e);
	json_object *uenv = cache_json_get(spec, "env");
	for (size_t i = 0; uenv && json_object_is_type(uenv, json_type_array) &&
			   i < json_object_array_length(uenv);
	     i++)
		json_object_array_add(env, json_object_get(json_object_array_get_idx(uenv, i)));
	put(c, "env", env);
	p = obj();
	put(p, "name", jstr("http"));
	put(p, "containerPort", jint(port));
	put(p, "protocol", jstr("TCP"));
	json_object_array_add(ports, p);
	if (mport != port) {
		p = obj();
		put(p, "name", jstr("metrics"));
		put(p, "containerPort", jint(mport));
		put(p, "protocol", jstr("TCP"));
		json_object_array_add(ports, p);
	}
	put(c, "ports", ports);
	if (!health)
		health = pr->health_path;
	/* Loading a large model takes minutes: the startup probe allows 30 min,
	 * then readiness and liveness take over (the kubelet runs the readiness
	 * probe at once then). It asks every second, not every 10 s: the
	 * model's first second up is when its warm-up can start, so a coarse
	 * period adds up to a whole period to every cold start (measured on
	 * the real node, a model loading in 2 s: started at +10 s with 10 s). */
	put(c, "startupProbe", probe(health, port, 1, ISVC_STARTUP_WINDOW_S / 1));
	put(c, "readinessProbe", probe(health, port, 5, 3));
	put(c, "livenessProbe", probe(health, port, 10, 6));
	put(c, "resources", resources(spec, gpu_name, gpus));
	/* Pods deleted by someone else (node drain, kubectl delete) still get
	 * time for in-flight requests: the kubelet pauses before SIGTERM. */
	json_object *lc = obj(), *ps = obj(), *sl = obj();
	put(sl, "seconds", jint(drain_s < 30 ? drain_s : 30));
	put(ps, "sleep", sl);
	put(lc, "preStop", ps);
	put(c, "lifecycle", lc);
	(void)name;
	return c;
}

static json_object *tolerations(json_object *spec, int64_t gpus)
{
	json_object *t = json_object_new_array(), *u = cache_json_get(spec, "scheduling.tolerations");
	if (gpus > 0) {
		json_object *g = obj();
		put(g, "key", jstr("nvidia.com/gpu"));
		put(g, "operator", jstr("Exists"));
		put(g, "effect", jstr("NoSchedule"));
		json_object_array_add(t, g);
	}
	for (size_t i = 0;
	     u && json_object_is_type(u, json_type_array) && i < json_object_array_length(u); i++)
		json_object_array_add(t, json_object_get(json_object_array_get_idx(u, i)));
	return t;
}

/* nodeSelector (product, user's) and, for memory, node affinity. */
static void node_selection(json_object *pod, json_object *spec, int64_t gpus, char *err,
			   size_t errlen, int *r)
{
	json_object *sel = obj(), *user = cache_json_get(spec, "scheduling.nodeSelector");
	const char *product = sget(spec, "resources.gpu.product");
	const char *mem = sget(spec, "resources.gpu.memory");

	if (user && json_object_is_type(user, json_type_object)) {
		json_object_object_foreach(user, k, v) put(sel, k, json_object_get(v));
	}
	if (gpus > 0 && product && *product)
		put(sel, "nvidia.com/gpu.product", jstr(product));
	if (json_object_object_length(sel))
		put(pod, "nodeSelector", sel);
	else
		json_object_put(sel);
	if (gpus > 0 && mem && *mem) {
		int64_t bytes;
		if (quantity_parse(mem, &bytes) < 0) {
			*r = text_errf(err, errlen, -EINVAL,
				       "spec.resources.gpu.memory: \"%s\" is not a quantity", mem);
			return;
		}
		/* GFD labels gpu.memory in MiB per GPU: more than (need - 1). */
		int64_t mib = (bytes + (1 << 20) - 1) >> 20;
		char gt[32];
		snprintf(gt, sizeof(gt), "%lld", (long long)(mib - 1));
		json_object *aff = obj(), *na = obj(), *req = obj(),
			    *terms = json_object_new_array(), *term = obj(),
			    *exprs = json_object_new_array(), *e = obj(),
			    *vals = json_object_new_array();
		put(e, "key", jstr("nvidia.com/gpu.memory"));
		put(e, "operator", jstr("Gt"));
		json_object_array_add(vals, jstr(gt));
		put(e, "values", vals);
		json_object_array_add(exprs, e);
		put(term, "matchExpressions", exprs);
		json_object_array_add(terms, term);
		put(req, "nodeSelectorTerms", terms);
		put(na, "requiredDuringSchedulingIgnoredDuringExecution", req);
		put(aff, "nodeAffinity", na);
		put(pod, "affinity", aff);
	}
}

static json_object *deployment(const char *ns, const char *name, const char *uid, json_object *spec,
			       int32_t replicas, const struct workload_options *o, char *err,
			       size_t errlen, int *r)
{
	enum isvc_framework fw = ISVC_VLLM;
	const char *fws = sget(spec, "model.framework");
	const char *model = sget(spec, "model.name");
	char gpu_name[128];
	int64_t gpus;

	if (fws && isvc_framework_parse(fws, &fw) < 0) {
		*r = text_errf(err, errlen, -EINVAL,
			       "spec.model.framework: unknown framework \"%s\"", fws);
		return NULL;
	}
	const struct preset *pr = preset_for(fw);
	int32_t port = (int32_t)iget(spec, "port", pr->port);
	if (port <= 0) {
		*r = text_errf(err, errlen, -EINVAL, "spec.port: required for framework %s",
			       pr->name);
		return NULL;
	}
	*r = gpu_resource(cache_json_get(spec, "resources.gpu"), o, gpu_name, sizeof(gpu_name),
			  &gpus, err, errlen);
	if (*r < 0)
		return NULL;
	int32_t drain_s = (int32_t)iget(spec, "drain.timeoutSeconds", ISVC_DRAIN_TIMEOUT_S_DEFAULT);
	json_object *c = container(spec, pr, name, gpu_name, gpus, port, drain_s, err, errlen);
	if (!c) {
		*r = -EINVAL;
		return NULL;
	}
	json_object *d = obj(), *ds = obj(), *sel = obj(), *ml = obj(), *tmpl = obj(),
		    *tmeta = obj(), *pod = obj(), *cs = json_object_new_array(),
		    *gates = json_object_new_array(), *g = obj(), *strat = obj(), *ru = obj(),
		    *ann = obj();
	put(d, "apiVersion", jstr("apps/v1"));
	put(d, "kind", jstr("Deployment"));
	put(d, "metadata", meta(ns, name, uid, model));
	put(ds, "replicas", jint(replicas));
	put(ml, KINFER_SERVICE_LABEL, jstr(name));
	put(sel, "matchLabels", ml);
	put(ds, "selector", sel);
	put(ru, "maxSurge", jint(o && o->no_surge ? 0 : 1));
	put(ru, "maxUnavailable", jint(o && o->no_surge ? 1 : 0));
	put(strat, "type", jstr("RollingUpdate"));
	put(strat, "rollingUpdate", ru);
	put(ds, "strategy", strat);
	put(ds, "revisionHistoryLimit", jint(3));
	/* What kinfer's scheduler reads: the priority, and a service that
	 * does not want cached nodes preferred. */
	json_object *tl = labels(name, model),
		    *pcn = cache_json_get(spec, "scheduling.preferCachedNodes");
	const char *prio = sget(spec, "scheduling.priority");
	put(tl, KINFER_PRIORITY_LABEL,
	    jstr(prio && (!strcmp(prio, "low") || !strcmp(prio, "high")) ? prio : "normal"));
	put(tmeta, "labels", tl);
	if (pcn && json_object_is_type(pcn, json_type_boolean) && !json_object_get_boolean(pcn))
		put(ann, KINFER_PREFER_CACHED, jstr("false"));
	put(ann, "kinfer.io/model-uri", jstr(sget(spec, "model.uri")));
	if (sget(spec, "model.revision"))
		put(ann, "kinfer.io/model-revision", jstr(sget(spec, "model.revision")));
	put(tmeta, "annotations", ann);
	put(tmpl, "metadata", tmeta);
	json_object_array_add(cs, c);
	put(pod, "containers", cs);
	put(g, "conditionType", jstr(KINFER_GATE));
	json_object_array_add(gates, g);
	put(pod, "readinessGates", gates);
	/* Above the drain timeout, so the kubelet never kills a draining pod. */
	put(pod, "terminationGracePeriodSeconds", jint(drain_s + 30));
	put(pod, "enableServiceLinks", json_object_new_boolean(0));
	if (o && o->scheduler_name)
		put(pod, "schedulerName", jstr(o->scheduler_name));
	json_object *tol = tolerations(spec, gpus);
	if (json_object_array_length(tol))
		put(pod, "tolerations", tol);
	else
		json_object_put(tol);
	node_selection(pod, spec, gpus, err, errlen, r);
	put(tmpl, "spec", pod);
	put(ds, "template", tmpl);
	put(d, "spec", ds);
	if (*r < 0) {
		json_object_put(d);
		return NULL;
	}
	return d;
}

/*
 * The Service NAME (selector: the pods), or for a service with
 * scaleToZero the public NAME without a selector (kinfer writes its
 * EndpointSlice, route.h) and the private NAME-private with the selector.
 */
static json_object *service(const char *ns, const char *name, const char *uid, json_object *spec,
			    const char *svc_name, bool selector)
{
	enum isvc_framework fw = ISVC_VLLM;
	isvc_framework_parse(sget(spec, "model.framework"), &fw);
	const struct preset *pr = preset_for(fw);
	int32_t port, mport;
	preset_endpoint(pr, spec, &port, &mport, NULL);
	json_object *s = obj(), *ss = obj(), *sel = obj(), *ports = json_object_new_array(), *p;

	put(s, "apiVersion", jstr("v1"));
	put(s, "kind", jstr("Service"));
	put(s, "metadata", meta(ns, name, uid, sget(spec, "model.name")));
	put(json_object_object_get(s, "metadata"), "name", jstr(svc_name));
	put(ss, "type", jstr("ClusterIP"));
	put(sel, KINFER_SERVICE_LABEL, jstr(name));
	if (selector)
		put(ss, "selector", sel);
	else
		json_object_put(sel);
	p = obj();
	put(p, "name", jstr("http"));
	put(p, "port", jint(port));
	put(p, "targetPort", jstr("http"));
	put(p, "protocol", jstr("TCP"));
	json_object_array_add(ports, p);
	if (mport != port) {
		p = obj();
		put(p, "name", jstr("metrics"));
		put(p, "port", jint(mport));
		put(p, "targetPort", jstr("metrics"));
		put(p, "protocol", jstr("TCP"));
		json_object_array_add(ports, p);
	}
	put(ss, "ports", ports);
	put(s, "spec", ss);
	return s;
}

bool workload_budget_wanted(json_object *spec, int32_t replicas)
{
	json_object *on = cache_json_get(spec, "drain.disruptionBudget");
	struct isvc_replicas n;

	if (on && json_object_is_type(on, json_type_boolean) && !json_object_get_boolean(on))
		return false;
	isvc_spec_replicas(spec, &n);
	return (n.scaling ? n.max : n.replicas) >= 2 || replicas >= 2;
}

json_object *workload_pod_labels(const struct workload *w)
{
	return cache_json_get(w->deployment, "spec.template.metadata.labels");
}

/* spec.drain.maxUnavailable: 1 or more, or "N%" from 1% to 100% (the
 * CRD's rule); anything else (a CRD from before the field) is 1. The
 * default writes the body it always had, so an upgrade rewrites nothing. */
static json_object *max_unavailable(json_object *spec)
{
	json_object *v = cache_json_get(spec, "drain.maxUnavailable");
	const char *s;
	char *end;
	long pct;

	if (v && json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 1)
		return jint(json_object_get_int64(v) > INT32_MAX ? INT32_MAX :
								   json_object_get_int64(v));
	if (!v || !json_object_is_type(v, json_type_string))
		return jint(1);
	s = json_object_get_string(v);
	errno = 0;
	pct = strtol(s, &end, 10);
	if (s[0] >= '1' && s[0] <= '9' && !errno && pct >= 1 && pct <= 100 && strcmp(end, "%") == 0)
		return jstr(s);
	return jint(1);
}

/*
 * NAME's PodDisruptionBudget: voluntary evictions (a node drain, the
 * cluster autoscaler) take spec.drain.maxUnavailable replicas at a time
 * (default one). maxUnavailable, not
 * minAvailable: the disruption controller counts against the
 * Deployment's replicas as they are now, so an autoscaled service is
 * covered at any size, and one replica alone can still be evicted (a
 * budget never blocks a drain for good). AlwaysAllow: a pod not Ready
 * (warming up, crash-looping) can always be evicted, so a service that
 * never becomes healthy does not hold a node.
 */
static json_object *budget(const char *ns, const char *name, const char *uid, json_object *spec)
{
	json_object *b = obj(), *bs = obj(), *sel = obj(), *ml = obj();

	put(b, "apiVersion", jstr("policy/v1"));
	put(b, "kind", jstr("PodDisruptionBudget"));
	put(b, "metadata", meta(ns, name, uid, sget(spec, "model.name")));
	put(ml, KINFER_SERVICE_LABEL, jstr(name));
	put(sel, "matchLabels", ml);
	put(bs, "selector", sel);
	put(bs, "maxUnavailable", max_unavailable(spec));
	put(bs, "unhealthyPodEvictionPolicy", jstr("AlwaysAllow"));
	put(b, "spec", bs);
	return b;
}

/* Hash the body, then record the hash in it. */
static void seal(json_object *o, char hash[17])
{
	hash_of(o, hash);
	json_object *m = json_object_object_get(o, "metadata"), *a = obj();
	put(a, KINFER_HASH_ANNOTATION, jstr(hash));
	put(m, "annotations", a);
}

int workload_build(const char *ns, const char *name, const char *uid, json_object *spec,
		   int32_t replicas, const struct workload_options *o, struct workload *ret,
		   char *err, size_t errlen)
{
	int r = 0;
	memset(ret, 0, sizeof(*ret));
	if (!spec || !json_object_is_type(spec, json_type_object))
		return text_errf(err, errlen, -EINVAL, "spec: missing");
	if (!sget(spec, "model.name") || !sget(spec, "model.uri"))
		return text_errf(err, errlen, -EINVAL, "spec.model: name and uri are required");
	ret->deployment = deployment(ns, name, uid, spec, replicas, o, err, errlen, &r);
	if (!ret->deployment)
		return r < 0 ? r : -EINVAL;
	json_object *z = json_object_object_get(json_object_object_get(spec, "scaling"),
						"scaleToZero");
	ret->scale_to_zero = z && json_object_is_type(z, json_type_object);
	ret->service = service(ns, name, uid, spec, name, !ret->scale_to_zero);
	if (ret->scale_to_zero) {
		char priv[128];
		snprintf(priv, sizeof(priv), "%s" ROUTE_PRIVATE_SUFFIX, name);
		ret->private_service = service(ns, name, uid, spec, priv, true);
		seal(ret->private_service, ret->private_hash);
	}
	if (workload_budget_wanted(spec, replicas)) {
		ret->budget = budget(ns, name, uid, spec);
		seal(ret->budget, ret->budget_hash);
	}
	hash_of(json_object_object_get(json_object_object_get(ret->deployment, "spec"), "template"),
		ret->template_hash);
	seal(ret->deployment, ret->deployment_hash);
	seal(ret->service, ret->service_hash);
	ret->replicas = replicas;
	return 0;
}

void workload_free(struct workload *w)
{
	json_object_put(w->deployment);
	json_object_put(w->service);
	json_object_put(w->private_service);
	json_object_put(w->budget);
	w->deployment = w->service = w->private_service = w->budget = NULL;
}
