/*
 * The placement controller: kinfer as the scheduler of its own pods.
 *
 * Pods whose spec.schedulerName is the configured name (default "kinfer")
 * and that have no node are decided by placement.c and bound through
 * pods/binding. A pod that fits nowhere gets a FailedScheduling Event and
 * its PodScheduled condition False/Unschedulable with kube-scheduler's kind
 * of message, and is retried with backoff (1 s doubling to 60 s) and at
 * once when a node changes or one of kinfer's bound pods goes away.
 */
#pragma once

#include <stdbool.h>

#include "manager.h"
#include "placement.h"

struct metrics;

struct placement_controller_options {
	struct metrics *metrics;        /* NULL = none */
	bool enabled;                   /* false: kube-scheduler places the pods */
	const char *scheduler_name;     /* pods that name it are ours */
	struct placement_weights weights;
};

/* Once, before the manager starts; the controller does nothing until then.
 * 0, -EINVAL (a weight below 0 or above 1000), -ENOMEM. */
int placement_controller_configure(const struct placement_controller_options *o);
/* After the manager stopped: frees what configure made. */
void placement_controller_shutdown(void);

extern const struct controller_def placement_controller;
