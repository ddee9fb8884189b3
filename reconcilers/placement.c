/*
 * GPU-aware placement: filter, score, count the reasons. See placement.h.
 *
 * placement_decide_scan walks every node of the cache once. Per node: the
 * filters that need only the node (unschedulable, Ready, taints, selector
 * and affinity) run first, in kube-scheduler's plugin order, so a node is
 * charged with the reason of the first filter it fails; only nodes that
 * pass them pay for summing their pods' requests (the by-node index, a
 * handful of pods each) and the assumptions on them.
 *
 * placement_decide asks the index first ("the index" below): the nodes
 * with room for the pod's GPUs, best possible score first, each filtered
 * and scored exactly as the scan does, until no unvisited node can score
 * as well as the best found; it gives the same node (test_placement's
 * index_decides_as_the_scan). When none fits it runs the scan, which
 * writes the message with every node's reason.
 */
#include "placement.h"
#include "keys.h"
#include "fnv.h"
#include "ktime.h"
#include "text.h"

#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct placement_weights placement_default_weights = {
	.cached = 40,
	.utilization = 10,
	.packing = 20,
	.fragmentation = 10,
};

struct assumed {
	char key[320]; /* "ns/name" */
	char node[256];
	char service[64];
	const char *resource; /* interned by the pod cache; compared by content */
	char resource_buf[64];
	int64_t gpu, cpu_milli, mem_bytes;
	uint64_t since_ns;
};

/* Per-decision sums of the live assumptions, by node. */
struct slot {
	uint64_t hash;    /* 0 = empty */
	const char *node; /* into the assumed entry */
	int64_t gpu, cpu_milli, mem_bytes, pods, same_service;
	bool walk; /* an assumed pod shows bound: sum the node afresh */
};

#define SLOTS (2 * PLACEMENT_MAX_ASSUMED)

/*
 * What the pods bound to a node request, summed once and kept until a pod
 * of that node changes: a decision then costs a lookup per node instead of
 * a walk over the node's pods. Validity: gens[hash(node) % GENS] is bumped
 * by placement_node_changed (after the cache publishes the pod); an entry
 * records the generation it read before summing, so an update racing the
 * sum leaves the entry stale, never wrong.
 */
#define GENS 65536
#define MEMOS 32768
#define MEMO_RES 8
#define MAX_RES_NAMES 64

struct memo {
	uint64_t hash; /* 0 = empty */
	char *node;
	uint64_t gen;
	int64_t cpu_milli, mem_bytes, pods;
	int64_t gpu[MEMO_RES];
	uint8_t res[MEMO_RES]; /* index into res_names */
	uint8_t n_res;
};

/*
 * The index (see "the index" below): a record per node, in one list per
 * GPU resource it allocates, keyed by (allocatable units, free units) and
 * then by utilization score, so a decision visits the best-scoring nodes
 * that can fit first and stops once no unvisited node can score as well.
 */
#define REC_RES 4       /* GPU resources a node is indexed under */
#define UTIL_LEVELS 101 /* utilization score 0..100 */
#define MAX_GROUPS 128  /* (alloc, free) pairs per resource */
#define DIRTY_RING 16384

struct rec_res {            /* one GPU resource of a node */
	int16_t ri, group;  /* res_names index; group, -1 = in none */
	int8_t util;        /* utilization score: the list in the group */
	int32_t prev, next; /* entry ids: record id * REC_RES + k */
};

struct rec {
	uint64_t hash; /* hash_str(name) */
	char *name;
	uint64_t cached_bloom; /* a bit per cached-model label key */
	uint32_t epoch;        /* the decision that visits it as special */
	bool live;             /* in the node cache when last refreshed */
	bool overflow;         /* not indexable: visited by every decision */
	uint8_t n_res;
	int32_t cprev, cnext; /* list of nodes with cached models, or overflow */
	struct rec_res r[REC_RES];
};

struct group {
	int64_t alloc, free; /* GPU units */
	int32_t head[UTIL_LEVELS];
	uint32_t n;
};

struct resindex {
	struct group g[MAX_GROUPS];
	int n_groups;
};

struct placement {
	struct placement_weights w;
	bool no_index; /* placement_use_index(pl, false): every decision scans */
	pthread_mutex_t lock;
	struct assumed *assumed;
	size_t n_assumed;
	struct slot *slots;
	size_t n_slotted;    /* slots used in this decision */
	uint32_t *slot_used; /* their indexes */
	/* the index (under lock) */
	struct rec *recs;
	size_t n_recs, cap_recs, n_live;
	int32_t *rmap; /* hash -> record id + 1; open addressing */
	size_t rmap_mask;
	struct resindex *ridx[64];
	int32_t cached_head, overflow_head;
	uint32_t epoch;
	bool synced;
	int32_t *scratch; /* record ids of one list */
	size_t cap_scratch;
	const char **special; /* this decision's special nodes */
	size_t n_special, cap_special;
	/* nodes changed since the last decision (any thread) */
	pthread_mutex_t dlock;
	uint64_t *dirty, *dirty_spare;
	size_t n_dirty;
	bool dirty_overflow;
	_Atomic uint64_t *gens;
	struct memo *memos;
	size_t n_memos;
	char res_names[MAX_RES_NAMES][64];
	int n_res_names;
};

static uint64_t hash_str(const char *s)
{
	return fnv64_str(s) | 1;
}

int placement_new(const struct placement_weights *w, struct placement **ret)
{
	struct placement *pl = calloc(1, sizeof(*pl));
	if (!pl)
		return -ENOMEM;
	pl->w = w ? *w : placement_default_weights;
	pl->assumed = calloc(PLACEMENT_MAX_ASSUMED, sizeof(*pl->assumed));
	pl->slots = calloc(SLOTS, sizeof(*pl->slots));
	pl->gens = calloc(GENS, sizeof(*pl->gens));
	pl->memos = calloc(MEMOS, sizeof(*pl->memos));
	pl->slot_used = calloc(SLOTS, sizeof(*pl->slot_used));
	pl->dirty = calloc(DIRTY_RING, sizeof(*pl->dirty));
	pl->dirty_spare = calloc(DIRTY_RING, sizeof(*pl->dirty_spare));
	if (!pl->assumed || !pl->slots || !pl->gens || !pl->memos || !pl->slot_used || !pl->dirty ||
	    !pl->dirty_spare) {
		placement_free(pl);
		return -ENOMEM;
	}
	pl->cached_head = pl->overflow_head = -1;
	pthread_mutex_init(&pl->lock, NULL);
	pthread_mutex_init(&pl->dlock, NULL);
	*ret = pl;
	return 0;
}

void placement_free(struct placement *pl)
{
	if (!pl)
		return;
	if (pl->assumed && pl->slots && pl->gens && pl->memos && pl->slot_used && pl->dirty &&
	    pl->dirty_spare) {
		pthread_mutex_destroy(&pl->lock);
		pthread_mutex_destroy(&pl->dlock);
	}
	for (size_t i = 0; i < pl->n_recs; i++)
		free(pl->recs[i].name);
	free(pl->recs);
	free(pl->rmap);
	for (size_t i = 0; i < 64; i++)
		free(pl->ridx[i]);
	free(pl->special);
	free(pl->scratch);
	free(pl->slot_used);
	free(pl->dirty);
	free(pl->dirty_spare);
	for (size_t i = 0; pl->memos && i < MEMOS; i++)
		free(pl->memos[i].node);
	free(pl->memos);
	free((void *)pl->gens);
	free(pl->assumed);
	free(pl->slots);
	free(pl);
}

void placement_lock(struct placement *pl)
{
	pthread_mutex_lock(&pl->lock);
}
void placement_unlock(struct placement *pl)
{
	pthread_mutex_unlock(&pl->lock);
}

/* ---- assumptions ------------------------------------------------------- */

static struct assumed *find_assumed(struct placement *pl, const char *key)
{
	for (size_t i = 0; i < pl->n_assumed; i++)
		if (strcmp(pl->assumed[i].key, key) == 0)
			return &pl->assumed[i];
	return NULL;
}

bool placement_is_assumed(struct placement *pl, const char *pod_key, uint64_t now_ns)
{
	const struct assumed *a = find_assumed(pl, pod_key);
	return a && a->since_ns + PLACEMENT_ASSUME_TTL_S * KTIME_NSEC_PER_SEC >= now_ns;
}

int placement_assume(struct placement *pl, const struct kpod *pod, const char *node, uint64_t now_ns)
{
	struct assumed *a = find_assumed(pl, pod->meta.key);

	if (!a) {
		if (pl->n_assumed == PLACEMENT_MAX_ASSUMED)
			return -EBUSY;
		a = &pl->assumed[pl->n_assumed++];
	}
	memset(a, 0, sizeof(*a));
	text_copy(a->key, sizeof(a->key), pod->meta.key);
	text_copy(a->node, sizeof(a->node), node);
	text_copy(a->service, sizeof(a->service), pod->service);
	text_copy(a->resource_buf, sizeof(a->resource_buf), pod->gpu_resource);
	a->resource = pod->gpu_resource ? a->resource_buf : NULL;
	a->gpu = pod->gpu;
	a->cpu_milli = pod->cpu_milli;
	a->mem_bytes = pod->mem_bytes;
	a->since_ns = now_ns;
	return 0;
}

static void drop_at(struct placement *pl, size_t i)
{
	pl->assumed[i] = pl->assumed[--pl->n_assumed];
	if (pl->assumed[i].resource) /* the moved entry points into itself */
		pl->assumed[i].resource = pl->assumed[i].resource_buf;
}

bool placement_forget(struct placement *pl, const char *pod_key)
{
	struct assumed *a = find_assumed(pl, pod_key);
	if (!a)
		return false;
	/* The node's kept sums may predate the binding: sum it again. */
	placement_node_changed(pl, a->node);
	drop_at(pl, (size_t)(a - pl->assumed));
	return true;
}

size_t placement_assumed(struct placement *pl)
{
	return pl->n_assumed;
}

static struct slot *slot_for(struct placement *pl, const char *node, bool create)
{
	uint64_t h = hash_str(node);
	for (size_t i = 0; i < SLOTS; i++) {
		struct slot *s = &pl->slots[(h + i) % SLOTS];
		if (s->hash == 0) {
			if (!create)
				return NULL;
			s->hash = h;
			s->node = node;
			pl->slot_used[pl->n_slotted++] = (uint32_t)((h + i) % SLOTS);
			return s;
		}
		if (s->hash == h && strcmp(s->node, node) == 0)
			return s;
	}
	return NULL;
}

/* Only the slots used: the whole table is 1 MiB, ~40 us a decision. */
static void clear_slots(struct placement *pl)
{
	for (size_t i = 0; i < pl->n_slotted; i++)
		memset(&pl->slots[pl->slot_used[i]], 0, sizeof(pl->slots[0]));
	pl->n_slotted = 0;
}

static int is_key(const struct cache_obj *obj, void *ud)
{
	return strcmp(obj->key, ud) == 0;
}

bool placement_pod_indexed(struct cache *pods, const struct kpod *pod)
{
	return pod->node && cache_index_foreach(pods, KPOD_BY_NODE, pod->node, is_key,
						(void *)pod->meta.key) != 0;
}

/*
 * Sum the assumptions still in force by node. An assumption ends when
 * placement_forget is called (the controller, once the by-node index shows
 * the binding), when the pod is gone, or after the TTL. The cache publishes
 * a pod before it indexes it, and the node's kept sums are refreshed only
 * after that (placement_node_changed), so while an assumption stands:
 * a pod the index already shows on its node is counted by summing that
 * node afresh, and any other is counted by its assumption. Never missed;
 * at worst counted twice for an instant (the index catching up between
 * here and the node's turn), which only errs on the safe side.
 */
static void gather_assumed(struct placement *pl, struct cache *pods, const struct kpod *pod,
			   uint64_t now_ns)
{
	clear_slots(pl);
	for (size_t i = 0; i < pl->n_assumed;) {
		struct assumed *a = &pl->assumed[i];
		const struct kpod *p = (const struct kpod *)cache_get(pods, a->key);
		/* since may be later than now (another thread's clock read): no
		 * unsigned underflow here, or a fresh assumption would expire. */
		if (!p || a->since_ns + PLACEMENT_ASSUME_TTL_S * KTIME_NSEC_PER_SEC < now_ns) {
			placement_node_changed(pl, a->node);
			drop_at(pl, i);
			continue;
		}
		struct slot *s = slot_for(pl, a->node, true);
		if (s && placement_pod_indexed(pods, p))
			s->walk = true;
		else if (s) {
			if (text_same(a->resource, pod->gpu_resource))
				s->gpu += a->gpu;
			s->cpu_milli += a->cpu_milli;
			s->mem_bytes += a->mem_bytes;
			s->pods++;
			s->same_service += pod->priority == KPRIO_HIGH && pod->service &&
					   strcmp(a->service, pod->service) == 0;
		}
		i++;
	}
}

static int count_sibling(const struct cache_obj *obj, void *ud)
{
	const struct kpod *p = (const struct kpod *)obj;
	struct placement *pl = ud;
	if (!p->node || p->phase == KPHASE_SUCCEEDED || p->phase == KPHASE_FAILED)
		return 0;
	struct slot *s = slot_for(pl, p->node, true);
	if (s)
		s->same_service++;
	return 0;
}

/* Replicas of the pod's service by node, for spreading (high priority). */
static void gather_siblings(struct placement *pl, struct cache *pods, const struct kpod *pod)
{
	if (pod->priority == KPRIO_HIGH && pod->service && pl->w.packing > 0)
		cache_index_foreach(pods, KPOD_BY_SERVICE, pod->service, count_sibling, pl);
}

/* ---- filters ------------------------------------------------------------ */

bool placement_tolerates(const struct kpod *pod, const struct ktaint *t)
{
	const struct kpod_sched *ps = kpod_sched(pod);

	for (size_t i = 0; i < ps->n_tolerations; i++) {
		const struct ktoleration *o = &ps->tolerations[i];
		if (o->effect && !text_same(o->effect, t->effect))
			continue;
		if (!o->key) { /* empty key: Exists matches every taint */
			if (o->op == KTOL_EXISTS)
				return true;
			continue;
		}
		if (!text_same(o->key, t->key))
			continue;
		if (o->op == KTOL_EXISTS)
			return true;
		if (text_same(o->value ? o->value : "", t->value ? t->value : ""))
			return true;
	}
	return false;
}

static bool expr_matches(const struct kselector_req *e, const struct knode *n)
{
	const struct klabel *l = knode_label(n, e->key ? e->key : "");
	return kinds_selector_matches(e, l ? (l->value ? l->value : "") : NULL);
}

/* nodeSelector (every entry) and required affinity (any term, every
 * expression of it), as kube-scheduler's NodeAffinity filter. */
bool placement_node_matches(const struct kpod *pod, const struct knode *n)
{
	const struct kpod_sched *ps = kpod_sched(pod);

	for (size_t i = 0; i < ps->n_node_selector; i++) {
		const struct klabel *l = knode_label(n, ps->node_selector[i].key);
		if (!l || !text_same(l->value, ps->node_selector[i].value))
			return false;
	}
	if (ps->n_affinity == 0)
		return true;
	for (size_t i = 0; i < ps->n_affinity;) {
		uint16_t term = ps->affinity[i].term;
		bool ok = true;
		for (; i < ps->n_affinity && ps->affinity[i].term == term; i++)
			ok = ok && expr_matches(&ps->affinity[i], n);
		if (ok)
			return true;
	}
	return false;
}

/* The node-only filters; NULL when the node passes, else the reason (taint
 * reasons are written into buf). */
const char *placement_node_filter(const struct kpod *pod, const struct knode *n, char *buf, size_t len)
{
	static const struct ktaint unsched = { "node.kubernetes.io/unschedulable", NULL,
					       "NoSchedule" };

	if (pod->sched_unreadable)
		return "node(s) not evaluated: the pod's node constraints exceed kinfer's bounds";
	if (n->unschedulable && !placement_tolerates(pod, &unsched))
		return "node(s) were unschedulable";
	if (n->ready != KCOND_TRUE)
		return "node(s) were not ready";
	for (size_t i = 0; i < n->n_taints; i++) {
		const struct ktaint *t = &n->taints[i];
		if (!t->effect ||
		    (strcmp(t->effect, "NoSchedule") != 0 && strcmp(t->effect, "NoExecute") != 0))
			continue;
		if (!placement_tolerates(pod, t)) {
			snprintf(buf, len, "node(s) had untolerated taint {%s: %s}",
				 t->key ? t->key : "", t->value ? t->value : "");
			return buf;
		}
	}
	if (!placement_node_matches(pod, n))
		return "node(s) didn't match Pod's node affinity/selector";
	return NULL;
}

/* ---- usage ------------------------------------------------------------- */

void placement_node_changed(struct placement *pl, const char *node)
{
	if (!pl || !node)
		return;
	uint64_t h = hash_str(node);
	atomic_fetch_add_explicit(&pl->gens[h % GENS], 1, memory_order_release);
	pthread_mutex_lock(&pl->dlock);
	if (pl->n_dirty < DIRTY_RING)
		pl->dirty[pl->n_dirty++] = h;
	else
		pl->dirty_overflow = true; /* the next decision resyncs every node */
	pthread_mutex_unlock(&pl->dlock);
}

/* The index of a GPU resource name; -1 when the table is full. */
static int res_index(struct placement *pl, const char *name)
{
	for (int i = 0; i < pl->n_res_names; i++)
		if (strcmp(pl->res_names[i], name) == 0)
			return i;
	if (pl->n_res_names == MAX_RES_NAMES || strlen(name) >= sizeof(pl->res_names[0]))
		return -1;
	text_copy(pl->res_names[pl->n_res_names], sizeof(pl->res_names[0]), name);
	return pl->n_res_names++;
}

struct summing {
	struct placement *pl;
	struct memo *m;
	bool overflow; /* a resource that did not fit: do not keep */
};

static int add_pod(const struct cache_obj *obj, void *ud)
{
	const struct kpod *p = (const struct kpod *)obj;
	struct summing *sm = ud;
	struct memo *m = sm->m;
	if (p->phase == KPHASE_SUCCEEDED || p->phase == KPHASE_FAILED)
		return 0;
	m->cpu_milli += p->cpu_milli;
	m->mem_bytes += p->mem_bytes;
	m->pods++;
	if (!p->gpu_resource || p->gpu <= 0)
		return 0;
	int ri = res_index(sm->pl, p->gpu_resource);
	uint8_t k;
	for (k = 0; ri >= 0 && k < m->n_res && m->res[k] != ri; k++)
		;
	if (ri < 0 || k == MEMO_RES) {
		sm->overflow = true;
		return 0;
	}
	if (k == m->n_res) {
		m->res[k] = (uint8_t)ri;
		m->gpu[k] = 0;
		m->n_res++;
	}
	m->gpu[k] += p->gpu;
	return 0;
}

static void sum_node(struct placement *pl, struct cache *pods, const char *node, struct memo *m,
		     bool *ret_overflow)
{
	struct summing sm = { pl, m, false };
	m->cpu_milli = m->mem_bytes = m->pods = 0;
	m->n_res = 0;
	cache_index_foreach(pods, KPOD_BY_NODE, node, add_pod, &sm);
	*ret_overflow = sm.overflow;
}

/* The node's sums, from the memo when still valid. tmp holds them when
 * they cannot be kept. */
static const struct memo *node_sums(struct placement *pl, struct cache *pods, const char *node,
				    struct memo *tmp, bool *ret_overflow)
{
	uint64_t h = hash_str(node);
	uint64_t gen = atomic_load_explicit(&pl->gens[h % GENS], memory_order_acquire);
	struct memo *m = NULL;
	bool overflow;

	if (pl->n_memos >= MEMOS * 3 / 4) { /* nodes come and go: start over */
		for (size_t i = 0; i < MEMOS; i++)
			free(pl->memos[i].node);
		memset(pl->memos, 0, MEMOS * sizeof(*pl->memos));
		pl->n_memos = 0;
	}
	for (size_t i = 0; i < MEMOS; i++) {
		struct memo *e = &pl->memos[(h + i) % MEMOS];
		if (e->hash == h && strcmp(e->node, node) == 0) {
			if (e->gen == gen) {
				if (ret_overflow)
					*ret_overflow = false; /* an overflowed sum is never kept */
				return e;
			}
			m = e;
			break;
		}
		if (e->hash == 0) {
			e->node = strdup(node);
			if (!e->node)
				break;
			e->hash = h;
			pl->n_memos++;
			m = e;
			break;
		}
	}
	if (!m)
		m = tmp;
	sum_node(pl, pods, node, m, &overflow);
	m->gen = overflow ? gen - 1 : gen; /* an overflowed sum is never reused */
	if (ret_overflow)
		*ret_overflow = overflow;
	return m;
}

struct usage {
	int64_t gpu, cpu_milli, mem_bytes, pods, same_service;
};

static void node_usage(struct placement *pl, struct cache *pods, const struct kpod *pod,
		       const struct knode *n, struct usage *u)
{
	const struct slot *s = pl->n_slotted ? slot_for(pl, cache_obj_name(&n->meta), false) : NULL;
	struct memo tmp = { 0 };
	const struct memo *m = &tmp;
	bool overflow;

	if (s && s->walk)
		sum_node(pl, pods, cache_obj_name(&n->meta), &tmp, &overflow);
	else
		m = node_sums(pl, pods, cache_obj_name(&n->meta), &tmp, NULL);

	memset(u, 0, sizeof(*u));
	u->cpu_milli = m->cpu_milli;
	u->mem_bytes = m->mem_bytes;
	u->pods = m->pods;
	for (uint8_t k = 0; pod->gpu_resource && k < m->n_res; k++)
		if (strcmp(pl->res_names[m->res[k]], pod->gpu_resource) == 0)
			u->gpu = m->gpu[k];
	if (s) {
		u->gpu += s->gpu;
		u->cpu_milli += s->cpu_milli;
		u->mem_bytes += s->mem_bytes;
		u->pods += s->pods;
		u->same_service += s->same_service;
	}
}

/* Add "Insufficient X" reasons; true when everything fits. */
static bool fits(const struct kpod *pod, const struct knode *n, const struct usage *u,
		 struct placement_reasons *h)
{
	bool ok = true;
	if (pod->gpu > 0 && pod->gpu_resource &&
	    knode_alloc(n, pod->gpu_resource) / 1000 - u->gpu < pod->gpu) {
		char buf[160];
		snprintf(buf, sizeof(buf), "Insufficient %s", pod->gpu_resource);
		placement_reasons_add(h, buf);
		ok = false;
	}
	if (pod->cpu_milli > 0 && knode_alloc(n, "cpu") - u->cpu_milli < pod->cpu_milli) {
		placement_reasons_add(h, "Insufficient cpu");
		ok = false;
	}
	if (pod->mem_bytes > 0 && knode_alloc(n, "memory") / 1000 - u->mem_bytes < pod->mem_bytes) {
		placement_reasons_add(h, "Insufficient memory");
		ok = false;
	}
	if (knode_alloc(n, "pods") / 1000 - u->pods < 1) {
		placement_reasons_add(h, "Too many pods");
		ok = false;
	}
	return ok;
}

/* ---- scores (each 0-100) ----------------------------------------------- */

/* key: "kinfer.io/cached.<model>", made once per decision ("" = none). */
static int score_cached(const char *key, const struct knode *n)
{
	if (!*key)
		return 0;
	const struct klabel *l = knode_label(n, key);
	return l && !text_same(l->value, "false") ? 100 : 0;
}

static int score_utilization(const struct knode *n)
{
	return n->gpu_util < 0 ? 50 : 100 - n->gpu_util;
}

/* Low and normal priority pack (fuller nodes first); high priority spreads
 * the service's replicas (fewer of them on the node first). */
static int score_packing(const struct kpod *pod, const struct knode *n, const struct usage *u)
{
	if (pod->priority == KPRIO_HIGH)
		return (int)(100 / (1 + u->same_service));
	int64_t alloc = pod->gpu > 0 ? knode_alloc(n, pod->gpu_resource) / 1000 :
				       knode_alloc(n, "cpu");
	int64_t after = pod->gpu > 0 ? u->gpu + pod->gpu : u->cpu_milli + pod->cpu_milli;
	return alloc > 0 ? (int)(100 * after / alloc) : 0;
}

/* Units left after the pod that cannot hold another pod of its size are
 * stranded: fewer is better (8 GPUs, 3 wanted: an empty node strands 2,
 * a node with 2 in use strands none). */
static int score_fragmentation(const struct kpod *pod, const struct knode *n, const struct usage *u)
{
	if (pod->gpu <= 0)
		return 100;
	int64_t alloc = knode_alloc(n, pod->gpu_resource) / 1000;
	int64_t left = alloc - u->gpu - pod->gpu;
	if (alloc <= 0 || left < 0)
		return 0;
	return (int)(100 - 100 * (left % pod->gpu) / alloc);
}

/* ---- the decision ------------------------------------------------------ */

struct walk {
	struct placement *pl;
	struct cache *pods;
	const struct kpod *pod;
	struct placement_reasons reasons;
	struct placement_decision *d;
	const char *best;
	int64_t best_score;
	bool best_cached;
	char cached_key[256];
};

static int visit_node(const struct cache_obj *obj, void *ud)
{
	const struct knode *n = (const struct knode *)obj;
	struct walk *w = ud;
	const struct placement_weights *wt = &w->pl->w;
	char buf[160];
	struct usage u;

	w->d->nodes++;
	const char *why = placement_node_filter(w->pod, n, buf, sizeof(buf));
	if (why) {
		placement_reasons_add(&w->reasons, why);
		return 0;
	}
	node_usage(w->pl, w->pods, w->pod, n, &u);
	if (!fits(w->pod, n, &u, &w->reasons))
		return 0;
	w->d->feasible++;
	int cached = score_cached(w->cached_key, n);
	int64_t score = (int64_t)wt->cached * cached +
			(int64_t)wt->utilization * score_utilization(n) +
			(int64_t)wt->packing * score_packing(w->pod, n, &u) +
			(int64_t)wt->fragmentation * score_fragmentation(w->pod, n, &u);
	if (!w->best || score > w->best_score ||
	    (score == w->best_score && strcmp(cache_obj_name(&n->meta), w->best) < 0)) {
		w->best = cache_obj_name(&n->meta);
		w->best_score = score;
		w->best_cached = cached > 0;
	}
	return 0;
}

/* ---- the index ---------------------------------------------------------- */

/*
 * Kept under placement_lock and brought up to date at the start of each
 * decision: the nodes named by placement_node_changed since the last one
 * (pod and node events: the handlers call it) are read again from the
 * caches, and every node when the ring overflowed, on the first decision,
 * or when the node cache's count differs from the index's. A record keeps
 * what the ordering needs: per GPU resource the node's allocatable and
 * free units (its bound pods' requests, from the by-node index, the same
 * sums the scan uses) and its utilization score, plus a bloom of its
 * cached-model labels. A decision then trusts nothing of it: every node it
 * visits is filtered and scored from the caches as the scan does.
 */

#define ENTRY(pl, e) (&(pl)->recs[(e) / REC_RES].r[(e) % REC_RES])

static int res_lookup(const struct placement *pl, const char *name)
{
	for (int i = 0; i < pl->n_res_names; i++)
		if (strcmp(pl->res_names[i], name) == 0)
			return i;
	return -1;
}

static int32_t rec_find(const struct placement *pl, const char *name, uint64_t h)
{
	if (!pl->rmap)
		return -1;
	for (size_t i = h & pl->rmap_mask;; i = (i + 1) & pl->rmap_mask) {
		int32_t id = pl->rmap[i] - 1;
		if (id < 0)
			return -1;
		if (pl->recs[id].hash == h && strcmp(pl->recs[id].name, name) == 0)
			return id;
	}
}

static int rmap_grow(struct placement *pl)
{
	size_t n = pl->rmap ? (pl->rmap_mask + 1) * 2 : 1024;
	int32_t *m = calloc(n, sizeof(*m));
	if (!m)
		return -ENOMEM;
	for (size_t id = 0; id < pl->n_recs; id++) {
		size_t i = pl->recs[id].hash & (n - 1);
		while (m[i])
			i = (i + 1) & (n - 1);
		m[i] = (int32_t)id + 1;
	}
	free(pl->rmap);
	pl->rmap = m;
	pl->rmap_mask = n - 1;
	return 0;
}

static int32_t rec_add(struct placement *pl, const char *name, uint64_t h)
{
	struct rec *r;
	char *copy;

	if (pl->n_recs == pl->cap_recs) {
		size_t nc = pl->cap_recs ? pl->cap_recs * 2 : 1024;
		struct rec *nr = realloc(pl->recs, nc * sizeof(*nr));
		if (!nr)
			return -1;
		pl->recs = nr;
		pl->cap_recs = nc;
	}
	if ((!pl->rmap || (pl->n_recs + 1) * 2 > pl->rmap_mask + 1) && rmap_grow(pl) < 0)
		return -1;
	copy = strdup(name);
	if (!copy)
		return -1;
	r = &pl->recs[pl->n_recs];
	memset(r, 0, sizeof(*r));
	r->name = copy;
	r->hash = h;
	r->cprev = r->cnext = -1;
	size_t i = h & pl->rmap_mask;
	while (pl->rmap[i])
		i = (i + 1) & pl->rmap_mask;
	pl->rmap[i] = (int32_t)pl->n_recs + 1;
	return (int32_t)pl->n_recs++;
}

/* The cached-or-overflow list (a record is in at most one). */
static void clist_unlink(struct placement *pl, int32_t id)
{
	struct rec *r = &pl->recs[id];
	int32_t *head = r->overflow ? &pl->overflow_head : &pl->cached_head;

	if (r->cprev >= 0)
		pl->recs[r->cprev].cnext = r->cnext;
	else if (*head == id)
		*head = r->cnext;
	else
		return; /* in no list */
	if (r->cnext >= 0)
		pl->recs[r->cnext].cprev = r->cprev;
	r->cprev = r->cnext = -1;
}

static void clist_link(struct placement *pl, int32_t id, int32_t *head)
{
	struct rec *r = &pl->recs[id];
	r->cprev = -1;
	r->cnext = *head;
	if (*head >= 0)
		pl->recs[*head].cprev = id;
	*head = id;
}

static void rec_unlink(struct placement *pl, int32_t id)
{
	struct rec *r = &pl->recs[id];

	for (int k = 0; k < r->n_res; k++) {
		struct rec_res *e = &r->r[k];
		if (e->group < 0)
			continue;
		struct group *g = &pl->ridx[e->ri]->g[e->group];
		if (e->prev >= 0)
			ENTRY(pl, e->prev)->next = e->next;
		else
			g->head[e->util] = e->next;
		if (e->next >= 0)
			ENTRY(pl, e->next)->prev = e->prev;
		g->n--;
	}
	clist_unlink(pl, id);
	r->n_res = 0;
	r->overflow = false;
	r->cached_bloom = 0;
}

static int group_get(struct placement *pl, int ri, int64_t alloc, int64_t free_units)
{
	struct resindex *x = pl->ridx[ri];

	if (!x) {
		x = pl->ridx[ri] = malloc(sizeof(*x));
		if (!x)
			return -1;
		x->n_groups = 0;
	}
	int empty = -1;
	for (int g = 0; g < x->n_groups; g++) {
		if (x->g[g].alloc == alloc && x->g[g].free == free_units)
			return g;
		if (empty < 0 && x->g[g].n == 0)
			empty = g;
	}
	/* Full: a group no node is in any more takes the new pair (else every
	 * node with a new pair would overflow until the next resync). */
	if (x->n_groups == MAX_GROUPS && empty < 0)
		return -1;
	int gi = x->n_groups == MAX_GROUPS ? empty : x->n_groups++;
	struct group *g = &x->g[gi];
	g->alloc = alloc;
	g->free = free_units;
	g->n = 0;
	for (int u = 0; u < UTIL_LEVELS; u++)
		g->head[u] = -1;
	return gi;
}

static uint64_t cached_bit(const char *label_key)
{
	return 1ULL << (hash_str(label_key) & 63);
}

/* Read node id again from the caches (n NULL: the node is gone). */
static void rec_refresh(struct placement *pl, struct cache *pods, int32_t id, const struct knode *n)
{
	struct rec *r = &pl->recs[id];
	struct memo tmp = { 0 };
	const struct memo *m;
	bool overflow = false;

	rec_unlink(pl, id);
	pl->n_live -= r->live;
	r->live = n != NULL;
	pl->n_live += r->live;
	if (!n)
		return;
	for (size_t i = 0; i < n->n_labels; i++)
		if (strncmp(n->labels[i].key, KINFER_CACHED_PREFIX, strlen(KINFER_CACHED_PREFIX)) ==
			    0 &&
		    !text_same(n->labels[i].value, "false"))
			r->cached_bloom |= cached_bit(n->labels[i].key);
	/* Through the memo: the visit that may follow reuses the sums. */
	m = node_sums(pl, pods, r->name, &tmp, &overflow);
	int8_t util = (int8_t)(n->gpu_util < 0 ? 50 : 100 - n->gpu_util);
	for (size_t i = 0; i < n->n_alloc && !overflow; i++) {
		const char *res = n->alloc[i].name;
		if (strncmp(res, "nvidia.com/", 11) != 0)
			continue;
		int ri = res_index(pl, res);
		if (ri < 0 || r->n_res == REC_RES) {
			overflow = true;
			break;
		}
		int64_t used = 0, units = n->alloc[i].milli / 1000;
		for (uint8_t k = 0; k < m->n_res; k++)
			if (m->res[k] == ri)
				used = m->gpu[k];
		int e_id = id * REC_RES + r->n_res;
		struct rec_res *e = &r->r[r->n_res++];
		e->ri = (int16_t)ri;
		e->group = -1;
		e->util = util;
		if (units - used < 1)
			continue; /* fits no pod of this resource */
		int g = group_get(pl, ri, units, units - used);
		if (g < 0) {
			overflow = true;
			break;
		}
		struct group *gr = &pl->ridx[ri]->g[g];
		e->group = (int16_t)g;
		e->prev = -1;
		e->next = gr->head[util];
		if (e->next >= 0)
			ENTRY(pl, e->next)->prev = e_id;
		gr->head[util] = e_id;
		gr->n++;
	}
	if (overflow) {
		rec_unlink(pl, id);
		r->overflow = true;
		clist_link(pl, id, &pl->overflow_head);
	} else if (r->cached_bloom) {
		clist_link(pl, id, &pl->cached_head);
	}
}

struct resync {
	struct placement *pl;
	struct cache *pods;
	bool failed;
};

static int resync_node(const struct cache_obj *obj, void *ud)
{
	struct resync *rs = ud;
	int32_t id = rec_add(rs->pl, cache_obj_name(obj), hash_str(cache_obj_name(obj)));
	if (id < 0) {
		rs->failed = true;
		return 1;
	}
	rec_refresh(rs->pl, rs->pods, id, (const struct knode *)obj);
	return 0;
}

/* Forget every record and read every node. */
static void index_resync(struct placement *pl, struct cache *nodes, struct cache *pods)
{
	struct resync rs = { pl, pods, false };

	for (size_t i = 0; i < pl->n_recs; i++)
		free(pl->recs[i].name);
	pl->n_recs = pl->n_live = 0;
	if (pl->rmap)
		memset(pl->rmap, 0, (pl->rmap_mask + 1) * sizeof(*pl->rmap));
	for (int i = 0; i < 64; i++)
		if (pl->ridx[i])
			pl->ridx[i]->n_groups = 0;
	pl->cached_head = pl->overflow_head = -1;
	cache_foreach(nodes, resync_node, &rs);
	pl->synced = !rs.failed;
}

/* A stamp no record carries (after 2^32 of them, every record is reset). */
static void next_epoch(struct placement *pl)
{
	if (++pl->epoch == 0) {
		for (size_t i = 0; i < pl->n_recs; i++)
			pl->recs[i].epoch = 0;
		pl->epoch = 1;
	}
}

/*
 * A node write whose handlers have not all run (published, not yet told:
 * its record may be stale while the node cache shows it) is waited for,
 * a few microseconds as a rule; if it takes longer than WRITE_WAIT_NS
 * (the writer lost its core), false: the decision is then the scan's.
 * Checked before taking the ring: when no write is in flight, every write
 * the cache shows has been told, so its name is in the ring taken below
 * or was refreshed by an earlier decision.
 */
#define WRITE_WAIT_NS 50000

static bool index_sync(struct placement *pl, struct cache *nodes, struct cache *pods)
{
	uint64_t *d, t0 = 0;
	size_t n;
	bool overflow;

	while (cache_writing(nodes)) {
		uint64_t t = ktime_mono_ns();
		if (!t0)
			t0 = t;
		else if (t - t0 > WRITE_WAIT_NS)
			return false;
		sched_yield();
	}
	pthread_mutex_lock(&pl->dlock);
	d = pl->dirty;
	n = pl->n_dirty;
	overflow = pl->dirty_overflow;
	pl->dirty = pl->dirty_spare;
	pl->dirty_spare = d;
	pl->n_dirty = 0;
	pl->dirty_overflow = false;
	pthread_mutex_unlock(&pl->dlock);

	if (!pl->synced || overflow) {
		index_resync(pl, nodes, pods);
		return pl->synced;
	}
	next_epoch(pl); /* stamps the records refreshed in this batch */
	/* No records yet (the first decision saw no node): no map either. */
	for (size_t k = 0; pl->rmap && k < n; k++)
		for (size_t i = d[k] & pl->rmap_mask; pl->rmap[i]; i = (i + 1) & pl->rmap_mask) {
			struct rec *r = &pl->recs[pl->rmap[i] - 1];
			if (r->hash != d[k] || r->epoch == pl->epoch)
				continue;
			r->epoch = pl->epoch;
			rec_refresh(pl, pods, pl->rmap[i] - 1,
				    (const struct knode *)cache_get(nodes, r->name));
		}
	/* A node no event named (added, or gone unseen), or records of nodes
	 * long gone piling up: start over. */
	if (cache_count(nodes) != pl->n_live || pl->n_recs > 2 * pl->n_live + 1024)
		index_resync(pl, nodes, pods);
	return pl->synced;
}

/* Specials: nodes whose score the index cannot bound (assumptions or
 * replicas of the pod's service on them, the pod's model cached there,
 * records that overflowed). Every decision visits them all. */
static int special_add(struct placement *pl, const char *name)
{
	if (pl->n_special == pl->cap_special) {
		size_t nc = pl->cap_special ? pl->cap_special * 2 : 256;
		const char **ns = realloc(pl->special, nc * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		pl->special = ns;
		pl->cap_special = nc;
	}
	pl->special[pl->n_special++] = name;
	return 0;
}

static int gather_special(struct placement *pl, const char *cached_key)
{
	uint64_t bit = *cached_key ? cached_bit(cached_key) : 0;
	int r = 0;

	pl->n_special = 0;
	for (size_t i = 0; i < pl->n_slotted && r == 0; i++) {
		const struct slot *s = &pl->slots[pl->slot_used[i]];
		int32_t id = rec_find(pl, s->node, s->hash);
		if (id >= 0)
			pl->recs[id].epoch = pl->epoch;
		r = special_add(pl, s->node);
	}
	for (int32_t id = pl->overflow_head; id >= 0 && r == 0; id = pl->recs[id].cnext)
		if (pl->recs[id].epoch != pl->epoch) {
			pl->recs[id].epoch = pl->epoch;
			r = special_add(pl, pl->recs[id].name);
		}
	for (int32_t id = pl->cached_head; bit && id >= 0 && r == 0; id = pl->recs[id].cnext)
		if ((pl->recs[id].cached_bloom & bit) && pl->recs[id].epoch != pl->epoch) {
			pl->recs[id].epoch = pl->epoch;
			r = special_add(pl, pl->recs[id].name);
		}
	return r;
}

/* What every node of a group scores but for utilization, when neither
 * model cache nor replicas of the service are on it (the specials). */
static int64_t group_base(const struct placement_weights *wt, const struct kpod *pod,
			  const struct group *g)
{
	int64_t pack, frag, left = g->free - pod->gpu;

	if (pod->priority == KPRIO_HIGH)
		pack = 100;
	else
		pack = g->alloc > 0 ? 100 * (g->alloc - g->free + pod->gpu) / g->alloc : 0;
	frag = g->alloc <= 0 || left < 0 ? 0 : 100 - 100 * (left % pod->gpu) / g->alloc;
	return (int64_t)wt->packing * (int)pack + (int64_t)wt->fragmentation * (int)frag;
}

static int next_level(const struct group *g, int from)
{
	while (from >= 0 && g->head[from] < 0)
		from--;
	return from;
}

#define NAME_ORDER_TRIES 16

/*
 * The nodes of one list (a group at one utilization level) but the
 * specials all score the same, so the first of them by name that passes
 * the filters is the list's best: look at names only, and visit nodes in
 * name order until one fits (after NAME_ORDER_TRIES that do not, the rest
 * in list order). Identical nodes, as a fresh pool of one GPU model is,
 * then cost a pass over names instead of a visit each.
 */
static int visit_level(struct placement *pl, struct cache *nodes, int32_t head, struct walk *w)
{
	size_t k = 0, tries = 0;

	for (int32_t e = head; e >= 0; e = ENTRY(pl, e)->next) {
		if (pl->recs[e / REC_RES].epoch == pl->epoch)
			continue; /* special: visited with the others */
		if (k == pl->cap_scratch) {
			size_t nc = pl->cap_scratch ? pl->cap_scratch * 2 : 1024;
			int32_t *ns = realloc(pl->scratch, nc * sizeof(*ns));
			if (!ns)
				return -ENOMEM;
			pl->scratch = ns;
			pl->cap_scratch = nc;
		}
		pl->scratch[k++] = e / REC_RES;
	}
	while (k > 0) {
		size_t at = 0;
		if (tries++ < NAME_ORDER_TRIES)
			for (size_t i = 1; i < k; i++)
				if (strcmp(pl->recs[pl->scratch[i]].name,
					   pl->recs[pl->scratch[at]].name) < 0)
					at = i;
		const struct cache_obj *n = cache_get(nodes, pl->recs[pl->scratch[at]].name);
		int feasible = w->d->feasible;
		if (n)
			visit_node(n, w);
		if (w->d->feasible > feasible && tries <= NAME_ORDER_TRIES)
			return 0; /* the rest of the list: same score, later names */
		pl->scratch[at] = pl->scratch[--k];
	}
	return 0;
}

/*
 * The indexed decision: groups of nodes with enough free units of the
 * pod's resource, merged by score (highest first); a group's nodes at one
 * utilization level all score the same unless special, so the walk stops
 * at the first level that scores below the best node found. Then the
 * specials. Returns false when the pod is not one the index serves.
 */
static bool decide_indexed(struct placement *pl, struct cache *nodes, struct walk *w)
{
	const struct kpod *pod = w->pod;
	const struct placement_weights *wt = &pl->w;
	int cur[MAX_GROUPS];
	int64_t base[MAX_GROUPS];
	struct resindex *x;
	int ri;

	if (pod->gpu <= 0 || !pod->gpu_resource || pod->sched_unreadable ||
	    strncmp(pod->gpu_resource, "nvidia.com/", 11) != 0)
		return false;
	if (!index_sync(pl, nodes, w->pods))
		return false;
	next_epoch(pl);
	if (gather_special(pl, w->cached_key) < 0)
		return false;
	ri = res_lookup(pl, pod->gpu_resource);
	x = ri >= 0 ? pl->ridx[ri] : NULL;
	for (int g = 0; x && g < x->n_groups; g++) {
		cur[g] = x->g[g].free >= pod->gpu && x->g[g].n ?
				 next_level(&x->g[g], UTIL_LEVELS - 1) :
				 -1;
		base[g] = group_base(wt, pod, &x->g[g]);
	}
	while (x) {
		int bg = -1;
		int64_t bs = 0;
		for (int g = 0; g < x->n_groups; g++) {
			if (cur[g] < 0)
				continue;
			int64_t sc = base[g] + (int64_t)wt->utilization * cur[g];
			if (bg < 0 || sc > bs) {
				bg = g;
				bs = sc;
			}
		}
		if (bg < 0 || (w->best && bs < w->best_score))
			break;
		if (visit_level(pl, nodes, x->g[bg].head[cur[bg]], w) < 0)
			return false;
		cur[bg] = next_level(&x->g[bg], cur[bg] - 1);
	}
	for (size_t i = 0; i < pl->n_special; i++) {
		const struct cache_obj *n = cache_get(nodes, pl->special[i]);
		if (n)
			visit_node(n, w);
	}
	return true;
}

/* ---- the decision ------------------------------------------------------ */

static void walk_start(struct placement *pl, struct cache *pods, const struct kpod *pod,
		       uint64_t now_ns, struct placement_decision *ret, struct walk *w)
{
	memset(w, 0, sizeof(*w));
	w->pl = pl;
	w->pods = pods;
	w->pod = pod;
	w->d = ret;
	memset(ret, 0, sizeof(*ret));
	if (pod->model && !pod->avoid_cached && pl->w.cached > 0 &&
	    (size_t)snprintf(w->cached_key, sizeof(w->cached_key), KINFER_CACHED_PREFIX "%s",
			     pod->model) >= sizeof(w->cached_key))
		w->cached_key[0] = '\0';
	gather_assumed(pl, pods, pod, now_ns);
	gather_siblings(pl, pods, pod);
}

static void walk_result(const struct walk *w, struct placement_decision *ret)
{
	text_copy(ret->node, sizeof(ret->node), w->best);
	ret->score = w->best_score;
	ret->cached = w->best_cached;
}

int placement_decide_scan(struct placement *pl, struct cache *nodes, struct cache *pods,
			  const struct kpod *pod, uint64_t now_ns, struct placement_decision *ret)
{
	struct walk w;

	walk_start(pl, pods, pod, now_ns, ret, &w);
	cache_foreach(nodes, visit_node, &w);
	if (!w.best) {
		placement_reasons_message(&w.reasons, ret->nodes, ret->message, sizeof(ret->message));
		return -ENOSPC;
	}
	walk_result(&w, ret);
	return 0;
}

void placement_use_index(struct placement *pl, bool on)
{
	pl->no_index = !on;
}

int placement_decide(struct placement *pl, struct cache *nodes, struct cache *pods,
		     const struct kpod *pod, uint64_t now_ns, struct placement_decision *ret)
{
	struct walk w;

	if (pl->no_index)
		return placement_decide_scan(pl, nodes, pods, pod, now_ns, ret);
	walk_start(pl, pods, pod, now_ns, ret, &w);
	if (decide_indexed(pl, nodes, &w) && w.best) {
		walk_result(&w, ret);
		ret->nodes = (int)cache_count(nodes);
		ret->indexed = true;
		return 0;
	}
	/* No fit among the indexed nodes (or a pod the index does not serve):
	 * the scan, which also counts every node's reason for the message. */
	return placement_decide_scan(pl, nodes, pods, pod, now_ns, ret);
}

/* ---- reasons ----------------------------------------------------------- */

void placement_reasons_add(struct placement_reasons *h, const char *text)
{
	for (int i = 0; i < h->n; i++)
		if (strcmp(h->r[i].text, text) == 0) {
			h->r[i].count++;
			return;
		}
	if (h->n == PLACEMENT_MAX_REASONS) { /* bounded: the rest as one */
		text_copy(h->r[h->n - 1].text, sizeof(h->r[0].text), "node(s) failed other filters");
		h->r[h->n - 1].count++;
		return;
	}
	text_copy(h->r[h->n].text, sizeof(h->r[0].text), text);
	h->r[h->n++].count = 1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void placement_reasons_message(const struct placement_reasons *h, int nodes, char *buf, size_t len)
{
	char items[PLACEMENT_MAX_REASONS][192];
	const char *sorted[PLACEMENT_MAX_REASONS];
	size_t off;

	if (!len)
		return;
	if (nodes == 0) { /* kube-scheduler's ErrNoNodesAvailable */
		snprintf(buf, len, "no nodes available to schedule pods");
		return;
	}
	for (int i = 0; i < h->n; i++) {
		snprintf(items[i], sizeof(items[i]), "%d %s", h->r[i].count, h->r[i].text);
		sorted[i] = items[i];
	}
	qsort(sorted, (size_t)h->n, sizeof(sorted[0]), cmp_str);
	off = (size_t)snprintf(buf, len, "0/%d nodes are available:", nodes);
	for (int i = 0; i < h->n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : " ", sorted[i]);
	if (off < len)
		snprintf(buf + off, len - off, ".");
}
