/*
 * test_lock.c — the local lock manager (fs/lock.c) alone, without FUSE.
 *
 * Waiters record the order their callbacks run in; tests assert that
 * order exactly, the errno of every refusal, the stats counters and the
 * state query() reports. Holder death is simulated with real child
 * processes (reaped, zombie killed by a signal, zombie that exited), so
 * the /proc reading is exercised too.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fs/lock.h"

#define WHOLE_END UINT64_MAX

/* ---- helpers ---- */

struct record {
	pthread_mutex_t mu;
	int order[4096];
	int errs[4096];
	int n;
};

struct waitarg {
	struct record *rec;
	int id;
	int calls;
};

static void record_cb(void *arg, int err)
{
	struct waitarg *w = arg;

	pthread_mutex_lock(&w->rec->mu);
	w->calls++;
	w->rec->order[w->rec->n] = w->id;
	w->rec->errs[w->rec->n] = err;
	w->rec->n++;
	pthread_mutex_unlock(&w->rec->mu);
}

static void record_init(struct record *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
}

static struct lock_req freq(const char *path, enum lock_type t, uint64_t owner,
			    int wait)
{
	struct lock_req r = {
		.path = path, .kind = LOCK_KIND_FLOCK, .type = t,
		.owner = owner, .pid = (pid_t)(1000 + owner), .wait = wait,
		.start = 0, .end = WHOLE_END,
	};
	return r;
}

static struct lock_req preq(const char *path, enum lock_type t, uint64_t owner,
			    uint64_t start, uint64_t end, int wait)
{
	struct lock_req r = {
		.path = path, .kind = LOCK_KIND_POSIX, .type = t,
		.owner = owner, .pid = (pid_t)(2000 + owner), .wait = wait,
		.start = start, .end = end,
	};
	return r;
}

static int flk(struct lockmgr *m, const char *path, enum lock_type t,
	       uint64_t owner)
{
	struct lock_req r = freq(path, t, owner, 0);

	return m->ops->lock(m, &r, NULL, NULL, NULL);
}

static int flk_wait(struct lockmgr *m, const char *path, enum lock_type t,
		    uint64_t owner, struct waitarg *w, uint64_t *ticket)
{
	struct lock_req r = freq(path, t, owner, 1);

	return m->ops->lock(m, &r, record_cb, w, ticket);
}

static struct lock_state state(struct lockmgr *m, enum lock_kind kind,
			       const char *path)
{
	struct lock_req r = freq(path, LOCK_TYPE_UNLOCK, 0, 0);
	struct lock_state st;

	r.kind = kind;
	assert_int_equal(m->ops->query(m, &r, &st), 0);
	return st;
}

static struct lock_stats stats(struct lockmgr *m)
{
	struct lock_stats s;

	m->ops->stats(m, &s);
	return s;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int setup(void **st)
{
	struct lockmgr *m = lockmgr_local_new("hostA");

	if (!m)
		return -1;
	*st = m;
	return 0;
}

static int teardown(void **st)
{
	struct lockmgr *m = *st;
	struct lock_stats s = stats(m);

	/* every test leaves nothing held and nobody waiting */
	assert_int_equal(s.held_excl, 0);
	assert_int_equal(s.held_shared, 0);
	assert_int_equal(s.waiters, 0);
	lockmgr_destroy(&m);
	assert_null(m);
	return 0;
}

/* ---- flock ---- */

static void test_excl_shared_counting(void **ctx)
{
	struct lockmgr *m = *ctx;
	struct lock_state st;
	struct lock_stats s;

	st = state(m, LOCK_KIND_FLOCK, "/f");
	assert_int_equal(st.type, LOCK_TYPE_UNLOCK);
	assert_int_equal(st.token, 0);

	assert_int_equal(flk(m, "/f", LOCK_TYPE_EXCL, 1), 0);
	st = state(m, LOCK_KIND_FLOCK, "/f");
	assert_int_equal(st.type, LOCK_TYPE_EXCL);
	assert_int_equal(st.holders, 1);
	assert_int_equal(st.pid, 1001);
	assert_string_equal(st.host, "hostA");
	assert_true(st.token > 0);

	assert_int_equal(flk(m, "/f", LOCK_TYPE_EXCL, 2), -EWOULDBLOCK);
	assert_int_equal(flk(m, "/f", LOCK_TYPE_SHARED, 2), -EWOULDBLOCK);
	/* same owner again: nothing changes */
	assert_int_equal(flk(m, "/f", LOCK_TYPE_EXCL, 1), 0);
	/* another path is another lock; POSIX is another namespace */
	assert_int_equal(flk(m, "/g", LOCK_TYPE_EXCL, 2), 0);
	st = state(m, LOCK_KIND_POSIX, "/f");
	assert_int_equal(st.type, LOCK_TYPE_UNLOCK);

	assert_int_equal(flk(m, "/f", LOCK_TYPE_UNLOCK, 1), 0);
	assert_int_equal(flk(m, "/g", LOCK_TYPE_UNLOCK, 2), 0);
	assert_int_equal(flk(m, "/f", LOCK_TYPE_SHARED, 2), 0);
	assert_int_equal(flk(m, "/f", LOCK_TYPE_SHARED, 3), 0);
	assert_int_equal(flk(m, "/f", LOCK_TYPE_SHARED, 4), 0);
	st = state(m, LOCK_KIND_FLOCK, "/f");
	assert_int_equal(st.type, LOCK_TYPE_SHARED);
	assert_int_equal(st.holders, 3);
	assert_int_equal(flk(m, "/f", LOCK_TYPE_EXCL, 5), -EWOULDBLOCK);

	s = stats(m);
	assert_int_equal(s.held_shared, 3);
	assert_int_equal(s.held_excl, 0);
	assert_int_equal(s.grants, 5);
	assert_int_equal(s.contentions, 3);
	assert_int_equal(s.waiters, 0);

	/* unlocking what one does not hold is a no-op */
	assert_int_equal(flk(m, "/f", LOCK_TYPE_UNLOCK, 9), 0);
	assert_int_equal(flk(m, "/nope", LOCK_TYPE_UNLOCK, 9), 0);
	for (int o = 2; o <= 4; o++)
		assert_int_equal(flk(m, "/f", LOCK_TYPE_UNLOCK, o), 0);
	st = state(m, LOCK_KIND_FLOCK, "/f");
	assert_int_equal(st.type, LOCK_TYPE_UNLOCK);
	assert_int_equal(st.holders, 0);
}

static void test_fifo_order(void **ctx)
{
	struct lockmgr *m = *ctx;
	static struct record rec;
	struct waitarg w[7];
	enum lock_type t[7] = { 0, 0, LOCK_TYPE_EXCL, LOCK_TYPE_SHARED,
				LOCK_TYPE_SHARED, LOCK_TYPE_EXCL,
				LOCK_TYPE_SHARED };
	uint64_t tk[7];
	int i;

	record_init(&rec);
	assert_int_equal(flk(m, "/q", LOCK_TYPE_EXCL, 1), 0);
	for (i = 2; i <= 6; i++) {
		w[i] = (struct waitarg){ &rec, i, 0 };
		assert_int_equal(flk_wait(m, "/q", t[i], i, &w[i], &tk[i]),
				 LOCK_QUEUED);
	}
	assert_int_equal(rec.n, 0);
	assert_int_equal(state(m, LOCK_KIND_FLOCK, "/q").waiters, 5);
	assert_int_equal(stats(m).waiters, 5);

	assert_int_equal(flk(m, "/q", LOCK_TYPE_UNLOCK, 1), 0);
	assert_int_equal(rec.n, 1);  /* one exclusive */
	assert_int_equal(rec.order[0], 2);
	assert_int_equal(flk(m, "/q", LOCK_TYPE_UNLOCK, 2), 0);
	assert_int_equal(rec.n, 3);  /* every consecutive shared */
	assert_int_equal(rec.order[1], 3);
	assert_int_equal(rec.order[2], 4);
	assert_int_equal(state(m, LOCK_KIND_FLOCK, "/q").holders, 2);
	m->ops->release(m, "/q", LOCK_KIND_FLOCK, 3);
	assert_int_equal(rec.n, 3);  /* 4 still holds shared */
	m->ops->release(m, "/q", LOCK_KIND_FLOCK, 4);
	assert_int_equal(rec.n, 4);
	assert_int_equal(rec.order[3], 5);
	assert_int_equal(flk(m, "/q", LOCK_TYPE_UNLOCK, 5), 0);
	assert_int_equal(rec.n, 5);
	assert_int_equal(rec.order[4], 6);
	for (i = 0; i < 5; i++)
		assert_int_equal(rec.errs[i], 0);
	for (i = 2; i <= 6; i++)
		assert_int_equal(w[i].calls, 1);
	/* a granted ticket cannot be cancelled */
	m->ops->cancel(m, tk[2]);
	assert_int_equal(rec.n, 5);
	assert_int_equal(stats(m).cancels, 0);
	assert_int_equal(flk(m, "/q", LOCK_TYPE_UNLOCK, 6), 0);
}

static void test_shared_behind_exclusive(void **ctx)
{
	struct lockmgr *m = *ctx;
	static struct record rec;
	struct waitarg w2, w3;
	uint64_t t2, t3;

	record_init(&rec);
	w2 = (struct waitarg){ &rec, 2, 0 };
	w3 = (struct waitarg){ &rec, 3, 0 };
	assert_int_equal(flk(m, "/s", LOCK_TYPE_SHARED, 1), 0);
	assert_int_equal(flk_wait(m, "/s", LOCK_TYPE_EXCL, 2, &w2, &t2),
			 LOCK_QUEUED);
	/* shared would fit the holders, but a writer is queued */
	assert_int_equal(flk(m, "/s", LOCK_TYPE_SHARED, 3), -EWOULDBLOCK);
	assert_int_equal(flk_wait(m, "/s", LOCK_TYPE_SHARED, 3, &w3, &t3),
			 LOCK_QUEUED);
	assert_int_equal(rec.n, 0);
	assert_int_equal(flk(m, "/s", LOCK_TYPE_UNLOCK, 1), 0);
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.order[0], 2);
	assert_int_equal(flk(m, "/s", LOCK_TYPE_UNLOCK, 2), 0);
	assert_int_equal(rec.n, 2);
	assert_int_equal(rec.order[1], 3);
	assert_int_equal(flk(m, "/s", LOCK_TYPE_UNLOCK, 3), 0);
}

static void test_conversion(void **ctx)
{
	struct lockmgr *m = *ctx;
	static struct record rec;
	struct waitarg w1, w3;
	struct lock_state st;
	uint64_t t1, t3, tok;

	record_init(&rec);
	w1 = (struct waitarg){ &rec, 1, 0 };
	w3 = (struct waitarg){ &rec, 3, 0 };
	assert_int_equal(flk(m, "/c", LOCK_TYPE_SHARED, 1), 0);
	assert_int_equal(flk(m, "/c", LOCK_TYPE_SHARED, 2), 0);
	/* SH -> EX is not atomic: the shared lock is dropped first, and
	 * stays dropped when LOCK_NB fails (as on Linux) */
	assert_int_equal(flk(m, "/c", LOCK_TYPE_EXCL, 1), -EWOULDBLOCK);
	st = state(m, LOCK_KIND_FLOCK, "/c");
	assert_int_equal(st.type, LOCK_TYPE_SHARED);
	assert_int_equal(st.holders, 1);
	assert_int_equal(st.pid, 1002);
	assert_int_equal(flk(m, "/c", LOCK_TYPE_SHARED, 1), 0);
	assert_int_equal(flk_wait(m, "/c", LOCK_TYPE_EXCL, 1, &w1, &t1),
			 LOCK_QUEUED);
	assert_int_equal(state(m, LOCK_KIND_FLOCK, "/c").holders, 1);
	assert_int_equal(flk_wait(m, "/c", LOCK_TYPE_SHARED, 3, &w3, &t3),
			 LOCK_QUEUED);
	assert_int_equal(flk(m, "/c", LOCK_TYPE_UNLOCK, 2), 0);
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.order[0], 1);
	st = state(m, LOCK_KIND_FLOCK, "/c");
	assert_int_equal(st.type, LOCK_TYPE_EXCL);
	assert_int_equal(st.pid, 1001);
	tok = st.token;
	/* EX -> SH is immediate and lets the queued shared one in */
	assert_int_equal(flk(m, "/c", LOCK_TYPE_SHARED, 1), 0);
	assert_int_equal(rec.n, 2);
	assert_int_equal(rec.order[1], 3);
	st = state(m, LOCK_KIND_FLOCK, "/c");
	assert_int_equal(st.type, LOCK_TYPE_SHARED);
	assert_int_equal(st.holders, 2);
	assert_int_equal(st.token, tok);  /* shared grants keep the token */
	assert_int_equal(stats(m).held_shared, 2);
	assert_int_equal(stats(m).held_excl, 0);
	assert_int_equal(flk(m, "/c", LOCK_TYPE_UNLOCK, 1), 0);
	assert_int_equal(flk(m, "/c", LOCK_TYPE_UNLOCK, 3), 0);
}

static void test_cancel(void **ctx)
{
	struct lockmgr *m = *ctx;
	static struct record rec;
	struct waitarg w2, w3, w4;
	uint64_t t2, t3, t4;
	struct lock_stats s;

	record_init(&rec);
	w2 = (struct waitarg){ &rec, 2, 0 };
	w3 = (struct waitarg){ &rec, 3, 0 };
	w4 = (struct waitarg){ &rec, 4, 0 };
	assert_int_equal(flk(m, "/x", LOCK_TYPE_EXCL, 1), 0);
	assert_int_equal(flk_wait(m, "/x", LOCK_TYPE_EXCL, 2, &w2, &t2),
			 LOCK_QUEUED);
	m->ops->cancel(m, t2);
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.order[0], 2);
	assert_int_equal(rec.errs[0], -EINTR);
	m->ops->cancel(m, t2);  /* exactly once */
	m->ops->cancel(m, 987654);  /* unknown ticket: nothing */
	assert_int_equal(w2.calls, 1);
	s = stats(m);
	assert_int_equal(s.cancels, 1);
	assert_int_equal(s.waiters, 0);
	/* no leak: unlocking frees the lock object entirely */
	assert_int_equal(flk(m, "/x", LOCK_TYPE_UNLOCK, 1), 0);
	assert_int_equal(state(m, LOCK_KIND_FLOCK, "/x").token, 0);

	/* cancelling the queue head lets the shared ones behind it in */
	assert_int_equal(flk(m, "/x", LOCK_TYPE_SHARED, 1), 0);
	assert_int_equal(flk_wait(m, "/x", LOCK_TYPE_EXCL, 3, &w3, &t3),
			 LOCK_QUEUED);
	assert_int_equal(flk_wait(m, "/x", LOCK_TYPE_SHARED, 4, &w4, &t4),
			 LOCK_QUEUED);
	m->ops->cancel(m, t3);
	assert_int_equal(rec.n, 3);
	assert_int_equal(rec.order[1], 3);
	assert_int_equal(rec.errs[1], -EINTR);
	assert_int_equal(rec.order[2], 4);
	assert_int_equal(rec.errs[2], 0);
	assert_int_equal(state(m, LOCK_KIND_FLOCK, "/x").holders, 2);
	m->ops->cancel(m, t4);  /* granted already: the grant stands */
	assert_int_equal(rec.n, 3);
	assert_int_equal(stats(m).cancels, 2);
	m->ops->release(m, "/x", LOCK_KIND_FLOCK, 1);
	m->ops->release(m, "/x", LOCK_KIND_FLOCK, 4);
}

/* Cancel a waiter from inside another waiter's grant callback: the
 * manager must not hold its mutex while calling back. */
struct reenter {
	struct lockmgr *m;
	uint64_t ticket;
	int calls;
};

static void reenter_cb(void *arg, int err)
{
	struct reenter *r = arg;

	assert_int_equal(err, 0);
	r->calls++;
	r->m->ops->cancel(r->m, r->ticket);
	assert_int_equal(flk(r->m, "/r", LOCK_TYPE_UNLOCK, 2), 0);
}

static void test_callback_reentry(void **ctx)
{
	struct lockmgr *m = *ctx;
	static struct record rec;
	struct reenter r = { m, 0, 0 };
	struct waitarg w3;
	struct lock_req q = freq("/r", LOCK_TYPE_EXCL, 2, 1);
	uint64_t t2;

	record_init(&rec);
	w3 = (struct waitarg){ &rec, 3, 0 };
	assert_int_equal(flk(m, "/r", LOCK_TYPE_EXCL, 1), 0);
	assert_int_equal(m->ops->lock(m, &q, reenter_cb, &r, &t2), LOCK_QUEUED);
	assert_int_equal(flk_wait(m, "/r", LOCK_TYPE_EXCL, 3, &w3, &r.ticket),
			 LOCK_QUEUED);
	assert_int_equal(flk(m, "/r", LOCK_TYPE_UNLOCK, 1), 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.errs[0], -EINTR);
	assert_int_equal(state(m, LOCK_KIND_FLOCK, "/r").type,
			 LOCK_TYPE_UNLOCK);
}

static pid_t child_dead(int how)
{
	pid_t pid = fork();
	siginfo_t si;

	assert_true(pid >= 0);
	if (pid == 0) {
		if (how == 2)
			pause();
		_exit(0);
	}
	if (how == 2)
		kill(pid, SIGKILL);
	/* wait for the zombie without reaping it (how 1, 2) or reap (0) */
	memset(&si, 0, sizeof(si));
	assert_int_equal(waitid(P_PID, pid, &si,
				WEXITED | (how ? WNOWAIT : 0)), 0);
	return pid;
}

static void reap(pid_t pid)
{
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

static void test_release_and_orphans(void **ctx)
{
	struct lockmgr *m = *ctx;
	static struct record rec;
	struct waitarg w2;
	struct lock_req r;
	uint64_t t2;
	pid_t reaped, killed, exited;

	record_init(&rec);
	w2 = (struct waitarg){ &rec, 2, 0 };
	/* a live holder closing its file: freed, next granted, no orphan */
	r = freq("/o", LOCK_TYPE_EXCL, 1, 0);
	r.pid = getpid();
	assert_int_equal(m->ops->lock(m, &r, NULL, NULL, NULL), 0);
	r = freq("/o", LOCK_TYPE_EXCL, 2, 1);
	r.pid = getpid();
	assert_int_equal(m->ops->lock(m, &r, record_cb, &w2, &t2),
			 LOCK_QUEUED);
	m->ops->release(m, "/o", LOCK_KIND_FLOCK, 1);
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.order[0], 2);
	assert_int_equal(stats(m).orphans, 0);
	m->ops->release(m, "/o", LOCK_KIND_FLOCK, 2);
	assert_int_equal(stats(m).orphans, 0);

	killed = child_dead(2);
	exited = child_dead(1);
	reaped = child_dead(0);

	r = freq("/o1", LOCK_TYPE_EXCL, 11, 0);
	r.pid = killed;
	assert_int_equal(m->ops->lock(m, &r, NULL, NULL, NULL), 0);
	r = freq("/o2", LOCK_TYPE_SHARED, 12, 0);
	r.pid = exited;
	assert_int_equal(m->ops->lock(m, &r, NULL, NULL, NULL), 0);
	r = preq("/o3", LOCK_TYPE_EXCL, 13, 0, WHOLE_END, 0);
	r.pid = reaped;
	assert_int_equal(m->ops->lock(m, &r, NULL, NULL, NULL), 0);

	m->ops->release(m, "/o1", LOCK_KIND_FLOCK, 11);  /* killed zombie */
	assert_int_equal(stats(m).orphans, 1);
	m->ops->release(m, "/o2", LOCK_KIND_FLOCK, 12);  /* exit(0) zombie */
	assert_int_equal(stats(m).orphans, 1);
	m->ops->release(m, "/o3", LOCK_KIND_FLOCK, 13);  /* wrong kind */
	assert_int_equal(stats(m).held_excl, 1);
	m->ops->release(m, "/o3", LOCK_KIND_POSIX, 13);  /* reaped */
	assert_int_equal(stats(m).orphans, 2);
	assert_int_equal(stats(m).held_excl, 0);
	reap(killed);
	reap(exited);
}

static void test_tokens(void **ctx)
{
	struct lockmgr *m = *ctx, *m2;
	uint64_t t1, t2, t3, t4, before = now_us();

	assert_int_equal(flk(m, "/t", LOCK_TYPE_EXCL, 1), 0);
	t1 = state(m, LOCK_KIND_FLOCK, "/t").token;
	assert_true(t1 >= before);
	assert_true(t1 <= now_us());
	/* the lock object is freed in between: the token still grows */
	assert_int_equal(flk(m, "/t", LOCK_TYPE_UNLOCK, 1), 0);
	assert_int_equal(state(m, LOCK_KIND_FLOCK, "/t").token, 0);
	assert_int_equal(flk(m, "/t", LOCK_TYPE_EXCL, 2), 0);
	t2 = state(m, LOCK_KIND_FLOCK, "/t").token;
	assert_true(t2 > t1);
	/* back to back on a held object: +1 at least, every time */
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(flk(m, "/t", LOCK_TYPE_SHARED, 2), 0);
		assert_int_equal(flk(m, "/t", LOCK_TYPE_SHARED, 3), 0);
		assert_int_equal(flk(m, "/t", LOCK_TYPE_UNLOCK, 2), 0);
		assert_int_equal(flk(m, "/t", LOCK_TYPE_EXCL, 3), 0);
		t3 = state(m, LOCK_KIND_FLOCK, "/t").token;
		assert_true(t3 > t2);
		t2 = t3;
		assert_int_equal(flk(m, "/t", LOCK_TYPE_UNLOCK, 3), 0);
		assert_int_equal(flk(m, "/t", LOCK_TYPE_EXCL, 2), 0);
		t3 = state(m, LOCK_KIND_FLOCK, "/t").token;
		assert_true(t3 > t2);
		t2 = t3;
	}
	assert_int_equal(flk(m, "/t", LOCK_TYPE_UNLOCK, 2), 0);

	/* a new manager (a restart of the mount) continues above */
	m2 = lockmgr_local_new("hostB");
	assert_non_null(m2);
	lockmgr_destroy(&m2);
	for (int round = 0; round < 3; round++) {
		struct lockmgr *old = lockmgr_local_new("hostB");

		assert_non_null(old);
		assert_int_equal(flk(old, "/t", LOCK_TYPE_EXCL, 1), 0);
		t3 = state(old, LOCK_KIND_FLOCK, "/t").token;
		/* (m is still alive in round 0: only destroyed managers
		 * bound the next one) */
		assert_true(round == 0 || t3 > t2);
		/* a burst that runs ahead of the clock on one lock */
		for (int i = 0; i < 20000; i++) {
			assert_int_equal(flk(old, "/t", LOCK_TYPE_UNLOCK, 1), 0);
			assert_int_equal(flk(old, "/t", LOCK_TYPE_EXCL, 2), 0);
			assert_int_equal(flk(old, "/t", LOCK_TYPE_UNLOCK, 2), 0);
			assert_int_equal(flk(old, "/t", LOCK_TYPE_EXCL, 1), 0);
		}
		t2 = state(old, LOCK_KIND_FLOCK, "/t").token;
		lockmgr_destroy(&old);  /* does not unlock: destroy drops */
		m2 = lockmgr_local_new("hostC");
		assert_int_equal(flk(m2, "/t", LOCK_TYPE_EXCL, 9), 0);
		t4 = state(m2, LOCK_KIND_FLOCK, "/t").token;
		assert_true(t4 > t2);
		t2 = t4;
		lockmgr_destroy(&m2);
	}
}

/* ---- POSIX ---- */

static int plk(struct lockmgr *m, enum lock_type t, uint64_t owner,
	       uint64_t start, uint64_t end)
{
	struct lock_req r = preq("/p", t, owner, start, end, 0);

	return m->ops->lock(m, &r, NULL, NULL, NULL);
}

static struct lock_state getlk(struct lockmgr *m, enum lock_type t,
			       uint64_t owner, uint64_t start, uint64_t end)
{
	struct lock_req r = preq("/p", t, owner, start, end, 0);
	struct lock_state st;

	assert_int_equal(m->ops->query(m, &r, &st), 0);
	return st;
}

static void test_posix_ranges(void **ctx)
{
	struct lockmgr *m = *ctx;
	static struct record rec;
	struct lock_state st;
	struct waitarg w3;
	struct lock_req r;
	uint64_t t3;

	record_init(&rec);
	assert_int_equal(plk(m, LOCK_TYPE_EXCL, 1, 0, 99), 0);
	assert_int_equal(plk(m, LOCK_TYPE_SHARED, 2, 50, 60), -EAGAIN);
	st = getlk(m, LOCK_TYPE_SHARED, 2, 50, 60);
	assert_int_equal(st.type, LOCK_TYPE_EXCL);
	assert_int_equal(st.start, 0);
	assert_int_equal(st.end, 99);
	assert_int_equal(st.pid, 2001);
	/* no conflict with oneself, nor outside the range */
	assert_int_equal(getlk(m, LOCK_TYPE_EXCL, 1, 0, 99).type,
			 LOCK_TYPE_UNLOCK);
	assert_int_equal(getlk(m, LOCK_TYPE_EXCL, 2, 100, 200).type,
			 LOCK_TYPE_UNLOCK);
	assert_int_equal(plk(m, LOCK_TYPE_SHARED, 2, 100, WHOLE_END), 0);

	/* unlock the middle: the owner's lock is split in two */
	assert_int_equal(plk(m, LOCK_TYPE_UNLOCK, 1, 40, 59), 0);
	assert_int_equal(stats(m).held_excl, 2);
	assert_int_equal(plk(m, LOCK_TYPE_EXCL, 2, 40, 59), 0);
	assert_int_equal(plk(m, LOCK_TYPE_SHARED, 2, 39, 40), -EAGAIN);
	st = getlk(m, LOCK_TYPE_SHARED, 3, 45, 55);
	assert_int_equal(st.type, LOCK_TYPE_EXCL);
	assert_int_equal(st.start, 40);
	assert_int_equal(st.end, 59);
	assert_int_equal(st.pid, 2002);
	assert_int_equal(plk(m, LOCK_TYPE_UNLOCK, 2, 40, 59), 0);

	/* same owner replaces: exclusive 0..39 becomes shared 0..99 */
	assert_int_equal(plk(m, LOCK_TYPE_SHARED, 1, 0, 99), 0);
	assert_int_equal(stats(m).held_excl, 0);
	assert_int_equal(plk(m, LOCK_TYPE_SHARED, 3, 10, 20), 0);
	assert_int_equal(plk(m, LOCK_TYPE_EXCL, 3, 10, 20), -EAGAIN);
	/* shared segments of one owner that touch are merged */
	assert_int_equal(stats(m).held_shared, 3);
	assert_int_equal(plk(m, LOCK_TYPE_SHARED, 1, 100, 199), 0);
	assert_int_equal(stats(m).held_shared, 3);
	assert_int_equal(plk(m, LOCK_TYPE_UNLOCK, 3, 0, WHOLE_END), 0);

	/* a whole-file writer waits for everybody, then gets it */
	w3 = (struct waitarg){ &rec, 3, 0 };
	r = preq("/p", LOCK_TYPE_EXCL, 3, 0, WHOLE_END, 1);
	assert_int_equal(m->ops->lock(m, &r, record_cb, &w3, &t3), LOCK_QUEUED);
	st = state(m, LOCK_KIND_POSIX, "/p");
	assert_int_equal(st.type, LOCK_TYPE_SHARED);
	assert_int_equal(st.holders, 2);
	assert_int_equal(st.waiters, 1);
	m->ops->release(m, "/p", LOCK_KIND_POSIX, 1);
	assert_int_equal(rec.n, 0);
	m->ops->release(m, "/p", LOCK_KIND_POSIX, 2);
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.errs[0], 0);
	st = state(m, LOCK_KIND_POSIX, "/p");
	assert_int_equal(st.type, LOCK_TYPE_EXCL);
	assert_int_equal(st.pid, 2003);
	assert_true(st.token > 0);
	/* POSIX waiters on disjoint ranges do not block each other */
	{
		struct waitarg w4 = { &rec, 4, 0 }, w5 = { &rec, 5, 0 };
		uint64_t t4, t5;

		assert_int_equal(plk(m, LOCK_TYPE_UNLOCK, 3, 0, WHOLE_END), 0);
		assert_int_equal(plk(m, LOCK_TYPE_EXCL, 6, 0, 9), 0);
		assert_int_equal(plk(m, LOCK_TYPE_EXCL, 7, 10, 19), 0);
		r = preq("/p", LOCK_TYPE_EXCL, 4, 0, 9, 1);
		assert_int_equal(m->ops->lock(m, &r, record_cb, &w4, &t4),
				 LOCK_QUEUED);
		r = preq("/p", LOCK_TYPE_EXCL, 5, 10, 19, 1);
		assert_int_equal(m->ops->lock(m, &r, record_cb, &w5, &t5),
				 LOCK_QUEUED);
		m->ops->release(m, "/p", LOCK_KIND_POSIX, 7);
		assert_int_equal(rec.n, 2);
		assert_int_equal(rec.order[1], 5);
		m->ops->release(m, "/p", LOCK_KIND_POSIX, 6);
		assert_int_equal(rec.n, 3);
		assert_int_equal(rec.order[2], 4);
		m->ops->release(m, "/p", LOCK_KIND_POSIX, 4);
		m->ops->release(m, "/p", LOCK_KIND_POSIX, 5);
	}
	assert_int_equal(state(m, LOCK_KIND_POSIX, "/p").type,
			 LOCK_TYPE_UNLOCK);
}

/* POSIX deadlocks: a blocking request that would wait for its own owner
 * through a chain of waits is EDEADLK at once (Linux's answer); the
 * waits already queued stay and are granted as the holders go. */
/* An owner with two requests waiting, EX then SH, ends SH: a SH waiter
 * passed over while it held EX fits then and is granted in the same
 * release (the grant once took one pass and left it waiting). */
static void test_posix_downgrade(void **ctx)
{
	struct lockmgr *m = *ctx;
	static struct record rec;
	struct waitarg w[3];
	struct lock_req r;
	struct lock_state st;
	static const struct { enum lock_type t; uint64_t owner; } q[3] = {
		{ LOCK_TYPE_EXCL, 3 }, { LOCK_TYPE_SHARED, 4 },
		{ LOCK_TYPE_SHARED, 3 },
	};
	uint64_t ticket;
	int i;

	record_init(&rec);
	assert_int_equal(plk(m, LOCK_TYPE_EXCL, 1, 0, WHOLE_END), 0);
	for (i = 0; i < 3; i++) {
		w[i] = (struct waitarg){ &rec, i, 0 };
		r = preq("/p", q[i].t, q[i].owner, 0, WHOLE_END, 1);
		assert_int_equal(m->ops->lock(m, &r, record_cb, &w[i], &ticket),
				 LOCK_QUEUED);
	}
	m->ops->release(m, "/p", LOCK_KIND_POSIX, 1);
	assert_int_equal(rec.n, 3);
	assert_int_equal(rec.order[0], 0); /* 3: EX */
	assert_int_equal(rec.order[1], 2); /* 3: SH, replacing it */
	assert_int_equal(rec.order[2], 1); /* 4: SH */
	for (i = 0; i < 3; i++)
		assert_int_equal(rec.errs[i], 0);
	st = state(m, LOCK_KIND_POSIX, "/p");
	assert_int_equal(st.type, LOCK_TYPE_SHARED);
	assert_int_equal(st.holders, 2);
	assert_int_equal(st.waiters, 0);
	m->ops->release(m, "/p", LOCK_KIND_POSIX, 3);
	m->ops->release(m, "/p", LOCK_KIND_POSIX, 4);
}

static void test_posix_deadlock(void **ctx)
{
	struct lockmgr *m = *ctx;
	static struct record rec;
	struct waitarg w1, w2, w3;
	struct lock_req r;
	uint64_t t1, t2, t3;

	record_init(&rec);
	w1 = (struct waitarg){ &rec, 1, 0 };
	w2 = (struct waitarg){ &rec, 2, 0 };
	w3 = (struct waitarg){ &rec, 3, 0 };

	/* crossed bytes: A holds 0 and waits for 1, B holds 1, asks 0 */
	assert_int_equal(plk(m, LOCK_TYPE_EXCL, 1, 0, 0), 0);
	assert_int_equal(plk(m, LOCK_TYPE_EXCL, 2, 1, 1), 0);
	r = preq("/p", LOCK_TYPE_EXCL, 1, 1, 1, 1);
	assert_int_equal(m->ops->lock(m, &r, record_cb, &w1, &t1), LOCK_QUEUED);
	r = preq("/p", LOCK_TYPE_EXCL, 2, 0, 0, 1);
	assert_int_equal(m->ops->lock(m, &r, record_cb, &w2, &t2), -EDEADLK);
	/* non-blocking still says EAGAIN; B's lock and A's wait stand */
	r.wait = 0;
	assert_int_equal(m->ops->lock(m, &r, NULL, NULL, NULL), -EAGAIN);
	assert_int_equal(state(m, LOCK_KIND_POSIX, "/p").waiters, 1);
	m->ops->release(m, "/p", LOCK_KIND_POSIX, 2);
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.order[0], 1);
	assert_int_equal(rec.errs[0], 0);
	m->ops->release(m, "/p", LOCK_KIND_POSIX, 1);

	/* a cycle of three owners over two files; shared does not block
	 * shared, so a reader in the chain breaks it */
	assert_int_equal(plk(m, LOCK_TYPE_EXCL, 1, 0, 9), 0);
	r = preq("/q", LOCK_TYPE_SHARED, 2, 0, 9, 0);
	assert_int_equal(m->ops->lock(m, &r, NULL, NULL, NULL), 0);
	r = preq("/q", LOCK_TYPE_SHARED, 3, 0, 9, 0);
	assert_int_equal(m->ops->lock(m, &r, NULL, NULL, NULL), 0);
	/* 1 waits for 2 (and 3) on /q */
	r = preq("/q", LOCK_TYPE_EXCL, 1, 5, 5, 1);
	assert_int_equal(m->ops->lock(m, &r, record_cb, &w1, &t1), LOCK_QUEUED);
	/* 2 waits for 1 on /p: 2 -> 1 -> {2, 3}: a cycle */
	r = preq("/p", LOCK_TYPE_SHARED, 2, 3, 3, 1);
	assert_int_equal(m->ops->lock(m, &r, record_cb, &w2, &t2), -EDEADLK);
	/* 3 waits for 1 on /p: 3 -> 1 -> {2, 3}: a cycle too */
	r = preq("/p", LOCK_TYPE_EXCL, 3, 9, 9, 1);
	assert_int_equal(m->ops->lock(m, &r, record_cb, &w3, &t3), -EDEADLK);
	/* 4 waits for 1: no cycle, it queues */
	{
		struct waitarg w4 = { &rec, 4, 0 };
		uint64_t t4;

		r = preq("/p", LOCK_TYPE_EXCL, 4, 0, 0, 1);
		assert_int_equal(m->ops->lock(m, &r, record_cb, &w4, &t4),
				 LOCK_QUEUED);
		m->ops->release(m, "/q", LOCK_KIND_POSIX, 2);
		m->ops->release(m, "/q", LOCK_KIND_POSIX, 3);
		assert_int_equal(rec.n, 2); /* 1 gets /q 5 */
		assert_int_equal(rec.order[1], 1);
		m->ops->release(m, "/p", LOCK_KIND_POSIX, 1);
		m->ops->release(m, "/q", LOCK_KIND_POSIX, 1);
		assert_int_equal(rec.n, 3); /* 4 gets /p 0 */
		assert_int_equal(rec.order[2], 4);
		m->ops->release(m, "/p", LOCK_KIND_POSIX, 4);
	}
	/* a cancelled wait leaves no edge behind */
	assert_int_equal(plk(m, LOCK_TYPE_EXCL, 1, 0, 0), 0);
	assert_int_equal(plk(m, LOCK_TYPE_EXCL, 2, 1, 1), 0);
	r = preq("/p", LOCK_TYPE_EXCL, 1, 1, 1, 1);
	assert_int_equal(m->ops->lock(m, &r, record_cb, &w1, &t1), LOCK_QUEUED);
	m->ops->cancel(m, t1);
	assert_int_equal(rec.errs[3], -EINTR);
	r = preq("/p", LOCK_TYPE_EXCL, 2, 0, 0, 1);
	assert_int_equal(m->ops->lock(m, &r, record_cb, &w2, &t2), LOCK_QUEUED);
	m->ops->release(m, "/p", LOCK_KIND_POSIX, 1);
	assert_int_equal(rec.n, 5);
	assert_int_equal(rec.order[4], 2);
	m->ops->release(m, "/p", LOCK_KIND_POSIX, 2);
	/* flock has no deadlock check (as on Linux): crossed flocks wait */
	assert_int_equal(flk(m, "/a", LOCK_TYPE_EXCL, 1), 0);
	assert_int_equal(flk(m, "/b", LOCK_TYPE_EXCL, 2), 0);
	assert_int_equal(flk_wait(m, "/b", LOCK_TYPE_EXCL, 1, &w1, &t1),
			 LOCK_QUEUED);
	assert_int_equal(flk_wait(m, "/a", LOCK_TYPE_EXCL, 2, &w2, &t2),
			 LOCK_QUEUED);
	m->ops->cancel(m, t1);
	m->ops->cancel(m, t2);
	assert_int_equal(flk(m, "/a", LOCK_TYPE_UNLOCK, 1), 0);
	assert_int_equal(flk(m, "/b", LOCK_TYPE_UNLOCK, 2), 0);
}

static void test_bad_requests(void **ctx)
{
	struct lockmgr *m = *ctx;
	struct lock_req r = preq("/b", LOCK_TYPE_EXCL, 1, 10, 5, 0);

	assert_int_equal(m->ops->lock(m, &r, NULL, NULL, NULL), -EINVAL);
	r = freq("/b", LOCK_TYPE_EXCL, 1, 1);
	/* waiting without a callback is our bug: refused */
	assert_int_equal(m->ops->lock(m, &r, NULL, NULL, NULL), -EINVAL);
	r = freq("/b", (enum lock_type)7, 1, 0);
	assert_int_equal(m->ops->lock(m, &r, NULL, NULL, NULL), -EINVAL);
}

/* ---- scale ---- */

static double elapsed(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (b.tv_sec - a->tv_sec) + (b.tv_nsec - a->tv_nsec) / 1e9;
}

static void test_scale_100k(void **ctx)
{
	struct lockmgr *m = *ctx;
	char path[64];
	struct timespec t0;
	struct lock_stats s;
	double dt_lock, dt_free;
	int i;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 100000; i++) {
		snprintf(path, sizeof(path), "/many/%d", i);
		/* 50 owners x 2000 files, half exclusive, half shared */
		assert_int_equal(flk(m, path, i % 2 ? LOCK_TYPE_SHARED :
						      LOCK_TYPE_EXCL,
				     (uint64_t)(i % 50) << 32 | (uint64_t)i),
				 0);
	}
	dt_lock = elapsed(&t0);
	s = stats(m);
	assert_int_equal(s.held_excl, 50000);
	assert_int_equal(s.held_shared, 50000);
	assert_int_equal(flk(m, "/many/77", LOCK_TYPE_EXCL, 1), -EWOULDBLOCK);
	assert_int_equal(flk(m, "/many/78", LOCK_TYPE_SHARED, 1), -EWOULDBLOCK);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 100000; i++) {
		snprintf(path, sizeof(path), "/many/%d", i);
		m->ops->release(m, path, LOCK_KIND_FLOCK,
				(uint64_t)(i % 50) << 32 | (uint64_t)i);
	}
	dt_free = elapsed(&t0);
	s = stats(m);
	assert_int_equal(s.held_excl, 0);
	assert_int_equal(s.held_shared, 0);
	for (i = 0; i < 100000; i += 997) {
		snprintf(path, sizeof(path), "/many/%d", i);
		assert_int_equal(state(m, LOCK_KIND_FLOCK, path).type,
				 LOCK_TYPE_UNLOCK);
		assert_int_equal(state(m, LOCK_KIND_FLOCK, path).token, 0);
	}
	printf("lock_100k_acquire %.3f s (%.0f locks/s)\n", dt_lock,
	       100000 / dt_lock);
	printf("lock_100k_release %.3f s (%.0f locks/s)\n", dt_free,
	       100000 / dt_free);
}

static void test_scale_2000_waiters(void **ctx)
{
	struct lockmgr *m = *ctx;
	static struct record rec;
	static struct waitarg w[2001];
	uint64_t t;
	int i;

	record_init(&rec);
	assert_int_equal(flk(m, "/w", LOCK_TYPE_EXCL, 100000), 0);
	for (i = 1; i <= 2000; i++) {
		w[i] = (struct waitarg){ &rec, i, 0 };
		assert_int_equal(flk_wait(m, "/w", i % 3 ? LOCK_TYPE_EXCL :
							  LOCK_TYPE_SHARED,
					  i, &w[i], &t),
				 LOCK_QUEUED);
	}
	assert_int_equal(stats(m).waiters, 2000);
	m->ops->release(m, "/w", LOCK_KIND_FLOCK, 100000);
	/* one at a time, in arrival order (no two shared are adjacent) */
	for (i = 1; i <= 2000; i++) {
		assert_int_equal(rec.n, i);
		assert_int_equal(rec.order[i - 1], i);
		assert_int_equal(rec.errs[i - 1], 0);
		assert_int_equal(w[i].calls, 1);
		m->ops->release(m, "/w", LOCK_KIND_FLOCK, i);
	}
	for (i = 1; i <= 2000; i++)
		m->ops->release(m, "/w", LOCK_KIND_FLOCK, i);
	assert_int_equal(stats(m).waiters, 0);
	assert_int_equal(stats(m).grants, 2001);
}

/* ---- threads: mutual exclusion with asynchronous grants ---- */

struct tctx {
	struct lockmgr *m;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	long inside, counter, violations;
};

struct tw {
	struct tctx *c;
	int granted, err;
};

static void tw_cb(void *arg, int err)
{
	struct tw *w = arg;

	pthread_mutex_lock(&w->c->mu);
	w->granted = 1;
	w->err = err;
	pthread_cond_broadcast(&w->c->cv);
	pthread_mutex_unlock(&w->c->mu);
}

static void *thread_main(void *arg)
{
	struct tctx *c = arg;
	uint64_t owner = (uint64_t)(uintptr_t)pthread_self();
	int i;

	for (i = 0; i < 2000; i++) {
		struct lock_req r = freq("/mt", i % 4 ? LOCK_TYPE_EXCL :
							LOCK_TYPE_SHARED,
					 owner, 1);
		struct tw w = { c, 0, 0 };
		uint64_t t;
		int ret = c->m->ops->lock(c->m, &r, tw_cb, &w, &t);

		if (ret == LOCK_QUEUED) {
			pthread_mutex_lock(&c->mu);
			while (!w.granted)
				pthread_cond_wait(&c->cv, &c->mu);
			pthread_mutex_unlock(&c->mu);
			ret = w.err;
		}
		if (ret != 0) {
			__atomic_add_fetch(&c->violations, 1, __ATOMIC_SEQ_CST);
			continue;
		}
		if (r.type == LOCK_TYPE_EXCL) {
			if (__atomic_add_fetch(&c->inside, 1,
					       __ATOMIC_SEQ_CST) != 1)
				__atomic_add_fetch(&c->violations, 1,
						   __ATOMIC_SEQ_CST);
			c->counter++;
			__atomic_sub_fetch(&c->inside, 1, __ATOMIC_SEQ_CST);
		}
		r.type = LOCK_TYPE_UNLOCK;
		assert_int_equal(c->m->ops->lock(c->m, &r, NULL, NULL, NULL),
				 0);
	}
	return NULL;
}

static void test_threads(void **ctx)
{
	struct tctx c = { .m = *ctx };
	pthread_t th[8];
	int i;

	pthread_mutex_init(&c.mu, NULL);
	pthread_cond_init(&c.cv, NULL);
	for (i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&th[i], NULL, thread_main, &c),
				 0);
	for (i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(c.violations, 0);
	assert_int_equal(c.counter, 8 * 1500);
	pthread_cond_destroy(&c.cv);
	pthread_mutex_destroy(&c.mu);
}

/* destroy with waiters queued: each gets -EINTR, once */
static void test_destroy_pending(void **ctx)
{
	static struct record rec;
	struct waitarg w2;
	struct lockmgr *m = lockmgr_local_new(NULL);
	uint64_t t;

	(void)ctx;
	record_init(&rec);
	w2 = (struct waitarg){ &rec, 2, 0 };
	assert_non_null(m);
	assert_int_equal(flk(m, "/d", LOCK_TYPE_EXCL, 1), 0);
	assert_int_equal(state(m, LOCK_KIND_FLOCK, "/d").host[0] != 0, 1);
	assert_int_equal(flk_wait(m, "/d", LOCK_TYPE_EXCL, 2, &w2, &t),
			 LOCK_QUEUED);
	lockmgr_destroy(&m);
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.errs[0], -EINTR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_excl_shared_counting,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_shared_behind_exclusive,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_conversion, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_callback_reentry, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_release_and_orphans,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_posix_ranges, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_posix_downgrade, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_posix_deadlock, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_scale_100k, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_scale_2000_waiters, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
		cmocka_unit_test(test_destroy_pending),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
