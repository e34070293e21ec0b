/*
 * repl.h — statefs-repl's parts, shared by the files of repl/ only.
 *
 * One process per store. One thread runs everything that touches a
 * ZeroMQ socket (main.c's loop: zmq_poll over the listening ROUTER, one
 * DEALER per peer we dial and an inproc socket), two more only wait:
 * the waker (store_wait on the binlog, then a byte to the loop: a local
 * commit reaches the wire without a polling interval) and the ZAP
 * handler (zap.c: CURVE keys against the allowlist). With [locks], the
 * lock service runs on a thread of its own (locksvc.h) with its own
 * sockets; the loop only reads its figures for the status file.
 *
 * Links. Each node binds one ROUTER and dials, with one DEALER each,
 * the peers its config gives an address. Our stream of changes to a
 * peer goes over our DEALER when we dial it, else over our ROUTER to
 * the connection it dialled; replies (ACK, SNAP_ACK, HELLO back) go
 * back on the link the message came from. Both ends decide from their
 * own config, so the two streams of a pair never depend on agreeing.
 *
 * The stream to a peer (peer.c), after it said HELLO with its
 * watermarks: binlog entries in order from the start of the binlog,
 * leaving out what its watermarks (raised by everything it sends us)
 * say it holds; whole commit groups per message; at most WINDOW
 * messages unacknowledged. A NACK (it held a change stamped ahead of
 * its clock, or refused one) or silence rewinds to what it
 * acknowledged, under a new epoch: messages of an older epoch are
 * dropped by the receiver, so no origin's changes are ever applied out
 * of order. A peer whose watermarks lie below our binlog's horizon
 * (store_horizon), or that asks, gets a snapshot first.
 */
#ifndef STATEFS_REPL_H
#define STATEFS_REPL_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "common/config.h"
#include "repl/wire.h"
#include "store/store.h"

#define REPL_WINDOW 8            /* CHANGES messages in flight per peer */
#define REPL_MSG_BYTES (256u << 10) /* a message closes past this */
#define REPL_MSG_ENTRIES 4096
#define REPL_SNAP_WINDOW 4       /* SNAP_DATA chunks in flight */
#define REPL_SNAP_CHUNK (256u << 10)
#define REPL_RID_MAX 256

/* A link: our DEALER to the peer, or our ROUTER with its routing id. */
struct link {
	void *sock;
	unsigned char rid[REPL_RID_MAX];
	size_t rid_len;               /* 0 for a DEALER */
};

struct counters {
	uint64_t in, out, applied, duplicates, superseded, conflicts;
	uint64_t held, too_old, refused;
	uint64_t drop_malformed, drop_replayed, drop_session, drop_stale,
		 drop_unknown, drop_key, drop_blocked, drop_gap;
	uint64_t snaps_sent, snaps_received;
};

struct peer {
	struct config_peer cfg;       /* name, address, key from the config */
	uint64_t node;                /* from its HELLO; 0 before */
	struct link dl;               /* our DEALER (dl.sock NULL: we don't dial) */
	struct link rl;               /* its connection to our ROUTER, if any */
	int64_t last_contact, last_sent, hello_sent;
	int up;                       /* HELLO received and not timed out */
	int blocked;                  /* cut off by repl.block (a fault point) */
	uint64_t their_session;
	uint64_t their_seq[2], out_seq[2]; /* message numbers: [0] on the
					    * DEALER, [1] on the ROUTER */
	/* our stream to it */
	struct wire_wm wm;            /* what it holds */
	struct wire_wm stored_wm;     /* its last acknowledgement, as stored */
	uint64_t cursor, acked;       /* our binlog seqs: sent, confirmed */
	uint64_t sent_end;            /* end of the last message sent */
	uint32_t epoch;
	int first;                    /* the next message starts the epoch */
	unsigned inflight;
	int64_t pause_until, last_ack;
	/* a snapshot to it */
	struct store_snap *snap;
	uint64_t snap_id, snap_chunks_sent, snap_chunks_acked, snap_records;
	int snap_wanted, snap_done_sending;
	/* its stream to us */
	uint32_t recv_epoch;
	int need_first;               /* take only an epoch's first message */
	int64_t nack_at;
	uint64_t recv_expect;         /* `end` of the last message taken */
	uint64_t recv_acked, their_behind;
	uint64_t rsnap_id, rsnap_chunks;
	struct wire_wm rsnap_wm;
	char *rsnap_last;             /* last path of the snapshot so far */
	int64_t snap_req_at;
	/* for status */
	uint64_t in, out, in_prev, out_prev;
	double in_rate, out_rate;
};

/* conflict.c: a value met before applying a change, and a hook to run
 * once the batch is committed. */
struct conflict_pre {
	int have;
	struct store_stat st;
	void *val;
	size_t len;
};

struct hook_job {
	char *path;
	void *winner, *loser;
	size_t wlen, llen;
	struct store_version wver;
};

struct refused_key {
	char key[CONFIG_KEY_LEN + 1];
	char address[64];
	uint64_t count;
	int64_t last;
};

struct locksvc;

struct repl {
	struct config cfg;
	struct store *store;
	struct locksvc *locks;        /* the mesh lock service ([locks]) */
	void *zctx, *router, *wake_rx;
	uint64_t session;
	uint64_t node;
	char node_name[64];
	struct peer *peers;           /* cfg.npeers of them, then accepted */
	size_t npeers;
	struct wbuf out;              /* the message being built */
	struct counters c;
	struct refused_key refused[16];
	pthread_mutex_t refused_lock;
	volatile int stop;
	int64_t status_at;
	int64_t block_mtime_ns, block_checked;
	struct hook_job hooks[64];
	size_t nhooks;
};

/* time */
int64_t repl_now_ms(void);

/* peer.c: the protocol */
int peer_send(struct repl *r, struct peer *p, const struct link *l);
void peer_hello(struct repl *r, struct peer *p, const struct link *l,
		unsigned flags);
void peer_receive(struct repl *r, const struct link *l, const void *msg,
		  size_t len, const char *user_id);
void peer_pump(struct repl *r);      /* send what can be sent */
void peer_tick(struct repl *r);      /* heartbeats, timeouts, retries */
struct link *peer_out_link(struct peer *p);

/* conflict.c: the [replication] conflict policy around each apply */
int conflict_before(struct repl *r, struct store_txn *t,
		    const struct store_change *c, struct conflict_pre *pre);
int conflict_after(struct repl *r, struct store_txn *t,
		   const struct store_change *c, int res,
		   const struct conflict_pre *pre);
void conflict_pre_free(struct conflict_pre *pre);
void conflict_run_hooks(struct repl *r);   /* after a commit */
void conflict_drop_hooks(struct repl *r);  /* after an abort */

/* zap.c: the CURVE allowlist; bound before any listening socket */
int zap_start(struct repl *r);
void zap_stop(struct repl *r);

/* status.c: STORE_DIR/repl.status, read by statefsctl and the mount */
void status_write(struct repl *r);
/* STORE_DIR/repl.block: peers to cut off (a fault point for tests) */
void status_read_block(struct repl *r);

#endif
