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
 */
#ifndef STATEFS_REPL_LOCKFSM_H
#define STATEFS_REPL_LOCKFSM_H

#include <raft.h>

#include "repl/locktable.h"

struct lockfsm {
	struct raft_fsm fsm;
	struct locktable *table;
	uint64_t applied, malformed, snapshots, restores;
};

/* 0, or -ENOMEM. limits NULL: the defaults. */
int lockfsm_init(struct lockfsm *lf, const struct lt_limits *limits);
void lockfsm_close(struct lockfsm *lf);

/* The lockfsm behind an fsm filled by lockfsm_init. */
struct lockfsm *lockfsm_of(struct raft_fsm *fsm);

/* Encode c into buf->base (raft_malloc'd; raft_apply takes it). 0, or
 * -EINVAL (c invalid), -ENOMEM. */
int lockfsm_propose_buf(const struct lt_cmd *c, struct raft_buffer *buf);

#endif
