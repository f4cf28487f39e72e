/*
 * common/cluster: the online greedy clustering's bookkeeping - the first
 * item founds, above tau joins the best (ties to the older cluster), at
 * or below founds, at the cap joins the best anyway; a missing verdict
 * is no decision.
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>

#include "common/cluster.h"

/* Items with equal (x / 10) are the same line of reasoning. */
static double
tg_test_score(void *data, uint32_t a, uint32_t b)
{
    const double  *nan_for = data;

    if (nan_for != NULL && (a == (uint32_t) *nan_for
                            || b == (uint32_t) *nan_for))
    {
        return NAN;
    }
    return a / 10 == b / 10 ? 0.9 : 0.1;
}


static tg_cluster_verdict_t
tg_test_place(tg_cluster_t *c, uint32_t item, double tau, int *k)
{
    tg_cluster_verdict_t  v;
    double                mean[TG_CLUSTER_MAX];

    cr_assert_eq(tg_cluster_means(c, item, 0, tg_test_score, NULL, mean), 0);
    *k = tg_cluster_decide(c, mean, tau, &v);
    cr_assert_geq(*k, 0);
    cr_assert_eq(tg_cluster_add(c, item, (uint32_t) *k), 0);
    return v;
}


Test(cluster, found_join_and_cap)
{
    tg_cluster_t  c;
    int           k;

    tg_cluster_init(&c, 2);
    cr_assert_eq(tg_test_place(&c, 1, 0.5, &k), TG_CLUSTER_FOUND);
    cr_assert_eq(k, 0);
    cr_assert_eq(tg_test_place(&c, 2, 0.5, &k), TG_CLUSTER_JOIN);
    cr_assert_eq(k, 0);
    cr_assert_eq(tg_test_place(&c, 11, 0.5, &k), TG_CLUSTER_FOUND);
    cr_assert_eq(k, 1);
    cr_assert_eq(tg_test_place(&c, 12, 0.5, &k), TG_CLUSTER_JOIN);
    cr_assert_eq(k, 1);
    /* A third line of reasoning at K = 2: joins the most similar. */
    cr_assert_eq(tg_test_place(&c, 21, 0.5, &k), TG_CLUSTER_JOIN_CAP);
    cr_assert_eq(k, 0, "a tie goes to the older cluster");
    cr_assert_eq(c.nclusters, 2);
    cr_assert_eq(c.groups[0].size, 3);
    cr_assert_eq(c.groups[0].members[0], 1, "the first member represents");
    cr_assert_eq(c.groups[1].members[0], 11);
    cr_assert_eq(c.of[21], 0);
    cr_assert_eq(c.of[5], -1);
}


Test(cluster, tau_is_strict_and_means_average)
{
    tg_cluster_t          c;
    tg_cluster_verdict_t  v;
    double                mean[2] = { 0.5, 0.2 };

    tg_cluster_init(&c, 8);
    cr_assert_eq(tg_cluster_add(&c, 0, 0), 0);
    cr_assert_eq(tg_cluster_add(&c, 1, 1), 0);
    cr_assert_eq(tg_cluster_decide(&c, mean, 0.5, &v), 2);
    cr_assert_eq(v, TG_CLUSTER_FOUND, "a mean equal to tau does not join");
    mean[1] = 0.6;
    cr_assert_eq(tg_cluster_decide(&c, mean, 0.5, &v), 1);
    cr_assert_eq(v, TG_CLUSTER_JOIN);

    /* Cluster 0 = {0, 15}: item 3 scores 0.9 and 0.1, mean 0.5. */
    cr_assert_eq(tg_cluster_add(&c, 15, 0), 0);
    cr_assert_eq(tg_cluster_means(&c, 3, 0, tg_test_score, NULL, mean), 0);
    cr_assert_float_eq(mean[0], 0.5, 1e-12);
    cr_assert_eq(tg_cluster_means(&c, 3, 1, tg_test_score, NULL, mean), 0);
    cr_assert_float_eq(mean[0], 0.9, 1e-12, "max_members: the first only");
}


Test(cluster, no_verdict_no_decision_and_bad_calls)
{
    tg_cluster_t  c;
    double        mean[2], nan_for = 0;

    tg_cluster_init(&c, 0);
    cr_assert_eq(c.max_clusters, 1);
    cr_assert_eq(tg_cluster_add(&c, 0, 0), 0);
    cr_assert_eq(tg_cluster_means(&c, 4, 0, tg_test_score, &nan_for, mean),
                 -ENOENT);
    cr_assert_eq(tg_cluster_add(&c, 0, 0), -EINVAL, "placed twice");
    cr_assert_eq(tg_cluster_add(&c, 1, 1), -ENOSPC, "past the cap");
    cr_assert_eq(tg_cluster_add(&c, TG_CLUSTER_MAX, 0), -EINVAL);
    cr_assert_eq(tg_cluster_decide(&c, NULL, 0.5, NULL), -EINVAL);
}
