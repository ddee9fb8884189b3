/*
 * quota_room_after_one on the refusals a real kube-apiserver (v1.33) wrote
 * for pods over a namespace's ResourceQuota (recorded from `kubectl
 * apply` of pods against one), and on what it must refuse: messages of
 * other kinds, resources kinfer cannot account for, a pod still short
 * after one old pod is gone, malformed lists, overflowing quantities.
 */
#include "unit.h"

#include "quota.h"

#include <stdint.h>
#include <string.h>

/* The ReplicaSet's ReplicaFailure message is the creation's error. */
#define GPU_ONLY \
	"pods \"svc-5c7687f769-\" is forbidden: exceeded quota: team-gpus, requested: " \
	"requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=2, limited: " \
	"requests.nvidia.com/gpu=2"
#define CPU_AND_GPU \
	"pods \"p4\" is forbidden: exceeded quota: team-gpus, requested: " \
	"requests.cpu=1500m,requests.nvidia.com/gpu=1, used: " \
	"requests.cpu=1,requests.nvidia.com/gpu=2, limited: requests.cpu=2,requests.nvidia.com/gpu=2"

static void recorded_refusals(void **state)
{
	struct quota_pod one_gpu = {
		.cpu_milli = 500, .mem_bytes = 1 << 20, .gpu = 1, .gpu_resource = "nvidia.com/gpu"
	};
	char name[64] = "";
	(void)state;

	assert_true(quota_room_after_one(GPU_ONLY, &one_gpu, name, sizeof(name)));
	assert_string_equal(name, "team-gpus");
	/* The old pods hold MIG slices, not whole GPUs: nothing given back. */
	struct quota_pod mig = one_gpu;
	mig.gpu_resource = "nvidia.com/mig-1g.10gb";
	assert_false(quota_room_after_one(GPU_ONLY, &mig, NULL, 0));
	struct quota_pod none = { .cpu_milli = 500 };
	assert_false(quota_room_after_one(GPU_ONLY, &none, NULL, 0));
	/* 1 - 0.5 + 1.5 = 2 cpu: fits exactly; 1 GPU back for 1. */
	assert_true(quota_room_after_one(CPU_AND_GPU, &one_gpu, NULL, 0));
	/* An old pod of 0.4 cpu gives back too little: 2.1 > 2. */
	struct quota_pod small = one_gpu;
	small.cpu_milli = 400;
	assert_false(quota_room_after_one(CPU_AND_GPU, &small, NULL, 0));
	/* The new pod asks for 2 GPUs where the old held 1. */
	assert_false(quota_room_after_one(
		"pods \"x\" is forbidden: exceeded quota: q, requested: requests.nvidia.com/gpu=2, "
		"used: requests.nvidia.com/gpu=2, limited: requests.nvidia.com/gpu=2",
		&one_gpu, NULL, 0));
}

static void what_it_refuses(void **state)
{
	struct quota_pod p = {
		.cpu_milli = 1000, .mem_bytes = 1LL << 30, .gpu = 1, .gpu_resource = "nvidia.com/gpu"
	};
	(void)state;

	assert_false(quota_room_after_one(NULL, &p, NULL, 0));
	assert_false(quota_room_after_one(GPU_ONLY, NULL, NULL, 0));
	assert_false(quota_room_after_one("", &p, NULL, 0));
	/* Another refusal: a webhook, or a quota that wants limits set. */
	assert_false(quota_room_after_one("admission webhook \"x\" denied the request: no", &p,
					  NULL, 0));
	assert_false(quota_room_after_one(
		"pods \"x\" is forbidden: failed quota: q: must specify limits.cpu for: c", &p,
		NULL, 0));
	/* A pod count and memory kinfer accounts for; limits.* it does not keep. */
	assert_true(quota_room_after_one(
		"pods \"x\" is forbidden: exceeded quota: q, requested: pods=1,requests.memory=1Gi, "
		"used: pods=4,requests.memory=4Gi, limited: pods=4,requests.memory=4Gi",
		&p, NULL, 0));
	assert_false(quota_room_after_one(
		"pods \"x\" is forbidden: exceeded quota: q, requested: limits.cpu=1, used: "
		"limits.cpu=4, limited: limits.cpu=4",
		&p, NULL, 0));
	/* A resource requested but absent from used or limited. */
	assert_false(quota_room_after_one(
		"exceeded quota: q, requested: pods=1, used: cpu=1, limited: pods=4", &p, NULL, 0));
	/* Malformed lists and parts out of order. */
	assert_false(quota_room_after_one("exceeded quota: q, requested: , used: , limited: ", &p,
					  NULL, 0));
	assert_false(quota_room_after_one("exceeded quota: q, requested: pods, used: pods=1, "
					  "limited: pods=2",
					  &p, NULL, 0));
	assert_false(quota_room_after_one("exceeded quota: q, used: pods=1, requested: pods=1, "
					  "limited: pods=2",
					  &p, NULL, 0));
	assert_false(quota_room_after_one("exceeded quota: q, requested: pods=x, used: pods=1, "
					  "limited: pods=2",
					  &p, NULL, 0));
	/* Quantities at the edge of int64: no overflow (UBSan), no room. */
	struct quota_pod huge = p;
	huge.mem_bytes = INT64_MIN + 1;
	assert_false(quota_room_after_one(
		"exceeded quota: q, requested: requests.memory=9223372036854775807, used: "
		"requests.memory=9223372036854775807, limited: requests.memory=9223372036854775807",
		&huge, NULL, 0));
	/* A list longer than kept, and more items than kept: refused, not cut. */
	char big[2048] = "exceeded quota: q, requested: ";
	for (int i = 0; i < 20; i++)
		strcat(big, "pods=1,");
	strcat(big, "pods=1, used: pods=1, limited: pods=9");
	assert_false(quota_room_after_one(big, &p, NULL, 0));
	/* The name is cut to the buffer given. */
	char name[4];
	assert_true(quota_room_after_one("exceeded quota: team-gpus, requested: pods=1, used: "
					 "pods=2, limited: pods=2",
					 &p, name, sizeof(name)));
	assert_string_equal(name, "tea");
}

int tests_quota(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(recorded_refusals),
		cmocka_unit_test(what_it_refuses),
	};
	return cmocka_run_group_tests_name("quota", tests, NULL, NULL);
}
