/*
 * simulate: the autoscaling decision (autoscale.c) run offline.
 *
 * Data flow: the InferenceService YAML -> struct simulate_scaling (the
 * CRD's spec.scaling mapped onto struct autoscale_spec); then either
 *  - trace replay: JSON line -> pods and service values -> evaluate ->
 *    record in the history -> one output line; or
 *  - closed loop: load trace -> per step, a queueing model of the
 *    replicas serves the arrivals and produces the metrics -> evaluate ->
 *    record -> apply (new replicas serve after the load time) -> one
 *    output line and, at the end, an SVG plot.
 *
 * Every input has a bound: the YAML file's size, a trace line's length,
 * the pods in a line, the load points and the steps of a run.
 */
#include "simulate.h"

#include "controls.h"
#include "flags.h"
#include "scalingspec.h"
#include "isvc.h"
#include "scaletozero.h"
#include "yamljson.h"
#include "text.h"
#include "ktime.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_CAPACITY 10.0
#define DEFAULT_LATENCY_MS 1000.0
#define DEFAULT_LOAD_SECONDS 60.0
#define MAX_T_SECONDS 1e12 /* keeps t in ms well inside int64 */
#define MAX_TRACE_REPLICAS 1000000
#define MAX_CRD_REPLICAS SCALINGSPEC_MAX_REPLICAS

/* ------------------------------------------------------------------ */
/* Messages and JSON values                                            */

/* A short JSON number: 15, 2.5, 0.333 (at most three decimals). */
static const char *fmt_num(char *buf, size_t len, double v)
{
	size_t n;

	if (!isfinite(v)) {
		snprintf(buf, len, "null");
		return buf;
	}
	if (fabs(v) < 1e15 && v == floor(v)) {
		snprintf(buf, len, "%.0f", v);
	} else {
		snprintf(buf, len, "%.3f", v);
		n = strlen(buf);
		while (n > 1 && buf[n - 1] == '0')
			buf[--n] = '\0';
		if (n > 1 && buf[n - 1] == '.')
			buf[--n] = '\0';
	}
	if (strcmp(buf, "-0") == 0)
		snprintf(buf, len, "0");
	return buf;
}

/* ------------------------------------------------------------------ */
/* The InferenceService file                                           */

struct isvc_pick {
	json_object *doc;
	int line;
};

static int pick_isvc(json_object *doc, int line, void *userdata)
{
	struct isvc_pick *p = userdata;
	json_object *kind = scalingspec_field(doc, "kind");

	if (p->doc || !kind || !json_object_is_type(kind, json_type_string) ||
	    strcmp(json_object_get_string(kind), "InferenceService") != 0)
		return 0;
	p->doc = json_object_get(doc);
	p->line = line;
	return 0;
}

int simulate_isvc_parse(const char *buf, size_t len, const char *name, struct simulate_scaling *ret,
			char *err, size_t errlen)
{
	struct isvc_pick p = { NULL, 0 };
	struct simulate_scaling sc;
	json_object *spec, *meta_name;
	char why[512];
	int64_t replicas;
	int r;

	if (!buf || !ret)
		return -EINVAL;
	r = yamljson_parse(buf, len, pick_isvc, &p, why, sizeof(why));
	if (r < 0) {
		text_errf(err, errlen, r, "%s: %s", name, why);
		goto out;
	}
	if (!p.doc) {
		r = text_errf(err, errlen, -EINVAL,
			      "%s: no document of kind "
			      "InferenceService",
			      name);
		goto out;
	}
	spec = scalingspec_field(p.doc, "spec");
	if (!scalingspec_field(spec, "scaling")) {
		r = text_errf(err, errlen, -EINVAL,
			      "%s:%d: the InferenceService has "
			      "no spec.scaling: nothing to simulate",
			      name, p.line);
		goto out;
	}
	struct scalingspec ss;
	r = scalingspec_from_json(scalingspec_field(spec, "scaling"), &ss, why, sizeof(why));
	if (r == 0) {
		memset(&sc, 0, sizeof(sc));
		sc.spec = ss.spec;
		sc.interval_seconds = ss.interval_seconds;
		sc.replicas = 1;
		sc.scale_to_zero = ss.scale_to_zero;
		if (sc.scale_to_zero.set && !sc.scale_to_zero.activation_timeout_seconds) {
			/* The default: the warm-up's timeout (isvc.h). */
			int64_t t = ISVC_WARMUP_TIMEOUT_S_DEFAULT;
			json_object *w = scalingspec_field(spec, "warmup");
			if (w && scalingspec_get_int(w, "spec.warmup", "timeoutSeconds", 1, 3600,
						     &t, why, sizeof(why)) < 0)
				t = ISVC_WARMUP_TIMEOUT_S_DEFAULT;
			sc.scale_to_zero.activation_timeout_seconds = (int32_t)t;
		}
		/* The GPUs of a replica: the CRD's default count is 1. */
		json_object *gpu = scalingspec_field(scalingspec_field(spec, "resources"), "gpu");
		int64_t count = 1;
		if (gpu && scalingspec_get_int(gpu, "spec.resources.gpu", "count", 0, 16, &count,
					       why, sizeof(why)) < 0)
			r = -EINVAL;
		sc.gpus = gpu ? (int32_t)count : 0;
	}
	if (r == 0)
		r = scalingspec_get_int(spec, "spec", "replicas", 0, MAX_CRD_REPLICAS, &replicas,
					why, sizeof(why));
	if (r < 0) {
		text_errf(err, errlen, r, "%s:%d: %s", name, p.line, why);
		goto out;
	}
	if (r > 0)
		sc.replicas = (int32_t)replicas;
	meta_name = scalingspec_field(scalingspec_field(p.doc, "metadata"), "name");
	if (meta_name && json_object_is_type(meta_name, json_type_string))
		snprintf(sc.name, sizeof(sc.name), "%s", json_object_get_string(meta_name));
	*ret = sc;
	r = 0;
out:
	json_object_put(p.doc);
	return r;
}

/* ------------------------------------------------------------------ */
/* JSON lines                                                          */

struct reader {
	FILE *f;
	const char *name;
	long line; /* the number of the line in buf */
	char *buf; /* SIMULATE_MAX_LINE + 1 bytes */
	size_t len;
	json_tokener *tok;
};

static int reader_init(struct reader *rd, FILE *f, const char *name)
{
	memset(rd, 0, sizeof(*rd));
	rd->f = f;
	rd->name = name ? name : "-";
	rd->buf = malloc(SIMULATE_MAX_LINE + 1);
	rd->tok = json_tokener_new();
	if (!rd->buf || !rd->tok)
		return -ENOMEM;
	json_tokener_set_flags(rd->tok, JSON_TOKENER_STRICT);
	return 0;
}

static void reader_done(struct reader *rd)
{
	free(rd->buf);
	if (rd->tok)
		json_tokener_free(rd->tok);
}

static int line_err(const struct reader *rd, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* A message about the current line: "trace.jsonl:12: ...". */
static int line_err(const struct reader *rd, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!err || !errlen)
		return -EINVAL;
	n = snprintf(err, errlen, "%s:%ld: ", rd->name, rd->line);
	if (n >= 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* 1 with the next line in rd->buf (no line end), 0 at the end, or < 0. */
static int reader_next(struct reader *rd, char *err, size_t errlen)
{
	int c;

	rd->len = 0;
	rd->line++;
	errno = 0;
	while ((c = getc(rd->f)) != EOF && c != '\n') {
		if (rd->len == SIMULATE_MAX_LINE)
			return line_err(rd, err, errlen,
					"line longer than %d "
					"bytes",
					SIMULATE_MAX_LINE);
		if (c == '\0')
			return line_err(rd, err, errlen, "a NUL byte");
		rd->buf[rd->len++] = (char)c;
	}
	if (ferror(rd->f))
		return text_errf(err, errlen, -EIO, "%s: cannot read: %s", rd->name,
				 strerror(errno ? errno : EIO));
	if (c == EOF && rd->len == 0)
		return 0;
	if (rd->len && rd->buf[rd->len - 1] == '\r')
		rd->len--;
	rd->buf[rd->len] = '\0';
	return 1;
}

static bool blank(const char *s)
{
	while (*s && isspace((unsigned char)*s))
		s++;
	return *s == '\0';
}

/* The current line as one JSON object (the caller puts it). */
static int reader_json(struct reader *rd, json_object **ret, char *err, size_t errlen)
{
	enum json_tokener_error je;
	json_object *o;
	size_t end;

	json_tokener_reset(rd->tok);
	o = json_tokener_parse_ex(rd->tok, rd->buf, (int)rd->len);
	je = json_tokener_get_error(rd->tok);
	if (je == json_tokener_continue)
		return line_err(rd, err, errlen,
				"not valid JSON: the line "
				"ends inside a value");
	if (je != json_tokener_success)
		return line_err(rd, err, errlen, "not valid JSON: %s", json_tokener_error_desc(je));
	end = json_tokener_get_parse_end(rd->tok);
	if (!blank(rd->buf + end) || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return line_err(rd, err, errlen,
				"not valid JSON: want one "
				"object per line");
	}
	*ret = o;
	return 0;
}

/* A required number of seconds (key "t"). */
static int line_time(const struct reader *rd, json_object *o, double *ret, char *err, size_t errlen)
{
	json_object *v;

	if (!json_object_object_get_ex(o, "t", &v))
		return line_err(rd, err, errlen, "\"t\" is missing");
	if (!scalingspec_json_number(v, ret) || fabs(*ret) > MAX_T_SECONDS)
		return line_err(rd, err, errlen,
				"\"t\" must be a number of "
				"seconds");
	return 0;
}

/* Lines must not go back in time: the history is ordered by t. */
static int check_order(const struct reader *rd, bool *have_last, double *last, double t, char *err,
		       size_t errlen)
{
	char a[64], b[64];

	if (*have_last && t < *last)
		return line_err(rd, err, errlen,
				"\"t\" goes back in time (%s "
				"after %s)",
				fmt_num(a, sizeof(a), t), fmt_num(b, sizeof(b), *last));
	*have_last = true;
	*last = t;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Trace replay                                                        */

struct replay {
	const struct autoscale_spec *spec;
	struct autoscale_history *hist;
	struct autoscale_pod *pods; /* SIMULATE_MAX_PODS */
	size_t n_pods;
	struct autoscale_service service;
	bool have_last;
	double last_t;
};

static int spec_index(const struct autoscale_spec *s, enum autoscale_metric_type t)
{
	for (size_t i = 0; i < s->n_metrics; i++)
		if (s->metrics[i].type == t)
			return (int)i;
	return -1;
}

/*
 * {"QueueDepth": 7, ...} of a pod (per_pod) or of the service into
 * present and values, indexed like the spec. A metric the spec does not
 * scale on is skipped; a type in the wrong place is an error, as it
 * would silently change nothing.
 */
static int read_values(const struct reader *rd, json_object *m, const char *where, bool per_pod,
		       const struct autoscale_spec *s, uint32_t *present, double *values, char *err,
		       size_t errlen)
{
	enum autoscale_metric_type t;
	double d;
	int i;

	if (!m)
		return 0;
	if (!json_object_is_type(m, json_type_object))
		return line_err(rd, err, errlen, "%s must be an object", where);
	json_object_object_foreach(m, key, val)
	{
		if (autoscale_metric_type_parse(key, &t) < 0)
			return line_err(rd, err, errlen,
					"%s: unknown metric "
					"type \"%.64s\"",
					where, key);
		if (autoscale_metric_per_pod(t) != per_pod)
			return line_err(rd, err, errlen,
					"%s: %s is a %s "
					"metric: put it under %s",
					where, key, per_pod ? "service-level" : "per-pod",
					per_pod ? "\"service\"" : "the pods' \"metrics\"");
		if (!val)
			continue; /* null: missing */
		if (!scalingspec_json_number(val, &d))
			return line_err(rd, err, errlen,
					"%s.%s must be a "
					"number",
					where, key);
		i = spec_index(s, t);
		if (i < 0)
			continue;
		values[i] = d;
		*present |= 1u << i;
	}
	return 0;
}

static int read_bool(const struct reader *rd, json_object *p, const char *key, size_t i, bool dflt,
		     bool *ret, char *err, size_t errlen)
{
	json_object *v = scalingspec_field(p, key);

	*ret = dflt;
	if (!v)
		return 0;
	if (!json_object_is_type(v, json_type_boolean))
		return line_err(rd, err, errlen,
				"pods[%zu].%s must be true "
				"or false",
				i, key);
	*ret = json_object_get_boolean(v);
	return 0;
}

/* "pods": [{"ready": bool, "terminating": bool, "metrics": {...}}]. */
static int read_pods(struct replay *rp, const struct reader *rd, json_object *o, char *err,
		     size_t errlen)
{
	json_object *arr = scalingspec_field(o, "pods");
	bool ready = true, terminating = false;
	char where[48];
	int r;

	rp->n_pods = 0;
	if (!arr)
		return 0;
	if (!json_object_is_type(arr, json_type_array))
		return line_err(rd, err, errlen, "\"pods\" must be a list");
	if (json_object_array_length(arr) > SIMULATE_MAX_PODS)
		return line_err(rd, err, errlen, "more than %d pods", SIMULATE_MAX_PODS);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *p = json_object_array_get_idx(arr, i);
		struct autoscale_pod *pod = &rp->pods[i];
		if (!json_object_is_type(p, json_type_object))
			return line_err(rd, err, errlen,
					"pods[%zu] must be "
					"an object",
					i);
		r = read_bool(rd, p, "ready", i, true, &ready, err, errlen);
		if (r == 0)
			r = read_bool(rd, p, "terminating", i, false, &terminating, err, errlen);
		if (r < 0)
			return r;
		memset(pod, 0, sizeof(*pod));
		pod->state = terminating ? AUTOSCALE_POD_IGNORED :
			     ready       ? AUTOSCALE_POD_READY :
					   AUTOSCALE_POD_UNREADY;
		snprintf(where, sizeof(where), "pods[%zu].metrics", i);
		r = read_values(rd, scalingspec_field(p, "metrics"), where, true, rp->spec,
				&pod->present, pod->values, err, errlen);
		if (r < 0)
			return r;
		rp->n_pods = i + 1;
	}
	return 0;
}

/* The controls acting in this decision, only those that are: paused,
 * fallback (with the failures in a row), panic and its start and end,
 * and the bounds in force when schedules are set. */
static void print_controls(FILE *out, const struct autoscale_spec *s,
			   const struct autoscale_result *res)
{
	if (res->paused || res->direction_paused)
		fputs(",\"paused\":true", out);
	if (res->state.failures > 0)
		fprintf(out, ",\"failures\":%d", res->state.failures);
	if (res->fallback)
		fputs(",\"fallback\":true", out);
	if (res->panicking)
		fputs(",\"panic\":true", out);
	if (res->panic_started)
		fputs(",\"panicStarted\":true", out);
	if (res->panic_ended)
		fputs(",\"panicEnded\":true", out);
	if (s->n_schedules)
		fprintf(out, ",\"minReplicas\":%d,\"maxReplicas\":%d", res->min_replicas,
			res->max_replicas);
	if (res->predicted > 0)
		fprintf(out, ",\"predicted\":%d", res->predicted);
}

static void print_decision(FILE *out, const struct autoscale_spec *s, double t,
			   const struct autoscale_result *res)
{
	char tb[64];

	fprintf(out,
		"{\"t\":%s,\"replicas\":%d,\"desired\":%d,\"reason\":"
		"\"%s\",\"limited\":%s",
		fmt_num(tb, sizeof(tb), t), res->current, res->desired, res->reason,
		res->limited ? "true" : "false");
	if (res->metric >= 0)
		fprintf(out, ",\"metric\":\"%s\"",
			autoscale_metric_type_name(s->metrics[res->metric].type));
	print_controls(out, s, res);
	fputs("}\n", out);
}

/* "annotations": the object's annotations at this line (pause). */
static int read_pause(const struct reader *rd, json_object *o, int32_t current,
		      struct autoscale_pause *ret, char *err, size_t errlen)
{
	json_object *a = scalingspec_field(o, "annotations");
	char why[160];

	memset(ret, 0, sizeof(*ret));
	if (!a)
		return 0;
	if (!json_object_is_type(a, json_type_object))
		return line_err(rd, err, errlen,
				"\"annotations\" must be an "
				"object");
	if (controls_pause(a, current, ret, why, sizeof(why)) < 0)
		return line_err(rd, err, errlen, "%s", why);
	return 0;
}

/* One line: evaluate at t with the history so far, record, print. */
static int replay_line(struct replay *rp, const struct reader *rd, json_object *o, FILE *out,
		       char *err, size_t errlen)
{
	struct autoscale_input in = { .spec = rp->spec };
	struct autoscale_result res;
	struct autoscale_pause pause;
	json_object *v;
	int64_t replicas;
	double t = 0;
	int r;

	r = line_time(rd, o, &t, err, errlen);
	if (r == 0)
		r = check_order(rd, &rp->have_last, &rp->last_t, t, err, errlen);
	if (r < 0)
		return r;
	if (!json_object_object_get_ex(o, "replicas", &v))
		return line_err(rd, err, errlen, "\"replicas\" is missing");
	if (!scalingspec_json_whole(v, 0, MAX_TRACE_REPLICAS, &replicas))
		return line_err(rd, err, errlen,
				"\"replicas\" must be a whole "
				"number from 0 to %d",
				MAX_TRACE_REPLICAS);
	r = read_pods(rp, rd, o, err, errlen);
	memset(&rp->service, 0, sizeof(rp->service));
	if (r == 0)
		r = read_values(rd, scalingspec_field(o, "service"), "service", false, rp->spec,
				&rp->service.present, rp->service.values, err, errlen);
	if (r < 0)
		return r;
	if (r == 0)
		r = read_pause(rd, o, (int32_t)replicas, &pause, err, errlen);
	if (r < 0)
		return r;
	in.current_replicas = (int32_t)replicas;
	in.pods = rp->pods;
	in.n_pods = rp->n_pods;
	in.service = &rp->service;
	in.now_ms = llround(t * KTIME_MSEC_PER_SEC);
	in.pause = &pause;
	autoscale_history_attach(rp->hist, &in);
	r = autoscale_evaluate(&in, &res);
	if (r == 0)
		r = autoscale_history_record(rp->hist, rp->spec, &res, in.now_ms);
	if (r < 0)
		return line_err(rd, err, errlen, "cannot evaluate: %s", strerror(-r));
	print_decision(out, rp->spec, t, &res);
	return 0;
}

int simulate_trace(const struct simulate_scaling *sc, FILE *in, const char *name, FILE *out,
		   char *err, size_t errlen)
{
	struct replay rp = { .spec = sc ? &sc->spec : NULL };
	struct reader rd;
	json_object *o;
	int r;

	if (!sc || !in || !out)
		return -EINVAL;
	r = reader_init(&rd, in, name);
	if (r == 0)
		r = autoscale_history_new(&rp.hist);
	if (r == 0 && !(rp.pods = calloc(SIMULATE_MAX_PODS, sizeof(*rp.pods))))
		r = -ENOMEM;
	if (r < 0) {
		text_errf(err, errlen, r, "out of memory");
		goto out;
	}
	while ((r = reader_next(&rd, err, errlen)) > 0) {
		if (blank(rd.buf))
			continue;
		r = reader_json(&rd, &o, err, errlen);
		if (r < 0)
			break;
		r = replay_line(&rp, &rd, o, out, err, errlen);
		json_object_put(o);
		if (r < 0)
			break;
	}
out:
	free(rp.pods);
	autoscale_history_free(rp.hist);
	reader_done(&rd);
	return r;
}

/* ------------------------------------------------------------------ */
/* Closed loop: the load trace                                         */

struct load_point {
	double t;
	double rps;
	bool down;                    /* "metricsDown": no metrics from here */
	struct autoscale_pause pause; /* "annotations" from here */
	bool pause_current;           /* kinfer.io/paused: at the current count */
};

struct load {
	struct load_point *p;
	size_t n, cap;
};

static int load_add(struct load *l, double t, double rps, bool down,
		    const struct autoscale_pause *pause, bool current)
{
	struct load_point *p;
	size_t ncap;

	if (l->n == l->cap) {
		ncap = l->cap ? l->cap * 2 : 256;
		p = realloc(l->p, ncap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->p = p;
		l->cap = ncap;
	}
	l->p[l->n++] = (struct load_point){ t, rps, down, *pause, pause->replicas_set && current };
	return 0;
}

static int load_line(struct load *l, const struct reader *rd, json_object *o, bool *have_last,
		     double *last, char *err, size_t errlen)
{
	struct autoscale_pause pause;
	json_object *v;
	double t = 0, rps = 0;
	bool down;
	int r;

	r = line_time(rd, o, &t, err, errlen);
	if (r == 0)
		r = check_order(rd, have_last, last, t, err, errlen);
	if (r < 0)
		return r;
	if (!json_object_object_get_ex(o, "rps", &v))
		return line_err(rd, err, errlen, "\"rps\" is missing");
	if (!scalingspec_json_number(v, &rps) || rps < 0 || rps > 1e12)
		return line_err(rd, err, errlen,
				"\"rps\" must be a number of "
				"requests per second, >= 0");
	v = scalingspec_field(o, "metricsDown");
	if (v && !json_object_is_type(v, json_type_boolean))
		return line_err(rd, err, errlen,
				"\"metricsDown\" must be true "
				"or false");
	down = v && json_object_get_boolean(v);
	r = read_pause(rd, o, -1, &pause, err, errlen);
	if (r < 0)
		return r;
	if (l->n >= SIMULATE_MAX_LOAD_POINTS)
		return line_err(rd, err, errlen, "more than %d load points",
				SIMULATE_MAX_LOAD_POINTS);
	if (load_add(l, t, rps, down, &pause,
		     !scalingspec_field(scalingspec_field(o, "annotations"),
					AUTOSCALE_ANNOTATION_PAUSED_REPLICAS)) < 0)
		return text_errf(err, errlen, -ENOMEM, "out of memory");
	return 0;
}

static int read_load(FILE *in, const char *name, struct load *l, char *err, size_t errlen)
{
	struct reader rd;
	bool have_last = false;
	json_object *o;
	double last = 0;
	int r;

	r = reader_init(&rd, in, name);
	if (r < 0) {
		reader_done(&rd);
		return text_errf(err, errlen, r, "out of memory");
	}
	while ((r = reader_next(&rd, err, errlen)) > 0) {
		if (blank(rd.buf))
			continue;
		r = reader_json(&rd, &o, err, errlen);
		if (r < 0)
			break;
		r = load_line(l, &rd, o, &have_last, &last, err, errlen);
		json_object_put(o);
		if (r < 0)
			break;
	}
	if (r == 0 && (l->n < 2 || l->p[l->n - 1].t <= l->p[0].t))
		r = text_errf(err, errlen, -EINVAL,
			      "%s: the load trace needs two "
			      "lines or more with different t: the run goes from "
			      "the first t to the last",
			      rd.name);
	reader_done(&rd);
	return r;
}

/*
 * Requests arriving in [a, b): the integral of the piecewise-constant
 * rate. *idx is the segment a falls in, kept between calls since a only
 * grows.
 */
static double arrivals(const struct load *l, size_t *idx, double a, double b)
{
	double sum = 0;

	while (*idx + 1 < l->n && l->p[*idx + 1].t <= a)
		(*idx)++;
	for (size_t i = *idx; i + 1 < l->n && l->p[i].t < b; i++) {
		double s = fmax(a, l->p[i].t), e = fmin(b, l->p[i + 1].t);
		if (e > s)
			sum += l->p[i].rps * (e - s);
	}
	return sum;
}

/* ------------------------------------------------------------------ */
/* Closed loop: the model                                              */

/* One step of the run, for the output line and the plot. */
struct sample {
	double t;     /* end of the step: when the evaluation ran */
	double rps;   /* mean arrival rate over the step */
	double queue; /* requests waiting at t */
	double p99;   /* ms; NaN with no ready replica */
	int32_t replicas, ready, desired;
	int32_t min, max; /* the bounds in force (schedules) */
	bool panic, fallback, paused, predicted;
};

/* What scale to zero did over a run (see simulate.h). */
struct stz_stats {
	int32_t scaled_to_zero, cold_starts;
	double requests, wait_total, wait_max, overflow, timed_out;
	double replica_seconds;
};

struct loop {
	const struct simulate_scaling *sc;
	struct autoscale_spec spec; /* without Custom metrics */
	/* scaleToZero with minReplicas 0: the idle decision runs, and the
	 * metrics decide with a floor of one replica (spec1). */
	bool stz;
	struct autoscale_spec spec1;
	struct scaletozero_state zs;
	int64_t activation_ms; /* the last first-request-at-zero */
	double cold_start;     /* seconds from it to serving */
	struct stz_stats st;
	struct simulate_model m;
	struct autoscale_history *hist;
	double *ready_at;           /* per replica: serves from then */
	struct autoscale_pod *pods; /* cap */
	int32_t cap;                /* the most replicas the run may have */
	int32_t replicas;
	double queue;
	struct sample *samples; /* every step, for the plot */
	size_t n_samples;
};

/* What the replicas did over one step and show at its end. */
struct observation {
	double rps; /* arrivals per second */
	double served_rps;
	double util;    /* percent of the capacity available in the step */
	double cap_rps; /* capacity of the replicas ready at the end */
	double p99;     /* ms */
	int32_t ready;
};

/*
 * Serve the arrivals of [a, b). Each replica serves capacity requests/s
 * from its ready_at on; what cannot be served waits in one queue (a
 * load balancer in front of identical replicas), first come first
 * served. P99 is the latency with no queue plus the time the queue takes
 * to drain at the ready replicas' capacity.
 */
static void serve(struct loop *l, double a, double b, double arrived, struct observation *ob)
{
	double cap_req = 0, total, served, dt = b - a;

	memset(ob, 0, sizeof(*ob));
	for (int32_t i = 0; i < l->replicas; i++) {
		if (l->ready_at[i] < b)
			cap_req += b - fmax(a, l->ready_at[i]);
		ob->ready += l->ready_at[i] <= b;
	}
	cap_req *= l->m.capacity;
	total = l->queue + arrived;
	served = fmin(total, cap_req);
	l->queue = total - served;
	if (l->queue < 1e-9)
		l->queue = 0;
	ob->rps = arrived / dt;
	ob->served_rps = served / dt;
	ob->util = cap_req > 0 ? fmin(100, 100 * served / cap_req) : NAN;
	ob->cap_rps = l->m.capacity * ob->ready;
	ob->p99 = ob->ready ? l->m.latency_ms + 1000 * l->queue / ob->cap_rps : NAN;
}

/* A ready replica's value of a per-pod metric (all replicas are alike). */
static double pod_value(const struct loop *l, enum autoscale_metric_type t,
			const struct observation *ob)
{
	double n = ob->ready;

	switch (t) {
	case AUTOSCALE_QUEUE_DEPTH:
		return l->queue / n;
	case AUTOSCALE_CONCURRENCY: /* in flight: running and waiting */
		return (ob->served_rps * l->m.latency_ms / (double)KTIME_MSEC_PER_SEC + l->queue) / n;
	case AUTOSCALE_REQUESTS_PER_SECOND:
		return ob->rps / n;
	case AUTOSCALE_GPU_UTILIZATION:
	case AUTOSCALE_KV_CACHE_UTILIZATION:
		return ob->util;
	default:
		return NAN;
	}
}

/* A service-level metric: P99, or the queue wait plus a tenth of it. */
static double service_value(const struct loop *l, enum autoscale_metric_type t,
			    const struct observation *ob)
{
	if (!ob->ready)
		return NAN;
	if (t == AUTOSCALE_LATENCY_P99)
		return ob->p99;
	if (t == AUTOSCALE_TIME_TO_FIRST_TOKEN_P99)
		return 1000 * l->queue / ob->cap_rps + l->m.latency_ms / 10;
	return NAN;
}

/* The pods and the service as a scrape at b would see them. */
static void observe(struct loop *l, double b, const struct observation *ob,
		    struct autoscale_service *sv)
{
	memset(sv, 0, sizeof(*sv));
	for (size_t k = 0; k < l->spec.n_metrics; k++) {
		enum autoscale_metric_type t = l->spec.metrics[k].type;
		double v = service_value(l, t, ob);
		if (!autoscale_metric_per_pod(t) && !isnan(v)) {
			sv->values[k] = v;
			sv->present |= 1u << k;
		}
	}
	for (int32_t i = 0; i < l->replicas; i++) {
		struct autoscale_pod *p = &l->pods[i];
		memset(p, 0, sizeof(*p));
		p->state = l->ready_at[i] <= b ? AUTOSCALE_POD_READY : AUTOSCALE_POD_UNREADY;
		for (size_t k = 0; p->state == AUTOSCALE_POD_READY && k < l->spec.n_metrics; k++) {
			enum autoscale_metric_type t = l->spec.metrics[k].type;
			double v = pod_value(l, t, ob);
			if (autoscale_metric_per_pod(t) && !isnan(v)) {
				p->values[k] = v;
				p->present |= 1u << k;
			}
		}
	}
}

/* Scale to desired at now: new replicas serve after the load time; a
 * scale-down removes the newest first (still loading, then ready). */
static void apply(struct loop *l, int32_t desired, double now)
{
	if (desired > l->cap)
		desired = l->cap;
	if (desired < 0)
		desired = 0;
	while (l->replicas < desired)
		l->ready_at[l->replicas++] = now + l->m.load_seconds;
	while (l->replicas > desired) {
		int32_t newest = 0;
		for (int32_t i = 1; i < l->replicas; i++)
			if (l->ready_at[i] > l->ready_at[newest])
				newest = i;
		l->ready_at[newest] = l->ready_at[--l->replicas];
	}
}

static void print_step(FILE *out, const struct loop *l, const struct sample *s,
		       const struct autoscale_result *res)
{
	char t[64], rps[64], q[64], p[64];

	fprintf(out,
		"{\"t\":%s,\"rps\":%s,\"replicas\":%d,\"ready\":%d,"
		"\"queue\":%s,\"p99_ms\":%s,\"desired\":%d,\"reason\":\"%s\"",
		fmt_num(t, sizeof(t), s->t), fmt_num(rps, sizeof(rps), s->rps), s->replicas,
		s->ready, fmt_num(q, sizeof(q), s->queue), fmt_num(p, sizeof(p), s->p99),
		s->desired, res->reason);
	if (res->metric >= 0)
		fprintf(out, ",\"metric\":\"%s\"",
			autoscale_metric_type_name(l->spec.metrics[res->metric].type));
	print_controls(out, &l->spec, res);
	fputs("}\n", out);
}

/* The first arrival in [a, b) (the segment of a is at or after idx). */
static bool first_arrival(const struct load *l, size_t idx, double a, double b, double *ret)
{
	for (size_t i = idx; i + 1 < l->n && l->p[i].t < b; i++) {
		double s = fmax(a, l->p[i].t), e = fmin(b, l->p[i + 1].t);
		if (e > s && l->p[i].rps > 0) {
			*ret = s;
			return true;
		}
	}
	return false;
}

/* Requests arriving in [a, b), and the sum over them of b - t: what
 * they wait for a replica that serves from b. Exact for the
 * piecewise-constant rate. */
static void held(const struct load *l, double a, double b, double *ret_n, double *ret_wait)
{
	*ret_n = *ret_wait = 0;
	for (size_t i = 0; i + 1 < l->n && l->p[i].t < b; i++) {
		double s = fmax(a, l->p[i].t), e = fmin(b, l->p[i + 1].t);
		if (e <= s)
			continue;
		*ret_n += l->p[i].rps * (e - s);
		*ret_wait += l->p[i].rps * ((b - s) * (b - s) - (b - e) * (b - e)) / 2;
	}
}

/*
 * At zero, the first arrival of [a, b) wakes the service at once (the
 * activator's annotation, decided by scaletozero.h): one replica (or the
 * floor) serves cold_start later; the requests that arrive meanwhile are
 * held, beyond maxPendingRequests refused, past the activation timeout
 * timed out. Returns when the replicas came, or a when none did.
 */
static double wake(struct loop *l, const struct load *ld, size_t idx, double a, double b,
		   const struct autoscale_pause *pause)
{
	const struct scaletozero *z = &l->sc->scale_to_zero;
	struct scaletozero_input zi;
	double ta, n, wait, late, late_wait;
	int32_t lo = 0, hi = l->spec.max_replicas;

	if (!l->stz || l->replicas > 0 || !first_arrival(ld, idx, a, b, &ta))
		return a;
	autoscale_bounds(&l->spec, llround(ta * KTIME_MSEC_PER_SEC), &lo, &hi, NULL);
	zi = (struct scaletozero_input){ .idle_seconds = z->idle_seconds,
					 .now_ms = llround(ta * KTIME_MSEC_PER_SEC),
					 .current = 0,
					 .floor = lo,
					 .max_replicas = hi,
					 .pinned = pause->replicas_set,
					 .scale_in_paused = pause->scale_in,
					 .scale_out_paused = pause->scale_out,
					 .activation_ms = llround(ta * KTIME_MSEC_PER_SEC) };
	if (scaletozero_decide(&zi, &l->zs) != SCALETOZERO_WAKE)
		return a;
	l->activation_ms = zi.activation_ms;
	apply(l, lo > 1 ? (lo < hi ? lo : hi) : 1, ta);
	for (int32_t i = 0; i < l->replicas; i++)
		l->ready_at[i] = ta + l->cold_start;
	held(ld, ta, ta + l->cold_start, &n, &wait);
	l->st.cold_starts++;
	l->st.requests += n;
	l->st.wait_total += wait;
	if (n > 0 && l->cold_start > l->st.wait_max)
		l->st.wait_max = l->cold_start;
	if (z->activation_timeout_seconds > 0 && l->cold_start > z->activation_timeout_seconds) {
		held(ld, ta, ta + l->cold_start - z->activation_timeout_seconds, &late, &late_wait);
		l->st.timed_out += late;
		n -= late;
	}
	if (n > z->max_pending_requests)
		l->st.overflow += n - z->max_pending_requests;
	return ta;
}

/* One step [a, b): serve, observe, evaluate at b, print, record, apply. */
static int step(struct loop *l, const struct load *ld, size_t *idx, double a, double b, FILE *out)
{
	struct autoscale_input in = { .spec = &l->spec };
	struct autoscale_service sv;
	struct autoscale_result res;
	struct observation ob;
	struct sample *s = &l->samples[l->n_samples];
	int r;

	const struct load_point *pt;
	struct autoscale_pause pause;

	double arrived = arrivals(ld, idx, a, b), from;
	enum scaletozero_action za = SCALETOZERO_NONE;
	struct scaletozero_input zi;
	pt = &ld->p[*idx]; /* the load line in force at a */
	pause = pt->pause;
	if (pt->pause_current)
		pause.replicas = l->replicas;
	from = wake(l, ld, *idx, a, b, &pause);
	l->st.replica_seconds += (double)l->replicas * (b - from);
	serve(l, a, b, arrived, &ob);
	observe(l, b, &ob, &sv);
	if (pt->down) {
		/* The metrics source is down: no pod nor service values. */
		for (int32_t i = 0; i < l->replicas; i++)
			l->pods[i].present = 0;
		sv.present = 0;
	}
	in.current_replicas = l->replicas;
	in.pods = l->pods;
	in.n_pods = (size_t)l->replicas;
	in.service = &sv;
	in.now_ms = llround(b * KTIME_MSEC_PER_SEC);
	in.pause = &pause;
	if (l->stz) {
		int32_t lo = 0, hi = l->spec.max_replicas;
		autoscale_bounds(&l->spec, in.now_ms, &lo, &hi, NULL);
		zi = (struct scaletozero_input){ .idle_seconds = l->sc->scale_to_zero.idle_seconds,
						 .now_ms = in.now_ms,
						 .current = l->replicas,
						 .floor = lo,
						 .max_replicas = hi,
						 .pinned = pause.replicas_set,
						 .scale_in_paused = pause.scale_in,
						 .scale_out_paused = pause.scale_out,
						 .known = ob.ready > 0 && !pt->down,
						 .busy = arrived > 0 || l->queue > 0,
						 .activation_ms = l->activation_ms };
		za = scaletozero_decide(&zi, &l->zs);
		if (za == SCALETOZERO_NONE || za == SCALETOZERO_TO_ZERO)
			in.spec = &l->spec1;
	}
	autoscale_history_attach(l->hist, &in);
	r = autoscale_evaluate(&in, &res);
	if (r == 0 && l->stz)
		scaletozero_apply(za, &zi, &res);
	if (r == 0)
		r = autoscale_history_record(l->hist, &l->spec, &res, in.now_ms);
	if (r < 0)
		return r;
	if (l->stz && res.desired == 0 && l->replicas > 0 && za == SCALETOZERO_TO_ZERO)
		l->st.scaled_to_zero++;
	*s = (struct sample){ b,
			      ob.rps,
			      l->queue,
			      ob.p99,
			      l->replicas,
			      ob.ready,
			      res.desired,
			      res.min_replicas,
			      res.max_replicas,
			      res.panicking,
			      res.fallback,
			      res.paused || res.direction_paused,
			      res.predicted > 0 };
	l->n_samples++;
	if (out)
		print_step(out, l, s, &res);
	apply(l, res.desired, b);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Closed loop: the SVG plot                                           */

#define SVG_W 960
#define SVG_H 420
#define SVG_LEFT 60
#define SVG_RIGHT 76
#define SVG_TOP 56
#define SVG_BOTTOM 48

struct axes {
	double t0, t1; /* time */
	double rmax;   /* left axis: replicas */
	double pmax;   /* right axis: P99 ms */
};

/* The smallest 1, 2 or 5 times a power of ten that is >= v. */
static double nice_ceil(double v)
{
	double p;

	if (!(v > 0) || !isfinite(v))
		return 1;
	p = pow(10, floor(log10(v)));
	if (v <= p)
		return p;
	if (v <= 2 * p)
		return 2 * p;
	if (v <= 5 * p)
		return 5 * p;
	return 10 * p;
}

static double svg_x(const struct axes *ax, double t)
{
	return SVG_LEFT + (t - ax->t0) / (ax->t1 - ax->t0) * (SVG_W - SVG_LEFT - SVG_RIGHT);
}

/* y of v on an axis from 0 to max, clipped to the plot. */
static double svg_y(double v, double max)
{
	double h = SVG_H - SVG_TOP - SVG_BOTTOM;

	if (isnan(v) || v > max)
		v = max;
	if (v < 0)
		v = 0;
	return SVG_TOP + h - v / max * h;
}

static void svg_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		default:
			if ((unsigned char)*s >= 0x20)
				fputc(*s, f);
		}
	}
}

static void svg_axes_setup(const struct loop *l, double t0, struct axes *ax)
{
	double rmax = l->spec.max_replicas, pmax = 2 * l->m.latency_ms;

	for (size_t i = 0; i < l->n_samples; i++) {
		const struct sample *s = &l->samples[i];
		rmax = fmax(rmax, fmax(s->rps / l->m.capacity, s->replicas));
		if (isfinite(s->p99))
			pmax = fmax(pmax, s->p99);
	}
	ax->t0 = t0;
	ax->t1 = l->n_samples ? l->samples[l->n_samples - 1].t : t0 + 1;
	ax->rmax = nice_ceil(rmax);
	ax->pmax = nice_ceil(pmax);
}

/* A label of time since the start: 1:30 (h:mm) or 45s. */
static void svg_time_label(char *buf, size_t len, double s, double tick)
{
	long v = lround(s);

	if (tick >= 60)
		snprintf(buf, len, "%ld:%02ld", v / 3600, v / 60 % 60);
	else
		snprintf(buf, len, "%lds", v);
}

static void svg_grid(FILE *f, const struct axes *ax)
{
	static const double ticks[] = { 1,   2,   5,    10,   15,   30,    60,    120,   300,
					600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400 };
	double span = ax->t1 - ax->t0, tick = ticks[17], y0 = SVG_H - SVG_BOTTOM;
	bool seconds = ax->pmax >= 10000; /* label the right axis in s */
	char lb[32];

	for (size_t i = 0; i < sizeof(ticks) / sizeof(ticks[0]); i++)
		if (span / ticks[i] <= 10) {
			tick = ticks[i];
			break;
		}
	while (span / tick > 10)
		tick *= 2;
	fprintf(f, "<g class=\"grid\" stroke=\"#ddd\">\n");
	for (int k = 0; k <= 5; k++)
		fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", SVG_LEFT,
			svg_y(ax->rmax * k / 5, ax->rmax), SVG_W - SVG_RIGHT,
			svg_y(ax->rmax * k / 5, ax->rmax));
	fprintf(f, "</g>\n<g class=\"axis\" fill=\"#333\">\n");
	for (double s = 0; s <= span + 1e-9; s += tick) {
		svg_time_label(lb, sizeof(lb), s, tick);
		fprintf(f,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
			"stroke=\"#333\"/><text x=\"%.1f\" y=\"%.1f\" "
			"text-anchor=\"middle\">%s</text>\n",
			svg_x(ax, ax->t0 + s), y0, svg_x(ax, ax->t0 + s), y0 + 5,
			svg_x(ax, ax->t0 + s), y0 + 18, lb);
	}
	for (int k = 0; k <= 5; k++) {
		fprintf(f,
			"<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g"
			"</text>",
			SVG_LEFT - 6, svg_y(ax->rmax * k / 5, ax->rmax) + 4, ax->rmax * k / 5);
		fprintf(f, "<text x=\"%d\" y=\"%.1f\">%g</text>\n", SVG_W - SVG_RIGHT + 6,
			svg_y(ax->pmax * k / 5, ax->pmax) + 4,
			ax->pmax * k / 5 / (seconds ? 1000 : 1));
	}
	fprintf(f,
		"<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time since "
		"start (%s)</text>\n",
		(SVG_W - SVG_RIGHT + SVG_LEFT) / 2, SVG_H - 8, tick >= 60 ? "h:mm" : "s");
	fprintf(f,
		"<text x=\"14\" y=\"%d\" transform=\"rotate(-90 14 %d)\" "
		"text-anchor=\"middle\">replicas</text>\n",
		SVG_H / 2, SVG_H / 2);
	fprintf(f,
		"<text x=\"%d\" y=\"%d\" transform=\"rotate(90 %d %d)\" "
		"text-anchor=\"middle\">P99 latency (%s)</text>\n",
		SVG_W - 14, SVG_H / 2, SVG_W - 14, SVG_H / 2, seconds ? "s" : "ms");
	fprintf(f,
		"<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
		"fill=\"none\" stroke=\"#333\"/>\n</g>\n",
		SVG_LEFT, SVG_TOP, SVG_W - SVG_LEFT - SVG_RIGHT, SVG_H - SVG_TOP - SVG_BOTTOM);
}

enum series { S_LOAD, S_REPLICAS, S_READY, S_P99 };

static const struct {
	const char *name, *color, *dash, *label;
} series[] = {
	[S_LOAD] = { "load", "#1f77b4", NULL, "load: rps / capacity (replicas needed)" },
	[S_REPLICAS] = { "replicas", "#2ca02c", NULL, "replicas" },
	[S_READY] = { "ready", "#98df8a", "6 3", "ready replicas" },
	[S_P99] = { "p99", "#d62728", NULL, "P99 latency (right axis)" },
};

/* One series as a polyline; replicas are steps (constant over a step). */
static void svg_series(FILE *f, const struct loop *l, const struct axes *ax, enum series which)
{
	double prev = ax->t0;

	fprintf(f,
		"<polyline class=\"%s\" fill=\"none\" stroke=\"%s\" "
		"stroke-width=\"1.5\"%s%s%s points=\"",
		series[which].name, series[which].color,
		series[which].dash ? " stroke-dasharray=\"" : "",
		series[which].dash ? series[which].dash : "", series[which].dash ? "\"" : "");
	for (size_t i = 0; i < l->n_samples; i++) {
		const struct sample *s = &l->samples[i];
		double x0 = svg_x(ax, prev), x = svg_x(ax, s->t);
		if (which == S_LOAD)
			fprintf(f, "%.1f,%.1f ", x, svg_y(s->rps / l->m.capacity, ax->rmax));
		else if (which == S_P99)
			fprintf(f, "%.1f,%.1f ", x, svg_y(s->p99, ax->pmax));
		else {
			double v = which == S_REPLICAS ? s->replicas : s->ready;
			fprintf(f, "%.1f,%.1f %.1f,%.1f ", x0, svg_y(v, ax->rmax), x,
				svg_y(v, ax->rmax));
		}
		prev = s->t;
	}
	fprintf(f, "\"/>\n");
}

/* The controls acting, as bands behind the series (panic, fallback,
 * paused), and the bounds in force as dashed steps when schedules are
 * set; a second legend row names those present. */
static const struct {
	const char *name, *color, *label;
} bands[] = {
	{ "panic", "#d62728", "panic mode" },
	{ "fallback", "#7f7f7f", "fallback (metrics missing)" },
	{ "paused", "#1f77b4", "paused" },
	{ "predicted", "#2ca02c", "predictive floor raised" },
};
#define N_BANDS (sizeof(bands) / sizeof(bands[0]))

static bool band_on(const struct sample *s, size_t which)
{
	return which == 0 ? s->panic :
	       which == 1 ? s->fallback :
	       which == 2 ? s->paused :
			    s->predicted;
}

static void svg_controls(FILE *f, const struct loop *l, const struct axes *ax)
{
	double y0 = SVG_TOP, h = SVG_H - SVG_TOP - SVG_BOTTOM;
	bool seen[N_BANDS] = { false };
	int x = SVG_LEFT;

	for (size_t b = 0; b < N_BANDS; b++) {
		double prev = ax->t0;
		for (size_t i = 0; i < l->n_samples; i++) {
			const struct sample *s = &l->samples[i];
			if (band_on(s, b)) {
				fprintf(f,
					"<rect class=\"%s\" x=\"%.1f\" "
					"y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
					"fill=\"%s\" fill-opacity=\"0.15\"/>\n",
					bands[b].name, svg_x(ax, prev), y0,
					svg_x(ax, s->t) - svg_x(ax, prev), h, bands[b].color);
				seen[b] = true;
			}
			prev = s->t;
		}
	}
	for (int k = 0; k < 2 && l->spec.n_schedules; k++) {
		double prev = ax->t0;
		fprintf(f,
			"<polyline class=\"%s\" fill=\"none\" "
			"stroke=\"#555\" stroke-dasharray=\"4 3\" points=\"",
			k ? "max-replicas" : "min-replicas");
		for (size_t i = 0; i < l->n_samples; i++) {
			const struct sample *s = &l->samples[i];
			double v = k ? s->max : s->min;
			fprintf(f, "%.1f,%.1f %.1f,%.1f ", svg_x(ax, prev), svg_y(v, ax->rmax),
				svg_x(ax, s->t), svg_y(v, ax->rmax));
			prev = s->t;
		}
		fprintf(f, "\"/>\n");
	}
	fprintf(f, "<g class=\"legend-controls\">\n");
	for (size_t b = 0; b < N_BANDS; b++) {
		if (!seen[b])
			continue;
		fprintf(f,
			"<rect x=\"%d\" y=\"%d\" width=\"18\" height=\"8\" "
			"fill=\"%s\" fill-opacity=\"0.3\"/><text x=\"%d\" "
			"y=\"%d\">%s</text>\n",
			x + 6, SVG_TOP + 6, bands[b].color, x + 28, SVG_TOP + 14, bands[b].label);
		x += 40 + 6 * (int)strlen(bands[b].label);
	}
	if (l->spec.n_schedules)
		fprintf(f,
			"<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
			"stroke=\"#555\" stroke-dasharray=\"4 3\"/><text "
			"x=\"%d\" y=\"%d\">min/max replicas in force "
			"(schedules)</text>\n",
			x + 6, SVG_TOP + 10, x + 24, SVG_TOP + 10, x + 28, SVG_TOP + 14);
	fprintf(f, "</g>\n");
}

static void svg_legend(FILE *f)
{
	int x = SVG_LEFT;

	fprintf(f, "<g class=\"legend\">\n");
	for (size_t i = 0; i < sizeof(series) / sizeof(series[0]); i++) {
		fprintf(f,
			"<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
			"stroke=\"%s\" stroke-width=\"3\"/><text x=\"%d\" "
			"y=\"%d\">%s</text>\n",
			x, SVG_TOP - 14, x + 18, SVG_TOP - 14, series[i].color, x + 22,
			SVG_TOP - 10, series[i].label);
		x += 40 + 6 * (int)strlen(series[i].label);
	}
	fprintf(f, "</g>\n");
}

static void svg_write(FILE *f, const struct loop *l, double t0)
{
	struct axes ax;
	int i;

	svg_axes_setup(l, t0, &ax);
	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		"height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
		"font-size=\"12\">\n<title>kinfer-operator simulate: ",
		SVG_W, SVG_H, SVG_W, SVG_H);
	svg_text(f, l->sc->name[0] ? l->sc->name : "InferenceService");
	fprintf(f,
		"</title>\n<rect width=\"100%%\" height=\"100%%\" "
		"fill=\"white\"/>\n<text x=\"%d\" y=\"20\" font-size=\"14\" "
		"font-weight=\"bold\">",
		SVG_LEFT);
	svg_text(f, l->sc->name[0] ? l->sc->name : "InferenceService");
	fprintf(f,
		": replicas %d..%d, capacity %g rps per replica, load "
		"time %g s</text>\n",
		l->spec.min_replicas, l->spec.max_replicas, l->m.capacity, l->m.load_seconds);
	svg_grid(f, &ax);
	i = spec_index(&l->spec, AUTOSCALE_LATENCY_P99);
	if (i >= 0)
		fprintf(f,
			"<line class=\"p99-target\" x1=\"%d\" y1=\"%.1f\" "
			"x2=\"%d\" y2=\"%.1f\" stroke=\"#d62728\" "
			"stroke-dasharray=\"2 4\"/>\n",
			SVG_LEFT, svg_y(l->spec.metrics[i].target, ax.pmax), SVG_W - SVG_RIGHT,
			svg_y(l->spec.metrics[i].target, ax.pmax));
	svg_controls(f, l, &ax);
	for (int s = S_LOAD; s <= S_P99; s++)
		svg_series(f, l, &ax, (enum series)s);
	svg_legend(f);
	fprintf(f, "</svg>\n");
}

/* ------------------------------------------------------------------ */
/* Closed loop: the run                                                */

/* The spec without Custom metrics, which the model cannot produce. */
static int model_spec(const struct simulate_scaling *sc, FILE *notice, struct autoscale_spec *ret,
		      char *err, size_t errlen)
{
	struct autoscale_spec s = sc->spec;

	s.n_metrics = 0;
	for (size_t i = 0; i < sc->spec.n_metrics; i++) {
		if (sc->spec.metrics[i].type == AUTOSCALE_CUSTOM) {
			if (notice)
				fprintf(notice,
					"kinfer-operator simulate: "
					"spec.scaling.metrics[%zu]: Custom has "
					"no model in the closed loop: left "
					"out\n",
					i);
			continue;
		}
		s.metrics[s.n_metrics++] = sc->spec.metrics[i];
	}
	if (s.n_metrics == 0)
		return text_errf(err, errlen, -EINVAL,
				 "spec.scaling.metrics: only "
				 "Custom metrics, which the closed loop cannot "
				 "model");
	*ret = s;
	return 0;
}

static int loop_init(struct loop *l, const struct simulate_scaling *sc,
		     const struct simulate_model *m, size_t steps)
{
	int32_t start = sc->replicas;
	size_t max;

	/* Schedules may raise the cap, and a pause may pin any count the
	 * CRD allows: room for all of it. */
	l->cap = sc->spec.max_replicas;
	for (size_t i = 0; i < sc->spec.n_schedules; i++)
		if (sc->spec.schedules[i].max_replicas > l->cap)
			l->cap = sc->spec.schedules[i].max_replicas;
	if (MAX_CRD_REPLICAS > l->cap)
		l->cap = MAX_CRD_REPLICAS;
	max = (size_t)l->cap;

	l->m.capacity = m && m->capacity > 0 ? m->capacity : DEFAULT_CAPACITY;
	l->m.latency_ms = m && m->latency_ms > 0 ? m->latency_ms : DEFAULT_LATENCY_MS;
	l->m.load_seconds = m && m->load_seconds >= 0 ? m->load_seconds : DEFAULT_LOAD_SECONDS;
	l->ready_at = calloc(max, sizeof(*l->ready_at));
	l->pods = calloc(max, sizeof(*l->pods));
	l->samples = calloc(steps ? steps : 1, sizeof(*l->samples));
	if (!l->ready_at || !l->pods || !l->samples)
		return -ENOMEM;
	if (start < sc->spec.min_replicas)
		start = sc->spec.min_replicas;
	if (start > sc->spec.max_replicas)
		start = sc->spec.max_replicas;
	for (l->replicas = 0; l->replicas < start; l->replicas++)
		l->ready_at[l->replicas] = -INFINITY;
	l->stz = sc->scale_to_zero.set && sc->spec.min_replicas == 0;
	l->spec1 = l->spec;
	if (l->spec1.min_replicas < 1)
		l->spec1.min_replicas = 1;
	l->cold_start = m && m->cold_start_seconds > 0 ? m->cold_start_seconds : l->m.load_seconds;
	return autoscale_history_new(&l->hist);
}

/* The run over the whole load trace; out may be NULL (the comparison). */
static int loop_run(struct loop *l, const struct load *ld, double t0, double dt, size_t steps,
		    FILE *out)
{
	size_t idx = 0;
	int r = 0;

	/* A run that starts at zero went there before its first line. */
	if (l->stz && l->replicas == 0)
		l->zs.zero_at_ms = llround(t0 * KTIME_MSEC_PER_SEC) - 1;
	for (size_t k = 1; r == 0 && k <= steps; k++)
		r = step(l, ld, &idx, t0 + (double)(k - 1) * dt, t0 + (double)k * dt, out);
	return r;
}

/* The summary line of a run with scale to zero; base is the same run with
 * a floor of one replica. */
static void print_stz(FILE *out, const struct loop *l, const struct loop *base)
{
	const struct stz_stats *s = &l->st;
	char b[11][64];
	double saved = (base->st.replica_seconds - s->replica_seconds) * l->sc->gpus;

	fprintf(out,
		"{\"scaleToZero\":{\"idleSeconds\":%d,\"coldStartSeconds\":%s,"
		"\"scaledToZero\":%d,\"coldStarts\":%d,\"coldStartRequests\":%s,"
		"\"coldStartWaitSeconds\":{\"total\":%s,\"mean\":%s,\"max\":%s},"
		"\"overflow\":%s,\"timedOut\":%s,\"replicaSeconds\":%s,"
		"\"replicaSecondsWithoutScaleToZero\":%s,\"gpus\":%d,\"gpuSecondsSaved\":%s}}\n",
		l->sc->scale_to_zero.idle_seconds, fmt_num(b[0], sizeof(b[0]), l->cold_start),
		s->scaled_to_zero, s->cold_starts, fmt_num(b[1], sizeof(b[1]), s->requests),
		fmt_num(b[2], sizeof(b[2]), s->wait_total),
		fmt_num(b[3], sizeof(b[3]), s->requests > 0 ? s->wait_total / s->requests : 0),
		fmt_num(b[4], sizeof(b[4]), s->wait_max), fmt_num(b[5], sizeof(b[5]), s->overflow),
		fmt_num(b[6], sizeof(b[6]), s->timed_out),
		fmt_num(b[7], sizeof(b[7]), s->replica_seconds),
		fmt_num(b[8], sizeof(b[8]), base->st.replica_seconds), l->sc->gpus,
		fmt_num(b[9], sizeof(b[9]), saved));
}

static void loop_done(struct loop *l)
{
	autoscale_history_free(l->hist);
	free(l->ready_at);
	free(l->pods);
	free(l->samples);
}

int simulate_closed_loop(const struct simulate_scaling *sc, const struct simulate_model *model,
			 FILE *in, const char *name, FILE *out, FILE *svg, FILE *notice, char *err,
			 size_t errlen)
{
	struct loop l = { .sc = sc };
	struct load ld = { NULL, 0, 0 };
	double dt, t0, nsteps;
	size_t steps;
	int r;

	if (!sc || !in || !out)
		return -EINVAL;
	r = model_spec(sc, notice, &l.spec, err, errlen);
	if (r == 0)
		r = read_load(in, name, &ld, err, errlen);
	if (r < 0)
		goto out;
	dt = model && model->step_seconds > 0 ? model->step_seconds : sc->interval_seconds;
	/* Panic mode evaluates every windowSeconds, as the controller does. */
	if (!(model && model->step_seconds > 0) && sc->spec.panic.set &&
	    sc->spec.panic.window_seconds < dt)
		dt = sc->spec.panic.window_seconds;
	t0 = ld.p[0].t;
	nsteps = floor((ld.p[ld.n - 1].t - t0) / dt + 1e-9);
	if (nsteps > SIMULATE_MAX_STEPS) {
		r = text_errf(err, errlen, -EINVAL,
			      "%s: %.0f steps of %g s: at most "
			      "%d (use a longer --step)",
			      name ? name : "-", nsteps, dt, SIMULATE_MAX_STEPS);
		goto out;
	}
	steps = (size_t)nsteps;
	r = loop_init(&l, sc, model, steps);
	if (r == 0)
		r = loop_run(&l, &ld, t0, dt, steps, out);
	if (r == 0 && l.stz) {
		/* The comparison: the same run never below one replica. */
		struct simulate_scaling nz = *sc;
		struct loop base = { .sc = &nz };
		nz.scale_to_zero.set = false;
		if (nz.spec.min_replicas < 1)
			nz.spec.min_replicas = 1;
		r = model_spec(&nz, NULL, &base.spec, err, errlen);
		if (r == 0)
			r = loop_init(&base, &nz, model, steps);
		if (r == 0)
			r = loop_run(&base, &ld, t0, dt, steps, NULL);
		if (r == 0)
			print_stz(out, &l, &base);
		loop_done(&base);
	}
	if (r < 0) {
		text_errf(err, errlen, r, "%s", r == -ENOMEM ? "out of memory" : "cannot evaluate");
		goto out;
	}
	if (svg)
		svg_write(svg, &l, t0);
out:
	loop_done(&l);
	free(ld.p);
	return r;
}

/* ------------------------------------------------------------------ */
/* The subcommand                                                      */

struct sim_config {
	const char *filename;
	const char *trace;
	const char *load;
	const char *svg;
	double capacity;
	double latency_ms;
	double load_seconds;
	double step;
	double cold_start;
};

#define F(name, kind, field, help) \
	{ \
		name, NULL, kind, offsetof(struct sim_config, field), NULL, help \
	}

static const struct flag sim_flags[] = {
	F("filename", FLAG_STRING, filename,
	  "the InferenceService YAML whose spec.scaling to run (also -f)"),
	F("trace", FLAG_STRING, trace,
	  "replay a metrics trace (JSON lines, '-': stdin): one decision per line"),
	F("load", FLAG_STRING, load, "run a closed loop on a load trace (JSON lines of t and rps)"),
	F("capacity", FLAG_DOUBLE, capacity,
	  "with --load: requests/s one ready replica serves (default 10)"),
	F("latency-ms", FLAG_DOUBLE, latency_ms,
	  "with --load: P99 latency in ms with no queue (default 1000)"),
	F("load-seconds", FLAG_DOUBLE, load_seconds,
	  "with --load: seconds from scale-up until a new replica serves (default 60)"),
	F("cold-start-seconds", FLAG_DOUBLE, cold_start,
	  "with --load and spec.scaling.scaleToZero: seconds from the first request at zero "
	  "until a replica serves (default: --load-seconds)"),
	F("step", FLAG_DOUBLE, step,
	  "with --load: seconds per step (default: spec.scaling.evaluationIntervalSeconds, 15)"),
	F("svg", FLAG_STRING, svg,
	  "with --load: also plot the run (load, replicas, P99) to this SVG file"),
};

#undef F
#define N_SIM_FLAGS (sizeof(sim_flags) / sizeof(sim_flags[0]))

static void sim_usage(FILE *out)
{
	fprintf(out, "Usage: kinfer-operator simulate -f ISVC.yaml --trace TRACE.jsonl\n"
		     "       kinfer-operator simulate -f ISVC.yaml --load LOAD.jsonl [--capacity RPS]\n"
		     "           [--latency-ms MS] [--load-seconds S] [--cold-start-seconds S]\n"
		     "           [--step S] [--svg OUT.svg]\n\n"
		     "Runs kinfer's autoscaling decision offline on the InferenceService's\n"
		     "spec.scaling, and prints one JSON line per evaluation.\n\n"
		     "Flags:\n");
	flags_usage(out, sim_flags, N_SIM_FLAGS);
	fprintf(out,
		"\nTrace lines (a pod without a metric: missing; \"ready\" defaults to true):\n"
		"  {\"t\": 30, \"replicas\": 2, \"pods\": [{\"ready\": true, \"metrics\": {\"QueueDepth\": 7}},\n"
		"   {\"ready\": false}, {\"terminating\": true}], \"service\": {\"LatencyP99\": 1800}}\n"
		"Load lines (piecewise constant; the run goes from the first t to the last):\n"
		"  {\"t\": 0, \"rps\": 12.5}\n\n"
		"Exit codes: 0 done; 2 bad usage or input (the message names the file\n"
		"and line); 1 out of memory or the output could not be written.\n");
}

/* Read a whole file of at most max bytes ("-": stdin). */
static int read_file(const char *path, size_t max, char **ret, size_t *ret_len, char *err,
		     size_t errlen)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	size_t len = 0, n;
	char *buf;
	int r = 0;

	if (!f)
		return text_errf(err, errlen, -EIO, "%s: %s", path, strerror(errno));
	buf = malloc(max + 1);
	if (!buf) {
		r = text_errf(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	while ((n = fread(buf + len, 1, max + 1 - len, f)) > 0 && len + n <= max)
		len += n;
	if (ferror(f))
		r = text_errf(err, errlen, -EIO, "%s: cannot read: %s", path,
			      strerror(errno ? errno : EIO));
	else if (n > 0)
		r = text_errf(err, errlen, -EINVAL, "%s: larger than %zu bytes", path, max);
	if (r < 0) {
		free(buf);
		goto out;
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
out:
	if (f != stdin)
		fclose(f);
	return r;
}

/* Parse argv into cfg, taking "-f FILE" as "--filename FILE". */
static int sim_parse(struct sim_config *cfg, int argc, char **argv, int argi, bool *ret_help,
		     char *err, size_t errlen)
{
	static char filename_flag[] = "--filename";
	char **av = calloc((size_t)argc + 1, sizeof(*av));
	int r;

	if (!av)
		return text_errf(err, errlen, -ENOMEM, "out of memory");
	for (int i = 0; i < argc; i++)
		av[i] = i >= argi && strcmp(argv[i], "-f") == 0 ? filename_flag : argv[i];
	*cfg = (struct sim_config){
		.capacity = -1, .latency_ms = -1, .load_seconds = -1, .step = -1, .cold_start = -1
	};
	r = flags_parse(sim_flags, N_SIM_FLAGS, cfg, argc, av, &argi, ret_help, err, errlen);
	if (r == 0 && !*ret_help && argi < argc)
		r = text_errf(err, errlen, -EINVAL,
			      "unexpected argument \"%s\" (see "
			      "--help)",
			      argv[argi]);
	free(av);
	return r;
}

/* The usage rules flags_parse cannot know. */
static int sim_check(const struct sim_config *c, char *err, size_t errlen)
{
	if (!c->filename)
		return text_errf(err, errlen, -EINVAL,
				 "-f ISVC.yaml is required "
				 "(see --help)");
	if (!c->trace == !c->load)
		return text_errf(err, errlen, -EINVAL,
				 "give one of --trace or --load "
				 "(see --help)");
	if (c->trace && (c->capacity >= 0 || c->latency_ms >= 0 || c->load_seconds >= 0 ||
			 c->step >= 0 || c->svg || c->cold_start >= 0))
		return text_errf(err, errlen, -EINVAL,
				 "--capacity, --latency-ms, "
				 "--load-seconds, --cold-start-seconds, --step and --svg go with --load");
	if (c->capacity == 0 || c->latency_ms == 0 || c->step == 0)
		return text_errf(err, errlen, -EINVAL,
				 "--capacity, --latency-ms and "
				 "--step must be above 0");
	return 0;
}

/* Run the mode cfg asks for; the output's and the plot's FILEs are open. */
static int sim_run(const struct sim_config *c, const struct simulate_scaling *sc, FILE *svg,
		   char *err, size_t errlen)
{
	const char *path = c->trace ? c->trace : c->load;
	FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	struct simulate_model m = { c->capacity, c->latency_ms, c->load_seconds, c->step,
				    c->cold_start };
	int r;

	if (!in)
		return text_errf(err, errlen, -EIO, "%s: %s", path, strerror(errno));
	if (in == stdin)
		path = "<stdin>";
	if (c->trace)
		r = simulate_trace(sc, in, path, stdout, err, errlen);
	else
		r = simulate_closed_loop(sc, &m, in, path, stdout, svg, stderr, err, errlen);
	if (in != stdin)
		fclose(in);
	return r;
}

int simulate_main(int argc, char **argv, int argi)
{
	struct simulate_scaling sc;
	struct sim_config c;
	char err[1024];
	FILE *svg = NULL;
	bool help = false;
	char *yaml = NULL;
	size_t len = 0;
	int r;

	r = sim_parse(&c, argc, argv, argi, &help, err, sizeof(err));
	if (r == 0 && help) {
		sim_usage(stdout);
		return 0;
	}
	if (r == 0)
		r = sim_check(&c, err, sizeof(err));
	if (r == 0)
		r = read_file(c.filename, SIMULATE_MAX_YAML, &yaml, &len, err, sizeof(err));
	if (r == 0)
		r = simulate_isvc_parse(yaml, len, c.filename, &sc, err, sizeof(err));
	free(yaml);
	if (r == 0 && c.svg && !(svg = fopen(c.svg, "w")))
		r = text_errf(err, sizeof(err), -EIO, "%s: %s", c.svg, strerror(errno));
	if (r == 0)
		r = sim_run(&c, &sc, svg, err, sizeof(err));
	if (r == 0 && (fflush(stdout) != 0 || ferror(stdout)))
		r = text_errf(err, sizeof(err), -EPIPE, "cannot write the output");
	if (svg && fclose(svg) != 0 && r == 0)
		r = text_errf(err, sizeof(err), -EPIPE, "%s: cannot write", c.svg);
	if (svg && r < 0)
		unlink(c.svg);
	if (r == 0)
		return 0;
	fprintf(stderr, "kinfer-operator simulate: %s\n", err);
	return r == -ENOMEM || r == -EPIPE ? 1 : 2;
}
