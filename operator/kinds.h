/*
 * The core kinds kinfer watches, and their projections: only the fields the
 * reconcilers and the scheduler read. Rows of this table are handed to the
 * manager by controllers; InferenceService's own kind lives in
 * reconcilers/, since operator/ knows nothing of it. Nor does this module
 * know kinfer.io's label and annotation names: the controllers register
 * the keys they want projected (struct kinds_keys).
 */
#pragma once

#include "cache.h"

enum kcond { KCOND_ABSENT = 0, KCOND_TRUE, KCOND_FALSE, KCOND_UNKNOWN };
enum kphase { KPHASE_PENDING, KPHASE_RUNNING, KPHASE_SUCCEEDED, KPHASE_FAILED, KPHASE_UNKNOWN };

/*
 * The label, annotation and condition keys the projections read beyond
 * Kubernetes' own, named by the controllers that own them (reconcilers/
 * registers kinfer.io's, see keys.h there). A NULL key is not projected:
 * its field stays 0 or NULL.
 */
struct kinds_keys {
	const char *gate;            /* pod condition and readiness gate: warmed,
				       * warm_reason, warm_since, has_gate */
	const char *service_label;   /* pod and Deployment label: service */
	const char *model_label;     /* pod label: model */
	const char *priority_label;  /* pod label: priority (low|normal|high) */
	const char *prefer_cached;   /* pod annotation: avoid_cached when "false" */
	const char *warmup_attempts; /* pod annotation: warmup_attempts */
	const char *draining_since;  /* pod annotation: draining_since */
	const char *warm_restarts;   /* pod annotation: warm_restarts */
	const char *gpu_utilization; /* node annotation: gpu_util (percent) */
	const char *applied_hash;    /* Deployment and Service annotation: applied_hash */
	const char *field_manager;   /* Deployment and Service: edited (another
				      * manager's spec fields) */
};

/* Register the keys (the table must outlive every cache). Call it before
 * any informer starts: projections read it without a lock. */
void kinds_register_keys(const struct kinds_keys *keys);
const struct kinds_keys *kinds_registered_keys(void);

/* status.podIP: an IPv4 address (what every pod network here assigns) as
 * its 32 bits with bit 63 set (KPOD_IP_V4), else the text in the object's
 * block (bit 63 clear; NULL when the pod has none). Read it with kpod_ip. */
union kpod_ip {
	uint64_t v4;
	const char *text;
};

#define KPOD_IP_V4 ((uint64_t)1 << 63)
#define KPOD_IP_MAX 46 /* INET6_ADDRSTRLEN */

struct klabel;
struct ktoleration;
struct kselector_req;

enum kpriority { KPRIO_LOW, KPRIO_NORMAL, KPRIO_HIGH };

/* What the scheduler reads of a pending pod beyond its requests: most pods
 * have none of it, and a bound pod keeps none (it only counts its
 * requests). Read it through kpod_sched(). */
struct kpod_sched {
	struct klabel *node_selector;
	struct ktoleration *tolerations;
	struct kselector_req *affinity; /* required node affinity, flattened */
	uint16_t n_node_selector, n_tolerations, n_affinity;
};

/* What few pods have (README "The caches"): the scheduling constraints of
 * a pending pod, a container's waiting reason, the PodScheduled=False
 * message, and a pod-template-hash that is not its ReplicaSet's name's
 * suffix. Its own allocation, NULL when all of it is empty; read it
 * through the accessors below. */
struct kpod_rare {
	struct kpod_sched sched;
	const char *waiting_reason; /* interned */
	const char *unschedulable;  /* copied (each pod's own message) */
	const char *template_hash;  /* interned; only when not derived */
};

/*
 * A Pod as kinfer keeps it (README "The caches: what kinfer keeps"): the
 * fields a controller reads, widest first so nothing pads. Strings are
 * interned when many pods share them (node, service, reasons) and copied
 * into the object's own block when each pod has its own (pod_ip).
 */
struct kpod {
	struct cache_obj meta;
	const char *node;         /* interned; NULL until scheduled */
	const char *scheduler;    /* interned */
	const char *service;      /* registered service label, interned */
	const char *warm_reason;  /* registered gate condition reason, interned */
	const char *gpu_resource; /* interned: nvidia.com/gpu, nvidia.com/mig-... */
	const char *model;        /* registered model label, interned */
	struct kpod_rare *rare;   /* NULL when the pod has none of it */
	union kpod_ip pod_ip;     /* kpod_ip */
	int64_t mem_bytes;
	/* GPU units and millicores in 32 bits (2^31 GPUs, 2.1 M cores): a
	 * larger request saturates at INT32_MAX, which no node fits either. */
	int32_t gpu; /* GPU units requested, summed over containers */
	int32_t cpu_milli;
	/* Times: seconds since the epoch, 0 = none (cache_seconds). */
	uint32_t warm_since;             /* lastTransitionTime of the gate condition */
	uint32_t containers_ready_since; /* ContainersReady lastTransitionTime */
	uint32_t started;                /* status.startTime */
	uint32_t draining_since;         /* registered draining-since annotation */
	int32_t deletion_cost;           /* controller.kubernetes.io/pod-deletion-cost (an int32) */
	int32_t restarts;
	int32_t warmup_attempts; /* registered warm-up attempts annotation */
	int32_t warm_restarts;   /* registered warm-restarts annotation; -1 = none */
	/* Enums and flags in bits: three bytes instead of eleven. */
	unsigned phase : 3;            /* enum kphase */
	unsigned priority : 2;         /* enum kpriority, registered priority label */
	unsigned ready : 2;            /* enum kcond */
	unsigned containers_ready : 2; /* enum kcond */
	unsigned warmed : 2;           /* enum kcond */
	unsigned scheduled : 2;        /* enum kcond */
	unsigned has_gate : 1;         /* readinessGates names the registered gate */
	unsigned has_deletion_cost : 1;
	unsigned activator : 1;        /* label app.kubernetes.io/component=activator */
	unsigned avoid_cached : 1;     /* registered prefer-cached annotation = "false" */
	unsigned gated : 1;            /* spec.schedulingGates not empty: not to be placed yet */
	unsigned sched_unreadable : 1; /* selector, tolerations or affinity past the bounds */
	unsigned hash_in_owner : 1;    /* pod-template-hash = the ReplicaSet name's suffix */
	unsigned stopped : 1; /* a container not running (waiting, terminated): no process */
};

/* The pod's IP as text (in buf, or in the object), NULL when it has none;
 * and copied into dst (truncated), "" when it has none. */
const char *kpod_ip(const struct kpod *pod, char buf[KPOD_IP_MAX]);
void kpod_ip_copy(const struct kpod *pod, char *dst, size_t len);

/* The pod's scheduling constraints; an empty set when it has none. */
const struct kpod_sched *kpod_sched(const struct kpod *pod);
/* A container's waiting reason (the first), NULL when none waits. */
const char *kpod_waiting_reason(const struct kpod *pod);
/* The PodScheduled=False message, NULL when there is none. */
const char *kpod_unschedulable(const struct kpod *pod);
/* Label pod-template-hash, NULL when the pod has none. */
const char *kpod_template_hash(const struct kpod *pod);

struct kres {
	const char *name; /* interned */
	int64_t milli;
};

struct klabel {
	const char *key;   /* interned */
	const char *value; /* interned */
};

struct ktaint {
	const char *key;    /* interned */
	const char *value;  /* interned */
	const char *effect; /* interned */
};

enum ktol_op { KTOL_EQUAL, KTOL_EXISTS };

struct ktoleration {
	const char *key;    /* interned; NULL = every key (with Exists) */
	const char *value;  /* interned */
	const char *effect; /* interned; NULL = every effect */
	uint8_t op;         /* enum ktol_op */
};

enum ksel_op { KSEL_IN, KSEL_NOT_IN, KSEL_EXISTS, KSEL_NOT_EXISTS, KSEL_GT, KSEL_LT };

/* One matchExpression of a required node affinity term. Terms are ORed,
 * the expressions of one term ANDed; term numbers the term. */
struct kselector_req {
	const char *key;     /* interned */
	const char **values; /* interned */
	uint16_t n_values;
	uint16_t term;
	uint8_t op; /* enum ksel_op */
};

/*
 * One matchExpression ({key, operator, values}) into r (term: its term's
 * number); values are interned. -EINVAL for an operator it does not know,
 * -E2BIG past max_values values; on failure r holds nothing to free.
 */
int kinds_selector_expr(struct intern *t, json_object *e, uint16_t term, size_t max_values,
			struct kselector_req *r);
/* Does a label whose value is value (NULL: the label is absent) meet the
 * expression? Gt and Lt compare integers (node affinity). */
bool kinds_selector_matches(const struct kselector_req *e, const char *value);
/* n expressions made by kinds_selector_expr, and the array. */
void kinds_selector_free(struct intern *t, struct kselector_req *reqs, size_t n);

struct knode {
	struct cache_obj meta;
	const char *gpu_product; /* label nvidia.com/gpu.product, interned */
	int64_t gpu_memory_mib;  /* label nvidia.com/gpu.memory */
	struct kres *alloc;      /* allocatable, every resource */
	struct klabel *labels;
	struct ktaint *taints;
	uint16_t n_alloc, n_labels, n_taints;
	uint8_t ready; /* enum kcond */
	uint8_t unschedulable;
	int16_t gpu_util; /* registered GPU utilization annotation; -1 unknown */
};

struct kdeployment {
	struct cache_obj meta;
	const char *service;         /* registered service label, interned */
	const char *progress_reason; /* Progressing condition reason, interned */
	const char *failure_message; /* ReplicaFailure, or Progressing False */
	const char *applied_hash;    /* registered applied-hash annotation */
	int64_t generation, observed_generation;
	int32_t spec_replicas, replicas, ready, updated, available, unavailable;
	uint8_t progressing, available_cond, replica_failure; /* enum kcond */
	bool edited;                                          /* kinds_edited */
	bool no_surge; /* spec.strategy.rollingUpdate.maxSurge 0 (or "0%") */
};

/* A Deployment's generations and replica counts from its JSON into d, and
 * its conditions when it has any (true; else d's are left as they are);
 * *ret_reason is then the Progressing reason (pointing into json), if any.
 * The projection and an apply's reply share it. */
bool kdeployment_read_status(struct kdeployment *d, json_object *json, const char **ret_reason);

struct kservice {
	struct cache_obj meta;
	const char *applied_hash; /* registered applied-hash annotation */
	bool edited;              /* kinds_edited */
};
/*
 * Does a field manager other than the registered one (kinfer's) own fields
 * of the object's spec, through the object or its scale subresource
 * (metadata.managedFields: kubectl edit, patch, scale)? The applier then is
 * not the only writer of what it applied: after a start, when nothing
 * remembers the last write, the object was perhaps changed while no
 * operator ran. Needs the kind's keep_managed_fields.
 */
bool kinds_edited(json_object *json);
/* The projection of kind_services: the applied-hash annotation, for any
 * kind of kinfer's objects that needs no more (its EndpointSlices). */
int kservice_project(struct cache_proj *p, json_object *json, struct cache_obj *obj);

/* PodDisruptionBudgets, every one (reconcilers/budget.h): the selector,
 * and for kinfer's own the applied-hash and who edited it. */
enum kpdb_selects {
	KPDB_SELECTS_NONE, /* no selector: policy/v1 selects no pod */
	KPDB_SELECTS_SOME, /* the expressions below, ANDed */
	/* Past kinfer's bounds or an unknown operator: taken to select every
	 * pod of the namespace (kinfer steps aside; see project_pdb). */
	KPDB_SELECTS_UNREADABLE,
};

struct kpdb {
	struct cache_obj meta;
	const char *applied_hash; /* registered applied-hash annotation */
	/* matchLabels (each as In with one value) and matchExpressions; an
	 * empty selector ({}) has none and selects every pod. */
	struct kselector_req *selector;
	int64_t generation;
	uint16_t n_selector;
	uint8_t selects;   /* enum kpdb_selects */
	bool edited;       /* kinds_edited */
	int8_t unreadable; /* KPDB_SELECTS_UNREADABLE: why (-E2BIG, -EINVAL) */
};

/* Does the budget select a pod with these labels (a JSON object)? */
bool kpdb_selects(const struct kpdb *b, json_object *labels);

/* PodDisruptionBudgets: index 0 by namespace. */
enum { KPDB_BY_NAMESPACE };

/*
 * HorizontalPodAutoscalers, every one: what each scales. One whose
 * scaleTargetRef is an InferenceService's own Deployment (apps, kind
 * Deployment, the service's name) writes that Deployment's replicas
 * behind kinfer's back (isvc_controller.c leaves them to it and says so).
 * One that scales the InferenceService itself (kinfer.io, its scale
 * subresource) is the way to do it, unless the InferenceService has
 * spec.scaling: then the spec.replicas it writes is ignored (said too).
 */
struct khpa {
	struct cache_obj meta;
	const char *deployment; /* the Deployment it scales, or NULL */
	const char *isvc;       /* the InferenceService it scales, or NULL */
	int32_t min_replicas, max_replicas;
};
/* HorizontalPodAutoscalers: by the Deployment, and by the InferenceService
 * they scale (the name: a lookup checks the namespace). */
enum { KHPA_BY_DEPLOYMENT, KHPA_BY_ISVC };

/* Pods: by node, by service label, and KPOD_BY_COMPONENT: "activator" for
 * the activator's pods (app.kubernetes.io/component=activator), no key for
 * the others. An object has index links only up to its last index with a
 * value (cache.c), so the rarely set ones come last. (No index by owner:
 * nothing looked pods up by their ReplicaSet.) */
enum { KPOD_BY_NODE, KPOD_BY_SERVICE, KPOD_BY_COMPONENT };
/* Deployments: index 0 by service label. */
enum { KDEPLOY_BY_SERVICE };

extern const struct cache_kind kind_pods;
extern const struct cache_kind kind_nodes;
extern const struct cache_kind kind_deployments;
extern const struct cache_kind kind_services;
extern const struct cache_kind kind_pdbs;
extern const struct cache_kind kind_hpas;
extern const struct cache_kind kind_configmaps; /* metadata only */

/* Helpers for other kinds' project functions. */
enum kcond kinds_cond(json_object *conditions, const char *type, const char **ret_reason,
		      int64_t *ret_since);
const struct klabel *knode_label(const struct knode *n, const char *key);
int64_t knode_alloc(const struct knode *n, const char *resource);

/* A pod's effective requests: max(sum of containers, largest init
 * container) + spec.overhead, restartable init containers as the scheduler
 * counts them; sums saturate at INT64_MAX. gpu_name points into spec. */
struct kpod_requests {
	int64_t cpu_milli, mem_bytes, gpu;
	const char *gpu_name;
};
void kinds_pod_requests(json_object *spec, struct kpod_requests *ret);
