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
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/file.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <linux/magic.h>
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

int store_parse_ttl(const char *s, size_t len, uint64_t *ms)
{
	static const struct {
		const char *unit;
		double ms;
	} units[] = { { "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		      { "h", 3600000 }, { "d", 86400000 } };
	char tmp[32], *end;
	double v;

	while (len && (s[len - 1] == '\n' || s[len - 1] == ' '))
		len--;
	if (len == 0 || len >= sizeof(tmp) || s[0] < '0' || s[0] > '9')
		return -EINVAL;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	errno = 0;
	v = strtod(tmp, &end);
	if (errno || end == tmp)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) == 0) {
			v *= units[i].ms;
			if (v > (double)STORE_TTL_MAX_MS)
				return -ERANGE;
			*ms = (uint64_t)(v + 0.5);
			return 0;
		}
	}
	return -EINVAL;
}

int64_t store_clock(const struct store *s)
{
	return s->opts.clock ? s->opts.clock(s->opts.clock_arg) : store_now_ns();
}

int64_t store_txn_now(struct store_txn *t)
{
	if (!t->now_set) {
		t->now = store_clock(t->s);
		t->now_set = 1;
	}
	return t->now;
}

/* Is the record's content live: a file, symlink or directory, and for a
 * file or symlink not past its deadline? (Directories never expire.) */
int store_live(const struct rec *r, int64_t now)
{
	switch (r->st.type) {
	case STORE_DIR:
		return 1;
	case STORE_FILE:
	case STORE_SYMLINK:
		return r->st.expires_ns == 0 || r->st.expires_ns > now;
	default:
		return 0;
	}
}

/* store_live in txn t, reading t's clock only for a record that can
 * expire. */
int store_txn_live(struct store_txn *t, const struct rec *r)
{
	if (r->st.type == STORE_DIR ||
	    ((r->st.type == STORE_FILE || r->st.type == STORE_SYMLINK) &&
	     r->st.expires_ns == 0))
		return 1;
	return store_live(r, store_txn_now(t));
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
 * A store on tmpfs with MDB_WRITEMAP grows by writing pages of the map
 * past the end of the data, and each first write of a page is a page
 * fault that allocates it: the commonest cost of a write that grows the
 * store (a virtual machine makes each fault dearer still). Populating
 * the map ahead of the end in runs, one madvise per run, costs much less
 * than faulting page by page. At most PREFAULT_AHEAD pages past the data
 * are allocated early; they are the next pages LMDB uses.
 */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define PREFAULT_AHEAD 256 /* pages populated past the last one used */
#define PREFAULT_LOW 64    /* refill when fewer are left ahead */

/* Find LMDB's map of the store's file (LMDB does not say where it is;
 * me_mapaddr is only set for MDB_FIXEDMAP): the mapping of the file's
 * inode that is as long as the map. NULL when not found. */
static void map_find(struct store *s)
{
	MDB_envinfo ei;
	struct stat sb;
	char line[4352];
	FILE *f;

	s->map = NULL;
	s->prefaulted = 0;
	if (!s->prefault || mdb_env_info(s->env, &ei) || stat(s->path, &sb))
		return;
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, ino;
		unsigned maj, min;

		if (sscanf(line, "%lx-%lx %*s %*s %x:%x %lu", &lo, &hi, &maj,
			   &min, &ino) == 5 &&
		    ino == sb.st_ino && maj == major(sb.st_dev) &&
		    min == minor(sb.st_dev) && hi - lo == ei.me_mapsize) {
			s->map = (char *)lo;
			s->map_pages = ei.me_mapsize / s->psize;
			break;
		}
	}
	fclose(f);
}

static void map_prefault(struct store *s)
{
	MDB_envinfo ei;
	size_t next, want;

	if (!s->map || mdb_env_info(s->env, &ei))
		return;
	next = ei.me_last_pgno + 1;
	if (next + PREFAULT_LOW <= s->prefaulted)
		return;
	want = next + PREFAULT_AHEAD < s->map_pages ? next + PREFAULT_AHEAD :
						       s->map_pages;
	if (s->prefaulted < next)
		s->prefaulted = next;
	if (want <= s->prefaulted)
		return;
	/* Older kernels (before 5.14) refuse it: then fault page by page.
	 * It never changes what the pages hold. */
	if (madvise(s->map + s->prefaulted * s->psize,
		    (want - s->prefaulted) * s->psize, MADV_POPULATE_WRITE)) {
		s->map = NULL;
		return;
	}
	s->prefaulted = want;
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
		/* t->now: read at the first need (store_txn_now), which a
		 * get of a record that cannot expire never has */
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
		/* LMDB mapped the file anew; find it under the writer lock,
		 * which guards s->map in this process */
		if (rc == 0)
			map_find(s);
	}
	if (rc)
		return store_err(rc);
	map_prefault(s);
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
	t->first_seq = 0;
	t->now = store_clock(s);
	t->now_set = 1;
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

int store_log_drop(struct store_txn *t, MDB_cursor *c, uint64_t seq,
		   const MDB_val *v)
{
	struct meta *m = &t->meta;
	int rc = store_horizon_trimmed(t, v->mv_data, v->mv_size);

	if (rc)
		return rc;
	m->log_bytes -= v->mv_size < m->log_bytes ? v->mv_size : m->log_bytes;
	rc = mdb_cursor_del(c, 0);
	if (rc)
		return rc;
	m->log_first = seq + 1;
	t->meta_dirty = 1;
	return 0;
}

/* Keep about binlog_max entries and a quarter of the map in bytes: drop
 * the oldest. The byte cap is what lets a delete free space in a full
 * store, and what keeps a dead peer from filling it. Both caps are soft:
 * a commit group (entries flagged STORE_CHANGE_MORE up to the first
 * without) is trimmed whole or not at all, and the entries of the
 * committing transaction are never trimmed, so one large commit may
 * exceed a cap until the next. Trimming waits for a little slack past a
 * cap and then removes a run at once, so the oldest leaf pages are
 * copied once per run, not once per commit. */
static int log_trim(struct store_txn *t)
{
	struct meta *m = &t->meta;
	uint64_t max = t->s->opts.binlog_max;
	uint64_t max_bytes = t->s->opts.map_size / 4;
	uint64_t stop = t->first_seq ? t->first_seq : m->log_last + 1;
	int in_group = 0;
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
	while (m->log_first < stop &&
	       (in_group || m->log_last - m->log_first + 1 > max ||
		m->log_bytes > max_bytes - max_bytes / 16)) {
		uint64_t seq;

		rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
		if (rc)
			break;
		memcpy(&seq, k.mv_data, sizeof(seq));
		if (seq >= stop)
			break;
		in_group = v.mv_size > 1 &&
			   (((unsigned char *)v.mv_data)[1] & STORE_CHANGE_MORE);
		rc = store_log_drop(t, c, seq, &v);
		if (rc)
			break;
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
		memset(r, 0, sizeof(*r));
		r->st.type = STORE_NONE;
		return store_err(rc);
	}
	if (rec_decode_local(v.mv_data, v.mv_size, r)) {
		log_msg(LOG_ERROR, "%s: corrupt record for %s", t->s->path,
			path);
		return -EIO;
	}
	return 0;
}

int store_paths_add(struct store_paths *pv, const char *p, size_t len)
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

void store_paths_free(struct store_paths *pv)
{
	for (size_t i = 0; i < pv->n; i++)
		free(pv->v[i]);
	free(pv->v);
	pv->v = NULL;
	pv->n = pv->cap = 0;
}

int store_walk_below(struct store_txn *t, const char *path,
		     store_walk_cb cb, void *arg)
{
	size_t len = strlen(path);
	char prefix[PATH_MAX + 1];
	MDB_cursor *c;
	MDB_val k, v;
	int rc, ret = 0;

	rc = mdb_cursor_open(t->txn, t->s->dbi_rec, &c);
	if (rc)
		return store_err(rc);
	/* Children start with path + '\0', deeper ones with path + '/'.
	 * For the root that is every key but "/" itself. */
	for (int pass = 0; pass < 2 && !ret; pass++) {
		size_t plen = 0;

		if (len > 1) {
			memcpy(prefix, path, len);
			prefix[len] = pass == 0 ? '\0' : '/';
			plen = len + 1;
		} else if (pass == 1) {
			break;
		}
		k.mv_size = plen;
		k.mv_data = prefix;
		rc = plen ? mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) :
			    mdb_cursor_get(c, &k, &v, MDB_FIRST);
		for (; rc == 0 && !ret; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen))
				break;
			if (k.mv_size == 1 && ((char *)k.mv_data)[0] == '/')
				continue;
			ret = cb(arg, &k, &v);
		}
		if (rc && rc != MDB_NOTFOUND && !ret)
			ret = store_err(rc);
	}
	mdb_cursor_close(c);
	return ret;
}

static int any_key(void *arg, const MDB_val *k, const MDB_val *v)
{
	(void)arg;
	(void)k;
	(void)v;
	return 1;
}

static int any_live(void *arg, const MDB_val *k, const MDB_val *v)
{
	struct store_txn *t = arg;
	struct rec r;

	(void)k;
	return rec_decode_local(v->mv_data, v->mv_size, &r) == 0 &&
	       store_txn_live(t, &r);
}

int store_live_below(struct store_txn *t, const char *path)
{
	return store_walk_below(t, path, any_live, t);
}

int store_keys_below(struct store_txn *t, const char *path)
{
	return store_walk_below(t, path, any_key, NULL);
}

/* The visible stat of a stored record (replica.c, rules 5 and 6): live
 * content shows as itself, except a non-directory with anything live
 * under it, which shows as a directory, as does dead content (a
 * tombstone, a placeholder, an expired file) with anything live under
 * it. A directory shown that way has its owner field's permission bits
 * (0755 if it never had any), searchable wherever they are readable (a
 * file's 0644 shows as 0755), and no value. */
int store_rec_view(const struct rec *r, int live_below, int64_t now,
		   struct store_stat *st)
{
	int live = store_live(r, now);

	*st = r->st;
	if (live && (r->st.type == STORE_DIR || !live_below))
		return 0;
	if (!live_below)
		return -ENOENT;
	st->type = STORE_DIR;
	st->mode = r->st.fver[STORE_F_OWNER].node ? r->st.mode & 07777 : 0755;
	/* owner bits that came from a file: searchable where readable */
	st->mode = S_IFDIR | st->mode | ((st->mode & 0444) >> 2);
	st->size = 0;
	st->expires_ns = 0;
	return 0;
}

/* The visible record at path, or -ENOENT (then r holds the stored
 * record, or r->st.type is STORE_NONE when there is none). On success
 * r->st is the visible stat (a derived directory has no value). */
int store_rec_live(struct store_txn *t, const char *path, struct rec *r)
{
	int err = store_rec_get(t, path, r), below = 0;
	struct store_stat st;

	if (err)
		return err;
	if (r->st.type == STORE_DIR || !(r->flags & REC_KIDS))
		return store_txn_live(t, r) ? 0 : -ENOENT;
	below = store_live_below(t, path);
	if (below < 0)
		return below;
	err = store_rec_view(r, below, store_txn_now(t), &st);
	if (err == 0 && st.type != r->st.type) {
		r->st = st;
		r->value = NULL;
		r->derived = 1;
	}
	return err;
}

static void clock_tick(struct store_txn *t)
{
	int64_t ms = store_clock(t->s) / 1000000;
	uint64_t now = ms > 0 ? (uint64_t)ms << 16 : 0;

	/* Never wraps: a peer's clock can only push ours max_offset_ms
	 * ahead of the wall clock (replica.c, rule 8). */
	if (now > t->meta.hlc)
		t->meta.hlc = now;
	else if (t->meta.hlc < UINT64_MAX)
		t->meta.hlc++;
	t->meta_dirty = 1;
}

struct store_version store_tick(struct store_txn *t)
{
	struct store_version v;

	clock_tick(t);
	/* Our sequence is our clock: strictly increasing, and never reused
	 * by a store restored from an older copy, whose clock has moved on
	 * since (replica.c, rule 9). */
	if (t->meta.hlc <= t->meta.local_seq)
		t->meta.hlc = t->meta.local_seq + 1;
	t->meta.local_seq = t->meta.hlc;
	if (!t->meta.run_first)
		t->meta.run_first = t->meta.hlc;
	v.hlc = t->meta.hlc;
	v.node = t->s->node_id;
	return v;
}

/* Keep the O(1) counts of store_info. */
static void count(struct meta *m, const struct rec *r, int sign)
{
	uint64_t *n;

	if (!r)
		return;
	n = r->st.type == STORE_TOMBSTONE || r->st.type == STORE_PLACEHOLDER ?
		    &m->n_dead : &m->n_live;
	if (sign > 0) {
		(*n)++;
		m->value_bytes += r->st.size;
	} else {
		*n -= *n ? 1 : 0;
		m->value_bytes -= r->st.size < m->value_bytes ?
					  r->st.size : m->value_bytes;
	}
}

/* Room in t->next for `need` bytes. */
static int next_reserve(struct store_txn *t, size_t need)
{
	unsigned char *buf;

	if (need <= t->next_cap)
		return 0;
	buf = realloc(t->next, need);
	if (!buf)
		return -ENOMEM;
	t->next = buf;
	t->next_cap = need;
	return 0;
}

/* Make the encoded change in t->next (need bytes) the pending binlog
 * entry, flushing the one before it. */
static int log_take(struct store_txn *t, size_t need)
{
	unsigned char *swap;
	size_t cap;
	int rc = pend_flush(t, 1);

	if (rc)
		return store_err(rc);
	swap = t->pend;
	t->pend = t->next;
	t->next = swap;
	cap = t->pend_cap;
	t->pend_cap = t->next_cap;
	t->next_cap = cap;
	t->pend_len = need;
	t->pend_seq = ++t->meta.log_last;
	if (!t->meta.log_first)
		t->meta.log_first = t->pend_seq;
	if (!t->first_seq)
		t->first_seq = t->pend_seq;
	t->meta_dirty = 1;
	t->logged = 1;
	return 0;
}

int store_rec_put(struct store_txn *t, const char *path, const struct rec *r,
		  const struct rec *old, const struct store_change *log)
{
	struct store *s = t->s;
	size_t plen = strlen(path), rlen = rec_encoded_len(r), lneed = 0;
	char key[PATH_MAX];
	unsigned char *buf;
	MDB_val k, v;
	int err;

	/* Encode everything into t->next before writing anything: r, old
	 * and log may point into pages that a write moves. The buffer holds
	 * [binlog entry][record], or for a local change [header][path]
	 * [record] where the record is also the entry's. */
	if (log && !log->rec)
		lneed = CHANGE_HDR_LEN + plen;
	else if (log)
		lneed = CHANGE_HDR_LEN + log->path_len + log->rec_len;
	err = next_reserve(t, lneed + rlen);
	if (err)
		return err;
	buf = t->next;
	if (log && !log->rec) {
		struct store_change c = *log;

		c.path_len = plen;
		c.rec_len = rlen;
		change_hdr_encode(buf, &c);
		memcpy(buf + CHANGE_HDR_LEN, path, plen);
	} else if (log) {
		change_hdr_encode(buf, log);
		memcpy(buf + CHANGE_HDR_LEN, log->path, log->path_len);
		memcpy(buf + CHANGE_HDR_LEN + log->path_len, log->rec,
		       log->rec_len);
	}
	rec_encode(buf + lneed, r);
	count(&t->meta, old, -1);
	count(&t->meta, r, 1);
	t->meta_dirty = 1;
	if (log) {
		err = log_take(t, lneed + (log->rec ? 0 : rlen));
		if (err)
			return err;
		buf = t->pend; /* the swap moved our bytes there */
	}
	k.mv_size = store_key_of(path, plen, key);
	k.mv_data = key;
	v.mv_size = rlen;
	v.mv_data = buf + lneed;
	return store_err(mdb_put(t->txn, s->dbi_rec, &k, &v, 0));
}

/* Free pages in LMDB's freelist, as seen by the read transaction rtxn
 * (LMDB allows no cursor on the freelist in a write transaction). */
static size_t free_pages(MDB_txn *rtxn)
{
	MDB_cursor *c;
	MDB_val k, v;
	size_t n, total = 0;

	if (mdb_cursor_open(rtxn, 0, &c) == 0) {
		while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
			memcpy(&n, v.mv_data, sizeof(n));
			total += n;
		}
		mdb_cursor_close(c);
	}
	return total;
}

/* Room for `bytes` more? Writes that grow the store leave a reserve so
 * that deletes (which copy pages before they free them) always work. */
static int space_check(struct store_txn *t, size_t bytes)
{
	struct store *s = t->s;
	MDB_envinfo info;
	MDB_txn *rtxn;
	size_t pages, reserve, need, freed = 0;

	mdb_env_info(s->env, &info);
	pages = info.me_mapsize / s->psize;
	reserve = pages / 32 + 16;
	/* the record, its binlog copy, and a few pages of tree */
	need = (bytes * 2) / s->psize + 4;
	if (info.me_last_pgno + need + reserve < pages)
		return 0;
	if (store_rtxn_get(s, &rtxn) == 0) {
		freed = free_pages(rtxn);
		store_rtxn_put(s, rtxn);
	}
	if (info.me_last_pgno - freed + need + reserve < pages)
		return 0;
	return -ENOSPC;
}

void store_rec_unplace(struct store_txn *t, struct rec *r)
{
	if (r->st.type != STORE_PLACEHOLDER)
		return;
	r->st.type = STORE_TOMBSTONE;
	r->st.size = 0;
	r->value = NULL;
	r->dead_ns = store_txn_now(t);
}

int store_rec_write_local(struct store_txn *t, const char *path,
			  struct rec *r, const struct rec *old,
			  struct store_version v)
{
	unsigned char vv[REC_VV_LEN * (STORE_VV_MAX + 1)];
	struct store_change log = { .origin_node = v.node,
				    .origin_seq = v.hlc,
				    .writer = t->s->writer };
	unsigned n = 0, i;
	int err, put = 0;

	store_rec_unplace(t, r);
	if (r->st.type != STORE_TOMBSTONE) {
		err = space_check(t, r->st.size + r->st.xattr_len);
		if (err)
			return err;
	}
	/* old's vector with our entry at v, kept in node order */
	for (i = 0; old && i < old->st.nvv; i++) {
		struct store_vv_entry e = store_vv_at(old->vv, i);

		if (!put && e.node >= v.node) {
			vv_put(vv, n++, v.node, v.hlc);
			put = 1;
		}
		if (e.node != v.node)
			vv_put(vv, n++, e.node, e.seq);
	}
	if (!put)
		vv_put(vv, n++, v.node, v.hlc);
	if (n > STORE_VV_MAX)
		return -E2BIG;
	r->st.nvv = n;
	r->vv = vv;
	{
		/* every local change sets some field to its version: a peer
		 * refuses a change that carries its version nowhere */
		struct store_version nv = rec_newest(r);

		assert(!vcmp(&nv, &v));
	}
	r->dead_ns = r->st.type == STORE_TOMBSTONE ? store_txn_now(t) : 0;
	r->st.version = v;
	r->st.origin_seq = v.hlc;
	return store_rec_put(t, path, r, old, &log);
}

/* A fresh stat for something new. */
void store_stat_new(const struct store *s, struct store_stat *st,
		    enum store_type type, const struct store_attr *a,
		    unsigned mask, int64_t now)
{
	memset(st, 0, sizeof(*st));
	st->type = type;
	st->mode = store_type_ifmt(type) |
		   (mask & STORE_ATTR_MODE ? a->mode & 07777 :
		    type == STORE_DIR ? 0755 : type == STORE_SYMLINK ? 0777 : 0644);
	st->uid = mask & STORE_ATTR_UID ? a->uid : s->uid;
	st->gid = mask & STORE_ATTR_GID ? a->gid : s->gid;
	st->mtime_ns = mask & STORE_ATTR_MTIME ? a->mtime_ns : now;
	st->atime_ns = mask & STORE_ATTR_ATIME ? a->atime_ns : st->mtime_ns;
	st->ctime_ns = now;
}

void store_ttl_renew(struct store_stat *st, int64_t now)
{
	st->expires_ns = st->ttl_ms ? now + (int64_t)st->ttl_ms * 1000000 : 0;
}

int store_rec_create(struct store_txn *t, const char *path, struct rec *nr,
		     const struct rec *old, struct store_version v)
{
	unsigned char x[XATTR_HDR_LEN];
	int err;

	for (int i = 0; i < STORE_FIELDS; i++)
		nr->st.fver[i] = v;
	/* The floor at v: no xattr older than the new file shows with it,
	 * on any node, whatever it still holds of the old record. */
	nr->xattrs = x;
	nr->st.xattr_len = xattr_put(x, NULL, 0, NULL, 0, 1, v);
	nr->flags = 0;
	if (old && nr->st.type != STORE_DIR) {
		err = store_keys_below(t, path);
		if (err < 0)
			return err;
		if (err)
			nr->flags |= REC_KIDS;
	}
	return store_rec_write_local(t, path, nr, old, v);
}

/* Check the parent of `path` for a create; with `parents`, create the
 * missing directories (mkdir -p), top down, without recursion. Returns
 * 1 if it created any, 0, or a negative errno. */
int store_parent_ready(struct store_txn *t, const char *path, int parents,
		       const struct store_attr *a, unsigned mask,
		       uint64_t *dir_ttl)
{
	char pbuf[PATH_MAX], buf[PATH_MAX];
	const char *dir = store_parent_of(path, pbuf);
	size_t len = strlen(dir), at;
	struct rec r;
	int err, made = 0;

	*dir_ttl = 0;
	err = store_rec_live(t, dir, &r);
	if (err == 0) {
		if (r.st.type != STORE_DIR)
			return -ENOTDIR;
		*dir_ttl = r.st.ttl_ms;
		return 0;
	}
	if (err != -ENOENT || !parents)
		return err;
	memcpy(buf, dir, len + 1);
	/* Walk down from the root: every component that is not visible
	 * becomes a directory; a visible non-directory is ENOTDIR. */
	for (at = 1; at <= len; at++) {
		if (at < len && dir[at] != '/')
			continue;
		buf[at] = '\0';
		err = store_rec_live(t, buf, &r);
		if (err == 0 && r.st.type != STORE_DIR)
			return -ENOTDIR;
		if (err == -ENOENT) {
			struct store_attr da = a ? *a : (struct store_attr){ 0 };
			struct store_version v = store_tick(t);
			struct rec nr;
			int have = r.st.type != STORE_NONE;

			da.mode = 0755;
			memset(&nr, 0, sizeof(nr));
			store_stat_new(t->s, &nr.st, STORE_DIR, &da,
				       STORE_ATTR_MODE |
					       (mask & (STORE_ATTR_UID | STORE_ATTR_GID)),
				       store_txn_now(t));
			err = store_rec_create(t, buf, &nr, have ? &r : NULL, v);
			made = 1;
		}
		if (err)
			return err;
		if (at < len)
			buf[at] = '/';
	}
	*dir_ttl = 0;
	return made;
}

int store_reserved(const char *path)
{
	return strcmp(path, "/.statefs") == 0 ||
	       strncmp(path, "/.statefs/", 10) == 0;
}

int store_path_ok(struct store *s, const char *path)
{
	return store_path_check(s, path);
}

/* ---- maintenance ---- */

/* The watermarks of every known peer, loaded for a sweep. */
struct peer_wm {
	uint64_t peer, origin, seq;
};

static int peers_load(struct store_txn *t, struct peer_wm **out, size_t *n)
{
	MDB_cursor *c;
	MDB_val k, v;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	rc = mdb_cursor_open(t->txn, t->s->dbi_peer, &c);
	if (rc)
		return store_err(rc);
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		if (k.mv_size != 16 || v.mv_size != 8)
			continue;
		if (*n == cap) {
			struct peer_wm *p;

			cap = cap ? cap * 2 : 16;
			p = realloc(*out, cap * sizeof(*p));
			if (!p) {
				mdb_cursor_close(c);
				return -ENOMEM;
			}
			*out = p;
		}
		memcpy(&(*out)[*n].peer, k.mv_data, 8);
		memcpy(&(*out)[*n].origin, (char *)k.mv_data + 8, 8);
		memcpy(&(*out)[*n].seq, v.mv_data, 8);
		(*n)++;
	}
	mdb_cursor_close(c);
	return 0;
}

/* Has every known peer seen everything record r has seen? */
static int acked(const struct rec *r, const struct peer_wm *pw, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && pw[i].peer == pw[i - 1].peer)
			continue;
		/* peer pw[i].peer: each vector entry needs a watermark */
		for (unsigned e = 0; e < r->st.nvv; e++) {
			struct store_vv_entry ve = store_vv_at(r->vv, e);
			uint64_t have = 0;

			for (size_t j = i; j < n && pw[j].peer == pw[i].peer; j++)
				if (pw[j].origin == ve.node)
					have = pw[j].seq;
			if (have < ve.seq)
				return 0;
		}
	}
	return 1;
}

/* Have we ourselves applied everything record r has seen? A record can
 * arrive before changes it saw (by another path): purging it then would
 * let such a change, arriving later, bring back what it deleted. */
static int seen_all(const struct store_txn *t, const struct rec *r)
{
	for (unsigned e = 0; e < r->st.nvv; e++) {
		struct store_vv_entry ve = store_vv_at(r->vv, e);
		MDB_val k = { sizeof(ve.node), &ve.node }, v;
		uint64_t have = 0;

		if (ve.node == t->s->node_id)
			continue; /* our own changes: all here */
		if (mdb_get(t->txn, t->s->dbi_vv, &k, &v) == 0 &&
		    v.mv_size == sizeof(have))
			memcpy(&have, v.mv_data, sizeof(have));
		if (have < ve.seq)
			return 0;
	}
	return 1;
}

/* Can record r go? (see store_sweep in store.h) */
static int purgeable(struct store_txn *t, const struct rec *r,
		     const struct peer_wm *pw, size_t npw)
{
	int64_t grace = (int64_t)t->s->opts.tombstone_grace_ms * 1000000;
	int64_t since;

	switch (r->st.type) {
	case STORE_PLACEHOLDER:
		return 1;
	case STORE_TOMBSTONE:
		since = r->dead_ns ? r->dead_ns : r->st.ctime_ns;
		break;
	case STORE_FILE:
	case STORE_SYMLINK:
		if (store_live(r, store_txn_now(t)))
			return 0;
		since = r->st.expires_ns;
		break;
	default:
		return 0;
	}
	if (!t->meta.npeers)
		return 1;
	return since + grace <= store_txn_now(t) && acked(r, pw, npw) &&
	       seen_all(t, r);
}

struct sweep_ctx {
	struct store_txn *t;
	const struct peer_wm *pw;
	size_t npw;
	struct store_paths paths;
};

static int sweep_collect(void *arg, const MDB_val *k, const MDB_val *v)
{
	struct sweep_ctx *x = arg;
	char path[PATH_MAX + 1];
	struct rec r;

	if (rec_decode_local(v->mv_data, v->mv_size, &r) ||
	    !purgeable(x->t, &r, x->pw, x->npw))
		return 0;
	return store_paths_add(&x->paths, path, store_key_path(k, path));
}

/*
 * Collect the paths to purge in one walk, then delete them in reverse
 * key order (children sort after their parent), each only if nothing is
 * left under it. Nothing is written while the cursor walks.
 */
int store_sweep(struct store *s, size_t max)
{
	struct sweep_ctx x = { 0 };
	struct store_txn *t;
	struct peer_wm *pw = NULL;
	struct rec r;
	int err, purged = 0;

	err = store_txn_begin(s, 1, &t);
	if (err)
		return err;
	err = peers_load(t, &pw, &x.npw);
	x.t = t;
	x.pw = pw;
	if (!err)
		err = store_walk_below(t, "/", sweep_collect, &x);
	for (size_t i = x.paths.n; !err && i-- > 0 && (!max || (size_t)purged < max);) {
		const char *path = x.paths.v[i];
		char key[PATH_MAX];
		MDB_val dk;

		err = store_keys_below(t, path);
		if (err) {
			err = err < 0 ? err : 0;
			continue;
		}
		err = store_rec_get(t, path, &r);
		if (err)
			break;
		count(&t->meta, &r, -1);
		t->meta_dirty = 1;
		dk.mv_size = store_key_of(path, strlen(path), key);
		dk.mv_data = key;
		err = store_err(mdb_del(t->txn, s->dbi_rec, &dk, NULL));
		purged++;
	}
	store_paths_free(&x.paths);
	free(pw);
	if (err) {
		store_txn_abort(&t);
		return err;
	}
	err = store_txn_commit(&t);
	return err ? err : purged;
}

/* What record r (key k) shows as; 0 visible, -ENOENT not. */
static int view_of(struct store_txn *t, const MDB_val *k, const struct rec *r,
		   struct store_stat *st)
{
	char path[PATH_MAX + 1];
	int below = 0;

	if (r->st.type != STORE_DIR && r->flags & REC_KIDS) {
		store_key_path(k, path);
		below = store_live_below(t, path);
		if (below < 0)
			return below;
	}
	return store_rec_view(r, below, store_txn_now(t), st);
}

int store_digest(struct store *s, unsigned char out[STORE_DIGEST_LEN])
{
	crypto_generichash_state h;
	struct store_txn *t, mem;
	MDB_cursor *c;
	MDB_val k, v;
	struct rec r;
	int rc, err;

	err = txn_begin(s, 0, &t, &mem);
	if (err)
		return err;
	rc = mdb_cursor_open(t->txn, s->dbi_rec, &c);
	if (rc) {
		store_txn_abort(&t);
		return store_err(rc);
	}
	crypto_generichash_init(&h, NULL, 0, STORE_DIGEST_LEN);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct store_stat st;
		unsigned char hdr[24];
		uint64_t x;
		int vis;

		if (rec_decode_local(v.mv_data, v.mv_size, &r)) {
			err = -EIO;
			break;
		}
		vis = view_of(t, &k, &r, &st);
		if (vis == -ENOENT)
			continue;
		if (vis < 0) {
			err = vis;
			break;
		}
		/* key length, key, type, mode, value length, value */
		x = htole64(k.mv_size);
		memcpy(hdr, &x, 8);
		x = htole64((uint64_t)st.type << 32 | st.mode);
		memcpy(hdr + 8, &x, 8);
		x = htole64(st.size);
		memcpy(hdr + 16, &x, 8);
		crypto_generichash_update(&h, hdr, 8);
		crypto_generichash_update(&h, k.mv_data, k.mv_size);
		crypto_generichash_update(&h, hdr + 8, 16);
		if (st.size)
			crypto_generichash_update(&h, r.value, st.size);
	}
	mdb_cursor_close(c);
	store_txn_abort(&t);
	if (err)
		return err;
	crypto_generichash_final(&h, out, STORE_DIGEST_LEN);
	return 0;
}

int store_info(struct store *s, struct store_info *info)
{
	MDB_txn *txn;
	MDB_envinfo ei;
	MDB_stat ms;
	struct meta m;
	size_t freed;
	int rc;

	memset(info, 0, sizeof(*info));
	rc = store_rtxn_get(s, &txn);
	if (rc)
		return store_err(rc);
	rc = store_meta_load(txn, s->dbi_meta, &m);
	if (rc) {
		store_rtxn_put(s, txn);
		return store_err(rc);
	}
	mdb_env_info(s->env, &ei);
	mdb_env_stat(s->env, &ms);
	freed = free_pages(txn);
	store_rtxn_put(s, txn);
	info->node_id = s->node_id;
	snprintf(info->node_name, sizeof(info->node_name), "%s", s->node_name);
	info->records = m.n_live;
	info->tombstones = m.n_dead;
	info->value_bytes = m.value_bytes;
	info->map_size = ei.me_mapsize;
	info->map_used = (uint64_t)(ei.me_last_pgno + 1 - freed) * ms.ms_psize;
	info->max_value = s->opts.max_value;
	info->binlog_first = m.log_first;
	info->binlog_last = m.log_last;
	info->binlog_count = m.log_first ? m.log_last - m.log_first + 1 : 0;
	info->local_seq = m.local_seq;
	info->format = m.format;
	info->recovering = m.rec_hi > m.rec_lo ? 1 : 0;
	pthread_mutex_lock(&s->pool_lock);
	info->held = s->held;
	info->held_ahead_ms = s->held_ahead_ms;
	info->too_old = s->too_old;
	pthread_mutex_unlock(&s->pool_lock);
	return 0;
}

/* ---- the consistency check ---- */

static int check_fail(char *msg, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int check_fail(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (len) {
		va_start(ap, fmt);
		vsnprintf(msg, len, fmt, ap);
		va_end(ap);
	}
	return -EUCLEAN;
}

int store_check(struct store *s, char *msg, size_t msglen)
{
	struct store_txn *t, mem;
	MDB_cursor *c;
	MDB_val k, v;
	struct rec r, pr;
	uint64_t n_live = 0, n_dead = 0, bytes = 0, seq, prev = 0;
	int rc, err;

	c = NULL;
	if (msglen)
		msg[0] = '\0';
	err = txn_begin(s, 0, &t, &mem);
	if (err)
		return err;
	err = store_meta_load(t->txn, s->dbi_meta, &t->meta) ?
		      check_fail(msg, msglen, "bookkeeping record unreadable") : 0;
	rc = err ? 0 : mdb_cursor_open(t->txn, s->dbi_rec, &c);
	if (rc) {
		c = NULL;
		err = store_err(rc);
	}
	for (rc = err ? MDB_NOTFOUND : mdb_cursor_get(c, &k, &v, MDB_FIRST);
	     rc == 0 && !err; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		char path[PATH_MAX + 1], key[PATH_MAX], pbuf[PATH_MAX];
		struct store_stat st, pst;
		const char *parent;
		int vis;

		if (k.mv_size == 0 || k.mv_size > s->maxkey) {
			err = check_fail(msg, msglen, "key of %zu bytes", k.mv_size);
			break;
		}
		if (rec_decode(v.mv_data, v.mv_size, &r)) {
			err = check_fail(msg, msglen, "record %.*s does not decode",
					 (int)k.mv_size, (char *)k.mv_data);
			break;
		}
		if (k.mv_size == 1 && ((char *)k.mv_data)[0] == '/') {
			if (r.st.type != STORE_DIR)
				err = check_fail(msg, msglen, "the root is not a directory");
			continue;
		}
		if (!memchr(k.mv_data, '\0', k.mv_size)) {
			err = check_fail(msg, msglen, "key without a separator");
			break;
		}
		store_key_path(&k, path);
		if (store_path_check(s, path) ||
		    store_key_of(path, strlen(path), key) != k.mv_size ||
		    memcmp(key, k.mv_data, k.mv_size)) {
			err = check_fail(msg, msglen, "key of %s is not canonical", path);
			break;
		}
		if (r.st.type == STORE_TOMBSTONE || r.st.type == STORE_PLACEHOLDER) {
			n_dead++;
		} else {
			n_live++;
		}
		bytes += r.st.size;
		parent = store_parent_of(path, pbuf);
		if (strcmp(parent, "/") && store_rec_get(t, parent, &pr)) {
			err = check_fail(msg, msglen, "%s has no parent record", path);
			break;
		}
		if (r.st.type != STORE_DIR && !(r.flags & REC_KIDS) &&
		    store_keys_below(t, path) > 0) {
			err = check_fail(msg, msglen,
					 "%s has keys under it but no KIDS flag", path);
			break;
		}
		vis = view_of(t, &k, &r, &st);
		if (vis < 0 && vis != -ENOENT) {
			err = vis;
			break;
		}
		if (vis == 0) {
			int pv = store_rec_live(t, parent, &pr);

			pst = pr.st;
			if (pv || pst.type != STORE_DIR) {
				err = check_fail(msg, msglen,
						 "%s is visible but its parent is not a "
						 "visible directory", path);
				break;
			}
		}
	}
	if (rc && rc != MDB_NOTFOUND && !err)
		err = store_err(rc);
	if (c)
		mdb_cursor_close(c);
	c = NULL;
	if (!err && (n_live != t->meta.n_live || n_dead != t->meta.n_dead ||
		     bytes != t->meta.value_bytes))
		err = check_fail(msg, msglen,
				 "counts: %" PRIu64 " live, %" PRIu64 " dead, %" PRIu64
				 " bytes; bookkeeping says %" PRIu64 ", %" PRIu64
				 ", %" PRIu64, n_live, n_dead, bytes, t->meta.n_live,
				 t->meta.n_dead, t->meta.value_bytes);
	/* the binlog: contiguous from log_first to log_last, all decode */
	if (!err) {
		rc = mdb_cursor_open(t->txn, s->dbi_log, &c);
		if (rc) {
			c = NULL;
			err = store_err(rc);
		}
		for (rc = err ? MDB_NOTFOUND : mdb_cursor_get(c, &k, &v, MDB_FIRST);
		     rc == 0 && !err; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			struct store_change ch;

			memcpy(&seq, k.mv_data, sizeof(seq));
			if (store_change_decode(v.mv_data, v.mv_size, &ch))
				err = check_fail(msg, msglen,
						 "binlog entry %" PRIu64 " does not decode", seq);
			else if ((prev && seq != prev + 1) ||
				 (!prev && seq != t->meta.log_first))
				err = check_fail(msg, msglen,
						 "binlog gap before %" PRIu64, seq);
			prev = seq;
		}
		if (!err && prev != (t->meta.log_first &&
				     t->meta.log_first <= t->meta.log_last ?
				     t->meta.log_last : 0))
			err = check_fail(msg, msglen, "binlog ends at %" PRIu64
					 ", bookkeeping says %" PRIu64, prev,
					 t->meta.log_last);
		if (c)
			mdb_cursor_close(c);
	}
	store_txn_abort(&t);
	return err;
}

uint32_t store_writer_token(struct store *s)
{
	return s->writer;
}

/* ---- open and close ---- */

/*
 * Is this LMDB file a statefs store? 0: yes, *m loaded; 1: empty (a new
 * store); 2: a format 1 store to upgrade; 3: a format 2 store to upgrade
 * (*m loaded); negative: not one of ours, with the message set.
 */
static int meta_check(MDB_txn *txn, MDB_dbi main, const char *file,
		      struct meta *m)
{
	MDB_stat ms;
	MDB_val k = { sizeof(meta_key) - 1, meta_key }, v;
	uint32_t format;
	int rc = store_meta_load(txn, main, m);

	if (rc == MDB_CORRUPTED && mdb_get(txn, main, &k, &v) == 0 &&
	    v.mv_size >= sizeof(format)) {
		memcpy(&format, v.mv_data, sizeof(format));
		if (format == 1)
			return 2; /* statefs 0.1: upgrade.c rewrites it */
	}
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
	if (m->format == 2)
		return 3; /* upgrade.c re-encodes it */
	if (m->format != STORE_FORMAT) {
		store_set_error("%s: not a statefs store (format %u); left "
				"untouched", file, m->format);
		return -EINVAL;
	}
	return 0;
}

/* First use: the format record, a node id, the root directory. */
static int store_init(struct store *s, MDB_txn *txn)
{
	struct meta m;
	struct rec root;
	char key[2] = "/";
	MDB_val k = { 1, key }, v;
	unsigned char buf[REC_HDR_LEN + REC_VER_LEN];
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
	/* The root: local, never replicated, always a directory. */
	memset(&root, 0, sizeof(root));
	root.st.type = STORE_DIR;
	root.st.mode = S_IFDIR | 0755;
	root.st.uid = getuid();
	root.st.gid = getgid();
	root.st.mtime_ns = root.st.ctime_ns = root.st.atime_ns = store_clock(s);
	rec_encode(buf, &root); /* one version (0), nothing optional */
	v.mv_size = rec_encoded_len(&root);
	v.mv_data = buf;
	return mdb_put(txn, s->dbi_rec, &k, &v, 0);
}

static int open_dbs(struct store *s, const char *file);

/* A format 1 or 2 store (its meta record in *m): re-encode it in txn,
 * which this ends, then open it. A read-only open is refused; a failed
 * upgrade leaves the file as it was. */
static int upgrade(struct store *s, MDB_txn *txn, const char *file,
		   struct meta *m, int format)
{
	int rc;

	if (s->opts.readonly) {
		store_set_error("%s: store format %d%s: open it read-write once "
				"to upgrade it", file, format,
				format == 1 ? " (statefs 0.1)" : "");
		mdb_txn_abort(txn);
		return -EPROTO;
	}
	rc = mdb_dbi_open(txn, "rec", 0, &s->dbi_rec);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "log", MDB_INTEGERKEY, &s->dbi_log);
	if (rc == 0 && format == 1) {
		rc = mdb_dbi_open(txn, "vv", MDB_INTEGERKEY, &s->dbi_vv);
		if (rc == 0)
			rc = mdb_dbi_open(txn, "peer", MDB_CREATE, &s->dbi_peer);
		if (rc == 0)
			rc = store_upgrade_v1(s, txn, file);
	} else if (rc == 0) {
		rc = store_upgrade_v2(s, txn, file, m);
	}
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	if (rc) {
		store_set_error("%s: cannot upgrade the store from format %d: "
				"%s; the file is left as it was", file, format,
				mdb_strerror(rc));
		return store_err(rc);
	}
	s->upgraded = format == 1; /* store_open's fixup */
	return open_dbs(s, file);
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
	if (rc == 2 || rc == 3)
		return upgrade(s, txn, file, &m, rc == 2 ? 1 : 2);
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
			rc = mdb_dbi_open(txn, "peer", MDB_CREATE, &s->dbi_peer);
		if (rc == 0)
			rc = mdb_dbi_open(txn, "horizon", MDB_CREATE | MDB_INTEGERKEY,
					  &s->dbi_horizon);
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
	if (rc == 0)
		rc = mdb_dbi_open(txn, "peer", cr, &s->dbi_peer);
	if (rc == 0) {
		/* added after 0.2's first stores: absent is empty */
		rc = mdb_dbi_open(txn, "horizon", cr | MDB_INTEGERKEY,
				  &s->dbi_horizon);
		if (rc == MDB_NOTFOUND) {
			s->dbi_horizon = 0;
			rc = 0;
		}
	}
	if (rc) {
		store_set_error("%s: not a statefs store (%s); left untouched", file,
			  mdb_strerror(rc));
		mdb_txn_abort(txn);
		return -EINVAL;
	}
	s->node_id = m.node_id;
	/* opts.node_name points at s->node_name: compare before it is
	 * overwritten with the stored name */
	if (s->opts.node_name && !ro &&
	    strcmp(s->opts.node_name, m.node_name) != 0) {
		snprintf(m.node_name, sizeof(m.node_name), "%s",
			 s->opts.node_name);
		rc = meta_save(txn, s->dbi_meta, &m);
		if (rc) {
			mdb_txn_abort(txn);
			store_set_error("%s: %s", file, mdb_strerror(rc));
			return store_err(rc);
		}
	}
	snprintf(s->node_name, sizeof(s->node_name), "%s", m.node_name);
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
		err = 0; /* empty, or format 1 or 2 to upgrade */
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return err;
}

/*
 * A run is a span of time during which some process has the store open.
 * Every opener holds a shared flock on the notify file; one that gets it
 * exclusively is the first of a new run and records where our own
 * sequence stood (replica.c, rule 9: what a peer holds of ours beyond
 * that point, and before our first change of the run, was lost).
 */
static int run_begin(struct store *s, const char *nfile)
{
	struct store_txn *t;
	int first, err;

	s->run_fd = open(nfile, O_RDONLY | O_CLOEXEC);
	if (s->run_fd < 0)
		return -errno;
	first = flock(s->run_fd, LOCK_EX | LOCK_NB) == 0;
	flock(s->run_fd, LOCK_SH);
	if (!first || s->opts.readonly)
		return 0;
	err = store_txn_begin(s, 1, &t);
	if (err)
		return err;
	if (t->meta.run_base != t->meta.local_seq || t->meta.run_first) {
		t->meta.run_base = t->meta.local_seq;
		t->meta.run_first = 0;
		t->meta_dirty = 1;
	}
	return store_txn_commit(&t);
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
	if (!s->opts.max_offset_ms)
		s->opts.max_offset_ms = STORE_DEFAULT_MAX_OFFSET_MS;
	s->run_fd = -1;
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
		/* probe reads without a reader slot (it must not make a lock
		 * file beside a file that may not be ours): a writer of a
		 * store in use may reuse a page under it. A real store reads
		 * right at the next try; only a refusal that stays counts. */
		for (int i = 0; i < 5; i++) {
			struct timespec ts = { 0, 2000000 };

			err = probe(file);
			if (!err)
				break;
			nanosleep(&ts, NULL);
		}
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

		struct statfs fs;

		mdb_env_stat(s->env, &ms);
		s->psize = ms.ms_psize;
		s->prefault = !s->opts.readonly &&
			      s->opts.sync == STORE_SYNC_NONE &&
			      statfs(file, &fs) == 0 &&
			      fs.f_type == TMPFS_MAGIC;
		map_find(s);
	}
	err = open_dbs(s, file);
	if (err)
		goto fail;
	if (s->upgraded) {
		err = store_upgrade_fixup(s);
		if (err) {
			store_set_error("%s: upgrade: %s", file, strerror(-err));
			goto fail;
		}
	}
	err = notify_open(nfile, s->opts.readonly, &s->notify);
	if (err) {
		store_set_error("%s: %s", nfile, strerror(-err));
		goto fail;
	}
	err = run_begin(s, nfile);
	if (err) {
		store_set_error("%s: %s", file, strerror(-err));
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
	if (s->run_fd >= 0)
		close(s->run_fd);
	pthread_mutex_destroy(&s->pool_lock);
	free(s->path);
	free(s);
	*sp = NULL;
}
