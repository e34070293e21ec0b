/*
 * zmq_send.c — throws frames at a replicator's port, for
 * tests/integration/repl_garbage.sh. ZeroMQ speaks ZMTP, so raw TCP
 * would not even reach the replicator's decoder: this is a DEALER, as a
 * peer dials with, that sends what it is told, one message per action.
 *
 *   zmq_send [options] ENDPOINT ACTION...
 *
 * Options: --id ID (our routing id; default: libzmq's own), --node HEX
 * (the header's node id, default 5e5e5e5e5e5e5e5e), --session HEX
 * (default 0bad5e55), --store DIR (a store to take a change from),
 * --dir DIR (where `sample:` files are: tests/fuzz/corpus_wire).
 *
 * Actions, each one message (seq: a counter from 1, one per built
 * message):
 *   hex:HEX        a frame of these bytes
 *   file:PATH      a frame of the file's bytes
 *   sample:NAME    file:DIR/NAME
 *   hello:NAME     a HELLO as node NAME, no watermarks
 *   heartbeat      a HEARTBEAT
 *   changes        a CHANGES of the last binlog entry of --store's store
 *                  (a commit group's end: a whole, valid message)
 *   again          the last message once more, byte for byte (a replay)
 *   two            the last message as two frames of one message
 *   sleep:MS       wait
 * Exits 0 when every message was queued and flushed (within 5 s), 1
 * otherwise, 2 on usage errors.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "repl/wire.h"
#include "store/store.h"
#include "tests/fuzz/wire_samples.h"

static struct wbuf last;
static struct wire_hdr hdr = { .node = 0x5e5e5e5e5e5e5e5eull,
			       .session = 0x0bad5e55ull };

static int read_file(const char *path, struct wbuf *b)
{
	unsigned char buf[65536];
	size_t n;
	FILE *f = fopen(path, "rb");

	if (!f) {
		perror(path);
		return -1;
	}
	wbuf_reset(b);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		wbuf_bytes(b, buf, n);
	fclose(f);
	return b->err;
}

static int from_hex(const char *h, struct wbuf *b)
{
	wbuf_reset(b);
	for (; h[0] && h[1]; h += 2) {
		unsigned v;

		if (sscanf(h, "%2x", &v) != 1)
			return -1;
		wbuf_u8(b, (uint8_t)v);
	}
	return *h ? -1 : b->err;
}

static int last_change(const char *dir, struct wbuf *b)
{
	struct store_opts o = { .no_create = 1 };
	struct store *s = NULL;
	struct ws_changes cs;
	uint64_t seq;
	int err = store_open(dir, &o, &s);

	if (err) {
		fprintf(stderr, "zmq_send: %s: %s\n", dir, store_last_error());
		return -1;
	}
	seq = store_last_seq(s);
	err = ws_changes_read(s, seq ? seq - 1 : 0, 1, &cs);
	if (!err && cs.n == 1) {
		hdr.seq++;
		wbuf_reset(b);
		ws_changes(b, hdr, 0, cs.v, 1);
		err = b->err;
	} else if (!err) {
		err = -ENOENT;
	}
	ws_changes_free(&cs);
	store_close(&s);
	return err;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "id", required_argument, NULL, 'i' },
		{ "node", required_argument, NULL, 'n' },
		{ "session", required_argument, NULL, 's' },
		{ "store", required_argument, NULL, 'S' },
		{ "dir", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	const char *store = NULL, *dir = "tests/fuzz/corpus_wire";
	void *ctx, *sock;
	int o, i, rc = 0, linger = 5000;
	char path[4200];

	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 'n':
			hdr.node = strtoull(optarg, NULL, 16);
			break;
		case 's':
			hdr.session = strtoull(optarg, NULL, 16);
			break;
		case 'S':
			store = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'i':
			break; /* set on the socket below */
		default:
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: zmq_send [options] ENDPOINT ACTION...\n");
		return 2;
	}
	ctx = zmq_ctx_new();
	sock = zmq_socket(ctx, ZMQ_DEALER);
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	optind = 1;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1)
		if (o == 'i')
			zmq_setsockopt(sock, ZMQ_ROUTING_ID, optarg, strlen(optarg));
	if (zmq_connect(sock, argv[optind]) < 0) {
		fprintf(stderr, "zmq_send: %s: %s\n", argv[optind], zmq_strerror(errno));
		return 1;
	}
	for (i = optind + 1; i < argc && !rc; i++) {
		const char *a = argv[i];
		int err = 0, frames = 1;

		if (strncmp(a, "hex:", 4) == 0) {
			err = from_hex(a + 4, &last);
		} else if (strncmp(a, "file:", 5) == 0) {
			err = read_file(a + 5, &last);
		} else if (strncmp(a, "sample:", 7) == 0) {
			snprintf(path, sizeof(path), "%s/%s", dir, a + 7);
			err = read_file(path, &last);
		} else if (strncmp(a, "hello:", 6) == 0) {
			struct wire_wm wm = { .n = 0 };

			hdr.seq++;
			wbuf_reset(&last);
			ws_hello(&last, hdr, a + 6, &wm);
			err = last.err;
		} else if (strcmp(a, "heartbeat") == 0) {
			hdr.seq++;
			hdr.type = WIRE_HEARTBEAT;
			wbuf_reset(&last);
			wbuf_hdr(&last, &hdr);
			wbuf_u64(&last, 0);
			err = last.err;
		} else if (strcmp(a, "changes") == 0) {
			err = store ? last_change(store, &last) : -1;
		} else if (strcmp(a, "again") == 0) {
			err = 0;
		} else if (strcmp(a, "two") == 0) {
			frames = 2;
		} else if (strncmp(a, "sleep:", 6) == 0) {
			struct timespec ts = { .tv_sec = atoi(a + 6) / 1000,
					       .tv_nsec = atoi(a + 6) % 1000 * 1000000L };

			nanosleep(&ts, NULL);
			continue;
		} else {
			fprintf(stderr, "zmq_send: unknown action %s\n", a);
			rc = 2;
			break;
		}
		if (err) {
			fprintf(stderr, "zmq_send: %s: cannot build it\n", a);
			rc = 1;
			break;
		}
		if (frames == 2) {
			size_t half = last.len / 2;

			if (zmq_send(sock, last.p, half, ZMQ_SNDMORE) < 0 ||
			    zmq_send(sock, last.p + half, last.len - half, 0) < 0)
				rc = 1;
		} else if (zmq_send(sock, last.p, last.len, 0) < 0) {
			rc = 1;
		}
	}
	zmq_close(sock);
	zmq_ctx_term(ctx); /* waits up to the linger for delivery */
	wbuf_free(&last);
	return rc;
}
