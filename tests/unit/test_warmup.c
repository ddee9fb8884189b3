/*
 * warmup: the plan read from a spec (framework defaults, the user's
 * warmup block, errors naming the field), the state machine's one
 * transition function, and the retry backoff.
 */
#include "unit.h"

#include "warmup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int plan_of(const char *spec_json, struct warmup_plan *p, char *err, size_t errlen)
{
	json_object *spec = json_tokener_parse(spec_json);
	assert_non_null(spec);
	int r = warmup_plan_from_spec(spec, p, err, errlen);
	json_object_put(spec);
	return r;
}

/* vLLM with no warmup block: the preset's completion request, with the
 * model name quoted as JSON, three requests one at a time. */
static void vllm_defaults(void **state)
{
	struct warmup_plan p;
	char err[256] = "";
	(void)state;
	assert_int_equal(plan_of("{\"model\":{\"name\":\"llama \\\"7b\\\"\",\"uri\":\"s3://m\","
				 "\"framework\":\"vllm\"}}",
				 &p, err, sizeof(err)),
			 0);
	assert_int_equal(p.port, 8000);
	assert_string_equal(p.path, "/v1/completions");
	assert_string_equal(p.health_path, "/health");
	assert_non_null(p.body);
	json_object *body = json_tokener_parse(p.body);
	assert_non_null(body);
	assert_string_equal(json_object_get_string(json_object_object_get(body, "model")),
			    "llama \"7b\"");
	json_object_put(body);
	assert_int_equal(p.requests, 3);
	assert_int_equal(p.concurrency, 1);
	assert_int_equal(p.timeout_s, 600);
	assert_int_equal(p.request_timeout_s, 60);
	assert_int_equal(p.max_attempts, 3);
	warmup_plan_free(&p);
	assert_null(p.body);
}

/* Triton: a GET of the model's ready path, the name in the path. */
static void triton_get(void **state)
{
	struct warmup_plan p;
	char err[256] = "";
	(void)state;
	assert_int_equal(plan_of("{\"model\":{\"name\":\"resnet\",\"uri\":\"s3://m\","
				 "\"framework\":\"triton\"}}",
				 &p, err, sizeof(err)),
			 0);
	assert_string_equal(p.path, "/v2/models/resnet/ready");
	assert_null(p.body);
	assert_string_equal(p.health_path, "/v2/health/ready");
	warmup_plan_free(&p);
}

/* The user's block wins, field by field; concurrency below 1 is 1. */
static void user_block(void **state)
{
	struct warmup_plan p;
	char err[256] = "";
	(void)state;
	assert_int_equal(plan_of("{\"model\":{\"name\":\"m\",\"uri\":\"u\"},\"port\":9000,"
				 "\"healthPath\":\"/ready\",\"warmup\":{\"path\":\"/gen\","
				 "\"body\":{\"prompt\":\"a/b\"},\"requests\":5,\"concurrency\":0,"
				 "\"timeoutSeconds\":30,\"requestTimeoutSeconds\":7,"
				 "\"maxAttempts\":1}}",
				 &p, err, sizeof(err)),
			 0);
	assert_int_equal(p.port, 9000);
	assert_string_equal(p.health_path, "/ready");
	assert_string_equal(p.path, "/gen");
	assert_string_equal(p.body, "{\"prompt\":\"a/b\"}");
	assert_int_equal(p.requests, 5);
	assert_int_equal(p.concurrency, 1);
	assert_int_equal(p.timeout_s, 30);
	assert_int_equal(p.request_timeout_s, 7);
	assert_int_equal(p.max_attempts, 1);
	warmup_plan_free(&p);
}

/* Custom framework: nothing to send without a block; a block with
 * requests needs a path; a port is required. */
static void custom_framework(void **state)
{
	struct warmup_plan p = { 0 };
	char err[256] = "";
	(void)state;
	assert_int_equal(plan_of("{\"model\":{\"name\":\"m\",\"uri\":\"u\",\"framework\":\"custom\"},"
				 "\"port\":7000}",
				 &p, err, sizeof(err)),
			 0);
	assert_int_equal(p.requests, 0);
	warmup_plan_free(&p);
	assert_int_equal(plan_of("{\"model\":{\"name\":\"m\",\"uri\":\"u\",\"framework\":\"custom\"},"
				 "\"port\":7000,\"warmup\":{\"requests\":2}}",
				 &p, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "spec.warmup.path: required for framework custom");
	warmup_plan_free(&p);
	assert_int_equal(plan_of("{\"model\":{\"name\":\"m\",\"uri\":\"u\",\"framework\":\"custom\"}}",
				 &p, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "spec.port: required for framework custom");
	warmup_plan_free(&p);
}

/* Every state and event: only the listed moves happen. */
static void transitions(void **state)
{
	(void)state;
	assert_int_equal(warmup_step(WARMUP_WAITING, WARMUP_EV_NOT_YET), WARMUP_WAITING);
	assert_int_equal(warmup_step(WARMUP_WAITING, WARMUP_EV_HEALTHY), WARMUP_WARMING);
	assert_int_equal(warmup_step(WARMUP_WAITING, WARMUP_EV_TIMED_OUT), WARMUP_FAILED);
	assert_int_equal(warmup_step(WARMUP_WAITING, WARMUP_EV_ANSWERED), WARMUP_WAITING);
	assert_int_equal(warmup_step(WARMUP_WARMING, WARMUP_EV_ANSWERED), WARMUP_WARM);
	assert_int_equal(warmup_step(WARMUP_WARMING, WARMUP_EV_FAILED), WARMUP_FAILED);
	assert_int_equal(warmup_step(WARMUP_WARMING, WARMUP_EV_TIMED_OUT), WARMUP_FAILED);
	assert_int_equal(warmup_step(WARMUP_WARMING, WARMUP_EV_HEALTHY), WARMUP_WARMING);
	for (int ev = WARMUP_EV_NOT_YET; ev <= WARMUP_EV_FAILED; ev++) {
		assert_int_equal(warmup_step(WARMUP_WARM, (enum warmup_event)ev), WARMUP_WARM);
		assert_int_equal(warmup_step(WARMUP_FAILED, (enum warmup_event)ev), WARMUP_FAILED);
	}
	assert_string_equal(warmup_state_name(WARMUP_WARMING), "Warming");
	assert_string_equal(warmup_state_name((enum warmup_state)42), "Unknown");
}

/* 10 s doubling to 5 min. */
static void retry_backoff(void **state)
{
	(void)state;
	assert_int_equal(warmup_retry_after_s(0), 10);
	assert_int_equal(warmup_retry_after_s(1), 10);
	assert_int_equal(warmup_retry_after_s(2), 20);
	assert_int_equal(warmup_retry_after_s(5), 160);
	assert_int_equal(warmup_retry_after_s(6), 300);
	assert_int_equal(warmup_retry_after_s(1000), 300);
}

int tests_warmup(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(vllm_defaults), cmocka_unit_test(triton_get),
		cmocka_unit_test(user_block),    cmocka_unit_test(custom_framework),
		cmocka_unit_test(transitions),   cmocka_unit_test(retry_backoff),
	};
	return cmocka_run_group_tests_name("warmup", tests, NULL, NULL);
}
