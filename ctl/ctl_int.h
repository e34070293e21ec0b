/*
 * ctl_int.h — shared inside ctl/ only: the pieces of statefsctl that
 * both the simple commands (statefsctl.c) and the bulk ones (transfer.c,
 * dump and import) use. Never included from another module.
 *
 * Exit codes are the CLI's contract (SPEC §1): every command returns one
 * of enum ctl_exit after printing at most one line on stderr.
 */
#ifndef STATEFS_CTL_INT_H
#define STATEFS_CTL_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store/store.h"

enum ctl_exit {
	CTL_OK = 0,
	CTL_NOKEY = 1, /* no such key */
	CTL_USAGE = 2, /* bad command line */
	CTL_ERR = 3,   /* store or system error, bad input data */
};

/* What every command gets: the store directory named by -s or
 * $STATEFS_STORE (NULL when neither), and the open handle once
 * ctl_open() succeeded. */
struct ctl {
	const char *store_dir;
	const struct store_opts *opts; /* the --config file's [store], or NULL */
	const char *cmd; /* the command's name, for messages */
	int verbose;
	struct store *s;
};

/* One command: name, one-line summary for --help, usage text, handler.
 * argv[0] is the command's name; the handler parses its own options
 * with getopt_long. */
struct ctl_cmd {
	const char *name;
	const char *summary;
	const char *usage;
	int (*run)(struct ctl *c, int argc, char **argv);
};

/* Option table entries every command has: -s/--store and -h/--help. */
#define CTL_COMMON_OPTS                             \
	{ "store", required_argument, NULL, 's' }, \
	{ "help", no_argument, NULL, 'h' }

/* Handle an option every command shares (-s, -h) or a getopt error
 * (optstrings start with ':'). Returns -1 when parsing goes on, else
 * the exit code to return now. */
int ctl_common_opt(struct ctl *c, int opt, char **argv);

/* "statefsctl: " + message + newline on stderr, as one write. */
void ctl_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Report a failed store call on `what` (a path, or NULL) and return the
 * exit code for it: CTL_NOKEY for -ENOENT, CTL_ERR for anything else. */
int ctl_fail(struct ctl *c, const char *what, int err);

/* A usage error: one line naming the command, exit CTL_USAGE. */
int ctl_usage(struct ctl *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Print the command's usage on stdout (for --help) and return CTL_OK. */
int ctl_help(const struct ctl_cmd *cmd);
const struct ctl_cmd *ctl_find_cmd(const char *name);

/* Open the store. `create`: put/import/del may create it; every other
 * command needs an existing store. Returns CTL_OK or an exit code after
 * printing the message. */
int ctl_open(struct ctl *c, int create);

/* Canonicalise a key given on the command line: "a/b", "/a/b" and
 * "/a/b/" all become "/a/b"; "" and "/" become "/". Empty, "." and ".."
 * components are refused (-EINVAL). Returns a malloc'd string in *out. */
int ctl_key(const char *arg, char **out);

/* Parse a non-negative decimal integer that fits `max`. -EINVAL else. */
int ctl_parse_u64(const char *arg, uint64_t max, uint64_t *out);

/* Percent-escape `len` bytes to f: every byte <= 0x20 (controls, space),
 * 0x25 '%' and 0x7f becomes %XX (upper-case hex); all other bytes,
 * UTF-8 included, are written as they are. So the output has no space,
 * tab or newline, and ctl_unescape gives back the exact bytes. */
void ctl_escape(FILE *f, const void *buf, size_t len);

/* Undo ctl_escape in place. Returns the decoded length, or -EINVAL for
 * a '%' not followed by two hex digits or for a raw byte ctl_escape
 * would have escaped (space, control). */
ssize_t ctl_unescape(char *buf, size_t len);

/* ISO 8601 UTC: "2024-05-01T12:00:00Z", with `frac` digits of fraction
 * (0, 3 or 9). */
void ctl_format_time(char *buf, size_t size, int64_t ns, int frac);

/* Monotonic seconds, for progress and summaries. */
double ctl_seconds(void);

int ctl_cmd_dump(struct ctl *c, int argc, char **argv);
int ctl_cmd_import(struct ctl *c, int argc, char **argv);

#endif
