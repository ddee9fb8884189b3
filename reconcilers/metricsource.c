/*
 * The metric sources. See metricsource.h for what each one does; this
 * file has three parts: the table of metric names per framework, the Pods
 * source (fetch with curl multi, then digest the pages), and the
 * Prometheus source (build PromQL, query, parse the JSON answer).
 */
#include "metricsource.h"

#include "promtext.h"
#include "dynbuf.h"
#include "text.h"
#include "ktime.h"

#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_MS 2000
#define MAX_CONNECTIONS 64     /* scrapes of one evaluation at once */
#define PROM_MAX_SAMPLES 10000 /* series in one query answer */
#define RATE_WINDOW "1m"       /* rate() and histogram windows in PromQL */

/* ---- the table -------------------------------------------------------- */

enum how {
	HOW_SUM,  /* a gauge: sum of the pod's series */
	HOW_AVG,  /* a gauge: average of the pod's series (one per GPU) */
	HOW_RATE, /* a counter: increase per second between evaluations */
	HOW_P99,  /* a histogram: the service's P99 over the window */
};

#define FW(x) (1u << (x))
#define ALL_FW (FW(ISVC_VLLM) | FW(ISVC_TRITON) | FW(ISVC_TGI))

struct metric_row {
	unsigned frameworks; /* FW() bits */
	enum autoscale_metric_type type;
	enum how how;
	const char *names[3]; /* alternatives, first found wins */
	double scale;         /* into the type's unit */
};

/*
 * The names are the servers' own: vLLM (vllm/engine/metrics.py; the KV
 * cache gauge was renamed kv_cache_usage_perc in v0.10, and versions in
 * between export both, the old one deprecated: the new one wins), Triton's metrics
 * (with the TensorRT-LLM backend, its own queue of waiting requests and KV
 * cache fraction, selected by a label: name{label="value"}),
 * endpoint (nv_gpu_utilization is a 0..1 ratio), TGI's router metrics.
 */
static const struct metric_row rows[] = {
	{ FW(ISVC_VLLM), AUTOSCALE_QUEUE_DEPTH, HOW_SUM, { "vllm:num_requests_waiting" }, 1 },
	{ FW(ISVC_VLLM), AUTOSCALE_CONCURRENCY, HOW_SUM, { "vllm:num_requests_running" }, 1 },
	{ FW(ISVC_VLLM), AUTOSCALE_REQUESTS_PER_SECOND, HOW_RATE, { "vllm:request_success_total" }, 1 },
	{ FW(ISVC_VLLM), AUTOSCALE_LATENCY_P99, HOW_P99, { "vllm:e2e_request_latency_seconds" }, 1000 },
	{ FW(ISVC_VLLM),
	  AUTOSCALE_TIME_TO_FIRST_TOKEN_P99,
	  HOW_P99,
	  { "vllm:time_to_first_token_seconds" },
	  1000 },
	{ FW(ISVC_VLLM),
	  AUTOSCALE_KV_CACHE_UTILIZATION,
	  HOW_AVG,
	  { "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc" },
	  100 },
	{ FW(ISVC_TRITON),
	  AUTOSCALE_QUEUE_DEPTH,
	  HOW_SUM,
	  { "nv_trt_llm_request_metrics{request_type=\"waiting\"}",
	    "nv_inference_pending_request_count" },
	  1 },
	{ FW(ISVC_TRITON), AUTOSCALE_REQUESTS_PER_SECOND, HOW_RATE, { "nv_inference_request_success" }, 1 },
	{ FW(ISVC_TRITON), AUTOSCALE_GPU_UTILIZATION, HOW_AVG, { "nv_gpu_utilization" }, 100 },
	{ FW(ISVC_TRITON),
	  AUTOSCALE_KV_CACHE_UTILIZATION,
	  HOW_AVG,
	  { "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"fraction\"}" },
	  100 },
	{ FW(ISVC_TGI), AUTOSCALE_QUEUE_DEPTH, HOW_SUM, { "tgi_queue_size" }, 1 },
	{ FW(ISVC_TGI), AUTOSCALE_CONCURRENCY, HOW_SUM, { "tgi_batch_current_size" }, 1 },
	{ FW(ISVC_TGI), AUTOSCALE_REQUESTS_PER_SECOND, HOW_RATE, { "tgi_request_success" }, 1 },
	{ FW(ISVC_TGI), AUTOSCALE_LATENCY_P99, HOW_P99, { "tgi_request_duration" }, 1000 },
};
#define N_ROWS (sizeof(rows) / sizeof(rows[0]))

/* Fleet-level GPU utilization: the NVIDIA DCGM exporter, in percent. */
static const struct metric_row dcgm_gpu = { ALL_FW,
					    AUTOSCALE_GPU_UTILIZATION,
					    HOW_AVG,
					    { "DCGM_FI_DEV_GPU_UTIL" },
					    1 };

static const char *const fw_names[] = { "vLLM", "Triton", "TGI", "custom" };

static const char *present_name(const struct promtext *page, const struct metric_row *row);

/*
 * The rows that can answer type for fw, into out (at most cap): one for a
 * known framework, every framework's for custom (a custom image is often
 * one of them underneath; the first name a page has wins).
 */
static size_t rows_for(enum isvc_framework fw, enum autoscale_metric_type type,
		       enum metricsource_kind kind, const struct metric_row **out, size_t cap)
{
	size_t n = 0;

	if (kind == METRICSOURCE_PROMETHEUS && type == AUTOSCALE_GPU_UTILIZATION) {
		out[0] = &dcgm_gpu;
		return 1;
	}
	for (size_t i = 0; i < N_ROWS && n < cap; i++)
		if (rows[i].type == type && (fw == ISVC_CUSTOM || (rows[i].frameworks & FW(fw))))
			out[n++] = &rows[i];
	return n;
}

const char *metricsource_page_series(enum isvc_framework fw, enum autoscale_metric_type type,
				     const struct promtext *page, bool *ret_needs_two)
{
	const struct metric_row *cand[N_ROWS];
	size_t nc = rows_for(fw, type, METRICSOURCE_PODS, cand, N_ROWS);
	const char *name;

	for (size_t k = 0; k < nc; k++)
		if ((name = present_name(page, cand[k]))) {
			*ret_needs_two = cand[k]->how == HOW_RATE || cand[k]->how == HOW_P99;
			return name;
		}
	*ret_needs_two = false;
	return NULL;
}

bool metricsource_supports(enum isvc_framework fw, enum autoscale_metric_type type,
			   enum metricsource_kind kind)
{
	const struct metric_row *row[1];
	if (type == AUTOSCALE_CUSTOM)
		return kind == METRICSOURCE_PROMETHEUS;
	return rows_for(fw, type, kind, row, 1) > 0;
}


static void no_such_metric(const struct metricsource_request *rq, size_t i, char *err, size_t len)
{
	enum autoscale_metric_type t = rq->spec->metrics[i].type;
	const char *tn = autoscale_metric_type_name(t);

	if (t == AUTOSCALE_CUSTOM)
		text_errf(err, len, 0,
			  "Custom metrics need metricsSource type Prometheus (their query is PromQL)");
	else if (t == AUTOSCALE_GPU_UTILIZATION)
		text_errf(err, len, 0,
			  "%s exports no %s metric: use metricsSource type Prometheus with the "
			  "NVIDIA DCGM exporter (DCGM_FI_DEV_GPU_UTIL)",
			  fw_names[rq->framework], tn);
	else
		text_errf(err, len, 0, "%s exports no %s metric", fw_names[rq->framework], tn);
}

/* ---- the admin's policy for the Prometheus source ---------------------- */

static struct {
	bool set, allow_custom;
	size_t n;
	char *urls[METRICSOURCE_MAX_ALLOWED_URLS];
} policy;

/* A base URL's length without its trailing slashes. */
static size_t base_len(const char *url)
{
	size_t n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	return n;
}

void metricsource_policy_clear(void)
{
	for (size_t i = 0; i < policy.n; i++)
		free(policy.urls[i]);
	memset(&policy, 0, sizeof(policy));
}

int metricsource_policy_set(const char *allowed, bool allow_custom)
{
	const char *p = allowed ? allowed : "";

	metricsource_policy_clear();
	policy.set = true;
	policy.allow_custom = allow_custom;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		while (n > 0 && (*p == ' ')) {
			p++;
			n--;
		}
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '/'))
			n--;
		if (n > 0) {
			if (policy.n == METRICSOURCE_MAX_ALLOWED_URLS)
				return -E2BIG;
			if (!((n > 7 && strncmp(p, "http://", 7) == 0) ||
			      (n > 8 && strncmp(p, "https://", 8) == 0)) ||
			    memchr(p, '@', n))
				return -EINVAL;
			if (!(policy.urls[policy.n] = strndup(p, n)))
				return -ENOMEM;
			policy.n++;
		}
		p += (e ? (size_t)(e - p) + 1 : strlen(p));
	}
	return 0;
}

int metricsource_url_allowed(const char *url, char *why, size_t len)
{
	if (!policy.set)
		return 0;
	size_t n = url ? base_len(url) : 0;
	for (size_t i = 0; i < policy.n; i++)
		if (strlen(policy.urls[i]) == n && strncmp(policy.urls[i], url, n) == 0)
			return 0;
	if (policy.n == 0)
		text_errf(why, len, 0,
			  "the operator allows no Prometheus URL (its --prometheus-allowed-urls "
			  "is empty); ask the cluster admin to add this one");
	else
		text_errf(why, len, 0,
			  "%.200s is not one of the Prometheus URLs the operator allows "
			  "(--prometheus-allowed-urls): ask the cluster admin",
			  url ? url : "");
	return -EPERM;
}

int metricsource_custom_allowed(char *why, size_t len)
{
	if (!policy.set || policy.allow_custom)
		return 0;
	text_errf(why, len, 0,
		  "Custom PromQL is off in this operator (its --allow-custom-promql is false): "
		  "a query could read any namespace's series");
	return -EPERM;
}

/* ---- state kept between evaluations (Pods source) -------------------- */

struct hist {
	size_t n;
	struct promtext_bucket b[METRICSOURCE_MAX_BUCKETS];
};

struct pod_prev {
	char *name;
	int64_t t_ms;
	uint32_t have_counter; /* bit per spec metric */
	double counter[AUTOSCALE_MAX_METRICS];
	struct hist *hist[AUTOSCALE_MAX_METRICS]; /* P99 metrics only */
	bool seen;
};

struct metricsource_state {
	struct pod_prev *pods;
	size_t n, cap;
};

int metricsource_state_new(struct metricsource_state **ret_state)
{
	struct metricsource_state *st = calloc(1, sizeof(*st));

	if (!st)
		return -ENOMEM;
	*ret_state = st;
	return 0;
}

static void prev_clear(struct pod_prev *p)
{
	free(p->name);
	for (size_t i = 0; i < AUTOSCALE_MAX_METRICS; i++)
		free(p->hist[i]);
	memset(p, 0, sizeof(*p));
}

void metricsource_state_free(struct metricsource_state *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++)
		prev_clear(&st->pods[i]);
	free(st->pods);
	free(st);
}

static struct pod_prev *prev_find(struct metricsource_state *st, const char *name)
{
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->pods[i].name, name) == 0)
			return &st->pods[i];
	return NULL;
}

static struct pod_prev *prev_add(struct metricsource_state *st, const char *name)
{
	if (st->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 16;
		struct pod_prev *p;
		if (cap > METRICSOURCE_MAX_PODS * 2)
			return NULL;
		p = realloc(st->pods, cap * sizeof(*p));
		if (!p)
			return NULL;
		st->pods = p;
		st->cap = cap;
	}
	struct pod_prev *p = &st->pods[st->n];
	memset(p, 0, sizeof(*p));
	p->name = strdup(name);
	if (!p->name)
		return NULL;
	st->n++;
	return p;
}

/* Forget the pods that were not seen in this evaluation. */
static void prev_sweep(struct metricsource_state *st)
{
	size_t w = 0;

	for (size_t i = 0; i < st->n; i++) {
		if (!st->pods[i].seen) {
			prev_clear(&st->pods[i]);
			continue;
		}
		st->pods[i].seen = false;
		st->pods[w++] = st->pods[i];
	}
	st->n = w;
}

/* ---- Pods source: reading the pages --------------------------------- */

/* The service-wide histogram deltas being summed for one P99 metric. */
struct acc {
	bool any; /* a pod had a previous scrape: there is a window */
	struct hist h;
};

static void acc_add(struct acc *a, const struct promtext_bucket *d, size_t n)
{
	a->any = true;
	for (size_t k = 0; k < n; k++) {
		size_t j = 0;
		while (j < a->h.n && a->h.b[j].le != d[k].le)
			j++;
		if (j == a->h.n) {
			if (a->h.n == METRICSOURCE_MAX_BUCKETS)
				continue;
			/* Keep sorted by le: insert. */
			size_t at = 0;
			while (at < a->h.n && a->h.b[at].le < d[k].le)
				at++;
			memmove(&a->h.b[at + 1], &a->h.b[at], (a->h.n - at) * sizeof(a->h.b[0]));
			a->h.b[at] = (struct promtext_bucket){ d[k].le, 0 };
			a->h.n++;
			j = at;
		}
		a->h.b[j].count += d[k].count;
	}
}

/*
 * The delta of one pod's histogram since its previous scrape: per bound,
 * cur - prev; a bound that went down means the server restarted, and then
 * all of cur is new. Bounds missing from prev are left out.
 */
static size_t hist_delta(const struct hist *prev, const struct promtext_bucket *cur, size_t n,
			 struct promtext_bucket *out)
{
	bool reset = false;
	size_t m = 0;

	for (size_t k = 0; k < n; k++)
		for (size_t j = 0; j < prev->n; j++)
			if (prev->b[j].le == cur[k].le && cur[k].count < prev->b[j].count)
				reset = true;
	for (size_t k = 0; k < n; k++) {
		if (reset) {
			out[m++] = cur[k];
			continue;
		}
		for (size_t j = 0; j < prev->n; j++)
			if (prev->b[j].le == cur[k].le) {
				out[m++] = (struct promtext_bucket){ cur[k].le,
								     cur[k].count - prev->b[j].count };
				break;
			}
	}
	return m;
}

/* A table name, "name" or "name{label=\"value\"}", as a name and at most
 * one matcher (the table's own strings: always well formed). */
struct selname {
	char name[128], label[64], value[64];
	struct promtext_matcher m;
	size_t n;
};

static void split_name(const char *spec, struct selname *s)
{
	const char *b = strchr(spec, '{');
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%.*s", b ? (int)(b - spec) : (int)strlen(spec), spec);
	if (b && sscanf(b, "{%63[^=]=\"%63[^\"]\"}", s->label, s->value) == 2) {
		s->m = (struct promtext_matcher){ s->label, s->value, false };
		s->n = 1;
	}
}

/* The first of the row's names that the page has, or NULL. */
static const char *present_name(const struct promtext *page, const struct metric_row *row)
{
	for (size_t k = 0; k < 3 && row->names[k]; k++) {
		struct selname sn;
		size_t idx;
		split_name(row->names[k], &sn);
		if (row->how == HOW_P99) {
			char bucket[160];
			snprintf(bucket, sizeof(bucket), "%s_bucket", sn.name);
			if (promtext_find(page, bucket, &sn.m, sn.n, 0, &idx) == 0)
				return row->names[k];
		} else if (promtext_find(page, sn.name, &sn.m, sn.n, 0, &idx) == 0) {
			return row->names[k];
		}
	}
	return NULL;
}

struct digest {
	const struct metricsource_request *rq;
	struct metricsource_result *res;
	struct acc acc[AUTOSCALE_MAX_METRICS];
	size_t found[AUTOSCALE_MAX_METRICS];     /* pods that had the metric */
	bool known[AUTOSCALE_MAX_METRICS];       /* the framework has it */
	bool sentinel[AUTOSCALE_MAX_METRICS];    /* a pod reported only -1 (or NaN) */
	const char *name[AUTOSCALE_MAX_METRICS]; /* the series read (static) */
};

/*
 * A gauge's value over its series, summed or averaged, leaving out what a
 * server means as "unknown": a negative value (vLLM's prefix-cache hit
 * rates start at -1, Triton reports -1 for a GPU it cannot read) or NaN.
 * -ENOENT when no series has a real value (*ret_sentinel when some had
 * a sentinel).
 */
static int gauge_value(const struct promtext *page, const struct selname *sn, enum how how,
		       double *ret, bool *ret_sentinel)
{
	double sum = 0;
	size_t n = 0, idx, from = 0;
	bool sentinel = false;

	while (promtext_find(page, sn->name, &sn->m, sn->n, from, &idx) == 0) {
		double v = promtext_value(page, idx);
		from = idx + 1;
		if (isnan(v) || v < 0) {
			sentinel = true;
			continue;
		}
		sum += v;
		n++;
	}
	*ret_sentinel = sentinel;
	if (!n)
		return -ENOENT;
	*ret = how == HOW_AVG ? sum / (double)n : sum;
	return 0;
}

/* One metric of one pod's page. */
static void digest_metric(struct digest *d, size_t i, const struct promtext *page,
			  struct pod_prev *prev, int64_t now, struct autoscale_pod *out)
{
	const struct metric_row *cand[N_ROWS];
	size_t nc = rows_for(d->rq->framework, d->rq->spec->metrics[i].type, METRICSOURCE_PODS,
			     cand, N_ROWS);
	const struct metric_row *row = NULL;
	const char *name = NULL;
	double v;

	for (size_t k = 0; k < nc && !name; k++)
		if ((name = present_name(page, cand[k])))
			row = cand[k];
	if (!row)
		return;
	d->found[i]++;
	d->name[i] = name;
	struct selname sn;
	split_name(name, &sn);
	switch (row->how) {
	case HOW_SUM:
	case HOW_AVG: {
		bool sentinel;
		if (gauge_value(page, &sn, row->how, &v, &sentinel) == 0) {
			out->values[i] = v * row->scale;
			out->present |= 1u << i;
		} else if (sentinel) {
			d->sentinel[i] = true;
		}
		break;
	}
	case HOW_RATE:
		if (promtext_sum(page, sn.name, &sn.m, sn.n, &v, NULL) < 0 || isnan(v))
			break;
		if ((prev->have_counter & (1u << i)) && now > prev->t_ms) {
			double delta = v >= prev->counter[i] ? v - prev->counter[i] : v;
			out->values[i] = delta * (double)KTIME_MSEC_PER_SEC /
					 (double)(now - prev->t_ms);
			out->present |= 1u << i;
		}
		prev->counter[i] = v;
		prev->have_counter |= 1u << i;
		break;
	case HOW_P99: {
		struct promtext_bucket cur[METRICSOURCE_MAX_BUCKETS], delta[METRICSOURCE_MAX_BUCKETS];
		size_t n = 0;
		if (promtext_histogram(page, sn.name, &sn.m, sn.n, cur, METRICSOURCE_MAX_BUCKETS,
				       &n) < 0)
			break;
		if (prev->hist[i])
			acc_add(&d->acc[i], delta, hist_delta(prev->hist[i], cur, n, delta));
		else if (!(prev->hist[i] = malloc(sizeof(struct hist))))
			break;
		prev->hist[i]->n = n;
		memcpy(prev->hist[i]->b, cur, n * sizeof(cur[0]));
		break;
	}
	}
}

/* The service-level values and the sentences for what is missing. */
static void digest_finish(struct digest *d, const struct autoscale_pod *pods, size_t n_pods,
			  size_t wanted, const char *first_failure)
{
	const struct metricsource_request *rq = d->rq;
	struct metricsource_result *res = d->res;

	for (size_t i = 0; i < rq->spec->n_metrics; i++) {
		enum autoscale_metric_type t = rq->spec->metrics[i].type;
		char *err = res->errors[i];
		size_t have = 0;
		for (size_t k = 0; k < n_pods; k++)
			have += (pods[k].present >> i) & 1u;
		if (!d->known[i]) {
			no_such_metric(rq, i, err, METRICSOURCE_ERROR_LEN);
			continue;
		}
		if (!autoscale_metric_per_pod(t) && d->acc[i].any) {
			double q = 0;
			int r = promtext_bucket_quantile(0.99, d->acc[i].h.b, d->acc[i].h.n, &q);
			/* No request finished in the window: no latency to speak of. */
			res->service.values[i] = r == -ENODATA ? 0 : q * (double)KTIME_MSEC_PER_SEC;
			if (r == 0 || r == -ENODATA)
				res->service.present |= 1u << i;
			else
				text_errf(err, METRICSOURCE_ERROR_LEN, 0,
					  "the histogram of %s cannot give a P99",
					  autoscale_metric_type_name(t));
			continue;
		}
		if (res->failed && res->failed == wanted)
			text_errf(err, METRICSOURCE_ERROR_LEN, 0,
				  "no pod could be scraped (%zu of %zu failed: %s)", res->failed,
				  wanted, first_failure);
		else if (wanted == 0)
			text_errf(err, METRICSOURCE_ERROR_LEN, 0, "no pod to scrape");
		else if (d->found[i] == 0)
			text_errf(err, METRICSOURCE_ERROR_LEN, 0,
				  "no pod exports the %s metric of %s",
				  autoscale_metric_type_name(t), fw_names[rq->framework]);
		else if (have == 0 && d->sentinel[i])
			text_errf(err, METRICSOURCE_ERROR_LEN, 0,
				  "%s reports -1 (or NaN): the server does not "
				  "know the value yet",
				  d->name[i] ? d->name[i] : autoscale_metric_type_name(t));
		else if (have == 0 || !autoscale_metric_per_pod(t))
			text_errf(err, METRICSOURCE_ERROR_LEN, 0,
				  "%s needs two scrapes: the window starts now",
				  autoscale_metric_type_name(t));
		else if (res->failed)
			text_errf(err, METRICSOURCE_ERROR_LEN, 0,
				  "%zu of %zu pods could not be scraped (%s)", res->failed, wanted,
				  first_failure);
	}
}

static bool scrape_wanted(const struct metricsource_pod *p)
{
	return p->state != AUTOSCALE_POD_IGNORED && p->ip && p->ip[0];
}

int metricsource_pods_digest(const struct metricsource_request *rq, struct metricsource_state *st,
			     const char *const *bodies, const size_t *lens,
			     const char *const *fetch_errors, struct autoscale_pod *out_pods,
			     struct metricsource_result *res)
{
	struct promtext_limits lim = { .max_body = METRICSOURCE_MAX_BODY };
	struct digest *d;
	char first[160] = "";
	size_t wanted = 0;

	if (!rq || !st || !rq->spec || !out_pods || !res || rq->n_pods > METRICSOURCE_MAX_PODS ||
	    (rq->n_pods && (!rq->pods || !bodies || !lens)))
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	memset(res, 0, sizeof(*res));
	d->rq = rq;
	d->res = res;
	for (size_t i = 0; i < rq->spec->n_metrics; i++) {
		const struct metric_row *cand[1];
		d->known[i] = rows_for(rq->framework, rq->spec->metrics[i].type, METRICSOURCE_PODS,
				       cand, 1) > 0;
	}
	for (size_t k = 0; k < rq->n_pods; k++) {
		const struct metricsource_pod *p = &rq->pods[k];
		struct promtext_error perr;
		struct promtext *page = NULL;
		struct pod_prev *prev;

		memset(&out_pods[k], 0, sizeof(out_pods[k]));
		out_pods[k].state = p->state;
		if (!scrape_wanted(p))
			continue;
		wanted++;
		if (!bodies[k]) {
			if (!res->failed++)
				text_errf(first, sizeof(first), 0, "%.80s: %.70s", p->name,
					  fetch_errors && fetch_errors[k] ? fetch_errors[k] :
									    "no answer");
			continue;
		}
		res->bytes += lens[k];
		if (promtext_parse(bodies[k], lens[k], &lim, &perr, &page) < 0) {
			if (!res->failed++)
				text_errf(first, sizeof(first), 0, "%.80s: line %u: %.60s", p->name,
					  perr.line, perr.msg);
			continue;
		}
		res->scraped++;
		prev = prev_find(st, p->name);
		if (!prev)
			prev = prev_add(st, p->name);
		if (prev) {
			prev->seen = true;
			for (size_t i = 0; i < rq->spec->n_metrics; i++)
				if (d->known[i])
					digest_metric(d, i, page, prev, rq->now_ms, &out_pods[k]);
			prev->t_ms = rq->now_ms;
		}
		promtext_free(page);
	}
	/* Pods that failed this time keep their window for the next one. */
	for (size_t k = 0; k < rq->n_pods; k++) {
		struct pod_prev *prev;
		if (scrape_wanted(&rq->pods[k]) && (prev = prev_find(st, rq->pods[k].name)))
			prev->seen = true;
	}
	prev_sweep(st);
	digest_finish(d, out_pods, rq->n_pods, wanted, first);
	free(d);
	return 0;
}

/* ---- Pods source: fetching ------------------------------------------ */

struct fetch {
	CURL *h;
	struct dynbuf body; /* body.max: the bound (0 = METRICSOURCE_MAX_BODY) */
	char error[CURL_ERROR_SIZE];
};

static size_t fetch_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct fetch *f = ud;
	size_t n = size * nmemb;
	return dynbuf_add(&f->body, ptr, n) == 0 ? n : 0;
}

static long timeout_of(const struct metricsource_request *rq)
{
	return rq->timeout_ms > 0 ? rq->timeout_ms : DEFAULT_TIMEOUT_MS;
}

static int fetch_setup(struct fetch *f, const char *url, const char *protocols, long timeout_ms,
		       const char *token, struct curl_slist **hdrs)
{
	dynbuf_init(&f->body, f->body.max ? f->body.max : METRICSOURCE_MAX_BODY);
	f->h = curl_easy_init();
	if (!f->h)
		return -ENOMEM;
	curl_easy_setopt(f->h, CURLOPT_URL, url);
	curl_easy_setopt(f->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(f->h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(f->h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(f->h, CURLOPT_PROTOCOLS_STR, protocols);
	curl_easy_setopt(f->h, CURLOPT_USERAGENT, "kinfer-metrics/1");
	curl_easy_setopt(f->h, CURLOPT_WRITEFUNCTION, fetch_write);
	curl_easy_setopt(f->h, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(f->h, CURLOPT_ERRORBUFFER, f->error);
	curl_easy_setopt(f->h, CURLOPT_PRIVATE, f);
	curl_easy_setopt(f->h, CURLOPT_ACCEPT_ENCODING, "");
	if (token && *token && hdrs) {
		char h[4096];
		if ((size_t)snprintf(h, sizeof(h), "Authorization: Bearer %s", token) >= sizeof(h))
			return -E2BIG;
		*hdrs = curl_slist_append(NULL, h);
		if (!*hdrs)
			return -ENOMEM;
		curl_easy_setopt(f->h, CURLOPT_HTTPHEADER, *hdrs);
	}
	return 0;
}

/* After the transfer: keep the body on a 200, else say why in f->error. */
static void fetch_done(struct fetch *f, CURLcode cc)
{
	long code = 0;

	if (cc == CURLE_OK)
		curl_easy_getinfo(f->h, CURLINFO_RESPONSE_CODE, &code);
	if (cc == CURLE_OK && code == 200)
		return;
	if (f->body.toobig)
		snprintf(f->error, sizeof(f->error), "answer over %zu bytes", f->body.max);
	else if (cc == CURLE_OK)
		snprintf(f->error, sizeof(f->error), "HTTP %ld", code);
	else if (!f->error[0])
		snprintf(f->error, sizeof(f->error), "%s", curl_easy_strerror(cc));
	dynbuf_free(&f->body);
}

/* A pod's metrics URL; IPv6 addresses in brackets. */
static void pod_url(char *buf, size_t len, const char *ip, int32_t port, const char *path)
{
	snprintf(buf, len, strchr(ip, ':') ? "http://[%s]:%d%s" : "http://%s:%d%s", ip, port,
		 path && *path ? path : "/metrics");
}

int metricsource_fetch(const char *ip, int32_t port, const char *path, long timeout_ms,
		       size_t max_body, char **ret_body, size_t *ret_len, char *err, size_t errlen)
{
	struct fetch f = { .body = { .max = max_body } };
	char url[512];
	int r;

	if (!ip || !*ip || !ret_body || !ret_len)
		return -EINVAL;
	pod_url(url, sizeof(url), ip, port, path);
	r = fetch_setup(&f, url, "http", timeout_ms, NULL, NULL);
	if (r == 0) {
		fetch_done(&f, curl_easy_perform(f.h));
		r = f.body.p ? 0 : -EIO;
	}
	if (r == -EIO)
		text_errf(err, errlen, 0, "%s", f.error);
	if (f.h)
		curl_easy_cleanup(f.h);
	if (r == 0)
		*ret_body = dynbuf_take(&f.body, ret_len);
	return r;
}

static int pods_fetch(const struct metricsource_request *rq, struct fetch *fs)
{
	CURLM *m = curl_multi_init();
	int running = 0, r = 0;
	char url[512];

	if (!m)
		return -ENOMEM;
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)MAX_CONNECTIONS);
	for (size_t k = 0; k < rq->n_pods; k++) {
		const struct metricsource_pod *p = &rq->pods[k];
		if (!scrape_wanted(p))
			continue;
		pod_url(url, sizeof(url), p->ip, rq->port, rq->path);
		r = fetch_setup(&fs[k], url, "http", timeout_of(rq), NULL, NULL);
		if (r < 0)
			goto out;
		/* One connection per scrape: keeping 10,000 pods' connections
		 * open would cost a descriptor each between evaluations. */
		curl_easy_setopt(fs[k].h, CURLOPT_FORBID_REUSE, 1L);
		curl_multi_add_handle(m, fs[k].h);
	}
	/* Bounded: every transfer has its own timeout. */
	do {
		CURLMcode mc = curl_multi_perform(m, &running);
		if (mc == CURLM_OK && running)
			mc = curl_multi_poll(m, NULL, 0, 200, NULL);
		if (mc != CURLM_OK) {
			r = -EIO;
			break;
		}
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(m, &left))) {
			struct fetch *f;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&f);
			fetch_done(f, msg->data.result);
		}
	} while (running);
out:
	for (size_t k = 0; k < rq->n_pods; k++)
		if (fs[k].h)
			curl_multi_remove_handle(m, fs[k].h);
	curl_multi_cleanup(m);
	return r;
}

int metricsource_fetch_all(const struct metricsource_pod *pods, size_t n, int32_t port,
			   const char *path, long timeout_ms, size_t max_body, char **ret_bodies,
			   size_t *ret_lens)
{
	struct metricsource_request rq = {
		.pods = pods, .n_pods = n, .port = port, .path = path, .timeout_ms = timeout_ms
	};
	struct fetch *fs = calloc(n ? n : 1, sizeof(*fs));
	int r;

	if (!fs)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++)
		fs[k].body.max = max_body;
	r = pods_fetch(&rq, fs);
	for (size_t k = 0; k < n; k++) {
		ret_bodies[k] = NULL;
		ret_lens[k] = 0;
		if (r == 0 && fs[k].body.p)
			ret_bodies[k] = dynbuf_take(&fs[k].body, &ret_lens[k]);
		if (fs[k].h)
			curl_easy_cleanup(fs[k].h);
		dynbuf_free(&fs[k].body);
	}
	free(fs);
	return r;
}

static int pods_collect(const struct metricsource_request *rq, struct metricsource_state *st,
			struct autoscale_pod *out_pods, struct metricsource_result *res)
{
	struct fetch *fs = calloc(rq->n_pods ? rq->n_pods : 1, sizeof(*fs));
	const char **bodies = calloc(rq->n_pods ? rq->n_pods : 1, sizeof(*bodies));
	const char **errs = calloc(rq->n_pods ? rq->n_pods : 1, sizeof(*errs));
	size_t *lens = calloc(rq->n_pods ? rq->n_pods : 1, sizeof(*lens));
	int r = -ENOMEM;

	if (!fs || !bodies || !errs || !lens)
		goto out;
	r = pods_fetch(rq, fs);
	if (r < 0)
		goto out;
	for (size_t k = 0; k < rq->n_pods; k++) {
		bodies[k] = fs[k].body.p;
		lens[k] = fs[k].body.len;
		errs[k] = fs[k].error[0] ? fs[k].error : NULL;
	}
	r = metricsource_pods_digest(rq, st, bodies, lens, errs, out_pods, res);
out:
	for (size_t k = 0; fs && k < rq->n_pods; k++) {
		if (fs[k].h)
			curl_easy_cleanup(fs[k].h);
		dynbuf_free(&fs[k].body);
	}
	free(fs);
	free(bodies);
	free(errs);
	free(lens);
	return r;
}

/* ---- Prometheus source ---------------------------------------------- */

static int append(char *buf, size_t len, size_t *off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int append(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= len)
		return -ENAMETOOLONG;
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len - *off)
		return -ENAMETOOLONG;
	*off += (size_t)n;
	return 0;
}

/* name{namespace="ns",pod=~"svc-<rs hash>-<suffix>"} for each name, or'ed. */
static int selector(const struct metricsource_request *rq, const struct metric_row *row,
		    const char *suffix, char *buf, size_t len, size_t *off)
{
	int r = 0;

	for (size_t k = 0; r == 0 && k < 3 && row->names[k]; k++) {
		struct selname sn;
		char extra[160] = "";
		split_name(row->names[k], &sn);
		if (sn.n)
			snprintf(extra, sizeof(extra), "%s=\"%s\",", sn.label, sn.value);
		r = append(buf, len, off,
			   "%s%s%s{%snamespace=\"%s\",pod=~\"%s-[a-z0-9]+-[a-z0-9]+\"}",
			   k ? " or " : "", sn.name, suffix, extra, rq->ns, rq->service);
	}
	return r;
}

int metricsource_promql(const struct metricsource_request *rq, size_t i, char *buf, size_t len,
			char *err, size_t errlen)
{
	const struct metric_row *row;
	size_t off = 0;
	int r;

	if (!rq || !rq->spec || i >= rq->spec->n_metrics || !buf || !len)
		return -EINVAL;
	if (rq->spec->metrics[i].type == AUTOSCALE_CUSTOM) {
		if (metricsource_custom_allowed(err, errlen) < 0)
			return -EPERM;
		if (!rq->queries[i] || !*rq->queries[i]) {
			text_errf(err, errlen, 0, "Custom metric has no query");
			return -ENOENT;
		}
		return append(buf, len, &off, "%s", rq->queries[i]);
	}
	if (rows_for(rq->framework, rq->spec->metrics[i].type, METRICSOURCE_PROMETHEUS, &row, 1) ==
	    0) {
		no_such_metric(rq, i, err, errlen);
		return -ENOENT;
	}
	switch (row->how) {
	case HOW_SUM:
	case HOW_AVG:
		r = append(buf, len, &off, "%s by (pod) (", row->how == HOW_SUM ? "sum" : "avg");
		if (r == 0)
			r = selector(rq, row, "", buf, len, &off);
		if (r == 0)
			r = append(buf, len, &off, ")");
		break;
	case HOW_RATE:
		r = append(buf, len, &off, "sum by (pod) (rate(");
		if (r == 0)
			r = selector(rq, row, "", buf, len, &off);
		if (r == 0)
			r = append(buf, len, &off, "[" RATE_WINDOW "]))");
		break;
	case HOW_P99:
	default:
		r = append(buf, len, &off, "histogram_quantile(0.99, sum by (le) (rate(");
		if (r == 0)
			r = selector(rq, row, "_bucket", buf, len, &off);
		if (r == 0)
			r = append(buf, len, &off, "[" RATE_WINDOW "])))");
		break;
	}
	if (r == 0 && row->scale != 1)
		r = append(buf, len, &off, " * %g", row->scale);
	return r;
}

static bool prom_value(json_object *pair, double *ret)
{
	json_object *v;
	const char *s;
	char *end;

	if (!json_object_is_type(pair, json_type_array) || json_object_array_length(pair) != 2)
		return false;
	v = json_object_array_get_idx(pair, 1);
	if (!json_object_is_type(v, json_type_string))
		return false;
	s = json_object_get_string(v);
	errno = 0;
	*ret = strtod(s, &end);
	return *s && !*end && errno != ERANGE;
}

int metricsource_prom_parse(const char *body, size_t len, struct metricsource_sample *samples,
			    size_t cap, size_t *ret_n, char *err, size_t errlen)
{
	json_tokener *tok;
	json_object *doc, *data, *result;
	const char *status, *type;
	size_t n = 0;
	int r = -EINVAL;

	if (!body || !ret_n || len > METRICSOURCE_MAX_BODY || len > INT32_MAX) {
		text_errf(err, errlen, 0, "answer over %u bytes", METRICSOURCE_MAX_BODY);
		return -EINVAL;
	}
	tok = json_tokener_new_ex(64);
	if (!tok)
		return -ENOMEM;
	doc = json_tokener_parse_ex(tok, body, (int)len);
	if (!doc || json_tokener_get_error(tok) != json_tokener_success) {
		text_errf(err, errlen, 0, "the answer is not JSON");
		goto out;
	}
	status = json_object_get_string(json_object_object_get(doc, "status"));
	if (!status || strcmp(status, "success") != 0) {
		/* What the server wrote is never repeated (it lands in status,
		 * which every reader of the namespace sees): only the API's own
		 * errorType, when it is one of Prometheus's. */
		static const char *const types[] = { "bad_data",  "timeout",  "canceled",
						     "execution", "internal", "unavailable",
						     "not_found", NULL };
		const char *e = json_object_get_string(json_object_object_get(doc, "errorType"));
		const char *known = NULL;
		for (size_t k = 0; e && types[k] && !known; k++)
			if (strcmp(e, types[k]) == 0)
				known = types[k];
		if (status && strcmp(status, "error") == 0)
			text_errf(err, errlen, 0, "the query failed (Prometheus errorType %s)",
				  known ? known : "unknown");
		else
			text_errf(err, errlen, 0,
				  "the answer is not a Prometheus API answer (no status success)");
		goto out;
	}
	data = json_object_object_get(doc, "data");
	type = json_object_get_string(json_object_object_get(data, "resultType"));
	result = json_object_object_get(data, "result");
	if (type && strcmp(type, "scalar") == 0) {
		if (cap < 1 || !prom_value(result, &samples[0].value)) {
			text_errf(err, errlen, 0, "a scalar answer without a number");
			goto out;
		}
		samples[0].pod[0] = '\0';
		n = 1;
	} else if (type && strcmp(type, "vector") == 0 &&
		   json_object_is_type(result, json_type_array)) {
		size_t total = json_object_array_length(result);
		if (total > cap) {
			text_errf(err, errlen, 0, "the query returned %zu series, more than %zu",
				  total, cap);
			r = -E2BIG;
			goto out;
		}
		for (; n < total; n++) {
			json_object *s = json_object_array_get_idx(result, n);
			const char *pod = json_object_get_string(
				json_object_object_get(json_object_object_get(s, "metric"), "pod"));
			if (!prom_value(json_object_object_get(s, "value"), &samples[n].value)) {
				text_errf(err, errlen, 0,
					  "series %zu has no [time, \"value\"] pair", n);
				goto out;
			}
			snprintf(samples[n].pod, sizeof(samples[n].pod), "%s", pod ? pod : "");
		}
	} else {
		text_errf(err, errlen, 0, "unexpected resultType (want vector or scalar)");
		goto out;
	}
	*ret_n = n;
	r = 0;
out:
	json_object_put(doc);
	json_tokener_free(tok);
	return r;
}

static int prom_query(const struct metricsource_request *rq, const char *promql,
		      struct metricsource_sample *samples, size_t cap, size_t *ret_n,
		      struct metricsource_result *res, char *err, size_t errlen)
{
	struct fetch f = { 0 };
	struct curl_slist *hdrs = NULL;
	char *q = NULL, *url = NULL;
	size_t ulen;
	int r = -ENOMEM;

	r = metricsource_url_allowed(rq->url, err, errlen);
	if (r < 0)
		goto out;
	r = -ENOMEM;
	q = curl_easy_escape(NULL, promql, 0);
	if (!q)
		goto out;
	/* The base URL without its trailing slashes. */
	size_t base = strlen(rq->url);
	while (base > 0 && rq->url[base - 1] == '/')
		base--;
	ulen = base + strlen(q) + 32;
	url = malloc(ulen);
	if (!url)
		goto out;
	snprintf(url, ulen, "%.*s/api/v1/query?query=%s", (int)base, rq->url, q);
	r = fetch_setup(&f, url, "http,https", timeout_of(rq), rq->token, &hdrs);
	if (r < 0)
		goto out;
	CURLcode cc = curl_easy_perform(f.h);
	long code = 0;
	if (cc == CURLE_OK)
		curl_easy_getinfo(f.h, CURLINFO_RESPONSE_CODE, &code);
	if (cc != CURLE_OK || f.body.toobig) {
		text_errf(err, errlen, 0, "Prometheus at %.80s: %.100s", rq->url,
			  f.body.toobig ? "answer too big" :
			  f.error[0]    ? f.error :
					  curl_easy_strerror(cc));
		r = -EIO;
		goto out;
	}
	res->bytes += f.body.len;
	/* 400 and 422 carry an error in the JSON body: let the parser say it. */
	if (code != 200 && code != 400 && code != 422) {
		text_errf(err, errlen, 0, "Prometheus at %.80s answered HTTP %ld", rq->url, code);
		r = -EIO;
		goto out;
	}
	r = metricsource_prom_parse(dynbuf_str(&f.body), f.body.len, samples, cap, ret_n, err,
				    errlen);
out:
	if (f.h)
		curl_easy_cleanup(f.h);
	curl_slist_free_all(hdrs);
	curl_free(q);
	free(url);
	dynbuf_free(&f.body);
	return r;
}

static int pod_cmp(const void *a, const void *b)
{
	const struct metricsource_pod *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

/* One metric through Prometheus: per pod, or one value for the service. */
static void prom_metric(const struct metricsource_request *rq, size_t i,
			const struct metricsource_pod **sorted, struct metricsource_sample *samples,
			struct autoscale_pod *out_pods, struct metricsource_result *res)
{
	enum autoscale_metric_type t = rq->spec->metrics[i].type;
	char *err = res->errors[i];
	char promql[8192];
	size_t n = 0;

	if (metricsource_promql(rq, i, promql, sizeof(promql), err, METRICSOURCE_ERROR_LEN) < 0)
		return;
	if (prom_query(rq, promql, samples, PROM_MAX_SAMPLES, &n, res, err, METRICSOURCE_ERROR_LEN) <
	    0) {
		res->failed++;
		return;
	}
	res->scraped++;
	if (!autoscale_metric_per_pod(t)) {
		if (n != 1) {
			if (n)
				text_errf(err, METRICSOURCE_ERROR_LEN, 0,
					  "the query returned %zu series; it must "
					  "return one (wrap it in sum() or avg())",
					  n);
			else
				text_errf(err, METRICSOURCE_ERROR_LEN, 0,
					  "the query returned no series");
			return;
		}
		double v = samples[0].value;
		/* histogram_quantile of a window without requests is NaN. */
		if (isnan(v) && t != AUTOSCALE_CUSTOM)
			v = 0;
		if (isnan(v)) {
			text_errf(err, METRICSOURCE_ERROR_LEN, 0, "the query returned NaN");
			return;
		}
		res->service.values[i] = v;
		res->service.present |= 1u << i;
		return;
	}
	size_t matched = 0;
	for (size_t s = 0; s < n; s++) {
		struct metricsource_pod key = { .name = samples[s].pod }, *kp = &key;
		const struct metricsource_pod **hit;
		if (!samples[s].pod[0] || isnan(samples[s].value))
			continue;
		hit = bsearch(&kp, sorted, rq->n_pods, sizeof(*sorted), pod_cmp);
		if (!hit)
			continue;
		size_t k = (size_t)(*hit - rq->pods);
		out_pods[k].values[i] = samples[s].value;
		out_pods[k].present |= 1u << i;
		matched++;
	}
	if (!matched)
		text_errf(err, METRICSOURCE_ERROR_LEN, 0,
			  "Prometheus has no %s series for the pods of %.60s "
			  "(series need namespace and pod labels)",
			  autoscale_metric_type_name(t), rq->service);
}

static int prom_collect(const struct metricsource_request *rq, struct metricsource_state *st,
			struct autoscale_pod *out_pods, struct metricsource_result *res)
{
	const struct metricsource_pod **sorted = calloc(rq->n_pods ? rq->n_pods : 1, sizeof(*sorted));
	struct metricsource_sample *samples = calloc(PROM_MAX_SAMPLES, sizeof(*samples));
	int r = -ENOMEM;

	(void)st;
	if (!sorted || !samples)
		goto out;
	if (!rq->url || !*rq->url) {
		r = -EINVAL;
		goto out;
	}
	for (size_t k = 0; k < rq->n_pods; k++) {
		memset(&out_pods[k], 0, sizeof(out_pods[k]));
		out_pods[k].state = rq->pods[k].state;
		sorted[k] = &rq->pods[k];
	}
	qsort(sorted, rq->n_pods, sizeof(*sorted), pod_cmp);
	for (size_t i = 0; i < rq->spec->n_metrics; i++)
		prom_metric(rq, i, sorted, samples, out_pods, res);
	r = 0;
out:
	free(sorted);
	free(samples);
	return r;
}

/* ---- the table of sources ------------------------------------------- */

static const struct metricsource sources[] = {
	{ "Pods", METRICSOURCE_PODS, pods_collect },
	{ "Prometheus", METRICSOURCE_PROMETHEUS, prom_collect },
};

const struct metricsource *metricsource_get(enum metricsource_kind kind)
{
	for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++)
		if (sources[i].kind == kind)
			return &sources[i];
	return NULL;
}

int metricsource_kind_parse(const char *name, enum metricsource_kind *ret)
{
	for (size_t i = 0; name && i < sizeof(sources) / sizeof(sources[0]); i++)
		if (strcmp(sources[i].name, name) == 0) {
			*ret = sources[i].kind;
			return 0;
		}
	return -EINVAL;
}

int metricsource_collect(const struct metricsource_request *rq, struct metricsource_state *st,
			 struct autoscale_pod *out_pods, struct metricsource_result *res)
{
	const struct metricsource *src;

	if (!rq || !rq->spec || !st || !res || (rq->n_pods && (!rq->pods || !out_pods)) ||
	    rq->n_pods > METRICSOURCE_MAX_PODS || rq->spec->n_metrics > AUTOSCALE_MAX_METRICS)
		return -EINVAL;
	src = metricsource_get(rq->kind);
	if (!src)
		return -EINVAL;
	memset(res, 0, sizeof(*res));
	return src->collect(rq, st, out_pods, res);
}
