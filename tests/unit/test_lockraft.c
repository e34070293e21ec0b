/*
 * test_lockraft.c — the lock table replicated by libraft, under raft's
 * deterministic fixture (raft/fixture.h: in-memory I/O, simulated time).
 *
 * A seeded workload: clients (one session each, spread over the hosts)
 * submit commands at whichever node is the stable leader, one in flight
 * each, and retry the same bytes (same session and seq) whenever raft
 * cannot tell the outcome (RAFT_LEADERSHIPLOST, NOTLEADER...). A "lease
 * agent" proposes EXPIRE for sessions it sees idle past their lease.
 * Meanwhile faults: a node cut off from all, a saturated (dropping)
 * link, the leader killed and revived later, the leader deposed, heals.
 * Snapshots are taken every 64 entries, so lagging nodes get
 * InstallSnapshot and restore.
 *
 * Checked throughout, on every node, after every applied entry:
 *   - lt_check: never two exclusive holders (nor EX with SH), nothing
 *     grantable left waiting, counts consistent;
 *   - flock waiters are granted in arrival order: each node keeps the
 *     queue it has seen forming (QUEUED results, cancels, session ends)
 *     and every grant must take its head (POSIX: any waiter, by design);
 *   - tokens only grow: an exclusive grant's token is above every token
 *     the node issued before, and token_high never goes back;
 *   - no client ever gets STALE or MALFORMED;
 * every 100 steps: nodes that applied the same index have tables that
 * encode to the same bytes; at the end, after healing and a barrier,
 * every node's table encodes to the same bytes and survives
 * encode/restore/encode unchanged.
 *
 *   test_lockraft [--seeds N] [--seed S] [--verbose]
 * The default (300 seeds, half with 3 voters, half with 5, and the
 * regression seeds, regress_seeds below) takes about
 * 5 s; under ASan+UBSan 60 seeds, about 25 s. --no-guard runs without
 * repl/raftguard.c to show libraft 0.15's commit bug (seed 47).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>

#include "repl/lockfsm.h"
#include "repl/raftguard.h"

#define NPATHS 4
#define NCLIENTS 8
#define QMAX 512
#define LEASE_MS 3000
#define RUN_MS 60000          /* simulated time of the workload phase */

/* Sanitizers slow the run about 15 times: fewer seeds by default there. */
#if defined(__SANITIZE_ADDRESS__)
#define DEFAULT_SEEDS 60
#else
#define DEFAULT_SEEDS 300
#endif

static unsigned opt_seeds = DEFAULT_SEEDS, opt_seed, opt_verbose, opt_no_guard;

static const char *const paths[NPATHS] = { "/p0", "/p1", "/p2", "/p3" };

/* ---- per-node model of the flock/POSIX queues ---- */

struct qent {
	uint64_t session, seq;
};

struct queue {
	struct qent e[QMAX];
	unsigned n;
};

struct world;

struct node {
	struct raft_fsm fsm;       /* forwards to lf, then checks */
	struct lockfsm lf;
	struct world *w;
	unsigned i;
	struct queue q[2][NPATHS]; /* [kind][path] */
	uint64_t max_token, token_high;
	uint64_t lock_token[2][NPATHS];  /* last exclusive token per lock */
	/* the truncate shim (see "libraft 0.15 fixture bug") */
	int (*io_truncate)(struct raft_io *io, raft_index index);
	int (*io_snapshot_put)(struct raft_io *io, unsigned trailing,
			       struct raft_io_snapshot_put *req,
			       const struct raft_snapshot *snapshot,
			       raft_io_snapshot_put_cb cb);
	int (*io_append)(struct raft_io *io, struct raft_io_append *req,
			 const struct raft_entry entries[], unsigned n,
			 raft_io_append_cb cb);
	raft_index io_base, install_index;
	size_t io_stored;          /* entries in the fixture's array */
	int installing;
};

struct client {
	unsigned host;             /* its node id in OPEN_SESSION */
	uint64_t nonce, session, seq;
	int open;                  /* has a session */
	int inflight, retry;
	void *bytes;
	size_t len;
	enum lt_cmd_type type;
	uint64_t wake;             /* fixture time of its next command */
	/* a loose view, only to pick useful commands */
	struct { int kind, path; uint64_t owner, seq; } waits[8];
	unsigned nwaits;
	struct { int kind, path; uint64_t owner; } held[8];
	unsigned nheld;
};

struct figures {
	uint64_t seeds, results, dup, applied, elections, snapshots;
	uint64_t restores, partitions, saturations, kills, deposes, expires;
	uint64_t grants_notified, codes[LT_GAP + 1];
};

struct world {
	uint64_t rng;
	unsigned seed, n;
	struct raft_fixture *f;
	struct node nodes[RAFT_FIXTURE_MAX_SERVERS];
	struct client c[NCLIENTS];
	int closing, expire_inflight;
	int killed[RAFT_FIXTURE_MAX_SERVERS];
	/* the fixture asserts a link is connected before it saturates or
	 * desaturates it (kill and revive do both), so track links */
	int cut[RAFT_FIXTURE_MAX_SERVERS][RAFT_FIXTURE_MAX_SERVERS];
	int impaired;              /* some fault active */
	uint64_t *entry_hash;      /* by log index: what the first node
				    * applied there (0: nobody yet) */
	size_t nhash;
	struct figures fig;
};

static struct figures total;

static uint64_t rnd(struct world *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

static unsigned rndn(struct world *w, unsigned n)
{
	return (unsigned)(rnd(w) % n);
}

#define FAILW(w, ...) \
	fail_msg("seed %u: %s", (w)->seed, fmt_msg(__VA_ARGS__))

static const char *fmt_msg(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static const char *fmt_msg(const char *fmt, ...)
{
	static char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return buf;
}

static int path_index(const char *p, size_t n)
{
	if (n != 3 || p[0] != '/' || p[1] != 'p' || p[2] < '0' ||
	    p[2] >= '0' + NPATHS)
		return -1;
	return p[2] - '0';
}

static void q_remove_at(struct queue *q, unsigned i)
{
	memmove(&q->e[i], &q->e[i + 1], (q->n - i - 1) * sizeof(q->e[0]));
	q->n--;
}

static void q_remove_session(struct node *nd, uint64_t session)
{
	unsigned k, p, i;

	for (k = 0; k < 2; k++)
		for (p = 0; p < NPATHS; p++)
			for (i = 0; i < nd->q[k][p].n;)
				if (nd->q[k][p].e[i].session == session)
					q_remove_at(&nd->q[k][p], i);
				else
					i++;
}

/* A grant must take the head of a flock queue; any entry of a POSIX
 * one. */
static void model_grant(struct node *nd, const struct lt_grant *g)
{
	int p = path_index(g->path, strlen(g->path));
	struct queue *q;
	unsigned i;

	if (p < 0)
		FAILW(nd->w, "grant of an unknown path %s", g->path);
	q = &nd->q[g->kind][p];
	for (i = 0; i < q->n; i++)
		if (q->e[i].session == g->session && q->e[i].seq == g->seq)
			break;
	if (i == q->n)
		FAILW(nd->w, "node %u: granted a waiter it never queued "
			     "(session %llu seq %llu)", nd->i,
		      (unsigned long long)g->session,
		      (unsigned long long)g->seq);
	if (g->kind == LT_FLOCK && i != 0)
		FAILW(nd->w, "node %u: flock %s granted waiter %u of %u, "
			     "not the head", nd->i, g->path, i, q->n);
	q_remove_at(q, i);
	if (g->mode == LT_EX) {
		if (g->token <= nd->max_token)
			FAILW(nd->w, "node %u: token %llu after %llu", nd->i,
			      (unsigned long long)g->token,
			      (unsigned long long)nd->max_token);
		nd->max_token = g->token;
		nd->lock_token[g->kind][p] = g->token;
	} else if (g->token != nd->lock_token[g->kind][p]) {
		FAILW(nd->w, "node %u: a shared grant shows token %llu, the "
			     "lock's last is %llu", nd->i,
		      (unsigned long long)g->token,
		      (unsigned long long)nd->lock_token[g->kind][p]);
	}
}

static void node_check(struct node *nd, const struct lt_cmd *c,
		       int decoded, const struct lt_result *r)
{
	struct lt_stats st;
	char msg[256];
	size_t i;
	int p;

	if (lt_check(nd->lf.table, msg, sizeof(msg)) < 0)
		FAILW(nd->w, "node %u: %s", nd->i, msg);
	lt_stats(nd->lf.table, &st);
	if (st.token_high < nd->token_high)
		FAILW(nd->w, "node %u: token_high went back", nd->i);
	nd->token_high = st.token_high;
	if (!decoded || r->dup)
		return;
	/* removals first (the table removes, then grants), then grants,
	 * then the request itself queues */
	if (c->type == LT_CANCEL && r->code == LT_OK) {
		struct queue *q =
			&nd->q[c->kind][path_index(c->path, c->pathlen)];

		for (i = 0; i < q->n; i++)
			if (q->e[i].session == c->session &&
			    q->e[i].seq == c->target_seq)
				break;
		if (i == q->n)
			FAILW(nd->w, "node %u: cancelled an unknown waiter",
			      nd->i);
		q_remove_at(q, (unsigned)i);
	}
	if (c->type == LT_EXPIRE && r->code == LT_OK)
		q_remove_session(nd, c->target);
	if (c->type == LT_CLOSE_SESSION && r->code == LT_OK)
		q_remove_session(nd, c->session);
	for (i = 0; i < r->ngrants; i++)
		model_grant(nd, &r->grants[i]);
	if (c->type == LT_ACQUIRE && r->code == LT_GRANTED) {
		uint64_t *lt;

		p = path_index(c->path, c->pathlen);
		lt = &nd->lock_token[c->kind][p];
		if (r->token > nd->max_token && c->mode == LT_EX) {
			/* a new exclusive grant: above every earlier token */
			nd->max_token = r->token;
			*lt = r->token;
		} else if (r->token != *lt) {
			/* already held, or shared: the lock's last token */
			FAILW(nd->w, "node %u: granted %s with token %llu, the "
				     "lock's last is %llu (max %llu)", nd->i,
			      c->mode == LT_EX ? "EX" : "SH",
			      (unsigned long long)r->token,
			      (unsigned long long)*lt,
			      (unsigned long long)nd->max_token);
		}
	}
	if (c->type == LT_ACQUIRE && r->code == LT_QUEUED) {
		struct queue *q;

		p = path_index(c->path, c->pathlen);
		q = &nd->q[c->kind][p];
		if (q->n == QMAX)
			FAILW(nd->w, "model queue full");
		q->e[q->n].session = c->session;
		q->e[q->n++].seq = c->seq;
	}
}

/* State Machine Safety: every node applies the same entry at an index. */
static void entry_applied(struct node *nd, const struct raft_buffer *buf)
{
	struct world *w = nd->w;
	raft_index idx =
		raft_last_applied(raft_fixture_get(w->f, nd->i)) + 1;
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < buf->len; i++) {
		h ^= ((const unsigned char *)buf->base)[i];
		h *= 0x100000001b3ULL;
	}
	h |= 1;
	if (idx >= w->nhash) {
		size_t n = w->nhash ? w->nhash : 1024;

		while (n <= idx)
			n *= 2;
		w->entry_hash = realloc(w->entry_hash, n * sizeof(uint64_t));
		memset(w->entry_hash + w->nhash, 0,
		       (n - w->nhash) * sizeof(uint64_t));
		w->nhash = n;
	}
	if (!w->entry_hash[idx])
		w->entry_hash[idx] = h;
	else if (w->entry_hash[idx] != h)
		FAILW(w, "node %u applied another entry at index %llu than "
			 "a node before it (state machine safety)", nd->i,
		      (unsigned long long)idx);
}

static int node_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
		      void **result)
{
	struct node *nd = fsm->data;
	const struct lt_result *r;
	struct lt_cmd *c = malloc(sizeof(*c));
	int rv, decoded;

	if (buf->len % 8)
		FAILW(nd->w, "an entry of %zu bytes reached apply", buf->len);
	decoded = lt_cmd_decode(buf->base, buf->len, c) == 0;
	entry_applied(nd, buf);
	rv = nd->lf.fsm.apply(&nd->lf.fsm, buf, result);
	if (rv != 0)
		FAILW(nd->w, "apply returned %d", rv);
	r = *result;
	node_check(nd, c, decoded, r);
	free(c);
	return 0;
}

static int node_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
			 unsigned *n_bufs)
{
	struct node *nd = fsm->data;

	return nd->lf.fsm.snapshot(&nd->lf.fsm, bufs, n_bufs);
}

/* Rebuild the queue model from the restored table. */
static void model_entry(void *arg, const struct lt_entry *e)
{
	struct node *nd = arg;
	struct queue *q;

	if (!e->waiting)
		return;
	q = &nd->q[e->kind][path_index(e->path, strlen(e->path))];
	q->e[q->n].session = e->session;
	q->e[q->n++].seq = e->seq;
}

static int node_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct node *nd = fsm->data;
	struct lt_stats st;
	int rv = nd->lf.fsm.restore(&nd->lf.fsm, buf);
	unsigned k, p;

	if (rv != 0)
		FAILW(nd->w, "node %u: restore failed: %d", nd->i, rv);
	memset(nd->q, 0, sizeof(nd->q));
	lt_foreach(nd->lf.table, model_entry, nd);
	for (k = 0; k < 2; k++)
		for (p = 0; p < NPATHS; p++) {
			struct lt_lockinfo li;

			lt_query(nd->lf.table, k, paths[p], &li);
			nd->lock_token[k][p] = li.token;
		}
	lt_stats(nd->lf.table, &st);
	if (st.token_high < nd->token_high)
		FAILW(nd->w, "node %u: a restore sent token_high back", nd->i);
	nd->token_high = st.token_high;
	if (st.token_high > nd->max_token)
		nd->max_token = st.token_high;
	return 0;
}

/* ---- libraft 0.15 fixture bug ----
 *
 * The fixture's in-memory disk keeps a node's entries in an array that
 * starts at index 1. When the node installs a snapshot from the leader
 * (snapshot_put with trailing 0) the fixture empties that array, after
 * which it holds entries from snapshot index + 1, but ioMethodTruncate
 * still keeps the first (index - 1) array slots: the next truncation of
 * conflicting entries on that node reads past the array (heap overflow
 * under ASan; "double free or corruption" with Debian's build).
 * Second, raft may truncate while appends to the same node are still in
 * flight (libuv's raft_io queues the truncation behind them); the fixture
 * truncates at once, so it can be asked to keep more entries than it has
 * stored yet. Both are still so in canonical/raft's last release.
 *
 * The shim below tracks where the array starts and how many entries it
 * holds (counted when the fixture completes an append), translates the
 * index and never asks to keep more than is stored. The fixture's disk
 * content only matters to a restart, which the fixture never does; the
 * shim is test-only and does not touch raft's own logic.
 */
static struct world *cur_world;

#define SHIM_APPENDS 4096

static struct shim_append {
	struct raft_io_append *req;
	raft_io_append_cb cb;
	struct node *nd;
	unsigned n;
} shim_appends[SHIM_APPENDS];

static struct node *node_of_io(struct raft_io *io)
{
	unsigned i;

	for (i = 0; i < cur_world->n; i++)
		if (&cur_world->f->servers[i].io == io)
			return &cur_world->nodes[i];
	fail_msg("unknown raft_io");
	return NULL;
}

static int shim_truncate(struct raft_io *io, raft_index index)
{
	struct node *nd = node_of_io(io);
	size_t keep;
	int rv;

	if (nd->installing && index == 1) {
		/* the fixture flushing an installed snapshot */
		rv = nd->io_truncate(io, 1);
		nd->io_base = nd->install_index + 1;
		nd->io_stored = 0;
		nd->installing = 0;
		return rv;
	}
	if (index < nd->io_base)
		FAILW(nd->w, "node %u: truncate at %llu below the snapshot",
		      nd->i, (unsigned long long)index);
	keep = (size_t)(index - nd->io_base);
	if (keep > nd->io_stored)
		keep = nd->io_stored;
	rv = nd->io_truncate(io, keep + 1);
	if (rv == 0)
		nd->io_stored = keep;
	return rv;
}

static void shim_append_cb(struct raft_io_append *req, int status)
{
	unsigned i;

	for (i = 0; i < SHIM_APPENDS; i++) {
		struct shim_append *a = &shim_appends[i];
		raft_io_append_cb cb;

		if (a->req != req)
			continue;
		if (status == 0)
			a->nd->io_stored += a->n;
		cb = a->cb;
		a->req = NULL;
		req->cb = cb;
		if (cb)
			cb(req, status);
		return;
	}
	fail_msg("an append completed that the shim never saw");
}

static int shim_append(struct raft_io *io, struct raft_io_append *req,
		       const struct raft_entry entries[], unsigned n,
		       raft_io_append_cb cb)
{
	struct node *nd = node_of_io(io);
	unsigned i;
	int rv;

	for (i = 0; i < SHIM_APPENDS && shim_appends[i].req; i++)
		;
	if (i == SHIM_APPENDS)
		FAILW(nd->w, "too many appends in flight");
	shim_appends[i].req = req;
	shim_appends[i].cb = cb;
	shim_appends[i].nd = nd;
	shim_appends[i].n = n;
	rv = nd->io_append(io, req, entries, n, shim_append_cb);
	if (rv != 0)
		shim_appends[i].req = NULL;
	return rv;
}

static int shim_snapshot_put(struct raft_io *io, unsigned trailing,
			     struct raft_io_snapshot_put *req,
			     const struct raft_snapshot *snapshot,
			     raft_io_snapshot_put_cb cb)
{
	struct node *nd = node_of_io(io);

	if (trailing == 0) {
		nd->installing = 1;
		nd->install_index = snapshot->index;
	}
	return nd->io_snapshot_put(io, trailing, req, snapshot, cb);
}

/* ---- clients ---- */

struct req {
	struct raft_apply a;
	struct world *w;
	int client;  /* -1: the lease agent */
};

static void client_forget(struct client *c)
{
	c->open = 0;
	c->nwaits = c->nheld = 0;
}

static void client_result(struct world *w, struct client *c,
			  const struct lt_result *r)
{
	struct lt_cmd cmd;
	size_t i;
	unsigned k;

	w->fig.results++;
	w->fig.dup += r->dup;
	if (r->code <= LT_GAP)
		w->fig.codes[r->code]++;
	if (r->code == LT_STALE || r->code == LT_MALFORMED ||
	    r->code == LT_GAP)
		FAILW(w, "a client got %s", lt_code_name(r->code));
	if (lt_cmd_decode(c->bytes, c->len, &cmd) < 0)
		FAILW(w, "client bytes do not decode");
	switch (cmd.type) {
	case LT_OPEN_SESSION:
		if (r->code == LT_OK) {
			c->session = r->session;
			c->seq = 1;
			c->open = 1;
		}
		break;
	case LT_KEEPALIVE:
	case LT_ACQUIRE:
		if (r->code == LT_NOT_FOUND) {
			client_forget(c);  /* expired: open a new session */
			break;
		}
		if (cmd.type != LT_ACQUIRE)
			break;
		k = (unsigned)path_index(cmd.path, cmd.pathlen);
		if (r->code == LT_QUEUED && c->nwaits < 8) {
			c->waits[c->nwaits].kind = cmd.kind;
			c->waits[c->nwaits].path = (int)k;
			c->waits[c->nwaits].owner = cmd.owner;
			c->waits[c->nwaits++].seq = cmd.seq;
		}
		if (r->code == LT_GRANTED && c->nheld < 8) {
			c->held[c->nheld].kind = cmd.kind;
			c->held[c->nheld].path = (int)k;
			c->held[c->nheld++].owner = cmd.owner;
		}
		break;
	case LT_CLOSE_SESSION:
		client_forget(c);
		break;
	default:
		break;
	}
	/* grant notices: the leader tells the waiters' clients */
	for (i = 0; i < r->ngrants; i++) {
		const struct lt_grant *g = &r->grants[i];

		for (k = 0; k < NCLIENTS; k++) {
			struct client *o = &w->c[k];
			unsigned j;

			if (!o->open || o->session != g->session)
				continue;
			w->fig.grants_notified++;
			for (j = 0; j < o->nwaits; j++)
				if (o->waits[j].seq == g->seq) {
					if (o->nheld < 8) {
						o->held[o->nheld].kind =
							o->waits[j].kind;
						o->held[o->nheld].path =
							o->waits[j].path;
						o->held[o->nheld++].owner =
							o->waits[j].owner;
					}
					o->waits[j] = o->waits[--o->nwaits];
					break;
				}
		}
	}
}

static void apply_cb(struct raft_apply *a, int status, void *result)
{
	struct req *rq = a->data;
	struct world *w = rq->w;

	if (rq->client < 0) {
		w->expire_inflight = 0;
		if (status == 0 &&
		    ((const struct lt_result *)result)->code == LT_OK)
			w->fig.expires++;
	} else {
		struct client *c = &w->c[rq->client];

		c->inflight = 0;
		if (status == 0 && !w->closing) {
			client_result(w, c, result);
			free(c->bytes);
			c->bytes = NULL;
			/* mostly busy; now and then silent past its lease */
			c->wake = raft_fixture_time(w->f) +
				  (rndn(w, 100) < 4 ? 2000 + rndn(w, 5000) :
						      rndn(w, 600));
		} else {
			c->retry = 1;  /* unknown outcome: the same bytes */
		}
	}
	free(rq);
}

static int propose(struct world *w, int client, const void *bytes,
		   size_t len)
{
	unsigned li = raft_fixture_leader_index(w->f);
	struct raft_buffer buf;
	struct req *rq;
	int rv;

	if (li >= w->n || w->killed[li])
		return -1;
	if (len % 8)
		FAILW(w, "a proposal of %zu bytes", len);
	buf.base = raft_malloc(len);
	buf.len = len;
	memcpy(buf.base, bytes, len);
	rq = calloc(1, sizeof(*rq));
	rq->w = w;
	rq->client = client;
	rq->a.data = rq;
	rv = raft_apply(raft_fixture_get(w->f, li), &rq->a, &buf, 1, apply_cb);
	if (rv != 0) {
		raft_free(buf.base);
		free(rq);
		return -1;
	}
	return 0;
}

static void client_next(struct world *w, struct client *c)
{
	struct lt_cmd cmd = { .now = raft_fixture_time(w->f) };
	unsigned x = rndn(w, 100);

	if (!c->open) {
		cmd.type = LT_OPEN_SESSION;
		cmd.seq = 1;
		cmd.node = c->host;
		cmd.nonce = ++c->nonce;
		cmd.lease_ms = LEASE_MS;
		cmd.name = "host";
		cmd.namelen = 4;
	} else {
		cmd.session = c->session;
		cmd.seq = ++c->seq;
		if (x < 45) {
			cmd.type = LT_ACQUIRE;
			cmd.kind = rndn(w, 4) == 0 ? LT_POSIX : LT_FLOCK;
			cmd.mode = rndn(w, 2) ? LT_EX : LT_SH;
			cmd.wait = (int)rndn(w, 2);
			cmd.path = paths[rndn(w, NPATHS)];
			cmd.owner = 1 + rndn(w, 3);
			cmd.pid = (uint32_t)(100 + cmd.owner);
		} else if (x < 75) {
			cmd.type = LT_RELEASE;
			if (c->nheld && rndn(w, 10)) {
				unsigned k = rndn(w, c->nheld);

				cmd.kind = c->held[k].kind;
				cmd.path = paths[c->held[k].path];
				cmd.owner = c->held[k].owner;
				c->held[k] = c->held[--c->nheld];
			} else {
				cmd.kind = rndn(w, 4) ? LT_FLOCK : LT_POSIX;
				cmd.path = paths[rndn(w, NPATHS)];
				cmd.owner = 1 + rndn(w, 3);
			}
			cmd.vv.n = 1 + rndn(w, 2);
			cmd.vv.e[0].node = 1 + rndn(w, 2);
			cmd.vv.e[0].seq = 1 + rnd(w) % 1000;
			cmd.vv.e[1].node = 3 + rndn(w, 2);
			cmd.vv.e[1].seq = 1 + rnd(w) % 1000;
		} else if (x < 85 && c->nwaits) {
			unsigned k = rndn(w, c->nwaits);

			cmd.type = LT_CANCEL;
			cmd.kind = c->waits[k].kind;
			cmd.path = paths[c->waits[k].path];
			cmd.owner = c->waits[k].owner;
			cmd.target_seq = c->waits[k].seq;
			c->waits[k] = c->waits[--c->nwaits];
		} else if (x < 97) {
			cmd.type = LT_KEEPALIVE;
		} else {
			cmd.type = LT_CLOSE_SESSION;
		}
		if (cmd.path)
			cmd.pathlen = 3;
	}
	c->len = lt_cmd_size(&cmd);
	if (!c->len)
		FAILW(w, "the workload built an invalid command");
	c->bytes = malloc(c->len);
	if (lt_cmd_encode(&cmd, c->bytes, c->len) < 0)
		FAILW(w, "encode failed");
	c->type = cmd.type;
	c->retry = 1;
}

static void clients_step(struct world *w, int new_commands)
{
	uint64_t now = raft_fixture_time(w->f);
	unsigned k;

	for (k = 0; k < NCLIENTS; k++) {
		struct client *c = &w->c[k];

		if (c->inflight)
			continue;
		if (!c->retry) {
			if (!new_commands || now < c->wake)
				continue;
			client_next(w, c);
		}
		if (propose(w, (int)k, c->bytes, c->len) == 0) {
			c->inflight = 1;
			c->retry = 0;
		}
	}
}

/* The lease agent: on the leader, a session idle past its lease gets an
 * EXPIRE carrying the renewal stamp the leader saw. */
static void lease_agent(struct world *w)
{
	unsigned li = raft_fixture_leader_index(w->f), k;
	uint64_t now = raft_fixture_time(w->f);

	if (w->expire_inflight || li >= w->n || w->killed[li])
		return;
	for (k = 0; k < NCLIENTS; k++) {
		struct lt_sessioninfo si;
		struct lt_cmd cmd = { .type = LT_EXPIRE, .now = now };
		unsigned char buf[64];
		size_t len;

		if (!w->c[k].open ||
		    lt_session(w->nodes[li].lf.table, w->c[k].session, &si) < 0)
			continue;
		if (now < si.last_renew + si.lease_ms)
			continue;
		cmd.target = si.id;
		cmd.renew = si.last_renew;
		len = lt_cmd_size(&cmd);
		lt_cmd_encode(&cmd, buf, len);
		if (propose(w, -1, buf, len) == 0)
			w->expire_inflight = 1;
		return;
	}
}

/* ---- faults ---- */

/* Reconnect every link, then revive the dead (revive desaturates their
 * links, which must be connected by then), then desaturate the rest. */
static void heal(struct world *w)
{
	unsigned i, j;

	for (i = 0; i < w->n; i++)
		for (j = 0; j < w->n; j++)
			if (i != j && w->cut[i][j]) {
				raft_fixture_reconnect(w->f, i, j);
				w->cut[i][j] = 0;
			}
	for (i = 0; i < w->n; i++) {
		if (w->killed[i]) {
			raft_fixture_revive(w->f, i);
			w->killed[i] = 0;
		}
	}
	for (i = 0; i < w->n; i++)
		for (j = 0; j < w->n; j++)
			if (i != j && raft_fixture_saturated(w->f, i, j))
				raft_fixture_desaturate(w->f, i, j);
	w->impaired = 0;
}

static int any_cut(struct world *w, unsigned v)
{
	unsigned i;

	for (i = 0; i < w->n; i++)
		if (w->cut[v][i] || w->cut[i][v])
			return 1;
	return 0;
}

static void fault(struct world *w)
{
	unsigned x = rndn(w, 100), i, li = raft_fixture_leader_index(w->f);

	if (x < 25) {
		unsigned v = rndn(w, w->n);

		for (i = 0; i < w->n; i++)
			if (i != v) {
				raft_fixture_disconnect(w->f, v, i);
				raft_fixture_disconnect(w->f, i, v);
				w->cut[v][i] = w->cut[i][v] = 1;
			}
		w->fig.partitions++;
		w->impaired = 1;
	} else if (x < 45) {
		unsigned a = rndn(w, w->n), b = rndn(w, w->n);

		if (a != b && !w->cut[a][b] && !w->killed[a] && !w->killed[b]) {
			raft_fixture_saturate(w->f, a, b);
			w->fig.saturations++;
			w->impaired = 1;
		}
	} else if (x < 55) {
		if (li < w->n && !w->killed[li] && !any_cut(w, li)) {
			raft_fixture_kill(w->f, li);
			w->killed[li] = 1;
			w->fig.kills++;
			w->impaired = 1;
		}
	} else if (x < 65) {
		if (!w->impaired && li < w->n &&
		    raft_state(raft_fixture_get(w->f, li)) == RAFT_LEADER) {
			raft_fixture_depose(w->f);
			w->fig.deposes++;
		}
	} else {
		heal(w);
	}
}

/* ---- the run ---- */

static void compare_nodes(struct world *w, int all)
{
	void *img[RAFT_FIXTURE_MAX_SERVERS];
	size_t len[RAFT_FIXTURE_MAX_SERVERS];
	raft_index idx[RAFT_FIXTURE_MAX_SERVERS];
	unsigned i, j;

	for (i = 0; i < w->n; i++) {
		idx[i] = raft_last_applied(raft_fixture_get(w->f, i));
		if (lt_encode(w->nodes[i].lf.table, &img[i], &len[i]) < 0)
			FAILW(w, "encode failed");
	}
	for (i = 0; i < w->n; i++)
		for (j = i + 1; j < w->n; j++) {
			if (!all && idx[i] != idx[j])
				continue;
			if (all && idx[i] != idx[j])
				FAILW(w, "nodes %u and %u applied %llu, %llu",
				      i, j, idx[i], idx[j]);
			if (len[i] != len[j] || memcmp(img[i], img[j], len[i]))
				FAILW(w, "nodes %u and %u applied %llu "
					 "entries, their tables differ",
				      i, j, idx[i]);
		}
	for (i = 0; i < w->n; i++)
		free(img[i]);
}

static void roundtrip(struct world *w, struct node *nd)
{
	struct locktable *t = lt_new(NULL);
	void *a, *b;
	size_t la, lb;

	if (lt_encode(nd->lf.table, &a, &la) < 0 ||
	    lt_restore(t, a, la) < 0 || lt_encode(t, &b, &lb) < 0)
		FAILW(w, "node %u: snapshot round trip failed", nd->i);
	if (la != lb || memcmp(a, b, la))
		FAILW(w, "node %u: encode(restore(encode)) differs", nd->i);
	free(a);
	free(b);
	lt_free(&t);
}

static int barrier_done;

static void barrier_cb(struct raft_barrier *req, int status)
{
	barrier_done = status == 0 ? 1 : -1;
	free(req);
}

static void dump(struct world *w)
{
	unsigned i;

	for (i = 0; i < w->n; i++) {
		struct raft *r = raft_fixture_get(w->f, i);

		fprintf(stderr, "node %u: state %d term %llu last %llu commit "
				"%llu applied %llu killed %d\n", i,
			raft_state(r), r->current_term, raft_last_index(r),
			r->commit_index, raft_last_applied(r), w->killed[i]);
	}
	for (i = 0; i < NCLIENTS; i++)
		fprintf(stderr, "client %u: inflight %d retry %d type %d "
				"session %llu seq %llu\n", i, w->c[i].inflight,
			w->c[i].retry, w->c[i].type,
			(unsigned long long)w->c[i].session,
			(unsigned long long)w->c[i].seq);
	fprintf(stderr, "leader index %u, expire in flight %d, time %llu\n",
		raft_fixture_leader_index(w->f), w->expire_inflight,
		(unsigned long long)raft_fixture_time(w->f));
}

static int clients_idle(struct world *w)
{
	unsigned k;

	for (k = 0; k < NCLIENTS; k++)
		if (w->c[k].inflight || w->c[k].retry)
			return 0;
	return !w->expire_inflight;
}

static void run_seed(unsigned seed, unsigned n)
{
	struct world *w = calloc(1, sizeof(*w));
	struct raft_configuration conf;
	raft_id last_leader = 0;
	uint64_t next_fault, steps = 0, index;
	unsigned i, tries;

	w->seed = seed;
	w->n = n;
	cur_world = w;
	w->rng = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)seed * 0x100000001b3ULL);
	rnd(w);
	w->f = calloc(1, sizeof(*w->f));
	assert_int_equal(raft_fixture_initialize(w->f), 0);
	for (i = 0; i < n; i++) {
		struct node *nd = &w->nodes[i];

		assert_int_equal(lockfsm_init(&nd->lf, NULL), 0);
		nd->w = w;
		nd->i = i;
		nd->fsm.version = 1;
		nd->fsm.data = nd;
		nd->fsm.apply = node_apply;
		nd->fsm.snapshot = node_snapshot;
		nd->fsm.restore = node_restore;
		assert_int_equal(raft_fixture_grow(w->f, &nd->fsm), 0);
		nd->io_truncate = w->f->servers[i].io.truncate;
		nd->io_snapshot_put = w->f->servers[i].io.snapshot_put;
		nd->io_append = w->f->servers[i].io.append;
		nd->io_base = 1;
		w->f->servers[i].io.append = shim_append;
		w->f->servers[i].io.truncate = shim_truncate;
		w->f->servers[i].io.snapshot_put = shim_snapshot_put;
		if (!opt_no_guard)
			assert_int_equal(
				raftguard_wrap(&w->f->servers[i].io), 0);
	}
	for (i = 0; i < n; i++) {
		struct raft *r = raft_fixture_get(w->f, i);

		raft_set_pre_vote(r, true);
		raft_set_snapshot_threshold(r, 64);
		raft_set_snapshot_trailing(r, 16);
		raft_set_install_snapshot_timeout(r,
						  LOCKFSM_SNAPSHOT_RESEND_MS);
	}
	assert_int_equal(raft_fixture_configuration(w->f, n, &conf), 0);
	assert_int_equal(raft_fixture_bootstrap(w->f, &conf), 0);
	raft_configuration_close(&conf);
	assert_int_equal(raft_fixture_start(w->f), 0);
	for (i = 0; i < NCLIENTS; i++) {
		w->c[i].host = 1 + i % n;
		w->c[i].nonce = (uint64_t)i << 32;
	}

	next_fault = 2000;
	while (raft_fixture_time(w->f) < RUN_MS) {
		raft_fixture_step(w->f);
		steps++;
		for (i = 0; i < n; i++)
			if (raft_state(raft_fixture_get(w->f, i)) ==
			    RAFT_UNAVAILABLE)
				FAILW(w, "libraft shut node %u down", i);
		if (w->f->leader_id && w->f->leader_id != last_leader)
			w->fig.elections++;
		if (w->f->leader_id)
			last_leader = w->f->leader_id;
		clients_step(w, 1);
		if (steps % 50 == 0)
			lease_agent(w);
		if (steps % 100 == 0)
			compare_nodes(w, 0);
		if (raft_fixture_time(w->f) >= next_fault) {
			fault(w);
			next_fault = raft_fixture_time(w->f) + 300 +
				     rndn(w, 1500);
		}
	}

	/* heal, let every client finish (retrying), then a barrier so the
	 * leader's table is current, then every node catches up */
	heal(w);
	for (tries = 0; tries < 400000 && !clients_idle(w); tries++) {
		raft_fixture_step(w->f);
		clients_step(w, 0);
	}
	if (!clients_idle(w)) {
		dump(w);
		FAILW(w, "clients did not finish after healing");
	}
	barrier_done = 0;
	for (tries = 0; barrier_done != 1 && tries < 100; tries++) {
		unsigned li;
		struct raft_barrier *b;

		barrier_done = 0;
		if (!raft_fixture_step_until_has_leader(w->f, 10000))
			FAILW(w, "no leader after healing");
		li = raft_fixture_leader_index(w->f);
		b = calloc(1, sizeof(*b));
		if (raft_barrier(raft_fixture_get(w->f, li), b, barrier_cb)) {
			free(b);
			raft_fixture_step(w->f);
			continue;
		}
		while (!barrier_done)
			raft_fixture_step(w->f);
	}
	if (barrier_done != 1)
		FAILW(w, "no barrier committed");
	index = raft_last_applied(
		raft_fixture_get(w->f, raft_fixture_leader_index(w->f)));
	if (!raft_fixture_step_until_applied(w->f, n, index, 20000))
		FAILW(w, "not every node applied %llu",
		      (unsigned long long)index);
	/* followers may have applied later entries (none are proposed) */
	compare_nodes(w, 1);
	for (i = 0; i < n; i++)
		roundtrip(w, &w->nodes[i]);

	for (i = 0; i < n; i++) {
		w->fig.applied += w->nodes[i].lf.applied;
		w->fig.snapshots += w->nodes[i].lf.snapshots;
		w->fig.restores += w->nodes[i].lf.restores;
		if (w->nodes[i].lf.malformed)
			FAILW(w, "a malformed entry was committed");
	}
	if (opt_verbose)
		printf("seed %u (%u voters): %llu steps, %llu results, "
		       "%llu elections, %llu restores, index %llu\n",
		       seed, n, (unsigned long long)steps,
		       (unsigned long long)w->fig.results,
		       (unsigned long long)w->fig.elections,
		       (unsigned long long)w->fig.restores,
		       (unsigned long long)index);

	w->closing = 1;
	raft_fixture_close(w->f);
	for (i = 0; i < n; i++) {
		raftguard_unwrap(&w->f->servers[i].io);
		lockfsm_close(&w->nodes[i].lf);
	}
	for (i = 0; i < NCLIENTS; i++)
		free(w->c[i].bytes);
	total.seeds++;
	total.results += w->fig.results;
	total.dup += w->fig.dup;
	total.applied += w->fig.applied;
	total.elections += w->fig.elections;
	total.snapshots += w->fig.snapshots;
	total.restores += w->fig.restores;
	total.partitions += w->fig.partitions;
	total.saturations += w->fig.saturations;
	total.kills += w->fig.kills;
	total.deposes += w->fig.deposes;
	total.expires += w->fig.expires;
	total.grants_notified += w->fig.grants_notified;
	for (i = 0; i <= LT_GAP; i++)
		total.codes[i] += w->fig.codes[i];
	free(w->entry_hash);
	free(w->f);
	free(w);
}


/* ---- the apply hook (lockfsm_set_hook): every member hears every entry ---- */

#define HOOK_MAX 16

struct hook_log {
	unsigned n, restores;
	struct {
		enum lt_cmd_type type;
		uint64_t session, seq;
		enum lt_code code;
		uint64_t rsession;
		size_t ngrants;
		uint64_t grant_session, grant_seq;
		uint64_t origin;
	} e[HOOK_MAX];
};

static void hook_record(void *arg, const struct lt_cmd *cmd,
			const struct lt_result *res, uint64_t origin)
{
	struct hook_log *h = arg;

	if (!cmd && !res) {
		h->restores++;
		return;
	}
	assert_non_null(cmd);
	assert_true(h->n < HOOK_MAX);
	h->e[h->n].type = cmd->type;
	h->e[h->n].session = cmd->session;
	h->e[h->n].seq = cmd->seq;
	h->e[h->n].code = res->code;
	h->e[h->n].rsession = res->session;
	h->e[h->n].ngrants = res->ngrants;
	h->e[h->n].origin = origin;
	if (res->ngrants) {
		h->e[h->n].grant_session = res->grants[0].session;
		h->e[h->n].grant_seq = res->grants[0].seq;
	}
	h->n++;
}

static int hook_applied;

static void hook_apply_cb(struct raft_apply *req, int status, void *result)
{
	(void)result;
	assert_int_equal(status, 0);
	hook_applied++;
	free(req);
}

/* Propose n commands as one batch entry, the i-th from origin 10 + i. */
static void hook_propose_batch(struct raft_fixture *f, const struct lt_cmd *c,
			       unsigned n)
{
	struct raft_apply *req = calloc(1, sizeof(*req));
	struct lockfsm_batch b = {0};
	struct raft_buffer buf;
	struct raft *leader = raft_fixture_get(f, f->leader_id - 1);
	int before = hook_applied;
	unsigned i;

	assert_non_null(req);
	for (i = 0; i < n; i++) {
		assert_int_equal(lockfsm_propose_buf(&c[i], &buf), 0);
		assert_int_equal(
		    lockfsm_batch_add(&b, 10 + i, buf.base, buf.len), 0);
		raft_free(buf.base);
	}
	assert_int_equal(lockfsm_batch_take(&b, &buf), 0);
	assert_int_equal(lockfsm_batch_take(&b, &buf), -ENOENT);
	assert_int_equal(raft_apply(leader, req, &buf, 1, hook_apply_cb), 0);
	for (i = 0; i < 100000 && hook_applied == before; i++)
		raft_fixture_step(f);
	assert_int_equal(hook_applied, before + 1);
}

static void hook_propose(struct raft_fixture *f, const struct lt_cmd *c)
{
	struct raft_apply *req = calloc(1, sizeof(*req));
	struct raft_buffer buf;
	struct raft *leader = raft_fixture_get(f, f->leader_id - 1);
	int before = hook_applied;
	unsigned i;

	assert_non_null(req);
	assert_int_equal(lockfsm_propose_buf(c, &buf), 0);
	assert_int_equal(raft_apply(leader, req, &buf, 1, hook_apply_cb), 0);
	for (i = 0; i < 100000 && hook_applied == before; i++)
		raft_fixture_step(f);
	assert_int_equal(hook_applied, before + 1);
}

/* OPEN_SESSION of host "h1" (node 7, nonce 1) at time 1000. */
static struct lt_cmd open_h1(void)
{
	struct lt_cmd c;

	memset(&c, 0, sizeof(c));
	c.type = LT_OPEN_SESSION;
	c.seq = 1;
	c.now = 1000;
	c.node = 7;
	c.lease_ms = 5000;
	c.name = "h1";
	c.namelen = 2;
	c.nonce = 1;
	return c;
}

struct framing_log {
	unsigned n, malformed;
	uint64_t origin[8];
	enum lt_code code[8];
};

static void framing_hook(void *arg, const struct lt_cmd *cmd,
			 const struct lt_result *res, uint64_t origin)
{
	struct framing_log *h = arg;

	assert_true(h->n < 8);
	if (!cmd)
		h->malformed++;
	h->origin[h->n] = origin;
	h->code[h->n++] = res->code;
}

/* A batch entry applies its commands in order, each with its origin; a
 * bad frame applies what came before it and counts as one malformed
 * command, on every member alike. */
static void test_batch_framing(void **state)
{
	struct lockfsm lf;
	struct framing_log log;
	struct lockfsm_batch b = {0};
	struct raft_buffer buf, one;
	struct lt_cmd c;
	void *result;
	unsigned char *p;

	(void)state;
	assert_int_equal(lockfsm_init(&lf, NULL), 0);
	memset(&log, 0, sizeof(log));
	lockfsm_set_hook(&lf, framing_hook, &log);
	c = open_h1();
	assert_int_equal(lockfsm_propose_buf(&c, &one), 0);
	assert_int_equal(lockfsm_batch_add(&b, 3, one.base, one.len - 1),
			 -EINVAL);
	assert_int_equal(lockfsm_batch_add(&b, 3, one.base, one.len), 0);
	raft_free(one.base);
	memset(&c, 0, sizeof(c));
	c.type = LT_KEEPALIVE;
	c.session = 1;
	c.seq = 2;
	c.now = 1001;
	assert_int_equal(lockfsm_propose_buf(&c, &one), 0);
	assert_int_equal(lockfsm_batch_add(&b, 4, one.base, one.len), 0);
	assert_int_equal(lockfsm_batch_take(&b, &buf), 0);

	/* whole: both, in order */
	assert_int_equal(lf.fsm.apply(&lf.fsm, &buf, &result), 0);
	assert_int_equal(log.n, 2);
	assert_int_equal(log.origin[0], 3);
	assert_int_equal(log.code[0], LT_OK);
	assert_int_equal(log.origin[1], 4);
	assert_int_equal(log.code[1], LT_OK);
	assert_int_equal(((const struct lt_result *)result)->code, LT_OK);
	assert_int_equal(log.malformed, 0);

	/* a count of 3 with 2 commands: the 2 (retries now: dup), then
	 * one malformed */
	p = buf.base;
	p[4] = 3;
	assert_int_equal(lf.fsm.apply(&lf.fsm, &buf, &result), 0);
	assert_int_equal(log.n, 5);
	assert_int_equal(log.malformed, 1);
	assert_int_equal(log.code[4], LT_MALFORMED);
	assert_int_equal(lf.malformed, 1);

	/* the second command's length not a multiple of 8: the first
	 * only, then one malformed */
	p[4] = 2;
	p[8 + 16 + p[16] + 8] ^= 1; /* p[16]: the first length's low byte */
	assert_int_equal(lf.fsm.apply(&lf.fsm, &buf, &result), 0);
	assert_int_equal(log.n, 7);
	assert_int_equal(log.origin[5], 3);
	assert_int_equal(log.malformed, 2);
	assert_int_equal(lf.applied, 3);
	raft_free(one.base);
	raft_free(buf.base);
	lockfsm_close(&lf);
}

static void test_apply_hook(void **state)
{
	struct raft_fixture f;
	struct raft_configuration conf;
	struct lockfsm lf[3];
	struct hook_log log[3];
	struct lt_cmd c, batch[2];
	unsigned i, j, k;
	raft_index last;

	(void)state;
	memset(log, 0, sizeof(log));
	assert_int_equal(raft_fixture_initialize(&f), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(lockfsm_init(&lf[i], NULL), 0);
		lockfsm_set_hook(&lf[i], hook_record, &log[i]);
		assert_int_equal(raft_fixture_grow(&f, &lf[i].fsm), 0);
		assert_int_equal(raftguard_wrap(&f.servers[i].io), 0);
		raft_set_pre_vote(raft_fixture_get(&f, i), true);
	}
	assert_int_equal(raft_fixture_configuration(&f, 3, &conf), 0);
	assert_int_equal(raft_fixture_bootstrap(&f, &conf), 0);
	raft_configuration_close(&conf);
	assert_int_equal(raft_fixture_start(&f), 0);
	for (i = 0; i < 100000 && !f.leader_id; i++)
		raft_fixture_step(&f);
	assert_true(f.leader_id != 0);

	/* two sessions; s1 holds /p exclusively, s2 waits, s1 releases:
	 * the release's result lists s2's grant */
	c = open_h1();
	hook_propose(&f, &c);
	c.nonce = 2;
	c.name = "h2";
	hook_propose(&f, &c);
	memset(&c, 0, sizeof(c));
	c.type = LT_ACQUIRE;
	c.session = 1;
	c.seq = 2;
	c.now = 1001;
	c.kind = LT_FLOCK;
	c.mode = LT_EX;
	c.path = "/p";
	c.pathlen = 2;
	c.owner = 11;
	c.pid = 100;
	hook_propose(&f, &c);
	/* s2's wait and s1's release in one batch entry, in that order */
	c.session = 2;
	c.owner = 22;
	c.wait = 1;
	batch[0] = c;
	memset(&c, 0, sizeof(c));
	c.type = LT_RELEASE;
	c.session = 1;
	c.seq = 3;
	c.now = 1002;
	c.kind = LT_FLOCK;
	c.path = "/p";
	c.pathlen = 2;
	c.owner = 11;
	batch[1] = c;
	hook_propose_batch(&f, batch, 2);

	/* every member applies everything: the followers a heartbeat later */
	last = raft_last_applied(raft_fixture_get(&f, f.leader_id - 1));
	for (k = 0; k < 100000; k++) {
		for (j = 0; j < 3; j++)
			if (raft_last_applied(raft_fixture_get(&f, j)) < last)
				break;
		if (j == 3)
			break;
		raft_fixture_step(&f);
	}
	for (i = 0; i < 3; i++) {
		assert_int_equal(log[i].n, 5);
		assert_int_equal(log[i].e[0].type, LT_OPEN_SESSION);
		assert_int_equal(log[i].e[0].code, LT_OK);
		assert_int_equal(log[i].e[0].rsession, 1);
		assert_int_equal(log[i].e[1].rsession, 2);
		assert_int_equal(log[i].e[2].type, LT_ACQUIRE);
		assert_int_equal(log[i].e[2].session, 1);
		assert_int_equal(log[i].e[2].seq, 2);
		assert_int_equal(log[i].e[2].code, LT_GRANTED);
		assert_int_equal(log[i].e[3].session, 2);
		assert_int_equal(log[i].e[3].code, LT_QUEUED);
		assert_int_equal(log[i].e[4].type, LT_RELEASE);
		assert_int_equal(log[i].e[4].seq, 3);
		assert_int_equal(log[i].e[4].code, LT_OK);
		assert_int_equal(log[i].e[4].ngrants, 1);
		assert_int_equal(log[i].e[4].grant_session, 2);
		assert_int_equal(log[i].e[4].grant_seq, 2);
		assert_int_equal(log[i].e[2].origin, 0); /* a plain entry */
		assert_int_equal(log[i].e[3].origin, 10);
		assert_int_equal(log[i].e[4].origin, 11);
		assert_int_equal(log[i].restores, 0);
	}
	raft_fixture_close(&f);
	for (i = 0; i < 3; i++) {
		raftguard_unwrap(&f.servers[i].io);
		lockfsm_close(&lf[i]);
	}
}

/* Seeds beyond the default ones that once failed (3 voters odd, 5
 * even), run with the default set: 2165, 2217 and 3090 stalled a
 * follower behind the log (raftguard's second part and
 * LOCKFSM_SNAPSHOT_RESEND_MS); 4096 and 4201 left a POSIX waiter that
 * fitted waiting after an owner's EX -> SH (locktable.c, lock_grant). */
static const unsigned regress_seeds[] = { 2165, 2217, 3090, 4096, 4201 };

static void run_seeds(unsigned n)
{
	unsigned s, first = opt_seed ? opt_seed : 1;
	unsigned count = opt_seed ? 1 : (opt_seeds + 1) / 2;

	for (s = 0; s < count; s++)
		run_seed(first + s * 2 + (n == 5), n);
	for (s = 0; !opt_seed && s < sizeof(regress_seeds) / sizeof(*regress_seeds);
	     s++)
		if (regress_seeds[s] % 2 == (n == 5 ? 0 : 1) &&
		    regress_seeds[s] >= first + count * 2)
			run_seed(regress_seeds[s], n);
}

static void test_three_voters(void **state)
{
	(void)state;
	run_seeds(3);
}

static void test_five_voters(void **state)
{
	(void)state;
	run_seeds(5);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apply_hook),
		cmocka_unit_test(test_batch_framing),
		cmocka_unit_test(test_three_voters),
		cmocka_unit_test(test_five_voters),
	};
	struct timespec t0, t1;
	int i, rc;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seeds") && i + 1 < argc)
			opt_seeds = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			opt_seed = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--verbose"))
			opt_verbose = 1;
		else if (!strcmp(argv[i], "--no-guard"))
			opt_no_guard = 1;  /* shows libraft's bug: seed 47 */
		else {
			fprintf(stderr, "usage: %s [--seeds N] [--seed S] "
					"[--verbose] [--no-guard]\n", argv[0]);
			return 2;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("lockraft: %llu seeds, %llu client results (%llu retried "
	       "duplicates), %llu entries applied over all nodes, "
	       "%llu elections, %llu snapshots taken, %llu restored, "
	       "%llu partitions, %llu saturated links, %llu leader kills, "
	       "%llu deposes, %llu sessions expired, %llu grant notices, "
	       "%.1f s\n",
	       (unsigned long long)total.seeds,
	       (unsigned long long)total.results,
	       (unsigned long long)total.dup,
	       (unsigned long long)total.applied,
	       (unsigned long long)total.elections,
	       (unsigned long long)total.snapshots,
	       (unsigned long long)total.restores,
	       (unsigned long long)total.partitions,
	       (unsigned long long)total.saturations,
	       (unsigned long long)total.kills,
	       (unsigned long long)total.deposes,
	       (unsigned long long)total.expires,
	       (unsigned long long)total.grants_notified,
	       (double)(t1.tv_sec - t0.tv_sec) +
		       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	printf("lockraft: %llu AppendEntries replies clamped and %llu "
	       "InstallSnapshot replies raised by raftguard\n",
	       (unsigned long long)raftguard_clamped(),
	       (unsigned long long)raftguard_raised());
	printf("lockraft: results by code:");
	for (i = 0; i <= LT_GAP; i++)
		printf(" %s %llu", lt_code_name(i),
		       (unsigned long long)total.codes[i]);
	printf("\n");
	return rc;
}
