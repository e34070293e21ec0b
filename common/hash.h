/*
 * hash.h — the 64-bit hashes of the in-memory lock tables (fs/lock.c,
 * repl/locktable.c). Not for anything that crosses a process or a disk:
 * no hash here is part of a format, so both may change it freely.
 * Header-only.
 */
#ifndef STATEFS_HASH_H
#define STATEFS_HASH_H

#include <stddef.h>
#include <stdint.h>

/* A full-avalanche mix of x (MurmurHash3's finalizer): keys that differ
 * in a low bit land in different buckets of a power-of-two table. */
static inline uint64_t hash_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* The n bytes at p, under seed (FNV-1a, then mixed). */
static inline uint64_t hash_bytes(uint64_t seed, const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return hash_mix(h);
}

#endif
