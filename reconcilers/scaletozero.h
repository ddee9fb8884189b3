/*
 * scaletozero: the idle decision of spec.scaling.scaleToZero (issue 16),
 * as a pure function next to the autoscaler's (autoscale.h). No I/O, no
 * clock: the autoscaler controller passes what one evaluation saw (the
 * pods' own activity metrics, the activator's kinfer.io/activation-requested
 * time, the bounds and pauses in force) and the state kept since the last
 * one; it gets back what to do. `simulate` runs the same code on a trace.
 *
 * The rules:
 *  - work seen (a pod with requests queued or running, or its request
 *    counter rising) or an activation is traffic: the idle clock restarts;
 *  - idle for idleSeconds (every ready pod's activity read, all zero, and
 *    no activation in that time) while the floor in force is 0 and no
 *    pause holds the size or scale-in: scale to zero, through the drain
 *    like any scale-down, from any size (there is no load to protect);
 *  - at zero, an activation newer than the moment it went to zero, or
 *    than the activation the annotation held at that moment (the same
 *    clock: the activator's, which may run behind), wakes it at once to
 *    max(1, floor); an older one (the annotation a restart reads again)
 *    does nothing;
 *  - otherwise the autoscaler decides as usual with a floor of 1, so only
 *    idleness ever takes the service to zero.
 * Wall-clock milliseconds throughout: the activation is a wall time.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "autoscale.h"

/* One evaluation's view. */
struct scaletozero_input {
	int32_t idle_seconds;  /* spec.scaling.scaleToZero.idleSeconds */
	int64_t now_ms;        /* wall */
	int32_t current;       /* the replicas being run (0: at or going to zero) */
	int32_t floor;         /* minReplicas in force (schedules raise it) */
	int32_t max_replicas;  /* maxReplicas in force */
	bool pinned;           /* paused-replicas or paused: the pause decides */
	bool scale_in_paused;  /* paused-scale-in: never to zero */
	bool scale_out_paused; /* paused-scale-out: never woken */
	bool known;            /* every ready pod's activity was read (and one exists) */
	bool busy;             /* some pod has work queued or running, or served some */
	int64_t activation_ms; /* kinfer.io/activation-requested; 0: none */
};

/* What one evaluation hands the next (and the status shows). */
struct scaletozero_state {
	int64_t last_activity_ms; /* the last traffic seen; 0: not observed yet */
	int64_t zero_at_ms;       /* when it went to zero; 0: not at zero */
	int64_t activation_ms;    /* the newest activation seen; 0: none */
	int64_t woken_ms;         /* the activation that woke it, until a pod is warm; 0: none */
	/* The activation the annotation held when the zero time was set (0:
	 * none), once read: a newer one wakes it even when older than the zero
	 * time, as the activator's clock may run behind the operator's and
	 * its times compare only with each other. */
	int64_t zero_activation_ms;
	bool zero_activation_read;
};

enum scaletozero_action {
	SCALETOZERO_NONE,      /* the autoscaler decides, floor max(1, minReplicas) */
	SCALETOZERO_AT_ZERO,   /* at zero, nothing newer: the autoscaler decides, floor 0 */
	SCALETOZERO_TO_ZERO,   /* idle for idleSeconds: desired 0 */
	SCALETOZERO_STAY_ZERO, /* at zero and nothing asks for more: desired 0 */
	SCALETOZERO_WAKE,      /* a newer activation: desired max(1, floor) at once */
};

const char *scaletozero_action_name(enum scaletozero_action a);

/* Whether the annotation's activation time is one that may wake a service
 * at zero with this state (newer than the zero time, or than the
 * activation the annotation held then): worth an evaluation at once. */
bool scaletozero_may_wake(const struct scaletozero_state *st, int64_t activation_ms);

/* The decision; updates st. */
enum scaletozero_action scaletozero_decide(const struct scaletozero_input *in,
					   struct scaletozero_state *st);

/*
 * Put the action onto the autoscaler's result for the same evaluation
 * (computed with the floor the action says). NONE: a recommendation below
 * the floor of one is WaitingForIdle, not TooFewReplicas (ScalingLimited
 * stays False). TO_ZERO, STAY_ZERO and WAKE
 * replace desired, rescale, the reason and the message, and clear the
 * fallback's count of evaluations without metrics (at zero there are no
 * pods to read, which is not a failure).
 */
void scaletozero_apply(enum scaletozero_action a, const struct scaletozero_input *in,
		       struct autoscale_result *res);
