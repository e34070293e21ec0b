/*
 * log.c — see log.h. One fprintf per message (stderr is unbuffered, so a
 * line from one thread is not interleaved with another's).
 */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *log_prog = "statefs";
static enum log_level log_level = LOG_NOTICE;
static int log_journal; /* stderr is the journal: prefix <N> priorities */

void log_init(const char *prog, enum log_level level)
{
	const char *slash = strrchr(prog, '/');

	log_prog = slash ? slash + 1 : prog;
	log_level = level;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

int log_enabled(enum log_level level)
{
	return level <= log_level;
}

void log_msg_(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "fatal", "error", "warning",
					     "notice", "info", "debug" };
	static const int prio[] = { 2, 3, 4, 5, 6, 7 };
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_journal)
		fprintf(stderr, "<%d>%s: %s\n", prio[level], log_prog, msg);
	else
		fprintf(stderr, "%s: %s: %s\n", log_prog, names[level], msg);
}

int log_limit_pass(struct log_limit *l, enum log_level level)
{
	struct timespec ts;
	long long now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
	if (now < l->next_ms) {
		l->skipped++;
		return 0;
	}
	if (l->skipped)
		log_msg_(level, "(%lu more like the next were left out)", l->skipped);
	l->skipped = 0;
	l->next_ms = now + 5000;
	return 1;
}
