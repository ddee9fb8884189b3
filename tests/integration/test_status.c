/*
 * The InferenceService status write against the real API server (issue
 * 12, item 12). Another writer adds its own condition after kinfer read
 * the object: kinfer's write, conditional on the resourceVersion it read,
 * is refused (-EAGAIN) instead of replacing the conditions list, and the
 * write computed from the newer copy keeps the other writer's condition.
 * The unconditional merge patch the old code sent loses it, which is why.
 */
#include "itest.h"

#include "cache.h"
#include "kinds.h"
#include "status.h"
#include "statuspatch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char ns[64];
static struct kube_client *kc;

static int setup(void **state)
{
	int st;
	(void)state;
	kc = itest_client(-1);
	char *out = itest_kubectl(
		&st, "apply --server-side --force-conflicts -f %s/crds/inferenceservice.yaml",
		getenv("KINFER_SOURCE_DIR"));
	free(out);
	out = itest_kubectl(
		&st,
		"wait --for=condition=Established crd/inferenceservices.kinfer.io --timeout=30s");
	free(out);
	itest_namespace(kc, "status", ns, sizeof(ns));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	itest_namespace_delete(kc, ns);
	kube_client_free(kc);
	return 0;
}

static json_object *get(const char *name)
{
	json_object *o = NULL;
	assert_int_equal(kube_get(kc, &kube_res_inferenceservices, ns, name, NULL, &o, NULL), 0);
	return o;
}

static bool has_condition(json_object *obj, const char *type)
{
	return status_condition(cache_json_get(obj, "status"), type, NULL, NULL) != NULL;
}

/* What kinfer computes from the copy it read. */
static json_object *kinfer_status(json_object *read)
{
	struct status_input in = { .generation = 1,
				   .desired = 1,
				   .pods = 1,
				   .old_status = cache_json_get(read, "status"),
				   .now = 1000 };
	return status_build(&in);
}

static void other_writers_condition_survives(void **state)
{
	struct kube_status st;
	char body[512];
	(void)state;
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"kinfer.io/v1alpha1\",\"kind\":\"InferenceService\","
		 "\"metadata\":{\"name\":\"s\"},\"spec\":{\"model\":{\"name\":\"m\",\"uri\":\"s3://m\"}}}");
	json_object *b = json_tokener_parse(body);
	assert_int_equal(kube_create(kc, &kube_res_inferenceservices, ns, NULL, NULL, b, NULL, NULL,
				     &st),
			 0);
	json_object_put(b);

	/* kinfer reads the object... */
	json_object *read = get("s");
	const char *rv = cache_json_str(read, "metadata.resourceVersion");
	assert_non_null(rv);
	/* ...another writer adds its condition... */
	const char *other = "{\"status\":{\"conditions\":[{\"type\":\"example.com/Audited\","
			    "\"status\":\"True\",\"reason\":\"Audited\",\"message\":\"m\","
			    "\"lastTransitionTime\":\"2026-01-01T00:00:00Z\"}]}}";
	assert_int_equal(kube_patch(kc, &kube_res_inferenceservices, ns, "s", "status",
				    KUBE_PATCH_MERGE, other, NULL, NULL, &st),
			 0);
	/* ...and kinfer writes what it computed from its older copy. */
	json_object *mine = kinfer_status(read);
	assert_int_equal(statuspatch_write(kc, ns, "s", rv, mine, &st), -EAGAIN);
	json_object *now = get("s");
	assert_true(has_condition(now, "example.com/Audited"));
	assert_false(has_condition(now, "Ready"));
	json_object_put(mine);

	/* Computed again from the newer copy: both conditions. */
	mine = kinfer_status(now);
	assert_int_equal(statuspatch_write(kc, ns, "s",
					   cache_json_str(now, "metadata.resourceVersion"), mine, &st),
			 0);
	json_object_put(mine);
	json_object *after = get("s");
	assert_true(has_condition(after, "example.com/Audited"));
	assert_true(has_condition(after, "Ready"));

	/* Why: the old, unconditional write from the stale copy loses it. */
	mine = kinfer_status(read);
	assert_int_equal(statuspatch_write(kc, ns, "s", NULL, mine, &st), 0);
	json_object *lost = get("s");
	assert_false(has_condition(lost, "example.com/Audited"));
	json_object_put(mine);
	json_object_put(lost);
	json_object_put(after);
	json_object_put(now);
	json_object_put(read);
}

int itests_status(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(other_writers_condition_survives),
	};
	return cmocka_run_group_tests_name("status", tests, setup, teardown);
}
