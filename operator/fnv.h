/*
 * FNV-1a, the one string hash of kinfer (hash tables, dedup keys, the
 * applied-spec hash). Inline on purpose: it sits in the cache's and the
 * intern table's lookup paths. Not for anything an attacker could use to
 * collide keys on purpose beyond what a bounded table tolerates.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define FNV32_INIT 2166136261u
#define FNV32_PRIME 16777619u
/*
 * The 64-bit start value kinfer has always used. It is NOT the published
 * offset basis (14695981039346656037, FNV64_OFFSET_BASIS): a digit was lost
 * when it was first typed. The hash is as good with any non-zero start, and
 * the kinfer.io/applied-hash annotations on running Deployments and Services
 * were computed with this one; changing it would re-apply every owned object
 * once after an upgrade. Change it only together with that annotation.
 */
#define FNV64_INIT 1469598103934665603ULL
#define FNV64_OFFSET_BASIS 14695981039346656037ULL
#define FNV64_PRIME 1099511628211ULL

/* Continue a 32-bit hash over len bytes. */
static inline uint32_t fnv32_add(uint32_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * FNV32_PRIME;
	return h;
}

/* Continue a 32-bit hash over a C string (NULL hashes as ""). */
static inline uint32_t fnv32_add_str(uint32_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * FNV32_PRIME;
	return h;
}

static inline uint32_t fnv32_str(const char *s)
{
	return fnv32_add_str(FNV32_INIT, s);
}

/* Continue a 64-bit hash over a C string (NULL hashes as ""). */
static inline uint64_t fnv64_add_str(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * FNV64_PRIME;
	return h;
}

/* Continue a 64-bit hash with one byte (a separator between fields). */
static inline uint64_t fnv64_add_byte(uint64_t h, unsigned char c)
{
	return (h ^ c) * FNV64_PRIME;
}

static inline uint64_t fnv64_str(const char *s)
{
	return fnv64_add_str(FNV64_INIT, s);
}
