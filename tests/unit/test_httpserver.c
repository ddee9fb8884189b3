/*
 * httpserver: the routing table (which path and method answer what), the
 * address parser, and the server itself on 127.0.0.1 (an ephemeral port)
 * read with libcurl: /healthz, /readyz with the hook's reason, /metrics,
 * 404 and 405, and a request body that no route takes.
 */
#include "unit.h"

#include "httpserver.h"
#include "metrics.h"

#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void routes(void **state)
{
	const char *path = NULL;
	(void)state;
	assert_int_equal(httpserver_route("GET", "/healthz", &path), 200);
	assert_string_equal(path, "/healthz");
	assert_int_equal(httpserver_route("HEAD", "/readyz", &path), 200);
	assert_string_equal(path, "/readyz");
	assert_int_equal(httpserver_route("GET", "/metrics", &path), 200);
	assert_string_equal(path, "/metrics");
	assert_int_equal(httpserver_route("GET", "/", NULL), 404);
	assert_int_equal(httpserver_route("GET", "/healthz/", NULL), 404);
	assert_int_equal(httpserver_route("GET", "/metrics?x=1", NULL), 404);
	assert_int_equal(httpserver_route("POST", "/healthz", NULL), 405);
	assert_int_equal(httpserver_route("DELETE", "/nope", NULL), 405);
}

static void addresses(void **state)
{
	struct sockaddr_storage ss;
	unsigned len;
	(void)state;
	assert_int_equal(httpserver_parse_addr(":8080", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(httpserver_parse_addr("127.0.0.1:0", &ss, &len), 0);
	assert_int_equal(httpserver_parse_addr("[::1]:9443", &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(httpserver_parse_addr("localhost:80", &ss, &len), 0);
	assert_int_equal(httpserver_parse_addr("8080", &ss, &len), -EINVAL);
	assert_int_equal(httpserver_parse_addr(":65536", &ss, &len), -EINVAL);
	assert_int_equal(httpserver_parse_addr(":", &ss, &len), -EINVAL);
	assert_int_equal(httpserver_parse_addr("example.org:80", &ss, &len), -EINVAL);
}

static bool healthy(void *ud, char *msg, size_t len)
{
	(void)ud;
	(void)msg;
	(void)len;
	return true;
}

static bool not_ready(void *ud, char *msg, size_t len)
{
	(void)ud;
	snprintf(msg, len, "caches not synced: Pod");
	return false;
}

struct answer {
	long code;
	char body[4096];
	size_t len;
};

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
	struct answer *a = ud;
	size_t k = size * n;
	if (a->len + k >= sizeof(a->body))
		return 0;
	memcpy(a->body + a->len, p, k);
	a->len += k;
	a->body[a->len] = '\0';
	return k;
}

static void ask(unsigned port, const char *method, const char *path, const char *post,
		struct answer *a)
{
	char url[128];
	CURL *h = curl_easy_init();
	assert_non_null(h);
	memset(a, 0, sizeof(*a));
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	if (post)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, post);
	if (method)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->code);
	curl_easy_cleanup(h);
}

static void serves_on_loopback(void **state)
{
	static const struct metric_family fam = {
		"kinfer_test_total", "A test counter.", METRIC_COUNTER, NULL, NULL, 0
	};
	struct httpserver_hooks hooks = { .healthy = healthy, .ready = not_ready };
	struct metrics *m;
	struct httpserver *s;
	struct answer a;
	(void)state;
	assert_int_equal(metrics_new(&m), 0);
	metric_add(metrics_series(m, &fam, NULL), 3);
	assert_int_equal(httpserver_start("127.0.0.1:0", m, &hooks, &s), 0);
	unsigned port = httpserver_port(s);
	assert_true(port > 0);

	ask(port, NULL, "/healthz", NULL, &a);
	assert_int_equal(a.code, 200);
	assert_string_equal(a.body, "ok\n");
	ask(port, NULL, "/readyz", NULL, &a);
	assert_int_equal(a.code, 503);
	assert_string_equal(a.body, "caches not synced: Pod\n");
	ask(port, NULL, "/metrics", NULL, &a);
	assert_int_equal(a.code, 200);
	assert_non_null(strstr(a.body, "kinfer_test_total 3"));
	ask(port, NULL, "/nope", NULL, &a);
	assert_int_equal(a.code, 404);
	ask(port, NULL, "/healthz", "a body", &a); /* a POST */
	assert_int_equal(a.code, 405);
	ask(port, "DELETE", "/metrics", NULL, &a);
	assert_int_equal(a.code, 405);

	httpserver_stop(s);
	metrics_free(m);
}

int tests_httpserver(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(routes),
		cmocka_unit_test(addresses),
		cmocka_unit_test(serves_on_loopback),
	};
	return cmocka_run_group_tests_name("httpserver", tests, NULL, NULL);
}
