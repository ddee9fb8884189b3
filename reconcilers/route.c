/*
 * The endpoint choice and the EndpointSlice body of a scale-to-zero
 * service. Pure: unit tests check every case.
 */
#include "route.h"

#include "fnv.h"
#include "keys.h"
#include "workload.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_ip(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* An address the API server takes in an EndpointSlice: IPv4, not
 * loopback (127/8), link-local (169.254/16) or multicast (224/4) — KWOK's
 * pods have loopback addresses, which would make the whole slice invalid. */
static bool endpoint_ip(const char *ip)
{
	struct in_addr a;
	if (!ip || inet_pton(AF_INET, ip, &a) != 1)
		return false;
	uint32_t h = ntohl(a.s_addr);
	return (h >> 24) != 127 && (h >> 16) != 0xa9fe && (h >> 28) != 0xe && h != 0;
}

static size_t take(const struct route_pod *p, size_t n, const char **out)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k < ROUTE_MAX_ENDPOINTS; i++)
		if (p[i].ready && !p[i].deleting && endpoint_ip(p[i].ip))
			out[k++] = p[i].ip;
	/* Sorted and without duplicates, so the same pods give the same body
	 * (and hash) whatever order the cache walk had. */
	qsort(out, k, sizeof(*out), cmp_ip);
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (u == 0 || strcmp(out[u - 1], out[i]) != 0)
			out[u++] = out[i];
	return u;
}

void route_choose(const struct route_pod *pods, size_t n_pods, int32_t pod_port,
		  const struct route_pod *activators, size_t n_activators, int32_t activator_port,
		  struct route_choice *ret)
{
	ret->n = take(pods, n_pods, ret->ips);
	ret->activator = ret->n == 0;
	ret->port = pod_port;
	if (ret->activator) {
		ret->n = take(activators, n_activators, ret->ips);
		ret->port = activator_port;
	}
}

static int suffixed(const char *name, const char *suffix, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s%s", name, suffix);
	return n < 0 || (size_t)n >= len || n > 63 ? -ENAMETOOLONG : 0;
}

int route_private_name(const char *name, char *buf, size_t len)
{
	return suffixed(name, ROUTE_PRIVATE_SUFFIX, buf, len);
}

int route_slice_name(const char *name, char *buf, size_t len)
{
	return suffixed(name, ROUTE_SLICE_SUFFIX, buf, len);
}

json_object *route_slice(const char *ns, const char *name, const char *uid,
			 const struct route_choice *c, char hash[17])
{
	char slice[128];
	json_object *s = json_object_new_object(), *m = json_object_new_object();
	json_object *labels = json_object_new_object(), *eps = json_object_new_array();
	json_object *ports = json_object_new_array(), *port = json_object_new_object();

	snprintf(slice, sizeof(slice), "%s%s", name, ROUTE_SLICE_SUFFIX);
	json_object_object_add(s, "apiVersion", json_object_new_string("discovery.k8s.io/v1"));
	json_object_object_add(s, "kind", json_object_new_string("EndpointSlice"));
	json_object_object_add(m, "name", json_object_new_string(slice));
	json_object_object_add(m, "namespace", json_object_new_string(ns));
	json_object_object_add(labels, "kubernetes.io/service-name", json_object_new_string(name));
	json_object_object_add(labels, "endpointslice.kubernetes.io/managed-by",
			       json_object_new_string(ROUTE_MANAGED_BY));
	json_object_object_add(labels, KINFER_SERVICE_LABEL, json_object_new_string(name));
	json_object_object_add(labels, "kinfer.io/route",
			       json_object_new_string(c->activator ? "activator" : "pods"));
	json_object_object_add(m, "labels", labels);
	json_object_object_add(m, "ownerReferences", workload_owner_refs(name, uid));
	json_object_object_add(s, "metadata", m);
	json_object_object_add(s, "addressType", json_object_new_string("IPv4"));
	for (size_t i = 0; i < c->n; i++) {
		json_object *e = json_object_new_object(), *a = json_object_new_array();
		json_object *cond = json_object_new_object();
		json_object_array_add(a, json_object_new_string(c->ips[i]));
		json_object_object_add(e, "addresses", a);
		json_object_object_add(cond, "ready", json_object_new_boolean(1));
		json_object_object_add(e, "conditions", cond);
		json_object_array_add(eps, e);
	}
	json_object_object_add(s, "endpoints", eps);
	json_object_object_add(port, "name", json_object_new_string("http"));
	json_object_object_add(port, "port", json_object_new_int(c->port));
	json_object_object_add(port, "protocol", json_object_new_string("TCP"));
	json_object_array_add(ports, port);
	json_object_object_add(s, "ports", ports);
	const char *text = json_object_to_json_string_ext(s, JSON_C_TO_STRING_PLAIN);
	if (!text) {
		json_object_put(s);
		return NULL;
	}
	snprintf(hash, 17, "%016llx", (unsigned long long)fnv64_str(text));
	/* The hash goes on the object too: the slice's cache (kinfer's slices
	 * only, route_controller.c) then tells whether it is as written. */
	json_object *ann = json_object_new_object();
	json_object_object_add(ann, KINFER_HASH_ANNOTATION, json_object_new_string(hash));
	json_object_object_add(m, "annotations", ann);
	return s;
}
