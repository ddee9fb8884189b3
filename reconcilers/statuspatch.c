/*
 * The conditional status write; see statuspatch.h.
 */
#include "statuspatch.h"

#include "isvc.h"

#include <errno.h>

int statuspatch_write(struct kube_client *c, const char *ns, const char *name, const char *rv,
		      json_object *status, struct kube_status *ret_status)
{
	json_object *patch = json_object_new_object(), *meta = NULL;
	int r;

	if (!patch)
		return -ENOMEM;
	if (rv && *rv) {
		meta = json_object_new_object();
		json_object_object_add(meta, "resourceVersion", json_object_new_string(rv));
		json_object_object_add(patch, "metadata", meta);
	}
	json_object_object_add(patch, "status", json_object_get(status));
	const char *text = json_object_to_json_string_ext(patch,
							  JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE);
	r = text ? kube_patch(c, &kube_res_inferenceservices, ns, name, "status", KUBE_PATCH_MERGE,
			      text, NULL, NULL, ret_status) :
		   -ENOMEM;
	json_object_put(patch);
	if (r < 0 && ret_status && ret_status->code == 409)
		r = -EAGAIN;
	return r;
}
