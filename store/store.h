/*
 * store.h — the statefs store: one LMDB environment per store directory.
 *
 * This header is the store's manual. The store owns records keyed by path,
 * namespaces (directories), the binlog of every committed change, the
 * hybrid logical clock and version vectors, TTL deadlines and the change
 * notification that wakes consumers in any process. It knows nothing of
 * FUSE or ZeroMQ.
 *
 * Paths are absolute, canonical ("/", "/a", "/a/b": no trailing slash, no
 * empty, "." or ".." components). Names are at most 255 bytes and any
 * byte but '/' and NUL; a path whose key exceeds what LMDB can key
 * (mdb_env_get_maxkeysize, 511 bytes on Debian) is -ENAMETOOLONG.
 *
 * Errors: every int function returns 0 (or a count) on success and a
 * negative errno on failure. LMDB codes are translated in exactly one
 * place (store_err in store.c): MDB_MAP_FULL -> -ENOSPC, MDB_CORRUPTED and
 * MDB_INVALID -> -EIO after logging, and so on.
 *
 * Transactions: every mutating call takes a `struct store_txn *`. Pass
 * NULL to run the call in a transaction of its own (begin, call, commit).
 * Pass a transaction from store_txn_begin() to group many changes into
 * one commit: they all land, with their binlog entries, or none do. After
 * any call on a transaction fails, the transaction is poisoned: only
 * store_txn_abort() (or a commit, which then aborts and returns the first
 * error) is allowed. A transaction belongs to the thread that began it.
 *
 * Memory: pointers returned inside a struct store_stat, a change or a
 * listing callback point into LMDB's map and are valid only until the
 * transaction (or the callback) ends. Functions that return malloc'd
 * memory say so; the caller frees it.
 *
 * Caveats (LMDB's, which the store honours and so must its callers):
 *  - open a store once per process and share the handle between threads;
 *  - never use a handle across fork(): open it again in the child;
 *  - a process killed while it held a read transaction leaves a stale
 *    reader slot; store_open clears them (mdb_reader_check).
 */
#ifndef STATEFS_STORE_H
#define STATEFS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct store;
struct store_txn;

#define STORE_NAME_MAX 255
#define STORE_DEFAULT_MAP_SIZE (1ULL << 30)
#define STORE_DEFAULT_MAX_VALUE (16ULL << 20)
#define STORE_DEFAULT_BINLOG_MAX 100000ULL
#define STORE_DEFAULT_TOMBSTONE_GRACE_MS (24ULL * 3600 * 1000)
#define STORE_DEFAULT_MAX_OFFSET_MS 500ULL
/* The longest TTL, for files and directory defaults alike (ten years):
 * deadlines stay far from overflowing a signed 64-bit nanosecond clock. */
#define STORE_TTL_MAX_MS (10ULL * 366 * 24 * 3600 * 1000)
/* Nodes in one mesh: a version vector holds at most this many entries.
 * A change whose vector would grow past it is refused (-E2BIG). */
#define STORE_VV_MAX 64
#define STORE_XATTR_VALUE_MAX (64 * 1024)

enum store_type {
	STORE_NONE = 0,
	STORE_FILE = 1,
	STORE_DIR = 2,
	STORE_SYMLINK = 3,
	STORE_TOMBSTONE = 4, /* a delete: versioned, invisible to reads */
	STORE_PLACEHOLDER = 5, /* in the store only: a parent made for a peer's child */
};

enum store_sync {
	STORE_SYNC_NONE = 0,   /* no fsync: for tmpfs, the default */
	STORE_SYNC_COMMIT = 1, /* fsync at each commit: for disk stores */
};

struct store_opts {
	uint64_t map_size;       /* bytes; 0: 1 GiB, or the store's own if larger */
	uint64_t max_value;      /* bytes; 0: 16 MiB. Larger values: -EFBIG */
	enum store_sync sync;
	uint64_t default_ttl_ms; /* TTL of new files whose directory has none */
	const char *node_name;   /* NULL: the stored name, else the host name */
	uint64_t binlog_max;     /* entries kept; 0: STORE_DEFAULT_BINLOG_MAX */
	uint64_t tombstone_grace_ms; /* 0: STORE_DEFAULT_TOMBSTONE_GRACE_MS */
	int readonly;            /* open read-only; never creates */
	int no_create;           /* refuse a directory that holds no store */
	/* Changes stamped further ahead of our clock than this are held
	 * back (STORE_HELD); 0: STORE_DEFAULT_MAX_OFFSET_MS. */
	uint64_t max_offset_ms;
	/* The store's wall clock (CLOCK_REALTIME, ns); NULL: the system's.
	 * TTL deadlines, the hybrid clock, hold-backs and purges all read
	 * it: simulations and tests drive time with it. */
	int64_t (*clock)(void *arg);
	void *clock_arg;
};

/* A version: hybrid logical clock (48 bits of milliseconds, 16 bits of
 * logical counter) and the origin node id. Ordered by hlc, then node. */
struct store_version {
	uint64_t hlc;
	uint64_t node;
};

/* One entry of a version vector: the highest origin sequence of `node`
 * that a record (or the whole store) has seen. */
struct store_vv_entry {
	uint64_t node;
	uint64_t seq;
};

/* The fields of a record that merge separately (SPEC §5): each has its
 * own version, and concurrent changes of different fields all survive.
 * Xattrs are fields too, one per name, versioned in the xattr run. */
enum store_field {
	STORE_F_CONTENT = 0, /* type and value: write, create, delete */
	STORE_F_OWNER = 1,   /* mode, uid, gid */
	STORE_F_TIMES = 2,   /* mtime, atime */
	STORE_F_LIFE = 3,    /* ttl_ms, expires_ns: set, write, touch */
	STORE_FIELDS = 4,
};

struct store_stat {
	enum store_type type;   /* STORE_TOMBSTONE only in changes */
	uint32_t mode;          /* S_IFREG/S_IFDIR/S_IFLNK | permission bits */
	uint32_t uid, gid;
	uint64_t size;          /* value length */
	int64_t mtime_ns, ctime_ns, atime_ns;
	int64_t expires_ns;     /* absolute CLOCK_REALTIME deadline; 0: never */
	uint64_t ttl_ms;        /* file: its TTL; directory: default for new files */
	struct store_version version;  /* the newest of fver[] and the xattrs' */
	struct store_version fver[STORE_FIELDS];
	uint64_t origin_seq;    /* the origin's sequence of the last change
				 * (a node's sequence is its clock: = version.hlc) */
	unsigned nvv;           /* entries in the record's version vector */
	size_t xattr_len;       /* bytes of encoded xattrs (store_xattr_*) */
};

/* ---- lifecycle ---- */

/* Open (and on first use create) the store in directory `dir`. The
 * directory is created if missing (unless opts->no_create or readonly).
 * A directory that holds something other than a statefs store, or a store
 * of a newer format, is refused with -EINVAL / -EPROTO and a one-line
 * message naming the file, retrievable by store_last_error(). `opts` may
 * be NULL for defaults. */
int store_open(const char *dir, const struct store_opts *opts,
	       struct store **sp);
void store_close(struct store **sp);

/* The one-line message of the last failed store_open in this thread. */
const char *store_last_error(void);

/* A one-line description of a negative errno from a store call. */
const char *store_strerror(int err);

/* ---- transactions ---- */

int store_txn_begin(struct store *s, int write, struct store_txn **tp);
/* Commit and free. On error the transaction is aborted and freed. */
int store_txn_commit(struct store_txn **tp);
void store_txn_abort(struct store_txn **tp);

/* ---- reads ---- */

/* Stat a visible record (not a tombstone, not expired): -ENOENT if none. */
int store_stat(struct store *s, struct store_txn *t, const char *path,
	       struct store_stat *st);

/* Get a visible record's value as a malloc'd copy (*valp, *lenp; a
 * zero-length value gives a non-NULL 1-byte buffer). st may be NULL.
 * Directories: -EISDIR. */
int store_get(struct store *s, struct store_txn *t, const char *path,
	      struct store_stat *st, void **valp, size_t *lenp);

/* Copy up to `len` bytes of the value from offset `off` into buf. Returns
 * the number of bytes copied (0 past the end). */
ssize_t store_read(struct store *s, struct store_txn *t, const char *path,
		   uint64_t off, void *buf, size_t len);

/* List the visible direct children of directory `dir`, in byte order of
 * their names, starting after `after` (NULL: from the first). The
 * callback gets the name (not NUL-terminated; name_len bytes) and its
 * stat; returning non-zero stops the listing and is returned. -ENOTDIR,
 * -ENOENT as appropriate. Cost: a range scan of the children only. */
typedef int (*store_list_cb)(void *arg, const char *name, size_t name_len,
			     const struct store_stat *st);
int store_list(struct store *s, struct store_txn *t, const char *dir,
	       const char *after, store_list_cb cb, void *arg);

/* ---- writes ---- */

/* Attributes of something being created or changed. Which fields count
 * is said by a mask of STORE_ATTR_* bits. */
struct store_attr {
	uint32_t mode;          /* permission bits (S_IFMT ignored) */
	uint32_t uid, gid;
	int64_t mtime_ns, ctime_ns, atime_ns;
	uint64_t ttl_ms;
	uint64_t size;          /* truncate/extend the value (zero fill) */
};
#define STORE_ATTR_MODE  0x01u
#define STORE_ATTR_UID   0x02u
#define STORE_ATTR_GID   0x04u
#define STORE_ATTR_MTIME 0x08u
#define STORE_ATTR_CTIME 0x10u
#define STORE_ATTR_TTL   0x20u  /* also renews the deadline: now + ttl */
#define STORE_ATTR_SIZE  0x40u
#define STORE_ATTR_TOUCH 0x80u  /* renew the deadline (a touch) */
#define STORE_ATTR_ATIME 0x100u

/* Flags of store_put / store_mknod. */
#define STORE_CREATE  0x1u /* create if missing (else -ENOENT) */
#define STORE_EXCL    0x2u /* with CREATE: -EEXIST if it exists */
#define STORE_PARENTS 0x4u /* create missing parents as directories */

/* Replace (or create) the whole value of a regular file at once. Sets
 * mtime and ctime to now and renews the TTL deadline. On create the
 * attributes in `a` (mode, uid, gid; mask) apply, the TTL is the
 * directory's default, else the store's default, unless
 * STORE_ATTR_TTL is in the mask. On an existing file only
 * STORE_ATTR_MODE and STORE_ATTR_TTL of the mask apply (uid and gid
 * stay). -EFBIG past max_value, -EISDIR on a directory, -ENOTDIR when a
 * parent is not a directory. */
int store_put(struct store *s, struct store_txn *t, const char *path,
	      const void *val, size_t len, const struct store_attr *a,
	      unsigned mask, unsigned flags);

/* Create a directory, an empty regular file or a symlink (`target`,
 * only for STORE_SYMLINK). Always exclusive: -EEXIST if the path exists
 * (STORE_PARENTS and an existing directory with type STORE_DIR: 0, like
 * mkdir -p). A new file gets its TTL as in store_put. */
int store_mknod(struct store *s, struct store_txn *t, const char *path,
		enum store_type type, const char *target,
		const struct store_attr *a, unsigned mask, unsigned flags);

/* Change attributes (chmod, chown, utimens, truncate, TTL, touch).
 * STORE_ATTR_MTIME, _SIZE, _TTL and _TOUCH renew the TTL deadline (a
 * touch or a write); ctime is set to now unless _CTIME is given. */
int store_setattr(struct store *s, struct store_txn *t, const char *path,
		  const struct store_attr *a, unsigned mask);

/* Delete: leaves a versioned tombstone. STORE_DEL_DIR: the path must be
 * a directory (rmdir: -ENOTDIR otherwise, -ENOTEMPTY if it has visible
 * children); STORE_DEL_FILE: must not be a directory (unlink: -EISDIR);
 * STORE_DEL_RECURSIVE: a directory and everything in it. Neither flag:
 * whatever it is, if an empty directory or not a directory. */
#define STORE_DEL_FILE      0x1u
#define STORE_DEL_DIR       0x2u
#define STORE_DEL_RECURSIVE 0x4u
int store_del(struct store *s, struct store_txn *t, const char *path,
	      unsigned flags);

/* Rename a file, symlink or whole directory atomically. Over an existing
 * target like rename(2): a file over a file, a directory over an empty
 * directory (-ENOTEMPTY otherwise, -EISDIR/-ENOTDIR for mixed kinds);
 * into itself: -EINVAL. STORE_RENAME_NOREPLACE: -EEXIST if `to` exists. */
#define STORE_RENAME_NOREPLACE 0x1u
int store_rename(struct store *s, struct store_txn *t, const char *from,
		 const char *to, unsigned flags);

/* ---- extended attributes (user.*, stored in the record; replicated) ---- */

/* Copy the value of xattr `name` into buf (size 0: just its length).
 * -ENODATA if absent, -ERANGE if buf is too small. */
ssize_t store_xattr_get(struct store *s, struct store_txn *t,
			const char *path, const char *name, void *buf,
			size_t size);
/* Flags: XATTR_CREATE / XATTR_REPLACE from <sys/xattr.h>. Names up to
 * 255 bytes, values up to 64 KiB (-E2BIG, -ERANGE). */
int store_xattr_set(struct store *s, struct store_txn *t, const char *path,
		    const char *name, const void *val, size_t len, int flags);
int store_xattr_remove(struct store *s, struct store_txn *t,
		       const char *path, const char *name);
/* NUL-separated list of names, listxattr(2) style. */
ssize_t store_xattr_list(struct store *s, struct store_txn *t,
			 const char *path, char *buf, size_t size);

/* ---- binlog, changes and replication ---- */

/* A change: one entry of the binlog, also the unit the replicator sends.
 * `rec` is the encoded record after the change (a tombstone for a
 * delete); decode it with store_rec_decode. */
#define STORE_CHANGE_MORE 0x1u /* more changes of the same commit follow */
struct store_change {
	uint64_t seq;          /* local binlog sequence (not sent) */
	uint64_t origin_node;
	uint64_t origin_seq;
	uint32_t writer;       /* local: token of the committing handle */
	uint32_t flags;
	const char *path;      /* not NUL-terminated */
	size_t path_len;
	const void *rec;
	size_t rec_len;
};

/* Decode an encoded record. value/vv/xattrs may be NULL when not wanted.
 * vv points to st->nvv entries in wire order (decode with
 * store_vv_at). Returns -EPROTO for a malformed record. */
int store_rec_decode(const void *rec, size_t len, struct store_stat *st,
		     const void **value, const void **vv, const void **xattrs);
struct store_vv_entry store_vv_at(const void *vv, unsigned i);

/* Encode a change for the wire (little-endian, self-delimiting): returns
 * the malloc'd buffer in *bufp and its length in *lenp. Decode checks
 * every length and returns -EPROTO for anything malformed; the decoded
 * change points into `buf`. */
int store_change_encode(const struct store_change *c, void **bufp,
			size_t *lenp);
int store_change_decode(const void *buf, size_t len,
			struct store_change *c);
/* The same encoding into the caller's buffer: store_change_len bytes
 * (0 for a change that cannot be encoded), then store_change_encode_to. */
size_t store_change_len(const struct store_change *c);
void store_change_encode_to(const struct store_change *c, void *out);

/* Call cb for every binlog entry with seq > after, in order, at most
 * `max` of them (0: all). cb returning non-zero stops and is returned.
 * Returns the count visited. -ERANGE if entries after `after` were
 * already trimmed (the consumer fell behind: it must resync). */
typedef int (*store_change_cb)(void *arg, const struct store_change *c);
ssize_t store_binlog_read(struct store *s, uint64_t after, size_t max,
			  store_change_cb cb, void *arg);

/* Drop binlog entries, whole commit groups from the oldest, that every
 * known peer has acknowledged (store_peer_ack) and that are older than
 * keep_ms by their origin's clock (local readers such as the mount may
 * still be behind): the replicator calls it now and then. The cap
 * (binlog_max) still bounds what a peer that stays away keeps. With no
 * known peer nothing is dropped here. At most `max` entries (0: no
 * limit), whole groups. Returns the count dropped. */
int store_binlog_trim_acked(struct store *s, uint64_t keep_ms, size_t max);

/* The last committed binlog sequence (0 if none): one read transaction. */
uint64_t store_last_seq(struct store *s);

/* Block until the binlog has grown past `after` or timeout_ms passes
 * (-1: forever). Woken by the committing process, any process; no
 * polling. Returns 1 if it grew, 0 on timeout, -EINTR on a signal. */
int store_wait(struct store *s, uint64_t after, int timeout_ms);

/* Outcome of applying a peer's change. */
enum store_apply {
	STORE_APPLIED = 0,    /* it saw our version: applied */
	STORE_DUPLICATE = 1,  /* already applied: nothing changed */
	STORE_SUPERSEDED = 2, /* we hold newer versions that saw it */
	STORE_CONFLICT_WON = 3,  /* concurrent, theirs was higher: applied */
	STORE_CONFLICT_LOST = 4, /* concurrent, ours is higher: kept */
	STORE_HELD = 5,     /* stamped more than max_offset_ms ahead of our
			     * clock: nothing applied; offer the SAME change
			     * again later, and nothing after it of its origin
			     * (the stream waits, it never skips) */
	STORE_TOO_OLD = 6,  /* older than the purge horizon: nothing applied;
			     * the peer needs a full snapshot */
};

/* Apply a peer's change with SPEC §5's rules, written out as numbered
 * invariants at the top of replica.c. In short: every field (content,
 * owner, times, life, each xattr) keeps the highest version it has seen,
 * so the visible tree is a function of the set of changes applied,
 * whatever their order, their path through the mesh or our clock.
 *
 * Each origin's changes must be offered in origin order (a binlog keeps
 * that order, so sending a binlog in order keeps it across forwarding):
 * the store's watermark of an origin is the highest origin_seq applied,
 * and a change at or below it is a DUPLICATE. A change that is refused
 * (an error, HELD, TOO_OLD) never advances the watermark: the stream of
 * that origin must stop there. Refusals before anything is written
 * (-EPROTO malformed, -EFBIG value over our max_value, -E2BIG version
 * vector over STORE_VV_MAX, HELD, TOO_OLD) leave the caller's
 * transaction usable; a failure while writing (-ENOSPC) poisons it.
 * Limits that nodes of one mesh must agree on, else a stream stops with
 * -EFBIG or -ENOSPC: max_value, and a map size that holds the data.
 *
 * An applied change is appended to the local binlog exactly as the
 * origin made it (origin, sequence, record), so that it is forwarded. */
int store_apply_remote(struct store *s, struct store_txn *t,
		       const struct store_change *c);

/* ---- peers: acknowledgements, purges, lost changes ---- */

/* Known peers: tombstones and expired records are purged only once every
 * known peer has acknowledged them (and the grace has passed since we
 * received them). With no known peer, nobody needs a delete's tombstone:
 * the sweep purges it at once. */
int store_peer_add(struct store *s, struct store_txn *t, uint64_t peer);
int store_peer_remove(struct store *s, struct store_txn *t, uint64_t peer);

/* Peer `peer` holds every change of `origin` up to origin sequence
 * `seq` (an acknowledgement, or the watermarks a peer reports when it
 * connects). Registers an unknown peer. When origin is this node and
 * `seq` is beyond what this store holds (it was restored from an older
 * copy, or lost its last commits to a power cut with sync=none), the
 * store never issues a sequence at or below `seq` again and takes our
 * own lost changes back from peers: store_watermarks reports our own
 * origin at the point from which they are missing until they are in. */
int store_peer_ack(struct store *s, struct store_txn *t, uint64_t peer,
		   uint64_t origin, uint64_t seq);

/* The acknowledged watermarks of every known peer: cb(arg, peer, origin,
 * seq) once per (peer, origin) pair, and cb(arg, peer, 0, 0) for a known
 * peer that acknowledged nothing yet. */
typedef int (*store_peer_cb)(void *arg, uint64_t peer, uint64_t origin,
			     uint64_t seq);
int store_peers(struct store *s, store_peer_cb cb, void *arg);

/* ---- maintenance and information ---- */

/* Reclaim space: purge deleted and expired records that are dead for
 * longer than the tombstone grace (counted from when this node received
 * the delete, or from the deadline) and acknowledged by every known
 * peer, or at once when there is no known peer; and placeholders with
 * nothing under them. A purge changes nothing visible. At most `max`
 * records per call (0: all). Returns the count purged. */
int store_sweep(struct store *s, size_t max);

/* The store's own consistency check, a full scan: every record and
 * binlog entry decodes, every key is canonical, every record's parent
 * has a record, the bookkeeping counts match, every visible record's
 * parent is a visible directory. 0, or -EUCLEAN with the first problem
 * described in msg. */
int store_check(struct store *s, char *msg, size_t msglen);

/* BLAKE2b-256 over the visible state (paths, types, modes, values):
 * equal on two stores exactly when they hold the same data. */
#define STORE_DIGEST_LEN 32
int store_digest(struct store *s, unsigned char out[STORE_DIGEST_LEN]);

struct store_info {
	uint64_t node_id;
	char node_name[64];
	uint64_t records;      /* files, directories, symlinks (not /); an
				* expired file counts until it is purged */
	uint64_t tombstones;   /* deletes and placeholders not purged yet */
	uint64_t value_bytes;
	uint64_t map_size, map_used; /* bytes */
	uint64_t max_value;
	uint64_t binlog_first, binlog_last, binlog_count;
	uint64_t local_seq;    /* this node's own origin sequence */
	unsigned format;
	/* This handle's replication counters (since store_open). */
	uint64_t held;         /* changes held back: stamped too far ahead */
	uint64_t held_ahead_ms; /* how far ahead the furthest held one was */
	uint64_t too_old;      /* changes refused as older than the horizon */
	uint64_t recovering;   /* own changes still expected back from peers */
};
/* O(1): counts are kept in the store's bookkeeping; map_used leaves out
 * LMDB's free pages. */
int store_info(struct store *s, struct store_info *info);

/* The store-wide version vector: cb once per origin node. */
typedef int (*store_vv_cb)(void *arg, uint64_t node, uint64_t seq);
int store_watermarks(struct store *s, store_vv_cb cb, void *arg);

/* Identity of this handle's commits in the binlog (change.writer), so a
 * consumer can skip the changes its own process made. */
uint32_t store_writer_token(struct store *s);

/* Validate and canonicalise nothing: check that `path` is canonical and
 * keyable. 0, -EINVAL or -ENAMETOOLONG. */
int store_path_check(struct store *s, const char *path);

/* Parse a TTL, the one grammar of the mount (ttl=, user.statefs.ttl)
 * and statefsctl (--ttl): a number, whole or decimal, and a unit: ms,
 * s, m, h, d; none: seconds. Trailing spaces and newlines are ignored
 * (setfattr values). Up to STORE_TTL_MAX_MS; 0 means none. 0 or
 * -EINVAL (malformed) or -ERANGE (past the limit). */
int store_parse_ttl(const char *s, size_t len, uint64_t *ms);

/* Now, CLOCK_REALTIME in nanoseconds. */
int64_t store_now_ns(void);

/* ---- snapshots: the whole store, for a peer the binlog cannot serve ---- */

/* The binlog's horizon: cb once per origin with the highest sequence of
 * that origin whose change this store no longer has in its binlog
 * (trimmed, or received in a snapshot). A peer whose watermark of an
 * origin is below its horizon and below ours cannot be brought up to
 * date from the binlog: it needs a snapshot. The horizon rises with
 * any commit (a trim, each chunk of a snapshot being installed): check
 * it before every send, not only when the binlog says -ERANGE. (Below
 * the horizon but not below ours: a snapshot would not help; we merged
 * changes beyond our watermark, and send nothing of that origin until
 * our stream has brought them, which then raises our watermark.) */
int store_horizon(struct store *s, store_vv_cb cb, void *arg);

/* How many snapshots this store has installed: a consumer that caches
 * what it read (the mount) drops its caches when this changes. */
uint64_t store_resyncs(struct store *s);

/* A snapshot: one consistent read of the whole store (an LMDB read
 * transaction held until store_snap_close: LMDB cannot reuse pages
 * freed meanwhile, so close it promptly). Records come in key order,
 * placeholders left out; store_snap_seq is the binlog's last sequence
 * at that moment: a consumer follows the binlog from there. */
struct store_snap;
int store_snap_open(struct store *s, struct store_snap **snapp);
uint64_t store_snap_seq(const struct store_snap *snap);
int store_snap_watermarks(struct store_snap *snap, store_vv_cb cb, void *arg);
/* The next records, about max_bytes of them: cb(arg, path, path_len,
 * rec, rec_len) each (pointers valid during the call). Returns the
 * count given, 0 at the end, or a negative errno. */
typedef int (*store_snap_cb)(void *arg, const char *path, size_t path_len,
			     const void *rec, size_t rec_len);
ssize_t store_snap_next(struct store_snap *snap, size_t max_bytes,
			store_snap_cb cb, void *arg);
void store_snap_close(struct store_snap **snapp);

/* Installing a peer's snapshot, in chunks of records in key order:
 *  - store_snap_merge each record: the join of store_apply_remote,
 *    not logged and moving no watermark. -EPROTO malformed, -EFBIG over
 *    max_value, -EAGAIN stamped further ahead of our clock than
 *    max_offset (try the snapshot again later);
 *  - store_snap_prune the keys after `from` (NULL: the first) up to and
 *    including `to` (NULL: the last) that the chunk (`keep`, its paths
 *    in key order) lacks: those whose whole version vector the
 *    snapshot's watermarks cover were deleted and purged at the sender,
 *    and go here too (rule S1 in snapshot.c);
 *  - store_snap_finish with the snapshot's watermarks: ours take the
 *    maximum, and store_resyncs counts one more.
 * Merges and prunes raise the horizon as they write (rule S2 in
 * snapshot.c), finished or not: an install given up half way leaves
 * what it brought, and the horizon that says so.
 * Each in the caller's transaction (or its own with NULL). */
int store_snap_merge(struct store *s, struct store_txn *t, const char *path,
		     size_t path_len, const void *rec, size_t rec_len);
int store_snap_prune(struct store *s, struct store_txn *t,
		     const struct store_vv_entry *wm, unsigned nwm,
		     const char *from, const char *to,
		     const char *const *keep, size_t nkeep);
int store_snap_finish(struct store *s, struct store_txn *t,
		      const struct store_vv_entry *wm, unsigned nwm);

#endif
