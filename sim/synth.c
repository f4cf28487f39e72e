/*
 * Synthetic reasoning traces for arithmetic word problems
 * ("A + B groups of C - D").  A trace thinks in paragraphs that open with
 * "Wait,", "Alternatively," or "Hmm,", states intermediate answers that
 * converge on its final one, closes with "</think>" and a \boxed{} answer.
 * A share --error-rate of traces ends wrong; wrong traces hesitate more,
 * so correct traces are shorter on average, as in real recordings.  All
 * randomness comes from a splitmix64 seeded by (seed, prompt, sample).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "sim.h"

static uint64_t
tg_sim_rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static long long
tg_sim_range_ll(uint64_t *s, long long lo, long long hi)
{
    return lo + (long long) (tg_sim_rng(s) % (uint64_t) (hi - lo + 1));
}

static const char *const tg_sim_items[] = {
    "apples", "cookies", "marbles", "stickers", "books", "coins"
};
static const char *const tg_sim_groups[] = {
    "baskets", "trays", "bags", "boxes", "shelves", "jars"
};

char *
tg_sim_synth_problem(uint64_t seed, uint64_t i, long long *answer)
{
    uint64_t s = tg_sim_hash(TG_SIM_HASH_INIT, &seed, sizeof(seed));
    long long a, b, c, d;
    size_t k;
    char *out;

    s = tg_sim_hash(s, &i, sizeof(i));
    a = tg_sim_range_ll(&s, 10, 99);
    b = tg_sim_range_ll(&s, 2, 9);
    c = tg_sim_range_ll(&s, 3, 19);
    d = tg_sim_range_ll(&s, 1, a);
    k = (size_t) (tg_sim_rng(&s) % 6);
    if (answer != NULL)
        *answer = a + b * c - d;
    if (asprintf(&out, "Sam has %lld %s. Sam gets %lld %s with %lld %s "
                 "in each, then gives away %lld %s. How many %s does Sam "
                 "have now?", a, tg_sim_items[k], b, tg_sim_groups[k], c,
                 tg_sim_items[k], d, tg_sim_items[k], tg_sim_items[k]) < 0)
        return NULL;
    return out;
}

/* The first four integers of the prompt are A, B, C, D; missing ones come
 * from the prompt's hash, so any prompt gets a consistent problem. */
static void
tg_sim_synth_numbers(const char *p, size_t len, uint64_t h, long long v[4])
{
    size_t i = 0;
    int n = 0;

    while (i < len && n < 4) {
        if (p[i] >= '0' && p[i] <= '9') {
            long long x = 0;

            while (i < len && p[i] >= '0' && p[i] <= '9') {
                if (x < 100000000)
                    x = x * 10 + (p[i] - '0');
                i++;
            }
            v[n++] = x;
        } else {
            i++;
        }
    }
    for (; n < 4; n++)
        v[n] = tg_sim_range_ll(&h, n == 0 ? 10 : 2, n == 0 ? 99 : 12);
}

char *
tg_sim_synth_trace(const char *prompt, size_t len, uint64_t seed,
                   uint64_t sample, double error_rate, size_t *out_len)
{
    static const char *const openers[] = { "Wait,", "Alternatively,",
                                           "Hmm," };
    static const char *const checks[] = {
        "let me double-check the multiplication step.",
        "maybe I should recount by adding the groups one at a time.",
        "I should make sure I did not drop the ones that were given away.",
        "let me redo the whole computation from the start to be safe.",
        "is the subtraction applied after the groups are added?",
    };
    struct evbuffer *b = evbuffer_new();
    uint64_t s = tg_sim_hash(TG_SIM_HASH_INIT, prompt, len);
    long long v[4], truth, final, cur;
    int wrong, k, rounds, rc = 0;
    char *out = NULL;

    if (b == NULL)
        return NULL;
    s = tg_sim_hash(s, &seed, sizeof(seed));
    s = tg_sim_hash(s, &sample, sizeof(sample));
    tg_sim_synth_numbers(prompt, len, s, v);
    truth = v[0] + v[1] * v[2] - v[3];
    wrong = (double) (tg_sim_rng(&s) % 1000000) / 1e6 < error_rate;
    final = truth;
    if (wrong)
        final = truth + (tg_sim_rng(&s) % 2 ? 1 : -1)
                * tg_sim_range_ll(&s, 1, 10);
    /* The first attempt is off half the time; checking then converges. */
    cur = tg_sim_rng(&s) % 2 ? truth + tg_sim_range_ll(&s, 1, 9) : truth;
    rounds = wrong ? (int) tg_sim_range_ll(&s, 3, 7)
                   : (int) tg_sim_range_ll(&s, 1, 3);

    rc |= evbuffer_add_printf(b, "Okay, let me work through this problem. "
        "We start with %lld, add %lld groups of %lld, and then take away "
        "%lld.\n\nFirst, %lld groups of %lld make %lld. Adding %lld gives "
        "%lld, and taking away %lld leaves %lld. So the answer is %lld.\n\n",
        v[0], v[1], v[2], v[3], v[1], v[2], v[1] * v[2], v[0],
        v[0] + v[1] * v[2], v[3], cur, cur) < 0;
    for (k = 0; k < rounds; k++) {
        long long next;

        /* Each round moves halfway to where the trace ends up. */
        next = k == rounds - 1 ? final : cur + (final - cur) / 2;
        if (next == cur && k < rounds - 1 && tg_sim_rng(&s) % 2)
            next = final;
        rc |= evbuffer_add_printf(b, "%s %s %lld times %lld is %lld, plus "
            "%lld is %lld, minus %lld gives %lld. So the answer is %lld."
            "\n\n", openers[tg_sim_rng(&s) % 3], checks[tg_sim_rng(&s) % 5],
            v[1], v[2], v[1] * v[2], v[0], v[0] + v[1] * v[2], v[3],
            next, next) < 0;
        cur = next;
    }
    rc |= evbuffer_add_printf(b, "I am confident now. The final answer is "
        "\\boxed{%lld}.\n</think>\n\nWe compute %lld + %lld \u00d7 %lld "
        "\u2212 %lld.\n\nThe answer is \\boxed{%lld}.", final, v[0], v[1],
        v[2], v[3], final) < 0;
    if (rc == 0) {
        *out_len = evbuffer_get_length(b);
        out = malloc(*out_len + 1);
        if (out != NULL) {
            evbuffer_remove(b, out, *out_len);
            out[*out_len] = '\0';
        }
    }
    evbuffer_free(b);
    return out;
}
