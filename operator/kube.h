/*
 * The Kubernetes API client: libcurl (connection reuse, HTTP/2 over TLS
 * where the server offers it) and json-c.
 *
 * Every call is synchronous and thread-safe: reconcile workers share one
 * client. Each request waits for the client-side rate limiter (token
 * bucket), has a timeout, and retries what is safe to retry: 429 (honouring
 * Retry-After) for every verb; 5xx and connection failures for every verb
 * but POST, which is retried only when the request cannot have been
 * processed (connection refused, 429, 503). 409 Conflict is never retried
 * here: the caller re-reads and tries again.
 *
 * Results: 0 and, where asked, *ret_obj (the decoded body, the caller puts
 * it). On failure a negative errno that names the class of error, and the
 * server's metav1.Status in *ret_status when one is given:
 *
 *   -ENOENT NotFound          -EEXIST AlreadyExists   -ESTALE Conflict
 *   -EINVAL Invalid           -EIDRM  Gone/Expired    -EAGAIN TooManyRequests
 *   -EACCES Unauthorized      -EPERM  Forbidden       -EBADMSG BadRequest or
 *   -ETIMEDOUT timeouts       -EIO    5xx             an undecodable body
 *   -ECONNREFUSED transport   -EFBIG  a body over the bound
 *   -EPROTO anything else the server said no to, or a TLS certificate
 *           refused (the server's, ours: configuration, not the network; a
 *           handshake cut short is -ECONNREFUSED, a transport error)
 */
#pragma once

#include <json-c/json.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kubeconfig.h"

struct kube_client;

/*
 * How deeply a Kubernetes object may nest, counting its own braces as level
 * 1 and leaving out metadata.managedFields (which the API server writes,
 * mirroring every field about five levels deeper). One limit for every
 * reader: the informers skip an object past it (and say so), the webhook
 * and `validate` refuse one, naming the field, so what kinfer admits it can
 * also read.
 */
#define KUBE_JSON_MAX_DEPTH 32
/* The json-c tokener's depth for whole documents: an object within the
 * limit, its managedFields and an envelope (watch event, LIST page,
 * AdmissionReview: at most two levels) always fit. */
#define KUBE_JSON_PARSE_DEPTH (KUBE_JSON_MAX_DEPTH + 16)

/* Parse one JSON document of len bytes with KUBE_JSON_PARSE_DEPTH; NULL
 * when it is not one (trailing bytes other than whitespace included). */
json_object *kube_json_parse(const char *s, size_t len);
/* 0 when the object at s[0..len) is within KUBE_JSON_MAX_DEPTH, 1 with
 * the path of the first field past it in path, -EBADMSG for non-JSON. */
int kube_json_too_deep(const char *s, size_t len, char *path, size_t path_len);

/* One API resource: rows of a const table, never built at run time. */
struct kube_resource {
	const char *group; /* "" for the core group */
	const char *version;
	const char *kind;
	const char *plural;
	bool namespaced;
};

extern const struct kube_resource kube_res_configmaps;
extern const struct kube_resource kube_res_secrets;
extern const struct kube_resource kube_res_namespaces;
extern const struct kube_resource kube_res_pods;
extern const struct kube_resource kube_res_nodes;
extern const struct kube_resource kube_res_services;
extern const struct kube_resource kube_res_endpointslices;
extern const struct kube_resource kube_res_events;
extern const struct kube_resource kube_res_deployments;
extern const struct kube_resource kube_res_poddisruptionbudgets;
extern const struct kube_resource kube_res_hpas;
extern const struct kube_resource kube_res_leases;
extern const struct kube_resource kube_res_crds;
extern const struct kube_resource kube_res_inferenceservices;

enum kube_reason {
	KUBE_REASON_UNKNOWN,
	KUBE_REASON_NOT_FOUND,
	KUBE_REASON_ALREADY_EXISTS,
	KUBE_REASON_CONFLICT,
	KUBE_REASON_INVALID,
	KUBE_REASON_GONE,
	KUBE_REASON_EXPIRED,
	KUBE_REASON_TOO_MANY_REQUESTS,
	KUBE_REASON_UNAUTHORIZED,
	KUBE_REASON_FORBIDDEN,
	KUBE_REASON_BAD_REQUEST,
	KUBE_REASON_METHOD_NOT_ALLOWED,
	KUBE_REASON_TIMEOUT,
	KUBE_REASON_SERVER_TIMEOUT,
	KUBE_REASON_INTERNAL_ERROR,
	KUBE_REASON_SERVICE_UNAVAILABLE,
	KUBE_REASON_REQUEST_ENTITY_TOO_LARGE,
	KUBE_REASON_UNSUPPORTED_MEDIA_TYPE,
	KUBE_REASON_NOT_ACCEPTABLE,
	KUBE_REASON_TRANSPORT, /* no HTTP answer: connect, TLS, timeout */
};

struct kube_status {
	long code; /* HTTP status; 0 when none was received */
	enum kube_reason reason;
	char reason_text[64]; /* as sent, e.g. "AlreadyExists" */
	char message[1024];   /* the server's message, for people */
	long retry_after_s;   /* from Retry-After or details */
	int attempts;         /* how many tries the call made */
	int http_version;     /* of the last answer: 11 = HTTP/1.1, 20 = HTTP/2 */
	/* details.causes names NamespaceTerminating: the namespace is being
	 * deleted, so nothing new can be made in it (apierrors'
	 * HasStatusCause(err, NamespaceTerminatingCause)). */
	bool ns_terminating;
};

/* Query and body options; every field optional (zero = unset). */
struct kube_opts {
	const char *label_selector;
	const char *field_selector;
	const char *resource_version;
	const char *resource_version_match;
	long limit;
	const char *continue_token;
	bool watch;
	bool allow_bookmarks;
	long timeout_seconds; /* server-side, for list and watch */
	const char *field_manager;
	bool force; /* server-side apply */
	bool dry_run;
	const char *propagation_policy; /* delete: Foreground|Background|Orphan */
	const char *precondition_uid;   /* delete preconditions */
	const char *precondition_rv;
	long timeout_ms; /* client-side; 0 = client default */
};

struct kube_client_options {
	double qps;             /* 0 = 20; negative = no limit */
	int burst;              /* 0 = 40 */
	long timeout_ms;        /* 0 = 30000 */
	int max_retries;        /* 0 = 5; retries after the first try */
	size_t max_body;        /* 0 = 64 MiB */
	const char *user_agent; /* 0 = "kinfer-operator" */
	long backoff_base_ms;   /* 0 = 200 */
	long backoff_cap_ms;    /* 0 = 10000 */
};

/* Called after every HTTP exchange (metrics); code 0 = no answer. */
typedef void (*kube_observe_fn)(const char *verb, long code, double seconds, void *userdata);

int kube_client_new(const struct kube_auth *auth, const struct kube_client_options *opts,
		    struct kube_client **ret);
void kube_client_free(struct kube_client *c);
/*
 * From now on every write (any method but GET) fails at once with
 * -ENOLCK, before it is sent and before each retry: what a replica that
 * lost its leader Lease does, so it issues no write while the new leader
 * acts. Reads and watches go on. Irreversible.
 */
void kube_client_fence(struct kube_client *c);
void kube_client_set_observer(struct kube_client *c, kube_observe_fn fn, void *userdata);
const char *kube_client_server(const struct kube_client *c);

/* Build the request path and query. -EINVAL for a bad name or namespace,
 * -ENAMETOOLONG when it does not fit. */
int kube_path(char *buf, size_t len, const struct kube_resource *res, const char *ns,
	      const char *name, const char *subresource, const struct kube_opts *opts);
/* Percent-encode a query value (RFC 3986 unreserved kept). */
int kube_escape(char *buf, size_t len, const char *s);

/* Decode an error answer: metav1.Status, or the HTTP code alone. */
void kube_status_decode(long code, const char *body, size_t len, struct kube_status *st);
int kube_reason_errno(enum kube_reason reason);
enum kube_reason kube_reason_from_code(long code);
const char *kube_reason_name(enum kube_reason reason);

/* GET /version: the server's gitVersion into buf. */
int kube_server_version(struct kube_client *c, char *buf, size_t len, struct kube_status *ret_status);

/*
 * kube_server_version until the server answers: a control plane down when
 * kinfer starts (a restart, an upgrade, a partition) is waited for, not a
 * reason to exit, as an exit restarts the pod in CrashLoopBackOff, whose
 * delay grows to 5 minutes and outlasts the outage. Tries again after
 * 0.5 s doubling to 4 s (jittered) while there is no answer, or 429 or 5xx,
 * and logs it; any other answer (401, 403: credentials, RBAC), or a TLS
 * certificate refused (-EPROTO), which waiting does not mend, is logged as
 * an error and returned with its status. waiting (may be NULL) is
 * called once, when the first try failed and the wait begins. One of the
 * signals in stop (blocked by the caller) ends the wait: -EINTR and
 * *ret_signal. Each try is one request with the client's retries: give it
 * a client of few retries and a short timeout, or the tries are far apart.
 */
int kube_wait_for_server(struct kube_client *c, const sigset_t *stop, void (*waiting)(void *ud),
			 void *ud, char *buf, size_t len, struct kube_status *ret_status,
			 int *ret_signal);

int kube_get(struct kube_client *c, const struct kube_resource *res, const char *ns, const char *name,
	     const char *subresource, json_object **ret_obj, struct kube_status *ret_status);

/* One page: honours opts->limit and opts->continue_token. */
int kube_list(struct kube_client *c, const struct kube_resource *res, const char *ns,
	      const struct kube_opts *opts, json_object **ret_obj, struct kube_status *ret_status);

/*
 * Every page: item_fn gets each item (borrowed). If the continue token
 * expires mid-way the list restarts in one unpaged request, and item_fn is
 * first called with NULL, meaning "forget the items so far". The list's
 * resourceVersion lands in ret_rv.
 */
typedef int (*kube_item_fn)(json_object *item, void *userdata);
int kube_list_all(struct kube_client *c, const struct kube_resource *res, const char *ns,
		  const struct kube_opts *opts, kube_item_fn item_fn, void *userdata, char *ret_rv,
		  size_t rv_len, struct kube_status *ret_status);

/* POST. name and subresource address e.g. pods/NAME/binding. */
int kube_create(struct kube_client *c, const struct kube_resource *res, const char *ns,
		const char *name, const char *subresource, json_object *body,
		const struct kube_opts *opts, json_object **ret_obj, struct kube_status *ret_status);

/* PUT; the body's metadata.resourceVersion makes it a compare-and-swap. */
int kube_update(struct kube_client *c, const struct kube_resource *res, const char *ns,
		const char *name, const char *subresource, json_object *body,
		const struct kube_opts *opts, json_object **ret_obj, struct kube_status *ret_status);

/* Server-side apply: PATCH application/apply-patch+yaml with
 * opts->field_manager (required) and opts->force. */
int kube_apply(struct kube_client *c, const struct kube_resource *res, const char *ns,
	       const char *name, const char *subresource, json_object *body,
	       const struct kube_opts *opts, json_object **ret_obj, struct kube_status *ret_status);

enum kube_patch_type {
	KUBE_PATCH_MERGE,     /* application/merge-patch+json */
	KUBE_PATCH_JSON,      /* application/json-patch+json */
	KUBE_PATCH_STRATEGIC, /* application/strategic-merge-patch+json */
};

int kube_patch(struct kube_client *c, const struct kube_resource *res, const char *ns,
	       const char *name, const char *subresource, enum kube_patch_type type,
	       const char *patch, const struct kube_opts *opts, json_object **ret_obj,
	       struct kube_status *ret_status);

/* DELETE with opts->propagation_policy and preconditions. */
int kube_delete(struct kube_client *c, const struct kube_resource *res, const char *ns,
		const char *name, const struct kube_opts *opts, json_object **ret_obj,
		struct kube_status *ret_status);

/* POST pods/NAME/binding to node. */
int kube_bind_pod(struct kube_client *c, const char *ns, const char *pod, const char *pod_uid,
		  const char *node, struct kube_status *ret_status);

/*
 * Watch (blocking): calls event_fn for each event with its type (ADDED,
 * MODIFIED, DELETED, BOOKMARK, ERROR) and object (borrowed). Returns 0 when
 * the server ends the stream, the callback's negative value to stop, or an
 * error. *stop, when set to nonzero by another thread, ends it within a
 * second. One event over max_event bytes ends it with -EFBIG.
 */
#define KUBE_WATCH_MAX_EVENT (16 * 1024 * 1024)
typedef int (*kube_event_fn)(const char *type, json_object *object, void *userdata);
int kube_watch(struct kube_client *c, const struct kube_resource *res, const char *ns,
	       const struct kube_opts *opts, kube_event_fn event_fn, void *userdata,
	       volatile int *stop, struct kube_status *ret_status);

/*
 * For callers that drive their own transfers (the informer's curl multi):
 * set up an easy handle for path with the client's TLS, auth and timeout
 * (timeout_ms 0 = none); *ret_headers must be freed with curl_slist_free_all
 * after the transfer. And a token from the client's rate limiter: the ns to
 * wait before sending.
 */
int kube_setup_easy(struct kube_client *c, void *curl_easy, const char *path, long timeout_ms,
		    void *ret_headers);
uint64_t kube_reserve(struct kube_client *c);
/*
 * TCP keepalive (15 s idle, every 5 s, 3 probes) and a 30 s user timeout on
 * the connections a libcurl easy handle opens: a peer gone silent (its
 * machine gone, a partition) is given up within about 30 s, while a live
 * one, however slow to answer, is never cut (its kernel answers the probes).
 * Every API request has it; the activator's forward to a pod too.
 */
void kube_curl_liveness(void *curl_easy);
/* The ns until half the client's rate-limit burst is free again (0: it is
 * now, or there is no limit): when a request that can wait (an Event)
 * would not take tokens a burst of writes needs. */
uint64_t kube_until_quiet(struct kube_client *c);
void kube_observe(struct kube_client *c, const char *verb, long code, double seconds);
size_t kube_max_body(const struct kube_client *c);

/* Low level: one request with retries; path from kube_path. */
enum kube_method { KUBE_GET, KUBE_POST, KUBE_PUT, KUBE_PATCH, KUBE_DELETE };
int kube_request(struct kube_client *c, enum kube_method method, const char *verb, const char *path,
		 const char *content_type, const char *body, size_t body_len, long timeout_ms,
		 json_object **ret_obj, struct kube_status *ret_status);
