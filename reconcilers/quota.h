/*
 * A rollout refused by a ResourceQuota. A namespace's quota at its limit
 * (a team given N GPUs, using them all) refuses the extra pod of a rolling
 * update: the ReplicaSet cannot create it, the Deployment's ReplicaFailure
 * condition carries the API server's message, and the rollout waits for
 * ever, as on a full cluster. Removing one old pod first gives back its
 * share; whether that is enough is read from the message itself, which
 * names each resource it refused with what the pod asked, what is used and
 * the limit. Pure: unit-tested on the messages a real API server wrote.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What one old pod of the service holds of what a quota counts. */
struct quota_pod {
	int64_t cpu_milli, mem_bytes, gpu;
	const char *gpu_resource; /* "nvidia.com/gpu", ...; NULL: none */
};

/*
 * MESSAGE is a pod creation's refusal ("pods \"x-\" is forbidden:
 * exceeded quota: NAME, requested: R=Q[,R=Q...], used: ..., limited:
 * ..."). True when, once a pod like OLD is gone, the refused pod would be
 * admitted: every resource named is one kinfer can account for (pods,
 * count/pods, cpu and requests.cpu, memory and requests.memory, and
 * requests.GPU for OLD's GPU resource) and used - OLD + requested <=
 * limited for each. The quota's name goes to NAME (for the Event). False
 * for any other message, a resource it cannot account for (limits.cpu:
 * kinfer does not keep a pod's limits), or one still short.
 */
bool quota_room_after_one(const char *message, const struct quota_pod *old, char *name,
			  size_t name_len);
