/*
 * Informers: keep an RCU cache (cache.h) equal to the API server's state
 * for one kind, and tell handlers what changed.
 *
 * Every informer of a set shares one I/O thread driving a curl multi handle
 * (HTTP/2 streams on one connection where the server offers it). Each one
 * LISTs with pagination, then WATCHes from the list's resourceVersion with
 * bookmarks and a random 5-10 minute timeout; on 410 Gone (or an ERROR
 * event) it relists and diffs against the cache, so handlers see the
 * deletes they missed; on other failures it reconnects with jittered
 * backoff (0.8 s doubling to 30 s, reset after a healthy minute). A
 * periodic resync hands every cached object to the handlers again without
 * an API call.
 *
 * Handlers run on the I/O thread inside a read-side section: old and obj
 * are valid during the call only. They must be quick (enqueue keys).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "kube.h"

struct events;
struct metrics;
struct informer_set;
struct informer;

enum informer_event { INFORMER_ADD, INFORMER_UPDATE, INFORMER_DELETE, INFORMER_RESYNC };

typedef void (*informer_handler_fn)(void *ud, enum informer_event ev, const struct cache_obj *old,
				    const struct cache_obj *obj);

struct informer_options {
	const struct cache_kind *kind;
	const char *namespace; /* NULL = all namespaces */
	const char *label_selector;
	const char *field_selector;
	long page_size;     /* 0 = 500 */
	uint64_t resync_ns; /* 0 = never */
};

int informer_set_new(struct kube_client *client, struct intern *interns, struct metrics *metrics,
		     struct informer_set **ret);
/* Stops the thread if running, then frees every informer and cache. */
void informer_set_free(struct informer_set *s);

/* Before informer_set_start only. */
int informer_add(struct informer_set *s, const struct informer_options *o, struct informer **ret);
#define INFORMER_MAX_HANDLERS 8
int informer_add_handler(struct informer *inf, informer_handler_fn fn, void *ud);

/*
 * Objects that cannot be decoded or projected (nested past
 * KUBE_JSON_MAX_DEPTH, not JSON, fields of the wrong type) never stop an
 * informer: each is skipped, counted in
 * kinfer_informer_objects_skipped_total{kind,reason}, logged once with its
 * namespace/name, and, for kinds with cache_kind.event_on_skip, reported
 * by a Warning Event (reason Unreadable) through events, when set.
 */
void informer_set_events(struct informer_set *s, struct events *events);

int informer_set_start(struct informer_set *s);
void informer_set_stop(struct informer_set *s);
/* Every informer has completed its first LIST. */
bool informer_set_synced(struct informer_set *s);
int informer_set_wait_synced(struct informer_set *s, uint64_t timeout_ns);

struct cache *informer_cache(struct informer *inf);
const struct cache_kind *informer_kind(const struct informer *inf);

struct informer_stats {
	uint64_t lists, relists, watches, events, bookmarks, errors, skipped;
	char resource_version[32];
};
void informer_stats(struct informer *inf, struct informer_stats *ret);

/*
 * Feed bytes of a watch stream (newline-delimited JSON events) as if they
 * came from the server; for benchmarks, fuzzing and tests. Must run where
 * the I/O thread is not running (or before start). Returns 0, or -EBADMSG
 * for an event that is not JSON, -EFBIG past the event bound; a 410 ERROR
 * event returns -EIDRM.
 */
int informer_feed(struct informer *inf, const char *buf, size_t len);
/* The same for one LIST response body (the last page when it has no
 * continue token: what the list did not mention is removed). */
int informer_feed_page(struct informer *inf, const char *body, size_t len);
#define INFORMER_MAX_EVENT (16 * 1024 * 1024)
