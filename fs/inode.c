/*
 * inode.c — the table that maps FUSE inode numbers to store paths.
 *
 * The store is keyed by path; the kernel speaks inode numbers. Every
 * node the kernel holds a reference to (a lookup, create, mkdir, ... or
 * readdirplus entry) lives in this table, hashed both by ino and by
 * path, until the kernel forgets it.
 *
 * Invariants (all under t->lock):
 *  (1) a live node (dead == 0) is in both hash tables; a dead node only
 *      in by_ino. At most one live node per path: a node leaves by_path
 *      exactly when it dies (path_unlink unlinks that node, not the
 *      first one with an equal path), and a rename first kills every
 *      live node at or below its target.
 *  (2) inode numbers are never reused within a mount (a 64-bit counter),
 *      and the generation is the mount's start time, so an NFS-style
 *      handle from an older mount does not match a new node.
 *  (3) a node is freed only when nlookup drops to 0; the kernel sends the
 *      last forget only when no file of the inode is open, so open files
 *      may hold a node pointer without a reference of their own.
 *  (4) the root ("/", FUSE_ROOT_ID) is never freed.
 * A node dies when its path is unlinked or replaced by a rename through
 * this mount; a later create at that path gets a fresh inode, as on a
 * local file system. A delete the table never hears of (a TTL expiry, a
 * tombstone the invalidation thread has not handled yet) leaves a live
 * node at a path that no longer exists: a later lookup of a re-created
 * record there reuses it (same ino, new attributes), which (1) keeps
 * safe.
 *
 * A node that dies while files of it are open may keep a snapshot of
 * the record taken in the transaction that deleted it (gone_*): its
 * open files go on reading it and fstat sees it, as on tmpfs.
 *
 * Renames of a file or symlink move one node (a hash lookup). Renames
 * of a directory rewrite the paths of every cached descendant:
 * O(table), but renames of directories are rare.
 *
 * t->ns (a rwlock) makes "compute a path, act on the store, update the
 * table" atomic against renames: fs.c holds it shared from the moment
 * it turns an ino into a path until the table (or the store) has taken
 * the result, and a rename holds it exclusively across store_rename and
 * fs_itab_rename. Lock order: fs_file.lock, then t->ns, then t->lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "fs/fs_int.h"

static uint64_t hash_path(const char *p, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static uint64_t hash_ino(uint64_t ino)
{
	ino ^= ino >> 33;
	ino *= 0xff51afd7ed558ccdULL;
	ino ^= ino >> 33;
	return ino;
}

static struct fs_node **ino_slot(struct fs_itab *t, uint64_t ino)
{
	struct fs_node **pp = &t->by_ino[hash_ino(ino) & (t->nbuckets - 1)];

	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->next_ino;
	return pp;
}

static struct fs_node **path_slot(struct fs_itab *t, const char *path,
				  size_t len)
{
	struct fs_node **pp =
		&t->by_path[hash_path(path, len) & (t->nbuckets - 1)];

	while (*pp && !((*pp)->path_len == len &&
			memcmp((*pp)->path, path, len) == 0))
		pp = &(*pp)->next_path;
	return pp;
}

/* Take exactly n out of its by_path chain (never another node with an
 * equal path: see invariant (1)). */
static void path_unlink(struct fs_itab *t, struct fs_node *n)
{
	struct fs_node **pp =
		&t->by_path[hash_path(n->path, n->path_len) & (t->nbuckets - 1)];

	while (*pp && *pp != n)
		pp = &(*pp)->next_path;
	if (*pp)
		*pp = n->next_path;
	n->next_path = NULL;
}

static void path_link(struct fs_itab *t, struct fs_node *n)
{
	struct fs_node **pp =
		&t->by_path[hash_path(n->path, n->path_len) & (t->nbuckets - 1)];

	n->next_path = *pp;
	*pp = n;
}

static int grow(struct fs_itab *t)
{
	size_t nb = t->nbuckets * 2, i;
	struct fs_node **bi = calloc(nb, sizeof(*bi));
	struct fs_node **bp = calloc(nb, sizeof(*bp));

	if (!bi || !bp) {
		free(bi);
		free(bp);
		return -ENOMEM;
	}
	for (i = 0; i < t->nbuckets; i++) {
		struct fs_node *n = t->by_ino[i], *next;

		for (; n; n = next) {
			size_t b = hash_ino(n->ino) & (nb - 1);

			next = n->next_ino;
			n->next_ino = bi[b];
			bi[b] = n;
			if (!n->dead) {
				b = hash_path(n->path, n->path_len) & (nb - 1);
				n->next_path = bp[b];
				bp[b] = n;
			}
		}
	}
	free(t->by_ino);
	free(t->by_path);
	t->by_ino = bi;
	t->by_path = bp;
	t->nbuckets = nb;
	return 0;
}

static void node_free(struct fs_node *n)
{
	free(n->path);
	free(n->lock_path);
	free(n->gone_val);
	free(n);
}

static struct fs_node *node_new(struct fs_itab *t, const char *path,
				size_t len, uint64_t ino)
{
	struct fs_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->path = malloc(len + 1);
	if (!n->path) {
		free(n);
		return NULL;
	}
	memcpy(n->path, path, len);
	n->path[len] = '\0';
	n->path_len = len;
	n->ino = ino;
	n->generation = t->generation;
	n->next_ino = t->by_ino[hash_ino(ino) & (t->nbuckets - 1)];
	t->by_ino[hash_ino(ino) & (t->nbuckets - 1)] = n;
	path_link(t, n);
	t->count++;
	return n;
}

int fs_itab_init(struct fs_itab *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	/* glibc's default (readers first): a reader may take it again while
	 * a rename waits, so no path can deadlock on it. */
	pthread_rwlock_init(&t->ns, NULL);
	t->nbuckets = 1024;
	t->by_ino = calloc(t->nbuckets, sizeof(*t->by_ino));
	t->by_path = calloc(t->nbuckets, sizeof(*t->by_path));
	t->next_ino = FS_INO_FIRST;
	t->generation = (uint64_t)time(NULL);
	if (!t->by_ino || !t->by_path)
		goto nomem;
	t->root = node_new(t, "/", 1, FUSE_ROOT_ID);
	if (!t->root)
		goto nomem;
	t->root->nlookup = 1;
	return 0;
nomem:
	free(t->by_ino);
	free(t->by_path);
	pthread_rwlock_destroy(&t->ns);
	pthread_mutex_destroy(&t->lock);
	return -ENOMEM;
}

void fs_itab_fini(struct fs_itab *t)
{
	size_t i;

	for (i = 0; i < t->nbuckets; i++) {
		struct fs_node *n = t->by_ino[i], *next;

		for (; n; n = next) {
			next = n->next_ino;
			node_free(n);
		}
	}
	free(t->by_ino);
	free(t->by_path);
	pthread_rwlock_destroy(&t->ns);
	pthread_mutex_destroy(&t->lock);
}

uint64_t fs_itab_ref(struct fs_itab *t, const char *path, uint64_t nref)
{
	size_t len = strlen(path);
	struct fs_node *n;
	uint64_t ino = 0;

	pthread_mutex_lock(&t->lock);
	n = *path_slot(t, path, len);
	if (!n) {
		if (t->count >= t->nbuckets && grow(t) < 0)
			log_msg(LOG_WARNING, "inode table: cannot grow");
		n = node_new(t, path, len, t->next_ino);
		if (n)
			t->next_ino++;
	}
	if (n) {
		n->nlookup += nref;
		ino = n->ino;
	}
	pthread_mutex_unlock(&t->lock);
	return ino;
}

/* Under t->lock: free the node in *pp if nothing references it. */
static void maybe_free(struct fs_itab *t, struct fs_node **pp)
{
	struct fs_node *n = *pp;

	if (!n || n->nlookup || n == t->root || n->files)
		return;
	*pp = n->next_ino;
	if (!n->dead)
		path_unlink(t, n);
	t->count--;
	node_free(n);
}

void fs_itab_forget(struct fs_itab *t, uint64_t ino, uint64_t nref)
{
	struct fs_node **pp, *n;

	pthread_mutex_lock(&t->lock);
	pp = ino_slot(t, ino);
	n = *pp;
	if (!n) {
		pthread_mutex_unlock(&t->lock);
		return;
	}
	if (n->nlookup < nref) {
		log_msg(LOG_ERROR, "forget of %llu by %llu > nlookup %llu",
			(unsigned long long)ino, (unsigned long long)nref,
			(unsigned long long)n->nlookup);
		nref = n->nlookup;
	}
	n->nlookup -= nref;
	maybe_free(t, pp);
	pthread_mutex_unlock(&t->lock);
}

void fs_itab_file_attach(struct fs_itab *t, struct fs_node *n,
			 struct fs_file *f)
{
	pthread_mutex_lock(&t->lock);
	if (f->truncating)
		n->truncating++;
	if (f->counted_writer)
		n->writers++;
	f->prev = NULL;
	f->next = n->files;
	if (n->files)
		n->files->prev = f;
	n->files = f;
	pthread_mutex_unlock(&t->lock);
}

void fs_itab_file_detach(struct fs_itab *t, struct fs_node *n,
			 struct fs_file *f)
{
	pthread_mutex_lock(&t->lock);
	if (f->truncating)
		n->truncating--;
	if (f->counted_writer)
		n->writers--;
	if (f->prev)
		f->prev->next = f->next;
	else
		n->files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	f->next = f->prev = NULL;
	maybe_free(t, ino_slot(t, n->ino));
	pthread_mutex_unlock(&t->lock);
}

int fs_itab_path(struct fs_itab *t, uint64_t ino, char *buf)
{
	struct fs_node *n;
	int err = 0;

	pthread_mutex_lock(&t->lock);
	n = *ino_slot(t, ino);
	if (!n)
		err = -ESTALE;
	else if (n->dead)
		err = -ENOENT;
	else
		memcpy(buf, n->path, n->path_len + 1);
	pthread_mutex_unlock(&t->lock);
	return err;
}

int fs_itab_lock_path(struct fs_itab *t, uint64_t ino, char *buf,
		      int remember)
{
	struct fs_node *n;
	int err = 0;

	pthread_mutex_lock(&t->lock);
	n = *ino_slot(t, ino);
	if (!n) {
		err = -ESTALE;
	} else if (n->lock_path) {
		snprintf(buf, FS_PATH_MAX, "%s", n->lock_path);
	} else if (!remember) {
		err = -ENOENT;
	} else {
		/* "//" never starts a canonical path */
		if (n->dead)
			snprintf(buf, FS_PATH_MAX, "//unlinked/%" PRIu64 "/%" PRIu64,
				 n->ino, n->generation);
		else
			memcpy(buf, n->path, n->path_len + 1);
		n->lock_path = strdup(buf);
		if (!n->lock_path)
			err = -ENOMEM;
	}
	pthread_mutex_unlock(&t->lock);
	return err;
}

struct fs_node *fs_itab_node(struct fs_itab *t, uint64_t ino)
{
	struct fs_node *n;

	pthread_mutex_lock(&t->lock);
	n = *ino_slot(t, ino);
	pthread_mutex_unlock(&t->lock);
	return n;
}

struct fs_node *fs_itab_node_locked(struct fs_itab *t, uint64_t ino)
{
	return *ino_slot(t, ino);
}

int fs_itab_note_reply(struct fs_itab *t, uint64_t ino, int64_t until_ns,
		       int64_t now_ns)
{
	struct fs_node *n;
	int r = 0;

	pthread_mutex_lock(&t->lock);
	n = *ino_slot(t, ino);
	if (n) {
		r = n->truncating || n->writers ||
		    now_ns - n->publish_ns < FS_PUBLISH_QUIET_NS;
		if (until_ns > n->kcache_until_ns)
			n->kcache_until_ns = until_ns;
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

int fs_itab_own_change(struct fs_itab *t, const char *path, size_t len,
		       int64_t expires_ns, uint64_t *inop)
{
	struct fs_node *n;
	int inval = 0;

	pthread_mutex_lock(&t->lock);
	n = *path_slot(t, path, len);
	*inop = n && n->files ? n->ino : 0;
	if (n && expires_ns && expires_ns < n->kcache_until_ns)
		inval = 1;
	pthread_mutex_unlock(&t->lock);
	return inval;
}

uint64_t fs_itab_find(struct fs_itab *t, const char *path, size_t len)
{
	struct fs_node *n;
	uint64_t ino;

	pthread_mutex_lock(&t->lock);
	n = *path_slot(t, path, len);
	ino = n ? n->ino : 0;
	pthread_mutex_unlock(&t->lock);
	return ino;
}

/* Under t->lock: take n out of by_path for good. */
static void kill_node(struct fs_itab *t, struct fs_node *n)
{
	if (n->dead || n == t->root)
		return;
	path_unlink(t, n);
	n->dead = 1;
}

uint64_t fs_itab_kill_locked(struct fs_itab *t, const char *path, size_t len)
{
	struct fs_node *n = *path_slot(t, path, len);

	if (!n || n == t->root)
		return 0;
	kill_node(t, n);
	return n->ino;
}

uint64_t fs_itab_kill(struct fs_itab *t, const char *path, size_t len)
{
	uint64_t ino;

	pthread_mutex_lock(&t->lock);
	ino = fs_itab_kill_locked(t, path, len);
	pthread_mutex_unlock(&t->lock);
	return ino;
}

int fs_itab_has_files(struct fs_itab *t, const char *path, size_t len)
{
	struct fs_node *n;
	int r;

	pthread_mutex_lock(&t->lock);
	n = *path_slot(t, path, len);
	r = n && n->files;
	pthread_mutex_unlock(&t->lock);
	return r;
}

uint64_t fs_itab_kill_keep(struct fs_itab *t, const char *path, size_t len,
			   const struct store_stat *st, void *val,
			   size_t vlen)
{
	struct fs_node *n;
	uint64_t ino = 0;

	pthread_mutex_lock(&t->lock);
	n = *path_slot(t, path, len);
	if (n && n != t->root) {
		kill_node(t, n);
		free(n->gone_val);
		n->gone_val = val;
		n->gone_len = vlen;
		n->gone_st = *st;
		n->gone = 1;
		val = NULL;
		ino = n->ino;
	}
	pthread_mutex_unlock(&t->lock);
	free(val);
	return ino;
}

int fs_itab_gone_stat(struct fs_itab *t, uint64_t ino, struct store_stat *st)
{
	struct fs_node *n;
	int err = -ENOENT;

	pthread_mutex_lock(&t->lock);
	n = *ino_slot(t, ino);
	if (n && n->dead && n->gone) {
		*st = n->gone_st;
		err = 0;
	}
	pthread_mutex_unlock(&t->lock);
	return err;
}

int fs_itab_gone_setattr(struct fs_itab *t, uint64_t ino,
			 const struct store_attr *a, unsigned mask,
			 int64_t now_ns, struct store_stat *st)
{
	struct fs_node *n;
	int err = -ENOENT;

	pthread_mutex_lock(&t->lock);
	n = *ino_slot(t, ino);
	if (!n || !n->dead || (!n->gone && !n->files))
		goto out;
	if (!n->gone) {
		/* deleted by someone else: its open files read EOF (no
		 * value kept) and show what they had at the open */
		n->gone_st = n->files->open_st;
		n->gone_val = NULL;
		n->gone_len = 0;
		n->gone = 1;
	}
	if (mask & STORE_ATTR_MODE)
		n->gone_st.mode = (n->gone_st.mode & S_IFMT) |
				  (a->mode & 07777);
	if (mask & STORE_ATTR_UID)
		n->gone_st.uid = a->uid;
	if (mask & STORE_ATTR_GID)
		n->gone_st.gid = a->gid;
	if (mask & STORE_ATTR_MTIME)
		n->gone_st.mtime_ns = a->mtime_ns;
	if (mask & STORE_ATTR_ATIME)
		n->gone_st.atime_ns = a->atime_ns;
	if (mask)
		n->gone_st.ctime_ns = now_ns;
	*st = n->gone_st;
	err = 0;
out:
	pthread_mutex_unlock(&t->lock);
	return err;
}

ssize_t fs_itab_gone_read(struct fs_itab *t, uint64_t ino, uint64_t off,
			  void *buf, size_t size)
{
	struct fs_node *n;
	ssize_t r = -ENOENT;

	pthread_mutex_lock(&t->lock);
	n = *ino_slot(t, ino);
	if (n && n->dead && n->gone) {
		r = 0;
		if (off < n->gone_len) {
			r = n->gone_len - off < size ? n->gone_len - off : size;
			memcpy(buf, (char *)n->gone_val + off, r);
		}
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

int fs_itab_gone_copy(struct fs_itab *t, uint64_t ino, void **valp,
		      size_t *lenp)
{
	struct fs_node *n;
	int err = -ENOENT;

	pthread_mutex_lock(&t->lock);
	n = *ino_slot(t, ino);
	if (n && n->dead && n->gone) {
		*valp = malloc(n->gone_len ? n->gone_len : 1);
		if (*valp) {
			if (n->gone_len)
				memcpy(*valp, n->gone_val, n->gone_len);
			*lenp = n->gone_len;
			err = 0;
		} else {
			err = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return err;
}

static int set_path(struct fs_node *n, const char *prefix, size_t plen,
		    const char *rest, size_t rlen)
{
	char *p = malloc(plen + rlen + 1);

	if (!p)
		return -ENOMEM;
	memcpy(p, prefix, plen);
	memcpy(p + plen, rest, rlen);
	p[plen + rlen] = '\0';
	free(n->path);
	n->path = p;
	n->path_len = plen + rlen;
	return 0;
}

/* Is p (len) `dir` itself (self) or below it? */
static int at_or_below(const char *p, size_t len, const char *dir,
		       size_t dlen, int *self)
{
	if (len < dlen || memcmp(p, dir, dlen) != 0)
		return 0;
	*self = len == dlen;
	return *self || p[dlen] == '/' || dlen == 1;
}

/* Under t->lock: give n the path to + (its path past flen), or kill it
 * when memory runs out (it is unreachable then: ENOENT on use). n is
 * not in by_path. */
static void move_node(struct fs_itab *t, struct fs_node *n, size_t flen,
		      const char *to, size_t tlen)
{
	if (set_path(n, to, tlen, n->path + flen, n->path_len - flen) < 0) {
		n->dead = 1;
		log_msg(LOG_WARNING, "inode table: out of memory in rename");
		return;
	}
	path_link(t, n);
}

void fs_itab_rename(struct fs_itab *t, const char *from, const char *to,
		    int is_dir)
{
	size_t flen = strlen(from), tlen = strlen(to), i;
	struct fs_node *n, *moved = NULL;
	int self;

	if (flen == tlen && memcmp(from, to, flen) == 0)
		return; /* rename onto itself: nothing moved */
	pthread_mutex_lock(&t->lock);
	if (!is_dir) {
		/* A file or symlink: it has no descendants, and what it
		 * replaces is a file too. */
		n = *path_slot(t, to, tlen);
		if (n)
			kill_node(t, n);
		n = *path_slot(t, from, flen);
		if (n && n != t->root) {
			path_unlink(t, n);
			move_node(t, n, flen, to, tlen);
		}
		pthread_mutex_unlock(&t->lock);
		return;
	}
	/* A directory: the replaced (empty) directory dies with every node
	 * still cached below it (left by deletes we never heard of), then
	 * the subtree moves. Moved nodes are chained through next_path,
	 * free once they are out of by_path. */
	for (i = 0; i < t->nbuckets; i++) {
		for (n = t->by_ino[i]; n; n = n->next_ino) {
			if (n->dead || n == t->root)
				continue;
			if (at_or_below(n->path, n->path_len, to, tlen, &self)) {
				kill_node(t, n);
			} else if (at_or_below(n->path, n->path_len, from, flen,
					       &self)) {
				path_unlink(t, n);
				n->next_path = moved;
				moved = n;
			}
		}
	}
	while (moved) {
		n = moved;
		moved = n->next_path;
		n->next_path = NULL;
		move_node(t, n, flen, to, tlen);
	}
	pthread_mutex_unlock(&t->lock);
}

size_t fs_itab_all(struct fs_itab *t, uint64_t **out)
{
	size_t i, k = 0;
	uint64_t *v;
	struct fs_node *n;

	pthread_mutex_lock(&t->lock);
	v = malloc((t->count + 1) * sizeof(*v));
	if (v) {
		for (i = 0; i < t->nbuckets; i++)
			for (n = t->by_ino[i]; n; n = n->next_ino)
				v[k++] = n->ino;
	}
	pthread_mutex_unlock(&t->lock);
	*out = v;
	return k;
}
