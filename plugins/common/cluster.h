/*
 * thinkgate — online greedy clustering of items by a pairwise judge
 * score, as DeepPrune (arXiv 2510.08483) clusters reasoning traces.
 *
 * Items (traces, by index) arrive one at a time.  The first founds
 * cluster 0.  Each later one gets, for every cluster, the mean of its
 * judge scores against the cluster's members; when the best mean exceeds
 * tau it joins that cluster, otherwise it founds a new one.  Once
 * max_clusters exist, an item that matches none joins the most similar
 * cluster anyway (the paper's rule at the cap: the number of lines of
 * reasoning kept is bounded).  A cluster's first member is its
 * representative.
 *
 * The caller computes the means (tg_cluster_means() helps), so the judge
 * may be anything.  Nothing here allocates, keeps global state or depends
 * on the engine.
 */
#ifndef TG_CLUSTER_H
#define TG_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

/* Most items, and so most clusters, one clustering holds. */
#define TG_CLUSTER_MAX  64

typedef struct {
    uint32_t  size;
    uint32_t  members[TG_CLUSTER_MAX];  /* item indices, join order;
                                           members[0] represents it */
} tg_cluster_group_t;

typedef struct {
    uint32_t            max_clusters;   /* K, 1..TG_CLUSTER_MAX */
    uint32_t            nclusters;
    int32_t             of[TG_CLUSTER_MAX];     /* item -> cluster, -1 */
    tg_cluster_group_t  groups[TG_CLUSTER_MAX];
} tg_cluster_t;

/* What tg_cluster_decide() concluded for one item. */
typedef enum {
    TG_CLUSTER_FOUND = 1,   /* a new cluster: the item keeps running */
    TG_CLUSTER_JOIN,        /* mean above tau: redundant */
    TG_CLUSTER_JOIN_CAP     /* K clusters exist, none above tau: joins
                               the best anyway */
} tg_cluster_verdict_t;

/* No item is in any cluster; max_clusters is clamped to 1..MAX. */
void tg_cluster_init(tg_cluster_t *c, uint32_t max_clusters);

/*
 * The cluster item should go to, from mean[k] (its mean score against
 * cluster k, for k < nclusters): *verdict says how.  Ties between
 * clusters go to the older one.  Returns the cluster index (nclusters
 * for a new one); -EINVAL for a bad argument.  Changes nothing.
 */
int tg_cluster_decide(const tg_cluster_t *c, const double *mean, double tau,
    tg_cluster_verdict_t *verdict);

/* Puts item in cluster k (k == nclusters founds it).  -EINVAL when item
 * is out of range or already placed, -ENOSPC when k is past the cap. */
int tg_cluster_add(tg_cluster_t *c, uint32_t item, uint32_t k);

/* A judge score of items a and b; return NaN when there is no verdict. */
typedef double (*tg_cluster_score_fn)(void *data, uint32_t a, uint32_t b);

/*
 * mean[k] for item against every cluster, over at most max_members of
 * each cluster's first members (0: all).  Returns 0, or -ENOENT when a
 * score needed is NaN (no verdict: the caller must not decide on it).
 */
int tg_cluster_means(const tg_cluster_t *c, uint32_t item, size_t max_members,
    tg_cluster_score_fn score, void *data, double *mean);

#endif /* TG_CLUSTER_H */
