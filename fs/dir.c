/*
 * dir.c — names and directories: mknod/mkdir/symlink/link/readlink,
 * unlink/rmdir/rename, and the directory handles (opendir/readdir).
 *
 * Node types: regular files, directories and symlinks; hard links and
 * device nodes are EPERM, nothing half-created. Every create, delete or
 * rename is one store transaction.
 *
 * Renames hold itab.ns exclusively from the paths to the inode table
 * update (see fs.c, "Locks"), so nothing acts on a path a concurrent
 * rename has just made stale.
 *
 * Deletes keep a snapshot for open files: an unlink or a rename over a
 * file with open files copies the record in the transaction that
 * deletes it (del_keep, fs_itab_kill_keep), and those files go on
 * reading it (see file.c, "Open files of a deleted record").
 *
 * Readdir offsets are entry indexes + 1: ".", "..", [".statefs" in the
 * root], then the store's children in name order. A directory handle
 * remembers the last name it returned, so the next readdir resumes
 * with store_list(after = last) instead of walking from the start.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/fs_int.h"

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
	err = fs_child_path(fs, parent, name, path);
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
	fs_reply_entry(fs, req, path, &st);
	ns_unlock(fs);
	return;
out:
	ns_unlock(fs);
	fs_reply_err(fs, req, err);
}

void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
	      mode_t mode, dev_t rdev)
{
	(void)rdev;
	fs_count(fs_of(req), FS_OP_MKNOD);
	if (!S_ISREG(mode)) {
		fs_reply_err(fs_of(req), req, EPERM);
		return;
	}
	make_node(req, parent, name, STORE_FILE, mode, NULL);
}

void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
	      mode_t mode)
{
	fs_count(fs_of(req), FS_OP_MKDIR);
	make_node(req, parent, name, STORE_DIR, mode, NULL);
}

void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		const char *name)
{
	fs_count(fs_of(req), FS_OP_SYMLINK);
	make_node(req, parent, name, STORE_SYMLINK, 0777, link);
}

void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	     const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	fs_count(fs_of(req), FS_OP_LINK);
	fs_reply_err(fs_of(req), req, EPERM);
}

void fs_readlink(fuse_req_t req, fuse_ino_t ino)
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
		fs_reply_err(fs, req, (int)n);
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
	err = fs_child_path(fs, parent, name, path);
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
		fs_reply_err(fs, req, err);
	else
		fuse_reply_err(req, 0);
}

void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs_count(fs_of(req), FS_OP_UNLINK);
	remove_node(req, parent, name, STORE_DEL_FILE);
}

void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fs_count(fs_of(req), FS_OP_RMDIR);
	remove_node(req, parent, name, STORE_DEL_DIR);
}

void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
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
		fs_reply_err(fs, req, EINVAL); /* RENAME_EXCHANGE, _WHITEOUT */
		return;
	}
	if (flags & RENAME_NOREPLACE)
		sflags |= STORE_RENAME_NOREPLACE;
	/* Exclusive from the paths to the table update: see the top
	 * comment ("Locks"). */
	ns_wr(fs);
	err = fs_child_path(fs, parent, name, from);
	if (!err)
		err = fs_child_path(fs, newparent, newname, to);
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
		fs_reply_err(fs, req, err);
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

void fs_opendir(fuse_req_t req, fuse_ino_t ino,
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
			err = fs_stat_path(fs, NULL, path, &st);
		if (!err && st.type != STORE_DIR)
			err = -ENOTDIR;
		if (err) {
			fs_reply_err(fs, req, err);
			return;
		}
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		fs_reply_err(fs, req, ENOMEM);
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
	struct store_txn *txn;     /* plus: the listing's read transaction,
				    * also for the subdirectory counts */
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
	fs_fill_attr(0, st, &e.attr);
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
		if (st->type == STORE_DIR)
			e.attr.st_nlink = fs_dir_nlink(c->fs, c->txn, path);
		e.entry_timeout = fs_cache_timeout(st);
		e.attr_timeout = fs_attr_timeout(c->fs, e.ino, st);
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
	c.buf = fs_rbuf_get(size);
	if (!c.buf) {
		fs_reply_err(fs, req, ENOMEM);
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
		fs_reply_err(fs, req, err);
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
	/* readdirplus counts the subdirectories of each directory listed
	 * (its nlink) inside the listing: one read transaction for both,
	 * as LMDB allows one per thread */
	if (plus)
		err = store_txn_begin(fs->store, 0, &c.txn);
	if (!err)
		err = store_list(fs->store, c.txn, path, after, rd_add, &c);
	if (c.txn)
		store_txn_abort(&c.txn);
	if (err > 0)
		err = 0;
done:
	pthread_mutex_unlock(&d->lock);
	ns_unlock(fs);
	if (err && c.pos == 0) {
		fs_reply_err(fs, req, err);
	} else if (fuse_reply_buf(req, c.buf, c.pos) != 0) {
		/* the kernel never saw these entries: drop their refs */
		size_t i;

		for (i = 0; i < c.nrefs; i++)
			fs_itab_forget(&fs->itab, c.refs[i], 1);
	}
	free(c.refs);
}

void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 0);
}

void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
		    off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 1);
}

void fs_releasedir(fuse_req_t req, fuse_ino_t ino,
		   struct fuse_file_info *fi)
{
	struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;

	(void)ino;
	fs_count(fs_of(req), FS_OP_RELEASEDIR);
	pthread_mutex_destroy(&d->lock);
	free(d);
	fuse_reply_err(req, 0);
}

void fs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0);
}

