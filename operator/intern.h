/*
 * Interned strings: one copy of each repeated value (namespaces, node
 * names, owner names, label values) shared by every cached object.
 *
 * intern_get returns a reference-counted pointer to an immutable string;
 * intern_put drops one reference. Thread-safe (a mutex: the writer and the
 * RCU callbacks that free old objects use it; readers only read strings).
 */
#pragma once

#include <stddef.h>

struct intern;

int intern_new(struct intern **ret);
/* Frees the table; strings still referenced are freed too. */
void intern_free(struct intern *t);

const char *intern_get(struct intern *t, const char *s);
const char *intern_get_len(struct intern *t, const char *s, size_t len);
void intern_put(struct intern *t, const char *s);
size_t intern_count(struct intern *t);
size_t intern_bytes(struct intern *t);
