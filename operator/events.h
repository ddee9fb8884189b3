/*
 * Kubernetes Events (events.k8s.io/v1) for decisions a person would want
 * to see. The same (object, reason, note) is written at most once per
 * EVENTS_DEDUP_S seconds, so a stuck object cannot flood the API; the
 * dedup table is bounded.
 */
#pragma once

#include "kube.h"

#define EVENTS_DEDUP_S 600
#define EVENTS_MAX_REMEMBERED 4096
#define EVENTS_MAX_NOTE 1024 /* a longer note is cut (the API allows 1 kB) */

struct events;

struct event_object {
	const char *api_version;
	const char *kind;
	const char *ns;
	const char *name;
	const char *uid;
};

int events_new(struct kube_client *c, const char *controller, const char *instance,
	       struct events **ret);
void events_free(struct events *e);

/* type "Normal" or "Warning"; reason CamelCase; action CamelCase verb. */
int events_emit(struct events *e, const struct event_object *regarding, const char *type,
		const char *reason, const char *action, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* The parts of events_emit, for tests. events_seen: true when the same
 * (uid, reason, note) was emitted less than EVENTS_DEDUP_S before now_s
 * (and records it when not). events_build: the events.k8s.io/v1 Event at
 * now_us, named after the object, the time and seq. */
bool events_seen(struct events *e, const struct event_object *regarding, const char *reason,
		 const char *note, int64_t now_s);
int events_build(const struct events *e, const struct event_object *regarding, const char *type,
		 const char *reason, const char *action, const char *note, int64_t now_us,
		 unsigned seq, json_object **ret);

/*
 * The same, from a thread that must not wait for the API server (the
 * informers' I/O thread): the Event is copied into a bounded queue
 * (EVENTS_MAX_QUEUED; beyond it, dropped and -EAGAIN) and posted by the
 * recorder's own thread, started on first use and stopped by events_free.
 */
#define EVENTS_MAX_QUEUED 1024
int events_emit_async(struct events *e, const struct event_object *regarding, const char *type,
		      const char *reason, const char *action, const char *note);
/*
 * The same, at low priority: the recorder's thread posts it once the
 * client's rate limiter has half its burst free again (at most
 * EVENTS_LATER_MAX_S later), so that a burst of writes, 1,000 new
 * InferenceServices at once, is not slowed by its Events (issue 15,
 * goal 4: one request in four of a creation). The Event keeps the time
 * of this call. A full queue sends it at once, from the caller's thread
 * (events_emit): an Event is never dropped for being deferred.
 */
#define EVENTS_LATER_MAX_S 30
int events_emit_later(struct events *e, const struct event_object *regarding, const char *type,
		      const char *reason, const char *action, const char *note);

/*
 * At a stop: post what is queued now without waiting for a quiet limiter
 * (the limiter still paces the requests), for at most timeout_ns. Returns
 * how many Events are still queued then (0: all posted or failed). From
 * then on, low-priority Events no longer wait.
 */
size_t events_flush(struct events *e, uint64_t timeout_ns);
