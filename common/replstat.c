/*
 * replstat.c — the reader of STORE_DIR/repl.status (replstat.h).
 *
 * The file is small (a few dozen lines) and rewritten whole by a rename,
 * so one open sees one version of it: read it line by line, keep the
 * lines the readers show, and decide liveness from `pid` and
 * `updated_ms`. Its bytes are trusted no further than that: every kept
 * line is printable ASCII and has the prefix its list expects.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/replstat.h"

struct sbuf {
	char *p;
	size_t len, cap;
};

static int sbuf_line(struct sbuf *b, const char *line, size_t n)
{
	if (b->len + n + 2 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 512;
		char *p;

		while (cap < b->len + n + 2)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, line, n);
	b->len += n;
	b->p[b->len++] = '\n';
	b->p[b->len] = '\0';
	return 0;
}

/* "" for a list with no line, so that callers print without checks. */
static char *sbuf_take(struct sbuf *b)
{
	char *p = b->p ? b->p : strdup("");

	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

static int printable(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

static int64_t now_realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int replstat_alive(pid_t pid, int64_t updated_ms, int64_t now_ms)
{
	int64_t d = now_ms - updated_ms;

	if (pid <= 0 || updated_ms <= 0)
		return 0;
	if (d > REPLSTAT_FRESH_MS || d < -REPLSTAT_FRESH_MS)
		return 0;
	return kill(pid, 0) == 0 || errno == EPERM;
}

void replstat_free(struct replstat *rs)
{
	free(rs->counters);
	free(rs->peers);
	free(rs->refused);
	rs->counters = rs->peers = rs->refused = NULL;
}

/* A whole decimal number, nothing after it. */
static int parse_i64(const char *s, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno || end == s || *end ? -EINVAL : 0;
}

/* The lock service's summary lines (repl/status.c). */
static void lock_line(struct replstat *rs, const char *line)
{
	long long v;

	if (strncmp(line, "lock_cluster ", 13) == 0)
		snprintf(rs->lock_cluster, sizeof(rs->lock_cluster), "%s",
			 line + 13);
	else if (strncmp(line, "lock_role ", 10) == 0)
		snprintf(rs->lock_role, sizeof(rs->lock_role), "%s", line + 10);
	else if (strncmp(line, "lock_leader ", 12) == 0)
		snprintf(rs->lock_leader, sizeof(rs->lock_leader), "%s",
			 line + 12);
	else if (strncmp(line, "lock_voters ", 12) == 0)
		snprintf(rs->lock_voters, sizeof(rs->lock_voters), "%s",
			 line + 12);
	else if (strncmp(line, "lock_reachable ", 15) == 0 &&
		 parse_i64(line + 15, &v) == 0)
		rs->lock_reachable = v == 1;
}

int replstat_read(const char *store_dir, struct replstat *rs)
{
	struct sbuf counters = { 0 }, peers = { 0 }, refused = { 0 };
	char path[PATH_MAX];
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	struct stat st;
	long long v;
	FILE *f;
	int err = 0;

	memset(rs, 0, sizeof(*rs));
	if ((size_t)snprintf(path, sizeof(path), "%s/repl.status", store_dir) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	f = fopen(path, "re");
	if (!f) {
		err = errno == ENOENT ? 0 : -errno;
		goto out;
	}
	if (fstat(fileno(f), &st) == 0 && st.st_size > REPLSTAT_MAX_BYTES) {
		err = -EFBIG;
		goto out;
	}
	rs->state = REPLSTAT_STALE;
	while (!err && (n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[--n] = '\0';
		if (!printable(line, (size_t)n))
			continue;
		if (strncmp(line, "pid ", 4) == 0) {
			if (parse_i64(line + 4, &v) == 0 && v > 0 && v <= INT_MAX)
				rs->pid = (pid_t)v;
		} else if (strncmp(line, "updated_ms ", 11) == 0) {
			if (parse_i64(line + 11, &v) == 0)
				rs->updated_ms = v;
		} else if (strncmp(line, "node ", 5) == 0) {
			snprintf(rs->node, sizeof(rs->node), "%s", line + 5);
		} else if (strncmp(line, "repl_", 5) == 0) {
			err = sbuf_line(&counters, line, (size_t)n);
		} else if (strncmp(line, "lock_", 5) == 0) {
			lock_line(rs, line);
			err = sbuf_line(&counters, line, (size_t)n);
		} else if (strncmp(line, "peer ", 5) == 0) {
			err = sbuf_line(&peers, line, (size_t)n);
		} else if (strncmp(line, "refused_key ", 12) == 0) {
			err = sbuf_line(&refused, line, (size_t)n);
		}
	}
	if (!err && ferror(f))
		err = -EIO;
	if (!err) {
		int64_t now = now_realtime_ms();

		rs->age_ms = now - rs->updated_ms;
		if (replstat_alive(rs->pid, rs->updated_ms, now))
			rs->state = REPLSTAT_RUNNING;
	}
out:
	if (f)
		fclose(f);
	free(line);
	if (err || rs->state != REPLSTAT_RUNNING) {
		/* not believed: keep nothing of it */
		free(counters.p);
		free(peers.p);
		free(refused.p);
		counters.p = peers.p = refused.p = NULL;
		counters.len = peers.len = refused.len = 0;
		counters.cap = peers.cap = refused.cap = 0;
		rs->lock_cluster[0] = rs->lock_role[0] = '\0';
		rs->lock_leader[0] = rs->lock_voters[0] = '\0';
		rs->lock_reachable = 0;
	}
	rs->counters = sbuf_take(&counters);
	rs->peers = sbuf_take(&peers);
	rs->refused = sbuf_take(&refused);
	if (!err && (!rs->counters || !rs->peers || !rs->refused))
		err = -ENOMEM;
	return err;
}
