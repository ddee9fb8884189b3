/*
 * metricsource: where the autoscaler's numbers come from. Two sources,
 * rows of one table, behind one call:
 *
 *   Pods        scrape every pod's metrics endpoint (pod IP, the
 *               framework's port and path) at once with a curl multi
 *               handle, parse the Prometheus text (promtext.h) and map
 *               the framework's metric names onto kinfer's metric types;
 *               counters become rates and histograms P99s from the deltas
 *               between two evaluations, kept per pod in a state.
 *   Prometheus  instant queries to a Prometheus server's HTTP API
 *               (/api/v1/query), one per metric, built from the same
 *               table (by pod for per-replica types, one value for the
 *               service-level ones) or the user's PromQL for Custom;
 *               optional bearer token; a timeout per query.
 *
 * The metric names per framework (vLLM, Triton, TGI, and the NVIDIA DCGM
 * exporter for GPU utilization) are one const table in the .c. A metric a
 * framework does not export, a pod that cannot be scraped, a query that
 * fails: the value is missing and errors[i] says why in a sentence; the
 * algorithm (autoscale.h) then holds rather than guess.
 *
 * The I/O (collect) and the reading of what came back (the digest
 * functions) are separate, so the tests and the fuzzer drive the second
 * with recorded pages and responses.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autoscale.h"
#include "isvc.h"

#define METRICSOURCE_MAX_PODS 1000       /* pods of one service per evaluation */
#define METRICSOURCE_MAX_BODY (8u << 20) /* bytes of one page or response */
#define METRICSOURCE_MAX_BUCKETS 64      /* bounds of one histogram */
#define METRICSOURCE_ERROR_LEN 192

enum metricsource_kind {
	METRICSOURCE_PODS,
	METRICSOURCE_PROMETHEUS,
};

/* A pod of the service, as the autoscaler counts it. */
struct metricsource_pod {
	const char *name;
	const char *ip; /* NULL or "" until it has one */
	enum autoscale_pod_state state;
};

/* One evaluation's question. */
struct metricsource_request {
	enum metricsource_kind kind;
	const char *ns, *service;
	enum isvc_framework framework;
	const struct autoscale_spec *spec;
	const char *queries[AUTOSCALE_MAX_METRICS]; /* Custom: the PromQL */
	/* Pods: the metrics endpoint. */
	int32_t port;
	const char *path;
	/* Prometheus: base URL, optional bearer token. */
	const char *url;
	const char *token;
	long timeout_ms; /* per scrape or query; <= 0: 2000 */
	const struct metricsource_pod *pods;
	size_t n_pods;
	int64_t now_ms; /* monotonic or wall, only differences count */
};

/* The answer: out_pods[k] is for pods[k]; errors[i] for spec metric i. */
struct metricsource_result {
	struct autoscale_service service;
	char errors[AUTOSCALE_MAX_METRICS][METRICSOURCE_ERROR_LEN];
	size_t scraped; /* pods (or queries) answered */
	size_t failed;  /* pods (or queries) that could not be read */
	size_t bytes;   /* body bytes read */
};

/* What the Pods source keeps between two evaluations of one service. */
struct metricsource_state;

int metricsource_state_new(struct metricsource_state **ret_state);
void metricsource_state_free(struct metricsource_state *st);

struct metricsource {
	const char *name; /* as in spec.scaling.metricsSource.type */
	enum metricsource_kind kind;
	int (*collect)(const struct metricsource_request *rq, struct metricsource_state *st,
		       struct autoscale_pod *out_pods, struct metricsource_result *res);
};

const struct metricsource *metricsource_get(enum metricsource_kind kind);
int metricsource_kind_parse(const char *name, enum metricsource_kind *ret);

/*
 * Whether a source can give a metric type for a framework (the table of
 * metric names above; Custom only from Prometheus). The admission webhook
 * asks this before a spec is stored, so it and the autoscaler never
 * disagree.
 */
bool metricsource_supports(enum isvc_framework fw, enum autoscale_metric_type type,
			   enum metricsource_kind kind);

/*
 * The Prometheus source's admin policy, from the operator's flags, set once
 * at start before any thread runs: the base URLs that may be queried
 * (--prometheus-allowed-urls, comma-separated; none when empty), so a
 * namespace user cannot make the operator send requests and a bearer token
 * anywhere else, and whether Custom PromQL may run at all
 * (--allow-custom-promql; a query can read any namespace's series). Until
 * it is set (the offline commands, the tests), everything is allowed.
 * -EINVAL for a list entry that is not an http(s) URL, -E2BIG past
 * METRICSOURCE_MAX_ALLOWED_URLS.
 */
#define METRICSOURCE_MAX_ALLOWED_URLS 32
int metricsource_policy_set(const char *allowed_urls, bool allow_custom);
void metricsource_policy_clear(void);
/* 0, or -EPERM with why (a sentence naming the flag). */
int metricsource_url_allowed(const char *url, char *why, size_t len);
int metricsource_custom_allowed(char *why, size_t len);

/*
 * For `kinfer-operator metrics`: the series of a parsed page the Pods
 * source reads type from for fw (the first of the table's names the page
 * has), or NULL; *ret_needs_two says whether it is a counter or histogram
 * (a rate or a P99 needs two pages).
 */
struct promtext;
const char *metricsource_page_series(enum isvc_framework fw, enum autoscale_metric_type type,
				     const struct promtext *page, bool *ret_needs_two);

/*
 * The whole evaluation: fill out_pods (rq->n_pods of them) and res.
 * 0 even when some or all values are missing (errors[] says why);
 * -EINVAL for a bad request, -ENOMEM.
 */
int metricsource_collect(const struct metricsource_request *rq, struct metricsource_state *st,
			 struct autoscale_pod *out_pods, struct metricsource_result *res);

/*
 * One GET of a pod's metrics page (http), its body bounded by max_body
 * bytes (0: METRICSOURCE_MAX_BODY): 0 with the malloc'ed, NUL-terminated
 * body of a 200; -EIO with err saying why; -ENOMEM, -EINVAL.
 */
int metricsource_fetch(const char *ip, int32_t port, const char *path, long timeout_ms,
		       size_t max_body, char **ret_body, size_t *ret_len, char *err, size_t errlen);

/*
 * GET every pod's metrics page at once (curl multi; pods IGNORED or
 * without an IP are skipped), each bounded by timeout_ms and max_body
 * (0: METRICSOURCE_MAX_BODY): ret_bodies[k] is the malloc'ed,
 * NUL-terminated body of a 200 (ret_lens[k] bytes) or NULL. 0, -ENOMEM,
 * -EIO. What drain reads of its candidates, in one timeout for all.
 */
int metricsource_fetch_all(const struct metricsource_pod *pods, size_t n, int32_t port,
			   const char *path, long timeout_ms, size_t max_body, char **ret_bodies,
			   size_t *ret_lens);

/*
 * Pods source, the reading half: bodies[k] (lens[k] bytes) is what pod k
 * answered, or NULL with fetch_errors[k] saying why. Updates st (rates and
 * histogram windows) and fills out_pods and res.
 */
int metricsource_pods_digest(const struct metricsource_request *rq, struct metricsource_state *st,
			     const char *const *bodies, const size_t *lens,
			     const char *const *fetch_errors, struct autoscale_pod *out_pods,
			     struct metricsource_result *res);

/* One sample of a Prometheus instant-query answer. */
struct metricsource_sample {
	char pod[254]; /* its "pod" label, or "" */
	double value;
};

/*
 * Read a Prometheus /api/v1/query response: {"status":"success","data":
 * {"resultType":"vector"|"scalar",...}}. Fills at most cap samples and
 * ret_n; -EINVAL with err naming what is wrong (status error and the
 * server's error text, wrong shape, bad value), -E2BIG past cap.
 */
int metricsource_prom_parse(const char *body, size_t len, struct metricsource_sample *samples,
			    size_t cap, size_t *ret_n, char *err, size_t errlen);

/*
 * The PromQL for spec metric i of rq (Prometheus source), into buf.
 * -ENOENT (with err) when the framework has no such metric,
 * -ENAMETOOLONG when it does not fit.
 */
int metricsource_promql(const struct metricsource_request *rq, size_t i, char *buf, size_t len,
			char *err, size_t errlen);
