/*
 * events: the Event body events_emit writes (events.k8s.io/v1, as kubectl
 * describe and `kubectl events` read it) and the dedup window that keeps a
 * stuck object from flooding the API.
 */
#include "unit.h"

#include "events.h"

#include <string.h>

static const struct event_object pod = {
	.api_version = "v1",
	.kind = "Pod",
	.ns = "serving",
	.name = "llm-7b-abc",
	.uid = "u-1",
};

static const char *get(json_object *o, const char *a, const char *b)
{
	json_object *v = json_object_object_get(o, a);
	if (b)
		v = json_object_object_get(v, b);
	return v ? json_object_get_string(v) : NULL;
}

static void body(void **state)
{
	struct events *e;
	json_object *ev;
	(void)state;
	assert_int_equal(events_new(NULL, "kinfer.io/kinfer-operator", "host-1", &e), 0);
	assert_int_equal(events_build(e, &pod, "Warning", "WarmupFailed", "Warmup",
				      "3 requests failed", 1714557600LL * 1000000 + 7, 0x12345, &ev),
			 0);
	assert_string_equal(get(ev, "apiVersion", NULL), "events.k8s.io/v1");
	assert_string_equal(get(ev, "kind", NULL), "Event");
	assert_string_equal(get(ev, "metadata", "namespace"), "serving");
	/* Named like client-go's: object name, time in hex, a sequence. */
	assert_string_equal(get(ev, "metadata", "name"), "llm-7b-abc.617618cb1e8072345");
	assert_string_equal(get(ev, "eventTime", NULL), "2024-05-01T10:00:00.000007Z");
	assert_string_equal(get(ev, "reportingController", NULL), "kinfer.io/kinfer-operator");
	assert_string_equal(get(ev, "reportingInstance", NULL), "host-1");
	assert_string_equal(get(ev, "type", NULL), "Warning");
	assert_string_equal(get(ev, "reason", NULL), "WarmupFailed");
	assert_string_equal(get(ev, "action", NULL), "Warmup");
	assert_string_equal(get(ev, "note", NULL), "3 requests failed");
	assert_string_equal(get(ev, "regarding", "kind"), "Pod");
	assert_string_equal(get(ev, "regarding", "name"), "llm-7b-abc");
	assert_string_equal(get(ev, "regarding", "namespace"), "serving");
	assert_string_equal(get(ev, "regarding", "uid"), "u-1");
	json_object_put(ev);
	events_free(e);
}

/* A cluster-scoped object: the Event goes to "default", regarding has no
 * namespace; a very long name is cut so the Event's name stays valid. */
static void cluster_scoped_and_long_name(void **state)
{
	struct events *e;
	json_object *ev;
	char longname[300];
	(void)state;
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	struct event_object node = { .api_version = "v1", .kind = "Node", .name = longname };
	assert_int_equal(events_new(NULL, "c", NULL, &e), 0);
	assert_int_equal(events_build(e, &node, "Normal", "R", "A", "n", 0, 0, &ev), 0);
	assert_string_equal(get(ev, "metadata", "namespace"), "default");
	assert_null(json_object_object_get(json_object_object_get(ev, "regarding"), "namespace"));
	assert_string_equal(get(ev, "reportingInstance", NULL), "kinfer-operator");
	assert_true(strlen(get(ev, "metadata", "name")) <= 200 + 1 + 16 + 4);
	json_object_put(ev);
	events_free(e);
}

static void dedup_window(void **state)
{
	struct events *e;
	const struct event_object other = { .name = "x", .uid = "u-2" };
	(void)state;
	assert_int_equal(events_new(NULL, "c", "i", &e), 0);
	assert_false(events_seen(e, &pod, "ScaledUp", "to 3", 1000));
	assert_true(events_seen(e, &pod, "ScaledUp", "to 3", 1000 + EVENTS_DEDUP_S - 1));
	/* Another note, reason or object is another event. */
	assert_false(events_seen(e, &pod, "ScaledUp", "to 4", 1001));
	assert_false(events_seen(e, &pod, "ScaledDown", "to 3", 1001));
	assert_false(events_seen(e, &other, "ScaledUp", "to 3", 1001));
	/* The fields are kept apart: ("ScaledUpt", "o 3") is not ("ScaledUp", "to 3"). */
	assert_false(events_seen(e, &pod, "ScaledUpt", "o 3", 1001));
	/* After the window it is written again (and the window restarts). */
	assert_false(events_seen(e, &pod, "ScaledUp", "to 3", 1000 + EVENTS_DEDUP_S));
	assert_true(events_seen(e, &pod, "ScaledUp", "to 3", 1000 + EVENTS_DEDUP_S + 1));
	events_free(e);
}

/* No events object (events disabled): emitting is a no-op, not a crash. */
static void disabled(void **state)
{
	(void)state;
	assert_int_equal(events_emit(NULL, &pod, "Normal", "R", "A", "%s", "x"), 0);
	events_free(NULL);
}

int tests_events(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(body),
		cmocka_unit_test(cluster_scoped_and_long_name),
		cmocka_unit_test(dedup_window),
		cmocka_unit_test(disabled),
	};
	return cmocka_run_group_tests_name("events", tests, NULL, NULL);
}
