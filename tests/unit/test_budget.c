/*
 * budget: the PodDisruptionBudget cache and its selector against a
 * service's pod labels, on budgets a kube-apiserver v1.33.13 stored and
 * returned (tests/data/pdb-list.json, `kubectl get pdb -o json
 * --show-managed-fields`): kinfer's "chat" (applied by kinfer-operator,
 * reverted once after a `kubectl patch`: generation 3), and a user's
 * "team" (matchLabels and two matchExpressions), "none" (no selector) and
 * "all" (selector {}). And when the spec wants one, and its body.
 */
#include "unit.h"

#include "budget.h"
#include "cache.h"
#include "keys.h"
#include "workload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fixture {
	struct cache *c;
	json_object *list;
};

static const struct kpdb *get(struct fixture *f, const char *name)
{
	char key[64];
	snprintf(key, sizeof(key), "rec/%s", name);
	const struct kpdb *b = (const struct kpdb *)cache_get(f->c, key);
	assert_non_null(b);
	return b;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	test_cache_of_list(&kind_pdbs, "pdb-list.json", 4, &f->c, &f->list);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	cache_free(f->c);
	json_object_put(f->list);
	free(f);
	return 0;
}

static json_object *labels(const char *json)
{
	json_object *o = json_tokener_parse(json);
	assert_non_null(o);
	return o;
}

static bool selects(struct fixture *f, const char *budget, const char *label_json)
{
	json_object *l = labels(label_json);
	cache_read_lock();
	bool r = kpdb_selects(get(f, budget), l);
	cache_read_unlock();
	json_object_put(l);
	return r;
}

/* What the cache keeps of each. */
static void projection(void **state)
{
	struct fixture *f = *state;
	cache_read_lock();
	const struct kpdb *chat = get(f, "chat"), *team = get(f, "team"), *none = get(f, "none"),
			  *all = get(f, "all");
	assert_non_null(chat->applied_hash);
	assert_int_equal(strlen(chat->applied_hash), 16);
	assert_string_equal(chat->meta.controller_kind, "InferenceService");
	assert_string_equal(chat->meta.controller_name, "chat");
	assert_int_equal(chat->generation, 3);
	assert_false(chat->edited); /* the patch's manager lost its fields */
	assert_int_equal(chat->selects, KPDB_SELECTS_SOME);
	assert_int_equal(chat->n_selector, 1);
	assert_null(team->applied_hash);
	assert_null(team->meta.controller_kind);
	assert_true(team->edited); /* kubectl's fields: not kinfer's */
	assert_int_equal(team->n_selector, 3);
	assert_int_equal(none->selects, KPDB_SELECTS_NONE);
	assert_int_equal(all->selects, KPDB_SELECTS_SOME);
	assert_int_equal(all->n_selector, 0);
	cache_read_unlock();
}

/* Each selector against pod labels as kinfer's template carries them. */
static void selectors(void **state)
{
	struct fixture *f = *state;
	const char *chat_pod = "{\"app.kubernetes.io/name\":\"chat\",\"app.kubernetes.io/managed-by\":"
			       "\"kinfer\",\"kinfer.io/service\":\"chat\",\"kinfer.io/model\":"
			       "\"llama\"}";
	assert_true(selects(f, "chat", chat_pod));
	assert_false(selects(f, "chat", "{\"kinfer.io/service\":\"chat2\"}"));
	assert_false(selects(f, "chat", "{}"));
	/* No selector: no pod (policy/v1). {}: every pod. */
	assert_false(selects(f, "none", chat_pod));
	assert_true(selects(f, "all", chat_pod));
	assert_true(selects(f, "all", "{}"));
	/* managed-by kinfer, model NotIn [llama, mistral], no tier. */
	assert_false(selects(f, "team", chat_pod));
	assert_true(
		selects(f, "team",
			"{\"app.kubernetes.io/managed-by\":\"kinfer\",\"kinfer.io/model\":\"qwen\"}"));
	assert_true(selects(f, "team", "{\"app.kubernetes.io/managed-by\":\"kinfer\"}"));
	assert_false(selects(f, "team",
			     "{\"app.kubernetes.io/managed-by\":\"kinfer\",\"tier\":\"gold\"}"));
	assert_false(selects(f, "team", "{\"app.kubernetes.io/managed-by\":\"other\"}"));
}

/* The status written at every pod change is no change (same_pdb); a new
 * generation is. */
static void status_is_no_change(void **state)
{
	struct fixture *f = *state;
	json_object *o = json_tokener_parse(
		json_object_to_json_string(test_list_item(f->list, "team")));
	struct cache_obj *obj;

	json_object_object_add(cache_json_get(o, "metadata"), "resourceVersion",
			       json_object_new_string("999999"));
	json_object_object_add(cache_json_get(o, "status"), "disruptionsAllowed",
			       json_object_new_int(7));
	assert_int_equal(cache_project(f->c, o, &obj), 0);
	cache_read_lock();
	assert_true(kind_pdbs.same(&get(f, "team")->meta, obj));
	cache_read_unlock();
	cache_discard(f->c, obj);
	json_object_object_add(cache_json_get(o, "metadata"), "generation", json_object_new_int(2));
	assert_int_equal(cache_project(f->c, o, &obj), 0);
	cache_read_lock();
	assert_false(kind_pdbs.same(&get(f, "team")->meta, obj));
	cache_read_unlock();
	cache_discard(f->c, obj);
	json_object_put(o);
}

/* The team budget's expression 0 ("kinfer.io/model" NotIn [...]) with
 * its operator replaced, or n values; projected and published. */
static void variant(struct fixture *f, const char *op, size_t n_values)
{
	json_object *o = json_tokener_parse(
		json_object_to_json_string(test_list_item(f->list, "team")));
	json_object *ex = cache_json_get(o, "spec.selector.matchExpressions");
	json_object *e = json_object_array_get_idx(ex, 0);
	struct cache_obj *obj = NULL, *old;

	if (op)
		json_object_object_add(e, "operator", json_object_new_string(op));
	if (n_values) {
		json_object *vals = json_object_new_array();
		for (size_t i = 0; i < n_values; i++) {
			char v[32];
			snprintf(v, sizeof(v), "model-%zu", i);
			json_object_array_add(vals, json_object_new_string(v));
		}
		json_object_object_add(e, "values", vals);
	}
	assert_int_equal(cache_project(f->c, o, &obj), 0);
	json_object_put(o);
	cache_publish(f->c, obj, &old);
	cache_retire(f->c, old);
}

/*
 * A selector kinfer cannot read (an operator it does not know, more
 * values than it keeps) is kept, nothing half-built, and taken to select
 * every pod: skipping it would leave kinfer's own budget next to it, and
 * two budgets over a pod stop every eviction of it. A long list within
 * the bounds is read as it is.
 */
static void bad_selector(void **state)
{
	struct fixture *f = *state;
	const char *other = "{\"app.kubernetes.io/managed-by\":\"other\"}";

	const struct kpdb *b;

	variant(f, "Like", 0);
	cache_read_lock();
	b = get(f, "team");
	assert_int_equal(b->selects, KPDB_SELECTS_UNREADABLE);
	assert_int_equal(b->unreadable, -EINVAL);
	assert_int_equal(b->n_selector, 0);
	assert_null(b->selector);
	assert_true(selects(f, "team", other));
	assert_true(selects(f, "team", "{}"));
	cache_read_unlock();

	/* 4,000 values: read (a model outside them still selected). */
	variant(f, NULL, 4000);
	cache_read_lock();
	b = get(f, "team");
	assert_int_equal(b->selects, KPDB_SELECTS_SOME);
	assert_int_equal(b->n_selector, 3);
	assert_int_equal(b->selector[1].n_values, 4000);
	assert_true(selects(f, "team",
			    "{\"app.kubernetes.io/managed-by\":\"kinfer\","
			    "\"kinfer.io/model\":\"qwen\"}"));
	assert_false(selects(f, "team",
			     "{\"app.kubernetes.io/managed-by\":\"kinfer\","
			     "\"kinfer.io/model\":\"model-3999\"}"));
	assert_false(selects(f, "team", other));
	cache_read_unlock();

	/* 5,000: past the bound, taken to select everything. */
	variant(f, NULL, 5000);
	cache_read_lock();
	b = get(f, "team");
	assert_int_equal(b->selects, KPDB_SELECTS_UNREADABLE);
	assert_int_equal(b->unreadable, -E2BIG);
	assert_true(selects(f, "team", other));
	cache_read_unlock();
}

static json_object *spec(const char *json)
{
	json_object *o = json_tokener_parse(json);
	assert_non_null(o);
	return o;
}

static bool wanted_running(const char *json, int32_t replicas)
{
	json_object *s = spec(json);
	bool r = workload_budget_wanted(s, replicas);
	json_object_put(s);
	return r;
}

static bool wanted(const char *json)
{
	return wanted_running(json, 1);
}

static void when_wanted(void **state)
{
	(void)state;
	assert_false(wanted("{\"replicas\":1}"));
	assert_false(wanted("{}"));
	assert_true(wanted("{\"replicas\":2}"));
	assert_true(wanted("{\"replicas\":2,\"drain\":{\"disruptionBudget\":true}}"));
	assert_false(wanted("{\"replicas\":5,\"drain\":{\"disruptionBudget\":false}}"));
	/* Autoscaled: what it may reach, not what it runs now. */
	assert_true(wanted("{\"replicas\":1,\"scaling\":{\"minReplicas\":0,\"maxReplicas\":4}}"));
	assert_false(wanted("{\"scaling\":{\"minReplicas\":1,\"maxReplicas\":1}}"));
	assert_true(wanted("{\"scaling\":{\"minReplicas\":3}}"));
	/* A scale-down to 1 keeps it while the Deployment still runs 2 (the
	 * drain of the pod that leaves); not when the spec turns it off. */
	assert_true(wanted_running("{\"replicas\":1}", 2));
	assert_false(wanted_running("{\"replicas\":1}", 1));
	assert_false(wanted_running("{\"replicas\":1}", 0));
	assert_false(wanted_running("{\"replicas\":1,\"drain\":{\"disruptionBudget\":false}}", 2));
}

/* The body, from a stored InferenceService, with its pods' labels. */
static void body(void **state)
{
	struct workload w;
	char err[256];
	char *s = test_read_data("isvc/minimal.json", NULL);
	json_object *o = json_tokener_parse(s), *sp = cache_json_get(o, "spec");
	(void)state;
	free(s);
	assert_int_equal(workload_build("serving", "svc", "uid-1", sp, 1, NULL, &w, err, sizeof(err)),
			 0);
	assert_null(w.budget); /* minimal: 1 replica */
	workload_free(&w);
	json_object_object_add(sp, "replicas", json_object_new_int(3));
	assert_int_equal(workload_build("serving", "svc", "uid-1", sp, 3, NULL, &w, err, sizeof(err)),
			 0);
	assert_non_null(w.budget);
	assert_string_equal(cache_json_str(w.budget, "apiVersion"), "policy/v1");
	assert_string_equal(cache_json_str(w.budget, "kind"), "PodDisruptionBudget");
	assert_string_equal(cache_json_str(w.budget, "metadata.name"), "svc");
	assert_string_equal(cache_json_str(w.budget, "metadata.namespace"), "serving");
	assert_int_equal(cache_json_int(w.budget, "spec.maxUnavailable", 0), 1);
	assert_string_equal(cache_json_str(w.budget, "spec.unhealthyPodEvictionPolicy"),
			    "AlwaysAllow");
	assert_string_equal(cache_json_key(cache_json_get(w.budget, "spec.selector.matchLabels"),
					   KINFER_SERVICE_LABEL),
			    "svc");
	json_object *ref = json_object_array_get_idx(cache_json_get(w.budget,
								    "metadata.ownerReferences"),
						     0);
	assert_string_equal(cache_json_str(ref, "kind"), "InferenceService");
	assert_string_equal(cache_json_str(ref, "uid"), "uid-1");
	assert_string_equal(cache_json_key(cache_json_get(w.budget, "metadata.annotations"),
					   KINFER_HASH_ANNOTATION),
			    w.budget_hash);
	/* The budget selects the pods the Deployment makes. */
	json_object *pl = workload_pod_labels(&w);
	assert_string_equal(cache_json_key(pl, KINFER_SERVICE_LABEL), "svc");
	char hash1[17];
	memcpy(hash1, w.budget_hash, sizeof(hash1));
	workload_free(&w);

	/* spec.drain.maxUnavailable: the default 1 is the body it always was
	 * (same hash: an upgrade rewrites nothing); a number or a percentage
	 * as given; what the CRD's rule refuses (an older CRD) is 1. */
	static const struct {
		const char *json, *want;
	} cases[] = {
		{ "1", "1" },     { "3", "3" },       { "\"25%\"", "25%" }, { "\"100%\"", "100%" },
		{ "0", "1" },     { "-2", "1" },      { "\"0%\"", "1" },    { "\"101%\"", "1" },
		{ "\"5\"", "1" }, { "\"05%\"", "1" }, { "\"25%x\"", "1" },  { "true", "1" },
		{ "{}", "1" },
	};
	json_object *drain = json_object_new_object();
	json_object_object_add(sp, "drain", drain);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_object_object_add(drain, "maxUnavailable", json_tokener_parse(cases[i].json));
		assert_int_equal(workload_build("serving", "svc", "uid-1", sp, 3, NULL, &w, err,
						sizeof(err)),
				 0);
		assert_non_null(w.budget);
		json_object *mu = cache_json_get(w.budget, "spec.maxUnavailable");
		assert_string_equal(json_object_get_string(mu), cases[i].want);
		/* The number stays a number (the API server takes either). */
		assert_int_equal(json_object_is_type(mu, json_type_string),
				 strchr(cases[i].want, '%') != NULL);
		if (strcmp(cases[i].want, "1") == 0)
			assert_string_equal(w.budget_hash, hash1);
		else
			assert_string_not_equal(w.budget_hash, hash1);
		workload_free(&w);
	}
	json_object_put(o);
}

int tests_budget(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(projection, setup, teardown),
		cmocka_unit_test_setup_teardown(selectors, setup, teardown),
		cmocka_unit_test_setup_teardown(status_is_no_change, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_selector, setup, teardown),
		cmocka_unit_test(when_wanted),
		cmocka_unit_test(body),
	};
	return cmocka_run_group_tests_name("budget", tests, test_rcu_setup, test_rcu_teardown);
}
