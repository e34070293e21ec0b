/*
 * memfs.c — the FUSE ceiling: a minimal in-memory file system.
 *
 *   memfs [-f] [-s] [other libfuse options] MOUNTPOINT
 *
 * The benchmarks compare statefs against this file system to tell what
 * statefs costs on top of FUSE itself. It is deliberately plain: the
 * libfuse3 HIGH-LEVEL API (path based, fuse_main), libfuse's default
 * options (multi-threaded loop, attr/entry timeout 1 s, no keep_cache,
 * no writeback cache, no direct_io), and no work beyond keeping bytes in
 * memory. Anything faster than this would need FUSE tuning, which is
 * exactly what the comparison should show.
 *
 * What it supports: nested directories (mkdir, rmdir, readdir), regular
 * files (create, open, read, write, truncate, unlink, flush, release,
 * utimens, getattr). What it does not: rename, links, symlinks, xattrs,
 * locks (flock falls back to the kernel's local emulation because the
 * flock operation is absent), chmod/chown. Those calls fail with
 * ENOSYS. Everything lives in memory and is lost at unmount.
 *
 * Design: every node (file or directory) is in one hash table keyed by its
 * full path, so a lookup costs one hash, not a walk per component; each
 * directory also keeps a doubly linked list of its children for readdir
 * and for O(1) unlink. One mutex (memfs.lock) protects the table, every
 * node and every value: the file system is a reference, not a study in
 * concurrency, and libfuse's own request handling dominates anyway.
 *
 * Invariants:
 *  (1) a node is in the table iff it is linked into its parent's list;
 *  (2) a node is freed when it is unlinked and no open file handle
 *      refers to it (node.open == 0);
 *  (3) the root is never unlinked.
 */
#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fuse.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct memfs_node {
	char *path;                 /* full path, key of the table */
	const char *name;           /* last component, points into path */
	mode_t mode;
	struct timespec atime, mtime, ctime;
	char *data;                 /* file value */
	size_t size, cap;
	unsigned open;              /* open file handles */
	int unlinked;
	struct memfs_node *parent;
	struct memfs_node *child_first, *child_last; /* directories */
	struct memfs_node *prev, *next;              /* siblings */
	struct memfs_node *hnext;                    /* hash chain */
	size_t nchildren;
};

static struct {
	pthread_mutex_t lock;        /* protects everything below and nodes */
	struct memfs_node **table;
	size_t nbuckets, count;
	struct memfs_node *root;
} memfs = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint64_t memfs_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct memfs_node *memfs_find(const char *path)
{
	struct memfs_node *n = memfs.table[memfs_hash(path) % memfs.nbuckets];

	for (; n; n = n->hnext)
		if (strcmp(n->path, path) == 0)
			return n;
	return NULL;
}

static void memfs_table_insert(struct memfs_node *n)
{
	size_t b;

	if (memfs.count + 1 > memfs.nbuckets) {
		size_t nb = memfs.nbuckets * 2, i;
		struct memfs_node **t = calloc(nb, sizeof(*t));

		if (t) { /* out of memory: keep the longer chains */
			for (i = 0; i < memfs.nbuckets; i++) {
				struct memfs_node *m = memfs.table[i], *next;

				for (; m; m = next) {
					next = m->hnext;
					b = memfs_hash(m->path) % nb;
					m->hnext = t[b];
					t[b] = m;
				}
			}
			free(memfs.table);
			memfs.table = t;
			memfs.nbuckets = nb;
		}
	}
	b = memfs_hash(n->path) % memfs.nbuckets;
	n->hnext = memfs.table[b];
	memfs.table[b] = n;
	memfs.count++;
}

static void memfs_table_remove(struct memfs_node *n)
{
	struct memfs_node **pp = &memfs.table[memfs_hash(n->path) % memfs.nbuckets];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == n) {
			*pp = n->hnext;
			memfs.count--;
			return;
		}
	}
}

static void memfs_node_free(struct memfs_node *n)
{
	free(n->data);
	free(n->path);
	free(n);
}

/* The parent directory of `path` and a pointer to its last component;
 * -ENOENT / -ENOTDIR as the kernel expects. */
static int memfs_parent(const char *path, struct memfs_node **dirp)
{
	const char *slash = strrchr(path, '/');
	size_t len = slash - path;
	char *dpath;
	struct memfs_node *d;

	if (len == 0) {
		*dirp = memfs.root;
		return 0;
	}
	dpath = strndup(path, len);
	if (!dpath)
		return -ENOMEM;
	d = memfs_find(dpath);
	free(dpath);
	if (!d)
		return -ENOENT;
	if (!S_ISDIR(d->mode))
		return -ENOTDIR;
	*dirp = d;
	return 0;
}

static int memfs_new(const char *path, mode_t mode, struct memfs_node **np)
{
	struct memfs_node *dir, *n;
	int err;

	err = memfs_parent(path, &dir);
	if (err)
		return err;
	if (memfs_find(path))
		return -EEXIST;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->path = strdup(path);
	if (!n->path) {
		free(n);
		return -ENOMEM;
	}
	n->name = strrchr(n->path, '/') + 1;
	n->mode = mode;
	clock_gettime(CLOCK_REALTIME, &n->mtime);
	n->atime = n->ctime = n->mtime;
	n->parent = dir;
	n->prev = dir->child_last;
	if (dir->child_last)
		dir->child_last->next = n;
	else
		dir->child_first = n;
	dir->child_last = n;
	dir->nchildren++;
	dir->mtime = dir->ctime = n->mtime;
	memfs_table_insert(n);
	*np = n;
	return 0;
}

static void memfs_unlink_node(struct memfs_node *n)
{
	struct memfs_node *dir = n->parent;

	memfs_table_remove(n);
	if (n->prev)
		n->prev->next = n->next;
	else
		dir->child_first = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		dir->child_last = n->prev;
	dir->nchildren--;
	clock_gettime(CLOCK_REALTIME, &dir->mtime);
	dir->ctime = dir->mtime;
	n->unlinked = 1;
	n->parent = NULL;
	if (n->open == 0)
		memfs_node_free(n);
}

static void memfs_fill_stat(const struct memfs_node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = n->mode;
	st->st_nlink = S_ISDIR(n->mode) ? 2 : 1;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_size = n->size;
	st->st_blksize = 4096;
	st->st_blocks = (n->size + 511) / 512;
	st->st_atim = n->atime;
	st->st_mtim = n->mtime;
	st->st_ctim = n->ctime;
}

static struct memfs_node *memfs_handle(struct fuse_file_info *fi)
{
	return (struct memfs_node *)(uintptr_t)fi->fh;
}

static int memfs_getattr(const char *path, struct stat *st,
			 struct fuse_file_info *fi)
{
	struct memfs_node *n;
	int err = 0;

	pthread_mutex_lock(&memfs.lock);
	n = fi ? memfs_handle(fi) : memfs_find(path);
	if (n)
		memfs_fill_stat(n, st);
	else
		err = -ENOENT;
	pthread_mutex_unlock(&memfs.lock);
	return err;
}

static int memfs_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
			 off_t off, struct fuse_file_info *fi,
			 enum fuse_readdir_flags flags)
{
	struct memfs_node *d, *c;
	int err = 0;

	(void)off;
	(void)fi;
	(void)flags;
	pthread_mutex_lock(&memfs.lock);
	d = memfs_find(path);
	if (!d) {
		err = -ENOENT;
		goto out;
	}
	if (!S_ISDIR(d->mode)) {
		err = -ENOTDIR;
		goto out;
	}
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	for (c = d->child_first; c; c = c->next)
		if (filler(buf, c->name, NULL, 0, 0))
			break;
out:
	pthread_mutex_unlock(&memfs.lock);
	return err;
}

static int memfs_mkdir(const char *path, mode_t mode)
{
	struct memfs_node *n;
	int err;

	pthread_mutex_lock(&memfs.lock);
	err = memfs_new(path, S_IFDIR | (mode & 07777), &n);
	pthread_mutex_unlock(&memfs.lock);
	return err;
}

static int memfs_rmdir(const char *path)
{
	struct memfs_node *n;
	int err = 0;

	pthread_mutex_lock(&memfs.lock);
	n = memfs_find(path);
	if (!n)
		err = -ENOENT;
	else if (!S_ISDIR(n->mode))
		err = -ENOTDIR;
	else if (n->nchildren)
		err = -ENOTEMPTY;
	else if (n == memfs.root)
		err = -EBUSY;
	else
		memfs_unlink_node(n);
	pthread_mutex_unlock(&memfs.lock);
	return err;
}

static int memfs_unlink(const char *path)
{
	struct memfs_node *n;
	int err = 0;

	pthread_mutex_lock(&memfs.lock);
	n = memfs_find(path);
	if (!n)
		err = -ENOENT;
	else if (S_ISDIR(n->mode))
		err = -EISDIR;
	else
		memfs_unlink_node(n);
	pthread_mutex_unlock(&memfs.lock);
	return err;
}

static int memfs_create(const char *path, mode_t mode,
			struct fuse_file_info *fi)
{
	struct memfs_node *n;
	int err;

	pthread_mutex_lock(&memfs.lock);
	err = memfs_new(path, S_IFREG | (mode & 07777), &n);
	if (!err) {
		n->open++;
		fi->fh = (uintptr_t)n;
	}
	pthread_mutex_unlock(&memfs.lock);
	return err;
}

static int memfs_resize(struct memfs_node *n, size_t size)
{
	if (size > n->cap) {
		size_t cap = n->cap ? n->cap : 64;
		char *d;

		while (cap < size)
			cap *= 2;
		d = realloc(n->data, cap);
		if (!d)
			return -ENOMEM;
		n->data = d;
		n->cap = cap;
	}
	if (size > n->size)
		memset(n->data + n->size, 0, size - n->size);
	n->size = size;
	clock_gettime(CLOCK_REALTIME, &n->mtime);
	n->ctime = n->mtime;
	return 0;
}

static int memfs_open(const char *path, struct fuse_file_info *fi)
{
	struct memfs_node *n;
	int err = 0;

	pthread_mutex_lock(&memfs.lock);
	n = memfs_find(path);
	if (!n) {
		err = -ENOENT;
		goto out;
	}
	if (S_ISDIR(n->mode)) {
		err = -EISDIR;
		goto out;
	}
	if (fi->flags & O_TRUNC) {
		err = memfs_resize(n, 0);
		if (err)
			goto out;
	}
	n->open++;
	fi->fh = (uintptr_t)n;
out:
	pthread_mutex_unlock(&memfs.lock);
	return err;
}

static int memfs_read(const char *path, char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct memfs_node *n;
	size_t len = 0;

	(void)path;
	pthread_mutex_lock(&memfs.lock);
	n = memfs_handle(fi);
	if ((uint64_t)off < n->size) {
		len = n->size - off;
		if (len > size)
			len = size;
		memcpy(buf, n->data + off, len);
	}
	pthread_mutex_unlock(&memfs.lock);
	return len;
}

static int memfs_write(const char *path, const char *buf, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	struct memfs_node *n;
	int err = 0;

	(void)path;
	if (size > INT32_MAX)
		size = INT32_MAX;
	pthread_mutex_lock(&memfs.lock);
	n = memfs_handle(fi);
	if (off + size > n->size)
		err = memfs_resize(n, off + size);
	if (!err) {
		memcpy(n->data + off, buf, size);
		clock_gettime(CLOCK_REALTIME, &n->mtime);
		n->ctime = n->mtime;
	}
	pthread_mutex_unlock(&memfs.lock);
	return err ? err : (int)size;
}

static int memfs_truncate(const char *path, off_t size,
			  struct fuse_file_info *fi)
{
	struct memfs_node *n;
	int err;

	if (size < 0)
		return -EINVAL;
	pthread_mutex_lock(&memfs.lock);
	n = fi ? memfs_handle(fi) : memfs_find(path);
	if (!n)
		err = -ENOENT;
	else if (S_ISDIR(n->mode))
		err = -EISDIR;
	else
		err = memfs_resize(n, size);
	pthread_mutex_unlock(&memfs.lock);
	return err;
}

static int memfs_utimens(const char *path, const struct timespec tv[2],
			 struct fuse_file_info *fi)
{
	struct memfs_node *n;
	struct timespec now;
	int err = 0;

	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&memfs.lock);
	n = fi ? memfs_handle(fi) : memfs_find(path);
	if (!n) {
		err = -ENOENT;
	} else {
		if (!tv || tv[0].tv_nsec == UTIME_NOW)
			n->atime = now;
		else if (tv[0].tv_nsec != UTIME_OMIT)
			n->atime = tv[0];
		if (!tv || tv[1].tv_nsec == UTIME_NOW)
			n->mtime = now;
		else if (tv[1].tv_nsec != UTIME_OMIT)
			n->mtime = tv[1];
		n->ctime = now;
	}
	pthread_mutex_unlock(&memfs.lock);
	return err;
}

static int memfs_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	return 0; /* the value is already in memory */
}

static int memfs_release(const char *path, struct fuse_file_info *fi)
{
	struct memfs_node *n;

	(void)path;
	pthread_mutex_lock(&memfs.lock);
	n = memfs_handle(fi);
	n->open--;
	if (n->unlinked && n->open == 0)
		memfs_node_free(n);
	pthread_mutex_unlock(&memfs.lock);
	return 0;
}

static const struct fuse_operations memfs_ops = {
	.getattr = memfs_getattr,
	.readdir = memfs_readdir,
	.mkdir = memfs_mkdir,
	.rmdir = memfs_rmdir,
	.unlink = memfs_unlink,
	.create = memfs_create,
	.open = memfs_open,
	.read = memfs_read,
	.write = memfs_write,
	.truncate = memfs_truncate,
	.utimens = memfs_utimens,
	.flush = memfs_flush,
	.release = memfs_release,
};

int main(int argc, char *argv[])
{
	int ret;

	memfs.nbuckets = 1024;
	memfs.table = calloc(memfs.nbuckets, sizeof(*memfs.table));
	memfs.root = calloc(1, sizeof(*memfs.root));
	if (!memfs.table || !memfs.root) {
		fprintf(stderr, "memfs: out of memory\n");
		return 1;
	}
	memfs.root->path = strdup("/");
	if (!memfs.root->path) {
		fprintf(stderr, "memfs: out of memory\n");
		return 1;
	}
	memfs.root->name = memfs.root->path;
	memfs.root->mode = S_IFDIR | 0755;
	clock_gettime(CLOCK_REALTIME, &memfs.root->mtime);
	memfs.root->atime = memfs.root->ctime = memfs.root->mtime;
	memfs_table_insert(memfs.root);

	ret = fuse_main(argc, argv, &memfs_ops, NULL);
	return ret;
}
