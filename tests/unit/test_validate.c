/*
 * validate: the offline reader's lines and exit codes: each object with its
 * first line (not its document's "---"), other kinds skipped, every
 * violation and warning on its own line, 2 for what is not YAML.
 */
#include "unit.h"

#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int run_strict(const char *yaml, bool strict, char **ret_out)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	int code = validate_buffer_strict("in.yaml", yaml, strlen(yaml), f, strict);
	fclose(f);
	*ret_out = buf;
	return code;
}

static int run(const char *yaml, char **ret_out)
{
	return run_strict(yaml, false, ret_out);
}

static void lines_and_codes(void **state)
{
	char *out;
	(void)state;
	assert_int_equal(run("# a comment\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
			     "---\n\n# the service\napiVersion: kinfer.io/v1alpha1\nkind: InferenceService\n"
			     "metadata: {name: ok}\nspec:\n  model: {name: m, uri: s3://m}\n",
			     &out),
			 0);
	assert_string_equal(out, "in.yaml:2: c: skipped (kind ConfigMap)\n"
				 "in.yaml:8: ok: ok (23 defaults)\n");
	free(out);
	assert_int_equal(
		run("apiVersion: kinfer.io/v1alpha1\nkind: InferenceService\nmetadata: {name: b}\n"
		    "spec:\n  model: {name: m, uri: s3://m, framework: tgi}\n  image: repo/x:latest\n"
		    "  resources: {gpu: {count: 1, memory: 90Gi, product: NVIDIA-L4}}\n"
		    "  scaling: {maxReplicas: 2, metrics: [{type: KVCacheUtilization, target: 50}]}\n",
		    &out),
		1);
	assert_string_equal(
		out,
		"in.yaml:1: b: error: spec.resources.gpu.memory: 90Gi exceeds the 24Gi of NVIDIA-L4\n"
		"in.yaml:1: b: error: spec.scaling.metrics[0].type: KVCacheUtilization is not exported by tgi "
		"(it has QueueDepth, Concurrency, RequestsPerSecond, LatencyP99)\n"
		"in.yaml:1: b: warning: spec.image: repo/x:latest has no version tag (or :latest); replicas "
		"may run different images, pin a tag or digest\n");
	free(out);
	assert_int_equal(run("- 1\n- 2\n", &out), 1);
	assert_string_equal(out, "in.yaml:1: error: not a YAML mapping (want an InferenceService)\n");
	free(out);
	assert_int_equal(run("a: [\n", &out), 2);
	assert_non_null(strstr(out, "in.yaml: line 2"));
	free(out);
	assert_int_equal(run("", &out), 0);
	assert_string_equal(out, "");
	free(out);
}

/*
 * Issue 12 item 19: fields the CRD does not define (checked against the
 * crds/inferenceservice.yaml embedded at build time) are warnings naming
 * their path, errors with strict; the schema's types, enums and bounds are
 * errors. On the old code all of these passed without a word.
 */
static void schema_unknown_fields(void **state)
{
	const char *y = "apiVersion: kinfer.io/v1alpha1\nkind: InferenceService\nmetadata: {name: u}\n"
			"spec:\n  model: {name: m, uri: s3://m}\n  scalng: {maxReplicas: 3}\n"
			"  scaling:\n    maxReplicas: 4\n    cooldownSeconds: 60\n"
			"    metrics: [{type: QueueDepth, target: 5, weight: 2}]\n"
			"  warmup: {body: {anything: {goes: [1]}}}\n"
			"  scheduling: {nodeSelector: {zone: a}}\n";
	char *out;
	(void)state;
	assert_int_equal(run(y, &out), 0);
	const char *want[] = { "spec.scalng: unknown field",
			       "spec.scaling.cooldownSeconds: unknown field",
			       "spec.scaling.metrics[0].weight: unknown field" };
	for (size_t i = 0; i < 3; i++) {
		if (!strstr(out, want[i]))
			fprintf(stderr, "%s", out);
		assert_non_null(strstr(out, want[i]));
	}
	assert_non_null(
		strstr(out, "in.yaml:1: u: warning: spec.scalng: unknown field: the CRD does "
			    "not define it, so the API server drops it and the setting does nothing"));
	assert_null(strstr(out, "warmup.body.anything")); /* preserve-unknown-fields */
	assert_null(strstr(out, "nodeSelector.zone"));    /* additionalProperties */
	assert_non_null(strstr(out, "in.yaml:1: u: ok"));
	free(out);
	assert_int_equal(run_strict(y, true, &out), 1);
	assert_non_null(strstr(out, "in.yaml:1: u: error: spec.scalng: unknown field"));
	assert_non_null(
		strstr(out, "in.yaml:1: u: error: spec.scaling.cooldownSeconds: unknown field"));
	free(out);
}

static void schema_types_enums_bounds(void **state)
{
	char *out;
	(void)state;
	assert_int_equal(
		run("apiVersion: kinfer.io/v1alpha1\nkind: InferenceService\nmetadata: {name: t}\n"
		    "spec:\n  model: {name: m, uri: s3://m, framework: vlm}\n  replicas: \"3\"\n"
		    "  scaling: {maxReplicas: 2000, metrics: [{type: QueueDepth, target: 0}]}\n"
		    "  warmup: {path: v1/completions}\n",
		    &out),
		1);
	const char *want[] = {
		"spec.model.framework: Unsupported value: \"vlm\": supported values: \"vllm\"",
		"spec.replicas: Invalid value: \"string\": must be of type integer",
		"spec.scaling.maxReplicas: Invalid value: 2000: must be less than or equal to 1000",
		"spec.scaling.metrics[0].target: Invalid value: 0: must be greater than 0",
		"spec.warmup.path: Invalid value: \"v1/completions\": should match '^/'",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!strstr(out, want[i]))
			fprintf(stderr, "want %s in:\n%s", want[i], out);
		assert_non_null(strstr(out, want[i]));
	}
	free(out);
}

/* The catalogue of good manifests and the samples use only CRD fields. */
static void schema_good_catalogue_clean(void **state)
{
	static const char *const files[] = { "webhook/good/tgi-scaling.yaml",
					     "webhook/good/triton-mig.yaml",
					     "webhook/good/vllm-minimal.yaml" };
	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *y = test_read_data(files[i], NULL), *out;
		assert_non_null(y);
		assert_int_equal(run_strict(y, true, &out), 0);
		assert_null(strstr(out, "unknown field"));
		free(out);
		free(y);
	}
}

int tests_validate(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lines_and_codes),
		cmocka_unit_test(schema_unknown_fields),
		cmocka_unit_test(schema_types_enums_bounds),
		cmocka_unit_test(schema_good_catalogue_clean),
	};
	return cmocka_run_group_tests_name("validate", tests, NULL, NULL);
}
