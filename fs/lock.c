/*
 * lock.c — the local lock manager: flock(2) and fcntl(2) locks of one
 * mount, held in memory.
 *
 * Why in memory: a lock must vanish when its holder dies, and the holder
 * is a process on this host whose death the kernel reports to us (FUSE
 * release/flush). Nothing about a lock has to survive the mount, except
 * that the fencing token must never go backwards (see "Tokens").
 *
 * Structures (all protected by lockmgr_local.mutex):
 *
 *   locks    hash (kind, path) -> struct lock
 *   holders  hash (lock, owner) -> struct holder   (one per owner per lock)
 *   tickets  hash ticket        -> struct waiter   (queued requests only)
 *   owaiters hash owner         -> struct waiter   (queued POSIX requests)
 *
 *   struct lock
 *     holders: list of struct holder
 *     queue:   FIFO list of struct waiter
 *     nexcl/nshared: flock: holders by type; POSIX: segments by type
 *     token:   last fencing token granted (0: never, in this object)
 *
 * A flock holder has a type; a POSIX holder has a sorted list of
 * non-overlapping byte ranges (segments), each shared or exclusive, so
 * one process may hold several ranges of one file, as fcntl allows.
 *
 * Every operation is O(1) amortised for flock (hash lookups, list heads);
 * POSIX conflict checks walk the segments of the file, which are few in
 * practice. A waiter is a queue node with a callback: no thread waits.
 *
 * Granting (flock): waiters are served strictly in arrival order. A new
 * request waits if it conflicts with a holder or if anyone is queued, so
 * a shared request never overtakes a queued exclusive one. When holders
 * change, the queue head is granted while it does not conflict: that is
 * one exclusive, or every consecutive shared request. Conversion is
 * Linux's: LOCK_EX -> LOCK_SH is immediate; LOCK_SH -> LOCK_EX drops the
 * shared lock first, then queues (also when LOCK_NB fails: the shared
 * lock is gone, as on Linux).
 *
 * Granting (POSIX): like Linux, a request conflicts only with ranges
 * held by other owners, and after every change the whole queue is
 * scanned in order, granting each waiter that fits. (Making POSIX waiters
 * block behind queued ones would deadlock an owner upgrading a range it
 * already holds shared while another owner waits for it.)
 *
 * Deadlocks (POSIX): a blocking request that would wait, directly or
 * through a chain of queued requests of other owners on any file, for
 * a lock of its own owner is refused with EDEADLK at once, as Linux
 * does (two processes each holding a byte and asking for the other's
 * blocked both until a signal). owaiters indexes the queued POSIX
 * waiters by owner for that walk (posix_deadlock). flock has no such
 * check, on Linux neither.
 *
 * Callbacks are collected under the mutex and called after it is
 * released, because they reply to FUSE and may re-enter the manager.
 *
 * Tokens: every exclusive grant of a lock gets
 *     token = max(previous token of this lock + 1, now in microseconds)
 * (CLOCK_REALTIME). Why this never goes backwards:
 *   - within a lock object: the +1 term;
 *   - after an empty lock is freed and created again in this manager:
 *     the first grant of a lock object is also floored at the highest
 *     token this manager ever issued + 1 (token_high);
 *   - across restarts of the mount (nothing persisted): a token is at
 *     most the time it was issued, unless one lock was granted more than
 *     once per microsecond, which a FUSE round trip (several us) cannot
 *     do. destroy() also waits (at most 2 s) until the clock has passed
 *     token_high, so even a burst leaves no token ahead of the clock for
 *     the next manager. A later start therefore reads a larger clock than
 *     every token issued before. (An operator stepping the clock back
 *     while no lock is held defeats this; so does kill -9 of the mount
 *     within the same microsecond as a burst.)
 *
 * Orphans: release() (close of the file, also at death) frees the owner's
 * locks; if the holder's process is dead or dying by a signal at that
 * moment (/proc/PID/stat missing, state Z/X, or PF_EXITING with a signal
 * in exit_code) the freed locks are counted as orphans. A holder that
 * exited normally (exit_code without a signal) closes its files like any
 * other close and is not an orphan; one already reaped when the release
 * arrives cannot be told apart and counts as an orphan. The /proc read
 * happens outside the mutex.
 *
 * Invariants (tests/unit/test_lock.c checks them through stats/query):
 *   (1) a lock is in `locks` iff it has a holder or a waiter;
 *   (2) a waiter is in `tickets` iff it is in a lock's queue, and a
 *       POSIX waiter is in `owaiters` iff it is in `tickets`;
 *   (3) flock: nexcl <= 1, and nexcl == 1 implies nshared == 0;
 *   (4) a POSIX holder's segments are sorted, disjoint and non-empty;
 *   (5) a callback is called exactly once, never under the mutex.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/hash.h"
#include "common/list.h"
#include "common/log.h"
#include "fs/lock.h"

/* A table past this many locks answers -ENOLCK. */
#define LOCK_MAX_LOCKS (4u << 20)
#define LOCK_MAX_WAITERS (1u << 20)


/* ---- hash table (the lists are common/list.h) ---- */


struct hnode {
	struct hnode *next;
	uint64_t hash;
};

struct htab {
	struct hnode **b;
	size_t mask;  /* buckets - 1, buckets a power of two */
	size_t count;
};

static int htab_init(struct htab *t, size_t buckets)
{
	t->b = calloc(buckets, sizeof(*t->b));
	if (!t->b)
		return -ENOMEM;
	t->mask = buckets - 1;
	t->count = 0;
	return 0;
}

static void htab_free(struct htab *t)
{
	free(t->b);
	t->b = NULL;
}

/* Doubling keeps chains short; if it cannot allocate, the table keeps
 * working with longer chains. */
static void htab_grow(struct htab *t)
{
	size_t n = (t->mask + 1) * 2, i;
	struct hnode **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return;
	for (i = 0; i <= t->mask; i++) {
		struct hnode *h = t->b[i], *next;

		for (; h; h = next) {
			next = h->next;
			h->next = nb[h->hash & (n - 1)];
			nb[h->hash & (n - 1)] = h;
		}
	}
	free(t->b);
	t->b = nb;
	t->mask = n - 1;
}

static void htab_insert(struct htab *t, struct hnode *h, uint64_t hash)
{
	if (t->count >= t->mask + 1)
		htab_grow(t);
	h->hash = hash;
	h->next = t->b[hash & t->mask];
	t->b[hash & t->mask] = h;
	t->count++;
}

static void htab_remove(struct htab *t, struct hnode *h)
{
	struct hnode **pp = &t->b[h->hash & t->mask];

	while (*pp != h) {
		assert(*pp);
		pp = &(*pp)->next;
	}
	*pp = h->next;
	h->next = NULL;
	t->count--;
}

static struct hnode *htab_first(const struct htab *t, uint64_t hash)
{
	return t->b[hash & t->mask];
}

static uint64_t hash_path(enum lock_kind kind, const char *path, size_t len)
{
	return hash_bytes((uint64_t)kind, path, len);
}

/* ---- the manager's objects ---- */

struct seg {
	struct seg *next;
	uint64_t start, end;  /* inclusive */
	enum lock_type type;
};

struct lock {
	struct hnode hn;      /* in locks */
	enum lock_kind kind;
	struct list holders;  /* struct holder.link */
	struct list queue;    /* struct waiter.link, arrival order */
	unsigned nexcl, nshared, nholders, nwaiters;
	uint64_t token;
	size_t pathlen;
	char path[];
};

struct holder {
	struct hnode hn;      /* in holders, by (lock, owner) */
	struct list link;
	struct lock *lock;
	uint64_t owner;
	pid_t pid;
	enum lock_type type;  /* flock only */
	struct seg *segs;     /* POSIX only, sorted by start */
};

struct waiter {
	struct hnode hn;      /* in tickets */
	struct hnode ohn;     /* POSIX only: in owaiters, by owner */
	struct list link;     /* in lock->queue, or in a grant list */
	struct lock *lock;
	uint64_t ticket, owner, start, end;
	pid_t pid;
	enum lock_type type;
	int err;              /* what the callback gets */
	lock_cb cb;
	void *arg;
};

struct lockmgr_local {
	struct lockmgr base;
	pthread_mutex_t mutex;
	/* everything below: protected by mutex */
	struct htab locks, holders, tickets;
	struct htab owaiters; /* queued POSIX waiters by owner (deadlocks) */
	uint64_t next_ticket;
	uint64_t token_high;  /* highest token issued by this manager */
	struct lock_stats st;
	pid_t last_dead_pid;  /* cache of the last orphan check */
	char host[64];
};

static struct lockmgr_local *to_local(struct lockmgr *m)
{
	return container_of(m, struct lockmgr_local, base);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t holder_hash(const struct lock *l, uint64_t owner)
{
	return hash_mix((uint64_t)(uintptr_t)l * 31 + hash_mix(owner));
}

static struct lock *lock_find(struct lockmgr_local *m, enum lock_kind kind,
			      const char *path, size_t len, uint64_t *hashp)
{
	uint64_t h = hash_path(kind, path, len);
	struct hnode *n;

	*hashp = h;
	for (n = htab_first(&m->locks, h); n; n = n->next) {
		struct lock *l = container_of(n, struct lock, hn);

		if (n->hash == h && l->kind == kind && l->pathlen == len &&
		    memcmp(l->path, path, len) == 0)
			return l;
	}
	return NULL;
}

static struct lock *lock_get(struct lockmgr_local *m, enum lock_kind kind,
			     const char *path)
{
	size_t len = strlen(path);
	uint64_t h;
	struct lock *l = lock_find(m, kind, path, len, &h);

	if (l)
		return l;
	if (m->locks.count >= LOCK_MAX_LOCKS)
		return NULL;
	l = malloc(sizeof(*l) + len + 1);
	if (!l)
		return NULL;
	l->kind = kind;
	list_init(&l->holders);
	list_init(&l->queue);
	l->nexcl = l->nshared = l->nholders = l->nwaiters = 0;
	l->token = 0;
	l->pathlen = len;
	memcpy(l->path, path, len + 1);
	htab_insert(&m->locks, &l->hn, h);
	return l;
}

/* Invariant (1): free a lock nobody holds or waits for. */
static void lock_put(struct lockmgr_local *m, struct lock *l)
{
	if (!list_empty(&l->holders) || !list_empty(&l->queue))
		return;
	htab_remove(&m->locks, &l->hn);
	free(l);
}

static struct holder *holder_find(struct lockmgr_local *m, struct lock *l,
				  uint64_t owner)
{
	uint64_t h = holder_hash(l, owner);
	struct hnode *n;

	for (n = htab_first(&m->holders, h); n; n = n->next) {
		struct holder *ho = container_of(n, struct holder, hn);

		if (n->hash == h && ho->lock == l && ho->owner == owner)
			return ho;
	}
	return NULL;
}

static struct holder *holder_new(struct lockmgr_local *m, struct lock *l,
				 uint64_t owner, pid_t pid)
{
	struct holder *ho = calloc(1, sizeof(*ho));

	if (!ho)
		return NULL;
	ho->lock = l;
	ho->owner = owner;
	ho->pid = pid;
	ho->type = LOCK_TYPE_UNLOCK;
	list_add_tail(&l->holders, &ho->link);
	l->nholders++;
	htab_insert(&m->holders, &ho->hn, holder_hash(l, owner));
	return ho;
}

static void holder_free(struct lockmgr_local *m, struct holder *ho)
{
	assert(ho->segs == NULL && ho->type == LOCK_TYPE_UNLOCK);
	htab_remove(&m->holders, &ho->hn);
	list_del(&ho->link);
	ho->lock->nholders--;
	free(ho);
}

/* Count one held lock of `type` (a flock holder or a POSIX segment). */
static void count_held(struct lockmgr_local *m, struct lock *l,
		       enum lock_type type, int delta)
{
	if (type == LOCK_TYPE_EXCL) {
		l->nexcl += delta;
		m->st.held_excl += delta;
	} else if (type == LOCK_TYPE_SHARED) {
		l->nshared += delta;
		m->st.held_shared += delta;
	}
}

static void issue_token(struct lockmgr_local *m, struct lock *l)
{
	uint64_t t = l->token + 1, now = now_us();

	if (l->token == 0 && t <= m->token_high)
		t = m->token_high + 1;
	if (t < now)
		t = now;
	l->token = t;
	if (t > m->token_high)
		m->token_high = t;
}

/* ---- flock ---- */

/* Would `type` for `owner` conflict with the holders of l? */
static int flock_conflicts(const struct lock *l, const struct holder *own,
			   enum lock_type type)
{
	unsigned excl = l->nexcl, shared = l->nshared;

	if (own && own->type == LOCK_TYPE_EXCL)
		excl--;
	else if (own && own->type == LOCK_TYPE_SHARED)
		shared--;
	if (type == LOCK_TYPE_EXCL)
		return excl + shared > 0;
	return excl > 0;
}

/* Set the flock type of owner's holder (creating or freeing it). */
static int flock_set(struct lockmgr_local *m, struct lock *l, uint64_t owner,
		     pid_t pid, enum lock_type type)
{
	struct holder *ho = holder_find(m, l, owner);

	if (!ho && type == LOCK_TYPE_UNLOCK)
		return 0;
	if (!ho) {
		ho = holder_new(m, l, owner, pid);
		if (!ho)
			return -ENOLCK;
	}
	count_held(m, l, ho->type, -1);
	ho->type = type;
	count_held(m, l, type, +1);
	if (type == LOCK_TYPE_UNLOCK) {
		holder_free(m, ho);
	} else {
		ho->pid = pid;
		m->st.grants++;
		if (type == LOCK_TYPE_EXCL)
			issue_token(m, l);
	}
	return 0;
}

/* ---- POSIX ---- */

static int ranges_overlap(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return s1 <= e2 && s2 <= e1;
}

/* First segment of another owner that conflicts with (type, start..end). */
static const struct seg *posix_conflict(const struct lock *l, uint64_t owner,
					enum lock_type type, uint64_t start,
					uint64_t end, const struct holder **hop)
{
	const struct list *p;

	for (p = l->holders.next; p != &l->holders; p = p->next) {
		const struct holder *ho = container_of(p, struct holder, link);
		const struct seg *s;

		if (ho->owner == owner)
			continue;
		for (s = ho->segs; s && s->start <= end; s = s->next) {
			if (!ranges_overlap(s->start, s->end, start, end))
				continue;
			if (type == LOCK_TYPE_EXCL || s->type == LOCK_TYPE_EXCL) {
				if (hop)
					*hop = ho;
				return s;
			}
		}
	}
	return NULL;
}

/*
 * Give owner `type` on start..end (UNLOCK removes), replacing what it held
 * there: the owner's segments overlapping the range are cut back or split,
 * the new segment is inserted and merged with same-type neighbours. Two
 * spare segments are allocated first, so failure changes nothing.
 */
static int posix_set(struct lockmgr_local *m, struct lock *l, uint64_t owner,
		     pid_t pid, enum lock_type type, uint64_t start,
		     uint64_t end)
{
	struct holder *ho = holder_find(m, l, owner);
	struct seg *spare[2] = { NULL, NULL }, **pp, *s, *ns;
	int used = 0;

	if (!ho && type == LOCK_TYPE_UNLOCK)
		return 0;
	spare[0] = malloc(sizeof(struct seg));
	spare[1] = malloc(sizeof(struct seg));
	if (!spare[0] || !spare[1])
		goto nolck;
	if (!ho) {
		ho = holder_new(m, l, owner, pid);
		if (!ho)
			goto nolck;
	}
	ho->pid = pid;

	/* Cut start..end out of the owner's segments. */
	for (pp = &ho->segs; (s = *pp) && s->start <= end;) {
		if (s->end < start) {
			pp = &s->next;
			continue;
		}
		if (s->start < start && s->end > end) {
			ns = spare[used++];
			ns->start = end + 1;
			ns->end = s->end;
			ns->type = s->type;
			ns->next = s->next;
			s->end = start - 1;
			s->next = ns;
			count_held(m, l, s->type, +1);
			break;
		}
		if (s->start < start) {
			s->end = start - 1;
			pp = &s->next;
		} else if (s->end > end) {
			s->start = end + 1;
			break;
		} else {
			*pp = s->next;
			count_held(m, l, s->type, -1);
			free(s);
		}
	}

	if (type != LOCK_TYPE_UNLOCK) {
		struct seg *prev = NULL;

		for (pp = &ho->segs; *pp && (*pp)->start < start;
		     pp = &(*pp)->next)
			prev = *pp;
		if (prev && prev->type == type && prev->end != UINT64_MAX &&
		    prev->end + 1 == start) {
			prev->end = end;
			ns = prev;
		} else {
			ns = spare[used++];
			ns->start = start;
			ns->end = end;
			ns->type = type;
			ns->next = *pp;
			*pp = ns;
			count_held(m, l, type, +1);
		}
		s = ns->next;
		if (s && s->type == type && end != UINT64_MAX &&
		    end + 1 == s->start) {
			ns->end = s->end;
			ns->next = s->next;
			count_held(m, l, type, -1);
			free(s);
		}
		m->st.grants++;
		if (type == LOCK_TYPE_EXCL)
			issue_token(m, l);
	}
	while (used < 2)
		free(spare[used++]);
	if (!ho->segs)
		holder_free(m, ho);
	return 0;
nolck:
	free(spare[0]);
	free(spare[1]);
	return -ENOLCK;
}

/* Drop every segment of a POSIX holder (or the flock holder). */
static void holder_drop(struct lockmgr_local *m, struct holder *ho)
{
	struct lock *l = ho->lock;
	struct seg *s;

	while ((s = ho->segs)) {
		ho->segs = s->next;
		count_held(m, l, s->type, -1);
		free(s);
	}
	count_held(m, l, ho->type, -1);
	ho->type = LOCK_TYPE_UNLOCK;
	holder_free(m, ho);
}

/* ---- queue ---- */

static int waiter_fits(struct lockmgr_local *m, struct lock *l,
		       const struct waiter *w)
{
	if (l->kind == LOCK_KIND_FLOCK)
		return !flock_conflicts(l, holder_find(m, l, w->owner), w->type);
	return !posix_conflict(l, w->owner, w->type, w->start, w->end, NULL);
}

static uint64_t owner_hash(uint64_t owner)
{
	return hash_mix(owner ^ 0x9e3779b97f4a7c15ULL);
}

static void waiter_unqueue(struct lockmgr_local *m, struct waiter *w)
{
	list_del(&w->link);
	htab_remove(&m->tickets, &w->hn);
	if (w->lock->kind == LOCK_KIND_POSIX)
		htab_remove(&m->owaiters, &w->ohn);
	w->lock->nwaiters--;
	m->st.waiters--;
}

/*
 * Grant what the holders now allow; move the granted waiters to `done`
 * (their callbacks run after the mutex is released). flock stops at the
 * first waiter that does not fit; POSIX tries every waiter in order, and
 * again from the head after a holder's own request was granted.
 */
static void lock_grant(struct lockmgr_local *m, struct lock *l,
		       struct list *done)
{
	struct list *p, *next;

	for (p = l->queue.next; p != &l->queue; p = next) {
		struct waiter *w = container_of(p, struct waiter, link);
		int err, held;

		next = p->next;
		if (!waiter_fits(m, l, w)) {
			if (l->kind == LOCK_KIND_FLOCK)
				break;
			continue;
		}
		held = holder_find(m, l, w->owner) != NULL;
		if (l->kind == LOCK_KIND_FLOCK)
			err = flock_set(m, l, w->owner, w->pid, w->type);
		else
			err = posix_set(m, l, w->owner, w->pid, w->type,
					w->start, w->end);
		waiter_unqueue(m, w);
		w->err = err;
		list_add_tail(done, &w->link);
		/* POSIX: a holder's second request may have weakened its
		 * segments (EX -> SH), and waiters already passed over may
		 * fit now: look again from the head (flock grants a prefix,
		 * so nothing before w waits) */
		if (held && l->kind == LOCK_KIND_POSIX)
			next = l->queue.next;
	}
}

/* Call and free the collected waiters: never under the mutex. */
static void run_callbacks(struct list *done)
{
	while (!list_empty(done)) {
		struct waiter *w = container_of(done->next, struct waiter, link);

		list_del(&w->link);
		w->cb(w->arg, w->err);
		free(w);
	}
}

/* ---- POSIX deadlocks ---- */

/* Owners a deadlock walk follows at most: past that it answers "no
 * deadlock" (the request waits), as Linux stops after a few steps. */
#define DEADLK_MAX_OWNERS 256

struct owner_set {
	uint64_t v[DEADLK_MAX_OWNERS];
	size_t n;
};

/* Push (once) the owners of l's segments that conflict with `type` on
 * start..end for `self`. 0, or -1 when the set is full. */
static int push_blockers(const struct lock *l, uint64_t self,
			 enum lock_type type, uint64_t start, uint64_t end,
			 struct owner_set *todo)
{
	const struct list *p;

	for (p = l->holders.next; p != &l->holders; p = p->next) {
		const struct holder *ho = container_of(p, struct holder, link);
		const struct seg *s;

		if (ho->owner == self)
			continue;
		for (s = ho->segs; s && s->start <= end; s = s->next) {
			if (!ranges_overlap(s->start, s->end, start, end) ||
			    (type != LOCK_TYPE_EXCL && s->type != LOCK_TYPE_EXCL))
				continue;
			if (todo->n == DEADLK_MAX_OWNERS)
				return -1;
			todo->v[todo->n++] = ho->owner;
			break;
		}
	}
	return 0;
}

/*
 * Would queueing POSIX request `req` on l close a cycle of waits? Its
 * owner would wait for the owners of the segments it conflicts with;
 * each of those that is queued itself waits for the owners its own
 * request conflicts with, and so on (across every file of the
 * manager). Reaching the requester again means it would wait for
 * itself: Linux answers EDEADLK at once to the request that closes the
 * cycle (posix_locks_deadlock), and so do we; the requests already
 * queued keep waiting. Each owner is expanded once.
 */
static int posix_deadlock(struct lockmgr_local *m, const struct lock *l,
			  const struct lock_req *req)
{
	struct owner_set todo, seen; /* 4 KiB of stack, no allocation */
	size_t i;

	todo.n = seen.n = 0;
	if (push_blockers(l, req->owner, req->type, req->start, req->end,
			  &todo) < 0)
		return 0;
	while (todo.n) {
		uint64_t o = todo.v[--todo.n], h = owner_hash(o);
		struct hnode *n;

		if (o == req->owner)
			return 1;
		for (i = 0; i < seen.n && seen.v[i] != o; i++)
			;
		if (i < seen.n)
			continue;
		if (seen.n == DEADLK_MAX_OWNERS)
			return 0;
		seen.v[seen.n++] = o;
		for (n = htab_first(&m->owaiters, h); n; n = n->next) {
			const struct waiter *w =
				container_of(n, struct waiter, ohn);

			if (n->hash != h || w->owner != o)
				continue;
			if (push_blockers(w->lock, o, w->type, w->start,
					  w->end, &todo) < 0)
				return 0;
		}
	}
	return 0;
}

/* ---- the ops ---- */

static int type_valid(enum lock_type t)
{
	return t == LOCK_TYPE_UNLOCK || t == LOCK_TYPE_SHARED ||
	       t == LOCK_TYPE_EXCL;
}

static int local_lock(struct lockmgr *mgr, const struct lock_req *req,
		      lock_cb cb, void *arg, uint64_t *ticket)
{
	struct lockmgr_local *m = to_local(mgr);
	struct list done;
	struct lock *l;
	struct waiter *w;
	int ret = 0, busy;

	if (!req->path || !type_valid(req->type) || req->start > req->end)
		return -EINVAL;
	if (req->type != LOCK_TYPE_UNLOCK && req->wait && !cb)
		return -EINVAL;
	list_init(&done);
	pthread_mutex_lock(&m->mutex);
	if (req->type == LOCK_TYPE_UNLOCK) {
		uint64_t h;

		l = lock_find(m, req->kind, req->path, strlen(req->path), &h);
		if (!l)
			goto out;
	} else {
		l = lock_get(m, req->kind, req->path);
		if (!l) {
			ret = -ENOLCK;
			goto out;
		}
	}

	if (req->kind == LOCK_KIND_FLOCK) {
		struct holder *own = holder_find(m, l, req->owner);

		if (own && own->type == req->type)
			goto out_put;  /* already held: nothing changes */
		if (req->type == LOCK_TYPE_UNLOCK ||
		    (own && req->type == LOCK_TYPE_SHARED)) {
			/* unlock, or downgrade: both immediate */
			ret = flock_set(m, l, req->owner, req->pid, req->type);
			lock_grant(m, l, &done);
			goto out_put;
		}
		if (own) {
			/* upgrade: drop the shared lock first, like Linux */
			flock_set(m, l, req->owner, req->pid, LOCK_TYPE_UNLOCK);
			own = NULL;
			lock_grant(m, l, &done);
		}
		busy = !list_empty(&l->queue) ||
		       flock_conflicts(l, own, req->type);
		if (!busy) {
			ret = flock_set(m, l, req->owner, req->pid, req->type);
			goto out_put;
		}
	} else {
		busy = req->type != LOCK_TYPE_UNLOCK &&
		       posix_conflict(l, req->owner, req->type, req->start,
				      req->end, NULL);
		if (!busy) {
			ret = posix_set(m, l, req->owner, req->pid, req->type,
					req->start, req->end);
			lock_grant(m, l, &done);
			goto out_put;
		}
	}

	/* busy */
	m->st.contentions++;
	if (!req->wait) {
		ret = -EWOULDBLOCK;
		goto out_put;
	}
	if (req->kind == LOCK_KIND_POSIX && posix_deadlock(m, l, req)) {
		ret = -EDEADLK;
		goto out_put;
	}
	if (m->st.waiters >= LOCK_MAX_WAITERS ||
	    !(w = calloc(1, sizeof(*w)))) {
		ret = -ENOLCK;
		goto out_put;
	}
	w->lock = l;
	w->ticket = m->next_ticket++;
	w->owner = req->owner;
	w->pid = req->pid;
	w->type = req->type;
	w->start = req->start;
	w->end = req->end;
	w->cb = cb;
	w->arg = arg;
	list_add_tail(&l->queue, &w->link);
	htab_insert(&m->tickets, &w->hn, hash_mix(w->ticket));
	if (req->kind == LOCK_KIND_POSIX)
		htab_insert(&m->owaiters, &w->ohn, owner_hash(w->owner));
	l->nwaiters++;
	m->st.waiters++;
	if (ticket)
		*ticket = w->ticket;
	ret = LOCK_QUEUED;
out_put:
	lock_put(m, l);
out:
	pthread_mutex_unlock(&m->mutex);
	run_callbacks(&done);
	return ret;
}

static void local_cancel(struct lockmgr *mgr, uint64_t ticket)
{
	struct lockmgr_local *m = to_local(mgr);
	uint64_t h = hash_mix(ticket);
	struct waiter *w = NULL;
	struct hnode *n;
	struct list done;

	list_init(&done);
	pthread_mutex_lock(&m->mutex);
	for (n = htab_first(&m->tickets, h); n; n = n->next) {
		struct waiter *x = container_of(n, struct waiter, hn);

		if (n->hash == h && x->ticket == ticket) {
			w = x;
			break;
		}
	}
	if (w) {
		struct lock *l = w->lock;
		int was_head = l->queue.next == &w->link;

		waiter_unqueue(m, w);
		w->err = -EINTR;
		m->st.cancels++;
		list_add_tail(&done, &w->link);
		/* a cancelled head may have been all that held others back */
		if (was_head || l->kind == LOCK_KIND_POSIX)
			lock_grant(m, l, &done);
		lock_put(m, l);
	}
	pthread_mutex_unlock(&m->mutex);
	run_callbacks(&done);
}

/*
 * Is `pid` dead, or dying by a signal? Reads /proc/PID/stat: field 3 is
 * the state, field 9 the flags (PF_EXITING 0x4), field 52 exit_code (a
 * wait status: the low 7 bits are the killing signal). The comm field
 * (2) may hold spaces and parentheses, so fields are counted from the
 * last ')'.
 */
static int pid_orphaned(pid_t pid)
{
	char path[64], buf[1024], *p, *tok, *save = NULL;
	unsigned long flags = 0;
	long exit_code = -1;
	char state = 0;
	ssize_t n;
	int fd, field;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 1;  /* the task went away while we read */
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* p + 2 is field 3 */
	for (field = 3, tok = strtok_r(p + 1, " \n", &save); tok;
	     field++, tok = strtok_r(NULL, " \n", &save)) {
		if (field == 3)
			state = tok[0];
		else if (field == 9)
			flags = strtoul(tok, NULL, 10);
		else if (field == 52)
			exit_code = strtol(tok, NULL, 10);
	}
	if (state == 'Z' || state == 'X' || (flags & 0x4)) {
		/* exiting: a normal exit(2) closes files like close(2) */
		if (exit_code >= 0 && (exit_code & 0x7f) == 0)
			return 0;
		return 1;
	}
	return 0;
}

static void local_release(struct lockmgr *mgr, const char *path,
			  enum lock_kind kind, uint64_t owner)
{
	struct lockmgr_local *m = to_local(mgr);
	struct holder *ho;
	struct lock *l;
	struct list done;
	uint64_t h, freed = 0;
	pid_t pid = 0;

	if (!path)
		return;
	list_init(&done);
	pthread_mutex_lock(&m->mutex);
	l = lock_find(m, kind, path, strlen(path), &h);
	if (l && (ho = holder_find(m, l, owner))) {
		pid = ho->pid;
		freed = 1;
		holder_drop(m, ho);
		lock_grant(m, l, &done);
		lock_put(m, l);
	}
	if (freed && pid == m->last_dead_pid) {
		m->st.orphans += freed;
		freed = 0;
	}
	pthread_mutex_unlock(&m->mutex);
	run_callbacks(&done);

	if (freed && pid_orphaned(pid)) {
		pthread_mutex_lock(&m->mutex);
		m->st.orphans += freed;
		m->last_dead_pid = pid;
		pthread_mutex_unlock(&m->mutex);
	}
}

static void fill_holder(struct lockmgr_local *m, struct lock_state *st,
			const struct holder *ho)
{
	st->pid = ho->pid;
	snprintf(st->host, sizeof(st->host), "%s", m->host);
}

static int local_query(struct lockmgr *mgr, const struct lock_req *req,
		       struct lock_state *st)
{
	struct lockmgr_local *m = to_local(mgr);
	struct lock *l;
	const struct list *p;
	uint64_t h;

	if (!req->path || !type_valid(req->type) || req->start > req->end)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->type = LOCK_TYPE_UNLOCK;
	pthread_mutex_lock(&m->mutex);
	l = lock_find(m, req->kind, req->path, strlen(req->path), &h);
	if (!l)
		goto out;
	st->token = l->token;
	st->waiters = l->nwaiters;
	if (req->type == LOCK_TYPE_UNLOCK) {
		/* the state of the lock: strongest held, holders counted */
		enum lock_type want = l->nexcl ? LOCK_TYPE_EXCL :
				      l->nshared ? LOCK_TYPE_SHARED :
						   LOCK_TYPE_UNLOCK;
		const struct holder *first = NULL;

		for (p = l->holders.next; p != &l->holders; p = p->next) {
			const struct holder *ho =
				container_of(p, struct holder, link);
			int has = ho->type == want;
			const struct seg *s;

			for (s = ho->segs; s && !has; s = s->next)
				has = s->type == want;
			if (!has)
				continue;
			st->holders++;
			if (!first)
				first = ho;
		}
		st->type = want;
		if (first)
			fill_holder(m, st, first);
		st->start = 0;
		st->end = UINT64_MAX;
	} else if (req->kind == LOCK_KIND_POSIX) {
		const struct holder *ho = NULL;
		const struct seg *s = posix_conflict(l, req->owner, req->type,
						     req->start, req->end, &ho);

		if (s) {
			st->type = s->type;
			st->holders = 1;
			st->start = s->start;
			st->end = s->end;
			fill_holder(m, st, ho);
		}
	} else {
		const struct holder *own = holder_find(m, l, req->owner);

		if (flock_conflicts(l, own, req->type)) {
			for (p = l->holders.next; p != &l->holders;
			     p = p->next) {
				const struct holder *ho =
					container_of(p, struct holder, link);

				if (ho == own)
					continue;
				if (req->type == LOCK_TYPE_EXCL ||
				    ho->type == LOCK_TYPE_EXCL) {
					st->type = ho->type;
					st->holders = 1;
					fill_holder(m, st, ho);
					break;
				}
			}
			st->start = 0;
			st->end = UINT64_MAX;
		}
	}
out:
	pthread_mutex_unlock(&m->mutex);
	return 0;
}

static void local_stats(struct lockmgr *mgr, struct lock_stats *out)
{
	struct lockmgr_local *m = to_local(mgr);

	pthread_mutex_lock(&m->mutex);
	*out = m->st;
	pthread_mutex_unlock(&m->mutex);
	out->mesh = 0;
	out->connected = 1;
}

/*
 * Pending waiters get -EINTR (their callbacks run here, so call this
 * before the FUSE session they reply to is destroyed). Then wait until
 * the clock has passed every token issued (see "Tokens"), at most 2 s.
 */
static void local_destroy(struct lockmgr *mgr)
{
	struct lockmgr_local *m = to_local(mgr);
	struct list done;
	size_t i;
	int spins;

	list_init(&done);
	pthread_mutex_lock(&m->mutex);
	for (i = 0; i <= m->locks.mask; i++) {
		struct hnode *n, *next;

		for (n = m->locks.b[i]; n; n = next) {
			struct lock *l = container_of(n, struct lock, hn);

			next = n->next;
			while (!list_empty(&l->queue)) {
				struct waiter *w = container_of(
					l->queue.next, struct waiter, link);

				waiter_unqueue(m, w);
				w->err = -EINTR;
				list_add_tail(&done, &w->link);
			}
			while (!list_empty(&l->holders))
				holder_drop(m, container_of(l->holders.next,
							    struct holder,
							    link));
			htab_remove(&m->locks, &l->hn);
			free(l);
		}
	}
	pthread_mutex_unlock(&m->mutex);
	run_callbacks(&done);

	for (spins = 0; now_us() <= m->token_high && spins < 2000; spins++) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
	}
	htab_free(&m->locks);
	htab_free(&m->holders);
	htab_free(&m->tickets);
	htab_free(&m->owaiters);
	pthread_mutex_destroy(&m->mutex);
	free(m);
}

static const struct lockmgr_ops local_ops = {
	.lock = local_lock,
	.cancel = local_cancel,
	.release = local_release,
	.query = local_query,
	.stats = local_stats,
	.destroy = local_destroy,
};

struct lockmgr *lockmgr_local_new(const char *host)
{
	struct lockmgr_local *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	if (htab_init(&m->locks, 1024) || htab_init(&m->holders, 1024) ||
	    htab_init(&m->tickets, 256) || htab_init(&m->owaiters, 256)) {
		htab_free(&m->locks);
		htab_free(&m->holders);
		htab_free(&m->tickets);
		htab_free(&m->owaiters);
		free(m);
		return NULL;
	}
	pthread_mutex_init(&m->mutex, NULL);
	m->base.ops = &local_ops;
	m->next_ticket = 1;
	m->last_dead_pid = -1;
	snprintf(m->host, sizeof(m->host), "%s", host ? host : "localhost");
	return &m->base;
}
