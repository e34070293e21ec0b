/*
 * lock_holders.c — the holders of the 100,000-lock run of
 * tests/bench/lock_mesh_bench.sh: many processes, each holding many
 * flocks, killed all at once.
 *
 *   lock_holders [--flat] [--excl] DIR HOST NPROC NLOCKS GOFILE
 *   lock_holders [--flat] [--excl] --make DIR HOST NPROC NLOCKS
 *
 * NPROC children; child i takes NLOCKS/2 exclusive flocks on DIR/ex/
 * HOST/i/j and NLOCKS/2 shared ones on DIR/sh/i/j (j < NLOCKS/2), so the
 * same-numbered children of every HOST share their shared files; with
 * --excl, NLOCKS exclusive ones on DIR/ex/HOST/i/j (j < NLOCKS). With
 * --flat the names are DIR/ex_HOST_i_j and DIR/sh_i_j (for a file system
 * without directories). --make creates those files (and directories)
 * instead, and exits. tests/integration/lock_scale.sh uses it too.
 *
 * Protocol: "forked N" on stdout once every child has opened its files;
 * then it waits for GOFILE to exist; "ready N" once every child holds
 * all its locks; then every process sleeps until killed (the caller
 * starts it in a process group of its own and kills the group).
 *
 * Why C and not Python: 2,000 forked interpreters took lock_scale.sh
 * 50 s to start (7 s now) and the benchmark 57 s to take its 100,000
 * locks (24 s now), and the figure wanted is the file systems'.
 *
 * Exit status: 1 with a message when a file cannot be made, opened or
 * locked, or a child dies; 2 on usage errors. The children die with the
 * parent (PR_SET_PDEATHSIG), so killing the parent alone frees all.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int flat, excl_only;
static int up_fd = -1; /* in a child: the pipe to the parent */

/* In a child, also tell the parent (which would wait for ever on the
 * other children's ends of the pipe). */
static void die(const char *what, const char *path)
{
	fprintf(stderr, "lock_holders: %s %s: %s\n", what, path, strerror(errno));
	if (up_fd >= 0 && write(up_fd, "e", 1) < 0)
		_exit(1);
	exit(1);
}

static void name(char *buf, size_t len, const char *dir, const char *host,
		 int excl, long i, long j)
{
	char sep = flat ? '_' : '/';

	int n;

	if (excl)
		n = snprintf(buf, len, "%s/ex%c%s%c%ld%c%ld", dir, sep, host,
			     sep, i, sep, j);
	else
		n = snprintf(buf, len, "%s/sh%c%ld%c%ld", dir, sep, i, sep, j);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		die("path under", dir);
	}
}

static void mkdir_of(const char *path)
{
	char d[4096];
	char *s;

	snprintf(d, sizeof d, "%s", path);
	for (s = strchr(d + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(d, 0755) < 0 && errno != EEXIST)
			die("mkdir", d);
		*s = '/';
	}
}

/* The file of child i's lock number j (of nlocks) and whether it is
 * taken exclusive. */
static int lock_name(char *buf, size_t len, const char *dir,
		     const char *host, long i, long j)
{
	int excl = excl_only || j % 2 == 0;

	name(buf, len, dir, host, excl, i, excl_only ? j : j / 2);
	return excl;
}

static void make(const char *dir, const char *host, long nproc, long nlocks)
{
	char p[4096];
	long i, j;
	int fd;

	for (i = 0; i < nproc; i++)
		for (j = 0; j < nlocks; j++) {
			lock_name(p, sizeof p, dir, host, i, j);
			if (j < 2 && !flat)
				mkdir_of(p);
			fd = open(p, O_CREAT | O_WRONLY, 0644);
			if (fd < 0)
				die("create", p);
			close(fd);
		}
}

static void child(const char *dir, const char *host, long i, long nlocks,
		  int up, int go)
{
	int *fds = malloc((size_t)nlocks * sizeof *fds);
	char p[4096], c;
	long j;

	if (!fds)
		die("malloc", "");
	for (j = 0; j < nlocks; j++) {
		lock_name(p, sizeof p, dir, host, i, j);
		fds[j] = open(p, O_RDONLY);
		if (fds[j] < 0)
			die("open", p);
	}
	if (write(up, "f", 1) != 1 || read(go, &c, 1) < 0)
		die("pipe", "");
	for (j = 0; j < nlocks; j++) {
		int excl = lock_name(p, sizeof p, dir, host, i, j);

		if (flock(fds[j], excl ? LOCK_EX : LOCK_SH) < 0)
			die("flock", p);
	}
	if (write(up, "l", 1) != 1)
		die("pipe", "");
	for (;;)
		pause();
}

/* Read nproc bytes `want` from the children. */
static void collect(int fd, long nproc, char want)
{
	char buf[4096];
	long n = 0;
	ssize_t r, k;

	while (n < nproc) {
		r = read(fd, buf, sizeof buf < (size_t)(nproc - n) ?
				  sizeof buf : (size_t)(nproc - n));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "lock_holders: a child died\n");
			exit(1);
		}
		for (k = 0; k < r; k++)
			if (buf[k] != want) {
				fprintf(stderr, "lock_holders: a child failed\n");
				exit(1);
			}
		n += r;
	}
}

#define USAGE                                                              \
	"usage: lock_holders [--flat] [--excl] DIR HOST NPROC NLOCKS GOFILE\n" \
	"       lock_holders [--flat] [--excl] --make DIR HOST NPROC NLOCKS\n"

static void usage(void)
{
	fprintf(stderr, "%s", USAGE);
	exit(2);
}

int main(int argc, char **argv)
{
	const struct timespec ms = {0, 1000000};
	int up[2], go[2], mk = 0;
	long nproc, nlocks, i;
	char *end;

	for (; argc > 1 && argv[1][0] == '-'; argc--, argv++)
		if (!strcmp(argv[1], "--flat"))
			flat = 1;
		else if (!strcmp(argv[1], "--excl"))
			excl_only = 1;
		else if (!strcmp(argv[1], "--make"))
			mk = 1;
		else if (!strcmp(argv[1], "--help")) {
			printf("%s", USAGE);
			return 0;
		} else
			usage();
	if (argc != (mk ? 5 : 6))
		usage();
	nproc = strtol(argv[3], &end, 10);
	if (*end || nproc < 1)
		usage();
	nlocks = strtol(argv[4], &end, 10);
	if (*end || nlocks < 1 || (!excl_only && nlocks % 2))
		usage();
	if (mk) {
		make(argv[1], argv[2], nproc, nlocks);
		return 0;
	}
	if (pipe(up) < 0 || pipe(go) < 0)
		die("pipe", "");
	for (i = 0; i < nproc; i++) {
		pid_t p = fork();

		if (p < 0)
			die("fork", "");
		if (p == 0) {
			close(up[0]);
			close(go[1]);
			up_fd = up[1];
			/* gone with the parent, whoever kills it */
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 ||
			    getppid() == 1)
				die("prctl", "");
			child(argv[1], argv[2], i, nlocks, up[1], go[0]);
		}
	}
	close(up[1]);
	close(go[0]);
	collect(up[0], nproc, 'f');
	printf("forked %ld\n", nproc);
	fflush(stdout);
	while (access(argv[5], F_OK) < 0)
		nanosleep(&ms, NULL);
	close(go[1]);
	collect(up[0], nproc, 'l');
	printf("ready %ld\n", nproc);
	fflush(stdout);
	for (;;)
		pause();
}
