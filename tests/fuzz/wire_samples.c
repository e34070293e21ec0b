/*
 * wire_samples.c — replicator messages for tests (wire_samples.h).
 *
 * Every message is built with wire.h's encoders (wbuf_hdr, wbuf_wm,
 * wbuf_u32...), so a change of the format there changes the samples;
 * malformed ones are a valid message with one thing made wrong, built
 * by the same calls with one value changed or by cutting bytes. The
 * byte offsets used (a u32 count right after the header, for example)
 * are those wire.h documents.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/wire_samples.h"

/* ---- changes from a store ---- */

static int copy_change_cb(void *arg, const struct store_change *c)
{
	struct ws_changes *cs = arg;
	struct ws_change *v = realloc(cs->v, (cs->n + 1) * sizeof(*v)), *w;
	void *enc = NULL;
	size_t len = 0;
	int err;

	if (!v)
		return -ENOMEM;
	cs->v = v;
	w = &v[cs->n];
	err = store_change_encode(c, &enc, &len);
	if (err)
		return err;
	w->sseq = c->seq;
	w->enc = enc;
	w->len = len;
	if (store_change_decode(enc, len, &w->c)) {
		free(enc);
		return -EPROTO;
	}
	w->c.seq = c->seq;
	cs->n++;
	return 0;
}

int ws_changes_read(struct store *s, uint64_t after, size_t max,
		    struct ws_changes *out)
{
	ssize_t got;

	memset(out, 0, sizeof(*out));
	got = store_binlog_read(s, after, max, copy_change_cb, out);
	if (got < 0)
		return (int)got;
	return 0;
}

void ws_changes_free(struct ws_changes *cs)
{
	size_t i;

	for (i = 0; i < cs->n; i++)
		free(cs->v[i].enc);
	free(cs->v);
	memset(cs, 0, sizeof(*cs));
}

/* ---- builders ---- */

void ws_hello(struct wbuf *b, struct wire_hdr h, const char *name,
	      const struct wire_wm *wm)
{
	size_t n = strlen(name);

	h.type = WIRE_HELLO;
	wbuf_hdr(b, &h);
	wbuf_u8(b, (uint8_t)n);
	wbuf_bytes(b, name, n);
	wbuf_wm(b, wm);
}

void ws_changes(struct wbuf *b, struct wire_hdr h, uint32_t epoch,
		const struct ws_change *v, size_t n)
{
	size_t i;

	h.type = WIRE_CHANGES;
	wbuf_hdr(b, &h);
	wbuf_u32(b, epoch);
	wbuf_u64(b, n ? v[0].sseq - 1 : 0); /* prev */
	wbuf_u64(b, n ? v[n - 1].sseq : 0); /* end */
	wbuf_u32(b, (uint32_t)n);
	for (i = 0; i < n; i++)
		wbuf_change(b, v[i].sseq, &v[i].c);
}

/* ---- decoding it all again ---- */

static void put_rec(struct wbuf *b, const char *path, size_t plen,
		    const void *rec, size_t rlen)
{
	wbuf_u16(b, (uint16_t)plen);
	wbuf_bytes(b, path, plen);
	wbuf_u32(b, (uint32_t)rlen);
	wbuf_bytes(b, rec, rlen);
}


/* p (n bytes) lies within [base, base + len]. */
static int inside(const void *p, size_t n, const void *base, size_t len)
{
	const unsigned char *q = p, *b = base;

	return q && q >= b && q <= b + len && n <= (size_t)(b + len - q);
}

static int re_changes(const void *msg, size_t len, struct rbuf *r,
		      struct wbuf *b)
{
	struct wire_changes m;
	struct store_change c;
	uint64_t sseq;
	uint32_t i;

	if (wire_changes_decode(r, &m))
		return -EFAULT;
	wbuf_u32(b, m.epoch);
	wbuf_u64(b, m.prev);
	wbuf_u64(b, m.end);
	wbuf_u32(b, m.n);
	for (i = 0; i < m.n; i++) {
		void *enc = NULL;
		size_t elen = 0;

		if (wire_change_next(&m, &sseq, &c))
			return -EFAULT;
		if (!inside(c.path, c.path_len, msg, len) ||
		    !inside(c.rec, c.rec_len, msg, len) ||
		    sseq > m.end || sseq <= m.prev)
			return -EFAULT;
		if (i + 1 == m.n && (c.flags & STORE_CHANGE_MORE))
			return -EFAULT;
		if (store_change_encode(&c, &enc, &elen))
			return -EFAULT;
		wbuf_u64(b, sseq);
		wbuf_u32(b, (uint32_t)elen);
		wbuf_bytes(b, enc, elen);
		free(enc);
	}
	return rbuf_end(&m.r) ? -EFAULT : 0;
}

static int re_snap_data(const void *msg, size_t len, struct rbuf *r,
			struct wbuf *b)
{
	struct wire_snap_data d;
	const char *path;
	const void *rec;
	size_t pl, rl;
	uint32_t i;

	if (wire_snap_data_decode(r, &d))
		return -EFAULT;
	wbuf_u64(b, d.snap);
	wbuf_u64(b, d.chunk);
	wbuf_u32(b, d.n);
	for (i = 0; i < d.n; i++) {
		if (wire_snap_rec_next(&d, &path, &pl, &rec, &rl))
			return -EFAULT;
		if (!inside(path, pl, msg, len) || !inside(rec, rl, msg, len) ||
		    pl == 0 || path[0] != '/')
			return -EFAULT;
		put_rec(b, path, pl, rec, rl);
	}
	return rbuf_end(&d.r) ? -EFAULT : 0;
}

int ws_reencode(const void *msg, size_t len, struct wbuf *b)
{
	struct wire_hdr h, h2;
	struct rbuf r;
	int err = 0;

	wbuf_reset(b);
	if (wire_check(msg, len, &h))
		return -EPROTO;
	rbuf_init(&r, msg, len);
	if (wire_hdr_decode(&r, &h2) || h2.type != h.type ||
	    h2.flags != h.flags || h2.node != h.node ||
	    h2.session != h.session || h2.seq != h.seq || r.off != WIRE_HDR_LEN)
		return -EFAULT;
	wbuf_hdr(b, &h);
	switch (h.type) {
	case WIRE_HELLO: {
		struct wire_hello hello;
		size_t n;

		if (wire_hello_decode(&r, &hello))
			return -EFAULT;
		n = strlen(hello.name);
		if (n == 0 || n > WIRE_NAME_MAX)
			return -EFAULT;
		wbuf_u8(b, (uint8_t)n);
		wbuf_bytes(b, hello.name, n);
		wbuf_wm(b, &hello.wm);
		break;
	}
	case WIRE_CHANGES:
		err = re_changes(msg, len, &r, b);
		break;
	case WIRE_ACK: {
		struct wire_ack a;

		if (wire_ack_decode(&r, &a))
			return -EFAULT;
		wbuf_u32(b, a.epoch);
		wbuf_u64(b, a.upto);
		wbuf_u64(b, a.pause_ms);
		wbuf_wm(b, &a.wm);
		break;
	}
	case WIRE_HEARTBEAT:
		wbuf_u64(b, rbuf_u64(&r));
		break;
	case WIRE_SNAP_REQ:
		break;
	case WIRE_SNAP_BEGIN: {
		struct wire_wm wm;

		wbuf_u64(b, rbuf_u64(&r));
		if (rbuf_wm(&r, &wm))
			return -EFAULT;
		wbuf_wm(b, &wm);
		break;
	}
	case WIRE_SNAP_DATA:
		err = re_snap_data(msg, len, &r, b);
		break;
	case WIRE_SNAP_END:
		wbuf_u64(b, rbuf_u64(&r));
		wbuf_u64(b, rbuf_u64(&r));
		wbuf_u64(b, rbuf_u64(&r));
		break;
	case WIRE_SNAP_ACK:
		wbuf_u64(b, rbuf_u64(&r));
		wbuf_u64(b, rbuf_u64(&r));
		break;
	}
	if (!err && h.type != WIRE_CHANGES && h.type != WIRE_SNAP_DATA &&
	    rbuf_end(&r))
		err = -EFAULT;
	if (!err && b->err)
		err = -EFAULT;
	return err;
}

/* ---- the set ---- */

static int add(struct ws_set *set, struct wbuf *b, int valid,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Move b's bytes into the set as one message (b is left empty). */
static int add(struct ws_set *set, struct wbuf *b, int valid,
	       const char *fmt, ...)
{
	struct ws_msg *v, *m;
	va_list ap;

	if (b->err)
		return b->err;
	v = realloc(set->v, (set->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	set->v = v;
	m = &v[set->n];
	memset(m, 0, sizeof(*m));
	va_start(ap, fmt);
	vsnprintf(m->name, sizeof(m->name), fmt, ap);
	va_end(ap);
	m->len = b->len;
	m->p = malloc(b->len ? b->len : 1);
	if (!m->p)
		return -ENOMEM;
	if (b->len)
		memcpy(m->p, b->p, b->len);
	m->valid = valid;
	set->n++;
	wbuf_reset(b);
	return 0;
}

void ws_set_free(struct ws_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		free(set->v[i].p);
	free(set->v);
	memset(set, 0, sizeof(*set));
}

struct snap_rec {
	char *path;
	size_t plen;
	void *rec;
	size_t rlen;
};
struct snap_recs {
	struct snap_rec v[64];
	size_t n;
};

static int snap_cb(void *arg, const char *path, size_t plen, const void *rec,
		   size_t rlen)
{
	struct snap_recs *sr = arg;
	struct snap_rec *r;

	if (sr->n == 64)
		return 0;
	r = &sr->v[sr->n];
	r->path = malloc(plen ? plen : 1);
	r->rec = malloc(rlen ? rlen : 1);
	if (!r->path || !r->rec)
		return -ENOMEM;
	memcpy(r->path, path, plen);
	memcpy(r->rec, rec, rlen);
	r->plen = plen;
	r->rlen = rlen;
	sr->n++;
	return 0;
}

static void snap_recs_free(struct snap_recs *sr)
{
	size_t i;

	for (i = 0; i < sr->n; i++) {
		free(sr->v[i].path);
		free(sr->v[i].rec);
	}
	sr->n = 0;
}

static int wm_cb(void *arg, uint64_t node, uint64_t seq)
{
	struct wire_wm *wm = arg;
	unsigned i;

	if (wm->n == STORE_VV_MAX)
		return 0;
	/* store_watermarks gives them in node order already; keep it so */
	for (i = wm->n; i > 0 && wm->e[i - 1].node > node; i--)
		wm->e[i] = wm->e[i - 1];
	wm->e[i].node = node;
	wm->e[i].seq = seq;
	wm->n++;
	return 0;
}

/* The samples from store s: its changes (a single commit, then a
 * group of three), its watermarks and its snapshot. */
static int make(struct store *s, struct ws_set *set)
{
	struct wire_hdr h = { .node = 0x1122334455667788ull,
			      .session = 0x0102030405060708ull, .seq = 1 };
	struct wbuf b = { 0 };
	struct ws_changes cs = { 0 };
	struct wire_wm wm = { 0 }, big = { 0 };
	struct snap_recs sr = { .n = 0 };
	struct store_snap *snap = NULL;
	struct store_txn *t = NULL;
	size_t hl = WIRE_HDR_LEN, i, cut;
	int err;

	/* one single-entry commit, then one group of three */
	err = store_put(s, NULL, "/solo", "v1", 2, NULL, 0, STORE_CREATE);
	if (!err)
		err = store_txn_begin(s, 1, &t);
	for (i = 0; !err && i < 3; i++) {
		char path[16];

		snprintf(path, sizeof(path), "/g%zu", i);
		err = store_put(s, t, path, "group", 5, NULL, 0, STORE_CREATE);
	}
	if (!err)
		err = store_txn_commit(&t);
	else if (t)
		store_txn_abort(&t);
	if (!err)
		err = ws_changes_read(s, 0, 0, &cs);
	if (!err && (cs.n != 4 || (cs.v[0].c.flags & STORE_CHANGE_MORE) ||
		     !(cs.v[1].c.flags & STORE_CHANGE_MORE) ||
		     (cs.v[3].c.flags & STORE_CHANGE_MORE)))
		err = -EINVAL; /* not the binlog this code expects */
	if (!err)
		err = store_watermarks(s, wm_cb, &wm);
	if (!err)
		err = store_snap_open(s, &snap);
	while (!err) {
		ssize_t got = store_snap_next(snap, 1 << 20, snap_cb, &sr);

		if (got <= 0) {
			err = (int)got;
			break;
		}
	}
	store_snap_close(&snap);
	if (!err && sr.n < 2)
		err = -EINVAL;
	if (err)
		goto out;
	for (i = 0; i < STORE_VV_MAX; i++) {
		big.e[i].node = i + 1;
		big.e[i].seq = 1000 + i;
	}
	big.n = STORE_VV_MAX;

	/* ---- valid, every type ---- */
#define ADD(valid, ...)                                            \
	do {                                                       \
		if ((err = add(set, &b, (valid), __VA_ARGS__)) != 0) \
			goto out;                                  \
	} while (0)
	h.flags = WIRE_F_REPLY;
	ws_hello(&b, h, "n2", &wm);
	ADD(1, "hello");
	h.flags = 0;
	ws_hello(&b, h, "a-node-name-of-sixty-three-bytes-which-is-the-most-a-name-has-x",
		 &big);
	ADD(1, "hello_max");
	ws_changes(&b, h, 0, &cs.v[0], 1);
	ADD(1, "changes_one");
	ws_changes(&b, h, 7, cs.v, cs.n);
	ADD(1, "changes_groups");
	h.flags = WIRE_F_FIRST;
	ws_changes(&b, h, 8, cs.v, cs.n);
	ADD(1, "changes_first");
	h.flags = 0;
	h.type = WIRE_ACK;
	wbuf_hdr(&b, &h);
	wbuf_u32(&b, 3);
	wbuf_u64(&b, 42);
	wbuf_u64(&b, 0);
	wbuf_wm(&b, &wm);
	ADD(1, "ack");
	h.flags = WIRE_F_NACK;
	wbuf_hdr(&b, &h);
	wbuf_u32(&b, 4);
	wbuf_u64(&b, 41);
	wbuf_u64(&b, 3600 * 1000);
	wbuf_wm(&b, &wm);
	ADD(1, "ack_nack");
	h.flags = 0;
	h.type = WIRE_HEARTBEAT;
	wbuf_hdr(&b, &h);
	wbuf_u64(&b, 99);
	ADD(1, "heartbeat");
	h.type = WIRE_SNAP_REQ;
	wbuf_hdr(&b, &h);
	ADD(1, "snap_req");
	h.type = WIRE_SNAP_BEGIN;
	wbuf_hdr(&b, &h);
	wbuf_u64(&b, 1);
	wbuf_wm(&b, &wm);
	ADD(1, "snap_begin");
	h.type = WIRE_SNAP_DATA;
	wbuf_hdr(&b, &h);
	wbuf_u64(&b, 1);
	wbuf_u64(&b, 1); /* chunk */
	wbuf_u32(&b, (uint32_t)sr.n);
	for (i = 0; i < sr.n; i++)
		put_rec(&b, sr.v[i].path, sr.v[i].plen, sr.v[i].rec, sr.v[i].rlen);
	ADD(1, "snap_data");
	wbuf_hdr(&b, &h);
	wbuf_u64(&b, 1);
	wbuf_u64(&b, 2);
	wbuf_u32(&b, 0);
	ADD(1, "snap_data_empty");
	h.type = WIRE_SNAP_END;
	wbuf_hdr(&b, &h);
	wbuf_u64(&b, 1);
	wbuf_u64(&b, sr.n);
	wbuf_u64(&b, 2);
	ADD(1, "snap_end");
	h.type = WIRE_SNAP_ACK;
	wbuf_hdr(&b, &h);
	wbuf_u64(&b, 1);
	wbuf_u64(&b, 2);
	ADD(1, "snap_ack");

	/* ---- malformed: the header ---- */
	ADD(0, "empty");
	h.type = WIRE_HEARTBEAT;
	wbuf_hdr(&b, &h);
	b.len = hl - 1;
	ADD(0, "hdr_truncated");
	wbuf_hdr(&b, &h);
	wbuf_u64(&b, 1);
	b.p[0] ^= 0xff;
	ADD(0, "hdr_bad_magic");
	wbuf_hdr(&b, &h);
	wbuf_u64(&b, 1);
	b.p[3] = '2'; /* "SFR2": another version */
	ADD(0, "hdr_version_2");
	wbuf_hdr(&b, &h);
	wbuf_u64(&b, 1);
	b.p[4] = 0;
	ADD(0, "hdr_type_0");
	wbuf_hdr(&b, &h);
	wbuf_u64(&b, 1);
	b.p[4] = WIRE_TYPE_MAX + 1;
	ADD(0, "hdr_type_past_max");
	wbuf_hdr(&b, &h);
	wbuf_u64(&b, 1);
	b.p[5] = 0x8;
	ADD(0, "hdr_unknown_flag");
	wbuf_hdr(&b, &h);
	wbuf_u64(&b, 1);
	b.p[7] = 1;
	ADD(0, "hdr_reserved_set");
	{
		struct wire_hdr z = h;

		z.node = 0;
		wbuf_hdr(&b, &z);
		wbuf_u64(&b, 1);
		ADD(0, "hdr_node_0");
	}

	/* ---- HELLO ---- */
	h.type = WIRE_HELLO;
	wbuf_hdr(&b, &h);
	wbuf_u8(&b, 0);
	wbuf_wm(&b, &wm);
	ADD(0, "hello_name_empty");
	ws_hello(&b, h, "a-node-name-of-sixty-four-bytes-which-is-one-more-than-allowed-x",
		 &wm);
	ADD(0, "hello_name_64");
	ws_hello(&b, h, "n2", &wm);
	b.p[hl + 2] = '\0';
	ADD(0, "hello_name_nul");
	ws_hello(&b, h, "n2", &big);
	wbuf_set_u32(&b, hl + 3, STORE_VV_MAX + 1);
	ADD(0, "hello_wm_count_plus1");
	ws_hello(&b, h, "n2", &wm);
	wbuf_set_u32(&b, hl + 3, 0xffffffffu);
	ADD(0, "hello_wm_count_huge");
	{
		struct wire_wm bad = big;

		bad.n = 3;
		bad.e[1].node = bad.e[0].node; /* a duplicate */
		ws_hello(&b, h, "n2", &bad);
		ADD(0, "hello_wm_duplicate");
		bad.e[1].node = 0;
		ws_hello(&b, h, "n2", &bad);
		ADD(0, "hello_wm_node_0");
	}
	ws_hello(&b, h, "n2", &wm);
	wbuf_u8(&b, 0);
	ADD(0, "hello_trailing");
	ws_hello(&b, h, "n2", &wm);
	b.len--;
	ADD(0, "hello_truncated");

	/* ---- CHANGES: prev at hl + 4, end at hl + 12, count at hl + 20,
	 * the first change's len at hl + 24 + 8 ---- */
	ws_changes(&b, h, 0, cs.v, 0);
	ADD(0, "changes_n_0");
	ws_changes(&b, h, 0, &cs.v[0], 1);
	wbuf_set_u32(&b, hl + 20, 0xffffffffu);
	ADD(0, "changes_count_huge");
	ws_changes(&b, h, 0, &cs.v[0], 1);
	wbuf_set_u32(&b, hl + 20, 2);
	ADD(0, "changes_count_plus1");
	ws_changes(&b, h, 0, &cs.v[0], 1);
	wbuf_set_u32(&b, hl + 24 + 8, 0x7fffffffu); /* the change's len */
	ADD(0, "changes_len_past_end");
	ws_changes(&b, h, 0, &cs.v[0], 1);
	b.len--;
	ADD(0, "changes_truncated");
	ws_changes(&b, h, 0, &cs.v[0], 1);
	wbuf_u8(&b, 0);
	ADD(0, "changes_trailing");
	ws_changes(&b, h, 0, &cs.v[0], 1);
	wbuf_set_u32(&b, hl + 24 + 8, (uint32_t)cs.v[0].len - 1);
	b.len--; /* the change is one byte short, the frame consistent */
	ADD(0, "changes_change_short");
	/* the group cut after its first change: ends inside a commit */
	ws_changes(&b, h, 0, &cs.v[1], 1);
	ADD(0, "changes_cut_group");
	ws_changes(&b, h, 0, &cs.v[1], 2);
	ADD(0, "changes_cut_group_2");
	{
		struct ws_change two[2] = { cs.v[0], cs.v[0] };

		ws_changes(&b, h, 0, two, 2);
		ADD(0, "changes_sseq_repeated");
		two[1].sseq = 0;
		ws_changes(&b, h, 0, two, 2);
		ADD(0, "changes_sseq_backwards");
	}
	ws_changes(&b, h, 0, &cs.v[0], 1);
	{
		uint64_t end = htole64(cs.v[0].sseq - 1);

		memcpy(b.p + hl + 12, &end, 8);
	}
	ADD(0, "changes_sseq_past_end");
	ws_changes(&b, h, 0, &cs.v[0], 1);
	{
		uint64_t prev = htole64(cs.v[0].sseq);

		memcpy(b.p + hl + 4, &prev, 8);
	}
	ADD(0, "changes_prev_not_before_end");
	{
		struct ws_change two[2] = { cs.v[0], cs.v[3] };

		ws_changes(&b, h, 0, two, 2);
		{
			uint64_t prev = htole64(cs.v[0].sseq);

			memcpy(b.p + hl + 4, &prev, 8);
		}
		ADD(0, "changes_sseq_not_after_prev");
	}

	/* ---- ACK ---- */
	h.type = WIRE_ACK;
	wbuf_hdr(&b, &h);
	wbuf_u32(&b, 3);
	wbuf_u64(&b, 42);
	wbuf_u64(&b, 3600 * 1000 + 1);
	wbuf_wm(&b, &wm);
	ADD(0, "ack_pause_huge");
	wbuf_hdr(&b, &h);
	wbuf_u32(&b, 3);
	wbuf_u64(&b, 42);
	wbuf_u64(&b, 0);
	cut = b.len;
	wbuf_wm(&b, &wm);
	wbuf_set_u32(&b, cut, 0xffffffffu);
	ADD(0, "ack_wm_count_huge");
	wbuf_hdr(&b, &h);
	wbuf_u32(&b, 3);
	wbuf_u64(&b, 42);
	ADD(0, "ack_truncated");

	/* ---- the small ones ---- */
	h.type = WIRE_HEARTBEAT;
	wbuf_hdr(&b, &h);
	wbuf_u32(&b, 99);
	ADD(0, "heartbeat_short");
	wbuf_hdr(&b, &h);
	wbuf_u64(&b, 99);
	wbuf_u8(&b, 0);
	ADD(0, "heartbeat_trailing");
	h.type = WIRE_SNAP_REQ;
	wbuf_hdr(&b, &h);
	wbuf_u8(&b, 0);
	ADD(0, "snap_req_body");
	h.type = WIRE_SNAP_BEGIN;
	wbuf_hdr(&b, &h);
	wbuf_u64(&b, 1);
	wbuf_wm(&b, &wm);
	wbuf_set_u32(&b, hl + 8, STORE_VV_MAX + 1);
	ADD(0, "snap_begin_wm_count_plus1");
	h.type = WIRE_SNAP_END;
	wbuf_hdr(&b, &h);
	wbuf_u64(&b, 1);
	wbuf_u64(&b, 1);
	ADD(0, "snap_end_short");
	h.type = WIRE_SNAP_ACK;
	wbuf_hdr(&b, &h);
	wbuf_u64(&b, 1);
	wbuf_u64(&b, 2);
	wbuf_u64(&b, 3);
	ADD(0, "snap_ack_long");

	/* ---- SNAP_DATA: chunk at hl + 8, count at hl + 16, first record
	 * at hl + 20 ---- */
	h.type = WIRE_SNAP_DATA;
#define SNAP_ONE(path, plen, rec, rlen)                 \
	do {                                            \
		wbuf_hdr(&b, &h);                       \
		wbuf_u64(&b, 1);                        \
		wbuf_u64(&b, 1);                        \
		wbuf_u32(&b, 1);                        \
		put_rec(&b, (path), (plen), (rec), (rlen)); \
	} while (0)
	SNAP_ONE(sr.v[1].path, sr.v[1].plen, sr.v[1].rec, sr.v[1].rlen);
	wbuf_set_u32(&b, hl + 16, 0xffffffffu);
	ADD(0, "snap_data_count_huge");
	SNAP_ONE(sr.v[1].path, sr.v[1].plen, sr.v[1].rec, sr.v[1].rlen);
	wbuf_set_u32(&b, hl + 16, 2);
	ADD(0, "snap_data_count_plus1");
	SNAP_ONE(sr.v[1].path, sr.v[1].plen, sr.v[1].rec, sr.v[1].rlen);
	memset(b.p + hl + 8, 0, 8);
	ADD(0, "snap_data_chunk_0");
	SNAP_ONE(sr.v[1].path + 1, sr.v[1].plen - 1, sr.v[1].rec, sr.v[1].rlen);
	ADD(0, "snap_data_path_relative");
	SNAP_ONE("", 0, sr.v[1].rec, sr.v[1].rlen);
	ADD(0, "snap_data_path_empty");
	SNAP_ONE("/a\0b", 4, sr.v[1].rec, sr.v[1].rlen);
	ADD(0, "snap_data_path_nul");
	/* a record cut inside its fixed header (a cut inside a file's
	 * value is a well-formed record with a shorter value: format 3
	 * does not store the value's length) */
	SNAP_ONE(sr.v[1].path, sr.v[1].plen, sr.v[1].rec, 20);
	ADD(0, "snap_data_rec_short");
	SNAP_ONE(sr.v[1].path, sr.v[1].plen, sr.v[1].rec, sr.v[1].rlen);
	b.len--;
	ADD(0, "snap_data_truncated");
#undef SNAP_ONE
#undef ADD
out:
	wbuf_free(&b);
	ws_changes_free(&cs);
	snap_recs_free(&sr);
	return err;
}

static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4200];

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (e->d_type == DT_DIR)
			rm_tree(path);
		else
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

int ws_make_all(const char *tmpdir, struct ws_set *set)
{
	struct store_opts o = { .map_size = 16ULL << 20, .clock = fuzz_clock,
				.node_name = "samples" };
	struct store *s = NULL;
	char dir[4096];
	int err;

	memset(set, 0, sizeof(*set));
	if ((size_t)snprintf(dir, sizeof(dir), "%s/wire-samples.XXXXXX", tmpdir) >=
		    sizeof(dir) ||
	    !mkdtemp(dir))
		return -errno ? -errno : -ENAMETOOLONG;
	err = store_open(dir, &o, &s);
	if (!err)
		err = make(s, set);
	store_close(&s);
	rm_tree(dir);
	if (err)
		ws_set_free(set);
	return err;
}
