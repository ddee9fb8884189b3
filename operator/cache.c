/*
 * RCU caches. The primary table maps key -> object; each secondary index
 * is another cds_lfht whose entries (value, key) may repeat a value. Only
 * the writer adds and deletes, so the writer never races itself; readers
 * see either the old or the new state of each entry, never a torn one.
 */
#include "cache.h"
#include "ktime.h"
#include "slab.h"
#include "text.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <urcu/rculist.h>

#define PROJ_MAX_STRS 64

#if defined(__SANITIZE_THREAD__)
char cache_grace_token;
/* Released by every free callback, acquired after rcu_barrier(): what a
 * callback freed is ordered before what the caller does next. */
static char cache_done_token;
#define GRACE_OVER() CACHE_TSAN_ACQUIRE(&cache_grace_token)
#define FREED() CACHE_TSAN_RELEASE(&cache_done_token)
#else
#define GRACE_OVER() ((void)0)
#define FREED() ((void)0)
#endif

void cache_barrier(void)
{
	rcu_barrier();
#if defined(__SANITIZE_THREAD__)
	CACHE_TSAN_ACQUIRE(&cache_done_token);
#endif
}

/*
 * The primary table: open addressing with linear probing over one array of
 * words, each a tagged pointer to an object (high 16 bits: a tag from the
 * key's hash; low 48: the object), 0 for a slot never used, SLOT_TOMB for
 * a removed one. A lookup reads the array pointer, then a run of adjacent
 * slots (eight to a cache line), and dereferences an object only when its
 * tag matches: about one object touched per lookup. cds_lfht walked a
 * split-ordered list instead, a dependent cache miss per node; with its
 * accounting it kept 100,000 Pods in 16,384 buckets (~6 a chain, ~1 us a
 * lookup).
 *
 * Only the writer stores: an update stores the new object's word over the
 * old (readers see one or the other); a removal stores SLOT_TOMB; an insert
 * fills a tombstone or an empty slot. A slot never goes back to empty, so a
 * probe that meets an empty slot may stop. When tombstones and objects
 * fill 13/16 of the slots, the writer builds a new array (at most 5/8
 * full), publishes it and frees the old one after a grace period.
 */
#define SLOT_TOMB ((uintptr_t)1)
#define TAG_SHIFT 48
#define PTR_MASK (((uintptr_t)1 << TAG_SHIFT) - 1)
#define TABLE_MIN 1024

struct table {
	struct rcu_head rcu;
	size_t mask;
	_Atomic uintptr_t slots[];
};

/*
 * A secondary index: an lfht of distinct values (few: nodes, services),
 * each heading an RCU list that links the objects themselves. Each object
 * carries one list link per index just before its struct (obj_link: index
 * 0 nearest), so an index costs 16 bytes an object and adding, replacing
 * and removing are O(1) however many objects share a value. An object
 * has links only up to its last index with a value (obj_links): a Pod
 * that is not the activator's has no link for KPOD_BY_COMPONENT.
 */
struct idx_value {
	struct cds_lfht_node node;
	struct rcu_head rcu;
	struct cache *cache;
	const char *value;         /* interned */
	struct cds_list_head objs; /* RCU list of the objects' links */
	size_t n;                  /* writer only */
};

struct cache {
	const struct cache_kind *kind;
	struct intern *interns;
	struct table *_Atomic table;
	size_t used; /* writer only: objects + tombstones */
	struct cds_lfht *idx[CACHE_MAX_INDEXES];
	size_t idx_n[CACHE_MAX_INDEXES]; /* writer only: linked objects */
	_Atomic size_t count;
	_Atomic bool synced;
	_Atomic uint64_t write_seq; /* odd while a write's handlers run */
	struct slab *slab;          /* the objects' blocks (slab.h) */
	struct cache_obj *scratch;  /* writer only: the projection being built */
};

struct cache_proj {
	struct cache *c;
	struct cache_obj *tmp;
	struct {
		size_t off;
		const char *src;
		size_t len;
	} strs[PROJ_MAX_STRS];
	size_t n_strs;
	int err;
};

/*
 * The key hash: eight bytes a step (multiply, fold), then murmur3's
 * 64-bit finalizer so the low bits (probe start) and the high bits (slot
 * tag) both depend on every byte. FNV-1a took a multiply per byte, ~50 ns
 * for a 40-byte "namespace/name", a quarter of a lookup.
 */
unsigned long cache_key_hash(const char *key)
{
	size_t len = strlen(key);
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ len, w;

	for (; len >= 8; key += 8, len -= 8) {
		memcpy(&w, key, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	w = 0;
	for (size_t i = 0; i < len; i++)
		w |= (uint64_t)(unsigned char)key[i] << (8 * i);
	h = (h ^ w) * 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return (unsigned long)h;
}

/* How many index links sit before obj: one per index up to its last
 * index with a value. The object is immutable, so this never changes. */
static size_t obj_links(const struct cache_kind *k, const struct cache_obj *obj)
{
	size_t n = k->n_indexes;

	while (n > 0 && !k->indexes[n - 1].value(obj))
		n--;
	return n;
}

/* The list link of obj in index i (i < obj_links): index i's link sits
 * i + 1 links before the struct. */
static struct cds_list_head *obj_link(const struct cache_obj *obj, size_t i)
{
	return (struct cds_list_head *)((char *)obj - (i + 1) * sizeof(struct cds_list_head));
}

static const struct cache_obj *link_obj(const struct cds_list_head *l, size_t i)
{
	return (const struct cache_obj *)((const char *)l + (i + 1) * sizeof(struct cds_list_head));
}

static void *obj_base(const struct cache *c, const struct cache_obj *obj)
{
	return (char *)obj - obj_links(c->kind, obj) * sizeof(struct cds_list_head);
}

/* ---- json helpers ----------------------------------------------------- */

json_object *cache_json_get(json_object *o, const char *path)
{
	char seg[128];
	while (o && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		if (n >= sizeof(seg))
			return NULL;
		memcpy(seg, path, n);
		seg[n] = '\0';
		if (!json_object_is_type(o, json_type_object) ||
		    !json_object_object_get_ex(o, seg, &o))
			return NULL;
		path += n + (dot ? 1 : 0);
	}
	return o;
}

const char *cache_json_str(json_object *o, const char *path)
{
	o = cache_json_get(o, path);
	return o && json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
}

const char *cache_json_key(json_object *o, const char *key)
{
	json_object *v;
	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int64_t cache_json_int(json_object *o, const char *path, int64_t dflt)
{
	o = cache_json_get(o, path);
	if (!o)
		return dflt;
	if (json_object_is_type(o, json_type_int) || json_object_is_type(o, json_type_double))
		return json_object_get_int64(o);
	return dflt;
}

/* ---- projection builder ---------------------------------------------- */

void cache_proj_str(struct cache_proj *p, const char **field, const char *src)
{
	size_t off = (size_t)((char *)field - (char *)p->tmp);
	if (!src)
		return;
	if (off + sizeof(char *) > p->c->kind->size || p->n_strs == PROJ_MAX_STRS) {
		p->err = -E2BIG;
		return;
	}
	p->strs[p->n_strs].off = off;
	p->strs[p->n_strs].src = src;
	p->strs[p->n_strs].len = strlen(src);
	p->n_strs++;
}

void cache_proj_intern(struct cache_proj *p, const char **field, const char *src)
{
	if (!src)
		return;
	*field = intern_get(p->c->interns, src);
	if (!*field)
		p->err = -ENOMEM;
}

struct intern *cache_proj_interns(struct cache_proj *p)
{
	return p->c->interns;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A lowercase RFC 4122 UUID ("8-4-4-4-12" hex digits, variant 10) as its
 * 16 bytes; false for anything else, which is kept as text. */
static bool uuid_parse(const char *s, uint8_t out[16])
{
	size_t k = 0;

	if (!s || strlen(s) != 36)
		return false;
	for (size_t i = 0; i < 36;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i++] != '-')
				return false;
			continue;
		}
		int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[k++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return (out[8] & 0xc0) == 0x80;
}

static void project_uid(struct cache_proj *p, const char *uid)
{
	if (uuid_parse(uid, p->tmp->uid.b))
		return;
	memset(&p->tmp->uid, 0, sizeof(p->tmp->uid)); /* variant 0: text */
	cache_proj_str(p, &p->tmp->uid.s.text, uid);
}

const char *cache_obj_uid(const struct cache_obj *o, char buf[CACHE_UID_MAX])
{
	static const char hex[] = "0123456789abcdef";
	size_t k = 0;

	if ((o->uid.b[8] & 0xc0) != 0x80)
		return o->uid.s.text;
	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			buf[k++] = '-';
		buf[k++] = hex[o->uid.b[i] >> 4];
		buf[k++] = hex[o->uid.b[i] & 15];
	}
	buf[k] = '\0';
	return buf;
}

void cache_obj_uid_copy(const struct cache_obj *o, char *dst, size_t len)
{
	char buf[CACHE_UID_MAX];

	text_copy(dst, len, cache_obj_uid(o, buf));
}

/* A resourceVersion that reads back the same as a number: "0", or 1-19
 * digits without a leading zero, below 2^63. */
static bool rv_parse(const char *s, uint64_t *ret)
{
	uint64_t v = 0;
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 19 || (s[0] == '0' && n > 1))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0'); /* 19 digits fit in 64 bits */
	}
	if (v & CACHE_RV_NUM)
		return false;
	*ret = v;
	return true;
}

static void project_rv(struct cache_proj *p, const char *rv)
{
	uint64_t v;

	if (rv_parse(rv, &v))
		p->tmp->rv.num = v | CACHE_RV_NUM;
	else
		cache_proj_str(p, &p->tmp->rv.text, rv);
}

const char *cache_obj_rv(const struct cache_obj *o, char buf[CACHE_RV_MAX])
{
	if (!(o->rv.num & CACHE_RV_NUM))
		return o->rv.text;
	snprintf(buf, CACHE_RV_MAX, "%llu", (unsigned long long)(o->rv.num & ~CACHE_RV_NUM));
	return buf;
}

void cache_obj_rv_copy(const struct cache_obj *o, char *dst, size_t len)
{
	char buf[CACHE_RV_MAX];

	text_copy(dst, len, cache_obj_rv(o, buf));
}

bool cache_obj_same_rv(const struct cache_obj *a, const struct cache_obj *b)
{
	char ba[CACHE_RV_MAX], bb[CACHE_RV_MAX];
	const char *ra, *rb;

	if ((a->rv.num & CACHE_RV_NUM) && (b->rv.num & CACHE_RV_NUM))
		return a->rv.num == b->rv.num;
	ra = cache_obj_rv(a, ba);
	rb = cache_obj_rv(b, bb);
	return ra && rb && strcmp(ra, rb) == 0;
}

/* Drop what an object holds besides its own block. */
static void obj_release(struct cache *c, struct cache_obj *obj)
{
	if (c->kind->release)
		c->kind->release(c->interns, obj);
	intern_put(c->interns, obj->ns);
	intern_put(c->interns, obj->controller_kind);
	intern_put(c->interns, obj->controller_name);
	intern_put(c->interns, obj->controller_uid);
}

static void project_owner(struct cache_proj *p, json_object *json, struct cache_obj *o)
{
	json_object *refs = cache_json_get(json, "metadata.ownerReferences");
	if (!refs || !json_object_is_type(refs, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(refs); i++) {
		json_object *r = json_object_array_get_idx(refs, i), *ctl;
		if (json_object_object_get_ex(r, "controller", &ctl) && json_object_get_boolean(ctl)) {
			cache_proj_intern(p, &o->controller_kind, cache_json_str(r, "kind"));
			cache_proj_intern(p, &o->controller_name, cache_json_str(r, "name"));
			cache_proj_intern(p, &o->controller_uid, cache_json_str(r, "uid"));
			return;
		}
	}
}

int cache_project(struct cache *c, json_object *json, struct cache_obj **ret)
{
	struct cache_proj p = { .c = c };
	const char *name = cache_json_str(json, "metadata.name");
	const char *ns = cache_json_str(json, "metadata.namespace");
	char key[512];
	struct cache_obj *obj;
	size_t total, links;
	char *base;
	int r;

	if (!name || !*name)
		return -EBADMSG;
	if ((size_t)snprintf(key, sizeof(key), "%s%s%s", ns && *ns ? ns : "", ns && *ns ? "/" : "",
			     name) >= sizeof(key))
		return -EBADMSG;
	p.tmp = c->scratch;
	memset(p.tmp, 0, c->kind->size);
	cache_proj_str(&p, &p.tmp->key, key);
	cache_proj_intern(&p, &p.tmp->ns, ns ? ns : "");
	project_uid(&p, cache_json_str(json, "metadata.uid"));
	project_rv(&p, cache_json_str(json, "metadata.resourceVersion"));
	p.tmp->created = cache_seconds(
		ktime_parse_rfc3339(cache_json_str(json, "metadata.creationTimestamp")));
	p.tmp->deleted = cache_seconds(
		ktime_parse_rfc3339(cache_json_str(json, "metadata.deletionTimestamp")));
	project_owner(&p, json, p.tmp);
	r = c->kind->project ? c->kind->project(&p, json, p.tmp) : 0;
	if (r >= 0)
		r = p.err;
	if (r < 0)
		goto fail;

	links = obj_links(c->kind, p.tmp) * sizeof(struct cds_list_head);
	total = links + c->kind->size;
	for (size_t i = 0; i < p.n_strs; i++)
		total += p.strs[i].len + 1;
	base = slab_alloc(c->slab, total);
	if (!base) {
		r = -ENOMEM;
		goto fail;
	}
	obj = (struct cache_obj *)(base + links);
	if ((uintptr_t)obj & ~PTR_MASK) { /* a table slot holds 48 bits */
		slab_free(c->slab, base);
		r = -EOVERFLOW;
		goto fail;
	}
	memcpy(obj, p.tmp, c->kind->size);
	for (size_t i = 0; i < links / sizeof(struct cds_list_head); i++)
		CDS_INIT_LIST_HEAD(obj_link(obj, i)); /* not linked */
	char *s = (char *)obj + c->kind->size;
	for (size_t i = 0; i < p.n_strs; i++) {
		memcpy(s, p.strs[i].src, p.strs[i].len + 1);
		*(const char **)((char *)obj + p.strs[i].off) = s;
		s += p.strs[i].len + 1;
	}
	/* cache_proj_str(key) came first: the key sits right after the struct
	 * (table_find relies on it). */
	*ret = obj;
	return 0;
fail:
	obj_release(c, p.tmp);
	return r;
}

/* ---- the primary table ------------------------------------------------ */

static uintptr_t slot_tag(unsigned long h)
{
	return ((uintptr_t)(h >> TAG_SHIFT) | 1) << TAG_SHIFT; /* never 0 */
}

static struct cache_obj *slot_obj(uintptr_t s)
{
	return (struct cache_obj *)(s & PTR_MASK);
}

static struct table *table_new(size_t n_slots)
{
	struct table *t = calloc(1, sizeof(*t) + n_slots * sizeof(t->slots[0]));
	if (t)
		t->mask = n_slots - 1;
	return t;
}

static void table_free_rcu(struct rcu_head *head)
{
	GRACE_OVER();
	free(caa_container_of(head, struct table, rcu));
	FREED();
}

/* Reader: the object with key, or NULL. */
static struct cache_obj *table_find(const struct table *t, size_t key_off, const char *key,
				    unsigned long h)
{
	uintptr_t tag = slot_tag(h);
	size_t i = h & t->mask;

	for (size_t n = 0; n <= t->mask; n++, i = (i + 1) & t->mask) {
		uintptr_t s = atomic_load_explicit(&t->slots[i], memory_order_acquire);
		if (s == 0)
			return NULL;
		/* The key is the object's first string: at a known offset, so
		 * comparing it waits for one cache line, not two. */
		if ((s & ~PTR_MASK) == tag && strcmp((const char *)slot_obj(s) + key_off, key) == 0)
			return slot_obj(s);
	}
	return NULL;
}

/* Writer: the slot holding key, or -1 with *ret_free the first slot an
 * insert may take (a tombstone or the empty slot that ended the probe). */
static ssize_t table_slot(const struct table *t, const char *key, unsigned long h, size_t *ret_free)
{
	uintptr_t tag = slot_tag(h);
	size_t i = h & t->mask, fr = SIZE_MAX;

	for (size_t n = 0; n <= t->mask; n++, i = (i + 1) & t->mask) {
		uintptr_t s = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
		if (s == 0) {
			*ret_free = fr == SIZE_MAX ? i : fr;
			return -1;
		}
		if (s == SLOT_TOMB) {
			if (fr == SIZE_MAX)
				fr = i;
		} else if ((s & ~PTR_MASK) == tag && strcmp(slot_obj(s)->key, key) == 0) {
			return (ssize_t)i;
		}
	}
	*ret_free = fr; /* never SIZE_MAX: the table is at most 13/16 full */
	return -1;
}

/*
 * Move every object into a fresh array sized for count objects (at most
 * 5/8 full, at least TABLE_MIN slots), publish it and retire the old one.
 * Writer only; -ENOMEM leaves the old array in place.
 */
static int table_rebuild(struct cache *c, size_t count)
{
	struct table *old = atomic_load_explicit(&c->table, memory_order_relaxed);
	size_t n_slots = TABLE_MIN;
	struct table *t;

	while (count * 8 > n_slots * 5)
		n_slots *= 2;
	t = table_new(n_slots);
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; old && i <= old->mask; i++) {
		uintptr_t s = atomic_load_explicit(&old->slots[i], memory_order_relaxed);
		if (s == 0 || s == SLOT_TOMB)
			continue;
		size_t k = cache_key_hash(slot_obj(s)->key) & t->mask;
		while (atomic_load_explicit(&t->slots[k], memory_order_relaxed))
			k = (k + 1) & t->mask;
		atomic_store_explicit(&t->slots[k], s, memory_order_relaxed);
	}
	c->used = count;
	atomic_store_explicit(&c->table, t, memory_order_release);
	if (old) {
#if defined(__SANITIZE_THREAD__)
		CACHE_TSAN_RELEASE(&cache_grace_token);
#endif
		call_rcu(&old->rcu, table_free_rcu);
	}
	return 0;
}

/* ---- life cycle ------------------------------------------------------- */

int cache_new(const struct cache_kind *kind, struct intern *interns, struct cache **ret)
{
	struct cache *c;
	if (kind->n_indexes > CACHE_MAX_INDEXES || kind->size < sizeof(struct cache_obj))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->kind = kind;
	c->interns = interns;
	if (slab_new(&c->slab) < 0 || !(c->scratch = malloc(kind->size)) || table_rebuild(c, 0) < 0)
		goto fail;
	for (size_t i = 0; i < kind->n_indexes; i++) {
		c->idx[i] = cds_lfht_new(64, 64, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
		if (!c->idx[i])
			goto fail;
	}
	*ret = c;
	return 0;
fail:
	cache_free(c);
	return -ENOMEM;
}

const struct cache_kind *cache_kind(const struct cache *c)
{
	return c->kind;
}

static void obj_free_now(struct cache *c, struct cache_obj *obj)
{
	void *base = obj_base(c, obj);

	obj_release(c, obj);
	slab_free(c->slab, base);
}

/* A retired object on its way through call_rcu: allocated per retire and
 * freed with the object, so objects carry no rcu_head of their own. */
struct retired {
	struct rcu_head rcu;
	struct cache *c;
	struct cache_obj *obj;
};

static void obj_free_rcu(struct rcu_head *head)
{
	struct retired *r = caa_container_of(head, struct retired, rcu);
	struct cache *c;

	GRACE_OVER(); /* before reading what cache_retire wrote */
	c = r->c;
	obj_free_now(c, r->obj);
	slab_free(c->slab, r);
	FREED();
}

static void value_free_now(struct idx_value *v)
{
	intern_put(v->cache->interns, v->value);
	free(v);
}

static void value_free_rcu(struct rcu_head *head)
{
	GRACE_OVER();
	value_free_now(caa_container_of(head, struct idx_value, rcu));
	FREED();
}

/*
 * Unlink every value of an index under a read-side section, destroy the
 * lfht (which waits for liburcu's resize worker), and only then free the
 * values: freeing them earlier races the resize thread walking the table.
 */
static void free_index(struct cds_lfht *ht)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *n, **nodes = NULL;
	size_t cnt = 0, cap = 0;
	bool ok = true;

	rcu_read_lock();
	cds_lfht_for_each(ht, &it, n)
	{
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 256;
			struct cds_lfht_node **nn = realloc(nodes, nc * sizeof(*nn));
			if (!nn) {
				ok = false;
				break;
			}
			nodes = nn;
			cap = nc;
		}
		if (cds_lfht_del(ht, n) == 0)
			nodes[cnt++] = n;
	}
	rcu_read_unlock();
	if (ok) { /* else leak the values rather than race the resize worker */
		cds_lfht_destroy(ht, NULL);
		synchronize_rcu();
		for (size_t k = 0; k < cnt; k++)
			value_free_now(caa_container_of(nodes[k], struct idx_value, node));
	}
	free(nodes);
}

void cache_free(struct cache *c)
{
	struct table *t;

	if (!c)
		return;
	cache_barrier(); /* callbacks of this cache have run */
	for (size_t i = 0; i < CACHE_MAX_INDEXES; i++)
		if (c->idx[i])
			free_index(c->idx[i]);
	t = atomic_load(&c->table);
	for (size_t i = 0; t && i <= t->mask; i++) {
		uintptr_t s = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
		if (s != 0 && s != SLOT_TOMB)
			obj_free_now(c, slot_obj(s));
	}
	free(t);
	slab_destroy(c->slab);
	free(c->scratch);
	free(c);
}

static int match_value(struct cds_lfht_node *node, const void *value)
{
	CACHE_TSAN_ACQUIRE(caa_container_of(node, struct idx_value, node));
	return strcmp(caa_container_of(node, struct idx_value, node)->value, value) == 0;
}

/* ---- secondary indexes (writer, inside a read-side section) ----------- */

static struct idx_value *value_find(struct cache *c, size_t i, const char *value)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *n;

	cds_lfht_lookup(c->idx[i], cache_key_hash(value), match_value, value, &it);
	n = cds_lfht_iter_get_node(&it);
	return n ? caa_container_of(n, struct idx_value, node) : NULL;
}

/* The value's node, created if absent. */
static struct idx_value *value_get(struct cache *c, size_t i, const char *value)
{
	struct idx_value *v = value_find(c, i, value);

	if (v)
		return v;
	v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->cache = c;
	v->value = intern_get(c->interns, value);
	if (!v->value) {
		free(v);
		return NULL;
	}
	CDS_INIT_LIST_HEAD(&v->objs);
	cds_lfht_node_init(&v->node);
	CACHE_TSAN_RELEASE(v);
	cds_lfht_add(c->idx[i], cache_key_hash(value), &v->node); /* the only writer */
	return v;
}

/*
 * The index lists' RCU operations, as liburcu's rculist.h does them, but
 * storing and loading the links readers follow with atomic builtins:
 * ThreadSanitizer takes rculist's volatile accesses for plain ones, and
 * a report whose writer stack it can no longer restore matches no
 * suppression (unit cache failed so about one run in five). Only the
 * writer calls the first three; prev links are the writer's alone.
 */
static void link_publish(struct cds_list_head **at, struct cds_list_head *v)
{
	__atomic_store_n(at, v, __ATOMIC_RELEASE);
}

static struct cds_list_head *link_next(struct cds_list_head *l)
{
	return __atomic_load_n(&l->next, __ATOMIC_ACQUIRE);
}

static void list_add(struct cds_list_head *newp, struct cds_list_head *head)
{
	newp->next = head->next; /* newp is not visible yet */
	newp->prev = head;
	head->next->prev = newp;
	link_publish(&head->next, newp);
}

/* elem keeps its next: a reader standing on it goes on. */
static void list_del(struct cds_list_head *elem)
{
	elem->next->prev = elem->prev;
	link_publish(&elem->prev->next, elem->next);
}

static void list_replace(struct cds_list_head *old, struct cds_list_head *newp)
{
	newp->next = old->next;
	newp->prev = old->prev;
	link_publish(&newp->prev->next, newp);
	newp->next->prev = newp;
}

static bool linked(const struct cache *c, const struct cache_obj *obj, size_t i)
{
	const struct cds_list_head *l;

	if (i >= obj_links(c->kind, obj))
		return false;
	l = obj_link(obj, i);
	return l->next != l;
}

static void index_add(struct cache *c, size_t i, const char *value, struct cache_obj *obj)
{
	struct idx_value *v = value_get(c, i, value);

	if (!v)
		return; /* out of memory: missing from this index until its next update */
	v->n++;
	c->idx_n[i]++;
	list_add(obj_link(obj, i), &v->objs);
}

static void index_del(struct cache *c, size_t i, const char *value, struct cache_obj *old)
{
	struct idx_value *v = value_find(c, i, value);

	list_del(obj_link(old, i)); /* old keeps its next: readers on it go on */
	c->idx_n[i]--;
	if (v && --v->n == 0 && cds_lfht_del(c->idx[i], &v->node) == 0) {
#if defined(__SANITIZE_THREAD__)
		CACHE_TSAN_RELEASE(&cache_grace_token);
#endif
		call_rcu(&v->rcu, value_free_rcu); /* the last object left */
	}
}

/* Move old's index links to obj (either may be NULL): the same value keeps
 * its place in the list, a changed one leaves one list and joins another. */
static void reindex(struct cache *c, struct cache_obj *old, struct cache_obj *obj)
{
	for (size_t i = 0; i < c->kind->n_indexes; i++) {
		const char *nv = obj ? c->kind->indexes[i].value(obj) : NULL;
		const char *ov = old && linked(c, old, i) ? c->kind->indexes[i].value(old) : NULL;
		if (nv && ov && (nv == ov || strcmp(nv, ov) == 0)) {
			list_replace(obj_link(old, i), obj_link(obj, i));
			continue;
		}
		if (nv)
			index_add(c, i, nv, obj);
		if (ov)
			index_del(c, i, ov, old);
	}
}

/* ---- writer ----------------------------------------------------------- */

void cache_publish(struct cache *c, struct cache_obj *obj, struct cache_obj **ret_old)
{
	struct table *t = atomic_load_explicit(&c->table, memory_order_relaxed);
	unsigned long h = cache_key_hash(obj->key);
	uintptr_t word = slot_tag(h) | (uintptr_t)obj;
	struct cache_obj *old = NULL;
	size_t fr = 0;
	ssize_t at;

	CACHE_TSAN_RELEASE(obj);
	at = table_slot(t, obj->key, h, &fr);
	if (at >= 0) {
		old = slot_obj(atomic_load_explicit(&t->slots[at], memory_order_relaxed));
		atomic_store_explicit(&t->slots[at], word, memory_order_release);
	} else {
		bool fresh = atomic_load_explicit(&t->slots[fr], memory_order_relaxed) == 0;
		if (fresh && (c->used + 1) * 16 > (t->mask + 1) * 13 &&
		    table_rebuild(c, atomic_load(&c->count) + 1) == 0) {
			t = atomic_load_explicit(&c->table, memory_order_relaxed);
			table_slot(t, obj->key, h, &fr);
			fresh = atomic_load_explicit(&t->slots[fr], memory_order_relaxed) == 0;
		}
		c->used += fresh;
		atomic_store_explicit(&t->slots[fr], word, memory_order_release);
		atomic_fetch_add(&c->count, 1);
	}
	cache_read_lock(); /* for the index lfhts */
	reindex(c, old, obj);
	cache_read_unlock();
	*ret_old = old;
}

int cache_remove(struct cache *c, const char *key, struct cache_obj **ret_old)
{
	struct table *t = atomic_load_explicit(&c->table, memory_order_relaxed);
	struct cache_obj *old;
	size_t fr;
	ssize_t at = table_slot(t, key, cache_key_hash(key), &fr);
	size_t count;

	if (at < 0)
		return -ENOENT;
	old = slot_obj(atomic_load_explicit(&t->slots[at], memory_order_relaxed));
	atomic_store_explicit(&t->slots[at], SLOT_TOMB, memory_order_release);
	count = atomic_fetch_sub(&c->count, 1) - 1;
	cache_read_lock();
	reindex(c, old, NULL);
	cache_read_unlock();
	/* Mostly empty after a mass deletion: give the slots back. */
	if (t->mask + 1 > TABLE_MIN && count * 16 < t->mask + 1)
		table_rebuild(c, count);
	*ret_old = old;
	return 0;
}

void cache_retire(struct cache *c, struct cache_obj *obj)
{
	struct retired *r;

	if (!obj)
		return;
	r = slab_alloc(c->slab, sizeof(*r));
	if (!r) {
		/* Out of memory: wait for the grace period here when this
		 * thread may (not inside a read-side section), else keep the
		 * object rather than free it under a reader. */
		if (!rcu_read_ongoing()) {
			synchronize_rcu();
			GRACE_OVER();
			obj_free_now(c, obj);
		}
		return;
	}
	r->c = c;
	r->obj = obj;
#if defined(__SANITIZE_THREAD__)
	CACHE_TSAN_RELEASE(&cache_grace_token); /* our reads of obj come first */
#endif
	call_rcu(&r->rcu, obj_free_rcu);
}

void cache_discard(struct cache *c, struct cache_obj *obj)
{
	if (obj)
		obj_free_now(c, obj);
}

void cache_set_synced(struct cache *c, bool synced)
{
	atomic_store(&c->synced, synced);
}

void cache_write_begin(struct cache *c)
{
	atomic_fetch_add_explicit(&c->write_seq, 1, memory_order_acq_rel);
}

void cache_write_done(struct cache *c)
{
	atomic_fetch_add_explicit(&c->write_seq, 1, memory_order_acq_rel);
}

uint64_t cache_write_seq(const struct cache *c)
{
	return atomic_load_explicit(&((struct cache *)c)->write_seq, memory_order_acquire);
}

bool cache_writing(const struct cache *c)
{
	return cache_write_seq(c) & 1;
}

size_t cache_index_size(const struct cache *c, size_t index)
{
	return index < CACHE_MAX_INDEXES ? c->idx_n[index] : 0;
}

static pthread_key_t reader_key;
static pthread_once_t reader_once = PTHREAD_ONCE_INIT;
static int reader_key_err;

/* A key's destructor runs in the exiting thread, before its thread-local
 * storage (liburcu's reader record among it) goes away. */
static void reader_exit(void *unused)
{
	(void)unused;
	rcu_unregister_thread();
}

static void reader_key_make(void)
{
	reader_key_err = pthread_key_create(&reader_key, reader_exit);
}

int cache_register_reader(void)
{
	static __thread bool registered;

	if (registered)
		return 0;
	pthread_once(&reader_once, reader_key_make);
	if (reader_key_err)
		return -reader_key_err;
	if (pthread_setspecific(reader_key, &reader_key) != 0)
		return -ENOMEM;
	rcu_register_thread();
	registered = true;
	return 0;
}

void cache_synchronize(void)
{
	synchronize_rcu();
	GRACE_OVER();
}

bool cache_synced(const struct cache *c)
{
	return atomic_load(&((struct cache *)c)->synced);
}

size_t cache_count(const struct cache *c)
{
	return atomic_load(&((struct cache *)c)->count);
}

/* ---- readers ---------------------------------------------------------- */

const struct cache_obj *cache_get(struct cache *c, const char *key)
{
	const struct table *t = atomic_load_explicit(&c->table, memory_order_acquire);
	const struct cache_obj *obj = table_find(t, c->kind->size, key, cache_key_hash(key));

	if (obj)
		CACHE_TSAN_ACQUIRE(obj);
	return obj;
}

int cache_foreach(struct cache *c, int (*fn)(const struct cache_obj *obj, void *ud), void *ud)
{
	const struct table *t = atomic_load_explicit(&c->table, memory_order_acquire);
	int r;

	for (size_t i = 0; i <= t->mask; i++) {
		uintptr_t s = atomic_load_explicit(&t->slots[i], memory_order_acquire);
		if (s == 0 || s == SLOT_TOMB)
			continue;
		CACHE_TSAN_ACQUIRE(slot_obj(s));
		r = fn(slot_obj(s), ud);
		if (r)
			return r;
	}
	return 0;
}

int cache_index_foreach(struct cache *c, size_t index, const char *value,
			int (*fn)(const struct cache_obj *obj, void *ud), void *ud)
{
	struct cds_list_head *pos;
	struct idx_value *v;
	int r;

	if (index >= c->kind->n_indexes || !value)
		return 0;
	v = value_find(c, index, value);
	if (!v)
		return 0;
	CACHE_TSAN_ACQUIRE(v);
	for (pos = link_next(&v->objs); pos != &v->objs; pos = link_next(pos)) {
		const struct cache_obj *obj = link_obj(pos, index);
		CACHE_TSAN_ACQUIRE(obj);
		r = fn(obj, ud);
		if (r)
			return r;
	}
	return 0;
}
