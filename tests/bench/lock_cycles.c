/*
 * lock_cycles.c — flock(LOCK_EX)/flock(LOCK_UN) cycles through any
 * directory (a statefs mount with mesh-wide locks, tmpfs...), the load
 * of tests/bench/lock_mesh_bench.sh.
 *
 *   lock_cycles DIR [--threads N] [--seconds S] [--contended]
 *               [--name NAME] [--tag TAG]
 *
 * N threads (default 1), each with its own open file description, loop
 * flock(fd, LOCK_EX) then flock(fd, LOCK_UN) for S seconds (default 3):
 * on one shared file DIR/lc.TAG (--contended) or on a file of their own,
 * DIR/lc.TAG.I (uncontended). TAG defaults to the pid, so several
 * instances on different mounts of one mesh share the contended file
 * only when given the same TAG. The grant latency of a cycle is the wall
 * time of its flock(LOCK_EX) call (CLOCK_MONOTONIC).
 *
 * Output, `name value unit` lines (NAME default "lock"):
 *   NAME_cycles     cycles completed per second, all threads together
 *   NAME_p50_ms     median grant latency, ms
 *   NAME_p99_ms     99th percentile grant latency, ms
 *   NAME_max_gap_ms the longest time without any grant completing, ms
 * and, when the process got SIGUSR1 during the run (the failover bench
 * sends it just before it kills a leader):
 *   NAME_failover_ms time from the signal to the first grant whose
 *                    flock call started after it, ms (-1: none came)
 *
 * Exit status 0; 1 when a flock or open failed (message on stderr), 2
 * on usage errors. A run with no cycle at all is a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES (1u << 20) /* per thread */

struct locker {
	pthread_t th;
	char path[4096];
	double *lat;    /* grant latencies, ms */
	size_t n;
	int err;
	double first_after; /* completion of the first grant started after
			     * SIGUSR1, monotonic s; 0 = none */
};

static double run_until;
static _Atomic double last_grant; /* monotonic s of the latest grant */
static double max_gap;            /* guarded by gap_mu */
static pthread_mutex_t gap_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t got_usr1;
static _Atomic double usr1_at;    /* monotonic s, set by the main thread */

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1 = 1;
}

/* Note a grant completed at t: the gap since the previous one. */
static void note_grant(double t)
{
	pthread_mutex_lock(&gap_mu);
	double prev = atomic_load(&last_grant);

	if (t > prev) {
		if (prev > 0 && t - prev > max_gap)
			max_gap = t - prev;
		atomic_store(&last_grant, t);
	}
	pthread_mutex_unlock(&gap_mu);
}

static void *locker_main(void *arg)
{
	struct locker *l = arg;
	int fd = open(l->path, O_RDWR | O_CREAT, 0644);

	if (fd < 0) {
		l->err = errno;
		fprintf(stderr, "lock_cycles: open %s: %s\n", l->path, strerror(errno));
		return NULL;
	}
	while (now_s() < run_until) {
		double u = atomic_load(&usr1_at);
		double t0 = now_s(), t1;

		if (flock(fd, LOCK_EX) < 0) {
			if (errno == EINTR)
				continue;
			l->err = errno;
			fprintf(stderr, "lock_cycles: flock LOCK_EX %s: %s\n", l->path,
				strerror(errno));
			break;
		}
		t1 = now_s();
		note_grant(t1);
		if (u > 0 && t0 >= u && l->first_after == 0)
			l->first_after = t1;
		if (l->n < MAX_SAMPLES)
			l->lat[l->n++] = (t1 - t0) * 1000;
		if (flock(fd, LOCK_UN) < 0) {
			l->err = errno;
			fprintf(stderr, "lock_cycles: flock LOCK_UN %s: %s\n", l->path,
				strerror(errno));
			break;
		}
	}
	close(fd);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void usage(void)
{
	fprintf(stderr, "usage: lock_cycles DIR [--threads N] [--seconds S] [--contended] "
			"[--name NAME] [--tag TAG]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *name = "lock";
	char tag[64];
	unsigned nth = 1, i;
	double secs = 3, t0, t1, first = 0;
	int contended = 0, failed = 0;
	struct locker *ls;
	double *all;
	size_t total = 0, k;

	snprintf(tag, sizeof(tag), "%d", (int)getpid());
	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--threads") == 0 && a + 1 < argc)
			nth = (unsigned)atoi(argv[++a]);
		else if (strcmp(argv[a], "--seconds") == 0 && a + 1 < argc)
			secs = atof(argv[++a]);
		else if (strcmp(argv[a], "--contended") == 0)
			contended = 1;
		else if (strcmp(argv[a], "--name") == 0 && a + 1 < argc)
			name = argv[++a];
		else if (strcmp(argv[a], "--tag") == 0 && a + 1 < argc)
			snprintf(tag, sizeof(tag), "%s", argv[++a]);
		else if (argv[a][0] != '-' && !dir)
			dir = argv[a];
		else
			usage();
	}
	if (!dir || nth == 0 || nth > 1024 || secs <= 0)
		usage();
	signal(SIGUSR1, on_usr1);
	ls = calloc(nth, sizeof(*ls));
	if (!ls)
		return 1;
	t0 = now_s();
	run_until = t0 + secs;
	for (i = 0; i < nth; i++) {
		if (contended)
			snprintf(ls[i].path, sizeof(ls[i].path), "%s/lc.%s", dir, tag);
		else
			snprintf(ls[i].path, sizeof(ls[i].path), "%s/lc.%s.%u", dir, tag, i);
		ls[i].lat = malloc(MAX_SAMPLES * sizeof(double));
		if (!ls[i].lat || pthread_create(&ls[i].th, NULL, locker_main, &ls[i]))
			return 1;
	}
	/* The signal lands on any thread; the main one turns it into a time
	 * stamp the lockers read before each flock. */
	while (now_s() < run_until) {
		if (got_usr1 && atomic_load(&usr1_at) == 0)
			atomic_store(&usr1_at, now_s());
		usleep(200);
	}
	for (i = 0; i < nth; i++) {
		pthread_join(ls[i].th, NULL);
		failed |= ls[i].err != 0;
		total += ls[i].n;
		if (ls[i].first_after > 0 && (first == 0 || ls[i].first_after < first))
			first = ls[i].first_after;
	}
	t1 = now_s();
	if (failed || total == 0) {
		if (total == 0)
			fprintf(stderr, "lock_cycles: no cycle completed in %.1f s\n", secs);
		return 1;
	}
	all = malloc(total * sizeof(double));
	if (!all)
		return 1;
	for (i = 0, k = 0; i < nth; i++) {
		memcpy(all + k, ls[i].lat, ls[i].n * sizeof(double));
		k += ls[i].n;
	}
	qsort(all, total, sizeof(double), cmp_double);
	printf("%s_cycles %.0f cycles/s\n", name, total / (t1 - t0));
	printf("%s_p50_ms %.3f ms\n", name, all[(total - 1) / 2]);
	printf("%s_p99_ms %.3f ms\n", name, all[(size_t)((total - 1) * 0.99)]);
	printf("%s_max_gap_ms %.1f ms\n", name, max_gap * 1000);
	if (atomic_load(&usr1_at) > 0)
		printf("%s_failover_ms %.1f ms\n", name,
		       first > 0 ? (first - atomic_load(&usr1_at)) * 1000 : -1.0);
	for (i = 0; i < nth; i++)
		free(ls[i].lat);
	free(ls);
	free(all);
	return 0;
}
