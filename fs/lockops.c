/*
 * lockops.c — FUSE requests in, lock manager decisions out.
 *
 * With the local manager a non-blocking request is answered at once. A
 * blocking one (flock without LOCK_NB, F_SETLKW), and every request to
 * the mesh manager (its answers are a round trip away), becomes a
 * struct lock_wait: the manager queues it and calls on_grant() later
 * from whichever thread frees the lock or reads the answer; no thread
 * waits. An O_CREAT|O_EXCL create on a mesh mount (lockops_excl) is the
 * same with a continuation instead of the reply: the create itself runs
 * once the "!" + PATH lock is held (fs/file.c). The hard part is the
 * race between three parties over one request:
 *
 *   submitter S     lockops_flock/setlk: registers the interrupt
 *                   function, asks the manager, records the ticket
 *   granter G       on_grant(): any thread that unlocks, releases or
 *                   cancels (possibly S itself, or I)
 *   interrupter I   on_interrupt(): libfuse's thread that read
 *                   FUSE_INTERRUPT; it holds the request's own lock
 *                   (req->lock inside libfuse) while calling us
 *
 * Rules that make it safe:
 *   (1) The interrupt function is registered BEFORE the manager sees the
 *       request, so no grant can reply to a request whose registration is
 *       still to come. If the request was interrupted already, libfuse
 *       calls on_interrupt at once; it only marks the wait, and S cancels
 *       after the manager queued it.
 *   (2) The reply happens exactly once, from the manager's callback
 *       (queued) or from S (answered at once); the manager guarantees one
 *       callback per queued request, so grant-vs-cancel is decided under
 *       its mutex: cancel after a grant does nothing, and the reply is 0.
 *   (3) Before replying, the replier unregisters the interrupt function
 *       (fuse_req_interrupt_func(req, NULL, NULL)). That takes req->lock,
 *       so it waits for an on_interrupt in progress and none can start
 *       afterwards: the wait struct is never used after it is freed.
 *       Exception: when the callback runs inside our own on_interrupt
 *       (cancel -> callback in the same thread, req->lock already held),
 *       it must not take req->lock again; the thread-local `in_interrupt`
 *       tells it so, and then no other on_interrupt can run concurrently.
 *   (4) The wait struct has two references (S and the callback); the last
 *       to drop it frees it.
 *   (5) A grant whose reply fails (the kernel no longer knows the
 *       request) is undone at once, so the lock does not leak.
 *
 * Errors go back as flock(2)/fcntl(2) know them: 0, EWOULDBLOCK/EAGAIN,
 * EINTR, ENOLCK, EINVAL, EDEADLK (an F_SETLKW that would close a cycle
 * of waits). EINTR makes the kernel restart or fail the call as the
 * signal's disposition says; ERESTARTSYS never leaves here.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include "common/log.h"
#include "fs/lockops.h"

struct lock_wait {
	pthread_mutex_t mu;
	/* protected by mu */
	int refs;         /* S and the callback */
	int queued;       /* ticket is valid */
	int interrupted;
	uint64_t ticket;
	/* read-only after creation */
	struct lockmgr *m;
	fuse_req_t req;
	struct lock_req lr;  /* lr.path points to path below */
	lockops_then then;   /* NULL: reply the result (see deliver) */
	void *then_arg;
	char path[];
};

static __thread struct lock_wait *in_interrupt;

static int reply_errno(int ret)
{
	switch (ret) {
	case 0:
	case -EWOULDBLOCK:
	case -EINTR:
	case -ENOLCK:
	case -EINVAL:
	case -EDEADLK:
		return -ret;
	default:
		log_msg(LOG_WARNING, "lock: unexpected result %d, replying ENOLCK",
			ret);
		return ENOLCK;
	}
}

static void wait_put(struct lock_wait *w)
{
	int refs;

	pthread_mutex_lock(&w->mu);
	refs = --w->refs;
	pthread_mutex_unlock(&w->mu);
	if (refs == 0) {
		pthread_mutex_destroy(&w->mu);
		free(w);
	}
}

/* Reply `ret` to a request the manager answered; undo a grant nobody
 * receives (rule 5). */
static void reply_lock_result(struct lockmgr *m, fuse_req_t req,
			      const struct lock_req *lr, int ret)
{
	int r = fuse_reply_err(req, reply_errno(ret));

	if (r < 0 && ret == 0) {
		struct lock_req un = *lr;

		log_msg(LOG_INFO, "lock: reply for %s lost (%d), unlocking",
			lr->path, r);
		un.type = LOCK_TYPE_UNLOCK;
		un.wait = 0;
		m->ops->lock(m, &un, NULL, NULL, NULL);
	}
}

/* The manager's answer goes to the FUSE reply, or to the continuation
 * of an O_EXCL create, which replies itself (and always unlocks). */
static void deliver(struct lock_wait *w, int err)
{
	if (w->then)
		w->then(w->then_arg, w->req, err);
	else
		reply_lock_result(w->m, w->req, &w->lr, err);
}

static void on_grant(void *arg, int err)
{
	struct lock_wait *w = arg;

	if (in_interrupt != w)
		fuse_req_interrupt_func(w->req, NULL, NULL);  /* rule 3 */
	deliver(w, err);
	wait_put(w);
}

static void on_interrupt(fuse_req_t req, void *data)
{
	struct lock_wait *w = data;
	struct lockmgr *m = w->m;
	uint64_t ticket = 0;
	int queued;

	(void)req;
	pthread_mutex_lock(&w->mu);
	w->interrupted = 1;
	queued = w->queued;
	if (queued)
		ticket = w->ticket;
	pthread_mutex_unlock(&w->mu);
	if (queued) {
		/* may call on_grant(w, -EINTR) here, which may free w */
		in_interrupt = w;
		m->ops->cancel(m, ticket);
		in_interrupt = NULL;
	}
}

/* Ask the manager for lr and reply (or hand the answer to `then`), now
 * or when it answers. Unlocks, and non-blocking requests to the local
 * manager, are answered at once; everything else may be queued: a
 * blocking request, and a non-blocking one to the mesh manager, whose
 * every answer is a round trip away (no FUSE worker waits for it). */
static void lock_submit(struct lockmgr *m, fuse_req_t req,
			const struct lock_req *lr, lockops_then then,
			void *then_arg)
{
	size_t len = strlen(lr->path);
	struct lock_wait *w;
	uint64_t ticket = 0;
	int ret, interrupted;

	if (!then && (lr->type == LOCK_TYPE_UNLOCK ||
		      (!lr->wait && !m->mesh))) {
		ret = m->ops->lock(m, lr, NULL, NULL, NULL);
		reply_lock_result(m, req, lr, ret);
		return;
	}
	w = calloc(1, sizeof(*w) + len + 1);
	if (!w) {
		if (then)
			then(then_arg, req, -ENOLCK);
		else
			fuse_reply_err(req, ENOLCK);
		return;
	}
	pthread_mutex_init(&w->mu, NULL);
	w->refs = 2;
	w->m = m;
	w->req = req;
	w->then = then;
	w->then_arg = then_arg;
	memcpy(w->path, lr->path, len + 1);
	w->lr = *lr;
	w->lr.path = w->path;

	fuse_req_interrupt_func(req, on_interrupt, w);  /* rule 1 */
	ret = m->ops->lock(m, &w->lr, on_grant, w, &ticket);
	if (ret != LOCK_QUEUED) {
		/* answered at once: the callback will never run */
		fuse_req_interrupt_func(req, NULL, NULL);
		deliver(w, ret);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return;
	}
	/* From here on w may be granted and replied by another thread; it
	 * lives until our reference is dropped. req is not ours any more. */
	pthread_mutex_lock(&w->mu);
	w->ticket = ticket;
	w->queued = 1;
	interrupted = w->interrupted;
	pthread_mutex_unlock(&w->mu);
	if (interrupted)
		m->ops->cancel(m, ticket);
	wait_put(w);
}

void lockops_flock(struct lockmgr *m, fuse_req_t req, const char *path,
		   struct fuse_file_info *fi, int op)
{
	struct lock_req lr = {
		.path = path,
		.kind = LOCK_KIND_FLOCK,
		.owner = fi->lock_owner,
		.pid = fuse_req_ctx(req)->pid,
		.wait = !(op & LOCK_NB),
		.start = 0,
		.end = UINT64_MAX,
	};

	switch (op & ~LOCK_NB) {
	case LOCK_SH:
		lr.type = LOCK_TYPE_SHARED;
		break;
	case LOCK_EX:
		lr.type = LOCK_TYPE_EXCL;
		break;
	case LOCK_UN:
		lr.type = LOCK_TYPE_UNLOCK;
		break;
	default:
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (!path) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	lock_submit(m, req, &lr, NULL, NULL);
}

/* struct flock (SEEK_SET from the kernel; l_len 0 = to EOF, negative =
 * before l_start) to an inclusive byte range. */
static int flock_range(const struct flock *fl, uint64_t *start, uint64_t *end)
{
	int64_t s = fl->l_start, len = fl->l_len;

	if (fl->l_whence != SEEK_SET)
		return -EINVAL;
	if (len < 0) {
		if (s + len < 0)
			return -EINVAL;
		s += len;
		len = -len;
	}
	if (s < 0)
		return -EINVAL;
	*start = (uint64_t)s;
	if (len == 0 || (uint64_t)s + (uint64_t)len - 1 < (uint64_t)s)
		*end = UINT64_MAX;
	else
		*end = (uint64_t)s + (uint64_t)len - 1;
	return 0;
}

static int posix_req(fuse_req_t req, const char *path,
		     struct fuse_file_info *fi, const struct flock *fl,
		     struct lock_req *lr)
{
	memset(lr, 0, sizeof(*lr));
	if (!path)
		return -EINVAL;
	lr->path = path;
	lr->kind = LOCK_KIND_POSIX;
	lr->owner = fi->lock_owner;
	lr->pid = fl->l_pid > 0 ? fl->l_pid : fuse_req_ctx(req)->pid;
	switch (fl->l_type) {
	case F_RDLCK:
		lr->type = LOCK_TYPE_SHARED;
		break;
	case F_WRLCK:
		lr->type = LOCK_TYPE_EXCL;
		break;
	case F_UNLCK:
		lr->type = LOCK_TYPE_UNLOCK;
		break;
	default:
		return -EINVAL;
	}
	return flock_range(fl, &lr->start, &lr->end);
}

void lockops_getlk(struct lockmgr *m, fuse_req_t req, const char *path,
		   struct fuse_file_info *fi, struct flock *lock)
{
	struct lock_req lr;
	struct lock_state st;
	struct flock out;
	int ret = posix_req(req, path, fi, lock, &lr);

	if (!ret && lr.type == LOCK_TYPE_UNLOCK)
		ret = -EINVAL;  /* F_GETLK with F_UNLCK is invalid */
	if (!ret)
		ret = m->ops->query(m, &lr, &st);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	memset(&out, 0, sizeof(out));
	out.l_whence = SEEK_SET;
	if (st.type == LOCK_TYPE_UNLOCK) {
		out = *lock;
		out.l_type = F_UNLCK;
	} else {
		out.l_type = st.type == LOCK_TYPE_EXCL ? F_WRLCK : F_RDLCK;
		out.l_start = (off_t)st.start;
		out.l_len = st.end == UINT64_MAX || st.end >= INT64_MAX ?
				    0 : (off_t)(st.end - st.start + 1);
		out.l_pid = st.pid;
	}
	fuse_reply_lock(req, &out);
}

void lockops_setlk(struct lockmgr *m, fuse_req_t req, const char *path,
		   struct fuse_file_info *fi, struct flock *lock, int sleep)
{
	struct lock_req lr;
	int ret = posix_req(req, path, fi, lock, &lr);

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	lr.wait = sleep != 0;
	lock_submit(m, req, &lr, NULL, NULL);
}

/* The lock identity of an O_EXCL create of path: "!" + path. */
static int excl_path(const char *path, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%c%s", LOCK_EXCL_PREFIX, path);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

void lockops_excl(struct lockmgr *m, fuse_req_t req, const char *path,
		  uint64_t owner, lockops_then then, void *arg)
{
	char lpath[LOCKOPS_EXCL_PATH_MAX];
	struct lock_req lr = {
		.path = lpath,
		.kind = LOCK_KIND_FLOCK,
		.type = LOCK_TYPE_EXCL,
		.owner = owner,
		.pid = fuse_req_ctx(req)->pid,
		.wait = 1,
		.start = 0,
		.end = UINT64_MAX,
	};
	int err = excl_path(path, lpath, sizeof(lpath));

	if (err) {
		then(arg, req, err);
		return;
	}
	lock_submit(m, req, &lr, then, arg);
}

void lockops_excl_unlock(struct lockmgr *m, const char *path, uint64_t owner)
{
	char lpath[LOCKOPS_EXCL_PATH_MAX];
	struct lock_req lr = {
		.path = lpath,
		.kind = LOCK_KIND_FLOCK,
		.type = LOCK_TYPE_UNLOCK,
		.owner = owner,
		.start = 0,
		.end = UINT64_MAX,
	};

	if (excl_path(path, lpath, sizeof(lpath)) == 0)
		m->ops->lock(m, &lr, NULL, NULL, NULL);
}

void lockops_release(struct lockmgr *m, const char *path,
		     struct fuse_file_info *fi, int on_flush)
{
	if (!path)
		return;
	if (on_flush)
		m->ops->release(m, path, LOCK_KIND_POSIX, fi->lock_owner);
	else if (fi->flock_release)
		m->ops->release(m, path, LOCK_KIND_FLOCK, fi->lock_owner);
}

static int xattr_value(const char *val, char *buf, size_t size)
{
	size_t len = strlen(val);

	if (size == 0)
		return (int)len;
	if (size < len)
		return -ERANGE;
	memcpy(buf, val, len);
	return (int)len;
}

static int lock_state_of(struct lockmgr *m, const char *path,
			 enum lock_kind kind, struct lock_state *st)
{
	struct lock_req lr = {
		.path = path,
		.kind = kind,
		.type = LOCK_TYPE_UNLOCK,
		.start = 0,
		.end = UINT64_MAX,
	};

	return m->ops->query(m, &lr, st);
}

int lockops_xattr(struct lockmgr *m, const char *path, const char *name,
		  char *buf, size_t size)
{
	struct lock_state st;
	char val[128];
	int ret;

	if (!path || !name)
		return -EINVAL;
	if (strcmp(name, "user.statefs.lock") != 0 &&
	    strcmp(name, "user.statefs.lock.token") != 0)
		return -ENODATA;
	ret = lock_state_of(m, path, LOCK_KIND_FLOCK, &st);
	if (!ret && st.type == LOCK_TYPE_UNLOCK) {
		/* no flock holder: the POSIX locks, if any are held or the
		 * flock lock has no token (the mesh table keeps the token of
		 * an unheld lock, the local manager forgets the lock) */
		struct lock_state px;

		ret = lock_state_of(m, path, LOCK_KIND_POSIX, &px);
		if (!ret && (px.type != LOCK_TYPE_UNLOCK || st.token == 0))
			st = px;
	}
	if (ret)
		return ret;
	if (strcmp(name, "user.statefs.lock.token") == 0)
		snprintf(val, sizeof(val), "%" PRIu64, st.token);
	else if (st.type == LOCK_TYPE_EXCL)
		snprintf(val, sizeof(val), "exclusive %s %d", st.host,
			 (int)st.pid);
	else if (st.type == LOCK_TYPE_SHARED)
		snprintf(val, sizeof(val), "shared %u", st.holders);
	else
		snprintf(val, sizeof(val), "unlocked");
	return xattr_value(val, buf, size);
}
