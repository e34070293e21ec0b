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

#include "repl/lockfsm.h"

struct lockfsm *lockfsm_of(struct raft_fsm *fsm)
{
	return (struct lockfsm *)((char *)fsm - offsetof(struct lockfsm, fsm));
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
		     void **result)
{
	struct lockfsm *lf = lockfsm_of(fsm);
	const struct lt_result *res;

	lt_apply(lf->table, buf->base, buf->len, &res);
	lf->applied++;
	if (res->code == LT_MALFORMED)
		lf->malformed++;
	if (lf->hook) {
		struct lt_cmd c;
		int ok = res->code != LT_MALFORMED &&
			 lt_cmd_decode(buf->base, buf->len, &c) == 0;

		lf->hook(lf->hook_arg, ok ? &c : NULL, res);
	}
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
		lf->hook(lf->hook_arg, NULL, NULL);
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
