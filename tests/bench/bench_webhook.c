/*
 * bench_webhook: the validating webhook over TLS on loopback, as the API
 * server calls it, under a concurrent load generator. Prints "name value
 * unit" lines and asserts nothing about time (an answer that is not the
 * expected denial still fails the run).
 *
 * The server is the real one (webhook_start: libmicrohttpd + GnuTLS, its
 * thread pool, the certificate callback); the certificate is an ECDSA
 * P-256 one from a fresh CA (selfsigned_make). The load: BENCH_CLIENTS
 * threads (default 8), each a libcurl handle posting the AdmissionReview
 * recorded from kube-apiserver, tests/data/admission/review-create-bad.json
 * (a denial with four violations), for BENCH_SECONDS (default 3), three
 * times: reusing its connection (as the API server's HTTP/1.1 pool does);
 * with a new TLS handshake per request; and the same while the main thread
 * rotates the certificate files every 250 ms (the server reloads them),
 * which must cost no failed request. Latency is per request, at the client.
 */
#include "metrics.h"
#include "selfsigned.h"
#include "webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define MAX_CLIENTS 64
#define MAX_SAMPLES 2000000

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_file(const char *path, const char *text)
{
	char tmp[128];
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	FILE *f = fopen(tmp, "wb");
	if (!f)
		return -errno;
	size_t n = fwrite(text, 1, strlen(text), f);
	if (fclose(f) != 0 || n != strlen(text))
		return -EIO;
	return rename(tmp, path) == 0 ? 0 : -errno; /* a whole file or none */
}

/* A serving certificate for 127.0.0.1 from the CA (a new CA when ca_key is
 * NULL): writes ca.crt (first time), tls.crt and tls.key. */
static char *ca_pem, *ca_key_pem;

static int make_cert(const char *dir)
{
	char *ca = NULL, *cak = NULL, *crt = NULL, *key = NULL, path[96];
	int r = selfsigned_make("127.0.0.1", ca_pem, ca_key_pem, 1, &ca, &cak, &crt, &key);
	if (r < 0)
		return r;
	if (!ca_pem) {
		ca_pem = ca;
		ca_key_pem = cak;
		snprintf(path, sizeof(path), "%s/ca.crt", dir);
		r = write_file(path, ca_pem);
	} else {
		free(ca);
		free(cak);
	}
	/* The key first: until the certificate follows, the pair does not
	 * match and the server keeps the old one. */
	snprintf(path, sizeof(path), "%s/tls.key", dir);
	if (r == 0)
		r = write_file(path, key);
	snprintf(path, sizeof(path), "%s/tls.crt", dir);
	if (r == 0)
		r = write_file(path, crt);
	free(crt);
	free(key);
	return r;
}

struct client {
	pthread_t t;
	const char *url, *ca, *body;
	size_t body_len;
	bool reuse;
	double until;
	double *lat; /* seconds per request */
	size_t n, cap;
	size_t errors;
	size_t answer_len;
	char answer[256];
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	struct client *c = ud;
	size_t len = size * n, room = sizeof(c->answer) - 1 - c->answer_len;
	size_t k = len < room ? len : room;
	memcpy(c->answer + c->answer_len, p, k);
	c->answer_len += k;
	c->answer[c->answer_len] = '\0';
	return len;
}

static void *run_client(void *arg)
{
	struct client *c = arg;
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	if (!h)
		return NULL;
	curl_easy_setopt(h, CURLOPT_URL, c->url);
	curl_easy_setopt(h, CURLOPT_CAINFO, c->ca);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)c->body_len);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FORBID_REUSE, c->reuse ? 0L : 1L);
	curl_easy_setopt(h, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	while (now_s() < c->until && c->n < c->cap) {
		long code = 0;
		c->answer_len = 0;
		double t0 = now_s();
		CURLcode rc = curl_easy_perform(h);
		double t1 = now_s();
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		if (rc != CURLE_OK || code != 200 || !strstr(c->answer, "\"allowed\":false")) {
			if (c->errors++ == 0)
				fprintf(stderr,
					"bench_webhook: request failed: curl %d http %ld: %s\n",
					(int)rc, code, c->answer);
			continue;
		}
		c->lat[c->n++] = t1 - t0;
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return NULL;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int phase(const char *name, const char *url, const char *ca, const char *body, size_t len,
		 int clients, double seconds, bool reuse, const char *rotate_dir)
{
	struct client c[MAX_CLIENTS];
	size_t total = 0, errors = 0, cap = MAX_SAMPLES / (size_t)clients;
	double t0 = now_s();
	memset(c, 0, sizeof(c));
	for (int i = 0; i < clients; i++) {
		c[i] = (struct client){ .url = url,
					.ca = ca,
					.body = body,
					.body_len = len,
					.reuse = reuse,
					.until = t0 + seconds,
					.cap = cap };
		c[i].lat = malloc(cap * sizeof(double));
		if (!c[i].lat || pthread_create(&c[i].t, NULL, run_client, &c[i]) != 0)
			return -ENOMEM;
	}
	while (rotate_dir && now_s() < t0 + seconds) {
		usleep(250000);
		if (make_cert(rotate_dir) < 0)
			fprintf(stderr, "bench_webhook: rotation failed\n");
	}
	for (int i = 0; i < clients; i++)
		pthread_join(c[i].t, NULL);
	double wall = now_s() - t0;
	double *all = malloc((MAX_SAMPLES + 1) * sizeof(double));
	if (!all)
		return -ENOMEM;
	for (int i = 0; i < clients; i++) {
		memcpy(all + total, c[i].lat, c[i].n * sizeof(double));
		total += c[i].n;
		errors += c[i].errors;
		free(c[i].lat);
	}
	qsort(all, total, sizeof(double), by_value);
	printf("webhook_%s_requests %zu count\n", name, total);
	printf("webhook_%s_errors %zu count\n", name, errors);
	printf("webhook_%s_rps %.0f req/s\n", name, (double)total / wall);
	if (total) {
		printf("webhook_%s_p50 %.3f ms\n", name, all[total / 2] * 1000);
		printf("webhook_%s_p99 %.3f ms\n", name, all[(total * 99) / 100] * 1000);
		printf("webhook_%s_max %.3f ms\n", name, all[total - 1] * 1000);
	}
	free(all);
	return errors || total == 0 ? -EIO : 0;
}

int main(void)
{
	char dir[] = "/tmp/bench-webhook-XXXXXX", crt[64], key[64], cafile[64], url[64], path[1024];
	struct metrics *m = NULL;
	const char *cs = getenv("BENCH_CLIENTS"), *ss = getenv("BENCH_SECONDS");
	int clients = cs ? (int)strtol(cs, NULL, 10) : 8;
	double seconds = ss ? strtod(ss, NULL) : 3;
	struct webhook *w = NULL;
	char err[256], *body = NULL;
	long n = 0;
	int r = 1;

	if (clients < 1 || clients > MAX_CLIENTS || !(seconds > 0))
		return 2;
	log_setup(LOG_LEVEL_WARN, LOG_FORMAT_LOGFMT, stderr);
	snprintf(path, sizeof(path), "%s/admission/review-create-bad.json", KINFER_TEST_DATA);
	FILE *f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    !(body = malloc((size_t)n + 1)) || fread(body, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "bench_webhook: cannot read %s\n", path);
		if (f)
			fclose(f);
		free(body);
		return 1;
	}
	fclose(f);
	body[n] = '\0';
	if (!mkdtemp(dir))
		return 1;
	snprintf(crt, sizeof(crt), "%s/tls.crt", dir);
	snprintf(key, sizeof(key), "%s/tls.key", dir);
	snprintf(cafile, sizeof(cafile), "%s/ca.crt", dir);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (metrics_new(&m) < 0 || make_cert(dir) < 0) {
		fprintf(stderr, "bench_webhook: cannot make a certificate\n");
		goto out;
	}
	struct webhook_options o = {
		.addr = "127.0.0.1:0", .cert_file = crt, .key_file = key, .metrics = m, .quiet = 1
	};
	if (webhook_start(&o, &w, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_webhook: %s\n", err);
		goto out;
	}
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/validate", webhook_port(w));
	printf("webhook_clients %d threads\n", clients);
	printf("webhook_body %ld bytes\n", n);
	printf("webhook_cpus %ld cores\n", sysconf(_SC_NPROCESSORS_ONLN));
	r = 0;
	if (phase("keepalive", url, cafile, body, (size_t)n, clients, seconds, true, NULL) < 0)
		r = 1;
	if (phase("handshake", url, cafile, body, (size_t)n, clients, seconds, false, NULL) < 0)
		r = 1;
	if (phase("rotating", url, cafile, body, (size_t)n, clients, seconds, false, dir) < 0)
		r = 1;
	char *text = NULL, *at;
	size_t tl;
	if (metrics_render(m, &text, &tl) == 0 &&
	    (at = strstr(text, "kinfer_webhook_certificate_reloads_total{result=\"loaded\"} ")))
		printf("webhook_rotating_reloads %.0f count\n",
		       strtod(at + strlen("kinfer_webhook_certificate_reloads_total{result=\"loaded\"} "),
			      NULL) -
			       1);
	free(text);
out:
	webhook_stop(w);
	unlink(crt);
	unlink(key);
	unlink(cafile);
	rmdir(dir);
	metrics_free(m);
	free(ca_pem);
	free(ca_key_pem);
	curl_global_cleanup();
	free(body);
	return r;
}
