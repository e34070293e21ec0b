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
 *      in by_ino. At most one live node per path.
 *  (2) inode numbers are never reused within a mount (a 64-bit counter),
 *      and the generation is the mount's start time, so an NFS-style
 *      handle from an older mount does not match a new node.
 *  (3) a node is freed only when nlookup drops to 0; the kernel sends the
 *      last forget only when no file of the inode is open, so open files
 *      may hold a node pointer without a reference of their own.
 *  (4) the root ("/", FUSE_ROOT_ID) is never freed.
 * A node dies when its path is unlinked or replaced by a rename; a later
 * create at that path gets a fresh inode, as on a local file system.
 * Renames rewrite the paths of the renamed node and of every cached
 * descendant: O(table) but renames of directories are rare.
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

static void path_unlink(struct fs_itab *t, struct fs_node *n)
{
	struct fs_node **pp = path_slot(t, n->path, n->path_len);

	if (*pp == n)
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
	return -ENOMEM;
}

void fs_itab_fini(struct fs_itab *t)
{
	size_t i;

	for (i = 0; i < t->nbuckets; i++) {
		struct fs_node *n = t->by_ino[i], *next;

		for (; n; n = next) {
			next = n->next_ino;
			free(n->path);
			free(n->lock_path);
			free(n);
		}
	}
	free(t->by_ino);
	free(t->by_path);
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
	free(n->path);
	free(n->lock_path);
	free(n);
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

int fs_itab_truncating(struct fs_itab *t, uint64_t ino)
{
	struct fs_node *n;
	int r;

	pthread_mutex_lock(&t->lock);
	n = *ino_slot(t, ino);
	r = n && n->truncating;
	pthread_mutex_unlock(&t->lock);
	return r;
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
	n->cache_valid = 0;
}

uint64_t fs_itab_kill(struct fs_itab *t, const char *path, size_t len)
{
	struct fs_node *n;
	uint64_t ino = 0;

	pthread_mutex_lock(&t->lock);
	n = *path_slot(t, path, len);
	if (n && n != t->root) {
		ino = n->ino;
		kill_node(t, n);
	}
	pthread_mutex_unlock(&t->lock);
	return ino;
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

void fs_itab_rename(struct fs_itab *t, const char *from, const char *to)
{
	size_t flen = strlen(from), tlen = strlen(to), i;
	struct fs_node *n, *victim;
	struct fs_node **moved = NULL;
	size_t nmoved = 0, cap = 0;

	pthread_mutex_lock(&t->lock);
	victim = *path_slot(t, to, tlen);
	if (victim)
		kill_node(t, victim);
	/* Descendants of a replaced (empty) directory are gone as well. */
	for (i = 0; i < t->nbuckets; i++) {
		for (n = t->by_ino[i]; n; n = n->next_ino) {
			int self = n->path_len == flen &&
				   memcmp(n->path, from, flen) == 0;
			int below = n->path_len > flen &&
				    memcmp(n->path, from, flen) == 0 &&
				    (n->path[flen] == '/' || flen == 1);

			if (n->dead || (!self && !below))
				continue;
			if (nmoved == cap) {
				size_t nc = cap ? cap * 2 : 16;
				struct fs_node **m =
					realloc(moved, nc * sizeof(*m));

				if (!m)
					break;
				moved = m;
				cap = nc;
			}
			moved[nmoved++] = n;
		}
	}
	/* Unhash all first: a moved path may equal another's old path. */
	for (i = 0; i < nmoved; i++)
		path_unlink(t, moved[i]);
	for (i = 0; i < nmoved; i++) {
		n = moved[i];
		if (set_path(n, to, tlen, n->path + flen,
			     n->path_len - flen) < 0) {
			n->dead = 1; /* unreachable now: ENOENT on use */
			continue;
		}
		path_link(t, n);
	}
	pthread_mutex_unlock(&t->lock);
	free(moved);
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
