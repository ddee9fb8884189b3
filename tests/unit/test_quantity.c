/*
 * quantity and a pod's effective requests (issue 12 item 10):
 * quantity_parse near INT64_MAX without signed overflow (UBSan aborts this
 * binary on one), and kinds_pod_requests as the scheduler counts them:
 * max(sum of containers, largest init container) + spec.overhead,
 * restartable init containers (sidecars), sums that saturate instead of
 * wrapping. The old code summed containers only, so a pod whose init
 * container asks for more than its containers, or with an overhead, was
 * placed on a node that cannot hold it.
 */
#include "unit.h"

#include "kinds.h"
#include "quantity.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void quantities(void **state)
{
	int64_t v;
	(void)state;
	assert_int_equal(quantity_parse("9223372036854775799m", &v), 0);
	assert_true(v == 9223372036854776LL);
	assert_int_equal(quantity_parse_milli("9223372036854775799m", &v), 0);
	assert_true(v == 9223372036854775799LL);
	assert_int_equal(quantity_parse("9223372036854775807m", &v), 0);
	assert_true(v == 9223372036854776LL);
	assert_int_equal(quantity_parse("9223372036854775807", &v), -ERANGE);
	assert_int_equal(quantity_parse("8Ei", &v), -ERANGE);
	assert_int_equal(quantity_parse("1500m", &v), 0);
	assert_true(v == 2);
	assert_int_equal(quantity_parse("-1500m", &v), 0);
	assert_true(v == -1);
	assert_int_equal(quantity_parse("16Gi", &v), 0);
	assert_true(v == 17179869184LL);
	assert_int_equal(quantity_parse("", &v), -EINVAL);
	assert_int_equal(quantity_parse("1Q", &v), -EINVAL);
}

static struct kpod_requests reqs(const char *spec_json)
{
	struct kpod_requests r;
	json_object *spec = json_tokener_parse(spec_json);
	assert_non_null(spec);
	kinds_pod_requests(spec, &r);
	json_object_put(spec);
	r.gpu_name = NULL; /* points into spec */
	return r;
}

static void pod_effective_requests(void **state)
{
	struct kpod_requests r;
	(void)state;
	/* Two containers: summed. */
	r = reqs("{\"containers\":[{\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},"
		 "\"limits\":{\"nvidia.com/gpu\":\"1\"}}},{\"resources\":{\"requests\":{\"cpu\":\"500m\"}}}]}");
	assert_true(r.cpu_milli == 1500 && r.mem_bytes == 1073741824LL && r.gpu == 1);
	/* An init container larger than the containers: it counts. */
	r = reqs("{\"initContainers\":[{\"resources\":{\"requests\":{\"cpu\":\"4\",\"memory\":\"8Gi\"},"
		 "\"limits\":{\"nvidia.com/gpu\":\"2\"}}},{\"resources\":{\"requests\":{\"cpu\":\"2\"}}}],"
		 "\"containers\":[{\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},"
		 "\"limits\":{\"nvidia.com/gpu\":\"1\"}}}]}");
	assert_true(r.cpu_milli == 4000);
	assert_true(r.mem_bytes == 8LL << 30);
	assert_true(r.gpu == 2);
	/* Overhead is added to the result. */
	r = reqs("{\"containers\":[{\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}}}],"
		 "\"overhead\":{\"cpu\":\"250m\",\"memory\":\"120Mi\"}}");
	assert_true(r.cpu_milli == 1250);
	assert_true(r.mem_bytes == (1LL << 30) + 120LL * (1 << 20));
	/* A sidecar (restartPolicy Always) runs beside the containers and the
	 * init containers after it. */
	r = reqs("{\"initContainers\":[{\"restartPolicy\":\"Always\",\"resources\":{\"requests\":{\"cpu\":\"1\"}}},"
		 "{\"resources\":{\"requests\":{\"cpu\":\"3\"}}}],"
		 "\"containers\":[{\"resources\":{\"requests\":{\"cpu\":\"2\"}}}]}");
	assert_true(r.cpu_milli == 4000); /* max(2 + 1, 3 + 1) */
	/* Sums past INT64_MAX saturate (and negative quantities count 0). */
	r = reqs("{\"containers\":[{\"resources\":{\"requests\":{\"cpu\":\"9223372036854775m\","
		 "\"memory\":\"9223372036854775807m\"}}},{\"resources\":{\"requests\":{\"cpu\":\"9223372036854775\","
		 "\"memory\":\"8Ei\"}}},{\"resources\":{\"requests\":{\"cpu\":\"-5\",\"memory\":\"9223372036854775\"}}}]}");
	assert_true(r.cpu_milli == INT64_MAX);
	assert_true(r.mem_bytes > 0);
	r = reqs("{\"containers\":[{\"resources\":{\"limits\":{\"nvidia.com/gpu\":\"9223372036854775807m\"}}},"
		 "{\"resources\":{\"limits\":{\"nvidia.com/gpu\":\"9223372036854775807m\"}}}],"
		 "\"overhead\":{\"nvidia.com/gpu\":\"9223372036854775807m\"}}");
	assert_true(r.gpu > 0);
	/* Nothing at all. */
	r = reqs("{}");
	assert_true(r.cpu_milli == 0 && r.mem_bytes == 0 && r.gpu == 0);
}

int tests_quantity(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(quantities),
		cmocka_unit_test(pod_effective_requests),
	};
	return cmocka_run_group_tests_name("quantity", tests, NULL, NULL);
}
