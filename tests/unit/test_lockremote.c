/*
 * test_lockremote.c — the mesh lock manager (fs/lockremote.c) against a
 * scripted lock service: the test is the service. It listens on a
 * SEQPACKET socket, accepts the manager's connection, reads each packet
 * the manager sends and answers what the case needs, then checks the
 * callbacks (exactly once, the right errno, after the handover hook),
 * the stats and the packets themselves. Also common/lockproto.h's
 * lp_check on malformed packets.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/lockproto.h"
#include "fs/lock.h"

/* ---- lp_check ---- */

static size_t good_msg(void *buf, const char *path)
{
	struct lp_msg m;
	size_t len = strlen(path);

	memset(&m, 0, sizeof(m));
	m.version = LP_VERSION;
	m.type = LP_LOCK;
	m.kind = LOCK_KIND_POSIX;
	m.ltype = LOCK_TYPE_EXCL;
	m.wait = 1;
	m.pathlen = (uint32_t)len;
	memcpy(buf, &m, sizeof(m));
	memcpy((char *)buf + sizeof(m), path, len);
	return sizeof(m) + len;
}

static void test_lp_check(void **state)
{
	static char buf[LP_MSG_MAX + 16];
	struct lp_msg *m = (struct lp_msg *)buf;
	size_t n;

	(void)state;
	n = good_msg(buf, "/a/b");
	assert_int_equal(lp_check(buf, n), 0);
	assert_int_equal(lp_check(buf, sizeof(*m) - 1), -EPROTO);
	assert_int_equal(lp_check(buf, n - 1), -EPROTO);     /* short path */
	assert_int_equal(lp_check(buf, n + 1), -EPROTO);     /* trailing */
	m->version = LP_VERSION + 1;
	assert_int_equal(lp_check(buf, n), -EPROTO);
	n = good_msg(buf, "/a/b");
	m->type = 0;
	assert_int_equal(lp_check(buf, n), -EPROTO);
	m->type = LP_STATE + 1;
	assert_int_equal(lp_check(buf, n), -EPROTO);
	n = good_msg(buf, "/a/b");
	m->reserved = 1;
	assert_int_equal(lp_check(buf, n), -EPROTO);
	n = good_msg(buf, "/a/b");
	m->wait = 2;
	assert_int_equal(lp_check(buf, n), -EPROTO);
	n = good_msg(buf, "/a/b");
	m->kind = 2;
	assert_int_equal(lp_check(buf, n), -EPROTO);
	n = good_msg(buf, "/a/b");
	m->ltype = 3;
	assert_int_equal(lp_check(buf, n), -EPROTO);
	n = good_msg(buf, "/a/b");
	buf[sizeof(*m) + 1] = '\0';                           /* NUL inside */
	assert_int_equal(lp_check(buf, n), -EPROTO);
	n = good_msg(buf, "/a/b");
	m->pathlen = LP_PATH_MAX + 1;
	assert_int_equal(lp_check(buf, sizeof(*m) + LP_PATH_MAX + 1),
			 -EPROTO);
	memset(buf + sizeof(*m), 'x', LP_PATH_MAX);
	m->pathlen = LP_PATH_MAX;
	assert_int_equal(lp_check(buf, LP_MSG_MAX), 0);
	n = good_msg(buf, "");
	assert_int_equal(lp_check(buf, n), 0);
}

/* ---- the scripted service ---- */

struct svc {
	char dir[64], path[128];
	int lfd, cfd;
	struct lockmgr *m;
};

/* Callbacks: how often and with what, and the handover count when
 * they came. */
static pthread_mutex_t cb_mu = PTHREAD_MUTEX_INITIALIZER;
static int cb_calls, cb_err, syncs, cb_syncs;

static void on_cb(void *arg, int err)
{
	(void)arg;
	pthread_mutex_lock(&cb_mu);
	cb_calls++;
	cb_err = err;
	cb_syncs = syncs;
	pthread_mutex_unlock(&cb_mu);
}

static void on_sync(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&cb_mu);
	syncs++;
	pthread_mutex_unlock(&cb_mu);
}

static void cb_reset(void)
{
	pthread_mutex_lock(&cb_mu);
	cb_calls = 0;
	cb_err = 12345;
	pthread_mutex_unlock(&cb_mu);
}

static int cb_count(void)
{
	int n;

	pthread_mutex_lock(&cb_mu);
	n = cb_calls;
	pthread_mutex_unlock(&cb_mu);
	return n;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait (5 s at most) for n callbacks; then 50 ms more for a wrong
 * second one. */
static void wait_cb(int n)
{
	int64_t dl = mono_ms() + 5000;
	struct timespec ts = { 0, 1000000 };

	while (cb_count() < n && mono_ms() < dl)
		nanosleep(&ts, NULL);
	ts.tv_nsec = 50000000;
	nanosleep(&ts, NULL);
	assert_int_equal(cb_count(), n);
}

static struct lock_stats stats_of(struct svc *s)
{
	struct lock_stats st;

	s->m->ops->stats(s->m, &st);
	return st;
}

static int wait_connected(struct svc *s, int want)
{
	int64_t dl = mono_ms() + 5000;
	struct timespec ts = { 0, 1000000 };

	while (stats_of(s).connected != want && mono_ms() < dl)
		nanosleep(&ts, NULL);
	return stats_of(s).connected == want;
}

/* Read one packet from the manager (2 s at most); its length, or -1. */
static ssize_t svc_read(struct svc *s, void *buf, int timeout_ms)
{
	struct pollfd p = { .fd = s->cfd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	n = recv(s->cfd, buf, LP_MSG_MAX, 0);
	if (n > 0)
		assert_int_equal(lp_check(buf, (size_t)n), 0);
	return n;
}

static void svc_send(struct svc *s, uint32_t type, uint64_t id, int err,
		     uint64_t token)
{
	struct lp_msg a;

	memset(&a, 0, sizeof(a));
	a.version = LP_VERSION;
	a.type = type;
	a.id = id;
	a.err = err;
	a.token = token;
	a.lease_ms = 5000;
	assert_int_equal(send(s->cfd, &a, sizeof(a), 0), (ssize_t)sizeof(a));
}

/* Accept the manager's connection and answer its HELLO. */
static void svc_accept(struct svc *s)
{
	char buf[LP_MSG_MAX];
	struct lp_msg *m = (struct lp_msg *)buf;
	struct pollfd p = { .fd = s->lfd, .events = POLLIN };

	assert_int_equal(poll(&p, 1, 5000), 1);
	s->cfd = accept(s->lfd, NULL, NULL);
	assert_true(s->cfd >= 0);
	assert_true(svc_read(s, buf, 2000) > 0);
	assert_int_equal(m->type, LP_HELLO);
	assert_int_equal(m->pathlen, 5);
	assert_memory_equal(m->path, "hostA", 5);
	assert_int_equal(m->pid, getpid());
	svc_send(s, LP_HELLO, 0, 0, 0);
	assert_true(wait_connected(s, 1));
}

static int setup(void **state)
{
	struct svc *s = calloc(1, sizeof(*s));
	struct sockaddr_un sa;
	char err[256];

	snprintf(s->dir, sizeof(s->dir), "/tmp/test_lockremote.XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	snprintf(s->path, sizeof(s->path), "%s/repl.sock", s->dir);
	s->lfd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, s->path);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->lfd, 4), 0);
	s->m = lockmgr_remote_new(s->path, "hostA", on_sync, NULL, err,
				  sizeof(err));
	assert_non_null(s->m);
	assert_int_equal(s->m->mesh, 1);
	svc_accept(s);
	cb_reset();
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	struct svc *s = *state;

	lockmgr_destroy(&s->m);
	if (s->cfd >= 0)
		close(s->cfd);
	close(s->lfd);
	unlink(s->path);
	rmdir(s->dir);
	free(s);
	return 0;
}

static int do_lock(struct svc *s, enum lock_kind kind, enum lock_type type,
		   uint64_t owner, int wait, const char *path,
		   uint64_t *ticket)
{
	struct lock_req r = {
		.path = path, .kind = kind, .type = type, .owner = owner,
		.pid = 77, .wait = wait, .start = 0, .end = UINT64_MAX,
	};

	return s->m->ops->lock(s->m, &r, on_cb, NULL, ticket);
}

/* A grant: LOCK packet fields, RESULT 0, one callback after the hook. */
static void test_grant(void **state)
{
	struct svc *s = *state;
	char buf[LP_MSG_MAX];
	struct lp_msg *m = (struct lp_msg *)buf;
	uint64_t ticket = 0;
	struct lock_stats st;
	int syncs0 = syncs;

	assert_int_equal(do_lock(s, LOCK_KIND_FLOCK, LOCK_TYPE_EXCL, 42, 0,
				 "/x", &ticket), LOCK_QUEUED);
	assert_true(svc_read(s, buf, 2000) > 0);
	assert_int_equal(m->type, LP_LOCK);
	assert_int_equal(m->id, ticket);
	assert_int_equal(m->kind, LOCK_KIND_FLOCK);
	assert_int_equal(m->ltype, LOCK_TYPE_EXCL);
	assert_int_equal(m->owner, 42);
	assert_int_equal(m->pid, 77);
	assert_int_equal(m->wait, 0);
	assert_int_equal(m->pathlen, 2);
	assert_memory_equal(m->path, "/x", 2);
	assert_int_equal(cb_count(), 0);
	svc_send(s, LP_RESULT, ticket, 0, 9);
	wait_cb(1);
	assert_int_equal(cb_err, 0);
	assert_int_equal(cb_syncs, syncs0 + 1); /* the handover came first */
	st = stats_of(s);
	assert_int_equal(st.grants, 1);
	assert_int_equal(st.held_excl, 1);
	assert_int_equal(st.mesh, 1);

	/* unlock: at once, one packet, no callback */
	assert_int_equal(do_lock(s, LOCK_KIND_FLOCK, LOCK_TYPE_UNLOCK, 42, 0,
				 "/x", NULL), 0);
	assert_true(svc_read(s, buf, 2000) > 0);
	assert_int_equal(m->type, LP_LOCK);
	assert_int_equal(m->ltype, LOCK_TYPE_UNLOCK);
	svc_send(s, LP_RESULT, m->id, 0, 0);
	wait_cb(1);
	assert_int_equal(stats_of(s).held_excl, 0);

	/* a busy non-blocking request: -EWOULDBLOCK through the callback */
	cb_reset();
	assert_int_equal(do_lock(s, LOCK_KIND_FLOCK, LOCK_TYPE_SHARED, 43, 0,
				 "/x", &ticket), LOCK_QUEUED);
	assert_true(svc_read(s, buf, 2000) > 0);
	svc_send(s, LP_RESULT, ticket, -EWOULDBLOCK, 0);
	wait_cb(1);
	assert_int_equal(cb_err, -EWOULDBLOCK);
	assert_int_equal(stats_of(s).contentions, 1);
	assert_int_equal(stats_of(s).held_shared, 0);
	/* the handover hook runs for grants only */
	assert_int_equal(syncs, syncs0 + 1);
}

/* Cancelled requests: CANCEL at once, -EINTR once; a grant that came
 * first stands. */
static void test_cancel(void **state)
{
	struct svc *s = *state;
	char buf[LP_MSG_MAX];
	struct lp_msg *m = (struct lp_msg *)buf;
	uint64_t t1 = 0, t2 = 0;

	assert_int_equal(do_lock(s, LOCK_KIND_FLOCK, LOCK_TYPE_EXCL, 1, 1,
				 "/c", &t1), LOCK_QUEUED);
	assert_true(svc_read(s, buf, 2000) > 0);
	assert_int_equal(m->wait, 1);
	svc_send(s, LP_RESULT, t1, LP_QUEUED, 0);
	/* cancel of a request whose LP_QUEUED has not come (a cut-off
	 * host's never does): the CANCEL goes at once */
	assert_int_equal(do_lock(s, LOCK_KIND_FLOCK, LOCK_TYPE_EXCL, 2, 1,
				 "/c", &t2), LOCK_QUEUED);
	assert_true(svc_read(s, buf, 2000) > 0);
	s->m->ops->cancel(s->m, t2);
	assert_true(svc_read(s, buf, 2000) > 0);
	assert_int_equal(m->type, LP_CANCEL);
	assert_int_equal(m->id, t2);
	assert_int_equal(cb_count(), 0);
	svc_send(s, LP_RESULT, t2, -EINTR, 0);
	wait_cb(1);
	assert_int_equal(cb_err, -EINTR);

	/* t1 is queued: cancel sends CANCEL at once, but the grant came
	 * first: 0, once */
	assert_int_equal(stats_of(s).waiters, 1);
	s->m->ops->cancel(s->m, t1);
	assert_true(svc_read(s, buf, 2000) > 0);
	assert_int_equal(m->type, LP_CANCEL);
	assert_int_equal(m->id, t1);
	svc_send(s, LP_RESULT, t1, 0, 5);
	svc_send(s, LP_RESULT, t1, -EINTR, 0);  /* a stray: ignored */
	wait_cb(2);
	assert_int_equal(cb_err, 0);
	assert_int_equal(stats_of(s).waiters, 0);
	assert_int_equal(stats_of(s).cancels, 1);
	assert_int_equal(stats_of(s).held_excl, 1);
}

/* The service side of a query: answer the QUERY with *a (its id). */
struct query_answer {
	struct svc *s;
	struct lp_msg *a;
	size_t len;
	uint32_t got;
};

static void *answer_query(void *arg)
{
	struct query_answer *qa = arg;
	char buf[LP_MSG_MAX];
	struct lp_msg *m = (struct lp_msg *)buf;
	struct pollfd p = { .fd = qa->s->cfd, .events = POLLIN };

	if (poll(&p, 1, 3000) == 1 && recv(qa->s->cfd, buf, sizeof(buf), 0) > 0) {
		qa->got = m->type;
		qa->a->id = m->id;
		if (send(qa->s->cfd, qa->a, qa->len, 0) < 0)
			qa->got = 0;
	}
	return NULL;
}

/* Byte ranges, release and query. */
static void test_range_release_query(void **state)
{
	struct svc *s = *state;
	char buf[LP_MSG_MAX];
	struct lp_msg *m = (struct lp_msg *)buf;
	struct lock_req r = {
		.path = "/r", .kind = LOCK_KIND_POSIX,
		.type = LOCK_TYPE_EXCL, .owner = 5, .pid = 1, .wait = 1,
		.start = 10, .end = 20,
	};
	struct lock_state st;
	uint64_t t = 0;
	struct {
		struct lp_msg m;
		char host[5];
	} a;
	struct query_answer qa;
	pthread_t th;

	assert_int_equal(s->m->ops->lock(s->m, &r, on_cb, NULL, &t), -ENOLCK);
	r.type = LOCK_TYPE_UNLOCK; /* nothing held: fine */
	assert_int_equal(s->m->ops->lock(s->m, &r, NULL, NULL, NULL), 0);
	assert_int_equal(svc_read(s, buf, 100), -1);

	/* release of an owner that holds nothing: no packet */
	s->m->ops->release(s->m, "/r", LOCK_KIND_POSIX, 5);
	assert_int_equal(svc_read(s, buf, 100), -1);

	/* a whole-file POSIX lock, then a partial unlock: -ENOLCK, then
	 * the release (close) sends RELEASE */
	assert_int_equal(do_lock(s, LOCK_KIND_POSIX, LOCK_TYPE_SHARED, 5, 0,
				 "/r", &t), LOCK_QUEUED);
	assert_true(svc_read(s, buf, 2000) > 0);
	svc_send(s, LP_RESULT, t, 0, 0);
	wait_cb(1);
	assert_int_equal(stats_of(s).held_shared, 1);
	assert_int_equal(s->m->ops->lock(s->m, &r, NULL, NULL, NULL), -ENOLCK);
	s->m->ops->release(s->m, "/r", LOCK_KIND_POSIX, 5);
	assert_true(svc_read(s, buf, 2000) > 0);
	assert_int_equal(m->type, LP_RELEASE);
	assert_int_equal(m->kind, LOCK_KIND_POSIX);
	assert_int_equal(m->owner, 5);
	assert_memory_equal(m->path, "/r", 2);
	assert_int_equal(stats_of(s).held_shared, 0);

	/* query: a thread asks, the service answers STATE */
	memset(&a, 0, sizeof(a));
	a.m.version = LP_VERSION;
	a.m.type = LP_STATE;
	a.m.ltype = LOCK_TYPE_EXCL;
	a.m.holders = 1;
	a.m.pid = 4242;
	a.m.token = 777;
	a.m.waiters = 3;
	a.m.pathlen = 5;
	memcpy(a.host, "hostB", 5);
	qa.s = s;
	qa.a = &a.m;
	qa.len = sizeof(a.m) + 5;
	assert_int_equal(pthread_create(&th, NULL, answer_query, &qa), 0);
	r.type = LOCK_TYPE_UNLOCK;
	r.kind = LOCK_KIND_FLOCK;
	r.start = 0;
	r.end = UINT64_MAX;
	assert_int_equal(s->m->ops->query(s->m, &r, &st), 0);
	pthread_join(th, NULL);
	assert_int_equal(qa.got, LP_QUERY);
	assert_int_equal(st.type, LOCK_TYPE_EXCL);
	assert_int_equal(st.holders, 1);
	assert_int_equal(st.pid, 4242);
	assert_int_equal(st.token, 777);
	assert_int_equal(st.waiters, 3);
	assert_string_equal(st.host, "hostB");
	assert_int_equal(st.end, UINT64_MAX);
}

/* Losing the service: pending -ENOLCK, held locks gone, new requests
 * -ENOLCK at once, then a reconnection. */
static void test_lost(void **state)
{
	struct svc *s = *state;
	char buf[LP_MSG_MAX];
	uint64_t t1 = 0, t2 = 0;
	struct lock_stats st;
	struct lock_state ls;
	struct lock_req q = { .path = "/l", .kind = LOCK_KIND_FLOCK };

	assert_int_equal(do_lock(s, LOCK_KIND_FLOCK, LOCK_TYPE_EXCL, 1, 1,
				 "/l", &t1), LOCK_QUEUED);
	assert_true(svc_read(s, buf, 2000) > 0);
	svc_send(s, LP_RESULT, t1, 0, 1);
	wait_cb(1);
	assert_int_equal(do_lock(s, LOCK_KIND_FLOCK, LOCK_TYPE_EXCL, 2, 1,
				 "/l", &t2), LOCK_QUEUED);
	assert_true(svc_read(s, buf, 2000) > 0);
	svc_send(s, LP_RESULT, t2, LP_QUEUED, 0);
	close(s->cfd);
	s->cfd = -1;
	wait_cb(2);
	assert_int_equal(cb_err, -ENOLCK);
	assert_true(wait_connected(s, 0));
	st = stats_of(s);
	assert_int_equal(st.held_excl, 0);
	assert_int_equal(st.waiters, 0);
	assert_int_equal(st.orphans, 1);
	/* while disconnected: blocking or not, at once */
	assert_int_equal(do_lock(s, LOCK_KIND_FLOCK, LOCK_TYPE_EXCL, 3, 1,
				 "/l", NULL), -ENOLCK);
	assert_int_equal(do_lock(s, LOCK_KIND_FLOCK, LOCK_TYPE_SHARED, 3, 0,
				 "/l", NULL), -ENOLCK);
	assert_int_equal(s->m->ops->query(s->m, &q, &ls), -ENOLCK);
	assert_int_equal(do_lock(s, LOCK_KIND_FLOCK, LOCK_TYPE_UNLOCK, 1, 0,
				 "/l", NULL), 0);
	/* it comes back by itself */
	svc_accept(s);
	assert_int_equal(do_lock(s, LOCK_KIND_FLOCK, LOCK_TYPE_EXCL, 3, 1,
				 "/l", &t1), LOCK_QUEUED);
	assert_true(svc_read(s, buf, 2000) > 0);
	svc_send(s, LP_RESULT, t1, 0, 2);
	wait_cb(3);
	assert_int_equal(cb_err, 0);
}

/* Destroy answers pending requests -EINTR. */
static void test_destroy(void **state)
{
	struct svc *s = *state;
	char buf[LP_MSG_MAX];
	uint64_t t = 0;

	assert_int_equal(do_lock(s, LOCK_KIND_FLOCK, LOCK_TYPE_EXCL, 1, 1,
				 "/d", &t), LOCK_QUEUED);
	assert_true(svc_read(s, buf, 2000) > 0);
	svc_send(s, LP_RESULT, t, LP_QUEUED, 0);
	lockmgr_destroy(&s->m);
	assert_int_equal(cb_count(), 1);
	assert_int_equal(cb_err, -EINTR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lp_check),
		cmocka_unit_test_setup_teardown(test_grant, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_range_release_query,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
