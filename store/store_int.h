/*
 * store_int.h — declarations shared inside store/ only. Never include it
 * from another module: store.h is the module's interface.
 */
#ifndef STATEFS_STORE_INT_H
#define STATEFS_STORE_INT_H

#include <endian.h>
#include <lmdb.h>
#include <string.h>
#include <pthread.h>

#include "common/le.h"
#include "store/store.h"

#define STORE_FORMAT 3

/* ---- record.c: little-endian encodings of records and changes ---- */

#define REC_HDR_LEN 28   /* the fixed part; the version table follows */
#define REC_VER_LEN 16   /* one version table entry { hlc, node } */
#define REC_VV_LEN 16
/* The record's opt byte (record.c): which optional parts follow the
 * version table; its bits 4-7 hold the REC_* flags. */
#define REC_OPT_CTIME 0x1u /* ctime_ns (absent: = mtime_ns) */
#define REC_OPT_ATIME 0x2u /* atime_ns (absent: = mtime_ns) */
#define REC_OPT_LIFE 0x4u  /* expires_ns, ttl_ms (absent: 0) */
#define REC_OPT_DEAD 0x8u  /* dead_ns (absent: 0) */
#define XATTR_HDR_LEN 22
#define CHANGE_HDR_LEN 32
#define CHANGE_PATH_MAX 4096

/* Local bookkeeping flags of a stored record (never meaningful on the
 * wire). REC_KIDS: keys may exist under this record, which is not a
 * directory (a deleted directory with deleted children, a placeholder,
 * a file that a peer's child arrived under), so what it shows as must be
 * looked up below it. Every non-directory record with keys under it has
 * the flag (store_check verifies it); without it a live record shows as
 * itself and a dead one as nothing, in O(1). */
#define REC_KIDS 0x1u
#define REC_FLAGS_MASK 0xfu /* the flags a record can hold (4 bits) */

/* A record decoded in place: pointers into the encoded bytes. */
struct rec {
	struct store_stat st;        /* st.type: the content, as stored */
	uint32_t flags;              /* REC_* (local) */
	int64_t dead_ns;             /* local: when it became a tombstone here */
	int derived;                 /* in memory: st is a derived view */
	const unsigned char *vv;     /* st.nvv entries of REC_VV_LEN bytes */
	const unsigned char *xattrs; /* st.xattr_len bytes */
	const unsigned char *value;  /* st.size bytes */
};

struct xattr_ent {
	unsigned name_len, removed;
	uint32_t value_len;
	struct store_version ver;
	const unsigned char *name, *value;
};

size_t rec_encoded_len(const struct rec *r);
void rec_encode(void *out, const struct rec *r);
int rec_decode(const void *buf, size_t len, struct rec *r);
/* A record read back from our own LMDB file: bounds checked, but none
 * of the order and range checks that rec_decode makes of peer input. */
int rec_decode_local(const void *buf, size_t len, struct rec *r);
struct store_version rec_newest(const struct rec *r);
/* The CHANGE_HDR_LEN-byte header of a change (path and record follow). */
void change_hdr_encode(void *out, const struct store_change *c);
uint32_t store_type_ifmt(enum store_type type);
int vcmp(const struct store_version *a, const struct store_version *b);

uint64_t vv_lookup(const void *vv, unsigned n, uint64_t node);
void vv_put(unsigned char *out, unsigned i, uint64_t node, uint64_t seq);
/* out has room for STORE_VV_MAX entries; -E2BIG past that. */
int vv_merge(const unsigned char *a, unsigned na, const unsigned char *b,
	     unsigned nb, unsigned char *out, unsigned *nout);

/* Xattr entries: decode the one at `off` (returns its length), encode
 * one (returns its length), compare names. */
size_t xattr_at(const unsigned char *x, size_t off, struct xattr_ent *e);
size_t xattr_put(unsigned char *out, const unsigned char *name,
		 size_t name_len, const void *value, size_t value_len,
		 int removed, struct store_version ver);
int xattr_name_cmp(const unsigned char *a, size_t al, const unsigned char *b,
		   size_t bl);
/* The floor of a run (version 0 if none), and whether an entry shows. */
struct store_version xattr_floor(const unsigned char *x, size_t len);
int xattr_visible(const struct xattr_ent *e, struct store_version floor);

/* ---- notify.c: cross-process change notification (a shared futex) ---- */

struct notify;
int notify_open(const char *path, int readonly, struct notify **np);
void notify_close(struct notify **np);
/* Called after a commit that appended binlog entries up to last_seq. */
void notify_post(struct notify *n, uint64_t last_seq);
/* The generation before checking the condition, then wait while it is
 * unchanged. Returns 0 on a post or spurious wake, -ETIMEDOUT, -EINTR. */
uint32_t notify_begin(struct notify *n);
int notify_wait(struct notify *n, uint32_t gen, int timeout_ms);
void notify_end(struct notify *n);
uint64_t notify_last_seq(struct notify *n);

/* ---- store.c ---- */

/* The one persistent bookkeeping record (main DB, key "statefs"): read
 * at the start of every write transaction, written back if it changed. */
struct meta {
	uint32_t format;
	uint64_t node_id;
	uint64_t hlc;        /* last clock value handed out or seen */
	uint64_t local_seq;  /* this node's last origin sequence (a clock value) */
	uint64_t log_first;  /* oldest binlog seq kept (0: empty) */
	uint64_t log_last;   /* newest binlog seq */
	uint64_t log_bytes;  /* bytes of the binlog entries kept */
	char node_name[64];
	/* O(1) counts for store_info: records by kind, bytes of values */
	uint64_t n_live, n_dead, value_bytes;
	/* Own changes lost to a restore (replica.c): the run's start. */
	uint64_t run_base;   /* local_seq when the current run began */
	uint64_t run_first;  /* our first sequence of the run (0: none yet) */
	uint64_t rec_lo, rec_hi; /* own changes (rec_lo, rec_hi] expected back */
	uint64_t npeers;     /* known peers (peer DB) */
};

struct store {
	MDB_env *env;
	MDB_dbi dbi_meta, dbi_rec, dbi_log, dbi_vv, dbi_peer;
	MDB_dbi dbi_horizon;  /* 0: absent (a read-only open of an old store) */
	struct store_opts opts;
	uint64_t node_id;
	char node_name[64];
	char *path;           /* the data file, for messages */
	uint32_t writer;
	unsigned maxkey;
	unsigned psize;
	int run_fd;           /* flock'ed shared by every opener (run start) */
	int upgraded;         /* open_dbs upgraded a format 1 store */
	int prefault;         /* populate the map ahead of growth (tmpfs) */
	char *map;            /* LMDB's map, for the prefault (NULL: none) */
	size_t map_pages;     /* its size in pages */
	size_t prefaulted;    /* pages of the map populated so far */
	struct notify *notify;
	uint32_t uid, gid;    /* of this process, for new records */
	struct store_txn *wcache; /* owned by the holder of the writer lock */
	pthread_mutex_t pool_lock; /* protects pool, npool, the counters */
	MDB_txn *pool[64];         /* reset read transactions for reuse */
	unsigned npool;
	uint64_t held, held_ahead_ms, too_old;
};

struct store_txn {
	struct store *s;
	MDB_txn *txn;
	int write;
	int on_stack;     /* read txn struct owned by the caller's frame */
	int err;          /* sticky: the first error poisons the txn */
	int meta_dirty;
	struct meta meta;
	/* The store's clock for this txn: read at the start of a write
	 * txn, at the first store_txn_now of a read txn (reading the clock
	 * is a measurable part of a get, and most gets never need it). */
	int64_t now;
	int now_set;
	/* The last binlog entry is held back so that it can be written
	 * without STORE_CHANGE_MORE when the transaction commits. A change
	 * is encoded into `next` before anything is written, then the two
	 * buffers swap: an encoder never reads LMDB memory that a write of
	 * the same call may have moved. */
	unsigned char *pend, *next;
	size_t pend_len, pend_cap, next_cap;
	uint64_t pend_seq;
	uint64_t first_seq; /* first binlog seq of this txn (0: none) */
	int logged;       /* appended binlog entries */
};

int store_err(int rc);
int64_t store_clock(const struct store *s);
/* The txn's clock (see struct store_txn's now): use this, never t->now. */
int64_t store_txn_now(struct store_txn *t);

/* upgrade.c: rewrite a format 1 store as the current format in txn
 * (the main DB and rec, log, vv open). An LMDB code. Then, on the open
 * store, give every record a parent record and set REC_KIDS where keys
 * lie under a non-directory (format 1 purged parents before children). */
int store_upgrade_v1(struct store *s, MDB_txn *txn, const char *file);
/* upgrade.c: rewrite a format 2 store (its meta record *m, the main DB
 * and rec, log open) as the current format in txn: every record and
 * binlog entry re-encoded, sequences kept. An LMDB code. */
int store_upgrade_v2(struct store *s, MDB_txn *txn, const char *file,
		     struct meta *m);
int store_upgrade_fixup(struct store *s);

/* replica.c: placeholders for the missing parents of path (rule 6), and
 * REC_KIDS on the record at path if it is not a directory. */
int store_ensure_parents(struct store_txn *t, const char *path);
/* replica.c: rule 2, join `in` into the record at path and write the
 * result if it changed, logging c (NULL: not logged). */
int store_rec_join(struct store_txn *t, const char *path, const struct rec *in,
		   const struct store_change *c, int *result, int *wrote);
int store_mark_kids(struct store_txn *t, const char *path);

/* store.c: drop the binlog's first entry (seq, value v; c is on it):
 * horizon, bytes, log_first. An LMDB code. */
int store_log_drop(struct store_txn *t, MDB_cursor *c, uint64_t seq,
		   const MDB_val *v);
/* replica.c: the store-wide version vector as read in txn. */
int store_watermarks_in(struct store *s, MDB_txn *txn, store_vv_cb cb,
			void *arg);
/* snapshot.c: log_trim drops this binlog entry: raise the horizon.
 * An LMDB code. */
int store_horizon_trimmed(struct store_txn *t, const void *entry, size_t len);

/* Shared between store.c, ns.c and replica.c. */
int store_live(const struct rec *r, int64_t now);
/* store_live at t's clock, read only if r can expire. */
int store_txn_live(struct store_txn *t, const struct rec *r);
int store_path_ok(struct store *s, const char *path);
int store_reserved(const char *path);        /* /.statefs and below */
size_t store_key_of(const char *path, size_t len, char *buf);
size_t store_child_prefix(const char *dir, size_t len, char *buf);
size_t store_key_path(const MDB_val *k, char *buf);
const char *store_parent_of(const char *path, char *buf);
int store_meta_load(MDB_txn *txn, MDB_dbi dbi, struct meta *m);

/* Pooled read transactions. */
int store_rtxn_get(struct store *s, MDB_txn **txnp);
void store_rtxn_put(struct store *s, MDB_txn *txn);

/* A call runs in the caller's transaction or in one of its own (`mem`
 * holds an own read transaction's struct). store_txn_leave commits or
 * aborts an own one and poisons the caller's on error; store_txn_done
 * is the same for reads, which never poison. */
int store_txn_enter(struct store *s, struct store_txn **tp, int write,
		    struct store_txn **own, struct store_txn *mem);
int store_txn_done(struct store_txn *t, struct store_txn *own, int err);
int store_txn_leave(struct store_txn *t, struct store_txn *own, int err);

/* Records. store_rec_get: the stored one at path (any type; -ENOENT
 * with r->st.type STORE_NONE when there is no key). store_rec_live: the
 * visible one (SPEC §2 and replica.c's rules: a record whose content is
 * dead, or a file with live records under it, shows as a directory
 * while anything under it is live); -ENOENT when nothing is visible,
 * with r holding the stored record (or STORE_NONE). */
int store_rec_get(struct store_txn *t, const char *path, struct rec *r);
int store_rec_live(struct store_txn *t, const char *path, struct rec *r);
/* A growing list of malloc'd paths, for work that must collect before
 * it writes (a write may move the pages a cursor points into). */
struct store_paths {
	char **v;
	size_t n, cap;
};
int store_paths_add(struct store_paths *pv, const char *p, size_t len);
void store_paths_free(struct store_paths *pv);

/* Call cb for every key under `path` (its children, then deeper keys),
 * in key order, until it returns non-zero, which is returned (0 when
 * the walk ends; a negative errno from LMDB). k and v point into the
 * map: cb must not write. */
typedef int (*store_walk_cb)(void *arg, const MDB_val *k, const MDB_val *v);
int store_walk_below(struct store_txn *t, const char *path,
		     store_walk_cb cb, void *arg);
/* Is anything live under `path` (its children and deeper)? 1, 0 or
 * a negative errno. */
int store_live_below(struct store_txn *t, const char *path);
/* Are there keys under `path` at all (live or not)? */
int store_keys_below(struct store_txn *t, const char *path);
/* What a stored record shows as, given whether anything under it is
 * live: fills *st with the visible stat; 0 visible, -ENOENT not. */
int store_rec_view(const struct rec *r, int live_below, int64_t now,
		   struct store_stat *st);

/* Write the record r at path (r's pointers may point into the map:
 * they are copied before anything is written). `old` is what was stored
 * there (NULL if nothing) for the counts. With `log` non-NULL the change
 * log->rec is appended to the binlog with its origin; log == r's own
 * encoding when log->rec is NULL. */
int store_rec_put(struct store_txn *t, const char *path, const struct rec *r,
		  const struct rec *old, const struct store_change *log);
/* A local change: the next version (ticks the clock). */
struct store_version store_tick(struct store_txn *t);
/* Write r as a local change with version v (the fields the caller set
 * to v are the change): the vector is old's with our entry at v, and a
 * binlog entry is appended. A placeholder becomes a tombstone (below). */
int store_rec_write_local(struct store_txn *t, const char *path,
			  struct rec *r, const struct rec *old,
			  struct store_version v);
/* A placeholder carries no version (replica.c, rule 6): one that got a
 * field (a chmod or xattr of a directory made for a peer's child, here
 * or at a peer) is stored as a tombstone of no content instead. It shows
 * the same (a directory while something under it is live, else
 * nothing), and snapshots and purges keep it like any record. */
void store_rec_unplace(struct store_txn *t, struct rec *r);
/* Create over whatever old is (NULL: nothing): every field of nr at
 * version v, old's xattrs removed. */
int store_rec_create(struct store_txn *t, const char *path, struct rec *nr,
		     const struct rec *old, struct store_version v);
void store_stat_new(const struct store *s, struct store_stat *st,
		    enum store_type type, const struct store_attr *a,
		    unsigned mask, int64_t now);
void store_ttl_renew(struct store_stat *st, int64_t now);
int store_parent_ready(struct store_txn *t, const char *path, int parents,
		       const struct store_attr *a, unsigned mask,
		       uint64_t *dir_ttl);

#endif
