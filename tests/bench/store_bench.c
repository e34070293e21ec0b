/*
 * store_bench.c — the store alone against raw LMDB doing the same work.
 *
 *   store_bench [-n N] [-r REPS] [-d DIR]
 *
 * Both run in this one process, on tmpfs (DIR, default /dev/shm; every
 * repetition uses fresh directories, removed afterwards), with the same
 * keys ("/k0" ... "/k<N-1>"), the same 32-byte values and the same random
 * key order for reads. Figures (the median of REPS repetitions, default
 * 5; N default 200,000):
 *
 *   store_put_1_per_txn      store_put(txn NULL): one change per commit
 *   store_put_100_per_txn    store_txn_begin, 100 store_put, commit
 *   store_get                store_get(txn NULL) of a random existing key
 *                            (the value comes back malloc'd; freed)
 *   store_stat               store_stat(txn NULL) of a random existing key
 *   lmdb_put_1_per_txn       mdb_txn_begin, mdb_put, mdb_txn_commit
 *   lmdb_put_100_per_txn     the same with 100 mdb_put per transaction
 *   lmdb_get                 mdb_txn_renew, mdb_get, copy the value out,
 *                            mdb_txn_reset (one read txn reused)
 * and the ratios store/LMDB of the medians:
 *   store_put_1_per_txn_vs_lmdb, store_put_100_per_txn_vs_lmdb,
 *   store_get_vs_lmdb, store_stat_vs_lmdb (against lmdb_get).
 *
 * Fairness: the store is opened with default options (sync none). The
 * raw environment gets the flags the store uses for sync none (see
 * RAW_ENV_FLAGS: read from store.c's store_open) and the same map size,
 * so the ratio shows what the store's own work costs (record encoding,
 * binlog entry, meta record, parent check, version clock), not a
 * different durability setting.
 */
#include <errno.h>
#include <ftw.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

/* What store_open (store/store.c) passes to mdb_env_open for
 * STORE_SYNC_NONE, less MDB_NOSUBDIR, which only names the files. */
#define RAW_ENV_FLAGS \
	(MDB_NOTLS | MDB_NORDAHEAD | MDB_NOSYNC | MDB_NOMETASYNC | MDB_WRITEMAP)
#define RAW_MAP_SIZE STORE_DEFAULT_MAP_SIZE
#define VALUE_LEN 32
#define BATCH 100
#define MAX_REPS 101

enum fig {
	F_STORE_PUT1, F_STORE_PUT100, F_STORE_GET, F_STORE_STAT,
	F_LMDB_PUT1, F_LMDB_PUT100, F_LMDB_GET, F_COUNT
};

static const char *const fig_name[F_COUNT] = {
	"store_put_1_per_txn", "store_put_100_per_txn", "store_get",
	"store_stat", "lmdb_put_1_per_txn", "lmdb_put_100_per_txn", "lmdb_get",
};

struct bench {
	const char *base;     /* fresh directory of this run */
	unsigned n;
	char **keys;          /* "/k<i>" */
	unsigned *order;      /* random permutation-ish read order */
	char value[VALUE_LEN];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

static void rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void die(const char *what, int err)
{
	fprintf(stderr, "store_bench: %s: %s\n", what,
		err < 0 ? store_strerror(err) : mdb_strerror(err));
	exit(1);
}

/* ---- the store ---- */

static double store_puts(struct bench *b, const char *dir, unsigned batch)
{
	struct store_attr a = { .mode = 0644 };
	struct store *s;
	struct store_txn *t = NULL;
	double t0, t1;
	unsigned i;
	int err;

	err = store_open(dir, NULL, &s);
	if (err)
		die(store_last_error(), err);
	t0 = now_s();
	for (i = 0; i < b->n; i++) {
		if (batch > 1 && i % batch == 0) {
			err = store_txn_begin(s, 1, &t);
			if (err)
				die("store_txn_begin", err);
		}
		err = store_put(s, t, b->keys[i], b->value, VALUE_LEN, &a,
				STORE_ATTR_MODE, STORE_CREATE);
		if (err)
			die("store_put", err);
		if (batch > 1 && (i % batch == batch - 1 || i == b->n - 1)) {
			err = store_txn_commit(&t);
			if (err)
				die("store_txn_commit", err);
		}
	}
	t1 = now_s();
	store_close(&s);
	return b->n / (t1 - t0);
}

/* Gets (stat_only 0) or stats of random keys of the store in `dir`. */
static double store_reads(struct bench *b, const char *dir, int stat_only)
{
	struct store *s;
	struct store_stat st;
	double t0, t1;
	unsigned i;
	int err;

	err = store_open(dir, NULL, &s);
	if (err)
		die(store_last_error(), err);
	t0 = now_s();
	for (i = 0; i < b->n; i++) {
		const char *k = b->keys[b->order[i]];

		if (stat_only) {
			err = store_stat(s, NULL, k, &st);
			if (!err && st.size != VALUE_LEN)
				err = -EIO;
		} else {
			void *val;
			size_t len;

			err = store_get(s, NULL, k, &st, &val, &len);
			if (!err) {
				if (len != VALUE_LEN || memcmp(val, b->value, len))
					err = -EIO;
				free(val);
			}
		}
		if (err)
			die(stat_only ? "store_stat" : "store_get", err);
	}
	t1 = now_s();
	store_close(&s);
	return b->n / (t1 - t0);
}

/* ---- raw LMDB ---- */

static MDB_env *raw_open(const char *dir, MDB_dbi *dbi)
{
	MDB_env *env;
	MDB_txn *txn;
	int rc;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		die(dir, -errno);
	if ((rc = mdb_env_create(&env)) ||
	    (rc = mdb_env_set_mapsize(env, RAW_MAP_SIZE)) ||
	    (rc = mdb_env_open(env, dir, RAW_ENV_FLAGS, 0644)))
		die("mdb_env_open", rc);
	if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) ||
	    (rc = mdb_dbi_open(txn, NULL, 0, dbi)) ||
	    (rc = mdb_txn_commit(txn)))
		die("mdb_dbi_open", rc);
	return env;
}

static double raw_puts(struct bench *b, const char *dir, unsigned batch)
{
	MDB_dbi dbi;
	MDB_env *env = raw_open(dir, &dbi);
	MDB_txn *txn = NULL;
	double t0, t1;
	unsigned i;
	int rc;

	t0 = now_s();
	for (i = 0; i < b->n; i++) {
		MDB_val k = { strlen(b->keys[i]), b->keys[i] };
		MDB_val v = { VALUE_LEN, b->value };

		if (i % batch == 0 && (rc = mdb_txn_begin(env, NULL, 0, &txn)))
			die("mdb_txn_begin", rc);
		if ((rc = mdb_put(txn, dbi, &k, &v, 0)))
			die("mdb_put", rc);
		if (i % batch == batch - 1 || i == b->n - 1) {
			if ((rc = mdb_txn_commit(txn)))
				die("mdb_txn_commit", rc);
		}
	}
	t1 = now_s();
	mdb_env_close(env);
	return b->n / (t1 - t0);
}

static double raw_gets(struct bench *b, const char *dir)
{
	MDB_dbi dbi;
	MDB_env *env = raw_open(dir, &dbi);
	MDB_txn *txn;
	char copy[VALUE_LEN];
	double t0, t1;
	unsigned i;
	int rc;

	if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)))
		die("mdb_txn_begin", rc);
	mdb_txn_reset(txn);
	t0 = now_s();
	for (i = 0; i < b->n; i++) {
		const char *key = b->keys[b->order[i]];
		MDB_val k = { strlen(key), (void *)key }, v;

		if ((rc = mdb_txn_renew(txn)) || (rc = mdb_get(txn, dbi, &k, &v)))
			die("mdb_get", rc);
		if (v.mv_size != VALUE_LEN)
			die("mdb_get size", EIO);
		memcpy(copy, v.mv_data, VALUE_LEN);
		mdb_txn_reset(txn);
		if (memcmp(copy, b->value, VALUE_LEN))
			die("mdb_get value", EIO);
	}
	t1 = now_s();
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return b->n / (t1 - t0);
}

/* ---- main ---- */

static void usage(void)
{
	fprintf(stderr, "usage: store_bench [-n N] [-r REPS] [-d DIR]\n");
	exit(2);
}

static unsigned parse_uint(const char *s, unsigned min, unsigned max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "store_bench: bad number '%s' (%u..%u)\n", s, min, max);
		exit(2);
	}
	return v;
}

static void sub_dir(char *buf, size_t size, const char *base, const char *what,
		    unsigned r)
{
	if (snprintf(buf, size, "%s/%s%u", base, what, r) >= (int)size) {
		fprintf(stderr, "store_bench: directory name too long\n");
		exit(2);
	}
}

int main(int argc, char **argv)
{
	struct bench b = { .n = 200000 };
	const char *parent = "/dev/shm";
	double fig[F_COUNT][MAX_REPS], med[F_COUNT];
	char base[4096], dir[4200];
	unsigned reps = 5, r, i;
	uint64_t x = 88172645463325252ULL;
	int opt;

	while ((opt = getopt(argc, argv, "n:r:d:")) != -1) {
		switch (opt) {
		case 'n':
			b.n = parse_uint(optarg, 1, 100000000);
			break;
		case 'r':
			reps = parse_uint(optarg, 1, MAX_REPS);
			break;
		case 'd':
			parent = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	b.keys = calloc(b.n, sizeof(*b.keys));
	b.order = calloc(b.n, sizeof(*b.order));
	if (!b.keys || !b.order)
		die("out of memory", -ENOMEM);
	for (i = 0; i < b.n; i++) {
		char k[32];

		snprintf(k, sizeof(k), "/k%u", i);
		b.keys[i] = strdup(k);
		if (!b.keys[i])
			die("out of memory", -ENOMEM);
		x ^= x << 13; /* xorshift64: the same order every run */
		x ^= x >> 7;
		x ^= x << 17;
		b.order[i] = x % b.n;
	}
	memset(b.value, 'v', VALUE_LEN);
	if (snprintf(base, sizeof(base), "%s/store_bench.%d", parent,
		     (int)getpid()) >= (int)sizeof(base) || mkdir(base, 0700) < 0) {
		fprintf(stderr, "store_bench: cannot create %s/store_bench.%d: %s\n",
			parent, (int)getpid(), strerror(errno));
		return 1;
	}
	b.base = base;

	for (r = 0; r < reps; r++) {
		sub_dir(dir, sizeof(dir), base, "store1_", r);
		fig[F_STORE_PUT1][r] = store_puts(&b, dir, 1);
		fig[F_STORE_GET][r] = store_reads(&b, dir, 0);
		fig[F_STORE_STAT][r] = store_reads(&b, dir, 1);
		rm_tree(dir);
		sub_dir(dir, sizeof(dir), base, "store100_", r);
		fig[F_STORE_PUT100][r] = store_puts(&b, dir, BATCH);
		rm_tree(dir);

		sub_dir(dir, sizeof(dir), base, "lmdb1_", r);
		fig[F_LMDB_PUT1][r] = raw_puts(&b, dir, 1);
		fig[F_LMDB_GET][r] = raw_gets(&b, dir);
		rm_tree(dir);
		sub_dir(dir, sizeof(dir), base, "lmdb100_", r);
		fig[F_LMDB_PUT100][r] = raw_puts(&b, dir, BATCH);
		rm_tree(dir);
	}
	rm_tree(base);

	for (i = 0; i < F_COUNT; i++) {
		med[i] = median(fig[i], reps);
		printf("%s %.0f ops/s\n", fig_name[i], med[i]);
	}
	printf("store_put_1_per_txn_vs_lmdb %.2f ratio\n",
	       med[F_STORE_PUT1] / med[F_LMDB_PUT1]);
	printf("store_put_100_per_txn_vs_lmdb %.2f ratio\n",
	       med[F_STORE_PUT100] / med[F_LMDB_PUT100]);
	printf("store_get_vs_lmdb %.2f ratio\n", med[F_STORE_GET] / med[F_LMDB_GET]);
	printf("store_stat_vs_lmdb %.2f ratio\n", med[F_STORE_STAT] / med[F_LMDB_GET]);
	for (i = 0; i < b.n; i++)
		free(b.keys[i]);
	free(b.keys);
	free(b.order);
	return 0;
}
