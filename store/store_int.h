/*
 * store_int.h — declarations shared inside store/ only. Never include it
 * from another module: store.h is the module's interface.
 */
#ifndef STATEFS_STORE_INT_H
#define STATEFS_STORE_INT_H

#include <lmdb.h>
#include <pthread.h>

#include "store/store.h"

#define STORE_FORMAT 1

/* ---- record.c: little-endian encodings of records and changes ---- */

#define REC_HDR_LEN 88
#define REC_VV_LEN 16
#define CHANGE_HDR_LEN 32
#define CHANGE_PATH_MAX 4096

/* A record decoded in place: pointers into the encoded bytes. */
struct rec {
	struct store_stat st;
	const unsigned char *vv;     /* st.nvv entries of REC_VV_LEN bytes */
	const unsigned char *xattrs; /* st.xattr_len bytes */
	const unsigned char *value;  /* st.size bytes */
};

size_t rec_encoded_len(const struct store_stat *st);
/* Encode st, vv (st->nvv entries), xattrs and value into out, which has
 * rec_encoded_len(st) bytes. */
void rec_encode(void *out, const struct store_stat *st, const void *vv,
		const void *xattrs, const void *value);
int rec_decode(const void *buf, size_t len, struct rec *r);
/* The CHANGE_HDR_LEN-byte header of a change (path and record follow). */
void change_hdr_encode(void *out, const struct store_change *c);

uint64_t vv_lookup(const void *vv, unsigned n, uint64_t node);

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

/* The one persistent bookkeeping record (meta DB, key "meta"): read at
 * the start of every write transaction, written back if it changed. */
struct meta {
	uint32_t format;
	uint64_t node_id;
	uint64_t hlc;        /* last clock value handed out or seen */
	uint64_t local_seq;  /* this node's origin sequence */
	uint64_t log_first;  /* oldest binlog seq kept (0: empty) */
	uint64_t log_last;   /* newest binlog seq */
	uint64_t log_bytes;  /* bytes of the binlog entries kept */
	char node_name[64];
};

struct store {
	MDB_env *env;
	MDB_dbi dbi_meta, dbi_rec, dbi_log, dbi_vv;
	struct store_opts opts;
	uint64_t node_id;
	char node_name[64];
	char *path;           /* the data file, for messages */
	uint32_t writer;
	unsigned maxkey;
	unsigned psize;
	struct notify *notify;
	uint32_t uid, gid;    /* of this process, for new records */
	struct store_txn *wcache; /* owned by the holder of the writer lock */
	pthread_mutex_t pool_lock; /* protects pool, npool */
	MDB_txn *pool[64];         /* reset read transactions for reuse */
	unsigned npool;
};

struct store_txn {
	struct store *s;
	MDB_txn *txn;
	int write;
	int on_stack;     /* read txn struct owned by the caller's frame */
	int err;          /* sticky: the first error poisons the txn */
	int meta_dirty;
	struct meta meta;
	/* The last binlog entry is held back so that it can be written
	 * without STORE_CHANGE_MORE when the transaction commits. A change
	 * is encoded into `next` before anything is written, then the two
	 * buffers swap: an encoder never reads LMDB memory that a write of
	 * the same call may have moved. */
	unsigned char *pend, *next;
	size_t pend_len, pend_cap, next_cap;
	uint64_t pend_seq;
	int logged;       /* appended binlog entries */
};

int store_err(int rc);

/* Shared between store.c, ns.c and replica.c. */
int store_visible(const struct store_stat *st, int64_t now);
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

/* Records: the raw one at path (any type; -ENOENT with r->st.type
 * STORE_NONE when absent), the visible one, and writes. */
int store_rec_get(struct store_txn *t, const char *path, struct rec *r);
int store_rec_live(struct store_txn *t, const char *path, struct rec *r);
int store_rec_write(struct store_txn *t, const char *path,
		    const struct store_stat *st, const void *vv,
		    const void *xattrs, const void *value,
		    uint64_t origin_node, uint64_t origin_seq);
int store_rec_write_local(struct store_txn *t, const char *path,
			  struct store_stat *st, const struct rec *old,
			  const void *xattrs, const void *value);
void store_stat_new(const struct store *s, struct store_stat *st,
		    enum store_type type, const struct store_attr *a,
		    unsigned mask);
void store_ttl_renew(struct store_stat *st, int64_t now);
int store_parent_ready(struct store_txn *t, const char *path, int parents,
		       const struct store_attr *a, unsigned mask,
		       uint64_t *dir_ttl);
int store_has_children(struct store_txn *t, const char *dir);

#endif
