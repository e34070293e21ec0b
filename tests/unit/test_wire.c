/*
 * test_wire.c — the replicator's messages (repl/wire.h): every message
 * type round-trips through its decoder and wire.h's encoders to the
 * same bytes, and every malformed case of tests/fuzz/wire_samples.c is
 * refused with exactly -EPROTO by wire_check (the receive path's first
 * look) and by the body decoder of its type.
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

#include "repl/wire.h"
#include "tests/fuzz/wire_samples.h"

static struct ws_set set;

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	(void)state;
	return ws_make_all(tmp && *tmp ? tmp : "/tmp", &set) ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	ws_set_free(&set);
	return 0;
}

static const struct ws_msg *sample(const char *name)
{
	size_t i;

	for (i = 0; i < set.n; i++)
		if (strcmp(set.v[i].name, name) == 0)
			return &set.v[i];
	fail_msg("no sample %s", name);
	return NULL;
}

/* Every valid sample decodes and encodes back to its very bytes. */
static void test_roundtrip(void **state)
{
	struct wbuf b = { 0 };
	unsigned seen = 0;
	size_t i;

	(void)state;
	for (i = 0; i < set.n; i++) {
		const struct ws_msg *m = &set.v[i];
		struct wire_hdr h;

		if (!m->valid)
			continue;
		if (wire_check(m->p, m->len, &h) != 0)
			fail_msg("%s: wire_check refused a valid message", m->name);
		seen |= 1u << h.type;
		if (ws_reencode(m->p, m->len, &b) != 0)
			fail_msg("%s: does not decode whole", m->name);
		if (b.len != m->len || memcmp(b.p, m->p, m->len) != 0)
			fail_msg("%s: encodes back to other bytes (%zu, was %zu)",
				 m->name, b.len, m->len);
	}
	wbuf_free(&b);
	for (i = WIRE_HELLO; i <= WIRE_TYPE_MAX; i++)
		if (!(seen & (1u << i)))
			fail_msg("no valid sample of type %zu", i);
}

/* What a decoder gives of the samples is what was put in. */
static void test_fields(void **state)
{
	const struct ws_msg *m;
	struct wire_hdr h;
	struct rbuf r;
	struct wire_hello hello;
	struct wire_ack a;
	struct wire_changes c;
	struct store_change ch;
	uint64_t sseq, prev = 0;
	uint32_t i;

	(void)state;
	m = sample("hello");
	rbuf_init(&r, m->p, m->len);
	assert_int_equal(wire_hdr_decode(&r, &h), 0);
	assert_int_equal(h.type, WIRE_HELLO);
	assert_int_equal(h.flags, WIRE_F_REPLY);
	assert_true(h.node == 0x1122334455667788ull);
	assert_true(h.session == 0x0102030405060708ull);
	assert_int_equal(h.seq, 1);
	assert_int_equal(wire_hello_decode(&r, &hello), 0);
	assert_string_equal(hello.name, "n2");
	assert_int_equal(hello.wm.n, 1);

	m = sample("hello_max");
	rbuf_init(&r, m->p, m->len);
	assert_int_equal(wire_hdr_decode(&r, &h), 0);
	assert_int_equal(wire_hello_decode(&r, &hello), 0);
	assert_int_equal(strlen(hello.name), WIRE_NAME_MAX);
	assert_int_equal(hello.wm.n, STORE_VV_MAX);

	m = sample("ack_nack");
	rbuf_init(&r, m->p, m->len);
	assert_int_equal(wire_hdr_decode(&r, &h), 0);
	assert_int_equal(h.flags, WIRE_F_NACK);
	assert_int_equal(wire_ack_decode(&r, &a), 0);
	assert_int_equal(a.epoch, 4);
	assert_int_equal(a.upto, 41);
	assert_int_equal(a.pause_ms, 3600 * 1000);

	m = sample("changes_groups");
	rbuf_init(&r, m->p, m->len);
	assert_int_equal(wire_hdr_decode(&r, &h), 0);
	assert_int_equal(wire_changes_decode(&r, &c), 0);
	assert_int_equal(c.epoch, 7);
	assert_int_equal(c.n, 4);
	for (i = 0; i < c.n; i++) {
		assert_int_equal(wire_change_next(&c, &sseq, &ch), 0);
		assert_true(sseq > prev);
		prev = sseq;
		assert_int_equal(!!(ch.flags & STORE_CHANGE_MORE), i == 1 || i == 2);
		assert_int_equal(ch.writer, 0); /* wbuf_change: not sent */
	}
	assert_true(c.end == prev);
	assert_int_equal(rbuf_end(&c.r), 0);
}

/* The body decoder of a malformed message's type, from after the
 * header; 1 when the header alone is what is wrong. */
static int body_rc(const struct ws_msg *m)
{
	struct wire_hdr h;
	struct rbuf r;
	union {
		struct wire_hello hello;
		struct wire_changes c;
		struct wire_ack a;
		struct wire_snap_data d;
	} u;

	rbuf_init(&r, m->p, m->len);
	if (wire_hdr_decode(&r, &h))
		return 1;
	switch (h.type) {
	case WIRE_HELLO:
		return wire_hello_decode(&r, &u.hello);
	case WIRE_CHANGES:
		return wire_changes_decode(&r, &u.c);
	case WIRE_ACK:
		return wire_ack_decode(&r, &u.a);
	case WIRE_SNAP_DATA:
		return wire_snap_data_decode(&r, &u.d);
	default:
		return -EPROTO; /* checked by wire_check alone */
	}
}

static void test_rejects(void **state)
{
	struct wire_hdr h;
	size_t i, n = 0;

	(void)state;
	for (i = 0; i < set.n; i++) {
		const struct ws_msg *m = &set.v[i];
		int rc, brc;

		if (m->valid)
			continue;
		n++;
		rc = wire_check(m->p, m->len, &h);
		if (rc != -EPROTO)
			fail_msg("%s: wire_check gave %d, want -EPROTO", m->name, rc);
		brc = body_rc(m);
		if (brc != 1 && brc != -EPROTO)
			fail_msg("%s: its body decoder gave %d, want -EPROTO",
				 m->name, brc);
		if (strncmp(m->name, "hdr_", 4) == 0 || !strcmp(m->name, "empty")) {
			if (brc != 1)
				fail_msg("%s: the header decoded", m->name);
		} else if (brc == 1) {
			fail_msg("%s: the header was refused, not the body", m->name);
		}
	}
	assert_true(n >= 40);
	/* the cases the brief names, by name */
	assert_non_null(sample("hdr_truncated"));
	assert_non_null(sample("hdr_bad_magic"));
	assert_non_null(sample("hdr_version_2"));
	assert_non_null(sample("hdr_type_past_max"));
	assert_non_null(sample("changes_count_huge"));
	assert_non_null(sample("snap_data_count_huge"));
	assert_non_null(sample("changes_cut_group"));
}

/* A message longer than WIRE_MAX is refused before a byte is read, and
 * the encoder will not build one. */
static void test_too_big(void **state)
{
	const struct ws_msg *m = sample("heartbeat");
	unsigned char *big = calloc(1, (size_t)WIRE_MAX + 1);
	struct wire_hdr h;
	struct wbuf b = { 0 };

	(void)state;
	assert_non_null(big);
	memcpy(big, m->p, m->len);
	assert_int_equal(wire_check(big, m->len, &h), 0);
	assert_int_equal(wire_check(big, (size_t)WIRE_MAX + 1, &h), -EPROTO);
	free(big);
	wbuf_u64(&b, 1);
	wbuf_bytes(&b, NULL, WIRE_MAX);
	assert_int_equal(b.err, -EMSGSIZE);
	wbuf_u64(&b, 2); /* nothing more once failed */
	assert_int_equal(b.len, 8);
	wbuf_free(&b);
}

/* A truncation at every length of every valid sample is refused. */
static void test_every_cut(void **state)
{
	struct wire_hdr h;
	size_t i, cut;

	(void)state;
	for (i = 0; i < set.n; i++) {
		const struct ws_msg *m = &set.v[i];

		if (!m->valid)
			continue;
		for (cut = 0; cut < m->len; cut++) {
			unsigned char *p = malloc(cut ? cut : 1);

			assert_non_null(p);
			memcpy(p, m->p, cut);
			if (wire_check(p, cut, &h) != -EPROTO)
				fail_msg("%s cut at %zu: accepted", m->name, cut);
			free(p);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_every_cut),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
