/*
 * libFuzzer target for what the autoscaler reads from the network besides
 * the text pages themselves: a Prometheus /api/v1/query answer
 * (metricsource_prom_parse), and the Pods source's digest of two scrapes
 * of two pods (rates, histogram windows, counter resets, bad pages). The
 * input is cut at the first 0xff byte: before it the first scrape, after
 * it the second; the whole input is also parsed as a Prometheus answer.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "metricsource.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct metricsource_sample samples[64];
	static const enum autoscale_metric_type types[] = {
		AUTOSCALE_QUEUE_DEPTH,
		AUTOSCALE_CONCURRENCY,
		AUTOSCALE_REQUESTS_PER_SECOND,
		AUTOSCALE_LATENCY_P99,
		AUTOSCALE_TIME_TO_FIRST_TOKEN_P99,
		AUTOSCALE_KV_CACHE_UTILIZATION,
		AUTOSCALE_GPU_UTILIZATION,
	};
	struct metricsource_pod pods[2] = {
		{ "p-a", "10.0.0.1", AUTOSCALE_POD_READY },
		{ "p-b", "10.0.0.2", AUTOSCALE_POD_UNREADY },
	};
	struct autoscale_spec spec;
	struct metricsource_request rq;
	struct metricsource_state *st = NULL;
	struct metricsource_result res;
	struct autoscale_pod out[2];
	char err[200];
	size_t n, cut;

	(void)metricsource_prom_parse((const char *)data, size, samples, 64, &n, err, sizeof(err));

	memset(&spec, 0, sizeof(spec));
	spec.min_replicas = 1;
	spec.max_replicas = 10;
	spec.n_metrics = sizeof(types) / sizeof(types[0]);
	for (size_t i = 0; i < spec.n_metrics; i++)
		spec.metrics[i] = (struct autoscale_metric_spec){ types[i], 5 };
	memset(&rq, 0, sizeof(rq));
	rq.ns = "ns";
	rq.service = "p";
	rq.framework = size ? (enum isvc_framework)(data[0] % 4) : ISVC_VLLM;
	rq.spec = &spec;
	rq.pods = pods;
	rq.n_pods = 2;
	for (cut = 0; cut < size && data[cut] != 0xff; cut++)
		;
	const char *first[2] = { (const char *)data, (const char *)data };
	size_t l1[2] = { cut, cut / 2 };
	const char *second[2] = { cut < size ? (const char *)data + cut + 1 : NULL,
				  (const char *)data };
	size_t l2[2] = { cut < size ? size - cut - 1 : 0, cut };
	const char *why[2] = { "refused", "refused" };
	if (metricsource_state_new(&st) < 0)
		return 0;
	rq.now_ms = 1000;
	(void)metricsource_pods_digest(&rq, st, first, l1, why, out, &res);
	rq.now_ms = 16000;
	(void)metricsource_pods_digest(&rq, st, second, l2, why, out, &res);
	metricsource_state_free(st);
	return 0;
}
