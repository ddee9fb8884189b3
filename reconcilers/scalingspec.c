/*
 * The reader of spec.scaling; see scalingspec.h. The bounds are the CRD's,
 * so a spec the API server accepted maps without error, and `simulate`
 * refuses what the API server would.
 */
#include "scalingspec.h"
#include "text.h"

#include "controls.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_INTERVAL SCALINGSPEC_DEFAULT_INTERVAL
#define MAX_CRD_REPLICAS SCALINGSPEC_MAX_REPLICAS

/* A JSON number, integer or not, as a finite double. */
bool scalingspec_json_number(json_object *o, double *ret)
{
	double d;

	if (o && json_object_is_type(o, json_type_int)) {
		*ret = (double)json_object_get_int64(o);
		return true;
	}
	if (!o || !json_object_is_type(o, json_type_double))
		return false;
	d = json_object_get_double(o);
	if (!isfinite(d))
		return false;
	*ret = d;
	return true;
}

/* A whole number in [min, max]: an integer, or a float with no fraction. */
bool scalingspec_json_whole(json_object *o, int64_t min, int64_t max, int64_t *ret)
{
	double d;

	if (o && json_object_is_type(o, json_type_int)) {
		int64_t v = json_object_get_int64(o);
		if (v < min || v > max)
			return false;
		*ret = v;
		return true;
	}
	if (!scalingspec_json_number(o, &d) || d != floor(d) || d < (double)min || d > (double)max)
		return false;
	*ret = (int64_t)d;
	return true;
}

/* The value of key, NULL when absent or null (as the API server sees). */
json_object *scalingspec_field(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!o || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

/* ------------------------------------------------------------------ */
/* spec.scaling, with the CRD's field meanings and bounds              */

/* 1 and *ret when key is set, 0 when absent, -EINVAL when out of range. */
int scalingspec_get_int(json_object *o, const char *path, const char *key, int64_t min, int64_t max,
			int64_t *ret, char *err, size_t errlen)
{
	json_object *v = scalingspec_field(o, key);

	if (!v)
		return 0;
	if (!scalingspec_json_whole(v, min, max, ret))
		return text_errf(err, errlen, -EINVAL,
				 "%s.%s must be a whole "
				 "number from %lld to %lld",
				 path, key, (long long)min, (long long)max);
	return 1;
}

/* Same for a number in [min, max] (greater than min when open). */
static int get_number(json_object *o, const char *path, const char *key, double min, bool open,
		      double max, double *ret, char *err, size_t errlen)
{
	json_object *v = scalingspec_field(o, key);
	double d;

	if (!v)
		return 0;
	if (!scalingspec_json_number(v, &d) || d < min || (open && d == min) || d > max)
		return text_errf(err, errlen, -EINVAL,
				 "%s.%s must be a number "
				 "%s %g and at most %g",
				 path, key, open ? "above" : "from", min, max);
	*ret = d;
	return 1;
}

/* Same for a string, which must be one of names[0..n) (its index). */
static int get_enum(json_object *o, const char *path, const char *key, const char *const *names,
		    size_t n, int *ret, char *err, size_t errlen)
{
	json_object *v = scalingspec_field(o, key);
	const char *s;

	if (!v)
		return 0;
	s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
	for (size_t i = 0; i < n; i++) {
		if (strcmp(s, names[i]) == 0) {
			*ret = (int)i;
			return 1;
		}
	}
	return text_errf(err, errlen, -EINVAL, "%s.%s must be %s%s%s%s%s", path, key, names[0],
			 n > 2 ? ", " : " or ", names[1], n > 2 ? " or " : "", n > 2 ? names[2] : "");
}

static void type_list(char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned t = 0; t < AUTOSCALE_METRIC_TYPE_COUNT && off < len; t++) {
		int n = snprintf(buf + off, len - off, "%s%s", t ? ", " : "",
				 autoscale_metric_type_name((enum autoscale_metric_type)t));
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/* spec.scaling.metrics[i]: {type, target[, query]}. */
static int parse_metric(json_object *m, size_t i, struct autoscale_spec *s, char *err, size_t errlen)
{
	enum autoscale_metric_type t;
	json_object *type = scalingspec_field(m, "type");
	char path[64], list[160];
	double target = 0;
	int r;

	snprintf(path, sizeof(path), "spec.scaling.metrics[%zu]", i);
	if (!json_object_is_type(m, json_type_object))
		return text_errf(err, errlen, -EINVAL, "%s must be an object", path);
	if (!type || !json_object_is_type(type, json_type_string))
		return text_errf(err, errlen, -EINVAL, "%s.type is missing", path);
	if (autoscale_metric_type_parse(json_object_get_string(type), &t) < 0) {
		type_list(list, sizeof(list));
		return text_errf(err, errlen, -EINVAL,
				 "%s.type: unknown metric "
				 "type \"%.64s\" (known: %s)",
				 path, json_object_get_string(type), list);
	}
	for (size_t j = 0; j < i; j++)
		if (s->metrics[j].type == t)
			return text_errf(err, errlen, -EINVAL,
					 "%s.type: %s is "
					 "listed twice",
					 path, autoscale_metric_type_name(t));
	r = get_number(m, path, "target", 0, true, 1e15, &target, err, errlen);
	if (r == 0)
		return text_errf(err, errlen, -EINVAL, "%s.target is missing", path);
	if (r < 0)
		return r;
	if ((t == AUTOSCALE_GPU_UTILIZATION || t == AUTOSCALE_KV_CACHE_UTILIZATION) && target > 100)
		return text_errf(err, errlen, -EINVAL,
				 "%s.target of %s is a "
				 "percentage: at most 100",
				 path, autoscale_metric_type_name(t));
	s->metrics[i] = (struct autoscale_metric_spec){ t, target };
	return 0;
}

static int parse_metrics(json_object *scaling, struct autoscale_spec *s, char *err, size_t errlen)
{
	json_object *arr = scalingspec_field(scaling, "metrics");
	size_t n;
	int r;

	if (!arr)
		return text_errf(err, errlen, -EINVAL,
				 "spec.scaling.metrics is "
				 "missing");
	if (!json_object_is_type(arr, json_type_array))
		return text_errf(err, errlen, -EINVAL,
				 "spec.scaling.metrics must "
				 "be a list");
	n = json_object_array_length(arr);
	if (n < 1 || n > AUTOSCALE_MAX_METRICS)
		return text_errf(err, errlen, -EINVAL,
				 "spec.scaling.metrics must "
				 "have 1 to %d entries",
				 AUTOSCALE_MAX_METRICS);
	for (size_t i = 0; i < n; i++) {
		r = parse_metric(json_object_array_get_idx(arr, i), i, s, err, errlen);
		if (r < 0)
			return r;
	}
	s->n_metrics = n;
	return 0;
}

static int parse_policy(json_object *p, const char *path, struct autoscale_policy *ret, char *err,
			size_t errlen)
{
	static const char *const types[] = { "Pods", "Percent" };
	int64_t value = 0, period = 0;
	int type = 0, r;

	if (!json_object_is_type(p, json_type_object))
		return text_errf(err, errlen, -EINVAL, "%s must be an object", path);
	r = get_enum(p, path, "type", types, 2, &type, err, errlen);
	if (r == 0)
		return text_errf(err, errlen, -EINVAL, "%s.type is missing", path);
	if (r > 0)
		r = scalingspec_get_int(p, path, "value", 1, 10000, &value, err, errlen);
	if (r == 0)
		return text_errf(err, errlen, -EINVAL, "%s.value is missing", path);
	if (r > 0)
		r = scalingspec_get_int(p, path, "periodSeconds", 1, 1800, &period, err, errlen);
	if (r == 0)
		return text_errf(err, errlen, -EINVAL,
				 "%s.periodSeconds is "
				 "missing",
				 path);
	if (r < 0)
		return r;
	*ret = (struct autoscale_policy){ type ? AUTOSCALE_POLICY_PERCENT : AUTOSCALE_POLICY_PODS,
					  (int32_t)value, (int32_t)period };
	return 0;
}

/* behavior.scaleUp or .scaleDown: each field given replaces the default. */
static int parse_rules(json_object *o, const char *dir, struct autoscale_rules *ret, char *err,
		       size_t errlen)
{
	static const char *const selects[] = { "Max", "Min", "Disabled" };
	json_object *pol;
	char path[64], ppath[96];
	int64_t window = 0;
	int sel = 0, r;

	snprintf(path, sizeof(path), "spec.scaling.behavior.%s", dir);
	if (!o)
		return 0;
	if (!json_object_is_type(o, json_type_object))
		return text_errf(err, errlen, -EINVAL, "%s must be an object", path);
	r = scalingspec_get_int(o, path, "stabilizationWindowSeconds", 0, 3600, &window, err, errlen);
	if (r < 0)
		return r;
	ret->set_window = r > 0;
	ret->stabilization_window_seconds = r > 0 ? (int32_t)window : 0;
	r = get_enum(o, path, "selectPolicy", selects, 3, &sel, err, errlen);
	if (r < 0)
		return r;
	ret->set_select = r > 0;
	ret->select = r > 0 ? (enum autoscale_select)sel : AUTOSCALE_SELECT_MAX;
	pol = scalingspec_field(o, "policies");
	if (!pol)
		return 0;
	if (!json_object_is_type(pol, json_type_array))
		return text_errf(err, errlen, -EINVAL, "%s.policies must be a list", path);
	ret->set_policies = true;
	ret->n_policies = json_object_array_length(pol);
	if (ret->n_policies < 1 || ret->n_policies > AUTOSCALE_MAX_POLICIES)
		return text_errf(err, errlen, -EINVAL,
				 "%s.policies must have 1 to "
				 "%d entries",
				 path, AUTOSCALE_MAX_POLICIES);
	for (size_t i = 0; i < ret->n_policies; i++) {
		snprintf(ppath, sizeof(ppath), "%s.policies[%zu]", path, i);
		r = parse_policy(json_object_array_get_idx(pol, i), ppath, &ret->policies[i], err,
				 errlen);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_behavior(json_object *scaling, struct autoscale_spec *s, char *err, size_t errlen)
{
	json_object *b = scalingspec_field(scaling, "behavior");
	int r;

	if (!b)
		return 0;
	if (!json_object_is_type(b, json_type_object))
		return text_errf(err, errlen, -EINVAL,
				 "spec.scaling.behavior must "
				 "be an object");
	r = parse_rules(scalingspec_field(b, "scaleUp"), "scaleUp", &s->behavior.scale_up, err,
			errlen);
	if (r == 0)
		r = parse_rules(scalingspec_field(b, "scaleDown"), "scaleDown",
				&s->behavior.scale_down, err, errlen);
	return r;
}

int scalingspec_scale_to_zero(json_object *scaling, struct scaletozero *ret, char *err, size_t errlen)
{
	static const char path[] = "spec.scaling.scaleToZero";
	json_object *o = scalingspec_field(scaling, "scaleToZero");
	struct scaletozero z = { .idle_seconds = SCALETOZERO_IDLE_S_DEFAULT,
				 .max_pending_requests = SCALETOZERO_MAX_PENDING_DEFAULT };
	int64_t v;
	int r;

	if (!o) {
		*ret = (struct scaletozero){ 0 };
		return 0;
	}
	if (!json_object_is_type(o, json_type_object))
		return text_errf(err, errlen, -EINVAL, "%s must be an object", path);
	z.set = true;
	r = scalingspec_get_int(o, path, "idleSeconds", 1, SCALETOZERO_IDLE_S_MAX, &v, err, errlen);
	if (r > 0)
		z.idle_seconds = (int32_t)v;
	if (r >= 0)
		r = scalingspec_get_int(o, path, "maxPendingRequests", 1,
					SCALETOZERO_MAX_PENDING_MAX, &v, err, errlen);
	if (r > 0)
		z.max_pending_requests = (int32_t)v;
	if (r >= 0)
		r = scalingspec_get_int(o, path, "activationTimeoutSeconds", 1,
					SCALETOZERO_ACTIVATION_TIMEOUT_S_MAX, &v, err, errlen);
	if (r > 0)
		z.activation_timeout_seconds = (int32_t)v;
	if (r < 0)
		return r;
	*ret = z;
	return 0;
}

int scalingspec_from_json(json_object *scaling, struct scalingspec *ret, char *err, size_t errlen)
{
	static const char path[] = "spec.scaling";
	struct scalingspec sc;
	char why[160];
	int64_t v;
	int r;

	if (!ret)
		return -EINVAL;
	memset(&sc, 0, sizeof(sc));
	sc.interval_seconds = DEFAULT_INTERVAL;
	sc.spec.min_replicas = 1;
	if (!scaling || !json_object_is_type(scaling, json_type_object))
		return text_errf(err, errlen, -EINVAL,
				 "spec.scaling must be an "
				 "object");
	r = scalingspec_get_int(scaling, path, "minReplicas", 0, MAX_CRD_REPLICAS, &v, err, errlen);
	if (r > 0)
		sc.spec.min_replicas = (int32_t)v;
	if (r >= 0)
		r = scalingspec_get_int(scaling, path, "maxReplicas", 1, MAX_CRD_REPLICAS, &v, err,
					errlen);
	if (r == 0)
		return text_errf(err, errlen, -EINVAL,
				 "spec.scaling.maxReplicas is "
				 "missing");
	if (r < 0)
		return r;
	sc.spec.max_replicas = (int32_t)v;
	r = parse_metrics(scaling, &sc.spec, err, errlen);
	if (r == 0)
		r = get_number(scaling, path, "tolerance", 0, false, 1, &sc.spec.tolerance, err,
			       errlen);
	if (r < 0)
		return r;
	sc.spec.set_tolerance = r > 0;
	r = scalingspec_get_int(scaling, path, "evaluationIntervalSeconds", 1, 300, &v, err, errlen);
	if (r > 0)
		sc.interval_seconds = (int32_t)v;
	if (r >= 0)
		r = parse_behavior(scaling, &sc.spec, err, errlen);
	if (r >= 0)
		r = controls_read(scaling, &sc.spec, err, errlen);
	if (r >= 0)
		r = scalingspec_scale_to_zero(scaling, &sc.scale_to_zero, err, errlen);
	if (r < 0)
		return r;
	if (autoscale_spec_check(&sc.spec, why, sizeof(why)) < 0)
		return text_errf(err, errlen, -EINVAL, "spec.scaling: %s", why);
	*ret = sc;
	return 0;
}
