/*
 * config.c — reading a node's configuration file (config.h, SPEC §8).
 *
 * libinih does the INI grammar (sections, "key = value", ';' and '#'
 * comments); this file knows the keys. The packaged libinih hands its
 * handler no line numbers (INI_HANDLER_LINENO is 0 in Debian's build),
 * cuts section names at 50 bytes and joins indented lines to the key
 * before them. So inih reads the file through conf_reader(), which:
 *
 *   - counts lines: inih handles each line as soon as it has read it, so
 *     while the handler runs, p->line is the line of its key;
 *   - strips leading blanks, so an indented "key = value" is a key of its
 *     own and never a continuation of the previous value (the format has
 *     no multi-line values);
 *   - sees the "[section]" headers itself: it checks the section name,
 *     registers [peer NAME] (duplicates, the count limit) and sets
 *     p->sect, which the handler uses instead of inih's (cut) copy;
 *   - refuses lines longer than inih's buffer instead of letting inih
 *     split them.
 *
 * Invariants:
 *  (1) Only the first error is reported: set_err() keeps the first one,
 *      and every check runs in the order of the file's lines, so "first"
 *      is the smallest line. inih's own syntax errors (a line neither a
 *      key nor a header) come back as its return value and win when they
 *      are on an earlier line.
 *  (2) The handler always returns 1: errors are ours to record, so a
 *      non-zero return of ini_parse_stream is always a syntax error.
 *  (3) Checks that depend on more than one key (a peer needs a public
 *      key unless insecure; peers or a listener need [node] key) run
 *      after the whole file is read, so the order of sections is free.
 */
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>
#include <zmq.h>

#include "common/config.h"

enum sect { S_NONE, S_STORE, S_NODE, S_MOUNT, S_REPL, S_LOCKS, S_PEER, S_LOCKMEM, S_BAD };

static const char *const sect_names[] = {
	[S_STORE] = "store", [S_NODE] = "node", [S_MOUNT] = "mount",
	[S_REPL] = "replication", [S_LOCKS] = "locks", [S_PEER] = "peer",
	[S_LOCKMEM] = "lock",
};

/* How a value is parsed. */
enum kind {
	K_PATH,     /* char[PATH_MAX]; relative: to the file's directory */
	K_NAME,     /* char[64], a node name */
	K_ENDPOINT, /* char[256], "" or a ZeroMQ endpoint */
	K_STRING,   /* char[size] as written */
	K_SIZE,     /* uint64_t, config_parse_size */
	K_COUNT,    /* uint64_t, a decimal integer */
	K_TTL,      /* uint64_t ms, store_parse_ttl */
	K_PERIOD,   /* uint64_t ms, store_parse_ttl, not 0 */
	K_BOOL,     /* int */
	K_SYNC,     /* enum store_sync */
	K_CONFLICT, /* conflict and hook */
	K_KEYFILE,  /* [node] key: read, public key derived */
	K_PUBKEY,   /* [peer] public_key, Z85 */
	K_PUBFILE,  /* [peer] public_key_file */
	K_VOTERS,   /* [locks] voters: 1, 3 or 5 names */
};

#define C_(field) offsetof(struct config, field), sizeof(((struct config *)0)->field)
#define P_(field) offsetof(struct config_peer, field), sizeof(((struct config_peer *)0)->field)

static const struct key {
	enum sect sect;
	const char *name;
	enum kind kind;
	size_t off, size; /* in struct config, or struct config_peer */
} keys[] = {
	{ S_STORE, "dir", K_PATH, C_(store_dir) },
	{ S_STORE, "size", K_SIZE, C_(so.map_size) },
	{ S_STORE, "max_value", K_SIZE, C_(so.max_value) },
	{ S_STORE, "sync", K_SYNC, C_(so.sync) },
	{ S_STORE, "default_ttl", K_TTL, C_(so.default_ttl_ms) },
	{ S_STORE, "binlog_max", K_COUNT, C_(so.binlog_max) },
	{ S_STORE, "tombstone_grace", K_TTL, C_(so.tombstone_grace_ms) },
	{ S_STORE, "max_offset", K_TTL, C_(so.max_offset_ms) },
	{ S_NODE, "name", K_NAME, C_(node_name) },
	{ S_NODE, "listen", K_ENDPOINT, C_(listen) },
	{ S_NODE, "key", K_KEYFILE, C_(key_file) },
	{ S_NODE, "insecure", K_BOOL, C_(insecure) },
	{ S_NODE, "control", K_PATH, C_(control) },
	{ S_MOUNT, "mountpoint", K_PATH, C_(mountpoint) },
	{ S_MOUNT, "options", K_STRING, C_(mount_options) },
	{ S_REPL, "conflict", K_CONFLICT, C_(conflict) },
	{ S_REPL, "hook_timeout", K_PERIOD, C_(hook_timeout_ms) },
	{ S_REPL, "heartbeat", K_PERIOD, C_(heartbeat_ms) },
	{ S_REPL, "peer_timeout", K_PERIOD, C_(peer_timeout_ms) },
	{ S_LOCKS, "cluster", K_NAME, C_(lock_cluster) },
	{ S_LOCKS, "listen", K_ENDPOINT, C_(lock_listen) },
	{ S_LOCKS, "voters", K_VOTERS, C_(lock_voters) },
	{ S_LOCKS, "lease", K_PERIOD, C_(lock_lease_ms) },
	{ S_LOCKS, "election_timeout", K_PERIOD, C_(lock_election_ms) },
	{ S_LOCKS, "dir", K_PATH, C_(lock_dir) },
	{ S_PEER, "address", K_ENDPOINT, P_(address) },
	{ S_PEER, "public_key", K_PUBKEY, P_(public_key) },
	{ S_PEER, "public_key_file", K_PUBFILE, P_(public_key) },
	{ S_LOCKMEM, "address", K_ENDPOINT, P_(address) },
	{ S_LOCKMEM, "public_key", K_PUBKEY, P_(public_key) },
	{ S_LOCKMEM, "public_key_file", K_PUBFILE, P_(public_key) },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

struct parser {
	struct config *c;
	FILE *f;
	char *buf; /* getline's */
	size_t cap;
	int line;  /* of the line inih handles now */
	char base[PATH_MAX]; /* the file's directory + '/' */
	enum sect sect;
	struct config_peer *peer; /* in S_PEER and S_LOCKMEM */
	int seen[NKEYS];          /* line of each key of the fixed sections */
	int peer_seen[CONFIG_PEERS_MAX][NKEYS];
	int member_seen[CONFIG_PEERS_MAX][NKEYS];
	int listen_line;
	int locks_line;           /* of the [locks] header */
	/* the first error */
	int err_line;
	char *err;
	size_t errlen;
};

static void set_err(struct parser *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(struct parser *p, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->err_line)
		return;
	p->err_line = line;
	n = snprintf(p->err, p->errlen, "%s:%d: ", p->c->file, line);
	if (n < 0 || (size_t)n >= p->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - n, fmt, ap);
	va_end(ap);
}

/* ---- value parsers ---- */

int config_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || v > UINT64_MAX >> shift)
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -EINVAL;
}

/* Node names: what a host name may hold, and short enough for the
 * store's node_name[64]. */
static const char *name_problem(const char *s)
{
	size_t len = strlen(s), i;

	if (len == 0)
		return "empty name";
	if (len > 63)
		return "name longer than 63 bytes";
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		      s[i] == '_' || s[i] == '-'))
			return "a name is letters, digits, '.', '_' and '-'";
	return NULL;
}

/* A CURVE key in Z85: why `s` is not one, or NULL. */
static const char *z85_problem(const char *s, char *why, size_t len)
{
	static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz"
				       "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
	uint8_t bin[32];
	size_t n = strlen(s), i;

	if (n != CONFIG_KEY_LEN) {
		snprintf(why, len, "a key is %d Z85 characters, not %zu",
			 CONFIG_KEY_LEN, n);
		return why;
	}
	for (i = 0; i < n; i++) {
		if (!strchr(alphabet, s[i])) {
			snprintf(why, len, "character %zu ('%c') is not Z85",
				 i + 1, s[i]);
			return why;
		}
	}
	if (!zmq_z85_decode(bin, s)) {
		snprintf(why, len, "not a Z85 encoding (a group is past 2^32)");
		return why;
	}
	return NULL;
}

/* Read a file of one Z85 key (and an optional newline) into key[41].
 * `mode_check`: refuse a file that group or others may read. */
static int read_key_text(const char *file, int mode_check,
			 char key[CONFIG_KEY_LEN + 1], char *err, size_t errlen)
{
	char buf[CONFIG_KEY_LEN + 3], why[128];
	struct stat st;
	ssize_t n;
	int fd, e;

	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "%s: %s", file, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) < 0) {
		e = errno;
		snprintf(err, errlen, "%s: %s", file, strerror(e));
		close(fd);
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", file);
		close(fd);
		return -EINVAL;
	}
	if (mode_check && (st.st_mode & 077)) {
		snprintf(err, errlen,
			 "%s: a secret key readable by group or others "
			 "(mode %04o): chmod 600 it", file,
			 (unsigned)(st.st_mode & 07777));
		close(fd);
		return -EPERM;
	}
	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	e = errno;
	close(fd);
	if (n < 0) {
		snprintf(err, errlen, "%s: %s", file, strerror(e));
		return -e;
	}
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (memchr(buf, '\0', n) || n != CONFIG_KEY_LEN) {
		snprintf(err, errlen, "%s: not a key file (%d Z85 characters "
			 "and a newline)", file, CONFIG_KEY_LEN);
		return -EINVAL;
	}
	if (z85_problem(buf, why, sizeof(why))) {
		snprintf(err, errlen, "%s: %s", file, why);
		return -EINVAL;
	}
	memcpy(key, buf, CONFIG_KEY_LEN + 1);
	return 0;
}

int config_read_key(const char *file, char secret[CONFIG_KEY_LEN + 1],
		    char public_[CONFIG_KEY_LEN + 1], char *err, size_t errlen)
{
	int r = read_key_text(file, 1, secret, err, errlen);

	if (r)
		return r;
	if (zmq_curve_public(public_, secret) != 0) {
		r = errno ? errno : EINVAL;
		snprintf(err, errlen, "%s: cannot derive the public key: %s",
			 file, zmq_strerror(r));
		memset(secret, 0, CONFIG_KEY_LEN + 1);
		return -r;
	}
	return 0;
}

/* ---- sections ---- */

static struct config_peer *find_in(struct config_peer *v, size_t n,
				   const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

/* "[peer NAME]" or "[lock NAME]": word is "peer" or "lock". The new
 * entry of v (count *n), or NULL with the error set. */
static struct config_peer *named_section(struct parser *p, const char *name,
					 const char *word,
					 struct config_peer *v, size_t *n)
{
	const char *arg = name + strlen(word), *why;
	struct config_peer *e;

	while (*arg == ' ' || *arg == '\t')
		arg++;
	if (!*arg) {
		set_err(p, p->line, "section '[%s]': a %s section is "
			"[%s NAME]", word, word, word);
		return NULL;
	}
	why = name_problem(arg);
	if (why) {
		set_err(p, p->line, "section '[%s %s]': %s", word, arg, why);
		return NULL;
	}
	e = find_in(v, *n, arg);
	if (e) {
		set_err(p, p->line, "section '[%s %s]': duplicate %s (first "
			"on line %d)", word, arg, word, e->line);
		return NULL;
	}
	if (*n == CONFIG_PEERS_MAX) {
		set_err(p, p->line, "section '[%s %s]': more than %d %ss",
			word, arg, CONFIG_PEERS_MAX, word);
		return NULL;
	}
	e = &v[(*n)++];
	memset(e, 0, sizeof(*e));
	memcpy(e->name, arg, strlen(arg) + 1);
	e->line = p->line;
	return e;
}

static int word_is(const char *name, const char *word)
{
	size_t n = strlen(word);

	return strncmp(name, word, n) == 0 &&
	       (name[n] == ' ' || name[n] == '\t');
}

/* A "[...]" line (s starts at the '['): the section that follows. */
static void section_start(struct parser *p, char *s)
{
	char *end = strchr(s, ']'), *name = s + 1;
	size_t i;

	p->peer = NULL;
	p->sect = S_BAD;
	if (!end)
		return; /* inih reports the line */
	*end = '\0';
	while (*name == ' ' || *name == '\t')
		name++;
	for (i = strlen(name); i && (name[i - 1] == ' ' || name[i - 1] == '\t');)
		name[--i] = '\0';
	for (i = S_STORE; i <= S_LOCKS; i++) {
		if (strcmp(name, sect_names[i]) == 0) {
			if (i == S_LOCKS)
				p->locks_line = p->line;
			p->sect = i;
			return;
		}
	}
	if (word_is(name, "peer") || strcmp(name, "peer") == 0) {
		p->peer = named_section(p, name, "peer", p->c->peers,
					&p->c->npeers);
		if (p->peer)
			p->sect = S_PEER;
	} else if (word_is(name, "lock") || strcmp(name, "lock") == 0) {
		p->peer = named_section(p, name, "lock", p->c->lock_members,
					&p->c->nlock_members);
		if (p->peer)
			p->sect = S_LOCKMEM;
	} else {
		set_err(p, p->line, "section '[%s]': unknown section (store, "
			"node, mount, replication, locks, peer NAME, lock NAME)",
			name);
	}
}

/* inih's reader: one line per call, see the top of the file. */
static char *conf_reader(char *str, int num, void *arg)
{
	struct parser *p = arg;
	ssize_t n = getline(&p->buf, &p->cap, p->f);
	char *s;

	if (n < 0)
		return NULL; /* end of file, or ferror() after the parse */
	p->line++;
	s = p->buf;
	if (p->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3; /* a UTF-8 byte order mark */
	while (*s == ' ' || *s == '\t')
		s++;
	n -= s - p->buf;
	if (memchr(s, '\0', n)) {
		set_err(p, p->line, "a NUL byte in the line");
		memcpy(str, "\n", 2);
	} else if (n >= num) {
		set_err(p, p->line, "line longer than %d bytes", num - 2);
		memcpy(str, "\n", 2);
	} else {
		memcpy(str, s, n + 1);
		if (*s == '[')
			section_start(p, s);
	}
	return str;
}

/* ---- keys ---- */

/* A path value: as written if absolute, else relative to the file's
 * directory. */
static int set_path(struct parser *p, char *dst, size_t size, const char *v)
{
	int n;

	if (*v == '/' || !*v)
		n = snprintf(dst, size, "%s", v);
	else
		n = snprintf(dst, size, "%s%s", p->base, v);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int set_string(char *dst, size_t size, const char *v)
{
	size_t len = strlen(v);

	if (len >= size)
		return -ENAMETOOLONG;
	memcpy(dst, v, len + 1);
	return 0;
}

/* "n1 n2 n3": 1, 3 or 5 distinct node names. */
static int parse_voters(struct config *c, const char *v, char *err,
			size_t errlen)
{
	char buf[5 * 64 + 8], *tok, *save = NULL;
	const char *why;
	size_t n = 0, i;

	if (strlen(v) >= sizeof(buf)) {
		snprintf(err, errlen, "more than 5 names");
		return -EINVAL;
	}
	memcpy(buf, v, strlen(v) + 1);
	for (tok = strtok_r(buf, " \t,", &save); tok;
	     tok = strtok_r(NULL, " \t,", &save)) {
		why = name_problem(tok);
		if (why) {
			snprintf(err, errlen, "'%s': %s", tok, why);
			return -EINVAL;
		}
		if (n == 5) {
			snprintf(err, errlen, "more than 5 names");
			return -EINVAL;
		}
		for (i = 0; i < n; i++) {
			if (strcmp(c->lock_voters[i], tok) == 0) {
				snprintf(err, errlen, "'%s' named twice", tok);
				return -EINVAL;
			}
		}
		memcpy(c->lock_voters[n++], tok, strlen(tok) + 1);
	}
	if (n != 1 && n != 3 && n != 5) {
		snprintf(err, errlen, "%zu names: give 1, 3 or 5 (a majority of "
			 "an even number tolerates no more failures than one "
			 "fewer)", n);
		return -EINVAL;
	}
	c->nlock_voters = n;
	return 0;
}

/* Parse `v` for key k into base (struct config or config_peer). 0, or
 * the error message in err. */
static int parse_value(struct parser *p, const struct key *k, char *base,
		       const char *v, char *err, size_t errlen)
{
	void *dst = base + k->off;
	uint64_t u;
	const char *why;
	char *end;
	int r;

	switch (k->kind) {
	case K_PATH:
		if (set_path(p, dst, k->size, v))
			goto too_long;
		return 0;
	case K_NAME:
		why = name_problem(v);
		if (why) {
			snprintf(err, errlen, "%s", why);
			return -EINVAL;
		}
		return set_string(dst, k->size, v);
	case K_ENDPOINT:
		if (*v && (!strstr(v, "://") || strstr(v, "://") == v)) {
			snprintf(err, errlen, "'%s' is not an endpoint "
				 "(tcp://HOST:PORT, or empty)", v);
			return -EINVAL;
		}
		if (set_string(dst, k->size, v))
			goto too_long;
		return 0;
	case K_STRING:
		if (set_string(dst, k->size, v))
			goto too_long;
		return 0;
	case K_SIZE:
		if (config_parse_size(v, dst)) {
			snprintf(err, errlen, "'%s' is not a size "
				 "(N with an optional K, M, G or T)", v);
			return -EINVAL;
		}
		return 0;
	case K_COUNT:
		errno = 0;
		u = strtoull(v, &end, 10);
		if (*v < '0' || *v > '9' || errno || *end) {
			snprintf(err, errlen, "'%s' is not a whole number", v);
			return -EINVAL;
		}
		*(uint64_t *)dst = u;
		return 0;
	case K_TTL:
	case K_PERIOD:
		r = store_parse_ttl(v, strlen(v), &u);
		if (r == -ERANGE) {
			snprintf(err, errlen, "'%s' is past the limit of %llu d",
				 v, (unsigned long long)(STORE_TTL_MAX_MS / 86400000));
			return -EINVAL;
		}
		if (r) {
			snprintf(err, errlen, "'%s' is not a duration "
				 "(N[ms|s|m|h|d], no unit: seconds)", v);
			return -EINVAL;
		}
		if (k->kind == K_PERIOD && u == 0) {
			snprintf(err, errlen, "must be more than 0");
			return -EINVAL;
		}
		*(uint64_t *)dst = u;
		return 0;
	case K_BOOL:
		if (parse_bool(v, dst)) {
			snprintf(err, errlen, "'%s' is not true or false", v);
			return -EINVAL;
		}
		return 0;
	case K_SYNC:
		if (strcmp(v, "none") == 0)
			p->c->so.sync = STORE_SYNC_NONE;
		else if (strcmp(v, "commit") == 0)
			p->c->so.sync = STORE_SYNC_COMMIT;
		else {
			snprintf(err, errlen, "'%s' is not none or commit", v);
			return -EINVAL;
		}
		return 0;
	case K_CONFLICT:
		if (strcmp(v, "lww") == 0) {
			p->c->conflict = CONFLICT_LWW;
		} else if (strcmp(v, "keep") == 0) {
			p->c->conflict = CONFLICT_KEEP;
		} else if (strncmp(v, "hook:", 5) == 0 && v[5]) {
			if (set_path(p, p->c->hook, sizeof(p->c->hook), v + 5))
				goto too_long;
			p->c->conflict = CONFLICT_HOOK;
		} else {
			snprintf(err, errlen, "'%s' is not lww, keep or "
				 "hook:PROGRAM", v);
			return -EINVAL;
		}
		return 0;
	case K_KEYFILE:
		if (set_path(p, dst, k->size, v))
			goto too_long;
		if (!*v) {
			p->c->secret_key[0] = p->c->public_key[0] = '\0';
			return 0;
		}
		r = config_read_key(dst, p->c->secret_key, p->c->public_key,
				    err, errlen);
		return r ? -EINVAL : 0;
	case K_PUBKEY:
		why = z85_problem(v, err, errlen);
		if (why)
			return -EINVAL;
		return set_string(dst, k->size, v);
	case K_VOTERS:
		return parse_voters(p->c, v, err, errlen);
	case K_PUBFILE: {
		char path[PATH_MAX];

		if (set_path(p, path, sizeof(path), v))
			goto too_long;
		r = read_key_text(path, 0, dst, err, errlen);
		return r ? -EINVAL : 0;
	}
	}
	return 0;
too_long:
	snprintf(err, errlen, "value longer than %zu bytes", k->size - 1);
	return -EINVAL;
}

static int conf_handler(void *arg, const char *section, const char *name,
			const char *value)
{
	struct parser *p = arg;
	const struct key *k = NULL;
	char err[PATH_MAX + 256];
	int *seen;
	size_t i;

	(void)section; /* cut at 50 bytes by inih: p->sect is ours */
	if (p->err_line || p->sect == S_BAD)
		return 1;
	if (p->sect == S_NONE) {
		set_err(p, p->line, "key '%s': outside any section", name);
		return 1;
	}
	for (i = 0; i < NKEYS && !k; i++)
		if (keys[i].sect == p->sect && strcmp(keys[i].name, name) == 0)
			k = &keys[i];
	if (!k) {
		set_err(p, p->line, "key '%s': unknown key in [%s]", name,
			p->sect == S_PEER ? "peer NAME" :
			p->sect == S_LOCKMEM ? "lock NAME" : sect_names[p->sect]);
		return 1;
	}
	if (p->sect == S_PEER)
		seen = p->peer_seen[p->peer - p->c->peers];
	else if (p->sect == S_LOCKMEM)
		seen = p->member_seen[p->peer - p->c->lock_members];
	else
		seen = p->seen;
	if (seen[k - keys]) {
		set_err(p, p->line, "key '%s': given twice (first on line %d)",
			name, seen[k - keys]);
		return 1;
	}
	seen[k - keys] = p->line;
	if (p->sect == S_PEER || p->sect == S_LOCKMEM) {
		/* public_key and public_key_file fill the same field */
		for (i = 0; i < NKEYS; i++)
			if (i != (size_t)(k - keys) && seen[i] &&
			    keys[i].kind != K_ENDPOINT && k->kind != K_ENDPOINT) {
				set_err(p, p->line, "key '%s': give public_key "
					"or public_key_file, not both", name);
				return 1;
			}
	}
	if (strcmp(name, "listen") == 0 && p->sect == S_NODE)
		p->listen_line = p->line;
	err[0] = '\0';
	if (parse_value(p, k, p->peer ? (char *)p->peer : (char *)p->c,
			value, err, sizeof(err)))
		set_err(p, p->line, "key '%s': %s", name,
			*err ? err : "value too long");
	return 1;
}

/* The checks of invariant (3). */
static void check_whole(struct parser *p)
{
	struct config *c = p->c;
	int line;
	size_t i;

	for (i = 0; i < c->npeers; i++) {
		if (c->node_name[0] && strcmp(c->peers[i].name, c->node_name) == 0)
			set_err(p, c->peers[i].line, "section '[peer %s]': "
				"that is this node's own name", c->peers[i].name);
		if (!c->peers[i].public_key[0] && !c->insecure)
			set_err(p, c->peers[i].line, "key 'public_key': peer "
				"'%s' has none, and [node] insecure is false",
				c->peers[i].name);
	}
	if (!c->insecure && !c->key_file[0] && (c->npeers || c->listen[0])) {
		line = c->listen[0] ? p->listen_line : c->peers[0].line;
		if (c->npeers && c->peers[0].line < line)
			line = c->peers[0].line;
		set_err(p, line, "key 'key': [node] key is needed for CURVE "
			"with peers or a listener (or set insecure = true)");
	}
	for (i = 0; i < NKEYS; i++) {
		if (strcmp(keys[i].name, "peer_timeout") != 0)
			continue;
		line = p->seen[i];
		if (line && c->peer_timeout_ms <= c->heartbeat_ms)
			set_err(p, line, "key 'peer_timeout': must be longer "
				"than heartbeat (%llu ms)",
				(unsigned long long)c->heartbeat_ms);
	}
}

/* [locks] and [lock NAME]: the lock cluster (checked after the file). */
static void check_locks(struct parser *p)
{
	struct config *c = p->c;
	int line = p->locks_line;
	size_t i;

	if (!line) {
		if (c->nlock_members)
			set_err(p, c->lock_members[0].line, "section '[lock %s]': "
				"lock members without a [locks] section",
				c->lock_members[0].name);
		return;
	}
	if (!c->lock_cluster[0])
		set_err(p, line, "key 'cluster': [locks] needs the cluster's name");
	if (!c->lock_listen[0])
		set_err(p, line, "key 'listen': [locks] needs this node's lock "
			"endpoint");
	if (!c->nlock_voters)
		set_err(p, line, "key 'voters': [locks] needs 1, 3 or 5 voters");
	if (!c->node_name[0])
		set_err(p, line, "key 'name': [locks] needs [node] name");
	if (c->lock_lease_ms <= c->lock_election_ms)
		set_err(p, line, "key 'lease': must be longer than "
			"election_timeout (%llu ms)",
			(unsigned long long)c->lock_election_ms);
	if (!c->insecure && !c->key_file[0])
		set_err(p, line, "key 'key': [node] key is needed for the lock "
			"service's CURVE (or set insecure = true)");
	for (i = 0; i < c->nlock_members; i++) {
		struct config_peer *m = &c->lock_members[i];

		if (strcmp(m->name, c->node_name) == 0)
			set_err(p, m->line, "section '[lock %s]': that is this "
				"node's own name (list the other members)", m->name);
		if (!m->address[0])
			set_err(p, m->line, "key 'address': lock member '%s' "
				"has none", m->name);
		if (!m->public_key[0] && !c->insecure)
			set_err(p, m->line, "key 'public_key': lock member '%s' "
				"has none, and [node] insecure is false", m->name);
	}
	for (i = 0; i < c->nlock_voters; i++)
		if (strcmp(c->lock_voters[i], c->node_name) != 0 &&
		    !find_in(c->lock_members, c->nlock_members, c->lock_voters[i]))
			set_err(p, line, "key 'voters': '%s' is neither this node "
				"nor a [lock NAME] section", c->lock_voters[i]);
}

static int member_cmp(const void *a, const void *b)
{
	return strcmp(((const struct config_lock_member *)a)->name,
		      ((const struct config_lock_member *)b)->name);
}

size_t config_lock_members(const struct config *c,
			   struct config_lock_member *out)
{
	size_t n = 0, i, j;

	if (!c->lock_cluster[0])
		return 0;
	out[n++] = (struct config_lock_member){
		.name = c->node_name, .address = c->lock_listen,
		.public_key = c->insecure ? "" : c->public_key, .self = 1 };
	for (i = 0; i < c->nlock_members; i++)
		out[n++] = (struct config_lock_member){
			.name = c->lock_members[i].name,
			.address = c->lock_members[i].address,
			.public_key = c->insecure ? "" : c->lock_members[i].public_key };
	qsort(out, n, sizeof(*out), member_cmp);
	for (i = 0; i < n; i++) {
		out[i].id = i + 1;
		for (j = 0; j < c->nlock_voters; j++)
			if (strcmp(c->lock_voters[j], out[i].name) == 0)
				out[i].voter = 1;
	}
	return n;
}

/* See config.h: the same on every member whose config agrees. */
static uint64_t cluster_id(const struct config *c)
{
	struct config_lock_member m[CONFIG_PEERS_MAX + 1];
	crypto_generichash_state st;
	unsigned char h[crypto_generichash_BYTES];
	size_t n = config_lock_members(c, m), i;
	uint64_t id = 0;

	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const unsigned char *)"statefs-locks", 14);
	crypto_generichash_update(&st, (const unsigned char *)c->lock_cluster,
				  strlen(c->lock_cluster) + 1);
	for (i = 0; i < n; i++) {
		const char *role = m[i].voter ? "voter" : "standby";

		crypto_generichash_update(&st, (const unsigned char *)m[i].name,
					  strlen(m[i].name) + 1);
		crypto_generichash_update(&st, (const unsigned char *)m[i].public_key,
					  strlen(m[i].public_key) + 1);
		crypto_generichash_update(&st, (const unsigned char *)role,
					  strlen(role));
		crypto_generichash_update(&st, (const unsigned char *)"\n", 1);
	}
	crypto_generichash_final(&st, h, sizeof(h));
	for (i = 0; i < 8; i++)
		id |= (uint64_t)h[i] << (8 * i);
	return id;
}

/* ---- the API ---- */

void config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->so.sync = STORE_SYNC_NONE;
	c->conflict = CONFLICT_LWW;
	c->hook_timeout_ms = 5000;
	c->heartbeat_ms = 1000;
	c->peer_timeout_ms = 5000;
	c->lock_lease_ms = 5000;
	c->lock_election_ms = 300;
}

int config_load(struct config *c, const char *file, char *err, size_t errlen)
{
	char cwd[PATH_MAX] = "";
	struct parser *p;
	const char *slash;
	int r, e, n;

	if (errlen)
		err[0] = '\0';
	if (set_string(c->file, sizeof(c->file), file)) {
		snprintf(err, errlen, "%s: %s", file, strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "%s: %s", file, strerror(ENOMEM));
		return -ENOMEM;
	}
	p->c = c;
	p->err = err;
	p->errlen = errlen;
	/* base: the file's directory, absolute, so that paths read from
	 * the file stay right after a chdir (fuse_daemonize goes to /) */
	slash = strrchr(file, '/');
	if (*file != '/' && !getcwd(cwd, sizeof(cwd)))
		cwd[0] = '\0';
	n = snprintf(p->base, sizeof(p->base), "%s%s%.*s", cwd,
		     cwd[0] && strcmp(cwd, "/") != 0 ? "/" : "",
		     slash ? (int)(slash - file + 1) : 0, file);
	if (n < 0 || (size_t)n >= sizeof(p->base)) {
		snprintf(err, errlen, "%s: %s", file, strerror(ENAMETOOLONG));
		free(p);
		return -ENAMETOOLONG;
	}
	p->f = fopen(file, "re");
	if (!p->f) {
		e = errno;
		snprintf(err, errlen, "%s: %s", file, strerror(e));
		free(p);
		return -e;
	}
	r = ini_parse_stream(conf_reader, p, conf_handler, p);
	if (ferror(p->f)) {
		e = errno ? errno : EIO;
		p->err_line = 0;
		snprintf(err, errlen, "%s: %s", file, strerror(e));
		r = -e;
	} else {
		if (r > 0 && (!p->err_line || r < p->err_line)) {
			p->err_line = 0;
			set_err(p, r, "not a 'key = value' line nor a "
				"[section] header");
		}
		if (!p->err_line)
			check_whole(p);
		if (!p->err_line)
			check_locks(p);
		if (!p->err_line && c->lock_cluster[0])
			c->lock_cluster_id = cluster_id(c);
		r = p->err_line ? -EINVAL : 0;
	}
	if (c->node_name[0])
		c->so.node_name = c->node_name;
	fclose(p->f);
	free(p->buf);
	free(p);
	return r;
}
