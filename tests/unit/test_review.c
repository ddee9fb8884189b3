/*
 * review: AdmissionReview v1 in, the API server's answer out. Requests
 * recorded from kube-apiserver v1.33.13 (tests/data/admission: what it sent
 * to a webhook for kubectl apply and kubectl patch, and for a Deployment's
 * scale by the HPA controller and kubectl scale, and for an
 * InferenceService's by kubectl scale), decode errors (400/413
 * with a reason),
 * denials with every violation, warnings, and the mutating JSONPatch.
 */
#include "unit.h"

#include "base64.h"
#include "cache.h"
#include "review.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_object *serve(const char *body, size_t len, enum review_mode mode,
			  struct review_result *r)
{
	assert_int_equal(review_serve(body, len, mode, r), 0);
	assert_non_null(r->body);
	if (r->http_code != 200)
		return NULL;
	assert_string_equal(r->content_type, "application/json");
	json_object *o = json_tokener_parse(r->body);
	assert_non_null(o);
	assert_string_equal(cache_json_str(o, "apiVersion"), "admission.k8s.io/v1");
	assert_string_equal(cache_json_str(o, "kind"), "AdmissionReview");
	return o;
}

static bool allowed(json_object *o)
{
	json_object *a = cache_json_get(o, "response.allowed");
	assert_non_null(a);
	return json_object_get_boolean(a);
}

static void recorded_create_denied(void **state)
{
	struct review_result r;
	size_t len;
	char *body = test_read_data("admission/review-create-bad.json", &len);
	(void)state;
	assert_non_null(body);
	json_object *o = serve(body, len, REVIEW_VALIDATE, &r);
	assert_string_equal(cache_json_str(o, "response.uid"),
			    "9ca923b7-254f-4515-a1a7-b1fbfdd9126e");
	assert_false(allowed(o));
	assert_int_equal(cache_json_int(o, "response.status.code", 0), 422);
	assert_string_equal(
		cache_json_str(o, "response.status.message"),
		"spec.resources.gpu.memory: 20Gi exceeds the 16Gi of Tesla-T4; "
		"spec.scaling.metrics[0].type: KVCacheUtilization is not exported by tgi (it has "
		"QueueDepth, Concurrency, RequestsPerSecond, LatencyP99); "
		"spec.image: \"ghcr.io/Hugging Face/tgi\" is not a valid image reference "
		"(registry/path:tag or @sha256:digest); "
		"spec.scheduling.tolerations[0].key: \"bad key\" is not a valid label key");
	assert_string_equal(r.decision, "denied");
	assert_int_equal(r.n_errors, 4);
	assert_string_equal(r.uid, "9ca923b7-254f-4515-a1a7-b1fbfdd9126e");
	assert_string_equal(r.object, "serving/big");
	assert_string_equal(r.operation, "CREATE");
	json_object_put(o);
	review_result_done(&r);
	/* The mutating webhook defaults the same object. */
	o = serve(body, len, REVIEW_MUTATE, &r);
	assert_true(allowed(o));
	assert_string_equal(cache_json_str(o, "response.patchType"), "JSONPatch");
	const char *b64 = cache_json_str(o, "response.patch");
	assert_non_null(b64);
	unsigned char *raw;
	size_t n;
	assert_int_equal(base64_decode(b64, strlen(b64), &raw, &n), 0);
	json_object *patch = json_tokener_parse((char *)raw);
	assert_true(json_object_is_type(patch, json_type_array));
	assert_int_equal(json_object_array_length(patch), r.n_patch_ops);
	bool port = false;
	for (size_t i = 0; i < json_object_array_length(patch); i++) {
		json_object *op = json_object_array_get_idx(patch, i);
		assert_string_equal(cache_json_str(op, "op"), "add");
		assert_string_not_equal(cache_json_str(op, "path"), "/spec/image"); /* the user's */
		if (strcmp(cache_json_str(op, "path"), "/spec/port") == 0) {
			assert_int_equal(json_object_get_int(cache_json_get(op, "value")), 8080);
			port = true;
		}
	}
	assert_true(port);
	assert_string_equal(r.decision, "patched");
	json_object_put(patch);
	free(raw);
	json_object_put(o);
	review_result_done(&r);
	free(body);
}

static void recorded_update_immutable(void **state)
{
	struct review_result r;
	size_t len;
	char *body = test_read_data("admission/review-update-framework.json", &len);
	(void)state;
	json_object *o = serve(body, len, REVIEW_VALIDATE, &r);
	assert_false(allowed(o));
	assert_string_equal(cache_json_str(o, "response.status.message"),
			    "spec.resources.gpu.sharing: is immutable (exclusive -> mig); create a new "
			    "InferenceService to change it");
	json_object_put(o);
	review_result_done(&r);
	free(body);
}

static void recorded_create_allowed(void **state)
{
	struct review_result r;
	size_t len;
	char *body = test_read_data("admission/review-create-good.json", &len);
	(void)state;
	json_object *o = serve(body, len, REVIEW_VALIDATE, &r);
	assert_true(allowed(o));
	assert_null(cache_json_get(o, "response.status"));
	assert_null(cache_json_get(o, "response.warnings"));
	json_object_put(o);
	review_result_done(&r);
	o = serve(body, len, REVIEW_MUTATE, &r);
	const char *b64 = cache_json_str(o, "response.patch");
	unsigned char *raw;
	size_t n;
	assert_int_equal(base64_decode(b64, strlen(b64), &raw, &n), 0);
	assert_non_null(strstr(
		(char *)raw,
		"{\"op\":\"add\",\"path\":\"/spec/image\",\"value\":\"vllm/vllm-openai:v0.6.3\"}"));
	free(raw);
	json_object_put(o);
	review_result_done(&r);
	free(body);
}

static void warnings_when_allowed(void **state)
{
	const char *body =
		"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{"
		"\"uid\":\"u1\",\"operation\":\"CREATE\",\"namespace\":\"ns\",\"name\":\"w\","
		"\"kind\":{\"group\":\"kinfer.io\",\"version\":\"v1alpha1\",\"kind\":\"InferenceService\"},"
		"\"object\":{\"apiVersion\":\"kinfer.io/v1alpha1\",\"kind\":\"InferenceService\","
		"\"metadata\":{\"name\":\"w\"},\"spec\":{\"model\":{\"name\":\"m\",\"uri\":\"s3://m\"},"
		"\"image\":\"vllm/vllm-openai:latest\"}}}}\n";
	struct review_result r;
	(void)state;
	json_object *o = serve(body, strlen(body), REVIEW_VALIDATE, &r);
	assert_true(allowed(o));
	assert_null(cache_json_get(o, "response.status"));
	json_object *w = cache_json_get(o, "response.warnings");
	assert_int_equal(json_object_array_length(w), 1);
	assert_non_null(strstr(json_object_get_string(json_object_array_get_idx(w, 0)),
			       "spec.image: vllm/vllm-openai:latest has no version tag"));
	json_object_put(o);
	review_result_done(&r);
}

static void other_kinds_and_operations(void **state)
{
	const char *pod =
		"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{"
		"\"uid\":\"u2\",\"operation\":\"CREATE\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"
		"\"object\":{}}}";
	const char *del =
		"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{"
		"\"uid\":\"u3\",\"operation\":\"DELETE\",\"kind\":{\"group\":\"kinfer.io\",\"version\":\"v1alpha1\","
		"\"kind\":\"InferenceService\"},\"oldObject\":{}}}";
	struct review_result r;
	(void)state;
	json_object *o = serve(pod, strlen(pod), REVIEW_VALIDATE, &r);
	assert_false(allowed(o));
	assert_string_equal(cache_json_str(o, "response.uid"), "u2");
	assert_non_null(strstr(cache_json_str(o, "response.status.message"),
			       "kinfer's webhook admits kinfer.io InferenceService, not Pod"));
	json_object_put(o);
	review_result_done(&r);
	o = serve(del, strlen(del), REVIEW_MUTATE, &r);
	assert_true(allowed(o));
	assert_null(cache_json_get(o, "response.patch"));
	json_object_put(o);
	review_result_done(&r);
}

/* The lookups, recording what they were asked and answering as told. */
struct owner_probe {
	int answer;
	unsigned calls, scaling_calls;
	char ns[64], name[64];
};

static int probe_owner(void *ud, const char *ns, const char *name, char *isvc, size_t len)
{
	struct owner_probe *p = ud;
	p->calls++;
	snprintf(p->ns, sizeof(p->ns), "%s", ns);
	snprintf(p->name, sizeof(p->name), "%s", name);
	if (p->answer == 1)
		snprintf(isvc, len, "%s", name);
	return p->answer;
}

static int probe_scaling(void *ud, const char *ns, const char *name, int32_t *min, int32_t *max)
{
	struct owner_probe *p = ud;
	p->scaling_calls++;
	snprintf(p->ns, sizeof(p->ns), "%s", ns);
	snprintf(p->name, sizeof(p->name), "%s", name);
	*min = 1;
	*max = 4;
	return p->answer;
}

static json_object *serve_scale(const char *body, int answer, struct owner_probe *p,
				struct review_result *r)
{
	struct review_lookup l = { probe_owner, probe_scaling, p };
	memset(p, 0, sizeof(*p));
	p->answer = answer;
	assert_int_equal(review_serve_with(body, strlen(body), REVIEW_SCALE, &l, r), 0);
	assert_int_equal(r->http_code, 200);
	json_object *j = json_tokener_parse(r->body);
	assert_non_null(j);
	return j;
}

/* What the HPA controller (PUT, 1 -> 3) and kubectl scale (PATCH, 2 -> 1)
 * sent for an apps/v1 Deployment's scale, recorded from kube-apiserver
 * v1.33.13: refused when the Deployment is an InferenceService's, naming
 * it and the way to scale it. */
static void recorded_scale_refused(void **state)
{
	static const struct {
		const char *file, *uid, *want;
	} cases[] = {
		{ "admission/review-scale-hpa.json", "ca3ab1bd-a211-45e9-9a02-44618dc87556",
		  "--replicas=3" },
		{ "admission/review-scale-kubectl.json", "9ee062bd-f76b-4923-a4f4-cdab9912f06b",
		  "--replicas=1" },
	};
	struct owner_probe p;
	struct review_result r;
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		char *body = test_read_data(cases[i].file, &len);
		assert_non_null(body);
		json_object *o = serve_scale(body, 1, &p, &r);
		assert_int_equal(p.calls, 1);
		assert_int_equal(p.scaling_calls, 0);
		assert_string_equal(p.ns, "rec");
		assert_string_equal(p.name, "llm");
		assert_false(allowed(o));
		assert_non_null(strstr(cache_json_str(o, "response.uid"), cases[i].uid));
		assert_int_equal(cache_json_int(o, "response.status.code", 0), 403);
		assert_string_equal(cache_json_str(o, "response.status.reason"), "Forbidden");
		const char *msg = cache_json_str(o, "response.status.message");
		assert_non_null(strstr(msg, "Deployment rec/llm belongs to InferenceService llm: "
					    "kinfer sets its replicas and drains each pod"));
		assert_non_null(strstr(msg, "kubectl scale inferenceservice llm -n rec"));
		assert_non_null(strstr(msg, cases[i].want));
		assert_non_null(strstr(msg, "apiVersion kinfer.io/v1alpha1, kind InferenceService, "
					    "name llm"));
		assert_string_equal(r.decision, "denied");
		assert_string_equal(r.operation, "UPDATE");
		assert_string_equal(r.object, "rec/llm");
		json_object_put(o);
		review_result_done(&r);
		/* Not kinfer's, or not known yet: allowed, with no status. */
		for (int answer = 0; answer >= -EAGAIN; answer -= EAGAIN) {
			o = serve_scale(body, answer, &p, &r);
			assert_int_equal(p.calls, 1);
			assert_true(allowed(o));
			assert_null(cache_json_get(o, "response.status"));
			assert_string_equal(r.decision, "allowed");
			json_object_put(o);
			review_result_done(&r);
		}
		/* No lookup at all (review_serve): allowed. */
		assert_int_equal(review_serve(body, len, REVIEW_SCALE, &r), 0);
		assert_non_null(strstr(r.body, "\"allowed\":true"));
		review_result_done(&r);
		free(body);
	}
}

/* What kubectl scale inferenceservice (1 -> 3) sent, recorded from
 * kube-apiserver v1.33.13: refused while spec.scaling is set (spec.replicas
 * would be ignored), naming the bounds and the ways to get a count;
 * allowed without spec.scaling, and when the spec cannot be told. */
static void recorded_isvc_scale(void **state)
{
	struct owner_probe p;
	struct review_result r;
	size_t len;
	char *body = test_read_data("admission/review-scale-isvc.json", &len);
	(void)state;
	assert_non_null(body);
	json_object *o = serve_scale(body, 1, &p, &r);
	assert_int_equal(p.scaling_calls, 1);
	assert_int_equal(p.calls, 0);
	assert_string_equal(p.ns, "rec2");
	assert_string_equal(p.name, "llm");
	assert_false(allowed(o));
	assert_string_equal(cache_json_str(o, "response.uid"),
			    "abe68398-f417-4f55-9b55-4ca930df2cee");
	assert_int_equal(cache_json_int(o, "response.status.code", 0), 403);
	const char *msg = cache_json_str(o, "response.status.message");
	assert_non_null(strstr(msg, "InferenceService rec2/llm scales itself: spec.scaling (1 to 4 "
				    "replicas) decides its replicas, and spec.replicas, which this "
				    "scale sets (to 3), is ignored"));
	assert_non_null(strstr(msg, "kubectl annotate inferenceservice llm -n rec2 "
				    "kinfer.io/paused-replicas=3"));
	assert_non_null(strstr(msg, "or remove spec.scaling"));
	assert_string_equal(r.decision, "denied");
	json_object_put(o);
	review_result_done(&r);
	for (int answer = 0; answer >= -EAGAIN; answer -= EAGAIN) {
		o = serve_scale(body, answer, &p, &r);
		assert_int_equal(p.scaling_calls, 1);
		assert_true(allowed(o));
		assert_null(cache_json_get(o, "response.status"));
		assert_non_null(strstr(r.reason, answer == 0 ? "no spec.scaling" : "not checked"));
		json_object_put(o);
		review_result_done(&r);
	}
	free(body);
}

/* The recorded HPA review with one field set to a JSON value (NULL:
 * removed), as text. */
static char *scale_with(const char *path, const char *key, json_object *value)
{
	size_t len;
	char *body = test_read_data("admission/review-scale-hpa.json", &len);
	json_object *root = json_tokener_parse(body), *at = cache_json_get(root, path);
	assert_non_null(at);
	if (value)
		json_object_object_add(at, key, value);
	else
		json_object_object_del(at, key);
	char *out = strdup(json_object_to_json_string(root));
	json_object_put(root);
	free(body);
	return out;
}

/* What the scale webhook lets through without asking whose the Deployment
 * is: another resource or subresource a misconfigured rule sends, another
 * operation, the same count, no count or an odd one. Never refused: this
 * webhook must not stand in another workload's way. */
static void scale_not_checked(void **state)
{
	struct {
		const char *path, *key;
		json_object *value;
		const char *reason;
	} cases[] = {
		{ "request.resource", "resource", json_object_new_string("statefulsets"),
		  "not a Deployment's or InferenceService's scale" },
		{ "request.resource", "group", json_object_new_string("extensions"),
		  "not a Deployment's or InferenceService's scale" },
		{ "request.resource", "group", json_object_new_string("kinfer.io"),
		  "not a Deployment's or InferenceService's scale" },
		{ "request", "subResource", json_object_new_string("status"),
		  "not a Deployment's or InferenceService's scale" },
		{ "request", "subResource", NULL, "not a Deployment's or InferenceService's scale" },
		{ "request", "operation", json_object_new_string("CREATE"), "only UPDATE" },
		{ "request", "namespace", json_object_new_string(""), "no namespace or name" },
		{ "request.object.spec", "replicas", json_object_new_int(1), "replicas unchanged" },
		{ "request.object.spec", "replicas", NULL, "no spec.replicas" },
		{ "request.object.spec", "replicas", json_object_new_string("3"), "no spec.replicas" },
		{ "request.object.spec", "replicas", json_object_new_int(-1), "no spec.replicas" },
		{ "request.object.spec", "replicas", json_object_new_int64(1LL << 40),
		  "no spec.replicas" },
		{ "request.object", "spec", json_object_new_array(), "no spec.replicas" },
	};
	struct owner_probe p;
	struct review_result r;
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *body = scale_with(cases[i].path, cases[i].key, cases[i].value);
		json_object *o = serve_scale(body, 1, &p, &r);
		if (!allowed(o) || !strstr(r.reason, cases[i].reason))
			fprintf(stderr, "case %zu: %s\n", i, r.reason);
		assert_true(allowed(o));
		assert_int_equal(p.calls + p.scaling_calls, 0);
		assert_non_null(strstr(r.reason, cases[i].reason));
		json_object_put(o);
		review_result_done(&r);
		free(body);
	}
	/* A count that was absent before is a change: asked, and refused. */
	char *body = scale_with("request.oldObject", "spec", NULL);
	json_object *o = serve_scale(body, 1, &p, &r);
	assert_false(allowed(o));
	assert_int_equal(p.calls, 1);
	json_object_put(o);
	review_result_done(&r);
	free(body);
}

static void expect_bad(const char *body, size_t len, unsigned code, const char *text)
{
	struct review_result r;
	assert_null(serve(body, len, REVIEW_VALIDATE, &r));
	assert_int_equal(r.http_code, code);
	assert_string_equal(r.decision, "bad-request");
	if (!strstr(r.body, text))
		fprintf(stderr, "body: %s\n", r.body);
	assert_non_null(strstr(r.body, text));
	review_result_done(&r);
}

static void decode_errors(void **state)
{
	(void)state;
	expect_bad("", 0, 400, "empty request body: want an AdmissionReview");
	expect_bad("{\"apiVersion\": ", 15, 400,
		   "malformed JSON at byte 15: unexpected end of input");
	expect_bad("{} {}", 5, 400, "malformed JSON at byte 3: trailing data");
	expect_bad("[1,2]", 5, 400,
		   "want kind AdmissionReview of apiVersion admission.k8s.io/v1, got kind \"\"");
	const char *v1b1 =
		"{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"x\"}}";
	expect_bad(v1b1, strlen(v1b1), 400,
		   "want kind AdmissionReview of apiVersion admission.k8s.io/v1, got kind \"AdmissionReview\" of apiVersion \"admission.k8s.io/v1beta1\"");
	const char *nouid =
		"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":5}}";
	expect_bad(nouid, strlen(nouid), 400, "AdmissionReview without request.uid");
	/* Nesting deeper than the tokener's bound. */
	char deep[300];
	memset(deep, '[', 200);
	deep[200] = '\0';
	expect_bad(deep, 200, 400, "malformed JSON at byte");
	/* Over the size bound: refused before parsing. */
	size_t big = REVIEW_MAX_BODY + 1;
	char *huge = malloc(big);
	memset(huge, ' ', big);
	expect_bad(huge, big, 413, "over the 3145728-byte limit");
	free(huge);
	/* An object that is not an object. */
	const char *noobj =
		"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{"
		"\"uid\":\"u4\",\"operation\":\"CREATE\",\"kind\":{\"group\":\"kinfer.io\",\"kind\":\"InferenceService\"},"
		"\"object\":\"x\"}}";
	struct review_result r;
	json_object *o = serve(noobj, strlen(noobj), REVIEW_VALIDATE, &r);
	assert_false(allowed(o));
	assert_string_equal(cache_json_str(o, "response.status.message"),
			    "request.object: required for CREATE and UPDATE");
	json_object_put(o);
	review_result_done(&r);
}

/* Issue 12 item 1: what the informers could not read is refused, naming
 * the field, whether or not the review fits json-c's tokener. */
static void deep_object_refused(void **state)
{
	static const size_t depths[] = { 40, 5000 };
	(void)state;
	for (size_t k = 0; k < 2; k++) {
		size_t d = depths[k], cap = d * 8 + 1024, n = 0;
		char *body = malloc(cap);
		assert_non_null(body);
		n += (size_t)snprintf(
			body + n, cap - n,
			"{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{"
			"\"uid\":\"u-deep\",\"operation\":\"CREATE\",\"namespace\":\"ns\",\"name\":\"d\","
			"\"kind\":{\"group\":\"kinfer.io\",\"version\":\"v1alpha1\",\"kind\":\"InferenceService\"},"
			"\"object\":{\"apiVersion\":\"kinfer.io/v1alpha1\",\"kind\":\"InferenceService\","
			"\"metadata\":{\"name\":\"d\"},\"spec\":{\"model\":{\"name\":\"m\",\"uri\":\"s3://m\"},"
			"\"warmup\":{\"path\":\"/v1/completions\",\"body\":");
		for (size_t i = 0; i < d; i++)
			n += (size_t)snprintf(body + n, cap - n, "{\"a\":");
		n += (size_t)snprintf(body + n, cap - n, "1");
		for (size_t i = 0; i < d; i++)
			body[n++] = '}';
		n += (size_t)snprintf(body + n, cap - n, "}}}}}");
		for (int mode = 0; mode < 2; mode++) {
			struct review_result r;
			json_object *o = serve(body, n, mode ? REVIEW_MUTATE : REVIEW_VALIDATE, &r);
			assert_non_null(o);
			if (mode) {
				/* Mutating: neither defaulted nor refused; validating says no. */
				assert_true(allowed(o));
				assert_null(cache_json_get(o, "response.patch"));
				json_object_put(o);
				review_result_done(&r);
				continue;
			}
			assert_false(allowed(o));
			assert_string_equal(cache_json_str(o, "response.uid"), "u-deep");
			const char *msg = cache_json_str(o, "response.status.message");
			if (!strstr(msg, "spec.warmup.body.a.a.a") ||
			    !strstr(msg, "nested deeper than 32 levels"))
				fprintf(stderr, "message: %s\n", msg);
			assert_non_null(strstr(msg, "spec.warmup.body.a.a.a"));
			assert_non_null(strstr(msg, "nested deeper than 32 levels"));
			json_object_put(o);
			review_result_done(&r);
		}
		free(body);
	}
}

int tests_review(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(recorded_create_denied),
		cmocka_unit_test(recorded_update_immutable),
		cmocka_unit_test(recorded_create_allowed),
		cmocka_unit_test(warnings_when_allowed),
		cmocka_unit_test(other_kinds_and_operations),
		cmocka_unit_test(decode_errors),
		cmocka_unit_test(deep_object_refused),
		cmocka_unit_test(recorded_scale_refused),
		cmocka_unit_test(scale_not_checked),
		cmocka_unit_test(recorded_isvc_scale),
	};
	return cmocka_run_group_tests_name("review", tests, NULL, NULL);
}
