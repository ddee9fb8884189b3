/*
 * InferenceService snapshots; see snapshot.h.
 */
#include "snapshot.h"

#include "isvc.h"
#include "text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool snapshot_earlier(const struct snapshot *s, const char *kind, const char *name, const char *uid,
		      bool kinfers)
{
	return kinfers && kind && name && uid && strcmp(kind, "InferenceService") == 0 &&
	       strcmp(name, s->name) == 0 && strcmp(uid, s->uid) != 0;
}

void snapshot_wait_message(char *buf, size_t len, const char *what, const char *name, bool plural,
			   const char *uid)
{
	if (!uid[0]) {
		snprintf(buf, len, "%s %.200s %s being deleted; kinfer makes its own once %s gone",
			 what, name, plural ? "are" : "is", plural ? "they are" : "it is");
		return;
	}
	snprintf(buf, len,
		 "%s %.200s still belong%s to the InferenceService of this name deleted before "
		 "this one (uid %.40s); kinfer makes its own once Kubernetes' garbage collector "
		 "has removed %s",
		 what, name, plural ? "" : "s", uid, plural ? "them" : "it");
}

int snapshot_deployment_owner(struct manager *m, const char *ns, const char *name, char *isvc,
			      size_t len)
{
	struct cache *dc = manager_cache(m, &kind_deployments);
	struct cache *ic = manager_cache(m, &kind_inferenceservices);
	char key[384], uid[CACHE_UID_MAX];
	int r = 0;

	if (!dc || !ic || !cache_synced(dc) || !cache_synced(ic))
		return -EAGAIN;
	if ((size_t)snprintf(key, sizeof(key), "%s/%s", ns, name) >= sizeof(key))
		return 0; /* no such name in Kubernetes */
	cache_read_lock();
	const struct cache_obj *d = cache_get(dc, key), *s = NULL;
	if (d && d->controller_kind && d->controller_name && d->controller_uid &&
	    strcmp(d->controller_kind, "InferenceService") == 0 &&
	    (size_t)snprintf(key, sizeof(key), "%s/%s", ns, d->controller_name) < sizeof(key))
		s = cache_get(ic, key);
	const char *su = s ? cache_obj_uid(s, uid) : NULL;
	if (su && strcmp(su, d->controller_uid) == 0) {
		text_copy(isvc, len, d->controller_name);
		r = 1;
	}
	cache_read_unlock();
	return r;
}

int snapshot_isvc_scaling(struct manager *m, const char *ns, const char *name, int32_t *min,
			  int32_t *max)
{
	struct cache *ic = manager_cache(m, &kind_inferenceservices);
	char key[384];
	int r = 0;

	if (!ic || !cache_synced(ic))
		return -EAGAIN;
	if ((size_t)snprintf(key, sizeof(key), "%s/%s", ns, name) >= sizeof(key))
		return 0;
	cache_read_lock();
	const struct isvc *s = (const struct isvc *)cache_get(ic, key);
	if (s && s->scaling) {
		*min = s->min_replicas;
		*max = s->max_replicas;
		r = 1;
	}
	cache_read_unlock();
	return r;
}

/* Made by kinfer (its applied-hash) for an earlier InferenceService. */
static bool previous(const struct cache_obj *o, const char *applied_hash, const struct snapshot *s)
{
	return snapshot_earlier(s, o->controller_kind, o->controller_name, o->controller_uid,
				applied_hash != NULL);
}

static int hpa_found(const struct cache_obj *o, void *ud)
{
	struct snapshot *s = ud;
	const struct khpa *h = (const struct khpa *)o;
	if (o->deleted || strcmp(o->ns, s->ns) != 0)
		return 0;
	text_copy(s->hpa, sizeof(s->hpa), cache_obj_name(o));
	s->hpa_min = h->min_replicas;
	s->hpa_max = h->max_replicas;
	return 1;
}

static int hpa_isvc_found(const struct cache_obj *o, void *ud)
{
	struct snapshot *s = ud;
	const struct khpa *h = (const struct khpa *)o;
	if (o->deleted || strcmp(o->ns, s->ns) != 0)
		return 0;
	text_copy(s->hpa_isvc, sizeof(s->hpa_isvc), cache_obj_name(o));
	s->hpa_isvc_min = h->min_replicas;
	s->hpa_isvc_max = h->max_replicas;
	return 1;
}

/* Under the read lock: the owned objects' numbers and hashes. */
static void copy_owned(struct manager *m, const char *key, struct snapshot *s)
{
	struct cache *dc = manager_cache(m, &kind_deployments);
	struct cache *sc = manager_cache(m, &kind_services);
	const struct kdeployment *d = (const struct kdeployment *)cache_get(dc, key);
	const struct kservice *sv = (const struct kservice *)cache_get(sc, key);

	if (d && d->meta.controller_uid && strcmp(d->meta.controller_uid, s->uid) == 0) {
		s->have_dep = true;
		s->dep = *d;
		text_copy(s->dep_hash, sizeof(s->dep_hash), d->applied_hash);
		text_copy(s->dep_failure, sizeof(s->dep_failure), d->failure_message);
		text_copy(s->dep_reason, sizeof(s->dep_reason), d->progress_reason);
		s->dep.failure_message = s->dep_failure[0] ? s->dep_failure : NULL;
		s->dep.progress_reason = s->dep_reason[0] ? s->dep_reason : NULL;
		s->dep.applied_hash = NULL;
		s->dep.service = NULL;
		memset(&s->dep.meta, 0, sizeof(s->dep.meta));
	} else if (d && (d->meta.deleted || previous(&d->meta, d->applied_hash, s))) {
		s->dep_previous = true;
		if (!d->meta.deleted)
			text_copy(s->previous_uid, sizeof(s->previous_uid), d->meta.controller_uid);
	} else if (d && !d->meta.deleted) {
		s->dep_foreign = true;
	}
	struct cache *hc = manager_cache(m, &kind_hpas);
	if (s->have_dep && hc)
		cache_index_foreach(hc, KHPA_BY_DEPLOYMENT, s->name, hpa_found, s);
	if (s->scaling && hc)
		cache_index_foreach(hc, KHPA_BY_ISVC, s->name, hpa_isvc_found, s);
	if (sv && sv->meta.controller_uid && strcmp(sv->meta.controller_uid, s->uid) == 0) {
		s->have_svc = true;
		text_copy(s->svc_hash, sizeof(s->svc_hash), sv->applied_hash);
		s->svc_edited = sv->edited;
		cache_obj_rv_copy(&sv->meta, s->svc_rv, sizeof(s->svc_rv));
	} else if (sv && (sv->meta.deleted || previous(&sv->meta, sv->applied_hash, s))) {
		s->svc_previous = true;
		if (!sv->meta.deleted)
			text_copy(s->previous_uid, sizeof(s->previous_uid), sv->meta.controller_uid);
	} else if (sv && !sv->meta.deleted) {
		s->svc_foreign = true;
	}
}

int snapshot_take(struct manager *m, const char *key, struct snapshot *s)
{
	struct cache *ic = manager_cache(m, &kind_inferenceservices);
	char *spec_json = NULL, *status_json = NULL;
	int r = 0;

	memset(s, 0, sizeof(*s));
	cache_read_lock();
	const struct isvc *is = (const struct isvc *)cache_get(ic, key);
	if (!is || is->meta.deleted) {
		r = -ENOENT;
		goto unlock;
	}
	text_copy(s->ns, sizeof(s->ns), is->meta.ns);
	text_copy(s->name, sizeof(s->name), cache_obj_name(&is->meta));
	cache_obj_uid_copy(&is->meta, s->uid, sizeof(s->uid));
	cache_obj_rv_copy(&is->meta, s->rv, sizeof(s->rv));
	s->generation = is->generation;
	s->scaling = is->scaling;
	s->replicas = is->replicas;
	s->min_replicas = is->min_replicas;
	s->max_replicas = is->max_replicas;
	spec_json = strdup(is->spec_json ? is->spec_json : "{}");
	status_json = is->status_json ? strdup(is->status_json) : NULL;
	if (!spec_json || (is->status_json && !status_json))
		r = -ENOMEM;
	else
		copy_owned(m, key, s);
unlock:
	cache_read_unlock();
	if (r < 0)
		goto free_json;
	s->spec = json_tokener_parse(spec_json);
	s->status = status_json ? json_tokener_parse(status_json) : NULL;
	if (!s->spec || (status_json && !s->status))
		r = -EBADMSG;
free_json:
	free(spec_json);
	free(status_json);
	if (r < 0)
		snapshot_free(s);
	return r;
}

void snapshot_free(struct snapshot *s)
{
	if (!s)
		return;
	json_object_put(s->spec);
	json_object_put(s->status);
	s->spec = s->status = NULL;
}
