/*
 * raftnet.h — the lock service's network: libraft's transport (struct
 * raft_uv_transport) and a datagram channel between lock members, both
 * over ZeroMQ, authenticated and encrypted with the mesh's CURVE keys.
 * libraft's own TCP transport has no authentication and no cluster id
 * (a data directory of another cluster was accepted as a follower), so
 * statefs never uses it.
 *
 * One struct raftnet per lock service, used on its libuv loop thread
 * only (every function here, and every callback, runs there).
 *
 * Sockets. raftnet binds a ROUTER at the node's lock endpoint ([locks]
 * listen) and dials every other member with a DEALER. With keys, both
 * are CURVE: the ROUTER is a CURVE server whose ZAP handler (its own
 * ZeroMQ context, so the replicator's allowlist is not touched) admits
 * only the members' public keys; a DEALER knows its server's key from
 * the config. Without keys (insecure) plain TCP.
 *
 * Frames. Every frame carries the cluster id (config: a hash of the
 * cluster name and its members' names, keys and roles) and the sender's
 * raft id. A frame with another cluster id, from a raft id that is not
 * a member, or (with keys) from a key that is not that member's, is
 * dropped and counted, and logged once per sender: "lock peer KEY:
 * cluster id differs: configs differ" and the like. Such a node can
 * neither vote nor read the lock table.
 *
 * Raft streams. libraft's uv io asks the transport to connect to a
 * member's address and accepts streams from members. raftnet hands it
 * one end of a socketpair (AF_UNIX, SOCK_STREAM) as a uv_pipe and
 * tunnels the bytes of the other end in DATA frames. A stream ends
 * (EOF to libraft, which reconnects) when the peer closes it, when the
 * peer does not know it (it restarted: RESET), when a frame cannot be
 * queued (peer not connected, or cut by block_file), or when bytes
 * arrive at an offset that is not the next one (a frame was lost).
 * Addresses in libraft's configuration are member names ("n2");
 * raftnet maps them to endpoints and keys.
 *
 * Datagrams. raftnet_send() gives one message to a member, at most once
 * and in order per member while connected; on_message receives them
 * (buf valid only during the call). Right after a member (re)starts,
 * sends fail with -ENOTCONN until our DEALER has reached it (ZeroMQ
 * redials every 100 ms): the caller retries or gives up, nothing is
 * queued for later.
 * The lock service forwards proposals to the leader and returns results
 * and grants with them.
 *
 * Caveats.
 *   - The process must ignore SIGPIPE: libraft writes to its end of a
 *     stream with write(2), and a stream ends by closing raftnet's end.
 *     raftnet's own writes never raise it (MSG_NOSIGNAL).
 *   - Give the raft io a short connect retry delay
 *     (raft_uv_set_connect_retry_delay, ~100 ms): a connect to a member
 *     that is not connected now fails at once with RAFT_NOCONNECTION
 *     and libraft waits that long before the next attempt.
 *   - One transport per raftnet, used by one raft io; raftnet_close
 *     only after raft_close's callback (raft then closed the transport).
 */
#ifndef STATEFS_REPL_RAFTNET_H
#define STATEFS_REPL_RAFTNET_H

#include <stddef.h>
#include <stdint.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#define RAFTNET_MSG_MAX (64u << 10)  /* a datagram's payload */

struct raftnet_member {
	uint64_t id;                 /* raft id, > 0 */
	char name[64];               /* the raft address of this member */
	char endpoint[256];          /* tcp://host:port */
	char public_key[41];         /* Z85; "" when insecure */
};

struct raftnet_opts {
	uv_loop_t *loop;
	uint64_t self;                          /* own raft id */
	const struct raftnet_member *members;   /* all, self included */
	size_t nmembers;
	const char *listen;                     /* own bind endpoint */
	const char *secret_key, *public_key;    /* Z85; NULL: insecure */
	uint64_t cluster_id;
	/* The fault point (like the replicator's STORE_DIR/repl.block):
	 * while this file names a member (names separated by blanks or
	 * newlines), frames to and from it are dropped, as if the network
	 * were cut. Re-read when its mtime changes, at most every 50 ms.
	 * NULL: none. Copied. */
	const char *block_file;
	void (*on_message)(void *arg, uint64_t from, const void *buf,
			   size_t len);
	void *arg;
};

struct raftnet_stats {
	uint64_t frames_in, frames_out, bytes_in, bytes_out;
	uint64_t streams_opened, streams_reset;
	uint64_t drop_cluster, drop_member, drop_key, drop_malformed;
	uint64_t drop_blocked;       /* frames in or out cut by block_file */
	uint64_t msgs_in, msgs_out, msgs_dropped;
};

struct raftnet;

/* Create, bind and dial. 0, or a negative errno with a one-line message
 * in err (a bad endpoint, an address in use, no such member). */
int raftnet_new(const struct raftnet_opts *o, struct raftnet **out,
		char *err, size_t errlen);
/* The transport for raft_uv_init(); valid until raftnet_close. */
struct raft_uv_transport *raftnet_transport(struct raftnet *n);
/* 0, -ENOTCONN (member not connected now), -EMSGSIZE, -ENOENT (no such
 * member), -ENOMEM. */
int raftnet_send(struct raftnet *n, uint64_t to, const void *buf,
		 size_t len);
/* 1 while we have heard from member `id` within `within_ms` (a valid
 * frame of our cluster, not blocked); 1 for ourselves; 0 otherwise.
 * Every member pings every other every 200 ms, so ask for a few times
 * that (>= 600 ms) to know whether a member is reachable. */
int raftnet_heard(struct raftnet *n, uint64_t id, uint64_t within_ms);
void raftnet_stats(struct raftnet *n, struct raftnet_stats *out);
/* Close sockets and streams; done(arg) is called on the loop when all
 * handles are closed (after raft_close's callback). */
void raftnet_close(struct raftnet *n, void (*done)(void *arg), void *arg);

#endif
