/*
 * The warm-up controller: for each gated pod whose containers are ready,
 * run the warm-up (warmup.h) and set the pod's kinfer.io/warmed-up
 * condition; see warmup_controller.c for the states.
 */
#pragma once

#include "manager.h"

extern const struct controller_def warmup_controller;
