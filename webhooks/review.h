/*
 * review: one AdmissionReview (admission.k8s.io/v1) in, one answer out.
 * A pure function of the request body, so the webhook server, the unit
 * tests, the fuzz target and the benchmark all drive the same code:
 *
 *   body -> decode (bounded, json-c) -> kind check -> admission_default
 *        (mutate) or admission_validate (validate) -> response JSON
 *
 * A body that is not an AdmissionReview v1 gets HTTP 400 with a plain
 * text reason (the API server shows it); a review of another kind, or an
 * object that breaks the rules, gets HTTP 200 with allowed false and the
 * reason in status.message, as the API expects.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REVIEW_MAX_BODY (3u << 20) /* the API server's own request limit is 3 MiB */

/*
 * REVIEW_SCALE answers an UPDATE of a scale subresource:
 * - a Deployment's (apps deployments/scale: kubectl scale, an HPA, KEDA):
 *   refused when the Deployment is an InferenceService's, which sets its
 *   replicas and drains each pod before it goes (a scale of the Deployment
 *   removes serving pods undrained);
 * - an InferenceService's (kinfer.io inferenceservices/scale): refused
 *   while its spec.scaling is set, which decides its replicas (the
 *   spec.replicas a scale writes would be ignored, silently).
 * Allowed for everything else, and whenever the answer cannot be told (the
 * webhook's failurePolicy is Ignore: a scale never waits on kinfer).
 */
enum review_mode { REVIEW_VALIDATE, REVIEW_MUTATE, REVIEW_SCALE };

/*
 * What REVIEW_SCALE asks of the operator's caches. Each returns a negative
 * errno when it cannot tell now (caches not synced, the operator stopping).
 */
struct review_lookup {
	/* Deployment ns/name: 1 with the InferenceService it belongs to in
	 * isvc (NUL-terminated within len), 0 when none. */
	int (*deployment_owner)(void *ud, const char *ns, const char *name, char *isvc, size_t len);
	/* InferenceService ns/name: 1 when its spec.scaling is set, with its
	 * replica bounds, 0 when not (or no such InferenceService). */
	int (*isvc_scaling)(void *ud, const char *ns, const char *name, int32_t *min, int32_t *max);
	void *ud;
};

struct review_result {
	unsigned http_code; /* 200, 400, 413, 500 */
	char *body;         /* malloc'ed response body, NUL-terminated */
	size_t body_len;
	const char *content_type;
	char uid[128];        /* the request's uid ("" when none) */
	char operation[16];   /* CREATE, UPDATE, ... ("" when none) */
	char object[300];     /* namespace/name as far as known */
	const char *decision; /* "allowed", "denied", "patched", "bad-request" */
	unsigned n_errors, n_warnings, n_patch_ops;
	char reason[512]; /* first error, or the bad-request reason */
};

/*
 * Answer one review. Returns 0 with *ret filled (the caller frees
 * ret->body with review_result_done), or -ENOMEM.
 */
int review_serve(const char *body, size_t len, enum review_mode mode, struct review_result *ret);
/* The same, with what REVIEW_SCALE asks (NULL or NULL functions: every
 * scale allowed). */
int review_serve_with(const char *body, size_t len, enum review_mode mode,
		      const struct review_lookup *lookup, struct review_result *ret);
void review_result_done(struct review_result *r);

/*
 * What answering a body of len bytes may hold at once: the body and an
 * estimate of the tree json-c builds from it (REVIEW_VALUE_COST bytes per
 * JSON value, counted without parsing). The webhook reserves it from its
 * memory budget first. A body with more than REVIEW_MAX_VALUES values is
 * refused by review_serve (400) before any tree is built.
 */
#define REVIEW_VALUE_COST 160
#define REVIEW_MAX_VALUES 200000
size_t review_values(const char *body, size_t len);
size_t review_cost(const char *body, size_t len);
