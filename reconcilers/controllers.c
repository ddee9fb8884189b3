/*
 * The controllers of kinfer-operator, in start order. Empty until the
 * InferenceService controller lands: the runtime (caches, queues, leader
 * election, health, metrics) runs without any.
 */
#include "controllers.h"

const struct controller_def *const kinfer_controllers[] = { NULL };
const size_t kinfer_n_controllers = 0;
