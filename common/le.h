/*
 * le.h — little-endian integers at any alignment, for the encodings
 * that cross a process or a disk: store records and changes
 * (store/record.c), raftnet frames and lock-service datagrams (repl/).
 * Header-only; the callers check lengths before they call these.
 */
#ifndef STATEFS_LE_H
#define STATEFS_LE_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

static inline void le_put16(unsigned char *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static inline void le_put32(unsigned char *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static inline void le_put64(unsigned char *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static inline uint16_t le_get16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return le16toh(v);
}

static inline uint32_t le_get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static inline uint64_t le_get64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

#endif
