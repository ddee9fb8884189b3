/*
 * Synthetic Pods for the benchmarks, made from the real Pod JSON recorded
 * from kube-apiserver (tests/data/pod.json): the recorded bytes are kept as
 * a template and only the values that differ between pods are replaced
 * (name, generateName, uid, resourceVersion, the owner's name and uid, the
 * service and pod-template-hash labels, nodeName and the pod IPs, wherever
 * they occur, managedFields included). Everything else stays byte for byte
 * what the API server sent, so parsing cost and projection are the real
 * ones.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct cache;
struct podgen;

/*
 * The benchmarks' cluster: 100,000 pods would be 100 per node, ~33 per
 * ReplicaSet and 100 per service label (3 ReplicaSets per service). Not
 * 30 ReplicaSets: the cache's secondary indexes cost O(pods sharing a
 * value) per add and per delete, so filling and emptying a cache of
 * 100,000 pods in 30 ReplicaSets takes minutes (bench_ingest measures it
 * on fewer events).
 */
#define PODGEN_OWNERS 3000
#define PODGEN_NODES 1000

/* Which pod: everything else derives from these four numbers. */
struct podgen_pod {
	uint64_t id;    /* the pod: name suffix, uid, IP */
	unsigned owner; /* its ReplicaSet; owners 3k..3k+2 share service k */
	unsigned node;  /* kwok-a100-<node> */
	uint64_t rv;    /* resourceVersion */
};

#define PODGEN_VAL_MAX 64

/* The strings a pod gets, for callers that edit parsed JSON directly. */
struct podgen_values {
	char name[PODGEN_VAL_MAX];
	char uid[PODGEN_VAL_MAX];
	char rv[PODGEN_VAL_MAX];
	char node[PODGEN_VAL_MAX];
	char ip[PODGEN_VAL_MAX];
	char service[PODGEN_VAL_MAX];
	char hash[PODGEN_VAL_MAX];
	char owner_name[PODGEN_VAL_MAX];
	char owner_uid[PODGEN_VAL_MAX];
};

/* Load the template (path to pod.json) and check that rendering the
 * recorded values gives back the recorded bytes. -EINVAL if the file is
 * not the expected recording, -errno if it cannot be read. */
int podgen_new(const char *path, struct podgen **ret);
void podgen_free(struct podgen *g);

/* The recorded Pod (no trailing newline). */
const char *podgen_raw(const struct podgen *g, size_t *ret_len);
/* An upper bound on the length of one rendered event line. */
size_t podgen_max_event(const struct podgen *g);

/* Pod id of that cluster, with owners ReplicaSets, at resourceVersion rv. */
struct podgen_pod podgen_pod_of(uint64_t id, uint64_t rv, unsigned owners);

void podgen_values(const struct podgen_pod *p, struct podgen_values *ret);
/* "default/<name>", the cache key. */
void podgen_key(const struct podgen_pod *p, char *buf, size_t len);

/* The Pod's JSON, compact as the API server sends it. Returns its length
 * (a NUL follows), or 0 when buf is too small. */
size_t podgen_render(const struct podgen *g, const struct podgen_pod *p, char *buf, size_t len);
/* One watch event line: {"type":TYPE,"object":POD}\n. Same return. */
size_t podgen_event(const struct podgen *g, const char *type, const struct podgen_pod *p, char *buf,
		    size_t len);

/*
 * Empty a cache of the pods ids[0..n) (0..n-1 when ids is NULL), made by
 * podgen_pod_of, before cache_free. cache_free unlinks and frees objects
 * at once while the hash table's resize worker may still be walking them
 * (a crash inside liburcu-cds, under cds_lfht_destroy); cache_remove and
 * cache_retire free after a grace period instead. Pass pods in the order
 * they were added, so each is first in its index chains.
 */
void podgen_drain(struct cache *c, const uint64_t *ids, size_t n, unsigned owners);

/* A whole file, NUL-terminated. NULL on failure (errno set). */
char *podgen_read_file(const char *path, size_t *ret_len);

/* splitmix64: a deterministic stream of random numbers. */
uint64_t podgen_rand(uint64_t *state);
/* BENCH_N from the environment, or dflt. */
unsigned long podgen_env_n(unsigned long dflt);
