/*
 * fuzz_wire.c — libFuzzer target for the replicator's message decoders
 * (repl/wire.h): the bytes a peer, or anyone who reaches the port, puts
 * in a frame.
 *
 * An input is one frame. From a private exact-size copy (a read past
 * its end is an AddressSanitizer report):
 *
 *   1. wire_check. It must return 0 or -EPROTO, nothing else.
 *   2. Every body decoder on the bytes after a header that decodes,
 *      whatever the type says (wire_hello_decode, wire_changes_decode
 *      then wire_change_next for every change, wire_ack_decode,
 *      wire_snap_data_decode then wire_snap_rec_next for every record,
 *      rbuf_wm): each returns 0 or -EPROTO, and what an accepted one
 *      gives points inside the frame (paths, records, changes), with
 *      counts that the frame can hold.
 *   3. A frame wire_check accepts: ws_reencode (tests/fuzz/wire_samples.c)
 *      decodes it as a receiver does and encodes it again with wire.h's
 *      encoders; the result must be the very same bytes (a strict
 *      decoder has one reading of each message), and re-checking them
 *      must give the same header.
 *
 * What fails: a crash, a sanitizer report, a leak, a result outside
 * {0, -EPROTO}, a pointer outside the frame, a round trip to other
 * bytes. What does not: a frame that is refused.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "repl/wire.h"
#include "tests/fuzz/wire_samples.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void __attribute__((noreturn, format(printf, 1, 2)))
bug(const char *fmt, ...);

static void bug(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_wire: BUG: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

static const unsigned char *base;
static size_t base_len;

static void in_frame(const void *p, size_t n, const char *what)
{
	const unsigned char *q = p;

	if (!q || q < base || q > base + base_len ||
	    n > (size_t)(base + base_len - q))
		bug("%s points outside the frame", what);
}

static void rc_ok(int rc, const char *what)
{
	if (rc != 0 && rc != -EPROTO)
		bug("%s returned %d, not 0 or -EPROTO", what, rc);
}

/* Every decoder on the body at r (a copy each). */
static void every_decoder(const struct rbuf *body)
{
	struct rbuf r;
	struct wire_hello hello;
	struct wire_changes c;
	struct wire_ack a;
	struct wire_snap_data d;
	struct wire_wm wm;
	int rc;
	uint32_t i;

	r = *body;
	rc = wire_hello_decode(&r, &hello);
	rc_ok(rc, "wire_hello_decode");
	if (!rc && (strlen(hello.name) == 0 || strlen(hello.name) > WIRE_NAME_MAX ||
		    hello.wm.n > STORE_VV_MAX))
		bug("wire_hello_decode accepted a name of %zu bytes, %u marks",
		    strlen(hello.name), hello.wm.n);

	r = *body;
	rc = wire_changes_decode(&r, &c);
	rc_ok(rc, "wire_changes_decode");
	if (!rc) {
		struct store_change ch = { 0 };
		uint64_t sseq, prev = 0;

		if (c.n == 0 || (size_t)c.n > base_len / 12)
			bug("wire_changes_decode accepted %u changes", c.n);
		for (i = 0; i < c.n; i++) {
			rc = wire_change_next(&c, &sseq, &ch);
			if (rc)
				bug("change %u of an accepted CHANGES: %d", i, rc);
			in_frame(ch.path, ch.path_len, "a change's path");
			in_frame(ch.rec, ch.rec_len, "a change's record");
			if (sseq <= prev || sseq > c.end)
				bug("change %u: sseq out of order", i);
			prev = sseq;
		}
		if (ch.flags & STORE_CHANGE_MORE)
			bug("an accepted CHANGES ends inside a commit group");
		if (rbuf_end(&c.r))
			bug("an accepted CHANGES has bytes after its changes");
	}

	r = *body;
	rc = wire_ack_decode(&r, &a);
	rc_ok(rc, "wire_ack_decode");
	if (!rc && (a.wm.n > STORE_VV_MAX || a.pause_ms > 3600 * 1000))
		bug("wire_ack_decode accepted %u marks, pause %llu", a.wm.n,
		    (unsigned long long)a.pause_ms);

	r = *body;
	rc = wire_snap_data_decode(&r, &d);
	rc_ok(rc, "wire_snap_data_decode");
	if (!rc) {
		const char *path;
		const void *rec;
		size_t pl, rl;

		if ((size_t)d.n > base_len / 6)
			bug("wire_snap_data_decode accepted %u records", d.n);
		for (i = 0; i < d.n; i++) {
			rc = wire_snap_rec_next(&d, &path, &pl, &rec, &rl);
			if (rc)
				bug("record %u of an accepted SNAP_DATA: %d", i, rc);
			in_frame(path, pl, "a record's path");
			in_frame(rec, rl, "a record");
			if (pl == 0 || path[0] != '/' || memchr(path, '\0', pl))
				bug("record %u: a bad path accepted", i);
		}
		if (rbuf_end(&d.r))
			bug("an accepted SNAP_DATA has bytes after its records");
	}

	r = *body;
	rc = rbuf_wm(&r, &wm);
	rc_ok(rc, "rbuf_wm");
	for (i = 0; !rc && i < wm.n; i++)
		if (wm.e[i].node == 0 || (i && wm.e[i].node <= wm.e[i - 1].node))
			bug("rbuf_wm accepted unsorted marks");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz_wire", LOG_FATAL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *buf = malloc(size ? size : 1);
	struct wire_hdr h, h2;
	struct wbuf b = { 0 };
	struct rbuf r;
	int rc;

	if (!buf)
		abort();
	memcpy(buf, data, size);
	base = buf;
	base_len = size;

	rc = wire_check(buf, size, &h);
	rc_ok(rc, "wire_check");

	rbuf_init(&r, buf, size);
	if (wire_hdr_decode(&r, &h2) == 0) {
		if (r.off != WIRE_HDR_LEN)
			bug("a header decoded from %zu bytes", r.off);
		every_decoder(&r);
	} else if (rc == 0) {
		bug("wire_check accepted a frame whose header does not decode");
	}

	if (rc == 0) {
		rc = ws_reencode(buf, size, &b);
		if (rc == -EFAULT)
			bug("an accepted frame does not decode whole, or a "
			    "decoder points outside it");
		if (rc)
			bug("ws_reencode: %d on a frame wire_check accepted", rc);
		if (b.len != size || memcmp(b.p, buf, size) != 0)
			bug("an accepted frame encodes back to other bytes "
			    "(%zu, was %zu)", b.len, size);
		if (wire_check(b.p, b.len, &h2) != 0 || h2.type != h.type ||
		    h2.seq != h.seq)
			bug("the re-encoded frame checks differently");
	}
	wbuf_free(&b);
	free(buf);
	return 0;
}
