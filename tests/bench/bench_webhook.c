/*
 * bench_webhook: the validating webhook over TLS on loopback, as the API
 * server calls it, under a concurrent load generator. Prints "name value
 * unit" lines and asserts nothing about time (an answer that is not the
 * expected denial still fails the run).
 *
 * The server is the real one (webhook_start: libmicrohttpd + GnuTLS, its
 * thread pool, the certificate callback); the certificate is a fresh
 * self-signed ECDSA P-256 one made with GnuTLS. The load: BENCH_CLIENTS
 * threads (default 8), each a libcurl handle posting the recorded
 * AdmissionReview tests/data/admission/review-create-bad.json (a denial
 * with two violations) for BENCH_SECONDS (default 3), twice: reusing its
 * connection (as the API server's HTTP/1.1 pool does), then with a new TLS
 * handshake per request. Latency is per request, at the client.
 */
#include "webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
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

static int write_file(const char *path, const gnutls_datum_t *d)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -errno;
	size_t n = fwrite(d->data, 1, d->size, f);
	return fclose(f) == 0 && n == d->size ? 0 : -EIO;
}

/* A self-signed P-256 certificate for 127.0.0.1, its own trust anchor. */
static int make_cert(const char *crt_path, const char *key_path)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t out = { NULL, 0 };
	unsigned char serial[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	unsigned char ip[4] = { 127, 0, 0, 1 };
	time_t t = time(NULL);
	int r = -EINVAL;

	if (gnutls_x509_privkey_init(&key) < 0 || gnutls_x509_crt_init(&crt) < 0)
		goto out;
	if (gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
					 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0 ||
	    gnutls_x509_crt_set_version(crt, 3) < 0 ||
	    gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, t - 60) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt, t + 3600) < 0 ||
	    gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "127.0.0.1", 9) < 0 ||
	    gnutls_x509_crt_set_key(crt, key) < 0 ||
	    gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, sizeof(ip),
						 GNUTLS_FSAN_SET) < 0 ||
	    gnutls_x509_crt_set_basic_constraints(crt, 1, -1) < 0 ||
	    gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE |
					  GNUTLS_KEY_KEY_CERT_SIGN) < 0 ||
	    gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0)
		goto out;
	if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out) < 0 ||
	    write_file(crt_path, &out) < 0)
		goto out;
	gnutls_free(out.data);
	out.data = NULL;
	if (gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &out) < 0 ||
	    write_file(key_path, &out) < 0)
		goto out;
	r = 0;
out:
	gnutls_free(out.data);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
	return r;
}

struct client {
	pthread_t t;
	const char *url, *ca, *body;
	size_t body_len;
	bool reuse;
	double until;
	double *lat;          /* seconds per request */
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
				fprintf(stderr, "bench_webhook: request failed: curl %d http %ld: %s\n",
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

static int phase(const char *name, const char *url, const char *ca, const char *body,
		 size_t len, int clients, double seconds, bool reuse)
{
	struct client c[MAX_CLIENTS];
	size_t total = 0, errors = 0, cap = MAX_SAMPLES / (size_t)clients;
	double t0 = now_s();
	memset(c, 0, sizeof(c));
	for (int i = 0; i < clients; i++) {
		c[i] = (struct client){ .url = url, .ca = ca, .body = body, .body_len = len,
					.reuse = reuse, .until = t0 + seconds, .cap = cap };
		c[i].lat = malloc(cap * sizeof(double));
		if (!c[i].lat || pthread_create(&c[i].t, NULL, run_client, &c[i]) != 0)
			return -ENOMEM;
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
	char dir[] = "/tmp/bench-webhook-XXXXXX", crt[64], key[64], url[64], path[1024];
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
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (make_cert(crt, key) < 0) {
		fprintf(stderr, "bench_webhook: cannot make a certificate\n");
		goto out;
	}
	struct webhook_options o = { .addr = "127.0.0.1:0", .cert_file = crt, .key_file = key,
				     .quiet = 1 };
	if (webhook_start(&o, &w, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_webhook: %s\n", err);
		goto out;
	}
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/validate", webhook_port(w));
	printf("webhook_clients %d threads\n", clients);
	printf("webhook_body %ld bytes\n", n);
	printf("webhook_cpus %ld cores\n", sysconf(_SC_NPROCESSORS_ONLN));
	r = 0;
	if (phase("keepalive", url, crt, body, (size_t)n, clients, seconds, true) < 0)
		r = 1;
	if (phase("handshake", url, crt, body, (size_t)n, clients, seconds, false) < 0)
		r = 1;
out:
	webhook_stop(w);
	unlink(crt);
	unlink(key);
	rmdir(dir);
	curl_global_cleanup();
	free(body);
	return r;
}
