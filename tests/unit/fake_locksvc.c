/*
 * fake_locksvc.c — a lock service for tests only: the mount side of
 * common/lockproto.h, served from ONE real lock table (repl/locktable.h)
 * without Raft, so mounts of different stores on one host can share
 * mesh-wide locks (tests/integration/lock_remote.sh).
 *
 *   fake_locksvc SOCK [--hold PATH]
 *
 * Listens on the SEQPACKET socket SOCK. Each connection is one session
 * (OPEN_SESSION at HELLO, CLOSE_SESSION when it closes); every request
 * becomes a table command applied at once, and the grants a command
 * hands to waiters are sent to their connections as the final RESULT.
 * --hold PATH: a built-in session holds the exclusive flock on PATH
 * from the start until SIGUSR1 (to make a mount wait for a lock no
 * mount holds, e.g. the "!" lock of an O_CREAT|O_EXCL create).
 * One line per request on stderr. SIGTERM/SIGINT: exit 0.
 *
 * What it does not do (the real service, repl/locksvc.c, does): no
 * Raft, no leases or keepalives, no data handover — a grant is answered
 * at once, with no version vector to wait for, because the stores of
 * the test's mounts are not replicated. It serves one process; it is
 * not hardened against hostile clients beyond lp_check.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/lockproto.h"
#include "repl/locktable.h"

#define MAX_CLIENTS 64
#define LEASE_MS 5000

struct client {
	int fd;
	uint64_t session, seq;
};

struct waiter {
	struct waiter *next;
	int client;
	uint64_t id, session, owner, seq;
	enum lt_kind kind;
	char path[];
};

static struct locktable *table;
static struct client clients[MAX_CLIENTS + 1]; /* the last: --hold */
static struct waiter *waiters;
static uint64_t nonces;
static volatile sig_atomic_t stop, release_hold;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const struct lt_result *apply(struct lt_cmd *c)
{
	const struct lt_result *res = NULL;
	size_t n;
	void *buf;

	c->now = now_ms();
	n = lt_cmd_size(c);
	buf = n ? malloc(n) : NULL;
	if (!buf || lt_cmd_encode(c, buf, n) < 0) {
		fprintf(stderr, "fake_locksvc: cannot encode command %d\n",
			c->type);
		exit(3);
	}
	lt_apply(table, buf, n, &res);
	free(buf);
	return res;
}

static void reply(int client, uint32_t type, uint64_t id, int err,
		  uint64_t token)
{
	struct lp_msg m;

	if (client >= MAX_CLIENTS || clients[client].fd < 0)
		return;
	memset(&m, 0, sizeof(m));
	m.version = LP_VERSION;
	m.type = type;
	m.id = id;
	m.err = err;
	m.token = token;
	if (send(clients[client].fd, &m, sizeof(m), MSG_NOSIGNAL) < 0)
		fprintf(stderr, "fake_locksvc: send: %s\n", strerror(errno));
}

/* Tell the grantees of a command. */
static void grants(const struct lt_result *res)
{
	size_t i;

	for (i = 0; i < res->ngrants; i++) {
		const struct lt_grant *g = &res->grants[i];
		struct waiter **pp, *w;

		for (pp = &waiters; (w = *pp); pp = &w->next)
			if (w->session == g->session && w->owner == g->owner &&
			    w->seq == g->seq)
				break;
		if (!w)
			continue;
		*pp = w->next;
		fprintf(stderr, "fake_locksvc: grant %s to waiter %" PRIu64
			" token %" PRIu64 "\n", w->path, w->id, g->token);
		reply(w->client, LP_RESULT, w->id, 0, g->token);
		free(w);
	}
}

static struct lt_cmd session_cmd(int client, enum lt_cmd_type type)
{
	struct lt_cmd c;

	memset(&c, 0, sizeof(c));
	c.type = type;
	c.session = clients[client].session;
	c.seq = ++clients[client].seq;
	return c;
}

static int open_session(int client, const char *name, size_t namelen)
{
	struct lt_cmd c;
	const struct lt_result *res;

	memset(&c, 0, sizeof(c));
	c.type = LT_OPEN_SESSION;
	c.node = (uint64_t)client + 1;
	c.nonce = ++nonces;
	c.lease_ms = LEASE_MS;
	c.name = name;
	c.namelen = namelen > LT_NAME_MAX ? LT_NAME_MAX : namelen;
	if (c.namelen == 0) {
		c.name = "?";
		c.namelen = 1;
	}
	res = apply(&c);
	if (res->code != LT_OK)
		return -ENOLCK;
	clients[client].session = res->session;
	clients[client].seq = 0;
	return 0;
}

static int lt_errno(enum lt_code code)
{
	switch (code) {
	case LT_OK:
	case LT_GRANTED:
		return 0;
	case LT_QUEUED:
		return LP_QUEUED;
	case LT_WOULDBLOCK:
		return -EWOULDBLOCK;
	case LT_DEADLK:
		return -EDEADLK;
	default:
		return -ENOLCK;
	}
}

static const struct lt_result *release(int client, enum lt_kind kind,
				       const char *path, size_t len,
				       uint64_t owner)
{
	struct lt_cmd c = session_cmd(client, LT_RELEASE);

	c.kind = kind;
	c.path = path;
	c.pathlen = len;
	c.owner = owner;
	return apply(&c);
}

/* Cancel w (taken off the list by the caller): -EINTR unless granted. */
static void cancel(struct waiter *w)
{
	struct lt_cmd c = session_cmd(w->client, LT_CANCEL);
	const struct lt_result *res;

	c.kind = w->kind;
	c.path = w->path;
	c.pathlen = strlen(w->path);
	c.owner = w->owner;
	c.target_seq = w->seq;
	res = apply(&c);
	fprintf(stderr, "fake_locksvc: cancel %s waiter %" PRIu64 ": %s\n",
		w->path, w->id, lt_code_name(res->code));
	if (res->code == LT_OK)
		reply(w->client, LP_RESULT, w->id, -EINTR, 0);
	else if (res->code == LT_GRANTED)
		reply(w->client, LP_RESULT, w->id, 0, res->token);
	grants(res);
	free(w);
}

static void on_lock(int client, const struct lp_msg *m)
{
	struct lt_cmd c;
	const struct lt_result *res;
	struct waiter *w;
	int err;

	if (m->ltype == LT_UNLOCKED) {
		res = release(client, m->kind, m->path, m->pathlen, m->owner);
		fprintf(stderr, "fake_locksvc: unlock %.*s: %s\n",
			(int)m->pathlen, m->path, lt_code_name(res->code));
		reply(client, LP_RESULT, m->id, 0, 0);
		grants(res);
		return;
	}
	c = session_cmd(client, LT_ACQUIRE);
	c.kind = m->kind;
	c.mode = m->ltype;
	c.wait = m->wait;
	c.path = m->path;
	c.pathlen = m->pathlen;
	c.owner = m->owner;
	c.pid = (uint32_t)m->pid;
	res = apply(&c);
	err = lt_errno(res->code);
	fprintf(stderr, "fake_locksvc: lock %.*s %s%s id %" PRIu64 ": %s\n",
		(int)m->pathlen, m->path, m->ltype == LT_EX ? "ex" : "sh",
		m->wait ? "" : " nb", m->id, lt_code_name(res->code));
	if (err == LP_QUEUED) {
		w = calloc(1, sizeof(*w) + m->pathlen + 1);
		if (!w)
			exit(3);
		w->client = client;
		w->id = m->id;
		w->session = clients[client].session;
		w->owner = m->owner;
		w->seq = c.seq;
		w->kind = m->kind;
		memcpy(w->path, m->path, m->pathlen);
		w->next = waiters;
		waiters = w;
	}
	reply(client, LP_RESULT, m->id, err, res->token);
	grants(res);
}

static void on_cancel(int client, const struct lp_msg *m)
{
	struct waiter **pp, *w;

	for (pp = &waiters; (w = *pp); pp = &w->next)
		if (w->client == client && w->id == m->id)
			break;
	if (!w)
		return; /* answered already */
	*pp = w->next;
	cancel(w);
}

static void on_release(int client, const struct lp_msg *m)
{
	const struct lt_result *res;
	struct waiter **pp, *w;

	res = release(client, m->kind, m->path, m->pathlen, m->owner);
	fprintf(stderr, "fake_locksvc: release %.*s: %s\n", (int)m->pathlen,
		m->path, lt_code_name(res->code));
	grants(res);
	/* and the owner's waits on the path */
	for (pp = &waiters; (w = *pp);) {
		if (w->client == client && w->owner == m->owner &&
		    w->kind == (enum lt_kind)m->kind &&
		    strlen(w->path) == m->pathlen &&
		    memcmp(w->path, m->path, m->pathlen) == 0) {
			*pp = w->next;
			cancel(w);
			pp = &waiters; /* cancel may have granted others */
		} else {
			pp = &w->next;
		}
	}
}

static void on_query(int client, const struct lp_msg *m)
{
	struct lt_lockinfo li;
	char path[LP_PATH_MAX + 1];
	struct {
		struct lp_msg m;
		char host[LT_NAME_MAX + 1];
	} a;
	size_t hl = 0;

	memcpy(path, m->path, m->pathlen);
	path[m->pathlen] = '\0';
	memset(&a, 0, sizeof(a));
	a.m.version = LP_VERSION;
	a.m.type = LP_STATE;
	a.m.id = m->id;
	if (lt_query(table, m->kind, path, &li) == 0) {
		a.m.ltype = li.mode;
		a.m.holders = li.holders;
		a.m.pid = (int32_t)li.pid;
		a.m.token = li.token;
		a.m.waiters = li.waiters;
		hl = strlen(li.host);
		memcpy(a.host, li.host, hl);
		a.m.pathlen = (uint32_t)hl;
	}
	if (send(clients[client].fd, &a, sizeof(a.m) + hl, MSG_NOSIGNAL) < 0)
		fprintf(stderr, "fake_locksvc: send: %s\n", strerror(errno));
}

static void drop_client(int client)
{
	struct waiter **pp, *w;
	const struct lt_result *res;
	struct lt_cmd c;

	for (pp = &waiters; (w = *pp);) {
		if (w->client == client) {
			*pp = w->next;
			free(w);
		} else {
			pp = &w->next;
		}
	}
	if (clients[client].session) {
		c = session_cmd(client, LT_CLOSE_SESSION);
		res = apply(&c);
		grants(res);
	}
	close(clients[client].fd);
	clients[client].fd = -1;
	clients[client].session = 0;
	fprintf(stderr, "fake_locksvc: client %d gone\n", client);
}

static void on_packet(int client, const struct lp_msg *m)
{
	switch (m->type) {
	case LP_HELLO: {
		struct lp_msg a;

		memset(&a, 0, sizeof(a));
		a.version = LP_VERSION;
		a.type = LP_HELLO;
		a.err = clients[client].session ? -EPROTO :
			open_session(client, m->path, m->pathlen);
		a.lease_ms = LEASE_MS;
		send(clients[client].fd, &a, sizeof(a), MSG_NOSIGNAL);
		fprintf(stderr, "fake_locksvc: hello from %.*s pid %d\n",
			(int)m->pathlen, m->path, m->pid);
		break;
	}
	case LP_LOCK:
		on_lock(client, m);
		break;
	case LP_CANCEL:
		on_cancel(client, m);
		break;
	case LP_RELEASE:
		on_release(client, m);
		break;
	case LP_QUERY:
		on_query(client, m);
		break;
	default:
		drop_client(client);
	}
}

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		release_hold = 1;
	else
		stop = 1;
}

static int listen_on(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (fd < 0 || strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, strlen(path));
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 16) < 0)
		return -1;
	return fd;
}

static void hold(const char *path)
{
	int h = MAX_CLIENTS;
	struct lt_cmd c;
	const struct lt_result *res;

	clients[h].fd = -1;
	if (open_session(h, "fake-holder", 11) < 0)
		exit(3);
	c = session_cmd(h, LT_ACQUIRE);
	c.kind = LT_FLOCK;
	c.mode = LT_EX;
	c.path = path;
	c.pathlen = strlen(path);
	c.owner = 1;
	c.pid = (uint32_t)getpid();
	res = apply(&c);
	fprintf(stderr, "fake_locksvc: holding %s: %s\n", path,
		lt_code_name(res->code));
}

int main(int argc, char **argv)
{
	static char buf[LP_MSG_MAX + 1];
	const char *held = NULL;
	struct sigaction sa;
	int lfd, i;

	if (argc != 2 && !(argc == 4 && strcmp(argv[2], "--hold") == 0)) {
		fprintf(stderr, "usage: fake_locksvc SOCK [--hold PATH]\n");
		return 2;
	}
	table = lt_new(NULL);
	lfd = table ? listen_on(argv[1]) : -1;
	if (lfd < 0) {
		fprintf(stderr, "fake_locksvc: %s: %s\n", argv[1],
			strerror(errno));
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	for (i = 0; i < MAX_CLIENTS; i++)
		clients[i].fd = -1;
	if (argc == 4) {
		held = argv[3];
		hold(held);
	}
	while (!stop) {
		struct pollfd p[MAX_CLIENTS + 1];
		int n = 0, map[MAX_CLIENTS];

		if (release_hold && held) {
			const struct lt_result *res =
				release(MAX_CLIENTS, LT_FLOCK, held,
					strlen(held), 1);

			fprintf(stderr, "fake_locksvc: released %s: %s\n",
				held, lt_code_name(res->code));
			grants(res);
			held = NULL;
		}
		p[n].fd = lfd;
		p[n++].events = POLLIN;
		for (i = 0; i < MAX_CLIENTS; i++)
			if (clients[i].fd >= 0) {
				map[n - 1] = i;
				p[n].fd = clients[i].fd;
				p[n++].events = POLLIN;
			}
		if (poll(p, n, -1) < 0)
			continue; /* a signal */
		if (p[0].revents & POLLIN) {
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

			for (i = 0; fd >= 0 && i < MAX_CLIENTS; i++)
				if (clients[i].fd < 0) {
					clients[i].fd = fd;
					clients[i].session = 0;
					break;
				}
			if (fd >= 0 && i == MAX_CLIENTS)
				close(fd);
		}
		for (i = 1; i < n; i++) {
			int c = map[i - 1];
			ssize_t len;

			if (!p[i].revents)
				continue;
			len = recv(clients[c].fd, buf, sizeof(buf), MSG_TRUNC);
			if (len <= 0 || (size_t)len > LP_MSG_MAX ||
			    lp_check(buf, (size_t)len) < 0) {
				drop_client(c);
				continue;
			}
			on_packet(c, (const struct lp_msg *)buf);
		}
	}
	unlink(argv[1]);
	return 0;
}
