/*
 * selfsigned: kinfer's own CA and serving certificate, for a cluster
 * without cert-manager (--webhook-self-signed).
 *
 * The CA (10 years) and the serving certificate it signs (1 year, for the
 * --webhook-cert-hosts names and IPs) live in one Secret (ca.crt, ca.key,
 * tls.crt, tls.key), so every replica serves a certificate of the same CA
 * and a restart keeps it. Whoever finds the Secret empty, missing, or its
 * certificate within 30 days of expiry or not for the hosts, writes a new
 * one (create, or update with the resourceVersion read: a replica that
 * loses the race reads the winner's). The CA is kept while it has a year
 * left; when it is replaced, the previous one stays in the Secret
 * (ca-previous.crt, ca-rotated-at) and in the caBundle for 3 hours, until
 * every replica serves the new pair. The caBundle of every webhook in the Mutating- and
 * ValidatingWebhookConfiguration named --webhook-configuration is set to
 * the CA when it differs.
 *
 * selfsigned_source is the webhook's certificate source (webhook.h): the
 * server asks at start and every hour.
 */
#pragma once

#include <stddef.h>
#include <time.h>

struct kube_client;
struct selfsigned;

struct selfsigned_options {
	struct kube_client *client;
	const char *secret;        /* "namespace/name" */
	const char *hosts;         /* comma-separated DNS names and IPs */
	const char *configuration; /* the webhook configurations' name */
};

int selfsigned_new(const struct selfsigned_options *o, struct selfsigned **ret, char *err,
		   size_t errlen);
void selfsigned_free(struct selfsigned *s);

/* The webhook's source: see struct webhook_options. */
int selfsigned_source(void *ud, char **ret_cert_pem, char **ret_key_pem, char *err, size_t errlen);

/*
 * The caBundle: the CA, and for PREV_CA_KEEP_S (3 h) after a rotation
 * (rotated_at, Unix seconds as text) also the previous CA, so replicas that
 * still serve the old CA's pair until their next read of the Secret (hourly)
 * stay trusted. Malloc'ed PEM.
 */
int selfsigned_bundle(const char *ca, const char *prev_ca, const char *rotated_at, time_t now,
		      char **ret);

/*
 * Make a CA (ca_key_pem NULL: a new one) or use the given one, and a
 * serving certificate for hosts signed by it, valid for days. PEM out,
 * malloc'ed. For the unit tests and the benchmark as well.
 */
int selfsigned_make(const char *hosts, const char *ca_cert_pem, const char *ca_key_pem, int days,
		    char **ret_ca_cert, char **ret_ca_key, char **ret_cert, char **ret_key);
