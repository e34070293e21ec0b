/*
 * locksvc.h — the mesh-wide lock service inside statefs-repl (SPEC §6):
 * the Raft lock table (lockfsm.h over locktable.h) on this member, and
 * the local socket its mounts lock through (common/lockproto.h).
 *
 * Threads. locksvc_start() starts one thread with its own libuv loop;
 * everything of the service runs there: libraft (raft_uv_init over the
 * raftnet transport, raftguard-wrapped, pre-vote on), raftnet's sockets
 * and datagrams, the control socket and its connections, the timers.
 * The only calls from other threads are locksvc_stats() (a copy taken
 * under a mutex, refreshed by the loop every tick) and locksvc_stop().
 * The store handle is shared with the replicator (store.h allows it);
 * the service only reads it (watermarks).
 *
 * Members. Every member of the lock cluster (config_lock_members: this
 * node and its [lock NAME] sections) runs the service. Raft id = 1 +
 * index of the name in byte order; the raft address is the name. Voters
 * (1, 3 or 5) are RAFT_VOTER, every other member RAFT_STANDBY: it keeps
 * the log and applies it, but does not vote. Every member bootstraps the
 * same configuration on an empty raft dir ([locks] dir, default
 * STORE_DIR/raft); raft_bootstrap refuses a dir with state, which is the
 * restart case.
 *
 * Sessions. One connection of a mount = up to 32 lock-table sessions
 * ("lanes"), each opened by OPEN_SESSION(store node id, random nonce,
 * lease, host name): lane 0 on HELLO, the others on first use. A
 * request goes to the lane its owner hashes to, so an owner's requests
 * (and the CANCEL or RELEASE of its ACQUIRE) stay in one session, in
 * order. The table applies a session's commands in sequence, so a
 * lane's requests are queued in arrival order; a lane proposes one at a
 * time, except behind releases (whose result nobody waits for: a cycle's
 * RELEASE and next LOCK share a round trip), while the lanes propose
 * side by side (8 lockers of one mount are not serialized on one Raft
 * round trip); a command without an outcome is proposed again with the
 * same bytes (same seq: the table answers the recorded result, or GAP
 * when one before it was lost: then all are proposed again, in order).
 * A lane's session idle for lease/4 sends KEEPALIVE.
 * A closed connection proposes CLOSE_SESSION for each of its lanes:
 * every lock of the mount is released at once. A session
 * the table forgot (NOT_FOUND: the lease expired while this host was cut
 * off) loses every lock of its lane: pending requests answer -ENOLCK (an
 * UNLOCK answers 0), one line is logged, and the next request opens a
 * new one. (All lanes of a host renew alike, so they expire together.)
 *
 * Proposals. The leader proposes with raft_apply, every command it has
 * at hand in one batch entry (lockfsm.h), one batch being committed at
 * a time. The batch waits, at most 1 ms after its first command came,
 * while a session the leader granted a lock within that time has not
 * sent its next command other than a RELEASE: a locker is back within
 * a millisecond with its unlock and next lock, and one entry for all
 * lockers costs the members far less than one per cohort (group
 * commit; locksvc.c has the figures). Any other member sends the
 * command's bytes to the leader as a raftnet datagram (PROPOSE; a
 * loop turn's datagrams to a member travel as one); the leader proposes them and, when it applies them, returns
 * a RESULT datagram to the member named as the command's origin in the
 * batch, and for every waiter a result granted it sends a
 * GRANT datagram to the member serving that waiter's store node. Every
 * member applies every entry, and the lockfsm apply hook completes the
 * local request of that (session, seq) and the grants of waiting
 * requests listed in the result: whichever comes first (a datagram, or
 * the member's own apply a heartbeat later) completes the request, the
 * other finds nothing to do.
 *
 * Grants and the data handover. A grant (immediate, or of a waiter) is
 * answered only once this host's store has applied the grant's version
 * vector: every (node, seq) at or below the store's watermark of that
 * node (checked when the grant arrives, then every 2 ms while it waits;
 * one line is logged if it waits 5 s, and it keeps waiting). UNLOCK and
 * RELEASE carry the store's version vector read when the message
 * arrives (the mount committed its writes before it sent it).
 *
 * Reachability. This member is cut off when it knows no leader, has not
 * heard from the leader within twice the election timeout, or is the
 * leader and has not heard from a majority of voters within it. While cut off a
 * LOCK with wait=0 answers -EWOULDBLOCK at once (never a false grant);
 * one with wait=1 stays queued; a QUERY answers from the local table. A
 * wait=0 request already proposed keeps waiting for its outcome
 * (answering it would leak a grant the table may hold).
 *
 * Cancel. CANCEL answers the LOCK -EINTR at once, also while cut off,
 * and the service undoes what the table may still do for it: a proposed
 * ACQUIRE that turns out QUEUED is cancelled, one granted meanwhile is
 * released (unless the mount asked for that lock again). A grant that
 * was already waiting for the store stands (the answer is 0).
 *
 * Reads. QUERY answers from this member's table: a follower's may lag
 * the leader's by a heartbeat. It does wait until this member has
 * applied every entry whose outcome it already answered (RESULT and
 * GRANT carry the entry's index), so a mount reads its own locks back.
 *
 * Closing. A connection that closes first releases, with the store's
 * version vector, every lock this member's table shows its session
 * holding (a mount that died did not unlock: the next holder still waits
 * for its last writes), then proposes CLOSE_SESSION.
 *
 * Leases. Only the leader expires sessions: every lease/4 it proposes
 * EXPIRE(session, its renewal stamp) for every session whose stamp is
 * more than its lease behind the leader's wall clock, and only once it
 * has led for a full lease (hosts that renewed through the old leader
 * need time to find it). The table applies EXPIRE only if the stamp is
 * unchanged and the command's `now` is past stamp + lease.
 *
 * Clocks. A command's `now` is the proposer's CLOCK_REALTIME in ms, set
 * once so that a retry carries the same bytes; the table's clock is the
 * maximum `now` seen. A proposer whose clock runs D ms ahead moves every
 * renewal stamp D ms forward (sessions live D ms longer); a leader whose
 * clock runs ahead expires sessions up to D ms early. The store assumes
 * clocks within max_offset (default 500 ms) of each other, well below
 * the lease (default 5 s).
 *
 * Errors. A lock service that cannot start (the raft dir cannot be
 * created or is corrupt, the lock endpoint cannot be bound) logs one
 * error line with the reason and runs in the "failed" role: the
 * replicator keeps replicating data, mounts still connect (HELLO is
 * answered) and every LOCK and QUERY answers -ENOLCK, so a mount fails
 * lock requests loudly instead of granting what no one else sees. A
 * member whose config disagrees (another cluster id) has its frames
 * dropped by raftnet, which logs it; the status shows the drop counters
 * and the member stays cut off.
 *
 * Fault point (tests). With STATEFS_FAULT_LOCK_DROP=N (permille) in its
 * environment the service drops that share of the messages it sends to
 * other members (PROPOSE, RESULT, GRANT), at random, and says so in one
 * line at start. Raft's own traffic is untouched: this is the loss the
 * retries and the GAP resends must cover (tests/integration/
 * lock_mesh_loss.sh). lock_fault_drops counts them, lock_gaps the GAP
 * answers this member had, lock_resends the ops it proposed again.
 *
 * Caveats
 *   - A new leader does not know which member serves which store node
 *     until those members forward a proposal (keepalives do, every
 *     lease/4): until then their waiters learn of grants from their own
 *     apply, a heartbeat later.
 *   - The control socket is created only with [locks]; without it the
 *     mount keeps its local lock manager.
 *   - A member that restarts loses its mounts' connections and so their
 *     sessions; the leader expires them after the lease.
 */
#ifndef STATEFS_REPL_LOCKSVC_H
#define STATEFS_REPL_LOCKSVC_H

#include <stdint.h>

#include "common/config.h"
#include "store/store.h"

struct locksvc;

struct locksvc_stats {
	char role[16];        /* leader follower standby candidate cut-off
			       * failed starting */
	char leader[64];      /* "" when none is known */
	uint64_t term, last_index;
	uint64_t commit_ms;   /* EWMA of our proposals' commit latency */
	int reachable;
	/* the table as applied here (mesh-wide figures) */
	uint64_t sessions, held_excl, held_shared, waiters;
	uint64_t grants, releases, contentions, waits;
	uint64_t orphans_expired;
	/* this member's mounts: holdings freed by a closed connection */
	uint64_t orphans_closed;
	/* this member */
	uint64_t connections;
	uint64_t gaps, resends, fault_drops;
	uint64_t dg_malformed; /* datagrams lockdg.h refused */
	uint64_t net_drop_cluster, net_drop_member, net_drop_key,
		 net_drop_malformed, net_msgs_dropped, net_drop_blocked;
};

/*
 * Start the service of cfg (cfg->lock_cluster non-empty) on store. cfg
 * is copied. 0, or a negative errno with a one-line reason in err when
 * the service cannot run at all (no memory, no thread, no control
 * socket); a raft or network failure does not fail the start (see
 * Errors above). *out is owned by the caller: locksvc_stop.
 */
int locksvc_start(const struct config *cfg, struct store *store,
		  struct locksvc **out, char *err, size_t errlen);

/* Close the connections (their sessions are then expired by the
 * leader), stop raft, join the thread, free. *sp becomes NULL. */
void locksvc_stop(struct locksvc **sp);

/* A copy of the figures of the last tick (any thread). */
void locksvc_stats(struct locksvc *s, struct locksvc_stats *out);

#endif
