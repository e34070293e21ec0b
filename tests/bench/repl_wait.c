/*
 * repl_wait.c — wait until every node of a mesh holds what the first
 * node holds, cheaply, and say when each one got there (for
 * repl_bench.sh's import-to-convergence figures).
 *
 *   repl_wait [-i POLL_MS] [-t TIMEOUT_S] REF_STORE STORE...
 *
 * REF_STORE is the node the import ran on, after the import ended: its
 * own origin sequence (store_info local_seq) and its digest are the
 * target. Every STORE is opened once (read-only) and polled round robin
 * every POLL_MS (20) ms: one read transaction each for the store's
 * watermark of REF's origin (O(number of origins)). A node whose
 * watermark reached the target holds all of REF's changes (a peer
 * applies one origin's changes in order); the instant we saw it is its
 * convergence time. Only then, untimed, one store_digest per node (a
 * full scan: 0.3-1 s on a loaded 2-core machine, which is why it is not
 * what we poll) confirms that it holds the same data as REF. A digest
 * that differs is reported on stderr and polled until it matches, and
 * that node's time becomes the matching digest's start.
 *
 * Prints, per store, `STORE REALTIME_US` (CLOCK_REALTIME, microseconds)
 * and last `converged REALTIME_US`, the latest of them, for bash to
 * compare with $EPOCHREALTIME. Exit 0, or 1 (with a line on stderr) if a
 * node did not converge within TIMEOUT_S (120) seconds or a store
 * cannot be opened.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct wm_find {
	uint64_t node, seq;
};

static int wm_cb(void *arg, uint64_t node, uint64_t seq)
{
	struct wm_find *w = arg;

	if (node == w->node)
		w->seq = seq;
	return 0;
}

static int open_store(const char *dir, struct store **sp)
{
	struct store_opts o;

	memset(&o, 0, sizeof(o));
	o.readonly = 1; /* never trims the binlog, never creates */
	if (store_open(dir, &o, sp)) {
		fprintf(stderr, "repl_wait: %s: %s\n", dir, store_last_error());
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned char want[STORE_DIGEST_LEN], got[STORE_DIGEST_LEN];
	struct store_info info;
	struct store *ref = NULL, **st;
	int64_t deadline, last = 0, *at;
	int n, left;
	long poll_ms = 20, timeout_s = 120;
	int o, i;

	while ((o = getopt(argc, argv, "i:t:")) != -1) {
		switch (o) {
		case 'i':
			poll_ms = strtol(optarg, NULL, 10);
			break;
		case 't':
			timeout_s = strtol(optarg, NULL, 10);
			break;
		default:
			goto usage;
		}
	}
	if (argc - optind < 2 || poll_ms <= 0 || timeout_s <= 0)
		goto usage;
	if (open_store(argv[optind], &ref) || store_info(ref, &info) ||
	    store_digest(ref, want)) {
		fprintf(stderr, "repl_wait: %s: cannot read the reference\n",
			argv[optind]);
		return 1;
	}
	n = argc - optind - 1;
	st = calloc(n, sizeof(*st));
	at = calloc(n, sizeof(*at));
	if (!st || !at)
		return 1;
	for (i = 0; i < n; i++)
		if (open_store(argv[optind + 1 + i], &st[i]))
			return 1;
	deadline = now_us() + (int64_t)timeout_s * 1000000;
	/* 1: the watermarks, all nodes round robin */
	for (left = n; left;) {
		int64_t t = now_us();

		for (i = 0; i < n; i++) {
			struct wm_find w = { info.node_id, 0 };

			if (at[i] || store_watermarks(st[i], wm_cb, &w) ||
			    w.seq < info.local_seq)
				continue;
			at[i] = now_us();
			left--;
		}
		if (!left)
			break;
		if (t > deadline) {
			for (i = 0; i < n; i++)
				if (!at[i])
					fprintf(stderr, "repl_wait: %s: not converged "
						"after %ld s\n", argv[optind + 1 + i],
						timeout_s);
			return 1;
		}
		usleep(poll_ms * 1000);
	}
	/* 2: the digests confirm; a node that differs is polled again */
	for (i = 0; i < n; i++) {
		const char *dir = argv[optind + 1 + i];
		int64_t t = at[i];

		while (store_digest(st[i], got) || memcmp(got, want, sizeof(want))) {
			if (t == at[i])
				fprintf(stderr, "repl_wait: %s: watermark reached but "
					"digest differs; polling the digest\n", dir);
			if (now_us() > deadline) {
				fprintf(stderr, "repl_wait: %s: digest still differs "
					"after %ld s\n", dir, timeout_s);
				return 1;
			}
			usleep(poll_ms * 1000);
			t = now_us();
		}
		at[i] = t;
		store_close(&st[i]);
		printf("%s %" PRId64 "\n", dir, t);
		if (t > last)
			last = t;
	}
	printf("converged %" PRId64 "\n", last);
	store_close(&ref);
	return 0;
usage:
	fprintf(stderr, "usage: repl_wait [-i POLL_MS] [-t TIMEOUT_S] REF_STORE STORE...\n");
	return 2;
}
