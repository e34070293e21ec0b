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
 * exclusive one waits its turn, so writers do not starve). A manager
 * given a callback may answer LOCK_QUEUED to a non-blocking request too
 * (the mesh manager always does: its answer is a round trip away); the
 * callback then brings 0 or -EWOULDBLOCK. The local manager answers
 * non-blocking requests at once, with or without a callback.
 *
 * Errors are flock(2)'s and fcntl(2)'s exactly: -EWOULDBLOCK (== -EAGAIN)
 * for a busy non-blocking request, -EINTR for an interrupted wait, -ENOLCK
 * when the table is full, -EDEADLK for a blocking POSIX request that
 * would wait for its own owner through a chain of waits (F_SETLKW).
 * Nothing else leaks to the caller.
 *
 * The mesh manager (lockremote.c, SPEC §6) holds locks in the Raft lock
 * table of the replicators, through this host's statefs-repl:
 *   - POSIX locks are whole-file only there: a byte-range request answers
 *     -ENOLCK (F_GETLK of a range answers about the whole file);
 *   - while the lock service cannot be reached, every request (blocking
 *     or not) and every query answers -ENOLCK at once, and losing the
 *     connection loses every lock the mount held (the service closes its
 *     session): pending requests end with -ENOLCK. Never a local grant;
 *   - a grant completes only after the handover (lock_sync_fn below).
 *   - paths starting with LOCK_EXCL_PREFIX are the locks fs/file.c takes
 *     around an O_CREAT|O_EXCL create of the path after it ("!/a/b"): a
 *     store path starts with '/', so they never collide with a file's.
 */
#ifndef STATEFS_FS_LOCK_H
#define STATEFS_FS_LOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum lock_kind { LOCK_KIND_FLOCK = 0, LOCK_KIND_POSIX = 1 };
enum lock_type { LOCK_TYPE_UNLOCK = 0, LOCK_TYPE_SHARED = 1, LOCK_TYPE_EXCL = 2 };

#define LOCK_QUEUED 1
#define LOCK_EXCL_PREFIX '!'
/* Owners the driver makes up itself (O_EXCL creates) have this bit; the
 * kernel's are pointers and file handles, far below it. */
#define LOCK_OWNER_INTERNAL (1ULL << 63)

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
	int mesh;       /* the mesh manager */
	int connected;  /* it reaches its lock service (local: always 1) */
};

typedef void (*lock_cb)(void *arg, int err);
/* The mesh manager's handover hook, called before a grant's callback
 * (not for LOCK_EXCL_PREFIX paths), on the manager's own thread: it
 * returns once the mount's kernel caches are no older than the store.
 * It may block, for a bounded time. */
typedef void (*lock_sync_fn)(void *arg);

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
	int mesh;       /* locks span hosts: O_EXCL creates take a lock */
};

/* The local manager: one table per mount, `host` shown for holders. */
struct lockmgr *lockmgr_local_new(const char *host);

/* The mesh manager: connects to the lock service at sock_path (common/
 * lockproto.h), now or later in the background (with backoff, also
 * after a loss), and says HELLO as `host`. sync(sync_arg) is the
 * handover hook (NULL: none). NULL with a message in err when the path
 * does not fit AF_UNIX or on ENOMEM; a service that is not there yet is
 * no error (requests answer -ENOLCK until it comes). */
struct lockmgr *lockmgr_remote_new(const char *sock_path, const char *host,
				   lock_sync_fn sync, void *sync_arg,
				   char *err, size_t errlen);

static inline void lockmgr_destroy(struct lockmgr **mp)
{
	if (*mp) {
		(*mp)->ops->destroy(*mp);
		*mp = NULL;
	}
}

#endif
