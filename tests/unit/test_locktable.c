/*
 * test_locktable.c — the replicated lock table (repl/locktable.c) alone:
 * commands are encoded, applied and their results and the table's state
 * checked exactly, with lt_check() after every apply. The raft side is
 * test_lockraft.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "repl/locktable.h"

/* ---- helpers ---- */

struct sess {
	struct locktable *t;
	uint64_t id, seq;
};

static uint64_t now_ms;

static void check(struct locktable *t)
{
	char msg[256];

	if (lt_check(t, msg, sizeof(msg)) < 0)
		fail_msg("lt_check: %s", msg);
}

static const struct lt_result *apply_cmd(struct locktable *t,
					 const struct lt_cmd *c)
{
	const struct lt_result *r;
	size_t len = lt_cmd_size(c);
	void *buf;

	assert_true(len > 0);
	assert_int_equal(len % 8, 0);
	buf = malloc(len);
	assert_int_equal(lt_cmd_encode(c, buf, len), 0);
	lt_apply(t, buf, len, &r);
	free(buf);
	check(t);
	return r;
}

static struct sess open_s(struct locktable *t, uint64_t node,
			  uint64_t nonce, const char *name, uint32_t lease)
{
	struct lt_cmd c = { .type = LT_OPEN_SESSION, .seq = 1, .now = now_ms,
			    .node = node, .nonce = nonce, .lease_ms = lease,
			    .name = name, .namelen = strlen(name) };
	const struct lt_result *r = apply_cmd(t, &c);
	struct sess s = { t, r->session, 1 };

	assert_int_equal(r->code, LT_OK);
	assert_true(r->session > 0);
	return s;
}

static struct lt_cmd lock_cmd(struct sess *s, enum lt_cmd_type type,
			      enum lt_kind kind, const char *path,
			      uint64_t owner)
{
	struct lt_cmd c = { .type = type, .session = s->id, .seq = ++s->seq,
			    .now = now_ms, .kind = kind, .path = path,
			    .pathlen = strlen(path), .owner = owner,
			    .pid = (uint32_t)(1000 + owner) };
	return c;
}

static const struct lt_result *acq(struct sess *s, enum lt_kind kind,
				   const char *path, uint64_t owner,
				   enum lt_mode mode, int wait)
{
	struct lt_cmd c = lock_cmd(s, LT_ACQUIRE, kind, path, owner);

	c.mode = mode;
	c.wait = wait;
	return apply_cmd(s->t, &c);
}

static const struct lt_result *rel_vv(struct sess *s, enum lt_kind kind,
				      const char *path, uint64_t owner,
				      const struct lt_vv *vv)
{
	struct lt_cmd c = lock_cmd(s, LT_RELEASE, kind, path, owner);

	if (vv)
		c.vv = *vv;
	return apply_cmd(s->t, &c);
}

static const struct lt_result *rel(struct sess *s, const char *path,
				   uint64_t owner)
{
	return rel_vv(s, LT_FLOCK, path, owner, NULL);
}

static const struct lt_result *cancel(struct sess *s, enum lt_kind kind,
				      const char *path, uint64_t owner,
				      uint64_t target)
{
	struct lt_cmd c = lock_cmd(s, LT_CANCEL, kind, path, owner);

	c.target_seq = target;
	return apply_cmd(s->t, &c);
}

static const struct lt_result *simple(struct sess *s, enum lt_cmd_type type)
{
	struct lt_cmd c = { .type = type, .session = s->id, .seq = ++s->seq,
			    .now = now_ms };
	return apply_cmd(s->t, &c);
}

static const struct lt_result *expire(struct locktable *t, uint64_t id,
				      uint64_t renew)
{
	struct lt_cmd c = { .type = LT_EXPIRE, .now = now_ms, .target = id,
			    .renew = renew };
	return apply_cmd(t, &c);
}

static struct lt_lockinfo q(struct locktable *t, enum lt_kind kind,
			    const char *path)
{
	struct lt_lockinfo li;

	lt_query(t, kind, path, &li);
	return li;
}

static void encode(const struct locktable *t, void **b, size_t *n)
{
	assert_int_equal(lt_encode(t, b, n), 0);
	assert_int_equal(*n % 8, 0);
}

static void assert_same_table(const struct locktable *a,
			      const struct locktable *b)
{
	void *x, *y;
	size_t nx, ny;

	encode(a, &x, &nx);
	encode(b, &y, &ny);
	assert_int_equal(nx, ny);
	assert_memory_equal(x, y, nx);
	free(x);
	free(y);
}

/* restore(encode(t)) into a new table, which must encode the same. */
static struct locktable *clone_table(const struct locktable *t)
{
	struct locktable *n = lt_new(NULL);
	void *img;
	size_t len;

	encode(t, &img, &len);
	assert_int_equal(lt_restore(n, img, len), 0);
	free(img);
	check(n);
	assert_same_table(t, n);
	return n;
}

static struct lt_vv vv2(uint64_t n1, uint64_t s1, uint64_t n2, uint64_t s2)
{
	struct lt_vv v = { 0 };

	v.e[v.n].node = n1;
	v.e[v.n++].seq = s1;
	if (n2) {
		v.e[v.n].node = n2;
		v.e[v.n++].seq = s2;
	}
	return v;
}

static int setup(void **state)
{
	now_ms = 0;
	*state = lt_new(NULL);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	struct locktable *t = *state;

	lt_free(&t);
	return 0;
}

/* ---- flock semantics ---- */

static void test_exclusive(void **state)
{
	struct locktable *t = *state;
	struct sess a = open_s(t, 1, 11, "alpha", 5000);
	struct sess b = open_s(t, 2, 22, "beta", 5000);
	const struct lt_result *r;
	struct lt_lockinfo li;

	r = acq(&a, LT_FLOCK, "/f", 7, LT_EX, 0);
	assert_int_equal(r->code, LT_GRANTED);
	assert_true(r->token > 0);
	assert_int_equal(acq(&b, LT_FLOCK, "/f", 8, LT_EX, 0)->code,
			 LT_WOULDBLOCK);
	assert_int_equal(acq(&b, LT_FLOCK, "/f", 8, LT_SH, 0)->code,
			 LT_WOULDBLOCK);
	/* another owner of the same session is excluded too */
	assert_int_equal(acq(&a, LT_FLOCK, "/f", 9, LT_SH, 0)->code,
			 LT_WOULDBLOCK);
	/* the POSIX namespace is separate */
	assert_int_equal(acq(&b, LT_POSIX, "/f", 8, LT_EX, 0)->code,
			 LT_GRANTED);
	li = q(t, LT_FLOCK, "/f");
	assert_int_equal(li.mode, LT_EX);
	assert_int_equal(li.holders, 1);
	assert_int_equal(li.pid, 1007);
	assert_string_equal(li.host, "alpha");
	assert_int_equal(li.session, a.id);
	/* the same owner again: already held, nothing changes */
	r = acq(&a, LT_FLOCK, "/f", 7, LT_EX, 0);
	assert_int_equal(r->code, LT_GRANTED);
	assert_int_equal(r->token, li.token);
	assert_int_equal(rel(&a, "/f", 7)->code, LT_OK);
	assert_int_equal(rel(&a, "/f", 7)->code, LT_NOT_FOUND);
	assert_int_equal(q(t, LT_FLOCK, "/f").mode, LT_UNLOCKED);
	assert_int_equal(acq(&b, LT_FLOCK, "/f", 8, LT_EX, 0)->code,
			 LT_GRANTED);
}

static void test_shared(void **state)
{
	struct locktable *t = *state;
	struct sess s[3];
	struct lt_stats st;
	int i;

	for (i = 0; i < 3; i++) {
		s[i] = open_s(t, (uint64_t)i + 1, 1, "h", 5000);
		assert_int_equal(acq(&s[i], LT_FLOCK, "/d", 1, LT_SH, 0)->code,
				 LT_GRANTED);
	}
	assert_int_equal(q(t, LT_FLOCK, "/d").mode, LT_SH);
	assert_int_equal(q(t, LT_FLOCK, "/d").holders, 3);
	assert_int_equal(acq(&s[0], LT_FLOCK, "/d", 2, LT_EX, 0)->code,
			 LT_WOULDBLOCK);
	lt_stats(t, &st);
	assert_int_equal(st.held_shared, 3);
	assert_int_equal(st.held_excl, 0);
	assert_int_equal(st.contentions, 1);
	assert_int_equal(rel(&s[1], "/d", 1)->code, LT_OK);
	assert_int_equal(q(t, LT_FLOCK, "/d").holders, 2);
}

static void test_conversion(void **state)
{
	struct locktable *t = *state;
	struct sess a = open_s(t, 1, 1, "a", 5000);
	struct sess b = open_s(t, 2, 1, "b", 5000);
	const struct lt_result *r;
	uint64_t tok;

	/* SH -> EX as the only holder: granted, a new token */
	assert_int_equal(acq(&a, LT_FLOCK, "/c", 1, LT_SH, 0)->code,
			 LT_GRANTED);
	r = acq(&a, LT_FLOCK, "/c", 1, LT_EX, 0);
	assert_int_equal(r->code, LT_GRANTED);
	tok = r->token;
	assert_true(tok > 0);
	assert_int_equal(q(t, LT_FLOCK, "/c").holders, 1);
	/* b waits for shared; EX -> SH lets it in at once */
	assert_int_equal(acq(&b, LT_FLOCK, "/c", 2, LT_SH, 1)->code,
			 LT_QUEUED);
	r = acq(&a, LT_FLOCK, "/c", 1, LT_SH, 0);
	assert_int_equal(r->code, LT_GRANTED);
	assert_int_equal(r->ngrants, 1);
	assert_int_equal(r->grants[0].session, b.id);
	assert_int_equal(r->grants[0].owner, 2);
	assert_int_equal(r->grants[0].seq, b.seq);
	assert_int_equal(r->grants[0].mode, LT_SH);
	assert_string_equal(r->grants[0].path, "/c");
	assert_int_equal(q(t, LT_FLOCK, "/c").holders, 2);
	/* SH -> EX with another shared holder, LOCK_NB: the shared lock
	 * is gone (Linux drops it first) */
	assert_int_equal(acq(&a, LT_FLOCK, "/c", 1, LT_EX, 0)->code,
			 LT_WOULDBLOCK);
	assert_int_equal(q(t, LT_FLOCK, "/c").holders, 1);
	assert_int_equal(q(t, LT_FLOCK, "/c").session, b.id);
	/* and blocking: queued behind nobody, granted when b leaves */
	assert_int_equal(acq(&a, LT_FLOCK, "/c", 1, LT_EX, 1)->code,
			 LT_QUEUED);
	r = rel(&b, "/c", 2);
	assert_int_equal(r->ngrants, 1);
	assert_int_equal(r->grants[0].mode, LT_EX);
	assert_true(r->grants[0].token > tok);
}

static void test_fifo(void **state)
{
	struct locktable *t = *state;
	struct sess a = open_s(t, 1, 1, "a", 5000);
	struct sess b = open_s(t, 2, 1, "b", 5000);
	struct sess c = open_s(t, 3, 1, "c", 5000);
	const struct lt_result *r;
	uint64_t bseq, cseq, dseq;

	assert_int_equal(acq(&a, LT_FLOCK, "/q", 1, LT_SH, 0)->code,
			 LT_GRANTED);
	assert_int_equal(acq(&b, LT_FLOCK, "/q", 1, LT_EX, 1)->code,
			 LT_QUEUED);
	bseq = b.seq;
	/* shared, compatible with the holder, but behind a queued EX */
	assert_int_equal(acq(&c, LT_FLOCK, "/q", 1, LT_SH, 0)->code,
			 LT_WOULDBLOCK);
	assert_int_equal(acq(&c, LT_FLOCK, "/q", 1, LT_SH, 1)->code,
			 LT_QUEUED);
	cseq = c.seq;
	assert_int_equal(acq(&c, LT_FLOCK, "/q", 2, LT_SH, 1)->code,
			 LT_QUEUED);
	dseq = c.seq;
	assert_int_equal(q(t, LT_FLOCK, "/q").waiters, 3);
	r = rel(&a, "/q", 1);
	assert_int_equal(r->ngrants, 1);
	assert_int_equal(r->grants[0].session, b.id);
	assert_int_equal(r->grants[0].seq, bseq);
	r = rel(&b, "/q", 1);
	/* both shared waiters, in arrival order */
	assert_int_equal(r->ngrants, 2);
	assert_int_equal(r->grants[0].seq, cseq);
	assert_int_equal(r->grants[0].owner, 1);
	assert_int_equal(r->grants[1].seq, dseq);
	assert_int_equal(r->grants[1].owner, 2);
	assert_int_equal(q(t, LT_FLOCK, "/q").holders, 2);
	assert_int_equal(q(t, LT_FLOCK, "/q").waiters, 0);

	/* a change that does not let the head in grants nobody behind it,
	 * even a waiter that would fit */
	assert_int_equal(acq(&a, LT_FLOCK, "/q", 3, LT_EX, 1)->code,
			 LT_QUEUED);
	assert_int_equal(acq(&a, LT_FLOCK, "/q", 4, LT_SH, 1)->code,
			 LT_QUEUED);
	r = rel(&c, "/q", 1);  /* c's owner 2 still holds SH */
	assert_int_equal(r->code, LT_OK);
	assert_int_equal(r->ngrants, 0);
	assert_int_equal(q(t, LT_FLOCK, "/q").waiters, 2);
	r = rel(&c, "/q", 2);
	assert_int_equal(r->ngrants, 1);
	assert_int_equal(r->grants[0].owner, 3);
}

static void test_tokens(void **state)
{
	struct locktable *t = *state;
	struct sess a = open_s(t, 1, 1, "a", 100);
	struct sess b = open_s(t, 2, 1, "b", 100);
	struct locktable *c;
	const struct lt_result *r;
	uint64_t last = 0, tok;
	int i;

	for (i = 0; i < 5; i++) {
		r = acq(&a, LT_FLOCK, "/t", 1, LT_EX, 0);
		assert_int_equal(r->code, LT_GRANTED);
		assert_true(r->token > last);
		last = r->token;
		/* shared grants show the last exclusive token, no new one */
		rel(&a, "/t", 1);
		r = acq(&b, LT_FLOCK, "/t", 1, LT_SH, 0);
		assert_int_equal(r->token, i ? last : last);
		rel(&b, "/t", 1);
	}
	/* held, then the holder's session expires; b is granted by it */
	assert_int_equal(acq(&a, LT_FLOCK, "/t", 1, LT_EX, 0)->code,
			 LT_GRANTED);
	assert_int_equal(acq(&b, LT_FLOCK, "/t", 1, LT_EX, 1)->code,
			 LT_QUEUED);
	tok = q(t, LT_FLOCK, "/t").token;
	assert_true(tok > last);
	now_ms = 1000;
	r = expire(t, a.id, 0);
	assert_int_equal(r->code, LT_OK);
	assert_int_equal(r->ngrants, 1);
	assert_true(r->grants[0].token > tok);
	last = r->grants[0].token;
	/* across a snapshot/restore, the next token is still larger */
	c = clone_table(t);
	rel(&b, "/t", 1);
	{
		struct sess b2 = { c, b.id, b.seq - 1 };

		rel(&b2, "/t", 1);
		r = acq(&b2, LT_FLOCK, "/t", 1, LT_EX, 0);
		assert_true(r->token > last);
		tok = r->token;
		r = acq(&b, LT_FLOCK, "/t", 1, LT_EX, 0);
		assert_int_equal(r->token, tok); /* both replicas agree */
	}
	assert_same_table(t, c);
	lt_free(&c);
	/* the clock floor: token >= now in microseconds */
	now_ms = 5000000;
	rel(&b, "/t", 1);
	r = acq(&b, LT_FLOCK, "/other", 1, LT_EX, 0);
	assert_true(r->token >= 5000000ULL * 1000);
	/* never reused across paths either */
	last = r->token;
	r = acq(&b, LT_FLOCK, "/t", 1, LT_EX, 0);
	assert_true(r->token > last);
}

static void test_cancel(void **state)
{
	struct locktable *t = *state;
	struct sess a = open_s(t, 1, 1, "a", 5000);
	struct sess b = open_s(t, 2, 1, "b", 5000);
	struct sess c = open_s(t, 3, 1, "c", 5000);
	const struct lt_result *r;
	uint64_t bseq, cseq;
	struct lt_stats st;

	acq(&a, LT_FLOCK, "/x", 1, LT_SH, 0);
	assert_int_equal(acq(&b, LT_FLOCK, "/x", 1, LT_EX, 1)->code,
			 LT_QUEUED);
	bseq = b.seq;
	assert_int_equal(acq(&c, LT_FLOCK, "/x", 1, LT_SH, 1)->code,
			 LT_QUEUED);
	cseq = c.seq;
	/* the wrong seq, owner or path is not found */
	assert_int_equal(cancel(&b, LT_FLOCK, "/x", 1, bseq + 100)->code,
			 LT_NOT_FOUND);
	assert_int_equal(cancel(&b, LT_FLOCK, "/x", 2, bseq)->code,
			 LT_NOT_FOUND);
	assert_int_equal(cancel(&b, LT_FLOCK, "/y", 1, bseq)->code,
			 LT_NOT_FOUND);
	/* cancelling the EX head lets the shared waiter behind it in */
	r = cancel(&b, LT_FLOCK, "/x", 1, bseq);
	assert_int_equal(r->code, LT_OK);
	assert_int_equal(r->ngrants, 1);
	assert_int_equal(r->grants[0].session, c.id);
	assert_int_equal(r->grants[0].seq, cseq);
	assert_int_equal(q(t, LT_FLOCK, "/x").holders, 2);
	/* a cancel that comes after the grant: the grant stands */
	r = cancel(&c, LT_FLOCK, "/x", 1, cseq);
	assert_int_equal(r->code, LT_GRANTED);
	assert_int_equal(q(t, LT_FLOCK, "/x").holders, 2);
	lt_stats(t, &st);
	assert_int_equal(st.cancels, 1);
	assert_int_equal(st.waiters, 0);
	/* cancelling a middle waiter grants nothing */
	acq(&b, LT_FLOCK, "/x", 1, LT_EX, 1);
	acq(&b, LT_FLOCK, "/x", 2, LT_EX, 1);
	r = cancel(&b, LT_FLOCK, "/x", 2, b.seq);
	assert_int_equal(r->code, LT_OK);
	assert_int_equal(r->ngrants, 0);
}

static void test_expire_close(void **state)
{
	struct locktable *t = *state;
	struct sess a = open_s(t, 1, 1, "a", 1000);
	struct sess b = open_s(t, 2, 1, "b", 1000);
	struct lt_sessioninfo si;
	const struct lt_result *r;
	struct lt_stats st;

	assert_int_equal(acq(&a, LT_FLOCK, "/p1", 1, LT_EX, 0)->code,
			 LT_GRANTED);
	assert_int_equal(acq(&a, LT_FLOCK, "/p2", 1, LT_SH, 0)->code,
			 LT_GRANTED);
	assert_int_equal(acq(&a, LT_POSIX, "/p3", 1, LT_EX, 0)->code,
			 LT_GRANTED);
	assert_int_equal(acq(&b, LT_FLOCK, "/p4", 1, LT_EX, 0)->code,
			 LT_GRANTED);
	assert_int_equal(acq(&a, LT_FLOCK, "/p4", 1, LT_EX, 1)->code,
			 LT_QUEUED);
	assert_int_equal(acq(&b, LT_FLOCK, "/p1", 1, LT_SH, 1)->code,
			 LT_QUEUED);
	assert_int_equal(acq(&b, LT_POSIX, "/p3", 1, LT_SH, 1)->code,
			 LT_QUEUED);
	now_ms = 400;
	assert_int_equal(simple(&a, LT_KEEPALIVE)->code, LT_OK);
	assert_int_equal(lt_session(t, a.id, &si), 0);
	assert_int_equal(si.last_renew, 400);
	assert_int_equal(si.held, 3);
	assert_int_equal(si.waiting, 1);
	/* too early, and an overtaken decision (old renewal stamp) */
	now_ms = 1399;
	assert_int_equal(expire(t, a.id, 400)->code, LT_STALE);
	now_ms = 1400;
	assert_int_equal(expire(t, a.id, 0)->code, LT_STALE);
	assert_int_equal(expire(t, 999, 400)->code, LT_NOT_FOUND);
	r = expire(t, a.id, 400);
	assert_int_equal(r->code, LT_OK);
	/* b's two waiters granted, in (kind, path) order */
	assert_int_equal(r->ngrants, 2);
	assert_int_equal(r->grants[0].kind, LT_FLOCK);
	assert_string_equal(r->grants[0].path, "/p1");
	assert_int_equal(r->grants[1].kind, LT_POSIX);
	assert_string_equal(r->grants[1].path, "/p3");
	lt_stats(t, &st);
	assert_int_equal(st.orphans, 3);
	assert_int_equal(st.expired, 1);
	assert_int_equal(st.sessions, 1);
	assert_int_equal(q(t, LT_FLOCK, "/p4").waiters, 0);
	assert_int_equal(q(t, LT_FLOCK, "/p2").mode, LT_UNLOCKED);
	/* the expired session is gone for good */
	assert_int_equal(simple(&a, LT_KEEPALIVE)->code, LT_NOT_FOUND);
	assert_int_equal(acq(&a, LT_FLOCK, "/z", 1, LT_EX, 0)->code,
			 LT_NOT_FOUND);
	/* close: the same freeing, for a mount that ended */
	a = open_s(t, 1, 2, "a", 1000);
	assert_int_equal(acq(&a, LT_FLOCK, "/p4", 1, LT_EX, 1)->code,
			 LT_QUEUED);
	r = simple(&b, LT_CLOSE_SESSION);
	assert_int_equal(r->code, LT_OK);
	assert_int_equal(r->ngrants, 1);
	assert_int_equal(r->grants[0].session, a.id);
	lt_stats(t, &st);
	assert_int_equal(st.orphans, 6);
	assert_int_equal(st.sessions, 1);
	assert_int_equal(st.held_excl, 1);
	assert_int_equal(st.held_shared, 0);
}

static void test_idempotent(void **state)
{
	struct locktable *t = *state;
	struct sess a = open_s(t, 1, 77, "a", 5000);
	struct sess b = open_s(t, 2, 1, "b", 5000);
	struct lt_cmd c;
	const struct lt_result *r;
	void *before, *after;
	size_t nb, na;
	uint64_t tok;

	/* OPEN again with the same (node, nonce): the same session */
	{
		struct lt_cmd o = { .type = LT_OPEN_SESSION, .seq = 1,
				    .node = 1, .nonce = 77, .lease_ms = 5000,
				    .name = "a", .namelen = 1 };
		r = apply_cmd(t, &o);
		assert_int_equal(r->session, a.id);
		assert_true(r->dup);
	}
	r = acq(&a, LT_FLOCK, "/i", 1, LT_EX, 0);
	tok = r->token;
	c = lock_cmd(&b, LT_ACQUIRE, LT_FLOCK, "/i", 1);
	c.mode = LT_EX;
	c.wait = 1;
	assert_int_equal(apply_cmd(t, &c)->code, LT_QUEUED);
	encode(t, &before, &nb);
	r = apply_cmd(t, &c);  /* the retry */
	assert_int_equal(r->code, LT_QUEUED);
	assert_true(r->dup);
	encode(t, &after, &na);
	assert_int_equal(nb, na);
	assert_memory_equal(before, after, nb);
	free(after);
	assert_int_equal(q(t, LT_FLOCK, "/i").waiters, 1);
	/* a granted retry gives the same token, not a new one */
	c = lock_cmd(&a, LT_RELEASE, LT_FLOCK, "/i", 1);
	r = apply_cmd(t, &c);
	assert_int_equal(r->ngrants, 1);
	assert_true(r->grants[0].token > tok);
	tok = r->grants[0].token;
	r = apply_cmd(t, &c);
	assert_int_equal(r->code, LT_OK);
	assert_true(r->dup);
	assert_int_equal(r->ngrants, 0);
	c = lock_cmd(&a, LT_ACQUIRE, LT_FLOCK, "/j", 1);
	c.mode = LT_EX;
	r = apply_cmd(t, &c);
	assert_int_equal(r->code, LT_GRANTED);
	tok = r->token;
	r = apply_cmd(t, &c);
	assert_true(r->dup);
	assert_int_equal(r->code, LT_GRANTED);
	assert_int_equal(r->token, tok);
	/* an older sequence: STALE, nothing changes */
	c.seq -= 2;
	free(before);
	encode(t, &before, &nb);
	assert_int_equal(apply_cmd(t, &c)->code, LT_STALE);
	encode(t, &after, &na);
	assert_memory_equal(before, after, nb);
	free(after);
	/* past the next sequence: GAP, nothing changes (not even the
	 * lease), and the next one still applies */
	c.seq += 4;
	assert_int_equal(apply_cmd(t, &c)->code, LT_GAP);
	encode(t, &after, &na);
	assert_int_equal(na, nb);
	assert_memory_equal(before, after, nb);
	free(before);
	free(after);
	c.seq -= 1;
	assert_int_equal(apply_cmd(t, &c)->code, LT_GRANTED);
	assert_true(apply_cmd(t, &c)->dup);
}

/* ---- encoding ---- */

static void test_cmd_roundtrip(void **state)
{
	struct lt_cmd c = { .type = LT_RELEASE, .session = 5, .seq = 9,
			    .now = 1234, .kind = LT_POSIX, .path = "/a/b",
			    .pathlen = 4, .owner = 0xdeadbeefcafeULL };
	struct lt_cmd d;
	unsigned char buf[256];
	size_t len;

	(void)state;
	c.vv = vv2(3, 10, 9, 2);
	len = lt_cmd_size(&c);
	assert_int_equal(len, 32 + 16 + 8 + 32);
	assert_int_equal(lt_cmd_encode(&c, buf, len), 0);
	assert_int_equal(buf[0], LT_CMD_VERSION);
	assert_int_equal(buf[1], LT_RELEASE);
	assert_int_equal(buf[24], 1234 & 0xff);  /* little-endian now */
	assert_int_equal(lt_cmd_decode(buf, len, &d), 0);
	assert_int_equal(d.type, LT_RELEASE);
	assert_int_equal(d.session, 5);
	assert_int_equal(d.seq, 9);
	assert_int_equal(d.now, 1234);
	assert_int_equal(d.kind, LT_POSIX);
	assert_int_equal(d.owner, c.owner);
	assert_int_equal(d.pathlen, 4);
	assert_memory_equal(d.path, "/a/b", 4);
	assert_int_equal(d.vv.n, 2);
	assert_int_equal(d.vv.e[1].node, 9);
	assert_int_equal(d.vv.e[1].seq, 2);
	/* invalid commands do not encode */
	c.vv = vv2(9, 1, 3, 1);  /* nodes not increasing */
	assert_int_equal(lt_cmd_size(&c), 0);
	c.vv.n = 0;
	c.pathlen = 0;
	assert_int_equal(lt_cmd_size(&c), 0);
	c.pathlen = LT_PATH_MAX + 1;
	assert_int_equal(lt_cmd_size(&c), 0);
}

static uint64_t rnd_state;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* Every malformed entry answers MALFORMED and leaves the table as it
 * was: truncations, extensions, every single-bit flip of the header and
 * of the padding, wrong lengths, random bytes. */
static void test_malformed(void **state)
{
	struct locktable *t = *state;
	struct sess a = open_s(t, 1, 1, "a", 5000);
	struct lt_cmd cs[3];
	void *img0, *img1;
	size_t n0, n1, len, i, k;
	unsigned char buf[512], m[520];
	const struct lt_result *r;
	int bit, rejected = 0, accepted = 0;

	acq(&a, LT_FLOCK, "/m", 1, LT_EX, 0);
	cs[0] = lock_cmd(&a, LT_ACQUIRE, LT_FLOCK, "/mm", 2);
	cs[0].mode = LT_SH;
	cs[1] = lock_cmd(&a, LT_RELEASE, LT_FLOCK, "/m", 1);
	cs[1].vv = vv2(1, 5, 2, 6);
	cs[2] = lock_cmd(&a, LT_CANCEL, LT_POSIX, "/abc", 1);
	encode(t, &img0, &n0);
	for (k = 0; k < 3; k++) {
		len = lt_cmd_size(&cs[k]);
		assert_int_equal(lt_cmd_encode(&cs[k], buf, len), 0);
		for (i = 0; i < len + 16; i++) {  /* every other length */
			if (i == len)
				continue;
			memset(m, 0, sizeof(m));
			memcpy(m, buf, i < len ? i : len);
			lt_apply(t, m, i, &r);
			assert_int_equal(r->code, LT_MALFORMED);
			rejected++;
		}
		for (i = 0; i < len * 8; i++) {  /* every bit flip */
			struct lt_cmd d;

			bit = (int)i;
			memcpy(m, buf, len);
			m[bit / 8] ^= (unsigned char)(1u << (bit % 8));
			if (lt_cmd_decode(m, len, &d) == 0) {
				accepted++;  /* still a valid command */
				continue;
			}
			lt_apply(t, m, len, &r);
			assert_int_equal(r->code, LT_MALFORMED);
			rejected++;
			/* a flip in the header's zero bytes or padding is
			 * always caught */
		}
		for (i = 5; i < 8; i++) {
			memcpy(m, buf, len);
			m[i] = 1;
			lt_apply(t, m, len, &r);
			assert_int_equal(r->code, LT_MALFORMED);
		}
		memcpy(m, buf, len);
		m[0] = LT_CMD_VERSION + 1;
		lt_apply(t, m, len, &r);
		assert_int_equal(r->code, LT_MALFORMED);
	}
	/* a path with a NUL byte */
	len = lt_cmd_size(&cs[0]);
	lt_cmd_encode(&cs[0], buf, len);
	buf[32 + 16 + 1] = '\0';
	lt_apply(t, buf, len, &r);
	assert_int_equal(r->code, LT_MALFORMED);
	/* random garbage, with a valid-looking header half of the time */
	rnd_state = 0x9e3779b97f4a7c15ULL;
	for (i = 0; i < 20000; i++) {
		size_t l = (rnd() % 64) * 8;
		struct lt_cmd d;

		for (k = 0; k < l; k++)
			m[k] = (unsigned char)rnd();
		if (l >= 8 && (i & 1)) {
			m[0] = LT_CMD_VERSION;
			m[1] = (unsigned char)(1 + rnd() % 7);
			m[2] = m[3] = m[4] = m[5] = m[6] = m[7] = 0;
		}
		if (lt_cmd_decode(m, l, &d) == 0)
			continue;
		lt_apply(t, m, l, &r);
		assert_int_equal(r->code, LT_MALFORMED);
	}
	lt_apply(t, NULL, 0, &r);
	assert_int_equal(r->code, LT_MALFORMED);
	check(t);
	encode(t, &img1, &n1);
	assert_int_equal(n0, n1);
	assert_memory_equal(img0, img1, n0);
	free(img0);
	free(img1);
	print_message("malformed: %d rejected, %d bit flips still valid\n",
		      rejected, accepted);
}

/* ---- snapshots ---- */

/* A table with some of everything: sessions, holders of both kinds,
 * queues, idle locks with vvs, a floor from an evicted lock. */
static struct locktable *busy_table(struct sess *s, int n)
{
	struct lt_limits lim = { 16, 64, 256, 256, 2 };
	struct locktable *t = lt_new(&lim);
	struct lt_vv v;
	int i;

	now_ms = 100;
	for (i = 0; i < n; i++)
		s[i] = open_s(t, (uint64_t)i + 1, 42, "host", 3000);
	acq(&s[0], LT_FLOCK, "/a", 1, LT_EX, 0);
	acq(&s[1], LT_FLOCK, "/a", 1, LT_SH, 1);
	acq(&s[2], LT_FLOCK, "/a", 1, LT_EX, 1);
	acq(&s[1], LT_FLOCK, "/b", 1, LT_SH, 0);
	acq(&s[2], LT_FLOCK, "/b", 2, LT_SH, 0);
	acq(&s[0], LT_POSIX, "/a", 9, LT_SH, 0);
	acq(&s[1], LT_POSIX, "/a", 9, LT_EX, 1);
	acq(&s[2], LT_POSIX, "/a", 9, LT_SH, 0);
	for (i = 0; i < 4; i++) {  /* idle locks; the first is evicted */
		char p[16];

		snprintf(p, sizeof(p), "/idle%d", i);
		acq(&s[0], LT_FLOCK, p, 3, LT_EX, 0);
		v = vv2(1, (uint64_t)i + 1, 5, 100 - (uint64_t)i);
		rel_vv(&s[0], LT_FLOCK, p, 3, &v);
	}
	now_ms = 200;
	return t;
}

static void test_snapshot_roundtrip(void **state)
{
	struct sess s[3], s2[3];
	struct locktable *t = busy_table(s, 3), *c;
	struct lt_stats st;
	struct lt_lockinfo li;
	int i;

	(void)state;
	lt_stats(t, &st);
	assert_int_equal(st.idle, 2);
	assert_int_equal(st.sessions, 3);
	c = clone_table(t);
	/* the restored table behaves the same from here on */
	for (i = 0; i < 3; i++) {
		s2[i] = s[i];
		s2[i].t = c;
	}
	for (i = 0; i < 2; i++) {
		struct sess *x = i ? s2 : s;

		rel(&x[0], "/a", 1);
		acq(&x[2], LT_FLOCK, "/idle0", 3, LT_EX, 0);
		acq(&x[2], LT_FLOCK, "/idle3", 3, LT_EX, 0);
		rel_vv(&x[0], LT_POSIX, "/a", 9, NULL);
		expire(x[0].t, x[2].id, 0);
		now_ms = 100000;
		expire(x[0].t, x[2].id, 200);
		now_ms = 200;
	}
	assert_same_table(t, c);
	/* handover: /idle0 was evicted, its vv is in the floor */
	lt_query(c, LT_FLOCK, "/idle3", &li);
	lt_free(&c);
	lt_free(&t);
}

static void test_snapshot_corrupt(void **state)
{
	struct sess s[3];
	struct locktable *t = busy_table(s, 3), *c = lt_new(NULL);
	void *img, *img2;
	unsigned char *m;
	size_t len, len2, i;
	int ok = 0, refused = 0;

	(void)state;
	encode(t, &img, &len);
	m = malloc(len);
	/* a known state in c, which every refused restore must keep */
	assert_int_equal(lt_restore(c, img, len), 0);
	for (i = 0; i < len; i++) {
		if (lt_restore(c, img, i) == 0)
			fail_msg("truncated image of %zu bytes accepted", i);
	}
	for (i = 0; i < len * 8; i += 3) {
		memcpy(m, img, len);
		m[i / 8] ^= (unsigned char)(1u << (i % 8));
		if (lt_restore(c, m, len) == 0) {
			ok++;  /* e.g. a flipped pid: still a valid table */
			check(c);
			assert_int_equal(lt_restore(c, img, len), 0);
		} else {
			refused++;
		}
	}
	encode(c, &img2, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(img, img2, len);
	print_message("snapshot bit flips: %d refused, %d still valid\n",
		      refused, ok);
	free(img);
	free(img2);
	free(m);
	lt_free(&c);
	lt_free(&t);
}

/* ---- handover, POSIX, limits ---- */

static void test_handover_vv(void **state)
{
	struct lt_limits lim = { 16, 64, 256, 256, 1 };
	struct locktable *t = lt_new(&lim);
	struct sess a = open_s(t, 1, 1, "a", 5000);
	struct sess b = open_s(t, 2, 1, "b", 5000);
	const struct lt_result *r;
	struct lt_vv v;

	(void)state;
	acq(&a, LT_FLOCK, "/h", 1, LT_SH, 0);
	acq(&b, LT_FLOCK, "/h", 1, LT_SH, 0);
	assert_int_equal(acq(&a, LT_FLOCK, "/h", 2, LT_EX, 1)->code,
			 LT_QUEUED);
	v = vv2(1, 10, 2, 5);
	rel_vv(&a, LT_FLOCK, "/h", 1, &v);
	v = vv2(2, 7, 3, 1);
	r = rel_vv(&b, LT_FLOCK, "/h", 1, &v);
	/* the grant carries the pointwise maximum of both releases */
	assert_int_equal(r->ngrants, 1);
	assert_int_equal(r->grants[0].vv.n, 3);
	assert_int_equal(r->grants[0].vv.e[0].seq, 10);
	assert_int_equal(r->grants[0].vv.e[1].seq, 7);
	assert_int_equal(r->grants[0].vv.e[2].node, 3);
	/* released with nobody waiting: the lock stays idle with its vv */
	v = vv2(4, 1, 0, 0);
	rel_vv(&a, LT_FLOCK, "/h", 2, &v);
	r = acq(&b, LT_FLOCK, "/h", 1, LT_EX, 0);
	assert_int_equal(r->vv.n, 4);
	v = vv2(4, 2, 0, 0);
	rel_vv(&b, LT_FLOCK, "/h", 1, &v);
	/* a second idle lock evicts /h (max_idle 1) into the floor; a
	 * later grant of /h still carries at least its vv */
	acq(&b, LT_FLOCK, "/g", 1, LT_EX, 0);
	v = vv2(9, 9, 0, 0);
	rel_vv(&b, LT_FLOCK, "/g", 1, &v);
	r = acq(&a, LT_FLOCK, "/h", 1, LT_SH, 0);
	assert_int_equal(r->code, LT_GRANTED);
	assert_int_equal(r->vv.n, 4);
	assert_int_equal(r->vv.e[0].seq, 10);
	assert_int_equal(r->vv.e[3].node, 4);
	assert_int_equal(r->vv.e[3].seq, 2);
	/* a release by a non-holder changes no vv */
	v = vv2(1, 99, 0, 0);
	assert_int_equal(rel_vv(&b, LT_FLOCK, "/h", 1, &v)->code,
			 LT_NOT_FOUND);
	assert_int_equal(q(t, LT_FLOCK, "/h").vv.e[0].seq, 10);
	lt_free(&t);
}

/* A POSIX owner with two requests waiting, EX then SH: granting both
 * leaves it SH, and a SH waiter passed over while it held EX fits now.
 * (The table once granted in one pass and left that waiter waiting: a
 * 5,000-seed run of test_lockraft, seed 4201, caught it.) */
static void test_posix_downgrade(void **state)
{
	struct locktable *t = *state;
	struct sess a = open_s(t, 1, 1, "a", 5000);
	struct sess b = open_s(t, 2, 1, "b", 5000);
	const struct lt_result *r;

	assert_int_equal(acq(&a, LT_POSIX, "/d", 1, LT_EX, 0)->code,
			 LT_GRANTED);
	assert_int_equal(acq(&b, LT_POSIX, "/d", 3, LT_EX, 1)->code,
			 LT_QUEUED);
	assert_int_equal(acq(&b, LT_POSIX, "/d", 4, LT_SH, 1)->code,
			 LT_QUEUED);
	assert_int_equal(acq(&b, LT_POSIX, "/d", 3, LT_SH, 1)->code,
			 LT_QUEUED);
	r = rel_vv(&a, LT_POSIX, "/d", 1, NULL); /* apply_cmd: lt_check */
	assert_int_equal(r->code, LT_OK);
	assert_int_equal(r->ngrants, 3);
	assert_int_equal(r->grants[0].owner, 3);
	assert_int_equal(r->grants[0].mode, LT_EX);
	assert_int_equal(r->grants[1].owner, 3);
	assert_int_equal(r->grants[1].mode, LT_SH);
	assert_int_equal(r->grants[2].owner, 4);
	assert_int_equal(r->grants[2].mode, LT_SH);
	assert_int_equal(q(t, LT_POSIX, "/d").mode, LT_SH);
	assert_int_equal(q(t, LT_POSIX, "/d").holders, 2);
	assert_int_equal(q(t, LT_POSIX, "/d").waiters, 0);
}

static void test_posix(void **state)
{
	struct locktable *t = *state;
	struct sess a = open_s(t, 1, 1, "a", 5000);
	struct sess b = open_s(t, 2, 1, "b", 5000);
	struct sess c = open_s(t, 3, 1, "c", 5000);
	const struct lt_result *r;

	/* no queueing behind a waiter: a compatible request is granted */
	acq(&a, LT_POSIX, "/r", 1, LT_SH, 0);
	assert_int_equal(acq(&b, LT_POSIX, "/r", 1, LT_EX, 1)->code,
			 LT_QUEUED);
	assert_int_equal(acq(&c, LT_POSIX, "/r", 1, LT_SH, 0)->code,
			 LT_GRANTED);
	/* an upgrade waits in place, keeping its shared lock */
	assert_int_equal(acq(&c, LT_POSIX, "/r", 1, LT_EX, 1)->code,
			 LT_QUEUED);
	assert_int_equal(q(t, LT_POSIX, "/r").holders, 2);
	r = rel_vv(&a, LT_POSIX, "/r", 1, NULL);
	/* b is first in the queue but does not fit (c's SH); c does */
	assert_int_equal(r->ngrants, 1);
	assert_int_equal(r->grants[0].session, c.id);
	assert_int_equal(r->grants[0].mode, LT_EX);
	assert_int_equal(q(t, LT_POSIX, "/r").mode, LT_EX);
	r = rel_vv(&c, LT_POSIX, "/r", 1, NULL);
	assert_int_equal(r->ngrants, 1);
	assert_int_equal(r->grants[0].session, b.id);
	/* deadlock across hosts: b holds /r, a holds /s, a waits for /r,
	 * b asking for /s would close the cycle */
	acq(&a, LT_POSIX, "/s", 1, LT_EX, 0);
	assert_int_equal(acq(&a, LT_POSIX, "/r", 1, LT_EX, 1)->code,
			 LT_QUEUED);
	assert_int_equal(acq(&b, LT_POSIX, "/s", 1, LT_EX, 1)->code,
			 LT_DEADLK);
	/* the same owner number on another host is another owner */
	assert_int_equal(acq(&c, LT_POSIX, "/s", 1, LT_EX, 1)->code,
			 LT_QUEUED);
	/* flock has no deadlock check */
	acq(&a, LT_FLOCK, "/s", 1, LT_EX, 0);
	acq(&b, LT_FLOCK, "/r", 1, LT_EX, 0);
	assert_int_equal(acq(&a, LT_FLOCK, "/r", 1, LT_EX, 1)->code,
			 LT_QUEUED);
	assert_int_equal(acq(&b, LT_FLOCK, "/s", 1, LT_EX, 1)->code,
			 LT_QUEUED);
}

static void test_limits(void **state)
{
	struct lt_limits lim = { 2, 2, 3, 1, 0 };
	struct locktable *t = lt_new(&lim);
	struct sess a = open_s(t, 1, 1, "a", 5000);
	struct sess b = open_s(t, 2, 1, "b", 5000);
	struct lt_cmd o = { .type = LT_OPEN_SESSION, .seq = 1, .node = 3,
			    .nonce = 1, .name = "c", .namelen = 1 };
	void *img0, *img1;
	size_t n0, n1;

	(void)state;
	assert_int_equal(apply_cmd(t, &o)->code, LT_NOLCK);
	assert_int_equal(acq(&a, LT_FLOCK, "/1", 1, LT_SH, 0)->code,
			 LT_GRANTED);
	assert_int_equal(acq(&a, LT_FLOCK, "/2", 1, LT_SH, 0)->code,
			 LT_GRANTED);
	/* max_locks 2 */
	assert_int_equal(acq(&a, LT_FLOCK, "/3", 1, LT_SH, 0)->code,
			 LT_NOLCK);
	/* max_holders 3 */
	assert_int_equal(acq(&b, LT_FLOCK, "/1", 1, LT_SH, 0)->code,
			 LT_GRANTED);
	encode(t, &img0, &n0);
	assert_int_equal(acq(&b, LT_FLOCK, "/2", 1, LT_SH, 0)->code,
			 LT_NOLCK);
	/* a refusal changes nothing but the session's record and clock */
	assert_int_equal(acq(&b, LT_FLOCK, "/2", 2, LT_EX, 1)->code,
			 LT_QUEUED);
	/* max_waiters 1 */
	assert_int_equal(acq(&b, LT_FLOCK, "/1", 3, LT_EX, 1)->code,
			 LT_NOLCK);
	encode(t, &img1, &n1);
	assert_true(n1 > n0);  /* only the one waiter was added */
	free(img0);
	free(img1);
	/* a restore adopts the image's limits */
	{
		struct locktable *c = clone_table(t);
		struct sess a2 = { c, a.id, a.seq };

		assert_int_equal(acq(&a2, LT_FLOCK, "/3", 1, LT_SH, 0)->code,
				 LT_NOLCK);
		lt_free(&c);
	}
	lt_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_exclusive),
		T(test_shared),
		T(test_conversion),
		cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expire_close, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_idempotent, setup,
						teardown),
		cmocka_unit_test(test_cmd_roundtrip),
		T(test_malformed),
		cmocka_unit_test(test_snapshot_roundtrip),
		cmocka_unit_test(test_snapshot_corrupt),
		cmocka_unit_test(test_handover_vv),
		cmocka_unit_test_setup_teardown(test_posix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_posix_downgrade, setup,
						teardown),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
