/*
 * test_raftnet.c — libraft over repl/raftnet.c: real raft_uv ios,
 * real ZeroMQ CURVE on loopback, three nodes on one libuv loop.
 *
 *   0. the transport alone (insecure, no raft): connect's callback runs
 *      once and never inside connect (unknown name, wrong id, member
 *      not running: RAFT_NOCONNECTION); 1 MiB one way and a reply the
 *      other, in order; EOF on close; bytes lost to the block file make
 *      the next ones arrive at a gap and reset the stream; a member
 *      killed without closing its streams has them ended when it comes
 *      back; 24 MiB toward a side that does not read reset the stream
 *      (16 MiB bound); close cancels a pending connect before its own
 *      callback;
 *   1. elect a leader, apply 200 entries: all three apply them all, in
 *      the same order;
 *   2. stop the leader: the other two elect one and commit 50 more; the
 *      old leader restarts from its data dir and catches up;
 *   3. an impostor (node 3's keys, another cluster id) is refused
 *      (drop_cluster) and neither learns a leader nor disturbs the
 *      cluster; hand-made frames are counted exactly (malformed, not a
 *      member, wrong key) and a key that is not a member's is refused
 *      by ZAP: its datagram never arrives;
 *   4. datagrams: in order, exact payloads, -ENOENT, -EMSGSIZE;
 *   5. the block file cuts node 3 off: it applies nothing meanwhile and
 *      catches up once unblocked.
 *
 * A plain program (tests/run runs every tests/unit/test_*, plain and
 * sanitized): exit 0 when all pass, 1 with the failed check. About 15 s,
 * mostly elections; every wait has a deadline. The temporary data dirs
 * are removed on success and on a failed check.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>
#include <zmq.h>

#include "repl/raftguard.h"
#include "repl/raftnet.h"

#define NNODES 3
#define MAXE 1024
#define MAXMSG 256
#define CLUSTER 0x5eed5eed12345678ull

#if defined(__SANITIZE_ADDRESS__)
#define SLOW 3
#else
#define SLOW 1
#endif

#define CHECK(c)                                                         \
	do {                                                             \
		if (!(c))                                                \
			die("%s:%d: check failed: %s", __FILE__, __LINE__, #c); \
	} while (0)

struct msg {
	uint64_t from;
	size_t len;
	unsigned char *data;
};

struct node {
	uint64_t id;
	char name[16];
	char dir[PATH_MAX], block[PATH_MAX + 16];
	char pub[41], sec[41];
	char endpoint[64];
	uint64_t cluster_id;
	struct raftnet_member members[NNODES];
	struct raft raft;
	struct raft_io io;
	struct raft_fsm fsm;
	struct raftnet *net;
	int running, closed;
	uint64_t applied[MAXE];
	size_t napplied;
	struct msg msgs[MAXMSG];
	size_t nmsgs;
};

static uv_loop_t loop;
static char tmpdir[] = "/tmp/test_raftnet.XXXXXX";
static struct node nodes[NNODES], impostor;

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void cleanup(void)
{
	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cleanup();
	exit(1);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Run the loop until cond holds; 0 at the deadline. */
static int wait_for(int (*cond)(void *), void *arg, unsigned ms)
{
	uint64_t end = now_ms() + ms * SLOW;

	while (!cond(arg)) {
		if (now_ms() > end)
			return 0;
		uv_run(&loop, UV_RUN_ONCE);
	}
	return 1;
}

static void run_for(unsigned ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end)
		uv_run(&loop, UV_RUN_ONCE);
}

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0);
	CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* ---- the FSM: remember the values applied, in order ---- */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
		     void **result)
{
	struct node *nd = fsm->data;
	uint64_t v;

	*result = NULL;
	if (buf->len != 8)
		die("%s: applied an entry of %zu bytes", nd->name, buf->len);
	memcpy(&v, buf->base, 8);
	if (nd->napplied >= MAXE)
		die("%s: too many entries", nd->name);
	nd->applied[nd->napplied++] = v;
	return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
			unsigned *n)
{
	struct node *nd = fsm->data;

	*bufs = raft_malloc(sizeof(**bufs));
	(*bufs)->len = 8 * (nd->napplied + 1);
	(*bufs)->base = raft_malloc((*bufs)->len);
	memcpy((*bufs)->base, &nd->napplied, 8);
	memcpy((char *)(*bufs)->base + 8, nd->applied, 8 * nd->napplied);
	*n = 1;
	return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct node *nd = fsm->data;
	uint64_t n;

	memcpy(&n, buf->base, 8);
	if (n > MAXE || buf->len != 8 * (n + 1))
		return RAFT_MALFORMED;
	nd->napplied = n;
	memcpy(nd->applied, (char *)buf->base + 8, 8 * n);
	raft_free(buf->base);
	return 0;
}

/* ---- nodes ---- */

static void on_message(void *arg, uint64_t from, const void *buf, size_t len)
{
	struct node *nd = arg;
	struct msg *m;

	if (nd->nmsgs >= MAXMSG)
		die("%s: too many datagrams", nd->name);
	m = &nd->msgs[nd->nmsgs++];
	m->from = from;
	m->len = len;
	m->data = malloc(len ? len : 1);
	CHECK(m->data);
	memcpy(m->data, buf, len);
}

static void node_start(struct node *nd)
{
	struct raftnet_opts o = {
		.loop = &loop, .self = nd->id, .members = nd->members,
		.nmembers = NNODES, .listen = nd->endpoint,
		.secret_key = nd->sec, .public_key = nd->pub,
		.cluster_id = nd->cluster_id, .block_file = nd->block,
		.on_message = on_message, .arg = nd,
	};
	struct raft_configuration conf;
	char err[256];
	int rc;

	rc = raftnet_new(&o, &nd->net, err, sizeof(err));
	if (rc < 0)
		die("%s: raftnet_new: %d %s", nd->name, rc, err);
	nd->fsm = (struct raft_fsm){ .version = 1, .data = nd,
				     .apply = fsm_apply,
				     .snapshot = fsm_snapshot,
				     .restore = fsm_restore };
	nd->napplied = 0;
	CHECK(raft_uv_init(&nd->io, &loop, nd->dir,
			   raftnet_transport(nd->net)) == 0);
	raft_uv_set_connect_retry_delay(&nd->io, 100);
	CHECK(raft_init(&nd->raft, &nd->io, &nd->fsm, nd->id, nd->name) == 0);
	CHECK(raftguard_wrap(&nd->io) == 0);
	raft_set_pre_vote(&nd->raft, true);
	raft_set_heartbeat_timeout(&nd->raft, 100);
	raft_set_election_timeout(&nd->raft, 1000);
	raft_set_snapshot_threshold(&nd->raft, 100000);
	raft_configuration_init(&conf);
	for (int i = 0; i < NNODES; i++)
		CHECK(raft_configuration_add(&conf, nd->members[i].id,
					     nd->members[i].name, RAFT_VOTER) == 0);
	rc = raft_bootstrap(&nd->raft, &conf);
	CHECK(rc == 0 || rc == RAFT_CANTBOOTSTRAP);
	raft_configuration_close(&conf);
	CHECK(raft_start(&nd->raft) == 0);
	nd->running = 1;
}

static void raft_closed(struct raft *r)
{
	((struct node *)r->data)->closed = 1;
}

static void net_closed(void *arg)
{
	((struct node *)arg)->closed = 2;
}

static int is_closed(void *arg)
{
	return ((struct node *)arg)->closed == 1;
}

static int net_is_closed(void *arg)
{
	return ((struct node *)arg)->closed == 2;
}

static void node_stop(struct node *nd)
{
	nd->closed = 0;
	nd->raft.data = nd;
	raft_close(&nd->raft, raft_closed);
	if (!wait_for(is_closed, nd, 10000))
		die("%s: raft_close did not complete", nd->name);
	raftguard_unwrap(&nd->io);
	raft_uv_close(&nd->io);
	raftnet_close(nd->net, net_closed, nd);
	if (!wait_for(net_is_closed, nd, 10000))
		die("%s: raftnet_close did not complete", nd->name);
	nd->net = NULL;
	nd->running = 0;
	for (size_t i = 0; i < nd->nmsgs; i++)
		free(nd->msgs[i].data);
	nd->nmsgs = 0;
}

static void node_setup(struct node *nd, int idx, const struct node *keys_of)
{
	nd->id = (uint64_t)idx + 1;
	snprintf(nd->name, sizeof(nd->name), "n%d", idx + 1);
	snprintf(nd->dir, sizeof(nd->dir), "%s/%s%s", tmpdir, nd->name,
		 nd == &impostor ? "-impostor" : "");
	CHECK(mkdir(nd->dir, 0700) == 0);
	snprintf(nd->block, sizeof(nd->block), "%s/repl.block", nd->dir);
	if (keys_of) {
		memcpy(nd->pub, keys_of->pub, 41);
		memcpy(nd->sec, keys_of->sec, 41);
	} else {
		CHECK(zmq_curve_keypair(nd->pub, nd->sec) == 0);
	}
	snprintf(nd->endpoint, sizeof(nd->endpoint), "tcp://127.0.0.1:%d",
		 free_port());
	nd->cluster_id = CLUSTER;
}

static void members_fill(struct node *nd)
{
	for (int i = 0; i < NNODES; i++) {
		const struct node *m = (uint64_t)i + 1 == nd->id ? nd : &nodes[i];
		struct raftnet_member *rm = &nd->members[i];

		rm->id = (uint64_t)i + 1;
		snprintf(rm->name, sizeof(rm->name), "%s", m->name);
		snprintf(rm->endpoint, sizeof(rm->endpoint), "%s", m->endpoint);
		memcpy(rm->public_key, m->pub, 41);
	}
}

/* The leader all running nodes agree on, or NULL. */
static struct node *leader(void)
{
	struct node *l = NULL;

	for (int i = 0; i < NNODES; i++)
		if (nodes[i].running && raft_state(&nodes[i].raft) == RAFT_LEADER)
			l = &nodes[i];
	if (!l)
		return NULL;
	for (int i = 0; i < NNODES; i++) {
		raft_id id;
		const char *addr;

		if (!nodes[i].running)
			continue;
		raft_leader(&nodes[i].raft, &id, &addr);
		if (id != l->id)
			return NULL;
	}
	return l;
}

static int have_leader(void *arg)
{
	(void)arg;
	return leader() != NULL;
}

/* ---- proposals ---- */

static unsigned applied_ok, applied_failed;

static void apply_cb(struct raft_apply *req, int status, void *result)
{
	(void)result;
	if (status == 0)
		applied_ok++;
	else
		applied_failed++;
	free(req);
}

static int batch_done(void *arg)
{
	return applied_ok + applied_failed >= *(unsigned *)arg;
}

/* Apply values from..to-1 at the leader, 20 at a time. */
static void propose(uint64_t from, uint64_t to)
{
	while (from < to) {
		struct node *l;
		unsigned want;
		uint64_t v, end = from + 20 < to ? from + 20 : to;

		if (!wait_for(have_leader, NULL, 15000))
			die("no leader");
		l = leader();
		applied_ok = applied_failed = 0;
		want = (unsigned)(end - from);
		for (v = from; v < end; v++) {
			struct raft_apply *req = malloc(sizeof(*req));
			struct raft_buffer buf = { .base = raft_malloc(8), .len = 8 };

			CHECK(req && buf.base);
			memcpy(buf.base, &v, 8);
			CHECK(raft_apply(&l->raft, req, &buf, 1, apply_cb) == 0);
		}
		if (!wait_for(batch_done, &want, 15000))
			die("entries %" PRIu64 "..%" PRIu64 " not committed",
			    from, end - 1);
		if (applied_failed)
			die("%u entries failed at leader %s", applied_failed, l->name);
		from = end;
	}
}

struct want_applied {
	struct node *nd;
	size_t n;
};

static int has_applied(void *arg)
{
	struct want_applied *w = arg;

	return w->nd->napplied >= w->n;
}

/* Every running node applied exactly 0..n-1 in order. */
static void check_applied(size_t n)
{
	for (int i = 0; i < NNODES; i++) {
		struct want_applied w = { &nodes[i], n };

		if (!nodes[i].running)
			continue;
		if (!wait_for(has_applied, &w, 15000))
			die("%s applied %zu entries, not %zu", nodes[i].name,
			    nodes[i].napplied, n);
		CHECK(nodes[i].napplied == n);
		for (size_t k = 0; k < n; k++)
			if (nodes[i].applied[k] != k)
				die("%s: entry %zu is %" PRIu64, nodes[i].name, k,
				    nodes[i].applied[k]);
	}
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f);
	fputs(text, f);
	CHECK(fclose(f) == 0);
}

/* ---- 0: the transport contract, without raft, insecure ---- */

struct tside {
	struct raftnet *net;
	struct raft_uv_transport *t;
	uv_stream_t *stream;          /* connected or accepted */
	unsigned char *got;           /* bytes read from stream */
	size_t ngot, cap, want;
	int eof, accepts, closed;
	uint64_t accept_id;
	char accept_addr[16];
};

static struct tside ta, tb;
static char ablock_path[PATH_MAX + 16];
static int connects, connect_status, tclose_calls;
static uv_stream_t *connect_stream;

static void t_connect_cb(struct raft_uv_connect *req, uv_stream_t *stream,
			 int status)
{
	(void)req;
	connects++;
	connect_status = status;
	connect_stream = stream;
	if (tclose_calls)
		die("0: connect callback after the close callback");
}

static void t_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	(void)h;
	buf->base = malloc(size);
	buf->len = size;
}

static void t_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct tside *side = st->data;

	if (nread > 0) {
		if (side->ngot + (size_t)nread > side->cap) {
			side->cap = (side->ngot + (size_t)nread) * 2;
			side->got = realloc(side->got, side->cap);
			CHECK(side->got);
		}
		memcpy(side->got + side->ngot, buf->base, (size_t)nread);
		side->ngot += (size_t)nread;
	} else if (nread < 0) {
		side->eof = nread == UV_EOF ? 1 : -1;
		uv_read_stop(st);
	}
	free(buf->base);
}

static void t_accept(struct raft_uv_transport *t, raft_id id,
		     const char *address, uv_stream_t *stream)
{
	struct tside *side = t == tb.t ? &tb : &ta;

	side->accepts++;
	side->accept_id = id;
	snprintf(side->accept_addr, sizeof(side->accept_addr), "%s", address);
	if (side->stream) { /* one at a time here: close extras */
		uv_close((uv_handle_t *)stream, (uv_close_cb)raft_free);
		return;
	}
	side->stream = stream;
	stream->data = side;
	CHECK(uv_read_start(stream, t_alloc, t_read) == 0);
}

static void t_closed(struct raft_uv_transport *t)
{
	(void)t;
	tclose_calls++;
}

static void stream_freed(uv_handle_t *h)
{
	raft_free(h);
}

static void side_closed(void *arg)
{
	((struct tside *)arg)->closed = 1;
}

static int connected(void *arg)
{
	(void)arg;
	return connects > 0;
}

static int side_has(void *arg)
{
	struct tside *side = arg;

	return side->eof || side->ngot >= side->want;
}

static int b_accepted(void *arg)
{
	(void)arg;
	return tb.accepts > 0 && tb.stream;
}

static int b_accepted2(void *arg)
{
	(void)arg;
	return tb.accepts > 1;
}

static int side_is_closed(void *arg)
{
	return ((struct tside *)arg)->closed;
}

static int got_eof(void *arg)
{
	return ((struct tside *)arg)->eof != 0;
}

static int both_closed(void *arg)
{
	(void)arg;
	return ta.closed && tb.closed;
}

static int t_is_closed(void *arg)
{
	(void)arg;
	return tclose_calls > 0;
}

static int connect_once(raft_id id, const char *address);

static int b_reaches_a(void *arg)
{
	(void)arg;
	return raftnet_send(tb.net, 1, NULL, 0) == 0;
}

static int a_has(void *arg)
{
	return ta.eof || ta.ngot >= *(size_t *)arg;
}

static int both_eof(void *arg)
{
	(void)arg;
	return ta.eof && tb.eof;
}

static void b_write(const char *text)
{
	static uv_write_t w;
	static char buf[8];
	uv_buf_t wb;

	snprintf(buf, sizeof(buf), "%s", text);
	wb = uv_buf_init(buf, (unsigned)strlen(buf));
	CHECK(uv_write(&w, tb.stream, &wb, 1, NULL) == 0);
}

/* b -> a bytes lost (a's block file): the next ones arrive at an offset
 * a did not expect, and the stream is reset on both sides. */
static void test_gap(int *accepts)
{
	struct raftnet_stats before, after;
	size_t one = 1;
	int i, was = *accepts;

	for (i = 0; connect_once(2, "b") != 0; i++) {
		if (i > 50)
			die("0: cannot connect a to b for the gap test");
		run_for(100);
	}
	ta.stream = connect_stream;
	ta.stream->data = &ta;
	ta.ngot = 0;
	ta.eof = 0;
	tb.eof = 0;
	CHECK(uv_read_start(ta.stream, t_alloc, t_read) == 0);
	if (!wait_for(b_accepted, NULL, 5000) || *accepts != was + 1)
		die("0: b did not accept the gap test's stream");
	/* b's DEALER redials the new a: a frame b cannot queue would reset
	 * the stream (raftnet.h), so write once b reaches a */
	if (!wait_for(b_reaches_a, NULL, 5000))
		die("0: b does not reach the new a");
	b_write("x");
	if (!wait_for(a_has, &one, 5000) || ta.ngot != 1)
		die("0: a did not get b's first byte (eof %d, %zu bytes)",
		    ta.eof, ta.ngot);
	raftnet_stats(ta.net, &before);
	write_file(ablock_path, "b\n");
	run_for(200);
	b_write("y"); /* cut at a */
	run_for(200);
	write_file(ablock_path, "");
	run_for(200);
	b_write("z"); /* offset 2, a expects 1 */
	if (!wait_for(both_eof, NULL, 5000))
		die("0: the gap did not reset the stream");
	raftnet_stats(ta.net, &after);
	CHECK(ta.ngot == 1 && ta.got[0] == 'x' && ta.eof == 1 && tb.eof == 1);
	CHECK(after.streams_reset == before.streams_reset + 1);
	CHECK(after.drop_blocked > before.drop_blocked);
	uv_close((uv_handle_t *)ta.stream, stream_freed);
	uv_close((uv_handle_t *)tb.stream, stream_freed);
	tb.stream = NULL;
}

static int write_status = 1;

static void backlog_written(uv_write_t *w, int status)
{
	(void)w;
	write_status = status;
}

static int backlog_done(void *arg)
{
	(void)arg;
	return write_status != 1 && tb.eof;
}

/* a does not read: what b sends piles up in a's raftnet, which stops
 * taking frames at 2 MiB and resets the stream a second later rather
 * than grow it or stall every other stream (raftnet.c invariant 2). */
static void test_backlog(int *accepts)
{
	static uv_write_t w;
	struct raftnet_stats before, after;
	size_t len = 24u << 20;
	char *big = calloc(1, len);
	uv_buf_t wb;
	int i, was = *accepts;

	CHECK(big);
	for (i = 0; connect_once(2, "b") != 0; i++) {
		if (i > 50)
			die("0: cannot connect a to b for the backlog test");
		run_for(100);
	}
	ta.stream = connect_stream; /* never read */
	if (!wait_for(b_accepted, NULL, 5000) || *accepts != was + 1)
		die("0: b did not accept the backlog test's stream");
	tb.eof = 0;
	raftnet_stats(ta.net, &before);
	wb = uv_buf_init(big, (unsigned)len);
	CHECK(uv_write(&w, tb.stream, &wb, 1, backlog_written) == 0);
	if (!wait_for(backlog_done, NULL, 20000))
		die("0: a's backlog did not reset the stream (write %d, eof %d)",
		    write_status, tb.eof);
	raftnet_stats(ta.net, &after);
	/* b's write may have completed: its bytes waited in ZeroMQ's
	 * queues, not in a's raftnet */
	CHECK(write_status <= 0);
	CHECK(after.streams_reset == before.streams_reset + 1);
	uv_close((uv_handle_t *)ta.stream, stream_freed);
	uv_close((uv_handle_t *)tb.stream, stream_freed);
	tb.stream = NULL;
	free(big);
}

/* One connect; the callback's status (it must not run inside connect). */
static int connect_once(raft_id id, const char *address)
{
	static struct raft_uv_connect req;

	connects = 0;
	connect_stream = NULL;
	CHECK(ta.t->connect(ta.t, &req, id, address, t_connect_cb) == 0);
	CHECK(connects == 0);
	if (!wait_for(connected, NULL, 5000))
		die("0: connect callback never ran");
	CHECK(connects == 1);
	return connect_status;
}

static void test_transport(void)
{
	struct raftnet_member m[3] = {
		{ .id = 1, .name = "a" }, { .id = 2, .name = "b" },
		{ .id = 3, .name = "c" },
	};
	struct raftnet_opts o = { .loop = &loop, .members = m, .nmembers = 3,
				  .cluster_id = 77 };
	struct raftnet_stats sa, sb;
	size_t big = (1u << 20) + 17;
	unsigned char *data = malloc(big);
	uv_write_t w;
	uv_buf_t wb;
	static char pong[] = "pong";
	char ablock[PATH_MAX + 16];
	struct raftnet *x;
	char err[256], lb[256];
	int i;

	for (i = 0; i < 3; i++)
		snprintf(m[i].endpoint, sizeof(m[i].endpoint),
			 "tcp://127.0.0.1:%d", free_port());
	snprintf(ablock, sizeof(ablock), "%s/a.block", tmpdir);
	memcpy(ablock_path, ablock, sizeof(ablock_path));
	o.self = 1;
	o.listen = m[0].endpoint;
	o.block_file = ablock;
	CHECK(raftnet_new(&o, &ta.net, err, sizeof(err)) == 0);
	o.block_file = NULL;
	o.self = 2;
	o.listen = m[1].endpoint;
	CHECK(raftnet_new(&o, &tb.net, err, sizeof(err)) == 0);
	/* an address in use, a self that is not a member */
	o.self = 3;
	CHECK(raftnet_new(&o, &x, err, sizeof(err)) == -EADDRINUSE && !x);
	snprintf(lb, sizeof(lb), "%s", m[2].endpoint);
	o.listen = lb;
	o.self = 4;
	CHECK(raftnet_new(&o, &x, err, sizeof(err)) == -ENOENT && !x);
	{ /* a member's address ZeroMQ cannot parse */
		struct raftnet_member bad[3];

		memcpy(bad, m, sizeof(bad));
		snprintf(bad[2].endpoint, sizeof(bad[2].endpoint), "nonsense");
		o.members = bad;
		o.self = 1;
		CHECK(raftnet_new(&o, &x, err, sizeof(err)) == -EINVAL && !x);
		CHECK(strstr(err, "nonsense") != NULL);
		o.members = m;
	}
	ta.t = raftnet_transport(ta.net);
	tb.t = raftnet_transport(tb.net);
	CHECK(ta.t->init(ta.t, 2, "a") == RAFT_INVALID);
	CHECK(ta.t->init(ta.t, 1, "a") == 0);
	CHECK(tb.t->init(tb.t, 2, "b") == 0);
	CHECK(ta.t->listen(ta.t, t_accept) == 0);
	CHECK(tb.t->listen(tb.t, t_accept) == 0);
	CHECK(connect_once(9, "zz") == RAFT_NOCONNECTION);
	CHECK(connect_once(3, "b") == RAFT_NOCONNECTION);
	CHECK(connect_once(3, "c") == RAFT_NOCONNECTION); /* not running */
	for (i = 0; connect_once(2, "b") != 0; i++) {
		if (i > 50)
			die("0: cannot connect a to b");
		run_for(100);
	}
	CHECK(connect_stream);
	ta.stream = connect_stream;
	ta.stream->data = &ta;
	if (!wait_for(b_accepted, NULL, 5000))
		die("0: b accepted nothing");
	CHECK(tb.accepts == 1 && tb.accept_id == 1);
	CHECK(strcmp(tb.accept_addr, "a") == 0);
	/* 1 MiB a -> b in order; "pong" b -> a */
	for (size_t k = 0; k < big; k++)
		data[k] = (unsigned char)(k * 31 + k / 4096);
	wb = uv_buf_init((char *)data, (unsigned)big);
	CHECK(uv_write(&w, ta.stream, &wb, 1, NULL) == 0);
	CHECK(uv_read_start(ta.stream, t_alloc, t_read) == 0);
	tb.want = big;
	if (!wait_for(side_has, &tb, 10000))
		die("0: b got %zu of %zu bytes", tb.ngot, big);
	CHECK(tb.ngot == big && memcmp(tb.got, data, big) == 0);
	wb = uv_buf_init(pong, 4);
	CHECK(uv_write(&w, tb.stream, &wb, 1, NULL) == 0);
	ta.want = 4;
	if (!wait_for(side_has, &ta, 5000) || ta.ngot != 4 ||
	    memcmp(ta.got, "pong", 4) != 0)
		die("0: a did not get pong");
	/* a closes: b reads EOF */
	uv_close((uv_handle_t *)ta.stream, stream_freed);
	if (!wait_for(got_eof, &tb, 5000) || tb.eof != 1)
		die("0: b saw no EOF after a closed");
	uv_close((uv_handle_t *)tb.stream, stream_freed);
	tb.stream = NULL;
	raftnet_stats(ta.net, &sa);
	raftnet_stats(tb.net, &sb);
	CHECK(sa.streams_opened == 1 && sb.streams_opened == 1);
	CHECK(sb.bytes_in >= big && sa.drop_malformed == 0);
	/* a dies without a word (its CLOSE frames cut by the block file);
	 * when it comes back (a new epoch) and opens a stream, b ends the
	 * streams the old a had opened */
	for (i = 0; connect_once(2, "b") != 0; i++) {
		if (i > 50)
			die("0: cannot connect a to b again");
		run_for(100);
	}
	if (!wait_for(b_accepted2, NULL, 5000))
		die("0: b accepted no second stream");
	tb.eof = 0;
	write_file(ablock, "b\n");
	run_for(200);
	uv_close((uv_handle_t *)connect_stream, stream_freed);
	ta.closed = 0;
	raftnet_close(ta.net, side_closed, &ta);
	if (!wait_for(side_is_closed, &ta, 5000))
		die("0: raftnet_close of a did not complete");
	run_for(300);
	CHECK(tb.eof == 0);
	write_file(ablock, "");
	o.self = 1;
	o.listen = m[0].endpoint;
	o.block_file = ablock;
	CHECK(raftnet_new(&o, &ta.net, err, sizeof(err)) == 0);
	ta.t = raftnet_transport(ta.net);
	CHECK(ta.t->init(ta.t, 1, "a") == 0);
	for (i = 0; connect_once(2, "b") != 0; i++) {
		if (i > 50)
			die("0: cannot connect the new a to b");
		run_for(100);
	}
	if (!wait_for(got_eof, &tb, 5000) || tb.eof != 1)
		die("0: b kept the dead a's stream");
	uv_close((uv_handle_t *)tb.stream, stream_freed);
	tb.stream = NULL;
	uv_close((uv_handle_t *)connect_stream, stream_freed);
	test_gap(&tb.accepts);
	test_backlog(&tb.accepts);
	/* a pending connect is cancelled by close, once, before close's cb */
	{
		static struct raft_uv_connect req;

		connects = 0;
		CHECK(ta.t->connect(ta.t, &req, 2, "b", t_connect_cb) == 0);
		ta.t->close(ta.t, t_closed);
		CHECK(connects == 0);
		if (!wait_for(t_is_closed, NULL, 5000))
			die("0: transport close never completed");
		CHECK(connects == 1 && connect_status == RAFT_CANCELED &&
		      connect_stream == NULL && tclose_calls == 1);
		CHECK(ta.t->connect(ta.t, &req, 2, "b", t_connect_cb) ==
		      RAFT_NOCONNECTION);
	}
	run_for(200);
	raftnet_close(ta.net, side_closed, &ta);
	raftnet_close(tb.net, side_closed, &tb);
	if (!wait_for(both_closed, NULL, 5000))
		die("0: raftnet_close did not complete");
	CHECK(connects == 1 && tclose_calls == 1);
	if (tb.stream) /* b may have accepted the cancelled connect's stream */
		uv_close((uv_handle_t *)tb.stream, stream_freed);
	run_for(50);
	free(ta.got);
	free(tb.got);
	free(data);
	printf("ok 0 - transport: connect outcomes, 1 MiB tunnelled in order, "
	       "EOF, gap reset, a killed opener's streams ended, backlog "
	       "reset, cancel on close (insecure)\n");
}

/* ---- 1, 2 ---- */

static void test_replicate(void)
{
	if (!wait_for(have_leader, NULL, 15000))
		die("1: no leader elected");
	propose(0, 200);
	check_applied(200);
	printf("ok 1 - 3 nodes applied 200 entries in the same order "
	       "(leader %s)\n", leader()->name);
}

static void test_restart(void)
{
	struct node *old = leader();
	struct raftnet_stats st;

	CHECK(old);
	node_stop(old);
	if (!wait_for(have_leader, NULL, 15000))
		die("2: no new leader after %s stopped", old->name);
	CHECK(leader() != old);
	propose(200, 250);
	check_applied(250);
	node_start(old);
	check_applied(250);
	raftnet_stats(old->net, &st);
	CHECK(st.streams_opened > 0 && st.frames_in > 0);
	printf("ok 2 - new leader %s committed 50 more; %s restarted and "
	       "caught up\n", leader()->name, old->name);
}

/* ---- 3 ---- */

static void *raw_dealer(void *ctx, const char *pub, const char *sec,
			const struct node *to)
{
	void *s = zmq_socket(ctx, ZMQ_DEALER);
	int linger = 0;

	CHECK(s);
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, to->pub, 40);
	zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40);
	zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40);
	CHECK(zmq_connect(s, to->endpoint) == 0);
	return s;
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* A datagram frame as raftnet.c's top comment defines it. */
static void raw_msg(void *s, uint64_t cluster, uint64_t from, const char *text)
{
	unsigned char f[40 + 64];
	size_t len = strlen(text);

	memset(f, 0, 40);
	memcpy(f, "SFRN", 4);
	f[4] = 1;
	f[5] = 5;
	put64(f + 8, cluster);
	put64(f + 16, from);
	memcpy(f + 40, text, len);
	CHECK(zmq_send(s, f, 40 + len, 0) == (int)(40 + len));
}

static int got_msg(const struct node *nd, const char *text)
{
	for (size_t i = 0; i < nd->nmsgs; i++)
		if (nd->msgs[i].len == strlen(text) &&
		    memcmp(nd->msgs[i].data, text, nd->msgs[i].len) == 0)
			return 1;
	return 0;
}

static int got_control(void *arg)
{
	return got_msg(arg, "control");
}

struct monitor {
	void *pair;
	int auth_failed;
};

static int saw_auth_failure(void *arg)
{
	struct monitor *m = arg;
	zmq_msg_t a, b;

	for (;;) {
		zmq_msg_init(&a);
		zmq_msg_init(&b);
		if (zmq_msg_recv(&a, m->pair, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&a);
			zmq_msg_close(&b);
			return m->auth_failed;
		}
		zmq_msg_recv(&b, m->pair, 0);
		if (zmq_msg_size(&a) >= 2) {
			uint16_t ev;

			memcpy(&ev, zmq_msg_data(&a), 2);
			if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
				m->auth_failed = 1;
		}
		zmq_msg_close(&a);
		zmq_msg_close(&b);
	}
}

static void test_impostor(void)
{
	struct node *l = leader(), *n1 = &nodes[0], *n2 = &nodes[1];
	struct raftnet_stats s1, s2, before, after;
	raft_term term;
	raft_id id;
	const char *addr;

	CHECK(l);
	term = l->raft.current_term;
	raftnet_stats(n1->net, &s1);
	raftnet_stats(n2->net, &s2);
	/* node 3's keys and id, another cluster's id */
	node_setup(&impostor, 2, &nodes[2]);
	impostor.cluster_id = CLUSTER ^ 1;
	members_fill(&impostor);
	node_start(&impostor);
	run_for(3000); /* several election timeouts of the impostor */
	raft_leader(&impostor.raft, &id, &addr);
	CHECK(id == 0);
	CHECK(raft_state(&impostor.raft) != RAFT_LEADER);
	CHECK(leader() == l && l->raft.current_term == term);
	raftnet_stats(n1->net, &before);
	raftnet_stats(n2->net, &after);
	CHECK(before.drop_cluster > s1.drop_cluster);
	CHECK(after.drop_cluster > s2.drop_cluster);
	raftnet_stats(impostor.net, &s1);
	CHECK(s1.frames_in == 0);
	node_stop(&impostor);
	run_for(500); /* frames it sent before it stopped */
	printf("ok 3a - an impostor of another cluster was refused "
	       "(drop_cluster %" PRIu64 " + %" PRIu64 ")\n",
	       before.drop_cluster, after.drop_cluster);

	/* hand-made frames with n2's key at n1, and an unknown key */
	void *ctx = zmq_ctx_new();
	char upub[41], usec[41];
	struct monitor mon = { 0 };
	void *intruder, *raw;
	int linger = 0;

	CHECK(zmq_curve_keypair(upub, usec) == 0);
	intruder = raw_dealer(ctx, upub, usec, n1);
	CHECK(zmq_socket_monitor(intruder, "inproc://rn-mon",
				 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) == 0);
	mon.pair = zmq_socket(ctx, ZMQ_PAIR);
	zmq_setsockopt(mon.pair, ZMQ_LINGER, &linger, sizeof(linger));
	CHECK(zmq_connect(mon.pair, "inproc://rn-mon") == 0);
	raw_msg(intruder, CLUSTER, 2, "intruder");
	raw = raw_dealer(ctx, n2->pub, n2->sec, n1);
	raftnet_stats(n1->net, &before);
	CHECK(zmq_send(raw, "junk!", 5, 0) == 5);
	raw_msg(raw, CLUSTER + 1, 2, "other cluster");
	raw_msg(raw, CLUSTER, 9, "not a member");
	raw_msg(raw, CLUSTER, 3, "n3 with n2's key");
	raw_msg(raw, CLUSTER, 2, "control");
	if (!wait_for(got_control, n1, 10000))
		die("3: the control datagram did not arrive");
	if (!wait_for(saw_auth_failure, &mon, 10000))
		die("3: ZAP did not refuse the unknown key");
	run_for(300);
	raftnet_stats(n1->net, &after);
	CHECK(after.drop_malformed == before.drop_malformed + 1);
	CHECK(after.drop_cluster == before.drop_cluster + 1);
	CHECK(after.drop_member == before.drop_member + 1);
	CHECK(after.drop_key == before.drop_key + 1);
	CHECK(!got_msg(n1, "intruder"));
	CHECK(!got_msg(n1, "other cluster") && !got_msg(n1, "not a member") &&
	      !got_msg(n1, "n3 with n2's key"));
	CHECK(n1->nmsgs == 1 && n1->msgs[0].from == 2);
	zmq_close(raw);
	zmq_close(intruder);
	zmq_close(mon.pair);
	zmq_ctx_term(ctx);
	for (size_t i = 0; i < n1->nmsgs; i++)
		free(n1->msgs[i].data);
	n1->nmsgs = 0;
	printf("ok 3b - bad frames counted exactly; an unknown key refused "
	       "by ZAP\n");
}

/* ---- 4 ---- */

static int got_all(void *arg)
{
	return nodes[1].nmsgs >= *(size_t *)arg;
}

static void test_datagrams(void)
{
	struct node *n1 = &nodes[0], *n2 = &nodes[1];
	static unsigned char buf[RAFTNET_MSG_MAX + 1];
	size_t lens[100], want = 100;
	struct raftnet_stats st;

	CHECK(n2->nmsgs == 0);
	for (size_t i = 0; i < 100; i++) {
		lens[i] = i == 99 ? RAFTNET_MSG_MAX : (i * 997) % 5000;
		for (size_t j = 0; j < lens[i]; j++)
			buf[j] = (unsigned char)(i + j * 7);
		CHECK(raftnet_send(n1->net, 2, buf, lens[i]) == 0);
	}
	CHECK(raftnet_send(n1->net, 7, buf, 1) == -ENOENT);
	CHECK(raftnet_send(n1->net, 1, buf, 1) == -ENOENT);
	CHECK(raftnet_send(n1->net, 2, buf, RAFTNET_MSG_MAX + 1) == -EMSGSIZE);
	if (!wait_for(got_all, &want, 10000))
		die("4: %zu of 100 datagrams arrived (last %zu bytes)",
		    n2->nmsgs, n2->nmsgs ? n2->msgs[n2->nmsgs - 1].len : 0);
	run_for(100);
	CHECK(n2->nmsgs == 100);
	for (size_t i = 0; i < 100; i++) {
		CHECK(n2->msgs[i].from == 1 && n2->msgs[i].len == lens[i]);
		for (size_t j = 0; j < lens[i]; j++)
			if (n2->msgs[i].data[j] != (unsigned char)(i + j * 7))
				die("4: datagram %zu byte %zu differs", i, j);
	}
	/* every pair, followers too (they exchange no raft traffic) */
	for (int i = 0; i < NNODES; i++)
		for (int j = 0; j < NNODES; j++)
			CHECK(raftnet_heard(nodes[i].net, (uint64_t)j + 1, 1000) == 1);
	CHECK(raftnet_heard(n1->net, 1, 0) == 1);
	CHECK(raftnet_heard(n1->net, 9, 100000) == 0);
	raftnet_stats(n1->net, &st);
	CHECK(st.msgs_out >= 100);
	printf("ok 4 - 100 datagrams in order with exact payloads; -ENOENT, "
	       "-EMSGSIZE\n");
}

/* ---- 5 ---- */

static int n3_cut(void *arg)
{
	(void)arg;
	return !raftnet_heard(nodes[2].net, 1, 300) &&
	       !raftnet_heard(nodes[2].net, 2, 300) &&
	       !raftnet_heard(nodes[0].net, 3, 300) &&
	       !raftnet_heard(nodes[1].net, 3, 300);
}

static int leader_not_n3(void *arg)
{
	struct node *l = NULL;

	(void)arg;
	for (int i = 0; i < 2; i++)
		if (raft_state(&nodes[i].raft) == RAFT_LEADER)
			l = &nodes[i];
	return l != NULL;
}

static void test_block(void)
{
	struct raftnet_stats st[NNODES];
	uint64_t resets_before = 0, resets_after = 0;
	size_t n3_before;

	for (int i = 0; i < NNODES; i++) {
		raftnet_stats(nodes[i].net, &st[i]);
		resets_before += st[i].streams_reset;
	}
	write_file(nodes[0].block, "n3\n");
	write_file(nodes[1].block, "n3\n");
	write_file(nodes[2].block, "n1 n2\n");
	if (!wait_for(n3_cut, NULL, 5000))
		die("5: n3 still heard after blocking");
	if (!wait_for(leader_not_n3, NULL, 15000))
		die("5: n1 and n2 elect no leader");
	n3_before = nodes[2].napplied;
	/* propose at n1/n2's leader; leader() needs n3's agreement */
	for (uint64_t v = 250; v < 280; v += 10) {
		struct node *l = raft_state(&nodes[0].raft) == RAFT_LEADER ?
			&nodes[0] : &nodes[1];
		unsigned want = 10;

		CHECK(raft_state(&l->raft) == RAFT_LEADER);
		applied_ok = applied_failed = 0;
		for (uint64_t x = v; x < v + 10; x++) {
			struct raft_apply *req = malloc(sizeof(*req));
			struct raft_buffer buf = { .base = raft_malloc(8), .len = 8 };

			CHECK(req && buf.base);
			memcpy(buf.base, &x, 8);
			CHECK(raft_apply(&l->raft, req, &buf, 1, apply_cb) == 0);
		}
		if (!wait_for(batch_done, &want, 15000) || applied_failed)
			die("5: entries not committed by n1 and n2");
	}
	run_for(2500); /* past n3's election timeout: it tries to pre-vote */
	CHECK(nodes[2].napplied == n3_before);
	/* the leader's heartbeats to n3 and n3's pre-votes were cut (a
	 * follower among n1, n2 may have had nothing to send n3) */
	for (int i = 0; i < NNODES; i++)
		raftnet_stats(nodes[i].net, &st[i]);
	CHECK(st[2].drop_blocked > 0);
	CHECK(st[raft_state(&nodes[0].raft) == RAFT_LEADER ? 0 : 1].drop_blocked > 0);
	CHECK(unlink(nodes[0].block) == 0);
	CHECK(unlink(nodes[1].block) == 0);
	write_file(nodes[2].block, "");
	check_applied(280);
	/* the cut broke the streams to or from n3: reset, then reconnected */
	for (int i = 0; i < NNODES; i++) {
		raftnet_stats(nodes[i].net, &st[i]);
		resets_after += st[i].streams_reset;
	}
	CHECK(resets_after > resets_before);
	printf("ok 5 - n3 blocked applied nothing (stayed at %zu), caught "
	       "up to 280 after unblocking\n", n3_before);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IONBF, 0);
	CHECK(mkdtemp(tmpdir));
	CHECK(uv_loop_init(&loop) == 0);
	test_transport();
	for (int i = 0; i < NNODES; i++)
		node_setup(&nodes[i], i, NULL);
	for (int i = 0; i < NNODES; i++)
		members_fill(&nodes[i]);
	for (int i = 0; i < NNODES; i++)
		node_start(&nodes[i]);
	test_replicate();
	test_restart();
	test_impostor();
	test_datagrams();
	test_block();
	for (int i = 0; i < NNODES; i++)
		node_stop(&nodes[i]);
	run_for(50);
	CHECK(uv_loop_close(&loop) == 0);
	cleanup();
	printf("all passed\n");
	return 0;
}
