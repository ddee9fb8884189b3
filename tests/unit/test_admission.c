/*
 * admission: each rule with the exact message a user reads, every
 * violation listed, warnings, immutable fields on UPDATE, hostile types,
 * and defaulting (the patch does what it says, a second pass adds nothing).
 */
#include "unit.h"

#include "admission.h"
#include "cache.h"
#include "metricsource.h"
#include "isvc.h"
#include "scalingspec.h"
#include "yamljson.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_object *yaml(const char *s)
{
	json_object *o = NULL;
	char err[256];
	assert_int_equal(yamljson_parse_one(s, strlen(s), &o, err, sizeof(err)), 0);
	assert_non_null(o);
	return o;
}

#define HEAD "apiVersion: kinfer.io/v1alpha1\nkind: InferenceService\nmetadata: {name: t}\n"

/* Validate a YAML object (optionally against an old one). */
static struct admission_report *check(const char *s, const char *old_s)
{
	struct admission_report *r;
	json_object *o = yaml(s), *old = old_s ? yaml(old_s) : NULL;
	assert_int_equal(admission_report_new(&r), 0);
	assert_int_equal(admission_validate(o, old, r), 0);
	json_object_put(o);
	json_object_put(old);
	return r;
}

static bool has(const struct admission_report *r, bool errors, const char *text)
{
	size_t n = errors ? admission_report_n_errors(r) : admission_report_n_warnings(r);
	for (size_t i = 0; i < n; i++) {
		const char *m = errors ? admission_report_error(r, i) :
					 admission_report_warning(r, i);
		if (strcmp(m, text) == 0)
			return true;
	}
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "  have %s: %s\n", errors ? "error" : "warning",
			errors ? admission_report_error(r, i) : admission_report_warning(r, i));
	return false;
}

/* One object, one expected error (exactly that one). */
static void expect_only(const char *s, const char *text)
{
	struct admission_report *r = check(s, NULL);
	assert_true(has(r, true, text));
	assert_int_equal(admission_report_n_errors(r), 1);
	admission_report_free(r);
}

static void gpu_memory_against_product(void **state)
{
	(void)state;
	expect_only(HEAD
		    "spec:\n  model: {name: m, uri: s3://m}\n  image: vllm/vllm-openai:v0.6.3\n"
		    "  resources: {gpu: {count: 1, memory: 90Gi, product: NVIDIA-H100-80GB-HBM3}}\n",
		    "spec.resources.gpu.memory: 90Gi exceeds the 80Gi of NVIDIA-H100-80GB-HBM3");
	expect_only(HEAD "spec:\n  model: {name: m, uri: s3://m}\n"
			 "  resources: {gpu: {count: 1, memory: 17Gi, product: Tesla-T4}}\n",
		    "spec.resources.gpu.memory: 17Gi exceeds the 16Gi of Tesla-T4");
	expect_only(HEAD "spec:\n  model: {name: m, uri: s3://m}\n"
			 "  resources: {gpu: {count: 1, memory: 200Gi}}\n",
		    "spec.resources.gpu.memory: 200Gi exceeds the largest GPU kinfer knows (141Gi, NVIDIA-H200); no node can fit it");
	expect_only(HEAD "spec:\n  model: {name: m, uri: s3://m}\n"
			 "  resources: {gpu: {count: 1, memory: lots}}\n",
		    "spec.resources.gpu.memory: \"lots\" is not a positive quantity such as 14Gi");
	/* Exactly the product's memory fits. */
	struct admission_report *r = check(
		HEAD "spec:\n  model: {name: m, uri: s3://m}\n"
		     "  resources: {gpu: {count: 1, memory: 80Gi, product: NVIDIA-A100-SXM4-80GB}}\n",
		NULL);
	assert_int_equal(admission_report_n_errors(r), 0);
	admission_report_free(r);
	assert_int_equal(admission_gpu_memory_gib("NVIDIA-L4"), 24);
	assert_int_equal(admission_gpu_memory_gib("NVIDIA-Nope"), 0);
}

static void mig_profiles(void **state)
{
	(void)state;
	expect_only(HEAD
		    "spec:\n  model: {name: m, uri: s3://m}\n"
		    "  resources: {gpu: {count: 1, sharing: mig, migProfile: 3g.20gb, product: NVIDIA-H100-80GB-HBM3}}\n",
		    "spec.resources.gpu.migProfile: 3g.20gb is not a MIG profile of NVIDIA-H100-80GB-HBM3 "
		    "(it has 1g.10gb, 1g.10gb+me, 1g.20gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb)");
	expect_only(
		HEAD
		"spec:\n  model: {name: m, uri: s3://m}\n"
		"  resources: {gpu: {count: 1, sharing: mig, migProfile: 1g.5gb, product: NVIDIA-L4}}\n",
		"spec.resources.gpu.migProfile: NVIDIA-L4 does not support MIG; use sharing exclusive, time-slicing or mps");
	expect_only(HEAD
		    "spec:\n  model: {name: m, uri: s3://m}\n"
		    "  resources: {gpu: {count: 1, sharing: mig, migProfile: 2g.20gb, memory: 30Gi, product: NVIDIA-A100-SXM4-80GB}}\n",
		    "spec.resources.gpu.memory: 30Gi exceeds the 20gb of MIG profile 2g.20gb");
	expect_only(HEAD "spec:\n  model: {name: m, uri: s3://m}\n"
			 "  resources: {gpu: {count: 1, sharing: mig, migProfile: 3g.21gb}}\n",
		    "spec.resources.gpu.migProfile: 3g.21gb is not a MIG profile of any GPU kinfer knows");
	expect_only(
		HEAD
		"spec:\n  model: {name: m, uri: s3://m}\n"
		"  resources: {gpu: {count: 1, sharing: mig, migProfile: 4c.3g.40gb, product: NVIDIA-A100-SXM4-80GB}}\n",
		"spec.resources.gpu.migProfile: 4c.3g.40gb has more compute slices (4) than its GPU instance 3g.40gb (3)");
	/* A valid one, with a compute-instance prefix; no product: a warning. */
	struct admission_report *r =
		check(HEAD "spec:\n  model: {name: m, uri: s3://m}\n"
			   "  resources: {gpu: {count: 1, sharing: mig, migProfile: 2c.3g.40gb}}\n",
		      NULL);
	assert_int_equal(admission_report_n_errors(r), 0);
	assert_true(has(r, false,
			"spec.resources.gpu.migProfile: 3g.40gb without spec.resources.gpu.product; "
			"set the product so the profile can be checked against it"));
	admission_report_free(r);
}

static void sharing_and_count(void **state)
{
	(void)state;
	expect_only(HEAD "spec:\n  model: {name: m, uri: s3://m}\n"
			 "  resources: {gpu: {count: 2, sharing: mps}}\n",
		    "spec.resources.gpu.count: must be 1 with sharing mps (a pod gets one share of one GPU)");
	expect_only(HEAD "spec:\n  model: {name: m, uri: s3://m}\n"
			 "  resources: {gpu: {count: 1, sharing: exclusive, migProfile: 1g.10gb}}\n",
		    "spec.resources.gpu.migProfile: allowed only when spec.resources.gpu.sharing is mig");
	expect_only(HEAD "spec:\n  model: {name: m, uri: s3://m}\n"
			 "  resources: {gpu: {count: 1, sharing: mig}}\n",
		    "spec.resources.gpu.migProfile: required when spec.resources.gpu.sharing is mig");
	struct admission_report *r = check(HEAD
					   "spec:\n  model: {name: m, uri: s3://m}\n"
					   "  resources: {gpu: {count: 1, sharing: time-slicing}}\n",
					   NULL);
	assert_int_equal(admission_report_n_errors(r), 0);
	assert_true(has(r, false,
			"spec.resources.gpu.sharing: time-slicing isolates neither memory nor faults; "
			"replicas on one GPU can run it out of memory"));
	admission_report_free(r);
}

static void metrics_per_framework(void **state)
{
	(void)state;
	expect_only(HEAD
		    "spec:\n  model: {name: m, uri: s3://m, framework: tgi}\n"
		    "  scaling: {maxReplicas: 3, metrics: [{type: QueueDepth, target: 4}, {type: KVCacheUtilization, target: 80}]}\n",
		    "spec.scaling.metrics[1].type: KVCacheUtilization is not exported by tgi (it has QueueDepth, "
		    "Concurrency, RequestsPerSecond, LatencyP99)");
	expect_only(HEAD "spec:\n  model: {name: m, uri: s3://m, framework: triton}\n"
			 "  scaling: {maxReplicas: 3, metrics: [{type: LatencyP99, target: 400}]}\n",
		    "spec.scaling.metrics[0].type: LatencyP99 is not exported by triton (it has QueueDepth, "
		    "RequestsPerSecond, GPUUtilization, KVCacheUtilization)");
	/* GPU utilization: Triton's own, or the DCGM exporter's through Prometheus. */
	expect_only(HEAD
		    "spec:\n  model: {name: m, uri: s3://m}\n"
		    "  scaling: {maxReplicas: 3, metrics: [{type: GPUUtilization, target: 70}]}\n",
		    "spec.scaling.metrics[0].type: vllm exports no GPUUtilization; use "
		    "spec.scaling.metricsSource.type Prometheus with the NVIDIA DCGM exporter");
	expect_only(HEAD
		    "spec:\n  model: {name: m, uri: s3://m}\n"
		    "  scaling: {maxReplicas: 3, metrics: [{type: Custom, target: 7, query: x}]}\n",
		    "spec.scaling.metrics[0].type: Custom needs spec.scaling.metricsSource.type Prometheus "
		    "(its query is PromQL)");
	const char *ok[] = {
		HEAD
		"spec:\n  model: {name: m, uri: s3://m}\n  scaling: {maxReplicas: 3, metrics: "
		"[{type: GPUUtilization, target: 70}, {type: Custom, target: 7, query: x}], metricsSource: "
		"{type: Prometheus, prometheus: {url: \"http://p:9090\"}}}\n",
		HEAD
		"spec:\n  model: {name: m, uri: s3://m, framework: triton}\n  scaling: {maxReplicas: 3, "
		"metrics: [{type: GPUUtilization, target: 70}]}\n",
		HEAD
		"spec:\n  model: {name: m, uri: s3://m, framework: custom}\n  image: r/i:1\n  port: 9000\n"
		"  scaling: {maxReplicas: 3, metrics: [{type: QueueDepth, target: 4}, {type: KVCacheUtilization, "
		"target: 80}]}\n",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct admission_report *r = check(ok[i], NULL);
		if (admission_report_n_errors(r))
			fprintf(stderr, "%zu: %s\n", i, admission_report_error(r, 0));
		assert_int_equal(admission_report_n_errors(r), 0);
		admission_report_free(r);
	}
	expect_only(HEAD
		    "spec:\n  model: {name: m, uri: s3://m}\n"
		    "  scaling: {maxReplicas: 3, metrics: [{type: QueueDepth, target: 4}, {type: QueueDepth, target: 5}]}\n",
		    "spec.scaling.metrics[1].type: QueueDepth is already metrics[0]");
}

static void scaling_behavior(void **state)
{
	(void)state;
	expect_only(HEAD
		    "spec:\n  model: {name: m, uri: s3://m}\n"
		    "  scaling:\n    maxReplicas: 3\n    metrics: [{type: QueueDepth, target: 4}]\n"
		    "    behavior: {scaleUp: {selectPolicy: Disabled}, scaleDown: {selectPolicy: Disabled}}\n",
		    "spec.scaling.behavior: scaleUp and scaleDown are both Disabled, so the replicas can never "
		    "change; remove spec.scaling and set spec.replicas instead");
	expect_only(HEAD
		    "spec:\n  model: {name: m, uri: s3://m}\n"
		    "  scaling:\n    maxReplicas: 3\n    metrics: [{type: QueueDepth, target: 4}]\n"
		    "    behavior: {scaleDown: {policies: [{type: Pods, value: 1, periodSeconds: 60}, "
		    "{type: Pods, value: 2, periodSeconds: 60}]}}\n",
		    "spec.scaling.behavior.scaleDown.policies[1]: same type and periodSeconds as policies[0]");
	expect_only(HEAD
		    "spec:\n  model: {name: m, uri: s3://m}\n"
		    "  scaling:\n    maxReplicas: 3\n    metrics: [{type: QueueDepth, target: 4}]\n"
		    "    behavior: {scaleUp: {policies: []}}\n",
		    "spec.scaling.behavior.scaleUp.policies: empty; give at least one policy or set "
		    "selectPolicy Disabled");
	expect_only(HEAD
		    "spec:\n  model: {name: m, uri: s3://m}\n"
		    "  scaling: {minReplicas: 5, maxReplicas: 3, metrics: [{type: QueueDepth, target: 4}]}\n",
		    "spec.scaling.minReplicas: 5 is above maxReplicas 3");
	struct admission_report *r = check(
		HEAD
		"spec:\n  model: {name: m, uri: s3://m}\n"
		"  scaling: {minReplicas: 3, maxReplicas: 3, metrics: [{type: QueueDepth, target: 4}]}\n",
		NULL);
	assert_int_equal(admission_report_n_errors(r), 0);
	assert_true(has(
		r, false,
		"spec.scaling: minReplicas equals maxReplicas (3), so autoscaling never changes the replicas"));
	admission_report_free(r);
}

/* Issue 17's controls: activation, fallback, panic, schedules, pause. */
#define SC \
	HEAD "spec:\n  model: {name: m, uri: s3://m}\n  scaling:\n    maxReplicas: 10\n" \
	     "    metrics: [{type: QueueDepth, target: 4}]\n"

static void scaling_controls(void **state)
{
	struct admission_report *r;
	(void)state;

	r = check(SC
		  "    fallback: {failureThreshold: 3, replicas: 6, behavior: currentReplicasIfHigher}\n"
		  "    behavior: {panic: {windowSeconds: 6, thresholdPercent: 200}}\n"
		  "    schedules:\n"
		  "    - {cron: '0 9 * * MON-FRI', timeZone: 'UTC+01:00', durationSeconds: 28800, minReplicas: 4}\n"
		  "    - {cron: '@daily', timeZone: UTC, durationSeconds: 3600, minReplicas: 12, maxReplicas: 20}\n",
		  NULL);
	assert_int_equal(admission_report_n_errors(r), 0);
	assert_int_equal(admission_report_n_warnings(r), 0);
	admission_report_free(r);
	expect_only(HEAD "spec:\n  model: {name: m, uri: s3://m}\n  scaling:\n    maxReplicas: 10\n"
			 "    metrics: [{type: QueueDepth, target: 4, activationThreshold: -1}]\n",
		    "spec.scaling.metrics[0].activationThreshold: must be a number >= 0");
	r = check(HEAD "spec:\n  model: {name: m, uri: s3://m}\n  scaling:\n    maxReplicas: 10\n"
		       "    metrics: [{type: QueueDepth, target: 4, activationThreshold: 5}]\n",
		  NULL);
	assert_int_equal(admission_report_n_errors(r), 0);
	assert_true(has(r, false,
			"spec.scaling.metrics[0].activationThreshold: 5 is not below the target 4: "
			"at minReplicas the metric waits above its target before scaling up"));
	admission_report_free(r);
	expect_only(SC "    fallback: {replicas: 6}\n",
		    "spec.scaling.fallback.failureThreshold: required, a whole number from 0 to 1000");
	expect_only(SC "    fallback: {failureThreshold: 3, replicas: 6, behavior: Static}\n",
		    "spec.scaling.fallback.behavior: must be static, currentReplicas, currentReplicasIfHigher "
		    "or currentReplicasIfLower");
	r = check(SC "    fallback: {failureThreshold: 3, replicas: 60}\n", NULL);
	assert_true(has(r, false,
			"spec.scaling.fallback.replicas: 60 is outside minReplicas..maxReplicas "
			"(1..10); the fallback is bounded by them"));
	admission_report_free(r);
	expect_only(SC "    predictive: {windowSeconds: 30}\n",
		    "spec.scaling.predictive.windowSeconds: 30 is out of range: from 60 to 3600");
	expect_only(SC "    behavior: {panic: {windowSeconds: 90}}\n",
		    "spec.scaling.behavior.panic.windowSeconds: 90 is longer than stableWindowSeconds (60)");
	expect_only(SC "    behavior: {panic: {thresholdPercent: 100}}\n",
		    "spec.scaling.behavior.panic.thresholdPercent: 100 is out of range: from 110 to 1000");
	expect_only(SC
		    "    schedules: [{cron: '0 25 * * *', timeZone: UTC, durationSeconds: 600, minReplicas: 2}]\n",
		    "spec.scaling.schedules[0].cron: \"0 25 * * *\": the hour field \"25\" is not valid "
		    "(0-23, *, a-b, */n, lists)");
	expect_only(SC "    schedules: [{cron: '0 9 * * *', timeZone: Europe/Berlin, durationSeconds: 600, "
		       "minReplicas: 2}]\n",
		    "spec.scaling.schedules[0].timeZone: \"Europe/Berlin\" is not a time zone kinfer knows: give "
		    "UTC or a fixed offset such as UTC+02:00 or UTC-05:30 (no tz database: names with daylight "
		    "saving time are not supported)");
	expect_only(SC "    schedules: [{cron: '0 9 * * *', durationSeconds: 600, minReplicas: 2}]\n",
		    "spec.scaling.schedules[0].timeZone: required (UTC or a fixed offset such as UTC+02:00)");
	expect_only(SC "    schedules: [{cron: '0 9 * * *', timeZone: UTC, durationSeconds: 600}]\n",
		    "spec.scaling.schedules[0]: give minReplicas or maxReplicas (or both)");
	expect_only(SC
		    "    schedules: [{cron: '0 9 * * *', timeZone: UTC, durationSeconds: 600, minReplicas: 12}]\n",
		    "spec.scaling.schedules[0].minReplicas: 12 is above the cap in its window (10); raise "
		    "maxReplicas there too");
	expect_only(
		SC
		"    schedules: [{cron: '0 9 * * *', timeZone: UTC, durationSeconds: 30, minReplicas: 2}]\n",
		"spec.scaling.schedules[0].durationSeconds: 30 is out of range: from 60 to 604800");
	expect_only("apiVersion: kinfer.io/v1alpha1\nkind: InferenceService\nmetadata: {name: t, annotations: {kinfer.io/paused-replicas: 'two'}}\n"
		    "spec:\n  model: {name: m, uri: s3://m}\n",
		    "metadata.annotations: annotation kinfer.io/paused-replicas: want a whole number of "
		    "replicas from 0 to 1000");
	expect_only(
		"apiVersion: kinfer.io/v1alpha1\nkind: InferenceService\nmetadata: {name: t, annotations: {kinfer.io/paused-scale-in: 'yes'}}\n"
		"spec:\n  model: {name: m, uri: s3://m}\n",
		"metadata.annotations: annotation kinfer.io/paused-scale-in: want \"true\" or \"false\"");
	/* kubectl annotate: an UPDATE with the same spec is still checked,
	 * and an old bad value left alone does not block other changes. */
#define ANN(v) \
	"apiVersion: kinfer.io/v1alpha1\nkind: InferenceService\nmetadata: {name: t, " \
	"annotations: {kinfer.io/paused-replicas: '" v \
	"'}}\nspec:\n  model: {name: m, uri: s3://m}\n"
	r = check(ANN("lots"), ANN("2"));
	assert_true(has(r, true,
			"metadata.annotations: annotation kinfer.io/paused-replicas: want a "
			"whole number of replicas from 0 to 1000"));
	admission_report_free(r);
	r = check(ANN("lots"), ANN("lots"));
	assert_int_equal(admission_report_n_errors(r), 0);
	admission_report_free(r);
	r = check(ANN("4"), ANN("lots"));
	assert_int_equal(admission_report_n_errors(r), 0);
	admission_report_free(r);
#undef ANN
	r = check("apiVersion: kinfer.io/v1alpha1\nkind: InferenceService\nmetadata: {name: t, annotations: {kinfer.io/paused-replicas: '3', "
		  "kinfer.io/paused-scale-out: 'true'}}\nspec:\n  model: {name: m, uri: s3://m}\n",
		  NULL);
	assert_int_equal(admission_report_n_errors(r), 0);
	admission_report_free(r);
}

static void warmup_and_drain(void **state)
{
	(void)state;
	expect_only(HEAD "spec:\n  model: {name: m, uri: s3://m}\n  warmup: {timeoutSeconds: 3600}\n",
		    "spec.warmup.timeoutSeconds: 3600s is above the 1800s the startup probe gives the model "
		    "to load; the kubelet restarts the container first");
	expect_only(HEAD
		    "spec:\n  model: {name: m, uri: s3://m, framework: custom}\n  image: r/i:1\n  port: 9000\n"
		    "  warmup: {requests: 2}\n",
		    "spec.warmup.path: required for framework custom (it has no default warm-up)");
	struct admission_report *r = check(
		HEAD
		"spec:\n  model: {name: m, uri: s3://m}\n"
		"  warmup: {requestTimeoutSeconds: 90, timeoutSeconds: 600}\n  drain: {timeoutSeconds: 30}\n",
		NULL);
	assert_int_equal(admission_report_n_errors(r), 0);
	assert_true(
		has(r, false,
		    "spec.drain.timeoutSeconds: 30s is shorter than one warm-up request may take "
		    "(spec.warmup.requestTimeoutSeconds 90s); a drain may cut requests that long"));
	admission_report_free(r);
}

static void image_and_port(void **state)
{
	(void)state;
	struct admission_report *r =
		check(HEAD "spec:\n  model: {name: m, uri: s3://m, framework: custom}\n", NULL);
	assert_true(has(r, true, "spec.image: required when spec.model.framework is custom"));
	assert_true(has(r, true, "spec.port: required when spec.model.framework is custom"));
	assert_int_equal(admission_report_n_errors(r), 2);
	admission_report_free(r);
	expect_only(HEAD "spec:\n  model: {name: m, uri: s3://m}\n  image: \"Vllm/Foo Bar\"\n",
		    "spec.image: \"Vllm/Foo Bar\" is not a valid image reference (registry/path:tag or @sha256:digest)");
	expect_only(HEAD "spec:\n  model: {name: m, uri: s3://m, framework: triton}\n  port: 8002\n",
		    "spec.port: 8002 is the port triton serves its metrics on; choose another");
	r = check(HEAD
		  "spec:\n  model: {name: m, uri: s3://m}\n  image: registry.local:5000/Team/vllm:latest\n",
		  NULL);
	assert_int_equal(admission_report_n_errors(r), 1); /* upper case in the path */
	admission_report_free(r);
	r = check(HEAD
		  "spec:\n  model: {name: m, uri: s3://m}\n  image: Registry.Local:5000/team/vllm:latest\n",
		  NULL);
	assert_int_equal(admission_report_n_errors(r), 0);
	assert_true(has(r, false,
			"spec.image: Registry.Local:5000/team/vllm:latest has no version tag (or :latest); "
			"replicas may run different images, pin a tag or digest"));
	admission_report_free(r);
	r = check(HEAD "spec:\n  model: {name: m, uri: s3://m}\n  image: vllm/vllm-openai@sha256:"
		       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
		  NULL);
	assert_int_equal(admission_report_n_errors(r), 0);
	assert_int_equal(admission_report_n_warnings(r), 0);
	admission_report_free(r);
}

static void names_and_labels(void **state)
{
	(void)state;
	struct admission_report *r =
		check("apiVersion: kinfer.io/v1alpha1\nkind: InferenceService\n"
		      "metadata: {name: Bad_Name, labels: {team: \"a b\"}}\n"
		      "spec:\n  model: {name: meta-llama/Llama-2-7b-hf, uri: s3://m}\n"
		      "  resources: {gpu: {count: 1, product: \"NVIDIA A100\"}}\n"
		      "  scheduling:\n    nodeSelector: {\"-bad\": x, zone: \"a/b\"}\n"
		      "    tolerations: [{key: \"bad key\", operator: Exists}]\n",
		      NULL);
	assert_true(has(r, true,
			"metadata.name: \"Bad_Name\" must be a DNS-1035 label (at most 63 lowercase letters, "
			"digits and '-', starting with a letter), as it also names the Service"));
	assert_true(has(r, true,
			"metadata.labels.team: \"a b\" is not a valid label value (at most 63 of "
			"A-Z a-z 0-9 - _ ., starting and ending alphanumeric)"));
	assert_true(has(r, true,
			"spec.resources.gpu.product: \"NVIDIA A100\" is not a valid label value "
			"(it selects nodes by nvidia.com/gpu.product)"));
	assert_true(has(r, true, "spec.scheduling.nodeSelector: \"-bad\" is not a valid label key"));
	assert_true(has(r, true,
			"spec.scheduling.nodeSelector.zone: \"a/b\" is not a valid label value"));
	assert_true(has(r, true,
			"spec.scheduling.tolerations[0].key: \"bad key\" is not a valid label key"));
	assert_int_equal(admission_report_n_errors(r), 6);
	assert_true(has(
		r, false,
		"spec.model.name: \"meta-llama/Llama-2-7b-hf\" is not a valid label value, so "
		"pods are not labelled kinfer.io/model and placement cannot prefer nodes that cache it"));
	/* Every violation is in the one message, in order. */
	char *msg;
	assert_int_equal(admission_report_message(r, &msg), 0);
	assert_non_null(strstr(msg, "metadata.name: \"Bad_Name\""));
	assert_non_null(strstr(msg, "; spec.scheduling.tolerations[0].key"));
	free(msg);
	admission_report_free(r);
}

static void immutable_on_update(void **state)
{
	(void)state;
	const char *old = HEAD "spec:\n  model: {name: llama-7b, uri: s3://m, framework: vllm}\n"
			       "  resources: {gpu: {count: 1}}\n";
	struct admission_report *r = check(HEAD
					   "spec:\n  model: {name: llama-8b, uri: s3://m, framework: tgi}\n"
					   "  resources: {gpu: {count: 1, sharing: mps}}\n",
					   old);
	assert_true(has(
		r, true,
		"spec.model.framework: is immutable (vllm -> tgi); create a new InferenceService to change it"));
	assert_true(has(
		r, true,
		"spec.model.name: is immutable (llama-7b -> llama-8b); create a new InferenceService to change it"));
	assert_true(has(
		r, true,
		"spec.resources.gpu.sharing: is immutable (exclusive -> mps); create a new InferenceService to change it"));
	assert_int_equal(admission_report_n_errors(r), 3);
	admission_report_free(r);
	/* Other fields change freely. */
	r = check(HEAD "spec:\n  model: {name: llama-7b, uri: s3://m2, framework: vllm}\n"
		       "  resources: {gpu: {count: 2, sharing: exclusive}}\n",
		  old);
	assert_int_equal(admission_report_n_errors(r), 0);
	admission_report_free(r);
	/* An object admitted before a rule existed: an UPDATE that leaves
	 * spec alone (labels, finalizers) is not refused. */
	const char *legacy = HEAD
		"spec:\n  model: {name: m, uri: s3://m}\n"
		"  resources: {gpu: {count: 1, memory: 90Gi, product: NVIDIA-H100-80GB-HBM3}}\n";
	r = check(legacy, legacy);
	assert_int_equal(admission_report_n_errors(r), 0);
	admission_report_free(r);
}

static void every_violation_and_hostile_types(void **state)
{
	(void)state;
	struct admission_report *r = check("apiVersion: v1\nkind: Pod\nmetadata: {}\nspec: 5\n",
					   NULL);
	assert_true(has(r, true, "apiVersion: \"v1\" is not kinfer.io/v1alpha1"));
	assert_true(has(r, true, "kind: \"Pod\" is not InferenceService"));
	assert_true(has(r, true, "metadata.name: required"));
	assert_true(has(r, true, "spec: required"));
	admission_report_free(r);
	r = check(HEAD
		  "spec:\n  model: [1]\n  resources: {gpu: 5}\n  scaling: {maxReplicas: x, metrics: {a: 1}}\n"
		  "  warmup: 3\n  port: \"80\"\n",
		  NULL);
	assert_true(has(r, true, "spec.model.name: required"));
	assert_true(has(r, true, "spec.resources.gpu: must be an object"));
	assert_true(has(r, true, "spec.scaling.metrics: must be a list"));
	assert_true(has(r, true, "spec.warmup: must be an object"));
	assert_true(has(r, true, "spec.port: must be a whole number from 1 to 65535"));
	admission_report_free(r);
	/* A hundred bad keys: the list is bounded and says it was cut. */
	char big[8192];
	size_t o = (size_t)snprintf(big, sizeof(big),
				    HEAD "spec:\n  model: {name: m, uri: s3://m}\n"
					 "  scheduling:\n    nodeSelector:\n");
	for (int i = 0; i < 100; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, "      \"-k%d\": v\n", i);
	r = check(big, NULL);
	assert_int_equal(admission_report_n_errors(r), ADMISSION_MAX_ERRORS);
	assert_string_equal(admission_report_error(r, ADMISSION_MAX_ERRORS - 1),
			    "and more violations (only the first 63 are listed)");
	admission_report_free(r);
}

static void recorded_samples_pass(void **state)
{
	/* isvc/vllm.json (the CRD's good sample, recorded) asks vLLM for
	 * GPUUtilization from its pods, which vLLM does not export: refused
	 * below; manifests/samples/vllm.yaml scales on KVCacheUtilization. */
	const char *files[] = { "isvc/minimal.json", "isvc/full.json", "isvc/tgi.json",
				"isvc/triton.json", "isvc/custom.json" };
	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *s = test_read_data(files[i], NULL);
		assert_non_null(s);
		json_object *o = json_tokener_parse(s);
		free(s);
		struct admission_report *r;
		assert_int_equal(admission_report_new(&r), 0);
		assert_int_equal(admission_validate(o, NULL, r), 0);
		if (admission_report_n_errors(r))
			fprintf(stderr, "%s: %s\n", files[i], admission_report_error(r, 0));
		assert_int_equal(admission_report_n_errors(r), 0);
		admission_report_free(r);
		json_object_put(o);
	}
	char *s = test_read_data("isvc/vllm.json", NULL);
	json_object *o = json_tokener_parse(s);
	free(s);
	struct admission_report *r;
	assert_int_equal(admission_report_new(&r), 0);
	assert_int_equal(admission_validate(o, NULL, r), 0);
	assert_int_equal(admission_report_n_errors(r), 1);
	assert_string_equal(admission_report_error(r, 0),
			    "spec.scaling.metrics[2].type: vllm exports no GPUUtilization; use "
			    "spec.scaling.metricsSource.type Prometheus with the NVIDIA DCGM exporter");
	admission_report_free(r);
	json_object_put(o);
}

/* Apply an RFC 6902 patch of "add" ops (what admission_default writes). */
static void apply_patch(json_object *doc, json_object *patch)
{
	for (size_t i = 0; i < json_object_array_length(patch); i++) {
		json_object *op = json_object_array_get_idx(patch, i);
		assert_string_equal(cache_json_str(op, "op"), "add");
		char path[256];
		snprintf(path, sizeof(path), "%s", cache_json_str(op, "path"));
		char *last = strrchr(path, '/');
		assert_non_null(last);
		*last++ = '\0';
		json_object *parent = doc;
		char *save = NULL;
		for (char *k = strtok_r(path, "/", &save); k; k = strtok_r(NULL, "/", &save))
			assert_true(json_object_object_get_ex(parent, k, &parent));
		assert_false(json_object_object_get_ex(parent, last, NULL)); /* add, not replace */
		json_object *v = NULL;
		json_object_deep_copy(cache_json_get(op, "value"), &v, NULL);
		json_object_object_add(parent, last, v);
	}
}

static void defaulting(void **state)
{
	(void)state;
	json_object *o = yaml(
		HEAD "spec:\n  model: {name: opt-125m, uri: hf://facebook/opt-125m}\n"
		     "  scaling: {maxReplicas: 4, metrics: [{type: QueueDepth, target: 5}]}\n");
	json_object *orig = NULL, *patch = NULL, *again = NULL;
	json_object_deep_copy(o, &orig, NULL);
	assert_int_equal(admission_default(o, &patch), 0);
	assert_true(json_object_array_length(patch) > 0);
	/* The documented defaults. */
	assert_string_equal(cache_json_str(o, "spec.model.framework"), "vllm");
	assert_string_equal(cache_json_str(o, "spec.image"), "vllm/vllm-openai:v0.6.3");
	assert_int_equal(cache_json_int(o, "spec.port", 0), 8000);
	assert_string_equal(cache_json_str(o, "spec.healthPath"), "/health");
	assert_int_equal(cache_json_int(o, "spec.metricsEndpoint.port", 0), 8000);
	assert_string_equal(cache_json_str(o, "spec.metricsEndpoint.path"), "/metrics");
	assert_string_equal(cache_json_str(o, "spec.warmup.path"), "/v1/completions");
	assert_string_equal(cache_json_str(o, "spec.warmup.body.model"), "opt-125m");
	assert_int_equal(cache_json_int(o, "spec.warmup.timeoutSeconds", 0), 600);
	assert_int_equal(cache_json_int(o, "spec.drain.timeoutSeconds", 0), 120);
	assert_int_equal(cache_json_int(o, "spec.scaling.behavior.scaleDown.stabilizationWindowSeconds",
					0),
			 300);
	assert_int_equal(cache_json_int(o, "spec.scaling.behavior.scaleUp.stabilizationWindowSeconds",
					-1),
			 0);
	assert_int_equal(json_object_array_length(
				 cache_json_get(o, "spec.scaling.behavior.scaleUp.policies")),
			 2);
	assert_string_equal(cache_json_str(o, "spec.scaling.metricsSource.type"), "Pods");
	assert_null(cache_json_get(o, "spec.replicas")); /* scaling decides */
	/* The patch does to the original exactly what defaulting did. */
	apply_patch(orig, patch);
	assert_true(json_object_equal(orig, o));
	/* Idempotent: a second pass adds nothing. */
	assert_int_equal(admission_default(o, &again), 0);
	assert_int_equal(json_object_array_length(again), 0);
	/* A defaulted object is valid. */
	struct admission_report *r;
	assert_int_equal(admission_report_new(&r), 0);
	assert_int_equal(admission_validate(o, NULL, r), 0);
	assert_int_equal(admission_report_n_errors(r), 0);
	admission_report_free(r);
	json_object_put(again);
	json_object_put(patch);
	json_object_put(orig);
	json_object_put(o);
}

static void defaulting_presets_and_samples(void **state)
{
	const char *files[] = { "isvc/minimal.json", "isvc/full.json",   "isvc/vllm.json",
				"isvc/tgi.json",     "isvc/triton.json", "isvc/custom.json" };
	(void)state;
	/* Triton: its metrics port, a GET warm-up (no body). */
	json_object *o = yaml(HEAD
			      "spec:\n  model: {name: resnet, uri: s3://r, framework: triton}\n"),
		    *p;
	assert_int_equal(admission_default(o, &p), 0);
	assert_int_equal(cache_json_int(o, "spec.metricsEndpoint.port", 0), 8002);
	assert_string_equal(cache_json_str(o, "spec.warmup.path"), "/v2/models/resnet/ready");
	assert_null(cache_json_get(o, "spec.warmup.body"));
	assert_int_equal(cache_json_int(o, "spec.replicas", 0), 1);
	json_object_put(p);
	json_object_put(o);
	/* Custom: no image, no port, no warm-up invented. */
	o = yaml(HEAD "spec:\n  model: {name: x, uri: s3://x, framework: custom}\n");
	assert_int_equal(admission_default(o, &p), 0);
	assert_null(cache_json_get(o, "spec.image"));
	assert_null(cache_json_get(o, "spec.port"));
	assert_null(cache_json_get(o, "spec.warmup"));
	json_object_put(p);
	json_object_put(o);
	/* Broken objects are left alone. */
	o = yaml(HEAD "spec:\n  model: {name: x, uri: s3://x, framework: pytorch}\n");
	assert_int_equal(admission_default(o, &p), 0);
	assert_int_equal(json_object_array_length(p), 0);
	json_object_put(p);
	json_object_put(o);
	/* Every recorded sample: defaulting twice adds nothing the second time. */
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *s = test_read_data(files[i], NULL);
		o = json_tokener_parse(s);
		free(s);
		assert_int_equal(admission_default(o, &p), 0);
		json_object_put(p);
		assert_int_equal(admission_default(o, &p), 0);
		assert_int_equal(json_object_array_length(p), 0);
		json_object_put(p);
		json_object_put(o);
	}
}

/* Issue 12 item 16: the operator's Prometheus allow-list and Custom opt-in. */
static void prometheus_policy_refused(void **state)
{
	const char *prom = HEAD
		"spec:\n  model: {name: m, uri: s3://m}\n"
		"  scaling:\n    maxReplicas: 3\n"
		"    metricsSource: {type: Prometheus, prometheus: {url: \"http://169.254.169.254/latest\"}}\n"
		"    metrics: [{type: QueueDepth, target: 4}]\n";
	const char *custom = HEAD
		"spec:\n  model: {name: m, uri: s3://m}\n"
		"  scaling:\n    maxReplicas: 3\n"
		"    metricsSource: {type: Prometheus, prometheus: {url: \"http://prometheus.monitoring:9090/\"}}\n"
		"    metrics: [{type: Custom, target: 4, query: \"sum(up)\"}]\n";
	struct admission_report *r;
	(void)state;
	assert_int_equal(metricsource_policy_set("http://prometheus.monitoring:9090", false), 0);
	expect_only(prom,
		    "spec.scaling.metricsSource.prometheus.url: http://169.254.169.254/latest is "
		    "not one of the Prometheus URLs the operator allows (--prometheus-allowed-urls): "
		    "ask the cluster admin");
	expect_only(custom,
		    "spec.scaling.metrics[0].type: Custom PromQL is off in this operator (its "
		    "--allow-custom-promql is false): a query could read any namespace's series");
	assert_int_equal(metricsource_policy_set("http://prometheus.monitoring:9090", true), 0);
	r = check(custom, NULL);
	assert_int_equal(admission_report_n_errors(r), 0);
	admission_report_free(r);
	metricsource_policy_clear();
	r = check(prom, NULL); /* not configured (validate): no opinion */
	assert_int_equal(admission_report_n_errors(r), 0);
	admission_report_free(r);
}

/* The defaults the webhook writes (isvc.h) are the CRD's: one value, two
 * places that must agree (the CRD is YAML the API server reads). */
static void defaults_match_the_crd(void **state)
{
	char path[1024];
	json_object *crd, *props;
	FILE *f;
	char *buf;
	long n;
	(void)state;
	snprintf(path, sizeof(path), "%s/../../crds/inferenceservice.yaml", KINFER_TEST_DATA);
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	crd = yaml(buf);
	free(buf);
	json_object *versions = cache_json_get(crd, "spec.versions");
	assert_non_null(versions);
	props = cache_json_get(json_object_array_get_idx(versions, 0),
			       "schema.openAPIV3Schema.properties.spec.properties");
	assert_non_null(props);
	assert_int_equal(cache_json_int(props, "drain.properties.timeoutSeconds.default", -1),
			 ISVC_DRAIN_TIMEOUT_S_DEFAULT);
	assert_int_equal(cache_json_int(props, "drain.properties.timeoutSeconds.maximum", -1),
			 ISVC_DRAIN_TIMEOUT_S_MAX);
	assert_int_equal(cache_json_int(props, "warmup.properties.timeoutSeconds.default", -1),
			 ISVC_WARMUP_TIMEOUT_S_DEFAULT);
	json_object *z = cache_json_get(props, "scaling.properties.scaleToZero.properties");
	assert_non_null(z);
	assert_int_equal(cache_json_int(z, "idleSeconds.default", -1), SCALETOZERO_IDLE_S_DEFAULT);
	assert_int_equal(cache_json_int(z, "idleSeconds.maximum", -1), SCALETOZERO_IDLE_S_MAX);
	assert_int_equal(cache_json_int(z, "maxPendingRequests.default", -1),
			 SCALETOZERO_MAX_PENDING_DEFAULT);
	assert_int_equal(cache_json_int(z, "maxPendingRequests.maximum", -1),
			 SCALETOZERO_MAX_PENDING_MAX);
	assert_int_equal(cache_json_int(z, "activationTimeoutSeconds.maximum", -1),
			 SCALETOZERO_ACTIVATION_TIMEOUT_S_MAX);
	assert_null(cache_json_get(z, "activationTimeoutSeconds.default"));
	json_object_put(crd);
}

/* spec.scaling.scaleToZero (issue 16): minReplicas 0 is valid with it;
 * its fields' bounds name the field; with minReplicas above 0 it warns;
 * the mutating webhook writes its fixed defaults. */
static void scale_to_zero_rules(void **state)
{
	(void)state;
	const char *base = HEAD
		"spec:\n  model: {name: m, uri: s3://m}\n"
		"  scaling:\n    maxReplicas: 2\n    metrics: [{type: QueueDepth, target: 5}]\n";
	char buf[1024];
	struct admission_report *r;

	snprintf(buf, sizeof(buf), "%s    minReplicas: 0\n", base);
	struct admission_report *r0 = check(buf, NULL);
	assert_true(has(
		r0, true,
		"spec.scaling.minReplicas: 0 needs spec.scaling.scaleToZero (kinfer's "
		"activator wakes the service at the first request) or a metric that has a value with "
		"no pods running (type Custom, a Prometheus query); QueueDepth is read from the pods, "
		"so at 0 replicas there is no value and the service could never scale up again (the "
		"HPA refuses minReplicas 0 without an Object or External metric for the same reason)"));
	admission_report_free(r0);

	snprintf(buf, sizeof(buf), "%s    minReplicas: 0\n    scaleToZero: {idleSeconds: 60}\n",
		 base);
	r = check(buf, NULL);
	assert_int_equal(admission_report_n_errors(r), 0);
	assert_int_equal(admission_report_n_warnings(r), 0);
	admission_report_free(r);

	snprintf(buf, sizeof(buf), "%s    minReplicas: 0\n    scaleToZero: {idleSeconds: 0}\n", base);
	expect_only(buf, "spec.scaling.scaleToZero.idleSeconds: 0 is out of range: from 1 to 86400");
	snprintf(buf, sizeof(buf),
		 "%s    minReplicas: 0\n    scaleToZero: {maxPendingRequests: 10001}\n", base);
	expect_only(buf,
		    "spec.scaling.scaleToZero.maxPendingRequests: 10001 is out of range: from 1 to 10000");
	snprintf(buf, sizeof(buf),
		 "%s    minReplicas: 0\n    scaleToZero: {activationTimeoutSeconds: x}\n", base);
	expect_only(buf,
		    "spec.scaling.scaleToZero.activationTimeoutSeconds: must be a whole number from 1 to 3600");
	snprintf(buf, sizeof(buf), "%s    minReplicas: 0\n    scaleToZero: 5\n", base);
	expect_only(buf, "spec.scaling.scaleToZero: must be an object");

	/* At zero the name also names NAME-private and NAME-kinfer: 55 is
	 * the most; 56 is refused naming metadata.name; with minReplicas 1
	 * (nothing made) any valid name goes. */
	const char *body =
		"spec:\n  model: {name: m, uri: s3://m}\n"
		"  scaling:\n    maxReplicas: 2\n    metrics: [{type: QueueDepth, target: 5}]\n";
	char name56[57];
	memset(name56, 'a', 56);
	name56[56] = '\0';
	snprintf(buf, sizeof(buf),
		 "apiVersion: kinfer.io/v1alpha1\nkind: InferenceService\nmetadata: {name: %s}\n%s"
		 "    minReplicas: 0\n    scaleToZero: {}\n",
		 name56, body);
	expect_only(buf,
		    "metadata.name: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" has 56 "
		    "characters; with spec.scaling.scaleToZero and minReplicas 0 it may have at "
		    "most 55, as kinfer also names the Service NAME-private and the EndpointSlice "
		    "NAME-kinfer after it (at most 63)");
	snprintf(buf, sizeof(buf),
		 "apiVersion: kinfer.io/v1alpha1\nkind: InferenceService\nmetadata: {name: %s}\n%s"
		 "    minReplicas: 0\n    scaleToZero: {}\n",
		 name56 + 1, body);
	r = check(buf, NULL);
	assert_int_equal(admission_report_n_errors(r), 0);
	admission_report_free(r);
	snprintf(buf, sizeof(buf),
		 "apiVersion: kinfer.io/v1alpha1\nkind: InferenceService\nmetadata: {name: %s}\n%s"
		 "    scaleToZero: {}\n",
		 name56, body);
	r = check(buf, NULL);
	assert_int_equal(admission_report_n_errors(r), 0);
	admission_report_free(r);

	snprintf(buf, sizeof(buf), "%s    scaleToZero: {}\n", base);
	r = check(buf, NULL);
	assert_int_equal(admission_report_n_errors(r), 0);
	assert_true(has(r, false,
			"spec.scaling.scaleToZero: has no effect while spec.scaling.minReplicas is 1; "
			"set minReplicas to 0 to let the service scale to zero"));
	admission_report_free(r);

	/* Defaulting writes idleSeconds and maxPendingRequests, not the timeout. */
	snprintf(buf, sizeof(buf),
		 "%s    minReplicas: 0\n    scaleToZero: {maxPendingRequests: 3}\n", base);
	json_object *o = yaml(buf), *patch = NULL;
	assert_int_equal(admission_default(o, &patch), 0);
	assert_int_equal(cache_json_int(o, "spec.scaling.scaleToZero.idleSeconds", 0), 300);
	assert_int_equal(cache_json_int(o, "spec.scaling.scaleToZero.maxPendingRequests", 0), 3);
	assert_null(cache_json_get(o, "spec.scaling.scaleToZero.activationTimeoutSeconds"));
	assert_int_equal(cache_json_int(o, "spec.scaling.minReplicas", -1), 0);
	json_object_put(patch);
	json_object_put(o);
}

int tests_admission(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(gpu_memory_against_product),
		cmocka_unit_test(mig_profiles),
		cmocka_unit_test(sharing_and_count),
		cmocka_unit_test(metrics_per_framework),
		cmocka_unit_test(scaling_behavior),
		cmocka_unit_test(scaling_controls),
		cmocka_unit_test(warmup_and_drain),
		cmocka_unit_test(image_and_port),
		cmocka_unit_test(names_and_labels),
		cmocka_unit_test(immutable_on_update),
		cmocka_unit_test(every_violation_and_hostile_types),
		cmocka_unit_test(recorded_samples_pass),
		cmocka_unit_test(defaulting),
		cmocka_unit_test(defaulting_presets_and_samples),
		cmocka_unit_test(prometheus_policy_refused),
		cmocka_unit_test(defaults_match_the_crd),
		cmocka_unit_test(scale_to_zero_rules),
	};
	return cmocka_run_group_tests_name("admission", tests, NULL, NULL);
}
