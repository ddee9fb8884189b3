/*
 * promtext: the text exposition format on real pages (vLLM, Triton, the
 * DCGM exporter under tests/data/metrics), the grammar's corners, every
 * malformed-input error with its line number, the limits, and
 * histogram_quantile as PromQL computes it.
 */
#include "unit.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promtext.h"

/* cmocka 1.1.5's assert_float_equal works in float; these need double. */
#define assert_near(got, want, eps) check_near((got), (want), (eps), __LINE__)

static void check_near(double got, double want, double eps, int line)
{
	if (!(fabs(got - want) <= eps))
		fail_msg("line %d: got %.17g, want %.17g", line, got, want);
}

static struct promtext *parse_ok(const char *text)
{
	struct promtext *p = NULL;
	struct promtext_error err;
	int r = promtext_parse(text, strlen(text), NULL, &err, &p);

	if (r < 0)
		fail_msg("unexpected parse error %d: %s", r, err.msg);
	return p;
}

static struct promtext *parse_file(const char *name)
{
	size_t len;
	char *buf = test_read_data(name, &len);
	struct promtext *p = NULL;
	struct promtext_error err;
	int r;

	assert_non_null(buf);
	r = promtext_parse(buf, len, NULL, &err, &p);
	if (r < 0)
		fail_msg("%s: %s", name, err.msg);
	free(buf);
	return p;
}

static double value_of(struct promtext *p, const char *name, const struct promtext_matcher *m,
		       size_t n)
{
	size_t i;

	assert_int_equal(promtext_find(p, name, m, n, 0, &i), 0);
	return promtext_value(p, i);
}

static void vllm_page(void **state)
{
	struct promtext *p = parse_file("metrics/vllm.txt");
	const struct promtext_matcher model[] = {
		{ "model_name", "meta-llama/Llama-2-7b-chat-hf", false },
	};
	const struct promtext_matcher abort_m[] = {
		{ "finished_reason", "abort", false },
	};
	double sum;
	size_t i, series;
	(void)state;

	assert_int_equal(promtext_count(p), 179);
	assert_true(value_of(p, "vllm:num_requests_waiting", model, 1) == 7.0);
	assert_true(value_of(p, "vllm:num_requests_running", NULL, 0) == 12.0);
	assert_true(value_of(p, "vllm:gpu_cache_usage_perc", NULL, 0) == 0.83);
	assert_true(value_of(p, "vllm:kv_cache_usage_perc", NULL, 0) == 0.83);
	assert_true(value_of(p, "process_max_fds", NULL, 0) == 1048576.0);
	assert_int_equal(promtext_family_type(p, "vllm:num_requests_waiting"), PROMTEXT_GAUGE);
	assert_int_equal(promtext_family_type(p, "vllm:prompt_tokens_total"), PROMTEXT_COUNTER);
	assert_int_equal(promtext_family_type(p, "vllm:e2e_request_latency_seconds"),
			 PROMTEXT_HISTOGRAM);
	assert_int_equal(promtext_family_type(p, "no_such_family"), PROMTEXT_UNTYPED);
	assert_int_equal(promtext_sum(p, "vllm:request_success_total", NULL, 0, &sum, &series), 0);
	assert_true(sum == 4200.0);
	assert_int_equal(series, 3);
	assert_true(value_of(p, "vllm:request_success_total", abort_m, 1) == 84.0);
	assert_int_equal(promtext_find(p, "vllm:cache_config_info", NULL, 0, 0, &i), 0);
	assert_string_equal(promtext_label(p, i, "num_gpu_blocks"), "27153");
	assert_null(promtext_label(p, i, "model_name"));
	assert_string_equal(promtext_name(p, i), "vllm:cache_config_info");
	promtext_free(p);
}

/* P99 of e2e latency over the minute between two real scrapes. */
static void vllm_p99_from_deltas(void **state)
{
	struct promtext *a = parse_file("metrics/vllm.txt");
	struct promtext *b = parse_file("metrics/vllm-later.txt");
	struct promtext_bucket pa[64], pb[64];
	size_t na, nb;
	double v;
	(void)state;

	assert_int_equal(promtext_histogram(a, "vllm:e2e_request_latency_seconds", NULL, 0, pa, 64,
					    &na),
			 0);
	assert_int_equal(promtext_histogram(b, "vllm:e2e_request_latency_seconds", NULL, 0, pb, 64,
					    &nb),
			 0);
	assert_int_equal(na, 22);
	assert_int_equal(nb, 22);
	assert_true(isinf(pa[21].le) && pa[21].count == 4200);
	/*
	 * Deltas: le<=2.0 0, 2.5 200, 5 200, 10 350, 15 396, 20 396, 30.. 400.
	 * rank 0.99*400 = 396 lands in (10,15]: 10 + 5 * (396-350)/46 = 15.
	 */
	assert_int_equal(promtext_histogram_quantile(0.99, pa, na, pb, nb, &v), 0);
	assert_near(v, 15.0, 1e-9);
	/* rank 200 in (2,2.5]: 2 + 0.5 * 200/200. */
	assert_int_equal(promtext_histogram_quantile(0.5, pa, na, pb, nb, &v), 0);
	assert_near(v, 2.5, 1e-9);
	/* rank 360 in (10,15]: 10 + 5 * 10/46. */
	assert_int_equal(promtext_histogram_quantile(0.9, pa, na, pb, nb, &v), 0);
	assert_near(v, 10.0 + 5.0 * 10.0 / 46.0, 1e-9);
	/* Nothing happened between a scrape and itself. */
	assert_int_equal(promtext_histogram_quantile(0.99, pa, na, pa, na, &v), -ENODATA);
	/* Lifetime P99 of the first page: rank 4158 in (15,20]. */
	assert_int_equal(promtext_bucket_quantile(0.99, pa, na, &v), 0);
	assert_near(v, 15.0 + 5.0 * (4158.0 - 4139.0) / 48.0, 1e-9);
	promtext_free(a);
	promtext_free(b);
}

static void triton_page(void **state)
{
	struct promtext *p = parse_file("metrics/triton.txt");
	const struct promtext_matcher trt[] = { { "model", "tensorrt_llm", false } };
	const struct promtext_matcher not_ens[] = {
		{ "model", "ensemble", true },
		{ "version", "1", false },
	};
	double v;
	size_t series;
	(void)state;

	assert_int_equal(promtext_count(p), 61);
	assert_true(value_of(p, "nv_inference_pending_request_count", trt, 1) == 9);
	assert_int_equal(promtext_sum(p, "nv_inference_pending_request_count", not_ens, 2, &v,
				      &series),
			 0);
	assert_true(v == 10 && series == 3);
	assert_true(value_of(p, "nv_inference_queue_duration_us", trt, 1) == 2187712964.0);
	assert_int_equal(promtext_avg(p, "nv_gpu_utilization", NULL, 0, &v, &series), 0);
	assert_near(v, 0.89, 1e-12);
	assert_int_equal(series, 2);
	assert_true(value_of(p, "nv_inference_request_duration_us", trt, 1) == 51199846213.0);
	assert_int_equal(promtext_family_type(p, "nv_inference_queue_duration_us"), PROMTEXT_COUNTER);
	promtext_free(p);
}

static void dcgm_page(void **state)
{
	struct promtext *p = parse_file("metrics/dcgm.txt");
	const struct promtext_matcher pod[] = {
		{ "pod", "llm-7b-6d5f9c7b8-x2k4p", false },
		{ "namespace", "serving", false },
	};
	const struct promtext_matcher ns[] = { { "namespace", "serving", false } };
	const struct promtext_matcher idle[] = { { "pod", "", false } };
	const struct promtext_matcher gone[] = { { "pod", "no-such-pod", false } };
	double v;
	size_t series, i;
	(void)state;

	assert_int_equal(promtext_count(p), 152);
	assert_int_equal(promtext_avg(p, "DCGM_FI_DEV_GPU_UTIL", pod, 2, &v, &series), 0);
	assert_true(v == 90.5 && series == 2);
	assert_int_equal(promtext_sum(p, "DCGM_FI_DEV_GPU_UTIL", ns, 1, &v, &series), 0);
	assert_true(v == 328 && series == 4);
	/* GPUs not given to a pod carry no pod label: it matches "". */
	assert_int_equal(promtext_sum(p, "DCGM_FI_DEV_GPU_UTIL", idle, 1, &v, &series), 0);
	assert_true(v == 0 && series == 3);
	assert_int_equal(promtext_sum(p, "DCGM_FI_DEV_GPU_UTIL", gone, 1, &v, &series), -ENOENT);
	assert_int_equal(promtext_find(p, "DCGM_FI_DEV_FB_USED", pod, 2, 0, &i), 0);
	assert_string_equal(promtext_label(p, i, "UUID"), "GPU-8f6b2c1e-4a3d-5e7f-9b0c-1d2e3f4a5b6c");
	assert_true(promtext_value(p, i) == 74915);
	assert_int_equal(promtext_find(p, "DCGM_FI_DEV_FB_USED", pod, 2, i + 1, &i), 0);
	assert_string_equal(promtext_label(p, i, "gpu"), "1");
	assert_int_equal(promtext_find(p, "DCGM_FI_DEV_FB_USED", pod, 2, i + 1, &i), -ENOENT);
	promtext_free(p);
}

/* Escapes, special values, timestamps, optional syntax. */
static void grammar(void **state)
{
	const char *text = "# A plain comment, then a blank line.\n"
			   "\n"
			   "# HELP esc Help with \\\\ and \\n escapes.\n"
			   "# TYPE esc gauge\n"
			   "esc{path=\"C:\\\\dir\",quote=\"say \\\"hi\\\"\",nl=\"a\\nb\"} 1\n"
			   "   nan_metric NaN\n"
			   "pinf +Inf\n"
			   "ninf\t-Inf\n"
			   "with_ts{a=\"b\"} 2.5 1718000000000\n"
			   "neg_ts 1 -5\n"
			   "empty_labels{} 3\n"
			   "trailing_comma{a=\"1\",} 4\n"
			   "spaced { a = \"1\" , b=\"2\" } 5e-3\n"
			   "crlf 6\r\n"
			   "colon:metric:sum 7\n"
			   "_underscore 8\n"
			   "utf8{v=\"caf\xc3\xa9 \xe2\x82\xac\"} 9\n"
			   "sci 1.5E+3";
	struct promtext *p = parse_ok(text);
	int64_t ts;
	size_t i;
	(void)state;

	assert_int_equal(promtext_count(p), 14);
	assert_int_equal(promtext_find(p, "esc", NULL, 0, 0, &i), 0);
	assert_string_equal(promtext_label(p, i, "path"), "C:\\dir");
	assert_string_equal(promtext_label(p, i, "quote"), "say \"hi\"");
	assert_string_equal(promtext_label(p, i, "nl"), "a\nb");
	assert_true(isnan(value_of(p, "nan_metric", NULL, 0)));
	assert_true(isinf(value_of(p, "pinf", NULL, 0)) && value_of(p, "pinf", NULL, 0) > 0);
	assert_true(isinf(value_of(p, "ninf", NULL, 0)) && value_of(p, "ninf", NULL, 0) < 0);
	assert_int_equal(promtext_find(p, "with_ts", NULL, 0, 0, &i), 0);
	assert_int_equal(promtext_timestamp(p, i, &ts), 0);
	assert_true(ts == 1718000000000LL);
	assert_int_equal(promtext_find(p, "neg_ts", NULL, 0, 0, &i), 0);
	assert_int_equal(promtext_timestamp(p, i, &ts), 0);
	assert_true(ts == -5);
	assert_int_equal(promtext_find(p, "pinf", NULL, 0, 0, &i), 0);
	assert_int_equal(promtext_timestamp(p, i, &ts), -ENOENT);
	assert_true(value_of(p, "empty_labels", NULL, 0) == 3);
	assert_true(value_of(p, "trailing_comma", NULL, 0) == 4);
	assert_int_equal(promtext_find(p, "spaced", NULL, 0, 0, &i), 0);
	assert_string_equal(promtext_label(p, i, "b"), "2");
	assert_true(promtext_value(p, i) == 0.005);
	assert_true(value_of(p, "crlf", NULL, 0) == 6);
	assert_true(value_of(p, "colon:metric:sum", NULL, 0) == 7);
	assert_true(value_of(p, "_underscore", NULL, 0) == 8);
	assert_true(value_of(p, "sci", NULL, 0) == 1500);
	assert_int_equal(promtext_family_type(p, "esc"), PROMTEXT_GAUGE);
	assert_int_equal(promtext_family_type(p, "nan_metric"), PROMTEXT_UNTYPED);
	promtext_free(p);
}

static void summary_and_histogram_families(void **state)
{
	const char *text = "# TYPE rpc_duration_seconds summary\n"
			   "rpc_duration_seconds{quantile=\"0.5\"} 0.012\n"
			   "rpc_duration_seconds{quantile=\"0.99\"} 0.31\n"
			   "rpc_duration_seconds_sum 1762.5\n"
			   "rpc_duration_seconds_count 2693\n"
			   "# TYPE req histogram\n"
			   "req_bucket{le=\"0.1\"} 5\n"
			   "req_bucket{le=\"1\"} 7\n"
			   "req_bucket{le=\"+Inf\"} 11\n"
			   "req_sum 3.5\n"
			   "req_count 11\n"
			   "# TYPE req_created gauge\n"
			   "req_created 1.7e9\n"
			   "stray_bucket 1\n";
	const struct promtext_matcher q99[] = { { "quantile", "0.99", false } };
	struct promtext *p = parse_ok(text);
	struct promtext_bucket b[4];
	size_t n;
	double v;
	(void)state;

	assert_true(value_of(p, "rpc_duration_seconds", q99, 1) == 0.31);
	assert_int_equal(promtext_family_type(p, "rpc_duration_seconds"), PROMTEXT_SUMMARY);
	assert_int_equal(promtext_family_type(p, "req"), PROMTEXT_HISTOGRAM);
	assert_int_equal(promtext_family_type(p, "req_created"), PROMTEXT_GAUGE);
	assert_int_equal(promtext_histogram(p, "req", NULL, 0, b, 4, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(promtext_bucket_quantile(0.25, b, n, &v), 0);
	assert_near(v, 0.055, 1e-12);
	/* Too little room, and a _bucket series without le. */
	assert_int_equal(promtext_histogram(p, "req", NULL, 0, b, 2, &n), -E2BIG);
	assert_int_equal(promtext_histogram(p, "stray", NULL, 0, b, 4, &n), -EINVAL);
	assert_int_equal(promtext_histogram(p, "nope", NULL, 0, b, 4, &n), -ENOENT);
	promtext_free(p);
}

/* Each malformed page: the error code, the line and the reason. */
static void malformed(void **state)
{
	static const struct {
		const char *text;
		int code;
		unsigned line;
		const char *msg;
	} cases[] = {
		{ "foo{a=\"b} 1", -EINVAL, 1, "label value not terminated" },
		{ "# TYPE foo gauge\nfoo 1\nfoo{a=\"x\\q\"} 2", -EINVAL, 3,
		  "invalid escape sequence '\\q' in label value" },
		{ "foo{a=b} 1", -EINVAL, 1, "expected '\"' to start the value" },
		{ "foo{a\"b\"} 1", -EINVAL, 1, "expected '=' after label name" },
		{ "foo{1a=\"b\"} 1", -EINVAL, 1, "where a label name was expected" },
		{ "foo{a=\"b\" c=\"d\"} 1", -EINVAL, 1, "expected ',' or '}'" },
		{ "foo{a=\"b\"", -EINVAL, 1, "expected ',' or '}'" },
		{ "foo{a=\"b\\", -EINVAL, 1, "lone backslash" },
		{ "foo 1 2 3", -EINVAL, 1, "unexpected text after the timestamp" },
		{ "ok 1\nfoo abc", -EINVAL, 2, "invalid value \"abc\"" },
		{ "foo", -EINVAL, 1, "expected a value" },
		{ "foo{} ", -EINVAL, 1, "expected a value" },
		{ "foo 1 12x", -EINVAL, 1, "invalid timestamp" },
		{ "foo 1 99999999999999999999", -EINVAL, 1, "invalid timestamp" },
		{ "foo 1e999", -EINVAL, 1, "invalid value" },
		{ "foo 0x10", -EINVAL, 1, "invalid value" },
		{ "foo 1.2.3", -EINVAL, 1, "invalid value" },
		{ "foo +NaN", -EINVAL, 1, "invalid value" },
		{ "# TYPE foo bogus", -EINVAL, 1, "unknown metric type \"bogus\"" },
		{ "# TYPE foo gauge\n# TYPE foo counter", -EINVAL, 2, "second TYPE line for foo" },
		{ "foo 1\n# TYPE foo gauge", -EINVAL, 2, "after its samples" },
		{ "# HELP foo a\n# HELP foo b", -EINVAL, 2, "second HELP line" },
		{ "# HELP foo bad \\x escape", -EINVAL, 1,
		  "invalid escape sequence '\\x' in help text" },
		{ "# TYPE", -EINVAL, 1, "expected a metric name" },
		{ "# TYPE foo-x gauge", -EINVAL, 1, "invalid character after" },
		{ "foo{a=\"1\",a=\"2\"} 1", -EINVAL, 1, "duplicate label name \"a\"" },
		{ "foo{__name__=\"x\"} 1", -EINVAL, 1, "__name__ is reserved" },
		{ "1foo 1", -EINVAL, 1, "where a metric name was expected" },
		{ "foo-bar 1", -EINVAL, 1, "invalid character '-' in metric name" },
		{ "# TYPE h histogram\nh_bucket{le=\"abc\"} 1", -EINVAL, 2,
		  "expected a float as the value of the 'le' label" },
		{ "# TYPE s summary\ns{quantile=\"x\"} 1", -EINVAL, 2, "'quantile' label" },
		{ "foo{a=\"\xff\"} 1", -EINVAL, 1, "not valid UTF-8" },
		{ "foo{a=\"\xed\xa0\x80\"} 1", -EINVAL, 1, "not valid UTF-8" },
		{ "a 1\nb 2\nc 3\nd 4\ne{x=\"unterminated} 5\nf 6", -EINVAL, 5,
		  "line 5: label value not terminated" },
	};
	(void)state;

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct promtext *p = NULL;
		struct promtext_error err;
		int r = promtext_parse(cases[k].text, strlen(cases[k].text), NULL, &err, &p);
		if (r != cases[k].code || err.line != cases[k].line || !strstr(err.msg, cases[k].msg))
			fail_msg("case %zu: got %d line %u \"%s\", want %d line "
				 "%u \"%s\"",
				 k, r, err.line, err.msg, cases[k].code, cases[k].line, cases[k].msg);
		assert_null(p);
	}
}

/* A NUL byte cannot be written in a string literal case above. */
static void nul_byte(void **state)
{
	const char text[] = "ok 1\nfoo{a=\"x\0y\"} 1\n";
	struct promtext *p = NULL;
	struct promtext_error err;
	(void)state;

	assert_int_equal(promtext_parse(text, sizeof(text) - 1, NULL, &err, &p), -EINVAL);
	assert_int_equal(err.line, 2);
	assert_non_null(strstr(err.msg, "NUL byte in label value"));
}

static void expect_limit(const char *text, const struct promtext_limits *lim, unsigned line,
			 const char *msg)
{
	struct promtext *p = NULL;
	struct promtext_error err;
	int r = promtext_parse(text, strlen(text), lim, &err, &p);

	if (r != -E2BIG || err.line != line || !strstr(err.msg, msg))
		fail_msg("got %d line %u \"%s\", want -E2BIG line %u \"%s\"", r, err.line, err.msg,
			 line, msg);
	assert_null(p);
}

static void limits(void **state)
{
	struct promtext_limits lim = { 0 };
	(void)state;

	lim.max_body = 10;
	expect_limit("a 1\nb 2\nc 3\n", &lim, 0, "body is 12 bytes");
	lim = (struct promtext_limits){ .max_line = 8 };
	expect_limit("a 1\nlong_name 2\n", &lim, 2, "line is longer than 8");
	lim = (struct promtext_limits){ .max_samples = 2 };
	expect_limit("a 1\nb 2\n# c\nc 3\n", &lim, 4, "more than 2 samples");
	lim = (struct promtext_limits){ .max_labels = 2 };
	expect_limit("a{x=\"1\",y=\"2\",z=\"3\"} 1\n", &lim, 1, "more than 2 labels");
	lim = (struct promtext_limits){ .max_name = 4 };
	expect_limit("abcd 1\nabcde 1\n", &lim, 2, "metric name is longer");
	expect_limit("a{abcde=\"1\"} 1\n", &lim, 1, "label name is longer");
	lim = (struct promtext_limits){ .max_label_value = 3 };
	expect_limit("a{x=\"abc\"} 1\na{x=\"abcd\"} 1\n", &lim, 2, "label value is longer than 3");
}

static void empty_and_comments_only(void **state)
{
	struct promtext *p = NULL;
	(void)state;

	assert_int_equal(promtext_parse("", 0, NULL, NULL, &p), 0);
	assert_int_equal(promtext_count(p), 0);
	assert_int_equal(promtext_find(p, "x", NULL, 0, 0, &(size_t){ 0 }), -ENOENT);
	promtext_free(p);
	p = parse_ok("# HELP x y\n# TYPE x gauge\n\n");
	assert_int_equal(promtext_count(p), 0);
	assert_int_equal(promtext_family_type(p, "x"), PROMTEXT_GAUGE);
	promtext_free(p);
	promtext_free(NULL);
}

static void sum_propagates_nan(void **state)
{
	struct promtext *p = parse_ok("g{a=\"1\"} 1\ng{a=\"2\"} NaN\n");
	double v;
	(void)state;

	assert_int_equal(promtext_sum(p, "g", NULL, 0, &v, NULL), 0);
	assert_true(isnan(v));
	promtext_free(p);
}

/* Bucket sets from Prometheus' promql/testdata/histograms.test (the
 * testhistogram series, as rates 5/7/11 and 1/2/2/3). */
static void bucket_quantile_promql(void **state)
{
	const struct promtext_bucket pos[] = {
		{ 0.1, 5 },
		{ 0.2, 7 },
		{ INFINITY, 11 },
	};
	const struct promtext_bucket neg[] = {
		{ -0.2, 1 },
		{ -0.1, 2 },
		{ 0.3, 2 },
		{ INFINITY, 3 },
	};
	static const struct {
		double q, pos, neg;
	} want[] = {
		{ 0, 0, -0.2 },     { 0.25, 0.055, -0.2 }, { 0.5, 0.125, -0.15 },
		{ 0.75, 0.2, 0.3 }, { 1, 0.2, 0.3 },
	};
	double v;
	(void)state;

	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		assert_int_equal(promtext_bucket_quantile(want[k].q, pos, 3, &v), 0);
		assert_near(v, want[k].pos, 1e-12);
		assert_int_equal(promtext_bucket_quantile(want[k].q, neg, 4, &v), 0);
		assert_near(v, want[k].neg, 1e-12);
	}
	assert_int_equal(promtext_bucket_quantile(-0.1, pos, 3, &v), 0);
	assert_true(isinf(v) && v < 0);
	assert_int_equal(promtext_bucket_quantile(1.1, pos, 3, &v), 0);
	assert_true(isinf(v) && v > 0);
	assert_int_equal(promtext_bucket_quantile(NAN, pos, 3, &v), -EINVAL);
}

static void bucket_quantile_edges(void **state)
{
	const struct promtext_bucket no_inf[] = { { 1, 5 }, { 2, 7 } };
	const struct promtext_bucket only_inf[] = { { INFINITY, 7 } };
	const struct promtext_bucket empty[] = { { 1, 0 }, { INFINITY, 0 } };
	/* Not monotonic: the 2 bucket is raised to 10 (PromQL forces it). */
	const struct promtext_bucket dip[] = { { 1, 10 }, { 2, 8 }, { INFINITY, 12 } };
	/* Unsorted, and two series with the same bound (summed). */
	const struct promtext_bucket mixed[] = {
		{ INFINITY, 10 },
		{ 1, 5 },
		{ 1, 5 },
	};
	double v;
	(void)state;

	assert_int_equal(promtext_bucket_quantile(0.5, no_inf, 2, &v), -ENODATA);
	assert_int_equal(promtext_bucket_quantile(0.5, only_inf, 1, &v), -ENODATA);
	assert_int_equal(promtext_bucket_quantile(0.5, empty, 2, &v), -ENODATA);
	assert_int_equal(promtext_bucket_quantile(0.5, NULL, 0, &v), -ENODATA);
	assert_int_equal(promtext_bucket_quantile(0.5, dip, 3, &v), 0);
	assert_near(v, 0.6, 1e-12);
	assert_int_equal(promtext_bucket_quantile(0.95, dip, 3, &v), 0);
	assert_near(v, 2.0, 1e-12);
	assert_int_equal(promtext_bucket_quantile(0.5, mixed, 3, &v), 0);
	assert_near(v, 0.5, 1e-12);
}

static void quantile_deltas_and_resets(void **state)
{
	const struct promtext_bucket prev[] = {
		{ 0.5, 100 },
		{ 1, 180 },
		{ 2, 195 },
		{ INFINITY, 200 },
	};
	const struct promtext_bucket cur[] = {
		{ 0.5, 110 },
		{ 1, 200 },
		{ 2, 295 },
		{ INFINITY, 300 },
	};
	/* After a restart: fewer in every bucket than before. */
	const struct promtext_bucket restarted[] = {
		{ 0.5, 4 },
		{ 1, 8 },
		{ 2, 9 },
		{ INFINITY, 10 },
	};
	/* A bound that appeared between the scrapes is dropped. */
	const struct promtext_bucket grown[] = {
		{ 0.5, 110 }, { 1, 200 }, { 1.5, 250 }, { 2, 295 }, { INFINITY, 300 },
	};
	double v;
	(void)state;

	/* Cumulative deltas 10/20/100/100: rank 50 in (1,2]: 1 + 30/80. */
	assert_int_equal(promtext_histogram_quantile(0.5, prev, 4, cur, 4, &v), 0);
	assert_near(v, 1.375, 1e-12);
	/* rank 99 in (1,2]: 1 + 79/80. */
	assert_int_equal(promtext_histogram_quantile(0.99, prev, 4, cur, 4, &v), 0);
	assert_near(v, 1 + 79.0 / 80.0, 1e-12);
	/* Reset: the current scrape alone; rank 9.9 -> +Inf -> 2. */
	assert_int_equal(promtext_histogram_quantile(0.99, cur, 4, restarted, 4, &v), 0);
	assert_near(v, 2.0, 1e-12);
	/* rank 5 in (0.5,1]: 0.5 + 0.5 * 1/4. */
	assert_int_equal(promtext_histogram_quantile(0.5, cur, 4, restarted, 4, &v), 0);
	assert_near(v, 0.625, 1e-12);
	assert_int_equal(promtext_histogram_quantile(0.5, prev, 4, grown, 5, &v), 0);
	assert_near(v, 1.375, 1e-12);
	assert_int_equal(promtext_histogram_quantile(0.5, NULL, 0, cur, 4, &v), -ENODATA);
	assert_int_equal(promtext_histogram_quantile(NAN, prev, 4, cur, 4, &v), -EINVAL);
}

/* Mutations of a real page: every outcome is a page or a named error. */
static void never_crashes(void **state)
{
	size_t len;
	char *orig = test_read_data("metrics/vllm.txt", &len);
	char *buf = malloc(len);
	uint64_t s = 0x9e3779b97f4a7c15ULL;
	(void)state;

	assert_non_null(orig);
	assert_non_null(buf);
	for (int it = 0; it < 3000; it++) {
		struct promtext *p = NULL;
		struct promtext_error err;
		size_t n = len;
		memcpy(buf, orig, len);
		for (int k = 0; k < 1 + it % 8; k++) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
			buf[s % len] = (char)(s >> 32);
		}
		if (it % 5 == 0)
			n = (size_t)(s >> 20) % len;
		int r = promtext_parse(buf, n, NULL, &err, &p);
		if (r < 0) {
			assert_null(p);
			assert_true(err.line > 0);
			assert_true(strncmp(err.msg, "line ", 5) == 0);
		} else {
			assert_non_null(p);
			promtext_free(p);
		}
	}
	free(buf);
	free(orig);
}

int tests_promtext(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(vllm_page),
		cmocka_unit_test(vllm_p99_from_deltas),
		cmocka_unit_test(triton_page),
		cmocka_unit_test(dcgm_page),
		cmocka_unit_test(grammar),
		cmocka_unit_test(summary_and_histogram_families),
		cmocka_unit_test(malformed),
		cmocka_unit_test(nul_byte),
		cmocka_unit_test(limits),
		cmocka_unit_test(empty_and_comments_only),
		cmocka_unit_test(sum_propagates_nan),
		cmocka_unit_test(bucket_quantile_promql),
		cmocka_unit_test(bucket_quantile_edges),
		cmocka_unit_test(quantile_deltas_and_resets),
		cmocka_unit_test(never_crashes),
	};
	return cmocka_run_group_tests_name("promtext", tests, NULL, NULL);
}
