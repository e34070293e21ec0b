/*
 * lp_client.c — a helper of tests/integration/lock_svc.sh, not a test:
 * one mount's connection to statefs-repl's lock service (the protocol
 * of common/lockproto.h), driven from the command line, without a mount.
 *
 *   lp_client SOCK [--host NAME] [--owner N] [--timeout MS] STEP...
 *
 * Steps run in order on one connection (one lock session):
 *   lock:sh|ex:PATH        non-blocking LOCK (flock kind)
 *   wait:sh|ex:PATH        blocking LOCK; prints "queued" when it waits
 *   cancel:MS:sh|ex:PATH   blocking LOCK, CANCEL after MS ms if still queued
 *   unlock:PATH            LOCK type UNLOCK
 *   release:PATH           RELEASE (no answer)
 *   query:PATH             QUERY
 *   sleep:MS
 *   waitfile:FILE          wait until FILE exists (a cue from the script)
 *   hold                   stay connected until killed (SIGTERM, -9)
 * Each answer is one line on stdout, flushed:
 *   hello 0 lease=MS
 *   granted TOKEN | ok (unlock) | queued | EWOULDBLOCK | EINTR | ENOLCK
 *   | EDEADLK | EINVAL | err N
 *   state unlocked | state ex|sh holders=N host=H pid=P waiters=W token=T
 * Exit 0 when every step got its answer, 1 on a usage or socket error,
 * 3 when an answer did not come within --timeout (default 20000 ms).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/lockproto.h"

static int fd = -1;
static uint64_t next_id = 1, owner = 1;
static int timeout_ms = 20000;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void send_msg(uint32_t type, uint64_t id, uint32_t ltype, uint32_t wait,
		     const char *path)
{
	unsigned char buf[LP_MSG_MAX];
	struct lp_msg m = {.version = LP_VERSION,
			   .type = type,
			   .id = id,
			   .kind = 0,
			   .ltype = ltype,
			   .wait = wait,
			   .owner = owner,
			   .pid = (int32_t)getpid()};
	size_t n = path ? strlen(path) : 0;

	m.pathlen = (uint32_t)n;
	memcpy(buf, &m, sizeof(m));
	if (n)
		memcpy(buf + sizeof(m), path, n);
	if (send(fd, buf, sizeof(m) + n, MSG_NOSIGNAL) < 0) {
		perror("lp_client: send");
		exit(1);
	}
}

/* The next message; 0, or -ETIMEDOUT past `deadline`. */
static int recv_msg(struct lp_msg *m, char *path, int64_t deadline)
{
	unsigned char buf[LP_MSG_MAX];
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n;
	int64_t left = deadline - now_ms();

	if (left <= 0)
		return -ETIMEDOUT;
	if (poll(&p, 1, (int)left) == 0)
		return -ETIMEDOUT;
	n = recv(fd, buf, sizeof(buf), 0);
	if (n <= 0 || lp_check(buf, (size_t)n) < 0) {
		fprintf(stderr, "lp_client: %s\n",
			n == 0	? "the service closed the connection"
			: n < 0 ? strerror(errno)
				: "a malformed answer");
		exit(1);
	}
	memcpy(m, buf, sizeof(*m));
	memcpy(path, buf + sizeof(*m), m->pathlen);
	path[m->pathlen] = '\0';
	return 0;
}

static void print_err(int err, uint64_t token, int unlock)
{
	switch (err) {
	case 0:
		if (unlock)
			out("ok");
		else
			out("granted %llu", (unsigned long long)token);
		return;
	case LP_QUEUED:
		out("queued");
		return;
	case -EWOULDBLOCK:
		out("EWOULDBLOCK");
		return;
	case -EINTR:
		out("EINTR");
		return;
	case -ENOLCK:
		out("ENOLCK");
		return;
	case -EDEADLK:
		out("EDEADLK");
		return;
	case -EINVAL:
		out("EINVAL");
		return;
	default:
		out("err %d", err);
	}
}

static void timed_out(void)
{
	out("timeout");
	exit(3);
}

/* LOCK and wait for its final answer; cancel_ms >= 0: CANCEL then. */
static void do_lock(uint32_t ltype, uint32_t wait, const char *path,
		    int cancel_ms)
{
	uint64_t id = next_id++;
	int64_t deadline = now_ms() + timeout_ms;
	int64_t cancel_at = cancel_ms >= 0 ? now_ms() + cancel_ms : -1;
	struct lp_msg m;
	char p[LP_PATH_MAX + 1];

	send_msg(LP_LOCK, id, ltype, wait, path);
	for (;;) {
		int64_t until = cancel_at >= 0 && cancel_at < deadline
				    ? cancel_at
				    : deadline;

		if (recv_msg(&m, p, until) < 0) {
			if (until == deadline)
				timed_out();
			send_msg(LP_CANCEL, id, 0, 0, NULL);
			cancel_at = -1;
			continue;
		}
		if (m.type != LP_RESULT || m.id != id)
			continue;
		print_err(m.err, m.token, ltype == 0);
		if (m.err != LP_QUEUED)
			return;
	}
}

static void do_query(const char *path)
{
	uint64_t id = next_id++;
	struct lp_msg m;
	char p[LP_PATH_MAX + 1];
	static const char *const names[] = {"unlocked", "sh", "ex"};

	send_msg(LP_QUERY, id, 0, 0, path);
	do {
		if (recv_msg(&m, p, now_ms() + timeout_ms) < 0)
			timed_out();
	} while (m.type != LP_STATE || m.id != id);
	if (m.err)
		print_err(m.err, 0, 0);
	else if (m.ltype == 0)
		out("state unlocked");
	else
		out("state %s holders=%u host=%s pid=%d waiters=%u token=%llu",
		    names[m.ltype > 2 ? 0 : m.ltype], m.holders, p, m.pid,
		    m.waiters, (unsigned long long)m.token);
}

static uint32_t parse_type(const char *t)
{
	if (strncmp(t, "sh:", 3) == 0)
		return 1;
	if (strncmp(t, "ex:", 3) == 0)
		return 2;
	fprintf(stderr, "lp_client: sh or ex, not '%s'\n", t);
	exit(1);
}

static void step(const char *s)
{
	if (strncmp(s, "lock:", 5) == 0) {
		do_lock(parse_type(s + 5), 0, s + 8, -1);
	} else if (strncmp(s, "wait:", 5) == 0) {
		do_lock(parse_type(s + 5), 1, s + 8, -1);
	} else if (strncmp(s, "cancel:", 7) == 0) {
		char *end;
		long ms = strtol(s + 7, &end, 10);

		if (*end != ':')
			goto bad;
		do_lock(parse_type(end + 1), 1, end + 4, (int)ms);
	} else if (strncmp(s, "unlock:", 7) == 0) {
		do_lock(0, 0, s + 7, -1);
	} else if (strncmp(s, "release:", 8) == 0) {
		send_msg(LP_RELEASE, 0, 0, 0, s + 8);
	} else if (strncmp(s, "query:", 6) == 0) {
		do_query(s + 6);
	} else if (strncmp(s, "sleep:", 6) == 0) {
		usleep((useconds_t)atoi(s + 6) * 1000);
	} else if (strncmp(s, "waitfile:", 9) == 0) {
		int64_t deadline = now_ms() + timeout_ms;

		while (access(s + 9, F_OK) != 0) {
			if (now_ms() > deadline)
				timed_out();
			usleep(5000);
		}
	} else if (strcmp(s, "hold") == 0) {
		for (;;)
			pause();
	} else {
		goto bad;
	}
	return;
bad:
	fprintf(stderr, "lp_client: unknown step '%s'\n", s);
	exit(1);
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *host = "";
	struct lp_msg m;
	char p[LP_PATH_MAX + 1];
	int i = 2;

	if (argc < 2) {
		fprintf(stderr,
			"usage: lp_client SOCK [--host NAME] [--owner N] "
			"[--timeout MS] STEP...\n");
		return 1;
	}
	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (strcmp(argv[i], "--host") == 0)
			host = argv[i + 1];
		else if (strcmp(argv[i], "--owner") == 0)
			owner = strtoull(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--timeout") == 0)
			timeout_ms = atoi(argv[i + 1]);
		else
			break;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "lp_client: %s: %s\n", argv[1],
			strerror(errno));
		return 1;
	}
	send_msg(LP_HELLO, 0, 0, 0, host);
	do {
		if (recv_msg(&m, p, now_ms() + timeout_ms) < 0)
			timed_out();
	} while (m.type != LP_HELLO);
	out("hello %d lease=%u", m.err, m.lease_ms);
	for (; i < argc; i++)
		step(argv[i]);
	return 0;
}
