/*
 * kinfer.io's label, annotation and condition keys, in one place, and the
 * table that tells operator/kinds.c which of them to project into the
 * cached Pod, Node, Deployment and Service structs (operator/ knows no
 * kinfer.io name). keys_register must run before any informer starts:
 * main does it, and so do the tests and benchmarks that project objects.
 */
#pragma once

/* The pod readiness gate and condition warm-up sets. */
#define KINFER_GATE "kinfer.io/warmed-up"
/* Every object kinfer creates for an InferenceService carries its name. */
#define KINFER_SERVICE_LABEL "kinfer.io/service"
/* Pod annotations the warm-up and drain controllers write. */
#define KINFER_WARMUP_ATTEMPTS "kinfer.io/warmup-attempts"
#define KINFER_DRAINING_SINCE "kinfer.io/draining-since"
/* The pod's container restarts when it turned warm: more since = cold. */
#define KINFER_WARM_RESTARTS "kinfer.io/warm-restarts"
/* The hash of the applied body on Deployments and Services. */
#define KINFER_HASH_ANNOTATION "kinfer.io/applied-hash"
/* kinfer's server-side apply field manager. */
#define KINFER_FIELD_MANAGER "kinfer-operator"
/* Placement: the pod's priority (low|normal|high), the model it serves, a
 * pod that does not care for cached nodes, a node's GPU utilization (percent,
 * written by whatever watches the GPUs) and a node that holds a model's
 * weights (label KINFER_CACHED_PREFIX + model name, any value but "false"). */
#define KINFER_PRIORITY_LABEL "kinfer.io/priority"
#define KINFER_MODEL_LABEL "kinfer.io/model"
#define KINFER_PREFER_CACHED "kinfer.io/prefer-cached-nodes"
#define KINFER_GPU_UTILIZATION "kinfer.io/gpu-utilization"
#define KINFER_CACHED_PREFIX "kinfer.io/cached."

/* Register the keys above with operator/kinds.c (idempotent). */
void keys_register(void);
