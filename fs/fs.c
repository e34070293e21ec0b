/*
 * fs.c — the core of the statefs FUSE driver: the operations table,
 * lifecycle, reply helpers, attributes and their cache timeouts,
 * lookup/forget/getattr/setattr and statfs.
 *
 * Every regular file is one store record; every directory a namespace.
 * Handlers translate an inode number to the record's path through the
 * inode table (inode.c), call the store, and reply exactly once on every
 * path (errors through fs_reply_err, which also counts them). The
 * handlers live by concern: file.c (open files, the publish rule, lock
 * requests), dir.c (names and directories), xattr.c (extended
 * attributes, the user.statefs.* virtual ones), ctl.c (/.statefs);
 * what they share is declared in fs_int.h.
 *
 * Caching. The kernel may cache entries and attributes for long
 * (FS_CACHE_TIMEOUT): changes made through this mount are seen by the
 * kernel as it makes them, and changes made by anyone else (statefsctl,
 * the replicator, another mount) reach the kernel through the
 * invalidation thread (notify.c), which reads the binlog. Limits:
 *  - a record with a TTL deadline is cached at most until its deadline,
 *    so an expired record is ENOENT at once without any notification;
 *  - the attributes of a file open for writing, or published less than
 *    FS_PUBLISH_QUIET_NS ago, are not cached (fs_attr_timeout);
 *  - file contents are never cached: every open is direct_io (file.c,
 *    rule 3), because the kernel's page cache cannot show a value that
 *    changes all at once.
 * The kernel's writeback cache is NOT enabled: with it the kernel would
 * send dirty pages whenever it likes, after close, which breaks the
 * rule (file.c) that the value changes all at once at close.
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
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "common/log.h"
#include "fs/fs_int.h"

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

void fs_count_err(struct fs *fs, int err)
{
	if (err > 0 && err <= FS_ERRNO_MAX)
		atomic_fetch_add_explicit(&fs->stats.errors[err], 1,
					  memory_order_relaxed);
}

/* Reply with a positive errno (and count it). */
void fs_reply_err(struct fs *fs, fuse_req_t req, int err)
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

char *fs_rbuf_get(size_t size)
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

int fs_is_ctl_name(fuse_ino_t parent, const char *name)
{
	return parent == FUSE_ROOT_ID && strcmp(name, FS_CTL_NAME) == 0;
}

/* Path of child `name` of `parent` into buf. -EPERM inside /.statefs
 * or for /.statefs itself (callers that may look it up check first). */
int fs_child_path(struct fs *fs, fuse_ino_t parent, const char *name,
		  char *buf)
{
	size_t nlen = strlen(name), plen;
	int err;

	if (fs_ino_is_ctl(parent) || fs_is_ctl_name(parent, name))
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

double fs_cache_timeout(const struct store_stat *st)
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
 * notes in the node until when the kernel may cache it (see notify.c).
 *
 * The size of a regular file is not cached while a file of it is open
 * for writing, nor for FS_PUBLISH_QUIET_NS after a publish. A size
 * handed out while a writer holds unpublished data is the old value's
 * (or, for an O_TRUNC open, 0: the kernel sets its own size to 0 at the
 * open, before anything is written), and own publishes are not
 * invalidated (notify.c): cached for a day, stat(2) showed the old size
 * after the publish, and page-cache readers, which the kernel serves
 * at most that many bytes, were cut to it ("hell" of "hello world").
 * The quiet period covers a reply whose stat ran before a publish's
 * commit and is sent after the writer's release. Nothing is lost:
 * every stat while a writer is at work asks us again. */
double fs_attr_timeout(struct fs *fs, uint64_t ino,
		       const struct store_stat *st)
{
	double to = fs_cache_timeout(st);
	int64_t now = store_now_ns();
	int64_t until = now + (int64_t)(to * 1e9);

	if (fs_itab_note_reply(&fs->itab, ino, until, now) &&
	    st->type == STORE_FILE)
		return 0;
	return to;
}

static struct timespec ns_ts(int64_t ns)
{
	struct timespec ts = { ns / 1000000000, ns % 1000000000 };

	return ts;
}

/* A time of setattr: `flag` sets it from ts, `now_flag` to now. */
static int set_time(int to_set, int flag, int now_flag,
		    const struct timespec *ts, int64_t *ns)
{
	if (to_set & now_flag)
		*ns = store_now_ns();
	else if (to_set & flag)
		*ns = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
	else
		return 0;
	return 1;
}

void fs_fill_attr(uint64_t ino, const struct store_stat *st,
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
	a->st_nlink = 1; /* directories: the caller, fs_dir_nlink */
	a->st_uid = st->uid;
	a->st_gid = st->gid;
	a->st_size = st->size;
	a->st_blksize = 4096;
	a->st_blocks = (st->size + 511) / 512;
	a->st_mtim = ns_ts(st->mtime_ns);
	a->st_ctim = ns_ts(st->ctime_ns);
	/* a record made before atime was kept apart has none: its mtime */
	a->st_atim = ns_ts(st->atime_ns ? st->atime_ns : st->mtime_ns);
}

static int count_subdir(void *arg, const char *name, size_t name_len,
			const struct store_stat *st)
{
	(void)name;
	(void)name_len;
	if (st->type == STORE_DIR)
		++*(nlink_t *)arg;
	return 0;
}

nlink_t fs_dir_nlink(struct fs *fs, struct store_txn *t, const char *path)
{
	/* "." and the entry in the parent; the root also lists .statefs */
	nlink_t n = path[0] == '/' && path[1] == '\0' ? 3 : 2;

	if (store_list(fs->store, t, path, NULL, count_subdir, &n) < 0)
		return 1;
	return n;
}

/* store_stat with a stand-in for a root the store does not list. */
int fs_stat_path(struct fs *fs, struct store_txn *t, const char *path,
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
void fs_reply_entry(struct fs *fs, fuse_req_t req, const char *path,
		    const struct store_stat *st)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = fs_itab_ref(&fs->itab, path, 1);
	if (!e.ino) {
		fs_reply_err(fs, req, ENOMEM);
		return;
	}
	e.generation = fs->itab.generation;
	fs_fill_attr(e.ino, st, &e.attr);
	if (st->type == STORE_DIR)
		e.attr.st_nlink = fs_dir_nlink(fs, NULL, path);
	e.entry_timeout = fs_cache_timeout(st);
	e.attr_timeout = fs_attr_timeout(fs, e.ino, st);
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

void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
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
			fs_reply_err(fs, req, ENOENT);
		return;
	}
	if (fs_is_ctl_name(parent, name)) {
		ctl_entry(fs, req, FS_INO_CTL_DIR);
		return;
	}
	ns_rd(fs);
	err = fs_child_path(fs, parent, name, path);
	if (!err)
		err = store_stat(fs->store, NULL, path, &st);
	if (err)
		fs_reply_err(fs, req, err);
	else
		fs_reply_entry(fs, req, path, &st);
	ns_unlock(fs);
}

void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct fs *fs = fs_of(req);

	fs_count(fs, FS_OP_FORGET);
	fs_itab_forget(&fs->itab, ino, nlookup);
	fuse_reply_none(req);
}

void fs_forget_multi(fuse_req_t req, size_t count,
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

/* A writer sees the size of its own unpublished buffer (file.c, 5). */
static void own_size(struct fs *fs, fuse_req_t req, uint64_t ino,
		     struct fuse_file_info *fi, struct stat *a)
{
	uint64_t len;

	if (S_ISREG(a->st_mode) && fs_file_view_len(fs, req, ino, fi, &len)) {
		a->st_size = len;
		a->st_blocks = (len + 511) / 512;
	}
}

void fs_getattr(fuse_req_t req, fuse_ino_t ino,
		struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	char path[FS_PATH_MAX];
	struct store_stat st;
	nlink_t nlink = 1;
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
		err = fs_stat_path(fs, NULL, path, &st);
	if (!err && st.type == STORE_DIR)
		nlink = fs_dir_nlink(fs, NULL, path);
	ns_unlock(fs);
	if (err == -ENOENT && gone_stat(fs, ino, fi, &st) == 0) {
		/* open but deleted: fstat works, as on tmpfs */
		fs_fill_attr(ino, &st, &a);
		a.st_nlink = 0;
		own_size(fs, req, ino, fi, &a);
		fuse_reply_attr(req, &a, 0);
		return;
	}
	if (err) {
		fs_reply_err(fs, req, err);
		return;
	}
	fs_fill_attr(ino, &st, &a);
	a.st_nlink = nlink;
	own_size(fs, req, ino, fi, &a);
	fuse_reply_attr(req, &a, fs_attr_timeout(fs, ino, &st));
}

/* ---- setattr ---- */

void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		int to_set, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_file *f = fi ? (struct fs_file *)(uintptr_t)fi->fh : NULL;
	char path[FS_PATH_MAX];
	struct store_txn *t = NULL;
	struct store_stat st;
	struct store_attr a;
	unsigned mask = 0;
	nlink_t nlink = 1;
	struct stat out;
	int err, buffered = 0;
	size_t blen = 0;

	fs_count(fs, FS_OP_SETATTR);
	if (fs_ino_is_ctl(ino)) {
		fs_reply_err(fs, req, EPERM);
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
	mask |= set_time(to_set, FUSE_SET_ATTR_MTIME, FUSE_SET_ATTR_MTIME_NOW,
			 &attr->st_mtim, &a.mtime_ns) ? STORE_ATTR_MTIME : 0;
	mask |= set_time(to_set, FUSE_SET_ATTR_ATIME, FUSE_SET_ATTR_ATIME_NOW,
			 &attr->st_atim, &a.atime_ns) ? STORE_ATTR_ATIME : 0;
	/* `touch -a` is a touch too: it renews a TTL deadline */
	if ((mask & STORE_ATTR_ATIME) && !(mask & STORE_ATTR_MTIME))
		mask |= STORE_ATTR_TOUCH;
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
				err = fs_file_load(fs, f);
			if (!err)
				err = fs_file_reserve(f, sz);
			if (!err) {
				if (!f->loaded)
					f->len = 0;
				f->loaded = 1;
				if (sz > f->len)
					memset(f->buf + f->len, 0, sz - f->len);
				f->len = sz;
				f->dirty = 1;
				f->defer_empty = 0;
				fs_file_view(f);
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
	if (err == -ENOENT && !(mask & STORE_ATTR_SIZE)) {
		/* Unlinked or replaced while open: fchmod, fchown, futimens
		 * and ftruncate act on the open file, as on tmpfs; nothing
		 * reaches the store (see file.c, "Open files of a deleted
		 * record"). A size without a writable handle cannot come
		 * here (the kernel refuses ftruncate of a read-only one). */
		ns_unlock(fs);
		err = fs_itab_gone_setattr(&fs->itab, ino, &a, mask,
					   store_now_ns(), &st);
		if (err)
			goto out;
		fs_fill_attr(ino, &st, &out);
		out.st_nlink = 0;
		own_size(fs, req, ino, fi, &out);
		fuse_reply_attr(req, &out, 0);
		return;
	}
	if (err) {
		ns_unlock(fs);
		goto out;
	}
	if (mask) {
		err = store_txn_begin(fs->store, 1, &t);
		if (!err)
			err = store_setattr(fs->store, t, path, &a, mask);
		if (!err)
			err = fs_stat_path(fs, t, path, &st);
		if (err) {
			store_txn_abort(&t);
			ns_unlock(fs);
			goto out;
		}
		err = store_txn_commit(&t);
	} else {
		err = fs_stat_path(fs, NULL, path, &st);
	}
	if (!err && st.type == STORE_DIR)
		nlink = fs_dir_nlink(fs, NULL, path);
	ns_unlock(fs);
	if (err)
		goto out;
	fs_fill_attr(ino, &st, &out);
	out.st_nlink = nlink;
	if (buffered) {
		out.st_size = blen;
		out.st_blocks = (blen + 511) / 512;
	} else {
		own_size(fs, req, ino, fi, &out);
	}
	fuse_reply_attr(req, &out, fs_attr_timeout(fs, ino, &st));
	return;
out:
	fs_reply_err(fs, req, err);
}

void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	struct store_info info;
	struct statvfs sv;
	int err;

	(void)ino;
	fs_count(fs, FS_OP_STATFS);
	err = store_info(fs->store, &info);
	if (err) {
		fs_reply_err(fs, req, err);
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
	.fallocate = fs_fallocate,
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
	pthread_mutex_init(&fs->notify_mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&fs->notify_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
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

int fs_set_store_dir(struct fs *fs, const char *dir)
{
	char *d = strdup(dir);

	if (!d)
		return -ENOMEM;
	free(fs->store_dir);
	fs->store_dir = d;
	return 0;
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
	pthread_cond_destroy(&fs->notify_cond);
	pthread_mutex_destroy(&fs->notify_mu);
	free(fs->store_dir);
	free(fs);
	*fsp = NULL;
}
