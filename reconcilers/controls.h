/*
 * controls: the part of spec.scaling (and of the metadata) that issue 17
 * added on top of the HPA fields, read from JSON into struct
 * autoscale_spec and struct autoscale_pause, with the CRD's bounds and
 * messages that name the field. The spec.scaling reader calls
 * controls_read after the HPA fields; the autoscaler controller and
 * simulate call controls_pause with an object's annotations.
 *
 *   metrics[i].activationThreshold   -> spec->activation[i]
 *   fallback                         -> spec->fallback
 *   behavior.panic                   -> spec->panic (defaults 6, 200, 60)
 *   schedules[] (cron, timeZone, durationSeconds, minReplicas,
 *                maxReplicas)        -> spec->schedules
 *   predictive (windowSeconds, lookaheadSeconds, maxIncreasePercent)
 *                                    -> spec->predictive (300, 60, 100)
 */
#pragma once

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "autoscale.h"

/* 0, or -EINVAL with err naming the field ("spec.scaling.schedules[0]
 * .cron: ..."). Reads only the fields above; spec->n_metrics must be set. */
int controls_read(json_object *scaling, struct autoscale_spec *spec, char *err, size_t errlen);

/* The pause annotations of metadata.annotations (may be NULL); current
 * is what kinfer.io/paused: "true" pins. -EINVAL with why for a bad
 * value (ret then holds what the good ones say). */
int controls_pause(json_object *annotations, int32_t current, struct autoscale_pause *ret,
		   char *why, size_t why_len);

struct status_scaling;

/*
 * What the controls add to a decision's status (status.h): the bounds in
 * force, the open schedules, the failures in a row, the ScalingPanic
 * condition when panic is set, and ScalingActive / ScalingLimited when
 * a pause or the fallback is in force.
 */
void controls_status(const struct autoscale_spec *spec, const struct autoscale_result *res,
		     struct status_scaling *st);

/* Seconds between evaluations: evaluationIntervalSeconds, or the panic
 * window when shorter (the short window is the latest reading). */
int32_t controls_interval(const struct autoscale_spec *spec, int32_t interval_seconds);
