/*
 * Writing an InferenceService's status. The status kinfer computes
 * (status.c) carries over the conditions of other writers from the copy
 * it read; a merge patch replaces the whole conditions list, so a
 * condition another writer added after that read would be lost. The patch
 * therefore names the resourceVersion it was computed from: the API
 * server refuses it with 409 Conflict when the object changed meanwhile,
 * and the reconcile runs again on the newer copy (the optimistic
 * concurrency every Kubernetes controller uses).
 */
#pragma once

#include <json-c/json.h>

#include "kube.h"

/*
 * PATCH /status with status, conditional on rv (NULL: unconditional).
 * 0; -ENOENT when the object is gone; -EAGAIN when it changed since rv
 * (409); another negative errno with ret_status.
 */
int statuspatch_write(struct kube_client *c, const char *ns, const char *name, const char *rv,
		      json_object *status, struct kube_status *ret_status);
