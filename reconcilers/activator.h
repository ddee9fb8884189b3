/*
 * `kinfer-operator activator`: the HTTP proxy that answers for an
 * InferenceService with spec.scaling.scaleToZero while it has no warm
 * replica (its public Service's EndpointSlice then names the activator's
 * pods). It holds each request (bounded per service), asks the operator to
 * scale up through the kinfer.io/activation-requested annotation, waits
 * for a ready endpoint of the private Service NAME-private and forwards
 * the request there, streaming the answer back. See reconcilers/README.md.
 */
#pragma once

int activator_main(int argc, char **argv, int argi);
