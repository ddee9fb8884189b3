/*
 * kinfer-loadgen: an open-loop load generator for the local control plane.
 *
 * On the local control plane pod IPs are loopback addresses, which the API
 * server refuses in EndpointSlices, so Services have no endpoints. The load
 * generator therefore does what kube-proxy would do from EndpointSlices: it
 * follows the pods of --selector with kinfer's own informer (a projection
 * of its own) and sends each request to the next Ready pod, round-robin by
 * name. The ready set is read from the cache for every request, so a
 * readiness change is followed as soon as the watch delivers it
 * (milliseconds). With no Ready pod a request counts as no_endpoint and is
 * not sent, as a Service without endpoints refuses the connection.
 *
 * --all-running instead sends to every Running pod, Ready or not and even
 * while it terminates: a naive load balancer with no warm-up gate and no
 * drain, for tests that show what kinfer prevents.
 *
 * Requests are scheduled open loop at --rps by one thread driving a curl
 * multi handle; at most --concurrency-limit are in flight, a request due
 * beyond that counts as dropped_overload. A run is bounded: rps * duration
 * requests, then at most --timeout (+1 s) for those in flight. SIGINT or
 * SIGTERM stops issuing; a second one abandons the requests in flight.
 *
 * Loopback only: a pod IP outside 127.0.0.0/8 is never sent to; its
 * requests count as not_loopback.
 *
 * --service IP:PORT instead sends every request to a Service's ClusterIP,
 * as a client behind kube-proxy does (the real node, run in its network
 * namespace): no API server, no pod following. Only ClusterIPs of
 * 198.19.0.0/16 (the local cluster's service range) are accepted.
 *
 * The summary goes to stdout, one `name value` per line and a final JSON
 * line; logs go to stderr. requests = sent + no_endpoint + dropped_overload
 * + not_loopback, and sent = ok + failed; the latencies (p50, p99, max)
 * are those of every sent request, whatever its outcome. Every request's outcome can go to --out as one
 * JSON line each.
 */
#include "cache.h"
#include "flags.h"
#include "informer.h"
#include "kinds.h"
#include "kube.h"
#include "kubeconfig.h"
#include "log.h"
#include "simpod.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_RPS 5000.0
#define MAX_DURATION_MS (10L * 60 * 1000)
#define MAX_CONCURRENCY 10000
#define MAX_BODY (1024 * 1024)
#define MAX_PODS 1024 /* distinct pods counted in the summary */
#define SYNC_TIMEOUT_NS (30ULL * 1000000000ULL)

struct cfg {
	const char *kubeconfig;
	const char *ns;
	const char *selector;
	double rps;
	long duration_ms;
	int concurrency;
	const char *path;
	const char *body;
	int port; /* 0 = the pod's port, else 8000 */
	long timeout_ms;
	const char *out;
	bool all_running;
	long lag_ms;         /* endpoint propagation delay to model */
	const char *service; /* IP:PORT of a ClusterIP, or NULL */
	const char *host;    /* Host header, or NULL: curl's (the address) */
};
static char svc_ip[64];
static int svc_port;

/* The load generator's projection of a pod: where to send, and whether to. */
struct lgpod {
	struct cache_obj meta;
	const char *ip;
	int32_t port;
	uint8_t running, ready;
};

static int project(struct cache_proj *p, json_object *j, struct cache_obj *o)
{
	struct lgpod *s = (struct lgpod *)o;
	const char *phase = cache_json_str(j, "status.phase");

	cache_proj_str(p, &s->ip, cache_json_str(j, "status.podIP"));
	s->running = phase && strcmp(phase, "Running") == 0;
	s->ready = kinds_cond(cache_json_get(j, "status.conditions"), "Ready", NULL, NULL) ==
		   KCOND_TRUE;
	s->port = simpod_http_port(j);
	return 0;
}

static const struct cache_kind kind_lgpods = {
	.name = "Pod",
	.res = &kube_res_pods,
	.size = sizeof(struct lgpod),
	.project = project,
};

/* One request in flight: a slot of a fixed pool. */
struct slot {
	CURL *h;
	int pod; /* index into run.pods */
	char ip[64];
	uint64_t sent_ns;
	struct slot *next_free;
};

/* What happened to the requests of one pod. */
struct podstat {
	char name[254];
	long sent, ok, failed;
	long first_ms, last_ms;
};

/* The whole run; owned by the one thread that drives it. */
struct run {
	struct cfg cfg;
	struct cache *pods_cache;
	CURLM *multi;
	struct curl_slist *headers;
	struct slot *slots, *free_slots;
	int in_flight;
	FILE *out;
	uint64_t t0_ns;
	int64_t t0_unix_ms;
	char last_pod[254]; /* round-robin position: the last name served */
	long requests, sent, ok, failed, no_endpoint, dropped, not_loopback;
	uint32_t *lat_us; /* latencies of the sent requests, capped */
	long n_lat, cap_lat;
	struct podstat *pods;
	int n_pods;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static long ms_since_start(const struct run *r, uint64_t t)
{
	return (long)((t - r->t0_ns) / 1000000ULL);
}

/* ---- choosing a pod ------------------------------------------------------ */

struct pick {
	const struct run *run;
	const struct lgpod *first, *next; /* smallest name; smallest after last_pod */
};

/*
 * Endpoint propagation delay: in a real cluster a pod that leaves Ready or
 * starts terminating still gets traffic until the change reaches every
 * kube-proxy (around a second or more). With --endpoint-lag, a pod stays
 * eligible that long after it stopped being so; the informer's handler
 * records when (local clock).
 */
#define MAX_LAGGED 4096
static struct {
	char name[254];
	uint64_t left_ns;
} lagged[MAX_LAGGED];
static int n_lagged;
static pthread_mutex_t lag_lock = PTHREAD_MUTEX_INITIALIZER;
static long lag_ms;

static bool base_eligible(bool all_running, const struct lgpod *p)
{
	if (!p->ip || !*p->ip)
		return false;
	if (all_running)
		return p->running;
	return p->ready && !p->meta.deleted;
}

static uint64_t now_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void on_pod_change(void *ud, enum informer_event ev, const struct cache_obj *old,
			  const struct cache_obj *obj)
{
	const bool *all_running = ud;
	const struct lgpod *o = (const struct lgpod *)old, *n = (const struct lgpod *)obj;
	if (ev != INFORMER_UPDATE || !o || !n)
		return;
	bool was = base_eligible(*all_running, o), is = base_eligible(*all_running, n);
	pthread_mutex_lock(&lag_lock);
	int i;
	for (i = 0; i < n_lagged; i++)
		if (strcmp(lagged[i].name, cache_obj_name(obj)) == 0)
			break;
	if (was && !is) {
		if (i == n_lagged && n_lagged < MAX_LAGGED)
			n_lagged++;
		if (i < n_lagged) {
			snprintf(lagged[i].name, sizeof(lagged[i].name), "%s", cache_obj_name(obj));
			lagged[i].left_ns = now_mono_ns();
		}
	} else if (is && i < n_lagged) {
		lagged[i] = lagged[--n_lagged];
	}
	pthread_mutex_unlock(&lag_lock);
}

static bool eligible(const struct run *r, const struct lgpod *p)
{
	bool ok = base_eligible(r->cfg.all_running, p);
	if (ok || lag_ms <= 0 || !p->ip || !*p->ip || !p->running)
		return ok;
	pthread_mutex_lock(&lag_lock);
	for (int i = 0; i < n_lagged; i++)
		if (strcmp(lagged[i].name, cache_obj_name(&p->meta)) == 0 &&
		    now_mono_ns() - lagged[i].left_ns < (uint64_t)lag_ms * 1000000ULL) {
			ok = true;
			break;
		}
	pthread_mutex_unlock(&lag_lock);
	return ok;
}

static int pick_one(const struct cache_obj *o, void *ud)
{
	struct pick *k = ud;
	const struct lgpod *p = (const struct lgpod *)o;
	if (!eligible(k->run, p))
		return 0;
	if (!k->first || strcmp(cache_obj_name(o), cache_obj_name(&k->first->meta)) < 0)
		k->first = p;
	if (strcmp(cache_obj_name(o), k->run->last_pod) > 0 &&
	    (!k->next || strcmp(cache_obj_name(o), cache_obj_name(&k->next->meta)) < 0))
		k->next = p;
	return 0;
}

/*
 * The next pod round-robin by name among the eligible ones, copied out of
 * the cache inside one read-side section. Returns false when there is none.
 */
static bool pick_pod(struct run *r, char *name, size_t name_len, char *ip, size_t ip_len,
		     int *ret_port)
{
	struct pick k = { .run = r };
	const struct lgpod *p;
	bool found = false;

	cache_read_lock();
	cache_foreach(r->pods_cache, pick_one, &k);
	p = k.next ? k.next : k.first;
	if (p) {
		snprintf(name, name_len, "%s", cache_obj_name(&p->meta));
		snprintf(ip, ip_len, "%s", p->ip);
		*ret_port = p->port;
		found = true;
	}
	cache_read_unlock();
	if (found)
		snprintf(r->last_pod, sizeof(r->last_pod), "%s", name);
	return found;
}

static bool is_loopback(const char *ip)
{
	struct in_addr a;
	return inet_pton(AF_INET, ip, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* ---- recording ------------------------------------------------------------ */

/* The pod's row, added on first sight; -1 past MAX_PODS (counted nowhere). */
static int pod_row(struct run *r, const char *name, long t_ms)
{
	for (int i = 0; i < r->n_pods; i++)
		if (strcmp(r->pods[i].name, name) == 0)
			return i;
	if (r->n_pods >= MAX_PODS)
		return -1;
	struct podstat *s = &r->pods[r->n_pods];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->first_ms = t_ms;
	log_info("first request to pod", "pod=%s t_ms=%ld", name, t_ms);
	return r->n_pods++;
}

/* One line of --out. latency_ms < 0: the request was not sent. */
static void record(struct run *r, long t_ms, const char *pod, const char *ip, long status,
		   double latency_ms, const char *error)
{
	char lat[32];
	json_object *o;

	if (!r->out)
		return;
	o = json_object_new_object();
	if (!o)
		return;
	json_object_object_add(o, "t_ms", json_object_new_int64(t_ms));
	json_object_object_add(o, "pod", pod ? json_object_new_string(pod) : NULL);
	json_object_object_add(o, "ip", ip ? json_object_new_string(ip) : NULL);
	json_object_object_add(o, "status", json_object_new_int64(status));
	if (latency_ms >= 0) {
		snprintf(lat, sizeof(lat), "%.3f", latency_ms);
		json_object_object_add(o, "latency_ms", json_object_new_double_s(latency_ms, lat));
	} else {
		json_object_object_add(o, "latency_ms", NULL);
	}
	json_object_object_add(o, "error", error ? json_object_new_string(error) : NULL);
	fprintf(r->out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

/* ---- sending ------------------------------------------------------------- */

static size_t discard(char *ptr, size_t size, size_t n, void *ud)
{
	(void)ptr;
	(void)ud;
	return size * n;
}

/* Start one request to ip:port on a free slot. 0, or -ENOMEM. */
static int send_request(struct run *r, int pod, const char *ip, int port)
{
	struct slot *s = r->free_slots;
	char url[1024];

	s->h = curl_easy_init();
	if (!s->h)
		return -ENOMEM;
	snprintf(url, sizeof(url), "http://%s:%d%s", ip, port, r->cfg.path);
	curl_easy_setopt(s->h, CURLOPT_URL, url);
	curl_easy_setopt(s->h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->h, CURLOPT_TIMEOUT_MS, r->cfg.timeout_ms);
	curl_easy_setopt(s->h, CURLOPT_USERAGENT, "kinfer-loadgen/1");
	curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, r->cfg.body);
	curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
	if (curl_multi_add_handle(r->multi, s->h) != CURLM_OK) {
		curl_easy_cleanup(s->h);
		s->h = NULL;
		return -ENOMEM;
	}
	r->free_slots = s->next_free;
	s->pod = pod;
	snprintf(s->ip, sizeof(s->ip), "%s", ip);
	s->sent_ns = now_ns();
	r->in_flight++;
	r->sent++;
	if (pod >= 0)
		r->pods[pod].sent++;
	return 0;
}

/* The request due now: to the next pod, or counted as why it was not sent. */
static void issue(struct run *r)
{
	char name[254], ip[64];
	int port = 0, pod;
	long t_ms = ms_since_start(r, now_ns());

	r->requests++;
	if (svc_port > 0) {
		snprintf(name, sizeof(name), "service");
		snprintf(ip, sizeof(ip), "%s", svc_ip);
		port = svc_port;
	} else if (!pick_pod(r, name, sizeof(name), ip, sizeof(ip), &port)) {
		r->no_endpoint++;
		record(r, t_ms, NULL, NULL, 0, -1, "no_endpoint");
		return;
	}
	if (svc_port <= 0 && !is_loopback(ip)) {
		r->not_loopback++;
		record(r, t_ms, name, ip, 0, -1, "not loopback");
		return;
	}
	if (!r->free_slots) {
		r->dropped++;
		record(r, t_ms, name, ip, 0, -1, "dropped_overload");
		return;
	}
	if (r->cfg.port > 0)
		port = r->cfg.port;
	else if (port <= 0)
		port = 8000;
	pod = pod_row(r, name, t_ms);
	if (send_request(r, pod, ip, port) < 0) {
		/* Counted as sent and failed, so that sent = ok + failed holds. */
		r->sent++;
		r->failed++;
		record(r, t_ms, name, ip, 0, -1, "out of memory");
	}
}

/* A finished (or abandoned) request: its outcome, latency, and slot back. */
static void complete(struct run *r, struct slot *s, CURLcode cc, const char *why)
{
	long code = 0;
	const char *pod = s->pod >= 0 ? r->pods[s->pod].name : NULL;
	uint64_t end = now_ns();
	double ms = (double)(end - s->sent_ns) / 1e6;
	char err[128];
	bool ok;

	curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
	ok = cc == CURLE_OK && code >= 200 && code < 300;
	err[0] = 0;
	if (cc != CURLE_OK)
		snprintf(err, sizeof(err), "%s", why ? why : curl_easy_strerror(cc));
	else if (!ok)
		snprintf(err, sizeof(err), "HTTP %ld", code);
	if (ok)
		r->ok++;
	else
		r->failed++;
	if (s->pod >= 0) {
		struct podstat *ps = &r->pods[s->pod];
		if (ok)
			ps->ok++;
		else
			ps->failed++;
		ps->last_ms = ms_since_start(r, s->sent_ns);
	}
	if (r->n_lat < r->cap_lat)
		r->lat_us[r->n_lat++] = ms * 1000 > 4e9 ? 4000000000u : (uint32_t)(ms * 1000);
	record(r, ms_since_start(r, s->sent_ns), pod, s->ip, cc == CURLE_OK ? code : 0, ms,
	       err[0] ? err : NULL);
	curl_multi_remove_handle(r->multi, s->h);
	curl_easy_cleanup(s->h);
	s->h = NULL;
	s->next_free = r->free_slots;
	r->free_slots = s;
	r->in_flight--;
}

static void collect(struct run *r)
{
	CURLMsg *msg;
	int q, running;

	curl_multi_perform(r->multi, &running);
	while ((msg = curl_multi_info_read(r->multi, &q))) {
		struct slot *s = NULL;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
		complete(r, s, msg->data.result, NULL);
	}
}

/*
 * The run: issue every request at its time (t0 + i / rps) until rps *
 * duration were issued or a signal came, then wait for those in flight
 * until each one's --timeout (bounded again here, in case).
 */
static void drive(struct run *r, int sigfd)
{
	long total = (long)floor(r->cfg.rps * (double)r->cfg.duration_ms / 1000.0);
	double gap_ns = 1e9 / r->cfg.rps;
	uint64_t stop_ns = 0;
	int signals = 0;
	struct curl_waitfd wfd = { .fd = sigfd, .events = CURL_WAIT_POLLIN };

	r->t0_ns = now_ns();
	for (;;) {
		uint64_t now = now_ns();
		int wait_ms = 100, numfds;

		while (!stop_ns && r->requests < total &&
		       r->t0_ns + (uint64_t)((double)r->requests * gap_ns) <= now)
			issue(r);
		if (!stop_ns && r->requests >= total) {
			stop_ns = now;
			log_info("all requests issued, waiting for those in flight",
				 "requests=%ld in_flight=%d", r->requests, r->in_flight);
		}
		collect(r);
		if (stop_ns && (r->in_flight == 0 ||
				now > stop_ns + (uint64_t)(r->cfg.timeout_ms + 1000) * 1000000ULL))
			break;
		if (!stop_ns) {
			uint64_t due = r->t0_ns + (uint64_t)((double)r->requests * gap_ns);
			uint64_t left = due > now_ns() ? due - now_ns() : 0;
			wait_ms = (int)(left / 1000000ULL);
			if (wait_ms > 100)
				wait_ms = 100;
		}
		curl_multi_poll(r->multi, &wfd, 1, wait_ms, &numfds);
		if (wfd.revents) {
			struct signalfd_siginfo si;
			if (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				signals++;
				log_info("signal: stopping", "signal=%d in_flight=%d abandon=%d",
					 (int)si.ssi_signo, r->in_flight, signals > 1);
			}
			wfd.revents = 0;
			if (!stop_ns)
				stop_ns = now_ns();
			if (signals > 1)
				break;
		}
	}
	/* Whatever is still in flight is abandoned: a failure. */
	for (int i = 0; i < r->cfg.concurrency; i++)
		if (r->slots[i].h)
			complete(r, &r->slots[i], CURLE_ABORTED_BY_CALLBACK, "abandoned");
}

/* ---- the summary ---------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted latencies, in ms. */
static double pct_ms(const struct run *r, double p)
{
	if (r->n_lat == 0)
		return 0;
	long i = (long)ceil(p * (double)r->n_lat) - 1;
	if (i < 0)
		i = 0;
	return r->lat_us[i] / 1000.0;
}

static void json_num(json_object *o, const char *k, double v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%.3f", v);
	json_object_object_add(o, k, json_object_new_double_s(v, buf));
}

static void summary(struct run *r, FILE *f)
{
	double elapsed = (double)(now_ns() - r->t0_ns) / 1e9;
	double p50, p99, pmax;
	json_object *j = json_object_new_object(), *pods = json_object_new_object();
	const struct {
		const char *name;
		long v;
	} counts[] = {
		{ "requests", r->requests },
		{ "sent", r->sent },
		{ "ok", r->ok },
		{ "failed", r->failed },
		{ "no_endpoint", r->no_endpoint },
		{ "dropped_overload", r->dropped },
		{ "not_loopback", r->not_loopback },
	};

	qsort(r->lat_us, (size_t)r->n_lat, sizeof(*r->lat_us), cmp_u32);
	p50 = pct_ms(r, 0.50);
	p99 = pct_ms(r, 0.99);
	pmax = pct_ms(r, 1.0);
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		fprintf(f, "%s %ld\n", counts[i].name, counts[i].v);
		json_object_object_add(j, counts[i].name, json_object_new_int64(counts[i].v));
	}
	fprintf(f, "p50_ms %.3f\np99_ms %.3f\nmax_ms %.3f\nelapsed_s %.3f\nstart_unix_ms %lld\n",
		p50, p99, pmax, elapsed, (long long)r->t0_unix_ms);
	json_num(j, "p50_ms", p50);
	json_num(j, "p99_ms", p99);
	json_num(j, "max_ms", pmax);
	json_num(j, "elapsed_s", elapsed);
	json_object_object_add(j, "start_unix_ms", json_object_new_int64(r->t0_unix_ms));
	for (int i = 0; i < r->n_pods; i++) {
		const struct podstat *s = &r->pods[i];
		json_object *p = json_object_new_object();
		fprintf(f, "pod.%s.sent %ld\npod.%s.ok %ld\npod.%s.failed %ld\npod.%s.first_ms %ld\n",
			s->name, s->sent, s->name, s->ok, s->name, s->failed, s->name, s->first_ms);
		json_object_object_add(p, "sent", json_object_new_int64(s->sent));
		json_object_object_add(p, "ok", json_object_new_int64(s->ok));
		json_object_object_add(p, "failed", json_object_new_int64(s->failed));
		json_object_object_add(p, "first_ms", json_object_new_int64(s->first_ms));
		json_object_object_add(p, "last_ms", json_object_new_int64(s->last_ms));
		json_object_object_add(pods, s->name, p);
	}
	fprintf(f, "pods %d\n", r->n_pods);
	json_object_object_add(j, "pods", pods);
	fprintf(f, "%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
	fflush(f);
	json_object_put(j);
}

/* ---- setup ---------------------------------------------------------------- */

#define F(name, env, kind, field, def, help) \
	{ \
		name, env, kind, offsetof(struct cfg, field), def, help \
	}
static const struct flag flags[] = {
	F("kubeconfig", "KUBECONFIG", FLAG_STRING, kubeconfig, NULL, "kubeconfig of the cluster"),
	F("namespace", NULL, FLAG_STRING, ns, NULL, "namespace of the pods (required)"),
	F("selector", NULL, FLAG_STRING, selector, NULL,
	  "label selector of the pods, e.g. kinfer.io/service=llm (required)"),
	F("rps", NULL, FLAG_DOUBLE, rps, "20", "requests per second, open loop (max 5000)"),
	F("duration", NULL, FLAG_DURATION_MS, duration_ms, NULL,
	  "how long to send (required, max 10m)"),
	F("concurrency-limit", NULL, FLAG_INT, concurrency, "256",
	  "requests in flight at most; more are dropped_overload (max 10000)"),
	F("path", NULL, FLAG_STRING, path, "/v1/completions", "path of every request (a POST)"),
	F("body", NULL, FLAG_STRING, body, "{\"prompt\":\"Hello\",\"max_tokens\":8}",
	  "JSON body of every request (max 1 MiB)"),
	F("port", NULL, FLAG_INT, port, NULL,
	  "port (default: the pod's first container port, or 8000)"),
	F("timeout", NULL, FLAG_DURATION_MS, timeout_ms, "30s", "per request"),
	F("out", NULL, FLAG_STRING, out, NULL, "write one JSON line per request to this file"),
	F("endpoint-lag", NULL, FLAG_DURATION_MS, lag_ms, "0",
	  "keep sending to a pod this long after it left Ready or began terminating (endpoint propagation)"),
	F("all-running", NULL, FLAG_BOOL, all_running, NULL,
	  "send to every Running pod, Ready or not (a naive load balancer)"),
	F("service", NULL, FLAG_STRING, service, NULL,
	  "send to this ClusterIP:PORT (198.19.0.0/16) through kube-proxy instead of following pods"),
	F("host", NULL, FLAG_STRING, host, NULL,
	  "Host header of every request, e.g. NAME.NAMESPACE.svc:8000 as a client using the Service's DNS name sends (at most 253 bytes)"),
};
#define N_FLAGS (sizeof(flags) / sizeof(flags[0]))

/* Flag values a run cannot use. NULL when all are fine. */
/* parse_service: --service IP:PORT into svc_ip, svc_port; a ClusterIP of
 * 198.19.0.0/16 only. NULL when fine. */
static const char *parse_service(const char *v)
{
	const char *colon = strrchr(v, ':');
	struct in_addr a;
	char *end;
	if (!colon || (size_t)(colon - v) >= sizeof(svc_ip))
		return "--service must be IP:PORT";
	memcpy(svc_ip, v, (size_t)(colon - v));
	svc_ip[colon - v] = '\0';
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535)
		return "--service: the port must be 1-65535";
	if (inet_pton(AF_INET, svc_ip, &a) != 1 || (ntohl(a.s_addr) >> 16) != ((198u << 8) | 19u))
		return "--service: the IP must be a ClusterIP of 198.19.0.0/16";
	svc_port = (int)port;
	return NULL;
}

static const char *check_cfg(const struct cfg *c)
{
	if (c->service)
		return parse_service(c->service);
	if (!c->ns || !*c->ns)
		return "--namespace is required";
	if (!c->selector || !*c->selector)
		return "--selector is required";
	return NULL;
}

static const char *check_limits(const struct cfg *c)
{
	if (c->duration_ms <= 0 || c->duration_ms > MAX_DURATION_MS)
		return "--duration is required, more than 0 and at most 10m";
	if (c->rps <= 0 || c->rps > MAX_RPS)
		return "--rps must be more than 0 and at most 5000";
	if (c->concurrency < 1 || c->concurrency > MAX_CONCURRENCY)
		return "--concurrency-limit must be 1 to 10000";
	if (c->port > 65535)
		return "--port must be at most 65535";
	if (c->timeout_ms <= 0 || c->timeout_ms > MAX_DURATION_MS)
		return "--timeout must be more than 0 and at most 10m";
	if (!c->path || c->path[0] != '/' || strlen(c->path) > 512)
		return "--path must start with / (at most 512 bytes)";
	if (strlen(c->body) > MAX_BODY)
		return "--body is over 1 MiB";
	if (c->host && (strlen(c->host) == 0 || strlen(c->host) > 253 || strpbrk(c->host, "\r\n")))
		return "--host must be 1-253 bytes on one line";
	return NULL;
}

/* The run's buffers: slots, latencies, pod rows, the curl multi handle. */
static int run_init(struct run *r)
{
	long total = (long)floor(r->cfg.rps * (double)r->cfg.duration_ms / 1000.0);

	r->cap_lat = total > 0 ? total : 1;
	r->lat_us = calloc((size_t)r->cap_lat, sizeof(*r->lat_us));
	r->slots = calloc((size_t)r->cfg.concurrency, sizeof(*r->slots));
	r->pods = calloc(MAX_PODS, sizeof(*r->pods));
	r->multi = curl_multi_init();
	r->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (r->headers)
		r->headers = curl_slist_append(r->headers, "Expect:");
	if (r->headers && r->cfg.host) {
		char h[300];
		snprintf(h, sizeof(h), "Host: %s", r->cfg.host);
		r->headers = curl_slist_append(r->headers, h);
	}
	if (!r->lat_us || !r->slots || !r->pods || !r->multi || !r->headers)
		return -ENOMEM;
	curl_multi_setopt(r->multi, CURLMOPT_MAXCONNECTS, (long)r->cfg.concurrency);
	for (int i = r->cfg.concurrency - 1; i >= 0; i--) {
		r->slots[i].next_free = r->free_slots;
		r->free_slots = &r->slots[i];
	}
	return 0;
}

static void run_free(struct run *r)
{
	if (r->multi)
		curl_multi_cleanup(r->multi);
	curl_slist_free_all(r->headers);
	free(r->lat_us);
	free(r->slots);
	free(r->pods);
	if (r->out)
		fclose(r->out);
}

int main(int argc, char **argv)
{
	static struct run run;
	struct kube_auth *auth = NULL;
	struct kube_client *client = NULL;
	struct informer_set *set = NULL;
	struct informer *inf;
	struct intern *interns = NULL;
	const char *bad;
	char err[512];
	bool help = false;
	int argi = 1, sigfd = -1, rc = 1;
	sigset_t ss;
	struct timespec wall;

	if (flags_parse(flags, N_FLAGS, &run.cfg, argc, argv, &argi, &help, err, sizeof(err)) < 0 ||
	    help) {
		fprintf(stderr,
			help ? "kinfer-loadgen: send requests to the Ready pods of a selector\n" :
			       "kinfer-loadgen: %s\n",
			err);
		flags_usage(stderr, flags, N_FLAGS);
		return help ? 0 : 2;
	}
	lag_ms = run.cfg.lag_ms;
	if (argi < argc || (bad = check_cfg(&run.cfg)) || (bad = check_limits(&run.cfg))) {
		fprintf(stderr, "kinfer-loadgen: %s\n", argi < argc ? "unexpected argument" : bad);
		flags_usage(stderr, flags, N_FLAGS);
		return 2;
	}
	/* Signals are read from a descriptor by the driving thread; blocked in
	 * every thread, so they are blocked before the informer starts its own. */
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	sigfd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
	log_setup(LOG_LEVEL_INFO, LOG_FORMAT_LOGFMT, stderr);
	if (sigfd < 0) {
		fprintf(stderr, "kinfer-loadgen: signalfd: %s\n", strerror(errno));
		goto out;
	}
	if (run.cfg.out && !(run.out = fopen(run.cfg.out, "we"))) {
		fprintf(stderr, "kinfer-loadgen: %s: %s\n", run.cfg.out, strerror(errno));
		goto out;
	}
	if (svc_port > 0) {
		if (run_init(&run) < 0) {
			fprintf(stderr, "kinfer-loadgen: cannot start\n");
			goto out;
		}
		clock_gettime(CLOCK_REALTIME, &wall);
		run.t0_unix_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
		log_info("load generator started", "service=%s:%d rps=%g duration_ms=%ld", svc_ip,
			 svc_port, run.cfg.rps, run.cfg.duration_ms);
		drive(&run, sigfd);
		summary(&run, stdout);
		rc = 0;
		goto out;
	}
	if (kube_auth_load(run.cfg.kubeconfig, NULL, &auth, err, sizeof(err)) < 0) {
		fprintf(stderr, "kinfer-loadgen: %s\n", err);
		goto out;
	}
	struct informer_options io = { .kind = &kind_lgpods,
				       .namespace = run.cfg.ns,
				       .label_selector = run.cfg.selector };
	if (kube_client_new(auth, NULL, &client) < 0 || intern_new(&interns) < 0 ||
	    informer_set_new(client, interns, NULL, &set) < 0 || informer_add(set, &io, &inf) < 0 ||
	    informer_add_handler(inf, on_pod_change, &run.cfg.all_running) < 0 ||
	    informer_set_start(set) < 0 || run_init(&run) < 0) {
		fprintf(stderr, "kinfer-loadgen: cannot start\n");
		goto out;
	}
	if (informer_set_wait_synced(set, SYNC_TIMEOUT_NS) < 0) {
		fprintf(stderr, "kinfer-loadgen: the pod list did not arrive within 30 s\n");
		goto out;
	}
	run.pods_cache = informer_cache(inf);
	rcu_register_thread();
	clock_gettime(CLOCK_REALTIME, &wall);
	run.t0_unix_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
	log_info("load generator started",
		 "namespace=%s selector=%s rps=%g duration_ms=%ld mode=%s pods=%zu", run.cfg.ns,
		 run.cfg.selector, run.cfg.rps, run.cfg.duration_ms,
		 run.cfg.all_running ? "all-running" : "ready", cache_count(run.pods_cache));
	drive(&run, sigfd);
	rcu_unregister_thread();
	summary(&run, stdout);
	rc = 0;
out:
	informer_set_free(set);
	intern_free(interns);
	kube_client_free(client);
	kube_auth_free(auth);
	run_free(&run);
	if (sigfd >= 0)
		close(sigfd);
	return rc;
}
