/*
 * Routing of a scale-to-zero InferenceService, the part that reads the
 * caches and writes to the API (route.h has the pure part and the
 * design): the private Service NAME-private, the EndpointSlice
 * NAME-kinfer, and their removal when scaleToZero goes. Called by the
 * InferenceService controller after it applied the public Service.
 *
 * Ownership (issue 12): an object of those names that this
 * InferenceService does not control is never taken over; route_sync then
 * returns 1 with a message for the status.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "manager.h"
#include "snapshot.h"
#include "workload.h"

/* kinfer's EndpointSlices (label endpointslice.kubernetes.io/managed-by=
 * kinfer.io): the InferenceService controller watches them, so a slice
 * deleted or edited by hand is written again. */
extern const struct cache_kind kind_endpointslices;

/* 0 done, 1 an object is not ours (err says which), 2 one is still the
 * one made for the InferenceService of this name deleted before this one
 * (err says which; the garbage collector removes it), negative errno on an
 * API failure (ctx->error says which). *ret_wait (when lower or 0) gets
 * the ns after which a write the cache has not shown yet is no longer
 * trusted: the caller comes back then. */
int route_sync(struct reconcile_ctx *ctx, const struct snapshot *s, const struct workload *w,
	       char *err, size_t errlen, uint64_t *ret_wait);
