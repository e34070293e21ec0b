/*
 * main.c — `statefs [-f] [-d] [-o OPTS] STORE_DIR MOUNTPOINT`, or
 * `statefs -o config=FILE [STORE_DIR MOUNTPOINT]`.
 *
 * Parses the command line (also as called by mount.fuse3 from mount(8)
 * and /etc/fstab: `statefs STORE MNT -o opts`), opens the store, mounts
 * the session, daemonizes unless -f, and runs the multi-threaded loop.
 *
 * Options are split three ways: ours (size=, maxvalue=, sync=, ttl=,
 * node=), FUSE mount options passed on to the kernel (allow_other, ro,
 * nosuid, ...), and generic mount(8)/fstab words with no meaning here
 * (_netdev, noauto, user, nofail, atime variants...), accepted and
 * ignored. Anything else is a usage error (exit 2). default_permissions
 * is always on: the kernel checks modes.
 *
 * config=FILE (common/config.h) is found first, in whichever -o list it
 * is: the file's [store] keys, [node] name and [mount] options are
 * applied, then the command line's options on top, so the command line
 * wins. STORE_DIR and MOUNTPOINT then default to [store] dir and
 * [mount] mountpoint. A bad file is a usage error (exit 2) with the
 * file's "FILE:LINE: key 'KEY': ..." line, before anything is mounted.
 *
 * Order of start-up, and why:
 *  1. a dead FUSE mount at MOUNTPOINT (stat: ENOTCONN) is lazily
 *     unmounted, a live statefs mount there is refused;
 *  2. the store is opened (errors are printed on the terminal);
 *  3. mount, then fuse_daemonize(): the parent exits 0 once mounted;
 *  4. without -f the store is opened again after the fork, because an
 *     LMDB handle must not cross fork() (store.h caveats);
 *  5. lock manager, invalidation thread, session loop.
 *
 * Locks: a config with a [locks] section (or -o locks=mesh) makes the
 * mount use the mesh lock manager (fs/lockremote.c) through this host's
 * statefs-repl at [node] control (default STORE_DIR/repl.sock); the
 * replicator may start later, and until it answers lock requests fail
 * with ENOLCK (never a local grant). -o locks=local keeps the local
 * manager whatever the config says. One line at start says which.
 * Exit codes: 0 ok, 1 mount or store failure, 2 usage.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "fs/fs.h"

#define PROG "statefs"

struct cfg {
	struct store_opts so;
	int foreground, debug, allow_other, ro;
	char fuse_opts[1024];     /* mount options passed to libfuse */
	char node[64];
	const char *store_dir, *mountpoint;
	const char *config;       /* config=FILE, or NULL */
	enum { LOCKS_AUTO, LOCKS_LOCAL, LOCKS_MESH } locks;
};

/* The config file's contents, for as long as the process runs
 * (store_dir and mountpoint may point into it). */
static struct config conf;

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " [-f] [-d] [-o OPTIONS] STORE_DIR MOUNTPOINT\n"
		"       " PROG " [-f] [-d] -o config=FILE[,OPTIONS] [STORE_DIR MOUNTPOINT]\n"
		"Shared state as a file system: mount the statefs store in STORE_DIR\n"
		"(created on first use) at MOUNTPOINT.\n\n"
		"  -f            stay in the foreground\n"
		"  -d            debug: foreground, debug log and FUSE trace\n"
		"  -o OPTIONS    comma separated:\n"
		"     size=N          store map size (K, M, G suffixes; default 1G)\n"
		"     maxvalue=N      largest value (default 16M)\n"
		"     sync=none|commit  fsync at each commit (default none)\n"
		"     ttl=T           default TTL of new files (30, 30s, 5m, 1h)\n"
		"     node=NAME       node name (default: stored, else host name)\n"
		"     locks=local|mesh  lock manager: this mount alone, or mesh-wide\n"
		"                     through the replicator's lock service at\n"
		"                     [node] control (default STORE_DIR/repl.sock);\n"
		"                     default: mesh when the config has [locks]\n"
		"     allow_other     let other users in (needs user_allow_other)\n"
		"     ro              read-only mount\n"
		"     config=FILE     read [store], [node] name and [mount] from the\n"
		"                     config file; STORE_DIR and MOUNTPOINT default\n"
		"                     to its [store] dir and [mount] mountpoint, and\n"
		"                     options on the command line override it\n"
		"  -h, --help    this text\n"
		"  -V, --version the version\n\n"
		"Unmount with: fusermount3 -u MOUNTPOINT\n");
}

static int add_fuse_opt(struct cfg *c, const char *o)
{
	size_t len = strlen(c->fuse_opts);
	int n = snprintf(c->fuse_opts + len, sizeof(c->fuse_opts) - len,
			 "%s%s", len ? "," : "", o);

	return n < 0 || (size_t)n >= sizeof(c->fuse_opts) - len ? -1 : 0;
}

/* Words mount(8), mount.fuse3 and fstab may pass that mean nothing to
 * us. */
static const char *const ignored_opts[] = {
	"defaults", "rw", "auto", "noauto", "user", "users", "nouser",
	"owner", "group", "_netdev", "nofail", "atime", "noatime",
	"relatime", "norelatime", "strictatime", "nostrictatime",
	"lazytime", "nolazytime", "diratime", "nodiratime", "async",
	"sync", "dirsync", "default_permissions", "loud", "silent",
	"mand", "nomand", "iversion", "noiversion", NULL,
};
/* Passed to the kernel mount. */
static const char *const fuse_mount_opts[] = {
	"nosuid", "suid", "nodev", "dev", "noexec", "exec", NULL,
};

static int parse_one(struct cfg *c, char *o)
{
	char *val = strchr(o, '=');
	size_t i;

	if (val)
		*val++ = '\0';
	if (val && strcmp(o, "config") == 0)
		return 0; /* read first, by find_config() */
	if (val && strcmp(o, "size") == 0)
		return config_parse_size(val, &c->so.map_size) ? -1 : 0;
	if (val && strcmp(o, "maxvalue") == 0)
		return config_parse_size(val, &c->so.max_value) ? -1 : 0;
	if (val && strcmp(o, "ttl") == 0)
		return store_parse_ttl(val, strlen(val), &c->so.default_ttl_ms) ? -1 : 0;
	if (val && strcmp(o, "sync") == 0) {
		if (strcmp(val, "none") == 0)
			c->so.sync = STORE_SYNC_NONE;
		else if (strcmp(val, "commit") == 0)
			c->so.sync = STORE_SYNC_COMMIT;
		else
			return -1;
		return 0;
	}
	if (val && strcmp(o, "node") == 0) {
		if (!*val || strlen(val) >= sizeof(c->node))
			return -1;
		memcpy(c->node, val, strlen(val) + 1);
		return 0;
	}
	if (val && strcmp(o, "locks") == 0) {
		if (strcmp(val, "local") == 0)
			c->locks = LOCKS_LOCAL;
		else if (strcmp(val, "mesh") == 0)
			c->locks = LOCKS_MESH;
		else
			return -1;
		return 0;
	}
	if (!val && strcmp(o, "allow_other") == 0) {
		c->allow_other = 1;
		return 0;
	}
	if (!val && strcmp(o, "ro") == 0) {
		c->ro = 1;
		return 0;
	}
	if (strncmp(o, "x-", 2) == 0 || strcmp(o, "comment") == 0 ||
	    strcmp(o, "fsname") == 0 || strcmp(o, "subtype") == 0)
		return 0;
	for (i = 0; !val && ignored_opts[i]; i++)
		if (strcmp(o, ignored_opts[i]) == 0)
			return 0;
	for (i = 0; !val && fuse_mount_opts[i]; i++)
		if (strcmp(o, fuse_mount_opts[i]) == 0)
			return add_fuse_opt(c, o) ? -1 : 0;
	if (val)
		val[-1] = '=';
	return -2;
}

/* Parse one -o list; `where` prefixes the messages (NULL: the command
 * line). */
static int parse_opts(struct cfg *c, const char *list, const char *where)
{
	char *copy = strdup(list), *save = NULL, *o;
	int err = 0;

	if (!copy)
		return 1;
	for (o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		int r = parse_one(c, o);

		if (r == -2) {
			fprintf(stderr, PROG ": %s%sunknown option '%s'\n",
				where ? where : "", where ? ": " : "", o);
			err = 2;
			break;
		}
		if (r < 0) {
			fprintf(stderr, PROG ": %s%sbad value in option '%s'\n",
				where ? where : "", where ? ": " : "", o);
			err = 2;
			break;
		}
	}
	free(copy);
	return err;
}

/* The last config=FILE of every -o list on the command line into
 * c->config (pointing into argv), before anything else is parsed. */
static void find_config(struct cfg *c, int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *list, *p;

		if (strncmp(argv[i], "-o", 2) != 0)
			continue;
		list = argv[i][2] ? argv[i] + 2 : (i + 1 < argc ? argv[++i] : "");
		for (p = list; p; p = strchr(p, ',')) {
			if (*p == ',')
				p++;
			if (strncmp(p, "config=", 7) == 0)
				c->config = p + 7;
		}
	}
}

/* Apply the config file: its settings are the defaults of the command
 * line's. 0, or the exit code. */
static int load_config(struct cfg *c, const char *file)
{
	char path[PATH_MAX], err[PATH_MAX + 512], where[PATH_MAX + 32];
	size_t len = strcspn(file, ",");
	int r;

	if (len == 0 || len >= sizeof(path)) {
		fprintf(stderr, PROG ": bad value in option 'config=%.*s'\n",
			(int)len, file);
		return 2;
	}
	memcpy(path, file, len);
	path[len] = '\0';
	config_init(&conf);
	r = config_load(&conf, path, err, sizeof(err));
	if (r) {
		fprintf(stderr, PROG ": %s\n", err);
		return 2;
	}
	c->so = conf.so;
	c->so.node_name = NULL; /* set from c->node in main() */
	memcpy(c->node, conf.node_name, sizeof(c->node));
	if (conf.store_dir[0])
		c->store_dir = conf.store_dir;
	if (conf.mountpoint[0])
		c->mountpoint = conf.mountpoint;
	snprintf(where, sizeof(where), "%s: [mount] options", path);
	return conf.mount_options[0] ?
		parse_opts(c, conf.mount_options, where) : 0;
}

/* 0: go on; else the exit code. */
static int parse_args(struct cfg *c, int argc, char **argv)
{
	const char *pos[2];
	int npos = 0, i, r;

	find_config(c, argc, argv);
	if (c->config) {
		r = load_config(c, c->config);
		if (r)
			return r;
		c->config = conf.file; /* without the options after it */
	}
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf(PROG " %s (libfuse %s)\n", STATEFS_VERSION,
			       fuse_pkgversion());
			exit(0);
		} else if (strcmp(a, "-f") == 0) {
			c->foreground = 1;
		} else if (strcmp(a, "-d") == 0) {
			c->debug = c->foreground = 1;
		} else if (strncmp(a, "-o", 2) == 0) {
			const char *list = a[2] ? a + 2 : NULL;

			if (!list && ++i < argc)
				list = argv[i];
			if (!list) {
				fprintf(stderr, PROG ": -o needs options\n");
				return 2;
			}
			r = parse_opts(c, list, NULL);
			if (r)
				return r;
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, PROG ": unknown option '%s'\n", a);
			usage(stderr);
			return 2;
		} else if (npos < 2) {
			pos[npos++] = a;
		} else {
			fprintf(stderr, PROG ": too many arguments\n");
			usage(stderr);
			return 2;
		}
	}
	if (npos == 2) {
		c->store_dir = pos[0];
		c->mountpoint = pos[1];
	} else if (npos != 0 || !c->config) {
		usage(stderr);
		return 2;
	}
	if (!c->store_dir || !c->mountpoint) {
		fprintf(stderr, PROG ": %s: no [%s] %s, and none on the command "
			"line\n", c->config, c->store_dir ? "mount" : "store",
			c->store_dir ? "mountpoint" : "dir");
		return 2;
	}
	return 0;
}

/* Is a statefs mount (live) at `mnt` (an absolute real path)? */
static int statefs_mounted_at(const char *mnt)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		char mp[PATH_MAX], *sep, type[256];

		/* id parent maj:min root mountpoint opts... - type src */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		sep = strstr(line, " - ");
		if (!sep || sscanf(sep + 3, "%255s", type) != 1)
			continue;
		if (strcmp(mp, mnt) == 0 && strcmp(type, "fuse.statefs") == 0)
			found = 1;
	}
	fclose(f);
	return found;
}

/* A crashed driver leaves a mount whose every access is ENOTCONN:
 * detach it lazily so we can mount again. */
static int clean_mountpoint(const char *mnt)
{
	char real[PATH_MAX];
	struct statvfs sv;
	struct stat st;

	/* stat may answer from attributes the kernel cached; statfs always
	 * asks the (dead or live) driver. */
	if (stat(mnt, &st) == 0 && statvfs(mnt, &sv) == 0) {
		if (realpath(mnt, real) && statefs_mounted_at(real)) {
			fprintf(stderr, PROG ": %s is already mounted\n", mnt);
			return 1;
		}
		return 0;
	}
	if (errno != ENOTCONN) {
		fprintf(stderr, PROG ": mountpoint %s: %s\n", mnt,
			strerror(errno));
		return 1;
	}
	log_msg(LOG_NOTICE, "%s: dead mount (transport endpoint is not "
		"connected): unmounting it lazily", mnt);
	if (geteuid() == 0) {
		if (umount2(mnt, MNT_DETACH) == 0)
			return 0;
		log_msg(LOG_WARNING, "umount2(%s): %s", mnt, strerror(errno));
	}
	pid_t pid = fork();

	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "-z", mnt,
		       (char *)NULL);
		_exit(127);
	}
	int status = 0;

	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, PROG ": cannot unmount the dead mount at %s\n",
			mnt);
		return 1;
	}
	return 0;
}

/* The lock manager: local, or mesh-wide through the replicator's
 * socket (see the top). NULL on failure (logged). */
static struct lockmgr *make_locks(struct cfg *c, struct fs *fs,
				  const char *host)
{
	char sock[PATH_MAX + 16], err[PATH_MAX + 64];
	struct lockmgr *m;
	int mesh = c->locks == LOCKS_MESH ||
		   (c->locks == LOCKS_AUTO && conf.lock_cluster[0]);

	if (!mesh) {
		log_msg(LOG_NOTICE, "locks: local (this mount only)");
		return lockmgr_local_new(host);
	}
	if (conf.control[0])
		snprintf(sock, sizeof(sock), "%s", conf.control);
	else
		snprintf(sock, sizeof(sock), "%s/repl.sock", c->store_dir);
	m = lockmgr_remote_new(sock, host, fs_lock_sync, fs, err, sizeof(err));
	if (!m)
		log_msg(LOG_ERROR, "locks: %s", err);
	else
		log_msg(LOG_NOTICE, "locks: mesh-wide via %s", sock);
	return m;
}

static int open_store(struct cfg *c, struct store **sp)
{
	int err = store_open(c->store_dir, &c->so, sp);

	if (err) {
		const char *msg = store_last_error();

		if (msg && *msg)
			fprintf(stderr, PROG ": %s\n", msg);
		else
			fprintf(stderr, PROG ": cannot open store %s: %s\n",
				c->store_dir, strerror(-err));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct cfg c;
	struct store *store = NULL;
	struct lockmgr *locks = NULL;
	struct fs *fs = NULL;
	struct fuse_session *se = NULL;
	struct fuse_loop_config *lc = NULL;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	char optbuf[1200], store_real[PATH_MAX];
	const char *node;
	int rc, err;

	memset(&c, 0, sizeof(c));
	log_init(PROG, LOG_NOTICE);
	rc = parse_args(&c, argc, argv);
	if (rc)
		return rc;
	if (c.debug)
		log_set_level(LOG_DEBUG);
	if (c.node[0])
		c.so.node_name = c.node;
	c.so.readonly = c.ro;

	rc = clean_mountpoint(c.mountpoint);
	if (rc)
		return rc;
	if (open_store(&c, &store))
		return 1;
	/* fuse_daemonize() changes to /: the child reopens the store by
	 * its absolute path (it exists now, store_open created it) */
	if (realpath(c.store_dir, store_real))
		c.store_dir = store_real;

	snprintf(optbuf, sizeof(optbuf),
		 "fsname=%s,subtype=statefs,default_permissions%s%s%s%s",
		 c.store_dir, c.allow_other ? ",allow_other" : "",
		 c.ro ? ",ro" : "", c.fuse_opts[0] ? "," : "", c.fuse_opts);
	if (fuse_opt_add_arg(&args, argv[0]) || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, optbuf) ||
	    (c.debug && fuse_opt_add_arg(&args, "-d"))) {
		fprintf(stderr, PROG ": out of memory\n");
		rc = 1;
		goto out;
	}
	node = c.node[0] ? c.node : NULL;
	err = fs_new(node, &fs);
	if (!err)
		err = fs_set_store_dir(fs, c.store_dir);
	if (err) {
		fprintf(stderr, PROG ": %s\n", strerror(-err));
		rc = 1;
		goto out;
	}
	se = fuse_session_new(&args, &fs_ll_ops, sizeof(fs_ll_ops), fs);
	if (!se) {
		rc = 1;
		goto out;
	}
	fs_set_session(fs, se);
	if (fuse_set_signal_handlers(se) != 0) {
		rc = 1;
		goto out;
	}
	if (fuse_session_mount(se, c.mountpoint) != 0) {
		fprintf(stderr, PROG ": cannot mount %s\n", c.mountpoint);
		rc = 1;
		goto out_signals;
	}
	if (!c.foreground) {
		/* LMDB handles must not cross fork(): reopen in the child */
		store_close(&store);
		fuse_daemonize(0);
		if (open_store(&c, &store)) {
			rc = 1;
			goto out_unmount;
		}
	}
	{
		struct store_info info;
		const char *host = node;

		memset(&info, 0, sizeof(info));
		if (!host && store_info(store, &info) == 0)
			host = info.node_name;
		locks = make_locks(&c, fs, host && *host ? host : "localhost");
	}
	if (!locks) {
		log_msg(LOG_ERROR, "cannot create the lock manager");
		rc = 1;
		goto out_unmount;
	}
	fs_attach(fs, store, locks);
	err = fs_notify_start(fs);
	if (err) {
		log_msg(LOG_ERROR, "cannot start the invalidation thread: %s",
			strerror(-err));
		rc = 1;
		goto out_unmount;
	}
	log_msg(LOG_INFO, "mounted %s at %s", c.store_dir, c.mountpoint);
	lc = fuse_loop_cfg_create();
	if (!lc) {
		rc = 1;
		goto out_notify;
	}
	fuse_loop_cfg_set_max_threads(lc, 64);
	fuse_loop_cfg_set_idle_threads(lc, 8);
	rc = fuse_session_loop_mt(se, lc) ? 1 : 0;
	fuse_loop_cfg_destroy(lc);
out_notify:
	fs_notify_stop(fs);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out:
	/* waiters still queued are answered EINTR: before the session */
	lockmgr_destroy(&locks);
	if (se)
		fuse_session_destroy(se);
	fs_destroy(&fs);
	store_close(&store);
	fuse_opt_free_args(&args);
	return rc;
}
