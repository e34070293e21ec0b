/*
 * zap.c — the replicator's CURVE allowlist: a client whose public key
 * is not one of our peers' is refused.
 *
 * The ZAP thread is zaphandler.c's (shared with the lock service's
 * raftnet.c); zap_start opens it before any listening socket exists,
 * and admit() below runs on that thread. Refused keys are kept (for
 * status: peers.c's /.statefs/peers and statefsctl status) and logged
 * with the key, once per 5 s.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "repl/repl.h"
#include "repl/zaphandler.h"

static int allowed(const struct repl *r, const char *key)
{
	size_t i;

	for (i = 0; i < r->cfg.npeers; i++)
		if (strcmp(r->cfg.peers[i].public_key, key) == 0)
			return 1;
	return 0;
}

static void note_refused(struct repl *r, const char *key, const char *addr)
{
	size_t i, slot = 0;

	pthread_mutex_lock(&r->refused_lock);
	for (i = 0; i < sizeof(r->refused) / sizeof(r->refused[0]); i++) {
		if (strcmp(r->refused[i].key, key) == 0) {
			slot = i;
			break;
		}
		if (r->refused[i].last < r->refused[slot].last)
			slot = i; /* the oldest goes */
	}
	if (strcmp(r->refused[slot].key, key) != 0) {
		memset(&r->refused[slot], 0, sizeof(r->refused[slot]));
		snprintf(r->refused[slot].key, sizeof(r->refused[slot].key), "%s", key);
	}
	snprintf(r->refused[slot].address, sizeof(r->refused[slot].address),
		 "%s", addr);
	r->refused[slot].count++;
	r->refused[slot].last = repl_now_ms();
	pthread_mutex_unlock(&r->refused_lock);
}

static int admit(void *arg, const char *key, const char *addr)
{
	struct repl *r = arg;

	if (allowed(r, key))
		return 1;
	note_refused(r, key, addr);
	log_rate(LOG_WARNING, "refused a connection from %s: public key %s "
		 "is not one of our peers'", addr, key);
	return 0;
}

static struct zaphandler *zap;

int zap_start(struct repl *r)
{
	return zaphandler_open(r->zctx, admit, r, &zap);
}

/* After zmq_ctx_shutdown: the thread's recv fails with ETERM. */
void zap_stop(struct repl *r)
{
	(void)r;
	zaphandler_close(&zap);
}
