/*
 * Leader election. One thread runs the loop:
 *
 *   ACQUIRING  try every retry period (jittered) until we hold the lease
 *   LEADING    renew every retry period; if no renewal succeeded for
 *              renewDeadline, leadership is lost
 *
 * try_acquire_or_renew is client-go's tryAcquireOrRenew: GET (create if
 * absent), remember when the record last changed, refuse while another
 * holder's lease is valid by our clock, else PUT ourselves with the
 * resourceVersion we read.
 */
#include "leader.h"

#include "backoff.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "ktime.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct leader {
	struct kube_client *client;
	struct leader_options o;
	char *ns, *name, *identity;
	pthread_t thread;
	bool running;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	atomic_bool leading;
	struct leader_record observed;
	uint64_t observed_at; /* monotonic ns when observed changed */
	bool have_observed;
	uint64_t rng;
	struct metric_series *m_leader;
};

static const struct metric_family fam_leader = { "kinfer_leader",
						 "1 when this replica holds the leader lease, else 0.",
						 METRIC_GAUGE,
						 NULL,
						 NULL,
						 0 };

/* ---- records ----------------------------------------------------------- */

void leader_record_read(json_object *lease, struct leader_record *r)
{
	json_object *spec, *v;
	memset(r, 0, sizeof(*r));
	if (!json_object_object_get_ex(lease, "spec", &spec))
		return;
	if (json_object_object_get_ex(spec, "holderIdentity", &v) && v)
		snprintf(r->holder, sizeof(r->holder), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(spec, "leaseDurationSeconds", &v))
		r->duration_s = json_object_get_int(v);
	if (json_object_object_get_ex(spec, "renewTime", &v))
		r->renew_us = ktime_parse_rfc3339_us(json_object_get_string(v));
	if (json_object_object_get_ex(spec, "acquireTime", &v))
		r->acquire_us = ktime_parse_rfc3339_us(json_object_get_string(v));
	if (json_object_object_get_ex(spec, "leaseTransitions", &v))
		r->transitions = json_object_get_int(v);
}

static bool same_record(const struct leader_record *a, const struct leader_record *b)
{
	return strcmp(a->holder, b->holder) == 0 && a->duration_s == b->duration_s &&
	       a->renew_us == b->renew_us && a->acquire_us == b->acquire_us &&
	       a->transitions == b->transitions;
}

static json_object *lease_body(struct leader *l, const struct leader_record *r, const char *rv)
{
	json_object *o = json_object_new_object(), *meta = json_object_new_object(),
		    *spec = json_object_new_object();
	char t[64];

	json_object_object_add(o, "apiVersion", json_object_new_string("coordination.k8s.io/v1"));
	json_object_object_add(o, "kind", json_object_new_string("Lease"));
	json_object_object_add(meta, "name", json_object_new_string(l->name));
	json_object_object_add(meta, "namespace", json_object_new_string(l->ns));
	if (rv)
		json_object_object_add(meta, "resourceVersion", json_object_new_string(rv));
	json_object_object_add(o, "metadata", meta);
	json_object_object_add(spec, "holderIdentity", json_object_new_string(r->holder));
	json_object_object_add(spec, "leaseDurationSeconds", json_object_new_int((int)r->duration_s));
	ktime_format_micro(r->acquire_us, t, sizeof(t));
	json_object_object_add(spec, "acquireTime", json_object_new_string(t));
	ktime_format_micro(r->renew_us, t, sizeof(t));
	json_object_object_add(spec, "renewTime", json_object_new_string(t));
	json_object_object_add(spec, "leaseTransitions", json_object_new_int((int)r->transitions));
	json_object_object_add(o, "spec", spec);
	return o;
}

static void observe(struct leader *l, const struct leader_record *r)
{
	if (!l->have_observed || !same_record(&l->observed, r)) {
		l->observed = *r;
		l->observed_at = ktime_mono_ns();
		l->have_observed = true;
	}
}

enum leader_step leader_decide(const struct leader_record *cur, const char *identity,
			       long duration_s, uint64_t observed_at, uint64_t now_ns, int64_t now_us,
			       struct leader_record *ret_want, uint64_t *ret_expires_in)
{
	bool mine = strcmp(cur->holder, identity) == 0;
	uint64_t valid_for = (uint64_t)(cur->duration_s > 0 ? cur->duration_s : duration_s) *
			     KTIME_NSEC_PER_SEC;

	if (cur->holder[0] && !mine && now_ns < observed_at + valid_for) {
		*ret_expires_in = observed_at + valid_for - now_ns;
		return LEADER_WAIT; /* someone else holds a valid lease */
	}
	memset(ret_want, 0, sizeof(*ret_want));
	snprintf(ret_want->holder, sizeof(ret_want->holder), "%s", identity);
	ret_want->duration_s = duration_s;
	ret_want->renew_us = now_us;
	if (mine) {
		ret_want->acquire_us = cur->acquire_us;
		ret_want->transitions = cur->transitions;
		return LEADER_RENEW;
	}
	ret_want->acquire_us = now_us;
	ret_want->transitions = cur->transitions + 1;
	return LEADER_ACQUIRE;
}

/*
 * client-go tryAcquireOrRenew. Returns true when we hold the lease; when
 * another holder's lease is valid, *ret_expires_in says for how long.
 */
static bool try_acquire_or_renew(struct leader *l, uint64_t *ret_expires_in)
{
	struct leader_record want = { 0 }, cur;
	struct kube_status st;
	json_object *lease = NULL, *body;
	long duration_s = (long)(l->o.lease_ns / KTIME_NSEC_PER_SEC);
	int64_t now = ktime_wall_us();
	bool ok = false;
	int r;

	snprintf(want.holder, sizeof(want.holder), "%s", l->identity);
	want.duration_s = duration_s;
	want.renew_us = now;
	want.acquire_us = now;

	r = kube_get(l->client, &kube_res_leases, l->ns, l->name, NULL, &lease, &st);
	if (r == -ENOENT) {
		body = lease_body(l, &want, NULL);
		r = kube_create(l->client, &kube_res_leases, l->ns, NULL, NULL, body, NULL, NULL,
				&st);
		json_object_put(body);
		if (r == 0)
			observe(l, &want);
		return r == 0;
	}
	if (r < 0) {
		log_warn("cannot read the leader lease", "lease=%s/%s error=%s", l->ns, l->name,
			 st.message);
		return false;
	}
	leader_record_read(lease, &cur);
	observe(l, &cur);
	if (leader_decide(&cur, l->identity, duration_s, l->observed_at, ktime_mono_ns(), now,
			  &want, ret_expires_in) == LEADER_WAIT)
		goto out;
	json_object *meta = json_object_object_get(lease, "metadata");
	const char *rv = json_object_get_string(json_object_object_get(meta, "resourceVersion"));
	body = lease_body(l, &want, rv);
	r = kube_update(l->client, &kube_res_leases, l->ns, l->name, NULL, body, NULL, NULL, &st);
	json_object_put(body);
	if (r == 0) {
		observe(l, &want);
		ok = true;
	} else if (r != -ESTALE) {
		log_warn("cannot write the leader lease", "lease=%s/%s error=%s", l->ns, l->name,
			 st.message);
	}
out:
	json_object_put(lease);
	return ok;
}

/* Sleep up to ns, waking early on stop. Returns true when stopping. */
static bool nap(struct leader *l, uint64_t ns)
{
	struct timespec ts = ktime_deadline(CLOCK_MONOTONIC, ns);
	bool stop;
	pthread_mutex_lock(&l->lock);
	while (!l->stop && pthread_cond_timedwait(&l->cond, &l->lock, &ts) == 0)
		;
	stop = l->stop;
	pthread_mutex_unlock(&l->lock);
	return stop;
}

static bool stopping(struct leader *l)
{
	pthread_mutex_lock(&l->lock);
	bool s = l->stop;
	pthread_mutex_unlock(&l->lock);
	return s;
}

static void set_leading(struct leader *l, bool on)
{
	atomic_store(&l->leading, on);
	metric_set(l->m_leader, on ? 1 : 0);
}

static void *election_main(void *ud)
{
	struct leader *l = ud;

	for (;;) {
		/* ACQUIRING: retry every period (jittered), or right when the
		 * holder's lease runs out if that comes sooner. */
		for (;;) {
			uint64_t expires_in = UINT64_MAX;
			if (try_acquire_or_renew(l, &expires_in))
				break;
			uint64_t wait = l->o.retry_ns + (uint64_t)(backoff_rand01(&l->rng) *
								   (double)l->o.retry_ns * 0.2);
			if (expires_in + 50 * KTIME_NSEC_PER_MSEC < wait)
				wait = expires_in + 50 * KTIME_NSEC_PER_MSEC;
			if (nap(l, wait))
				return NULL;
		}
		set_leading(l, true);
		log_info("became the leader", "lease=%s/%s identity=%s", l->ns, l->name, l->identity);
		if (l->o.on_started)
			l->o.on_started(l->o.ud);
		/* LEADING */
		uint64_t last_renew = ktime_mono_ns();
		for (;;) {
			if (nap(l, l->o.retry_ns))
				return NULL;
			uint64_t unused;
			if (try_acquire_or_renew(l, &unused)) {
				last_renew = ktime_mono_ns();
				continue;
			}
			if (ktime_mono_ns() - last_renew >= l->o.renew_deadline_ns)
				break;
		}
		set_leading(l, false);
		log_error("lost the leader lease", "lease=%s/%s identity=%s", l->ns, l->name,
			  l->identity);
		if (l->o.on_stopped)
			l->o.on_stopped(l->o.ud);
		if (stopping(l))
			return NULL;
	}
}

int leader_new(struct kube_client *c, const struct leader_options *o, struct leader **ret)
{
	struct leader *l;
	char host[128], id[256];

	if (!o->namespace || !o->name)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	l->client = c;
	l->o = *o;
	if (!l->o.lease_ns)
		l->o.lease_ns = 15 * KTIME_NSEC_PER_SEC;
	if (!l->o.renew_deadline_ns)
		l->o.renew_deadline_ns = 10 * KTIME_NSEC_PER_SEC;
	if (!l->o.retry_ns)
		l->o.retry_ns = 2 * KTIME_NSEC_PER_SEC;
	l->rng = backoff_seed();
	if (!o->identity) {
		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "kinfer");
		host[sizeof(host) - 1] = '\0';
		snprintf(id, sizeof(id), "%s_%08llx", host,
			 (unsigned long long)(backoff_rand01(&l->rng) * 4294967295.0));
	}
	l->ns = strdup(o->namespace);
	l->name = strdup(o->name);
	l->identity = strdup(o->identity ? o->identity : id);
	if (!l->ns || !l->name || !l->identity) {
		leader_free(l);
		return -ENOMEM;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_destroy(&l->cond);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	l->m_leader = metrics_series(o->metrics, &fam_leader, NULL);
	metric_set(l->m_leader, 0);
	*ret = l;
	return 0;
}

int leader_start(struct leader *l)
{
	if (l->running)
		return -EALREADY;
	if (pthread_create(&l->thread, NULL, election_main, l) != 0)
		return -EAGAIN;
	l->running = true;
	return 0;
}

bool leader_is_leader(struct leader *l)
{
	return atomic_load(&l->leading);
}

const char *leader_identity(const struct leader *l)
{
	return l->identity;
}

/* Give the lease up: empty holder, so a standby need not wait. */
static void release(struct leader *l)
{
	struct leader_record r = { 0 };
	struct kube_status st;
	json_object *lease = NULL;

	if (kube_get(l->client, &kube_res_leases, l->ns, l->name, NULL, &lease, &st) < 0)
		return;
	leader_record_read(lease, &r);
	if (strcmp(r.holder, l->identity) == 0) {
		const char *rv = json_object_get_string(
			json_object_object_get(json_object_object_get(lease, "metadata"),
					       "resourceVersion"));
		r.holder[0] = '\0';
		r.duration_s = 1;
		r.renew_us = r.acquire_us = ktime_wall_us();
		json_object *body = lease_body(l, &r, rv);
		if (kube_update(l->client, &kube_res_leases, l->ns, l->name, NULL, body, NULL, NULL,
				&st) == 0)
			log_info("released the leader lease", "lease=%s/%s", l->ns, l->name);
		else
			log_warn("cannot release the leader lease", "lease=%s/%s error=%s", l->ns,
				 l->name, st.message);
		json_object_put(body);
	}
	json_object_put(lease);
}

void leader_stop(struct leader *l)
{
	if (!l || !l->running)
		return;
	pthread_mutex_lock(&l->lock);
	l->stop = true;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	pthread_join(l->thread, NULL);
	l->running = false;
	if (atomic_load(&l->leading)) {
		release(l);
		set_leading(l, false);
	}
}

void leader_free(struct leader *l)
{
	if (!l)
		return;
	leader_stop(l);
	free(l->ns);
	free(l->name);
	free(l->identity);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cond);
	free(l);
}
