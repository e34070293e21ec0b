/*
 * config.h — the one configuration file of a statefs node (SPEC §8),
 * read by the mount (`statefs -o config=FILE`), the replicator
 * (`statefs-repl --config FILE`) and statefsctl (`--config FILE`).
 *
 * INI, parsed with libinih. Sections and keys:
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
 *
 *   [node]
 *   name = n1                      node name (<= 63 bytes)
 *   listen = tcp://127.0.0.1:7001  replicator endpoint ("" : no listener)
 *   key = /etc/statefs/n1.key      secret key file (statefsctl keygen)
 *   insecure = false               plain TCP, no CURVE (warned at start)
 *   control = /run/statefs/app.sock  local socket of the replicator
 *                                  (default: STORE_DIR/repl.sock)
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
 *
 *   [peer NAME]                    one section per peer, any number
 *   address = tcp://10.0.0.2:7001  dialled by us ("" : it dials us)
 *   public_key = <40 Z85 chars>    or: public_key_file = FILE
 *
 * Unknown sections and keys, bad values, duplicate peers and missing
 * required keys are errors: config_load fills `err` with one line
 * "FILE:LINE: key 'KEY': what is wrong" and returns -EINVAL (-errno when
 * the file cannot be read). Values from the command line override the
 * file: callers parse their flags after config_load.
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
};

/* Defaults into c (no file). */
void config_init(struct config *c);

/* Read FILE into c (after config_init). 0, or a negative errno with a
 * one-line message in err. */
int config_load(struct config *c, const char *file, char *err, size_t errlen);

/* Sizes with K M G T suffixes (an optional B), as in size= and
 * max_value=: 0 or -EINVAL. */
int config_parse_size(const char *s, uint64_t *out);

/* Read a key file written by statefsctl keygen (the secret key: 40 Z85
 * characters and a newline, mode 0600) and derive the public key. */
int config_read_key(const char *file, char secret[CONFIG_KEY_LEN + 1],
		    char public_[CONFIG_KEY_LEN + 1], char *err, size_t errlen);

#endif
