/*
 * Prometheus metrics: families are rows of const tables declared by the
 * module that owns them; series are created on first use with their label
 * values and then updated lock-free (atomics). Rendering produces the text
 * exposition format 0.0.4.
 *
 *   static const char *const labels[] = { "verb", "code", NULL };
 *   static const struct metric_family requests = {
 *       "kinfer_api_requests_total", "API requests by verb and code.",
 *       METRIC_COUNTER, labels, NULL, 0 };
 *   metric_add(metrics_series(m, &requests, (const char *[]){"get", "200"}), 1);
 *
 * A NULL registry is allowed everywhere and makes every call a no-op, so
 * modules can be used without metrics (tests, the offline commands).
 */
#pragma once

#include <stddef.h>

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metric_family {
	const char *name;
	const char *help;
	enum metric_type type;
	const char *const *labels; /* NULL-terminated; NULL = no labels */
	const double *buckets;     /* histograms: upper bounds, ascending */
	size_t n_buckets;
};

struct metrics;
struct metric_series;

#define METRICS_MAX_SERIES 10000 /* per registry: label values are bounded */

int metrics_new(struct metrics **ret);
void metrics_free(struct metrics *m);

/* Get or create the series; NULL when m is NULL or the bound is reached.
 * The pointer stays valid until metrics_free. */
struct metric_series *metrics_series(struct metrics *m, const struct metric_family *f,
				     const char *const *label_values);

void metric_add(struct metric_series *s, double v);
void metric_set(struct metric_series *s, double v);
void metric_observe(struct metric_series *s, double v);
double metric_value(const struct metric_series *s);

/* Render every series; *ret is malloc'ed and NUL-terminated. */
int metrics_render(struct metrics *m, char **ret, size_t *ret_len);

/* Buckets for latencies in seconds, 1 ms to 60 s. */
extern const double metrics_latency_buckets[];
extern const size_t metrics_latency_n_buckets;
