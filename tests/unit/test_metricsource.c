/*
 * metricsource: the reading half of both sources, on recorded pages
 * (tests/data/metrics: two scrapes of a vLLM server, Triton) and
 * Prometheus answers; the PromQL each metric type becomes; what errors
 * say when a metric is missing, a pod cannot be scraped or a page is bad.
 */
#include "unit.h"

#include "metricsource.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static struct autoscale_spec spec_of(const enum autoscale_metric_type *t, size_t n)
{
	struct autoscale_spec s;

	memset(&s, 0, sizeof(s));
	s.min_replicas = 1;
	s.max_replicas = 10;
	s.n_metrics = n;
	for (size_t i = 0; i < n; i++)
		s.metrics[i] = (struct autoscale_metric_spec){ t[i], 5 };
	return s;
}

static struct metricsource_request request(const struct autoscale_spec *s, enum isvc_framework fw,
					   const struct metricsource_pod *pods, size_t n,
					   int64_t now_ms)
{
	struct metricsource_request rq;

	memset(&rq, 0, sizeof(rq));
	rq.kind = METRICSOURCE_PODS;
	rq.ns = "serving";
	rq.service = "llm";
	rq.framework = fw;
	rq.spec = s;
	rq.port = 8000;
	rq.path = "/metrics";
	rq.pods = pods;
	rq.n_pods = n;
	rq.now_ms = now_ms;
	return rq;
}

/* Two scrapes of one vLLM pod, 15 s apart. */
static void vllm_two_scrapes(void **state)
{
	static const enum autoscale_metric_type t[] = {
		AUTOSCALE_QUEUE_DEPTH,          AUTOSCALE_CONCURRENCY,
		AUTOSCALE_KV_CACHE_UTILIZATION, AUTOSCALE_LATENCY_P99,
		AUTOSCALE_REQUESTS_PER_SECOND,
	};
	struct autoscale_spec s = spec_of(t, 5);
	struct metricsource_pod pod = { "llm-abc-1", "10.0.0.1", AUTOSCALE_POD_READY };
	struct metricsource_state *st = NULL;
	struct metricsource_result res;
	struct autoscale_pod out;
	size_t len1, len2;
	char *p1 = test_read_data("metrics/vllm.txt", &len1);
	char *p2 = test_read_data("metrics/vllm-later.txt", &len2);
	(void)state;

	assert_non_null(p1);
	assert_non_null(p2);
	assert_int_equal(metricsource_state_new(&st), 0);
	struct metricsource_request rq = request(&s, ISVC_VLLM, &pod, 1, 1000);
	const char *b1[] = { p1 };
	assert_int_equal(metricsource_pods_digest(&rq, st, b1, &len1, NULL, &out, &res), 0);
	assert_int_equal(res.scraped, 1);
	assert_true(out.present & 1u);
	assert_true(out.values[0] == 7);              /* vllm:num_requests_waiting */
	assert_true(out.values[1] == 12);             /* vllm:num_requests_running */
	assert_true(fabs(out.values[2] - 83) < 1e-9); /* 0.83 as percent */
	/* Rates and P99s need a window: not yet, and the errors say so. */
	assert_false(out.present & (1u << 4));
	assert_false(res.service.present & (1u << 3));
	assert_non_null(strstr(res.errors[3], "needs two scrapes"));
	assert_non_null(strstr(res.errors[4], "needs two scrapes"));

	rq.now_ms = 16000;
	const char *b2[] = { p2 };
	assert_int_equal(metricsource_pods_digest(&rq, st, b2, &len2, NULL, &out, &res), 0);
	assert_true(out.values[0] == 19);
	assert_true(out.values[1] == 16);
	assert_true(fabs(out.values[2] - 97) < 1e-9);
	/* No request finished between the scrapes: 0 per second. */
	assert_true(out.present & (1u << 4));
	assert_true(out.values[4] == 0);
	/* 400 requests in the window; the 396th is the last of the (10, 15]
	 * bucket: histogram_quantile gives 15 s. */
	assert_true(res.service.present & (1u << 3));
	assert_true(fabs(res.service.values[3] - 15000) < 1e-6);
	assert_string_equal(res.errors[3], "");
	metricsource_state_free(st);
	free(p1);
	free(p2);
}

#define PAGE(waiting, total, b1, b2, inf) \
	"# TYPE vllm:num_requests_waiting gauge\n" \
	"vllm:num_requests_waiting{model_name=\"m\"} " waiting "\n" \
	"# TYPE vllm:request_success_total counter\n" \
	"vllm:request_success_total{model_name=\"m\"} " total "\n" \
	"# TYPE vllm:e2e_request_latency_seconds histogram\n" \
	"vllm:e2e_request_latency_seconds_bucket{le=\"0.5\"} " b1 "\n" \
	"vllm:e2e_request_latency_seconds_bucket{le=\"1\"} " b2 "\n" \
	"vllm:e2e_request_latency_seconds_bucket{le=\"+Inf\"} " inf "\n"

/* Two pods: rates per pod, one P99 for the service over both pods' deltas,
 * a counter reset, and a pod that could not be scraped. */
static void rates_p99_and_failures(void **state)
{
	static const enum autoscale_metric_type t[] = {
		AUTOSCALE_REQUESTS_PER_SECOND,
		AUTOSCALE_LATENCY_P99,
		AUTOSCALE_QUEUE_DEPTH,
	};
	struct autoscale_spec s = spec_of(t, 3);
	struct metricsource_pod pods[] = {
		{ "llm-a", "10.0.0.1", AUTOSCALE_POD_READY },
		{ "llm-b", "10.0.0.2", AUTOSCALE_POD_READY },
		{ "llm-c", "10.0.0.3", AUTOSCALE_POD_IGNORED }, /* draining: not scraped */
	};
	struct metricsource_state *st = NULL;
	struct metricsource_result res;
	struct autoscale_pod out[3];
	const char *first[] = { PAGE("1", "100", "0", "0", "0"), PAGE("2", "1000", "0", "0", "0"),
				NULL };
	/* a: +30 requests in 10 s, 27 under 0.5 s, 30 under 1 s;
	 * b: restarted (counter down): its 70 are all new, 70 under 0.5 s. */
	const char *second[] = { PAGE("3", "130", "27", "30", "30"),
				 PAGE("4", "70", "70", "70", "70"), NULL };
	size_t l1[3], l2[3];
	(void)state;

	for (int k = 0; k < 2; k++) {
		l1[k] = strlen(first[k]);
		l2[k] = strlen(second[k]);
	}
	l1[2] = l2[2] = 0;
	assert_int_equal(metricsource_state_new(&st), 0);
	struct metricsource_request rq = request(&s, ISVC_VLLM, pods, 3, 0);
	assert_int_equal(metricsource_pods_digest(&rq, st, first, l1, NULL, out, &res), 0);
	assert_int_equal(out[2].state, AUTOSCALE_POD_IGNORED);
	assert_int_equal(out[2].present, 0);
	rq.now_ms = 10000;
	assert_int_equal(metricsource_pods_digest(&rq, st, second, l2, NULL, out, &res), 0);
	assert_true(fabs(out[0].values[0] - 3.0) < 1e-9); /* 30 / 10 s */
	assert_true(fabs(out[1].values[0] - 7.0) < 1e-9); /* reset: 70 / 10 s */
	assert_true(out[0].values[2] == 3 && out[1].values[2] == 4);
	/* 100 observations: 97 <= 0.5 s, 100 <= 1 s. Rank 99 lies in
	 * (0.5, 1]: 0.5 + 0.5 * (99 - 97) / 3 = 0.8333 s. */
	assert_true(fabs(res.service.values[1] - 833.3333333) < 1e-3);

	/* Pod b does not answer: its values are missing, a's are there, and
	 * the error names b and why. */
	const char *third[] = { PAGE("5", "160", "57", "60", "60"), NULL, NULL };
	const char *why[] = { NULL, "Connection refused", NULL };
	size_t l3[3] = { strlen(third[0]), 0, 0 };
	rq.now_ms = 20000;
	assert_int_equal(metricsource_pods_digest(&rq, st, third, l3, why, out, &res), 0);
	assert_int_equal(res.failed, 1);
	assert_true(out[0].present & 1u);
	assert_int_equal(out[1].present, 0);
	assert_non_null(strstr(res.errors[2],
			       "1 of 2 pods could not be scraped (llm-b: Connection refused)"));

	/* Nobody answers: every metric says no pod could be scraped. */
	const char *none[] = { NULL, NULL, NULL };
	size_t l0[3] = { 0, 0, 0 };
	assert_int_equal(metricsource_pods_digest(&rq, st, none, l0, why, out, &res), 0);
	assert_non_null(strstr(res.errors[2], "no pod could be scraped (2 of 2 failed"));
	metricsource_state_free(st);
}

/* What is not there, and bad pages. */
static void missing_and_malformed(void **state)
{
	static const enum autoscale_metric_type t[] = { AUTOSCALE_GPU_UTILIZATION,
							AUTOSCALE_QUEUE_DEPTH };
	struct autoscale_spec s = spec_of(t, 2);
	struct metricsource_pod pod = { "llm-a", "10.0.0.1", AUTOSCALE_POD_READY };
	struct metricsource_state *st = NULL;
	struct metricsource_result res;
	struct autoscale_pod out;
	(void)state;

	assert_int_equal(metricsource_state_new(&st), 0);
	struct metricsource_request rq = request(&s, ISVC_VLLM, &pod, 1, 0);
	const char *ok[] = { "vllm:num_requests_waiting 2\n" };
	size_t len = strlen(ok[0]);
	assert_int_equal(metricsource_pods_digest(&rq, st, ok, &len, NULL, &out, &res), 0);
	/* vLLM has no GPU utilization: the error says where to get it. */
	assert_non_null(strstr(res.errors[0], "vLLM exports no GPUUtilization metric"));
	assert_non_null(strstr(res.errors[0], "DCGM_FI_DEV_GPU_UTIL"));
	assert_true(out.values[1] == 2);

	/* A page of another server: the metric is not there. */
	const char *other[] = { "http_requests_total 5\n" };
	len = strlen(other[0]);
	assert_int_equal(metricsource_pods_digest(&rq, st, other, &len, NULL, &out, &res), 0);
	assert_non_null(strstr(res.errors[1], "no pod exports the QueueDepth metric of vLLM"));

	/* A broken page: the error names the pod and the line. */
	const char *bad[] = { "vllm:num_requests_waiting 2\nvllm:x{a=\"b} 1\n" };
	len = strlen(bad[0]);
	assert_int_equal(metricsource_pods_digest(&rq, st, bad, &len, NULL, &out, &res), 0);
	assert_int_equal(res.failed, 1);
	assert_non_null(strstr(res.errors[1], "llm-a: line 2"));
	metricsource_state_free(st);
}

/* Triton: GPU utilization is a 0..1 ratio per GPU, averaged, in percent. */
static void triton_page(void **state)
{
	static const enum autoscale_metric_type t[] = { AUTOSCALE_GPU_UTILIZATION,
							AUTOSCALE_QUEUE_DEPTH };
	struct autoscale_spec s = spec_of(t, 2);
	struct metricsource_pod pod = { "tr-a", "10.0.0.1", AUTOSCALE_POD_READY };
	struct metricsource_state *st = NULL;
	struct metricsource_result res;
	struct autoscale_pod out;
	size_t len;
	char *page = test_read_data("metrics/triton.txt", &len);
	(void)state;

	assert_non_null(page);
	assert_int_equal(metricsource_state_new(&st), 0);
	struct metricsource_request rq = request(&s, ISVC_TRITON, &pod, 1, 0);
	const char *b[] = { page };
	assert_int_equal(metricsource_pods_digest(&rq, st, b, &len, NULL, &out, &res), 0);
	assert_true(fabs(out.values[0] - 89) < 1e-9); /* (0.91 + 0.87) / 2 */
	assert_true(out.values[1] == 10);             /* 0 + 1 + 9 + 0 */
	metricsource_state_free(st);
	free(page);
}

static void promql(void **state)
{
	static const enum autoscale_metric_type t[] = {
		AUTOSCALE_QUEUE_DEPTH,     AUTOSCALE_LATENCY_P99,
		AUTOSCALE_GPU_UTILIZATION, AUTOSCALE_REQUESTS_PER_SECOND,
		AUTOSCALE_CUSTOM,          AUTOSCALE_TIME_TO_FIRST_TOKEN_P99,
	};
	struct autoscale_spec s = spec_of(t, 6);
	struct metricsource_request rq = request(&s, ISVC_VLLM, NULL, 0, 0);
	char q[1024], err[200];
	(void)state;

	rq.kind = METRICSOURCE_PROMETHEUS;
	rq.queries[4] = "sum(rate(my_requests_total[1m]))";
	assert_int_equal(metricsource_promql(&rq, 0, q, sizeof(q), err, sizeof(err)), 0);
	assert_string_equal(q, "sum by (pod) (vllm:num_requests_waiting{namespace=\"serving\","
			       "pod=~\"llm-[a-z0-9]+-[a-z0-9]+\"})");
	assert_int_equal(metricsource_promql(&rq, 1, q, sizeof(q), err, sizeof(err)), 0);
	assert_string_equal(q, "histogram_quantile(0.99, sum by (le) (rate("
			       "vllm:e2e_request_latency_seconds_bucket{namespace=\"serving\","
			       "pod=~\"llm-[a-z0-9]+-[a-z0-9]+\"}[1m]))) * 1000");
	assert_int_equal(metricsource_promql(&rq, 2, q, sizeof(q), err, sizeof(err)), 0);
	assert_string_equal(q, "avg by (pod) (DCGM_FI_DEV_GPU_UTIL{namespace=\"serving\","
			       "pod=~\"llm-[a-z0-9]+-[a-z0-9]+\"})");
	assert_int_equal(metricsource_promql(&rq, 3, q, sizeof(q), err, sizeof(err)), 0);
	assert_non_null(strstr(q, "sum by (pod) (rate(vllm:request_success_total{"));
	assert_int_equal(metricsource_promql(&rq, 4, q, sizeof(q), err, sizeof(err)), 0);
	assert_string_equal(q, "sum(rate(my_requests_total[1m]))");
	/* TGI has no time-to-first-token histogram. */
	rq.framework = ISVC_TGI;
	assert_int_equal(metricsource_promql(&rq, 5, q, sizeof(q), err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "TGI exports no TimeToFirstTokenP99 metric"));
	/* Too small a buffer is an error, not a cut query. */
	rq.framework = ISVC_VLLM;
	assert_int_equal(metricsource_promql(&rq, 1, q, 40, err, sizeof(err)), -ENAMETOOLONG);
}

static void prometheus_answers(void **state)
{
	struct metricsource_sample s[4];
	char err[200];
	size_t n = 0;
	(void)state;

#define PARSE(body, cap) metricsource_prom_parse(body, strlen(body), s, cap, &n, err, sizeof(err))
	assert_int_equal(PARSE("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
			       "{\"metric\":{\"pod\":\"llm-a\"},\"value\":[1700000000.1,\"3.5\"]},"
			       "{\"metric\":{\"pod\":\"llm-b\"},\"value\":[1700000000.1,\"NaN\"]},"
			       "{\"metric\":{},\"value\":[1700000000.1,\"+Inf\"]}]}}",
			       4),
			 0);
	assert_int_equal(n, 3);
	assert_string_equal(s[0].pod, "llm-a");
	assert_true(s[0].value == 3.5);
	assert_true(isnan(s[1].value));
	assert_true(isinf(s[2].value) && s[2].pod[0] == '\0');
	assert_int_equal(PARSE("{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\","
			       "\"result\":[1700000000,\"42\"]}}",
			       4),
			 0);
	assert_int_equal(n, 1);
	assert_true(s[0].value == 42);
	/* The server's own words never come through (issue 12 item 16: they
	 * land in status): only Prometheus's errorType, if it is one. */
	assert_int_equal(PARSE("{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":"
			       "\"1:5: parse error: unexpected <by>\"}",
			       4),
			 -EINVAL);
	assert_string_equal(err, "the query failed (Prometheus errorType bad_data)");
	assert_int_equal(PARSE("{\"status\":\"error\",\"errorType\":\"<secret>\",\"error\":"
			       "\"root:x:0:0\"}",
			       4),
			 -EINVAL);
	assert_string_equal(err, "the query failed (Prometheus errorType unknown)");
	assert_int_equal(PARSE("{\"status\":\"sekrit\",\"error\":\"root:x:0:0\"}", 4), -EINVAL);
	assert_null(strstr(err, "root") ? err : NULL);
	assert_null(strstr(err, "sekrit") ? err : NULL);
	assert_int_equal(
		PARSE("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix-secret\",\"result\":[]}}",
		      4),
		-EINVAL);
	assert_string_equal(err, "unexpected resultType (want vector or scalar)");
	assert_int_equal(PARSE("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
			       "{\"metric\":{},\"value\":[1,2]}]}}",
			       4),
			 -EINVAL);
	assert_non_null(strstr(err, "series 0"));
	assert_int_equal(PARSE("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
			       "{\"value\":[1,\"1\"]},{\"value\":[1,\"1\"]}]}}",
			       1),
			 -E2BIG);
	assert_int_equal(PARSE("<html>bad gateway</html>", 4), -EINVAL);
	assert_non_null(strstr(err, "not JSON"));
	assert_int_equal(PARSE("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
			       "{\"value\":[1,\"1e999\"]}]}}",
			       4),
			 -EINVAL);
#undef PARSE
}

/* Issue 12 item 16: only the admin's Prometheus URLs are queried, and
 * Custom PromQL only when the admin allows it. */
static void prometheus_policy(void **state)
{
	static const enum autoscale_metric_type t[] = { AUTOSCALE_QUEUE_DEPTH, AUTOSCALE_CUSTOM };
	struct autoscale_spec s = spec_of(t, 2);
	struct metricsource_request rq = request(&s, ISVC_VLLM, NULL, 0, 0);
	struct metricsource_state *st;
	struct metricsource_result res;
	struct autoscale_pod out[1];
	char why[256], q[512];
	(void)state;

	assert_int_equal(metricsource_url_allowed("http://169.254.169.254/", why, sizeof(why)), 0);
	assert_int_equal(metricsource_policy_set(
				 "http://prometheus.monitoring:9090/, https://127.0.0.1:9443", false),
			 0);
	assert_int_equal(metricsource_url_allowed("http://prometheus.monitoring:9090", why,
						  sizeof(why)),
			 0);
	assert_int_equal(metricsource_url_allowed("http://prometheus.monitoring:9090//", why,
						  sizeof(why)),
			 0);
	assert_int_equal(metricsource_url_allowed("https://127.0.0.1:9443/", why, sizeof(why)), 0);
	assert_int_equal(metricsource_url_allowed("http://prometheus.monitoring:9090/api", why,
						  sizeof(why)),
			 -EPERM);
	assert_int_equal(metricsource_url_allowed("http://169.254.169.254", why, sizeof(why)),
			 -EPERM);
	assert_non_null(strstr(
		why,
		"is not one of the Prometheus URLs the operator allows (--prometheus-allowed-urls)"));
	/* The query is never sent: no connection refused from port 1. */
	rq.kind = METRICSOURCE_PROMETHEUS;
	rq.url = "http://127.0.0.1:1";
	rq.queries[1] = "sum(up)";
	assert_int_equal(metricsource_state_new(&st), 0);
	memset(&res, 0, sizeof(res));
	assert_int_equal(metricsource_collect(&rq, st, out, &res), 0);
	assert_non_null(strstr(res.errors[0], "--prometheus-allowed-urls"));
	assert_non_null(strstr(res.errors[1], "--allow-custom-promql"));
	metricsource_state_free(st);
	assert_int_equal(metricsource_promql(&rq, 1, q, sizeof(q), why, sizeof(why)), -EPERM);
	assert_non_null(strstr(
		why, "Custom PromQL is off in this operator (its --allow-custom-promql is false)"));
	/* Empty: nothing allowed; bad entries refused. */
	assert_int_equal(metricsource_policy_set("", true), 0);
	assert_int_equal(metricsource_url_allowed("http://prometheus.monitoring:9090", why,
						  sizeof(why)),
			 -EPERM);
	assert_non_null(
		strstr(why, "allows no Prometheus URL (its --prometheus-allowed-urls is empty)"));
	assert_int_equal(metricsource_promql(&rq, 1, q, sizeof(q), why, sizeof(why)), 0);
	assert_int_equal(metricsource_policy_set("ftp://x", false), -EINVAL);
	assert_int_equal(metricsource_policy_set("http://user:pw@x:9090", false), -EINVAL);
	metricsource_policy_clear();
	assert_int_equal(metricsource_url_allowed("http://169.254.169.254", why, sizeof(why)), 0);
}

int tests_metricsource(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(vllm_two_scrapes),
		cmocka_unit_test(rates_p99_and_failures),
		cmocka_unit_test(missing_and_malformed),
		cmocka_unit_test(triton_page),
		cmocka_unit_test(promql),
		cmocka_unit_test(prometheus_answers),
		cmocka_unit_test(prometheus_policy),
	};
	return cmocka_run_group_tests_name("metricsource", tests, NULL, NULL);
}
