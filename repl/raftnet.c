/*
 * raftnet.c — libraft's transport and the lock datagrams over ZeroMQ
 * (the contract is raftnet.h).
 *
 * Sockets. One ROUTER bound at our endpoint receives everything; one
 * DEALER per other member sends everything to that member's ROUTER
 * (ZMQ_IMMEDIATE: a frame is queued only on a live connection, so a
 * send to a member that is not connected fails at once with EAGAIN).
 * Traffic A -> B always goes A's DEALER -> B's ROUTER; the ROUTER never
 * sends. All sockets live in our own ZeroMQ context (the replicator's
 * allowlist is another context's), whose ZAP handler (zaphandler.c's
 * thread, asking zap_admit) admits exactly the members' public keys and
 * names the key as the connection's User-Id, so every frame we receive
 * tells which key sent it.
 *
 * The loop. ZMQ_FD of the ROUTER is edge-triggered: a uv_poll on it
 * wakes us, and the ROUTER is drained until ZMQ_EVENTS has no POLLIN.
 * Only that drain touches the ROUTER (it never sends), so nothing else
 * can consume its edge; the 50 ms tick drains it too, as a safety net.
 * A drain takes at most RN_DRAIN_FRAMES frames and goes on at the next
 * turn of the loop (an idle handle), so libraft, on the same loop,
 * reads what came meanwhile; and it pauses while the bytes waiting for
 * libraft pass RN_DRAIN_PAUSE, until they are written (stream_flush);
 * a pause longer than RN_STALL_MS resets the stream holding the most
 * (libraft does not read it), so one stuck stream cannot stop the rest.
 * Unbounded, one drain of a big AppendEntries or snapshot queued the
 * whole of it before libraft could read any, and past RN_PENDING_MAX
 * the stream was reset, again and again.
 * (A drain after every loop iteration, as there was, cost a getpid and
 * a poll in libzmq per iteration: a quarter of the lock service's
 * system calls.) The tick also re-reads the block file, retries owed
 * CLOSE/RESET frames, lets each DEALER process its pending commands
 * (connections made or lost) and sends the PINGs.
 *
 * Frame (one ZeroMQ message part, integers little-endian):
 *
 *    0  4  magic "SFRN"
 *    4  1  version (1)
 *    5  1  type: 1 OPEN, 2 DATA, 3 CLOSE, 4 RESET, 5 MSG, 6 PING
 *    6  1  flags: bit 0 OPENER = the sender opened this stream
 *    7  1  zero
 *    8  8  cluster id
 *   16  8  from: the sender's raft id
 *   24  8  stream id (0 for MSG, PING)
 *   32  8  DATA: offset of the payload in the stream; others 0
 *   40  payload: DATA 1..64 KiB, MSG 0..RAFTNET_MSG_MAX, others none
 *
 * PING goes to every member every RN_PING_MS, so raftnet_heard knows
 * each member, not only the ones raft talks to (followers never talk
 * to each other).
 *
 * Anything else is malformed. Checks in order: malformed, cluster id,
 * sender a member other than us, (with keys) User-Id = that member's
 * key, member not blocked; each failure is counted, and logged once per
 * (kind, sender).
 *
 * Streams. A stream is named by (member, opener, id); the opener picks
 * the id: a random 32-bit epoch of this raftnet (so a restarted node
 * does not reuse ids) and a counter. For each stream we hold one end of
 * a socketpair; libraft holds the other as a uv_pipe_t it owns (it
 * raft_free()s it after uv_close).
 *
 *   connect(name) --OPEN--> accept_cb(id, name, pipe)
 *   bytes libraft wrote on our end --DATA(offset)--> written to the
 *        peer's end, in order; an offset that is not the next one (a
 *        frame was lost: reconnection, block) --> RESET
 *   EOF on our end (libraft closed) --CLOSE--> EOF after the pending
 *        bytes are written
 *   a frame for a stream we do not know --RESET--> the opener's end
 *        closes: libraft sees EOF or EPIPE and reconnects
 *
 * Invariants.
 *   (1) connect's callback runs exactly once, never inside connect: a
 *       0-delay timer per request fires it; transport close turns the
 *       pending ones into RAFT_CANCELED.
 *   (2) Bytes for libraft wait in a per-stream buffer of at most
 *       RN_PENDING_MAX; past that the stream is reset, not grown.
 *   (3) A stream that could not send its CLOSE/RESET (peer not
 *       connected) leaves an owed frame, retried every tick, so the
 *       peer's libraft does not keep a dead stream. And an OPEN of a
 *       new epoch ends the streams that member opened before (it was
 *       restarted, perhaps killed without closing them).
 *   (4) raftnet_close frees nothing before the close callbacks of all
 *       its handles ran; ZeroMQ sockets close after their uv_poll.
 *
 * Everything runs on the loop thread except zap_admit, on the ZAP
 * thread: it reads only the key list, fixed before the thread starts,
 * and the refused-keys table, which only it touches.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "common/clock.h"
#include "common/le.h"
#include "common/list.h"
#include "common/log.h"
#include "repl/raftnet.h"
#include "repl/zaphandler.h"

#define RN_VERSION 1
#define RN_HDR 40
#define RN_CHUNK (64u << 10)               /* DATA payload at most */
#define RN_PART_MAX (RN_HDR + RAFTNET_MSG_MAX)
#define RN_PENDING_MAX (16u << 20)         /* bytes toward libraft */
#define RN_DRAIN_PAUSE (2u << 20)          /* all streams', see above */
#define RN_DRAIN_FRAMES 64                 /* per turn of the loop */
#define RN_STALL_MS 1000
#define RN_SNDHWM 1000                     /* frames queued per member */
#define RN_TICK_MS 50
#define RN_PING_MS 200                     /* < what heard() callers ask */
#define RN_PULLS 16                        /* reads per poll wakeup */
#define RN_LOGGED_MAX 64
#define RN_REFUSED_MAX 16                  /* keys logged by ZAP */
#define RN_OWED_MAX 256                    /* CLOSE/RESET frames owed */
#define RN_KEY_LEN 40

enum { RN_OPEN = 1, RN_DATA, RN_CLOSE, RN_RESET, RN_MSG, RN_PING };
#define RN_F_OPENER 0x01u

enum { DROP_MALFORMED, DROP_CLUSTER, DROP_MEMBER, DROP_KEY };

struct rn_peer {
	struct raftnet_member m;
	void *dealer;
	int blocked;
	uint64_t heard_ms;      /* monotonic; 0: never */
};

struct rn_stream {
	struct list link;       /* n->streams */
	struct raftnet *n;
	struct rn_peer *peer;
	uint64_t id;
	int mine;               /* we opened it */
	int fd;                 /* our end */
	uv_poll_t poll;
	int events;             /* what poll waits for now */
	uint64_t off_in, off_out;
	char *pend;             /* bytes for libraft: pend[head..len) */
	size_t head, len, cap;
	int eof_after_flush;    /* peer sent CLOSE */
};

struct rn_owed {                /* a CLOSE/RESET not sent yet (3) */
	struct list link;
	struct rn_peer *peer;
	uint64_t id;
	int type, flags;
};

struct rn_connect {
	struct list link;       /* n->connects */
	struct raftnet *n;
	uv_timer_t timer;
	struct raft_uv_connect *req;
	raft_uv_connect_cb cb;
	uv_pipe_t *pipe;        /* ours until the callback gives it away */
	int status;
};

struct rn_logged {
	int kind;
	uint64_t from;
	char key[RN_KEY_LEN + 1];
};

struct raftnet {
	struct raft_uv_transport transport;
	uv_loop_t *loop;
	uint64_t self, cluster_id;
	uint32_t epoch, next_stream;
	struct rn_peer *peers;  /* the other members */
	size_t npeers;
	char self_name[64];
	int secure;
	void (*on_message)(void *arg, uint64_t from, const void *buf, size_t len);
	void *arg;
	char *block_file;
	int64_t block_mtime_ns;
	uint64_t block_checked_ms;
	uint64_t ping_ms;       /* last PING round */

	void *zctx, *router;
	struct zaphandler *zap;
	char (*keys)[RN_KEY_LEN + 1];   /* admitted by ZAP */
	size_t nkeys;
	char refused[RN_REFUSED_MAX][RN_KEY_LEN + 1]; /* ZAP thread's */
	size_t nrefused;

	uv_poll_t router_poll;
	uv_idle_t drain_idle;   /* a drain goes on (router_drain) */
	int drain_paused;       /* until pending < RN_DRAIN_PAUSE / 2 */
	uint64_t paused_ms;     /* since (monotonic) */
	size_t pending;         /* bytes waiting for libraft, all streams */
	uv_timer_t tick;
	unsigned handles;       /* handles whose close callback is due */

	raft_uv_accept_cb accept_cb;
	raft_uv_transport_close_cb t_close_cb;
	int t_closing;
	unsigned t_handles;     /* transport close waits for these */

	struct list streams, connects, owed;
	size_t nowed;
	struct rn_logged logged[RN_LOGGED_MAX];
	size_t nlogged;
	int closing;
	void (*done)(void *arg);
	void *done_arg;

	struct raftnet_stats st;
	unsigned char part[RN_PART_MAX]; /* the frame being built */
};

static struct rn_peer *peer_by_id(struct raftnet *n, uint64_t id)
{
	for (size_t i = 0; i < n->npeers; i++)
		if (n->peers[i].m.id == id)
			return &n->peers[i];
	return NULL;
}

static struct rn_peer *peer_by_name(struct raftnet *n, const char *name)
{
	for (size_t i = 0; i < n->npeers; i++)
		if (strcmp(n->peers[i].m.name, name) == 0)
			return &n->peers[i];
	return NULL;
}

/* ---- sending ---- */

/* Send one frame whose payload (if any) is already at n->part + RN_HDR.
 * 0, -ENOTCONN (not connected, queue full or blocked). */
static int frame_send(struct raftnet *n, struct rn_peer *p, int type,
		      unsigned flags, uint64_t stream, uint64_t seq, size_t len)
{
	unsigned char *h = n->part;
	int ev;
	size_t sz = sizeof(ev);

	if (p->blocked) {
		n->st.drop_blocked++;
		return -ENOTCONN;
	}
	memcpy(h, "SFRN", 4);
	h[4] = RN_VERSION;
	h[5] = (unsigned char)type;
	h[6] = (unsigned char)flags;
	h[7] = 0;
	le_put64(h + 8, n->cluster_id);
	le_put64(h + 16, n->self);
	le_put64(h + 24, stream);
	le_put64(h + 32, seq);
	if (zmq_send(p->dealer, h, RN_HDR + len, ZMQ_DONTWAIT) < 0) {
		/* send processes the socket's commands only now and then:
		 * a connection made a moment ago may not be attached yet */
		zmq_getsockopt(p->dealer, ZMQ_EVENTS, &ev, &sz);
		if (zmq_send(p->dealer, h, RN_HDR + len, ZMQ_DONTWAIT) < 0)
			return -ENOTCONN;
	}
	n->st.frames_out++;
	n->st.bytes_out += RN_HDR + len;
	return 0;
}

static void owe(struct raftnet *n, struct rn_peer *p, uint64_t id, int type,
		unsigned flags)
{
	struct rn_owed *o;

	if (n->nowed >= RN_OWED_MAX)
		return; /* its streams end when it restarts or sends (RESET) */
	o = calloc(1, sizeof(*o));
	if (!o)
		return;
	n->nowed++;
	o->peer = p;
	o->id = id;
	o->type = type;
	o->flags = (int)flags;
	list_add_tail(&n->owed, &o->link);
}

static void owed_retry(struct raftnet *n)
{
	struct list *l, *next;

	for (l = n->owed.next; l != &n->owed; l = next) {
		struct rn_owed *o = container_of(l, struct rn_owed, link);

		next = l->next;
		if (!o->peer->blocked &&
		    frame_send(n, o->peer, o->type, (unsigned)o->flags, o->id,
			       0, 0) == 0) {
			list_del(l);
			free(o);
			n->nowed--;
		}
	}
}

/* ---- streams ---- */

static void raftnet_free(struct raftnet *n);

/* A handle of ours finished closing; the last one after raftnet_close
 * frees n and reports (4). */
static void net_handle_closed(struct raftnet *n)
{
	void (*done)(void *arg) = n->done;
	void *arg = n->done_arg;

	n->handles--;
	if (!n->closing || n->handles > 0)
		return;
	raftnet_free(n);
	if (done)
		done(arg);
}

static void stream_closed(uv_handle_t *h)
{
	struct rn_stream *s = h->data;
	struct raftnet *n = s->n;

	close(s->fd);
	free(s->pend);
	free(s);
	net_handle_closed(n);
}

static void drain_later(struct raftnet *n);

/* Bytes toward libraft were written or dropped: a paused drain may go
 * on. */
static void pending_less(struct raftnet *n, size_t len)
{
	n->pending -= len;
	if (n->drain_paused && n->pending < RN_DRAIN_PAUSE / 2) {
		n->drain_paused = 0;
		drain_later(n);
	}
}

/* End a stream: tell the peer with `type` (CLOSE, RESET; 0: nothing)
 * and close our end, which libraft sees as EOF or EPIPE. */
static void stream_end(struct rn_stream *s, int type)
{
	struct raftnet *n = s->n;
	unsigned flags = s->mine ? RN_F_OPENER : 0;

	if (type && frame_send(n, s->peer, type, flags, s->id, 0, 0) < 0 &&
	    !n->closing)
		owe(n, s->peer, s->id, type, flags);
	if (type == RN_RESET)
		n->st.streams_reset++;
	pending_less(n, s->len - s->head);
	s->head = s->len = 0;
	list_del(&s->link);
	uv_poll_stop(&s->poll);
	n->handles++;
	uv_close((uv_handle_t *)&s->poll, stream_closed);
}

static void stream_on_poll(uv_poll_t *h, int status, int events);

static void stream_want(struct rn_stream *s, int events)
{
	if (events != s->events) {
		s->events = events;
		uv_poll_start(&s->poll, events, stream_on_poll);
	}
}

/* A socketpair: *raft_fd for libraft, the other end polled by us. */
static struct rn_stream *stream_new(struct raftnet *n, struct rn_peer *p,
				    uint64_t id, int mine, int *raft_fd)
{
	struct rn_stream *s = calloc(1, sizeof(*s));
	int fds[2];

	if (!s)
		return NULL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		       0, fds) < 0) {
		free(s);
		return NULL;
	}
	if (uv_poll_init(n->loop, &s->poll, fds[0]) < 0) {
		close(fds[0]);
		close(fds[1]);
		free(s);
		return NULL;
	}
	s->n = n;
	s->peer = p;
	s->id = id;
	s->mine = mine;
	s->fd = fds[0];
	s->poll.data = s;
	list_add_tail(&n->streams, &s->link);
	stream_want(s, UV_READABLE);
	*raft_fd = fds[1];
	return s;
}

static struct rn_stream *stream_find(struct raftnet *n, struct rn_peer *p,
				     uint64_t id, int mine)
{
	struct list *l;

	list_for(l, &n->streams) {
		struct rn_stream *s = container_of(l, struct rn_stream, link);

		if (s->peer == p && s->id == id && s->mine == mine)
			return s;
	}
	return NULL;
}

static void pipe_unused(uv_handle_t *h)
{
	struct raftnet *n = h->data;

	raft_free(h);
	net_handle_closed(n);
}

/* libraft's end as a uv_pipe_t it will own; NULL on failure (fd closed). */
static uv_pipe_t *pipe_for(struct raftnet *n, int fd)
{
	uv_pipe_t *pipe = raft_malloc(sizeof(*pipe));

	if (!pipe) {
		close(fd);
		return NULL;
	}
	if (uv_pipe_init(n->loop, pipe, 0) < 0) {
		raft_free(pipe);
		close(fd);
		return NULL;
	}
	if (uv_pipe_open(pipe, fd) < 0) {
		close(fd);
		pipe->data = n;
		n->handles++;
		uv_close((uv_handle_t *)pipe, pipe_unused);
		return NULL;
	}
	return pipe;
}

/* Bytes libraft wrote: ship them as DATA. */
static void stream_pull(struct rn_stream *s)
{
	struct raftnet *n = s->n;

	for (int i = 0; i < RN_PULLS; i++) {
		ssize_t r = recv(s->fd, n->part + RN_HDR, RN_CHUNK, MSG_DONTWAIT);

		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r <= 0) {
			stream_end(s, r == 0 ? RN_CLOSE : RN_RESET);
			return;
		}
		if (frame_send(n, s->peer, RN_DATA, s->mine ? RN_F_OPENER : 0,
			       s->id, s->off_out, (size_t)r) < 0) {
			stream_end(s, RN_RESET);
			return;
		}
		s->off_out += (uint64_t)r;
	}
}

/* Write what waits for libraft; 0, or -1 when the stream ended. */
static int stream_flush(struct rn_stream *s)
{
	while (s->head < s->len) {
		ssize_t w = send(s->fd, s->pend + s->head, s->len - s->head,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (w < 0) {
			stream_end(s, RN_RESET);
			return -1;
		}
		s->head += (size_t)w;
		pending_less(s->n, (size_t)w);
	}
	if (s->head == s->len) {
		s->head = s->len = 0;
		if (s->eof_after_flush) {
			stream_end(s, 0);
			return -1;
		}
		stream_want(s, UV_READABLE);
	} else {
		stream_want(s, UV_READABLE | UV_WRITABLE);
	}
	return 0;
}

/* Bytes from the peer for libraft, in order (2). */
static void stream_push(struct rn_stream *s, const unsigned char *buf,
			size_t len)
{
	if (s->head > 0 && s->head == s->len)
		s->head = s->len = 0;
	if (s->len - s->head + len > RN_PENDING_MAX) {
		log_rate(LOG_WARNING, "lock peer %s: raft stream backed up past "
			 "%u bytes: reset", s->peer->m.name, RN_PENDING_MAX);
		stream_end(s, RN_RESET);
		return;
	}
	if (s->len + len > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		char *p;

		if (s->head > 0) { /* compact first */
			memmove(s->pend, s->pend + s->head, s->len - s->head);
			s->len -= s->head;
			s->head = 0;
		}
		while (cap < s->len + len)
			cap *= 2;
		if (cap != s->cap) {
			p = realloc(s->pend, cap);
			if (!p) {
				stream_end(s, RN_RESET);
				return;
			}
			s->pend = p;
			s->cap = cap;
		}
	}
	memcpy(s->pend + s->len, buf, len);
	s->len += len;
	s->n->pending += len;
	stream_flush(s);
}

static void stream_on_poll(uv_poll_t *h, int status, int events)
{
	struct rn_stream *s = h->data;

	if (status < 0) {
		stream_end(s, RN_RESET);
		return;
	}
	if ((events & UV_WRITABLE) && stream_flush(s) < 0)
		return;
	if (events & (UV_READABLE | UV_DISCONNECT))
		stream_pull(s);
}

/* ---- receiving ---- */

/* Count and log once per (kind, sender). */
static void drop(struct raftnet *n, int kind, uint64_t from, const char *key,
		 const char *detail)
{
	uint64_t *ctr[] = { &n->st.drop_malformed, &n->st.drop_cluster,
			    &n->st.drop_member, &n->st.drop_key };
	struct rn_peer *p = peer_by_id(n, from);
	char who[128];
	size_t i;

	(*ctr[kind])++;
	for (i = 0; i < n->nlogged; i++)
		if (n->logged[i].kind == kind && n->logged[i].from == from &&
		    strcmp(n->logged[i].key, key) == 0)
			return;
	if (p)
		snprintf(who, sizeof(who), "%s", p->m.name);
	else
		snprintf(who, sizeof(who), "id %" PRIu64, from);
	if (n->nlogged == RN_LOGGED_MAX) { /* many senders: rate-limited */
		log_rate(LOG_WARNING, "lock peer %s (key %s): %s", who,
			 *key ? key : "none", detail);
		return;
	}
	n->logged[n->nlogged].kind = kind;
	n->logged[n->nlogged].from = from;
	snprintf(n->logged[n->nlogged].key, sizeof(n->logged[0].key), "%s", key);
	n->nlogged++;
	log_msg(LOG_WARNING, "lock peer %s (key %s): %s", who,
		*key ? key : "none", detail);
}

/* NULL if the frame is well formed, else what is wrong with it. */
static const char *frame_check(const unsigned char *f, size_t len)
{
	int type;
	uint64_t stream;
	size_t pl = len - RN_HDR;

	if (len < RN_HDR)
		return "shorter than a header";
	if (memcmp(f, "SFRN", 4) != 0)
		return "bad magic";
	if (f[4] != RN_VERSION)
		return "unknown version";
	type = f[5];
	stream = le_get64(f + 24);
	if ((f[6] & ~RN_F_OPENER) || f[7])
		return "unknown flags";
	if (le_get64(f + 16) == 0)
		return "raft id 0";
	switch (type) {
	case RN_MSG:
		if (stream || le_get64(f + 32) || f[6] || pl > RAFTNET_MSG_MAX)
			return "bad datagram";
		return NULL;
	case RN_PING:
		if (stream || le_get64(f + 32) || f[6] || pl)
			return "bad ping";
		return NULL;
	case RN_DATA:
		if (!stream || pl == 0 || pl > RN_CHUNK)
			return "bad data frame";
		return NULL;
	case RN_OPEN:
	case RN_CLOSE:
	case RN_RESET:
		if (!stream || pl || le_get64(f + 32))
			return "bad stream frame";
		if (type == RN_OPEN && !(f[6] & RN_F_OPENER))
			return "open by a non-opener";
		return NULL;
	default:
		return "unknown type";
	}
}

/* A stream id of another epoch: p restarted (maybe without closing its
 * streams, killed), so the streams it had opened to us are dead. */
static void peer_restarted(struct raftnet *n, struct rn_peer *p, uint64_t id)
{
	struct list *l, *next;

	for (l = n->streams.next; l != &n->streams; l = next) {
		struct rn_stream *s = container_of(l, struct rn_stream, link);

		next = l->next;
		if (s->peer == p && !s->mine && s->id >> 32 != id >> 32)
			stream_end(s, 0);
	}
}

static void on_open(struct raftnet *n, struct rn_peer *p, uint64_t id)
{
	struct rn_stream *s;
	uv_pipe_t *pipe;
	int fd;

	if (stream_find(n, p, id, 0)) {
		drop(n, DROP_MALFORMED, p->m.id, "",
		     "malformed frame (a stream opened twice): dropped");
		return;
	}
	peer_restarted(n, p, id);
	if (!n->accept_cb || n->t_closing) {
		frame_send(n, p, RN_RESET, 0, id, 0, 0);
		return;
	}
	s = stream_new(n, p, id, 0, &fd);
	if (!s) {
		frame_send(n, p, RN_RESET, 0, id, 0, 0);
		return;
	}
	pipe = pipe_for(n, fd);
	if (!pipe) {
		stream_end(s, RN_RESET);
		return;
	}
	n->st.streams_opened++;
	n->accept_cb(&n->transport, p->m.id, p->m.name, (uv_stream_t *)pipe);
}

static void on_stream_frame(struct raftnet *n, struct rn_peer *p,
			    const unsigned char *f, size_t len)
{
	int type = f[5];
	uint64_t id = le_get64(f + 24);
	int mine = !(f[6] & RN_F_OPENER);
	struct rn_stream *s;

	if (type == RN_OPEN) {
		on_open(n, p, id);
		return;
	}
	s = stream_find(n, p, id, mine);
	if (!s) {
		if (type == RN_DATA) /* the peer's end is gone here */
			frame_send(n, p, RN_RESET, mine ? RN_F_OPENER : 0, id, 0, 0);
		return;
	}
	switch (type) {
	case RN_DATA:
		if (le_get64(f + 32) != s->off_in) { /* a frame was lost */
			stream_end(s, RN_RESET);
			return;
		}
		s->off_in += len - RN_HDR;
		stream_push(s, f + RN_HDR, len - RN_HDR);
		return;
	case RN_CLOSE:
		if (s->head == s->len)
			stream_end(s, 0);
		else
			s->eof_after_flush = 1;
		return;
	case RN_RESET:
		n->st.streams_reset++;
		stream_end(s, 0);
		return;
	}
}

static void on_frame(struct raftnet *n, zmq_msg_t *msg)
{
	const unsigned char *f = zmq_msg_data(msg);
	size_t len = zmq_msg_size(msg);
	const char *key = n->secure ? zmq_msg_gets(msg, "User-Id") : NULL;
	const char *bad = frame_check(f, len);
	uint64_t from, cid;
	struct rn_peer *p;
	char detail[256];

	if (!key)
		key = "";
	if (bad) {
		snprintf(detail, sizeof(detail), "malformed frame (%s): dropped",
			 bad);
		drop(n, DROP_MALFORMED, len >= 24 ? le_get64(f + 16) : 0, key,
		     detail);
		return;
	}
	from = le_get64(f + 16);
	cid = le_get64(f + 8);
	if (cid != n->cluster_id) {
		snprintf(detail, sizeof(detail), "cluster id %016" PRIx64
			 " differs from ours %016" PRIx64 ": the configs differ",
			 cid, n->cluster_id);
		drop(n, DROP_CLUSTER, from, key, detail);
		return;
	}
	p = peer_by_id(n, from);
	if (!p) {
		drop(n, DROP_MEMBER, from, key, "its raft id is not one of "
		     "our lock members': the configs differ");
		return;
	}
	if (n->secure && strcmp(key, p->m.public_key) != 0) {
		snprintf(detail, sizeof(detail), "claims to be %s, whose key in "
			 "our config is %s: frame dropped", p->m.name,
			 p->m.public_key);
		drop(n, DROP_KEY, from, key, detail);
		return;
	}
	if (p->blocked) {
		n->st.drop_blocked++;
		return;
	}
	p->heard_ms = (uint64_t)clock_ms(CLOCK_MONOTONIC);
	n->st.frames_in++;
	n->st.bytes_in += len;
	if (f[5] == RN_PING)
		return;
	if (f[5] == RN_MSG) {
		n->st.msgs_in++;
		if (n->on_message)
			n->on_message(n->arg, from, f + RN_HDR, len - RN_HDR);
		return;
	}
	on_stream_frame(n, p, f, len);
}

static void router_drain(struct raftnet *n);

static void on_drain_idle(uv_idle_t *h)
{
	struct raftnet *n = h->data;

	uv_idle_stop(h);
	router_drain(n);
}

static void drain_later(struct raftnet *n)
{
	if (!n->closing)
		uv_idle_start(&n->drain_idle, on_drain_idle);
}

static void router_drain(struct raftnet *n)
{
	for (int budget = RN_DRAIN_FRAMES; !n->closing; budget--) {
		zmq_msg_t id, msg;
		int ev = 0;
		size_t sz = sizeof(ev);

		if (n->pending >= RN_DRAIN_PAUSE) {
			if (!n->drain_paused)
				n->paused_ms = (uint64_t)clock_ms(CLOCK_MONOTONIC);
			n->drain_paused = 1; /* pending_less goes on */
			return;
		}
		if (zmq_getsockopt(n->router, ZMQ_EVENTS, &ev, &sz) < 0 ||
		    !(ev & ZMQ_POLLIN))
			return;
		if (!budget) {
			drain_later(n);
			return;
		}
		zmq_msg_init(&id);
		if (zmq_msg_recv(&id, n->router, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&id);
			return;
		}
		zmq_msg_init(&msg);
		if (!zmq_msg_more(&id) ||
		    zmq_msg_recv(&msg, n->router, ZMQ_DONTWAIT) < 0) {
			drop(n, DROP_MALFORMED, 0, "",
			     "malformed frame (empty): dropped");
		} else if (zmq_msg_more(&msg)) {
			int more = 1;

			while (more) { /* a DEALER of ours sends one part */
				zmq_msg_t x;

				zmq_msg_init(&x);
				if (zmq_msg_recv(&x, n->router, ZMQ_DONTWAIT) < 0)
					more = 0;
				else
					more = zmq_msg_more(&x);
				zmq_msg_close(&x);
			}
			drop(n, DROP_MALFORMED, 0, "", "malformed frame (more "
			     "than one part): dropped");
		} else {
			on_frame(n, &msg);
		}
		zmq_msg_close(&msg);
		zmq_msg_close(&id);
	}
}

static void on_router_poll(uv_poll_t *h, int status, int events)
{
	(void)status;
	(void)events;
	router_drain(h->data);
}

/* ---- the fault point ---- */

static void block_read(struct raftnet *n)
{
	struct stat st;
	int64_t mt = 0;
	char *buf = NULL, *save = NULL, *w;
	size_t cap = 0, i;
	uint64_t now = (uint64_t)clock_ms(CLOCK_MONOTONIC);
	FILE *f;

	if (!n->block_file || now - n->block_checked_ms < RN_TICK_MS)
		return;
	n->block_checked_ms = now;
	if (stat(n->block_file, &st) == 0)
		mt = (int64_t)st.st_mtim.tv_sec * 1000000000 +
		     st.st_mtim.tv_nsec + 1;
	if (mt == n->block_mtime_ns)
		return;
	n->block_mtime_ns = mt;
	for (i = 0; i < n->npeers; i++)
		n->peers[i].blocked = 0;
	f = mt ? fopen(n->block_file, "r") : NULL;
	if (f && getdelim(&buf, &cap, '\0', f) > 0)
		for (w = strtok_r(buf, " \t\n,", &save); w;
		     w = strtok_r(NULL, " \t\n,", &save)) {
			struct rn_peer *p = peer_by_name(n, w);

			if (p)
				p->blocked = 1;
		}
	if (f)
		fclose(f);
	free(buf);
	for (i = 0; i < n->npeers; i++)
		if (n->peers[i].blocked)
			log_msg(LOG_NOTICE, "fault point: lock traffic with %s "
				"is cut", n->peers[i].m.name);
}

/* The drain paused too long: reset the stream libraft does not read. */
static void stall_check(struct raftnet *n, uint64_t now)
{
	struct rn_stream *worst = NULL;
	struct list *l;

	if (!n->drain_paused || now - n->paused_ms < RN_STALL_MS)
		return;
	list_for(l, &n->streams)
	{
		struct rn_stream *s = container_of(l, struct rn_stream, link);

		if (!worst || s->len - s->head > worst->len - worst->head)
			worst = s;
	}
	if (!worst)
		return;
	log_rate(LOG_WARNING, "lock peer %s: raft stream not read for %d ms: "
		 "reset", worst->peer->m.name, RN_STALL_MS);
	n->paused_ms = now; /* the next one, if still paused, in a while */
	stream_end(worst, RN_RESET);
}

static void on_tick(uv_timer_t *h)
{
	struct raftnet *n = h->data;
	int ev;
	size_t sz;

	uint64_t now = (uint64_t)clock_ms(CLOCK_MONOTONIC);

	stall_check(n, now);

	block_read(n);
	for (size_t i = 0; i < n->npeers; i++) {
		sz = sizeof(ev);
		zmq_getsockopt(n->peers[i].dealer, ZMQ_EVENTS, &ev, &sz);
		if (!n->peers[i].blocked && now - n->ping_ms >= RN_PING_MS)
			frame_send(n, &n->peers[i], RN_PING, 0, 0, 0, 0);
	}
	if (now - n->ping_ms >= RN_PING_MS)
		n->ping_ms = now;
	owed_retry(n);
	router_drain(n);
}

/* ---- ZAP: admit the members' keys (zaphandler.c's thread) ---- */

static int key_admitted(const struct raftnet *n, const char *key)
{
	for (size_t i = 0; i < n->nkeys; i++)
		if (strcmp(n->keys[i], key) == 0)
			return 1;
	return 0;
}

/* On the ZAP thread: reads n->keys (fixed), owns n->refused. */
static int zap_admit(void *arg, const char *key, const char *address)
{
	struct raftnet *n = arg;
	size_t i;

	if (key_admitted(n, key))
		return 1;
	for (i = 0; i < n->nrefused; i++)
		if (strcmp(n->refused[i], key) == 0)
			return 0;
	if (n->nrefused < RN_REFUSED_MAX)
		snprintf(n->refused[n->nrefused++], RN_KEY_LEN + 1, "%s", key);
	log_msg(LOG_WARNING, "refused a lock connection from %s: public key "
		"%s is not a lock member's", address, key);
	return 0;
}

/* ---- the transport ---- */

static int t_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
	struct raftnet *n = t->impl;

	if (id != n->self || strcmp(address, n->self_name) != 0) {
		snprintf(t->errmsg, sizeof(t->errmsg), "raftnet is member %"
			 PRIu64 " (%s), not %" PRIu64 " (%s)", n->self,
			 n->self_name, (uint64_t)id, address);
		return RAFT_INVALID;
	}
	return 0;
}

static int t_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct raftnet *n = t->impl;

	n->accept_cb = cb;
	return 0;
}

static void t_maybe_closed(struct raftnet *n)
{
	raft_uv_transport_close_cb cb = n->t_close_cb;

	if (!n->t_closing || n->t_handles > 0 || !cb)
		return;
	n->t_close_cb = NULL;
	cb(&n->transport);
}

static void connect_closed(uv_handle_t *h)
{
	struct rn_connect *c = h->data;
	struct raftnet *n = c->n;

	if (c->req) /* cancelled by close (1) */
		c->cb(c->req, NULL, RAFT_CANCELED);
	free(c);
	n->t_handles--;
	t_maybe_closed(n);
	net_handle_closed(n);
}

static void connect_fire(uv_timer_t *h)
{
	struct rn_connect *c = h->data;
	struct raft_uv_connect *req = c->req;

	list_del(&c->link);
	c->req = NULL;
	c->n->handles++;
	uv_close((uv_handle_t *)&c->timer, connect_closed);
	c->cb(req, (uv_stream_t *)c->pipe, c->status);
}

/* Open a stream to p: its pipe, or NULL (p not reachable now). */
static uv_pipe_t *connect_open(struct raftnet *n, struct rn_peer *p)
{
	uint64_t id = (uint64_t)n->epoch << 32 | ++n->next_stream;
	struct rn_stream *s;
	uv_pipe_t *pipe;
	int fd;

	s = stream_new(n, p, id, 1, &fd);
	if (!s)
		return NULL;
	if (frame_send(n, p, RN_OPEN, RN_F_OPENER, id, 0, 0) < 0) {
		close(fd);
		stream_end(s, 0);
		return NULL;
	}
	pipe = pipe_for(n, fd);
	if (!pipe) {
		stream_end(s, RN_CLOSE);
		return NULL;
	}
	n->st.streams_opened++;
	return pipe;
}

static int t_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
		     raft_id id, const char *address, raft_uv_connect_cb cb)
{
	struct raftnet *n = t->impl;
	struct rn_peer *p = peer_by_name(n, address);
	struct rn_connect *c;

	if (n->t_closing)
		return RAFT_NOCONNECTION;
	c = calloc(1, sizeof(*c));
	if (!c)
		return RAFT_NOMEM;
	c->n = n;
	c->req = req;
	c->cb = cb;
	c->status = RAFT_NOCONNECTION;
	if (p && p->m.id == id) {
		c->pipe = connect_open(n, p);
		if (c->pipe)
			c->status = 0;
	}
	uv_timer_init(n->loop, &c->timer);
	c->timer.data = c;
	uv_timer_start(&c->timer, connect_fire, 0, 0);
	list_add_tail(&n->connects, &c->link);
	n->t_handles++;
	return 0;
}

static void pipe_closed(uv_handle_t *h)
{
	struct raftnet *n = h->data;

	raft_free(h);
	n->t_handles--;
	t_maybe_closed(n);
	net_handle_closed(n);
}

/* Stop accepting; pending connects end with RAFT_CANCELED (1). */
static void transport_shut(struct raftnet *n)
{
	struct list *l;

	n->t_closing = 1;
	n->accept_cb = NULL;
	while (!list_empty(&n->connects)) {
		struct rn_connect *c;

		l = n->connects.next;
		c = container_of(l, struct rn_connect, link);
		list_del(l);
		uv_timer_stop(&c->timer);
		if (c->pipe) {
			c->pipe->data = n;
			n->t_handles++;
			n->handles++;
			uv_close((uv_handle_t *)c->pipe, pipe_closed);
			c->pipe = NULL;
		}
		n->handles++;
		uv_close((uv_handle_t *)&c->timer, connect_closed);
	}
}

static void t_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct raftnet *n = t->impl;

	n->t_close_cb = cb;
	transport_shut(n);
	t_maybe_closed(n);
}

/* ---- setup ---- */

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

static int valid_key(const char *k)
{
	uint8_t raw[32];

	return k && strlen(k) == RN_KEY_LEN && zmq_z85_decode(raw, k) != NULL;
}

static int check_opts(const struct raftnet_opts *o, char *err, size_t errlen)
{
	size_t i, j;
	int self = 0, secure = o->secret_key != NULL;

	if (!o->loop || !o->listen || !*o->listen || !o->members ||
	    !o->nmembers || !o->self)
		return fail(err, errlen, -EINVAL, "raftnet: loop, listen, members "
			    "and self are required");
	if (secure && (!valid_key(o->secret_key) || !valid_key(o->public_key)))
		return fail(err, errlen, -EINVAL, "raftnet: our CURVE key pair "
			    "is not two 40-character Z85 keys");
	for (i = 0; i < o->nmembers; i++) {
		const struct raftnet_member *m = &o->members[i];

		if (!m->id || !m->name[0] ||
		    !memchr(m->name, 0, sizeof(m->name)) ||
		    !memchr(m->endpoint, 0, sizeof(m->endpoint)) ||
		    !memchr(m->public_key, 0, sizeof(m->public_key)))
			return fail(err, errlen, -EINVAL, "raftnet: member %zu has "
				    "no id, no name or an unterminated field", i);
		for (j = 0; j < i; j++)
			if (o->members[j].id == m->id ||
			    strcmp(o->members[j].name, m->name) == 0)
				return fail(err, errlen, -EINVAL, "raftnet: member "
					    "%s listed twice", m->name);
		if (m->id == o->self) {
			self = 1;
			continue;
		}
		if (!m->endpoint[0])
			return fail(err, errlen, -EINVAL, "raftnet: lock member %s "
				    "has no address", m->name);
		if (secure && !valid_key(m->public_key))
			return fail(err, errlen, -EINVAL, "raftnet: lock member %s "
				    "has no valid public key", m->name);
	}
	if (!self)
		return fail(err, errlen, -ENOENT, "raftnet: our raft id %" PRIu64
			    " is not a lock member", o->self);
	return 0;
}

static int sockopt_int(void *s, int opt, int v)
{
	return zmq_setsockopt(s, opt, &v, sizeof(v));
}

static int router_open(struct raftnet *n, const struct raftnet_opts *o,
		       char *err, size_t errlen)
{
	int64_t max = RN_PART_MAX + 1024; /* CURVE counts its box too */
	int e;

	n->router = zmq_socket(n->zctx, ZMQ_ROUTER);
	if (!n->router) {
		e = errno;
		return fail(err, errlen, -e, "raftnet: zmq_socket: %s",
			    zmq_strerror(e));
	}
	sockopt_int(n->router, ZMQ_LINGER, 0);
	sockopt_int(n->router, ZMQ_RCVHWM, RN_SNDHWM * 4);
	zmq_setsockopt(n->router, ZMQ_MAXMSGSIZE, &max, sizeof(max));
	if (n->secure) {
		sockopt_int(n->router, ZMQ_CURVE_SERVER, 1);
		zmq_setsockopt(n->router, ZMQ_CURVE_SECRETKEY, o->secret_key,
			       RN_KEY_LEN);
	}
	if (zmq_bind(n->router, o->listen) < 0) {
		e = errno;
		return fail(err, errlen, -e, "cannot listen for lock peers at "
			    "%s: %s", o->listen, zmq_strerror(e));
	}
	return 0;
}

static int dealer_open(struct raftnet *n, struct rn_peer *p,
		       const struct raftnet_opts *o, char *err, size_t errlen)
{
	int e;

	p->dealer = zmq_socket(n->zctx, ZMQ_DEALER);
	if (!p->dealer) {
		e = errno;
		return fail(err, errlen, -e, "raftnet: zmq_socket: %s",
			    zmq_strerror(e));
	}
	sockopt_int(p->dealer, ZMQ_LINGER, 0);
	sockopt_int(p->dealer, ZMQ_IMMEDIATE, 1);
	sockopt_int(p->dealer, ZMQ_SNDHWM, RN_SNDHWM);
	sockopt_int(p->dealer, ZMQ_RECONNECT_IVL, 100);
	sockopt_int(p->dealer, ZMQ_HEARTBEAT_IVL, 1000);
	sockopt_int(p->dealer, ZMQ_HEARTBEAT_TIMEOUT, 3000);
	if (n->secure) {
		zmq_setsockopt(p->dealer, ZMQ_CURVE_SERVERKEY, p->m.public_key,
			       RN_KEY_LEN);
		zmq_setsockopt(p->dealer, ZMQ_CURVE_PUBLICKEY, o->public_key,
			       RN_KEY_LEN);
		zmq_setsockopt(p->dealer, ZMQ_CURVE_SECRETKEY, o->secret_key,
			       RN_KEY_LEN);
	}
	if (zmq_connect(p->dealer, p->m.endpoint) < 0)
		return fail(err, errlen, -EINVAL, "lock member %s: bad address "
			    "%s: %s", p->m.name, p->m.endpoint, zmq_strerror(errno));
	return 0;
}

static void sockets_close(struct raftnet *n)
{
	if (n->router)
		zmq_close(n->router);
	for (size_t i = 0; i < n->npeers; i++)
		if (n->peers[i].dealer)
			zmq_close(n->peers[i].dealer);
	if (n->zctx)
		zmq_ctx_shutdown(n->zctx);
	zaphandler_close(&n->zap);
	if (n->zctx)
		zmq_ctx_term(n->zctx);
}

static void raftnet_free(struct raftnet *n)
{
	struct list *l;

	sockets_close(n);
	while (!list_empty(&n->owed)) {
		l = n->owed.next;
		list_del(l);
		free(container_of(l, struct rn_owed, link));
	}
	free(n->peers);
	free(n->keys);
	free(n->block_file);
	free(n);
}

static int members_copy(struct raftnet *n, const struct raftnet_opts *o)
{
	size_t i;

	n->peers = calloc(o->nmembers, sizeof(*n->peers));
	n->keys = calloc(o->nmembers, sizeof(*n->keys));
	if (!n->peers || !n->keys)
		return -ENOMEM;
	for (i = 0; i < o->nmembers; i++) {
		const struct raftnet_member *m = &o->members[i];

		if (n->secure)
			snprintf(n->keys[n->nkeys++], RN_KEY_LEN + 1, "%s",
				 m->public_key);
		if (m->id == o->self) {
			snprintf(n->self_name, sizeof(n->self_name), "%s", m->name);
			continue;
		}
		n->peers[n->npeers].m = *m;
		n->peers[n->npeers].m.public_key[RN_KEY_LEN] = '\0';
		n->npeers++;
	}
	return 0;
}

static int loop_start(struct raftnet *n)
{
	int fd;
	size_t sz = sizeof(fd);

	if (zmq_getsockopt(n->router, ZMQ_FD, &fd, &sz) < 0)
		return -errno;
	if (uv_poll_init_socket(n->loop, &n->router_poll, fd) < 0)
		return -EIO;
	n->router_poll.data = n;
	uv_idle_init(n->loop, &n->drain_idle);
	n->drain_idle.data = n;
	uv_timer_init(n->loop, &n->tick);
	n->tick.data = n;
	uv_poll_start(&n->router_poll, UV_READABLE, on_router_poll);
	uv_timer_start(&n->tick, on_tick, RN_TICK_MS, RN_TICK_MS);
	return 0;
}

int raftnet_new(const struct raftnet_opts *o, struct raftnet **out,
		char *err, size_t errlen)
{
	struct raftnet *n;
	int rc;

	*out = NULL;
	rc = check_opts(o, err, errlen);
	if (rc < 0)
		return rc;
	n = calloc(1, sizeof(*n));
	if (!n)
		return fail(err, errlen, -ENOMEM, "raftnet: out of memory");
	list_init(&n->streams);
	list_init(&n->connects);
	list_init(&n->owed);
	n->loop = o->loop;
	n->self = o->self;
	n->cluster_id = o->cluster_id;
	n->secure = o->secret_key != NULL;
	n->on_message = o->on_message;
	n->arg = o->arg;
	if (getrandom(&n->epoch, sizeof(n->epoch), 0) != sizeof(n->epoch))
		n->epoch = (uint32_t)(uint64_t)clock_ms(CLOCK_MONOTONIC) ^ (uint32_t)getpid() << 16;
	if (members_copy(n, o) < 0 ||
	    (o->block_file && !(n->block_file = strdup(o->block_file)))) {
		raftnet_free(n);
		return fail(err, errlen, -ENOMEM, "raftnet: out of memory");
	}
	n->zctx = zmq_ctx_new();
	if (!n->zctx) {
		raftnet_free(n);
		return fail(err, errlen, -ENOMEM, "raftnet: zmq_ctx_new failed");
	}
	if (n->secure && (rc = zaphandler_open(n->zctx, zap_admit, n,
					       &n->zap)) < 0) {
		raftnet_free(n);
		return fail(err, errlen, rc, "raftnet: cannot start ZAP: %s",
			    strerror(-rc));
	}
	rc = router_open(n, o, err, errlen);
	for (size_t i = 0; rc == 0 && i < n->npeers; i++)
		rc = dealer_open(n, &n->peers[i], o, err, errlen);
	if (rc == 0 && (rc = loop_start(n)) < 0)
		fail(err, errlen, rc, "raftnet: cannot poll ZeroMQ: %s",
		     strerror(-rc));
	if (rc < 0) {
		raftnet_free(n);
		return rc;
	}
	n->transport.impl = n;
	n->transport.init = t_init;
	n->transport.listen = t_listen;
	n->transport.connect = t_connect;
	n->transport.close = t_close;
	block_read(n);
	*out = n;
	return 0;
}

struct raft_uv_transport *raftnet_transport(struct raftnet *n)
{
	return &n->transport;
}

int raftnet_send(struct raftnet *n, uint64_t to, const void *buf, size_t len)
{
	struct rn_peer *p = peer_by_id(n, to);

	if (!p)
		return -ENOENT;
	if (len > RAFTNET_MSG_MAX)
		return -EMSGSIZE;
	if (len)
		memcpy(n->part + RN_HDR, buf, len);
	if (n->closing || frame_send(n, p, RN_MSG, 0, 0, 0, len) < 0) {
		n->st.msgs_dropped++;
		return -ENOTCONN;
	}
	n->st.msgs_out++;
	return 0;
}

int raftnet_heard(struct raftnet *n, uint64_t id, uint64_t within_ms)
{
	struct rn_peer *p;

	if (id == n->self)
		return 1;
	p = peer_by_id(n, id);
	return p && p->heard_ms && (uint64_t)clock_ms(CLOCK_MONOTONIC) - p->heard_ms <= within_ms;
}

void raftnet_stats(struct raftnet *n, struct raftnet_stats *out)
{
	*out = n->st;
}

/* ---- close (4) ---- */

static void core_closed(uv_handle_t *h)
{
	net_handle_closed(h->data);
}

void raftnet_close(struct raftnet *n, void (*done)(void *arg), void *arg)
{
	n->closing = 1;
	n->done = done;
	n->done_arg = arg;
	if (!n->t_closing)
		transport_shut(n);
	while (!list_empty(&n->streams))
		stream_end(container_of(n->streams.next, struct rn_stream, link),
			   RN_CLOSE);
	n->handles += 3;
	uv_close((uv_handle_t *)&n->router_poll, core_closed);
	uv_close((uv_handle_t *)&n->drain_idle, core_closed);
	uv_close((uv_handle_t *)&n->tick, core_closed);
}
