/*
 * lockproto.h — the local socket between a mount's lock manager
 * (fs/lockremote.c) and its replicator's lock service (repl/locksvc.c).
 * fs/ never talks to the network: mesh-wide locks reach the Raft lock
 * table only through this socket.
 *
 * The socket: AF_UNIX, SOCK_SEQPACKET, at [node] control (default
 * STORE_DIR/repl.sock), mode 0600, created by statefs-repl when the
 * config has a [locks] section. One connection per mount. Each packet
 * is one message: a struct lp_msg, then `pathlen` bytes of path (no
 * NUL). Host byte order: both ends are one host and one build, and the
 * HELLO's version is checked. A packet that fails lp_check() closes
 * the connection (and so releases the mount's locks: see below).
 *
 * The connection is the mount's lock session. The service opens the
 * mount's session(s) in the Raft lock table on HELLO, keeps them alive
 * while the connection lives, and closes them when it closes: a mount
 * that dies releases every lock it held at once, and a host that dies
 * or is cut off loses them after the lease.
 *
 * Mount -> service
 *   HELLO    pid, path = the mount's host name. Answer: HELLO with err
 *            0 and lease_ms; -ENOTSUP when the replicator has no lock
 *            cluster configured; -EPROTO for another version.
 *   LOCK     id, kind, type (SHARED, EXCL or UNLOCK), owner, pid, wait,
 *            path. Answer: RESULT id with err
 *              0             granted (or unlocked): for a grant, only
 *                            once this host's store has applied the
 *                            grant's version vector (the data handover);
 *                            token = the lock's fencing token
 *              LP_QUEUED     a wait began; exactly one more RESULT of
 *                            this id follows: 0 (granted, as above),
 *                            -EINTR (cancelled) or another -errno
 *              -EWOULDBLOCK  busy and !wait, or this host is cut off
 *                            from the voters' majority (never a false
 *                            grant)
 *              -ENOLCK -EDEADLK -EINVAL  as fs/lock.h says
 *            The release of an UNLOCK carries this host's store version
 *            vector, read by the service after the message arrived (the
 *            mount committed its writes before sending it).
 *   CANCEL   id of a LOCK not answered yet (queued or not). No answer
 *            of its own: the LOCK's final RESULT says -EINTR, or 0 when
 *            the grant came first.
 *   RELEASE  kind, owner, path: drop every lock owner holds on path (a
 *            close). No answer.
 *   QUERY    id, kind, path. Answer: STATE id with err 0 and the fields
 *            of struct lock_state (type, holders, pid, token, waiters,
 *            host in path), or -errno.
 *
 * Service -> mount: HELLO, RESULT, STATE as above. Answers to different
 * ids may come in any order; a mount matches them by id.
 *
 * What the mount (fs/lockremote.c) does, for the service to rely on:
 *   - it waits for the HELLO answer before sending anything else;
 *   - ids grow from 1 on each connection and are never reused on it;
 *   - a LOCK of type UNLOCK gets its RESULT ignored (send one anyway);
 *   - a CANCEL may come before the LOCK's LP_QUEUED (or with none: a
 *     cut-off host's blocking request), and for a request the service
 *     answered already (then it is ignored); the LOCK's final RESULT
 *     says what happened;
 *   - a RELEASE is sent only for an owner that holds or waits for a lock
 *     on the path, as far as the mount knows;
 *   - a QUERY of a lock the table does not know may be answered STATE
 *     err 0 with type UNLOCK, or -ENOENT (the mount reads both as
 *     unlocked);
 *   - a packet it cannot use (lp_check fails, or a type it never
 *     receives: LOCK, CANCEL, RELEASE, QUERY) closes the connection.
 */
#ifndef STATEFS_LOCKPROTO_H
#define STATEFS_LOCKPROTO_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define LP_VERSION 1
#define LP_PATH_MAX 4096
#define LP_MSG_MAX (sizeof(struct lp_msg) + LP_PATH_MAX)
#define LP_QUEUED 1

enum lp_type {
	LP_HELLO = 1,
	LP_LOCK = 2,
	LP_CANCEL = 3,
	LP_RELEASE = 4,
	LP_QUERY = 5,
	LP_RESULT = 6,
	LP_STATE = 7,
};

struct lp_msg {
	uint32_t version;   /* LP_VERSION */
	uint32_t type;      /* enum lp_type */
	uint64_t id;        /* chosen by the mount, echoed in answers */
	int32_t err;        /* answers: 0, LP_QUEUED or -errno */
	uint32_t kind;      /* enum lock_kind (fs/lock.h) */
	uint32_t ltype;     /* enum lock_type: LOCK, and STATE's type */
	uint32_t wait;      /* LOCK: 0 or 1 */
	uint64_t owner;     /* the kernel's lock owner */
	int32_t pid;        /* requester (HELLO: the mount); STATE: holder */
	uint32_t holders;   /* STATE */
	uint32_t waiters;   /* STATE */
	uint32_t lease_ms;  /* HELLO answer */
	uint64_t token;     /* RESULT of a grant, STATE */
	uint32_t pathlen;   /* bytes of path after the header */
	uint32_t reserved;  /* 0 */
	char path[];
};

/* A received packet of n bytes: 0 if it is a well-formed message, else
 * -EPROTO. */
static inline int lp_check(const void *buf, size_t n)
{
	struct lp_msg m;

	if (n < sizeof(m))
		return -EPROTO;
	memcpy(&m, buf, sizeof(m));
	if (m.version != LP_VERSION || m.type < LP_HELLO || m.type > LP_STATE ||
	    m.reserved != 0 || m.pathlen > LP_PATH_MAX ||
	    n != sizeof(m) + m.pathlen || m.wait > 1 || m.kind > 1 ||
	    m.ltype > 2)
		return -EPROTO;
	if (memchr((const char *)buf + sizeof(m), '\0', m.pathlen))
		return -EPROTO;
	return 0;
}

#endif
