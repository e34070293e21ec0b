/*
 * raftguard.c — the AppendEntries reply guard (the why is raftguard.h).
 *
 *   raft --start(tick, recv)--> guard_start --start(tick, guard_recv)--> io
 *   io --guard_recv(msg)--> [inside: limit = prev + n, from = leader]
 *                           raft's recv --send(result)--> guard_send
 *                              clamp last_log_index to limit --> io
 *
 * State per io in a small table (raft_io's data and impl belong to raft
 * and to the io); one thread, so no lock. A raft_io copies or encodes a
 * message inside send (raft passes messages on its stack), so sending
 * a clamped copy is safe.
 */
#include <errno.h>
#include <stddef.h>

#include "repl/raftguard.h"

struct guard {
	struct raft_io *io;
	int (*start)(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
		     raft_io_recv_cb recv);
	int (*send)(struct raft_io *io, struct raft_io_send *req,
		    const struct raft_message *message, raft_io_send_cb cb);
	raft_io_recv_cb recv;
	int in_append;        /* inside the recv of an AppendEntries */
	int in_snapshot;      /* inside the recv of an InstallSnapshot */
	raft_id from;         /* its leader */
	raft_index limit;     /* its prev_log_index + n_entries, or the
			       * snapshot's last index */
};

static struct guard guards[RAFTGUARD_MAX];
static uint64_t clamped, raised;

static struct guard *guard_of(struct raft_io *io)
{
	size_t i;

	for (i = 0; i < RAFTGUARD_MAX; i++)
		if (guards[i].io == io)
			return &guards[i];
	return NULL;
}

static void guard_recv(struct raft_io *io, struct raft_message *m)
{
	struct guard *g = guard_of(io);

	if (m->type == RAFT_IO_INSTALL_SNAPSHOT) {
		g->in_snapshot = 1;
		g->from = m->server_id;
		g->limit = m->install_snapshot.last_index;
		g->recv(io, m); /* may free m's data */
		g->in_snapshot = 0;
		return;
	}
	if (m->type != RAFT_IO_APPEND_ENTRIES) {
		g->recv(io, m);
		return;
	}
	g->in_append = 1;
	g->from = m->server_id;
	g->limit = m->append_entries.prev_log_index +
		   m->append_entries.n_entries;
	g->recv(io, m);  /* may free m's entries: read nothing after */
	g->in_append = 0;
}

static int guard_start(struct raft_io *io, unsigned msecs,
		       raft_io_tick_cb tick, raft_io_recv_cb recv)
{
	struct guard *g = guard_of(io);

	g->recv = recv;
	return g->start(io, msecs, tick, guard_recv);
}

static int guard_send(struct raft_io *io, struct raft_io_send *req,
		      const struct raft_message *m, raft_io_send_cb cb)
{
	struct guard *g = guard_of(io);
	const struct raft *r = io->data; /* raft_init sets it */
	struct raft_message copy;

	if (m->type != RAFT_IO_APPEND_ENTRIES_RESULT || m->server_id != g->from ||
	    m->append_entries_result.rejected != 0)
		return g->send(io, req, m, cb);
	if (g->in_append && m->append_entries_result.last_log_index > g->limit) {
		copy = *m;
		copy.append_entries_result.last_log_index = g->limit;
		clamped++;
		return g->send(io, req, &copy, cb);
	}
	if (g->in_snapshot && m->append_entries_result.last_log_index == g->limit &&
	    r->log.snapshot.last_index > g->limit &&
	    r->log.snapshot.last_index <= r->commit_index) {
		copy = *m;
		copy.append_entries_result.last_log_index =
			r->log.snapshot.last_index;
		raised++;
		return g->send(io, req, &copy, cb);
	}
	return g->send(io, req, m, cb);
}

int raftguard_wrap(struct raft_io *io)
{
	struct guard *g;

	if (guard_of(io))
		return -EBUSY;
	g = guard_of(NULL);
	if (!g)
		return -ENOSPC;
	g->io = io;
	g->start = io->start;
	g->send = io->send;
	g->recv = NULL;
	g->in_append = 0;
	g->in_snapshot = 0;
	io->start = guard_start;
	io->send = guard_send;
	return 0;
}

void raftguard_unwrap(struct raft_io *io)
{
	struct guard *g = guard_of(io);

	if (!g || !io)
		return;
	io->start = g->start;
	io->send = g->send;
	g->io = NULL;
}

uint64_t raftguard_clamped(void)
{
	return clamped;
}

uint64_t raftguard_raised(void)
{
	return raised;
}
