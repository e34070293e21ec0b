/*
 * lock.h — the lock manager the driver asks for flock(2) and fcntl(2)
 * locks. The driver never decides a lock itself: it turns a FUSE request
 * into a struct lock_req, asks the manager, and replies when the manager
 * answers. Today the manager is local (lock.c: an in-memory table for one
 * mount); the mesh-wide issue puts a consensus service behind the same
 * struct lockmgr_ops, so nothing in the driver changes.
 *
 * Identity: a lock is named by its path in the store plus its kind (flock
 * and POSIX locks are separate namespaces, as on Linux).
 *
 * Owners: `owner` is the kernel's lock owner from FUSE (flock: one per
 * open file description; POSIX: one per process's file table). A lock is
 * held by one owner; the same owner asking again converts it (flock's
 * LOCK_SH <-> LOCK_EX).
 *
 * Asynchrony: a blocking request that cannot be granted at once is queued
 * and the manager returns LOCK_QUEUED; the callback is then called exactly
 * once, from any thread, with 0 (granted), -EINTR (cancelled) or another
 * negative errno. No thread is held while a request waits. Waiters of one
 * lock are served in arrival order (a shared request behind a queued
 * exclusive one waits its turn, so writers do not starve).
 *
 * Errors are flock(2)'s and fcntl(2)'s exactly: -EWOULDBLOCK (== -EAGAIN)
 * for a busy non-blocking request, -EINTR for an interrupted wait, -ENOLCK
 * when the table is full, -EDEADLK for a blocking POSIX request that
 * would wait for its own owner through a chain of waits (F_SETLKW).
 * Nothing else leaks to the caller.
 */
#ifndef STATEFS_FS_LOCK_H
#define STATEFS_FS_LOCK_H

#include <stdint.h>
#include <sys/types.h>

enum lock_kind { LOCK_KIND_FLOCK = 0, LOCK_KIND_POSIX = 1 };
enum lock_type { LOCK_TYPE_UNLOCK = 0, LOCK_TYPE_SHARED = 1, LOCK_TYPE_EXCL = 2 };

#define LOCK_QUEUED 1

struct lock_req {
	const char *path;     /* copied by the manager when it must keep it */
	enum lock_kind kind;
	enum lock_type type;
	uint64_t owner;
	pid_t pid;            /* of the requesting process (for holder display) */
	int wait;             /* block instead of -EWOULDBLOCK */
	/* POSIX only: byte range, end inclusive; whole file is 0..UINT64_MAX. */
	uint64_t start, end;
};

/* What getfattr user.statefs.lock shows, and F_GETLK's answer. */
struct lock_state {
	enum lock_type type;  /* strongest held: UNLOCK, SHARED or EXCL */
	unsigned holders;     /* shared: count; exclusive: 1 */
	pid_t pid;            /* exclusive holder's pid (or one shared holder's) */
	char host[64];        /* holder's host name */
	uint64_t token;       /* fencing token: grows with every exclusive grant */
	unsigned waiters;
	uint64_t start, end;  /* POSIX conflict range for F_GETLK */
};

struct lock_stats {
	uint64_t held_excl, held_shared, waiters;
	uint64_t grants, contentions, orphans, cancels;
};

typedef void (*lock_cb)(void *arg, int err);

struct lockmgr;

struct lockmgr_ops {
	/* 0: granted now; -EWOULDBLOCK: busy and !req->wait; LOCK_QUEUED:
	 * cb(arg, err) will be called once, *ticket cancels it. An unlock
	 * request (LOCK_TYPE_UNLOCK) always returns at once. */
	int (*lock)(struct lockmgr *m, const struct lock_req *req, lock_cb cb,
		    void *arg, uint64_t *ticket);
	/* Cancel a queued request: its callback gets -EINTR unless it was
	 * already granted (then nothing happens; the grant stands). */
	void (*cancel)(struct lockmgr *m, uint64_t ticket);
	/* Drop every lock `owner` holds on `path` (close of a file:
	 * FUSE release / flush). `kind` says which namespace. */
	void (*release)(struct lockmgr *m, const char *path,
			enum lock_kind kind, uint64_t owner);
	/* F_GETLK: would `req` conflict? Fills *st with the conflicting
	 * lock (type UNLOCK if none). Also used for user.statefs.lock with
	 * req->type UNLOCK: fills the current state of the flock lock. */
	int (*query)(struct lockmgr *m, const struct lock_req *req,
		     struct lock_state *st);
	void (*stats)(struct lockmgr *m, struct lock_stats *out);
	void (*destroy)(struct lockmgr *m);
};

struct lockmgr {
	const struct lockmgr_ops *ops;
};

/* The local manager: one table per mount, `host` shown for holders. */
struct lockmgr *lockmgr_local_new(const char *host);

static inline void lockmgr_destroy(struct lockmgr **mp)
{
	if (*mp) {
		(*mp)->ops->destroy(*mp);
		*mp = NULL;
	}
}

#endif
