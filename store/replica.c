/*
 * replica.c — what the replicator and other binlog consumers use:
 * store_apply_remote, acknowledgements, reading and waiting on the
 * binlog, watermarks.
 *
 * The rules every node follows, so that the visible tree is a function
 * of the set of changes a node has applied (SPEC §5):
 *
 *  (1) A record is a set of fields, each with its own version (hlc,
 *      node): content (type and value), owner (mode, uid, gid), times
 *      (mtime, atime), life (TTL, deadline) and one per xattr name. A
 *      local change gives the fields it changes one new version, higher
 *      than any the store has seen (ns.c lists which op sets which).
 *  (2) Applying a peer's record merges it field by field: each field
 *      keeps the higher version; ctime keeps the later time; version
 *      vectors take the entry-wise maximum. This merge is commutative,
 *      associative and idempotent, so any order, any repetition and any
 *      path through the mesh give the same record.
 *  (3) Deletes are content versions too (tombstones): an older write
 *      never undoes a delete, a newer one wins over it. Removed xattrs
 *      likewise stay as versioned entries.
 *  (4) Nothing is refused or repaired by local judgement: a directory
 *      delete that meets live children is applied like any other, and
 *      no record is ever written with version 0 except placeholders.
 *  (5) Visibility is derived from the records at read time, with the
 *      same clock on every node: a record whose content is live shows
 *      as itself; a record whose content is dead (deleted, expired, a
 *      placeholder) shows as a directory while anything under it is
 *      live, else not at all; a live non-directory with something live
 *      under it shows as a directory (the directory wins, so that no
 *      live record is ever hidden). A derived directory has the owner
 *      field's permission bits (0755 if none; searchable wherever they
 *      are readable), its xattrs and its TTL. REC_KIDS (store_int.h)
 *      marks the records for which "anything live under it" must be
 *      looked up; for all others the answer is known to be no.
 *  (6) A change arriving under a path with no record gets placeholder
 *      parents (type PLACEHOLDER, every version 0, no binlog entry):
 *      every record's parent has a record (store_check verifies it), and
 *      a placeholder carries nothing that could differ between nodes.
 *      One that gets a field (a chmod or xattr of such a directory,
 *      made here or merged from a peer) is a tombstone of no content
 *      from then on (store_rec_unplace). The sweep removes placeholders
 *      with nothing under them.
 *  (7) An applied change is appended to the binlog exactly as its
 *      origin made it (origin, sequence, record), so that forwarding
 *      repeats the origin's change and never our merged state; changes
 *      that change nothing here are not forwarded.
 *  (8) Clocks: a change stamped more than max_offset_ms ahead of our
 *      clock is held back (STORE_HELD), never applied early and never
 *      skipped; so a peer can push our clock at most max_offset ahead
 *      of the wall clock, and the clock never wraps.
 *  (9) Sequences: a node's origin sequence is its hybrid clock value of
 *      the change, so it only grows and a store restored from an older
 *      copy does not reuse numbers (its clock has moved on). A peer that
 *      reports holding a sequence of ours beyond the start of our
 *      current run but before our first change of that run proves that
 *      changes were lost here: the store takes them back (own changes
 *      in (rec_lo, rec_hi] are applied, not dropped as duplicates) and
 *      reports rec_lo as its own watermark until they are in.
 * (10) Purges: a dead record goes only once the grace has passed since
 *      this node received the delete (or since the deadline), every
 *      known peer acknowledged everything the record has seen, and this
 *      node has applied all of that itself. A change
 *      older than grace - max_offset is refused (STORE_TOO_OLD): it could
 *      otherwise bring back what a purged tombstone had deleted.
 * (11) Watermarks never move past a change that was not applied: a
 *      refused change leaves its origin's stream where it was.
 */
#include <errno.h>
#include <inttypes.h>
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

/* Set REC_KIDS on the stored record at `path` if it is not a directory
 * and lacks it: something now has a key under it (store_int.h). */
int store_mark_kids(struct store_txn *t, const char *path)
{
	struct rec r;
	int err = store_rec_get(t, path, &r);

	if (err == -ENOENT || strcmp(path, "/") == 0)
		return 0;
	if (err)
		return err;
	if (r.st.type == STORE_DIR || r.flags & REC_KIDS)
		return 0;
	r.flags |= REC_KIDS;
	return store_rec_put(t, path, &r, &r, NULL);
}

/* Rule 6: give every missing ancestor of path a placeholder, top down,
 * without recursion (a peer chooses the depth). */
int store_ensure_parents(struct store_txn *t, const char *path)
{
	char buf[PATH_MAX + 1];
	size_t top, len = strlen(path);
	struct rec r;
	int err;

	memcpy(buf, path, len + 1);
	/* find the deepest ancestor that has a record */
	for (top = len; top > 0;) {
		while (top > 0 && buf[top] != '/')
			top--;
		if (top == 0)
			break;
		buf[top] = '\0';
		err = store_rec_get(t, buf, &r);
		buf[top] = '/';
		if (err == 0)
			break;
		if (err != -ENOENT)
			return err;
		top--;
	}
	/* buf[0..top) exists ("/" when top is 0); create the rest */
	for (size_t at = top + 1; at < len; at++) {
		struct rec ph;

		if (buf[at] != '/')
			continue;
		buf[at] = '\0';
		memset(&ph, 0, sizeof(ph));
		ph.st.type = STORE_PLACEHOLDER;
		ph.flags = REC_KIDS; /* made for what goes under it */
		err = store_rec_put(t, buf, &ph, NULL, NULL);
		if (!err) {
			char pb[PATH_MAX];

			err = store_mark_kids(t, store_parent_of(buf, pb));
		}
		buf[at] = '/';
		if (err)
			return err;
	}
	return 0;
}

/* Rule 2 for xattrs: merge two sorted runs by name, keeping the higher
 * version of each. *changed is set when `in` contributed anything. */
static size_t xattr_merge(const struct rec *cur, const struct rec *in,
			  unsigned char *out, int *changed)
{
	size_t i = 0, j = 0, n = 0;

	while (i < cur->st.xattr_len || j < in->st.xattr_len) {
		struct xattr_ent a, b;
		size_t al = 0, bl = 0;
		int c;

		if (i < cur->st.xattr_len)
			al = xattr_at(cur->xattrs, i, &a);
		if (j < in->st.xattr_len)
			bl = xattr_at(in->xattrs, j, &b);
		c = !al ? 1 : !bl ? -1 :
			xattr_name_cmp(a.name, a.name_len, b.name, b.name_len);
		if (c < 0 || (c == 0 && vcmp(&b.ver, &a.ver) <= 0)) {
			/* ours (on a tie of names ours stands) */
			memcpy(out + n, cur->xattrs + i, al);
			n += al;
			i += al;
			if (c == 0)
				j += bl;
		} else {
			/* theirs (on a tie of names theirs is newer) */
			memcpy(out + n, in->xattrs + j, bl);
			n += bl;
			j += bl;
			*changed = 1;
			if (c == 0)
				i += al;
		}
	}
	return n;
}

/* Did the record `r` see version v (its vector covers it)? */
static int saw(const struct rec *r, const struct store_version *v)
{
	return v->node == 0 || vv_lookup(r->vv, r->st.nvv, v->node) >= v->hlc;
}

/* Check what a peer sent before touching the store. */
static int change_check(struct store *s, const struct store_change *c,
			char *path, struct rec *in)
{
	if (c->path_len == 0 || c->path_len > s->maxkey ||
	    memchr(c->path, '\0', c->path_len))
		return -EPROTO;
	memcpy(path, c->path, c->path_len);
	path[c->path_len] = '\0';
	if (store_path_check(s, path) || store_reserved(path) ||
	    strcmp(path, "/") == 0)
		return -EPROTO;
	if (rec_decode(c->rec, c->rec_len, in))
		return -EPROTO;
	/* the change is its origin's: its newest field is (origin, seq),
	 * and its vector holds exactly that entry for the origin */
	if (c->origin_node == 0 || in->st.type == STORE_PLACEHOLDER ||
	    in->st.version.node != c->origin_node ||
	    in->st.version.hlc != c->origin_seq ||
	    vv_lookup(in->vv, in->st.nvv, c->origin_node) != c->origin_seq)
		return -EPROTO;
	if (in->st.size > s->opts.max_value)
		return -EFBIG;
	return 0;
}

/* Rule 2: join the record `in` into the one stored at path, and write
 * the result if it changed anything, logging `c` (NULL: a snapshot's
 * record, not logged). *result gets the outcome (store.h's enum);
 * *wrote is set once anything may have been written. */
int store_rec_join(struct store_txn *t, const char *path, const struct rec *in_,
		   const struct store_change *c, int *result, int *wrote)
{
	struct store *s = t->s;
	struct rec in = *in_, cur, nr;
	unsigned char *buf = NULL;
	int err, have, changed = 0;

	err = store_rec_get(t, path, &cur);
	if (err && err != -ENOENT)
		goto out;
	have = err == 0;
	err = 0;
	buf = malloc(REC_VV_LEN * STORE_VV_MAX +
		     (have ? cur.st.xattr_len : 0) + in.st.xattr_len + 1);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	if (!have) {
		nr = in;
		nr.flags = 0;
		nr.dead_ns = in.st.type == STORE_TOMBSTONE ?
				     store_txn_now(t) : 0;
		changed = 1;
		*result = STORE_APPLIED;
	} else {
		unsigned nvv;
		int cw;

		/* rule 2, field by field */
		nr = cur;
		nr.derived = 0;
		if (vcmp(&in.st.fver[STORE_F_CONTENT],
			 &cur.st.fver[STORE_F_CONTENT]) > 0) {
			nr.st.type = in.st.type;
			nr.st.size = in.st.size;
			nr.value = in.value;
			nr.st.fver[STORE_F_CONTENT] = in.st.fver[STORE_F_CONTENT];
			if (in.st.type == STORE_TOMBSTONE)
				nr.dead_ns = store_txn_now(t);
			changed = 1;
		}
		if (vcmp(&in.st.fver[STORE_F_OWNER], &cur.st.fver[STORE_F_OWNER]) > 0) {
			nr.st.mode = (nr.st.mode & S_IFMT) | (in.st.mode & 07777);
			nr.st.uid = in.st.uid;
			nr.st.gid = in.st.gid;
			nr.st.fver[STORE_F_OWNER] = in.st.fver[STORE_F_OWNER];
			changed = 1;
		}
		if (vcmp(&in.st.fver[STORE_F_TIMES], &cur.st.fver[STORE_F_TIMES]) > 0) {
			nr.st.mtime_ns = in.st.mtime_ns;
			nr.st.atime_ns = in.st.atime_ns;
			nr.st.fver[STORE_F_TIMES] = in.st.fver[STORE_F_TIMES];
			changed = 1;
		}
		if (vcmp(&in.st.fver[STORE_F_LIFE], &cur.st.fver[STORE_F_LIFE]) > 0) {
			nr.st.ttl_ms = in.st.ttl_ms;
			nr.st.expires_ns = in.st.expires_ns;
			nr.st.fver[STORE_F_LIFE] = in.st.fver[STORE_F_LIFE];
			changed = 1;
		}
		if (in.st.ctime_ns > nr.st.ctime_ns)
			nr.st.ctime_ns = in.st.ctime_ns;
		nr.xattrs = buf + REC_VV_LEN * STORE_VV_MAX;
		nr.st.xattr_len = xattr_merge(&cur, &in,
					      buf + REC_VV_LEN * STORE_VV_MAX,
					      &changed);
		err = vv_merge(cur.vv, cur.st.nvv, in.vv, in.st.nvv, buf, &nvv);
		if (err)
			goto out;
		if (nvv != cur.st.nvv ||
		    memcmp(buf, cur.vv, (size_t)nvv * REC_VV_LEN))
			changed = 1;
		nr.vv = buf;
		nr.st.nvv = nvv;
		/* the outcome, judged on the content field */
		cw = vcmp(&in.st.fver[STORE_F_CONTENT], &cur.st.fver[STORE_F_CONTENT]);
		if (!changed)
			*result = saw(&cur, &in.st.version) ? STORE_DUPLICATE :
							      STORE_CONFLICT_LOST;
		else if (cw > 0 && !saw(&in, &cur.st.fver[STORE_F_CONTENT]))
			*result = STORE_CONFLICT_WON;
		else if (cw < 0 && c &&
			 in.st.fver[STORE_F_CONTENT].hlc == c->origin_seq &&
			 in.st.fver[STORE_F_CONTENT].node == c->origin_node)
			*result = STORE_CONFLICT_LOST;
		else
			*result = STORE_APPLIED;
		if (!changed && *result == STORE_DUPLICATE &&
		    vcmp(&in.st.version, &cur.st.version) != 0)
			*result = STORE_SUPERSEDED;
		/* a directory that stops being one may have keys under it */
		if (changed && nr.st.type != STORE_DIR &&
		    cur.st.type == STORE_DIR && !(nr.flags & REC_KIDS)) {
			int below = store_keys_below(t, path);

			if (below < 0) {
				err = below;
				goto out;
			}
			if (below)
				nr.flags |= REC_KIDS;
		}
		if (changed)
			store_rec_unplace(t, &nr);
		if (nr.st.type != STORE_TOMBSTONE)
			nr.dead_ns = 0;
	}
	if (changed) {
		struct store_change log;

		if (c) {
			log = *c;
			log.flags = 0;
			log.writer = s->writer;
		}
		*wrote = 1;
		if (!have) {
			char pb[PATH_MAX];

			err = store_ensure_parents(t, path);
			if (!err)
				err = store_mark_kids(t, store_parent_of(path, pb));
			if (err)
				goto out;
		}
		err = store_rec_put(t, path, &nr, have ? &cur : NULL, c ? &log : NULL);
		if (err)
			goto out;
	}
out:
	free(buf);
	return err;
}

int store_apply_remote(struct store *s, struct store_txn *t,
		       const struct store_change *c)
{
	struct store_txn *own, own_mem;
	char path[PATH_MAX + 1];
	struct rec in;
	uint64_t wm = 0, now_ms, seq_ms = c->origin_seq >> 16;
	int err, wrote = 0, result = STORE_APPLIED;
	int self = c->origin_node == s->node_id;

	err = change_check(s, c, path, &in);
	if (err)
		return err;
	err = store_txn_enter(s, &t, 1, &own, &own_mem);
	if (err)
		return err;
	now_ms = store_txn_now(t) > 0 ?
			 (uint64_t)store_txn_now(t) / 1000000 : 0;
	/* rule 1 of store.h's apply: duplicates; rule 9 for our own */
	if (self) {
		if (!(t->meta.rec_hi > t->meta.rec_lo &&
		      c->origin_seq > t->meta.rec_lo &&
		      c->origin_seq <= t->meta.rec_hi)) {
			result = STORE_DUPLICATE;
			goto out;
		}
	} else {
		err = vv_get(t, c->origin_node, &wm);
		if (err)
			goto out;
		if (c->origin_seq <= wm) {
			result = STORE_DUPLICATE;
			goto out;
		}
	}
	/* rule 8 */
	if (seq_ms > now_ms + s->opts.max_offset_ms) {
		pthread_mutex_lock(&s->pool_lock);
		s->held++;
		if (seq_ms - now_ms > s->held_ahead_ms)
			s->held_ahead_ms = seq_ms - now_ms;
		pthread_mutex_unlock(&s->pool_lock);
		if (s->held == 1 || !(s->held & 1023))
			log_msg(LOG_WARNING, "%s: holding back a change of node %016" PRIx64
				" stamped %" PRIu64 " ms ahead of our clock (max %" PRIu64
				" ms)", s->path, c->origin_node, seq_ms - now_ms,
				s->opts.max_offset_ms);
		result = STORE_HELD;
		goto out;
	}
	/* rule 10 */
	if (seq_ms + s->opts.tombstone_grace_ms < now_ms + s->opts.max_offset_ms) {
		pthread_mutex_lock(&s->pool_lock);
		s->too_old++;
		pthread_mutex_unlock(&s->pool_lock);
		result = STORE_TOO_OLD;
		goto out;
	}
	err = store_rec_join(t, path, &in, c, &result, &wrote);
	if (err)
		goto out;
	/* rule 11: only now, with everything written */
	wrote = 1;
	if (self) {
		t->meta.rec_lo = c->origin_seq;
		if (t->meta.rec_lo >= t->meta.rec_hi) {
			log_msg(LOG_NOTICE, "%s: our lost changes are back", s->path);
			t->meta.run_base = t->meta.rec_hi;
			t->meta.rec_lo = t->meta.rec_hi = 0;
		}
		t->meta_dirty = 1;
	} else {
		err = vv_set(t, c->origin_node, c->origin_seq);
		if (err)
			goto out;
	}
	if (c->origin_seq > t->meta.hlc) {
		t->meta.hlc = c->origin_seq;
		t->meta_dirty = 1;
	}
out:
	if (err && !wrote) {
		/* refused before anything was written: the caller's
		 * transaction stays usable (store.h) */
		store_txn_abort(&own);
		return err;
	}
	err = store_txn_leave(t, own, err);
	return err ? err : result;
}

/* ---- peers ---- */

static int peer_key_put(struct store_txn *t, uint64_t peer, uint64_t origin,
			uint64_t seq)
{
	uint64_t kb[2] = { peer, origin };
	MDB_val k = { sizeof(kb), kb }, v = { sizeof(seq), &seq };

	return store_err(mdb_put(t->txn, t->s->dbi_peer, &k, &v, 0));
}

static int peer_known(struct store_txn *t, uint64_t peer)
{
	uint64_t kb[2] = { peer, 0 };
	MDB_val k = { sizeof(kb), kb }, v;

	return mdb_get(t->txn, t->s->dbi_peer, &k, &v) == 0;
}

static int peer_register(struct store_txn *t, uint64_t peer)
{
	int err;

	if (peer_known(t, peer))
		return 0;
	err = peer_key_put(t, peer, 0, 0);
	if (err)
		return err;
	t->meta.npeers++;
	t->meta_dirty = 1;
	return 0;
}

int store_peer_add(struct store *s, struct store_txn *t, uint64_t peer)
{
	struct store_txn *own, own_mem;
	int err;

	if (peer == 0 || peer == s->node_id)
		return -EINVAL;
	err = store_txn_enter(s, &t, 1, &own, &own_mem);
	if (!err)
		err = peer_register(t, peer);
	return store_txn_leave(t, own, err);
}

int store_peer_remove(struct store *s, struct store_txn *t, uint64_t peer)
{
	struct store_txn *own, own_mem;
	uint64_t kb[2] = { peer, 0 };
	MDB_cursor *c;
	MDB_val k, v;
	int err, rc;

	err = store_txn_enter(s, &t, 1, &own, &own_mem);
	if (err)
		return err;
	if (!peer_known(t, peer)) {
		err = -ENOENT;
		goto out;
	}
	rc = mdb_cursor_open(t->txn, s->dbi_peer, &c);
	if (rc) {
		err = store_err(rc);
		goto out;
	}
	k.mv_size = sizeof(kb);
	k.mv_data = kb;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT)) {
		uint64_t p;

		memcpy(&p, k.mv_data, sizeof(p));
		if (p != peer)
			break;
		rc = mdb_cursor_del(c, 0);
		if (rc)
			break;
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		err = store_err(rc);
	if (!err) {
		t->meta.npeers -= t->meta.npeers ? 1 : 0;
		t->meta_dirty = 1;
	}
out:
	return store_txn_leave(t, own, err);
}

int store_peer_ack(struct store *s, struct store_txn *t, uint64_t peer,
		   uint64_t origin, uint64_t seq)
{
	struct store_txn *own, own_mem;
	uint64_t kb[2] = { peer, origin }, old = 0;
	MDB_val k = { sizeof(kb), kb }, v;
	int err;

	if (peer == 0 || peer == s->node_id || origin == 0)
		return -EINVAL;
	err = store_txn_enter(s, &t, 1, &own, &own_mem);
	if (err)
		return err;
	err = peer_register(t, peer);
	if (err)
		goto out;
	if (mdb_get(t->txn, s->dbi_peer, &k, &v) == 0 && v.mv_size == 8)
		memcpy(&old, v.mv_data, 8);
	if (seq > old) {
		err = peer_key_put(t, peer, origin, seq);
		if (err)
			goto out;
	}
	if (origin == s->node_id && seq > t->meta.run_base &&
	    (!t->meta.run_first || seq < t->meta.run_first)) {
		int64_t now = store_txn_now(t);
		uint64_t now_ms = (uint64_t)(now > 0 ? now : 0) / 1000000;

		if ((seq >> 16) > now_ms + s->opts.max_offset_ms) {
			log_msg(LOG_WARNING, "%s: peer %016" PRIx64 " claims to hold our "
				"change %" PRIu64 ", stamped in the future: ignored",
				s->path, peer, seq);
			goto out;
		}
		/* rule 9: changes of ours that this store lost */
		if (t->meta.rec_hi <= t->meta.rec_lo)
			t->meta.rec_lo = t->meta.run_base;
		if (seq > t->meta.rec_hi) {
			log_msg(LOG_WARNING, "%s: peer %016" PRIx64 " holds changes of "
				"ours up to %" PRIu64 " that this store lost (restored "
				"from an older copy?): taking them back", s->path, peer,
				seq);
			t->meta.rec_hi = seq;
		}
		if (seq > t->meta.local_seq)
			t->meta.local_seq = seq;
		if (seq > t->meta.hlc)
			t->meta.hlc = seq;
		t->meta_dirty = 1;
	}
out:
	return store_txn_leave(t, own, err);
}

int store_peers(struct store *s, store_peer_cb cb, void *arg)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	int rc, err = 0;

	rc = store_rtxn_get(s, &txn);
	if (rc)
		return store_err(rc);
	rc = mdb_cursor_open(txn, s->dbi_peer, &c);
	if (rc) {
		store_rtxn_put(s, txn);
		return store_err(rc);
	}
	while (!err && (rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		uint64_t kb[2], seq;

		if (k.mv_size != sizeof(kb) || v.mv_size != sizeof(seq))
			continue;
		memcpy(kb, k.mv_data, sizeof(kb));
		memcpy(&seq, v.mv_data, sizeof(seq));
		err = cb(arg, kb[0], kb[1], seq);
	}
	mdb_cursor_close(c);
	store_rtxn_put(s, txn);
	return err;
}

/* ---- trimming what every peer holds ---- */

/* Per origin, the lowest acknowledgement over every known peer (a peer
 * that acknowledged nothing of an origin counts as 0). */
struct acked {
	uint64_t origin[STORE_VV_MAX], min[STORE_VV_MAX];
	unsigned n;
};

static uint64_t acked_min(const struct acked *a, uint64_t origin)
{
	unsigned i;

	for (i = 0; i < a->n; i++)
		if (a->origin[i] == origin)
			return a->min[i];
	return 0;
}

static int acked_load(struct store_txn *t, struct acked *a)
{
	uint64_t npeers = 0, cur = 0;
	unsigned cnt[STORE_VV_MAX] = { 0 }, i;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	rc = mdb_cursor_open(t->txn, t->s->dbi_peer, &c);
	if (rc)
		return store_err(rc);
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		uint64_t kb[2], seq;

		if (k.mv_size != sizeof(kb) || v.mv_size != sizeof(seq))
			continue;
		memcpy(kb, k.mv_data, sizeof(kb));
		memcpy(&seq, v.mv_data, sizeof(seq));
		if (kb[0] != cur) {
			cur = kb[0];
			npeers++;
		}
		if (kb[1] == 0)
			continue;
		for (i = 0; i < a->n && a->origin[i] != kb[1]; i++)
			;
		if (i == a->n) {
			if (a->n == STORE_VV_MAX)
				continue;
			a->origin[a->n++] = kb[1];
			a->min[i] = seq;
		} else if (seq < a->min[i]) {
			a->min[i] = seq;
		}
		cnt[i]++;
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return store_err(rc);
	for (i = 0; i < a->n; i++)
		if (cnt[i] < npeers)
			a->min[i] = 0; /* some peer has none of it */
	return 0;
}

int store_binlog_trim_acked(struct store *s, uint64_t keep_ms, size_t max)
{
	struct store_txn *t;
	struct acked *a = calloc(1, sizeof(*a));
	uint64_t now_ms;
	MDB_cursor *c;
	MDB_val k, v;
	size_t n = 0;
	int rc, err;

	if (!a)
		return -ENOMEM;
	err = store_txn_begin(s, 1, &t);
	if (err) {
		free(a);
		return err;
	}
	if (!t->meta.npeers || !t->meta.log_first)
		goto out;
	err = acked_load(t, a);
	if (err)
		goto out;
	now_ms = store_txn_now(t) > 0 ?
			 (uint64_t)store_txn_now(t) / 1000000 : 0;
	rc = mdb_cursor_open(t->txn, s->dbi_log, &c);
	if (rc) {
		err = store_err(rc);
		goto out;
	}
	/* whole commit groups from the front, while every peer holds every
	 * entry of them and they are older than keep_ms (for local readers:
	 * the mount, statefsctl watch) */
	while (!max || n < max) {
		size_t len = 0, i2;
		int ok = 1, more = 1;

		for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && more;
		     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			const unsigned char *p = v.mv_data;
			uint64_t origin, oseq;

			if (v.mv_size < CHANGE_HDR_LEN) {
				ok = 0;
				break;
			}
			origin = le_get64(p + 8);
			oseq = le_get64(p + 16);
			if ((oseq >> 16) + keep_ms > now_ms ||
			    acked_min(a, origin) < oseq) {
				ok = 0;
				break;
			}
			more = p[1] & STORE_CHANGE_MORE;
			len++;
		}
		if (!ok || more || !len)
			break; /* not all held, or a group still being written */
		for (i2 = 0; i2 < len; i2++) {
			uint64_t seq;

			rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
			if (rc)
				break;
			memcpy(&seq, k.mv_data, sizeof(seq));
			rc = store_log_drop(t, c, seq, &v);
			if (rc)
				break;
		}
		if (rc)
			break;
		n += len;
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		err = store_err(rc);
out:
	free(a);
	if (err || !n) {
		store_txn_abort(&t);
		return err;
	}
	err = store_txn_commit(&t);
	return err ? err : (int)n;
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


int store_watermarks_in(struct store *s, MDB_txn *txn, store_vv_cb cb,
			void *arg)
{
	MDB_cursor *c;
	MDB_val k, v;
	struct meta m;
	int rc, err;

	rc = store_meta_load(txn, s->dbi_meta, &m);
	if (rc == 0)
		rc = mdb_cursor_open(txn, s->dbi_vv, &c);
	if (rc)
		return store_err(rc);
	/* rule 9: our own from where changes are missing until they are in */
	err = cb(arg, s->node_id, m.rec_hi > m.rec_lo ? m.rec_lo : m.local_seq);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !err && rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint64_t node, seq;

		memcpy(&node, k.mv_data, sizeof(node));
		memcpy(&seq, v.mv_data, sizeof(seq));
		if (node != s->node_id)
			err = cb(arg, node, seq);
	}
	mdb_cursor_close(c);
	return err ? err : rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

int store_watermarks(struct store *s, store_vv_cb cb, void *arg)
{
	MDB_txn *txn;
	int rc, err;

	rc = store_rtxn_get(s, &txn);
	if (rc)
		return store_err(rc);
	err = store_watermarks_in(s, txn, cb, arg);
	store_rtxn_put(s, txn);
	return err;
}
