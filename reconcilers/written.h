/*
 * What a controller last wrote for an InferenceService, remembered in a
 * table of fixed size keyed by hash of namespace/name/uid (a new
 * incarnation starts afresh; a start or a slot another service took
 * forgets, and the next pass costs one no-op apply): the body's hash, what
 * the API server answered (resourceVersion or generation) and when. It
 * tells a write of ours not yet in the cache from a change by someone
 * else. The route (EndpointSlice) and budget controllers each keep one.
 */
#pragma once

#include "cache.h"
#include "snapshot.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define WRITTEN_SLOTS 16384

struct written {
	uint64_t key;
	char hash[17];         /* "" with a hash of "": a deletion */
	char rv[CACHE_RV_MAX]; /* the resourceVersion our write returned */
	int64_t generation;    /* or its metadata.generation */
	uint64_t sent_ns;      /* when (monotonic); 0: seen in the cache since */
};

struct written_table {
	pthread_mutex_t lock;
	struct written s[WRITTEN_SLOTS];
};

#define WRITTEN_TABLE_INIT \
	{ \
		.lock = PTHREAD_MUTEX_INITIALIZER \
	}

/* s's entry into *ret; false when the table does not remember s. */
bool written_recall(struct written_table *t, const struct snapshot *s, struct written *ret);
/* Remember w (hash NULL: forget s): hash, rv (NULL: ""), generation, sent_ns. */
void written_remember(struct written_table *t, const struct snapshot *s, const char *hash,
		      const char *rv, int64_t generation, uint64_t sent_ns);
