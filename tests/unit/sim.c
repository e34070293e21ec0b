/*
 * sim.c — a seeded, deterministic simulation of replication (issue 7 §6).
 *
 * In the spirit of FoundationDB's simulation tests and TigerBeetle's VOPR:
 * one process, one thread, one PRNG. A seed chooses everything: how many
 * stores (2 to 6, each in its own mkdtemp directory under /dev/shm), the
 * topology that links them (line, ring, star, full mesh), each store's
 * clock offset, each link's delay, when partitions open and heal, and a
 * random workload through the store's public API only. Changes travel the
 * way the replicator moves them: store_binlog_read on the sender,
 * store_apply_remote on the receiver, one FIFO per directed link, batched
 * into receiver transactions that never split a commit group, forwarded
 * through intermediate nodes.
 *
 * A link is a FIFO with its own delay and random batching. It reads
 * whole commit groups from the sender's binlog, delivers what is due in
 * one receiver transaction, never skips an entry: a STORE_HELD change
 * stalls the link (the groups before it commit) until the receiver's
 * clock catches up. A partition drops what is in flight and the sender
 * resends from what the receiver acknowledged. After each delivery the
 * sender is told what the receiver holds (store_peer_ack with the
 * receiver's watermarks), as a replicator would; neighbours are each
 * other's known peers.
 *
 * Some deliveries go by snapshot instead, as the replicator's do. A link
 * resyncs at random, when a delivery is STORE_TOO_OLD (some seeds have a
 * grace shorter than a partition), when the sender's binlog was trimmed
 * past it (some seeds keep 16 to 79 entries) and, checked before every
 * read and at quiescence, whenever the receiver lacks changes below the
 * sender's horizon that the sender's watermarks hold (store.h). The
 * sender opens a snapshot; the receiver installs it in chunks of a few
 * hundred bytes, each in its own transaction (merges, then the prune of
 * the chunk's key range; the last prunes the rest and finishes), while
 * every other link and the workload go on between chunks; then the link
 * follows the binlog from the snapshot's sequence. A merge refused with
 * -EAGAIN, a partition or a restart gives the snapshot up (what was
 * installed stays); the link starts another later.
 *
 * Time is virtual. Every store reads its wall clock through opts.clock:
 * the simulation's global time plus the node's offset (a few ms to 300
 * ms, either sign). TTL expiry, hold-back of changes stamped in the
 * future and tombstone purges are tested without sleeping.
 *
 * After the workload: heal every partition, deliver until quiescent,
 * then check (A) at once, tolerating only what expires between the
 * slowest and the fastest clock; (B) past every deadline and hold-back,
 * swept; again after one node deletes a few paths; and (C) past the
 * tombstone grace, swept (purges change nothing visible):
 *  (a) every store's digest is equal;
 *  (b) a path whose last op dominated (causally followed) every other op
 *      touching it shows on every node exactly what that op's node saw
 *      right after it: absent after a delete, that value after a write;
 *      and a final round of deletes by one node leaves nothing behind;
 *  (c) every visible value is a value somebody wrote at that path (or at
 *      a path a rename could have moved it from); a chmod, a value write
 *      and an xattr set made concurrently on three nodes all survive;
 *  (d) store_check passes on every node;
 *  (e) full recursive listings (names, types, modes, owners, sizes,
 *      values, xattrs, deadlines) are equal, and the first difference is
 *      printed.
 *
 * Determinism. Decisions draw from the PRNG a fixed number of times per
 * step whatever the store answered, and never look at node ids (they are
 * random at store creation): the same seed explores the same schedule.
 * What may differ between runs of one seed is which of two changes with
 * equal HLCs wins (node ids break that tie), and so what happens after.
 *
 * Causality for the oracle comes from the stores themselves: an op made
 * on node N at origin sequence q is seen by node M once M's watermark for
 * N reaches q; an op o2 dominates o1 when o2's node had seen o1 before it
 * made o2.
 *
 * Failures have a class (the check and its path). --shrink reruns a
 * failing seed with subsets of its ops turned into no-ops (their draws
 * still made) and keeps the smallest that fails the same way.
 *
 *   sim                         the default run (tests/run): 300 seeds
 *   sim --seed S [--verbose]    one seed, exactly; --verbose logs every
 *                               op and delivery
 *   sim --seed S --shrink       the few ops that seed's failure needs
 *   sim --seeds N [--from S]    N seeds from S (default 1)
 *   sim ... --steps N           workload steps per seed (default 500)
 *   sim ... --avoid touch,xattr,purge  look past known store bugs (see
 *                               avoid_touch below)
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "store/store.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

#define MAXN 6
#define EPOCH_NS                                                               \
	((int64_t)1767225600000000000) /* 2026-01-01: virtual time zero */
#define MS ((int64_t)1000000)
#define PATHMAX 512

static int verbose;

/* --avoid LIST: stay clear of known store bugs, to explore past them.
 *  touch: no touch of a directory or symlink (such a change has no field
 *         stamped with its version: every peer refuses it, -EPROTO);
 *  xattr: xattr names whose first differing bytes are 1 apart (the merge
 *         took memcmp's -2 for "same name": an xattr set concurrently
 *         under a name sorting 2 after ours was dropped);
 *  purge: no sweeps during the workload, and in the last check every
 *         node sweeps, not some (a node that purged a tombstone holding
 *         xattrs and one that did not merge a re-creation of the path
 *         differently). */
static int avoid_touch, avoid_xattr, avoid_purge;
static const char *fm_xattr = "user.m";

/* --shrink: which local steps run (the others draw, then do nothing). */
static unsigned char *keep;
static int nkeep;

/* ---- PRNG: splitmix64 ---- */

static uint64_t rng_state;

static uint64_t rnd64(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint32_t rnd(uint32_t n)
{
	return n ? (uint32_t)(rnd64() % n) : 0;
}

static int chance(unsigned pct)
{
	return rnd(100) < pct;
}

/* ---- small growable arrays ---- */

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fprintf(stderr, "sim: out of memory\n");
		exit(3);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xrealloc(NULL, n), s, n);
}

#define PUSH(arr, n, cap, v)                                                   \
	do {                                                                   \
		if ((n) == (cap)) {                                            \
			(cap) = (cap) ? 2 * (cap) : 8;                         \
			(arr) = xrealloc((arr), (cap) * sizeof(*(arr)));       \
		}                                                              \
		(arr)[(n)++] = (v);                                            \
	} while (0)

/* ---- the simulated world ---- */

/* A value (file content or symlink target) somebody wrote; ids index
 * sim.vals. Every written value is unique, so a value names its write. */
struct val {
	uint64_t h;
	size_t len;
	char *bytes; /* NUL-terminated too */
};

/* What one node showed at one path right after one op. */
struct snap {
	int path;
	int exists;
	enum store_type type;
	uint32_t mode, uid, gid;
	int val;     /* file value or symlink target; -1 for a directory */
	uint64_t xh; /* hash of the xattrs */
	int64_t expires;
};

/* One successful local op (or a transaction of several). */
struct op {
	int node;
	uint64_t seq;	   /* the node's local_seq right after it */
	uint64_t wm[MAXN]; /* what the node had seen before it */
	int ttl;	   /* a TTL was involved: skip the strong oracle */
	char **targets;	   /* the paths it named (it touches their
			    * ancestors and descendants too) */
	size_t ntargets, captargets;
	struct snap *snap;
	size_t nsnap, capsnap;
	int64_t vt;  /* when */
	int attempt; /* which local step made it (for --shrink) */
	int epoch;   /* quiescent points before it */
	char desc[400];
};

struct pathinfo {
	char *path;
	int *vals; /* values possible here (written, or moved here) */
	size_t nvals, capvals;
};

/* Why a link resyncs by snapshot. */
enum {
	RESYNC_RANDOM = 1,  /* at random, as a test of the path */
	RESYNC_TOO_OLD = 2, /* a delivery got STORE_TOO_OLD */
	RESYNC_TRIMMED = 3, /* the sender's binlog was trimmed past the
			     * link, and the receiver lacks what went */
	RESYNC_HORIZON = 4, /* the sender installed a snapshot whose
			     * changes the receiver lacks (they are in
			     * no binlog of the sender's) */
	RESYNC_KINDS = 5,
};
static const char *const resync_name[RESYNC_KINDS] = {
    "", "random", "too-old", "trimmed", "horizon"};

/* One change in flight on a link (copied out of the sender's binlog). */
struct msg {
	uint64_t seq; /* the sender's binlog sequence */
	struct store_change c;
	char *path;
	void *rec;
	int64_t due;
};

struct link {
	int from, to, edge;
	uint64_t sent;	/* sender's binlog seq read into the FIFO */
	uint64_t acked; /* sender's binlog seq committed at the receiver */
	struct msg *q;
	size_t qhead, qlen, qcap;
	int64_t delay; /* base delay, ns */
	int64_t last_due;
	/* Resync by snapshot. want: start one when the link is up and
	 * resync_at has passed (why: a RESYNC_* reason, for the figures).
	 * snap: the sender's open snapshot being installed chunk by chunk,
	 * swm its watermarks, slast the last path of the chunk before. */
	int want;
	int64_t resync_at;
	struct store_snap *snap;
	struct store_vv_entry *swm;
	unsigned nswm;
	char *slast;
};

struct edge {
	int a, b;
	int down;
	int64_t until;
};

struct node {
	struct store *s;
	char dir[64];
	uint64_t id;
	int64_t off; /* clock offset, ns */
	uint64_t counted; /* binlog seq up to which its own changes are
			   * counted (S->nchanges) */
};

/* A concurrent chmod / value write / xattr set on one file (c). */
struct fmerge {
	int state; /* 0 waiting to create, 1 created, 2 done */
	char path[64];
	int x, y, z;
	int64_t at;
	uint32_t mode;
	int val;
	char xval[32];
};

struct sim {
	uint64_t seed;
	int n;
	const char *topo;
	struct node nodes[MAXN];
	struct edge edges[MAXN * MAXN];
	int nedges;
	struct link links[2 * MAXN * MAXN];
	int nlinks;
	int64_t vt; /* virtual time, ns since EPOCH_NS */
	uint64_t max_ttl_ms;
	uint64_t grace_ms;
	uint64_t max_offset_ms;
	uint64_t counter; /* makes written values unique */

	struct val *vals;
	size_t nvals, capvals;
	struct pathinfo *paths;
	size_t npaths, cappaths;
	struct op *ops;
	size_t nops, capops;
	char **renames; /* pairs: from, to */
	size_t nrenames, caprenames;
	struct fmerge fm[3];
	int nfm;

	/* figures */
	uint64_t npurged, nrestarts, noracle;
	uint64_t nlocal, nfailed_local, ndeliver, napplied, ndup, nsuper, nwon,
	    nlost, nheld, nbatches;
	uint64_t nresync[RESYNC_KINDS]; /* snapshots installed, by reason */
	uint64_t nchunks, nabort, nskip;
	uint64_t nchanges;   /* local changes: binlog entries they made */
	uint64_t binlog_max; /* every node's; 0: the default */
	int failed;
	char err[1024];
	char cls[PATHMAX + 32]; /* what kind of failure, and where: a
				 * shrunk run must fail the same way */
	char fpath[PATHMAX];	/* the path it is about, if any */
	int attempt;		/* local steps so far */
	int epoch;		/* quiescent points so far */
};

static struct sim *cur; /* for the clock and cleanup */

/* Figures over every seed run. */
static uint64_t total_resync[RESYNC_KINDS], total_chunks, total_abort;

static void sim_log(struct sim *S, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sim_log(struct sim *S, const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	printf("[%8.3f] ", (double)S->vt / 1e9);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* Record the first failure of the seed; later ones only in --verbose. */
static int fail(struct sim *S, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(struct sim *S, const char *fmt, ...)
{
	va_list ap;
	char buf[1024];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (!S->failed) {
		snprintf(S->err, sizeof(S->err), "%s", buf);
		if (!S->cls[0])
			snprintf(S->cls, sizeof(S->cls), "error");
	}
	S->failed = 1;
	sim_log(S, "FAIL %s", buf);
	return -1;
}

/* Name the kind of the failure about to be reported, and its path. */
static void set_cls(struct sim *S, const char *kind, const char *path)
{
	if (S->failed)
		return;
	snprintf(S->cls, sizeof(S->cls), "%s %s", kind, path ? path : "");
	snprintf(S->fpath, sizeof(S->fpath), "%s", path ? path : "");
}

static int64_t node_clock(struct sim *S, int i)
{
	return EPOCH_NS + S->vt + S->nodes[i].off;
}

static int64_t sim_clock(void *arg)
{
	struct node *nd = arg;

	return EPOCH_NS + cur->vt + nd->off;
}

static int node_of_id(struct sim *S, uint64_t id)
{
	for (int i = 0; i < S->n; i++)
		if (S->nodes[i].id == id)
			return i;
	return -1;
}

/* ---- directories: removed at the end, on failure and on signals ---- */

static char cleanup_dirs[MAXN][64];

static int rm_cb(const char *p, const struct stat *sb, int flag,
		 struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

static void rm_dirs(void)
{
	for (int i = 0; i < MAXN; i++)
		if (cleanup_dirs[i][0]) {
			nftw(cleanup_dirs[i], rm_cb, 8, FTW_DEPTH | FTW_PHYS);
			cleanup_dirs[i][0] = '\0';
		}
}

/* Directories left by a sim that died where no handler runs (a UBSan
 * report, SIGKILL): their names carry the pid; remove those whose
 * process is gone. */
static void rm_stale(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;

	if (!d)
		return;
	for (e = readdir(d); e; e = readdir(d)) {
		char p[300];
		long pid;

		if (sscanf(e->d_name, "statefs-sim-%ld-", &pid) != 1 ||
		    pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(p, sizeof(p), "/dev/shm/%s", e->d_name);
		nftw(p, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	}
	closedir(d);
}

static void on_signal(int sig)
{
	rm_dirs();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* ---- values and paths ---- */

static uint64_t hash(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

static int val_find(struct sim *S, const void *p, size_t n)
{
	uint64_t h = hash(p, n);

	for (size_t i = 0; i < S->nvals; i++)
		if (S->vals[i].h == h && S->vals[i].len == n &&
		    memcmp(S->vals[i].bytes, p, n) == 0)
			return (int)i;
	return -1;
}

static int val_id(struct sim *S, const void *p, size_t n)
{
	int i = val_find(S, p, n);
	struct val v;

	if (i >= 0)
		return i;
	v.h = hash(p, n);
	v.len = n;
	v.bytes = memcpy(xrealloc(NULL, n + 1), p, n);
	v.bytes[n] = '\0'; /* printable in messages */
	PUSH(S->vals, S->nvals, S->capvals, v);
	return (int)S->nvals - 1;
}

static int path_find(struct sim *S, const char *p)
{
	for (size_t i = 0; i < S->npaths; i++)
		if (strcmp(S->paths[i].path, p) == 0)
			return (int)i;
	return -1;
}

static int path_id(struct sim *S, const char *p)
{
	int i = path_find(S, p);
	struct pathinfo pi;

	if (i >= 0)
		return i;
	memset(&pi, 0, sizeof(pi));
	pi.path = xstrdup(p);
	PUSH(S->paths, S->npaths, S->cappaths, pi);
	return (int)S->npaths - 1;
}

static int path_add_val(struct sim *S, int path, int val)
{
	struct pathinfo *pi = &S->paths[path];

	for (size_t i = 0; i < pi->nvals; i++)
		if (pi->vals[i] == val)
			return 0;
	PUSH(pi->vals, pi->nvals, pi->capvals, val);
	return 1;
}

/* a is b, or an ancestor or a descendant of b */
static int related(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > lb)
		return strncmp(a, b, lb) == 0 && a[lb] == '/';
	if (la < lb)
		return strncmp(a, b, la) == 0 && b[la] == '/';
	return strcmp(a, b) == 0;
}

static int is_under(const char *p, const char *dir)
{
	size_t l = strlen(dir);

	return strncmp(p, dir, l) == 0 && (p[l] == '\0' || p[l] == '/');
}

/* The path universe: 3 top directories, 3 names below, depth <= 3, so
 * that ops collide often. */
static void rnd_path(char *buf, size_t size)
{
	static const char *top[] = {"a", "b", "c"};
	static const char *sub[] = {"x", "y", "z"};
	unsigned depth = 1 + rnd(3);
	unsigned t = rnd(3), s1 = rnd(3), s2 = rnd(3);

	if (depth == 1)
		snprintf(buf, size, "/%s", top[t]);
	else if (depth == 2)
		snprintf(buf, size, "/%s/%s", top[t], sub[s1]);
	else
		snprintf(buf, size, "/%s/%s/%s", top[t], sub[s1], sub[s2]);
}

/* ---- reading a node's state ---- */

struct ent {
	char *path;
	struct store_stat st;
	void *val;
	size_t len;
	char *xattrs; /* "name=value\n" sorted, malloc'd */
};

struct listing {
	struct ent *e;
	size_t n, cap;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* All xattrs of a path as one canonical string. */
static char *read_xattrs(struct store *s, const char *path)
{
	char names[4096], *out = NULL;
	char *list[64];
	size_t nl = 0, olen = 0;
	ssize_t n = store_xattr_list(s, NULL, path, names, sizeof(names));

	if (n < 0)
		n = 0;
	for (ssize_t i = 0; i < n && nl < 64; i += strlen(names + i) + 1)
		list[nl++] = names + i;
	qsort(list, nl, sizeof(list[0]), cmp_str);
	out = xrealloc(NULL, 1);
	out[0] = '\0';
	for (size_t i = 0; i < nl; i++) {
		char v[512];
		ssize_t vl =
		    store_xattr_get(s, NULL, path, list[i], v, sizeof(v) - 1);
		size_t add;

		if (vl < 0)
			vl = snprintf(v, sizeof(v), "<%zd>", vl);
		v[vl] = '\0';
		add = strlen(list[i]) + (size_t)vl + 3;
		out = xrealloc(out, olen + add + 1);
		olen += (size_t)snprintf(out + olen, add + 1, "%s=%s\n",
					 list[i], v);
	}
	return out;
}

struct list_ctx {
	struct store *s;
	const char *dir;
	struct listing *l;
	char (*sub)[PATHMAX];
	size_t nsub, capsub;
};

static int list_cb(void *arg, const char *name, size_t name_len,
		   const struct store_stat *st)
{
	struct list_ctx *c = arg;
	struct ent e;
	char p[PATHMAX];

	snprintf(p, sizeof(p), "%s/%.*s", strcmp(c->dir, "/") ? c->dir : "",
		 (int)name_len, name);
	memset(&e, 0, sizeof(e));
	e.path = xstrdup(p);
	e.st = *st;
	PUSH(c->l->e, c->l->n, c->l->cap, e);
	if (st->type == STORE_DIR) {
		if (c->nsub == c->capsub) {
			c->capsub = c->capsub ? 2 * c->capsub : 8;
			c->sub = xrealloc(c->sub, c->capsub * sizeof(*c->sub));
		}
		memcpy(c->sub[c->nsub++], p, PATHMAX);
	}
	return 0;
}

static int list_tree(struct store *s, const char *dir, struct listing *l)
{
	struct list_ctx c = {s, dir, l, NULL, 0, 0};
	int err = store_list(s, NULL, dir, NULL, list_cb, &c);

	for (size_t i = 0; !err && i < c.nsub; i++)
		err = list_tree(s, c.sub[i], l);
	free(c.sub);
	return err;
}

static int cmp_ent(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->path,
		      ((const struct ent *)b)->path);
}

static void listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->e[i].path);
		free(l->e[i].val);
		free(l->e[i].xattrs);
	}
	free(l->e);
	memset(l, 0, sizeof(*l));
}

/* The whole visible tree of node i, sorted by path, with values. */
static int snapshot_tree(struct sim *S, int i, struct listing *l)
{
	struct store *s = S->nodes[i].s;
	int err = list_tree(s, "/", l);

	if (err)
		return fail(S, "node %d: store_list: %s", i,
			    store_strerror(err));
	for (size_t k = 0; k < l->n; k++) {
		struct ent *e = &l->e[k];

		if (e->st.type == STORE_FILE || e->st.type == STORE_SYMLINK) {
			err =
			    store_get(s, NULL, e->path, NULL, &e->val, &e->len);
			if (err)
				return fail(S, "node %d: store_get %s: %s", i,
					    e->path, store_strerror(err));
			if (e->len != e->st.size)
				return fail(S,
					    "node %d: %s size %" PRIu64
					    " but value of %zu bytes",
					    i, e->path, e->st.size, e->len);
		}
		e->xattrs = read_xattrs(s, e->path);
	}
	qsort(l->e, l->n, sizeof(l->e[0]), cmp_ent);
	return 0;
}

/* What node i shows at one path, for the oracle. */
static int snap_path(struct sim *S, int i, const char *path, struct snap *sn,
		     int *ttl)
{
	struct store *s = S->nodes[i].s;
	struct store_stat st;
	void *v = NULL;
	size_t len = 0;
	char *x;
	int err;

	memset(sn, 0, sizeof(*sn));
	sn->path = path_id(S, path);
	sn->val = -1;
	err = store_stat(s, NULL, path, &st);
	if (err == -ENOENT || err == -ENOTDIR)
		return 0;
	if (err)
		return fail(S, "node %d: store_stat %s: %s", i, path,
			    store_strerror(err));
	sn->exists = 1;
	sn->type = st.type;
	sn->mode = st.mode & 07777;
	sn->uid = st.uid;
	sn->gid = st.gid;
	if (st.expires_ns || st.ttl_ms)
		*ttl = 1;
	sn->expires = st.expires_ns;
	if (st.type != STORE_DIR) {
		err = store_get(s, NULL, path, NULL, &v, &len);
		if (err)
			return fail(S, "node %d: store_get %s: %s", i, path,
				    store_strerror(err));
		sn->val = val_id(S, v, len);
		free(v);
	}
	x = read_xattrs(s, path);
	sn->xh = hash(x, strlen(x));
	free(x);
	return 0;
}

/* ---- watermarks ---- */

struct wm_ctx {
	struct sim *S;
	uint64_t *wm;
};

static int wm_cb(void *arg, uint64_t node, uint64_t seq)
{
	struct wm_ctx *c = arg;
	int i = node_of_id(c->S, node);

	if (i >= 0)
		c->wm[i] = seq;
	return 0;
}

static int node_wm(struct sim *S, int i, uint64_t wm[MAXN])
{
	struct wm_ctx c = {S, wm};
	int err;

	memset(wm, 0, sizeof(uint64_t) * MAXN);
	err = store_watermarks(S->nodes[i].s, wm_cb, &c);
	if (err)
		return fail(S, "node %d: store_watermarks: %s", i,
			    store_strerror(err));
	return 0;
}

static uint64_t local_seq(struct sim *S, int i)
{
	struct store_info info;

	if (store_info(S->nodes[i].s, &info))
		return 0;
	return info.local_seq;
}

/* ---- the workload ---- */

/* The parameters of one op, all drawn before it runs, so that the draws
 * do not depend on what the store answers. */
struct opdesc {
	unsigned kind;
	char p1[PATHMAX], p2[PATHMAX];
	uint64_t r[6];
};

static void draw_op(struct opdesc *d)
{
	d->kind = rnd(100);
	rnd_path(d->p1, sizeof(d->p1));
	rnd_path(d->p2, sizeof(d->p2));
	for (int i = 0; i < 6; i++)
		d->r[i] = rnd64();
}

static const uint32_t modes[] = {0644, 0600, 0640, 0755, 0700, 0444};

static int expected_errno(int err)
{
	switch (-err) {
	case ENOENT:
	case EEXIST:
	case ENOTEMPTY:
	case ENOTDIR:
	case EISDIR:
	case EINVAL:
	case ENODATA:
		return 1;
	}
	return 0;
}

static void make_value(struct sim *S, int node, uint64_t r, char *buf,
		       size_t size, size_t *len)
{
	size_t pad = r % 40;
	int n = snprintf(buf, size, "v%" PRIu64 "n%d:", ++S->counter, node);

	for (size_t i = 0; i < pad && (size_t)n + 1 < size; i++)
		buf[n++] = (char)('a' + (r >> 8) % 26);
	buf[n] = '\0';
	*len = (size_t)n;
}

/* Run one op on node i inside transaction t. Returns 0, a negative
 * errno the store gave (an expected one or not), fills the paths it
 * names into targets (the second "" unless a rename). */
static int run_op(struct sim *S, int i, struct store_txn *t,
		  const struct opdesc *d, char targets[2][PATHMAX], int *ttl,
		  char *desc, size_t dsize)
{
	struct store *s = S->nodes[i].s;
	struct store_attr a;
	char v[128];
	size_t len;
	unsigned k = d->kind, mask = 0, flags = 0;
	const uint64_t *r = d->r;
	int err;

	memset(&a, 0, sizeof(a));
	a.mode = modes[r[1] % 6];
	snprintf(targets[0], PATHMAX, "%s", d->p1);
	targets[1][0] = '\0';
	if (k < 26) { /* put */
		flags = STORE_CREATE;
		if (r[0] % 10 == 0)
			flags = 0;
		if (r[0] % 7 == 1)
			flags |= STORE_EXCL;
		if ((r[0] >> 8) % 2)
			flags |= STORE_PARENTS;
		if ((r[0] >> 16) % 100 < 15) {
			mask |= STORE_ATTR_TTL;
			a.ttl_ms = 300 + r[2] % S->max_ttl_ms;
			*ttl = 1;
		}
		if ((r[0] >> 24) % 100 < 20)
			mask |= STORE_ATTR_MODE;
		make_value(S, i, r[3], v, sizeof(v), &len);
		snprintf(desc, dsize,
			 "put %s '%s' flags %#x mask %#x ttl %" PRIu64, d->p1,
			 v, flags, mask, a.ttl_ms);
		err = store_put(s, t, d->p1, v, len, &a, mask, flags);
	} else if (k < 38) { /* mknod */
		unsigned ty = r[0] % 10;
		enum store_type type = ty < 5	? STORE_DIR
				       : ty < 8 ? STORE_FILE
						: STORE_SYMLINK;
		char target[64];

		snprintf(target, sizeof(target), "t%" PRIu64, ++S->counter);
		if ((r[0] >> 8) % 10 < 4)
			flags |= STORE_PARENTS;
		mask = STORE_ATTR_MODE;
		if (type == STORE_FILE && (r[0] >> 16) % 10 == 0) {
			mask |= STORE_ATTR_TTL;
			a.ttl_ms = 300 + r[2] % S->max_ttl_ms;
			*ttl = 1;
		}
		snprintf(desc, dsize, "mknod %s %s%s%s flags %#x mode %o",
			 d->p1,
			 type == STORE_DIR    ? "dir"
			 : type == STORE_FILE ? "file"
					      : "symlink -> ",
			 type == STORE_SYMLINK ? target : "",
			 mask & STORE_ATTR_TTL ? " ttl" : "", flags, a.mode);
		err = store_mknod(s, t, d->p1, type,
				  type == STORE_SYMLINK ? target : NULL, &a,
				  mask, flags);
	} else if (k < 53) { /* del */
		static const unsigned f[] = {0, STORE_DEL_FILE, STORE_DEL_DIR,
					     STORE_DEL_RECURSIVE};

		flags = f[r[0] % 4];
		snprintf(desc, dsize, "del %s flags %#x", d->p1, flags);
		err = store_del(s, t, d->p1, flags);
	} else if (k < 63) { /* rename */
		flags = r[0] % 10 < 3 ? STORE_RENAME_NOREPLACE : 0;
		snprintf(targets[1], PATHMAX, "%s", d->p2);
		snprintf(desc, dsize, "rename %s -> %s flags %#x", d->p1, d->p2,
			 flags);
		err = store_rename(s, t, d->p1, d->p2, flags);
	} else if (k < 82) { /* setattr */
		unsigned sub = r[0] % 7;
		int64_t now = node_clock(S, i);

		switch (sub) {
		case 0:
			mask = STORE_ATTR_MODE;
			break;
		case 1:
			mask = STORE_ATTR_UID | STORE_ATTR_GID;
			a.uid = 1000 + r[2] % 3;
			a.gid = 1000 + (r[2] >> 8) % 3;
			break;
		case 2:
			mask = STORE_ATTR_MTIME;
			a.mtime_ns = now - (int64_t)(r[2] % 100000) * MS;
			if ((r[2] >> 20) % 2) {
				mask |= STORE_ATTR_ATIME;
				a.atime_ns =
				    now - (int64_t)(r[3] % 100000) * MS;
			}
			break;
		case 3:
			mask = STORE_ATTR_SIZE;
			a.size = r[2] % 30;
			break;
		case 4:
			mask = STORE_ATTR_TTL;
			a.ttl_ms =
			    r[2] % 4 == 0 ? 0 : 300 + r[2] % S->max_ttl_ms;
			*ttl = 1;
			break;
		case 5:
			mask = STORE_ATTR_TOUCH;
			*ttl = 1;
			break;
		default:
			mask = STORE_ATTR_MODE | STORE_ATTR_UID;
			a.uid = 1000 + r[2] % 3;
			break;
		}
		snprintf(desc, dsize,
			 "setattr %s mask %#x mode %o uid %u gid %u"
			 " size %" PRIu64 " ttl %" PRIu64,
			 d->p1, mask, a.mode, a.uid, a.gid, a.size, a.ttl_ms);
		if (avoid_touch && mask == STORE_ATTR_TOUCH) {
			struct store_stat st;

			if (store_stat(s, t, d->p1, &st) == 0 &&
			    st.type != STORE_FILE)
				return -ENOENT; /* as if refused */
		}
		err = store_setattr(s, t, d->p1, &a, mask);
	} else if (k < 92) { /* xattr */
		char name[32];
		int xf = r[1] % 3 == 0	 ? XATTR_CREATE
			 : r[1] % 3 == 1 ? XATTR_REPLACE
					 : 0;

		snprintf(name, sizeof(name), "user.k%u",
			 (unsigned)(r[0] % 3) % (avoid_xattr ? 2 : 3));
		if ((r[0] >> 8) % 4 == 0) {
			snprintf(desc, dsize, "xattr_remove %s %s", d->p1,
				 name);
			err = store_xattr_remove(s, t, d->p1, name);
		} else {
			snprintf(v, sizeof(v), "x%" PRIu64, ++S->counter);
			snprintf(desc, dsize, "xattr_set %s %s=%s flags %d",
				 d->p1, name, v, xf);
			err = store_xattr_set(s, t, d->p1, name, v, strlen(v),
					      xf);
		}
	} else { /* several ops in one transaction: handled by the caller */
		snprintf(desc, dsize, "?");
		err = -EINVAL;
	}
	return err;
}

/* Descendants of `dir` on node i (for the op's touched set). */
static void add_subtree(struct sim *S, int i, const char *dir, char ***set,
			size_t *n, size_t *cap)
{
	struct listing l = {0};

	if (list_tree(S->nodes[i].s, dir, &l) == 0)
		for (size_t k = 0; k < l.n; k++)
			PUSH(*set, *n, *cap, xstrdup(l.e[k].path));
	listing_free(&l);
}

static void add_ancestors(const char *p, char ***set, size_t *n, size_t *cap)
{
	char buf[PATHMAX];

	snprintf(buf, sizeof(buf), "%s", p);
	PUSH(*set, *n, *cap, xstrdup(buf));
	for (char *sl = strrchr(buf, '/'); sl && sl != buf;
	     sl = strrchr(buf, '/')) {
		*sl = '\0';
		PUSH(*set, *n, *cap, xstrdup(buf));
	}
}

/* Every path the sim knows under `dir`: what another node may hold
 * there, which an op on `dir` touches too. */
static void add_known(struct sim *S, const char *dir, char ***set, size_t *n,
		      size_t *cap)
{
	for (size_t k = 0; k < S->npaths; k++)
		if (is_under(S->paths[k].path, dir))
			PUSH(*set, *n, *cap, xstrdup(S->paths[k].path));
}

/* Every path whose state an op on `path` may decide: under its top
 * directory, what node i holds and what the simulation knows of (a
 * directory derived from its children shows or not with them). */
static void add_top(struct sim *S, int i, const char *path, char ***set,
		    size_t *n, size_t *cap)
{
	char top[PATHMAX];
	char *sl;

	snprintf(top, sizeof(top), "%s", path);
	sl = strchr(top + 1, '/');
	if (sl)
		*sl = '\0';
	add_ancestors(path, set, n, cap);
	add_subtree(S, i, top, set, n, cap);
	add_known(S, top, set, n, cap);
}

/* Record a successful op: what node i shows at every path it touched. */
static int op_record(struct sim *S, struct op *op, char **set, size_t nset)
{
	qsort(set, nset, sizeof(set[0]), cmp_str);
	for (size_t k = 0; k < nset; k++) {
		struct snap sn;

		if (k && strcmp(set[k], set[k - 1]) == 0)
			continue;
		if (snap_path(S, op->node, set[k], &sn, &op->ttl))
			return -1;
		PUSH(op->snap, op->nsnap, op->capsnap, sn);
	}
	PUSH(S->ops, S->nops, S->capops, *op);
	for (size_t k = 0; k < op->nsnap; k++)
		if (op->snap[k].val >= 0)
			path_add_val(S, op->snap[k].path, op->snap[k].val);
	return 0;
}

/* Append src to the string in dst (size bytes), truncating. */
static void append(char *dst, size_t size, const char *src)
{
	size_t l = strlen(dst), n = strlen(src);

	if (l + 1 >= size)
		return;
	if (n > size - l - 1)
		n = size - l - 1;
	memcpy(dst + l, src, n);
	dst[l + n] = '\0';
}

/* Put path p under top directory /top (p names one of /a, /b, /c or
 * something under them). */
static void retop(char *p, char top)
{
	if (top && p[0] == '/' && p[1] && (p[2] == '\0' || p[2] == '/'))
		p[1] = top;
}

/* One local step: an op, or 2-4 ops in one transaction, or a sweep. In
 * the final round (force_node >= 0) node force_node makes one op or
 * transaction under /top only. */
struct count_ctx {
	uint64_t self, n;
};

static int count_cb(void *arg, const struct store_change *c)
{
	struct count_ctx *cc = arg;

	cc->n += c->origin_node == cc->self;
	return 0;
}

/* Count node i's own changes made since the last count: called after
 * every local op, before any other commit can trim them (a small
 * binlog_max trims the binlog, which cannot be counted at the end). */
static void count_own(struct sim *S, int i)
{
	struct node *nd = &S->nodes[i];
	struct count_ctx cc = {nd->id, 0};
	ssize_t n = store_binlog_read(nd->s, nd->counted, 0, count_cb, &cc);
	struct store_info si;

	if (n == -ERANGE && store_info(nd->s, &si) == 0) {
		/* others' changes were trimmed past the count: skip them */
		nd->counted = si.binlog_first - 1;
		n = store_binlog_read(nd->s, nd->counted, 0, count_cb, &cc);
	}
	if (n >= 0) {
		S->nchanges += cc.n;
		nd->counted = store_last_seq(nd->s);
	}
}

static int local_step(struct sim *S, int force_node, char top)
{
	int i = (int)rnd(S->n);
	unsigned what = rnd(100);
	unsigned nsub = 2 + rnd(3);
	struct opdesc d[4];
	char targets[8][PATHMAX], desc[4][400];
	int ttl = 0, err = 0;
	struct listing have = {0};
	struct store_txn *t = NULL;
	uint64_t before_seq, wm[MAXN];
	char **set = NULL;
	size_t nset = 0, capset = 0;
	struct op op;

	unsigned failed_k = 0;
	int attempt = S->attempt++;

	for (unsigned k = 0; k < 4; k++)
		draw_op(&d[k]);
	if (keep && (attempt >= nkeep || !keep[attempt]))
		return 0;
	if (force_node >= 0) {
		i = force_node;
		what = what < 10 ? what + 3 : what;
	}
	if (what < 3) { /* sweep: local, not in the binlog */
		int n = avoid_purge ? 0 : store_sweep(S->nodes[i].s, 0);

		sim_log(S, "node %d: sweep = %d", i, n);
		if (n > 0)
			S->npurged += (uint64_t)n;
		if (n < 0)
			return fail(S, "node %d: store_sweep: %s", i,
				    store_strerror(n));
		return 0;
	}
	if (what >= 10)
		nsub = 1;
	/* Half the time name a path the node holds, so that more ops do
	 * something (the draws are made whatever the tree holds). */
	list_tree(S->nodes[i].s, "/", &have);
	for (unsigned k = 0; k < nsub; k++) {
		uint64_t r = d[k].r[5];

		if (d[k].kind >= 92)
			d[k].kind %= 92;
		if (have.n && r % 2) {
			const char *p = have.e[(r >> 8) % have.n].path;

			if (!is_under(p, "/m"))
				snprintf(d[k].p1, PATHMAX, "%s", p);
		}
		if (have.n && (r >> 4) % 4 == 0) {
			const char *p = have.e[(r >> 24) % have.n].path;

			if (!is_under(p, "/m"))
				snprintf(d[k].p2, PATHMAX, "%s", p);
		}
		retop(d[k].p1, top);
		retop(d[k].p2, top);
	}
	listing_free(&have);
	if (node_wm(S, i, wm))
		return -1;
	before_seq = local_seq(S, i);
	/* Every path the op could touch, as things stood before it. */
	for (unsigned k = 0; k < nsub; k++) {
		add_top(S, i, d[k].p1, &set, &nset, &capset);
		if (d[k].kind >= 53 && d[k].kind < 63) {
			add_top(S, i, d[k].p2, &set, &nset, &capset);
		}
	}
	if (nsub > 1) {
		err = store_txn_begin(S->nodes[i].s, 1, &t);
		if (err) {
			fail(S, "node %d: store_txn_begin: %s", i,
			     store_strerror(err));
			goto out;
		}
	}
	for (unsigned k = 0; k < nsub; k++) {
		err = run_op(S, i, t, &d[k], &targets[2 * k], &ttl, desc[k],
			     sizeof(desc[k]));
		sim_log(S, "node %d: %s%s = %d %s", i, nsub > 1 ? "txn: " : "",
			desc[k], err, err ? store_strerror(err) : "");
		failed_k = k;
		if (err)
			break;
	}
	if (t) {
		if (err)
			store_txn_abort(&t);
		else
			err = store_txn_commit(&t);
	}
	if (err) {
		S->nfailed_local++;
		if (!expected_errno(err)) {
			set_cls(S, "unexpected-errno", d[failed_k].p1);
			fail(S, "node %d: %s: unexpected %d (%s)", i,
			     desc[failed_k], err, store_strerror(err));
		} else
			err = 0;
		goto out;
	}
	S->nlocal++;
	count_own(S, i);
	memset(&op, 0, sizeof(op));
	op.node = i;
	op.seq = local_seq(S, i);
	memcpy(op.wm, wm, sizeof(wm));
	op.wm[i] = before_seq;
	sim_log(S, "node %d: seq %" PRIu64 " -> %" PRIu64, i, before_seq,
		op.seq);
	if (op.seq == before_seq) /* nothing changed (mkdir -p of a dir) */
		goto out;
	op.ttl = ttl;
	op.vt = S->vt;
	op.attempt = attempt;
	op.epoch = S->epoch;
	for (unsigned k = 0; k < nsub; k++) {
		append(op.desc, sizeof(op.desc),
		       k	  ? "; "
		       : nsub > 1 ? "txn: "
				  : "");
		append(op.desc, sizeof(op.desc), desc[k]);
	}
	for (unsigned k = 0; k < nsub; k++)
		if (d[k].kind >= 53 && d[k].kind < 63) {
			PUSH(S->renames, S->nrenames, S->caprenames,
			     xstrdup(d[k].p1));
			PUSH(S->renames, S->nrenames, S->caprenames,
			     xstrdup(d[k].p2));
		}
	/* ... and as they stand after it. */
	for (unsigned k = 0; k < 2 * nsub; k++) {
		if (!targets[k][0])
			continue;
		PUSH(op.targets, op.ntargets, op.captargets,
		     xstrdup(targets[k]));
		add_top(S, i, targets[k], &set, &nset, &capset);
	}
	if (op_record(S, &op, set, nset))
		err = -1;
out:
	for (size_t k = 0; k < nset; k++)
		free(set[k]);
	free(set);
	return err < 0 && S->failed ? -1 : 0;
}

/* ---- the field-merge scenario: chmod, write and xattr concurrently ---- */

static int record_simple(struct sim *S, int i, const char *path,
			 uint64_t before_seq, const uint64_t wm[MAXN],
			 const char *desc)
{
	struct op op;
	char **set = NULL;
	size_t nset = 0, cap = 0;

	int err;

	count_own(S, i);
	memset(&op, 0, sizeof(op));
	op.node = i;
	op.seq = local_seq(S, i);
	memcpy(op.wm, wm, sizeof(op.wm));
	op.wm[i] = before_seq;
	op.vt = S->vt;
	op.attempt = -1;
	op.epoch = S->epoch;
	snprintf(op.desc, sizeof(op.desc), "%s", desc);
	PUSH(op.targets, op.ntargets, op.captargets, xstrdup(path));
	add_top(S, i, path, &set, &nset, &cap);
	err = op_record(S, &op, set, nset);
	for (size_t k = 0; k < nset; k++)
		free(set[k]);
	free(set);
	return err || S->failed ? -1 : 0;
}

static int fm_step(struct sim *S)
{
	unsigned which = rnd(3), x = rnd(S->n), y = rnd(S->n - 1),
		 z = rnd(S->n - 2 ? S->n - 2 : 1);
	uint64_t r = rnd64();
	struct fmerge *f = &S->fm[which];
	struct store_attr a;
	uint64_t wm[MAXN], seq;
	struct store_stat st;
	char v[128];
	size_t len;
	int err;

	if (which >= (unsigned)S->nfm || f->state == 2)
		return 0;
	if (f->state == 0) {
		f->x = (int)x;
		f->y = ((int)x + 1 + (int)y) % S->n;
		f->z = S->n > 2 ? (f->y + 1 + (int)z) % S->n : -1;
		if (f->z == f->x)
			f->z = (f->z + 1) % S->n;
		snprintf(f->path, sizeof(f->path), "/m/f%u", which);
		make_value(S, f->x, r, v, sizeof(v), &len);
		memset(&a, 0, sizeof(a));
		a.mode = 0644;
		if (node_wm(S, f->x, wm))
			return -1;
		seq = local_seq(S, f->x);
		err = store_put(S->nodes[f->x].s, NULL, f->path, v, len, &a,
				STORE_ATTR_MODE, STORE_CREATE);
		sim_log(S, "node %d: fm create %s '%s' = %d", f->x, f->path, v,
			err);
		if (err)
			return fail(S, "node %d: put %s: %s", f->x, f->path,
				    store_strerror(err));
		f->state = 1;
		return record_simple(S, f->x, f->path, seq, wm,
				     "put (field-merge file)");
	}
	/* Wait until the nodes involved all hold the file. */
	if (store_stat(S->nodes[f->x].s, NULL, f->path, &st) ||
	    store_stat(S->nodes[f->y].s, NULL, f->path, &st) ||
	    (f->z >= 0 && store_stat(S->nodes[f->z].s, NULL, f->path, &st)))
		return 0;
	f->state = 2;
	f->at = S->vt;
	f->mode = 0600;
	memset(&a, 0, sizeof(a));
	a.mode = f->mode;
	if (node_wm(S, f->x, wm))
		return -1;
	seq = local_seq(S, f->x);
	err =
	    store_setattr(S->nodes[f->x].s, NULL, f->path, &a, STORE_ATTR_MODE);
	sim_log(S, "node %d: fm chmod %s %o = %d", f->x, f->path, f->mode, err);
	if (err)
		return fail(S, "node %d: chmod %s: %s", f->x, f->path,
			    store_strerror(err));
	if (record_simple(S, f->x, f->path, seq, wm, "chmod 600"))
		return -1;
	make_value(S, f->y, r >> 7, v, sizeof(v), &len);
	f->val = val_id(S, v, len);
	if (node_wm(S, f->y, wm))
		return -1;
	seq = local_seq(S, f->y);
	err = store_put(S->nodes[f->y].s, NULL, f->path, v, len, NULL, 0, 0);
	sim_log(S, "node %d: fm put %s '%s' = %d", f->y, f->path, v, err);
	if (err)
		return fail(S, "node %d: put %s: %s", f->y, f->path,
			    store_strerror(err));
	if (record_simple(S, f->y, f->path, seq, wm, "put (value)"))
		return -1;
	if (f->z < 0)
		return 0;
	snprintf(f->xval, sizeof(f->xval), "m%" PRIu64, ++S->counter);
	if (node_wm(S, f->z, wm))
		return -1;
	seq = local_seq(S, f->z);
	err = store_xattr_set(S->nodes[f->z].s, NULL, f->path, fm_xattr,
			      f->xval, strlen(f->xval), 0);
	sim_log(S, "node %d: fm xattr %s %s=%s = %d", f->z, f->path, fm_xattr,
		f->xval, err);
	if (err)
		return fail(S, "node %d: xattr_set %s: %s", f->z, f->path,
			    store_strerror(err));
	return record_simple(S, f->z, f->path, seq, wm, "xattr_set user.m");
}

/* ---- links ---- */

static void want_resync(struct sim *S, struct link *l, int why, int64_t after);
static int link_lacks(struct sim *S, struct link *l);

static void msg_free(struct msg *m)
{
	free(m->path);
	free(m->rec);
}

static void link_drop(struct link *l)
{
	for (size_t k = l->qhead; k < l->qlen; k++)
		msg_free(&l->q[k]);
	l->qhead = l->qlen = 0;
	l->sent = l->acked;
	l->last_due = 0;
}

struct read_ctx {
	struct sim *S;
	struct link *l;
	size_t want, got;
	int64_t due;
};

static int read_cb(void *arg, const struct store_change *c)
{
	struct read_ctx *r = arg;
	struct link *l = r->l;
	struct msg m;

	m.seq = c->seq;
	m.c = *c;
	m.path = memcpy(xrealloc(NULL, c->path_len), c->path, c->path_len);
	m.rec = memcpy(xrealloc(NULL, c->rec_len), c->rec, c->rec_len);
	m.c.path = m.path;
	m.c.rec = m.rec;
	m.due = r->due;
	if (l->qhead == l->qlen)
		l->qhead = l->qlen = 0;
	PUSH(l->q, l->qlen, l->qcap, m);
	l->sent = c->seq;
	r->got++;
	/* Stop at a commit group's end once we have enough. */
	return r->got >= r->want && !(c->flags & STORE_CHANGE_MORE);
}

/* Move up to `want` entries (whole commit groups) of the sender's binlog
 * into the link's FIFO. */
static int link_read(struct sim *S, struct link *l, size_t want, int64_t jitter)
{
	struct read_ctx r = {S, l, want, 0, 0};
	ssize_t n;
	int64_t due = S->vt + l->delay + jitter;

	r.due = due > l->last_due ? due : l->last_due;
	l->last_due = r.due;
	n = store_binlog_read(S->nodes[l->from].s, l->sent, 0, read_cb, &r);
	if (n == -ERANGE) {
		/* Trimmed past the link: if the receiver holds what went, go
		 * on from the oldest entry kept, else only a snapshot helps
		 * (what the replicator does). */
		struct store_info si;
		int lacks = link_lacks(S, l);

		if (lacks < 0)
			return -1;
		if (lacks) {
			want_resync(S, l, RESYNC_TRIMMED, 0);
			return 0;
		}
		if (store_info(S->nodes[l->from].s, &si))
			return fail(S, "node %d: store_info", l->from);
		sim_log(S, "link %d->%d: binlog trimmed past %" PRIu64
			", the receiver lacks nothing: on from %" PRIu64,
			l->from, l->to, l->sent, si.binlog_first);
		S->nskip++;
		l->sent = si.binlog_first - 1;
		if (l->qhead == l->qlen)
			l->acked = l->sent;
		return 0;
	}
	if (n < 0)
		set_cls(S, "binlog-read", NULL);
	if (n < 0)
		return fail(
		    S, "link %d->%d: store_binlog_read after %" PRIu64 ": %s",
		    l->from, l->to, l->sent, store_strerror((int)n));
	return 0;
}

struct ack_ctx {
	struct sim *S;
	struct link *l;
	int err;
};

static int ack_cb(void *arg, uint64_t origin, uint64_t seq)
{
	struct ack_ctx *a = arg;
	struct sim *S = a->S;
	int err = store_peer_ack(S->nodes[a->l->from].s, NULL,
				 S->nodes[a->l->to].id, origin, seq);

	if (err)
		a->err = err;
	return 0;
}

/* Tell the sender what the receiver now holds, as a replicator would. */
static int link_ack(struct sim *S, struct link *l)
{
	struct ack_ctx a = {S, l, 0};
	int err = store_watermarks(S->nodes[l->to].s, ack_cb, &a);

	if (err || a.err)
		return fail(S, "link %d->%d: ack: %s", l->from, l->to,
			    store_strerror(err ? err : a.err));
	return 0;
}

static const char *apply_name(int r)
{
	switch (r) {
	case STORE_APPLIED:
		return "applied";
	case STORE_DUPLICATE:
		return "duplicate";
	case STORE_SUPERSEDED:
		return "superseded";
	case STORE_CONFLICT_WON:
		return "conflict-won";
	case STORE_CONFLICT_LOST:
		return "conflict-lost";
	case STORE_HELD:
		return "held";
	case STORE_TOO_OLD:
		return "too-old";
	}
	return "?";
}

/* ---- resync by snapshot ---- */

/* Give up the link's snapshot, if any (a partition, a restart, an
 * install refused): what was installed stays (joins and purges the
 * sender had made: true whatever follows), the link's cursor did not
 * move, and it starts a new snapshot when it can. */
static void snap_abort(struct link *l)
{
	if (!l->snap)
		return;
	store_snap_close(&l->snap);
	free(l->swm);
	l->swm = NULL;
	l->nswm = 0;
	free(l->slast);
	l->slast = NULL;
}

static void want_resync(struct sim *S, struct link *l, int why, int64_t after)
{
	if (!l->want)
		sim_log(S, "link %d->%d: resync wanted (%s)", l->from, l->to,
			resync_name[why]);
	if (!l->want || S->vt + after > l->resync_at)
		l->resync_at = S->vt + after;
	if (!l->want)
		l->want = why;
}

struct lack_ctx {
	struct sim *S;
	uint64_t recv_id;
	uint64_t wm[MAXN], swm[MAXN];
	int lacks;
};

static int lack_cb(void *arg, uint64_t node, uint64_t seq)
{
	struct lack_ctx *c = arg;
	int i = node_of_id(c->S, node);

	if (node != c->recv_id && i >= 0 && c->wm[i] < seq &&
	    c->wm[i] < c->swm[i])
		c->lacks = 1;
	return 0;
}

/* Does the receiver lack changes that the sender's binlog does not
 * hold (store_horizon against the receiver's watermarks, which a
 * replicator knows from its acknowledgements)? Only where the sender's
 * own watermark is ahead of the receiver's: else a snapshot would not
 * help (the sender holds a snapshot's changes beyond its watermark;
 * they reach the receiver once the sender's stream brings them, and
 * the sender sends nothing of that origin before). 1, 0 or -1. */
static int link_lacks(struct sim *S, struct link *l)
{
	struct lack_ctx c = {S, S->nodes[l->to].id, {0}, {0}, 0};
	int err;

	if (node_wm(S, l->to, c.wm) || node_wm(S, l->from, c.swm))
		return -1;
	err = store_horizon(S->nodes[l->from].s, lack_cb, &c);
	if (err)
		return fail(S, "node %d: store_horizon: %s", l->from,
			    store_strerror(err));
	return c.lacks;
}

struct swm_ctx {
	struct link *l;
	unsigned cap;
};

static int swm_cb(void *arg, uint64_t node, uint64_t seq)
{
	struct swm_ctx *c = arg;
	struct link *l = c->l;

	if (l->nswm == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 8;
		l->swm = xrealloc(l->swm, c->cap * sizeof(*l->swm));
	}
	l->swm[l->nswm].node = node;
	l->swm[l->nswm++].seq = seq;
	return 0;
}

/* The sender opens a snapshot for the link: what was in flight is
 * dropped, the binlog waits until it is installed. */
static int snap_begin(struct sim *S, struct link *l)
{
	struct swm_ctx c = {l, 0};
	int err;

	link_drop(l);
	err = store_snap_open(S->nodes[l->from].s, &l->snap);
	if (!err)
		err = store_snap_watermarks(l->snap, swm_cb, &c);
	if (err) {
		snap_abort(l);
		return fail(S, "node %d: store_snap_open: %s", l->from,
			    store_strerror(err));
	}
	sim_log(S, "link %d->%d: snapshot at binlog %" PRIu64 " (%s)",
		l->from, l->to, store_snap_seq(l->snap), resync_name[l->want]);
	return 0;
}

/* One chunk as the sender reads it (copied: its pointers live only
 * during the callback). */
struct chunk {
	char **path;
	void **rec;
	size_t *rec_len;
	size_t n, cap;
};

static int chunk_cb(void *arg, const char *path, size_t path_len,
		    const void *rec, size_t rec_len)
{
	struct chunk *ch = arg;

	if (ch->n == ch->cap) {
		ch->cap = ch->cap ? 2 * ch->cap : 8;
		ch->path = xrealloc(ch->path, ch->cap * sizeof(*ch->path));
		ch->rec = xrealloc(ch->rec, ch->cap * sizeof(*ch->rec));
		ch->rec_len =
		    xrealloc(ch->rec_len, ch->cap * sizeof(*ch->rec_len));
	}
	ch->path[ch->n] = xrealloc(NULL, path_len + 1);
	memcpy(ch->path[ch->n], path, path_len);
	ch->path[ch->n][path_len] = '\0';
	ch->rec[ch->n] = memcpy(xrealloc(NULL, rec_len), rec, rec_len);
	ch->rec_len[ch->n++] = rec_len;
	return 0;
}

static void chunk_free(struct chunk *ch)
{
	for (size_t k = 0; k < ch->n; k++) {
		free(ch->path[k]);
		free(ch->rec[k]);
	}
	free(ch->path);
	free(ch->rec);
	free(ch->rec_len);
}

/* Install the next chunk of the link's snapshot (about max_bytes) in
 * one receiver transaction: merge each record, prune the chunk's key
 * range; at the end, prune past the last chunk and finish; then the
 * link follows the sender's binlog from the snapshot's sequence. */
static int snap_chunk(struct sim *S, struct link *l, size_t max_bytes,
		      int64_t retry)
{
	struct store *rs = S->nodes[l->to].s;
	struct chunk ch = {0};
	struct store_txn *t = NULL;
	ssize_t n;
	int err = 0;

	n = store_snap_next(l->snap, max_bytes, chunk_cb, &ch);
	if (n < 0) {
		chunk_free(&ch);
		set_cls(S, "snap-next", NULL);
		return fail(S, "node %d: store_snap_next: %s", l->from,
			    store_strerror((int)n));
	}
	err = store_txn_begin(rs, 1, &t);
	for (size_t k = 0; !err && k < ch.n; k++) {
		err = store_snap_merge(rs, t, ch.path[k], strlen(ch.path[k]),
				       ch.rec[k], ch.rec_len[k]);
		if (err)
			sim_log(S, "link %d->%d: snapshot merge %s: %s",
				l->from, l->to, ch.path[k],
				store_strerror(err));
	}
	if (!err)
		err = store_snap_prune(rs, t, l->swm, l->nswm, l->slast,
				       ch.n ? ch.path[ch.n - 1] : NULL,
				       (const char *const *)ch.path, ch.n);
	if (!err && !ch.n)
		err = store_snap_finish(rs, t, l->swm, l->nswm);
	if (!err)
		err = store_txn_commit(&t);
	else if (t)
		store_txn_abort(&t);
	if (err == -EAGAIN) {
		/* stamped ahead of the receiver's clock: not yet */
		S->nabort++;
		chunk_free(&ch);
		snap_abort(l);
		want_resync(S, l, l->want, retry);
		return 0;
	}
	if (err) {
		chunk_free(&ch);
		set_cls(S, "snap-install", NULL);
		return fail(S, "link %d->%d: installing a snapshot: %s",
			    l->from, l->to, store_strerror(err));
	}
	S->nchunks++;
	sim_log(S, "link %d->%d: snapshot chunk of %zu records after %s",
		l->from, l->to, ch.n, l->slast ? l->slast : "the start");
	if (ch.n) {
		free(l->slast);
		l->slast = ch.path[ch.n - 1];
		ch.path[ch.n - 1] = NULL;
		chunk_free(&ch);
		return 0;
	}
	chunk_free(&ch);
	S->nresync[l->want]++;
	l->sent = l->acked = store_snap_seq(l->snap);
	sim_log(S, "link %d->%d: snapshot installed, binlog from %" PRIu64,
		l->from, l->to, l->sent);
	l->want = 0;
	snap_abort(l);
	return link_ack(S, l);
}

/* Deliver up to `want` due entries (whole commit groups) in one receiver
 * transaction. A held change stops the batch: the groups before it
 * commit, it and what follows wait for the receiver's clock. */
static int link_deliver(struct sim *S, struct link *l, size_t want)
{
	struct store *rs = S->nodes[l->to].s;
	size_t avail = l->qlen - l->qhead, n = 0, start = 0;
	struct store_txn *t;
	int err, held = 0;

	/* Whole groups only, and only what is due. */
	for (size_t k = 0; k < avail; k++) {
		struct msg *m = &l->q[l->qhead + k];

		if (m->due > S->vt)
			break;
		if (!(m->c.flags & STORE_CHANGE_MORE)) {
			n = k + 1;
			if (n >= want)
				break;
		}
	}
	while (n) {
		size_t done = 0;

		err = store_txn_begin(rs, 1, &t);
		if (err)
			return fail(S, "node %d: store_txn_begin: %s", l->to,
				    store_strerror(err));
		for (size_t k = 0; k < n; k++) {
			struct msg *m = &l->q[l->qhead + k];
			int r = store_apply_remote(rs, t, &m->c);

			if (k == 0 || !(l->q[l->qhead + k - 1].c.flags &
					STORE_CHANGE_MORE))
				start = k; /* first change of its group */
			sim_log(
			    S, "link %d->%d: %.*s origin %d/%" PRIu64 ": %s",
			    l->from, l->to, (int)m->c.path_len, m->c.path,
			    node_of_id(S, m->c.origin_node), m->c.origin_seq,
			    r >= 0 ? apply_name(r) : store_strerror(r));
			if (r < 0) {
				struct store_stat ist;
				const void *vv;

				if (store_rec_decode(m->c.rec, m->c.rec_len,
						     &ist, NULL, &vv,
						     NULL) == 0) {
					sim_log(
					    S,
					    "  record: type %d version "
					    "%d/%" PRIu64 " fields %" PRIu64
					    " %" PRIu64 " %" PRIu64 " %" PRIu64
					    " nvv %u",
					    ist.type,
					    node_of_id(S, ist.version.node),
					    ist.version.hlc, ist.fver[0].hlc,
					    ist.fver[1].hlc, ist.fver[2].hlc,
					    ist.fver[3].hlc, ist.nvv);
					for (unsigned v = 0; v < ist.nvv; v++) {
						struct store_vv_entry e =
						    store_vv_at(vv, v);

						sim_log(S, "  vv %d/%" PRIu64,
							node_of_id(S, e.node),
							e.seq);
					}
				}
				store_txn_abort(&t);
				{
					const char *en = strerrorname_np(-r);
					char c[64];

					if (en)
						snprintf(c, sizeof(c),
							 "apply-%s", en);
					else
						snprintf(c, sizeof(c),
							 "apply-errno-%d", -r);
					set_cls(S, c, NULL);
				}
				return fail(S, "link %d->%d: apply %.*s: %s",
					    l->from, l->to, (int)m->c.path_len,
					    m->c.path, store_strerror(r));
			}
			switch (r) {
			case STORE_APPLIED:
				S->napplied++;
				break;
			case STORE_DUPLICATE:
				S->ndup++;
				break;
			case STORE_SUPERSEDED:
				S->nsuper++;
				break;
			case STORE_CONFLICT_WON:
				S->nwon++;
				break;
			case STORE_CONFLICT_LOST:
				S->nlost++;
				break;
			case STORE_HELD:
				S->nheld++;
				held = 1;
				break;
			case STORE_TOO_OLD:
				/* Older than the receiver's purge horizon:
				 * only a snapshot brings it up to date. */
				store_txn_abort(&t);
				want_resync(S, l, RESYNC_TOO_OLD, 0);
				return 0;
			default:
				store_txn_abort(&t);
				return fail(S, "link %d->%d: apply: result %d",
					    l->from, l->to, r);
			}
			if (held)
				break;
		}
		if (held) {
			/* Keep the groups before the held change's group:
			 * redo them alone (their effects are in this
			 * aborted transaction). */
			store_txn_abort(&t);
			n = start;
			held = 0;
			if (!n)
				return 0;
			continue;
		}
		err = store_txn_commit(&t);
		if (err)
			return fail(S, "node %d: commit: %s", l->to,
				    store_strerror(err));
		done = n;
		S->nbatches++;
		S->ndeliver += done;
		l->acked = l->q[l->qhead + done - 1].seq;
		for (size_t k = 0; k < done; k++)
			msg_free(&l->q[l->qhead + k]);
		l->qhead += done;
		return link_ack(S, l);
	}
	return 0;
}

/* Nothing to send, nothing in flight, and nothing the receiver lacks
 * past the sender's horizon (a snapshot's changes, in no binlog). */
static int link_idle(struct sim *S, struct link *l)
{
	return !l->want && l->qhead == l->qlen &&
	       l->sent >= store_last_seq(S->nodes[l->from].s) &&
	       link_lacks(S, l) == 0;
}

/* One link's turn: maybe a snapshot's next chunk, else maybe read,
 * maybe deliver. Fixed draws. */
static int link_step(struct sim *S, struct link *l, int force)
{
	unsigned pr = rnd(100), pd = rnd(100), rb = 1 + rnd(16),
		 db = 1 + rnd(8), pr_snap = rnd(1000);
	int64_t jitter = (int64_t)rnd(30) * MS;
	size_t chunk_bytes = 400 + rnd(2400);
	int64_t retry = (int64_t)(50 + rnd(250)) * MS;

	if (S->edges[l->edge].down)
		return 0;
	if (l->want && !l->snap && S->vt >= l->resync_at &&
	    snap_begin(S, l))
		return -1;
	if (l->snap)
		return force || pd < 50 ? snap_chunk(S, l, chunk_bytes, retry)
					: 0;
	if (l->want)
		return 0;
	if (!force && pr_snap < 1) {
		want_resync(S, l, RESYNC_RANDOM, 0);
		return 0;
	}
	if (force || pr < 40) {
		/* Before sending past the sender's horizon: changes the
		 * sender holds from a snapshot are in none of its binlog,
		 * and a receiver that lacks them must resync. */
		int lacks = link_lacks(S, l);
		struct store_info si;

		if (lacks < 0)
			return -1;
		if (lacks) {
			/* trimmed past the link, or a snapshot's */
			int trimmed = store_info(S->nodes[l->from].s, &si) == 0 &&
				      si.binlog_first > l->sent + 1;

			want_resync(S, l,
				    trimmed ? RESYNC_TRIMMED : RESYNC_HORIZON, 0);
			return 0;
		}
	}
	if ((force || pr < 40) && link_read(S, l, rb, jitter))
		return -1;
	if ((force || pd < 50) && link_deliver(S, l, force ? 64 : db))
		return -1;
	return 0;
}

/* ---- topology ---- */

static void add_edge(struct sim *S, int a, int b)
{
	struct edge *e = &S->edges[S->nedges];

	e->a = a;
	e->b = b;
	for (int k = 0; k < 2; k++) {
		struct link *l = &S->links[S->nlinks++];

		memset(l, 0, sizeof(*l));
		l->from = k ? b : a;
		l->to = k ? a : b;
		l->edge = S->nedges;
		l->delay = (int64_t)(1 + rnd(200)) * MS;
	}
	S->nedges++;
}

static void make_topology(struct sim *S)
{
	int perm[MAXN];
	unsigned t = rnd(4);

	for (int i = 0; i < S->n; i++)
		perm[i] = i;
	for (int i = S->n - 1; i > 0; i--) {
		int j = (int)rnd((uint32_t)i + 1), x = perm[i];

		perm[i] = perm[j];
		perm[j] = x;
	}
	if (S->n == 2)
		t = 0;
	switch (t) {
	case 0:
		S->topo = "line";
		for (int i = 0; i + 1 < S->n; i++)
			add_edge(S, perm[i], perm[i + 1]);
		break;
	case 1:
		S->topo = "ring";
		for (int i = 0; i < S->n; i++)
			add_edge(S, perm[i], perm[(i + 1) % S->n]);
		break;
	case 2:
		S->topo = "star";
		for (int i = 1; i < S->n; i++)
			add_edge(S, perm[0], perm[i]);
		break;
	default:
		S->topo = "mesh";
		for (int i = 0; i < S->n; i++)
			for (int j = i + 1; j < S->n; j++)
				add_edge(S, perm[i], perm[j]);
		break;
	}
}

static void partition_step(struct sim *S)
{
	for (int k = 0; k < S->nedges; k++) {
		struct edge *e = &S->edges[k];
		unsigned p = rnd(1000);
		int64_t dur = (int64_t)(100 + rnd(1400)) * MS;

		if (e->down && S->vt >= e->until) {
			e->down = 0;
			sim_log(S, "heal %d-%d", e->a, e->b);
		} else if (!e->down && p < 4) {
			e->down = 1;
			e->until = S->vt + dur;
			sim_log(S, "partition %d-%d for %" PRId64 " ms", e->a,
				e->b, dur / MS);
			/* In-flight messages are lost; the sender resends
			 * from what the receiver acknowledged. */
			for (int j = 0; j < S->nlinks; j++)
				if (S->links[j].edge == k) {
					link_drop(&S->links[j]);
					snap_abort(&S->links[j]);
				}
		}
	}
}

/* Heal, then deliver everything until no link has anything left. */
static int quiesce(struct sim *S)
{
	for (int k = 0; k < S->nedges; k++)
		S->edges[k].down = 0;
	for (int round = 0; round < 3000; round++) {
		int idle = 1;

		for (int j = 0; j < S->nlinks; j++)
			if (!link_idle(S, &S->links[j]))
				idle = 0;
		if (idle) {
			S->epoch++;
			return 0;
		}
		S->vt += 20 * MS;
		for (int j = 0; j < S->nlinks; j++)
			if (link_step(S, &S->links[j], 1))
				return -1;
	}
	set_cls(S, "not-quiescent", NULL);
	for (int j = 0; j < S->nlinks; j++) {
		struct link *l = &S->links[j];

		if (!link_idle(S, l))
			return fail(S,
				    "not quiescent: link %d->%d sent %" PRIu64
				    " acked %" PRIu64 " last %" PRIu64
				    " queued %zu",
				    l->from, l->to, l->sent, l->acked,
				    store_last_seq(S->nodes[l->from].s),
				    l->qlen - l->qhead);
	}
	return fail(S, "not quiescent");
}

/* ---- checks ---- */

static void show_val(char *out, size_t size, const void *v, size_t len)
{
	size_t k = 0;

	for (size_t i = 0; i < len && k + 5 < size; i++) {
		unsigned char c = ((const unsigned char *)v)[i];

		if (c >= 32 && c < 127)
			out[k++] = (char)c;
		else
			k += (size_t)snprintf(out + k, size - k, "\\%o", c);
	}
	out[k] = '\0';
}

static void describe(const struct ent *e, char *out, size_t size)
{
	char v[96];

	if (!e) {
		snprintf(out, size, "absent");
		return;
	}
	show_val(v, sizeof(v), e->val, e->len < 60 ? e->len : 60);
	snprintf(
	    out, size,
	    "%s mode %o uid %u gid %u size %" PRIu64 " mtime %+" PRId64
	    "ms atime %+" PRId64 "ms expires %+" PRId64 "ms '%s' xattrs {%s}",
	    e->st.type == STORE_DIR    ? "dir"
	    : e->st.type == STORE_FILE ? "file"
				       : "symlink",
	    e->st.mode, e->st.uid, e->st.gid, e->st.size,
	    (e->st.mtime_ns - EPOCH_NS) / MS, (e->st.atime_ns - EPOCH_NS) / MS,
	    e->st.expires_ns ? (e->st.expires_ns - EPOCH_NS) / MS : 0, v,
	    e->xattrs ? e->xattrs : "");
	for (char *p = out; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

static int ent_equal(const struct ent *a, const struct ent *b)
{
	return a->st.type == b->st.type && a->st.mode == b->st.mode &&
	       a->st.uid == b->st.uid && a->st.gid == b->st.gid &&
	       a->st.size == b->st.size &&
	       a->st.expires_ns == b->st.expires_ns && a->len == b->len &&
	       /* times are a field like the others (ctime is local) */
	       a->st.mtime_ns == b->st.mtime_ns &&
	       a->st.atime_ns == b->st.atime_ns &&
	       (!a->len || memcmp(a->val, b->val, a->len) == 0) &&
	       strcmp(a->xattrs, b->xattrs) == 0;
}

/* Does `path` or anything under it in listing l expire between lo and
 * hi (the slowest and the fastest clock)? Then whether it shows, and as
 * what (a file with a live child shows as a directory), may differ
 * between nodes for now. */
static int expiring(const struct listing *l, const char *path, int64_t lo,
		    int64_t hi)
{
	for (size_t k = 0; k < l->n; k++)
		if (is_under(l->e[k].path, path) &&
		    l->e[k].st.expires_ns > lo - MS &&
		    l->e[k].st.expires_ns <= hi + MS)
			return 1;
	return 0;
}

/* (e) Compare node 0's listing with every other's. With `window`, a
 * difference at a path that is expiring on either side is fine. */
static int compare_listings(struct sim *S, struct listing *l, int window)
{
	int64_t lo = INT64_MAX, hi = INT64_MIN;

	for (int i = 0; i < S->n; i++) {
		int64_t c = node_clock(S, i);

		lo = c < lo ? c : lo;
		hi = c > hi ? c : hi;
	}
	for (int i = 1; i < S->n; i++) {
		size_t a = 0, b = 0;

		while (a < l[0].n || b < l[i].n) {
			const struct ent *ea = a < l[0].n ? &l[0].e[a] : NULL;
			const struct ent *eb = b < l[i].n ? &l[i].e[b] : NULL;
			int c = !ea ? 1 : !eb ? -1 : strcmp(ea->path, eb->path);
			char da[400], db[400];

			const char *p = c <= 0 ? ea->path : eb->path;

			if (window && (c || !ent_equal(ea, eb)) &&
			    (expiring(&l[0], p, lo, hi) ||
			     expiring(&l[i], p, lo, hi))) {
				a += c <= 0;
				b += c >= 0;
				continue;
			}
			if (c == 0 && ent_equal(ea, eb)) {
				a++;
				b++;
				continue;
			}
			describe(c <= 0 ? ea : NULL, da, sizeof(da));
			describe(c >= 0 ? eb : NULL, db, sizeof(db));
			set_cls(S, "listing", c <= 0 ? ea->path : eb->path);
			return fail(S,
				    "listings differ at %s: node 0 %s; node "
				    "%d %s",
				    c <= 0 ? ea->path : eb->path, da, i, db);
		}
	}
	return 0;
}

/* Had L's node seen o when it made L? Yes if it had applied o's
 * changes (its watermark for o's node covers o), or if the mesh was
 * quiescent in between: then every node held the merged outcome of o,
 * and a change that did not change it anywhere (it lost to a newer
 * version) is not forwarded, so watermarks alone can miss it. */
static int dominates(const struct op *L, int Lid, const struct op *o, int oid)
{
	if (o->node == L->node)
		return oid <= Lid;
	return L->epoch > o->epoch || L->wm[o->node] >= o->seq;
}

static int op_touches(const struct op *o, const char *path)
{
	for (size_t k = 0; k < o->ntargets; k++)
		if (related(o->targets[k], path))
			return 1;
	return 0;
}

static const struct ent *find_ent(const struct listing *l, const char *p)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(l->e[mid].path, p);

		if (c == 0)
			return &l->e[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Values that renames may have carried: close the possible values of
 * each path over every successful rename, in any order. Only between
 * paths the simulation knows (every op recorded what it saw under the
 * paths it named, and the final listings are known): cycles of renames
 * would otherwise make paths without end. */
static void close_renames(struct sim *S)
{
	int changed = 1;

	for (int round = 0; changed && round < 8; round++) {
		changed = 0;
		for (size_t r = 0; r + 1 < S->nrenames; r += 2) {
			const char *from = S->renames[r],
				   *to = S->renames[r + 1];
			size_t np = S->npaths;

			for (size_t p = 0; p < np; p++) {
				char q[PATHMAX];
				const char *path = S->paths[p].path;
				int qid;

				if (!is_under(path, from) || !S->paths[p].nvals)
					continue;
				if ((size_t)snprintf(q, sizeof(q), "%s%s", to,
						     path + strlen(from)) >=
				    sizeof(q))
					continue;
				qid = path_find(S, q);
				if (qid < 0)
					continue;
				for (size_t v = 0; v < S->paths[p].nvals; v++)
					changed |= path_add_val(
					    S, qid, S->paths[p].vals[v]);
			}
		}
	}
}

static int check_state(struct sim *S, struct listing *l)
{
	/* (c) every value was written by somebody, at this path or at one a
	 * rename could have carried it from. */
	for (int i = 0; i < S->n; i++)
		for (size_t k = 0; k < l[i].n; k++)
			path_id(S, l[i].e[k].path);
	close_renames(S);
	for (int i = 0; i < S->n; i++)
		for (size_t k = 0; k < l[i].n; k++) {
			const struct ent *e = &l[i].e[k];
			int v, p, ok = 0;
			char sv[96];

			if (e->st.type == STORE_DIR)
				continue;
			v = val_find(S, e->val, e->len);
			p = path_find(S, e->path);
			show_val(sv, sizeof(sv), e->val,
				 e->len < 60 ? e->len : 60);
			if (v < 0) {
				set_cls(S, "value-nobody-wrote", e->path);
				return fail(S,
					    "node %d: %s holds '%s' that "
					    "nobody wrote",
					    i, e->path, sv);
			}
			for (size_t j = 0; p >= 0 && j < S->paths[p].nvals; j++)
				ok |= S->paths[p].vals[j] == v;
			if (!ok) {
				set_cls(S, "value-not-written-here", e->path);
				return fail(S,
					    "node %d: %s holds '%s', never "
					    "written there",
					    i, e->path, sv);
			}
		}
	/* (b)(c) a path whose last op dominates every other op touching it
	 * shows what that op's node saw right after it. */
	for (size_t p = 0; p < S->npaths; p++) {
		struct pathinfo *pi = &S->paths[p];
		int Lid = -1, ok = 1;
		const struct op *L;
		const struct snap *sn = NULL;

		for (size_t k = 0; k < S->nops; k++)
			if (op_touches(&S->ops[k], pi->path))
				Lid = (int)k;
		if (Lid < 0)
			continue;
		L = &S->ops[Lid];
		for (int k = 0; ok && k <= Lid; k++) {
			const struct op *o = &S->ops[k];

			if (op_touches(o, pi->path) && !dominates(L, Lid, o, k))
				ok = 0;
		}
		/* Nothing that could still expire may decide it: L's node
		 * held no deadline at, above or below the path. */
		for (size_t k = 0; ok && k < L->nsnap; k++)
			if (L->snap[k].expires &&
			    related(S->paths[L->snap[k].path].path, pi->path))
				ok = 0;
		S->noracle += ok;
		sim_log(S,
			"oracle %s: last op #%d (node %d seq %" PRIu64 ") %s",
			pi->path, Lid, L->node, L->seq,
			ok ? "dominates" : "does not dominate");
		if (!ok)
			continue;
		for (size_t k = 0; k < L->nsnap; k++)
			if (L->snap[k].path == (int)p)
				sn = &L->snap[k];
		if (!sn)
			continue;
		for (int i = 0; i < S->n; i++) {
			const struct ent *e = find_ent(&l[i], pi->path);
			char want[200], got[400];
			int v = -1;

			if (e && e->st.type != STORE_DIR)
				v = val_find(S, e->val, e->len);
			if (!sn->exists && !e)
				continue;
			if (sn->exists && e && e->st.type == sn->type &&
			    (e->st.mode & 07777) == sn->mode &&
			    e->st.uid == sn->uid && e->st.gid == sn->gid &&
			    v == sn->val &&
			    hash(e->xattrs, strlen(e->xattrs)) == sn->xh)
				continue;
			if (sn->exists)
				snprintf(want, sizeof(want),
					 "%s mode %o uid %u gid %u '%s'",
					 sn->type == STORE_DIR	  ? "dir"
					 : sn->type == STORE_FILE ? "file"
								  : "symlink",
					 sn->mode, sn->uid, sn->gid,
					 sn->val >= 0 ? S->vals[sn->val].bytes
						      : "");
			else
				snprintf(want, sizeof(want), "absent");
			describe(e, got, sizeof(got));
			set_cls(S, "last-op", pi->path);
			return fail(S,
				    "%s: its last op (node %d, seq %" PRIu64
				    ") followed every other, so want %s; node "
				    "%d has %s",
				    pi->path, L->node, L->seq, want, i, got);
		}
	}
	/* (c) chmod, write and xattr made concurrently all survive. */
	for (int k = 0; k < S->nfm; k++) {
		struct fmerge *f = &S->fm[k];

		if (f->state != 2)
			continue;
		for (int i = 0; i < S->n; i++) {
			const struct ent *e = find_ent(&l[i], f->path);
			char got[400], xw[64];

			snprintf(xw, sizeof(xw), "%s=%s\n", fm_xattr, f->xval);
			if (e && (e->st.mode & 07777) == f->mode &&
			    val_find(S, e->val, e->len) == f->val &&
			    (f->z < 0 || strstr(e->xattrs, xw)))
				continue;
			describe(e, got, sizeof(got));
			set_cls(S, "field-merge", f->path);
			return fail(
			    S,
			    "%s: concurrent chmod %o (node %d), "
			    "write '%s' (node %d)%s%s%s%s%s: want all, "
			    "node %d has %s",
			    f->path, f->mode, f->x, S->vals[f->val].bytes, f->y,
			    f->z >= 0 ? ", xattr " : "",
			    f->z >= 0 ? fm_xattr : "", f->z >= 0 ? "=" : "",
			    f->z >= 0 ? f->xval : "",
			    f->z >= 0 ? " (node z)" : "", i, got);
		}
	}
	return 0;
}

/* A visible record must hang from visible directories: stat says so
 * for every path the simulation ever named. */
static int check_orphans(struct sim *S)
{
	for (int i = 0; i < S->n; i++)
		for (size_t p = 0; p < S->npaths; p++) {
			char parent[PATHMAX], *sl;
			struct store_stat st, pst;
			int err;

			if (store_stat(S->nodes[i].s, NULL, S->paths[p].path,
				       &st))
				continue;
			snprintf(parent, sizeof(parent), "%s",
				 S->paths[p].path);
			sl = strrchr(parent, '/');
			if (sl == parent)
				continue;
			*sl = '\0';
			err = store_stat(S->nodes[i].s, NULL, parent, &pst);
			if (err || pst.type != STORE_DIR) {
				set_cls(S, "orphan", S->paths[p].path);
				return fail(S,
					    "node %d: %s is visible but its "
					    "parent is %s",
					    i, S->paths[p].path,
					    err ? "absent"
					    : pst.type == STORE_FILE
						? "a file"
						: "a symlink");
			}
		}
	return 0;
}

static int check_all(struct sim *S, int window)
{
	struct listing l[MAXN];
	unsigned char dg[MAXN][STORE_DIGEST_LEN];
	int err = 0;

	memset(l, 0, sizeof(l));
	for (int i = 0; i < S->n && !err; i++)
		err = snapshot_tree(S, i, &l[i]);
	if (!err)
		err = check_orphans(S);
	if (!err)
		err = compare_listings(S, l, window);
	if (!err && !window) {
		/* (a) digests */
		for (int i = 0; i < S->n && !err; i++) {
			int r = store_digest(S->nodes[i].s, dg[i]);

			if (r) {
				err = fail(S, "node %d: store_digest: %s", i,
					   store_strerror(r));
			} else if (i &&
				   memcmp(dg[0], dg[i], STORE_DIGEST_LEN)) {
				set_cls(S, "digest", NULL);
				err = fail(S,
					   "digests differ: node 0 and "
					   "node %d (listings equal: records "
					   "unreachable from / differ)",
					   i);
			}
		}
		if (!err)
			err = check_state(S, l);
		/* (d) the store's own consistency check */
		for (int i = 0; i < S->n && !err; i++) {
			char msg[256] = "";
			int r = store_check(S->nodes[i].s, msg, sizeof(msg));

			if (r) {
				set_cls(S, "store_check", NULL);
				err = fail(S, "node %d: store_check: %s: %s", i,
					   store_strerror(r), msg);
			}
		}
	}
	for (int i = 0; i < S->n; i++)
		listing_free(&l[i]);
	return err;
}

/* After quiescence every node has seen everything: a few ops now, each
 * top directory's by one node, follow every op before them under that
 * directory, so the oracle (b) checks every path they touch: a write
 * made after everything was seen must win everywhere, whatever merged
 * state it was made on. */
static int final_round(struct sim *S)
{
	static const char tops[] = "abc";

	for (int t = 0; t < 3; t++) {
		int node = (int)rnd(S->n), nops = 1 + (int)rnd(4);

		for (int k = 0; k < nops; k++)
			if (local_step(S, node, tops[t]))
				return -1;
	}
	return quiesce(S);
}

/* After the run: one node deletes a few paths; nobody may show them. */
static int final_deletes(struct sim *S)
{
	int i = (int)rnd(S->n);
	struct listing l = {0};
	char *gone[4];
	int ngone = 0, err = 0;
	uint64_t pick[4];

	for (int k = 0; k < 4; k++)
		pick[k] = rnd64();
	if (snapshot_tree(S, i, &l))
		return -1;
	for (int k = 0; k < 4 && l.n; k++) {
		const char *p = l.e[pick[k] % l.n].path;
		uint64_t wm[MAXN], seq;

		struct store_stat st;

		if (is_under(p, "/m") ||
		    store_stat(S->nodes[i].s, NULL, p, &st))
			continue;
		if (node_wm(S, i, wm)) {
			err = -1;
			break;
		}
		seq = local_seq(S, i);
		err = store_del(S->nodes[i].s, NULL, p, STORE_DEL_RECURSIVE);
		sim_log(S, "node %d: final del -r %s = %d", i, p, err);
		if (err) {
			err = fail(S, "node %d: final del -r %s: %s", i, p,
				   store_strerror(err));
			break;
		}
		gone[ngone++] = xstrdup(p);
		record_simple(S, i, p, seq, wm, "final del -r");
	}
	listing_free(&l);
	if (!err)
		err = quiesce(S);
	for (int k = 0; !err && k < ngone; k++)
		for (int j = 0; j < S->n; j++) {
			struct store_stat st;

			if (store_stat(S->nodes[j].s, NULL, gone[k], &st) ==
			    0) {
				set_cls(S, "deleted-back", gone[k]);
				err = fail(S,
					   "%s deleted by node %d after "
					   "quiescence is back on node %d",
					   gone[k], i, j);
				break;
			}
		}
	for (int k = 0; k < ngone; k++)
		free(gone[k]);
	return err;
}

/* Sweep about half of the nodes (at least one). */
static int sweep_some(struct sim *S)
{
	unsigned mask = 1 + rnd((1u << S->n) - 1);

	if (avoid_purge)
		mask = (1u << S->n) - 1;
	for (int i = 0; i < S->n; i++) {
		int n;

		if (!(mask & (1u << i)))
			continue;
		n = store_sweep(S->nodes[i].s, 0);
		sim_log(S, "node %d: sweep = %d", i, n);
		if (n < 0)
			return fail(S, "node %d: store_sweep: %s", i,
				    store_strerror(n));
		S->npurged += (uint64_t)n;
	}
	return 0;
}

static int sweep_all(struct sim *S)
{
	for (int i = 0; i < S->n; i++) {
		int n = store_sweep(S->nodes[i].s, 0);

		if (n < 0)
			return fail(S, "node %d: store_sweep: %s", i,
				    store_strerror(n));
		S->npurged += (uint64_t)n;
	}
	return 0;
}

/* The ops that touched `path` (all ops if NULL), with what each had not
 * seen of the earlier ones: the story of a divergence. */
static void print_history(struct sim *S, const char *path)
{
	printf("  ops %s%s (#id time node/seq: op [concurrent with]):\n",
	       path ? "touching " : "", path ? path : "");
	for (size_t k = 0; k < S->nops; k++) {
		const struct op *o = &S->ops[k];
		int first = 1;

		if (path && !op_touches(o, path))
			continue;
		printf("  #%zu %8.3f n%d/%" PRIu64 ": %s", k,
		       (double)o->vt / 1e9, o->node, o->seq, o->desc);
		for (size_t j = 0; j < k; j++) {
			const struct op *e = &S->ops[j];

			if (path && !op_touches(e, path))
				continue;
			if (dominates(o, (int)k, e, (int)j))
				continue;
			printf("%s#%zu", first ? " [" : " ", j);
			first = 0;
		}
		printf("%s%s\n", first ? "" : "]", o->ttl ? " (ttl)" : "");
	}
}

/* ---- one seed ---- */

struct dump_ctx {
	struct sim *S;
	int i;
	const char *path;
};

static int dump_cb(void *arg, const char *path, size_t path_len,
		   const void *rec, size_t rec_len)
{
	struct dump_ctx *d = arg;
	struct store_stat st;
	const void *vv;

	if (path_len != strlen(d->path) || memcmp(path, d->path, path_len) ||
	    store_rec_decode(rec, rec_len, &st, NULL, &vv, NULL))
		return 0;
	printf("  node %d record: type %d content %d/%" PRIu64 " vv", d->i,
	       st.type, node_of_id(d->S, st.fver[STORE_F_CONTENT].node),
	       st.fver[STORE_F_CONTENT].hlc);
	for (unsigned v = 0; v < st.nvv; v++) {
		struct store_vv_entry e = store_vv_at(vv, v);

		printf(" %d/%" PRIu64, node_of_id(d->S, e.node), e.seq);
	}
	printf("\n");
	return 0;
}

/* The stored records at `path` (through a snapshot, which shows
 * tombstones; placeholders and absent keys print nothing). */
static void dump_records(struct sim *S, const char *path)
{
	for (int i = 0; i < S->n; i++) {
		struct dump_ctx d = {S, i, path};
		struct store_snap *sn;

		if (!S->nodes[i].s || store_snap_open(S->nodes[i].s, &sn))
			continue;
		while (store_snap_next(sn, 1 << 20, dump_cb, &d) > 0)
			;
		store_snap_close(&sn);
	}
}

static void sim_free(struct sim *S)
{
	for (int j = 0; j < S->nlinks; j++)
		snap_abort(&S->links[j]); /* before its store closes */
	for (int i = 0; i < S->n; i++)
		if (S->nodes[i].s)
			store_close(&S->nodes[i].s);
	rm_dirs();
	for (int j = 0; j < S->nlinks; j++) {
		link_drop(&S->links[j]);
		free(S->links[j].q);
	}
	for (size_t k = 0; k < S->nvals; k++)
		free(S->vals[k].bytes);
	free(S->vals);
	for (size_t k = 0; k < S->npaths; k++) {
		free(S->paths[k].path);
		free(S->paths[k].vals);
	}
	free(S->paths);
	for (size_t k = 0; k < S->nops; k++) {
		free(S->ops[k].snap);
		for (size_t j = 0; j < S->ops[k].ntargets; j++)
			free(S->ops[k].targets[j]);
		free(S->ops[k].targets);
	}
	free(S->ops);
	for (size_t k = 0; k < S->nrenames; k++)
		free(S->renames[k]);
	free(S->renames);
}

static int node_open(struct sim *S, int i)
{
	struct node *nd = &S->nodes[i];
	struct store_opts o;
	struct store_info info;
	char name[16];
	int err;

	snprintf(name, sizeof(name), "n%d", i);
	memset(&o, 0, sizeof(o));
	o.map_size = 64ULL << 20;
	o.node_name = name;
	o.tombstone_grace_ms = S->grace_ms;
	o.clock = sim_clock;
	o.clock_arg = nd;
	o.max_offset_ms = S->max_offset_ms;
	o.binlog_max = S->binlog_max;
	err = store_open(nd->dir, &o, &nd->s);
	if (err)
		return fail(S, "store_open %s: %s: %s", nd->dir,
			    store_strerror(err), store_last_error());
	store_info(nd->s, &info);
	if (nd->id && info.node_id != nd->id)
		return fail(S, "node %d: its id changed across a restart", i);
	nd->id = info.node_id;
	return 0;
}

/* Close a node's store and open it again, as a restart of its process
 * would (the links keep their cursors: a replicator resumes from where
 * it was). */
static int node_restart(struct sim *S, int i)
{
	sim_log(S, "node %d: restart", i);
	/* A snapshot being sent or installed starts over. */
	for (int j = 0; j < S->nlinks; j++)
		if (S->links[j].from == i || S->links[j].to == i)
			snap_abort(&S->links[j]);
	store_close(&S->nodes[i].s);
	S->nrestarts++;
	return node_open(S, i);
}

static int sim_open(struct sim *S)
{
	for (int i = 0; i < S->n; i++) {
		struct node *nd = &S->nodes[i];

		snprintf(nd->dir, sizeof(nd->dir),
			 "/dev/shm/statefs-sim-%ld-XXXXXX", (long)getpid());
		if (!mkdtemp(nd->dir))
			return fail(S, "mkdtemp: %s", strerror(errno));
		snprintf(cleanup_dirs[i], sizeof(cleanup_dirs[i]), "%s",
			 nd->dir);
		if (node_open(S, i))
			return -1;
	}
	for (int j = 0; j < S->nlinks; j++) {
		struct link *l = &S->links[j];
		int err = store_peer_add(S->nodes[l->from].s, NULL,
					 S->nodes[l->to].id);

		if (err)
			return fail(S, "store_peer_add: %s",
				    store_strerror(err));
	}
	return 0;
}

/* Run one seed. Returns 0 if every check passed. `changes` gets the
 * number of changes the workload made. quiet: 0 print the summary (and
 * on failure the history of the path), 1 only on failure, 2 never.
 * For --shrink: cls_out gets the failure's class, attempts_out the
 * number of local steps, ops_out[a] is set for each step a that made a
 * change. */
static int run_seed(uint64_t seed, int steps, int quiet, uint64_t *changes,
		    char *cls_out, int *attempts_out, unsigned char *ops_out)
{
	struct sim *S = calloc(1, sizeof(*S));
	int err = 0;
	uint64_t chg;

	if (!S)
		exit(3);
	cur = S;
	S->seed = seed;
	rng_state = seed * 0x2545f4914f6cdd1dULL + 1;
	S->n = 2 + (int)rnd(5);
	for (int i = 0; i < S->n; i++) {
		int64_t mag = chance(50) ? 1 + rnd(10) : 1 + rnd(300);

		S->nodes[i].off = (chance(50) ? -mag : mag) * MS;
	}
	S->max_ttl_ms = 1000 + rnd(4000);
	/* A change can wait at most a few partitions (<= 1.5 s each), time
	 * jumps (<= 1.5 s) and hold-backs per hop: 20 s of grace outlasts
	 * that on a line of 6, so STORE_TOO_OLD is a failure; 0 is the
	 * default of a day. */
	S->grace_ms = chance(50) ? 20000 : 0;
	S->max_offset_ms = chance(70) ? 0 : 100;
	S->nfm = (int)rnd(4);
	{
		/* Some runs trim the binlog hard, so that links fall behind
		 * it; some have a grace shorter than a partition, so that
		 * changes arrive older than the purge horizon (STORE_TOO_OLD):
		 * both resync by snapshot. */
		unsigned pb = rnd(100), pg = rnd(100);
		uint64_t bm = 16 + rnd(64), gm = 1000 + rnd(2000);

		S->binlog_max = pb < 30 ? bm : 0;
		if (pg < 15)
			S->grace_ms = gm;
	}
	make_topology(S);
	if (sim_open(S))
		goto out;
	{
		/* /m is the field-merge scenario's, out of the universe. */
		uint64_t wm[MAXN];

		if (node_wm(S, 0, wm))
			goto out;
		err = store_mknod(S->nodes[0].s, NULL, "/m", STORE_DIR, NULL,
				  NULL, 0, 0);
		if (err) {
			fail(S, "mknod /m: %s", store_strerror(err));
			goto out;
		}
		if (record_simple(S, 0, "/m", 0, wm, "mkdir /m") || quiesce(S))
			goto out;
	}
	sim_log(S, "seed %" PRIu64 ": %d nodes, %s", seed, S->n, S->topo);
	for (int step = 0; step < steps && !S->failed; step++) {
		unsigned jump = rnd(100), restart = rnd(1000);
		int64_t dt = (int64_t)rnd(20) * MS;
		int victim = (int)rnd(S->n);

		if (jump == 0)
			dt += (int64_t)(300 + rnd(1200)) * MS;
		S->vt += dt;
		if (chance(60) && local_step(S, -1, 0))
			break;
		if (chance(10) && fm_step(S))
			break;
		if (restart < 2 && node_restart(S, victim))
			break;
		partition_step(S);
		for (int j = 0; j < S->nlinks && !S->failed; j++)
			link_step(S, &S->links[j], 0);
	}
	if (S->failed || quiesce(S))
		goto out;
	/* Phase A: now, tolerating only records expiring between clocks. */
	if (check_all(S, 1))
		goto out;
	/* Phase B: past every deadline and hold-back, swept. */
	S->vt += (int64_t)(S->max_ttl_ms + 2000) * MS;
	if (sweep_all(S) || quiesce(S) || check_all(S, 0))
		goto out;
	if (final_round(S) || check_all(S, 1))
		goto out;
	S->vt += (int64_t)(S->max_ttl_ms + 2000) * MS;
	if (sweep_all(S) || quiesce(S) || check_all(S, 0))
		goto out;
	if (final_deletes(S) || sweep_all(S) || check_all(S, 0))
		goto out;
	/* Phase C: past the grace, every tombstone acknowledged, some nodes
	 * purge: that changes nothing anybody can see, then or after more
	 * ops (a purge is local: it must not decide a later merge). */
	S->vt +=
	    (int64_t)((S->grace_ms ? S->grace_ms : 24 * 3600 * 1000) + 1000) *
	    MS;
	if (sweep_some(S) || quiesce(S) || check_all(S, 0))
		goto out;
	if (final_round(S) || check_all(S, 1))
		goto out;
	S->vt += (int64_t)(S->max_ttl_ms + 2000) * MS;
	if (quiesce(S) || check_all(S, 0))
		goto out;
out:
	chg = S->nchanges;
	*changes += chg;
	if (quiet < 2 && (!quiet || S->failed))
		printf("seed %" PRIu64 ": %d nodes %s, ops %" PRIu64
		       " (%" PRIu64 " refused), changes %" PRIu64
		       ", delivered %" PRIu64 " (applied %" PRIu64
		       " dup %" PRIu64 " superseded %" PRIu64 " won %" PRIu64
		       " lost %" PRIu64 " held %" PRIu64 ") in %" PRIu64
		       " txns, resyncs %" PRIu64 "/%" PRIu64 "/%" PRIu64
		       "/%" PRIu64 " (random/too-old/trimmed/horizon) in %"
		       PRIu64 " chunks, %" PRIu64 " aborted, %" PRIu64
		       " trims skipped, binlog_max %" PRIu64 ", grace %"
		       PRIu64 " ms, purged %" PRIu64 ", restarts %" PRIu64
		       ", oracle paths %" PRIu64 ", %.1f s virtual: %s%s\n",
		       seed, S->n, S->topo, S->nlocal, S->nfailed_local, chg,
		       S->ndeliver, S->napplied, S->ndup, S->nsuper, S->nwon,
		       S->nlost, S->nheld, S->nbatches,
		       S->nresync[RESYNC_RANDOM], S->nresync[RESYNC_TOO_OLD],
		       S->nresync[RESYNC_TRIMMED], S->nresync[RESYNC_HORIZON],
		       S->nchunks, S->nabort, S->nskip, S->binlog_max,
		       S->grace_ms, S->npurged,
		       S->nrestarts, S->noracle, (double)S->vt / 1e9,
		       S->failed ? "FAIL " : "ok", S->failed ? S->err : "");
	for (int k = 0; k < RESYNC_KINDS; k++)
		total_resync[k] += S->nresync[k];
	total_chunks += S->nchunks;
	total_abort += S->nabort;
	if (S->failed && !quiet && S->fpath[0]) {
		print_history(S, S->fpath);
		dump_records(S, S->fpath);
	}
	if (S->failed && !quiet && keep)
		print_history(S, NULL);
	err = S->failed;
	if (err && cls_out)
		snprintf(cls_out, PATHMAX + 32, "%s", S->cls);
	if (attempts_out)
		*attempts_out = S->attempt;
	if (ops_out) {
		for (size_t k = 0; k < S->nops; k++)
			if (S->ops[k].attempt >= 0 &&
			    S->ops[k].attempt < *attempts_out)
				ops_out[S->ops[k].attempt] = 1;
	}
	sim_free(S);
	free(S);
	cur = NULL;
	return err;
}

/* Delta debugging (Zeller's ddmin) over the local steps of a failing
 * seed: find a small set of ops that still fails the same way (same
 * check, same path) with the same schedule of draws. */
static int shrink_try(uint64_t seed, int steps, const char *cls, const int *set,
		      int n, int nattempts)
{
	char c[PATHMAX + 32] = "";
	uint64_t ch = 0;
	int a = 0, failed;

	for (int k = 0; k < nattempts; k++)
		keep[k] = 0;
	for (int k = 0; k < n; k++)
		keep[set[k]] = 1;
	failed = run_seed(seed, steps, 2, &ch, c, &a, NULL);
	return failed && strcmp(c, cls) == 0;
}

static int shrink(uint64_t seed, int steps)
{
	char cls[PATHMAX + 32] = "";
	uint64_t ch = 0;
	int nattempts = 0, n = 0, gran = 2, runs = 0;
	/* at most one local step per step */
	unsigned char *did = calloc((size_t)steps + 1, 1);
	int loud = verbose; /* --verbose: log the final, shrunk run only */

	verbose = 0;
	int *set, *tmp;

	if (!run_seed(seed, steps, 2, &ch, cls, &nattempts, did)) {
		printf("seed %" PRIu64 " does not fail\n", seed);
		free(did);
		return 0;
	}
	set = calloc((size_t)nattempts + 1, sizeof(int));
	tmp = calloc((size_t)nattempts + 1, sizeof(int));
	keep = calloc((size_t)nattempts + 1, 1);
	nkeep = nattempts;
	for (int k = 0; k < nattempts; k++)
		if (did[k])
			set[n++] = k;
	printf("seed %" PRIu64 " fails (%s) with %d ops; shrinking\n", seed,
	       cls, n);
	if (!shrink_try(seed, steps, cls, set, n, nattempts))
		printf("  (only the ops that changed something: does not fail "
		       "the same way, flaky?)\n");
	while (n >= 2) {
		int chunk = (n + gran - 1) / gran, reduced = 0;

		for (int start = 0; start < n && !reduced; start += chunk) {
			int m = 0;

			for (int k = 0; k < n; k++)
				if (k < start || k >= start + chunk)
					tmp[m++] = set[k];
			runs++;
			if (m &&
			    shrink_try(seed, steps, cls, tmp, m, nattempts)) {
				memcpy(set, tmp, (size_t)m * sizeof(int));
				n = m;
				gran = gran > 2 ? gran - 1 : 2;
				reduced = 1;
			}
		}
		if (reduced)
			continue;
		if (gran >= n)
			break;
		gran = 2 * gran < n ? 2 * gran : n;
	}
	printf("shrunk to %d ops in %d runs:\n", n, runs);
	verbose = loud;
	for (int k = 0; k < nattempts; k++)
		keep[k] = 0;
	for (int k = 0; k < n; k++)
		keep[set[k]] = 1;
	run_seed(seed, steps, 0, &ch, NULL, NULL, NULL);
	free(set);
	free(tmp);
	free(keep);
	free(did);
	keep = NULL;
	return 1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: sim [--seed S [--shrink] | --seeds N "
		"[--from S]] [--steps N] [--verbose]\n"
		"           [--avoid touch,xattr,purge]  (look past known "
		"store bugs)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t from = 1, nseeds = 300, one = 0, changes = 0;
	int have_one = 0, steps = 500, ndiv = 0, do_shrink = 0;
	uint64_t *bad = NULL;
	size_t nbad = 0, capbad = 0;
	struct timespec t0, t1;
	struct {
		char name[48];
		int n;
	} kinds[32];
	size_t nkinds = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char *end;

		if (!strcmp(a, "--verbose")) {
			verbose = 1;
			continue;
		}
		if (!strcmp(a, "--shrink")) {
			do_shrink = 1;
			continue;
		}
		if (!strcmp(a, "--avoid") && i + 1 < argc) {
			avoid_touch |= strstr(argv[i + 1], "touch") != NULL;
			avoid_xattr |= strstr(argv[i + 1], "xattr") != NULL;
			avoid_purge |= strstr(argv[i + 1], "purge") != NULL;
			if (avoid_xattr)
				fm_xattr = "user.l"; /* 'l' - 'k' == 1 */
			i++;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		errno = 0;
		uint64_t v = strtoull(argv[++i], &end, 0);

		if (errno || *end)
			usage();
		if (!strcmp(a, "--seed")) {
			one = v;
			have_one = 1;
		} else if (!strcmp(a, "--seeds")) {
			nseeds = v;
		} else if (!strcmp(a, "--from")) {
			from = v;
		} else if (!strcmp(a, "--steps")) {
			steps = (int)v;
		} else {
			usage();
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGABRT, on_signal);
	signal(SIGSEGV, on_signal);
	/* The store warns of every held-back change: part of the game here. */
	log_init("sim", verbose ? LOG_NOTICE : LOG_ERROR);
	rm_stale();
	atexit(rm_dirs);
#if defined(__SANITIZE_ADDRESS__)
	/* A sanitizer report ends the process without atexit or SIGABRT. */
	__sanitizer_set_death_callback(rm_dirs);
#endif
	setvbuf(stdout, NULL, _IOLBF, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (do_shrink) {
		if (!have_one)
			usage();
		return shrink(one, steps) ? 1 : 0;
	}
	if (have_one) {
		from = one;
		nseeds = 1;
	}
	for (uint64_t s = from; s < from + nseeds; s++) {
		char cls[PATHMAX + 32] = "";
		size_t k;

		if (!run_seed(s, steps, !have_one && !verbose, &changes, cls,
			      NULL, NULL))
			continue;
		ndiv++;
		PUSH(bad, nbad, capbad, s);
		/* count failures by kind, the class without its path */
		cls[strcspn(cls, " ")] = '\0';
		for (k = 0; k < nkinds && strcmp(kinds[k].name, cls); k++)
			;
		if (k == nkinds && nkinds < 32) {
			snprintf(kinds[k].name, sizeof(kinds[k].name), "%s",
				 cls);
			kinds[nkinds++].n = 0;
		}
		if (k < nkinds)
			kinds[k].n++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("seeds %" PRIu64 ", changes %" PRIu64 ", divergences %d"
	       " (%.1f s)\n",
	       nseeds, changes, ndiv,
	       (double)(t1.tv_sec - t0.tv_sec) +
		   (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	printf("resyncs by snapshot %" PRIu64 " (random %" PRIu64
	       ", too-old %" PRIu64 ", trimmed %" PRIu64 ", horizon %" PRIu64
	       ") in %" PRIu64 " chunks, %" PRIu64 " aborted (-EAGAIN)\n",
	       total_resync[1] + total_resync[2] + total_resync[3] +
		   total_resync[4],
	       total_resync[1], total_resync[2], total_resync[3],
	       total_resync[4], total_chunks, total_abort);
	for (size_t k = 0; k < nkinds; k++)
		printf("%s%s %d%s",
		       k ? ", " : "failures by kind: ", kinds[k].name,
		       kinds[k].n, k + 1 == nkinds ? "\n" : "");
	if (nbad) {
		printf("failing seeds:");
		for (size_t k = 0; k < nbad; k++)
			printf(" %" PRIu64, bad[k]);
		printf("\n");
	}
	free(bad);
	return ndiv ? 1 : 0;
}
