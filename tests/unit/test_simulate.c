/*
 * simulate: spec.scaling mapping, trace replay checked line by line
 * against the algorithm itself (burst -> scale up, quiet -> stepwise down
 * after the 300 s window), the closed loop on a load step (replicas rise
 * within a few steps, the queue drains), the SVG plot, and bad input
 * named by file and line.
 */
#include "unit.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoscale.h"
#include "simulate.h"

static const char isvc_yaml[] = "apiVersion: kinfer.io/v1alpha1\n"
				"kind: InferenceService\n"
				"metadata: {name: sim}\n"
				"spec:\n"
				"  model: {name: m, uri: hf://m}\n"
				"  scaling:\n"
				"    minReplicas: 2\n"
				"    maxReplicas: 10\n"
				"    metrics:\n"
				"      - {type: QueueDepth, target: 5}\n"
				"      - {type: LatencyP99, target: 2000}\n";

static void load_spec(const char *yaml, struct simulate_scaling *sc)
{
	char err[512] = "";
	int r = simulate_isvc_parse(yaml, strlen(yaml), "isvc.yaml", sc, err, sizeof(err));
	if (r != 0)
		fail_msg("simulate_isvc_parse: %s", err);
}

/* Run the trace replay on text; *ret_out gets what it printed. */
static int run_trace(const struct simulate_scaling *sc, const char *text, char **ret_out, char *err,
		     size_t errlen)
{
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	size_t n = 0;
	FILE *out = open_memstream(ret_out, &n);
	int r;

	assert_non_null(in);
	assert_non_null(out);
	r = simulate_trace(sc, in, "t.jsonl", out, err, errlen);
	fclose(in);
	fclose(out);
	return r;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

/* The k-th line (from 0) of s as JSON; the caller puts it. */
static json_object *nth_json(const char *s, size_t k)
{
	const char *e;

	while (k-- > 0 && s && (s = strchr(s, '\n')))
		s++;
	assert_non_null(s);
	e = strchr(s, '\n');
	assert_non_null(e);
	{
		char *line = strndup(s, (size_t)(e - s));
		json_object *o = json_tokener_parse(line);
		free(line);
		assert_non_null(o);
		return o;
	}
}

static int64_t jint(json_object *o, const char *key)
{
	json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	return json_object_get_int64(v);
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	return json_object_get_string(v);
}

/* spec.scaling of the CRD's full example maps field by field. */
static void test_scaling_full(void **state)
{
	struct simulate_scaling sc;
	char *yaml = test_read_data("../crds/good/full.yaml", NULL);
	const struct autoscale_rules *down;

	(void)state;
	assert_non_null(yaml);
	load_spec(yaml, &sc);
	free(yaml);
	assert_string_equal(sc.name, "full");
	assert_int_equal(sc.spec.min_replicas, 2);
	assert_int_equal(sc.spec.max_replicas, 8);
	assert_int_equal(sc.spec.n_metrics, 8);
	assert_int_equal(sc.spec.metrics[2].type, AUTOSCALE_REQUESTS_PER_SECOND);
	assert_true(sc.spec.metrics[2].target == 4.5);
	assert_int_equal(sc.spec.metrics[7].type, AUTOSCALE_CUSTOM);
	assert_true(sc.spec.set_tolerance && sc.spec.tolerance == 0.05);
	assert_int_equal(sc.interval_seconds, 10);
	assert_int_equal(sc.replicas, 2);
	down = &sc.spec.behavior.scale_down;
	assert_true(down->set_window && down->stabilization_window_seconds == 300);
	assert_true(down->set_select && down->select == AUTOSCALE_SELECT_MIN);
	assert_true(down->set_policies && down->n_policies == 1);
	assert_int_equal(down->policies[0].type, AUTOSCALE_POLICY_PODS);
	assert_int_equal(down->policies[0].period_seconds, 60);
	assert_int_equal(sc.spec.behavior.scale_up.policies[0].type, AUTOSCALE_POLICY_PERCENT);
}

/* Left-out fields: min 1, interval 15, behavior unset (the defaults). */
static void test_scaling_defaults(void **state)
{
	struct simulate_scaling sc;

	(void)state;
	load_spec("kind: InferenceService\nspec:\n  scaling:\n"
		  "    maxReplicas: 3\n"
		  "    metrics: [{type: GPUUtilization, target: 70}]\n",
		  &sc);
	assert_int_equal(sc.spec.min_replicas, 1);
	assert_int_equal(sc.interval_seconds, 15);
	assert_int_equal(sc.replicas, 1);
	assert_false(sc.spec.set_tolerance);
	assert_false(sc.spec.behavior.scale_up.set_policies);
	assert_false(sc.spec.behavior.scale_down.set_window);
}

/*
 * The reference: a controller loop over the algorithm itself. Pods get a
 * queue of q each while ready; new pods are unready for 45 s.
 */
struct ref {
	struct simulate_scaling sc;
	struct autoscale_history *h;
	double ready_at[16];
	int32_t replicas;
};

static double burst_queue(int t)
{
	return t >= 60 && t < 240 ? 20 : t < 60 ? 4 : 0;
}

static double burst_p99(int t)
{
	return t >= 60 && t < 240 ? 4000 : 1000;
}

/* One line of the trace at t, and the algorithm's decision on it. */
static void ref_line(struct ref *rf, int t, FILE *trace, struct autoscale_result *ret)
{
	struct autoscale_pod pods[16];
	struct autoscale_service sv = { 2, { 0, burst_p99(t) } }; /* P99 */
	struct autoscale_input in = { .spec = &rf->sc.spec };

	fprintf(trace, "{\"t\": %d, \"replicas\": %d, \"pods\": [", t, rf->replicas);
	for (int32_t i = 0; i < rf->replicas; i++) {
		bool ready = rf->ready_at[i] <= t;
		memset(&pods[i], 0, sizeof(pods[i]));
		pods[i].state = ready ? AUTOSCALE_POD_READY : AUTOSCALE_POD_UNREADY;
		if (ready) {
			pods[i].present = 1;
			pods[i].values[0] = burst_queue(t);
			fprintf(trace,
				"%s{\"ready\": true, \"metrics\": "
				"{\"QueueDepth\": %g}}",
				i ? ", " : "", burst_queue(t));
		} else {
			fprintf(trace, "%s{\"ready\": false}", i ? ", " : "");
		}
	}
	fprintf(trace, "], \"service\": {\"LatencyP99\": %g}}\n", burst_p99(t));
	in.current_replicas = rf->replicas;
	in.pods = pods;
	in.n_pods = (size_t)rf->replicas;
	in.service = &sv;
	in.now_ms = t * 1000LL;
	autoscale_history_attach(rf->h, &in);
	assert_int_equal(autoscale_evaluate(&in, ret), 0);
	assert_int_equal(autoscale_history_record(rf->h, &rf->sc.spec, ret, in.now_ms), 0);
	while (rf->replicas < ret->desired)
		rf->ready_at[rf->replicas++] = t + 45;
	if (rf->replicas > ret->desired)
		rf->replicas = ret->desired;
}

#define STEPS 81 /* 0 .. 1200 s every 15 s */

static void test_trace_matches_algorithm(void **state)
{
	struct autoscale_result want[STEPS];
	struct ref rf = { .replicas = 2 };
	char *trace = NULL, *out = NULL, err[256];
	size_t tlen = 0;
	FILE *tf = open_memstream(&trace, &tlen);
	int first_down = -1, last_down = -1, up_at = -1;

	(void)state;
	load_spec(isvc_yaml, &rf.sc);
	assert_int_equal(autoscale_history_new(&rf.h), 0);
	for (int k = 0; k < STEPS; k++)
		ref_line(&rf, 15 * k, tf, &want[k]);
	fclose(tf);
	autoscale_history_free(rf.h);

	assert_int_equal(run_trace(&rf.sc, trace, &out, err, sizeof(err)), 0);
	assert_int_equal(count_lines(out), STEPS);
	for (int k = 0; k < STEPS; k++) {
		json_object *o = nth_json(out, (size_t)k);
		int t = 15 * k;
		assert_int_equal(jint(o, "t"), t);
		assert_int_equal(jint(o, "replicas"), want[k].current);
		assert_int_equal(jint(o, "desired"), want[k].desired);
		assert_string_equal(jstr(o, "reason"), want[k].reason);
		if (up_at < 0 && want[k].desired > want[k].current)
			up_at = t;
		if (want[k].desired < want[k].current) {
			/* One replica at a time, a minute apart. */
			assert_int_equal(want[k].current - want[k].desired, 1);
			assert_true(last_down < 0 || t - last_down >= 60);
			if (first_down < 0)
				first_down = t;
			last_down = t;
		}
		json_object_put(o);
	}
	/* The burst (from t=60) scales up at once, by +50% at most. */
	assert_int_equal(up_at, 60);
	assert_int_equal(want[4].desired, 3);
	assert_string_equal(want[4].reason, "ScaleUpLimit");
	/* Quiet from t=240: the first scale-down waits for the window of
	 * 300 s after the last evaluation that saw the burst (t=225). */
	assert_int_equal(first_down, 225 + 300);
	assert_int_equal(want[STEPS - 1].desired, 2);
	free(trace);
	free(out);
}

/* The next line's replicas win over what was printed (it is what ran). */
static void test_trace_trusts_replicas(void **state)
{
	struct simulate_scaling sc;
	const char *trace = "{\"t\": 0, \"replicas\": 2, \"pods\": [{\"metrics\": {\"QueueDepth\": 20}},"
			    " {\"metrics\": {\"QueueDepth\": 20}}]}\n"
			    "\n"
			    "{\"t\": 15, \"replicas\": 2, \"pods\": [{\"metrics\": {\"QueueDepth\": 20}},"
			    " {\"metrics\": {}}], \"service\": {\"LatencyP99\": null}}\n";
	char *out = NULL, err[256];
	json_object *o;

	(void)state;
	load_spec(isvc_yaml, &sc);
	assert_int_equal(run_trace(&sc, trace, &out, err, sizeof(err)), 0);
	assert_int_equal(count_lines(out), 2);
	o = nth_json(out, 0);
	assert_int_equal(jint(o, "desired"), 3);
	assert_true(json_object_get_boolean(json_object_object_get(o, "limited")));
	assert_string_equal(jstr(o, "metric"), "QueueDepth");
	json_object_put(o);
	/* Still 2 (the trace wins), so up again; the missing pod counts at
	 * 0 and the missing P99 is left out, the policies allow 3 again. */
	o = nth_json(out, 1);
	assert_int_equal(jint(o, "replicas"), 2);
	assert_int_equal(jint(o, "desired"), 3);
	json_object_put(o);
	free(out);
}

struct bad {
	const char *trace;
	const char *want;
	size_t lines_before;
};

static void test_trace_errors(void **state)
{
	static const struct bad cases[] = {
		{ "{\"t\": 0, \"replicas\": 2}\n{\"t\": 15}\n",
		  "t.jsonl:2: \"replicas\" is missing", 1 },
		{ "{\"t\": 0, \"replicas\": 2}\n\n{\"t\": 15, \"replicas\": 2\n",
		  "t.jsonl:3: not valid JSON", 1 },
		{ "[1, 2]\n", "t.jsonl:1: not valid JSON: want one object", 0 },
		{ "{\"t\": 0, \"replicas\": 2} x\n", "t.jsonl:1: not valid JSON", 0 },
		{ "{\"replicas\": 2}\n", "t.jsonl:1: \"t\" is missing", 0 },
		{ "{\"t\": \"0\", \"replicas\": 2}\n", "t.jsonl:1: \"t\" must be a number", 0 },
		{ "{\"t\": 0, \"replicas\": -1}\n",
		  "t.jsonl:1: \"replicas\" must be a whole number", 0 },
		{ "{\"t\": 0, \"replicas\": 2.5}\n",
		  "t.jsonl:1: \"replicas\" must be a whole number", 0 },
		{ "{\"t\": 30, \"replicas\": 2}\n{\"t\": 15, \"replicas\": 2}\n",
		  "t.jsonl:2: \"t\" goes back in time (15 after 30)", 1 },
		{ "{\"t\": 0, \"replicas\": 1, \"pods\": [{\"metrics\": {\"QueueDepht\": 3}}]}\n",
		  "t.jsonl:1: pods[0].metrics: unknown metric type \"QueueDepht\"", 0 },
		{ "{\"t\": 0, \"replicas\": 1, \"service\": {\"P99\": 3}}\n",
		  "t.jsonl:1: service: unknown metric type \"P99\"", 0 },
		{ "{\"t\": 0, \"replicas\": 1, \"pods\": [{\"metrics\": {\"LatencyP99\": 3}}]}\n",
		  "t.jsonl:1: pods[0].metrics: LatencyP99 is a service-level metric", 0 },
		{ "{\"t\": 0, \"replicas\": 1, \"service\": {\"QueueDepth\": 3}}\n",
		  "t.jsonl:1: service: QueueDepth is a per-pod metric", 0 },
		{ "{\"t\": 0, \"replicas\": 1, \"pods\": [{\"ready\": \"yes\"}]}\n",
		  "t.jsonl:1: pods[0].ready must be true or false", 0 },
		{ "{\"t\": 0, \"replicas\": 1, \"pods\": [{\"metrics\": {\"QueueDepth\": \"7\"}}]}\n",
		  "t.jsonl:1: pods[0].metrics.QueueDepth must be a number", 0 },
		{ "{\"t\": 0, \"replicas\": 1, \"pods\": {}}\n",
		  "t.jsonl:1: \"pods\" must be a list", 0 },
	};
	struct simulate_scaling sc;
	char *out, err[256];

	(void)state;
	load_spec(isvc_yaml, &sc);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out = NULL;
		err[0] = '\0';
		assert_int_equal(run_trace(&sc, cases[i].trace, &out, err, sizeof(err)), -EINVAL);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].want);
		assert_int_equal(count_lines(out), cases[i].lines_before);
		free(out);
	}
}

/* The bounds: 1 MiB per line, 10,000 pods per line. */
static void test_trace_limits(void **state)
{
	struct simulate_scaling sc;
	size_t big = SIMULATE_MAX_LINE + 2, off;
	char *text = malloc(big + 64), *out = NULL, err[256];

	(void)state;
	assert_non_null(text);
	load_spec(isvc_yaml, &sc);
	off = (size_t)snprintf(text, 64, "{\"t\": 0, \"replicas\": 1}\n");
	memset(text + off, ' ', SIMULATE_MAX_LINE + 1);
	snprintf(text + off + SIMULATE_MAX_LINE + 1, 8, "\n");
	assert_int_equal(run_trace(&sc, text, &out, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.jsonl:2: line longer than 1048576 bytes");
	free(out);

	off = (size_t)snprintf(text, 64, "{\"t\": 0, \"replicas\": 1, \"pods\": [");
	for (int i = 0; i <= SIMULATE_MAX_PODS; i++)
		off += (size_t)snprintf(text + off, 8, "%s{}", i ? "," : "");
	snprintf(text + off, 8, "]}\n");
	out = NULL;
	assert_int_equal(run_trace(&sc, text, &out, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "t.jsonl:1: more than 10000 pods");
	free(out);
	free(text);
}

static void test_isvc_errors(void **state)
{
	static const struct {
		const char *yaml, *want;
	} cases[] = {
		{ "kind: ConfigMap\n", "x.yaml: no document of kind InferenceService" },
		{ "kind: ConfigMap\n---\nkind: InferenceService\nspec: {replicas: 1}\n",
		  "x.yaml:2: the InferenceService has no spec.scaling" },
		{ "kind: InferenceService\nspec:\n  scaling:\n    maxReplicas: 4\n"
		  "    metrics: [{type: QueueDepth, target: 5}, {type: Bogus, target: 1}]\n",
		  "x.yaml:1: spec.scaling.metrics[1].type: unknown metric type \"Bogus\"" },
		{ "kind: InferenceService\nspec:\n  scaling:\n"
		  "    metrics: [{type: QueueDepth, target: 5}]\n",
		  "x.yaml:1: spec.scaling.maxReplicas is missing" },
		{ "kind: InferenceService\nspec:\n  scaling:\n    maxReplicas: 2\n"
		  "    minReplicas: 3\n    metrics: [{type: QueueDepth, target: 5}]\n",
		  "x.yaml:1: spec.scaling: need 0 <= minReplicas <= maxReplicas" },
		{ "kind: InferenceService\nspec:\n  scaling:\n    maxReplicas: 2\n"
		  "    metrics: [{type: QueueDepth, target: 0}]\n",
		  "spec.scaling.metrics[0].target must be a number above 0" },
		{ "kind: InferenceService\nspec:\n  scaling:\n    maxReplicas: 2\n"
		  "    metrics: [{type: QueueDepth, target: 5}, {type: QueueDepth, target: 6}]\n",
		  "spec.scaling.metrics[1].type: QueueDepth is listed twice" },
		{ "kind: InferenceService\nspec:\n  scaling:\n    maxReplicas: 2\n"
		  "    metrics: [{type: GPUUtilization, target: 170}]\n",
		  "is a percentage: at most 100" },
		{ "kind: InferenceService\nspec:\n  scaling:\n    maxReplicas: 2\n"
		  "    metrics: [{type: QueueDepth, target: 5}]\n"
		  "    behavior: {scaleDown: {selectPolicy: Fastest}}\n",
		  "spec.scaling.behavior.scaleDown.selectPolicy must be Max, Min or Disabled" },
		{ "kind: InferenceService\nspec:\n  scaling:\n    maxReplicas: 2\n"
		  "    metrics: [{type: QueueDepth, target: 5}]\n"
		  "    behavior: {scaleUp: {policies: [{type: Pods, value: 0, periodSeconds: 15}]}}\n",
		  "spec.scaling.behavior.scaleUp.policies[0].value must be a whole number from 1 to 10000" },
		{ "kind: InferenceService\nspec: {scaling: [\n", "x.yaml: line " },
	};
	struct simulate_scaling sc;
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		assert_int_equal(simulate_isvc_parse(cases[i].yaml, strlen(cases[i].yaml), "x.yaml",
						     &sc, err, sizeof(err)),
				 -EINVAL);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].want);
	}
}

static int run_loop(const struct simulate_scaling *sc, const struct simulate_model *m,
		    const char *load, char **ret_out, char **ret_svg, char *err, size_t errlen)
{
	FILE *in = fmemopen((void *)load, strlen(load), "r");
	size_t n = 0, ns = 0;
	FILE *out = open_memstream(ret_out, &n);
	FILE *svg = ret_svg ? open_memstream(ret_svg, &ns) : NULL;
	int r;

	assert_non_null(in);
	assert_non_null(out);
	r = simulate_closed_loop(sc, m, in, "load.jsonl", out, svg, NULL, err, errlen);
	fclose(in);
	fclose(out);
	if (svg)
		fclose(svg);
	return r;
}

static double jnum(json_object *o, const char *key)
{
	json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	return json_object_get_double(v);
}

/* 10 rps, then 60 rps from t=300: replicas rise at once, the queue drains. */
static void test_closed_loop_step(void **state)
{
	const char *load = "{\"t\": 0, \"rps\": 10}\n{\"t\": 300, \"rps\": 60}\n"
			   "{\"t\": 1500, \"rps\": 60}\n";
	struct simulate_model m = { 10, 500, 60, 0, 0 };
	struct simulate_scaling sc;
	char *out = NULL, *svg = NULL, err[256];
	double max_queue = 0;
	int first_up = -1, steps;
	json_object *o;

	(void)state;
	load_spec("kind: InferenceService\nmetadata: {name: step}\nspec:\n"
		  "  scaling:\n    minReplicas: 2\n    maxReplicas: 10\n"
		  "    metrics:\n      - {type: QueueDepth, target: 5}\n"
		  "      - {type: GPUUtilization, target: 80}\n",
		  &sc);
	assert_int_equal(run_loop(&sc, &m, load, &out, &svg, err, sizeof(err)), 0);
	steps = (int)count_lines(out);
	assert_int_equal(steps, 100); /* 1500 s / 15 s */
	for (int k = 0; k < steps; k++) {
		o = nth_json(out, (size_t)k);
		assert_int_equal(jint(o, "t"), 15 * (k + 1));
		if (first_up < 0 && jint(o, "desired") > jint(o, "replicas"))
			first_up = (int)jint(o, "t");
		max_queue = fmax(max_queue, jnum(o, "queue"));
		assert_true(jint(o, "ready") <= jint(o, "replicas"));
		assert_true(jint(o, "desired") <= 10);
		json_object_put(o);
	}
	/* The load steps up in the step ending at 315: up right then. */
	assert_int_equal(first_up, 315);
	assert_true(max_queue > 0);
	o = nth_json(out, (size_t)steps - 1);
	assert_true(jnum(o, "queue") == 0);
	assert_true(jnum(o, "p99_ms") == 500);
	/* 60 rps at 80% of 10 rps per replica: 8 replicas, all ready. */
	assert_int_equal(jint(o, "replicas"), 8);
	assert_int_equal(jint(o, "ready"), 8);
	json_object_put(o);
	/* Replicas reached what the load needs within two minutes. */
	o = nth_json(out, (300 + 120) / 15 - 1);
	assert_true(jint(o, "replicas") >= 6);
	json_object_put(o);

	assert_non_null(strstr(svg, "<svg "));
	assert_non_null(strstr(svg, "</svg>\n"));
	assert_non_null(strstr(svg, "<polyline class=\"replicas\""));
	assert_non_null(strstr(svg, "<polyline class=\"p99\""));
	assert_non_null(strstr(svg, "<polyline class=\"load\""));
	assert_non_null(strstr(svg, "<title>kinfer-operator simulate: step</title>"));
	free(out);
	free(svg);
}

/* Model fields left at 0 take the defaults; the step is the interval. */
static void test_closed_loop_defaults(void **state)
{
	const char *load = "{\"t\": 100, \"rps\": 5}\n{\"t\": 160, \"rps\": 5}\n";
	struct simulate_scaling sc;
	char *out = NULL, err[256];
	json_object *o;

	(void)state;
	load_spec("kind: InferenceService\nspec:\n  scaling:\n    maxReplicas: 4\n"
		  "    evaluationIntervalSeconds: 20\n"
		  "    metrics: [{type: LatencyP99, target: 2000}, "
		  "{type: Custom, target: 1, query: up}]\n",
		  &sc);
	assert_int_equal(run_loop(&sc, NULL, load, &out, NULL, err, sizeof(err)), 0);
	assert_int_equal(count_lines(out), 3);
	o = nth_json(out, 0);
	assert_int_equal(jint(o, "t"), 120);
	assert_true(jnum(o, "rps") == 5);
	assert_true(jnum(o, "p99_ms") == 1000);
	assert_string_equal(jstr(o, "metric"), "LatencyP99");
	json_object_put(o);
	free(out);
}

static void test_closed_loop_errors(void **state)
{
	static const struct {
		const char *load, *want;
	} cases[] = {
		{ "{\"t\": 0, \"rps\": 1}\n", "load.jsonl: the load trace needs two lines" },
		{ "{\"t\": 0, \"rps\": 1}\n{\"t\": 0, \"rps\": 2}\n", "needs two lines" },
		{ "{\"t\": 0, \"rps\": 1}\n{\"t\": 60}\n", "load.jsonl:2: \"rps\" is missing" },
		{ "{\"t\": 0, \"rps\": -1}\n", "load.jsonl:1: \"rps\" must be a number" },
		{ "{\"t\": 0, \"rps\": 1}\n{\"t\": 60, \"rps\": 1}\nnope\n",
		  "load.jsonl:3: not valid JSON" },
		{ "{\"t\": 0, \"rps\": 1}\n{\"t\": 1e9, \"rps\": 1}\n", "steps of 15 s: at most" },
	};
	struct simulate_scaling sc;
	char *out, err[256];

	(void)state;
	load_spec(isvc_yaml, &sc);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out = NULL;
		err[0] = '\0';
		assert_int_equal(run_loop(&sc, NULL, cases[i].load, &out, NULL, err, sizeof(err)),
				 -EINVAL);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].want);
		free(out);
	}
	/* Only Custom metrics: nothing the model can produce. */
	load_spec("kind: InferenceService\nspec:\n  scaling:\n    maxReplicas: 4\n"
		  "    metrics: [{type: Custom, target: 1, query: up}]\n",
		  &sc);
	out = NULL;
	assert_int_equal(run_loop(&sc, NULL, cases[1].load, &out, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "only Custom metrics"));
	free(out);
}

/* scaleToZero in the closed loop: idle gaps go to zero, the first request
 * wakes one replica that serves after the cold start, the requests held
 * meanwhile are counted (overflow beyond maxPendingRequests, time-outs
 * past activationTimeoutSeconds), and the saving is against the same run
 * with a floor of one replica. */
static void test_closed_loop_scale_to_zero(void **state)
{
	/* 2 rps for 10 min, idle 20 min, 3 rps for 5 min, idle to the end. */
	const char *load = "{\"t\": 0, \"rps\": 2}\n{\"t\": 600, \"rps\": 0}\n"
			   "{\"t\": 1800, \"rps\": 3}\n{\"t\": 2100, \"rps\": 0}\n"
			   "{\"t\": 3600, \"rps\": 0}\n";
	struct simulate_model m = { 8, 800, 45, 0, 90 };
	struct simulate_scaling sc;
	char *out = NULL, err[256];
	json_object *o, *z, *w;
	size_t n;
	int zero_at = -1, woken_at = -1;

	(void)state;
	load_spec("kind: InferenceService\nmetadata: {name: stz}\nspec:\n"
		  "  resources: {gpu: {count: 2}}\n"
		  "  scaling:\n    minReplicas: 0\n    maxReplicas: 4\n"
		  "    metrics: [{type: QueueDepth, target: 5}]\n"
		  "    scaleToZero: {idleSeconds: 120, maxPendingRequests: 100, "
		  "activationTimeoutSeconds: 60}\n",
		  &sc);
	assert_true(sc.scale_to_zero.set);
	assert_int_equal(sc.gpus, 2);
	assert_int_equal(run_loop(&sc, &m, load, &out, NULL, err, sizeof(err)), 0);
	n = count_lines(out);
	assert_int_equal(n, 240 + 1); /* 3600 s / 15 s, and the summary */
	for (size_t k = 0; k + 1 < n; k++) {
		o = nth_json(out, k);
		if (zero_at < 0 && jint(o, "replicas") == 0)
			zero_at = (int)jint(o, "t");
		if (zero_at > 0 && woken_at < 0 && jint(o, "replicas") > 0)
			woken_at = (int)jint(o, "t");
		json_object_put(o);
	}
	/* Last request before 600; idle 120 s -> decided at 720, 0 from 735. */
	assert_int_equal(zero_at, 735);
	/* Woken inside the step of the first request (1800..1815). */
	assert_int_equal(woken_at, 1815);
	o = nth_json(out, n - 1);
	assert_true(json_object_object_get_ex(o, "scaleToZero", &z));
	assert_int_equal(jint(z, "scaledToZero"), 2);
	assert_int_equal(jint(z, "coldStarts"), 1);
	/* 3 rps over the 90 s cold start: 270 held, the first 30 s (90)
	 * time out after 60 s, 180 left: 80 beyond the 100 held. */
	assert_true(jnum(z, "coldStartRequests") == 270);
	assert_true(jnum(z, "timedOut") == 90);
	assert_true(jnum(z, "overflow") == 80);
	assert_true(json_object_object_get_ex(z, "coldStartWaitSeconds", &w));
	assert_true(jnum(w, "mean") == 45);
	assert_true(jnum(w, "max") == 90);
	/* Without scale to zero: one replica all along at least. */
	assert_true(jnum(z, "replicaSecondsWithoutScaleToZero") >= 3600);
	assert_true(jnum(z, "replicaSeconds") < 3600 - 1000);
	assert_true(jnum(z, "gpuSecondsSaved") ==
		    2 * (jnum(z, "replicaSecondsWithoutScaleToZero") - jnum(z, "replicaSeconds")));
	json_object_put(o);
	free(out);
}

int tests_simulate(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scaling_full),
		cmocka_unit_test(test_scaling_defaults),
		cmocka_unit_test(test_trace_matches_algorithm),
		cmocka_unit_test(test_trace_trusts_replicas),
		cmocka_unit_test(test_trace_errors),
		cmocka_unit_test(test_trace_limits),
		cmocka_unit_test(test_isvc_errors),
		cmocka_unit_test(test_closed_loop_step),
		cmocka_unit_test(test_closed_loop_defaults),
		cmocka_unit_test(test_closed_loop_errors),
		cmocka_unit_test(test_closed_loop_scale_to_zero),
	};
	return cmocka_run_group_tests_name("simulate", tests, NULL, NULL);
}
