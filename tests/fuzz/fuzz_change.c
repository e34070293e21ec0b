/*
 * fuzz_change.c — libFuzzer target for the store's wire decoders and for
 * store_apply_remote, the store's entry point for peers' bytes.
 *
 * An input is one encoded change (store_change_encode's format), or
 * several joined by FUZZ_SEP; the pieces are applied in order to the
 * same scratch store, so that sequences (a write, then a concurrent
 * write whose version vector must be merged with it) are reachable from
 * one input and reproducible from one file. For each piece:
 *
 *   1. store_change_decode. If it fails it must say -EPROTO, and the
 *      piece is also fed to store_rec_decode as a bare record.
 *   2. A decoded change must re-encode (store_change_encode) to exactly
 *      the bytes it came from.
 *   3. store_rec_decode on its record, twice: once in place, once from a
 *      private exact-size copy. Both must agree on every field and on
 *      where value, version vector and xattrs sit, and those must lie
 *      inside the record (the copy makes AddressSanitizer catch any read
 *      past the record's end).
 *   4. store_apply_remote on the scratch store. Its result must be an
 *      enum store_apply or a negative errno.
 *   5. If it landed (applied, conflict won): use it the way a mount
 *      would, since peers' fields reach those paths too: stat, get,
 *      read, list, every xattr, a touch (which renews the TTL), a sweep
 *      (which ages tombstones); then read the binlog entry it made and
 *      check that it decodes and round-trips.
 *
 * Only the public store.h API is used: the target knows nothing of the
 * byte layout, so it keeps working when the record format changes.
 *
 * What fails (abort, or a sanitizer report): a crash, a leak, undefined
 * behaviour, a round-trip mismatch, a result outside the documented
 * ones. What does not: an input that is rejected. Whether the store
 * accepts or refuses a strange change is its own business; the target
 * checks that it does either cleanly. One exception, on unless
 * STATEFS_FUZZ_STRICT=0 (strict mode): what the store accepted it must
 * read back and keep consistent, so the target also aborts on -EIO
 * right after an accepted change (a record or binlog entry that the
 * store's own decoder refuses) and when store_check finds a problem
 * after an input that landed something.
 *
 * The scratch store lives in a mkdtemp directory under $STATEFS_FUZZ_TMP
 * (default /dev/shm), with a small map. It is recreated every
 * FUZZ_RESET_EVERY inputs (STATEFS_FUZZ_RESET_EVERY overrides; 1 makes
 * every input start from an empty store) and whenever it fills or
 * fails, and removed at a normal exit and when a check of this file
 * aborts. A sanitizer report or a timeout ends the process without
 * that: run.sh points STATEFS_FUZZ_TMP at a directory of its own and
 * removes that.
 *
 * Because the store carries state from input to input, a crash found
 * while fuzzing may need earlier inputs; run.sh retries a crash input
 * alone, and the minimizer keeps what reproduces from an empty store.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "store/store.h"
#include "tests/fuzz/fuzz_common.h"

/* FUZZ_SEP (fuzz_common.h) joins changes; libFuzzer learns it from the
 * memmem below. */
#define FUZZ_MAX_PIECES 16

#define FUZZ_MAP_SIZE (16ULL << 20)
#define FUZZ_RESET_EVERY 512

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch_dir[4096];  /* the mkdtemp directory */
static char scratch_store[4200]; /* the store directory inside it */
static struct store *scratch;
static unsigned since_reset, reset_every = FUZZ_RESET_EVERY;
static int need_reset, strict, landed;

/* ---- the scratch store ---- */

/* Remove the store directory's files. Safe in a dying process: no store
 * call, no allocation. */
static void scratch_wipe(void)
{
	DIR *d;
	struct dirent *e;

	if (!scratch_store[0])
		return;
	d = opendir(scratch_store);
	if (d) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(dirfd(d), e->d_name, 0);
		}
		closedir(d);
	}
	rmdir(scratch_store);
}

static void scratch_remove(void)
{
	scratch_wipe();
	if (scratch_dir[0])
		rmdir(scratch_dir);
	scratch_dir[0] = scratch_store[0] = '\0';
}

static void scratch_at_exit(void)
{
	store_close(&scratch);
	scratch_remove();
}

static void scratch_open(void)
{
	struct store_opts o = {
		.map_size = FUZZ_MAP_SIZE,
		.max_value = FUZZ_MAX_VALUE,
		.node_name = "fuzz",
		.binlog_max = 256,
		.clock = fuzz_clock,
	};
	int err;

	store_close(&scratch);
	scratch_wipe();
	err = store_open(scratch_store, &o, &scratch);
	if (err) {
		fprintf(stderr, "fuzz_change: cannot open a scratch store: %s\n",
			store_last_error());
		scratch_remove();
		exit(1);
	}
	since_reset = 0;
	need_reset = 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("STATEFS_FUZZ_TMP");
	const char *every = getenv("STATEFS_FUZZ_RESET_EVERY");

	(void)argc;
	(void)argv;
	if (!tmp || !*tmp)
		tmp = "/dev/shm";
	if (every) {
		unsigned long n = strtoul(every, NULL, 10);

		if (n > 0 && n < 1000000)
			reset_every = (unsigned)n;
	}
	strict = !getenv("STATEFS_FUZZ_STRICT") ||
		 strcmp(getenv("STATEFS_FUZZ_STRICT"), "0") != 0;
	/* The store logs a refused record as an error; thousands a second
	 * would drown libFuzzer's own output. */
	log_init("fuzz_change", getenv("STATEFS_FUZZ_VERBOSE") ? LOG_DEBUG :
							       LOG_FATAL);
	if ((size_t)snprintf(scratch_dir, sizeof(scratch_dir),
			     "%s/statefs-fuzz.XXXXXX",
			     tmp) >= sizeof(scratch_dir) ||
	    !mkdtemp(scratch_dir)) {
		fprintf(stderr, "fuzz_change: mkdtemp under %s failed\n", tmp);
		exit(1);
	}
	snprintf(scratch_store, sizeof(scratch_store), "%s/s", scratch_dir);
	/* Not __sanitizer_set_death_callback: libFuzzer installs its own
	 * after this function returns (the one that saves the crash input)
	 * and there is only one. */
	atexit(scratch_at_exit);
	scratch_open();
	return 0;
}

/* ---- checks ---- */

static void __attribute__((noreturn, format(printf, 1, 2)))
bug(const char *fmt, ...);

static void bug(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_change: BUG: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	scratch_remove();
	abort();
}

static int stat_eq(const struct store_stat *a, const struct store_stat *b)
{
	for (int i = 0; i < STORE_FIELDS; i++)
		if (a->fver[i].hlc != b->fver[i].hlc ||
		    a->fver[i].node != b->fver[i].node)
			return 0;
	return a->type == b->type && a->mode == b->mode && a->uid == b->uid &&
	       a->gid == b->gid && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns &&
	       a->atime_ns == b->atime_ns &&
	       a->expires_ns == b->expires_ns && a->ttl_ms == b->ttl_ms &&
	       a->version.hlc == b->version.hlc &&
	       a->version.node == b->version.node &&
	       a->origin_seq == b->origin_seq && a->nvv == b->nvv &&
	       a->xattr_len == b->xattr_len;
}

/* p (n bytes) lies within [base, base + len]. */
static int inside(const void *p, uint64_t n, const void *base, size_t len)
{
	const unsigned char *q = p, *b = base;

	return q >= b && q <= b + len && n <= (uint64_t)(b + len - q);
}

/* Decode a record twice (in place and from a private exact-size copy)
 * and check that both agree. Returns store_rec_decode's result. */
static int check_rec(const void *rec, size_t len, struct store_stat *out)
{
	struct store_stat st1, st2, st3;
	const void *v1, *vv1, *x1, *v2, *vv2, *x2;
	unsigned char *copy = malloc(len ? len : 1);
	int err1, err2, err3;

	if (!copy)
		abort();
	memcpy(copy, rec, len);
	err1 = store_rec_decode(rec, len, &st1, &v1, &vv1, &x1);
	err2 = store_rec_decode(copy, len, &st2, &v2, &vv2, &x2);
	err3 = store_rec_decode(copy, len, &st3, NULL, NULL, NULL);
	if (err1 != err2 || err1 != err3)
		bug("store_rec_decode gave %d, %d, %d for the same bytes",
		    err1, err2, err3);
	if (err1) {
		if (err1 != -EPROTO)
			bug("store_rec_decode returned %d, not -EPROTO", err1);
		free(copy);
		return err1;
	}
	if (!stat_eq(&st1, &st2) || !stat_eq(&st1, &st3))
		bug("a record decoded twice gave different fields");
	if (st1.type < STORE_FILE || st1.type > STORE_PLACEHOLDER)
		bug("a decoded record has type %d", (int)st1.type);
	if ((const unsigned char *)v1 - (const unsigned char *)rec !=
		    (const unsigned char *)v2 - copy ||
	    (const unsigned char *)vv1 - (const unsigned char *)rec !=
		    (const unsigned char *)vv2 - copy ||
	    (const unsigned char *)x1 - (const unsigned char *)rec !=
		    (const unsigned char *)x2 - copy)
		bug("a record decoded twice put its parts at different offsets");
	if (!inside(v2, st2.size, copy, len) ||
	    !inside(x2, st2.xattr_len, copy, len) || !inside(vv2, 0, copy, len))
		bug("a decoded record's value or xattrs lie outside it");
	for (unsigned i = 0; i < st2.nvv; i++) {
		struct store_vv_entry a = store_vv_at(vv1, i);
		struct store_vv_entry b = store_vv_at(vv2, i);

		if (a.node != b.node || a.seq != b.seq)
			bug("version vector entry %u differs between decodes",
			    i);
	}
	free(copy);
	if (out)
		*out = st1;
	return 0;
}

/* A change that decodes must encode back to the very same bytes. */
static void check_change_roundtrip(const void *buf, size_t len,
				   const struct store_change *c)
{
	void *out = NULL;
	size_t olen = 0;
	int err;

	if (c->path_len == 0 || !inside(c->path, c->path_len, buf, len) ||
	    !inside(c->rec, c->rec_len, buf, len))
		bug("a decoded change points outside its bytes");
	err = store_change_encode(c, &out, &olen);
	if (err)
		bug("a decoded change does not encode: %d", err);
	if (olen != len || memcmp(out, buf, len) != 0)
		bug("a decoded change encodes to other bytes (%zu, was %zu)",
		    olen, len);
	free(out);
}

/* ---- using what landed ---- */

static int count_cb(void *arg, const char *name, size_t name_len,
		    const struct store_stat *st)
{
	unsigned *n = arg;

	(void)name;
	(void)name_len;
	(void)st;
	return ++*n >= 8; /* enough: stop the listing */
}

/* The newest binlog entry: decodes and round-trips like a peer's. */
static int last_entry_cb(void *arg, const struct store_change *c)
{
	void *buf = NULL;
	size_t len = 0;
	struct store_change d;
	int err;

	(void)arg;
	err = store_change_encode(c, &buf, &len);
	if (err)
		bug("a binlog entry does not encode: %d", err);
	if (store_change_decode(buf, len, &d) != 0)
		bug("an encoded binlog entry does not decode");
	check_change_roundtrip(buf, len, &d);
	if (check_rec(d.rec, d.rec_len, NULL) != 0)
		bug("a binlog entry's record does not decode");
	free(buf);
	return 0;
}

/* An error from a store that just accepted a change. -EIO: the store
 * cannot read what it wrote. */
static void after(const char *what, long err)
{
	if (err == -EIO && strict)
		bug("%s: -EIO right after the store accepted a change", what);
	if (err == -EIO || err == -ENOSPC || err == -ENOMEM)
		need_reset = 1;
}

static void use_path(const char *path)
{
	struct store_stat st;
	struct store_attr a = { 0 };
	void *val = NULL;
	size_t len;
	char small[16], *names;
	ssize_t n;
	unsigned count = 0;
	uint64_t last;
	int err;

	err = store_stat(scratch, NULL, path, &st);
	after("store_stat", err);
	if (err)
		return;
	err = store_get(scratch, NULL, path, NULL, &val, &len);
	after("store_get", err);
	free(val);
	after("store_read", store_read(scratch, NULL, path, st.size / 2, small,
				       sizeof(small)));
	if (st.type == STORE_DIR)
		after("store_list",
		      store_list(scratch, NULL, path, NULL, count_cb, &count));
	n = store_xattr_list(scratch, NULL, path, NULL, 0);
	after("store_xattr_list", n);
	if (n > 0 && (names = malloc((size_t)n)) != NULL) {
		ssize_t m = store_xattr_list(scratch, NULL, path, names,
					     (size_t)n);

		after("store_xattr_list", m);
		for (ssize_t i = 0; i < m; i += (ssize_t)strlen(names + i) + 1)
			after("store_xattr_get",
			      store_xattr_get(scratch, NULL, path, names + i,
					      small, sizeof(small)));
		free(names);
	}
	/* A touch renews the deadline from the peer's TTL. */
	after("store_setattr",
	      store_setattr(scratch, NULL, path, &a, STORE_ATTR_TOUCH));
	after("store_sweep", store_sweep(scratch, 16));
	last = store_last_seq(scratch);
	if (last)
		after("store_binlog_read",
		      store_binlog_read(scratch, last - 1, 1, last_entry_cb,
					NULL));
}

/* ---- one change ---- */

static void one_change(const unsigned char *piece, size_t len)
{
	/* A private exact-size copy: a read past the piece is a report. */
	unsigned char *buf = malloc(len ? len : 1);
	struct store_change c;
	struct store_stat st;
	char *path;
	int err, r;

	if (!buf)
		abort();
	memcpy(buf, piece, len);
	err = store_change_decode(buf, len, &c);
	if (err) {
		if (err != -EPROTO)
			bug("store_change_decode returned %d, not -EPROTO",
			    err);
		check_rec(buf, len, NULL);
		free(buf);
		return;
	}
	check_change_roundtrip(buf, len, &c);
	if (check_rec(c.rec, c.rec_len, &st) != 0)
		bug("store_change_decode accepted a change whose record "
		    "store_rec_decode refuses");
	r = store_apply_remote(scratch, NULL, &c);
	if (r < 0) {
		/* -EPROTO, -EFBIG, -E2BIG: refused before anything was
		 * written; the others may leave the store unusable. */
		if (r == -ENOSPC || r == -EIO || r == -ENOMEM || r == -EAGAIN)
			need_reset = 1;
	} else if (r > STORE_TOO_OLD) {
		bug("store_apply_remote returned %d", r);
	} else if (r == STORE_APPLIED || r == STORE_CONFLICT_WON) {
		landed = 1;
		path = malloc(c.path_len + 1);
		if (!path)
			abort();
		memcpy(path, c.path, c.path_len);
		path[c.path_len] = '\0';
		use_path(path);
		free(path);
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *p = data, *end = data + size, *sep;
	unsigned pieces = 0;

	if (need_reset || ++since_reset > reset_every)
		scratch_open();
	landed = 0;
	while (pieces++ < FUZZ_MAX_PIECES) {
		sep = memmem(p, (size_t)(end - p), FUZZ_SEP, FUZZ_SEP_LEN);
		one_change(p, sep ? (size_t)(sep - p) : (size_t)(end - p));
		if (!sep || need_reset)
			break;
		p = sep + FUZZ_SEP_LEN;
	}
	/* Strict: what the store accepted must leave it consistent by its
	 * own check (every record and binlog entry decodes, every parent
	 * has a record, the counts match). A scratch store is small. */
	if (strict && landed && !need_reset) {
		char msg[256];

		int err = store_check(scratch, msg, sizeof(msg));

		if (err == -EUCLEAN)
			bug("store_check after this input: %s", msg);
		after("store_check", err);
	}
	return 0;
}
