/*
 * list.h — an intrusive doubly linked list (the head is a list too),
 * for tables that must never allocate per link: fs/lock.c's local lock
 * manager and repl/locktable.c's replicated one.
 */
#ifndef STATEFS_LIST_H
#define STATEFS_LIST_H

#include <stddef.h>

struct list {
	struct list *prev, *next;
};

static inline void list_init(struct list *l)
{
	l->prev = l->next = l;
}

static inline int list_empty(const struct list *l)
{
	return l->next == l;
}

static inline void list_add_tail(struct list *l, struct list *n)
{
	n->prev = l->prev;
	n->next = l;
	l->prev->next = n;
	l->prev = n;
}

static inline void list_del(struct list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

#define list_for(p, head) \
	for ((p) = (head)->next; (p) != (head); (p) = (p)->next)
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#endif
