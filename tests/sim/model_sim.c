/*
 * kinfer-model-sim: a model server simulator for the local control plane.
 *
 * It watches the pods of InferenceServices (label kinfer.io/service) and,
 * for every Running pod whose IP is on this machine's loopback range, opens
 * a listener on that IP and the pod's port that behaves like a model server:
 *
 *   - GET the health path: 503 while the model "loads" (--load-seconds),
 *     then 200;
 *   - POST an inference path: the first --cold-requests answers are slow
 *     (--cold-ms), later ones take --latency-ms; at most --capacity run at
 *     once, the rest wait (queue depth);
 *     (Accept: text/event-stream or "stream": true in the body: the answer
 *     as server-sent events, one per token up to the body's max_tokens, the
 *     first after the latency, the next --token-ms apart; a client that
 *     closes its connection stops the stream, as vLLM aborts a request whose
 *     client left: counted in kinfer_sim_requests_cancelled_total);
 *   - GET /metrics: vLLM's metric names (num_requests_waiting/running, the
 *     e2e latency histogram, request counters), plus kinfer_sim_* counters a
 *     test reads: requests that reached the pod before its warm-up finished;
 *   - a pod being deleted stops taking connections and finishes the
 *     requests in flight; with a preStop sleep in its template it keeps
 *     serving until its object is gone, as under a kubelet's preStop pause.
 *
 * A broken model: pods annotated sim.kinfer.io/fail-warmup: "true", or of
 * services named with --fail-warmup-prefix, answer 500 to warm-up requests
 * (User-Agent kinfer-warmup). A stalled one: services named with
 * --stall-warmup-prefix hold each warm-up request for 100 s, then 504. A
 * slow one: services named with --slow-load-prefix load for 10 minutes.
 *
 * Loopback only: listeners are refused for any IP outside 127.0.0.0/8.
 *
 * `kinfer-model-sim serve [--port N] ...`: one server in a container (the
 * image of tests/cluster/images.sh, on the real node), on every address of
 * the pod's own network namespace, no API server. Options the model server
 * it stands in for would take (vLLM's --model, ...) are ignored; SIM_*
 * environment variables set the behaviour (SIM_LOAD_SECONDS, SIM_COLD_MS,
 * SIM_LATENCY_MS, SIM_COLD_REQUESTS, SIM_CAPACITY, SIM_TOKEN_MS). It logs what a test
 * reads: the first warm-up request, each request before warm-up, SIGTERM
 * (with the requests then in flight) and its exit.
 */
#include "cache.h"
#include "flags.h"
#include "httpserver.h"
#include "informer.h"
#include "kube.h"
#include "kubeconfig.h"
#include "log.h"
#include "simpod.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PODS 4096
#define STALL_MS 100000     /* a stalled warm-up request, under MHD's 120 s timeout */
#define SLOW_LOAD_MS 600000 /* --slow-load-prefix: a model that loads for 10 min */
static const double buckets[] = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct cfg {
	const char *kubeconfig;
	const char *ns;
	long load_ms, cold_ms, latency_ms, token_ms;
	int cold_requests, capacity;
	const char *fail_prefix;
	const char *stall_prefix;
	const char *slow_prefix;
};
static struct cfg cfg;

/* The simulator's own projection of a pod. */
struct simpod {
	struct cache_obj meta;
	const char *ip;
	const char *service;
	int32_t port;
	int32_t prestop_s; /* lifecycle.preStop.sleep.seconds */
	uint8_t running, fail_warmup;
};

static int project(struct cache_proj *p, json_object *j, struct cache_obj *o)
{
	struct simpod *s = (struct simpod *)o;
	json_object *cs = cache_json_get(j, "spec.containers");
	cache_proj_str(p, &s->ip, cache_json_str(j, "status.podIP"));
	cache_proj_str(p, &s->service,
		       cache_json_key(cache_json_get(j, "metadata.labels"), "kinfer.io/service"));
	const char *phase = cache_json_str(j, "status.phase");
	s->running = phase && strcmp(phase, "Running") == 0;
	const char *fw = cache_json_key(cache_json_get(j, "metadata.annotations"),
					"sim.kinfer.io/fail-warmup");
	s->fail_warmup = fw && strcmp(fw, "true") == 0;
	s->prestop_s = (int32_t)cache_json_int(json_object_array_get_idx(cs, 0),
					       "lifecycle.preStop.sleep.seconds", 0);
	s->port = simpod_http_port(j);
	return 0;
}

static const struct cache_kind kind_simpods = {
	.name = "Pod",
	.res = &kube_res_pods,
	.size = sizeof(struct simpod),
	.project = project,
};

/* ---- one simulated server -------------------------------------------------- */

struct server {
	char key[320], ip[64], service[256];
	int port;
	bool fail_warmup, stall_warmup;
	long load_ms;
	struct MHD_Daemon *d;
	uint64_t started_ns;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int running, waiting;
	long served, warmups, warmups_stalled, traffic_before_warm;
	bool warm;        /* a warm-up request has succeeded */
	uint64_t term_ns; /* when its deletion was first seen, or 0 */
	int prestop_s;    /* its preStop pause, from then */
	uint64_t hist[N_BUCKETS + 1];
	double sum;
	long ok, failed, cancelled;
};

static struct server *servers[MAX_PODS];
static bool serve_mode;
/* Serve mode after SIGTERM: answers close their connection, as a model
 * server shutting down does, so keep-alive clients reconnect elsewhere. */
static atomic_bool terminating;
static int n_servers;
static pthread_mutex_t servers_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned code, const char *type,
			       const char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
								 MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", type);
	if (atomic_load(&terminating))
		MHD_add_response_header(r, "Connection", "close");
	enum MHD_Result ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static bool loaded(struct server *s)
{
	return now_ns() - s->started_ns >= (uint64_t)s->load_ms * 1000000ULL;
}

static enum MHD_Result metrics(struct server *s, struct MHD_Connection *c)
{
	char buf[8192];
	size_t n = 0;
	uint64_t cum = 0;
	pthread_mutex_lock(&s->lock);
	n += (size_t)snprintf(
		buf + n, sizeof(buf) - n,
		"# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=\"%s\"} %d\n"
		"# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name=\"%s\"} %d\n"
		"# TYPE vllm:request_success_total counter\nvllm:request_success_total{model_name=\"%s\"} %ld\n"
		"# TYPE vllm:e2e_request_latency_seconds histogram\n",
		s->service, s->waiting, s->service, s->running, s->service, s->ok);
	for (size_t i = 0; i <= N_BUCKETS && n < sizeof(buf); i++) {
		cum += s->hist[i];
		if (i < N_BUCKETS)
			n += (size_t)snprintf(
				buf + n, sizeof(buf) - n,
				"vllm:e2e_request_latency_seconds_bucket{model_name=\"%s\",le=\"%g\"} %llu\n",
				s->service, buckets[i], (unsigned long long)cum);
		else
			n += (size_t)snprintf(
				buf + n, sizeof(buf) - n,
				"vllm:e2e_request_latency_seconds_bucket{model_name=\"%s\",le=\"+Inf\"} %llu\n",
				s->service, (unsigned long long)cum);
	}
	if (n < sizeof(buf))
		n += (size_t)snprintf(
			buf + n, sizeof(buf) - n,
			"vllm:e2e_request_latency_seconds_sum{model_name=\"%s\"} %g\n"
			"vllm:e2e_request_latency_seconds_count{model_name=\"%s\"} %llu\n"
			"# TYPE kinfer_sim_warmup_requests_total counter\nkinfer_sim_warmup_requests_total %ld\n"
			"# TYPE kinfer_sim_traffic_before_warm_total counter\nkinfer_sim_traffic_before_warm_total %ld\n"
			"# TYPE kinfer_sim_requests_failed_total counter\nkinfer_sim_requests_failed_total %ld\n"
			"# TYPE kinfer_sim_requests_cancelled_total counter\nkinfer_sim_requests_cancelled_total %ld\n",
			s->service, s->sum, s->service, (unsigned long long)cum, s->warmups,
			s->traffic_before_warm, s->failed, s->cancelled);
	pthread_mutex_unlock(&s->lock);
	return respond(c, 200, "text/plain; version=0.0.4", buf);
}

/* One request's connection state: its body (the first BODY_MAX bytes). */
#define BODY_MAX 4096
#define TOKENS_MAX 4096
struct call {
	size_t len;
	char body[BODY_MAX];
};

/* A streamed answer in flight: it holds its place (running) until it ends
 * or its client leaves. */
struct stream {
	struct server *s;
	struct MHD_Connection *c;
	uint64_t t0;
	int tokens, sent;
	bool warmup, ended;
	size_t off, len;
	char buf[160];
};

static void record(struct server *s, uint64_t t0, bool warmup)
{
	double secs = (double)(now_ns() - t0) / 1e9;
	size_t b = 0;
	if (warmup)
		s->warm = true;
	while (b < N_BUCKETS && secs > buckets[b])
		b++;
	s->hist[b]++;
	s->sum += secs;
	s->ok++;
}

static ssize_t stream_next(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *st = cls;
	(void)pos;
	if (st->off == st->len) {
		if (st->sent > st->tokens) {
			st->ended = true;
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		/* The next token a --token-ms later, the client watched meanwhile;
		 * the end marker right after the last token. */
		for (long waited = 0;
		     st->sent > 0 && st->sent < st->tokens && waited < cfg.token_ms; waited += 50) {
			if (httpserver_peer_gone(st->c))
				return MHD_CONTENT_READER_END_WITH_ERROR;
			usleep((useconds_t)(cfg.token_ms - waited < 50 ? cfg.token_ms - waited : 50) *
			       1000);
		}
		if (st->sent < st->tokens)
			st->len = (size_t)snprintf(
				st->buf, sizeof(st->buf),
				"data: {\"choices\":[{\"text\":\" simulated\",\"finish_reason\":null}]}\n\n");
		else
			st->len = (size_t)snprintf(
				st->buf, sizeof(st->buf),
				"data: {\"choices\":[{\"text\":\"\",\"finish_reason\":\"length\"}]}\n\n"
				"data: [DONE]\n\n");
		st->sent++;
		st->off = 0;
	}
	size_t n = st->len - st->off < max ? st->len - st->off : max;
	memcpy(buf, st->buf + st->off, n);
	st->off += n;
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	struct stream *st = cls;
	struct server *s = st->s;
	pthread_mutex_lock(&s->lock);
	s->running--;
	if (st->ended)
		record(s, st->t0, st->warmup);
	else
		s->cancelled++;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (!st->ended && serve_mode)
		log_info("stream cancelled: the client went away", "pod=%s tokens_sent=%d of=%d",
			 s->key, st->sent, st->tokens);
	free(st);
}

/* The body's max_tokens (1 when absent or not a number, at most TOKENS_MAX)
 * and whether it asks for a stream. */
static int body_tokens(const struct call *k, bool *stream)
{
	int tokens = 1;
	json_object *b = json_tokener_parse(k->body), *v;
	if (b && json_object_object_get_ex(b, "max_tokens", &v) &&
	    json_object_is_type(v, json_type_int)) {
		int64_t n = json_object_get_int64(v);
		tokens = n < 1 ? 1 : n > TOKENS_MAX ? TOKENS_MAX : (int)n;
	}
	if (b && json_object_object_get_ex(b, "stream", &v) &&
	    json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v))
		*stream = true;
	json_object_put(b);
	return tokens;
}

/* An inference request: wait for capacity, take the latency, answer. */
static enum MHD_Result infer(struct server *s, struct MHD_Connection *c, bool warmup, bool stream,
			     int tokens)
{
	uint64_t t0 = now_ns();
	long ms;
	pthread_mutex_lock(&s->lock);
	if (warmup && s->warmups++ == 0 && serve_mode)
		log_info("first warm-up request", "pod=%s", s->key);
	if (!warmup && !s->warm) {
		s->traffic_before_warm++;
		if (serve_mode)
			log_warn("request before warm-up", "pod=%s count=%ld", s->key,
				 s->traffic_before_warm);
	}
	if (warmup && s->stall_warmup) {
		/* A stalled model server: the warm-up request hangs (bounded,
		 * under the connection timeout), holding no capacity. */
		long n = ++s->warmups_stalled;
		pthread_mutex_unlock(&s->lock);
		log_info("warm-up stalled", "pod=%s count=%ld", s->key, n);
		for (int i = 0; i < STALL_MS / 100; i++)
			usleep(100000);
		return respond(c, 504, "application/json", "{\"error\":\"stalled\"}");
	}
	if (warmup && s->fail_warmup) {
		s->failed++;
		pthread_mutex_unlock(&s->lock);
		return respond(c, 500, "application/json", "{\"error\":\"model failed to warm up\"}");
	}
	s->waiting++;
	while (s->running >= cfg.capacity)
		pthread_cond_wait(&s->cond, &s->lock);
	s->waiting--;
	s->running++;
	ms = s->served < cfg.cold_requests ? cfg.cold_ms : cfg.latency_ms;
	s->served++;
	pthread_mutex_unlock(&s->lock);
	usleep((useconds_t)ms * 1000);
	if (stream) { /* OpenAI-style server-sent events, then the end marker */
		struct stream *st = calloc(1, sizeof(*st));
		struct MHD_Response *r = st ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
										1024, stream_next,
										st, stream_free) :
					      NULL;
		if (r) {
			*st = (struct stream){
				.s = s, .c = c, .t0 = t0, .tokens = tokens, .warmup = warmup
			};
			MHD_add_response_header(r, "Content-Type", "text/event-stream");
			if (atomic_load(&terminating))
				MHD_add_response_header(r, "Connection", "close");
			enum MHD_Result ret = MHD_queue_response(c, 200, r);
			MHD_destroy_response(r); /* stream_free, once it ended, frees st */
			return ret;
		}
		free(st);
	}
	pthread_mutex_lock(&s->lock);
	s->running--;
	record(s, t0, warmup);
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (stream)
		return respond(c, 503, "application/json", "{\"error\":\"out of memory\"}");
	return respond(c, 200, "application/json",
		       "{\"choices\":[{\"text\":\" simulated\",\"finish_reason\":\"length\"}]}");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *size, void **con_cls)
{
	struct server *s = cls;
	struct call *k = *con_cls;
	(void)version;
	if (!k) {
		if (!(k = calloc(1, sizeof(*k))))
			return MHD_NO;
		*con_cls = k;
		return MHD_YES;
	}
	if (*size) { /* the request body: its first BODY_MAX - 1 bytes kept */
		size_t n = *size < BODY_MAX - 1 - k->len ? *size : BODY_MAX - 1 - k->len;
		memcpy(k->body + k->len, data, n);
		k->len += n;
		*size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/metrics") == 0)
		return metrics(s, c);
	if (strcmp(method, "GET") == 0 &&
	    (strcmp(url, "/health") == 0 || strstr(url, "/health") || strstr(url, "/ready")))
		return loaded(s) ? respond(c, 200, "text/plain", "ok\n") :
				   respond(c, 503, "text/plain", "loading model\n");
	if (!loaded(s))
		return respond(c, 503, "application/json", "{\"error\":\"model is loading\"}");
	const char *ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent");
	const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
	bool stream = accept && strstr(accept, "text/event-stream");
	int tokens = body_tokens(k, &stream);
	return infer(s, c, ua && strstr(ua, "kinfer-warmup"), stream, tokens);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	free(*con_cls);
	*con_cls = NULL;
}

/* Is SERVICE named with PREFIX (a --*-prefix flag; unset or "": no)? */
static bool named(const char *service, const char *prefix)
{
	return prefix && *prefix && strncmp(service, prefix, strlen(prefix)) == 0;
}

/* server_listen: a server for KEY on SIN (any address in serve mode). */
static struct server *server_listen(const char *key, const char *ip, const char *service, int port,
				    bool fail_warmup, struct sockaddr_in *sin)
{
	struct server *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	snprintf(s->key, sizeof(s->key), "%s", key);
	snprintf(s->ip, sizeof(s->ip), "%s", ip);
	snprintf(s->service, sizeof(s->service), "%s", service ? service : "");
	s->port = port;
	s->fail_warmup = fail_warmup || named(s->service, cfg.fail_prefix);
	s->stall_warmup = named(s->service, cfg.stall_prefix);
	s->load_ms = named(s->service, cfg.slow_prefix) ? SLOW_LOAD_MS : cfg.load_ms;
	s->started_ns = now_ns();
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
					MHD_USE_ERROR_LOG,
				0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, sin,
				MHD_OPTION_CONNECTION_LIMIT, 512u, MHD_OPTION_CONNECTION_TIMEOUT,
				120u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				MHD_OPTION_END);
	if (!s->d) {
		log_warn("cannot listen", "pod=%s addr=%s:%d", s->key, s->ip, s->port);
		free(s);
		return NULL;
	}
	log_info("serving pod", "pod=%s addr=%s:%d load_ms=%ld", s->key, s->ip, s->port, s->load_ms);
	return s;
}

static struct server *server_start(const struct simpod *p)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p->port) };
	if (inet_pton(AF_INET, p->ip, &sin.sin_addr) != 1 ||
	    (ntohl(sin.sin_addr.s_addr) >> 24) != 127) {
		log_warn("not a loopback pod IP, not serving", "pod=%s ip=%s", p->meta.key, p->ip);
		return NULL;
	}
	return server_listen(p->meta.key, p->ip, p->service, p->port, p->fail_warmup, &sin);
}

/*
 * Stop taking connections, let the requests in flight finish, then close.
 * The listening socket MHD_quiesce_daemon hands back is the caller's to
 * close, after MHD_stop_daemon: left open, it stayed LISTEN for the life of
 * the simulator, so a later pod that kwok gave the same IP could not listen
 * ("Address already in use") and its clients' connections sat unanswered in
 * the old socket's backlog. Shut down at once: a new connection is refused,
 * as by a server that closed its listener.
 */
static void *server_drain(void *ud)
{
	struct server *s = ud;
	MHD_socket lfd = MHD_quiesce_daemon(s->d);
	if (lfd != MHD_INVALID_SOCKET)
		shutdown(lfd, SHUT_RDWR);
	for (int i = 0; i < 1200; i++) {
		pthread_mutex_lock(&s->lock);
		int busy = s->running + s->waiting;
		pthread_mutex_unlock(&s->lock);
		if (!busy)
			break;
		usleep(100000);
	}
	MHD_stop_daemon(s->d);
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd);
	log_info("stopped serving pod", "pod=%s served=%ld", s->key, s->served);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
	return NULL;
}

/*
 * A pod whose deletion was seen with a preStop pause keeps serving until the
 * pause is over, even when its object is gone before: kwok removes a deleted
 * pod after a second, where a kubelet keeps the container through the whole
 * preStop sleep (and the object until then). Stopping at the object's
 * removal raced the load generator, which follows the same watch.
 *
 * kwok gives a removed pod's IP to the next pod at once, which no CNI does
 * while the old sandbox lives: a new pod on the address of a lingering one
 * ends the linger (the new pod wins). A lingering server is held by a
 * ticket; whoever takes the ticket's server off the list (the linger thread
 * at the pause's end, or a new pod on its address) stops it; the thread
 * frees the ticket.
 */
struct lingerer {
	struct server *s; /* NULL once a new pod took it over */
	uint64_t end_ns;
};
static struct lingerer *lingering[MAX_PODS];
static int n_lingering;
static pthread_cond_t linger_cond = PTHREAD_COND_INITIALIZER;

static void linger_remove(struct lingerer *l)
{
	for (int i = 0; i < n_lingering; i++)
		if (lingering[i] == l) {
			lingering[i] = lingering[--n_lingering];
			return;
		}
}

static void *server_linger(void *ud)
{
	struct lingerer *l = ud;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until); /* linger_cond uses the default clock */
	uint64_t left = l->end_ns > now_ns() ? l->end_ns - now_ns() : 0;
	until.tv_sec += (time_t)(left / 1000000000ULL);
	until.tv_nsec += (long)(left % 1000000000ULL);
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&servers_lock);
	while (l->s && now_ns() < l->end_ns)
		if (pthread_cond_timedwait(&linger_cond, &servers_lock, &until) == ETIMEDOUT)
			break;
	struct server *s = l->s;
	if (s)
		linger_remove(l);
	pthread_mutex_unlock(&servers_lock);
	free(l);
	if (s)
		server_drain(s);
	return NULL;
}

/* Called with servers_lock held. */
static void server_stop(struct server *s)
{
	pthread_t t;
	struct lingerer *l = NULL;
	if (s->term_ns && s->prestop_s > 0 && s->prestop_s <= 30 && n_lingering < MAX_PODS &&
	    (l = calloc(1, sizeof(*l)))) {
		l->s = s;
		l->end_ns = s->term_ns + (uint64_t)s->prestop_s * 1000000000ULL;
		lingering[n_lingering++] = l;
	}
	if (pthread_create(&t, NULL, l ? server_linger : server_drain, l ? (void *)l : (void *)s) ==
	    0) {
		pthread_detach(t);
	} else if (l) {
		linger_remove(l);
		free(l);
	}
}

/* A new pod on IP:PORT: a lingering server there stops now. servers_lock held. */
static void linger_cut(const char *ip, int port)
{
	for (int i = 0; i < n_lingering; i++) {
		struct lingerer *l = lingering[i];
		if (l->s && l->s->port == port && strcmp(l->s->ip, ip) == 0) {
			struct server *s = l->s;
			l->s = NULL;
			lingering[i--] = lingering[--n_lingering];
			pthread_cond_broadcast(&linger_cond);
			log_info("address taken by a new pod, stopping", "pod=%s", s->key);
			MHD_stop_daemon(s->d);
			pthread_mutex_destroy(&s->lock);
			pthread_cond_destroy(&s->cond);
			free(s);
		}
	}
}

/* ---- following pods ----------------------------------------------------- */

static int find(const char *key)
{
	for (int i = 0; i < n_servers; i++)
		if (strcmp(servers[i]->key, key) == 0)
			return i;
	return -1;
}

static void on_pod(void *ud, enum informer_event ev, const struct cache_obj *old,
		   const struct cache_obj *obj)
{
	const struct simpod *p = (const struct simpod *)obj;
	const char *key = obj ? obj->key : old->key;
	/* A terminating pod keeps serving while the kubelet would run its preStop
	 * pause (KWOK runs no hooks, so the simulator plays that part) and stops
	 * taking connections at once when it has none, as a server on SIGTERM. */
	bool want = p && p->running && p->ip && p->port > 0 && (!obj->deleted || p->prestop_s > 0);
	(void)ud;
	(void)ev;
	pthread_mutex_lock(&servers_lock);
	int i = find(key);
	if (want && i < 0 && n_servers < MAX_PODS) {
		linger_cut(p->ip, p->port);
		struct server *s = server_start(p);
		if (s)
			servers[n_servers++] = s;
	} else if (want && i >= 0 && obj->deleted && !servers[i]->term_ns) {
		servers[i]->term_ns = now_ns();
		servers[i]->prestop_s = p->prestop_s;
	} else if (!want && i >= 0) {
		server_stop(servers[i]);
		servers[i] = servers[--n_servers];
	}
	pthread_mutex_unlock(&servers_lock);
}

#define F(name, env, kind, field, def, help) \
	{ \
		name, env, kind, offsetof(struct cfg, field), def, help \
	}
static const struct flag flags[] = {
	F("kubeconfig", "KUBECONFIG", FLAG_STRING, kubeconfig, NULL, "kubeconfig of the cluster"),
	F("namespace", NULL, FLAG_STRING, ns, NULL, "only pods in this namespace (default: all)"),
	F("load-seconds", NULL, FLAG_DURATION_MS, load_ms, "2s", "time to load the model"),
	F("cold-ms", NULL, FLAG_DURATION_MS, cold_ms, "800ms", "latency of the first requests"),
	F("latency-ms", NULL, FLAG_DURATION_MS, latency_ms, "50ms", "latency once warm"),
	F("token-ms", NULL, FLAG_DURATION_MS, token_ms, "0ms",
	  "time between two tokens of a streamed answer"),
	F("cold-requests", NULL, FLAG_INT, cold_requests, "3", "how many requests are slow"),
	F("capacity", NULL, FLAG_INT, capacity, "4", "requests served at once per pod"),
	F("fail-warmup-prefix", NULL, FLAG_STRING, fail_prefix, NULL,
	  "answer 500 to warm-up requests for services whose name starts with this"),
	F("stall-warmup-prefix", NULL, FLAG_STRING, stall_prefix, NULL,
	  "hold warm-up requests of services whose name starts with this for 100 s"),
	F("slow-load-prefix", NULL, FLAG_STRING, slow_prefix, NULL,
	  "services whose name starts with this load their model for 10 minutes"),
};

/* env_ms NAME SCALE DEF: a number from the environment, times SCALE. */
static long env_num(const char *name, long scale, long def)
{
	const char *v = getenv(name);
	char *end;
	if (!v || !*v)
		return def;
	long n = strtol(v, &end, 10);
	return *end || n < 0 || n > 86400000 ? def : n * scale;
}

/* serve: one server on 0.0.0.0:PORT in a container, until SIGTERM. */
static int serve(int argc, char **argv)
{
	int port = 8000, sig;
	sigset_t ss;
	char host[128] = "pod";
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--port=", 7) == 0)
			port = (int)strtol(a + 7, NULL, 10);
		else if (strcmp(a, "--port") == 0 && i + 1 < argc)
			port = (int)strtol(argv[++i], NULL, 10);
	}
	if (port < 1 || port > 65535) {
		fprintf(stderr, "kinfer-model-sim serve: --port must be 1-65535\n");
		return 2;
	}
	cfg.load_ms = env_num("SIM_LOAD_SECONDS", 1000, 2000);
	cfg.cold_ms = env_num("SIM_COLD_MS", 1, 800);
	cfg.latency_ms = env_num("SIM_LATENCY_MS", 1, 50);
	cfg.token_ms = env_num("SIM_TOKEN_MS", 1, 0);
	cfg.cold_requests = (int)env_num("SIM_COLD_REQUESTS", 1, 3);
	cfg.capacity = (int)env_num("SIM_CAPACITY", 1, 4);
	if (cfg.capacity < 1)
		cfg.capacity = 1;
	serve_mode = true;
	gethostname(host, sizeof(host) - 1);
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	log_setup(LOG_LEVEL_INFO, LOG_FORMAT_LOGFMT, stderr);
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port),
				   .sin_addr.s_addr = htonl(INADDR_ANY) };
	struct server *s = server_listen(host, "0.0.0.0", getenv("SIM_SERVICE"), port,
					 getenv("SIM_FAIL_WARMUP") != NULL, &sin);
	if (!s)
		return 1;
	sigwait(&ss, &sig);
	pthread_mutex_lock(&s->lock);
	int inflight = s->running + s->waiting;
	long served = s->served, before = s->traffic_before_warm;
	pthread_mutex_unlock(&s->lock);
	log_info("SIGTERM received",
		 "pod=%s signal=%d in_flight=%d served=%ld traffic_before_warm=%ld", host, sig,
		 inflight, served, before);
	atomic_store(&terminating, true);
	server_drain(s);
	log_info("exiting", "pod=%s", host);
	return 0;
}

int main(int argc, char **argv)
{
	struct kube_auth *auth = NULL;
	struct kube_client *client = NULL;
	struct informer_set *set = NULL;
	struct informer *inf;
	struct intern *interns = NULL;
	char err[512];
	bool help;
	int argi = 1, sig;
	sigset_t ss;

	if (argc > 1 && strcmp(argv[1], "serve") == 0)
		return serve(argc, argv);
	if (flags_parse(flags, sizeof(flags) / sizeof(flags[0]), &cfg, argc, argv, &argi, &help,
			err, sizeof(err)) < 0 ||
	    help) {
		fprintf(stderr, help ? "kinfer-model-sim: a model server simulator\n" : "%s\n", err);
		flags_usage(stderr, flags, sizeof(flags) / sizeof(flags[0]));
		return help ? 0 : 2;
	}
	if (cfg.capacity < 1)
		cfg.capacity = 1;
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	log_setup(LOG_LEVEL_INFO, LOG_FORMAT_LOGFMT, stderr);
	if (kube_auth_load(cfg.kubeconfig, NULL, &auth, err, sizeof(err)) < 0) {
		fprintf(stderr, "kinfer-model-sim: %s\n", err);
		return 1;
	}
	struct informer_options io = { .kind = &kind_simpods,
				       .namespace = cfg.ns,
				       .label_selector = "kinfer.io/service" };
	if (kube_client_new(auth, NULL, &client) < 0 || intern_new(&interns) < 0 ||
	    informer_set_new(client, interns, NULL, &set) < 0 || informer_add(set, &io, &inf) < 0 ||
	    informer_add_handler(inf, on_pod, NULL) < 0 || informer_set_start(set) < 0) {
		fprintf(stderr, "kinfer-model-sim: cannot start\n");
		return 1;
	}
	log_info("simulator started", "capacity=%d load_ms=%ld", cfg.capacity, cfg.load_ms);
	sigwait(&ss, &sig);
	informer_set_stop(set);
	pthread_mutex_lock(&servers_lock);
	for (int i = 0; i < n_servers; i++)
		server_drain(servers[i]);
	n_servers = 0;
	pthread_mutex_unlock(&servers_lock);
	informer_set_free(set);
	intern_free(interns);
	kube_client_free(client);
	kube_auth_free(auth);
	return 0;
}
