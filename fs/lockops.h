/*
 * lockops.h — FUSE glue between the low-level driver and the lock
 * manager (fs/lock.h). The driver calls these from its .flock, .getlk,
 * .setlk, .release, .flush and .getxattr handlers and does nothing else
 * about locks.
 *
 * Replies: lockops_flock/getlk/setlk reply to `req` exactly once, maybe
 * later and from another thread (a blocking request is queued and
 * answered when granted or interrupted); the caller must not touch `req`
 * after calling them. `path` is the store path of the inode; it is copied
 * when kept. The manager must be destroyed (lockmgr_destroy) before the
 * FUSE session: pending waiters are answered EINTR then.
 *
 * The driver must reply to FLUSH for every open file (no FOPEN_NOFLUSH)
 * and call lockops_release from it, or POSIX locks outlive close(2).
 * libfuse turns on FUSE_CAP_FLOCK_LOCKS / FUSE_CAP_POSIX_LOCKS when the
 * .flock / .getlk+.setlk ops are set.
 */
#ifndef STATEFS_FS_LOCKOPS_H
#define STATEFS_FS_LOCKOPS_H

#include <fcntl.h>
#include <stddef.h>

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312  /* as fs/fs.h */
#endif
#include <fuse_lowlevel.h>

#include "fs/lock.h"

/* .flock: op is LOCK_SH, LOCK_EX or LOCK_UN, maybe | LOCK_NB. Owner is
 * fi->lock_owner (one per open file description). Replies 0,
 * EWOULDBLOCK, EINTR (interrupted wait), ENOLCK or EINVAL. */
void lockops_flock(struct lockmgr *m, fuse_req_t req, const char *path,
		   struct fuse_file_info *fi, int op);

/* .getlk: replies with the first conflicting lock (type, range, pid) or
 * F_UNLCK. */
void lockops_getlk(struct lockmgr *m, fuse_req_t req, const char *path,
		   struct fuse_file_info *fi, struct flock *lock);

/* .setlk: F_SETLK (sleep 0: EAGAIN when busy) or F_SETLKW (sleep 1). */
void lockops_setlk(struct lockmgr *m, fuse_req_t req, const char *path,
		   struct fuse_file_info *fi, struct flock *lock, int sleep);

/* From .release (drops fi->lock_owner's flock lock when
 * fi->flock_release is set) and from .flush with on_flush=1 (drops
 * fi->lock_owner's POSIX locks on path). Never replies. */
void lockops_release(struct lockmgr *m, const char *path,
		     struct fuse_file_info *fi, int on_flush);

/* What an O_EXCL create does once its lock is decided: err 0, the lock
 * is held (create, lockops_excl_unlock, reply); else the -errno to
 * reply (-EINTR: interrupted; -ENOLCK: no lock service). Called once,
 * maybe from another thread; it must reply to req. */
typedef void (*lockops_then)(void *arg, fuse_req_t req, int err);

#define LOCKOPS_EXCL_PATH_MAX 4097  /* '!', a path, NUL */

/* O_CREAT|O_EXCL on a mesh mount (m->mesh): take the exclusive flock on
 * LOCK_EXCL_PREFIX + path as `owner` (a LOCK_OWNER_INTERNAL value used
 * once), blocking and interruptible, then call then(arg, req, err). */
void lockops_excl(struct lockmgr *m, fuse_req_t req, const char *path,
		  uint64_t owner, lockops_then then, void *arg);
/* Release it (after the create committed: the release carries the
 * store's version vector, so the next holder sees the new file). */
void lockops_excl_unlock(struct lockmgr *m, const char *path,
			 uint64_t owner);

/* getxattr of "user.statefs.lock" ("unlocked", "exclusive HOST PID",
 * "shared N"; the flock lock, or the POSIX locks when no flock lock is
 * held) or "user.statefs.lock.token" (decimal; "0" when the lock has no
 * state: never granted, or freed since). The value has no trailing NUL.
 * Returns its length; size 0 asks for the length only; -ERANGE if size is
 * too small; -ENODATA for any other name. */
int lockops_xattr(struct lockmgr *m, const char *path, const char *name,
		  char *buf, size_t size);

#endif
