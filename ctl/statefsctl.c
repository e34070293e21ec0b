/*
 * statefsctl.c — the embedded CLI: "start, write, exit" (SPEC §1).
 *
 * Every invocation opens the store directory itself through the store
 * library, does one command and exits; there is no daemon. Writes go
 * through the same store calls as the mount, so they land in the binlog
 * and replicate like any other change.
 *
 * Shape: main() parses the global options (-s, --config, -v, --help,
 * --version) with getopt_long stopping at the first operand, looks the
 * command up in ctl_cmds[] and hands it the rest of argv; each command
 * parses its own options with getopt_long (GNU order: options may follow
 * operands; "--" ends them, for a key or value that starts with '-').
 * This file holds the small commands (get, put, del, ls, stat, watch,
 * digest, status, check, keygen) and the shared helpers of ctl_int.h;
 * dump and import live in transfer.c.
 *
 * Invariants:
 *  (1) Exit code 0 ok, 1 no such key, 2 usage, 3 store/system error or
 *      bad input data; every non-zero exit prints exactly one line on
 *      stderr ("statefsctl: CMD KEY: message"). The store's own log is
 *      silenced below LOG_FATAL unless -v, so it cannot add a line.
 *  (2) Read commands open the store with no_create: they never create a
 *      store as a side effect of a typo in -s.
 *  (3) Values are bytes: get writes exactly the value, put stores
 *      exactly its argument or stdin, NUL bytes included.
 *  (4) watch never polls: it sleeps in store_wait() until a commit (from
 *      any process) wakes it; the 1 s timeout only bounds how late a
 *      signal that raced the check is noticed.
 *  (5) The store directory is the first of: -s (after the command name,
 *      then before it), the [store] dir of --config FILE, and
 *      $STATEFS_STORE. A bad config file is a usage error (exit 2).
 *  (6) keygen never overwrites: both files are created with O_EXCL, and
 *      the secret one is never readable by anyone but its owner.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "common/config.h"
#include "common/log.h"
#include "common/replstat.h"
#include "ctl/ctl_int.h"

#define CTL_VERSION "0.1.0"

/* ---- messages and errors ---- */

void ctl_msg(const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	fprintf(stderr, "statefsctl: %s\n", line);
}

int ctl_fail(struct ctl *c, const char *what, int err)
{
	if (what)
		ctl_msg("%s %s: %s", c->cmd, what, store_strerror(err));
	else
		ctl_msg("%s: %s", c->cmd, store_strerror(err));
	return err == -ENOENT ? CTL_NOKEY : CTL_ERR;
}

int ctl_usage(struct ctl *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ctl_msg("%s: %s (try 'statefsctl %s --help')", c->cmd, line, c->cmd);
	return CTL_USAGE;
}

int ctl_help(const struct ctl_cmd *cmd)
{
	printf("usage: statefsctl [-s STORE_DIR] %s\n\n%s\n", cmd->usage,
	       cmd->summary);
	printf("  -s, --store DIR  the store directory (else the --config file's\n"
	       "                   [store] dir, else $STATEFS_STORE)\n"
	       "  -h, --help       this text\n");
	return CTL_OK;
}

int ctl_open(struct ctl *c, int create)
{
	struct store_opts opts = { 0 };
	const char *last;
	int err;

	if (c->opts)
		opts = *c->opts; /* sizes, caps and node name from --config */
	if (!c->store_dir || !*c->store_dir)
		return ctl_usage(c, "no store: use -s STORE_DIR, --config FILE "
				 "or set STATEFS_STORE");
	opts.no_create = !create;
	err = store_open(c->store_dir, &opts, &c->s);
	if (!err)
		return CTL_OK;
	last = store_last_error();
	if (err == -ENOENT && !create)
		ctl_msg("%s: no statefs store here", c->store_dir);
	else if (last && *last)
		ctl_msg("%s", last);
	else
		ctl_msg("%s: %s", c->store_dir, store_strerror(err));
	return CTL_ERR;
}

/* ---- small parsers ---- */

int ctl_key(const char *arg, char **out)
{
	size_t len = strlen(arg), i = 0, o = 0;
	char *k = malloc(len + 2);

	if (!k)
		return -ENOMEM;
	while (i < len && arg[i] == '/' && i == 0)
		i++;
	k[o++] = '/';
	while (i < len) {
		size_t start = i, n;

		while (i < len && arg[i] != '/')
			i++;
		n = i - start;
		if (n == 0 || (n == 1 && arg[start] == '.') ||
		    (n == 2 && arg[start] == '.' && arg[start + 1] == '.')) {
			free(k);
			return -EINVAL;
		}
		if (o > 1)
			k[o++] = '/';
		memcpy(k + o, arg + start, n);
		o += n;
		if (i < len) {
			i++; /* the slash */
			if (i == len)
				break; /* one trailing slash is allowed */
		}
	}
	k[o] = '\0';
	*out = k;
	return 0;
}

int ctl_parse_u64(const char *arg, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!arg || *arg < '0' || *arg > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int ctl_parse_mode(const char *arg, uint32_t *mode)
{
	unsigned long v;
	char *end;

	if (*arg < '0' || *arg > '7')
		return -EINVAL;
	errno = 0;
	v = strtoul(arg, &end, 8);
	if (errno || *end || v > 07777)
		return -EINVAL;
	*mode = v;
	return 0;
}

/* ---- output helpers ---- */

void ctl_escape(FILE *f, const void *buf, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = buf;
	size_t i, run = 0;

	for (i = 0; i < len; i++) {
		unsigned char ch = p[i];

		if (ch > 0x20 && ch != '%' && ch != 0x7f)
			continue;
		if (i > run)
			fwrite(p + run, 1, i - run, f);
		putc('%', f);
		putc(hex[ch >> 4], f);
		putc(hex[ch & 15], f);
		run = i + 1;
	}
	if (len > run)
		fwrite(p + run, 1, len - run, f);
}

static int ctl_hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

ssize_t ctl_unescape(char *buf, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		unsigned char ch = buf[i];
		int hi, lo;

		if (ch <= 0x20 || ch == 0x7f)
			return -EINVAL;
		if (ch != '%') {
			buf[o++] = ch;
			continue;
		}
		if (i + 2 >= len)
			return -EINVAL;
		hi = ctl_hexval(buf[i + 1]);
		lo = ctl_hexval(buf[i + 2]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		buf[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	return o;
}

void ctl_format_time(char *buf, size_t size, int64_t ns, int frac)
{
	time_t sec = ns / 1000000000;
	long rem = ns % 1000000000;
	struct tm tm;
	size_t n;

	if (rem < 0) {
		rem += 1000000000;
		sec--;
	}
	gmtime_r(&sec, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	if (frac == 9)
		snprintf(buf + n, size - n, ".%09ldZ", rem);
	else if (frac == 3)
		snprintf(buf + n, size - n, ".%03ldZ", rem / 1000000);
	else
		snprintf(buf + n, size - n, "Z");
}

double ctl_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *ctl_type_name(enum store_type type)
{
	switch (type) {
	case STORE_FILE:
		return "file";
	case STORE_DIR:
		return "dir";
	case STORE_SYMLINK:
		return "symlink";
	case STORE_TOMBSTONE:
		return "tombstone";
	default:
		return "none";
	}
}

/* Flush stdout and turn a failed write into the one-line error. */
static int ctl_flush(struct ctl *c, int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ctl_msg("%s: write error: %s", c->cmd, strerror(errno));
		return CTL_ERR;
	}
	return rc;
}

/* Handle the options every command shares; returns -1 if `opt` was one
 * of them and parsing goes on, else the exit code to return now. */
int ctl_common_opt(struct ctl *c, int opt, char **argv)
{
	switch (opt) {
	case 's':
		c->store_dir = optarg;
		return -1;
	case 'h':
		return ctl_help(ctl_find_cmd(c->cmd));
	case ':':
		return ctl_usage(c, "option '%s' needs an argument",
				 argv[optind - 1]);
	default:
		if (optopt)
			return ctl_usage(c, "unknown option '-%c'", optopt);
		return ctl_usage(c, "unknown option '%s'", argv[optind - 1]);
	}
}

/* Parse the single KEY operand (or an optional one when `def` is
 * given). Returns CTL_OK with *key malloc'd, else the exit code. */
static int ctl_key_operand(struct ctl *c, int argc, char **argv,
			   const char *def, char **key)
{
	const char *arg;
	int err;

	if (optind == argc && !def)
		return ctl_usage(c, "missing KEY");
	if (argc - optind > 1)
		return ctl_usage(c, "too many arguments");
	arg = optind < argc ? argv[optind] : def;
	err = ctl_key(arg, key);
	if (err == -EINVAL)
		return ctl_usage(c, "bad key '%s': empty, '.' or '..' component", arg);
	if (err)
		return ctl_fail(c, NULL, err);
	return CTL_OK;
}

/* ---- get ---- */

static int ctl_cmd_get(struct ctl *c, int argc, char **argv)
{
	static const struct option lopts[] = { CTL_COMMON_OPTS, { 0 } };
	char *key = NULL;
	void *val = NULL;
	size_t len;
	int opt, rc, err;

	while ((opt = getopt_long(argc, argv, ":s:h", lopts, NULL)) != -1)
		if ((rc = ctl_common_opt(c, opt, argv)) >= 0)
			return rc;
	if ((rc = ctl_key_operand(c, argc, argv, NULL, &key)) != CTL_OK)
		return rc;
	if ((rc = ctl_open(c, 0)) != CTL_OK)
		goto out;
	err = store_get(c->s, NULL, key, NULL, &val, &len);
	if (err) {
		rc = ctl_fail(c, key, err);
		goto out;
	}
	if (len && fwrite(val, 1, len, stdout) != len) {
		ctl_msg("get %s: write error: %s", key, strerror(errno));
		rc = CTL_ERR;
		goto out;
	}
	rc = ctl_flush(c, CTL_OK);
out:
	free(val);
	free(key);
	return rc;
}

/* ---- put ---- */

/* Read all of stdin, at most `max` bytes + 1 (so that a value past the
 * store's limit still reaches store_put and gets its -EFBIG). */
static int ctl_read_stdin(uint64_t max, char **bufp, size_t *lenp)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap), *nb;
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len == cap) {
			if (len > max) /* already over the limit */
				break;
			cap *= 2;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		n = read(STDIN_FILENO, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			n = -errno;
			free(buf);
			return n;
		}
		if (n == 0)
			break;
		len += n;
	}
	*bufp = buf;
	*lenp = len;
	return 0;
}

static int ctl_cmd_put(struct ctl *c, int argc, char **argv)
{
	static const struct option lopts[] = {
		CTL_COMMON_OPTS,
		{ "ttl", required_argument, NULL, 't' },
		{ "mode", required_argument, NULL, 'm' },
		{ "parents", no_argument, NULL, 'p' },
		{ "no-parents", no_argument, NULL, 'P' },
		{ 0 }
	};
	struct store_attr a = { .mode = 0644 };
	unsigned flags = STORE_CREATE | STORE_PARENTS, mask = 0;
	char *key = NULL, *val = NULL;
	struct store_info info;
	size_t len = 0;
	int opt, rc, err;

	while ((opt = getopt_long(argc, argv, ":s:ht:m:pP", lopts, NULL)) != -1) {
		switch (opt) {
		case 't':
			if (store_parse_ttl(optarg, strlen(optarg), &a.ttl_ms))
				return ctl_usage(c, "bad --ttl '%s' (N[ms|s|m|h|d], "
						 "at most 3660d)", optarg);
			mask |= STORE_ATTR_TTL;
			break;
		case 'm':
			if (ctl_parse_mode(optarg, &a.mode))
				return ctl_usage(c, "bad --mode '%s'", optarg);
			mask |= STORE_ATTR_MODE;
			break;
		case 'p':
			flags |= STORE_PARENTS;
			break;
		case 'P':
			flags &= ~STORE_PARENTS;
			break;
		default:
			if ((rc = ctl_common_opt(c, opt, argv)) >= 0)
				return rc;
		}
	}
	if (optind == argc)
		return ctl_usage(c, "missing KEY");
	if (argc - optind > 2)
		return ctl_usage(c, "too many arguments (quote the VALUE)");
	err = ctl_key(argv[optind], &key);
	if (err == -EINVAL)
		return ctl_usage(c, "bad key '%s': empty, '.' or '..' component",
				 argv[optind]);
	if (err)
		return ctl_fail(c, NULL, err);
	if (strcmp(key, "/") == 0) {
		rc = ctl_usage(c, "the root is a directory, not a key");
		goto out;
	}
	if ((rc = ctl_open(c, 1)) != CTL_OK)
		goto out;
	if (optind + 1 < argc) {
		len = strlen(argv[optind + 1]);
		val = malloc(len + 1);
		if (!val) {
			rc = ctl_fail(c, key, -ENOMEM);
			goto out;
		}
		memcpy(val, argv[optind + 1], len + 1);
	} else {
		err = store_info(c->s, &info);
		if (!err)
			err = ctl_read_stdin(info.max_value, &val, &len);
		if (err) {
			rc = ctl_fail(c, key, err);
			goto out;
		}
	}
	/* store_put applies --mode and --ttl to an existing file too; a
	 * new file without --mode gets 0644 and the caller's uid/gid, and
	 * without --ttl its directory's default TTL. */
	err = store_put(c->s, NULL, key, val, len, &a, mask, flags);
	rc = err ? ctl_fail(c, key, err) : CTL_OK;
out:
	free(val);
	free(key);
	return rc;
}

/* ---- del ---- */

static int ctl_cmd_del(struct ctl *c, int argc, char **argv)
{
	static const struct option lopts[] = {
		CTL_COMMON_OPTS,
		{ "recursive", no_argument, NULL, 'r' },
		{ 0 }
	};
	unsigned flags = 0;
	char *key = NULL;
	int opt, rc, err;

	while ((opt = getopt_long(argc, argv, ":s:hr", lopts, NULL)) != -1) {
		if (opt == 'r')
			flags |= STORE_DEL_RECURSIVE;
		else if ((rc = ctl_common_opt(c, opt, argv)) >= 0)
			return rc;
	}
	if ((rc = ctl_key_operand(c, argc, argv, NULL, &key)) != CTL_OK)
		return rc;
	if (strcmp(key, "/") == 0) {
		rc = ctl_usage(c, "refusing to delete the root");
		goto out;
	}
	/* An existing store only: deleting from a store that is not there
	 * is "no such key", and must not create one. */
	if ((rc = ctl_open(c, 0)) != CTL_OK)
		goto out;
	err = store_del(c->s, NULL, key, flags);
	rc = err ? ctl_fail(c, key, err) : CTL_OK;
out:
	free(key);
	return rc;
}

/* ---- ls ---- */

struct ctl_ls {
	struct ctl *c;
	int longfmt, recursive;
	char sep;
	const char *dir; /* for -R: the directory being listed */
	char **subdirs;  /* for -R: children that are directories */
	size_t nsub, capsub;
};

static void ctl_ls_line(struct ctl_ls *ls, const char *name, size_t name_len,
			const struct store_stat *st)
{
	char mtime[40], expires[40];

	if (ls->longfmt) {
		ctl_format_time(mtime, sizeof(mtime), st->mtime_ns, 0);
		if (st->expires_ns)
			ctl_format_time(expires, sizeof(expires),
					st->expires_ns, 0);
		else
			snprintf(expires, sizeof(expires), "never");
		printf("%c %04o %" PRIu64 " %s %s ",
		       st->type == STORE_DIR ? 'd' :
		       st->type == STORE_SYMLINK ? 'l' : 'f',
		       st->mode & 07777, st->size, mtime, expires);
	}
	if (ls->recursive && strcmp(ls->dir, "/") != 0)
		fputs(ls->dir, stdout);
	if (ls->recursive)
		putchar('/');
	fwrite(name, 1, name_len, stdout);
	putchar(ls->sep);
}

static int ctl_ls_cb(void *arg, const char *name, size_t name_len,
		     const struct store_stat *st)
{
	struct ctl_ls *ls = arg;
	size_t dlen;
	char *p;

	ctl_ls_line(ls, name, name_len, st);
	if (ferror(stdout))
		return -EIO;
	if (!ls->recursive || st->type != STORE_DIR)
		return 0;
	if (ls->nsub == ls->capsub) {
		size_t cap = ls->capsub ? ls->capsub * 2 : 16;
		char **n = realloc(ls->subdirs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		ls->subdirs = n;
		ls->capsub = cap;
	}
	dlen = strcmp(ls->dir, "/") == 0 ? 0 : strlen(ls->dir);
	p = malloc(dlen + 1 + name_len + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p, ls->dir, dlen);
	p[dlen] = '/';
	memcpy(p + dlen + 1, name, name_len);
	p[dlen + 1 + name_len] = '\0';
	ls->subdirs[ls->nsub++] = p;
	return 0;
}

/* List `dir`; with -R, then each subdirectory, depth first, in order. */
static int ctl_ls_dir(struct ctl_ls *ls, struct store_txn *t, const char *dir)
{
	char **subs;
	size_t i, n;
	int err;

	ls->dir = dir;
	ls->subdirs = NULL;
	ls->nsub = ls->capsub = 0;
	err = store_list(ls->c->s, t, dir, NULL, ctl_ls_cb, ls);
	subs = ls->subdirs;
	n = ls->nsub;
	for (i = 0; i < n; i++) {
		if (!err)
			err = ctl_ls_dir(ls, t, subs[i]);
		free(subs[i]);
	}
	free(subs);
	return err;
}

static int ctl_cmd_ls(struct ctl *c, int argc, char **argv)
{
	static const struct option lopts[] = {
		CTL_COMMON_OPTS,
		{ "long", no_argument, NULL, 'l' },
		{ "recursive", no_argument, NULL, 'R' },
		{ "null", no_argument, NULL, '0' },
		{ 0 }
	};
	struct ctl_ls ls = { .c = c, .sep = '\n' };
	struct store_txn *t = NULL;
	struct store_stat st;
	char *key = NULL;
	int opt, rc, err;

	while ((opt = getopt_long(argc, argv, ":s:hlR0", lopts, NULL)) != -1) {
		if (opt == 'l')
			ls.longfmt = 1;
		else if (opt == 'R')
			ls.recursive = 1;
		else if (opt == '0')
			ls.sep = '\0';
		else if ((rc = ctl_common_opt(c, opt, argv)) >= 0)
			return rc;
	}
	if ((rc = ctl_key_operand(c, argc, argv, "/", &key)) != CTL_OK)
		return rc;
	if ((rc = ctl_open(c, 0)) != CTL_OK)
		goto out;
	err = store_txn_begin(c->s, 0, &t);
	if (!err)
		err = store_stat(c->s, t, key, &st);
	if (!err && st.type != STORE_DIR) {
		/* Like ls(1): a file lists as itself. */
		const char *base = strrchr(key, '/') + 1;
		int rec = ls.recursive;

		ls.recursive = 0;
		ctl_ls_line(&ls, base, strlen(base), &st);
		ls.recursive = rec;
	} else if (!err) {
		err = ctl_ls_dir(&ls, t, key);
	}
	if (t)
		store_txn_abort(&t);
	rc = err ? ctl_fail(c, key, err) : ctl_flush(c, CTL_OK);
out:
	free(key);
	return rc;
}

/* ---- stat ---- */

static int ctl_cmd_stat(struct ctl *c, int argc, char **argv)
{
	static const struct option lopts[] = { CTL_COMMON_OPTS, { 0 } };
	char mtime[48], ctime[48], expires[48];
	struct store_stat st;
	char *key = NULL;
	void *val = NULL;
	size_t len = 0;
	int opt, rc, err;

	while ((opt = getopt_long(argc, argv, ":s:h", lopts, NULL)) != -1)
		if ((rc = ctl_common_opt(c, opt, argv)) >= 0)
			return rc;
	if ((rc = ctl_key_operand(c, argc, argv, NULL, &key)) != CTL_OK)
		return rc;
	if ((rc = ctl_open(c, 0)) != CTL_OK)
		goto out;
	err = store_stat(c->s, NULL, key, &st);
	if (!err && st.type == STORE_SYMLINK)
		err = store_get(c->s, NULL, key, NULL, &val, &len);
	if (err) {
		rc = ctl_fail(c, key, err);
		goto out;
	}
	ctl_format_time(mtime, sizeof(mtime), st.mtime_ns, 9);
	ctl_format_time(ctime, sizeof(ctime), st.ctime_ns, 9);
	if (st.expires_ns)
		ctl_format_time(expires, sizeof(expires), st.expires_ns, 3);
	else
		snprintf(expires, sizeof(expires), "never");
	printf("path %s\n", key);
	printf("type %s\n", ctl_type_name(st.type));
	if (st.type == STORE_SYMLINK) {
		printf("target ");
		fwrite(val, 1, len, stdout);
		putchar('\n');
	}
	printf("mode %04o\n", st.mode & 07777);
	printf("uid %" PRIu32 "\ngid %" PRIu32 "\n", st.uid, st.gid);
	printf("size %" PRIu64 "\n", st.size);
	printf("mtime %s\nctime %s\n", mtime, ctime);
	if (st.ttl_ms)
		printf("ttl %" PRIu64 "ms\n", st.ttl_ms);
	else
		printf("ttl none\n");
	printf("expires %s\n", expires);
	printf("version %" PRIu64 ".%" PRIu64 " %016" PRIx64 "\n",
	       st.version.hlc >> 16, st.version.hlc & 0xffff,
	       st.version.node);
	printf("origin_seq %" PRIu64 "\n", st.origin_seq);
	rc = ctl_flush(c, CTL_OK);
out:
	free(val);
	free(key);
	return rc;
}

/* ---- watch ---- */

static volatile sig_atomic_t ctl_stop;

static void ctl_on_signal(int sig)
{
	(void)sig;
	ctl_stop = 1;
}

struct ctl_watch {
	struct ctl *c;
	const char *prefix; /* canonical; "/" watches everything */
	size_t prefix_len;
	uint64_t last;
};

static int ctl_watch_cb(void *arg, const struct store_change *ch)
{
	struct ctl_watch *w = arg;
	struct store_stat st;
	const char *op;
	int err;

	w->last = ch->seq;
	if (w->prefix_len > 1 &&
	    !(ch->path_len >= w->prefix_len &&
	      memcmp(ch->path, w->prefix, w->prefix_len) == 0 &&
	      (ch->path_len == w->prefix_len ||
	       ch->path[w->prefix_len] == '/')))
		return 0;
	err = store_rec_decode(ch->rec, ch->rec_len, &st, NULL, NULL, NULL);
	if (err) {
		op = "?";
		st.size = 0;
	} else {
		switch (st.type) {
		case STORE_FILE: op = "put"; break;
		case STORE_DIR: op = "mkdir"; break;
		case STORE_SYMLINK: op = "symlink"; break;
		case STORE_TOMBSTONE: op = "del"; st.size = 0; break;
		default: op = "?"; break;
		}
	}
	printf("%" PRIu64 " %s ", ch->seq, op);
	ctl_escape(stdout, ch->path, ch->path_len);
	printf(" %" PRIu64 " %016" PRIx64 "\n", st.size, ch->origin_node);
	if (fflush(stdout) != 0)
		return -EIO;
	return 0;
}

static int ctl_cmd_watch(struct ctl *c, int argc, char **argv)
{
	static const struct option lopts[] = {
		CTL_COMMON_OPTS,
		{ "from", required_argument, NULL, 'f' },
		{ 0 }
	};
	struct ctl_watch w = { .c = c };
	struct sigaction sa;
	int opt, rc, have_from = 0;
	char *key = NULL;
	ssize_t n;

	while ((opt = getopt_long(argc, argv, ":s:hf:", lopts, NULL)) != -1) {
		if (opt == 'f') {
			if (ctl_parse_u64(optarg, UINT64_MAX, &w.last))
				return ctl_usage(c, "bad --from '%s'", optarg);
			have_from = 1;
		} else if ((rc = ctl_common_opt(c, opt, argv)) >= 0) {
			return rc;
		}
	}
	if ((rc = ctl_key_operand(c, argc, argv, "/", &key)) != CTL_OK)
		return rc;
	if ((rc = ctl_open(c, 0)) != CTL_OK)
		goto out;
	w.prefix = key;
	w.prefix_len = strlen(key);

	/* No SA_RESTART: the signal must break store_wait with -EINTR. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ctl_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (!have_from)
		w.last = store_last_seq(c->s);
	rc = CTL_OK;
	while (!ctl_stop) {
		n = store_binlog_read(c->s, w.last, 1000, ctl_watch_cb, &w);
		if (n == -ERANGE) {
			uint64_t now = store_last_seq(c->s);

			ctl_msg("watch: warning: changes after %" PRIu64
				" were trimmed from the binlog; continuing from %"
				PRIu64, w.last, now);
			w.last = now;
			continue;
		}
		if (n < 0) {
			rc = ctl_fail(c, key, n);
			break;
		}
		if (n > 0)
			continue; /* there may be more */
		n = store_wait(c->s, w.last, 1000);
		if (n < 0 && n != -EINTR) {
			rc = ctl_fail(c, key, n);
			break;
		}
	}
out:
	free(key);
	return rc;
}

/* ---- digest, status ---- */

/* The start of a command that takes only the common options: parse
 * them, refuse arguments, open the store. -1 to go on, else the exit
 * code to return now (CTL_OK after --help). */
static int ctl_open_plain(struct ctl *c, int argc, char **argv)
{
	static const struct option lopts[] = { CTL_COMMON_OPTS, { 0 } };
	int opt, rc;

	while ((opt = getopt_long(argc, argv, ":s:h", lopts, NULL)) != -1)
		if ((rc = ctl_common_opt(c, opt, argv)) >= 0)
			return rc;
	if (optind != argc)
		return ctl_usage(c, "too many arguments");
	rc = ctl_open(c, 0);
	return rc == CTL_OK ? -1 : rc;
}

static int ctl_cmd_digest(struct ctl *c, int argc, char **argv)
{
	unsigned char d[STORE_DIGEST_LEN];
	int rc, err, i;

	if ((rc = ctl_open_plain(c, argc, argv)) >= 0)
		return rc;
	err = store_digest(c->s, d);
	if (err)
		return ctl_fail(c, NULL, err);
	for (i = 0; i < STORE_DIGEST_LEN; i++)
		printf("%02x", d[i]);
	putchar('\n');
	return ctl_flush(c, CTL_OK);
}

static int ctl_status_wm(void *arg, uint64_t node, uint64_t seq)
{
	(void)arg;
	printf("watermark %016" PRIx64 " %" PRIu64 "\n", node, seq);
	return 0;
}

static int ctl_status_peer(void *arg, uint64_t peer, uint64_t origin,
			   uint64_t seq)
{
	(void)arg;
	if (origin)
		printf("peer_ack %016" PRIx64 " %016" PRIx64 " %" PRIu64 "\n",
		       peer, origin, seq);
	else
		printf("store_peer %016" PRIx64 "\n", peer);
	return 0;
}

/* What the replicator says in STORE_DIR/repl.status (common/replstat.h
 * has the liveness rule): `replicator running|not running`, and while
 * it runs `replicator_pid`, with [locks] a line `locks: cluster NAME
 * voters N1 N2.. leader NAME role ROLE reachable 0|1`, its repl_* and
 * lock_* lines, a `peer NAME k=v...`
 * line per peer and a `refused_key KEY ...` line per refused key. A
 * file that cannot be read is said on stderr and shown as not running:
 * the store's own figures above stay right. */
static void ctl_status_repl(struct ctl *c)
{
	struct replstat rs;
	int err = replstat_read(c->store_dir, &rs);

	if (err)
		ctl_msg("status: %s/repl.status: %s", c->store_dir, strerror(-err));
	if (err || rs.state != REPLSTAT_RUNNING) {
		printf("replicator not running\n");
	} else {
		printf("replicator running\nreplicator_pid %d\n", (int)rs.pid);
		if (rs.lock_cluster[0])
			printf("locks: cluster %s voters %s leader %s role %s "
			       "reachable %d\n", rs.lock_cluster, rs.lock_voters,
			       rs.lock_leader[0] ? rs.lock_leader : "-",
			       rs.lock_role[0] ? rs.lock_role : "-",
			       rs.lock_reachable);
		printf("%s%s%s", rs.counters, rs.peers, rs.refused);
	}
	replstat_free(&rs);
}

/* The store's own consistency check: exit 0 and "ok", or exit 3 with
 * the first problem on stderr. */
static int ctl_cmd_check(struct ctl *c, int argc, char **argv)
{
	char msg[512];
	int rc, err;

	if ((rc = ctl_open_plain(c, argc, argv)) >= 0)
		return rc;
	err = store_check(c->s, msg, sizeof(msg));
	if (err == -EUCLEAN) {
		fprintf(stderr, "statefsctl: check: %s: %s\n", c->store_dir, msg);
		return CTL_ERR;
	}
	if (err)
		return ctl_fail(c, NULL, err);
	puts("ok");
	return ctl_flush(c, CTL_OK);
}

static int ctl_cmd_status(struct ctl *c, int argc, char **argv)
{
	struct store_info in;
	int rc, err;

	if ((rc = ctl_open_plain(c, argc, argv)) >= 0)
		return rc;
	err = store_info(c->s, &in);
	if (err)
		return ctl_fail(c, NULL, err);
	printf("store %s\n", c->store_dir);
	printf("format %u\n", in.format);
	printf("node_id %016" PRIx64 "\n", in.node_id);
	printf("node_name %.*s\n", (int)strnlen(in.node_name, sizeof(in.node_name)),
	       in.node_name);
	printf("records %" PRIu64 "\n", in.records);
	printf("tombstones %" PRIu64 "\n", in.tombstones);
	printf("value_bytes %" PRIu64 "\n", in.value_bytes);
	printf("max_value %" PRIu64 "\n", in.max_value);
	printf("map_size %" PRIu64 "\n", in.map_size);
	printf("map_used %" PRIu64 "\n", in.map_used);
	printf("map_used_pct %.1f\n",
	       in.map_size ? 100.0 * in.map_used / in.map_size : 0.0);
	printf("binlog_first %" PRIu64 "\n", in.binlog_first);
	printf("binlog_last %" PRIu64 "\n", in.binlog_last);
	printf("binlog_count %" PRIu64 "\n", in.binlog_count);
	printf("local_seq %" PRIu64 "\n", in.local_seq);
	printf("held %" PRIu64 "\n", in.held);
	printf("held_ahead_ms %" PRIu64 "\n", in.held_ahead_ms);
	printf("too_old %" PRIu64 "\n", in.too_old);
	printf("recovering %" PRIu64 "\n", in.recovering);
	err = store_watermarks(c->s, ctl_status_wm, NULL);
	if (!err)
		err = store_peers(c->s, ctl_status_peer, NULL);
	if (err)
		return ctl_fail(c, NULL, err);
	ctl_status_repl(c);
	return ctl_flush(c, CTL_OK);
}

/* ---- keygen ---- */

/* Create `path` (never over an existing file) with exactly `mode` and
 * `text` in it, synced. 0 or -errno; nothing is left behind on error. */
static int ctl_write_new(const char *path, mode_t mode, const char *text)
{
	size_t len = strlen(text), off = 0;
	int fd, err = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, mode) < 0) /* the umask may have taken bits off */
		err = -errno;
	while (!err && off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno != EINTR)
			err = -errno;
		else if (n > 0)
			off += n;
	}
	if (!err && fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (err)
		unlink(path);
	return err;
}

/* A CURVE key pair for the replicator: PREFIX.key (secret, 0600) and
 * PREFIX.pub (0644), 40 Z85 characters and a newline each; the public
 * key also on stdout. */
static int ctl_cmd_keygen(struct ctl *c, int argc, char **argv)
{
	static const struct option lopts[] = { CTL_COMMON_OPTS, { 0 } };
	char pub[CONFIG_KEY_LEN + 1], sec[CONFIG_KEY_LEN + 1];
	char keyf[PATH_MAX], pubf[PATH_MAX], line[CONFIG_KEY_LEN + 2];
	int opt, rc, err;

	while ((opt = getopt_long(argc, argv, ":s:h", lopts, NULL)) != -1)
		if ((rc = ctl_common_opt(c, opt, argv)) >= 0)
			return rc;
	if (optind == argc)
		return ctl_usage(c, "missing PREFIX");
	if (argc - optind > 1)
		return ctl_usage(c, "too many arguments");
	if (!*argv[optind])
		return ctl_usage(c, "empty PREFIX");
	if ((size_t)snprintf(keyf, sizeof(keyf), "%s.key", argv[optind]) >= sizeof(keyf) ||
	    (size_t)snprintf(pubf, sizeof(pubf), "%s.pub", argv[optind]) >= sizeof(pubf))
		return ctl_usage(c, "PREFIX too long");
	if (zmq_curve_keypair(pub, sec) != 0) {
		ctl_msg("keygen: %s", zmq_strerror(errno));
		return CTL_ERR;
	}
	snprintf(line, sizeof(line), "%s\n", sec);
	err = ctl_write_new(keyf, 0600, line);
	explicit_bzero(sec, sizeof(sec));
	explicit_bzero(line, sizeof(line));
	if (err) {
		ctl_msg("keygen %s: %s", keyf, strerror(-err));
		return CTL_ERR;
	}
	snprintf(line, sizeof(line), "%s\n", pub);
	err = ctl_write_new(pubf, 0644, line);
	if (err) {
		unlink(keyf);
		ctl_msg("keygen %s: %s", pubf, strerror(-err));
		return CTL_ERR;
	}
	printf("%s\n", pub);
	return ctl_flush(c, CTL_OK);
}

/* ---- the command table and main ---- */

static const struct ctl_cmd ctl_cmds[] = {
	{ "get", "Write the value of KEY to stdout, exactly, with no newline added",
	  "get KEY", ctl_cmd_get },
	{ "put", "Store VALUE (or all of stdin) as the value of KEY.\n"
	  "  --ttl DURATION   time to live: N[ms|s|m|h|d], no unit: seconds, 0: none\n"
	  "  --mode MODE      octal permission bits (default 0644 for a new key)\n"
	  "  -p, --parents    create missing parent directories (the default)\n"
	  "  --no-parents     fail with exit 1 when the parent is missing",
	  "put [--ttl DURATION] [--mode MODE] [-p|--no-parents] KEY [VALUE]",
	  ctl_cmd_put },
	{ "del", "Delete KEY (a file, symlink or empty directory).\n"
	  "  -r, --recursive  delete a directory and everything under it",
	  "del [-r] KEY", ctl_cmd_del },
	{ "ls", "List the direct children of PREFIX (default /), one name per line.\n"
	  "  -l, --long       TYPE MODE SIZE MTIME EXPIRES NAME\n"
	  "  -R, --recursive  every key below PREFIX, as full paths\n"
	  "  -0, --null       end each entry with NUL instead of newline",
	  "ls [-l] [-R] [-0] [PREFIX]", ctl_cmd_ls },
	{ "stat", "Print the record of KEY as 'name value' lines",
	  "stat KEY", ctl_cmd_stat },
	{ "import", "Load records from FILE (default stdin): a dump, or CSV rows.\n"
	  "  --csv             input is CSV (RFC 4180); each row becomes a key\n"
	  "  --key-column N    with --csv: the 1-based column naming the key (default 1)\n"
	  "  --prefix P        with --csv: directory for the keys (default /)\n"
	  "  --header          with --csv: skip the first row\n"
	  "  --ttl DURATION    with --csv: TTL of every imported key\n"
	  "  --batch N         records per transaction (default 1000)\n"
	  "  -v, --verbose     print the summary line also when stderr is not a terminal",
	  "import [--csv [--key-column N] [--prefix P] [--header] [--ttl D]] [--batch N] [-v] [FILE]",
	  ctl_cmd_import },
	{ "dump", "Write every record under PREFIX (default /) in the dump format",
	  "dump [PREFIX]", ctl_cmd_dump },
	{ "watch", "Print one line per committed change under PREFIX until interrupted:\n"
	  "  SEQ OP PATH SIZE ORIGIN_NODE (OP: put, mkdir, symlink, del)\n"
	  "  --from SEQ        start after binlog sequence SEQ (default: the current end)",
	  "watch [--from SEQ] [PREFIX]", ctl_cmd_watch },
	{ "digest", "Print the BLAKE2b-256 digest of the whole visible state in hex",
	  "digest", ctl_cmd_digest },
	{ "status", "Print node, record, map, binlog and peer figures as 'name value' lines",
	  "status", ctl_cmd_status },
	{ "check", "Check the store's consistency (every record, key, parent, count\n"
	  "  and binlog entry); print ok, or the first problem and exit 3",
	  "check", ctl_cmd_check },
	{ "keygen", "Make a CURVE key pair for the replicator; print the public key.\n"
	  "  PREFIX.key       the secret key, mode 0600: [node] key = PREFIX.key\n"
	  "  PREFIX.pub       the public key, mode 0644: the other nodes'\n"
	  "                   [peer NAME] public_key (or public_key_file)\n"
	  "  Each holds 40 Z85 characters and a newline. An existing file is never\n"
	  "  overwritten (exit 3). No store is needed.",
	  "keygen PREFIX", ctl_cmd_keygen },
};

const struct ctl_cmd *ctl_find_cmd(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++)
		if (strcmp(ctl_cmds[i].name, name) == 0)
			return &ctl_cmds[i];
	return NULL;
}

static void ctl_main_help(void)
{
	size_t i;

	printf("usage: statefsctl [-s STORE_DIR | --config FILE] [-v] COMMAND [ARGS]\n"
	       "       statefsctl COMMAND --help\n\n"
	       "The store directory comes from -s, else the [store] dir of the\n"
	       "--config file, else $STATEFS_STORE.\n"
	       "Exit codes: 0 ok, 1 no such key, 2 usage, 3 store or system error.\n\n"
	       "Commands:\n");
	for (i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++)
		printf("  %s\n", ctl_cmds[i].usage);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	struct ctl c = { .cmd = "statefsctl" };
	const struct ctl_cmd *cmd;
	const char *store_opt = NULL, *config = NULL;
	struct config *conf = NULL;
	int opt, rc;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:s:vhV", lopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			store_opt = optarg;
			break;
		case 'C':
			config = optarg;
			break;
		case 'v':
			c.verbose = 1;
			break;
		case 'h':
			ctl_main_help();
			return CTL_OK;
		case 'V':
			printf("statefsctl %s\n", CTL_VERSION);
			return CTL_OK;
		case ':':
			ctl_msg("option '%s' needs an argument (try 'statefsctl --help')",
				argv[optind - 1]);
			return CTL_USAGE;
		default:
			ctl_msg("unknown option '%s' (try 'statefsctl --help')",
				argv[optind - 1]);
			return CTL_USAGE;
		}
	}
	log_init("statefsctl", c.verbose ? LOG_NOTICE : LOG_FATAL);
	c.store_dir = store_opt ? store_opt : getenv("STATEFS_STORE");
	if (optind == argc) {
		ctl_msg("missing COMMAND (try 'statefsctl --help')");
		return CTL_USAGE;
	}
	cmd = ctl_find_cmd(argv[optind]);
	if (!cmd) {
		ctl_msg("unknown command '%s' (try 'statefsctl --help')",
			argv[optind]);
		return CTL_USAGE;
	}
	if (config) {
		char err[PATH_MAX + 512];

		conf = malloc(sizeof(*conf));
		if (!conf) {
			ctl_msg("%s", strerror(ENOMEM));
			return CTL_ERR;
		}
		config_init(conf);
		if (config_load(conf, config, err, sizeof(err)) != 0) {
			ctl_msg("%s", err);
			free(conf);
			return CTL_USAGE;
		}
		if (!store_opt && conf->store_dir[0])
			c.store_dir = conf->store_dir;
		c.opts = &conf->so;
	}
	c.cmd = cmd->name;
	argc -= optind;
	argv += optind;
	optind = 0; /* full re-initialisation of getopt for the command */
	rc = cmd->run(&c, argc, argv);
	store_close(&c.s);
	free(conf);
	return rc;
}
