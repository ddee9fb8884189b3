/*
 * controls: read the scaling controls of issue 17 (see controls.h). Each
 * value is checked against the CRD's bounds here too, since `simulate`
 * and `validate` read files no API server has seen.
 */
#include "controls.h"

#include "cron.h"
#include "status.h"
#include "text.h"
#include "ktime.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static json_object *field(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

/* 1 with *ret when key holds a whole number in [lo, hi], 0 when absent. */
static int whole(json_object *o, const char *path, const char *key, int64_t lo, int64_t hi,
		 int32_t *ret, char *err, size_t errlen)
{
	json_object *v = field(o, key);
	double d;

	if (!v)
		return 0;
	if (json_object_is_type(v, json_type_int))
		d = (double)json_object_get_int64(v);
	else if (json_object_is_type(v, json_type_double))
		d = json_object_get_double(v);
	else
		d = NAN;
	if (!(d >= (double)lo && d <= (double)hi && d == floor(d)))
		return text_errf(err, errlen, -EINVAL,
				 "%s.%s must be a whole number from "
				 "%lld to %lld",
				 path, key, (long long)lo, (long long)hi);
	*ret = (int32_t)d;
	return 1;
}

static int activation(json_object *scaling, struct autoscale_spec *s, char *err, size_t errlen)
{
	json_object *ms = field(scaling, "metrics");

	for (size_t i = 0; i < s->n_metrics && ms && json_object_is_type(ms, json_type_array) &&
			   i < json_object_array_length(ms);
	     i++) {
		json_object *v = field(json_object_array_get_idx(ms, i), "activationThreshold");
		double d = NAN;
		if (!v)
			continue;
		if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))
			d = json_object_get_double(v);
		if (!(d >= 0 && d <= 1e15))
			return text_errf(err, errlen, -EINVAL,
					 "spec.scaling.metrics[%zu]."
					 "activationThreshold must be a number >= 0",
					 i);
		s->activation[i] = d;
	}
	return 0;
}

static int fallback(json_object *scaling, struct autoscale_spec *s, char *err, size_t errlen)
{
	static const char path[] = "spec.scaling.fallback";
	static const char *const names[] = { "static", "currentReplicas", "currentReplicasIfHigher",
					     "currentReplicasIfLower" };
	json_object *f = field(scaling, "fallback"), *b;
	struct autoscale_fallback fb = { true, 0, 0, AUTOSCALE_FALLBACK_STATIC };
	int r;

	if (!f)
		return 0;
	if (!json_object_is_type(f, json_type_object))
		return text_errf(err, errlen, -EINVAL, "%s must be an object", path);
	r = whole(f, path, "failureThreshold", 0, 1000, &fb.failure_threshold, err, errlen);
	if (r == 0)
		return text_errf(err, errlen, -EINVAL, "%s.failureThreshold is missing", path);
	if (r > 0)
		r = whole(f, path, "replicas", 0, 1000, &fb.replicas, err, errlen);
	if (r == 0)
		return text_errf(err, errlen, -EINVAL, "%s.replicas is missing", path);
	if (r < 0)
		return r;
	b = field(f, "behavior");
	if (b) {
		const char *v = json_object_is_type(b, json_type_string) ? json_object_get_string(b) :
									   "";
		size_t i;
		for (i = 0; i < 4 && strcmp(v, names[i]) != 0; i++)
			;
		if (i == 4)
			return text_errf(err, errlen, -EINVAL,
					 "%s.behavior must be static, "
					 "currentReplicas, currentReplicasIfHigher "
					 "or currentReplicasIfLower",
					 path);
		fb.behavior = (enum autoscale_fallback_behavior)i;
	}
	s->fallback = fb;
	return 0;
}

static int panic(json_object *scaling, struct autoscale_spec *s, char *err, size_t errlen)
{
	static const char path[] = "spec.scaling.behavior.panic";
	json_object *p = field(field(scaling, "behavior"), "panic");
	struct autoscale_panic pn = { true, 6, 200, 60 };
	int r;

	if (!p)
		return 0;
	if (!json_object_is_type(p, json_type_object))
		return text_errf(err, errlen, -EINVAL, "%s must be an object", path);
	r = whole(p, path, "windowSeconds", 1, 3600, &pn.window_seconds, err, errlen);
	if (r >= 0)
		r = whole(p, path, "thresholdPercent", 110, 1000, &pn.threshold_percent, err, errlen);
	if (r >= 0)
		r = whole(p, path, "stableWindowSeconds", 6, 3600, &pn.stable_window_seconds, err,
			  errlen);
	if (r < 0)
		return r;
	if (pn.window_seconds > pn.stable_window_seconds)
		return text_errf(err, errlen, -EINVAL,
				 "%s.windowSeconds must be <= "
				 "stableWindowSeconds",
				 path);
	s->panic = pn;
	return 0;
}

static int predictive(json_object *scaling, struct autoscale_spec *s, char *err, size_t errlen)
{
	static const char path[] = "spec.scaling.predictive";
	json_object *p = field(scaling, "predictive");
	struct autoscale_predictive pr = { true, 300, 60, 100 };
	int r;

	if (!p)
		return 0;
	if (!json_object_is_type(p, json_type_object))
		return text_errf(err, errlen, -EINVAL, "%s must be an object", path);
	r = whole(p, path, "windowSeconds", 60, 3600, &pr.window_seconds, err, errlen);
	if (r >= 0)
		r = whole(p, path, "lookaheadSeconds", 1, 3600, &pr.lookahead_seconds, err, errlen);
	if (r >= 0)
		r = whole(p, path, "maxIncreasePercent", 1, 1000, &pr.max_increase_percent, err,
			  errlen);
	if (r < 0)
		return r;
	s->predictive = pr;
	return 0;
}

static int schedule(json_object *e, size_t i, struct autoscale_schedule *ret, char *err, size_t errlen)
{
	struct autoscale_schedule c = { .min_replicas = -1, .max_replicas = -1 };
	json_object *v;
	char path[48], why[300];
	int r;

	snprintf(path, sizeof(path), "spec.scaling.schedules[%zu]", i);
	if (!e || !json_object_is_type(e, json_type_object))
		return text_errf(err, errlen, -EINVAL, "%s must be an object", path);
	v = field(e, "cron");
	if (!v || !json_object_is_type(v, json_type_string))
		return text_errf(err, errlen, -EINVAL, "%s.cron is missing", path);
	if (cron_parse(json_object_get_string(v), &c.cron, why, sizeof(why)) < 0)
		return text_errf(err, errlen, -EINVAL, "%s.cron: %s", path, why);
	v = field(e, "timeZone");
	if (!v || !json_object_is_type(v, json_type_string))
		return text_errf(err, errlen, -EINVAL,
				 "%s.timeZone is missing (UTC or a "
				 "fixed offset such as UTC+02:00)",
				 path);
	if (cron_tz_parse(json_object_get_string(v), &c.time_zone_offset_seconds, why, sizeof(why)) <
	    0)
		return text_errf(err, errlen, -EINVAL, "%s.timeZone: %s", path, why);
	r = whole(e, path, "durationSeconds", 60, AUTOSCALE_MAX_SCHEDULE_SECONDS,
		  &c.duration_seconds, err, errlen);
	if (r == 0)
		return text_errf(err, errlen, -EINVAL, "%s.durationSeconds is missing", path);
	if (r > 0)
		r = whole(e, path, "minReplicas", 0, 1000, &c.min_replicas, err, errlen);
	if (r >= 0)
		r = whole(e, path, "maxReplicas", 1, 1000, &c.max_replicas, err, errlen);
	if (r < 0)
		return r;
	if (c.min_replicas < 0 && c.max_replicas < 0)
		return text_errf(err, errlen, -EINVAL, "%s needs minReplicas or maxReplicas", path);
	*ret = c;
	return 0;
}

static int schedules(json_object *scaling, struct autoscale_spec *s, char *err, size_t errlen)
{
	json_object *l = field(scaling, "schedules");
	size_t n;
	int r;

	if (!l)
		return 0;
	if (!json_object_is_type(l, json_type_array))
		return text_errf(err, errlen, -EINVAL, "spec.scaling.schedules must be a list");
	n = json_object_array_length(l);
	if (n > AUTOSCALE_MAX_SCHEDULES)
		return text_errf(err, errlen, -EINVAL,
				 "spec.scaling.schedules: at most %d "
				 "entries",
				 AUTOSCALE_MAX_SCHEDULES);
	for (size_t i = 0; i < n; i++) {
		r = schedule(json_object_array_get_idx(l, i), i, &s->schedules[i], err, errlen);
		if (r < 0)
			return r;
	}
	s->n_schedules = n;
	return 0;
}

int controls_read(json_object *scaling, struct autoscale_spec *spec, char *err, size_t errlen)
{
	int r;

	if (!spec)
		return -EINVAL;
	r = activation(scaling, spec, err, errlen);
	if (r == 0)
		r = fallback(scaling, spec, err, errlen);
	if (r == 0)
		r = panic(scaling, spec, err, errlen);
	if (r == 0)
		r = schedules(scaling, spec, err, errlen);
	if (r == 0)
		r = predictive(scaling, spec, err, errlen);
	return r;
}

int controls_pause(json_object *annotations, int32_t current, struct autoscale_pause *ret,
		   char *why, size_t why_len)
{
	static const char *const keys[4] = {
		AUTOSCALE_ANNOTATION_PAUSED_REPLICAS,
		AUTOSCALE_ANNOTATION_PAUSED,
		AUTOSCALE_ANNOTATION_PAUSED_SCALE_IN,
		AUTOSCALE_ANNOTATION_PAUSED_SCALE_OUT,
	};
	const char *v[4] = { NULL, NULL, NULL, NULL };

	for (size_t i = 0; i < 4; i++) {
		json_object *x = field(annotations, keys[i]);
		if (x)
			v[i] = json_object_is_type(x, json_type_string) ? json_object_get_string(x) :
									  "";
	}
	return autoscale_pause_parse(v[0], v[1], v[2], v[3], current, ret, why, why_len);
}

void controls_status(const struct autoscale_spec *spec, const struct autoscale_result *res,
		     struct status_scaling *st)
{
	if (!spec || !res || !st)
		return;
	st->min_replicas = res->min_replicas;
	st->max_replicas = res->max_replicas;
	st->active_schedules = res->schedules_active;
	st->failures = res->state.failures;
	st->panic_set = spec->panic.set;
	st->panicking = res->panicking;
	st->panic_since = res->panicking ? res->state.panic_start_ms / KTIME_MSEC_PER_SEC : 0;
	if (res->panicking) {
		snprintf(st->panic_reason, sizeof(st->panic_reason), "PanicStarted");
		snprintf(st->panic_message, sizeof(st->panic_message), "%s", res->message);
	} else {
		snprintf(st->panic_reason, sizeof(st->panic_reason), "Stable");
		snprintf(st->panic_message, sizeof(st->panic_message),
			 "demand below %d%% of the ready replicas", spec->panic.threshold_percent);
	}
	if (res->paused || res->fallback || (res->direction_paused && !res->active)) {
		st->active = false;
		snprintf(st->active_reason, sizeof(st->active_reason), "%s", res->active_reason);
		snprintf(st->active_message, sizeof(st->active_message), "%s", res->message);
	} else if (res->direction_paused) {
		st->limited = true;
		snprintf(st->limited_reason, sizeof(st->limited_reason), "%s", res->reason);
		snprintf(st->limited_message, sizeof(st->limited_message), "%s", res->message);
	}
}

int32_t controls_interval(const struct autoscale_spec *spec, int32_t interval_seconds)
{
	if (spec && spec->panic.set && spec->panic.window_seconds > 0 &&
	    spec->panic.window_seconds < interval_seconds)
		return spec->panic.window_seconds;
	return interval_seconds;
}
