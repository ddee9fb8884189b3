/*
 * The InferenceService controller: InferenceService -> Deployment +
 * Service (server-side apply, owner references), and the status. Its row
 * keeps, as its own data, what it last applied (to notice changes made by
 * others) and the handle of the autoscaler row whose decisions it carries
 * out; the shared context (context.h) gives the workload options and the
 * Event recorder.
 */
#pragma once

#include "manager.h"

extern const struct controller_def isvc_controller;
