/*
 * locksvc.c — the lock service thread (the manual is locksvc.h).
 *
 * One libuv loop runs raft, raftnet and the control socket. The pieces:
 *
 *   mount --lockproto--> conn --op queue--> propose --raft--> apply hook
 *                          ^                                    |
 *                          +---- answer <- handover (vv) <------+
 *
 * A request of a mount becomes an op. An op that is a table command
 * waits in its connection's queue; the head is proposed (state
 * INFLIGHT) and stays there until an outcome arrives from the apply hook
 * or a RESULT datagram. An ACQUIRE answered QUEUED moves to the
 * connection's waiting list (WAITING) until a result lists its grant; a
 * granted ACQUIRE waits for the store (HANDOVER) and is then answered.
 *
 *   QUEUED --pump--> INFLIGHT --GRANTED------------> HANDOVER --vv--> answered
 *                       |  \--QUEUED--> WAITING --grant--^
 *                       \--other codes--> answered
 *
 * A cancelled op (answered -EINTR at once) stays where it is with
 * `cancel` set and no answer due: if it turns out QUEUED an internal
 * CANCEL follows it, if it turns out granted an internal RELEASE does
 * (release_cancelled). Internal ops (OPEN_SESSION, KEEPALIVE, CANCEL,
 * RELEASE, CLOSE_SESSION) answer nobody. A closed connection stays as a
 * "zombie" (fd -1) until its CLOSE_SESSION has an outcome.
 *
 * Pipelining. The ops INFLIGHT of a connection are the head of its
 * queue; another unit is proposed behind them only while all of them
 * are releases (at most PIPE_UNITS units): a lock cycle's RELEASE and
 * the next LOCK of the same lane ride the same Raft round trip instead
 * of two. The table applies a session's commands only in sequence
 * (locktable.h: a lost one makes the next answer GAP, and then every op
 * in flight is proposed again, in order), so nothing overtakes a lost
 * release. Only the last op in flight may need its result asked again
 * (the table keeps the last one's), and it is the only one that is not
 * a release.
 *
 * Invariants
 *   (1) a connection's ops INFLIGHT are the head of its queue, every one
 *       but the last a release; an op's bytes (and so its seqs) never
 *       change until its outcome;
 *   (2) an op is completed once: completion takes it off the queue, and
 *       a second outcome of the same (session, seq) finds no INFLIGHT op;
 *   (3) a grant is answered only after the store holds the grant's vv;
 *   (4) every raft call is made on this loop, never from the apply hook.
 *
 * Batching. Every raft entry costs a disk write and a message to every
 * member, and every datagram a few context switches, so nothing is sent
 * the moment it is made: proposals at the leader go into one batch entry
 * (lockfsm.h), and datagrams to a member into one MULTI datagram, both
 * sent once per turn of the loop (flush, from a prepare and a check
 * handle: after the timers and after the I/O of each turn). Under load
 * a turn collects the commands of every connection and member.
 *
 * Units. An op is proposed as a unit: its command, preceded by the run
 * of releases queued before it in the same lane (pump). A unit goes into
 * one batch whole, so raft decides its commands together; each command
 * has its own seq and the last one's outcome is the unit's. Releases
 * answer at once anyway (the mount ignores their RESULT), so a lane with
 * many releases queued (a mount whose processes died) frees them in a
 * few round trips instead of one each.
 *
 * Datagrams between members (little-endian):
 *   MULTI    u32 type=4, u32 count, count x (u32 len, u32 0, message)
 *            (every message below travels inside a MULTI)
 *   PROPOSE  u32 type=1, u32 count, then a unit: count x (u32 len,
 *            u32 0, the command's bytes)
 *   RESULT   u32 type=2, u32 code, u64 session, u64 seq, u64 nonce,
 *            u64 result session, u64 token, u32 dup, u32 alive,
 *            u32 vv n, u32 0, u64 index, n x (u64 node, u64 seq)
 *   GRANT    u32 type=3, u32 kind, u64 session, u64 owner, u64 seq,
 *            u64 token, u32 mode, u32 vv n, u64 index,
 *            n x (u64 node, u64 seq)
 * `index`: the raft entry of the outcome. A QUERY waits until this
 * member has applied every entry it heard of this way, so a mount reads
 * its own grants and releases back (parked queries, below).
 * `alive`: the session still exists in the leader's table after the
 * command (NOT_FOUND of a RELEASE means "not held" when it does).
 * GRANT: the leader tells the member of a waiter's host that the waiter
 * was granted, a heartbeat before that member would apply it. The leader
 * learns which member serves a store node from the proposals it
 * forwards (hosts keep their sessions alive, so within lease/4 of a new
 * leader it knows them all); until then the member's own apply does.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>
#include <sodium.h>
#include <uv.h>

#include "common/list.h"
#include "common/lockproto.h"
#include "common/clock.h"
#include "common/le.h"
#include "common/log.h"
#include "repl/lockdg.h"
#include "repl/lockfsm.h"
#include "repl/locksvc.h"
#include "repl/raftguard.h"
#include "repl/raftnet.h"

#define BATCH_MAX (256u << 10) /* bytes of commands in one raft entry */
#define UNIT_MAX (16u << 10)   /* bytes of one unit (in a datagram) */
#define UNIT_CMDS 64	       /* commands in one unit */
#define BATCHES_OUT 1	       /* batches being committed at a time */
#define PIPE_UNITS 4	       /* units of one lane in flight */
#define RETRY_MAX_MS 2000      /* longest wait before proposing again */
#define HOLD_US 1000	       /* longest a batch waits for expected lanes */
#define EXPECT_SLOTS 256       /* sessions the leader expects back */
#define HANDOVER_TICK_MS 2
#define HANDOVER_LOG_MS 5000
#define QUEUED_AFTER_MS 100
#define LANES 32 /* lock-table sessions per mount connection */

enum op_state { OP_QUEUED, OP_INFLIGHT, OP_WAITING, OP_HANDOVER };

struct op {
	struct list link; /* conn's queue or waiting list */
	enum op_state state;
	int answer;  /* send a RESULT to the mount */
	uint64_t id; /* the mount's request id */
	enum lt_cmd_type type;
	enum lt_kind kind;
	enum lt_mode mode;
	int wait, cancel; /* cancel: CANCEL arrived while INFLIGHT */
	int told_queued;  /* LP_QUEUED sent (a wait=1 LOCK, see tell_queued) */
	int64_t born;	  /* when the mount's request arrived */
	uint64_t owner, nonce, target_seq;
	uint32_t pid;
	char *path;
	struct lt_vv vv; /* RELEASE: ours; HANDOVER: the grant's */
	uint64_t seq, token;
	void *bytes; /* the encoded unit, fixed once sent */
	size_t len;
	uint32_t ncmds; /* commands in the unit */
	int64_t first_sent, last_sent, handover_at;
	int64_t wait_ms; /* for an outcome before proposing it again */
	uint64_t sent_leader, sent_term;
	int logged;
};

struct outmsg {
	struct list link;
	size_t len;
	unsigned char buf[];
};

struct conn {
	struct list link; /* svc's connections */
	struct locksvc *s;
	int fd; /* -1 once closed (a zombie closing its session) */
	uv_poll_t poll;
	int polling, hello;
	int poll_events; /* what c->poll was started with */
	int broken;	      /* a send failed: closed at the next kick */
	int close_pending;    /* closed; its CLOSE waits for close_index */
	uint64_t close_index; /* to be applied here first */
	char host[LT_NAME_MAX + 1];
	uint64_t session, seq; /* session 0: none open */
	int opening;	       /* an OPEN_SESSION is queued or in flight */
	struct list queue, waiting, out;
	int64_t last_cmd;
	/* Lanes: a connection's requests are spread over LANES sessions,
	 * by owner (lane_of), so that one owner's wait for a Raft round
	 * trip does not hold up another's. Lane 0 is the connection itself;
	 * lanes 1.. are conns of their own in svc's list, made on first use,
	 * without a poll handle: `main` is the connection they read from and
	 * answer through (NULL once closed), and their fd is its fd. */
	struct conn *main;
	struct conn *lanes[LANES];
};

/* A QUERY waiting for this member to apply what it already answered. */
struct parked {
	struct list link; /* svc's parked */
	struct conn *c;
	uint64_t id, index;
	uint32_t kind;
	char path[];
};

struct apply_req {
	struct raft_apply req;
	struct locksvc *s;
};

struct member {
	uint64_t id;
	char name[64];
	int voter;
	uint64_t node;	    /* the store node it serves; 0: not known */
	struct lockdg_frames out; /* messages for it, sent by flush */
};

struct locksvc {
	struct config cfg;
	struct store *store;
	uint64_t node_id;
	pthread_t thread;
	pthread_mutex_t lock; /* protects pub */
	struct locksvc_stats pub;
	char sock_path[PATH_MAX + 16];
	/* the loop's own, below */
	uv_loop_t loop;
	uv_async_t stop_async;
	uv_timer_t tick, handover, kick, hold;
	uv_prepare_t flush_prep;
	uv_check_t flush_check;
	struct lockfsm_batch batch; /* proposals, at the leader */
	unsigned batches_out;	    /* proposed, not applied yet */
	int64_t batch_sent;	    /* when the last one was */
	int64_t batch_first_us;	    /* when the batch got its first unit */
	int64_t fwd_first_us;	    /* a follower's: when the datagram to
				     * the leader got its first unit */
	struct expect {		    /* sessions granted a lock, at_us 0: free */
		uint64_t session, node; /* node: the session's store node */
		int64_t at_us;
	} expect[EXPECT_SLOTS];
	uv_poll_t listen_poll;
	int listen_fd, stopping, failed;
	struct raftnet *net;
	struct raft_io io;
	struct raft raft;
	struct lockfsm fsm;
	int io_inited, raft_inited, guarded, fsm_inited;
	struct member members[CONFIG_PEERS_MAX + 1];
	size_t nmembers, nvoters;
	uint64_t self_id;
	int self_voter;
	uint64_t election_ms, heartbeat_ms;
	struct list conns;
	uint64_t leader_id, leader_term;
	uint64_t seen_index;	 /* highest entry a datagram told of */
	unsigned pending_closes; /* conns with close_pending */
	struct list parked;
	int64_t leader_since; /* we lead since (monotonic ms) */
	int reachable;
	uint64_t last_orphans;
	uint64_t releases, waits, orphans_closed, orphans_expired;
	uint64_t gaps, resends, fault_drops, dg_malformed;
	unsigned fault_drop;  /* permille, STATEFS_FAULT_LOCK_DROP */
	uint64_t fault_rng;
	double commit_ewma;
	int64_t last_expire_scan;
};

/* ---- small helpers ---- */

static const char *member_name(struct locksvc *s, uint64_t id)
{
	size_t i;

	for (i = 0; i < s->nmembers; i++)
		if (s->members[i].id == id)
			return s->members[i].name;
	return "";
}

/* ---- the store's version vector ---- */

static int vv_add(void *arg, uint64_t node, uint64_t seq)
{
	struct lt_vv *vv = arg;

	if (seq == 0 || vv->n == LT_VV_MAX)
		return 0;
	vv->e[vv->n].node = node;
	vv->e[vv->n].seq = seq;
	vv->n++;
	return 0;
}

static int vv_cmp(const void *a, const void *b)
{
	const struct lt_vv_entry *x = a, *y = b;

	return x->node < y->node ? -1 : x->node > y->node;
}

/* The store's watermarks now, nodes increasing (the table's rule). */
static void store_vv(struct locksvc *s, struct lt_vv *vv)
{
	vv->n = 0;
	if (store_watermarks(s->store, vv_add, vv) < 0) {
		log_rate(LOG_WARNING,
			 "locks: cannot read the store's watermarks");
		vv->n = 0;
	}
	qsort(vv->e, vv->n, sizeof(vv->e[0]), vv_cmp);
}

/* 1 when every (node, seq) of want is at or below have's. */
static int vv_covered(const struct lt_vv *want, const struct lt_vv *have)
{
	uint32_t i, j;

	for (i = 0; i < want->n; i++) {
		for (j = 0; j < have->n; j++)
			if (have->e[j].node == want->e[i].node)
				break;
		if (j == have->n || have->e[j].seq < want->e[i].seq)
			return 0;
	}
	return 1;
}

/* ---- answering the mount ---- */

static void conn_close(struct conn *c);
static void on_conn(uv_poll_t *h, int status, int events);
static void on_handover(uv_timer_t *t);
static void kick(struct locksvc *s);
static void unpark(struct locksvc *s, struct conn *gone);
static void conn_finish_close(struct conn *c);

/* Poll c for what it needs. Only on a change: uv_poll_start takes the
 * fd out of epoll and puts it back, two system calls per answer. */
static void conn_poll_events(struct conn *c)
{
	int ev = UV_READABLE | (list_empty(&c->out) ? 0 : UV_WRITABLE);

	if (c->fd >= 0 && c->polling && ev != c->poll_events) {
		c->poll_events = ev;
		uv_poll_start(&c->poll, ev, on_conn);
	}
}

static void conn_flush(struct conn *c)
{
	while (!list_empty(&c->out)) {
		struct outmsg *m =
		    container_of(c->out.next, struct outmsg, link);
		ssize_t n =
		    send(c->fd, m->buf, m->len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		list_del(&m->link);
		free(m);
		if (n < 0) {
			/* not here: callers hold ops of c (on_kick closes) */
			c->broken = 1;
			kick(c->s);
			return;
		}
	}
}

static void conn_send(struct conn *c, const struct lp_msg *hdr,
		      const char *path, size_t pathlen)
{
	struct outmsg *m;

	if (c->fd < 0 || c->broken)
		return;
	if (c->main)
		c = c->main;
	m = malloc(sizeof(*m) + sizeof(*hdr) + pathlen);
	if (!m) {
		log_rate(LOG_ERROR, "locks: out of memory answering a mount");
		c->broken = 1;
		kick(c->s);
		return;
	}
	m->len = sizeof(*hdr) + pathlen;
	memcpy(m->buf, hdr, sizeof(*hdr));
	((struct lp_msg *)m->buf)->pathlen = (uint32_t)pathlen;
	if (pathlen)
		memcpy(m->buf + sizeof(*hdr), path, pathlen);
	list_add_tail(&c->out, &m->link);
	conn_flush(c);
	if (!c->broken)
		conn_poll_events(c);
}

static void answer(struct conn *c, uint64_t id, int err, uint64_t token)
{
	struct lp_msg m = {.version = LP_VERSION,
			   .type = LP_RESULT,
			   .id = id,
			   .err = err,
			   .token = token};

	conn_send(c, &m, NULL, 0);
}

static void op_free(struct op *o)
{
	list_del(&o->link);
	free(o->path);
	free(o->bytes);
	free(o);
}

/* Answer o (if the mount waits for it) and free it. */
static void op_done(struct conn *c, struct op *o, int err, uint64_t token)
{
	if (o->answer)
		answer(c, o->id, err, token);
	op_free(o);
}

/* ---- proposing ---- */

static void pump(struct conn *c);
static void conn_maybe_free(struct conn *c);
static void send_grant(struct locksvc *s, const struct lt_grant *g);
static void on_applied(void *arg, const struct lt_cmd *cmd,
		       const struct lt_result *res, uint64_t origin);

static struct op *conn_inflight(struct conn *c)
{
	struct op *o;

	if (list_empty(&c->queue))
		return NULL;
	o = container_of(c->queue.next, struct op, link);
	return o->state == OP_INFLIGHT ? o : NULL;
}

/* The op after o in c's queue that is INFLIGHT, or NULL. */
static struct op *next_inflight(struct conn *c, struct op *o)
{
	struct op *n;

	if (o->link.next == &c->queue)
		return NULL;
	n = container_of(o->link.next, struct op, link);
	return n->state == OP_INFLIGHT ? n : NULL;
}

#define for_inflight(o, c)                                                     \
	for (o = conn_inflight(c); o; o = next_inflight(c, o))

static void apply_cb(struct raft_apply *req, int status, void *result)
{
	struct apply_req *a = container_of(req, struct apply_req, req);

	(void)status; /* an op without outcome is resent (retry) */
	(void)result; /* outcomes come from the hook, per command */
	if (a->s->batches_out)
		a->s->batches_out--; /* flush sends the next one */
	free(a);
}

/* ---- sending: datagrams and batches, once per turn of the loop ---- */

static struct member *member_of(struct locksvc *s, uint64_t id)
{
	size_t i;

	for (i = 0; i < s->nmembers; i++)
		if (s->members[i].id == id)
			return &s->members[i];
	return NULL;
}

/* Send m's queued messages as one MULTI datagram. Its first frame is an
 * empty one, whose 8 bytes become the MULTI header. */
static void dg_flush_one(struct locksvc *s, struct member *m)
{
	if (!m->out.n)
		return;
	le_put32(m->out.p, LOCKDG_MULTI);
	le_put32(m->out.p + 4, m->out.n - 1);
	raftnet_send(s->net, m->id, m->out.p, m->out.len);
	m->out.len = 0;
	m->out.n = 0;
}

/* Queue message a+b for member `to` (flush sends it). 0 or -1. */
static int dg_queue(struct locksvc *s, uint64_t to, const void *a,
		    size_t alen, const void *b, size_t blen)
{
	struct member *m = member_of(s, to);
	size_t flen = 8 + ((alen + blen + 7) & ~(size_t)7);

	if (!m || !s->net || 8 + flen > RAFTNET_MSG_MAX)
		return -1;
	if (s->fault_drop) { /* the fault point (locksvc.h) */
		s->fault_rng ^= s->fault_rng << 13;
		s->fault_rng ^= s->fault_rng >> 7;
		s->fault_rng ^= s->fault_rng << 17;
		if (s->fault_rng % 1000 < s->fault_drop) {
			s->fault_drops++;
			return 0;
		}
	}
	if (m->out.len + flen > RAFTNET_MSG_MAX)
		dg_flush_one(s, m);
	if (!m->out.n && lockdg_frame_add(&m->out, NULL, 0, NULL, 0) < 0)
		return -1;
	return lockdg_frame_add(&m->out, a, alen, b, blen) < 0 ? -1 : 0;
}

/* ---- group commit: waiting for the lanes a grant will bring back ----
 *
 * A locker granted a lock is back a moment later (hundreds of us: the
 * grant through the mount to the process, then its unlock and next
 * lock through FUSE) with a RELEASE and a LOCK. Proposing the batch at
 * once, without them, splits the lockers of a host into cohorts that
 * take turns, each batch carrying half of them, and every raft entry
 * costs each member far more than a command in it (about 1.1 ms of CPU
 * over a 4-node mesh against 60 us; tests/bench/README.md). So the
 * leader remembers which sessions it granted a lock in the last HOLD_US
 * and lets the batch wait, at most HOLD_US after its first unit came,
 * while any of them has not sent its next command other than a RELEASE.
 * A lone locker waits only for itself: its RELEASE is held until its
 * own next LOCK comes (one raft entry for both instead of two). The
 * bench (medians of 3, 8 lockers on the leader's host): 3,298 -> 5,359
 * cycles/s, p99 5.6 -> 3.0 ms; 1 locker 721 -> 1,262.
 *
 * A follower does the same with the proposals it forwards: it expects
 * the sessions of its own that it just saw granted (handover_start)
 * and holds its datagram to the leader while one of them is still to
 * come. Its lockers then reach the leader in one datagram per entry
 * instead of about 4, and the leader, expecting them all, proposes at
 * once (its wait per entry: 560 -> 30-60 us; bench, 8 lockers on a
 * follower: 3,484 -> 3,734 cycles/s on a voter, 3,083 -> 3,358 on the
 * standby, medians of 5, +-20% between runs on this machine).
 */

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct expect *expect_find(struct locksvc *s, uint64_t session)
{
	size_t i;

	for (i = 0; i < EXPECT_SLOTS; i++)
		if (s->expect[i].at_us && s->expect[i].session == session)
			return &s->expect[i];
	return NULL;
}

/* Session (of store node `node`, 0: not known) was granted a lock:
 * expect it back. With more sessions granted within HOLD_US than
 * slots, the others are not waited for. */
static void expect_set(struct locksvc *s, uint64_t session, uint64_t node)
{
	int64_t now = now_us();
	struct expect *e = expect_find(s, session);
	size_t i;

	for (i = 0; !e && i < EXPECT_SLOTS; i++)
		if (!s->expect[i].at_us || now - s->expect[i].at_us > HOLD_US)
			e = &s->expect[i];
	if (e) {
		e->session = session;
		e->node = node;
		e->at_us = now;
	}
}

/* On the leader: the sessions of a granted command or grant. */
static void expect_granted(struct locksvc *s, uint64_t session)
{
	struct lt_sessioninfo si;

	expect_set(s, session,
		   lt_session(s->fsm.table, session, &si) == 0 ? si.node : 0);
}

/* On the leader: a follower serving node sent its proposals. It held
 * them for its own expected sessions (flush), so what did not come
 * with them is not waited for twice (a lone RELEASE would wait
 * 2 x HOLD_US). */
static void expect_drop_node(struct locksvc *s, uint64_t node)
{
	size_t i;

	for (i = 0; node && i < EXPECT_SLOTS; i++)
		if (s->expect[i].node == node)
			s->expect[i].at_us = 0;
}

/* Session sent a command other than a RELEASE: no more waiting for it. */
static void expect_done(struct locksvc *s, uint64_t session)
{
	struct expect *e = expect_find(s, session);

	if (e)
		e->at_us = 0;
}

/* A command joined the leader's batch. */
static void expect_seen(struct locksvc *s, const unsigned char *cmd,
			size_t len)
{
	/* locktable.h's encoding: type at byte 1, session at 8 */
	if (len >= 16 && cmd[1] != LT_RELEASE)
		expect_done(s, le_get64(cmd + 8));
}

static void on_hold(uv_timer_t *t);

/* Should what started at first_us (the leader's batch, a follower's
 * datagram of proposals) wait for an expected session? Then the hold
 * timer is running. */
static int hold(struct locksvc *s, int64_t first_us)
{
	int64_t now = now_us();
	size_t i;

	if (now - first_us >= HOLD_US)
		return 0;
	for (i = 0; i < EXPECT_SLOTS; i++)
		if (s->expect[i].at_us && now - s->expect[i].at_us <= HOLD_US)
			break;
	if (i == EXPECT_SLOTS)
		return 0;
	if (!uv_is_active((uv_handle_t *)&s->hold))
		uv_timer_start(&s->hold, on_hold, 1, 0);
	return 1;
}

/* Propose the batch, unless BATCHES_OUT are being committed already
 * (then the batch grows meanwhile: group commit) or force. */
static void batch_flush(struct locksvc *s, int force)
{
	struct apply_req *a;
	struct raft_buffer buf;
	struct list *l;
	int64_t now;
	int rv;

	if (!s->batch.n)
		return;
	now = clock_ms(CLOCK_MONOTONIC);
	if (!force && s->batches_out < BATCHES_OUT &&
	    raft_state(&s->raft) == RAFT_LEADER && hold(s, s->batch_first_us))
		return;
	if (s->batches_out >= BATCHES_OUT && !force) {
		/* a callback that never came (it always does: an applied
		 * entry or a lost leadership) must not stop the service */
		if (now - s->batch_sent < (int64_t)(2 * s->election_ms))
			return;
		s->batches_out = 0;
	}
	a = calloc(1, sizeof(*a));
	if (a)
		a->s = s;
	uv_timer_stop(&s->hold);
	lockfsm_batch_take(&s->batch, &buf);
	rv = a ? raft_apply(&s->raft, &a->req, &buf, 1, apply_cb) : RAFT_NOMEM;
	if (!rv) {
		s->batches_out++;
		s->batch_sent = now;
		return;
	}
	raft_free(buf.base);
	free(a);
	if (rv == RAFT_NOTLEADER)
		return; /* retry() resends at the next leader */
	log_rate(LOG_WARNING, "locks: cannot propose: %s", raft_strerror(rv));
	list_for(l, &s->conns)
	{
		struct conn *c = container_of(l, struct conn, link);
		struct op *o;

		for_inflight(o, c)
			o->sent_leader = 0; /* the next tick resends it */
	}
}

/* Send what this turn of the loop made: the batch, then datagrams. A
 * follower's proposals wait for its expected sessions as the leader's
 * batch does: they then reach the leader in one datagram, not one
 * per locker. */
static void flush(struct locksvc *s)
{
	raft_id lid;
	const char *addr;
	size_t i;

	if (s->stopping || s->failed)
		return;
	batch_flush(s, 0);
	raft_leader(&s->raft, &lid, &addr);
	for (i = 0; i < s->nmembers; i++)
		if (s->members[i].out.n &&
		    (s->members[i].id != lid || lid == s->self_id ||
		     !hold(s, s->fwd_first_us)))
			dg_flush_one(s, &s->members[i]);
}

static void on_flush_prep(uv_prepare_t *h)
{
	flush(h->data);
}

static void on_flush_check(uv_check_t *h)
{
	flush(h->data);
}

static void on_hold(uv_timer_t *t)
{
	flush(t->data);
}

/* Add unit u (n commands) proposed by origin to the leader's batch,
 * whole. 0, or -1 (malformed, out of memory: the proposer retries). */
static int propose_here(struct locksvc *s, const unsigned char *u,
			size_t len, uint32_t n, uint64_t origin)
{
	struct lockfsm_batch keep = s->batch;
	const unsigned char *cmd;
	size_t off = 0, clen;
	uint32_t i;

	if (s->batch.len + len + 8 * (size_t)n > BATCH_MAX)
		batch_flush(s, 1);
	keep = s->batch;
	for (i = 0; i < n; i++) {
		if (lockdg_frame_next(u, len, &off, &cmd, &clen) < 0 ||
		    lockfsm_batch_add(&s->batch, origin, cmd, clen) < 0)
			break;
		/* (a unit rolled back below only holds its batch shorter) */
		expect_seen(s, cmd, clen);
	}
	if (i == n && off == len) {
		if (!keep.n)
			s->batch_first_us = now_us();
		return 0;
	}
	/* never half a unit: back to the batch as it was (a grown
	 * buffer is kept; what was in it is unchanged) */
	if (keep.n) {
		s->batch.len = keep.len;
		s->batch.n = keep.n;
		le_put32(s->batch.buf + 4, keep.n);
	} else {
		s->batch.len = 0;
		s->batch.n = 0;
	}
	return -1;
}

/* Send unit u to the leader, wherever it is. 0 when it left (the
 * caller's retry proposes it again if no outcome comes), -1 when it
 * could not (no leader): retry at the next tick. */
static int propose(struct locksvc *s, const void *u, size_t len, uint32_t n)
{
	struct member *m;
	unsigned char hdr[8];
	raft_id lid;
	const char *addr;

	if (s->failed)
		return -1;
	raft_leader(&s->raft, &lid, &addr);
	if (!lid)
		return -1;
	if (lid == s->self_id)
		return propose_here(s, u, len, n, s->self_id);
	if ((m = member_of(s, lid)) && !m->out.n)
		s->fwd_first_us = now_us();
	lockdg_propose_header(hdr, n);
	return dg_queue(s, lid, hdr, 8, u, len);
}

static void op_send(struct locksvc *s, struct op *o)
{
	raft_id lid;
	const char *addr;
	int64_t now = clock_ms(CLOCK_MONOTONIC);

	if (s->failed)
		return;
	raft_leader(&s->raft, &lid, &addr);
	o->last_sent = now;
	if (!o->first_sent)
		o->first_sent = now;
	if (!o->wait_ms)
		o->wait_ms = (int64_t)(3 * s->heartbeat_ms);
	o->sent_leader = lid;
	o->sent_term = s->raft.current_term;
	if (propose(s, o->bytes, o->len, o->ncmds) < 0)
		o->sent_leader = 0; /* the next tick tries again */
}

/* Encode o as c's next command, appended to unit u. 0 or -errno. */
static int op_encode(struct conn *c, struct op *o, struct lockdg_frames *u)
{
	unsigned char stack[512], *bytes = stack;
	struct lt_cmd cmd;
	size_t len;
	int err = 0;

	memset(&cmd, 0, sizeof(cmd));
	cmd.type = o->type;
	cmd.now = (uint64_t)clock_ms(CLOCK_REALTIME);
	if (o->type == LT_OPEN_SESSION) {
		cmd.seq = 1;
		cmd.node = c->s->node_id;
		cmd.nonce = o->nonce;
		cmd.lease_ms = (uint32_t)c->s->cfg.lock_lease_ms;
		cmd.name = c->host;
		cmd.namelen = strlen(c->host);
	} else {
		cmd.session = c->session;
		cmd.seq = c->seq + 1;
	}
	cmd.kind = o->kind;
	cmd.mode = o->mode;
	cmd.wait = o->wait;
	cmd.owner = o->owner;
	cmd.pid = o->pid;
	cmd.path = o->path;
	cmd.pathlen = o->path ? strlen(o->path) : 0;
	cmd.target_seq = o->target_seq;
	cmd.vv = o->vv;
	len = lt_cmd_size(&cmd);
	if (!len)
		return -EINVAL;
	if (len > sizeof(stack) && !(bytes = malloc(len)))
		return -ENOMEM;
	if (lt_cmd_encode(&cmd, bytes, len) < 0)
		err = -EINVAL;
	else if (lockdg_frame_add(u, bytes, len, NULL, 0) < 0)
		err = -ENOMEM;
	if (bytes != stack)
		free(bytes);
	if (err)
		return err;
	o->seq = cmd.seq;
	if (o->type != LT_OPEN_SESSION)
		c->seq = cmd.seq;
	return 0;
}

/* The first QUEUED op of c if c may propose it now, else NULL. */
static struct op *conn_next(struct conn *c)
{
	struct list *l;
	unsigned n = 0;

	list_for(l, &c->queue)
	{
		struct op *o = container_of(l, struct op, link);

		if (o->state != OP_INFLIGHT)
			return o;
		if (o->type != LT_RELEASE || ++n >= PIPE_UNITS)
			return NULL;
	}
	return NULL;
}

/* Propose every op in flight again, in order. */
static void resend_all(struct locksvc *s, struct conn *c)
{
	struct op *o;

	for_inflight(o, c)
	{
		s->resends++;
		op_send(s, o);
	}
}

/*
 * Make c's unit (see Units, above): the op at the head and, while that
 * is a release, the ops behind it, up to UNIT_CMDS commands and about
 * UNIT_MAX bytes. Every op but the last is a release, answered 0 (its
 * answer whatever the outcome) and freed once encoded; the last stays
 * at the head and takes the unit. NULL when the head could not be
 * encoded (it was answered).
 */
static struct op *unit_make(struct conn *c, struct op *o)
{
	struct lockdg_frames u = {0};
	struct op *last = NULL;
	int err;

	for (;;) {
		err = op_encode(c, o, &u);
		if (err && !last) {
			free(u.p);
			op_done(c, o, err == -EINVAL ? -EINVAL : -ENOLCK, 0);
			return NULL;
		}
		if (err)
			break; /* the unit ends with last; o goes alone next */
		if (last)
			op_done(c, last, 0, 0); /* superseded by o */
		last = o;
		if (o->type != LT_RELEASE || o->link.next == &c->queue ||
		    u.n >= UNIT_CMDS || u.len > UNIT_MAX - 2 * LT_PATH_MAX)
			break;
		o = container_of(o->link.next, struct op, link);
		if (o->type == LT_OPEN_SESSION)
			break;
	}
	last->bytes = u.p;
	last->len = u.len;
	last->ncmds = u.n;
	return last;
}

/* Propose c's queued ops while it may (conn_next). */
static void pump(struct conn *c)
{
	struct op *o;

	while ((o = conn_next(c))) {
		if (o->type != LT_OPEN_SESSION && !c->session) {
			/* the session was lost after o was queued: o's
			 * OPEN is queued before it (enqueue) */
			op_done(c, o, -ENOLCK, 0);
			continue;
		}
		o = unit_make(c, o);
		if (!o)
			continue;
		o->state = OP_INFLIGHT;
		c->last_cmd = clock_ms(CLOCK_MONOTONIC);
		op_send(c->s, o);
		if (o->type != LT_RELEASE)
			expect_done(c->s, c->session);
	}
}

/* Pump every connection on the next turn of the loop: never from the
 * apply hook, which runs inside raft (invariant 4). */
static void on_kick(uv_timer_t *t)
{
	struct locksvc *s = t->data;
	struct list *l, *n;

	for (l = s->conns.next; l != &s->conns; l = n) {
		struct conn *c = container_of(l, struct conn, link);

		n = l->next;
		if (c->broken && c->fd >= 0)
			conn_close(c);
		if (c->close_pending &&
		    raft_last_applied(&s->raft) >= c->close_index)
			conn_finish_close(c);
		pump(c);
		conn_maybe_free(c);
	}
	if (!list_empty(&s->parked))
		unpark(s, NULL);
}

static void kick(struct locksvc *s)
{
	if (!s->stopping)
		uv_timer_start(&s->kick, on_kick, 0, 0);
}

static struct op *op_new(enum lt_cmd_type type)
{
	struct op *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	list_init(&o->link);
	o->type = type;
	return o;
}

/* Queue o on c, opening a session first when c has none. */
static int enqueue(struct conn *c, struct op *o)
{
	if (o->type != LT_OPEN_SESSION && !c->session && !c->opening) {
		struct op *open = op_new(LT_OPEN_SESSION);

		if (!open)
			return -ENOMEM;
		randombytes_buf(&open->nonce, sizeof(open->nonce));
		c->opening = 1;
		list_add_tail(&c->queue, &open->link);
	}
	list_add_tail(&c->queue, &o->link);
	kick(c->s);
	return 0;
}

/* ---- outcomes ---- */

/* 1 when c has a request of o's (kind, path, owner) queued after o. */
static int later_request(struct conn *c, const struct op *o)
{
	struct list *l;

	list_for(l, &c->queue)
	{
		struct op *x = container_of(l, struct op, link);

		if (x != o && x->path && x->kind == o->kind &&
		    x->owner == o->owner && strcmp(x->path, o->path) == 0 &&
		    (x->type == LT_ACQUIRE || x->type == LT_RELEASE))
			return 1;
	}
	return 0;
}

/*
 * The table granted o, which the mount cancelled (it was answered
 * -EINTR): release it, right after the command in flight, unless the
 * mount asked about that lock again since (its next request decides).
 * Frees o.
 */
static void release_cancelled(struct locksvc *s, struct conn *c, struct op *o)
{
	struct op *t;

	if (c->fd >= 0 && !later_request(c, o)) {
		t = op_new(LT_RELEASE);
		if (t && (t->path = strdup(o->path))) {
			struct list *at = &c->queue;
			struct op *f;

			for_inflight(f, c)
				at = &f->link;

			t->kind = o->kind;
			t->owner = o->owner;
			store_vv(s, &t->vv);
			/* insert after `at` (the last op in flight) */
			t->link.prev = at;
			t->link.next = at->next;
			at->next->prev = &t->link;
			at->next = &t->link;
			kick(s);
		} else {
			free(t);
			log_rate(LOG_ERROR,
				 "locks: out of memory: a cancelled "
				 "lock of %s stays held until its session ends",
				 o->path);
		}
	}
	op_free(o);
}

/* An internal CANCEL of waiting op o (the mount was answered -EINTR). */
static void cancel_waiting(struct conn *c, struct op *o)
{
	struct op *t = op_new(LT_CANCEL);

	if (!t || !(t->path = strdup(o->path))) {
		free(t);
		log_rate(LOG_ERROR,
			 "locks: out of memory: a cancelled wait on "
			 "%s stays queued until its session ends",
			 o->path);
		return;
	}
	t->kind = o->kind;
	t->owner = o->owner;
	t->target_seq = o->seq;
	enqueue(c, t);
}

static void handover_start(struct locksvc *s, struct conn *c, struct op *o,
			   uint64_t token, const struct lt_vv *vv)
{
	struct lt_vv have;

	if (raft_state(&s->raft) != RAFT_LEADER) /* the leader's: on_applied */
		expect_set(s, c->session, s->node_id); /* back soon (hold) */
	/* the usual case: the store already has the previous holder's
	 * writes (or there are none); answer now, not at the next tick */
	store_vv(s, &have);
	if (vv_covered(vv, &have)) {
		op_done(c, o, 0, token);
		return;
	}
	list_del(&o->link);
	list_add_tail(&c->waiting, &o->link);
	o->state = OP_HANDOVER;
	o->token = token;
	o->vv = *vv;
	o->handover_at = clock_ms(CLOCK_MONOTONIC);
	if (!uv_is_active((uv_handle_t *)&s->handover))
		uv_timer_start(&s->handover, on_handover, 0, HANDOVER_TICK_MS);
}

/* Every lock of c is gone (its session expired): answer everything. */
static void session_lost(struct locksvc *s, struct conn *c)
{
	struct list *l, *n;

	if (c->session)
		log_msg(LOG_WARNING,
			"locks: session %" PRIu64 " of %s expired "
			"while this host was cut off: its locks are lost",
			c->session, c->host);
	c->session = 0;
	c->seq = 0;
	for (l = c->waiting.next; l != &c->waiting; l = n) {
		n = l->next;
		op_done(c, container_of(l, struct op, link), -ENOLCK, 0);
	}
	for (l = c->queue.next; l != &c->queue; l = n) {
		struct op *o = container_of(l, struct op, link);

		n = l->next;
		if (o->type == LT_OPEN_SESSION)
			continue;
		op_done(c, o, o->type == LT_RELEASE ? 0 : -ENOLCK, 0);
	}
	(void)s;
}

static struct op *find_waiting(struct conn *c, uint64_t seq)
{
	struct list *l;

	list_for(l, &c->waiting)
	{
		struct op *o = container_of(l, struct op, link);

		if (o->state == OP_WAITING && o->seq == seq)
			return o;
	}
	return NULL;
}

static int code_errno(enum lt_code code)
{
	switch (code) {
	case LT_WOULDBLOCK:
		return -EWOULDBLOCK;
	case LT_DEADLK:
		return -EDEADLK;
	case LT_MALFORMED:
		return -EINVAL;
	default:
		return -ENOLCK;
	}
}

/* The outcome of c's INFLIGHT op o. alive: c's session exists after it. */
static void complete(struct locksvc *s, struct conn *c, struct op *o,
		     enum lt_code code, uint64_t rsession, uint64_t token,
		     const struct lt_vv *vv, int alive)
{
	double ms = (double)(clock_ms(CLOCK_MONOTONIC) - o->first_sent);
	struct op *t;

	if (code == LT_GAP) { /* an op before o was lost: all again */
		s->gaps++;
		resend_all(s, c);
		return;
	}
	s->commit_ewma = s->commit_ewma ? 0.8 * s->commit_ewma + 0.2 * ms : ms;
	if (code == LT_NOT_FOUND && !alive && o->type != LT_CLOSE_SESSION &&
	    o->type != LT_OPEN_SESSION) {
		op_free(o);
		if (c->fd >= 0)
			session_lost(s, c);
		else
			c->session = 0;
		return;
	}
	switch (o->type) {
	case LT_OPEN_SESSION:
		c->opening = 0;
		if (code == LT_OK) {
			c->session = rsession;
			c->seq = 1;
		} else {
			log_rate(LOG_WARNING,
				 "locks: cannot open a session "
				 "for %s: %s",
				 c->host, lt_code_name(code));
			op_free(o);
			session_lost(s, c);
			return;
		}
		op_free(o);
		return;
	case LT_ACQUIRE:
		if (code == LT_GRANTED && o->cancel) {
			release_cancelled(s, c, o);
		} else if (code == LT_GRANTED) {
			handover_start(s, c, o, token, vv);
		} else if (code == LT_QUEUED) {
			list_del(&o->link);
			list_add_tail(&c->waiting, &o->link);
			o->state = OP_WAITING;
			if (o->answer && !o->told_queued)
				answer(c, o->id, LP_QUEUED, 0);
			o->told_queued = 1;
			if (o->cancel)
				cancel_waiting(c, o);
		} else {
			op_done(c, o, code_errno(code), 0);
		}
		return;
	case LT_CANCEL:
		t = find_waiting(c, o->target_seq);
		op_free(o);
		if (!t)
			return; /* its grant came first (grant()) */
		if (code == LT_GRANTED)
			release_cancelled(s, c, t);
		else
			op_done(c, t, -EINTR, 0);
		return;
	case LT_RELEASE:
		op_done(c, o, 0, 0);
		return;
	case LT_CLOSE_SESSION:
		op_free(o);
		c->session = 0;
		return;
	default: /* KEEPALIVE */
		op_free(o);
		return;
	}
}

static struct conn *conn_of_session(struct locksvc *s, uint64_t session);

static struct conn *conn_of_session(struct locksvc *s, uint64_t session)
{
	struct list *l;

	if (!session)
		return NULL;
	list_for(l, &s->conns)
	{
		struct conn *c = container_of(l, struct conn, link);

		if (c->session == session)
			return c;
	}
	return NULL;
}

static void conn_maybe_free(struct conn *c);

/* An outcome of (session, seq) or, for OPEN_SESSION, of nonce: from our
 * apply or a RESULT datagram. */
static void outcome(struct locksvc *s, uint64_t session, uint64_t seq,
		    uint64_t nonce, enum lt_code code, uint64_t rsession,
		    uint64_t token, const struct lt_vv *vv, int alive)
{
	struct list *l, *n;

	for (l = s->conns.next; l != &s->conns; l = n) {
		struct conn *c = container_of(l, struct conn, link);
		struct op *o;

		n = l->next;
		if (session && c->session != session)
			continue;
		for_inflight(o, c)
			if (session ? o->seq == seq && o->type != LT_OPEN_SESSION
				    : o->type == LT_OPEN_SESSION &&
					  o->nonce == nonce)
				break;
		if (!o)
			continue;
		complete(s, c, o, code, rsession, token, vv, alive);
		kick(s);
		conn_maybe_free(c);
		return;
	}
}

static void grant(struct locksvc *s, const struct lt_grant *g)
{
	struct conn *c = conn_of_session(s, g->session);
	struct op *o = c ? find_waiting(c, g->seq) : NULL;

	if (!o || o->owner != g->owner)
		return;
	if (o->cancel)
		release_cancelled(s, c, o);
	else
		handover_start(s, c, o, g->token, &g->vv);
}

struct recheck {
	struct locksvc *s;
	struct conn *c;
	struct op *o;
	int held, waits;
	uint64_t token;
};

static void recheck_entry(void *arg, const struct lt_entry *e)
{
	struct recheck *r = arg;

	if (e->session != r->c->session || e->owner != r->o->owner ||
	    e->kind != r->o->kind || strcmp(e->path, r->o->path) != 0)
		return;
	if (e->waiting && e->seq == r->o->seq)
		r->waits = 1;
	else if (!e->waiting) {
		r->held = 1;
		r->token = e->token;
	}
}

/* A snapshot replaced the table: entries were skipped, and with them
 * maybe the grants of our waiting requests. Look them up. */
static void recheck_waiting(struct locksvc *s)
{
	struct list *l, *m, *n;

	list_for(l, &s->conns)
	{
		struct conn *c = container_of(l, struct conn, link);

		for (m = c->waiting.next; m != &c->waiting; m = n) {
			struct op *o = container_of(m, struct op, link);
			struct recheck r = {.s = s, .c = c, .o = o};
			struct lt_lockinfo li;

			n = m->next;
			if (o->state != OP_WAITING)
				continue;
			lt_foreach(s->fsm.table, recheck_entry, &r);
			if (r.waits)
				continue;
			if (r.held && o->cancel)
				release_cancelled(s, c, o);
			else if (r.held && lt_query(s->fsm.table, o->kind,
						    o->path, &li) == 0)
				handover_start(s, c, o, li.token, &li.vv);
			else if (!r.held)
				op_done(c, o,
					lt_session(s->fsm.table, c->session,
						   &(struct lt_sessioninfo){0})
					    ? -ENOLCK
					    : -EINTR,
					0);
		}
	}
}

/* On the leader: tell the member that proposed cmd its outcome (it
 * would learn it from its own apply a heartbeat later). The index the
 * datagrams carry is the entry being applied: inside apply,
 * raft_last_applied is the one before it. */
static void send_result(struct locksvc *s, uint64_t to,
			const struct lt_cmd *cmd, const struct lt_result *res)
{
	unsigned char buf[LOCKDG_MSG_MAX];
	struct lt_sessioninfo si;
	struct lockdg_result r; /* not zeroed: its vv alone is 1 KiB */

	r.code = res->code;
	r.session = cmd->session;
	r.seq = cmd->seq;
	r.nonce = cmd->nonce;
	r.rsession = res->session;
	r.token = res->token;
	r.dup = res->dup;
	r.alive = lt_session(s->fsm.table,
			     cmd->session ? cmd->session : res->session,
			     &si) == 0;
	r.index = raft_last_applied(&s->raft) + 1;
	r.vv.n = res->code == LT_GRANTED ? res->vv.n : 0;
	memcpy(r.vv.e, res->vv.e, r.vv.n * sizeof(r.vv.e[0]));
	dg_queue(s, to, buf, lockdg_result_encode(buf, &r), NULL, 0);
}

/* The lockfsm hook: every applied command, on every member. */
static void on_applied(void *arg, const struct lt_cmd *cmd,
		       const struct lt_result *res, uint64_t origin)
{
	struct locksvc *s = arg;
	struct lt_stats st;
	struct lt_sessioninfo si;
	size_t i;

	if (!cmd && !res) {
		lt_stats(s->fsm.table, &st);
		s->last_orphans = st.orphans;
		recheck_waiting(s);
		return;
	}
	if (!list_empty(&s->parked) || s->pending_closes)
		kick(s);
	lt_stats(s->fsm.table, &st);
	if (cmd && cmd->type == LT_CLOSE_SESSION &&
	    conn_of_session(s, cmd->session))
		s->orphans_closed += st.orphans - s->last_orphans;
	else if (cmd && cmd->type == LT_EXPIRE)
		s->orphans_expired += st.orphans - s->last_orphans;
	s->last_orphans = st.orphans;
	if (!cmd)
		return;
	if (cmd->type == LT_RELEASE && res->code == LT_OK && !res->dup)
		s->releases++;
	if (cmd->type == LT_ACQUIRE && res->code == LT_QUEUED && !res->dup)
		s->waits++;
	for (i = 0; i < res->ngrants; i++) {
		grant(s, &res->grants[i]);
		if (raft_state(&s->raft) == RAFT_LEADER) {
			send_grant(s, &res->grants[i]);
			expect_granted(s, res->grants[i].session);
		}
	}
	if (cmd->type == LT_ACQUIRE && res->code == LT_GRANTED &&
	    raft_state(&s->raft) == RAFT_LEADER)
		expect_granted(s, cmd->session);
	if (cmd->type == LT_EXPIRE)
		return;
	if (origin && origin != s->self_id &&
	    raft_state(&s->raft) == RAFT_LEADER)
		send_result(s, origin, cmd, res);
	outcome(s, cmd->session, cmd->seq, cmd->nonce, res->code, res->session,
		res->token, &res->vv,
		lt_session(s->fsm.table,
			   cmd->session ? cmd->session : res->session,
			   &si) == 0);
}

/* ---- datagrams ---- */

static void seen(struct locksvc *s, uint64_t index)
{
	if (index > s->seen_index)
		s->seen_index = index;
}

/* The member that forwarded c serves c's store node (GRANT's routing). */
static void learn_node(struct locksvc *s, uint64_t from, const struct lt_cmd *c)
{
	struct lt_sessioninfo si;
	uint64_t node = c->type == LT_OPEN_SESSION ? c->node : 0;
	size_t i;

	if (!node && lt_session(s->fsm.table, c->session, &si) == 0)
		node = si.node;
	if (!node)
		return;
	for (i = 0; i < s->nmembers; i++)
		if (s->members[i].id == from)
			s->members[i].node = node;
}

/* On the leader: tell the member of g's host (the hook's grants). */
static void send_grant(struct locksvc *s, const struct lt_grant *g)
{
	unsigned char buf[LOCKDG_MSG_MAX];
	struct lt_sessioninfo si;
	size_t i;

	if (lt_session(s->fsm.table, g->session, &si) < 0 ||
	    si.node == s->node_id)
		return;
	for (i = 0; i < s->nmembers; i++)
		if (s->members[i].node == si.node &&
		    s->members[i].id != s->self_id)
			break;
	if (i == s->nmembers)
		return;
	dg_queue(s, s->members[i].id, buf,
		 lockdg_grant_encode(buf, g, raft_last_applied(&s->raft) + 1),
		 NULL, 0);
}

/* One message of a datagram; 1 when it was a proposal we took. */
static int on_one(struct locksvc *s, uint64_t from,
		  const unsigned char *p, size_t len)
{
	struct lockdg_msg m;
	raft_id lid;
	const char *addr;

	if (lockdg_decode(p, len, &m) < 0) {
		s->dg_malformed++;
		return 0;
	}
	switch (m.type) {
	case LOCKDG_PROPOSE:
		raft_leader(&s->raft, &lid, &addr);
		if (lid != s->self_id)
			return 0; /* the proposer retries at the leader */
		learn_node(s, from, &m.first);
		propose_here(s, m.unit, m.unit_len, m.ncmds, from);
		return 1;
	case LOCKDG_GRANT:
		seen(s, m.index);
		grant(s, &m.grant);
		return 0;
	case LOCKDG_RESULT:
		seen(s, m.result.index);
		outcome(s, m.result.session, m.result.seq, m.result.nonce,
			m.result.code, m.result.rsession, m.result.token,
			&m.result.vv, m.result.alive);
		return 0;
	default:
		return 0;
	}
}

/* A datagram from member `from`: a MULTI of messages. */
static void on_message(void *arg, uint64_t from, const void *buf, size_t len)
{
	struct locksvc *s = arg;
	const unsigned char *p = buf, *msg;
	struct member *mb;
	size_t off = 8, mlen;
	int i, n, proposed = 0;

	if (s->stopping || s->failed)
		return;
	n = lockdg_multi_check(p, len);
	if (n < 0) {
		s->dg_malformed++;
		return;
	}
	for (i = 0; i < n && lockdg_frame_next(p, len, &off, &msg, &mlen) == 0;
	     i++)
		proposed |= on_one(s, from, msg, mlen);
	if (proposed && (mb = member_of(s, from)))
		expect_drop_node(s, mb->node); /* once per datagram */
}

/* ---- reachability, retries, leases: the tick ----
 *
 * Silence is measured against twice the election timeout: a loaded host
 * (or a GC-like pause of a peer) misses a heartbeat now and then, and a
 * false "cut off" answers EWOULDBLOCK to requests that would have been
 * granted. Being wrong the other way is safe: a request then waits for
 * its outcome from the log, which never holds a false grant.
 */

static int is_reachable(struct locksvc *s)
{
	raft_id lid;
	const char *addr;
	size_t i, heard = 0;

	if (s->failed)
		return 0;
	raft_leader(&s->raft, &lid, &addr);
	if (!lid)
		return 0;
	if (lid != s->self_id)
		return raftnet_heard(s->net, lid, 2 * s->election_ms);
	for (i = 0; i < s->nmembers; i++)
		if (s->members[i].voter &&
		    (s->members[i].id == s->self_id ||
		     raftnet_heard(s->net, s->members[i].id,
				   2 * s->election_ms)))
			heard++;
	return heard > s->nvoters / 2;
}

/* Cut off: queued, not yet proposed, non-blocking LOCKs fail now. */
static void fail_nonblocking(struct conn *c)
{
	struct list *l, *n;

	for (l = c->queue.next; l != &c->queue; l = n) {
		struct op *o = container_of(l, struct op, link);

		n = l->next;
		if (o->state == OP_QUEUED && o->type == LT_ACQUIRE && !o->wait)
			op_done(c, o, -EWOULDBLOCK, 0);
	}
}

/*
 * A blocking LOCK without an answer yet (this member is cut off, a
 * leader is being elected, its grant waits for the store's handover) is
 * told LP_QUEUED after QUEUED_AFTER_MS: the
 * mount sends CANCEL only for a request it knows waits (lockproto.h),
 * so without it an interrupted flock -w would hang until the cluster
 * answers. The final RESULT follows as always.
 */
static void tell_queued(struct conn *c, int64_t now)
{
	struct list *l;

	struct list *heads[2] = {&c->queue, &c->waiting};
	int i;

	for (i = 0; i < 2; i++)
		list_for(l, heads[i])
		{
			struct op *o = container_of(l, struct op, link);

			if (o->type == LT_ACQUIRE && o->wait && o->answer &&
			    !o->told_queued &&
			    now - o->born >= QUEUED_AFTER_MS) {
				o->told_queued = 1;
				answer(c, o->id, LP_QUEUED, 0);
			}
		}
}

static void retry(struct locksvc *s, struct conn *c, int64_t now)
{
	struct op *o = conn_inflight(c);
	raft_id lid;
	const char *addr;

	if (!o || s->failed)
		return;
	raft_leader(&s->raft, &lid, &addr);
	if (!lid)
		return;
	if (lid != o->sent_leader || s->raft.current_term != o->sent_term) {
		resend_all(s, c); /* a new leader: at once */
		return;
	}
	if (lid != s->self_id && now - o->last_sent >= o->wait_ms) {
		/* lost, or the leader has a backlog: again, and wait twice
		 * as long next time, so that retries do not multiply a
		 * backlog (100,000 releases at once did, for a minute) */
		int64_t max = (int64_t)s->cfg.lock_lease_ms / 8;

		/* ...but never so long that a lost KEEPALIVE lets the lease
		 * of a live host run out: at most lease/8 */
		if (max > RETRY_MAX_MS)
			max = RETRY_MAX_MS;
		resend_all(s, c);
		o->wait_ms = o->wait_ms * 2 < max ? o->wait_ms * 2 : max;
		if (o->wait_ms < (int64_t)(3 * s->heartbeat_ms))
			o->wait_ms = (int64_t)(3 * s->heartbeat_ms);
	}
}

static void keepalive(struct locksvc *s, struct conn *c, int64_t now)
{
	struct op *o;

	if (c->fd < 0 || !c->session || !list_empty(&c->queue) ||
	    now - c->last_cmd < (int64_t)(s->cfg.lock_lease_ms / 4))
		return;
	o = op_new(LT_KEEPALIVE);
	if (o)
		enqueue(c, o);
}

struct expire_scan {
	struct locksvc *s;
	uint64_t now;
};

static void expire_one(void *arg, const struct lt_sessioninfo *si)
{
	struct expire_scan *e = arg;
	struct lt_cmd c;
	unsigned char buf[64];
	size_t len;

	if (e->now <= si->last_renew + si->lease_ms)
		return;
	memset(&c, 0, sizeof(c));
	c.type = LT_EXPIRE;
	c.now = e->now;
	c.target = si->id;
	c.renew = si->last_renew;
	len = lt_cmd_size(&c);
	if (!len || len > sizeof(buf) || lt_cmd_encode(&c, buf, len) < 0)
		return;
	log_msg(LOG_NOTICE,
		"locks: session %" PRIu64 " of %s silent for "
		"%" PRIu64 " ms: expiring it",
		si->id, si->name, e->now - si->last_renew);
	if (!e->s->batch.n)
		e->s->batch_first_us = now_us();
	lockfsm_batch_add(&e->s->batch, e->s->self_id, buf, len);
}

static void expire_scan(struct locksvc *s, int64_t now)
{
	struct expire_scan e = {.s = s, .now = (uint64_t)clock_ms(CLOCK_REALTIME)};

	if (s->leader_id != s->self_id ||
	    now - s->leader_since < (int64_t)s->cfg.lock_lease_ms ||
	    now - s->last_expire_scan < (int64_t)(s->cfg.lock_lease_ms / 4))
		return;
	s->last_expire_scan = now;
	lt_foreach_session(s->fsm.table, expire_one, &e);
}

static const char *role_name(struct locksvc *s)
{
	if (s->failed)
		return "failed";
	if (!s->reachable)
		return "cut-off";
	switch (raft_state(&s->raft)) {
	case RAFT_LEADER:
		return "leader";
	case RAFT_CANDIDATE:
		return "candidate";
	case RAFT_FOLLOWER:
		return s->self_voter ? "follower" : "standby";
	default:
		return "starting";
	}
}

static void publish(struct locksvc *s)
{
	struct locksvc_stats p;
	struct lt_stats st;
	struct raftnet_stats ns;
	struct list *l;

	memset(&p, 0, sizeof(p));
	snprintf(p.role, sizeof(p.role), "%s", role_name(s));
	p.reachable = s->reachable;
	if (!s->failed) {
		raft_id lid;
		const char *addr;

		raft_leader(&s->raft, &lid, &addr);
		snprintf(p.leader, sizeof(p.leader), "%s", member_name(s, lid));
		p.term = s->raft.current_term;
		p.last_index = raft_last_index(&s->raft);
	}
	if (s->fsm_inited) {
		lt_stats(s->fsm.table, &st);
		p.sessions = st.sessions;
		p.held_excl = st.held_excl;
		p.held_shared = st.held_shared;
		p.waiters = st.waiters;
		p.grants = st.grants;
		p.contentions = st.contentions;
	}
	p.commit_ms = (uint64_t)(s->commit_ewma + 0.5);
	p.releases = s->releases;
	p.waits = s->waits;
	p.orphans_closed = s->orphans_closed;
	p.orphans_expired = s->orphans_expired;
	p.gaps = s->gaps;
	p.resends = s->resends;
	p.fault_drops = s->fault_drops;
	p.dg_malformed = s->dg_malformed;
	list_for(l, &s->conns)
	{
		struct conn *c = container_of(l, struct conn, link);

		if (c->fd >= 0 && !c->main) /* mounts, not lanes */
			p.connections++;
	}
	if (s->net) {
		raftnet_stats(s->net, &ns);
		p.net_drop_cluster = ns.drop_cluster;
		p.net_drop_member = ns.drop_member;
		p.net_drop_key = ns.drop_key;
		p.net_drop_malformed = ns.drop_malformed;
		p.net_msgs_dropped = ns.msgs_dropped;
		p.net_drop_blocked = ns.drop_blocked;
	}
	pthread_mutex_lock(&s->lock);
	s->pub = p;
	pthread_mutex_unlock(&s->lock);
}

static void on_tick(uv_timer_t *t)
{
	struct locksvc *s = t->data;
	int64_t now = clock_ms(CLOCK_MONOTONIC);
	struct list *l, *n;
	int was = s->reachable;

	if (!s->failed) {
		raft_id lid;
		const char *addr;

		raft_leader(&s->raft, &lid, &addr);
		if (lid != s->leader_id ||
		    s->raft.current_term != s->leader_term) {
			if (lid == s->self_id && s->leader_id != s->self_id)
				s->leader_since = now;
			if (lid)
				log_msg(
				    LOG_INFO, "locks: leader %s, term %llu",
				    member_name(s, lid),
				    (unsigned long long)s->raft.current_term);
			s->leader_id = lid;
			s->leader_term = s->raft.current_term;
		}
		s->reachable = is_reachable(s);
		if (was != s->reachable)
			log_msg(
			    LOG_NOTICE, "locks: %s",
			    s->reachable
				? "in touch with the lock cluster's majority"
				: "cut off from the lock cluster's majority");
	}
	for (l = s->conns.next; l != &s->conns; l = n) {
		struct conn *c = container_of(l, struct conn, link);

		n = l->next;
		if (!s->reachable && c->fd >= 0)
			fail_nonblocking(c);
		if (c->fd >= 0)
			tell_queued(c, now);
		retry(s, c, now);
		keepalive(s, c, now);
	}
	if (!s->failed)
		expire_scan(s, now);
	if (s->pending_closes || !list_empty(&s->parked))
		kick(s);
	publish(s);
}

/* Grants waiting for the store (invariant 3). */
static void on_handover(uv_timer_t *t)
{
	struct locksvc *s = t->data;
	struct lt_vv have;
	struct list *l, *m, *n;
	int64_t now = clock_ms(CLOCK_MONOTONIC);
	int any = 0;

	store_vv(s, &have);
	list_for(l, &s->conns)
	{
		struct conn *c = container_of(l, struct conn, link);

		for (m = c->waiting.next; m != &c->waiting; m = n) {
			struct op *o = container_of(m, struct op, link);

			n = m->next;
			if (o->state != OP_HANDOVER)
				continue;
			if (vv_covered(&o->vv, &have)) {
				op_done(c, o, 0, o->token);
				continue;
			}
			any = 1;
			if (!o->logged &&
			    now - o->handover_at > HANDOVER_LOG_MS) {
				o->logged = 1;
				log_msg(LOG_WARNING,
					"locks: a grant of %s waits "
					"%d s for this store to receive the "
					"previous holder's writes",
					o->path, HANDOVER_LOG_MS / 1000);
			}
		}
	}
	if (!any)
		uv_timer_stop(t);
}

/* ---- the control socket ---- */

static void conn_closed_cb(uv_handle_t *h)
{
	struct conn *c = h->data;

	c->polling = 0;
	conn_maybe_free(c);
}

static void conn_drop_out(struct conn *c)
{
	while (!list_empty(&c->out)) {
		struct outmsg *m =
		    container_of(c->out.next, struct outmsg, link);

		list_del(&m->link);
		free(m);
	}
}

static void conn_drop_ops(struct conn *c, struct list *head, int keep_inflight)
{
	struct list *l, *n;

	for (l = head->next; l != head; l = n) {
		struct op *o = container_of(l, struct op, link);

		n = l->next;
		if (keep_inflight && o->state == OP_INFLIGHT)
			continue;
		if (o->type == LT_OPEN_SESSION && o->state != OP_INFLIGHT)
			c->opening = 0;
		op_free(o);
	}
}

struct held {
	struct conn *c;
	struct lt_vv vv;
};

static void release_held(void *arg, const struct lt_entry *e)
{
	struct held *h = arg;
	struct op *o;

	if (e->waiting || e->session != h->c->session)
		return;
	o = op_new(LT_RELEASE);
	if (!o || !(o->path = strdup(e->path))) {
		free(o);
		return; /* CLOSE_SESSION releases it, without the vv */
	}
	o->kind = e->kind;
	o->owner = e->owner;
	o->vv = h->vv;
	list_add_tail(&h->c->queue, &o->link);
	h->c->s->orphans_closed++;
}

/* The second half of conn_close, once this member's table has applied
 * every outcome already answered to the mount. */
static void conn_finish_close(struct conn *c)
{
	struct held h = {.c = c};
	struct op *o;

	if (c->close_pending)
		c->s->pending_closes--;
	c->close_pending = 0;
	if (c->session && c->s->fsm_inited && !c->s->failed) {
		store_vv(c->s, &h.vv);
		lt_foreach(c->s->fsm.table, release_held, &h);
	}
	o = op_new(LT_CLOSE_SESSION);
	if (o) {
		list_add_tail(&c->queue, &o->link);
		kick(c->s);
	}
}

/*
 * The mount went away: stop reading, drop its requests, and close its
 * session in the table (its locks are released at once). A mount that
 * died did not unlock: release what this member's table shows it holding
 * with the store's version vector first, so the next holders still wait
 * for its last writes. For the table to show every grant the mount was
 * told of, that waits until this member has applied the entries of the
 * datagrams it answered from (seen_index; on_kick finishes it).
 */
static void conn_close(struct conn *c)
{
	struct op *o;
	int i, lane = c->main != NULL;

	if (c->fd < 0)
		return;
	if (lane) {
		c->main = NULL; /* the fd is the main connection's */
	} else {
		for (i = 1; i < LANES; i++)
			if (c->lanes[i])
				conn_close(c->lanes[i]);
		if (c->polling)
			uv_close((uv_handle_t *)&c->poll, conn_closed_cb);
		close(c->fd);
	}
	c->fd = -1;
	unpark(c->s, c);
	conn_drop_out(c);
	conn_drop_ops(c, &c->waiting, 0);
	conn_drop_ops(c, &c->queue, 1);
	for_inflight(o, c)
		o->answer = 0;
	if ((c->session || c->opening) && !c->s->stopping) {
		if (!c->s->failed &&
		    raft_last_applied(&c->s->raft) < c->s->seen_index) {
			c->close_pending = 1;
			c->close_index = c->s->seen_index;
			c->s->pending_closes++;
		} else {
			conn_finish_close(c);
		}
	}
	/* a lane is freed by on_kick: its main connection's close may run
	 * inside a walk of svc's list, whose next element it may be */
	if (lane)
		kick(c->s);
	else
		conn_maybe_free(c);
}

static void conn_maybe_free(struct conn *c)
{
	if (c->fd >= 0 || c->polling || (c->close_pending && !c->s->stopping))
		return;
	if (c->close_pending)
		c->s->pending_closes--;
	if (!list_empty(&c->queue) && !c->s->stopping)
		return;
	conn_drop_ops(c, &c->queue, 0);
	conn_drop_ops(c, &c->waiting, 0);
	list_del(&c->link);
	free(c);
}

static void on_hello(struct locksvc *s, struct conn *c, const struct lp_msg *m,
		     const char *path)
{
	struct lp_msg r = {.version = LP_VERSION,
			   .type = LP_HELLO,
			   .id = m->id,
			   .lease_ms = (uint32_t)s->cfg.lock_lease_ms};
	struct op *o;

	if (c->hello) {
		conn_close(c);
		return;
	}
	c->hello = 1;
	if (m->pathlen && m->pathlen <= LT_NAME_MAX)
		snprintf(c->host, sizeof(c->host), "%.*s", (int)m->pathlen,
			 path);
	else
		snprintf(c->host, sizeof(c->host), "%s", s->cfg.node_name);
	conn_send(c, &r, NULL, 0);
	if (s->failed || c->fd < 0)
		return;
	o = op_new(LT_OPEN_SESSION);
	if (!o)
		return;
	randombytes_buf(&o->nonce, sizeof(o->nonce));
	c->opening = 1;
	enqueue(c, o);
}

static void query_answer(struct locksvc *s, struct conn *c, uint64_t id,
			 uint32_t kind, const char *p)
{
	struct lp_msg r = {.version = LP_VERSION, .type = LP_STATE, .id = id};
	struct lt_lockinfo li;
	int err;

	err = lt_query(s->fsm.table, kind, p, &li);
	if (err == -ENOENT) {
		r.ltype = LT_UNLOCKED;
		conn_send(c, &r, NULL, 0);
		return;
	}
	r.ltype = li.mode;
	r.holders = li.holders;
	r.pid = (int32_t)li.pid;
	r.token = li.token;
	r.waiters = li.waiters;
	conn_send(c, &r, li.mode ? li.host : NULL,
		  li.mode ? strlen(li.host) : 0);
}

/*
 * QUERY reads this member's table. A request answered from a RESULT or
 * GRANT datagram may not be applied here yet: the query then waits
 * (parked) until it is, so a mount reads its own locks back. It does not
 * wait for entries nobody told us of: a follower may lag the leader by
 * a heartbeat (locksvc.h).
 */
static void on_query(struct locksvc *s, struct conn *c, const struct lp_msg *m,
		     const char *path)
{
	struct lp_msg r = {
	    .version = LP_VERSION, .type = LP_STATE, .id = m->id};
	char p[LP_PATH_MAX + 1];
	struct parked *q;

	snprintf(p, sizeof(p), "%.*s", (int)m->pathlen, path);
	if (s->failed || !s->fsm_inited) {
		r.err = -ENOLCK;
		conn_send(c, &r, NULL, 0);
		return;
	}
	if (raft_last_applied(&s->raft) >= s->seen_index) {
		query_answer(s, c, m->id, m->kind, p);
		return;
	}
	q = malloc(sizeof(*q) + strlen(p) + 1);
	if (!q) {
		r.err = -ENOLCK;
		conn_send(c, &r, NULL, 0);
		return;
	}
	q->c = c;
	q->id = m->id;
	q->kind = m->kind;
	q->index = s->seen_index;
	memcpy(q->path, p, strlen(p) + 1);
	list_add_tail(&s->parked, &q->link);
}

/* Answer the parked queries this member has now applied far enough
 * for; c non-NULL: drop c's (it closed). */
static void unpark(struct locksvc *s, struct conn *gone)
{
	raft_index applied = raft_last_applied(&s->raft);
	struct list *l, *n;

	for (l = s->parked.next; l != &s->parked; l = n) {
		struct parked *q = container_of(l, struct parked, link);

		n = l->next;
		if (q->c != gone && (gone || q->index > applied))
			continue;
		if (!gone)
			query_answer(s, q->c, q->id, q->kind, q->path);
		list_del(&q->link);
		free(q);
	}
}

static struct op *find_op(struct conn *c, uint64_t id)
{
	struct list *heads[2] = {&c->queue, &c->waiting}, *l;
	int i;

	for (i = 0; i < 2; i++)
		list_for(l, heads[i])
		{
			struct op *o = container_of(l, struct op, link);

			if (o->answer && o->id == id && o->type == LT_ACQUIRE)
				return o;
		}
	return NULL;
}

/*
 * CANCEL answers the LOCK -EINTR at once, also while this member is cut
 * off (a wait must stay interruptible); what the table still holds for
 * it is undone behind the mount's back: a proposed ACQUIRE that turns
 * out QUEUED is cancelled, one that turns out GRANTED (or a waiter
 * granted before its CANCEL applies) is released (release_cancelled).
 * So is a grant still waiting for this store to receive the previous
 * holder's writes (HANDOVER): the mount never learnt of it.
 */
static void on_cancel(struct conn *m, uint64_t id)
{
	struct conn *c = m;
	struct op *o = find_op(c, id);
	int i;

	for (i = 1; !o && i < LANES; i++)
		if (m->lanes[i] && (o = find_op(m->lanes[i], id)))
			c = m->lanes[i];

	if (!o || o->cancel)
		return;
	if (o->state == OP_QUEUED) {
		op_done(c, o, -EINTR, 0);
		return;
	}
	if (o->state == OP_HANDOVER) {
		answer(c, o->id, -EINTR, 0);
		release_cancelled(c->s, c, o);
		return;
	}
	answer(c, o->id, -EINTR, 0);
	o->answer = 0;
	o->cancel = 1;
	if (o->state == OP_WAITING)
		cancel_waiting(c, o);
}

/* The lane of c that serves owner: always the same one, so an owner's
 * requests (and the CANCEL or RELEASE of its ACQUIRE) stay in order in
 * one session. NULL when a new lane cannot be made. */
static struct conn *lane_of(struct conn *c, uint64_t owner)
{
	uint64_t h = owner * 0x9e3779b97f4a7c15ull; /* owners are pointers */
	unsigned i = (unsigned)((h >> 32) % LANES);
	struct conn *l;

	if (i == 0 || c->lanes[i])
		return i ? c->lanes[i] : c;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->s = c->s;
	l->fd = c->fd;
	l->hello = 1;
	l->main = c;
	l->last_cmd = clock_ms(CLOCK_MONOTONIC);
	memcpy(l->host, c->host, sizeof(l->host));
	list_init(&l->queue);
	list_init(&l->waiting);
	list_init(&l->out);
	list_add_tail(&c->s->conns, &l->link);
	c->lanes[i] = l;
	return l;
}

static void on_lock(struct locksvc *s, struct conn *c, const struct lp_msg *m,
		    const char *path)
{
	int unlock = m->type == LP_RELEASE || m->ltype == LT_UNLOCKED;
	struct conn *lane;
	struct op *o;

	if (m->pathlen == 0) {
		if (m->type == LP_LOCK)
			answer(c, m->id, -EINVAL, 0);
		return;
	}
	if (s->failed) {
		if (m->type == LP_LOCK)
			answer(c, m->id, unlock ? 0 : -ENOLCK, 0);
		return;
	}
	if (!unlock && !m->wait && !s->reachable) {
		answer(c, m->id, -EWOULDBLOCK, 0);
		return;
	}
	lane = lane_of(c, m->owner);
	if (!lane) {
		if (m->type == LP_LOCK)
			answer(c, m->id, -ENOLCK, 0);
		return;
	}
	c = lane;
	o = op_new(unlock ? LT_RELEASE : LT_ACQUIRE);
	if (!o || !(o->path = strndup(path, m->pathlen))) {
		free(o);
		if (m->type == LP_LOCK)
			answer(c, m->id, -ENOLCK, 0);
		return;
	}
	o->answer = m->type == LP_LOCK;
	o->id = m->id;
	o->kind = m->kind;
	o->mode = unlock ? LT_UNLOCKED : m->ltype;
	o->wait = (int)m->wait;
	o->owner = m->owner;
	o->pid = (uint32_t)m->pid;
	o->born = clock_ms(CLOCK_MONOTONIC);
	if (o->wait && o->answer && !unlock && !s->reachable) {
		o->told_queued = 1; /* no outcome soon: see tell_queued */
		answer(c, o->id, LP_QUEUED, 0);
	}
	if (unlock)
		store_vv(s, &o->vv);
	if (enqueue(c, o) < 0)
		op_done(c, o, -ENOLCK, 0);
}

static void conn_message(struct locksvc *s, struct conn *c,
			 const unsigned char *buf, size_t n)
{
	struct lp_msg m = {0};
	const char *path = (const char *)buf + sizeof(m);

	if (lp_check(buf, n) < 0) {
		memcpy(&m, buf, n < sizeof(m) ? n : sizeof(m));
		if (n >= 8 && m.type == LP_HELLO && m.version != LP_VERSION) {
			struct lp_msg r = {.version = LP_VERSION,
					   .type = LP_HELLO,
					   .err = -EPROTO};

			conn_send(c, &r, NULL, 0);
		}
		log_rate(LOG_WARNING,
			 "locks: a malformed message from a mount: "
			 "closing its connection");
		conn_close(c);
		return;
	}
	memcpy(&m, buf, sizeof(m));
	if (m.type != LP_HELLO && !c->hello) {
		conn_close(c);
		return;
	}
	switch (m.type) {
	case LP_HELLO:
		on_hello(s, c, &m, path);
		break;
	case LP_LOCK:
	case LP_RELEASE:
		on_lock(s, c, &m, path);
		break;
	case LP_CANCEL:
		on_cancel(c, m.id);
		break;
	case LP_QUERY:
		on_query(s, c, &m, path);
		break;
	default: /* RESULT, STATE: ours to send */
		conn_close(c);
	}
}

static void on_conn(uv_poll_t *h, int status, int events)
{
	struct conn *c = h->data;
	struct locksvc *s = c->s;
	static unsigned char buf[LP_MSG_MAX + 1];
	int i;

	if (status < 0) {
		conn_close(c);
		return;
	}
	if (events & UV_WRITABLE) {
		conn_flush(c);
		if (c->broken)
			return;
		conn_poll_events(c);
	}
	for (i = 0;
	     (events & UV_READABLE) && !c->broken && c->fd >= 0 && i < 64;
	     i++) {
		ssize_t n =
		    recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0 &&
		    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		if (n <= 0) {
			conn_close(c);
			break;
		}
		if ((size_t)n > LP_MSG_MAX) {
			log_rate(LOG_WARNING,
				 "locks: an oversized message from a "
				 "mount: closing its connection");
			conn_close(c);
			break;
		}
		conn_message(s, c, buf, (size_t)n);
	}
}

static void on_listen(uv_poll_t *h, int status, int events)
{
	struct locksvc *s = h->data;
	int fd;

	(void)events;
	if (status < 0)
		return;
	while ((fd = accept4(s->listen_fd, NULL, NULL,
			     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct conn *c = calloc(1, sizeof(*c));

		if (!c || uv_poll_init(&s->loop, &c->poll, fd) < 0) {
			free(c);
			close(fd);
			log_rate(LOG_ERROR, "locks: cannot take a mount's "
					    "connection");
			continue;
		}
		c->s = s;
		c->fd = fd;
		c->poll.data = c;
		c->polling = 1;
		c->last_cmd = clock_ms(CLOCK_MONOTONIC);
		list_init(&c->queue);
		list_init(&c->waiting);
		list_init(&c->out);
		list_add_tail(&s->conns, &c->link);
		c->poll_events = UV_READABLE;
		uv_poll_start(&c->poll, UV_READABLE, on_conn);
	}
}

static int listen_control(struct locksvc *s, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	mode_t old;

	if (strlen(s->sock_path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control socket path too long: %s",
			 s->sock_path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, s->sock_path, strlen(s->sock_path) + 1);
	s->listen_fd =
	    socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0)
		goto fail;
	unlink(s->sock_path); /* a stale one: the store is ours (locked) */
	old = umask(077);
	if (bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		umask(old);
		goto fail;
	}
	umask(old);
	if (chmod(s->sock_path, 0600) < 0 || listen(s->listen_fd, 64) < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "control socket %s: %s", s->sock_path,
		 strerror(errno));
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	s->listen_fd = -1;
	return -errno;
}

/* ---- raft ---- */

static int mkdir_p(const char *dir)
{
	char p[PATH_MAX + 16];
	size_t i;

	snprintf(p, sizeof(p), "%s", dir);
	for (i = 1; p[i]; i++)
		if (p[i] == '/') {
			p[i] = '\0';
			if (mkdir(p, 0700) < 0 && errno != EEXIST)
				return -errno;
			p[i] = '/';
		}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int start_net(struct locksvc *s, char *err, size_t errlen)
{
	struct config_lock_member cm[CONFIG_PEERS_MAX + 1];
	struct raftnet_member rm[CONFIG_PEERS_MAX + 1];
	struct raftnet_opts o;
	char block[PATH_MAX + 16];
	size_t n = config_lock_members(&s->cfg, cm), i;

	memset(rm, 0, sizeof(rm));
	for (i = 0; i < n; i++) {
		rm[i].id = cm[i].id;
		snprintf(rm[i].name, sizeof(rm[i].name), "%s", cm[i].name);
		snprintf(rm[i].endpoint, sizeof(rm[i].endpoint), "%s",
			 cm[i].address);
		snprintf(rm[i].public_key, sizeof(rm[i].public_key), "%s",
			 cm[i].public_key);
		s->members[i].id = cm[i].id;
		snprintf(s->members[i].name, sizeof(s->members[i].name), "%s",
			 cm[i].name);
		s->members[i].voter = cm[i].voter;
		s->nvoters += cm[i].voter;
		if (cm[i].self) {
			s->self_id = cm[i].id;
			s->self_voter = cm[i].voter;
		}
	}
	s->nmembers = n;
	memset(&o, 0, sizeof(o));
	o.loop = &s->loop;
	o.self = s->self_id;
	o.members = rm;
	o.nmembers = n;
	o.listen = s->cfg.lock_listen;
	o.secret_key = s->cfg.insecure ? NULL : s->cfg.secret_key;
	o.public_key = s->cfg.insecure ? NULL : s->cfg.public_key;
	o.cluster_id = s->cfg.lock_cluster_id;
	/* the replicator's fault point cuts lock traffic too (status.c) */
	snprintf(block, sizeof(block), "%s/repl.block", s->cfg.store_dir);
	o.block_file = block;
	o.on_message = on_message;
	o.arg = s;
	return raftnet_new(&o, &s->net, err, errlen);
}

static int start_raft(struct locksvc *s, char *err, size_t errlen)
{
	struct raft_configuration conf;
	char dir[PATH_MAX + 16];
	size_t i;
	int rv;

	if (s->cfg.lock_dir[0])
		snprintf(dir, sizeof(dir), "%s", s->cfg.lock_dir);
	else
		snprintf(dir, sizeof(dir), "%s/raft", s->cfg.store_dir);
	if ((rv = mkdir_p(dir)) < 0) {
		snprintf(err, errlen, "raft dir %.300s: %s", dir,
			 strerror(-rv));
		return rv;
	}
	if ((rv = lockfsm_init(&s->fsm, NULL)) < 0) {
		snprintf(err, errlen, "out of memory");
		return rv;
	}
	s->fsm_inited = 1;
	lockfsm_set_hook(&s->fsm, on_applied, s);
	rv = raft_uv_init(&s->io, &s->loop, dir, raftnet_transport(s->net));
	if (rv) {
		snprintf(err, errlen, "raft dir %.300s: %.150s", dir,
			 s->io.errmsg);
		return -EIO;
	}
	s->io_inited = 1;
	raft_uv_set_segment_size(&s->io, 1u << 20);
	(void)raft_uv_set_snapshot_compression(&s->io, false);
	raft_uv_set_connect_retry_delay(&s->io, (unsigned)s->heartbeat_ms * 2);
	if (raftguard_wrap(&s->io) < 0) {
		snprintf(err, errlen, "raftguard: no room");
		return -ENOSPC;
	}
	s->guarded = 1;
	rv = raft_init(&s->raft, &s->io, &s->fsm.fsm, s->self_id,
		       s->cfg.node_name);
	if (rv) {
		snprintf(err, errlen, "raft: %s", raft_strerror(rv));
		return -EIO;
	}
	s->raft_inited = 1;
	s->raft.data = s;
	raft_set_pre_vote(&s->raft, true);
	raft_set_election_timeout(&s->raft, (unsigned)s->election_ms);
	raft_set_heartbeat_timeout(&s->raft, (unsigned)s->heartbeat_ms);
	/* libraft stalls appends while it takes a snapshot (tens of ms):
	 * every 1,024 entries, that was every ~0.7 s under load, and the
	 * p99 grant of 8 lockers on one file was 66-74 ms; every 8,192 it
	 * is 15-22 ms. The log kept meanwhile is small: a batch of lock
	 * commands is about 1 KiB. */
	raft_set_snapshot_threshold(&s->raft, 8192);
	raft_set_snapshot_trailing(&s->raft, 1024);
	raft_set_install_snapshot_timeout(&s->raft, LOCKFSM_SNAPSHOT_RESEND_MS);
	raft_configuration_init(&conf);
	for (i = 0; i < s->nmembers; i++)
		if (raft_configuration_add(
			&conf, s->members[i].id, s->members[i].name,
			s->members[i].voter ? RAFT_VOTER : RAFT_STANDBY)) {
			raft_configuration_close(&conf);
			snprintf(err, errlen, "raft: out of memory");
			return -ENOMEM;
		}
	rv = raft_bootstrap(&s->raft, &conf);
	raft_configuration_close(&conf);
	if (rv && rv != RAFT_CANTBOOTSTRAP) {
		snprintf(err, errlen, "raft bootstrap in %.300s: %.150s", dir,
			 raft_errmsg(&s->raft));
		return -EIO;
	}
	rv = raft_start(&s->raft);
	if (rv) {
		snprintf(err, errlen, "raft start in %.300s: %.150s", dir,
			 raft_errmsg(&s->raft));
		return -EIO;
	}
	return 0;
}

/* ---- the thread ---- */

static void handle_closed(uv_handle_t *h)
{
	(void)h;
}

static void net_closed(void *arg)
{
	struct locksvc *s = arg;

	s->net = NULL;
	uv_close((uv_handle_t *)&s->stop_async, handle_closed);
}

static void raft_closed(struct raft *r)
{
	struct locksvc *s = r->data;

	if (s->guarded)
		raftguard_unwrap(&s->io);
	s->guarded = 0;
	raft_uv_close(&s->io);
	s->io_inited = 0;
	if (s->net)
		raftnet_close(s->net, net_closed, s);
	else
		uv_close((uv_handle_t *)&s->stop_async, handle_closed);
}

static void on_stop(uv_async_t *a)
{
	struct locksvc *s = a->data;
	struct list *l, *n;

	if (s->stopping)
		return;
	s->stopping = 1;
	uv_close((uv_handle_t *)&s->tick, handle_closed);
	uv_close((uv_handle_t *)&s->handover, handle_closed);
	uv_close((uv_handle_t *)&s->kick, handle_closed);
	uv_close((uv_handle_t *)&s->hold, handle_closed);
	uv_close((uv_handle_t *)&s->flush_prep, handle_closed);
	uv_close((uv_handle_t *)&s->flush_check, handle_closed);
	if (s->listen_fd >= 0) {
		uv_close((uv_handle_t *)&s->listen_poll, handle_closed);
		close(s->listen_fd);
		s->listen_fd = -1;
		unlink(s->sock_path);
	}
	for (l = s->conns.next; l != &s->conns; l = n) {
		n = l->next;
		conn_close(container_of(l, struct conn, link));
	}
	if (s->raft_inited) {
		raft_close(&s->raft, raft_closed);
	} else {
		if (s->guarded)
			raftguard_unwrap(&s->io);
		s->guarded = 0;
		if (s->io_inited)
			raft_uv_close(&s->io);
		s->io_inited = 0;
		if (s->net)
			raftnet_close(s->net, net_closed, s);
		else
			uv_close((uv_handle_t *)&s->stop_async, handle_closed);
	}
}

static void *svc_main(void *arg)
{
	struct locksvc *s = arg;
	char err[512] = "";
	sigset_t all;
	size_t i;

	/* signals are the main thread's (no SA_RESTART surprises here) */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	if (start_net(s, err, sizeof(err)) < 0 ||
	    start_raft(s, err, sizeof(err)) < 0) {
		log_msg(LOG_ERROR,
			"locks: the lock service cannot start: %s; "
			"every lock request fails with ENOLCK",
			err);
		s->failed = 1;
	} else {
		log_msg(LOG_NOTICE,
			"locks: cluster %s, member %s (raft id %" PRIu64
			", %s), %zu members, lock endpoint %s",
			s->cfg.lock_cluster, s->cfg.node_name, s->self_id,
			s->self_voter ? "voter" : "standby", s->nmembers,
			s->cfg.lock_listen);
	}
	publish(s);
	uv_run(&s->loop, UV_RUN_DEFAULT);
	while (!list_empty(&s->parked)) {
		struct parked *q =
		    container_of(s->parked.next, struct parked, link);

		list_del(&q->link);
		free(q);
	}
	/* closing: connections that still wait for a CLOSE are let go */
	while (!list_empty(&s->conns)) {
		struct conn *c = container_of(s->conns.next, struct conn, link);

		conn_drop_ops(c, &c->queue, 0);
		conn_drop_out(c);
		conn_drop_ops(c, &c->waiting, 0);
		list_del(&c->link);
		free(c);
	}
	if (s->fsm_inited)
		lockfsm_close(&s->fsm);
	s->fsm_inited = 0;
	lockfsm_batch_free(&s->batch);
	for (i = 0; i < s->nmembers; i++)
		free(s->members[i].out.p);
	uv_loop_close(&s->loop);
	return NULL;
}

int locksvc_start(const struct config *cfg, struct store *store,
		  struct locksvc **out, char *err, size_t errlen)
{
	struct locksvc *s = calloc(1, sizeof(*s));
	struct store_info si;
	const char *fault;
	int rv;

	*out = NULL;
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->cfg = *cfg;
	s->cfg.so.node_name = NULL;
	s->store = store;
	s->listen_fd = -1;
	list_init(&s->conns);
	list_init(&s->parked);
	pthread_mutex_init(&s->lock, NULL);
	if (!cfg->node_name[0]) {
		snprintf(err, errlen, "[locks] needs [node] name");
		free(s);
		return -EINVAL;
	}
	if (store_info(store, &si) < 0) {
		snprintf(err, errlen, "cannot read the store's node id");
		free(s);
		return -EIO;
	}
	s->node_id = si.node_id;
	s->election_ms = cfg->lock_election_ms ? cfg->lock_election_ms : 300;
	fault = getenv("STATEFS_FAULT_LOCK_DROP");
	if (fault && *fault) {
		char *end;
		unsigned long v = strtoul(fault, &end, 10);

		if (*end || v > 1000) {
			log_msg(LOG_WARNING,
				"STATEFS_FAULT_LOCK_DROP=%s is not a number "
				"0..1000: ignored", fault);
		} else {
			s->fault_drop = (unsigned)v;
			s->fault_rng =
			    (uint64_t)getpid() * 0x9e3779b97f4a7c15ull | 1;
			log_msg(LOG_NOTICE,
				"fault point: dropping %u of every 1000 lock "
				"messages to other members "
				"(STATEFS_FAULT_LOCK_DROP=%s)",
				s->fault_drop, fault);
		}
	}
	s->heartbeat_ms = s->election_ms / 6 ? s->election_ms / 6 : 1;
	if (cfg->control[0])
		snprintf(s->sock_path, sizeof(s->sock_path), "%s",
			 cfg->control);
	else
		snprintf(s->sock_path, sizeof(s->sock_path), "%s/repl.sock",
			 cfg->store_dir);
	snprintf(s->pub.role, sizeof(s->pub.role), "starting");
	if ((rv = uv_loop_init(&s->loop)) < 0) {
		snprintf(err, errlen, "libuv: %s", uv_strerror(rv));
		free(s);
		return -ENOMEM;
	}
	rv = listen_control(s, err, errlen);
	if (rv < 0) {
		uv_loop_close(&s->loop);
		free(s);
		return rv;
	}
	uv_async_init(&s->loop, &s->stop_async, on_stop);
	s->stop_async.data = s;
	uv_timer_init(&s->loop, &s->tick);
	s->tick.data = s;
	uv_timer_init(&s->loop, &s->handover);
	s->handover.data = s;
	uv_timer_init(&s->loop, &s->kick);
	s->kick.data = s;
	uv_timer_init(&s->loop, &s->hold);
	s->hold.data = s;
	uv_prepare_init(&s->loop, &s->flush_prep);
	s->flush_prep.data = s;
	uv_prepare_start(&s->flush_prep, on_flush_prep);
	uv_check_init(&s->loop, &s->flush_check);
	s->flush_check.data = s;
	uv_check_start(&s->flush_check, on_flush_check);
	uv_poll_init(&s->loop, &s->listen_poll, s->listen_fd);
	s->listen_poll.data = s;
	uv_poll_start(&s->listen_poll, UV_READABLE, on_listen);
	uv_timer_start(&s->tick, on_tick, s->heartbeat_ms, s->heartbeat_ms);
	if (pthread_create(&s->thread, NULL, svc_main, s)) {
		snprintf(err, errlen, "cannot start a thread");
		close(s->listen_fd);
		unlink(s->sock_path);
		free(s); /* the loop's handles die with the process */
		return -EAGAIN;
	}
	*out = s;
	return 0;
}

void locksvc_stop(struct locksvc **sp)
{
	struct locksvc *s = *sp;

	if (!s)
		return;
	uv_async_send(&s->stop_async);
	pthread_join(s->thread, NULL);
	pthread_mutex_destroy(&s->lock);
	free(s);
	*sp = NULL;
}

void locksvc_stats(struct locksvc *s, struct locksvc_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->pub;
	pthread_mutex_unlock(&s->lock);
}
