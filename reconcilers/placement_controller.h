/*
 * The placement controller: kinfer as the scheduler of its own pods.
 *
 * Pods whose spec.schedulerName is the configured name (default "kinfer")
 * and that have no node are decided by placement.c and bound through
 * pods/binding. A pod that fits nowhere gets a FailedScheduling Event and
 * its PodScheduled condition False/Unschedulable with kube-scheduler's kind
 * of message, and is retried with backoff (1 s doubling to 60 s) and at
 * once when a node changes or one of kinfer's bound pods goes away.
 * Its row's data (the placement state and the pods waiting) is made from
 * the shared context (context.h) with the manager.
 */
#pragma once

#include <stdbool.h>

#include "manager.h"
#include "placement.h"

/*
 * The settings (context.h's placement part) are the flags'; 0, or -EINVAL
 * for a weight below 0 or above 1000 or a scheduler name that is empty or
 * over 63 characters. The row's constructor checks the same and fails
 * the manager's.
 */
int placement_controller_check(const struct placement_weights *w, const char *scheduler_name);

extern const struct controller_def placement_controller;
