/*
 * bench_autoscale: what one autoscaling period costs. Prints "name value
 * unit" lines and asserts nothing:
 *  - evaluations per second of the decision for a service of 10 pods and
 *    3 metrics (2 per-pod, 1 service-level) with a realistic history,
 *    alone and with the history update the controller does after it;
 *  - promtext on a recorded vLLM page: MB/s, samples/s, and the cost of
 *    one pod's scrape decoded into the autoscaler's inputs;
 *  - the CPU one period costs for 1,000 InferenceServices x 10 pods,
 *    first as parsing and deciding only, then as the operator does it:
 *    metricsource's Pods source scraping every pod over HTTP (a loopback
 *    server playing 10,000 pods' /metrics with the recorded page), the
 *    digest with rate and P99 windows, and the decision; the operator's
 *    CPU is the evaluating thread's, the server's is reported apart.
 *
 * Usage: bench_autoscale [vllm-page] (default: the recorded page in
 * tests/data/metrics).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autoscale.h"
#include "metricsource.h"
#include "promtext.h"

#include <microhttpd.h>

#define PODS 10
#define SEC 1000LL

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_file(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		if (buf)
			*ret_len = (size_t)n;
	}
	fclose(f);
	return buf;
}

static void make_spec(struct autoscale_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->min_replicas = 1;
	s->max_replicas = 20;
	s->n_metrics = 3;
	s->metrics[0] = (struct autoscale_metric_spec){ AUTOSCALE_QUEUE_DEPTH, 5 };
	s->metrics[1] = (struct autoscale_metric_spec){ AUTOSCALE_GPU_UTILIZATION, 70 };
	s->metrics[2] = (struct autoscale_metric_spec){ AUTOSCALE_LATENCY_P99, 2000 };
}

/* Pods whose load drifts with i, so no two evaluations are alike. */
static void make_pods(struct autoscale_pod *p, struct autoscale_service *sv, unsigned i)
{
	for (unsigned k = 0; k < PODS; k++) {
		p[k].state = k == 9 ? AUTOSCALE_POD_UNREADY : AUTOSCALE_POD_READY;
		p[k].present = k == 8 ? 0x1 : 0x3;
		p[k].values[0] = (double)((i + k) % 9);
		p[k].values[1] = 40.0 + (double)((i * 7 + k) % 50);
	}
	sv->present = 0x1;
	sv->values[0] = 1500.0 + (double)(i % 1000);
}

static void bench_evaluate(void)
{
	struct autoscale_recommendation recs[21];
	struct autoscale_scale_event up[3], down[2];
	struct autoscale_pod p[PODS];
	struct autoscale_service sv;
	struct autoscale_spec s;
	struct autoscale_input in;
	struct autoscale_result r;
	const unsigned n = 2000000;
	long sink = 0;
	double t0, dt;

	make_spec(&s);
	for (int k = 0; k < 21; k++)
		recs[k] = (struct autoscale_recommendation){ -k * 15 * SEC, 4 + k % 3 };
	for (int k = 0; k < 3; k++)
		up[k] = (struct autoscale_scale_event){ -k * 20 * SEC, 1, false };
	for (int k = 0; k < 2; k++)
		down[k] = (struct autoscale_scale_event){ -k * 40 * SEC, 1, false };
	memset(&in, 0, sizeof(in));
	in.spec = &s;
	in.pods = p;
	in.n_pods = PODS;
	in.service = &sv;
	in.recommendations = recs;
	in.n_recommendations = 21;
	in.up_events = up;
	in.n_up_events = 3;
	in.down_events = down;
	in.n_down_events = 2;
	t0 = now_s();
	for (unsigned i = 0; i < n; i++) {
		make_pods(p, &sv, i);
		in.current_replicas = 4 + (int32_t)(i % 3);
		if (autoscale_evaluate(&in, &r) == 0)
			sink += r.desired;
	}
	dt = now_s() - t0;
	printf("autoscale_evaluate_10pods_3metrics %.0f evals/s\n", n / dt);
	printf("autoscale_evaluate_10pods_3metrics_time %.0f ns/eval\n", dt / n * 1e9);
	if (sink == 42)
		printf("# %ld\n", sink);
}

/* Evaluate and record, one evaluation every 15 s of simulated time. */
static void bench_evaluate_record(void)
{
	struct autoscale_history *h;
	struct autoscale_pod p[PODS];
	struct autoscale_service sv;
	struct autoscale_spec s;
	struct autoscale_input in;
	struct autoscale_result r;
	const unsigned n = 1000000;
	int32_t cur = 4;
	double t0, dt;

	if (autoscale_history_new(&h) < 0)
		return;
	make_spec(&s);
	t0 = now_s();
	for (unsigned i = 0; i < n; i++) {
		memset(&in, 0, sizeof(in));
		make_pods(p, &sv, i);
		in.spec = &s;
		in.current_replicas = cur;
		in.pods = p;
		in.n_pods = PODS;
		in.service = &sv;
		in.now_ms = (int64_t)i * 15 * SEC;
		autoscale_history_attach(h, &in);
		if (autoscale_evaluate(&in, &r) < 0 ||
		    autoscale_history_record(h, &s, &r, in.now_ms) < 0)
			break;
		cur = r.desired;
	}
	dt = now_s() - t0;
	printf("autoscale_evaluate_and_record %.0f evals/s\n", n / dt);
	autoscale_history_free(h);
}

/* What the metric source does with one pod's page. */
static int decode_pod(const char *buf, size_t len, struct autoscale_pod *pod,
		      struct promtext_bucket *b, size_t *nb)
{
	struct promtext *p;
	double v;
	int r;

	r = promtext_parse(buf, len, NULL, NULL, &p);
	if (r < 0)
		return r;
	memset(pod, 0, sizeof(*pod));
	if (promtext_sum(p, "vllm:num_requests_waiting", NULL, 0, &v, NULL) == 0) {
		pod->present |= 1;
		pod->values[0] = v;
	}
	if (promtext_avg(p, "vllm:kv_cache_usage_perc", NULL, 0, &v, NULL) == 0) {
		pod->present |= 2;
		pod->values[1] = v * 100;
	}
	r = promtext_histogram(p, "vllm:e2e_request_latency_seconds", NULL, 0, b, 64, nb);
	promtext_free(p);
	return r;
}

static void bench_parse(const char *buf, size_t len)
{
	struct promtext *p;
	struct promtext_bucket b[64], prev[64];
	struct autoscale_pod pod;
	size_t samples = 0, nb = 0, np;
	unsigned n = 0;
	double t0, dt, q;

	if (promtext_parse(buf, len, NULL, NULL, &p) < 0)
		return;
	samples = promtext_count(p);
	promtext_free(p);
	t0 = now_s();
	do {
		for (int k = 0; k < 100; k++, n++) {
			if (promtext_parse(buf, len, NULL, NULL, &p) == 0)
				promtext_free(p);
		}
		dt = now_s() - t0;
	} while (dt < 1.0);
	printf("promtext_parse_vllm_page_size %zu bytes\n", len);
	printf("promtext_parse_vllm_page_samples %zu samples\n", samples);
	printf("promtext_parse_throughput %.1f MB/s\n", (double)len * n / dt / 1e6);
	printf("promtext_parse_samples %.0f samples/s\n", (double)samples * n / dt);
	printf("promtext_parse_vllm_page %.1f us/page\n", dt / n * 1e6);
	if (decode_pod(buf, len, &pod, prev, &np) < 0)
		return;
	n = 0;
	t0 = now_s();
	do {
		for (int k = 0; k < 100; k++, n++)
			if (decode_pod(buf, len, &pod, b, &nb) == 0)
				(void)promtext_histogram_quantile(0.99, prev, np, b, nb, &q);
		dt = now_s() - t0;
	} while (dt < 1.0);
	printf("scrape_decode_per_pod %.1f us/pod\n", dt / n * 1e6);
}

/* One period of 1,000 services x 10 pods: decode 10,000 pages, then
 * 1,000 evaluations. */
static void bench_period(const char *buf, size_t len)
{
	struct autoscale_pod pods[PODS];
	struct autoscale_service sv;
	struct autoscale_spec s;
	struct autoscale_input in;
	struct autoscale_result r;
	struct promtext_bucket b[64];
	size_t nb;
	double t0, dt;

	make_spec(&s);
	t0 = now_s();
	for (int svc = 0; svc < 1000; svc++) {
		for (int k = 0; k < PODS; k++)
			(void)decode_pod(buf, len, &pods[k], b, &nb);
		sv = (struct autoscale_service){ 1, { 1800 } };
		memset(&in, 0, sizeof(in));
		in.spec = &s;
		in.current_replicas = PODS;
		in.pods = pods;
		in.n_pods = PODS;
		in.service = &sv;
		(void)autoscale_evaluate(&in, &r);
	}
	dt = now_s() - t0;
	printf("period_1000_services_x_10_pods_cpu %.3f s\n", dt);
	printf("period_cpu_per_service %.0f us\n", dt / 1000 * 1e6);
}

static double cpu_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct page {
	const char *buf;
	size_t len;
};

static enum MHD_Result serve_page(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_len, void **con_cls)
{
	const struct page *pg = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void)url;
	(void)method;
	(void)version;
	(void)upload;
	(void)upload_len;
	(void)con_cls;
	r = MHD_create_response_from_buffer(pg->len, (void *)pg->buf, MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

#define SERVICES 1000

/* One period of the operator's autoscaler for 1,000 services x 10 pods. */
static void bench_operator_period(const char *buf, size_t len)
{
	static const enum autoscale_metric_type t[] = { AUTOSCALE_QUEUE_DEPTH,
							AUTOSCALE_KV_CACHE_UTILIZATION,
							AUTOSCALE_LATENCY_P99 };
	struct page pg = { buf, len };
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0,
						NULL, NULL, serve_page, &pg, MHD_OPTION_SOCK_ADDR,
						&addr, MHD_OPTION_THREAD_POOL_SIZE, 1,
						MHD_OPTION_CONNECTION_LIMIT, 2000, MHD_OPTION_END);
	struct metricsource_state **st = calloc(SERVICES, sizeof(*st));
	struct autoscale_history **h = calloc(SERVICES, sizeof(*h));
	struct metricsource_pod pods[PODS];
	struct autoscale_pod out[PODS];
	struct metricsource_result *res = calloc(1, sizeof(*res));
	struct autoscale_spec s;
	struct autoscale_result r;
	size_t bytes = 0, failed = 0;
	const union MHD_DaemonInfo *info;

	if (!d || !st || !h || !res) {
		fprintf(stderr, "bench_autoscale: cannot start the loopback server\n");
		goto out;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	memset(&s, 0, sizeof(s));
	s.min_replicas = 1;
	s.max_replicas = 20;
	s.n_metrics = 3;
	for (size_t i = 0; i < 3; i++)
		s.metrics[i] = (struct autoscale_metric_spec){ t[i], i == 2 ? 2000 : 50 };
	for (int k = 0; k < PODS; k++)
		pods[k] = (struct metricsource_pod){ "llm-x", "127.0.0.1", AUTOSCALE_POD_READY };
	char names[PODS][32];
	for (int k = 0; k < PODS; k++) {
		snprintf(names[k], sizeof(names[k]), "llm-abc-%d", k);
		pods[k].name = names[k];
	}
	/* Two periods: the first opens the rate and P99 windows. */
	for (int round = 0; round < 2; round++) {
		double w0 = now_s(), c0 = cpu_s(CLOCK_THREAD_CPUTIME_ID);
		double p0 = cpu_s(CLOCK_PROCESS_CPUTIME_ID);
		bytes = failed = 0;
		for (int svc = 0; svc < SERVICES; svc++) {
			struct metricsource_request rq = {
				.kind = METRICSOURCE_PODS,
				.ns = "bench",
				.service = "llm",
				.framework = ISVC_VLLM,
				.spec = &s,
				.port = info->port,
				.path = "/metrics",
				.timeout_ms = 5000,
				.pods = pods,
				.n_pods = PODS,
				.now_ms = (round + 1) * 15 * SEC,
			};
			if (!st[svc] && (metricsource_state_new(&st[svc]) < 0 ||
					 autoscale_history_new(&h[svc]) < 0))
				goto out;
			if (metricsource_collect(&rq, st[svc], out, res) < 0)
				goto out;
			bytes += res->bytes;
			failed += res->failed;
			struct autoscale_input in = {
				.spec = &s,
				.current_replicas = PODS,
				.pods = out,
				.n_pods = PODS,
				.service = &res->service,
				.now_ms = rq.now_ms,
			};
			autoscale_history_attach(h[svc], &in);
			if (autoscale_evaluate(&in, &r) == 0)
				autoscale_history_record(h[svc], &s, &r, rq.now_ms);
		}
		double wall = now_s() - w0, cpu = cpu_s(CLOCK_THREAD_CPUTIME_ID) - c0;
		double proc = cpu_s(CLOCK_PROCESS_CPUTIME_ID) - p0;
		if (round == 0)
			continue;
		printf("operator_period_1000x10_scraped_wall %.2f s\n", wall);
		printf("operator_period_1000x10_scraped_cpu %.2f s\n", cpu);
		printf("operator_cpu_per_evaluation %.0f us\n", cpu / SERVICES * 1e6);
		printf("operator_cpu_per_pod_scrape %.0f us\n", cpu / SERVICES / PODS * 1e6);
		printf("operator_cpu_share_of_15s_period %.1f %%\n", cpu / 15.0 * 100);
		printf("loopback_server_cpu_for_10000_pages %.2f s\n", proc - cpu);
		printf("scraped_bytes_per_period %.1f MB\n", (double)bytes / 1e6);
		printf("scrapes_failed %zu\n", failed);
	}
out:
	for (int svc = 0; st && h && svc < SERVICES; svc++) {
		metricsource_state_free(st[svc]);
		autoscale_history_free(h[svc]);
	}
	free(st);
	free(h);
	free(res);
	if (d)
		MHD_stop_daemon(d);
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : KINFER_TEST_DATA "/metrics/vllm.txt";
	size_t len = 0;
	char *buf;

	bench_evaluate();
	bench_evaluate_record();
	buf = read_file(path, &len);
	if (!buf) {
		fprintf(stderr, "bench_autoscale: cannot read %s: %s\n", path, strerror(errno));
		return 1;
	}
	bench_parse(buf, len);
	bench_period(buf, len);
	bench_operator_period(buf, len);
	free(buf);
	return 0;
}
