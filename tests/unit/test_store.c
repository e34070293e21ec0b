/*
 * test_store.c — unit tests of the store library against store/store.h.
 *
 * Every test runs on a fresh store in its own mkdtemp directory under
 * /dev/shm, removed afterwards whatever the outcome. The tests check the
 * header's promises exactly: return values and errnos, ordering, the
 * binlog's contents and sequence numbers, the outcome of every
 * replication case, TTL deadlines, wake-up latencies and digests.
 *
 * Randomness comes from a seeded xorshift generator, so a failure is
 * reproducible; the seed is printed by the tests that use it.
 *
 * Timing: deadlines are polled (never slept on blindly); the latency
 * bounds asserted are the ones of the brief (100 ms for a thread, 200 ms
 * for another process, 2 s to list 100,000 children).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

/* ---- helpers ---- */

static const char *err_name(long long rc)
{
	const char *n;

	if (rc >= 0)
		return "ok";
	n = strerrorname_np((int)-rc);
	return n ? n : "?";
}

/* Assert that an int-returning call gives exactly `want`, naming both. */
#define assert_rc(expr, want)                                                \
	do {                                                                 \
		long long rc_ = (long long)(expr);                           \
		long long w_ = (long long)(want);                            \
		if (rc_ != w_) {                                             \
			print_error("%s = %lld (%s), want %lld (%s)\n",     \
				    #expr, rc_, err_name(rc_), w_,           \
				    err_name(w_));                           \
			fail();                                              \
		}                                                            \
	} while (0)

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static void rng_seed(uint64_t seed)
{
	rng_state = seed ? seed : 1;
}

static uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return x;
}

static uint64_t rng_below(uint64_t n)
{
	return n ? rng() % n : 0;
}

static void rng_fill(void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (unsigned char)rng();
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Spin (yielding) until the wall clock has moved `ms` past `from_ns`, so
 * that later writes get a strictly later physical clock. */
static void wait_clock_past(int64_t from_ns, unsigned ms)
{
	while (store_now_ns() < from_ns + (int64_t)ms * 1000000)
		sleep_ms(1);
}

static int rm_one(const char *p, const struct stat *sb, int type,
		  struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	remove(p);
	return 0;
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct fx {
	char dir[64];   /* the mkdtemp directory */
	char path[96];  /* the store directory inside it */
	struct store *s;
};

static struct store *open_at(const char *path, const struct store_opts *o)
{
	struct store *s = NULL;
	int rc = store_open(path, o, &s);

	if (rc != 0) {
		print_error("store_open(%s) = %d (%s): %s\n", path, rc,
			    err_name(rc), store_last_error());
		fail();
	}
	assert_non_null(s);
	return s;
}

static int fx_setup_opts(void **state, const struct store_opts *o)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/dev/shm/test_store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/store", f->dir);
	*state = f;
	f->s = open_at(f->path, o);
	return 0;
}

static int fx_setup(void **state)
{
	return fx_setup_opts(state, NULL);
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	if (!f)
		return 0;
	store_close(&f->s);
	assert_null(f->s);
	rm_rf(f->dir);
	free(f);
	*state = NULL;
	return 0;
}

/* A second (third...) store directory inside the fixture's temp dir. */
static struct store *open_sibling(struct fx *f, const char *name,
				  const char *node)
{
	char p[160];
	struct store_opts o = { .node_name = node };

	snprintf(p, sizeof(p), "%s/%s", f->dir, name);
	return open_at(p, &o);
}

static int put_str(struct store *s, const char *path, const char *v)
{
	return store_put(s, NULL, path, v, strlen(v), NULL, 0,
			 STORE_CREATE | STORE_PARENTS);
}

static void check_value(struct store *s, const char *path, const void *want,
			 size_t want_len)
{
	void *v = NULL;
	size_t len = 12345;
	int rc = store_get(s, NULL, path, NULL, &v, &len);

	if (rc != 0) {
		print_error("store_get(%s) = %d (%s)\n", path, rc, err_name(rc));
		fail();
	}
	assert_non_null(v);
	assert_int_equal(len, want_len);
	if (want_len)
		assert_memory_equal(v, want, want_len);
	free(v);
}

static void check_str(struct store *s, const char *path, const char *want)
{
	check_value(s, path, want, strlen(want));
}

static struct store_info info_of(struct store *s)
{
	struct store_info in;

	memset(&in, 0, sizeof(in));
	assert_rc(store_info(s, &in), 0);
	return in;
}

static void digest_of(struct store *s, unsigned char d[STORE_DIGEST_LEN])
{
	assert_rc(store_digest(s, d), 0);
}

/* ---- owned copies of binlog changes ---- */

struct chg {
	struct store_change c; /* path and rec point into the copies below */
	char *path;
	void *rec;
};

struct chg_list {
	struct chg *v;
	size_t n, cap;
};

static int chg_collect(void *arg, const struct store_change *c)
{
	struct chg_list *l = arg;
	struct chg *x;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		assert_non_null(l->v);
	}
	x = &l->v[l->n++];
	x->c = *c;
	x->path = malloc(c->path_len + 1);
	x->rec = malloc(c->rec_len ? c->rec_len : 1);
	assert_non_null(x->path);
	assert_non_null(x->rec);
	memcpy(x->path, c->path, c->path_len);
	x->path[c->path_len] = '\0';
	if (c->rec_len)
		memcpy(x->rec, c->rec, c->rec_len);
	x->c.path = x->path;
	x->c.rec = x->rec;
	return 0;
}

static void chg_free(struct chg_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].path);
		free(l->v[i].rec);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Every binlog entry after `after`. */
static struct chg_list binlog_after(struct store *s, uint64_t after)
{
	struct chg_list l = { 0 };
	ssize_t n = store_binlog_read(s, after, 0, chg_collect, &l);

	if (n < 0) {
		print_error("store_binlog_read = %zd (%s)\n", n, err_name(n));
		fail();
	}
	assert_int_equal((size_t)n, l.n);
	return l;
}

/* The last binlog change of `path` whose origin is `node`. */
static const struct chg *find_chg(const struct chg_list *l, const char *path,
				  uint64_t node)
{
	size_t i;

	for (i = l->n; i-- > 0;)
		if (!strcmp(l->v[i].path, path) &&
		    l->v[i].c.origin_node == node)
			return &l->v[i];
	print_error("no change of %s from node %" PRIx64 "\n", path, node);
	fail();
	return NULL;
}

/* ---- listing helpers ---- */

struct names {
	char **v;
	size_t n, cap;
	size_t stop_after; /* 0: never stop */
};

static int names_cb(void *arg, const char *name, size_t name_len,
		    const struct store_stat *st)
{
	struct names *l = arg;

	assert_non_null(st);
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		assert_non_null(l->v);
	}
	l->v[l->n] = strndup(name, name_len);
	assert_non_null(l->v[l->n]);
	assert_int_equal(strlen(l->v[l->n]), name_len);
	l->n++;
	if (l->stop_after && l->n == l->stop_after)
		return 7;
	return 0;
}

static void names_free(struct names *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static struct names list_of(struct store *s, const char *dir,
			    const char *after)
{
	struct names l = { 0 };

	assert_rc(store_list(s, NULL, dir, after, names_cb, &l), 0);
	return l;
}

static void check_names(struct store *s, const char *dir, const char *after,
			 const char *const *want, size_t nwant)
{
	struct names l = list_of(s, dir, after);
	size_t i;

	if (l.n != nwant) {
		print_error("list %s after %s: %zu names, want %zu\n", dir,
			    after ? after : "(null)", l.n, nwant);
		for (i = 0; i < l.n; i++)
			print_error("  got '%s'\n", l.v[i]);
		fail();
	}
	for (i = 0; i < nwant; i++)
		assert_string_equal(l.v[i], want[i]);
	names_free(&l);
}

/* store_stat's result alone (st is required by the header). */
static int stat_rc(struct store *s, struct store_txn *t, const char *path)
{
	struct store_stat st;

	return store_stat(s, t, path, &st);
}

/* ==== open ==== */

static void test_open_create_reopen(void **state)
{
	struct fx *f = *state;
	struct store_info in = info_of(f->s);
	struct stat sb;

	assert_rc(stat(f->path, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_true(in.format > 0);
	assert_true(in.node_id != 0);
	assert_rc(put_str(f->s, "/a/b", "hello"), 0);
	store_close(&f->s);
	assert_null(f->s);

	f->s = open_at(f->path, NULL);
	check_str(f->s, "/a/b", "hello");
	assert_int_equal(info_of(f->s).node_id, in.node_id);
	assert_int_equal(info_of(f->s).format, in.format);
}

static void test_open_no_create(void **state)
{
	struct fx *f = *state;
	struct store *s = NULL;
	char p[160];
	struct store_opts o = { .no_create = 1 };
	struct stat sb;

	snprintf(p, sizeof(p), "%s/absent", f->dir);
	assert_true(store_open(p, &o, &s) < 0);
	assert_null(s);
	assert_rc(stat(p, &sb), -1);
	o.no_create = 0;
	o.readonly = 1;
	assert_true(store_open(p, &o, &s) < 0);
	assert_null(s);
	assert_rc(stat(p, &sb), -1);
}

/* Read a whole file (malloc'd); NULL if it cannot be read. */
static unsigned char *slurp(const char *path, size_t *lenp)
{
	struct stat sb;
	unsigned char *buf;
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return NULL;
	}
	buf = malloc(sb.st_size ? (size_t)sb.st_size : 1);
	assert_non_null(buf);
	n = pread(fd, buf, (size_t)sb.st_size, 0);
	close(fd);
	assert_int_equal(n, sb.st_size);
	*lenp = (size_t)sb.st_size;
	return buf;
}

static void spew(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_rc(close(fd), 0);
}

/* store_open of `dir` must fail, name `file` in its message and leave
 * `file` byte for byte as it was. Returns the error. */
static int expect_refused(const char *dir, const char *file)
{
	struct store *s = NULL;
	unsigned char *before, *after;
	size_t blen, alen;
	int rc;

	before = slurp(file, &blen);
	assert_non_null(before);
	rc = store_open(dir, NULL, &s);
	print_message("refused with %d (%s): %s\n", rc, err_name(rc),
		      store_last_error());
	assert_true(rc < 0);
	assert_null(s);
	if (!strstr(store_last_error(), file)) {
		print_error("message '%s' does not name %s\n",
			    store_last_error(), file);
		fail();
	}
	{
		struct stat sb;

		assert_rc(stat(file, &sb), 0);
		if ((size_t)sb.st_size != blen) {
			print_error("%s was %zu bytes, now %lld: rewritten\n",
				    file, blen, (long long)sb.st_size);
			free(before);
			fail();
		}
	}
	after = slurp(file, &alen);
	assert_non_null(after);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	free(before);
	free(after);
	return rc;
}

static void test_open_garbage(void **state)
{
	struct fx *f = *state;
	char file[160], dir2[128], file2[160];
	unsigned char junk[65536];

	rng_seed(0x5eed0010);
	store_close(&f->s);
	/* garbage over the data file of a real store */
	snprintf(file, sizeof(file), "%s/store.mdb", f->path);
	rng_fill(junk, sizeof(junk));
	spew(file, junk, sizeof(junk));
	expect_refused(f->path, file);
	/* a directory holding only a short garbage data file */
	snprintf(dir2, sizeof(dir2), "%s/other", f->dir);
	assert_rc(mkdir(dir2, 0755), 0);
	snprintf(file2, sizeof(file2), "%s/store.mdb", dir2);
	spew(file2, "this is not a store\n", 20);
	expect_refused(dir2, file2);
	/* f->s stays NULL: teardown copes */
}

static void test_open_foreign_lmdb(void **state)
{
	struct fx *f = *state;
	char dir2[128], file[160];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { 3, (void *)"foo" }, v = { 3, (void *)"bar" };

	snprintf(dir2, sizeof(dir2), "%s/foreign", f->dir);
	assert_rc(mkdir(dir2, 0755), 0);
	snprintf(file, sizeof(file), "%s/store.mdb", dir2);
	assert_rc(mdb_env_create(&env), 0);
	assert_rc(mdb_env_open(env, file, MDB_NOSUBDIR, 0644), 0);
	assert_rc(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_rc(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
	assert_rc(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_rc(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	expect_refused(dir2, file);
}

static void test_open_newer_format(void **state)
{
	struct fx *f = *state;
	char file[160];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { 7, (void *)"statefs" }, v;
	unsigned char *m;
	uint32_t fmt;
	unsigned format = info_of(f->s).format;

	assert_rc(put_str(f->s, "/kept", "k"), 0);
	store_close(&f->s);
	/* bump the format number with raw LMDB (store.c: main DB, key
	 * "statefs", struct meta starting with a u32 format) */
	snprintf(file, sizeof(file), "%s/store.mdb", f->path);
	assert_rc(mdb_env_create(&env), 0);
	assert_rc(mdb_env_set_maxdbs(env, 8), 0);
	assert_rc(mdb_env_open(env, file, MDB_NOSUBDIR, 0644), 0);
	assert_rc(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_rc(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
	assert_rc(mdb_get(txn, dbi, &k, &v), 0);
	m = malloc(v.mv_size);
	assert_non_null(m);
	memcpy(m, v.mv_data, v.mv_size);
	memcpy(&fmt, m, sizeof(fmt));
	assert_int_equal(fmt, format);
	fmt++;
	memcpy(m, &fmt, sizeof(fmt));
	v.mv_data = m;
	assert_rc(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_rc(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	free(m);
	assert_rc(expect_refused(f->path, file), -EPROTO);
}

/* ==== clock ==== */

static void test_clock_grows(void **state)
{
	struct fx *f = *state;
	struct store_info in = info_of(f->s);
	struct store_stat st;
	uint64_t prev = 0;
	unsigned same_ms = 0;
	char path[32];
	int i;

	for (i = 0; i < 3000; i++) {
		snprintf(path, sizeof(path), "/c%d", i % 7);
		assert_rc(put_str(f->s, path, "v"), 0);
		assert_rc(store_stat(f->s, NULL, path, &st), 0);
		if (st.version.hlc <= prev) {
			print_error("write %d: hlc %" PRIx64 " after %" PRIx64
				    "\n", i, st.version.hlc, prev);
			fail();
		}
		if (prev && (st.version.hlc >> 16) == (prev >> 16))
			same_ms++;
		assert_int_equal(st.version.node, in.node_id);
		prev = st.version.hlc;
	}
	print_message("clock: %u of 3000 writes in the same millisecond as "
		      "the previous one\n", same_ms);
	/* the hlc's physical part is wall-clock milliseconds */
	assert_in_range(prev >> 16, (uint64_t)store_now_ns() / 1000000 - 60000,
			(uint64_t)store_now_ns() / 1000000 + 1000);
}

/* ==== encoding ==== */

/* A pool of real encoded records from a store's binlog. */
static struct chg_list record_pool(struct fx *f)
{
	char path[64];
	unsigned char val[400];
	struct store_attr a = { 0 };
	size_t len;
	int i;

	for (i = 0; i < 60; i++) {
		snprintf(path, sizeof(path), "/pool/d%d/f%d", i % 5, i);
		len = rng_below(sizeof(val));
		rng_fill(val, len);
		a.mode = (uint32_t)rng_below(01000);
		a.ttl_ms = rng_below(3) ? 0 : 100000 + rng_below(100000);
		assert_rc(store_put(f->s, NULL, path, val, len, &a,
				    STORE_ATTR_MODE |
					    (a.ttl_ms ? STORE_ATTR_TTL : 0),
				    STORE_CREATE | STORE_PARENTS), 0);
		if (i % 4 == 0)
			assert_rc(store_xattr_set(f->s, NULL, path, "user.x",
						  val, len % 50, 0), 0);
		if (i % 7 == 0)
			assert_rc(store_del(f->s, NULL, path, 0), 0);
	}
	assert_rc(store_mknod(f->s, NULL, "/pool/ln", STORE_SYMLINK,
			      "/target/x", NULL, 0, 0), 0);
	return binlog_after(f->s, 0);
}

static void random_path(char *buf, size_t size)
{
	size_t n = 0, ncomp = 1 + rng_below(5), i, j, clen;

	for (i = 0; i < ncomp; i++) {
		clen = 1 + rng_below(20);
		if (n + 1 + clen + 1 > size)
			break;
		buf[n++] = '/';
		for (j = 0; j < clen; j++) {
			unsigned char c;

			do
				c = (unsigned char)rng();
			while (c == '/' || c == 0 || c == '.');
			buf[n++] = (char)c;
		}
	}
	buf[n] = '\0';
}

static void test_change_roundtrip(void **state)
{
	struct fx *f = *state;
	struct chg_list pool;
	struct store_change c, d;
	char path[160];
	void *buf, *buf2;
	size_t len, len2;
	int i;

	rng_seed(0x5eed0001);
	pool = record_pool(f);
	assert_true(pool.n >= 60);
	for (i = 0; i < 2000; i++) {
		const struct chg *r = &pool.v[rng_below(pool.n)];

		random_path(path, sizeof(path));
		memset(&c, 0, sizeof(c));
		c.seq = rng();
		c.origin_node = rng();
		c.origin_seq = rng() >> rng_below(64);
		c.writer = (uint32_t)rng();
		c.flags = rng_below(2) ? STORE_CHANGE_MORE : 0;
		c.path = path;
		c.path_len = strlen(path);
		c.rec = r->rec;
		c.rec_len = r->c.rec_len;
		assert_rc(store_change_encode(&c, &buf, &len), 0);
		assert_non_null(buf);
		memset(&d, 0xa5, sizeof(d));
		assert_rc(store_change_decode(buf, len, &d), 0);
		assert_int_equal(d.origin_node, c.origin_node);
		assert_int_equal(d.origin_seq, c.origin_seq);
		assert_int_equal(d.flags, c.flags);
		assert_int_equal(d.path_len, c.path_len);
		assert_memory_equal(d.path, c.path, c.path_len);
		assert_int_equal(d.rec_len, c.rec_len);
		assert_memory_equal(d.rec, c.rec, c.rec_len);
		/* the decoded change points into buf */
		assert_true((const char *)d.path >= (const char *)buf &&
			    (const char *)d.path + d.path_len <=
				    (const char *)buf + len);
		assert_rc(store_change_encode(&d, &buf2, &len2), 0);
		assert_int_equal(len2, len);
		assert_memory_equal(buf2, buf, len);
		free(buf2);
		free(buf);
	}
	chg_free(&pool);
}

static void test_change_truncated(void **state)
{
	struct fx *f = *state;
	struct chg_list pool;
	struct store_change d;
	void *buf;
	size_t len, k, i;

	rng_seed(0x5eed0002);
	pool = record_pool(f);
	for (i = 0; i < pool.n; i += 3) {
		assert_rc(store_change_encode(&pool.v[i].c, &buf, &len), 0);
		for (k = 0; k < len; k++) {
			/* an exact-size copy, so a read past it is caught by
			 * the sanitizer */
			void *p = malloc(k ? k : 1);

			assert_non_null(p);
			memcpy(p, buf, k);
			assert_rc(store_change_decode(p, k, &d), -EPROTO);
			free(p);
		}
		free(buf);
	}
	chg_free(&pool);
}

static void test_change_garbage(void **state)
{
	struct fx *f = *state;
	struct chg_list pool;
	struct store_change d;
	void *valid, *re;
	size_t vlen, relen, len, j;
	unsigned accepted = 0, i;
	int rc;

	rng_seed(0x5eed0003);
	pool = record_pool(f);
	for (i = 0; i < 10000; i++) {
		unsigned char *p;

		if (i % 2) {
			/* pure garbage */
			len = rng_below(300);
			p = malloc(len ? len : 1);
			assert_non_null(p);
			rng_fill(p, len);
		} else {
			/* a valid encoding with a few bytes changed, or cut
			 * and extended */
			assert_rc(store_change_encode(
					  &pool.v[rng_below(pool.n)].c, &valid,
					  &vlen),
				  0);
			len = vlen;
			if (rng_below(4) == 0)
				len = rng_below(vlen + 16);
			p = malloc(len ? len : 1);
			assert_non_null(p);
			memcpy(p, valid, len < vlen ? len : vlen);
			if (len > vlen)
				rng_fill(p + vlen, len - vlen);
			for (j = 1 + rng_below(4); j > 0 && len; j--)
				p[rng_below(len)] = (unsigned char)rng();
			free(valid);
		}
		rc = store_change_decode(p, len, &d);
		if (rc == 0) {
			accepted++;
			assert_rc(store_change_encode(&d, &re, &relen), 0);
			if (relen != len || memcmp(re, p, len)) {
				size_t at = 0;

				while (at < len && at < relen &&
				       ((unsigned char *)re)[at] == p[at])
					at++;
				print_error("iteration %u: accepted %zu bytes, "
					    "re-encoded as %zu bytes differing "
					    "from offset %zu (0x%02x -> "
					    "0x%02x)\n", i, len, relen, at,
					    at < len ? p[at] : 0,
					    at < relen ?
						    ((unsigned char *)re)[at] :
						    0);
				fail();
			}
			free(re);
		} else {
			assert_rc(rc, -EPROTO);
		}
		free(p);
	}
	print_message("change fuzz: %u of 10000 inputs accepted (all "
		      "re-encoded identically)\n", accepted);
	chg_free(&pool);
}

static void test_rec_decode(void **state)
{
	struct fx *f = *state;
	struct chg_list pool;
	struct store_stat st;
	const void *val, *vv, *xa;
	unsigned char g[512];
	size_t i, k;
	int rc;

	rng_seed(0x5eed0004);
	pool = record_pool(f);
	/* every record of the binlog decodes, and its value is where it
	 * says it is */
	for (i = 0; i < pool.n; i++) {
		const struct chg *c = &pool.v[i];

		memset(&st, 0, sizeof(st));
		assert_rc(store_rec_decode(c->rec, c->c.rec_len, &st, &val, &vv,
					   &xa), 0);
		assert_true(st.type >= STORE_FILE && st.type <= STORE_TOMBSTONE);
		if (st.type == STORE_FILE && st.size) {
			assert_non_null(val);
			assert_true((const char *)val >= (const char *)c->rec);
			assert_true((const char *)val + st.size <=
				    (const char *)c->rec + c->c.rec_len);
		}
		assert_true(st.nvv >= 1);
		/* truncations: format 3 does not store the value's length
		 * (the value is the rest of the record, whose length the
		 * framing gives), so a cut inside the value is a record with
		 * a shorter value at the same place; any other cut is
		 * -EPROTO */
		size_t head = c->c.rec_len - st.size;
		size_t off = st.size ? (size_t)((const char *)val -
						(const char *)c->rec) : head;

		assert_int_equal(off, head);
		for (k = 0; k < c->c.rec_len; k++) {
			void *p = malloc(k ? k : 1);
			struct store_stat cut;
			const void *cval;

			assert_non_null(p);
			memcpy(p, c->rec, k);
			rc = store_rec_decode(p, k, &cut, &cval, &vv, &xa);
			/* (a symlink's target is never empty) */
			if ((st.type == STORE_FILE && k >= head) ||
			    (st.type == STORE_SYMLINK && k > head)) {
				assert_rc(rc, 0);
				assert_int_equal(cut.size, k - head);
				assert_ptr_equal(cval, (const char *)p + head);
			} else if (rc != -EPROTO) {
				print_error("rec of %s (%zu bytes) cut to %zu: "
					    "%d (%s), want -EPROTO\n", c->path,
					    c->c.rec_len, k, rc, err_name(rc));
				fail();
			}
			free(p);
		}
	}
	/* garbage */
	assert_rc(store_rec_decode(g, 0, &st, NULL, NULL, NULL), -EPROTO);
	memset(g, 0xff, sizeof(g));
	assert_rc(store_rec_decode(g, sizeof(g), &st, NULL, NULL, NULL),
		  -EPROTO);
	for (i = 0; i < 10000; i++) {
		size_t len = rng_below(sizeof(g));
		unsigned char *p = malloc(len ? len : 1);

		assert_non_null(p);
		rng_fill(p, len);
		rc = store_rec_decode(p, len, &st, &val, &vv, &xa);
		if (rc == 0) {
			/* accepted: then what it says must lie inside */
			if (st.type == STORE_FILE && st.size)
				assert_true((const char *)val + st.size <=
					    (const char *)p + len);
		} else {
			assert_rc(rc, -EPROTO);
		}
		free(p);
	}
	chg_free(&pool);
}

/* ==== operations and errors ==== */

static void test_put_get(void **state)
{
	struct fx *f = *state;
	unsigned char bin[256];
	struct store_stat st;
	void *v = NULL;
	size_t len = 99, i;

	/* empty value: a non-NULL buffer of length 0 */
	assert_rc(put_str(f->s, "/empty", ""), 0);
	assert_rc(store_get(f->s, NULL, "/empty", &st, &v, &len), 0);
	assert_non_null(v);
	assert_int_equal(len, 0);
	assert_int_equal(st.size, 0);
	assert_int_equal(st.type, STORE_FILE);
	assert_true(S_ISREG(st.mode));
	free(v);

	for (i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(255 - i);
	assert_rc(store_put(f->s, NULL, "/bin", bin, sizeof(bin), NULL, 0,
			    STORE_CREATE), 0);
	check_value(f->s, "/bin", bin, sizeof(bin));
	assert_rc(store_stat(f->s, NULL, "/bin", &st), 0);
	assert_int_equal(st.size, sizeof(bin));

	/* store_read: window, past the end */
	{
		unsigned char b[16];

		assert_rc(store_read(f->s, NULL, "/bin", 250, b, sizeof(b)), 6);
		assert_memory_equal(b, bin + 250, 6);
		assert_rc(store_read(f->s, NULL, "/bin", 256, b, sizeof(b)), 0);
		assert_rc(store_read(f->s, NULL, "/bin", 1000, b, sizeof(b)), 0);
	}

	/* replace */
	assert_rc(put_str(f->s, "/bin", "short"), 0);
	check_str(f->s, "/bin", "short");

	/* without CREATE: only existing */
	assert_rc(store_put(f->s, NULL, "/nocreate", "x", 1, NULL, 0, 0),
		  -ENOENT);
	assert_rc(store_put(f->s, NULL, "/bin", "y", 1, NULL, 0, 0), 0);
	check_str(f->s, "/bin", "y");
}

static void test_efbig(void **state)
{
	struct fx *f = *state;
	struct store_opts o = { .max_value = 4096 };
	unsigned char *big = calloc(1, 4097);

	assert_non_null(big);
	store_close(&f->s);
	f->s = open_at(f->path, &o);
	assert_int_equal(info_of(f->s).max_value, 4096);
	memset(big, 'z', 4097);
	assert_rc(store_put(f->s, NULL, "/max", big, 4096, NULL, 0,
			    STORE_CREATE), 0);
	check_value(f->s, "/max", big, 4096);
	assert_rc(store_put(f->s, NULL, "/over", big, 4097, NULL, 0,
			    STORE_CREATE), -EFBIG);
	assert_rc(stat_rc(f->s, NULL, "/over"), -ENOENT);
	/* extending past it with truncate too */
	{
		struct store_attr a = { .size = 4097 };

		assert_rc(store_setattr(f->s, NULL, "/max", &a,
					STORE_ATTR_SIZE), -EFBIG);
		check_value(f->s, "/max", big, 4096);
	}
	free(big);
}

static void test_name_too_long(void **state)
{
	struct fx *f = *state;
	char p[1024];
	struct store_stat st;
	size_t n;
	int i;

	p[0] = '/';
	memset(p + 1, 'n', 256);
	p[257] = '\0';
	assert_rc(store_path_check(f->s, p), -ENAMETOOLONG);
	assert_rc(put_str(f->s, p, "x"), -ENAMETOOLONG);
	p[256] = '\0'; /* 255 bytes */
	assert_rc(store_path_check(f->s, p), 0);
	assert_rc(put_str(f->s, p, "x"), 0);
	check_str(f->s, p, "x");

	/* many 100-byte components: 4 fit (404 bytes), 6 (606) do not */
	n = 0;
	for (i = 0; i < 6; i++) {
		p[n++] = '/';
		memset(p + n, 'a' + i, 100);
		n += 100;
	}
	p[n] = '\0';
	assert_rc(store_path_check(f->s, p), -ENAMETOOLONG);
	assert_rc(put_str(f->s, p, "deep"), -ENAMETOOLONG);
	assert_rc(store_mknod(f->s, NULL, p, STORE_DIR, NULL, NULL, 0,
			      STORE_PARENTS), -ENAMETOOLONG);
	/* nothing half-created */
	p[101] = '\0';
	assert_rc(store_stat(f->s, NULL, p, &st), -ENOENT);
	p[101] = '/';
	p[404] = '\0';
	assert_rc(put_str(f->s, p, "fits"), 0);
	check_str(f->s, p, "fits");
}

static void test_non_canonical(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = { "a", "/a/", "//a", "/a/./b",
					   "/a/../b", "", "/a//b", "/.",
					   "/..", "a/b" };
	size_t i;

	assert_rc(put_str(f->s, "/a/b", "v"), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (store_path_check(f->s, bad[i]) != -EINVAL) {
			print_error("path_check('%s') != -EINVAL\n", bad[i]);
			fail();
		}
		assert_rc(put_str(f->s, bad[i], "x"), -EINVAL);
		assert_rc(stat_rc(f->s, NULL, bad[i]), -EINVAL);
	}
	assert_rc(store_path_check(f->s, "/"), 0);
	assert_rc(store_path_check(f->s, "/a"), 0);
	assert_rc(store_path_check(f->s, "/a/b.c/..d/.e"), 0);
}

static void test_errnos(void **state)
{
	struct fx *f = *state;
	struct store_stat st;
	void *v = NULL;
	size_t len;

	/* ENOENT */
	assert_rc(store_put(f->s, NULL, "/x/y", "v", 1, NULL, 0, STORE_CREATE),
		  -ENOENT);
	assert_rc(store_mknod(f->s, NULL, "/x/y", STORE_FILE, NULL, NULL, 0,
			      0), -ENOENT);
	assert_rc(store_get(f->s, NULL, "/missing", NULL, &v, &len), -ENOENT);
	assert_rc(store_stat(f->s, NULL, "/missing", &st), -ENOENT);
	assert_rc(store_del(f->s, NULL, "/missing", 0), -ENOENT);
	assert_rc(store_list(f->s, NULL, "/missing", NULL, names_cb,
			     &(struct names){ 0 }), -ENOENT);

	/* EEXIST */
	assert_rc(store_mknod(f->s, NULL, "/f", STORE_FILE, NULL, NULL, 0, 0),
		  0);
	assert_rc(store_mknod(f->s, NULL, "/f", STORE_FILE, NULL, NULL, 0, 0),
		  -EEXIST);
	assert_rc(store_mknod(f->s, NULL, "/f", STORE_DIR, NULL, NULL, 0,
			      STORE_PARENTS), -EEXIST);
	assert_rc(store_put(f->s, NULL, "/f", "v", 1, NULL, 0,
			    STORE_CREATE | STORE_EXCL), -EEXIST);
	check_str(f->s, "/f", "");

	/* ENOTDIR */
	assert_rc(store_put(f->s, NULL, "/f/x", "v", 1, NULL, 0, STORE_CREATE),
		  -ENOTDIR);
	assert_rc(store_put(f->s, NULL, "/f/x/y", "v", 1, NULL, 0,
			    STORE_CREATE | STORE_PARENTS), -ENOTDIR);
	assert_rc(store_del(f->s, NULL, "/f", STORE_DEL_DIR), -ENOTDIR);
	assert_rc(store_list(f->s, NULL, "/f", NULL, names_cb,
			     &(struct names){ 0 }), -ENOTDIR);

	/* EISDIR */
	assert_rc(store_mknod(f->s, NULL, "/d", STORE_DIR, NULL, NULL, 0, 0),
		  0);
	assert_rc(store_get(f->s, NULL, "/d", NULL, &v, &len), -EISDIR);
	assert_rc(store_del(f->s, NULL, "/d", STORE_DEL_FILE), -EISDIR);
	assert_rc(put_str(f->s, "/d", "v"), -EISDIR);
	assert_rc(store_stat(f->s, NULL, "/d", &st), 0);
	assert_int_equal(st.type, STORE_DIR);
	assert_true(S_ISDIR(st.mode));

	/* ENOTEMPTY */
	assert_rc(put_str(f->s, "/d/child", "c"), 0);
	assert_rc(store_del(f->s, NULL, "/d", STORE_DEL_DIR), -ENOTEMPTY);
	assert_rc(store_del(f->s, NULL, "/d", 0), -ENOTEMPTY);
	check_str(f->s, "/d/child", "c");

	/* deletes that work */
	assert_rc(store_del(f->s, NULL, "/f", STORE_DEL_FILE), 0);
	assert_rc(store_stat(f->s, NULL, "/f", &st), -ENOENT);
	assert_rc(store_del(f->s, NULL, "/d/child", 0), 0);
	assert_rc(store_del(f->s, NULL, "/d", STORE_DEL_DIR), 0);
	assert_rc(store_stat(f->s, NULL, "/d", &st), -ENOENT);
	/* a deleted name can be created again */
	assert_rc(store_mknod(f->s, NULL, "/d", STORE_FILE, NULL, NULL, 0, 0),
		  0);
	/* recursive */
	assert_rc(put_str(f->s, "/r/a/b/c", "1"), 0);
	assert_rc(put_str(f->s, "/r/a/x", "2"), 0);
	assert_rc(store_del(f->s, NULL, "/r", STORE_DEL_RECURSIVE), 0);
	assert_rc(store_stat(f->s, NULL, "/r", &st), -ENOENT);
	assert_rc(store_stat(f->s, NULL, "/r/a/b/c", &st), -ENOENT);
	assert_rc(store_stat(f->s, NULL, "/r/a/x", &st), -ENOENT);
	/* the root cannot go */
	assert_true(store_del(f->s, NULL, "/", STORE_DEL_DIR) < 0);
}

static void test_symlink(void **state)
{
	struct fx *f = *state;
	struct store_stat st;

	assert_rc(store_mknod(f->s, NULL, "/ln", STORE_SYMLINK, "../some/where",
			      NULL, 0, 0), 0);
	assert_rc(store_stat(f->s, NULL, "/ln", &st), 0);
	assert_int_equal(st.type, STORE_SYMLINK);
	assert_true(S_ISLNK(st.mode));
	check_str(f->s, "/ln", "../some/where");
}

/* An empty directory renamed: no descendants to sort (UBSan reported
 * qsort(NULL, 0) here), and the new name lists empty. */
static void test_rename_empty_dir(void **state)
{
	struct fx *f = *state;
	struct store_stat st;

	assert_rc(store_mknod(f->s, NULL, "/e", STORE_DIR, NULL, NULL, 0, 0), 0);
	assert_rc(store_rename(f->s, NULL, "/e", "/f", 0), 0);
	assert_rc(store_stat(f->s, NULL, "/e", &st), -ENOENT);
	assert_rc(store_stat(f->s, NULL, "/f", &st), 0);
	assert_int_equal(st.type, STORE_DIR);
}

static void test_rename(void **state)
{
	struct fx *f = *state;
	struct store_stat st;

	/* file over file */
	assert_rc(put_str(f->s, "/src", "new"), 0);
	assert_rc(put_str(f->s, "/dst", "old"), 0);
	assert_rc(store_rename(f->s, NULL, "/src", "/dst", 0), 0);
	check_str(f->s, "/dst", "new");
	assert_rc(store_stat(f->s, NULL, "/src", &st), -ENOENT);

	/* NOREPLACE */
	assert_rc(put_str(f->s, "/src", "again"), 0);
	assert_rc(store_rename(f->s, NULL, "/src", "/dst",
			       STORE_RENAME_NOREPLACE), -EEXIST);
	check_str(f->s, "/src", "again");
	check_str(f->s, "/dst", "new");
	assert_rc(store_rename(f->s, NULL, "/src", "/fresh",
			       STORE_RENAME_NOREPLACE), 0);
	check_str(f->s, "/fresh", "again");

	/* a whole directory with nested children */
	assert_rc(put_str(f->s, "/tree/a/b/c", "c"), 0);
	assert_rc(put_str(f->s, "/tree/a/x", "x"), 0);
	assert_rc(put_str(f->s, "/tree/top", "t"), 0);
	assert_rc(store_mknod(f->s, NULL, "/tree/emptydir", STORE_DIR, NULL,
			      NULL, 0, 0), 0);
	/* a sibling sharing the prefix must stay */
	assert_rc(put_str(f->s, "/tree2", "sibling"), 0);
	assert_rc(put_str(f->s, "/treex/y", "sibling2"), 0);
	assert_rc(store_rename(f->s, NULL, "/tree", "/moved/here", 0), -ENOENT);
	assert_rc(store_mknod(f->s, NULL, "/moved", STORE_DIR, NULL, NULL, 0,
			      0), 0);
	assert_rc(store_rename(f->s, NULL, "/tree", "/moved/here", 0), 0);
	check_str(f->s, "/moved/here/a/b/c", "c");
	check_str(f->s, "/moved/here/a/x", "x");
	check_str(f->s, "/moved/here/top", "t");
	assert_rc(store_stat(f->s, NULL, "/moved/here/emptydir", &st), 0);
	assert_int_equal(st.type, STORE_DIR);
	assert_rc(store_stat(f->s, NULL, "/tree", &st), -ENOENT);
	assert_rc(store_stat(f->s, NULL, "/tree/a", &st), -ENOENT);
	assert_rc(store_stat(f->s, NULL, "/tree/a/b/c", &st), -ENOENT);
	assert_rc(store_stat(f->s, NULL, "/tree/top", &st), -ENOENT);
	check_str(f->s, "/tree2", "sibling");
	check_str(f->s, "/treex/y", "sibling2");
	{
		static const char *const want[] = { "a", "emptydir", "top" };

		check_names(f->s, "/moved/here", NULL, want, 3);
	}

	/* into itself */
	assert_rc(store_rename(f->s, NULL, "/moved", "/moved/here/a/in", 0),
		  -EINVAL);
	assert_rc(store_rename(f->s, NULL, "/moved/here", "/moved/here/z", 0),
		  -EINVAL);
	check_str(f->s, "/moved/here/a/x", "x");

	/* a directory over a non-empty / an empty directory */
	assert_rc(put_str(f->s, "/full/f", "f"), 0);
	assert_rc(store_mknod(f->s, NULL, "/empty", STORE_DIR, NULL, NULL, 0,
			      0), 0);
	assert_rc(store_rename(f->s, NULL, "/moved", "/full", 0), -ENOTEMPTY);
	check_str(f->s, "/full/f", "f");
	check_str(f->s, "/moved/here/top", "t");
	assert_rc(store_rename(f->s, NULL, "/moved", "/empty", 0), 0);
	check_str(f->s, "/empty/here/top", "t");
	assert_rc(store_stat(f->s, NULL, "/moved", &st), -ENOENT);

	/* mixed kinds */
	assert_rc(store_rename(f->s, NULL, "/dst", "/full", 0), -EISDIR);
	assert_rc(store_rename(f->s, NULL, "/full", "/dst", 0), -ENOTDIR);
	/* missing source */
	assert_rc(store_rename(f->s, NULL, "/nope", "/x", 0), -ENOENT);
}

static void test_mkdir_p(void **state)
{
	struct fx *f = *state;
	struct store_stat st;

	assert_rc(store_mknod(f->s, NULL, "/p/q/r", STORE_DIR, NULL, NULL, 0,
			      0), -ENOENT);
	assert_rc(store_mknod(f->s, NULL, "/p/q/r", STORE_DIR, NULL, NULL, 0,
			      STORE_PARENTS), 0);
	assert_rc(store_stat(f->s, NULL, "/p", &st), 0);
	assert_int_equal(st.type, STORE_DIR);
	assert_rc(store_stat(f->s, NULL, "/p/q", &st), 0);
	assert_int_equal(st.type, STORE_DIR);
	assert_rc(store_stat(f->s, NULL, "/p/q/r", &st), 0);
	assert_int_equal(st.type, STORE_DIR);
	/* again: like mkdir -p, no error */
	assert_rc(store_mknod(f->s, NULL, "/p/q/r", STORE_DIR, NULL, NULL, 0,
			      STORE_PARENTS), 0);
	assert_rc(store_mknod(f->s, NULL, "/p/q", STORE_DIR, NULL, NULL, 0,
			      STORE_PARENTS), 0);
	/* without it: EEXIST */
	assert_rc(store_mknod(f->s, NULL, "/p/q/r", STORE_DIR, NULL, NULL, 0,
			      0), -EEXIST);
	/* put with parents */
	assert_rc(put_str(f->s, "/p/q/s/t/u", "deep"), 0);
	assert_rc(store_stat(f->s, NULL, "/p/q/s/t", &st), 0);
	assert_int_equal(st.type, STORE_DIR);
	check_str(f->s, "/p/q/s/t/u", "deep");
}

static void test_list(void **state)
{
	struct fx *f = *state;
	static const char *const all[] = { "B", "a", "a0", "ab", "b",
					   "c1", "c3", "c5", "\xff" };
	char p[64];
	size_t i;
	struct names l = { 0 };

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		/* inserted in reverse order */
		snprintf(p, sizeof(p), "/l/%s", all[8 - i]);
		assert_rc(put_str(f->s, p, "v"), 0);
	}
	/* grandchildren and a prefix-sharing sibling are not listed */
	assert_rc(put_str(f->s, "/l/a/sub/deeper", "g"), -ENOTDIR);
	assert_rc(store_mknod(f->s, NULL, "/l/dir", STORE_DIR, NULL, NULL, 0,
			      0), 0);
	assert_rc(put_str(f->s, "/l/dir/grand", "g"), 0);
	assert_rc(put_str(f->s, "/l/dir/sub/greatgrand", "g"), 0);
	assert_rc(put_str(f->s, "/l2/x", "g"), 0);
	assert_rc(put_str(f->s, "/l-/x", "g"), 0);
	{
		static const char *const want[] = { "B", "a", "a0", "ab", "b",
						    "c1", "c3", "c5", "dir",
						    "\xff" };

		check_names(f->s, "/l", NULL, want, 10);
		check_names(f->s, "/l", "c3", want + 7, 3);
		/* `after` need not exist */
		check_names(f->s, "/l", "c35", want + 7, 3);
		check_names(f->s, "/l", "", want, 10);
		check_names(f->s, "/l", "\xff", NULL, 0);
	}
	{
		static const char *const want[] = { "grand", "sub" };

		check_names(f->s, "/l/dir", NULL, want, 2);
	}
	/* stop and resume */
	l.stop_after = 4;
	assert_rc(store_list(f->s, NULL, "/l", NULL, names_cb, &l), 7);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.v[3], "ab");
	l.stop_after = 0;
	assert_rc(store_list(f->s, NULL, "/l", l.v[3], names_cb, &l), 0);
	assert_int_equal(l.n, 10);
	assert_string_equal(l.v[4], "b");
	assert_string_equal(l.v[9], "\xff");
	names_free(&l);
	/* deleted children are gone from the listing */
	assert_rc(store_del(f->s, NULL, "/l/c3", 0), 0);
	{
		static const char *const want[] = { "c1", "c5", "dir", "\xff" };

		check_names(f->s, "/l", "b", want, 4);
	}
	/* the root lists its children */
	{
		static const char *const want[] = { "l", "l-", "l2" };

		check_names(f->s, "/", NULL, want, 3);
	}
	/* an empty directory */
	assert_rc(store_mknod(f->s, NULL, "/e", STORE_DIR, NULL, NULL, 0, 0),
		  0);
	check_names(f->s, "/e", NULL, NULL, 0);
}

static void test_list_100k(void **state)
{
	struct fx *f = *state;
	struct store_txn *t;
	struct names l = { 0 };
	char p[64];
	int64_t t0;
	double secs;
	unsigned i, b;

	assert_rc(store_mknod(f->s, NULL, "/big", STORE_DIR, NULL, NULL, 0, 0),
		  0);
	for (b = 0; b < 10; b++) {
		assert_rc(store_txn_begin(f->s, 1, &t), 0);
		for (i = b * 10000; i < (b + 1) * 10000; i++) {
			snprintf(p, sizeof(p), "/big/%06u", i);
			assert_rc(store_put(f->s, t, p, "x", 1, NULL, 0,
					    STORE_CREATE), 0);
		}
		assert_rc(store_txn_commit(&t), 0);
		assert_null(t);
	}
	assert_rc(put_str(f->s, "/big/000005/no", "x"), -ENOTDIR);
	assert_rc(put_str(f->s, "/bigger/x", "x"), 0);
	t0 = mono_ns();
	assert_rc(store_list(f->s, NULL, "/big", NULL, names_cb, &l), 0);
	secs = (double)(mono_ns() - t0) / 1e9;
	print_message("list of 100000 children: %.3f s\n", secs);
	assert_int_equal(l.n, 100000);
	for (i = 0; i < l.n; i++) {
		snprintf(p, sizeof(p), "%06u", i);
		assert_string_equal(l.v[i], p);
	}
	names_free(&l);
	assert_true(secs < 2.0);
}

static void test_list_deep(void **state)
{
	struct fx *f = *state;
	char p[512];
	size_t n = 0;
	int d;

	/* depth 100: /d0/d1/.../d99 with a file at every level */
	for (d = 0; d < 100; d++) {
		n += (size_t)snprintf(p + n, sizeof(p) - n, "/%c%d",
				      'd', d % 10);
		assert_rc(store_mknod(f->s, NULL, p, STORE_DIR, NULL, NULL, 0,
				      0), 0);
		assert_true(n + 3 < sizeof(p));
		memcpy(p + n, "/f", 3); /* bounded: checked above */
		assert_rc(put_str(f->s, p, "v"), 0);
		p[n] = '\0';
	}
	/* list every level from the bottom up */
	for (d = 99; d >= 0; d--) {
		char want_dir[4];
		const char *want[2];
		char *slash = strrchr(p, '/');

		assert_non_null(slash);
		snprintf(want_dir, sizeof(want_dir), "d%d", (d + 1) % 10);
		want[0] = want_dir;
		want[1] = "f";
		if (d == 99)
			check_names(f->s, p, NULL, want + 1, 1);
		else
			check_names(f->s, p, NULL, want, 2);
		*slash = '\0';
	}
}

static void test_setattr(void **state)
{
	struct fx *f = *state;
	struct store_stat st, st2;
	struct store_attr a = { 0 };

	assert_rc(put_str(f->s, "/f", "hello"), 0);
	assert_rc(store_stat(f->s, NULL, "/f", &st), 0);

	a.mode = 0640 | S_IFDIR; /* S_IFMT is ignored */
	assert_rc(store_setattr(f->s, NULL, "/f", &a, STORE_ATTR_MODE), 0);
	assert_rc(store_stat(f->s, NULL, "/f", &st2), 0);
	assert_int_equal(st2.mode, S_IFREG | 0640);
	assert_int_equal(st2.type, STORE_FILE);
	assert_true(st2.ctime_ns >= st.ctime_ns);
	assert_true(st2.version.hlc > st.version.hlc);

	a.uid = 1234;
	a.gid = 5678;
	assert_rc(store_setattr(f->s, NULL, "/f", &a,
				STORE_ATTR_UID | STORE_ATTR_GID), 0);
	assert_rc(store_stat(f->s, NULL, "/f", &st2), 0);
	assert_int_equal(st2.uid, 1234);
	assert_int_equal(st2.gid, 5678);
	assert_int_equal(st2.mode, S_IFREG | 0640);

	a.mtime_ns = 1000000000LL * 1600000000 + 123456789;
	a.ctime_ns = 1000000000LL * 1500000000 + 42;
	assert_rc(store_setattr(f->s, NULL, "/f", &a,
				STORE_ATTR_MTIME | STORE_ATTR_CTIME), 0);
	assert_rc(store_stat(f->s, NULL, "/f", &st2), 0);
	assert_int_equal(st2.mtime_ns, a.mtime_ns);
	assert_int_equal(st2.ctime_ns, a.ctime_ns);

	/* extend with zeros, then shrink */
	a.size = 8;
	assert_rc(store_setattr(f->s, NULL, "/f", &a, STORE_ATTR_SIZE), 0);
	check_value(f->s, "/f", "hello\0\0\0", 8);
	assert_rc(store_stat(f->s, NULL, "/f", &st2), 0);
	assert_int_equal(st2.size, 8);
	a.size = 2;
	assert_rc(store_setattr(f->s, NULL, "/f", &a, STORE_ATTR_SIZE), 0);
	check_str(f->s, "/f", "he");
	a.size = 0;
	assert_rc(store_setattr(f->s, NULL, "/f", &a, STORE_ATTR_SIZE), 0);
	check_str(f->s, "/f", "");
	assert_rc(store_setattr(f->s, NULL, "/none", &a, STORE_ATTR_SIZE),
		  -ENOENT);

	/* directories take mode too */
	assert_rc(store_mknod(f->s, NULL, "/d", STORE_DIR, NULL, &a,
			      0, 0), 0);
	a.mode = 0700;
	assert_rc(store_setattr(f->s, NULL, "/d", &a, STORE_ATTR_MODE), 0);
	assert_rc(store_stat(f->s, NULL, "/d", &st2), 0);
	assert_int_equal(st2.mode, S_IFDIR | 0700);
	/* a size on a directory makes no sense */
	a.size = 5;
	assert_rc(store_setattr(f->s, NULL, "/d", &a, STORE_ATTR_SIZE),
		  -EISDIR);

	/* create with attributes */
	a.mode = 0604;
	a.uid = 7;
	a.gid = 8;
	assert_rc(store_put(f->s, NULL, "/g", "v", 1, &a,
			    STORE_ATTR_MODE | STORE_ATTR_UID | STORE_ATTR_GID,
			    STORE_CREATE), 0);
	assert_rc(store_stat(f->s, NULL, "/g", &st2), 0);
	assert_int_equal(st2.mode, S_IFREG | 0604);
	assert_int_equal(st2.uid, 7);
	assert_int_equal(st2.gid, 8);
}

static void test_xattr(void **state)
{
	struct fx *f = *state;
	char buf[256];
	struct store_stat st;

	assert_rc(put_str(f->s, "/x", "v"), 0);
	assert_rc(store_xattr_list(f->s, NULL, "/x", buf, sizeof(buf)), 0);
	assert_rc(store_xattr_get(f->s, NULL, "/x", "user.a", buf, sizeof(buf)),
		  -ENODATA);
	assert_rc(store_xattr_set(f->s, NULL, "/x", "user.a", "one", 3, 0), 0);
	assert_rc(store_xattr_set(f->s, NULL, "/x", "user.bb", "\0two", 4, 0),
		  0);
	assert_rc(store_xattr_get(f->s, NULL, "/x", "user.a", NULL, 0), 3);
	assert_rc(store_xattr_get(f->s, NULL, "/x", "user.a", buf, sizeof(buf)),
		  3);
	assert_memory_equal(buf, "one", 3);
	assert_rc(store_xattr_get(f->s, NULL, "/x", "user.bb", buf,
				  sizeof(buf)), 4);
	assert_memory_equal(buf, "\0two", 4);
	assert_rc(store_xattr_get(f->s, NULL, "/x", "user.bb", buf, 3),
		  -ERANGE);

	/* list: two NUL-terminated names, in any order */
	{
		const char *want = "user.a\0user.bb";
		size_t wl = sizeof("user.a\0user.bb");
		ssize_t n = store_xattr_list(f->s, NULL, "/x", NULL, 0);

		assert_rc(n, (ssize_t)wl);
		assert_rc(store_xattr_list(f->s, NULL, "/x", buf, sizeof(buf)),
			  (ssize_t)wl);
		if (memcmp(buf, want, wl) &&
		    memcmp(buf, "user.bb\0user.a", wl)) {
			print_error("xattr list: unexpected names\n");
			fail();
		}
		assert_rc(store_xattr_list(f->s, NULL, "/x", buf, wl - 1),
			  -ERANGE);
	}
	assert_rc(store_stat(f->s, NULL, "/x", &st), 0);
	assert_true(st.xattr_len > 0);

	/* flags */
	assert_rc(store_xattr_set(f->s, NULL, "/x", "user.a", "1", 1,
				  XATTR_CREATE), -EEXIST);
	assert_rc(store_xattr_set(f->s, NULL, "/x", "user.c", "1", 1,
				  XATTR_REPLACE), -ENODATA);
	assert_rc(store_xattr_get(f->s, NULL, "/x", "user.c", NULL, 0),
		  -ENODATA);
	assert_rc(store_xattr_set(f->s, NULL, "/x", "user.a", "uno", 3,
				  XATTR_REPLACE), 0);
	assert_rc(store_xattr_get(f->s, NULL, "/x", "user.a", buf, sizeof(buf)),
		  3);
	assert_memory_equal(buf, "uno", 3);
	assert_rc(store_xattr_set(f->s, NULL, "/x", "user.c", "", 0,
				  XATTR_CREATE), 0);
	assert_rc(store_xattr_get(f->s, NULL, "/x", "user.c", buf, sizeof(buf)),
		  0);

	/* remove */
	assert_rc(store_xattr_remove(f->s, NULL, "/x", "user.a"), 0);
	assert_rc(store_xattr_remove(f->s, NULL, "/x", "user.a"), -ENODATA);
	assert_rc(store_xattr_get(f->s, NULL, "/x", "user.a", buf, sizeof(buf)),
		  -ENODATA);
	assert_rc(store_xattr_get(f->s, NULL, "/x", "user.bb", buf,
				  sizeof(buf)), 4);
	/* the value is untouched by xattr changes */
	check_str(f->s, "/x", "v");
	/* they survive a put of the value */
	assert_rc(put_str(f->s, "/x", "w"), 0);
	assert_rc(store_xattr_get(f->s, NULL, "/x", "user.bb", buf,
				  sizeof(buf)), 4);
	/* missing file */
	assert_rc(store_xattr_set(f->s, NULL, "/nope", "user.a", "1", 1, 0),
		  -ENOENT);
	/* a big value, and one over 64 KiB */
	{
		size_t big = 65536;
		char *v = malloc(big + 1);

		assert_non_null(v);
		memset(v, 'q', big + 1);
		assert_rc(store_xattr_set(f->s, NULL, "/x", "user.big", v, big,
					  0), 0);
		assert_rc(store_xattr_get(f->s, NULL, "/x", "user.big", NULL,
					  0), (ssize_t)big);
		assert_true(store_xattr_set(f->s, NULL, "/x", "user.big2", v,
					    big + 1, 0) == -E2BIG ||
			    store_xattr_set(f->s, NULL, "/x", "user.big2", v,
					    big + 1, 0) == -ERANGE);
		free(v);
	}
}

/* Several changes of one record in one transaction: every call must see
 * the record as the previous call of the transaction left it, with its
 * xattrs and value intact whatever LMDB does with its pages. */
static void test_txn_same_key(void **state)
{
	struct fx *f = *state;
	struct store_txn *t = NULL;
	struct store_attr a = { .mode = 0600, .size = 3 };
	char buf[64], p[32];
	int i;

	for (i = 0; i < 20; i++) {
		snprintf(p, sizeof(p), "/n%02d", i);
		assert_rc(put_str(f->s, p, "neighbour"), 0);
	}
	assert_rc(put_str(f->s, "/n05x", "value-one"), 0);
	assert_rc(store_xattr_set(f->s, NULL, "/n05x", "user.k", "KEEP", 4, 0),
		  0);
	assert_rc(store_txn_begin(f->s, 1, &t), 0);
	/* dirty the leaf page the record lives on */
	assert_rc(store_put(f->s, t, "/n05", "changed", 7, NULL, 0, 0), 0);
	assert_rc(store_put(f->s, t, "/n05x", "a much longer second value", 26,
			    NULL, 0, 0), 0);
	assert_rc(store_xattr_get(f->s, t, "/n05x", "user.k", buf, sizeof(buf)),
		  4);
	assert_memory_equal(buf, "KEEP", 4);
	assert_rc(store_setattr(f->s, t, "/n05x", &a,
				STORE_ATTR_MODE | STORE_ATTR_SIZE), 0);
	assert_rc(store_put(f->s, t, "/n05x", "v3", 2, NULL, 0, 0), 0);
	assert_rc(store_setattr(f->s, t, "/n05x", &a, STORE_ATTR_MODE), 0);
	assert_rc(store_txn_commit(&t), 0);
	check_str(f->s, "/n05x", "v3");
	check_str(f->s, "/n05", "changed");
	assert_rc(store_xattr_get(f->s, NULL, "/n05x", "user.k", buf,
				  sizeof(buf)), 4);
	assert_memory_equal(buf, "KEEP", 4);
	for (i = 0; i < 20; i++) {
		snprintf(p, sizeof(p), "/n%02d", i);
		check_str(f->s, p, i == 5 ? "changed" : "neighbour");
	}
}

/* ==== binlog atomicity ==== */

static void test_binlog_abort(void **state)
{
	struct fx *f = *state;
	struct store_txn *t = NULL;
	uint64_t last = store_last_seq(f->s);
	struct store_info in0 = info_of(f->s), in1;
	struct chg_list l;

	assert_rc(store_txn_begin(f->s, 1, &t), 0);
	assert_non_null(t);
	assert_rc(store_put(f->s, t, "/a", "1", 1, NULL, 0, STORE_CREATE), 0);
	assert_rc(store_put(f->s, t, "/b", "2", 1, NULL, 0, STORE_CREATE), 0);
	assert_rc(store_put(f->s, t, "/c/d", "3", 1, NULL, 0,
			    STORE_CREATE | STORE_PARENTS), 0);
	/* visible inside the transaction */
	assert_rc(stat_rc(f->s, t, "/b"), 0);
	store_txn_abort(&t);
	assert_null(t);
	assert_int_equal(store_last_seq(f->s), last);
	l = binlog_after(f->s, last);
	assert_int_equal(l.n, 0);
	chg_free(&l);
	assert_rc(stat_rc(f->s, NULL, "/a"), -ENOENT);
	assert_rc(stat_rc(f->s, NULL, "/b"), -ENOENT);
	assert_rc(stat_rc(f->s, NULL, "/c"), -ENOENT);
	in1 = info_of(f->s);
	assert_int_equal(in1.records, in0.records);
	assert_int_equal(in1.binlog_count, in0.binlog_count);
	assert_int_equal(in1.local_seq, in0.local_seq);
}

static void test_binlog_poisoned(void **state)
{
	struct fx *f = *state;
	struct store_txn *t = NULL;
	uint64_t last;
	struct store_info in0, in1;
	struct chg_list l;

	assert_rc(put_str(f->s, "/exists", "e"), 0);
	last = store_last_seq(f->s);
	in0 = info_of(f->s);
	assert_rc(store_txn_begin(f->s, 1, &t), 0);
	assert_rc(store_put(f->s, t, "/a", "1", 1, NULL, 0, STORE_CREATE), 0);
	assert_rc(store_put(f->s, t, "/exists", "2", 1, NULL, 0,
			    STORE_CREATE | STORE_EXCL), -EEXIST);
	assert_rc(store_txn_commit(&t), -EEXIST);
	assert_null(t);
	assert_int_equal(store_last_seq(f->s), last);
	l = binlog_after(f->s, last);
	assert_int_equal(l.n, 0);
	chg_free(&l);
	assert_rc(stat_rc(f->s, NULL, "/a"), -ENOENT);
	check_str(f->s, "/exists", "e");
	in1 = info_of(f->s);
	assert_int_equal(in1.records, in0.records);
	assert_int_equal(in1.binlog_count, in0.binlog_count);
	assert_int_equal(in1.local_seq, in0.local_seq);
	/* the store works after it */
	assert_rc(put_str(f->s, "/a", "ok"), 0);
	assert_int_equal(store_last_seq(f->s), last + 1);
}

struct wm {
	uint64_t node, seq;
	unsigned n;
};

static int wm_cb(void *arg, uint64_t node, uint64_t seq)
{
	struct wm *w = arg;

	w->n++;
	if (node == w->node)
		w->seq = seq;
	return 0;
}

static void test_binlog_batch(void **state)
{
	struct fx *f = *state;
	struct store_txn *t = NULL;
	struct store_info in = info_of(f->s);
	struct chg_list l;
	struct wm w = { .node = in.node_id };
	uint64_t last;
	char p[32];
	unsigned i;

	assert_rc(put_str(f->s, "/before", "b"), 0);
	last = store_last_seq(f->s);
	assert_true(last >= 1);
	assert_rc(store_txn_begin(f->s, 1, &t), 0);
	for (i = 0; i < 100; i++) {
		snprintf(p, sizeof(p), "/k%03u", i);
		assert_rc(store_put(f->s, t, p, p, strlen(p), NULL, 0,
				    STORE_CREATE), 0);
	}
	/* nothing is in the binlog before the commit */
	assert_int_equal(store_last_seq(f->s), last);
	assert_rc(store_txn_commit(&t), 0);
	assert_int_equal(store_last_seq(f->s), last + 100);
	l = binlog_after(f->s, last);
	assert_int_equal(l.n, 100);
	for (i = 0; i < 100; i++) {
		const struct store_change *c = &l.v[i].c;
		struct store_stat st;

		snprintf(p, sizeof(p), "/k%03u", i);
		assert_int_equal(c->seq, last + 1 + i);
		assert_string_equal(l.v[i].path, p);
		assert_int_equal(c->origin_node, in.node_id);
		/* a node's sequence is its clock: strictly increasing */
		if (i > 0)
			assert_true(c->origin_seq > l.v[i - 1].c.origin_seq);
		assert_int_equal(c->writer, store_writer_token(f->s));
		if (i < 99)
			assert_int_equal(c->flags & STORE_CHANGE_MORE,
					 STORE_CHANGE_MORE);
		else
			assert_int_equal(c->flags & STORE_CHANGE_MORE, 0);
		assert_rc(store_rec_decode(c->rec, c->rec_len, &st, NULL, NULL,
					   NULL), 0);
		assert_int_equal(st.type, STORE_FILE);
		assert_int_equal(st.size, strlen(p));
		assert_int_equal(st.origin_seq, c->origin_seq);
	}
	/* /before is the change just before, its own commit */
	{
		struct chg_list b = binlog_after(f->s, last - 1);

		assert_int_equal(b.n, 101);
		assert_string_equal(b.v[0].path, "/before");
		assert_int_equal(b.v[0].c.flags & STORE_CHANGE_MORE, 0);
		assert_true(b.v[0].c.origin_seq < l.v[0].c.origin_seq);
		chg_free(&b);
	}
	in = info_of(f->s);
	assert_int_equal(in.local_seq, l.v[99].c.origin_seq);
	assert_int_equal(in.binlog_last, last + 100);
	assert_rc(store_watermarks(f->s, wm_cb, &w), 0);
	assert_int_equal(w.n, 1);
	assert_int_equal(w.seq, l.v[99].c.origin_seq);
	/* max limits the count, after skips */
	{
		struct chg_list m = { 0 };

		assert_rc(store_binlog_read(f->s, last + 10, 5, chg_collect,
					    &m), 5);
		assert_int_equal(m.v[0].c.seq, last + 11);
		assert_int_equal(m.v[4].c.seq, last + 15);
		chg_free(&m);
		assert_rc(store_binlog_read(f->s, last + 100, 0, chg_collect,
					    &m), 0);
		chg_free(&m);
	}
	chg_free(&l);
}

static void test_binlog_trim(void **state)
{
	struct fx *f = *state;
	struct store_opts o = { .binlog_max = 10 };
	struct chg_list l = { 0 };
	struct store_info in;
	uint64_t last;
	char p[32];
	int i;

	store_close(&f->s);
	f->s = open_at(f->path, &o);
	for (i = 0; i < 30; i++) {
		snprintf(p, sizeof(p), "/t%02d", i);
		assert_rc(put_str(f->s, p, "v"), 0);
	}
	last = store_last_seq(f->s);
	assert_int_equal(last, 30);
	in = info_of(f->s);
	assert_int_equal(in.binlog_count, 10);
	assert_int_equal(in.binlog_first, 21);
	assert_int_equal(in.binlog_last, 30);
	/* a consumer that fell behind must resync */
	assert_rc(store_binlog_read(f->s, 0, 0, chg_collect, &l), -ERANGE);
	assert_rc(store_binlog_read(f->s, 19, 0, chg_collect, &l), -ERANGE);
	chg_free(&l);
	assert_rc(store_binlog_read(f->s, 20, 0, chg_collect, &l), 10);
	assert_int_equal(l.v[0].c.seq, 21);
	assert_string_equal(l.v[0].path, "/t20");
	assert_int_equal(l.v[9].c.seq, 30);
	chg_free(&l);
	/* the data itself is all there */
	check_str(f->s, "/t00", "v");
	check_str(f->s, "/t29", "v");
}

static void test_readonly(void **state)
{
	struct fx *f = *state;
	struct store_opts o = { .readonly = 1 };
	struct store *ro;
	unsigned char d0[STORE_DIGEST_LEN], d1[STORE_DIGEST_LEN];

	assert_rc(put_str(f->s, "/r", "v"), 0);
	digest_of(f->s, d0);
	ro = open_at(f->path, &o);
	check_str(ro, "/r", "v");
	assert_true(put_str(ro, "/r", "w") < 0);
	assert_true(put_str(ro, "/new", "w") < 0);
	assert_true(store_del(ro, NULL, "/r", 0) < 0);
	store_close(&ro);
	check_str(f->s, "/r", "v");
	digest_of(f->s, d1);
	assert_memory_equal(d0, d1, STORE_DIGEST_LEN);
}

static void test_node_name_kept(void **state)
{
	struct fx *f = *state;
	struct store *s = open_sibling(f, "named", "alpha");
	char p[160];
	uint64_t id = info_of(s).node_id;

	assert_string_equal(info_of(s).node_name, "alpha");
	store_close(&s);
	snprintf(p, sizeof(p), "%s/named", f->dir);
	s = open_at(p, NULL);
	assert_string_equal(info_of(s).node_name, "alpha");
	assert_int_equal(info_of(s).node_id, id);
	store_close(&s);
}

struct writer_arg {
	struct store *s;
	int id;
	int fails;
};

static void *writer_main(void *arg)
{
	struct writer_arg *w = arg;
	char p[32], v[32];
	void *got;
	size_t len;
	int i;

	for (i = 0; i < 2000; i++) {
		snprintf(p, sizeof(p), "/w%d/k%d", w->id, i);
		snprintf(v, sizeof(v), "%d:%d", w->id, i);
		if (put_str(w->s, p, v) != 0) {
			w->fails++;
			continue;
		}
		if (store_get(w->s, NULL, p, NULL, &got, &len) != 0) {
			w->fails++;
			continue;
		}
		if (len != strlen(v) || memcmp(got, v, len))
			w->fails++;
		free(got);
	}
	return NULL;
}

/* One handle shared by threads, as the header asks. */
static void test_threads_share_handle(void **state)
{
	struct fx *f = *state;
	struct writer_arg w[4];
	pthread_t th[4];
	uint64_t last = store_last_seq(f->s);
	struct names l;
	int i;

	for (i = 0; i < 4; i++) {
		w[i] = (struct writer_arg){ .s = f->s, .id = i };
		assert_rc(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_rc(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].fails, 0);
	}
	/* 2000 puts and one parent directory per thread */
	assert_int_equal(store_last_seq(f->s), last + 4 * 2001);
	for (i = 0; i < 4; i++) {
		char p[16];

		snprintf(p, sizeof(p), "/w%d", i);
		l = list_of(f->s, p, NULL);
		assert_int_equal(l.n, 2000);
		names_free(&l);
	}
}

/* ==== apply_remote ==== */

static int vers_cmp(const struct store_version *a, const struct store_version *b)
{
	if (a->hlc != b->hlc)
		return a->hlc < b->hlc ? -1 : 1;
	if (a->node != b->node)
		return a->node < b->node ? -1 : 1;
	return 0;
}

static struct store_version rec_version(const struct chg *c)
{
	struct store_stat st;

	assert_rc(store_rec_decode(c->rec, c->c.rec_len, &st, NULL, NULL,
				   NULL), 0);
	return st.version;
}

static void test_apply_basic(void **state)
{
	struct fx *f = *state;
	struct store *a = open_sibling(f, "A", "node-a");
	struct store *b = open_sibling(f, "B", "node-b");
	uint64_t an = info_of(a).node_id, bn = info_of(b).node_id;
	struct chg_list la, lb, ld;
	const struct chg *c1, *c2;
	unsigned char d0[STORE_DIGEST_LEN], d1[STORE_DIGEST_LEN];
	uint64_t last;
	struct store_stat st;

	assert_true(an != bn);
	assert_true(an != info_of(f->s).node_id);
	assert_string_equal(info_of(a).node_name, "node-a");

	/* A writes k=1; B applies it then writes k=2 (it saw k=1) */
	assert_rc(put_str(a, "/k", "1"), 0);
	la = binlog_after(a, 0);
	c1 = find_chg(&la, "/k", an);
	assert_rc(store_apply_remote(b, NULL, &c1->c), STORE_APPLIED);
	assert_rc(store_apply_remote(b, NULL, &c1->c), STORE_DUPLICATE);
	check_str(b, "/k", "1");
	assert_rc(put_str(b, "/k", "2"), 0);
	lb = binlog_after(b, 0);
	c2 = find_chg(&lb, "/k", bn);

	/* our store: c1 applied, again duplicate */
	last = store_last_seq(f->s);
	assert_rc(store_apply_remote(f->s, NULL, &c1->c), STORE_APPLIED);
	check_str(f->s, "/k", "1");
	assert_rc(store_stat(f->s, NULL, "/k", &st), 0);
	assert_int_equal(st.version.node, an);
	assert_rc(store_apply_remote(f->s, NULL, &c1->c), STORE_DUPLICATE);
	/* forwarded: in our binlog with its origin kept */
	ld = binlog_after(f->s, last);
	assert_int_equal(ld.n, 1);
	assert_string_equal(ld.v[0].path, "/k");
	assert_int_equal(ld.v[0].c.origin_node, an);
	assert_int_equal(ld.v[0].c.origin_seq, c1->c.origin_seq);
	assert_int_equal(ld.v[0].c.seq, last + 1);
	chg_free(&ld);
	/* c2 saw c1: applied, not a conflict */
	assert_rc(store_apply_remote(f->s, NULL, &c2->c), STORE_APPLIED);
	check_str(f->s, "/k", "2");
	{
		struct wm w = { .node = an };

		assert_rc(store_watermarks(f->s, wm_cb, &w), 0);
		assert_int_equal(w.seq, c1->c.origin_seq);
		w.node = bn;
		w.seq = 0;
		assert_rc(store_watermarks(f->s, wm_cb, &w), 0);
		assert_int_equal(w.seq, c2->c.origin_seq);
	}

	/* a fresh store gets c2 first: then c1 is superseded (c2 saw it) */
	{
		struct store *e = open_sibling(f, "E", "node-e");

		assert_rc(store_apply_remote(e, NULL, &c2->c), STORE_APPLIED);
		assert_rc(store_apply_remote(e, NULL, &c1->c),
			  STORE_SUPERSEDED);
		check_str(e, "/k", "2");
		assert_rc(store_apply_remote(e, NULL, &c1->c), STORE_DUPLICATE);
		check_str(e, "/k", "2");
		store_close(&e);
	}

	/* a malformed record: -EPROTO, nothing changes */
	digest_of(f->s, d0);
	last = store_last_seq(f->s);
	{
		struct store_change bad = c1->c;
		unsigned char junk[64];

		bad.origin_seq = c2->c.origin_seq + 1000;
		bad.origin_node = an;
		bad.rec_len = c1->c.rec_len / 2;
		assert_rc(store_apply_remote(f->s, NULL, &bad), -EPROTO);
		memset(junk, 0xee, sizeof(junk));
		bad.rec = junk;
		bad.rec_len = sizeof(junk);
		assert_rc(store_apply_remote(f->s, NULL, &bad), -EPROTO);
		bad.rec_len = 0;
		assert_rc(store_apply_remote(f->s, NULL, &bad), -EPROTO);
	}
	digest_of(f->s, d1);
	assert_memory_equal(d0, d1, STORE_DIGEST_LEN);
	assert_int_equal(store_last_seq(f->s), last);
	check_str(f->s, "/k", "2");

	chg_free(&la);
	chg_free(&lb);
	store_close(&a);
	store_close(&b);
}

static void test_apply_concurrent(void **state)
{
	struct fx *f = *state;
	static const int perms[6][3] = { { 0, 1, 2 }, { 0, 2, 1 }, { 1, 0, 2 },
					 { 1, 2, 0 }, { 2, 0, 1 }, { 2, 1, 0 } };
	static const char *const names[3] = { "A", "B", "C" };
	static const char *const vals[3] = { "from-a", "from-b", "from-c" };
	struct chg_list l[3];
	const struct chg *c[3];
	struct store_version v[3];
	unsigned char d[6][STORE_DIGEST_LEN];
	int i, j, winner = 0, won = 0, lost = 0;
	char dname[16];

	for (i = 0; i < 3; i++) {
		struct store *s = open_sibling(f, names[i], names[i]);

		assert_rc(put_str(s, "/k", vals[i]), 0);
		l[i] = binlog_after(s, 0);
		c[i] = find_chg(&l[i], "/k", info_of(s).node_id);
		v[i] = rec_version(c[i]);
		store_close(&s);
	}
	for (i = 1; i < 3; i++)
		if (vers_cmp(&v[i], &v[winner]) > 0)
			winner = i;
	for (j = 0; j < 6; j++) {
		struct store *dst;
		struct store_version cur;

		snprintf(dname, sizeof(dname), "D%d", j);
		dst = open_sibling(f, dname, dname);
		for (i = 0; i < 3; i++) {
			int k = perms[j][i], want;

			if (i == 0)
				want = STORE_APPLIED;
			else if (vers_cmp(&v[k], &cur) > 0)
				want = STORE_CONFLICT_WON;
			else
				want = STORE_CONFLICT_LOST;
			if (i == 0 || vers_cmp(&v[k], &cur) > 0)
				cur = v[k];
			won += want == STORE_CONFLICT_WON;
			lost += want == STORE_CONFLICT_LOST;
			assert_rc(store_apply_remote(dst, NULL, &c[k]->c),
				  want);
		}
		check_str(dst, "/k", vals[winner]);
		digest_of(dst, d[j]);
		if (j)
			assert_memory_equal(d[j], d[0], STORE_DIGEST_LEN);
		/* every change again: duplicates */
		for (i = 0; i < 3; i++)
			assert_rc(store_apply_remote(dst, NULL, &c[i]->c),
				  STORE_DUPLICATE);
		store_close(&dst);
	}
	print_message("concurrent writes in 6 orders: %d won, %d lost, winner "
		      "%s\n", won, lost, names[winner]);
	/* 12 conflicts in all; the winner arrives last in 2 orders (2 wins),
	 * in the middle in 2 (1 win), first in 2 (0) */
	assert_int_equal(won + lost, 12);
	/* left-to-right maxima over the 6 orders of 3: 11, minus the 6
	 * first arrivals */
	assert_int_equal(won, 5);
	assert_int_equal(lost, 7);
	for (i = 0; i < 3; i++)
		chg_free(&l[i]);
}

static void test_apply_tombstones(void **state)
{
	struct fx *f = *state;
	struct store *a = open_sibling(f, "A", "A");
	struct store *b = open_sibling(f, "B", "B");
	struct store *c = open_sibling(f, "C", "C");
	uint64_t an = info_of(a).node_id, bn = info_of(b).node_id;
	uint64_t cn = info_of(c).node_id;
	struct chg_list la, lb, lc, ld;
	const struct chg *old, *w1, *del;
	struct store_stat st;
	int64_t t0;
	uint64_t last;

	/* C writes first (the oldest version), concurrently with the rest */
	assert_rc(put_str(c, "/t", "old-from-c"), 0);
	lc = binlog_after(c, 0);
	old = find_chg(&lc, "/t", cn);
	t0 = store_now_ns();
	wait_clock_past(t0, 3);

	/* A writes, B applies it and deletes */
	assert_rc(put_str(a, "/t", "1"), 0);
	la = binlog_after(a, 0);
	w1 = find_chg(&la, "/t", an);
	assert_rc(store_apply_remote(b, NULL, &w1->c), STORE_APPLIED);
	assert_rc(store_del(b, NULL, "/t", STORE_DEL_FILE), 0);
	lb = binlog_after(b, 0);
	del = find_chg(&lb, "/t", bn);
	{
		struct store_stat ts;

		assert_rc(store_rec_decode(del->rec, del->c.rec_len, &ts, NULL,
					   NULL, NULL), 0);
		assert_int_equal(ts.type, STORE_TOMBSTONE);
	}

	/* the delete arrives first: the older write stays dead */
	last = store_last_seq(f->s);
	assert_rc(store_apply_remote(f->s, NULL, &del->c), STORE_APPLIED);
	assert_rc(store_stat(f->s, NULL, "/t", &st), -ENOENT);
	assert_rc(store_apply_remote(f->s, NULL, &w1->c), STORE_SUPERSEDED);
	assert_rc(store_stat(f->s, NULL, "/t", &st), -ENOENT);
	assert_rc(store_apply_remote(f->s, NULL, &old->c), STORE_CONFLICT_LOST);
	assert_rc(store_stat(f->s, NULL, "/t", &st), -ENOENT);
	/* forwarded tombstone */
	ld = binlog_after(f->s, last);
	assert_true(ld.n >= 1);
	assert_string_equal(ld.v[0].path, "/t");
	assert_int_equal(ld.v[0].c.origin_node, bn);
	assert_int_equal(ld.v[0].c.origin_seq, del->c.origin_seq);
	chg_free(&ld);

	/* in order: write, delete, then the late old write */
	{
		struct store *e = open_sibling(f, "E", "E");

		assert_rc(store_apply_remote(e, NULL, &w1->c), STORE_APPLIED);
		check_str(e, "/t", "1");
		assert_rc(store_apply_remote(e, NULL, &del->c), STORE_APPLIED);
		assert_rc(store_stat(e, NULL, "/t", &st), -ENOENT);
		assert_rc(store_apply_remote(e, NULL, &old->c),
			  STORE_CONFLICT_LOST);
		assert_rc(store_stat(e, NULL, "/t", &st), -ENOENT);
		store_close(&e);
	}
	/* a local delete is not undone by an older write arriving late */
	{
		struct store *g = open_sibling(f, "G", "G");

		assert_rc(store_apply_remote(g, NULL, &w1->c), STORE_APPLIED);
		assert_rc(store_del(g, NULL, "/t", 0), 0);
		assert_rc(store_apply_remote(g, NULL, &old->c),
			  STORE_CONFLICT_LOST);
		assert_rc(store_stat(g, NULL, "/t", &st), -ENOENT);
		assert_rc(store_apply_remote(g, NULL, &w1->c), STORE_DUPLICATE);
		assert_rc(store_stat(g, NULL, "/t", &st), -ENOENT);
		store_close(&g);
	}
	chg_free(&la);
	chg_free(&lb);
	chg_free(&lc);
	store_close(&a);
	store_close(&b);
	store_close(&c);
}

/* ==== TTL ==== */

/* Poll until `path` is gone (stat -ENOENT) or deadline_ms passes;
 * returns the monotonic time it was seen gone, or 0. */
static int64_t wait_gone(struct store *s, const char *path,
			 unsigned deadline_ms)
{
	int64_t end = mono_ns() + (int64_t)deadline_ms * 1000000;

	while (mono_ns() < end) {
		int rc = stat_rc(s, NULL, path);

		if (rc == -ENOENT)
			return mono_ns();
		assert_rc(rc, 0);
		sleep_ms(5);
	}
	return 0;
}

static void test_ttl_expiry(void **state)
{
	struct fx *f = *state;
	struct store_attr a = { .ttl_ms = 200 };
	struct store_stat st;
	struct names l;
	void *v;
	size_t len;
	int64_t put_ns, gone;

	assert_rc(put_str(f->s, "/keep", "k"), 0);
	put_ns = store_now_ns();
	assert_rc(store_put(f->s, NULL, "/t", "v", 1, &a, STORE_ATTR_TTL,
			    STORE_CREATE), 0);
	assert_rc(store_stat(f->s, NULL, "/t", &st), 0);
	assert_int_equal(st.ttl_ms, 200);
	assert_int_equal(st.expires_ns, st.mtime_ns + 200 * 1000000LL);
	assert_true(st.mtime_ns >= put_ns - 1000000);
	check_str(f->s, "/t", "v");
	gone = wait_gone(f->s, "/t", 2000);
	assert_true(gone != 0);
	/* not before its deadline */
	assert_true(store_now_ns() >= st.expires_ns);
	assert_rc(store_get(f->s, NULL, "/t", NULL, &v, &len), -ENOENT);
	l = list_of(f->s, "/", NULL);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0], "keep");
	names_free(&l);
	/* an expired name can be created again, without a TTL */
	assert_rc(store_put(f->s, NULL, "/t", "new", 3, NULL, 0,
			    STORE_CREATE | STORE_EXCL), 0);
	assert_rc(store_stat(f->s, NULL, "/t", &st), 0);
	assert_int_equal(st.expires_ns, 0);
	check_str(f->s, "/t", "new");
}

static void test_ttl_renew(void **state)
{
	struct fx *f = *state;
	struct store_attr a = { .ttl_ms = 600 };
	struct store_stat st1, st2, st3;

	assert_rc(store_put(f->s, NULL, "/r", "1", 1, &a, STORE_ATTR_TTL,
			    STORE_CREATE), 0);
	assert_rc(store_stat(f->s, NULL, "/r", &st1), 0);
	wait_clock_past(st1.mtime_ns, 300);
	/* a put without TTL keeps the TTL and renews the deadline */
	assert_rc(put_str(f->s, "/r", "2"), 0);
	assert_rc(store_stat(f->s, NULL, "/r", &st2), 0);
	assert_int_equal(st2.ttl_ms, 600);
	assert_int_equal(st2.expires_ns, st2.mtime_ns + 600 * 1000000LL);
	assert_true(st2.expires_ns >= st1.expires_ns + 300 * 1000000LL);
	/* past the first deadline it is still there */
	wait_clock_past(st1.expires_ns, 50);
	if (store_now_ns() < st2.expires_ns - 20 * 1000000LL) {
		check_str(f->s, "/r", "2");
	} else {
		print_error("too slow to check the renewal window\n");
		fail();
	}
	/* a touch renews it too */
	assert_rc(store_setattr(f->s, NULL, "/r", &a, STORE_ATTR_TOUCH), 0);
	assert_rc(store_stat(f->s, NULL, "/r", &st3), 0);
	assert_true(st3.expires_ns > st2.expires_ns);
	assert_int_equal(st3.ttl_ms, 600);
	assert_true(wait_gone(f->s, "/r", 3000) != 0);
	assert_true(store_now_ns() >= st3.expires_ns);
	/* TTL 0 by setattr removes the deadline */
	a.ttl_ms = 100;
	assert_rc(store_put(f->s, NULL, "/z", "z", 1, &a, STORE_ATTR_TTL,
			    STORE_CREATE), 0);
	a.ttl_ms = 0;
	assert_rc(store_setattr(f->s, NULL, "/z", &a, STORE_ATTR_TTL), 0);
	assert_rc(store_stat(f->s, NULL, "/z", &st3), 0);
	assert_int_equal(st3.expires_ns, 0);
}

static void test_ttl_dir_default(void **state)
{
	struct fx *f = *state;
	struct store_attr a = { .ttl_ms = 50000 };
	struct store_stat st;
	struct store_opts o = { .default_ttl_ms = 30000 };

	store_close(&f->s);
	f->s = open_at(f->path, &o);
	assert_rc(store_mknod(f->s, NULL, "/d", STORE_DIR, NULL, &a,
			      STORE_ATTR_TTL, 0), 0);
	assert_rc(store_stat(f->s, NULL, "/d", &st), 0);
	assert_int_equal(st.ttl_ms, 50000);
	assert_int_equal(st.expires_ns, 0); /* the directory itself stays */
	assert_rc(put_str(f->s, "/d/f", "v"), 0);
	assert_rc(store_stat(f->s, NULL, "/d/f", &st), 0);
	assert_int_equal(st.ttl_ms, 50000);
	assert_int_equal(st.expires_ns, st.mtime_ns + 50000 * 1000000LL);
	assert_rc(store_mknod(f->s, NULL, "/d/g", STORE_FILE, NULL, NULL, 0, 0),
		  0);
	assert_rc(store_stat(f->s, NULL, "/d/g", &st), 0);
	assert_int_equal(st.ttl_ms, 50000);
	/* explicit TTL wins over the directory's */
	a.ttl_ms = 7000;
	assert_rc(store_put(f->s, NULL, "/d/h", "v", 1, &a, STORE_ATTR_TTL,
			    STORE_CREATE), 0);
	assert_rc(store_stat(f->s, NULL, "/d/h", &st), 0);
	assert_int_equal(st.ttl_ms, 7000);
	assert_int_equal(st.expires_ns, st.mtime_ns + 7000 * 1000000LL);
	/* elsewhere: the store's default */
	assert_rc(put_str(f->s, "/plain", "v"), 0);
	assert_rc(store_stat(f->s, NULL, "/plain", &st), 0);
	assert_int_equal(st.ttl_ms, 30000);
	assert_int_equal(st.expires_ns, st.mtime_ns + 30000 * 1000000LL);
	/* a directory with TTL set later */
	assert_rc(store_mknod(f->s, NULL, "/e", STORE_DIR, NULL, NULL, 0, 0),
		  0);
	a.ttl_ms = 9000;
	assert_rc(store_setattr(f->s, NULL, "/e", &a, STORE_ATTR_TTL), 0);
	assert_rc(put_str(f->s, "/e/x", "v"), 0);
	assert_rc(store_stat(f->s, NULL, "/e/x", &st), 0);
	assert_int_equal(st.ttl_ms, 9000);
}

static void test_ttl_sweep(void **state)
{
	struct fx *f = *state;
	struct store_attr a = { .ttl_ms = 100 };
	struct store_info in0, in1, in2;
	char p[32];
	int i, n;

	assert_rc(put_str(f->s, "/keep", "k"), 0);
	for (i = 0; i < 20; i++) {
		snprintf(p, sizeof(p), "/e%02d", i);
		assert_rc(store_put(f->s, NULL, p, "1234567890", 10, &a,
				    STORE_ATTR_TTL, STORE_CREATE), 0);
	}
	in0 = info_of(f->s);
	assert_true(wait_gone(f->s, "/e19", 2000) != 0);
	for (i = 0; i < 20; i++) {
		snprintf(p, sizeof(p), "/e%02d", i);
		assert_rc(stat_rc(f->s, NULL, p), -ENOENT);
	}
	in1 = info_of(f->s);
	n = store_sweep(f->s, 1000);
	print_message("sweep: %d reclaimed; records %" PRIu64 " live, %" PRIu64
		      " after expiry, %" PRIu64 " after sweep\n", n,
		      in0.records, in1.records, info_of(f->s).records);
	assert_true(n >= 20);
	in2 = info_of(f->s);
	assert_int_equal(in2.records, in0.records - 20);
	assert_true(in2.records < in0.records);
	assert_int_equal(in2.value_bytes, in0.value_bytes - 200);
	check_str(f->s, "/keep", "k");
	/* a second sweep has nothing left to expire */
	assert_rc(store_sweep(f->s, 1000), 0);
	assert_int_equal(info_of(f->s).records, in2.records);
}

/* ==== change notification ==== */

struct waiter {
	struct store *s;
	uint64_t after;
	int timeout_ms;
	volatile int started;
	int rc;
	int64_t woke_ns;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	__atomic_store_n(&w->started, 1, __ATOMIC_SEQ_CST);
	w->rc = store_wait(w->s, w->after, w->timeout_ms);
	w->woke_ns = mono_ns();
	return NULL;
}

static void test_wait_thread(void **state)
{
	struct fx *f = *state;
	struct waiter w = { .s = f->s, .timeout_ms = 5000 };
	pthread_t th;
	int64_t t0;

	w.after = store_last_seq(f->s);
	assert_rc(pthread_create(&th, NULL, waiter_main, &w), 0);
	while (!__atomic_load_n(&w.started, __ATOMIC_SEQ_CST))
		sleep_ms(1);
	sleep_ms(100); /* let it block: we measure a wake-up, not a check */
	t0 = mono_ns();
	assert_rc(put_str(f->s, "/wake", "1"), 0);
	assert_rc(pthread_join(th, NULL), 0);
	print_message("store_wait woke %.2f ms after the commit returned\n",
		      (double)(w.woke_ns - t0) / 1e6);
	assert_rc(w.rc, 1);
	assert_true(w.woke_ns - t0 < 100 * 1000000LL);

	/* already past: returns at once */
	t0 = mono_ns();
	assert_rc(store_wait(f->s, w.after, 5000), 1);
	assert_true(mono_ns() - t0 < 50 * 1000000LL);
	/* timeout */
	t0 = mono_ns();
	assert_rc(store_wait(f->s, store_last_seq(f->s), 150), 0);
	assert_true(mono_ns() - t0 >= 140 * 1000000LL);
	assert_true(mono_ns() - t0 < 1000 * 1000000LL);
}

static void test_wait_process(void **state)
{
	struct fx *f = *state;
	int fds[2];
	pid_t pid;
	int64_t commit_ns = 0, woke, t0;
	uint64_t last = store_last_seq(f->s);
	int status, rc;

	assert_rc(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* child: its own handle, never the parent's */
		struct store *cs = NULL;
		int64_t now;

		close(fds[0]);
		if (store_open(f->path, NULL, &cs) != 0)
			_exit(2);
		sleep_ms(200);
		if (put_str(cs, "/from-child", "c") != 0)
			_exit(3);
		now = mono_ns();
		if (write(fds[1], &now, sizeof(now)) != sizeof(now))
			_exit(4);
		store_close(&cs);
		_exit(0);
	}
	close(fds[1]);
	t0 = mono_ns();
	rc = store_wait(f->s, last, 5000);
	woke = mono_ns();
	assert_rc(read(fds[0], &commit_ns, sizeof(commit_ns)),
		  sizeof(commit_ns));
	close(fds[0]);
	assert_rc(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_rc(WEXITSTATUS(status), 0);
	assert_rc(rc, 1);
	print_message("cross-process wake-up: %.2f ms after the child's commit "
		      "(waited %.1f ms)\n", (double)(woke - commit_ns) / 1e6,
		      (double)(woke - t0) / 1e6);
	assert_true(woke - t0 >= 150 * 1000000LL); /* it did block */
	assert_true(woke - commit_ns < 200 * 1000000LL);
	check_str(f->s, "/from-child", "c");
	assert_int_equal(store_last_seq(f->s), last + 1);
}

/* ==== ENOSPC ==== */

static void test_enospc(void **state)
{
	struct fx *f = *state;
	struct store_opts o = { .map_size = 1 << 20 };
	unsigned char val[1000];
	char p[32];
	int i, n = -1, rc;

	store_close(&f->s);
	rm_rf(f->path);
	f->s = open_at(f->path, &o);
	assert_true(info_of(f->s).map_size <= (4u << 20));
	for (i = 0; i < 100000; i++) {
		snprintf(p, sizeof(p), "/v%05d", i);
		memset(val, 'a' + i % 26, sizeof(val));
		memcpy(val, &i, sizeof(i));
		rc = store_put(f->s, NULL, p, val, sizeof(val), NULL, 0,
			       STORE_CREATE);
		if (rc == -ENOSPC) {
			n = i;
			break;
		}
		assert_rc(rc, 0);
	}
	print_message("map of %" PRIu64 " bytes full after %d puts of 1000 "
		      "bytes\n", info_of(f->s).map_size, n);
	assert_true(n > 100);
	/* failed at once, again */
	assert_rc(store_put(f->s, NULL, p, val, sizeof(val), NULL, 0,
			    STORE_CREATE), -ENOSPC);
	assert_rc(stat_rc(f->s, NULL, p), -ENOENT);
	/* everything committed is intact */
	for (i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "/v%05d", i);
		memset(val, 'a' + i % 26, sizeof(val));
		memcpy(val, &i, sizeof(i));
		check_value(f->s, p, val, sizeof(val));
	}
	/* deleting frees space */
	for (i = 0; i < 40; i++) {
		snprintf(p, sizeof(p), "/v%05d", i);
		assert_rc(store_del(f->s, NULL, p, 0), 0);
	}
	assert_rc(store_sweep(f->s, 1000) >= 0, 1);
	memset(val, 'Z', sizeof(val));
	assert_rc(store_put(f->s, NULL, "/after", val, sizeof(val), NULL, 0,
			    STORE_CREATE), 0);
	check_value(f->s, "/after", val, sizeof(val));
	store_close(&f->s);
	f->s = open_at(f->path, &o);
	check_value(f->s, "/after", val, sizeof(val));
}

/* ==== digest ==== */

static void test_digest(void **state)
{
	struct fx *f = *state;
	struct store *a = open_sibling(f, "A", "A");
	struct store *b = open_sibling(f, "B", "B");
	unsigned char da[STORE_DIGEST_LEN], db[STORE_DIGEST_LEN];
	unsigned char dx[STORE_DIGEST_LEN];
	struct store_attr at = { .mode = 0600, .ttl_ms = 100 };
	void *v;
	size_t len;

	/* the same data in different orders */
	assert_rc(put_str(a, "/x/1", "one"), 0);
	assert_rc(put_str(a, "/x/2", "two"), 0);
	assert_rc(put_str(a, "/y", "why"), 0);
	assert_rc(put_str(b, "/y", "first"), 0);
	assert_rc(put_str(b, "/x/2", "two"), 0);
	assert_rc(put_str(b, "/y", "why"), 0);
	assert_rc(put_str(b, "/x/1", "one"), 0);
	digest_of(a, da);
	digest_of(b, db);
	assert_memory_equal(da, db, STORE_DIGEST_LEN);
	/* a get changes nothing */
	assert_rc(store_get(a, NULL, "/y", NULL, &v, &len), 0);
	free(v);
	digest_of(a, dx);
	assert_memory_equal(da, dx, STORE_DIGEST_LEN);
	/* tombstones of deleted data change nothing */
	assert_rc(put_str(b, "/gone/deep", "g"), 0);
	assert_rc(store_del(b, NULL, "/gone", STORE_DEL_RECURSIVE), 0);
	digest_of(b, db);
	assert_memory_equal(da, db, STORE_DIGEST_LEN);
	/* nor do expired records, before and after a sweep */
	assert_rc(store_put(b, NULL, "/x/ttl", "t", 1, &at, STORE_ATTR_TTL,
			    STORE_CREATE), 0);
	digest_of(b, db);
	assert_memory_not_equal(da, db, STORE_DIGEST_LEN);
	assert_true(wait_gone(b, "/x/ttl", 2000) != 0);
	digest_of(b, db);
	assert_memory_equal(da, db, STORE_DIGEST_LEN);
	assert_true(store_sweep(b, 100) >= 1);
	digest_of(b, db);
	assert_memory_equal(da, db, STORE_DIGEST_LEN);

	/* a different value */
	assert_rc(put_str(b, "/y", "whY"), 0);
	digest_of(b, db);
	assert_memory_not_equal(da, db, STORE_DIGEST_LEN);
	assert_rc(put_str(b, "/y", "why"), 0);
	digest_of(b, db);
	assert_memory_equal(da, db, STORE_DIGEST_LEN);
	/* a different mode */
	assert_rc(store_setattr(b, NULL, "/y", &at, STORE_ATTR_MODE), 0);
	digest_of(b, db);
	assert_memory_not_equal(da, db, STORE_DIGEST_LEN);
	at.mode = 0644;
	assert_rc(store_setattr(a, NULL, "/y", &at, STORE_ATTR_MODE), 0);
	assert_rc(store_setattr(b, NULL, "/y", &at, STORE_ATTR_MODE), 0);
	digest_of(a, da);
	digest_of(b, db);
	assert_memory_equal(da, db, STORE_DIGEST_LEN);
	/* a different type: an empty file, an empty directory, a symlink
	 * whose target is the file's content */
	assert_rc(store_mknod(a, NULL, "/n", STORE_FILE, NULL, NULL, 0, 0), 0);
	assert_rc(store_mknod(b, NULL, "/n", STORE_DIR, NULL, NULL, 0, 0), 0);
	digest_of(a, da);
	digest_of(b, db);
	assert_memory_not_equal(da, db, STORE_DIGEST_LEN);
	assert_rc(store_del(a, NULL, "/n", 0), 0);
	assert_rc(store_del(b, NULL, "/n", 0), 0);
	assert_rc(put_str(a, "/s", "target"), 0);
	assert_rc(store_mknod(b, NULL, "/s", STORE_SYMLINK, "target", NULL, 0,
			      0), 0);
	digest_of(a, da);
	digest_of(b, db);
	assert_memory_not_equal(da, db, STORE_DIGEST_LEN);
	/* a different name, same value */
	assert_rc(store_del(a, NULL, "/s", 0), 0);
	assert_rc(store_del(b, NULL, "/s", 0), 0);
	assert_rc(put_str(a, "/p", "v"), 0);
	assert_rc(put_str(b, "/q", "v"), 0);
	digest_of(a, da);
	digest_of(b, db);
	assert_memory_not_equal(da, db, STORE_DIGEST_LEN);
	store_close(&a);
	store_close(&b);
}

/* ==== info ==== */

/* store_info (statfs, df, statefsctl status) costs the same with 100,000
 * tombstones kept for a peer as with none: it used to scan every record
 * (70-115 ms per statfs after a churn). */
static void test_info_constant_time(void **state)
{
	struct fx *f = *state;
	struct store_txn *t;
	struct store_info in;
	char p[32];
	int64_t t0, best_empty = INT64_MAX, best_full = INT64_MAX;
	unsigned i;

	for (i = 0; i < 20; i++) {
		t0 = mono_ns();
		assert_rc(store_info(f->s, &in), 0);
		if (mono_ns() - t0 < best_empty)
			best_empty = mono_ns() - t0;
	}
	/* a known peer keeps tombstones alive for the grace */
	assert_rc(store_peer_add(f->s, NULL, 12345), 0);
	assert_rc(store_txn_begin(f->s, 1, &t), 0);
	for (i = 0; i < 100000; i++) {
		snprintf(p, sizeof(p), "/t/k%06u", i);
		assert_rc(store_put(f->s, t, p, "v", 1, NULL, 0,
				    STORE_CREATE | STORE_PARENTS), 0);
		assert_rc(store_del(f->s, t, p, 0), 0);
	}
	assert_rc(store_txn_commit(&t), 0);
	for (i = 0; i < 20; i++) {
		t0 = mono_ns();
		assert_rc(store_info(f->s, &in), 0);
		if (mono_ns() - t0 < best_full)
			best_full = mono_ns() - t0;
	}
	assert_int_equal(in.tombstones, 100000);
	assert_int_equal(in.records, 1); /* /t */
	printf("store_info: %.1f us empty, %.1f us with 100,000 tombstones\n",
	       best_empty / 1e3, best_full / 1e3);
	/* a scan of 100,000 records takes milliseconds; O(1) stays far
	 * below one */
	assert_true(best_full < 1000000);
}

/* map_used is the space in use: deleting data (and purging it, which a
 * store without peers does at the first sweep) lowers it. */
static void test_map_used_frees(void **state)
{
	struct fx *f = *state;
	struct store_info a, b, c;
	char p[32];
	void *v = calloc(1, 100000);
	unsigned i;

	assert_non_null(v);
	assert_rc(store_info(f->s, &a), 0);
	for (i = 0; i < 400; i++) {
		snprintf(p, sizeof(p), "/big%03u", i);
		assert_rc(store_put(f->s, NULL, p, v, 100000, NULL, 0,
				    STORE_CREATE), 0);
	}
	assert_rc(store_info(f->s, &b), 0);
	assert_true(b.map_used >= a.map_used + 40000000);
	for (i = 0; i < 400; i++) {
		snprintf(p, sizeof(p), "/big%03u", i);
		assert_rc(store_del(f->s, NULL, p, 0), 0);
	}
	assert_rc(store_sweep(f->s, 0), 400);
	/* the pages freed by the deletes are reused, not counted; the
	 * binlog keeps a copy of each value until its cap trims it */
	for (i = 0; i < 3; i++)
		assert_rc(put_str(f->s, "/tick", "x"), 0);
	assert_rc(store_info(f->s, &c), 0);
	printf("map_used: %.1f MB empty, %.1f MB with 40 MB, %.1f MB after "
	       "deleting it\n", a.map_used / 1e6, b.map_used / 1e6,
	       c.map_used / 1e6);
	assert_true(c.map_used < b.map_used);
	free(v);
}


static void test_info_counts(void **state)
{
	struct fx *f = *state;
	struct store_info in0 = info_of(f->s), in1;

	assert_rc(store_mknod(f->s, NULL, "/d", STORE_DIR, NULL, NULL, 0, 0),
		  0);
	assert_rc(put_str(f->s, "/d/a", "0123456789"), 0);
	assert_rc(put_str(f->s, "/d/b", "01234567890123456789"), 0);
	assert_rc(put_str(f->s, "/d/c", ""), 0);
	in1 = info_of(f->s);
	assert_int_equal(in1.records, in0.records + 4);
	assert_int_equal(in1.value_bytes, in0.value_bytes + 30);
	assert_int_equal(in1.binlog_count, in0.binlog_count + 4);
	assert_int_equal(in1.binlog_last, store_last_seq(f->s));
	assert_true(in1.local_seq > in0.local_seq);
	{
		struct store_stat st;

		assert_rc(store_stat(f->s, NULL, "/d/c", &st), 0);
		assert_int_equal(in1.local_seq, st.origin_seq);
	}
	assert_true(in1.map_used > 0 && in1.map_used <= in1.map_size);
	assert_int_equal(in1.map_size, STORE_DEFAULT_MAP_SIZE);
	assert_int_equal(in1.max_value, STORE_DEFAULT_MAX_VALUE);

	assert_rc(put_str(f->s, "/d/a", "01234"), 0);
	in1 = info_of(f->s);
	assert_int_equal(in1.records, in0.records + 4);
	assert_int_equal(in1.value_bytes, in0.value_bytes + 25);
	assert_int_equal(in1.binlog_count, in0.binlog_count + 5);

	assert_rc(store_del(f->s, NULL, "/d/b", 0), 0);
	in1 = info_of(f->s);
	assert_int_equal(in1.records, in0.records + 3);
	assert_int_equal(in1.value_bytes, in0.value_bytes + 5);
	assert_int_equal(in1.binlog_count, in0.binlog_count + 6);
	assert_int_equal(in1.tombstones, in0.tombstones + 1);
	assert_int_equal(in1.binlog_last - in1.binlog_first + 1,
			 in1.binlog_count);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		T(test_open_create_reopen),
		T(test_open_no_create),
		T(test_open_garbage),
		T(test_open_foreign_lmdb),
		T(test_open_newer_format),
		T(test_clock_grows),
		T(test_change_roundtrip),
		T(test_change_truncated),
		T(test_change_garbage),
		T(test_rec_decode),
		T(test_put_get),
		T(test_efbig),
		T(test_name_too_long),
		T(test_non_canonical),
		T(test_errnos),
		T(test_symlink),
		T(test_rename),
		T(test_rename_empty_dir),
		T(test_mkdir_p),
		T(test_list),
		T(test_list_100k),
		T(test_list_deep),
		T(test_setattr),
		T(test_xattr),
		T(test_txn_same_key),
		T(test_binlog_abort),
		T(test_binlog_poisoned),
		T(test_binlog_batch),
		T(test_binlog_trim),
		T(test_readonly),
		T(test_node_name_kept),
		T(test_threads_share_handle),
		T(test_apply_basic),
		T(test_apply_concurrent),
		T(test_apply_tombstones),
		T(test_ttl_expiry),
		T(test_ttl_renew),
		T(test_ttl_dir_default),
		T(test_ttl_sweep),
		T(test_wait_thread),
		T(test_wait_process),
		T(test_enospc),
		T(test_digest),
		T(test_info_counts),
		T(test_info_constant_time),
		T(test_map_used_frees),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
