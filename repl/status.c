/*
 * status.c — STORE_DIR/repl.status: what statefsctl status, the mount's
 * /.statefs/peers and /.statefs/stats show of the replicator. Rewritten
 * whole (a temporary file renamed over it) every heartbeat; readers
 * trust it while `pid` is alive and `updated_ms` is recent.
 *
 *   pid N
 *   node NAME ID
 *   updated_ms N             CLOCK_REALTIME
 *   repl_in N ...            one counter per line (struct counters)
 *   peer NAME connected=0|1 last_contact_ms=N behind_out=N behind_in=N
 *        in_per_s=N out_per_s=N address=A   (one line)
 *   refused_key KEY address=A count=N
 *   lock_cluster NAME        with [locks] (locksvc.h), then one line each:
 *   lock_role R              leader follower standby candidate cut-off
 *                            failed starting
 *   lock_leader NAME         "-" when none is known
 *   lock_voters N1 N2 N3
 *   lock_reachable 0|1       in touch with the voters' majority
 *   lock_term N, lock_log_index N, lock_commit_ms N (EWMA of ours),
 *   lock_connections N (mounts here), and the table as applied here:
 *   lock_sessions, lock_held_excl, lock_held_shared, lock_table_waiters,
 *   lock_table_grants, lock_releases, lock_table_contentions, lock_waits,
 *   lock_orphans_expired (holdings freed by lease expiry); of this member:
 *   lock_orphans_closed (holdings freed because their mount's connection
 *   closed without unlocking); raftnet's drops: lock_drop_cluster,
 *   lock_drop_member, lock_drop_key, lock_drop_malformed, lock_drop_msgs,
 *   lock_drop_blocked; lock_gaps, lock_resends, lock_fault_drops
 *   (locksvc.h, Fault point); lock_dg_malformed (members' datagrams
 *   that repl/lockdg.h refused).
 *   (The mount's /.statefs/stats shows these lines after its own, whose
 *   lock_waiters, lock_grants and lock_contentions count its own
 *   requests: hence lock_table_* here.)
 *
 * STORE_DIR/repl.block, if it exists, names peers (separated by
 * blanks or newlines) whose traffic is dropped both ways while they
 * are listed, as if the network between us were cut: statefs-mesh's
 * partition and heal write it. Read when its mtime changes.
 */
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "repl/repl.h"
#ifdef STATEFS_LOCKSVC
#include "repl/locksvc.h"

static void locks(FILE *f, struct repl *r)
{
	struct locksvc_stats st;
	size_t i;

	if (!r->locks)
		return;
	locksvc_stats(r->locks, &st);
	fprintf(f, "lock_cluster %s\nlock_role %s\nlock_leader %s\nlock_voters",
		r->cfg.lock_cluster, st.role, st.leader[0] ? st.leader : "-");
	for (i = 0; i < r->cfg.nlock_voters; i++)
		fprintf(f, " %s", r->cfg.lock_voters[i]);
	fprintf(f, "\nlock_reachable %d\nlock_term %" PRIu64
		"\nlock_log_index %" PRIu64 "\nlock_commit_ms %" PRIu64
		"\nlock_connections %" PRIu64 "\nlock_sessions %" PRIu64
		"\nlock_held_excl %" PRIu64 "\nlock_held_shared %" PRIu64
		"\nlock_table_waiters %" PRIu64 "\nlock_table_grants %" PRIu64
		"\nlock_releases %" PRIu64 "\nlock_table_contentions %" PRIu64
		"\nlock_waits %" PRIu64 "\nlock_orphans_closed %" PRIu64
		"\nlock_orphans_expired %" PRIu64
		"\nlock_drop_cluster %" PRIu64
		"\nlock_drop_member %" PRIu64
		"\nlock_drop_key %" PRIu64
		"\nlock_drop_malformed %" PRIu64
		"\nlock_drop_msgs %" PRIu64
		"\nlock_drop_blocked %" PRIu64
		"\nlock_gaps %" PRIu64 "\nlock_resends %" PRIu64
		"\nlock_fault_drops %" PRIu64
		"\nlock_dg_malformed %" PRIu64 "\n",
		st.reachable, st.term, st.last_index, st.commit_ms,
		st.connections, st.sessions, st.held_excl, st.held_shared,
		st.waiters, st.grants, st.releases, st.contentions, st.waits,
		st.orphans_closed, st.orphans_expired, st.net_drop_cluster,
		st.net_drop_member, st.net_drop_key, st.net_drop_malformed,
		st.net_msgs_dropped, st.net_drop_blocked, st.gaps, st.resends,
		st.fault_drops, st.dg_malformed);
}
#else
static void locks(FILE *f, struct repl *r)
{
	(void)f;
	(void)r;
}
#endif

static void counters(FILE *f, const struct counters *c)
{
	fprintf(f, "repl_in %" PRIu64 "\nrepl_out %" PRIu64 "\n"
		"repl_applied %" PRIu64 "\nrepl_duplicates %" PRIu64 "\n"
		"repl_superseded %" PRIu64 "\nrepl_conflicts %" PRIu64 "\n"
		"repl_held %" PRIu64 "\nrepl_too_old %" PRIu64 "\n"
		"repl_refused %" PRIu64 "\n"
		"repl_dropped_malformed %" PRIu64 "\nrepl_dropped_replayed %" PRIu64 "\n"
		"repl_dropped_session %" PRIu64 "\nrepl_dropped_stale %" PRIu64 "\n"
		"repl_dropped_unknown %" PRIu64 "\nrepl_dropped_key %" PRIu64 "\n"
		"repl_dropped_blocked %" PRIu64 "\nrepl_dropped_gap %" PRIu64 "\n"
		"repl_snapshots_sent %" PRIu64 "\nrepl_snapshots_received %" PRIu64 "\n",
		c->in, c->out, c->applied, c->duplicates, c->superseded,
		c->conflicts, c->held, c->too_old, c->refused, c->drop_malformed,
		c->drop_replayed, c->drop_session, c->drop_stale, c->drop_unknown,
		c->drop_key, c->drop_blocked, c->drop_gap, c->snaps_sent, c->snaps_received);
}

void status_write(struct repl *r)
{
	char path[PATH_MAX + 32], tmp[PATH_MAX + 32];
	int64_t now = repl_now_ms();
	uint64_t last = store_last_seq(r->store);
	struct timespec ts;
	double dt = r->status_at ? (now - r->status_at) / 1000.0 : 0;
	size_t i;
	FILE *f;

	snprintf(path, sizeof(path), "%s/repl.status", r->cfg.store_dir);
	snprintf(tmp, sizeof(tmp), "%s/.repl.status.tmp", r->cfg.store_dir);
	f = fopen(tmp, "w");
	if (!f) {
		log_rate(LOG_WARNING, "cannot write %s: %m", tmp);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(f, "pid %d\nnode %s %016" PRIx64 "\nupdated_ms %lld\n",
		(int)getpid(), r->node_name, r->node,
		(long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	counters(f, &r->c);
	for (i = 0; i < r->npeers; i++) {
		struct peer *p = &r->peers[i];

		if (dt > 0) {
			p->in_rate = (p->in - p->in_prev) / dt;
			p->out_rate = (p->out - p->out_prev) / dt;
		}
		p->in_prev = p->in;
		p->out_prev = p->out;
		fprintf(f, "peer %s connected=%d last_contact_ms=%lld behind_out=%" PRIu64
			" behind_in=%" PRIu64 " in_per_s=%.0f out_per_s=%.0f address=%s\n",
			p->cfg.name, p->up,
			p->last_contact ? (long long)(now - p->last_contact) : -1LL,
			last > p->acked ? last - p->acked : 0,
			p->their_behind,
			p->in_rate, p->out_rate,
			p->cfg.address[0] ? p->cfg.address : "-");
	}
	pthread_mutex_lock(&r->refused_lock);
	for (i = 0; i < sizeof(r->refused) / sizeof(r->refused[0]); i++)
		if (r->refused[i].count)
			fprintf(f, "refused_key %s address=%s count=%" PRIu64 "\n",
				r->refused[i].key, r->refused[i].address,
				r->refused[i].count);
	pthread_mutex_unlock(&r->refused_lock);
	locks(f, r);
	r->status_at = now;
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		log_rate(LOG_WARNING, "cannot write %s: %m", path);
}

void status_read_block(struct repl *r)
{
	char path[PATH_MAX + 32], *buf = NULL, *save = NULL, *w;
	struct stat st;
	int64_t mt = 0, now = repl_now_ms();
	size_t i, cap = 0;
	FILE *f;

	if (now - r->block_checked < 50)
		return;
	r->block_checked = now;
	snprintf(path, sizeof(path), "%s/repl.block", r->cfg.store_dir);
	if (stat(path, &st) == 0)
		mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec + 1;
	if (mt == r->block_mtime_ns)
		return;
	r->block_mtime_ns = mt;
	for (i = 0; i < r->npeers; i++)
		r->peers[i].blocked = 0;
	f = mt ? fopen(path, "r") : NULL;
	if (f && getdelim(&buf, &cap, '\0', f) > 0)
		for (w = strtok_r(buf, " \t\n,", &save); w;
		     w = strtok_r(NULL, " \t\n,", &save))
			for (i = 0; i < r->npeers; i++)
				if (strcmp(r->peers[i].cfg.name, w) == 0)
					r->peers[i].blocked = 1;
	if (f)
		fclose(f);
	free(buf);
	for (i = 0; i < r->npeers; i++)
		if (r->peers[i].blocked)
			log_msg(LOG_NOTICE, "fault point: traffic with %s is cut",
				r->peers[i].cfg.name);
}
