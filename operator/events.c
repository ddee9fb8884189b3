/*
 * Event recorder: builds the Event, checks the dedup table (a small hash
 * of recent keys under a mutex), and POSTs it. Failures to record an event
 * are returned, never retried hard: an event is advice, not state.
 */
#include "events.h"

#include "fnv.h"
#include "ktime.h"
#include "ratelimit.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct seen {
	uint64_t hash;
	int64_t at;
};

/* One queued Event: every string copied, bounded. */
struct queued {
	char api_version[128], kind[64], ns[254], name[254], uid[64];
	char type[16], reason[64], action[64], note[1024];
	int64_t at_us; /* when it was emitted */
	bool later;    /* events_emit_later: wait for a quiet limiter */
};

struct events {
	struct kube_client *client;
	char *controller, *instance;
	pthread_mutex_t lock;
	struct seen seen[EVENTS_MAX_REMEMBERED];
	atomic_uint counter;
	/* events_emit_async: a ring under lock, and its poster thread */
	struct queued *ring;
	size_t head, n;
	pthread_cond_t cond;
	pthread_cond_t drained; /* events_flush waits on it */
	pthread_t thread;
	bool thread_running, stopping;
	bool flushing; /* events_flush: post what is queued without waiting */
};

int events_new(struct kube_client *c, const char *controller, const char *instance,
	       struct events **ret)
{
	struct events *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->client = c;
	e->controller = strdup(controller);
	e->instance = strdup(instance ? instance : "kinfer-operator");
	if (!e->controller || !e->instance) {
		events_free(e);
		return -ENOMEM;
	}
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cond, NULL);
	pthread_cond_init(&e->drained, NULL);
	*ret = e;
	return 0;
}

void events_free(struct events *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	e->stopping = true;
	bool running = e->thread_running;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->lock);
	if (running)
		pthread_join(e->thread, NULL);
	pthread_cond_destroy(&e->cond);
	pthread_cond_destroy(&e->drained);
	free(e->ring);
	free(e->controller);
	free(e->instance);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

/* One field of the dedup key, closed by a separator byte. */
static uint64_t fnv(uint64_t h, const char *s)
{
	return fnv64_add_byte(fnv64_add_str(h, s), 0xff);
}

/* True when this key was emitted within the dedup window; records it. */
static bool recently(struct events *e, uint64_t h, int64_t now)
{
	struct seen *s = &e->seen[h % EVENTS_MAX_REMEMBERED];
	bool dup;
	pthread_mutex_lock(&e->lock);
	dup = s->hash == h && now - s->at < EVENTS_DEDUP_S;
	if (!dup) {
		s->hash = h;
		s->at = now;
	}
	pthread_mutex_unlock(&e->lock);
	return dup;
}

bool events_seen(struct events *e, const struct event_object *r, const char *reason,
		 const char *note, int64_t now_s)
{
	return recently(e, fnv(fnv(fnv(FNV64_INIT, r->uid), reason), note), now_s);
}

static json_object *jstr(const char *s)
{
	return json_object_new_string(s ? s : "");
}

int events_build(const struct events *e, const struct event_object *r, const char *type,
		 const char *reason, const char *action, const char *note, int64_t now_us,
		 unsigned seq, json_object **ret)
{
	char name[320], ts[KTIME_MICRO_LEN];
	json_object *ev = json_object_new_object(), *m = json_object_new_object(),
		    *reg = json_object_new_object();

	if (!ev || !m || !reg) {
		json_object_put(ev);
		json_object_put(m);
		json_object_put(reg);
		return -ENOMEM;
	}
	ktime_format_micro(now_us, ts, sizeof(ts));
	/* Unique like client-go's: the object's name and a time-based suffix. */
	snprintf(name, sizeof(name), "%.200s.%llx%04x", r->name, (unsigned long long)now_us,
		 seq & 0xffff);
	json_object_object_add(ev, "apiVersion", jstr("events.k8s.io/v1"));
	json_object_object_add(ev, "kind", jstr("Event"));
	json_object_object_add(m, "name", jstr(name));
	json_object_object_add(m, "namespace", jstr(r->ns ? r->ns : "default"));
	json_object_object_add(ev, "metadata", m);
	json_object_object_add(ev, "eventTime", jstr(ts));
	json_object_object_add(ev, "reportingController", jstr(e->controller));
	json_object_object_add(ev, "reportingInstance", jstr(e->instance));
	json_object_object_add(ev, "action", jstr(action));
	json_object_object_add(ev, "reason", jstr(reason));
	json_object_object_add(ev, "type", jstr(type));
	json_object_object_add(ev, "note", jstr(note));
	json_object_object_add(reg, "apiVersion", jstr(r->api_version));
	json_object_object_add(reg, "kind", jstr(r->kind));
	json_object_object_add(reg, "name", jstr(r->name));
	if (r->ns)
		json_object_object_add(reg, "namespace", jstr(r->ns));
	if (r->uid)
		json_object_object_add(reg, "uid", jstr(r->uid));
	json_object_object_add(ev, "regarding", reg);
	*ret = ev;
	return 0;
}

static int emit_at(struct events *e, const struct event_object *r, const char *type,
		   const char *reason, const char *action, const char *note, int64_t now_us)
{
	json_object *ev;
	int rc;

	if (events_seen(e, r, reason, note, now_us / (int64_t)KTIME_USEC_PER_SEC))
		return 0;
	rc = events_build(e, r, type, reason, action, note, now_us,
			  atomic_fetch_add(&e->counter, 1), &ev);
	if (rc < 0)
		return rc;
	rc = kube_create(e->client, &kube_res_events, r->ns ? r->ns : "default", NULL, NULL, ev,
			 NULL, NULL, NULL);
	json_object_put(ev);
	return rc;
}

int events_emit(struct events *e, const struct event_object *r, const char *type,
		const char *reason, const char *action, const char *fmt, ...)
{
	char note[EVENTS_MAX_NOTE];
	va_list ap;

	if (!e)
		return 0;
	va_start(ap, fmt);
	vsnprintf(note, sizeof(note), fmt, ap);
	va_end(ap);
	return emit_at(e, r, type, reason, action, note, ktime_wall_us());
}

/* A low-priority Event waits (e->lock held; woken by events_free) until
 * the limiter is quiet, at most EVENTS_LATER_MAX_S. */
static void wait_quiet(struct events *e)
{
	uint64_t start = ktime_mono_ns(), max = EVENTS_LATER_MAX_S * KTIME_NSEC_PER_SEC;

	while (!e->stopping && !e->flushing && e->client) {
		uint64_t d = kube_until_quiet(e->client), spent = ktime_mono_ns() - start;
		if (d == 0 || spent >= max)
			return;
		if (d > max - spent)
			d = max - spent;
		if (d < 10 * KTIME_NSEC_PER_MSEC)
			d = 10 * KTIME_NSEC_PER_MSEC;
		struct timespec ts = ktime_deadline(CLOCK_REALTIME, d); /* e->cond's clock */
		pthread_cond_timedwait(&e->cond, &e->lock, &ts);
	}
}

static void *poster_main(void *ud)
{
	struct events *e = ud;
	struct queued q;

	pthread_mutex_lock(&e->lock);
	for (;;) {
		while (!e->n && !e->stopping)
			pthread_cond_wait(&e->cond, &e->lock);
		if (e->stopping)
			break;
		if (e->ring[e->head].later) {
			wait_quiet(e);
			if (e->stopping)
				break;
		}
		q = e->ring[e->head];
		e->head = (e->head + 1) % EVENTS_MAX_QUEUED;
		e->n--;
		pthread_mutex_unlock(&e->lock);
		struct event_object r = { q.api_version, q.kind, q.ns[0] ? q.ns : NULL, q.name,
					  q.uid[0] ? q.uid : NULL };
		emit_at(e, &r, q.type, q.reason, q.action, q.note, q.at_us);
		pthread_mutex_lock(&e->lock);
		if (e->flushing && !e->n)
			pthread_cond_broadcast(&e->drained);
	}
	pthread_cond_broadcast(&e->drained);
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

size_t events_flush(struct events *e, uint64_t timeout_ns)
{
	size_t left;

	if (!e)
		return 0;
	struct timespec ts = ktime_deadline(CLOCK_REALTIME, timeout_ns); /* drained's clock */
	pthread_mutex_lock(&e->lock);
	e->flushing = true;
	pthread_cond_signal(&e->cond); /* out of wait_quiet */
	while (e->n && e->thread_running && !e->stopping)
		if (pthread_cond_timedwait(&e->drained, &e->lock, &ts) == ETIMEDOUT)
			break;
	left = e->n;
	pthread_mutex_unlock(&e->lock);
	return left;
}

static int enqueue(struct events *e, const struct event_object *r, const char *type,
		   const char *reason, const char *action, const char *note, bool later)
{
	int rc = 0;

	if (!e)
		return 0;
	pthread_mutex_lock(&e->lock);
	if (!e->ring && !(e->ring = calloc(EVENTS_MAX_QUEUED, sizeof(*e->ring))))
		rc = -ENOMEM;
	if (rc == 0 && !e->thread_running && !e->stopping) {
		if (pthread_create(&e->thread, NULL, poster_main, e) != 0)
			rc = -EAGAIN;
		else
			e->thread_running = true;
	}
	if (rc == 0 && (e->n == EVENTS_MAX_QUEUED || e->stopping))
		rc = -EAGAIN;
	if (rc == 0) {
		struct queued *q = &e->ring[(e->head + e->n) % EVENTS_MAX_QUEUED];
		snprintf(q->api_version, sizeof(q->api_version), "%s", r->api_version);
		snprintf(q->kind, sizeof(q->kind), "%s", r->kind);
		snprintf(q->ns, sizeof(q->ns), "%s", r->ns ? r->ns : "");
		snprintf(q->name, sizeof(q->name), "%s", r->name);
		snprintf(q->uid, sizeof(q->uid), "%s", r->uid ? r->uid : "");
		snprintf(q->type, sizeof(q->type), "%s", type);
		snprintf(q->reason, sizeof(q->reason), "%s", reason);
		snprintf(q->action, sizeof(q->action), "%s", action);
		snprintf(q->note, sizeof(q->note), "%s", note);
		q->at_us = ktime_wall_us();
		q->later = later;
		e->n++;
		pthread_cond_signal(&e->cond);
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

int events_emit_async(struct events *e, const struct event_object *r, const char *type,
		      const char *reason, const char *action, const char *note)
{
	return enqueue(e, r, type, reason, action, note, false);
}

int events_emit_later(struct events *e, const struct event_object *r, const char *type,
		      const char *reason, const char *action, const char *note)
{
	int rc;

	if (!e)
		return 0;
	rc = enqueue(e, r, type, reason, action, note, true);
	if (rc == -EAGAIN) /* full (or stopping): now, from this thread */
		rc = events_emit(e, r, type, reason, action, "%s", note);
	return rc;
}
