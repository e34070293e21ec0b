/*
 * test_replica.c — unit tests of the store's replication half (issue 7):
 * merges that converge whatever the order, derived directories, clocks
 * held back, own changes recovered after a restore, purges that wait
 * for acknowledgements, bounds on what a peer can send, the binlog cap,
 * the sweep that once corrupted keys, and snapshots: installing one,
 * rule S1's prune, the horizon, what a merge refuses.
 *
 * Each test runs two to four stores in one process, in a mkdtemp
 * directory under /dev/shm removed afterwards. Every store reads a
 * virtual clock (store_opts.clock) that the test moves, so TTL expiry,
 * grace periods and clock offsets are exact and nothing sleeps.
 *
 * Changes travel with ship(): the sender's whole binlog, in order, into
 * the receiver, each commit group in one transaction, as the replicator
 * will; re-sending is harmless (duplicates are recognised).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "store/store.h"

#define assert_rc(expr, want)                                                \
	do {                                                                 \
		long long rc_ = (long long)(expr);                           \
		long long w_ = (long long)(want);                            \
		if (rc_ != w_) {                                             \
			print_error("%s = %lld, want %lld\n", #expr, rc_, w_); \
			fail();                                              \
		}                                                            \
	} while (0)

/* ---- virtual clocks ---- */

static int64_t world_ns = 1800000000LL * 1000000000LL; /* 2027 */

struct vclock {
	int64_t offset_ns;
};

static int64_t vclock_read(void *arg)
{
	return world_ns + ((struct vclock *)arg)->offset_ns;
}

static void advance_ms(int64_t ms)
{
	world_ns += ms * 1000000;
}

/* ---- fixture: up to four stores ---- */

#define NMAX 4

struct fx {
	char dir[64];
	struct store *s[NMAX];
	struct vclock clk[NMAX];
	struct store_opts o[NMAX];
	char name[NMAX][16];
};

static int rm_one(const char *p, const struct stat *sb, int type,
		  struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	remove(p);
	return 0;
}

static struct store *open_node(struct fx *f, int i)
{
	char p[128];
	struct store *s = NULL;
	int rc;

	snprintf(p, sizeof(p), "%s/n%d", f->dir, i);
	snprintf(f->name[i], sizeof(f->name[i]), "n%d", i);
	f->o[i].node_name = f->name[i];
	f->o[i].clock = vclock_read;
	f->o[i].clock_arg = &f->clk[i];
	rc = store_open(p, &f->o[i], &s);
	if (rc) {
		print_error("store_open(%s) = %d: %s\n", p, rc, store_last_error());
		fail();
	}
	return s;
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/dev/shm/test_replica.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	for (int i = 0; i < NMAX; i++)
		f->s[i] = open_node(f, i);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	for (int i = 0; i < NMAX; i++)
		store_close(&f->s[i]);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static uint64_t node_id(struct store *s)
{
	struct store_info in;

	assert_rc(store_info(s, &in), 0);
	return in.node_id;
}

/* ---- shipping changes ---- */

struct ship_ctx {
	struct store *to;
	struct store_txn *t;
	int counts[8];
	int err;
};

static int ship_one(void *arg, const struct store_change *c)
{
	struct ship_ctx *x = arg;
	int rc;

	if (!x->t)
		assert_rc(store_txn_begin(x->to, 1, &x->t), 0);
	rc = store_apply_remote(x->to, x->t, c);
	if (rc < 0) {
		x->err = rc;
		return rc;
	}
	assert_true(rc <= STORE_TOO_OLD);
	x->counts[rc]++;
	if (rc == STORE_HELD || rc == STORE_TOO_OLD)
		return 1; /* this origin's stream stops here */
	if (!(c->flags & STORE_CHANGE_MORE)) {
		assert_rc(store_txn_commit(&x->t), 0);
		x->t = NULL;
	}
	return 0;
}

/* Everything in from's binlog into to; returns the counts by outcome. */
static struct ship_ctx ship(struct store *from, struct store *to)
{
	struct ship_ctx x = { .to = to };
	ssize_t n = store_binlog_read(from, 0, 0, ship_one, &x);

	if (x.t)
		assert_rc(store_txn_commit(&x.t), 0);
	if (n < 0 && n != 1 && !x.err) {
		print_error("store_binlog_read = %zd\n", n);
		fail();
	}
	return x;
}

/* Ship both ways between every pair until nothing changes. */
static void converge(struct fx *f, int n)
{
	for (int round = 0; round < 3; round++)
		for (int a = 0; a < n; a++)
			for (int b = 0; b < n; b++)
				if (a != b)
					ship(f->s[a], f->s[b]);
}

static void check_ok(struct store *s)
{
	char msg[256];
	int rc = store_check(s, msg, sizeof(msg));

	if (rc) {
		print_error("store_check = %d: %s\n", rc, msg);
		fail();
	}
}

static void assert_same(struct fx *f, int n)
{
	unsigned char d0[STORE_DIGEST_LEN], d[STORE_DIGEST_LEN];

	assert_rc(store_digest(f->s[0], d0), 0);
	for (int i = 0; i < n; i++) {
		check_ok(f->s[i]);
		assert_rc(store_digest(f->s[i], d), 0);
		if (memcmp(d, d0, sizeof(d))) {
			print_error("node %d differs from node 0\n", i);
			fail();
		}
	}
}

static int put_str(struct store *s, const char *path, const char *v)
{
	return store_put(s, NULL, path, v, strlen(v), NULL, 0,
			 STORE_CREATE | STORE_PARENTS);
}

static int mkdir_p(struct store *s, const char *path)
{
	return store_mknod(s, NULL, path, STORE_DIR, NULL, NULL, 0,
			   STORE_PARENTS);
}

static void check_str(struct store *s, const char *path, const char *want)
{
	void *v = NULL;
	size_t len = 0;

	assert_rc(store_get(s, NULL, path, NULL, &v, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(v, want, len);
	free(v);
}

static uint32_t mode_of(struct store *s, const char *path)
{
	struct store_stat st;

	assert_rc(store_stat(s, NULL, path, &st), 0);
	return st.mode;
}

struct count_ctx {
	int n;
};

static int count_cb(void *arg, const char *name, size_t len,
		    const struct store_stat *st)
{
	(void)name;
	(void)len;
	(void)st;
	((struct count_ctx *)arg)->n++;
	return 0;
}

static int count_children(struct store *s, const char *dir)
{
	struct count_ctx c = { 0 };

	assert_rc(store_list(s, NULL, dir, NULL, count_cb, &c), 0);
	return c.n;
}

/* ==== 1. the sweep ==== */

/* Many files of one directory (so in shared leaf pages) expire in one
 * sweep, between files that do not: every key must stay intact. This
 * corrupted keys when the sweep rewrote records under its cursor. */
static void test_sweep_many_expired(void **state)
{
	struct fx *f = *state;
	struct store *s = f->s[0];
	struct store_attr a = { .ttl_ms = 1000 };
	char p[64], v[64];
	int i;

	for (i = 0; i < 300; i++) {
		snprintf(p, sizeof(p), "/d/f%03d", i);
		snprintf(v, sizeof(v), "value %d", i);
		if (i % 3)
			assert_rc(store_put(s, NULL, p, v, strlen(v), &a,
					    STORE_ATTR_TTL,
					    STORE_CREATE | STORE_PARENTS), 0);
		else
			assert_rc(put_str(s, p, v), 0);
	}
	advance_ms(2000);
	assert_rc(count_children(s, "/d"), 100);
	assert_rc(store_sweep(s, 0), 200);
	check_ok(s);
	assert_rc(count_children(s, "/d"), 100);
	for (i = 0; i < 300; i += 3) {
		snprintf(p, sizeof(p), "/d/f%03d", i);
		snprintf(v, sizeof(v), "value %d", i);
		check_str(s, p, v);
	}
	/* and again, into the same pages */
	for (i = 0; i < 300; i++) {
		snprintf(p, sizeof(p), "/d/f%03d", i);
		assert_rc(store_put(s, NULL, p, "x", 1, &a, STORE_ATTR_TTL,
				    STORE_CREATE), 0);
	}
	advance_ms(2000);
	assert_rc(store_sweep(s, 0), 300);
	check_ok(s);
	assert_rc(count_children(s, "/d"), 0);
}

/* ==== 2. convergence ==== */

/* A directory rename: the old directory's tombstone is logged before
 * its children's; no node may keep /old, also one fed only through a
 * peer. */
static void test_dir_rename(void **state)
{
	struct fx *f = *state;
	struct store_stat st;

	assert_rc(put_str(f->s[0], "/old/a", "A"), 0);
	assert_rc(put_str(f->s[0], "/old/sub/b", "B"), 0);
	ship(f->s[0], f->s[1]);
	ship(f->s[1], f->s[2]);
	assert_rc(store_rename(f->s[0], NULL, "/old", "/new", 0), 0);
	ship(f->s[0], f->s[1]);
	ship(f->s[1], f->s[2]); /* node 2 hears only from node 1 */
	for (int i = 0; i < 3; i++) {
		assert_rc(store_stat(f->s[i], NULL, "/old", &st), -ENOENT);
		check_str(f->s[i], "/new/sub/b", "B");
		assert_rc(count_children(f->s[i], "/"), 1);
	}
	assert_same(f, 3);
}

/* rmdir on one node while the only child expires: the outcome depends
 * on the records and the time, never on arrival order or whose clock. */
static void test_rmdir_vs_expiry(void **state)
{
	struct fx *f = *state;
	struct store_attr a = { .ttl_ms = 1000 };
	struct store_stat st;

	f->clk[2].offset_ns = -400 * 1000000LL; /* node 2 is 400 ms behind */
	assert_rc(store_mknod(f->s[0], NULL, "/d", STORE_DIR, NULL, NULL, 0, 0), 0);
	assert_rc(store_put(f->s[0], NULL, "/d/f", "v", 1, &a, STORE_ATTR_TTL,
			    STORE_CREATE), 0);
	converge(f, 3);
	advance_ms(1200); /* expired on nodes 0 and 1, not yet on node 2 */
	assert_rc(store_del(f->s[1], NULL, "/d", STORE_DEL_DIR), 0);
	ship(f->s[1], f->s[2]); /* arrives while the child is live there */
	assert_rc(store_stat(f->s[2], NULL, "/d", &st), 0);
	converge(f, 3);
	advance_ms(1000); /* expired everywhere */
	for (int i = 0; i < 3; i++)
		assert_rc(store_stat(f->s[i], NULL, "/d", &st), -ENOENT);
	assert_same(f, 3);
	/* a renewal that arrives later brings the child and the directory
	 * back on every node alike */
	f->clk[2].offset_ns = 0;
	assert_rc(store_put(f->s[2], NULL, "/d/g", "w", 1, NULL, 0,
			    STORE_CREATE | STORE_PARENTS), 0);
	converge(f, 3);
	for (int i = 0; i < 3; i++)
		check_str(f->s[i], "/d/g", "w");
	assert_same(f, 3);
}

/* A directory renamed on one node and chmod'ed on the other. */
static void test_rename_vs_chmod(void **state)
{
	struct fx *f = *state;
	struct store_attr a = { .mode = 0700 };

	assert_rc(put_str(f->s[0], "/d/x", "1"), 0);
	converge(f, 2);
	assert_rc(store_rename(f->s[0], NULL, "/d", "/e", 0), 0);
	assert_rc(store_setattr(f->s[1], NULL, "/d", &a, STORE_ATTR_MODE), 0);
	ship(f->s[1], f->s[0]);
	ship(f->s[0], f->s[1]);
	assert_same(f, 2);
	assert_rc(mode_of(f->s[0], "/e"), mode_of(f->s[1], "/e"));
}

/* A file deleted on one node while the other replaced it with a
 * directory holding a child. */
static void test_file_deleted_vs_dir_created(void **state)
{
	struct fx *f = *state;

	assert_rc(put_str(f->s[0], "/x", "file"), 0);
	converge(f, 2);
	assert_rc(store_del(f->s[1], NULL, "/x", 0), 0);
	assert_rc(mkdir_p(f->s[1], "/x"), 0);
	assert_rc(put_str(f->s[1], "/x/y", "child"), 0);
	advance_ms(5);
	assert_rc(store_del(f->s[0], NULL, "/x", 0), 0); /* the later delete */
	ship(f->s[0], f->s[1]);
	ship(f->s[1], f->s[0]);
	for (int i = 0; i < 2; i++) {
		assert_rc(mode_of(f->s[i], "/x"), S_IFDIR | 0755);
		check_str(f->s[i], "/x/y", "child");
		assert_rc(count_children(f->s[i], "/x"), 1);
	}
	assert_same(f, 2);
}

/* A file that wins over a directory at the same path, while the other
 * node created a child in the directory: the directory shows (nothing
 * live is hidden), by stat and by listing alike, on both nodes. */
static void test_file_over_dir(void **state)
{
	struct fx *f = *state;
	struct store_stat st;

	assert_rc(put_str(f->s[0], "/p/c", "1"), 0);
	converge(f, 2);
	assert_rc(put_str(f->s[0], "/p/d", "new child"), 0);
	advance_ms(5);
	assert_rc(store_del(f->s[1], NULL, "/p", STORE_DEL_RECURSIVE), 0);
	assert_rc(put_str(f->s[1], "/p", "a file"), 0);
	ship(f->s[0], f->s[1]);
	ship(f->s[1], f->s[0]);
	for (int i = 0; i < 2; i++) {
		assert_rc(store_stat(f->s[i], NULL, "/p", &st), 0);
		assert_int_equal(st.type, STORE_DIR);
		check_str(f->s[i], "/p/d", "new child");
		assert_rc(store_stat(f->s[i], NULL, "/p/c", &st), -ENOENT);
		assert_rc(count_children(f->s[i], "/p"), 1);
	}
	assert_same(f, 2);
	/* once the child goes, the file shows again, everywhere */
	assert_rc(store_del(f->s[0], NULL, "/p/d", 0), 0);
	converge(f, 2);
	for (int i = 0; i < 2; i++)
		check_str(f->s[i], "/p", "a file");
	assert_same(f, 2);
}

/* A directory kept by a concurrent child keeps its own mode, TTL and
 * xattrs; a parent that a node never received is the same on every
 * node (no uninitialised mode). */
static void test_kept_parent_fields(void **state)
{
	struct fx *f = *state;
	struct store_attr a = { .mode = 0711, .ttl_ms = 30000 };
	struct store_stat st;
	char buf[16];

	assert_rc(store_mknod(f->s[0], NULL, "/d", STORE_DIR, NULL, &a,
			      STORE_ATTR_MODE | STORE_ATTR_TTL, 0), 0);
	assert_rc(store_xattr_set(f->s[0], NULL, "/d", "user.k", "v", 1, 0), 0);
	converge(f, 2);
	assert_rc(store_del(f->s[0], NULL, "/d", STORE_DEL_DIR), 0);
	assert_rc(put_str(f->s[1], "/d/f", "x"), 0);
	/* node 2 hears of /d/f first, from node 1 only */
	ship(f->s[1], f->s[2]);
	assert_rc(mode_of(f->s[2], "/d"), S_IFDIR | 0711);
	converge(f, 3);
	for (int i = 0; i < 3; i++) {
		assert_rc(store_stat(f->s[i], NULL, "/d", &st), 0);
		assert_int_equal(st.mode, S_IFDIR | 0711);
		assert_int_equal(st.ttl_ms, 30000);
		assert_rc(store_xattr_get(f->s[i], NULL, "/d", "user.k", buf,
					  sizeof(buf)), 1);
	}
	assert_same(f, 3);

	/* a child whose parent record a node never saw at all */
	assert_rc(put_str(f->s[3], "/q/r/s", "deep"), 0);
	ship(f->s[3], f->s[0]);
	assert_rc(mode_of(f->s[0], "/q/r"), S_IFDIR | 0755);
	check_ok(f->s[0]);
}

/* Ship only from's changes to `path` (a node that hears of a child
 * before its parent: the parent is a placeholder there). */
struct ship_path_ctx {
	struct ship_ctx x;
	const char *path;
};

static int ship_path_one(void *arg, const struct store_change *c)
{
	struct ship_path_ctx *p = arg;
	int rc;

	if (c->path_len != strlen(p->path) ||
	    memcmp(c->path, p->path, c->path_len))
		return 0;
	assert_rc(store_txn_begin(p->x.to, 1, &p->x.t), 0);
	rc = store_apply_remote(p->x.to, p->x.t, c);
	assert_true(rc >= 0);
	assert_rc(store_txn_commit(&p->x.t), 0);
	return 0;
}

/* A chmod of a directory that is only a placeholder here (made for a
 * peer's child) is a change every peer takes: it once went out as a
 * placeholder record, which peers refuse (EPROTO; sim seed 5595). */
static void test_placeholder_chmod(void **state)
{
	struct fx *f = *state;
	struct ship_path_ctx p = { { .to = f->s[0] }, "/p/f" };
	struct store_attr a = { .mode = 0700 };
	struct ship_ctx x;

	/* node 1 makes /p, node 2 /p/f; node 0 hears of /p/f first */
	assert_rc(mkdir_p(f->s[1], "/p"), 0);
	ship(f->s[1], f->s[2]);
	assert_rc(put_str(f->s[2], "/p/f", "x"), 0);
	assert_true(store_binlog_read(f->s[2], 0, 0, ship_path_one, &p) >= 0);
	check_str(f->s[0], "/p/f", "x");
	assert_rc(mode_of(f->s[0], "/p"), S_IFDIR | 0755);
	assert_rc(store_setattr(f->s[0], NULL, "/p", &a, STORE_ATTR_MODE), 0);
	assert_rc(mode_of(f->s[0], "/p"), S_IFDIR | 0700);
	check_ok(f->s[0]);
	x = ship(f->s[0], f->s[3]);
	assert_rc(x.err, 0);
	assert_rc(mode_of(f->s[3], "/p"), S_IFDIR | 0700);
	check_ok(f->s[3]);
	converge(f, 4);
	for (int i = 0; i < 4; i++)
		assert_rc(mode_of(f->s[i], "/p"), S_IFDIR | 0700);
	assert_same(f, 4);
	/* node 1's mkdir keeps /p when the file goes */
	assert_rc(store_del(f->s[2], NULL, "/p/f", 0), 0);
	converge(f, 4);
	for (int i = 0; i < 4; i++)
		assert_rc(mode_of(f->s[i], "/p"), S_IFDIR | 0700);
	assert_same(f, 4);
}

/* Concurrent changes of different fields of one file both survive. */
static void test_fields_merge(void **state)
{
	struct fx *f = *state;
	struct store_attr a = { .mode = 0600 };
	char buf[16];

	assert_rc(put_str(f->s[0], "/f", "old"), 0);
	converge(f, 2);
	assert_rc(store_setattr(f->s[0], NULL, "/f", &a, STORE_ATTR_MODE), 0);
	assert_rc(store_xattr_set(f->s[0], NULL, "/f", "user.tag", "t", 1, 0), 0);
	advance_ms(5);
	assert_rc(put_str(f->s[1], "/f", "new"), 0);
	ship(f->s[1], f->s[0]);
	ship(f->s[0], f->s[1]);
	for (int i = 0; i < 2; i++) {
		check_str(f->s[i], "/f", "new");
		assert_rc(mode_of(f->s[i], "/f"), S_IFREG | 0600);
		assert_rc(store_xattr_get(f->s[i], NULL, "/f", "user.tag", buf,
					  sizeof(buf)), 1);
	}
	assert_same(f, 2);
	/* a remove and a concurrent set of one xattr: the later wins */
	assert_rc(store_xattr_remove(f->s[0], NULL, "/f", "user.tag"), 0);
	advance_ms(5);
	assert_rc(store_xattr_set(f->s[1], NULL, "/f", "user.tag", "u", 1, 0), 0);
	ship(f->s[0], f->s[1]);
	ship(f->s[1], f->s[0]);
	for (int i = 0; i < 2; i++) {
		assert_rc(store_xattr_get(f->s[i], NULL, "/f", "user.tag", buf,
					  sizeof(buf)), 1);
		assert_int_equal(buf[0], 'u');
	}
}

/* Found by the simulator: a touch of a directory or a symlink changed
 * no field and was refused by every peer, stopping the stream. */
static void test_touch_dir_symlink(void **state)
{
	struct fx *f = *state;
	struct store_attr a = { 0 };
	struct ship_ctx x;

	assert_rc(mkdir_p(f->s[0], "/d"), 0);
	assert_rc(store_mknod(f->s[0], NULL, "/l", STORE_SYMLINK, "/d", NULL, 0, 0), 0);
	ship(f->s[0], f->s[1]);
	advance_ms(5);
	assert_rc(store_setattr(f->s[0], NULL, "/d", &a, STORE_ATTR_TOUCH), 0);
	assert_rc(store_setattr(f->s[0], NULL, "/l", &a, STORE_ATTR_TOUCH), 0);
	assert_rc(put_str(f->s[0], "/after", "1"), 0);
	x = ship(f->s[0], f->s[1]);
	assert_int_equal(x.err, 0);
	check_str(f->s[1], "/after", "1");
	assert_same(f, 2);
}

/* Found by the simulator: concurrent sets of two xattrs whose names
 * differ by 2 in their last byte lost one (a merge sentinel). */
static void test_xattr_concurrent_names(void **state)
{
	struct fx *f = *state;
	char buf[64];

	assert_rc(put_str(f->s[0], "/c", "v"), 0);
	converge(f, 2);
	assert_rc(store_xattr_set(f->s[1], NULL, "/c", "user.k0", "a", 1, 0), 0);
	assert_rc(store_xattr_set(f->s[0], NULL, "/c", "user.k2", "b", 1, 0), 0);
	converge(f, 2);
	for (int i = 0; i < 2; i++)
		assert_rc(store_xattr_list(f->s[i], NULL, "/c", buf, sizeof(buf)),
			  16);
}

/* Found by the simulator: a path created again after one node purged
 * its old record showed the old xattrs only where the tombstone was
 * still kept. A create's xattr floor hides them everywhere. */
static void test_recreate_after_purge(void **state)
{
	struct fx *f = *state;
	uint64_t a = node_id(f->s[0]), b = node_id(f->s[1]);
	char buf[64];

	assert_rc(put_str(f->s[0], "/f", "v"), 0);
	converge(f, 2);
	assert_rc(store_del(f->s[0], NULL, "/f", 0), 0);
	assert_rc(store_xattr_set(f->s[1], NULL, "/f", "user.k0", "x", 1, 0), 0);
	converge(f, 2);
	/* node 0 purges (everyone acknowledged, the grace passed) */
	{
		struct store_info ia, ib;

		assert_rc(store_info(f->s[0], &ia), 0);
		assert_rc(store_info(f->s[1], &ib), 0);
		assert_rc(store_peer_ack(f->s[0], NULL, b, a, ia.local_seq), 0);
		assert_rc(store_peer_ack(f->s[0], NULL, b, b, ib.local_seq), 0);
	}
	advance_ms(25 * 3600 * 1000LL);
	assert_rc(store_sweep(f->s[0], 0), 1);
	assert_rc(put_str(f->s[0], "/f", "again"), 0);
	converge(f, 2);
	for (int i = 0; i < 2; i++) {
		check_str(f->s[i], "/f", "again");
		assert_rc(store_xattr_list(f->s[i], NULL, "/f", buf, sizeof(buf)), 0);
	}
	assert_same(f, 2);
}

/* ==== 3. clocks, sequences, purges ==== */

static void test_clock_ahead_held(void **state)
{
	struct fx *f = *state;
	struct store_info in;
	struct ship_ctx x;
	struct store_stat st;

	f->clk[1].offset_ns = 3600 * 1000000000LL; /* an hour ahead */
	assert_rc(put_str(f->s[1], "/f", "from the future"), 0);
	x = ship(f->s[1], f->s[0]);
	assert_int_equal(x.counts[STORE_HELD], 1);
	assert_rc(store_stat(f->s[0], NULL, "/f", &st), -ENOENT);
	assert_rc(store_info(f->s[0], &in), 0);
	assert_int_equal(in.held, 1);
	assert_true(in.held_ahead_ms >= 3600000 && in.held_ahead_ms < 3601000);
	/* our own writes were not dragged an hour ahead */
	assert_rc(put_str(f->s[0], "/g", "now"), 0);
	assert_rc(store_stat(f->s[0], NULL, "/g", &st), 0);
	assert_true((int64_t)(st.version.hlc >> 16) <= world_ns / 1000000 + 1);
	/* applied once our clock gets there */
	advance_ms(3600 * 1000 - 400);
	x = ship(f->s[1], f->s[0]);
	assert_int_equal(x.counts[STORE_HELD], 0);
	check_str(f->s[0], "/f", "from the future");
}

/* A store restored from an older copy reuses no sequence and takes its
 * lost changes back from a peer. */
static void test_restore_recovers_own(void **state)
{
	struct fx *f = *state;
	char cmd[512];
	uint64_t a = node_id(f->s[0]), b = node_id(f->s[1]), lost;
	struct store_stat st;
	struct ship_ctx x;

	assert_rc(put_str(f->s[0], "/kept", "1"), 0);
	ship(f->s[0], f->s[1]);
	store_close(&f->s[0]);
	snprintf(cmd, sizeof(cmd), "cp -a %s/n0 %s/n0.bak", f->dir, f->dir);
	assert_rc(system(cmd), 0);
	f->s[0] = open_node(f, 0);
	advance_ms(10);
	assert_rc(put_str(f->s[0], "/lost", "2"), 0);
	assert_rc(store_stat(f->s[0], NULL, "/lost", &st), 0);
	lost = st.origin_seq;
	ship(f->s[0], f->s[1]);
	/* the disk is restored from the copy */
	store_close(&f->s[0]);
	snprintf(cmd, sizeof(cmd), "rm -rf %s/n0 && mv %s/n0.bak %s/n0",
		 f->dir, f->dir, f->dir);
	assert_rc(system(cmd), 0);
	f->s[0] = open_node(f, 0);
	assert_rc(store_stat(f->s[0], NULL, "/lost", &st), -ENOENT);
	advance_ms(10);
	assert_rc(put_str(f->s[0], "/after", "3"), 0);
	assert_rc(store_stat(f->s[0], NULL, "/after", &st), 0);
	assert_true(st.origin_seq > lost); /* no reuse */
	/* the peer reports what it holds of ours */
	assert_rc(store_peer_ack(f->s[0], NULL, b, a, lost), 0);
	x = ship(f->s[1], f->s[0]);
	assert_true(x.counts[STORE_APPLIED] >= 1);
	check_str(f->s[0], "/lost", "2");
	check_str(f->s[0], "/after", "3");
	ship(f->s[0], f->s[1]);
	assert_same(f, 2);
}

/* Purges wait for the grace, counted from our receipt, and for every
 * known peer; a change older than the horizon is refused. */
static void test_purge_acks(void **state)
{
	struct fx *f = *state;
	uint64_t b = node_id(f->s[1]), a = node_id(f->s[0]);
	struct store_info in;
	struct store_stat st;
	uint64_t seq;

	assert_rc(store_peer_add(f->s[0], NULL, b), 0);
	assert_rc(put_str(f->s[0], "/f", "v"), 0);
	assert_rc(store_del(f->s[0], NULL, "/f", 0), 0);
	assert_rc(store_info(f->s[0], &in), 0);
	seq = in.local_seq;
	assert_int_equal(in.tombstones, 1);
	assert_rc(store_sweep(f->s[0], 0), 0);
	advance_ms(25 * 3600 * 1000LL);
	assert_rc(store_sweep(f->s[0], 0), 0); /* not acknowledged yet */
	assert_rc(store_peer_ack(f->s[0], NULL, b, a, seq), 0);
	assert_rc(store_sweep(f->s[0], 0), 1);
	assert_rc(store_info(f->s[0], &in), 0);
	assert_int_equal(in.tombstones, 0);
	check_ok(f->s[0]);

	/* a write 25 h old arriving now is refused, not applied */
	f->clk[2].offset_ns = -25 * 3600 * 1000000000LL;
	assert_rc(put_str(f->s[2], "/f", "stale"), 0);
	{
		struct ship_ctx x = ship(f->s[2], f->s[0]);

		assert_int_equal(x.counts[STORE_TOO_OLD], 1);
	}
	assert_rc(store_stat(f->s[0], NULL, "/f", &st), -ENOENT);
	assert_rc(store_info(f->s[0], &in), 0);
	assert_int_equal(in.too_old, 1);

	/* with no known peer a tombstone goes at the first sweep */
	assert_rc(put_str(f->s[3], "/g", "v"), 0);
	assert_rc(store_del(f->s[3], NULL, "/g", 0), 0);
	assert_rc(store_sweep(f->s[3], 0), 1);
}

/* The binlog drops whole groups every known peer acknowledged, once
 * they are older than keep_ms; nothing without peers. */
static void test_trim_acked(void **state)
{
	struct fx *f = *state;
	uint64_t a = node_id(f->s[0]), b = node_id(f->s[1]), c = node_id(f->s[2]);
	struct store_info in;
	struct store_txn *t;
	uint64_t mid, last;

	assert_rc(put_str(f->s[0], "/x", "1"), 0);
	advance_ms(60000);
	assert_rc(store_binlog_trim_acked(f->s[0], 1000, 0), 0); /* no peers */
	assert_rc(store_peer_add(f->s[0], NULL, b), 0);
	assert_rc(store_peer_add(f->s[0], NULL, c), 0);
	assert_rc(store_info(f->s[0], &in), 0);
	mid = in.local_seq;
	/* a group of three (one transaction) */
	assert_rc(store_txn_begin(f->s[0], 1, &t), 0);
	assert_rc(store_put(f->s[0], t, "/g1", "a", 1, NULL, 0, STORE_CREATE), 0);
	assert_rc(store_put(f->s[0], t, "/g2", "b", 1, NULL, 0, STORE_CREATE), 0);
	assert_rc(store_put(f->s[0], t, "/g3", "c", 1, NULL, 0, STORE_CREATE), 0);
	assert_rc(store_txn_commit(&t), 0);
	assert_rc(store_info(f->s[0], &in), 0);
	last = in.local_seq;
	assert_int_equal(in.binlog_count, 4);
	advance_ms(60000);
	/* b holds everything, c only the first: only the first goes */
	assert_rc(store_peer_ack(f->s[0], NULL, b, a, last), 0);
	assert_rc(store_peer_ack(f->s[0], NULL, c, a, mid), 0);
	assert_rc(store_binlog_trim_acked(f->s[0], 1000, 0), 1);
	assert_rc(store_info(f->s[0], &in), 0);
	assert_int_equal(in.binlog_count, 3);
	assert_rc(store_peer_ack(f->s[0], NULL, c, a, last), 0);
	/* too young for local readers */
	assert_rc(store_binlog_trim_acked(f->s[0], 3600 * 1000, 0), 0);
	assert_rc(store_binlog_trim_acked(f->s[0], 1000, 0), 3);
	assert_rc(store_info(f->s[0], &in), 0);
	assert_int_equal(in.binlog_count, 0);
	/* a reader that had not seen them is told it fell behind */
	assert_rc(store_binlog_read(f->s[0], 0, 0, NULL, NULL), -ERANGE);
	/* and the log goes on */
	assert_rc(put_str(f->s[0], "/y", "2"), 0);
	assert_rc(store_info(f->s[0], &in), 0);
	assert_int_equal(in.binlog_count, 1);
	check_ok(f->s[0]);
}

/* A change this node cannot apply stops its origin's stream: the
 * watermark stays before it. */
static int wm_of_cb(void *arg, uint64_t node, uint64_t seq)
{
	uint64_t *x = arg;

	if (node == x[0])
		x[1] = seq;
	return 0;
}

static void test_unapplied_keeps_watermark(void **state)
{
	struct fx *f = *state;
	uint64_t wm[2] = { node_id(f->s[0]), 0 };
	char big[200];
	struct store *small;
	struct store_opts o = { .node_name = "small", .max_value = 100,
				.clock = vclock_read, .clock_arg = &f->clk[3] };
	char p[128];
	struct ship_ctx x;

	snprintf(p, sizeof(p), "%s/small", f->dir);
	assert_rc(store_open(p, &o, &small), 0);
	memset(big, 'b', sizeof(big));
	assert_rc(put_str(f->s[0], "/a", "first"), 0);
	assert_rc(store_put(f->s[0], NULL, "/big", big, sizeof(big), NULL, 0,
			    STORE_CREATE), 0);
	assert_rc(put_str(f->s[0], "/c", "after"), 0);
	x = ship(f->s[0], small);
	assert_int_equal(x.err, -EFBIG);
	assert_int_equal(x.counts[STORE_APPLIED], 1);
	assert_rc(store_watermarks(small, wm_of_cb, wm), 0);
	{
		struct store_stat st;

		assert_rc(store_stat(small, NULL, "/a", &st), 0);
		assert_int_equal(wm[1], st.origin_seq);
		assert_rc(store_stat(small, NULL, "/c", &st), -ENOENT);
	}
	store_close(&small);
}

/* ==== 4. input a peer controls ==== */

/* Layout knowledge for crafting bad input (store/record.c, format 3):
 * the record's fixed header is 28 bytes: nvv is the u8 at offset 2, the
 * mode the u16 at 4, the version table's length the u8 at 6, the opt
 * byte at 7, saying which optional parts follow the table (in this
 * order: 0x1 ctime, 0x2 atime, 8 bytes each; 0x4 the life part
 * { i64 expires, u64 ttl_ms }; 0x8 dead_ns, 8 bytes); then the version
 * vector; the value is the rest (its size is not stored). The change
 * header is 32 bytes, origin_node at 8, rec_len the u32 at 24. */
#define REC_HDR 28
#define CHG_HDR 32

/* Where the life part is, or would be, in the record at rec. */
static size_t rec_life_off(const uint8_t *rec)
{
	return REC_HDR + 16 * (size_t)rec[6] + (rec[7] & 1 ? 8 : 0) +
	       (rec[7] & 2 ? 8 : 0);
}

/* Where the version vector starts in the record at rec. */
static size_t rec_vv_off(const uint8_t *rec)
{
	return rec_life_off(rec) + (rec[7] & 4 ? 16 : 0) + (rec[7] & 8 ? 8 : 0);
}

static void set_rec_len(uint8_t *change, size_t rec_len)
{
	uint32_t x = htole32((uint32_t)rec_len);

	memcpy(change + 24, &x, 4);
}

struct grab {
	uint8_t *buf;
	size_t len;
	struct store_change c;
};

static int grab_last(void *arg, const struct store_change *c)
{
	struct grab *g = arg;
	void *b;

	free(g->buf);
	assert_rc(store_change_encode(c, &b, &g->len), 0);
	g->buf = b;
	return 0;
}

static struct grab last_change(struct store *s)
{
	struct grab g = { 0 };

	assert_true(store_binlog_read(s, 0, 0, grab_last, &g) > 0);
	return g;
}

static int apply_bytes(struct store *s, const void *buf, size_t len)
{
	struct store_change c;
	int rc = store_change_decode(buf, len, &c);

	return rc ? rc : store_apply_remote(s, NULL, &c);
}

static void test_bad_input(void **state)
{
	struct fx *f = *state;
	struct store_stat st;
	struct grab g;
	uint8_t *b;
	size_t n;
	uint64_t x;

	assert_rc(put_str(f->s[1], "/f", "v"), 0);
	g = last_change(f->s[1]);
	/* origin 0 */
	b = malloc(g.len);
	memcpy(b, g.buf, g.len);
	memset(b + 8, 0, 8);
	assert_rc(apply_bytes(f->s[0], b, g.len), -EPROTO);
	/* a TTL past the limit (1e13 ms): a life part inserted after the
	 * version table (the record of /f has none) */
	{
		size_t ro = CHG_HDR + 2, at = ro + rec_life_off(g.buf + ro);

		assert_int_equal(g.buf[ro + 7] & 4, 0);
		free(b);
		b = calloc(1, g.len + 16);
		memcpy(b, g.buf, at);
		x = htole64(10000000000000ULL);
		memcpy(b + at + 8, &x, 8);
		memcpy(b + at + 16, g.buf + at, g.len - at);
		b[ro + 7] |= 4;
		set_rec_len(b, g.len + 16 - ro);
		assert_rc(apply_bytes(f->s[0], b, g.len + 16), -EPROTO);
		/* the same with a TTL of 1 h is applied: the insertion
		 * itself is well-formed */
		x = htole64(3600000);
		memcpy(b + at + 8, &x, 8);
		assert_true(apply_bytes(f->s[0], b, g.len + 16) >= 0);
		assert_rc(store_stat(f->s[0], NULL, "/f", &st), 0);
		assert_int_equal(st.ttl_ms, 3600000);
	}
	free(b);
	/* 255 vector entries (the most a u8 count says; the bound is
	 * STORE_VV_MAX) */
	{
		size_t vo = CHG_HDR + 2 + rec_vv_off(g.buf + CHG_HDR + 2);

		n = g.len + 255 * 16;
		b = calloc(1, n);
		memcpy(b, g.buf, vo);
		b[CHG_HDR + 2 + 2] = 0xff;
		set_rec_len(b, n - CHG_HDR - 2);
		assert_rc(apply_bytes(f->s[0], b, n), -EPROTO);
		free(b);
	}
	free(g.buf);
	/* a directory record with a value, or a file's mode */
	assert_rc(store_mknod(f->s[1], NULL, "/d", STORE_DIR, NULL, NULL, 0, 0), 0);
	g = last_change(f->s[1]);
	b = malloc(g.len + 3);
	memcpy(b, g.buf, g.len);
	memcpy(b + g.len, "abc", 3);
	set_rec_len(b, g.len + 3 - CHG_HDR - 2);
	assert_rc(apply_bytes(f->s[0], b, g.len + 3), -EPROTO);
	memcpy(b, g.buf, g.len);
	{
		uint16_t m = htole16(S_IFREG | 0644);

		memcpy(b + CHG_HDR + 2 + 4, &m, 2);
	}
	assert_rc(apply_bytes(f->s[0], b, g.len), -EPROTO);
	free(b);
	free(g.buf);
	/* the mount and statefsctl share one TTL limit */
	{
		struct store_attr a = { .ttl_ms = STORE_TTL_MAX_MS + 1 };

		assert_rc(store_put(f->s[0], NULL, "/t", "v", 1, &a,
				    STORE_ATTR_TTL, STORE_CREATE), -EINVAL);
	}
	check_ok(f->s[0]);
}

/* Give the change in b (len bytes) a vector of `n` made-up nodes (ids
 * base, base + step, ...) besides its origin, keeping it well-formed:
 * the origin's entry is kept and the entries stay in node order. */
static uint8_t *with_vector(const struct grab *g, uint64_t origin, unsigned n,
			    uint64_t base, uint64_t step, size_t *lenp)
{
	size_t rec_off = CHG_HDR + g->c.path_len, len = g->len + (size_t)n * 16;
	size_t vo = rec_off + rec_vv_off(g->buf + rec_off);
	uint8_t *b = calloc(1, len), *vv = b + vo;
	unsigned k = 0, put = 0;
	uint64_t x;

	assert_int_equal(g->buf[rec_off + 2], 1); /* the origin's entry */
	memcpy(b, g->buf, vo);
	for (unsigned i = 0; i < n; i++) {
		uint64_t node = base + step * i;

		if (!put && origin < node) {
			memcpy(vv + 16 * k++, g->buf + vo, 16);
			put = 1;
		}
		x = htole64(node);
		memcpy(vv + 16 * k, &x, 8);
		x = htole64(1);
		memcpy(vv + 16 * k++ + 8, &x, 8);
	}
	if (!put)
		memcpy(vv + 16 * k++, g->buf + vo, 16);
	memcpy(vv + 16 * k, g->buf + vo + 16, g->len - vo - 16);
	b[rec_off + 2] = (uint8_t)(n + 1);
	set_rec_len(b, len - rec_off);
	*lenp = len;
	return b;
}

/* Vectors are bounded (STORE_VV_MAX): a record naming more nodes is
 * malformed, and two records that together would name more are refused
 * (-E2BIG) without poisoning anything; the merge is one linear pass. */
static void test_vv_bound(void **state)
{
	struct fx *f = *state;
	uint64_t origin = node_id(f->s[1]);
	struct grab g1, g2;
	struct store_change c;
	uint8_t *b;
	size_t n;

	assert_rc(put_str(f->s[1], "/f", "v"), 0);
	g1 = last_change(f->s[1]);
	assert_rc(store_change_decode(g1.buf, g1.len, &g1.c), 0);
	advance_ms(1);
	assert_rc(put_str(f->s[1], "/f", "w"), 0);
	g2 = last_change(f->s[1]);
	assert_rc(store_change_decode(g2.buf, g2.len, &g2.c), 0);

	b = with_vector(&g1, origin, STORE_VV_MAX, 2, 2, &n);
	assert_rc(store_change_decode(b, n, &c), -EPROTO);
	free(b);
	/* 40 even ids, then 40 odd ids on the next change: 81 together */
	b = with_vector(&g1, origin, 40, 2, 2, &n);
	assert_rc(apply_bytes(f->s[0], b, n), STORE_APPLIED);
	free(b);
	b = with_vector(&g2, origin, 40, 3, 2, &n);
	assert_rc(apply_bytes(f->s[0], b, n), -E2BIG);
	free(b);
	check_str(f->s[0], "/f", "v");
	check_ok(f->s[0]);
	free(g1.buf);
	free(g2.buf);
}

/* A valid path 255 levels deep, applied on a thread with a small stack:
 * nothing recurses over the depth. */
struct deep_ctx {
	struct store *to;
	const void *buf;
	size_t len;
	int rc;
};

static void *deep_apply(void *arg)
{
	struct deep_ctx *d = arg;

	d->rc = apply_bytes(d->to, d->buf, d->len);
	return NULL;
}

static void test_deep_path(void **state)
{
	struct fx *f = *state;
	char path[600];
	size_t n = 0;
	pthread_attr_t at;
	pthread_t th;
	struct grab g;
	struct deep_ctx d;
	struct store_stat st;

	for (int i = 0; i < 255; i++) {
		path[n++] = '/';
		path[n++] = 'a' + i % 26;
	}
	path[n] = '\0';
	assert_rc(put_str(f->s[1], path, "deep"), 0);
	g = last_change(f->s[1]);
	d = (struct deep_ctx){ f->s[0], g.buf, g.len, -1 };
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 128 * 1024);
	assert_rc(pthread_create(&th, &at, deep_apply, &d), 0);
	pthread_join(th, NULL);
	pthread_attr_destroy(&at);
	assert_rc(d.rc, STORE_APPLIED);
	check_str(f->s[0], path, "deep");
	path[2] = '\0';
	assert_rc(store_stat(f->s[0], NULL, path, &st), 0);
	assert_int_equal(st.type, STORE_DIR);
	check_ok(f->s[0]);
	free(g.buf);
}

/* ==== 5. the binlog keeps commits whole ==== */

static int count_chg(void *arg, const struct store_change *c)
{
	(void)c;
	(*(int *)arg)++;
	return 0;
}

static void test_binlog_groups(void **state)
{
	struct fx *f = *state;
	struct store_opts o = { .node_name = "cap", .binlog_max = 10,
				.clock = vclock_read, .clock_arg = &f->clk[3] };
	struct store_opts o8 = { .node_name = "small", .map_size = 8 << 20,
				 .clock = vclock_read, .clock_arg = &f->clk[3] };
	struct store *s;
	struct store_info in;
	char p[128], v[32];
	uint64_t caught;
	int n = 0;
	void *big;

	snprintf(p, sizeof(p), "%s/cap", f->dir);
	assert_rc(store_open(p, &o, &s), 0);
	for (int i = 0; i < 20; i++) {
		snprintf(v, sizeof(v), "/d/f%02d", i);
		assert_rc(put_str(s, v, "x"), 0);
	}
	caught = store_last_seq(s);
	assert_rc(store_rename(s, NULL, "/d", "/e", 0), 0);
	/* a consumer that was caught up gets the whole rename */
	assert_rc(store_binlog_read(s, caught, 0, count_chg, &n), 42);
	assert_int_equal(n, 42);
	assert_rc(store_info(s, &in), 0);
	assert_int_equal(in.binlog_first, caught + 1);
	check_ok(s);
	store_close(&s);

	/* one 2 MiB put in an 8 MiB map keeps its own entry */
	snprintf(p, sizeof(p), "%s/small", f->dir);
	assert_rc(store_open(p, &o8, &s), 0);
	big = calloc(1, 2 << 20);
	assert_rc(store_put(s, NULL, "/big", big, 2 << 20, NULL, 0,
			    STORE_CREATE), 0);
	assert_rc(store_info(s, &in), 0);
	assert_true(in.binlog_count >= 1);
	assert_true(in.binlog_first <= in.binlog_last);
	n = 0;
	assert_rc(store_binlog_read(s, in.binlog_last - 1, 0, count_chg, &n), 1);
	check_ok(s);
	free(big);
	store_close(&s);
}

/* O(1) counts stay true through applies and purges. */
static void test_counts(void **state)
{
	struct fx *f = *state;
	struct store_info in;

	assert_rc(put_str(f->s[1], "/a/b", "12345"), 0);
	assert_rc(put_str(f->s[1], "/a/c", "678"), 0);
	assert_rc(store_del(f->s[1], NULL, "/a/c", 0), 0);
	ship(f->s[1], f->s[0]);
	assert_rc(store_info(f->s[0], &in), 0);
	assert_int_equal(in.records, 2);
	assert_int_equal(in.tombstones, 1);
	assert_int_equal(in.value_bytes, 5);
	check_ok(f->s[0]);
	check_ok(f->s[1]);
}

/* ==== 4. snapshots ==== */

/* One chunk as read from the sender (copied: its pointers live only
 * during the callback). */
struct chunk {
	char *path[64];
	void *rec[64];
	size_t len[64];
	size_t n;
};

static int chunk_cb(void *arg, const char *path, size_t path_len,
		    const void *rec, size_t rec_len)
{
	struct chunk *c = arg;

	assert_true(c->n < 64);
	c->path[c->n] = strndup(path, path_len);
	c->rec[c->n] = malloc(rec_len);
	assert_non_null(c->path[c->n]);
	assert_non_null(c->rec[c->n]);
	memcpy(c->rec[c->n], rec, rec_len);
	c->len[c->n++] = rec_len;
	return 0;
}

/* The index of path in the chunk (it must be there). */
static size_t chunk_find(const struct chunk *c, const char *path)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->path[i], path) == 0)
			return i;
	fail_msg("%s not in the snapshot", path);
	return 0;
}

struct wmv {
	struct store_vv_entry e[16];
	unsigned n;
};

static int wmv_cb(void *arg, uint64_t node, uint64_t seq)
{
	struct wmv *w = arg;

	assert_true(w->n < 16);
	w->e[w->n].node = node;
	w->e[w->n++].seq = seq;
	return 0;
}

/* Install from's whole store into to, as the replicator does: chunks
 * of about max_bytes, each merged and pruned in its own transaction,
 * then the rest pruned and the install finished. Returns the chunks
 * installed, or the first error of a merge (the install is given up). */
static int install(struct store *from, struct store *to, size_t max_bytes)
{
	struct store_snap *snap;
	struct wmv wm = { .n = 0 };
	char *last = NULL;
	int chunks = 0, err = 0;

	assert_rc(store_snap_open(from, &snap), 0);
	assert_rc(store_snap_watermarks(snap, wmv_cb, &wm), 0);
	for (;;) {
		struct chunk c = { .n = 0 };
		struct store_txn *t;
		ssize_t n = store_snap_next(snap, max_bytes, chunk_cb, &c);

		assert_true(n >= 0);
		assert_rc(store_txn_begin(to, 1, &t), 0);
		for (size_t i = 0; !err && i < c.n; i++)
			err = store_snap_merge(to, t, c.path[i], strlen(c.path[i]),
					       c.rec[i], c.len[i]);
		if (!err)
			assert_rc(store_snap_prune(to, t, wm.e, wm.n, last,
						   c.n ? c.path[c.n - 1] : NULL,
						   (const char *const *)c.path,
						   c.n), 0);
		if (!err && !c.n)
			assert_rc(store_snap_finish(to, t, wm.e, wm.n), 0);
		if (err)
			store_txn_abort(&t);
		else
			assert_rc(store_txn_commit(&t), 0);
		for (size_t i = 0; i < c.n; i++)
			free(c.rec[i]);
		if (!err && c.n) {
			free(last);
			last = c.path[c.n - 1];
			c.path[c.n - 1] = NULL;
		}
		for (size_t i = 0; i < c.n; i++)
			free(c.path[i]);
		if (err || !n)
			break;
		chunks++;
	}
	free(last);
	store_snap_close(&snap);
	return err ? err : chunks;
}

/* A fresh store gets the whole of another in several chunks: the same
 * digest, a consistent store, one resync counted. */
static void test_snap_fresh(void **state)
{
	struct fx *f = *state;
	char p[32];

	for (int i = 0; i < 12; i++) {
		snprintf(p, sizeof(p), "/d%d/f%d", i % 3, i);
		assert_rc(put_str(f->s[0], p, "some value"), 0);
	}
	assert_rc(store_xattr_set(f->s[0], NULL, "/d1/f1", "user.k", "x", 1, 0), 0);
	assert_rc(store_del(f->s[0], NULL, "/d2/f2", 0), 0);
	assert_rc(store_mknod(f->s[0], NULL, "/ln", STORE_SYMLINK, "/d0/f0",
			      NULL, 0, 0), 0);
	assert_rc(store_resyncs(f->s[1]), 0);
	assert_true(install(f->s[0], f->s[1], 300) > 3);
	assert_same(f, 2);
	assert_rc(store_resyncs(f->s[1]), 1);
	assert_rc(store_resyncs(f->s[0]), 0);
	/* again: nothing changes, one more counted */
	assert_true(install(f->s[0], f->s[1], 1 << 20) == 1);
	assert_same(f, 2);
	assert_rc(store_resyncs(f->s[1]), 2);
}

/* Rule S1: what the sender deleted and purged goes; what carries
 * changes the sender never saw stays. */
static void test_snap_prune(void **state)
{
	struct fx *f = *state;
	struct store_stat st;

	assert_rc(put_str(f->s[0], "/gone", "old"), 0);
	assert_rc(put_str(f->s[0], "/d/gone", "old"), 0);
	assert_rc(put_str(f->s[0], "/kept", "k"), 0);
	converge(f, 2);
	assert_rc(store_del(f->s[0], NULL, "/gone", 0), 0);
	assert_rc(store_del(f->s[0], NULL, "/d", STORE_DEL_RECURSIVE), 0);
	assert_rc(store_sweep(f->s[0], 0), 3); /* no known peer: at once */
	assert_rc(put_str(f->s[1], "/mine", "unseen"), 0);
	assert_rc(put_str(f->s[1], "/d/mine", "unseen"), 0);
	assert_true(install(f->s[0], f->s[1], 200) >= 1);
	assert_rc(store_stat(f->s[1], NULL, "/gone", &st), -ENOENT);
	assert_rc(store_stat(f->s[1], NULL, "/d/gone", &st), -ENOENT);
	check_str(f->s[1], "/kept", "k");
	check_str(f->s[1], "/mine", "unseen");
	check_str(f->s[1], "/d/mine", "unseen");
	check_ok(f->s[1]);
	/* the other way, they agree */
	ship(f->s[1], f->s[0]);
	assert_same(f, 2);
}

static int horizon_of_cb(void *arg, uint64_t node, uint64_t seq)
{
	uint64_t *x = arg;

	if (node == x[0])
		x[1] = seq;
	return 0;
}

/* The horizon grows as the binlog is trimmed, and with what a snapshot
 * brings that the binlog never held. */
static void test_snap_horizon(void **state)
{
	struct fx *f = *state;
	struct store_opts o = { .node_name = "cap", .binlog_max = 10,
				.clock = vclock_read, .clock_arg = &f->clk[3] };
	struct store *s;
	uint64_t h[2], last = 0;
	char p[128];
	int n = 0;

	snprintf(p, sizeof(p), "%s/cap", f->dir);
	assert_rc(store_open(p, &o, &s), 0);
	h[0] = node_id(s);
	for (int i = 0; i < 40; i++) {
		struct store_stat st;

		snprintf(p, sizeof(p), "/f%02d", i);
		assert_rc(put_str(s, p, "x"), 0);
		h[1] = 0;
		assert_rc(store_horizon(s, horizon_of_cb, h), 0);
		assert_true(h[1] >= last); /* only grows */
		last = h[1];
		assert_rc(store_stat(s, NULL, p, &st), 0);
		assert_true(h[1] < st.origin_seq);
	}
	assert_true(last > 0);
	assert_rc(store_binlog_read(s, 0, 0, count_chg, &n), -ERANGE);
	/* a snapshot's records are in no binlog of the receiver's */
	h[0] = node_id(s);
	h[1] = 0;
	assert_rc(store_horizon(f->s[1], horizon_of_cb, h), 0);
	assert_int_equal(h[1], 0);
	assert_true(install(s, f->s[1], 500) > 1);
	assert_rc(store_horizon(f->s[1], horizon_of_cb, h), 0);
	assert_true(h[1] > last);
	check_ok(s);
	check_ok(f->s[1]);
	store_close(&s);
}

/* What store_snap_merge refuses, before writing anything. */
static void test_snap_refusals(void **state)
{
	struct fx *f = *state;
	struct store_opts o = { .node_name = "small", .max_value = 100,
				.clock = vclock_read, .clock_arg = &f->clk[3] };
	struct chunk c = { .n = 0 };
	struct store_snap *snap;
	struct store_txn *t;
	struct store *small;
	struct store_stat st;
	char big[200], p[128];
	unsigned char junk[16] = { 0 };
	size_t bi, fi;

	memset(big, 'b', sizeof(big));
	assert_rc(store_put(f->s[0], NULL, "/big", big, sizeof(big), NULL, 0,
			    STORE_CREATE), 0);
	f->clk[2].offset_ns = 3600 * 1000000000LL; /* an hour ahead */
	assert_rc(put_str(f->s[2], "/future", "f"), 0);

	assert_rc(store_snap_open(f->s[0], &snap), 0);
	assert_true(store_snap_next(snap, 1 << 20, chunk_cb, &c) >= 1);
	store_snap_close(&snap);
	assert_rc(store_snap_open(f->s[2], &snap), 0);
	assert_true(store_snap_next(snap, 1 << 20, chunk_cb, &c) >= 1);
	store_snap_close(&snap);
	bi = chunk_find(&c, "/big");
	fi = chunk_find(&c, "/future");

	snprintf(p, sizeof(p), "%s/small", f->dir);
	assert_rc(store_open(p, &o, &small), 0);
	assert_rc(store_txn_begin(small, 1, &t), 0);
	/* malformed: the record, the path, a reserved path */
	assert_rc(store_snap_merge(small, t, "/x", 2, junk, sizeof(junk)), -EPROTO);
	assert_rc(store_snap_merge(small, t, "x", 1, c.rec[fi], c.len[fi]), -EPROTO);
	assert_rc(store_snap_merge(small, t, "/a/../b", 7, c.rec[fi], c.len[fi]),
		  -EPROTO);
	assert_rc(store_snap_merge(small, t, "/.statefs", 9, c.rec[fi], c.len[fi]),
		  -EPROTO);
	/* over our max_value */
	assert_rc(store_snap_merge(small, t, c.path[bi], strlen(c.path[bi]),
				   c.rec[bi], c.len[bi]), -EFBIG);
	/* stamped an hour ahead of our clock: not yet */
	assert_rc(store_snap_merge(small, t, c.path[fi], strlen(c.path[fi]),
				   c.rec[fi], c.len[fi]), -EAGAIN);
	/* the transaction is still usable */
	assert_rc(store_put(small, t, "/ok", "v", 1, NULL, 0, STORE_CREATE), 0);
	assert_rc(store_txn_commit(&t), 0);
	check_str(small, "/ok", "v");
	assert_rc(store_stat(small, NULL, "/future", &st), -ENOENT);
	/* once our clock gets there, it merges */
	advance_ms(3600 * 1000);
	assert_rc(store_snap_merge(small, NULL, c.path[fi], strlen(c.path[fi]),
				   c.rec[fi], c.len[fi]), 0);
	check_str(small, "/future", "f");
	check_ok(small);
	store_close(&small);
	for (size_t i = 0; i < c.n; i++) {
		free(c.path[i]);
		free(c.rec[i]);
	}
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_sweep_many_expired),
		T(test_dir_rename),
		T(test_rmdir_vs_expiry),
		T(test_rename_vs_chmod),
		T(test_file_deleted_vs_dir_created),
		T(test_file_over_dir),
		T(test_kept_parent_fields),
		T(test_placeholder_chmod),
		T(test_fields_merge),
		T(test_touch_dir_symlink),
		T(test_xattr_concurrent_names),
		T(test_recreate_after_purge),
		T(test_clock_ahead_held),
		T(test_restore_recovers_own),
		T(test_purge_acks),
		T(test_trim_acked),
		T(test_unapplied_keeps_watermark),
		T(test_bad_input),
		T(test_vv_bound),
		T(test_deep_path),
		T(test_binlog_groups),
		T(test_counts),
		T(test_snap_fresh),
		T(test_snap_prune),
		T(test_snap_horizon),
		T(test_snap_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
