/*
 * fs_int.h — declarations shared inside fs/ (never included from another
 * module): the driver state, the inode table (inode.c), open files, the
 * /.statefs virtual directory (ctl.c), the counters behind
 * /.statefs/stats, and the helpers and handlers the operation files
 * (fs.c, file.c, dir.c, xattr.c) share.
 */
#ifndef STATEFS_FS_INT_H
#define STATEFS_FS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fs/fs.h"

/* Paths handled by the driver are at most this long (the store refuses
 * keys past mdb_env_get_maxkeysize long before). */
#define FS_PATH_MAX 4096

/* Fixed inode numbers of the virtual /.statefs directory and its files;
 * the inode table hands out numbers from FS_INO_FIRST on, so these never
 * collide and are never forgotten. */
#define FS_INO_CTL_DIR 2
#define FS_INO_CTL_STATS 3
#define FS_INO_CTL_NODE 4
#define FS_INO_CTL_PEERS 5
#define FS_INO_CTL_LAST 5
#define FS_INO_FIRST 16
#define FS_CTL_NAME ".statefs"

/* Kernel cache timeout for records without a deadline (seconds): we
 * invalidate explicitly, so this can be long. */
#define FS_CACHE_TIMEOUT 86400.0

/* For this long after a publish the kernel may cache no attributes of
 * the file (see fs_attr_timeout in fs.c). */
#define FS_PUBLISH_QUIET_NS 1000000000LL

/* ---- counters (/.statefs/stats) ---- */

enum fs_op {
	FS_OP_LOOKUP, FS_OP_FORGET, FS_OP_GETATTR, FS_OP_SETATTR,
	FS_OP_READLINK, FS_OP_MKNOD, FS_OP_MKDIR, FS_OP_UNLINK, FS_OP_RMDIR,
	FS_OP_SYMLINK, FS_OP_RENAME, FS_OP_LINK, FS_OP_OPEN, FS_OP_READ,
	FS_OP_WRITE, FS_OP_FLUSH, FS_OP_RELEASE, FS_OP_FSYNC, FS_OP_OPENDIR,
	FS_OP_READDIR, FS_OP_RELEASEDIR, FS_OP_STATFS, FS_OP_SETXATTR,
	FS_OP_GETXATTR, FS_OP_LISTXATTR, FS_OP_REMOVEXATTR, FS_OP_CREATE,
	FS_OP_GETLK, FS_OP_SETLK, FS_OP_FLOCK, FS_OP_POLL, FS_OP_PUBLISH,
	FS_OP_INVALIDATE, FS_OP_SWEEP,
	FS_OP_COUNT
};
extern const char *const fs_op_names[FS_OP_COUNT];

#define FS_ERRNO_MAX 134

struct fs_stats {
	atomic_uint_fast64_t ops[FS_OP_COUNT];
	atomic_uint_fast64_t errors[FS_ERRNO_MAX + 1];
	atomic_uint_fast64_t bytes_read, bytes_written;
};

/* ---- the inode table (inode.c) ---- */

struct fs_file;

/* One inode the kernel knows. Every field but `ino` is protected by
 * fs->itab.lock. */
struct fs_node {
	uint64_t ino;
	uint64_t generation;
	char *path;                /* current path; updated by renames */
	size_t path_len;
	char *lock_path;           /* lock identity, fixed at the first lock
				    * request: releases after a rename or an
				    * unlink still find the lock */
	uint64_t nlookup;          /* kernel references (lookup/forget) */
	int dead;                  /* unlinked or replaced: not in by_path */
	unsigned truncating;       /* open files opened with O_TRUNC */
	unsigned writers;          /* open files open for writing */
	int64_t publish_ns;        /* last publish of a buffer (store_now_ns) */
	/* The latest deadline until which the kernel may trust an entry or
	 * attributes of this node we replied (CLOCK_REALTIME ns; INT64_MAX
	 * once a reply without a TTL deadline was given). */
	int64_t kcache_until_ns;
	/* Snapshot of the record taken by the delete that killed this node
	 * while files of it were open (gone: valid): they keep reading it. */
	int gone;
	struct store_stat gone_st;
	void *gone_val;
	size_t gone_len;
	struct fs_file *files;     /* open regular files (poll, publish) */
	struct fs_node *next_ino, *next_path;
};

struct fs_itab {
	pthread_mutex_t lock;
	/* Shared by everything that turns an ino into a path and acts on
	 * it; exclusive for a rename (inode.c). */
	pthread_rwlock_t ns;
	struct fs_node **by_ino, **by_path;
	size_t nbuckets;           /* power of two, both tables */
	size_t count;
	uint64_t next_ino;
	uint64_t generation;
	struct fs_node *root;
};

int fs_itab_init(struct fs_itab *t);
void fs_itab_fini(struct fs_itab *t);
/* Find or add the node of `path` and take `nref` kernel references.
 * Returns its ino, or 0 when out of memory. */
uint64_t fs_itab_ref(struct fs_itab *t, const char *path, uint64_t nref);
/* Drop kernel references (forget). */
void fs_itab_forget(struct fs_itab *t, uint64_t ino, uint64_t n);
/* Copy the current path of `ino` into buf (FS_PATH_MAX). 0, -ESTALE
 * (unknown ino) or -ENOENT (node dead). */
int fs_itab_path(struct fs_itab *t, uint64_t ino, char *buf);
/* The lock identity of `ino` into buf (FS_PATH_MAX): its path when
 * first asked (kept from then on), or, for a node unlinked before any
 * lock, a name no path can have. `remember` 0 only looks: -ENOENT if
 * the node never had a lock identity (so it holds no lock). */
int fs_itab_lock_path(struct fs_itab *t, uint64_t ino, char *buf,
		      int remember);
/* Node of `ino` (for open files: valid until forget, which the kernel
 * sends only once no file is open). NULL if unknown. */
struct fs_node *fs_itab_node(struct fs_itab *t, uint64_t ino);
/* A reply lets the kernel cache an entry or attributes of `ino` until
 * until_ns: note it. Returns 1 if the attributes of `ino` must not be
 * cached at all (now_ns is the time of the reply): a file of it is open
 * for writing, or a buffer was published less than FS_PUBLISH_QUIET_NS
 * ago (see fs_attr_timeout). */
int fs_itab_note_reply(struct fs_itab *t, uint64_t ino, int64_t until_ns,
		       int64_t now_ns);
/* An own change of `path` with deadline expires_ns (0: none) committed:
 * 1 if the kernel may cache it past that deadline (invalidate), else 0.
 * *inop: the cached ino if it has open files (poll wake-ups), else 0. */
int fs_itab_own_change(struct fs_itab *t, const char *path, size_t len,
		       int64_t expires_ns, uint64_t *inop);
/* The same with t->lock held by the caller (the node stays valid only
 * while the lock is held). */
struct fs_node *fs_itab_node_locked(struct fs_itab *t, uint64_t ino);
/* The cached ino of `path`, 0 if none. */
uint64_t fs_itab_find(struct fs_itab *t, const char *path, size_t len);
/* A rename succeeded in the store (caller holds t->ns exclusively):
 * move `from` (and, if is_dir, every cached descendant) under `to`;
 * nodes cached at `to` (and below it, if is_dir) die. */
void fs_itab_rename(struct fs_itab *t, const char *from, const char *to,
		    int is_dir);
/* `path` was deleted: its node (if cached) dies. Returns its ino or 0.
 * _locked: with t->lock held. */
uint64_t fs_itab_kill(struct fs_itab *t, const char *path, size_t len);
uint64_t fs_itab_kill_locked(struct fs_itab *t, const char *path,
			     size_t len);
/* Does the node cached at `path` have open files? */
int fs_itab_has_files(struct fs_itab *t, const char *path, size_t len);
/* The same as fs_itab_kill, keeping the deleted record (st, and val of
 * vlen bytes, malloc'd: taken over, freed if no node is cached) for
 * the node's open files. */
uint64_t fs_itab_kill_keep(struct fs_itab *t, const char *path, size_t len,
			   const struct store_stat *st, void *val,
			   size_t vlen);
/* For a dead node with a snapshot: its stat, a read of its value
 * (bytes copied), a malloc'd copy of its value. -ENOENT otherwise. */
int fs_itab_gone_stat(struct fs_itab *t, uint64_t ino, struct store_stat *st);
ssize_t fs_itab_gone_read(struct fs_itab *t, uint64_t ino, uint64_t off,
			  void *buf, size_t size);
int fs_itab_gone_copy(struct fs_itab *t, uint64_t ino, void **valp,
		      size_t *lenp);
/* setattr of a dead node with open files: apply mode, uid, gid, mtime
 * (as `mask` of STORE_ATTR_*; ctime becomes now_ns) to its snapshot,
 * which a node deleted by someone else gets here (the attributes its
 * first open file had, an empty value), and copy the result to *st.
 * -ENOENT if the node is live, unknown or has no open file. */
int fs_itab_gone_setattr(struct fs_itab *t, uint64_t ino,
			 const struct store_attr *a, unsigned mask,
			 int64_t now_ns, struct store_stat *st);
/* Link / unlink an open file to its node (poll wake-ups); detaching the
 * last file of a forgotten node frees it. */
void fs_itab_file_attach(struct fs_itab *t, struct fs_node *n,
			 struct fs_file *f);
void fs_itab_file_detach(struct fs_itab *t, struct fs_node *n,
			 struct fs_file *f);
/* Every cached ino (malloc'd array; caller frees). */
size_t fs_itab_all(struct fs_itab *t, uint64_t **out);

/* ---- open files ---- */

#define FS_NO_MTIME INT64_MIN

struct fs_file {
	pthread_mutex_t lock;      /* protects everything below but ph/changed */
	struct fs_node *node;      /* NULL for virtual files */
	struct store_stat open_st; /* the record at open (fixed) */
	char *buf;                 /* private value: snapshot or being written */
	size_t len, cap;
	unsigned loaded : 1;       /* buf holds the whole value */
	unsigned dirty : 1;        /* buf differs from the store: publish */
	unsigned defer_empty : 1;  /* emptied by O_TRUNC only, nothing written */
	unsigned writable : 1;
	unsigned append : 1;
	unsigned is_virtual : 1;
	unsigned truncating : 1;   /* counted in node->truncating */
	unsigned counted_writer : 1; /* counted in node->writers */
	unsigned served_whole : 1; /* a read at 0 returned the whole value:
				    * reads past served_len are its EOF */
	size_t served_len;
	int write_err;             /* <0: a write failed, publish nothing */
	pid_t pid;                 /* the opener (a thread id, as FUSE gives) */
	/* The size its writer sees: len while dirty, else -1 (the store's
	 * value is the file). Written under lock (fs_file_view), read
	 * without it, so that a getattr without a handle can find it
	 * under itab.lock (see fs_file_view_len). */
	atomic_llong view_len;
	/* mtime set (utimensat) while open for writing, applied at the
	 * publish; FS_NO_MTIME if none; a write clears it. Set under
	 * itab.lock (setattr has no handle for it), read atomically. */
	_Atomic int64_t set_mtime_ns;
	_Atomic(struct fuse_pollhandle *) ph; /* armed poll, or NULL */
	atomic_int changed;        /* value changed since last poll report */
	struct fs_file *next, *prev; /* node->files, under itab.lock */
};

/* ---- the driver ---- */

struct fs {
	struct store *store;
	struct lockmgr *locks;
	struct fuse_session *se;
	struct fs_itab itab;
	struct fs_stats stats;
	uint32_t writer;           /* store_writer_token(store) */
	uint64_t max_value;
	char node_name[64];
	char *store_dir;           /* absolute; NULL: not told (no repl.status) */
	/* notify.c */
	pthread_t notify_thread;
	int notify_running;
	atomic_int notify_stop;
	pthread_mutex_t notify_mu;  /* protects the two below */
	pthread_cond_t notify_cond; /* notify_done grew, or !notify_live */
	uint64_t notify_done;       /* binlog handled up to here */
	int notify_live;            /* the thread runs (fs_lock_sync waits) */
};

/* Count one op / one error. */
static inline void fs_count(struct fs *fs, enum fs_op op)
{
	atomic_fetch_add_explicit(&fs->stats.ops[op], 1, memory_order_relaxed);
}
void fs_count_err(struct fs *fs, int err);

/* ---- /.statefs (ctl.c) ---- */

/* Attributes of a virtual inode; -ENOENT if `ino` is not one. */
int fs_ctl_getattr(struct fs *fs, uint64_t ino, struct stat *st);
/* Lookup `name` in the virtual directory: its ino, or 0. */
uint64_t fs_ctl_lookup(const char *name);
/* Generate the content of virtual file `ino` into f->buf. */
int fs_ctl_fill(struct fs *fs, uint64_t ino, struct fs_file *f);
/* Fill a readdir buffer of the virtual directory from offset off. */
size_t fs_ctl_readdir(fuse_req_t req, char *buf, size_t size, off_t off,
		      int plus);
static inline int fs_ino_is_ctl(uint64_t ino)
{
	return ino >= FS_INO_CTL_DIR && ino <= FS_INO_CTL_LAST;
}

/* Wake the poll handles of the open files of `ino` (notify.c). */
void fs_poll_wake(struct fs *fs, uint64_t ino);

/* ---- shared by the handler files (fs.c, file.c, dir.c, xattr.c) ---- */

static inline struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* itab.ns: shared while a handler acts on a path, exclusive for a
 * rename (see fs.c, "Locks"). */
static inline void ns_rd(struct fs *fs)
{
	pthread_rwlock_rdlock(&fs->itab.ns);
}

static inline void ns_wr(struct fs *fs)
{
	pthread_rwlock_wrlock(&fs->itab.ns);
}

static inline void ns_unlock(struct fs *fs)
{
	pthread_rwlock_unlock(&fs->itab.ns);
}

/* Reply with an errno, positive or negative (and count it). */
void fs_reply_err(struct fs *fs, fuse_req_t req, int err);
/* A per-thread buffer of at least size bytes, valid until the thread's
 * next call; NULL when out of memory. */
char *fs_rbuf_get(size_t size);
/* Is `name` in `parent` the virtual /.statefs? */
int fs_is_ctl_name(fuse_ino_t parent, const char *name);
/* Path of child `name` of `parent` into buf (FS_PATH_MAX). -EPERM
 * inside /.statefs or for /.statefs itself, -ENAMETOOLONG, or the
 * errors of fs_itab_path. Caller holds itab.ns. */
int fs_child_path(struct fs *fs, fuse_ino_t parent, const char *name,
		  char *buf);
/* Entry timeout for a record (bounded by its TTL deadline). */
double fs_cache_timeout(const struct store_stat *st);
/* Attribute timeout for a reply about `ino` about to be sent (notes
 * it in the node). */
double fs_attr_timeout(struct fs *fs, uint64_t ino,
		       const struct store_stat *st);
void fs_fill_attr(uint64_t ino, const struct store_stat *st, struct stat *a);
/* A directory's link count as Linux gives it: 2 + its subdirectories
 * (the root counts /.statefs), 1 if it cannot be listed. find(1) trusts
 * it to skip leaf directories. O(children) (store_list, in t). */
nlink_t fs_dir_nlink(struct fs *fs, struct store_txn *t, const char *path);
/* store_stat with a stand-in for a root the store does not list. */
int fs_stat_path(struct fs *fs, struct store_txn *t, const char *path,
		 struct store_stat *st);
/* Reply an entry for `path` (stat'ed in st), taking one kernel ref. */
void fs_reply_entry(struct fs *fs, fuse_req_t req, const char *path,
		    const struct store_stat *st);

/* Open files (file.c); both under f->lock. Grow f->buf to `want`
 * bytes (0 or -ENOMEM); make f->buf hold the whole current value. */
int fs_file_reserve(struct fs_file *f, size_t want);
int fs_file_load(struct fs *fs, struct fs_file *f);
/* Under f->lock, after dirty or len changed: publish view_len. */
static inline void fs_file_view(struct fs_file *f)
{
	atomic_store(&f->view_len, f->dirty ? (long long)f->len : -1);
}
/* The size of ino as the process of `req` sees it: the length of an
 * unpublished buffer of a file it opened for writing (1, *lenp), or
 * nothing of its own (0: the store's size stands). fi: the request's
 * handle, if it has one. */
int fs_file_view_len(struct fs *fs, fuse_req_t req, uint64_t ino,
		     struct fuse_file_info *fi, uint64_t *lenp);

/* The FUSE handlers, by file; fs.c puts them in fs_ll_ops. */
/* fs.c */
void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void fs_forget_multi(fuse_req_t req, size_t count,
		     struct fuse_forget_data *forgets);
void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		int to_set, struct fuse_file_info *fi);
void fs_statfs(fuse_req_t req, fuse_ino_t ino);
/* file.c */
void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
	       mode_t mode, struct fuse_file_info *fi);
void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	     struct fuse_file_info *fi);
void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	      off_t off, struct fuse_file_info *fi);
void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	      struct fuse_file_info *fi);
void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	     struct fuse_pollhandle *ph);
void fs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
		  off_t length, struct fuse_file_info *fi);
void fs_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	      int op);
void fs_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	      struct flock *lock);
void fs_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	      struct flock *lock, int sleep);
/* dir.c */
void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
	      mode_t mode, dev_t rdev);
void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
	      mode_t mode);
void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		const char *name);
void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	     const char *newname);
void fs_readlink(fuse_req_t req, fuse_ino_t ino);
void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
	       fuse_ino_t newparent, const char *newname, unsigned int flags);
void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi);
/* xattr.c */
void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		 const char *value, size_t size, int flags);
void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		 size_t size);
void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif
