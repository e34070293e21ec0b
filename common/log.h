/*
 * log.h — one logging call for every statefs program.
 *
 * log_msg(level, fmt, ...) writes "PROG: level: message" to stderr, or to
 * the journal's stderr stream when run under systemd (the prefix then
 * carries the syslog priority, "<3>" and so on). Messages below the
 * current level are not formatted at all. The words "error", "warning"
 * and "fatal" appear only at those levels, so tests can scan for them.
 */
#ifndef STATEFS_LOG_H
#define STATEFS_LOG_H

enum log_level { LOG_FATAL = 0, LOG_ERROR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG };

/* Program name used as the prefix, and the lowest level that is printed
 * (default LOG_NOTICE). */
void log_init(const char *prog, enum log_level level);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);

void log_msg_(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_msg(level, ...)                                 \
	do {                                                \
		if (log_enabled(level))                     \
			log_msg_((level), __VA_ARGS__);     \
	} while (0)

/* The same, at most once per 5 s per call site, for what a peer or a
 * client can make happen at any rate; a line after a pause says how
 * many were left out. */
struct log_limit {
	long long next_ms;
	unsigned long skipped;
};
int log_limit_pass(struct log_limit *l, enum log_level level);

#define log_rate(level, ...)                                        \
	do {                                                        \
		static struct log_limit log_lim_;                   \
		if (log_enabled(level) &&                           \
		    log_limit_pass(&log_lim_, (level)))             \
			log_msg_((level), __VA_ARGS__);             \
	} while (0)

#endif
