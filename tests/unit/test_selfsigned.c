/*
 * selfsigned: the CA and serving certificate kinfer makes for itself. The
 * serving certificate verifies against its CA for every host asked (DNS
 * names and IPs), a second one signed by the same CA verifies against the
 * first CA (what every replica relies on), and bad hosts are refused.
 */
#include "unit.h"

#include "selfsigned.h"

#include <arpa/inet.h>
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
	assert_int_equal(selfsigned_make("kinfer-operator.kinfer-system.svc,127.0.0.1", NULL, NULL, 365,
					 &ca, &ca_key, &crt, &key), 0);
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
	assert_int_equal(selfsigned_make("127.0.0.1", ca, ca_key, 30, &ca2, &ca_key2, &crt2, &key2), 0);
	assert_string_equal(ca2, ca);
	assert_string_not_equal(crt2, crt);
	assert_int_equal(verify(crt2, ca), 0);
	/* ... and not against another CA. */
	char *oca, *oca_key, *ocrt, *okey;
	assert_int_equal(selfsigned_make("127.0.0.1", NULL, NULL, 30, &oca, &oca_key, &ocrt, &okey), 0);
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

int tests_selfsigned(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(make_and_reuse_ca),
		cmocka_unit_test(refused),
	};
	return cmocka_run_group_tests_name("selfsigned", tests, NULL, NULL);
}
