/*
 * Where and how to reach the API server: a kubeconfig file (parsed with
 * libyaml) or the in-cluster service account.
 *
 * struct kube_auth is a plain record (not opaque) because it is only data,
 * handed from here to the API client; kube_auth_free releases it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define KUBECONFIG_MAX_BYTES (4 * 1024 * 1024)

struct kube_auth {
	char *server;           /* https://host:port, no trailing '/' */
	char *ca_file;          /* PEM file, or ... */
	unsigned char *ca_data; /* ... PEM bytes */
	size_t ca_len;
	char *cert_file;
	unsigned char *cert_data;
	size_t cert_len;
	char *key_file;
	unsigned char *key_data;
	size_t key_len;
	char *token;      /* bearer token, or ... */
	char *token_file; /* ... a file re-read when it rotates */
	bool insecure;    /* insecure-skip-tls-verify */
	char *namespace;  /* context's namespace, or the pod's */
	char *context;    /* context name, "in-cluster" otherwise */
	char *source;     /* file it came from, for messages */
};

void kube_auth_free(struct kube_auth *a);

/*
 * Parse one kubeconfig document. base_dir resolves relative file paths
 * (the kubeconfig's own folder). context NULL = current-context. On error
 * returns -EINVAL (or -ENOMEM) and writes one sentence naming the field.
 */
int kubeconfig_parse(const char *buf, size_t len, const char *source, const char *context,
		     struct kube_auth **ret, char *err, size_t errlen);

/* Read and parse a file (or a ':'-separated list, first file wins per
 * entry, as kubectl merges). */
int kubeconfig_load(const char *paths, const char *context, struct kube_auth **ret, char *err,
		    size_t errlen);

/* In-cluster: KUBERNETES_SERVICE_HOST/PORT and the service account files
 * under sa_dir (NULL = KUBE_SA_DIR). */
int kube_auth_in_cluster(const char *sa_dir, struct kube_auth **ret, char *err, size_t errlen);

/*
 * The usual order: an explicit path (flag) > $KUBECONFIG > in-cluster >
 * ~/.kube/config. -ENOENT when none is found.
 */
int kube_auth_load(const char *explicit_path, const char *context, struct kube_auth **ret,
		   char *err, size_t errlen);
