/*
 * The registry: a list of families in registration order, each with a list
 * of series. Creating a series takes a mutex (rare: callers keep the
 * pointer); updating one is a compare-and-swap on a double's bits.
 */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double metrics_latency_buckets[] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};
const size_t metrics_latency_n_buckets = sizeof(metrics_latency_buckets) /
					 sizeof(metrics_latency_buckets[0]);

#define MAX_LABELS 8

struct metric_series {
	struct metric_series *next;
	const struct metric_family *family;
	char *values[MAX_LABELS];
	_Atomic uint64_t value;    /* double bits: counter/gauge, or sum */
	_Atomic uint64_t count;    /* histograms */
	_Atomic uint64_t *buckets; /* histograms: per-bucket (not cumulative) */
};

struct family_entry {
	struct family_entry *next;
	const struct metric_family *family;
	struct metric_series *series;
	struct metric_series **tail;
};

struct metrics {
	pthread_mutex_t lock;
	struct family_entry *families, **tail;
	size_t n_series;
};

static uint64_t d2u(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof(u));
	return u;
}

static double u2d(uint64_t u)
{
	double d;
	memcpy(&d, &u, sizeof(d));
	return d;
}

int metrics_new(struct metrics **ret)
{
	struct metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	m->tail = &m->families;
	*ret = m;
	return 0;
}

static void series_free(struct metric_series *s)
{
	for (int i = 0; i < MAX_LABELS; i++)
		free(s->values[i]);
	free(s->buckets);
	free(s);
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	for (struct family_entry *f = m->families, *fn; f; f = fn) {
		fn = f->next;
		for (struct metric_series *s = f->series, *sn; s; s = sn) {
			sn = s->next;
			series_free(s);
		}
		free(f);
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static size_t n_labels(const struct metric_family *f)
{
	size_t n = 0;
	while (f->labels && f->labels[n])
		n++;
	return n;
}

static bool same_values(const struct metric_series *s, const char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s->values[i], v[i] ? v[i] : "") != 0)
			return false;
	return true;
}

static struct metric_series *series_new(const struct metric_family *f, const char *const *v, size_t n)
{
	struct metric_series *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->family = f;
	for (size_t i = 0; i < n; i++)
		if (!(s->values[i] = strdup(v[i] ? v[i] : "")))
			goto fail;
	if (f->type == METRIC_HISTOGRAM &&
	    !(s->buckets = calloc(f->n_buckets + 1, sizeof(*s->buckets))))
		goto fail;
	return s;
fail:
	series_free(s);
	return NULL;
}

struct metric_series *metrics_series(struct metrics *m, const struct metric_family *f,
				     const char *const *label_values)
{
	struct family_entry *fe;
	struct metric_series *s = NULL;
	size_t n = n_labels(f);

	if (!m || n > MAX_LABELS)
		return NULL;
	pthread_mutex_lock(&m->lock);
	for (fe = m->families; fe; fe = fe->next)
		if (fe->family == f || strcmp(fe->family->name, f->name) == 0)
			break;
	if (!fe) {
		fe = calloc(1, sizeof(*fe));
		if (!fe)
			goto out;
		fe->family = f;
		fe->tail = &fe->series;
		*m->tail = fe;
		m->tail = &fe->next;
	}
	for (s = fe->series; s; s = s->next)
		if (same_values(s, label_values, n))
			goto out;
	if (m->n_series >= METRICS_MAX_SERIES)
		goto out;
	s = series_new(fe->family, label_values, n);
	if (s) {
		*fe->tail = s;
		fe->tail = &s->next;
		m->n_series++;
	}
out:
	pthread_mutex_unlock(&m->lock);
	return s;
}

static void atomic_add_double(_Atomic uint64_t *p, double v)
{
	uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(p, &old, d2u(u2d(old) + v),
						      memory_order_relaxed, memory_order_relaxed))
		;
}

void metric_add(struct metric_series *s, double v)
{
	if (s)
		atomic_add_double(&s->value, v);
}

void metric_set(struct metric_series *s, double v)
{
	if (s)
		atomic_store_explicit(&s->value, d2u(v), memory_order_relaxed);
}

double metric_value(const struct metric_series *s)
{
	return s ? u2d(atomic_load_explicit(&s->value, memory_order_relaxed)) : 0;
}

void metric_observe(struct metric_series *s, double v)
{
	size_t i;
	if (!s || !s->buckets)
		return;
	for (i = 0; i < s->family->n_buckets; i++)
		if (v <= s->family->buckets[i])
			break;
	atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
	atomic_add_double(&s->value, v);
}

/* ---- rendering -------------------------------------------------------- */

struct out {
	char *buf;
	size_t len, cap;
	int err;
};

static void emit(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;
	if (o->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->err = -EINVAL;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = o->cap * 2 + (size_t)n;
		char *b = realloc(o->buf, cap);
		if (!b) {
			o->err = -ENOMEM;
			return;
		}
		o->buf = b;
		o->cap = cap;
	}
}

static void emit_escaped(struct out *o, const char *s, bool help)
{
	for (; *s; s++) {
		if (*s == '\\')
			emit(o, "\\\\");
		else if (*s == '\n')
			emit(o, "\\n");
		else if (*s == '"' && !help)
			emit(o, "\\\"");
		else
			emit(o, "%c", *s);
	}
}

/* {a="x",b="y"} plus an optional extra label (le). */
static void emit_labels(struct out *o, const struct metric_series *s, const char *extra_name,
			const char *extra_value)
{
	size_t n = n_labels(s->family);
	if (n == 0 && !extra_name)
		return;
	emit(o, "{");
	for (size_t i = 0; i < n; i++) {
		emit(o, "%s%s=\"", i ? "," : "", s->family->labels[i]);
		emit_escaped(o, s->values[i], false);
		emit(o, "\"");
	}
	if (extra_name)
		emit(o, "%s%s=\"%s\"", n ? "," : "", extra_name, extra_value);
	emit(o, "}");
}

static void emit_number(struct out *o, double v)
{
	if (isnan(v))
		emit(o, "NaN");
	else if (isinf(v))
		emit(o, v > 0 ? "+Inf" : "-Inf");
	else
		emit(o, "%.17g", v);
}

static void render_series(struct out *o, const struct metric_series *s)
{
	const struct metric_family *f = s->family;
	if (f->type != METRIC_HISTOGRAM) {
		emit(o, "%s", f->name);
		emit_labels(o, s, NULL, NULL);
		emit(o, " ");
		emit_number(o, metric_value(s));
		emit(o, "\n");
		return;
	}
	uint64_t cum = 0;
	char le[32];
	for (size_t i = 0; i <= f->n_buckets; i++) {
		cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
		if (i < f->n_buckets)
			snprintf(le, sizeof(le), "%g", f->buckets[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		emit(o, "%s_bucket", f->name);
		emit_labels(o, s, "le", le);
		emit(o, " %llu\n", (unsigned long long)cum);
	}
	emit(o, "%s_sum", f->name);
	emit_labels(o, s, NULL, NULL);
	emit(o, " ");
	emit_number(o, metric_value(s));
	emit(o, "\n%s_count", f->name);
	emit_labels(o, s, NULL, NULL);
	emit(o, " %llu\n", (unsigned long long)cum);
}

int metrics_render(struct metrics *m, char **ret, size_t *ret_len)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };
	struct out o = { .cap = 16384 };

	o.buf = malloc(o.cap);
	if (!o.buf)
		return -ENOMEM;
	o.buf[0] = '\0';
	if (m) {
		pthread_mutex_lock(&m->lock);
		for (struct family_entry *fe = m->families; fe; fe = fe->next) {
			emit(&o, "# HELP %s ", fe->family->name);
			emit_escaped(&o, fe->family->help, true);
			emit(&o, "\n# TYPE %s %s\n", fe->family->name, types[fe->family->type]);
			for (struct metric_series *s = fe->series; s; s = s->next)
				render_series(&o, s);
		}
		pthread_mutex_unlock(&m->lock);
	}
	if (o.err) {
		free(o.buf);
		return o.err;
	}
	*ret = o.buf;
	*ret_len = o.len;
	return 0;
}
