/*
 * thinkgate — a vote tally over extracted answers, shared by the voting
 * strategies (self-consistency, FFS with k > 1, ...).
 *
 * Each voter is one trace's final answer together with its finisher
 * order: 0 for the trace that ended first, 1 for the next, and so on.
 * Answers are grouped with tg_answer_equal ("1/2" and "0.5" are one
 * answer).  A group is represented by its first voter, the one with the
 * lowest order: its answer names the group and its order breaks ties, so
 * that of two answers with as many votes the one whose first voter
 * finished earlier wins.  Groups are kept sorted by that order.
 *
 * The tally keeps pointers to the answers, not copies: each must stay
 * valid, unchanged, as long as the tally is used.  Nothing here
 * allocates, keeps global state or depends on the engine.
 */
#ifndef TG_VOTE_H
#define TG_VOTE_H

#include <stddef.h>
#include <stdint.h>

/* Most distinct answers one tally holds. */
#define TG_VOTE_MAX  64

typedef struct {
    const char  *answer;    /* the first voter's answer, as added */
    uint32_t     first;     /* the first voter's finisher order */
    uint32_t     count;     /* votes */
} tg_vote_group_t;

/* Zero-initialise, or tg_vote_init(); the caller's to embed. */
typedef struct {
    uint32_t         ngroups;
    uint32_t         votes;     /* all votes cast */
    tg_vote_group_t  groups[TG_VOTE_MAX];   /* by first voter's order */
} tg_vote_t;

void tg_vote_init(tg_vote_t *v);

/*
 * Casts one vote for answer by the voter that finished order-th.  An
 * empty or NULL answer is no vote: -EINVAL.  Returns the group the vote
 * went to (its index may change as earlier voters are added), or -ENOSPC
 * when the answer is new and TG_VOTE_MAX groups exist.
 */
int tg_vote_add(tg_vote_t *v, const char *answer, uint32_t order);

/* The group with most votes, ties to the earliest first voter; -1 when
 * nobody voted. */
int tg_vote_leader(const tg_vote_t *v);

/* The same among all groups but the leader; -1 when there is none. */
int tg_vote_runner_up(const tg_vote_t *v);

/*
 * 1 when no outcome of `pending` voters still to come can change the
 * leader.  The worst case gives them all to one rival: the runner-up
 * overtakes with more votes than the leader, or ties and wins the tie
 * when its first voter finished earlier; a new answer's first voter would
 * finish after the leader's, so it must exceed the leader.  0 as well
 * when nobody voted yet.
 */
int tg_vote_settled(const tg_vote_t *v, uint32_t pending);

/*
 * The votes as compact JSON, {"answer":count,...}, groups in order.
 * tg_vote_json_len() is the length without the NUL; tg_vote_json()
 * writes it and returns it, or -ENOSPC when out_size is not larger.
 */
size_t tg_vote_json_len(const tg_vote_t *v);
int tg_vote_json(const tg_vote_t *v, char *out, size_t out_size);

#endif /* TG_VOTE_H */
