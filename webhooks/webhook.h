/*
 * webhook: the admission webhook's HTTPS server, served by every replica.
 *
 *   POST /validate   ValidatingWebhookConfiguration (admission_validate)
 *   POST /mutate     MutatingWebhookConfiguration (admission_default)
 *   POST /validate-scale   a Deployment's or InferenceService's scale
 *                    subresource (review.h, REVIEW_SCALE)
 *
 * libmicrohttpd with GnuTLS, TLS 1.2 and 1.3 only. The certificate and key
 * come from PEM files that are watched (stat every reload interval) and
 * reloaded when they change, without a restart: GnuTLS asks for the
 * certificate on every handshake (MHD_OPTION_HTTPS_CERT_CALLBACK), and the
 * answer is whichever pair was loaded last. A pair that does not load (a
 * half-written file, a key that does not match) is refused and the old one
 * kept. Connections and request time are bounded; each request is logged
 * with its uid and decision and counted in the metrics.
 */
#pragma once

#include <stddef.h>

#include "review.h"

struct metrics;
struct webhook;

/*
 * TLS: 1.3 with its AEAD suites, and 1.2 only with ECDHE key exchange and
 * an AEAD cipher (AES-GCM or ChaCha20-Poly1305): no CBC, no SHA-1 MACs, no
 * static RSA or DHE. (AES-CCM is left out on both: GnuTLS cannot allow it
 * on 1.3 without allowing the ECDHE-ECDSA-AES-CCM suites on 1.2.)
 */
#define WEBHOOK_TLS_PRIORITIES \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:" \
	"+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:" \
	"+ECDHE-RSA"

struct webhook_options {
	const char *addr;         /* host:port, port 0 = any free one */
	const char *cert_file;    /* PEM: the serving certificate (chain) */
	const char *key_file;     /* PEM: its private key */
	struct metrics *metrics;  /* may be NULL */
	unsigned max_connections; /* 0: 256 */
	size_t max_held_bytes;    /* request memory budget, 0: 64 MiB (see webhook.c) */
	unsigned timeout_s;       /* per connection, 0: 10 */
	unsigned threads;         /* 0: 4 */
	long reload_interval_ms;  /* 0: 1000 */
	int quiet;                /* log decisions at debug, not info (benchmarks) */
	/*
	 * Instead of the files: a source of the PEM pair, asked at start and
	 * every source_interval_ms (0: 1 h). It returns 1 with a new pair
	 * (malloc'ed, the server frees them), 0 when unchanged, or a negative
	 * errno with err filled (the pair in use is kept).
	 */
	int (*source)(void *ud, char **ret_cert_pem, char **ret_key_pem, char *err, size_t errlen);
	void *source_ud;
	long source_interval_ms;
	/* What /validate-scale asks (NULL functions: every scale allowed).
	 * Called from the server's threads. */
	struct review_lookup lookup;
};

/* Returns 0, -EINVAL (address), -ENOENT/-EBADMSG (certificate files or source),
 * -EADDRINUSE or -ENOMEM; err says which in words. */
int webhook_start(const struct webhook_options *o, struct webhook **ret, char *err, size_t errlen);
unsigned webhook_port(const struct webhook *w);
/* Check the files now (the watcher does it every interval). 1 when a new
 * pair was loaded, 0 unchanged, negative when the new pair is refused. */
int webhook_reload(struct webhook *w);
void webhook_stop(struct webhook *w);
