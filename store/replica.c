/*
 * replica.c — what the replicator and other binlog consumers use:
 * store_apply_remote, reading and waiting on the binlog, watermarks.
 *
 * apply_remote's rules (SPEC §5):
 *  (1) a change at or below the store's watermark for its origin is a
 *      duplicate (each origin's changes arrive in origin order);
 *  (2) otherwise the higher version (hlc, then node) wins, the same way
 *      on every node whatever the arrival order; a tombstone is a
 *      version like any other, so an older write never undoes a delete;
 *  (3) version vectors only classify the outcome: "they saw ours"
 *      (applied), "we saw theirs" (superseded), or neither (conflict);
 *  (4) an applied change keeps its origin in the local binlog, so it is
 *      forwarded; a live record under a missing parent revives the
 *      parent as a directory (local bookkeeping, version 0), and a
 *      directory delete that meets live children keeps the directory.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "store/store_int.h"


static int vv_get(struct store_txn *t, uint64_t node, uint64_t *seq)
{
	MDB_val k = { sizeof(node), &node }, v;
	int rc;

	if (node == t->s->node_id) {
		*seq = t->meta.local_seq;
		return 0;
	}
	rc = mdb_get(t->txn, t->s->dbi_vv, &k, &v);
	if (rc == MDB_NOTFOUND) {
		*seq = 0;
		return 0;
	}
	if (rc)
		return store_err(rc);
	if (v.mv_size != sizeof(*seq))
		return -EIO;
	memcpy(seq, v.mv_data, sizeof(*seq));
	return 0;
}

static int vv_set(struct store_txn *t, uint64_t node, uint64_t seq)
{
	MDB_val k = { sizeof(node), &node }, v = { sizeof(seq), &seq };

	return store_err(mdb_put(t->txn, t->s->dbi_vv, &k, &v, 0));
}

static int vcmp(const struct store_version *a, const struct store_version *b)
{
	if (a->hlc != b->hlc)
		return a->hlc < b->hlc ? -1 : 1;
	if (a->node != b->node)
		return a->node < b->node ? -1 : 1;
	return 0;
}

/* Merge two vectors (entry-wise max) into out (malloc'd). */
static int vv_merge(const unsigned char *a, unsigned na,
		    const unsigned char *b, unsigned nb, unsigned char **out,
		    unsigned *nout)
{
	unsigned char *m = malloc((size_t)(na + nb + 1) * REC_VV_LEN);
	unsigned n = 0;

	if (!m)
		return -ENOMEM;
	memcpy(m, a, (size_t)na * REC_VV_LEN);
	n = na;
	for (unsigned i = 0; i < nb; i++) {
		struct store_vv_entry e = store_vv_at(b, i);
		unsigned j;

		for (j = 0; j < n; j++) {
			struct store_vv_entry f = store_vv_at(m, j);

			if (f.node == e.node) {
				if (e.seq > f.seq)
					memcpy(m + j * REC_VV_LEN,
					       b + i * REC_VV_LEN, REC_VV_LEN);
				break;
			}
		}
		if (j == n)
			memcpy(m + REC_VV_LEN * n++, b + i * REC_VV_LEN,
			       REC_VV_LEN);
	}
	*out = m;
	*nout = n;
	return 0;
}

/* A peer's live record arrived under a missing or dead parent: revive the
 * parents as directories (local bookkeeping, version 0 so that any real
 * change to them wins; same result on every node). */
static int revive_parents(struct store_txn *t, const char *path,
			  const struct store_stat *child)
{
	char buf[PATH_MAX];
	const char *dir = store_parent_of(path, buf);
	struct store_stat st;
	struct rec r;
	int err;

	if (strcmp(dir, "/") == 0)
		return 0;
	err = store_rec_get(t, dir, &r);
	if (err == 0 && store_visible(&r.st, store_now_ns()))
		return 0;
	if (err && err != -ENOENT)
		return err;
	err = revive_parents(t, dir, child);
	if (err)
		return err;
	memset(&st, 0, sizeof(st));
	st.type = STORE_DIR;
	st.mode = S_IFDIR | (err == 0 && r.st.mode ? r.st.mode & 07777 : 0755);
	st.uid = child->uid;
	st.gid = child->gid;
	st.mtime_ns = st.ctime_ns = child->mtime_ns;
	return store_rec_write(t, dir, &st, NULL, NULL, NULL, 0, 0);
}

int store_apply_remote(struct store *s, struct store_txn *t,
		       const struct store_change *c)
{
	struct store_txn *own, own_mem;
	char path[PATH_MAX + 1];
	struct rec in, cur;
	unsigned char *vv = NULL;
	unsigned nvv;
	uint64_t wm = 0;
	int err, have, result = STORE_DUPLICATE, cmp;

	if (c->path_len == 0 || c->path_len > s->maxkey ||
	    memchr(c->path, '\0', c->path_len))
		return -EPROTO;
	memcpy(path, c->path, c->path_len);
	path[c->path_len] = '\0';
	if (store_path_check(s, path) || store_reserved(path) ||
	    strcmp(path, "/") == 0)
		return -EPROTO;
	if (rec_decode(c->rec, c->rec_len, &in))
		return -EPROTO;
	if (in.st.version.node != c->origin_node ||
	    in.st.size > s->opts.max_value)
		return -EPROTO;
	err = store_txn_enter(s, &t, 1, &own, &own_mem);
	if (err)
		return err;
	err = vv_get(t, c->origin_node, &wm);
	if (err)
		goto out;
	if (c->origin_seq <= wm) {
		result = STORE_DUPLICATE;
		goto out;
	}
	if (c->origin_node != s->node_id) {
		err = vv_set(t, c->origin_node, c->origin_seq);
		if (err)
			goto out;
	}
	if (in.st.version.hlc > t->meta.hlc) {
		t->meta.hlc = in.st.version.hlc;
		t->meta_dirty = 1;
	}
	err = store_rec_get(t, path, &cur);
	if (err && err != -ENOENT)
		goto out;
	have = err == 0;
	err = 0;
	if (!have) {
		result = STORE_APPLIED;
		cmp = 1;
	} else {
		int they_saw = vv_lookup(in.vv, in.st.nvv, cur.st.version.node) >=
			       cur.st.origin_seq;
		int we_saw = vv_lookup(cur.vv, cur.st.nvv, c->origin_node) >=
			     c->origin_seq;

		cmp = vcmp(&in.st.version, &cur.st.version);
		if (cmp == 0)
			result = STORE_DUPLICATE;
		else if (they_saw && cmp > 0)
			result = STORE_APPLIED;
		else if (we_saw && cmp < 0)
			result = STORE_SUPERSEDED;
		else
			result = cmp > 0 ? STORE_CONFLICT_WON :
					   STORE_CONFLICT_LOST;
	}
	if (cmp <= 0)
		goto out;
	if (have) {
		err = vv_merge(in.vv, in.st.nvv, cur.vv, cur.st.nvv, &vv, &nvv);
	} else {
		nvv = in.st.nvv;
		vv = malloc((size_t)nvv * REC_VV_LEN + 1);
		if (vv)
			memcpy(vv, in.vv, (size_t)nvv * REC_VV_LEN);
		else
			err = -ENOMEM;
	}
	if (err)
		goto out;
	if (in.st.type == STORE_TOMBSTONE && have &&
	    cur.st.type == STORE_DIR && store_has_children(t, path) > 0) {
		/* A directory deleted on one side while the other created
		 * something in it: the live child keeps it (every node ends
		 * with the directory and the child). */
		result = STORE_CONFLICT_LOST;
		goto out;
	}
	if (in.st.type != STORE_TOMBSTONE) {
		err = revive_parents(t, path, &in.st);
		if (err)
			goto out;
	}
	{
		struct store_stat st = in.st;

		st.nvv = nvv;
		err = store_rec_write(t, path, &st, vv, in.xattrs, in.value,
				c->origin_node, c->origin_seq);
	}
out:
	free(vv);
	err = store_txn_leave(t, own, err);
	return err ? err : result;
}

/* ---- binlog ---- */

ssize_t store_binlog_read(struct store *s, uint64_t after, size_t max,
			  store_change_cb cb, void *arg)
{
	MDB_txn *txn;
	MDB_cursor *c;
	struct meta m;
	MDB_val k, v;
	uint64_t from = after + 1;
	ssize_t count = 0;
	int rc, err = 0;

	rc = store_rtxn_get(s, &txn);
	if (rc)
		return store_err(rc);
	rc = store_meta_load(txn, s->dbi_meta, &m);
	if (rc) {
		err = store_err(rc);
		goto out;
	}
	if (m.log_first && from < m.log_first && after < m.log_last) {
		err = -ERANGE;
		goto out;
	}
	rc = mdb_cursor_open(txn, s->dbi_log, &c);
	if (rc) {
		err = store_err(rc);
		goto out;
	}
	k.mv_size = sizeof(from);
	k.mv_data = &from;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct store_change ch;

		if (max && (size_t)count >= max)
			break;
		if (store_change_decode(v.mv_data, v.mv_size, &ch)) {
			log_msg(LOG_ERROR, "%s: corrupt binlog entry", s->path);
			err = -EIO;
			break;
		}
		memcpy(&ch.seq, k.mv_data, sizeof(ch.seq));
		count++;
		err = cb(arg, &ch);
		if (err)
			break;
	}
	mdb_cursor_close(c);
out:
	store_rtxn_put(s, txn);
	return err ? err : count;
}

uint64_t store_last_seq(struct store *s)
{
	MDB_txn *txn;
	struct meta m;
	uint64_t seq = notify_last_seq(s->notify);

	if (store_rtxn_get(s, &txn) == 0) {
		if (store_meta_load(txn, s->dbi_meta, &m) == 0)
			seq = m.log_last;
		store_rtxn_put(s, txn);
	}
	return seq;
}

int store_wait(struct store *s, uint64_t after, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? 0 :
				store_now_ns() + (int64_t)timeout_ms * 1000000;
	int ret = 0;

	for (;;) {
		uint32_t gen = notify_begin(s->notify);
		int left = -1, err;

		if (store_last_seq(s) > after) {
			ret = 1;
			break;
		}
		if (timeout_ms >= 0) {
			int64_t ns = deadline - store_now_ns();

			if (ns <= 0)
				break;
			left = (int)((ns + 999999) / 1000000);
		}
		err = notify_wait(s->notify, gen, left);
		notify_end(s->notify);
		if (err == -EINTR)
			return -EINTR;
		continue;
	}
	notify_end(s->notify);
	return ret;
}


int store_watermarks(struct store *s, store_vv_cb cb, void *arg)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	struct meta m;
	int rc, err = 0;

	rc = store_rtxn_get(s, &txn);
	if (rc)
		return store_err(rc);
	rc = store_meta_load(txn, s->dbi_meta, &m);
	if (rc == 0)
		rc = mdb_cursor_open(txn, s->dbi_vv, &c);
	if (rc) {
		store_rtxn_put(s, txn);
		return store_err(rc);
	}
	err = cb(arg, s->node_id, m.local_seq);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !err && rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint64_t node, seq;

		memcpy(&node, k.mv_data, sizeof(node));
		memcpy(&seq, v.mv_data, sizeof(seq));
		if (node != s->node_id)
			err = cb(arg, node, seq);
	}
	mdb_cursor_close(c);
	store_rtxn_put(s, txn);
	return err;
}
