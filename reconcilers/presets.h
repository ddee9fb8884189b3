/*
 * Framework presets: what each model server needs by default. Rows of a
 * const table; spec fields override every column.
 */
#pragma once

#include <json-c/json.h>
#include <stdint.h>

#include "isvc.h"

struct preset {
	enum isvc_framework framework;
	const char *name;
	const char *image;
	const char *const *command; /* NULL = the image's entrypoint */
	const char *const *args;    /* templates: {uri} {name} {port} */
	int32_t port;
	const char *health_path;
	int32_t metrics_port; /* 0 = port */
	const char *metrics_path;
	const char *warmup_path;     /* template: {name} */
	const char *warmup_body;     /* JSON template, NULL = GET */
	const char *const *inflight; /* gauges summed for requests in flight */
	/* Counters summed for requests answered (ok or not): drain tells the
	 * requests still reaching a pod out of the endpoints by their increase
	 * plus the change in flight. NULL: not known. */
	const char *const *answered;
};

const struct preset *preset_for(enum isvc_framework fw);

/*
 * Where a spec's model server listens and exports its metrics: spec.port
 * and spec.metricsEndpoint over the preset's (the metrics port defaults to
 * the preset's, then to the serving port). *ret_metrics_path points into
 * spec or the preset. Any ret_ may be NULL.
 */
void preset_endpoint(const struct preset *pr, json_object *spec, int32_t *ret_port,
		     int32_t *ret_metrics_port, const char **ret_metrics_path);

/* Expand {uri} {name} {port} into buf; -ENAMETOOLONG when it does not fit. */
int preset_expand(const char *tmpl, const char *uri, const char *name, int32_t port, char *buf,
		  size_t len);
