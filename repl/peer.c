/*
 * peer.c — the replication protocol (repl.h says how the streams run,
 * wire.h what the messages hold).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/log.h"
#include "repl/repl.h"

/* ---- watermarks ---- */

static uint64_t wm_get(const struct wire_wm *wm, uint64_t node)
{
	unsigned i;

	for (i = 0; i < wm->n; i++)
		if (wm->e[i].node == node)
			return wm->e[i].seq;
	return 0;
}

/* Raise node's entry, keeping the list sorted. */
static void wm_raise(struct wire_wm *wm, uint64_t node, uint64_t seq)
{
	unsigned i;

	for (i = 0; i < wm->n && wm->e[i].node < node; i++)
		;
	if (i < wm->n && wm->e[i].node == node) {
		if (seq > wm->e[i].seq)
			wm->e[i].seq = seq;
		return;
	}
	if (wm->n == STORE_VV_MAX)
		return;
	memmove(&wm->e[i + 1], &wm->e[i], (wm->n - i) * sizeof(wm->e[0]));
	wm->e[i].node = node;
	wm->e[i].seq = seq;
	wm->n++;
}

static int wm_add_cb(void *arg, uint64_t node, uint64_t seq)
{
	wm_raise(arg, node, seq);
	return 0;
}

static void our_wm(struct repl *r, struct wire_wm *wm)
{
	wm->n = 0;
	if (store_watermarks(r->store, wm_add_cb, wm))
		wm->n = 0;
}

/* ---- sending ---- */

struct link *peer_out_link(struct peer *p)
{
	if (p->dl.sock)
		return &p->dl;
	if (p->rl.sock)
		return &p->rl;
	return NULL;
}

/* Message numbers run per link: the DEALER's and the ROUTER's are two
 * connections, and one may overtake the other. */
static int lx(const struct link *l)
{
	return l->rid_len != 0;
}

static void begin(struct repl *r, struct peer *p, const struct link *l,
		  enum wire_type type, unsigned flags)
{
	struct wire_hdr h = {
		.type = type, .flags = flags, .node = r->node,
		.session = r->session, .seq = p->out_seq[lx(l)] + 1,
	};

	wbuf_reset(&r->out);
	wbuf_hdr(&r->out, &h);
}

/* Send r->out on link l. 0, -EAGAIN (no connection, or its queue is
 * full: try later), or another negative errno. */
static int finish(struct repl *r, struct peer *p, const struct link *l)
{
	if (r->out.err) {
		log_msg(LOG_ERROR, "%s: cannot build a message: %s", p->cfg.name,
			strerror(-r->out.err));
		return r->out.err;
	}
	if (l->rid_len &&
	    zmq_send(l->sock, l->rid, l->rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return -errno;
	if (zmq_send(l->sock, r->out.p, r->out.len, ZMQ_DONTWAIT) < 0)
		return -errno;
	p->out_seq[lx(l)]++; /* only a message sent uses its number */
	p->last_sent = repl_now_ms();
	return 0;
}

void peer_hello(struct repl *r, struct peer *p, const struct link *l,
		unsigned flags)
{
	struct wire_wm wm;
	size_t n = strlen(r->node_name);

	our_wm(r, &wm);
	begin(r, p, l, WIRE_HELLO, flags);
	wbuf_u8(&r->out, (uint8_t)n);
	wbuf_bytes(&r->out, r->node_name, n);
	wbuf_wm(&r->out, &wm);
	if (finish(r, p, l) == 0)
		p->hello_sent = repl_now_ms();
}

static void send_ack(struct repl *r, struct peer *p, const struct link *l,
		     uint64_t upto, int nack, uint64_t pause_ms)
{
	struct wire_wm wm;

	our_wm(r, &wm);
	begin(r, p, l, WIRE_ACK, nack ? WIRE_F_NACK : 0);
	wbuf_u32(&r->out, p->recv_epoch);
	wbuf_u64(&r->out, upto);
	wbuf_u64(&r->out, pause_ms);
	wbuf_wm(&r->out, &wm);
	finish(r, p, l);
}

/* Building one CHANGES message from the binlog. */
struct build {
	struct repl *r;
	struct peer *p;
	size_t n_off, flag_off;   /* where n is; the last change's flags */
	uint32_t n;
	int in_group;             /* the last entry read had MORE */
	uint64_t end;             /* last seq looked at */
	uint64_t group_end;       /* last seq of the last whole group */
	uint32_t n_at_group_end;
	size_t len_at_group_end;
};

static int build_cb(void *arg, const struct store_change *c)
{
	struct build *b = arg;
	struct wbuf *w = &b->r->out;
	int more = c->flags & STORE_CHANGE_MORE;

	if (!b->in_group && (w->len >= REPL_MSG_BYTES || b->n >= REPL_MSG_ENTRIES))
		return 1; /* full, and between groups */
	b->end = c->seq;
	if (c->origin_seq > wm_get(&b->p->wm, c->origin_node)) {
		b->flag_off = w->len + 12 + 1;
		wbuf_change(w, c->seq, c);
		b->n++;
	} else if (!more && b->in_group && b->n > b->n_at_group_end) {
		/* the group's last entry is left out: end it at ours */
		w->p[b->flag_off] &= (unsigned char)~STORE_CHANGE_MORE;
	}
	b->in_group = more;
	if (!more) {
		b->group_end = c->seq;
		b->n_at_group_end = b->n;
		b->len_at_group_end = w->len;
	}
	return 0;
}

/* Start a new epoch of the stream to p at our binlog position `pos`:
 * its first message says so (WIRE_F_FIRST); later ones must follow
 * each other without a gap. */
static void rewind_to(struct peer *p, uint64_t pos, uint32_t epoch)
{
	p->epoch = epoch > p->epoch ? epoch : p->epoch + 1;
	p->cursor = p->acked = p->sent_end = pos;
	p->inflight = 0;
	p->first = 1;
}

/* Does p lack changes that our binlog no longer holds (store.h,
 * store_horizon)? Below our horizon of an origin and below our own
 * watermark: only a snapshot brings them (HZ_SNAP). Below the horizon
 * but not below our watermark: we merged a snapshot's records beyond
 * our watermark and are still installing it; sending it that origin's
 * later changes would move its watermark past what it never got, so
 * the stream waits (HZ_WAIT) until our watermark catches up. */
enum { HZ_OK = 0, HZ_SNAP = 1, HZ_WAIT = 2 };

struct hz {
	struct peer *p;
	struct wire_wm ours;
	int verdict;
};

static int horizon_cb(void *arg, uint64_t node, uint64_t seq)
{
	struct hz *h = arg;
	uint64_t theirs = wm_get(&h->p->wm, node);

	if (theirs >= seq)
		return 0;
	if (theirs < wm_get(&h->ours, node)) {
		h->verdict = HZ_SNAP;
		return 1;
	}
	h->verdict = HZ_WAIT;
	return 0;
}

static int horizon_check(struct repl *r, struct peer *p)
{
	struct hz h = { .p = p };

	our_wm(r, &h.ours);
	if (store_horizon(r->store, horizon_cb, &h) < 0)
		return HZ_WAIT;
	return h.verdict;
}

/* One CHANGES message to p, if there is anything to send: 1 sent, 0
 * nothing (or not now), negative on error. */
static int send_changes(struct repl *r, struct peer *p, const struct link *l)
{
	struct build b = { .r = r, .p = p };
	ssize_t got;
	int err;

	begin(r, p, l, WIRE_CHANGES, p->first ? WIRE_F_FIRST : 0);
	wbuf_u32(&r->out, p->epoch);
	wbuf_u64(&r->out, p->sent_end); /* prev */
	wbuf_u64(&r->out, 0); /* end, below */
	b.n_off = r->out.len;
	wbuf_u32(&r->out, 0);
	b.len_at_group_end = r->out.len;
	got = store_binlog_read(r->store, p->cursor, 0, build_cb, &b);
	if (got == -ERANGE) {
		/* trimmed past our cursor: if what went is what it holds, go
		 * on from the oldest entry kept, else only a snapshot helps */
		struct store_info si;

		if (horizon_check(r, p) == HZ_OK &&
		    store_info(r->store, &si) == 0 && si.binlog_first) {
			p->cursor = si.binlog_first - 1;
			if (!p->inflight)
				p->acked = p->cursor;
			return 0; /* prev stays: the receiver sees no gap */
		}
		log_msg(LOG_NOTICE, "%s: fell behind our binlog: sending a snapshot",
			p->cfg.name);
		p->snap_wanted = 1;
		return 0;
	}
	if (got < 0)
		return (int)got;
	if (!b.group_end)
		return 0;
	/* cut back to the last whole group */
	r->out.len = b.len_at_group_end;
	b.n = b.n_at_group_end;
	if (b.n == 0) {
		/* everything was held already: nothing to send, nothing to
		 * wait for */
		p->cursor = b.group_end;
		if (!p->inflight)
			p->acked = p->cursor;
		return 0;
	}
	wbuf_set_u32(&r->out, b.n_off, b.n);
	{
		uint64_t end = htole64(b.group_end);

		if (!r->out.err)
			memcpy(r->out.p + b.n_off - 8, &end, 8);
	}
	err = finish(r, p, l);
	if (err == -EAGAIN) {
		return 0;
	}
	if (err)
		return err;
	p->cursor = p->sent_end = b.group_end;
	p->first = 0;
	p->inflight++;
	p->out += b.n;
	r->c.out += b.n;
	return 1;
}

/* ---- snapshots out ---- */

struct snapw {
	struct repl *r;
	uint32_t n;
};

static int snap_rec_cb(void *arg, const char *path, size_t plen,
		       const void *rec, size_t rlen)
{
	struct snapw *sw = arg;

	wbuf_u16(&sw->r->out, (uint16_t)plen);
	wbuf_bytes(&sw->r->out, path, plen);
	wbuf_u32(&sw->r->out, (uint32_t)rlen);
	wbuf_bytes(&sw->r->out, rec, rlen);
	sw->n++;
	return 0;
}

static void snap_abort(struct peer *p)
{
	store_snap_close(&p->snap);
	p->snap_done_sending = 0;
}

static int snap_start(struct repl *r, struct peer *p, const struct link *l)
{
	struct wire_wm wm = { 0 };
	int err;

	snap_abort(p);
	err = store_snap_open(r->store, &p->snap);
	if (err)
		return err;
	err = store_snap_watermarks(p->snap, wm_add_cb, &wm);
	if (err) {
		snap_abort(p);
		return err;
	}
	p->snap_id++;
	p->snap_chunks_sent = p->snap_chunks_acked = p->snap_records = 0;
	begin(r, p, l, WIRE_SNAP_BEGIN, 0);
	wbuf_u64(&r->out, p->snap_id);
	wbuf_wm(&r->out, &wm);
	err = finish(r, p, l);
	if (err) {
		snap_abort(p);
		return err == -EAGAIN ? 0 : err;
	}
	p->snap_wanted = 0;
	p->wm = wm; /* what it will hold once it is in */
	p->inflight = 0;
	r->c.snaps_sent++;
	log_msg(LOG_NOTICE, "%s: sending a snapshot (binlog at %" PRIu64 ")",
		p->cfg.name, store_snap_seq(p->snap));
	return 0;
}

static int snap_pump(struct repl *r, struct peer *p, const struct link *l)
{
	while (!p->snap_done_sending &&
	       p->snap_chunks_sent - p->snap_chunks_acked < REPL_SNAP_WINDOW) {
		struct snapw sw = { .r = r };
		size_t n_off;
		ssize_t got;
		int err;

		begin(r, p, l, WIRE_SNAP_DATA, 0);
		wbuf_u64(&r->out, p->snap_id);
		wbuf_u64(&r->out, p->snap_chunks_sent + 1);
		n_off = r->out.len;
		wbuf_u32(&r->out, 0);
		got = store_snap_next(p->snap, REPL_SNAP_CHUNK, snap_rec_cb, &sw);
		if (got < 0) {
			snap_abort(p);
			return (int)got;
		}
		if (got == 0) {
			begin(r, p, l, WIRE_SNAP_END, 0);
			wbuf_u64(&r->out, p->snap_id);
			wbuf_u64(&r->out, p->snap_records);
			wbuf_u64(&r->out, p->snap_chunks_sent);
			err = finish(r, p, l);
			if (err) {
				return err == -EAGAIN ? 0 : err;
			}
			p->snap_done_sending = 1;
			p->snap_chunks_sent++;
			return 0;
		}
		wbuf_set_u32(&r->out, n_off, sw.n);
		err = finish(r, p, l);
		if (err) {
			/* the chunk is lost: start the snapshot over */
			snap_abort(p);
			p->snap_wanted = 1;
			return err == -EAGAIN ? 0 : err;
		}
		p->snap_records += sw.n;
		p->snap_chunks_sent++;
	}
	return 0;
}

/* ---- the pump ---- */

/* A new session of the stream to p: from the start of the binlog, or
 * from a snapshot if the binlog cannot bring it up to date. */
static void stream_restart(struct repl *r, struct peer *p)
{
	struct store_info si;

	p->pause_until = 0;
	p->last_ack = repl_now_ms();
	if (store_info(r->store, &si) == 0)
		rewind_to(p, si.binlog_first ? si.binlog_first - 1 : si.binlog_last, 0);
	else
		rewind_to(p, 0, 0);
	snap_abort(p);
}

void peer_pump(struct repl *r)
{
	int64_t now = repl_now_ms();
	size_t i;

	for (i = 0; i < r->npeers; i++) {
		struct peer *p = &r->peers[i];
		struct link *l = peer_out_link(p);
		int err = 0;

		if (!p->up || !l || p->blocked || now < p->pause_until)
			continue;
		if (!p->snap && !p->snap_wanted) {
			int hz = horizon_check(r, p);

			if (hz == HZ_WAIT)
				continue;
			if (hz == HZ_SNAP) {
				log_msg(LOG_NOTICE, "%s: it lacks changes our binlog no "
					"longer holds: sending a snapshot", p->cfg.name);
				p->snap_wanted = 1;
			}
		}
		if (p->snap_wanted && !p->inflight)
			err = snap_start(r, p, l);
		if (!err && p->snap)
			err = snap_pump(r, p, l);
		else if (!err && !p->snap_wanted)
			while (p->inflight < REPL_WINDOW &&
			       (err = send_changes(r, p, l)) == 1)
				;
		if (err < 0)
			log_msg(LOG_WARNING, "%s: cannot send: %s", p->cfg.name,
				strerror(-err));
	}
}

/* ---- receiving ---- */

static struct peer *peer_by_node(struct repl *r, uint64_t node)
{
	size_t i;

	for (i = 0; i < r->npeers; i++)
		if (r->peers[i].node == node)
			return &r->peers[i];
	return NULL;
}

static struct peer *peer_by_name(struct repl *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->npeers; i++)
		if (strcmp(r->peers[i].cfg.name, name) == 0)
			return &r->peers[i];
	return NULL;
}

static int is_refusal(int res)
{
	return res == STORE_HELD || res == STORE_TOO_OLD || res == -EFBIG ||
	       res == -E2BIG || res == -EPROTO;
}

/* Apply changes [0, stop) of m in one transaction; *bad gets the
 * index of the first change refused (stop if none) and *res its
 * result. Returns 0 or the error that spoiled the transaction. */
static int apply_range(struct repl *r, struct wire_changes *m, uint32_t stop,
		       uint32_t *bad, int *res, uint64_t *last_sseq,
		       struct peer *p, int count)
{
	struct wire_changes it = *m;
	struct conflict_pre pre;
	struct store_txn *t = NULL;
	uint32_t i, group = 0;
	int err;

	conflict_drop_hooks(r);
	*bad = stop;
	*res = 0;
	*last_sseq = 0;
	err = store_txn_begin(r->store, 1, &t);
	if (err)
		return err;
	for (i = 0; i < stop; i++) {
		struct store_change c;
		uint64_t sseq;
		int rc;

		if (wire_change_next(&it, &sseq, &c)) {
			store_txn_abort(&t);
			return -EPROTO; /* checked before: cannot happen */
		}
		err = conflict_before(r, t, &c, &pre);
		rc = err ? err : store_apply_remote(r->store, t, &c);
		if ((rc == STORE_CONFLICT_WON || rc == STORE_CONFLICT_LOST) &&
		    (err = conflict_after(r, t, &c, rc, &pre)) != 0)
			rc = err;
		conflict_pre_free(&pre);
		if (rc < 0 && !is_refusal(rc)) {
			store_txn_abort(&t);
			conflict_drop_hooks(r);
			*bad = group;
			*res = rc;
			return rc;
		}
		if (is_refusal(rc)) {
			*bad = group;
			*res = rc;
			store_txn_abort(&t);
			conflict_drop_hooks(r);
			return 0; /* the caller applies [0, group) again */
		}
		if (count) {
			switch (rc) {
			case STORE_APPLIED: r->c.applied++; break;
			case STORE_DUPLICATE: r->c.duplicates++; break;
			case STORE_SUPERSEDED: r->c.superseded++; break;
			case STORE_CONFLICT_WON:
			case STORE_CONFLICT_LOST:
				r->c.applied += rc == STORE_CONFLICT_WON;
				r->c.conflicts++;
				log_rate(LOG_NOTICE, "conflict on %.*s: concurrent writes "
					 "from %016" PRIx64 " and here; the higher version "
					 "stands", (int)c.path_len, c.path, c.origin_node);
				break;
			}
		}
		if (!(c.flags & STORE_CHANGE_MORE)) {
			group = i + 1;
			*last_sseq = sseq;
		}
	}
	err = store_txn_commit(&t);
	if (err) {
		conflict_drop_hooks(r);
		return err;
	}
	/* it holds what it sent us: never send it back */
	it = *m;
	for (i = 0; i < stop; i++) {
		struct store_change c;
		uint64_t sseq;

		wire_change_next(&it, &sseq, &c);
		wm_raise(&p->wm, c.origin_node, c.origin_seq);
	}
	return 0;
}

/* Ask p to start its stream again after what we committed, in a new
 * epoch; until its first message we take nothing of it. */
static void ask_rewind(struct repl *r, struct peer *p, const struct link *l,
		       uint32_t seen_epoch, uint64_t pause_ms)
{
	p->recv_epoch = (seen_epoch > p->recv_epoch ? seen_epoch : p->recv_epoch) + 1;
	p->need_first = 1;
	p->nack_at = repl_now_ms();
	send_ack(r, p, l, p->recv_acked, 1, pause_ms);
}

static void on_changes(struct repl *r, struct peer *p, const struct link *l,
		       struct rbuf *rb, unsigned flags)
{
	struct wire_changes m;
	uint32_t bad;
	uint64_t last;
	int res, err;

	if (wire_changes_decode(rb, &m)) {
		r->c.drop_malformed++;
		log_rate(LOG_WARNING, "%s: dropped a malformed CHANGES message",
			 p->cfg.name);
		return;
	}
	if (m.epoch < p->recv_epoch) {
		r->c.drop_stale++; /* an older stream, rewound since */
		if (p->need_first && repl_now_ms() - p->nack_at > 200) {
			/* our NACK may be lost: say again where to start */
			send_ack(r, p, l, p->recv_acked, 1, 0);
			p->nack_at = repl_now_ms();
		}
		return;
	}
	if (!(flags & WIRE_F_FIRST) &&
	    (p->need_first || m.epoch != p->recv_epoch || m.prev != p->recv_expect)) {
		/* something before it never arrived: taking it would skip
		 * changes for good (a watermark only grows) */
		r->c.drop_gap++;
		if (!p->need_first || m.epoch > p->recv_epoch)
			ask_rewind(r, p, l, m.epoch, 0);
		return;
	}
	p->recv_epoch = m.epoch;
	p->need_first = 0;
	r->c.in += m.n;
	p->in += m.n;
	err = apply_range(r, &m, m.n, &bad, &res, &last, p, 1);
	if (!err && bad == m.n) {
		p->recv_acked = p->recv_expect = m.end;
		send_ack(r, p, l, m.end, 0, 0);
		conflict_run_hooks(r);
		return;
	}
	/* stopped at group `bad`: keep what came before it */
	if (!err && bad > 0)
		err = apply_range(r, &m, bad, &bad, &res, &last, p, 0);
	if (!err)
		conflict_run_hooks(r);
	if (!err && last)
		p->recv_acked = last;
	if (res == STORE_HELD) {
		r->c.held++;
	} else if (res == STORE_TOO_OLD) {
		r->c.too_old++;
		if (repl_now_ms() - p->snap_req_at > 1000) {
			log_msg(LOG_NOTICE, "%s: its changes are older than our purge "
				"horizon: asking for a snapshot", p->cfg.name);
			begin(r, p, l, WIRE_SNAP_REQ, 0);
			finish(r, p, l);
			p->snap_req_at = repl_now_ms();
		}
	} else {
		r->c.refused++;
		log_msg(LOG_WARNING, "%s: a change was refused (%s): its stream waits",
			p->cfg.name, strerror(-(err ? err : res)));
	}
	/* rewind it to just after what we hold, in a new epoch */
	ask_rewind(r, p, l, m.epoch,
		   res == STORE_HELD ? 50 : res == STORE_TOO_OLD ? 2000 : 1000);
}

static void on_ack(struct repl *r, struct peer *p, struct rbuf *rb,
		   unsigned flags)
{
	struct wire_ack a;
	unsigned i;

	if (wire_ack_decode(rb, &a)) {
		r->c.drop_malformed++;
		return;
	}
	for (i = 0; i < a.wm.n; i++)
		wm_raise(&p->wm, a.wm.e[i].node, a.wm.e[i].seq);
	if (a.upto > p->acked && a.upto <= p->cursor)
		p->acked = a.upto;
	p->last_ack = repl_now_ms();
	if (flags & WIRE_F_NACK) {
		rewind_to(p, p->acked, a.epoch);
		p->pause_until = repl_now_ms() + (int64_t)a.pause_ms;
	} else if (a.epoch == p->epoch && p->inflight) {
		/* what was left out after the last message needs no word */
		if (--p->inflight == 0 && a.upto == p->sent_end)
			p->acked = p->cursor;
	}
	/* acknowledgements make purges possible (store.h): tell the store
	 * when they moved */
	if (a.wm.n != p->stored_wm.n ||
	    memcmp(a.wm.e, p->stored_wm.e, a.wm.n * sizeof(a.wm.e[0]))) {
		struct store_txn *t;

		if (store_txn_begin(r->store, 1, &t) == 0) {
			int err = 0;

			for (i = 0; !err && i < a.wm.n; i++)
				if (a.wm.e[i].node != p->node)
					err = store_peer_ack(r->store, t, p->node,
							     a.wm.e[i].node,
							     a.wm.e[i].seq);
			if (err)
				store_txn_abort(&t);
			else if (store_txn_commit(&t) == 0)
				p->stored_wm = a.wm;
		}
	}
}

static void on_hello(struct repl *r, struct peer *p, const struct link *l,
		     const struct wire_hdr *h, const struct wire_hello *hello)
{
	int was_up = p->up;

	p->node = h->node;
	if (p->their_session != h->session)
		p->their_seq[0] = p->their_seq[1] = 0;
	p->their_session = h->session;
	p->their_seq[lx(l)] = h->seq;
	p->up = 1;
	p->wm = hello->wm;
	p->recv_epoch = 0;
	p->need_first = 1;
	p->rsnap_id = 0;
	if (!was_up)
		log_msg(LOG_NOTICE, "peer %s up", p->cfg.name);
	{
		struct store_txn *t;
		unsigned i;

		if (store_txn_begin(r->store, 1, &t) == 0) {
			int err = store_peer_add(r->store, t, p->node);

			for (i = 0; err != -EINVAL && i < hello->wm.n; i++)
				if (hello->wm.e[i].node != p->node)
					store_peer_ack(r->store, t, p->node,
						       hello->wm.e[i].node,
						       hello->wm.e[i].seq);
			store_txn_commit(&t);
		}
	}
	stream_restart(r, p);
	if (h->flags & WIRE_F_REPLY)
		peer_hello(r, p, l, 0);
}

/* ---- snapshots in ---- */

static void on_snap_begin(struct repl *r, struct peer *p, struct rbuf *rb)
{
	uint64_t id = rbuf_u64(rb);

	if (rbuf_wm(rb, &p->rsnap_wm) || rbuf_end(rb)) {
		r->c.drop_malformed++;
		return;
	}
	p->rsnap_id = id;
	p->rsnap_chunks = 0;
	free(p->rsnap_last);
	p->rsnap_last = NULL;
	log_msg(LOG_NOTICE, "%s: receiving a snapshot", p->cfg.name);
}

static void snap_ack(struct repl *r, struct peer *p, const struct link *l,
		     uint64_t id, uint64_t chunks)
{
	begin(r, p, l, WIRE_SNAP_ACK, 0);
	wbuf_u64(&r->out, id);
	wbuf_u64(&r->out, chunks);
	finish(r, p, l);
}

static void snap_give_up(struct repl *r, struct peer *p, const struct link *l,
			 int err)
{
	log_msg(LOG_WARNING, "%s: cannot install its snapshot (%s): asking again",
		p->cfg.name, strerror(-err));
	p->rsnap_id = 0;
	begin(r, p, l, WIRE_SNAP_REQ, 0);
	finish(r, p, l);
}

static void on_snap_data(struct repl *r, struct peer *p, const struct link *l,
			 struct rbuf *rb)
{
	struct wire_snap_data d;
	struct store_txn *t = NULL;
	const char **keep = NULL;
	char *last = NULL;
	uint32_t i;
	int err;

	if (wire_snap_data_decode(rb, &d)) {
		r->c.drop_malformed++;
		log_rate(LOG_WARNING, "%s: dropped a malformed snapshot chunk",
			 p->cfg.name);
		return;
	}
	if (d.snap != p->rsnap_id || !p->rsnap_id) {
		r->c.drop_stale++;
		return;
	}
	if (d.chunk != p->rsnap_chunks + 1) {
		/* a chunk went missing: its records would read as deleted */
		snap_give_up(r, p, l, -EPROTO);
		return;
	}
	keep = calloc(d.n + 1, sizeof(*keep));
	err = keep ? store_txn_begin(r->store, 1, &t) : -ENOMEM;
	for (i = 0; !err && i < d.n; i++) {
		const char *path;
		const void *rec;
		size_t pl, rl;

		wire_snap_rec_next(&d, &path, &pl, &rec, &rl);
		keep[i] = strndup(path, pl);
		if (!keep[i]) {
			err = -ENOMEM;
			break;
		}
		err = store_snap_merge(r->store, t, path, pl, rec, rl);
	}
	if (!err && d.n)
		err = store_snap_prune(r->store, t, p->rsnap_wm.e, p->rsnap_wm.n,
				       p->rsnap_last, keep[d.n - 1], keep, d.n);
	if (!err)
		err = store_txn_commit(&t);
	else if (t)
		store_txn_abort(&t);
	if (!err && d.n) {
		last = (char *)keep[d.n - 1];
		keep[d.n - 1] = NULL;
		free(p->rsnap_last);
		p->rsnap_last = last;
	}
	for (i = 0; keep && i < d.n; i++)
		free((char *)keep[i]);
	free(keep);
	if (err) {
		snap_give_up(r, p, l, err);
		return;
	}
	p->rsnap_chunks++;
	snap_ack(r, p, l, d.snap, p->rsnap_chunks);
}

static void on_snap_end(struct repl *r, struct peer *p, const struct link *l,
			struct rbuf *rb)
{
	uint64_t id = rbuf_u64(rb), records = rbuf_u64(rb), chunks = rbuf_u64(rb);
	struct store_txn *t = NULL;
	int err;

	if (rbuf_end(rb)) {
		r->c.drop_malformed++;
		return;
	}
	if (id != p->rsnap_id || !id) {
		r->c.drop_stale++;
		return;
	}
	if (chunks != p->rsnap_chunks) {
		snap_give_up(r, p, l, -EPROTO);
		return;
	}
	err = store_txn_begin(r->store, 1, &t);
	if (!err)
		err = store_snap_prune(r->store, t, p->rsnap_wm.e, p->rsnap_wm.n,
				       p->rsnap_last, NULL, NULL, 0);
	if (!err)
		err = store_snap_finish(r->store, t, p->rsnap_wm.e, p->rsnap_wm.n);
	if (!err)
		err = store_txn_commit(&t);
	else if (t)
		store_txn_abort(&t);
	if (err) {
		snap_give_up(r, p, l, err);
		return;
	}
	r->c.snaps_received++;
	log_msg(LOG_NOTICE, "%s: snapshot received: %" PRIu64 " records",
		p->cfg.name, records);
	p->rsnap_id = 0;
	free(p->rsnap_last);
	p->rsnap_last = NULL;
	snap_ack(r, p, l, id, p->rsnap_chunks + 1);
}

static void on_snap_ack(struct repl *r, struct peer *p, struct rbuf *rb)
{
	uint64_t id = rbuf_u64(rb), chunks = rbuf_u64(rb);

	if (rbuf_end(rb)) {
		r->c.drop_malformed++;
		return;
	}
	if (!p->snap || id != p->snap_id)
		return;
	if (chunks > p->snap_chunks_acked && chunks <= p->snap_chunks_sent)
		p->snap_chunks_acked = chunks;
	p->last_ack = repl_now_ms();
	if (p->snap_done_sending && p->snap_chunks_acked == p->snap_chunks_sent) {
		/* it holds the snapshot: follow the binlog from there */
		uint64_t seq = store_snap_seq(p->snap);

		snap_abort(p);
		rewind_to(p, seq, 0);
		log_msg(LOG_NOTICE, "%s: snapshot sent", p->cfg.name);
	}
}

/* ---- dispatch ---- */

void peer_receive(struct repl *r, const struct link *l, const void *msg,
		  size_t len, const char *user_id)
{
	struct wire_hdr h;
	struct rbuf rb;
	struct peer *p = NULL;
	size_t i;

	/* the bodies of CHANGES and SNAP_DATA are checked whole by their
	 * handlers before anything is applied: checking them here too
	 * would decode every change a third time (apply checks it again) */
	rbuf_init(&rb, msg, len);
	if (wire_hdr_decode(&rb, &h) ||
	    (h.type != WIRE_CHANGES && h.type != WIRE_SNAP_DATA &&
	     wire_check(msg, len, &h))) {
		r->c.drop_malformed++;
		log_rate(LOG_WARNING, "dropped a malformed message (%zu bytes)", len);
		return;
	}
	if (h.node == r->node) {
		r->c.drop_unknown++;
		return;
	}
	/* which peer: a DEALER is one peer's; on the ROUTER, by routing id
	 * or, for a HELLO, by name and key */
	if (!l->rid_len) {
		for (i = 0; i < r->npeers && !p; i++)
			if (r->peers[i].dl.sock == l->sock)
				p = &r->peers[i];
	} else {
		for (i = 0; i < r->npeers && !p; i++)
			if (r->peers[i].rl.rid_len == l->rid_len &&
			    memcmp(r->peers[i].rl.rid, l->rid, l->rid_len) == 0)
				p = &r->peers[i];
	}
	if (h.type == WIRE_HELLO) {
		struct wire_hello hello;

		wire_hello_decode(&rb, &hello);
		if (!p || l->rid_len)
			p = peer_by_name(r, hello.name);
		if (!p) {
			r->c.drop_unknown++;
			log_rate(LOG_WARNING, "a HELLO from node '%s', not one of our "
				 "peers: ignored", hello.name);
			return;
		}
		/* a DEALER checked the server's key in the handshake; on the
		 * ROUTER, ZAP gave the client's key as the User-Id */
		if (!r->cfg.insecure && l->rid_len &&
		    (!user_id || strcmp(user_id, p->cfg.public_key) != 0)) {
			r->c.drop_key++;
			log_rate(LOG_WARNING, "a HELLO as peer '%s' with another key "
				 "(%s): ignored", p->cfg.name, user_id ? user_id : "none");
			return;
		}
		if (p->node && p->node != h.node && p->up)
			log_msg(LOG_WARNING, "peer %s has a new node id %016" PRIx64,
				p->cfg.name, h.node);
		if (p->blocked) {
			r->c.drop_blocked++;
			return;
		}
		if (h.session == p->their_session && h.seq <= p->their_seq[lx(l)]) {
			r->c.drop_replayed++;
			log_rate(LOG_WARNING, "%s: dropped a replayed HELLO", p->cfg.name);
			return;
		}
		if (l->rid_len)
			p->rl = *l;
		p->last_contact = repl_now_ms();
		on_hello(r, p, l, &h, &hello);
		return;
	}
	if (!p)
		p = peer_by_node(r, h.node);
	if (p && p->blocked) {
		r->c.drop_blocked++;
		return;
	}
	if (p && l->rid_len && !r->cfg.insecure &&
	    (!user_id || strcmp(user_id, p->cfg.public_key) != 0)) {
		r->c.drop_key++; /* another peer's key under this one's id */
		return;
	}
	if (!p || p->node != h.node || h.session != p->their_session) {
		/* we do not know this session: ask who it is */
		r->c.drop_session++;
		if (p && repl_now_ms() - p->hello_sent > 500)
			peer_hello(r, p, l, WIRE_F_REPLY);
		return;
	}
	if (h.seq <= p->their_seq[lx(l)]) {
		r->c.drop_replayed++;
		log_rate(LOG_WARNING, "%s: dropped a replayed message", p->cfg.name);
		return;
	}
	p->their_seq[lx(l)] = h.seq;
	p->last_contact = repl_now_ms();
	if (!p->up) {
		p->up = 1;
		log_msg(LOG_NOTICE, "peer %s up", p->cfg.name);
	}
	switch (h.type) {
	case WIRE_CHANGES:
		on_changes(r, p, l, &rb, h.flags);
		break;
	case WIRE_ACK:
		on_ack(r, p, &rb, h.flags);
		break;
	case WIRE_HEARTBEAT:
		p->their_behind = rbuf_u64(&rb);
		break;
	case WIRE_SNAP_REQ:
		p->snap_wanted = 1;
		p->inflight = 0;
		break;
	case WIRE_SNAP_BEGIN:
		on_snap_begin(r, p, &rb);
		break;
	case WIRE_SNAP_DATA:
		on_snap_data(r, p, l, &rb);
		break;
	case WIRE_SNAP_END:
		on_snap_end(r, p, l, &rb);
		break;
	case WIRE_SNAP_ACK:
		on_snap_ack(r, p, &rb);
		break;
	case WIRE_HELLO:
		break;
	}
}

/* ---- time ---- */

void peer_tick(struct repl *r)
{
	int64_t now = repl_now_ms();
	int64_t hb = (int64_t)r->cfg.heartbeat_ms, to = (int64_t)r->cfg.peer_timeout_ms;
	uint64_t last = store_last_seq(r->store);
	size_t i;

	for (i = 0; i < r->npeers; i++) {
		struct peer *p = &r->peers[i];
		struct link *l = peer_out_link(p);

		if (p->up && now - p->last_contact > to) {
			p->up = 0;
			log_msg(LOG_NOTICE, "peer %s down (no word for %" PRId64 " ms)",
				p->cfg.name, now - p->last_contact);
			snap_abort(p);
		}
		if (!l || p->blocked)
			continue;
		if (!p->up) {
			if (p->dl.sock && now - p->hello_sent >= (hb < to ? hb : to))
				peer_hello(r, p, &p->dl, WIRE_F_REPLY);
			continue;
		}
		if (now - p->last_sent >= hb) {
			begin(r, p, l, WIRE_HEARTBEAT, 0);
			wbuf_u64(&r->out, last > p->acked ? last - p->acked : 0);
			finish(r, p, l);
		}
		/* nothing acknowledged for a while: rewind */
		if ((p->inflight || p->snap) &&
		    now - p->last_ack > to) {
			log_msg(LOG_NOTICE, "%s: no acknowledgement for %" PRId64
				" ms: sending again", p->cfg.name, now - p->last_ack);
			if (p->snap) {
				snap_abort(p);
				p->snap_wanted = 1;
			}
			rewind_to(p, p->acked, 0);
			p->last_ack = now;
		}
	}
}
