/*
 * fs_bench.c — small-file and flock benchmarks against any directory.
 *
 *   fs_bench DIR [--threads N] [--ops N] [--reps R] [--suffix S]
 *                [--only rw|flock|all]
 *   fs_bench DIR --lockrun SINGLE,MULTI,FDS [--stats FILE]
 *                [--rss-pid PID] [--suffix S] [--keep]
 *
 * The same program runs inside a statefs mount, a plain tmpfs directory,
 * the memfs FUSE ceiling and flockfs, so the figures differ only by the
 * file system under DIR. Every figure is the median of R repetitions
 * (default 5) and is printed as one line `name value unit`; with
 * --suffix S every name gets "_S" appended (the run script passes the
 * target's name).
 *
 * Figures of the default mode (ops/s; N is --threads, default 4; --ops is
 * per thread and per repetition, default 2000):
 *   fs_write_1t, fs_write_Nt     open(O_CREAT|O_TRUNC|O_WRONLY), write
 *                                32 B, close, each on a distinct new file
 *   fs_read_first_1t, _Nt        open(O_RDONLY), read, close of each file
 *                                the write phase just wrote (same thread,
 *                                same process, right after all the writes
 *                                of that phase: the first read of a value
 *                                after its write, which is what a cache
 *                                invalidated by the write has to serve)
 *   fs_read_rep_1t, _Nt          open, read, close of one unchanged file,
 *                                again and again (all threads the same
 *                                file): what caching can win. The file
 *                                is written at the start of the
 *                                repetition and the timed loop starts at
 *                                least UNCHANGED_S (1.5 s) after that
 *                                write, so a file system may treat it as
 *                                settled (statefs serves reads uncached
 *                                for 1 s after a write open)
 *   fs_flock_1t                  flock(LOCK_EX) + flock(LOCK_UN) cycles on
 *                                one open fd, nobody else interested
 *   fs_flock_contended_2p        two processes, each with its own open of
 *                                one file, both cycling flock EX/UN as
 *                                fast as they can; cycles of both summed
 * Every read checks that it got exactly the 32 bytes written: a broken
 * file system fails the benchmark (exit 1) instead of looking fast.
 *
 * --lockrun SINGLE,MULTI,FDS (the "2,000 holders, 100,000 locks" run):
 * SINGLE processes each hold one flock(LOCK_EX) on a file of their own and
 * MULTI processes each hold FDS such locks (default 2000,49,2000: 2,049
 * processes, 100,000 locks). The files are created first (not timed),
 * then all processes are released at once and the time until every lock
 * is held is `locks_take_all` (s). With --stats FILE (a statefs
 * /.statefs/stats) it prints the driver's own count `locks_held_reported`
 * and, after every holder got SIGKILL, `locks_release_all` (s): the time
 * until the stats file shows `locks_held_exclusive 0` and
 * `locks_held_shared 0`. Without --stats the release time is the time
 * until every holder has been reaped. --rss-pid PID prints VmRSS of PID
 * (the driver) before the locks, while they are held and after their
 * release, in kB. The files live in DIR/fsb.locks and are removed
 * afterwards unless --keep (then the next run reuses them).
 *
 * Threads start together behind a barrier; the clock is CLOCK_MONOTONIC,
 * and a phase lasts from the first thread's start to the last thread's
 * end (each thread reads the clock itself: with more threads than cores
 * the main thread may not run until the workers are done). Setup and
 * cleanup (mkdir, unlink of the files) are outside the timed sections.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define VALUE_LEN 32
#define UNCHANGED_S 1.5 /* age of the "unchanged" file at fs_read_rep */
#define MAX_THREADS 256
#define MAX_REPS 101

enum bench_op { OP_WRITE, OP_READ_FIRST, OP_READ_REP };

struct bench_cfg {
	const char *dir;
	const char *suffix;
	unsigned threads, ops, reps;
	int do_rw, do_flock;
};

struct worker {
	pthread_t thread;
	pthread_barrier_t *barrier;
	enum bench_op op;
	const char *base;    /* directory of this repetition */
	const char *prefix;  /* file name prefix of this phase */
	unsigned tid, ops;
	int err;             /* 0 or an errno; what failed is printed */
	double t0, t1;       /* this thread's start and end */
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

static void print_figure(const struct bench_cfg *c, const char *name,
			 double value, const char *unit)
{
	if (c->suffix && *c->suffix)
		printf("%s_%s %.0f %s\n", name, c->suffix, value, unit);
	else
		printf("%s %.0f %s\n", name, value, unit);
	fflush(stdout);
}

static void print_seconds(const char *suffix, const char *name, double v)
{
	if (suffix && *suffix)
		printf("%s_%s %.3f s\n", name, suffix, v);
	else
		printf("%s %.3f s\n", name, v);
	fflush(stdout);
}

static void print_count(const char *suffix, const char *name, long long v,
			const char *unit)
{
	if (suffix && *suffix)
		printf("%s_%s %lld %s\n", name, suffix, v, unit);
	else
		printf("%s %lld %s\n", name, v, unit);
	fflush(stdout);
}

/* The 32-byte value of file i of thread t: recognisable, and different
 * per file so a read of the wrong file is caught. */
static void make_value(char *v, unsigned t, unsigned i)
{
	int n = snprintf(v, VALUE_LEN + 1, "t%u i%u ", t, i);

	memset(v + n, 'a' + (i % 26), VALUE_LEN - 1 - n);
	v[VALUE_LEN - 1] = '\n';
}

static int file_path(char *buf, size_t size, const char *base,
		     const char *prefix, unsigned t, unsigned i)
{
	int n = snprintf(buf, size, "%s/%s%u_%u", base, prefix, t, i);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	ssize_t n;

	if (fd < 0)
		return errno;
	n = write(fd, val, VALUE_LEN);
	if (n != VALUE_LEN) {
		int e = n < 0 ? errno : EIO;

		close(fd);
		return e;
	}
	if (close(fd) < 0)
		return errno;
	return 0;
}

/* Open, read, close; the value must be exactly `want`. */
static int read_file(const char *path, const char *want)
{
	char buf[VALUE_LEN * 2];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return errno;
	n = read(fd, buf, sizeof(buf));
	if (n < 0) {
		int e = errno;

		close(fd);
		return e;
	}
	close(fd);
	if (n != VALUE_LEN || memcmp(buf, want, VALUE_LEN) != 0) {
		fprintf(stderr, "fs_bench: %s: read %zd bytes, not the %d written\n",
			path, n, VALUE_LEN);
		return EIO;
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char path[PATH_MAX], val[VALUE_LEN + 1];
	unsigned i;

	if (w->op == OP_READ_REP) {
		make_value(val, 0, 0);
		if (file_path(path, sizeof(path), w->base, "same", 0, 0)) {
			w->err = ENAMETOOLONG;
			pthread_barrier_wait(w->barrier);
			return NULL;
		}
	}
	pthread_barrier_wait(w->barrier);
	w->t0 = now_s();
	for (i = 0; i < w->ops; i++) {
		if (w->op != OP_READ_REP) {
			make_value(val, w->tid, i);
			w->err = file_path(path, sizeof(path), w->base,
					   w->prefix, w->tid, i) ? ENAMETOOLONG : 0;
			if (w->err)
				break;
		}
		w->err = w->op == OP_WRITE ? write_file(path, val) :
			 read_file(path, val);
		if (w->err) {
			fprintf(stderr, "fs_bench: %s: %s\n", path, strerror(w->err));
			break;
		}
	}
	w->t1 = now_s();
	return NULL;
}

/* Run `op` in `threads` threads of `ops` operations each; ops/s or -1. */
static double run_phase(enum bench_op op, const char *base, const char *prefix,
			unsigned threads, unsigned ops)
{
	struct worker w[MAX_THREADS];
	pthread_barrier_t barrier;
	double t0 = 0, t1 = 0;
	unsigned i;
	int failed = 0;

	pthread_barrier_init(&barrier, NULL, threads + 1);
	for (i = 0; i < threads; i++) {
		w[i] = (struct worker){ .barrier = &barrier, .op = op,
					.base = base, .prefix = prefix,
					.tid = i, .ops = ops };
		if (pthread_create(&w[i].thread, NULL, worker_main, &w[i])) {
			fprintf(stderr, "fs_bench: cannot create a thread\n");
			exit(1);
		}
	}
	pthread_barrier_wait(&barrier);
	for (i = 0; i < threads; i++) {
		pthread_join(w[i].thread, NULL);
		failed |= w[i].err != 0;
		if (i == 0 || w[i].t0 < t0)
			t0 = w[i].t0;
		if (i == 0 || w[i].t1 > t1)
			t1 = w[i].t1;
	}
	pthread_barrier_destroy(&barrier);
	return failed ? -1 : threads * (double)ops / (t1 - t0);
}

static void remove_files(const char *base, const char *prefix,
			 unsigned threads, unsigned ops)
{
	char path[PATH_MAX];
	unsigned t, i;

	for (t = 0; t < threads; t++)
		for (i = 0; i < ops; i++)
			if (!file_path(path, sizeof(path), base, prefix, t, i))
				unlink(path);
}

enum rw_fig { F_W1, F_R1, F_WN, F_RN, F_RR1, F_RRN, F_RW_COUNT };

static int bench_rw(const struct bench_cfg *c)
{
	static const char *const names[F_RW_COUNT] = {
		"fs_write", "fs_read_first", "fs_write",
		"fs_read_first", "fs_read_rep", "fs_read_rep",
	};
	static const int multi[F_RW_COUNT] = { 0, 0, 1, 1, 0, 1 };
	double fig[F_RW_COUNT][MAX_REPS];
	char base[PATH_MAX], path[PATH_MAX], val[VALUE_LEN + 1];
	unsigned r, f;
	double written;
	int err;

	for (r = 0; r < c->reps; r++) {
		if (snprintf(base, sizeof(base), "%s/fsb.%d.%u", c->dir,
			     (int)getpid(), r) >= (int)sizeof(base)) {
			fprintf(stderr, "fs_bench: %s: name too long\n", c->dir);
			return -1;
		}
		if (mkdir(base, 0755) < 0) {
			fprintf(stderr, "fs_bench: mkdir %s: %s\n", base, strerror(errno));
			return -1;
		}
		make_value(val, 0, 0);
		if (file_path(path, sizeof(path), base, "same", 0, 0) ||
		    (err = write_file(path, val)) != 0) {
			fprintf(stderr, "fs_bench: cannot write %s/same0_0\n", base);
			return -1;
		}
		written = now_s();
		fig[F_W1][r] = run_phase(OP_WRITE, base, "a", 1, c->ops);
		fig[F_R1][r] = run_phase(OP_READ_FIRST, base, "a", 1, c->ops);
		fig[F_WN][r] = run_phase(OP_WRITE, base, "b", c->threads, c->ops);
		fig[F_RN][r] = run_phase(OP_READ_FIRST, base, "b", c->threads, c->ops);
		/* A definition, not synchronisation: "unchanged" means not
		 * written for UNCHANGED_S. */
		if (now_s() - written < UNCHANGED_S)
			usleep((UNCHANGED_S - (now_s() - written)) * 1e6);
		fig[F_RR1][r] = run_phase(OP_READ_REP, base, "same", 1, c->ops);
		fig[F_RRN][r] = run_phase(OP_READ_REP, base, "same", c->threads, c->ops);
		for (f = 0; f < F_RW_COUNT; f++)
			if (fig[f][r] < 0)
				return -1;
		unlink(path);
		remove_files(base, "a", 1, c->ops);
		remove_files(base, "b", c->threads, c->ops);
		if (rmdir(base) < 0)
			fprintf(stderr, "fs_bench: rmdir %s: %s\n", base, strerror(errno));
	}
	for (f = 0; f < F_RW_COUNT; f++) {
		char name[64];

		snprintf(name, sizeof(name), "%s_%ut", names[f],
			 multi[f] ? c->threads : 1);
		print_figure(c, name, median(fig[f], c->reps), "ops/s");
	}
	return 0;
}

static int flock_cycles(int fd, unsigned ops)
{
	unsigned i;

	for (i = 0; i < ops; i++) {
		if (flock(fd, LOCK_EX) < 0 || flock(fd, LOCK_UN) < 0) {
			int e = errno;

			fprintf(stderr, "fs_bench: flock: %s\n", strerror(e));
			return -e;
		}
	}
	return 0;
}

/* Two processes, each with its own open file description of `path`. */
static double flock_contended(const char *path, unsigned ops)
{
	int ready[2], go[2];
	pid_t pid[2];
	double t0, t1;
	int i, st, failed = 0;
	char b;

	if (pipe(ready) < 0 || pipe(go) < 0)
		return -1;
	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		if (pid[i] < 0)
			return -1;
		if (pid[i] == 0) {
			int fd = open(path, O_RDWR);

			close(ready[0]);
			close(go[1]);
			if (fd < 0 || write(ready[1], "r", 1) != 1)
				_exit(1);
			if (read(go[0], &b, 1) != 0) /* EOF: go */
				_exit(1);
			_exit(flock_cycles(fd, ops) ? 1 : 0);
		}
	}
	close(ready[1]);
	close(go[0]);
	for (i = 0; i < 2; i++)
		if (read(ready[0], &b, 1) != 1)
			failed = 1;
	t0 = now_s();
	close(go[1]);
	for (i = 0; i < 2; i++) {
		waitpid(pid[i], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed = 1;
	}
	t1 = now_s();
	close(ready[0]);
	return failed ? -1 : 2.0 * ops / (t1 - t0);
}

static int bench_flock(const struct bench_cfg *c)
{
	double unc[MAX_REPS], con[MAX_REPS];
	char path[PATH_MAX];
	unsigned r;
	double t0;
	int fd;

	if (snprintf(path, sizeof(path), "%s/fsb.lock.%d", c->dir,
		     (int)getpid()) >= (int)sizeof(path))
		return -1;
	for (r = 0; r < c->reps; r++) {
		fd = open(path, O_RDWR | O_CREAT, 0644);
		if (fd < 0) {
			fprintf(stderr, "fs_bench: %s: %s\n", path, strerror(errno));
			return -1;
		}
		t0 = now_s();
		if (flock_cycles(fd, c->ops)) {
			close(fd);
			return -1;
		}
		unc[r] = c->ops / (now_s() - t0);
		close(fd);
		con[r] = flock_contended(path, c->ops);
		if (con[r] < 0) {
			fprintf(stderr, "fs_bench: contended flock run failed\n");
			return -1;
		}
	}
	unlink(path);
	print_figure(c, "fs_flock_1t", median(unc, c->reps), "ops/s");
	print_figure(c, "fs_flock_contended_2p", median(con, c->reps), "ops/s");
	return 0;
}

/* ---- the big lock run ---- */

/* Value of `name` in a `name value` file, or -1. */
static long long stats_value(const char *file, const char *name)
{
	char buf[65536];
	size_t nl = strlen(name);
	ssize_t n, got = 0;
	int fd = open(file, O_RDONLY);
	char *p;

	if (fd < 0)
		return -1;
	while (got < (ssize_t)sizeof(buf) - 1 &&
	       (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += n;
	close(fd);
	buf[got] = '\0';
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, name, nl) == 0 && p[nl] == ' ')
			return strtoll(p + nl + 1, NULL, 10);
	}
	return -1;
}

static long long rss_kb(pid_t pid)
{
	char path[64], buf[4096], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, "VmRSS:");
	return p ? strtoll(p + 6, NULL, 10) : -1;
}

static int lock_path(char *buf, size_t size, const char *base, unsigned proc,
		     unsigned i)
{
	int n = snprintf(buf, size, "%s/p%u_%u", base, proc, i);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* A holder: create its files, say so, wait for "go" (EOF on go_fd), open
 * and lock them all, say so, then hold until killed. */
static void holder_main(const char *base, unsigned proc, unsigned nlocks,
			int ready_fd, int go_fd)
{
	char path[PATH_MAX], b;
	unsigned i;
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (i = 0; i < nlocks; i++) {
		if (lock_path(path, sizeof(path), base, proc, i))
			goto fail;
		fd = open(path, O_CREAT | O_WRONLY, 0644);
		if (fd < 0)
			goto fail;
		close(fd);
	}
	if (write(ready_fd, "c", 1) != 1 || read(go_fd, &b, 1) != 0)
		_exit(1);
	for (i = 0; i < nlocks; i++) {
		if (lock_path(path, sizeof(path), base, proc, i))
			goto fail;
		fd = open(path, O_RDONLY);
		if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
			goto fail;
	}
	if (write(ready_fd, "l", 1) != 1)
		_exit(1);
	for (;;)
		pause();
fail:
	fprintf(stderr, "fs_bench: holder %u: %s: %s\n", proc, path, strerror(errno));
	if (write(ready_fd, "e", 1) != 1)
		_exit(1);
	_exit(1);
}

/* Read `n` bytes equal to `want` from fd within `timeout` seconds. */
static int collect(int fd, unsigned n, char want, double timeout)
{
	double deadline = now_s() + timeout;
	char buf[4096];
	unsigned got = 0;

	while (got < n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		double left = deadline - now_s();
		ssize_t k, j;

		if (left <= 0) {
			fprintf(stderr, "fs_bench: only %u of %u holders ready after %.0f s\n",
				got, n, timeout);
			return -1;
		}
		if (poll(&p, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			return -1;
		k = read(fd, buf, sizeof(buf) < n - got ? sizeof(buf) : n - got);
		if (k <= 0)
			return -1;
		for (j = 0; j < k; j++)
			if (buf[j] != want)
				return -1;
		got += k;
	}
	return 0;
}

static int raise_nofile(rlim_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	if (rl.rlim_cur >= want)
		return 0;
	rl.rlim_cur = want;
	if (rl.rlim_max < want)
		rl.rlim_max = want;
	return setrlimit(RLIMIT_NOFILE, &rl);
}

static int lockrun(const struct bench_cfg *c, unsigned single, unsigned multi,
		   unsigned fds, const char *stats, pid_t rss_pid, int keep)
{
	unsigned nproc = single + multi, p, i;
	int ready[2], go[2], ret = -1;
	pid_t *pids;
	char base[PATH_MAX], path[PATH_MAX];
	double t0, t1;
	long long v;

	if (raise_nofile(fds + 64) < 0) {
		fprintf(stderr, "fs_bench: cannot raise RLIMIT_NOFILE to %u: %s\n",
			fds + 64, strerror(errno));
		return -1;
	}
	pids = calloc(nproc, sizeof(*pids));
	if (!pids || pipe(ready) < 0 || pipe(go) < 0)
		return -1;
	if (snprintf(base, sizeof(base), "%s/fsb.locks", c->dir) >=
		    (int)sizeof(base) || (mkdir(base, 0755) < 0 && errno != EEXIST)) {
		fprintf(stderr, "fs_bench: mkdir %s: %s\n", base, strerror(errno));
		return -1;
	}
	for (p = 0; p < nproc; p++) {
		pids[p] = fork();
		if (pids[p] < 0) {
			fprintf(stderr, "fs_bench: fork: %s\n", strerror(errno));
			goto out;
		}
		if (pids[p] == 0) {
			close(ready[0]);
			close(go[1]);
			holder_main(base, p, p < single ? 1 : fds, ready[1], go[0]);
		}
	}
	close(go[0]);
	if (collect(ready[0], nproc, 'c', 600))
		goto out;
	if (rss_pid > 0)
		print_count(c->suffix, "rss_before_locks", rss_kb(rss_pid), "kB");
	t0 = now_s();
	close(go[1]);
	if (collect(ready[0], nproc, 'l', 600))
		goto out;
	t1 = now_s();
	print_count(c->suffix, "locks_holders", nproc, "processes");
	print_count(c->suffix, "locks_taken", single + (long long)multi * fds, "locks");
	print_seconds(c->suffix, "locks_take_all", t1 - t0);
	if (stats)
		print_count(c->suffix, "locks_held_reported",
			    stats_value(stats, "locks_held_exclusive"), "locks");
	if (rss_pid > 0)
		print_count(c->suffix, "rss_locks_held", rss_kb(rss_pid), "kB");

	t0 = now_s();
	for (p = 0; p < nproc; p++)
		kill(pids[p], SIGKILL);
	for (p = 0; p < nproc; p++)
		waitpid(pids[p], NULL, 0);
	memset(pids, 0, nproc * sizeof(*pids));
	if (stats) {
		double deadline = now_s() + 120;

		while ((v = stats_value(stats, "locks_held_exclusive")) != 0 ||
		       stats_value(stats, "locks_held_shared") > 0) {
			if (now_s() > deadline) {
				fprintf(stderr, "fs_bench: %lld locks still held 120 s after the holders died\n", v);
				goto out;
			}
			usleep(1000);
		}
	}
	print_seconds(c->suffix, "locks_release_all", now_s() - t0);
	if (rss_pid > 0)
		print_count(c->suffix, "rss_after_release", rss_kb(rss_pid), "kB");
	ret = 0;
out:
	for (p = 0; p < nproc; p++) {
		if (pids[p] > 0) {
			kill(pids[p], SIGKILL);
			waitpid(pids[p], NULL, 0);
		}
	}
	if (!keep) {
		for (p = 0; p < nproc; p++)
			for (i = 0; i < (p < single ? 1 : fds); i++)
				if (!lock_path(path, sizeof(path), base, p, i))
					unlink(path);
		rmdir(base);
	}
	free(pids);
	return ret;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: fs_bench DIR [--threads N] [--ops N] [--reps R] [--suffix S] [--only rw|flock|all]\n"
		"       fs_bench DIR --lockrun SINGLE,MULTI,FDS [--stats FILE] [--rss-pid PID] [--suffix S] [--keep]\n");
	exit(2);
}

static unsigned parse_uint(const char *s, unsigned min, unsigned max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "fs_bench: bad number '%s' (%u..%u)\n", s, min, max);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	struct bench_cfg c = { .threads = 4, .ops = 2000, .reps = 5,
			       .do_rw = 1, .do_flock = 1 };
	const char *lockspec = NULL, *stats = NULL;
	pid_t rss_pid = 0;
	int i, keep = 0, ret = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--keep") == 0) {
			keep = 1;
			continue;
		}
		if (a[0] != '-') {
			if (c.dir)
				usage();
			c.dir = a;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (strcmp(a, "--threads") == 0) {
			c.threads = parse_uint(v, 1, MAX_THREADS);
		} else if (strcmp(a, "--ops") == 0) {
			c.ops = parse_uint(v, 1, 100000000);
		} else if (strcmp(a, "--reps") == 0) {
			c.reps = parse_uint(v, 1, MAX_REPS);
		} else if (strcmp(a, "--suffix") == 0) {
			c.suffix = v;
		} else if (strcmp(a, "--only") == 0) {
			c.do_rw = strcmp(v, "rw") == 0 || strcmp(v, "all") == 0;
			c.do_flock = strcmp(v, "flock") == 0 || strcmp(v, "all") == 0;
			if (!c.do_rw && !c.do_flock)
				usage();
		} else if (strcmp(a, "--lockrun") == 0) {
			lockspec = v;
		} else if (strcmp(a, "--stats") == 0) {
			stats = v;
		} else if (strcmp(a, "--rss-pid") == 0) {
			rss_pid = parse_uint(v, 1, INT_MAX);
		} else {
			usage();
		}
	}
	if (!c.dir)
		usage();
	signal(SIGPIPE, SIG_IGN);

	if (lockspec) {
		unsigned s, m, f;
		char extra;

		if (sscanf(lockspec, "%u,%u,%u%c", &s, &m, &f, &extra) != 3 ||
		    s + m == 0 || f == 0 || f > 1000000)
			usage();
		return lockrun(&c, s, m, f, stats, rss_pid, keep) ? 1 : 0;
	}
	if (c.do_rw && bench_rw(&c))
		ret = 1;
	if (c.do_flock && bench_flock(&c))
		ret = 1;
	return ret;
}
