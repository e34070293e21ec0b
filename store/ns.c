/*
 * ns.c — the namespace: reads, creates, writes, deletes, renames and
 * xattrs of records by path, each a short transaction (or part of the
 * caller's) built on the core in store.c.
 *
 * Every change goes through store_rec_write_local, which versions it and
 * appends its binlog entry in the same transaction. Deletes are
 * tombstones. rmdir checks for live children; a recursive delete
 * tombstones deepest first and a rename moves parents first, so the
 * binlog never shows a live record under a dead directory.
 *
 * Xattrs (user.*) live in the record as a run of { u8 name_len,
 * u32 value_len, name, value } (record.c): a change rewrites the record.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "common/log.h"
#include "store/store_int.h"

#define XATTR_VALUE_MAX (64 * 1024)


/*
 * The start of every read of one record: check the path, enter the
 * caller's transaction or one of our own, find the visible record. End
 * with store_txn_done(t, own, err) whatever this returned: before a
 * transaction exists t and own are left as they were (own NULL).
 */
static int read_enter(struct store *s, struct store_txn **tp,
		      struct store_txn **own, struct store_txn *mem,
		      const char *path, struct rec *r)
{
	int err = store_path_ok(s, path);

	*own = NULL;
	if (err)
		return err;
	err = store_txn_enter(s, tp, 0, own, mem);
	if (err)
		return err;
	return store_rec_live(*tp, path, r);
}

int store_stat(struct store *s, struct store_txn *t, const char *path,
	       struct store_stat *st)
{
	struct store_txn *own, own_mem;
	struct rec r;
	int err = read_enter(s, &t, &own, &own_mem, path, &r);

	if (!err)
		*st = r.st;
	return store_txn_done(t, own, err);
}

int store_get(struct store *s, struct store_txn *t, const char *path,
	      struct store_stat *st, void **valp, size_t *lenp)
{
	struct store_txn *own, own_mem;
	struct rec r;
	int err = read_enter(s, &t, &own, &own_mem, path, &r);

	if (!err && r.st.type == STORE_DIR)
		err = -EISDIR;
	if (!err) {
		void *p = malloc(r.st.size ? r.st.size : 1);

		if (!p) {
			err = -ENOMEM;
		} else {
			memcpy(p, r.value, r.st.size);
			*valp = p;
			*lenp = r.st.size;
			if (st)
				*st = r.st;
		}
	}
	return store_txn_done(t, own, err);
}

ssize_t store_read(struct store *s, struct store_txn *t, const char *path,
		   uint64_t off, void *buf, size_t len)
{
	struct store_txn *own, own_mem;
	struct rec r;
	ssize_t n = 0;
	int err = read_enter(s, &t, &own, &own_mem, path, &r);

	if (!err && r.st.type == STORE_DIR)
		err = -EISDIR;
	if (!err && off < r.st.size) {
		n = (ssize_t)(r.st.size - off < len ? r.st.size - off : len);
		memcpy(buf, r.value + off, (size_t)n);
	}
	err = store_txn_done(t, own, err);
	return err ? err : n;
}

int store_list(struct store *s, struct store_txn *t, const char *dir,
	       const char *after, store_list_cb cb, void *arg)
{
	struct store_txn *own, own_mem;
	char prefix[PATH_MAX + STORE_NAME_MAX + 2];
	size_t plen, dlen = strlen(dir);
	int64_t now = store_now_ns();
	MDB_cursor *c = NULL;
	MDB_val k, v;
	struct rec r;
	int err = store_path_ok(s, dir), rc;

	if (err)
		return err;
	err = store_txn_enter(s, &t, 0, &own, &own_mem);
	if (err)
		return err;
	err = store_rec_live(t, dir, &r);
	if (err)
		goto out;
	if (r.st.type != STORE_DIR) {
		err = -ENOTDIR;
		goto out;
	}
	plen = store_child_prefix(dir, dlen, prefix);
	k.mv_size = plen;
	if (after) {
		size_t alen = strlen(after);

		if (alen > STORE_NAME_MAX) {
			err = -EINVAL;
			goto out;
		}
		memcpy(prefix + plen, after, alen);
		k.mv_size = plen + alen;
	}
	k.mv_data = prefix;
	rc = mdb_cursor_open(t->txn, s->dbi_rec, &c);
	if (rc) {
		err = store_err(rc);
		goto out;
	}
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && after && k.mv_size == plen + strlen(after) &&
	    memcmp(k.mv_data, prefix, k.mv_size) == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size <= plen || memcmp(k.mv_data, prefix, plen))
			break;
		/* Keys of deeper descendants of a sibling such as "/a\0b"
		 * vs "/a/b\0c" never start with the prefix "/a\0"; but a
		 * child name cannot hold NUL, so check it. */
		if (memchr((char *)k.mv_data + plen, '\0', k.mv_size - plen))
			continue;
		if (rec_decode(v.mv_data, v.mv_size, &r)) {
			err = -EIO;
			break;
		}
		if (!store_visible(&r.st, now))
			continue;
		err = cb(arg, (char *)k.mv_data + plen, k.mv_size - plen, &r.st);
		if (err)
			break;
	}
	if (rc && rc != MDB_NOTFOUND)
		err = store_err(rc);
	mdb_cursor_close(c);
out:
	return store_txn_done(t, own, err);
}

/* ---- writes ---- */

/* The start of a change to an existing record: enter a write transaction
 * (the caller's or our own) and find the visible record. End with
 * store_txn_leave(t, own, err) whatever this returned. */
static int write_enter(struct store *s, struct store_txn **tp,
		       struct store_txn **own, struct store_txn *mem,
		       const char *path, struct rec *r)
{
	int err = store_txn_enter(s, tp, 1, own, mem);

	if (err) {
		*own = NULL;
		return err;
	}
	return store_rec_live(*tp, path, r);
}

static int check_name(struct store *s, const char *path)
{
	int err = store_path_ok(s, path);

	if (err)
		return err;
	if (strcmp(path, "/") == 0)
		return -EEXIST;
	if (store_reserved(path))
		return -EPERM;
	return 0;
}

/* Create at `path`; `found` is what rec_live found there just before
 * (an invisible record, or type STORE_NONE). */
static int do_create(struct store_txn *t, const char *path,
		     enum store_type type, const void *val, size_t len,
		     const struct store_attr *a, unsigned mask, unsigned flags,
		     const struct rec *found)
{
	struct store_attr none = { 0 };
	struct store_stat st;
	uint64_t dir_ttl;
	struct rec old = *found;
	int have_old, err;

	if (!a)
		a = &none;
	err = store_parent_ready(t, path, flags & STORE_PARENTS, a, mask, &dir_ttl);
	if (err < 0)
		return err;
	/* Creating parents wrote to the tree: look again. */
	if (err > 0) {
		err = store_rec_get(t, path, &old);
		if (err && err != -ENOENT)
			return err;
	}
	have_old = old.st.type != STORE_NONE;
	store_stat_new(t->s, &st, type, a, mask);
	st.size = len;
	if (type == STORE_FILE) {
		st.ttl_ms = mask & STORE_ATTR_TTL ? a->ttl_ms :
			    dir_ttl ? dir_ttl : t->s->opts.default_ttl_ms;
		store_ttl_renew(&st, st.ctime_ns);
	} else if (type == STORE_DIR && (mask & STORE_ATTR_TTL)) {
		st.ttl_ms = a->ttl_ms;
	}
	return store_rec_write_local(t, path, &st, have_old ? &old : NULL, NULL,
			       val);
}

int store_put(struct store *s, struct store_txn *t, const char *path,
	      const void *val, size_t len, const struct store_attr *a,
	      unsigned mask, unsigned flags)
{
	struct store_txn *own, own_mem;
	struct rec r;
	int err = check_name(s, path);

	if (err)
		return err == -EEXIST ? -EISDIR : err;
	if (len > s->opts.max_value)
		return -EFBIG;
	err = store_txn_enter(s, &t, 1, &own, &own_mem);
	if (err)
		return err;
	err = store_rec_live(t, path, &r);
	if (err == -ENOENT) {
		if (flags & STORE_CREATE)
			err = do_create(t, path, STORE_FILE, val, len, a, mask,
					flags, &r);
	} else if (err == 0) {
		if (flags & STORE_EXCL && flags & STORE_CREATE) {
			err = -EEXIST;
		} else if (r.st.type == STORE_DIR) {
			err = -EISDIR;
		} else if (r.st.type != STORE_FILE) {
			err = -EINVAL;
		} else {
			struct store_stat st = r.st;

			st.size = len;
			st.mtime_ns = st.ctime_ns = store_now_ns();
			if (a && mask & STORE_ATTR_MODE)
				st.mode = S_IFREG | (a->mode & 07777);
			if (a && mask & STORE_ATTR_TTL)
				st.ttl_ms = a->ttl_ms;
			store_ttl_renew(&st, st.ctime_ns);
			err = store_rec_write_local(t, path, &st, &r, r.xattrs, val);
		}
	}
	return store_txn_leave(t, own, err);
}

int store_mknod(struct store *s, struct store_txn *t, const char *path,
		enum store_type type, const char *target,
		const struct store_attr *a, unsigned mask, unsigned flags)
{
	struct store_txn *own, own_mem;
	size_t len = 0;
	struct rec r;
	int err;

	if (type != STORE_FILE && type != STORE_DIR && type != STORE_SYMLINK)
		return -EINVAL;
	if (type == STORE_SYMLINK) {
		if (!target || !*target)
			return -ENOENT;
		len = strlen(target);
		if (len >= PATH_MAX)
			return -ENAMETOOLONG;
	}
	err = check_name(s, path);
	if (err == -EEXIST && type == STORE_DIR && flags & STORE_PARENTS)
		return 0;
	if (err)
		return err;
	err = store_txn_enter(s, &t, 1, &own, &own_mem);
	if (err)
		return err;
	err = store_rec_live(t, path, &r);
	if (err == 0)
		err = type == STORE_DIR && flags & STORE_PARENTS &&
				      r.st.type == STORE_DIR ?
			      0 :
			      -EEXIST;
	else if (err == -ENOENT)
		err = do_create(t, path, type, target, len, a, mask, flags,
				&r);
	return store_txn_leave(t, own, err);
}

int store_setattr(struct store *s, struct store_txn *t, const char *path,
		  const struct store_attr *a, unsigned mask)
{
	struct store_txn *own, own_mem;
	struct store_stat st;
	struct rec r;
	void *val = NULL;
	int64_t now = store_now_ns();
	int err = store_path_ok(s, path);

	if (err)
		return err;
	if (store_reserved(path))
		return -EPERM;
	if (mask & STORE_ATTR_SIZE && a->size > s->opts.max_value)
		return -EFBIG;
	err = write_enter(s, &t, &own, &own_mem, path, &r);
	if (err)
		goto out;
	st = r.st;
	if (mask & STORE_ATTR_MODE)
		st.mode = (st.mode & S_IFMT) | (a->mode & 07777);
	if (mask & STORE_ATTR_UID)
		st.uid = a->uid;
	if (mask & STORE_ATTR_GID)
		st.gid = a->gid;
	if (mask & STORE_ATTR_MTIME)
		st.mtime_ns = a->mtime_ns;
	st.ctime_ns = mask & STORE_ATTR_CTIME ? a->ctime_ns : now;
	if (mask & STORE_ATTR_TTL)
		st.ttl_ms = a->ttl_ms;
	if (mask & STORE_ATTR_SIZE) {
		if (st.type == STORE_DIR) {
			err = -EISDIR;
			goto out;
		}
		if (st.type != STORE_FILE) {
			err = -EINVAL;
			goto out;
		}
		val = calloc(1, a->size ? a->size : 1);
		if (!val) {
			err = -ENOMEM;
			goto out;
		}
		memcpy(val, r.value, a->size < r.st.size ? a->size : r.st.size);
		st.size = a->size;
		if (!(mask & STORE_ATTR_MTIME))
			st.mtime_ns = now;
	}
	if (st.type == STORE_FILE &&
	    mask & (STORE_ATTR_MTIME | STORE_ATTR_SIZE | STORE_ATTR_TTL |
		    STORE_ATTR_TOUCH))
		store_ttl_renew(&st, now);
	err = store_rec_write_local(t, path, &st, &r, r.xattrs, val ? val : r.value);
out:
	free(val);
	return store_txn_leave(t, own, err);
}

/* Write a tombstone over the record `r` at `path`. */
static int tombstone_local(struct store_txn *t, const char *path,
			   const struct rec *r)
{
	struct store_stat st;

	memset(&st, 0, sizeof(st));
	st.type = STORE_TOMBSTONE;
	st.mode = r->st.mode; /* kept: a concurrent child may revive it */
	st.uid = r->st.uid;
	st.gid = r->st.gid;
	st.mtime_ns = st.ctime_ns = store_now_ns();
	return store_rec_write_local(t, path, &st, r, NULL, NULL);
}

/* Does directory `dir` have a visible child? */
int store_has_children(struct store_txn *t, const char *dir)
{
	char prefix[PATH_MAX + 1];
	size_t plen = store_child_prefix(dir, strlen(dir), prefix);
	int64_t now = store_now_ns();
	MDB_cursor *c;
	MDB_val k = { plen, prefix }, v;
	struct rec r;
	int rc, found = 0;

	rc = mdb_cursor_open(t->txn, t->s->dbi_rec, &c);
	if (rc)
		return store_err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size <= plen || memcmp(k.mv_data, prefix, plen))
			break;
		if (rec_decode(v.mv_data, v.mv_size, &r) == 0 &&
		    store_visible(&r.st, now)) {
			found = 1;
			break;
		}
	}
	mdb_cursor_close(c);
	return found;
}

/* Collect the paths of `dir`'s live descendants (children and deeper),
 * parents before children. Returns a malloc'd array of malloc'd paths. */
struct pathvec {
	char **v;
	size_t n, cap;
};

static int pathvec_add(struct pathvec *pv, const char *p, size_t len)
{
	if (pv->n == pv->cap) {
		size_t cap = pv->cap ? pv->cap * 2 : 64;
		char **v = realloc(pv->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		pv->v = v;
		pv->cap = cap;
	}
	pv->v[pv->n] = strndup(p, len);
	if (!pv->v[pv->n])
		return -ENOMEM;
	pv->n++;
	return 0;
}

static void pathvec_free(struct pathvec *pv)
{
	for (size_t i = 0; i < pv->n; i++)
		free(pv->v[i]);
	free(pv->v);
	pv->v = NULL;
	pv->n = pv->cap = 0;
}

static int cmp_depth(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	size_t dx = 0, dy = 0;

	for (; *x; x++)
		dx += *x == '/';
	for (; *y; y++)
		dy += *y == '/';
	return dx < dy ? -1 : dx > dy;
}

static int descendants(struct store_txn *t, const char *dir,
		       struct pathvec *pv)
{
	size_t dlen = strlen(dir);
	char prefix[PATH_MAX + 1], path[PATH_MAX + 1];
	int64_t now = store_now_ns();
	MDB_cursor *c;
	MDB_val k, v;
	struct rec r;
	int rc, err = 0;

	rc = mdb_cursor_open(t->txn, t->s->dbi_rec, &c);
	if (rc)
		return store_err(rc);
	/* Children start with dir + '\0', deeper ones with dir + '/'. For
	 * the root that is every key but "/" itself. */
	for (int pass = 0; pass < 2 && !err; pass++) {
		size_t plen = 0;

		if (dlen > 1) {
			memcpy(prefix, dir, dlen);
			prefix[dlen] = pass == 0 ? '\0' : '/';
			plen = dlen + 1;
		} else if (pass == 1) {
			break;
		}
		k.mv_size = plen;
		k.mv_data = prefix;
		rc = plen ? mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) :
			    mdb_cursor_get(c, &k, &v, MDB_FIRST);
		for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen))
				break;
			if (k.mv_size == 1 && ((char *)k.mv_data)[0] == '/')
				continue;
			if (rec_decode(v.mv_data, v.mv_size, &r) ||
			    !store_visible(&r.st, now))
				continue;
			store_key_path(&k, path);
			err = pathvec_add(pv, path, k.mv_size);
			if (err)
				break;
		}
	}
	mdb_cursor_close(c);
	if (!err)
		qsort(pv->v, pv->n, sizeof(*pv->v), cmp_depth);
	return err;
}

int store_del(struct store *s, struct store_txn *t, const char *path,
	      unsigned flags)
{
	struct store_txn *own, own_mem;
	struct pathvec pv = { 0 };
	struct rec r;
	int err = store_path_ok(s, path);

	if (err)
		return err;
	if (strcmp(path, "/") == 0)
		return -EBUSY;
	if (store_reserved(path))
		return -EPERM;
	err = write_enter(s, &t, &own, &own_mem, path, &r);
	if (err)
		goto out;
	if (flags & STORE_DEL_DIR && r.st.type != STORE_DIR) {
		err = -ENOTDIR;
		goto out;
	}
	if (flags & STORE_DEL_FILE && r.st.type == STORE_DIR) {
		err = -EISDIR;
		goto out;
	}
	if (r.st.type == STORE_DIR) {
		if (flags & STORE_DEL_RECURSIVE) {
			err = descendants(t, path, &pv);
			/* Deepest first, so no live child is left under a
			 * tombstone at any moment of the binlog. */
			for (size_t i = pv.n; !err && i-- > 0;) {
				struct rec cr;

				err = store_rec_get(t, pv.v[i], &cr);
				if (!err)
					err = tombstone_local(t, pv.v[i], &cr);
			}
			if (err)
				goto out;
			err = store_rec_get(t, path, &r);
			if (err)
				goto out;
		} else {
			err = store_has_children(t, path);
			if (err > 0)
				err = -ENOTEMPTY;
			if (err)
				goto out;
		}
	}
	err = tombstone_local(t, path, &r);
out:
	pathvec_free(&pv);
	return store_txn_leave(t, own, err);
}

/* Move the record at `from` to `to` (a new local change) and leave a
 * tombstone at `from`. */
static int move_one(struct store_txn *t, const char *from, const char *to)
{
	struct rec r, old;
	struct store_stat st;
	int err, have_old;

	err = store_rec_get(t, from, &r);
	if (err)
		return err;
	have_old = store_rec_get(t, to, &old) == 0;
	st = r.st;
	st.ctime_ns = store_now_ns();
	/* rec_write_local may move LMDB pages: copy what we still need. */
	{
		size_t n = r.st.xattr_len + r.st.size;
		unsigned char *copy = malloc(n ? n : 1);

		if (!copy)
			return -ENOMEM;
		memcpy(copy, r.xattrs, r.st.xattr_len);
		memcpy(copy + r.st.xattr_len, r.value, r.st.size);
		err = store_rec_write_local(t, to, &st, have_old ? &old : NULL, copy,
				      copy + r.st.xattr_len);
		free(copy);
	}
	if (err)
		return err;
	err = store_rec_get(t, from, &r);
	if (err)
		return err;
	return tombstone_local(t, from, &r);
}

int store_rename(struct store *s, struct store_txn *t, const char *from,
		 const char *to, unsigned flags)
{
	struct store_txn *own, own_mem;
	struct pathvec pv = { 0 };
	struct rec rf, rt;
	size_t flen = strlen(from), tlen = strlen(to);
	uint64_t dir_ttl;
	int err = store_path_ok(s, from);

	if (!err)
		err = store_path_ok(s, to);
	if (err)
		return err;
	if (strcmp(from, "/") == 0 || strcmp(to, "/") == 0)
		return -EBUSY;
	if (store_reserved(from) || store_reserved(to))
		return -EPERM;
	if (tlen > flen && strncmp(to, from, flen) == 0 && to[flen] == '/')
		return -EINVAL;
	err = store_txn_enter(s, &t, 1, &own, &own_mem);
	if (err)
		return err;
	err = store_rec_live(t, from, &rf);
	if (err)
		goto out;
	if (strcmp(from, to) == 0)
		goto out;
	err = store_parent_ready(t, to, 0, NULL, 0, &dir_ttl);
	if (err)
		goto out;
	err = store_rec_live(t, to, &rt);
	if (err == 0) {
		if (flags & STORE_RENAME_NOREPLACE) {
			err = -EEXIST;
		} else if (rt.st.type == STORE_DIR && rf.st.type != STORE_DIR) {
			err = -EISDIR;
		} else if (rt.st.type != STORE_DIR && rf.st.type == STORE_DIR) {
			err = -ENOTDIR;
		} else if (rt.st.type == STORE_DIR) {
			err = store_has_children(t, to);
			if (err > 0)
				err = -ENOTEMPTY;
		}
		if (err)
			goto out;
	} else if (err != -ENOENT) {
		goto out;
	}
	if (rf.st.type == STORE_DIR) {
		err = descendants(t, from, &pv);
		if (err)
			goto out;
	}
	err = move_one(t, from, to);
	/* Parents first, so every moved child finds its parent. */
	for (size_t i = 0; !err && i < pv.n; i++) {
		char dst[PATH_MAX + 1];
		size_t sl = strlen(pv.v[i]) - flen;

		if (tlen + sl >= sizeof(dst) || tlen + sl > s->maxkey) {
			err = -ENAMETOOLONG;
			break;
		}
		memcpy(dst, to, tlen);
		memcpy(dst + tlen, pv.v[i] + flen, sl + 1);
		err = move_one(t, pv.v[i], dst);
	}
out:
	pathvec_free(&pv);
	return store_txn_leave(t, own, err);
}

/* ---- xattrs ---- */

/* Find `name` in an xattr run: offset of its entry, or -1. */
static long xattr_find(const unsigned char *x, size_t len, const char *name,
		       size_t nlen, size_t *entry_len, uint32_t *vlen)
{
	for (size_t off = 0; off < len;) {
		uint32_t vl;
		unsigned nl = x[off];

		memcpy(&vl, x + off + 1, 4);
		vl = le32toh(vl);
		if (nl == nlen && memcmp(x + off + 5, name, nlen) == 0) {
			*entry_len = 5 + nl + vl;
			*vlen = vl;
			return (long)off;
		}
		off += 5 + nl + vl;
	}
	return -1;
}

ssize_t store_xattr_get(struct store *s, struct store_txn *t,
			const char *path, const char *name, void *buf,
			size_t size)
{
	struct store_txn *own, own_mem;
	struct rec r;
	size_t elen;
	uint32_t vlen;
	long off;
	ssize_t n = 0;
	int err = read_enter(s, &t, &own, &own_mem, path, &r);

	if (err)
		goto out;
	off = xattr_find(r.xattrs, r.st.xattr_len, name, strlen(name), &elen,
			 &vlen);
	if (off < 0) {
		err = -ENODATA;
	} else if (size == 0) {
		n = vlen;
	} else if (size < vlen) {
		err = -ERANGE;
	} else {
		memcpy(buf, r.xattrs + off + 5 + strlen(name), vlen);
		n = vlen;
	}
out:
	err = store_txn_done(t, own, err);
	return err ? err : n;
}

/* Rewrite the record with the xattr `name` set to val (NULL: removed). */
static int xattr_change(struct store *s, struct store_txn *t,
			const char *path, const char *name, const void *val,
			size_t len, int flags)
{
	struct store_txn *own, own_mem;
	size_t nlen = strlen(name), elen = 0;
	unsigned char *x = NULL;
	struct store_stat st;
	uint32_t vlen;
	struct rec r;
	long off;
	int err = store_path_ok(s, path);

	if (err)
		return err;
	if (nlen == 0 || nlen > 255)
		return -ERANGE;
	if (len > XATTR_VALUE_MAX)
		return -E2BIG;
	if (store_reserved(path))
		return -EPERM;
	err = write_enter(s, &t, &own, &own_mem, path, &r);
	if (err)
		goto out;
	off = xattr_find(r.xattrs, r.st.xattr_len, name, nlen, &elen, &vlen);
	if (off < 0 && (!val || flags & XATTR_REPLACE)) {
		err = -ENODATA;
		goto out;
	}
	if (off >= 0 && val && flags & XATTR_CREATE) {
		err = -EEXIST;
		goto out;
	}
	st = r.st;
	x = malloc(r.st.xattr_len + 5 + nlen + len + r.st.size + 1);
	if (!x) {
		err = -ENOMEM;
		goto out;
	}
	/* The run without the old entry, then the new one, then a copy of
	 * the value (the record's bytes move when it is rewritten). */
	st.xattr_len = 0;
	if (off >= 0) {
		memcpy(x, r.xattrs, (size_t)off);
		memcpy(x + off, r.xattrs + off + elen,
		       r.st.xattr_len - off - elen);
		st.xattr_len = r.st.xattr_len - elen;
	} else {
		memcpy(x, r.xattrs, r.st.xattr_len);
		st.xattr_len = r.st.xattr_len;
	}
	if (val) {
		uint32_t le = htole32((uint32_t)len);

		x[st.xattr_len] = (unsigned char)nlen;
		memcpy(x + st.xattr_len + 1, &le, 4);
		memcpy(x + st.xattr_len + 5, name, nlen);
		memcpy(x + st.xattr_len + 5 + nlen, val, len);
		st.xattr_len += 5 + nlen + len;
	}
	memcpy(x + st.xattr_len, r.value, r.st.size);
	st.ctime_ns = store_now_ns();
	err = store_rec_write_local(t, path, &st, &r, x, x + st.xattr_len);
out:
	free(x);
	return store_txn_leave(t, own, err);
}

int store_xattr_set(struct store *s, struct store_txn *t, const char *path,
		    const char *name, const void *val, size_t len, int flags)
{
	return xattr_change(s, t, path, name, val ? val : "", len, flags);
}

int store_xattr_remove(struct store *s, struct store_txn *t,
		       const char *path, const char *name)
{
	return xattr_change(s, t, path, name, NULL, 0, 0);
}

ssize_t store_xattr_list(struct store *s, struct store_txn *t,
			 const char *path, char *buf, size_t size)
{
	struct store_txn *own, own_mem;
	struct rec r;
	size_t need = 0;
	int err = read_enter(s, &t, &own, &own_mem, path, &r);

	for (size_t off = 0; !err && off < r.st.xattr_len;) {
		uint32_t vl;
		unsigned nl = r.xattrs[off];

		memcpy(&vl, r.xattrs + off + 1, 4);
		vl = le32toh(vl);
		if (size) {
			if (need + nl + 1 > size) {
				err = -ERANGE;
				break;
			}
			memcpy(buf + need, r.xattrs + off + 5, nl);
			buf[need + nl] = '\0';
		}
		need += nl + 1;
		off += 5 + nl + vl;
	}
	err = store_txn_done(t, own, err);
	return err ? err : (ssize_t)need;
}
