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
 * knowledge of the byte layout is in the "record format 1" block below;
 * everything else goes through store.h (store_rec_decode finds the parts,
 * store_change_encode frames the change). Paths and origin nodes differ
 * between regression files, so that one file's change never makes
 * another's a duplicate when a run feeds them all to one store.
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

#define FUZZ_SEP "\n--next--\n" /* as in fuzz_change.c */

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
	struct store_opts o = { .map_size = 64ULL << 20 };
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
 * ---- record format 1: the only layout knowledge in this file ----
 *
 * Offsets in an encoded record as store/record.c writes it, format 1
 * (little-endian). When the format changes, update this block.
 */
#define F1_REC_TYPE 1     /* u8 enum store_type */
#define F1_REC_NVV 2      /* u16 version vector entries */
#define F1_REC_MODE 4     /* u32 */
#define F1_REC_EXPIRES 32 /* i64 ns */
#define F1_REC_TTL 40     /* u64 ms */
#define F1_REC_HLC 48     /* u64 */
#define F1_REC_NODE 56    /* u64 version.node, must equal origin_node */
#define F1_REC_SIZE 80    /* u64 value length */
#define F1_REC_HDR 88     /* header; vv entries follow */
#define F1_VV_ENTRY 16    /* u64 node, u64 seq */

static void put_le(unsigned char *p, unsigned width, uint64_t v)
{
	for (unsigned i = 0; i < width; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* A record with its version vector replaced by `n` entries
 * (node first_node + i, seq 1) and, if val is not NULL, its value
 * replaced by val. Xattrs are kept. */
static struct bytes rec_rebuild(const void *rec, size_t len, unsigned n,
				uint64_t first_node, const void *val,
				size_t vlen)
{
	struct store_stat st;
	const void *value, *vv, *xattrs;
	const unsigned char *in = rec;
	struct bytes b;
	unsigned char *p;

	CHECK(store_rec_decode(rec, len, &st, &value, &vv, &xattrs));
	if (!val) {
		val = value;
		vlen = st.size;
	}
	b.len = F1_REC_HDR + (size_t)n * F1_VV_ENTRY + st.xattr_len + vlen;
	b.p = p = malloc(b.len);
	if (!p)
		die("malloc", -ENOMEM);
	memcpy(p, in, F1_REC_HDR);
	put_le(p + F1_REC_NVV, 2, n);
	put_le(p + F1_REC_SIZE, 8, vlen);
	p += F1_REC_HDR;
	for (unsigned i = 0; i < n; i++, p += F1_VV_ENTRY) {
		put_le(p, 8, first_node + i);
		put_le(p + 8, 8, 1);
	}
	memcpy(p, xattrs, st.xattr_len);
	memcpy(p + st.xattr_len, val, vlen);
	return b;
}

/* ---- end of record format 1 ---- */

/* The record of an encoded change, rebuilt (see rec_rebuild). */
static struct bytes rec_of(struct bytes change, unsigned nvv,
			   uint64_t first_node, const void *val, size_t vlen)
{
	struct store_change c;

	CHECK(store_change_decode(change.p, change.len, &c));
	return rec_rebuild(c.rec, c.rec_len, nvv, first_node, val, vlen);
}

/* Frame `rec` as a change from `node` (its version.node is set to match,
 * as apply_remote requires) at `path`. */
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

	put_le(rec.p + F1_REC_NODE, 8, node);
	CHECK(store_change_encode(&c, &buf, &len));
	free(rec.p);
	return (struct bytes){ buf, len };
}

static void gen_regress(const char *out)
{
	struct store *s = fresh_store();
	struct bytes file, dir, r, seq[2];
	char deep[512];
	int64_t now = store_now_ns();

	CHECK(store_put(s, NULL, "/f", "hello", 5, NULL, 0, STORE_CREATE));
	file = change_at(s, 0);
	CHECK(store_mknod(s, NULL, "/d", STORE_DIR, NULL, NULL, 0, 0));
	dir = change_at(s, 0);

	/* A version vector of 65,535 entries: the most a u16 count holds,
	 * 1 MiB of record. */
	r = rec_of(file, 65535, 0x10000, NULL, 0);
	write_one(out, "vv_65535", frame("/vv65535", 0x7e570001, 1, r));

	/* Two writes of one path whose vectors merge to 65,537 entries:
	 * 65,535, then a later write from another node with 2 new ones. */
	r = rec_of(file, 65535, 0x20000, NULL, 0);
	seq[0] = frame("/vvmerge", 0x7e570002, 1, r);
	r = rec_of(file, 2, 0x40000, NULL, 0);
	put_le(r.p + F1_REC_HLC, 8, UINT64_MAX >> 1); /* the later one */
	seq[1] = frame("/vvmerge", 0x7e570003, 1, r);
	write_file(out, "vv_merge_65537", seq, 2);
	free(seq[0].p);
	free(seq[1].p);

	/* A change from origin node 0 (the store's "local bookkeeping"
	 * node: such a write is not logged). */
	r = rec_of(file, 1, 0x7e570004, NULL, 0);
	write_one(out, "origin_node_0", frame("/origin0", 0, 1, r));

	/* A directory that carries a value. */
	r = rec_of(dir, 1, 0x7e570005, "a value", 7);
	write_one(out, "dir_with_value", frame("/dirvalue", 0x7e570005, 1, r));

	/* A directory with a regular file's mode. */
	r = rec_of(dir, 1, 0x7e570006, NULL, 0);
	put_le(r.p + F1_REC_MODE, 4, S_IFREG | 0644);
	write_one(out, "dir_with_file_mode",
		  frame("/dirmode", 0x7e570006, 1, r));

	/* A TTL of 1e13 ms: now + ttl in ns does not fit an int64. */
	r = rec_of(file, 1, 0x7e570007, NULL, 0);
	put_le(r.p + F1_REC_TTL, 8, 10000000000000ULL);
	write_one(out, "ttl_1e13ms", frame("/ttl", 0x7e570007, 1, r));

	/* The same TTL with the deadline a wrapping sum gives: negative. */
	r = rec_of(file, 1, 0x7e570008, NULL, 0);
	put_le(r.p + F1_REC_TTL, 8, 10000000000000ULL);
	put_le(r.p + F1_REC_EXPIRES, 8,
	       (uint64_t)now + 10000000000000ULL * 1000000ULL);
	write_one(out, "expires_overflow",
		  frame("/expires", 0x7e570008, 1, r));

	/* Found by the fuzzer: two expired files and a live one in one
	 * LMDB page. Applying the live one sweeps the others into
	 * tombstones in one transaction: store_sweep passes the cursor's
	 * own key back to mdb_cursor_put (MDB_CURRENT); once the first
	 * put has made the page dirty, the second shrinks a record in that
	 * page and LMDB copies the key from memory it is moving. */
	{
		struct bytes sw[3];
		static const char *const paths[3] = { "/sweep-x1", "/sweep-x2",
						      "/sweep-live" };

		for (unsigned i = 0; i < 3; i++) {
			r = rec_of(file, 1, 0x7e570009 + i, NULL, 0);
			if (i < 2) /* long past */
				put_le(r.p + F1_REC_EXPIRES, 8, 1);
			sw[i] = frame(paths[i], 0x7e570009 + i, 1, r);
		}
		write_file(out, "sweep_moves_key", sw, 3);
		for (unsigned i = 0; i < 3; i++)
			free(sw[i].p);
	}

	/* A valid path 255 levels deep ("/a/a/.../a", 510 bytes: under
	 * LMDB's 511-byte key limit), made by the store itself. */
	for (unsigned i = 0; i < 255; i++)
		memcpy(deep + 2 * i, "/a", 2);
	deep[510] = '\0';
	CHECK(store_put(s, NULL, deep, "deep", 4, NULL, 0,
			STORE_CREATE | STORE_PARENTS));
	write_one(out, "deep_path_255", change_at(s, 0));

	free(file.p);
	free(dir.p);
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
