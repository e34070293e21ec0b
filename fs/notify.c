/*
 * notify.c — the invalidation thread: keeps the kernel's caches of this
 * mount true to the store when someone else changes it.
 *
 * Changes made through this mount go through the kernel, which updates
 * its own caches. Everything else (statefsctl, the replicator applying a
 * peer's change, another mount of the same store) is seen only in the
 * binlog. One thread per mount:
 *
 *   loop: store_wait(last, 1 s)          woken by any committer
 *         store_binlog_read(last, 256)   copy the batch out of LMDB
 *         for each change:
 *           wake poll handles of the record's open files (any writer)
 *           foreign (writer != ours), or ours with a deadline sooner
 *           than the kernel may cache the node (kcache_until_ns):
 *             inval_inode(ino)                drop attrs + page cache
 *             tombstone: notify_delete(parent, ino, name)  (inotify
 *                        sees IN_DELETE), and the node dies
 *             else:      inval_entry(parent, name)
 *             a directory or a tombstone: inval_inode(parent, attrs
 *                        only) (its nlink counts subdirectories)
 *         every 10 s: store_sweep()
 *   -ERANGE (the binlog was trimmed past us), or a snapshot installed
 *   (store_resyncs changed; seen within a second, at the next wake):
 *   invalidate every cached inode and entry, and go on from the last
 *   sequence.
 *
 * Our own changes are copied out only when they need work: a change
 * whose deadline comes before what the kernel may still cache of the
 * node (a setfattr user.statefs.ttl on a file the kernel caches for a
 * day must shorten that cache; the next lookup gives a bounded
 * timeout, see cache_timeout() and attr_timeout() in fs.c) is
 * invalidated; any other own change only wakes the polls of the node's
 * open files (no copy, no malloc), and a write that renews a deadline
 * (later than anything the kernel cached) invalidates nothing.
 * A foreign tombstone kills the cached node only if the record is still
 * gone when the thread gets to it (we may have created it again).
 *
 * The handover of a mesh lock (SPEC §6): before a grant is replied,
 * the mesh lock manager calls fs_lock_sync(), which waits until this
 * thread has handled the binlog up to the store's last sequence as of
 * that moment (the service answered the grant only once the store had
 * applied the previous holder's writes, so they are in it). The thread
 * publishes how far it got (notify_done, under notify_mu) after every
 * batch. Past FS_SYNC_TIMEOUT_MS (the thread is stuck on a kernel
 * call, or far behind) fs_lock_sync invalidates everything itself, as
 * on a resync: a stale page is never served to a lock holder.
 *
 * Rules: (1) notifications are sent only from this thread, never from a
 * request handler (the kernel may hold locks a handler's request waits
 * on: deadlock); the one exception is fs_lock_sync's fallback, on the
 * lock manager's thread, which serves no request; (2) no lock of ours
 * is held while notifying; (3) LMDB memory is copied before the binlog
 * read ends. Errors of notify calls (-ENOENT: the kernel has forgotten
 * the inode) are expected and ignored.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "fs/fs_int.h"

#define BATCH 256
#define SWEEP_INTERVAL_NS (10LL * 1000000000)
#define SWEEP_MAX 10000
#define FS_SYNC_TIMEOUT_MS 2000

struct change_copy {
	char *path;      /* NULL: an own change, only poll wake-ups (ino) */
	size_t len;
	uint64_t ino;
	int tombstone;
	int dir;         /* a directory or a tombstone: parent's nlink */
};

struct batch {
	struct fs *fs;
	struct change_copy v[BATCH];
	size_t n;
	uint64_t last;
};

static int collect(void *arg, const struct store_change *c)
{
	struct batch *b = arg;
	struct change_copy *cc;
	struct store_stat st;
	int own = c->writer == b->fs->writer;

	if (b->n == BATCH)
		return 1;
	b->last = c->seq;
	memset(&st, 0, sizeof(st));
	if (store_rec_decode(c->rec, c->rec_len, &st, NULL, NULL, NULL) < 0)
		st.type = STORE_NONE;
	cc = &b->v[b->n];
	if (own) {
		/* The kernel saw this change as it made it: invalidate only
		 * when its deadline comes before what the kernel may cache
		 * (a TTL set or shortened), else just wake the polls of the
		 * node's open files; no copy either way. */
		uint64_t ino = 0;
		int inval = fs_itab_own_change(&b->fs->itab, c->path,
					       c->path_len, st.expires_ns,
					       &ino);

		if (st.type == STORE_TOMBSTONE || !inval) {
			if (ino) {
				cc->path = NULL;
				cc->ino = ino;
				b->n++;
			}
			return 0;
		}
	}
	cc->path = malloc(c->path_len + 1);
	if (!cc->path)
		return 0; /* skip this one; the kernel cache may go stale */
	memcpy(cc->path, c->path, c->path_len);
	cc->path[c->path_len] = '\0';
	cc->len = c->path_len;
	cc->tombstone = st.type == STORE_TOMBSTONE;
	cc->dir = cc->tombstone || st.type == STORE_DIR;
	b->n++;
	return 0;
}

static void node_uncache(struct fs *fs, uint64_t ino)
{
	struct fs_node *n;

	pthread_mutex_lock(&fs->itab.lock);
	n = fs_itab_node_locked(&fs->itab, ino);
	if (n) {
		/* the kernel drops what it cached; replies from now on
		 * note their own timeouts */
		n->kcache_until_ns = 0;
	}
	pthread_mutex_unlock(&fs->itab.lock);
}

static void inval_path(struct fs *fs, const char *path, size_t len,
		       int tombstone, int dir)
{
	const char *slash = memrchr(path, '/', len);
	const char *name;
	uint64_t ino, parent;
	size_t plen;

	if (!slash)
		return;
	name = slash + 1;
	plen = slash == path ? 1 : (size_t)(slash - path);
	ino = fs_itab_find(&fs->itab, path, len);
	parent = fs_itab_find(&fs->itab, path, plen);
	fs_count(fs, FS_OP_INVALIDATE);
	if (ino) {
		node_uncache(fs, ino);
		fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
	}
	if (!parent || len == 1)
		return;
	if (dir) /* a directory came or went: the parent's nlink changed */
		fuse_lowlevel_notify_inval_inode(fs->se, parent, -1, 0);
	if (tombstone && ino) {
		struct store_stat st;
		int back;

		/* Kill the node only if the record is still gone: we may
		 * have created it again since (then it is our live node).
		 * Under itab.lock, so no lookup can reference it between
		 * the check and the kill. */
		pthread_mutex_lock(&fs->itab.lock);
		back = store_stat(fs->store, NULL, path, &st) == 0;
		if (!back)
			fs_itab_kill_locked(&fs->itab, path, len);
		pthread_mutex_unlock(&fs->itab.lock);
		if (back)
			fuse_lowlevel_notify_inval_entry(fs->se, parent, name,
							 len - (name - path));
		else
			fuse_lowlevel_notify_delete(fs->se, parent, ino, name,
						    len - (name - path));
	} else if (tombstone) {
		fuse_lowlevel_notify_delete(fs->se, parent, ino, name,
					    len - (name - path));
	} else if (ino) {
		fuse_lowlevel_notify_inval_entry(fs->se, parent, name,
						 len - (name - path));
	}
}

/* The binlog moved on without us (or a handover could not wait for
 * this thread): forget everything the kernel cached. */
static void inval_all(struct fs *fs, const char *why)
{
	uint64_t *inos = NULL;
	char path[FS_PATH_MAX];
	size_t n, i;

	n = fs_itab_all(&fs->itab, &inos);
	for (i = 0; i < n; i++) {
		if (fs_itab_path(&fs->itab, inos[i], path) < 0)
			continue;
		inval_path(fs, path, strlen(path), 0, 0);
	}
	free(inos);
	log_msg(LOG_NOTICE, "%s: invalidated %zu cached inodes", why, n);
}

void fs_poll_wake(struct fs *fs, uint64_t ino)
{
	struct fuse_pollhandle *local[16], **phs = local;
	size_t nph = 0, cap = 16, i;
	struct fs_node *n;
	struct fs_file *f;

	/* Collect the armed handles under the lock, notify after it (rule
	 * 2). A handle taken out of f->ph is ours alone. */
	pthread_mutex_lock(&fs->itab.lock);
	n = fs_itab_node_locked(&fs->itab, ino);
	for (f = n ? n->files : NULL; f; f = f->next) {
		struct fuse_pollhandle *ph;

		atomic_store(&f->changed, 1);
		if (nph == cap) {
			struct fuse_pollhandle **m =
				malloc(cap * 2 * sizeof(*m));

			if (!m)
				continue; /* stays armed: its next poll sees it */
			memcpy(m, phs, nph * sizeof(*m));
			if (phs != local)
				free(phs);
			phs = m;
			cap *= 2;
		}
		ph = atomic_exchange(&f->ph, NULL);
		if (ph)
			phs[nph++] = ph;
	}
	pthread_mutex_unlock(&fs->itab.lock);
	for (i = 0; i < nph; i++) {
		fuse_lowlevel_notify_poll(phs[i]);
		fuse_pollhandle_destroy(phs[i]);
	}
	if (phs != local)
		free(phs);
}

/* The thread has handled the binlog up to seq. */
static void notify_progress(struct fs *fs, uint64_t seq)
{
	pthread_mutex_lock(&fs->notify_mu);
	if (seq > fs->notify_done)
		fs->notify_done = seq;
	pthread_cond_broadcast(&fs->notify_cond);
	pthread_mutex_unlock(&fs->notify_mu);
}

void fs_lock_sync(void *arg)
{
	struct fs *fs = arg;
	struct timespec dl;
	uint64_t want;
	int ok;

	pthread_mutex_lock(&fs->notify_mu);
	if (!fs->notify_live) {
		/* not serving yet, or stopped: the kernel caches nothing
		 * that a request could be served from */
		pthread_mutex_unlock(&fs->notify_mu);
		return;
	}
	pthread_mutex_unlock(&fs->notify_mu);
	want = store_last_seq(fs->store);
	clock_deadline(&dl, FS_SYNC_TIMEOUT_MS);
	pthread_mutex_lock(&fs->notify_mu);
	while (fs->notify_live && fs->notify_done < want &&
	       pthread_cond_timedwait(&fs->notify_cond, &fs->notify_mu,
				      &dl) != ETIMEDOUT)
		;
	ok = !fs->notify_live || fs->notify_done >= want;
	pthread_mutex_unlock(&fs->notify_mu);
	if (!ok)
		inval_all(fs, "lock handover: invalidation still behind the "
			  "store after 2 s");
}

static void *notify_main(void *arg)
{
	struct fs *fs = arg;
	struct batch *b = calloc(1, sizeof(*b));
	uint64_t last = store_last_seq(fs->store);
	uint64_t resyncs = store_resyncs(fs->store), rs;
	int64_t next_sweep = store_now_ns() + SWEEP_INTERVAL_NS;
	size_t i;

	if (!b) {
		log_msg(LOG_ERROR, "invalidation thread: out of memory");
		return NULL;
	}
	b->fs = fs;
	notify_progress(fs, last);
	while (!atomic_load(&fs->notify_stop)) {
		ssize_t r = store_wait(fs->store, last, 1000);

		if (store_now_ns() >= next_sweep) {
			int n = store_sweep(fs->store, SWEEP_MAX);

			fs_count(fs, FS_OP_SWEEP);
			if (n > 0)
				log_msg(LOG_DEBUG, "swept %d records", n);
			next_sweep = store_now_ns() + SWEEP_INTERVAL_NS;
		}
		rs = store_resyncs(fs->store);
		if (rs != resyncs) {
			/* a peer's snapshot changed what no binlog entry says */
			resyncs = rs;
			inval_all(fs, "a snapshot was installed");
		}
		if (r <= 0 && store_last_seq(fs->store) <= last)
			continue;
		b->n = 0;
		b->last = last;
		r = store_binlog_read(fs->store, last, BATCH, collect, b);
		if (r == -ERANGE) {
			inval_all(fs, "binlog trimmed past this mount");
			last = store_last_seq(fs->store);
			notify_progress(fs, last);
			continue;
		}
		if (r < 0) {
			log_msg(LOG_WARNING, "binlog read: %s",
				store_strerror((int)r));
			struct timespec ts = { 0, 100000000 };

			nanosleep(&ts, NULL);
			continue;
		}
		for (i = 0; i < b->n; i++) {
			uint64_t ino = b->v[i].ino;

			if (b->v[i].path) {
				ino = fs_itab_find(&fs->itab, b->v[i].path,
						   b->v[i].len);
				inval_path(fs, b->v[i].path, b->v[i].len,
					   b->v[i].tombstone, b->v[i].dir);
			}
			if (ino)
				fs_poll_wake(fs, ino);
			free(b->v[i].path);
		}
		last = b->last; /* the last change handled */
		notify_progress(fs, last);
	}
	free(b);
	return NULL;
}

int fs_notify_start(struct fs *fs)
{
	int err;

	atomic_store(&fs->notify_stop, 0);
	pthread_mutex_lock(&fs->notify_mu);
	fs->notify_done = 0;
	fs->notify_live = 1;
	pthread_mutex_unlock(&fs->notify_mu);
	err = pthread_create(&fs->notify_thread, NULL, notify_main, fs);
	if (err) {
		pthread_mutex_lock(&fs->notify_mu);
		fs->notify_live = 0;
		pthread_mutex_unlock(&fs->notify_mu);
		return -err;
	}
	fs->notify_running = 1;
	return 0;
}

void fs_notify_stop(struct fs *fs)
{
	if (!fs->notify_running)
		return;
	atomic_store(&fs->notify_stop, 1);
	pthread_join(fs->notify_thread, NULL);
	fs->notify_running = 0;
	pthread_mutex_lock(&fs->notify_mu);
	fs->notify_live = 0;
	pthread_cond_broadcast(&fs->notify_cond);
	pthread_mutex_unlock(&fs->notify_mu);
}
