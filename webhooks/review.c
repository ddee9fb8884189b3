/*
 * AdmissionReview decoding and the response. The request is parsed with a
 * depth-bounded json_tokener; every field is read through type checks, so
 * any bytes give a 400 or an answer, never a crash.
 */
#include "review.h"

#include "admission.h"
#include "base64.h"
#include "cache.h"
#include "jsonscan.h"
#include "kube.h"
#include "text.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The object within KUBE_JSON_MAX_DEPTH, its managedFields and the
 * review's two levels of envelope always fit; a deeper review is answered
 * from the scanner (too_deep) without a tree. */
#define REVIEW_MAX_DEPTH KUBE_JSON_PARSE_DEPTH

static int bad_request(struct review_result *r, unsigned code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int bad_request(struct review_result *r, unsigned code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	r->http_code = code;
	r->decision = "bad-request";
	r->content_type = "text/plain; charset=utf-8";
	size_t n = strlen(r->reason);
	r->body = malloc(n + 2);
	if (!r->body)
		return -ENOMEM;
	memcpy(r->body, r->reason, n);
	r->body[n] = '\n';
	r->body[n + 1] = '\0';
	r->body_len = n + 1;
	return 0;
}

/* The response envelope with uid and allowed; the caller adds the rest. */
static json_object *envelope(const char *uid, bool allowed, json_object **ret_resp)
{
	json_object *root = json_object_new_object(), *resp = json_object_new_object();
	if (!root || !resp) {
		json_object_put(root);
		json_object_put(resp);
		return NULL;
	}
	json_object_object_add(root, "apiVersion", json_object_new_string("admission.k8s.io/v1"));
	json_object_object_add(root, "kind", json_object_new_string("AdmissionReview"));
	json_object_object_add(resp, "uid", json_object_new_string(uid));
	json_object_object_add(resp, "allowed", json_object_new_boolean(allowed));
	json_object_object_add(root, "response", resp);
	*ret_resp = resp;
	return root;
}

static void add_status(json_object *resp, int code, const char *reason, const char *message)
{
	json_object *st = json_object_new_object();
	json_object_object_add(st, "code", json_object_new_int(code));
	json_object_object_add(st, "reason", json_object_new_string(reason));
	json_object_object_add(st, "message", json_object_new_string(message));
	json_object_object_add(resp, "status", st);
}

static int finish(struct review_result *r, json_object *root)
{
	const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
								     JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!s || !(r->body = strdup(s))) {
		json_object_put(root);
		return -ENOMEM;
	}
	r->body_len = strlen(r->body);
	r->http_code = 200;
	r->content_type = "application/json";
	json_object_put(root);
	return 0;
}

static int answer_other(struct review_result *r, const char *uid, bool allowed, const char *message)
{
	json_object *resp, *root = envelope(uid, allowed, &resp);
	if (!root)
		return -ENOMEM;
	if (!allowed)
		add_status(resp, 400, "BadRequest", message);
	r->decision = allowed ? "allowed" : "denied";
	text_copy(r->reason, sizeof(r->reason), message);
	return finish(r, root);
}

static int answer_validate(struct review_result *r, const char *uid, json_object *obj,
			   json_object *old)
{
	struct admission_report *rep = NULL;
	json_object *resp, *root = NULL;
	char *msg = NULL;
	int ret = admission_report_new(&rep);
	if (ret < 0)
		return ret;
	ret = admission_validate_strict(obj, old, rep, false);
	if (ret < 0)
		goto out;
	r->n_errors = (unsigned)admission_report_n_errors(rep);
	r->n_warnings = (unsigned)admission_report_n_warnings(rep);
	ret = -ENOMEM;
	root = envelope(uid, r->n_errors == 0, &resp);
	if (!root)
		goto out;
	if (r->n_errors) {
		if (admission_report_message(rep, &msg) < 0)
			goto out;
		add_status(resp, 422, "Invalid", msg);
		text_copy(r->reason, sizeof(r->reason), admission_report_error(rep, 0));
	}
	if (r->n_warnings) {
		json_object *w = json_object_new_array();
		for (size_t i = 0; i < r->n_warnings; i++)
			json_object_array_add(w, json_object_new_string(
							 admission_report_warning(rep, i)));
		json_object_object_add(resp, "warnings", w);
	}
	r->decision = r->n_errors ? "denied" : "allowed";
	ret = finish(r, root);
	root = NULL;
out:
	json_object_put(root);
	free(msg);
	admission_report_free(rep);
	return ret;
}

static int answer_mutate(struct review_result *r, const char *uid, json_object *obj)
{
	json_object *patch = NULL, *resp, *root;
	char *b64 = NULL;
	size_t n;
	int ret = admission_default(obj, &patch);
	if (ret < 0)
		return ret;
	root = envelope(uid, true, &resp);
	if (!root) {
		json_object_put(patch);
		return -ENOMEM;
	}
	r->n_patch_ops = (unsigned)json_object_array_length(patch);
	if (r->n_patch_ops) {
		const char *ps = json_object_to_json_string_ext(
			patch, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		if (!ps || base64_encode((const unsigned char *)ps, strlen(ps), &b64, &n) < 0) {
			json_object_put(patch);
			json_object_put(root);
			return -ENOMEM;
		}
		json_object_object_add(resp, "patchType", json_object_new_string("JSONPatch"));
		json_object_object_add(resp, "patch", json_object_new_string(b64));
		free(b64);
	}
	json_object_put(patch);
	r->decision = r->n_patch_ops ? "patched" : "allowed";
	return finish(r, root);
}

/* request.object.spec.replicas, or -1 when it is not a 32-bit count. */
static int64_t scale_replicas(json_object *req, const char *which)
{
	json_object *o = cache_json_get(cache_json_get(req, which), "spec.replicas");
	int64_t v;

	if (!o || !json_object_is_type(o, json_type_int))
		return -1;
	v = json_object_get_int64(o);
	return v >= 0 && v <= INT32_MAX ? v : -1;
}

static int deny_scale(struct review_result *r, const char *uid, const char *msg)
{
	json_object *resp, *root = envelope(uid, false, &resp);
	if (!root)
		return -ENOMEM;
	add_status(resp, 403, "Forbidden", msg);
	r->decision = "denied";
	r->n_errors = 1;
	text_copy(r->reason, sizeof(r->reason), msg);
	return finish(r, root);
}

static int answer_deployment_scale(struct review_result *r, const char *uid, const char *ns,
				   const char *name, int64_t want, const struct review_lookup *lookup)
{
	char isvc[256], msg[2048];
	int o = lookup && lookup->deployment_owner ?
			lookup->deployment_owner(lookup->ud, ns, name, isvc, sizeof(isvc)) :
			-ENOENT;

	if (o < 0)
		return answer_other(r, uid, true, "owner unknown (caches not synced): not checked");
	if (o == 0)
		return answer_other(r, uid, true, "not an InferenceService's Deployment");
	snprintf(msg, sizeof(msg),
		 "Deployment %.63s/%.253s belongs to InferenceService %.253s: kinfer sets its "
		 "replicas and drains each pod before it goes, and scaling the Deployment "
		 "(to %lld) would bypass that (serving pods removed undrained). Scale the "
		 "InferenceService instead: kubectl scale inferenceservice %.253s -n %.63s "
		 "--replicas=%lld; an autoscaler's scaleTargetRef: apiVersion kinfer.io/v1alpha1, "
		 "kind InferenceService, name %.253s",
		 ns, name, isvc, (long long)want, isvc, ns, (long long)want, isvc);
	return deny_scale(r, uid, msg);
}

static int answer_isvc_scale(struct review_result *r, const char *uid, const char *ns,
			     const char *name, int64_t want, const struct review_lookup *lookup)
{
	char msg[2048];
	int32_t min = 0, max = 0;
	int o = lookup && lookup->isvc_scaling ?
			lookup->isvc_scaling(lookup->ud, ns, name, &min, &max) :
			-ENOENT;

	if (o < 0)
		return answer_other(r, uid, true, "spec unknown (caches not synced): not checked");
	if (o == 0)
		return answer_other(r, uid, true, "no spec.scaling: spec.replicas applies");
	snprintf(msg, sizeof(msg),
		 "InferenceService %.63s/%.253s scales itself: spec.scaling (%d to %d replicas) "
		 "decides its replicas, and spec.replicas, which this scale sets (to %lld), is "
		 "ignored while it is there. Change spec.scaling.minReplicas and maxReplicas, pin "
		 "a count with kubectl annotate inferenceservice %.253s -n %.63s "
		 "kinfer.io/paused-replicas=%lld, or remove spec.scaling to scale it this way "
		 "(by hand, or by the autoscaler that sent this)",
		 ns, name, (int)min, (int)max, (long long)want, name, ns, (long long)want);
	return deny_scale(r, uid, msg);
}

static int answer_scale(struct review_result *r, const char *uid, json_object *req, const char *op,
			const struct review_lookup *lookup)
{
	const char *ns = cache_json_str(req, "namespace"), *name = cache_json_str(req, "name");
	const char *group = cache_json_str(req, "resource.group");
	const char *res = cache_json_str(req, "resource.resource");
	bool dep = text_same(group, "apps") && text_same(res, "deployments");
	bool isvc = text_same(group, "kinfer.io") && text_same(res, "inferenceservices");
	int64_t want, had;

	/* Anything else a misconfigured rule sends is let through: this
	 * webhook must never stand in another workload's way. */
	if ((!dep && !isvc) || !text_same(cache_json_str(req, "subResource"), "scale"))
		return answer_other(r, uid, true,
				    "not a Deployment's or InferenceService's scale: not checked");
	if (!text_same(op, "UPDATE"))
		return answer_other(r, uid, true, "only UPDATE is checked");
	if (!ns || !*ns || !name || !*name)
		return answer_other(r, uid, true, "no namespace or name: not checked");
	want = scale_replicas(req, "object");
	had = scale_replicas(req, "oldObject");
	if (want < 0)
		return answer_other(r, uid, true, "no spec.replicas: not checked");
	if (want == had)
		return answer_other(r, uid, true, "replicas unchanged");
	return dep ? answer_deployment_scale(r, uid, ns, name, want, lookup) :
		     answer_isvc_scale(r, uid, ns, name, want, lookup);
}

/*
 * An InferenceService nested past KUBE_JSON_MAX_DEPTH is refused before
 * any tree is built, naming the field: the scanner finds request.uid, the
 * kind and the path. 1 when answered, 0 to go on, -ENOMEM.
 */
static int too_deep(const char *body, size_t len, enum review_mode mode, struct review_result *r)
{
	char uid[128], kind[64], op[16], path[256], msg[ADMISSION_MAX_MESSAGE];
	size_t os, oe;
	int ret;

	if (jsonscan_path(body, len, 0, "request.object", &os, &oe) < 0 ||
	    kube_json_too_deep(body + os, oe - os, path, sizeof(path)) != 1 ||
	    jsonscan_string(body, len, 0, "request.uid", uid, sizeof(uid)) < 0 || !uid[0] ||
	    jsonscan_string(body, len, 0, "request.kind.kind", kind, sizeof(kind)) < 0 ||
	    strcmp(kind, "InferenceService") != 0 ||
	    jsonscan_string(body, len, 0, "request.operation", op, sizeof(op)) < 0 ||
	    (strcmp(op, "CREATE") != 0 && strcmp(op, "UPDATE") != 0))
		return 0;
	text_copy(r->uid, sizeof(r->uid), uid);
	text_copy(r->operation, sizeof(r->operation), op);
	if (mode == REVIEW_MUTATE) {
		/* Not defaulted, not refused here: the validating webhook refuses
		 * it with the reason (one place says no). */
		ret = answer_other(r, uid, true, "not defaulted: nested too deep");
		return ret < 0 ? ret : 1;
	}
	admission_too_deep_message(path, msg, sizeof(msg));
	r->n_errors = 1;
	ret = answer_other(r, uid, false, msg);
	return ret < 0 ? ret : 1;
}

size_t review_values(const char *body, size_t len)
{
	size_t n = 1;
	bool in_str = false;
	for (size_t i = 0; i < len; i++) {
		char ch = body[i];
		if (in_str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_str = false;
		} else if (ch == '"') {
			in_str = true;
		} else if (ch == ',' || ch == ':' || ch == '[' || ch == '{') {
			n++;
		}
	}
	return n;
}

size_t review_cost(const char *body, size_t len)
{
	return len + 1 + review_values(body, len) * REVIEW_VALUE_COST;
}

int review_serve(const char *body, size_t len, enum review_mode mode, struct review_result *r)
{
	return review_serve_with(body, len, mode, NULL, r);
}

int review_serve_with(const char *body, size_t len, enum review_mode mode,
		      const struct review_lookup *lookup, struct review_result *r)
{
	struct json_tokener *tok;
	json_object *root = NULL, *req;
	const char *av, *kind, *uid, *op;
	int ret;

	memset(r, 0, sizeof(*r));
	if (len > REVIEW_MAX_BODY)
		return bad_request(r, 413, "request body of %zu bytes is over the %u-byte limit",
				   len, REVIEW_MAX_BODY);
	if (len == 0)
		return bad_request(r, 400, "empty request body: want an AdmissionReview");
	size_t values = review_values(body, len);
	if (values > REVIEW_MAX_VALUES)
		return bad_request(r, 400,
				   "request body has about %zu JSON values, over the %u-value "
				   "limit",
				   values, REVIEW_MAX_VALUES);
	ret = too_deep(body, len, mode, r);
	if (ret != 0)
		return ret < 0 ? ret : 0;
	tok = json_tokener_new_ex(REVIEW_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	root = json_tokener_parse_ex(tok, body, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t end = tok->char_offset > 0 ? (size_t)tok->char_offset : 0;
	while (root && jerr == json_tokener_success && end < len && strchr(" \t\r\n", body[end]) &&
	       body[end])
		end++;
	if (!root || jerr != json_tokener_success || end != len) {
		size_t off = (size_t)tok->char_offset;
		const char *why = jerr == json_tokener_success  ? "trailing data" :
				  jerr == json_tokener_continue ? "unexpected end of input" :
								  json_tokener_error_desc(jerr);
		json_tokener_free(tok);
		json_object_put(root);
		return bad_request(r, 400, "malformed JSON at byte %zu: %s", off, why);
	}
	json_tokener_free(tok);
	av = cache_json_str(root, "apiVersion");
	kind = cache_json_str(root, "kind");
	if (!kind || strcmp(kind, "AdmissionReview") != 0 || !av ||
	    strcmp(av, "admission.k8s.io/v1") != 0) {
		ret = bad_request(r, 400,
				  "want kind AdmissionReview of apiVersion admission.k8s.io/v1, "
				  "got kind \"%s\" of apiVersion \"%s\"",
				  kind ? kind : "", av ? av : "");
		goto out;
	}
	req = cache_json_get(root, "request");
	uid = cache_json_str(req, "uid");
	if (!req || !json_object_is_type(req, json_type_object) || !uid || !*uid) {
		ret = bad_request(r, 400, "AdmissionReview without request.uid");
		goto out;
	}
	text_copy(r->uid, sizeof(r->uid), uid);
	op = cache_json_str(req, "operation");
	text_copy(r->operation, sizeof(r->operation), op);
	snprintf(r->object, sizeof(r->object), "%.120s/%.160s",
		 cache_json_str(req, "namespace") ? cache_json_str(req, "namespace") : "",
		 cache_json_str(req, "name") ? cache_json_str(req, "name") : "");
	if (mode == REVIEW_SCALE) {
		ret = answer_scale(r, uid, req, op, lookup);
		goto out;
	}
	const char *group = cache_json_str(req, "kind.group");
	const char *k = cache_json_str(req, "kind.kind");
	if (!group || strcmp(group, "kinfer.io") != 0 || !k || strcmp(k, "InferenceService") != 0) {
		char msg[400];
		snprintf(msg, sizeof(msg),
			 "kinfer's webhook admits kinfer.io InferenceService, not %.100s "
			 "of group \"%.100s\"; check the webhook configuration's rules",
			 k ? k : "(no kind)", group ? group : "");
		ret = answer_other(r, uid, false, msg);
		goto out;
	}
	if (!op || (strcmp(op, "CREATE") != 0 && strcmp(op, "UPDATE") != 0)) {
		ret = answer_other(r, uid, true, "only CREATE and UPDATE are checked");
		goto out;
	}
	json_object *obj = cache_json_get(req, "object");
	json_object *old = strcmp(op, "UPDATE") == 0 ? cache_json_get(req, "oldObject") : NULL;
	if (!obj || !json_object_is_type(obj, json_type_object)) {
		ret = answer_other(r, uid, false, "request.object: required for CREATE and UPDATE");
		goto out;
	}
	if (!cache_json_str(req, "name") && cache_json_str(obj, "metadata.name"))
		snprintf(r->object, sizeof(r->object), "%.120s/%.160s",
			 cache_json_str(req, "namespace") ? cache_json_str(req, "namespace") : "",
			 cache_json_str(obj, "metadata.name"));
	ret = mode == REVIEW_MUTATE ? answer_mutate(r, uid, obj) : answer_validate(r, uid, obj, old);
out:
	json_object_put(root);
	if (ret < 0)
		review_result_done(r);
	return ret;
}

void review_result_done(struct review_result *r)
{
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}
