/*
 * hpa: the HorizontalPodAutoscaler cache (kinds.h struct khpa), on
 * autoscalers a kube-apiserver v1.33.13 stored and returned
 * (tests/data/hpa-list.json, `kubectl get hpa -o json`): "llm-7b" scales
 * the Deployment llm-7b (2 to 6), "keda-hpa-chat" the Deployment chat (as
 * KEDA's ScaledObject makes it: no minReplicas, defaulted to 1 by the
 * server), "embed" the InferenceService embed (its scale subresource: no
 * conflict, unless embed has spec.scaling) and "db" a StatefulSet. The
 * indexes by Deployment and by InferenceService are how a reconcile finds
 * the one fighting it; a status written by the HPA
 * controller at every sync is no change; odd objects are kept, never a
 * crash.
 */
#include "unit.h"

#include "cache.h"
#include "kinds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fixture {
	struct cache *c;
	json_object *list;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	test_cache_of_list(&kind_hpas, "hpa-list.json", 4, &f->c, &f->list);
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

/* What an autoscaler is to a reconcile, copied out of the read-side
 * section (a failed assertion inside one would hang the teardown). */
struct seen {
	char deployment[64], isvc[64]; /* "" = none */
	int32_t min, max;
};

static struct seen seen(struct fixture *f, const char *name)
{
	struct seen r = { 0 };
	char key[64];
	snprintf(key, sizeof(key), "rec/%s", name);
	cache_read_lock();
	const struct khpa *h = (const struct khpa *)cache_get(f->c, key);
	if (h) {
		snprintf(r.deployment, sizeof(r.deployment), "%s",
			 h->deployment ? h->deployment : "");
		snprintf(r.isvc, sizeof(r.isvc), "%s", h->isvc ? h->isvc : "");
		r.min = h->min_replicas;
		r.max = h->max_replicas;
	} else {
		r.min = r.max = -1;
	}
	cache_read_unlock();
	return r;
}

static void projection(void **state)
{
	struct fixture *f = *state;
	struct seen llm = seen(f, "llm-7b"), keda = seen(f, "keda-hpa-chat"),
		    embed = seen(f, "embed"), db = seen(f, "db");
	assert_string_equal(llm.deployment, "llm-7b");
	assert_string_equal(llm.isvc, "");
	assert_int_equal(llm.min, 2);
	assert_int_equal(llm.max, 6);
	assert_string_equal(keda.deployment, "chat");
	assert_int_equal(keda.min, 1);
	assert_int_equal(keda.max, 4);
	assert_string_equal(embed.deployment, ""); /* an InferenceService: kinfer drains */
	assert_string_equal(embed.isvc, "embed");
	assert_int_equal(embed.max, 3);
	assert_string_equal(db.deployment, "");
	assert_string_equal(db.isvc, "");
}

struct found {
	const char *ns;
	char names[4][64];
	int n;
};

static int collect(const struct cache_obj *o, void *ud)
{
	struct found *f = ud;
	if (strcmp(o->ns, f->ns) == 0 && f->n < 4)
		snprintf(f->names[f->n++], sizeof(f->names[0]), "%s", cache_obj_name(o));
	return 0;
}

static struct found scaling_in(struct fixture *f, size_t index, const char *ns, const char *name)
{
	struct found r = { .ns = ns };
	cache_read_lock();
	cache_index_foreach(f->c, index, name, collect, &r);
	cache_read_unlock();
	return r;
}

static struct found scaling(struct fixture *f, const char *ns, const char *deployment)
{
	return scaling_in(f, KHPA_BY_DEPLOYMENT, ns, deployment);
}

/* The index answers "which autoscaler scales Deployment NAME". */
static void by_deployment(void **state)
{
	struct fixture *f = *state;
	struct found r = scaling(f, "rec", "chat");
	assert_int_equal(r.n, 1);
	assert_string_equal(r.names[0], "keda-hpa-chat");
	r = scaling(f, "rec", "llm-7b");
	assert_int_equal(r.n, 1);
	assert_string_equal(r.names[0], "llm-7b");
	assert_int_equal(scaling(f, "rec", "embed").n, 0);
	assert_int_equal(scaling(f, "rec", "db").n, 0);
	assert_int_equal(scaling(f, "other", "chat").n, 0); /* another namespace's */
	/* ... and "which scales InferenceService NAME". */
	r = scaling_in(f, KHPA_BY_ISVC, "rec", "embed");
	assert_int_equal(r.n, 1);
	assert_string_equal(r.names[0], "embed");
	assert_int_equal(scaling_in(f, KHPA_BY_ISVC, "rec", "chat").n, 0);
	assert_int_equal(scaling_in(f, KHPA_BY_ISVC, "other", "embed").n, 0);
}

static json_object *copy(struct fixture *f, const char *name)
{
	json_object *o = json_tokener_parse(json_object_to_json_string(test_list_item(f->list, name)));
	assert_non_null(o);
	return o;
}

static bool same_as(struct fixture *f, const char *name, json_object *o)
{
	struct cache_obj *obj;
	assert_int_equal(cache_project(f->c, o, &obj), 0);
	char key[64];
	snprintf(key, sizeof(key), "rec/%s", name);
	cache_read_lock();
	const struct cache_obj *o2 = cache_get(f->c, key);
	bool r = o2 && kind_hpas.same(o2, obj);
	cache_read_unlock();
	cache_discard(f->c, obj);
	return r;
}

/* The HPA controller's status writes (every sync) are no change; a new
 * target or new bounds are: an HPA has no metadata.generation. */
static void status_is_no_change(void **state)
{
	struct fixture *f = *state;
	json_object *o = copy(f, "llm-7b");
	json_object_object_add(cache_json_get(o, "metadata"), "resourceVersion",
			       json_object_new_string("999999"));
	json_object_object_add(cache_json_get(o, "status"), "desiredReplicas",
			       json_object_new_int(6));
	json_object_object_add(cache_json_get(o, "status"), "currentReplicas",
			       json_object_new_int(3));
	assert_true(same_as(f, "llm-7b", o));
	json_object_object_add(cache_json_get(o, "spec"), "maxReplicas", json_object_new_int(8));
	assert_false(same_as(f, "llm-7b", o));
	json_object_put(o);
	o = copy(f, "llm-7b");
	json_object_object_add(cache_json_get(o, "spec.scaleTargetRef"), "name",
			       json_object_new_string("llm-13b"));
	assert_false(same_as(f, "llm-7b", o));
	json_object_put(o);
	o = copy(f, "embed");
	json_object_object_add(cache_json_get(o, "spec.scaleTargetRef"), "name",
			       json_object_new_string("other"));
	assert_false(same_as(f, "embed", o));
	json_object_put(o);
}

/* Objects no API server writes, as a client or a future version might:
 * kept, with no target where it cannot be read, the bounds clamped. */
static void odd_objects(void **state)
{
	struct fixture *f = *state;
	static const char *const cases[][2] = {
		{ "{\"name\": {\"nested\": \"llm-7b\"}, \"kind\": \"Deployment\", "
		  "\"apiVersion\": \"apps/v1\"}",
		  NULL },
		{ "{\"name\": \"llm-7b\", \"kind\": [\"Deployment\"], \"apiVersion\": \"apps/v1\"}",
		  NULL },
		{ "{\"name\": \"llm-7b\", \"kind\": \"Deployment\", \"apiVersion\": \"apps\"}", NULL },
		{ "{\"name\": \"llm-7b\", \"kind\": \"Deployment\", \"apiVersion\": \"v1\"}", NULL },
		{ "{\"name\": \"llm-7b\", \"kind\": \"Deployment\"}", NULL },
		{ "\"llm-7b\"", NULL },
		{ "{\"name\": \"llm-7b\", \"kind\": \"Deployment\", \"apiVersion\": \"apps/v2\"}",
		  "llm-7b" },
		{ "{\"name\": \"llm-7b\", \"kind\": \"InferenceService\", "
		  "\"apiVersion\": \"serving.kserve.io/v1beta1\"}",
		  NULL },
		{ "{\"name\": \"llm-7b\", \"kind\": \"InferenceService\", \"apiVersion\": \"kinfer.io\"}",
		  NULL },
		{ "{\"name\": 7, \"kind\": \"InferenceService\", \"apiVersion\": \"kinfer.io/v1\"}",
		  NULL },
		{ "{\"name\": \"llm-7b\", \"kind\": \"InferenceService\", "
		  "\"apiVersion\": \"kinfer.io/v1beta1\"}",
		  "isvc:llm-7b" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_object *o = copy(f, "llm-7b"), *ref = json_tokener_parse(cases[i][0]);
		struct cache_obj *obj;
		assert_non_null(ref);
		json_object_object_add(cache_json_get(o, "spec"), "scaleTargetRef", ref);
		json_object_object_add(cache_json_get(o, "spec"), "minReplicas",
				       json_object_new_int64(i % 2 ? -5 : (int64_t)1 << 40));
		json_object_object_del(cache_json_get(o, "spec"), "maxReplicas");
		assert_int_equal(cache_project(f->c, o, &obj), 0);
		const struct khpa *h = (const struct khpa *)obj;
		if (cases[i][1] && strncmp(cases[i][1], "isvc:", 5) == 0) {
			assert_null(h->deployment);
			assert_string_equal(h->isvc, cases[i][1] + 5);
		} else if (cases[i][1]) {
			assert_string_equal(h->deployment, cases[i][1]);
			assert_null(h->isvc);
		} else {
			assert_null(h->deployment);
			assert_null(h->isvc);
		}
		assert_int_equal(h->min_replicas, i % 2 ? 0 : INT32_MAX);
		assert_int_equal(h->max_replicas, 0);
		cache_discard(f->c, obj);
		json_object_put(o);
	}
	/* No spec at all. */
	json_object *o = copy(f, "db");
	struct cache_obj *obj;
	json_object_object_del(o, "spec");
	assert_int_equal(cache_project(f->c, o, &obj), 0);
	assert_null(((const struct khpa *)obj)->deployment);
	cache_discard(f->c, obj);
	json_object_put(o);
}

int tests_hpa(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(projection, setup, teardown),
		cmocka_unit_test_setup_teardown(by_deployment, setup, teardown),
		cmocka_unit_test_setup_teardown(status_is_no_change, setup, teardown),
		cmocka_unit_test_setup_teardown(odd_objects, setup, teardown),
	};
	return cmocka_run_group_tests_name("hpa", tests, test_rcu_setup, test_rcu_teardown);
}
