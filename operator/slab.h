/*
 * Blocks of one cache's objects, kept apart from the heap that the JSON
 * decoder churns through on every watch event.
 *
 * From glibc's heap, every object kept for long splits the chunks a
 * decoded event leaves free, and the next event's hundreds of json-c
 * allocations pay for it in _int_malloc and malloc_consolidate (issue 15,
 * goal 5: 59 -> 69 us of CPU per Pod event when the Pod's block shrank
 * into another size class). A slab hands out blocks in 8-byte size classes
 * from 64 KiB pages of its own, and keeps freed blocks by class for the
 * next object of that size.
 *
 * One thread allocates (the cache's writer); any thread frees (the RCU
 * callbacks free replaced objects). Pages go back to the system only when
 * the slab is destroyed: the memory of a cache that shrank is kept for the
 * objects that come next. Blocks above SLAB_MAX come from malloc.
 * Under AddressSanitizer a free block is poisoned (a read of an object
 * after its grace period is reported as with malloc).
 */
#pragma once

#include <stddef.h>

#define SLAB_MAX 4096 /* larger blocks: malloc, freed with free */

struct slab;

int slab_new(struct slab **ret);
/* Frees every page: every block must have been freed or be unused. */
void slab_destroy(struct slab *s);
/* A block of size bytes, 8-byte aligned; NULL when out of memory.
 * The allocating thread only. */
void *slab_alloc(struct slab *s, size_t size);
/* Any thread; p may be NULL. */
void slab_free(struct slab *s, void *p);

struct slab_stats {
	size_t pages;      /* pages held */
	size_t page_bytes; /* their bytes */
	size_t large;      /* blocks from malloc, in use */
};
/* The allocating thread (or none running). */
void slab_stats(const struct slab *s, struct slab_stats *ret);
