/*
 * thinkgate — the vote tally (see vote.h).
 *
 * A tally holds a few dozen groups at most, so every operation is a
 * plain linear pass; a vote compares its answer with each group's first
 * one.
 */
#include "vote.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "answer.h"

typedef struct {
    char    *p;       /* NULL: only count */
    size_t   len;     /* bytes the whole text needs so far */
    size_t   size;
} tg__vote_out_t;

static int tg__vote_better(const tg_vote_group_t *a,
    const tg_vote_group_t *b);
static int tg__vote_best(const tg_vote_t *v, int skip);
static void tg__vote_put(tg__vote_out_t *o, const char *s, size_t n);
static void tg__vote_render(const tg_vote_t *v, tg__vote_out_t *o);


void
tg_vote_init(tg_vote_t *v)
{
    memset(v, 0, sizeof(*v));
}


int
tg_vote_add(tg_vote_t *v, const char *answer, uint32_t order)
{
    tg_vote_group_t  g;
    uint32_t         i;

    if (answer == NULL || answer[0] == '\0') {
        return -EINVAL;
    }
    for (i = 0; i < v->ngroups; i++) {
        if (tg_answer_equal(v->groups[i].answer, answer)) {
            break;
        }
    }
    if (i == v->ngroups) {
        if (v->ngroups == TG_VOTE_MAX) {
            return -ENOSPC;
        }
        v->groups[i].answer = answer;
        v->groups[i].first = order;
        v->groups[i].count = 0;
        v->ngroups++;
    } else if (order < v->groups[i].first) {
        /* An earlier voter: it names the group from now on. */
        v->groups[i].answer = answer;
        v->groups[i].first = order;
    }
    v->groups[i].count++;
    v->votes++;

    /* Keep the groups sorted by first voter; votes usually come in
     * finish order and nothing moves. */
    g = v->groups[i];
    for ( ; i > 0 && v->groups[i - 1].first > g.first; i--) {
        v->groups[i] = v->groups[i - 1];
    }
    v->groups[i] = g;
    return (int) i;
}


int
tg_vote_leader(const tg_vote_t *v)
{
    return tg__vote_best(v, -1);
}


int
tg_vote_runner_up(const tg_vote_t *v)
{
    int  lead = tg_vote_leader(v);

    return lead < 0 ? -1 : tg__vote_best(v, lead);
}


int
tg_vote_settled(const tg_vote_t *v, uint32_t pending)
{
    int  lead = tg_vote_leader(v), second;

    if (lead < 0 || pending > v->groups[lead].count) {
        return 0;
    }
    second = tg__vote_best(v, lead);
    if (second >= 0) {
        tg_vote_group_t  rival = v->groups[second];

        rival.count += pending;
        if (tg__vote_better(&rival, &v->groups[lead])) {
            return 0;
        }
    }
    return 1;
}


size_t
tg_vote_json_len(const tg_vote_t *v)
{
    tg__vote_out_t  o = { NULL, 0, 0 };

    tg__vote_render(v, &o);
    return o.len;
}


int
tg_vote_json(const tg_vote_t *v, char *out, size_t out_size)
{
    tg__vote_out_t  o = { out, 0, out_size };

    if (out == NULL || out_size == 0) {
        return -EINVAL;
    }
    tg__vote_render(v, &o);
    if (o.len >= out_size) {
        out[0] = '\0';
        return -ENOSPC;
    }
    out[o.len] = '\0';
    return (int) o.len;
}


/* 1 when a wins over b: more votes, or as many and an earlier voter. */
static int
tg__vote_better(const tg_vote_group_t *a, const tg_vote_group_t *b)
{
    return a->count > b->count
           || (a->count == b->count && a->first < b->first);
}


/* The winning group, leaving out skip; -1 when none is left. */
static int
tg__vote_best(const tg_vote_t *v, int skip)
{
    uint32_t  g;
    int       best = -1;

    for (g = 0; g < v->ngroups; g++) {
        if ((int) g != skip
            && (best < 0 || tg__vote_better(&v->groups[g], &v->groups[best])))
        {
            best = (int) g;
        }
    }
    return best;
}


/* Appends n bytes where they fit; counts them all. */
static void
tg__vote_put(tg__vote_out_t *o, const char *s, size_t n)
{
    if (o->p != NULL && o->len + n < o->size) {
        memcpy(o->p + o->len, s, n);
    }
    o->len += n;
}


static void
tg__vote_render(const tg_vote_t *v, tg__vote_out_t *o)
{
    static const char     hex[] = "0123456789abcdef";
    const unsigned char  *a;
    uint32_t              g;
    char                  esc[16];
    int                   n;

    tg__vote_put(o, "{", 1);
    for (g = 0; g < v->ngroups; g++) {
        tg__vote_put(o, g > 0 ? ",\"" : "\"", g > 0 ? 2 : 1);
        for (a = (const unsigned char *) v->groups[g].answer; *a != '\0';
             a++)
        {
            if (*a == '"' || *a == '\\') {
                esc[0] = '\\';
                esc[1] = (char) *a;
                tg__vote_put(o, esc, 2);
            } else if (*a < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[*a >> 4];
                esc[5] = hex[*a & 0xf];
                tg__vote_put(o, esc, 6);
            } else {
                tg__vote_put(o, (const char *) a, 1);
            }
        }
        n = snprintf(esc, sizeof(esc), "\":%u", v->groups[g].count);
        tg__vote_put(o, esc, (size_t) n);
    }
    tg__vote_put(o, "}", 1);
}
