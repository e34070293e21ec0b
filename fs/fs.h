/*
 * fs.h — the statefs FUSE driver as a module: main.c builds a struct fs
 * around an open store and a lock manager, hands fs_ll_ops to
 * fuse_session_new() with the struct fs as userdata, and starts the
 * invalidation thread once the session is mounted.
 */
#ifndef STATEFS_FS_H
#define STATEFS_FS_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>
#include <stdint.h>

#include "fs/lock.h"
#include "store/store.h"

struct fs;

extern const struct fuse_lowlevel_ops fs_ll_ops;

/* Build the driver state (the session's userdata). 0 or -ENOMEM.
 * node_name NULL: the store's. */
int fs_new(const char *node_name, struct fs **fsp);
/* Give it its store and lock manager before the session loop starts;
 * both stay owned by the caller and must outlive the loop. */
void fs_attach(struct fs *fs, struct store *s, struct lockmgr *m);
/* Tell the driver its store directory, absolute (the replicator's
 * STORE_DIR/repl.status is read from there for /.statefs/peers and
 * stats). 0 or -ENOMEM. */
int fs_set_store_dir(struct fs *fs, const char *dir);
/* Tell the driver its session (needed for kernel notifications). */
void fs_set_session(struct fs *fs, struct fuse_session *se);
/* Start / stop the invalidation and sweeper thread (fs/notify.c). */
int fs_notify_start(struct fs *fs);
void fs_notify_stop(struct fs *fs);
/* The mount's side of a mesh lock's data handover (a lock_sync_fn,
 * arg the struct fs): returns once the invalidation thread has handled
 * the binlog up to the store's last sequence as of the call, at most
 * 2 s; past that it invalidates every cached inode itself. Returns at
 * once while the thread is not running. Not from a FUSE handler. */
void fs_lock_sync(void *arg);
void fs_destroy(struct fs **fsp);

/* A TTL such as "30", "30s", "5m", "1h", "2d", "1.5" in milliseconds:
 * 0 or -EINVAL. */

#endif
