/*
 * The projection table for kinfer.io's keys.
 */
#include "keys.h"

#include "kinds.h"

static const struct kinds_keys kinfer_keys = {
	.gate = KINFER_GATE,
	.service_label = KINFER_SERVICE_LABEL,
	.model_label = KINFER_MODEL_LABEL,
	.priority_label = KINFER_PRIORITY_LABEL,
	.prefer_cached = KINFER_PREFER_CACHED,
	.warmup_attempts = KINFER_WARMUP_ATTEMPTS,
	.draining_since = KINFER_DRAINING_SINCE,
	.warm_restarts = KINFER_WARM_RESTARTS,
	.gpu_utilization = KINFER_GPU_UTILIZATION,
	.applied_hash = KINFER_HASH_ANNOTATION,
	.field_manager = KINFER_FIELD_MANAGER,
};

void keys_register(void)
{
	kinds_register_keys(&kinfer_keys);
}
