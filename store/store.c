/*
 * store.c — the store's core: opening, transactions, keys, records, the
 * binlog append, clocks and TTL on one LMDB env. The operations users
 * call live in ns.c (namespace: get, put, rename, xattrs...), the
 * replication side in replica.c (apply_remote, binlog reading, waits),
 * the byte layouts in record.c and the wake-ups in notify.c.
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
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "store/store_int.h"

static __thread char last_error[512];

static void store_set_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void store_set_error(const char *fmt, ...)
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

int store_visible(const struct store_stat *st, int64_t now)
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
size_t store_key_of(const char *path, size_t len, char *buf)
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
size_t store_child_prefix(const char *dir, size_t len, char *buf)
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
size_t store_key_path(const MDB_val *k, char *buf)
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

const char *store_parent_of(const char *path, char *buf)
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

int store_meta_load(MDB_txn *txn, MDB_dbi dbi, struct meta *m)
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

int store_rtxn_get(struct store *s, MDB_txn **txnp)
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

void store_rtxn_put(struct store *s, MDB_txn *txn)
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
		rc = store_rtxn_get(s, &t->txn);
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
	rc = store_meta_load(txn, s->dbi_meta, &t->meta);
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
		store_rtxn_put(t->s, txn);
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
 * own. store_txn_enter() gives the transaction to use; store_txn_leave() commits or
 * aborts an own one, and poisons the caller's on error.
 */
int store_txn_enter(struct store *s, struct store_txn **tp, int write,
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
int store_txn_done(struct store_txn *t, struct store_txn *own, int err)
{
	return txn_end(t, own, err, 0);
}

int store_txn_leave(struct store_txn *t, struct store_txn *own, int err)
{
	return txn_end(t, own, err, 1);
}

/* ---- records ---- */

int store_rec_get(struct store_txn *t, const char *path, struct rec *r)
{
	char key[PATH_MAX];
	MDB_val k, v;
	int rc;

	k.mv_size = store_key_of(path, strlen(path), key);
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
int store_rec_live(struct store_txn *t, const char *path, struct rec *r)
{
	int err = store_rec_get(t, path, r);

	if (err == 0 && !store_visible(&r->st, store_now_ns()))
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
int store_rec_write(struct store_txn *t, const char *path,
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
	k.mv_size = store_key_of(path, plen, key);
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

	if (!txn && store_rtxn_get(s, &txn))
		return 0;
	if (mdb_cursor_open(txn, 0, &c) == 0) {
		while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
			memcpy(&n, v.mv_data, sizeof(n));
			total += n;
		}
		mdb_cursor_close(c);
	}
	if (!rtxn)
		store_rtxn_put(s, txn);
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
int store_rec_write_local(struct store_txn *t, const char *path,
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
	err = store_rec_write(t, path, st, vv, xattrs, value, s->node_id,
			st->origin_seq);
	if (vv != vvbuf)
		free(vv);
	return err;
}

/* A fresh stat for something new at `path`. */
void store_stat_new(const struct store *s, struct store_stat *st,
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

void store_ttl_renew(struct store_stat *st, int64_t now)
{
	st->expires_ns = st->ttl_ms ? now + (int64_t)st->ttl_ms * 1000000 : 0;
}

/* Check the parent of `path` for a create; with `parents`, create the
 * missing directories (mkdir -p). */
int store_parent_ready(struct store_txn *t, const char *path, int parents,
			const struct store_attr *a, unsigned mask,
			uint64_t *dir_ttl)
{
	char buf[PATH_MAX];
	const char *dir = store_parent_of(path, buf);
	struct rec r;
	int err;

	*dir_ttl = 0;
	err = store_rec_live(t, dir, &r);
	if (err == -ENOENT && parents && strcmp(dir, "/") != 0) {
		struct store_stat st;
		struct store_attr da = a ? *a : (struct store_attr){ 0 };
		uint64_t ignored;
		struct rec old;
		int have_old;

		err = store_parent_ready(t, dir, 1, a, mask, &ignored);
		if (err < 0)
			return err;
		have_old = store_rec_get(t, dir, &old) == 0;
		da.mode = 0755;
		store_stat_new(t->s, &st, STORE_DIR, &da,
			 STORE_ATTR_MODE | (mask & (STORE_ATTR_UID | STORE_ATTR_GID)));
		err = store_rec_write_local(t, dir, &st, have_old ? &old : NULL,
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

int store_reserved(const char *path)
{
	return strcmp(path, "/.statefs") == 0 ||
	       strncmp(path, "/.statefs/", 10) == 0;
}

int store_path_ok(struct store *s, const char *path)
{
	int err = store_path_check(s, path);

	if (err)
		return err;
	return 0;
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

	rc = store_rtxn_get(s, &txn);
	if (rc)
		return store_err(rc);
	rc = mdb_cursor_open(txn, s->dbi_rec, &c);
	if (rc) {
		store_rtxn_put(s, txn);
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
		if (!store_visible(&r.st, now))
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
	store_rtxn_put(s, txn);
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
	rc = store_rtxn_get(s, &txn);
	if (rc)
		return store_err(rc);
	rc = store_meta_load(txn, s->dbi_meta, &m);
	if (rc == 0)
		rc = mdb_cursor_open(txn, s->dbi_rec, &c);
	if (rc) {
		store_rtxn_put(s, txn);
		return store_err(rc);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (rec_decode(v.mv_data, v.mv_size, &r))
			continue;
		if (k.mv_size == 1 && ((char *)k.mv_data)[0] == '/')
			continue; /* the root is not a record of its own */
		if (store_visible(&r.st, now)) {
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
	store_rtxn_put(s, txn);
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
	int rc = store_meta_load(txn, main, m);

	if (rc == MDB_NOTFOUND) {
		if (mdb_stat(txn, main, &ms) == 0 && ms.ms_entries == 0)
			return 1;
		store_set_error("%s: not a statefs store (an LMDB file of something "
			  "else); left untouched", file);
		return -EINVAL;
	}
	if (rc) {
		store_set_error("%s: not a statefs store (%s); left untouched", file,
			  rc == MDB_CORRUPTED ? "bad format record" :
						mdb_strerror(rc));
		return -EINVAL;
	}
	if (m->format > STORE_FORMAT) {
		store_set_error("%s: store format %u is newer than this statefs "
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
		store_set_error("%s: %s", file, mdb_strerror(rc));
		return store_err(rc);
	}
	rc = mdb_dbi_open(txn, NULL, 0, &s->dbi_meta);
	if (rc) {
		store_set_error("%s: %s", file, mdb_strerror(rc));
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
			store_set_error("%s: no statefs store here", file);
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
			store_set_error("%s: cannot create the store: %s", file,
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
		store_set_error("%s: not a statefs store (%s); left untouched", file,
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
			store_set_error("%s: %s", file, mdb_strerror(rc));
			return store_err(rc);
		}
	}
	rc = mdb_txn_commit(txn);
	if (rc) {
		store_set_error("%s: %s", file, mdb_strerror(rc));
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
		store_set_error("%s: not a statefs store (%s); left untouched", file,
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
		store_set_error("%s: path too long", dir);
		err = -ENAMETOOLONG;
		goto fail;
	}
	s->path = strdup(file);
	if (stat(dir, &sb) < 0) {
		if (errno != ENOENT || s->opts.readonly || s->opts.no_create) {
			err = -errno;
			store_set_error("%s: %s", dir, strerror(errno));
			if (err == -ENOENT)
				store_set_error("%s: no statefs store here", dir);
			goto fail;
		}
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			err = -errno;
			store_set_error("%s: cannot create: %s", dir, strerror(errno));
			goto fail;
		}
	} else if (!S_ISDIR(sb.st_mode)) {
		err = -ENOTDIR;
		store_set_error("%s: not a directory", dir);
		goto fail;
	}
	if (stat(file, &sb) < 0) {
		if (s->opts.readonly || s->opts.no_create) {
			err = -ENOENT;
			store_set_error("%s: no statefs store here", dir);
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
		store_set_error("%s: %s", file, mdb_strerror(rc));
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
			store_set_error("%s: not a statefs store (%s); left untouched",
				  file, mdb_strerror(rc));
		else
			store_set_error("%s: %s", file, mdb_strerror(rc));
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
		store_set_error("%s: %s", nfile, strerror(-err));
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
