/*
 * Self-signed serving certificates: GnuTLS makes the keys and signs, the
 * API client keeps them in a Secret and writes the caBundle.
 */
#include "selfsigned.h"

#include "base64.h"
#include "cache.h"
#include "kube.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CA_DAYS 3650
#define CERT_DAYS 365
#define RENEW_BEFORE_S (30L * 86400)
#define CA_KEEP_S (365L * 86400)
#define MAX_HOSTS 16
#define MAX_TRIES 3
/* After a CA rotation the previous CA stays in the caBundle this long: every
 * replica re-reads the Secret within the source interval (1 h) and then
 * serves the new pair; until then the API server must trust both. */
#define PREV_CA_KEEP_S (3L * 3600)

static const struct kube_resource res_mutating = { "admissionregistration.k8s.io", "v1",
						   "MutatingWebhookConfiguration",
						   "mutatingwebhookconfigurations", false };
static const struct kube_resource res_validating = { "admissionregistration.k8s.io", "v1",
						     "ValidatingWebhookConfiguration",
						     "validatingwebhookconfigurations", false };

struct selfsigned {
	struct selfsigned_options o;
	char ns[254], name[254];
	char *served; /* tls.crt last handed to the server */
};

/* ---- certificates ------------------------------------------------------- */

static char *datum_str(const gnutls_datum_t *d)
{
	char *s = malloc(d->size + 1);
	if (s) {
		memcpy(s, d->data, d->size);
		s[d->size] = '\0';
	}
	return s;
}

static int random_serial(gnutls_x509_crt_t crt)
{
	unsigned char serial[16];
	if (gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial)) < 0)
		return -EIO;
	serial[0] &= 0x7f; /* positive */
	return gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ? -EINVAL : 0;
}

static int new_key(gnutls_x509_privkey_t *ret)
{
	if (gnutls_x509_privkey_init(ret) < 0)
		return -ENOMEM;
	if (gnutls_x509_privkey_generate(*ret, GNUTLS_PK_ECDSA,
					 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0)
		return -EIO;
	return 0;
}

static int set_common(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const char *cn, int days)
{
	time_t t = time(NULL);
	if (gnutls_x509_crt_set_version(crt, 3) < 0 || random_serial(crt) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, t - 300) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt, t + (time_t)days * 86400) < 0 ||
	    gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
					  (unsigned)strlen(cn)) < 0 ||
	    gnutls_x509_crt_set_key(crt, key) < 0)
		return -EINVAL;
	return 0;
}

/* Each host as a DNS or IP subject alternative name. */
static int set_hosts(gnutls_x509_crt_t crt, const char *hosts, char *first, size_t first_len)
{
	char buf[1024], *save = NULL;
	int n = 0;
	snprintf(buf, sizeof(buf), "%s", hosts);
	for (char *h = strtok_r(buf, ", ", &save); h && n < MAX_HOSTS;
	     h = strtok_r(NULL, ", ", &save)) {
		unsigned char ip[16];
		int r;
		if (n == 0)
			snprintf(first, first_len, "%s", h);
		if (inet_pton(AF_INET, h, ip) == 1)
			r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 4,
								 n ? GNUTLS_FSAN_APPEND :
								     GNUTLS_FSAN_SET);
		else if (inet_pton(AF_INET6, h, ip) == 1)
			r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 16,
								 n ? GNUTLS_FSAN_APPEND :
								     GNUTLS_FSAN_SET);
		else
			r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, h,
								 (unsigned)strlen(h),
								 n ? GNUTLS_FSAN_APPEND :
								     GNUTLS_FSAN_SET);
		if (r < 0)
			return -EINVAL;
		n++;
	}
	return n ? 0 : -EINVAL;
}

static int import_pair(const char *cert_pem, const char *key_pem, gnutls_x509_crt_t *crt,
		       gnutls_x509_privkey_t *key)
{
	gnutls_datum_t c = { (unsigned char *)cert_pem, (unsigned)strlen(cert_pem) };
	gnutls_datum_t k = { (unsigned char *)key_pem, (unsigned)strlen(key_pem) };
	if (gnutls_x509_crt_init(crt) < 0 || gnutls_x509_privkey_init(key) < 0)
		return -ENOMEM;
	if (gnutls_x509_crt_import(*crt, &c, GNUTLS_X509_FMT_PEM) < 0 ||
	    gnutls_x509_privkey_import(*key, &k, GNUTLS_X509_FMT_PEM) < 0)
		return -EBADMSG;
	return 0;
}

int selfsigned_make(const char *hosts, const char *ca_cert_pem, const char *ca_key_pem, int days,
		    char **ret_ca_cert, char **ret_ca_key, char **ret_cert, char **ret_key)
{
	gnutls_x509_crt_t ca = NULL, crt = NULL;
	gnutls_x509_privkey_t ca_key = NULL, key = NULL;
	gnutls_datum_t d[4] = { { NULL, 0 }, { NULL, 0 }, { NULL, 0 }, { NULL, 0 } };
	char first[256] = "kinfer-webhook";
	char *out[4] = { NULL, NULL, NULL, NULL };
	int r = -EINVAL;

	if (ca_cert_pem && ca_key_pem) {
		r = import_pair(ca_cert_pem, ca_key_pem, &ca, &ca_key);
		if (r < 0)
			goto out;
	} else {
		r = -ENOMEM;
		if (gnutls_x509_crt_init(&ca) < 0 || (r = new_key(&ca_key)) < 0)
			goto out;
		r = -EINVAL;
		if (set_common(ca, ca_key, "kinfer-webhook-ca", CA_DAYS) < 0 ||
		    gnutls_x509_crt_set_basic_constraints(ca, 1, 0) < 0 ||
		    gnutls_x509_crt_set_key_usage(ca, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN |
							      GNUTLS_KEY_DIGITAL_SIGNATURE) < 0 ||
		    gnutls_x509_crt_sign2(ca, ca, ca_key, GNUTLS_DIG_SHA256, 0) < 0)
			goto out;
	}
	r = -ENOMEM;
	if (gnutls_x509_crt_init(&crt) < 0 || (r = new_key(&key)) < 0)
		goto out;
	r = -EINVAL;
	if (set_hosts(crt, hosts, first, sizeof(first)) < 0 || set_common(crt, key, first, days) < 0 ||
	    gnutls_x509_crt_set_basic_constraints(crt, 0, -1) < 0 ||
	    gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE |
						       GNUTLS_KEY_KEY_ENCIPHERMENT) < 0 ||
	    gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0) < 0 ||
	    gnutls_x509_crt_sign2(crt, ca, ca_key, GNUTLS_DIG_SHA256, 0) < 0)
		goto out;
	if (gnutls_x509_crt_export2(ca, GNUTLS_X509_FMT_PEM, &d[0]) < 0 ||
	    gnutls_x509_privkey_export2(ca_key, GNUTLS_X509_FMT_PEM, &d[1]) < 0 ||
	    gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d[2]) < 0 ||
	    gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &d[3]) < 0)
		goto out;
	r = -ENOMEM;
	for (int i = 0; i < 4; i++)
		if (!(out[i] = datum_str(&d[i])))
			goto out;
	*ret_ca_cert = out[0];
	*ret_ca_key = out[1];
	*ret_cert = out[2];
	*ret_key = out[3];
	memset(out, 0, sizeof(out));
	r = 0;
out:
	for (int i = 0; i < 4; i++) {
		free(out[i]);
		gnutls_free(d[i].data);
	}
	gnutls_x509_crt_deinit(ca);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(ca_key);
	gnutls_x509_privkey_deinit(key);
	return r;
}

/* ---- what the Secret holds ---------------------------------------------- */

struct material {
	char *ca_crt, *ca_key, *tls_crt, *tls_key;
	char *prev_ca;    /* the CA before the last rotation, or NULL */
	char *rotated_at; /* when it was replaced, Unix seconds */
};

static void material_free(struct material *m)
{
	free(m->ca_crt);
	free(m->ca_key);
	free(m->tls_crt);
	free(m->tls_key);
	free(m->prev_ca);
	free(m->rotated_at);
	memset(m, 0, sizeof(*m));
}

static char *data_field(json_object *secret, const char *key)
{
	json_object *data = cache_json_get(secret, "data");
	const char *b64 = cache_json_key(data, key);
	unsigned char *raw;
	size_t n;
	if (!b64 || base64_decode(b64, strlen(b64), &raw, &n) < 0)
		return NULL;
	return (char *)raw;
}

static bool covers(gnutls_x509_crt_t crt, const char *hosts)
{
	char buf[1024], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", hosts);
	for (char *h = strtok_r(buf, ", ", &save); h; h = strtok_r(NULL, ", ", &save)) {
		unsigned char ip[16];
		if (inet_pton(AF_INET, h, ip) == 1) {
			if (!gnutls_x509_crt_check_ip(crt, ip, 4, 0))
				return false;
		} else if (inet_pton(AF_INET6, h, ip) == 1) {
			if (!gnutls_x509_crt_check_ip(crt, ip, 16, 0))
				return false;
		} else if (!gnutls_x509_crt_check_hostname2(crt, h, 0)) {
			return false;
		}
	}
	return true;
}

/* Which parts are still good: the CA (a year left), the serving
 * certificate (30 days left, for the hosts, signed by that CA). */
static void judge(const struct material *m, const char *hosts, bool *ret_ca_ok, bool *ret_cert_ok)
{
	gnutls_x509_crt_t ca = NULL, crt = NULL;
	gnutls_x509_privkey_t ca_key = NULL, key = NULL;
	time_t now = time(NULL);
	unsigned status = 1;

	*ret_ca_ok = *ret_cert_ok = false;
	if (!m->ca_crt || !m->ca_key || import_pair(m->ca_crt, m->ca_key, &ca, &ca_key) < 0)
		goto out;
	*ret_ca_ok = gnutls_x509_crt_get_expiration_time(ca) - now > CA_KEEP_S;
	if (!*ret_ca_ok || !m->tls_crt || !m->tls_key ||
	    import_pair(m->tls_crt, m->tls_key, &crt, &key) < 0)
		goto out;
	*ret_cert_ok = gnutls_x509_crt_get_expiration_time(crt) - now > RENEW_BEFORE_S &&
		       covers(crt, hosts) && gnutls_x509_crt_verify(crt, &ca, 1, 0, &status) >= 0 &&
		       status == 0;
out:
	gnutls_x509_crt_deinit(ca);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(ca_key);
	gnutls_x509_privkey_deinit(key);
}

static int put_b64(json_object *data, const char *k, const char *pem)
{
	char *b64;
	size_t n;
	if (base64_encode((const unsigned char *)pem, strlen(pem), &b64, &n) < 0)
		return -ENOMEM;
	json_object_object_add(data, k, json_object_new_string(b64));
	free(b64);
	return 0;
}

/* Write m into the Secret: create it (secret NULL) or update what was read. */
static int store(struct selfsigned *s, json_object *secret, const struct material *m,
		 struct kube_status *st)
{
	json_object *body, *data = json_object_new_object();
	int r;
	if (!data)
		return -ENOMEM;
	if (put_b64(data, "ca.crt", m->ca_crt) < 0 || put_b64(data, "ca.key", m->ca_key) < 0 ||
	    put_b64(data, "tls.crt", m->tls_crt) < 0 || put_b64(data, "tls.key", m->tls_key) < 0 ||
	    (m->prev_ca && put_b64(data, "ca-previous.crt", m->prev_ca) < 0) ||
	    (m->rotated_at && put_b64(data, "ca-rotated-at", m->rotated_at) < 0)) {
		json_object_put(data);
		return -ENOMEM;
	}
	if (secret) {
		body = json_object_get(secret);
		json_object_object_add(body, "data", data);
		r = kube_update(s->o.client, &kube_res_secrets, s->ns, s->name, NULL, body, NULL,
				NULL, st);
	} else {
		body = json_object_new_object();
		json_object *meta = json_object_new_object(), *labels = json_object_new_object();
		json_object_object_add(body, "apiVersion", json_object_new_string("v1"));
		json_object_object_add(body, "kind", json_object_new_string("Secret"));
		json_object_object_add(meta, "name", json_object_new_string(s->name));
		json_object_object_add(meta, "namespace", json_object_new_string(s->ns));
		json_object_object_add(labels, "app.kubernetes.io/managed-by",
				       json_object_new_string("kinfer"));
		json_object_object_add(meta, "labels", labels);
		json_object_object_add(body, "metadata", meta);
		json_object_object_add(body, "type", json_object_new_string("Opaque"));
		json_object_object_add(body, "data", data);
		r = kube_create(s->o.client, &kube_res_secrets, s->ns, NULL, NULL, body, NULL, NULL,
				st);
	}
	json_object_put(body);
	return r;
}

/* Read the Secret; renew what is missing or due; write it back. A lost race
 * (AlreadyExists, Conflict) reads again. */
static int ensure(struct selfsigned *s, struct material *m, char *err, size_t errlen)
{
	struct kube_status st;
	int r = -EIO;

	for (int attempt = 0; attempt < MAX_TRIES; attempt++) {
		json_object *secret = NULL;
		bool ca_ok, cert_ok;
		material_free(m);
		r = kube_get(s->o.client, &kube_res_secrets, s->ns, s->name, NULL, &secret, &st);
		if (r < 0 && r != -ENOENT) {
			snprintf(err, errlen, "reading Secret %s/%s: %s", s->ns, s->name, st.message);
			return r;
		}
		m->ca_crt = data_field(secret, "ca.crt");
		m->ca_key = data_field(secret, "ca.key");
		m->tls_crt = data_field(secret, "tls.crt");
		m->tls_key = data_field(secret, "tls.key");
		m->prev_ca = data_field(secret, "ca-previous.crt");
		m->rotated_at = data_field(secret, "ca-rotated-at");
		judge(m, s->o.hosts, &ca_ok, &cert_ok);
		if (ca_ok && cert_ok) {
			json_object_put(secret);
			return 0;
		}
		struct material fresh = { 0 };
		r = selfsigned_make(s->o.hosts, ca_ok ? m->ca_crt : NULL, ca_ok ? m->ca_key : NULL,
				    CERT_DAYS, &fresh.ca_crt, &fresh.ca_key, &fresh.tls_crt,
				    &fresh.tls_key);
		/* A new CA: the old one (replicas may still serve its pair) is
		 * kept beside it for the caBundle; a kept CA keeps what was. */
		const char *prev = ca_ok ? m->prev_ca : m->ca_crt;
		char now_s[32];
		snprintf(now_s, sizeof(now_s), "%lld", (long long)time(NULL));
		if (r == 0 && prev && !(fresh.prev_ca = strdup(prev)))
			r = -ENOMEM;
		if (r == 0 && prev &&
		    !(fresh.rotated_at = strdup(ca_ok && m->rotated_at ? m->rotated_at : now_s)))
			r = -ENOMEM;
		if (r < 0) {
			json_object_put(secret);
			material_free(&fresh);
			snprintf(err, errlen, "cannot make a certificate for \"%s\"", s->o.hosts);
			return r;
		}
		r = store(s, secret, &fresh, &st);
		json_object_put(secret);
		if (r == 0) {
			log_info("webhook certificate written", "secret=%s/%s new_ca=%s hosts=%s",
				 s->ns, s->name, ca_ok ? "false" : "true", s->o.hosts);
			material_free(m);
			*m = fresh;
			return 0;
		}
		material_free(&fresh);
		if (r != -EEXIST && r != -ESTALE) {
			snprintf(err, errlen, "writing Secret %s/%s: %s", s->ns, s->name, st.message);
			return r;
		}
	}
	snprintf(err, errlen, "Secret %s/%s kept changing under us", s->ns, s->name);
	return r;
}

int selfsigned_bundle(const char *ca, const char *prev_ca, const char *rotated_at, time_t now,
		      char **ret)
{
	long long at = rotated_at ? strtoll(rotated_at, NULL, 10) : 0;
	bool both = prev_ca && *prev_ca && at > 0 && now - at < PREV_CA_KEEP_S &&
		    strcmp(prev_ca, ca) != 0;
	size_t n = strlen(ca) + (both ? strlen(prev_ca) + 1 : 0) + 1;
	char *b = malloc(n);
	if (!b)
		return -ENOMEM;
	snprintf(b, n, "%s%s%s", ca, both && ca[0] && ca[strlen(ca) - 1] != '\n' ? "\n" : "",
		 both ? prev_ca : "");
	*ret = b;
	return 0;
}

/* Set every webhook's caBundle in one configuration to the CA. */
static int inject_one(struct selfsigned *s, const struct kube_resource *res, const char *ca_b64)
{
	json_object *cfg = NULL, *ops = NULL;
	struct kube_status st;
	char path[64];
	int r = kube_get(s->o.client, res, NULL, s->o.configuration, NULL, &cfg, &st);
	if (r < 0) {
		log_warn("cannot read the webhook configuration", "kind=%s name=%s error=%s",
			 res->kind, s->o.configuration, st.message);
		return r;
	}
	json_object *hooks = cache_json_get(cfg, "webhooks");
	size_t n = hooks && json_object_is_type(hooks, json_type_array) ?
			   json_object_array_length(hooks) :
			   0;
	ops = json_object_new_array();
	if (!ops) {
		json_object_put(cfg);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n && i < 64; i++) {
		const char *cur = cache_json_str(json_object_array_get_idx(hooks, i),
						 "clientConfig.caBundle");
		if (cur && strcmp(cur, ca_b64) == 0)
			continue;
		json_object *op = json_object_new_object();
		snprintf(path, sizeof(path), "/webhooks/%zu/clientConfig/caBundle", i);
		json_object_object_add(op, "op", json_object_new_string("add"));
		json_object_object_add(op, "path", json_object_new_string(path));
		json_object_object_add(op, "value", json_object_new_string(ca_b64));
		json_object_array_add(ops, op);
	}
	json_object_put(cfg);
	size_t changed = json_object_array_length(ops);
	if (changed) {
		r = kube_patch(s->o.client, res, NULL, s->o.configuration, NULL, KUBE_PATCH_JSON,
			       json_object_to_json_string_ext(
				       ops, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
			       NULL, NULL, &st);
		if (r < 0)
			log_warn("cannot set the webhook configuration's caBundle",
				 "kind=%s name=%s error=%s", res->kind, s->o.configuration,
				 st.message);
		else
			log_info("webhook caBundle set", "kind=%s name=%s webhooks=%zu", res->kind,
				 s->o.configuration, changed);
	}
	json_object_put(ops);
	return r;
}

int selfsigned_source(void *ud, char **ret_cert, char **ret_key, char *err, size_t errlen)
{
	struct selfsigned *s = ud;
	struct material m = { 0 };
	char *ca_b64 = NULL, *bundle = NULL;
	size_t n;
	int r = ensure(s, &m, err, errlen);
	if (r < 0)
		return r;
	/* Best effort: the server can serve before the configurations exist;
	 * the next round (hourly) tries again. The bundle is written before
	 * this replica serves a new pair; after a CA rotation it holds the
	 * previous CA too, for the replicas still serving its pair. */
	if (selfsigned_bundle(m.ca_crt, m.prev_ca, m.rotated_at, time(NULL), &bundle) == 0 &&
	    base64_encode((const unsigned char *)bundle, strlen(bundle), &ca_b64, &n) == 0) {
		inject_one(s, &res_mutating, ca_b64);
		inject_one(s, &res_validating, ca_b64);
		free(ca_b64);
	}
	free(bundle);
	if (s->served && strcmp(s->served, m.tls_crt) == 0) {
		material_free(&m);
		return 0;
	}
	free(s->served);
	s->served = strdup(m.tls_crt);
	*ret_cert = m.tls_crt;
	*ret_key = m.tls_key;
	m.tls_crt = m.tls_key = NULL;
	material_free(&m);
	return s->served ? 1 : -ENOMEM;
}

int selfsigned_new(const struct selfsigned_options *o, struct selfsigned **ret, char *err,
		   size_t errlen)
{
	const char *slash = o->secret ? strchr(o->secret, '/') : NULL;
	struct selfsigned *s;
	if (!slash || slash == o->secret || !slash[1] || (size_t)(slash - o->secret) >= 254 ||
	    strlen(slash + 1) >= 254) {
		snprintf(err, errlen, "--webhook-secret: \"%s\" is not namespace/name",
			 o->secret ? o->secret : "");
		return -EINVAL;
	}
	if (!o->hosts || !*o->hosts || !o->configuration || !*o->configuration) {
		snprintf(err, errlen,
			 "--webhook-cert-hosts and --webhook-configuration are required "
			 "with --webhook-self-signed");
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->o = *o;
	memcpy(s->ns, o->secret, (size_t)(slash - o->secret));
	snprintf(s->name, sizeof(s->name), "%s", slash + 1);
	*ret = s;
	return 0;
}

void selfsigned_free(struct selfsigned *s)
{
	if (!s)
		return;
	free(s->served);
	free(s);
}
