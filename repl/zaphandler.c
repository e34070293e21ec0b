/*
 * zaphandler.c — the ZAP thread (the contract is zaphandler.h).
 *
 * One REP socket at inproc://zeromq.zap.01; the thread reads a request
 * (version, request id, domain, address, identity, mechanism,
 * credentials; extra parts are read and ignored), asks admit for a
 * CURVE key, and replies (version, request id, status, text, user id,
 * metadata). It ends when its receive fails: the context shuts down.
 * Only that thread touches the socket between open and close.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "repl/zaphandler.h"

#define ZAP_PARTS 7

struct zaphandler {
	void *sock;
	pthread_t thread;
	zaphandler_admit_fn admit;
	void *arg;
};

/* Read one request into f[0..ZAP_PARTS); parts beyond are dropped. The
 * count of parts read (at most ZAP_PARTS), or -1 when the context ends. */
static int request_read(void *sock, zmq_msg_t *f)
{
	int n = 0, more = 1;

	while (more) {
		zmq_msg_t extra, *m = n < ZAP_PARTS ? &f[n] : &extra;

		zmq_msg_init(m);
		if (zmq_msg_recv(m, sock, 0) < 0) {
			zmq_msg_close(m);
			while (n > 0 && n <= ZAP_PARTS)
				zmq_msg_close(&f[--n]);
			return -1;
		}
		more = zmq_msg_more(m);
		if (m == &extra)
			zmq_msg_close(m);
		else
			n++;
	}
	return n;
}

static void *zap_main(void *arg)
{
	struct zaphandler *z = arg;
	zmq_msg_t f[ZAP_PARTS];
	int n, i;

	while ((n = request_read(z->sock, f)) >= 0) {
		char key[41] = "", addr[64] = "";
		const char *status = "400", *text = "refused";

		if (n == ZAP_PARTS && zmq_msg_size(&f[5]) == 5 &&
		    memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0 &&
		    zmq_msg_size(&f[6]) == 32) {
			zmq_z85_encode(key, zmq_msg_data(&f[6]), 32);
			snprintf(addr, sizeof(addr), "%.*s", (int)zmq_msg_size(&f[3]),
				 (char *)zmq_msg_data(&f[3]));
			if (z->admit(z->arg, key, addr)) {
				status = "200";
				text = "OK";
			} else {
				key[0] = '\0';
			}
		}
		if (n >= 2) {
			zmq_send(z->sock, "1.0", 3, ZMQ_SNDMORE);
			zmq_send(z->sock, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]),
				 ZMQ_SNDMORE);
			zmq_send(z->sock, status, 3, ZMQ_SNDMORE);
			zmq_send(z->sock, text, strlen(text), ZMQ_SNDMORE);
			zmq_send(z->sock, key, strlen(key), ZMQ_SNDMORE);
			zmq_send(z->sock, "", 0, 0);
		}
		for (i = 0; i < n; i++)
			zmq_msg_close(&f[i]);
	}
	return NULL;
}

int zaphandler_open(void *zctx, zaphandler_admit_fn admit, void *arg,
		    struct zaphandler **out)
{
	struct zaphandler *z = calloc(1, sizeof(*z));
	int linger = 0, err;

	*out = NULL;
	if (!z)
		return -ENOMEM;
	z->admit = admit;
	z->arg = arg;
	z->sock = zmq_socket(zctx, ZMQ_REP);
	if (!z->sock) {
		err = -errno;
		free(z);
		return err;
	}
	zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof(linger));
	if (zmq_bind(z->sock, "inproc://zeromq.zap.01") < 0) {
		err = -errno;
		zmq_close(z->sock);
		free(z);
		return err;
	}
	if (pthread_create(&z->thread, NULL, zap_main, z) != 0) {
		zmq_close(z->sock);
		free(z);
		return -EAGAIN;
	}
	*out = z;
	return 0;
}

void zaphandler_close(struct zaphandler **zp)
{
	struct zaphandler *z = zp ? *zp : NULL;

	if (!z)
		return;
	pthread_join(z->thread, NULL);
	zmq_close(z->sock);
	free(z);
	*zp = NULL;
}
