/*
 * lockremote.c — the mesh lock manager of a mount: struct lockmgr_ops
 * over the local socket of common/lockproto.h to this host's
 * statefs-repl, whose lock service (repl/locksvc.c) decides every lock
 * in the Raft lock table. fs/ never talks to the network; this file
 * talks only to the AF_UNIX socket.
 *
 * Threads
 *
 *   callers       FUSE workers: lock(), cancel(), release(), query(),
 *                 stats(). They register a request and send one packet;
 *                 only query() waits (a round trip, at most
 *                 QUERY_TIMEOUT_MS).
 *   reader        connects (and reconnects with backoff), says HELLO,
 *                 reads every answer and matches it by id to the
 *                 pending request. It never calls a callback.
 *   completers    call the callbacks, each one at a time, in the order
 *                 the final answers arrived. Two of them: `sync` takes
 *                 the grants that need the handover hook (the mount:
 *                 wait until its invalidation thread has caught up with
 *                 the store), which may block for a bounded time; `fast`
 *                 takes everything else (refusals, cancellations, and
 *                 the grants of LOCK_EXCL_PREFIX paths). Why two: an
 *                 O_CREAT|O_EXCL create waits for its "!" grant while
 *                 the kernel holds the directory's lock; the invalidation
 *                 thread (and the hook's fallback) may block on that
 *                 very lock, so the "!" grant must never queue behind a
 *                 handover. The reader keeps reading meanwhile.
 *
 * So lock() never waits for the network: every lock or conversion
 * (whether or not req->wait) answers LOCK_QUEUED and the callback brings
 * 0, -EWOULDBLOCK, -EINTR, -ENOLCK, -EDEADLK or -EINVAL. fs/lockops.c
 * passes a callback for non-blocking requests too, so no FUSE worker
 * waits for a round trip. An unlock returns 0 at once: the packet is
 * sent, its RESULT is ignored (the connection is ordered, so a later
 * request of the same owner is decided after it).
 *
 * Request life (pending: hashed by id, under mu)
 *
 *   lock() --send LOCK--> AWAIT --RESULT LP_QUEUED--> QUEUED
 *                           |                           |
 *                           +-- RESULT final -----------+--> done list
 *                           |                                 |
 *   connection lost --------+-- -ENOLCK ---------------------+
 *                                                     completer: cb once
 *
 *   cancel() sends CANCEL at once, whether LP_QUEUED came or not: a
 *   blocking request of a host cut off from the voters' majority gets no
 *   LP_QUEUED until the cut heals, and `flock -w` must still time out.
 *   The service's final RESULT decides: -EINTR, or 0 when the grant came
 *   first (or -EWOULDBLOCK for a non-blocking request it answered).
 *
 * Connection loss (EOF, error, a packet failing lp_check): the service
 * closes the mount's session, so every lock this mount held is gone.
 * Pending requests end with -ENOLCK, held locks are counted as orphans
 * and forgotten, one warning is logged, and the reader reconnects with
 * backoff (RECONNECT_MIN_MS doubling to RECONNECT_MAX_MS). While
 * disconnected every new lock request, blocking or not, answers -ENOLCK
 * at once, and a query too: never a local decision, which could grant
 * a lock another host holds.
 *
 * Held locks: a table (kind, owner, path) -> type of what this mount
 * holds, for the stats, for F_GETLK (our own lock is no conflict) and
 * so that release() sends RELEASE only for an owner that holds or waits
 * for something on the path (every close of a locked file calls it).
 *
 * POSIX locks are whole-file only in the mesh table: a byte-range
 * request answers -ENOLCK (an unlock of a range this owner does not
 * hold answers 0).
 *
 * Locks: mu protects pending, done, holdings, stats and the connection
 * state; fdlock (a rwlock) keeps fd open while a caller sends on it
 * (callers take it shared, the reader exclusively to close). No
 * callback and no send happens under mu.
 *
 * Invariants: (1) a request is in exactly one of pending, a completer's
 * queue, or freed; (2) its callback is called once, by a completer,
 * after it left pending; (3) connected implies fd >= 0 and the HELLO
 * answered 0.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/list.h"
#include "common/lockproto.h"
#include "common/log.h"
#include "fs/lock.h"

#define PENDING_BUCKETS 1024
#define QUERY_TIMEOUT_MS 3000
#define HELLO_TIMEOUT_MS 3000
#define RECONNECT_MIN_MS 50
#define RECONNECT_MAX_MS 1000

enum rq_state { RQ_AWAIT, RQ_QUEUED };
enum rq_what { RQ_LOCK, RQ_QUERY };

struct rreq {
	struct list link;          /* pending bucket, or a completer's queue */
	uint64_t id;
	enum rq_what what;
	enum rq_state state;
	int err;                   /* final answer */
	lock_cb cb;
	void *arg;
	enum lock_kind kind;
	enum lock_type type;
	uint64_t owner;
	/* RQ_QUERY: filled by the reader, waited for on m->qcond */
	int done;
	struct lock_state st;
	char path[];
};

/* One held lock of this mount. */
struct held {
	struct held *next;
	enum lock_kind kind;
	enum lock_type type;
	uint64_t owner;
	uint64_t hash;
	char path[];
};

struct lockmgr_remote;

struct completer {
	struct lockmgr_remote *m;
	struct list q;              /* final answers to call back, under mu */
	pthread_cond_t cond;        /* q grew, or stopping */
	pthread_t th;
	int started;
};

enum { C_FAST, C_SYNC };

struct lockmgr_remote {
	struct lockmgr base;
	char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char host[64];
	lock_sync_fn sync;
	void *sync_arg;

	pthread_mutex_t mu;
	pthread_cond_t qcond;       /* a query got its answer */
	/* protected by mu */
	struct list pending[PENDING_BUCKETS];
	size_t npending;
	struct completer comp[2];   /* C_FAST, C_SYNC */
	struct held **held;
	size_t nheld_buckets, nheld;
	uint64_t next_id;
	int connected;
	int stopping;
	struct lock_stats st;

	pthread_rwlock_t fdlock;    /* shared: sending; exclusive: close */
	int fd;                     /* written under fdlock exclusive */
	int wakefd;                 /* eventfd: stop the reader */
	pthread_t reader;
};

static struct lockmgr_remote *to_remote(struct lockmgr *m)
{
	return (struct lockmgr_remote *)m;
}

/* ---- held locks ---- */

static uint64_t held_hash(enum lock_kind kind, uint64_t owner,
			  const char *path)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)kind;

	h = (h ^ owner) * 1099511628211ULL;
	for (; *path; path++)
		h = (h ^ (unsigned char)*path) * 1099511628211ULL;
	return h ^ (h >> 29);
}

static struct held **held_slot(struct lockmgr_remote *m, enum lock_kind kind,
			       uint64_t owner, const char *path)
{
	uint64_t h = held_hash(kind, owner, path);
	struct held **pp = &m->held[h & (m->nheld_buckets - 1)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->kind == kind &&
		    (*pp)->owner == owner && strcmp((*pp)->path, path) == 0)
			break;
	return pp;
}

static void held_count(struct lockmgr_remote *m, enum lock_type type, int d)
{
	if (type == LOCK_TYPE_EXCL)
		m->st.held_excl += d;
	else if (type == LOCK_TYPE_SHARED)
		m->st.held_shared += d;
}

static void held_grow(struct lockmgr_remote *m)
{
	size_t n = m->nheld_buckets * 2, i;
	struct held **t = calloc(n, sizeof(*t));

	if (!t)
		return; /* longer chains, still correct */
	for (i = 0; i < m->nheld_buckets; i++) {
		struct held *h = m->held[i], *next;

		for (; h; h = next) {
			next = h->next;
			h->next = t[h->hash & (n - 1)];
			t[h->hash & (n - 1)] = h;
		}
	}
	free(m->held);
	m->held = t;
	m->nheld_buckets = n;
}

/* Under mu: owner now holds type on path (a grant or a conversion). */
static void held_set(struct lockmgr_remote *m, enum lock_kind kind,
		     uint64_t owner, const char *path, enum lock_type type)
{
	struct held **pp = held_slot(m, kind, owner, path), *h = *pp;
	size_t len;

	if (h) {
		held_count(m, h->type, -1);
		h->type = type;
		held_count(m, type, 1);
		return;
	}
	len = strlen(path);
	h = malloc(sizeof(*h) + len + 1);
	if (!h) {
		/* not counted; a later release still reaches the service
		 * through the pending scan or the next close */
		log_rate(LOG_WARNING, "locks: out of memory recording a held "
			 "lock");
		return;
	}
	h->kind = kind;
	h->type = type;
	h->owner = owner;
	h->hash = held_hash(kind, owner, path);
	memcpy(h->path, path, len + 1);
	h->next = NULL;
	*pp = h;
	held_count(m, type, 1);
	if (++m->nheld > m->nheld_buckets)
		held_grow(m);
}

/* Under mu: forget owner's lock on path. Returns the type it held. */
static enum lock_type held_drop(struct lockmgr_remote *m, enum lock_kind kind,
				uint64_t owner, const char *path)
{
	struct held **pp = held_slot(m, kind, owner, path), *h = *pp;
	enum lock_type type;

	if (!h)
		return LOCK_TYPE_UNLOCK;
	type = h->type;
	*pp = h->next;
	held_count(m, type, -1);
	m->nheld--;
	free(h);
	return type;
}

static enum lock_type held_type(struct lockmgr_remote *m, enum lock_kind kind,
				uint64_t owner, const char *path)
{
	struct held *h = *held_slot(m, kind, owner, path);

	return h ? h->type : LOCK_TYPE_UNLOCK;
}

/* Under mu: the session is gone, and with it every lock we held. */
static size_t held_clear(struct lockmgr_remote *m)
{
	size_t i, n = m->nheld;

	for (i = 0; i < m->nheld_buckets; i++) {
		struct held *h = m->held[i], *next;

		for (; h; h = next) {
			next = h->next;
			free(h);
		}
		m->held[i] = NULL;
	}
	m->nheld = 0;
	m->st.held_excl = m->st.held_shared = 0;
	return n;
}

/* ---- pending requests ---- */

static struct list *bucket_of(struct lockmgr_remote *m, uint64_t id)
{
	return &m->pending[(id * 0x9E3779B97F4A7C15ULL) >> 54];
}

static struct rreq *pending_find(struct lockmgr_remote *m, uint64_t id)
{
	struct list *b = bucket_of(m, id), *p;

	list_for(p, b) {
		struct rreq *r = container_of(p, struct rreq, link);

		if (r->id == id)
			return r;
	}
	return NULL;
}

static void pending_add(struct lockmgr_remote *m, struct rreq *r)
{
	list_add_tail(bucket_of(m, r->id), &r->link);
	m->npending++;
}

static void pending_del(struct lockmgr_remote *m, struct rreq *r)
{
	list_del(&r->link);
	m->npending--;
	if (r->what == RQ_LOCK && r->state == RQ_QUEUED)
		m->st.waiters--;
}

/* Does owner wait for a lock on path? (release() of a waiter) */
static int pending_owner(struct lockmgr_remote *m, enum lock_kind kind,
			 uint64_t owner, const char *path)
{
	size_t i;
	struct list *p;

	if (m->npending == 0)
		return 0;
	for (i = 0; i < PENDING_BUCKETS; i++)
		list_for(p, &m->pending[i]) {
			struct rreq *r = container_of(p, struct rreq, link);

			if (r->what == RQ_LOCK && r->kind == kind &&
			    r->owner == owner && strcmp(r->path, path) == 0)
				return 1;
		}
	return 0;
}

/* Under mu: r leaves pending with err; the completer calls back. */
static void finish(struct lockmgr_remote *m, struct rreq *r, int err)
{
	struct completer *c;

	pending_del(m, r);
	if (r->what == RQ_QUERY) {
		r->err = err;
		r->done = 1;
		pthread_cond_broadcast(&m->qcond);
		return;
	}
	r->err = err;
	c = &m->comp[err == 0 && m->sync && r->path[0] != LOCK_EXCL_PREFIX ?
		     C_SYNC : C_FAST];
	list_add_tail(&c->q, &r->link);
	pthread_cond_signal(&c->cond);
}

/* Under mu: every pending request ends with err (connection lost, or
 * the manager is destroyed). */
static void fail_all(struct lockmgr_remote *m, int err)
{
	size_t i;

	for (i = 0; i < PENDING_BUCKETS; i++)
		while (!list_empty(&m->pending[i]))
			finish(m, container_of(m->pending[i].next, struct rreq,
					       link), err);
}

/* ---- sending ---- */

static size_t msg_init(struct lp_msg *msg, enum lp_type type, uint64_t id,
		       const char *path)
{
	size_t len = path ? strlen(path) : 0;

	memset(msg, 0, sizeof(*msg));
	msg->version = LP_VERSION;
	msg->type = type;
	msg->id = id;
	msg->pathlen = (uint32_t)len;
	if (len)
		memcpy(msg->path, path, len);
	return sizeof(*msg) + len;
}

/* Send one message on the current connection. 0, or -ENOTCONN. */
static int msg_send(struct lockmgr_remote *m, const struct lp_msg *msg,
		    size_t len)
{
	ssize_t n = -1;

	pthread_rwlock_rdlock(&m->fdlock);
	if (m->fd >= 0) {
		do
			n = send(m->fd, msg, len, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
	}
	pthread_rwlock_unlock(&m->fdlock);
	return n == (ssize_t)len ? 0 : -ENOTCONN;
}

/* A message with a path, built on the heap (LP_MSG_MAX is 4 KiB+). */
static struct lp_msg *msg_new(enum lp_type type, uint64_t id,
			      const char *path, size_t *lenp)
{
	struct lp_msg *msg = malloc(LP_MSG_MAX);

	if (msg)
		*lenp = msg_init(msg, type, id, path);
	return msg;
}

static void send_cancel(struct lockmgr_remote *m, uint64_t id)
{
	struct lp_msg msg;

	msg_init(&msg, LP_CANCEL, id, NULL);
	msg_send(m, &msg, sizeof(msg)); /* lost: the connection is gone, and
					 * fail_all answers the request */
}

/* ---- the ops ---- */

static int whole_file(const struct lock_req *req)
{
	return req->kind == LOCK_KIND_FLOCK ||
	       (req->start == 0 && req->end == UINT64_MAX);
}

static int remote_unlock(struct lockmgr_remote *m, const struct lock_req *req)
{
	struct lp_msg *msg;
	enum lock_type had;
	size_t len;
	uint64_t id;

	pthread_mutex_lock(&m->mu);
	if (!whole_file(req)) {
		had = held_type(m, req->kind, req->owner, req->path);
		pthread_mutex_unlock(&m->mu);
		return had == LOCK_TYPE_UNLOCK ? 0 : -ENOLCK;
	}
	held_drop(m, req->kind, req->owner, req->path);
	if (!m->connected) {
		pthread_mutex_unlock(&m->mu);
		return 0; /* the session is gone, and the lock with it */
	}
	id = m->next_id++;
	pthread_mutex_unlock(&m->mu);
	msg = msg_new(LP_LOCK, id, req->path, &len);
	if (!msg)
		return -ENOLCK;
	msg->kind = req->kind;
	msg->ltype = LOCK_TYPE_UNLOCK;
	msg->owner = req->owner;
	msg->pid = req->pid;
	msg_send(m, msg, len); /* lost: so is the session, and the lock */
	free(msg);
	return 0;
}

static int remote_lock(struct lockmgr *mgr, const struct lock_req *req,
		       lock_cb cb, void *arg, uint64_t *ticket)
{
	struct lockmgr_remote *m = to_remote(mgr);
	size_t plen, len;
	struct lp_msg *msg;
	struct rreq *r;
	uint64_t id;
	int sent;

	if (!req->path || req->type > LOCK_TYPE_EXCL ||
	    req->start > req->end)
		return -EINVAL;
	plen = strlen(req->path);
	if (plen == 0 || plen > LP_PATH_MAX)
		return -EINVAL;
	if (req->type == LOCK_TYPE_UNLOCK)
		return remote_unlock(m, req);
	if (!cb)
		return -EINVAL; /* every answer is asynchronous */
	if (!whole_file(req))
		return -ENOLCK;
	r = calloc(1, sizeof(*r) + plen + 1);
	msg = r ? msg_new(LP_LOCK, 0, req->path, &len) : NULL;
	if (!msg) {
		free(r);
		return -ENOLCK;
	}
	r->what = RQ_LOCK;
	r->state = RQ_AWAIT;
	r->cb = cb;
	r->arg = arg;
	r->kind = req->kind;
	r->type = req->type;
	r->owner = req->owner;
	memcpy(r->path, req->path, plen + 1);

	pthread_mutex_lock(&m->mu);
	if (!m->connected) {
		pthread_mutex_unlock(&m->mu);
		free(msg);
		free(r);
		return -ENOLCK;
	}
	id = r->id = m->next_id++;
	/* flock SH -> EX: the service drops the shared lock first */
	if (req->kind == LOCK_KIND_FLOCK && req->type == LOCK_TYPE_EXCL &&
	    held_type(m, req->kind, req->owner, req->path) == LOCK_TYPE_SHARED)
		held_drop(m, req->kind, req->owner, req->path);
	pending_add(m, r);
	pthread_mutex_unlock(&m->mu);

	/* from here on r may be answered and freed by the other threads */
	msg->id = id;
	msg->kind = req->kind;
	msg->ltype = req->type;
	msg->owner = req->owner;
	msg->pid = req->pid;
	msg->wait = req->wait ? 1 : 0;
	if (ticket)
		*ticket = id;
	sent = msg_send(m, msg, len);
	free(msg);
	if (sent < 0) {
		pthread_mutex_lock(&m->mu);
		if (pending_find(m, id)) {
			/* still ours: answer now, no callback */
			pending_del(m, r);
			pthread_mutex_unlock(&m->mu);
			free(r);
			return -ENOLCK;
		}
		/* the reader saw the loss first: the callback says so */
		pthread_mutex_unlock(&m->mu);
	}
	return LOCK_QUEUED;
}

static void remote_cancel(struct lockmgr *mgr, uint64_t ticket)
{
	struct lockmgr_remote *m = to_remote(mgr);
	struct rreq *r;
	int pending;

	pthread_mutex_lock(&m->mu);
	r = pending_find(m, ticket);
	pending = r && r->what == RQ_LOCK;
	pthread_mutex_unlock(&m->mu);
	if (pending)
		send_cancel(m, ticket);
}

static void remote_release(struct lockmgr *mgr, const char *path,
			   enum lock_kind kind, uint64_t owner)
{
	struct lockmgr_remote *m = to_remote(mgr);
	struct lp_msg *msg;
	int held, waits;
	size_t len;

	if (!path || !*path || strlen(path) > LP_PATH_MAX)
		return;
	pthread_mutex_lock(&m->mu);
	held = held_drop(m, kind, owner, path) != LOCK_TYPE_UNLOCK;
	waits = pending_owner(m, kind, owner, path);
	if (!m->connected || (!held && !waits)) {
		pthread_mutex_unlock(&m->mu);
		return;
	}
	pthread_mutex_unlock(&m->mu);
	msg = msg_new(LP_RELEASE, 0, path, &len);
	if (!msg)
		return;
	msg->kind = kind;
	msg->owner = owner;
	msg_send(m, msg, len);
	free(msg);
}

/* Does the state conflict with req? Whole-file locks: only another
 * owner's lock, and shared with shared never. */
static int state_conflicts(struct lockmgr_remote *m,
			   const struct lock_req *req,
			   const struct lock_state *st)
{
	enum lock_type mine;

	if (st->type == LOCK_TYPE_UNLOCK)
		return 0;
	if (req->type == LOCK_TYPE_SHARED && st->type == LOCK_TYPE_SHARED)
		return 0;
	mine = held_type(m, req->kind, req->owner, req->path);
	return !(mine != LOCK_TYPE_UNLOCK && st->holders <= 1);
}

static int remote_query(struct lockmgr *mgr, const struct lock_req *req,
			struct lock_state *st)
{
	struct lockmgr_remote *m = to_remote(mgr);
	struct timespec dl;
	struct lp_msg *msg;
	struct rreq *r;
	size_t plen, len;
	int err;

	if (!req->path || (plen = strlen(req->path)) == 0 ||
	    plen > LP_PATH_MAX)
		return -EINVAL;
	r = calloc(1, sizeof(*r) + plen + 1);
	msg = r ? msg_new(LP_QUERY, 0, req->path, &len) : NULL;
	if (!msg) {
		free(r);
		return -ENOMEM;
	}
	r->what = RQ_QUERY;
	memcpy(r->path, req->path, plen + 1);
	pthread_mutex_lock(&m->mu);
	if (!m->connected) {
		pthread_mutex_unlock(&m->mu);
		free(msg);
		free(r);
		return -ENOLCK;
	}
	r->id = m->next_id++;
	pending_add(m, r);
	pthread_mutex_unlock(&m->mu);
	msg->id = r->id;
	msg->kind = req->kind;
	msg_send(m, msg, len); /* lost: fail_all or the deadline answers */
	free(msg);

	clock_deadline(&dl, QUERY_TIMEOUT_MS);
	pthread_mutex_lock(&m->mu);
	while (!r->done &&
	       pthread_cond_timedwait(&m->qcond, &m->mu, &dl) != ETIMEDOUT)
		;
	if (!r->done) {
		pending_del(m, r);
		log_rate(LOG_WARNING, "locks: no answer to a query of %s in "
			 "%d ms", req->path, QUERY_TIMEOUT_MS);
		err = -ENOLCK;
	} else {
		err = r->err;
		*st = r->st;
		if (!err && req->type != LOCK_TYPE_UNLOCK &&
		    !state_conflicts(m, req, st))
			st->type = LOCK_TYPE_UNLOCK;
	}
	pthread_mutex_unlock(&m->mu);
	free(r);
	return err;
}

static void remote_stats(struct lockmgr *mgr, struct lock_stats *out)
{
	struct lockmgr_remote *m = to_remote(mgr);

	pthread_mutex_lock(&m->mu);
	*out = m->st;
	out->mesh = 1;
	out->connected = m->connected;
	pthread_mutex_unlock(&m->mu);
}

/* ---- the reader ---- */

/* Sleep ms, or less if stopped. 1 if stopping. */
static int reader_pause(struct lockmgr_remote *m, int ms)
{
	struct pollfd p = { .fd = m->wakefd, .events = POLLIN };

	return poll(&p, 1, ms) > 0;
}

static int sock_connect(struct lockmgr_remote *m)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, m->sock_path, strlen(m->sock_path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* Receive one packet into buf (LP_MSG_MAX) within timeout_ms (-1: no
 * limit). Its length; 0 on EOF; -ETIMEDOUT; -ECANCELED when stopped;
 * -EPROTO for a malformed packet; -errno. */
static ssize_t recv_msg(struct lockmgr_remote *m, int fd, void *buf,
			int timeout_ms)
{
	struct pollfd p[2] = {
		{ .fd = fd, .events = POLLIN },
		{ .fd = m->wakefd, .events = POLLIN },
	};
	ssize_t n;
	int r;

	do
		r = poll(p, 2, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (p[1].revents)
		return -ECANCELED;
	if (r == 0)
		return -ETIMEDOUT;
	n = recv(fd, buf, LP_MSG_MAX + 1, MSG_TRUNC);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? -EAGAIN : -errno;
	if (n == 0)
		return 0;
	if ((size_t)n > LP_MSG_MAX || lp_check(buf, (size_t)n) < 0)
		return -EPROTO;
	return n;
}

/* Say HELLO on fd. 0, or a -errno to retry later. */
static int hello(struct lockmgr_remote *m, int fd, struct lp_msg *buf,
		 int *warned)
{
	size_t len = msg_init(buf, LP_HELLO, 0, m->host);
	ssize_t n;

	buf->pid = getpid();
	if (send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
		return -errno;
	n = recv_msg(m, fd, buf, HELLO_TIMEOUT_MS);
	if (n == 0)
		return -ECONNRESET;
	if (n < 0)
		return (int)n;
	if (buf->type != LP_HELLO)
		return -EPROTO;
	if (buf->err != 0) {
		if (!*warned)
			log_msg(LOG_WARNING, "locks: the lock service at %s "
				"refuses this mount: %s (retrying)",
				m->sock_path, strerror(-buf->err));
		*warned = 1;
		return buf->err < 0 ? buf->err : -EPROTO;
	}
	return 0;
}

static void on_result(struct lockmgr_remote *m, const struct lp_msg *a)
{
	struct rreq *r;

	pthread_mutex_lock(&m->mu);
	r = pending_find(m, a->id);
	if (!r || r->what != RQ_LOCK) {
		pthread_mutex_unlock(&m->mu);
		return; /* an unlock's answer, or a late one: nothing waits */
	}
	if (a->err == LP_QUEUED) {
		if (r->state == RQ_AWAIT) {
			r->state = RQ_QUEUED;
			m->st.waiters++;
			m->st.contentions++;
		}
		pthread_mutex_unlock(&m->mu);
		return;
	}
	if (a->err == 0) {
		m->st.grants++;
		held_set(m, r->kind, r->owner, r->path, r->type);
	} else if (a->err == -EWOULDBLOCK) {
		m->st.contentions++;
	} else if (a->err == -EINTR) {
		m->st.cancels++;
	}
	finish(m, r, a->err > 0 ? -EPROTO : a->err);
	pthread_mutex_unlock(&m->mu);
}

static void on_state(struct lockmgr_remote *m, const struct lp_msg *a)
{
	struct rreq *r;

	pthread_mutex_lock(&m->mu);
	r = pending_find(m, a->id);
	if (r && r->what == RQ_QUERY) {
		int err = a->err == -ENOENT ? 0 : a->err; /* no such lock */

		memset(&r->st, 0, sizeof(r->st));
		if (a->err == 0) {
			r->st.type = (enum lock_type)a->ltype;
			r->st.holders = a->holders;
			r->st.pid = a->pid;
			r->st.token = a->token;
			r->st.waiters = a->waiters;
			r->st.start = 0;
			r->st.end = UINT64_MAX;
			snprintf(r->st.host, sizeof(r->st.host), "%.*s",
				 (int)a->pathlen, a->path);
		}
		finish(m, r, err > 0 ? -EPROTO : err);
	}
	pthread_mutex_unlock(&m->mu);
}

/* Read answers until the connection ends. Returns why: 0 EOF,
 * -ECANCELED stopped, else -errno. */
static int read_loop(struct lockmgr_remote *m, int fd, struct lp_msg *buf)
{
	for (;;) {
		ssize_t n = recv_msg(m, fd, buf, -1);

		if (n == -EAGAIN)
			continue;
		if (n <= 0)
			return (int)n;
		if (buf->type == LP_RESULT)
			on_result(m, buf);
		else if (buf->type == LP_STATE)
			on_state(m, buf);
		else
			return -EPROTO; /* the service never sends these */
	}
}

static void set_fd(struct lockmgr_remote *m, int fd)
{
	int old;

	pthread_rwlock_wrlock(&m->fdlock);
	old = m->fd;
	m->fd = fd;
	pthread_rwlock_unlock(&m->fdlock);
	if (old >= 0)
		close(old);
}

/* The connection is gone: so is the session and every lock in it. */
static void lost(struct lockmgr_remote *m, int why)
{
	size_t n;

	pthread_mutex_lock(&m->mu);
	m->connected = 0;
	n = held_clear(m);
	m->st.orphans += n;
	fail_all(m, m->stopping ? -EINTR : -ENOLCK);
	pthread_mutex_unlock(&m->mu);
	if (why != -ECANCELED)
		log_msg(LOG_WARNING, "locks: lost the lock service at %s (%s): "
			"%zu locks of this mount released, waiters get "
			"ENOLCK; reconnecting", m->sock_path,
			why == 0 ? "closed" : strerror(-why), n);
}

static void *reader_main(void *arg)
{
	struct lockmgr_remote *m = arg;
	struct lp_msg *buf = malloc(LP_MSG_MAX + 1);
	int backoff = RECONNECT_MIN_MS, warned_hello = 0, said_wait = 0;

	if (!buf) {
		log_msg(LOG_ERROR, "locks: out of memory: no mesh locks");
		return NULL;
	}
	for (;;) {
		int fd = sock_connect(m), r;

		if (fd >= 0) {
			r = hello(m, fd, buf, &warned_hello);
			if (r == 0) {
				set_fd(m, fd);
				pthread_mutex_lock(&m->mu);
				m->connected = 1;
				pthread_mutex_unlock(&m->mu);
				log_msg(LOG_NOTICE, "locks: connected to the "
					"lock service at %s (lease %u ms)",
					m->sock_path, buf->lease_ms);
				backoff = RECONNECT_MIN_MS;
				warned_hello = said_wait = 0;
				r = read_loop(m, fd, buf);
				shutdown(fd, SHUT_RDWR);
				set_fd(m, -1);
				lost(m, r);
				if (r == -ECANCELED)
					break;
			} else {
				close(fd);
				if (r == -ECANCELED)
					break;
			}
		} else if (!said_wait) {
			log_msg(LOG_NOTICE, "locks: no lock service at %s yet "
				"(%s): lock requests answer ENOLCK until it "
				"comes", m->sock_path, strerror(-fd));
			said_wait = 1;
		}
		if (reader_pause(m, backoff))
			break;
		backoff = backoff * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS :
							   backoff * 2;
	}
	free(buf);
	return NULL;
}

/* ---- the completers ---- */

static void *completer_main(void *arg)
{
	struct completer *c = arg;
	struct lockmgr_remote *m = c->m;
	int sync = c == &m->comp[C_SYNC];

	pthread_mutex_lock(&m->mu);
	for (;;) {
		struct rreq *r;

		while (list_empty(&c->q) && !m->stopping)
			pthread_cond_wait(&c->cond, &m->mu);
		if (list_empty(&c->q))
			break; /* stopping, and nothing left to answer */
		r = container_of(c->q.next, struct rreq, link);
		list_del(&r->link);
		pthread_mutex_unlock(&m->mu);
		/* the handover: the kernel must not serve what the previous
		 * holder overwrote */
		if (sync)
			m->sync(m->sync_arg);
		r->cb(r->arg, r->err);
		free(r);
		pthread_mutex_lock(&m->mu);
	}
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

static void completers_stop(struct lockmgr_remote *m)
{
	int i;

	pthread_mutex_lock(&m->mu);
	m->stopping = 1;
	for (i = 0; i < 2; i++)
		pthread_cond_broadcast(&m->comp[i].cond);
	pthread_mutex_unlock(&m->mu);
	for (i = 0; i < 2; i++)
		if (m->comp[i].started)
			pthread_join(m->comp[i].th, NULL);
}

/* ---- life ---- */

/* The reader stops first (pending requests end with -EINTR), then the
 * completers answer what is left and stop. */
static void remote_destroy(struct lockmgr *mgr)
{
	struct lockmgr_remote *m = to_remote(mgr);
	uint64_t one = 1;
	size_t i;

	pthread_mutex_lock(&m->mu);
	m->stopping = 1;
	pthread_mutex_unlock(&m->mu);
	if (write(m->wakefd, &one, sizeof(one)) < 0)
		log_msg(LOG_WARNING, "locks: waking the reader: %s",
			strerror(errno));
	pthread_join(m->reader, NULL);
	pthread_mutex_lock(&m->mu);
	fail_all(m, -EINTR); /* e.g. queries still waiting */
	pthread_mutex_unlock(&m->mu);
	completers_stop(m);
	set_fd(m, -1);
	close(m->wakefd);
	for (i = 0; i < m->nheld_buckets; i++)
		while (m->held[i]) {
			struct held *h = m->held[i];

			m->held[i] = h->next;
			free(h);
		}
	free(m->held);
	pthread_rwlock_destroy(&m->fdlock);
	pthread_cond_destroy(&m->qcond);
	pthread_cond_destroy(&m->comp[0].cond);
	pthread_cond_destroy(&m->comp[1].cond);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static const struct lockmgr_ops remote_ops = {
	.lock = remote_lock,
	.cancel = remote_cancel,
	.release = remote_release,
	.query = remote_query,
	.stats = remote_stats,
	.destroy = remote_destroy,
};

struct lockmgr *lockmgr_remote_new(const char *sock_path, const char *host,
				   lock_sync_fn sync, void *sync_arg,
				   char *err, size_t errlen)
{
	struct lockmgr_remote *m;
	size_t i;
	int e;

	if (strlen(sock_path) >= sizeof(m->sock_path) || !*sock_path) {
		snprintf(err, errlen, "lock socket path '%s': too long for "
			 "AF_UNIX", sock_path);
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m || !(m->held = calloc(64, sizeof(*m->held)))) {
		free(m);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->base.ops = &remote_ops;
	m->base.mesh = 1;
	memcpy(m->sock_path, sock_path, strlen(sock_path) + 1);
	snprintf(m->host, sizeof(m->host), "%s", host && *host ? host :
		 "localhost");
	m->sync = sync;
	m->sync_arg = sync_arg;
	m->nheld_buckets = 64;
	m->next_id = 1;
	m->fd = -1;
	for (i = 0; i < PENDING_BUCKETS; i++)
		list_init(&m->pending[i]);
	pthread_mutex_init(&m->mu, NULL);
	for (i = 0; i < 2; i++) {
		m->comp[i].m = m;
		list_init(&m->comp[i].q);
		pthread_cond_init(&m->comp[i].cond, NULL);
	}
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&m->qcond, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_rwlock_init(&m->fdlock, NULL);
	m->wakefd = eventfd(0, EFD_CLOEXEC);
	e = m->wakefd < 0 ? errno : 0;
	for (i = 0; !e && i < 2; i++) {
		e = pthread_create(&m->comp[i].th, NULL, completer_main,
				   &m->comp[i]);
		m->comp[i].started = !e;
	}
	if (!e)
		e = pthread_create(&m->reader, NULL, reader_main, m);
	if (e) {
		completers_stop(m);
		snprintf(err, errlen, "lock manager threads: %s", strerror(e));
		if (m->wakefd >= 0)
			close(m->wakefd);
		free(m->held);
		free(m);
		return NULL;
	}
	return &m->base;
}
