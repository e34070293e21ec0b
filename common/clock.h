/*
 * clock.h — milliseconds of a clock, and a deadline for
 * pthread_cond_timedwait on a condition variable whose clock is
 * CLOCK_MONOTONIC. Header-only.
 */
#ifndef STATEFS_CLOCK_H
#define STATEFS_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC for intervals, CLOCK_REALTIME for stamps others read. */
static inline int64_t clock_ms(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* *ts = CLOCK_MONOTONIC now + ms. */
static inline void clock_deadline(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

#endif
