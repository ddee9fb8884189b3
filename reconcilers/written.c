/* The table of what was written last (written.h). */
#include "written.h"

#include "fnv.h"

#include <stdio.h>
#include <string.h>

static uint64_t key_of(const struct snapshot *s)
{
	char k[400];
	snprintf(k, sizeof(k), "%s/%s/%s", s->ns, s->name, s->uid);
	return fnv64_str(k) | 1;
}

bool written_recall(struct written_table *t, const struct snapshot *s, struct written *ret)
{
	uint64_t k = key_of(s);
	bool found;
	pthread_mutex_lock(&t->lock);
	found = t->s[k % WRITTEN_SLOTS].key == k;
	if (found)
		*ret = t->s[k % WRITTEN_SLOTS];
	pthread_mutex_unlock(&t->lock);
	return found;
}

void written_remember(struct written_table *t, const struct snapshot *s, const char *hash,
		      const char *rv, int64_t generation, uint64_t sent_ns)
{
	uint64_t k = key_of(s);
	pthread_mutex_lock(&t->lock);
	struct written *w = &t->s[k % WRITTEN_SLOTS];
	memset(w, 0, sizeof(*w));
	if (hash) {
		w->key = k;
		snprintf(w->hash, sizeof(w->hash), "%s", hash);
		snprintf(w->rv, sizeof(w->rv), "%s", rv ? rv : "");
		w->generation = generation;
		w->sent_ns = sent_ns;
	}
	pthread_mutex_unlock(&t->lock);
}
