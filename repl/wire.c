/*
 * wire.c — the replicator's messages (wire.h): bounded, strict.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "repl/wire.h"

/* ---- writing ---- */

void wbuf_reset(struct wbuf *b)
{
	b->len = 0;
	b->err = 0;
}

void wbuf_free(struct wbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static unsigned char *wbuf_room(struct wbuf *b, size_t n)
{
	unsigned char *p;
	size_t cap;

	if (b->err)
		return NULL;
	if (n > WIRE_MAX || b->len > WIRE_MAX - n) {
		b->err = -EMSGSIZE;
		return NULL;
	}
	if (b->len + n > b->cap) {
		cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->err = -ENOMEM;
			return NULL;
		}
		b->p = p;
		b->cap = cap;
	}
	p = b->p + b->len;
	b->len += n;
	return p;
}

void wbuf_bytes(struct wbuf *b, const void *p, size_t n)
{
	unsigned char *d = wbuf_room(b, n);

	if (d && n)
		memcpy(d, p, n);
}

void wbuf_u8(struct wbuf *b, uint8_t v)
{
	wbuf_bytes(b, &v, 1);
}

void wbuf_u16(struct wbuf *b, uint16_t v)
{
	v = htole16(v);
	wbuf_bytes(b, &v, 2);
}

void wbuf_u32(struct wbuf *b, uint32_t v)
{
	v = htole32(v);
	wbuf_bytes(b, &v, 4);
}

void wbuf_u64(struct wbuf *b, uint64_t v)
{
	v = htole64(v);
	wbuf_bytes(b, &v, 8);
}

void wbuf_set_u32(struct wbuf *b, size_t off, uint32_t v)
{
	if (b->err || off + 4 > b->len)
		return;
	v = htole32(v);
	memcpy(b->p + off, &v, 4);
}

void wbuf_hdr(struct wbuf *b, const struct wire_hdr *h)
{
	wbuf_u32(b, WIRE_MAGIC);
	wbuf_u8(b, (uint8_t)h->type);
	wbuf_u8(b, (uint8_t)h->flags);
	wbuf_u16(b, 0);
	wbuf_u64(b, h->node);
	wbuf_u64(b, h->session);
	wbuf_u64(b, h->seq);
}

void wbuf_change(struct wbuf *b, uint64_t sseq, const struct store_change *c)
{
	struct store_change w = *c;
	size_t len;
	unsigned char *d;

	w.writer = 0; /* local to the sender */
	len = store_change_len(&w);
	if (!len) {
		if (!b->err)
			b->err = -EINVAL;
		return;
	}
	wbuf_u64(b, sseq);
	wbuf_u32(b, (uint32_t)len);
	d = wbuf_room(b, len);
	if (d)
		store_change_encode_to(&w, d);
}

void wbuf_wm(struct wbuf *b, const struct wire_wm *wm)
{
	unsigned i;

	wbuf_u32(b, wm->n);
	for (i = 0; i < wm->n; i++) {
		wbuf_u64(b, wm->e[i].node);
		wbuf_u64(b, wm->e[i].seq);
	}
}

/* ---- reading ---- */

void rbuf_init(struct rbuf *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->err = 0;
}

const void *rbuf_bytes(struct rbuf *r, size_t n)
{
	const void *p;

	if (r->err || n > r->len - r->off) {
		r->err = -EPROTO;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t rbuf_u8(struct rbuf *r)
{
	const uint8_t *p = rbuf_bytes(r, 1);

	return p ? *p : 0;
}

uint16_t rbuf_u16(struct rbuf *r)
{
	const void *p = rbuf_bytes(r, 2);
	uint16_t v = 0;

	if (p)
		memcpy(&v, p, 2);
	return le16toh(v);
}

uint32_t rbuf_u32(struct rbuf *r)
{
	const void *p = rbuf_bytes(r, 4);
	uint32_t v = 0;

	if (p)
		memcpy(&v, p, 4);
	return le32toh(v);
}

uint64_t rbuf_u64(struct rbuf *r)
{
	const void *p = rbuf_bytes(r, 8);
	uint64_t v = 0;

	if (p)
		memcpy(&v, p, 8);
	return le64toh(v);
}

int rbuf_end(const struct rbuf *r)
{
	return r->err || r->off != r->len ? -EPROTO : 0;
}

int wire_hdr_decode(struct rbuf *r, struct wire_hdr *h)
{
	uint32_t magic;

	if (r->len > WIRE_MAX)
		return -EPROTO;
	magic = rbuf_u32(r);
	h->type = rbuf_u8(r);
	h->flags = rbuf_u8(r);
	if (rbuf_u16(r) != 0)
		return -EPROTO;
	h->node = rbuf_u64(r);
	h->session = rbuf_u64(r);
	h->seq = rbuf_u64(r);
	if (r->err || magic != WIRE_MAGIC || h->type < WIRE_HELLO ||
	    h->type > WIRE_TYPE_MAX || h->node == 0 ||
	    (h->flags & ~(WIRE_F_REPLY | WIRE_F_NACK)))
		return -EPROTO;
	return 0;
}

/* Watermarks: sorted by node, no node 0, no duplicates. */
int rbuf_wm(struct rbuf *r, struct wire_wm *wm)
{
	uint32_t n = rbuf_u32(r), i;

	if (r->err || n > STORE_VV_MAX)
		return -EPROTO;
	wm->n = n;
	for (i = 0; i < n; i++) {
		wm->e[i].node = rbuf_u64(r);
		wm->e[i].seq = rbuf_u64(r);
		if (wm->e[i].node == 0 ||
		    (i && wm->e[i].node <= wm->e[i - 1].node))
			return -EPROTO;
	}
	return r->err;
}

int wire_hello_decode(struct rbuf *r, struct wire_hello *h)
{
	uint8_t n = rbuf_u8(r);
	const char *name;

	if (n == 0 || n > WIRE_NAME_MAX)
		return -EPROTO;
	name = rbuf_bytes(r, n);
	if (!name || memchr(name, '\0', n))
		return -EPROTO;
	memcpy(h->name, name, n);
	h->name[n] = '\0';
	if (rbuf_wm(r, &h->wm))
		return -EPROTO;
	return rbuf_end(r);
}

int wire_change_next(struct wire_changes *c, uint64_t *sseq,
		     struct store_change *ch)
{
	uint32_t len;
	const void *p;

	*sseq = rbuf_u64(&c->r);
	len = rbuf_u32(&c->r);
	p = rbuf_bytes(&c->r, len);
	if (!p)
		return -EPROTO;
	return store_change_decode(p, len, ch) ? -EPROTO : 0;
}

int wire_changes_decode(struct rbuf *r, struct wire_changes *c)
{
	struct wire_changes scan;
	struct store_change ch;
	uint64_t sseq, prev = 0;
	uint32_t i;

	c->epoch = rbuf_u32(r);
	c->end = rbuf_u64(r);
	c->n = rbuf_u32(r);
	if (r->err || c->n == 0)
		return -EPROTO;
	c->r = *r;
	scan = *c;
	for (i = 0; i < c->n; i++) {
		if (wire_change_next(&scan, &sseq, &ch) || sseq <= prev)
			return -EPROTO;
		prev = sseq;
	}
	if (prev > c->end)
		return -EPROTO;
	if (ch.flags & STORE_CHANGE_MORE)
		return -EPROTO; /* a commit group cut in two */
	return rbuf_end(&scan.r);
}

int wire_ack_decode(struct rbuf *r, struct wire_ack *a)
{
	a->epoch = rbuf_u32(r);
	a->upto = rbuf_u64(r);
	a->pause_ms = rbuf_u64(r);
	if (r->err || a->pause_ms > 3600 * 1000 || rbuf_wm(r, &a->wm))
		return -EPROTO;
	return rbuf_end(r);
}

int wire_snap_rec_next(struct wire_snap_data *d, const char **path,
		       size_t *path_len, const void **rec, size_t *rec_len)
{
	struct store_stat st;

	*path_len = rbuf_u16(&d->r);
	*path = rbuf_bytes(&d->r, *path_len);
	*rec_len = rbuf_u32(&d->r);
	*rec = rbuf_bytes(&d->r, *rec_len);
	if (!*path || !*rec || *path_len == 0 || (*path)[0] != '/' ||
	    memchr(*path, '\0', *path_len))
		return -EPROTO;
	return store_rec_decode(*rec, *rec_len, &st, NULL, NULL, NULL) ? -EPROTO : 0;
}

int wire_snap_data_decode(struct rbuf *r, struct wire_snap_data *d)
{
	struct wire_snap_data scan;
	const char *path;
	const void *rec;
	size_t pl, rl;
	uint32_t i;

	d->snap = rbuf_u64(r);
	d->n = rbuf_u32(r);
	if (r->err)
		return -EPROTO;
	d->r = *r;
	scan = *d;
	for (i = 0; i < d->n; i++)
		if (wire_snap_rec_next(&scan, &path, &pl, &rec, &rl))
			return -EPROTO;
	return rbuf_end(&scan.r);
}

int wire_check(const void *p, size_t len, struct wire_hdr *h)
{
	struct rbuf r;
	struct wire_hello hello;
	struct wire_changes ch;
	struct wire_ack ack;
	struct wire_snap_data sd;
	struct wire_wm wm;

	rbuf_init(&r, p, len);
	if (wire_hdr_decode(&r, h))
		return -EPROTO;
	switch (h->type) {
	case WIRE_HELLO:
		return wire_hello_decode(&r, &hello);
	case WIRE_CHANGES:
		return wire_changes_decode(&r, &ch);
	case WIRE_ACK:
		return wire_ack_decode(&r, &ack);
	case WIRE_SNAP_REQ:
		return rbuf_end(&r);
	case WIRE_HEARTBEAT:
		rbuf_u64(&r);
		return rbuf_end(&r);
	case WIRE_SNAP_BEGIN:
		rbuf_u64(&r);
		if (rbuf_wm(&r, &wm))
			return -EPROTO;
		return rbuf_end(&r);
	case WIRE_SNAP_DATA:
		return wire_snap_data_decode(&r, &sd);
	case WIRE_SNAP_END:
	case WIRE_SNAP_ACK:
		rbuf_u64(&r);
		rbuf_u64(&r);
		return rbuf_end(&r);
	}
	return -EPROTO;
}
