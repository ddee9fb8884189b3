/*
 * Informers on one I/O thread.
 *
 * Each informer is a small state machine driven by the loop in io_main:
 *
 *   IDLE      nothing in flight; at next_at, start a LIST page (need_list)
 *             or a WATCH
 *   LISTING   a LIST page is in flight; its body is collected (bounded)
 *   WATCHING  a WATCH stream is open; events are handled line by line as
 *             they arrive
 *
 * A finished transfer sends the informer back to IDLE with the right
 * next_at: at once for the next page or the watch after a list, after a
 * backoff for failures. Every request first takes a token from the API
 * client's rate limiter; the wait becomes part of next_at, never a sleep.
 */
#include "informer.h"

#include "backoff.h"
#include "events.h"
#include "jsonscan.h"
#include "dynbuf.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "ktime.h"
#include "fnv.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_INFORMERS 32
/* Unreadable objects an informer remembers, to log and report each once. */
#define MAX_SKIPPED 256
#define SKIP_KEY_MAX 512
#define BODY_KEEP_BYTES (1u << 20) /* a larger list body is freed after use */
#define HEALTHY_WATCH_NS (60ULL * KTIME_NSEC_PER_SEC)

enum inf_state { INF_IDLE, INF_LISTING, INF_WATCHING };

/* The watch event types (k8s.io/apimachinery/pkg/watch.EventType); the
 * value indexes the per-type event counters. */
enum watch_type {
	WATCH_UNKNOWN = -1,
	WATCH_ADDED,
	WATCH_MODIFIED,
	WATCH_DELETED,
	WATCH_BOOKMARK,
	WATCH_ERROR,
	WATCH_N_TYPES
};

/* Keys seen by a (re)list: the writer's private set. */
struct strset {
	char **slots;
	size_t cap, n;
};

struct informer {
	struct informer_set *set;
	struct informer_options o;
	char *ns, *label_selector, *field_selector;
	struct cache *cache;
	struct {
		informer_handler_fn fn;
		void *ud;
	} handlers[INFORMER_MAX_HANDLERS];
	int n_handlers;

	enum inf_state state;
	bool need_list;
	bool forbidden; /* an optional kind's LIST answered 403 (said once) */
	bool has_token; /* a rate-limit token is already reserved */
	uint64_t next_at;
	uint64_t next_resync;
	struct backoff bo;
	char rv[64];

	char *cont;
	bool unpaged;
	struct strset seen;

	CURL *easy;
	struct curl_slist *headers;
	struct dynbuf buf;
	json_tokener *tok;
	char *cut; /* an object's text without its managedFields (decode_object) */
	size_t cut_cap;
	uint64_t started_ns;
	long code;
	int event_err;
	unsigned events_this_watch;
	bool unreachable; /* the last LIST or watch got no answer at all */

	/* Keys of objects skipped as unreadable and not readable since:
	 * each is logged (and reported) once, not on every relist. */
	char (*skipped)[SKIP_KEY_MAX];
	size_t n_skipped;

	pthread_mutex_t stats_lock;
	struct informer_stats stats;
	struct metric_series *m_events[WATCH_N_TYPES], *m_relists, *m_objects;
	struct metric_series *m_skipped[3];
};

struct informer_set {
	struct kube_client *client;
	struct intern *interns;
	struct metrics *metrics;
	struct events *events;
	struct informer *inf[MAX_INFORMERS];
	int n;
	CURLM *multi;
	pthread_t thread;
	bool running;
	atomic_int stop;
	atomic_int synced;
};

static const char *const kind_type_labels[] = { "kind", "type", NULL };
static const char *const kind_labels[] = { "kind", NULL };
static const struct metric_family fam_events = { "kinfer_watch_events_total",
						 "Watch events received, by kind and type.",
						 METRIC_COUNTER,
						 kind_type_labels,
						 NULL,
						 0 };
static const struct metric_family fam_relists = {
	"kinfer_informer_relists_total",
	"Full LISTs after the first (410 Gone, watch errors), by kind.",
	METRIC_COUNTER,
	kind_labels,
	NULL,
	0
};
static const struct metric_family fam_objects = {
	"kinfer_cache_objects", "Objects in the cache, by kind.", METRIC_GAUGE, kind_labels, NULL, 0
};
static const char *const kind_reason_labels[] = { "kind", "reason", NULL };
static const struct metric_family fam_skipped = {
	"kinfer_informer_objects_skipped_total",
	"Objects an informer could not decode or project and skipped (the rest of "
	"the watch stream or LIST page is used), by kind and reason.",
	METRIC_COUNTER,
	kind_reason_labels,
	NULL,
	0
};
/* Why an object was skipped: the metric's reason label. */
enum skip_reason { SKIP_TOO_DEEP, SKIP_UNDECODABLE, SKIP_UNPROJECTABLE };
static const char *const skip_reasons[] = { "too_deep", "undecodable", "unprojectable" };
static const char *const event_types[WATCH_N_TYPES] = {
	[WATCH_ADDED] = "ADDED",       [WATCH_MODIFIED] = "MODIFIED", [WATCH_DELETED] = "DELETED",
	[WATCH_BOOKMARK] = "BOOKMARK", [WATCH_ERROR] = "ERROR",
};

/* ---- small helpers ---------------------------------------------------- */

static uint32_t str_hash(const char *s)
{
	return fnv32_str(s);
}

static void strset_clear(struct strset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slots[i]);
	free(s->slots);
	memset(s, 0, sizeof(*s));
}

static bool strset_has(const struct strset *s, const char *k)
{
	if (!s->cap)
		return false;
	for (size_t i = str_hash(k) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (!s->slots[i])
			return false;
		if (strcmp(s->slots[i], k) == 0)
			return true;
	}
}

static int strset_add(struct strset *s, const char *k)
{
	if ((s->n + 1) * 2 > s->cap) {
		struct strset g = { .cap = s->cap ? s->cap * 2 : 1024 };
		g.slots = calloc(g.cap, sizeof(char *));
		if (!g.slots)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++) {
			char *e = s->slots[i];
			if (!e)
				continue;
			size_t j = str_hash(e) & (g.cap - 1);
			while (g.slots[j])
				j = (j + 1) & (g.cap - 1);
			g.slots[j] = e;
		}
		g.n = s->n;
		free(s->slots);
		*s = g;
	}
	size_t i = str_hash(k) & (s->cap - 1);
	for (; s->slots[i]; i = (i + 1) & (s->cap - 1))
		if (strcmp(s->slots[i], k) == 0)
			return 0;
	s->slots[i] = strdup(k);
	if (!s->slots[i])
		return -ENOMEM;
	s->n++;
	return 0;
}

/* Empty the body buffer between transfers; a huge list body is not kept. */
static void buf_reset(struct dynbuf *b)
{
	dynbuf_reset(b, BODY_KEEP_BYTES);
}

static void bump(struct informer *inf, uint64_t *counter)
{
	pthread_mutex_lock(&inf->stats_lock);
	(*counter)++;
	pthread_mutex_unlock(&inf->stats_lock);
}

static void set_rv(struct informer *inf, const char *rv)
{
	if (!rv || !*rv)
		return;
	snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
	pthread_mutex_lock(&inf->stats_lock);
	snprintf(inf->stats.resource_version, sizeof(inf->stats.resource_version), "%s", rv);
	pthread_mutex_unlock(&inf->stats_lock);
}

static void notify(struct informer *inf, enum informer_event ev, const struct cache_obj *old,
		   const struct cache_obj *obj)
{
	for (int i = 0; i < inf->n_handlers; i++)
		inf->handlers[i].fn(inf->handlers[i].ud, ev, old, obj);
}

static bool same_object(const struct cache_kind *k, const struct cache_obj *a,
			const struct cache_obj *b)
{
	if (k->same)
		return k->same(a, b);
	return cache_obj_same_rv(a, b);
}

/* ---- unreadable objects ------------------------------------------------ */

static void remove_key(struct informer *inf, const char *key);

static ssize_t skipped_find(const struct informer *inf, const char *key)
{
	for (size_t i = 0; i < inf->n_skipped; i++)
		if (strcmp(inf->skipped[i], key) == 0)
			return (ssize_t)i;
	return -1;
}

/* The object is readable again, or gone: report it again if it breaks. */
static void skipped_forget(struct informer *inf, const char *key)
{
	ssize_t i = inf->n_skipped ? skipped_find(inf, key) : -1;
	if (i < 0)
		return;
	inf->n_skipped--;
	if ((size_t)i != inf->n_skipped)
		memcpy(inf->skipped[i], inf->skipped[inf->n_skipped], SKIP_KEY_MAX);
}

/* True the first time a key is skipped (until it is forgotten). */
static bool skipped_remember(struct informer *inf, const char *key)
{
	if (skipped_find(inf, key) >= 0)
		return false;
	if (!inf->skipped && !(inf->skipped = calloc(MAX_SKIPPED, SKIP_KEY_MAX)))
		return true;
	if (inf->n_skipped < MAX_SKIPPED)
		snprintf(inf->skipped[inf->n_skipped++], SKIP_KEY_MAX, "%s", key);
	return true;
}

/*
 * The text json-c parses: the object's own, or with metadata.managedFields'
 * value (mf, relative to p) replaced by [] in inf->cut. No reader of kinfer
 * reads managedFields, and it is 2-4 KB of a Pod's ~5 KB, made of small
 * objects: json-c built a tree of each (a hash table per object).
 */
static const char *without_managed_fields(struct informer *inf, const char *p, size_t *n,
					  const size_t mf[2])
{
	size_t len = *n, want;

	if (mf[1] <= mf[0] || mf[1] > len)
		return p;
	want = mf[0] + 2 + (len - mf[1]);
	if (want > inf->cut_cap) {
		char *c = realloc(inf->cut, want);
		if (!c)
			return p; /* parse it whole */
		inf->cut = c;
		inf->cut_cap = want;
	}
	memcpy(inf->cut, p, mf[0]);
	memcpy(inf->cut + mf[0], "[]", 2);
	memcpy(inf->cut + mf[0] + 2, p + mf[1], len - mf[1]);
	*n = want;
	return inf->cut;
}

/*
 * Parse one object's text. NULL when it cannot be used, with the reason
 * and a sentence for people: nested past KUBE_JSON_MAX_DEPTH (checked by the
 * scanner first, so json-c never builds a tree deeper than the limit) or
 * not a JSON object. mf: the range of its managedFields from that scan
 * (jsonscan_depth_end), NULL when the caller did not scan it.
 */
static json_object *decode_object(struct informer *inf, const char *p, size_t n, const size_t *mf,
				  enum skip_reason *why, char *detail, size_t len)
{
	char path[256];
	size_t own_mf[2], end;
	int r = 0;
	json_object *o = NULL;

	if (!mf) {
		r = jsonscan_depth_end(p, n, 0, KUBE_JSON_MAX_DEPTH, true, path, sizeof(path), &end,
				       own_mf);
		mf = own_mf;
	}
	if (r == 0 && !inf->o.kind->keep_managed_fields)
		p = without_managed_fields(inf, p, &n, mf);
	if (r > 0) {
		*why = SKIP_TOO_DEEP;
		snprintf(detail, len, "field %s nests deeper than %d levels", path,
			 KUBE_JSON_MAX_DEPTH);
		return NULL;
	}
	/* One tokener per informer, reused (objects are bounded by the event
	 * and body bounds, far below INT_MAX). */
	if (r == 0 && !inf->tok)
		inf->tok = json_tokener_new_ex(KUBE_JSON_PARSE_DEPTH);
	if (r == 0 && inf->tok && n < INT32_MAX) {
		json_tokener_reset(inf->tok);
		o = json_tokener_parse_ex(inf->tok, p, (int)n);
		if (json_tokener_get_error(inf->tok) != json_tokener_success) {
			json_object_put(o);
			o = NULL;
		}
	}
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		*why = SKIP_UNDECODABLE;
		snprintf(detail, len, "not a JSON object kinfer can decode");
		return NULL;
	}
	return o;
}

/*
 * An object in the stream or page that cannot be used: it is skipped and
 * everything after it is used. Its name is read with the scanner (no tree);
 * an object without one cannot be told apart from a broken stream, and is
 * -EBADMSG. A DELETED event still forgets the key; a skipped object from a
 * LIST counts as seen, so the last version read stays cached (what kinfer
 * acts on until the object becomes readable again).
 */
static int skip_object(struct informer *inf, const char *p, size_t n, enum skip_reason why,
		       const char *detail, bool deleted, bool from_list)
{
	char name[254], ns[254] = "", uid[64] = "", rv[32] = "", key[SKIP_KEY_MAX];
	const struct cache_kind *k = inf->o.kind;

	if (jsonscan_string(p, n, 0, "metadata.name", name, sizeof(name)) < 0 || !name[0]) {
		/* Nothing to name it by: skipped all the same. */
		metric_add(inf->m_skipped[why], 1);
		bump(inf, &inf->stats.skipped);
		log_warn("object without a readable name skipped", "kind=%s reason=%s", k->name,
			 skip_reasons[why]);
		return 0;
	}
	jsonscan_string(p, n, 0, "metadata.namespace", ns, sizeof(ns));
	jsonscan_string(p, n, 0, "metadata.uid", uid, sizeof(uid));
	jsonscan_string(p, n, 0, "metadata.resourceVersion", rv, sizeof(rv));
	snprintf(key, sizeof(key), "%s%s%s", ns, ns[0] ? "/" : "", name);
	metric_add(inf->m_skipped[why], 1);
	bump(inf, &inf->stats.skipped);
	if (deleted) {
		skipped_forget(inf, key);
		remove_key(inf, key);
	} else {
		if (from_list && strset_add(&inf->seen, key) < 0)
			return -ENOMEM;
		if (skipped_remember(inf, key)) {
			log_warn("object skipped: cannot be read",
				 "kind=%s namespace=%s name=%s "
				 "reason=%s detail=%s",
				 k->name, ns, name, skip_reasons[why], detail);
			if (k->event_on_skip && inf->set->events) {
				char note[1024];
				char api_version[128];
				struct event_object r = { api_version, k->res->kind,
							  ns[0] ? ns : NULL, name,
							  uid[0] ? uid : NULL };
				snprintf(api_version, sizeof(api_version), "%s%s%s", k->res->group,
					 k->res->group[0] ? "/" : "", k->res->version);
				snprintf(note, sizeof(note),
					 "kinfer cannot read this object and ignores "
					 "it (it keeps the last version it read, if any): %s",
					 detail);
				events_emit_async(inf->set->events, &r, "Warning", "Unreadable",
						  "Decode", note);
			}
		}
	}
	if (!from_list)
		set_rv(inf, rv);
	return 0;
}

/* ---- applying objects ------------------------------------------------- */

/* Publish an object from a list or an ADDED/MODIFIED event. */
static int apply_object(struct informer *inf, json_object *json, bool from_list)
{
	struct cache_obj *obj, *old = NULL;
	int r = cache_project(inf->cache, json, &obj);
	if (r < 0)
		return r;
	if (from_list) {
		r = strset_add(&inf->seen, obj->key);
		if (r < 0) {
			cache_discard(inf->cache, obj);
			return r;
		}
		cache_read_lock();
		const struct cache_obj *cur = cache_get(inf->cache, obj->key);
		bool unchanged = cur && same_object(inf->o.kind, cur, obj);
		cache_read_unlock();
		if (unchanged) {
			skipped_forget(inf, obj->key);
			cache_discard(inf->cache, obj);
			return 0;
		}
	}
	skipped_forget(inf, obj->key);
	cache_write_begin(inf->cache);
	cache_publish(inf->cache, obj, &old);
	cache_read_lock();
	notify(inf, old ? INFORMER_UPDATE : INFORMER_ADD, old, obj);
	cache_read_unlock();
	cache_write_done(inf->cache);
	cache_retire(inf->cache, old);
	return 0;
}

static void remove_key(struct informer *inf, const char *key)
{
	struct cache_obj *old;
	skipped_forget(inf, key);
	cache_write_begin(inf->cache);
	if (cache_remove(inf->cache, key, &old) < 0) {
		cache_write_done(inf->cache);
		return;
	}
	cache_read_lock();
	notify(inf, INFORMER_DELETE, old, NULL);
	cache_read_unlock();
	cache_write_done(inf->cache);
	cache_retire(inf->cache, old);
}

static int remove_object(struct informer *inf, json_object *json)
{
	const char *name = cache_json_str(json, "metadata.name");
	const char *ns = cache_json_str(json, "metadata.namespace");
	char key[512];
	if (!name)
		return -EBADMSG;
	snprintf(key, sizeof(key), "%s%s%s", ns && *ns ? ns : "", ns && *ns ? "/" : "", name);
	remove_key(inf, key);
	return 0;
}

/* ---- watch events ----------------------------------------------------- */

static enum watch_type event_index(const char *type)
{
	for (int i = 0; i < WATCH_N_TYPES; i++)
		if (strcmp(type, event_types[i]) == 0)
			return (enum watch_type)i;
	return WATCH_UNKNOWN;
}

/*
 * One object's text from a stream or page: decoded, projected and
 * published; what cannot be is skipped (skip_object). 0, or -EBADMSG when
 * it cannot even be named, or -ENOMEM.
 */
static int apply_checked(struct informer *inf, const char *p, size_t n, const size_t *mf,
			 bool deleted, bool from_list)
{
	enum skip_reason why;
	char detail[512];
	json_object *obj = decode_object(inf, p, n, mf, &why, detail, sizeof(detail));
	int r;

	if (!obj)
		return skip_object(inf, p, n, why, detail, deleted, from_list);
	if (deleted) {
		r = remove_object(inf, obj);
		if (r == 0)
			set_rv(inf, cache_json_str(obj, "metadata.resourceVersion"));
	} else {
		r = apply_object(inf, obj, from_list);
		if (r == 0 && !from_list)
			set_rv(inf, cache_json_str(obj, "metadata.resourceVersion"));
	}
	json_object_put(obj);
	if (r == -EBADMSG)
		r = skip_object(inf, p, n, SKIP_UNPROJECTABLE,
				"its fields do not have the types kinfer reads", deleted, from_list);
	return r;
}

static int apply_text(struct informer *inf, const char *p, size_t n, bool deleted, bool from_list)
{
	return apply_checked(inf, p, n, NULL, deleted, from_list);
}

/*
 * One line of a watch stream. The envelope is read with the scanner, the
 * object on its own: an object that cannot be read is skipped and the
 * stream goes on; only a line that is not an event at all makes the stream
 * unusable (-EBADMSG: relist).
 */
static int handle_event(struct informer *inf, const char *line, size_t len)
{
	char type[16];
	size_t os, oe;
	enum watch_type idx;
	int r = 0;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (len == 0)
		return 0;
	/* One pass over the object finds its end and checks its depth. */
	char path[256];
	size_t mf[2];
	int deep;
	if (jsonscan_string(line, len, 0, "type", type, sizeof(type)) < 0 ||
	    jsonscan_member_start(line, len, 0, "object", &os) < 0 || line[os] != '{' ||
	    (deep = jsonscan_depth_end(line, len, os, KUBE_JSON_MAX_DEPTH, true, path, sizeof(path),
				       &oe, mf)) < 0 ||
	    (deep && jsonscan_skip(line, len, os, &oe) < 0))
		return -EBADMSG;
	idx = event_index(type);
	if (idx != WATCH_UNKNOWN)
		metric_add(inf->m_events[idx], 1);
	inf->events_this_watch++;
	bump(inf, &inf->stats.events);
	switch (idx) {
	case WATCH_ADDED:
	case WATCH_MODIFIED:
	case WATCH_DELETED:
		if (!deep) { /* the scan's range of managedFields, from the object's start */
			mf[0] = mf[1] ? mf[0] - os : 0;
			mf[1] = mf[1] ? mf[1] - os : 0;
		}
		r = apply_checked(inf, line + os, oe - os, deep ? NULL : mf, idx == WATCH_DELETED,
				  false);
		break;
	case WATCH_BOOKMARK: {
		char rv[32];
		bump(inf, &inf->stats.bookmarks);
		if (jsonscan_string(line + os, oe - os, 0, "metadata.resourceVersion", rv,
				    sizeof(rv)) == 0)
			set_rv(inf, rv);
		break;
	}
	case WATCH_ERROR: {
		json_object *obj = kube_json_parse(line + os, oe - os);
		r = cache_json_int(obj, "code", 0) == 410 ? -EIDRM : -EPROTO;
		if (r == -EPROTO)
			log_warn("watch error event", "kind=%s message=%s", inf->o.kind->name,
				 cache_json_str(obj, "message"));
		json_object_put(obj);
		break;
	}
	case WATCH_UNKNOWN:
	case WATCH_N_TYPES:
		r = -EBADMSG;
	}
	metric_set(inf->m_objects, (double)cache_count(inf->cache));
	return r;
}

int informer_feed(struct informer *inf, const char *p, size_t n)
{
	size_t start = 0;
	int r;

	for (size_t i = 0; i < n; i++) {
		if (p[i] != '\n')
			continue;
		if (inf->buf.len > 0) {
			r = dynbuf_add(&inf->buf, p + start, i - start);
			if (r == 0)
				r = handle_event(inf, dynbuf_str(&inf->buf), inf->buf.len);
			dynbuf_reset(&inf->buf, SIZE_MAX);
		} else {
			r = i - start > inf->buf.max ? -EFBIG :
						       handle_event(inf, p + start, i - start);
		}
		if (r < 0)
			return r;
		start = i + 1;
	}
	return start < n ? dynbuf_add(&inf->buf, p + start, n - start) : 0;
}

/* ---- transfers -------------------------------------------------------- */

/*
 * The API server answered this informer. The others of the set that could
 * not reach it and are waiting out their backoff try again now: after a
 * restart of kube-apiserver every watch is back within a second of the
 * first answer, instead of each at the end of its own backoff (up to 30 s,
 * during which that kind's cache, and every decision read from it, would
 * stay as it was before the outage). Their backoff starts again from its
 * first step: what it grew to measured the outage, not the server that
 * answers now (seen: a watch refused once with 429 "storage is
 * (re)initializing" right after the restart waited 58 s more). Only the
 * set's I/O thread runs this.
 */
static void server_answered(struct informer *inf)
{
	struct informer_set *s = inf->set;
	uint64_t now = ktime_mono_ns();

	inf->unreachable = false;
	for (int i = 0; i < s->n; i++) {
		struct informer *o = s->inf[i];
		if (o->unreachable && o->state == INF_IDLE && o->next_at > now) {
			o->unreachable = false;
			o->next_at = now;
			backoff_reset(&o->bo);
		}
	}
}

/* The transfer's HTTP status, read once (on its first data, or at its end
 * when it had none); 0 while the server has not answered. */
static void read_code(struct informer *inf)
{
	if (inf->code)
		return;
	curl_easy_getinfo(inf->easy, CURLINFO_RESPONSE_CODE, &inf->code);
	if (inf->code)
		server_answered(inf);
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct informer *inf = ud;
	size_t n = size * nmemb;

	read_code(inf);
	if (inf->state == INF_LISTING || inf->code != 200)
		return dynbuf_add(&inf->buf, ptr, n) == 0 ? n : 0;
	int r = informer_feed(inf, ptr, n);
	if (r < 0) {
		inf->event_err = r;
		return 0;
	}
	return n;
}

static void end_transfer(struct informer *inf)
{
	if (inf->easy) {
		curl_multi_remove_handle(inf->set->multi, inf->easy);
		curl_easy_cleanup(inf->easy);
		inf->easy = NULL;
	}
	curl_slist_free_all(inf->headers);
	inf->headers = NULL;
}

static int start_transfer(struct informer *inf, enum inf_state st, const char *path, long timeout_ms)
{
	int r;
	inf->easy = curl_easy_init();
	if (!inf->easy)
		return -ENOMEM;
	r = kube_setup_easy(inf->set->client, inf->easy, path, timeout_ms, &inf->headers);
	if (r < 0) {
		curl_easy_cleanup(inf->easy);
		inf->easy = NULL;
		return r;
	}
	curl_easy_setopt(inf->easy, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(inf->easy, CURLOPT_WRITEDATA, inf);
	curl_easy_setopt(inf->easy, CURLOPT_PRIVATE, inf);
	if (st == INF_WATCHING)
		curl_easy_setopt(inf->easy, CURLOPT_ACCEPT_ENCODING, NULL);
	buf_reset(&inf->buf);
	inf->code = 0;
	inf->event_err = 0;
	inf->events_this_watch = 0;
	inf->started_ns = ktime_mono_ns();
	inf->state = st;
	if (curl_multi_add_handle(inf->set->multi, inf->easy) != CURLM_OK) {
		end_transfer(inf);
		inf->state = INF_IDLE;
		return -EIO;
	}
	return 0;
}

static void start_list(struct informer *inf)
{
	struct kube_opts o = {
		.label_selector = inf->label_selector,
		.field_selector = inf->field_selector,
		.limit = inf->unpaged ? 0 : inf->o.page_size,
		.continue_token = inf->cont,
	};
	char path[8192];
	int r = kube_path(path, sizeof(path), inf->o.kind->res, inf->ns, NULL, NULL, &o);
	if (r == 0)
		r = start_transfer(inf, INF_LISTING, path, 120000);
	if (r < 0) {
		log_error("cannot start LIST", "kind=%s error=%s", inf->o.kind->name, strerror(-r));
		inf->next_at = ktime_mono_ns() + backoff_next(&inf->bo);
	}
}

static void start_watch(struct informer *inf)
{
	uint64_t seed = (uint64_t)inf->started_ns ^ (uint64_t)(uintptr_t)inf;
	struct kube_opts o = {
		.label_selector = inf->label_selector,
		.field_selector = inf->field_selector,
		.resource_version = inf->rv,
		.watch = true,
		.allow_bookmarks = true,
		/* A random 5-10 minutes, so watches do not all end at once. */
		.timeout_seconds = 300 + (long)(backoff_rand01(&seed) * 300),
	};
	char path[8192];
	int r = kube_path(path, sizeof(path), inf->o.kind->res, inf->ns, NULL, NULL, &o);
	if (r == 0)
		r = start_transfer(inf, INF_WATCHING, path,
				   (o.timeout_seconds + 30) * KTIME_MSEC_PER_SEC);
	if (r < 0) {
		log_error("cannot start WATCH", "kind=%s error=%s", inf->o.kind->name, strerror(-r));
		inf->next_at = ktime_mono_ns() + backoff_next(&inf->bo);
	} else {
		bump(inf, &inf->stats.watches);
	}
}

struct gone {
	const struct strset *seen;
	char **keys;
	size_t n, cap;
	int err;
};

static int collect_gone(const struct cache_obj *obj, void *ud)
{
	struct gone *g = ud;
	if (strset_has(g->seen, obj->key))
		return 0;
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 64;
		char **k = realloc(g->keys, cap * sizeof(*k));
		if (!k) {
			g->err = -ENOMEM;
			return 1;
		}
		g->keys = k;
		g->cap = cap;
	}
	if (!(g->keys[g->n] = strdup(obj->key))) {
		g->err = -ENOMEM;
		return 1;
	}
	g->n++;
	return 0;
}

/* After the last page: forget what the list did not mention. */
static int finish_list(struct informer *inf)
{
	struct gone g = { .seen = &inf->seen };

	cache_read_lock();
	cache_foreach(inf->cache, collect_gone, &g);
	cache_read_unlock();
	for (size_t i = 0; i < g.n; i++) {
		if (!g.err)
			remove_key(inf, g.keys[i]);
		free(g.keys[i]);
	}
	free(g.keys);
	strset_clear(&inf->seen);
	if (g.err)
		return g.err;
	metric_set(inf->m_objects, (double)cache_count(inf->cache));
	if (!cache_synced(inf->cache)) {
		cache_set_synced(inf->cache, true);
		log_info("cache synced", "kind=%s objects=%zu rv=%s", inf->o.kind->name,
			 cache_count(inf->cache), inf->rv);
	} else {
		log_info("relisted", "kind=%s objects=%zu removed=%zu rv=%s", inf->o.kind->name,
			 cache_count(inf->cache), g.n, inf->rv);
	}
	return 0;
}

/* Start the list again from its first page, after a failure. */
static void restart_list(struct informer *inf, uint64_t delay)
{
	free(inf->cont);
	inf->cont = NULL;
	inf->unpaged = false;
	strset_clear(&inf->seen);
	inf->need_list = true;
	inf->next_at = ktime_mono_ns() + delay;
}

#define FORBIDDEN_RETRY_NS (60 * KTIME_NSEC_PER_SEC)

/*
 * An optional kind the API server will not list (403): an operator
 * upgraded without its ClusterRole's new rule must not stop reconciling
 * everything for a cache it can do without. The cache counts as synced
 * (empty, or as last listed), the loss is said once, and the list is
 * tried again every minute.
 */
static void forbidden(struct informer *inf)
{
	char want[160];

	snprintf(want, sizeof(want),
		 "list and watch on %s in the ClusterRole "
		 "(manifests/10-rbac.yaml)",
		 inf->o.kind->res->plural);
	if (!inf->forbidden)
		log_error("forbidden to list: going on without it", "kind=%s feature=%s want=%s",
			  inf->o.kind->name, inf->o.kind->optional_feature, want);
	inf->forbidden = true;
	if (!cache_synced(inf->cache)) {
		cache_set_synced(inf->cache, true);
		log_info("cache synced", "kind=%s objects=%zu rv=%s", inf->o.kind->name,
			 cache_count(inf->cache), "none (forbidden)");
	}
	restart_list(inf, FORBIDDEN_RETRY_NS);
}

/*
 * One LIST page: its items are found with the scanner and decoded one at a
 * time, so an item that cannot be read is skipped and costs neither the
 * page nor memory for a tree of the whole page.
 */
static int apply_page(struct informer *inf)
{
	const char *p = dynbuf_str(&inf->buf);
	size_t n = inf->buf.len, is, ie, ms, me, s, e, cur;
	json_object *meta;
	int r = 0, k;

	if (jsonscan_path(p, n, 0, "items", &is, &ie) < 0 || p[is] != '[')
		return -EBADMSG;
	if (jsonscan_path(p, n, 0, "metadata", &ms, &me) < 0 ||
	    !(meta = kube_json_parse(p + ms, me - ms)))
		return -EBADMSG;
	cur = is;
	while (r >= 0 && (k = jsonscan_next(p, ie, &cur, &s, &e)) == 1)
		r = apply_text(inf, p + s, e - s, false, true);
	if (r >= 0 && k < 0)
		r = -EBADMSG;
	if (r < 0) {
		json_object_put(meta);
		return r;
	}
	const char *next = cache_json_str(meta, "continue");
	set_rv(inf, cache_json_str(meta, "resourceVersion"));
	free(inf->cont);
	inf->cont = next && *next ? strdup(next) : NULL;
	if (next && *next && !inf->cont)
		r = -ENOMEM;
	json_object_put(meta);
	return r;
}

int informer_feed_page(struct informer *inf, const char *p, size_t n)
{
	int r;

	dynbuf_reset(&inf->buf, BODY_KEEP_BYTES);
	r = dynbuf_add(&inf->buf, p, n);
	if (r == 0)
		r = apply_page(inf);
	if (r == 0 && !inf->cont)
		r = finish_list(inf);
	if (r < 0)
		restart_list(inf, 0);
	dynbuf_reset(&inf->buf, BODY_KEEP_BYTES);
	return r;
}

/*
 * The wait before trying again after a failed LIST or watch: the backoff,
 * or less when the server said when to come back (429 or 503 with
 * details.retryAfterSeconds, as kube-apiserver answers while a resource's
 * storage is still initializing after a restart: 1 s). Never more than
 * the backoff, so an odd answer cannot park the informer.
 */
static uint64_t retry_delay(struct informer *inf)
{
	uint64_t d = backoff_next(&inf->bo);
	struct kube_status st = { 0 };

	if (inf->code != 429 && inf->code != 503)
		return d;
	kube_status_decode(inf->code, dynbuf_str(&inf->buf), inf->buf.len, &st);
	if (st.retry_after_s > 0 && (uint64_t)st.retry_after_s * KTIME_NSEC_PER_SEC < d)
		d = (uint64_t)st.retry_after_s * KTIME_NSEC_PER_SEC;
	return d;
}

static void list_done(struct informer *inf, CURLcode cc)
{
	uint64_t now = ktime_mono_ns();
	int r;

	kube_observe(inf->set->client, "list", cc == CURLE_OK ? inf->code : 0,
		     ktime_ns_to_s(now - inf->started_ns));
	if (cc != CURLE_OK || inf->code != 200) {
		if (inf->code == 410 && inf->cont && !inf->unpaged) {
			/* The continue token expired: one unpaged list instead. */
			free(inf->cont);
			inf->cont = NULL;
			inf->unpaged = true;
			strset_clear(&inf->seen);
			inf->next_at = now;
			return;
		}
		bump(inf, &inf->stats.errors);
		if (cc == CURLE_OK && inf->code == 403 && inf->o.kind->optional_feature) {
			forbidden(inf);
			return;
		}
		log_warn("LIST failed", "kind=%s code=%ld error=%s", inf->o.kind->name, inf->code,
			 cc != CURLE_OK ? curl_easy_strerror(cc) : "http status");
		restart_list(inf, retry_delay(inf));
		return;
	}
	r = apply_page(inf);
	if (r < 0) {
		bump(inf, &inf->stats.errors);
		log_warn("LIST page unusable", "kind=%s error=%s", inf->o.kind->name, strerror(-r));
		restart_list(inf, backoff_next(&inf->bo));
		return;
	}
	if (inf->cont) {
		inf->next_at = now; /* next page */
		return;
	}
	if (finish_list(inf) < 0) {
		restart_list(inf, backoff_next(&inf->bo));
		return;
	}
	bump(inf, &inf->stats.lists);
	if (inf->forbidden)
		log_info("allowed to list again", "kind=%s feature=%s", inf->o.kind->name,
			 inf->o.kind->optional_feature);
	inf->forbidden = false;
	inf->unpaged = false;
	inf->need_list = false;
	inf->next_at = now; /* watch from the list's resourceVersion */
}

static void watch_done(struct informer *inf, CURLcode cc)
{
	uint64_t now = ktime_mono_ns(), ran = now - inf->started_ns;

	kube_observe(inf->set->client, "watch", cc == CURLE_OK ? inf->code : 0, ktime_ns_to_s(ran));
	if (ran >= HEALTHY_WATCH_NS)
		backoff_reset(&inf->bo);
	if (inf->event_err == -EIDRM || inf->code == 410) {
		/* Our resourceVersion is gone: relist and diff, at once. */
		bump(inf, &inf->stats.relists);
		metric_add(inf->m_relists, 1);
		log_info("resourceVersion expired, relisting", "kind=%s rv=%s", inf->o.kind->name,
			 inf->rv);
		restart_list(inf, 0);
		return;
	}
	if (inf->event_err < 0) {
		/* A bad or oversized event: what follows cannot be trusted. */
		bump(inf, &inf->stats.errors);
		bump(inf, &inf->stats.relists);
		metric_add(inf->m_relists, 1);
		log_warn("watch stream unusable, relisting", "kind=%s error=%s", inf->o.kind->name,
			 strerror(-inf->event_err));
		restart_list(inf, backoff_next(&inf->bo));
		return;
	}
	if (cc != CURLE_OK || inf->code != 200) {
		bump(inf, &inf->stats.errors);
		log_warn("watch failed, retrying", "kind=%s code=%ld error=%s", inf->o.kind->name,
			 inf->code,
			 cc != CURLE_OK ? curl_easy_strerror(cc) : (dynbuf_str(&inf->buf)));
		inf->next_at = now + retry_delay(inf);
		return;
	}
	/* The server closed the watch: normal after timeoutSeconds. A watch that
	 * ends at once, again and again, backs off instead of spinning. */
	inf->next_at = ran < KTIME_NSEC_PER_SEC && inf->events_this_watch == 0 ?
			       now + backoff_next(&inf->bo) :
			       now;
}

static int resync_one(const struct cache_obj *obj, void *ud)
{
	notify(ud, INFORMER_RESYNC, obj, obj);
	return 0;
}

/* Hand every cached object to the handlers again; no API call. */
static void resync(struct informer *inf, uint64_t now)
{
	if (!inf->o.resync_ns || now < inf->next_resync)
		return;
	inf->next_resync = now + inf->o.resync_ns;
	if (!cache_synced(inf->cache))
		return;
	cache_read_lock();
	cache_foreach(inf->cache, resync_one, inf);
	cache_read_unlock();
}

/* ---- the I/O thread --------------------------------------------------- */

/* An idle informer whose time has come starts its next request. */
static void step(struct informer *inf, uint64_t now)
{
	if (inf->state != INF_IDLE || now < inf->next_at)
		return;
	if (!inf->has_token) {
		uint64_t wait = kube_reserve(inf->set->client);
		inf->has_token = true;
		if (wait > 0) {
			inf->next_at = now + wait;
			return;
		}
	}
	inf->has_token = false;
	if (inf->need_list)
		start_list(inf);
	else
		start_watch(inf);
}

static void reap(struct informer_set *s)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(s->multi, &left))) {
		struct informer *inf = NULL;
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&inf);
		if (!inf)
			continue;
		CURLcode cc = m->data.result;
		read_code(inf);
		if (!inf->code)
			inf->unreachable = true;
		enum inf_state st = inf->state;
		end_transfer(inf);
		inf->state = INF_IDLE;
		if (st == INF_LISTING)
			list_done(inf, cc);
		else
			watch_done(inf, cc);
		buf_reset(&inf->buf);
	}
}

static void update_synced(struct informer_set *s)
{
	for (int i = 0; i < s->n; i++)
		if (!cache_synced(s->inf[i]->cache))
			return;
	atomic_store(&s->synced, 1);
}

static void *io_main(void *ud)
{
	struct informer_set *s = ud;
	int running;

	rcu_register_thread();
	while (!atomic_load(&s->stop)) {
		uint64_t now = ktime_mono_ns(), next = now + KTIME_NSEC_PER_SEC;
		for (int i = 0; i < s->n; i++) {
			struct informer *inf = s->inf[i];
			step(inf, now);
			resync(inf, now);
			if (inf->state == INF_IDLE && inf->next_at < next)
				next = inf->next_at;
			if (inf->o.resync_ns && inf->next_resync < next)
				next = inf->next_resync;
		}
		int timeout_ms = next > now ? (int)((next - now) / KTIME_NSEC_PER_MSEC) : 0;
		curl_multi_poll(s->multi, NULL, 0, timeout_ms, NULL);
		curl_multi_perform(s->multi, &running);
		reap(s);
		if (!atomic_load(&s->synced))
			update_synced(s);
	}
	for (int i = 0; i < s->n; i++) {
		end_transfer(s->inf[i]);
		s->inf[i]->state = INF_IDLE;
	}
	rcu_unregister_thread();
	return NULL;
}

/* ---- public ----------------------------------------------------------- */

int informer_set_new(struct kube_client *client, struct intern *interns, struct metrics *metrics,
		     struct informer_set **ret)
{
	struct informer_set *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->client = client;
	s->interns = interns;
	s->metrics = metrics;
	s->multi = curl_multi_init();
	if (!s->multi) {
		free(s);
		return -ENOMEM;
	}
	curl_multi_setopt(s->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	*ret = s;
	return 0;
}

static void informer_free(struct informer *inf)
{
	if (!inf)
		return;
	end_transfer(inf);
	cache_free(inf->cache);
	free(inf->ns);
	free(inf->label_selector);
	free(inf->field_selector);
	free(inf->cont);
	dynbuf_free(&inf->buf);
	free(inf->skipped);
	strset_clear(&inf->seen);
	if (inf->tok)
		json_tokener_free(inf->tok);
	free(inf->cut);
	pthread_mutex_destroy(&inf->stats_lock);
	free(inf);
}

void informer_set_free(struct informer_set *s)
{
	if (!s)
		return;
	informer_set_stop(s);
	for (int i = 0; i < s->n; i++)
		informer_free(s->inf[i]);
	curl_multi_cleanup(s->multi);
	free(s);
}

static char *dup_opt(const char *v, bool *oom)
{
	char *d = v ? strdup(v) : NULL;
	if (v && !d)
		*oom = true;
	return d;
}

int informer_add(struct informer_set *s, const struct informer_options *o, struct informer **ret)
{
	struct informer *inf;
	bool oom = false;
	int r;

	if (s->running || s->n == MAX_INFORMERS || !o->kind)
		return -EINVAL;
	inf = calloc(1, sizeof(*inf));
	if (!inf)
		return -ENOMEM;
	pthread_mutex_init(&inf->stats_lock, NULL);
	inf->set = s;
	inf->o = *o;
	if (!inf->o.page_size)
		inf->o.page_size = 500;
	inf->ns = dup_opt(o->namespace, &oom);
	inf->label_selector = dup_opt(o->label_selector, &oom);
	inf->field_selector = dup_opt(o->field_selector, &oom);
	inf->o.namespace = inf->o.label_selector = inf->o.field_selector = NULL;
	if (oom) {
		informer_free(inf);
		return -ENOMEM;
	}
	r = cache_new(o->kind, s->interns, &inf->cache);
	if (r < 0) {
		informer_free(inf);
		return r;
	}
	inf->need_list = true;
	dynbuf_init(&inf->buf, kube_max_body(s->client) < INFORMER_MAX_EVENT ?
				       INFORMER_MAX_EVENT :
				       kube_max_body(s->client));
	backoff_init(&inf->bo, 800 * KTIME_NSEC_PER_MSEC, 30 * KTIME_NSEC_PER_SEC, 1.0,
		     backoff_seed());
	for (int i = 0; i < WATCH_N_TYPES; i++) {
		const char *lv[] = { o->kind->name, event_types[i] };
		inf->m_events[i] = metrics_series(s->metrics, &fam_events, lv);
	}
	const char *kl[] = { o->kind->name };
	inf->m_relists = metrics_series(s->metrics, &fam_relists, kl);
	inf->m_objects = metrics_series(s->metrics, &fam_objects, kl);
	for (int i = 0; i < 3; i++) {
		const char *lv[] = { o->kind->name, skip_reasons[i] };
		inf->m_skipped[i] = metrics_series(s->metrics, &fam_skipped, lv);
	}
	s->inf[s->n++] = inf;
	*ret = inf;
	return 0;
}

int informer_add_handler(struct informer *inf, informer_handler_fn fn, void *ud)
{
	if (inf->set->running || inf->n_handlers == INFORMER_MAX_HANDLERS)
		return -EINVAL;
	inf->handlers[inf->n_handlers].fn = fn;
	inf->handlers[inf->n_handlers].ud = ud;
	inf->n_handlers++;
	return 0;
}

int informer_set_start(struct informer_set *s)
{
	uint64_t now = ktime_mono_ns();
	if (s->running)
		return -EALREADY;
	for (int i = 0; i < s->n; i++) {
		s->inf[i]->next_at = now;
		s->inf[i]->next_resync = now + s->inf[i]->o.resync_ns;
	}
	atomic_store(&s->stop, 0);
	if (pthread_create(&s->thread, NULL, io_main, s) != 0)
		return -errno;
	s->running = true;
	return 0;
}

void informer_set_stop(struct informer_set *s)
{
	if (!s->running)
		return;
	atomic_store(&s->stop, 1);
	curl_multi_wakeup(s->multi);
	pthread_join(s->thread, NULL);
	s->running = false;
}

bool informer_set_synced(struct informer_set *s)
{
	return atomic_load(&s->synced) != 0;
}

int informer_set_wait_synced(struct informer_set *s, uint64_t timeout_ns)
{
	uint64_t until = ktime_mono_ns() + timeout_ns;
	while (!informer_set_synced(s)) {
		if (ktime_mono_ns() >= until)
			return -ETIMEDOUT;
		struct timespec ts = ktime_timespec(10 * KTIME_NSEC_PER_MSEC);
		nanosleep(&ts, NULL);
	}
	return 0;
}

void informer_set_events(struct informer_set *s, struct events *events)
{
	s->events = events;
}

struct cache *informer_cache(struct informer *inf)
{
	return inf->cache;
}

const struct cache_kind *informer_kind(const struct informer *inf)
{
	return inf->o.kind;
}

void informer_stats(struct informer *inf, struct informer_stats *ret)
{
	pthread_mutex_lock(&inf->stats_lock);
	*ret = inf->stats;
	pthread_mutex_unlock(&inf->stats_lock);
}
