/*
 * store_torture.c — a small program that drives the store from many
 * processes at once, for the process tests (tests/integration/store_*.sh).
 *
 *   store_torture write DIR ID N SHARED
 *       N keys /p<ID>/k<i> = "<ID>:<i>", one transaction each; for
 *       i < SHARED also /shared/s<i> = "<ID>:<i>" (keys that every writer
 *       writes, so writers contend on them).
 *   store_torture check DIR NPROC N SHARED
 *       every /p<ID>/k<i> of every writer present with its exact value,
 *       every /shared/s<i> present with a value one of the writers wrote,
 *       nothing else under /p<ID>; the record and binlog counts match the
 *       changes the writers made. Prints what it found.
 *   store_torture batch DIR N
 *       forever: one transaction of N puts /b/<batch>/<i> = "<batch>:<i>",
 *       then prints the batch number (flushed). Resumes after the highest
 *       batch present.
 *   store_torture batches DIR N REPORTED
 *       batches 0..REPORTED-1 are all present and complete; every batch
 *       present is complete (all N keys, exact values) and the batches
 *       present are exactly 0..M-1 (M = REPORTED or REPORTED+1: the writer
 *       may die between its commit and its report). Prints M.
 *   store_torture hold DIR
 *       opens a read transaction, prints "holding" and sleeps forever.
 *
 * Exit: 0 ok, 1 a check failed (each failure printed), 2 usage, 3 a store
 * error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: store_torture write DIR ID N SHARED\n"
		"       store_torture check DIR NPROC N SHARED\n"
		"       store_torture batch DIR N\n"
		"       store_torture batches DIR N REPORTED\n"
		"       store_torture hold DIR\n");
	return 2;
}

static int store_fail(const char *what, int err)
{
	fprintf(stderr, "store_torture: %s: %s\n", what, store_strerror(err));
	return 3;
}

static struct store *open_or_die(const char *dir)
{
	struct store *s = NULL;
	int err = store_open(dir, NULL, &s);

	if (err) {
		fprintf(stderr, "store_torture: %s\n", store_last_error());
		exit(3);
	}
	return s;
}

static int put_one(struct store *s, struct store_txn *t, const char *path,
		   const char *val)
{
	return store_put(s, t, path, val, strlen(val), NULL, 0,
			 STORE_CREATE | STORE_PARENTS);
}

static int cmd_write(const char *dir, uint64_t id, uint64_t n, uint64_t shared)
{
	struct store *s = open_or_die(dir);
	char path[64], val[64];
	uint64_t i;
	int err;

	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/p%" PRIu64 "/k%" PRIu64, id, i);
		snprintf(val, sizeof(val), "%" PRIu64 ":%" PRIu64, id, i);
		err = put_one(s, NULL, path, val);
		if (err)
			return store_fail(path, err);
		if (i < shared) {
			snprintf(path, sizeof(path), "/shared/s%" PRIu64, i);
			err = put_one(s, NULL, path, val);
			if (err)
				return store_fail(path, err);
		}
	}
	store_close(&s);
	return 0;
}

struct count {
	uint64_t n;
};

static int count_cb(void *arg, const char *name, size_t name_len,
		    const struct store_stat *st)
{
	struct count *c = arg;

	(void)name;
	(void)name_len;
	(void)st;
	c->n++;
	return 0;
}

static int expect_value(struct store *s, const char *path, const char *want,
			int *fails)
{
	void *v = NULL;
	size_t len;
	int err = store_get(s, NULL, path, NULL, &v, &len);

	if (err) {
		printf("FAIL %s: %s\n", path, store_strerror(err));
		(*fails)++;
		return err;
	}
	if (len != strlen(want) || memcmp(v, want, len)) {
		printf("FAIL %s: got '%.*s', want '%s'\n", path, (int)len,
		       (char *)v, want);
		(*fails)++;
	}
	free(v);
	return 0;
}

static int cmd_check(const char *dir, uint64_t nproc, uint64_t n,
		     uint64_t shared)
{
	struct store *s = open_or_die(dir);
	struct store_info in;
	char path[64], val[64];
	uint64_t id, i, want_records, want_changes;
	int fails = 0, err;

	for (id = 0; id < nproc; id++) {
		struct count c = { 0 };

		for (i = 0; i < n; i++) {
			snprintf(path, sizeof(path),
				 "/p%" PRIu64 "/k%" PRIu64, id, i);
			snprintf(val, sizeof(val), "%" PRIu64 ":%" PRIu64, id,
				 i);
			expect_value(s, path, val, &fails);
		}
		snprintf(path, sizeof(path), "/p%" PRIu64, id);
		err = store_list(s, NULL, path, NULL, count_cb, &c);
		if (err || c.n != n) {
			printf("FAIL %s: %" PRIu64 " children (%s), want %"
			       PRIu64 "\n", path, c.n,
			       err ? store_strerror(err) : "ok", n);
			fails++;
		}
	}
	for (i = 0; i < shared; i++) {
		void *v = NULL;
		size_t len;
		uint64_t who;
		char want[64];

		snprintf(path, sizeof(path), "/shared/s%" PRIu64, i);
		err = store_get(s, NULL, path, NULL, &v, &len);
		if (err) {
			printf("FAIL %s: %s\n", path, store_strerror(err));
			fails++;
			continue;
		}
		for (who = 0; who < nproc; who++) {
			snprintf(want, sizeof(want), "%" PRIu64 ":%" PRIu64,
				 who, i);
			if (len == strlen(want) && !memcmp(v, want, len))
				break;
		}
		if (who == nproc) {
			printf("FAIL %s: '%.*s' was written by nobody\n", path,
			       (int)len, (char *)v);
			fails++;
		}
		free(v);
	}
	err = store_info(s, &in);
	if (err)
		return store_fail("info", err);
	/* the root, /p<ID> and their keys, /shared and its keys */
	want_records = nproc * (1 + n) + (shared ? 1 + shared : 0); /* not / */
	/* every put is a change; each /p<ID> was created once, /shared once
	 * (by whichever writer came first) */
	want_changes = nproc * (n + shared + 1) + (shared ? 1 : 0);
	printf("records %" PRIu64 " (want %" PRIu64 "), binlog %" PRIu64
	       " (want %" PRIu64 "), last seq %" PRIu64 "\n", in.records,
	       want_records, in.binlog_count, want_changes,
	       store_last_seq(s));
	if (in.records != want_records) {
		printf("FAIL records\n");
		fails++;
	}
	/* (the local sequence is a clock value, not a count) */
	if (in.binlog_count != want_changes ||
	    store_last_seq(s) != want_changes) {
		printf("FAIL binlog count / last seq\n");
		fails++;
	}
	{
		char msg[256];

		if (store_check(s, msg, sizeof(msg))) {
			printf("FAIL store_check: %s\n", msg);
			fails++;
		}
	}
	store_close(&s);
	return fails ? 1 : 0;
}

struct batch_scan {
	uint64_t n;        /* batches present */
	uint64_t max;      /* highest batch number + 1 */
	int bad;           /* a name that is not a number */
};

static int batch_cb(void *arg, const char *name, size_t name_len,
		    const struct store_stat *st)
{
	struct batch_scan *b = arg;
	char buf[32];
	uint64_t v;

	(void)st;
	if (name_len >= sizeof(buf)) {
		b->bad = 1;
		return 0;
	}
	memcpy(buf, name, name_len);
	buf[name_len] = '\0';
	if (parse_u64(buf, &v)) {
		b->bad = 1;
		return 0;
	}
	b->n++;
	if (v + 1 > b->max)
		b->max = v + 1;
	return 0;
}

static int scan_batches(struct store *s, struct batch_scan *b)
{
	int err;

	memset(b, 0, sizeof(*b));
	err = store_list(s, NULL, "/b", NULL, batch_cb, b);
	return err == -ENOENT ? 0 : err;
}

static int cmd_batch(const char *dir, uint64_t n)
{
	struct store *s = open_or_die(dir);
	struct store_txn *t;
	struct batch_scan b;
	char path[64], val[64];
	uint64_t batch, i;
	int err;

	err = scan_batches(s, &b);
	if (err)
		return store_fail("list /b", err);
	for (batch = b.max;; batch++) {
		err = store_txn_begin(s, 1, &t);
		if (err)
			return store_fail("begin", err);
		for (i = 0; i < n && !err; i++) {
			snprintf(path, sizeof(path),
				 "/b/%" PRIu64 "/%" PRIu64, batch, i);
			snprintf(val, sizeof(val), "%" PRIu64 ":%" PRIu64,
				 batch, i);
			err = put_one(s, t, path, val);
		}
		if (err) {
			store_txn_abort(&t);
			return store_fail(path, err);
		}
		err = store_txn_commit(&t);
		if (err)
			return store_fail("commit", err);
		printf("%" PRIu64 "\n", batch);
		fflush(stdout);
	}
}

static int cmd_batches(const char *dir, uint64_t n, uint64_t reported)
{
	struct store *s = open_or_die(dir);
	struct batch_scan b;
	char path[64], val[64];
	uint64_t batch, i;
	int fails = 0, err;

	err = scan_batches(s, &b);
	if (err)
		return store_fail("list /b", err);
	if (b.bad) {
		printf("FAIL a name under /b is not a batch number\n");
		fails++;
	}
	if (b.n != b.max) {
		printf("FAIL %" PRIu64 " batches present, numbered up to %"
		       PRIu64 ": a gap\n", b.n, b.max);
		fails++;
	}
	if (b.max < reported || b.max > reported + 1) {
		printf("FAIL %" PRIu64 " batches present, %" PRIu64
		       " reported committed\n", b.max, reported);
		fails++;
	}
	for (batch = 0; batch < b.max; batch++) {
		struct count c = { 0 };

		snprintf(path, sizeof(path), "/b/%" PRIu64, batch);
		err = store_list(s, NULL, path, NULL, count_cb, &c);
		if (err || c.n != n) {
			printf("FAIL %s: %" PRIu64 " of %" PRIu64
			       " keys (%s): a partial batch\n", path, c.n, n,
			       err ? store_strerror(err) : "ok");
			fails++;
			continue;
		}
		for (i = 0; i < n; i++) {
			snprintf(path, sizeof(path),
				 "/b/%" PRIu64 "/%" PRIu64, batch, i);
			snprintf(val, sizeof(val), "%" PRIu64 ":%" PRIu64,
				 batch, i);
			expect_value(s, path, val, &fails);
		}
	}
	printf("%" PRIu64 "\n", b.max);
	store_close(&s);
	return fails ? 1 : 0;
}

static int cmd_hold(const char *dir)
{
	struct store *s = open_or_die(dir);
	struct store_txn *t;
	struct store_stat st;
	int err = store_txn_begin(s, 0, &t);

	if (err)
		return store_fail("begin", err);
	/* make sure the snapshot is really taken */
	err = store_stat(s, t, "/", &st);
	if (err)
		return store_fail("stat", err);
	printf("holding\n");
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	uint64_t a = 0, b = 0, c = 0;

	if (argc < 3)
		return usage();
	if (!strcmp(argv[1], "write") && argc == 6 && !parse_u64(argv[3], &a) &&
	    !parse_u64(argv[4], &b) && !parse_u64(argv[5], &c))
		return cmd_write(argv[2], a, b, c);
	if (!strcmp(argv[1], "check") && argc == 6 && !parse_u64(argv[3], &a) &&
	    !parse_u64(argv[4], &b) && !parse_u64(argv[5], &c))
		return cmd_check(argv[2], a, b, c);
	if (!strcmp(argv[1], "batch") && argc == 4 && !parse_u64(argv[3], &a) &&
	    a > 0)
		return cmd_batch(argv[2], a);
	if (!strcmp(argv[1], "batches") && argc == 5 &&
	    !parse_u64(argv[3], &a) && !parse_u64(argv[4], &b))
		return cmd_batches(argv[2], a, b);
	if (!strcmp(argv[1], "hold") && argc == 3)
		return cmd_hold(argv[2]);
	return usage();
}
