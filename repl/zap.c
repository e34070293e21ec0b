/*
 * zap.c — ZeroMQ's authentication hook (RFC 27, ZAP) for CURVE: a
 * client whose public key is not one of our peers' is refused.
 *
 * libzmq lets every CURVE client in when nothing is bound at
 * inproc://zeromq.zap.01, so zap_start binds it before any listening
 * socket exists, and a thread answers each request. Refused keys are
 * kept (for status: peers.c's /.statefs/peers and statefsctl status)
 * and logged with the key, once per 5 s.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <zmq.h>

#include "common/log.h"
#include "repl/repl.h"

static pthread_t zap_thread;
static void *zap_sock;

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

/* Frames of a request: version, request id, domain, address, identity,
 * mechanism, credentials... */
static void *zap_main(void *arg)
{
	struct repl *r = arg;

	for (;;) {
		zmq_msg_t f[8];
		int n = 0, more = 1, i;
		char key[CONFIG_KEY_LEN + 1] = "", addr[64] = "";
		const char *status = "400", *text = "unknown key";

		while (more && n < 8) {
			zmq_msg_init(&f[n]);
			if (zmq_msg_recv(&f[n], zap_sock, 0) < 0) {
				zmq_msg_close(&f[n]);
				for (i = 0; i < n; i++)
					zmq_msg_close(&f[i]);
				return NULL; /* the context is ending */
			}
			more = zmq_msg_more(&f[n]);
			n++;
		}
		while (more) { /* more frames than a request has: drain */
			zmq_msg_t x;

			zmq_msg_init(&x);
			if (zmq_msg_recv(&x, zap_sock, 0) < 0)
				break;
			more = zmq_msg_more(&x);
			zmq_msg_close(&x);
		}
		if (n >= 7 && zmq_msg_size(&f[5]) == 5 &&
		    memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0 &&
		    zmq_msg_size(&f[6]) == 32) {
			zmq_z85_encode(key, zmq_msg_data(&f[6]), 32);
			snprintf(addr, sizeof(addr), "%.*s",
				 (int)zmq_msg_size(&f[3]), (char *)zmq_msg_data(&f[3]));
			if (allowed(r, key)) {
				status = "200";
				text = "OK";
			} else {
				note_refused(r, key, addr);
				log_rate(LOG_WARNING, "refused a connection from %s: public "
					 "key %s is not one of our peers'", addr, key);
			}
		}
		if (n >= 2) {
			/* reply: version, request id, status, text, user id, metadata */
			zmq_send(zap_sock, "1.0", 3, ZMQ_SNDMORE);
			zmq_send(zap_sock, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]),
				 ZMQ_SNDMORE);
			zmq_send(zap_sock, status, 3, ZMQ_SNDMORE);
			zmq_send(zap_sock, text, strlen(text), ZMQ_SNDMORE);
			zmq_send(zap_sock, key, strlen(key), ZMQ_SNDMORE);
			zmq_send(zap_sock, "", 0, 0);
		}
		for (i = 0; i < n; i++)
			zmq_msg_close(&f[i]);
	}
	return NULL;
}

int zap_start(struct repl *r)
{
	int linger = 0;

	zap_sock = zmq_socket(r->zctx, ZMQ_REP);
	if (!zap_sock)
		return -errno;
	zmq_setsockopt(zap_sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_bind(zap_sock, "inproc://zeromq.zap.01") < 0) {
		int err = -errno;

		zmq_close(zap_sock);
		return err;
	}
	if (pthread_create(&zap_thread, NULL, zap_main, r)) {
		zmq_close(zap_sock);
		return -EAGAIN;
	}
	return 0;
}

/* After zmq_ctx_shutdown: the thread's recv fails with ETERM. */
void zap_stop(struct repl *r)
{
	(void)r;
	pthread_join(zap_thread, NULL);
	zmq_close(zap_sock);
}
