/*
 * thinkgate — answer extraction (see answer.h for the rules).
 *
 * Boxes are found by one byte-at-a-time scanner so the streamed and the
 * whole-text paths can never disagree; the phrase fallback only runs on
 * whole texts, where the final-answer part is known.
 */
#include "answer.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

enum {
    TG__SCAN_OUT = 0,     /* plain text */
    TG__SCAN_KW,          /* a keyword just matched; next byte decides */
    TG__SCAN_AFTER,       /* spaces after the keyword */
    TG__SCAN_IN,          /* inside the braces */
    TG__SCAN_TOKEN        /* "\boxed 5": a brace-less token */
};

static const char *const tg__box_keywords[2] = { "\\boxed", "\\fbox" };

typedef struct {
    const char *name;      /* benchmark name prefix, case-insensitive */
    tg_answer_format_e format;
    long long int_min;
    long long int_max;
    unsigned choices;
} tg__bench_format_t;

/* Known answer formats; longer prefixes before shorter ones. */
static const tg__bench_format_t tg__bench_formats[] = {
    { "aime",     TG_ANSWER_INTEGER, 0, 999, 0 },
    { "gsm8k",    TG_ANSWER_INTEGER, LLONG_MIN, LLONG_MAX, 0 },
    { "gpqa",     TG_ANSWER_CHOICE, 0, 0, 4 },
    { "mmlu-pro", TG_ANSWER_CHOICE, 0, 0, 10 },
    { "mmlu_pro", TG_ANSWER_CHOICE, 0, 0, 10 },
    { "mmlu",     TG_ANSWER_CHOICE, 0, 0, 4 },
    { "arc",      TG_ANSWER_CHOICE, 0, 0, 5 },
    { "math",     TG_ANSWER_ANY, 0, 0, 0 },
    { "amc",      TG_ANSWER_ANY, 0, 0, 0 },
};

typedef struct {
    const char *text;      /* lower case; matched case-insensitively */
    int heading;           /* the value may start on a following line */
    int choice_only;       /* only for multiple choice: "option C" */
} tg__phrase_t;

/* Phrases announcing a final answer, tried at every position from the
 * end of the final-answer part backwards. */
static const tg__phrase_t tg__phrases[] = {
    { "answer is",    0, 0 },  /* "the (final) answer is 204." */
    { "answer:",      0, 0 },  /* "Answer: B" */
    { "answer**:",    0, 0 },  /* "**Answer**: B" */
    { "final answer", 1, 0 },  /* "**Final Answer**" then the value */
    { "option",       0, 1 },  /* "corresponds to **option C**" */
    { "choice",       0, 1 },  /* "the correct choice is (B)" */
};

/* Where a reasoning model's final answer starts: the end of its thinking
 * (DeepSeek-R1 and Qwen style), or the final channel of OpenAI's harmony
 * format (gpt-oss), whose analysis channel is the thinking. */
static const char *const tg__final_markers[] = {
    "</think>", "<|channel|>final<|message|>",
};

/* Words that, following an option letter in its sentence, say the option
 * is being ruled out rather than chosen ("Option C incorrectly pairs"). */
static const char *const tg__ruled_out[] = {
    "incorrect", "wrong", "not ", "fail", "cannot", "eliminat", "unlikely",
    "suggest", "would be", "could be",
};

/* A value whose sentence goes on with one of these is a guess the model
 * doubts ("the answer is 17, but that seems not"), not an answer. */
static const char *const tg__hedges[] = {
    "but", "though", "although", "or", "unless", "maybe", "perhaps",
};

/* Phrase values with this many plain words are prose, not answers. */
#define TG__PROSE_WORDS  3

static void tg__scan_byte(tg_answer_scan_t *s, unsigned char c);
static int tg__box_fallback(const char *box, size_t len,
                            const tg_answer_opts_t *opts, char *norm,
                            size_t size);
static void tg__scan_complete(tg_answer_scan_t *s);
static int tg__phrase_value(const char *t, size_t len, size_t pos,
                            const tg__phrase_t *ph, size_t *vs, size_t *ve);
static int tg__is_hedge(const char *t, size_t len);
static int tg__is_prose(const char *v, size_t len);
static int tg__phrase_answer(const char *t, size_t len,
                             const tg_answer_opts_t *opts, char *out,
                             size_t out_size);
static const char *tg__memmem_last(const char *h, size_t hl, const char *n);
static size_t tg__uspace(const char *v, size_t len);
static int tg__choice_letter(const char *v, size_t len, size_t *after);
static size_t tg__words_then_is(const char *t, size_t len, size_t i);
static int tg__choice_phrase(const char *t, size_t len, size_t vs,
                             const tg__phrase_t *ph,
                             const tg_answer_opts_t *opts);
static const char *tg__final_part(const char *text, size_t len);
static int tg__rational(const char *s, __int128 *num, __int128 *den);

void
tg_answer_opts_default(tg_answer_opts_t *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->format = TG_ANSWER_ANY;
}

int
tg_answer_opts_for_bench(const char *bench, tg_answer_opts_t *opts)
{
    size_t i;
    unsigned flags;

    if (bench == NULL || opts == NULL) {
        return -EINVAL;
    }
    flags = opts->flags;
    tg_answer_opts_default(opts);
    opts->flags = flags;
    for (i = 0; i < sizeof(tg__bench_formats) / sizeof(tg__bench_formats[0]);
         i++)
    {
        const tg__bench_format_t *f = &tg__bench_formats[i];

        if (strncasecmp(bench, f->name, strlen(f->name)) == 0) {
            opts->format = f->format;
            opts->int_min = f->int_min;
            opts->int_max = f->int_max;
            opts->choices = f->choices;
            return 0;
        }
    }
    return -ENOENT;
}

/* The option label of letter at t[i]: "(X)" anywhere, followed by a
 * space, or at a line's start "X)", "X." or "X:" followed by a space.
 * Returns the offset past it, or 0. */
static size_t
tg__option_label(const char *t, size_t len, size_t i, char letter)
{
    size_t j = i;

    if (t[i] == '(') {
        /* "(E)-pent-2-en-1-ol" is a stereo descriptor, not option E. */
        return i + 2 < len && t[i + 1] == letter && t[i + 2] == ')'
               && (i + 3 == len || isspace((unsigned char) t[i + 3]))
               ? i + 3 : 0;
    }
    while (j > 0 && (t[j - 1] == ' ' || t[j - 1] == '\t')) {
        j--;
    }
    if (t[i] != letter || (j > 0 && t[j - 1] != '\n') || i + 2 >= len
        || strchr(").:", t[i + 1]) == NULL || t[i + 2] != ' ')
    {
        return 0;
    }
    return i + 2;
}

int
tg_answer_opts_for_problem(const char *problem, size_t len,
                           tg_answer_opts_t *opts)
{
    size_t i = 0, next;
    unsigned found = 0;

    if (problem == NULL || opts == NULL) {
        return -EINVAL;
    }
    while (found < 26) {
        for (next = 0; i < len; i++) {
            next = tg__option_label(problem, len, i, (char) ('A' + found));
            if (next != 0) {
                break;
            }
        }
        if (next == 0) {
            break;
        }
        found++;
        i = next;
    }
    if (found < 2) {
        return 0;
    }
    opts->format = TG_ANSWER_CHOICE;
    opts->choices = found;
    return (int) found;
}

int
tg_answer_fits(const char *norm, size_t len, const tg_answer_opts_t *opts)
{
    size_t i;
    __int128 v = 0;
    int neg;

    if (norm == NULL || len == 0) {
        return 0;
    }
    if (opts == NULL || opts->format == TG_ANSWER_ANY) {
        return 1;
    }
    if (opts->format == TG_ANSWER_CHOICE) {
        return len == 1 && norm[0] >= 'A'
               && norm[0] < 'A' + (int) (opts->choices ? opts->choices : 26);
    }
    neg = norm[0] == '-';
    if ((size_t) neg == len || len - neg > 19) {
        return 0;
    }
    for (i = neg; i < len; i++) {
        if (!isdigit((unsigned char) norm[i])) {
            return 0;
        }
        v = v * 10 + (norm[i] - '0');
    }
    if (neg) {
        v = -v;
    }
    return v >= opts->int_min && v <= opts->int_max;
}

void
tg_answer_scan_init(tg_answer_scan_t *scan, const tg_answer_opts_t *opts)
{
    memset(scan, 0, sizeof(*scan));
    if (opts != NULL) {
        scan->opts = *opts;
    } else {
        tg_answer_opts_default(&scan->opts);
    }
}

/*
 * A box whose whole content does not fit a strict format may still hold
 * the answer: "\boxed{147 + 147 = 294}" ends an integer derivation with
 * its value, "\boxed{\text{(B) 3536}}" names an option and repeats it.
 * Only formats that say what an answer looks like get this second look.
 */
static int
tg__box_fallback(const char *box, size_t len, const tg_answer_opts_t *opts,
                 char *norm, size_t size)
{
    size_t i, eq = len, depth = 0;
    int letter;

    if (opts->format == TG_ANSWER_CHOICE) {
        letter = tg__choice_letter(box, len, NULL);
        if (letter == 0) {
            return 0;
        }
        norm[0] = (char) letter;
        norm[1] = '\0';
        return 1;
    }
    if (opts->format != TG_ANSWER_INTEGER) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (box[i] == '{') {
            depth++;
        } else if (box[i] == '}' && depth > 0) {
            depth--;
        } else if (box[i] == '=' && depth == 0) {
            eq = i;
        } else if ((box[i] == ',' || box[i] == ';') && depth == 0) {
            return 0;       /* "a = 1, b = 2": a list, not one value */
        }
    }
    if (eq == len) {
        return 0;
    }
    return tg_answer_normalize(box + eq + 1, len - eq - 1, norm, size);
}

static void
tg__scan_complete(tg_answer_scan_t *s)
{
    char norm[TG_ANSWER_MAX];
    int n;

    s->boxes++;
    s->state = TG__SCAN_OUT;
    if (s->overflow || s->cur_len == 0) {
        return;
    }
    n = tg_answer_normalize(s->cur, s->cur_len, norm, sizeof(norm));
    if (n > 0 && !tg_answer_fits(norm, (size_t) n, &s->opts)) {
        n = tg__box_fallback(s->cur, s->cur_len, &s->opts, norm,
                             sizeof(norm));
    }
    if (n > 0 && tg_answer_fits(norm, (size_t) n, &s->opts)) {
        memcpy(s->last, norm, (size_t) n + 1);
        s->last_len = (size_t) n;
        s->last_end = s->offset;
    }
}

static void
tg__scan_append(tg_answer_scan_t *s, unsigned char c)
{
    if (s->cur_len + 1 < TG_ANSWER_MAX) {
        s->cur[s->cur_len++] = (char) c;
    } else {
        s->overflow = 1;
    }
}

static void
tg__scan_start(tg_answer_scan_t *s, int state)
{
    s->state = (unsigned char) state;
    s->depth = 1;
    s->cur_len = 0;
    s->overflow = 0;
    s->escaped = 0;
}

static void
tg__scan_byte(tg_answer_scan_t *s, unsigned char c)
{
    int k;

    switch (s->state) {
    case TG__SCAN_KW:
        if (c == '{') {
            tg__scan_start(s, TG__SCAN_IN);
            return;
        }
        if (c == ' ') {
            s->state = TG__SCAN_AFTER;
            return;
        }
        s->state = TG__SCAN_OUT;    /* "\boxedx" is another command */
        break;
    case TG__SCAN_AFTER:
        if (c == ' ') {
            return;
        }
        if (c == '{') {
            tg__scan_start(s, TG__SCAN_IN);
            return;
        }
        if (isalnum(c) || c == '-') {
            tg__scan_start(s, TG__SCAN_TOKEN);
            tg__scan_append(s, c);
            return;
        }
        s->state = TG__SCAN_OUT;
        break;
    case TG__SCAN_IN:
        if (s->escaped) {
            s->escaped = 0;
        } else if (c == '\\') {
            s->escaped = 1;
        } else if (c == '{') {
            s->depth++;
        } else if (c == '}' && --s->depth == 0) {
            tg__scan_complete(s);
            return;
        }
        tg__scan_append(s, c);
        return;
    case TG__SCAN_TOKEN:
        if (isalnum(c) || (c != '\0' && strchr(".-+/^_", c) != NULL)) {
            tg__scan_append(s, c);
            return;
        }
        tg__scan_complete(s);
        break;
    default:
        break;
    }

    /* Plain text: advance both keyword matchers.  Each keyword has one
     * backslash, at its start, so a mismatch restarts at 1 on '\' and at
     * 0 otherwise. */
    for (k = 0; k < 2; k++) {
        const char *kw = tg__box_keywords[k];

        if ((unsigned char) kw[s->kw_match[k]] == c) {
            s->kw_match[k]++;
        } else {
            s->kw_match[k] = c == '\\';
        }
        if (kw[s->kw_match[k]] == '\0') {
            s->kw_match[0] = s->kw_match[1] = 0;
            s->state = TG__SCAN_KW;
            return;
        }
    }
}

void
tg_answer_scan_feed(tg_answer_scan_t *scan, const char *delta, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        scan->offset++;
        tg__scan_byte(scan, (unsigned char) delta[i]);
    }
}

void
tg_answer_scan_finish(tg_answer_scan_t *scan)
{
    if (scan->state == TG__SCAN_TOKEN) {
        tg__scan_complete(scan);
    }
}

int
tg_answer_last_boxed(const char *text, size_t len, size_t *start,
                     size_t *end)
{
    size_t p = len;

    if (text == NULL) {
        return 0;
    }
    while (p-- > 0) {
        size_t k, kl = 0, i, depth, open;

        if (text[p] != '\\') {
            continue;
        }
        for (k = 0; k < 2; k++) {
            kl = strlen(tg__box_keywords[k]);
            if (p + kl <= len && memcmp(text + p, tg__box_keywords[k], kl)
                                 == 0) {
                break;
            }
        }
        if (k == 2) {
            continue;
        }
        i = p + kl;
        while (i < len && text[i] == ' ') {
            i++;
        }
        if (i >= len || text[i] != '{') {
            continue;
        }
        open = i;
        for (depth = 1, i++; i < len; i++) {
            if (text[i] == '\\') {
                i++;
            } else if (text[i] == '{') {
                depth++;
            } else if (text[i] == '}' && --depth == 0) {
                break;
            }
        }
        if (i < len) {
            *start = open + 1;
            *end = i;
            return 1;
        }
    }
    return 0;
}

static const char *
tg__memmem_last(const char *h, size_t hl, const char *n)
{
    size_t nl = strlen(n), p;

    for (p = hl >= nl ? hl - nl + 1 : 0; p-- > 0;) {
        if (memcmp(h + p, n, nl) == 0) {
            return h + p;
        }
    }
    return NULL;
}

/*
 * The value after a phrase at pos: from the first byte that is not
 * decoration (spaces, '*', ':', '#', and for headings newlines) to the end
 * of the line, the end of the sentence (". " or a final '.'), or a clause
 * going on (", but ...", ", which ...").
 */
static int
tg__phrase_value(const char *t, size_t len, size_t pos,
                 const tg__phrase_t *ph, size_t *vs, size_t *ve)
{
    size_t i = pos + strlen(ph->text), e;
    int lines = 0, marked = 0;

    while (i < len && (strchr(" \t*:#", t[i]) != NULL
                       || (ph->heading && t[i] == '\n' && ++lines <= 3)))
    {
        marked |= t[i] != ' ' && t[i] != '\t';
        i++;
    }
    /* A heading is set off from its value ("Final Answer: 5", "**Final
     * Answer**\n5"); "not reached a final answer yet" runs on in prose. */
    if (ph->heading && !marked) {
        return 0;
    }
    for (e = i; e < len && t[e] != '\n'; e++) {
        if (t[e] == '.' && (e + 1 == len || isspace((unsigned char) t[e + 1])))
        {
            break;
        }
        if (t[e] == ',' && e + 2 < len && t[e + 1] == ' '
            && islower((unsigned char) t[e + 2]))
        {
            if (tg__is_hedge(t + e + 2, len - e - 2)) {
                return 0;
            }
            break;
        }
    }
    if (e == i || e - i >= TG_ANSWER_MAX) {
        return 0;
    }
    *vs = i;
    *ve = e;
    return 1;
}

static int
tg__is_hedge(const char *t, size_t len)
{
    size_t k, w = 0;

    while (w < len && isalpha((unsigned char) t[w])) {
        w++;
    }
    for (k = 0; k < sizeof(tg__hedges) / sizeof(tg__hedges[0]); k++) {
        if (strlen(tg__hedges[k]) == w && strncmp(t, tg__hedges[k], w) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Counts plain words (2+ letters, not a \command) in a phrase value. */
static int
tg__is_prose(const char *v, size_t len)
{
    size_t i = 0;
    int words = 0;

    while (i < len) {
        size_t s = i;

        if (!isalpha((unsigned char) v[i])) {
            i++;
            continue;
        }
        while (i < len && isalpha((unsigned char) v[i])) {
            i++;
        }
        if (i - s >= 2 && (s == 0 || v[s - 1] != '\\')
            && ++words >= TG__PROSE_WORDS)
        {
            return 1;
        }
    }
    return 0;
}

int
tg_answer_final_split(const char *text, size_t len, size_t *think_len,
                      size_t *final_off)
{
    static const char harmony_end[] = "<|end|><|start|>assistant";
    const char *best = NULL, *m;
    size_t k, best_k = 0, mlen = 0, start;

    if (text == NULL) {
        return 0;
    }
    for (k = 0; k < sizeof(tg__final_markers) / sizeof(tg__final_markers[0]);
         k++)
    {
        m = tg__memmem_last(text, len, tg__final_markers[k]);
        if (m != NULL && (best == NULL || m > best)) {
            best = m;
            best_k = k;
            mlen = strlen(tg__final_markers[k]);
        }
    }
    if (best == NULL) {
        return 0;
    }
    start = (size_t) (best - text);
    if (best_k > 0 && start >= sizeof(harmony_end) - 1
        && memcmp(best - (sizeof(harmony_end) - 1), harmony_end,
                  sizeof(harmony_end) - 1) == 0)
    {
        start -= sizeof(harmony_end) - 1;
    }
    if (think_len != NULL) {
        *think_len = start;
    }
    if (final_off != NULL) {
        *final_off = (size_t) (best - text) + mlen;
    }
    return 1;
}

/* The text just past the last end-of-thinking marker; NULL when none. */
static const char *
tg__final_part(const char *text, size_t len)
{
    size_t off;

    return tg_answer_final_split(text, len, NULL, &off) ? text + off : NULL;
}

/*
 * The bytes of a Unicode space at v in UTF-8, or 0: no-break U+00A0, the
 * typographic spaces U+2000..U+200A, narrow no-break U+202F (gpt-oss
 * writes "(D)\u202f3"), U+205F and the ideographic U+3000.
 */
static size_t
tg__uspace(const char *v, size_t len)
{
    const unsigned char *u = (const unsigned char *) v;

    if (len >= 2 && u[0] == 0xC2 && u[1] == 0xA0) {
        return 2;
    }
    if (len < 3) {
        return 0;
    }
    if ((u[0] == 0xE2 && u[1] == 0x80
         && ((u[2] >= 0x80 && u[2] <= 0x8A) || u[2] == 0xAF))
        || (u[0] == 0xE2 && u[1] == 0x81 && u[2] == 0x9F)
        || (u[0] == 0xE3 && u[1] == 0x80 && u[2] == 0x80))
    {
        return 3;
    }
    return 0;
}

/*
 * An option letter standing alone at the start of v: "C", "(C)", "C)",
 * "**C**", "\text{(C)}", "$C$", followed by anything that is not part of
 * a word (a Unicode space is not: "(D)\u202f3").  A capital that starts
 * a word ("Answer", "Carbon", "Cé") is not one, nor is a bare "A"
 * followed by a lower-case word ("A mixture of ...").  Returns the
 * letter, or 0; *after gets the offset past it.
 */
static int
tg__choice_letter(const char *v, size_t len, size_t *after)
{
    static const char *const wraps[] = {
        "\\text{", "\\textbf{", "\\mathrm{", "\\mathbf{",
    };
    size_t i = 0, k, wl, sp;
    int paren = 0, letter;

    for (;;) {
        for (;;) {
            if (i < len && strchr(" \t*$:", v[i]) != NULL) {
                i++;
            } else if ((sp = tg__uspace(v + i, len - i)) > 0) {
                i += sp;
            } else {
                break;
            }
        }
        for (k = 0; k < sizeof(wraps) / sizeof(wraps[0]); k++) {
            wl = strlen(wraps[k]);
            if (len - i >= wl && memcmp(v + i, wraps[k], wl) == 0) {
                i += wl;
                break;
            }
        }
        if (k == sizeof(wraps) / sizeof(wraps[0])) {
            break;
        }
    }
    if (i < len && v[i] == '(') {
        paren = 1;
        i++;
    }
    if (i >= len || v[i] < 'A' || v[i] > 'Z') {
        return 0;
    }
    letter = v[i++];
    if (i < len && v[i] == ')') {
        paren = 1;
        i++;
    } else if (paren) {
        return 0;
    }
    sp = i < len && v[i] == ' ' ? 1 : tg__uspace(v + i, len - i);
    if (i < len && sp == 0
        && (isalnum((unsigned char) v[i]) || v[i] == '_'
            || (unsigned char) v[i] >= 0x80))
    {
        return 0;
    }
    if (!paren && sp > 0 && i + sp < len
        && islower((unsigned char) v[i + sp]))
    {
        return 0;
    }
    if (after != NULL) {
        *after = i;
    }
    return letter;
}

/* Words of a choice phrase before its verb ("choice among the given
 * options is (D)"): at most this many lower-case words, then "is". */
#define TG__CHOICE_WORDS  6

/*
 * After "choice" or "option" at t[i]: up to TG__CHOICE_WORDS lower-case
 * words (an 's' glued on counts: "options") then "is" and a space, all on
 * one clause.  Returns the offset past "is ", or 0.  A letter, a digit or
 * any punctuation on the way ends the search: "option C is ...", "options
 * (A-D) match nothing" and "choice, which is" are not this.
 */
static size_t
tg__words_then_is(const char *t, size_t len, size_t i)
{
    unsigned words = 0;
    size_t s;

    while (words <= TG__CHOICE_WORDS) {
        while (i < len && t[i] == ' ') {
            i++;
        }
        s = i;
        while (i < len && islower((unsigned char) t[i])) {
            i++;
        }
        if (i == s || i >= len || t[i] != ' ') {
            return 0;
        }
        if (i - s == 2 && t[s] == 'i' && t[s + 1] == 's') {
            return i + 1;
        }
        words++;
    }
    return 0;
}

/*
 * The option a phrase at t[vs] names, for a multiple-choice answer: after
 * decoration (and "is"), an option letter that fits; after "choice" or
 * "option" a few words may come before the "is" (tg__words_then_is).  For
 * "option" and "choice" the rest of the sentence must not list more
 * options ("option A and D") or rule the one named out ("option C
 * incorrectly pairs").
 */
static int
tg__choice_phrase(const char *t, size_t len, size_t vs,
                  const tg__phrase_t *ph, const tg_answer_opts_t *opts)
{
    size_t i = vs, e, after = 0, k, words;
    int lines = 0, letter;
    char c;

    while (i < len && (strchr(" \t*:#", t[i]) != NULL
                       || (ph->heading && t[i] == '\n' && ++lines <= 3)))
    {
        i++;
    }
    words = i;
    if (len - i >= 3 && strncasecmp(t + i, "is ", 3) == 0) {
        i += 3;
    }
    letter = tg__choice_letter(t + i, len - i, &after);
    if (letter == 0 && ph->choice_only
        && (k = tg__words_then_is(t, len, words)) > 0)
    {
        /* "the correct choice among the given options is (D)" */
        i = k;
        letter = tg__choice_letter(t + i, len - i, &after);
    }
    c = (char) letter;
    if (letter == 0 || !tg_answer_fits(&c, 1, opts)) {
        return 0;
    }
    if (!ph->choice_only) {
        return letter;
    }
    i += after;
    for (e = i; e < len && e - i < 80 && t[e] != '\n'; e++) {
        if (t[e] == '.' && (e + 1 == len || isspace((unsigned char) t[e + 1])))
        {
            break;
        }
    }
    for (; i < e; i++) {
        for (k = 0; k < sizeof(tg__ruled_out) / sizeof(tg__ruled_out[0]);
             k++)
        {
            size_t wl = strlen(tg__ruled_out[k]);

            if (e - i >= wl && strncasecmp(t + i, tg__ruled_out[k], wl) == 0)
            {
                return 0;
            }
        }
        if ((t[i] == ',' || t[i] == '/'
             || (e - i > 4 && (strncmp(t + i, " and", 4) == 0
                               || strncmp(t + i, " or ", 4) == 0)))
            && tg__choice_letter(t + i + (t[i] == ' ' ? 4 : 1),
                                 e - i - (t[i] == ' ' ? 4 : 1), NULL) != 0)
        {
            return 0;
        }
    }
    return letter;
}

static int
tg__phrase_answer(const char *t, size_t len, const tg_answer_opts_t *opts,
                  char *out, size_t out_size)
{
    char norm[TG_ANSWER_MAX];
    size_t p, k, vs, ve;
    int n;

    for (p = len; p-- > 0;) {
        for (k = 0; k < sizeof(tg__phrases) / sizeof(tg__phrases[0]); k++) {
            const tg__phrase_t *ph = &tg__phrases[k];
            size_t pl = strlen(ph->text);

            if (p + pl > len || strncasecmp(t + p, ph->text, pl) != 0) {
                continue;
            }
            if (opts != NULL && opts->format == TG_ANSWER_CHOICE) {
                n = tg__choice_phrase(t, len, p + pl, ph, opts);
                if (n == 0) {
                    continue;
                }
                if (out_size < 2) {
                    return -ENOSPC;
                }
                out[0] = (char) n;
                out[1] = '\0';
                return 1;
            }
            if (ph->choice_only
                || !tg__phrase_value(t, len, p, ph, &vs, &ve)
                || tg__is_prose(t + vs, ve - vs))
            {
                continue;
            }
            n = tg_answer_normalize(t + vs, ve - vs, norm, sizeof(norm));
            if (n <= 0 || !tg_answer_fits(norm, (size_t) n, opts)) {
                continue;
            }
            if ((size_t) n >= out_size) {
                return -ENOSPC;
            }
            memcpy(out, norm, (size_t) n + 1);
            return n;
        }
    }
    return 0;
}

int
tg_answer_extract_opts(const char *text, size_t len,
                       const tg_answer_opts_t *opts, char *out,
                       size_t out_size)
{
    tg_answer_scan_t scan;
    const char *final;
    size_t final_len;

    if (text == NULL || out == NULL || out_size == 0) {
        return -EINVAL;
    }
    out[0] = '\0';
    tg_answer_scan_init(&scan, opts);
    tg_answer_scan_feed(&scan, text, len);
    tg_answer_scan_finish(&scan);
    if (scan.last_len > 0) {
        if (scan.last_len >= out_size) {
            return -ENOSPC;
        }
        memcpy(out, scan.last, scan.last_len + 1);
        return (int) scan.last_len;
    }
    if (opts != NULL && (opts->flags & TG_ANSWER_F_BOXED_ONLY)) {
        return 0;
    }
    final = tg__final_part(text, len);
    if (final != NULL) {
        final_len = len - (size_t) (final - text);
    } else if (opts != NULL && (opts->flags & TG_ANSWER_F_REASONING)) {
        return 0;
    } else {
        final = text;
        final_len = len;
    }
    return tg__phrase_answer(final, final_len, opts, out, out_size);
}

int
tg_answer_extract(const char *text, size_t len, char *out, size_t out_size)
{
    return tg_answer_extract_opts(text, len, NULL, out, out_size);
}

int
tg_answer_extract_split(const char *reasoning, size_t rlen,
                        const char *content, size_t clen,
                        const tg_answer_opts_t *opts, char *out,
                        size_t out_size)
{
    tg_answer_opts_t o;
    int r = 0;

    if ((reasoning == NULL && rlen > 0) || (content == NULL && clen > 0)
        || out == NULL || out_size == 0)
    {
        return -EINVAL;
    }
    out[0] = '\0';
    if (opts != NULL) {
        o = *opts;
    } else {
        tg_answer_opts_default(&o);
    }
    if (rlen == 0) {
        return clen > 0 ? tg_answer_extract_opts(content, clen, &o, out,
                                                 out_size)
                        : 0;
    }
    /* Boxes first, the content's before the thinking's: they come last in
     * the joined text.  Then phrases, in the content only. */
    o.flags |= TG_ANSWER_F_BOXED_ONLY;
    if (clen > 0) {
        r = tg_answer_extract_opts(content, clen, &o, out, out_size);
    }
    if (r == 0) {
        r = tg_answer_extract_opts(reasoning, rlen, &o, out, out_size);
    }
    if (r == 0 && clen > 0) {
        o.flags &= ~(TG_ANSWER_F_BOXED_ONLY | TG_ANSWER_F_REASONING);
        r = tg_answer_extract_opts(content, clen, &o, out, out_size);
    }
    return r;
}

/* A normalized "-12", "3.25" or "7/8" as num/den; 0 when not one. */
static int
tg__rational(const char *s, __int128 *num, __int128 *den)
{
    __int128 n = 0, d = 1, dd = 0;
    int neg = 0, digits = 0, frac = 0;

    if (*s == '-') {
        neg = 1;
        s++;
    }
    for (; *s != '\0'; s++) {
        if (isdigit((unsigned char) *s)) {
            if (++digits > 18) {
                return 0;
            }
            if (frac == 2) {
                dd = dd * 10 + (*s - '0');
            } else {
                n = n * 10 + (*s - '0');
                if (frac == 1) {
                    d *= 10;
                }
            }
        } else if (*s == '.' && frac == 0) {
            frac = 1;
        } else if (*s == '/' && frac == 0 && digits > 0) {
            frac = 2;
            digits = 0;
        } else {
            return 0;
        }
    }
    if (digits == 0 || (frac == 2 && dd == 0)) {
        return 0;
    }
    if (frac == 2) {
        d = dd;
    }
    *num = neg ? -n : n;
    *den = d;
    return 1;
}

int
tg_answer_equal(const char *a, const char *b)
{
    char na[TG_ANSWER_MAX], nb[TG_ANSWER_MAX];
    __int128 an, ad, bn, bd;
    int la, lb;

    if (a == NULL || b == NULL) {
        return 0;
    }
    la = tg_answer_normalize(a, strlen(a), na, sizeof(na));
    lb = tg_answer_normalize(b, strlen(b), nb, sizeof(nb));
    if (la < 0 || lb < 0) {
        return strcmp(a, b) == 0;
    }
    if (la == 0 || lb == 0) {
        return 0;           /* no answer never equals anything */
    }
    if (la == lb && memcmp(na, nb, (size_t) la) == 0) {
        return 1;
    }
    return tg__rational(na, &an, &ad) && tg__rational(nb, &bn, &bd)
           && an * bd == bn * ad;
}
