/*
 * The admission webhook over libmicrohttpd + GnuTLS.
 *
 * Certificates: a "pair" (the certificate chain as gnutls_pcert_st and the
 * private key) is loaded from the files, checked (the key must match the
 * first certificate), and published as the current pair under a mutex.
 * GnuTLS calls cert_callback on each handshake and gets the current pair.
 * GnuTLS uses what the callback returned for the rest of that handshake
 * without copying it, so a replaced pair is retired, not freed: it is
 * freed once it has been retired longer than any connection may live
 * (RETIRE_AFTER_S), or when the server stops.
 *
 * The callback has no user pointer, so one webhook runs per process
 * (webhook_start refuses a second with -EBUSY).
 *
 * Requests: the body is gathered into a per-connection buffer bounded by
 * REVIEW_MAX_BODY (beyond it the rest is read and dropped, and the answer
 * is 413); then review_serve answers it.
 *
 * Memory: every byte a request holds is reserved first from one budget
 * (max_held_bytes): its body (the Content-Length at once, or as it grows)
 * and, for the parse, an estimate of the tree json-c builds (review_cost).
 * A request that does not fit is answered 503 with Retry-After, before its
 * body is read where the length is declared. Bodies over SMALL_BODY may use
 * only the budget less max_connections x SMALL_BODY, so however many slow
 * large bodies arrive, an ordinary review (a few KiB) still fits and is
 * answered.
 */
#include "webhook.h"

#include "dynbuf.h"
#include "httpserver.h"
#include "ktime.h"
#include "log.h"
#include "metrics.h"
#include "review.h"

#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_CHAIN 8
#define SMALL_BODY (64u * 1024)
#define DEFAULT_MAX_HELD (64u << 20)
#define RETIRE_AFTER_S 120

struct pair {
	gnutls_pcert_st pcert[MAX_CHAIN];
	unsigned n;
	gnutls_privkey_t key;
	time_t not_after;
	time_t retired_at;
	struct pair *next; /* in the retired list */
};

struct stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct webhook {
	struct MHD_Daemon *d;
	struct webhook_options o;
	unsigned port;
	pthread_mutex_t lock;
	struct pair *current;
	struct pair *retired;
	struct stamp cert_stamp, key_stamp;   /* of the pair in use */
	struct stamp failed_cert, failed_key; /* last refused, logged once */
	pthread_t watcher;
	bool watcher_started;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	bool stopping;
	/* the memory budget of requests */
	pthread_mutex_t budget_lock;
	size_t held, large_limit;
	struct metric_series *m_held;
};

struct route {
	const char *path;
	const char *name; /* the metrics' webhook label */
	enum review_mode mode;
};

static const struct route routes[] = {
	{ "/validate", "validate", REVIEW_VALIDATE },
	{ "/mutate", "mutate", REVIEW_MUTATE },
	{ "/validate-scale", "scale", REVIEW_SCALE },
};

#define NOT_FOUND "not found: POST /validate, /mutate or /validate-scale\n"

static const char *const req_labels[] = { "webhook", "decision", NULL };
static const char *const webhook_labels[] = { "webhook", NULL };
static const char *const result_labels[] = { "result", NULL };
static const struct metric_family fam_requests = {
	"kinfer_webhook_requests_total",
	"Admission reviews answered, by webhook and decision (allowed, denied, patched, bad-request, error).",
	METRIC_COUNTER,
	req_labels,
	NULL,
	0
};
/* A review takes well under a millisecond: buckets from 100 us. */
static const double latency_buckets[] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
};
static const struct metric_family fam_latency = {
	"kinfer_webhook_request_duration_seconds",
	"Time to answer one admission review, from its request line to the queued answer.",
	METRIC_HISTOGRAM,
	webhook_labels,
	latency_buckets,
	sizeof(latency_buckets) / sizeof(latency_buckets[0])
};
static const struct metric_family fam_held = {
	"kinfer_webhook_held_bytes",
	"Bytes the webhook holds for requests now (bodies and parse estimates), bounded by its budget.",
	METRIC_GAUGE,
	NULL,
	NULL,
	0
};
static const struct metric_family fam_reloads = {
	"kinfer_webhook_certificate_reloads_total",
	"Serving certificate loads from the files, by result (loaded, refused).",
	METRIC_COUNTER,
	result_labels,
	NULL,
	0
};
static const struct metric_family fam_expiry = {
	"kinfer_webhook_certificate_expiry_timestamp_seconds",
	"When the serving certificate in use expires (Unix time).",
	METRIC_GAUGE,
	NULL,
	NULL,
	0
};

static pthread_mutex_t instance_lock = PTHREAD_MUTEX_INITIALIZER;
static struct webhook *instance;

/* ---- certificate pairs -------------------------------------------------- */

static void pair_free(struct pair *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->n; i++)
		gnutls_pcert_deinit(&p->pcert[i]);
	if (p->key)
		gnutls_privkey_deinit(p->key);
	free(p);
}

static int pubkey_der(gnutls_pubkey_t k, gnutls_datum_t *out)
{
	return gnutls_pubkey_export2(k, GNUTLS_X509_FMT_DER, out) < 0 ? -EBADMSG : 0;
}

/* Does the private key belong to the certificate? Compare public keys. */
static int key_matches(struct pair *p)
{
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t a = { NULL, 0 }, b = { NULL, 0 };
	int r = -EBADMSG;
	if (gnutls_pubkey_init(&pub) < 0)
		return -ENOMEM;
	if (gnutls_pubkey_import_privkey(pub, p->key, 0, 0) < 0)
		goto out;
	if (pubkey_der(pub, &a) < 0 || pubkey_der(p->pcert[0].pubkey, &b) < 0)
		goto out;
	r = a.size == b.size && memcmp(a.data, b.data, a.size) == 0 ? 0 : -EBADMSG;
out:
	gnutls_free(a.data);
	gnutls_free(b.data);
	gnutls_pubkey_deinit(pub);
	return r;
}

/* A pair from PEM text; name says where it came from, for the errors. */
static int pair_from_pem(const gnutls_datum_t *cd, const gnutls_datum_t *kd, const char *cert_name,
			 const char *key_name, struct pair **ret, char *err, size_t errlen)
{
	struct pair *p = calloc(1, sizeof(*p));
	gnutls_x509_crt_t crt = NULL;
	int r;

	if (!p)
		return -ENOMEM;
	p->n = MAX_CHAIN;
	r = gnutls_pcert_list_import_x509_raw(p->pcert, &p->n, cd, GNUTLS_X509_FMT_PEM, 0);
	if (r < 0 || p->n == 0) {
		p->n = 0;
		snprintf(err, errlen, "%s: no PEM certificate (%s)", cert_name, gnutls_strerror(r));
		r = -EBADMSG;
		goto fail;
	}
	if (gnutls_privkey_init(&p->key) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	r = gnutls_privkey_import_x509_raw(p->key, kd, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (r < 0) {
		snprintf(err, errlen, "%s: no PEM private key (%s)", key_name, gnutls_strerror(r));
		r = -EBADMSG;
		goto fail;
	}
	if (key_matches(p) < 0) {
		snprintf(err, errlen, "%s does not match the certificate in %s", key_name, cert_name);
		r = -EBADMSG;
		goto fail;
	}
	if (gnutls_pcert_export_x509(&p->pcert[0], &crt) == 0) {
		p->not_after = gnutls_x509_crt_get_expiration_time(crt);
		gnutls_x509_crt_deinit(crt);
	}
	*ret = p;
	return 0;
fail:
	pair_free(p);
	return r;
}

static int pair_load(const char *cert_file, const char *key_file, struct pair **ret, char *err,
		     size_t errlen)
{
	gnutls_datum_t cd = { NULL, 0 }, kd = { NULL, 0 };
	int r;

	if (gnutls_load_file(cert_file, &cd) < 0) {
		snprintf(err, errlen, "cannot read certificate file %s", cert_file);
		return -ENOENT;
	}
	if (gnutls_load_file(key_file, &kd) < 0) {
		gnutls_free(cd.data);
		snprintf(err, errlen, "cannot read key file %s", key_file);
		return -ENOENT;
	}
	r = pair_from_pem(&cd, &kd, cert_file, key_file, ret, err, errlen);
	gnutls_free(cd.data);
	gnutls_free(kd.data);
	return r;
}

/* Ask the source; 1 with a new pair in *ret, 0 unchanged, or an error. */
static int pair_from_source(struct webhook_options *o, struct pair **ret, char *err, size_t errlen)
{
	char *cert = NULL, *key = NULL;
	int r = o->source(o->source_ud, &cert, &key, err, errlen);
	if (r == 1) {
		gnutls_datum_t cd = { (unsigned char *)cert, (unsigned)strlen(cert) };
		gnutls_datum_t kd = { (unsigned char *)key, (unsigned)strlen(key) };
		int l = pair_from_pem(&cd, &kd, "the generated certificate", "the generated key",
				      ret, err, errlen);
		if (l < 0)
			r = l;
	}
	free(cert);
	free(key);
	return r;
}

static int cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
			 const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
			 gnutls_pcert_st **ret_pcert, unsigned int *ret_n, gnutls_privkey_t *ret_key)
{
	int r = -1;
	(void)session;
	(void)req_ca_dn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	pthread_mutex_lock(&instance_lock);
	struct webhook *w = instance;
	pthread_mutex_unlock(&instance_lock);
	if (!w)
		return -1;
	pthread_mutex_lock(&w->lock);
	if (w->current) {
		*ret_pcert = w->current->pcert;
		*ret_n = w->current->n;
		*ret_key = w->current->key;
		r = 0;
	}
	pthread_mutex_unlock(&w->lock);
	return r;
}

static void stamp_of(const char *path, struct stamp *s)
{
	struct stat st;
	memset(s, 0, sizeof(*s));
	if (stat(path, &st) == 0) {
		s->dev = st.st_dev;
		s->ino = st.st_ino;
		s->size = st.st_size;
		s->mtime = st.st_mtim;
	}
}

static bool stamp_eq(const struct stamp *a, const struct stamp *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void count_reload(struct webhook *w, const char *result)
{
	const char *lv[] = { result };
	metric_add(metrics_series(w->o.metrics, &fam_reloads, lv), 1);
}

int webhook_reload(struct webhook *w)
{
	struct stamp cs, ks;
	struct pair *p = NULL, *old;
	char err[512];
	time_t now = time(NULL);
	int r;

	if (w->o.source) {
		memset(&cs, 0, sizeof(cs));
		memset(&ks, 0, sizeof(ks));
		r = pair_from_source(&w->o, &p, err, sizeof(err));
		if (r == 0)
			return 0;
		if (r < 0) {
			log_warn("webhook certificate source failed, keeping the one in use",
				 "error=%s", err);
			count_reload(w, "refused");
			return r;
		}
		goto publish;
	}
	stamp_of(w->o.cert_file, &cs);
	stamp_of(w->o.key_file, &ks);
	if (w->current && stamp_eq(&cs, &w->cert_stamp) && stamp_eq(&ks, &w->key_stamp))
		return 0;
	r = pair_load(w->o.cert_file, w->o.key_file, &p, err, sizeof(err));
	if (r < 0) {
		/* Log a refused pair once, not on every tick until it is fixed. */
		if (!stamp_eq(&cs, &w->failed_cert) || !stamp_eq(&ks, &w->failed_key)) {
			log_warn("webhook certificate refused, keeping the one in use", "error=%s",
				 err);
			count_reload(w, "refused");
			w->failed_cert = cs;
			w->failed_key = ks;
		}
		return r;
	}
publish:
	pthread_mutex_lock(&w->lock);
	old = w->current;
	w->current = p;
	if (old) {
		old->retired_at = now;
		old->next = w->retired;
		w->retired = old;
	}
	/* Free pairs no handshake can still be using. */
	for (struct pair **pp = &w->retired; *pp;) {
		struct pair *q = *pp;
		if (now - q->retired_at > RETIRE_AFTER_S) {
			*pp = q->next;
			pair_free(q);
		} else {
			pp = &q->next;
		}
	}
	pthread_mutex_unlock(&w->lock);
	w->cert_stamp = cs;
	w->key_stamp = ks;
	count_reload(w, "loaded");
	metric_set(metrics_series(w->o.metrics, &fam_expiry, NULL), (double)p->not_after);
	log_info("webhook certificate loaded", "source=%s chain=%u not_after=%lld first=%s",
		 w->o.source ? "self-signed" : w->o.cert_file, p->n, (long long)p->not_after,
		 old ? "false" : "true");
	return 1;
}

static void *watch_files(void *arg)
{
	struct webhook *w = arg;
	pthread_mutex_lock(&w->stop_lock);
	while (!w->stopping) {
		struct timespec until = ktime_deadline(CLOCK_REALTIME,
						       (uint64_t)w->o.reload_interval_ms *
							       KTIME_NSEC_PER_MSEC);
		pthread_cond_timedwait(&w->stop_cond, &w->stop_lock, &until);
		if (w->stopping)
			break;
		pthread_mutex_unlock(&w->stop_lock);
		webhook_reload(w);
		pthread_mutex_lock(&w->stop_lock);
	}
	pthread_mutex_unlock(&w->stop_lock);
	return NULL;
}

/* ---- requests ----------------------------------------------------------- */

struct request {
	struct dynbuf body;  /* bounded by REVIEW_MAX_BODY */
	bool too_big;        /* the rest is read and dropped */
	bool busy;           /* the budget could not hold it: 503 */
	size_t seen;         /* bytes received, also past the bound */
	size_t reserved;     /* of the webhook's budget */
	uint64_t started_ns; /* monotonic */
};

/*
 * Reserve up to total bytes for q (what it holds grows to total). Bodies
 * over SMALL_BODY count against large_limit, so the rest stays for the
 * small ones. false when it does not fit.
 */
static bool reserve(struct webhook *w, struct request *q, size_t total, bool large)
{
	bool ok;
	if (total <= q->reserved)
		return true;
	pthread_mutex_lock(&w->budget_lock);
	size_t limit = large ? w->large_limit : w->o.max_held_bytes;
	ok = w->held + (total - q->reserved) <= limit;
	if (ok) {
		w->held += total - q->reserved;
		q->reserved = total;
	}
	metric_set(w->m_held, (double)w->held);
	pthread_mutex_unlock(&w->budget_lock);
	return ok;
}

static void release(struct webhook *w, struct request *q, size_t keep)
{
	if (q->reserved <= keep)
		return;
	pthread_mutex_lock(&w->budget_lock);
	w->held -= q->reserved - keep;
	q->reserved = keep;
	metric_set(w->m_held, (double)w->held);
	pthread_mutex_unlock(&w->budget_lock);
}

static double since(uint64_t t0)
{
	return ktime_ns_to_s(ktime_mono_ns() - t0);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *type,
			     const char *body, size_t len)
{
	return httpserver_reply(c, code, type, body, len, false);
}

/* Over the memory budget: 503, try again shortly (the API server's
 * failurePolicy decides what its caller sees). */
static enum MHD_Result busy(struct webhook *w, const struct route *rt, struct MHD_Connection *c)
{
	static const char msg[] = "webhook busy: the requests in flight hold its memory budget; retry\n";
	struct MHD_Response *r = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
								 MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;
	(void)w;
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	MHD_add_response_header(r, "Retry-After", "1");
	MHD_add_response_header(r, "Connection", "close");
	ret = MHD_queue_response(c, 503, r);
	MHD_destroy_response(r);
	log_warn("admission review refused", "webhook=%s reason=%s", rt->name,
		 "over the memory budget (503)");
	return ret;
}

static enum MHD_Result answer(struct webhook *w, const struct route *rt, struct MHD_Connection *c,
			      struct request *q)
{
	struct review_result res;
	enum MHD_Result ret;
	char big[128];
	int r;

	memset(&res, 0, sizeof(res));
	/* The parse: the body plus the tree json-c builds from it. */
	if (!q->too_big && !q->busy &&
	    !reserve(w, q, review_cost(dynbuf_str(&q->body), q->body.len), q->body.len > SMALL_BODY))
		q->busy = true;
	if (q->too_big) {
		snprintf(big, sizeof(big), "request body of %zu bytes is over the %u-byte limit\n",
			 q->seen, REVIEW_MAX_BODY);
		res.decision = "bad-request";
		log_warn("admission review refused", "webhook=%s reason=%s", rt->name,
			 "body too large");
		ret = reply(c, 413, "text/plain; charset=utf-8", big, strlen(big));
	} else if (q->busy) {
		ret = busy(w, rt, c);
		res.decision = "busy";
	} else {
		r = review_serve_with(dynbuf_str(&q->body), q->body.len, rt->mode, &w->o.lookup,
				      &res);
		if (r < 0) {
			res.decision = "error";
			log_error("admission review failed", "webhook=%s error=%s", rt->name,
				  strerror(-r));
			ret = reply(c, 500, "text/plain", "out of memory\n", 14);
		} else {
			double ms = since(q->started_ns) * KTIME_MSEC_PER_SEC;
			if (strcmp(res.decision, "bad-request") == 0)
				log_warn("admission review refused", "webhook=%s code=%u reason=%s",
					 rt->name, res.http_code, res.reason);
			else
				log_event(w->o.quiet ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, "admission",
					  "webhook=%s uid=%s operation=%s object=%s decision=%s "
					  "violations=%u warnings=%u patch_ops=%u reason=%s duration_ms=%.3f",
					  rt->name, res.uid, res.operation, res.object,
					  res.decision, res.n_errors, res.n_warnings,
					  res.n_patch_ops, res.reason, ms);
			ret = reply(c, res.http_code, res.content_type, res.body, res.body_len);
			review_result_done(&res);
		}
	}
	const char *lv[] = { rt->name, res.decision };
	metric_add(metrics_series(w->o.metrics, &fam_requests, lv), 1);
	metric_observe(metrics_series(w->o.metrics, &fam_latency, lv), since(q->started_ns));
	return ret;
}

static int append(struct webhook *w, struct request *q, const char *data, size_t n)
{
	int r;

	q->seen += n;
	if (q->too_big || q->busy)
		return 0;
	if (n > REVIEW_MAX_BODY - q->body.len) {
		q->too_big = true;
		dynbuf_free(&q->body);
		release(w, q, 0);
		return 0;
	}
	if (q->body.len + n + 1 > q->body.alloc) {
		/* What the buffer will allocate (dynbuf doubles from its first
		 * allocation up to its cap + 1) is reserved first. */
		size_t need = q->body.len + n + 1,
		       alloc = q->body.alloc ? q->body.alloc : DYNBUF_FIRST_ALLOC;
		while (alloc < need)
			alloc *= 2;
		if (alloc > REVIEW_MAX_BODY + 1)
			alloc = REVIEW_MAX_BODY + 1;
		if (!reserve(w, q, alloc, alloc > SMALL_BODY)) {
			q->busy = true;
			dynbuf_free(&q->body);
			release(w, q, 0);
			return 0;
		}
	}
	r = dynbuf_add(&q->body, data, n);
	if (r == -EFBIG) {
		q->too_big = true;
		dynbuf_free(&q->body);
		release(w, q, 0);
		return 0;
	}
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *data_size, void **con_cls)
{
	struct webhook *w = cls;
	struct request *q = *con_cls;
	const struct route *rt = NULL;
	(void)version;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(url, routes[i].path) == 0)
			rt = &routes[i];
	if (!q) {
		if (!rt)
			return reply(c, 404, "text/plain", NOT_FOUND, sizeof(NOT_FOUND) - 1);
		if (strcmp(method, "POST") != 0)
			return reply(c, 405, "text/plain",
				     "method not allowed: POST an AdmissionReview\n", 44);
		q = calloc(1, sizeof(*q));
		if (!q)
			return MHD_NO;
		dynbuf_init(&q->body, REVIEW_MAX_BODY);
		q->started_ns = ktime_mono_ns();
		*con_cls = q;
		/* A declared length is reserved (or refused) before any byte of
		 * the body is read. */
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl) {
			char *end;
			unsigned long long n = strtoull(cl, &end, 10);
			if (*end == '\0' && n > REVIEW_MAX_BODY) {
				q->too_big = true;
				q->seen = (size_t)n;
				return answer(w, rt, c, q);
			}
			if (*end == '\0' && n > 0 && !reserve(w, q, (size_t)n + 1, n > SMALL_BODY)) {
				q->busy = true;
				return answer(w, rt, c, q);
			}
		}
		return MHD_YES;
	}
	if (*data_size) {
		if (append(w, q, data, *data_size) < 0)
			return MHD_NO;
		*data_size = 0;
		return MHD_YES;
	}
	return answer(w, rt, c, q);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct request *q = *con_cls;
	(void)c;
	(void)toe;
	if (q) {
		release(cls, q, 0);
		dynbuf_free(&q->body);
		free(q);
		*con_cls = NULL;
	}
}

/* ---- start and stop ----------------------------------------------------- */

int webhook_start(const struct webhook_options *o, struct webhook **ret, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	unsigned sl;
	struct webhook *w;
	int r;

	if (!o->addr || httpserver_parse_addr(o->addr, &ss, &sl) < 0) {
		snprintf(err, errlen, "--webhook-addr: \"%s\" is not host:port",
			 o->addr ? o->addr : "");
		return -EINVAL;
	}
	if (!o->source && (!o->cert_file || !*o->cert_file || !o->key_file || !*o->key_file)) {
		snprintf(err, errlen,
			 "--webhook-cert-file and --webhook-key-file are required with --webhook-addr");
		return -EINVAL;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->o = *o;
	if (!w->o.max_connections)
		w->o.max_connections = 256;
	if (!w->o.timeout_s)
		w->o.timeout_s = 10;
	if (!w->o.threads)
		w->o.threads = 4;
	if (!w->o.max_held_bytes)
		w->o.max_held_bytes = DEFAULT_MAX_HELD;
	/* What large bodies may hold: the rest is kept for small ones. */
	size_t small = (size_t)w->o.max_connections * SMALL_BODY;
	w->large_limit = w->o.max_held_bytes > small ? w->o.max_held_bytes - small : 0;
	pthread_mutex_init(&w->budget_lock, NULL);
	w->m_held = metrics_series(w->o.metrics, &fam_held, NULL);
	if (w->o.reload_interval_ms <= 0)
		w->o.reload_interval_ms = 1000;
	if (w->o.source)
		w->o.reload_interval_ms = w->o.source_interval_ms > 0 ? w->o.source_interval_ms :
									3600000;
	pthread_mutex_init(&w->lock, NULL);
	pthread_mutex_init(&w->stop_lock, NULL);
	pthread_cond_init(&w->stop_cond, NULL);
	pthread_mutex_lock(&instance_lock);
	if (instance) {
		pthread_mutex_unlock(&instance_lock);
		snprintf(err, errlen, "a webhook server already runs in this process");
		r = -EBUSY;
		goto fail;
	}
	instance = w;
	pthread_mutex_unlock(&instance_lock);
	if (o->source) {
		r = pair_from_source(&w->o, &w->current, err, errlen);
		if (r == 0) {
			snprintf(err, errlen, "the certificate source gave no certificate");
			r = -ENOENT;
		}
		if (r < 0)
			goto fail;
	} else {
		r = pair_load(o->cert_file, o->key_file, &w->current, err, errlen);
		if (r < 0)
			goto fail;
		stamp_of(o->cert_file, &w->cert_stamp);
		stamp_of(o->key_file, &w->key_stamp);
	}
	count_reload(w, "loaded");
	metric_set(metrics_series(w->o.metrics, &fam_expiry, NULL), (double)w->current->not_after);
	w->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TLS |
					(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
				0, NULL, NULL, on_request, w, MHD_OPTION_SOCK_ADDR,
				(struct sockaddr *)&ss, MHD_OPTION_HTTPS_CERT_CALLBACK,
				cert_callback, MHD_OPTION_HTTPS_PRIORITIES, WEBHOOK_TLS_PRIORITIES,
				MHD_OPTION_THREAD_POOL_SIZE, w->o.threads,
				MHD_OPTION_CONNECTION_LIMIT, w->o.max_connections,
				MHD_OPTION_CONNECTION_TIMEOUT, w->o.timeout_s,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, w, MHD_OPTION_END);
	if (!w->d) {
		snprintf(err, errlen, "cannot listen on %s (in use, or TLS set-up failed)", o->addr);
		r = -EADDRINUSE;
		goto fail;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(w->d, MHD_DAEMON_INFO_BIND_PORT);
	w->port = info ? info->port : 0;
	if (pthread_create(&w->watcher, NULL, watch_files, w) != 0) {
		snprintf(err, errlen, "cannot start the certificate watcher");
		r = -ENOMEM;
		goto fail;
	}
	w->watcher_started = true;
	*ret = w;
	return 0;
fail:
	webhook_stop(w);
	return r;
}

unsigned webhook_port(const struct webhook *w)
{
	return w->port;
}

void webhook_stop(struct webhook *w)
{
	if (!w)
		return;
	if (w->d)
		MHD_stop_daemon(w->d);
	if (w->watcher_started) {
		pthread_mutex_lock(&w->stop_lock);
		w->stopping = true;
		pthread_cond_signal(&w->stop_cond);
		pthread_mutex_unlock(&w->stop_lock);
		pthread_join(w->watcher, NULL);
	}
	pthread_mutex_lock(&instance_lock);
	if (instance == w)
		instance = NULL;
	pthread_mutex_unlock(&instance_lock);
	pair_free(w->current);
	while (w->retired) {
		struct pair *n = w->retired->next;
		pair_free(w->retired);
		w->retired = n;
	}
	pthread_mutex_destroy(&w->lock);
	pthread_mutex_destroy(&w->stop_lock);
	pthread_mutex_destroy(&w->budget_lock);
	pthread_cond_destroy(&w->stop_cond);
	free(w);
}
