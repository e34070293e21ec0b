/*
 * conflict.c — what a node does when two writes of a file's value were
 * concurrent (neither saw the other), beyond the store's rule that the
 * higher version wins (SPEC §5, [replication] conflict =):
 *
 *   lww   nothing more (the default).
 *   keep  the losing value is kept as NAME.conflict-NODE-VERSION beside
 *         the file (NODE: the losing write's node id in hex, VERSION:
 *         its clock value). Every node that meets the conflict writes
 *         the same name and value, and the sibling replicates like any
 *         file, so it is the same on every node, also on nodes that
 *         never received the losing write. Two such writes of one
 *         sibling are equal values: not a conflict again.
 *   hook:PROGRAM  after the batch commits, PROGRAM PATH WINNER LOSER runs
 *         (WINNER and LOSER: files holding the two values; the winner is
 *         the higher version, so every node asks the same question) and
 *         its standard output, if it exits 0 within hook_timeout, is
 *         written to PATH as a new version that saw both. A deterministic
 *         program gives every node the same answer, and equal values do
 *         not conflict. A failing or hanging hook (killed at the
 *         timeout) leaves the winner: logged, never a stopped node.
 *
 * Only values of regular files conflict here: a delete, a directory or
 * a symlink on either side leaves the store's rule alone. Conflicts are
 * counted whatever the policy.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "repl/repl.h"

#define SIBLING_TAG ".conflict-"

/* Before applying c: the value it may conflict with. */
int conflict_before(struct repl *r, struct store_txn *t,
		    const struct store_change *c, struct conflict_pre *pre)
{
	char path[PATH_MAX + 1];

	memset(pre, 0, sizeof(*pre));
	if (r->cfg.conflict == CONFLICT_LWW || c->path_len > PATH_MAX)
		return 0;
	memcpy(path, c->path, c->path_len);
	path[c->path_len] = '\0';
	if (strstr(path, SIBLING_TAG))
		return 0; /* a sibling's siblings would never end */
	if (store_get(r->store, t, path, &pre->st, &pre->val, &pre->len) == 0 &&
	    pre->st.type == STORE_FILE)
		pre->have = 1;
	else if (pre->val) {
		free(pre->val);
		pre->val = NULL;
	}
	return 0;
}

void conflict_pre_free(struct conflict_pre *pre)
{
	free(pre->val);
	memset(pre, 0, sizeof(*pre));
}

/* The store said c's content conflicted (res: WON or LOST). Keep: write
 * the sibling in t. Hook: remember it for conflict_run_hooks. */
int conflict_after(struct repl *r, struct store_txn *t,
		   const struct store_change *c, int res,
		   const struct conflict_pre *pre)
{
	struct store_stat in;
	const void *inval;
	const void *wv, *lv;
	size_t wl, ll;
	struct store_version lver;
	char path[PATH_MAX + 1], sib[PATH_MAX + 64];
	int n, err;

	if (!pre->have)
		return 0;
	if (store_rec_decode(c->rec, c->rec_len, &in, &inval, NULL, NULL) ||
	    in.type != STORE_FILE)
		return 0;
	if (res == STORE_CONFLICT_WON) {
		wv = inval, wl = in.size;
		lv = pre->val, ll = pre->len;
		lver = pre->st.fver[STORE_F_CONTENT];
	} else {
		wv = pre->val, wl = pre->len;
		lv = inval, ll = in.size;
		lver = in.fver[STORE_F_CONTENT];
	}
	if (wl == ll && memcmp(wv, lv, wl) == 0)
		return 0; /* the same value twice is no conflict */
	memcpy(path, c->path, c->path_len);
	path[c->path_len] = '\0';
	if (r->cfg.conflict == CONFLICT_HOOK) {
		struct hook_job *j;

		if (r->nhooks == sizeof(r->hooks) / sizeof(r->hooks[0]))
			return 0; /* more than a batch should meet: lww */
		j = &r->hooks[r->nhooks];
		j->path = strdup(path);
		j->winner = malloc(wl + 1);
		j->loser = malloc(ll + 1);
		if (!j->path || !j->winner || !j->loser) {
			free(j->path);
			free(j->winner);
			free(j->loser);
			return 0;
		}
		memcpy(j->winner, wv, wl);
		memcpy(j->loser, lv, ll);
		j->wlen = wl;
		j->llen = ll;
		j->wver = res == STORE_CONFLICT_WON ? in.fver[STORE_F_CONTENT] :
						      pre->st.fver[STORE_F_CONTENT];
		r->nhooks++;
		return 0;
	}
	n = snprintf(sib, sizeof(sib), "%s" SIBLING_TAG "%016" PRIx64 "-%" PRIu64,
		     path, lver.node, lver.hlc);
	if (n < 0 || (size_t)n >= sizeof(sib) ||
	    strlen(strrchr(sib, '/') + 1) > STORE_NAME_MAX) {
		log_rate(LOG_WARNING, "conflict on %s: the name for its losing value "
			 "is too long: not kept", path);
		return 0;
	}
	err = store_put(r->store, t, sib, lv, ll, NULL, 0,
			STORE_CREATE | STORE_EXCL);
	if (err == -EEXIST)
		return 0;
	if (err)
		return err;
	log_msg(LOG_NOTICE, "conflict on %s: the losing value is kept as %s",
		path, sib);
	return 0;
}

static int write_tmp(const char *dir, const void *p, size_t n, char *name,
		     size_t size)
{
	int fd;

	snprintf(name, size, "%s/statefs-hook-XXXXXX", dir);
	fd = mkstemp(name);
	if (fd < 0)
		return -errno;
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			close(fd);
			unlink(name);
			return -errno;
		}
		p = (const char *)p + w;
		n -= (size_t)w;
	}
	close(fd);
	return 0;
}

/* Run the hook on one conflict: 0 and the output, or -1 (logged). */
static int hook_exec(struct repl *r, const struct hook_job *j, char **out,
		     size_t *outlen)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char wf[PATH_MAX], lf[PATH_MAX];
	int64_t deadline = repl_now_ms() + (int64_t)r->cfg.hook_timeout_ms;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int pfd[2], status = 0, ok = 0;
	pid_t pid;

	if (!buf || write_tmp(dir, j->winner, j->wlen, wf, sizeof(wf))) {
		free(buf);
		return -1;
	}
	if (write_tmp(dir, j->loser, j->llen, lf, sizeof(lf))) {
		unlink(wf);
		free(buf);
		return -1;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0)
		goto done;
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, 0);
		dup2(pfd[1], 1);
		execl(r->cfg.hook, r->cfg.hook, j->path, wf, lf, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	if (pid < 0) {
		close(pfd[0]);
		goto done;
	}
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int64_t left = deadline - repl_now_ms();
		ssize_t got;

		if (left <= 0) {
			kill(pid, SIGKILL);
			log_msg(LOG_WARNING, "conflict hook %s on %s: no answer in %" PRIu64
				" ms: killed; the higher version stands", r->cfg.hook,
				j->path, r->cfg.hook_timeout_ms);
			break;
		}
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		if (len == cap) {
			char *nb = cap >= r->cfg.so.max_value ? NULL :
				   realloc(buf, cap * 2);

			if (!nb) {
				kill(pid, SIGKILL);
				log_msg(LOG_WARNING, "conflict hook %s on %s: output too "
					"large; the higher version stands",
					r->cfg.hook, j->path);
				break;
			}
			buf = nb;
			cap *= 2;
		}
		got = read(pfd[0], buf + len, cap - len);
		if (got <= 0) {
			ok = 1;
			break;
		}
		len += (size_t)got;
	}
	close(pfd[0]);
	waitpid(pid, &status, 0);
	if (ok && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		log_msg(LOG_WARNING, "conflict hook %s on %s failed (%s %d); the "
			"higher version stands", r->cfg.hook, j->path,
			WIFEXITED(status) ? "exit" : "signal",
			WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		ok = 0;
	}
done:
	unlink(wf);
	unlink(lf);
	if (!ok) {
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

static void job_free(struct hook_job *j)
{
	free(j->path);
	free(j->winner);
	free(j->loser);
	memset(j, 0, sizeof(*j));
}

void conflict_drop_hooks(struct repl *r)
{
	size_t i;

	for (i = 0; i < r->nhooks; i++)
		job_free(&r->hooks[i]);
	r->nhooks = 0;
}

void conflict_run_hooks(struct repl *r)
{
	size_t i;

	for (i = 0; i < r->nhooks; i++) {
		struct hook_job *j = &r->hooks[i];
		struct store_stat st;
		struct store_txn *t;
		char *out;
		size_t len;
		int err;

		if (hook_exec(r, j, &out, &len) == 0) {
			/* write it only over the winner it was asked about */
			err = store_txn_begin(r->store, 1, &t);
			if (!err) {
				err = store_stat(r->store, t, j->path, &st);
				if (!err && st.fver[STORE_F_CONTENT].hlc == j->wver.hlc &&
				    st.fver[STORE_F_CONTENT].node == j->wver.node &&
				    !(len == j->wlen && memcmp(out, j->winner, len) == 0))
					err = store_put(r->store, t, j->path, out, len,
							NULL, 0, 0);
				if (err)
					store_txn_abort(&t);
				else
					err = store_txn_commit(&t);
			}
			if (err && err != -ENOENT)
				log_msg(LOG_WARNING, "conflict hook on %s: cannot write "
					"its answer: %s", j->path, store_strerror(err));
			else if (!err)
				log_msg(LOG_NOTICE, "conflict on %s resolved by %s",
					j->path, r->cfg.hook);
			free(out);
		}
		job_free(j);
	}
	r->nhooks = 0;
}
