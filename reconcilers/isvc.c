/*
 * Projection of an InferenceService: typed fields for the hot paths, the
 * spec and status as compact JSON strings for the reconciler.
 */
#include "isvc.h"

#include "autoscale.h"
#include "ktime.h"
#include "scalingspec.h"

#include <errno.h>
#include <string.h>

void isvc_spec_replicas(json_object *spec, struct isvc_replicas *ret)
{
	json_object *scaling = cache_json_get(spec, "scaling");

	ret->replicas = (int32_t)cache_json_int(spec, "replicas", 1);
	ret->scaling = scaling && json_object_is_type(scaling, json_type_object);
	ret->min = (int32_t)cache_json_int(scaling, "minReplicas", 1);
	ret->max = (int32_t)cache_json_int(scaling, "maxReplicas", ret->min);
}

int isvc_framework_parse(const char *s, enum isvc_framework *ret)
{
	static const char *const names[] = { "vllm", "triton", "tgi", "custom" };
	for (int i = 0; s && i < 4; i++)
		if (strcmp(s, names[i]) == 0) {
			*ret = (enum isvc_framework)i;
			return 0;
		}
	return -EINVAL;
}

int isvc_sharing_parse(const char *s, enum isvc_sharing *ret)
{
	static const char *const names[] = { "exclusive", "time-slicing", "mps", "mig" };
	for (int i = 0; s && i < 4; i++)
		if (strcmp(s, names[i]) == 0) {
			*ret = (enum isvc_sharing)i;
			return 0;
		}
	return -EINVAL;
}

const struct isvc_scale_to_zero *isvc_scale_to_zero(const struct isvc *s)
{
	return s && s->scaling && s->scale_to_zero.set ? &s->scale_to_zero : NULL;
}

/* spec.scaling.scaleToZero with its defaults. The API server validated it;
 * a value it would not have let through falls back to the default. */
static void project_scale_to_zero(json_object *spec, json_object *scaling,
				  struct isvc_scale_to_zero *ret)
{
	struct scaletozero z;
	char err[8];

	if (scalingspec_scale_to_zero(scaling, &z, err, sizeof(err)) < 0) {
		json_object *o = scalingspec_field(scaling, "scaleToZero");
		z = (struct scaletozero){ .set = o && json_object_is_type(o, json_type_object),
					  .idle_seconds = SCALETOZERO_IDLE_S_DEFAULT,
					  .max_pending_requests = SCALETOZERO_MAX_PENDING_DEFAULT };
	}
	ret->set = z.set;
	ret->idle_seconds = z.idle_seconds;
	ret->max_pending_requests = z.max_pending_requests;
	ret->activation_timeout_seconds = z.activation_timeout_seconds;
	if (z.set && !ret->activation_timeout_seconds) {
		int64_t t = cache_json_int(spec, "warmup.timeoutSeconds",
					   ISVC_WARMUP_TIMEOUT_S_DEFAULT);
		if (t < 1 || t > SCALETOZERO_ACTIVATION_TIMEOUT_S_MAX)
			t = ISVC_WARMUP_TIMEOUT_S_DEFAULT;
		ret->activation_timeout_seconds = (int32_t)t;
	}
}

static int project_isvc(struct cache_proj *p, json_object *json, struct cache_obj *obj)
{
	struct isvc *s = (struct isvc *)obj;
	json_object *spec = cache_json_get(json, "spec");
	json_object *status = cache_json_get(json, "status");
	enum isvc_framework fw = ISVC_VLLM;

	if (!spec || !json_object_is_type(spec, json_type_object))
		return -EBADMSG;
	cache_proj_str(p, &s->spec_json,
		       json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PLAIN |
								    JSON_C_TO_STRING_NOSLASHESCAPE));
	if (status && json_object_is_type(status, json_type_object))
		cache_proj_str(p, &s->status_json,
			       json_object_to_json_string_ext(status,
							      JSON_C_TO_STRING_PLAIN |
								      JSON_C_TO_STRING_NOSLASHESCAPE));
	cache_proj_str(p, &s->model, cache_json_str(spec, "model.name"));
	s->generation = cache_json_int(json, "metadata.generation", 0);
	struct isvc_replicas n;
	isvc_spec_replicas(spec, &n);
	s->replicas = n.replicas;
	isvc_framework_parse(cache_json_str(spec, "model.framework"), &fw);
	s->framework = (uint8_t)fw;
	json_object *scaling = cache_json_get(spec, "scaling");
	s->scaling = n.scaling;
	s->min_replicas = n.min;
	s->max_replicas = n.max;
	if (s->scaling)
		project_scale_to_zero(spec, scaling, &s->scale_to_zero);
	json_object *ann = cache_json_get(json, "metadata.annotations");
	cache_proj_str(p, &s->paused_replicas,
		       cache_json_key(ann, AUTOSCALE_ANNOTATION_PAUSED_REPLICAS));
	cache_proj_str(p, &s->paused, cache_json_key(ann, AUTOSCALE_ANNOTATION_PAUSED));
	cache_proj_str(p, &s->paused_scale_in,
		       cache_json_key(ann, AUTOSCALE_ANNOTATION_PAUSED_SCALE_IN));
	cache_proj_str(p, &s->paused_scale_out,
		       cache_json_key(ann, AUTOSCALE_ANNOTATION_PAUSED_SCALE_OUT));
	const char *act = cache_json_key(ann, ISVC_ANNOTATION_ACTIVATION_REQUESTED);
	cache_proj_str(p, &s->activation_requested, act);
	s->activation_requested_ms = ktime_parse_rfc3339_us(act) / 1000;
	if (s->activation_requested_ms < 0)
		s->activation_requested_ms = 0;
	return 0;
}

const struct cache_kind kind_inferenceservices = {
	.name = "InferenceService",
	.res = &kube_res_inferenceservices,
	.size = sizeof(struct isvc),
	.project = project_isvc,
	.event_on_skip = true,
};
