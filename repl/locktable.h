/*
 * locktable.h — the replicated lock table of mesh-wide locks (SPEC §6).
 *
 * The table is a pure, deterministic state machine: no I/O, no clock, no
 * randomness, no dependence on addresses or hash order. Raft (libraft, see
 * lockfsm.h) puts the same commands in the same order on every voter;
 * applying them to equal tables gives equal tables, byte for byte
 * (lt_encode). Everything here runs on one thread (raft's loop).
 *
 * What it holds
 *
 *   session   one mount of one host: id (assigned by the table), the
 *             host's node id and name, a lease in ms, the time of the last
 *             renewal, the last applied client sequence and its result.
 *   lock      (kind, path): kind is flock or POSIX (separate namespaces,
 *             POSIX whole-file only); its holders (session, owner, pid,
 *             mode) in grant order, its waiters (session, owner, pid,
 *             mode, the ACQUIRE's seq) in arrival order, the last fencing
 *             token granted, and the handover version vector (below).
 *
 * Commands (lt_cmd; encoding below). Every command carries `now`, the
 * leader's wall clock in ms when it proposed it; the table's clock is the
 * maximum `now` seen, so it never goes backwards when leaders change.
 *
 *   OPEN_SESSION(node, nonce, lease_ms, name)  -> OK(session id)
 *       a live session of the same (node, nonce) answers with its id
 *       (retry), so a mount that lost the answer finds its session.
 *   KEEPALIVE                                  -> OK
 *   ACQUIRE(kind, path, owner, pid, mode, wait)
 *       -> GRANTED(token, vv) | QUEUED | WOULDBLOCK | DEADLK | NOLCK
 *   RELEASE(kind, path, owner, vv)             -> OK | NOT_FOUND
 *   CANCEL(kind, path, owner, target seq)      -> OK (waiter removed)
 *       | GRANTED(token, vv) (it was granted first: the grant stands)
 *       | NOT_FOUND
 *   EXPIRE(target session, renew stamp)        -> OK | NOT_FOUND | STALE
 *   CLOSE_SESSION                              -> OK
 *       (a retry finds no session: NOT_FOUND, which also means closed)
 *
 * Every session command (all but EXPIRE) names its session and carries
 * a sequence number; an unknown session answers NOT_FOUND (the session
 * expired or closed: the mount must open a new one and consider every
 * lock of the old one lost). Any applied session command renews the
 * lease (the host is alive). A read (lt_query) is not a command: the
 * service answers it from its own table after a raft barrier.
 *
 * Results (struct lt_result): a code, for GRANTED the token and the
 * handover vv, for OPEN_SESSION the session id, and for every command the
 * list of waiters it granted (session, owner, seq of their ACQUIRE,
 * mode, token, vv), so the leader can tell their hosts. That list is a
 * hint, not the truth: a new leader does not know what the old one
 * announced, so a host re-reads its grants after a leader change.
 *
 * Semantics (those of fs/lock.c, now across hosts)
 *
 *   flock: an exclusive lock has one holder, a shared one any number. A
 *   request waits if it conflicts with a holder OR anyone is queued, so
 *   a shared request behind a queued exclusive one waits its turn. When
 *   holders change, the queue head is granted while it fits (one
 *   exclusive, or every consecutive shared request). The same (session,
 *   owner) asking again converts: EX -> SH at once; SH -> EX drops the
 *   shared lock first, then queues (also when !wait fails: the shared
 *   lock is gone, as on Linux).
 *   POSIX (whole file): a request conflicts only with other owners;
 *   conversion is in place (an upgrade keeps the shared lock while it
 *   waits); after every change the whole queue is scanned in order and
 *   every waiter that fits is granted (Linux's rule; queueing behind
 *   waiters would deadlock an owner upgrading). A blocking request that
 *   would wait, through a chain of queued POSIX requests of other owners,
 *   for its own owner answers DEADLK (walk bounded to 256 owners).
 *   An owner is (session, owner): the kernel's owner is only unique on
 *   its host.
 *
 * Fencing tokens. Every exclusive grant takes
 *       token = max(token_high + 1, clock_ms * 1000)
 * and token_high = token. token_high is table-wide and in the snapshot,
 * so a token grows with every exclusive grant of a path and is never
 * reused, also across release, expiry, eviction of an idle lock and
 * snapshot/restore. The clock term keeps tokens above those of the local
 * manager (fs/lock.c, microseconds of wall clock), so switching a mount
 * from local to mesh locks does not send tokens backwards.
 *
 * Data handover. RELEASE carries the releaser's store version vector
 * (up to LT_VV_MAX (node, seq) pairs). The lock keeps the pointwise
 * maximum of every vv released into it (not just the last releaser's:
 * shared holders may write too), and every grant carries that vv; the
 * grantee waits until its store has applied it. A lock with no holder and
 * no waiter but a non-empty vv stays as an "idle" lock so the next grant
 * still hands the vv over (also one with a token, so
 * user.statefs.lock.token keeps showing it); past max_idle idle locks
 * the oldest is evicted
 * and its vv merged into the table's floor vv, which every lock created
 * later starts from. So a grant's vv always dominates the vv of every
 * earlier release of that path (maybe more: the floor).
 *
 * Leases. EXPIRE is decided by the leader (no renewal seen for the
 * lease) but applied conditionally: only if the session's last renewal
 * stamp is still the one the leader saw AND the command's now is at
 * least last renewal + lease; otherwise STALE (a KEEPALIVE overtook
 * it). EXPIRE and CLOSE_SESSION release every lock of the session,
 * remove its waiters, count the freed holdings as orphans, grant the
 * waiters behind them (locks in (kind, path) order, so tokens are equal
 * everywhere) and forget the session.
 *
 * Idempotency and order. A session records the last applied sequence
 * and its result, and applies only the next one (last + 1). A command
 * with the last sequence again is a retry (raft answered
 * RAFT_LEADERSHIPLOST: unknown outcome): it gets the recorded result with
 * dup set, and changes nothing. A lower sequence answers STALE, a higher
 * one than the next GAP (an earlier command was lost on its way: the
 * sender resends from there); neither changes anything. So a session may
 * have several commands in flight, applied in its order or not at all;
 * only the last one's result can be asked again, so a sender pipelines
 * only commands whose result it does not need (locksvc.c: releases).
 * OPEN_SESSION is idempotent by (node, nonce); EXPIRE by its renewal
 * stamp.
 *
 * Limits (struct lt_limits; every voter must use the same ones: they are
 * in the snapshot and a restore adopts them). Past a limit a request
 * answers NOLCK (OPEN_SESSION too) and nothing changes:
 *   max_sessions 4096, max_locks 1 Mi (with a holder or waiter),
 *   max_holders 4 Mi, max_waiters 1 Mi, max_idle 64 Ki.
 *   A path is 1..LT_PATH_MAX bytes without NUL; a host name up to
 *   LT_NAME_MAX bytes; a vv up to LT_VV_MAX entries, nodes strictly
 *   increasing, seq > 0. A vv merge that would pass LT_VV_MAX nodes keeps
 *   the releaser's vv alone (not reachable in a mesh of <= 64 nodes).
 *
 * Invariants (lt_check verifies them; the tests call it after every
 * apply):
 *   (1) a lock has at most one exclusive holder, and then no shared one;
 *   (2) flock: the queue head does not fit (nothing grantable waits);
 *       POSIX: no waiter fits;
 *   (3) a lock is active iff it has a holder or a waiter; an idle lock
 *       has neither, and a non-empty vv or a token; at most max_idle
 *       idle locks;
 *   (4) every holder and waiter belongs to a live session, each
 *       (session, owner) holds a lock at most once;
 *   (5) token_high >= every lock's token; tokens only grow;
 *   (6) encode(restore(encode(T))) == encode(T).
 *
 * Encoding (commands): little-endian, every field at its natural
 * alignment, the whole padded with zero bytes to a multiple of 8 (libraft
 * 0.15 corrupts entries of other lengths after a restart). The decoder
 * rejects a wrong version, unknown type, non-zero padding or reserved
 * bytes, wrong length, bad path/name/vv, modes or kinds out of range.
 *
 *   off size
 *    0   1   version (LT_CMD_VERSION)
 *    1   1   type (enum lt_cmd_type)
 *    2   1   kind    (ACQUIRE, RELEASE, CANCEL; else 0)
 *    3   1   mode    (ACQUIRE: LT_SH/LT_EX; else 0)
 *    4   1   wait    (ACQUIRE: 0/1; else 0)
 *    5   3   zero
 *    8   8   session (0 for OPEN_SESSION and EXPIRE)
 *   16   8   seq     (0 for EXPIRE)
 *   24   8   now, ms
 *   32       body:
 *     OPEN_SESSION  u64 node, u64 nonce, u32 lease_ms, u32 namelen, name
 *     ACQUIRE       u64 owner, u32 pid, u32 pathlen, path
 *     RELEASE       u64 owner, u32 pathlen, u32 vvn, path, pad to 8,
 *                   vvn x (u64 node, u64 seq)
 *     CANCEL        u64 owner, u64 target seq, u32 pathlen, u32 0, path
 *     EXPIRE        u64 target session, u64 renew stamp
 *     KEEPALIVE, CLOSE_SESSION: none
 *
 * The snapshot (lt_encode) is the whole table in a canonical order
 * (sessions by id, locks by kind then path; holders and waiters in their
 * order), also 8-aligned; its layout is in locktable.c.
 *
 * Caveats
 *   - An allocation failure inside lt_apply aborts the process: a voter
 *     that cannot apply an entry must not go on with a different table
 *     than its peers (raft replays the entry after the restart).
 *   - Results and the grants they list are owned by the table and valid
 *     until the next lt_apply, lt_restore or lt_free. libraft calls the
 *     apply callback synchronously inside apply, so it can copy them.
 *   - Finding a holder scans the lock's holders: a shared lock with
 *     thousands of holders makes each of its requests O(holders).
 */
#ifndef STATEFS_REPL_LOCKTABLE_H
#define STATEFS_REPL_LOCKTABLE_H

#include <stddef.h>
#include <stdint.h>

#define LT_CMD_VERSION 1
#define LT_PATH_MAX 4096
#define LT_NAME_MAX 63
#define LT_VV_MAX 64

/* Same values as fs/lock.h's lock_kind and lock_type. */
enum lt_kind { LT_FLOCK = 0, LT_POSIX = 1 };
enum lt_mode { LT_UNLOCKED = 0, LT_SH = 1, LT_EX = 2 };

enum lt_cmd_type {
	LT_OPEN_SESSION = 1,
	LT_KEEPALIVE = 2,
	LT_ACQUIRE = 3,
	LT_RELEASE = 4,
	LT_CANCEL = 5,
	LT_EXPIRE = 6,
	LT_CLOSE_SESSION = 7,
};

enum lt_code {
	LT_OK = 0,
	LT_GRANTED = 1,
	LT_QUEUED = 2,
	LT_WOULDBLOCK = 3,  /* -EWOULDBLOCK */
	LT_NOT_FOUND = 4,
	LT_NOLCK = 5,       /* -ENOLCK: a limit */
	LT_DEADLK = 6,      /* -EDEADLK (POSIX) */
	LT_STALE = 7,       /* an old sequence, or an overtaken EXPIRE */
	LT_MALFORMED = 8,   /* the entry did not decode; nothing changed */
	LT_GAP = 9,         /* a seq past the next: an earlier command of
			     * the session is missing; nothing changed */
};

struct lt_vv {
	uint32_t n;
	struct lt_vv_entry {
		uint64_t node, seq;
	} e[LT_VV_MAX];  /* nodes strictly increasing */
};

struct lt_cmd {
	enum lt_cmd_type type;
	uint64_t session, seq, now;
	/* OPEN_SESSION */
	uint64_t node, nonce;
	uint32_t lease_ms;
	const char *name;   /* namelen bytes, not NUL-terminated */
	size_t namelen;
	/* ACQUIRE, RELEASE, CANCEL */
	enum lt_kind kind;
	enum lt_mode mode;  /* ACQUIRE */
	int wait;           /* ACQUIRE */
	const char *path;   /* pathlen bytes, not NUL-terminated */
	size_t pathlen;
	uint64_t owner;
	uint32_t pid;
	uint64_t target_seq;      /* CANCEL: the ACQUIRE's seq */
	struct lt_vv vv;          /* RELEASE */
	/* EXPIRE */
	uint64_t target, renew;
};

/* A waiter granted by a command. */
struct lt_grant {
	uint64_t session, owner, seq;  /* seq of its ACQUIRE */
	enum lt_kind kind;
	enum lt_mode mode;
	const char *path;  /* the table's copy, NUL-terminated */
	uint64_t token;    /* the lock's last exclusive token */
	struct lt_vv vv;   /* wait for this before completing the grant */
};

struct lt_result {
	enum lt_code code;
	int dup;            /* a retry: the recorded result, nothing changed */
	uint64_t session;   /* OPEN_SESSION: the id */
	uint64_t token;     /* GRANTED */
	struct lt_vv vv;    /* GRANTED */
	size_t ngrants;
	const struct lt_grant *grants;
};

struct lt_limits {
	uint32_t max_sessions, max_locks, max_holders, max_waiters, max_idle;
};

/* What user.statefs.lock and F_GETLK show (see fs/lock.h lock_state). */
struct lt_lockinfo {
	enum lt_mode mode;     /* strongest held */
	unsigned holders;      /* of that mode */
	uint64_t session;      /* first such holder's */
	uint64_t owner;
	uint32_t pid;
	char host[LT_NAME_MAX + 1];
	uint64_t token;
	unsigned waiters;
	struct lt_vv vv;
};

struct lt_sessioninfo {
	uint64_t id, node, nonce, last_renew, last_seq;
	uint32_t lease_ms;
	char name[LT_NAME_MAX + 1];
	unsigned held, waiting;
};

struct lt_stats {
	uint64_t sessions, locks, idle, held_excl, held_shared, waiters;
	uint64_t grants, contentions, orphans, cancels, expired;
	uint64_t clock, token_high;
};

struct locktable;

/* A new empty table. limits NULL: the defaults above. NULL on ENOMEM. */
struct locktable *lt_new(const struct lt_limits *limits);
void lt_free(struct locktable **tp);

/*
 * Apply one encoded command (a raft entry). Always succeeds: a malformed
 * entry answers LT_MALFORMED and changes nothing. *res is owned by the
 * table (see Caveats).
 */
void lt_apply(struct locktable *t, const void *buf, size_t len,
	      const struct lt_result **res);

/* Size of c encoded (a multiple of 8), or 0 if c is not valid. */
size_t lt_cmd_size(const struct lt_cmd *c);
/* Encode c into buf of lt_cmd_size(c) bytes. 0, or -EINVAL. */
int lt_cmd_encode(const struct lt_cmd *c, void *buf, size_t len);
/* Decode; c->path and c->name point into buf. 0, or -EINVAL. */
int lt_cmd_decode(const void *buf, size_t len, struct lt_cmd *c);

/* The whole table, canonical. *bufp is malloc'd, the caller frees it.
 * 0 or -ENOMEM. */
int lt_encode(const struct locktable *t, void **bufp, size_t *lenp);
/* Replace t's contents with a decoded table. On error (-EINVAL for a
 * malformed or inconsistent image, -ENOMEM) t is unchanged. */
int lt_restore(struct locktable *t, const void *buf, size_t len);

/* Reads. 0, or -ENOENT (no such lock / session). */
int lt_query(const struct locktable *t, enum lt_kind kind, const char *path,
	     struct lt_lockinfo *out);
int lt_session(const struct locktable *t, uint64_t id,
	       struct lt_sessioninfo *out);
void lt_stats(const struct locktable *t, struct lt_stats *out);
/* Every live session, by id (the leader's lease scan). fn must not
 * change the table. */
void lt_foreach_session(const struct locktable *t,
			void (*fn)(void *arg, const struct lt_sessioninfo *s),
			void *arg);

/* One holder or waiter, as lt_foreach shows it (path: the table's). */
struct lt_entry {
	enum lt_kind kind;
	const char *path;
	int waiting;        /* 0: a holder, 1: a waiter */
	uint64_t session, owner;
	uint64_t seq;       /* waiters: their ACQUIRE's seq */
	uint32_t pid;
	enum lt_mode mode;
	uint64_t token;     /* the lock's last exclusive token */
};

/* Every holder and waiter: locks by (kind, path), each lock's holders in
 * grant order, then its waiters in arrival order (for re-announcing
 * grants after a leader change). fn must not change the table.
 * 0, or -ENOMEM. */
int lt_foreach(const struct locktable *t,
	       void (*fn)(void *arg, const struct lt_entry *e), void *arg);

/* Check the invariants; 0, or -1 with a description in msg. */
int lt_check(const struct locktable *t, char *msg, size_t msglen);

const char *lt_code_name(enum lt_code c);

#endif
