/*
 * RCU caches of cluster state: one lock-free hash table per watched kind
 * (open addressing over an RCU-published array of tagged pointers; see
 * cache.c), written by one thread (the informer's I/O thread) and read by
 * any number of registered RCU reader threads without a lock.
 *
 * Objects are projections: a struct that begins with struct cache_obj and
 * holds only the fields kinfer reads, built from the API's JSON by the
 * kind's project function. Once published an object is immutable; an
 * update publishes a new object and the old one is freed with call_rcu
 * after every reader that could see it has left its read-side section.
 *
 * Readers (threads registered with rcu_register_thread):
 *     cache_read_lock();
 *     const struct pod *p = (const void *)cache_get(pods, "ns/name");
 *     ... use p, never keep it past the unlock ...
 *     cache_read_unlock();
 *
 * Secondary indexes (pods by node, pods by service) link the objects that
 * share a value in an RCU list; a walk sees each object once, in its old
 * or its new version, and an object that moves to another value leaves
 * the old list as it joins the new one.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <urcu.h>
#include <urcu/rculfhash.h>

#include "intern.h"
#include "kube.h"

struct cache;

/*
 * ThreadSanitizer cannot see the ordering liburcu provides (it is not
 * instrumented), so the cache tells it: publishing releases the object and
 * finding it acquires it (rcu_assign_pointer / rcu_dereference), and every
 * read-side unlock releases a token that a deferred free acquires (the
 * grace period). Without TSan these compile to plain rcu_read_lock/unlock.
 */
#if defined(__SANITIZE_THREAD__)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
extern char cache_grace_token;
#define CACHE_TSAN_ACQUIRE(p) __tsan_acquire((void *)(p))
#define CACHE_TSAN_RELEASE(p) __tsan_release((void *)(p))
#else
#define CACHE_TSAN_ACQUIRE(p) ((void)(p))
#define CACHE_TSAN_RELEASE(p) ((void)(p))
#endif

static inline void cache_read_lock(void)
{
	rcu_read_lock();
}

static inline void cache_read_unlock(void)
{
#if defined(__SANITIZE_THREAD__)
	CACHE_TSAN_RELEASE(&cache_grace_token);
#endif
	rcu_read_unlock();
}

/*
 * metadata.uid: the 16 bytes of the UUID the API server assigned (36
 * characters as text, 37 with its NUL, plus a pointer), or, for a uid that
 * is not a lowercase RFC 4122 UUID, a pointer to the text in the object's
 * block with byte 8 cleared (a stored UUID's byte 8 is 10xxxxxx, its
 * variant). Read it with cache_obj_uid.
 */
union cache_uid {
	uint8_t b[16];
	struct {
		const char *text; /* NULL when the object has no uid */
		uint8_t variant;  /* 0: text */
	} s;
};

#define CACHE_UID_MAX 37 /* a UUID's text and its NUL */
_Static_assert(sizeof(union cache_uid) == 16 && offsetof(union cache_uid, s.variant) == 8,
	       "a uid's text pointer must leave byte 8 (the UUID variant) free");

/*
 * metadata.resourceVersion: opaque to clients, but the API server's are
 * decimal numbers (etcd revisions), kept as one: the value with bit 63 set
 * (CACHE_RV_NUM). Any other text (leading zeros, letters, too long) is
 * kept as text in the object's block, its pointer here (bit 63 clear); 0 =
 * none. Read it with cache_obj_rv.
 */
union cache_rv {
	uint64_t num;
	const char *text;
};

#define CACHE_RV_NUM ((uint64_t)1 << 63)
#define CACHE_RV_MAX 21 /* 19 digits and a NUL (and room) */

/*
 * What every cached object keeps of its metadata. No rcu_head and no
 * pointer back to its cache: a retired object is handed to call_rcu in a
 * small node that lives only for the grace period (cache_retire), so the
 * 24 bytes are paid per update in flight, not per object kept.
 */
struct cache_obj {
	const char *key;             /* "namespace/name", or "name" */
	const char *ns;              /* interned; "" when cluster-scoped */
	union cache_rv rv;           /* resourceVersion: cache_obj_rv */
	const char *controller_kind; /* the controller owner: interned */
	const char *controller_name; /* interned */
	const char *controller_uid;  /* interned */
	uint32_t created;            /* creationTimestamp (cache_seconds) */
	uint32_t deleted;            /* deletionTimestamp (cache_seconds); 0 = none */
	union cache_uid uid;         /* cache_obj_uid */
};

/* The object's uid as text (in buf, or in the object), NULL when it has
 * none. */
const char *cache_obj_uid(const struct cache_obj *o, char buf[CACHE_UID_MAX]);
/* The uid's text into dst (len bytes, truncated), "" when it has none. */
void cache_obj_uid_copy(const struct cache_obj *o, char *dst, size_t len);
/* The resourceVersion as text (in buf, or in the object), NULL when none. */
const char *cache_obj_rv(const struct cache_obj *o, char buf[CACHE_RV_MAX]);
/* The resourceVersion's text into dst (truncated), "" when it has none. */
void cache_obj_rv_copy(const struct cache_obj *o, char *dst, size_t len);
/* Do a and b both have a resourceVersion, and the same one? */
bool cache_obj_same_rv(const struct cache_obj *a, const struct cache_obj *b);

/* The object's name: the end of its key (no pointer of its own). */
static inline const char *cache_obj_name(const struct cache_obj *o)
{
	return o->key + (o->ns[0] ? strlen(o->ns) + 1 : 0);
}

/*
 * A time kept in a cached object: seconds since the epoch in 32 bits,
 * which last until 2106 (an int64 would double each of them). 0 is "none";
 * a time before 1970 reads as 1 (still set), one past 2106 as UINT32_MAX.
 */
static inline uint32_t cache_seconds(int64_t s)
{
	if (s == 0)
		return 0;
	if (s < 0)
		return 1;
	return s > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/* Building a projection (inside a kind's project function). */
struct cache_proj;
/* A string copied into the object's own block (src may be NULL). */
void cache_proj_str(struct cache_proj *p, const char **field, const char *src);
/* A string shared through the intern table (src may be NULL). */
void cache_proj_intern(struct cache_proj *p, const char **field, const char *src);
struct intern *cache_proj_interns(struct cache_proj *p);

struct cache_index_def {
	const char *name;
	/* The object's value for this index, or NULL when not indexed. */
	const char *(*value)(const struct cache_obj *obj);
};

/* A watched kind: rows of const tables (operator/kinds.c, reconcilers). */
struct cache_kind {
	const char *name; /* "Pod", for logs and metrics */
	const struct kube_resource *res;
	size_t size; /* sizeof the projection */
	/* Fill kind-specific fields; metadata is done. 0 or -errno. */
	int (*project)(struct cache_proj *p, json_object *json, struct cache_obj *obj);
	/* Free what project allocated besides strings (optional). */
	void (*release)(struct intern *interns, struct cache_obj *obj);
	/* Are two versions the same for reconciling? NULL = compare rv. */
	bool (*same)(const struct cache_obj *a, const struct cache_obj *b);
	const struct cache_index_def *indexes;
	size_t n_indexes;
	/* A Warning Event on an object of this kind that cannot be read. */
	bool event_on_skip;
	/* Watch only the objects with these labels (the informer's
	 * labelSelector); NULL = all. */
	const char *label_selector;
	/* The projection reads metadata.managedFields, which the informer
	 * otherwise cuts before parsing (2-4 KB of small objects a Pod). */
	bool keep_managed_fields;
	/* Not needed to reconcile: when the API server forbids listing the
	 * kind (403: an upgrade whose ClusterRole lacks the new rule), the
	 * cache counts as synced, empty, and kinfer goes on without what this
	 * names (the list is tried again every minute). NULL: every cache must
	 * sync before anything is reconciled. */
	const char *optional_feature;
};

#define CACHE_MAX_INDEXES 4

int cache_new(const struct cache_kind *kind, struct intern *interns, struct cache **ret);
/* Frees every object now: no reader may be active. */
void cache_free(struct cache *c);
/* rcu_barrier(): every object retired so far is freed when it returns
 * (and ThreadSanitizer is told so; liburcu is not instrumented). Call it
 * before freeing what the objects refer to, e.g. the intern table. */
void cache_barrier(void);
const struct cache_kind *cache_kind(const struct cache *c);

/* ---- writer side (one thread) ---- */

/* Decode an API object into a new, unpublished projection. */
int cache_project(struct cache *c, json_object *json, struct cache_obj **ret);
/* Publish obj (replacing any object with its key). *ret_old receives the
 * replaced object (or NULL); pass it to cache_retire when done with it. */
void cache_publish(struct cache *c, struct cache_obj *obj, struct cache_obj **ret_old);
/* Unpublish key; *ret_old as above. 0, or -ENOENT. */
int cache_remove(struct cache *c, const char *key, struct cache_obj **ret_old);
/* Free an unpublished or replaced object after a grace period. */
void cache_retire(struct cache *c, struct cache_obj *obj);
/* Free a projection that was never published, at once. */
void cache_discard(struct cache *c, struct cache_obj *obj);
void cache_set_synced(struct cache *c, bool synced);
/* Around one write and the handlers told of it (the informer calls them
 * around cache_publish or cache_remove and its notification): a reader
 * that keeps its own state from those handlers (the placement index) can
 * tell whether every write it sees in the cache has been told to it. */
void cache_write_begin(struct cache *c);
void cache_write_done(struct cache *c);

/* ---- reader side (between cache_read_lock and cache_read_unlock) ---- */

const struct cache_obj *cache_get(struct cache *c, const char *key);
/* Calls fn for every object until fn returns nonzero (which is returned). */
int cache_foreach(struct cache *c, int (*fn)(const struct cache_obj *obj, void *ud), void *ud);
int cache_index_foreach(struct cache *c, size_t index, const char *value,
			int (*fn)(const struct cache_obj *obj, void *ud), void *ud);

/* ---- any thread ---- */
/*
 * Register the calling thread as an RCU reader, once; it is unregistered
 * when the thread exits. For threads kinfer does not start itself (the
 * webhook server's pool), which cannot call rcu_register_thread at their
 * start and rcu_unregister_thread at their end. 0, or a negative errno:
 * the thread must not read then.
 */
int cache_register_reader(void);
/*
 * Wait until every read-side section open now has ended (synchronize_rcu),
 * and tell ThreadSanitizer so: what the caller frees next comes after
 * those readers. Never inside a read-side section.
 */
void cache_synchronize(void);
/* The hash of a key as the table computes it (for benchmarks that compare
 * other tables on equal terms). */
unsigned long cache_key_hash(const char *key);
bool cache_synced(const struct cache *c);
size_t cache_count(const struct cache *c);
/* Between cache_write_begin and cache_write_done (acquire: what the
 * handlers did before cache_write_done is visible when false). */
bool cache_writing(const struct cache *c);
/* Counts cache_write_begin and cache_write_done (odd: a write is under
 * way): equal before and after a read, and even, no write happened. */
uint64_t cache_write_seq(const struct cache *c);
/* Entries in a secondary index (writer thread only; for tests). */
size_t cache_index_size(const struct cache *c, size_t index);

/* Helpers for project functions: json-c lookups that tolerate absence. */
const char *cache_json_str(json_object *o, const char *path);
/* One key of an object, taken whole (label and annotation keys have dots). */
const char *cache_json_key(json_object *o, const char *key);
int64_t cache_json_int(json_object *o, const char *path, int64_t dflt);
json_object *cache_json_get(json_object *o, const char *path);
