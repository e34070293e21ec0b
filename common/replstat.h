/*
 * replstat.h — reading STORE_DIR/repl.status, the file statefs-repl
 * rewrites every heartbeat (repl/status.c has its format), for the
 * mount's /.statefs/peers and /.statefs/stats and for statefsctl
 * status. No dependency but libc: fs/ and ctl/ both link it.
 *
 * Liveness rule. The file outlives its writer (kill -9 leaves it), so it
 * is believed only while both hold:
 *   1. its `pid` is alive: kill(pid, 0) succeeds or fails with EPERM;
 *   2. its `updated_ms` (CLOCK_REALTIME) is within REPLSTAT_FRESH_MS of
 *      now, either way (a replicator that hangs, or a pid reused by
 *      another program after a crash, stops it being believed).
 * Otherwise the replicator counts as not running and nothing else of
 * the file is shown: peers last seen "connected=1" by a dead process
 * would mislead.
 */
#ifndef STATEFS_REPLSTAT_H
#define STATEFS_REPLSTAT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define REPLSTAT_FRESH_MS 10000
/* A bigger file is not one statefs-repl wrote (16 refused keys and
 * CONFIG_PEERS_MAX peers fit well inside). */
#define REPLSTAT_MAX_BYTES (256u << 10)

enum replstat_state {
	REPLSTAT_NONE = 0,  /* no repl.status: never ran here */
	REPLSTAT_STALE,     /* its pid is gone, or not updated lately */
	REPLSTAT_RUNNING,   /* believed: the fields below are filled */
};

struct replstat {
	enum replstat_state state;
	pid_t pid;
	int64_t updated_ms;   /* CLOCK_REALTIME of the last rewrite */
	int64_t age_ms;       /* now - updated_ms when read */
	char node[96];        /* "NAME ID", as the file has it */
	/* The mesh lock service's summary (lock_cluster "" : none). */
	char lock_cluster[64], lock_role[16], lock_leader[64];
	char lock_voters[5 * 64 + 8];
	int lock_reachable;
	/* Whole lines, each ending in '\n', in the file's order; NUL
	 * terminated, "" when none. Owned by the struct (replstat_free). */
	char *counters;       /* "repl_NAME N", then "lock_NAME VALUE" */
	char *peers;          /* "peer NAME k=v ..." */
	char *refused;        /* "refused_key KEY address=A count=N" */
};

/* Read STORE_DIR/repl.status into *rs. 0 (rs->state says what was
 * found; the strings are set in every state) or a negative errno when
 * the file exists but cannot be read (-EFBIG past REPLSTAT_MAX_BYTES,
 * -ENOMEM). Lines it does not know, and lines with bytes outside
 * printable ASCII, are left out. Call replstat_free after either. */
int replstat_read(const char *store_dir, struct replstat *rs);
void replstat_free(struct replstat *rs);

/* The liveness rule alone, for a pid and an updated_ms read elsewhere
 * (and for tests): 1 running, 0 not. */
int replstat_alive(pid_t pid, int64_t updated_ms, int64_t now_ms);

#endif
