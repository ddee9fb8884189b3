/* Shared by the simulator and the load generator: where a pod serves. */
#pragma once

#include <string.h>

#include "cache.h"

/* The first container's port named http, else its first port; 0 if none. */
static inline int32_t simpod_http_port(json_object *pod)
{
	json_object *cs = cache_json_get(pod, "spec.containers");
	json_object *ports = cs ? cache_json_get(json_object_array_get_idx(cs, 0), "ports") : NULL;
	int32_t port = 0;
	for (size_t i = 0; ports && i < json_object_array_length(ports); i++) {
		json_object *pp = json_object_array_get_idx(ports, i);
		const char *n = cache_json_str(pp, "name");
		if (!port || (n && strcmp(n, "http") == 0))
			port = (int32_t)cache_json_int(pp, "containerPort", 0);
	}
	return port;
}
