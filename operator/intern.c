/*
 * A chained hash table of strings with reference counts. Each entry is one
 * allocation: header then characters, so a string pointer finds its header
 * by subtraction.
 */
#include "intern.h"
#include "fnv.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	struct entry *next;
	uint32_t hash;
	uint32_t refs;
	size_t len;
	char s[];
};

struct intern {
	pthread_mutex_t lock;
	struct entry **buckets;
	size_t n_buckets, n, bytes;
};

static uint32_t hash_of(const char *s, size_t len)
{
	return fnv32_add(FNV32_INIT, s, len);
}

int intern_new(struct intern **ret)
{
	struct intern *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->n_buckets = 1024;
	t->buckets = calloc(t->n_buckets, sizeof(*t->buckets));
	if (!t->buckets) {
		free(t);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	*ret = t;
	return 0;
}

void intern_free(struct intern *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_buckets; i++)
		for (struct entry *e = t->buckets[i], *n; e; e = n) {
			n = e->next;
			free(e);
		}
	free(t->buckets);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static void grow(struct intern *t)
{
	size_t nb = t->n_buckets * 2;
	struct entry **b = calloc(nb, sizeof(*b));
	if (!b)
		return; /* keep the old table: slower, still correct */
	for (size_t i = 0; i < t->n_buckets; i++)
		for (struct entry *e = t->buckets[i], *n; e; e = n) {
			n = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	free(t->buckets);
	t->buckets = b;
	t->n_buckets = nb;
}

const char *intern_get_len(struct intern *t, const char *s, size_t len)
{
	uint32_t h = hash_of(s, len);
	struct entry *e;

	pthread_mutex_lock(&t->lock);
	for (e = t->buckets[h & (t->n_buckets - 1)]; e; e = e->next)
		if (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0) {
			e->refs++;
			goto out;
		}
	e = malloc(sizeof(*e) + len + 1);
	if (!e)
		goto out;
	e->hash = h;
	e->refs = 1;
	e->len = len;
	memcpy(e->s, s, len);
	e->s[len] = '\0';
	e->next = t->buckets[h & (t->n_buckets - 1)];
	t->buckets[h & (t->n_buckets - 1)] = e;
	t->n++;
	t->bytes += sizeof(*e) + len + 1;
	if (t->n > t->n_buckets)
		grow(t);
out:
	pthread_mutex_unlock(&t->lock);
	return e ? e->s : NULL;
}

const char *intern_get(struct intern *t, const char *s)
{
	return s ? intern_get_len(t, s, strlen(s)) : NULL;
}

void intern_put(struct intern *t, const char *s)
{
	struct entry *e, **pp;
	if (!s)
		return;
	e = (struct entry *)(s - offsetof(struct entry, s));
	pthread_mutex_lock(&t->lock);
	if (--e->refs == 0) {
		for (pp = &t->buckets[e->hash & (t->n_buckets - 1)]; *pp; pp = &(*pp)->next)
			if (*pp == e) {
				*pp = e->next;
				break;
			}
		t->n--;
		t->bytes -= sizeof(*e) + e->len + 1;
		free(e);
	}
	pthread_mutex_unlock(&t->lock);
}

size_t intern_count(struct intern *t)
{
	pthread_mutex_lock(&t->lock);
	size_t n = t->n;
	pthread_mutex_unlock(&t->lock);
	return n;
}

size_t intern_bytes(struct intern *t)
{
	pthread_mutex_lock(&t->lock);
	size_t n = t->bytes + t->n_buckets * sizeof(struct entry *);
	pthread_mutex_unlock(&t->lock);
	return n;
}
