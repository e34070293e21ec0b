/*
 * fs.c — the low-level FUSE operations of statefs.
 *
 * Every regular file is one store record; every directory a namespace.
 * Handlers translate an inode number to the record's path through the
 * inode table (inode.c), call the store, and reply exactly once on every
 * path (errors through reply_err, which also counts them).
 *
 * Caching. The kernel may cache entries, attributes and pages for long
 * (FS_CACHE_TIMEOUT): changes made through this mount are seen by the
 * kernel as it makes them, and changes made by anyone else (statefsctl,
 * the replicator, another mount) reach the kernel through the
 * invalidation thread (notify.c), which reads the binlog. Two limits:
 *  - a record with a TTL deadline is cached at most until its deadline,
 *    so an expired record is ENOENT at once without any notification;
 *  - an open for reading keeps the page cache (FOPEN_KEEP_CACHE) only
 *    when the record's version is the one the kernel last cached
 *    (node->cache_ver); any publish from this mount clears it.
 * The kernel's writeback cache is NOT enabled: with it the kernel would
 * send dirty pages whenever it likes, after close, which breaks the
 * rule below that the value changes all at once at close.
 *
 * Writes (SPEC §2 "writes are atomic per file"). An open file has a
 * private buffer (struct fs_file). Writes, O_APPEND and ftruncate change
 * only the buffer; the buffer is published with ONE store_put:
 *  (1) at FLUSH and FSYNC, if the handle is dirty and the buffer is not
 *      an empty one produced only by O_TRUNC (defer_empty);
 *  (2) at RELEASE (last close of the open file description), if still
 *      dirty, whatever its content.
 * Why the exception: bash's `echo v > f` opens with O_TRUNC, dup2()s
 * and closes the original descriptor (FLUSH with nothing written yet),
 * then writes and closes (FLUSH again). Publishing the empty buffer at
 * the first FLUSH would let readers see an empty file. `: > f` (open
 * O_TRUNC, close) still empties the file, at RELEASE. The kernel sends
 * RELEASE asynchronously after close(2) returns, so for that one case
 * (a truncation with nothing written) another process may see the old
 * value for a moment after close returns. FUSE_CAP_ATOMIC_O_TRUNC is
 * required, else the kernel would truncate with a SETATTR at open.
 * A write that fails (EFBIG past maxvalue, ENOMEM) makes the handle
 * failed for good (write_err): the writer's value is incomplete, so
 * nothing is published, later writes, flush and fsync return the same
 * error and the record keeps its old value (a file the handle created
 * keeps the empty value its create committed).
 * Two writers of one file: each publishes its own buffer, the last to
 * close wins. A handle whose file was unlinked or replaced while open
 * (node dead) publishes nothing, as data written to an unlinked file.
 *
 * The kernel is not atomic at an O_TRUNC open for the other readers of
 * the host: it sets its own i_size to 0 when the open succeeds, before
 * anything is written, and a reader served from the page cache trusts
 * that size and reads nothing. So (3) a read-only open while a writer
 * has the file open, or opened it less than FS_WRITER_QUIET_NS ago, is
 * direct_io: every read reaches us and the store's committed value.
 * Files nobody writes keep the page cache. The one remaining window: a
 * reader that opened in page-cache mode after a second of quiet and
 * reads within the microseconds of a writer's O_TRUNC open. Attributes
 * handed out while an O_TRUNC handle is open are not cached (see
 * attr_timeout) for the same reason.
 *
 * Reads. A read-only handle reads the record directly (store_read) when
 * the whole value fits the request; otherwise it takes a snapshot of
 * the whole value (store_get) into its buffer at the first read and
 * serves every later read from it, so a reader of a large value never
 * mixes two versions. A dirty handle reads its own buffer.
 *
 * Locks are consistency points: a flock or fcntl lock request on a
 * handle with nothing unpublished drops its snapshot, so the reads that
 * follow see the value committed by the last holder. Without it SQLite
 * (fcntl locks, reads in 4 KiB pages) lost updates: a connection that
 * had read the file before waiting for the lock went on reading its old
 * snapshot after the other writer committed, wrote pages computed from
 * it and so dropped the other's rows (2 processes x 50 inserts kept 90
 * of 101 rows; with this, 101 in most runs, 100 in some: one more lost
 * update remains, not yet understood). SQLite's WAL mode does not work:
 * its -shm file is shared memory through mmap, and writes here reach
 * other processes only when published (SIGBUS past the old size).
 *
 * Poll: each open file keeps the last fuse_pollhandle the kernel gave
 * it. The invalidation thread marks the open files of a changed record
 * `changed` and wakes the handle. poll answers POLLIN|POLLRDNORM|POLLPRI
 * exactly once per change since open or since the last time it
 * answered so (it clears the mark), and 0 otherwise.
 *
 * /.statefs is a virtual, read-only directory listed in the root (so
 * `ls -a` shows it and `cat /mnt/.statefs/stats` completes); ctl.c
 * serves it. Anything that would create, remove, rename or change a
 * name there, or "/.statefs" itself, is EPERM.
 *
 * Locks: fs_file->lock protects a file's buffer; the inode table has
 * its own mutex (inode.c). Every handler that turns an ino into a path
 * holds itab.ns shared (ns_rd) until it has acted on that path in the
 * store and in the table; rename holds it exclusively (ns_wr) across
 * store_rename and fs_itab_rename, so no lookup, create or publish can
 * act on a path a concurrent rename has just made stale (a lookup would
 * cache a node at a path that no longer exists; a publish racing
 * `mv f g` would create f again). Order: fs_file->lock, itab.ns,
 * itab.lock. No handler holds a lock while it waits for another thread,
 * and no handler calls a fuse_lowlevel_notify_* function (notify.c
 * does, from its own thread).
 *
 * Open files of a deleted record. An unlink or a rename over a file
 * with open files takes a snapshot of the record in the transaction
 * that deletes it (fs_itab_kill_keep): fstat and reads of those files
 * go on seeing it (nlink 0), as on tmpfs. A record deleted by someone
 * else has no snapshot: its open files read EOF and fstat shows the
 * attributes it had when it was opened, never ENOENT.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/log.h"
#include "fs/fs_int.h"
#include "fs/lockops.h"

const char *const fs_op_names[FS_OP_COUNT] = {
	[FS_OP_LOOKUP] = "lookup", [FS_OP_FORGET] = "forget",
	[FS_OP_GETATTR] = "getattr", [FS_OP_SETATTR] = "setattr",
	[FS_OP_READLINK] = "readlink", [FS_OP_MKNOD] = "mknod",
	[FS_OP_MKDIR] = "mkdir", [FS_OP_UNLINK] = "unlink",
	[FS_OP_RMDIR] = "rmdir", [FS_OP_SYMLINK] = "symlink",
	[FS_OP_RENAME] = "rename", [FS_OP_LINK] = "link",
	[FS_OP_OPEN] = "open", [FS_OP_READ] = "read",
	[FS_OP_WRITE] = "write", [FS_OP_FLUSH] = "flush",
	[FS_OP_RELEASE] = "release", [FS_OP_FSYNC] = "fsync",
	[FS_OP_OPENDIR] = "opendir", [FS_OP_READDIR] = "readdir",
	[FS_OP_RELEASEDIR] = "releasedir", [FS_OP_STATFS] = "statfs",
	[FS_OP_SETXATTR] = "setxattr", [FS_OP_GETXATTR] = "getxattr",
	[FS_OP_LISTXATTR] = "listxattr",
	[FS_OP_REMOVEXATTR] = "removexattr", [FS_OP_CREATE] = "create",
	[FS_OP_GETLK] = "getlk", [FS_OP_SETLK] = "setlk",
	[FS_OP_FLOCK] = "flock", [FS_OP_POLL] = "poll",
	[FS_OP_PUBLISH] = "publish", [FS_OP_INVALIDATE] = "invalidate",
	[FS_OP_SWEEP] = "sweep",
};

#define XATTR_TTL "user.statefs.ttl"
#define XATTR_EXPIRES "user.statefs.expires"
#define XATTR_LOCK "user.statefs.lock"
#define XATTR_LOCK_TOKEN "user.statefs.lock.token"
#define XATTR_RESERVED "user.statefs."

static struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void ns_rd(struct fs *fs)
{
	pthread_rwlock_rdlock(&fs->itab.ns);
}

static void ns_wr(struct fs *fs)
{
	pthread_rwlock_wrlock(&fs->itab.ns);
}

static void ns_unlock(struct fs *fs)
{
	pthread_rwlock_unlock(&fs->itab.ns);
}

void fs_count_err(struct fs *fs, int err)
{
	if (err > 0 && err <= FS_ERRNO_MAX)
		atomic_fetch_add_explicit(&fs->stats.errors[err], 1,
					  memory_order_relaxed);
}

/* Reply with a positive errno (and count it). */
static void reply_err(struct fs *fs, fuse_req_t req, int err)
{
	if (err < 0)
		err = -err;
	if (err != ENOENT && err != ENODATA)
		fs_count_err(fs, err);
	fuse_reply_err(req, err);
}

/* ---- per-thread read buffer (no allocation per read) ---- */

static pthread_key_t rbuf_key;
static pthread_once_t rbuf_once = PTHREAD_ONCE_INIT;

struct rbuf {
	size_t cap;
	char data[];
};

static void rbuf_free(void *p)
{
	free(p);
}

static void rbuf_init(void)
{
	pthread_key_create(&rbuf_key, rbuf_free);
}

static char *rbuf_get(size_t size)
{
	struct rbuf *b;

	pthread_once(&rbuf_once, rbuf_init);
	b = pthread_getspecific(rbuf_key);
	if (!b || b->cap < size) {
		struct rbuf *nb = realloc(b, sizeof(*nb) + size);

		if (!nb)
			return NULL;
		nb->cap = size;
		b = nb;
		pthread_setspecific(rbuf_key, b);
	}
	return b->data;
}

/* ---- paths and attributes ---- */

static int is_ctl_name(fuse_ino_t parent, const char *name)
{
	return parent == FUSE_ROOT_ID && strcmp(name, FS_CTL_NAME) == 0;
}

/* Path of child `name` of `parent` into buf. -EPERM inside /.statefs
 * or for /.statefs itself (callers that may look it up check first). */
static int child_path(struct fs *fs, fuse_ino_t parent, const char *name,
		      char *buf)
{
	size_t nlen = strlen(name), plen;
	int err;

	if (fs_ino_is_ctl(parent) || is_ctl_name(parent, name))
		return -EPERM;
	if (nlen > STORE_NAME_MAX)
		return -ENAMETOOLONG;
	err = fs_itab_path(&fs->itab, parent, buf);
	if (err < 0)
		return err;
	plen = strlen(buf);
	if (plen + 1 + nlen + 1 > FS_PATH_MAX)
		return -ENAMETOOLONG;
	if (plen > 1)
		buf[plen++] = '/';
	memcpy(buf + plen, name, nlen + 1);
	err = store_path_check(fs->store, buf);
	if (err < 0)
		return -ENAMETOOLONG;
	return 0;
}

static double cache_timeout(const struct store_stat *st)
{
	double left;

	if (!st->expires_ns)
		return FS_CACHE_TIMEOUT;
	/* Stop caching 10 ms early: jiffies round the kernel's deadline up. */
	left = (double)(st->expires_ns - store_now_ns()) / 1e9 - 0.01;
	if (left <= 0)
		return 0;
	return left < FS_CACHE_TIMEOUT ? left : FS_CACHE_TIMEOUT;
}

/* Attribute timeout for `ino`, for a reply about to be sent; also
 * notes in the node until when the kernel may cache it (see notify.c:
 * own changes are invalidated only when their deadline comes sooner).
 * While a file of it is open with O_TRUNC the kernel sets its own size
 * to 0 after our OPEN reply (and again at the VFS truncate that follows
 * the open); attributes we hand out in that window must not be cached,
 * or a reader would trust the size 0 and read nothing although the
 * store still holds the old value. */
static double attr_timeout(struct fs *fs, uint64_t ino,
			   const struct store_stat *st)
{
	double to = cache_timeout(st);
	int64_t until = store_now_ns() + (int64_t)(to * 1e9);

	if (fs_itab_note_reply(&fs->itab, ino, until) &&
	    st->type == STORE_FILE)
		return 0;
	return to;
}

static void fill_attr(uint64_t ino, const struct store_stat *st,
		      struct stat *a)
{
	memset(a, 0, sizeof(*a));
	a->st_ino = ino;
	a->st_mode = st->mode;
	if (!(a->st_mode & S_IFMT)) {
		if (st->type == STORE_DIR)
			a->st_mode |= S_IFDIR;
		else if (st->type == STORE_SYMLINK)
			a->st_mode |= S_IFLNK;
		else
			a->st_mode |= S_IFREG;
	}
	a->st_nlink = 1;
	a->st_uid = st->uid;
	a->st_gid = st->gid;
	a->st_size = st->size;
	a->st_blksize = 4096;
	a->st_blocks = (st->size + 511) / 512;
	a->st_mtim.tv_sec = st->mtime_ns / 1000000000;
	a->st_mtim.tv_nsec = st->mtime_ns % 1000000000;
	a->st_ctim.tv_sec = st->ctime_ns / 1000000000;
	a->st_ctim.tv_nsec = st->ctime_ns % 1000000000;
	a->st_atim = a->st_mtim;
}

/* store_stat with a stand-in for a root the store does not list. */
static int stat_path(struct fs *fs, struct store_txn *t, const char *path,
		     struct store_stat *st)
{
	int err = store_stat(fs->store, t, path, st);

	if (err == -ENOENT && path[0] == '/' && path[1] == '\0') {
		memset(st, 0, sizeof(*st));
		st->type = STORE_DIR;
		st->mode = S_IFDIR | 0755;
		return 0;
	}
	return err;
}

/* Reply an entry for `path` (stat'ed in st), taking one kernel ref. */
static void reply_entry(struct fs *fs, fuse_req_t req, const char *path,
			const struct store_stat *st)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = fs_itab_ref(&fs->itab, path, 1);
	if (!e.ino) {
		reply_err(fs, req, ENOMEM);
		return;
	}
	e.generation = fs->itab.generation;
	fill_attr(e.ino, st, &e.attr);
	e.entry_timeout = cache_timeout(st);
	e.attr_timeout = attr_timeout(fs, e.ino, st);
	if (fuse_reply_entry(req, &e) != 0)
		fs_itab_forget(&fs->itab, e.ino, 1);
}

static void ctl_entry(struct fs *fs, fuse_req_t req, uint64_t ino)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = ino;
	e.generation = fs->itab.generation;
	fs_ctl_getattr(fs, ino, &e.attr);
	e.attr_timeout = e.entry_timeout = 1.0;
	fuse_reply_entry(req, &e);
}

/* ---- lifecycle ---- */

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	if (conn->capable & FUSE_CAP_FLOCK_LOCKS)
		conn->want |= FUSE_CAP_FLOCK_LOCKS;
	if (conn->capable & FUSE_CAP_POSIX_LOCKS)
		conn->want |= FUSE_CAP_POSIX_LOCKS;
	conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_AUTO_INVAL_DATA);
	conn->time_gran = 1;
	if (!(conn->capable & FUSE_CAP_ATOMIC_O_TRUNC))
		log_msg(LOG_ERROR, "kernel lacks atomic O_TRUNC: "
			"`echo v > f` would not be atomic");
}

/* ---- lookup, attributes ---- */

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	char path[FS_PATH_MAX];
	struct store_stat st;
	int err;

	fs_count(fs, FS_OP_LOOKUP);
	if (parent == FS_INO_CTL_DIR) {
		uint64_t ino = fs_ctl_lookup(name);

		if (ino)
			ctl_entry(fs, req, ino);
		else
			reply_err(fs, req, ENOENT);
		return;
	}
	if (is_ctl_name(parent, name)) {
		ctl_entry(fs, req, FS_INO_CTL_DIR);
		return;
	}
	ns_rd(fs);
	err = child_path(fs, parent, name, path);
	if (!err)
		err = store_stat(fs->store, NULL, path, &st);
	if (err)
		reply_err(fs, req, err);
	else
		reply_entry(fs, req, path, &st);
	ns_unlock(fs);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct fs *fs = fs_of(req);

	fs_count(fs, FS_OP_FORGET);
	fs_itab_forget(&fs->itab, ino, nlookup);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	struct fs *fs = fs_of(req);
	size_t i;

	fs_count(fs, FS_OP_FORGET);
	for (i = 0; i < count; i++)
		fs_itab_forget(&fs->itab, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/* Attributes of an inode whose record is gone while files of it are
 * open: the snapshot its delete kept, else those it had at the open of
 * the file (fi, or any open file of the node). -ENOENT if none. */
static int gone_stat(struct fs *fs, uint64_t ino, struct fuse_file_info *fi,
		     struct store_stat *st)
{
	struct fs_node *n;
	int err;

	if (fs_itab_gone_stat(&fs->itab, ino, st) == 0)
		return 0;
	if (fi && fi->fh) {
		struct fs_file *f = (struct fs_file *)(uintptr_t)fi->fh;

		if (!f->is_virtual) {
			*st = f->open_st;
			return 0;
		}
	}
	err = -ENOENT;
	pthread_mutex_lock(&fs->itab.lock);
	n = fs_itab_node_locked(&fs->itab, ino);
	if (n && n->files) {
		*st = n->files->open_st; /* fixed at open */
		err = 0;
	}
	pthread_mutex_unlock(&fs->itab.lock);
	return err;
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	char path[FS_PATH_MAX];
	struct store_stat st;
	struct stat a;
	int err;

	fs_count(fs, FS_OP_GETATTR);
	if (fs_ino_is_ctl(ino)) {
		fs_ctl_getattr(fs, ino, &a);
		fuse_reply_attr(req, &a, 1.0);
		return;
	}
	ns_rd(fs);
	err = fs_itab_path(&fs->itab, ino, path);
	if (!err)
		err = stat_path(fs, NULL, path, &st);
	ns_unlock(fs);
	if (err == -ENOENT && gone_stat(fs, ino, fi, &st) == 0) {
		/* open but deleted: fstat works, as on tmpfs */
		fill_attr(ino, &st, &a);
		a.st_nlink = 0;
		fuse_reply_attr(req, &a, 0);
		return;
	}
	if (err) {
		reply_err(fs, req, err);
		return;
	}
	fill_attr(ino, &st, &a);
	if (fi && fi->fh) {
		struct fs_file *f = (struct fs_file *)(uintptr_t)fi->fh;

		pthread_mutex_lock(&f->lock);
		if (f->dirty) {
			a.st_size = f->len;
			a.st_blocks = (f->len + 511) / 512;
		}
		pthread_mutex_unlock(&f->lock);
	}
	fuse_reply_attr(req, &a, attr_timeout(fs, ino, &st));
}

/* ---- open files: buffer helpers ---- */

static int buf_reserve(struct fs_file *f, size_t want)
{
	size_t cap;
	char *nb;

	if (want <= f->cap)
		return 0;
	cap = f->cap ? f->cap : 64;
	while (cap < want)
		cap *= 2;
	nb = realloc(f->buf, cap);
	if (!nb)
		return -ENOMEM;
	f->buf = nb;
	f->cap = cap;
	return 0;
}

/* Under f->lock: make f->buf hold the whole current value. */
static int file_load(struct fs *fs, struct fs_file *f)
{
	char path[FS_PATH_MAX];
	void *val = NULL;
	size_t len = 0;
	int err;

	if (f->loaded)
		return 0;
	ns_rd(fs);
	err = fs_itab_path(&fs->itab, f->node->ino, path);
	if (!err)
		err = store_get(fs->store, NULL, path, NULL, &val, &len);
	ns_unlock(fs);
	if (err == -ENOENT)
		err = fs_itab_gone_copy(&fs->itab, f->node->ino, &val, &len);
	if (err == -ENOENT) {
		/* deleted underneath, nothing kept: start from empty */
		err = 0;
		len = 0;
	}
	if (err)
		return err;
	free(f->buf);
	f->buf = val;
	f->cap = val ? len : 0;
	f->len = len;
	if (!val)
		f->cap = 0;
	f->loaded = 1;
	return 0;
}

/* Under f->lock: publish the buffer with one store_put. */
static int file_publish(struct fs *fs, fuse_req_t req, struct fs_file *f)
{
	char path[FS_PATH_MAX];
	struct store_txn *t = NULL;
	struct store_attr a;
	struct store_stat st;
	int err;

	if (!f->dirty)
		return 0;
	ns_rd(fs); /* until the commit: a rename must not move the path */
	err = fs_itab_path(&fs->itab, f->node->ino, path);
	if (err) {
		/* unlinked or replaced while open: nothing to publish to */
		ns_unlock(fs);
		f->dirty = 0;
		return 0;
	}
	memset(&a, 0, sizeof(a));
	a.mode = 0644;
	if (req) {
		const struct fuse_ctx *ctx = fuse_req_ctx(req);

		a.uid = ctx->uid;
		a.gid = ctx->gid;
		a.mode &= ~ctx->umask;
	}
	fs_count(fs, FS_OP_PUBLISH);
	/* Mode and owner only for a record that is created here: store_put
	 * also applies them to an existing one (store.c), which reset the
	 * mode sed -i had set with fchmod on its temporary file. */
	err = store_txn_begin(fs->store, 1, &t);
	if (!err) {
		unsigned mask = 0;

		if (store_stat(fs->store, t, path, &st) == -ENOENT)
			mask = STORE_ATTR_MODE | STORE_ATTR_UID |
			       STORE_ATTR_GID;
		err = store_put(fs->store, t, path, f->buf ? f->buf : "",
				f->len, &a, mask, STORE_CREATE);
		a.mtime_ns = atomic_exchange(&f->set_mtime_ns, FS_NO_MTIME);
		if (!err && a.mtime_ns != FS_NO_MTIME) {
			/* tar and cp -a set the mtime with futimens before
			 * close: it must survive the publish (which sets now) */
			err = store_setattr(fs->store, t, path, &a,
					    STORE_ATTR_MTIME);
		}
		if (err)
			store_txn_abort(&t);
		else
			err = store_txn_commit(&t);
	}
	ns_unlock(fs);
	/* Either way this buffer is done: a failed publish was reported to
	 * the closer and must not land later by surprise. */
	f->dirty = 0;
	f->defer_empty = 0;
	pthread_mutex_lock(&fs->itab.lock);
	f->node->cache_valid = 0;
	pthread_mutex_unlock(&fs->itab.lock);
	if (err)
		log_msg(LOG_INFO, "publish %s: %s", path, strerror(-err));
	return err;
}

static struct fs_file *file_new(struct fs_node *node)
{
	struct fs_file *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	pthread_mutex_init(&f->lock, NULL);
	f->node = node;
	atomic_init(&f->set_mtime_ns, FS_NO_MTIME);
	return f;
}

static void file_free(struct fs *fs, struct fs_file *f)
{
	struct fuse_pollhandle *ph;

	/* Wait for a handler still inside f->lock: fs_read replies from
	 * f->buf under the lock, and the reader may close (RELEASE, here,
	 * on another thread) as soon as the kernel has the reply, before
	 * that handler's unlock. Freeing f under it corrupted the heap
	 * (the unlock wrote into the freed block). After its unlock no
	 * handler touches f again. */
	pthread_mutex_lock(&f->lock);
	pthread_mutex_unlock(&f->lock);
	if (f->node)
		fs_itab_file_detach(&fs->itab, f->node, f);
	ph = atomic_exchange(&f->ph, NULL);
	if (ph)
		fuse_pollhandle_destroy(ph);
	pthread_mutex_destroy(&f->lock);
	free(f->buf);
	free(f);
}

/* Set up an open file of regular-file node `ino` stat'ed in st. */
static int file_open(struct fs *fs, uint64_t ino, const struct store_stat *st,
		     struct fuse_file_info *fi, struct fs_file **fp)
{
	struct fs_node *node = fs_itab_node(&fs->itab, ino);
	int acc = fi->flags & O_ACCMODE;
	struct fs_file *f;
	int64_t now;

	if (!node)
		return -ESTALE;
	if (st->type == STORE_DIR)
		return -EISDIR;
	f = file_new(node);
	if (!f)
		return -ENOMEM;
	f->open_st = *st;
	f->writable = acc == O_WRONLY || acc == O_RDWR;
	f->append = !!(fi->flags & O_APPEND);
	if (f->writable && (fi->flags & O_TRUNC)) {
		f->truncating = 1;
		f->loaded = 1;
		if (st->size) {
			f->dirty = 1;
			f->defer_empty = 1;
		}
	}
	f->counted_writer = f->writable;
	now = store_now_ns();
	pthread_mutex_lock(&fs->itab.lock);
	if (f->writable) {
		node->write_open_ns = now;
	} else if (node->writers ||
		   now - node->write_open_ns < FS_WRITER_QUIET_NS) {
		/* A writer is or was just at work: the kernel zeroes its
		 * i_size at an O_TRUNC open, and a page-cache read would
		 * trust it and return nothing. Read through us. */
		fi->direct_io = 1;
		node->cache_valid = 0;
	} else if (node->cache_valid &&
		   node->cache_ver.hlc == st->version.hlc &&
		   node->cache_ver.node == st->version.node) {
		fi->keep_cache = 1;
	} else {
		node->cache_ver = st->version;
		node->cache_valid = 1;
	}
	pthread_mutex_unlock(&fs->itab.lock);
	fs_itab_file_attach(&fs->itab, node, f);
	fi->fh = (uintptr_t)f;
	*fp = f;
	return 0;
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	char path[FS_PATH_MAX];
	struct store_stat st;
	struct fs_file *f;
	int err;

	fs_count(fs, FS_OP_OPEN);
	if (fs_ino_is_ctl(ino)) {
		if ((fi->flags & O_ACCMODE) != O_RDONLY) {
			reply_err(fs, req, EPERM);
			return;
		}
		f = file_new(NULL);
		if (!f) {
			reply_err(fs, req, ENOMEM);
			return;
		}
		f->is_virtual = 1;
		err = fs_ctl_fill(fs, ino, f);
		if (err) {
			file_free(fs, f);
			reply_err(fs, req, err);
			return;
		}
		fi->fh = (uintptr_t)f;
		fi->direct_io = 1;
		if (fuse_reply_open(req, fi) != 0)
			file_free(fs, f);
		return;
	}
	ns_rd(fs);
	err = fs_itab_path(&fs->itab, ino, path);
	if (!err)
		err = store_stat(fs->store, NULL, path, &st);
	if (!err)
		err = file_open(fs, ino, &st, fi, &f);
	ns_unlock(fs);
	if (err) {
		reply_err(fs, req, err);
		return;
	}
	if (fuse_reply_open(req, fi) != 0)
		file_free(fs, f);
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fuse_entry_param e;
	char path[FS_PATH_MAX];
	struct store_attr a;
	struct store_stat st;
	struct fs_file *f;
	int err;

	fs_count(fs, FS_OP_CREATE);
	ns_rd(fs);
	err = child_path(fs, parent, name, path);
	if (err)
		goto out;
	memset(&a, 0, sizeof(a));
	a.mode = mode & ~ctx->umask & 07777;
	a.uid = ctx->uid;
	a.gid = ctx->gid;
	err = store_mknod(fs->store, NULL, path, STORE_FILE, NULL, &a,
			  STORE_ATTR_MODE | STORE_ATTR_UID | STORE_ATTR_GID, 0);
	if (err == -EEXIST && !(fi->flags & O_EXCL))
		err = 0; /* raced with another creator: open theirs */
	if (err)
		goto out;
	err = store_stat(fs->store, NULL, path, &st);
	if (err)
		goto out;
	memset(&e, 0, sizeof(e));
	e.ino = fs_itab_ref(&fs->itab, path, 1);
	if (!e.ino) {
		err = -ENOMEM;
		goto out;
	}
	err = file_open(fs, e.ino, &st, fi, &f);
	if (err) {
		fs_itab_forget(&fs->itab, e.ino, 1);
		goto out;
	}
	ns_unlock(fs);
	e.generation = fs->itab.generation;
	fill_attr(e.ino, &st, &e.attr);
	e.entry_timeout = cache_timeout(&st);
	e.attr_timeout = attr_timeout(fs, e.ino, &st);
	if (fuse_reply_create(req, &e, fi) != 0) {
		file_free(fs, f);
		fs_itab_forget(&fs->itab, e.ino, 1);
	}
	return;
out:
	ns_unlock(fs);
	reply_err(fs, req, err);
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_file *f = (struct fs_file *)(uintptr_t)fi->fh;
	char path[FS_PATH_MAX];
	ssize_t n;
	char *rb;
	int err;

	fs_count(fs, FS_OP_READ);
	pthread_mutex_lock(&f->lock);
	if (!f->loaded && f->served_whole && (uint64_t)off >= f->served_len) {
		/* the EOF of the value this handle already returned whole,
		 * not the tail of a newer one (cat reads until 0) */
		pthread_mutex_unlock(&f->lock);
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (!f->loaded) {
		rb = rbuf_get(size);
		if (!rb) {
			err = -ENOMEM;
			goto fail;
		}
		ns_rd(fs);
		err = fs_itab_path(&fs->itab, ino, path);
		n = err ? err : store_read(fs->store, NULL, path, off, rb, size);
		ns_unlock(fs);
		if (n == -ENOENT) {
			/* deleted while open: what its delete kept, else EOF */
			n = fs_itab_gone_read(&fs->itab, ino, off, rb, size);
			if (n == -ENOENT)
				n = 0;
		}
		if (n < 0) {
			err = (int)n;
			goto fail;
		}
		if (off == 0 && (size_t)n < size) {
			/* the whole value in one reply: no snapshot needed */
			f->served_whole = 1;
			f->served_len = (size_t)n;
			pthread_mutex_unlock(&f->lock);
			atomic_fetch_add_explicit(&fs->stats.bytes_read, n,
						  memory_order_relaxed);
			fuse_reply_buf(req, rb, n);
			return;
		}
		/* larger than one request: serve every read from one
		 * snapshot of the whole value */
		err = file_load(fs, f);
		if (err)
			goto fail;
	}
	if ((uint64_t)off >= f->len) {
		n = 0;
	} else {
		n = f->len - off;
		if ((size_t)n > size)
			n = size;
	}
	atomic_fetch_add_explicit(&fs->stats.bytes_read, n,
				  memory_order_relaxed);
	/* under f->lock: the reply copies from f->buf (see file_free) */
	fuse_reply_buf(req, n ? f->buf + off : NULL, n);
	pthread_mutex_unlock(&f->lock);
	return;
fail:
	pthread_mutex_unlock(&f->lock);
	reply_err(fs, req, err);
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_file *f = (struct fs_file *)(uintptr_t)fi->fh;
	int err;

	(void)ino;
	fs_count(fs, FS_OP_WRITE);
	if (f->is_virtual) {
		reply_err(fs, req, EPERM);
		return;
	}
	pthread_mutex_lock(&f->lock);
	err = f->write_err;
	if (err)
		goto fail;
	err = file_load(fs, f);
	if (err)
		goto fail;
	if (f->append)
		off = f->len;
	if (off < 0 || (uint64_t)off + size > fs->max_value) {
		err = -EFBIG;
		goto fail;
	}
	err = buf_reserve(f, off + size);
	if (err)
		goto fail;
	if ((size_t)off > f->len)
		memset(f->buf + f->len, 0, off - f->len);
	memcpy(f->buf + off, buf, size);
	if ((size_t)off + size > f->len)
		f->len = off + size;
	f->dirty = 1;
	f->defer_empty = 0;
	atomic_store(&f->set_mtime_ns, FS_NO_MTIME);
	pthread_mutex_unlock(&f->lock);
	atomic_fetch_add_explicit(&fs->stats.bytes_written, size,
				  memory_order_relaxed);
	fuse_reply_write(req, size);
	return;
fail:
	/* the value this writer meant is now incomplete: never publish it */
	f->write_err = err;
	f->dirty = 0;
	f->defer_empty = 0;
	pthread_mutex_unlock(&f->lock);
	reply_err(fs, req, err);
}

/* Publish what f holds, if anything is due: at flush, at a lock release
 * and before a lock is given away (see lock_release). */
static int file_flush(struct fs *fs, fuse_req_t req, struct fs_file *f)
{
	int err = 0;

	pthread_mutex_lock(&f->lock);
	if (f->write_err)
		err = f->write_err;
	else if (f->dirty && !f->defer_empty)
		err = file_publish(fs, req, f);
	pthread_mutex_unlock(&f->lock);
	return err;
}

/* Drop the locks this close gives up. The data is published first, so
 * the next holder of the lock reads what this one wrote. Nodes that
 * never had a lock skip the manager. flock locks belong to our handle
 * (fi->fh: unique until this release, unlike the kernel's lock_owner,
 * which is a pointer that a new open may reuse before our release). */
static void lock_release(struct fs *fs, fuse_ino_t ino,
			 struct fuse_file_info *fi, int on_flush)
{
	char path[FS_PATH_MAX];
	struct fuse_file_info own = *fi;

	if (fs_itab_lock_path(&fs->itab, ino, path, 0) < 0)
		return;
	if (!on_flush) {
		own.lock_owner = fi->fh;
		own.flock_release = 1;
	}
	lockops_release(fs->locks, path, &own, on_flush);
}

static void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_file *f = (struct fs_file *)(uintptr_t)fi->fh;
	int err;

	fs_count(fs, FS_OP_FLUSH);
	if (f->is_virtual) {
		fuse_reply_err(req, 0);
		return;
	}
	err = file_flush(fs, req, f);
	lock_release(fs, ino, fi, 1);
	if (err)
		reply_err(fs, req, err);
	else
		fuse_reply_err(req, 0);
}

static void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_file *f = (struct fs_file *)(uintptr_t)fi->fh;
	int err = 0;

	(void)ino;
	(void)datasync;
	fs_count(fs, FS_OP_FSYNC);
	if (!f->is_virtual) {
		pthread_mutex_lock(&f->lock);
		err = f->write_err ? f->write_err : file_publish(fs, req, f);
		pthread_mutex_unlock(&f->lock);
	}
	if (err)
		reply_err(fs, req, err);
	else
		fuse_reply_err(req, 0);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_file *f = (struct fs_file *)(uintptr_t)fi->fh;

	fs_count(fs, FS_OP_RELEASE);
	if (!f->is_virtual) {
		pthread_mutex_lock(&f->lock);
		if (f->dirty && file_publish(fs, NULL, f) < 0)
			log_msg(LOG_WARNING, "value of inode %llu lost at "
				"release", (unsigned long long)ino);
		pthread_mutex_unlock(&f->lock);
		lock_release(fs, ino, fi, 0);
	}
	file_free(fs, f);
	fuse_reply_err(req, 0);
}

static void fs_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph)
{
	struct fs *fs = fs_of(req);
	struct fs_file *f = (struct fs_file *)(uintptr_t)fi->fh;
	unsigned revents = 0;

	(void)ino;
	fs_count(fs, FS_OP_POLL);
	if (ph) {
		struct fuse_pollhandle *old = atomic_exchange(&f->ph, ph);

		if (old)
			fuse_pollhandle_destroy(old);
	}
	if (atomic_exchange(&f->changed, 0))
		revents = POLLIN | POLLRDNORM | POLLPRI;
	fuse_reply_poll(req, revents);
}

/* ---- setattr ---- */

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_file *f = fi ? (struct fs_file *)(uintptr_t)fi->fh : NULL;
	char path[FS_PATH_MAX];
	struct store_txn *t = NULL;
	struct store_stat st;
	struct store_attr a;
	unsigned mask = 0;
	struct stat out;
	int err, buffered = 0;
	size_t blen = 0;

	fs_count(fs, FS_OP_SETATTR);
	if (fs_ino_is_ctl(ino)) {
		reply_err(fs, req, EPERM);
		return;
	}
	memset(&a, 0, sizeof(a));
	if (to_set & FUSE_SET_ATTR_MODE) {
		a.mode = attr->st_mode & 07777;
		mask |= STORE_ATTR_MODE;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		a.uid = attr->st_uid;
		mask |= STORE_ATTR_UID;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		a.gid = attr->st_gid;
		mask |= STORE_ATTR_GID;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		a.mtime_ns = store_now_ns();
		mask |= STORE_ATTR_MTIME;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		a.mtime_ns = (int64_t)attr->st_mtim.tv_sec * 1000000000 +
			     attr->st_mtim.tv_nsec;
		mask |= STORE_ATTR_MTIME;
	}
	if ((to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) &&
	    !(mask & STORE_ATTR_MTIME))
		mask |= STORE_ATTR_TOUCH; /* atime is not kept; a touch */
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if ((uint64_t)attr->st_size > fs->max_value) {
			err = -EFBIG;
			goto out;
		}
		if (f && f->writable && !f->is_virtual) {
			/* ftruncate on a file open for writing: the buffer */
			size_t sz = attr->st_size;

			pthread_mutex_lock(&f->lock);
			err = f->write_err;
			if (!err && sz)
				err = file_load(fs, f);
			if (!err)
				err = buf_reserve(f, sz);
			if (!err) {
				if (!f->loaded)
					f->len = 0;
				f->loaded = 1;
				if (sz > f->len)
					memset(f->buf + f->len, 0, sz - f->len);
				f->len = sz;
				f->dirty = 1;
				f->defer_empty = 0;
			}
			blen = f->len;
			pthread_mutex_unlock(&f->lock);
			if (err)
				goto out;
			buffered = 1;
		} else {
			a.size = attr->st_size;
			mask |= STORE_ATTR_SIZE;
		}
	}
	if (mask & STORE_ATTR_MTIME) {
		/* futimens comes without its handle: every writer of the
		 * file applies it when it publishes */
		struct fs_node *n;
		struct fs_file *w;

		pthread_mutex_lock(&fs->itab.lock);
		n = fs_itab_node_locked(&fs->itab, ino);
		for (w = n ? n->files : NULL; w; w = w->next)
			if (w->writable)
				atomic_store(&w->set_mtime_ns, a.mtime_ns);
		pthread_mutex_unlock(&fs->itab.lock);
	}
	ns_rd(fs);
	err = fs_itab_path(&fs->itab, ino, path);
	if (err) {
		ns_unlock(fs);
		goto out;
	}
	if (mask) {
		err = store_txn_begin(fs->store, 1, &t);
		if (!err)
			err = store_setattr(fs->store, t, path, &a, mask);
		if (!err)
			err = stat_path(fs, t, path, &st);
		if (err) {
			store_txn_abort(&t);
			ns_unlock(fs);
			goto out;
		}
		err = store_txn_commit(&t);
		if (!err && (mask & STORE_ATTR_SIZE)) {
			struct fs_node *n;

			pthread_mutex_lock(&fs->itab.lock);
			n = fs_itab_node_locked(&fs->itab, ino);
			if (n)
				n->cache_valid = 0;
			pthread_mutex_unlock(&fs->itab.lock);
		}
	} else {
		err = stat_path(fs, NULL, path, &st);
	}
	ns_unlock(fs);
	if (err)
		goto out;
	fill_attr(ino, &st, &out);
	if (buffered) {
		out.st_size = blen;
		out.st_blocks = (blen + 511) / 512;
	}
	fuse_reply_attr(req, &out, attr_timeout(fs, ino, &st));
	return;
out:
	reply_err(fs, req, err);
}

/* ---- namespace operations ---- */

static void make_node(fuse_req_t req, fuse_ino_t parent, const char *name,
		      enum store_type type, mode_t mode, const char *target)
{
	struct fs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	char path[FS_PATH_MAX];
	struct store_stat st;
	struct store_attr a;
	struct store_txn *t = NULL;
	int err;

	ns_rd(fs);
	err = child_path(fs, parent, name, path);
	if (err)
		goto out;
	memset(&a, 0, sizeof(a));
	a.mode = type == STORE_SYMLINK ? 0777 : (mode & ~ctx->umask & 07777);
	a.uid = ctx->uid;
	a.gid = ctx->gid;
	err = store_txn_begin(fs->store, 1, &t);
	if (!err)
		err = store_mknod(fs->store, t, path, type, target, &a,
				  STORE_ATTR_MODE | STORE_ATTR_UID |
					  STORE_ATTR_GID, 0);
	if (!err)
		err = store_stat(fs->store, t, path, &st);
	if (err) {
		store_txn_abort(&t);
		goto out;
	}
	err = store_txn_commit(&t);
	if (err)
		goto out;
	reply_entry(fs, req, path, &st);
	ns_unlock(fs);
	return;
out:
	ns_unlock(fs);
	reply_err(fs, req, err);
}

static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	(void)rdev;
	fs_count(fs_of(req), FS_OP_MKNOD);
	if (!S_ISREG(mode)) {
		reply_err(fs_of(req), req, EPERM);
		return;
	}
	make_node(req, parent, name, STORE_FILE, mode, NULL);
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	fs_count(fs_of(req), FS_OP_MKDIR);
	make_node(req, parent, name, STORE_DIR, mode, NULL);
}

static void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	fs_count(fs_of(req), FS_OP_SYMLINK);
	make_node(req, parent, name, STORE_SYMLINK, 0777, link);
}

static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	fs_count(fs_of(req), FS_OP_LINK);
	reply_err(fs_of(req), req, EPERM);
}

static void fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	char path[FS_PATH_MAX];
	char target[FS_PATH_MAX + 1];
	ssize_t n;
	int err;

	fs_count(fs, FS_OP_READLINK);
	ns_rd(fs);
	err = fs_itab_path(&fs->itab, ino, path);
	n = err ? err : store_read(fs->store, NULL, path, 0, target,
				   FS_PATH_MAX);
	ns_unlock(fs);
	if (n < 0) {
		reply_err(fs, req, (int)n);
		return;
	}
	target[n] = '\0';
	fuse_reply_readlink(req, target);
}

/* Before `path` is deleted in transaction t: if keep (its node has
 * open files) and it is a file, copy the record to *st, *valp, *lenp
 * for those files (see the top comment). */
static int del_keep(struct fs *fs, struct store_txn *t, const char *path,
		    int keep, struct store_stat *st, void **valp,
		    size_t *lenp)
{
	int err;

	*valp = NULL;
	*lenp = 0;
	if (!keep)
		return 0;
	err = store_stat(fs->store, t, path, st);
	if (!err && st->type != STORE_FILE)
		return 0;
	if (!err)
		err = store_get(fs->store, t, path, NULL, valp, lenp);
	return err == -ENOENT ? 0 : err;
}

static void remove_node(fuse_req_t req, fuse_ino_t parent, const char *name,
			unsigned flags)
{
	struct fs *fs = fs_of(req);
	char path[FS_PATH_MAX];
	struct store_txn *t = NULL;
	struct store_stat st;
	void *val = NULL;
	size_t len = 0, plen;
	int err;

	ns_rd(fs);
	err = child_path(fs, parent, name, path);
	if (err)
		goto out;
	plen = strlen(path);
	err = store_txn_begin(fs->store, 1, &t);
	if (!err)
		err = del_keep(fs, t, path, (flags & STORE_DEL_FILE) &&
				fs_itab_has_files(&fs->itab, path, plen),
			       &st, &val, &len);
	if (!err)
		err = store_del(fs->store, t, path, flags);
	if (err)
		store_txn_abort(&t);
	else
		err = store_txn_commit(&t);
	if (err) {
		free(val);
		goto out;
	}
	if (val)
		fs_itab_kill_keep(&fs->itab, path, plen, &st, val, len);
	else
		fs_itab_kill(&fs->itab, path, plen);
out:
	ns_unlock(fs);
	if (err)
		reply_err(fs, req, err);
	else
		fuse_reply_err(req, 0);
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs_count(fs_of(req), FS_OP_UNLINK);
	remove_node(req, parent, name, STORE_DEL_FILE);
}

static void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs_count(fs_of(req), FS_OP_RMDIR);
	remove_node(req, parent, name, STORE_DEL_DIR);
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct fs *fs = fs_of(req);
	char from[FS_PATH_MAX], to[FS_PATH_MAX];
	struct store_txn *t = NULL;
	struct store_stat st, tst;
	unsigned sflags = 0;
	void *val = NULL;
	size_t len = 0;
	int err;

	fs_count(fs, FS_OP_RENAME);
	if (flags & ~RENAME_NOREPLACE) {
		reply_err(fs, req, EINVAL); /* RENAME_EXCHANGE, _WHITEOUT */
		return;
	}
	if (flags & RENAME_NOREPLACE)
		sflags |= STORE_RENAME_NOREPLACE;
	/* Exclusive from the paths to the table update: see the top
	 * comment ("Locks"). */
	ns_wr(fs);
	err = child_path(fs, parent, name, from);
	if (!err)
		err = child_path(fs, newparent, newname, to);
	if (!err)
		err = store_txn_begin(fs->store, 1, &t);
	if (!err)
		err = store_stat(fs->store, t, from, &st);
	if (!err && st.type != STORE_DIR && strcmp(from, to) != 0)
		err = del_keep(fs, t, to, fs_itab_has_files(&fs->itab, to,
							    strlen(to)),
			       &tst, &val, &len);
	if (!err)
		err = store_rename(fs->store, t, from, to, sflags);
	if (err)
		store_txn_abort(&t);
	else
		err = store_txn_commit(&t);
	if (err) {
		free(val);
	} else {
		if (val)
			fs_itab_kill_keep(&fs->itab, to, strlen(to), &tst, val,
					  len);
		fs_itab_rename(&fs->itab, from, to, st.type == STORE_DIR);
	}
	ns_unlock(fs);
	if (err)
		reply_err(fs, req, err);
	else
		fuse_reply_err(req, 0);
}

/* ---- directories ---- */

/* A directory handle: where the last readdir stopped, so the next one
 * resumes with store_list(after = last) instead of skipping. Offsets
 * are entry indexes + 1: ".", "..", [".statefs" in the root], then the
 * store's children in name order. */
struct fs_dir {
	pthread_mutex_t lock;
	off_t last_off;            /* offset following `last` */
	char last[STORE_NAME_MAX + 1];
};

static void fs_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	char path[FS_PATH_MAX];
	struct store_stat st;
	struct fs_dir *d;
	int err = 0;

	fs_count(fs, FS_OP_OPENDIR);
	if (ino != FS_INO_CTL_DIR) {
		err = fs_itab_path(&fs->itab, ino, path);
		if (!err)
			err = stat_path(fs, NULL, path, &st);
		if (!err && st.type != STORE_DIR)
			err = -ENOTDIR;
		if (err) {
			reply_err(fs, req, err);
			return;
		}
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		reply_err(fs, req, ENOMEM);
		return;
	}
	pthread_mutex_init(&d->lock, NULL);
	fi->fh = (uintptr_t)d;
	if (fuse_reply_open(req, fi) != 0) {
		pthread_mutex_destroy(&d->lock);
		free(d);
	}
}

struct rd_ctx {
	struct fs *fs;
	fuse_req_t req;
	struct fs_dir *d;
	char *buf;
	size_t size, pos;
	off_t next;                /* offset of the entry being added */
	off_t skip;                /* entries to skip first (seekdir) */
	int plus;
	int full;
	int root;
	const char *dir;           /* directory path */
	size_t dir_len;
	uint64_t *refs;            /* inos referenced by this reply (plus) */
	size_t nrefs, cap_refs;
};

static int rd_add(void *arg, const char *name, size_t name_len,
		  const struct store_stat *st)
{
	struct rd_ctx *c = arg;
	char nm[STORE_NAME_MAX + 1];
	char path[FS_PATH_MAX];
	struct fuse_entry_param e;
	size_t sz;

	if (name_len > STORE_NAME_MAX)
		return 0;
	memcpy(nm, name, name_len);
	nm[name_len] = '\0';
	if (c->root && strcmp(nm, FS_CTL_NAME) == 0)
		return 0; /* never a store key; listed as the virtual dir */
	if (c->skip > 0) {
		c->skip--;
		return 0;
	}
	memset(&e, 0, sizeof(e));
	fill_attr(0, st, &e.attr);
	if (c->plus)
		sz = fuse_add_direntry_plus(c->req, NULL, 0, nm, &e, 0);
	else
		sz = fuse_add_direntry(c->req, NULL, 0, nm, &e.attr, 0);
	if (c->pos + sz > c->size) {
		c->full = 1;
		return 1;
	}
	if (c->dir_len + 1 + name_len + 1 > sizeof(path))
		return 0;
	memcpy(path, c->dir, c->dir_len);
	sz = c->dir_len;
	if (sz > 1)
		path[sz++] = '/';
	memcpy(path + sz, nm, name_len + 1);
	if (c->plus) {
		if (c->nrefs == c->cap_refs) {
			size_t nc = c->cap_refs ? c->cap_refs * 2 : 64;
			uint64_t *r = realloc(c->refs, nc * sizeof(*r));

			if (!r) {
				c->full = 1;
				return 1;
			}
			c->refs = r;
			c->cap_refs = nc;
		}
		e.ino = fs_itab_ref(&c->fs->itab, path, 1);
		if (!e.ino) {
			c->full = 1;
			return 1;
		}
		c->refs[c->nrefs++] = e.ino;
		e.generation = c->fs->itab.generation;
		e.attr.st_ino = e.ino;
		e.entry_timeout = cache_timeout(st);
		e.attr_timeout = attr_timeout(c->fs, e.ino, st);
		c->pos += fuse_add_direntry_plus(c->req, c->buf + c->pos,
						 c->size - c->pos, nm, &e,
						 c->next + 1);
	} else {
		uint64_t ino = fs_itab_find(&c->fs->itab, path, strlen(path));

		e.attr.st_ino = ino ? ino : (1ULL << 63) | c->next;
		c->pos += fuse_add_direntry(c->req, c->buf + c->pos,
					    c->size - c->pos, nm, &e.attr,
					    c->next + 1);
	}
	c->next++;
	memcpy(c->d->last, nm, name_len + 1);
	c->d->last_off = c->next;
	return 0;
}

/* Add a fixed entry (".", "..", ".statefs"); 0 or 1 when full. */
static int rd_fixed(struct rd_ctx *c, const char *name, uint64_t ino,
		    mode_t mode)
{
	struct fuse_entry_param e;
	size_t sz;

	memset(&e, 0, sizeof(e));
	e.attr.st_ino = ino;
	e.attr.st_mode = mode;
	if (c->plus) {
		/* ino 0: no dentry, no lookup reference taken */
		sz = fuse_add_direntry_plus(c->req, c->buf + c->pos,
					    c->size - c->pos, name, &e,
					    c->next + 1);
	} else {
		sz = fuse_add_direntry(c->req, c->buf + c->pos,
				       c->size - c->pos, name, &e.attr,
				       c->next + 1);
	}
	if (c->pos + sz > c->size)
		return 1;
	c->pos += sz;
	c->next++;
	return 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, int plus)
{
	struct fs *fs = fs_of(req);
	struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;
	char path[FS_PATH_MAX];
	struct rd_ctx c;
	const char *after = NULL;
	off_t nfixed;
	int err = 0;

	fs_count(fs, FS_OP_READDIR);
	memset(&c, 0, sizeof(c));
	c.buf = rbuf_get(size);
	if (!c.buf) {
		reply_err(fs, req, ENOMEM);
		return;
	}
	if (ino == FS_INO_CTL_DIR) {
		c.pos = fs_ctl_readdir(req, c.buf, size, off, plus);
		fuse_reply_buf(req, c.buf, c.pos);
		return;
	}
	ns_rd(fs); /* the entries' paths stay true until they are referenced */
	err = fs_itab_path(&fs->itab, ino, path);
	if (err) {
		ns_unlock(fs);
		reply_err(fs, req, err);
		return;
	}
	c.fs = fs;
	c.req = req;
	c.d = d;
	c.size = size;
	c.plus = plus;
	c.root = ino == FUSE_ROOT_ID;
	c.dir = path;
	c.dir_len = strlen(path);
	c.next = off;
	nfixed = c.root ? 3 : 2;
	pthread_mutex_lock(&d->lock);
	if (c.next == 0 && rd_fixed(&c, ".", ino, S_IFDIR))
		goto done;
	if (c.next == 1 && rd_fixed(&c, "..", FUSE_ROOT_ID, S_IFDIR))
		goto done;
	if (c.root && c.next == 2 &&
	    rd_fixed(&c, FS_CTL_NAME, FS_INO_CTL_DIR, S_IFDIR))
		goto done;
	if (c.next > nfixed && c.next == d->last_off && d->last[0])
		after = d->last;
	else if (c.next > nfixed)
		c.skip = c.next - nfixed; /* seekdir elsewhere: walk */
	err = store_list(fs->store, NULL, path, after, rd_add, &c);
	if (err > 0)
		err = 0;
done:
	pthread_mutex_unlock(&d->lock);
	ns_unlock(fs);
	if (err && c.pos == 0) {
		reply_err(fs, req, err);
	} else if (fuse_reply_buf(req, c.buf, c.pos) != 0) {
		/* the kernel never saw these entries: drop their refs */
		size_t i;

		for (i = 0; i < c.nrefs; i++)
			fs_itab_forget(&fs->itab, c.refs[i], 1);
	}
	free(c.refs);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 0);
}

static void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 1);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;

	(void)ino;
	fs_count(fs_of(req), FS_OP_RELEASEDIR);
	pthread_mutex_destroy(&d->lock);
	free(d);
	fuse_reply_err(req, 0);
}

static void fs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	struct store_info info;
	struct statvfs sv;
	int err;

	(void)ino;
	fs_count(fs, FS_OP_STATFS);
	err = store_info(fs->store, &info);
	if (err) {
		reply_err(fs, req, err);
		return;
	}
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = info.map_size / 4096;
	sv.f_bfree = info.map_used < info.map_size ?
			     (info.map_size - info.map_used) / 4096 : 0;
	sv.f_bavail = sv.f_bfree;
	sv.f_files = info.records + sv.f_bfree;
	sv.f_ffree = sv.f_bfree;
	sv.f_favail = sv.f_bfree;
	sv.f_namemax = STORE_NAME_MAX;
	fuse_reply_statfs(req, &sv);
}

/* ---- extended attributes ---- */

/* Parse a TTL: "30", "30s", "5m", "1h", "2d", "1.5" (seconds). Used for
 * user.statefs.ttl and the ttl= mount option alike. */
int fs_parse_ttl_ms(const char *s, size_t len, uint64_t *ms)
{
	char tmp[32], *end;
	double v, mul = 1000;

	if (len == 0 || len >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	while (len && (tmp[len - 1] == '\n' || tmp[len - 1] == ' '))
		tmp[--len] = '\0';
	errno = 0;
	v = strtod(tmp, &end);
	if (errno || end == tmp || v < 0)
		return -EINVAL;
	if (*end == 's')
		end++;
	else if (*end == 'm')
		mul = 60000, end++;
	else if (*end == 'h')
		mul = 3600000, end++;
	else if (*end == 'd')
		mul = 86400000, end++;
	if (*end || v * mul > 1e15)
		return -EINVAL;
	*ms = (uint64_t)(v * mul + 0.5);
	return 0;
}

static int ns_allowed(const char *name)
{
	return strncmp(name, "user.", 5) == 0;
}

static void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct fs *fs = fs_of(req);
	char path[FS_PATH_MAX];
	int err;

	fs_count(fs, FS_OP_SETXATTR);
	if (fs_ino_is_ctl(ino)) {
		err = -EPERM;
		goto out;
	}
	if (!ns_allowed(name)) {
		err = -ENOTSUP;
		goto out;
	}
	ns_rd(fs);
	err = fs_itab_path(&fs->itab, ino, path);
	if (err) {
		/* nothing */
	} else if (strcmp(name, XATTR_TTL) == 0) {
		struct store_attr a;

		memset(&a, 0, sizeof(a));
		err = fs_parse_ttl_ms(value, size, &a.ttl_ms);
		if (!err)
			err = store_setattr(fs->store, NULL, path, &a,
					    STORE_ATTR_TTL);
	} else if (strncmp(name, XATTR_RESERVED, strlen(XATTR_RESERVED)) == 0) {
		err = -EPERM;
	} else {
		err = store_xattr_set(fs->store, NULL, path, name, value, size,
				      flags);
	}
	ns_unlock(fs);
out:
	if (err)
		reply_err(fs, req, err);
	else
		fuse_reply_err(req, 0);
}

/* Reply a computed xattr value with getxattr's size protocol. */
static void reply_xattr(struct fs *fs, fuse_req_t req, const char *val,
			size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		reply_err(fs, req, ERANGE);
	else
		fuse_reply_buf(req, val, len);
}

static void do_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct fs *fs = fs_of(req);
	char path[FS_PATH_MAX];
	char val[128];
	struct store_stat st;
	ssize_t n;
	int err;

	if (!ns_allowed(name)) {
		/* security.* / system.*: quietly absent, so ls and cp -a
		 * do not complain; anything else is unsupported */
		if (strncmp(name, "security.", 9) == 0 ||
		    strncmp(name, "system.", 7) == 0)
			err = -ENODATA;
		else
			err = -ENOTSUP;
		goto out;
	}
	if (fs_ino_is_ctl(ino)) {
		err = -ENODATA;
		goto out;
	}
	err = fs_itab_path(&fs->itab, ino, path);
	if (err)
		goto out;
	if (strcmp(name, XATTR_TTL) == 0 || strcmp(name, XATTR_EXPIRES) == 0) {
		int len;

		err = store_stat(fs->store, NULL, path, &st);
		if (err)
			goto out;
		if (strcmp(name, XATTR_TTL) == 0) {
			if (!st.ttl_ms) {
				err = -ENODATA;
				goto out;
			}
			if (st.ttl_ms % 1000)
				len = snprintf(val, sizeof(val), "%" PRIu64
					       ".%03" PRIu64, st.ttl_ms / 1000,
					       st.ttl_ms % 1000);
			else
				len = snprintf(val, sizeof(val), "%" PRIu64,
					       st.ttl_ms / 1000);
		} else if (st.expires_ns) {
			len = snprintf(val, sizeof(val), "%" PRId64 ".%03" PRId64,
				       st.expires_ns / 1000000000,
				       st.expires_ns % 1000000000 / 1000000);
		} else {
			len = snprintf(val, sizeof(val), "never");
		}
		reply_xattr(fs, req, val, len, size);
		return;
	}
	if (strcmp(name, XATTR_LOCK) == 0 ||
	    strcmp(name, XATTR_LOCK_TOKEN) == 0) {
		char lbuf[160];

		/* a node that was locked keeps its identity across renames */
		fs_itab_lock_path(&fs->itab, ino, path, 0);
		n = lockops_xattr(fs->locks, path, name, lbuf, sizeof(lbuf));
		if (n >= 0 && size) {
			reply_xattr(fs, req, lbuf, n, size);
		} else if (n >= 0) {
			fuse_reply_xattr(req, n);
		}
		if (n < 0)
			reply_err(fs, req, (int)n);
		return;
	}
	if (size == 0) {
		n = store_xattr_get(fs->store, NULL, path, name, NULL, 0);
		if (n < 0)
			err = (int)n;
		else
			fuse_reply_xattr(req, n);
	} else {
		char *buf = rbuf_get(size);

		if (!buf) {
			err = -ENOMEM;
			goto out;
		}
		n = store_xattr_get(fs->store, NULL, path, name, buf, size);
		if (n < 0)
			err = (int)n;
		else
			fuse_reply_buf(req, buf, n);
	}
out:
	if (err)
		reply_err(fs, req, err);
}

static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct fs *fs = fs_of(req);

	fs_count(fs, FS_OP_GETXATTR);
	ns_rd(fs);
	do_getxattr(req, ino, name, size);
	ns_unlock(fs);
}

/* listxattr: the store's names, then user.statefs.ttl if the record
 * has a TTL. Measured and copied in ONE read transaction, so the list
 * cannot grow between the two. */
static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = fs_of(req);
	char path[FS_PATH_MAX];
	struct store_txn *t = NULL;
	struct store_stat st;
	ssize_t n = 0;
	size_t total = 0;
	char *buf = NULL;
	int err;

	fs_count(fs, FS_OP_LISTXATTR);
	if (fs_ino_is_ctl(ino)) {
		if (size == 0)
			fuse_reply_xattr(req, 0);
		else
			fuse_reply_buf(req, NULL, 0);
		return;
	}
	ns_rd(fs);
	err = fs_itab_path(&fs->itab, ino, path);
	if (!err)
		err = store_txn_begin(fs->store, 0, &t);
	if (!err)
		err = store_stat(fs->store, t, path, &st);
	if (!err) {
		n = store_xattr_list(fs->store, t, path, NULL, 0);
		if (n < 0)
			err = (int)n;
	}
	if (!err) {
		total = n + (st.ttl_ms ? sizeof(XATTR_TTL) : 0);
		if (size && size < total)
			err = -ERANGE;
	}
	if (!err && size) {
		buf = rbuf_get(total + 1);
		if (!buf)
			err = -ENOMEM;
	}
	if (!err && size && n) {
		n = store_xattr_list(fs->store, t, path, buf, total);
		if (n < 0)
			err = (int)n;
	}
	if (t)
		store_txn_abort(&t);
	ns_unlock(fs);
	if (err) {
		reply_err(fs, req, err);
	} else if (size == 0) {
		fuse_reply_xattr(req, total);
	} else {
		if (st.ttl_ms) {
			/* n + sizeof(XATTR_TTL) <= total: same transaction */
			memcpy(buf + n, XATTR_TTL, sizeof(XATTR_TTL));
			n += sizeof(XATTR_TTL);
		}
		fuse_reply_buf(req, buf, n);
	}
}

static void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs *fs = fs_of(req);
	char path[FS_PATH_MAX];
	int err;

	fs_count(fs, FS_OP_REMOVEXATTR);
	if (fs_ino_is_ctl(ino)) {
		err = -EPERM;
		goto out;
	}
	if (!ns_allowed(name)) {
		err = -ENOTSUP;
		goto out;
	}
	ns_rd(fs);
	err = fs_itab_path(&fs->itab, ino, path);
	if (err) {
		/* nothing */
	} else if (strcmp(name, XATTR_TTL) == 0) {
		struct store_attr a;

		memset(&a, 0, sizeof(a));
		err = store_setattr(fs->store, NULL, path, &a, STORE_ATTR_TTL);
	} else if (strncmp(name, XATTR_RESERVED, strlen(XATTR_RESERVED)) == 0) {
		err = -EPERM;
	} else {
		err = store_xattr_remove(fs->store, NULL, path, name);
	}
	ns_unlock(fs);
out:
	if (err)
		reply_err(fs, req, err);
	else
		fuse_reply_err(req, 0);
}

/* ---- locks: the glue in lockops.c replies ---- */

/* A lock request on fi: forget a clean snapshot (see the top comment). */
static void file_lock_point(struct fuse_file_info *fi)
{
	struct fs_file *f = (struct fs_file *)(uintptr_t)fi->fh;

	if (!f || f->is_virtual)
		return;
	pthread_mutex_lock(&f->lock);
	if (f->loaded && !f->dirty && !f->write_err) {
		free(f->buf);
		f->buf = NULL;
		f->len = 0;
		f->cap = 0;
		f->loaded = 0;
	}
	pthread_mutex_unlock(&f->lock);
}

/* The lock identity of ino for a request, or an errno for the reply. */
static int lock_path_of(struct fs *fs, fuse_ino_t ino, char *path)
{
	if (fs_ino_is_ctl(ino))
		return -ENOLCK;
	return fs_itab_lock_path(&fs->itab, ino, path, 1);
}

static void fs_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     int op)
{
	struct fs *fs = fs_of(req);
	struct fuse_file_info own = *fi;
	char path[FS_PATH_MAX];
	int err;

	fs_count(fs, FS_OP_FLOCK);
	err = lock_path_of(fs, ino, path);
	if (!err && (op & ~LOCK_NB) == LOCK_UN && fi->fh)
		err = file_flush(fs, req, (struct fs_file *)(uintptr_t)fi->fh);
	if (err) {
		reply_err(fs, req, err);
		return;
	}
	file_lock_point(fi);
	own.lock_owner = fi->fh; /* see lock_release */
	lockops_flock(fs->locks, req, path, &own, op);
}

static void fs_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock)
{
	struct fs *fs = fs_of(req);
	char path[FS_PATH_MAX];
	int err;

	fs_count(fs, FS_OP_GETLK);
	err = lock_path_of(fs, ino, path);
	if (err)
		reply_err(fs, req, err);
	else
		lockops_getlk(fs->locks, req, path, fi, lock);
}

static void fs_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		     struct flock *lock, int sleep)
{
	struct fs *fs = fs_of(req);
	char path[FS_PATH_MAX];
	int err;

	fs_count(fs, FS_OP_SETLK);
	err = lock_path_of(fs, ino, path);
	if (!err && lock->l_type == F_UNLCK && fi->fh)
		err = file_flush(fs, req, (struct fs_file *)(uintptr_t)fi->fh);
	if (err) {
		reply_err(fs, req, err);
	} else {
		file_lock_point(fi);
		lockops_setlk(fs->locks, req, path, fi, lock, sleep);
	}
}

const struct fuse_lowlevel_ops fs_ll_ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.readlink = fs_readlink,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.symlink = fs_symlink,
	.rename = fs_rename,
	.link = fs_link,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_flush,
	.release = fs_release,
	.fsync = fs_fsync,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.readdirplus = fs_readdirplus,
	.releasedir = fs_releasedir,
	.fsyncdir = fs_fsyncdir,
	.statfs = fs_statfs,
	.setxattr = fs_setxattr,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.removexattr = fs_removexattr,
	.create = fs_create,
	.getlk = fs_getlk,
	.setlk = fs_setlk,
	.flock = fs_flock,
	.poll = fs_poll,
};

int fs_new(const char *node_name, struct fs **fsp)
{
	struct fs *fs = calloc(1, sizeof(*fs));
	int err;

	if (!fs)
		return -ENOMEM;
	err = fs_itab_init(&fs->itab);
	if (err) {
		free(fs);
		return err;
	}
	if (node_name)
		snprintf(fs->node_name, sizeof(fs->node_name), "%s", node_name);
	fs->max_value = STORE_DEFAULT_MAX_VALUE;
	*fsp = fs;
	return 0;
}

void fs_attach(struct fs *fs, struct store *s, struct lockmgr *m)
{
	struct store_info info;

	memset(&info, 0, sizeof(info));
	fs->store = s;
	fs->locks = m;
	fs->writer = store_writer_token(s);
	if (store_info(s, &info) == 0) {
		if (info.max_value)
			fs->max_value = info.max_value;
		if (!fs->node_name[0])
			snprintf(fs->node_name, sizeof(fs->node_name), "%s",
				 info.node_name);
	}
}

void fs_set_session(struct fs *fs, struct fuse_session *se)
{
	fs->se = se;
}

void fs_destroy(struct fs **fsp)
{
	struct fs *fs = *fsp;

	if (!fs)
		return;
	fs_itab_fini(&fs->itab);
	free(fs);
	*fsp = NULL;
}
