/*
 * record.c — the byte layout of records and changes.
 *
 * One encoding serves the LMDB record, the binlog entry and the wire, so
 * a change travels from commit to peer without re-encoding. Everything is
 * little-endian and read with memcpy (LMDB gives no alignment promise).
 *
 * Record, format 3 (REC_HDR_LEN = 28 bytes of fixed header, then
 * optional parts; records are kept small because a get's cost is mostly
 * LMDB's page walk, which grows with the bytes per record):
 *
 *   0 u8  format (3)     1 u8  type       2 u8  nvv        3 u8  fidx
 *   4 u16 mode (07777)   6 u8  nver       7 u8  opt
 *   8 u32 uid           12 u32 gid       16 i64 mtime_ns  24 u32 xattr_len
 *  28 the version table: nver (1 to 4) * { u64 hlc, u64 node }
 *     then the optional parts that opt announces, in this order:
 *       REC_OPT_CTIME  i64 ctime_ns   (absent: equal to mtime_ns)
 *       REC_OPT_ATIME  i64 atime_ns   (absent: equal to mtime_ns)
 *       REC_OPT_LIFE   i64 expires_ns, u64 ttl_ms   (absent: both 0)
 *       REC_OPT_DEAD   i64 dead_ns (local)          (absent: 0)
 *     then nvv * { u64 node, u64 seq }, nodes strictly increasing
 *     then xattr_len bytes of xattrs, then the value: the rest of the
 *     record (its size is not stored; the parts before it must fit).
 *
 * The four field versions (content (type, value), owner (mode, uid,
 * gid), times (mtime, atime), life (ttl, expires)) are 2-bit indexes
 * into the version table, packed in fidx (content in bits 0-1, owner
 * 2-3, times 4-5, life 6-7): one change usually sets them all to one
 * version, which is then stored once. The encoder lists each distinct
 * version once, in field order; a decoder only needs every index to be
 * inside the table. opt bits 0-3 are REC_OPT_*, bits 4-7 the record's
 * local REC_* flags (flags << 4). The encoder leaves out every optional
 * part it can; a decoder takes a part that is present whatever its value.
 *
 * Format 2 (upgrade.c converts it) had a 144-byte header holding every
 * field at a fixed place, four full field versions, the size, a u16 nvv
 * and u32 flags; format 1 is described in upgrade.c.
 *
 * Xattrs: a run of { u8 name_len, u8 removed, u32 value_len, u64 hlc,
 * u64 node, name, value }, names strictly increasing (shorter first on a
 * common prefix), so that two runs merge in one linear pass. A removed
 * xattr is an entry with no value that keeps its version (a tombstone of
 * its own, so that a remove and a concurrent set merge the same way
 * everywhere). An entry with an empty name, first and removed, is the
 * floor: a create or a rename's destination writes it at its version,
 * and entries older than the floor are gone. It merges like any entry
 * (the higher version wins), so a create clears the xattrs of the path
 * on every node alike, also on one that purged the old record.
 *
 * The mode holds permission bits only: the file type follows from the
 * record type, so a directory can never carry a file mode. The `flags`
 * and `dead_ns` words are local bookkeeping of the node that stored the
 * record (see store_int.h); a peer ignores them.
 *
 * Change (CHANGE_HDR_LEN = 32 bytes of header):
 *
 *   0 u8 format (3)  1 u8 flags  2 u16 path_len  4 u32 writer
 *   8 u64 origin_node  16 u64 origin_seq  24 u32 rec_len  28 u32 0
 *  32 path (path_len bytes), then the record (rec_len bytes).
 *
 * Decoders check every length, order and range before using it and
 * return -EPROTO for anything that does not add up: they are fed by
 * peers.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store_int.h"

uint32_t store_type_ifmt(enum store_type type)
{
	switch (type) {
	case STORE_FILE:
		return S_IFREG;
	case STORE_DIR:
		return S_IFDIR;
	case STORE_SYMLINK:
		return S_IFLNK;
	default:
		return 0;
	}
}

int vcmp(const struct store_version *a, const struct store_version *b)
{
	if (a->hlc != b->hlc)
		return a->hlc < b->hlc ? -1 : 1;
	if (a->node != b->node)
		return a->node < b->node ? -1 : 1;
	return 0;
}

/* The newest of the record's field versions (its xattrs included). */
struct store_version rec_newest(const struct rec *r)
{
	struct store_version v = r->st.fver[0];

	for (int i = 1; i < STORE_FIELDS; i++)
		if (vcmp(&r->st.fver[i], &v) > 0)
			v = r->st.fver[i];
	for (size_t off = 0; off < r->st.xattr_len;) {
		struct xattr_ent e;

		off += xattr_at(r->xattrs, off, &e);
		if (vcmp(&e.ver, &v) > 0)
			v = e.ver;
	}
	return v;
}

/* The version table of r: each distinct field version once, in field
 * order, and each field's index into it. Returns the table's length. */
static unsigned ver_table(const struct store_stat *st,
			  struct store_version tab[STORE_FIELDS],
			  unsigned *fidx)
{
	unsigned n = 0, bits = 0;

	for (unsigned i = 0; i < STORE_FIELDS; i++) {
		unsigned j = 0;

		while (j < n && (tab[j].hlc != st->fver[i].hlc ||
				 tab[j].node != st->fver[i].node))
			j++;
		if (j == n)
			tab[n++] = st->fver[i];
		bits |= j << (2 * i);
	}
	*fidx = bits;
	return n;
}

static unsigned rec_opt(const struct rec *r)
{
	unsigned opt = (r->flags & REC_FLAGS_MASK) << 4;

	if (r->st.ctime_ns != r->st.mtime_ns)
		opt |= REC_OPT_CTIME;
	if (r->st.atime_ns != r->st.mtime_ns)
		opt |= REC_OPT_ATIME;
	if (r->st.expires_ns || r->st.ttl_ms)
		opt |= REC_OPT_LIFE;
	if (r->dead_ns)
		opt |= REC_OPT_DEAD;
	return opt;
}

/* Bytes of the optional parts that opt announces. */
static size_t opt_len(unsigned opt)
{
	return (opt & REC_OPT_CTIME ? 8 : 0) + (opt & REC_OPT_ATIME ? 8 : 0) +
	       (opt & REC_OPT_LIFE ? 16 : 0) + (opt & REC_OPT_DEAD ? 8 : 0);
}

size_t rec_encoded_len(const struct rec *r)
{
	struct store_version tab[STORE_FIELDS];
	unsigned fidx, nver = ver_table(&r->st, tab, &fidx);

	return REC_HDR_LEN + (size_t)nver * REC_VER_LEN + opt_len(rec_opt(r)) +
	       (size_t)r->st.nvv * REC_VV_LEN + r->st.xattr_len + r->st.size;
}

void rec_encode(void *out, const struct rec *r)
{
	const struct store_stat *st = &r->st;
	struct store_version tab[STORE_FIELDS];
	unsigned fidx, nver = ver_table(st, tab, &fidx), opt = rec_opt(r);
	unsigned char *p = out;

	p[0] = STORE_FORMAT;
	p[1] = (unsigned char)st->type;
	p[2] = (unsigned char)st->nvv;
	p[3] = (unsigned char)fidx;
	le_put16(p + 4, (uint16_t)(st->mode & 07777));
	p[6] = (unsigned char)nver;
	p[7] = (unsigned char)opt;
	le_put32(p + 8, st->uid);
	le_put32(p + 12, st->gid);
	le_put64(p + 16, (uint64_t)st->mtime_ns);
	le_put32(p + 24, (uint32_t)st->xattr_len);
	p += REC_HDR_LEN;
	for (unsigned i = 0; i < nver; i++, p += REC_VER_LEN) {
		le_put64(p, tab[i].hlc);
		le_put64(p + 8, tab[i].node);
	}
	if (opt & REC_OPT_CTIME) {
		le_put64(p, (uint64_t)st->ctime_ns);
		p += 8;
	}
	if (opt & REC_OPT_ATIME) {
		le_put64(p, (uint64_t)st->atime_ns);
		p += 8;
	}
	if (opt & REC_OPT_LIFE) {
		le_put64(p, (uint64_t)st->expires_ns);
		le_put64(p + 8, st->ttl_ms);
		p += 16;
	}
	if (opt & REC_OPT_DEAD) {
		le_put64(p, (uint64_t)r->dead_ns);
		p += 8;
	}
	if (st->nvv) {
		memcpy(p, r->vv, (size_t)st->nvv * REC_VV_LEN);
		p += (size_t)st->nvv * REC_VV_LEN;
	}
	if (st->xattr_len) {
		memcpy(p, r->xattrs, st->xattr_len);
		p += st->xattr_len;
	}
	if (st->size)
		memcpy(p, r->value, st->size);
}

/* Name order of xattrs: bytes, then length. */
int xattr_name_cmp(const unsigned char *a, size_t al, const unsigned char *b,
		   size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	/* -1, 0 or 1 only: callers compare with those values */
	if (c)
		return c < 0 ? -1 : 1;
	return al < bl ? -1 : al > bl;
}

size_t xattr_at(const unsigned char *x, size_t off, struct xattr_ent *e)
{
	const unsigned char *p = x + off;

	e->name_len = p[0];
	e->removed = p[1];
	e->value_len = le_get32(p + 2);
	e->ver.hlc = le_get64(p + 6);
	e->ver.node = le_get64(p + 14);
	e->name = p + XATTR_HDR_LEN;
	e->value = e->name + e->name_len;
	return XATTR_HDR_LEN + e->name_len + e->value_len;
}

struct store_version xattr_floor(const unsigned char *x, size_t len)
{
	struct store_version none = { 0, 0 };
	struct xattr_ent e;

	if (!len || x[0] != 0)
		return none;
	xattr_at(x, 0, &e);
	return e.ver;
}

int xattr_visible(const struct xattr_ent *e, struct store_version floor)
{
	return e->name_len && !e->removed && vcmp(&e->ver, &floor) >= 0;
}

size_t xattr_put(unsigned char *out, const unsigned char *name,
		 size_t name_len, const void *value, size_t value_len,
		 int removed, struct store_version ver)
{
	out[0] = (unsigned char)name_len;
	out[1] = removed ? 1 : 0;
	le_put32(out + 2, (uint32_t)value_len);
	le_put64(out + 6, ver.hlc);
	le_put64(out + 14, ver.node);
	if (name_len)
		memcpy(out + XATTR_HDR_LEN, name, name_len);
	if (value_len)
		memcpy(out + XATTR_HDR_LEN + name_len, value, value_len);
	return XATTR_HDR_LEN + name_len + value_len;
}

static int version_ok(struct store_version v)
{
	return (v.node == 0) == (v.hlc == 0);
}

static inline int vnewer(const struct store_version *a,
			 const struct store_version *b)
{
	return a->hlc > b->hlc || (a->hlc == b->hlc && a->node > b->node);
}

/* The header fields and pointers, with the checks that keep every later
 * read in bounds (the parts fit; the type, mode, vector size and field
 * indexes are in range). 0 or -EPROTO. */
static int rec_header(const unsigned char *p, size_t len, struct rec *r)
{
	struct store_stat *st = &r->st;
	const unsigned char *q;
	unsigned nver, fidx, opt;
	uint64_t need;

	if (len < REC_HDR_LEN || p[0] != STORE_FORMAT)
		return -EPROTO;
	/* every field of r is set below: no memset */
	r->derived = 0;
	st->version.hlc = st->version.node = 0;
	st->origin_seq = 0;
	st->type = p[1];
	st->nvv = p[2];
	fidx = p[3];
	st->mode = le_get16(p + 4);
	nver = p[6];
	opt = p[7];
	if (st->type < STORE_FILE || st->type > STORE_PLACEHOLDER ||
	    st->nvv > STORE_VV_MAX || st->mode & ~07777u || nver < 1 ||
	    nver > STORE_FIELDS)
		return -EPROTO;
	st->mode |= store_type_ifmt(st->type);
	st->uid = le_get32(p + 8);
	st->gid = le_get32(p + 12);
	st->mtime_ns = (int64_t)le_get64(p + 16);
	st->xattr_len = le_get32(p + 24);
	r->flags = opt >> 4;
	need = (uint64_t)REC_HDR_LEN + (uint64_t)nver * REC_VER_LEN +
	       opt_len(opt) + (uint64_t)st->nvv * REC_VV_LEN + st->xattr_len;
	if (need > len)
		return -EPROTO;
	q = p + REC_HDR_LEN;
	for (int i = 0; i < STORE_FIELDS; i++) {
		unsigned j = (fidx >> (2 * i)) & 3;

		if (j >= nver)
			return -EPROTO;
		st->fver[i].hlc = le_get64(q + j * REC_VER_LEN);
		st->fver[i].node = le_get64(q + j * REC_VER_LEN + 8);
	}
	q += (size_t)nver * REC_VER_LEN;
	st->ctime_ns = st->atime_ns = st->mtime_ns;
	if (opt & REC_OPT_CTIME) {
		st->ctime_ns = (int64_t)le_get64(q);
		q += 8;
	}
	if (opt & REC_OPT_ATIME) {
		st->atime_ns = (int64_t)le_get64(q);
		q += 8;
	}
	st->expires_ns = 0;
	st->ttl_ms = 0;
	if (opt & REC_OPT_LIFE) {
		st->expires_ns = (int64_t)le_get64(q);
		st->ttl_ms = le_get64(q + 8);
		q += 16;
	}
	r->dead_ns = 0;
	if (opt & REC_OPT_DEAD) {
		r->dead_ns = (int64_t)le_get64(q);
		q += 8;
	}
	st->size = len - need;
	r->vv = q;
	r->xattrs = r->vv + (size_t)st->nvv * REC_VV_LEN;
	r->value = r->xattrs + st->xattr_len;
	return 0;
}

/*
 * A record this store wrote itself (read back from its own LMDB file):
 * the header and the bounds of every part, without the order and range
 * checks of rec_decode, which validated the record when it came in (a
 * peer's change) or was made here. The xattr run is walked once, for
 * the newest version, with every entry kept inside the run. store_check
 * still decodes every record with rec_decode.
 */
int rec_decode_local(const void *buf, size_t len, struct rec *r)
{
	struct store_stat *st = &r->st;
	struct store_version v;
	int err = rec_header(buf, len, r);

	if (err)
		return err;
	v = st->fver[0];
	for (int i = 1; i < STORE_FIELDS; i++)
		if (vnewer(&st->fver[i], &v))
			v = st->fver[i];
	for (size_t off = 0; off < st->xattr_len;) {
		struct xattr_ent e;

		if (st->xattr_len - off < XATTR_HDR_LEN)
			return -EPROTO;
		off += xattr_at(r->xattrs, off, &e);
		if (off > st->xattr_len)
			return -EPROTO;
		if (vnewer(&e.ver, &v))
			v = e.ver;
	}
	st->version = v;
	st->origin_seq = v.hlc;
	return 0;
}

int rec_decode(const void *buf, size_t len, struct rec *r)
{
	struct store_stat *st = &r->st;
	uint64_t prev = 0;
	const unsigned char *pname = NULL;
	size_t plen = 0;
	int err = rec_header(buf, len, r);

	if (err)
		return err;
	for (int i = 0; i < STORE_FIELDS; i++)
		if (!version_ok(st->fver[i]))
			return -EPROTO;
	if (st->ttl_ms > STORE_TTL_MAX_MS || st->expires_ns < 0)
		return -EPROTO;
	/* What each type may carry. */
	switch (st->type) {
	case STORE_DIR:
	case STORE_TOMBSTONE:
	case STORE_PLACEHOLDER:
		if (st->size)
			return -EPROTO;
		break;
	case STORE_SYMLINK:
		if (!st->size || st->size >= 4096)
			return -EPROTO;
		break;
	default:
		break;
	}
	for (unsigned i = 0; i < st->nvv; i++) {
		uint64_t node = le_get64(r->vv + i * REC_VV_LEN);

		if (node <= prev || le_get64(r->vv + i * REC_VV_LEN + 8) == 0)
			return -EPROTO;
		prev = node;
	}
	/* The xattr run must parse exactly, in name order. */
	for (size_t off = 0; off < st->xattr_len;) {
		struct xattr_ent e;

		if (st->xattr_len - off < XATTR_HDR_LEN)
			return -EPROTO;
		e.name_len = r->xattrs[off];
		e.value_len = le_get32(r->xattrs + off + 2);
		/* the floor (an empty name) only first, removed, no value */
		if ((e.name_len == 0 && (off || r->xattrs[off + 1] != 1)) ||
		    r->xattrs[off + 1] > 1 ||
		    e.value_len > STORE_XATTR_VALUE_MAX ||
		    st->xattr_len - off - XATTR_HDR_LEN <
			    (uint64_t)e.name_len + e.value_len)
			return -EPROTO;
		off += xattr_at(r->xattrs, off, &e);
		if ((e.removed && e.value_len) || !version_ok(e.ver) ||
		    memchr(e.name, '\0', e.name_len) ||
		    (pname && xattr_name_cmp(pname, plen, e.name,
					     e.name_len) >= 0))
			return -EPROTO;
		pname = e.name;
		plen = e.name_len;
		if (!plen)
			pname = (const unsigned char *)""; /* the floor */
	}
	st->version = rec_newest(r);
	st->origin_seq = st->version.hlc;
	return 0;
}

uint64_t vv_lookup(const void *vv, unsigned n, uint64_t node)
{
	const unsigned char *p = vv;

	for (unsigned i = 0; i < n; i++)
		if (le_get64(p + i * REC_VV_LEN) == node)
			return le_get64(p + i * REC_VV_LEN + 8);
	return 0;
}

struct store_vv_entry store_vv_at(const void *vv, unsigned i)
{
	const unsigned char *p = (const unsigned char *)vv + i * REC_VV_LEN;
	struct store_vv_entry e = { le_get64(p), le_get64(p + 8) };

	return e;
}

void vv_put(unsigned char *out, unsigned i, uint64_t node, uint64_t seq)
{
	le_put64(out + i * REC_VV_LEN, node);
	le_put64(out + i * REC_VV_LEN + 8, seq);
}

/* Entry-wise maximum of two sorted vectors, in one pass. */
int vv_merge(const unsigned char *a, unsigned na, const unsigned char *b,
	     unsigned nb, unsigned char *out, unsigned *nout)
{
	unsigned i = 0, j = 0, n = 0;

	while (i < na || j < nb) {
		struct store_vv_entry x = { UINT64_MAX, 0 }, y = { UINT64_MAX, 0 };

		if (i < na)
			x = store_vv_at(a, i);
		if (j < nb)
			y = store_vv_at(b, j);
		if (n == STORE_VV_MAX)
			return -E2BIG;
		if (x.node == y.node) {
			vv_put(out, n++, x.node, x.seq > y.seq ? x.seq : y.seq);
			i++;
			j++;
		} else if (x.node < y.node) {
			vv_put(out, n++, x.node, x.seq);
			i++;
		} else {
			vv_put(out, n++, y.node, y.seq);
			j++;
		}
	}
	*nout = n;
	return 0;
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

	p[0] = STORE_FORMAT;
	p[1] = (unsigned char)c->flags;
	le_put16(p + 2, (uint16_t)c->path_len);
	le_put32(p + 4, c->writer);
	le_put64(p + 8, c->origin_node);
	le_put64(p + 16, c->origin_seq);
	le_put32(p + 24, (uint32_t)c->rec_len);
	le_put32(p + 28, 0);
}

size_t store_change_len(const struct store_change *c)
{
	if (c->path_len == 0 || c->path_len > CHANGE_PATH_MAX ||
	    c->rec_len > UINT32_MAX || c->flags & ~STORE_CHANGE_MORE)
		return 0;
	return CHANGE_HDR_LEN + c->path_len + c->rec_len;
}

void store_change_encode_to(const struct store_change *c, void *out)
{
	unsigned char *p = out;

	change_hdr_encode(p, c);
	memcpy(p + CHANGE_HDR_LEN, c->path, c->path_len);
	memcpy(p + CHANGE_HDR_LEN + c->path_len, c->rec, c->rec_len);
}

int store_change_encode(const struct store_change *c, void **bufp,
			size_t *lenp)
{
	size_t len = store_change_len(c);
	unsigned char *p;

	if (!len)
		return -EINVAL;
	p = malloc(len);
	if (!p)
		return -ENOMEM;
	store_change_encode_to(c, p);
	*bufp = p;
	*lenp = len;
	return 0;
}

int store_change_decode(const void *buf, size_t len, struct store_change *c)
{
	const unsigned char *p = buf;
	struct rec r;
	size_t plen, rlen;

	if (len < CHANGE_HDR_LEN || p[0] != STORE_FORMAT ||
	    (p[1] & ~STORE_CHANGE_MORE) || le_get32(p + 28) != 0)
		return -EPROTO;
	plen = le_get16(p + 2);
	rlen = le_get32(p + 24);
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
	c->writer = le_get32(p + 4);
	c->origin_node = le_get64(p + 8);
	c->origin_seq = le_get64(p + 16);
	c->path = (const char *)p + CHANGE_HDR_LEN;
	c->path_len = plen;
	c->rec = p + CHANGE_HDR_LEN + plen;
	c->rec_len = rlen;
	return 0;
}
