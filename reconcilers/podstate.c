/* Pod state writes: one strategic merge patch of the condition, one merge
 * patch of an annotation. */
#include "podstate.h"

#include "kinds.h"
#include "keys.h"

#include <errno.h>
#include <time.h>

int podstate_set_gate(struct kube_client *c, const char *ns, const char *pod, bool on,
		      const char *reason, const char *message, struct kube_status *st)
{
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object *patch = json_object_new_object(), *status = json_object_new_object(),
		    *conds = json_object_new_array(), *cond = json_object_new_object();
	json_object_object_add(cond, "type", json_object_new_string(KINFER_GATE));
	json_object_object_add(cond, "status", json_object_new_string(on ? "True" : "False"));
	json_object_object_add(cond, "reason", json_object_new_string(reason));
	json_object_object_add(cond, "message", json_object_new_string(message));
	json_object_object_add(cond, "lastTransitionTime", json_object_new_string(ts));
	json_object_array_add(conds, cond);
	json_object_object_add(status, "conditions", conds);
	json_object_object_add(patch, "status", status);
	int r = kube_patch(c, &kube_res_pods, ns, pod, "status", KUBE_PATCH_STRATEGIC,
			   json_object_to_json_string_ext(patch,
							  JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE),
			   NULL, NULL, st);
	json_object_put(patch);
	return r == -ENOENT ? 0 : r;
}

int podstate_annotate(struct kube_client *c, const char *ns, const char *pod, const char *key,
		      const char *value, struct kube_status *st)
{
	json_object *patch = json_object_new_object(), *meta = json_object_new_object(),
		    *ann = json_object_new_object();
	json_object_object_add(ann, key, value ? json_object_new_string(value) : NULL);
	json_object_object_add(meta, "annotations", ann);
	json_object_object_add(patch, "metadata", meta);
	int r = kube_patch(c, &kube_res_pods, ns, pod, NULL, KUBE_PATCH_MERGE,
			   json_object_to_json_string_ext(patch,
							  JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE),
			   NULL, NULL, st);
	json_object_put(patch);
	return r == -ENOENT ? 0 : r;
}
