/*
 * snapshot.c — a whole store for a peer the binlog cannot bring up to
 * date (it joined empty, fell behind the binlog's reach, or past the
 * purge horizon), and the binlog's horizon that tells when that is.
 *
 * The horizon (DB "horizon", key: origin node, value: origin sequence)
 * is, per origin, the highest sequence whose change this store does not
 * have in its binlog: trimmed (log_trim) or received in a snapshot (rule
 * S2). Key 0 holds how many snapshots were installed (the mount drops
 * its caches when it changes).
 *
 * Installing a snapshot is a join like store_apply_remote's (rule 2 of
 * replica.c), record by record, plus one rule of its own:
 *
 *  (S1) A record we hold that the snapshot lacks, whose whole version
 *       vector the snapshot's watermarks cover, was deleted and purged
 *       at the sender (it saw everything that made our record and kept
 *       nothing): it becomes a placeholder. One the watermarks do not
 *       cover carries changes the sender never saw, and stays.
 *  (S2) What an install brings is in no binlog of ours, and never will
 *       be: the same changes arriving later from a stream change
 *       nothing, so they are not forwarded (rule 7 of replica.c), while
 *       later changes of their origins are. A peer following our binlog
 *       would skip them and its watermark would pass them. So each
 *       chunk raises the horizon as it writes, before anything later
 *       can be sent: a merge that wrote, over the entries of the
 *       record's vector beyond our watermarks; a prune that pruned,
 *       over the snapshot's watermarks beyond ours (the deletes are
 *       unknown). Not at store_snap_finish: by then a stream may have
 *       carried later changes out, and raising it for what we already
 *       had through the binlog sends every peer a needless snapshot.
 *       Seed 99 of the simulator (with resyncs) showed the hole: a
 *       parent made by mkdir -p went missing downstream while its child
 *       arrived.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/store_int.h"

/* ---- the horizon ---- */

/* Raise the horizon of origin to seq (origin 0: count one more
 * snapshot installed). An LMDB code. */
static int horizon_raise(struct store_txn *t, uint64_t origin, uint64_t seq)
{
	MDB_val k = { sizeof(origin), &origin }, v;
	uint64_t old = 0;
	int rc;

	if (!t->s->dbi_horizon)
		return 0;
	rc = mdb_get(t->txn, t->s->dbi_horizon, &k, &v);
	if (rc == 0 && v.mv_size == sizeof(old))
		memcpy(&old, v.mv_data, sizeof(old));
	else if (rc && rc != MDB_NOTFOUND)
		return rc;
	if (origin == 0)
		seq = old + 1;
	else if (seq <= old)
		return 0;
	v.mv_size = sizeof(seq);
	v.mv_data = &seq;
	return mdb_put(t->txn, t->s->dbi_horizon, &k, &v, 0);
}

int store_horizon_trimmed(struct store_txn *t, const void *entry, size_t len)
{
	const unsigned char *p = entry;

	if (len < CHANGE_HDR_LEN)
		return 0;
	return horizon_raise(t, le_get64(p + 8), le_get64(p + 16));
}

int store_horizon(struct store *s, store_vv_cb cb, void *arg)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	int rc, err = 0;

	if (!s->dbi_horizon)
		return 0;
	rc = store_rtxn_get(s, &txn);
	if (rc)
		return store_err(rc);
	rc = mdb_cursor_open(txn, s->dbi_horizon, &c);
	if (rc) {
		store_rtxn_put(s, txn);
		return store_err(rc);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !err && rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint64_t node, seq;

		memcpy(&node, k.mv_data, sizeof(node));
		memcpy(&seq, v.mv_data, sizeof(seq));
		if (node)
			err = cb(arg, node, seq);
	}
	mdb_cursor_close(c);
	store_rtxn_put(s, txn);
	return err ? err : rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

uint64_t store_resyncs(struct store *s)
{
	uint64_t key = 0, n = 0;
	MDB_val k = { sizeof(key), &key }, v;
	MDB_txn *txn;

	if (!s->dbi_horizon || store_rtxn_get(s, &txn))
		return 0;
	if (mdb_get(txn, s->dbi_horizon, &k, &v) == 0 && v.mv_size == sizeof(n))
		memcpy(&n, v.mv_data, sizeof(n));
	store_rtxn_put(s, txn);
	return n;
}

/* ---- reading a snapshot ---- */

struct store_snap {
	struct store *s;
	MDB_txn *txn;
	MDB_cursor *cur;
	uint64_t seq;
	int started, done;
};

int store_snap_open(struct store *s, struct store_snap **snapp)
{
	struct store_snap *snap = calloc(1, sizeof(*snap));
	struct meta m;
	int rc;

	if (!snap)
		return -ENOMEM;
	snap->s = s;
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &snap->txn);
	if (rc == 0)
		rc = store_meta_load(snap->txn, s->dbi_meta, &m);
	if (rc == 0)
		rc = mdb_cursor_open(snap->txn, s->dbi_rec, &snap->cur);
	if (rc) {
		if (snap->txn)
			mdb_txn_abort(snap->txn);
		free(snap);
		return store_err(rc);
	}
	snap->seq = m.log_last;
	*snapp = snap;
	return 0;
}

uint64_t store_snap_seq(const struct store_snap *snap)
{
	return snap->seq;
}

int store_snap_watermarks(struct store_snap *snap, store_vv_cb cb, void *arg)
{
	return store_watermarks_in(snap->s, snap->txn, cb, arg);
}

ssize_t store_snap_next(struct store_snap *snap, size_t max_bytes,
			store_snap_cb cb, void *arg)
{
	char path[PATH_MAX + 1];
	size_t bytes = 0;
	ssize_t n = 0;
	MDB_val k, v;
	int rc, err;

	while (!snap->done && bytes < max_bytes) {
		struct rec r;
		size_t plen;

		rc = mdb_cursor_get(snap->cur, &k, &v,
				    snap->started ? MDB_NEXT : MDB_FIRST);
		snap->started = 1;
		if (rc == MDB_NOTFOUND) {
			snap->done = 1;
			break;
		}
		if (rc)
			return store_err(rc);
		if (rec_decode(v.mv_data, v.mv_size, &r))
			return -EIO;
		if (r.st.type == STORE_PLACEHOLDER)
			continue; /* every node makes its own (rule 6) */
		plen = store_key_path(&k, path);
		err = cb(arg, path, plen, v.mv_data, v.mv_size);
		if (err)
			return err;
		bytes += plen + v.mv_size;
		n++;
	}
	return n;
}

void store_snap_close(struct store_snap **snapp)
{
	struct store_snap *snap = *snapp;

	if (!snap)
		return;
	mdb_cursor_close(snap->cur);
	mdb_txn_abort(snap->txn);
	free(snap);
	*snapp = NULL;
}

/* ---- installing one ---- */

static int snap_path(struct store *s, const char *p, size_t len, char *path)
{
	if (len == 0 || len > s->maxkey || memchr(p, '\0', len))
		return -EPROTO;
	memcpy(path, p, len);
	path[len] = '\0';
	if (store_path_check(s, path) || store_reserved(path))
		return -EPROTO;
	return 0;
}

/* Rule S2: the record `in` was merged here without a binlog entry. Its
 * changes beyond our watermarks are in no binlog of ours, and will not
 * be when they arrive from the stream (they change nothing then, and
 * what changes nothing is not forwarded, rule 7 of replica.c), while
 * later changes of the same origins will: raise the horizon over them,
 * so that a peer lacking them resyncs instead of skipping them. An LMDB
 * code. */
static int horizon_unlogged(struct store_txn *t, const struct rec *in)
{
	unsigned i;
	int rc = 0;

	for (i = 0; !rc && i < in->st.nvv; i++) {
		struct store_vv_entry e = store_vv_at(in->vv, i);
		MDB_val k = { sizeof(e.node), &e.node }, v;
		uint64_t have = 0;

		if (e.node == t->s->node_id)
			continue; /* our own are in our binlog */
		rc = mdb_get(t->txn, t->s->dbi_vv, &k, &v);
		if (rc == 0 && v.mv_size == sizeof(have))
			memcpy(&have, v.mv_data, sizeof(have));
		else if (rc && rc != MDB_NOTFOUND)
			break;
		rc = e.seq > have ? horizon_raise(t, e.node, e.seq) : 0;
	}
	return rc;
}

int store_snap_merge(struct store *s, struct store_txn *t, const char *p,
		     size_t len, const void *rec, size_t rec_len)
{
	struct store_txn *own, own_mem;
	char path[PATH_MAX + 1];
	struct rec in;
	int err, result, wrote = 0;

	if (snap_path(s, p, len, path) || rec_decode(rec, rec_len, &in) ||
	    in.st.type == STORE_PLACEHOLDER)
		return -EPROTO;
	if (in.st.size > s->opts.max_value)
		return -EFBIG;
	err = store_txn_enter(s, &t, 1, &own, &own_mem);
	if (err)
		return err;
	if ((in.st.version.hlc >> 16) >
	    (uint64_t)(store_txn_now(t) / 1000000) + s->opts.max_offset_ms) {
		store_txn_abort(&own);
		return -EAGAIN; /* rule 8: not before our clock gets there */
	}
	err = store_rec_join(t, path, &in, NULL, &result, &wrote);
	if (!err && wrote)
		err = store_err(horizon_unlogged(t, &in));
	if (!err && in.st.version.hlc > t->meta.hlc) {
		t->meta.hlc = in.st.version.hlc; /* later writes win over it */
		t->meta_dirty = 1;
	}
	if (err && !wrote) {
		store_txn_abort(&own);
		return err;
	}
	return store_txn_leave(t, own, err);
}

/* Rule S2 for a prune: the deletes that made the sender purge what we
 * just pruned are in no binlog of ours, and never will be (once our
 * watermarks take the snapshot's, they are duplicates). Which changes
 * they were we cannot know: raise the horizon to the snapshot's
 * watermarks where they pass ours. An LMDB code. */
static int horizon_beyond(struct store_txn *t, const struct store_vv_entry *wm,
			  unsigned nwm)
{
	unsigned i;
	int rc = 0;

	for (i = 0; !rc && i < nwm; i++) {
		MDB_val k = { sizeof(wm[i].node), (void *)&wm[i].node }, v;
		uint64_t have = 0;

		if (wm[i].node == 0 || wm[i].node == t->s->node_id)
			continue;
		rc = mdb_get(t->txn, t->s->dbi_vv, &k, &v);
		if (rc == 0 && v.mv_size == sizeof(have))
			memcpy(&have, v.mv_data, sizeof(have));
		else if (rc && rc != MDB_NOTFOUND)
			break;
		rc = wm[i].seq > have ? horizon_raise(t, wm[i].node, wm[i].seq) : 0;
	}
	return rc;
}

struct prune {
	const struct store_vv_entry *wm;
	unsigned nwm;
	const char *const *keep;      /* the chunk's paths, key order */
	size_t nkeep, at;
	struct store_paths out;
	char path[PATH_MAX + 1];
};

static uint64_t wm_of(const struct prune *pr, uint64_t node)
{
	unsigned i;

	for (i = 0; i < pr->nwm; i++)
		if (pr->wm[i].node == node)
			return pr->wm[i].seq;
	return 0;
}

static int covered(const struct prune *pr, const struct rec *r)
{
	unsigned i;

	if (r->st.nvv == 0)
		return 0;
	for (i = 0; i < r->st.nvv; i++) {
		struct store_vv_entry e = store_vv_at(r->vv, i);

		if (wm_of(pr, e.node) < e.seq)
			return 0;
	}
	return 1;
}

static int key_cmp(const MDB_val *a, const char *b, size_t blen)
{
	size_t n = a->mv_size < blen ? a->mv_size : blen;
	int c = memcmp(a->mv_data, b, n);

	return c ? c : (a->mv_size > blen) - (a->mv_size < blen);
}

int store_snap_prune(struct store *s, struct store_txn *t,
		     const struct store_vv_entry *wm, unsigned nwm,
		     const char *from, const char *to,
		     const char *const *keep, size_t nkeep)
{
	struct store_txn *own, own_mem;
	struct prune pr = { .wm = wm, .nwm = nwm, .keep = keep, .nkeep = nkeep };
	char key[PATH_MAX], kk[PATH_MAX], tk[PATH_MAX];
	MDB_cursor *c;
	MDB_val k, v;
	size_t i, tl;
	int rc, err;

	err = store_txn_enter(s, &t, 1, &own, &own_mem);
	if (err)
		return err;
	rc = mdb_cursor_open(t->txn, s->dbi_rec, &c);
	if (rc) {
		err = store_err(rc);
		goto out;
	}
	if (from) {
		size_t fl = store_key_of(from, strlen(from), key);

		k.mv_size = fl;
		k.mv_data = key;
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc == 0 && key_cmp(&k, key, fl) == 0)
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	} else {
		rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	}
	tl = to ? store_key_of(to, strlen(to), tk) : 0;
	for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct rec r;
		size_t kl;
		int cmp = 1;

		if (to && key_cmp(&k, tk, tl) > 0)
			break;
		/* is it one of the chunk's? both run in key order */
		while (pr.at < nkeep) {
			kl = store_key_of(keep[pr.at], strlen(keep[pr.at]), kk);
			cmp = key_cmp(&k, kk, kl);
			if (cmp <= 0)
				break;
			pr.at++;
		}
		if (pr.at < nkeep && cmp == 0)
			continue;
		if (k.mv_size == 1 && ((char *)k.mv_data)[0] == '/')
			continue; /* the root stays */
		if (rec_decode(v.mv_data, v.mv_size, &r)) {
			err = -EIO;
			break;
		}
		if (r.st.type == STORE_PLACEHOLDER || !covered(&pr, &r))
			continue;
		kl = store_key_path(&k, pr.path);
		err = store_paths_add(&pr.out, pr.path, kl);
		if (err)
			break;
	}
	mdb_cursor_close(c);
	if (!err && rc && rc != MDB_NOTFOUND)
		err = store_err(rc);
	/* rule S1, written after the walk (a write moves the pages) */
	for (i = 0; !err && i < pr.out.n; i++) {
		struct rec cur, ph;

		err = store_rec_get(t, pr.out.v[i], &cur);
		if (err)
			break;
		memset(&ph, 0, sizeof(ph));
		ph.st.type = STORE_PLACEHOLDER;
		ph.flags = REC_KIDS; /* the sweep finds out */
		err = store_rec_put(t, pr.out.v[i], &ph, &cur, NULL);
	}
	if (!err && pr.out.n)
		err = store_err(horizon_beyond(t, wm, nwm));
	if (!err && pr.out.n)
		log_msg(LOG_INFO, "%s: %zu records deleted and purged at the "
			"snapshot's sender are gone here too", s->path, pr.out.n);
	store_paths_free(&pr.out);
out:
	return store_txn_leave(t, own, err);
}

int store_snap_finish(struct store *s, struct store_txn *t,
		      const struct store_vv_entry *wm, unsigned nwm)
{
	struct store_txn *own, own_mem;
	unsigned i;
	int err;

	err = store_txn_enter(s, &t, 1, &own, &own_mem);
	if (err)
		return err;
	for (i = 0; !err && i < nwm; i++) {
		MDB_val k = { sizeof(wm[i].node), (void *)&wm[i].node }, v;
		uint64_t old = 0;

		if (wm[i].node == 0)
			continue;
		uint64_t now_ms = (uint64_t)(store_txn_now(t) / 1000000);

		if (wm[i].seq > t->meta.hlc &&
		    (wm[i].seq >> 16) <= now_ms + s->opts.max_offset_ms) {
			t->meta.hlc = wm[i].seq;
			t->meta_dirty = 1;
		}
		if (wm[i].node == s->node_id) {
			/* rule 9: our own changes up to there came back in it */
			if (t->meta.rec_hi > t->meta.rec_lo &&
			    wm[i].seq > t->meta.rec_lo) {
				t->meta.rec_lo = wm[i].seq;
				if (t->meta.rec_lo >= t->meta.rec_hi) {
					log_msg(LOG_NOTICE, "%s: our lost changes are "
						"back", s->path);
					t->meta.run_base = t->meta.rec_hi;
					t->meta.rec_lo = t->meta.rec_hi = 0;
				}
				t->meta_dirty = 1;
			}
			continue;
		}
		if (mdb_get(t->txn, s->dbi_vv, &k, &v) == 0 && v.mv_size == 8)
			memcpy(&old, v.mv_data, 8);
		if (wm[i].seq > old) {
			uint64_t seq = wm[i].seq;

			v.mv_size = sizeof(seq);
			v.mv_data = &seq;
			err = store_err(mdb_put(t->txn, s->dbi_vv, &k, &v, 0));
		}
	}
	if (!err)
		err = store_err(horizon_raise(t, 0, 0));
	return store_txn_leave(t, own, err);
}
