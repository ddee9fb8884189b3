/*
 * selfsigned: the CA and serving certificate kinfer makes for itself. The
 * serving certificate verifies against its CA for every host asked (DNS
 * names and IPs), a second one signed by the same CA verifies against the
 * first CA (what every replica relies on), and bad hosts are refused.
 */
#include "unit.h"

#include "selfsigned.h"
#include "webhook.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static gnutls_x509_crt_t crt_of(const char *pem)
{
	gnutls_x509_crt_t c;
	gnutls_datum_t d = { (unsigned char *)pem, (unsigned)strlen(pem) };
	assert_int_equal(gnutls_x509_crt_init(&c), 0);
	assert_int_equal(gnutls_x509_crt_import(c, &d, GNUTLS_X509_FMT_PEM), 0);
	return c;
}

static unsigned verify(const char *cert_pem, const char *ca_pem)
{
	gnutls_x509_crt_t c = crt_of(cert_pem), ca = crt_of(ca_pem);
	unsigned status = 99;
	assert_true(gnutls_x509_crt_verify(c, &ca, 1, 0, &status) >= 0);
	gnutls_x509_crt_deinit(c);
	gnutls_x509_crt_deinit(ca);
	return status;
}

static void make_and_reuse_ca(void **state)
{
	char *ca, *ca_key, *crt, *key, *ca2, *ca_key2, *crt2, *key2;
	unsigned char ip[4];
	(void)state;
	assert_int_equal(selfsigned_make("kinfer-operator.kinfer-system.svc,127.0.0.1", NULL, NULL,
					 365, &ca, &ca_key, &crt, &key),
			 0);
	assert_non_null(strstr(crt, "BEGIN CERTIFICATE"));
	assert_non_null(strstr(key, "PRIVATE KEY"));
	assert_int_equal(verify(crt, ca), 0);
	gnutls_x509_crt_t c = crt_of(crt);
	assert_true(gnutls_x509_crt_check_hostname2(c, "kinfer-operator.kinfer-system.svc", 0));
	assert_false(gnutls_x509_crt_check_hostname2(c, "other.kinfer-system.svc", 0));
	inet_pton(AF_INET, "127.0.0.1", ip);
	assert_true(gnutls_x509_crt_check_ip(c, ip, 4, 0));
	time_t left = gnutls_x509_crt_get_expiration_time(c) - time(NULL);
	assert_true(left > 364L * 86400 && left <= 365L * 86400);
	gnutls_x509_crt_deinit(c);
	/* A new serving certificate from the same CA: the CA is unchanged and
	 * the new one verifies against the first CA. */
	assert_int_equal(selfsigned_make("127.0.0.1", ca, ca_key, 30, &ca2, &ca_key2, &crt2, &key2),
			 0);
	assert_string_equal(ca2, ca);
	assert_string_not_equal(crt2, crt);
	assert_int_equal(verify(crt2, ca), 0);
	/* ... and not against another CA. */
	char *oca, *oca_key, *ocrt, *okey;
	assert_int_equal(selfsigned_make("127.0.0.1", NULL, NULL, 30, &oca, &oca_key, &ocrt, &okey),
			 0);
	assert_int_not_equal(verify(crt2, oca), 0);
	char *all[] = { ca, ca_key, crt, key, ca2, ca_key2, crt2, key2, oca, oca_key, ocrt, okey };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		free(all[i]);
}

static void refused(void **state)
{
	char *a = NULL, *b = NULL, *c = NULL, *d = NULL;
	(void)state;
	assert_int_equal(selfsigned_make("", NULL, NULL, 30, &a, &b, &c, &d), -EINVAL);
	assert_int_equal(selfsigned_make("x", "not pem", "not pem", 30, &a, &b, &c, &d), -EBADMSG);
	assert_null(a);
}

/* Issue 12 item 17: old and new CA in the caBundle during a rotation. */
static void bundle_during_rotation(void **state)
{
	const char *ca = "-----BEGIN CERTIFICATE-----\nNEW\n-----END CERTIFICATE-----\n";
	const char *old = "-----BEGIN CERTIFICATE-----\nOLD\n-----END CERTIFICATE-----\n";
	char *b, at[32];
	time_t now = time(NULL);
	(void)state;
	snprintf(at, sizeof(at), "%lld", (long long)now - 600);
	assert_int_equal(selfsigned_bundle(ca, old, at, now, &b), 0);
	assert_string_equal(b, "-----BEGIN CERTIFICATE-----\nNEW\n-----END CERTIFICATE-----\n"
			       "-----BEGIN CERTIFICATE-----\nOLD\n-----END CERTIFICATE-----\n");
	free(b);
	/* 3 hours later every replica serves the new pair: the new CA alone. */
	snprintf(at, sizeof(at), "%lld", (long long)now - 3 * 3600 - 1);
	assert_int_equal(selfsigned_bundle(ca, old, at, now, &b), 0);
	assert_string_equal(b, ca);
	free(b);
	assert_int_equal(selfsigned_bundle(ca, NULL, NULL, now, &b), 0);
	assert_string_equal(b, ca);
	free(b);
}

/* Issue 12 item 17: TLS 1.2 only ECDHE with AES-GCM or ChaCha20, and 1.3. */
static void tls_suites(void **state)
{
	static const char *const want[] = {
		"TLS_AES_256_GCM_SHA384",
		"TLS_AES_128_GCM_SHA256",
		"TLS_CHACHA20_POLY1305_SHA256",
		"TLS_ECDHE_ECDSA_AES_256_GCM_SHA384",
		"TLS_ECDHE_ECDSA_AES_128_GCM_SHA256",
		"TLS_ECDHE_ECDSA_CHACHA20_POLY1305",
		"TLS_ECDHE_RSA_AES_256_GCM_SHA384",
		"TLS_ECDHE_RSA_AES_128_GCM_SHA256",
		"TLS_ECDHE_RSA_CHACHA20_POLY1305",
	};
	gnutls_priority_t p;
	const char *err;
	size_t n = 0;
	(void)state;
	assert_int_equal(gnutls_priority_init(&p, WEBHOOK_TLS_PRIORITIES, &err), 0);
	for (unsigned i = 0;; i++) {
		unsigned idx;
		unsigned char id[2];
		gnutls_kx_algorithm_t kx;
		gnutls_cipher_algorithm_t c;
		gnutls_mac_algorithm_t m;
		gnutls_protocol_t v;
		int r = gnutls_priority_get_cipher_suite_index(p, i, &idx);
		if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (r != 0)
			continue;
		const char *name = gnutls_cipher_suite_info(idx, id, &kx, &c, &m, &v);
		bool ok = false;
		for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++)
			ok = ok || strcmp(name, want[k]) == 0;
		if (!ok)
			fprintf(stderr, "unexpected suite %s\n", name);
		assert_true(ok);
		assert_true(strstr(name, "CBC") == NULL && strstr(name, "SHA1") == NULL);
		n++;
	}
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
	gnutls_priority_deinit(p);
}

int tests_selfsigned(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(make_and_reuse_ca),
		cmocka_unit_test(refused),
		cmocka_unit_test(bundle_during_rotation),
		cmocka_unit_test(tls_suites),
	};
	return cmocka_run_group_tests_name("selfsigned", tests, NULL, NULL);
}
