/*
 * The table of controllers kinfer-operator runs. main hands it to the
 * manager; each row is defined by its module in this folder.
 */
#pragma once

#include <stddef.h>

#include "manager.h"

extern const struct controller_def *const kinfer_controllers[];
extern const size_t kinfer_n_controllers;
