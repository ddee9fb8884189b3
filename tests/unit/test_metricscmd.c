/*
 * metricscmd: `kinfer-operator metrics` on real /metrics pages
 * (tests/data/metrics, see its README for where each was recorded) and on
 * pages derived from them in this file (each derivation says what it
 * changed): the value kinfer would use for every metric type, or why it has
 * none; the quirks of real servers (# TYPE without # HELP, blank lines
 * between families, histograms without +Inf, _sum before buckets, -1
 * sentinels, both kv_cache_usage_perc and gpu_cache_usage_perc); exit codes
 * and FILE:LINE on a page that does not parse.
 */
#include "unit.h"

#include "metricscmd.h"
#include "promtext.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct run {
	int code;
	char *out, *err;
	json_object *json;
};

static void run_pages(const char *fw, const char *const *names, const char *const *bodies, size_t n,
		      long interval_ms, struct run *r)
{
	size_t lens[2] = { 0, 0 }, ol = 0, el = 0;
	FILE *o, *e;
	for (size_t k = 0; k < n; k++)
		lens[k] = strlen(bodies[k]);
	o = open_memstream(&r->out, &ol);
	e = open_memstream(&r->err, &el);
	assert_non_null(o);
	assert_non_null(e);
	r->code = metricscmd_run(fw, names, bodies, lens, n, interval_ms, true, o, e);
	fclose(o);
	fclose(e);
	r->json = r->code == 0 ? json_tokener_parse(r->out) : NULL;
}

static void done(struct run *r)
{
	json_object_put(r->json);
	free(r->out);
	free(r->err);
}

static json_object *metric(struct run *r, const char *type)
{
	json_object *m, *v;
	assert_true(json_object_object_get_ex(r->json, "metrics", &m));
	assert_true(json_object_object_get_ex(m, type, &v));
	return v;
}

static void want_value(struct run *r, const char *type, double want, const char *source)
{
	json_object *m = metric(r, type), *v, *s;
	if (!json_object_object_get_ex(m, "value", &v))
		fprintf(stderr, "%s: %s\n", type, json_object_to_json_string(m));
	assert_true(json_object_object_get_ex(m, "value", &v));
	assert_true(fabs(json_object_get_double(v) - want) < 1e-6);
	assert_true(json_object_object_get_ex(m, "source", &s));
	assert_string_equal(json_object_get_string(s), source);
}

static void want_missing(struct run *r, const char *type, const char *why)
{
	json_object *m = metric(r, type), *v;
	assert_false(json_object_object_get_ex(m, "value", &v));
	assert_true(json_object_object_get_ex(m, "missing", &v));
	if (!strstr(json_object_get_string(v), why))
		fprintf(stderr, "%s: %s\n", type, json_object_get_string(v));
	assert_non_null(strstr(json_object_get_string(v), why));
}

/* Replace the first occurrence of from by to (a derived page). */
static char *derive(const char *page, const char *from, const char *to)
{
	const char *at = strstr(page, from);
	assert_non_null(at);
	size_t n = strlen(page) - strlen(from) + strlen(to);
	char *out = malloc(n + 1);
	assert_non_null(out);
	size_t pre = (size_t)(at - page);
	memcpy(out, page, pre);
	memcpy(out + pre, to, strlen(to));
	strcpy(out + pre + strlen(to), at + strlen(from));
	return out;
}

static void vllm_v0_aibrix_page(void **state)
{
	char *page = test_read_data("metrics/vllm-0.7-v0engine-aibrix-doc.prom", NULL);
	const char *names[] = { "aibrix.prom" };
	struct run r;
	(void)state;
	assert_non_null(page);
	/* # TYPE without # HELP (vllm:cache_config_info), _sum before buckets
	 * and no +Inf (vllm:iteration_tokens_total): the page parses. */
	run_pages("vllm", names, (const char *[]){ page }, 1, 0, &r);
	assert_int_equal(r.code, 0);
	want_value(&r, "QueueDepth", 0, "vllm:num_requests_waiting");
	want_value(&r, "Concurrency", 0, "vllm:num_requests_running");
	/* Only the old name on this page: it is used. */
	want_value(&r, "KVCacheUtilization", 0, "vllm:gpu_cache_usage_perc");
	want_missing(&r, "RequestsPerSecond",
		     "a rate needs two pages (from vllm:request_success_total)");
	want_missing(&r, "LatencyP99", "no pod exports the LatencyP99 metric of vLLM");
	want_missing(&r, "GPUUtilization", "vLLM exports no GPUUtilization metric");
	want_missing(&r, "Custom", "Custom metrics need metricsSource type Prometheus");
	done(&r);

	/* The incomplete histogram (no +Inf, no _count) gives no quantile. */
	struct promtext *p;
	struct promtext_bucket b[64];
	size_t nb;
	double q;
	assert_int_equal(promtext_parse(page, strlen(page), NULL, NULL, &p), 0);
	assert_int_equal(promtext_histogram(p, "vllm:iteration_tokens_total", NULL, 0, b, 64, &nb),
			 0);
	assert_int_equal(nb, 15);
	assert_false(isinf(b[nb - 1].le));
	assert_int_not_equal(promtext_bucket_quantile(0.99, b, nb, &q), 0);
	promtext_free(p);

	/* Derived: the KV gauge set to vLLM's -1 sentinel: missing, not -100 %. */
	char *neg = derive(
		page,
		"vllm:gpu_cache_usage_perc{model_name=\"Qwen/Qwen2.5-Coder-1.5B-Instruct\"} 0.0",
		"vllm:gpu_cache_usage_perc{model_name=\"Qwen/Qwen2.5-Coder-1.5B-Instruct\"} -1.0");
	run_pages("vllm", names, (const char *[]){ neg }, 1, 0, &r);
	assert_int_equal(r.code, 0);
	want_missing(&r, "KVCacheUtilization", "vllm:gpu_cache_usage_perc reports -1");
	done(&r);
	free(neg);
	free(page);
}

static void triton_trtllm_page(void **state)
{
	char *page = test_read_data("metrics/triton-trtllm-23.12plus-readme-sample.prom", NULL);
	const char *names[] = { "triton.prom" };
	struct run r;
	(void)state;
	assert_non_null(page);
	run_pages("triton", names, (const char *[]){ page }, 1, 0, &r);
	assert_int_equal(r.code, 0);
	/* TensorRT-LLM's own queue (1) before Triton's pending count (0). */
	want_value(&r, "QueueDepth", 1, "nv_trt_llm_request_metrics{request_type=\"waiting\"}");
	want_value(&r, "KVCacheUtilization", 48.75,
		   "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"fraction\"}");
	want_missing(&r, "RequestsPerSecond",
		     "a rate needs two pages (from nv_inference_request_success)");
	want_missing(&r, "Concurrency", "Triton exports no Concurrency metric");
	done(&r);
	/* Derived: without the TensorRT-LLM families, Triton's pending count. */
	char *core = strstr(page, "# HELP nv_inference_request_success ");
	assert_non_null(core);
	run_pages("triton", names, (const char *[]){ core }, 1, 0, &r);
	want_value(&r, "QueueDepth", 0, "nv_inference_pending_request_count");
	done(&r);
	/* Derived: a blank line between every family, as TGI's exporter
	 * writes them: the same answers. */
	size_t n = strlen(page);
	char *blank = malloc(n * 2 + 1), *w = blank;
	assert_non_null(blank);
	for (const char *c = page; *c; c++) {
		if (c != page && strncmp(c, "# HELP", 6) == 0)
			*w++ = '\n';
		*w++ = *c;
	}
	*w = '\0';
	run_pages("triton", names, (const char *[]){ blank }, 1, 0, &r);
	assert_int_equal(r.code, 0);
	want_value(&r, "QueueDepth", 1, "nv_trt_llm_request_metrics{request_type=\"waiting\"}");
	done(&r);
	free(blank);
	free(page);
}

static void vllm_two_pages(void **state)
{
	char *a = test_read_data("metrics/vllm.txt", NULL),
	     *b = test_read_data("metrics/vllm-later.txt", NULL);
	const char *names[] = { "vllm.txt", "vllm-later.txt" };
	struct run r;
	(void)state;
	run_pages("vllm", names, (const char *[]){ a, b }, 2, 15000, &r);
	assert_int_equal(r.code, 0);
	want_value(&r, "QueueDepth", 19, "vllm:num_requests_waiting");
	/* Both names on these pages: the new one. */
	want_value(&r, "KVCacheUtilization", 97, "vllm:kv_cache_usage_perc");
	json_object *v;
	assert_true(json_object_object_get_ex(metric(&r, "LatencyP99"), "value", &v));
	assert_true(json_object_object_get_ex(metric(&r, "RequestsPerSecond"), "value", &v));
	done(&r);
	free(a);
	free(b);
}

static void vllm_both_cache_names(void **state)
{
	char *page = test_read_data("metrics/vllm-datadog-opt125m.prom", NULL);
	const char *names[] = { "datadog.prom" };
	struct run r;
	(void)state;
	assert_non_null(page);
	/* Derived: the deprecated gauge at 0.5, the new one stays 0.0. */
	char *d = derive(page, "vllm:gpu_cache_usage_perc{model_name=\"facebook/opt-125m\"} 0.0",
			 "vllm:gpu_cache_usage_perc{model_name=\"facebook/opt-125m\"} 0.5");
	run_pages("vllm", names, (const char *[]){ d }, 1, 0, &r);
	assert_int_equal(r.code, 0);
	want_value(&r, "KVCacheUtilization", 0, "vllm:kv_cache_usage_perc");
	want_missing(&r, "LatencyP99",
		     "a P99 needs two pages (from vllm:e2e_request_latency_seconds)");
	done(&r);
	/* Derived: a second page 10 s later whose e2e histogram lost its +Inf
	 * bucket (as a page cut short): _count stands in for it. */
	char *later = derive(
		page,
		"vllm:e2e_request_latency_seconds_bucket{le=\"+Inf\",model_name=\"facebook/opt-125m\"} 1.0\n",
		"");
	char *later2 = derive(
		later, "vllm:e2e_request_latency_seconds_count{model_name=\"facebook/opt-125m\"} 1.0",
		"vllm:e2e_request_latency_seconds_count{model_name=\"facebook/opt-125m\"} 3.0");
	char *later3 = derive(
		later2,
		"vllm:e2e_request_latency_seconds_bucket{le=\"60.0\",model_name=\"facebook/opt-125m\"} 1.0",
		"vllm:e2e_request_latency_seconds_bucket{le=\"60.0\",model_name=\"facebook/opt-125m\"} 2.0");
	const char *names2[] = { "datadog.prom", "later.prom" };
	run_pages("vllm", names2, (const char *[]){ page, later3 }, 2, 10000, &r);
	assert_int_equal(r.code, 0);
	/* 2 new requests: one in (50, 60], one past 60 s: the P99 is 60 s. */
	want_value(&r, "LatencyP99", 60000, "vllm:e2e_request_latency_seconds");
	done(&r);
	free(later);
	free(later2);
	free(later3);
	free(d);
	free(page);
}

static void parse_errors(void **state)
{
	const char *names[] = { "bad.prom" };
	struct run r;
	(void)state;
	run_pages("tgi", names,
		  (const char *[]){ "# TYPE tgi_queue_size gauge\ntgi_queue_size 3\n"
				    "tgi_batch_current_size{x=\"1} 2\n" },
		  1, 0, &r);
	assert_int_equal(r.code, 1);
	assert_non_null(strstr(r.err, "bad.prom:3: "));
	done(&r);
	run_pages("tgi", names,
		  (const char *[]){ "# TYPE tgi_queue_size gauge\n\ntgi_queue_size 3\n" }, 1, 0, &r);
	assert_int_equal(r.code, 0);
	want_value(&r, "QueueDepth", 3, "tgi_queue_size");
	want_missing(&r, "Concurrency", "no pod exports the Concurrency metric of TGI");
	done(&r);
	run_pages("custom", names, (const char *[]){ "x 1\n" }, 1, 0, &r);
	assert_int_equal(r.code, 2);
	done(&r);
}

int tests_metricscmd(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(vllm_v0_aibrix_page), cmocka_unit_test(triton_trtllm_page),
		cmocka_unit_test(vllm_two_pages),      cmocka_unit_test(vllm_both_cache_names),
		cmocka_unit_test(parse_errors),
	};
	return cmocka_run_group_tests_name("metricscmd", tests, NULL, NULL);
}
