/*
 * ctl.c — the virtual, read-only directory /.statefs of a mount.
 *
 * It is listed in the root directory (visible: `ls -a /mnt` shows it and
 * shell completion finds /mnt/.statefs/stats) but is not a store key: it
 * never replicates and the store never holds "/.statefs". Its inodes have
 * fixed numbers below FS_INO_FIRST and take no part in the inode table.
 *
 * Files:
 *   stats  `name value` lines: ops_<kind> per FUSE operation, errors_<ERRNO>
 *          per error replied (ENOENT and ENODATA are answers, not errors,
 *          and are not counted), bytes_read, bytes_written, records,
 *          store_map_size, store_map_used, locks_held_exclusive,
 *          locks_held_shared, lock_waiters, lock_grants, lock_contentions,
 *          locks_orphaned, lock_mode (mesh or local), lock_connected
 *          (1: the mesh lock service answers; local: always 1), node
 *          (name) and node_id.
 *          Then repl_running 0|1 and, while the replicator runs, its
 *          repl_* counters (entries in/out, applied, conflicts, dropped
 *          messages by reason...) as STORE_DIR/repl.status has them.
 *   node   the node name and id, one line: `NAME ID`.
 *   peers  the replicator's view of its peers. First line
 *          `replicator: running pid=N node=NAME ID` or
 *          `replicator: not running`; then, only while it runs, one
 *          `peer NAME connected=0|1 last_contact_ms=N behind_out=N
 *          behind_in=N in_per_s=N out_per_s=N address=A` line per peer
 *          and one `refused_key KEY address=A count=N` line per CURVE
 *          key it refused lately.
 * The repl lines come from STORE_DIR/repl.status (common/replstat.h),
 * read at each open: trusted while its pid lives and it was rewritten
 * in the last 10 s. A stale file shows nothing of its peers, not even
 * marked stale: "connected=1" from a dead replicator would mislead, and
 * the first line already says why there is nothing.
 * Content is generated when the file is opened, into the open file's
 * private buffer, so every read of one open sees one consistent snapshot;
 * the files are direct_io (no page cache, size 0 in stat). Writes,
 * creates, removes, renames and attribute changes inside are EPERM
 * (fs.c refuses them before they reach the store).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/log.h"
#include "common/replstat.h"
#include "fs/fs_int.h"

static const struct {
	const char *name;
	uint64_t ino;
} ctl_files[] = {
	{ "stats", FS_INO_CTL_STATS },
	{ "node", FS_INO_CTL_NODE },
	{ "peers", FS_INO_CTL_PEERS },
};
#define NCTL (sizeof(ctl_files) / sizeof(ctl_files[0]))

int fs_ctl_getattr(struct fs *fs, uint64_t ino, struct stat *st)
{
	(void)fs;
	if (!fs_ino_is_ctl(ino))
		return -ENOENT;
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_nlink = 1;
	st->st_mode = ino == FS_INO_CTL_DIR ? S_IFDIR | 0555 : S_IFREG | 0444;
	st->st_blksize = 4096;
	clock_gettime(CLOCK_REALTIME, &st->st_mtim);
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
	return 0;
}

uint64_t fs_ctl_lookup(const char *name)
{
	size_t i;

	for (i = 0; i < NCTL; i++)
		if (strcmp(name, ctl_files[i].name) == 0)
			return ctl_files[i].ino;
	return 0;
}

struct out {
	char *buf;
	size_t len, cap;
	int err;
};

static void out_printf(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void out_printf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->err = -EINVAL;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += n;
			return;
		}
		char *nb = realloc(o->buf, o->cap * 2 + n);

		if (!nb) {
			o->err = -ENOMEM;
			return;
		}
		o->buf = nb;
		o->cap = o->cap * 2 + n;
	}
}

/* STORE_DIR/repl.status; rs->state REPLSTAT_NONE when it cannot be
 * read (logged: the rest of the file still shows). */
static void read_replstat(struct fs *fs, struct replstat *rs)
{
	int err;

	if (!fs->store_dir) {
		memset(rs, 0, sizeof(*rs));
		return;
	}
	err = replstat_read(fs->store_dir, rs);
	if (err) {
		log_rate(LOG_WARNING, "%s/repl.status: %s", fs->store_dir,
			 strerror(-err));
		rs->state = REPLSTAT_NONE;
	}
}

static void gen_peers(struct fs *fs, struct out *o)
{
	struct replstat rs;

	read_replstat(fs, &rs);
	if (rs.state != REPLSTAT_RUNNING) {
		out_printf(o, "replicator: not running\n");
	} else {
		out_printf(o, "replicator: running pid=%d node=%s\n", (int)rs.pid,
			   rs.node[0] ? rs.node : "-");
		out_printf(o, "%s%s", rs.peers, rs.refused);
	}
	replstat_free(&rs);
}

static void gen_repl_stats(struct fs *fs, struct out *o)
{
	struct replstat rs;
	int running;

	read_replstat(fs, &rs);
	running = rs.state == REPLSTAT_RUNNING;
	out_printf(o, "repl_running %d\n", running);
	if (running)
		out_printf(o, "%s", rs.counters);
	replstat_free(&rs);
}

static void gen_stats(struct fs *fs, struct out *o)
{
	struct store_info info;
	struct lock_stats ls;
	int i;

	for (i = 0; i < FS_OP_COUNT; i++)
		out_printf(o, "ops_%s %" PRIu64 "\n", fs_op_names[i],
			   (uint64_t)atomic_load(&fs->stats.ops[i]));
	for (i = 1; i <= FS_ERRNO_MAX; i++) {
		uint64_t n = atomic_load(&fs->stats.errors[i]);
		const char *name = strerrorname_np(i);

		if (n && name)
			out_printf(o, "errors_%s %" PRIu64 "\n", name, n);
	}
	out_printf(o, "bytes_read %" PRIu64 "\n",
		   (uint64_t)atomic_load(&fs->stats.bytes_read));
	out_printf(o, "bytes_written %" PRIu64 "\n",
		   (uint64_t)atomic_load(&fs->stats.bytes_written));
	memset(&info, 0, sizeof(info));
	if (store_info(fs->store, &info) == 0) {
		out_printf(o, "records %" PRIu64 "\n", info.records);
		out_printf(o, "store_map_size %" PRIu64 "\n", info.map_size);
		out_printf(o, "store_map_used %" PRIu64 "\n", info.map_used);
	}
	memset(&ls, 0, sizeof(ls));
	if (fs->locks)
		fs->locks->ops->stats(fs->locks, &ls);
	out_printf(o, "locks_held_exclusive %" PRIu64 "\n", ls.held_excl);
	out_printf(o, "locks_held_shared %" PRIu64 "\n", ls.held_shared);
	out_printf(o, "lock_waiters %" PRIu64 "\n", ls.waiters);
	out_printf(o, "lock_grants %" PRIu64 "\n", ls.grants);
	out_printf(o, "lock_contentions %" PRIu64 "\n", ls.contentions);
	out_printf(o, "locks_orphaned %" PRIu64 "\n", ls.orphans);
	out_printf(o, "lock_mode %s\n", ls.mesh ? "mesh" : "local");
	out_printf(o, "lock_connected %d\n", fs->locks ? ls.connected : 0);
	out_printf(o, "node %s\n", fs->node_name);
	out_printf(o, "node_id %" PRIu64 "\n", info.node_id);
	gen_repl_stats(fs, o);
}

int fs_ctl_fill(struct fs *fs, uint64_t ino, struct fs_file *f)
{
	struct out o = { .cap = 4096 };

	o.buf = malloc(o.cap);
	if (!o.buf)
		return -ENOMEM;
	if (ino == FS_INO_CTL_STATS) {
		gen_stats(fs, &o);
	} else if (ino == FS_INO_CTL_NODE) {
		struct store_info info;

		memset(&info, 0, sizeof(info));
		store_info(fs->store, &info);
		out_printf(&o, "%s %" PRIu64 "\n", fs->node_name, info.node_id);
	} else if (ino == FS_INO_CTL_PEERS) {
		gen_peers(fs, &o);
	} else {
		o.err = -EISDIR;
	}
	if (o.err) {
		free(o.buf);
		return o.err;
	}
	f->buf = o.buf;
	f->len = o.len;
	f->cap = o.cap;
	f->loaded = 1;
	return 0;
}

size_t fs_ctl_readdir(fuse_req_t req, char *buf, size_t size, off_t off,
		      int plus)
{
	struct fuse_entry_param e;
	size_t pos = 0, sz, i;

	for (i = off; i < NCTL + 2; i++) {
		const char *name = i == 0 ? "." : i == 1 ? ".." :
						ctl_files[i - 2].name;

		memset(&e, 0, sizeof(e));
		e.attr.st_ino = i == 0 ? FS_INO_CTL_DIR :
			i == 1 ? FUSE_ROOT_ID : ctl_files[i - 2].ino;
		e.attr.st_mode = i < 2 ? S_IFDIR : S_IFREG;
		if (plus) {
			/* ino 0: the kernel makes no dentry, no reference */
			sz = fuse_add_direntry_plus(req, buf + pos, size - pos,
						    name, &e, i + 1);
		} else {
			sz = fuse_add_direntry(req, buf + pos, size - pos, name,
					       &e.attr, i + 1);
		}
		if (pos + sz > size)
			break;
		pos += sz;
	}
	return pos;
}
