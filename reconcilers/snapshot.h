/*
 * One InferenceService as a reconcile sees it: the fields copied out of
 * the caches in one read-side section (never hold one across an API call),
 * then its spec and old status parsed once, outside the section, and
 * passed down to everything the reconcile calls. json-c objects stay on
 * the reconciling thread.
 *
 * Every controller that reads an InferenceService takes this snapshot:
 * the InferenceService controller, the autoscaler and the warm-up
 * controller (for the spec of a pod's service).
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "kinds.h"
#include "manager.h"

struct snapshot {
	char ns[64], name[256], uid[64];
	char rv[32]; /* resourceVersion of the copy read */
	int64_t generation;
	bool scaling; /* spec.scaling present */
	int32_t replicas, min_replicas, max_replicas;
	json_object *spec;   /* parsed .spec, owned */
	json_object *status; /* parsed old .status, owned; NULL = none */
	/* The Deployment and Service controlled by this InferenceService. */
	bool have_dep, have_svc;
	/* An object of that name exists but is not controlled by this
	 * InferenceService (the user's, or another incarnation's): kinfer must
	 * not take it over. */
	bool dep_foreign, svc_foreign;
	/* An object of that name kinfer made for an earlier InferenceService
	 * of this name, deleted since (its controller is an InferenceService
	 * of this name with another uid; previous_uid), or one not ours being
	 * deleted (previous_uid ""): Kubernetes' garbage collector removes it,
	 * kinfer waits for that and then makes its own (never writing into an
	 * object on its way out). Not foreign: `kubectl delete` then `apply`
	 * (or `replace --force`) is no conflict to report. */
	bool dep_previous, svc_previous;
	char previous_uid[64]; /* that InferenceService's uid */
	/* The Service's kinds_edited (the Deployment's is dep.edited). */
	bool svc_edited;
	/* A HorizontalPodAutoscaler of the namespace that scales that
	 * Deployment (kinds.h struct khpa; KEDA's ScaledObjects make one):
	 * its name, "" when none (the first one found, when several), and its
	 * bounds. It writes the Deployment's replicas too. */
	char hpa[256];
	int32_t hpa_min, hpa_max;
	/* One that scales this InferenceService while its spec.scaling is set
	 * (the spec.replicas it writes is ignored): the same, "" when none. */
	char hpa_isvc[256];
	int32_t hpa_isvc_min, hpa_isvc_max;
	struct kdeployment dep; /* its header cleared, the strings below */
	char dep_hash[17], svc_hash[17], svc_rv[32];
	char dep_failure[512], dep_reason[64];
};

/*
 * Take the snapshot of the InferenceService "ns/name". 0; -ENOENT when it
 * is gone or being deleted (owner references clean up); -ENOMEM, never
 * taken for "gone"; -EBADMSG when its spec or status cannot be parsed.
 * On failure ret holds nothing to free.
 */
int snapshot_take(struct manager *m, const char *key, struct snapshot *ret);
/* Accepts a zeroed or half-filled snapshot. */
void snapshot_free(struct snapshot *s);

/*
 * The InferenceService that Deployment ns/name belongs to: its controller,
 * an InferenceService found in the cache with that uid (KServe's
 * InferenceService of the same name is another's). 1 with its name in
 * isvc, 0 when the Deployment is not kinfer's or not in the caches,
 * -EAGAIN while they have not synced. From any registered reader thread
 * (the admission webhook's, for POST /validate-scale).
 */
int snapshot_deployment_owner(struct manager *m, const char *ns, const char *name, char *isvc,
			      size_t len);

/*
 * InferenceService ns/name in the cache: 1 when its spec.scaling is set,
 * with its replica bounds, 0 when not or when there is no such
 * InferenceService, -EAGAIN while the cache has not synced. From any
 * registered reader thread (the admission webhook's).
 */
int snapshot_isvc_scaling(struct manager *m, const char *ns, const char *name, int32_t *min,
			  int32_t *max);

/*
 * An object whose controller is (kind, name, uid) and that carries kinfer's
 * mark (kinfers: its applied-hash annotation, or an EndpointSlice's
 * managed-by label) was made for an earlier InferenceService of s's name:
 * the controller is one of that name with another uid.
 */
bool snapshot_earlier(const struct snapshot *s, const char *kind, const char *name, const char *uid,
		      bool kinfers);
/*
 * What the status and the Event say while such objects remain: WHAT
 * ("Deployment", "Deployment and Service", "Service x-private": plural when
 * two) NAME still belong(s) to the InferenceService deleted before (uid);
 * with uid "" the objects are not ours and already being deleted.
 */
void snapshot_wait_message(char *buf, size_t len, const char *what, const char *name, bool plural,
			   const char *uid);
