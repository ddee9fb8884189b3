/*
 * The activator: libmicrohttpd with one thread per connection (a held
 * request simply blocks its own thread), libcurl for the forward, the API
 * client of operator/ for the InferenceService, its EndpointSlices and the
 * activation annotation.
 *
 * A request's life:
 *
 *   Host -> ns/name (actreq) -> the InferenceService's scaleToZero values
 *   (GET, cached --spec-cache-ttl) -> body read (bounded) -> hold (bounded
 *   per service: maxPendingRequests, else 503) -> the poller lists the
 *   ready endpoints of NAME-private and, while there are none, writes
 *   kinfer.io/activation-requested (at once, then every 5 s, and once
 *   more when a ready pod takes the held requests)
 *   -> an endpoint appears: forward with libcurl, stream the answer back
 *   -> activationTimeoutSeconds passed first: 503 saying why.
 *
 * A request that asked for a stream and has to wait (the first list of its
 * service names no ready pod) gets its 200 and text/event-stream then and
 * a ": model starting" SSE comment every --keepalive-interval while held,
 * so clients and proxies see bytes; the model's stream follows. One that
 * finds a pod goes through as any other, with the model's own status.
 */
#include "activator.h"

#include "actreq.h"
#include "actsvc.h"
#include "dynbuf.h"
#include "flags.h"
#include "httpserver.h"
#include "isvc.h"
#include "kube.h"
#include "kubeconfig.h"
#include "ktime.h"
#include "log.h"
#include "metrics.h"
#include "cache.h"

#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#ifndef KINFER_VERSION
#define KINFER_VERSION "0.0.0-dev"
#endif

#define ACTIVATION_ANNOTATION "kinfer.io/activation-requested"
#define MAX_PENDING_DEFAULT 100
#define UPSTREAM_BUF_MAX (256 * 1024) /* answer bytes buffered per request */
#define UPSTREAM_MAX_HEADERS 64
#define UPSTREAM_MAX_HEADER_BYTES 32768
#define RETRY_AFTER_OVERFLOW "5"
#define RETRY_AFTER_TIMEOUT "10"
#define WAIT_SLICE_NS (250 * KTIME_NSEC_PER_MSEC)
/*
 * While requests are held and no pod is ready, the activation annotation is
 * written again this often: each write counts as traffic for the service's
 * idle clock (README, scale to zero), and the cold start of a real model
 * takes minutes; once a second made a burst of cold starts (every service
 * at zero after a night) hundreds of PATCHes a second. One more write when
 * the first ready pod takes the held requests starts the idle clock then,
 * whatever the gap.
 */
#define ACTIVATION_REFRESH_NS (5 * KTIME_NSEC_PER_SEC)
/* How long a stream waits for the first list of its service before it is
 * answered 200 and held (the list is one API request). */
#define FIRST_LIST_NS (1000 * KTIME_NSEC_PER_MSEC)

/* ---- flags -------------------------------------------------------------- */

struct config {
	const char *kubeconfig;
	const char *context;
	const char *log_level;
	const char *log_format;
	const char *listen;
	const char *http_addr;
	long poll_interval_ms;
	long keepalive_ms;
	long spec_ttl_ms;
	long kube_api_timeout_ms;
	long header_timeout_ms;
	long shutdown_timeout_ms;
	long shutdown_delay_ms;
	int max_connections;
	int max_body;
	int max_held_bytes;
};

#define F(name, env, kind, field, def, help) \
	{ \
		name, env, kind, offsetof(struct config, field), def, help \
	}

static const struct flag act_flags[] = {
	F("kubeconfig", "KUBECONFIG", FLAG_STRING, kubeconfig, NULL,
	  "kubeconfig file; without it: in-cluster, then ~/.kube/config"),
	F("context", "KINFER_CONTEXT", FLAG_STRING, context, NULL, "kubeconfig context"),
	F("log-level", "KINFER_LOG_LEVEL", FLAG_STRING, log_level, "info",
	  "debug, info, warn or error"),
	F("log-format", "KINFER_LOG_FORMAT", FLAG_STRING, log_format, "logfmt", "logfmt or json"),
	F("listen", "KINFER_ACTIVATOR_LISTEN", FLAG_STRING, listen, ":8012",
	  "host:port the proxied traffic arrives on"),
	F("http-addr", "KINFER_HTTP_ADDR", FLAG_STRING, http_addr, ":8080",
	  "host:port for /healthz, /readyz and /metrics"),
	F("endpoint-poll-interval", "KINFER_ACTIVATOR_POLL_INTERVAL", FLAG_DURATION_MS,
	  poll_interval_ms, "200ms",
	  "how often the EndpointSlices of a service that holds requests are listed"),
	F("keepalive-interval", "KINFER_ACTIVATOR_KEEPALIVE_INTERVAL", FLAG_DURATION_MS,
	  keepalive_ms, "5s", "how often a held streaming request gets \": model starting\""),
	F("spec-cache-ttl", "KINFER_ACTIVATOR_SPEC_CACHE_TTL", FLAG_DURATION_MS, spec_ttl_ms, "10s",
	  "how long an InferenceService's scaleToZero values are reused"),
	F("kube-api-timeout", "KINFER_KUBE_API_TIMEOUT", FLAG_DURATION_MS, kube_api_timeout_ms,
	  "3s", "timeout of one API request"),
	F("response-header-timeout", "KINFER_ACTIVATOR_RESPONSE_HEADER_TIMEOUT", FLAG_DURATION_MS,
	  header_timeout_ms, "10m", "how long a forwarded request may wait for the pod's answer"),
	F("shutdown-timeout", "KINFER_SHUTDOWN_TIMEOUT", FLAG_DURATION_MS, shutdown_timeout_ms,
	  "30s", "on SIGTERM, how long requests in flight may finish"),
	F("shutdown-delay", "KINFER_ACTIVATOR_SHUTDOWN_DELAY", FLAG_DURATION_MS, shutdown_delay_ms,
	  "5s",
	  "on SIGTERM, how long new requests are still taken while the operator and kube-proxy "
	  "drop this pod from the Services (within --shutdown-timeout; a second signal ends the "
	  "stop)"),
	F("max-connections", "KINFER_ACTIVATOR_MAX_CONNECTIONS", FLAG_INT, max_connections, "1024",
	  "client connections at once (one thread each)"),
	F("max-body", "KINFER_ACTIVATOR_MAX_BODY", FLAG_INT, max_body, "8388608",
	  "bytes of one request body (beyond: 413)"),
	F("max-held-bytes", "KINFER_ACTIVATOR_MAX_HELD_BYTES", FLAG_INT, max_held_bytes,
	  "268435456", "bytes of request bodies held at once, all services (beyond: 503)"),
};
#define N_ACT_FLAGS (sizeof(act_flags) / sizeof(act_flags[0]))

/* ---- metrics ------------------------------------------------------------ */

static const char *const svc_labels[] = { "namespace", "service", NULL };
static const char *const activation_labels[] = { "namespace", "service", "result", NULL };
static const char *const reason_labels[] = { "reason", NULL };
static const double wait_buckets[] = { 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600 };

static const struct metric_family fam_requests = {
	"kinfer_activator_requests_total",
	"Requests for an InferenceService that reached the activator.",
	METRIC_COUNTER,
	svc_labels,
	NULL,
	0
};
static const struct metric_family fam_held = { "kinfer_activator_held_requests",
					       "Requests held now, waiting for a ready replica.",
					       METRIC_GAUGE,
					       svc_labels,
					       NULL,
					       0 };
static const struct metric_family fam_wait = { "kinfer_activator_cold_start_wait_seconds",
					       "How long held requests waited for a ready replica.",
					       METRIC_HISTOGRAM,
					       svc_labels,
					       wait_buckets,
					       sizeof(wait_buckets) / sizeof(wait_buckets[0]) };
static const struct metric_family fam_overflow = {
	"kinfer_activator_overflow_total",
	"Requests refused with 503: maxPendingRequests were held already.",
	METRIC_COUNTER,
	svc_labels,
	NULL,
	0
};
static const struct metric_family fam_timeouts = {
	"kinfer_activator_timeouts_total",
	"Held requests that reached activationTimeoutSeconds (503).",
	METRIC_COUNTER,
	svc_labels,
	NULL,
	0
};
static const struct metric_family fam_upstream_errors = {
	"kinfer_activator_upstream_errors_total",
	"Forwarded requests that failed between the activator and the pod.",
	METRIC_COUNTER,
	svc_labels,
	NULL,
	0
};
static const struct metric_family fam_cancels = {
	"kinfer_activator_client_cancels_total",
	"Forwarded requests whose client went away before the pod's answer ended "
	"(the forward is closed, so the model stops working for nobody).",
	METRIC_COUNTER,
	svc_labels,
	NULL,
	0
};
static const struct metric_family fam_activations = {
	"kinfer_activator_activations_total",
	"Writes of the kinfer.io/activation-requested annotation by result (ok, error).",
	METRIC_COUNTER,
	activation_labels,
	NULL,
	0
};
static const struct metric_family fam_refused = {
	"kinfer_activator_refused_total",
	"Requests refused before any service was known, by reason.",
	METRIC_COUNTER,
	reason_labels,
	NULL,
	0
};

/* ---- the process -------------------------------------------------------- */

struct activator {
	struct config cfg;
	struct kube_client *client;
	struct metrics *metrics;
	struct actsvc_table *table;
	struct MHD_Daemon *d;
	pthread_t poller;
	atomic_bool stop;
	atomic_bool draining;
	atomic_bool connected; /* the API server answered */
	atomic_long held_bytes;
};

static double since_s(uint64_t t0)
{
	return ktime_ns_to_s(ktime_mono_ns() - t0);
}

static struct metric_series *svc_series(struct activator *a, const struct metric_family *f,
					const struct actsvc *s)
{
	const char *lv[] = { s->id.ns, s->id.name };
	return metrics_series(a->metrics, f, lv);
}


/* ---- the spec ----------------------------------------------------------- */

/*
 * The service's scaleToZero values, read at most once per --spec-cache-ttl
 * (failed reads: once a second). 1 found, 0 NotFound, -1 unreadable (err
 * says why).
 */
struct spec_values {
	bool scale_to_zero;
	int max_pending, timeout_s;
};

static int svc_spec(struct activator *a, struct actsvc *s, struct spec_values *ret, char *err,
		    size_t errlen)
{
	uint64_t now = ktime_mono_ns();
	int exists;

	pthread_mutex_lock(&s->fetch_lock);
	uint64_t ttl = s->exists < 0 ? KTIME_NSEC_PER_SEC :
				       (uint64_t)a->cfg.spec_ttl_ms * KTIME_NSEC_PER_MSEC;
	if (!s->fetched_ns || now - s->fetched_ns >= ttl) {
		json_object *o = NULL;
		struct kube_status st;
		int r = kube_get(a->client, &kube_res_inferenceservices, s->id.ns, s->id.name, NULL,
				 &o, &st);
		if (r == 0) {
			json_object *z = cache_json_get(o, "spec.scaling.scaleToZero");
			int64_t wt = cache_json_int(o, "spec.warmup.timeoutSeconds",
						    ISVC_WARMUP_TIMEOUT_S_DEFAULT);
			int64_t mp = cache_json_int(z, "maxPendingRequests", MAX_PENDING_DEFAULT);
			int64_t to = cache_json_int(z, "activationTimeoutSeconds", wt);
			s->scale_to_zero = z && json_object_is_type(z, json_type_object);
			s->max_pending = mp >= 1 && mp <= 10000 ? (int)mp : MAX_PENDING_DEFAULT;
			s->timeout_s = to >= 1 && to <= 86400 ? (int)to :
								ISVC_WARMUP_TIMEOUT_S_DEFAULT;
			s->exists = 1;
			json_object_put(o);
		} else if (r == -ENOENT) {
			s->exists = 0;
		} else {
			s->exists = -1;
			log_warn("cannot read the InferenceService",
				 "namespace=%s name=%s error=%s", s->id.ns, s->id.name, st.message);
		}
		s->fetched_ns = ktime_mono_ns();
	}
	exists = s->exists;
	/* A copy for the request: another request may refresh them meanwhile. */
	ret->scale_to_zero = s->scale_to_zero;
	ret->max_pending = s->max_pending;
	ret->timeout_s = s->timeout_s;
	if (exists < 0)
		snprintf(err, errlen, "cannot read InferenceService %s/%s from the API server",
			 s->id.ns, s->id.name);
	pthread_mutex_unlock(&s->fetch_lock);
	return exists;
}

/* ---- the poller --------------------------------------------------------- */

/* The activation signal (contract item 2): a merge patch of the annotation
 * with the time, RFC 3339 UTC with milliseconds. */
static void activate(struct activator *a, struct actsvc *s)
{
	char ts[40], patch[160];
	struct kube_status st;
	struct kube_opts o = { .timeout_ms = a->cfg.kube_api_timeout_ms };
	int r;

	ktime_format(ktime_wall_us(), 3, ts, sizeof(ts));
	snprintf(patch, sizeof(patch), "{\"metadata\":{\"annotations\":{\"%s\":\"%s\"}}}",
		 ACTIVATION_ANNOTATION, ts);
	r = kube_patch(a->client, &kube_res_inferenceservices, s->id.ns, s->id.name, NULL,
		       KUBE_PATCH_MERGE, patch, &o, NULL, &st);
	const char *lv[] = { s->id.ns, s->id.name, r == 0 ? "ok" : "error" };
	metric_add(metrics_series(a->metrics, &fam_activations, lv), 1);
	if (r < 0)
		log_warn("cannot write the activation request", "namespace=%s name=%s error=%s",
			 s->id.ns, s->id.name, st.message);
	else
		log_debug("activation requested", "namespace=%s name=%s at=%s", s->id.ns,
			  s->id.name, ts);
}

/* The port of a slice: the one named "http", else the first. */
static int slice_port(json_object *slice)
{
	json_object *ports = cache_json_get(slice, "ports");
	int port = 0;
	size_t n = ports && json_object_is_type(ports, json_type_array) ?
			   json_object_array_length(ports) :
			   0;
	for (size_t i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(ports, i);
		const char *name = cache_json_str(p, "name");
		int v = (int)cache_json_int(p, "port", 0);
		if (v <= 0 || v > 65535)
			continue;
		if (!port || (name && strcmp(name, "http") == 0))
			port = v;
		if (name && strcmp(name, "http") == 0)
			break;
	}
	return port;
}

/* Ready, not terminating endpoints of every slice of NAME-private. */
static int list_endpoints(struct activator *a, struct actsvc *s, struct actsvc_endpoint *ep,
			  size_t *ret_n)
{
	char sel[160];
	json_object *list = NULL;
	struct kube_status st;
	struct kube_opts o = { .label_selector = sel,
			       .timeout_ms = a->cfg.kube_api_timeout_ms,
			       .limit = 100 };
	size_t n = 0;
	int r;

	snprintf(sel, sizeof(sel), "kubernetes.io/service-name=%s-private", s->id.name);
	r = kube_list(a->client, &kube_res_endpointslices, s->id.ns, &o, &list, &st);
	if (r < 0) {
		log_warn("cannot list EndpointSlices", "namespace=%s service=%s-private error=%s",
			 s->id.ns, s->id.name, st.message);
		return r;
	}
	json_object *items = cache_json_get(list, "items");
	size_t ni = items && json_object_is_type(items, json_type_array) ?
			    json_object_array_length(items) :
			    0;
	for (size_t i = 0; i < ni; i++) {
		json_object *slice = json_object_array_get_idx(items, i);
		int port = slice_port(slice);
		json_object *eps = cache_json_get(slice, "endpoints");
		size_t ne = eps && json_object_is_type(eps, json_type_array) ?
				    json_object_array_length(eps) :
				    0;
		if (!port)
			continue;
		for (size_t j = 0; j < ne && n < ACTSVC_MAX_ENDPOINTS; j++) {
			json_object *e = json_object_array_get_idx(eps, j);
			json_object *ready = cache_json_get(e, "conditions.ready");
			json_object *term = cache_json_get(e, "conditions.terminating");
			json_object *addrs = cache_json_get(e, "addresses");
			if ((ready && !json_object_get_boolean(ready)) ||
			    (term && json_object_get_boolean(term)) || !addrs ||
			    !json_object_is_type(addrs, json_type_array) ||
			    json_object_array_length(addrs) == 0)
				continue;
			const char *ip = json_object_get_string(json_object_array_get_idx(addrs, 0));
			if (!ip || strlen(ip) >= ACTSVC_IP_MAX)
				continue;
			snprintf(ep[n].ip, sizeof(ep[n].ip), "%s", ip);
			ep[n].port = port;
			n++;
		}
	}
	json_object_put(list);
	*ret_n = n;
	return 0;
}

static void poll_one(struct activator *a, struct actsvc *s)
{
	struct actsvc_endpoint ep[ACTSVC_MAX_ENDPOINTS];
	size_t n = 0;
	int r = list_endpoints(a, s, ep, &n);

	if (r == 0)
		actsvc_publish(s, ep, n);
	if ((r < 0 || n == 0) && actsvc_activation_due(s, ACTIVATION_REFRESH_NS))
		activate(a, s);
	else if (r == 0 && n > 0 && actsvc_release_due(s))
		activate(a, s); /* the held requests go out: the idle clock starts now */
}

static void *poller_main(void *ud)
{
	struct activator *a = ud;
	struct actsvc *busy[256];
	uint64_t interval = (uint64_t)a->cfg.poll_interval_ms * KTIME_NSEC_PER_MSEC;

	while (!atomic_load(&a->stop)) {
		size_t n = actsvc_busy(a->table, busy, 256);
		for (size_t i = 0; i < n; i++) {
			poll_one(a, busy[i]);
			actsvc_put(a->table, busy[i]);
		}
		actsvc_wait_kick(a->table, interval);
	}
	return NULL;
}

/* ---- the forward -------------------------------------------------------- */

struct upstream {
	CURL *easy;
	CURLM *multi;
	struct curl_slist *headers;
	bool started, headers_done, done, paused, failed_connect;
	CURLcode result;
	long status;
	size_t n_resp, resp_bytes;
	char *resp[UPSTREAM_MAX_HEADERS]; /* "Name: value", of the final answer */
	bool resp_overflow;
	char *buf;               /* UPSTREAM_BUF_MAX bytes of the answer's body */
	size_t buf_len, buf_off; /* held: buf[buf_off..buf_len) */
	char errbuf[CURL_ERROR_SIZE];
};

static void upstream_clear_headers(struct upstream *u)
{
	for (size_t i = 0; i < u->n_resp; i++)
		free(u->resp[i]);
	u->n_resp = 0;
	u->resp_bytes = 0;
}

static void upstream_free(struct upstream *u)
{
	if (u->multi && u->easy)
		curl_multi_remove_handle(u->multi, u->easy);
	if (u->easy)
		curl_easy_cleanup(u->easy);
	if (u->multi)
		curl_multi_cleanup(u->multi);
	curl_slist_free_all(u->headers);
	upstream_clear_headers(u);
	free(u->buf);
	memset(u, 0, sizeof(*u));
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct upstream *u = ud;
	size_t len = size * n, l = len;

	while (l > 0 && (p[l - 1] == '\r' || p[l - 1] == '\n'))
		l--;
	if (l >= 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new answer (after a 1xx) */
		upstream_clear_headers(u);
		return len;
	}
	if (l == 0) { /* the end of a header block */
		long code = 0;
		curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200) {
			u->status = code;
			u->headers_done = true;
		}
		return len;
	}
	if (u->n_resp >= UPSTREAM_MAX_HEADERS || u->resp_bytes + l > UPSTREAM_MAX_HEADER_BYTES) {
		u->resp_overflow = true;
		return len;
	}
	char *h = strndup(p, l);
	if (!h)
		return 0;
	u->resp[u->n_resp++] = h;
	u->resp_bytes += l;
	return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct upstream *u = ud;
	size_t len = size * n;

	if (u->buf_off > 0 && u->buf_len + len > UPSTREAM_BUF_MAX) { /* compact */
		memmove(u->buf, u->buf + u->buf_off, u->buf_len - u->buf_off);
		u->buf_len -= u->buf_off;
		u->buf_off = 0;
	}
	if (u->buf_len + len > UPSTREAM_BUF_MAX) {
		if (u->buf_len > 0) { /* the client reads slower: wait for it */
			u->paused = true;
			return CURL_WRITEFUNC_PAUSE;
		}
		return 0; /* one write larger than the buffer */
	}
	memcpy(u->buf + u->buf_len, p, len);
	u->buf_len += len;
	return len;
}

struct fwd_headers {
	struct curl_slist *list;
	bool failed;
};

static enum MHD_Result add_req_header(void *ud, enum MHD_ValueKind kind, const char *key,
				      const char *value)
{
	struct fwd_headers *h = ud;
	char line[8192];
	(void)kind;
	if (!key || actreq_drop_request_header(key))
		return MHD_YES;
	if ((size_t)snprintf(line, sizeof(line), "%s: %s", key, value ? value : "") >= sizeof(line))
		return MHD_YES;
	struct curl_slist *l = curl_slist_append(h->list, line);
	if (!l) {
		h->failed = true;
		return MHD_NO;
	}
	h->list = l;
	return MHD_YES;
}

/* ---- one request -------------------------------------------------------- */

enum req_phase {
	PHASE_HOLD,    /* waiting for a ready endpoint */
	PHASE_FORWARD, /* an endpoint: the request is sent, waiting for the answer's head */
	PHASE_BODY,    /* relaying the answer's body */
	PHASE_END,     /* nothing more to send */
};

struct request {
	struct activator *a;
	struct MHD_Connection *conn;
	char *uri; /* raw, with the query */
	struct actsvc *svc;
	struct dynbuf body;
	size_t seen;
	size_t reserved; /* of --max-held-bytes */
	bool too_big, busy, stream, holding, admitted, refused;
	enum req_phase phase;
	uint64_t start_ns, deadline_ns, next_keepalive_ns;
	uint64_t fresh_ns;       /* only endpoints listed after this (monotonic) */
	struct spec_values spec; /* the service's bounds when the request came */
	struct actsvc_endpoint ep;
	struct upstream up;
	struct curl_slist *fwd; /* the request's headers to forward */
	char method[16];
	char client_ip[64];
	char msg[512]; /* a pending SSE comment or error event */
	size_t msg_len, msg_off;
};

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct activator *a = cls;
	struct request *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->a = a;
	q->conn = c;
	q->uri = strdup(uri ? uri : "/");
	q->start_ns = ktime_mono_ns();
	dynbuf_init(&q->body, (size_t)a->cfg.max_body);
	return q;
}

static void request_free(struct request *q)
{
	struct activator *a = q->a;
	if (q->holding) {
		actsvc_unhold(q->svc);
		metric_add(svc_series(a, &fam_held, q->svc), -1);
	}
	if (q->svc)
		actsvc_put(a->table, q->svc);
	if (q->reserved)
		atomic_fetch_sub(&a->held_bytes, (long)q->reserved);
	upstream_free(&q->up);
	curl_slist_free_all(q->fwd);
	dynbuf_free(&q->body);
	free(q->uri);
	free(q);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	if (*con_cls)
		request_free(*con_cls);
	*con_cls = NULL;
}

/*
 * Every answer of the activator closes its connection. The public Service
 * names the activator only while no pod is warm, and kube-proxy keeps a
 * connection on the endpoint it was opened to: a client that kept its
 * connection (HTTP keep-alive) would send all its later requests through
 * the activator, an extra hop with its own limits, long after the Service
 * moved to the pods (measured on the real node: all 600 requests of a
 * keep-alive client, 60 s at 10 rps, though the Service named the pod for
 * the last 30 s and more). A new connection per request costs
 * nothing next to a cold start; the next one goes where the Service is.
 */
static void close_after(struct MHD_Response *r)
{
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
}

/* A JSON error the OpenAI-style clients can show. */
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned code, const char *type,
				   const char *retry_after, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned code, const char *type,
				   const char *retry_after, const char *fmt, ...)
{
	char msg[600], body[900];
	va_list ap;
	json_object *o, *e;
	enum MHD_Result ret;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o = json_object_new_object();
	e = json_object_new_object();
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(e, "type", json_object_new_string(type));
	json_object_object_add(e, "code", json_object_new_int((int)code));
	json_object_object_add(o, "error", e);
	int n = snprintf(body, sizeof(body), "%s\n",
			 json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	if (n < 0 || (size_t)n >= sizeof(body))
		n = (int)sizeof(body) - 1;
	struct MHD_Response *r = MHD_create_response_from_buffer((size_t)n, body,
								 MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "application/json");
	if (retry_after)
		MHD_add_response_header(r, "Retry-After", retry_after);
	close_after(r);
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static void hold_end(struct request *q, bool found)
{
	struct activator *a = q->a;
	if (!q->holding)
		return;
	q->holding = false;
	actsvc_unhold(q->svc);
	metric_add(svc_series(a, &fam_held, q->svc), -1);
	if (found)
		metric_observe(svc_series(a, &fam_wait, q->svc), since_s(q->start_ns));
}

/* Start the forward to q->ep; -errno when libcurl cannot set it up. */
static int forward_start(struct request *q)
{
	struct upstream *u = &q->up;
	char url[4096];
	const char *ip = q->ep.ip;
	bool v6 = strchr(ip, ':') != NULL;

	upstream_free(u);
	u->buf = malloc(UPSTREAM_BUF_MAX);
	if (!u->buf)
		return -ENOMEM;
	if ((size_t)snprintf(url, sizeof(url), "http://%s%s%s:%d%s", v6 ? "[" : "", ip,
			     v6 ? "]" : "", q->ep.port, q->uri) >= sizeof(url))
		return -ENAMETOOLONG;
	u->easy = curl_easy_init();
	u->multi = curl_multi_init();
	if (!u->easy || !u->multi)
		return -ENOMEM;
	for (struct curl_slist *l = q->fwd; l; l = l->next)
		if (!(u->headers = curl_slist_append(u->headers, l->data)))
			return -ENOMEM;
	curl_easy_setopt(u->easy, CURLOPT_URL, url);
	curl_easy_setopt(u->easy, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(u->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(u->easy, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	/* A pod whose node vanished mid-answer (no FIN, no RST) is given up
	 * within about 30 s, not waited for until the kernel's retransmissions
	 * end (a stream waits for nothing to send: minutes to forever); a pod
	 * thinking for minutes before its next token answers the probes. */
	kube_curl_liveness(u->easy);
	curl_easy_setopt(u->easy, CURLOPT_HTTPHEADER, u->headers);
	curl_easy_setopt(u->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(u->easy, CURLOPT_HEADERDATA, u);
	curl_easy_setopt(u->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(u->easy, CURLOPT_WRITEDATA, u);
	curl_easy_setopt(u->easy, CURLOPT_ERRORBUFFER, u->errbuf);
	curl_easy_setopt(u->easy, CURLOPT_HTTP_CONTENT_DECODING, 0L);
	curl_easy_setopt(u->easy, CURLOPT_HTTP_TRANSFER_DECODING, 1L);
	if (strcmp(q->method, "HEAD") == 0) {
		curl_easy_setopt(u->easy, CURLOPT_NOBODY, 1L);
	} else if (q->body.len > 0 || strcmp(q->method, "POST") == 0 ||
		   strcmp(q->method, "PUT") == 0 || strcmp(q->method, "PATCH") == 0) {
		curl_easy_setopt(u->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body.len);
		curl_easy_setopt(u->easy, CURLOPT_POSTFIELDS, dynbuf_str(&q->body));
		if (strcmp(q->method, "POST") != 0)
			curl_easy_setopt(u->easy, CURLOPT_CUSTOMREQUEST, q->method);
	} else if (strcmp(q->method, "GET") != 0) {
		curl_easy_setopt(u->easy, CURLOPT_CUSTOMREQUEST, q->method);
	}
	if (curl_multi_add_handle(u->multi, u->easy) != CURLM_OK)
		return -ENOMEM;
	u->started = true;
	return 0;
}

/* Drive the transfer for up to timeout_ms or until something happened. */
static void upstream_pump(struct upstream *u, int timeout_ms)
{
	int running = 0, left;
	CURLMsg *m;

	if (u->done)
		return;
	if (u->paused && u->buf_len == u->buf_off) {
		u->paused = false;
		curl_easy_pause(u->easy, CURLPAUSE_CONT);
	}
	size_t before = u->buf_len;
	bool had_headers = u->headers_done;
	curl_multi_perform(u->multi, &running);
	while ((m = curl_multi_info_read(u->multi, &left)))
		if (m->msg == CURLMSG_DONE) {
			u->done = true;
			u->result = m->data.result;
			if (!u->headers_done && u->result == CURLE_OK) {
				curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &u->status);
				u->headers_done = u->status >= 200;
			}
		}
	if (u->done || u->buf_len != before || u->headers_done != had_headers)
		return;
	curl_multi_poll(u->multi, NULL, 0, timeout_ms, NULL);
}

/* ---- holding ------------------------------------------------------------ */

/*
 * Wait for an endpoint (a slice of at most WAIT_SLICE_NS, so the caller can
 * send keep-alives and notice a client that left): 0 found (q->ep set),
 * -EAGAIN not yet, -ETIMEDOUT past the deadline, -EPIPE client gone.
 */
static int hold_step(struct request *q)
{
	uint64_t now = ktime_mono_ns();
	uint64_t until = q->deadline_ns;
	if (until > now + WAIT_SLICE_NS)
		until = now + WAIT_SLICE_NS;
	if (q->stream && q->next_keepalive_ns && until > q->next_keepalive_ns)
		until = q->next_keepalive_ns;
	int r = actsvc_wait(q->svc, q->fresh_ns, until, &q->ep);
	if (r == 0)
		return 0;
	if (ktime_mono_ns() >= q->deadline_ns)
		return -ETIMEDOUT;
	if (httpserver_peer_gone(q->conn))
		return -EPIPE;
	return -EAGAIN;
}

/* The reason a held request timed out, for people: whether the operator
 * acted on the activation at all (status.replicas counts its pods). */
static void timeout_reason(struct request *q, char *buf, size_t len)
{
	struct activator *a = q->a;
	json_object *o = NULL;
	struct kube_status st;
	int r = kube_get(a->client, &kube_res_inferenceservices, q->svc->id.ns, q->svc->id.name,
			 NULL, &o, &st);
	if (r < 0) {
		snprintf(buf, len,
			 "activation timed out after %d s, and the InferenceService "
			 "cannot be read (%.200s)",
			 q->spec.timeout_s, st.message);
		return;
	}
	int64_t replicas = cache_json_int(o, "status.replicas", 0);
	int64_t desired = cache_json_int(o, "status.desiredReplicas", 0);
	if (replicas == 0 && desired == 0)
		snprintf(buf, len,
			 "activation timed out after %d s: no replica was started "
			 "after the activation request (is kinfer-operator running?)",
			 q->spec.timeout_s);
	else
		snprintf(buf, len,
			 "activation timed out after %d s: the model is still starting "
			 "(%lld replicas, none ready yet)",
			 q->spec.timeout_s, (long long)replicas);
	json_object_put(o);
}

static void count_timeout(struct request *q)
{
	metric_add(svc_series(q->a, &fam_timeouts, q->svc), 1);
	log_warn("held request timed out", "namespace=%s name=%s waited_s=%.3f", q->svc->id.ns,
		 q->svc->id.name, since_s(q->start_ns));
}

/* A forwarded request whose client left: counted, logged. */
static void cancelled(struct request *q, const char *what)
{
	metric_add(svc_series(q->a, &fam_cancels, q->svc), 1);
	log_info(what, "namespace=%s name=%s endpoint=%s:%d after_s=%.3f", q->svc->id.ns,
		 q->svc->id.name, q->ep.ip, q->ep.port, since_s(q->start_ns));
}

/*
 * After an endpoint was found: send the request and wait for the answer's
 * head. 0 with the head, -ETIMEDOUT (deadline), -EPIPE (client gone),
 * -EIO (the pod failed the request; q->up.errbuf says how). A pod that
 * refuses the connection sends the request back to holding while the
 * deadline allows (it may have just gone away).
 */
static int forward_head(struct request *q)
{
	uint64_t head_deadline = ktime_mono_ns() +
				 (uint64_t)q->a->cfg.header_timeout_ms * KTIME_NSEC_PER_MSEC;

	for (;;) {
		if (!q->up.started && forward_start(q) < 0)
			return -EIO;
		while (!q->up.headers_done && !q->up.done) {
			upstream_pump(&q->up, 200);
			if (ktime_mono_ns() >= head_deadline)
				return -ETIMEDOUT;
			if (!q->up.headers_done && httpserver_peer_gone(q->conn)) {
				cancelled(q, "the client went away before the pod's answer");
				return -EPIPE;
			}
		}
		if (q->up.headers_done)
			return 0;
		double connect_s = 0;
		curl_easy_getinfo(q->up.easy, CURLINFO_CONNECT_TIME, &connect_s);
		bool unconnected = q->up.result == CURLE_COULDNT_CONNECT ||
				   (q->up.result == CURLE_OPERATION_TIMEDOUT && connect_s == 0);
		if (!unconnected || ktime_mono_ns() >= q->deadline_ns)
			return -EIO;
		/* Refused or unreachable: that pod is gone; wait for a list the
		 * poller makes from now on. */
		q->fresh_ns = ktime_mono_ns();
		actsvc_kick(q->a->table);
		log_info("endpoint refused the connection; holding again",
			 "namespace=%s name=%s "
			 "endpoint=%s:%d",
			 q->svc->id.ns, q->svc->id.name, q->ep.ip, q->ep.port);
		upstream_free(&q->up);
		usleep(200 * 1000);
		int r;
		while ((r = hold_step(q)) == -EAGAIN)
			;
		if (r < 0)
			return r;
	}
}

static void add_resp_headers(struct request *q, struct MHD_Response *r)
{
	for (size_t i = 0; i < q->up.n_resp; i++) {
		char *h = q->up.resp[i], *colon = strchr(h, ':');
		if (!colon)
			continue;
		*colon = '\0';
		const char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		if (!actreq_drop_response_header(h))
			MHD_add_response_header(r, h, v);
		*colon = ':';
	}
}

/* Copy what the body buffer holds; 0 when empty. */
static ssize_t relay(struct request *q, char *buf, size_t max)
{
	struct upstream *u = &q->up;
	size_t avail = u->buf_len - u->buf_off;
	if (avail == 0)
		return 0;
	if (avail > max)
		avail = max;
	memcpy(buf, u->buf + u->buf_off, avail);
	u->buf_off += avail;
	if (u->buf_off == u->buf_len)
		u->buf_off = u->buf_len = 0;
	return (ssize_t)avail;
}

static ssize_t body_reader(struct request *q, char *buf, size_t max)
{
	for (;;) {
		if (atomic_load(&q->a->stop)) {
			/* --shutdown-timeout is over: the rest is cut. */
			log_info("stopping: the pod's answer cut",
				 "namespace=%s name=%s after_s=%.3f", q->svc->id.ns,
				 q->svc->id.name, since_s(q->start_ns));
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
		ssize_t n = relay(q, buf, max);
		if (n > 0)
			return n;
		if (q->up.done) {
			if (q->up.result != CURLE_OK) {
				metric_add(svc_series(q->a, &fam_upstream_errors, q->svc), 1);
				log_warn("the pod's answer broke off",
					 "namespace=%s name=%s error=%s", q->svc->id.ns,
					 q->svc->id.name, q->up.errbuf);
				return MHD_CONTENT_READER_END_WITH_ERROR;
			}
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		upstream_pump(&q->up, 1000);
		if (q->up.buf_len == q->up.buf_off && !q->up.done && httpserver_peer_gone(q->conn)) {
			/* Returning closes the forward (upstream_free): a model
			 * server stops a request whose connection closed. */
			cancelled(q, "the client went away during the pod's answer");
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
	}
}

/* Emit q->msg (a keep-alive comment or an error event) from its offset. */
static ssize_t emit_msg(struct request *q, char *buf, size_t max)
{
	size_t n = q->msg_len - q->msg_off;
	if (n > max)
		n = max;
	memcpy(buf, q->msg + q->msg_off, n);
	q->msg_off += n;
	return (ssize_t)n;
}

/*
 * The streaming request's content reader: keep-alive comments while held,
 * then the model's stream. The 200 and its headers went out first, so
 * what goes wrong later is said in the stream (an "error" event).
 */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct request *q = cls;
	(void)pos;

	if (q->msg_off < q->msg_len)
		return emit_msg(q, buf, max);
	switch (q->phase) {
	case PHASE_HOLD:
		for (;;) {
			if (ktime_mono_ns() >= q->next_keepalive_ns) {
				q->next_keepalive_ns = ktime_mono_ns() +
						       (uint64_t)q->a->cfg.keepalive_ms *
							       KTIME_NSEC_PER_MSEC;
				q->msg_len = (size_t)snprintf(q->msg, sizeof(q->msg),
							      ": model starting\n\n");
				q->msg_off = 0;
				return emit_msg(q, buf, max);
			}
			int r = hold_step(q);
			if (r == -EAGAIN)
				continue;
			if (r == 0) {
				hold_end(q, true);
				q->phase = PHASE_FORWARD;
				break;
			}
			hold_end(q, false);
			if (r == -EPIPE)
				return MHD_CONTENT_READER_END_WITH_ERROR;
			char why[400];
			count_timeout(q);
			timeout_reason(q, why, sizeof(why));
			json_object *m = json_object_new_string(why);
			q->msg_len = (size_t)snprintf(
				q->msg, sizeof(q->msg),
				"event: error\ndata: {\"error\":{\"message\":%s,\"type\":\"model_starting\","
				"\"code\":503}}\n\n",
				json_object_to_json_string(m));
			json_object_put(m);
			if (q->msg_len >= sizeof(q->msg))
				q->msg_len = sizeof(q->msg) - 1;
			q->msg_off = 0;
			q->phase = PHASE_END;
			return emit_msg(q, buf, max);
		}
		/* fall through */
	case PHASE_FORWARD: {
		int r = forward_head(q);
		if (r < 0) {
			if (r == -ETIMEDOUT)
				count_timeout(q);
			else if (r == -EIO)
				metric_add(svc_series(q->a, &fam_upstream_errors, q->svc), 1);
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
		q->phase = PHASE_BODY;
		if (q->up.status >= 300) {
			q->msg_len = (size_t)snprintf(q->msg, sizeof(q->msg),
						      ": the model answered %ld\n\n", q->up.status);
			q->msg_off = 0;
			return emit_msg(q, buf, max);
		}
	}
		/* fall through */
	case PHASE_BODY:
		return body_reader(q, buf, max);
	case PHASE_END:
	default:
		return MHD_CONTENT_READER_END_OF_STREAM;
	}
}

static ssize_t plain_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	return body_reader(cls, buf, max);
}

/* ---- the handler -------------------------------------------------------- */

/* Count a refusal before any service was known, and remember that q is
 * answered (the rest of its body is dropped). */
static void refuse(struct request *q, const char *reason)
{
	const char *lv[] = { reason };
	q->refused = true;
	metric_add(metrics_series(q->a->metrics, &fam_refused, lv), 1);
}

/* First call: Host -> service -> spec. MHD_YES to read the body, or the
 * refusal queued. */
static enum MHD_Result admit(struct activator *a, struct request *q, struct MHD_Connection *c,
			     const char *method)
{
	struct actreq_target id;
	char err[400];
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");

	snprintf(q->method, sizeof(q->method), "%s", method);
	if (q->uri[0] != '/') {
		refuse(q, "bad_uri");
		return reply_error(c, 400, "invalid_request", NULL,
				   "request target must be a path starting with '/'");
	}
	if (actreq_parse_host(host, &id, err, sizeof(err)) < 0) {
		refuse(q, "bad_host");
		return reply_error(c, 400, "invalid_request", NULL, "%s", err);
	}
	q->svc = actsvc_get(a->table, &id);
	if (!q->svc) {
		refuse(q, "too_many_services");
		return reply_error(c, 503, "service_unavailable", RETRY_AFTER_OVERFLOW,
				   "the activator tracks too many services at once");
	}
	int ex = svc_spec(a, q->svc, &q->spec, err, sizeof(err));
	if (ex < 0) {
		refuse(q, "api_error");
		return reply_error(c, 503, "service_unavailable", RETRY_AFTER_OVERFLOW, "%s", err);
	}
	if (ex == 0 || !q->spec.scale_to_zero) {
		refuse(q, ex == 0 ? "not_found" : "not_scale_to_zero");
		return reply_error(c, 404, "not_found", NULL,
				   ex == 0 ? "no InferenceService %s/%s (from Host \"%s\")" :
					     "InferenceService %s/%s has no spec.scaling.scaleToZero: the "
					     "activator does not serve it (from Host \"%s\")",
				   id.ns, id.name, host);
	}
	metric_add(svc_series(a, &fam_requests, q->svc), 1);
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
	if (cl) {
		char *end;
		unsigned long long n = strtoull(cl, &end, 10);
		if (*end == '\0' && n > (unsigned long long)a->cfg.max_body)
			q->too_big = true;
	}
	return MHD_YES;
}

static int append_body(struct activator *a, struct request *q, const char *data, size_t n)
{
	q->seen += n;
	if (q->too_big || q->busy)
		return 0;
	if (n > (size_t)a->cfg.max_body - q->body.len) {
		q->too_big = true;
		dynbuf_free(&q->body);
		return 0;
	}
	/* The global budget: every byte held counts until the request ends. */
	long after = atomic_fetch_add(&a->held_bytes, (long)n) + (long)n;
	q->reserved += n;
	if (after > a->cfg.max_held_bytes) {
		q->busy = true;
		dynbuf_free(&q->body);
		return 0;
	}
	return dynbuf_add(&q->body, data, n) == -ENOMEM ? -ENOMEM : 0;
}

static struct curl_slist *request_headers(struct request *q)
{
	struct fwd_headers h = { 0 };
	char xff[128];
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(q->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	MHD_get_connection_values(q->conn, MHD_HEADER_KIND, add_req_header, &h);
	if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ci->client_addr;
		inet_ntop(AF_INET, &sin->sin_addr, q->client_ip, sizeof(q->client_ip));
		snprintf(xff, sizeof(xff), "X-Forwarded-For: %s", q->client_ip);
		struct curl_slist *l = curl_slist_append(h.list, xff);
		if (l)
			h.list = l;
	}
	/* No 100-continue round trip: the body is here already. */
	struct curl_slist *l = curl_slist_append(h.list, "Expect:");
	if (l)
		h.list = l;
	return h.failed ? (curl_slist_free_all(h.list), NULL) : h.list;
}

/* The body is read: hold, forward, answer. */
static enum MHD_Result serve(struct activator *a, struct request *q, struct MHD_Connection *c)
{
	struct actsvc *s = q->svc;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	int r;

	if (q->too_big)
		return reply_error(c, 413, "invalid_request", NULL,
				   "request body over the activator's %d-byte limit",
				   a->cfg.max_body);
	if (q->busy)
		return reply_error(c, 503, "service_unavailable", RETRY_AFTER_OVERFLOW,
				   "the activator holds its limit of request bytes; retry");
	q->fwd = request_headers(q);
	if (!q->fwd)
		return MHD_NO;
	q->stream = actreq_wants_stream(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept"),
					q->body.p, q->body.len);
	q->deadline_ns = q->start_ns + (uint64_t)q->spec.timeout_s * KTIME_NSEC_PER_SEC;

	/* Warm already (the Service still names the activator for a moment):
	 * straight through. */
	if (actsvc_pick(s, 2 * (uint64_t)a->cfg.poll_interval_ms * KTIME_NSEC_PER_MSEC, &q->ep) == 0) {
		q->phase = PHASE_FORWARD;
	} else {
		if (actsvc_hold(s, q->spec.max_pending) < 0) {
			metric_add(svc_series(a, &fam_overflow, s), 1);
			return reply_error(c, 503, "model_starting", RETRY_AFTER_OVERFLOW,
					   "model %s/%s is starting and %d requests are already held "
					   "for it (maxPendingRequests); retry later",
					   s->id.ns, s->id.name, q->spec.max_pending);
		}
		q->holding = true;
		q->fresh_ns = ktime_mono_ns();
		metric_add(svc_series(a, &fam_held, s), 1);
		actsvc_kick(a->table);
		q->phase = PHASE_HOLD;
	}

	/* A stream is answered 200 with ": model starting" comments only when
	 * it has to wait. A service this activator has no list of yet may be
	 * warm (its Service names the activator for a moment after its pods
	 * got ready): the first list (the poller is kicked above) is waited
	 * for, FIRST_LIST_NS at most, and with a pod in it the request goes
	 * through as any other, the model's own status and headers. */
	if (q->stream && q->phase == PHASE_HOLD) {
		uint64_t until = q->fresh_ns + FIRST_LIST_NS;
		if (actsvc_listed(s, q->fresh_ns, until < q->deadline_ns ? until : q->deadline_ns,
				  &q->ep) == 0) {
			hold_end(q, true);
			q->phase = PHASE_FORWARD;
		}
	}
	if (q->stream && q->phase == PHASE_HOLD) {
		q->next_keepalive_ns = ktime_mono_ns();
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, q,
							 NULL);
		if (!resp)
			return MHD_NO;
		MHD_add_response_header(resp, "Content-Type", "text/event-stream");
		MHD_add_response_header(resp, "Cache-Control", "no-cache");
		MHD_add_response_header(resp, "X-Accel-Buffering", "no");
		close_after(resp);
		ret = MHD_queue_response(c, 200, resp);
		MHD_destroy_response(resp);
		return ret;
	}

	while (q->phase == PHASE_HOLD) {
		r = hold_step(q);
		if (r == -EAGAIN)
			continue;
		hold_end(q, r == 0);
		if (r == -EPIPE)
			return MHD_NO;
		if (r == -ETIMEDOUT) {
			char why[400];
			count_timeout(q);
			timeout_reason(q, why, sizeof(why));
			return reply_error(c, 503, "model_starting", RETRY_AFTER_TIMEOUT,
					   "model %s/%s is starting: %s", s->id.ns, s->id.name, why);
		}
		q->phase = PHASE_FORWARD;
	}
	r = forward_head(q);
	if (r == -EPIPE)
		return MHD_NO;
	if (r == -ETIMEDOUT && q->holding) {
		hold_end(q, false);
		count_timeout(q);
		return reply_error(c, 503, "model_starting", RETRY_AFTER_TIMEOUT,
				   "model %s/%s is starting: activation timed out after %d s",
				   s->id.ns, s->id.name, q->spec.timeout_s);
	}
	hold_end(q, false);
	if (r < 0) {
		metric_add(svc_series(a, &fam_upstream_errors, s), 1);
		log_warn("cannot forward", "namespace=%s name=%s endpoint=%s:%d error=%s", s->id.ns,
			 s->id.name, q->ep.ip, q->ep.port,
			 r == -ETIMEDOUT ? "no answer within --response-header-timeout" :
					   q->up.errbuf);
		return reply_error(c, r == -ETIMEDOUT ? 504 : 502, "upstream_error", NULL,
				   "model %s/%s: the pod at %s:%d %s", s->id.ns, s->id.name,
				   q->ep.ip, q->ep.port,
				   r == -ETIMEDOUT ? "did not answer in time" : "failed the request");
	}
	q->phase = PHASE_BODY;
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, plain_reader, q, NULL);
	if (!resp)
		return MHD_NO;
	add_resp_headers(q, resp);
	close_after(resp);
	ret = MHD_queue_response(c, (unsigned)q->up.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_size, void **con_cls)
{
	struct activator *a = cls;
	struct request *q = *con_cls;
	(void)url;
	(void)version;

	if (!q)
		return MHD_NO;             /* out of memory in on_uri */
	if (!q->admitted && !q->refused) { /* the first call */
		enum MHD_Result r = admit(a, q, c, method);
		if (q->refused)
			return r;
		q->admitted = true;
		return r;
	}
	if (q->refused) { /* answered already: drop the rest */
		*data_size = 0;
		return MHD_YES;
	}
	if (*data_size) {
		int r = append_body(a, q, data, *data_size);
		*data_size = 0;
		return r < 0 ? MHD_NO : MHD_YES;
	}
	return serve(a, q, c);
}

/* ---- health, start, stop ------------------------------------------------ */

static bool healthy(void *ud, char *msg, size_t len)
{
	struct activator *a = ud;
	int held;
	size_t n;
	actsvc_totals(a->table, &held, &n);
	snprintf(msg, len, "ok: %d requests held for %zu services", held, n);
	return true;
}

static bool ready(void *ud, char *msg, size_t len)
{
	struct activator *a = ud;
	if (atomic_load(&a->draining)) {
		snprintf(msg, len, "shutting down");
		return false;
	}
	if (!atomic_load(&a->connected)) {
		snprintf(msg, len, "not connected to the API server yet");
		return false;
	}
	return healthy(ud, msg, len);
}

static int setup_logging(const struct config *cfg)
{
	return log_setup_flags("kinfer-operator activator", cfg->log_level, cfg->log_format);
}

static int start_proxy(struct activator *a)
{
	struct sockaddr_storage ss;
	unsigned sl;
	if (httpserver_parse_addr(a->cfg.listen, &ss, &sl) < 0)
		return -EINVAL;
	a->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
					MHD_USE_POLL | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
				0, NULL, NULL, on_request, a, MHD_OPTION_SOCK_ADDR,
				(struct sockaddr *)&ss, MHD_OPTION_URI_LOG_CALLBACK, on_uri, a,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)a->cfg.max_connections,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536, MHD_OPTION_END);
	return a->d ? 0 : -EADDRINUSE;
}

static unsigned connections(struct activator *a)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(a->d,
							    MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	return i ? i->num_connections : 0;
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: kinfer-operator activator [FLAGS]\n\n"
		     "Hold requests for InferenceServices scaled to zero, have kinfer scale them up,\n"
		     "and forward them to the first warm pod.\n\nFlags:\n");
	flags_usage(out, act_flags, N_ACT_FLAGS);
}

static int check_config(const struct config *cfg)
{
	struct sockaddr_storage ss;
	unsigned sl;
	if (httpserver_parse_addr(cfg->listen, &ss, &sl) < 0) {
		fprintf(stderr,
			"kinfer-operator activator: --listen: invalid value \"%s\": "
			"want host:port\n",
			cfg->listen);
		return -EINVAL;
	}
	if (cfg->http_addr && *cfg->http_addr && httpserver_parse_addr(cfg->http_addr, &ss, &sl) < 0) {
		fprintf(stderr,
			"kinfer-operator activator: --http-addr: invalid value \"%s\": "
			"want host:port\n",
			cfg->http_addr);
		return -EINVAL;
	}
	if (cfg->poll_interval_ms < 10 || cfg->keepalive_ms < 100 || cfg->max_connections < 1 ||
	    cfg->max_body < 1 || cfg->max_held_bytes < cfg->max_body) {
		fprintf(stderr,
			"kinfer-operator activator: want --endpoint-poll-interval >= 10ms, "
			"--keepalive-interval >= 100ms, --max-connections >= 1, --max-body >= 1 "
			"and --max-held-bytes >= --max-body\n");
		return -EINVAL;
	}
	return 0;
}

/* The API server's answer, waited for when it is down as the activator
 * starts (kube_wait_for_server); 1 when a stop signal came first. */
static int connect_api(struct activator *a, const sigset_t *stop)
{
	struct kube_client_options o = {
		.qps = 50,
		.burst = 100,
		.timeout_ms = a->cfg.kube_api_timeout_ms,
		.max_retries = 1,
		.backoff_base_ms = 100,
		.user_agent = "kinfer-operator/" KINFER_VERSION " activator",
	};
	struct kube_auth *auth = NULL;
	struct kube_status st;
	char err[512], version[64];
	int sig;
	int r = kube_auth_load(a->cfg.kubeconfig, a->cfg.context, &auth, err, sizeof(err));
	if (r < 0) {
		log_error("cannot configure the API client", "error=%s", err);
		return r;
	}
	r = kube_client_new(auth, &o, &a->client);
	kube_auth_free(auth);
	if (r < 0) {
		log_error("cannot create the API client", "error=%s", strerror(-r));
		return r;
	}
	r = kube_wait_for_server(a->client, stop, NULL, NULL, version, sizeof(version), &st, &sig);
	if (r == -EINTR) {
		log_info("signal received before the API server was reached", "signal=%d", sig);
		return 1;
	}
	if (r < 0)
		return r;
	atomic_store(&a->connected, true);
	log_info("connected to the API server", "server=%s version=%s",
		 kube_client_server(a->client), version);
	return 0;
}

/* SIGTERM: /readyz turns 503 (kinfer takes the pod out of the Services'
 * endpoints), new requests are still taken for --shutdown-delay (the
 * operator's EndpointSlice write and kube-proxy's next sync take that
 * long: a listener closed at once refused what came meanwhile, and an
 * idle activator did that in every rollout), requests in flight get
 * until --shutdown-timeout after the signal, then the rest are cut. A
 * second SIGTERM or SIGINT stops at once. */
static void drain_and_stop(struct activator *a, const sigset_t *set)
{
	uint64_t t0 = ktime_mono_ns();
	uint64_t end = t0 + (uint64_t)a->cfg.shutdown_timeout_ms * KTIME_NSEC_PER_MSEC;
	uint64_t open_until = t0 + (uint64_t)a->cfg.shutdown_delay_ms * KTIME_NSEC_PER_MSEC;
	uint64_t now;
	struct timespec tick = { 0, 100 * 1000 * 1000 };

	atomic_store(&a->draining, true);
	log_info("stopping: finishing the requests in flight", "connections=%u open_ms=%ld",
		 connections(a),
		 a->cfg.shutdown_delay_ms < a->cfg.shutdown_timeout_ms ? a->cfg.shutdown_delay_ms :
									 a->cfg.shutdown_timeout_ms);
	while ((now = ktime_mono_ns()) < end && (connections(a) > 0 || now < open_until))
		if (sigtimedwait(set, NULL, &tick) > 0) {
			log_info("second signal: stopping now", "connections=%u", connections(a));
			break;
		}
	atomic_store(&a->stop, true);
	actsvc_kick(a->table);
	pthread_join(a->poller, NULL);
	MHD_stop_daemon(a->d);
}

int activator_main(int argc, char **argv, int argi)
{
	struct activator a = { 0 };
	struct httpserver *hs = NULL;
	struct httpserver_hooks hooks = { .healthy = healthy, .ready = ready, .ud = &a };
	bool help = false;
	char err[512];
	sigset_t set;
	int r, sig, code = 1;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (flags_parse(act_flags, N_ACT_FLAGS, &a.cfg, argc, argv, &argi, &help, err, sizeof(err)) <
	    0) {
		fprintf(stderr, "kinfer-operator activator: %s\n", err);
		return 2;
	}
	if (help) {
		usage(stdout);
		return 0;
	}
	if (argi < argc) {
		fprintf(stderr, "kinfer-operator activator: unexpected argument \"%s\"\n",
			argv[argi]);
		return 2;
	}
	if (setup_logging(&a.cfg) < 0 || check_config(&a.cfg) < 0)
		return 2;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (metrics_new(&a.metrics) < 0 || actsvc_table_new(&a.table) < 0)
		goto out;
	/* /healthz and /readyz first: a wait for the API server below is
	 * alive to the kubelet's probes, and not ready. */
	if (a.cfg.http_addr && *a.cfg.http_addr &&
	    httpserver_start(a.cfg.http_addr, a.metrics, &hooks, &hs) < 0) {
		log_error("cannot listen", "addr=%s", a.cfg.http_addr);
		goto out;
	}
	r = connect_api(&a, &set);
	if (r != 0) {
		code = r > 0 ? 0 : 1;
		goto out;
	}
	if (start_proxy(&a) < 0) {
		log_error("cannot listen", "addr=%s", a.cfg.listen);
		goto out;
	}
	if (pthread_create(&a.poller, NULL, poller_main, &a) != 0) {
		MHD_stop_daemon(a.d);
		goto out;
	}
	/* The ports bound (the flags may say 0: any free one, as tests do). */
	const union MHD_DaemonInfo *bound = MHD_get_daemon_info(a.d, MHD_DAEMON_INFO_BIND_PORT);
	log_info("activator serving", "listen=%s port=%u http=%s http_port=%u version=%s",
		 a.cfg.listen, bound ? (unsigned)bound->port : 0u,
		 a.cfg.http_addr ? a.cfg.http_addr : "", hs ? httpserver_port(hs) : 0u,
		 KINFER_VERSION);
	sigwait(&set, &sig);
	log_info("signal received", "signal=%d", sig);
	drain_and_stop(&a, &set);
	code = 0;
out:
	httpserver_stop(hs);
	actsvc_table_free(a.table);
	kube_client_free(a.client);
	metrics_free(a.metrics);
	curl_global_cleanup();
	log_info("stopped", "exit_code=%d", code);
	return code;
}
