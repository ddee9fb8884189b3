/*
 * The table of services: a fixed array of entries found by linear search
 * under one lock (a few thousand services at most, looked up once per
 * request: far below the cost of the request it serves). Each entry has
 * its own lock and condition variable, so a request waiting for one
 * service's pod never blocks another service.
 */
#include "actsvc.h"

#include "ktime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct actsvc_table {
	pthread_mutex_t lock;
	pthread_cond_t kick;
	bool kicked;
	size_t n; /* entries ever made */
	struct actsvc *s[ACTSVC_MAX_SERVICES];
};

static void cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

int actsvc_table_new(struct actsvc_table **ret)
{
	struct actsvc_table *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	cond_init_mono(&t->kick);
	*ret = t;
	return 0;
}

static void entry_free(struct actsvc *s)
{
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->fetch_lock);
	pthread_cond_destroy(&s->changed);
	free(s);
}

void actsvc_table_free(struct actsvc_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		entry_free(t->s[i]);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->kick);
	free(t);
}

static bool same(const struct actreq_target *a, const struct actreq_target *b)
{
	return strcmp(a->name, b->name) == 0 && strcmp(a->ns, b->ns) == 0;
}

/* Reset an unused entry for another service (under the table lock, and
 * refs == 0 there, so no thread holds a pointer to it). */
static void entry_reset(struct actsvc *s, const struct actreq_target *id)
{
	s->id = *id;
	s->held = 0;
	s->n_ep = 0;
	s->ep_seen_ns = 0;
	s->rr = 0;
	s->activation_ns = 0;
	s->fetched_ns = 0;
	s->exists = 0;
	s->max_pending = 0;
	s->timeout_s = 0;
	s->scale_to_zero = false;
}

struct actsvc *actsvc_get(struct actsvc_table *t, const struct actreq_target *id)
{
	struct actsvc *s = NULL, *idle = NULL;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n; i++) {
		if (same(&t->s[i]->id, id)) {
			s = t->s[i];
			break;
		}
		if (!idle && t->s[i]->refs == 0)
			idle = t->s[i];
	}
	if (!s && t->n < ACTSVC_MAX_SERVICES) {
		s = calloc(1, sizeof(*s));
		if (s) {
			pthread_mutex_init(&s->lock, NULL);
			pthread_mutex_init(&s->fetch_lock, NULL);
			cond_init_mono(&s->changed);
			entry_reset(s, id);
			t->s[t->n++] = s;
		}
	} else if (!s && idle) {
		s = idle;
		entry_reset(s, id);
	}
	if (s)
		s->refs++;
	pthread_mutex_unlock(&t->lock);
	return s;
}

void actsvc_put(struct actsvc_table *t, struct actsvc *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&t->lock);
	s->refs--;
	pthread_mutex_unlock(&t->lock);
}

int actsvc_hold(struct actsvc *s, int max_pending)
{
	int r = 0;
	pthread_mutex_lock(&s->lock);
	if (s->held >= max_pending)
		r = -EBUSY;
	else
		s->held++;
	pthread_mutex_unlock(&s->lock);
	return r;
}

void actsvc_unhold(struct actsvc *s)
{
	pthread_mutex_lock(&s->lock);
	if (s->held > 0)
		s->held--;
	pthread_mutex_unlock(&s->lock);
}

int actsvc_held(struct actsvc *s)
{
	pthread_mutex_lock(&s->lock);
	int n = s->held;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void take(struct actsvc *s, struct actsvc_endpoint *ret)
{
	*ret = s->ep[s->rr % s->n_ep];
	s->rr++;
}

int actsvc_wait(struct actsvc *s, uint64_t since_ns, uint64_t deadline_ns, struct actsvc_endpoint *ret)
{
	int r = 0;
	pthread_mutex_lock(&s->lock);
	while (s->n_ep == 0 || s->ep_seen_ns < since_ns) {
		if (ktime_mono_ns() >= deadline_ns) {
			r = -ETIMEDOUT;
			break;
		}
		struct timespec ts = ktime_timespec(deadline_ns);
		pthread_cond_timedwait(&s->changed, &s->lock, &ts);
	}
	if (r == 0)
		take(s, ret);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int actsvc_listed(struct actsvc *s, uint64_t since_ns, uint64_t deadline_ns,
		  struct actsvc_endpoint *ret)
{
	int r = 0;
	pthread_mutex_lock(&s->lock);
	while (s->ep_seen_ns < since_ns) {
		if (ktime_mono_ns() >= deadline_ns) {
			r = -ETIMEDOUT;
			break;
		}
		struct timespec ts = ktime_timespec(deadline_ns);
		pthread_cond_timedwait(&s->changed, &s->lock, &ts);
	}
	if (r == 0 && s->n_ep == 0)
		r = -ENOENT;
	if (r == 0)
		take(s, ret);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int actsvc_pick(struct actsvc *s, uint64_t max_age_ns, struct actsvc_endpoint *ret)
{
	int r = -ENOENT;
	uint64_t now = ktime_mono_ns();
	pthread_mutex_lock(&s->lock);
	if (s->n_ep > 0 && s->ep_seen_ns && now - s->ep_seen_ns <= max_age_ns) {
		take(s, ret);
		r = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

void actsvc_publish(struct actsvc *s, const struct actsvc_endpoint *ep, size_t n)
{
	if (n > ACTSVC_MAX_ENDPOINTS)
		n = ACTSVC_MAX_ENDPOINTS;
	pthread_mutex_lock(&s->lock);
	if (n)
		memcpy(s->ep, ep, n * sizeof(*ep));
	s->n_ep = n;
	s->ep_seen_ns = ktime_mono_ns();
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
}

bool actsvc_activation_due(struct actsvc *s, uint64_t min_gap_ns)
{
	bool due;
	uint64_t now = ktime_mono_ns();
	pthread_mutex_lock(&s->lock);
	due = s->activation_ns == 0 || now - s->activation_ns >= min_gap_ns;
	if (due)
		s->activation_ns = now;
	pthread_mutex_unlock(&s->lock);
	return due;
}

bool actsvc_release_due(struct actsvc *s)
{
	pthread_mutex_lock(&s->lock);
	bool due = s->activation_ns != 0;
	s->activation_ns = 0;
	pthread_mutex_unlock(&s->lock);
	return due;
}

size_t actsvc_busy(struct actsvc_table *t, struct actsvc **out, size_t max)
{
	size_t k = 0;
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n && k < max; i++) {
		struct actsvc *s = t->s[i];
		pthread_mutex_lock(&s->lock);
		bool busy = s->held > 0;
		pthread_mutex_unlock(&s->lock);
		if (busy) {
			s->refs++;
			out[k++] = s;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return k;
}

void actsvc_kick(struct actsvc_table *t)
{
	pthread_mutex_lock(&t->lock);
	t->kicked = true;
	pthread_cond_signal(&t->kick);
	pthread_mutex_unlock(&t->lock);
}

void actsvc_wait_kick(struct actsvc_table *t, uint64_t timeout_ns)
{
	struct timespec ts = ktime_timespec(ktime_mono_ns() + timeout_ns);
	pthread_mutex_lock(&t->lock);
	if (!t->kicked)
		pthread_cond_timedwait(&t->kick, &t->lock, &ts);
	t->kicked = false;
	pthread_mutex_unlock(&t->lock);
}

void actsvc_totals(struct actsvc_table *t, int *ret_held, size_t *ret_services)
{
	int held = 0;
	size_t n = 0;
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n; i++) {
		pthread_mutex_lock(&t->s[i]->lock);
		held += t->s[i]->held;
		if (t->s[i]->refs > 0 || t->s[i]->held > 0)
			n++;
		pthread_mutex_unlock(&t->s[i]->lock);
	}
	pthread_mutex_unlock(&t->lock);
	*ret_held = held;
	*ret_services = n;
}
