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

static int run(const char *yaml, char **ret_out)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	int code = validate_buffer("in.yaml", yaml, strlen(yaml), f);
	fclose(f);
	*ret_out = buf;
	return code;
}

static void lines_and_codes(void **state)
{
	char *out;
	(void)state;
	assert_int_equal(run("# a comment\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
			     "---\n\n# the service\napiVersion: kinfer.io/v1alpha1\nkind: InferenceService\n"
			     "metadata: {name: ok}\nspec:\n  model: {name: m, uri: s3://m}\n", &out), 0);
	assert_string_equal(out, "in.yaml:2: c: skipped (kind ConfigMap)\n"
			    "in.yaml:8: ok: ok (21 defaults)\n");
	free(out);
	assert_int_equal(run("apiVersion: kinfer.io/v1alpha1\nkind: InferenceService\nmetadata: {name: b}\n"
			     "spec:\n  model: {name: m, uri: s3://m, framework: tgi}\n  image: repo/x:latest\n"
			     "  resources: {gpu: {count: 1, memory: 90Gi, product: NVIDIA-L4}}\n"
			     "  scaling: {maxReplicas: 2, metrics: [{type: KVCacheUtilization, target: 50}]}\n",
			     &out), 1);
	assert_string_equal(out,
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

int tests_validate(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lines_and_codes),
	};
	return cmocka_run_group_tests_name("validate", tests, NULL, NULL);
}
