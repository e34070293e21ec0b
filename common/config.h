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
 *   [peer NAME]                    one section per peer, any number
 *   address = tcp://10.0.0.2:7001  dialled by us ("" : it dials us)
 *   public_key = <40 Z85 chars>    or: public_key_file = FILE
 *                                  (NAME as [node] name; at most
 *                                  CONFIG_PEERS_MAX peers)
 *
 * Paths (dir, key, control, mountpoint, hook:, public_key_file) are
 * taken relative to the file's directory and made absolute.
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
};

/* Defaults into c (no file). */
void config_init(struct config *c);

/* Read FILE into c (after config_init). 0, or a negative errno with a
 * one-line message in err (see the top). c->so.node_name then points at
 * c->node_name when a name was given: copying a struct config leaves it
 * pointing at the original. */
int config_load(struct config *c, const char *file, char *err, size_t errlen);

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
