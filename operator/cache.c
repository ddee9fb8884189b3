/*
 * RCU caches. The primary table maps key -> object; each secondary index
 * is another cds_lfht whose entries (value, key) may repeat a value. Only
 * the writer adds and deletes, so the writer never races itself; readers
 * see either the old or the new state of each entry, never a torn one.
 */
#include "cache.h"
#include "ktime.h"
#include "fnv.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
 * A secondary index has two levels: an lfht of distinct values (unique
 * keys, so no duplicate chains to walk), each holding an RCU list of the
 * primary keys that have it. The writer finds a key's list entry through a
 * private map, so adding and removing are O(1) however many objects share
 * a value.
 */
struct idx_value {
	struct cds_lfht_node node;
	struct rcu_head rcu;
	struct cache *cache;
	const char *value;            /* interned */
	struct cds_list_head keys;    /* of idx_entry, RCU list */
	size_t n;                     /* writer only */
};

struct idx_entry {
	struct cds_list_head link;
	struct rcu_head rcu;
	struct idx_entry *map_next;   /* writer's map */
	struct idx_value *owner;
	unsigned long key_hash;
	char key[];
};

struct idx_map {                 /* writer only: primary key -> entry */
	struct idx_entry **slots;
	size_t n_slots, n;
};

struct cache {
	const struct cache_kind *kind;
	struct intern *interns;
	struct cds_lfht *table;
	struct cds_lfht *idx[CACHE_MAX_INDEXES];
	struct idx_map map[CACHE_MAX_INDEXES];
	_Atomic size_t count;
	_Atomic bool synced;
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

static unsigned long hash_str(const char *s)
{
	uint64_t h = fnv64_str(s);
	return (unsigned long)(h ^ (h >> 29));
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
		if (json_object_object_get_ex(r, "controller", &ctl) &&
		    json_object_get_boolean(ctl)) {
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
	size_t total;
	int r;

	if (!name || !*name)
		return -EBADMSG;
	if ((size_t)snprintf(key, sizeof(key), "%s%s%s", ns && *ns ? ns : "",
			     ns && *ns ? "/" : "", name) >= sizeof(key))
		return -EBADMSG;
	p.tmp = calloc(1, c->kind->size);
	if (!p.tmp)
		return -ENOMEM;
	cache_proj_str(&p, &p.tmp->key, key);
	cache_proj_intern(&p, &p.tmp->ns, ns ? ns : "");
	cache_proj_str(&p, &p.tmp->uid, cache_json_str(json, "metadata.uid"));
	cache_proj_str(&p, &p.tmp->rv, cache_json_str(json, "metadata.resourceVersion"));
	p.tmp->created = ktime_parse_rfc3339(cache_json_str(json, "metadata.creationTimestamp"));
	p.tmp->deleted = ktime_parse_rfc3339(cache_json_str(json, "metadata.deletionTimestamp"));
	project_owner(&p, json, p.tmp);
	r = c->kind->project ? c->kind->project(&p, json, p.tmp) : 0;
	if (r >= 0)
		r = p.err;
	if (r < 0)
		goto fail;

	total = c->kind->size;
	for (size_t i = 0; i < p.n_strs; i++)
		total += p.strs[i].len + 1;
	obj = malloc(total);
	if (!obj) {
		r = -ENOMEM;
		goto fail;
	}
	memcpy(obj, p.tmp, c->kind->size);
	char *s = (char *)obj + c->kind->size;
	for (size_t i = 0; i < p.n_strs; i++) {
		memcpy(s, p.strs[i].src, p.strs[i].len + 1);
		*(const char **)((char *)obj + p.strs[i].off) = s;
		s += p.strs[i].len + 1;
	}
	obj->name = obj->key + (ns && *ns ? strlen(ns) + 1 : 0);
	obj->cache = c;
	obj->hash = hash_str(obj->key);
	cds_lfht_node_init(&obj->node);
	free(p.tmp);
	*ret = obj;
	return 0;
fail:
	obj_release(c, p.tmp);
	free(p.tmp);
	return r;
}

/* ---- table ------------------------------------------------------------ */

int cache_new(const struct cache_kind *kind, struct intern *interns,
	      struct cache **ret)
{
	struct cache *c;
	if (kind->n_indexes > CACHE_MAX_INDEXES || kind->size < sizeof(struct cache_obj))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->kind = kind;
	c->interns = interns;
	/* With accounting, liburcu sizes the table by node count: about 6
	 * objects a bucket. Without it, growth on chain length alone cost about
	 * 670 bytes of buckets per Pod at 100,000 Pods (tests/bench/bench_memory)
	 * for 30% faster lookups; memory wins. */
	c->table = cds_lfht_new(1024, 1024, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
	if (!c->table)
		goto fail;
	for (size_t i = 0; i < kind->n_indexes; i++) {
		c->idx[i] = cds_lfht_new(1024, 1024, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
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

static void obj_free_now(struct cache_obj *obj)
{
	obj_release(obj->cache, obj);
	free(obj);
}

static void obj_free_rcu(struct rcu_head *head)
{
	GRACE_OVER();
	obj_free_now(caa_container_of(head, struct cache_obj, rcu));
	FREED();
}

static void idx_free_rcu(struct rcu_head *head)
{
	GRACE_OVER();
	free(caa_container_of(head, struct idx_entry, rcu));
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
 * Unlink every node of ht under a read-side section, destroy the table
 * (which waits for liburcu's resize worker), and only then return the
 * nodes: freeing them earlier races the resize thread walking the table.
 */
static int drain_table(struct cds_lfht *ht, struct cds_lfht_node ***ret, size_t *ret_n)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *n, **nodes = NULL;
	size_t cnt = 0, cap = 0;
	int r = 0;

	rcu_read_lock();
	cds_lfht_for_each(ht, &it, n) {
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 1024;
			struct cds_lfht_node **nn = realloc(nodes, nc * sizeof(*nn));
			if (!nn) {
				r = -ENOMEM;
				break;
			}
			nodes = nn;
			cap = nc;
		}
		if (cds_lfht_del(ht, n) == 0)
			nodes[cnt++] = n;
	}
	rcu_read_unlock();
	if (r == 0)
		cds_lfht_destroy(ht, NULL);
	*ret = nodes;
	*ret_n = cnt;
	return r;
}

void cache_free(struct cache *c)
{
	struct cds_lfht_node **nodes;
	size_t n;

	if (!c)
		return;
	cache_barrier();   /* callbacks of this cache have run */
	for (size_t i = 0; i < CACHE_MAX_INDEXES; i++) {
		if (!c->idx[i])
			continue;
		if (drain_table(c->idx[i], &nodes, &n) == 0) {
			synchronize_rcu();
			for (size_t k = 0; k < n; k++) {
				struct idx_value *v = caa_container_of(nodes[k], struct idx_value, node);
				struct idx_entry *e, *tmp;
				cds_list_for_each_entry_safe(e, tmp, &v->keys, link)
					free(e);
				value_free_now(v);
			}
		}
		free(nodes);
		free(c->map[i].slots);
	}
	if (c->table) {
		if (drain_table(c->table, &nodes, &n) == 0) {
			synchronize_rcu();
			for (size_t k = 0; k < n; k++)
				obj_free_now(caa_container_of(nodes[k], struct cache_obj, node));
		}
		free(nodes);
	}
	free(c);
}

static int match_key(struct cds_lfht_node *node, const void *key)
{
	CACHE_TSAN_ACQUIRE(caa_container_of(node, struct cache_obj, node));
	return strcmp(caa_container_of(node, struct cache_obj, node)->key, key) == 0;
}

static int match_value(struct cds_lfht_node *node, const void *value)
{
	CACHE_TSAN_ACQUIRE(caa_container_of(node, struct idx_value, node));
	return strcmp(caa_container_of(node, struct idx_value, node)->value, value) == 0;
}

/* ---- the writer's map: primary key -> its entry in one index ---- */

/* The slot holding key's entry for value (any value when NULL). */
static struct idx_entry **map_slot(struct idx_map *m, const char *key, unsigned long h,
				   const char *value)
{
	struct idx_entry **pp = &m->slots[h & (m->n_slots - 1)];
	for (; *pp; pp = &(*pp)->map_next)
		if ((*pp)->key_hash == h && strcmp((*pp)->key, key) == 0 &&
		    (!value || strcmp((*pp)->owner->value, value) == 0))
			break;
	return pp;
}

static int map_grow(struct idx_map *m)
{
	size_t ns = m->n_slots ? m->n_slots * 2 : 1024;
	struct idx_entry **slots = calloc(ns, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_slots; i++)
		for (struct idx_entry *e = m->slots[i], *nx; e; e = nx) {
			nx = e->map_next;
			e->map_next = slots[e->key_hash & (ns - 1)];
			slots[e->key_hash & (ns - 1)] = e;
		}
	free(m->slots);
	m->slots = slots;
	m->n_slots = ns;
	return 0;
}

/* The value's node, created if absent (writer, inside a read-side section). */
static struct idx_value *value_get(struct cache *c, size_t i, const char *value)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *n;
	unsigned long h = hash_str(value);

	cds_lfht_lookup(c->idx[i], h, match_value, value, &it);
	n = cds_lfht_iter_get_node(&it);
	if (n)
		return caa_container_of(n, struct idx_value, node);
	struct idx_value *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->cache = c;
	v->value = intern_get(c->interns, value);
	if (!v->value) {
		free(v);
		return NULL;
	}
	CDS_INIT_LIST_HEAD(&v->keys);
	cds_lfht_node_init(&v->node);
	CACHE_TSAN_RELEASE(v);
	cds_lfht_add(c->idx[i], h, &v->node);   /* the only writer: no race */
	return v;
}

static void index_add(struct cache *c, size_t i, const char *value, const char *key)
{
	struct idx_map *m = &c->map[i];
	size_t kl = strlen(key);
	unsigned long kh = hash_str(key);
	struct idx_value *v;
	struct idx_entry *e;

	if ((m->n + 1 > m->n_slots && map_grow(m) < 0) || !(v = value_get(c, i, value)))
		return;   /* out of memory: missing from this index until its next update */
	e = malloc(sizeof(*e) + kl + 1);
	if (!e)
		return;
	e->owner = v;
	e->key_hash = kh;
	memcpy(e->key, key, kl + 1);
	struct idx_entry **slot = &m->slots[kh & (m->n_slots - 1)];
	e->map_next = *slot;
	*slot = e;
	m->n++;
	v->n++;
	CACHE_TSAN_RELEASE(e);
	cds_list_add_rcu(&e->link, &v->keys);
}

static void index_del(struct cache *c, size_t i, const char *value, const char *key)
{
	struct idx_map *m = &c->map[i];
	struct idx_entry **slot, *e;

	if (!m->n_slots)
		return;
	slot = map_slot(m, key, hash_str(key), value);
	e = *slot;
	if (!e)
		return;
	*slot = e->map_next;
	m->n--;
	struct idx_value *v = e->owner;
	cds_list_del_rcu(&e->link);
#if defined(__SANITIZE_THREAD__)
	CACHE_TSAN_RELEASE(&cache_grace_token);
#endif
	call_rcu(&e->rcu, idx_free_rcu);
	if (--v->n == 0 && cds_lfht_del(c->idx[i], &v->node) == 0)
		call_rcu(&v->rcu, value_free_rcu);   /* the last key left */
}

/* Move index entries from old's values to new's (either may be NULL). */
static void reindex(struct cache *c, const struct cache_obj *old,
		    const struct cache_obj *obj)
{
	for (size_t i = 0; i < c->kind->n_indexes; i++) {
		const char *nv = obj ? c->kind->indexes[i].value(obj) : NULL;
		const char *ov = old ? c->kind->indexes[i].value(old) : NULL;
		if (nv && ov && strcmp(nv, ov) == 0)
			continue;
		if (nv)
			index_add(c, i, nv, obj->key);
		if (ov)
			index_del(c, i, ov, old->key);
	}
}

void cache_publish(struct cache *c, struct cache_obj *obj, struct cache_obj **ret_old)
{
	struct cds_lfht_node *old_node;
	struct cache_obj *old = NULL;

	CACHE_TSAN_RELEASE(obj);
	cache_read_lock();
	old_node = cds_lfht_add_replace(c->table, obj->hash, match_key, obj->key, &obj->node);
	if (old_node)
		old = caa_container_of(old_node, struct cache_obj, node);
	else
		atomic_fetch_add(&c->count, 1);
	reindex(c, old, obj);
	cache_read_unlock();
	*ret_old = old;
}

int cache_remove(struct cache *c, const char *key, struct cache_obj **ret_old)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *n;
	struct cache_obj *old;

	cache_read_lock();
	cds_lfht_lookup(c->table, hash_str(key), match_key, key, &it);
	n = cds_lfht_iter_get_node(&it);
	if (!n || cds_lfht_del(c->table, n) != 0) {
		cache_read_unlock();
		return -ENOENT;
	}
	old = caa_container_of(n, struct cache_obj, node);
	atomic_fetch_sub(&c->count, 1);
	reindex(c, old, NULL);
	cache_read_unlock();
	*ret_old = old;
	return 0;
}

void cache_retire(struct cache *c, struct cache_obj *obj)
{
	(void)c;
	if (!obj)
		return;
#if defined(__SANITIZE_THREAD__)
	CACHE_TSAN_RELEASE(&cache_grace_token);   /* our reads of obj come first */
#endif
	call_rcu(&obj->rcu, obj_free_rcu);
}

void cache_discard(struct cache *c, struct cache_obj *obj)
{
	(void)c;
	if (obj)
		obj_free_now(obj);
}

void cache_set_synced(struct cache *c, bool synced)
{
	atomic_store(&c->synced, synced);
}

size_t cache_index_size(const struct cache *c, size_t index)
{
	return index < CACHE_MAX_INDEXES ? c->map[index].n : 0;
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
	struct cds_lfht_iter it;
	struct cds_lfht_node *n;
	cds_lfht_lookup(c->table, hash_str(key), match_key, key, &it);
	n = cds_lfht_iter_get_node(&it);
	if (!n)
		return NULL;
	CACHE_TSAN_ACQUIRE(caa_container_of(n, struct cache_obj, node));
	return caa_container_of(n, struct cache_obj, node);
}

int cache_foreach(struct cache *c,
		  int (*fn)(const struct cache_obj *obj, void *ud), void *ud)
{
	struct cds_lfht_iter it;
	struct cache_obj *obj;
	int r;
	cds_lfht_for_each_entry(c->table, &it, obj, node) {
		CACHE_TSAN_ACQUIRE(obj);
		r = fn(obj, ud);
		if (r)
			return r;
	}
	return 0;
}

int cache_index_foreach(struct cache *c, size_t index, const char *value,
			int (*fn)(const struct cache_obj *obj, void *ud), void *ud)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *n;
	struct idx_entry *e;
	int r;

	if (index >= c->kind->n_indexes || !value)
		return 0;
	cds_lfht_lookup(c->idx[index], hash_str(value), match_value, value, &it);
	n = cds_lfht_iter_get_node(&it);
	if (!n)
		return 0;
	struct idx_value *v = caa_container_of(n, struct idx_value, node);
	CACHE_TSAN_ACQUIRE(v);
	cds_list_for_each_entry_rcu(e, &v->keys, link) {
		CACHE_TSAN_ACQUIRE(e);
		const struct cache_obj *obj = cache_get(c, e->key);
		const char *ov;
		/* The entry may be stale for an instant: trust the object. */
		if (!obj || !(ov = c->kind->indexes[index].value(obj)) || strcmp(ov, value) != 0)
			continue;
		r = fn(obj, ud);
		if (r)
			return r;
	}
	return 0;
}
