/*
 * Slab: size classes of 8 bytes up to SLAB_MAX, each block after an
 * 8-byte header naming its class (0: a malloc'd large block). The
 * allocating thread pops its own free list of the class; blocks freed by
 * any thread go on the class's atomic stack, which the allocator takes
 * whole (one exchange, so no ABA) when its own list is empty; then it
 * carves from the current page.
 */
#include "slab.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_ASAN 1
#endif
#endif
#ifdef SLAB_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ALIGN 8
#define HEADER 8
#define CLASSES (SLAB_MAX / ALIGN + 1) /* class k: k * 8 bytes; 0 = large */
#define PAGE (64 * 1024)
#define LARGE_CLASS 0
#define MAGIC 0x51ab      /* a block in use */
#define FREE_MAGIC 0xf4ee /* a block on a free list */

struct header {
	uint16_t magic;
	uint16_t pad;
	uint32_t cls;
};

struct free_block {
	struct free_block *next;
};

struct page {
	struct page *next;
	uint64_t pad; /* blocks start 16 bytes in: 8-byte aligned after a header */
};

struct slab {
	struct free_block *own[CLASSES];             /* the allocating thread's */
	_Atomic(struct free_block *) freed[CLASSES]; /* pushed by any thread */
	struct page *pages;
	size_t n_pages;
	char *bump; /* the current page's unused part */
	size_t left;
	_Atomic size_t large;
};

_Static_assert(sizeof(struct header) == HEADER, "header size");
_Static_assert(sizeof(struct page) % ALIGN == 0, "page header alignment");

int slab_new(struct slab **ret)
{
	struct slab *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

void slab_destroy(struct slab *s)
{
	if (!s)
		return;
	for (struct page *p = s->pages, *next; p; p = next) {
		next = p->next;
		UNPOISON(p, PAGE);
		free(p);
	}
	free(s);
}

static void *block_of(struct header *h, uint32_t cls)
{
	h->magic = MAGIC;
	h->pad = 0;
	h->cls = cls;
	return h + 1;
}

/* Carve one block of class cls (header + cls * 8 bytes) from the page;
 * the old page's tail, when a block fits in it, joins its class's list. */
static struct header *carve(struct slab *s, uint32_t cls)
{
	size_t need = HEADER + (size_t)cls * ALIGN;
	struct header *h;

	if (s->left < need) {
		if (s->left >= HEADER + ALIGN) {
			uint32_t tc = (uint32_t)((s->left - HEADER) / ALIGN);
			UNPOISON(s->bump, HEADER + sizeof(struct free_block));
			struct free_block *b = block_of((struct header *)s->bump, tc);
			((struct header *)b - 1)->magic = FREE_MAGIC;
			b->next = s->own[tc];
			s->own[tc] = b;
		}
		struct page *p = malloc(PAGE);
		if (!p)
			return NULL;
		p->next = s->pages;
		s->pages = p;
		s->n_pages++;
		s->bump = (char *)(p + 1);
		s->left = PAGE - sizeof(*p);
		POISON(s->bump, s->left);
	}
	h = (struct header *)s->bump;
	s->bump += need;
	s->left -= need;
	UNPOISON(h, HEADER);
	return h;
}

void *slab_alloc(struct slab *s, size_t size)
{
	size_t n = (size + ALIGN - 1) / ALIGN;
	struct free_block *b;
	struct header *h;

	if (n == 0)
		n = 1; /* room for the free list's link */
	if (size > SLAB_MAX) {
		h = malloc(HEADER + size);
		if (!h)
			return NULL;
		atomic_fetch_add_explicit(&s->large, 1, memory_order_relaxed);
		return block_of(h, LARGE_CLASS);
	}
	b = s->own[n];
	if (!b) {
		b = atomic_exchange_explicit(&s->freed[n], NULL, memory_order_acquire);
		s->own[n] = b;
	}
	if (b) {
		s->own[n] = b->next;
		((struct header *)b - 1)->magic = MAGIC;
		UNPOISON(b, n * ALIGN);
		return b;
	}
	h = carve(s, (uint32_t)n);
	if (!h)
		return NULL;
	void *p = block_of(h, (uint32_t)n);
	UNPOISON(p, n * ALIGN);
	return p;
}

void slab_free(struct slab *s, void *p)
{
	struct header *h;
	struct free_block *b = p, *top;

	if (!p)
		return;
	h = (struct header *)p - 1;
	if (h->magic != MAGIC)
		abort(); /* freed twice, or not a slab's block: memory is corrupt */
	if (h->cls == LARGE_CLASS) {
		atomic_fetch_sub_explicit(&s->large, 1, memory_order_relaxed);
		free(h);
		return;
	}
	/* Marked and poisoned before it is pushed: once on the stack, the
	 * allocating thread may take it (and unpoison it) at any time. */
	h->magic = FREE_MAGIC;
	POISON((char *)p + sizeof(*b), (size_t)h->cls * ALIGN - sizeof(*b));
	top = atomic_load_explicit(&s->freed[h->cls], memory_order_relaxed);
	do
		b->next = top;
	while (!atomic_compare_exchange_weak_explicit(&s->freed[h->cls], &top, b,
						      memory_order_release, memory_order_relaxed));
}

void slab_stats(const struct slab *s, struct slab_stats *ret)
{
	ret->pages = s->n_pages;
	ret->page_bytes = s->n_pages * PAGE;
	ret->large = atomic_load_explicit(&((struct slab *)s)->large, memory_order_relaxed);
}
