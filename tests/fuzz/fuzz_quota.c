/*
 * libFuzzer target: a pod creation's refusal as the API server words it
 * (the Deployment's ReplicaFailure message, read by quota_room_after_one:
 * "exceeded quota: NAME, requested: R=Q,..., used: ..., limited: ...").
 * Any bytes: no crash, no undefined behaviour (UBSan aborts on a signed
 * overflow), the quota's name always terminated within its buffer, and a
 * message that admits the pod after a small old pod goes admits it after
 * a pod holding no less of anything (it gives back at least as much).
 */
#include "quota.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[1024], name[16];
	struct quota_pod small = {
		.cpu_milli = 500, .mem_bytes = 1 << 20, .gpu = 1, .gpu_resource = "nvidia.com/gpu"
	};
	struct quota_pod big = {
		.cpu_milli = 4000, .mem_bytes = 1LL << 34, .gpu = 8, .gpu_resource = "nvidia.com/gpu"
	};

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	memset(name, 'x', sizeof(name));
	bool a = quota_room_after_one(s, &small, name, sizeof(name));
	if (a && !memchr(name, '\0', sizeof(name)))
		abort();
	/* Same message, more given back: "used" values near INT64_MIN can
	 * make the subtraction overflow for the bigger pod only, which the
	 * function answers with false; skip those. */
	if (a && !quota_room_after_one(s, &big, NULL, 0) && !strstr(s, "-"))
		abort();
	return 0;
}
