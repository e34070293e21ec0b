/*
 * wire_samples.h — replicator messages (repl/wire.h) built with wire.h's
 * own encoders, valid ones of every type and malformed ones each with
 * the defect named: the seeds of the wire fuzzer (gen_wire_corpus.c),
 * the cases of tests/unit/test_wire.c and the frames that
 * tests/integration/zmq_send.c throws at a running replicator.
 *
 * Changes and snapshot records are real: they come from a scratch
 * store's binlog and snapshot (ws_store_make), so that every CHANGES
 * and SNAP_DATA sample passes the store's own decoders.
 */
#ifndef STATEFS_WIRE_SAMPLES_H
#define STATEFS_WIRE_SAMPLES_H

#include <stddef.h>
#include <stdint.h>

#include "repl/wire.h"
#include "store/store.h"

/* Changes copied out of a store's binlog: each is its own malloc'd
 * encoding, and `c` points into it (valid until ws_changes_free). */
struct ws_change {
	uint64_t sseq;
	unsigned char *enc;
	size_t len;
	struct store_change c;
};
struct ws_changes {
	struct ws_change *v;
	size_t n;
};
/* Every binlog entry of s after `after` (at most max, 0: all). 0 or a
 * negative errno. */
int ws_changes_read(struct store *s, uint64_t after, size_t max,
		    struct ws_changes *out);
void ws_changes_free(struct ws_changes *cs);

/* One message, malloc'd bytes. */
struct ws_msg {
	char name[64];     /* file-name safe: "changes_cut_group" */
	unsigned char *p;
	size_t len;
	int valid;         /* 1: wire_check must accept it; 0: -EPROTO */
};
struct ws_set {
	struct ws_msg *v;
	size_t n;
};
void ws_set_free(struct ws_set *set);

/* Builders: header h (its type is set here), body from the arguments.
 * The CHANGES builder ends the message at the last change's sseq. */
void ws_hello(struct wbuf *b, struct wire_hdr h, const char *name,
	      const struct wire_wm *wm);
void ws_changes(struct wbuf *b, struct wire_hdr h, uint32_t epoch,
		const struct ws_change *v, size_t n);

/* Decode a whole message the way a receiver does (wire_check, then the
 * body decoder of its type and a walk over every change or record) and
 * encode what came out again into b with wire.h's encoders (changes
 * with store_change_encode, keeping what the sender put in them). 0 (b
 * holds the message again: a strict decoder gives back the very same
 * bytes), -EPROTO when wire_check refuses it, -EFAULT when a decoder
 * returned something that points outside the message or disagrees with
 * wire_check (a decoder bug). */
int ws_reencode(const void *msg, size_t len, struct wbuf *b);

/* The whole sample set: a scratch store under tmpdir (removed after),
 * the valid messages of every type, and the malformed ones. 0 or a
 * negative errno; messages the code below makes wrongly (a "valid" one
 * that wire_check refuses, a malformed one it accepts) are the caller's
 * to find: test_wire checks each. */
int ws_make_all(const char *tmpdir, struct ws_set *set);

#endif
