/*
 * notify.c — wake consumers of the binlog in any process, without polling.
 *
 * A small file beside the store (store.notify) is mapped shared by every
 * process that opens the store. It holds a generation counter used as a
 * futex (a shared, not private, futex: it works across processes that map
 * the same file), a count of waiters, and the last committed binlog seq.
 *
 *   committer                          waiter
 *   ---------                          ------
 *   commit the LMDB txn                waiters++
 *   last_seq = max(last_seq, seq)      g = gen
 *   gen++                              check the binlog (a read txn)
 *   if (waiters) FUTEX_WAKE(all)       if nothing new: FUTEX_WAIT(gen, g)
 *                                      waiters--
 *
 * Invariant: a commit that completes before a waiter's check is seen by
 * the check; one that completes after it bumps gen, so FUTEX_WAIT either
 * refuses to sleep (gen != g) or is woken (waiters was already > 0 when
 * the committer read it: all four operations are sequentially consistent).
 * The committer skips the syscall when nobody waits, so a put costs two
 * atomic operations here.
 *
 * The file is advisory: a process killed between its commit and its post
 * leaves last_seq low, which only costs a waiter one extra check.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "store/store_int.h"

struct notify_shm {
	uint32_t gen;
	uint32_t waiters;
	uint64_t last_seq;
};

struct notify {
	struct notify_shm *shm;
	int ro; /* mapped read-only: cannot count itself as a waiter */
};

int notify_open(const char *path, int readonly, struct notify **np)
{
	struct notify *n;
	int fd, err = 0;
	void *map;

	fd = open(path, (readonly ? O_RDWR : O_RDWR | O_CREAT) | O_CLOEXEC,
		  0664);
	if (fd < 0 && readonly && (errno == EACCES || errno == EROFS)) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
	} else {
		readonly = 0;
	}
	if (fd < 0)
		return -errno;
	if (!readonly && ftruncate(fd, sizeof(struct notify_shm)) < 0) {
		err = -errno;
		goto out;
	}
	/* A reader without write access to the file cannot count itself as
	 * a waiter, so committers may skip its wake-up: its waits are
	 * bounded instead (see notify_wait). */
	map = mmap(NULL, sizeof(struct notify_shm),
		   readonly ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED,
		   fd, 0);
	if (map == MAP_FAILED) {
		err = -errno;
		goto out;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		munmap(map, sizeof(struct notify_shm));
		err = -ENOMEM;
		goto out;
	}
	n->shm = map;
	n->ro = readonly;
	*np = n;
out:
	close(fd);
	return err;
}

void notify_close(struct notify **np)
{
	if (!*np)
		return;
	munmap((*np)->shm, sizeof(struct notify_shm));
	free(*np);
	*np = NULL;
}

void notify_post(struct notify *n, uint64_t last_seq)
{
	struct notify_shm *m = n->shm;
	uint64_t cur = __atomic_load_n(&m->last_seq, __ATOMIC_SEQ_CST);

	while (cur < last_seq &&
	       !__atomic_compare_exchange_n(&m->last_seq, &cur, last_seq, 0,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;
	__atomic_add_fetch(&m->gen, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&m->waiters, __ATOMIC_SEQ_CST))
		syscall(SYS_futex, &m->gen, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

uint32_t notify_begin(struct notify *n)
{
	if (!n->ro)
		__atomic_add_fetch(&n->shm->waiters, 1, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&n->shm->gen, __ATOMIC_SEQ_CST);
}

void notify_end(struct notify *n)
{
	if (!n->ro)
		__atomic_sub_fetch(&n->shm->waiters, 1, __ATOMIC_SEQ_CST);
}

int notify_wait(struct notify *n, uint32_t gen, int timeout_ms)
{
	struct timespec ts, *tp = NULL;

	if (n->ro && (timeout_ms < 0 || timeout_ms > 50))
		timeout_ms = 50;
	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000;
		tp = &ts;
	}
	if (syscall(SYS_futex, &n->shm->gen, FUTEX_WAIT, gen, tp, NULL, 0) <
	    0) {
		if (errno == ETIMEDOUT || errno == EINTR)
			return -errno;
	}
	return 0;
}

uint64_t notify_last_seq(struct notify *n)
{
	return __atomic_load_n(&n->shm->last_seq, __ATOMIC_SEQ_CST);
}
