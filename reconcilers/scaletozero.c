/*
 * The idle decision of spec.scaling.scaleToZero; see scaletozero.h.
 */
#include "scaletozero.h"

#include "ktime.h"

#include <stdio.h>
#include <string.h>

const char *scaletozero_action_name(enum scaletozero_action a)
{
	static const char *const names[] = { "None", "AtZero", "ToZero", "StayZero", "Wake" };
	return (unsigned)a < sizeof(names) / sizeof(names[0]) ? names[a] : "?";
}

bool scaletozero_may_wake(const struct scaletozero_state *st, int64_t activation_ms)
{
	return activation_ms > 0 && (activation_ms > st->zero_at_ms ||
				     (st->zero_activation_read && st->zero_activation_ms > 0 &&
				      activation_ms > st->zero_activation_ms));
}

/* At zero (or draining to it): wake on a newer activation, else stay. */
static enum scaletozero_action at_zero(const struct scaletozero_input *in,
				       struct scaletozero_state *st)
{
	if (in->pinned || in->floor > 0)
		return SCALETOZERO_AT_ZERO; /* the pause, or the schedule's floor */
	/* Woken, and the Deployment does not show it yet: keep asking. */
	if (st->woken_ms && !in->scale_out_paused)
		return SCALETOZERO_WAKE;
	/* Zero reached some other way (kubectl scale, a restart whose status
	 * lost the time): from now on, so an old annotation stays old. */
	if (!st->zero_at_ms)
		st->zero_at_ms = in->now_ms;
	/* A restart reads the zero time back, not the annotation it had:
	 * the one there now stands for it (a restart wakes nothing). */
	if (!st->zero_activation_read) {
		st->zero_activation_ms = in->activation_ms;
		st->zero_activation_read = true;
	}
	if (in->scale_out_paused)
		return SCALETOZERO_STAY_ZERO;
	if (st->activation_ms > st->zero_at_ms) {
		st->woken_ms = st->activation_ms;
	} else if (st->zero_activation_ms > 0 && in->activation_ms > st->zero_activation_ms) {
		/* Older than the zero time, newer than the activation the
		 * annotation held then: the activator's clock runs behind. (With
		 * none then, only the zero time can tell an old annotation.)
		 * The cold start counts from now, the operator's clock. */
		st->woken_ms = in->now_ms;
	} else {
		return SCALETOZERO_STAY_ZERO;
	}
	st->zero_at_ms = 0;
	st->zero_activation_read = false;
	return SCALETOZERO_WAKE;
}

enum scaletozero_action scaletozero_decide(const struct scaletozero_input *in,
					   struct scaletozero_state *st)
{
	int64_t act = in->activation_ms;

	/* An activation in the future (a skewed clock) counts as now. */
	if (act > in->now_ms)
		act = in->now_ms;
	/* So do the times the status gave back (a leader whose clock ran
	 * ahead wrote them): a zero time ahead made every activation older
	 * than it, and the service stayed at zero, its requests held until
	 * they timed out, for as long as the clocks were apart; a last
	 * activation ahead kept it from ever being idle meanwhile. */
	if (st->zero_at_ms > in->now_ms)
		st->zero_at_ms = in->now_ms;
	if (st->activation_ms > in->now_ms)
		st->activation_ms = in->now_ms;
	if (st->last_activity_ms > in->now_ms)
		st->last_activity_ms = in->now_ms;
	if (act > st->activation_ms)
		st->activation_ms = act;
	if (!st->last_activity_ms)
		st->last_activity_ms = in->now_ms; /* first look: idle from now */
	if (st->activation_ms > st->last_activity_ms)
		st->last_activity_ms = st->activation_ms;
	if (in->busy)
		st->last_activity_ms = in->now_ms;
	if (in->current <= 0)
		return at_zero(in, st);
	if (in->known)
		st->woken_ms = 0; /* a pod answers: the cold start is over */
	/* Going to zero was decided and then something asked for more. */
	st->zero_at_ms = 0;
	st->zero_activation_read = false;
	if (in->pinned || in->scale_in_paused || in->floor > 0 || !in->known || in->busy ||
	    in->now_ms - st->last_activity_ms < (int64_t)in->idle_seconds * KTIME_MSEC_PER_SEC)
		return SCALETOZERO_NONE;
	st->zero_at_ms = in->now_ms;
	st->zero_activation_ms = in->activation_ms;
	st->zero_activation_read = true;
	return SCALETOZERO_TO_ZERO;
}

void scaletozero_apply(enum scaletozero_action a, const struct scaletozero_input *in,
		       struct autoscale_result *res)
{
	int32_t up = in->floor > 1 ? in->floor : 1;

	if (up > in->max_replicas)
		up = in->max_replicas;
	switch (a) {
	case SCALETOZERO_NONE:
		/* The metrics would go below the floor of one: that is what
		 * idleness decides, not a limit to report. */
		if (in->current > 0 && in->floor == 0 && res->limited && res->desired <= 1 &&
		    res->limited_reason && strcmp(res->limited_reason, "TooFewReplicas") == 0) {
			res->limited = false;
			res->limited_reason = "DesiredWithinRange";
			if (res->reason && strcmp(res->reason, "TooFewReplicas") == 0)
				res->reason = "WaitingForIdle";
			snprintf(res->message, sizeof(res->message),
				 "one replica until idle for "
				 "%d s (scaleToZero)",
				 in->idle_seconds);
		}
		return;
	case SCALETOZERO_AT_ZERO:
		return;
	case SCALETOZERO_TO_ZERO:
		res->desired = 0;
		res->reason = "ScaledToZero";
		snprintf(res->message, sizeof(res->message), "no request for %d s (idleSeconds)",
			 in->idle_seconds);
		break;
	case SCALETOZERO_STAY_ZERO:
		res->desired = 0;
		res->reason = "ScaledToZero";
		res->hold = false;
		res->active = true;
		res->active_reason = "ScaledToZero";
		res->limited = false;
		res->limited_reason = "DesiredWithinRange";
		snprintf(res->message, sizeof(res->message),
			 "scaled to zero; the activator wakes "
			 "it at the first request");
		break;
	case SCALETOZERO_WAKE:
		res->desired = up;
		res->reason = "ScaledFromZero";
		res->hold = false;
		res->active = true;
		res->active_reason = "ScaledFromZero";
		snprintf(res->message, sizeof(res->message),
			 "a request arrived at zero replicas "
			 "(kinfer.io/activation-requested)");
		break;
	}
	res->fallback = false;
	res->state.failures = 0;
	res->rescale = res->desired != res->current;
}
