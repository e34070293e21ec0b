/*
 * transfer.c — statefsctl dump and import: moving many records at once.
 *
 * The dump format is line-oriented text, binary safe, so that
 * `dump | import` into an empty store gives back the same digest:
 *
 *   statefs-dump 1                          header, always the first line
 *   TYPE MODE UID GID TTL_MS PATH [VALUE]   one record per line
 *
 * TYPE is d (directory), f (file) or l (symlink); MODE four octal digits
 * of permission bits; TTL_MS the file's TTL or the directory's default
 * TTL in milliseconds (0: none). PATH and VALUE (the file's bytes, the
 * symlink's target; absent for d) are percent-escaped by ctl_escape():
 * bytes <= 0x20, '%' and 0x7f become %XX, every other byte is itself.
 * So a record is exactly one line, its fields split at single spaces,
 * and an empty value is an empty last field. Records come in pre-order
 * (a directory before what is in it), children in byte order of name.
 * Not carried: mtime/ctime (an import is a new write), the absolute
 * TTL deadline (it restarts at import: now + TTL), versions, xattrs.
 *
 * CSV import reads RFC 4180 rows with a small scanner of our own rather
 * than libcsv: each row must be stored exactly as it appeared, and
 * libcsv hands out unquoted fields, not the row's raw bytes. The
 * scanner splits rows at newlines outside quotes, so quoted fields may
 * hold commas, doubled quotes and newlines; a row's value is its raw
 * bytes without the line end ("\n" or "\r\n"). The key is PREFIX/ + the
 * unquoted key column with every '/' turned into '_' (a name cannot hold
 * '/'). Malformed quoting is an error naming the line, never guessed at.
 *
 * Invariants:
 *  (1) Import commits one transaction per batch (--batch records, or
 *      8 MiB of values, whichever comes first): a batch lands whole or
 *      not at all. On bad input the failing batch is rolled back, the
 *      batches before it stay, and the message says how many records
 *      were committed.
 *  (2) Dump reads in one read transaction: the output is one consistent
 *      snapshot even while writers run.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl/ctl_int.h"

#define DUMP_HEADER "statefs-dump 1"
#define IMPORT_BATCH_BYTES (8u << 20)

/* ---- dump ---- */

/* What a listing keeps of a child until it is written out. */
struct dump_ent {
	char *path;
	enum store_type type;
	uint32_t mode, uid, gid;
	uint64_t ttl_ms;
};

struct dump_dir {
	const char *dir;
	struct dump_ent *ents;
	size_t n, cap;
};

static void dump_record(const struct dump_ent *e, const void *val,
			size_t len)
{
	char type = e->type == STORE_DIR ? 'd' :
		    e->type == STORE_SYMLINK ? 'l' : 'f';

	printf("%c %04o %" PRIu32 " %" PRIu32 " %" PRIu64 " ", type,
	       e->mode & 07777, e->uid, e->gid, e->ttl_ms);
	ctl_escape(stdout, e->path, strlen(e->path));
	if (e->type != STORE_DIR) {
		putchar(' ');
		ctl_escape(stdout, val, len);
	}
	putchar('\n');
}

static int dump_list_cb(void *arg, const char *name, size_t name_len,
			const struct store_stat *st)
{
	struct dump_dir *d = arg;
	size_t dlen = strcmp(d->dir, "/") == 0 ? 0 : strlen(d->dir);
	struct dump_ent *e;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct dump_ent *n = realloc(d->ents, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		d->ents = n;
		d->cap = cap;
	}
	e = &d->ents[d->n];
	e->path = malloc(dlen + 1 + name_len + 1);
	if (!e->path)
		return -ENOMEM;
	memcpy(e->path, d->dir, dlen);
	e->path[dlen] = '/';
	memcpy(e->path + dlen + 1, name, name_len);
	e->path[dlen + 1 + name_len] = '\0';
	e->type = st->type;
	e->mode = st->mode;
	e->uid = st->uid;
	e->gid = st->gid;
	e->ttl_ms = st->ttl_ms;
	d->n++;
	return 0;
}

static int dump_entry(struct store *s, struct store_txn *t,
		      const struct dump_ent *e);

/* Write the records below directory `dir` (not `dir` itself). */
static int dump_tree(struct store *s, struct store_txn *t, const char *dir)
{
	struct dump_dir d = { .dir = dir };
	size_t i;
	int err;

	err = store_list(s, t, dir, NULL, dump_list_cb, &d);
	for (i = 0; i < d.n; i++) {
		if (!err)
			err = dump_entry(s, t, &d.ents[i]);
		free(d.ents[i].path);
	}
	free(d.ents);
	return err;
}

static int dump_entry(struct store *s, struct store_txn *t,
		      const struct dump_ent *e)
{
	void *val = NULL;
	size_t len = 0;
	int err;

	if (e->type == STORE_DIR) {
		dump_record(e, NULL, 0);
		return ferror(stdout) ? -EIO : dump_tree(s, t, e->path);
	}
	err = store_get(s, t, e->path, NULL, &val, &len);
	if (err == -ENOENT)
		return 0; /* expired between listing and reading */
	if (err)
		return err;
	dump_record(e, val, len);
	free(val);
	return ferror(stdout) ? -EIO : 0;
}

int ctl_cmd_dump(struct ctl *c, int argc, char **argv)
{
	static const struct option lopts[] = { CTL_COMMON_OPTS, { 0 } };
	struct store_txn *t = NULL;
	struct store_stat st;
	struct dump_ent e;
	char *key = NULL;
	int opt, rc, err;

	while ((opt = getopt_long(argc, argv, ":s:h", lopts, NULL)) != -1)
		if ((rc = ctl_common_opt(c, opt, argv)) >= 0)
			return rc;
	if (argc - optind > 1)
		return ctl_usage(c, "too many arguments");
	err = ctl_key(optind < argc ? argv[optind] : "/", &key);
	if (err == -EINVAL)
		return ctl_usage(c, "bad prefix '%s': empty, '.' or '..' component",
				 argv[optind]);
	if (err)
		return ctl_fail(c, NULL, err);
	if ((rc = ctl_open(c, 0)) != CTL_OK)
		goto out;
	err = store_txn_begin(c->s, 0, &t);
	if (!err)
		err = store_stat(c->s, t, key, &st);
	if (!err) {
		printf("%s\n", DUMP_HEADER);
		if (strcmp(key, "/") == 0) {
			err = dump_tree(c->s, t, key);
		} else {
			e.path = key;
			e.type = st.type;
			e.mode = st.mode;
			e.uid = st.uid;
			e.gid = st.gid;
			e.ttl_ms = st.ttl_ms;
			err = dump_entry(c->s, t, &e);
		}
	}
	if (t)
		store_txn_abort(&t);
	if (err == -EIO && ferror(stdout)) {
		ctl_msg("dump: write error");
		rc = CTL_ERR;
	} else {
		rc = err ? ctl_fail(c, key, err) : CTL_OK;
	}
	if (rc == CTL_OK && fflush(stdout) != 0) {
		ctl_msg("dump: write error: %s", strerror(errno));
		rc = CTL_ERR;
	}
out:
	free(key);
	return rc;
}

/* ---- import: batching shared by both formats ---- */

struct imp {
	struct ctl *c;
	struct store_txn *t;
	uint64_t line;       /* current input line (1-based) */
	uint64_t committed;  /* records in committed batches */
	uint64_t pending;    /* records in the open batch */
	uint64_t batch_max;
	size_t batch_bytes;
	int progress;        /* stderr is a terminal */
	int shown;           /* a progress line is on the terminal */
	double start, last_progress;
	char err_text[256];  /* why the current record is refused */
};

static int imp_commit(struct imp *im)
{
	int err;

	if (!im->t)
		return 0;
	err = store_txn_commit(&im->t);
	if (err)
		return err;
	im->committed += im->pending;
	im->pending = 0;
	im->batch_bytes = 0;
	if (im->progress) {
		double now = ctl_seconds();

		if (now - im->last_progress >= 0.2) {
			fprintf(stderr, "\rimported %" PRIu64 " records",
				im->committed);
			im->last_progress = now;
			im->shown = 1;
		}
	}
	return 0;
}

/* Make sure a batch is open; commit the current one if it is full. */
static int imp_txn(struct imp *im)
{
	int err;

	if (im->t && (im->pending >= im->batch_max ||
		      im->batch_bytes >= IMPORT_BATCH_BYTES)) {
		err = imp_commit(im);
		if (err)
			return err;
	}
	if (!im->t)
		return store_txn_begin(im->c->s, 1, &im->t);
	return 0;
}

static void imp_bad(struct imp *im, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void imp_bad(struct imp *im, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(im->err_text, sizeof(im->err_text), fmt, ap);
	va_end(ap);
}

/* Finish: on error roll back the open batch and print one line naming
 * the input line; else commit the last batch and print the summary. */
static int imp_finish(struct imp *im, const char *src, int err)
{
	double secs;

	if (!err)
		err = imp_commit(im);
	if (im->t)
		store_txn_abort(&im->t);
	if (im->shown)
		fputc('\n', stderr); /* keep the last progress line */
	if (err) {
		const char *why = im->err_text[0] ? im->err_text :
				  store_strerror(err);

		ctl_msg("import %s: line %" PRIu64 ": %s (%" PRIu64
			" records committed before it)",
			src, im->line, why, im->committed);
		return CTL_ERR;
	}
	secs = ctl_seconds() - im->start;
	if (im->progress || im->c->verbose)
		fprintf(stderr, "imported %" PRIu64 " records in %.2f s\n",
			im->committed, secs);
	return CTL_OK;
}

/* Make the record's attributes what the input says, whatever existed
 * before (store_put and store_mknod apply mode/owner only on create). */
static int imp_fix_attrs(struct imp *im, const char *path,
			 const struct store_attr *a, int has_ttl)
{
	struct store *s = im->c->s;
	struct store_stat st;
	unsigned mask = 0;
	int err;

	err = store_stat(s, im->t, path, &st);
	if (err)
		return err;
	if ((st.mode & 07777) != a->mode)
		mask |= STORE_ATTR_MODE;
	if (st.uid != a->uid)
		mask |= STORE_ATTR_UID;
	if (st.gid != a->gid)
		mask |= STORE_ATTR_GID;
	if (mask)
		err = store_setattr(s, im->t, path, a, mask);
	if (!err && has_ttl && st.ttl_ms != a->ttl_ms)
		err = store_setattr(s, im->t, path, a, STORE_ATTR_TTL);
	return err;
}

/* ---- import: the dump format ---- */

/* Split `line` (len bytes, no newline) at single spaces into at most
 * `max` fields. Returns the field count. */
static size_t imp_split(char *line, size_t len, char **f, size_t *flen,
			size_t max)
{
	size_t n = 0, start = 0, i;

	for (i = 0; i <= len && n < max; i++) {
		if (i == len || line[i] == ' ') {
			f[n] = line + start;
			flen[n] = i - start;
			n++;
			start = i + 1;
		}
	}
	if (i <= len) /* more fields than max */
		return max + 1;
	return n;
}

static int imp_dump_record(struct imp *im, char *line, size_t len)
{
	struct store *s = im->c->s;
	struct store_attr a = { 0 };
	const unsigned amask = STORE_ATTR_MODE | STORE_ATTR_UID |
			       STORE_ATTR_GID | STORE_ATTR_TTL;
	uint64_t mode, uid, gid;
	char *f[8], *path, *val;
	ssize_t plen, vlen = 0;
	struct store_stat st;
	size_t flen[8], n;
	char type;
	int err;

	n = imp_split(line, len, f, flen, 7);
	if (n < 6 || n > 7 || flen[0] != 1) {
		imp_bad(im, "not a dump record (want TYPE MODE UID GID TTL_MS PATH [VALUE])");
		return -EINVAL;
	}
	type = f[0][0];
	if ((type == 'd') != (n == 6) || (type != 'd' && type != 'f' &&
					   type != 'l')) {
		imp_bad(im, "bad record type or field count");
		return -EINVAL;
	}
	for (size_t i = 1; i < 6; i++)
		f[i][flen[i]] = '\0'; /* the separators become terminators */
	mode = strtoull(f[1], &path, 8);
	if (*path || flen[1] == 0 || mode > 07777 ||
	    ctl_parse_u64(f[2], UINT32_MAX, &uid) ||
	    ctl_parse_u64(f[3], UINT32_MAX, &gid) ||
	    ctl_parse_u64(f[4], UINT64_MAX, &a.ttl_ms)) {
		imp_bad(im, "bad MODE, UID, GID or TTL_MS");
		return -EINVAL;
	}
	a.mode = mode;
	a.uid = uid;
	a.gid = gid;
	plen = ctl_unescape(f[5], flen[5]);
	if (plen >= 0 && n == 7)
		vlen = ctl_unescape(f[6], flen[6]);
	if (plen < 0 || vlen < 0) {
		imp_bad(im, "bad escape in PATH or VALUE");
		return -EINVAL;
	}
	path = f[5];
	path[plen] = '\0';
	val = n == 7 ? f[6] : NULL;
	if (memchr(path, '\0', plen) || (type == 'l' && memchr(val, '\0', vlen))) {
		imp_bad(im, "NUL byte in a path or symlink target");
		return -EINVAL;
	}
	if (val)
		val[vlen] = '\0';
	err = store_path_check(s, path);
	if (err == -EINVAL)
		imp_bad(im, "bad path '%s'", path);
	if (err)
		return err;
	if (strcmp(path, "/") == 0) {
		imp_bad(im, "the root is not a record");
		return -EINVAL;
	}
	err = imp_txn(im);
	if (err)
		return err;

	switch (type) {
	case 'd':
		err = store_mknod(s, im->t, path, STORE_DIR, NULL, &a, amask,
				  STORE_PARENTS);
		break;
	case 'f':
		err = store_put(s, im->t, path, val, vlen, &a, amask,
				STORE_CREATE | STORE_PARENTS);
		im->batch_bytes += vlen;
		break;
	default: /* 'l' */
		err = store_stat(s, im->t, path, &st);
		if (!err && st.type != STORE_SYMLINK) {
			imp_bad(im, "'%s' exists and is not a symlink", path);
			err = -EEXIST;
		} else if (!err) {
			void *old = NULL;
			size_t olen;

			/* Same target: keep it; else replace it. */
			err = store_get(s, im->t, path, NULL, &old, &olen);
			if (!err && (olen != (size_t)vlen ||
				     memcmp(old, val, vlen) != 0)) {
				err = store_del(s, im->t, path, STORE_DEL_FILE);
				if (!err)
					err = -ENOENT;
			}
			free(old);
		}
		if (err == -ENOENT)
			err = store_mknod(s, im->t, path, STORE_SYMLINK, val,
					  &a, amask, STORE_PARENTS);
		break;
	}
	if (!err)
		err = imp_fix_attrs(im, path, &a, type != 'l');
	if (!err)
		im->pending++;
	return err;
}

static int imp_dump(struct imp *im, FILE *in)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int err = 0;

	while ((n = getline(&line, &cap, in)) > 0) {
		im->line++;
		if (line[n - 1] == '\n')
			n--;
		if (im->line == 1) {
			if ((size_t)n != strlen(DUMP_HEADER) ||
			    memcmp(line, DUMP_HEADER, n) != 0) {
				imp_bad(im, "not a statefs dump (want '%s'; CSV needs --csv)",
					DUMP_HEADER);
				err = -EINVAL;
				break;
			}
			continue;
		}
		err = imp_dump_record(im, line, n);
		if (err)
			break;
	}
	if (!err && ferror(in))
		err = -EIO;
	free(line);
	return err;
}

/* ---- import: CSV ---- */

struct csv {
	FILE *in;
	char *row;
	size_t len, cap;
	uint64_t line; /* physical lines consumed so far */
};

static int csv_push(struct csv *cv, int ch)
{
	if (cv->len == cv->cap) {
		size_t cap = cv->cap ? cv->cap * 2 : 4096;
		char *n = realloc(cv->row, cap);

		if (!n)
			return -ENOMEM;
		cv->row = n;
		cv->cap = cap;
	}
	cv->row[cv->len++] = ch;
	return 0;
}

/* Read one row into cv->row (raw bytes, line end stripped). Returns 1
 * for a row, 0 at the end, -EINVAL for malformed quoting (text in
 * im->err_text), or another negative errno. */
static int csv_next(struct csv *cv, struct imp *im)
{
	enum { FIELD_START, UNQUOTED, QUOTED, QUOTE_IN_QUOTED } state =
		FIELD_START;
	uint64_t start_line = cv->line + 1;
	int ch, err;

	cv->len = 0;
	im->line = start_line;
	while ((ch = getc_unlocked(cv->in)) != EOF) {
		if (ch == '\n') {
			cv->line++;
			if (state != QUOTED)
				goto row_end;
		}
		switch (state) {
		case FIELD_START:
			state = ch == '"' ? QUOTED : ch == ',' ? FIELD_START :
				UNQUOTED;
			break;
		case UNQUOTED:
			if (ch == ',')
				state = FIELD_START;
			else if (ch == '"') {
				imp_bad(im, "'\"' inside an unquoted field");
				return -EINVAL;
			}
			break;
		case QUOTED:
			if (ch == '"')
				state = QUOTE_IN_QUOTED;
			break;
		case QUOTE_IN_QUOTED:
			if (ch == '"') {
				state = QUOTED; /* a doubled quote */
			} else if (ch == ',') {
				state = FIELD_START;
			} else if (ch != '\r') {
				imp_bad(im, "text after a closing quote");
				return -EINVAL;
			}
			break;
		}
		err = csv_push(cv, ch);
		if (err)
			return err;
	}
	if (ferror(cv->in))
		return -EIO;
	if (state == QUOTED) {
		imp_bad(im, "quoted field not closed before the end of input");
		return -EINVAL;
	}
	if (cv->len == 0)
		return 0;
row_end:
	/* A '\r' directly before the line end belongs to the line end; a
	 * lone '\r' anywhere else in an unquoted field stays data. */
	if (cv->len && cv->row[cv->len - 1] == '\r')
		cv->len--;
	if (state == QUOTE_IN_QUOTED && cv->len && cv->row[cv->len - 1] != '"') {
		imp_bad(im, "text after a closing quote");
		return -EINVAL;
	}
	return 1;
}

/* Find field `col` (1-based) of a well-formed row and write its
 * unquoted bytes to out (room for the row's length). Returns the length
 * or -1 if the row has fewer columns. */
static ssize_t csv_field(const char *row, size_t len, unsigned col, char *out)
{
	size_t i = 0, o = 0;
	unsigned c = 1;

	while (c < col) {
		int quoted = 0;

		if (i >= len)
			return -1;
		while (i < len && (quoted || row[i] != ',')) {
			if (row[i] == '"')
				quoted = !quoted;
			i++;
		}
		if (i >= len)
			return -1;
		i++; /* the comma */
		c++;
	}
	if (i < len && row[i] == '"') {
		for (i++; i < len; i++) {
			if (row[i] == '"') {
				if (i + 1 < len && row[i + 1] == '"')
					i++;
				else
					break;
			}
			out[o++] = row[i];
		}
	} else {
		while (i < len && row[i] != ',')
			out[o++] = row[i++];
	}
	return o;
}

struct imp_csv_opts {
	unsigned key_column;
	const char *prefix; /* canonical */
	int header;
	int has_ttl;
	uint64_t ttl_ms;
};

static int imp_csv(struct imp *im, FILE *in, const struct imp_csv_opts *o)
{
	struct store_attr a = { .ttl_ms = o->ttl_ms };
	unsigned mask = o->has_ttl ? STORE_ATTR_TTL : 0;
	size_t plen = strcmp(o->prefix, "/") == 0 ? 0 : strlen(o->prefix);
	struct csv cv = { .in = in };
	char *key = NULL, *nk;
	size_t kcap = 0, i;
	ssize_t klen;
	int r, err = 0, first = 1;

	while ((r = csv_next(&cv, im)) > 0) {
		if (first && o->header) {
			first = 0;
			continue;
		}
		first = 0;
		if (cv.len == 0)
			continue; /* a blank line */
		if (kcap < plen + cv.len + 2) {
			kcap = plen + cv.len + 2;
			nk = realloc(key, kcap);
			if (!nk) {
				err = -ENOMEM;
				break;
			}
			key = nk;
		}
		memcpy(key, o->prefix, plen);
		key[plen] = '/';
		klen = csv_field(cv.row, cv.len, o->key_column, key + plen + 1);
		if (klen < 0) {
			imp_bad(im, "no column %u", o->key_column);
			err = -EINVAL;
			break;
		}
		if (klen == 0 || (klen == 1 && key[plen + 1] == '.') ||
		    (klen == 2 && key[plen + 1] == '.' && key[plen + 2] == '.') ||
		    memchr(key + plen + 1, '\0', klen)) {
			imp_bad(im, "key column %u is empty, '.', '..' or holds a NUL byte",
				o->key_column);
			err = -EINVAL;
			break;
		}
		for (i = plen + 1; i < plen + 1 + (size_t)klen; i++)
			if (key[i] == '/')
				key[i] = '_';
		key[plen + 1 + klen] = '\0';
		err = imp_txn(im);
		if (!err)
			err = store_put(im->c->s, im->t, key, cv.row, cv.len, &a,
					mask, STORE_CREATE | STORE_PARENTS);
		if (err)
			break;
		im->pending++;
		im->batch_bytes += cv.len;
	}
	if (r < 0)
		err = r;
	free(key);
	free(cv.row);
	return err;
}

int ctl_cmd_import(struct ctl *c, int argc, char **argv)
{
	static const struct option lopts[] = {
		CTL_COMMON_OPTS,
		{ "csv", no_argument, NULL, 'c' },
		{ "key-column", required_argument, NULL, 'k' },
		{ "prefix", required_argument, NULL, 'P' },
		{ "header", no_argument, NULL, 'H' },
		{ "ttl", required_argument, NULL, 't' },
		{ "batch", required_argument, NULL, 'b' },
		{ "verbose", no_argument, NULL, 'v' },
		{ 0 }
	};
	struct imp_csv_opts co = { .key_column = 1 };
	struct imp im = { .c = c, .batch_max = 1000 };
	int opt, rc, err, csv = 0, csv_only = 0;
	const char *src = "-", *prefix = "/";
	char *pfx = NULL;
	uint64_t v;
	FILE *in;

	while ((opt = getopt_long(argc, argv, ":s:hv", lopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			csv = 1;
			break;
		case 'k':
			if (ctl_parse_u64(optarg, 1000000, &v) || v == 0)
				return ctl_usage(c, "bad --key-column '%s' (columns count from 1)",
						 optarg);
			co.key_column = v;
			csv_only = 1;
			break;
		case 'P':
			prefix = optarg;
			csv_only = 1;
			break;
		case 'H':
			co.header = 1;
			csv_only = 1;
			break;
		case 't':
			if (store_parse_ttl(optarg, strlen(optarg), &co.ttl_ms))
				return ctl_usage(c, "bad --ttl '%s' (N[ms|s|m|h|d], "
						 "at most 3660d)", optarg);
			co.has_ttl = 1;
			csv_only = 1;
			break;
		case 'b':
			if (ctl_parse_u64(optarg, 10000000, &im.batch_max) ||
			    im.batch_max == 0)
				return ctl_usage(c, "bad --batch '%s'", optarg);
			break;
		case 'v':
			c->verbose = 1;
			break;
		default:
			if ((rc = ctl_common_opt(c, opt, argv)) >= 0)
				return rc;
		}
	}
	if (csv_only && !csv)
		return ctl_usage(c, "--key-column, --prefix, --header and --ttl need --csv");
	if (argc - optind > 1)
		return ctl_usage(c, "too many arguments");
	if (optind < argc)
		src = argv[optind];
	err = ctl_key(prefix, &pfx);
	if (err == -EINVAL)
		return ctl_usage(c, "bad --prefix '%s'", prefix);
	if (err)
		return ctl_fail(c, NULL, err);
	co.prefix = pfx;

	if (strcmp(src, "-") == 0) {
		in = stdin;
	} else {
		in = fopen(src, "r");
		if (!in) {
			ctl_msg("import %s: %s", src, strerror(errno));
			free(pfx);
			return CTL_ERR;
		}
	}
	rc = ctl_open(c, 1);
	if (rc == CTL_OK) {
		im.progress = isatty(STDERR_FILENO);
		im.start = im.last_progress = ctl_seconds();
		err = csv ? imp_csv(&im, in, &co) : imp_dump(&im, in);
		rc = imp_finish(&im, strcmp(src, "-") == 0 ? "stdin" : src, err);
	}
	if (in != stdin)
		fclose(in);
	free(pfx);
	return rc;
}
