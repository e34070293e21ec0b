/*
 * main.c — statefs-repl: options, sockets and the loop (repl.h).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>
#include <sodium.h>

#include "common/log.h"
#include "repl/repl.h"
#ifdef STATEFS_LOCKSVC
#include "repl/locksvc.h"
#endif

#define PROG "statefs-repl"

int64_t repl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " [OPTIONS] STORE_DIR\n"
		"       " PROG " --config FILE [OPTIONS]\n"
		"       " PROG " --check-config FILE\n"
		"Mirror a statefs store to its peers over ZeroMQ (SPEC §5): every\n"
		"committed change goes to every peer, theirs come here.\n\n"
		"  -c, --config FILE        the node's config file (statefs.conf(5) keys\n"
		"                           are in the README); flags below override it\n"
		"      --check-config FILE  validate FILE, print nothing, exit 0 or 2\n"
		"  -n, --node NAME          node name\n"
		"  -l, --listen ENDPOINT    e.g. tcp://0.0.0.0:7001\n"
		"  -p, --peer NAME=ENDPOINT[=PUBLIC_KEY]\n"
		"                           a peer to dial (repeat for more); no\n"
		"                           ENDPOINT (NAME==KEY): it dials us\n"
		"  -k, --key FILE           our secret key (statefsctl keygen)\n"
		"      --insecure           plain TCP, no CURVE: trusted networks only\n"
		"      --heartbeat T        default 1s\n"
		"      --peer-timeout T     default 5s\n"
		"      --max-offset T       clock hold-back, default 500ms\n"
		"      --conflict POLICY    lww (default), keep (the losing value stays\n"
		"                           as NAME.conflict-NODE-VERSION) or\n"
		"                           hook:PROGRAM (PROGRAM PATH WINNER LOSER\n"
		"                           prints the value that supersedes both)\n"
		"  -v, --verbose            log more (twice: debug)\n"
		"  -h, --help               this text\n"
		"  -V, --version            the version\n\n"
		"T is a duration: 500ms, 2s, 1m. Status: statefsctl status STORE_DIR,\n"
		"or /.statefs/peers in the mount. Stop with SIGTERM.\n\n"
		"With a [locks] section in the config it also runs the mesh-wide lock\n"
		"service (SPEC §6): a Raft lock table shared by the [locks] members, and\n"
		"the local socket the mount locks through ([node] control, default\n"
		"STORE_DIR/repl.sock)%s.\n",
#ifdef STATEFS_LOCKSVC
		""
#else
		"; this build has no libraft and refuses [locks]"
#endif
		);
}

static int parse_ms(const char *opt, const char *v, uint64_t *out)
{
	if (store_parse_ttl(v, strlen(v), out) || *out == 0) {
		fprintf(stderr, PROG ": %s: bad duration '%s'\n", opt, v);
		return -1;
	}
	return 0;
}

/* NAME=ENDPOINT[=KEY] or NAME==KEY */
static int parse_peer(struct config *c, const char *arg)
{
	struct config_peer *p;
	const char *eq = strchr(arg, '='), *eq2;
	size_t i;

	if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof(p->name)) {
		fprintf(stderr, PROG ": --peer %s: expected NAME=ENDPOINT[=KEY]\n", arg);
		return -1;
	}
	for (i = 0; i < c->npeers; i++)
		if (strncmp(c->peers[i].name, arg, eq - arg) == 0 &&
		    c->peers[i].name[eq - arg] == '\0')
			break;
	if (i == c->npeers) {
		if (c->npeers == CONFIG_PEERS_MAX) {
			fprintf(stderr, PROG ": --peer %s: at most %d peers\n", arg,
				CONFIG_PEERS_MAX);
			return -1;
		}
		c->npeers++;
		memset(&c->peers[i], 0, sizeof(c->peers[i]));
	}
	p = &c->peers[i];
	snprintf(p->name, sizeof(p->name), "%.*s", (int)(eq - arg), arg);
	eq2 = strchr(eq + 1, '=');
	snprintf(p->address, sizeof(p->address), "%.*s",
		 (int)(eq2 ? eq2 - eq - 1 : (long)strlen(eq + 1)), eq + 1);
	if (eq2) {
		if (strlen(eq2 + 1) != CONFIG_KEY_LEN) {
			fprintf(stderr, PROG ": --peer %s: a public key is %d Z85 "
				"characters\n", arg, CONFIG_KEY_LEN);
			return -1;
		}
		memcpy(p->public_key, eq2 + 1, CONFIG_KEY_LEN + 1);
	}
	return 0;
}

/* 0: run; else the exit code. */
static int parse_args(struct config *c, int argc, char **argv, int *verbose)
{
	enum { O_CHECK = 256, O_INSECURE, O_HB, O_PT, O_MO, O_CONFLICT };
	static const struct option lo[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", required_argument, NULL, O_CHECK },
		{ "node", required_argument, NULL, 'n' },
		{ "listen", required_argument, NULL, 'l' },
		{ "peer", required_argument, NULL, 'p' },
		{ "key", required_argument, NULL, 'k' },
		{ "insecure", no_argument, NULL, O_INSECURE },
		{ "heartbeat", required_argument, NULL, O_HB },
		{ "peer-timeout", required_argument, NULL, O_PT },
		{ "max-offset", required_argument, NULL, O_MO },
		{ "conflict", required_argument, NULL, O_CONFLICT },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char err[512];
	int o, i;

	/* the config file first, wherever it is: flags override it */
	for (i = 1; i < argc; i++) {
		const char *file = NULL;
		int check = 0;

		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc)
			file = argv[i + 1];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			file = argv[i] + 9;
		else if (strcmp(argv[i], "--check-config") == 0 && i + 1 < argc)
			file = argv[i + 1], check = 1;
		else if (strncmp(argv[i], "--check-config=", 15) == 0)
			file = argv[i] + 15, check = 1;
		if (!file)
			continue;
		if (config_load(c, file, err, sizeof(err))) {
			fprintf(stderr, PROG ": %s\n", err);
			return 2;
		}
#ifndef STATEFS_LOCKSVC
		/* also for --check-config: statefs-mesh checks each config
		 * before it starts anything */
		if (c->lock_cluster[0]) {
			fprintf(stderr, PROG ": %s: [locks]: this statefs-repl was "
				"built without libraft, so it has no mesh-wide lock "
				"service (install libraft-dev and libuv1-dev and "
				"rebuild, or remove [locks])\n", c->file);
			return 2;
		}
#endif
		if (check)
			return -1; /* valid: exit 0 */
	}
	while ((o = getopt_long(argc, argv, "c:n:l:p:k:vhV", lo, NULL)) != -1) {
		switch (o) {
		case 'c':
		case O_CHECK:
			break;
		case 'n':
			if (!*optarg || strlen(optarg) >= sizeof(c->node_name)) {
				fprintf(stderr, PROG ": --node: 1 to %zu bytes\n",
					sizeof(c->node_name) - 1);
				return 2;
			}
			snprintf(c->node_name, sizeof(c->node_name), "%s", optarg);
			break;
		case 'l':
			snprintf(c->listen, sizeof(c->listen), "%s", optarg);
			break;
		case 'p':
			if (parse_peer(c, optarg))
				return 2;
			break;
		case 'k':
			if (config_read_key(optarg, c->secret_key, c->public_key, err,
					    sizeof(err))) {
				fprintf(stderr, PROG ": %s\n", err);
				return 2;
			}
			snprintf(c->key_file, sizeof(c->key_file), "%s", optarg);
			break;
		case O_INSECURE:
			c->insecure = 1;
			break;
		case O_HB:
			if (parse_ms("--heartbeat", optarg, &c->heartbeat_ms))
				return 2;
			break;
		case O_PT:
			if (parse_ms("--peer-timeout", optarg, &c->peer_timeout_ms))
				return 2;
			break;
		case O_MO:
			if (parse_ms("--max-offset", optarg, &c->so.max_offset_ms))
				return 2;
			break;
		case O_CONFLICT:
			if (strcmp(optarg, "lww") == 0) {
				c->conflict = CONFLICT_LWW;
			} else if (strcmp(optarg, "keep") == 0) {
				c->conflict = CONFLICT_KEEP;
			} else if (strncmp(optarg, "hook:", 5) == 0 && optarg[5] &&
				   strlen(optarg + 5) < sizeof(c->hook)) {
				c->conflict = CONFLICT_HOOK;
				snprintf(c->hook, sizeof(c->hook), "%s", optarg + 5);
			} else {
				fprintf(stderr, PROG ": --conflict: lww, keep or "
					"hook:PROGRAM, not '%s'\n", optarg);
				return 2;
			}
			break;
		case 'v':
			(*verbose)++;
			break;
		case 'h':
			usage(stdout);
			return -1;
		case 'V':
			printf(PROG " %s\n", STATEFS_VERSION);
			return -1;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		snprintf(c->store_dir, sizeof(c->store_dir), "%s", argv[optind++]);
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!c->store_dir[0]) {
		fprintf(stderr, PROG ": no store directory (STORE_DIR, or [store] dir "
			"in the config)\n");
		usage(stderr);
		return 2;
	}
	if (!c->insecure && !c->secret_key[0]) {
		fprintf(stderr, PROG ": no key: give --key FILE (statefsctl keygen "
			"makes one) or [node] key, or run --insecure on a trusted "
			"network\n");
		return 2;
	}
	for (i = 0; i < (int)c->npeers; i++)
		if (!c->insecure && !c->peers[i].public_key[0]) {
			fprintf(stderr, PROG ": peer %s has no public key\n",
				c->peers[i].name);
			return 2;
		}
	return 0;
}

/* ---- sockets ---- */

static int sock_common(void *s)
{
	int zero = 0, hwm = 1000;
	int64_t max = WIRE_MAX;

	return zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) ||
	       zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof(max)) ||
	       zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm)) ||
	       zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm)) ? -errno : 0;
}

static int open_router(struct repl *r)
{
	int one = 1;

	r->router = zmq_socket(r->zctx, ZMQ_ROUTER);
	if (!r->router || sock_common(r->router) ||
	    zmq_setsockopt(r->router, ZMQ_ROUTER_HANDOVER, &one, sizeof(one)) ||
	    zmq_setsockopt(r->router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)))
		return -errno;
	if (!r->cfg.insecure &&
	    (zmq_setsockopt(r->router, ZMQ_CURVE_SERVER, &one, sizeof(one)) ||
	     zmq_setsockopt(r->router, ZMQ_CURVE_SECRETKEY, r->cfg.secret_key,
			    CONFIG_KEY_LEN + 1) ||
	     zmq_setsockopt(r->router, ZMQ_ZAP_DOMAIN, "statefs", 7)))
		return -errno;
	if (r->cfg.listen[0] && zmq_bind(r->router, r->cfg.listen) < 0) {
		int err = -errno;

		fprintf(stderr, PROG ": cannot listen on %s: %s\n", r->cfg.listen,
			zmq_strerror(-err));
		return err;
	}
	return 0;
}

static int open_dealer(struct repl *r, struct peer *p)
{
	int one = 1;
	void *s = zmq_socket(r->zctx, ZMQ_DEALER);

	if (!s || sock_common(s) ||
	    zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof(one)) ||
	    zmq_setsockopt(s, ZMQ_ROUTING_ID, r->node_name, strlen(r->node_name)))
		return -errno;
	if (!r->cfg.insecure &&
	    (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, p->cfg.public_key,
			    CONFIG_KEY_LEN + 1) ||
	     zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, r->cfg.public_key,
			    CONFIG_KEY_LEN + 1) ||
	     zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, r->cfg.secret_key,
			    CONFIG_KEY_LEN + 1)))
		return -errno;
	if (zmq_connect(s, p->cfg.address) < 0) {
		int err = -errno;

		fprintf(stderr, PROG ": peer %s: cannot connect to %s: %s\n",
			p->cfg.name, p->cfg.address, zmq_strerror(-err));
		zmq_close(s);
		return err;
	}
	p->dl.sock = s;
	p->dl.rid_len = 0;
	return 0;
}

/* ---- the waker: a commit by anyone wakes the loop ---- */

static void *waker_main(void *arg)
{
	struct repl *r = arg;
	void *tx = zmq_socket(r->zctx, ZMQ_PAIR);
	uint64_t last = store_last_seq(r->store);

	if (!tx || zmq_connect(tx, "inproc://statefs-wake") < 0)
		return NULL;
	while (!r->stop) {
		int got = store_wait(r->store, last, 200);

		if (got == 1) {
			last = store_last_seq(r->store);
			zmq_send(tx, "", 0, ZMQ_DONTWAIT);
		}
	}
	zmq_close(tx);
	return NULL;
}

/* ---- the loop ---- */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

/* Take up to `max` messages waiting on sock. 1 if more may wait. */
static int drain(struct repl *r, void *sock, int max)
{
	int n;

	for (n = 0; n < max; n++) {
		struct link l = { .sock = sock };
		zmq_msg_t m;
		const char *uid;

		if (sock == r->router) {
			zmq_msg_t id;

			zmq_msg_init(&id);
			if (zmq_msg_recv(&id, sock, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&id);
				return 0;
			}
			if (zmq_msg_size(&id) > REPL_RID_MAX || !zmq_msg_more(&id)) {
				zmq_msg_close(&id);
				r->c.drop_malformed++;
				continue;
			}
			l.rid_len = zmq_msg_size(&id);
			memcpy(l.rid, zmq_msg_data(&id), l.rid_len);
			zmq_msg_close(&id);
		}
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return 0;
		}
		if (zmq_msg_more(&m)) {
			/* one frame per message: drop the rest */
			r->c.drop_malformed++;
			while (zmq_msg_more(&m)) {
				zmq_msg_close(&m);
				zmq_msg_init(&m);
				if (zmq_msg_recv(&m, sock, 0) < 0)
					break;
			}
			zmq_msg_close(&m);
			continue;
		}
		uid = r->cfg.insecure ? NULL : zmq_msg_gets(&m, "User-Id");
		peer_receive(r, &l, zmq_msg_data(&m), zmq_msg_size(&m), uid);
		zmq_msg_close(&m);
	}
	return 1;
}

static int run(struct repl *r)
{
	zmq_pollitem_t items[2 + CONFIG_PEERS_MAX];
	int64_t next_tick = 0;
	pthread_t waker;
	size_t i, n;

	r->wake_rx = zmq_socket(r->zctx, ZMQ_PAIR);
	if (!r->wake_rx || zmq_bind(r->wake_rx, "inproc://statefs-wake") < 0)
		return -errno;
	if (pthread_create(&waker, NULL, waker_main, r))
		return -EAGAIN;
	while (!stop_signal) {
		int64_t now;

		n = 0;
		items[n++] = (zmq_pollitem_t){ .socket = r->wake_rx, .events = ZMQ_POLLIN };
		items[n++] = (zmq_pollitem_t){ .socket = r->router, .events = ZMQ_POLLIN };
		for (i = 0; i < r->npeers; i++)
			if (r->peers[i].dl.sock)
				items[n++] = (zmq_pollitem_t){ .socket = r->peers[i].dl.sock,
							       .events = ZMQ_POLLIN };
		if (zmq_poll(items, (int)n, 50) < 0 && errno != EINTR)
			break;
		if (items[0].revents & ZMQ_POLLIN)
			while (zmq_recv(r->wake_rx, NULL, 0, ZMQ_DONTWAIT) >= 0)
				;
		/* round robin, a few messages per socket per turn, for at
		 * most 20 ms: one busy peer never starves the others, nor our
		 * heartbeats */
		{
			int64_t until = repl_now_ms() + 20;
			int more = 1;

			while (more && repl_now_ms() < until) {
				more = 0;
				for (i = 1; i < n; i++)
					if ((items[i].revents & ZMQ_POLLIN) &&
					    !drain(r, items[i].socket, 4))
						items[i].revents = 0;
					else if (items[i].revents & ZMQ_POLLIN)
						more = 1;
			}
		}
		status_read_block(r);
		peer_pump(r);
		now = repl_now_ms();
		if (now >= next_tick) {
			peer_tick(r);
			status_write(r);
			/* what every peer holds leaves the binlog after 10 s */
			if (store_binlog_trim_acked(r->store, 10000, 20000) < 0)
				log_rate(LOG_WARNING, "cannot trim the binlog");
			next_tick = now + (int64_t)(r->cfg.heartbeat_ms < 1000 ?
						    r->cfg.heartbeat_ms : 1000);
		}
	}
	r->stop = 1;
	pthread_join(waker, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	struct repl r;
	struct store_info si;
	int verbose = 0, rc, err;
	size_t i;

	memset(&r, 0, sizeof(r));
	log_init(argv[0], LOG_NOTICE);
	config_init(&r.cfg);
	rc = parse_args(&r.cfg, argc, argv, &verbose);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (verbose)
		log_set_level(verbose > 1 ? LOG_DEBUG : LOG_INFO);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	{
		struct sigaction sa = { .sa_handler = on_signal };

		/* no SA_RESTART: zmq_poll returns at once */
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	r.cfg.so.node_name = r.cfg.node_name[0] ? r.cfg.node_name : NULL;
	err = store_open(r.cfg.store_dir, &r.cfg.so, &r.store);
	if (err) {
		fprintf(stderr, PROG ": %s\n", store_last_error());
		return 1;
	}
	if (store_info(r.store, &si)) {
		fprintf(stderr, PROG ": %s: cannot read the store\n", r.cfg.store_dir);
		return 1;
	}
	r.node = si.node_id;
	snprintf(r.node_name, sizeof(r.node_name), "%s", si.node_name);
	randombytes_buf(&r.session, sizeof(r.session));
	pthread_mutex_init(&r.refused_lock, NULL);
	r.peers = calloc(r.cfg.npeers ? r.cfg.npeers : 1, sizeof(*r.peers));
	if (!r.peers)
		return 1;
	r.npeers = r.cfg.npeers;
	for (i = 0; i < r.npeers; i++)
		r.peers[i].cfg = r.cfg.peers[i];
	r.zctx = zmq_ctx_new();
	if (!r.zctx)
		return 1;
	if (r.cfg.insecure)
		log_msg(LOG_WARNING, "insecure: peers are not authenticated and "
			"traffic is not encrypted");
	else if ((err = zap_start(&r)) != 0) {
		fprintf(stderr, PROG ": cannot start authentication: %s\n",
			zmq_strerror(-err));
		return 1;
	}
	/* ZAP is bound: only now may a socket listen */
	if (open_router(&r))
		return 1;
	for (i = 0; i < r.npeers; i++)
		if (r.peers[i].cfg.address[0] && open_dealer(&r, &r.peers[i]))
			return 1;
	log_msg(LOG_NOTICE, "node %s (%016" PRIx64 ") on %s, %zu peers%s",
		r.node_name, r.node, r.cfg.listen[0] ? r.cfg.listen : "no listener",
		r.npeers, r.cfg.insecure ? ", insecure" : "");
	for (i = 0; i < r.npeers; i++)
		if (r.peers[i].dl.sock)
			peer_hello(&r, &r.peers[i], &r.peers[i].dl, WIRE_F_REPLY);
#ifdef STATEFS_LOCKSVC
	if (r.cfg.lock_cluster[0]) {
		char lerr[512];

		err = locksvc_start(&r.cfg, r.store, &r.locks, lerr, sizeof(lerr));
		if (err) {
			fprintf(stderr, PROG ": lock service: %s\n", lerr);
			return 1;
		}
	}
#endif
	rc = run(&r);
	log_msg(LOG_NOTICE, "stopping");
#ifdef STATEFS_LOCKSVC
	locksvc_stop(&r.locks);
#endif
	status_write(&r);
	zmq_close(r.router);
	zmq_close(r.wake_rx);
	for (i = 0; i < r.npeers; i++) {
		if (r.peers[i].dl.sock)
			zmq_close(r.peers[i].dl.sock);
		store_snap_close(&r.peers[i].snap);
		free(r.peers[i].rsnap_last);
	}
	zmq_ctx_shutdown(r.zctx);
	if (!r.cfg.insecure)
		zap_stop(&r);
	zmq_ctx_term(r.zctx);
	wbuf_free(&r.out);
	free(r.peers);
	store_close(&r.store);
	return rc ? 1 : 0;
}
