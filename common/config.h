/*
 * config.h — the one configuration file of a statefs node (SPEC §8),
 * read by the mount (`statefs -o config=FILE`), the replicator
 * (`statefs-repl --config FILE`) and statefsctl (`--config FILE`).
 *
 * INI, parsed with libinih. Comments start with ';' or '#' (';' also
 * after a value, with a blank before it); leading blanks are ignored and
 * there are no continuation lines; a line is at most 198 bytes. Sections
 * and keys (from size to max_offset, for insecure and in [replication]
 * the values shown are the defaults):
 *
 *   [store]
 *   dir = /var/lib/statefs/app     store directory (required for repl)
 *   size = 1G                      map size (K M G T suffixes)
 *   max_value = 16M
 *   sync = none | commit
 *   default_ttl = 0                TTL grammar of store_parse_ttl
 *   binlog_max = 100000            entries
 *   tombstone_grace = 24h          TTL grammar
 *   max_offset = 500ms             TTL grammar: clock hold-back
 *                                  (c->so stays 0 for a key not given:
 *                                  the store's defaults, store.h)
 *
 *   [node]
 *   name = n1                      node name (<= 63 bytes: letters,
 *                                  digits, '.', '_', '-'; "": the
 *                                  stored one, else the host name)
 *   listen = tcp://127.0.0.1:7001  replicator endpoint ("" : no listener)
 *   key = /etc/statefs/n1.key      secret key file (statefsctl keygen)
 *   insecure = false               plain TCP, no CURVE (warned at start)
 *                                  true, yes, on, 1 / false, no, off, 0
 *   control = /run/statefs/app.sock  local socket of the replicator
 *                                  ("": STORE_DIR/repl.sock, for the
 *                                  caller to compose)
 *
 *   [mount]
 *   mountpoint = /state
 *   options = allow_other          the mount's -o list
 *
 *   [replication]
 *   conflict = lww | keep | hook:/path/to/program
 *   hook_timeout = 5s
 *   heartbeat = 1s                 TTL grammar
 *   peer_timeout = 5s              no word from a peer this long: down
 *                                  (durations here are > 0, and
 *                                  peer_timeout > heartbeat)
 *
 *   [locks]                        present: mesh-wide locks (SPEC §6)
 *   cluster = app                  the lock cluster's name (required;
 *                                  node-name grammar), same everywhere
 *   listen = tcp://127.0.0.1:7101  this node's lock endpoint (required)
 *   voters = n1 n2 n3              1, 3 or 5 member names (required)
 *   lease = 5s                     a host unheard this long loses its
 *                                  locks (> election_timeout)
 *   election_timeout = 300ms       Raft's
 *   dir = /var/lib/statefs/raft    Raft's data ("": STORE_DIR/raft, for
 *                                  the caller to compose)
 *
 *   [lock NAME]                    every OTHER member of the lock
 *   address = tcp://10.0.0.2:7101  cluster: its lock endpoint (required)
 *   public_key = <40 Z85 chars>    or public_key_file, as for [peer]
 *
 *   [peer NAME]                    one section per peer, any number
 *   address = tcp://10.0.0.2:7001  dialled by us ("" : it dials us)
 *   public_key = <40 Z85 chars>    or: public_key_file = FILE
 *                                  (NAME as [node] name; at most
 *                                  CONFIG_PEERS_MAX peers)
 *
 * Paths (dir, key, control, mountpoint, hook:, public_key_file) are
 * taken relative to the file's directory and made absolute.
 *
 * The lock cluster's members are this node and its [lock NAME]
 * sections, which must not name this node; voters must be members.
 * config_load computes lock_cluster_id from the cluster's name and
 * every member's name, public key and role (voter or standby): nodes
 * whose configs disagree about the cluster get different ids, and the
 * lock service refuses each other's traffic instead of risking two
 * tables. Listen addresses are not in the id (each node may see its
 * peers under other addresses).
 *
 * Keys: unless insecure = true, every peer needs public_key or
 * public_key_file, and peers or a listener need [node] key; key files
 * are read (and checked) by config_load itself.
 *
 * Unknown sections and keys, bad values, keys given twice, duplicate
 * peers, bad key files and missing required keys are errors:
 * config_load fills `err` with the first one, on one line, and returns
 * -EINVAL (-errno when FILE itself cannot be read: "FILE: strerror").
 * The line is "FILE:LINE: key 'KEY': what is wrong", or for a section
 * header "FILE:LINE: section '[NAME]': what is wrong", or for a line
 * that is neither "FILE:LINE: not a 'key = value' line nor a [section]
 * header". A missing key is reported on the line that needed it. On
 * error, c holds what was read before it.
 *
 * Values from the command line override the file: callers parse their
 * flags after config_load. Nothing is required of [store] dir or
 * [mount] mountpoint here: the caller checks what it needs.
 */
#ifndef STATEFS_CONFIG_H
#define STATEFS_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define CONFIG_KEY_LEN 40 /* a CURVE key in Z85 */
#define CONFIG_PEERS_MAX (STORE_VV_MAX - 1)

enum config_conflict {
	CONFLICT_LWW = 0,
	CONFLICT_KEEP = 1,
	CONFLICT_HOOK = 2,
};

struct config_peer {
	char name[64];
	char address[256];                 /* "": inbound only */
	char public_key[CONFIG_KEY_LEN + 1]; /* "": none (insecure) */
	int line;                          /* for messages */
};

struct config {
	char file[PATH_MAX];               /* "" when none was read */
	/* [store] */
	char store_dir[PATH_MAX];
	struct store_opts so;              /* node_name points at node_name */
	/* [node] */
	char node_name[64];
	char listen[256];
	char key_file[PATH_MAX];
	char secret_key[CONFIG_KEY_LEN + 1]; /* read from key_file */
	char public_key[CONFIG_KEY_LEN + 1]; /* derived from the secret */
	int insecure;
	char control[PATH_MAX];
	/* [mount] */
	char mountpoint[PATH_MAX];
	char mount_options[1024];
	/* [replication] */
	enum config_conflict conflict;
	char hook[PATH_MAX];
	uint64_t hook_timeout_ms;          /* default 5000 */
	uint64_t heartbeat_ms;             /* default 1000 */
	uint64_t peer_timeout_ms;          /* default 5000 */
	/* [peer NAME] */
	struct config_peer peers[CONFIG_PEERS_MAX];
	size_t npeers;
	/* [locks] and [lock NAME] */
	char lock_cluster[64];             /* "": no mesh-wide locks */
	char lock_listen[256];
	char lock_dir[PATH_MAX];
	uint64_t lock_lease_ms;            /* default 5000 */
	uint64_t lock_election_ms;         /* default 300 */
	char lock_voters[5][64];
	size_t nlock_voters;
	struct config_peer lock_members[CONFIG_PEERS_MAX]; /* the others */
	size_t nlock_members;
	uint64_t lock_cluster_id;          /* computed; see above */
};

/* A member of the lock cluster, self included (config_lock_members). */
struct config_lock_member {
	const char *name;        /* point into the struct config */
	const char *address;     /* self: lock_listen */
	const char *public_key;  /* "" when insecure */
	uint64_t id;             /* Raft id: 1 + index in name order */
	int voter, self;
};

/* Defaults into c (no file). */
void config_init(struct config *c);

/* Read FILE into c (after config_init). 0, or a negative errno with a
 * one-line message in err (see the top). c->so.node_name then points at
 * c->node_name when a name was given: copying a struct config leaves it
 * pointing at the original. */
int config_load(struct config *c, const char *file, char *err, size_t errlen);

/* The lock cluster's members, self included, sorted by name (byte
 * order), into out[CONFIG_PEERS_MAX + 1]; their count (0 without
 * [locks]). Every member computes the same ids. */
size_t config_lock_members(const struct config *c,
			   struct config_lock_member *out);

/* Sizes with K M G T suffixes (an optional B), as in size= and
 * max_value= and the mount's size= and maxvalue=: 0 or -EINVAL (also
 * for a sign, blanks, and a value past 2^64). */
int config_parse_size(const char *s, uint64_t *out);

/* Read a key file written by statefsctl keygen (the secret key: 40 Z85
 * characters and a newline, mode 0600) and derive the public key. 0, or
 * a negative errno with "FILE: what is wrong" in err: -EPERM for a file
 * group or others may read (mode & 077), -EINVAL for bad contents,
 * -errno when it cannot be read. */
int config_read_key(const char *file, char secret[CONFIG_KEY_LEN + 1],
		    char public_[CONFIG_KEY_LEN + 1], char *err, size_t errlen);

#endif
