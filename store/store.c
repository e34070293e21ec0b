/*
 * store.c — records, namespaces, binlog, clocks and TTL on one LMDB env.
 *
 * Files of a store directory:
 *   store.mdb        the LMDB environment (MDB_NOSUBDIR)
 *   store.mdb-lock   LMDB's lock file
 *   store.notify     the shared futex of notify.c
 *
 * Named databases:
 *   (main) "statefs" -> struct meta (format, node id, clock, sequences):
 *          in LMDB's main DB, whose root page every write transaction
 *          dirties anyway (it holds the named DBs' roots), so keeping
 *          the bookkeeping there costs no extra page per commit
 *   rec    key(path) -> record (record.c)
 *   log    u64 seq (MDB_INTEGERKEY) -> change (record.c)
 *   vv     u64 origin node (MDB_INTEGERKEY) -> u64 highest origin seq
 *
 * Keys. key(path) = dirname + '\0' + basename, and key("/") = "/". The
 * children of directory D are exactly the keys that start with
 * D + '\0' (for the root: '\0'), so a listing is one range scan of the
 * children; the deeper descendants of D start with D + '/' (used by
 * rename and recursive delete). Names hold no NUL, so no two paths share
 * a key, and a key longer than LMDB's maximum is refused (ENAMETOOLONG),
 * never truncated.
 *
 * Invariants:
 *  (1) An entry is in the binlog iff its change is committed: the record
 *      and its binlog entry are written in the same LMDB transaction.
 *  (2) The binlog sequence only grows; meta.log_last is the newest entry
 *      and meta.log_first the oldest kept (trimming never leaves a gap).
 *  (3) Every local change gets a clock value greater than any the store
 *      handed out or saw from a peer (meta.hlc), and origin_seq =
 *      ++meta.local_seq.
 *  (4) A record's version vector dominates the vector of every record it
 *      replaced at that key (a new write carries the old vector forward),
 *      so a tombstone is never undone by a write that did not see it.
 *  (5) Locally, every live record's parent is a live directory: creates
 *      check it, rmdir refuses a directory with live children, rename
 *      moves whole subtrees. Directories never expire (a directory's TTL
 *      is the default of its new files).
 *
 * Concurrency: LMDB serialises writers across processes and threads; read
 * transactions are MDB_NOTLS and pooled (pool_lock) so any thread can
 * reuse them. Visibility (live and not expired) is decided at every read
 * against the wall clock: an expired record is gone for every reader at
 * once, and store_sweep only reclaims the space later.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "store/store_int.h"

#define XATTR_VALUE_MAX (64 * 1024)

static __thread char last_error[512];

static void set_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void set_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
}

const char *store_last_error(void)
{
	return last_error[0] ? last_error : "no error";
}

/* The one place where LMDB's codes become errnos. */
int store_err(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_MAP_FULL:
		return -ENOSPC;
	case MDB_TXN_FULL:
		return -E2BIG;
	case MDB_MAP_RESIZED:
	case MDB_READERS_FULL:
		return -EAGAIN;
	case MDB_KEYEXIST:
		return -EEXIST;
	case MDB_BAD_VALSIZE:
		return -ENAMETOOLONG;
	}
	if (rc > 0)
		return -rc;
	log_msg(LOG_ERROR, "lmdb: %s", mdb_strerror(rc));
	return -EIO;
}

const char *store_strerror(int err)
{
	return strerror(err < 0 ? -err : err);
}

int64_t store_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int visible(const struct store_stat *st, int64_t now)
{
	return st->type != STORE_TOMBSTONE &&
	       (st->expires_ns == 0 || st->expires_ns > now);
}

static uint32_t type_ifmt(enum store_type type)
{
	switch (type) {
	case STORE_DIR:
		return S_IFDIR;
	case STORE_SYMLINK:
		return S_IFLNK;
	default:
		return S_IFREG;
	}
}

/* ---- paths and keys ---- */

int store_path_check(struct store *s, const char *path)
{
	size_t len = strlen(path);
	const char *p = path, *q;

	if (path[0] != '/')
		return -EINVAL;
	if (len == 1)
		return 0;
	while (*p == '/') {
		p++;
		q = strchrnul(p, '/');
		if (q == p || (q - p == 1 && p[0] == '.') ||
		    (q - p == 2 && p[0] == '.' && p[1] == '.'))
			return -EINVAL;
		if (q - p > STORE_NAME_MAX)
			return -ENAMETOOLONG;
		p = q;
	}
	if (s && len > s->maxkey)
		return -ENAMETOOLONG;
	return 0;
}

/* Key of a canonical path into buf (which holds PATH_MAX bytes). */
static size_t path_key(const char *path, size_t len, char *buf)
{
	const char *slash;

	if (len == 1) {
		buf[0] = '/';
		return 1;
	}
	memcpy(buf, path, len);
	slash = memrchr(path, '/', len);
	buf[slash - path] = '\0'; /* "/name" -> "\0name", "/a/b" -> "/a\0b" */
	return len;
}

/* Prefix of the children of directory `dir`: dir + '\0' ("\0" for /). */
static size_t child_prefix(const char *dir, size_t len, char *buf)
{
	if (len == 1) {
		buf[0] = '\0';
		return 1;
	}
	memcpy(buf, dir, len);
	buf[len] = '\0';
	return len + 1;
}

/* Rebuild the path of a key: the NUL (the last one) becomes '/'. */
static size_t key_path(const MDB_val *k, char *buf)
{
	const char *d = k->mv_data;
	size_t len = k->mv_size;

	if (len == 1 && d[0] == '/') {
		buf[0] = '/';
		buf[1] = '\0';
		return 1;
	}
	if (d[0] == '\0') {
		buf[0] = '/';
		memcpy(buf + 1, d + 1, len - 1);
	} else {
		memcpy(buf, d, len);
		((char *)memchr(buf, '\0', len))[0] = '/';
	}
	buf[len] = '\0';
	return len;
}

static const char *parent_of(const char *path, char *buf)
{
	const char *slash = strrchr(path, '/');

	if (slash == path)
		return "/";
	memcpy(buf, path, slash - path);
	buf[slash - path] = '\0';
	return buf;
}

/* ---- transactions ---- */

static char meta_key[] = "statefs";

static int meta_load(MDB_txn *txn, MDB_dbi dbi, struct meta *m)
{
	MDB_val k = { sizeof(meta_key) - 1, meta_key }, v;
	int rc = mdb_get(txn, dbi, &k, &v);

	if (rc)
		return rc;
	if (v.mv_size != sizeof(*m))
		return MDB_CORRUPTED;
	memcpy(m, v.mv_data, sizeof(*m));
	return 0;
}

static int meta_save(MDB_txn *txn, MDB_dbi dbi, const struct meta *m)
{
	MDB_val k = { sizeof(meta_key) - 1, meta_key },
		v = { sizeof(*m), (void *)m };

	return mdb_put(txn, dbi, &k, &v, 0);
}

static int read_txn(struct store *s, MDB_txn **txnp)
{
	MDB_txn *txn = NULL;
	int rc;

	pthread_mutex_lock(&s->pool_lock);
	if (s->npool)
		txn = s->pool[--s->npool];
	pthread_mutex_unlock(&s->pool_lock);
	if (txn) {
		rc = mdb_txn_renew(txn);
		if (rc == 0) {
			*txnp = txn;
			return 0;
		}
		mdb_txn_abort(txn);
	}
	return mdb_txn_begin(s->env, NULL, MDB_RDONLY, txnp);
}

static void read_txn_done(struct store *s, MDB_txn *txn)
{
	mdb_txn_reset(txn);
	pthread_mutex_lock(&s->pool_lock);
	if (s->npool < sizeof(s->pool) / sizeof(s->pool[0])) {
		s->pool[s->npool++] = txn;
		txn = NULL;
	}
	pthread_mutex_unlock(&s->pool_lock);
	if (txn)
		mdb_txn_abort(txn);
}

/*
 * A read transaction's struct lives in `mem` (the caller's stack) when
 * given, else it is allocated. A write transaction's struct comes from
 * s->wcache: only the holder of LMDB's writer lock touches it, so it
 * needs no lock of its own, and its buffers are reused from one commit
 * to the next.
 */
static int txn_begin(struct store *s, int write, struct store_txn **tp,
		     struct store_txn *mem)
{
	struct store_txn *t = NULL;
	MDB_txn *txn;
	int rc;

	if (!write) {
		t = mem ? mem : malloc(sizeof(*t));
		if (!t)
			return -ENOMEM;
		memset(t, 0, sizeof(*t));
		t->on_stack = mem != NULL;
		t->s = s;
		rc = read_txn(s, &t->txn);
		if (rc) {
			if (!mem)
				free(t);
			return store_err(rc);
		}
		*tp = t;
		return 0;
	}
	if (s->opts.readonly)
		return -EROFS;
	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc == MDB_MAP_RESIZED) {
		mdb_env_set_mapsize(s->env, 0);
		rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	}
	if (rc)
		return store_err(rc);
	if (s->wcache) {
		t = s->wcache;
		s->wcache = NULL;
	} else {
		t = calloc(1, sizeof(*t));
		if (!t) {
			mdb_txn_abort(txn);
			return -ENOMEM;
		}
	}
	t->s = s;
	t->txn = txn;
	t->write = 1;
	t->err = t->meta_dirty = t->logged = 0;
	t->pend_len = 0;
	rc = meta_load(txn, s->dbi_meta, &t->meta);
	if (rc) {
		s->wcache = t;
		mdb_txn_abort(txn);
		return store_err(rc);
	}
	*tp = t;
	return 0;
}

int store_txn_begin(struct store *s, int write, struct store_txn **tp)
{
	return txn_begin(s, write, tp, NULL);
}

/* Give the struct back; for a write txn this must happen while its
 * LMDB transaction still holds the writer lock. */
static void txn_free(struct store_txn *t)
{
	if (t->write) {
		struct store *s = t->s;

		if (!s->wcache) {
			s->wcache = t;
			return;
		}
		free(t->pend);
		free(t->next);
		free(t);
	} else if (!t->on_stack) {
		free(t);
	}
}

void store_txn_abort(struct store_txn **tp)
{
	struct store_txn *t = *tp;

	MDB_txn *txn;

	if (!t)
		return;
	txn = t->txn;
	if (t->write) {
		txn_free(t);
		mdb_txn_abort(txn);
	} else {
		read_txn_done(t->s, txn);
		txn_free(t);
	}
	*tp = NULL;
}

/* Write the held-back binlog entry; `more` says whether another entry of
 * this transaction follows it. */
static int pend_flush(struct store_txn *t, int more)
{
	MDB_val k = { sizeof(t->pend_seq), &t->pend_seq };
	MDB_val v = { t->pend_len, t->pend };
	int rc;

	if (!t->pend_len)
		return 0;
	if (more)
		t->pend[1] |= STORE_CHANGE_MORE;
	rc = mdb_put(t->txn, t->s->dbi_log, &k, &v, MDB_APPEND);
	t->meta.log_bytes += t->pend_len;
	t->pend_len = 0;
	return rc;
}

/* Keep at most binlog_max entries and a quarter of the map in bytes:
 * drop the oldest. The byte cap is what lets a delete free space in a
 * full store, and what keeps a dead peer from filling it. Trimming waits
 * for a little slack past a cap and then removes a run at once, so the
 * oldest leaf pages are copied once per run, not once per commit. */
static int log_trim(struct store_txn *t)
{
	struct meta *m = &t->meta;
	uint64_t max = t->s->opts.binlog_max;
	uint64_t max_bytes = t->s->opts.map_size / 4;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	if (!m->log_first ||
	    (m->log_last - m->log_first + 1 <= max + max / 64 &&
	     m->log_bytes <= max_bytes))
		return 0;
	rc = mdb_cursor_open(t->txn, t->s->dbi_log, &c);
	if (rc)
		return rc;
	while (m->log_first <= m->log_last &&
	       (m->log_last - m->log_first + 1 > max ||
		m->log_bytes > max_bytes - max_bytes / 16)) {
		rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
		if (rc)
			break;
		m->log_bytes -= v.mv_size < m->log_bytes ? v.mv_size : m->log_bytes;
		rc = mdb_cursor_del(c, 0);
		if (rc)
			break;
		m->log_first++;
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int store_txn_commit(struct store_txn **tp)
{
	struct store_txn *t = *tp;
	struct store *s = t->s;
	uint64_t last = t->meta.log_last;
	int rc = 0, logged = t->logged;

	if (!t->write) {
		store_txn_abort(tp);
		return 0;
	}
	if (t->err) {
		rc = t->err;
		store_txn_abort(tp);
		return rc;
	}
	rc = pend_flush(t, 0);
	if (!rc && logged)
		rc = log_trim(t);
	if (!rc && t->meta_dirty)
		rc = meta_save(t->txn, s->dbi_meta, &t->meta);
	{
		MDB_txn *txn = t->txn;

		txn_free(t);
		*tp = NULL;
		if (rc) {
			mdb_txn_abort(txn);
		} else {
			/* sync=commit opens without MDB_NOSYNC: LMDB
			 * fsyncs inside the commit. */
			rc = mdb_txn_commit(txn);
		}
	}
	if (rc)
		return store_err(rc);
	if (logged)
		notify_post(s->notify, last);
	return 0;
}

/*
 * Every public call runs in the caller's transaction or in one of its
 * own. txn_enter() gives the transaction to use; txn_leave() commits or
 * aborts an own one, and poisons the caller's on error.
 */
static int txn_enter(struct store *s, struct store_txn **tp, int write,
		     struct store_txn **own, struct store_txn *mem)
{
	*own = NULL;
	if (*tp) {
		if ((*tp)->err)
			return (*tp)->err;
		if (write && !(*tp)->write)
			return -EBADF;
		return 0;
	}
	int err = txn_begin(s, write, own, mem);

	*tp = *own;
	return err;
}

static int txn_end(struct store_txn *t, struct store_txn *own, int err,
		   int write)
{
	if (own) {
		if (err < 0 || !own->write) {
			store_txn_abort(&own);
			return err;
		}
		int c = store_txn_commit(&own);

		return c ? c : err;
	}
	if (err < 0 && write && t && t->write)
		t->err = err;
	return err;
}

/* Reads never poison the caller's transaction. */
static int txn_done(struct store_txn *t, struct store_txn *own, int err)
{
	return txn_end(t, own, err, 0);
}

static int txn_leave(struct store_txn *t, struct store_txn *own, int err)
{
	return txn_end(t, own, err, 1);
}

/* ---- records ---- */

static int rec_get(struct store_txn *t, const char *path, struct rec *r)
{
	char key[PATH_MAX];
	MDB_val k, v;
	int rc;

	k.mv_size = path_key(path, strlen(path), key);
	k.mv_data = key;
	rc = mdb_get(t->txn, t->s->dbi_rec, &k, &v);
	if (rc) {
		r->st.type = STORE_NONE;
		return store_err(rc);
	}
	if (rec_decode(v.mv_data, v.mv_size, r)) {
		log_msg(LOG_ERROR, "%s: corrupt record for %s", t->s->path,
			path);
		return -EIO;
	}
	return 0;
}

/* A visible record, or -ENOENT (then r holds the invisible record, or
 * r->st.type is STORE_NONE when there is none). */
static int rec_live(struct store_txn *t, const char *path, struct rec *r)
{
	int err = rec_get(t, path, r);

	if (err == 0 && !visible(&r->st, store_now_ns()))
		return -ENOENT;
	return err;
}

static void clock_tick(struct store_txn *t)
{
	uint64_t now = (uint64_t)(store_now_ns() / 1000000) << 16;

	t->meta.hlc = now > t->meta.hlc ? now : t->meta.hlc + 1;
	t->meta_dirty = 1;
}

/*
 * Write the record (st, vv, xattrs, value) at `path`. With `origin_node`
 * non-zero it is a change: it gets a binlog entry (held back in pend
 * until the next one or the commit). With 0 it is local bookkeeping
 * (revived parents, the root) and is not logged.
 */
static int rec_write(struct store_txn *t, const char *path,
		     const struct store_stat *st, const void *vv,
		     const void *xattrs, const void *value,
		     uint64_t origin_node, uint64_t origin_seq)
{
	struct store *s = t->s;
	size_t plen = strlen(path), rlen = rec_encoded_len(st);
	size_t need = CHANGE_HDR_LEN + plen + rlen;
	struct store_change c = {
		.origin_node = origin_node,
		.origin_seq = origin_seq,
		.writer = s->writer,
		.path_len = plen,
		.rec_len = rlen,
	};
	char key[PATH_MAX];
	unsigned char *buf, *swap;
	MDB_val k, v;
	int rc;

	if (need > t->next_cap) {
		buf = realloc(t->next, need);
		if (!buf)
			return -ENOMEM;
		t->next = buf;
		t->next_cap = need;
	}
	buf = t->next;
	change_hdr_encode(buf, &c);
	memcpy(buf + CHANGE_HDR_LEN, path, plen);
	rec_encode(buf + CHANGE_HDR_LEN + plen, st, vv, xattrs, value);
	/* From here on nothing reads the caller's (LMDB) pointers. */
	if (origin_node) {
		rc = pend_flush(t, 1);
		if (rc)
			return store_err(rc);
		swap = t->pend;
		t->pend = t->next;
		t->next = swap;
		rc = (int)t->pend_cap;
		t->pend_cap = t->next_cap;
		t->next_cap = (size_t)rc;
		t->pend_len = need;
		t->pend_seq = ++t->meta.log_last;
		if (!t->meta.log_first)
			t->meta.log_first = t->pend_seq;
		t->meta_dirty = 1;
		t->logged = 1;
		buf = t->pend;
	}
	k.mv_size = path_key(path, plen, key);
	k.mv_data = key;
	v.mv_size = rlen;
	v.mv_data = buf + CHANGE_HDR_LEN + plen;
	rc = mdb_put(t->txn, s->dbi_rec, &k, &v, 0);
	return store_err(rc);
}

/* Free pages in LMDB's freelist, as seen by a read transaction (LMDB
 * allows no cursor on the freelist in a write transaction). */
static size_t free_pages(struct store *s, MDB_txn *rtxn)
{
	MDB_txn *txn = rtxn;
	MDB_cursor *c;
	MDB_val k, v;
	size_t n, total = 0;

	if (!txn && read_txn(s, &txn))
		return 0;
	if (mdb_cursor_open(txn, 0, &c) == 0) {
		while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
			memcpy(&n, v.mv_data, sizeof(n));
			total += n;
		}
		mdb_cursor_close(c);
	}
	if (!rtxn)
		read_txn_done(s, txn);
	return total;
}

/* Room for `bytes` more? Writes that grow the store leave a reserve so
 * that deletes (which copy pages before they free them) always work. */
static int space_check(struct store_txn *t, size_t bytes)
{
	struct store *s = t->s;
	MDB_envinfo info;
	size_t pages, reserve, need;

	mdb_env_info(s->env, &info);
	pages = info.me_mapsize / s->psize;
	reserve = pages / 32 + 16;
	/* the record, its binlog copy, and a few pages of tree */
	need = (bytes * 2) / s->psize + 4;
	if (info.me_last_pgno + need + reserve < pages)
		return 0;
	if (info.me_last_pgno - free_pages(s, NULL) + need + reserve < pages)
		return 0;
	return -ENOSPC;
}

/*
 * Write a record at `path` as a local change: new version, the old
 * record's vector carried forward with our entry bumped, and a binlog
 * entry. `old` is the record being replaced (any type) or NULL.
 */
static int rec_write_local(struct store_txn *t, const char *path,
			   struct store_stat *st, const struct rec *old,
			   const void *xattrs, const void *value)
{
	struct store *s = t->s;
	unsigned char vvbuf[REC_VV_LEN * 64], *vv = vvbuf;
	uint64_t le[2];
	unsigned n = 0, i;
	int err;

	if (st->type != STORE_TOMBSTONE) {
		err = space_check(t, st->size + st->xattr_len);
		if (err)
			return err;
	}
	clock_tick(t);
	st->version.hlc = t->meta.hlc;
	st->version.node = s->node_id;
	st->origin_seq = ++t->meta.local_seq;
	if (old && old->st.nvv >= 64) {
		vv = malloc((size_t)(old->st.nvv + 1) * REC_VV_LEN);
		if (!vv)
			return -ENOMEM;
	}
	for (i = 0; old && i < old->st.nvv; i++)
		if (store_vv_at(old->vv, i).node != s->node_id)
			memcpy(vv + REC_VV_LEN * n++, old->vv + REC_VV_LEN * i,
			       REC_VV_LEN);
	le[0] = htole64(s->node_id);
	le[1] = htole64(st->origin_seq);
	memcpy(vv + REC_VV_LEN * n++, le, REC_VV_LEN);
	st->nvv = n;
	err = rec_write(t, path, st, vv, xattrs, value, s->node_id,
			st->origin_seq);
	if (vv != vvbuf)
		free(vv);
	return err;
}

/* A fresh stat for something new at `path`. */
static void stat_new(const struct store *s, struct store_stat *st,
		     enum store_type type,
		     const struct store_attr *a, unsigned mask)
{
	int64_t now = store_now_ns();

	memset(st, 0, sizeof(*st));
	st->type = type;
	st->mode = type_ifmt(type) |
		   (mask & STORE_ATTR_MODE ? a->mode & 07777 :
		    type == STORE_DIR ? 0755 : type == STORE_SYMLINK ? 0777 : 0644);
	st->uid = mask & STORE_ATTR_UID ? a->uid : s->uid;
	st->gid = mask & STORE_ATTR_GID ? a->gid : s->gid;
	st->mtime_ns = mask & STORE_ATTR_MTIME ? a->mtime_ns : now;
	st->ctime_ns = now;
}

static void ttl_renew(struct store_stat *st, int64_t now)
{
	st->expires_ns = st->ttl_ms ? now + (int64_t)st->ttl_ms * 1000000 : 0;
}

/* Check the parent of `path` for a create; with `parents`, create the
 * missing directories (mkdir -p). */
static int parent_ready(struct store_txn *t, const char *path, int parents,
			const struct store_attr *a, unsigned mask,
			uint64_t *dir_ttl)
{
	char buf[PATH_MAX];
	const char *dir = parent_of(path, buf);
	struct rec r;
	int err;

	*dir_ttl = 0;
	err = rec_live(t, dir, &r);
	if (err == -ENOENT && parents && strcmp(dir, "/") != 0) {
		struct store_stat st;
		struct store_attr da = a ? *a : (struct store_attr){ 0 };
		uint64_t ignored;
		struct rec old;
		int have_old;

		err = parent_ready(t, dir, 1, a, mask, &ignored);
		if (err < 0)
			return err;
		have_old = rec_get(t, dir, &old) == 0;
		da.mode = 0755;
		stat_new(t->s, &st, STORE_DIR, &da,
			 STORE_ATTR_MODE | (mask & (STORE_ATTR_UID | STORE_ATTR_GID)));
		err = rec_write_local(t, dir, &st, have_old ? &old : NULL,
				      NULL, NULL);
		return err ? err : 1;
	}
	if (err)
		return err;
	if (r.st.type != STORE_DIR)
		return -ENOTDIR;
	*dir_ttl = r.st.ttl_ms;
	return 0;
}

static int name_is_reserved(const char *path)
{
	return strcmp(path, "/.statefs") == 0 ||
	       strncmp(path, "/.statefs/", 10) == 0;
}

static int path_ok(struct store *s, const char *path)
{
	int err = store_path_check(s, path);

	if (err)
		return err;
	return 0;
}

/* ---- reads ---- */

/*
 * The start of every read of one record: check the path, enter the
 * caller's transaction or one of our own, find the visible record. End
 * with txn_done(t, own, err) whatever this returned: before a
 * transaction exists t and own are left as they were (own NULL).
 */
static int read_enter(struct store *s, struct store_txn **tp,
		      struct store_txn **own, struct store_txn *mem,
		      const char *path, struct rec *r)
{
	int err = path_ok(s, path);

	*own = NULL;
	if (err)
		return err;
	err = txn_enter(s, tp, 0, own, mem);
	if (err)
		return err;
	return rec_live(*tp, path, r);
}

int store_stat(struct store *s, struct store_txn *t, const char *path,
	       struct store_stat *st)
{
	struct store_txn *own, own_mem;
	struct rec r;
	int err = read_enter(s, &t, &own, &own_mem, path, &r);

	if (!err)
		*st = r.st;
	return txn_done(t, own, err);
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
	return txn_done(t, own, err);
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
	err = txn_done(t, own, err);
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
	int err = path_ok(s, dir), rc;

	if (err)
		return err;
	err = txn_enter(s, &t, 0, &own, &own_mem);
	if (err)
		return err;
	err = rec_live(t, dir, &r);
	if (err)
		goto out;
	if (r.st.type != STORE_DIR) {
		err = -ENOTDIR;
		goto out;
	}
	plen = child_prefix(dir, dlen, prefix);
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
		if (!visible(&r.st, now))
			continue;
		err = cb(arg, (char *)k.mv_data + plen, k.mv_size - plen, &r.st);
		if (err)
			break;
	}
	if (rc && rc != MDB_NOTFOUND)
		err = store_err(rc);
	mdb_cursor_close(c);
out:
	return txn_done(t, own, err);
}

/* ---- writes ---- */

static int check_name(struct store *s, const char *path)
{
	int err = path_ok(s, path);

	if (err)
		return err;
	if (strcmp(path, "/") == 0)
		return -EEXIST;
	if (name_is_reserved(path))
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
	err = parent_ready(t, path, flags & STORE_PARENTS, a, mask, &dir_ttl);
	if (err < 0)
		return err;
	/* Creating parents wrote to the tree: look again. */
	if (err > 0) {
		err = rec_get(t, path, &old);
		if (err && err != -ENOENT)
			return err;
	}
	have_old = old.st.type != STORE_NONE;
	stat_new(t->s, &st, type, a, mask);
	st.size = len;
	if (type == STORE_FILE) {
		st.ttl_ms = mask & STORE_ATTR_TTL ? a->ttl_ms :
			    dir_ttl ? dir_ttl : t->s->opts.default_ttl_ms;
		ttl_renew(&st, st.ctime_ns);
	} else if (type == STORE_DIR && (mask & STORE_ATTR_TTL)) {
		st.ttl_ms = a->ttl_ms;
	}
	return rec_write_local(t, path, &st, have_old ? &old : NULL, NULL,
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
	err = txn_enter(s, &t, 1, &own, &own_mem);
	if (err)
		return err;
	err = rec_live(t, path, &r);
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
			ttl_renew(&st, st.ctime_ns);
			err = rec_write_local(t, path, &st, &r, r.xattrs, val);
		}
	}
	return txn_leave(t, own, err);
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
	err = txn_enter(s, &t, 1, &own, &own_mem);
	if (err)
		return err;
	err = rec_live(t, path, &r);
	if (err == 0)
		err = type == STORE_DIR && flags & STORE_PARENTS &&
				      r.st.type == STORE_DIR ?
			      0 :
			      -EEXIST;
	else if (err == -ENOENT)
		err = do_create(t, path, type, target, len, a, mask, flags,
				&r);
	return txn_leave(t, own, err);
}

int store_setattr(struct store *s, struct store_txn *t, const char *path,
		  const struct store_attr *a, unsigned mask)
{
	struct store_txn *own, own_mem;
	struct store_stat st;
	struct rec r;
	void *val = NULL;
	int64_t now = store_now_ns();
	int err = path_ok(s, path);

	if (err)
		return err;
	if (name_is_reserved(path))
		return -EPERM;
	if (mask & STORE_ATTR_SIZE && a->size > s->opts.max_value)
		return -EFBIG;
	err = txn_enter(s, &t, 1, &own, &own_mem);
	if (err)
		return err;
	err = rec_live(t, path, &r);
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
		ttl_renew(&st, now);
	err = rec_write_local(t, path, &st, &r, r.xattrs, val ? val : r.value);
out:
	free(val);
	return txn_leave(t, own, err);
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
	return rec_write_local(t, path, &st, r, NULL, NULL);
}

/* Does directory `dir` have a visible child? */
static int has_children(struct store_txn *t, const char *dir)
{
	char prefix[PATH_MAX + 1];
	size_t plen = child_prefix(dir, strlen(dir), prefix);
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
		    visible(&r.st, now)) {
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
			    !visible(&r.st, now))
				continue;
			key_path(&k, path);
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
	int err = path_ok(s, path);

	if (err)
		return err;
	if (strcmp(path, "/") == 0)
		return -EBUSY;
	if (name_is_reserved(path))
		return -EPERM;
	err = txn_enter(s, &t, 1, &own, &own_mem);
	if (err)
		return err;
	err = rec_live(t, path, &r);
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

				err = rec_get(t, pv.v[i], &cr);
				if (!err)
					err = tombstone_local(t, pv.v[i], &cr);
			}
			if (err)
				goto out;
			err = rec_get(t, path, &r);
			if (err)
				goto out;
		} else {
			err = has_children(t, path);
			if (err > 0)
				err = -ENOTEMPTY;
			if (err)
				goto out;
		}
	}
	err = tombstone_local(t, path, &r);
out:
	pathvec_free(&pv);
	return txn_leave(t, own, err);
}

/* Move the record at `from` to `to` (a new local change) and leave a
 * tombstone at `from`. */
static int move_one(struct store_txn *t, const char *from, const char *to)
{
	struct rec r, old;
	struct store_stat st;
	int err, have_old;

	err = rec_get(t, from, &r);
	if (err)
		return err;
	have_old = rec_get(t, to, &old) == 0;
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
		err = rec_write_local(t, to, &st, have_old ? &old : NULL, copy,
				      copy + r.st.xattr_len);
		free(copy);
	}
	if (err)
		return err;
	err = rec_get(t, from, &r);
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
	int err = path_ok(s, from);

	if (!err)
		err = path_ok(s, to);
	if (err)
		return err;
	if (strcmp(from, "/") == 0 || strcmp(to, "/") == 0)
		return -EBUSY;
	if (name_is_reserved(from) || name_is_reserved(to))
		return -EPERM;
	if (tlen > flen && strncmp(to, from, flen) == 0 && to[flen] == '/')
		return -EINVAL;
	err = txn_enter(s, &t, 1, &own, &own_mem);
	if (err)
		return err;
	err = rec_live(t, from, &rf);
	if (err)
		goto out;
	if (strcmp(from, to) == 0)
		goto out;
	err = parent_ready(t, to, 0, NULL, 0, &dir_ttl);
	if (err)
		goto out;
	err = rec_live(t, to, &rt);
	if (err == 0) {
		if (flags & STORE_RENAME_NOREPLACE) {
			err = -EEXIST;
		} else if (rt.st.type == STORE_DIR && rf.st.type != STORE_DIR) {
			err = -EISDIR;
		} else if (rt.st.type != STORE_DIR && rf.st.type == STORE_DIR) {
			err = -ENOTDIR;
		} else if (rt.st.type == STORE_DIR) {
			err = has_children(t, to);
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
	return txn_leave(t, own, err);
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
	err = txn_done(t, own, err);
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
	int err = path_ok(s, path);

	if (err)
		return err;
	if (nlen == 0 || nlen > 255)
		return -ERANGE;
	if (len > XATTR_VALUE_MAX)
		return -E2BIG;
	if (name_is_reserved(path))
		return -EPERM;
	err = txn_enter(s, &t, 1, &own, &own_mem);
	if (err)
		return err;
	err = rec_live(t, path, &r);
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
	err = rec_write_local(t, path, &st, &r, x, x + st.xattr_len);
out:
	free(x);
	return txn_leave(t, own, err);
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
	err = txn_done(t, own, err);
	return err ? err : (ssize_t)need;
}

/* ---- replication ---- */

static int vv_get(struct store_txn *t, uint64_t node, uint64_t *seq)
{
	MDB_val k = { sizeof(node), &node }, v;
	int rc;

	if (node == t->s->node_id) {
		*seq = t->meta.local_seq;
		return 0;
	}
	rc = mdb_get(t->txn, t->s->dbi_vv, &k, &v);
	if (rc == MDB_NOTFOUND) {
		*seq = 0;
		return 0;
	}
	if (rc)
		return store_err(rc);
	if (v.mv_size != sizeof(*seq))
		return -EIO;
	memcpy(seq, v.mv_data, sizeof(*seq));
	return 0;
}

static int vv_set(struct store_txn *t, uint64_t node, uint64_t seq)
{
	MDB_val k = { sizeof(node), &node }, v = { sizeof(seq), &seq };

	return store_err(mdb_put(t->txn, t->s->dbi_vv, &k, &v, 0));
}

static int vcmp(const struct store_version *a, const struct store_version *b)
{
	if (a->hlc != b->hlc)
		return a->hlc < b->hlc ? -1 : 1;
	if (a->node != b->node)
		return a->node < b->node ? -1 : 1;
	return 0;
}

/* Merge two vectors (entry-wise max) into out (malloc'd). */
static int vv_merge(const unsigned char *a, unsigned na,
		    const unsigned char *b, unsigned nb, unsigned char **out,
		    unsigned *nout)
{
	unsigned char *m = malloc((size_t)(na + nb + 1) * REC_VV_LEN);
	unsigned n = 0;

	if (!m)
		return -ENOMEM;
	memcpy(m, a, (size_t)na * REC_VV_LEN);
	n = na;
	for (unsigned i = 0; i < nb; i++) {
		struct store_vv_entry e = store_vv_at(b, i);
		unsigned j;

		for (j = 0; j < n; j++) {
			struct store_vv_entry f = store_vv_at(m, j);

			if (f.node == e.node) {
				if (e.seq > f.seq)
					memcpy(m + j * REC_VV_LEN,
					       b + i * REC_VV_LEN, REC_VV_LEN);
				break;
			}
		}
		if (j == n)
			memcpy(m + REC_VV_LEN * n++, b + i * REC_VV_LEN,
			       REC_VV_LEN);
	}
	*out = m;
	*nout = n;
	return 0;
}

/* A peer's live record arrived under a missing or dead parent: revive the
 * parents as directories (local bookkeeping, version 0 so that any real
 * change to them wins; same result on every node). */
static int revive_parents(struct store_txn *t, const char *path,
			  const struct store_stat *child)
{
	char buf[PATH_MAX];
	const char *dir = parent_of(path, buf);
	struct store_stat st;
	struct rec r;
	int err;

	if (strcmp(dir, "/") == 0)
		return 0;
	err = rec_get(t, dir, &r);
	if (err == 0 && visible(&r.st, store_now_ns()))
		return 0;
	if (err && err != -ENOENT)
		return err;
	err = revive_parents(t, dir, child);
	if (err)
		return err;
	memset(&st, 0, sizeof(st));
	st.type = STORE_DIR;
	st.mode = S_IFDIR | (err == 0 && r.st.mode ? r.st.mode & 07777 : 0755);
	st.uid = child->uid;
	st.gid = child->gid;
	st.mtime_ns = st.ctime_ns = child->mtime_ns;
	return rec_write(t, dir, &st, NULL, NULL, NULL, 0, 0);
}

int store_apply_remote(struct store *s, struct store_txn *t,
		       const struct store_change *c)
{
	struct store_txn *own, own_mem;
	char path[PATH_MAX + 1];
	struct rec in, cur;
	unsigned char *vv = NULL;
	unsigned nvv;
	uint64_t wm = 0;
	int err, have, result = STORE_DUPLICATE, cmp;

	if (c->path_len == 0 || c->path_len > s->maxkey ||
	    memchr(c->path, '\0', c->path_len))
		return -EPROTO;
	memcpy(path, c->path, c->path_len);
	path[c->path_len] = '\0';
	if (store_path_check(s, path) || name_is_reserved(path) ||
	    strcmp(path, "/") == 0)
		return -EPROTO;
	if (rec_decode(c->rec, c->rec_len, &in))
		return -EPROTO;
	if (in.st.version.node != c->origin_node ||
	    in.st.size > s->opts.max_value)
		return -EPROTO;
	err = txn_enter(s, &t, 1, &own, &own_mem);
	if (err)
		return err;
	err = vv_get(t, c->origin_node, &wm);
	if (err)
		goto out;
	if (c->origin_seq <= wm) {
		result = STORE_DUPLICATE;
		goto out;
	}
	if (c->origin_node != s->node_id) {
		err = vv_set(t, c->origin_node, c->origin_seq);
		if (err)
			goto out;
	}
	if (in.st.version.hlc > t->meta.hlc) {
		t->meta.hlc = in.st.version.hlc;
		t->meta_dirty = 1;
	}
	err = rec_get(t, path, &cur);
	if (err && err != -ENOENT)
		goto out;
	have = err == 0;
	err = 0;
	if (!have) {
		result = STORE_APPLIED;
		cmp = 1;
	} else {
		int they_saw = vv_lookup(in.vv, in.st.nvv, cur.st.version.node) >=
			       cur.st.origin_seq;
		int we_saw = vv_lookup(cur.vv, cur.st.nvv, c->origin_node) >=
			     c->origin_seq;

		cmp = vcmp(&in.st.version, &cur.st.version);
		if (cmp == 0)
			result = STORE_DUPLICATE;
		else if (they_saw && cmp > 0)
			result = STORE_APPLIED;
		else if (we_saw && cmp < 0)
			result = STORE_SUPERSEDED;
		else
			result = cmp > 0 ? STORE_CONFLICT_WON :
					   STORE_CONFLICT_LOST;
	}
	if (cmp <= 0)
		goto out;
	if (have) {
		err = vv_merge(in.vv, in.st.nvv, cur.vv, cur.st.nvv, &vv, &nvv);
	} else {
		nvv = in.st.nvv;
		vv = malloc((size_t)nvv * REC_VV_LEN + 1);
		if (vv)
			memcpy(vv, in.vv, (size_t)nvv * REC_VV_LEN);
		else
			err = -ENOMEM;
	}
	if (err)
		goto out;
	if (in.st.type == STORE_TOMBSTONE && have &&
	    cur.st.type == STORE_DIR && has_children(t, path) > 0) {
		/* A directory deleted on one side while the other created
		 * something in it: the live child keeps it (every node ends
		 * with the directory and the child). */
		result = STORE_CONFLICT_LOST;
		goto out;
	}
	if (in.st.type != STORE_TOMBSTONE) {
		err = revive_parents(t, path, &in.st);
		if (err)
			goto out;
	}
	{
		struct store_stat st = in.st;

		st.nvv = nvv;
		err = rec_write(t, path, &st, vv, in.xattrs, in.value,
				c->origin_node, c->origin_seq);
	}
out:
	free(vv);
	err = txn_leave(t, own, err);
	return err ? err : result;
}

/* ---- binlog ---- */

ssize_t store_binlog_read(struct store *s, uint64_t after, size_t max,
			  store_change_cb cb, void *arg)
{
	MDB_txn *txn;
	MDB_cursor *c;
	struct meta m;
	MDB_val k, v;
	uint64_t from = after + 1;
	ssize_t count = 0;
	int rc, err = 0;

	rc = read_txn(s, &txn);
	if (rc)
		return store_err(rc);
	rc = meta_load(txn, s->dbi_meta, &m);
	if (rc) {
		err = store_err(rc);
		goto out;
	}
	if (m.log_first && from < m.log_first && after < m.log_last) {
		err = -ERANGE;
		goto out;
	}
	rc = mdb_cursor_open(txn, s->dbi_log, &c);
	if (rc) {
		err = store_err(rc);
		goto out;
	}
	k.mv_size = sizeof(from);
	k.mv_data = &from;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct store_change ch;

		if (max && (size_t)count >= max)
			break;
		if (store_change_decode(v.mv_data, v.mv_size, &ch)) {
			log_msg(LOG_ERROR, "%s: corrupt binlog entry", s->path);
			err = -EIO;
			break;
		}
		memcpy(&ch.seq, k.mv_data, sizeof(ch.seq));
		count++;
		err = cb(arg, &ch);
		if (err)
			break;
	}
	mdb_cursor_close(c);
out:
	read_txn_done(s, txn);
	return err ? err : count;
}

uint64_t store_last_seq(struct store *s)
{
	MDB_txn *txn;
	struct meta m;
	uint64_t seq = notify_last_seq(s->notify);

	if (read_txn(s, &txn) == 0) {
		if (meta_load(txn, s->dbi_meta, &m) == 0)
			seq = m.log_last;
		read_txn_done(s, txn);
	}
	return seq;
}

int store_wait(struct store *s, uint64_t after, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? 0 :
				store_now_ns() + (int64_t)timeout_ms * 1000000;
	int ret = 0;

	for (;;) {
		uint32_t gen = notify_begin(s->notify);
		int left = -1, err;

		if (store_last_seq(s) > after) {
			ret = 1;
			break;
		}
		if (timeout_ms >= 0) {
			int64_t ns = deadline - store_now_ns();

			if (ns <= 0)
				break;
			left = (int)((ns + 999999) / 1000000);
		}
		err = notify_wait(s->notify, gen, left);
		notify_end(s->notify);
		if (err == -EINTR)
			return -EINTR;
		continue;
	}
	notify_end(s->notify);
	return ret;
}

/* ---- maintenance ---- */

int store_sweep(struct store *s, size_t max)
{
	struct store_txn *t;
	MDB_cursor *c;
	MDB_val k, v;
	struct rec r;
	int64_t now = store_now_ns();
	int64_t grace = (int64_t)s->opts.tombstone_grace_ms * 1000000;
	int rc, err, count = 0;

	err = store_txn_begin(s, 1, &t);
	if (err)
		return err;
	rc = mdb_cursor_open(t->txn, s->dbi_rec, &c);
	if (rc) {
		store_txn_abort(&t);
		return store_err(rc);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	     rc == 0 && (!max || (size_t)count < max);
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (rec_decode(v.mv_data, v.mv_size, &r))
			continue;
		if (r.st.type == STORE_TOMBSTONE) {
			if (r.st.mtime_ns + grace < now) {
				rc = mdb_cursor_del(c, 0);
				if (rc)
					break;
				count++;
			}
		} else if (r.st.type == STORE_FILE && r.st.expires_ns &&
			   r.st.expires_ns <= now) {
			/* Same version: an older write arriving late still
			 * loses to it, a newer one wins, on every node. */
			struct store_stat st = r.st;
			unsigned char buf[REC_HDR_LEN + REC_VV_LEN * 64];
			MDB_val nv;

			if (r.st.nvv > 64)
				continue;
			st.type = STORE_TOMBSTONE;
			st.size = 0;
			st.xattr_len = 0;
			st.mtime_ns = r.st.expires_ns;
			rec_encode(buf, &st, r.vv, NULL, NULL);
			nv.mv_size = rec_encoded_len(&st);
			nv.mv_data = buf;
			rc = mdb_cursor_put(c, &k, &nv, MDB_CURRENT);
			if (rc)
				break;
			count++;
		}
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND) {
		store_txn_abort(&t);
		return store_err(rc);
	}
	err = store_txn_commit(&t);
	return err ? err : count;
}

int store_digest(struct store *s, unsigned char out[STORE_DIGEST_LEN])
{
	crypto_generichash_state h;
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	struct rec r;
	int64_t now = store_now_ns();
	int rc, err = 0;

	rc = read_txn(s, &txn);
	if (rc)
		return store_err(rc);
	rc = mdb_cursor_open(txn, s->dbi_rec, &c);
	if (rc) {
		read_txn_done(s, txn);
		return store_err(rc);
	}
	crypto_generichash_init(&h, NULL, 0, STORE_DIGEST_LEN);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		unsigned char hdr[24];
		uint64_t x;

		if (rec_decode(v.mv_data, v.mv_size, &r)) {
			err = -EIO;
			break;
		}
		if (!visible(&r.st, now))
			continue;
		/* key length, key, type, mode, value length, value */
		x = htole64(k.mv_size);
		memcpy(hdr, &x, 8);
		x = htole64((uint64_t)r.st.type << 32 | r.st.mode);
		memcpy(hdr + 8, &x, 8);
		x = htole64(r.st.size);
		memcpy(hdr + 16, &x, 8);
		crypto_generichash_update(&h, hdr, 8);
		crypto_generichash_update(&h, k.mv_data, k.mv_size);
		crypto_generichash_update(&h, hdr + 8, 16);
		crypto_generichash_update(&h, r.value, r.st.size);
	}
	mdb_cursor_close(c);
	read_txn_done(s, txn);
	if (err)
		return err;
	crypto_generichash_final(&h, out, STORE_DIGEST_LEN);
	return 0;
}

int store_info(struct store *s, struct store_info *info)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_envinfo ei;
	MDB_stat ms;
	MDB_val k, v;
	struct meta m;
	struct rec r;
	int64_t now = store_now_ns();
	int rc;

	memset(info, 0, sizeof(*info));
	rc = read_txn(s, &txn);
	if (rc)
		return store_err(rc);
	rc = meta_load(txn, s->dbi_meta, &m);
	if (rc == 0)
		rc = mdb_cursor_open(txn, s->dbi_rec, &c);
	if (rc) {
		read_txn_done(s, txn);
		return store_err(rc);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (rec_decode(v.mv_data, v.mv_size, &r))
			continue;
		if (k.mv_size == 1 && ((char *)k.mv_data)[0] == '/')
			continue; /* the root is not a record of its own */
		if (visible(&r.st, now)) {
			info->records++;
			info->value_bytes += r.st.size;
		} else {
			info->tombstones++;
		}
	}
	mdb_cursor_close(c);
	mdb_stat(txn, s->dbi_log, &ms);
	info->binlog_count = ms.ms_entries;
	mdb_env_info(s->env, &ei);
	mdb_env_stat(s->env, &ms);
	read_txn_done(s, txn);
	info->node_id = s->node_id;
	snprintf(info->node_name, sizeof(info->node_name), "%s", s->node_name);
	info->map_size = ei.me_mapsize;
	info->map_used = (uint64_t)(ei.me_last_pgno + 1 - free_pages(s, txn)) *
			 ms.ms_psize;
	info->max_value = s->opts.max_value;
	info->binlog_first = ms.ms_entries ? m.log_first : 0;
	info->binlog_last = m.log_last;
	info->local_seq = m.local_seq;
	info->format = m.format;
	return 0;
}

int store_watermarks(struct store *s, store_vv_cb cb, void *arg)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	struct meta m;
	int rc, err = 0;

	rc = read_txn(s, &txn);
	if (rc)
		return store_err(rc);
	rc = meta_load(txn, s->dbi_meta, &m);
	if (rc == 0)
		rc = mdb_cursor_open(txn, s->dbi_vv, &c);
	if (rc) {
		read_txn_done(s, txn);
		return store_err(rc);
	}
	err = cb(arg, s->node_id, m.local_seq);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !err && rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint64_t node, seq;

		memcpy(&node, k.mv_data, sizeof(node));
		memcpy(&seq, v.mv_data, sizeof(seq));
		if (node != s->node_id)
			err = cb(arg, node, seq);
	}
	mdb_cursor_close(c);
	read_txn_done(s, txn);
	return err;
}

uint32_t store_writer_token(struct store *s)
{
	return s->writer;
}

/* ---- open and close ---- */

/*
 * Is this LMDB file a statefs store? 0: yes, *m loaded; 1: empty (a new
 * store); negative: not one of ours, with the message set.
 */
static int meta_check(MDB_txn *txn, MDB_dbi main, const char *file,
		      struct meta *m)
{
	MDB_stat ms;
	int rc = meta_load(txn, main, m);

	if (rc == MDB_NOTFOUND) {
		if (mdb_stat(txn, main, &ms) == 0 && ms.ms_entries == 0)
			return 1;
		set_error("%s: not a statefs store (an LMDB file of something "
			  "else); left untouched", file);
		return -EINVAL;
	}
	if (rc) {
		set_error("%s: not a statefs store (%s); left untouched", file,
			  rc == MDB_CORRUPTED ? "bad format record" :
						mdb_strerror(rc));
		return -EINVAL;
	}
	if (m->format > STORE_FORMAT) {
		set_error("%s: store format %u is newer than this statefs "
			  "(format %u); upgrade statefs, the file is left "
			  "untouched", file, m->format, STORE_FORMAT);
		return -EPROTO;
	}
	return 0;
}

/* First use: the format record, a node id, the root directory. */
static int store_init(struct store *s, MDB_txn *txn)
{
	struct meta m;
	struct store_stat st;
	char key[2] = "/";
	MDB_val k = { 1, key }, v;
	unsigned char buf[REC_HDR_LEN];
	int rc;

	memset(&m, 0, sizeof(m));
	m.format = STORE_FORMAT;
	if (getrandom(&m.node_id, sizeof(m.node_id), 0) != sizeof(m.node_id))
		return errno;
	m.node_id |= 1; /* never 0: version 0 means "local bookkeeping" */
	if (s->opts.node_name)
		snprintf(m.node_name, sizeof(m.node_name), "%s",
			 s->opts.node_name);
	else if (gethostname(m.node_name, sizeof(m.node_name) - 1))
		snprintf(m.node_name, sizeof(m.node_name), "statefs");
	rc = meta_save(txn, s->dbi_meta, &m);
	if (rc)
		return rc;
	memset(&st, 0, sizeof(st));
	st.type = STORE_DIR;
	st.mode = S_IFDIR | 0755;
	st.uid = getuid();
	st.gid = getgid();
	st.mtime_ns = st.ctime_ns = store_now_ns();
	rec_encode(buf, &st, NULL, NULL, NULL);
	v.mv_size = REC_HDR_LEN;
	v.mv_data = buf;
	return mdb_put(txn, s->dbi_rec, &k, &v, 0);
}

static int open_dbs(struct store *s, const char *file)
{
	unsigned ro = s->opts.readonly ? MDB_RDONLY : 0;
	unsigned cr = ro ? 0 : MDB_CREATE;
	MDB_txn *txn;
	struct meta m;
	int rc;

	rc = mdb_txn_begin(s->env, NULL, ro, &txn);
	if (rc) {
		set_error("%s: %s", file, mdb_strerror(rc));
		return store_err(rc);
	}
	rc = mdb_dbi_open(txn, NULL, 0, &s->dbi_meta);
	if (rc) {
		set_error("%s: %s", file, mdb_strerror(rc));
		mdb_txn_abort(txn);
		return store_err(rc);
	}
	rc = meta_check(txn, s->dbi_meta, file, &m);
	if (rc < 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	if (rc == 1) {
		if (ro || s->opts.no_create) {
			set_error("%s: no statefs store here", file);
			mdb_txn_abort(txn);
			return -ENOENT;
		}
		rc = mdb_dbi_open(txn, "rec", MDB_CREATE, &s->dbi_rec);
		if (rc == 0)
			rc = mdb_dbi_open(txn, "log", MDB_CREATE | MDB_INTEGERKEY,
					  &s->dbi_log);
		if (rc == 0)
			rc = mdb_dbi_open(txn, "vv", MDB_CREATE | MDB_INTEGERKEY,
					  &s->dbi_vv);
		if (rc == 0)
			rc = store_init(s, txn);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		if (rc) {
			set_error("%s: cannot create the store: %s", file,
				  mdb_strerror(rc));
			return store_err(rc);
		}
		return open_dbs(s, file);
	}
	rc = mdb_dbi_open(txn, "rec", cr, &s->dbi_rec);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "log", cr | MDB_INTEGERKEY, &s->dbi_log);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "vv", cr | MDB_INTEGERKEY, &s->dbi_vv);
	if (rc) {
		set_error("%s: not a statefs store (%s); left untouched", file,
			  mdb_strerror(rc));
		mdb_txn_abort(txn);
		return -EINVAL;
	}
	s->node_id = m.node_id;
	snprintf(s->node_name, sizeof(s->node_name), "%s", m.node_name);
	if (s->opts.node_name && !ro &&
	    strcmp(s->opts.node_name, m.node_name) != 0) {
		snprintf(m.node_name, sizeof(m.node_name), "%s",
			 s->opts.node_name);
		snprintf(s->node_name, sizeof(s->node_name), "%s",
			 s->opts.node_name);
		rc = meta_save(txn, s->dbi_meta, &m);
		if (rc) {
			mdb_txn_abort(txn);
			set_error("%s: %s", file, mdb_strerror(rc));
			return store_err(rc);
		}
	}
	rc = mdb_txn_commit(txn);
	if (rc) {
		set_error("%s: %s", file, mdb_strerror(rc));
		return store_err(rc);
	}
	return 0;
}

/*
 * Look at an existing file before opening it for writing: LMDB with
 * MDB_WRITEMAP grows the file to the map size at open, which must not
 * happen to a file that is not ours. A read-only, lock-free look
 * changes nothing. 0 if it is a statefs store (or empty).
 */
static int probe(const char *file)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	struct meta m;
	int rc, err = 0;

	if (mdb_env_create(&env))
		return -ENOMEM;
	mdb_env_set_maxdbs(env, 8);
	rc = mdb_env_open(env, file, MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK,
			  0);
	if (rc == 0)
		rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (rc) {
		set_error("%s: not a statefs store (%s); left untouched", file,
			  mdb_strerror(rc));
		mdb_env_close(env);
		return -EINVAL;
	}
	rc = mdb_dbi_open(txn, NULL, 0, &dbi);
	err = rc ? -EINVAL : meta_check(txn, dbi, file, &m);
	if (err > 0)
		err = 0;
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return err;
}

int store_open(const char *dir, const struct store_opts *opts,
	       struct store **sp)
{
	struct store *s;
	char file[PATH_MAX], nfile[PATH_MAX];
	unsigned flags = MDB_NOSUBDIR | MDB_NOTLS | MDB_NORDAHEAD;
	MDB_envinfo ei;
	int rc, err, dead;
	struct stat sb;

	last_error[0] = '\0';
	*sp = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (opts)
		s->opts = *opts;
	s->opts.node_name = NULL;
	if (opts && opts->node_name) {
		snprintf(s->node_name, sizeof(s->node_name), "%s",
			 opts->node_name);
		s->opts.node_name = s->node_name;
	}
	if (!s->opts.map_size)
		s->opts.map_size = STORE_DEFAULT_MAP_SIZE;
	if (!s->opts.max_value)
		s->opts.max_value = STORE_DEFAULT_MAX_VALUE;
	if (!s->opts.binlog_max)
		s->opts.binlog_max = STORE_DEFAULT_BINLOG_MAX;
	if (!s->opts.tombstone_grace_ms)
		s->opts.tombstone_grace_ms = STORE_DEFAULT_TOMBSTONE_GRACE_MS;
	pthread_mutex_init(&s->pool_lock, NULL);
	s->uid = getuid();
	s->gid = getgid();
	if (getrandom(&s->writer, sizeof(s->writer), 0) != sizeof(s->writer))
		s->writer = (uint32_t)getpid();
	s->writer |= 1;

	if ((size_t)snprintf(file, sizeof(file), "%s/store.mdb", dir) >=
		    sizeof(file) ||
	    (size_t)snprintf(nfile, sizeof(nfile), "%s/store.notify", dir) >=
		    sizeof(nfile)) {
		set_error("%s: path too long", dir);
		err = -ENAMETOOLONG;
		goto fail;
	}
	s->path = strdup(file);
	if (stat(dir, &sb) < 0) {
		if (errno != ENOENT || s->opts.readonly || s->opts.no_create) {
			err = -errno;
			set_error("%s: %s", dir, strerror(errno));
			if (err == -ENOENT)
				set_error("%s: no statefs store here", dir);
			goto fail;
		}
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			err = -errno;
			set_error("%s: cannot create: %s", dir, strerror(errno));
			goto fail;
		}
	} else if (!S_ISDIR(sb.st_mode)) {
		err = -ENOTDIR;
		set_error("%s: not a directory", dir);
		goto fail;
	}
	if (stat(file, &sb) < 0) {
		if (s->opts.readonly || s->opts.no_create) {
			err = -ENOENT;
			set_error("%s: no statefs store here", dir);
			goto fail;
		}
	} else if (sb.st_size > 0 && !s->opts.readonly) {
		err = probe(file);
		if (err)
			goto fail;
	}

	rc = mdb_env_create(&s->env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(s->env, 8);
	if (rc == 0)
		rc = mdb_env_set_maxreaders(s->env, 1024);
	if (rc == 0)
		rc = mdb_env_set_mapsize(s->env, s->opts.map_size);
	if (rc) {
		err = store_err(rc);
		set_error("%s: %s", file, mdb_strerror(rc));
		goto fail;
	}
	if (s->opts.readonly)
		flags |= MDB_RDONLY;
	if (s->opts.sync == STORE_SYNC_NONE)
		flags |= MDB_NOSYNC | MDB_NOMETASYNC | MDB_WRITEMAP;
	rc = mdb_env_open(s->env, file, flags, 0664);
	if (rc) {
		err = store_err(rc);
		if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH ||
		    rc == MDB_CORRUPTED)
			set_error("%s: not a statefs store (%s); left untouched",
				  file, mdb_strerror(rc));
		else
			set_error("%s: %s", file, mdb_strerror(rc));
		if (err == -EIO)
			err = -EINVAL;
		goto fail;
	}
	mdb_reader_check(s->env, &dead);
	if (dead)
		log_msg(LOG_NOTICE, "%s: cleared %d stale reader(s)", file, dead);
	mdb_env_info(s->env, &ei);
	s->opts.map_size = ei.me_mapsize;
	s->maxkey = (unsigned)mdb_env_get_maxkeysize(s->env);
	{
		MDB_stat ms;

		mdb_env_stat(s->env, &ms);
		s->psize = ms.ms_psize;
	}
	err = open_dbs(s, file);
	if (err)
		goto fail;
	err = notify_open(nfile, s->opts.readonly, &s->notify);
	if (err) {
		set_error("%s: %s", nfile, strerror(-err));
		goto fail;
	}
	*sp = s;
	return 0;
fail:
	store_close(&s);
	return err;
}

void store_close(struct store **sp)
{
	struct store *s = *sp;

	if (!s)
		return;
	while (s->npool)
		mdb_txn_abort(s->pool[--s->npool]);
	if (s->wcache) {
		free(s->wcache->pend);
		free(s->wcache->next);
		free(s->wcache);
	}
	if (s->env)
		mdb_env_close(s->env);
	notify_close(&s->notify);
	pthread_mutex_destroy(&s->pool_lock);
	free(s->path);
	free(s);
	*sp = NULL;
}
