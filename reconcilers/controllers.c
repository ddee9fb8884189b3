/*
 * The controllers of kinfer-operator, in start order.
 */
#include "controllers.h"

#include "autoscale_controller.h"
#include "isvc_controller.h"
#include "placement_controller.h"
#include "warmup_controller.h"

const struct controller_def *const kinfer_controllers[] = {
	&isvc_controller,
	&warmup_controller,
	&autoscale_controller,
	&placement_controller,
};
const size_t kinfer_n_controllers = sizeof(kinfer_controllers) / sizeof(kinfer_controllers[0]);
