/*
 * kinds: the projections of Pod, Node, Deployment and Service from objects a
 * real kube-apiserver sent (tests/data: pod, node, deployment), with the keys reconcilers/
 * registers (keys.h) and without any: operator/ projects only what was
 * registered. Also the condition reader and the annotations the warm-up and
 * drain controllers write.
 */
#include "unit.h"

#include "cache.h"
#include "isvc.h"
#include "keys.h"
#include "kinds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_object *load(const char *name)
{
	char *s = test_read_data(name, NULL);
	assert_non_null(s);
	json_object *o = json_tokener_parse(s);
	free(s);
	assert_non_null(o);
	return o;
}

static void set_meta(json_object *o, const char *map, const char *key, const char *value)
{
	json_object *meta = json_object_object_get(o, "metadata"), *m;
	if (!json_object_object_get_ex(meta, map, &m)) {
		m = json_object_new_object();
		json_object_object_add(meta, map, m);
	}
	json_object_object_add(m, key, json_object_new_string(value));
}

/* Project o with kind and return the unpublished object (free with the
 * cache: publish then cache_free). */
static struct cache_obj *project(struct cache **c, const struct cache_kind *kind, json_object *o)
{
	struct cache_obj *obj, *old;
	assert_int_equal(cache_new(kind, test_interns, c), 0);
	assert_int_equal(cache_project(*c, o, &obj), 0);
	cache_publish(*c, obj, &old);
	assert_null(old);
	return obj;
}

/* The pod with kinfer.io's annotations, registered keys (as main runs). */
static void pod_registered_keys(void **state)
{
	struct cache *c;
	json_object *j = load("pod.json");
	(void)state;
	set_meta(j, "annotations", KINFER_WARMUP_ATTEMPTS, "2");
	set_meta(j, "annotations", KINFER_DRAINING_SINCE, "1764856339");
	set_meta(j, "annotations", KINFER_PREFER_CACHED, "false");
	set_meta(j, "labels", KINFER_MODEL_LABEL, "llama-7b");
	set_meta(j, "labels", KINFER_PRIORITY_LABEL, "high");
	const struct kpod *p = (const struct kpod *)project(&c, &kind_pods, j);
	assert_string_equal(p->service, "llm-7b");
	assert_string_equal(kpod_template_hash(p), "7bc4475f95");
	assert_int_equal(p->warmed, KCOND_TRUE);
	assert_string_equal(p->warm_reason, "WarmupSucceeded");
	assert_int_equal(p->warm_since, 0); /* recorded with a null lastTransitionTime */
	assert_true(p->started > 1700000000);
	assert_true(p->has_gate);
	assert_int_equal(p->warmup_attempts, 2);
	assert_int_equal(p->draining_since, 1764856339);
	assert_string_equal(p->model, "llama-7b");
	assert_int_equal(p->priority, KPRIO_HIGH);
	assert_true(p->avoid_cached);
	json_object_put(j);
	cache_free(c);
}

/* kinfer's own pod annotations are what kinfer writes (decimal, in range)
 * or none: "12abc" as kinfer.io/draining-since was read as 12 (1970), and
 * the drain timed out at once, skipped; drain writes a start that is none
 * anew (drain_without_start). 2147483647 warm-up attempts overflowed the
 * next attempt's count; a warm-restarts of "x" read as 0 (restarted). */
static void pod_annotations_odd(void **state)
{
	static const struct {
		const char *value;
		int64_t since, attempts, restarts;
	} cases[] = {
		{ "1764856339", 1764856339, 0, 1764856339 },
		{ "12abc", 0, 0, -1 },
		{ "abc", 0, 0, -1 },
		{ "", 0, 0, -1 },
		{ "-5", 0, 0, -1 },
		{ "0", 0, 0, 0 },
		{ " 17", 0, 0, -1 },
		{ "+17", 0, 0, -1 },
		{ "1.5", 0, 0, -1 },
		{ "2147483647", 2147483647, 0, 2147483647 },
		{ "2147483648", 2147483648LL, 0, -1 },
		{ "99999999999999999999", 0, 0, -1 },
		{ "17", 17, 17, 17 },
		{ "1000000", 1000000, 1000000, 1000000 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cache *c;
		json_object *j = load("pod.json");
		set_meta(j, "annotations", KINFER_DRAINING_SINCE, cases[i].value);
		set_meta(j, "annotations", KINFER_WARMUP_ATTEMPTS, cases[i].value);
		set_meta(j, "annotations", KINFER_WARM_RESTARTS, cases[i].value);
		const struct kpod *p = (const struct kpod *)project(&c, &kind_pods, j);
		if (p->draining_since != cases[i].since ||
		    p->warmup_attempts != cases[i].attempts || p->warm_restarts != cases[i].restarts)
			fail_msg("\"%s\": draining-since %u attempts %d warm-restarts %d, want %lld %lld "
				 "%lld",
				 cases[i].value, p->draining_since, p->warmup_attempts,
				 p->warm_restarts, (long long)cases[i].since,
				 (long long)cases[i].attempts, (long long)cases[i].restarts);
		json_object_put(j);
		cache_free(c);
	}
}

/* A container whose state is not running (waiting, terminated: its process
 * gone or not started) marks the pod stopped; the recorded pod runs its one
 * container. A kubelet that restarted reports a running container not ready:
 * not stopped. */
static void pod_container_stopped(void **state)
{
	static const struct {
		const char *state; /* the container's state, JSON */
		bool second;       /* a second container, running */
		unsigned stopped;
	} cases[] = {
		{ NULL, false, 0 }, /* as recorded: running, ready */
		{ "{\"running\": {\"startedAt\": \"2026-01-01T00:00:00Z\"}}", false, 0 },
		{ "{\"terminated\": {\"exitCode\": 137, \"reason\": \"Error\"}}", false, 1 },
		{ "{\"waiting\": {\"reason\": \"CrashLoopBackOff\"}}", true, 1 },
		{ "{}", false, 1 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cache *c;
		json_object *j = load("pod.json"), *cs;
		assert_true(json_object_object_get_ex(json_object_object_get(j, "status"),
						      "containerStatuses", &cs));
		json_object *first = json_object_array_get_idx(cs, 0);
		if (cases[i].second) {
			json_object *dup = NULL; /* running, as recorded */
			assert_int_equal(json_object_deep_copy(first, &dup, NULL), 0);
			json_object_array_add(cs, dup);
		}
		if (cases[i].state) {
			json_object *st = json_tokener_parse(cases[i].state);
			assert_non_null(st);
			json_object_object_add(first, "ready", json_object_new_boolean(0));
			json_object_object_add(first, "state", st);
		}
		const struct kpod *p = (const struct kpod *)project(&c, &kind_pods, j);
		if (p->stopped != cases[i].stopped)
			fail_msg("case %zu (%s): stopped %u, want %u", i,
				 cases[i].state ? cases[i].state : "recorded", p->stopped,
				 cases[i].stopped);
		json_object_put(j);
		cache_free(c);
	}
}

/* With no keys registered, none of kinfer.io's fields is projected, and
 * Kubernetes' own still are. */
static void pod_without_keys(void **state)
{
	struct cache *c;
	json_object *j = load("pod.json");
	(void)state;
	set_meta(j, "annotations", KINFER_WARMUP_ATTEMPTS, "2");
	set_meta(j, "labels", KINFER_PRIORITY_LABEL, "high");
	kinds_register_keys(NULL);
	const struct kpod *p = (const struct kpod *)project(&c, &kind_pods, j);
	keys_register();
	assert_null(p->service);
	assert_int_equal(p->warmed, KCOND_ABSENT);
	assert_null(p->warm_reason);
	assert_false(p->has_gate);
	assert_int_equal(p->warmup_attempts, 0);
	assert_int_equal(p->priority, KPRIO_NORMAL);
	assert_string_equal(p->node, "kwok-a100-0");
	assert_int_equal(p->ready, KCOND_TRUE);
	assert_string_equal(kpod_template_hash(p), "7bc4475f95");
	assert_int_equal(p->deletion_cost, -100);
	json_object_put(j);
	cache_free(c);
}

/* Another controller's names: the table decides, not operator/. */
static void other_keys(void **state)
{
	static const struct kinds_keys mine = {
		.gate = "Ready",
		.service_label = "pod-template-hash",
		.warmup_attempts = "example.com/attempts",
	};
	struct cache *c;
	json_object *j = load("pod.json");
	(void)state;
	set_meta(j, "annotations", "example.com/attempts", "4");
	kinds_register_keys(&mine);
	assert_ptr_equal(kinds_registered_keys(), &mine);
	const struct kpod *p = (const struct kpod *)project(&c, &kind_pods, j);
	keys_register();
	assert_string_equal(p->service, "7bc4475f95");
	assert_int_equal(p->warmed, KCOND_TRUE);
	assert_false(p->has_gate); /* no readiness gate named Ready */
	assert_int_equal(p->warmup_attempts, 4);
	json_object_put(j);
	cache_free(c);
}

/* Sets path ("a.b.c", objects made on the way) in o to v (taken). */
static void set_path(json_object *o, const char *path, json_object *v)
{
	char buf[128], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", path);
	char *part = strtok_r(buf, ".", &save), *next;
	for (; (next = strtok_r(NULL, ".", &save)); part = next) {
		json_object *m;
		if (!json_object_object_get_ex(o, part, &m) ||
		    !json_object_is_type(m, json_type_object)) {
			m = json_object_new_object();
			json_object_object_add(o, part, m);
		}
		o = m;
	}
	json_object_object_add(o, part, v);
}

static json_object *jarr_idx(json_object *o, const char *key, size_t i)
{
	json_object *a = NULL;
	assert_true(json_object_object_get_ex(o, key, &a));
	return json_object_array_get_idx(a, i);
}

/*
 * The fields few pods have live in a side block (kpod_rare), NULL for a
 * running Deployment pod: its pod-template-hash is read from its
 * ReplicaSet's name. A pod whose hash is not that suffix, a waiting
 * container, a PodScheduled=False message and a pending pod's constraints
 * each read back through the accessors; requests past 32 bits saturate.
 */
static void pod_rare_fields(void **state)
{
	struct cache *c;
	json_object *j = load("pod.json");
	(void)state;
	const struct kpod *p = (const struct kpod *)project(&c, &kind_pods, j);
	assert_null(p->rare);
	assert_true(p->hash_in_owner);
	assert_string_equal(kpod_template_hash(p), "7bc4475f95");
	assert_null(kpod_waiting_reason(p));
	assert_null(kpod_unschedulable(p));
	assert_int_equal(kpod_sched(p)->n_node_selector, 0);
	assert_int_equal(p->gpu, 1);
	assert_int_equal(p->cpu_milli, 4000);
	cache_free(c);

	/* Owned by a ReplicaSet whose name does not end in the hash. */
	json_object *meta = json_object_object_get(j, "metadata");
	json_object_object_add(jarr_idx(meta, "ownerReferences", 0), "name",
			       json_object_new_string("llm-7b-other"));
	p = (const struct kpod *)project(&c, &kind_pods, j);
	assert_false(p->hash_in_owner);
	assert_non_null(p->rare);
	assert_string_equal(kpod_template_hash(p), "7bc4475f95");
	assert_null(kpod_waiting_reason(p));
	cache_free(c);
	json_object_put(j);

	/* Pending: unschedulable, a container waiting, a node selector, and
	 * requests past 32 bits; no pod-template-hash label. */
	j = load("pod.json");
	json_object_object_del(json_object_object_get(j, "spec"), "nodeName");
	json_object_object_del(json_object_object_get(json_object_object_get(j, "metadata"), "labels"),
			       "pod-template-hash");
	set_path(j, "spec.nodeSelector.pool", json_object_new_string("a100"));
	json_object *status = json_object_object_get(j, "status");
	json_object *conds = json_object_object_get(status, "conditions");
	for (size_t i = 0; i < json_object_array_length(conds); i++) {
		json_object *cond = json_object_array_get_idx(conds, i);
		if (strcmp(json_object_get_string(json_object_object_get(cond, "type")),
			   "PodScheduled") == 0) {
			json_object_object_add(cond, "status", json_object_new_string("False"));
			json_object_object_add(
				cond, "message",
				json_object_new_string(
					"0/3 nodes are available: 3 Insufficient nvidia.com/gpu."));
		}
	}
	set_path(jarr_idx(status, "containerStatuses", 0), "state", json_object_new_object());
	set_path(jarr_idx(status, "containerStatuses", 0), "state.waiting.reason",
		 json_object_new_string("ImagePullBackOff"));
	json_object *c0 = jarr_idx(json_object_object_get(j, "spec"), "containers", 0);
	set_path(c0, "resources.requests.cpu", json_object_new_string("3000000"));
	json_object_object_add(json_object_object_get(json_object_object_get(c0, "resources"),
						      "limits"),
			       "nvidia.com/gpu", json_object_new_string("5000000000"));
	p = (const struct kpod *)project(&c, &kind_pods, j);
	assert_null(p->node);
	assert_int_equal(p->scheduled, KCOND_FALSE);
	assert_string_equal(kpod_unschedulable(p),
			    "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.");
	assert_string_equal(kpod_waiting_reason(p), "ImagePullBackOff");
	assert_null(kpod_template_hash(p));
	assert_int_equal(kpod_sched(p)->n_node_selector, 1);
	assert_string_equal(kpod_sched(p)->node_selector[0].value, "a100");
	assert_int_equal(p->cpu_milli, INT32_MAX);
	assert_int_equal(p->gpu, INT32_MAX);
	cache_free(c);
	json_object_put(j);
}

static void deployment_service_node(void **state)
{
	struct cache *dc, *sc, *nc;
	json_object *d = load("deployment.json"), *n = load("node.json");
	json_object *s = json_tokener_parse(
		"{\"metadata\":{\"name\":\"llm-7b\",\"namespace\":\"default\","
		"\"uid\":\"u1\",\"resourceVersion\":\"5\"}}");
	(void)state;
	set_meta(d, "annotations", KINFER_HASH_ANNOTATION, "00112233aabbccdd");
	set_meta(s, "annotations", KINFER_HASH_ANNOTATION, "ffeeddccbbaa9988");
	set_meta(n, "annotations", KINFER_GPU_UTILIZATION, "42");
	const struct kdeployment *kd = (const struct kdeployment *)project(&dc, &kind_deployments, d);
	const struct kservice *ks = (const struct kservice *)project(&sc, &kind_services, s);
	const struct knode *kn = (const struct knode *)project(&nc, &kind_nodes, n);
	assert_string_equal(kd->service, "llm-7b");
	assert_string_equal(kd->applied_hash, "00112233aabbccdd");
	assert_string_equal(ks->applied_hash, "ffeeddccbbaa9988");
	assert_int_equal(kn->gpu_util, 42);
	json_object_put(d);
	json_object_put(s);
	json_object_put(n);
	cache_free(dc);
	cache_free(sc);
	cache_free(nc);
}

/*
 * A Deployment stuck on a quota past its progress deadline has both
 * ReplicaFailure True and Progressing False, in either order: the message
 * kept is the ReplicaFailure's (what refused the pods; the rollout code
 * reads the quota from it), not whichever came last.
 */
static void deployment_failure_message(void **state)
{
	static const char *const orders[] = {
		"[{\"type\":\"Progressing\",\"status\":\"False\",\"reason\":"
		"\"ProgressDeadlineExceeded\",\"message\":\"timed out\"},{\"type\":"
		"\"ReplicaFailure\",\"status\":\"True\",\"message\":\"exceeded quota: q\"}]",
		"[{\"type\":\"ReplicaFailure\",\"status\":\"True\",\"message\":"
		"\"exceeded quota: q\"},{\"type\":\"Progressing\",\"status\":\"False\","
		"\"reason\":\"ProgressDeadlineExceeded\",\"message\":\"timed out\"}]",
	};
	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct cache *dc;
		json_object *d = load("deployment.json");
		json_object_object_add(json_object_object_get(d, "status"), "conditions",
				       json_tokener_parse(orders[i]));
		const struct kdeployment *kd = (const struct kdeployment *)project(&dc,
										   &kind_deployments,
										   d);
		assert_string_equal(kd->failure_message, "exceeded quota: q");
		assert_int_equal(kd->replica_failure, KCOND_TRUE);
		assert_int_equal(kd->progressing, KCOND_FALSE);
		json_object_put(d);
		cache_free(dc);
	}
	/* Progressing False alone: its message. */
	struct cache *dc;
	json_object *d = load("deployment.json");
	json_object_object_add(json_object_object_get(d, "status"), "conditions",
			       json_tokener_parse("[{\"type\":\"Progressing\",\"status\":"
						  "\"False\",\"message\":\"timed out\"}]"));
	const struct kdeployment *kd = (const struct kdeployment *)project(&dc, &kind_deployments, d);
	assert_string_equal(kd->failure_message, "timed out");
	json_object_put(d);
	cache_free(dc);
}

/*
 * Recorded from kube-apiserver 1.33: a Deployment as kinfer's field manager
 * applied it (kube-controller-manager's status entry only besides), then
 * after `kubectl set image` and `kubectl scale` (entries kubectl-set, and
 * kubectl on the scale subresource), and a Service after `kubectl patch` of
 * its selector.
 */
static void edited_by_another_field_manager(void **state)
{
	static const struct {
		const char *file;
		const struct cache_kind *kind;
		bool edited;
	} cases[] = {
		{ "deployment-applied.json", &kind_deployments, false },
		{ "deployment-edited.json", &kind_deployments, true },
		{ "service-edited.json", &kind_services, true },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cache *c;
		json_object *j = load(cases[i].file);
		assert_true(kinds_edited(j) == cases[i].edited);
		const struct cache_obj *o = project(&c, cases[i].kind, j);
		bool edited = cases[i].kind == &kind_services ?
				      ((const struct kservice *)o)->edited :
				      ((const struct kdeployment *)o)->edited;
		assert_true(edited == cases[i].edited);
		cache_free(c);
		/* Without managedFields (a kind that cuts them): never. */
		json_object_object_del(json_object_object_get(j, "metadata"), "managedFields");
		assert_false(kinds_edited(j));
		json_object_put(j);
	}
	/* Another applier is an editor too; kinfer's own entry never is. */
	json_object *j = load("deployment-applied.json");
	json_object *e = json_object_array_get_idx(
		json_object_object_get(json_object_object_get(j, "metadata"), "managedFields"), 0);
	json_object_object_add(e, "manager", json_object_new_string("someone"));
	assert_true(kinds_edited(j));
	json_object_put(j);
}

/* Out-of-range or unreadable GPU utilization is "unknown", never a number. */
static void node_bad_utilization(void **state)
{
	static const char *const bad[] = { "101", "-1", "abc", "" };
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cache *nc;
		json_object *n = load("node.json");
		set_meta(n, "annotations", KINFER_GPU_UTILIZATION, bad[i]);
		const struct knode *kn = (const struct knode *)project(&nc, &kind_nodes, n);
		assert_int_equal(kn->gpu_util, -1);
		json_object_put(n);
		cache_free(nc);
	}
}

static void conditions(void **state)
{
	const char *reason = NULL;
	int64_t since = 0;
	json_object *conds = json_tokener_parse(
		"[{\"type\":\"A\",\"status\":\"True\",\"reason\":\"Why\","
		"\"lastTransitionTime\":\"2024-05-01T10:00:00Z\"},"
		"{\"type\":\"B\",\"status\":\"False\"},{\"type\":\"C\",\"status\":\"Maybe\"},"
		"{\"status\":\"True\"}]");
	(void)state;
	assert_int_equal(kinds_cond(conds, "A", &reason, &since), KCOND_TRUE);
	assert_string_equal(reason, "Why");
	assert_int_equal(since, 1714557600);
	assert_int_equal(kinds_cond(conds, "B", NULL, NULL), KCOND_FALSE);
	assert_int_equal(kinds_cond(conds, "C", NULL, NULL), KCOND_UNKNOWN);
	assert_int_equal(kinds_cond(conds, "D", NULL, NULL), KCOND_ABSENT);
	assert_int_equal(kinds_cond(conds, NULL, NULL, NULL), KCOND_ABSENT);
	assert_int_equal(kinds_cond(NULL, "A", NULL, NULL), KCOND_ABSENT);
	json_object_put(conds);
}

/* spec.scaling.scaleToZero and the activator's annotation in the
 * InferenceService projection (issue 16: what the activator and the
 * autoscaler read). */
static const struct isvc *project_isvc_json(struct cache **c, const char *text)
{
	json_object *j = json_tokener_parse(text);
	assert_non_null(j);
	const struct isvc *s = (const struct isvc *)project(c, &kind_inferenceservices, j);
	json_object_put(j);
	return s;
}

static void isvc_scale_to_zero_projection(void **state)
{
	struct cache *c;
	const struct isvc *s;
	const struct isvc_scale_to_zero *z;
	(void)state;

	/* Defaults: idle 300, 100 pending, activation timeout = the warm-up's. */
	s = project_isvc_json(
		&c, "{\"metadata\":{\"namespace\":\"n\",\"name\":\"a\","
		    "\"annotations\":{\"kinfer.io/activation-requested\":\"2026-12-04T18:30:00.123Z\"}},"
		    "\"spec\":{\"warmup\":{\"timeoutSeconds\":90},\"scaling\":{\"minReplicas\":0,"
		    "\"maxReplicas\":2,\"scaleToZero\":{}}}}");
	z = isvc_scale_to_zero(s);
	assert_non_null(z);
	assert_int_equal(z->idle_seconds, 300);
	assert_int_equal(z->max_pending_requests, 100);
	assert_int_equal(z->activation_timeout_seconds, 90);
	assert_int_equal(s->min_replicas, 0);
	assert_string_equal(s->activation_requested, "2026-12-04T18:30:00.123Z");
	assert_int_equal(s->activation_requested_ms, 1796409000123LL);
	cache_free(c);

	/* Given values; no warm-up: the operator's default (600). */
	s = project_isvc_json(&c, "{\"metadata\":{\"namespace\":\"n\",\"name\":\"b\"},"
				  "\"spec\":{\"scaling\":{\"minReplicas\":0,\"maxReplicas\":2,\"scaleToZero\":"
				  "{\"idleSeconds\":5,\"maxPendingRequests\":7}}}}");
	z = isvc_scale_to_zero(s);
	assert_non_null(z);
	assert_int_equal(z->idle_seconds, 5);
	assert_int_equal(z->max_pending_requests, 7);
	assert_int_equal(z->activation_timeout_seconds, ISVC_WARMUP_TIMEOUT_S_DEFAULT);
	assert_null(s->activation_requested);
	assert_int_equal(s->activation_requested_ms, 0);
	cache_free(c);

	s = project_isvc_json(&c, "{\"metadata\":{\"namespace\":\"n\",\"name\":\"c\","
				  "\"annotations\":{\"kinfer.io/activation-requested\":\"soon\"}},"
				  "\"spec\":{\"scaling\":{\"minReplicas\":0,\"maxReplicas\":2,\"scaleToZero\":"
				  "{\"activationTimeoutSeconds\":30}}}}");
	assert_int_equal(isvc_scale_to_zero(s)->activation_timeout_seconds, 30);
	assert_int_equal(s->activation_requested_ms, 0); /* not a time: no activation */
	cache_free(c);

	/* No scaleToZero, or no scaling at all: NULL. */
	s = project_isvc_json(&c, "{\"metadata\":{\"namespace\":\"n\",\"name\":\"d\"},"
				  "\"spec\":{\"scaling\":{\"maxReplicas\":2}}}");
	assert_null(isvc_scale_to_zero(s));
	cache_free(c);
	s = project_isvc_json(&c, "{\"metadata\":{\"namespace\":\"n\",\"name\":\"e\"},"
				  "\"spec\":{\"replicas\":0}}");
	assert_null(isvc_scale_to_zero(s));
	cache_free(c);
}

int tests_kinds(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pod_registered_keys),
		cmocka_unit_test(pod_annotations_odd),
		cmocka_unit_test(pod_container_stopped),
		cmocka_unit_test(pod_without_keys),
		cmocka_unit_test(other_keys),
		cmocka_unit_test(pod_rare_fields),
		cmocka_unit_test(deployment_service_node),
		cmocka_unit_test(deployment_failure_message),
		cmocka_unit_test(node_bad_utilization),
		cmocka_unit_test(conditions),
		cmocka_unit_test(edited_by_another_field_manager),
		cmocka_unit_test(isvc_scale_to_zero_projection),
	};
	return cmocka_run_group_tests_name("kinds", tests, test_rcu_setup, test_rcu_teardown);
}
