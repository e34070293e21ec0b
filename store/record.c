/*
 * record.c — the byte layout of records and changes.
 *
 * One encoding serves the LMDB record, the binlog entry and the wire, so
 * a change travels from commit to peer without re-encoding. Everything is
 * little-endian and read with memcpy (LMDB gives no alignment promise).
 *
 * Record (REC_HDR_LEN = 88 bytes of header):
 *
 *   0 u8  format (1)     1 u8 type        2 u16 nvv       4 u32 mode
 *   8 u32 uid           12 u32 gid       16 i64 mtime_ns 24 i64 ctime_ns
 *  32 i64 expires_ns    40 u64 ttl_ms    48 u64 hlc      56 u64 node
 *  64 u64 origin_seq    72 u32 xattr_len 76 u32 0        80 u64 size
 *  88 nvv * { u64 node, u64 seq }   then xattr_len bytes of xattrs
 *  then size bytes of value; the total must match exactly.
 *
 * Xattrs: a run of { u8 name_len, u32 value_len, name, value }.
 *
 * Change (CHANGE_HDR_LEN = 32 bytes of header):
 *
 *   0 u8 format (1)  1 u8 flags  2 u16 path_len  4 u32 writer
 *   8 u64 origin_node  16 u64 origin_seq  24 u32 rec_len  28 u32 0
 *  32 path (path_len bytes), then the record (rec_len bytes).
 *
 * Decoders check every length before using it and return -EPROTO for
 * anything that does not add up: they are fed by peers.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store_int.h"

static void put16(unsigned char *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static void put32(unsigned char *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(unsigned char *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint16_t get16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return le16toh(v);
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

size_t rec_encoded_len(const struct store_stat *st)
{
	return REC_HDR_LEN + (size_t)st->nvv * REC_VV_LEN + st->xattr_len +
	       st->size;
}

void rec_encode(void *out, const struct store_stat *st, const void *vv,
		const void *xattrs, const void *value)
{
	unsigned char *p = out;

	p[0] = 1;
	p[1] = (unsigned char)st->type;
	put16(p + 2, (uint16_t)st->nvv);
	put32(p + 4, st->mode);
	put32(p + 8, st->uid);
	put32(p + 12, st->gid);
	put64(p + 16, (uint64_t)st->mtime_ns);
	put64(p + 24, (uint64_t)st->ctime_ns);
	put64(p + 32, (uint64_t)st->expires_ns);
	put64(p + 40, st->ttl_ms);
	put64(p + 48, st->version.hlc);
	put64(p + 56, st->version.node);
	put64(p + 64, st->origin_seq);
	put32(p + 72, (uint32_t)st->xattr_len);
	put32(p + 76, 0);
	put64(p + 80, st->size);
	p += REC_HDR_LEN;
	if (st->nvv) {
		memcpy(p, vv, (size_t)st->nvv * REC_VV_LEN);
		p += (size_t)st->nvv * REC_VV_LEN;
	}
	if (st->xattr_len) {
		memcpy(p, xattrs, st->xattr_len);
		p += st->xattr_len;
	}
	if (st->size)
		memcpy(p, value, st->size);
}

int rec_decode(const void *buf, size_t len, struct rec *r)
{
	const unsigned char *p = buf;
	struct store_stat *st = &r->st;
	uint64_t need;

	if (len < REC_HDR_LEN || p[0] != 1 || get32(p + 76) != 0)
		return -EPROTO;
	memset(r, 0, sizeof(*r));
	st->type = p[1];
	if (st->type < STORE_FILE || st->type > STORE_TOMBSTONE)
		return -EPROTO;
	st->nvv = get16(p + 2);
	st->mode = get32(p + 4);
	st->uid = get32(p + 8);
	st->gid = get32(p + 12);
	st->mtime_ns = (int64_t)get64(p + 16);
	st->ctime_ns = (int64_t)get64(p + 24);
	st->expires_ns = (int64_t)get64(p + 32);
	st->ttl_ms = get64(p + 40);
	st->version.hlc = get64(p + 48);
	st->version.node = get64(p + 56);
	st->origin_seq = get64(p + 64);
	st->xattr_len = get32(p + 72);
	st->size = get64(p + 80);
	need = (uint64_t)REC_HDR_LEN + (uint64_t)st->nvv * REC_VV_LEN +
	       st->xattr_len;
	if (st->size > len || need + st->size != len)
		return -EPROTO;
	r->vv = p + REC_HDR_LEN;
	r->xattrs = r->vv + (size_t)st->nvv * REC_VV_LEN;
	r->value = r->xattrs + st->xattr_len;
	/* The xattr run must parse exactly. */
	for (size_t off = 0; off < st->xattr_len;) {
		uint32_t vl;

		if (st->xattr_len - off < 5)
			return -EPROTO;
		vl = get32(r->xattrs + off + 1);
		if (r->xattrs[off] == 0 ||
		    st->xattr_len - off - 5 < (uint64_t)r->xattrs[off] + vl)
			return -EPROTO;
		off += 5 + r->xattrs[off] + vl;
	}
	return 0;
}

uint64_t vv_lookup(const void *vv, unsigned n, uint64_t node)
{
	const unsigned char *p = vv;

	for (unsigned i = 0; i < n; i++)
		if (get64(p + i * REC_VV_LEN) == node)
			return get64(p + i * REC_VV_LEN + 8);
	return 0;
}

struct store_vv_entry store_vv_at(const void *vv, unsigned i)
{
	const unsigned char *p = (const unsigned char *)vv + i * REC_VV_LEN;
	struct store_vv_entry e = { get64(p), get64(p + 8) };

	return e;
}

int store_rec_decode(const void *rec, size_t len, struct store_stat *st,
		     const void **value, const void **vv, const void **xattrs)
{
	struct rec r;
	int err = rec_decode(rec, len, &r);

	if (err)
		return err;
	if (st)
		*st = r.st;
	if (value)
		*value = r.value;
	if (vv)
		*vv = r.vv;
	if (xattrs)
		*xattrs = r.xattrs;
	return 0;
}

void change_hdr_encode(void *out, const struct store_change *c)
{
	unsigned char *p = out;

	p[0] = 1;
	p[1] = (unsigned char)c->flags;
	put16(p + 2, (uint16_t)c->path_len);
	put32(p + 4, c->writer);
	put64(p + 8, c->origin_node);
	put64(p + 16, c->origin_seq);
	put32(p + 24, (uint32_t)c->rec_len);
	put32(p + 28, 0);
}

int store_change_encode(const struct store_change *c, void **bufp,
			size_t *lenp)
{
	unsigned char *p;
	size_t len;

	if (c->path_len == 0 || c->path_len > CHANGE_PATH_MAX ||
	    c->rec_len > UINT32_MAX)
		return -EINVAL;
	len = CHANGE_HDR_LEN + c->path_len + c->rec_len;
	p = malloc(len);
	if (!p)
		return -ENOMEM;
	change_hdr_encode(p, c);
	memcpy(p + CHANGE_HDR_LEN, c->path, c->path_len);
	memcpy(p + CHANGE_HDR_LEN + c->path_len, c->rec, c->rec_len);
	*bufp = p;
	*lenp = len;
	return 0;
}

int store_change_decode(const void *buf, size_t len, struct store_change *c)
{
	const unsigned char *p = buf;
	struct rec r;
	size_t plen, rlen;

	if (len < CHANGE_HDR_LEN || p[0] != 1 || (p[1] & ~STORE_CHANGE_MORE) ||
	    get32(p + 28) != 0)
		return -EPROTO;
	plen = get16(p + 2);
	rlen = get32(p + 24);
	if (plen == 0 || plen > CHANGE_PATH_MAX ||
	    len != CHANGE_HDR_LEN + plen + rlen)
		return -EPROTO;
	if (p[CHANGE_HDR_LEN] != '/' ||
	    memchr(p + CHANGE_HDR_LEN, '\0', plen))
		return -EPROTO;
	if (rec_decode(p + CHANGE_HDR_LEN + plen, rlen, &r))
		return -EPROTO;
	memset(c, 0, sizeof(*c));
	c->flags = p[1];
	c->writer = get32(p + 4);
	c->origin_node = get64(p + 8);
	c->origin_seq = get64(p + 16);
	c->path = (const char *)p + CHANGE_HDR_LEN;
	c->path_len = plen;
	c->rec = p + CHANGE_HDR_LEN + plen;
	c->rec_len = rlen;
	return 0;
}
