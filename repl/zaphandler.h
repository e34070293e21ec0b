/*
 * zaphandler.h — one ZeroMQ authentication handler (ZAP, RFC 27) for
 * CURVE servers, shared by the replicator's allowlist (zap.c) and the
 * lock service's network (raftnet.c).
 *
 * libzmq lets every CURVE client in when nothing is bound at
 * inproc://zeromq.zap.01 of the server socket's context, so
 * zaphandler_open binds it (call it before any CURVE server socket of
 * that context binds) and starts a thread that answers each request:
 * admit(arg, key, address) decides, on that thread, for the client's
 * public key (Z85, 40 characters) and its peer address. An admitted
 * connection's User-Id is its key, so every message received on it
 * names its sender (zmq_msg_gets(msg, "User-Id")). Anything but CURVE
 * is refused.
 *
 * admit must be thread-safe against the caller's own use of arg; it
 * may log, with a rate limit: a client can retry at any rate.
 *
 * One handler per context. Shut down: zmq_ctx_shutdown(ctx) (the
 * thread's receive then fails), zaphandler_close, zmq_ctx_term.
 */
#ifndef STATEFS_REPL_ZAPHANDLER_H
#define STATEFS_REPL_ZAPHANDLER_H

typedef int (*zaphandler_admit_fn)(void *arg, const char *key,
				   const char *address);

struct zaphandler;

/* 0, or a negative errno (-EADDRINUSE: the context has one already). */
int zaphandler_open(void *zctx, zaphandler_admit_fn admit, void *arg,
		    struct zaphandler **out);
/* After zmq_ctx_shutdown of its context: join the thread, close its
 * socket, free; *zp = NULL. NULL or *zp NULL: nothing. */
void zaphandler_close(struct zaphandler **zp);

#endif
