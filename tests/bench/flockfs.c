/*
 * flockfs.c — the reference for the flock benchmark: the smallest FUSE
 * file system that does flock(2) in user space.
 *
 *   flockfs MOUNTPOINT [fuse options]     (runs in the foreground)
 *   fusermount3 -u MOUNTPOINT             (or SIGTERM/SIGINT) to stop
 *
 * A flat directory of in-memory regular files (create, open, read,
 * write, truncate, unlink, utimens; no subdirectories, no persistence)
 * served by libfuse's high-level API, multithreaded. flock is
 * implemented by the .flock op with FUSE_CAP_FLOCK_LOCKS, so every
 * flock(2) on the mount is a FUSE round trip answered from a small lock
 * table here: per file, one exclusive owner or a list of shared owners,
 * keyed by the kernel's lock owner (one per open file description). The
 * kernel releases a file description's lock at its last close (FUSE
 * release with flock_release), which the high-level library turns into
 * .flock(LOCK_UN).
 *
 * statfs(2) tells the number of flock holdings in f_ffree (`stat -f -c
 * %d MOUNTPOINT`): how the benchmark sees every lock of killed holders
 * freed.
 *
 * What it is for: the same flock cycle through statefs and through this
 * file system measures statefs's lock manager against the bare FUSE cost
 * of a lock round trip.
 *
 * Limits, on purpose (it is a yardstick, not a product):
 *  - a blocking flock waits on a condition variable in a worker thread,
 *    so each waiter holds a thread (max_threads is raised to 1000) and a
 *    waiter cannot be interrupted: Ctrl-C or kill of a blocked process
 *    takes effect when it is granted, and SIGTERM/unmount waits for
 *    blocked waiters (kill -9 ends it at once);
 *  - waiters are not served in arrival order (whoever wakes first wins);
 *  - one global mutex for files and locks; files are found through a
 *    fixed hash table of names.
 */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fuse.h>

#define FLOCKFS_BUCKETS 4096

struct flockfs_owner {
	struct flockfs_owner *next;
	uint64_t owner;
};

struct flockfs_file {
	struct flockfs_file *next;  /* hash chain */
	char *name;
	char *data;
	size_t len, cap;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec mtime, ctime;
	int unlinked;
	unsigned opens;
	/* the flock lock: excl set, or shared list non-empty, or neither */
	int excl;
	uint64_t excl_owner;
	struct flockfs_owner *shared;
};

static pthread_mutex_t fs_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fs_cond = PTHREAD_COND_INITIALIZER;
static struct flockfs_file *fs_files[FLOCKFS_BUCKETS];
static size_t fs_nfiles;
static uint64_t fs_held; /* flock holdings, exclusive and shared */

static unsigned name_hash(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % FLOCKFS_BUCKETS;
}

/* "/name" -> file, or NULL (also for "/" and anything with a subdir). */
static struct flockfs_file *file_find(const char *path)
{
	struct flockfs_file *f;

	if (path[0] != '/' || !path[1] || strchr(path + 1, '/'))
		return NULL;
	for (f = fs_files[name_hash(path + 1)]; f; f = f->next)
		if (strcmp(f->name, path + 1) == 0)
			return f;
	return NULL;
}

static void file_free_if_unused(struct flockfs_file *f)
{
	if (f->unlinked && f->opens == 0) {
		struct flockfs_owner *o;

		while ((o = f->shared)) {
			f->shared = o->next;
			free(o);
		}
		free(f->name);
		free(f->data);
		free(f);
	}
}

static void fill_stat(const struct flockfs_file *f, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | f->mode;
	st->st_nlink = f->unlinked ? 0 : 1;
	st->st_size = (off_t)f->len;
	st->st_uid = f->uid;
	st->st_gid = f->gid;
	st->st_mtim = f->mtime;
	st->st_ctim = f->ctime;
	st->st_atim = f->mtime;
	st->st_blocks = (blkcnt_t)((f->len + 511) / 512);
}

static int ff_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	struct flockfs_file *f;
	int err = 0;

	if (strcmp(path, "/") == 0) {
		memset(st, 0, sizeof(*st));
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	pthread_mutex_lock(&fs_mutex);
	f = fi && fi->fh ? (struct flockfs_file *)(uintptr_t)fi->fh :
			   file_find(path);
	if (f)
		fill_stat(f, st);
	else
		err = -ENOENT;
	pthread_mutex_unlock(&fs_mutex);
	return err;
}

static int ff_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	size_t i;

	(void)off;
	(void)fi;
	(void)flags;
	if (strcmp(path, "/") != 0)
		return -ENOTDIR;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	pthread_mutex_lock(&fs_mutex);
	for (i = 0; i < FLOCKFS_BUCKETS; i++) {
		struct flockfs_file *f;

		for (f = fs_files[i]; f; f = f->next)
			fill(buf, f->name, NULL, 0, 0);
	}
	pthread_mutex_unlock(&fs_mutex);
	return 0;
}

static int ff_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_context *ctx = fuse_get_context();
	struct flockfs_file *f;
	unsigned h;
	int err = 0;

	if (path[0] != '/' || !path[1] || strchr(path + 1, '/'))
		return -EPERM;
	pthread_mutex_lock(&fs_mutex);
	f = file_find(path);
	if (f) {
		if (fi->flags & O_EXCL)
			err = -EEXIST;
		goto out;
	}
	f = calloc(1, sizeof(*f));
	if (!f || !(f->name = strdup(path + 1))) {
		free(f);
		err = -ENOMEM;
		goto out;
	}
	f->mode = mode & 07777;
	f->uid = ctx->uid;
	f->gid = ctx->gid;
	clock_gettime(CLOCK_REALTIME, &f->mtime);
	f->ctime = f->mtime;
	h = name_hash(f->name);
	f->next = fs_files[h];
	fs_files[h] = f;
	fs_nfiles++;
out:
	if (!err) {
		f->opens++;
		fi->fh = (uintptr_t)f;
	}
	pthread_mutex_unlock(&fs_mutex);
	return err;
}

static int ff_open(const char *path, struct fuse_file_info *fi)
{
	struct flockfs_file *f;
	int err = 0;

	pthread_mutex_lock(&fs_mutex);
	f = file_find(path);
	if (!f) {
		err = -ENOENT;
	} else {
		if (fi->flags & O_TRUNC)
			f->len = 0;
		f->opens++;
		fi->fh = (uintptr_t)f;
	}
	pthread_mutex_unlock(&fs_mutex);
	return err;
}

static int ff_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct flockfs_file *f = (struct flockfs_file *)(uintptr_t)fi->fh;
	size_t n = 0;

	(void)path;
	pthread_mutex_lock(&fs_mutex);
	if ((size_t)off < f->len) {
		n = f->len - (size_t)off;
		if (n > size)
			n = size;
		memcpy(buf, f->data + off, n);
	}
	pthread_mutex_unlock(&fs_mutex);
	return (int)n;
}

static int file_resize(struct flockfs_file *f, size_t len)
{
	if (len > f->cap) {
		size_t cap = f->cap ? f->cap : 64;
		char *d;

		while (cap < len)
			cap *= 2;
		d = realloc(f->data, cap);
		if (!d)
			return -ENOMEM;
		f->data = d;
		f->cap = cap;
	}
	if (len > f->len)
		memset(f->data + f->len, 0, len - f->len);
	f->len = len;
	clock_gettime(CLOCK_REALTIME, &f->mtime);
	f->ctime = f->mtime;
	return 0;
}

static int ff_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct flockfs_file *f = (struct flockfs_file *)(uintptr_t)fi->fh;
	int err = 0;

	(void)path;
	pthread_mutex_lock(&fs_mutex);
	if ((size_t)off + size > f->len)
		err = file_resize(f, (size_t)off + size);
	if (!err)
		memcpy(f->data + off, buf, size);
	pthread_mutex_unlock(&fs_mutex);
	return err ? err : (int)size;
}

static int ff_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct flockfs_file *f;
	int err;

	pthread_mutex_lock(&fs_mutex);
	f = fi && fi->fh ? (struct flockfs_file *)(uintptr_t)fi->fh :
			   file_find(path);
	err = f ? file_resize(f, (size_t)size) : -ENOENT;
	pthread_mutex_unlock(&fs_mutex);
	return err;
}

static int ff_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	struct flockfs_file *f;
	int err = 0;

	pthread_mutex_lock(&fs_mutex);
	f = fi && fi->fh ? (struct flockfs_file *)(uintptr_t)fi->fh :
			   file_find(path);
	if (!f)
		err = -ENOENT;
	else if (tv[1].tv_nsec == UTIME_NOW)
		clock_gettime(CLOCK_REALTIME, &f->mtime);
	else if (tv[1].tv_nsec != UTIME_OMIT)
		f->mtime = tv[1];
	pthread_mutex_unlock(&fs_mutex);
	return err;
}

static int ff_unlink(const char *path)
{
	struct flockfs_file *f, **pp;
	int err = -ENOENT;

	if (path[0] != '/' || !path[1] || strchr(path + 1, '/'))
		return -ENOENT;
	pthread_mutex_lock(&fs_mutex);
	for (pp = &fs_files[name_hash(path + 1)]; (f = *pp); pp = &f->next) {
		if (strcmp(f->name, path + 1) == 0) {
			*pp = f->next;
			f->unlinked = 1;
			fs_nfiles--;
			file_free_if_unused(f);
			err = 0;
			break;
		}
	}
	pthread_mutex_unlock(&fs_mutex);
	return err;
}

static int lock_drop(struct flockfs_file *f, uint64_t owner);

static int ff_release(const char *path, struct fuse_file_info *fi)
{
	struct flockfs_file *f = (struct flockfs_file *)(uintptr_t)fi->fh;

	(void)path;
	pthread_mutex_lock(&fs_mutex);
	/* the last close of a file description drops its flock lock */
	if (fi->flock_release && lock_drop(f, fi->lock_owner))
		pthread_cond_broadcast(&fs_cond);
	f->opens--;
	file_free_if_unused(f);
	pthread_mutex_unlock(&fs_mutex);
	return 0;
}

/* Under fs_mutex: drop owner's lock on f; 1 if it held one. */
static int lock_drop(struct flockfs_file *f, uint64_t owner)
{
	struct flockfs_owner **pp, *o;

	if (f->excl && f->excl_owner == owner) {
		f->excl = 0;
		fs_held--;
		return 1;
	}
	for (pp = &f->shared; (o = *pp); pp = &o->next) {
		if (o->owner == owner) {
			*pp = o->next;
			free(o);
			fs_held--;
			return 1;
		}
	}
	return 0;
}

static int ff_flock(const char *path, struct fuse_file_info *fi, int op)
{
	struct flockfs_file *f = (struct flockfs_file *)(uintptr_t)fi->fh;
	uint64_t owner = fi->lock_owner;
	int type = op & ~LOCK_NB, err = 0;
	struct flockfs_owner *o;

	(void)path;
	if (type != LOCK_SH && type != LOCK_EX && type != LOCK_UN)
		return -EINVAL;
	pthread_mutex_lock(&fs_mutex);
	if (type == LOCK_EX && f->excl && f->excl_owner == owner)
		goto out;
	/* conversion drops first, as Linux does */
	if (lock_drop(f, owner))
		pthread_cond_broadcast(&fs_cond);
	if (type == LOCK_UN)
		goto out;
	for (;;) {
		int busy = f->excl || (type == LOCK_EX && f->shared);

		if (!busy)
			break;
		if (op & LOCK_NB) {
			err = -EWOULDBLOCK;
			goto out;
		}
		pthread_cond_wait(&fs_cond, &fs_mutex);
	}
	if (type == LOCK_EX) {
		f->excl = 1;
		f->excl_owner = owner;
	} else {
		o = malloc(sizeof(*o));
		if (!o) {
			err = -ENOLCK;
			goto out;
		}
		o->owner = owner;
		o->next = f->shared;
		f->shared = o;
	}
	fs_held++;
out:
	pthread_mutex_unlock(&fs_mutex);
	return err;
}

static int ff_statfs(const char *path, struct statvfs *st)
{
	(void)path;
	memset(st, 0, sizeof(*st));
	st->f_bsize = 4096;
	st->f_namemax = 255;
	pthread_mutex_lock(&fs_mutex);
	st->f_files = fs_nfiles;
	st->f_ffree = fs_held;
	pthread_mutex_unlock(&fs_mutex);
	return 0;
}

static void *ff_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	cfg->use_ino = 0;
	cfg->entry_timeout = 1.0;
	cfg->attr_timeout = 1.0;
	if (conn->capable & FUSE_CAP_FLOCK_LOCKS)
		conn->want |= FUSE_CAP_FLOCK_LOCKS;
	return NULL;
}

static const struct fuse_operations flockfs_ops = {
	.init = ff_init,
	.getattr = ff_getattr,
	.readdir = ff_readdir,
	.create = ff_create,
	.open = ff_open,
	.read = ff_read,
	.write = ff_write,
	.truncate = ff_truncate,
	.utimens = ff_utimens,
	.unlink = ff_unlink,
	.release = ff_release,
	.flock = ff_flock,
	.statfs = ff_statfs,
};

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *cfg = NULL;
	struct fuse *fuse = NULL;
	int i, ret = 1, mounted = 0;

	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: %s MOUNTPOINT [fuse options]\n",
			argv[0]);
		return 2;
	}
	if (fuse_opt_add_arg(&args, argv[0]))
		goto out;
	for (i = 2; i < argc; i++)
		if (fuse_opt_add_arg(&args, argv[i]))
			goto out;
	fuse = fuse_new(&args, &flockfs_ops, sizeof(flockfs_ops), NULL);
	if (!fuse)
		goto out;
	if (fuse_mount(fuse, argv[1]))
		goto out;
	mounted = 1;
	if (fuse_set_signal_handlers(fuse_get_session(fuse)))
		goto out;
	/* each blocked flock holds a worker thread: allow many */
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		goto out_signals;
	fuse_loop_cfg_set_max_threads(cfg, 1000);
	fuse_loop_cfg_set_idle_threads(cfg, 16);
	ret = fuse_loop_mt(fuse, cfg) ? 1 : 0;
	fuse_loop_cfg_destroy(cfg);
out_signals:
	fuse_remove_signal_handlers(fuse_get_session(fuse));
out:
	if (mounted)
		fuse_unmount(fuse);
	if (fuse)
		fuse_destroy(fuse);
	fuse_opt_free_args(&args);
	return ret;
}
