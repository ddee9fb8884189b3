/*
 * The InferenceService controller: InferenceService -> Deployment +
 * Service (server-side apply, owner references), and the status.
 */
#pragma once

#include "manager.h"
#include "workload.h"

struct events;

/* What the controller needs besides the manager (main fills it). */
struct kinfer_controller_data {
	struct events *events;
	struct workload_options workload;
};

extern const struct controller_def isvc_controller;
