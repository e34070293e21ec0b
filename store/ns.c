/*
 * ns.c — the namespace: reads, creates, writes, deletes, renames and
 * xattrs of records by path, each a short transaction (or part of the
 * caller's) built on the core in store.c.
 *
 * Every change goes through store_rec_write_local, which versions it and
 * appends its binlog entry in the same transaction. A change sets the
 * fields it changes to one new version (store_tick) and keeps the
 * others' versions, so that replicas merge it field by field (replica.c):
 *   write (put, truncate)   content, times (mtime), life (deadline renewed)
 *   chmod, chown            owner
 *   utimens                 times (and life when mtime is set: a touch)
 *   TTL set, touch          life
 *   xattr set or remove     that xattr's entry
 *   create, mkdir, rename's destination   every field; the xattr floor
 *   delete                  content (a tombstone; the other fields stay)
 * Visibility is derived from the records (store.c: store_rec_live), so
 * a directory with something live under it is there whatever its own
 * record says; rmdir refuses such a directory (ENOTEMPTY).
 *
 * Xattrs (user.*) live in the record as a sorted run of versioned
 * entries (record.c); a removed one stays as an entry without a value.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "common/log.h"
#include "store/store_int.h"



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
	int64_t now;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	struct rec r;
	int err = store_path_ok(s, dir), rc;

	if (err)
		return err;
	err = store_txn_enter(s, &t, 0, &own, &own_mem);
	if (err)
		return err;
	now = store_txn_now(t);
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
		if (rec_decode_local(v.mv_data, v.mv_size, &r)) {
			err = -EIO;
			break;
		}
		if (r.st.type != STORE_DIR && r.flags & REC_KIDS) {
			char child[PATH_MAX + 1];
			struct store_stat st;
			int below;

			store_key_path(&k, child);
			below = store_live_below(t, child);
			if (below < 0) {
				err = below;
				break;
			}
			if (store_rec_view(&r, below, now, &st))
				continue;
			r.st = st;
		} else if (!store_live(&r, now)) {
			continue;
		}
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
 * (the caller's or our own), check that something is visible at path,
 * and give its stored record in r and what it shows as in *view. End
 * with store_txn_leave(t, own, err) whatever this returned. */
static int write_enter(struct store *s, struct store_txn **tp,
		       struct store_txn **own, struct store_txn *mem,
		       const char *path, struct rec *r, struct store_stat *view)
{
	int err = store_txn_enter(s, tp, 1, own, mem);

	if (err) {
		*own = NULL;
		return err;
	}
	err = store_rec_live(*tp, path, r);
	if (err)
		return err;
	*view = r->st;
	return r->derived ? store_rec_get(*tp, path, r) : 0;
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
 * (the stored record, invisible, or type STORE_NONE). */
static int do_create(struct store_txn *t, const char *path,
		     enum store_type type, const void *val, size_t len,
		     const struct store_attr *a, unsigned mask, unsigned flags,
		     const struct rec *found)
{
	struct store_attr none = { 0 };
	struct store_version v;
	struct rec old = *found, nr;
	uint64_t dir_ttl;
	int err;

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
	v = store_tick(t);
	memset(&nr, 0, sizeof(nr));
	store_stat_new(t->s, &nr.st, type, a, mask, store_txn_now(t));
	nr.st.size = len;
	nr.value = val;
	if (type == STORE_FILE) {
		nr.st.ttl_ms = mask & STORE_ATTR_TTL ? a->ttl_ms :
			       dir_ttl ? dir_ttl : t->s->opts.default_ttl_ms;
		store_ttl_renew(&nr.st, store_txn_now(t));
	} else if (type == STORE_DIR && (mask & STORE_ATTR_TTL)) {
		nr.st.ttl_ms = a->ttl_ms;
	}
	return store_rec_create(t, path, &nr,
				old.st.type != STORE_NONE ? &old : NULL, v);
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
	if (a && mask & STORE_ATTR_TTL && a->ttl_ms > STORE_TTL_MAX_MS)
		return -EINVAL;
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
			struct store_version v = store_tick(t);
			struct rec nr = r;

			nr.st.size = len;
			nr.value = val;
			nr.st.mtime_ns = nr.st.ctime_ns = store_txn_now(t);
			nr.st.fver[STORE_F_CONTENT] = v;
			nr.st.fver[STORE_F_TIMES] = v;
			nr.st.fver[STORE_F_LIFE] = v;
			if (a && mask & STORE_ATTR_MODE) {
				nr.st.mode = S_IFREG | (a->mode & 07777);
				nr.st.fver[STORE_F_OWNER] = v;
			}
			if (a && mask & STORE_ATTR_TTL)
				nr.st.ttl_ms = a->ttl_ms;
			store_ttl_renew(&nr.st, store_txn_now(t));
			err = store_rec_write_local(t, path, &nr, &r, v);
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
	struct store_version v;
	struct store_stat view;
	struct rec r, nr;
	void *val = NULL;
	int err = store_path_ok(s, path);

	if (err)
		return err;
	if (store_reserved(path))
		return -EPERM;
	if (mask & STORE_ATTR_SIZE && a->size > s->opts.max_value)
		return -EFBIG;
	if (mask & STORE_ATTR_TTL && a->ttl_ms > STORE_TTL_MAX_MS)
		return -EINVAL;
	err = write_enter(s, &t, &own, &own_mem, path, &r, &view);
	if (err)
		goto out;
	if (mask & STORE_ATTR_SIZE && view.type != STORE_FILE) {
		err = view.type == STORE_DIR ? -EISDIR : -EINVAL;
		goto out;
	}
	v = store_tick(t);
	nr = r;
	if (mask & (STORE_ATTR_MODE | STORE_ATTR_UID | STORE_ATTR_GID)) {
		/* a derived directory keeps its shown mode unless changed */
		if (r.derived || !r.st.fver[STORE_F_OWNER].node)
			nr.st.mode = view.mode;
		if (mask & STORE_ATTR_MODE)
			nr.st.mode = (nr.st.mode & S_IFMT) | (a->mode & 07777);
		if (mask & STORE_ATTR_UID)
			nr.st.uid = a->uid;
		if (mask & STORE_ATTR_GID)
			nr.st.gid = a->gid;
		nr.st.fver[STORE_F_OWNER] = v;
	}
	if (mask & (STORE_ATTR_MTIME | STORE_ATTR_ATIME)) {
		if (mask & STORE_ATTR_MTIME)
			nr.st.mtime_ns = a->mtime_ns;
		if (mask & STORE_ATTR_ATIME)
			nr.st.atime_ns = a->atime_ns;
		nr.st.fver[STORE_F_TIMES] = v;
	}
	nr.st.ctime_ns = mask & STORE_ATTR_CTIME ? a->ctime_ns :
						    store_txn_now(t);
	if (mask & STORE_ATTR_TTL) {
		nr.st.ttl_ms = a->ttl_ms;
		nr.st.fver[STORE_F_LIFE] = v;
	}
	if (mask & STORE_ATTR_SIZE) {
		val = calloc(1, a->size ? a->size : 1);
		if (!val) {
			err = -ENOMEM;
			goto out;
		}
		memcpy(val, r.value, a->size < r.st.size ? a->size : r.st.size);
		nr.st.size = a->size;
		nr.value = val;
		nr.st.fver[STORE_F_CONTENT] = v;
		if (!(mask & STORE_ATTR_MTIME)) {
			nr.st.mtime_ns = store_txn_now(t);
			nr.st.fver[STORE_F_TIMES] = v;
		}
	}
	if (view.type == STORE_FILE &&
	    mask & (STORE_ATTR_MTIME | STORE_ATTR_SIZE | STORE_ATTR_TTL |
		    STORE_ATTR_TOUCH)) {
		store_ttl_renew(&nr.st, store_txn_now(t));
		nr.st.fver[STORE_F_LIFE] = v;
	}
	/* A change must carry its version in a field (peers check it): a
	 * touch of a directory or symlink, or a ctime alone, stamps the
	 * times. */
	if (!(mask & (STORE_ATTR_MODE | STORE_ATTR_UID | STORE_ATTR_GID |
		      STORE_ATTR_MTIME | STORE_ATTR_ATIME | STORE_ATTR_TTL |
		      STORE_ATTR_SIZE)) &&
	    vcmp(&nr.st.fver[STORE_F_LIFE], &v) != 0)
		nr.st.fver[STORE_F_TIMES] = v;
	err = store_rec_write_local(t, path, &nr, &r, v);
out:
	free(val);
	return store_txn_leave(t, own, err);
}

/* Write a tombstone over the stored record `r` at `path`: the content
 * only; owner, times, life and xattrs keep their versions (a directory
 * that something live keeps visible still shows them). */
static int tombstone_local(struct store_txn *t, const char *path,
			   const struct rec *r)
{
	struct store_version v;
	struct rec nr = *r;

	nr.st.type = STORE_TOMBSTONE;
	nr.st.size = 0;
	nr.value = NULL;
	if (r->st.type == STORE_DIR) {
		/* a deleted directory may keep deleted children */
		int below = store_keys_below(t, path);

		if (below < 0)
			return below;
		nr.flags = below ? REC_KIDS : 0;
	}
	v = store_tick(t);
	nr.st.ctime_ns = store_txn_now(t);
	nr.st.fver[STORE_F_CONTENT] = v;
	return store_rec_write_local(t, path, &nr, r, v);
}

/* Collect the paths of `dir`'s visible descendants (children and
 * deeper), parents before children. */
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

struct desc_ctx {
	struct store_txn *t;
	struct store_paths *pv;
};

/* Collect a key under the walked directory if it shows: live, or dead
 * with something live under it (a derived directory). */
static int desc_add(void *arg, const MDB_val *k, const MDB_val *v)
{
	struct desc_ctx *d = arg;
	char path[PATH_MAX + 1];
	struct rec r;
	int below;

	if (rec_decode_local(v->mv_data, v->mv_size, &r))
		return 0;
	store_key_path(k, path);
	if (!store_txn_live(d->t, &r)) {
		if (!(r.flags & REC_KIDS))
			return 0;
		below = store_live_below(d->t, path);
		if (below <= 0)
			return below; /* not visible, or an error */
	}
	return store_paths_add(d->pv, path, k->mv_size);
}

static int descendants(struct store_txn *t, const char *dir,
		       struct store_paths *pv)
{
	struct desc_ctx d = { t, pv };
	int err = store_walk_below(t, dir, desc_add, &d);

	if (!err && pv->n > 1)
		qsort(pv->v, pv->n, sizeof(*pv->v), cmp_depth);
	return err;
}

int store_del(struct store *s, struct store_txn *t, const char *path,
	      unsigned flags)
{
	struct store_txn *own, own_mem;
	struct store_paths pv = { 0 };
	struct store_stat view;
	struct rec r;
	int err = store_path_ok(s, path);

	if (err)
		return err;
	if (strcmp(path, "/") == 0)
		return -EBUSY;
	if (store_reserved(path))
		return -EPERM;
	err = write_enter(s, &t, &own, &own_mem, path, &r, &view);
	if (err)
		goto out;
	if (flags & STORE_DEL_DIR && view.type != STORE_DIR) {
		err = -ENOTDIR;
		goto out;
	}
	if (flags & STORE_DEL_FILE && view.type == STORE_DIR) {
		err = -EISDIR;
		goto out;
	}
	if (view.type == STORE_DIR) {
		if (flags & STORE_DEL_RECURSIVE) {
			err = descendants(t, path, &pv);
			/* Deepest first: the binlog never shows a live child
			 * under a deleted directory (not needed for
			 * convergence, which derives directories, but it
			 * keeps every prefix of the binlog a sane tree). */
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
			err = store_live_below(t, path);
			if (err > 0)
				err = -ENOTEMPTY;
			if (err)
				goto out;
		}
	}
	err = tombstone_local(t, path, &r);
out:
	store_paths_free(&pv);
	return store_txn_leave(t, own, err);
}

/* The xattr run of a record moved to a new path: the floor at v, then
 * the source's visible entries at v. *outp is malloc'd. */
static int xattrs_moved(const struct rec *src, struct store_version v,
			unsigned char **outp, size_t *lenp)
{
	struct store_version floor = xattr_floor(src->xattrs, src->st.xattr_len);
	unsigned char *out = malloc(src->st.xattr_len + XATTR_HDR_LEN);
	size_t n;

	if (!out)
		return -ENOMEM;
	n = xattr_put(out, NULL, 0, NULL, 0, 1, v);
	for (size_t off = 0; off < src->st.xattr_len;) {
		struct xattr_ent e;

		off += xattr_at(src->xattrs, off, &e);
		if (xattr_visible(&e, floor))
			n += xattr_put(out + n, e.name, e.name_len, e.value,
				       e.value_len, 0, v);
	}
	*outp = out;
	*lenp = n;
	return 0;
}

/* Move what shows at `from` to `to` as a new local change (every field
 * at a new version; its type is what `from` shows as, so a derived
 * directory arrives as a directory) and leave a tombstone at `from`. */
static int move_one(struct store_txn *t, const char *from, const char *to)
{
	struct store_version v;
	struct rec r, old, nr;
	unsigned char *x = NULL, *copy = NULL;
	size_t xlen = 0;
	int err, have_old;

	err = store_rec_live(t, from, &r);
	if (err)
		return err;
	have_old = store_rec_get(t, to, &old) == 0;
	v = store_tick(t);
	nr = r;
	nr.derived = 0;
	nr.flags = 0;
	for (int i = 0; i < STORE_FIELDS; i++)
		nr.st.fver[i] = v;
	nr.st.ctime_ns = store_txn_now(t);
	/* store_rec_write_local may move LMDB pages: copy what we need. */
	err = xattrs_moved(&r, v, &x, &xlen);
	if (!err) {
		copy = malloc(r.st.size ? r.st.size : 1);
		if (!copy)
			err = -ENOMEM;
	}
	if (!err) {
		if (r.st.size)
			memcpy(copy, r.value, r.st.size);
		nr.value = copy;
		nr.xattrs = x;
		nr.st.xattr_len = xlen;
		if (have_old && nr.st.type != STORE_DIR) {
			err = store_keys_below(t, to);
			if (err > 0)
				nr.flags |= REC_KIDS;
			err = err < 0 ? err : 0;
		}
	}
	if (!err)
		err = store_rec_write_local(t, to, &nr, have_old ? &old : NULL, v);
	free(x);
	free(copy);
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
	struct store_paths pv = { 0 };
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
			err = store_live_below(t, to);
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
	store_paths_free(&pv);
	return store_txn_leave(t, own, err);
}

/* ---- xattrs ---- */

/* Find `name` in an xattr run (removed entries included): 1 and *e, or
 * 0 and *at = where it would go, keeping the run sorted. */
static int xattr_find(const unsigned char *x, size_t len, const char *name,
		      size_t nlen, struct xattr_ent *e, size_t *at)
{
	for (size_t off = 0; off < len;) {
		size_t el = xattr_at(x, off, e);
		int c = xattr_name_cmp(e->name, e->name_len,
				       (const unsigned char *)name, nlen);

		*at = off;
		if (c == 0)
			return 1;
		if (c > 0)
			return 0;
		off += el;
		*at = off;
	}
	*at = len;
	return 0;
}

ssize_t store_xattr_get(struct store *s, struct store_txn *t,
			const char *path, const char *name, void *buf,
			size_t size)
{
	struct store_txn *own, own_mem;
	struct xattr_ent e;
	struct rec r;
	size_t at;
	ssize_t n = 0;
	int err = read_enter(s, &t, &own, &own_mem, path, &r);

	if (err)
		goto out;
	if (!xattr_find(r.xattrs, r.st.xattr_len, name, strlen(name), &e, &at) ||
	    !xattr_visible(&e, xattr_floor(r.xattrs, r.st.xattr_len))) {
		err = -ENODATA;
	} else if (size == 0) {
		n = e.value_len;
	} else if (size < e.value_len) {
		err = -ERANGE;
	} else {
		memcpy(buf, e.value, e.value_len);
		n = e.value_len;
	}
out:
	err = store_txn_done(t, own, err);
	return err ? err : n;
}

/* Rewrite the record with the xattr `name` set to val (NULL: removed,
 * which keeps a versioned entry without a value). */
static int xattr_change(struct store *s, struct store_txn *t,
			const char *path, const char *name, const void *val,
			size_t len, int flags)
{
	struct store_txn *own, own_mem;
	size_t nlen = strlen(name), at, elen = 0, xl;
	struct store_version v;
	struct store_stat view;
	struct xattr_ent e;
	unsigned char *x = NULL;
	struct rec r, nr;
	int found, err = store_path_ok(s, path);

	if (err)
		return err;
	if (nlen == 0 || nlen > 255)
		return -ERANGE;
	if (len > STORE_XATTR_VALUE_MAX)
		return -E2BIG;
	if (store_reserved(path))
		return -EPERM;
	err = write_enter(s, &t, &own, &own_mem, path, &r, &view);
	if (err)
		goto out;
	found = xattr_find(r.xattrs, r.st.xattr_len, name, nlen, &e, &at);
	if (found)
		elen = XATTR_HDR_LEN + e.name_len + e.value_len;
	if (found && !xattr_visible(&e, xattr_floor(r.xattrs, r.st.xattr_len)))
		found = 0;
	if (!found && (!val || flags & XATTR_REPLACE)) {
		err = -ENODATA;
		goto out;
	}
	if (found && val && flags & XATTR_CREATE) {
		err = -EEXIST;
		goto out;
	}
	/* The run before the entry, the new entry, the run after it; and a
	 * copy of the value (the record's bytes move when it is rewritten). */
	x = malloc(r.st.xattr_len + XATTR_HDR_LEN + nlen + len + r.st.size + 1);
	if (!x) {
		err = -ENOMEM;
		goto out;
	}
	v = store_tick(t);
	memcpy(x, r.xattrs, at);
	xl = at + xattr_put(x + at, (const unsigned char *)name, nlen, val,
			    val ? len : 0, !val, v);
	memcpy(x + xl, r.xattrs + at + elen, r.st.xattr_len - at - elen);
	xl += r.st.xattr_len - at - elen;
	memcpy(x + xl, r.value, r.st.size);
	nr = r;
	nr.xattrs = x;
	nr.st.xattr_len = xl;
	nr.value = x + xl;
	nr.st.ctime_ns = store_txn_now(t);
	err = store_rec_write_local(t, path, &nr, &r, v);
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

	struct store_version floor = { 0, 0 };

	if (!err)
		floor = xattr_floor(r.xattrs, r.st.xattr_len);
	for (size_t off = 0; !err && off < r.st.xattr_len;) {
		struct xattr_ent e;

		off += xattr_at(r.xattrs, off, &e);
		if (!xattr_visible(&e, floor))
			continue;
		if (size) {
			if (need + e.name_len + 1 > size) {
				err = -ERANGE;
				break;
			}
			memcpy(buf + need, e.name, e.name_len);
			buf[need + e.name_len] = '\0';
		}
		need += e.name_len + 1;
	}
	err = store_txn_done(t, own, err);
	return err ? err : (ssize_t)need;
}
