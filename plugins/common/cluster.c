/*
 * thinkgate — online greedy clustering (see cluster.h).
 */
#include "cluster.h"

#include <errno.h>
#include <math.h>
#include <string.h>


void
tg_cluster_init(tg_cluster_t *c, uint32_t max_clusters)
{
    uint32_t  i;

    memset(c, 0, sizeof(*c));
    if (max_clusters < 1) {
        max_clusters = 1;
    }
    c->max_clusters = max_clusters > TG_CLUSTER_MAX ? TG_CLUSTER_MAX
                                                    : max_clusters;
    for (i = 0; i < TG_CLUSTER_MAX; i++) {
        c->of[i] = -1;
    }
}


int
tg_cluster_decide(const tg_cluster_t *c, const double *mean, double tau,
    tg_cluster_verdict_t *verdict)
{
    uint32_t  k, best = 0;

    if (c == NULL || verdict == NULL || (c->nclusters > 0 && mean == NULL)) {
        return -EINVAL;
    }
    if (c->nclusters == 0) {
        *verdict = TG_CLUSTER_FOUND;
        return 0;
    }
    for (k = 1; k < c->nclusters; k++) {
        /* Strictly greater: a tie stays with the older cluster. */
        if (mean[k] > mean[best]) {
            best = k;
        }
    }
    if (mean[best] > tau) {
        *verdict = TG_CLUSTER_JOIN;
        return (int) best;
    }
    if (c->nclusters < c->max_clusters) {
        *verdict = TG_CLUSTER_FOUND;
        return (int) c->nclusters;
    }
    *verdict = TG_CLUSTER_JOIN_CAP;
    return (int) best;
}


int
tg_cluster_add(tg_cluster_t *c, uint32_t item, uint32_t k)
{
    tg_cluster_group_t  *g;

    if (item >= TG_CLUSTER_MAX || c->of[item] >= 0 || k > c->nclusters) {
        return -EINVAL;
    }
    if (k == c->nclusters) {
        if (c->nclusters >= c->max_clusters) {
            return -ENOSPC;
        }
        c->nclusters++;
    }
    g = &c->groups[k];
    g->members[g->size++] = item;
    c->of[item] = (int32_t) k;
    return 0;
}


int
tg_cluster_means(const tg_cluster_t *c, uint32_t item, size_t max_members,
    tg_cluster_score_fn score, void *data, double *mean)
{
    uint32_t  k, m, count;
    double    sum, s;

    for (k = 0; k < c->nclusters; k++) {
        const tg_cluster_group_t  *g = &c->groups[k];

        count = g->size;
        if (max_members > 0 && count > max_members) {
            count = (uint32_t) max_members;
        }
        sum = 0;
        for (m = 0; m < count; m++) {
            s = score(data, item, g->members[m]);
            if (isnan(s)) {
                return -ENOENT;
            }
            sum += s;
        }
        mean[k] = count > 0 ? sum / count : 0;
    }
    return 0;
}
