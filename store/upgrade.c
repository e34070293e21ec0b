/*
 * upgrade.c — rewrite a store of an older format as the current one
 * (record.c's format 3), once, in the write transaction that opens it.
 *
 * ---- format 1 (statefs 0.1) ----
 *
 * Format 1 records were one last-writer-wins register: every field of a
 * record takes the record's version, which is what format 1 said of
 * each of them. Its xattr entries (no versions, any order) are sorted
 * by name and take the record's version too; its version vectors are
 * sorted by node and cut at STORE_VV_MAX; the mode keeps its permission
 * bits (the type says the rest); atime starts equal to mtime; a
 * tombstone's time of death is its mtime, which format 1 set when it
 * deleted. The binlog of format 1 is dropped: its entries are in the
 * old layout, and nothing has consumed them across a restart of every
 * process (which an upgrade implies). Consumers that were behind get
 * -ERANGE, as after any trim. Sequences of format 1 were counters, far
 * below the clock values format 2 uses, so nothing is reused.
 *
 * ---- format 2 ----
 *
 * Format 2 held the same fields as format 3 in a 144-byte header with
 * every field at a fixed place:
 *
 *   0 u8  format (2)     1 u8  type       2 u16 nvv        4 u32 mode (07777)
 *   8 u32 uid           12 u32 gid       16 i64 mtime_ns  24 i64 ctime_ns
 *  32 i64 atime_ns      40 i64 expires_ns 48 u64 ttl_ms    56 u64 size
 *  64 u32 xattr_len     68 u32 flags (local)  72 i64 dead_ns (local)
 *  80 four field versions { u64 hlc, u64 node }
 * 144 nvv * { u64 node, u64 seq }, xattrs (the same run as format 3's),
 *     then the value.
 *
 * Every record is re-encoded with the same fields, and so is every
 * binlog entry (a change: header, path, record), keeping its sequence:
 * consumers and peers continue where they were. The change header's
 * layout is unchanged; its format byte becomes 3.
 *
 * Both rewrites never read LMDB memory after a write: each record is
 * converted into a private buffer, written, and the cursor is placed
 * again from a copy of the key.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "store/store_int.h"

#define V1_HDR 88
#define V1_META 120
#define V2_HDR 144



static int cmp_vv(const void *a, const void *b)
{
	uint64_t x = le_get64(a), y = le_get64(b);

	return x < y ? -1 : x > y;
}

struct v1x {
	const unsigned char *name, *value;
	unsigned nl;
	uint32_t vl;
};

static int cmp_x(const void *a, const void *b)
{
	const struct v1x *x = a, *y = b;

	return xattr_name_cmp(x->name, x->nl, y->name, y->nl);
}

/* Convert one format 1 record into *r, with vv and xattrs in buf (which
 * has room for len bytes plus the versions of 255 xattrs). */
static int convert(const unsigned char *p, size_t len, struct rec *r,
		   unsigned char *buf)
{
	struct store_version v;
	struct v1x xs[256];
	size_t xlen, size, off, n = 0;
	unsigned nvv, nx = 0;
	const unsigned char *vv, *x;

	if (len < V1_HDR || p[0] != 1 || p[1] < STORE_FILE ||
	    p[1] > STORE_TOMBSTONE)
		return -EIO;
	memset(r, 0, sizeof(*r));
	nvv = p[2] | p[3] << 8;
	xlen = le_get32(p + 72);
	size = le_get64(p + 80);
	if ((uint64_t)V1_HDR + (uint64_t)nvv * REC_VV_LEN + xlen + size != len)
		return -EIO;
	r->st.type = p[1];
	r->st.mode = le_get32(p + 4) & 07777;
	r->st.uid = le_get32(p + 8);
	r->st.gid = le_get32(p + 12);
	r->st.mtime_ns = (int64_t)le_get64(p + 16);
	r->st.atime_ns = r->st.mtime_ns;
	r->st.ctime_ns = (int64_t)le_get64(p + 24);
	r->st.expires_ns = (int64_t)le_get64(p + 32);
	r->st.ttl_ms = le_get64(p + 40);
	if (r->st.ttl_ms > STORE_TTL_MAX_MS)
		r->st.ttl_ms = STORE_TTL_MAX_MS;
	if (r->st.expires_ns < 0)
		r->st.expires_ns = 0;
	v.hlc = le_get64(p + 48);
	v.node = le_get64(p + 56);
	if (!v.hlc || !v.node)
		v.hlc = v.node = 0;
	for (int i = 0; i < STORE_FIELDS; i++)
		r->st.fver[i] = v;
	if (r->st.type == STORE_TOMBSTONE)
		r->dead_ns = r->st.mtime_ns;
	/* the vector: sorted, without duplicates or zeros, at most 64 */
	vv = p + V1_HDR;
	memcpy(buf, vv, (size_t)nvv * REC_VV_LEN);
	qsort(buf, nvv, REC_VV_LEN, cmp_vv);
	for (unsigned i = 0, k = 0; i < nvv; i++) {
		uint64_t node = le_get64(buf + i * REC_VV_LEN);

		if (!node || !le_get64(buf + i * REC_VV_LEN + 8) ||
		    (k && le_get64(buf + (k - 1) * REC_VV_LEN) == node) ||
		    k == STORE_VV_MAX)
			continue;
		memmove(buf + k * REC_VV_LEN, buf + i * REC_VV_LEN, REC_VV_LEN);
		r->st.nvv = ++k;
	}
	r->vv = buf;
	/* the xattrs: sorted by name, versioned */
	x = vv + (size_t)nvv * REC_VV_LEN;
	for (off = 0; off < xlen && nx < 256;) {
		if (xlen - off < 5)
			return -EIO;
		xs[nx].nl = x[off];
		xs[nx].vl = le_get32(x + off + 1);
		if (!xs[nx].nl || xlen - off - 5 < (uint64_t)xs[nx].nl + xs[nx].vl)
			return -EIO;
		xs[nx].name = x + off + 5;
		xs[nx].value = xs[nx].name + xs[nx].nl;
		off += 5 + xs[nx].nl + xs[nx].vl;
		nx++;
	}
	if (nx > 1)
		qsort(xs, nx, sizeof(xs[0]), cmp_x);
	r->xattrs = buf + (size_t)r->st.nvv * REC_VV_LEN;
	for (unsigned i = 0; i < nx; i++) {
		if (i && !cmp_x(&xs[i - 1], &xs[i]))
			continue;
		n += xattr_put((unsigned char *)r->xattrs + n, xs[i].name,
			       xs[i].nl, xs[i].value, xs[i].vl, 0, v);
	}
	r->st.xattr_len = n;
	r->st.size = r->st.type == STORE_FILE || r->st.type == STORE_SYMLINK ?
			     size : 0;
	r->value = x + xlen;
	return 0;
}

int store_upgrade_v1(struct store *s, MDB_txn *txn, const char *file)
{
	MDB_val mk = { 7, (void *)"statefs" }, k, v, nv;
	unsigned char *kbuf = NULL, *vbuf = NULL, *out = NULL;
	size_t kcap = 0, vcap = 0, ocap = 0;
	uint64_t n = 0;
	struct meta m;
	MDB_cursor *c;
	struct rec r;
	int rc;

	rc = mdb_get(txn, s->dbi_meta, &mk, &v);
	if (rc || v.mv_size != V1_META)
		return rc ? rc : MDB_CORRUPTED;
	memset(&m, 0, sizeof(m));
	memcpy(&m, v.mv_data, V1_META); /* format 2 only appended fields */
	rc = mdb_cursor_open(txn, s->dbi_rec, &c);
	if (rc)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		size_t need = v.mv_size + 256 * 16 + 64;

		if (k.mv_size > kcap || v.mv_size + 256 * 16 > vcap ||
		    need + REC_HDR_LEN > ocap) {
			kcap = k.mv_size > kcap ? k.mv_size : kcap;
			vcap = need;
			ocap = need + REC_HDR_LEN + 256 * 16;
			free(kbuf);
			free(vbuf);
			free(out);
			kbuf = malloc(kcap);
			vbuf = malloc(vcap);
			out = malloc(ocap);
			if (!kbuf || !vbuf || !out) {
				rc = ENOMEM;
				break;
			}
		}
		memcpy(kbuf, k.mv_data, k.mv_size);
		k.mv_data = kbuf;
		rc = convert(v.mv_data, v.mv_size, &r, vbuf);
		if (rc) {
			log_msg(LOG_ERROR, "%s: upgrade: record %zu bytes does not "
				"decode as format 1", file, v.mv_size);
			rc = MDB_CORRUPTED;
			break;
		}
		/* r.value points into the map: encode before writing */
		rec_encode(out, &r);
		nv.mv_size = rec_encoded_len(&r);
		nv.mv_data = out;
		if (!(k.mv_size == 1 && kbuf[0] == '/')) {
			if (r.st.type == STORE_TOMBSTONE)
				m.n_dead++;
			else
				m.n_live++;
			m.value_bytes += r.st.size;
		}
		rc = mdb_put(txn, s->dbi_rec, &k, &nv, 0);
		if (rc)
			break;
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
		if (rc)
			break;
		n++;
	}
	mdb_cursor_close(c);
	free(kbuf);
	free(vbuf);
	free(out);
	if (rc != MDB_NOTFOUND)
		return rc ? rc : MDB_CORRUPTED;
	rc = mdb_drop(txn, s->dbi_log, 0);
	if (rc)
		return rc;
	m.format = STORE_FORMAT;
	m.log_first = m.log_last + 1; /* empty, and consumers behind: -ERANGE */
	m.log_bytes = 0;
	m.run_base = m.local_seq;
	v.mv_size = sizeof(m);
	v.mv_data = &m;
	rc = mdb_put(txn, s->dbi_meta, &mk, &v, 0);
	if (!rc)
		log_msg(LOG_NOTICE, "%s: upgraded from format 1 to %u (%" PRIu64
			" records)", file, STORE_FORMAT, n);
	return rc;
}

static int collect_all(void *arg, const MDB_val *k, const MDB_val *v)
{
	char path[PATH_MAX + 1];

	(void)v;
	return store_paths_add(arg, path, store_key_path(k, path));
}

int store_upgrade_fixup(struct store *s)
{
	struct store_paths paths = { 0 };
	struct store_txn *t;
	int err;

	err = store_txn_begin(s, 1, &t);
	if (err)
		return err;
	/* the paths first: nothing is written while the cursor walks */
	err = store_walk_below(t, "/", collect_all, &paths);
	for (size_t i = 0; i < paths.n && !err; i++) {
		char pb[PATH_MAX];

		err = store_ensure_parents(t, paths.v[i]);
		if (!err)
			err = store_mark_kids(t, store_parent_of(paths.v[i], pb));
	}
	store_paths_free(&paths);
	if (err) {
		store_txn_abort(&t);
		return err;
	}
	return store_txn_commit(&t);
}

/* ---- format 2 ---- */

/* Decode a format 2 record in place (pointers into p). 0 or -EIO. */
static int v2_decode(const unsigned char *p, size_t len, struct rec *r)
{
	struct store_stat *st = &r->st;

	if (len < V2_HDR || p[0] != 2 || p[1] < STORE_FILE ||
	    p[1] > STORE_PLACEHOLDER)
		return -EIO;
	memset(r, 0, sizeof(*r));
	st->type = p[1];
	st->nvv = p[2] | p[3] << 8;
	st->mode = le_get32(p + 4) & 07777;
	st->uid = le_get32(p + 8);
	st->gid = le_get32(p + 12);
	st->mtime_ns = (int64_t)le_get64(p + 16);
	st->ctime_ns = (int64_t)le_get64(p + 24);
	st->atime_ns = (int64_t)le_get64(p + 32);
	st->expires_ns = (int64_t)le_get64(p + 40);
	st->ttl_ms = le_get64(p + 48);
	st->size = le_get64(p + 56);
	st->xattr_len = le_get32(p + 64);
	r->flags = le_get32(p + 68) & REC_FLAGS_MASK;
	r->dead_ns = (int64_t)le_get64(p + 72);
	for (int i = 0; i < STORE_FIELDS; i++) {
		st->fver[i].hlc = le_get64(p + 80 + 16 * i);
		st->fver[i].node = le_get64(p + 88 + 16 * i);
	}
	if (st->nvv > STORE_VV_MAX || st->size > len ||
	    (uint64_t)V2_HDR + (uint64_t)st->nvv * REC_VV_LEN + st->xattr_len +
			    st->size != len)
		return -EIO;
	r->vv = p + V2_HDR;
	r->xattrs = r->vv + (size_t)st->nvv * REC_VV_LEN;
	r->value = r->xattrs + st->xattr_len;
	return 0;
}

/* A format 2 record as format 3, into out (room for len bytes: format
 * 3 is never longer). Its encoded length, or 0 if it does not decode. */
static size_t v2_record(const unsigned char *p, size_t len, unsigned char *out)
{
	struct rec r;

	if (v2_decode(p, len, &r))
		return 0;
	rec_encode(out, &r);
	return rec_encoded_len(&r);
}

/* A format 2 binlog entry (a change) as format 3; 0 if it does not
 * decode. */
static size_t v2_entry(const unsigned char *p, size_t len, unsigned char *out)
{
	size_t plen, rlen, n;
	uint32_t x;

	if (len < CHANGE_HDR_LEN || p[0] != 2)
		return 0;
	plen = p[2] | (size_t)p[3] << 8;
	rlen = le_get32(p + 24);
	if (len != CHANGE_HDR_LEN + plen + rlen)
		return 0;
	n = v2_record(p + CHANGE_HDR_LEN + plen, rlen,
		      out + CHANGE_HDR_LEN + plen);
	if (!n)
		return 0;
	memcpy(out, p, CHANGE_HDR_LEN + plen);
	out[0] = STORE_FORMAT;
	x = htole32((uint32_t)n);
	memcpy(out + 24, &x, 4);
	return CHANGE_HDR_LEN + plen + n;
}

/* Rewrite every value of dbi with conv; *bytes gets the sum of the new
 * lengths. An LMDB code. */
static int v2_rewrite(MDB_txn *txn, MDB_dbi dbi,
		      size_t (*conv)(const unsigned char *, size_t,
				     unsigned char *),
		      const char *file, const char *what, uint64_t *bytes)
{
	unsigned char *kbuf = NULL, *out = NULL;
	size_t kcap = 0, ocap = 0;
	MDB_cursor *c;
	MDB_val k, v, nv;
	int rc;

	*bytes = 0;
	rc = mdb_cursor_open(txn, dbi, &c);
	if (rc)
		return rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size > kcap || v.mv_size > ocap) {
			kcap = k.mv_size > kcap ? k.mv_size : kcap;
			ocap = v.mv_size > ocap ? v.mv_size : ocap;
			free(kbuf);
			free(out);
			kbuf = malloc(kcap);
			out = malloc(ocap);
			if (!kbuf || !out) {
				rc = ENOMEM;
				break;
			}
		}
		memcpy(kbuf, k.mv_data, k.mv_size);
		k.mv_data = kbuf;
		nv.mv_size = conv(v.mv_data, v.mv_size, out);
		nv.mv_data = out;
		if (!nv.mv_size) {
			log_msg(LOG_ERROR, "%s: upgrade: a %s of %zu bytes does "
				"not decode as format 2", file, what, v.mv_size);
			rc = MDB_CORRUPTED;
			break;
		}
		*bytes += nv.mv_size;
		rc = mdb_put(txn, dbi, &k, &nv, 0);
		if (rc)
			break;
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
		if (rc)
			break;
	}
	mdb_cursor_close(c);
	free(kbuf);
	free(out);
	return rc == MDB_NOTFOUND ? 0 : rc ? rc : MDB_CORRUPTED;
}

int store_upgrade_v2(struct store *s, MDB_txn *txn, const char *file,
		     struct meta *m)
{
	MDB_val k = { 7, (void *)"statefs" }, v;
	uint64_t rec_bytes, log_bytes;
	MDB_stat ms;
	int rc;

	rc = v2_rewrite(txn, s->dbi_rec, v2_record, file, "record", &rec_bytes);
	if (!rc)
		rc = v2_rewrite(txn, s->dbi_log, v2_entry, file, "binlog entry",
				&log_bytes);
	if (!rc)
		rc = mdb_stat(txn, s->dbi_rec, &ms);
	if (rc)
		return rc;
	m->format = STORE_FORMAT;
	m->log_bytes = log_bytes;
	v.mv_size = sizeof(*m);
	v.mv_data = m;
	rc = mdb_put(txn, s->dbi_meta, &k, &v, 0);
	if (!rc)
		log_msg(LOG_NOTICE, "%s: upgraded from format 2 to %u (%zu "
			"records, now %" PRIu64 " bytes)", file, STORE_FORMAT,
			(size_t)ms.ms_entries, rec_bytes);
	return rc;
}
