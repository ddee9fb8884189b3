/*
 * The controllers' shared context; see context.h.
 */
#include "context.h"

#include "events.h"
#include "log.h"

const struct kinfer_context *context_of(const struct reconcile_ctx *ctx)
{
	return ctx ? ctx->shared : NULL;
}

void context_event(struct reconcile_ctx *ctx, const char *api_version, const char *kind,
		   const char *ns, const char *name, const char *uid, const char *type,
		   const char *reason, const char *action, const char *note)
{
	const struct kinfer_context *k = context_of(ctx);
	struct event_object r = { api_version, kind, ns, name, uid };
	/* After the writes of a burst (events.h): advice, not the work. */
	if (k && k->events && events_emit_later(k->events, &r, type, reason, action, note) < 0)
		log_warn("cannot record an event", "object=%s %s/%s reason=%s", kind, ns, name,
			 reason);
}
