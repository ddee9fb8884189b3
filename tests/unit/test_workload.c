/*
 * workload: the Deployment and Service built from InferenceServices as the
 * API server stores them (the files in tests/data/isvc: the CRD's good samples
 * applied to kube-apiserver v1.33.13 and read back, defaults included).
 */
#include "unit.h"

#include "cache.h"
#include "kinds.h"
#include "workload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_object *spec_of(const char *file)
{
	char *s = test_read_data(file, NULL);
	assert_non_null(s);
	json_object *o = json_tokener_parse(s), *spec;
	free(s);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "spec", &spec));
	json_object_get(spec);
	json_object_put(o);
	return spec;
}

/* The value at a path with [i] array steps, as a string ("" if absent). */
static const char *at(json_object *o, const char *path)
{
	static char out[1024];
	char buf[512], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save)) {
		char *br = strchr(k, '[');
		if (br) {
			*br = '\0';
			if (*k && !json_object_object_get_ex(o, k, &o))
				return "";
			o = json_object_array_get_idx(o, (size_t)atoi(br + 1));
		} else if (!json_object_object_get_ex(o, k, &o)) {
			return "";
		}
	}
	snprintf(out, sizeof(out), "%s", o ? json_object_get_string(o) : "");
	return out;
}

static struct workload build(const char *file, int32_t replicas)
{
	struct workload w;
	char err[256];
	json_object *spec = spec_of(file);
	int r = workload_build("serving", "svc", "uid-1", spec, replicas, NULL, &w, err, sizeof(err));
	if (r < 0)
		fail_msg("%s: %s", file, err);
	json_object_put(spec);
	return w;
}

#define C "spec.template.spec.containers[0]"

static void vllm_exclusive_gpu(void **state)
{
	struct workload w = build("isvc/vllm.json", 3);
	json_object *d = w.deployment;
	(void)state;
	assert_string_equal(at(d, "spec.replicas"), "3");
	assert_string_equal(at(d, "metadata.ownerReferences[0].kind"), "InferenceService");
	assert_string_equal(at(d, "metadata.ownerReferences[0].uid"), "uid-1");
	assert_string_equal(at(d, "metadata.ownerReferences[0].controller"), "true");
	assert_string_equal(at(d, "metadata.labels.kinfer.io/service"), ""); /* dotted key: see below */
	json_object *labels = json_object_object_get(json_object_object_get(d, "metadata"), "labels");
	assert_string_equal(json_object_get_string(
				    json_object_object_get(labels, "kinfer.io/service")),
			    "svc");
	assert_string_equal(at(d, "spec.template.spec.readinessGates[0].conditionType"),
			    "kinfer.io/warmed-up");
	assert_string_equal(at(d, C ".image"), "vllm/vllm-openai:v0.6.3");
	assert_string_equal(at(d, C ".args[0]"), "--model=s3://models/llama-7b");
	assert_string_equal(at(d, C ".args[1]"), "--served-model-name=llama-7b");
	assert_string_equal(at(d, C ".args[2]"), "--port=8000");
	assert_string_equal(at(d, C ".ports[0].containerPort"), "8000");
	assert_string_equal(at(d, C ".readinessProbe.httpGet.path"), "/health");
	/* The startup probe asks every second for 30 min: a model up is
	 * warmed within a second, not a 10 s period later. */
	assert_string_equal(at(d, C ".startupProbe.httpGet.path"), "/health");
	assert_string_equal(at(d, C ".startupProbe.periodSeconds"), "1");
	assert_string_equal(at(d, C ".startupProbe.failureThreshold"), "1800");
	json_object *lim = json_object_object_get(
		json_object_object_get(
			json_object_object_get(
				json_object_array_get_idx(
					json_object_object_get(
						json_object_object_get(
							json_object_object_get(
								json_object_object_get(d, "spec"),
								"template"),
							"spec"),
						"containers"),
					0),
				"resources"),
			"limits"),
		"nvidia.com/gpu");
	assert_string_equal(json_object_get_string(lim), "1");
	assert_string_equal(at(d, C ".resources.requests.cpu"), "4");
	assert_string_equal(at(d, C ".resources.requests.memory"), "16Gi");
	/* 14Gi per GPU: nodes whose GPUs have more than 14335 MiB. */
	assert_string_equal(at(d, "spec.template.spec.affinity.nodeAffinity."
				  "requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]."
				  "matchExpressions[0].values[0]"),
			    "14335");
	assert_string_equal(at(d, "spec.template.spec.tolerations[0].key"), "nvidia.com/gpu");
	/* drain 120 s: grace above it, preStop pause capped at 30 s. */
	assert_string_equal(at(d, "spec.template.spec.terminationGracePeriodSeconds"), "150");
	assert_string_equal(at(d, C ".lifecycle.preStop.sleep.seconds"), "30");
	assert_string_equal(at(d, "spec.strategy.rollingUpdate.maxUnavailable"), "0");
	assert_string_equal(at(w.service, "spec.ports[0].port"), "8000");
	assert_string_equal(at(w.service, "spec.type"), "ClusterIP");
	assert_int_equal(strlen(w.deployment_hash), 16);
	workload_free(&w);
}

/* A rollout with no room for its extra pod goes one pod at a time: the
 * Deployment without surge, and the projection reads that back (what the
 * controller keeps during the rollout); the template is the same. */
static void rollout_without_surge(void **state)
{
	struct workload_options o = { .no_surge = true };
	struct workload w = build("isvc/vllm.json", 3), one;
	json_object *spec = spec_of("isvc/vllm.json");
	struct kdeployment d = { 0 };
	char err[256];
	(void)state;
	assert_string_equal(at(w.deployment, "spec.strategy.rollingUpdate.maxSurge"), "1");
	kdeployment_read_status(&d, w.deployment, NULL);
	assert_false(d.no_surge);
	assert_int_equal(workload_build("serving", "svc", "uid-1", spec, 3, &o, &one, err,
					sizeof(err)),
			 0);
	assert_string_equal(at(one.deployment, "spec.strategy.rollingUpdate.maxSurge"), "0");
	assert_string_equal(at(one.deployment, "spec.strategy.rollingUpdate.maxUnavailable"), "1");
	kdeployment_read_status(&d, one.deployment, NULL);
	assert_true(d.no_surge);
	assert_string_not_equal(w.deployment_hash, one.deployment_hash);
	/* The pod template's own hash: the same, and with other replicas too. */
	assert_string_equal(w.template_hash, one.template_hash);
	struct workload five = build("isvc/vllm.json", 5);
	assert_string_equal(w.template_hash, five.template_hash);
	assert_string_not_equal(w.deployment_hash, five.deployment_hash);
	workload_free(&five);
	json_object *t1 = json_object_object_get(json_object_object_get(w.deployment, "spec"),
						 "template"),
		    *t2 = json_object_object_get(json_object_object_get(one.deployment, "spec"),
						 "template");
	assert_true(json_object_equal(t1, t2));
	/* "0%" is no surge too; 25% is not. */
	json_object *ru = json_object_object_get(
		json_object_object_get(json_object_object_get(one.deployment, "spec"), "strategy"),
		"rollingUpdate");
	json_object_object_add(ru, "maxSurge", json_object_new_string("0%"));
	kdeployment_read_status(&d, one.deployment, NULL);
	assert_true(d.no_surge);
	json_object_object_add(ru, "maxSurge", json_object_new_string("25%"));
	kdeployment_read_status(&d, one.deployment, NULL);
	assert_false(d.no_surge);
	json_object_put(spec);
	workload_free(&one);
	workload_free(&w);
}

static json_object *limits(json_object *d)
{
	json_object *c = json_object_array_get_idx(
		json_object_object_get(
			json_object_object_get(json_object_object_get(json_object_object_get(d, "spec"),
								      "template"),
					       "spec"),
			"containers"),
		0);
	return json_object_object_get(json_object_object_get(c, "resources"), "limits");
}

static void triton_mig_and_metrics_port(void **state)
{
	struct workload w = build("isvc/triton.json", 2);
	(void)state;
	assert_string_equal(json_object_get_string(json_object_object_get(limits(w.deployment),
									  "nvidia.com/mig-1g.10gb")),
			    "1");
	assert_null(json_object_object_get(limits(w.deployment), "nvidia.com/gpu"));
	assert_string_equal(at(w.deployment, C ".command[0]"), "tritonserver");
	assert_string_equal(at(w.deployment, C ".ports[1].containerPort"), "8002");
	assert_string_equal(at(w.service, "spec.ports[1].port"), "8002");
	json_object *sel = json_object_object_get(
		json_object_object_get(json_object_object_get(json_object_object_get(w.deployment,
										     "spec"),
							      "template"),
				       "spec"),
		"nodeSelector");
	assert_string_equal(json_object_get_string(
				    json_object_object_get(sel, "nvidia.com/gpu.product")),
			    "NVIDIA-A100-SXM4-80GB");
	workload_free(&w);
}

static void tgi_time_slicing_and_options(void **state)
{
	struct workload w = build("isvc/tgi.json", 2);
	(void)state;
	assert_string_equal(json_object_get_string(json_object_object_get(limits(w.deployment),
									  "nvidia.com/gpu.shared")),
			    "1");
	assert_string_equal(at(w.deployment, C ".args[1]"), "--port=8080");
	workload_free(&w);
	/* The shared resource name and the scheduler are options. */
	struct workload_options o = { .shared_gpu_resource = "nvidia.com/gpu",
				      .scheduler_name = "kinfer" };
	char err[256];
	json_object *spec = spec_of("isvc/tgi.json");
	assert_int_equal(workload_build("ns", "n", "u", spec, 1, &o, &w, err, sizeof(err)), 0);
	assert_string_equal(json_object_get_string(
				    json_object_object_get(limits(w.deployment), "nvidia.com/gpu")),
			    "1");
	assert_string_equal(at(w.deployment, "spec.template.spec.schedulerName"), "kinfer");
	workload_free(&w);
	json_object_put(spec);
}

/* What kinfer's scheduler reads from a pod: its priority (label) and a
 * service that does not want cached nodes preferred (annotation). */
static void placement_hints_in_the_template(void **state)
{
	struct workload w;
	char err[256];
	json_object *tm, *l, *a, *v;
	(void)state;
	json_object *spec = json_tokener_parse(
		"{\"model\":{\"name\":\"m\",\"uri\":\"s3://m\"},"
		"\"resources\":{\"gpu\":{\"count\":1}},\"scheduling\":{\"priority\":\"high\","
		"\"preferCachedNodes\":false}}");
	assert_int_equal(workload_build("ns", "n", "u", spec, 1, NULL, &w, err, sizeof(err)), 0);
	assert_true(json_object_object_get_ex(w.deployment, "spec", &tm));
	assert_true(json_object_object_get_ex(tm, "template", &tm));
	assert_true(json_object_object_get_ex(tm, "metadata", &tm));
	assert_true(json_object_object_get_ex(tm, "labels", &l));
	assert_true(json_object_object_get_ex(tm, "annotations", &a));
	assert_true(json_object_object_get_ex(l, "kinfer.io/priority", &v));
	assert_string_equal(json_object_get_string(v), "high");
	assert_true(json_object_object_get_ex(a, "kinfer.io/prefer-cached-nodes", &v));
	assert_string_equal(json_object_get_string(v), "false");
	workload_free(&w);
	json_object_put(spec);
	/* Defaults: normal, and no annotation. */
	spec = spec_of("isvc/minimal.json");
	assert_int_equal(workload_build("ns", "n", "u", spec, 1, NULL, &w, err, sizeof(err)), 0);
	json_object_object_get_ex(w.deployment, "spec", &tm);
	json_object_object_get_ex(tm, "template", &tm);
	json_object_object_get_ex(tm, "metadata", &tm);
	json_object_object_get_ex(tm, "labels", &l);
	json_object_object_get_ex(tm, "annotations", &a);
	assert_true(json_object_object_get_ex(l, "kinfer.io/priority", &v));
	assert_string_equal(json_object_get_string(v), "normal");
	assert_false(json_object_object_get_ex(a, "kinfer.io/prefer-cached-nodes", &v));
	workload_free(&w);
	json_object_put(spec);
}

static void custom_and_cpu_only(void **state)
{
	struct workload w = build("isvc/custom.json", 0);
	(void)state;
	assert_string_equal(at(w.deployment, C ".image"), "registry.example.com/embedder:1.4");
	assert_string_equal(at(w.deployment, C ".readinessProbe.httpGet.path"), "/ready");
	assert_string_equal(at(w.deployment, C ".resources.limits.memory"), "2147483648");
	assert_null(json_object_object_get(limits(w.deployment), "nvidia.com/gpu"));
	assert_string_equal(at(w.deployment, "spec.template.spec.tolerations"), "");
	assert_string_equal(at(w.service, "spec.ports[1].port"), "9100");
	workload_free(&w);
}

static void full_spec_passes_user_fields(void **state)
{
	struct workload w = build("isvc/full.json", 2);
	(void)state;
	assert_string_equal(at(w.deployment, C ".args[3]"), "--tensor-parallel-size=4");
	assert_string_equal(at(w.deployment, C ".env[3].valueFrom.secretKeyRef.name"), "hf");
	assert_string_equal(at(w.deployment, "spec.template.spec.tolerations[1].key"), "dedicated");
	assert_string_equal(at(w.deployment, "spec.template.spec.terminationGracePeriodSeconds"),
			    "330");
	json_object *sel = json_object_object_get(
		json_object_object_get(json_object_object_get(json_object_object_get(w.deployment,
										     "spec"),
							      "template"),
				       "spec"),
		"nodeSelector");
	assert_string_equal(json_object_get_string(
				    json_object_object_get(sel, "topology.kubernetes.io/zone")),
			    "zone-a");
	workload_free(&w);
}

static void hash_is_stable_and_sensitive(void **state)
{
	struct workload a = build("isvc/vllm.json", 1), b = build("isvc/vllm.json", 1),
			c = build("isvc/vllm.json", 2);
	(void)state;
	assert_string_equal(a.deployment_hash, b.deployment_hash);
	assert_string_equal(a.service_hash, b.service_hash);
	assert_string_not_equal(a.deployment_hash, c.deployment_hash);
	assert_string_equal(a.service_hash, c.service_hash);
	workload_free(&a);
	workload_free(&b);
	workload_free(&c);
}

static void errors_name_the_field(void **state)
{
	struct workload w;
	char err[256];
	(void)state;
	json_object *spec = json_tokener_parse("{\"model\":{\"name\":\"m\",\"uri\":\"u\","
					       "\"framework\":\"custom\"},\"port\":9000}");
	assert_int_equal(workload_build("ns", "n", "u", spec, 1, NULL, &w, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "spec.image: required for framework custom");
	json_object_put(spec);
	spec = json_tokener_parse("{\"model\":{\"name\":\"m\",\"uri\":\"u\"},"
				  "\"resources\":{\"gpu\":{\"count\":1,\"sharing\":\"mig\"}}}");
	assert_int_equal(workload_build("ns", "n", "u", spec, 1, NULL, &w, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "spec.resources.gpu.migProfile: required with sharing mig");
	json_object_put(spec);
	spec = json_tokener_parse("{\"model\":{\"name\":\"m\"}}");
	assert_int_equal(workload_build("ns", "n", "u", spec, 1, NULL, &w, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "spec.model"));
	json_object_put(spec);
}

/* Issue 12 item 13: the longest model URI the CRD allows reaches the
 * server whole; a longer one is refused naming the field, never served
 * without --model=. */
static void long_model_uri(void **state)
{
	static const char *const fws[] = { "vllm", "triton", "tgi" };
	static const char *const flag[] = { "--model=", "--model-repository=", "--model-id=" };
	char uri[6000], spec_json[7000], err[256], want[6100];
	struct workload w;
	(void)state;
	for (size_t f = 0; f < 3; f++) {
		for (size_t len = 2048; len <= 5000; len += 2952) {
			memcpy(uri, "s3://", 5);
			memset(uri + 5, 'a', len - 5);
			uri[len] = '\0';
			snprintf(spec_json, sizeof(spec_json),
				 "{\"model\":{\"name\":\"m\",\"uri\":\"%s\",\"framework\":\"%s\"}}",
				 uri, fws[f]);
			json_object *spec = json_tokener_parse(spec_json);
			assert_non_null(spec);
			int r = workload_build("ns", "n", "u", spec, 1, NULL, &w, err, sizeof(err));
			json_object_put(spec);
			if (len > 4000) {
				assert_int_equal(r, -EINVAL);
				assert_non_null(strstr(err, "spec.model.uri"));
				continue;
			}
			assert_int_equal(r, 0);
			snprintf(want, sizeof(want), "%s%s", flag[f], uri);
			json_object *args = NULL;
			json_object *c = json_object_array_get_idx(
				cache_json_get(w.deployment, "spec.template.spec.containers"), 0);
			assert_true(json_object_object_get_ex(c, "args", &args));
			bool found = false;
			for (size_t i = 0; i < json_object_array_length(args); i++)
				found = found || strcmp(json_object_get_string(
								json_object_array_get_idx(args, i)),
							want) == 0;
			assert_true(found);
			workload_free(&w);
		}
	}
}

int tests_workload(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(vllm_exclusive_gpu),
		cmocka_unit_test(rollout_without_surge),
		cmocka_unit_test(triton_mig_and_metrics_port),
		cmocka_unit_test(tgi_time_slicing_and_options),
		cmocka_unit_test(placement_hints_in_the_template),
		cmocka_unit_test(custom_and_cpu_only),
		cmocka_unit_test(full_spec_passes_user_fields),
		cmocka_unit_test(hash_is_stable_and_sensitive),
		cmocka_unit_test(errors_name_the_field),
		cmocka_unit_test(long_model_uri),
	};
	return cmocka_run_group_tests_name("workload", tests, NULL, NULL);
}
