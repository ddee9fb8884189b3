/*
 * The PodDisruptionBudget of an InferenceService (budget.h). What was
 * applied last (the body's hash and the generation the apply returned) is
 * remembered per service in a table of fixed size, as the Deployment's
 * generation is by the InferenceService controller: a budget whose
 * generation moved since was changed by someone else and is applied
 * again; without memory (after a start, a collision) one that another
 * field manager edited is.
 */
#include "budget.h"

#include "context.h"
#include "keys.h"
#include "kube.h"
#include "ktime.h"
#include "log.h"
#include "manager.h"
#include "written.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- what was applied ------------------------------------------------------- */

/* Our write not yet in the cache is trusted this long (isvc_controller.c). */
#define SENT_NS (10 * KTIME_NSEC_PER_SEC)

static struct written_table written = WRITTEN_TABLE_INIT;

static bool recall(const struct snapshot *s, struct written *ret)
{
	return written_recall(&written, s, ret);
}

/* hash applied (generation returned) at sent_ns; hash "": deleted at
 * sent_ns; hash NULL: forget. */
static void remember(const struct snapshot *s, const char *hash, int64_t generation, uint64_t sent_ns)
{
	written_remember(&written, s, hash, NULL, generation, sent_ns);
}

/* ---- the sync --------------------------------------------------------------- */

struct others {
	const char *uid;     /* this InferenceService's */
	json_object *labels; /* its pods' */
	char name[256];      /* the first other budget selecting them */
	int unreadable;      /* KPDB_SELECTS_UNREADABLE: why (kinds.h); else 0 */
};

static int other_selecting(const struct cache_obj *o, void *ud)
{
	struct others *e = ud;
	const struct kpdb *b = (const struct kpdb *)o;

	if (o->deleted || (o->controller_uid && strcmp(o->controller_uid, e->uid) == 0))
		return 0;
	if (!kpdb_selects(b, e->labels))
		return 0;
	snprintf(e->name, sizeof(e->name), "%s", cache_obj_name(o));
	e->unreadable = b->selects == KPDB_SELECTS_UNREADABLE ? b->unreadable : 0;
	return 1;
}

static int api_error(struct reconcile_ctx *ctx, int r, const char *what, const struct snapshot *s,
		     const struct kube_status *st)
{
	snprintf(ctx->error, sizeof(ctx->error), "%s PodDisruptionBudget %s/%.200s: %.500s", what,
		 s->ns, s->name, st->message);
	ctx->ns_terminating |= st->ns_terminating;
	return r;
}

int budget_sync(struct reconcile_ctx *ctx, const struct snapshot *s, const struct workload *w,
		uint64_t *ret_wait)
{
	struct cache *bc = manager_cache(ctx->manager, &kind_pdbs);
	struct others e = { .uid = s->uid, .labels = workload_pod_labels(w) };
	struct kube_status st;
	struct written last;
	char key[400], uid[CACHE_UID_MAX] = "";
	bool have, ours, current = false, edited = false, known;
	int64_t generation = 0;
	uint64_t now = ktime_mono_ns();
	int r;

	if (!bc)
		return 0; /* not watched: a table without this row */
	snprintf(key, sizeof(key), "%s/%s", s->ns, s->name);
	cache_read_lock();
	const struct kpdb *b = (const struct kpdb *)cache_get(bc, key);
	have = b != NULL;
	ours = b && !b->meta.deleted && b->meta.controller_uid &&
	       strcmp(b->meta.controller_uid, s->uid) == 0;
	if (ours) {
		current = w->budget && b->applied_hash &&
			  strcmp(b->applied_hash, w->budget_hash) == 0;
		edited = b->edited;
		generation = b->generation;
		cache_obj_uid_copy(&b->meta, uid, sizeof(uid));
	}
	if (w->budget)
		cache_index_foreach(bc, KPDB_BY_NAMESPACE, s->ns, other_selecting, &e);
	cache_read_unlock();

	/* A budget of this name that is not ours (the user's, one being
	 * deleted, an earlier InferenceService's that the garbage collector
	 * takes): never written; its change or deletion brings the key back. */
	if (have && !ours)
		return 0;
	if (!w->budget || e.name[0]) {
		if (!ours)
			return 0; /* the common case: nothing of ours, none wanted */
		known = recall(s, &last);
		/* Deleted moments ago, not yet gone from the cache. */
		if (known && !last.hash[0] && now - last.sent_ns < SENT_NS) {
			*ret_wait = ktime_sooner(*ret_wait, SENT_NS - (now - last.sent_ns));
			return 0;
		}
		struct kube_opts o = { .precondition_uid = uid[0] ? uid : NULL };
		r = kube_delete(ctx->client, &kube_res_poddisruptionbudgets, s->ns, s->name, &o,
				NULL, &st);
		if (r < 0 && r != -ENOENT && r != -ESTALE)
			return api_error(ctx, r, "delete", s, &st);
		remember(s, "", 0, now);
		if (r < 0)
			return 0; /* gone already, or another incarnation */
		log_info("disruption budget removed", "namespace=%s name=%s reason=%s%s", s->ns,
			 s->name, e.name[0] ? "PodDisruptionBudget " : "not wanted",
			 e.name[0] ? e.name : "");
		/* Someone's budget took the place of ours: say so where people
		 * look (kubectl describe), once per change. */
		if (e.name[0]) {
			const char *why = e.unreadable == -E2BIG ?
						  " (its selector is larger than kinfer reads" :
					  e.unreadable ?
						  " (its selector has an operator kinfer does not know" :
						  NULL;
			char note[768];
			snprintf(note, sizeof(note),
				 "PodDisruptionBudget %.200s selects the pods%s%s: kinfer removed its own "
				 "budget %.200s (a pod that two budgets select cannot be evicted)",
				 e.name, why ? why : "",
				 why ? ", so it is taken to select every pod of the namespace)" : "",
				 s->name);
			context_event(ctx, "kinfer.io/v1alpha1", "InferenceService", s->ns, s->name,
				      s->uid, "Normal", "DisruptionBudgetReplaced", "Delete", note);
		}
		return 0;
	}
	known = recall(s, &last) && strcmp(last.hash, w->budget_hash) == 0;
	/* As the Deployment: with memory of our last write, a generation that
	 * moved is someone else's change; without, another manager's fields. */
	if (current && (known ? last.generation == generation : !edited)) {
		if (!known || last.sent_ns)
			remember(s, w->budget_hash, generation, 0);
		return 0;
	}
	/* Ours, applied moments ago, not yet in the cache: also when the
	 * cache shows the body edited by someone else, which that write has
	 * just put back (a second apply would revert it twice). */
	if (known && last.sent_ns && now - last.sent_ns < SENT_NS) {
		*ret_wait = ktime_sooner(*ret_wait, SENT_NS - (now - last.sent_ns));
		return 0;
	}
	struct kube_opts o = { .field_manager = KINFER_FIELD_MANAGER, .force = true };
	json_object *out = NULL;
	r = kube_apply(ctx->client, &kube_res_poddisruptionbudgets, s->ns, s->name, NULL, w->budget,
		       &o, &out, &st);
	if (r < 0)
		return api_error(ctx, r, "apply", s, &st);
	remember(s, w->budget_hash, cache_json_int(out, "metadata.generation", 0), now);
	json_object_put(out);
	log_info("disruption budget applied", "namespace=%s name=%s maxUnavailable=1 reason=%s",
		 s->ns, s->name,
		 !ours    ? "created" :
		 !current ? "spec changed" :
			    "reverted a change made by someone else");
	return 0;
}
