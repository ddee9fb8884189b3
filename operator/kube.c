/*
 * The API client.
 *
 * A pool of curl easy handles (one per concurrent caller, bounded) keeps
 * connections alive between requests; a share handle lets them reuse DNS
 * and TLS sessions. Requests go through kube_request, which owns the rate
 * limit, the timeout, the retry policy and the decoding of errors. The verb
 * functions only build paths and bodies.
 */
#include "kube.h"

#include "backoff.h"
#include "jsonscan.h"
#include "dynbuf.h"
#include "ratelimit.h"
#include "ktime.h"
#include "log.h"
#include "text.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define KUBE_POOL_MAX 64
#define KUBE_PATH_MAX 8192
#define KUBE_TOKEN_MAX (64 * 1024)
#define KUBE_TOKEN_REFRESH_NS (60ULL * KTIME_NSEC_PER_SEC)
#define KUBE_RETRY_AFTER_CAP_S 60

const struct kube_resource kube_res_configmaps = { "", "v1", "ConfigMap", "configmaps", true };
const struct kube_resource kube_res_secrets = { "", "v1", "Secret", "secrets", true };
const struct kube_resource kube_res_namespaces = { "", "v1", "Namespace", "namespaces", false };
const struct kube_resource kube_res_pods = { "", "v1", "Pod", "pods", true };
const struct kube_resource kube_res_nodes = { "", "v1", "Node", "nodes", false };
const struct kube_resource kube_res_services = { "", "v1", "Service", "services", true };
const struct kube_resource kube_res_endpointslices = { "discovery.k8s.io", "v1", "EndpointSlice",
						       "endpointslices", true };
const struct kube_resource kube_res_events = { "events.k8s.io", "v1", "Event", "events", true };
const struct kube_resource kube_res_deployments = { "apps", "v1", "Deployment", "deployments", true };
const struct kube_resource kube_res_poddisruptionbudgets = { "policy", "v1", "PodDisruptionBudget",
							     "poddisruptionbudgets", true };
const struct kube_resource kube_res_hpas = { "autoscaling", "v2", "HorizontalPodAutoscaler",
					     "horizontalpodautoscalers", true };
const struct kube_resource kube_res_leases = { "coordination.k8s.io", "v1", "Lease", "leases", true };
const struct kube_resource kube_res_crds = { "apiextensions.k8s.io", "v1", "CustomResourceDefinition",
					     "customresourcedefinitions", false };
const struct kube_resource kube_res_inferenceservices = { "kinfer.io", "v1alpha1", "InferenceService",
							  "inferenceservices", true };

struct kube_client {
	struct kube_auth *auth; /* our own copy of what we need */
	struct kube_client_options o;
	char *user_agent;
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	struct ratelimit *rl;

	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	CURL *pool[KUBE_POOL_MAX];
	int pool_free;  /* handles in pool[] ready to use */
	int pool_total; /* handles created */

	pthread_mutex_t token_lock;
	char *token; /* current bearer token */
	uint64_t token_read_ns;
	struct timespec token_mtime;

	kube_observe_fn observe;
	void *observe_ud;
	atomic_bool fenced; /* kube_client_fence: no more writes */
};

/* ---- reasons ---------------------------------------------------------- */

static const struct {
	enum kube_reason reason;
	const char *name;
	int err;
} reason_table[] = {
	{ KUBE_REASON_UNKNOWN, "Unknown", -EPROTO },
	{ KUBE_REASON_NOT_FOUND, "NotFound", -ENOENT },
	{ KUBE_REASON_ALREADY_EXISTS, "AlreadyExists", -EEXIST },
	{ KUBE_REASON_CONFLICT, "Conflict", -ESTALE },
	{ KUBE_REASON_INVALID, "Invalid", -EINVAL },
	{ KUBE_REASON_GONE, "Gone", -EIDRM },
	{ KUBE_REASON_EXPIRED, "Expired", -EIDRM },
	{ KUBE_REASON_TOO_MANY_REQUESTS, "TooManyRequests", -EAGAIN },
	{ KUBE_REASON_UNAUTHORIZED, "Unauthorized", -EACCES },
	{ KUBE_REASON_FORBIDDEN, "Forbidden", -EPERM },
	{ KUBE_REASON_BAD_REQUEST, "BadRequest", -EBADMSG },
	{ KUBE_REASON_METHOD_NOT_ALLOWED, "MethodNotAllowed", -EOPNOTSUPP },
	{ KUBE_REASON_TIMEOUT, "Timeout", -ETIMEDOUT },
	{ KUBE_REASON_SERVER_TIMEOUT, "ServerTimeout", -ETIMEDOUT },
	{ KUBE_REASON_INTERNAL_ERROR, "InternalError", -EIO },
	{ KUBE_REASON_SERVICE_UNAVAILABLE, "ServiceUnavailable", -EIO },
	{ KUBE_REASON_REQUEST_ENTITY_TOO_LARGE, "RequestEntityTooLarge", -E2BIG },
	{ KUBE_REASON_UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", -EPROTO },
	{ KUBE_REASON_NOT_ACCEPTABLE, "NotAcceptable", -EPROTO },
	{ KUBE_REASON_TRANSPORT, "Transport", -ECONNREFUSED },
};

#define N_REASONS (sizeof(reason_table) / sizeof(reason_table[0]))

const char *kube_reason_name(enum kube_reason reason)
{
	for (size_t i = 0; i < N_REASONS; i++)
		if (reason_table[i].reason == reason)
			return reason_table[i].name;
	return "Unknown";
}

int kube_reason_errno(enum kube_reason reason)
{
	for (size_t i = 0; i < N_REASONS; i++)
		if (reason_table[i].reason == reason)
			return reason_table[i].err;
	return -EPROTO;
}

/* What apierrors.ReasonForError falls back to when no reason is sent. */
enum kube_reason kube_reason_from_code(long code)
{
	switch (code) {
	case 400:
		return KUBE_REASON_BAD_REQUEST;
	case 401:
		return KUBE_REASON_UNAUTHORIZED;
	case 403:
		return KUBE_REASON_FORBIDDEN;
	case 404:
		return KUBE_REASON_NOT_FOUND;
	case 405:
		return KUBE_REASON_METHOD_NOT_ALLOWED;
	case 406:
		return KUBE_REASON_NOT_ACCEPTABLE;
	case 409:
		return KUBE_REASON_CONFLICT;
	case 410:
		return KUBE_REASON_GONE;
	case 413:
		return KUBE_REASON_REQUEST_ENTITY_TOO_LARGE;
	case 415:
		return KUBE_REASON_UNSUPPORTED_MEDIA_TYPE;
	case 422:
		return KUBE_REASON_INVALID;
	case 429:
		return KUBE_REASON_TOO_MANY_REQUESTS;
	case 500:
		return KUBE_REASON_INTERNAL_ERROR;
	case 503:
		return KUBE_REASON_SERVICE_UNAVAILABLE;
	case 504:
		return KUBE_REASON_SERVER_TIMEOUT;
	default:
		return code >= 500 ? KUBE_REASON_INTERNAL_ERROR : KUBE_REASON_UNKNOWN;
	}
}

json_object *kube_json_parse(const char *s, size_t len)
{
	json_tokener *tok;
	json_object *o;
	size_t end;

	if (!s || len == 0 || len > 0x7fffffff)
		return NULL;
	tok = json_tokener_new_ex(KUBE_JSON_PARSE_DEPTH);
	if (!tok)
		return NULL;
	o = json_tokener_parse_ex(tok, s, (int)len);
	end = json_tokener_get_parse_end(tok);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	while (o && end < len && strchr(" \t\r\n", s[end]) && s[end])
		end++;
	if (o && end != len) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

int kube_json_too_deep(const char *s, size_t len, char *path, size_t path_len)
{
	return jsonscan_depth(s, len, 0, KUBE_JSON_MAX_DEPTH, true, path, path_len);
}

/* Does a Status's details.causes name reason (apierrors.HasStatusCause)?
 * At most 64 causes are read. */
static bool has_cause(json_object *details, const char *reason)
{
	json_object *causes, *c, *r;

	if (!json_object_object_get_ex(details, "causes", &causes) ||
	    !json_object_is_type(causes, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(causes) && i < 64; i++) {
		c = json_object_array_get_idx(causes, i);
		if (json_object_is_type(c, json_type_object) &&
		    json_object_object_get_ex(c, "reason", &r) &&
		    json_object_is_type(r, json_type_string) &&
		    strcmp(json_object_get_string(r), reason) == 0)
			return true;
	}
	return false;
}

void kube_status_decode(long code, const char *body, size_t len, struct kube_status *st)
{
	json_object *o = NULL, *v, *details;
	int attempts = st->attempts;
	long retry_after = st->retry_after_s;

	memset(st, 0, sizeof(*st));
	st->code = code;
	st->attempts = attempts;
	st->retry_after_s = retry_after;
	st->reason = kube_reason_from_code(code);
	if (body && len > 0)
		o = kube_json_parse(body, len);
	if (o && json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "kind", &v) && json_object_is_type(v, json_type_string) &&
	    strcmp(json_object_get_string(v), "Status") == 0) {
		if (json_object_object_get_ex(o, "reason", &v) && json_object_get_string_len(v) > 0) {
			const char *r = json_object_get_string(v);
			text_copy(st->reason_text, sizeof(st->reason_text), r);
			for (size_t i = 0; i < N_REASONS; i++)
				if (strcmp(reason_table[i].name, r) == 0 &&
				    reason_table[i].reason != KUBE_REASON_TRANSPORT)
					st->reason = reason_table[i].reason;
		}
		if (json_object_object_get_ex(o, "message", &v))
			text_copy(st->message, sizeof(st->message), json_object_get_string(v));
		if (json_object_object_get_ex(o, "code", &v) && json_object_get_int(v) > 0)
			st->code = code ? code : json_object_get_int(v);
		if (json_object_object_get_ex(o, "details", &details)) {
			if (json_object_object_get_ex(details, "retryAfterSeconds", &v) &&
			    json_object_get_int(v) > st->retry_after_s)
				st->retry_after_s = json_object_get_int(v);
			st->ns_terminating = has_cause(details, "NamespaceTerminating");
		}
	} else if (body && len > 0) {
		/* Not a Status (a proxy, a load balancer): keep the text. */
		size_t n = len < sizeof(st->message) - 1 ? len : sizeof(st->message) - 1;
		memcpy(st->message, body, n);
		st->message[n] = '\0';
		for (char *p = st->message; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
	}
	if (!st->reason_text[0])
		text_copy(st->reason_text, sizeof(st->reason_text), kube_reason_name(st->reason));
	if (!st->message[0])
		snprintf(st->message, sizeof(st->message), "the server answered %ld", code);
	json_object_put(o);
}

/* ---- paths ------------------------------------------------------------ */

int kube_escape(char *buf, size_t len, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
		if (o + (keep ? 1 : 3) >= len)
			return -ENAMETOOLONG;
		if (keep) {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '%';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	if (o >= len)
		return -ENAMETOOLONG;
	buf[o] = '\0';
	return 0;
}

/* A path segment the server could take for something else is refused. */
static bool segment_ok(const char *s)
{
	if (!s || !*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	if (strlen(s) > 253)
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == '?' || *s == '#' || *s == '%' || (unsigned char)*s <= ' ' ||
		    *s == 0x7f)
			return false;
	return true;
}

struct pathbuf {
	char *buf;
	size_t len, pos;
	int err;
};

static void pb_add(struct pathbuf *p, const char *s)
{
	size_t n = strlen(s);
	if (p->err)
		return;
	if (p->pos + n >= p->len) {
		p->err = -ENAMETOOLONG;
		return;
	}
	memcpy(p->buf + p->pos, s, n + 1);
	p->pos += n;
}

static void pb_param(struct pathbuf *p, const char *key, const char *value)
{
	char esc[4096];
	if (!value || p->err)
		return;
	if (kube_escape(esc, sizeof(esc), value) < 0) {
		p->err = -ENAMETOOLONG;
		return;
	}
	pb_add(p, strchr(p->buf, '?') ? "&" : "?");
	pb_add(p, key);
	pb_add(p, "=");
	pb_add(p, esc);
}

static void pb_num(struct pathbuf *p, const char *key, long v)
{
	char num[32];
	snprintf(num, sizeof(num), "%ld", v);
	pb_param(p, key, num);
}

int kube_path(char *buf, size_t len, const struct kube_resource *res, const char *ns,
	      const char *name, const char *subresource, const struct kube_opts *o)
{
	struct pathbuf p = { .buf = buf, .len = len };

	if (len == 0)
		return -ENAMETOOLONG;
	buf[0] = '\0';
	if ((ns && !segment_ok(ns)) || (name && !segment_ok(name)) ||
	    (subresource && !segment_ok(subresource)) || (subresource && !name))
		return -EINVAL;
	if (res->group[0]) {
		pb_add(&p, "/apis/");
		pb_add(&p, res->group);
	} else {
		pb_add(&p, "/api");
	}
	pb_add(&p, "/");
	pb_add(&p, res->version);
	if (res->namespaced && ns) {
		pb_add(&p, "/namespaces/");
		pb_add(&p, ns);
	}
	pb_add(&p, "/");
	pb_add(&p, res->plural);
	if (name) {
		pb_add(&p, "/");
		pb_add(&p, name);
	}
	if (subresource) {
		pb_add(&p, "/");
		pb_add(&p, subresource);
	}
	if (o) {
		pb_param(&p, "labelSelector", o->label_selector);
		pb_param(&p, "fieldSelector", o->field_selector);
		pb_param(&p, "resourceVersion", o->resource_version);
		pb_param(&p, "resourceVersionMatch", o->resource_version_match);
		if (o->limit > 0)
			pb_num(&p, "limit", o->limit);
		pb_param(&p, "continue", o->continue_token);
		if (o->watch)
			pb_param(&p, "watch", "true");
		if (o->allow_bookmarks)
			pb_param(&p, "allowWatchBookmarks", "true");
		if (o->timeout_seconds > 0)
			pb_num(&p, "timeoutSeconds", o->timeout_seconds);
		pb_param(&p, "fieldManager", o->field_manager);
		if (o->force)
			pb_param(&p, "force", "true");
		if (o->dry_run)
			pb_param(&p, "dryRun", "All");
	}
	return p.err;
}

/* ---- client ----------------------------------------------------------- */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access a, void *ud)
{
	struct kube_client *c = ud;
	(void)h;
	(void)a;
	pthread_mutex_lock(&c->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
	struct kube_client *c = ud;
	(void)h;
	pthread_mutex_unlock(&c->share_locks[data]);
}

static unsigned char *dup_bytes(const unsigned char *p, size_t n)
{
	unsigned char *d = malloc(n + 1);
	if (d) {
		memcpy(d, p, n);
		d[n] = '\0';
	}
	return d;
}

static char *dup_or_null(const char *s, bool *oom)
{
	char *d;
	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

/* A private copy of the auth record, so the caller may free theirs. */
static struct kube_auth *auth_copy(const struct kube_auth *a)
{
	struct kube_auth *d = calloc(1, sizeof(*d));
	bool oom = false;
	if (!d)
		return NULL;
	d->server = dup_or_null(a->server, &oom);
	d->ca_file = dup_or_null(a->ca_file, &oom);
	d->cert_file = dup_or_null(a->cert_file, &oom);
	d->key_file = dup_or_null(a->key_file, &oom);
	d->token = dup_or_null(a->token, &oom);
	d->token_file = dup_or_null(a->token_file, &oom);
	d->namespace = dup_or_null(a->namespace, &oom);
	d->context = dup_or_null(a->context, &oom);
	d->source = dup_or_null(a->source, &oom);
	d->insecure = a->insecure;
	if (a->ca_data && !(d->ca_data = dup_bytes(a->ca_data, a->ca_len)))
		oom = true;
	d->ca_len = a->ca_len;
	if (a->cert_data && !(d->cert_data = dup_bytes(a->cert_data, a->cert_len)))
		oom = true;
	d->cert_len = a->cert_len;
	if (a->key_data && !(d->key_data = dup_bytes(a->key_data, a->key_len)))
		oom = true;
	d->key_len = a->key_len;
	if (oom || !d->server) {
		kube_auth_free(d);
		return NULL;
	}
	return d;
}

static void global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int kube_client_new(const struct kube_auth *auth, const struct kube_client_options *opts,
		    struct kube_client **ret)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct kube_client *c;
	int r = -ENOMEM;

	if (!auth || !auth->server)
		return -EINVAL;
	pthread_once(&once, global_init);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (opts)
		c->o = *opts;
	if (c->o.qps == 0)
		c->o.qps = 20;
	if (c->o.burst <= 0)
		c->o.burst = 40;
	if (c->o.timeout_ms <= 0)
		c->o.timeout_ms = 30000;
	if (c->o.max_retries <= 0)
		c->o.max_retries = 5;
	if (c->o.max_body == 0)
		c->o.max_body = 64u << 20;
	if (c->o.backoff_base_ms <= 0)
		c->o.backoff_base_ms = 200;
	if (c->o.backoff_cap_ms <= 0)
		c->o.backoff_cap_ms = 10000;
	pthread_mutex_init(&c->pool_lock, NULL);
	pthread_cond_init(&c->pool_cond, NULL);
	pthread_mutex_init(&c->token_lock, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	c->auth = auth_copy(auth);
	c->user_agent = strdup(c->o.user_agent ? c->o.user_agent : "kinfer-operator");
	c->o.user_agent = NULL;
	if (!c->auth || !c->user_agent)
		goto fail;
	r = ratelimit_new(c->o.qps, c->o.burst, &c->rl);
	if (r < 0)
		goto fail;
	r = -ENOMEM;
	c->share = curl_share_init();
	if (!c->share)
		goto fail;
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	*ret = c;
	return 0;
fail:
	kube_client_free(c);
	return r;
}

void kube_client_free(struct kube_client *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->pool_free; i++)
		curl_easy_cleanup(c->pool[i]);
	if (c->share)
		curl_share_cleanup(c->share);
	ratelimit_free(c->rl);
	kube_auth_free(c->auth);
	if (c->token) {
		explicit_bzero(c->token, strlen(c->token));
		free(c->token);
	}
	free(c->user_agent);
	pthread_mutex_destroy(&c->pool_lock);
	pthread_cond_destroy(&c->pool_cond);
	pthread_mutex_destroy(&c->token_lock);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	free(c);
}

void kube_client_set_observer(struct kube_client *c, kube_observe_fn fn, void *userdata)
{
	c->observe = fn;
	c->observe_ud = userdata;
}

void kube_client_fence(struct kube_client *c)
{
	if (c)
		atomic_store(&c->fenced, true);
}

const char *kube_client_server(const struct kube_client *c)
{
	return c->auth->server;
}

/* Borrow an easy handle; waits when KUBE_POOL_MAX are in use. */
static CURL *pool_get(struct kube_client *c)
{
	CURL *h = NULL;
	pthread_mutex_lock(&c->pool_lock);
	while (c->pool_free == 0 && c->pool_total >= KUBE_POOL_MAX)
		pthread_cond_wait(&c->pool_cond, &c->pool_lock);
	if (c->pool_free > 0) {
		h = c->pool[--c->pool_free];
	} else {
		h = curl_easy_init();
		if (h)
			c->pool_total++;
	}
	pthread_mutex_unlock(&c->pool_lock);
	return h;
}

static void pool_put(struct kube_client *c, CURL *h)
{
	pthread_mutex_lock(&c->pool_lock);
	c->pool[c->pool_free++] = h;
	pthread_cond_signal(&c->pool_cond);
	pthread_mutex_unlock(&c->pool_lock);
}

/*
 * The bearer token: a fixed one, or the file's contents re-read once a
 * minute or when its mtime changes (projected tokens rotate). force re-reads
 * now (after a 401). Returns a copy the caller frees, or NULL for none.
 */
static char *token_get(struct kube_client *c, bool force)
{
	char *out = NULL;
	struct stat st;

	if (c->auth->token)
		return strdup(c->auth->token);
	if (!c->auth->token_file)
		return NULL;
	pthread_mutex_lock(&c->token_lock);
	uint64_t now = ktime_mono_ns();
	bool changed = stat(c->auth->token_file, &st) == 0 &&
		       (st.st_mtim.tv_sec != c->token_mtime.tv_sec ||
			st.st_mtim.tv_nsec != c->token_mtime.tv_nsec);
	if (force || !c->token || changed || now - c->token_read_ns > KUBE_TOKEN_REFRESH_NS) {
		FILE *f = fopen(c->auth->token_file, "re");
		if (f) {
			char *buf = malloc(KUBE_TOKEN_MAX + 1);
			size_t n = buf ? fread(buf, 1, KUBE_TOKEN_MAX, f) : 0;
			fclose(f);
			if (buf) {
				while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
						 buf[n - 1] == ' '))
					n--;
				buf[n] = '\0';
				if (c->token) {
					explicit_bzero(c->token, strlen(c->token));
					free(c->token);
				}
				c->token = buf;
				c->token_read_ns = now;
				c->token_mtime = st.st_mtim;
			}
		}
	}
	if (c->token)
		out = strdup(c->token);
	pthread_mutex_unlock(&c->token_lock);
	return out;
}

/* ---- one exchange ----------------------------------------------------- */

/* curl's write callback into a bounded buffer (0 = stop: over the bound
 * or out of memory). */
static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	size_t n = size * nmemb;
	return dynbuf_add(ud, ptr, n) == 0 ? n : 0;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	long *retry_after = ud;
	size_t n = size * nmemb;
	if (n > 12 && strncasecmp(ptr, "Retry-After:", 12) == 0) {
		char tmp[32];
		size_t m = n - 12 < sizeof(tmp) - 1 ? n - 12 : sizeof(tmp) - 1;
		memcpy(tmp, ptr + 12, m);
		tmp[m] = '\0';
		char *end;
		long v = strtol(tmp, &end, 10);
		if (end != tmp && v >= 0)
			*retry_after = v > KUBE_RETRY_AFTER_CAP_S ? KUBE_RETRY_AFTER_CAP_S : v;
	}
	return n;
}

static const char *method_name(enum kube_method m)
{
	switch (m) {
	case KUBE_GET:
		return "GET";
	case KUBE_POST:
		return "POST";
	case KUBE_PUT:
		return "PUT";
	case KUBE_PATCH:
		return "PATCH";
	case KUBE_DELETE:
		return "DELETE";
	}
	return "GET";
}

/*
 * A connection whose peer went silent (an API server instance gone behind
 * its load balancer, a partition: no FIN, no RST) is given up within about
 * 30 s, as client-go's HTTP/2 health check does (a PING after 30 s without
 * a frame, the connection closed 15 s later). Without this, every watch and
 * request multiplexed on it waited for the kernel's retransmissions to give
 * up, about 15 minutes, while the caches went stale and each write timed
 * out and was retried on the same connection. Idle (a quiet watch): the
 * kernel probes after KEEPIDLE s, every KEEPINTVL s, and closes it after
 * KEEPCNT probes unanswered; data sent and not acknowledged for
 * USER_TIMEOUT ms closes it too. A live server's kernel answers probes and
 * acknowledges data however busy the server is, so a quiet or slow server
 * is never cut.
 */
#define KUBE_KEEPIDLE_S 15
#define KUBE_KEEPINTVL_S 5
#define KUBE_KEEPCNT 3
#define KUBE_USER_TIMEOUT_MS 30000

static int on_socket(void *ud, curl_socket_t fd, curlsocktype purpose)
{
	int cnt = KUBE_KEEPCNT;
	unsigned user_timeout = KUBE_USER_TIMEOUT_MS;
	(void)ud;
	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKOPT_OK;
	/* Best effort: a socket that refuses (not TCP) keeps the defaults. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
	return CURL_SOCKOPT_OK;
}

void kube_curl_liveness(void *curl_easy)
{
	CURL *h = curl_easy;
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, (long)KUBE_KEEPIDLE_S);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, (long)KUBE_KEEPINTVL_S);
	curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, on_socket);
}

/* Options every request sets, after curl_easy_reset. */
static int setup_handle(struct kube_client *c, CURL *h, const char *url, long timeout_ms)
{
	const struct kube_auth *a = c->auth;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 timeout_ms > 0 && timeout_ms < 10000 ? timeout_ms : 10000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	kube_curl_liveness(h);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	if (a->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (a->ca_data) {
		struct curl_blob blob = { a->ca_data, a->ca_len, CURL_BLOB_NOCOPY };
		curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
	} else if (a->ca_file) {
		curl_easy_setopt(h, CURLOPT_CAINFO, a->ca_file);
	}
	if (a->cert_data) {
		struct curl_blob blob = { a->cert_data, a->cert_len, CURL_BLOB_NOCOPY };
		curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &blob);
		curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
	} else if (a->cert_file) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, a->cert_file);
	}
	if (a->key_data) {
		struct curl_blob blob = { a->key_data, a->key_len, CURL_BLOB_NOCOPY };
		curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &blob);
		curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
	} else if (a->key_file) {
		curl_easy_setopt(h, CURLOPT_SSLKEY, a->key_file);
	}
	return 0;
}

static struct curl_slist *build_headers(struct kube_client *c, const char *content_type,
					bool force_token)
{
	struct curl_slist *hl = NULL, *t;
	char line[256];
	char *token = token_get(c, force_token);

	hl = curl_slist_append(hl, "Accept: application/json");
	if (hl && content_type) {
		snprintf(line, sizeof(line), "Content-Type: %s", content_type);
		t = curl_slist_append(hl, line);
		hl = t ? t : (curl_slist_free_all(hl), NULL);
	}
	if (hl && token) {
		char *auth;
		if (asprintf(&auth, "Authorization: Bearer %s", token) >= 0) {
			t = curl_slist_append(hl, auth);
			explicit_bzero(auth, strlen(auth));
			free(auth);
			hl = t ? t : (curl_slist_free_all(hl), NULL);
		} else {
			curl_slist_free_all(hl);
			hl = NULL;
		}
	}
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	return hl;
}

/* A transport failure as an errno and a status. */
static int transport_error(CURLcode cc, const char *errbuf, struct kube_status *st)
{
	int r;
	st->code = 0;
	st->reason = KUBE_REASON_TRANSPORT;
	text_copy(st->reason_text, sizeof(st->reason_text), "Transport");
	snprintf(st->message, sizeof(st->message), "%s",
		 errbuf && *errbuf ? errbuf : curl_easy_strerror(cc));
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		r = -ETIMEDOUT;
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
		r = -EPROTO; /* the certificates: configuration, not the network */
		break;
	case CURLE_OUT_OF_MEMORY:
		r = -ENOMEM;
		break;
	default:
		r = -ECONNREFUSED;
	}
	return r;
}

static bool transport_retryable(CURLcode cc, enum kube_method m)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		return true; /* nothing was sent */
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_OPERATION_TIMEDOUT:
		return m != KUBE_POST;
	default:
		return false;
	}
}

static bool status_retryable(long code, enum kube_method m)
{
	if (code == 429 || code == 503)
		return true; /* the server did not process it */
	if (code >= 500 && code != 501)
		return m != KUBE_POST;
	return false;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = ktime_timespec(ns);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int kube_request(struct kube_client *c, enum kube_method method, const char *verb, const char *path,
		 const char *content_type, const char *body, size_t body_len, long timeout_ms,
		 json_object **ret_obj, struct kube_status *ret_status)
{
	struct kube_status st_local, *st = ret_status ? ret_status : &st_local;
	struct backoff bo;
	char *url = NULL, errbuf[CURL_ERROR_SIZE];
	bool force_token = false, fresh = false;
	int r = -EIO;

	memset(st, 0, sizeof(*st));
	if (asprintf(&url, "%s%s", c->auth->server, path) < 0)
		return -ENOMEM;
	if (timeout_ms <= 0)
		timeout_ms = c->o.timeout_ms;
	backoff_init(&bo, (uint64_t)c->o.backoff_base_ms * KTIME_NSEC_PER_MSEC,
		     (uint64_t)c->o.backoff_cap_ms * KTIME_NSEC_PER_MSEC, 1.0, backoff_seed());

	for (int attempt = 0; attempt <= c->o.max_retries; attempt++) {
		struct dynbuf resp;
		long retry_after = -1, code = 0;
		struct curl_slist *hl;
		CURL *h;
		CURLcode cc;
		bool retry = false;

		ratelimit_wait(c->rl);
		/* Checked last before sending (the rate limit may have waited). */
		if (method != KUBE_GET && atomic_load(&c->fenced)) {
			r = -ENOLCK;
			st->reason = KUBE_REASON_UNKNOWN;
			snprintf(st->message, sizeof(st->message),
				 "not sent: this replica lost its leader lease");
			break;
		}
		dynbuf_init(&resp, c->o.max_body);
		st->attempts = attempt + 1;
		h = pool_get(c);
		if (!h) {
			r = -ENOMEM;
			break;
		}
		curl_easy_reset(h);
		setup_handle(c, h, url, timeout_ms);
		/* A try that timed out may have met a connection gone silent
		 * (on_socket): the next goes on a new one, not multiplexed on
		 * it (the Lease's renewal must not wait out the dead one). */
		if (fresh)
			curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
		hl = build_headers(c, content_type, force_token);
		if (!hl) {
			pool_put(c, h);
			r = -ENOMEM;
			break;
		}
		errbuf[0] = '\0';
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(h, CURLOPT_HEADERDATA, &retry_after);
		if (method != KUBE_GET)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method_name(method));
		if (body) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		}
		uint64_t t0 = ktime_mono_ns();
		cc = curl_easy_perform(h);
		double secs = ktime_ns_to_s(ktime_mono_ns() - t0);
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		long hv = 0;
		curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &hv);
		curl_slist_free_all(hl);
		pool_put(c, h);
		if (c->observe)
			c->observe(verb, cc == CURLE_OK ? code : 0, secs, c->observe_ud);
		int http_version = hv == CURL_HTTP_VERSION_2_0 ? 20 :
				   hv == CURL_HTTP_VERSION_1_1 ? 11 :
				   hv == CURL_HTTP_VERSION_1_0 ? 10 :
								 0;

		if (cc != CURLE_OK) {
			if (resp.toobig) {
				r = -EFBIG;
				st->reason = KUBE_REASON_UNKNOWN;
				snprintf(st->message, sizeof(st->message),
					 "response body exceeds the %zu-byte bound", c->o.max_body);
				dynbuf_free(&resp);
				break;
			}
			r = transport_error(cc, errbuf, st);
			retry = transport_retryable(cc, method);
			fresh = cc == CURLE_OPERATION_TIMEDOUT;
		} else if (code >= 200 && code < 300) {
			r = 0;
			if (ret_obj) {
				*ret_obj = NULL;
				if (resp.len > 0) {
					json_object *o = kube_json_parse(resp.p, resp.len);
					if (!o) {
						r = -EBADMSG;
						st->code = code;
						snprintf(st->message, sizeof(st->message),
							 "the server's answer is not valid JSON");
					}
					*ret_obj = o;
				}
			}
			st->code = code;
			st->http_version = http_version;
			dynbuf_free(&resp);
			break;
		} else {
			st->retry_after_s = retry_after;
			kube_status_decode(code, resp.p, resp.len, st);
			st->http_version = http_version;
			r = kube_reason_errno(st->reason);
			if (code == 401 && !force_token && c->auth->token_file) {
				/* A rotated token: re-read it once and try again. */
				force_token = true;
				retry = true;
			} else {
				retry = status_retryable(code, method);
			}
		}
		dynbuf_free(&resp);
		if (!retry || attempt == c->o.max_retries)
			break;
		uint64_t wait = backoff_next(&bo);
		if (st->retry_after_s > 0 && (uint64_t)st->retry_after_s * KTIME_NSEC_PER_SEC > wait)
			wait = (uint64_t)st->retry_after_s * KTIME_NSEC_PER_SEC;
		sleep_ns(wait);
	}
	free(url);
	return r;
}

/* ---- verbs ------------------------------------------------------------ */

static long opt_timeout(const struct kube_opts *o)
{
	return o ? o->timeout_ms : 0;
}

int kube_server_version(struct kube_client *c, char *buf, size_t len, struct kube_status *ret_status)
{
	json_object *o = NULL, *v;
	int r = kube_request(c, KUBE_GET, "get", "/version", NULL, NULL, 0, 0, &o, ret_status);
	if (r < 0)
		return r;
	if (!o || !json_object_object_get_ex(o, "gitVersion", &v)) {
		json_object_put(o);
		return -EBADMSG;
	}
	snprintf(buf, len, "%s", json_object_get_string(v));
	json_object_put(o);
	return 0;
}

/* No answer, or 429 or 5xx: the server is not serving yet, worth waiting. */
static bool server_coming(const struct kube_status *st)
{
	return st->code == 0 || st->code == 429 || st->code >= 500;
}

int kube_wait_for_server(struct kube_client *c, const sigset_t *stop, void (*waiting)(void *ud),
			 void *ud, char *buf, size_t len, struct kube_status *ret_status,
			 int *ret_signal)
{
	struct backoff b;
	backoff_init(&b, 500 * KTIME_NSEC_PER_MSEC, 4 * KTIME_NSEC_PER_SEC, 0.2, backoff_seed());
	*ret_signal = 0;
	for (unsigned attempt = 1;; attempt++) {
		int r = kube_server_version(c, buf, len, ret_status);
		if (r == 0) {
			if (attempt > 1)
				log_info("reached the API server", "server=%s attempts=%u",
					 kube_client_server(c), attempt);
			return 0;
		}
		if (r == -EBADMSG || r == -EPROTO || !server_coming(ret_status)) {
			log_error(ret_status->code ? "the API server refused kinfer's request" :
						     "cannot reach the API server",
				  "server=%s code=%ld error=%s", kube_client_server(c),
				  ret_status->code,
				  r == -EBADMSG ? "its /version answer has no gitVersion" :
						  ret_status->message);
			return r;
		}
		if (attempt == 1 && waiting)
			waiting(ud);
		uint64_t wait = backoff_next(&b);
		/* Every try while it starts, then about once a minute. */
		if (attempt <= 5 || attempt % 15 == 0)
			log_warn("API server not reached: waiting for it",
				 "server=%s attempt=%u "
				 "retry_in_ms=%llu error=%s",
				 kube_client_server(c), attempt,
				 (unsigned long long)(wait / KTIME_NSEC_PER_MSEC),
				 ret_status->message);
		struct timespec ts = { .tv_sec = (time_t)(wait / KTIME_NSEC_PER_SEC),
				       .tv_nsec = (long)(wait % KTIME_NSEC_PER_SEC) };
		int sig = sigtimedwait(stop, NULL, &ts);
		if (sig > 0) {
			*ret_signal = sig;
			return -EINTR;
		}
	}
}

int kube_get(struct kube_client *c, const struct kube_resource *res, const char *ns, const char *name,
	     const char *subresource, json_object **ret_obj, struct kube_status *ret_status)
{
	char path[KUBE_PATH_MAX];
	int r = kube_path(path, sizeof(path), res, ns, name, subresource, NULL);
	if (r < 0)
		return r;
	return kube_request(c, KUBE_GET, "get", path, NULL, NULL, 0, 0, ret_obj, ret_status);
}

int kube_list(struct kube_client *c, const struct kube_resource *res, const char *ns,
	      const struct kube_opts *opts, json_object **ret_obj, struct kube_status *ret_status)
{
	char path[KUBE_PATH_MAX];
	int r = kube_path(path, sizeof(path), res, ns, NULL, NULL, opts);
	if (r < 0)
		return r;
	return kube_request(c, KUBE_GET, "list", path, NULL, NULL, 0, opt_timeout(opts), ret_obj,
			    ret_status);
}

static const char *meta_str(json_object *o, const char *key)
{
	json_object *m, *v;
	if (!json_object_object_get_ex(o, "metadata", &m) || !json_object_object_get_ex(m, key, &v))
		return NULL;
	return json_object_get_string(v);
}

int kube_list_all(struct kube_client *c, const struct kube_resource *res, const char *ns,
		  const struct kube_opts *opts, kube_item_fn item_fn, void *userdata, char *ret_rv,
		  size_t rv_len, struct kube_status *ret_status)
{
	struct kube_opts o = { 0 };
	char *cont = NULL;
	bool restarted = false;
	int r;

	if (opts)
		o = *opts;
	if (o.limit <= 0)
		o.limit = 500;
	for (;;) {
		json_object *page = NULL, *items;
		o.continue_token = cont;
		r = kube_list(c, res, ns, &o, &page, ret_status);
		if (r == -EIDRM && cont && !restarted) {
			/* The snapshot expired: start over, in one request. */
			free(cont);
			cont = NULL;
			restarted = true;
			o.limit = 0;
			r = item_fn(NULL, userdata);
			if (r < 0)
				break;
			continue;
		}
		if (r < 0)
			break;
		if (!page || !json_object_object_get_ex(page, "items", &items) ||
		    !json_object_is_type(items, json_type_array)) {
			json_object_put(page);
			r = -EBADMSG;
			break;
		}
		for (size_t i = 0; i < json_object_array_length(items) && r >= 0; i++)
			r = item_fn(json_object_array_get_idx(items, i), userdata);
		const char *rv = meta_str(page, "resourceVersion");
		const char *next = meta_str(page, "continue");
		if (ret_rv && rv_len)
			snprintf(ret_rv, rv_len, "%s", rv ? rv : "");
		free(cont);
		cont = next && *next ? strdup(next) : NULL;
		json_object_put(page);
		if (r < 0 || !cont)
			break;
	}
	free(cont);
	return r;
}

/* Send a JSON body with method m to the object's path. */
static int send_json(struct kube_client *c, enum kube_method m, const char *verb,
		     const struct kube_resource *res, const char *ns, const char *name,
		     const char *sub, const char *content_type, json_object *body,
		     const struct kube_opts *opts, json_object **ret_obj,
		     struct kube_status *ret_status)
{
	char path[KUBE_PATH_MAX];
	size_t len = 0;
	const char *js;
	int r = kube_path(path, sizeof(path), res, ns, name, sub, opts);
	if (r < 0)
		return r;
	js = body ? json_object_to_json_string_length(
			    body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len) :
		    "{}";
	if (!js)
		return -ENOMEM;
	if (!body)
		len = 2;
	return kube_request(c, m, verb, path, content_type, js, len, opt_timeout(opts), ret_obj,
			    ret_status);
}

int kube_create(struct kube_client *c, const struct kube_resource *res, const char *ns,
		const char *name, const char *subresource, json_object *body,
		const struct kube_opts *opts, json_object **ret_obj, struct kube_status *ret_status)
{
	return send_json(c, KUBE_POST, "create", res, ns, name, subresource, "application/json",
			 body, opts, ret_obj, ret_status);
}

int kube_update(struct kube_client *c, const struct kube_resource *res, const char *ns,
		const char *name, const char *subresource, json_object *body,
		const struct kube_opts *opts, json_object **ret_obj, struct kube_status *ret_status)
{
	if (!name)
		return -EINVAL;
	return send_json(c, KUBE_PUT, "update", res, ns, name, subresource, "application/json",
			 body, opts, ret_obj, ret_status);
}

int kube_apply(struct kube_client *c, const struct kube_resource *res, const char *ns,
	       const char *name, const char *subresource, json_object *body,
	       const struct kube_opts *opts, json_object **ret_obj, struct kube_status *ret_status)
{
	if (!name || !opts || !opts->field_manager)
		return -EINVAL;
	return send_json(c, KUBE_PATCH, "apply", res, ns, name, subresource,
			 "application/apply-patch+yaml", body, opts, ret_obj, ret_status);
}

int kube_patch(struct kube_client *c, const struct kube_resource *res, const char *ns,
	       const char *name, const char *subresource, enum kube_patch_type type,
	       const char *patch, const struct kube_opts *opts, json_object **ret_obj,
	       struct kube_status *ret_status)
{
	static const char *const types[] = {
		[KUBE_PATCH_MERGE] = "application/merge-patch+json",
		[KUBE_PATCH_JSON] = "application/json-patch+json",
		[KUBE_PATCH_STRATEGIC] = "application/strategic-merge-patch+json",
	};
	char path[KUBE_PATH_MAX];
	int r;

	if (!name || !patch || (unsigned)type > KUBE_PATCH_STRATEGIC)
		return -EINVAL;
	r = kube_path(path, sizeof(path), res, ns, name, subresource, opts);
	if (r < 0)
		return r;
	return kube_request(c, KUBE_PATCH, "patch", path, types[type], patch, strlen(patch),
			    opt_timeout(opts), ret_obj, ret_status);
}

int kube_delete(struct kube_client *c, const struct kube_resource *res, const char *ns,
		const char *name, const struct kube_opts *opts, json_object **ret_obj,
		struct kube_status *ret_status)
{
	json_object *body = json_object_new_object(), *pre = NULL;
	int r = -ENOMEM;

	if (!name) {
		json_object_put(body);
		return -EINVAL;
	}
	if (!body)
		return -ENOMEM;
	json_object_object_add(body, "kind", json_object_new_string("DeleteOptions"));
	json_object_object_add(body, "apiVersion", json_object_new_string("v1"));
	if (opts && opts->propagation_policy)
		json_object_object_add(body, "propagationPolicy",
				       json_object_new_string(opts->propagation_policy));
	if (opts && (opts->precondition_uid || opts->precondition_rv)) {
		pre = json_object_new_object();
		if (!pre)
			goto out;
		if (opts->precondition_uid)
			json_object_object_add(pre, "uid",
					       json_object_new_string(opts->precondition_uid));
		if (opts->precondition_rv)
			json_object_object_add(pre, "resourceVersion",
					       json_object_new_string(opts->precondition_rv));
		json_object_object_add(body, "preconditions", pre);
	}
	r = send_json(c, KUBE_DELETE, "delete", res, ns, name, NULL, "application/json", body, opts,
		      ret_obj, ret_status);
out:
	json_object_put(body);
	return r;
}

int kube_bind_pod(struct kube_client *c, const char *ns, const char *pod, const char *pod_uid,
		  const char *node, struct kube_status *ret_status)
{
	json_object *b = json_object_new_object(), *meta, *target;
	int r;

	if (!b)
		return -ENOMEM;
	meta = json_object_new_object();
	target = json_object_new_object();
	json_object_object_add(b, "apiVersion", json_object_new_string("v1"));
	json_object_object_add(b, "kind", json_object_new_string("Binding"));
	json_object_object_add(meta, "name", json_object_new_string(pod));
	json_object_object_add(meta, "namespace", json_object_new_string(ns));
	if (pod_uid)
		json_object_object_add(meta, "uid", json_object_new_string(pod_uid));
	json_object_object_add(b, "metadata", meta);
	json_object_object_add(target, "apiVersion", json_object_new_string("v1"));
	json_object_object_add(target, "kind", json_object_new_string("Node"));
	json_object_object_add(target, "name", json_object_new_string(node));
	json_object_object_add(b, "target", target);
	r = send_json(c, KUBE_POST, "bind", &kube_res_pods, ns, pod, "binding", "application/json",
		      b, NULL, NULL, ret_status);
	json_object_put(b);
	return r;
}

/* ---- watch ------------------------------------------------------------ */

struct watch_ctx {
	struct dynbuf line; /* the event being received */
	json_tokener *tok;
	kube_event_fn fn;
	void *ud;
	volatile int *stop;
	CURL *h;
	long code; /* HTTP status, read on the first data */
	int cb_result;
	bool bad_event;
};

/* Deliver one complete line (one JSON event). */
static int deliver(struct watch_ctx *w, const char *p, size_t n)
{
	json_object *ev, *type, *obj;
	int r = 0;

	while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' '))
		n--;
	if (n == 0)
		return 0;
	json_tokener_reset(w->tok);
	ev = json_tokener_parse_ex(w->tok, p, (int)n);
	if (!ev || !json_object_object_get_ex(ev, "type", &type) ||
	    !json_object_object_get_ex(ev, "object", &obj)) {
		json_object_put(ev);
		w->bad_event = true;
		return -EBADMSG;
	}
	r = w->fn(json_object_get_string(type), obj, w->ud);
	json_object_put(ev);
	return r;
}

static size_t on_watch_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct watch_ctx *w = ud;
	size_t n = size * nmemb, start = 0;

	if (w->code == 0)
		curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &w->code);
	if (w->code < 200 || w->code >= 300)
		return on_write(ptr, size, nmemb, &w->line); /* a Status */
	for (size_t i = 0; i < n; i++) {
		if (ptr[i] != '\n')
			continue;
		int r;
		if (w->line.len > 0) {
			if (on_write(ptr + start, 1, i - start, &w->line) != i - start)
				return 0;
			r = deliver(w, w->line.p, w->line.len);
			dynbuf_reset(&w->line, SIZE_MAX);
		} else {
			r = deliver(w, ptr + start, i - start);
		}
		if (r < 0) {
			w->cb_result = r;
			return 0;
		}
		start = i + 1;
	}
	if (start < n && on_write(ptr + start, 1, n - start, &w->line) != n - start)
		return 0;
	return n;
}

static int on_watch_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c2, curl_off_t d)
{
	struct watch_ctx *w = ud;
	(void)a;
	(void)b;
	(void)c2;
	(void)d;
	return w->stop && *w->stop ? 1 : 0;
}

int kube_watch(struct kube_client *c, const struct kube_resource *res, const char *ns,
	       const struct kube_opts *opts, kube_event_fn event_fn, void *userdata,
	       volatile int *stop, struct kube_status *ret_status)
{
	struct kube_status st_local, *st = ret_status ? ret_status : &st_local;
	struct kube_opts o = { 0 };
	struct watch_ctx w = { .fn = event_fn, .ud = userdata, .stop = stop };
	char path[KUBE_PATH_MAX], *url = NULL, errbuf[CURL_ERROR_SIZE];
	struct curl_slist *hl;
	long code = 0;
	CURL *h;
	CURLcode cc;
	int r;

	memset(st, 0, sizeof(*st));
	if (opts)
		o = *opts;
	o.watch = true;
	if (o.timeout_seconds <= 0)
		o.timeout_seconds = 300;
	r = kube_path(path, sizeof(path), res, ns, NULL, NULL, &o);
	if (r < 0)
		return r;
	if (asprintf(&url, "%s%s", c->auth->server, path) < 0)
		return -ENOMEM;
	dynbuf_init(&w.line, KUBE_WATCH_MAX_EVENT);
	w.tok = json_tokener_new_ex(KUBE_JSON_PARSE_DEPTH);
	if (!w.tok) {
		free(url);
		return -ENOMEM;
	}
	ratelimit_wait(c->rl);
	h = pool_get(c);
	hl = h ? build_headers(c, NULL, false) : NULL;
	if (!h || !hl) {
		if (h)
			pool_put(c, h);
		json_tokener_free(w.tok);
		free(url);
		return -ENOMEM;
	}
	curl_easy_reset(h);
	w.h = h;
	/* The server ends the watch after timeoutSeconds; allow a margin. */
	setup_handle(c, h, url, (o.timeout_seconds + 30) * KTIME_MSEC_PER_SEC);
	errbuf[0] = '\0';
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, NULL);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_watch_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &w);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_watch_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &w);
	uint64_t t0 = ktime_mono_ns();
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(hl);
	pool_put(c, h);
	if (c->observe)
		c->observe("watch", code, ktime_ns_to_s(ktime_mono_ns() - t0), c->observe_ud);

	st->attempts = 1;
	if (w.cb_result < 0) {
		r = w.cb_result;
		if (w.bad_event) {
			st->code = code;
			snprintf(st->message, sizeof(st->message), "a watch event is not valid JSON");
		}
	} else if (w.line.toobig) {
		r = -EFBIG;
		snprintf(st->message, sizeof(st->message), "a watch event exceeds %d bytes",
			 KUBE_WATCH_MAX_EVENT);
	} else if (cc == CURLE_ABORTED_BY_CALLBACK) {
		r = 0; /* asked to stop */
	} else if (cc != CURLE_OK) {
		r = transport_error(cc, errbuf, st);
	} else if (code < 200 || code >= 300) {
		kube_status_decode(code, w.line.p, w.line.len, st);
		r = kube_reason_errno(st->reason);
	} else {
		st->code = code;
		r = 0;
	}
	dynbuf_free(&w.line);
	json_tokener_free(w.tok);
	free(url);
	return r;
}

/* ---- for external drivers -------------------------------------------- */

int kube_setup_easy(struct kube_client *c, void *curl_easy, const char *path, long timeout_ms,
		    void *ret_headers)
{
	CURL *h = curl_easy;
	struct curl_slist *hl;
	char *url;

	if (asprintf(&url, "%s%s", c->auth->server, path) < 0)
		return -ENOMEM;
	hl = build_headers(c, NULL, false);
	if (!hl) {
		free(url);
		return -ENOMEM;
	}
	setup_handle(c, h, url, timeout_ms);
	/* CURLOPT_URL copies the string. */
	free(url);
	if (timeout_ms <= 0)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 0L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
	*(struct curl_slist **)ret_headers = hl;
	return 0;
}

uint64_t kube_until_quiet(struct kube_client *c)
{
	int burst = ratelimit_burst(c->rl);
	return ratelimit_until_at(c->rl, burst > 2 ? burst / 2 : 1, ktime_mono_ns());
}

uint64_t kube_reserve(struct kube_client *c)
{
	return ratelimit_reserve_at(c->rl, ktime_mono_ns());
}

void kube_observe(struct kube_client *c, const char *verb, long code, double seconds)
{
	if (c->observe)
		c->observe(verb, code, seconds, c->observe_ud);
}

size_t kube_max_body(const struct kube_client *c)
{
	return c->o.max_body;
}
