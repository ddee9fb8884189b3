/*
 * From an InferenceService spec to the Deployment and Service kinfer
 * applies (server-side apply bodies). Pure: no I/O, so unit tests check
 * every translation (framework presets, GPU resources per sharing mode,
 * node selection, the readiness gate, probes, drain timing).
 *
 * Each body carries the annotation kinfer.io/applied-hash: a hash of the
 * body itself, which lets the reconciler skip a write when nothing changed.
 */
#pragma once

#include "keys.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

struct workload_options {
	const char *shared_gpu_resource; /* time-slicing, mps; NULL = nvidia.com/gpu.shared */
	const char *scheduler_name;      /* NULL = the cluster's default */
	/* This rollout replaces pods one at a time, without an extra pod
	 * (maxSurge 0, maxUnavailable 1): no node has room for one
	 * (isvc_controller's surge_blocked). Per call, not per context. */
	bool no_surge;
};

struct workload {
	json_object *deployment;
	json_object *service;         /* NAME; without a selector when scale_to_zero */
	json_object *private_service; /* NAME-private (route.h); NULL without scale_to_zero */
	char deployment_hash[17];
	char template_hash[17]; /* the pod template's alone (a rollout's identity) */
	char service_hash[17];
	char private_hash[17];
	/* NAME's PodDisruptionBudget (workload_budget_wanted); NULL: none. */
	json_object *budget;
	char budget_hash[17];
	int32_t replicas;
	bool scale_to_zero; /* spec.scaling.scaleToZero present */
};

/*
 * Build both bodies. spec is the parsed .spec; replicas is what the
 * Deployment should run. -EINVAL with a message naming the field when the
 * spec cannot be turned into a workload.
 */
int workload_build(const char *ns, const char *name, const char *uid, json_object *spec,
		   int32_t replicas, const struct workload_options *o, struct workload *ret,
		   char *err, size_t errlen);
void workload_free(struct workload *w);

/*
 * Does the service want a PodDisruptionBudget for its pods? spec.drain.
 * disruptionBudget is not false, and the spec lets it run 2 replicas or
 * more (spec.replicas, or scaling.maxReplicas) or the Deployment still
 * runs 2 or more (replicas: what it is given now). The second is a
 * scale-down to 1 while it drains the pod that leaves: that pod is out of
 * service, so the one that stays is the only one serving, and without the
 * budget a node drain in that window evicted it too (an outage, then a
 * cold start); the budget goes with the drain's end. With one replica a
 * budget could only block a drain (maxUnavailable 1 never does, but it
 * would be an object for nothing). Whether one of the user's budgets
 * already selects the pods is the reconciler's question (budget.h).
 */
bool workload_budget_wanted(json_object *spec, int32_t replicas);

/* The pod template's labels in a built Deployment body (borrowed). */
json_object *workload_pod_labels(const struct workload *w);

/* The label selector string kinfer's pods carry ("kinfer.io/service=NAME"). */
int workload_selector(const char *name, char *buf, size_t len);

/* The ownerReferences list naming InferenceService NAME (UID) as the
 * controller of an object kinfer writes: a new array (caller owns it). */
json_object *workload_owner_refs(const char *name, const char *uid);
