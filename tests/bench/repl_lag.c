/*
 * repl_lag.c — replication lag through real mounts: how long after a
 * write committed on one node the value reads back through another
 * node's mount (for repl_bench.sh).
 *
 *   repl_lag [-r RATE] [-s SECONDS] [-n NAME] WRITE_FILE READ_FILE
 *
 * WRITE_FILE is a file in the first node's mount, READ_FILE the same key
 * in the far node's mount. A writer thread writes "SEQ\n" (SEQ from 1)
 * into WRITE_FILE RATE (1000) times a second for SECONDS (30), each time
 * open(O_WRONLY|O_TRUNC), write, close: statefs publishes the value in
 * one commit at that close. The instant close returns is the commit time
 * of SEQ (CLOCK_MONOTONIC). Writes follow an absolute schedule
 * (clock_nanosleep TIMER_ABSTIME); a writer that falls behind does not
 * make up the lost slots.
 *
 * The reader thread keeps READ_FILE open read-only and poll()s it
 * (statefs wakes a poll on an open file when its record changes, by any
 * node), then preads the value. Seeing SEQ means every sequence up to
 * SEQ is visible or superseded, so each of them gets that instant as
 * its visible time. poll has a 20 ms timeout after which the reader
 * reads anyway; values first found that way are counted
 * (`_missed_wakeups`): a missed wake-up shows as lag, not as a hang.
 *
 * Lag = visible - committed, per sequence; a negative one (the reader
 * saw it before the writer's close returned) counts as 0. Prints
 * `NAME_p50 MS ms`, `NAME_p99`, `NAME_max`, `NAME_writes` (sequences
 * written) and `NAME_write_rate` (achieved writes/s). Exit 1 if a
 * sequence never became visible within 5 s of the last write.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *wfile, *rfile, *name = "repl_lag";
static long rate = 1000, seconds = 30;
static uint64_t nseq;                 /* sequences planned */
static int64_t *t_commit, *t_seen;    /* ns, indexed by seq; 0: not yet */
static _Atomic uint64_t written;      /* last seq whose close returned */
static _Atomic int writer_done;
static uint64_t missed;               /* found by a poll timeout */

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int write_value(uint64_t seq)
{
	char buf[32];
	int fd, n = snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)seq);

	fd = open(wfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, n) != n) {
		int err = -errno;

		close(fd);
		return err ? err : -EIO;
	}
	return close(fd) ? -errno : 0;
}

static void *writer(void *arg)
{
	struct timespec next;
	uint64_t seq;
	long step = 1000000000L / rate;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (seq = 1; seq <= nseq; seq++) {
		int err = write_value(seq);

		if (err) {
			fprintf(stderr, "repl_lag: write %s: %s\n", wfile, strerror(-err));
			break;
		}
		t_commit[seq] = mono_ns();
		atomic_store(&written, seq);
		next.tv_nsec += step;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		/* behind schedule: skip the slots already past */
		if (mono_ns() > (int64_t)next.tv_sec * 1000000000 + next.tv_nsec) {
			int64_t n = mono_ns();

			next.tv_sec = n / 1000000000;
			next.tv_nsec = n % 1000000000;
			continue;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	atomic_store(&writer_done, 1);
	return NULL;
}

static uint64_t read_seq(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtoull(buf, NULL, 10);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	pthread_t wt;
	struct pollfd pfd;
	uint64_t seen = 0, last, i, n = 0;
	int64_t *lag, done_at = 0;
	int o, fd;

	while ((o = getopt(argc, argv, "r:s:n:")) != -1) {
		switch (o) {
		case 'r':
			rate = strtol(optarg, NULL, 10);
			break;
		case 's':
			seconds = strtol(optarg, NULL, 10);
			break;
		case 'n':
			name = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (argc - optind != 2 || rate <= 0 || rate > 1000000 || seconds <= 0)
		goto usage;
	wfile = argv[optind];
	rfile = argv[optind + 1];
	nseq = (uint64_t)rate * seconds;
	t_commit = calloc(nseq + 1, sizeof(*t_commit));
	t_seen = calloc(nseq + 1, sizeof(*t_seen));
	lag = calloc(nseq + 1, sizeof(*lag));
	if (!t_commit || !t_seen || !lag)
		return 1;

	/* the key exists on both sides before the clock starts */
	if (write_value(0)) {
		perror(wfile);
		return 1;
	}
	for (i = 0; (fd = open(rfile, O_RDONLY)) < 0; i++) {
		if (i > 1000) {
			fprintf(stderr, "repl_lag: %s did not appear in 10 s\n", rfile);
			return 1;
		}
		usleep(10000);
	}
	pfd.fd = fd;
	pfd.events = POLLIN | POLLPRI;
	poll(&pfd, 1, 0); /* arm the poll handle */
	if (pthread_create(&wt, NULL, writer, NULL))
		return 1;
	for (;;) {
		int r = poll(&pfd, 1, 20);
		uint64_t s = read_seq(fd);
		int64_t t = mono_ns();

		if (s > seen && s <= nseq) {
			if (r == 0)
				missed++;
			for (i = seen + 1; i <= s; i++)
				t_seen[i] = t;
			seen = s;
		}
		last = atomic_load(&written);
		if (atomic_load(&writer_done)) {
			if (seen >= last)
				break;
			if (!done_at)
				done_at = t;
			else if (t - done_at > 5000000000LL) {
				fprintf(stderr, "repl_lag: seq %llu never visible in %s "
					"(last seen %llu)\n", (unsigned long long)last,
					rfile, (unsigned long long)seen);
				return 1;
			}
		}
	}
	pthread_join(wt, NULL);
	for (i = 1; i <= last; i++) {
		if (!t_commit[i])
			continue;
		lag[n++] = t_seen[i] > t_commit[i] ? t_seen[i] - t_commit[i] : 0;
	}
	if (!n) {
		fprintf(stderr, "repl_lag: nothing written\n");
		return 1;
	}
	qsort(lag, n, sizeof(*lag), cmp_i64);
	printf("%s_p50 %.3f ms\n", name, lag[n / 2] / 1e6);
	printf("%s_p99 %.3f ms\n", name, lag[(n * 99) / 100] / 1e6);
	printf("%s_max %.3f ms\n", name, lag[n - 1] / 1e6);
	printf("%s_writes %llu writes\n", name, (unsigned long long)n);
	for (i = 1; i <= last && !t_commit[i]; i++)
		;
	if (n > 1 && t_commit[last] > t_commit[i])
		printf("%s_write_rate %.0f writes/s\n", name,
		       (double)(n - 1) * 1e9 / (t_commit[last] - t_commit[i]));
	printf("%s_missed_wakeups %llu reads\n", name, (unsigned long long)missed);
	close(fd);
	return 0;
usage:
	fprintf(stderr, "usage: repl_lag [-r RATE] [-s SECONDS] [-n NAME] "
		"WRITE_FILE READ_FILE\n");
	return 2;
}
