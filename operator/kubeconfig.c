/*
 * kubeconfig and in-cluster configuration.
 *
 * The YAML becomes json-c through yamljson, then we walk it once and copy
 * what we need into a kube_auth; no json-c object outlives the parse.
 * Errors name the field as a user would find it in the file, for example
 * "users[1] (admin): client-certificate-data is not valid base64".
 */
#include "kubeconfig.h"

#include "base64.h"
#include "yamljson.h"
#include "text.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void kube_auth_free(struct kube_auth *a)
{
	if (!a)
		return;
	free(a->server);
	free(a->ca_file);
	free(a->ca_data);
	free(a->cert_file);
	free(a->cert_data);
	free(a->key_file);
	if (a->key_data) {
		explicit_bzero(a->key_data, a->key_len);
		free(a->key_data);
	}
	if (a->token) {
		explicit_bzero(a->token, strlen(a->token));
		free(a->token);
	}
	free(a->token_file);
	free(a->namespace);
	free(a->context);
	free(a->source);
	free(a);
}

static const char *str_field(json_object *o, const char *key)
{
	json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Find the entry named name in a list like clusters: [{name, cluster}]. */
static json_object *find_named(json_object *root, const char *list, const char *name,
			       const char *inner, int *ret_idx)
{
	json_object *arr, *v;
	if (!json_object_object_get_ex(root, list, &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		const char *n = str_field(e, "name");
		if (n && strcmp(n, name) == 0 && json_object_object_get_ex(e, inner, &v) &&
		    json_object_is_type(v, json_type_object)) {
			*ret_idx = (int)i;
			return v;
		}
	}
	return NULL;
}

/* A path as written, made absolute against the kubeconfig's folder. */
static char *resolve_path(const char *base_dir, const char *p)
{
	char *out;
	if (p[0] == '/' || !base_dir)
		return strdup(p);
	if (asprintf(&out, "%s/%s", base_dir, p) < 0)
		return NULL;
	return out;
}

static int take_data(const char *b64, unsigned char **ret, size_t *ret_len)
{
	return base64_decode(b64, strlen(b64), ret, ret_len);
}

/* Copy the cluster's fields into a; label names the entry for errors. */
static int read_cluster(json_object *cl, const char *label, const char *base_dir,
			struct kube_auth *a, char *err, size_t errlen)
{
	const char *server = str_field(cl, "server");
	const char *caf = str_field(cl, "certificate-authority");
	const char *cad = str_field(cl, "certificate-authority-data");
	json_object *ins;

	if (!server || !*server)
		return text_errf(err, errlen, -EINVAL, "%s: server is missing", label);
	if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)
		return text_errf(err, errlen, -EINVAL,
				 "%s: server \"%s\" must start with https:// or http://", label,
				 server);
	a->server = strdup(server);
	if (!a->server)
		return -ENOMEM;
	size_t n = strlen(a->server);
	while (n > 0 && a->server[n - 1] == '/')
		a->server[--n] = '\0';
	if (json_object_object_get_ex(cl, "insecure-skip-tls-verify", &ins))
		a->insecure = json_object_get_boolean(ins);
	if (cad) {
		if (take_data(cad, &a->ca_data, &a->ca_len) < 0)
			return text_errf(err, errlen, -EINVAL,
					 "%s: certificate-authority-data is not valid base64", label);
	} else if (caf) {
		a->ca_file = resolve_path(base_dir, caf);
		if (!a->ca_file)
			return -ENOMEM;
		if (access(a->ca_file, R_OK) < 0)
			return text_errf(err, errlen, -EINVAL,
					 "%s: certificate-authority %s cannot be read: %s", label,
					 a->ca_file, strerror(errno));
	}
	return 0;
}

static int read_file_or_data(json_object *u, const char *label, const char *base_dir,
			     const char *file_key, const char *data_key, char **ret_file,
			     unsigned char **ret_data, size_t *ret_len, char *err, size_t errlen)
{
	const char *d = str_field(u, data_key), *f = str_field(u, file_key);
	if (d) {
		if (take_data(d, ret_data, ret_len) < 0)
			return text_errf(err, errlen, -EINVAL, "%s: %s is not valid base64", label,
					 data_key);
	} else if (f) {
		*ret_file = resolve_path(base_dir, f);
		if (!*ret_file)
			return -ENOMEM;
		if (access(*ret_file, R_OK) < 0)
			return text_errf(err, errlen, -EINVAL, "%s: %s %s cannot be read: %s",
					 label, file_key, *ret_file, strerror(errno));
	}
	return 0;
}

static int read_user(json_object *u, const char *label, const char *base_dir, struct kube_auth *a,
		     char *err, size_t errlen)
{
	json_object *x;
	const char *token = str_field(u, "token");
	const char *token_file = str_field(u, "tokenFile");
	int r;

	if (json_object_object_get_ex(u, "exec", &x) && x)
		return text_errf(err, errlen, -EINVAL,
				 "%s: exec credential plugins are not supported; "
				 "use a token or a client certificate",
				 label);
	if (json_object_object_get_ex(u, "auth-provider", &x) && x)
		return text_errf(err, errlen, -EINVAL,
				 "%s: auth-provider is not supported; "
				 "use a token or a client certificate",
				 label);
	if (str_field(u, "username") && !token)
		return text_errf(err, errlen, -EINVAL,
				 "%s: basic auth (username/password) is not supported", label);
	r = read_file_or_data(u, label, base_dir, "client-certificate", "client-certificate-data",
			      &a->cert_file, &a->cert_data, &a->cert_len, err, errlen);
	if (r < 0)
		return r;
	r = read_file_or_data(u, label, base_dir, "client-key", "client-key-data", &a->key_file,
			      &a->key_data, &a->key_len, err, errlen);
	if (r < 0)
		return r;
	if ((a->cert_file || a->cert_data) != (a->key_file || a->key_data))
		return text_errf(err, errlen, -EINVAL,
				 "%s: a client certificate needs its key and a key its "
				 "certificate",
				 label);
	if (token) {
		a->token = strdup(token);
		if (!a->token)
			return -ENOMEM;
	} else if (token_file) {
		a->token_file = resolve_path(base_dir, token_file);
		if (!a->token_file)
			return -ENOMEM;
	}
	return 0;
}

static char *dir_of(const char *source)
{
	const char *slash = source ? strrchr(source, '/') : NULL;
	if (!slash)
		return strdup(".");
	return strndup(source, (size_t)(slash - source) ? (size_t)(slash - source) : 1);
}

/*
 * Resolve a context across one or more documents: each entry (context,
 * cluster, user) is taken from the first document that has it, as kubectl
 * merges KUBECONFIG lists.
 */
static int resolve(json_object **docs, const char **sources, size_t n, const char *context,
		   struct kube_auth **ret, char *err, size_t errlen)
{
	struct kube_auth *a = NULL;
	json_object *ctx = NULL, *cl = NULL, *user = NULL;
	size_t ctx_doc = 0, cl_doc = 0, user_doc = 0;
	int idx = 0, r;
	char label[512], *base = NULL;

	for (size_t i = 0; i < n && !context; i++) {
		const char *cc = str_field(docs[i], "current-context");
		if (cc && *cc)
			context = cc;
	}
	if (!context)
		return text_errf(err, errlen, -EINVAL,
				 "%s: no current-context is set and no --context was given",
				 sources[0]);
	for (size_t i = 0; i < n && !ctx; i++)
		if ((ctx = find_named(docs[i], "contexts", context, "context", &idx)))
			ctx_doc = i;
	if (!ctx)
		return text_errf(err, errlen, -EINVAL, "%s: context \"%s\" not found", sources[0],
				 context);
	const char *cluster_name = str_field(ctx, "cluster");
	const char *user_name = str_field(ctx, "user");
	if (!cluster_name)
		return text_errf(err, errlen, -EINVAL, "%s: contexts[%d] (%s): cluster is missing",
				 sources[ctx_doc], idx, context);
	for (size_t i = 0; i < n && !cl; i++)
		if ((cl = find_named(docs[i], "clusters", cluster_name, "cluster", &idx)))
			cl_doc = i;
	if (!cl)
		return text_errf(err, errlen, -EINVAL,
				 "%s: context \"%s\" names cluster \"%s\", which is not in clusters",
				 sources[ctx_doc], context, cluster_name);

	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	r = -ENOMEM;
	a->context = strdup(context);
	a->source = strdup(sources[ctx_doc]);
	if (!a->context || !a->source)
		goto out_free;
	base = dir_of(sources[cl_doc]);
	snprintf(label, sizeof(label), "%s: clusters[%d] (%s)", sources[cl_doc], idx, cluster_name);
	r = read_cluster(cl, label, base, a, err, errlen);
	if (r < 0)
		goto out_free;
	if (user_name && *user_name) {
		for (size_t i = 0; i < n && !user; i++)
			if ((user = find_named(docs[i], "users", user_name, "user", &idx)))
				user_doc = i;
		if (!user) {
			r = text_errf(err, errlen, -EINVAL,
				      "%s: context \"%s\" names user \"%s\", which is not in users",
				      sources[ctx_doc], context, user_name);
			goto out_free;
		}
		free(base);
		base = dir_of(sources[user_doc]);
		snprintf(label, sizeof(label), "%s: users[%d] (%s)", sources[user_doc], idx,
			 user_name);
		r = read_user(user, label, base, a, err, errlen);
		if (r < 0)
			goto out_free;
	}
	const char *ns = str_field(ctx, "namespace");
	a->namespace = strdup(ns && *ns ? ns : "default");
	if (!a->namespace) {
		r = -ENOMEM;
		goto out_free;
	}
	free(base);
	*ret = a;
	return 0;

out_free:
	free(base);
	kube_auth_free(a);
	return r;
}

int kubeconfig_parse(const char *buf, size_t len, const char *source, const char *context,
		     struct kube_auth **ret, char *err, size_t errlen)
{
	json_object *doc = NULL;
	char perr[256];
	int r;

	if (!source)
		source = "kubeconfig";
	r = yamljson_parse_one(buf, len, &doc, perr, sizeof(perr));
	if (r < 0)
		return text_errf(err, errlen, r, "%s: %s", source, perr);
	if (!doc || !json_object_is_type(doc, json_type_object)) {
		json_object_put(doc);
		return text_errf(err, errlen, -EINVAL,
				 "%s: not a kubeconfig (expected a YAML mapping)", source);
	}
	r = resolve(&doc, &source, 1, context, ret, err, errlen);
	json_object_put(doc);
	return r;
}

static int read_whole(const char *path, size_t max, char **ret, size_t *ret_len)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (!f)
		return -errno;
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f)) {
		int e = errno ? -errno : -EIO;
		fclose(f);
		free(buf);
		return e;
	}
	fclose(f);
	if (n > max) {
		free(buf);
		return -EFBIG;
	}
	buf[n] = '\0';
	*ret = buf;
	*ret_len = n;
	return 0;
}

#define KUBECONFIG_MAX_FILES 16

int kubeconfig_load(const char *paths, const char *context, struct kube_auth **ret, char *err,
		    size_t errlen)
{
	json_object *docs[KUBECONFIG_MAX_FILES];
	const char *sources[KUBECONFIG_MAX_FILES];
	char *list = strdup(paths), *save = NULL, *p;
	size_t n = 0;
	int r = 0;

	if (!list)
		return -ENOMEM;
	for (p = strtok_r(list, ":", &save); p && n < KUBECONFIG_MAX_FILES;
	     p = strtok_r(NULL, ":", &save)) {
		char *buf, perr[256];
		size_t len;
		json_object *doc = NULL;

		r = read_whole(p, KUBECONFIG_MAX_BYTES, &buf, &len);
		if (r == -ENOENT && strchr(paths, ':'))
			continue; /* kubectl skips missing files in a list */
		if (r < 0) {
			r = text_errf(err, errlen, r == -EFBIG ? -EINVAL : r,
				      "%s: cannot read kubeconfig: %s", p,
				      r == -EFBIG ? "file larger than 4 MiB" : strerror(-r));
			goto out;
		}
		r = yamljson_parse_one(buf, len, &doc, perr, sizeof(perr));
		free(buf);
		if (r < 0) {
			r = text_errf(err, errlen, r, "%s: %s", p, perr);
			goto out;
		}
		if (!doc || !json_object_is_type(doc, json_type_object)) {
			json_object_put(doc);
			r = text_errf(err, errlen, -EINVAL,
				      "%s: not a kubeconfig (expected a YAML mapping)", p);
			goto out;
		}
		docs[n] = doc;
		sources[n] = p;
		n++;
	}
	if (n == 0) {
		r = text_errf(err, errlen, -ENOENT, "%s: no kubeconfig file found", paths);
		goto out;
	}
	r = resolve(docs, sources, n, context, ret, err, errlen);
out:
	for (size_t i = 0; i < n; i++)
		json_object_put(docs[i]);
	free(list);
	return r;
}

int kube_auth_in_cluster(const char *sa_dir, struct kube_auth **ret, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	struct kube_auth *a;
	char *ns = NULL;
	size_t len;
	int r;

	if (!sa_dir)
		sa_dir = KUBE_SA_DIR;
	if (!host || !*host || !port || !*port)
		return text_errf(err, errlen, -ENOENT,
				 "not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set");
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	r = -ENOMEM;
	/* An IPv6 host needs brackets in a URL. */
	if (asprintf(&a->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
		     port) < 0) {
		a->server = NULL;
		goto fail;
	}
	if (asprintf(&a->token_file, "%s/token", sa_dir) < 0) {
		a->token_file = NULL;
		goto fail;
	}
	if (asprintf(&a->ca_file, "%s/ca.crt", sa_dir) < 0) {
		a->ca_file = NULL;
		goto fail;
	}
	if (access(a->token_file, R_OK) < 0) {
		r = text_errf(err, errlen, -ENOENT, "in-cluster: %s cannot be read: %s",
			      a->token_file, strerror(errno));
		goto fail;
	}
	if (access(a->ca_file, R_OK) < 0) {
		r = text_errf(err, errlen, -ENOENT, "in-cluster: %s cannot be read: %s", a->ca_file,
			      strerror(errno));
		goto fail;
	}
	char nspath[PATH_MAX];
	snprintf(nspath, sizeof(nspath), "%s/namespace", sa_dir);
	if (read_whole(nspath, 256, &ns, &len) == 0) {
		while (len > 0 && (ns[len - 1] == '\n' || ns[len - 1] == ' '))
			ns[--len] = '\0';
		a->namespace = ns;
	} else {
		a->namespace = strdup("default");
	}
	a->context = strdup("in-cluster");
	a->source = strdup(sa_dir);
	if (!a->namespace || !a->context || !a->source)
		goto fail;
	*ret = a;
	return 0;
fail:
	kube_auth_free(a);
	return r;
}

int kube_auth_load(const char *explicit_path, const char *context, struct kube_auth **ret,
		   char *err, size_t errlen)
{
	const char *env = getenv("KUBECONFIG");
	const char *home = getenv("HOME");
	char path[PATH_MAX];
	int r;

	if (explicit_path && *explicit_path)
		return kubeconfig_load(explicit_path, context, ret, err, errlen);
	if (env && *env)
		return kubeconfig_load(env, context, ret, err, errlen);
	r = kube_auth_in_cluster(NULL, ret, err, errlen);
	if (r != -ENOENT)
		return r;
	if (home && *home) {
		snprintf(path, sizeof(path), "%s/.kube/config", home);
		if (access(path, R_OK) == 0)
			return kubeconfig_load(path, context, ret, err, errlen);
	}
	return text_errf(err, errlen, -ENOENT,
			 "no cluster configuration: pass --kubeconfig, set KUBECONFIG, "
			 "run in a pod, or create ~/.kube/config");
}
