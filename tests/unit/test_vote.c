/*
 * Unit tests of plugins/common/vote: grouping by answer value, the tie
 * rule, the leader and runner-up, the settled rule against brute force,
 * and the votes JSON.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/vote.h"


Test(vote, empty_tally)
{
    tg_vote_t  v;
    char       buf[8];

    tg_vote_init(&v);
    cr_assert_eq(tg_vote_leader(&v), -1);
    cr_assert_eq(tg_vote_runner_up(&v), -1);
    cr_assert_not(tg_vote_settled(&v, 0));
    cr_assert_eq(tg_vote_json_len(&v), 2);
    cr_assert_eq(tg_vote_json(&v, buf, sizeof(buf)), 2);
    cr_assert_str_eq(buf, "{}");
}


Test(vote, equal_values_share_a_group)
{
    tg_vote_t  v;

    tg_vote_init(&v);
    cr_assert_eq(tg_vote_add(&v, "2", 0), 0);
    cr_assert_eq(tg_vote_add(&v, "1/2", 1), 1);
    cr_assert_eq(tg_vote_add(&v, "0.5", 2), 1);
    cr_assert_eq(tg_vote_add(&v, "\\frac{1}{2}", 3), 1);
    cr_assert_eq(v.ngroups, 2);
    cr_assert_eq(v.votes, 4);
    cr_assert_str_eq(v.groups[1].answer, "1/2", "named by its first voter");
    cr_assert_eq(v.groups[1].count, 3);
    cr_assert_eq(v.groups[1].first, 1);
    cr_assert_eq(tg_vote_leader(&v), 1);
    cr_assert_eq(tg_vote_runner_up(&v), 0);
}


Test(vote, no_answer_is_no_vote)
{
    tg_vote_t  v;

    tg_vote_init(&v);
    cr_assert_eq(tg_vote_add(&v, "", 0), -EINVAL);
    cr_assert_eq(tg_vote_add(&v, NULL, 1), -EINVAL);
    cr_assert_eq(v.votes, 0);
    cr_assert_eq(tg_vote_leader(&v), -1);
}


Test(vote, ties_go_to_the_earliest_first_voter)
{
    tg_vote_t  v;

    tg_vote_init(&v);
    tg_vote_add(&v, "B", 0);
    tg_vote_add(&v, "A", 1);
    tg_vote_add(&v, "A", 2);
    tg_vote_add(&v, "B", 3);
    cr_assert_eq(tg_vote_leader(&v), 0);
    cr_assert_str_eq(v.groups[tg_vote_leader(&v)].answer, "B");
    cr_assert_eq(tg_vote_runner_up(&v), 1);
    tg_vote_add(&v, "A", 4);
    cr_assert_str_eq(v.groups[tg_vote_leader(&v)].answer, "A");
    cr_assert_str_eq(v.groups[tg_vote_runner_up(&v)].answer, "B");
}


Test(vote, out_of_order_votes_keep_groups_by_first_voter)
{
    tg_vote_t  v;
    char       buf[64];

    tg_vote_init(&v);
    tg_vote_add(&v, "7", 5);
    tg_vote_add(&v, "3", 2);
    tg_vote_add(&v, "0.5", 4);
    cr_assert_eq(tg_vote_add(&v, "1/2", 1), 0, "an earlier voter moves "
                 "its group first");
    cr_assert_str_eq(v.groups[0].answer, "1/2");
    cr_assert_eq(v.groups[0].first, 1);
    cr_assert_eq(v.groups[0].count, 2);
    tg_vote_json(&v, buf, sizeof(buf));
    cr_assert_str_eq(buf, "{\"1/2\":2,\"3\":1,\"7\":1}");
    tg_vote_add(&v, "3", 0);
    cr_assert_eq(tg_vote_leader(&v), 0);
    cr_assert_str_eq(v.groups[0].answer, "3", "2-2, and 3 was first");
}


Test(vote, json_escapes_and_reports_its_length)
{
    tg_vote_t  v;
    char       buf[64], small[8];
    size_t     len;

    tg_vote_init(&v);
    tg_vote_add(&v, "a\"b\\c", 0);
    tg_vote_add(&v, "x\ny", 1);
    tg_vote_add(&v, "x\ny", 2);
    len = tg_vote_json_len(&v);
    cr_assert_eq(tg_vote_json(&v, buf, sizeof(buf)), (int) len);
    cr_assert_str_eq(buf, "{\"a\\\"b\\\\c\":1,\"x\\u000ay\":2}");
    cr_assert_eq(strlen(buf), len);
    cr_assert_eq(tg_vote_json(&v, buf, len), -ENOSPC, "no room for NUL");
    cr_assert_eq(tg_vote_json(&v, small, sizeof(small)), -ENOSPC);
    cr_assert_str_eq(small, "");
    cr_assert_eq(tg_vote_json(&v, NULL, 0), -EINVAL);
}


Test(vote, full_tally_refuses_new_answers)
{
    tg_vote_t  v;
    char       answers[TG_VOTE_MAX + 1][8];
    uint32_t   i;

    tg_vote_init(&v);
    for (i = 0; i <= TG_VOTE_MAX; i++) {
        snprintf(answers[i], sizeof(answers[i]), "%u", i);
    }
    for (i = 0; i < TG_VOTE_MAX; i++) {
        cr_assert_eq(tg_vote_add(&v, answers[i], i), (int) i);
    }
    cr_assert_eq(tg_vote_add(&v, answers[TG_VOTE_MAX], TG_VOTE_MAX),
                 -ENOSPC);
    cr_assert_eq(tg_vote_add(&v, answers[3], TG_VOTE_MAX), 3,
                 "a known answer still counts");
    cr_assert_eq(tg_vote_leader(&v), 3);
}


static uint64_t
tg_vote_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}


/*
 * settled(pending) must say 1 exactly when every way of casting the
 * pending votes (each for an existing answer or a new one) leaves the
 * leader's answer leading: checked by trying them all.
 */
static int
tg_vote_brute_settled(const tg_vote_t *v, uint32_t pending, uint32_t order)
{
    static const char *const  extra[] = { "p", "q", "r", "s" };
    const char               *lead;
    uint32_t                  g;

    if (tg_vote_leader(v) < 0) {
        return 0;
    }
    lead = v->groups[tg_vote_leader(v)].answer;
    if (pending == 0) {
        return 1;
    }
    for (g = 0; g <= v->ngroups; g++) {
        tg_vote_t    w = *v;
        const char  *a = g < v->ngroups ? v->groups[g].answer
                                        : extra[pending - 1];

        tg_vote_add(&w, a, order);
        if (strcmp(w.groups[tg_vote_leader(&w)].answer, lead) != 0
            || !tg_vote_brute_settled(&w, pending - 1, order + 1))
        {
            return 0;
        }
    }
    return 1;
}


Test(vote, settled_matches_brute_force)
{
    static const char *const  pool[] = { "A", "B", "C" };
    uint64_t                  seed = 0x70735eedull;
    unsigned                  c, settled = 0;

    for (c = 0; c < 2000; c++) {
        tg_vote_t  v;
        uint32_t   n = tg_vote_rand(&seed) % 7, pending, i;

        tg_vote_init(&v);
        for (i = 0; i < n; i++) {
            tg_vote_add(&v, pool[tg_vote_rand(&seed) % 3], i);
        }
        pending = tg_vote_rand(&seed) % 4;
        cr_assert_eq(tg_vote_settled(&v, pending),
                     tg_vote_brute_settled(&v, pending, n), "case %u", c);
        settled += tg_vote_settled(&v, pending);
    }
    cr_assert_gt(settled, 100);
}
