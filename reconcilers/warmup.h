/*
 * Warm-up gating, the library part: a pod of an InferenceService joins the
 * Service only after its model server has answered the warm-up requests.
 * This module reads the plan from a spec, probes and sends the requests,
 * and holds the state machine's transition function; the warm-up
 * controller (warmup_controller.h) keeps the state in the pod (the
 * kinfer.io/warmed-up condition and the kinfer.io/warmup-attempts
 * annotation), so it survives operator restarts and leader changes.
 */
#pragma once

#include <json-c/json.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>


struct warmup_plan {
	char path[512];
	char *body; /* NULL = GET */
	char health_path[256];
	int32_t port;
	int requests, concurrency;
	int timeout_s, request_timeout_s, max_attempts;
};

/* The plan for a spec: spec.warmup, else the framework preset's default.
 * ret is written only on success; -EINVAL with err naming the field. */
int warmup_plan_from_spec(json_object *spec, struct warmup_plan *ret, char *err, size_t errlen);
void warmup_plan_free(struct warmup_plan *p);

struct warmup_result {
	int ok, failed;
	double seconds;
	double max_latency_s;
	char error[384];
};

/* One GET of the health path: 0 when it answers 200, else -EAGAIN with
 * the answer in ret->error. */
int warmup_probe(const char *ip, const struct warmup_plan *plan, struct warmup_result *ret);

/*
 * Send the warm-up requests, plan->concurrency at a time, each bounded by
 * requestTimeoutSeconds and all by deadline_ns (monotonic). 0 when every
 * request got a 2xx; -EIO with ret->error otherwise; -ECANCELED within
 * 100 ms of *cancel turning true (cancel may be NULL).
 */
int warmup_send(const char *ip, const struct warmup_plan *plan, uint64_t deadline_ns,
		const atomic_bool *cancel, struct warmup_result *ret);
/* A copy of plan (its body duplicated); -ENOMEM. */
int warmup_plan_copy(const struct warmup_plan *plan, struct warmup_plan *ret);

/*
 * The states of one pod's warm-up (a pod already warm, draining or going
 * away has none: the controller leaves it alone).
 */
enum warmup_state {
	WARMUP_WAITING, /* containers ready: GET the health path until 200 (model loaded) */
	WARMUP_WARMING, /* healthy: send the warm-up requests */
	WARMUP_WARM,    /* every request answered 2xx: the gate goes True */
	WARMUP_FAILED,  /* a request failed or time ran out: gate False, retry or replace */
};

enum warmup_event {
	WARMUP_EV_NOT_YET,   /* the health path did not answer 200 yet */
	WARMUP_EV_HEALTHY,   /* it did */
	WARMUP_EV_TIMED_OUT, /* timeoutSeconds passed */
	WARMUP_EV_ANSWERED,  /* every warm-up request got a 2xx */
	WARMUP_EV_FAILED,    /* one did not */
};

/* The one transition: the state after ev in st (st when ev does not apply). */
enum warmup_state warmup_step(enum warmup_state st, enum warmup_event ev);
const char *warmup_state_name(enum warmup_state st);

/* After a failure: the wait before attempt `attempts + 1` (10 s doubling
 * to 5 min). */
#define WARMUP_RETRY_FIRST_S 10
#define WARMUP_RETRY_MAX_S 300
uint64_t warmup_retry_after_s(int attempts);
