/*
 * wire.h — the replicator's messages: encoding and strict decoding.
 *
 * Every message is one ZeroMQ frame (a ROUTER adds the peer's routing
 * id in front). Little-endian throughout. A 32-byte header:
 *
 *   0  u32 magic  "SFR1" (0x31524653)
 *   4  u8  type   (enum wire_type)
 *   5  u8  flags  (WIRE_F_*)
 *   6  u16 zero
 *   8  u64 node   the sender's node id (never 0)
 *  16  u64 session  random per replicator start; a HELLO opens it
 *  24  u64 seq    per (link, session), grows by one per message: a
 *                 message at or below the last seen is a replay
 *
 * Bodies:
 *   HELLO     u8 name_len, name, u32 n, n x (u64 origin, u64 seq)
 *             the sender's node name and watermarks: "send me what
 *             I lack". WIRE_F_REPLY asks for a HELLO back.
 *   CHANGES   u32 epoch, u64 prev, u64 end, u32 n,
 *             n x (u64 sseq, u32 len, change)
 *             binlog entries in the sender's order; `change` is
 *             store_change_encode's form; sseq is the sender's binlog
 *             seq, end the last one the sender looked at for this
 *             message (entries the receiver holds are left out): what
 *             ACK counts. prev is the previous message's end in this
 *             epoch: a receiver takes a message only if it follows the
 *             last one it took (no gap), or if it carries WIRE_F_FIRST,
 *             which starts an epoch (after a HELLO, a rewind or a
 *             snapshot). Ends at a commit-group boundary: the last change
 *             lacks STORE_CHANGE_MORE.
 *   ACK       u32 epoch, u64 upto, u64 pause_ms, u32 n, n x (origin, seq)
 *             every sender entry up to `upto` is committed here (or was
 *             not needed); the receiver's watermarks. WIRE_F_NACK: the
 *             stream stopped after `upto` (a held or refused change):
 *             start epoch `epoch` from there after pause_ms.
 *   HEARTBEAT u64 behind: entries of the sender's binlog it has not yet
 *             seen acknowledged (or left out) for the receiver: its lag
 *   SNAP_REQ  (empty) the receiver needs a full snapshot
 *   SNAP_BEGIN u64 snap, u32 n, n x (origin, seq): the snapshot's
 *             watermarks
 *   SNAP_DATA u64 snap, u64 chunk, u32 n,
 *             n x (u16 path_len, path, u32 len, rec): records in the
 *             store's key order; chunks are numbered from 1 and a
 *             receiver takes only the next one (a lost chunk would
 *             otherwise read as records deleted at the sender)
 *   SNAP_END  u64 snap, u64 records, u64 chunks
 *   SNAP_ACK  u64 snap, u64 chunks received and committed
 *
 * Limits: a message is at most WIRE_MAX bytes; at most STORE_VV_MAX
 * watermark entries; names up to 63 bytes. Decoders check every length
 * and return -EPROTO for anything else; nothing they return points
 * outside the message.
 */
#ifndef STATEFS_WIRE_H
#define STATEFS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define WIRE_MAGIC 0x31524653u
#define WIRE_HDR_LEN 32
#define WIRE_MAX (64u << 20)
#define WIRE_NAME_MAX 63

enum wire_type {
	WIRE_HELLO = 1,
	WIRE_CHANGES = 2,
	WIRE_ACK = 3,
	WIRE_HEARTBEAT = 4,
	WIRE_SNAP_REQ = 5,
	WIRE_SNAP_BEGIN = 6,
	WIRE_SNAP_DATA = 7,
	WIRE_SNAP_END = 8,
	WIRE_SNAP_ACK = 9,
	WIRE_TYPE_MAX = 9,
};

#define WIRE_F_REPLY 0x1u
#define WIRE_F_NACK 0x2u
#define WIRE_F_FIRST 0x4u

struct wire_hdr {
	enum wire_type type;
	unsigned flags;
	uint64_t node, session, seq;
};

/* A growing output buffer. */
struct wbuf {
	unsigned char *p;
	size_t len, cap;
	int err; /* -ENOMEM or -EMSGSIZE once; later puts do nothing */
};
void wbuf_reset(struct wbuf *b);
void wbuf_free(struct wbuf *b);
void wbuf_hdr(struct wbuf *b, const struct wire_hdr *h);
void wbuf_u8(struct wbuf *b, uint8_t v);
void wbuf_u16(struct wbuf *b, uint16_t v);
void wbuf_u32(struct wbuf *b, uint32_t v);
void wbuf_u64(struct wbuf *b, uint64_t v);
void wbuf_bytes(struct wbuf *b, const void *p, size_t n);
/* Overwrite a u32 written earlier at offset off (counts). */
void wbuf_set_u32(struct wbuf *b, size_t off, uint32_t v);
/* One change in CHANGES form: u64 sseq, u32 len, encoded change. */
void wbuf_change(struct wbuf *b, uint64_t sseq, const struct store_change *c);

/* A watermark list. */
struct wire_wm {
	unsigned n;
	struct store_vv_entry e[STORE_VV_MAX];
};
void wbuf_wm(struct wbuf *b, const struct wire_wm *wm);

/* A reader over a received message. */
struct rbuf {
	const unsigned char *p;
	size_t len, off;
	int err; /* -EPROTO once a read ran past the end */
};
void rbuf_init(struct rbuf *r, const void *p, size_t len);
int wire_hdr_decode(struct rbuf *r, struct wire_hdr *h);
uint8_t rbuf_u8(struct rbuf *r);
uint16_t rbuf_u16(struct rbuf *r);
uint32_t rbuf_u32(struct rbuf *r);
uint64_t rbuf_u64(struct rbuf *r);
const void *rbuf_bytes(struct rbuf *r, size_t n);
int rbuf_wm(struct rbuf *r, struct wire_wm *wm);
/* 0 when exactly everything was read and nothing failed, else -EPROTO. */
int rbuf_end(const struct rbuf *r);

/* Message bodies, decoded after the header. */
struct wire_hello {
	char name[WIRE_NAME_MAX + 1];
	struct wire_wm wm;
};
int wire_hello_decode(struct rbuf *r, struct wire_hello *h);

/* CHANGES: wire_changes_decode checks the whole message (every change
 * decodes with store_change_decode, the last one ends a group) and
 * leaves the reader at the first change; wire_change_next then gives
 * them in order. */
struct wire_changes {
	uint32_t epoch, n;
	uint64_t prev, end;
	struct rbuf r; /* at the first change */
};
int wire_changes_decode(struct rbuf *r, struct wire_changes *c);
int wire_change_next(struct wire_changes *c, uint64_t *sseq,
		     struct store_change *ch);

struct wire_ack {
	uint32_t epoch;
	uint64_t upto, pause_ms;
	struct wire_wm wm;
};
int wire_ack_decode(struct rbuf *r, struct wire_ack *a);

/* SNAP_DATA: checked whole, then records one by one. */
struct wire_snap_data {
	uint64_t snap, chunk;
	uint32_t n;
	struct rbuf r;
};
int wire_snap_data_decode(struct rbuf *r, struct wire_snap_data *d);
int wire_snap_rec_next(struct wire_snap_data *d, const char **path,
		       size_t *path_len, const void **rec, size_t *rec_len);

/* A whole message: header and body checked. For the fuzzer and for
 * the receive path's first look. */
int wire_check(const void *p, size_t len, struct wire_hdr *h);

#endif
