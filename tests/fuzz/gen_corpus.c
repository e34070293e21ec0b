/*
 * gen_corpus.c — writes the fuzzer's seed corpus and regression inputs.
 *
 *   gen_corpus corpus DIR    small valid changes, one per file
 *   gen_corpus regress DIR   inputs for the defects of issue 7
 *
 * Seeds are real changes: each comes from a scratch store of its own
 * (so each has its own origin node and the fuzzer can apply them in any
 * order), made with store_put / store_mknod / store_xattr_set /
 * store_del, read back with store_binlog_read and written with
 * store_change_encode. A file may hold several changes joined by
 * FUZZ_SEP; fuzz_change.c applies them in order to one store.
 *
 * Regression inputs start from such a change and patch the record where
 * the public API cannot make what is wanted (a peer that lies). All the
 * knowledge of the byte layout is in the "record format 3" block below;
 * everything else goes through store.h (store_rec_decode finds the parts,
 * store_change_encode frames the change). Paths and origin nodes differ
 * between regression files, so that one file's change never makes
 * another's a duplicate when a run feeds them all to one store.
 *
 * Every store here runs on fuzz_clock (fuzz_common.h), the clock of the
 * fuzzer's scratch store, so that the origin sequences (hybrid clock
 * values) are never too old or too far ahead for it.
 *
 * The outputs are committed (tests/fuzz/corpus, tests/fuzz/regress):
 * rerun this only to refresh them, e.g. after a format change.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/fuzz/fuzz_common.h"


static char tmp_root[4096];
static unsigned nstores;

static void die(const char *what, int err)
{
	fprintf(stderr, "gen_corpus: %s: %s\n", what, store_strerror(err));
	exit(1);
}

#define CHECK(call)                                                   \
	do {                                                          \
		int err_ = (call);                                    \
		if (err_ < 0)                                         \
			die(#call, err_);                             \
	} while (0)

static struct store *fresh_store(void)
{
	char dir[4200];
	struct store_opts o = { .map_size = 64ULL << 20,
				.clock = fuzz_clock };
	struct store *s;
	int err;

	snprintf(dir, sizeof(dir), "%s/s%u", tmp_root, nstores++);
	err = store_open(dir, &o, &s);
	if (err) {
		fprintf(stderr, "gen_corpus: %s\n", store_last_error());
		exit(1);
	}
	return s;
}

/* ---- changes as bytes ---- */

struct bytes {
	unsigned char *p;
	size_t len;
};

static int copy_cb(void *arg, const struct store_change *c)
{
	struct bytes *b = arg;
	void *buf;
	size_t len;
	int err = store_change_encode(c, &buf, &len);

	if (err)
		return err;
	free(b->p);
	b->p = buf;
	b->len = len;
	return 0;
}

/* The change with binlog sequence `seq` (0: the newest). */
static struct bytes change_at(struct store *s, uint64_t seq)
{
	struct bytes b = { NULL, 0 };

	if (!seq)
		seq = store_last_seq(s);
	CHECK(store_binlog_read(s, seq - 1, 1, copy_cb, &b));
	if (!b.p)
		die("no binlog entry", -ENOENT);
	return b;
}

static void apply(struct store *s, struct bytes b)
{
	struct store_change c;
	int r;

	CHECK(store_change_decode(b.p, b.len, &c));
	r = store_apply_remote(s, NULL, &c);
	if (r != STORE_APPLIED)
		die("apply_remote (not applied)", r < 0 ? r : -EINVAL);
}

static void write_file(const char *dir, const char *name,
		       const struct bytes *parts, unsigned n)
{
	char path[4400];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f) {
		perror(path);
		exit(1);
	}
	for (unsigned i = 0; i < n; i++) {
		if (i)
			fwrite(FUZZ_SEP, 1, sizeof(FUZZ_SEP) - 1, f);
		fwrite(parts[i].p, 1, parts[i].len, f);
	}
	if (fclose(f)) {
		perror(path);
		exit(1);
	}
	printf("%s\n", path);
}

static void write_one(const char *dir, const char *name, struct bytes b)
{
	write_file(dir, name, &b, 1);
	free(b.p);
}

/* ---- seeds ---- */

static void gen_corpus(const char *out)
{
	const struct store_attr a = { .mode = 0640, .ttl_ms = 60000 };
	struct store *s, *t, *u;
	struct bytes b[3];

	s = fresh_store();
	CHECK(store_put(s, NULL, "/file", "hello", 5, NULL, 0, STORE_CREATE));
	write_one(out, "file", change_at(s, 0));
	store_close(&s);

	s = fresh_store();
	CHECK(store_mknod(s, NULL, "/dir", STORE_DIR, NULL, &a,
			  STORE_ATTR_MODE | STORE_ATTR_TTL, 0));
	write_one(out, "dir", change_at(s, 0));
	store_close(&s);

	s = fresh_store();
	CHECK(store_mknod(s, NULL, "/d/link", STORE_SYMLINK, "../file", NULL,
			  0, STORE_PARENTS));
	write_one(out, "symlink", change_at(s, 0));
	store_close(&s);

	s = fresh_store();
	CHECK(store_put(s, NULL, "/gone", "x", 1, NULL, 0, STORE_CREATE));
	CHECK(store_del(s, NULL, "/gone", 0));
	write_one(out, "tombstone", change_at(s, 0));
	store_close(&s);

	s = fresh_store();
	CHECK(store_put(s, NULL, "/x", "v", 1, NULL, 0, STORE_CREATE));
	CHECK(store_xattr_set(s, NULL, "/x", "user.a", "1", 1, 0));
	CHECK(store_xattr_set(s, NULL, "/x", "user.empty", "", 0, 0));
	CHECK(store_xattr_set(s, NULL, "/x", "user.bb", "twenty two bytes long",
			      21, 0));
	write_one(out, "xattrs", change_at(s, 0));
	store_close(&s);

	s = fresh_store();
	CHECK(store_put(s, NULL, "/ttl", "t", 1, &a, STORE_ATTR_TTL,
			STORE_CREATE));
	write_one(out, "ttl", change_at(s, 0));
	store_close(&s);

	/* A version vector of three entries: /v written on s, then on t
	 * after t saw s's write, then on u after u saw t's. */
	s = fresh_store();
	t = fresh_store();
	u = fresh_store();
	CHECK(store_put(s, NULL, "/v", "1", 1, NULL, 0, STORE_CREATE));
	b[0] = change_at(s, 0);
	apply(t, b[0]);
	CHECK(store_put(t, NULL, "/v", "2", 1, NULL, 0, 0));
	b[1] = change_at(t, 0);
	apply(u, b[1]);
	CHECK(store_put(u, NULL, "/v", "3", 1, NULL, 0, 0));
	b[2] = change_at(u, 0);
	/* Sequences: each write after the one it saw (applied, applied),
	 * and a write that lost to a later one (superseded). */
	write_file(out, "seq_applied", b, 3);
	{
		struct bytes r[2] = { b[2], b[1] };

		write_file(out, "seq_superseded", r, 2);
	}
	free(b[0].p);
	free(b[1].p);
	write_one(out, "vv3", b[2]);
	/* Two concurrent writes of one path (neither saw the other). */
	CHECK(store_put(s, NULL, "/c", "s", 1, NULL, 0, STORE_CREATE));
	CHECK(store_put(t, NULL, "/c", "t", 1, NULL, 0, STORE_CREATE));
	b[0] = change_at(s, 0);
	b[1] = change_at(t, 0);
	write_file(out, "seq_conflict", b, 2);
	free(b[0].p);
	free(b[1].p);
	store_close(&s);
	store_close(&t);
	store_close(&u);
}

/*
 * ---- record format 3: the only layout knowledge in this file ----
 *
 * Offsets in an encoded record as store/record.c writes it, format 3
 * (little-endian; record.c's header comment is the reference). When the
 * format changes, update this block. rec_build always writes a version
 * table of two entries ((seq, origin), then version 0), ctime, atime and
 * the life part, so that the fields below are at fixed offsets.
 */
#define F3_REC_TYPE 1     /* u8 enum store_type */
#define F3_REC_NVV 2      /* u8 version vector entries */
#define F3_REC_FIDX 3     /* u8: 2-bit version table index per field */
#define F3_REC_MODE 4     /* u16, permission bits only */
#define F3_REC_NVER 6     /* u8 version table entries */
#define F3_REC_OPT 7      /* u8: which optional parts follow the table */
#define F3_OPT_ALL 0x7    /* ctime, atime, the life part (not dead_ns) */
#define F3_REC_MTIME 16   /* i64 ns */
#define F3_REC_XLEN 24    /* u32 bytes of xattrs */
#define F3_REC_HDR 28     /* fixed header; the version table follows */
#define F3_VER 16         /* u64 hlc, u64 node */
#define F3_REC_CTIME (F3_REC_HDR + 2 * F3_VER)      /* i64 ns */
#define F3_REC_ATIME (F3_REC_CTIME + 8)             /* i64 ns */
#define F3_REC_EXPIRES (F3_REC_ATIME + 8)           /* i64 ns */
#define F3_REC_TTL (F3_REC_EXPIRES + 8)             /* u64 ms */
#define F3_REC_VV (F3_REC_TTL + 8) /* vv entries, xattrs, then the value */
#define F3_VV_ENTRY 16    /* u64 node, u64 seq; nodes strictly increasing */
#define F3_X_HDR 22       /* u8 name_len, u8 removed, u32 value_len,
			   * u64 hlc, u64 node; then name, value */

static void put_le(unsigned char *p, unsigned width, uint64_t v)
{
	for (unsigned i = 0; i < width; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* One xattr entry at out (NULL: only its length). */
static size_t xattr_ent(unsigned char *out, const char *name, const char *val,
			int removed, uint64_t hlc, uint64_t node)
{
	size_t nl = strlen(name), vl = strlen(val);

	if (out) {
		out[0] = (unsigned char)nl;
		out[1] = (unsigned char)removed;
		put_le(out + 2, 4, vl);
		put_le(out + 6, 8, hlc);
		put_le(out + 14, 8, node);
		memcpy(out + F3_X_HDR, name, nl);
		memcpy(out + F3_X_HDR + nl, val, vl);
	}
	return F3_X_HDR + nl + vl;
}

/* A record made from rec (len bytes) with: the version vector vv (n
 * entries, at most 255, written in the order given); the xattr run x
 * (xlen bytes), or if x is NULL rec's own; the value val (vlen bytes),
 * or if val is NULL rec's own. Every field version that is set, and
 * every version of rec's own xattrs, becomes (seq, origin): what
 * change_check in store/replica.c requires of a peer's change is that
 * its newest version is (origin_seq, origin_node). */
static struct bytes rec_build(const void *rec, size_t len,
			      const struct store_vv_entry *vv, unsigned n,
			      const void *x, size_t xlen, const void *val,
			      size_t vlen, uint64_t origin, uint64_t seq)
{
	struct store_stat st;
	const void *value, *ovv, *xattrs;
	struct bytes b;
	unsigned char *p;
	unsigned fidx = 0;
	int own_x = !x;

	CHECK(store_rec_decode(rec, len, &st, &value, &ovv, &xattrs));
	if (n > 255)
		die("rec_build: more than 255 vector entries", -EINVAL);
	if (own_x) {
		x = xattrs;
		xlen = st.xattr_len;
	}
	if (!val) {
		val = value;
		vlen = st.size;
	}
	b.len = F3_REC_VV + (size_t)n * F3_VV_ENTRY + xlen + vlen;
	b.p = p = malloc(b.len);
	if (!p)
		die("malloc", -ENOMEM);
	memcpy(p, rec, F3_REC_HDR);
	for (unsigned i = 0; i < STORE_FIELDS; i++)
		if (!st.fver[i].hlc)
			fidx |= 1u << (2 * i); /* version 0 */
	p[F3_REC_NVV] = (unsigned char)n;
	p[F3_REC_FIDX] = (unsigned char)fidx;
	p[F3_REC_NVER] = 2;
	p[F3_REC_OPT] = F3_OPT_ALL;
	put_le(p + F3_REC_XLEN, 4, xlen);
	put_le(p + F3_REC_HDR, 8, seq);
	put_le(p + F3_REC_HDR + 8, 8, origin);
	memset(p + F3_REC_HDR + F3_VER, 0, F3_VER);
	put_le(p + F3_REC_CTIME, 8, (uint64_t)st.ctime_ns);
	put_le(p + F3_REC_ATIME, 8, (uint64_t)st.atime_ns);
	put_le(p + F3_REC_EXPIRES, 8, (uint64_t)st.expires_ns);
	put_le(p + F3_REC_TTL, 8, st.ttl_ms);
	p += F3_REC_VV;
	for (unsigned i = 0; i < n; i++, p += F3_VV_ENTRY) {
		put_le(p, 8, vv[i].node);
		put_le(p + 8, 8, vv[i].seq);
	}
	memcpy(p, x, xlen);
	if (own_x) {
		for (size_t off = 0; off + F3_X_HDR <= xlen;) {
			unsigned char *e = p + off;

			put_le(e + 6, 8, seq);
			put_le(e + 14, 8, origin);
			off += F3_X_HDR + e[0] + ((size_t)e[2] | (size_t)e[3] << 8 |
						  (size_t)e[4] << 16 |
						  (size_t)e[5] << 24);
		}
	}
	memcpy(p + xlen, val, vlen);
	return b;
}

/* ---- end of record format 3 ---- */

/* The usual vector of a change from `origin` at `seq`: n entries, sorted
 * by node, the origin's own (origin, seq) and n - 1 others (first_node +
 * i, seq 1) that skip the origin. Malloc'd. */
static struct store_vv_entry *vv_of(unsigned n, uint64_t first_node,
				    uint64_t origin, uint64_t seq)
{
	struct store_vv_entry *vv = calloc(n ? n : 1, sizeof(*vv));
	uint64_t node = first_node;
	unsigned i = 0;
	int placed = 0;

	if (!vv)
		die("calloc", -ENOMEM);
	while (i < n) {
		if (node == origin)
			node++;
		if (!placed && (origin < node || i == n - 1)) {
			vv[i++] = (struct store_vv_entry){ origin, seq };
			placed = 1;
		} else {
			vv[i++] = (struct store_vv_entry){ node++, 1 };
		}
	}
	return vv;
}

/* The record of an encoded change, rebuilt from `origin` at `seq` with
 * the usual vector of nvv entries (see vv_of, rec_build). */
static struct bytes rec_of(struct bytes change, unsigned nvv,
			   uint64_t first_node, uint64_t origin, uint64_t seq,
			   const void *val, size_t vlen)
{
	struct store_change c;
	struct store_vv_entry *vv = vv_of(nvv, first_node, origin, seq);
	struct bytes b;

	CHECK(store_change_decode(change.p, change.len, &c));
	b = rec_build(c.rec, c.rec_len, vv, nvv, NULL, 0, val, vlen, origin,
		      seq);
	free(vv);
	return b;
}

/* Frame `rec` as a change from `node` at `seq` at `path`. */
static struct bytes frame(const char *path, uint64_t node, uint64_t seq,
			  struct bytes rec)
{
	struct store_change c = {
		.origin_node = node,
		.origin_seq = seq,
		.path = path,
		.path_len = strlen(path),
		.rec = rec.p,
		.rec_len = rec.len,
	};
	void *buf;
	size_t len;

	CHECK(store_change_encode(&c, &buf, &len));
	free(rec.p);
	return (struct bytes){ buf, len };
}

/* An origin sequence: the hybrid clock at FUZZ_CLOCK_NS, logical k. */
static uint64_t hlc_at(unsigned k)
{
	return ((uint64_t)(FUZZ_CLOCK_NS / 1000000) << 16) + k;
}

/* Origin nodes of the regression inputs: one each, so that no file's
 * change makes another's a duplicate when a run feeds them all to one
 * store. */
#define ORIGIN(k) (0x7e570000ULL + (k))

static void gen_regress(const char *out)
{
	struct store *s = fresh_store();
	struct bytes file, dir, xfile, r, seq[2];
	char deep[512];
	uint64_t q = hlc_at(100);

	CHECK(store_put(s, NULL, "/f", "hello", 5, NULL, 0, STORE_CREATE));
	file = change_at(s, 0);
	CHECK(store_mknod(s, NULL, "/d", STORE_DIR, NULL, NULL, 0, 0));
	dir = change_at(s, 0);
	CHECK(store_put(s, NULL, "/x", "v", 1, NULL, 0, STORE_CREATE));
	CHECK(store_xattr_set(s, NULL, "/x", "user.a", "1", 1, 0));
	CHECK(store_xattr_set(s, NULL, "/x", "user.b", "2", 1, 0));
	xfile = change_at(s, 0);

	/* A version vector of 255 entries: the most a u8 count holds
	 * (format 2 had a u16 and this input had 65,535), a record whose
	 * lengths add up; only the STORE_VV_MAX bound refuses it. */
	r = rec_of(file, 255, 0x10000, ORIGIN(1), q, NULL, 0);
	write_one(out, "vv_255", frame("/vv255", ORIGIN(1), q, r));

	/* Two writes of one path, each well-formed, whose vectors merge to
	 * 65 nodes: 64 entries (the most a record holds), then a later
	 * write from a 65th node that did not see the first: -E2BIG. */
	r = rec_of(file, STORE_VV_MAX, 0x20000, ORIGIN(2), q, NULL, 0);
	seq[0] = frame("/vvmerge", ORIGIN(2), q, r);
	r = rec_of(file, 1, 0, ORIGIN(3), q + 1, NULL, 0);
	seq[1] = frame("/vvmerge", ORIGIN(3), q + 1, r);
	write_file(out, "vv_merge_65", seq, 2);
	free(seq[0].p);
	free(seq[1].p);

	/* A change from origin node 0 (version 0 means "local bookkeeping";
	 * a record cannot even say node 0, so the record is node 4's). */
	r = rec_of(file, 1, 0, ORIGIN(4), q, NULL, 0);
	write_one(out, "origin_node_0", frame("/origin0", 0, q, r));

	/* A directory that carries a value. */
	r = rec_of(dir, 1, 0, ORIGIN(5), q, "a value", 7);
	write_one(out, "dir_with_value", frame("/dirvalue", ORIGIN(5), q, r));

	/* A directory with a regular file's mode: the format keeps
	 * permission bits only. */
	r = rec_of(dir, 1, 0, ORIGIN(6), q, NULL, 0);
	put_le(r.p + F3_REC_MODE, 2, S_IFREG | 0644);
	write_one(out, "dir_with_file_mode", frame("/dirmode", ORIGIN(6), q, r));

	/* A TTL of 1e13 ms: past STORE_TTL_MAX_MS, and now + ttl in ns
	 * would not fit an int64. */
	r = rec_of(file, 1, 0, ORIGIN(7), q, NULL, 0);
	put_le(r.p + F3_REC_TTL, 8, 10000000000000ULL);
	write_one(out, "ttl_1e13ms", frame("/ttl", ORIGIN(7), q, r));

	/* The same TTL with the deadline a wrapping sum gives: negative. */
	r = rec_of(file, 1, 0, ORIGIN(8), q, NULL, 0);
	put_le(r.p + F3_REC_TTL, 8, 10000000000000ULL);
	put_le(r.p + F3_REC_EXPIRES, 8,
	       (uint64_t)FUZZ_CLOCK_NS + 10000000000000ULL * 1000000ULL);
	write_one(out, "expires_overflow", frame("/expires", ORIGIN(8), q, r));

	/* The largest TTL and deadline a record may carry: accepted, and
	 * every use of them (touch, sweep) must not overflow. */
	r = rec_of(file, 1, 0, ORIGIN(15), q, NULL, 0);
	put_le(r.p + F3_REC_TTL, 8, STORE_TTL_MAX_MS);
	put_le(r.p + F3_REC_EXPIRES, 8, INT64_MAX);
	write_one(out, "expires_max", frame("/expiresmax", ORIGIN(15), q, r));

	/* A value one byte over the fuzzer's max_value: -EFBIG, which
	 * leaves the store as it was. */
	{
		static char big[FUZZ_MAX_VALUE + 1];

		memset(big, 'v', sizeof(big));
		r = rec_of(file, 1, 0, ORIGIN(18), q, big, sizeof(big));
		write_one(out, "value_over_max", frame("/big", ORIGIN(18), q, r));
	}

	/* Found by the fuzzer in format 1: two expired files and a live one
	 * in one LMDB page; applying the live one swept the others while
	 * store_sweep rewrote records under its cursor (the key it passed
	 * back to mdb_cursor_put moved: memcpy-param-overlap). */
	{
		struct bytes sw[3];
		static const char *const paths[3] = { "/sweep-x1", "/sweep-x2",
						      "/sweep-live" };

		for (unsigned i = 0; i < 3; i++) {
			r = rec_of(file, 1, 0, ORIGIN(9 + i), q, NULL, 0);
			if (i < 2) /* long past */
				put_le(r.p + F3_REC_EXPIRES, 8, 1);
			sw[i] = frame(paths[i], ORIGIN(9 + i), q, r);
		}
		write_file(out, "sweep_moves_key", sw, 3);
		for (unsigned i = 0; i < 3; i++)
			free(sw[i].p);
	}

	/* Xattr runs the decoder must refuse: names out of order, a name
	 * twice, a removed entry that has a value. */
	{
		static const char *const names[3][2] = {
			{ "user.b", "user.a" },
			{ "user.a", "user.a" },
			{ "user.a", "user.b" },
		};
		static const char *const files[3] = { "xattr_unsorted",
						      "xattr_dup_name",
						      "xattr_removed_value" };
		struct store_change c;
		struct store_vv_entry vv[1];

		CHECK(store_change_decode(xfile.p, xfile.len, &c));
		for (unsigned i = 0; i < 3; i++) {
			uint64_t o = ORIGIN(12 + i);
			unsigned char x[128];
			size_t n;
			char path[32];

			vv[0] = (struct store_vv_entry){ o, q };
			n = xattr_ent(x, names[i][0], "1", 0, q, o);
			n += xattr_ent(x + n, names[i][1], "2", i == 2, q, o);
			r = rec_build(c.rec, c.rec_len, vv, 1, x, n, NULL, 0, o,
				      q);
			snprintf(path, sizeof(path), "/%s", files[i]);
			write_one(out, files[i], frame(path, o, q, r));
		}
	}

	/* Vectors whose nodes do not strictly increase: two entries in
	 * decreasing order, and one node twice. */
	{
		struct store_change c;
		uint64_t o = ORIGIN(16), p = ORIGIN(17);
		struct store_vv_entry down[2] = { { o + 1, 1 }, { o, q } };
		struct store_vv_entry twice[2] = { { p, q }, { p, q } };

		CHECK(store_change_decode(file.p, file.len, &c));
		r = rec_build(c.rec, c.rec_len, down, 2, NULL, 0, NULL, 0, o, q);
		write_one(out, "vv_unsorted", frame("/vvdown", o, q, r));
		r = rec_build(c.rec, c.rec_len, twice, 2, NULL, 0, NULL, 0, p, q);
		write_one(out, "vv_dup_node", frame("/vvtwice", p, q, r));
	}

	/* A valid path 255 levels deep ("/a/a/.../a", 510 bytes: under
	 * LMDB's 511-byte key limit), made by the store itself: applying
	 * it makes 254 placeholder parents. */
	for (unsigned i = 0; i < 255; i++)
		memcpy(deep + 2 * i, "/a", 2);
	deep[510] = '\0';
	CHECK(store_put(s, NULL, deep, "deep", 4, NULL, 0,
			STORE_CREATE | STORE_PARENTS));
	write_one(out, "deep_path_255", change_at(s, 0));

	free(file.p);
	free(dir.p);
	free(xfile.p);
	store_close(&s);
}

/* ---- main ---- */

static void rm_tree(void)
{
	char cmd[4200];

	/* Only our own mkdtemp directory; its name holds no quote. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
	if (system(cmd) != 0)
		fprintf(stderr, "gen_corpus: could not remove %s\n", tmp_root);
}

int main(int argc, char **argv)
{
	const char *tmp = getenv("TMPDIR");

	if (argc != 3 || (strcmp(argv[1], "corpus") && strcmp(argv[1], "regress"))) {
		fprintf(stderr, "usage: gen_corpus corpus|regress DIR\n");
		return 2;
	}
	if (mkdir(argv[2], 0755) < 0 && errno != EEXIST) {
		perror(argv[2]);
		return 1;
	}
	snprintf(tmp_root, sizeof(tmp_root), "%s/statefs-gen.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(tmp_root)) {
		perror(tmp_root);
		return 1;
	}
	atexit(rm_tree);
	if (strcmp(argv[1], "corpus") == 0)
		gen_corpus(argv[2]);
	else
		gen_regress(argv[2]);
	return 0;
}
