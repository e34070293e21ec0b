/*
 * raftguard.h — a guard around a struct raft_io against a libraft 0.15
 * safety bug: a leader can commit an entry that is not on a majority.
 *
 * The bug. A follower answers an AppendEntries whose entries it already
 * has (a heartbeat is the common case) at once, with last_log_index =
 * its last stored index. Entries it holds beyond prev_log_index +
 * n_entries were not checked against the leader's log: they may be
 * leftovers of an older term. The leader clamps the answer only to its
 * own last index and takes it as the follower's match index, so it
 * counts the follower for entries it does not have and commits them.
 * Seen under raft/fixture.h (tests/unit/test_lockraft.c --no-guard
 * --seed 47): a leader of term 7 committed and applied 173..180 counting
 * a follower whose 173..181 were of term 6; that follower then won term
 * 8 and replaced them, the old leader stopped with "new index conflicts
 * with committed entry", and clients had been told of results no other
 * replica has: for locks, a false grant. canonical/raft's last release
 * has the same code (recv_append_entries.c, replication.c).
 *
 * The guard. It interposes on the io's start (to see incoming messages)
 * and send: while the follower is handling an AppendEntries, the reply
 * it sends synchronously to that leader says at most prev_log_index +
 * n_entries, which the request proved. Replies sent later, after a disk
 * write, are left alone: by then conflicting entries were truncated.
 *
 * A second bug, a stall. A follower that has a newer snapshot than the
 * one the leader sends it answers the InstallSnapshot at once, "done",
 * with the leader's snapshot index. The leader then probes from the
 * entry after it, which the follower compacted away: the follower
 * rejects every such AppendEntries ("no entry at index"), the leader
 * probes lower until it sends its snapshot again, and so on, until the
 * leader takes a snapshot newer than the follower's (8,192 entries
 * later in locksvc.c; with no new entries, never). The follower's table
 * is behind the log all that time. Seen under raft/fixture.h
 * (test_lockraft --seeds 5000: seed 3090, 5 voters).
 *
 * The guard, second part. While the follower handles an InstallSnapshot,
 * the reply it sends synchronously to that leader, if it echoes the
 * leader's index and the follower's own snapshot is newer and committed,
 * says the follower's snapshot index instead. Entries up to the
 * follower's commit index are the leader's own (Leader Completeness),
 * so claiming them is true; the leader probes from there and matches.
 *
 * Nothing else changes; a correct libraft makes the guard a no-op.
 *
 * Use: raftguard_wrap(io) after the io is initialised and before
 * raft_start (the fixture: after raft_fixture_grow); raftguard_unwrap(io)
 * after raft_close has completed. One thread (the raft loop). At most
 * RAFTGUARD_MAX ios at a time.
 */
#ifndef STATEFS_REPL_RAFTGUARD_H
#define STATEFS_REPL_RAFTGUARD_H

#include <stdint.h>

#include <raft.h>

#define RAFTGUARD_MAX 16

/* 0, or -EBUSY (already wrapped), -ENOSPC (RAFTGUARD_MAX reached). */
int raftguard_wrap(struct raft_io *io);
void raftguard_unwrap(struct raft_io *io);
/* Replies the guard clamped (all ios): each one a commit it prevented
 * from counting entries the follower did not prove it had. */
uint64_t raftguard_clamped(void);
/* Replies the guard raised (all ios): each one a stall it ended. */
uint64_t raftguard_raised(void);

#endif
