/*
 * Routing of an InferenceService with spec.scaling.scaleToZero (issue 16),
 * the pure part: which endpoints its public Service has, and the body of
 * the EndpointSlice kinfer writes for it.
 *
 * Such a service has three objects where others have one Service:
 *
 *   NAME          the public Service, without a selector: its endpoints are
 *                 the EndpointSlice below, so kinfer decides where traffic
 *                 goes (as Knative does with its public Service);
 *   NAME-kinfer   that EndpointSlice: the warm (ready) pods when at least
 *                 one exists, else the ready activator pods;
 *   NAME-private  a Service with the pods' selector: the pods' readiness
 *                 (the warm gate) keeps its endpoints, which the activator
 *                 reads to find a warm pod.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROUTE_MAX_ENDPOINTS 1000 /* an EndpointSlice holds at most 1000 */
#define ROUTE_SLICE_SUFFIX "-kinfer"
#define ROUTE_PRIVATE_SUFFIX "-private"
#define ROUTE_MANAGED_BY "kinfer.io"
#define ROUTE_ACTIVATOR_PORT_DEFAULT 8012

/* One candidate endpoint: a pod of the service or an activator pod. */
struct route_pod {
	const char *ip; /* NULL or "": no address yet */
	bool ready;     /* the pod's Ready condition (warm gate included) */
	bool deleting;  /* deletionTimestamp set */
};

struct route_choice {
	bool activator; /* the endpoints are the activator's */
	int32_t port;   /* the endpoints' port */
	size_t n;
	const char *ips[ROUTE_MAX_ENDPOINTS]; /* borrowed from the inputs, sorted */
};

/*
 * The warm pods (ready, not being deleted, with an IPv4 address an
 * EndpointSlice may hold: not loopback, link-local or multicast) on port
 * pod_port when there is at least one; else the ready activator pods on
 * activator_port (n may be 0: no activator is ready either).
 */
void route_choose(const struct route_pod *pods, size_t n_pods, int32_t pod_port,
		  const struct route_pod *activators, size_t n_activators, int32_t activator_port,
		  struct route_choice *ret);

/* The EndpointSlice NAME-kinfer for a choice (server-side apply body), and
 * a hash of it in hash (16 hex digits) so an unchanged one is not
 * written; the body carries the hash as annotation kinfer.io/applied-hash.
 * NULL when out of memory. */
json_object *route_slice(const char *ns, const char *name, const char *uid,
			 const struct route_choice *c, char hash[17]);

/* "NAME-private" / "NAME-kinfer" into buf; -ENAMETOOLONG past 63. */
int route_private_name(const char *name, char *buf, size_t len);
int route_slice_name(const char *name, char *buf, size_t len);
