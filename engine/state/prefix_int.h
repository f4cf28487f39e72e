/*
 * Private to prefix.c and prefix_local.c: the local index.
 */

#ifndef TG_STATE_PREFIX_INT_H
#define TG_STATE_PREFIX_INT_H

#include "state/prefix.h"

/* One block: the backends recorded on it and when (uv_now, ms). */
struct tg__prefix_slot_s {
    uint64_t  hash;                          /* 0: empty */
    uint64_t  time[TG_PREFIX_LOCAL_CAP];
    uint16_t  name[TG_PREFIX_LOCAL_CAP];     /* names[] index + 1; 0: none */
};

int  tg__prefix_local_init(tg_prefix_index_t *idx);
void tg__prefix_local_free(tg_prefix_index_t *idx);

/* Fills out[] as prefix_lookup.lua does; returns the number of matches. */
size_t tg__prefix_local_lookup(tg_prefix_index_t *idx, const uint64_t *h,
    size_t n, tg_prefix_match_t *out, size_t max);

/* Returns 0, or -ENOSPC when the table of backend names is full, -ENOMEM. */
int tg__prefix_local_record(tg_prefix_index_t *idx, const uint64_t *h,
    size_t n, const char *backend);

/* Longest first; equal lengths keep their order (most recent first). */
void tg__prefix_sort(tg_prefix_match_t *m, size_t n);

#endif /* TG_STATE_PREFIX_INT_H */
