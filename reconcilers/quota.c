#include "quota.h"

#include <stdio.h>
#include <string.h>

#include "quantity.h"

#define QUOTA_ITEMS_MAX 16

struct quota_item {
	char name[128];
	const char *value; /* into the list's copy */
};

struct quota_list {
	char buf[512];
	struct quota_item items[QUOTA_ITEMS_MAX];
	size_t n;
};

/* "R=Q,R=Q" from [from, to) into l; false when malformed or too long. */
static bool list_parse(const char *from, const char *to, struct quota_list *l)
{
	size_t len = (size_t)(to - from);
	char *save = NULL;

	l->n = 0;
	if (len == 0 || len >= sizeof(l->buf))
		return false;
	memcpy(l->buf, from, len);
	l->buf[len] = '\0';
	for (char *t = strtok_r(l->buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');
		size_t n = eq ? (size_t)(eq - t) : 0;
		if (!eq || n == 0 || n >= sizeof(l->items[0].name) || !eq[1] ||
		    l->n == QUOTA_ITEMS_MAX)
			return false;
		memcpy(l->items[l->n].name, t, n);
		l->items[l->n].name[n] = '\0';
		l->items[l->n].value = eq + 1;
		l->n++;
	}
	return l->n > 0;
}

static const char *list_get(const struct quota_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i].name, name) == 0)
			return l->items[i].value;
	return NULL;
}

/* How much of RESOURCE one old pod gives back, and in which unit; false
 * for a resource kinfer cannot account for. */
static bool freed_by(const char *resource, const struct quota_pod *old, int64_t *ret, bool *milli)
{
	*milli = false;
	if (strcmp(resource, "pods") == 0 || strcmp(resource, "count/pods") == 0) {
		*ret = 1;
		return true;
	}
	if (strcmp(resource, "cpu") == 0 || strcmp(resource, "requests.cpu") == 0) {
		*ret = old->cpu_milli;
		*milli = true;
		return true;
	}
	if (strcmp(resource, "memory") == 0 || strcmp(resource, "requests.memory") == 0) {
		*ret = old->mem_bytes;
		return true;
	}
	if (old->gpu_resource && strncmp(resource, "requests.", 9) == 0 &&
	    strcmp(resource + 9, old->gpu_resource) == 0) {
		*ret = old->gpu;
		return true;
	}
	return false;
}

static int parse(const char *s, bool milli, int64_t *ret)
{
	return milli ? quantity_parse_milli(s, ret) : quantity_parse(s, ret);
}

bool quota_room_after_one(const char *message, const struct quota_pod *old, char *name,
			  size_t name_len)
{
	static const char k_quota[] = "exceeded quota: ", k_req[] = ", requested: ",
			  k_used[] = ", used: ", k_lim[] = ", limited: ";
	struct quota_list req, used, lim;
	const char *q, *r, *u, *l, *end;

	if (!message || !old)
		return false;
	q = strstr(message, k_quota);
	if (!q)
		return false;
	q += sizeof(k_quota) - 1;
	r = strstr(q, k_req);
	u = r ? strstr(r, k_used) : NULL;
	l = u ? strstr(u, k_lim) : NULL;
	if (!l)
		return false;
	end = l + sizeof(k_lim) - 1;
	end += strcspn(end, " \n;");
	if (!list_parse(r + sizeof(k_req) - 1, u, &req) ||
	    !list_parse(u + sizeof(k_used) - 1, l, &used) ||
	    !list_parse(l + sizeof(k_lim) - 1, end, &lim))
		return false;
	for (size_t i = 0; i < req.n; i++) {
		const char *uv = list_get(&used, req.items[i].name);
		const char *lv = list_get(&lim, req.items[i].name);
		int64_t want, in_use, limit, freed;
		bool milli;
		if (!uv || !lv || !freed_by(req.items[i].name, old, &freed, &milli) ||
		    parse(req.items[i].value, milli, &want) < 0 || parse(uv, milli, &in_use) < 0 ||
		    parse(lv, milli, &limit) < 0)
			return false;
		int64_t after;
		if (__builtin_sub_overflow(in_use, freed, &after) ||
		    __builtin_add_overflow(after, want, &after) || after > limit)
			return false;
	}
	if (name && name_len)
		snprintf(name, name_len, "%.*s", (int)(r - q), q);
	return true;
}
