/*
 * Writing the state kinfer keeps on pods: the kinfer.io/warmed-up
 * condition (through pods/status) and kinfer.io/ annotations. Shared by
 * warm-up gating and drain-before-terminate.
 */
#pragma once

#include <stdbool.h>

#include "kube.h"

/* 0, or the API's error (a pod already gone counts as done). */
int podstate_set_gate(struct kube_client *c, const char *ns, const char *pod, bool on,
		      const char *reason, const char *message, struct kube_status *ret_status);
/* value NULL removes the annotation. */
int podstate_annotate(struct kube_client *c, const char *ns, const char *pod, const char *key,
		      const char *value, struct kube_status *ret_status);
