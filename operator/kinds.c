/*
 * Projections of the core kinds. Each reads a Kubernetes object's JSON once
 * and keeps a few dozen bytes; the JSON is dropped by the caller.
 */
#include "kinds.h"
#include "text.h"

#include "quantity.h"
#include "ktime.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The registered keys; none until kinds_register_keys. Written once before
 * the informers start, so the projections read it without a lock. */
static const struct kinds_keys no_keys;
static const struct kinds_keys *keys = &no_keys;

void kinds_register_keys(const struct kinds_keys *k)
{
	__atomic_store_n(&keys, k ? k : &no_keys, __ATOMIC_RELEASE);
}

const struct kinds_keys *kinds_registered_keys(void)
{
	return __atomic_load_n(&keys, __ATOMIC_ACQUIRE);
}

/* s, a decimal in [lo, hi] and nothing else, into *ret; false otherwise
 * (NULL, empty, a sign, spaces, trailing text, out of range). */
static bool decimal(const char *s, int64_t lo, int64_t hi, int64_t *ret)
{
	int64_t v = 0;
	if (!s || !*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (hi - (*s - '0')) / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	if (v < lo)
		return false;
	*ret = v;
	return true;
}

/* One label or annotation under a registered key (NULL key: none). */
static const char *meta_key(json_object *json, const char *map, const char *key)
{
	return key ? cache_json_key(cache_json_get(json, map), key) : NULL;
}

enum kcond kinds_cond(json_object *conds, const char *type, const char **ret_reason,
		      int64_t *ret_since)
{
	if (!type || !conds || !json_object_is_type(conds, json_type_array))
		return KCOND_ABSENT;
	for (size_t i = 0; i < json_object_array_length(conds); i++) {
		json_object *c = json_object_array_get_idx(conds, i);
		const char *t = cache_json_str(c, "type");
		if (!t || strcmp(t, type) != 0)
			continue;
		const char *st = cache_json_str(c, "status");
		if (ret_reason)
			*ret_reason = cache_json_str(c, "reason");
		if (ret_since)
			*ret_since = ktime_parse_rfc3339(cache_json_str(c, "lastTransitionTime"));
		if (st && strcmp(st, "True") == 0)
			return KCOND_TRUE;
		if (st && strcmp(st, "False") == 0)
			return KCOND_FALSE;
		return KCOND_UNKNOWN;
	}
	return KCOND_ABSENT;
}

/* ---- pods ------------------------------------------------------------- */

static enum kphase parse_phase(const char *s)
{
	static const char *const names[] = { "Pending", "Running", "Succeeded", "Failed" };
	for (int i = 0; s && i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return (enum kphase)i;
	return KPHASE_UNKNOWN;
}

/* Saturating: a sum past INT64_MAX stays there, so a pod that asks for
 * more than any node has never fits (and never wraps to a small number). */
static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

/* A request (never negative) in the pod's 32 bits: past INT32_MAX it
 * stays there, as sat_add does at INT64_MAX. */
static int32_t sat_int32(int64_t v)
{
	return v > INT32_MAX ? INT32_MAX : v < 0 ? 0 : (int32_t)v;
}

static void req_add(struct kpod_requests *a, const struct kpod_requests *b)
{
	a->cpu_milli = sat_add(a->cpu_milli, b->cpu_milli);
	a->mem_bytes = sat_add(a->mem_bytes, b->mem_bytes);
	a->gpu = sat_add(a->gpu, b->gpu);
	if (!a->gpu_name)
		a->gpu_name = b->gpu_name;
}

static void req_max(struct kpod_requests *a, const struct kpod_requests *b)
{
	if (b->cpu_milli > a->cpu_milli)
		a->cpu_milli = b->cpu_milli;
	if (b->mem_bytes > a->mem_bytes)
		a->mem_bytes = b->mem_bytes;
	if (b->gpu > a->gpu)
		a->gpu = b->gpu;
	if (!a->gpu_name)
		a->gpu_name = b->gpu_name;
}

/* cpu, memory and GPU-like (nvidia.com/...) quantities of one resource
 * list; negative or unparsable quantities count as 0. */
static void list_requests(json_object *list, bool cpu_mem, bool gpus, struct kpod_requests *r)
{
	int64_t v;
	const char *cpu = cache_json_str(list, "cpu"), *mem = cache_json_str(list, "memory");

	if (cpu_mem && cpu && quantity_parse_milli(cpu, &v) == 0 && v > 0)
		r->cpu_milli = sat_add(r->cpu_milli, v);
	if (cpu_mem && mem && quantity_parse(mem, &v) == 0 && v > 0)
		r->mem_bytes = sat_add(r->mem_bytes, v);
	if (!gpus || !list || !json_object_is_type(list, json_type_object))
		return;
	json_object_object_foreach(list, key, val)
	{
		if (strncmp(key, "nvidia.com/", 11) != 0 ||
		    !json_object_is_type(val, json_type_string))
			continue;
		if (quantity_parse(json_object_get_string(val), &v) == 0 && v > 0) {
			r->gpu = sat_add(r->gpu, v);
			r->gpu_name = key;
		}
	}
}

static void container_requests(json_object *c, struct kpod_requests *r)
{
	json_object *req = cache_json_get(c, "resources.requests");
	json_object *lim = cache_json_get(c, "resources.limits");

	memset(r, 0, sizeof(*r));
	list_requests(req, true, false, r);
	/* Extended resources are set in limits (requests default to them). */
	list_requests(lim ? lim : req, false, true, r);
}

/*
 * The pod's effective request, as the scheduler computes it (k8s.io
 * component-helpers resource.PodRequests): the containers summed; each
 * init container runs alone, so the largest one counts when it is larger
 * (plus the restartable "sidecar" init containers started before it, which
 * keep running and are also added to the sum); then spec.overhead.
 */
void kinds_pod_requests(json_object *spec, struct kpod_requests *ret)
{
	struct kpod_requests sum = { 0 }, init_max = { 0 }, sidecars = { 0 }, c;
	json_object *cs = cache_json_get(spec, "containers");
	json_object *ics = cache_json_get(spec, "initContainers");

	for (size_t i = 0;
	     cs && json_object_is_type(cs, json_type_array) && i < json_object_array_length(cs); i++) {
		container_requests(json_object_array_get_idx(cs, i), &c);
		req_add(&sum, &c);
	}
	for (size_t i = 0;
	     ics && json_object_is_type(ics, json_type_array) && i < json_object_array_length(ics);
	     i++) {
		json_object *ic = json_object_array_get_idx(ics, i);
		const char *policy = cache_json_str(ic, "restartPolicy");
		container_requests(ic, &c);
		if (policy && strcmp(policy, "Always") == 0) {
			req_add(&sum, &c);
			req_add(&sidecars, &c);
			c = sidecars;
		} else {
			req_add(&c, &sidecars);
		}
		req_max(&init_max, &c);
	}
	req_max(&sum, &init_max);
	c = (struct kpod_requests){ 0 };
	list_requests(cache_json_get(spec, "overhead"), true, true, &c);
	req_add(&sum, &c);
	*ret = sum;
}

static void pod_requests(struct cache_proj *p, json_object *spec, struct kpod *pod)
{
	struct kpod_requests r;
	kinds_pod_requests(spec, &r);
	pod->cpu_milli = sat_int32(r.cpu_milli);
	pod->mem_bytes = r.mem_bytes;
	pod->gpu = sat_int32(r.gpu);
	cache_proj_intern(p, &pod->gpu_resource, r.gpu_name);
}

/* ---- what the scheduler reads of a pending pod ----------------------- */

void kinds_selector_free(struct intern *t, struct kselector_req *reqs, size_t n)
{
	for (size_t i = 0; reqs && i < n; i++) {
		struct kselector_req *r = &reqs[i];
		intern_put(t, r->key);
		for (size_t v = 0; r->values && v < r->n_values; v++)
			intern_put(t, r->values[v]);
		free(r->values);
	}
	free(reqs);
}

static bool parse_long(const char *s, long long *ret)
{
	char *end;
	if (!s || !*s)
		return false;
	*ret = strtoll(s, &end, 10);
	return *end == '\0';
}

bool kinds_selector_matches(const struct kselector_req *e, const char *value)
{
	long long a, b;

	switch ((enum ksel_op)e->op) {
	case KSEL_EXISTS:
		return value != NULL;
	case KSEL_NOT_EXISTS:
		return value == NULL;
	case KSEL_IN:
	case KSEL_NOT_IN: {
		bool in = false;
		for (size_t v = 0; value && v < e->n_values; v++)
			in = in || (e->values[v] && strcmp(value, e->values[v]) == 0);
		return e->op == KSEL_IN ? in : !in;
	}
	case KSEL_GT:
	case KSEL_LT:
		if (!value || e->n_values != 1 || !parse_long(value, &a) ||
		    !parse_long(e->values[0], &b))
			return false;
		return e->op == KSEL_GT ? a > b : a < b;
	}
	return false;
}

static void sched_free(struct intern *t, struct kpod_sched *s)
{
	for (size_t i = 0; s->node_selector && i < s->n_node_selector; i++) {
		intern_put(t, s->node_selector[i].key);
		intern_put(t, s->node_selector[i].value);
	}
	for (size_t i = 0; s->tolerations && i < s->n_tolerations; i++) {
		intern_put(t, s->tolerations[i].key);
		intern_put(t, s->tolerations[i].value);
		intern_put(t, s->tolerations[i].effect);
	}
	kinds_selector_free(t, s->affinity, s->n_affinity);
	free(s->node_selector);
	free(s->tolerations);
	*s = (struct kpod_sched){ 0 };
}

static void rare_free(struct intern *t, struct kpod_rare *r)
{
	if (!r)
		return;
	sched_free(t, &r->sched);
	intern_put(t, r->waiting_reason);
	intern_put(t, r->template_hash);
	free((char *)r->unschedulable);
	free(r);
}

/* The pod's side block, made on first use (NULL: out of memory). */
static struct kpod_rare *rare_of(struct kpod *pod)
{
	if (!pod->rare)
		pod->rare = calloc(1, sizeof(*pod->rare));
	return pod->rare;
}

/* Drop the side block again when nothing in it is set. */
static void rare_trim(struct intern *t, struct kpod *pod)
{
	const struct kpod_rare *r = pod->rare;

	if (r && !r->sched.n_node_selector && !r->sched.n_tolerations && !r->sched.n_affinity &&
	    !r->waiting_reason && !r->unschedulable && !r->template_hash) {
		rare_free(t, pod->rare);
		pod->rare = NULL;
	}
}

const struct kpod_sched *kpod_sched(const struct kpod *pod)
{
	static const struct kpod_sched none;
	return pod->rare ? &pod->rare->sched : &none;
}

const char *kpod_waiting_reason(const struct kpod *pod)
{
	return pod->rare ? pod->rare->waiting_reason : NULL;
}

const char *kpod_unschedulable(const struct kpod *pod)
{
	return pod->rare ? pod->rare->unschedulable : NULL;
}

const char *kpod_template_hash(const struct kpod *pod)
{
	if (pod->hash_in_owner)
		return strrchr(pod->meta.controller_name, '-') + 1;
	return pod->rare ? pod->rare->template_hash : NULL;
}

#define POD_MAX_SCHED_ITEMS 64 /* selector entries, tolerations, expressions */
#define POD_MAX_VALUES 64      /* values of one expression */

static int pod_node_selector(struct intern *t, json_object *sel, struct kpod_sched *pod)
{
	size_t cnt, k = 0;

	if (!sel || !json_object_is_type(sel, json_type_object))
		return 0;
	cnt = (size_t)json_object_object_length(sel);
	if (cnt > POD_MAX_SCHED_ITEMS)
		return -E2BIG;
	pod->node_selector = calloc(cnt ? cnt : 1, sizeof(*pod->node_selector));
	if (!pod->node_selector)
		return -ENOMEM;
	json_object_object_foreach(sel, key, val)
	{
		pod->node_selector[k].key = intern_get(t, key);
		pod->node_selector[k].value = intern_get(t, json_object_get_string(val));
		k++;
	}
	pod->n_node_selector = (uint16_t)k;
	return 0;
}

static int pod_tolerations(struct intern *t, json_object *tols, struct kpod_sched *pod)
{
	size_t cnt;

	if (!tols || !json_object_is_type(tols, json_type_array))
		return 0;
	cnt = json_object_array_length(tols);
	if (cnt > POD_MAX_SCHED_ITEMS)
		return -E2BIG;
	pod->tolerations = calloc(cnt ? cnt : 1, sizeof(*pod->tolerations));
	if (!pod->tolerations)
		return -ENOMEM;
	for (size_t i = 0; i < cnt; i++) {
		json_object *tj = json_object_array_get_idx(tols, i);
		const char *op = cache_json_str(tj, "operator");
		const char *key = cache_json_str(tj, "key"), *eff = cache_json_str(tj, "effect");
		struct ktoleration *o = &pod->tolerations[i];
		o->key = key && *key ? intern_get(t, key) : NULL;
		o->value = intern_get(t, cache_json_str(tj, "value"));
		o->effect = eff && *eff ? intern_get(t, eff) : NULL;
		o->op = op && strcmp(op, "Exists") == 0 ? KTOL_EXISTS : KTOL_EQUAL;
	}
	pod->n_tolerations = (uint16_t)cnt;
	return 0;
}

static int sel_op(const char *s, uint8_t *ret)
{
	static const char *const names[] = { "In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt" };
	for (uint8_t i = 0; s && i < 6; i++)
		if (strcmp(s, names[i]) == 0) {
			*ret = i;
			return 0;
		}
	return -EINVAL;
}

/* One expression; values are interned one by one. */
int kinds_selector_expr(struct intern *t, json_object *e, uint16_t term, size_t max_values,
			struct kselector_req *r)
{
	json_object *vals = cache_json_get(e, "values");
	size_t nv = vals && json_object_is_type(vals, json_type_array) ?
			    json_object_array_length(vals) :
			    0;

	if (nv > max_values || nv > UINT16_MAX)
		return -E2BIG;
	if (sel_op(cache_json_str(e, "operator"), &r->op) < 0)
		return -EINVAL;
	r->term = term;
	/* Values first: a failure leaves nothing half-built to release. */
	r->values = calloc(nv ? nv : 1, sizeof(*r->values));
	if (!r->values)
		return -ENOMEM;
	r->key = intern_get(t, cache_json_str(e, "key"));
	for (size_t v = 0; v < nv; v++)
		r->values[v] = intern_get(t,
					  json_object_get_string(json_object_array_get_idx(vals, v)));
	r->n_values = (uint16_t)nv;
	return 0;
}

/* requiredDuringSchedulingIgnoredDuringExecution, matchExpressions only
 * (matchFields is refused: kinfer never writes it). */
static int pod_affinity(struct intern *t, json_object *spec, struct kpod_sched *pod)
{
	json_object *terms = cache_json_get(
		spec,
		"affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms");
	size_t total = 0, k = 0;
	int r;

	if (!terms || !json_object_is_type(terms, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(terms); i++) {
		json_object *ex = cache_json_get(json_object_array_get_idx(terms, i),
						 "matchExpressions");
		total += ex && json_object_is_type(ex, json_type_array) ?
				 json_object_array_length(ex) :
				 0;
	}
	if (total > POD_MAX_SCHED_ITEMS || json_object_array_length(terms) > POD_MAX_SCHED_ITEMS)
		return -E2BIG;
	pod->affinity = calloc(total ? total : 1, sizeof(*pod->affinity));
	if (!pod->affinity)
		return -ENOMEM;
	for (size_t i = 0; i < json_object_array_length(terms); i++) {
		json_object *ex = cache_json_get(json_object_array_get_idx(terms, i),
						 "matchExpressions");
		for (size_t j = 0; ex && json_object_is_type(ex, json_type_array) &&
				   j < json_object_array_length(ex);
		     j++) {
			r = kinds_selector_expr(t, json_object_array_get_idx(ex, j), (uint16_t)i,
						POD_MAX_VALUES, &pod->affinity[k]);
			if (r < 0)
				return r;
			pod->n_affinity = (uint16_t)++k;
		}
	}
	return 0;
}

static uint8_t parse_priority(const char *s)
{
	if (s && strcmp(s, "high") == 0)
		return KPRIO_HIGH;
	if (s && strcmp(s, "low") == 0)
		return KPRIO_LOW;
	return KPRIO_NORMAL;
}

static int pod_scheduling(struct cache_proj *p, json_object *json, json_object *spec, struct kpod *pod)
{
	const struct kinds_keys *k = kinds_registered_keys();
	struct intern *t = cache_proj_interns(p);
	const char *pc = meta_key(json, "metadata.annotations", k->prefer_cached);
	int r;

	cache_proj_intern(p, &pod->model, meta_key(json, "metadata.labels", k->model_label));
	pod->priority = parse_priority(meta_key(json, "metadata.labels", k->priority_label));
	pod->avoid_cached = pc && strcmp(pc, "false") == 0;
	json_object *gates = cache_json_get(spec, "schedulingGates");
	pod->gated = gates && json_object_is_type(gates, json_type_array) &&
		     json_object_array_length(gates) > 0;
	if (pod->node)
		return 0;
	if (!rare_of(pod))
		return -ENOMEM;
	r = pod_node_selector(t, cache_json_get(spec, "nodeSelector"), &pod->rare->sched);
	if (r == 0)
		r = pod_tolerations(t, cache_json_get(spec, "tolerations"), &pod->rare->sched);
	if (r == 0)
		r = pod_affinity(t, spec, &pod->rare->sched);
	if (r == 0)
		rare_trim(t, pod); /* none: the pod keeps no block for it */
	/* Constraints past the bounds (or an operator the API would refuse)
	 * must not drop the pod from the cache: every other controller reads
	 * it. The scheduler is told it cannot place it instead. */
	if (r == -E2BIG || r == -EINVAL) {
		pod->sched_unreadable = 1;
		r = 0;
	}
	return r;
}

/* An IPv4 address that reads back the same is kept as its 32 bits. */
static void project_ip(struct cache_proj *p, struct kpod *pod, const char *ip)
{
	struct in_addr a;
	char back[INET_ADDRSTRLEN];

	if (ip && inet_pton(AF_INET, ip, &a) == 1 && inet_ntop(AF_INET, &a, back, sizeof(back)) &&
	    strcmp(back, ip) == 0) {
		pod->pod_ip.v4 = KPOD_IP_V4 | ntohl(a.s_addr);
		return;
	}
	cache_proj_str(p, &pod->pod_ip.text, ip);
}

const char *kpod_ip(const struct kpod *pod, char buf[KPOD_IP_MAX])
{
	struct in_addr a;

	if (!(pod->pod_ip.v4 & KPOD_IP_V4))
		return pod->pod_ip.text;
	a.s_addr = htonl((uint32_t)pod->pod_ip.v4);
	return inet_ntop(AF_INET, &a, buf, KPOD_IP_MAX);
}

void kpod_ip_copy(const struct kpod *pod, char *dst, size_t len)
{
	char buf[KPOD_IP_MAX];

	text_copy(dst, len, kpod_ip(pod, buf));
}

/*
 * Label pod-template-hash: a Deployment's pod carries its ReplicaSet's
 * name's suffix ("<deployment>-<hash>", the ReplicaSet being the pod's
 * controller), so it is read from there (hash_in_owner) and costs no
 * pointer; any other pod keeps it in its side block.
 */
static int pod_template_hash(struct cache_proj *p, json_object *json, struct kpod *pod)
{
	const char *h = cache_json_key(cache_json_get(json, "metadata.labels"), "pod-template-hash");
	const char *owner = pod->meta.controller_name;
	const char *dash = owner ? strrchr(owner, '-') : NULL;

	if (!h)
		return 0;
	if (dash && strcmp(dash + 1, h) == 0) {
		pod->hash_in_owner = 1;
		return 0;
	}
	if (!rare_of(pod))
		return -ENOMEM;
	cache_proj_intern(p, &pod->rare->template_hash, h);
	return 0;
}

static int project_pod(struct cache_proj *p, json_object *json, struct cache_obj *obj)
{
	struct kpod *pod = (struct kpod *)obj;
	json_object *spec = cache_json_get(json, "spec");
	json_object *status = cache_json_get(json, "status");
	json_object *conds = cache_json_get(status, "conditions");
	json_object *gates = cache_json_get(spec, "readinessGates");
	const struct kinds_keys *k = kinds_registered_keys();
	const char *reason = NULL, *cost;
	json_object *cstat;
	int64_t since = 0;
	int r;

	cache_proj_intern(p, &pod->node, cache_json_str(spec, "nodeName"));
	cache_proj_intern(p, &pod->scheduler, cache_json_str(spec, "schedulerName"));
	project_ip(p, pod, cache_json_str(status, "podIP"));
	cache_proj_intern(p, &pod->service, meta_key(json, "metadata.labels", k->service_label));
	r = pod_template_hash(p, json, pod);
	if (r < 0)
		return r;
	const char *component = cache_json_key(cache_json_get(json, "metadata.labels"),
					       "app.kubernetes.io/component");
	pod->activator = component && strcmp(component, "activator") == 0;
	pod->phase = (uint8_t)parse_phase(cache_json_str(status, "phase"));
	pod->started = cache_seconds(ktime_parse_rfc3339(cache_json_str(status, "startTime")));
	pod->ready = (uint8_t)kinds_cond(conds, "Ready", NULL, NULL);
	pod->containers_ready = (uint8_t)kinds_cond(conds, "ContainersReady", NULL, &since);
	pod->containers_ready_since = cache_seconds(since);
	pod->scheduled = (uint8_t)kinds_cond(conds, "PodScheduled", NULL, NULL);
	if (pod->scheduled == KCOND_FALSE)
		for (size_t i = 0; conds && i < json_object_array_length(conds); i++) {
			json_object *c = json_object_array_get_idx(conds, i);
			const char *t = cache_json_str(c, "type");
			const char *m = cache_json_str(c, "message");
			if (!t || strcmp(t, "PodScheduled") != 0 || !m)
				continue;
			if (!rare_of(pod))
				return -ENOMEM;
			if (!pod->rare->unschedulable && !(pod->rare->unschedulable = strdup(m)))
				return -ENOMEM;
		}
	since = 0;
	pod->warmed = (uint8_t)kinds_cond(conds, k->gate, &reason, &since);
	pod->warm_since = cache_seconds(since);
	cache_proj_intern(p, &pod->warm_reason, reason);
	for (size_t i = 0; k->gate && gates && i < json_object_array_length(gates); i++) {
		const char *t = cache_json_str(json_object_array_get_idx(gates, i), "conditionType");
		if (t && strcmp(t, k->gate) == 0)
			pod->has_gate = 1;
	}
	cstat = cache_json_get(status, "containerStatuses");
	for (size_t i = 0; cstat && json_object_is_type(cstat, json_type_array) &&
			   i < json_object_array_length(cstat);
	     i++) {
		json_object *cs = json_object_array_get_idx(cstat, i);
		pod->restarts += (int32_t)cache_json_int(cs, "restartCount", 0);
		if (!cache_json_get(cs, "state.running"))
			pod->stopped = 1;
		const char *w = cache_json_str(cs, "state.waiting.reason");
		if (w && !kpod_waiting_reason(pod)) {
			if (!rare_of(pod))
				return -ENOMEM;
			cache_proj_intern(p, &pod->rare->waiting_reason, w);
		}
	}
	cost = cache_json_key(cache_json_get(json, "metadata.annotations"),
			      "controller.kubernetes.io/pod-deletion-cost");
	if (cost) {
		char *end;
		long long v = strtoll(cost, &end, 10);
		/* The API server takes only an int32 here; anything else is
		 * not a cost. */
		if (end != cost && !*end && v >= INT32_MIN && v <= INT32_MAX) {
			pod->deletion_cost = (int32_t)v;
			pod->has_deletion_cost = 1;
		}
	}
	/* kinfer's own annotations: only what kinfer writes (decimal, in
	 * range) counts; anything else (a hand edit) is none. A count of
	 * INT32_MAX attempts overflowed the next one; "12abc" as a drain's
	 * start was 1970, which skipped the drain; drain writes a start that
	 * is none anew. */
	int64_t v;
	if (decimal(meta_key(json, "metadata.annotations", k->warmup_attempts), 0, 1000000, &v))
		pod->warmup_attempts = (int32_t)v;
	if (decimal(meta_key(json, "metadata.annotations", k->draining_since), 1, UINT32_MAX, &v))
		pod->draining_since = (uint32_t)v;
	pod->warm_restarts = -1;
	if (decimal(meta_key(json, "metadata.annotations", k->warm_restarts), 0, INT32_MAX, &v))
		pod->warm_restarts = (int32_t)v;
	pod_requests(p, spec, pod);
	return pod_scheduling(p, json, spec, pod);
}

static void release_pod(struct intern *t, struct cache_obj *obj)
{
	struct kpod *pod = (struct kpod *)obj;
	intern_put(t, pod->node);
	intern_put(t, pod->scheduler);
	intern_put(t, pod->service);
	intern_put(t, pod->warm_reason);
	intern_put(t, pod->gpu_resource);
	intern_put(t, pod->model);
	rare_free(t, pod->rare);
}

static const char *pod_node(const struct cache_obj *o)
{
	return ((const struct kpod *)o)->node;
}
static const char *pod_service(const struct cache_obj *o)
{
	return ((const struct kpod *)o)->service;
}
static const char *pod_component(const struct cache_obj *o)
{
	return ((const struct kpod *)o)->activator ? "activator" : NULL;
}

static const struct cache_index_def pod_indexes[] = {
	[KPOD_BY_NODE] = { "node", pod_node },
	[KPOD_BY_SERVICE] = { "service", pod_service },
	[KPOD_BY_COMPONENT] = { "component", pod_component },
};

const struct cache_kind kind_pods = {
	.name = "Pod",
	.res = &kube_res_pods,
	.size = sizeof(struct kpod),
	.project = project_pod,
	.release = release_pod,
	.indexes = pod_indexes,
	.n_indexes = 3,
};

/* ---- nodes ------------------------------------------------------------ */

const struct klabel *knode_label(const struct knode *n, const char *key)
{
	for (size_t i = 0; i < n->n_labels; i++)
		if (strcmp(n->labels[i].key, key) == 0)
			return &n->labels[i];
	return NULL;
}

int64_t knode_alloc(const struct knode *n, const char *resource)
{
	for (size_t i = 0; i < n->n_alloc; i++)
		if (strcmp(n->alloc[i].name, resource) == 0)
			return n->alloc[i].milli;
	return 0;
}

#define NODE_MAX_ITEMS 512

static int project_node(struct cache_proj *p, json_object *json, struct cache_obj *obj)
{
	struct knode *n = (struct knode *)obj;
	struct intern *t = cache_proj_interns(p);
	json_object *labels = cache_json_get(json, "metadata.labels");
	json_object *alloc = cache_json_get(json, "status.allocatable");
	json_object *taints = cache_json_get(json, "spec.taints");
	json_object *ub;
	size_t k;

	if (labels && json_object_is_type(labels, json_type_object)) {
		size_t cnt = (size_t)json_object_object_length(labels);
		if (cnt > NODE_MAX_ITEMS)
			return -E2BIG;
		n->labels = calloc(cnt ? cnt : 1, sizeof(*n->labels));
		if (!n->labels)
			return -ENOMEM;
		k = 0;
		json_object_object_foreach(labels, key, val)
		{
			n->labels[k].key = intern_get(t, key);
			n->labels[k].value = intern_get(t, json_object_get_string(val));
			k++;
		}
		n->n_labels = (uint16_t)k;
		cache_proj_intern(p, &n->gpu_product,
				  cache_json_key(labels, "nvidia.com/gpu.product"));
		const char *mem = cache_json_key(labels, "nvidia.com/gpu.memory");
		n->gpu_memory_mib = mem ? strtoll(mem, NULL, 10) : 0;
	}
	if (alloc && json_object_is_type(alloc, json_type_object)) {
		size_t cnt = (size_t)json_object_object_length(alloc);
		if (cnt > NODE_MAX_ITEMS)
			return -E2BIG;
		n->alloc = calloc(cnt ? cnt : 1, sizeof(*n->alloc));
		if (!n->alloc)
			return -ENOMEM;
		k = 0;
		json_object_object_foreach(alloc, key, val)
		{
			int64_t v;
			if (quantity_parse_milli(json_object_get_string(val), &v) < 0)
				continue;
			n->alloc[k].name = intern_get(t, key);
			n->alloc[k].milli = v;
			k++;
		}
		n->n_alloc = (uint16_t)k;
	}
	if (taints && json_object_is_type(taints, json_type_array)) {
		size_t cnt = json_object_array_length(taints);
		if (cnt > NODE_MAX_ITEMS)
			return -E2BIG;
		n->taints = calloc(cnt ? cnt : 1, sizeof(*n->taints));
		if (!n->taints)
			return -ENOMEM;
		for (k = 0; k < cnt; k++) {
			json_object *tj = json_object_array_get_idx(taints, k);
			n->taints[k].key = intern_get(t, cache_json_str(tj, "key"));
			n->taints[k].value = intern_get(t, cache_json_str(tj, "value"));
			n->taints[k].effect = intern_get(t, cache_json_str(tj, "effect"));
		}
		n->n_taints = (uint16_t)cnt;
	}
	n->ready = (uint8_t)kinds_cond(cache_json_get(json, "status.conditions"), "Ready", NULL,
				       NULL);
	const char *util = meta_key(json, "metadata.annotations",
				    kinds_registered_keys()->gpu_utilization);
	char *end;
	long u = util ? strtol(util, &end, 10) : -1;
	n->gpu_util = (int16_t)(util && end != util && u >= 0 && u <= 100 ? u : -1);
	ub = cache_json_get(json, "spec.unschedulable");
	n->unschedulable = ub && json_object_get_boolean(ub);
	return 0;
}

static void release_node(struct intern *t, struct cache_obj *obj)
{
	struct knode *n = (struct knode *)obj;
	for (size_t i = 0; n->labels && i < n->n_labels; i++) {
		intern_put(t, n->labels[i].key);
		intern_put(t, n->labels[i].value);
	}
	for (size_t i = 0; n->alloc && i < n->n_alloc; i++)
		intern_put(t, n->alloc[i].name);
	for (size_t i = 0; n->taints && i < n->n_taints; i++) {
		intern_put(t, n->taints[i].key);
		intern_put(t, n->taints[i].value);
		intern_put(t, n->taints[i].effect);
	}
	intern_put(t, n->gpu_product);
	free(n->labels);
	free(n->alloc);
	free(n->taints);
}

const struct cache_kind kind_nodes = {
	.name = "Node",
	.res = &kube_res_nodes,
	.size = sizeof(struct knode),
	.project = project_node,
	.release = release_node,
};

/* ---- deployments ------------------------------------------------------ */

bool kdeployment_read_status(struct kdeployment *d, json_object *json, const char **ret_reason)
{
	json_object *st = cache_json_get(json, "status");
	json_object *conds = cache_json_get(st, "conditions");

	d->generation = cache_json_int(json, "metadata.generation", 0);
	d->observed_generation = cache_json_int(st, "observedGeneration", 0);
	d->spec_replicas = (int32_t)cache_json_int(json, "spec.replicas", 1);
	d->replicas = (int32_t)cache_json_int(st, "replicas", 0);
	d->ready = (int32_t)cache_json_int(st, "readyReplicas", 0);
	d->updated = (int32_t)cache_json_int(st, "updatedReplicas", 0);
	d->available = (int32_t)cache_json_int(st, "availableReplicas", 0);
	d->unavailable = (int32_t)cache_json_int(st, "unavailableReplicas", 0);
	json_object *surge = cache_json_get(json, "spec.strategy.rollingUpdate.maxSurge");
	d->no_surge = surge && ((json_object_is_type(surge, json_type_int) &&
				 json_object_get_int64(surge) == 0) ||
				(json_object_is_type(surge, json_type_string) &&
				 strcmp(json_object_get_string(surge), "0%") == 0));
	if (!conds)
		return false;
	d->progressing = (uint8_t)kinds_cond(conds, "Progressing", ret_reason, NULL);
	d->available_cond = (uint8_t)kinds_cond(conds, "Available", NULL, NULL);
	d->replica_failure = (uint8_t)kinds_cond(conds, "ReplicaFailure", NULL, NULL);
	return true;
}

static int project_deployment(struct cache_proj *p, json_object *json, struct cache_obj *obj)
{
	struct kdeployment *d = (struct kdeployment *)obj;
	json_object *st = cache_json_get(json, "status");
	json_object *conds = cache_json_get(st, "conditions");
	const struct kinds_keys *k = kinds_registered_keys();
	const char *reason = NULL;

	cache_proj_intern(p, &d->service, meta_key(json, "metadata.labels", k->service_label));
	cache_proj_str(p, &d->applied_hash, meta_key(json, "metadata.annotations", k->applied_hash));
	kdeployment_read_status(d, json, &reason);
	cache_proj_intern(p, &d->progress_reason, reason);
	d->edited = kinds_edited(json);
	/* The message a person needs when the rollout is stuck: the
	 * ReplicaFailure's when there is one (what refused the pods, which
	 * the rollout code reads too), else the Progressing False's. */
	const char *failure = NULL;
	bool replica_failure = false;
	for (size_t i = 0; conds && i < json_object_array_length(conds); i++) {
		json_object *c = json_object_array_get_idx(conds, i);
		const char *t = cache_json_str(c, "type"), *s = cache_json_str(c, "status");
		if (!t || !s)
			continue;
		if (strcmp(t, "ReplicaFailure") == 0 && strcmp(s, "True") == 0) {
			failure = cache_json_str(c, "message");
			replica_failure = true;
		} else if (!replica_failure && strcmp(t, "Progressing") == 0 &&
			   strcmp(s, "False") == 0) {
			failure = cache_json_str(c, "message");
		}
	}
	if (failure)
		cache_proj_str(p, &d->failure_message, failure);
	return 0;
}

static void release_deployment(struct intern *t, struct cache_obj *obj)
{
	struct kdeployment *d = (struct kdeployment *)obj;
	intern_put(t, d->service);
	intern_put(t, d->progress_reason);
}

static const char *deployment_service(const struct cache_obj *o)
{
	return ((const struct kdeployment *)o)->service;
}

static const struct cache_index_def deployment_indexes[] = {
	[KDEPLOY_BY_SERVICE] = { "service", deployment_service },
};

const struct cache_kind kind_deployments = {
	.name = "Deployment",
	.res = &kube_res_deployments,
	.size = sizeof(struct kdeployment),
	.project = project_deployment,
	.release = release_deployment,
	.indexes = deployment_indexes,
	.n_indexes = 1,
	.keep_managed_fields = true,
};

/* ---- edited by others (Deployments and Services) ----------------------- */

bool kinds_edited(json_object *json)
{
	json_object *mf = cache_json_get(json, "metadata.managedFields");
	const char *mine = kinds_registered_keys()->field_manager;

	if (!mine || !mf || !json_object_is_type(mf, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(mf); i++) {
		json_object *e = json_object_array_get_idx(mf, i), *fields;
		const char *manager = cache_json_str(e, "manager");
		const char *sub = cache_json_str(e, "subresource");
		/* The status is the controllers' (kube-controller-manager's). */
		if ((manager && strcmp(manager, mine) == 0) || (sub && strcmp(sub, "status") == 0))
			continue;
		fields = cache_json_get(e, "fieldsV1");
		if (fields && json_object_is_type(fields, json_type_object) &&
		    json_object_object_get_ex(fields, "f:spec", NULL))
			return true;
	}
	return false;
}

/* ---- services --------------------------------------------------------- */

int kservice_project(struct cache_proj *p, json_object *json, struct cache_obj *obj)
{
	struct kservice *s = (struct kservice *)obj;
	cache_proj_str(p, &s->applied_hash,
		       meta_key(json, "metadata.annotations", kinds_registered_keys()->applied_hash));
	s->edited = kinds_edited(json);
	return 0;
}

const struct cache_kind kind_services = {
	.name = "Service",
	.res = &kube_res_services,
	.size = sizeof(struct kservice),
	.project = kservice_project,
	.keep_managed_fields = true,
};

/* ---- pod disruption budgets ------------------------------------------ */

/* Selector entries of one budget (matchLabels and matchExpressions), and
 * values of all its expressions: a list of every service of a team is not
 * rare (the pods' affinity keeps 64 an expression). Past either, see
 * pdb_unreadable. */
#define PDB_MAX_SELECTOR 256
#define PDB_MAX_VALUES 4096

/* A selector past the bounds kinfer keeps (more than PDB_MAX_SELECTOR
 * entries, more than PDB_MAX_VALUES values in all) or with an operator it
 * does not know: the budget is kept, taken to select every pod
 * of its namespace. Skipping it would be worse: kinfer would keep its own
 * budget next to it, and the Eviction API refuses (500) every pod two
 * budgets select, which stops each drain of its node. Stepping aside only
 * leaves the user's budget in charge. */
static int pdb_unreadable(struct intern *t, struct kpdb *b, int err)
{
	kinds_selector_free(t, b->selector, b->n_selector);
	b->selector = NULL;
	b->n_selector = 0;
	b->selects = KPDB_SELECTS_UNREADABLE;
	b->unreadable = err;
	return 0;
}

static int project_pdb(struct cache_proj *p, json_object *json, struct cache_obj *obj)
{
	struct kpdb *b = (struct kpdb *)obj;
	struct intern *t = cache_proj_interns(p);
	json_object *sel = cache_json_get(json, "spec.selector");
	json_object *ml = cache_json_get(sel, "matchLabels");
	json_object *ex = cache_json_get(sel, "matchExpressions");
	size_t n_ml = ml && json_object_is_type(ml, json_type_object) ?
			      (size_t)json_object_object_length(ml) :
			      0;
	size_t n_ex = ex && json_object_is_type(ex, json_type_array) ? json_object_array_length(ex) :
								       0;
	size_t k = 0;

	cache_proj_str(p, &b->applied_hash,
		       meta_key(json, "metadata.annotations", kinds_registered_keys()->applied_hash));
	b->generation = cache_json_int(json, "metadata.generation", 0);
	b->edited = kinds_edited(json);
	if (!sel || !json_object_is_type(sel, json_type_object)) {
		b->selects = KPDB_SELECTS_NONE;
		return 0;
	}
	b->selects = KPDB_SELECTS_SOME;
	if (n_ml + n_ex > PDB_MAX_SELECTOR)
		return pdb_unreadable(t, b, -E2BIG);
	for (size_t i = 0, nv = 0; i < n_ex; i++) {
		json_object *v = cache_json_get(json_object_array_get_idx(ex, i), "values");
		nv += v && json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;
		if (nv > PDB_MAX_VALUES)
			return pdb_unreadable(t, b, -E2BIG);
	}
	if (!n_ml && !n_ex)
		return 0;
	b->selector = calloc(n_ml + n_ex, sizeof(*b->selector));
	if (!b->selector)
		return -ENOMEM;
	if (n_ml) {
		json_object_object_foreach(ml, key, val)
		{
			struct kselector_req *r = &b->selector[k];
			r->values = calloc(1, sizeof(*r->values));
			if (!r->values)
				return -ENOMEM;
			r->op = KSEL_IN;
			r->key = intern_get(t, key);
			r->values[0] = intern_get(t, json_object_get_string(val));
			r->n_values = 1;
			b->n_selector = (uint16_t)++k;
		}
	}
	for (size_t i = 0; i < n_ex; i++) {
		int r = kinds_selector_expr(t, json_object_array_get_idx(ex, i), 0, PDB_MAX_VALUES,
					    &b->selector[k]);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			return pdb_unreadable(t, b, r);
		b->n_selector = (uint16_t)++k;
	}
	return 0;
}

static void release_pdb(struct intern *t, struct cache_obj *obj)
{
	struct kpdb *b = (struct kpdb *)obj;
	kinds_selector_free(t, b->selector, b->n_selector);
}

/* The disruption controller writes a budget's status at every change of
 * its pods: nothing kinfer reads, and no reason to reconcile every
 * InferenceService of the namespace. The selector is in the generation. */
static bool same_pdb(const struct cache_obj *a, const struct cache_obj *b)
{
	const struct kpdb *x = (const struct kpdb *)a, *y = (const struct kpdb *)b;
	return x->generation == y->generation && x->edited == y->edited && x->selects == y->selects &&
	       x->meta.deleted == y->meta.deleted && text_same(x->applied_hash, y->applied_hash) &&
	       text_same(x->meta.controller_uid, y->meta.controller_uid) &&
	       memcmp(&x->meta.uid, &y->meta.uid, sizeof(x->meta.uid)) == 0;
}

static const char *pdb_namespace(const struct cache_obj *o)
{
	return o->ns;
}

static const struct cache_index_def pdb_indexes[] = {
	[KPDB_BY_NAMESPACE] = { "namespace", pdb_namespace },
};

const struct cache_kind kind_pdbs = {
	.name = "PodDisruptionBudget",
	.res = &kube_res_poddisruptionbudgets,
	.size = sizeof(struct kpdb),
	.project = project_pdb,
	.release = release_pdb,
	.same = same_pdb,
	.indexes = pdb_indexes,
	.n_indexes = 1,
	.keep_managed_fields = true,
};

bool kpdb_selects(const struct kpdb *b, json_object *labels)
{
	if (b->selects == KPDB_SELECTS_NONE)
		return false;
	if (b->selects == KPDB_SELECTS_UNREADABLE)
		return true;
	for (size_t i = 0; b->selector && i < b->n_selector; i++) {
		const struct kselector_req *r = &b->selector[i];
		json_object *v = NULL;
		bool has = r->key && labels && json_object_object_get_ex(labels, r->key, &v);
		const char *val = has ? json_object_get_string(v) : NULL;

		/* Gt, Lt: node selector operators, not label selector ones. */
		if (r->op == KSEL_GT || r->op == KSEL_LT ||
		    !kinds_selector_matches(r, has ? (val ? val : "") : NULL))
			return false;
	}
	return true;
}

/* ---- HorizontalPodAutoscalers ------------------------------------------ */

/* scaleTargetRef names a Deployment of the apps group ("apps/v1", or a
 * version to come): the only target kinfer's own objects can be. */
static bool hpa_scales_deployment(json_object *ref)
{
	const char *kind = cache_json_str(ref, "kind"), *api = cache_json_str(ref, "apiVersion");
	return kind && api && strcmp(kind, "Deployment") == 0 && strncmp(api, "apps/", 5) == 0;
}

/* scaleTargetRef names a kinfer.io InferenceService (any version). */
static bool hpa_scales_isvc(json_object *ref)
{
	const char *kind = cache_json_str(ref, "kind"), *api = cache_json_str(ref, "apiVersion");
	return kind && api && strcmp(kind, "InferenceService") == 0 &&
	       strncmp(api, "kinfer.io/", 10) == 0;
}

static int project_hpa(struct cache_proj *p, json_object *json, struct cache_obj *obj)
{
	struct khpa *h = (struct khpa *)obj;
	json_object *ref = cache_json_get(json, "spec.scaleTargetRef");
	int64_t min = cache_json_int(json, "spec.minReplicas", 1);
	int64_t max = cache_json_int(json, "spec.maxReplicas", 0);

	h->min_replicas = min < 0 ? 0 : min > INT32_MAX ? INT32_MAX : (int32_t)min;
	h->max_replicas = max < 0 ? 0 : max > INT32_MAX ? INT32_MAX : (int32_t)max;
	/* Interned, not copied into the block: the index's value must be
	 * there before the block is sized (its links). */
	if (hpa_scales_deployment(ref))
		cache_proj_intern(p, &h->deployment, cache_json_str(ref, "name"));
	else if (hpa_scales_isvc(ref))
		cache_proj_intern(p, &h->isvc, cache_json_str(ref, "name"));
	return 0;
}

static void release_hpa(struct intern *t, struct cache_obj *obj)
{
	intern_put(t, ((struct khpa *)obj)->deployment);
	intern_put(t, ((struct khpa *)obj)->isvc);
}

/* The HPA controller writes the status at every sync (15 s): nothing
 * kinfer reads. An HPA has no metadata.generation (v1.33): its spec's
 * fields kept here are compared. */
static bool same_hpa(const struct cache_obj *a, const struct cache_obj *b)
{
	const struct khpa *x = (const struct khpa *)a, *y = (const struct khpa *)b;
	return x->min_replicas == y->min_replicas && x->max_replicas == y->max_replicas &&
	       x->meta.deleted == y->meta.deleted && text_same(x->deployment, y->deployment) &&
	       text_same(x->isvc, y->isvc) &&
	       memcmp(&x->meta.uid, &y->meta.uid, sizeof(x->meta.uid)) == 0;
}

static const char *hpa_deployment(const struct cache_obj *o)
{
	return ((const struct khpa *)o)->deployment;
}

static const char *hpa_isvc(const struct cache_obj *o)
{
	return ((const struct khpa *)o)->isvc;
}

static const struct cache_index_def hpa_indexes[] = {
	[KHPA_BY_DEPLOYMENT] = { "deployment", hpa_deployment },
	[KHPA_BY_ISVC] = { "inferenceservice", hpa_isvc },
};

const struct cache_kind kind_hpas = {
	.name = "HorizontalPodAutoscaler",
	.res = &kube_res_hpas,
	.size = sizeof(struct khpa),
	.project = project_hpa,
	.release = release_hpa,
	.same = same_hpa,
	.indexes = hpa_indexes,
	.n_indexes = 2,
	.optional_feature = "the ConflictingAutoscaler check",
};

/* ---- metadata only ---------------------------------------------------- */

const struct cache_kind kind_configmaps = {
	.name = "ConfigMap",
	.res = &kube_res_configmaps,
	.size = sizeof(struct cache_obj),
};
