/*
 * test_config.c — unit tests of common/config.h: the config file of a
 * node, its defaults, its key files and every error message, checked
 * word for word with the file name and line number.
 *
 * Each test writes its files into a fresh mkdtemp directory under
 * /dev/shm (removed afterwards, whatever the outcome). Keys come from
 * zmq_curve_keypair, so the derived public key can be checked against
 * the one generated with it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "common/config.h"

/* ---- fixtures ---- */

struct fx {
	char dir[64];
	char file[PATH_MAX];   /* dir/c.conf */
	char err[PATH_MAX + 512];
	char pub[CONFIG_KEY_LEN + 1], sec[CONFIG_KEY_LEN + 1];
	char keyfile[PATH_MAX]; /* dir/n1.key, mode 0600, holds sec */
	struct config *c;
};

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Write `text` to dir/name with `mode`; the full path into out. */
static void put_file(struct fx *f, const char *name, mode_t mode,
		     const char *text, char *out)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	if (out)
		memcpy(out, path, strlen(path) + 1);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char line[CONFIG_KEY_LEN + 2];

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/dev/shm/test_config.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->file, sizeof(f->file), "%s/c.conf", f->dir);
	f->c = malloc(sizeof(*f->c));
	if (!f->c || zmq_curve_keypair(f->pub, f->sec) != 0)
		return -1;
	snprintf(line, sizeof(line), "%s\n", f->sec);
	put_file(f, "n1.key", 0600, line, f->keyfile);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f->c);
	free(f);
	return 0;
}

/* Write the config file and load it. */
static int load(struct fx *f, const char *text)
{
	put_file(f, "c.conf", 0644, text, NULL);
	config_init(f->c);
	f->err[0] = '\0';
	return config_load(f->c, f->file, f->err, sizeof(f->err));
}

/* Load `text`: it must fail with -EINVAL and exactly
 * "FILE:LINE: " + the formatted rest. */
static void expect_error(struct fx *f, const char *text, int line,
			 const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void expect_error(struct fx *f, const char *text, int line,
			 const char *fmt, ...)
{
	char want[PATH_MAX + 512];
	va_list ap;
	int n;

	n = snprintf(want, sizeof(want), "%s:%d: ", f->file, line);
	va_start(ap, fmt);
	vsnprintf(want + n, sizeof(want) - n, fmt, ap);
	va_end(ap);
	assert_int_equal(load(f, text), -EINVAL);
	assert_string_equal(f->err, want);
}

/* ---- tests ---- */

static void test_defaults(void **state)
{
	struct fx *f = *state;
	struct config *c = f->c;
	size_t i;

	memset(c, 0xA5, sizeof(*c));
	config_init(c);
	assert_string_equal(c->file, "");
	assert_string_equal(c->store_dir, "");
	/* the store's own defaults (store.h): all zero */
	assert_int_equal(c->so.map_size, 0);
	assert_int_equal(c->so.max_value, 0);
	assert_int_equal(c->so.sync, STORE_SYNC_NONE);
	assert_int_equal(c->so.default_ttl_ms, 0);
	assert_null(c->so.node_name);
	assert_int_equal(c->so.binlog_max, 0);
	assert_int_equal(c->so.tombstone_grace_ms, 0);
	assert_int_equal(c->so.max_offset_ms, 0);
	assert_int_equal(c->so.readonly, 0);
	assert_null(c->so.clock);
	assert_string_equal(c->node_name, "");
	assert_string_equal(c->listen, "");
	assert_string_equal(c->key_file, "");
	assert_string_equal(c->secret_key, "");
	assert_string_equal(c->public_key, "");
	assert_int_equal(c->insecure, 0);
	assert_string_equal(c->control, "");
	assert_string_equal(c->mountpoint, "");
	assert_string_equal(c->mount_options, "");
	assert_int_equal(c->conflict, CONFLICT_LWW);
	assert_string_equal(c->hook, "");
	assert_int_equal(c->hook_timeout_ms, 5000);
	assert_int_equal(c->heartbeat_ms, 1000);
	assert_int_equal(c->peer_timeout_ms, 5000);
	assert_int_equal(c->npeers, 0);
	for (i = 0; i < 16; i++)
		assert_int_equal(((unsigned char *)c->peers)[i], 0);

	/* an empty file and one of comments only change nothing */
	assert_int_equal(load(f, ""), 0);
	assert_string_equal(c->file, f->file);
	assert_int_equal(c->heartbeat_ms, 1000);
	assert_int_equal(load(f, "; comment\n# another\n\n[store]\n[node]\n"), 0);
	assert_int_equal(c->peer_timeout_ms, 5000);
	assert_null(c->so.node_name);
}

static void test_full(void **state)
{
	struct fx *f = *state;
	struct config *c = f->c;
	char text[PATH_MAX + 4096], pubfile[PATH_MAX], line[64];
	char p2pub[CONFIG_KEY_LEN + 1], p2sec[CONFIG_KEY_LEN + 1];

	assert_int_equal(zmq_curve_keypair(p2pub, p2sec), 0);
	snprintf(line, sizeof(line), "%s\n", p2pub);
	put_file(f, "n3.pub", 0644, line, pubfile);
	snprintf(text, sizeof(text),
		 "; a node of three\n"
		 "[store]\n"
		 "dir = /var/lib/statefs/app\n"
		 "size = 2G\n"
		 "max_value = 4M\n"
		 "sync = commit\n"
		 "default_ttl = 90s\n"
		 "binlog_max = 5000\n"
		 "tombstone_grace = 2h\n"
		 "max_offset = 250ms\n"
		 "\n"
		 "[node]\n"
		 "name = n1\n"
		 "listen = tcp://127.0.0.1:7001\n"
		 "key = %s\n"
		 "insecure = false\n"
		 "control = /run/statefs/app.sock\n"
		 "\n"
		 "[mount]\n"
		 "mountpoint = /state\n"
		 "options = allow_other,ttl=5\n"
		 "\n"
		 "[replication]\n"
		 "conflict = hook:/usr/local/bin/merge\n"
		 "hook_timeout = 2s\n"
		 "heartbeat = 500ms\n"
		 "peer_timeout = 3s\n"
		 "\n"
		 "[peer n2]\n"
		 "address = tcp://10.0.0.2:7001\n"
		 "public_key = %s\n"
		 "[peer n3]\n"
		 "  address =   ; inbound only\n"
		 "  public_key_file = n3.pub\n",
		 f->keyfile, f->pub);
	assert_int_equal(load(f, text), 0);
	assert_string_equal(f->err, "");
	assert_string_equal(c->file, f->file);
	assert_string_equal(c->store_dir, "/var/lib/statefs/app");
	assert_int_equal(c->so.map_size, 2ULL << 30);
	assert_int_equal(c->so.max_value, 4ULL << 20);
	assert_int_equal(c->so.sync, STORE_SYNC_COMMIT);
	assert_int_equal(c->so.default_ttl_ms, 90000);
	assert_int_equal(c->so.binlog_max, 5000);
	assert_int_equal(c->so.tombstone_grace_ms, 2 * 3600000);
	assert_int_equal(c->so.max_offset_ms, 250);
	assert_ptr_equal(c->so.node_name, c->node_name);
	assert_string_equal(c->node_name, "n1");
	assert_string_equal(c->listen, "tcp://127.0.0.1:7001");
	assert_string_equal(c->key_file, f->keyfile);
	assert_string_equal(c->secret_key, f->sec);
	assert_string_equal(c->public_key, f->pub);
	assert_int_equal(c->insecure, 0);
	assert_string_equal(c->control, "/run/statefs/app.sock");
	assert_string_equal(c->mountpoint, "/state");
	assert_string_equal(c->mount_options, "allow_other,ttl=5");
	assert_int_equal(c->conflict, CONFLICT_HOOK);
	assert_string_equal(c->hook, "/usr/local/bin/merge");
	assert_int_equal(c->hook_timeout_ms, 2000);
	assert_int_equal(c->heartbeat_ms, 500);
	assert_int_equal(c->peer_timeout_ms, 3000);
	assert_int_equal(c->npeers, 2);
	assert_string_equal(c->peers[0].name, "n2");
	assert_string_equal(c->peers[0].address, "tcp://10.0.0.2:7001");
	assert_string_equal(c->peers[0].public_key, f->pub);
	assert_int_equal(c->peers[0].line, 29);
	assert_string_equal(c->peers[1].name, "n3");
	assert_string_equal(c->peers[1].address, "");
	assert_string_equal(c->peers[1].public_key, p2pub);
	assert_int_equal(c->peers[1].line, 32);
}

/* Every default can be set from the file, and other values from the
 * file win over config_init's. */
static void test_overrides(void **state)
{
	struct fx *f = *state;
	struct config *c = f->c;

	assert_int_equal(load(f, "[replication]\nconflict = keep\n"
			      "hook_timeout = 1\nheartbeat = 2s\n"
			      "peer_timeout = 1m\n"
			      "[store]\nsync = none\n"
			      "[node]\ninsecure = yes\n"), 0);
	assert_int_equal(c->conflict, CONFLICT_KEEP);
	assert_int_equal(c->hook_timeout_ms, 1000);
	assert_int_equal(c->heartbeat_ms, 2000);
	assert_int_equal(c->peer_timeout_ms, 60000);
	assert_int_equal(c->so.sync, STORE_SYNC_NONE);
	assert_int_equal(c->insecure, 1);
	/* untouched keys keep their defaults */
	assert_int_equal(c->so.map_size, 0);
	assert_string_equal(c->listen, "");
	/* booleans */
	assert_int_equal(load(f, "[node]\ninsecure = on\n"), 0);
	assert_int_equal(c->insecure, 1);
	assert_int_equal(load(f, "[node]\ninsecure = 0\n"), 0);
	assert_int_equal(c->insecure, 0);
	/* the caller overrides after config_load (command line) */
	assert_int_equal(load(f, "[store]\nsize = 1M\n"), 0);
	c->so.map_size = 8 << 20;
	assert_int_equal(c->so.map_size, 8 << 20);
	/* conflict back to lww; keys in a repeated section */
	assert_int_equal(load(f, "[replication]\nconflict = lww\n[store]\n"
			      "size = 1K\n[replication]\nheartbeat = 3s\n"), 0);
	assert_int_equal(c->conflict, CONFLICT_LWW);
	assert_int_equal(c->heartbeat_ms, 3000);
}

/* Relative paths are relative to the file's directory, and absolute. */
static void test_relative_paths(void **state)
{
	struct fx *f = *state;
	struct config *c = f->c;
	char want[PATH_MAX], cwd[PATH_MAX], rel[PATH_MAX];

	assert_int_equal(load(f, "[store]\ndir = st\n[mount]\nmountpoint = m/x\n"
			      "[node]\nkey = n1.key\n"
			      "[replication]\nconflict = hook:bin/merge\n"), 0);
	snprintf(want, sizeof(want), "%s/st", f->dir);
	assert_string_equal(c->store_dir, want);
	snprintf(want, sizeof(want), "%s/m/x", f->dir);
	assert_string_equal(c->mountpoint, want);
	assert_string_equal(c->key_file, f->keyfile);
	assert_string_equal(c->public_key, f->pub);
	snprintf(want, sizeof(want), "%s/bin/merge", f->dir);
	assert_string_equal(c->hook, want);

	/* a config file named relative to the working directory */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir("/dev/shm"), 0);
	snprintf(rel, sizeof(rel), "%s/c.conf", f->dir + strlen("/dev/shm/"));
	config_init(c);
	assert_int_equal(config_load(c, rel, f->err, sizeof(f->err)), 0);
	assert_int_equal(chdir(cwd), 0);
	snprintf(want, sizeof(want), "%s/st", f->dir);
	assert_string_equal(c->store_dir, want);
}

static void test_errors(void **state)
{
	struct fx *f = *state;
	char text[PATH_MAX + 1024];

	expect_error(f, "[store]\n[bogus]\nx = 1\n", 2,
		     "section '[bogus]': unknown section "
		     "(store, node, mount, replication, locks, peer NAME, "
		     "lock NAME)");
	expect_error(f, "[store]\n\n  [bogus]\n", 3,
		     "section '[bogus]': unknown section "
		     "(store, node, mount, replication, locks, peer NAME, "
		     "lock NAME)");
	expect_error(f, "[store]\ndir = /s\nsise = 1G\n", 3,
		     "key 'sise': unknown key in [store]");
	expect_error(f, "[peer n2]\naddress = tcp://a:1\nkey = x\n", 3,
		     "key 'key': unknown key in [peer NAME]");
	expect_error(f, "dir = /s\n[store]\n", 1,
		     "key 'dir': outside any section");
	expect_error(f, "[store]\nsize = 1Q\n", 2,
		     "key 'size': '1Q' is not a size "
		     "(N with an optional K, M, G or T)");
	expect_error(f, "[store]\nmax_value = -1\n", 2,
		     "key 'max_value': '-1' is not a size "
		     "(N with an optional K, M, G or T)");
	expect_error(f, "[store]\nsync = always\n", 2,
		     "key 'sync': 'always' is not none or commit");
	expect_error(f, "[store]\ndefault_ttl = 5x\n", 2,
		     "key 'default_ttl': '5x' is not a duration "
		     "(N[ms|s|m|h|d], no unit: seconds)");
	expect_error(f, "[store]\ntombstone_grace = 3661d\n", 2,
		     "key 'tombstone_grace': '3661d' is past the limit of 3660 d");
	expect_error(f, "[store]\nbinlog_max = 10k\n", 2,
		     "key 'binlog_max': '10k' is not a whole number");
	expect_error(f, "[store]\ndir = /a\ndir = /b\n", 3,
		     "key 'dir': given twice (first on line 2)");
	expect_error(f, "[store]\ndir = /a\n[store]\ndir = /b\n", 4,
		     "key 'dir': given twice (first on line 2)");
	expect_error(f, "[node]\nname = n 1\n", 2,
		     "key 'name': a name is letters, digits, '.', '_' and '-'");
	expect_error(f, "[node]\nname = "
		     "a123456789012345678901234567890123456789012345678901234567890123\n",
		     2, "key 'name': name longer than 63 bytes");
	expect_error(f, "[node]\ninsecure = maybe\n", 2,
		     "key 'insecure': 'maybe' is not true or false");
	expect_error(f, "[node]\ninsecure = true\nlisten = 127.0.0.1:7001\n", 3,
		     "key 'listen': '127.0.0.1:7001' is not an endpoint "
		     "(tcp://HOST:PORT, or empty)");
	expect_error(f, "[replication]\nconflict = newest\n", 2,
		     "key 'conflict': 'newest' is not lww, keep or hook:PROGRAM");
	expect_error(f, "[replication]\nconflict = hook:\n", 2,
		     "key 'conflict': 'hook:' is not lww, keep or hook:PROGRAM");
	expect_error(f, "[replication]\nheartbeat = 0\n", 2,
		     "key 'heartbeat': must be more than 0");
	expect_error(f, "[replication]\nheartbeat = 2s\npeer_timeout = 2s\n", 3,
		     "key 'peer_timeout': must be longer than heartbeat (2000 ms)");
	expect_error(f, "[replication]\npeer_timeout = 2s\nheartbeat = 5s\n", 2,
		     "key 'peer_timeout': must be longer than heartbeat (5000 ms)");
	expect_error(f, "[store]\nthis is not ini\n", 2,
		     "not a 'key = value' line nor a [section] header");
	expect_error(f, "[store\ndir = /x\n", 1,
		     "not a 'key = value' line nor a [section] header");
	/* the first error wins, whatever its kind */
	expect_error(f, "[store]\nnonsense\nsize = x\n", 2,
		     "not a 'key = value' line nor a [section] header");
	expect_error(f, "[store]\nsize = x\nnonsense\n", 2,
		     "key 'size': 'x' is not a size "
		     "(N with an optional K, M, G or T)");
	memset(text, 'a', sizeof(text));
	memcpy(text, "[mount]\noptions = ", 18);
	memcpy(text + 500, "\n", 2);
	expect_error(f, text, 2, "line longer than 198 bytes");

	/* a file that cannot be read: -errno and the file's name */
	config_init(f->c);
	assert_int_equal(config_load(f->c, "/nonexistent/x.conf", f->err,
				     sizeof(f->err)), -ENOENT);
	assert_string_equal(f->err, "/nonexistent/x.conf: No such file or directory");
}

/* [locks] and [lock NAME]: the members, their ids, the cluster id and
 * every error of the lock cluster's config. */
static void test_locks(void **state)
{
	struct fx *f = *state;
	struct config *c = f->c;
	struct config_lock_member m[CONFIG_PEERS_MAX + 1];
	char text[8192], head[PATH_MAX + 64], k2[CONFIG_KEY_LEN + 1], s2[CONFIG_KEY_LEN + 1];
	char k3[CONFIG_KEY_LEN + 1], s3[CONFIG_KEY_LEN + 1];
	uint64_t id;

	assert_int_equal(zmq_curve_keypair(k2, s2), 0);
	assert_int_equal(zmq_curve_keypair(k3, s3), 0);
	snprintf(head, sizeof(head), "[node]\nname = n2\nkey = %s\n", f->keyfile);
	snprintf(text, sizeof(text),
		 "%s[locks]\ncluster = app\nlisten = tcp://127.0.0.1:7102\n"
		 "voters = n1 n2 n3\nlease = 2s\nelection_timeout = 200ms\n"
		 "dir = raft\n"
		 "[lock n3]\naddress = tcp://127.0.0.1:7103\npublic_key = %s\n"
		 "[lock n1]\naddress = tcp://127.0.0.1:7101\npublic_key = %s\n"
		 "[lock n4]\naddress = tcp://127.0.0.1:7104\npublic_key = %s\n",
		 head, k3, k2, k2);
	assert_int_equal(load(f, text), 0);
	assert_string_equal(c->lock_cluster, "app");
	assert_string_equal(c->lock_listen, "tcp://127.0.0.1:7102");
	assert_int_equal(c->nlock_voters, 3);
	assert_string_equal(c->lock_voters[2], "n3");
	assert_int_equal(c->lock_lease_ms, 2000);
	assert_int_equal(c->lock_election_ms, 200);
	assert_int_equal(c->nlock_members, 3);
	assert_string_equal(c->lock_members[1].name, "n1");
	assert_true(c->lock_cluster_id != 0);
	id = c->lock_cluster_id;
	assert_int_equal(config_lock_members(c, m), 4);
	assert_string_equal(m[0].name, "n1");
	assert_int_equal(m[0].id, 1);
	assert_int_equal(m[0].voter, 1);
	assert_string_equal(m[1].name, "n2");
	assert_int_equal(m[1].self, 1);
	assert_string_equal(m[1].address, "tcp://127.0.0.1:7102");
	assert_string_equal(m[1].public_key, f->pub);
	assert_string_equal(m[3].name, "n4");
	assert_int_equal(m[3].id, 4);
	assert_int_equal(m[3].voter, 0);

	/* the same cluster seen from another order of sections and other
	 * addresses: the same id; another role or name: another id */
	snprintf(text, sizeof(text),
		 "%s[lock n4]\naddress = tcp://h4:1\npublic_key = %s\n"
		 "[lock n1]\naddress = tcp://h1:1\npublic_key = %s\n"
		 "[lock n3]\naddress = tcp://h3:1\npublic_key = %s\n"
		 "[locks]\ncluster = app\nlisten = tcp://*:7102\n"
		 "voters = n3 n1 n2\n", head, k2, k2, k3);
	assert_int_equal(load(f, text), 0);
	assert_int_equal(c->lock_cluster_id, id);
	assert_int_equal(c->lock_lease_ms, 5000);
	assert_int_equal(c->lock_election_ms, 300);
	assert_string_equal(c->lock_dir, "");
	text[strlen(text) - 10] = '\0';
	strcat(text, "n4 n1 n2\n");
	assert_int_equal(load(f, text), 0);
	assert_true(c->lock_cluster_id != id);

	/* none: no members */
	assert_int_equal(load(f, head), 0);
	assert_int_equal(config_lock_members(c, m), 0);
	assert_int_equal(c->lock_cluster_id, 0);

	snprintf(text, sizeof(text), "%s[locks]\nlisten = tcp://a:1\nvoters = n2\n", head);
	expect_error(f, text, 4, "key 'cluster': [locks] needs the cluster's name");
	snprintf(text, sizeof(text), "%s[locks]\ncluster = a\nvoters = n2\n", head);
	expect_error(f, text, 4, "key 'listen': [locks] needs this node's lock endpoint");
	snprintf(text, sizeof(text), "%s[locks]\ncluster = a\nlisten = tcp://a:1\n", head);
	expect_error(f, text, 4, "key 'voters': [locks] needs 1, 3 or 5 voters");
	snprintf(text, sizeof(text), "%s[locks]\ncluster = a\nlisten = tcp://a:1\n"
		 "voters = n2 n1\n", head);
	expect_error(f, text, 7, "key 'voters': 2 names: give 1, 3 or 5 (a majority "
		     "of an even number tolerates no more failures than one fewer)");
	snprintf(text, sizeof(text), "%s[locks]\ncluster = a\nlisten = tcp://a:1\n"
		 "voters = n2 n2 n1\n", head);
	expect_error(f, text, 7, "key 'voters': 'n2' named twice");
	snprintf(text, sizeof(text), "%s[locks]\ncluster = a\nlisten = tcp://a:1\n"
		 "voters = n2 n1 n3\n[lock n1]\naddress = tcp://a:2\npublic_key = %s\n",
		 head, k2);
	expect_error(f, text, 4, "key 'voters': 'n3' is neither this node nor a "
		     "[lock NAME] section");
	snprintf(text, sizeof(text), "%s[locks]\ncluster = a\nlisten = tcp://a:1\n"
		 "voters = n2\n[lock n1]\naddress = tcp://a:2\n", head);
	expect_error(f, text, 8, "key 'public_key': lock member 'n1' has none, "
		     "and [node] insecure is false");
	snprintf(text, sizeof(text), "%s[locks]\ncluster = a\nlisten = tcp://a:1\n"
		 "voters = n2\n[lock n2]\naddress = tcp://a:2\npublic_key = %s\n",
		 head, k2);
	expect_error(f, text, 8, "section '[lock n2]': that is this node's own "
		     "name (list the other members)");
	snprintf(text, sizeof(text), "%s[lock n1]\naddress = tcp://a:2\npublic_key = %s\n"
		 "[lock n1]\n", head, k2);
	expect_error(f, text, 7, "section '[lock n1]': duplicate lock (first on line 4)");
	snprintf(text, sizeof(text), "%s[lock n1]\naddress = tcp://a:2\npublic_key = %s\n",
		 head, k2);
	expect_error(f, text, 4, "section '[lock n1]': lock members without a "
		     "[locks] section");
	snprintf(text, sizeof(text), "%s[locks]\ncluster = a\nlisten = tcp://a:1\n"
		 "voters = n2\nlease = 100ms\n", head);
	expect_error(f, text, 4, "key 'lease': must be longer than election_timeout "
		     "(300 ms)");
	expect_error(f, "[locks]\ncluster = a\nlisten = tcp://a:1\nvoters = x\n"
		     "[node]\ninsecure = true\n", 1,
		     "key 'name': [locks] needs [node] name");
	expect_error(f, "[node]\nname = x\n[locks]\ncluster = a\nlisten = tcp://a:1\n"
		     "voters = x\n", 3, "key 'key': [node] key is needed for the "
		     "lock service's CURVE (or set insecure = true)");
	expect_error(f, "[locks]\nport = 1\n", 2, "key 'port': unknown key in [locks]");
	expect_error(f, "[lock n1]\nkey = 1\n", 2, "key 'key': unknown key in [lock NAME]");
}

static void test_indented(void **state)
{
	struct fx *f = *state;

	/* indented keys are keys, never continuation lines */
	assert_int_equal(load(f, "[store]\n    dir = /a\n    size = 1M\n"
			      "\t[node]\n\tname = n1\n"), 0);
	assert_string_equal(f->c->store_dir, "/a");
	assert_int_equal(f->c->so.map_size, 1 << 20);
	assert_string_equal(f->c->node_name, "n1");
}

static void test_peers(void **state)
{
	struct fx *f = *state;
	struct config *c = f->c;
	char text[16384], line[256], name[80];
	size_t n = 0, i;

	snprintf(text, sizeof(text), "[node]\nname = n1\nkey = %s\n"
		 "[peer n2]\npublic_key = %s\n[peer n3]\npublic_key = %s\n"
		 "[peer n2]\n", f->keyfile, f->pub, f->pub);
	expect_error(f, text, 8,
		     "section '[peer n2]': duplicate peer (first on line 4)");
	expect_error(f, "[node]\ninsecure = 1\n[peer]\n", 3,
		     "section '[peer]': a peer section is [peer NAME]");
	expect_error(f, "[node]\ninsecure = 1\n[peer a/b]\n", 3,
		     "section '[peer a/b]': a name is letters, digits, '.', '_' and '-'");
	expect_error(f, "[node]\nname = n1\ninsecure = 1\n[peer n1]\n", 4,
		     "section '[peer n1]': that is this node's own name");
	/* a long name is whole, although inih cuts sections at 50 bytes */
	snprintf(name, sizeof(name), "%s", "n123456789012345678901234567890"
		 "12345678901234567890123456789012");
	snprintf(text, sizeof(text), "[node]\ninsecure = 1\n[peer %s]\n"
		 "address = tcp://h:1\n", name);
	assert_int_equal(load(f, text), 0);
	assert_string_equal(c->peers[0].name, name);
	assert_string_equal(c->peers[0].address, "tcp://h:1");

	/* the limit: CONFIG_PEERS_MAX peers, not one more */
	n = snprintf(text, sizeof(text), "[node]\ninsecure = true\n");
	for (i = 0; i < CONFIG_PEERS_MAX; i++) {
		snprintf(line, sizeof(line), "[peer p%zu]\naddress = tcp://h%zu:1\n",
			 i, i);
		n += snprintf(text + n, sizeof(text) - n, "%s", line);
	}
	assert_int_equal(load(f, text), 0);
	assert_int_equal(c->npeers, CONFIG_PEERS_MAX);
	assert_string_equal(c->peers[CONFIG_PEERS_MAX - 1].address, "tcp://h62:1");
	snprintf(text + n, sizeof(text) - n, "[peer extra]\n");
	expect_error(f, text, 3 + 2 * CONFIG_PEERS_MAX,
		     "section '[peer extra]': more than %d peers",
		     CONFIG_PEERS_MAX);
}

static void test_keys_required(void **state)
{
	struct fx *f = *state;
	struct config *c = f->c;
	char text[PATH_MAX + 1024];

	/* a peer needs a public key unless insecure */
	snprintf(text, sizeof(text), "[node]\nkey = %s\n[peer n2]\n"
		 "address = tcp://b:1\n", f->keyfile);
	expect_error(f, text, 3, "key 'public_key': peer 'n2' has none, "
		     "and [node] insecure is false");
	/* peers or a listener need our own key unless insecure */
	snprintf(text, sizeof(text), "[peer n2]\npublic_key = %s\n", f->pub);
	expect_error(f, text, 1, "key 'key': [node] key is needed for CURVE "
		     "with peers or a listener (or set insecure = true)");
	expect_error(f, "[store]\ndir = /x\n[node]\nlisten = tcp://*:7001\n", 4,
		     "key 'key': [node] key is needed for CURVE "
		     "with peers or a listener (or set insecure = true)");
	snprintf(text, sizeof(text), "[peer n2]\npublic_key = %s\n"
		 "public_key_file = n2.pub\n", f->pub);
	expect_error(f, text, 3, "key 'public_key_file': give public_key "
		     "or public_key_file, not both");

	/* insecure = true: no keys anywhere, in any order */
	assert_int_equal(load(f, "[peer n2]\naddress = tcp://10.0.0.2:7001\n"
			      "[peer n3]\n[node]\nlisten = tcp://*:7001\n"
			      "insecure = true\n"), 0);
	assert_int_equal(c->insecure, 1);
	assert_int_equal(c->npeers, 2);
	assert_string_equal(c->peers[0].public_key, "");
	assert_string_equal(c->peers[1].address, "");
	assert_string_equal(c->secret_key, "");
	/* no peers, no listener: a mount-only file needs no key */
	assert_int_equal(load(f, "[store]\ndir = /x\n"), 0);
}

static void test_z85(void **state)
{
	struct fx *f = *state;
	char text[512], bad[CONFIG_KEY_LEN + 1];

	/* too short, too long */
	snprintf(text, sizeof(text), "[node]\ninsecure = 1\n[peer n2]\n"
		 "public_key = %.39s\n", f->pub);
	expect_error(f, text, 4, "key 'public_key': a key is 40 Z85 "
		     "characters, not 39");
	snprintf(text, sizeof(text), "[node]\ninsecure = 1\n[peer n2]\n"
		 "public_key = %sx\n", f->pub);
	expect_error(f, text, 4, "key 'public_key': a key is 40 Z85 "
		     "characters, not 41");
	/* a character outside the alphabet */
	memcpy(bad, f->pub, sizeof(bad));
	bad[6] = '~';
	snprintf(text, sizeof(text), "[node]\ninsecure = 1\n[peer n2]\n"
		 "public_key = %s\n", bad);
	expect_error(f, text, 4, "key 'public_key': character 7 ('~') is not Z85");
	bad[6] = '"';
	snprintf(text, sizeof(text), "[node]\ninsecure = 1\n[peer n2]\n"
		 "public_key = %s\n", bad);
	expect_error(f, text, 4, "key 'public_key': character 7 ('\"') is not Z85");
	/* right alphabet, but a group past 2^32: zmq_z85_decode refuses */
	memset(bad, '#', CONFIG_KEY_LEN);
	bad[CONFIG_KEY_LEN] = '\0';
	snprintf(text, sizeof(text), "[node]\ninsecure = 1\n[peer n2]\n"
		 "public_key = %s\n", bad);
	expect_error(f, text, 4, "key 'public_key': not a Z85 encoding "
		     "(a group is past 2^32)");
	/* the same checks in a public key file */
	put_file(f, "bad.pub", 0644, "short\n", NULL);
	snprintf(text, sizeof(text), "[node]\ninsecure = 1\n[peer n2]\n"
		 "public_key_file = bad.pub\n");
	expect_error(f, text, 4, "key 'public_key_file': %s/bad.pub: not a key "
		     "file (40 Z85 characters and a newline)", f->dir);
	snprintf(text, sizeof(text), "%s\n", bad);
	put_file(f, "bad.pub", 0644, text, NULL);
	snprintf(text, sizeof(text), "[node]\ninsecure = 1\n[peer n2]\n"
		 "public_key_file = bad.pub\n");
	expect_error(f, text, 4, "key 'public_key_file': %s/bad.pub: not a "
		     "Z85 encoding (a group is past 2^32)", f->dir);
	snprintf(text, sizeof(text), "[node]\ninsecure = 1\n[peer n2]\n"
		 "public_key_file = none.pub\n");
	expect_error(f, text, 4, "key 'public_key_file': %s/none.pub: No such "
		     "file or directory", f->dir);
}

static void test_key_file(void **state)
{
	struct fx *f = *state;
	char sec[CONFIG_KEY_LEN + 1], pub[CONFIG_KEY_LEN + 1], text[PATH_MAX + 512];
	char path[PATH_MAX], err[PATH_MAX + 256];

	/* the good one: public key derived */
	assert_int_equal(config_read_key(f->keyfile, sec, pub, err, sizeof(err)), 0);
	assert_string_equal(sec, f->sec);
	assert_string_equal(pub, f->pub);
	/* a newline is optional */
	put_file(f, "nonl.key", 0600, f->sec, path);
	assert_int_equal(config_read_key(path, sec, pub, err, sizeof(err)), 0);
	assert_string_equal(pub, f->pub);

	/* readable by group or others: refused, whatever the content */
	assert_int_equal(chmod(f->keyfile, 0640), 0);
	assert_int_equal(config_read_key(f->keyfile, sec, pub, err, sizeof(err)),
			 -EPERM);
	snprintf(text, sizeof(text), "%s: a secret key readable by group or "
		 "others (mode 0640): chmod 600 it", f->keyfile);
	assert_string_equal(err, text);
	snprintf(text, sizeof(text), "[store]\ndir = /x\n[node]\nkey = %s\n",
		 f->keyfile);
	expect_error(f, text, 4, "key 'key': %s: a secret key readable by "
		     "group or others (mode 0640): chmod 600 it", f->keyfile);
	assert_int_equal(chmod(f->keyfile, 0604), 0);
	expect_error(f, text, 4, "key 'key': %s: a secret key readable by "
		     "group or others (mode 0604): chmod 600 it", f->keyfile);
	assert_int_equal(chmod(f->keyfile, 0400), 0);
	assert_int_equal(load(f, text), 0);
	assert_string_equal(f->c->public_key, f->pub);

	/* missing, bad content, a directory */
	expect_error(f, "[node]\nkey = nope.key\n", 2, "key 'key': %s/nope.key: "
		     "No such file or directory", f->dir);
	put_file(f, "bad.key", 0600, "0123456789\n", NULL);
	expect_error(f, "[node]\nkey = bad.key\n", 2, "key 'key': %s/bad.key: "
		     "not a key file (40 Z85 characters and a newline)", f->dir);
	snprintf(text, sizeof(text), "%.39s~\n", f->sec);
	put_file(f, "bad.key", 0600, text, NULL);
	expect_error(f, "[node]\nkey = bad.key\n", 2, "key 'key': %s/bad.key: "
		     "character 40 ('~') is not Z85", f->dir);
	snprintf(text, sizeof(text), "%s\n%s\n", f->sec, f->sec);
	put_file(f, "bad.key", 0600, text, NULL);
	expect_error(f, "[node]\nkey = bad.key\n", 2, "key 'key': %s/bad.key: "
		     "not a key file (40 Z85 characters and a newline)", f->dir);
	expect_error(f, "[node]\nkey = /dev/shm\n", 2, "key 'key': /dev/shm: "
		     "not a regular file");
}

static void test_parse_size(void **state)
{
	uint64_t v = 7;

	(void)state;
	assert_int_equal(config_parse_size("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(config_parse_size("123", &v), 0);
	assert_int_equal(v, 123);
	assert_int_equal(config_parse_size("4k", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(config_parse_size("16M", &v), 0);
	assert_int_equal(v, 16 << 20);
	assert_int_equal(config_parse_size("1GB", &v), 0);
	assert_int_equal(v, 1 << 30);
	assert_int_equal(config_parse_size("2tb", &v), 0);
	assert_int_equal(v, 2ULL << 40);
	assert_int_equal(config_parse_size("10B", &v), 0);
	assert_int_equal(v, 10);
	v = 7;
	assert_int_equal(config_parse_size("", &v), -EINVAL);
	assert_int_equal(config_parse_size("M", &v), -EINVAL);
	assert_int_equal(config_parse_size("-1", &v), -EINVAL);
	assert_int_equal(config_parse_size(" 1", &v), -EINVAL);
	assert_int_equal(config_parse_size("1 M", &v), -EINVAL);
	assert_int_equal(config_parse_size("1MM", &v), -EINVAL);
	assert_int_equal(config_parse_size("1.5G", &v), -EINVAL);
	assert_int_equal(config_parse_size("16777216T", &v), -EINVAL);
	assert_int_equal(config_parse_size("99999999999999999999", &v), -EINVAL);
	assert_int_equal(v, 7);
	assert_int_equal(config_parse_size("16777215T", &v), 0);
	assert_int_equal(v, 16777215ULL << 40);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overrides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indented, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_required, setup, teardown),
		cmocka_unit_test_setup_teardown(test_z85, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_file, setup, teardown),
		cmocka_unit_test(test_parse_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
