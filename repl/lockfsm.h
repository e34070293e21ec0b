/*
 * lockfsm.h — the lock table (locktable.h) as libraft's state machine.
 *
 * One struct lockfsm per raft instance; lockfsm_init() fills its
 * struct raft_fsm (fsm version 1: raft owns the snapshot buffers and
 * frees them with raft_free). The same object serves the fixture tests
 * (raft/fixture.h) and the libuv service; everything runs on raft's loop
 * thread.
 *
 * apply always returns 0 (a non-zero return stalls libraft's apply loop
 * on that entry): a refused lock, a malformed or stale entry is a result
 * code. *result points to the table's struct lt_result, valid only
 * inside the raft_apply callback (libraft calls it synchronously from
 * apply, on the leader only; followers drop it). Copy what you need.
 *
 * snapshot encodes the whole table into one raft_malloc'd buffer;
 * restore decodes it and takes ownership of the buffer on success (as
 * libraft expects); on failure (RAFT_MALFORMED) the table is unchanged.
 *
 * Proposing: lockfsm_propose_buf() encodes a command into a raft_malloc'd
 * buffer whose length is a multiple of 8 (libraft 0.15 writes other
 * lengths and then corrupts or trims its log after a restart).
 *
 * Batches: one raft entry may carry many commands, each with the raft id
 * of the member that proposed it (its origin), applied one by one in
 * order; every raft entry costs a disk write and a message to every
 * member, so a leader under load puts every command it has at hand into
 * one entry (lockfsm_batch_*). Commands that must be decided together
 * (a lane's releases and the request behind them, locksvc.c) go into the
 * same batch, so raft commits all of them or none. Layout, little-endian:
 *
 *   u32 LOCKFSM_BATCH_MAGIC, u32 count,
 *   count x (u64 origin, u32 len, u32 0, len bytes of one command)
 *
 * A command's length is a multiple of 8, so every field stays aligned.
 * The magic's first byte is not LT_CMD_VERSION: a plain entry (one
 * command, origin 0) and a batch tell themselves apart. A batch whose
 * framing is bad is applied up to the bad part, which counts as one
 * malformed entry (the same on every member: nothing else is skipped).
 *
 * What the service around it must do (libraft 0.15; the tests do it):
 *   - wrap every raft_io with raftguard_wrap() before raft_start: without
 *     it a leader can commit entries that are not on a majority
 *     (raftguard.h);
 *   - enable pre-vote, and make every raft call on the loop thread;
 *   - on RAFT_LEADERSHIPLOST (or a lost leader) propose the same bytes
 *     again, at the new leader: the outcome is unknown and the session
 *     sequence makes the retry safe (locktable.h, Idempotency);
 *   - answer a read (lt_query) only after a raft_barrier of its own has
 *     completed on the leader: a new leader commits no entry of its
 *     term by itself, so its table may lag what the old one answered;
 *   - tell waiters of the grants listed in results, and after a leader
 *     change re-announce from lt_foreach: announcements are not state.
 *
 * The apply hook (lockfsm_set_hook): raft_apply's callback fires on the
 * leader only, but every member applies every entry. A service that
 * proposes through the leader from any member learns the outcome of its
 * own commands, and the grants of its waiting sessions, from its own
 * apply: the hook is called after every applied entry, on every member,
 * with the decoded command (NULL for a malformed entry) and its result.
 * Both are valid only during the call (the command points into raft's
 * buffer, the result into the table). After a snapshot is restored the
 * hook is called once with cmd and res NULL: entries were skipped, so
 * whatever the service waits for must be looked up in the table. The
 * hook must not call raft (it runs inside raft's apply loop).
 */
#ifndef STATEFS_REPL_LOCKFSM_H
#define STATEFS_REPL_LOCKFSM_H

#include <raft.h>

#include "repl/locktable.h"

/* cmd and res NULL: a snapshot replaced the table (see above). origin:
 * the raft id that proposed cmd (a batch's), 0 when not known. */
typedef void (*lockfsm_hook_fn)(void *arg, const struct lt_cmd *cmd,
				const struct lt_result *res, uint64_t origin);

struct lockfsm {
	struct raft_fsm fsm;
	struct locktable *table;
	uint64_t applied, malformed, snapshots, restores;
	lockfsm_hook_fn hook;  /* NULL: none */
	void *hook_arg;
};

/* 0, or -ENOMEM. limits NULL: the defaults. */
int lockfsm_init(struct lockfsm *lf, const struct lt_limits *limits);
void lockfsm_close(struct lockfsm *lf);

/* Call fn(arg, ...) after every apply and restore from now on; fn NULL
 * removes it. */
void lockfsm_set_hook(struct lockfsm *lf, lockfsm_hook_fn fn, void *arg);

/* The lockfsm behind an fsm filled by lockfsm_init. */
struct lockfsm *lockfsm_of(struct raft_fsm *fsm);

/* Encode c into buf->base (raft_malloc'd; raft_apply takes it). 0, or
 * -EINVAL (c invalid), -ENOMEM. */
int lockfsm_propose_buf(const struct lt_cmd *c, struct raft_buffer *buf);

/*
 * How long a leader waits for a follower to install a snapshot of the
 * table before it sends the snapshot again (raft_set_install_snapshot_
 * timeout). libraft's default is 30 s, and a snapshot lost on the way
 * (a stream that broke after libraft had written it) is noticed only
 * then: for 30 s the follower's table stays behind the log, its QUERYs
 * answer from it and, if it is a voter, the cluster has one voter less.
 * Seen under raft/fixture.h (test_lockraft --seeds 5000: seeds 2165 and
 * 3090). A table of 100,000 locks is a few MB, sent in well under 5 s on
 * any link a mesh runs on; if one is slower, the resend only costs the
 * bandwidth: the first install still completes and ends the wait.
 */
#define LOCKFSM_SNAPSHOT_RESEND_MS 5000

#define LOCKFSM_BATCH_MAGIC 0x48435442u /* "BTCH" */
#define LOCKFSM_BATCH_HDR 8
#define LOCKFSM_BATCH_SUB 16 /* before each command */

/* A batch being filled; zero it to start. */
struct lockfsm_batch {
	unsigned char *buf; /* raft_malloc'd */
	size_t len, cap;
	uint32_t n;
};

/* Append one encoded command (len a non-zero multiple of 8) proposed by
 * origin. 0, -EINVAL or -ENOMEM (the batch is unchanged). */
int lockfsm_batch_add(struct lockfsm_batch *b, uint64_t origin,
		      const void *cmd, size_t len);

/* Hand the batch to *buf for raft_apply (which then owns it) and leave
 * b empty. -ENOENT when b holds no command. */
int lockfsm_batch_take(struct lockfsm_batch *b, struct raft_buffer *buf);

void lockfsm_batch_free(struct lockfsm_batch *b);

#endif
