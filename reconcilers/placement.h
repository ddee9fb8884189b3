/*
 * GPU-aware placement: the decision, without I/O.
 *
 * placement_decide reads the node and pod caches (inside the caller's
 * cache_read_lock, never taking a lock on them), filters nodes the way
 * kube-scheduler's default plugins would for the fields kinfer's pods use
 * (unschedulable, readiness, taints and tolerations, nodeSelector and
 * required node affinity, then the resources: GPUs of the pod's resource
 * name, cpu, memory, pod count), scores the nodes that fit, and returns the
 * best one; when none fits, a message that counts the reasons as
 * kube-scheduler does ("0/40 nodes are available: 32 Insufficient
 * nvidia.com/gpu, 8 node(s) had untolerated taint {k: v}."). For a pod
 * that asks for GPUs it visits only what an index of nodes by free GPU
 * units and score yields (kept up to date from placement_node_changed,
 * which the pod and node handlers call for every event); the decision is
 * the one filtering and scoring every node gives (placement_decide_scan).
 *
 * Resources in use on a node = requests of the pods bound to it (from the
 * pod cache's by-node index, summed once per node and kept until
 * placement_node_changed says a pod of the node changed; Succeeded and
 * Failed pods excluded) + the pods
 * kinfer has assumed there and the cache does not yet show bound. An
 * assumption is made with placement_assume right after a decision and
 * dropped with placement_forget when the watch confirms the binding or the
 * bind fails (or after PLACEMENT_ASSUME_TTL_S, if neither is ever seen).
 *
 * Decisions and assumptions are serialized by placement_lock/unlock: a
 * caller holds the lock from decide to assume, so two workers can never
 * both count the same free GPU. Only the assumption table is locked; the
 * caches are read lock-free.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "kinds.h"

#define PLACEMENT_MAX_ASSUMED 8192
#define PLACEMENT_ASSUME_TTL_S 30
#define PLACEMENT_MAX_REASONS 32

/* Score weights: each score is 0-100, the node's score their weighted sum. */
struct placement_weights {
	int cached;        /* the pod's model cached on the node */
	int utilization;   /* 100 - the node's GPU utilization (unknown: 50) */
	int packing;       /* low/normal: fuller nodes; high: fewer replicas of the service */
	int fragmentation; /* fewer free units left stranded on partially used nodes */
};

extern const struct placement_weights placement_default_weights;

struct placement;

int placement_new(const struct placement_weights *w, struct placement **ret);

/*
 * Decide from the free-capacity index (on after placement_new) or, off,
 * with the scan alone (--placement-index=false).
 */
void placement_use_index(struct placement *pl, bool on);
void placement_free(struct placement *pl);

struct placement_decision {
	char node[256]; /* the chosen node, when 0 is returned */
	int64_t score;
	int feasible;       /* nodes that fit */
	int nodes;          /* nodes considered */
	bool cached;        /* the chosen node caches the pod's model */
	bool indexed;       /* decided by the index (else by the scan) */
	char message[1024]; /* no fit: "0/N nodes are available: ..." */
};

void placement_lock(struct placement *pl);
void placement_unlock(struct placement *pl);

/*
 * Decide for pod (which must be unbound). Call between cache_read_lock and
 * cache_read_unlock, holding placement_lock whenever another thread may
 * decide or assume (the decision keeps per-node sums and scratch tables). 0 with ret->node set; -ENOSPC when no node fits (ret->message
 * says why); -ENOMEM.
 */
int placement_decide(struct placement *pl, struct cache *nodes, struct cache *pods,
		     const struct kpod *pod, uint64_t now_ns, struct placement_decision *ret);

/* The same decision by filtering and scoring every node (what
 * placement_decide falls back to when no indexed node fits; for tests that
 * compare the two). ret->feasible counts every node that fits, where
 * placement_decide's counts those it visited. */
int placement_decide_scan(struct placement *pl, struct cache *nodes, struct cache *pods,
			  const struct kpod *pod, uint64_t now_ns, struct placement_decision *ret);

/* Count pod's requests on node until forgotten. -EBUSY when the table is
 * full (the caller retries later), -ENOMEM. Replaces an older assumption
 * of the same pod. */
int placement_assume(struct placement *pl, const struct kpod *pod, const char *node, uint64_t now_ns);
/* A pod bound to node was added, changed or deleted, or the node itself
 * (call after the cache published it; any thread, no lock): the node's
 * sums and its place in the index are recomputed at the next decision.
 * The pod and node watches' handlers call it for every event; a node
 * change the index is not told of may hide that node from placement_decide
 * until the next (the index also resyncs when the node count differs).
 * The node cache's writer brackets each write and its handlers with
 * cache_write_begin/done (the informer does): placement_decide waits for
 * one in flight (up to 50 us, then it is the scan), so a node stored and
 * not yet told never changes a decision. */
void placement_node_changed(struct placement *pl, const char *node);
/* The pod is bound and the cache's by-node index already shows it (the
 * cache publishes a pod first and indexes it after): only then may its
 * assumption be forgotten. Inside cache_read_lock. */
bool placement_pod_indexed(struct cache *pods, const struct kpod *pod);
/* Drop the assumption of a pod (key "ns/name"); false if there was none. */
bool placement_forget(struct placement *pl, const char *pod_key);
/* Under placement_lock: does an assumption of the pod stand (its binding
 * sent, the watch not showing it yet)? Such a pod is never decided again:
 * a second decision would replace the first node's assumption and its
 * bind's 409 would forget it, while the pod is bound there. */
bool placement_is_assumed(struct placement *pl, const char *pod_key, uint64_t now_ns);
size_t placement_assumed(struct placement *pl);

/* ---- the pieces, exposed for unit tests ---- */

bool placement_tolerates(const struct kpod *pod, const struct ktaint *taint);
bool placement_node_matches(const struct kpod *pod, const struct knode *node);
/* The node-only filters (unschedulable, not ready, taints, selector and
 * affinity): NULL when the node passes, else the reason (a taint's is
 * written into buf). Resources are not looked at. */
const char *placement_node_filter(const struct kpod *pod, const struct knode *node, char *buf,
				  size_t len);

/* Reason histogram and the message kube-scheduler writes. */
struct placement_reasons {
	struct {
		char text[160];
		int count;
	} r[PLACEMENT_MAX_REASONS];
	int n;
};
void placement_reasons_add(struct placement_reasons *h, const char *text);
/* "0/N nodes are available: C1 R1, C2 R2." with the "C R" strings sorted
 * as strings (Go's sort.Strings), truncated to len. */
void placement_reasons_message(const struct placement_reasons *h, int nodes, char *buf, size_t len);
