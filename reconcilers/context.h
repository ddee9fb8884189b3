/*
 * What kinfer's controllers share besides the manager: the Event recorder
 * and the settings main reads from flags. main fills one struct
 * kinfer_context and hands it to the manager (manager_options.
 * controller_data); every row's constructor and reconcile see it as
 * `shared`. State that one controller keeps lives in that row's own data,
 * never here.
 */
#pragma once

#include <stdbool.h>

#include "manager.h"
#include "placement.h"
#include "workload.h"

struct events;
struct metrics;

struct kinfer_context {
	struct events *events;            /* NULL = no Events */
	struct metrics *metrics;          /* NULL = no metrics */
	struct workload_options workload; /* the InferenceService controller's builder */
	long scrape_timeout_ms;           /* autoscaler: a pod scrape or query (2000) */
	/* Scale to zero (route.h): where the activator's pods run (only pods
	 * of that namespace with app.kubernetes.io/component=activator are
	 * ever put in a Service's endpoints) and their proxy port. */
	const char *activator_namespace;    /* NULL = kinfer-system */
	int32_t activator_port;             /* 0 = 8012 */
	struct {                            /* the placement controller */
		bool enabled;               /* false: kube-scheduler places the pods */
		const char *scheduler_name; /* pods that name it are ours */
		struct placement_weights weights;
		bool index;       /* --placement-index */
		bool index_check; /* --placement-index-check */
	} placement;
};

/* The shared context of a reconcile (NULL when the manager has none). */
const struct kinfer_context *context_of(const struct reconcile_ctx *ctx);

/*
 * Record an Event about an object through the context's recorder. An
 * Event is advice: a failure is logged, never retried or returned.
 */
void context_event(struct reconcile_ctx *ctx, const char *api_version, const char *kind,
		   const char *ns, const char *name, const char *uid, const char *type,
		   const char *reason, const char *action, const char *note);
