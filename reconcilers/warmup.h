/*
 * Warm-up gating: a pod of an InferenceService joins the Service only after
 * its model server has answered the warm-up requests. The state lives in
 * the pod (the kinfer.io/warmed-up condition and the
 * kinfer.io/warmup-attempts annotation), so it survives operator restarts
 * and leader changes.
 */
#pragma once

#include <json-c/json.h>
#include <stdint.h>

#include "manager.h"

struct warmup_plan {
	char path[512];
	char *body;                 /* NULL = GET */
	char health_path[256];
	int32_t port;
	int requests, concurrency;
	int timeout_s, request_timeout_s, max_attempts;
};

/* The plan for a spec: spec.warmup, else the framework preset's default. */
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
 * request got a 2xx; -EIO with ret->error otherwise.
 */
int warmup_send(const char *ip, const struct warmup_plan *plan, uint64_t deadline_ns,
		struct warmup_result *ret);

extern const struct controller_def warmup_controller;
