/*
 * Status computation. Each condition is decided by a small function in
 * order of precedence; status_build assembles them with the carried-over
 * conditions and keeps lastTransitionTime where the status did not move.
 */
#include "status.h"

#include "cache.h"
#include "ktime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cond {
	const char *type;
	const char *status; /* "True" / "False" */
	const char *reason;
	char message[512];
};

static const char *const owned[] = { "Ready", "Progressing", "Degraded", "WarmedUp" };
#define N_OWNED (sizeof(owned) / sizeof(owned[0]))

static void set(struct cond *c, const char *type, bool on, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void set(struct cond *c, const char *type, bool on, const char *reason, const char *fmt, ...)
{
	va_list ap;
	c->type = type;
	c->status = on ? "True" : "False";
	c->reason = reason;
	va_start(ap, fmt);
	vsnprintf(c->message, sizeof(c->message), fmt, ap);
	va_end(ap);
}

static const char *invalid_reason(const struct status_input *in)
{
	return in->invalid_reason ? in->invalid_reason : "InvalidSpec";
}

static bool rollout_done(const struct status_input *in)
{
	const struct kdeployment *d = in->dep;
	return d && d->observed_generation >= d->generation && d->updated >= in->desired &&
	       d->replicas <= in->desired;
}

static void degraded(const struct status_input *in, struct cond *c)
{
	const struct kdeployment *d = in->dep;
	if (in->invalid)
		set(c, "Degraded", true, invalid_reason(in), "%s", in->invalid);
	else if (in->other_autoscaler)
		set(c, "Degraded", true, "ConflictingAutoscaler", "%s", in->other_autoscaler);
	else if (d && d->replica_failure == KCOND_TRUE)
		set(c, "Degraded", true, "ReplicaFailure", "pods cannot be created: %s",
		    d->failure_message ? d->failure_message : "see the Deployment's events");
	else if (d && d->progressing == KCOND_FALSE && d->progress_reason &&
		 strcmp(d->progress_reason, "ProgressDeadlineExceeded") == 0)
		set(c, "Degraded", true, "ProgressDeadlineExceeded", "the rollout is stuck: %s",
		    d->failure_message ? d->failure_message : "no progress within the deadline");
	else if (in->unschedulable > 0)
		set(c, "Degraded", true, "Unschedulable", "%d pod(s) cannot be scheduled: %s",
		    in->unschedulable,
		    in->unschedulable_msg ? in->unschedulable_msg : "no node fits");
	else if (in->image_errors > 0)
		set(c, "Degraded", true, in->image_reason ? in->image_reason : "ContainerWaiting",
		    "%d pod(s) cannot start their model server (%s)", in->image_errors,
		    in->image_reason ? in->image_reason : "waiting");
	else
		set(c, "Degraded", false, "AsExpected", "no problem detected");
}

static void progressing(const struct status_input *in, struct cond *c)
{
	const struct kdeployment *d = in->dep;
	if (in->invalid && in->invalid_reason)
		set(c, "Progressing", false, in->invalid_reason, "nothing to roll out: %s",
		    in->invalid);
	else if (in->invalid)
		set(c, "Progressing", false, "InvalidSpec",
		    "nothing to roll out until the spec is fixed");
	else if (in->replacing)
		set(c, "Progressing", true, "WaitingForCleanup", "%s", in->replacing);
	else if (!d)
		set(c, "Progressing", true, "Creating", "creating the Deployment");
	else if (d->progressing == KCOND_FALSE && d->progress_reason &&
		 strcmp(d->progress_reason, "ProgressDeadlineExceeded") == 0)
		set(c, "Progressing", false, "ProgressDeadlineExceeded",
		    "the rollout made no progress within its deadline");
	else if (in->scale_down_deferred)
		set(c, "Progressing", true, "RollingOut",
		    "%d of %d replicas updated; the scale-down "
		    "to %d replicas waits for the rollout to finish, so no pod leaves undrained",
		    d->updated, d->spec_replicas, in->desired);
	else if (d->observed_generation < d->generation || d->updated < in->desired)
		set(c, "Progressing", true, "RollingOut", "%d of %d replicas updated%s", d->updated,
		    in->desired, d->no_surge ? " (one at a time: no room for an extra pod)" : "");
	else if (d->replicas > in->desired)
		set(c, "Progressing", true, "ScalingDown", "%d replicas, going to %d", d->replicas,
		    in->desired);
	else if (in->ready < in->desired)
		set(c, "Progressing", true, "WaitingForReady", "%d of %d replicas ready (%d warm)",
		    in->ready, in->desired, in->warm);
	else
		set(c, "Progressing", false, "Complete", "all %d replicas are updated and ready",
		    in->desired);
}

static void ready(const struct status_input *in, struct cond *c)
{
	if (in->invalid)
		set(c, "Ready", false, invalid_reason(in), "%s", in->invalid);
	else if (in->replacing)
		set(c, "Ready", false, "WaitingForCleanup", "%s", in->replacing);
	else if (in->desired == 0 && in->scale_to_zero)
		set(c, "Ready", true, "ScaledToZero",
		    "scaled to zero while idle; the activator holds "
		    "the first requests and wakes it");
	else if (in->scale_to_zero && in->ready == 0 && in->scaling && in->scaling->waking)
		set(c, "Ready", true, "ScalingFromZero",
		    "a request arrived at zero replicas; the "
		    "activator holds requests until the first of %d replicas is warm",
		    in->desired);
	else if (in->desired == 0)
		set(c, "Ready", false, "ScaledToZero", "no replicas are wanted");
	else if (in->ready >= in->desired && rollout_done(in))
		set(c, "Ready", true, "AllReplicasReady", "%d/%d replicas ready and warm",
		    in->ready, in->desired);
	else if (in->ready > 0)
		set(c, "Ready", true, "MinimumReplicasReady",
		    "%d/%d replicas ready and warm; serving while the rest start", in->ready,
		    in->desired);
	else
		set(c, "Ready", false, "ReplicasNotReady",
		    "0/%d replicas ready (%d running, %d warm)", in->desired, in->pods, in->warm);
}

static void warmed_up(const struct status_input *in, struct cond *c)
{
	if (in->desired > 0 && in->warm >= in->desired)
		set(c, "WarmedUp", true, "AllReplicasWarm", "%d/%d replicas warm", in->warm,
		    in->desired);
	else if (in->warm_failed > 0)
		set(c, "WarmedUp", false, "WarmupFailed",
		    "%d pod(s) failed their warm-up (see the pods' kinfer.io/warmed-up condition); "
		    "%d/%d replicas warm",
		    in->warm_failed, in->warm, in->desired);
	else if (in->desired == 0)
		set(c, "WarmedUp", false, "ScaledToZero", "no replicas are wanted");
	else
		set(c, "WarmedUp", false, "Warming", "%d/%d replicas warm", in->warm, in->desired);
}

static void rfc3339(int64_t t, char *buf, size_t len)
{
	time_t s = (time_t)t;
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_object *old_condition(json_object *old, const char *type)
{
	json_object *conds = cache_json_get(old, "conditions");
	for (size_t i = 0; conds && json_object_is_type(conds, json_type_array) &&
			   i < json_object_array_length(conds);
	     i++) {
		json_object *c = json_object_array_get_idx(conds, i);
		const char *t = cache_json_str(c, "type");
		if (t && strcmp(t, type) == 0)
			return c;
	}
	return NULL;
}

static json_object *condition_json(const struct cond *c, json_object *old, int64_t gen, int64_t now)
{
	json_object *o = json_object_new_object(), *prev = old_condition(old, c->type);
	char t[32];
	const char *since = NULL;
	if (prev) {
		const char *ps = cache_json_str(prev, "status");
		if (ps && strcmp(ps, c->status) == 0)
			since = cache_json_str(prev, "lastTransitionTime");
	}
	if (!since) {
		rfc3339(now, t, sizeof(t));
		since = t;
	}
	json_object_object_add(o, "type", json_object_new_string(c->type));
	json_object_object_add(o, "status", json_object_new_string(c->status));
	json_object_object_add(o, "observedGeneration", json_object_new_int64(gen));
	json_object_object_add(o, "lastTransitionTime", json_object_new_string(since));
	json_object_object_add(o, "reason", json_object_new_string(c->reason));
	json_object_object_add(o, "message", json_object_new_string(c->message));
	return o;
}

static bool is_owned(const char *type)
{
	for (size_t i = 0; i < N_OWNED; i++)
		if (strcmp(type, owned[i]) == 0)
			return true;
	return false;
}

static bool is_scaling(const char *type)
{
	return strcmp(type, "ScalingActive") == 0 || strcmp(type, "ScalingLimited") == 0 ||
	       strcmp(type, "ScalingPanic") == 0;
}

/* A number as people read it: 4 significant digits, written as is. */
static json_object *number(double v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%.4g", v);
	return json_object_new_double_s(strtod(buf, NULL), buf);
}

/* status.scaling: the bounds in force, the open schedules, the failures
 * in a row and the panic's start (issue 17's controls). */
static void scaling_controls_status(const struct status_scaling *sc, json_object *st)
{
	json_object *o = json_object_new_object(), *a = json_object_new_array();
	char t[32];

	json_object_object_add(o, "minReplicas", json_object_new_int(sc->min_replicas));
	json_object_object_add(o, "maxReplicas", json_object_new_int(sc->max_replicas));
	for (int i = 0; i < 32; i++)
		if (sc->active_schedules >> i & 1)
			json_object_array_add(a, json_object_new_int(i));
	json_object_object_add(o, "activeSchedules", a);
	/* null, not absent: the status is a merge patch, which keeps an
	 * absent key's old value. */
	json_object_object_add(o, "failures",
			       sc->failures > 0 ? json_object_new_int(sc->failures) : NULL);
	if (sc->panic_since > 0)
		rfc3339(sc->panic_since, t, sizeof(t));
	json_object_object_add(o, "panicSince",
			       sc->panic_since > 0 ? json_object_new_string(t) : NULL);
	/* scaleToZero: when it went to zero, the activator's last request
	 * (milliseconds: the activator's time is compared with them). */
	ktime_format(sc->scaled_to_zero_at_ms * 1000, 3, t, sizeof(t));
	json_object_object_add(o, "scaledToZeroAt",
			       sc->scale_to_zero && sc->scaled_to_zero_at_ms > 0 ?
				       json_object_new_string(t) :
				       NULL);
	ktime_format(sc->last_activation_ms * 1000, 3, t, sizeof(t));
	json_object_object_add(o, "lastActivation",
			       sc->scale_to_zero && sc->last_activation_ms > 0 ?
				       json_object_new_string(t) :
				       NULL);
	json_object_object_add(st, "scaling", o);
}

/*
 * The autoscaler's part: its two conditions, currentMetrics and
 * lastScaleTime, from the decision; carried over while there is none yet;
 * removed (null in the merge patch) when scaling is off.
 */
static void scaling_status(const struct status_input *in, json_object *old, json_object *st,
			   json_object *conds)
{
	const struct status_scaling *sc = in->scaling;
	char t[32];

	if (!in->scaling_enabled) {
		if (cache_json_get(old, "lastScaleTime"))
			json_object_object_add(st, "lastScaleTime", NULL);
		if (cache_json_get(old, "currentMetrics"))
			json_object_object_add(st, "currentMetrics", NULL);
		if (cache_json_get(old, "scaling"))
			json_object_object_add(st, "scaling", NULL);
		return;
	}
	if (!sc) {
		json_object *x = cache_json_get(old, "lastScaleTime");
		if (x)
			json_object_object_add(st, "lastScaleTime", json_object_get(x));
		x = cache_json_get(old, "currentMetrics");
		if (x)
			json_object_object_add(st, "currentMetrics", json_object_get(x));
		x = cache_json_get(old, "scaling");
		if (x)
			json_object_object_add(st, "scaling", json_object_get(x));
		return;
	}
	struct cond c[3];
	size_t nc = 2;
	set(&c[0], "ScalingActive", sc->active, sc->active_reason, "%s", sc->active_message);
	set(&c[1], "ScalingLimited", sc->limited, sc->limited_reason, "%s", sc->limited_message);
	if (sc->panic_set)
		set(&c[nc++], "ScalingPanic", sc->panicking, sc->panic_reason, "%s",
		    sc->panic_message);
	for (size_t i = 0; i < nc; i++)
		json_object_array_add(conds, condition_json(&c[i], old, in->generation, in->now));
	scaling_controls_status(sc, st);
	if (sc->last_scale_time > 0) {
		rfc3339(sc->last_scale_time, t, sizeof(t));
		json_object_object_add(st, "lastScaleTime", json_object_new_string(t));
	}
	json_object *cm = json_object_new_array();
	for (size_t i = 0; i < sc->n_metrics && i < 8; i++) {
		json_object *m = json_object_new_object();
		json_object_object_add(m, "type", json_object_new_string(sc->metrics[i].type));
		if (sc->metrics[i].has_value)
			json_object_object_add(m, "value", number(sc->metrics[i].value));
		json_object_object_add(m, "target", number(sc->metrics[i].target));
		json_object_array_add(cm, m);
	}
	json_object_object_add(st, "currentMetrics", cm);
}

json_object *status_build(const struct status_input *in)
{
	json_object *old = in->old_status;
	json_object *st = json_object_new_object(), *conds = json_object_new_array();
	struct cond c[N_OWNED];

	ready(in, &c[0]);
	progressing(in, &c[1]);
	degraded(in, &c[2]);
	warmed_up(in, &c[3]);
	json_object_object_add(st, "observedGeneration", json_object_new_int64(in->generation));
	json_object_object_add(st, "replicas",
			       json_object_new_int(in->dep ? in->dep->replicas : in->pods));
	json_object_object_add(st, "readyReplicas", json_object_new_int(in->ready));
	json_object_object_add(st, "warmReplicas", json_object_new_int(in->warm));
	json_object_object_add(st, "desiredReplicas", json_object_new_int(in->desired));
	json_object_object_add(st, "selector",
			       json_object_new_string(in->selector ? in->selector : ""));
	for (size_t i = 0; i < N_OWNED; i++)
		json_object_array_add(conds, condition_json(&c[i], old, in->generation, in->now));
	/* Carry over the conditions other controllers own. */
	json_object *oc = cache_json_get(old, "conditions");
	for (size_t i = 0;
	     oc && json_object_is_type(oc, json_type_array) && i < json_object_array_length(oc); i++) {
		json_object *x = json_object_array_get_idx(oc, i);
		const char *t = cache_json_str(x, "type");
		if (t && !is_owned(t) && !(is_scaling(t) && (in->scaling || !in->scaling_enabled)))
			json_object_array_add(conds, json_object_get(x));
	}
	scaling_status(in, old, st, conds);
	json_object_object_add(st, "conditions", conds);
	return st;
}

const char *status_condition(json_object *status, const char *type, const char **ret_reason,
			     const char **ret_message)
{
	json_object *c = old_condition(status, type);
	if (!c)
		return NULL;
	if (ret_reason)
		*ret_reason = cache_json_str(c, "reason");
	if (ret_message)
		*ret_message = cache_json_str(c, "message");
	return cache_json_str(c, "status");
}

static bool same_field(json_object *a, json_object *b, const char *k)
{
	json_object *x = cache_json_get(a, k), *y = cache_json_get(b, k);
	if (!x || !y)
		return !x && !y;
	return strcmp(json_object_get_string(x), json_object_get_string(y)) == 0;
}

/* Numbers compare as numbers: the server may write 7 for our 7.0. */
static bool same_number(json_object *a, json_object *b, const char *k)
{
	json_object *x = cache_json_get(a, k), *y = cache_json_get(b, k);
	if (!x || !y)
		return !x && !y;
	return json_object_get_double(x) == json_object_get_double(y);
}

static size_t length(json_object *arr)
{
	return arr && json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
}

static bool same_metrics(json_object *st, json_object *old)
{
	json_object *a = cache_json_get(st, "currentMetrics"),
		    *b = cache_json_get(old, "currentMetrics");
	size_t n = length(a);
	bool same = n == length(b);

	for (size_t i = 0; same && i < n; i++) {
		json_object *x = json_object_array_get_idx(a, i),
			    *y = json_object_array_get_idx(b, i);
		same = same_field(x, y, "type") && same_number(x, y, "value") &&
		       same_number(x, y, "target");
	}
	return same;
}

/* status.scaling, field by field (the server may order keys its way). */
static bool same_scaling(json_object *st, json_object *old)
{
	json_object *a = cache_json_get(st, "scaling"), *b = cache_json_get(old, "scaling");
	json_object *x, *y;

	if (!a || !b)
		return !a && !b;
	if (!same_number(a, b, "minReplicas") || !same_number(a, b, "maxReplicas") ||
	    !same_number(a, b, "failures") || !same_field(a, b, "panicSince") ||
	    !same_field(a, b, "scaledToZeroAt") || !same_field(a, b, "lastActivation"))
		return false;
	x = cache_json_get(a, "activeSchedules");
	y = cache_json_get(b, "activeSchedules");
	if (length(x) != length(y))
		return false;
	for (size_t i = 0; i < length(x); i++)
		if (json_object_get_int(json_object_array_get_idx(x, i)) !=
		    json_object_get_int(json_object_array_get_idx(y, i)))
			return false;
	return true;
}

bool status_same(json_object *st, json_object *old)
{
	static const char *const fields[] = { "observedGeneration", "replicas",
					      "readyReplicas",      "warmReplicas",
					      "desiredReplicas",    "selector",
					      "lastScaleTime" };
	static const char *const cfields[] = { "status", "reason", "message", "observedGeneration",
					       "lastTransitionTime" };
	json_object *conds = cache_json_get(st, "conditions");
	bool same = old != NULL;

	for (size_t i = 0; same && i < sizeof(fields) / sizeof(fields[0]); i++)
		same = same_field(st, old, fields[i]);
	same = same && same_metrics(st, old) && same_scaling(st, old) &&
	       length(conds) == length(cache_json_get(old, "conditions"));
	for (size_t i = 0; same && i < length(conds); i++) {
		json_object *a = json_object_array_get_idx(conds, i);
		const char *type = cache_json_str(a, "type");
		json_object *b = type ? old_condition(old, type) : NULL;
		same = b != NULL;
		for (size_t k = 0; same && k < sizeof(cfields) / sizeof(cfields[0]); k++)
			same = same_field(a, b, cfields[k]);
	}
	return same;
}

bool status_flipped(json_object *st, json_object *old)
{
	json_object *conds = cache_json_get(st, "conditions");

	if (!old || length(conds) != length(cache_json_get(old, "conditions")))
		return true;
	for (size_t i = 0; i < length(conds); i++) {
		json_object *a = json_object_array_get_idx(conds, i);
		const char *type = cache_json_str(a, "type");
		json_object *b = type ? old_condition(old, type) : NULL;
		if (!b || !same_field(a, b, "status"))
			return true;
	}
	return false;
}

void status_autoscaler_isvc_message(char *buf, size_t len, const char *name, int32_t min, int32_t max)
{
	if (len)
		snprintf(buf, len,
			 "HorizontalPodAutoscaler %.100s (%d to %d replicas) scales this "
			 "InferenceService, but spec.scaling decides its replicas: the spec.replicas "
			 "it writes is ignored. Delete it, or remove spec.scaling to let it scale "
			 "the service",
			 name, min, max);
}

void status_autoscaler_message(char *buf, size_t len, const char *name, int32_t min, int32_t max,
			       const char *deployment, int32_t wanted, bool scaling)
{
	if (!len)
		return;
	if (scaling)
		snprintf(buf, len,
			 "HorizontalPodAutoscaler %.100s (%d to %d replicas) also scales Deployment "
			 "%.100s: kinfer leaves the replicas to it (this InferenceService asks for "
			 "%d), and its scale-downs remove pods undrained where the webhook "
			 "scale.kinfer.io does not refuse them. Delete it: spec.scaling scales this "
			 "service",
			 name, min, max, deployment, wanted);
	else
		snprintf(buf, len,
			 "HorizontalPodAutoscaler %.100s (%d to %d replicas) also scales Deployment "
			 "%.100s: kinfer leaves the replicas to it (this InferenceService asks for "
			 "%d), and its scale-downs remove pods undrained where the webhook "
			 "scale.kinfer.io does not refuse them. Delete it, or make it scale "
			 "InferenceService %.100s instead (its scale subresource: kinfer drains each "
			 "scale-down)",
			 name, min, max, deployment, wanted, deployment);
}
