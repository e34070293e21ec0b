/*
 * lockdg.h — the datagrams the members of the lock service send each
 * other over raftnet (repl/locksvc.c): a member's proposals to the
 * leader, and the leader's outcomes and grants back. Pure encoding and
 * decoding: no raft, no sockets.
 *
 * Layout, little-endian; every message and frame a multiple of 8 bytes:
 *
 *   frame    u32 len, u32 0, len bytes, zeros up to a multiple of 8
 *   MULTI    u32 4, u32 n, then n frames, each one message below: what
 *            one turn of the sender's loop has for one member
 *   PROPOSE  u32 1, u32 n, then n frames, each an encoded struct lt_cmd
 *            (locktable.h): a unit, proposed whole or not at all
 *   RESULT   u32 2, u32 code, u64 session, seq, nonce, rsession, token,
 *            u32 dup, u32 alive, u32 vv.n, u32 0, u64 index,
 *            vv.n x (u64 node, u64 seq)
 *   GRANT    u32 3, u32 kind, u64 session, owner, seq, token, u32 mode,
 *            u32 vv.n, u64 index, vv.n x (u64 node, u64 seq)
 *
 * RESULT: the outcome of command (session, seq) (OPEN_SESSION: of
 * nonce) as the leader applied it: its lt_code, the session it opened
 * (rsession), the grant's token and version vector, whether it was a
 * retry (dup) and whether the session exists after it (alive). GRANT: a
 * waiter the leader's apply granted (lt_grant, without the path).
 * index: the raft index the receiver must have applied before it
 * answers a read (one past the leader's last applied).
 *
 * Decoding is strict: a length that is not exactly the message's, a
 * nonzero reserved word or padding, a code, kind, mode, dup or alive
 * out of range, a version vector longer than LT_VV_MAX or with nodes
 * not strictly increasing, a PROPOSE of no command or with one that
 * lt_cmd_decode refuses: -EPROTO, and the caller drops the datagram.
 * What decodes encodes back to the same bytes. Members are
 * authenticated (raftnet's CURVE allowlist); the strictness is against
 * a member of another version or a bug, never trusted to be absent.
 */
#ifndef STATEFS_REPL_LOCKDG_H
#define STATEFS_REPL_LOCKDG_H

#include <stddef.h>
#include <stdint.h>

#include "repl/locktable.h"

enum lockdg_type {
	LOCKDG_PROPOSE = 1,
	LOCKDG_RESULT = 2,
	LOCKDG_GRANT = 3,
	LOCKDG_MULTI = 4,
};

/* The longest RESULT or GRANT. */
#define LOCKDG_MSG_MAX (72 + 16 * LT_VV_MAX)

/* Frames being built: a MULTI datagram or a PROPOSE unit. */
struct lockdg_frames {
	unsigned char *p; /* malloc'd; the owner frees it */
	size_t len, cap;
	uint32_t n;
};

/* Append one frame holding a then b. 0 or -ENOMEM (f unchanged). */
int lockdg_frame_add(struct lockdg_frames *f, const void *a, size_t alen,
		     const void *b, size_t blen);

/* The frame at *off of p[0..len): 0 with *msg, *mlen set and *off moved
 * past it, or -EPROTO (nothing there, or malformed). */
int lockdg_frame_next(const unsigned char *p, size_t len, size_t *off,
		      const unsigned char **msg, size_t *mlen);

/* A MULTI datagram: its message count when its header and every frame
 * are well formed and fill it exactly, else -EPROTO. The messages are
 * then read with lockdg_frame_next from offset 8. */
int lockdg_multi_check(const unsigned char *p, size_t len);

struct lockdg_result {
	enum lt_code code;
	uint64_t session, seq, nonce, rsession, token;
	int dup, alive;
	uint64_t index;
	struct lt_vv vv;
};

/* One decoded message. PROPOSE's unit points into the datagram. */
struct lockdg_msg {
	enum lockdg_type type;
	/* PROPOSE: n commands framed in unit[0..unit_len); first decoded */
	const unsigned char *unit;
	size_t unit_len;
	uint32_t ncmds;
	struct lt_cmd first;
	/* RESULT */
	struct lockdg_result result;
	/* GRANT (grant.path NULL) */
	struct lt_grant grant;
	uint64_t index;
};

/* Encode into buf (LOCKDG_MSG_MAX bytes); the length. */
size_t lockdg_result_encode(unsigned char *buf, const struct lockdg_result *r);
size_t lockdg_grant_encode(unsigned char *buf, const struct lt_grant *g,
			   uint64_t index);
/* PROPOSE's 8-byte header; its n frames (lockdg_frame_add) follow. */
void lockdg_propose_header(unsigned char hdr[8], uint32_t n);

/* Decode one message (a frame of a MULTI). 0 or -EPROTO. */
int lockdg_decode(const unsigned char *p, size_t len, struct lockdg_msg *m);

#endif
