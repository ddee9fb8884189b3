/*
 * The autoscaler controller; see autoscale_controller.h. One reconcile is one
 * evaluation:
 *
 *   1. take the InferenceService's snapshot and copy its pods out of the
 *      caches;
 *   2. wait for the evaluation interval (an event in between only
 *      reschedules, except a new generation, evaluated at once);
 *   3. collect the metrics from the source the spec names;
 *   4. evaluate with the service's history, record the result;
 *   5. publish the decision, tell the InferenceService controller (the
 *      handle it gave) when it changed, and record an Event when the
 *      replica count changes.
 *
 * The table of services is guarded by one mutex, held only to find,
 * insert, copy or remove an entry: the work queue never hands one key to
 * two workers, so an entry's history and scrape state are touched by one
 * thread at a time. The table is this row's own data (data_new), made and
 * freed with the manager.
 */
#include "autoscale_controller.h"

#include "autoscale.h"
#include "controls.h"
#include "base64.h"
#include "context.h"
#include "isvc.h"
#include "kinds.h"
#include "log.h"
#include "metrics.h"
#include "metricsource.h"
#include "presets.h"
#include "ratelimit.h"
#include "scalingspec.h"
#include "scaletozero.h"
#include "snapshot.h"
#include "ktime.h"
#include "fnv.h"
#include "text.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TABLE_SLOTS 4096
#define MAX_SERVICES 100000
#define TOKEN_TTL_MS 60000 /* a bearer token is re-read after a minute */
#define TOKEN_MAX 8192

static const char *const result_labels[] = { "result", NULL };
static const struct metric_family fam_evaluations = {
	"kinfer_autoscaler_evaluations_total",
	"Autoscaler evaluations, by result (scaled, steady, held: metrics missing)",
	METRIC_COUNTER,
	result_labels,
	NULL,
	0
};
static const struct metric_family fam_eval_seconds = {
	"kinfer_autoscaler_evaluation_seconds",
	"Time of one evaluation: metrics collection and decision",
	METRIC_HISTOGRAM,
	NULL,
	NULL,
	0
};
static const char *const scrape_labels[] = { "source", "result", NULL };
static const struct metric_family fam_scrapes = {
	"kinfer_autoscaler_scrapes_total",
	"Pod scrapes and Prometheus queries, by source and result (ok, error)",
	METRIC_COUNTER,
	scrape_labels,
	NULL,
	0
};

struct svc {
	char *key;
	struct svc *next;
	struct autoscale_history *history;
	struct metricsource_state *ms;
	uint64_t due_ms; /* monotonic: the next evaluation */
	int64_t generation;
	uint64_t pause_hash; /* of the pause annotations last evaluated */
	bool pause_bad;      /* a pause annotation is invalid (logged once) */
	bool have;           /* decision is set */
	struct autoscale_controller_decision decision;
	char *token; /* Prometheus bearer token, and when read */
	uint64_t token_ms;
	/* scaleToZero's idle clock and zero time; loaded from the status the
	 * first time (a new leader keeps the zero time it finds there). */
	struct scaletozero_state stz;
	bool stz_loaded;
};

struct autoscaler {
	pthread_mutex_t lock;
	struct svc *slots[TABLE_SLOTS];
	size_t n;
	long timeout_ms;
	struct metrics *metrics;
	struct controller *notify; /* told of changed decisions; may be NULL */
};

static int autoscaler_new(const struct controller_env *env, void **ret)
{
	const struct kinfer_context *k = env->shared;
	struct autoscaler *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	pthread_mutex_init(&a->lock, NULL);
	a->timeout_ms = k && k->scrape_timeout_ms > 0 ? k->scrape_timeout_ms : 2000;
	a->metrics = env->metrics;
	*ret = a;
	return 0;
}

static void svc_free(struct svc *s)
{
	if (!s)
		return;
	autoscale_history_free(s->history);
	metricsource_state_free(s->ms);
	free(s->token);
	free(s->key);
	free(s);
}

static void autoscaler_free(void *data)
{
	struct autoscaler *a = data;
	if (!a)
		return;
	for (size_t i = 0; i < TABLE_SLOTS; i++)
		while (a->slots[i]) {
			struct svc *s = a->slots[i];
			a->slots[i] = s->next;
			svc_free(s);
		}
	pthread_mutex_destroy(&a->lock);
	free(a);
}

static size_t slot(const char *key)
{
	return (size_t)(fnv64_str(key) % TABLE_SLOTS);
}

/* Under a->lock. */
static struct svc *find(struct autoscaler *a, const char *key)
{
	for (struct svc *s = a->slots[slot(key)]; s; s = s->next)
		if (strcmp(s->key, key) == 0)
			return s;
	return NULL;
}

static struct svc *find_or_add(struct autoscaler *a, const char *key)
{
	struct svc *s;

	pthread_mutex_lock(&a->lock);
	s = find(a, key);
	if (!s && a->n < MAX_SERVICES && (s = calloc(1, sizeof(*s)))) {
		s->key = strdup(key);
		if (!s->key || autoscale_history_new(&s->history) < 0 ||
		    metricsource_state_new(&s->ms) < 0) {
			svc_free(s);
			s = NULL;
		} else {
			s->next = a->slots[slot(key)];
			a->slots[slot(key)] = s;
			a->n++;
		}
	}
	pthread_mutex_unlock(&a->lock);
	return s;
}

static void forget(struct autoscaler *a, const char *key)
{
	struct svc **pp, *gone = NULL;

	pthread_mutex_lock(&a->lock);
	for (pp = &a->slots[slot(key)]; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->key, key) == 0) {
			gone = *pp;
			*pp = gone->next;
			a->n--;
			break;
		}
	pthread_mutex_unlock(&a->lock);
	svc_free(gone);
}

int autoscale_controller_decision(struct controller *autoscaler, const char *key,
				  struct autoscale_controller_decision *ret)
{
	struct autoscaler *a = controller_data(autoscaler);
	int r = -ENOENT;

	if (!a)
		return -ENOENT;
	if (!key || !ret)
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	struct svc *s = find(a, key);
	if (s && s->have) {
		*ret = s->decision;
		r = 0;
	}
	pthread_mutex_unlock(&a->lock);
	return r;
}

int autoscale_controller_notify(struct controller *autoscaler, struct controller *to)
{
	struct autoscaler *a = controller_data(autoscaler);
	if (!a)
		return -EINVAL;
	a->notify = to;
	return 0;
}

/* ---- what one evaluation reads ----------------------------------------- */

/* The snapshot, what its old status says, and the pods with their state. */
struct input {
	struct snapshot s;
	int32_t old_desired;    /* status.desiredReplicas, -1 = none */
	int64_t old_scale_time; /* status.lastScaleTime, 0 = none */
	struct metricsource_pod *pods;
	char (*pod_names)[254];
	char (*pod_ips)[48];
	size_t n_pods, cap;
	size_t n_draining; /* pods leaving through the drain */
	bool pods_short;   /* an array could not grow */
	/* The pause annotations (autoscale.h), "" when absent. */
	char pause_vals[4][40];
	bool pause_set[4];
	int64_t activation_ms; /* kinfer.io/activation-requested; 0: none */
};

/* The pause annotations out of the cache (the snapshot has no metadata);
 * a value too long for its buffer stays too long to be valid. */
static void take_pause(struct manager *m, const char *key, struct input *in)
{
	struct cache *ic = manager_cache(m, &kind_inferenceservices);
	const char *v[4] = { NULL, NULL, NULL, NULL };

	cache_read_lock();
	const struct isvc *is = (const struct isvc *)cache_get(ic, key);
	if (is) {
		v[0] = is->paused_replicas;
		v[1] = is->paused;
		v[2] = is->paused_scale_in;
		v[3] = is->paused_scale_out;
		in->activation_ms = is->activation_requested_ms;
	}
	for (size_t i = 0; i < 4; i++) {
		in->pause_set[i] = v[i] != NULL;
		if (v[i] && strlen(v[i]) >= sizeof(in->pause_vals[i]))
			snprintf(in->pause_vals[i], sizeof(in->pause_vals[i]), "(too long)");
		else if (v[i])
			snprintf(in->pause_vals[i], sizeof(in->pause_vals[i]), "%s", v[i]);
	}
	cache_read_unlock();
}

/* What the annotations say now; a bad value is left out and said in why. */
static int pause_of(const struct input *in, int32_t current, struct autoscale_pause *ret, char *why,
		    size_t why_len)
{
	const char *v[4];

	for (size_t i = 0; i < 4; i++)
		v[i] = in->pause_set[i] ? in->pause_vals[i] : NULL;
	return autoscale_pause_parse(v[0], v[1], v[2], v[3], current, ret, why, why_len);
}

/* A digest of the annotations: a change is evaluated at once. */
static uint64_t pause_hash(const struct input *in)
{
	uint64_t h = FNV64_INIT;

	for (size_t i = 0; i < 4; i++)
		h = fnv64_add_str(fnv64_add_byte(h, in->pause_set[i] ? 1 : 2), in->pause_vals[i]);
	return h;
}

static void input_free(struct input *in)
{
	snapshot_free(&in->s);
	free(in->pods);
	free(in->pod_names);
	free(in->pod_ips);
}

/* Grow the pod arrays (the caller's arrays start small: most services
 * have a handful of pods; one has at most METRICSOURCE_MAX_PODS). */
static bool grow(struct input *in)
{
	size_t cap = in->cap ? in->cap * 2 : 16;
	void *a, *b, *c;

	if (cap > METRICSOURCE_MAX_PODS)
		cap = METRICSOURCE_MAX_PODS;
	if (cap <= in->cap)
		return false;
	a = realloc(in->pods, cap * sizeof(*in->pods));
	if (a)
		in->pods = a;
	b = a ? realloc(in->pod_names, cap * sizeof(*in->pod_names)) : NULL;
	if (b)
		in->pod_names = b;
	c = b ? realloc(in->pod_ips, cap * sizeof(*in->pod_ips)) : NULL;
	if (c)
		in->pod_ips = c;
	if (!c) {
		in->pods_short = true;
		return false;
	}
	in->cap = cap;
	return true;
}

static int gather_pod(const struct cache_obj *o, void *ud)
{
	struct input *in = ud;
	const struct kpod *p = (const struct kpod *)o;
	size_t k = in->n_pods;

	if (strcmp(o->ns, in->s.ns) != 0 || (k == in->cap && !grow(in)))
		return 0;
	snprintf(in->pod_names[k], sizeof(in->pod_names[k]), "%s", cache_obj_name(o));
	kpod_ip_copy(p, in->pod_ips[k], sizeof(in->pod_ips[k]));
	/* The HPA's groups: going away or draining are left out; not
	 * ready (loading the model, warming up) count as unready. */
	bool draining = p->warm_reason && strcmp(p->warm_reason, "Draining") == 0;
	in->n_draining += draining && !o->deleted;
	if (o->deleted || p->phase == KPHASE_SUCCEEDED || p->phase == KPHASE_FAILED || draining)
		in->pods[k].state = AUTOSCALE_POD_IGNORED;
	else if (p->ready == KCOND_TRUE)
		in->pods[k].state = AUTOSCALE_POD_READY;
	else
		in->pods[k].state = AUTOSCALE_POD_UNREADY;
	in->n_pods++;
	return 0;
}

/*
 * The snapshot and, when autoscaled, the pods. 0; -ENOENT when the
 * InferenceService is gone; -ENOMEM (never taken for "gone"); -EBADMSG.
 */
static int take_input(struct manager *m, const char *key, struct input *in)
{
	struct cache *pc = manager_cache(m, &kind_pods);
	int r;

	memset(in, 0, sizeof(*in));
	in->old_desired = -1;
	r = snapshot_take(m, key, &in->s);
	if (r < 0)
		return r;
	in->old_desired = (int32_t)cache_json_int(in->s.status, "desiredReplicas", -1);
	in->old_scale_time = ktime_parse_rfc3339(cache_json_str(in->s.status, "lastScaleTime"));
	if (!in->s.scaling)
		return 0;
	take_pause(m, key, in);
	cache_read_lock();
	cache_index_foreach(pc, KPOD_BY_SERVICE, in->s.name, gather_pod, in);
	cache_read_unlock();
	if (in->pods_short)
		return -ENOMEM;
	/* Pointers into the arrays only now: they moved while growing. */
	for (size_t k = 0; k < in->n_pods; k++) {
		in->pods[k].name = in->pod_names[k];
		in->pods[k].ip = in->pod_ips[k];
	}
	return 0;
}

/* ---- the metrics request ----------------------------------------------- */

/* The bearer token from spec.scaling.metricsSource.prometheus's Secret,
 * re-read after TOKEN_TTL_MS. NULL with err when it cannot be read. */
static const char *bearer_token(struct reconcile_ctx *ctx, struct svc *s, const char *ns,
				json_object *ref, uint64_t now_ms, char *err, size_t errlen)
{
	const char *name = cache_json_str(ref, "name"), *k = cache_json_str(ref, "key");
	json_object *secret = NULL;
	struct kube_status st;
	unsigned char *raw = NULL;
	size_t n = 0;

	if (s->token && now_ms - s->token_ms < TOKEN_TTL_MS)
		return s->token;
	if (!name || !k) {
		snprintf(err, errlen, "bearerTokenSecretRef needs name and key");
		return NULL;
	}
	if (kube_get(ctx->client, &kube_res_secrets, ns, name, NULL, &secret, &st) < 0) {
		snprintf(err, errlen, "cannot read Secret %.60s/%.100s: %.150s", ns, name,
			 st.message);
		return NULL;
	}
	json_object *data = cache_json_get(secret, "data"), *v = NULL;
	if (data)
		json_object_object_get_ex(data, k, &v);
	const char *b64 = v ? json_object_get_string(v) : NULL;
	if (!b64 || base64_decode(b64, strlen(b64), &raw, &n) < 0 || n == 0 || n > TOKEN_MAX) {
		snprintf(err, errlen, "Secret %.60s/%.100s has no usable key %.60s", ns, name, k);
		json_object_put(secret);
		free(raw);
		return NULL;
	}
	json_object_put(secret);
	while (n > 0 && (raw[n - 1] == '\n' || raw[n - 1] == '\r'))
		n--;
	free(s->token);
	s->token = strndup((const char *)raw, n);
	free(raw);
	s->token_ms = now_ms;
	return s->token;
}

/* Everything of spec the request needs; err says what is wrong. */
static int build_request(struct reconcile_ctx *ctx, struct autoscaler *a, struct svc *s,
			 const struct input *in, const struct scalingspec *sc,
			 struct metricsource_request *rq, char *err, size_t errlen)
{
	json_object *scaling = cache_json_get(in->s.spec, "scaling");
	json_object *src = cache_json_get(scaling, "metricsSource");
	json_object *metrics = cache_json_get(scaling, "metrics");
	enum isvc_framework fw = ISVC_VLLM;
	const struct preset *pr;

	isvc_framework_parse(cache_json_str(in->s.spec, "model.framework"), &fw);
	pr = preset_for(fw);
	memset(rq, 0, sizeof(*rq));
	rq->kind = METRICSOURCE_PODS;
	if (cache_json_str(src, "type") &&
	    metricsource_kind_parse(cache_json_str(src, "type"), &rq->kind) < 0) {
		snprintf(err, errlen, "spec.scaling.metricsSource.type: unknown source %.40s",
			 cache_json_str(src, "type"));
		return -EINVAL;
	}
	rq->ns = in->s.ns;
	rq->service = in->s.name;
	rq->framework = fw;
	rq->spec = &sc->spec;
	for (size_t i = 0; i < sc->spec.n_metrics; i++)
		rq->queries[i] = cache_json_str(json_object_array_get_idx(metrics, i), "query");
	preset_endpoint(pr, in->s.spec, NULL, &rq->port, &rq->path);
	rq->timeout_ms = a->timeout_ms;
	rq->pods = in->pods;
	rq->n_pods = in->n_pods;
	if (rq->kind == METRICSOURCE_PROMETHEUS) {
		json_object *prom = cache_json_get(src, "prometheus");
		rq->url = cache_json_str(prom, "url");
		long t = (long)cache_json_int(prom, "timeoutSeconds", 0);
		if (t > 0)
			rq->timeout_ms = t * KTIME_MSEC_PER_SEC;
		if (!rq->url) {
			snprintf(err, errlen, "spec.scaling.metricsSource.prometheus.url is missing");
			return -EINVAL;
		}
		json_object *ref = cache_json_get(prom, "bearerTokenSecretRef");
		if (ref) {
			rq->token = bearer_token(ctx, s, in->s.ns, ref, ktime_mono_ms(), err, errlen);
			if (!rq->token)
				return -EIO;
		}
	}
	return 0;
}

/* ---- scale to zero (issue 16) ------------------------------------------- */

/* The metrics that say a pod has work: requests waiting, running, served. */
static const enum autoscale_metric_type activity_types[3] = { AUTOSCALE_QUEUE_DEPTH,
							      AUTOSCALE_CONCURRENCY,
							      AUTOSCALE_REQUESTS_PER_SECOND };

/*
 * The spec the metrics are collected for when the service scales to zero:
 * its own, plus the activity metrics its framework exports that it does
 * not list, at the end (so its own keep their indices). ret_idx[j] is the
 * index of activity_types[j], -1 when the framework has none.
 */
static void activity_spec(const struct autoscale_spec *sp, enum isvc_framework fw,
			  enum metricsource_kind kind, struct autoscale_spec *ret, int ret_idx[3])
{
	*ret = *sp;
	for (size_t j = 0; j < 3; j++) {
		ret_idx[j] = -1;
		if (!metricsource_supports(fw, activity_types[j], kind))
			continue;
		for (size_t i = 0; i < ret->n_metrics; i++)
			if (ret->metrics[i].type == activity_types[j])
				ret_idx[j] = (int)i;
		if (ret_idx[j] < 0 && ret->n_metrics < AUTOSCALE_MAX_METRICS) {
			ret->metrics[ret->n_metrics] = (struct autoscale_metric_spec){
				activity_types[j], 1
			};
			ret->activation[ret->n_metrics] = 0;
			ret_idx[j] = (int)ret->n_metrics++;
		}
	}
}

/*
 * What the ready pods say: busy when one has work waiting or running or
 * served requests since the last scrape; known when every ready pod (at
 * least one) gave its gauges (a rate needs two scrapes, so it is not
 * required: a new pod's first look counts on its gauges).
 */
static void activity(const struct autoscale_pod *pods, size_t n, const int idx[3], bool *ret_known,
		     bool *ret_busy)
{
	size_t ready = 0, read = 0;

	*ret_busy = false;
	for (size_t k = 0; k < n; k++) {
		bool all = true, any = false;
		if (pods[k].state != AUTOSCALE_POD_READY)
			continue;
		ready++;
		for (size_t j = 0; j < 3; j++) {
			int i = idx[j];
			if (i < 0)
				continue;
			bool have = (pods[k].present >> i & 1) && isfinite(pods[k].values[i]);
			if (have && pods[k].values[i] > 0)
				*ret_busy = true;
			any |= have;
			if (!have && activity_types[j] != AUTOSCALE_REQUESTS_PER_SECOND)
				all = false;
		}
		read += all && any;
	}
	*ret_known = ready > 0 && read == ready;
}

/* The zero time and the last activation the status holds, the first time
 * this leader looks at the service. */
static void stz_load(struct svc *s, const struct input *in)
{
	json_object *st = cache_json_get(in->s.status, "scaling");

	if (s->stz_loaded)
		return;
	s->stz_loaded = true;
	s->stz.zero_at_ms = ktime_parse_rfc3339_us(cache_json_str(st, "scaledToZeroAt")) / 1000;
	s->stz.activation_ms = ktime_parse_rfc3339_us(cache_json_str(st, "lastActivation")) / 1000;
	if (s->stz.zero_at_ms < 0)
		s->stz.zero_at_ms = 0;
	if (s->stz.activation_ms < 0)
		s->stz.activation_ms = 0;
}

/* ---- the decision ------------------------------------------------------- */

static const char *limited_message(const char *reason, const struct autoscale_spec *sp, char *buf,
				   size_t len)
{
	if (strcmp(reason, "TooManyReplicas") == 0)
		snprintf(buf, len,
			 "the desired replica count is more than the maximum replica count (%d)",
			 sp->max_replicas);
	else if (strcmp(reason, "TooFewReplicas") == 0)
		snprintf(buf, len,
			 "the desired replica count is less than the minimum replica count (%d)",
			 sp->min_replicas);
	else if (strcmp(reason, "ScaleUpLimit") == 0)
		snprintf(buf, len,
			 "the desired replica count is increasing faster than the maximum "
			 "scale rate (behavior.scaleUp.policies)");
	else if (strcmp(reason, "ScaleDownLimit") == 0)
		snprintf(buf, len,
			 "the desired replica count is decreasing faster than the maximum "
			 "scale rate (behavior.scaleDown.policies)");
	else if (strcmp(reason, "ScaleDownStabilized") == 0)
		snprintf(buf, len,
			 "recent recommendations were higher than current one, applying the "
			 "highest recent recommendation (behavior.scaleDown.stabilizationWindowSeconds)");
	else if (strcmp(reason, "ScaleUpStabilized") == 0)
		snprintf(buf, len,
			 "recent recommendations were lower than current one, applying the "
			 "lowest recent recommendation (behavior.scaleUp.stabilizationWindowSeconds)");
	else
		snprintf(buf, len, "the desired count is within the acceptable range");
	return buf;
}

static void decide(const struct input *in, const struct scalingspec *sc,
		   const struct autoscale_result *res, const struct metricsource_result *mr,
		   const char *source_error, int64_t last_scale,
		   struct autoscale_controller_decision *d)
{
	const struct autoscale_spec *sp = &sc->spec;
	struct status_scaling *st = &d->status;
	char buf[256];

	memset(d, 0, sizeof(*d));
	d->generation = in->s.generation;
	d->desired = res->desired;
	st->active = res->active;
	text_copy(st->active_reason, sizeof(st->active_reason), res->active_reason);
	if (source_error) {
		st->active = false;
		text_copy(st->active_reason, sizeof(st->active_reason), "FailedGetMetrics");
		snprintf(st->active_message, sizeof(st->active_message), "holding %d replicas: %s",
			 res->current, source_error);
	} else if (res->active) {
		snprintf(st->active_message, sizeof(st->active_message),
			 "the autoscaler computed the replica count from %s",
			 res->metric >= 0 ? autoscale_metric_type_name(sp->metrics[res->metric].type) :
					    "the metrics");
	} else {
		/* Say which metric is missing and why, in the source's words. */
		size_t off = (size_t)snprintf(st->active_message, sizeof(st->active_message), "%s",
					      res->message);
		for (size_t i = 0; i < sp->n_metrics && off < sizeof(st->active_message); i++) {
			if (res->metrics[i].valid)
				continue;
			const char *why = mr && mr->errors[i][0] ? mr->errors[i] :
								   res->metrics[i].error;
			off += (size_t)snprintf(st->active_message + off,
						sizeof(st->active_message) - off, "; %s: %s",
						autoscale_metric_type_name(sp->metrics[i].type),
						why ? why : "no value");
		}
	}
	const char *lr = res->limited ? res->limited_reason : NULL;
	if (!lr && res->able_reason && strstr(res->able_reason, "Stabilized") &&
	    res->recommendation != res->desired)
		lr = res->able_reason;
	st->limited = lr != NULL && !source_error && res->active;
	text_copy(st->limited_reason, sizeof(st->limited_reason),
		  st->limited ? lr : "DesiredWithinRange");
	text_copy(st->limited_message, sizeof(st->limited_message),
		  limited_message(st->limited_reason, sp, buf, sizeof(buf)));
	st->last_scale_time = last_scale;
	st->n_metrics = sp->n_metrics;
	for (size_t i = 0; i < sp->n_metrics && i < 8; i++) {
		text_copy(st->metrics[i].type, sizeof(st->metrics[i].type),
			  autoscale_metric_type_name(sp->metrics[i].type));
		st->metrics[i].has_value = !source_error && res->metrics[i].valid &&
					   isfinite(res->metrics[i].current);
		st->metrics[i].value = st->metrics[i].has_value ? res->metrics[i].current : 0;
		st->metrics[i].target = sp->metrics[i].target;
	}
}

/* "QueueDepth 7.5 above target 5" or "all metrics below target". */
static void why_scaled(const struct autoscale_spec *sp, const struct autoscale_result *res,
		       char *buf, size_t len)
{
	if (res->paused || res->fallback) {
		snprintf(buf, len, "%s", res->message);
	} else if (res->desired > res->current && res->metric >= 0) {
		const struct autoscale_metric_status *m = &res->metrics[res->metric];
		snprintf(buf, len, "%s %.4g above target %.4g",
			 autoscale_metric_type_name(sp->metrics[res->metric].type), m->current,
			 m->target);
	} else if (res->desired > res->current) {
		snprintf(buf, len, "%s",
			 res->limited_reason ? res->limited_reason : "below minReplicas");
	} else {
		size_t off = (size_t)snprintf(buf, len, "all metrics below target");
		for (size_t i = 0; i < sp->n_metrics && off < len; i++)
			if (res->metrics[i].valid)
				off += (size_t)snprintf(buf + off, len - off,
							"%s %s %.4g (target %.4g)", i ? "," : ":",
							autoscale_metric_type_name(sp->metrics[i].type),
							res->metrics[i].current,
							res->metrics[i].target);
	}
}

static bool same_decision(const struct autoscale_controller_decision *a,
			  const struct autoscale_controller_decision *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

static void count(struct autoscaler *a, const struct metric_family *f, const char *l1,
		  const char *l2, double v)
{
	const char *lv[] = { l1, l2 };
	metric_add(metrics_series(a->metrics, f, lv), v);
}

/* The Events of the controls: panic start and end (Knative logs them;
 * a person wants them next to the rescales), fallback start. */
static void controls_events(struct reconcile_ctx *ctx, const struct input *in,
			    const struct scalingspec *sc, const struct autoscale_result *res)
{
	char note[256];

	if (res->panic_started) {
		snprintf(note, sizeof(note), "Panic mode: %s", res->message);
		context_event(ctx, "kinfer.io/v1alpha1", "InferenceService", in->s.ns, in->s.name,
			      in->s.uid, "Normal", "PanicStarted", "Scale", note);
		log_info("autoscaler panic", "isvc=%s/%s %s", in->s.ns, in->s.name, res->message);
	}
	if (res->panic_ended) {
		snprintf(note, sizeof(note),
			 "Panic mode ended: demand stayed below %d%% of the ready "
			 "replicas for %d s",
			 sc->spec.panic.threshold_percent, sc->spec.panic.stable_window_seconds);
		context_event(ctx, "kinfer.io/v1alpha1", "InferenceService", in->s.ns, in->s.name,
			      in->s.uid, "Normal", "PanicEnded", "Scale", note);
		log_info("autoscaler panic ended", "isvc=%s/%s", in->s.ns, in->s.name);
	}
	if (res->fallback && res->state.failures == sc->spec.fallback.failure_threshold + 1) {
		snprintf(note, sizeof(note), "%s", res->message);
		context_event(ctx, "kinfer.io/v1alpha1", "InferenceService", in->s.ns, in->s.name,
			      in->s.uid, "Warning", "Fallback", "Scale", note);
	}
}

/*
 * The current size, read from the workload as the HPA reads /scale: the
 * Deployment's replicas. One exception: while the InferenceService
 * controller drains toward a smaller decision (the last one, or the
 * status's after a change of leader), the Deployment keeps its replicas
 * until the pods have left (or a rollout has finished); that decision is
 * the size being carried out.
 * A decision outside minReplicas..maxReplicas (0 while disabled, say) is
 * never carried out, so it never stands for the current size.
 */
static int32_t current_replicas(const struct svc *s, const struct input *in,
				const struct scalingspec *sc)
{
	const struct kdeployment *d = &in->s.dep;
	int32_t last = s->have ? s->decision.desired : in->old_desired;
	/* Draining, or waiting for a rollout to finish first (drain.h). */
	bool shrinking = in->n_draining > 0 || d->observed_generation < d->generation ||
			 d->updated < d->replicas;
	if (last >= 0 && last < d->spec_replicas && last >= sc->spec.min_replicas &&
	    last <= sc->spec.max_replicas && shrinking)
		return last;
	return d->spec_replicas;
}

static enum reconcile_result evaluate(struct reconcile_ctx *ctx, struct autoscaler *a,
				      struct svc *s, const struct input *in,
				      const struct scalingspec *sc, int64_t now_ms)
{
	struct autoscale_pod *pods = calloc(in->n_pods ? in->n_pods : 1, sizeof(*pods));
	struct metricsource_result *mr = calloc(1, sizeof(*mr));
	struct metricsource_request rq;
	struct autoscale_result res;
	struct autoscale_controller_decision d;
	struct autoscale_spec *xs = NULL, *hs = NULL;
	bool stz = sc->scale_to_zero.set && sc->spec.min_replicas == 0;
	enum scaletozero_action za = SCALETOZERO_NONE;
	struct scaletozero_input zi = { 0 };
	int idx[3] = { -1, -1, -1 };
	char err[512] = "", why[320], note[512];
	const char *source_error = NULL;
	uint64_t t0 = ktime_mono_ns();
	int r;

	enum reconcile_result out = RECONCILE_ERROR;

	if (stz) {
		xs = malloc(sizeof(*xs));
		hs = malloc(sizeof(*hs));
	}
	if (!pods || !mr || (stz && (!xs || !hs))) {
		snprintf(ctx->error, sizeof(ctx->error), "out of memory");
		goto free_buffers;
	}
	r = build_request(ctx, a, s, in, sc, &rq, err, sizeof(err));
	if (r == 0 && stz) {
		/* Collect the activity metrics too (one scrape per pod). */
		activity_spec(&sc->spec, rq.framework, rq.kind, xs, idx);
		rq.spec = xs;
	}
	if (r == 0) {
		rq.now_ms = now_ms;
		r = metricsource_collect(&rq, s->ms, pods, mr);
		if (r < 0)
			snprintf(err, sizeof(err), "metrics collection failed: %s", strerror(-r));
		count(a, &fam_scrapes, rq.kind == METRICSOURCE_PODS ? "Pods" : "Prometheus", "ok",
		      (double)mr->scraped);
		count(a, &fam_scrapes, rq.kind == METRICSOURCE_PODS ? "Pods" : "Prometheus",
		      "error", (double)mr->failed);
	}
	int32_t current = current_replicas(s, in, sc);
	struct autoscale_pause pause;
	char pause_why[160];
	bool pause_bad = pause_of(in, current, &pause, pause_why, sizeof(pause_why)) < 0;
	if (pause_bad && !s->pause_bad)
		log_warn("autoscaler pause annotation ignored", "isvc=%s/%s why=\"%s\"", in->s.ns,
			 in->s.name, pause_why);
	s->pause_bad = pause_bad;
	const struct autoscale_spec *use = &sc->spec;
	if (stz) {
		int32_t lo = 0, hi = sc->spec.max_replicas;
		stz_load(s, in);
		autoscale_bounds(&sc->spec, now_ms, &lo, &hi, NULL);
		zi = (struct scaletozero_input){
			.idle_seconds = sc->scale_to_zero.idle_seconds,
			.now_ms = now_ms,
			.current = current,
			.floor = lo,
			.max_replicas = hi,
			.pinned = !pause_bad && pause.replicas_set,
			.scale_in_paused = !pause_bad && pause.scale_in,
			.scale_out_paused = !pause_bad && pause.scale_out,
			.activation_ms = in->activation_ms,
		};
		if (r == 0)
			activity(pods, in->n_pods, idx, &zi.known, &zi.busy);
		za = scaletozero_decide(&zi, &s->stz);
		if (za == SCALETOZERO_NONE || za == SCALETOZERO_TO_ZERO) {
			/* Only idleness takes it to zero: the metrics' floor is 1. */
			*hs = sc->spec;
			hs->min_replicas = 1;
			use = hs;
		}
	}
	struct autoscale_input ai = {
		.spec = use,
		.current_replicas = current,
		.pods = pods,
		.n_pods = in->n_pods,
		.service = &mr->service,
		.now_ms = now_ms,
		.pause = &pause,
		.zero_is_below_min = true,
	};
	if (r < 0) {
		/* No source at all: hold, as with every metric missing. */
		source_error = err;
		ai.n_pods = 0;
		ai.service = NULL;
	}
	autoscale_history_attach(s->history, &ai);
	r = autoscale_evaluate(&ai, &res);
	if (r < 0) {
		snprintf(ctx->error, sizeof(ctx->error), "autoscale %s/%s: %s", in->s.ns,
			 in->s.name, strerror(-r));
		goto free_buffers;
	}
	if (stz)
		scaletozero_apply(za, &zi, &res);
	/* No source: the decision on no metrics at all (hold, or the
	 * fallback once due; a pause still pins). */
	autoscale_history_record(s->history, &sc->spec, &res, now_ms);
	int64_t last = s->have ? s->decision.status.last_scale_time : in->old_scale_time;
	if (res.rescale)
		last = now_ms / KTIME_MSEC_PER_SEC;
	decide(in, sc, &res, mr, source_error, last, &d);
	controls_status(&sc->spec, &res, &d.status);
	if (stz) {
		d.status.scale_to_zero = true;
		d.status.scaled_to_zero_at_ms = s->stz.zero_at_ms;
		d.status.last_activation_ms = s->stz.activation_ms;
		d.status.waking = s->stz.woken_ms != 0;
	}
	bool changed = !s->have || !same_decision(&d, &s->decision);
	/* The last decision already said 0 (the drain is still under way, or
	 * the Deployment does not show it yet): no second Event. */
	bool was_zero = s->have ? s->decision.desired == 0 : current == 0;
	pthread_mutex_lock(&a->lock);
	s->decision = d;
	s->have = true;
	pthread_mutex_unlock(&a->lock);

	controls_events(ctx, in, sc, &res);
	/* A wake or a scale to zero the last decision already said is not
	 * said again. */
	bool said = (za == SCALETOZERO_TO_ZERO && was_zero) || (za == SCALETOZERO_WAKE && !was_zero);
	if (res.rescale && (za == SCALETOZERO_TO_ZERO || za == SCALETOZERO_WAKE) && said) {
		/* Nothing new. */
	} else if (res.rescale && za == SCALETOZERO_TO_ZERO) {
		snprintf(note, sizeof(note),
			 "Scaling to zero: no request and no queued work for %d s "
			 "(spec.scaling.scaleToZero.idleSeconds); draining %d replica%s",
			 zi.idle_seconds, res.current, res.current == 1 ? "" : "s");
		context_event(ctx, "kinfer.io/v1alpha1", "InferenceService", in->s.ns, in->s.name,
			      in->s.uid, "Normal", "ScaledToZero", "Scale", note);
		log_info("autoscaler scale to zero", "isvc=%s/%s from=%d idle_s=%d", in->s.ns,
			 in->s.name, res.current, zi.idle_seconds);
	} else if (res.rescale && za == SCALETOZERO_WAKE) {
		char t[KTIME_MICRO_LEN];
		ktime_format(s->stz.woken_ms * 1000, 3, t, sizeof(t));
		snprintf(note, sizeof(note),
			 "New size: %d (was 0); reason: a request arrived at zero "
			 "replicas (activation requested at %s)",
			 res.desired, t);
		context_event(ctx, "kinfer.io/v1alpha1", "InferenceService", in->s.ns, in->s.name,
			      in->s.uid, "Normal", "SuccessfulRescale", "Scale", note);
		log_info("autoscaler scale from zero",
			 "isvc=%s/%s to=%d activation=%s write_after_ms=%lld", in->s.ns, in->s.name,
			 res.desired, t, (long long)(now_ms - s->stz.woken_ms));
	} else if (res.rescale) {
		why_scaled(&sc->spec, &res, why, sizeof(why));
		snprintf(note, sizeof(note), "New size: %d (was %d); reason: %s", res.desired,
			 res.current, why);
		context_event(ctx, "kinfer.io/v1alpha1", "InferenceService", in->s.ns, in->s.name,
			      in->s.uid, "Normal", "SuccessfulRescale", "Scale", note);
		log_info("autoscaler rescale", "isvc=%s/%s from=%d to=%d reason=%s", in->s.ns,
			 in->s.name, res.current, res.desired, why);
	} else if (!d.status.active && (changed || !s->have)) {
		log_warn("autoscaler holding", "isvc=%s/%s replicas=%d why=\"%s\"", in->s.ns,
			 in->s.name, current, d.status.active_message);
	}
	count(a, &fam_evaluations,
	      res.rescale     ? "scaled" :
	      d.status.active ? "steady" :
				"held",
	      NULL, 1);
	metric_observe(metrics_series(a->metrics, &fam_eval_seconds, NULL),
		       ktime_ns_to_s(ktime_mono_ns() - t0));
	if (changed && a->notify)
		controller_enqueue(a->notify, s->key);
	out = RECONCILE_REQUEUE_AFTER;
free_buffers:
	free(pods);
	free(mr);
	free(xs);
	free(hs);
	return out;
}

static enum reconcile_result reconcile(struct reconcile_ctx *ctx, const char *key)
{
	struct autoscaler *a = ctx->data;
	struct scalingspec sc;
	struct input in;
	enum reconcile_result res = RECONCILE_OK;
	char err[512];
	int r;

	if (!a)
		return RECONCILE_OK;
	r = take_input(ctx->manager, key, &in);
	if (r == -ENOENT || (r == 0 && !in.s.scaling)) {
		forget(a, key);
		goto free_input;
	}
	if (r < 0) {
		snprintf(ctx->error, sizeof(ctx->error), "%s: %s", key,
			 r == -EBADMSG ? "spec or status cannot be parsed" : strerror(-r));
		res = r == -EBADMSG ? RECONCILE_TERMINAL : RECONCILE_ERROR;
		goto free_input;
	}
	if (scalingspec_from_json(cache_json_get(in.s.spec, "scaling"), &sc, err, sizeof(err)) < 0) {
		snprintf(ctx->error, sizeof(ctx->error), "%s/%s: %s", in.s.ns, in.s.name, err);
		forget(a, key);
		res = RECONCILE_TERMINAL;
		goto free_input;
	}
	struct svc *s = find_or_add(a, key);
	if (!s) {
		snprintf(ctx->error, sizeof(ctx->error),
			 "cannot track %s: out of memory or over %d "
			 "autoscaled services",
			 key, MAX_SERVICES);
		res = RECONCILE_ERROR;
		goto free_input;
	}
	uint64_t mono = ktime_mono_ms();
	uint64_t period = (uint64_t)controls_interval(&sc.spec, sc.interval_seconds) *
			  KTIME_MSEC_PER_SEC;
	uint64_t ph = pause_hash(&in);
	/* An activation for a service at (or going to) zero is evaluated at
	 * once: the activator holds requests until a pod is warm. */
	bool at_zero = in.s.have_dep &&
		       (in.s.dep.spec_replicas == 0 || (s->have && s->decision.desired == 0));
	bool wake = sc.scale_to_zero.set && sc.spec.min_replicas == 0 && at_zero &&
		    scaletozero_may_wake(&s->stz, in.activation_ms);
	if (s->due_ms && mono < s->due_ms && s->generation == in.s.generation &&
	    s->pause_hash == ph && !wake) {
		ctx->requeue_after_ns = (s->due_ms - mono) * KTIME_NSEC_PER_MSEC;
		res = RECONCILE_REQUEUE_AFTER;
		goto free_input;
	}
	s->generation = in.s.generation;
	s->pause_hash = ph;
	s->due_ms = mono + period;
	if (!in.s.have_dep) {
		/* Nothing to scale yet: the InferenceService controller is
		 * creating the Deployment. */
		ctx->requeue_after_ns = period * KTIME_NSEC_PER_MSEC;
		res = RECONCILE_REQUEUE_AFTER;
		goto free_input;
	}
	res = evaluate(ctx, a, s, &in, &sc, ktime_wall_ms());
	if (res == RECONCILE_REQUEUE_AFTER)
		ctx->requeue_after_ns = period * KTIME_NSEC_PER_MSEC;
free_input:
	input_free(&in);
	return res;
}

static const struct controller_watch watches[] = {
	{ .kind = &kind_inferenceservices, .map = NULL },
};

const struct controller_def autoscale_controller = {
	.name = "autoscaler",
	.watches = watches,
	.n_watches = sizeof(watches) / sizeof(watches[0]),
	.reconcile = reconcile,
	.workers = 4,
	.data_new = autoscaler_new,
	.data_free = autoscaler_free,
};
