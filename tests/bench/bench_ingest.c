/*
 * bench_ingest: watch events decoded and applied per second by an informer
 * (informer_feed: split lines, json-c decode, project, publish, index,
 * notify a handler), from a stream built in memory before timing.
 *
 * The stream is what a kube-apiserver sends on a Pod watch: one
 * {"type":...,"object":POD} per line, each POD the recorded Pod of
 * tests/data/pod.json with its own name, uid, owner (3000 ReplicaSets,
 * 1000 services), node (1000), IP and an increasing resourceVersion. First
 * N/2 ADDED, then N/2 of a churn mix: 70% MODIFIED, 15% DELETED and 15%
 * ADDED of new pods. It is fed in 16 KiB pieces (curl's write size), so
 * most events arrive split across two pieces, as they do from the network.
 *
 * Before timing, the recorded watch stream (tests/data/watch-pods.jsonl)
 * is fed to another informer, and one synthetic event and the recorded
 * Pod are checked to project the same way; a mismatch fails the run.
 *
 * Then a fifth of the events again, with 3000 and with 30 ReplicaSets: the
 * difference is the secondary indexes' cost per pod sharing an owner.
 *
 * Environment: BENCH_N events (default 100000).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "informer.h"
#include "intern.h"
#include "kinds.h"
#include "kube.h"
#include "podgen.h"
#include "ratelimit.h"
#include "ktime.h"
#include "keys.h"

#define PIECE 16384
/* The cluster of podgen.h; and the same with 30 ReplicaSets, on a fifth of
 * the events, to show what index maintenance costs as pods per owner grow. */
#define OWNERS PODGEN_OWNERS
#define FEW_OWNERS 30
#define FEW_DIVISOR 5

/* How the API server opens a Pod watch event (and so must we). */
static const char event_open[] = "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\","
				 "\"metadata\":{\"name\":";

struct stream {
	char *buf;
	size_t len, cap;
	size_t mixed_at; /* where the churn mix begins */
	unsigned owners;
	unsigned long n, n_add, n_mod, n_del;
	unsigned long live; /* pods left when it ends ... */
	uint64_t *live_ids; /* ... in the order they were added */
};

struct counts {
	unsigned long add, update, del;
};

struct env {
	struct kube_client *client;
	struct intern *interns;
	struct informer_set *set;
	struct informer *inf;
	struct counts counts;
};

static void on_event(void *ud, enum informer_event ev, const struct cache_obj *old,
		     const struct cache_obj *obj)
{
	struct counts *c = ud;

	(void)old;
	(void)obj;
	if (ev == INFORMER_ADD)
		c->add++;
	else if (ev == INFORMER_UPDATE)
		c->update++;
	else if (ev == INFORMER_DELETE)
		c->del++;
}

/* ---- the informer, with a client that never connects ------------------ */

static void env_free(struct env *e)
{
	informer_set_free(e->set);
	kube_client_free(e->client);
	intern_free(e->interns);
	memset(e, 0, sizeof(*e));
}

static int env_new(struct env *e)
{
	static const struct informer_options o = { .kind = &kind_pods };
	char server[] = "https://127.0.0.1:1";
	struct kube_auth auth = { .server = server };
	int r;

	memset(e, 0, sizeof(*e));
	r = kube_client_new(&auth, NULL, &e->client);
	if (r == 0)
		r = intern_new(&e->interns);
	if (r == 0)
		r = informer_set_new(e->client, e->interns, NULL, &e->set);
	if (r == 0)
		r = informer_add(e->set, &o, &e->inf);
	if (r == 0)
		r = informer_add_handler(e->inf, on_event, &e->counts);
	if (r < 0)
		env_free(e);
	return r;
}

/* ---- the stream -------------------------------------------------------- */

static int stream_event(struct stream *s, const struct podgen *g, const char *type,
			const struct podgen_pod *p)
{
	size_t need = podgen_max_event(g), n;

	if (s->len + need > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : need * 1024;
		char *nb = realloc(s->buf, cap);

		if (!nb)
			return -ENOMEM;
		s->buf = nb;
		s->cap = cap;
	}
	n = podgen_event(g, type, p, s->buf + s->len, s->cap - s->len);
	if (n == 0)
		return -E2BIG;
	s->len += n;
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int stream_build(struct stream *s, const struct podgen *g, unsigned long n, unsigned owners)
{
	uint64_t *live = malloc(n * sizeof(*live)), next_id = 0, rv = 1000, seed = 42;
	unsigned long n_live = 0;
	int r = 0;

	if (!live)
		return -ENOMEM;
	memset(s, 0, sizeof(*s));
	s->n = n;
	s->owners = owners;
	for (unsigned long i = 0; i < n && r == 0; i++) {
		unsigned dice = (unsigned)(podgen_rand(&seed) % 100);
		struct podgen_pod p;

		if (i == n / 2)
			s->mixed_at = s->len;
		if (i < n / 2 || n_live == 0 || dice >= 85) {
			p = podgen_pod_of(next_id++, ++rv, owners);
			live[n_live++] = p.id;
			r = stream_event(s, g, "ADDED", &p);
			s->n_add++;
			continue;
		}
		unsigned long k = (unsigned long)(podgen_rand(&seed) % n_live);
		p = podgen_pod_of(live[k], ++rv, owners);
		if (dice < 70) {
			r = stream_event(s, g, "MODIFIED", &p);
			s->n_mod++;
		} else {
			r = stream_event(s, g, "DELETED", &p);
			live[k] = live[--n_live];
			s->n_del++;
		}
	}
	if (n / 2 == 0)
		s->mixed_at = 0;
	/* Ids grow with each ADDED and updates keep their index entries. */
	qsort(live, n_live, sizeof(*live), cmp_id);
	s->live = n_live;
	s->live_ids = live;
	return r;
}

static int feed(struct informer *inf, const char *p, size_t len)
{
	for (size_t off = 0; off < len; off += PIECE) {
		int r = informer_feed(inf, p + off, len - off < PIECE ? len - off : PIECE);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- checks before timing ---------------------------------------------- */

/* The recorded stream: 3 pods added, 13 updates, 2 deleted. */
static int check_recorded(void)
{
	size_t len;
	char *rec = podgen_read_file(KINFER_TEST_DATA "/watch-pods.jsonl", &len);
	struct informer_stats st;
	struct env e;
	int r;

	if (!rec)
		return -errno;
	r = env_new(&e);
	if (r == 0)
		r = feed(e.inf, rec, len);
	if (r == 0) {
		informer_stats(e.inf, &st);
		if (st.events != 18 || e.counts.add != 3 || e.counts.update != 13 ||
		    e.counts.del != 2 || cache_count(informer_cache(e.inf)) != 1) {
			fprintf(stderr,
				"bench_ingest: recorded stream: %llu events, "
				"%lu/%lu/%lu add/update/delete\n",
				(unsigned long long)st.events, e.counts.add, e.counts.update,
				e.counts.del);
			r = -EPROTO;
		}
	}
	if (r == 0 && strncmp(rec, event_open, sizeof(event_open) - 1) != 0)
		r = -EPROTO;
	if (e.set)
		env_free(&e);
	free(rec);
	return r;
}

static bool same_str(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/*
 * A synthetic pod and the recorded one project alike: equal where the
 * generator keeps the recording, the generated values where it varies.
 */
static int check_synthetic(const struct podgen *g)
{
	struct podgen_pod p = podgen_pod_of(12345, 777, OWNERS);
	struct podgen_values v;
	size_t raw_len, cap = podgen_max_event(g) + 64, n;
	const char *raw = podgen_raw(g, &raw_len);
	char *buf = malloc(cap + raw_len), key[128], ub[CACHE_UID_MAX], rb[CACHE_RV_MAX],
	     ipb[KPOD_IP_MAX];
	const struct kpod *a, *b;
	struct env e;
	int r;

	if (!buf)
		return -ENOMEM;
	n = (size_t)snprintf(buf, cap, "{\"type\":\"ADDED\",\"object\":%s}\n", raw);
	n += podgen_event(g, "ADDED", &p, buf + n, cap + raw_len - n);
	r = env_new(&e);
	if (r == 0)
		r = informer_feed(e.inf, buf, n);
	free(buf);
	if (r < 0)
		goto out;
	podgen_values(&p, &v);
	podgen_key(&p, key, sizeof(key));
	cache_read_lock();
	a = (const void *)cache_get(informer_cache(e.inf), "default/llm-7b-7bc4475f95-z975p");
	b = (const void *)cache_get(informer_cache(e.inf), key);
	if (!a || !b ||
	    /* kept from the recording */
	    a->meta.created != b->meta.created || a->phase != b->phase || a->ready != b->ready ||
	    a->containers_ready_since != b->containers_ready_since ||
	    a->containers_ready != b->containers_ready || a->scheduled != b->scheduled ||
	    a->warmed != b->warmed || a->has_gate != b->has_gate || a->started != b->started ||
	    a->gpu != b->gpu || a->cpu_milli != b->cpu_milli || a->mem_bytes != b->mem_bytes ||
	    a->restarts != b->restarts || a->deletion_cost != b->deletion_cost ||
	    a->scheduler != b->scheduler || a->gpu_resource != b->gpu_resource || !a->gpu_resource ||
	    a->warm_reason != b->warm_reason || !same_str(a->meta.controller_kind, "ReplicaSet") ||
	    a->meta.controller_kind != b->meta.controller_kind ||
	    /* generated */
	    !same_str(cache_obj_uid(&b->meta, ub), v.uid) ||
	    !same_str(cache_obj_rv(&b->meta, rb), v.rv) || !same_str(b->node, v.node) ||
	    !same_str(kpod_ip(b, ipb), v.ip) || !same_str(b->service, v.service) ||
	    !same_str(kpod_template_hash(b), v.hash) ||
	    !same_str(b->meta.controller_name, v.owner_name) ||
	    !same_str(b->meta.controller_uid, v.owner_uid))
		r = -EPROTO;
	cache_read_unlock();
out:
	if (e.set)
		env_free(&e);
	return r;
}

/* ---- timing ------------------------------------------------------------ */

/* CPU time of every thread of the process (the informer's, call_rcu's). */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* json-c alone on every line: how much of an event is decoding (CPU). */
static double parse_only_ns(const struct stream *s)
{
	json_tokener *tok = json_tokener_new();
	uint64_t t0;
	unsigned long n = 0;

	if (!tok)
		return 0;
	t0 = cpu_ns();
	for (const char *p = s->buf, *end = s->buf + s->len, *nl; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		json_tokener_reset(tok);
		json_object_put(json_tokener_parse_ex(tok, p, (int)(nl - p)));
		n++;
	}
	t0 = cpu_ns() - t0;
	json_tokener_free(tok);
	return n ? (double)t0 / (double)n : 0;
}

/*
 * Feed the stream to a fresh informer: wall ns for the ADDED half and for
 * the rest, and CPU ns for both (which other load on the machine does not
 * inflate).
 */
static int ingest(const struct stream *s, uint64_t *ret_added_ns, uint64_t *ret_churn_ns,
		  uint64_t *ret_cpu_ns)
{
	struct env e;
	uint64_t t0, t1, t2, c0;
	int r = env_new(&e);

	if (r < 0)
		return r;
	c0 = cpu_ns();
	t0 = ktime_mono_ns();
	r = feed(e.inf, s->buf, s->mixed_at);
	t1 = ktime_mono_ns();
	if (r == 0)
		r = feed(e.inf, s->buf + s->mixed_at, s->len - s->mixed_at);
	t2 = ktime_mono_ns();
	*ret_cpu_ns = cpu_ns() - c0;
	if (r == 0 && (e.counts.add != s->n_add || e.counts.update != s->n_mod ||
		       e.counts.del != s->n_del || cache_count(informer_cache(e.inf)) != s->live)) {
		fprintf(stderr,
			"bench_ingest: applied %lu/%lu/%lu add/update/delete, "
			"expected %lu/%lu/%lu\n",
			e.counts.add, e.counts.update, e.counts.del, s->n_add, s->n_mod, s->n_del);
		r = -EPROTO;
	}
	podgen_drain(informer_cache(e.inf), s->live_ids, s->live, s->owners);
	env_free(&e);
	*ret_added_ns = t1 - t0;
	*ret_churn_ns = t2 - t1;
	return r;
}

static void stream_free(struct stream *s)
{
	free(s->buf);
	free(s->live_ids);
	memset(s, 0, sizeof(*s));
}

/* Build a stream and check it opens as the server's does. */
static int stream_make(struct stream *s, const struct podgen *g, unsigned long n, unsigned owners)
{
	int r = stream_build(s, g, n, owners);

	if (r == 0 && strncmp(s->buf, event_open, sizeof(event_open) - 1) != 0)
		r = -EPROTO;
	return r;
}

static int run(const struct podgen *g, unsigned long n)
{
	struct stream s;
	uint64_t added, churn, cpu;
	unsigned long n_first = n / 2, n_few = n / FEW_DIVISOR ? n / FEW_DIVISOR : 1;
	int r = stream_make(&s, g, n, OWNERS);

	if (r == 0)
		r = ingest(&s, &added, &churn, &cpu);
	if (r < 0) {
		stream_free(&s);
		return r;
	}
	double secs = (double)(added + churn) / 1e9;
	printf("ingest_events %lu events\n", s.n);
	printf("ingest_stream_bytes %zu bytes\n", s.len);
	printf("ingest_bytes_per_event %.0f bytes\n", (double)s.len / (double)s.n);
	printf("ingest_events_per_s %.0f events/s\n", (double)s.n / secs);
	printf("ingest_mb_per_s %.1f MB/s\n", (double)s.len / 1e6 / secs);
	printf("ingest_ns_per_event %.0f ns\n", (double)(added + churn) / (double)s.n);
	printf("ingest_cpu_ns_per_event %.0f ns\n", (double)cpu / (double)s.n);
	if (n_first)
		printf("ingest_added_phase_ns_per_event %.0f ns\n", (double)added / (double)n_first);
	if (s.n > n_first)
		printf("ingest_churn_phase_ns_per_event %.0f ns\n",
		       (double)churn / (double)(s.n - n_first));
	printf("ingest_json_parse_only_cpu_ns_per_event %.0f ns\n", parse_only_ns(&s));
	stream_free(&s);

	printf("ingest_fifth_events %lu events\n", n_few);
	for (int i = 0; i < 2 && r == 0; i++) {
		unsigned owners = i == 0 ? OWNERS : FEW_OWNERS;

		r = stream_make(&s, g, n_few, owners);
		if (r == 0)
			r = ingest(&s, &added, &churn, &cpu);
		if (r == 0)
			printf("ingest_fifth_%u_owners_cpu_ns_per_event %.0f ns\n", owners,
			       (double)cpu / (double)s.n);
		stream_free(&s);
	}
	return r;
}

int main(void)
{
	unsigned long n = podgen_env_n(100000);
	struct podgen *g = NULL;
	int r;

	keys_register();
	rcu_register_thread();
	r = podgen_new(KINFER_TEST_DATA "/pod.json", &g);
	if (r < 0) {
		fprintf(stderr, "bench_ingest: %s/pod.json: %s\n", KINFER_TEST_DATA, strerror(-r));
		goto out;
	}
	r = check_recorded();
	if (r < 0) {
		fprintf(stderr, "bench_ingest: recorded watch stream: %s\n", strerror(-r));
		goto out;
	}
	r = check_synthetic(g);
	if (r < 0) {
		fprintf(stderr, "bench_ingest: synthetic pod projects differently: %s\n",
			strerror(-r));
		goto out;
	}
	r = run(g, n);
	if (r < 0)
		fprintf(stderr, "bench_ingest: %s\n", strerror(-r));
out:
	podgen_free(g);
	rcu_unregister_thread();
	return r < 0 ? 1 : 0;
}
