/*
 * simulate: `kinfer-operator simulate`, the autoscaling decision of
 * autoscale.h run offline, for tuning a policy and for tests.
 *
 * Two modes, both reading an InferenceService's spec.scaling:
 *  - trace replay: one JSON line per evaluation (t, replicas, every pod's
 *    readiness and metrics, the service-level metrics) in, one decision
 *    per line out, with the history of recommendations and scale events
 *    carried from line to line as the controller keeps it;
 *  - closed loop: a load trace (requests/s over time) drives a small
 *    model of the replicas (capacity, latency, model load time); the
 *    model produces the metrics, the algorithm the replicas, and the run
 *    prints the timeline (optionally also as an SVG plot).
 *
 * Library functions return 0 or a negative errno (-EINVAL for input that
 * is wrong, with a message naming the file and line in err; -EIO for a
 * file that cannot be read; -ENOMEM) and print only the results they are
 * asked for, on the FILEs they are given.
 */
#pragma once

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "autoscale.h"
#include "scalingspec.h"

#define SIMULATE_MAX_LINE (1024 * 1024)     /* bytes per trace line */
#define SIMULATE_MAX_PODS 10000             /* pods per trace line */
#define SIMULATE_MAX_YAML (4 * 1024 * 1024) /* the InferenceService file */
#define SIMULATE_MAX_LOAD_POINTS 1000000    /* lines of a load trace */
#define SIMULATE_MAX_STEPS 1000000          /* steps of a closed loop */

/* What simulate takes from an InferenceService. */
struct simulate_scaling {
	struct autoscale_spec spec;
	int32_t interval_seconds; /* evaluationIntervalSeconds (15) */
	int32_t replicas;         /* spec.replicas (1): the loop starts there */
	char name[64];            /* metadata.name, maybe cut */
	/* spec.scaling.scaleToZero (with minReplicas 0: the closed loop goes
	 * to zero when idle and wakes at the first request), and the GPUs of
	 * one replica (spec.resources.gpu.count), for the GPU-seconds saved. */
	struct scaletozero scale_to_zero;
	int32_t gpus;
};

/*
 * The first document of kind InferenceService in a YAML stream (the text
 * of the file called name), its spec.scaling read by scalingspec.h, the
 * reader the live autoscaler uses. Errors name the file and the line the
 * document starts on.
 */
int simulate_isvc_parse(const char *buf, size_t len, const char *name, struct simulate_scaling *ret,
			char *err, size_t errlen);

/*
 * Trace replay: read JSON lines from in (called name in messages), write
 * one decision per line to out:
 *   {"t":30,"replicas":2,"desired":3,"reason":"ScaleUpLimit",
 *    "limited":true,"metric":"QueueDepth"}
 * Stops at the first bad line, after the lines before it were written.
 */
int simulate_trace(const struct simulate_scaling *sc, FILE *in, const char *name, FILE *out,
		   char *err, size_t errlen);

/* The closed loop's model of one replica. A field <= 0 takes its default,
 * but load_seconds only when < 0 (0: new replicas serve at once). */
struct simulate_model {
	double capacity;     /* requests/s a ready replica serves (10) */
	double latency_ms;   /* P99 with no queue (1000) */
	double load_seconds; /* from scale-up until serving (60) */
	double step_seconds; /* one step (the evaluation interval) */
	/* With scaleToZero: from the first request at zero until the first
	 * replica serves (load_seconds when <= 0). */
	double cold_start_seconds;
};

/*
 * With spec.scaling.scaleToZero and minReplicas 0, the closed loop also
 * runs scaletozero.h's idle decision: idle for idleSeconds (no arrival and
 * no queue) goes to zero; the first arrival at zero wakes one replica at
 * once (the activator), serving cold_start_seconds later; the requests
 * held meanwhile are counted (beyond maxPendingRequests: 503; waiting past
 * activationTimeoutSeconds: timed out). The run ends with one more line:
 *   {"scaleToZero":{"scaledToZero":3,"coldStarts":3,"coldStartRequests":41,
 *    "coldStartWaitSeconds":{"total":..,"mean":..,"max":..},"overflow":0,
 *    "timedOut":0,"replicaSeconds":..,"replicaSecondsWithoutScaleToZero":..,
 *    "gpuSecondsSaved":..}}
 * (the same run with a floor of one replica is the comparison).
 *
 * Closed loop: read the load trace ({"t":s,"rps":N} lines, piecewise
 * constant, from the first t to the last) from in, write one line per
 * step to out, and the whole run as an SVG plot to svg if not NULL.
 * Custom metrics have no model and are left out (notice says so, if not
 * NULL).
 */
int simulate_closed_loop(const struct simulate_scaling *sc, const struct simulate_model *model,
			 FILE *in, const char *name, FILE *out, FILE *svg, FILE *notice, char *err,
			 size_t errlen);

/* The subcommand: argv[argi...] are its flags. Returns the exit code. */
int simulate_main(int argc, char **argv, int argi);
