/*
 * The presets. Images are the frameworks' published ones; args follow each
 * server's own flags (vLLM's OpenAI server, Triton, TGI's launcher).
 */
#include "presets.h"

#include "cache.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const vllm_args[] = { "--model={uri}", "--served-model-name={name}",
					 "--port={port}", NULL };
static const char *const triton_cmd[] = { "tritonserver", NULL };
static const char *const triton_args[] = { "--model-repository={uri}", "--http-port={port}",
					   "--metrics-port=8002", NULL };
static const char *const tgi_args[] = { "--model-id={uri}", "--port={port}", NULL };

/* Requests a server holds: what drain waits to reach zero. vLLM's swapped
 * ones (to CPU under memory pressure, v0 engine) are in flight too; a
 * request moving between running and swapped must not look like one that
 * left or arrived. */
static const char *const vllm_inflight[] = { "vllm:num_requests_running", "vllm:num_requests_waiting",
					     "vllm:num_requests_swapped", NULL };
static const char *const triton_inflight[] = { "nv_inference_pending_request_count", NULL };
static const char *const tgi_inflight[] = { "tgi_queue_size", "tgi_batch_current_size", NULL };

/* Requests answered (vLLM: finished ones, by finished_reason; the others
 * ok and failed). */
static const char *const vllm_answered[] = { "vllm:request_success_total", NULL };
static const char *const triton_answered[] = { "nv_inference_request_success",
					       "nv_inference_request_failure", NULL };
static const char *const tgi_answered[] = { "tgi_request_success", "tgi_request_failure", NULL };

static const struct preset presets[] = {
	{ ISVC_VLLM, "vllm", "vllm/vllm-openai:v0.6.3", NULL, vllm_args, 8000, "/health", 0,
	  "/metrics", "/v1/completions",
	  "{\"model\":\"{name}\",\"prompt\":\"Hello\",\"max_tokens\":8}", vllm_inflight,
	  vllm_answered },
	{ ISVC_TRITON, "triton", "nvcr.io/nvidia/tritonserver:24.08-py3", triton_cmd, triton_args,
	  8000, "/v2/health/ready", 8002, "/metrics", "/v2/models/{name}/ready", NULL,
	  triton_inflight, triton_answered },
	{ ISVC_TGI, "tgi", "ghcr.io/huggingface/text-generation-inference:2.3.1", NULL, tgi_args,
	  8080, "/health", 0, "/metrics", "/generate",
	  "{\"inputs\":\"Hello\",\"parameters\":{\"max_new_tokens\":8}}", tgi_inflight, tgi_answered },
	{ ISVC_CUSTOM, "custom", NULL, NULL, NULL, 0, "/", 0, "/metrics", NULL, NULL, NULL, NULL },
};

const struct preset *preset_for(enum isvc_framework fw)
{
	for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
		if (presets[i].framework == fw)
			return &presets[i];
	return &presets[3];
}

void preset_endpoint(const struct preset *pr, json_object *spec, int32_t *ret_port,
		     int32_t *ret_metrics_port, const char **ret_metrics_path)
{
	int32_t port = (int32_t)cache_json_int(spec, "port", pr->port);
	const char *path = cache_json_str(spec, "metricsEndpoint.path");

	if (ret_port)
		*ret_port = port;
	if (ret_metrics_port)
		*ret_metrics_port = (int32_t)cache_json_int(spec, "metricsEndpoint.port",
							    pr->metrics_port ? pr->metrics_port :
									       port);
	if (ret_metrics_path)
		*ret_metrics_path = path ? path : pr->metrics_path;
}

int preset_expand(const char *t, const char *uri, const char *name, int32_t port, char *buf,
		  size_t len)
{
	size_t o = 0;
	char num[16];
	snprintf(num, sizeof(num), "%d", port);
	while (*t) {
		const char *v = NULL;
		size_t skip = 0;
		if (strncmp(t, "{uri}", 5) == 0) {
			v = uri;
			skip = 5;
		} else if (strncmp(t, "{name}", 6) == 0) {
			v = name;
			skip = 6;
		} else if (strncmp(t, "{port}", 6) == 0) {
			v = num;
			skip = 6;
		}
		if (v) {
			size_t n = strlen(v);
			if (o + n >= len)
				return -ENAMETOOLONG;
			memcpy(buf + o, v, n);
			o += n;
			t += skip;
			continue;
		}
		if (o + 1 >= len)
			return -ENAMETOOLONG;
		buf[o++] = *t++;
	}
	buf[o] = '\0';
	return 0;
}
