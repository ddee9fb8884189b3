/*
 * promtext: the Prometheus text exposition format 0.0.4, parsed into a
 * compact, immutable page that answers "which samples have this name and
 * these labels", sums and averages over series, and the quantile of a
 * histogram between two scrapes the way PromQL's histogram_quantile does.
 *
 * The parser reads what a pod's /metrics endpoint sends (vLLM, Triton, TGI,
 * the DCGM exporter): # HELP and # TYPE lines, samples with labels, label
 * value escapes (\\ \" \n), NaN and +-Inf, optional millisecond
 * timestamps, metric names with ':'. Every input a pod controls has a limit
 * (struct promtext_limits); a page that breaks one, or the grammar, is
 * refused with an error that names the line. No input makes it crash: it
 * is fuzzed (tests/fuzz/fuzz_promtext.c).
 *
 * Memory: one string pool in which every distinct name, label name and
 * label value is stored once, a 32-byte record per sample and 8 bytes per
 * label pair. The source buffer is not referenced after parsing.
 *
 * Thread safety: a parsed page is immutable; any number of threads may
 * query it at once.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct promtext;

enum promtext_type {
	PROMTEXT_UNTYPED,
	PROMTEXT_COUNTER,
	PROMTEXT_GAUGE,
	PROMTEXT_HISTOGRAM,
	PROMTEXT_SUMMARY,
};

/* Bounds on what a page may contain; 0 in a field means the default. */
struct promtext_limits {
	size_t max_body;        /* bytes in the whole page (default 16 MiB) */
	size_t max_line;        /* bytes in one line (default 64 KiB) */
	size_t max_samples;     /* samples in the page (default 200,000) */
	size_t max_labels;      /* label pairs in one sample (default 64) */
	size_t max_name;        /* bytes in a metric or label name (default 512) */
	size_t max_label_value; /* bytes in one unescaped label value (default 4096) */
};

/* Where and why a parse failed: "line 12: label value not terminated". */
struct promtext_error {
	unsigned line; /* 1-based; 0 when the error is not about a line */
	char msg[160];
};

/* A label matcher: name="value", or name!="value" when negate is set. A
 * label a sample does not carry matches as the empty string, as in PromQL. */
struct promtext_matcher {
	const char *name;
	const char *value;
	bool negate;
};

/* One cumulative bucket of a classic histogram: observations <= le. */
struct promtext_bucket {
	double le;
	double count;
};

/*
 * Parse len bytes of body (need not be NUL-terminated). limits may be NULL
 * for the defaults. On failure returns -EINVAL (grammar), -E2BIG (a limit)
 * or -ENOMEM, and fills err (when not NULL) with the line and the reason.
 */
int promtext_parse(const char *body, size_t len, const struct promtext_limits *limits,
		   struct promtext_error *err, struct promtext **ret_page);
void promtext_free(struct promtext *page);

/* Number of samples, and their accessors by index (0..count-1). */
size_t promtext_count(const struct promtext *page);
const char *promtext_name(const struct promtext *page, size_t i);
double promtext_value(const struct promtext *page, size_t i);
/* The value of label `label` on sample i, or NULL if it has none. */
const char *promtext_label(const struct promtext *page, size_t i, const char *label);
/* The sample's timestamp in ms since the epoch; -ENOENT if it has none. */
int promtext_timestamp(const struct promtext *page, size_t i, int64_t *ret_ms);
/* The declared type of a family (the name in its # TYPE line). */
enum promtext_type promtext_family_type(const struct promtext *page, const char *family);

/*
 * The first sample at index >= from named `name` whose labels satisfy all
 * n matchers. -ENOENT when there is none. Iterate with from = index + 1.
 */
int promtext_find(const struct promtext *page, const char *name, const struct promtext_matcher *m,
		  size_t n, size_t from, size_t *ret_index);

/*
 * Sum and average of the values of every matching series (PromQL sum() and
 * avg(): a NaN sample makes the result NaN). -ENOENT if no series matches.
 * ret_series may be NULL.
 */
int promtext_sum(const struct promtext *page, const char *name, const struct promtext_matcher *m,
		 size_t n, double *ret_sum, size_t *ret_series);
int promtext_avg(const struct promtext *page, const char *name, const struct promtext_matcher *m,
		 size_t n, double *ret_avg, size_t *ret_series);

/*
 * The buckets of histogram `family` (its <family>_bucket samples) over all
 * matching series, summed by le as `sum by (le)` does, sorted by le.
 * -ENOENT if no bucket matches, -E2BIG if there are more than cap distinct
 * bounds, -EINVAL if a bucket has no or a malformed le label. Without a +Inf
 * bucket, the family's _count (when present) is used as one.
 */
int promtext_histogram(const struct promtext *page, const char *family,
		       const struct promtext_matcher *m, size_t n, struct promtext_bucket *buckets,
		       size_t cap, size_t *ret_n);

/*
 * The q-quantile of the observations made between two scrapes of the same
 * histogram, as histogram_quantile(q, increase(x_bucket[w])) computes it:
 * per-bucket deltas, linear interpolation inside the bucket that holds the
 * rank, the lower bound of the +Inf bucket when the rank falls there, 0 as
 * the lower edge of the first bucket, monotonicity forced.
 *
 * A bucket that went down means the server restarted (a counter reset):
 * then every observation in cur happened inside the window, so cur is used
 * as the delta, whole. Bounds present in only one scrape are dropped.
 * q < 0 gives -Inf and q > 1 gives +Inf, as PromQL does.
 * -ENODATA: no observations in the window, no +Inf bucket, fewer than two
 * buckets, or n_prev == 0 (no window yet); -EINVAL for a NaN q.
 */
int promtext_histogram_quantile(double q, const struct promtext_bucket *prev, size_t n_prev,
				const struct promtext_bucket *cur, size_t n_cur, double *ret_value);

/* The same computation on one set of cumulative buckets (no deltas). */
int promtext_bucket_quantile(double q, const struct promtext_bucket *buckets, size_t n,
			     double *ret_value);
