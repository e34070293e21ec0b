/*
 * test_lockdg.c — the lock service's datagrams (repl/lockdg.h): every
 * message round-trips, every cut or bad field is refused, and a seeded
 * mutation run over a MULTI of all three kinds finds no reading outside
 * the datagram (run under ASan in the sanitized build), no result but 0
 * or -EPROTO, and no accepted message that encodes to other bytes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/le.h"
#include "repl/lockdg.h"

static const struct lt_vv vv3 = {3, {{2, 10}, {5, 1}, {9, 77}}};

static const struct lockdg_result res1 = {
	.code = LT_GRANTED, .session = 7, .seq = 12, .nonce = 0,
	.rsession = 0, .token = 41, .dup = 1, .alive = 1, .index = 900,
	.vv = {3, {{2, 10}, {5, 1}, {9, 77}}},
};

static struct lt_grant grant1(void)
{
	struct lt_grant g = {.session = 3, .owner = 0xabcdef, .seq = 8,
			     .kind = LT_POSIX, .mode = LT_SH, .token = 99};

	g.vv = vv3;
	return g;
}

/* An encoded command: ACQUIRE (first) or RELEASE, malloc'd. */
static unsigned char *cmd_bytes(int acquire, size_t *len)
{
	struct lt_cmd c = {.type = acquire ? LT_ACQUIRE : LT_RELEASE,
			   .session = 7, .seq = acquire ? 13 : 12, .now = 5000,
			   .kind = LT_FLOCK, .mode = acquire ? LT_EX : 0,
			   .wait = acquire, .path = "/locks/a", .pathlen = 8,
			   .owner = 55, .pid = acquire ? 1234 : 0};
	unsigned char *b;

	if (!acquire)
		c.vv = vv3;
	*len = lt_cmd_size(&c);
	b = malloc(*len);
	assert_non_null(b);
	assert_int_equal(lt_cmd_encode(&c, b, *len), 0);
	return b;
}

/* PROPOSE of RELEASE + ACQUIRE, in f (owner frees f->p). */
static void propose2(struct lockdg_frames *f)
{
	unsigned char hdr[8], *a, *b;
	size_t alen, blen;
	struct lockdg_frames u = {0};

	a = cmd_bytes(0, &alen);
	b = cmd_bytes(1, &blen);
	assert_int_equal(lockdg_frame_add(&u, a, alen, NULL, 0), 0);
	assert_int_equal(lockdg_frame_add(&u, b, blen, NULL, 0), 0);
	lockdg_propose_header(hdr, 2);
	memset(f, 0, sizeof(*f));
	f->p = malloc(8 + u.len);
	assert_non_null(f->p);
	memcpy(f->p, hdr, 8);
	memcpy(f->p + 8, u.p, u.len);
	f->len = 8 + u.len;
	free(u.p);
	free(a);
	free(b);
}

/* A MULTI as locksvc builds it: RESULT, GRANT, PROPOSE. */
static void multi3(struct lockdg_frames *m)
{
	unsigned char buf[LOCKDG_MSG_MAX];
	struct lockdg_frames p;
	struct lt_grant g = grant1();

	memset(m, 0, sizeof(*m));
	assert_int_equal(lockdg_frame_add(m, NULL, 0, NULL, 0), 0);
	assert_int_equal(lockdg_frame_add(m, buf,
					  lockdg_result_encode(buf, &res1),
					  NULL, 0), 0);
	assert_int_equal(lockdg_frame_add(m, buf,
					  lockdg_grant_encode(buf, &g, 901),
					  NULL, 0), 0);
	propose2(&p);
	assert_int_equal(lockdg_frame_add(m, p.p, p.len, NULL, 0), 0);
	free(p.p);
	le_put32(m->p, LOCKDG_MULTI);
	le_put32(m->p + 4, m->n - 1);
}

/* Decode an exact-size copy (a read past it is an ASan report). */
static int decode_copy(const unsigned char *p, size_t len,
		       struct lockdg_msg *m)
{
	unsigned char *c = malloc(len ? len : 1);
	int rc;

	assert_non_null(c);
	memcpy(c, p, len);
	rc = lockdg_decode(c, len, m);
	if (rc == 0 && m->type == LOCKDG_PROPOSE) /* points into c */
		m->unit = p + (m->unit - c);
	free(c);
	return rc;
}

static void test_result_roundtrip(void **state)
{
	unsigned char buf[LOCKDG_MSG_MAX], again[LOCKDG_MSG_MAX];
	size_t len = lockdg_result_encode(buf, &res1);
	struct lockdg_msg m;

	(void)state;
	assert_int_equal(len, 72 + 3 * 16);
	assert_int_equal(decode_copy(buf, len, &m), 0);
	assert_int_equal(m.type, LOCKDG_RESULT);
	assert_int_equal(m.result.code, LT_GRANTED);
	assert_int_equal(m.result.session, 7);
	assert_int_equal(m.result.seq, 12);
	assert_int_equal(m.result.token, 41);
	assert_int_equal(m.result.dup, 1);
	assert_int_equal(m.result.alive, 1);
	assert_int_equal(m.result.index, 900);
	assert_int_equal(m.result.vv.n, 3);
	assert_int_equal(m.result.vv.e[2].node, 9);
	assert_int_equal(m.result.vv.e[2].seq, 77);
	assert_int_equal(lockdg_result_encode(again, &m.result), len);
	assert_memory_equal(again, buf, len);
}

static void test_grant_roundtrip(void **state)
{
	unsigned char buf[LOCKDG_MSG_MAX], again[LOCKDG_MSG_MAX];
	struct lt_grant g = grant1();
	size_t len = lockdg_grant_encode(buf, &g, 901);
	struct lockdg_msg m;

	(void)state;
	assert_int_equal(len, 56 + 3 * 16);
	assert_int_equal(decode_copy(buf, len, &m), 0);
	assert_int_equal(m.type, LOCKDG_GRANT);
	assert_int_equal(m.grant.kind, LT_POSIX);
	assert_int_equal(m.grant.mode, LT_SH);
	assert_int_equal(m.grant.session, 3);
	assert_int_equal(m.grant.owner, 0xabcdef);
	assert_int_equal(m.grant.seq, 8);
	assert_int_equal(m.grant.token, 99);
	assert_null(m.grant.path);
	assert_int_equal(m.index, 901);
	assert_int_equal(m.grant.vv.n, 3);
	assert_int_equal(lockdg_grant_encode(again, &m.grant, m.index), len);
	assert_memory_equal(again, buf, len);
}

static void test_propose_and_multi(void **state)
{
	struct lockdg_frames p, mu;
	struct lockdg_msg m;
	const unsigned char *msg;
	size_t off = 8, mlen;
	uint32_t types[3] = {LOCKDG_RESULT, LOCKDG_GRANT, LOCKDG_PROPOSE};
	int i;

	(void)state;
	propose2(&p);
	assert_int_equal(decode_copy(p.p, p.len, &m), 0);
	assert_int_equal(m.type, LOCKDG_PROPOSE);
	assert_int_equal(m.ncmds, 2);
	assert_int_equal(m.first.type, LT_RELEASE);
	assert_int_equal(m.first.seq, 12);
	assert_int_equal(m.first.vv.n, 3);
	assert_ptr_equal(m.unit, p.p + 8);
	assert_int_equal(m.unit_len, p.len - 8);
	free(p.p);

	multi3(&mu);
	assert_int_equal(lockdg_multi_check(mu.p, mu.len), 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(lockdg_frame_next(mu.p, mu.len, &off, &msg,
						   &mlen), 0);
		assert_int_equal(decode_copy(msg, mlen, &m), 0);
		assert_int_equal(m.type, types[i]);
	}
	assert_int_equal(off, mu.len);
	assert_int_equal(lockdg_frame_next(mu.p, mu.len, &off, &msg, &mlen),
			 -EPROTO);
	/* trailing bytes after the n frames, or n one too small: refused */
	{
		unsigned char *c = calloc(1, mu.len + 8);

		assert_non_null(c);
		memcpy(c, mu.p, mu.len);
		assert_int_equal(lockdg_multi_check(c, mu.len + 8), -EPROTO);
		le_put32(c + 4, 2);
		assert_int_equal(lockdg_multi_check(c, mu.len), -EPROTO);
		free(c);
	}
	free(mu.p);
}

/* Every proper prefix of a message or a MULTI is refused. */
static void test_truncated(void **state)
{
	unsigned char buf[LOCKDG_MSG_MAX];
	struct lt_grant g = grant1();
	struct lockdg_frames p, mu;
	struct lockdg_msg m;
	size_t k, len;

	(void)state;
	len = lockdg_result_encode(buf, &res1);
	for (k = 0; k < len; k++)
		assert_int_equal(decode_copy(buf, k, &m), -EPROTO);
	len = lockdg_grant_encode(buf, &g, 1);
	for (k = 0; k < len; k++)
		assert_int_equal(decode_copy(buf, k, &m), -EPROTO);
	propose2(&p);
	for (k = 0; k < p.len; k++)
		assert_int_equal(decode_copy(p.p, k, &m), -EPROTO);
	free(p.p);
	multi3(&mu);
	for (k = 0; k < mu.len; k++) {
		unsigned char *c = malloc(k ? k : 1);

		memcpy(c, mu.p, k);
		assert_int_equal(lockdg_multi_check(c, k), -EPROTO);
		free(c);
	}
	free(mu.p);
}

/* Set the u32 at off of a copy of p, decode it: the result. */
static int with32(const unsigned char *p, size_t len, size_t off,
		  uint32_t v)
{
	unsigned char c[LOCKDG_MSG_MAX * 2];
	struct lockdg_msg m;

	assert_true(len <= sizeof(c));
	memcpy(c, p, len);
	le_put32(c + off, v);
	return decode_copy(c, len, &m);
}

static void test_bad_fields(void **state)
{
	unsigned char r[LOCKDG_MSG_MAX], g[LOCKDG_MSG_MAX], c[LOCKDG_MSG_MAX];
	struct lt_grant gr = grant1();
	size_t rlen = lockdg_result_encode(r, &res1);
	size_t glen = lockdg_grant_encode(g, &gr, 1);
	struct lockdg_frames p;
	struct lockdg_msg m;

	(void)state;
	assert_int_equal(with32(r, rlen, 0, 5), -EPROTO);         /* type */
	assert_int_equal(with32(r, rlen, 0, LOCKDG_MULTI), -EPROTO);
	assert_int_equal(with32(r, rlen, 4, LT_GAP), 0);          /* code */
	assert_int_equal(with32(r, rlen, 4, LT_GAP + 1), -EPROTO);
	assert_int_equal(with32(r, rlen, 48, 2), -EPROTO);        /* dup */
	assert_int_equal(with32(r, rlen, 52, 2), -EPROTO);        /* alive */
	assert_int_equal(with32(r, rlen, 56, 2), -EPROTO);        /* vv.n */
	assert_int_equal(with32(r, rlen, 56, 4), -EPROTO);
	assert_int_equal(with32(r, rlen, 60, 1), -EPROTO);        /* zero */
	assert_int_equal(with32(r, rlen, 72 + 16, 2), -EPROTO);   /* node order */
	assert_int_equal(with32(r, rlen, 72 + 16 + 8, 0), -EPROTO); /* seq 0 */
	assert_int_equal(with32(g, glen, 4, 2), -EPROTO);         /* kind */
	assert_int_equal(with32(g, glen, 40, LT_UNLOCKED), -EPROTO); /* mode */
	assert_int_equal(with32(g, glen, 40, 3), -EPROTO);
	assert_int_equal(with32(g, glen, 44, 0), -EPROTO);        /* vv.n */

	/* a vv as long as LT_VV_MAX fits; one more is refused (it would
	 * overrun struct lt_vv) */
	{
		struct lockdg_result big = res1;
		unsigned char r2[LOCKDG_MSG_MAX + 16];
		uint32_t i;

		big.vv.n = LT_VV_MAX;
		for (i = 0; i < LT_VV_MAX; i++) {
			big.vv.e[i].node = i + 1;
			big.vv.e[i].seq = 1;
		}
		rlen = lockdg_result_encode(r2, &big);
		assert_int_equal(decode_copy(r2, rlen, &m), 0);
		assert_int_equal(m.result.vv.n, LT_VV_MAX);
		le_put64(r2 + rlen, LT_VV_MAX + 1); /* one more pair */
		le_put64(r2 + rlen + 8, 1);
		le_put32(r2 + 56, LT_VV_MAX + 1);
		assert_int_equal(decode_copy(r2, rlen + 16, &m), -EPROTO);
	}

	propose2(&p);
	assert_true(p.len <= sizeof(c));
	assert_int_equal(with32(p.p, p.len, 4, 0), -EPROTO);  /* no command */
	assert_int_equal(with32(p.p, p.len, 4, 1), -EPROTO);  /* n too small */
	assert_int_equal(with32(p.p, p.len, 4, 3), -EPROTO);  /* n too large */
	assert_int_equal(with32(p.p, p.len, 12, 1), -EPROTO); /* frame's zero */
	/* the first command's type (byte 1): no such command */
	memcpy(c, p.p, p.len);
	c[16 + 1] = 0x7f;
	assert_int_equal(decode_copy(c, p.len, &m), -EPROTO);
	/* a frame claiming more than the datagram holds */
	memcpy(c, p.p, p.len);
	le_put32(c + 8, (uint32_t)p.len);
	assert_int_equal(decode_copy(c, p.len, &m), -EPROTO);
	free(p.p);
}

/* A frame's padding must be zeros. */
static void test_frame_padding(void **state)
{
	struct lockdg_frames f = {0};
	const unsigned char *msg;
	size_t off = 0, mlen;

	(void)state;
	assert_int_equal(lockdg_frame_add(&f, "abc", 3, "de", 2), 0);
	assert_int_equal(f.len, 16);
	assert_int_equal(f.n, 1);
	assert_int_equal(lockdg_frame_next(f.p, f.len, &off, &msg, &mlen), 0);
	assert_int_equal(mlen, 5);
	assert_memory_equal(msg, "abcde", 5);
	f.p[8 + 7] = 1;
	off = 0;
	assert_int_equal(lockdg_frame_next(f.p, f.len, &off, &msg, &mlen),
			 -EPROTO);
	assert_int_equal(off, 0);
	free(f.p);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Re-encode an accepted message: the same bytes. */
static void same_bytes(const unsigned char *p, size_t len,
		       const struct lockdg_msg *m)
{
	unsigned char buf[LOCKDG_MSG_MAX];
	size_t n;

	switch (m->type) {
	case LOCKDG_RESULT:
		n = lockdg_result_encode(buf, &m->result);
		break;
	case LOCKDG_GRANT:
		n = lockdg_grant_encode(buf, &m->grant, m->index);
		break;
	case LOCKDG_PROPOSE:
		lockdg_propose_header(buf, m->ncmds);
		assert_int_equal(8 + m->unit_len, len);
		assert_memory_equal(buf, p, 8);
		assert_ptr_equal(m->unit, p + 8);
		return;
	default:
		fail_msg("decoded type %u", m->type);
		return;
	}
	assert_int_equal(n, len);
	assert_memory_equal(buf, p, len);
}

static void test_mutations(void **state)
{
	struct lockdg_frames mu;
	unsigned long accepted = 0, msgs = 0, i;

	(void)state;
	multi3(&mu);
	for (i = 0; i < 200000; i++) {
		size_t len = mu.len, k, off = 8, mlen;
		unsigned char *c;
		const unsigned char *msg;
		struct lockdg_msg m;
		int n, j, rc;

		switch (next() % 4) {
		case 0: /* cut */
			len = next() % mu.len;
			break;
		case 1: /* grow by 8 zero bytes */
			len = mu.len + 8;
			break;
		default:
			break;
		}
		c = calloc(1, len ? len : 1);
		assert_non_null(c);
		memcpy(c, mu.p, len < mu.len ? len : mu.len);
		for (k = 1 + next() % 4; k > 0 && len; k--) {
			size_t at = next() % len;

			/* bias to the small numbers the fields hold */
			c[at] = next() % 2 ? (unsigned char)(next() % 8)
					   : (unsigned char)next();
		}
		n = lockdg_multi_check(c, len);
		assert_true(n == -EPROTO || n >= 0);
		if (n > 0)
			accepted++;
		for (j = 0; j < n; j++) {
			assert_int_equal(lockdg_frame_next(c, len, &off, &msg,
							   &mlen), 0);
			assert_true(msg >= c && msg + mlen <= c + len);
			/* an exact-size copy: an over-read into the next
			 * frame is an ASan report */
			rc = decode_copy(msg, mlen, &m);
			assert_true(rc == 0 || rc == -EPROTO);
			if (rc == 0) {
				msgs++;
				same_bytes(msg, mlen, &m);
			}
		}
		free(c);
	}
	free(mu.p);
	print_message("%lu of 200000 mutated datagrams accepted, "
		      "%lu messages decoded\n", accepted, msgs);
	/* the run reached the decoders, not only the MULTI check */
	assert_true(accepted > 1000);
	assert_true(msgs > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_result_roundtrip),
		cmocka_unit_test(test_grant_roundtrip),
		cmocka_unit_test(test_propose_and_multi),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_bad_fields),
		cmocka_unit_test(test_frame_padding),
		cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
