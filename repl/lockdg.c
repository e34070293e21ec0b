/*
 * lockdg.c — the lock service's datagrams (lockdg.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/le.h"
#include "repl/lockdg.h"

#define PAD8(n) (((n) + 7) & ~(size_t)7)

int lockdg_frame_add(struct lockdg_frames *f, const void *a, size_t alen,
		     const void *b, size_t blen)
{
	size_t mlen = alen + blen, need = f->len + 8 + PAD8(mlen);

	if (need > f->cap) {
		size_t cap = f->cap ? f->cap : 1024;
		unsigned char *np;

		while (cap < need)
			cap *= 2;
		np = realloc(f->p, cap);
		if (!np)
			return -ENOMEM;
		f->p = np;
		f->cap = cap;
	}
	le_put32(f->p + f->len, (uint32_t)mlen);
	le_put32(f->p + f->len + 4, 0);
	if (alen)
		memcpy(f->p + f->len + 8, a, alen);
	if (blen)
		memcpy(f->p + f->len + 8 + alen, b, blen);
	memset(f->p + f->len + 8 + mlen, 0, need - f->len - 8 - mlen);
	f->len = need;
	f->n++;
	return 0;
}

int lockdg_frame_next(const unsigned char *p, size_t len, size_t *off,
		      const unsigned char **msg, size_t *mlen)
{
	size_t m, i;

	if (*off > len || len - *off < 8 || le_get32(p + *off + 4))
		return -EPROTO;
	m = le_get32(p + *off);
	if (m > len - *off - 8 || PAD8(m) > len - *off - 8)
		return -EPROTO;
	for (i = m; i < PAD8(m); i++)
		if (p[*off + 8 + i])
			return -EPROTO;
	*msg = p + *off + 8;
	*mlen = m;
	*off += 8 + PAD8(m);
	return 0;
}

/* n frames from offset 8 that fill p[0..len) exactly: 0 or -EPROTO. */
static int frames_fill(const unsigned char *p, size_t len, uint32_t n)
{
	const unsigned char *msg;
	size_t off = 8, mlen;
	uint32_t i;

	for (i = 0; i < n; i++)
		if (lockdg_frame_next(p, len, &off, &msg, &mlen) < 0)
			return -EPROTO;
	return off == len ? 0 : -EPROTO;
}

int lockdg_multi_check(const unsigned char *p, size_t len)
{
	uint32_t n;

	if (len < 8 || le_get32(p) != LOCKDG_MULTI)
		return -EPROTO;
	n = le_get32(p + 4);
	/* every frame takes 8 bytes at least: no loop over a made-up n */
	if (n > (len - 8) / 8 || n > INT32_MAX || frames_fill(p, len, n) < 0)
		return -EPROTO;
	return (int)n;
}

static size_t put_vv(unsigned char *p, const struct lt_vv *vv)
{
	uint32_t i;

	for (i = 0; i < vv->n; i++) {
		le_put64(p + 16 * i, vv->e[i].node);
		le_put64(p + 8 + 16 * i, vv->e[i].seq);
	}
	return 16 * (size_t)vv->n;
}

/* The n entries at p[off..len), which they must fill: 0 or -EPROTO. */
static int get_vv(const unsigned char *p, size_t len, size_t off, uint32_t n,
		  struct lt_vv *vv)
{
	uint32_t i;

	if (n > LT_VV_MAX || len != off + 16 * (size_t)n)
		return -EPROTO;
	vv->n = n;
	for (i = 0; i < n; i++) {
		vv->e[i].node = le_get64(p + off + 16 * i);
		vv->e[i].seq = le_get64(p + off + 8 + 16 * i);
		if (!vv->e[i].seq || (i && vv->e[i].node <= vv->e[i - 1].node))
			return -EPROTO;
	}
	return 0;
}

size_t lockdg_result_encode(unsigned char *buf, const struct lockdg_result *r)
{
	le_put32(buf, LOCKDG_RESULT);
	le_put32(buf + 4, r->code);
	le_put64(buf + 8, r->session);
	le_put64(buf + 16, r->seq);
	le_put64(buf + 24, r->nonce);
	le_put64(buf + 32, r->rsession);
	le_put64(buf + 40, r->token);
	le_put32(buf + 48, r->dup != 0);
	le_put32(buf + 52, r->alive != 0);
	le_put32(buf + 56, r->vv.n);
	le_put32(buf + 60, 0);
	le_put64(buf + 64, r->index);
	return 72 + put_vv(buf + 72, &r->vv);
}

size_t lockdg_grant_encode(unsigned char *buf, const struct lt_grant *g,
			   uint64_t index)
{
	le_put32(buf, LOCKDG_GRANT);
	le_put32(buf + 4, g->kind);
	le_put64(buf + 8, g->session);
	le_put64(buf + 16, g->owner);
	le_put64(buf + 24, g->seq);
	le_put64(buf + 32, g->token);
	le_put32(buf + 40, g->mode);
	le_put32(buf + 44, g->vv.n);
	le_put64(buf + 48, index);
	return 56 + put_vv(buf + 56, &g->vv);
}

void lockdg_propose_header(unsigned char hdr[8], uint32_t n)
{
	le_put32(hdr, LOCKDG_PROPOSE);
	le_put32(hdr + 4, n);
}

static int decode_propose(const unsigned char *p, size_t len,
			  struct lockdg_msg *m)
{
	const unsigned char *cmd;
	size_t off = 8, clen;
	struct lt_cmd c;
	uint32_t i, n = le_get32(p + 4);

	if (n == 0 || n > (len - 8) / 8)
		return -EPROTO;
	for (i = 0; i < n; i++)
		if (lockdg_frame_next(p, len, &off, &cmd, &clen) < 0 ||
		    lt_cmd_decode(cmd, clen, i ? &c : &m->first) < 0)
			return -EPROTO;
	if (off != len)
		return -EPROTO;
	m->unit = p + 8;
	m->unit_len = len - 8;
	m->ncmds = n;
	return 0;
}

static int decode_result(const unsigned char *p, size_t len,
			 struct lockdg_result *r)
{
	uint32_t dup, alive, code;

	if (len < 72 || le_get32(p + 60))
		return -EPROTO;
	code = le_get32(p + 4);
	dup = le_get32(p + 48);
	alive = le_get32(p + 52);
	if (code > LT_GAP || dup > 1 || alive > 1)
		return -EPROTO;
	r->code = (enum lt_code)code;
	r->session = le_get64(p + 8);
	r->seq = le_get64(p + 16);
	r->nonce = le_get64(p + 24);
	r->rsession = le_get64(p + 32);
	r->token = le_get64(p + 40);
	r->dup = (int)dup;
	r->alive = (int)alive;
	r->index = le_get64(p + 64);
	return get_vv(p, len, 72, le_get32(p + 56), &r->vv);
}

static int decode_grant(const unsigned char *p, size_t len,
			struct lockdg_msg *m)
{
	struct lt_grant *g = &m->grant;
	uint32_t kind, mode;

	if (len < 56)
		return -EPROTO;
	kind = le_get32(p + 4);
	mode = le_get32(p + 40);
	if (kind > LT_POSIX || (mode != LT_SH && mode != LT_EX))
		return -EPROTO;
	g->path = NULL;
	g->kind = (enum lt_kind)kind;
	g->mode = (enum lt_mode)mode;
	g->session = le_get64(p + 8);
	g->owner = le_get64(p + 16);
	g->seq = le_get64(p + 24);
	g->token = le_get64(p + 32);
	m->index = le_get64(p + 48);
	return get_vv(p, len, 56, le_get32(p + 44), &g->vv);
}

int lockdg_decode(const unsigned char *p, size_t len, struct lockdg_msg *m)
{
	if (len < 8 || len % 8)
		return -EPROTO;
	switch (le_get32(p)) {
	case LOCKDG_PROPOSE:
		m->type = LOCKDG_PROPOSE;
		return decode_propose(p, len, m);
	case LOCKDG_RESULT:
		m->type = LOCKDG_RESULT;
		return decode_result(p, len, &m->result);
	case LOCKDG_GRANT:
		m->type = LOCKDG_GRANT;
		return decode_grant(p, len, m);
	default:
		return -EPROTO;
	}
}
