/*
 * lockfsm.c — struct raft_fsm over the lock table (the manual is
 * lockfsm.h; the table's is locktable.h).
 *
 * Nothing here decides anything: apply, snapshot and restore translate
 * between libraft's buffers and the table. Counters are for tests and
 * stats only and are not part of the replicated state.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/le.h"
#include "repl/lockfsm.h"

struct lockfsm *lockfsm_of(struct raft_fsm *fsm)
{
	return (struct lockfsm *)((char *)fsm - offsetof(struct lockfsm, fsm));
}

/* Apply one command of an entry and tell the hook. */
static const struct lt_result *apply_one(struct lockfsm *lf, const void *cmd,
					 size_t len, uint64_t origin)
{
	const struct lt_result *res;

	lt_apply(lf->table, cmd, len, &res);
	if (res->code == LT_MALFORMED)
		lf->malformed++;
	if (lf->hook) {
		struct lt_cmd c;
		int ok = res->code != LT_MALFORMED &&
			 lt_cmd_decode(cmd, len, &c) == 0;

		lf->hook(lf->hook_arg, ok ? &c : NULL, res, origin);
	}
	return res;
}

static const struct lt_result *apply_batch(struct lockfsm *lf,
					   const unsigned char *p, size_t len)
{
	const struct lt_result *res = NULL;
	uint32_t i, n = le_get32(p + 4);
	size_t off = LOCKFSM_BATCH_HDR;

	for (i = 0; i < n; i++) {
		uint64_t origin;
		uint32_t clen;

		if (len - off < LOCKFSM_BATCH_SUB)
			break;
		origin = le_get64(p + off);
		clen = le_get32(p + off + 8);
		if (le_get32(p + off + 12) || clen == 0 || clen % 8 ||
		    clen > len - off - LOCKFSM_BATCH_SUB)
			break;
		res = apply_one(lf, p + off + LOCKFSM_BATCH_SUB, clen, origin);
		off += LOCKFSM_BATCH_SUB + clen;
	}
	if (i < n || off != len)
		res = apply_one(lf, NULL, 0, 0); /* malformed: the rest */
	return res;
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
		     void **result)
{
	struct lockfsm *lf = lockfsm_of(fsm);
	const struct lt_result *res;

	if (buf->len >= LOCKFSM_BATCH_HDR &&
	    le_get32(buf->base) == LOCKFSM_BATCH_MAGIC)
		res = apply_batch(lf, buf->base, buf->len);
	else
		res = apply_one(lf, buf->base, buf->len, 0);
	lf->applied++;
	*result = (void *)res;
	return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
			unsigned *n_bufs)
{
	struct lockfsm *lf = lockfsm_of(fsm);
	struct raft_buffer *b;
	void *img;
	size_t len;

	if (lt_encode(lf->table, &img, &len) < 0)
		return RAFT_NOMEM;
	b = raft_malloc(sizeof(*b));
	if (!b) {
		free(img);
		return RAFT_NOMEM;
	}
	/* raft frees what it owns with raft_free: copy into its heap */
	b->base = raft_malloc(len);
	if (!b->base) {
		raft_free(b);
		free(img);
		return RAFT_NOMEM;
	}
	memcpy(b->base, img, len);
	b->len = len;
	free(img);
	*bufs = b;
	*n_bufs = 1;
	lf->snapshots++;
	return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct lockfsm *lf = lockfsm_of(fsm);
	int err = lt_restore(lf->table, buf->base, buf->len);

	if (err == -ENOMEM)
		return RAFT_NOMEM;
	if (err < 0)
		return RAFT_MALFORMED;
	raft_free(buf->base);
	lf->restores++;
	if (lf->hook)
		lf->hook(lf->hook_arg, NULL, NULL, 0);
	return 0;
}

void lockfsm_set_hook(struct lockfsm *lf, lockfsm_hook_fn fn, void *arg)
{
	lf->hook = fn;
	lf->hook_arg = arg;
}

int lockfsm_init(struct lockfsm *lf, const struct lt_limits *limits)
{
	memset(lf, 0, sizeof(*lf));
	lf->table = lt_new(limits);
	if (!lf->table)
		return -ENOMEM;
	lf->fsm.version = 1;
	lf->fsm.data = lf;
	lf->fsm.apply = fsm_apply;
	lf->fsm.snapshot = fsm_snapshot;
	lf->fsm.restore = fsm_restore;
	return 0;
}

void lockfsm_close(struct lockfsm *lf)
{
	lt_free(&lf->table);
}

int lockfsm_propose_buf(const struct lt_cmd *c, struct raft_buffer *buf)
{
	size_t len = lt_cmd_size(c);

	if (!len)
		return -EINVAL;
	buf->base = raft_malloc(len);
	if (!buf->base)
		return -ENOMEM;
	buf->len = len;
	if (lt_cmd_encode(c, buf->base, len) < 0) {
		raft_free(buf->base);
		buf->base = NULL;
		return -EINVAL;
	}
	return 0;
}

int lockfsm_batch_add(struct lockfsm_batch *b, uint64_t origin,
		      const void *cmd, size_t len)
{
	size_t need = (b->n ? b->len : LOCKFSM_BATCH_HDR) +
		      LOCKFSM_BATCH_SUB + len;

	if (len == 0 || len % 8 || len > UINT32_MAX)
		return -EINVAL;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		void *nb;

		while (cap < need)
			cap *= 2;
		nb = raft_realloc(b->buf, cap);
		if (!nb)
			return -ENOMEM;
		b->buf = nb;
		b->cap = cap;
	}
	if (!b->n) {
		le_put32(b->buf, LOCKFSM_BATCH_MAGIC);
		b->len = LOCKFSM_BATCH_HDR;
	}
	le_put64(b->buf + b->len, origin);
	le_put32(b->buf + b->len + 8, (uint32_t)len);
	le_put32(b->buf + b->len + 12, 0);
	memcpy(b->buf + b->len + LOCKFSM_BATCH_SUB, cmd, len);
	b->len = need;
	le_put32(b->buf + 4, ++b->n);
	return 0;
}

int lockfsm_batch_take(struct lockfsm_batch *b, struct raft_buffer *buf)
{
	if (!b->n)
		return -ENOENT;
	buf->base = b->buf;
	buf->len = b->len;
	memset(b, 0, sizeof(*b));
	return 0;
}

void lockfsm_batch_free(struct lockfsm_batch *b)
{
	raft_free(b->buf);
	memset(b, 0, sizeof(*b));
}
