/*
 * locktable.c — the replicated lock table (the manual is locktable.h).
 *
 * Why a pure state machine: every voter applies the same raft log to its
 * own copy, and the copies must stay equal byte for byte. So nothing here
 * reads a clock, a random number, an address or the order of a hash
 * table: time comes in commands, ids from counters in the table, and
 * whatever is iterated in a way that matters (encoding, releasing a
 * session's locks) is sorted first.
 *
 * Structures (one thread: raft's loop; no locking):
 *
 *   sessions  sorted array of struct lt_session *, by id (bsearch)
 *   locks     chained hash (kind, path) -> struct lt_lockobj
 *   idle      list of idle locks, oldest first (idle_seq increasing)
 *   pwaiters  list of every queued POSIX waiter (deadlock walk)
 *
 *   struct lt_lockobj
 *     holders: list of struct lt_holder (grant order)
 *     queue:   list of struct lt_waiter (arrival order)
 *     nexcl/nshared: holders by mode
 *     vv:      handover vv (NULL: empty)
 *   a holder and a waiter are also on their session's lists (slink), in
 *   no meaningful order: EXPIRE sorts what it frees.
 *
 * State of a lock object:
 *
 *            acquire                    last holder/waiter gone
 *   (none) ----------> ACTIVE ---------------------------------+
 *      ^                 ^  |                                   |
 *      |     acquire     |  | gone, vv empty                    v
 *      |   +-------------+  +----------> (freed)              IDLE
 *      |   |                                                    |
 *      |   +----------------------------------------------------+
 *      +---- evicted (vv merged into the floor) <---------------+
 *
 * Snapshot layout (all little-endian, 8-aligned):
 *   u64 magic "STFSLKT1", u32 format 1, u32 0
 *   5 x u32 limits, u32 0
 *   u64 clock, token_high, next_session, idle_seq, grants, contentions,
 *       orphans, cancels, expired
 *   vv floor
 *   u64 nsessions, then each: u64 id, node, nonce, last_renew, last_seq,
 *       u32 lease_ms, u32 namelen, name padded, recorded result
 *       (u32 code, u32 0, u64 session, u64 token, vv)
 *   u64 nlocks, then each: u32 kind, u32 pathlen, u64 token, u64
 *       idle_seq, u32 nholders, u32 nwaiters, path padded, vv, holders
 *       (u64 session, owner, u32 pid, u32 mode), waiters (u64 session,
 *       owner, seq, u32 pid, u32 mode)
 *   a vv is u64 n then n x (u64 node, u64 seq).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/list.h"
#include "repl/locktable.h"


#define SNAP_MAGIC 0x31544b4c53465453ULL /* "STFSLKT1" */
#define SNAP_FORMAT 1
#define DEADLK_MAX_OWNERS 256

static const struct lt_limits default_limits = {
	.max_sessions = 4096,
	.max_locks = 1u << 20,
	.max_holders = 4u << 20,
	.max_waiters = 1u << 20,
	.max_idle = 64u << 10,
};

/* ---- memory: failure inside apply is fatal (see Caveats) ---- */

static void oom(void) __attribute__((noreturn));

static void oom(void)
{
	fprintf(stderr, "locktable: fatal: out of memory applying an entry; "
			"stopping rather than diverging\n");
	abort();
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return p;
}

static void *xcalloc(size_t n)
{
	void *p = xmalloc(n);

	memset(p, 0, n);
	return p;
}

/* ---- lists ---- */



/* ---- objects ---- */

struct lt_session {
	uint64_t id, node, nonce, last_renew, last_seq;
	uint32_t lease_ms;
	char name[LT_NAME_MAX + 1];
	struct list holds;  /* struct lt_holder.slink */
	struct list waits;  /* struct lt_waiter.slink */
	unsigned nholds, nwaits;
	/* the recorded result of last_seq */
	enum lt_code rcode;
	uint64_t rsession, rtoken;
	struct lt_vv rvv;
};

struct lt_lockobj {
	struct lt_lockobj *hnext;  /* hash chain */
	uint64_t hash;
	enum lt_kind kind;
	struct list holders, queue;
	unsigned nexcl, nshared, nholders, nwaiters;
	uint64_t token;
	struct lt_vv *vv;          /* NULL: empty */
	struct list idle;          /* in t->idle iff idle_seq != 0 */
	uint64_t idle_seq;
	size_t pathlen;
	char path[];
};

struct lt_holder {
	struct list link, slink;
	struct lt_lockobj *lock;
	struct lt_session *s;
	uint64_t owner;
	uint32_t pid;
	enum lt_mode mode;
};

struct lt_waiter {
	struct list link, slink;
	struct list plink;         /* POSIX only: in t->pwaiters */
	struct lt_lockobj *lock;
	struct lt_session *s;
	uint64_t owner, seq;
	uint64_t arrival;          /* table-wide, orders t->pwaiters */
	uint32_t pid;
	enum lt_mode mode;
};

struct locktable {
	struct lt_limits lim;
	uint64_t clock, token_high, next_session, idle_seq, arrival;
	uint64_t grants, contentions, orphans, cancels, expired;
	struct lt_vv floor;
	struct lt_session **sessions;  /* sorted by id */
	size_t nsessions, capsessions;
	struct lt_lockobj **buckets;
	size_t mask, nlocks_all;       /* all objects, idle included */
	size_t nactive, nidle, nholders, nwaiters, nexcl, nshared;
	struct list idle, pwaiters;
	/* the result of the last apply */
	struct lt_result res;
	struct lt_grant *gr;
	size_t ngr, capgr;
};

/* ---- version vectors ---- */

static int vv_valid(const struct lt_vv *v)
{
	uint32_t i;

	if (v->n > LT_VV_MAX)
		return 0;
	for (i = 0; i < v->n; i++) {
		if (v->e[i].seq == 0)
			return 0;
		if (i && v->e[i].node <= v->e[i - 1].node)
			return 0;
	}
	return 1;
}

/* dst = pointwise max(dst, src); past LT_VV_MAX nodes, dst = src. */
static void vv_merge(struct lt_vv *dst, const struct lt_vv *src)
{
	struct lt_vv out;
	uint32_t i = 0, j = 0;

	out.n = 0;
	while (i < dst->n || j < src->n) {
		struct lt_vv_entry e;

		if (j == src->n ||
		    (i < dst->n && dst->e[i].node < src->e[j].node)) {
			e = dst->e[i++];
		} else if (i == dst->n || src->e[j].node < dst->e[i].node) {
			e = src->e[j++];
		} else {
			e = dst->e[i++];
			if (src->e[j].seq > e.seq)
				e.seq = src->e[j].seq;
			j++;
		}
		if (out.n == LT_VV_MAX) {
			*dst = *src;
			return;
		}
		out.e[out.n++] = e;
	}
	*dst = out;
}

static void vv_get(const struct lt_lockobj *l, struct lt_vv *out)
{
	if (l->vv)
		*out = *l->vv;
	else
		out->n = 0;
}

static void lock_vv_merge(struct lt_lockobj *l, const struct lt_vv *v)
{
	if (v->n == 0)
		return;
	if (!l->vv) {
		l->vv = xmalloc(sizeof(*l->vv));
		l->vv->n = 0;
	}
	vv_merge(l->vv, v);
}

/* ---- little-endian codec ---- */

struct wbuf {
	unsigned char *p;
	size_t len, cap;
	int err;
};

static void w_bytes(struct wbuf *w, const void *src, size_t n)
{
	if (w->err || n == 0)
		return;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 4096;
		unsigned char *np;

		while (cap < w->len + n)
			cap *= 2;
		np = realloc(w->p, cap);
		if (!np) {
			w->err = -ENOMEM;
			return;
		}
		w->p = np;
		w->cap = cap;
	}
	memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void w_u64(struct wbuf *w, uint64_t v)
{
	unsigned char b[8];
	int i;

	for (i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	w_bytes(w, b, 8);
}

static void w_u32(struct wbuf *w, uint32_t v)
{
	unsigned char b[4];
	int i;

	for (i = 0; i < 4; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	w_bytes(w, b, 4);
}

static void w_pad(struct wbuf *w)
{
	static const unsigned char z[8];

	if (w->len % 8)
		w_bytes(w, z, 8 - w->len % 8);
}

static void w_vv(struct wbuf *w, const struct lt_vv *v)
{
	uint32_t i;

	w_u64(w, v->n);
	for (i = 0; i < v->n; i++) {
		w_u64(w, v->e[i].node);
		w_u64(w, v->e[i].seq);
	}
}

struct rbuf {
	const unsigned char *p;
	size_t len, off;
	int err;
};

static const unsigned char *r_bytes(struct rbuf *r, size_t n)
{
	const unsigned char *q;

	if (r->err || n > r->len - r->off) {
		r->err = -EINVAL;
		return NULL;
	}
	q = r->p + r->off;
	r->off += n;
	return q;
}

static uint64_t r_u64(struct rbuf *r)
{
	const unsigned char *b = r_bytes(r, 8);
	uint64_t v = 0;
	int i;

	if (!b)
		return 0;
	for (i = 7; i >= 0; i--)
		v = (v << 8) | b[i];
	return v;
}

static uint32_t r_u32(struct rbuf *r)
{
	const unsigned char *b = r_bytes(r, 4);
	uint32_t v = 0;
	int i;

	if (!b)
		return 0;
	for (i = 3; i >= 0; i--)
		v = (v << 8) | b[i];
	return v;
}

static uint8_t r_u8(struct rbuf *r)
{
	const unsigned char *b = r_bytes(r, 1);

	return b ? b[0] : 0;
}

/* Padding to 8 must be zero bytes. */
static void r_pad(struct rbuf *r)
{
	while (!r->err && r->off % 8)
		if (r_u8(r) != 0)
			r->err = -EINVAL;
}

static void r_vv(struct rbuf *r, struct lt_vv *v)
{
	uint64_t n = r_u64(r);
	uint32_t i;

	if (n > LT_VV_MAX) {
		r->err = -EINVAL;
		v->n = 0;
		return;
	}
	v->n = (uint32_t)n;
	for (i = 0; i < v->n; i++) {
		v->e[i].node = r_u64(r);
		v->e[i].seq = r_u64(r);
	}
	if (!r->err && !vv_valid(v))
		r->err = -EINVAL;
}

static int path_valid(const char *p, size_t n)
{
	return n >= 1 && n <= LT_PATH_MAX && !memchr(p, '\0', n);
}

/* ---- commands ---- */

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static int cmd_valid(const struct lt_cmd *c)
{
	switch (c->type) {
	case LT_OPEN_SESSION:
		return c->namelen <= LT_NAME_MAX &&
		       (c->namelen == 0 || c->name) &&
		       !(c->name && memchr(c->name, '\0', c->namelen));
	case LT_KEEPALIVE:
	case LT_CLOSE_SESSION:
	case LT_EXPIRE:
		return 1;
	case LT_ACQUIRE:
		if (c->mode != LT_SH && c->mode != LT_EX)
			return 0;
		/* fall through */
	case LT_RELEASE:
	case LT_CANCEL:
		if (c->kind != LT_FLOCK && c->kind != LT_POSIX)
			return 0;
		if (!c->path || !path_valid(c->path, c->pathlen))
			return 0;
		return c->type != LT_RELEASE || vv_valid(&c->vv);
	}
	return 0;
}

size_t lt_cmd_size(const struct lt_cmd *c)
{
	if (!cmd_valid(c))
		return 0;
	switch (c->type) {
	case LT_OPEN_SESSION:
		return 32 + 24 + pad8(c->namelen);
	case LT_KEEPALIVE:
	case LT_CLOSE_SESSION:
		return 32;
	case LT_ACQUIRE:
		return 32 + 16 + pad8(c->pathlen);
	case LT_RELEASE:
		return 32 + 16 + pad8(c->pathlen) + 16 * (size_t)c->vv.n;
	case LT_CANCEL:
		return 32 + 24 + pad8(c->pathlen);
	case LT_EXPIRE:
		return 32 + 16;
	}
	return 0;
}

int lt_cmd_encode(const struct lt_cmd *c, void *buf, size_t len)
{
	struct wbuf w = { 0 };
	unsigned char hdr[8] = { 0 };
	size_t need = lt_cmd_size(c);
	uint32_t i;
	int lockcmd;

	if (!need || len != need)
		return -EINVAL;
	lockcmd = c->type == LT_ACQUIRE || c->type == LT_RELEASE ||
		  c->type == LT_CANCEL;
	hdr[0] = LT_CMD_VERSION;
	hdr[1] = (unsigned char)c->type;
	hdr[2] = lockcmd ? (unsigned char)c->kind : 0;
	hdr[3] = c->type == LT_ACQUIRE ? (unsigned char)c->mode : 0;
	hdr[4] = c->type == LT_ACQUIRE ? (c->wait != 0) : 0;
	w_bytes(&w, hdr, 8);
	w_u64(&w, c->type == LT_OPEN_SESSION || c->type == LT_EXPIRE ?
			  0 : c->session);
	w_u64(&w, c->type == LT_EXPIRE ? 0 : c->seq);
	w_u64(&w, c->now);
	switch (c->type) {
	case LT_OPEN_SESSION:
		w_u64(&w, c->node);
		w_u64(&w, c->nonce);
		w_u32(&w, c->lease_ms);
		w_u32(&w, (uint32_t)c->namelen);
		w_bytes(&w, c->name, c->namelen);
		break;
	case LT_ACQUIRE:
		w_u64(&w, c->owner);
		w_u32(&w, c->pid);
		w_u32(&w, (uint32_t)c->pathlen);
		w_bytes(&w, c->path, c->pathlen);
		break;
	case LT_RELEASE:
		w_u64(&w, c->owner);
		w_u32(&w, (uint32_t)c->pathlen);
		w_u32(&w, c->vv.n);
		w_bytes(&w, c->path, c->pathlen);
		w_pad(&w);
		for (i = 0; i < c->vv.n; i++) {
			w_u64(&w, c->vv.e[i].node);
			w_u64(&w, c->vv.e[i].seq);
		}
		break;
	case LT_CANCEL:
		w_u64(&w, c->owner);
		w_u64(&w, c->target_seq);
		w_u32(&w, (uint32_t)c->pathlen);
		w_u32(&w, 0);
		w_bytes(&w, c->path, c->pathlen);
		break;
	case LT_EXPIRE:
		w_u64(&w, c->target);
		w_u64(&w, c->renew);
		break;
	default:
		break;
	}
	w_pad(&w);
	if (w.err || w.len != len) {
		free(w.p);
		return w.err ? w.err : -EINVAL;
	}
	memcpy(buf, w.p, len);
	free(w.p);
	return 0;
}

int lt_cmd_decode(const void *buf, size_t len, struct lt_cmd *c)
{
	struct rbuf r = { buf, len, 0, 0 };
	const unsigned char *h;
	uint32_t n;
	int i;

	memset(c, 0, sizeof(*c));
	if (!buf || len % 8 || len < 32)
		return -EINVAL;
	h = r_bytes(&r, 8);
	if (h[0] != LT_CMD_VERSION || h[5] || h[6] || h[7])
		return -EINVAL;
	c->type = h[1];
	c->kind = h[2];
	c->mode = h[3];
	c->wait = h[4];
	c->session = r_u64(&r);
	c->seq = r_u64(&r);
	c->now = r_u64(&r);
	if (c->type < LT_OPEN_SESSION || c->type > LT_CLOSE_SESSION)
		return -EINVAL;
	if (c->type != LT_ACQUIRE && (c->mode || c->wait))
		return -EINVAL;
	if (c->type != LT_ACQUIRE && c->type != LT_RELEASE &&
	    c->type != LT_CANCEL && c->kind)
		return -EINVAL;
	if (c->wait > 1)
		return -EINVAL;
	if ((c->type == LT_OPEN_SESSION || c->type == LT_EXPIRE) && c->session)
		return -EINVAL;
	if (c->type == LT_EXPIRE && c->seq)
		return -EINVAL;
	switch (c->type) {
	case LT_OPEN_SESSION:
		c->node = r_u64(&r);
		c->nonce = r_u64(&r);
		c->lease_ms = r_u32(&r);
		c->namelen = r_u32(&r);
		if (r.err || c->namelen > LT_NAME_MAX)
			return -EINVAL;
		c->name = (const char *)r_bytes(&r, c->namelen);
		break;
	case LT_ACQUIRE:
		c->owner = r_u64(&r);
		c->pid = r_u32(&r);
		c->pathlen = r_u32(&r);
		if (r.err || c->pathlen > LT_PATH_MAX)
			return -EINVAL;
		c->path = (const char *)r_bytes(&r, c->pathlen);
		break;
	case LT_RELEASE:
		c->owner = r_u64(&r);
		c->pathlen = r_u32(&r);
		n = r_u32(&r);
		if (r.err || c->pathlen > LT_PATH_MAX || n > LT_VV_MAX)
			return -EINVAL;
		c->path = (const char *)r_bytes(&r, c->pathlen);
		r_pad(&r);
		c->vv.n = n;
		for (i = 0; i < (int)n; i++) {
			c->vv.e[i].node = r_u64(&r);
			c->vv.e[i].seq = r_u64(&r);
		}
		break;
	case LT_CANCEL:
		c->owner = r_u64(&r);
		c->target_seq = r_u64(&r);
		c->pathlen = r_u32(&r);
		if (r_u32(&r) != 0 || r.err || c->pathlen > LT_PATH_MAX)
			return -EINVAL;
		c->path = (const char *)r_bytes(&r, c->pathlen);
		break;
	case LT_EXPIRE:
		c->target = r_u64(&r);
		c->renew = r_u64(&r);
		break;
	default:
		break;
	}
	r_pad(&r);
	if (r.err || r.off != len || !cmd_valid(c))
		return -EINVAL;
	return 0;
}

const char *lt_code_name(enum lt_code c)
{
	static const char *const names[] = {
		"OK", "GRANTED", "QUEUED", "WOULDBLOCK", "NOT_FOUND",
		"NOLCK", "DEADLK", "STALE", "MALFORMED", "GAP",
	};

	if ((unsigned)c < sizeof(names) / sizeof(names[0]))
		return names[c];
	return "?";
}

/* ---- the table: sessions ---- */

static size_t session_pos(const struct locktable *t, uint64_t id, int *found)
{
	size_t lo = 0, hi = t->nsessions;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->sessions[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < t->nsessions && t->sessions[lo]->id == id;
	return lo;
}

static struct lt_session *session_find(const struct locktable *t, uint64_t id)
{
	int found;
	size_t i = session_pos(t, id, &found);

	return found ? t->sessions[i] : NULL;
}

/* Insert s (its id is not present). 0 or -ENOMEM. */
static int session_insert(struct locktable *t, struct lt_session *s)
{
	int found;
	size_t i = session_pos(t, s->id, &found);

	if (t->nsessions == t->capsessions) {
		size_t cap = t->capsessions ? t->capsessions * 2 : 16;
		struct lt_session **n =
			realloc(t->sessions, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->sessions = n;
		t->capsessions = cap;
	}
	memmove(&t->sessions[i + 1], &t->sessions[i],
		(t->nsessions - i) * sizeof(*t->sessions));
	t->sessions[i] = s;
	t->nsessions++;
	return 0;
}

static void session_remove(struct locktable *t, struct lt_session *s)
{
	int found;
	size_t i = session_pos(t, s->id, &found);

	if (!found)
		return;
	memmove(&t->sessions[i], &t->sessions[i + 1],
		(t->nsessions - i - 1) * sizeof(*t->sessions));
	t->nsessions--;
}

static struct lt_session *session_new(uint64_t id)
{
	struct lt_session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->id = id;
	list_init(&s->holds);
	list_init(&s->waits);
	return s;
}

/* ---- the table: locks ---- */

static uint64_t hash_path(enum lt_kind kind, const char *p, size_t n)
{
	return hash_bytes((uint64_t)kind, p, n);
}

static struct lt_lockobj *lock_find(const struct locktable *t,
				    enum lt_kind kind, const char *p,
				    size_t n)
{
	uint64_t h = hash_path(kind, p, n);
	struct lt_lockobj *l;

	for (l = t->buckets[h & t->mask]; l; l = l->hnext)
		if (l->hash == h && l->kind == kind && l->pathlen == n &&
		    memcmp(l->path, p, n) == 0)
			return l;
	return NULL;
}

/* Doubling keeps chains short; if it cannot allocate, chains grow. */
static void hash_grow(struct locktable *t)
{
	size_t n = (t->mask + 1) * 2, i;
	struct lt_lockobj **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return;
	for (i = 0; i <= t->mask; i++) {
		struct lt_lockobj *l = t->buckets[i], *next;

		for (; l; l = next) {
			next = l->hnext;
			l->hnext = nb[l->hash & (n - 1)];
			nb[l->hash & (n - 1)] = l;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->mask = n - 1;
}

static void hash_insert(struct locktable *t, struct lt_lockobj *l)
{
	if (t->nlocks_all >= t->mask + 1)
		hash_grow(t);
	l->hnext = t->buckets[l->hash & t->mask];
	t->buckets[l->hash & t->mask] = l;
	t->nlocks_all++;
}

static void hash_remove(struct locktable *t, struct lt_lockobj *l)
{
	struct lt_lockobj **pp = &t->buckets[l->hash & t->mask];

	while (*pp != l)
		pp = &(*pp)->hnext;
	*pp = l->hnext;
	t->nlocks_all--;
}

static struct lt_lockobj *lockobj_alloc(enum lt_kind kind, const char *p,
					size_t n)
{
	struct lt_lockobj *l = calloc(1, sizeof(*l) + n + 1);

	if (!l)
		return NULL;
	l->kind = kind;
	l->hash = hash_path(kind, p, n);
	list_init(&l->holders);
	list_init(&l->queue);
	list_init(&l->idle);
	l->pathlen = n;
	memcpy(l->path, p, n);
	l->path[n] = '\0';
	return l;
}

static void lockobj_free(struct lt_lockobj *l)
{
	free(l->vv);
	free(l);
}

static void idle_del(struct locktable *t, struct lt_lockobj *l)
{
	if (!l->idle_seq)
		return;
	list_del(&l->idle);
	l->idle_seq = 0;
	t->nidle--;
	t->nactive++;
}

/* The lock for an acquire: found (an idle one becomes active) or
 * created from the floor vv. NULL when max_locks are active. */
static struct lt_lockobj *lock_get(struct locktable *t, enum lt_kind kind,
				   const char *p, size_t n)
{
	struct lt_lockobj *l = lock_find(t, kind, p, n);

	if (l) {
		idle_del(t, l);
		return l;
	}
	if (t->nactive >= t->lim.max_locks)
		return NULL;
	l = lockobj_alloc(kind, p, n);
	if (!l)
		oom();
	lock_vv_merge(l, &t->floor);
	hash_insert(t, l);
	t->nactive++;
	return l;
}

static void lock_evict(struct locktable *t, struct lt_lockobj *l)
{
	if (l->vv)
		vv_merge(&t->floor, l->vv);
	list_del(&l->idle);
	t->nidle--;
	hash_remove(t, l);
	lockobj_free(l);
}

/* Invariant (3): a lock with nobody on it is freed, or idle if it has a
 * vv to hand over or a token to show; past max_idle the oldest idle lock
 * is evicted. */
static void lock_put(struct locktable *t, struct lt_lockobj *l)
{
	if (l->idle_seq || !list_empty(&l->holders) || !list_empty(&l->queue))
		return;
	t->nactive--;
	if (((!l->vv || l->vv->n == 0) && !l->token) || t->lim.max_idle == 0) {
		if (l->vv)
			vv_merge(&t->floor, l->vv);
		hash_remove(t, l);
		lockobj_free(l);
		return;
	}
	l->idle_seq = ++t->idle_seq;
	list_add_tail(&t->idle, &l->idle);
	t->nidle++;
	while (t->nidle > t->lim.max_idle)
		lock_evict(t, container_of(t->idle.next, struct lt_lockobj,
					   idle));
}

/* ---- holders and waiters ---- */

static struct lt_holder *holder_find(const struct lt_lockobj *l,
				     const struct lt_session *s,
				     uint64_t owner)
{
	struct list *p;

	list_for(p, &l->holders) {
		struct lt_holder *h = container_of(p, struct lt_holder, link);

		if (h->s == s && h->owner == owner)
			return h;
	}
	return NULL;
}

static void count_mode(struct locktable *t, struct lt_lockobj *l,
		       enum lt_mode m, int d)
{
	if (m == LT_EX) {
		l->nexcl += d;
		t->nexcl += d;
	} else if (m == LT_SH) {
		l->nshared += d;
		t->nshared += d;
	}
}

static struct lt_holder *holder_add(struct locktable *t, struct lt_lockobj *l,
				    struct lt_session *s, uint64_t owner,
				    uint32_t pid, enum lt_mode m)
{
	struct lt_holder *h = xcalloc(sizeof(*h));

	h->lock = l;
	h->s = s;
	h->owner = owner;
	h->pid = pid;
	h->mode = m;
	list_add_tail(&l->holders, &h->link);
	list_add_tail(&s->holds, &h->slink);
	l->nholders++;
	s->nholds++;
	t->nholders++;
	count_mode(t, l, m, +1);
	return h;
}

static void holder_del(struct locktable *t, struct lt_holder *h)
{
	count_mode(t, h->lock, h->mode, -1);
	list_del(&h->link);
	list_del(&h->slink);
	h->lock->nholders--;
	h->s->nholds--;
	t->nholders--;
	free(h);
}

static void waiter_del(struct locktable *t, struct lt_waiter *w)
{
	list_del(&w->link);
	list_del(&w->slink);
	if (w->lock->kind == LT_POSIX)
		list_del(&w->plink);
	w->lock->nwaiters--;
	w->s->nwaits--;
	t->nwaiters--;
	free(w);
}

/* Would mode for (s, owner) conflict with the holders of l? The owner's
 * own holding does not count. Same rule for flock and whole-file POSIX. */
static int conflicts(const struct lt_lockobj *l, const struct lt_holder *own,
		     enum lt_mode m)
{
	unsigned ex = l->nexcl, sh = l->nshared;

	if (own && own->mode == LT_EX)
		ex--;
	else if (own && own->mode == LT_SH)
		sh--;
	return m == LT_EX ? ex + sh > 0 : ex > 0;
}

static uint64_t issue_token(struct locktable *t, struct lt_lockobj *l)
{
	uint64_t tok = t->token_high + 1;

	if (t->clock <= UINT64_MAX / 1000 && tok < t->clock * 1000)
		tok = t->clock * 1000;
	t->token_high = tok;
	l->token = tok;
	return tok;
}

/* Give (s, owner) mode on l: create, convert, count, token. */
static void grant(struct locktable *t, struct lt_lockobj *l,
		  struct lt_session *s, uint64_t owner, uint32_t pid,
		  enum lt_mode m)
{
	struct lt_holder *h = holder_find(l, s, owner);

	if (h) {
		count_mode(t, l, h->mode, -1);
		h->mode = m;
		h->pid = pid;
		count_mode(t, l, m, +1);
	} else {
		holder_add(t, l, s, owner, pid, m);
	}
	t->grants++;
	if (m == LT_EX)
		issue_token(t, l);
}

static void result_grant(struct locktable *t, const struct lt_waiter *w)
{
	struct lt_grant *g;

	if (t->ngr == t->capgr) {
		size_t cap = t->capgr ? t->capgr * 2 : 8;
		struct lt_grant *n = realloc(t->gr, cap * sizeof(*n));

		if (!n)
			oom();
		t->gr = n;
		t->capgr = cap;
	}
	g = &t->gr[t->ngr++];
	g->session = w->s->id;
	g->owner = w->owner;
	g->seq = w->seq;
	g->kind = w->lock->kind;
	g->mode = w->mode;
	g->path = w->lock->path;
	g->token = w->lock->token;
	vv_get(w->lock, &g->vv);
}

/* Grant what the holders allow now. flock: from the head, stop at the
 * first that does not fit; POSIX: every waiter that fits, in order. */
static void lock_grant(struct locktable *t, struct lt_lockobj *l)
{
	struct list *p, *next;

	for (p = l->queue.next; p != &l->queue; p = next) {
		struct lt_waiter *w = container_of(p, struct lt_waiter, link);
		struct lt_holder *own = holder_find(l, w->s, w->owner);

		next = p->next;
		if (conflicts(l, own, w->mode)) {
			if (l->kind == LT_FLOCK)
				break;
			continue;
		}
		grant(t, l, w->s, w->owner, w->pid, w->mode);
		result_grant(t, w);
		waiter_del(t, w);
		/* POSIX: a holder's second request may have weakened its
		 * lock (EX -> SH), and waiters already passed over may fit
		 * now: look again from the head (flock grants a prefix, so
		 * nothing before w waits) */
		if (own && l->kind == LT_POSIX)
			next = l->queue.next;
	}
}

/* ---- POSIX deadlocks ---- */

struct owner_set {
	struct {
		const struct lt_session *s;
		uint64_t owner;
	} v[DEADLK_MAX_OWNERS];
	size_t n;
};

/* Push the owners of l's holders that conflict with mode for (s, o).
 * -1 when the set is full. */
static int push_blockers(const struct lt_lockobj *l,
			 const struct lt_session *s, uint64_t o,
			 enum lt_mode m, struct owner_set *todo)
{
	const struct list *p;

	list_for(p, &l->holders) {
		const struct lt_holder *h =
			container_of(p, struct lt_holder, link);

		if (h->s == s && h->owner == o)
			continue;
		if (m != LT_EX && h->mode != LT_EX)
			continue;
		if (todo->n == DEADLK_MAX_OWNERS)
			return -1;
		todo->v[todo->n].s = h->s;
		todo->v[todo->n++].owner = h->owner;
	}
	return 0;
}

/* Would (s, o) queueing mode on l wait for itself through a chain of
 * queued POSIX requests? (Linux's posix_locks_deadlock, across hosts.) */
static int posix_deadlock(const struct locktable *t, const struct lt_lockobj *l,
			  const struct lt_session *s, uint64_t o,
			  enum lt_mode m)
{
	struct owner_set todo, seen; /* 8 KiB of stack, no allocation */
	const struct list *p;
	size_t i;

	todo.n = seen.n = 0;
	if (push_blockers(l, s, o, m, &todo) < 0)
		return 0;
	while (todo.n) {
		const struct lt_session *ws = todo.v[todo.n - 1].s;
		uint64_t wo = todo.v[--todo.n].owner;

		if (ws == s && wo == o)
			return 1;
		for (i = 0; i < seen.n; i++)
			if (seen.v[i].s == ws && seen.v[i].owner == wo)
				break;
		if (i < seen.n)
			continue;
		if (seen.n == DEADLK_MAX_OWNERS)
			return 0;
		seen.v[seen.n].s = ws;
		seen.v[seen.n++].owner = wo;
		list_for(p, &t->pwaiters) {
			const struct lt_waiter *w =
				container_of(p, struct lt_waiter, plink);

			if (w->s != ws || w->owner != wo)
				continue;
			if (push_blockers(w->lock, ws, wo, w->mode, &todo) < 0)
				return 0;
		}
	}
	return 0;
}

/* ---- applying commands ---- */

static void res_granted(struct locktable *t, struct lt_lockobj *l)
{
	t->res.code = LT_GRANTED;
	t->res.token = l->token;
	vv_get(l, &t->res.vv);
}

static void do_acquire(struct locktable *t, struct lt_session *s,
		       const struct lt_cmd *c)
{
	struct lt_lockobj *l = lock_get(t, c->kind, c->path, c->pathlen);
	struct lt_holder *own;
	struct lt_waiter *w;
	int busy;

	if (!l) {
		t->res.code = LT_NOLCK;
		return;
	}
	own = holder_find(l, s, c->owner);
	if (own && own->mode == c->mode) {
		res_granted(t, l);  /* already held: nothing changes */
		goto out;
	}
	if (l->kind == LT_FLOCK) {
		if (own && c->mode == LT_SH) {
			/* downgrade: immediate */
			grant(t, l, s, c->owner, c->pid, LT_SH);
			res_granted(t, l);
			lock_grant(t, l);
			goto out;
		}
		if (own) {
			/* upgrade: drop the shared lock first, like Linux */
			holder_del(t, own);
			own = NULL;
			lock_grant(t, l);
		}
		busy = !list_empty(&l->queue) || conflicts(l, NULL, c->mode);
	} else {
		busy = conflicts(l, own, c->mode);
	}
	if (!busy) {
		if (!own && t->nholders >= t->lim.max_holders) {
			t->res.code = LT_NOLCK;
			goto out;
		}
		grant(t, l, s, c->owner, c->pid, c->mode);
		res_granted(t, l);
		if (l->kind == LT_POSIX)
			lock_grant(t, l);  /* a downgrade may let others in */
		goto out;
	}
	t->contentions++;
	if (!c->wait) {
		t->res.code = LT_WOULDBLOCK;
		goto out;
	}
	if (l->kind == LT_POSIX &&
	    posix_deadlock(t, l, s, c->owner, c->mode)) {
		t->res.code = LT_DEADLK;
		goto out;
	}
	if (t->nwaiters >= t->lim.max_waiters) {
		t->res.code = LT_NOLCK;
		goto out;
	}
	w = xcalloc(sizeof(*w));
	w->lock = l;
	w->s = s;
	w->owner = c->owner;
	w->seq = c->seq;
	w->pid = c->pid;
	w->mode = c->mode;
	w->arrival = ++t->arrival;
	list_add_tail(&l->queue, &w->link);
	list_add_tail(&s->waits, &w->slink);
	if (l->kind == LT_POSIX)
		list_add_tail(&t->pwaiters, &w->plink);
	l->nwaiters++;
	s->nwaits++;
	t->nwaiters++;
	t->res.code = LT_QUEUED;
out:
	lock_put(t, l);
}

static void do_release(struct locktable *t, struct lt_session *s,
		       const struct lt_cmd *c)
{
	struct lt_lockobj *l = lock_find(t, c->kind, c->path, c->pathlen);
	struct lt_holder *h = l ? holder_find(l, s, c->owner) : NULL;

	if (!h) {
		t->res.code = LT_NOT_FOUND;
		return;
	}
	lock_vv_merge(l, &c->vv);
	holder_del(t, h);
	lock_grant(t, l);
	lock_put(t, l);
	t->res.code = LT_OK;
}

static void do_cancel(struct locktable *t, struct lt_session *s,
		      const struct lt_cmd *c)
{
	struct lt_lockobj *l = lock_find(t, c->kind, c->path, c->pathlen);
	struct list *p;

	t->res.code = LT_NOT_FOUND;
	if (!l)
		return;
	list_for(p, &l->queue) {
		struct lt_waiter *w = container_of(p, struct lt_waiter, link);

		if (w->s == s && w->owner == c->owner &&
		    w->seq == c->target_seq) {
			int head = l->queue.next == p;

			waiter_del(t, w);
			t->cancels++;
			t->res.code = LT_OK;
			/* a cancelled head may have held the others back */
			if (head || l->kind == LT_POSIX)
				lock_grant(t, l);
			lock_put(t, l);
			return;
		}
	}
	/* not waiting: granted before the cancel arrived? It stands. */
	if (holder_find(l, s, c->owner))
		res_granted(t, l);
}

static int lockobj_cmp(const void *a, const void *b)
{
	const struct lt_lockobj *x = *(struct lt_lockobj *const *)a;
	const struct lt_lockobj *y = *(struct lt_lockobj *const *)b;
	size_t n = x->pathlen < y->pathlen ? x->pathlen : y->pathlen;
	int c;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	c = memcmp(x->path, y->path, n);
	if (c)
		return c;
	return x->pathlen < y->pathlen ? -1 : x->pathlen > y->pathlen;
}

/* Free everything of s (EXPIRE, CLOSE_SESSION), in (kind, path) order so
 * the grants and their tokens are the same on every voter. */
static void session_end(struct locktable *t, struct lt_session *s)
{
	size_t n = 0, i, cap = s->nholds + s->nwaits;
	struct lt_lockobj **v = xmalloc((cap ? cap : 1) * sizeof(*v));
	struct list *p;

	list_for(p, &s->holds)
		v[n++] = container_of(p, struct lt_holder, slink)->lock;
	list_for(p, &s->waits)
		v[n++] = container_of(p, struct lt_waiter, slink)->lock;
	qsort(v, n, sizeof(*v), lockobj_cmp);
	while (!list_empty(&s->waits))
		waiter_del(t, container_of(s->waits.next, struct lt_waiter,
					   slink));
	t->orphans += s->nholds;
	while (!list_empty(&s->holds))
		holder_del(t, container_of(s->holds.next, struct lt_holder,
					   slink));
	for (i = 0; i < n; i++) {
		if (i && v[i] == v[i - 1])
			continue;
		lock_grant(t, v[i]);
		lock_put(t, v[i]);
	}
	free(v);
	session_remove(t, s);
	free(s);
}

static void do_open(struct locktable *t, const struct lt_cmd *c)
{
	struct lt_session *s;
	size_t i;

	for (i = 0; i < t->nsessions; i++) {
		s = t->sessions[i];
		if (s->node == c->node && s->nonce == c->nonce) {
			t->res.code = LT_OK;
			t->res.session = s->id;
			t->res.dup = 1;
			return;
		}
	}
	if (t->nsessions >= t->lim.max_sessions) {
		t->res.code = LT_NOLCK;
		return;
	}
	s = session_new(++t->next_session);
	if (!s || session_insert(t, s) < 0)
		oom();
	s->node = c->node;
	s->nonce = c->nonce;
	s->lease_ms = c->lease_ms;
	memcpy(s->name, c->name, c->namelen);
	s->name[c->namelen] = '\0';
	s->last_renew = t->clock;
	s->last_seq = c->seq;
	s->rcode = LT_OK;
	s->rsession = s->id;
	t->res.code = LT_OK;
	t->res.session = s->id;
}

static void do_expire(struct locktable *t, const struct lt_cmd *c)
{
	struct lt_session *s = session_find(t, c->target);

	if (!s) {
		t->res.code = LT_NOT_FOUND;
		return;
	}
	if (s->last_renew != c->renew ||
	    c->now < s->last_renew + (uint64_t)s->lease_ms) {
		t->res.code = LT_STALE;
		return;
	}
	t->expired++;
	session_end(t, s);
	t->res.code = LT_OK;
}

static void res_reset(struct locktable *t)
{
	memset(&t->res, 0, sizeof(t->res));
	t->ngr = 0;
}

void lt_apply(struct locktable *t, const void *buf, size_t len,
	      const struct lt_result **res)
{
	struct lt_cmd *c = xmalloc(sizeof(*c)); /* 1 KiB of vv */
	struct lt_session *s;

	res_reset(t);
	*res = &t->res;
	if (lt_cmd_decode(buf, len, c) < 0) {
		t->res.code = LT_MALFORMED;
		goto out;
	}
	if (c->now > t->clock)
		t->clock = c->now;
	if (c->type == LT_OPEN_SESSION) {
		do_open(t, c);
		goto out;
	}
	if (c->type == LT_EXPIRE) {
		do_expire(t, c);
		goto out;
	}
	s = session_find(t, c->session);
	if (!s) {
		t->res.code = LT_NOT_FOUND;
		goto out;
	}
	if (c->seq == s->last_seq) {
		/* a retry: the recorded answer, nothing changes */
		t->res.code = s->rcode;
		t->res.session = s->rsession;
		t->res.token = s->rtoken;
		t->res.vv = s->rvv;
		t->res.dup = 1;
		goto out;
	}
	if (c->seq < s->last_seq) {
		t->res.code = LT_STALE;
		goto out;
	}
	if (c->seq > s->last_seq + 1) {
		t->res.code = LT_GAP;
		goto out;
	}
	s->last_renew = t->clock;
	switch (c->type) {
	case LT_KEEPALIVE:
		t->res.code = LT_OK;
		break;
	case LT_ACQUIRE:
		do_acquire(t, s, c);
		break;
	case LT_RELEASE:
		do_release(t, s, c);
		break;
	case LT_CANCEL:
		do_cancel(t, s, c);
		break;
	case LT_CLOSE_SESSION:
		session_end(t, s);
		t->res.code = LT_OK;
		goto out;  /* nothing left to record in */
	default:
		break;
	}
	s->last_seq = c->seq;
	s->rcode = t->res.code;
	s->rsession = t->res.session;
	s->rtoken = t->res.token;
	s->rvv = t->res.vv;
out:
	t->res.ngrants = t->ngr;
	t->res.grants = t->gr;
	free(c);
}

/* ---- lifecycle ---- */

static struct locktable *table_alloc(const struct lt_limits *lim)
{
	struct locktable *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->lim = lim ? *lim : default_limits;
	t->buckets = calloc(64, sizeof(*t->buckets));
	if (!t->buckets) {
		free(t);
		return NULL;
	}
	t->mask = 63;
	list_init(&t->idle);
	list_init(&t->pwaiters);
	return t;
}

static void table_clear(struct locktable *t)
{
	size_t i;

	for (i = 0; i <= t->mask; i++) {
		struct lt_lockobj *l = t->buckets[i], *next;

		for (; l; l = next) {
			next = l->hnext;
			while (!list_empty(&l->queue)) {
				struct lt_waiter *w = container_of(
					l->queue.next, struct lt_waiter, link);

				list_del(&w->link);
				free(w);
			}
			while (!list_empty(&l->holders)) {
				struct lt_holder *h = container_of(
					l->holders.next, struct lt_holder,
					link);

				list_del(&h->link);
				free(h);
			}
			lockobj_free(l);
		}
	}
	for (i = 0; i < t->nsessions; i++)
		free(t->sessions[i]);
	free(t->sessions);
	free(t->buckets);
	free(t->gr);
}

struct locktable *lt_new(const struct lt_limits *limits)
{
	return table_alloc(limits);
}

void lt_free(struct locktable **tp)
{
	if (!*tp)
		return;
	table_clear(*tp);
	free(*tp);
	*tp = NULL;
}

/* ---- snapshot ---- */

/* Every lock object, sorted by (kind, path). NULL only on ENOMEM. */
static struct lt_lockobj **locks_sorted(const struct locktable *t)
{
	struct lt_lockobj **v = malloc((t->nlocks_all + 1) * sizeof(*v));
	size_t i, n = 0;

	if (!v)
		return NULL;
	for (i = 0; i <= t->mask; i++) {
		struct lt_lockobj *l;

		for (l = t->buckets[i]; l; l = l->hnext)
			v[n++] = l;
	}
	qsort(v, n, sizeof(*v), lockobj_cmp);
	return v;
}

int lt_encode(const struct locktable *t, void **bufp, size_t *lenp)
{
	struct wbuf w = { 0 };
	struct lt_lockobj **locks = locks_sorted(t);
	struct lt_vv empty = { 0 };
	size_t i;

	if (!locks)
		return -ENOMEM;
	w_u64(&w, SNAP_MAGIC);
	w_u32(&w, SNAP_FORMAT);
	w_u32(&w, 0);
	w_u32(&w, t->lim.max_sessions);
	w_u32(&w, t->lim.max_locks);
	w_u32(&w, t->lim.max_holders);
	w_u32(&w, t->lim.max_waiters);
	w_u32(&w, t->lim.max_idle);
	w_u32(&w, 0);
	w_u64(&w, t->clock);
	w_u64(&w, t->token_high);
	w_u64(&w, t->next_session);
	w_u64(&w, t->idle_seq);
	w_u64(&w, t->arrival);
	w_u64(&w, t->grants);
	w_u64(&w, t->contentions);
	w_u64(&w, t->orphans);
	w_u64(&w, t->cancels);
	w_u64(&w, t->expired);
	w_vv(&w, &t->floor);
	w_u64(&w, t->nsessions);
	for (i = 0; i < t->nsessions; i++) {
		const struct lt_session *s = t->sessions[i];
		size_t nl = strlen(s->name);

		w_u64(&w, s->id);
		w_u64(&w, s->node);
		w_u64(&w, s->nonce);
		w_u64(&w, s->last_renew);
		w_u64(&w, s->last_seq);
		w_u32(&w, s->lease_ms);
		w_u32(&w, (uint32_t)nl);
		w_bytes(&w, s->name, nl);
		w_pad(&w);
		w_u32(&w, s->rcode);
		w_u32(&w, 0);
		w_u64(&w, s->rsession);
		w_u64(&w, s->rtoken);
		w_vv(&w, &s->rvv);
	}
	w_u64(&w, t->nlocks_all);
	for (i = 0; i < t->nlocks_all; i++) {
		const struct lt_lockobj *l = locks[i];
		const struct list *p;

		w_u32(&w, l->kind);
		w_u32(&w, (uint32_t)l->pathlen);
		w_u64(&w, l->token);
		w_u64(&w, l->idle_seq);
		w_u32(&w, l->nholders);
		w_u32(&w, l->nwaiters);
		w_bytes(&w, l->path, l->pathlen);
		w_pad(&w);
		w_vv(&w, l->vv ? l->vv : &empty);
		list_for(p, &l->holders) {
			const struct lt_holder *h =
				container_of(p, struct lt_holder, link);

			w_u64(&w, h->s->id);
			w_u64(&w, h->owner);
			w_u32(&w, h->pid);
			w_u32(&w, h->mode);
		}
		list_for(p, &l->queue) {
			const struct lt_waiter *wt =
				container_of(p, struct lt_waiter, link);

			w_u64(&w, wt->s->id);
			w_u64(&w, wt->owner);
			w_u64(&w, wt->seq);
			w_u64(&w, wt->arrival);
			w_u32(&w, wt->pid);
			w_u32(&w, wt->mode);
		}
	}
	free(locks);
	if (w.err) {
		free(w.p);
		return w.err;
	}
	*bufp = w.p;
	*lenp = w.len;
	return 0;
}

static int idle_cmp(const void *a, const void *b)
{
	const struct lt_lockobj *x = *(struct lt_lockobj *const *)a;
	const struct lt_lockobj *y = *(struct lt_lockobj *const *)b;

	return x->idle_seq < y->idle_seq ? -1 : x->idle_seq > y->idle_seq;
}

static int arrival_cmp(const void *a, const void *b)
{
	const struct lt_waiter *x = *(struct lt_waiter *const *)a;
	const struct lt_waiter *y = *(struct lt_waiter *const *)b;

	return x->arrival < y->arrival ? -1 : x->arrival > y->arrival;
}

/* Decode an image into the empty table n. 0 or -EINVAL/-ENOMEM. */
static int restore_into(struct locktable *n, struct rbuf *r)
{
	struct lt_lockobj *prev = NULL, **idle = NULL;
	struct lt_waiter **pw = NULL;
	uint64_t count, i, j;
	size_t nidle = 0, npw = 0, cappw = 0;
	int err = -EINVAL;

	if (r_u64(r) != SNAP_MAGIC || r_u32(r) != SNAP_FORMAT || r_u32(r))
		return -EINVAL;
	n->lim.max_sessions = r_u32(r);
	n->lim.max_locks = r_u32(r);
	n->lim.max_holders = r_u32(r);
	n->lim.max_waiters = r_u32(r);
	n->lim.max_idle = r_u32(r);
	if (r_u32(r))
		return -EINVAL;
	n->clock = r_u64(r);
	n->token_high = r_u64(r);
	n->next_session = r_u64(r);
	n->idle_seq = r_u64(r);
	n->arrival = r_u64(r);
	n->grants = r_u64(r);
	n->contentions = r_u64(r);
	n->orphans = r_u64(r);
	n->cancels = r_u64(r);
	n->expired = r_u64(r);
	r_vv(r, &n->floor);
	count = r_u64(r);
	if (r->err || count > n->lim.max_sessions)
		return -EINVAL;
	for (i = 0; i < count; i++) {
		struct lt_session *s = session_new(r_u64(r));
		uint32_t nl;
		const unsigned char *name;

		if (!s)
			return -ENOMEM;
		if (n->nsessions &&
		    s->id <= n->sessions[n->nsessions - 1]->id) {
			free(s);
			return -EINVAL;  /* sorted, unique */
		}
		if (session_insert(n, s) < 0) {
			free(s);
			return -ENOMEM;
		}
		s->node = r_u64(r);
		s->nonce = r_u64(r);
		s->last_renew = r_u64(r);
		s->last_seq = r_u64(r);
		s->lease_ms = r_u32(r);
		nl = r_u32(r);
		if (r->err || nl > LT_NAME_MAX)
			return -EINVAL;
		name = r_bytes(r, nl);
		if (!name || memchr(name, '\0', nl))
			return -EINVAL;
		memcpy(s->name, name, nl);
		r_pad(r);
		s->rcode = r_u32(r);
		if (r_u32(r) || s->rcode > LT_MALFORMED || s->id == 0 ||
		    s->id > n->next_session)
			return -EINVAL;
		s->rsession = r_u64(r);
		s->rtoken = r_u64(r);
		r_vv(r, &s->rvv);
		if (r->err)
			return -EINVAL;
	}
	count = r_u64(r);
	if (r->err || count > (uint64_t)n->lim.max_locks + n->lim.max_idle)
		return -EINVAL;
	idle = calloc(count + 1, sizeof(*idle));
	if (!idle)
		return -ENOMEM;
	for (i = 0; i < count; i++) {
		uint32_t kind = r_u32(r), pathlen = r_u32(r), nh, nw;
		uint64_t token = r_u64(r), idle_seq = r_u64(r);
		const char *path;
		struct lt_lockobj *l;
		struct lt_vv vv;

		nh = r_u32(r);
		nw = r_u32(r);
		if (r->err || kind > LT_POSIX || pathlen > LT_PATH_MAX)
			goto out;
		path = (const char *)r_bytes(r, pathlen);
		if (!path || !path_valid(path, pathlen))
			goto out;
		r_pad(r);
		r_vv(r, &vv);
		if (r->err || token > n->token_high)
			goto out;
		l = lockobj_alloc(kind, path, pathlen);
		if (!l) {
			err = -ENOMEM;
			goto out;
		}
		if (prev && lockobj_cmp(&prev, &l) >= 0) {
			lockobj_free(l);
			goto out;  /* sorted, unique */
		}
		hash_insert(n, l);
		prev = l;
		l->token = token;
		if (vv.n)
			lock_vv_merge(l, &vv);
		for (j = 0; j < nh; j++) {
			struct lt_session *s = session_find(n, r_u64(r));
			uint64_t owner = r_u64(r);
			uint32_t pid = r_u32(r), mode = r_u32(r);

			if (r->err || !s || (mode != LT_SH && mode != LT_EX) ||
			    holder_find(l, s, owner))
				goto out;
			holder_add(n, l, s, owner, pid, mode);
		}
		for (j = 0; j < nw; j++) {
			struct lt_session *s = session_find(n, r_u64(r));
			struct lt_waiter *w;

			if (!s)
				goto out;
			w = calloc(1, sizeof(*w));
			if (!w) {
				err = -ENOMEM;
				goto out;
			}
			w->lock = l;
			w->s = s;
			w->owner = r_u64(r);
			w->seq = r_u64(r);
			w->arrival = r_u64(r);
			w->pid = r_u32(r);
			w->mode = r_u32(r);
			list_add_tail(&l->queue, &w->link);
			list_add_tail(&s->waits, &w->slink);
			list_init(&w->plink);
			if (l->kind == LT_POSIX) {
				if (npw == cappw) {
					size_t cap = cappw ? cappw * 2 : 64;
					struct lt_waiter **np =
						realloc(pw, cap * sizeof(*np));

					if (!np) {
						err = -ENOMEM;
						goto out;
					}
					pw = np;
					cappw = cap;
				}
				pw[npw++] = w;
			}
			l->nwaiters++;
			s->nwaits++;
			n->nwaiters++;
			if (r->err || (w->mode != LT_SH && w->mode != LT_EX) ||
			    w->arrival == 0 || w->arrival > n->arrival ||
			    npw > n->lim.max_waiters)
				goto out;
		}
		if (l->nexcl > 1 || (l->nexcl && l->nshared))
			goto out;
		if (idle_seq) {
			if (nh || nw || ((!l->vv || !l->vv->n) && !token) ||
			    idle_seq > n->idle_seq)
				goto out;
			l->idle_seq = idle_seq;
			idle[nidle++] = l;
		} else if (!nh && !nw) {
			goto out;
		} else {
			n->nactive++;
		}
	}
	qsort(idle, nidle, sizeof(*idle), idle_cmp);
	for (i = 0; i < nidle; i++) {
		if (i && idle[i]->idle_seq == idle[i - 1]->idle_seq)
			goto out;
		list_add_tail(&n->idle, &idle[i]->idle);
		n->nidle++;
	}
	/* the POSIX waiters in arrival order, as before the snapshot */
	if (npw)
		qsort(pw, npw, sizeof(*pw), arrival_cmp);
	for (i = 0; i < npw; i++) {
		if (i && pw[i]->arrival == pw[i - 1]->arrival)
			goto out;
		list_add_tail(&n->pwaiters, &pw[i]->plink);
	}
	if (r->off != r->len || n->nidle > n->lim.max_idle)
		goto out;
	err = lt_check(n, NULL, 0) < 0 ? -EINVAL : 0;
out:
	free(idle);
	free(pw);
	return err;
}

int lt_restore(struct locktable *t, const void *buf, size_t len)
{
	struct rbuf r = { buf, len, 0, 0 };
	struct locktable *n = table_alloc(&t->lim);
	int err;

	if (!n)
		return -ENOMEM;
	err = buf ? restore_into(n, &r) : -EINVAL;
	if (err < 0) {
		lt_free(&n);
		return err;
	}
	table_clear(t);
	*t = *n;
	/* the lists' heads moved with the struct: relink them */
	if (list_empty(&n->idle)) {
		list_init(&t->idle);
	} else {
		t->idle.next->prev = &t->idle;
		t->idle.prev->next = &t->idle;
	}
	if (list_empty(&n->pwaiters)) {
		list_init(&t->pwaiters);
	} else {
		t->pwaiters.next->prev = &t->pwaiters;
		t->pwaiters.prev->next = &t->pwaiters;
	}
	free(n);
	return 0;
}

/* ---- reads ---- */

int lt_query(const struct locktable *t, enum lt_kind kind, const char *path,
	     struct lt_lockinfo *out)
{
	const struct lt_lockobj *l;
	const struct list *p;

	memset(out, 0, sizeof(*out));
	out->mode = LT_UNLOCKED;
	if (!path || !(l = lock_find(t, kind, path, strlen(path))))
		return -ENOENT;
	out->mode = l->nexcl ? LT_EX : l->nshared ? LT_SH : LT_UNLOCKED;
	out->token = l->token;
	out->waiters = l->nwaiters;
	vv_get(l, &out->vv);
	list_for(p, &l->holders) {
		const struct lt_holder *h =
			container_of(p, struct lt_holder, link);

		if (h->mode != out->mode)
			continue;
		if (!out->holders++) {
			out->session = h->s->id;
			out->owner = h->owner;
			out->pid = h->pid;
			memcpy(out->host, h->s->name, sizeof(out->host));
		}
	}
	return 0;
}

int lt_session(const struct locktable *t, uint64_t id,
	       struct lt_sessioninfo *out)
{
	const struct lt_session *s = session_find(t, id);

	memset(out, 0, sizeof(*out));
	if (!s)
		return -ENOENT;
	out->id = s->id;
	out->node = s->node;
	out->nonce = s->nonce;
	out->last_renew = s->last_renew;
	out->last_seq = s->last_seq;
	out->lease_ms = s->lease_ms;
	memcpy(out->name, s->name, sizeof(out->name));
	out->held = s->nholds;
	out->waiting = s->nwaits;
	return 0;
}

void lt_foreach_session(const struct locktable *t,
			void (*fn)(void *arg, const struct lt_sessioninfo *s),
			void *arg)
{
	struct lt_sessioninfo si;
	size_t i;

	for (i = 0; i < t->nsessions; i++)
		if (lt_session(t, t->sessions[i]->id, &si) == 0)
			fn(arg, &si);
}

void lt_stats(const struct locktable *t, struct lt_stats *out)
{
	out->sessions = t->nsessions;
	out->locks = t->nactive;
	out->idle = t->nidle;
	out->held_excl = t->nexcl;
	out->held_shared = t->nshared;
	out->waiters = t->nwaiters;
	out->grants = t->grants;
	out->contentions = t->contentions;
	out->orphans = t->orphans;
	out->cancels = t->cancels;
	out->expired = t->expired;
	out->clock = t->clock;
	out->token_high = t->token_high;
}

int lt_foreach(const struct locktable *t,
	       void (*fn)(void *arg, const struct lt_entry *e), void *arg)
{
	struct lt_lockobj **v = locks_sorted(t);
	size_t i;

	if (!v)
		return -ENOMEM;
	for (i = 0; i < t->nlocks_all; i++) {
		const struct lt_lockobj *l = v[i];
		struct lt_entry e = { .kind = l->kind, .path = l->path,
				      .token = l->token };
		const struct list *p;

		list_for(p, &l->holders) {
			const struct lt_holder *h =
				container_of(p, struct lt_holder, link);

			e.session = h->s->id;
			e.owner = h->owner;
			e.pid = h->pid;
			e.mode = h->mode;
			fn(arg, &e);
		}
		e.waiting = 1;
		list_for(p, &l->queue) {
			const struct lt_waiter *w =
				container_of(p, struct lt_waiter, link);

			e.session = w->s->id;
			e.owner = w->owner;
			e.seq = w->seq;
			e.pid = w->pid;
			e.mode = w->mode;
			fn(arg, &e);
		}
	}
	free(v);
	return 0;
}

static int fail(char *msg, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (msg && len) {
		va_start(ap, fmt);
		vsnprintf(msg, len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

struct check_sums {
	size_t active, idle, holders, waiters, nexcl, nshared;
};

/* Invariants (1)-(5) for one lock; adds its counts to *sum. */
static int check_lock(const struct locktable *t, const struct lt_lockobj *l,
		      struct check_sums *sum, char *msg, size_t msglen)
{
	const struct list *p, *q;
	unsigned ex = 0, sh = 0, nh = 0, nw = 0;

	list_for(p, &l->holders) {
		const struct lt_holder *h =
			container_of(p, struct lt_holder, link);

		nh++;
		if (h->mode == LT_EX)
			ex++;
		else if (h->mode == LT_SH)
			sh++;
		else
			return fail(msg, msglen, "bad mode");
		if (session_find(t, h->s->id) != h->s)
			return fail(msg, msglen, "holder of a dead session");
		for (q = p->next; q != &l->holders; q = q->next) {
			const struct lt_holder *h2 =
				container_of(q, struct lt_holder, link);

			if (h2->s == h->s && h2->owner == h->owner)
				return fail(msg, msglen, "%s: owner twice",
					    l->path);
		}
	}
	if (ex > 1 || (ex && sh))
		return fail(msg, msglen, "%s: %u exclusive, %u shared holders",
			    l->path, ex, sh);
	if (ex != l->nexcl || sh != l->nshared || nh != l->nholders)
		return fail(msg, msglen, "%s: counts", l->path);
	list_for(p, &l->queue) {
		const struct lt_waiter *w =
			container_of(p, struct lt_waiter, link);

		nw++;
		if (session_find(t, w->s->id) != w->s)
			return fail(msg, msglen, "waiter of a dead session");
		/* flock: only the head must not fit */
		if ((l->kind == LT_POSIX || nw == 1) &&
		    !conflicts(l, holder_find(l, w->s, w->owner), w->mode))
			return fail(msg, msglen, "%s: a waiter fits but waits",
				    l->path);
	}
	if (nw != l->nwaiters)
		return fail(msg, msglen, "%s: waiters", l->path);
	if (l->token > t->token_high)
		return fail(msg, msglen, "%s: token", l->path);
	if (l->idle_seq) {
		if (nh || nw || ((!l->vv || !l->vv->n) && !l->token))
			return fail(msg, msglen, "%s: idle", l->path);
		sum->idle++;
	} else {
		if (!nh && !nw)
			return fail(msg, msglen, "%s: empty, not idle",
				    l->path);
		sum->active++;
	}
	sum->holders += nh;
	sum->waiters += nw;
	sum->nexcl += ex;
	sum->nshared += sh;
	return 0;
}

int lt_check(const struct locktable *t, char *msg, size_t msglen)
{
	struct check_sums sum = { 0 };
	size_t i;

	for (i = 1; i < t->nsessions; i++)
		if (t->sessions[i - 1]->id >= t->sessions[i]->id)
			return fail(msg, msglen, "sessions out of order");
	for (i = 0; i <= t->mask; i++) {
		const struct lt_lockobj *l;

		for (l = t->buckets[i]; l; l = l->hnext)
			if (check_lock(t, l, &sum, msg, msglen) < 0)
				return -1;
	}
	if (sum.active != t->nactive || sum.idle != t->nidle ||
	    sum.holders != t->nholders || sum.waiters != t->nwaiters ||
	    sum.nexcl != t->nexcl || sum.nshared != t->nshared ||
	    sum.active + sum.idle != t->nlocks_all)
		return fail(msg, msglen, "table counts");
	if (sum.idle > t->lim.max_idle)
		return fail(msg, msglen, "too many idle locks");
	return 0;
}
