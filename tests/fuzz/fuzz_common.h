/*
 * fuzz_common.h — what fuzz_change.c and gen_corpus.c must agree on.
 */
#ifndef STATEFS_FUZZ_COMMON_H
#define STATEFS_FUZZ_COMMON_H

#include <stdint.h>

/* Joins several changes in one input. Printable, so that crash files
 * stay readable. */
#define FUZZ_SEP "\n--next--\n"
#define FUZZ_SEP_LEN (sizeof(FUZZ_SEP) - 1)

/* The wall clock of every store either program opens (store_opts.clock):
 * 2026-12-01T00:00:00Z, for ever. A change's origin_seq is its origin's
 * hybrid clock, and store_apply_remote holds back changes stamped ahead
 * of its own clock (STORE_HELD) and refuses those older than the purge
 * horizon (STORE_TOO_OLD, a day by default). With the system clock the
 * committed seeds would be refused as too old a day after they were
 * made and the fuzzer would never reach the merge again; with this one
 * they stay applicable, and a run depends on its inputs only. */
#define FUZZ_CLOCK_NS (1796083200LL * 1000000000LL)

/* The scratch store's max_value: small, so that inputs of libFuzzer's
 * lengths reach store_apply_remote's -EFBIG. */
#define FUZZ_MAX_VALUE 1024

static inline int64_t fuzz_clock(void *arg)
{
	(void)arg;
	return FUZZ_CLOCK_NS;
}

#endif
