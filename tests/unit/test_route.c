/*
 * route: where a scale-to-zero service's public Service sends traffic
 * (warm pods when one exists, else the ready activators), and the
 * EndpointSlice body kinfer applies for it.
 */
#include "unit.h"

#include "route.h"

#include <errno.h>
#include <json-c/json.h>
#include <string.h>

static void choose(void **state)
{
	struct route_choice c;
	(void)state;
	struct route_pod pods[] = {
		{ "198.18.0.9", true, false },
		{ "198.18.0.3", false, false }, /* not ready (not warm yet) */
		{ "198.18.0.4", true, true },   /* being deleted */
		{ "", true, false },            /* no address yet */
		{ NULL, true, false },
		{ "198.18.0.2", true, false },
		{ "198.18.0.9", true, false },  /* the same pod twice (a stale copy) */
		{ "127.77.0.3", true, false },  /* loopback (KWOK): the API refuses it */
		{ "169.254.1.1", true, false }, /* link-local */
		{ "fd00::1", true, false },     /* IPv6 in an IPv4 slice */
		{ "not-an-ip", true, false },
	};
	struct route_pod acts[] = {
		{ "198.18.1.2", true, false },
		{ "198.18.1.1", true, false },
		{ "198.18.1.3", false, false },
	};

	/* Warm pods exist: they, sorted, on the model server's port. */
	route_choose(pods, 11, 8000, acts, 3, 8012, &c);
	assert_false(c.activator);
	assert_int_equal(c.port, 8000);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.ips[0], "198.18.0.2");
	assert_string_equal(c.ips[1], "198.18.0.9");

	/* Only addresses a slice cannot hold: as none warm. */
	route_choose(pods + 7, 4, 8000, NULL, 0, 8012, &c);
	assert_true(c.activator);
	assert_int_equal(c.n, 0);

	/* None warm (at zero, or all draining): the ready activators. */
	route_choose(pods + 1, 4, 8000, acts, 3, 8012, &c);
	assert_true(c.activator);
	assert_int_equal(c.port, 8012);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.ips[0], "198.18.1.1");
	assert_string_equal(c.ips[1], "198.18.1.2");

	/* No pods and no ready activator: no endpoint at all. */
	route_choose(NULL, 0, 8000, acts + 2, 1, 8012, &c);
	assert_true(c.activator);
	assert_int_equal(c.n, 0);
}

static void slice(void **state)
{
	struct route_choice c = {
		.activator = true, .port = 8012, .n = 2, .ips = { "198.18.1.1", "198.18.1.2" }
	};
	char h1[17], h2[17];
	(void)state;
	json_object *s = route_slice("serving", "llm", "uid-1", &c, h1);
	assert_non_null(s);
	assert_int_equal(strlen(h1), 16);
	json_object *m = json_object_object_get(s, "metadata"), *v;
	assert_string_equal(json_object_get_string(json_object_object_get(m, "name")), "llm-kinfer");
	assert_string_equal(json_object_get_string(
				    json_object_object_get(json_object_object_get(m, "annotations"),
							   "kinfer.io/applied-hash")),
			    h1);
	json_object *l = json_object_object_get(m, "labels");
	assert_string_equal(json_object_get_string(
				    json_object_object_get(l, "kubernetes.io/service-name")),
			    "llm");
	assert_string_equal(json_object_get_string(json_object_object_get(
				    l, "endpointslice.kubernetes.io/managed-by")),
			    "kinfer.io");
	assert_string_equal(json_object_get_string(json_object_object_get(l, "kinfer.io/route")),
			    "activator");
	v = json_object_array_get_idx(json_object_object_get(m, "ownerReferences"), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(v, "uid")), "uid-1");
	assert_true(json_object_get_boolean(json_object_object_get(v, "controller")));
	json_object *eps = json_object_object_get(s, "endpoints");
	assert_int_equal(json_object_array_length(eps), 2);
	v = json_object_array_get_idx(json_object_object_get(json_object_array_get_idx(eps, 1),
							     "addresses"),
				      0);
	assert_string_equal(json_object_get_string(v), "198.18.1.2");
	v = json_object_array_get_idx(json_object_object_get(s, "ports"), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(v, "name")), "http");
	assert_int_equal(json_object_get_int(json_object_object_get(v, "port")), 8012);
	json_object_put(s);

	/* Same choice, same hash; another endpoint or port, another hash. */
	s = route_slice("serving", "llm", "uid-1", &c, h2);
	assert_string_equal(h1, h2);
	json_object_put(s);
	c.n = 1;
	s = route_slice("serving", "llm", "uid-1", &c, h2);
	assert_string_not_equal(h1, h2);
	json_object_put(s);
	c.n = 0;
	s = route_slice("serving", "llm", "uid-1", &c, h2);
	assert_int_equal(json_object_array_length(json_object_object_get(s, "endpoints")), 0);
	json_object_put(s);
}

static void names(void **state)
{
	char buf[128];
	char n56[57];
	(void)state;
	assert_int_equal(route_private_name("llm", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "llm-private");
	assert_int_equal(route_slice_name("llm", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "llm-kinfer");
	memset(n56, 'a', 56);
	n56[56] = '\0'; /* 56 + "-private" = 64: over 63 */
	assert_int_equal(route_private_name(n56, buf, sizeof(buf)), -ENAMETOOLONG);
	n56[55] = '\0'; /* 55 + 8 = 63: fits */
	assert_int_equal(route_private_name(n56, buf, sizeof(buf)), 0);
}

int tests_route(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(choose),
		cmocka_unit_test(slice),
		cmocka_unit_test(names),
	};
	return cmocka_run_group_tests_name("route", tests, NULL, NULL);
}
