/*
 * thinkgate — answer normalization (see answer.h for the contract).
 *
 * Every pass works in place on the caller's buffer and only ever shrinks
 * the text, so normalization needs no memory beyond the output buffer.
 * The passes run in a fixed order: LaTeX noise first, then \text{} and
 * units (which need the spaces still there), then spaces, then the shape
 * of the whole answer (assignment, choice letter, number).
 */
#include "answer.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

typedef struct {
    const char *from;
    const char *to;
} tg__subst_t;

/*
 * Plain substitutions.  Commands ending in a letter only match when the
 * next byte is not a letter, so "\left" never eats "\leftarrow".
 */
static const tg__subst_t tg__substs[] = {
    { "\\left",         "" },
    { "\\right",        "" },
    { "\\displaystyle", "" },
    { "\\dfrac",        "\\frac" },
    { "\\tfrac",        "\\frac" },
    { "\\dbinom",       "\\binom" },
    { "\\tbinom",       "\\binom" },
    { "\\qquad",        " " },
    { "\\quad",         " " },
    { "\\!",            "" },
    { "\\,",            " " },
    { "\\;",            " " },
    { "\\:",            " " },
    { "\\ ",            " " },
    { "~",              " " },
    { "{,}",            "," },      /* 1{,}000 */
    { "^{\\circ}",      "" },
    { "^\\circ",        "" },
    { "\\circ",         "" },
    { "\\degree",       "" },
    { "\xc2\xb0",       "" },       /* U+00B0 degree sign */
    { "\\%",            "" },
    { "%",              "" },
    { "\\$",            "" },
    { "$",              "" },
    { "\\(",            "" },
    { "\\)",            "" },
    { "\\[",            "" },
    { "\\]",            "" },
    { "**",             "" },       /* markdown bold around a phrase */
};

/* Commands whose braced argument is text to keep (or a unit to drop). */
static const char *const tg__text_cmds[] = {
    "\\text", "\\textbf", "\\textit", "\\textrm", "\\textnormal",
    "\\mathrm", "\\mathbf", "\\mathit", "\\mbox", "\\hbox",
};

static int tg__is_alpha(int c);
static size_t tg__erase(char *b, size_t n, size_t pos, size_t count);
static size_t tg__substitute(char *b, size_t n, const tg__subst_t *s);
static size_t tg__match_brace(const char *b, size_t n, size_t open);
static size_t tg__text_pass(char *b, size_t n);
static size_t tg__unit_words(char *b, size_t n);
static size_t tg__strip_spaces(char *b, size_t n);
static size_t tg__strip_wrapping(char *b, size_t n);
static size_t tg__assignment(char *b, size_t n);
static size_t tg__choice(char *b, size_t n);
static size_t tg__fracs(char *b, size_t n);
static size_t tg__number(char *b, size_t n);

static int
tg__is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static size_t
tg__erase(char *b, size_t n, size_t pos, size_t count)
{
    memmove(b + pos, b + pos + count, n - pos - count);
    return n - count;
}

static size_t
tg__substitute(char *b, size_t n, const tg__subst_t *s)
{
    size_t flen = strlen(s->from), tlen = strlen(s->to), i = 0;
    int word = tg__is_alpha((unsigned char) s->from[flen - 1]);

    while (i + flen <= n) {
        if (memcmp(b + i, s->from, flen) != 0
            || (word && i + flen < n
                && tg__is_alpha((unsigned char) b[i + flen])))
        {
            i++;
            continue;
        }
        memcpy(b + i, s->to, tlen);
        n = tg__erase(b, n, i + tlen, flen - tlen);
        i += tlen;
    }
    return n;
}

/* Index of the brace closing the one at `open`, or n when unbalanced. */
static size_t
tg__match_brace(const char *b, size_t n, size_t open)
{
    size_t i, depth = 0;

    for (i = open; i < n; i++) {
        if (b[i] == '\\' && i + 1 < n) {
            i++;
            continue;
        }
        if (b[i] == '{') {
            depth++;
        } else if (b[i] == '}' && --depth == 0) {
            return i;
        }
    }
    return n;
}

/*
 * \text{...} and friends: a group at the very end right after a number
 * ("204 \text{ minutes}", "12\text{cm}^2") is a unit and goes; any other
 * group is replaced by its content ("\text{(B)}" -> "(B)").
 */
static size_t
tg__text_pass(char *b, size_t n)
{
    size_t c, i, open, close, tail, before;

    for (c = 0; c < sizeof(tg__text_cmds) / sizeof(tg__text_cmds[0]); c++) {
        size_t clen = strlen(tg__text_cmds[c]);

        i = 0;
        while (i + clen < n) {
            if (memcmp(b + i, tg__text_cmds[c], clen) != 0
                || tg__is_alpha((unsigned char) b[i + clen]))
            {
                i++;
                continue;
            }
            open = i + clen;
            while (open < n && b[open] == ' ') {
                open++;
            }
            if (open >= n || b[open] != '{'
                || (close = tg__match_brace(b, n, open)) == n)
            {
                i++;
                continue;
            }
            tail = close + 1;
            if (tail + 1 < n && b[tail] == '^' && isdigit((unsigned char)
                                                          b[tail + 1]))
            {
                tail += 2;
            } else if (tail + 3 < n && memcmp(b + tail, "^{", 2) == 0
                       && isdigit((unsigned char) b[tail + 2])
                       && b[tail + 3] == '}')
            {
                tail += 4;
            }
            while (tail < n && (b[tail] == ' ' || b[tail] == '.')) {
                tail++;
            }
            before = i;
            while (before > 0 && b[before - 1] == ' ') {
                before--;
            }
            if (tail == n && before > 0
                && (isdigit((unsigned char) b[before - 1])
                    || b[before - 1] == '}'))
            {
                return before;
            }
            /* Unwrap: drop "}" first so the earlier offsets stay valid. */
            n = tg__erase(b, n, close, 1);
            n = tg__erase(b, n, i, open + 1 - i);
        }
    }
    return n;
}

/*
 * "204 minutes", "12 square units": plain words after a number are a unit.
 * Only words of two letters or more, and never "and"/"or", so "5 and 6"
 * or "2 x" keep their meaning.
 */
static size_t
tg__unit_words(char *b, size_t n)
{
    size_t i = n, words_start, end = n;

    while (end > 0 && (b[end - 1] == ' ' || b[end - 1] == '.')) {
        end--;
    }
    i = end;
    while (i > 0 && (tg__is_alpha((unsigned char) b[i - 1])
                     || b[i - 1] == ' '))
    {
        i--;
    }
    words_start = i;
    while (words_start < end && b[words_start] == ' ') {
        words_start++;
    }
    if (words_start == i || words_start >= end || i == 0
        || !(isdigit((unsigned char) b[i - 1]) || b[i - 1] == '}'))
    {
        return n;   /* no space between number and words, or no number */
    }
    for (size_t w = words_start; w < end;) {
        size_t e = w;

        while (e < end && b[e] != ' ') {
            e++;
        }
        if (e - w < 2 || (e - w == 3 && memcmp(b + w, "and", 3) == 0)
            || (e - w == 2 && memcmp(b + w, "or", 2) == 0))
        {
            return n;
        }
        while (e < end && b[e] == ' ') {
            e++;
        }
        w = e;
    }
    return i;
}

static size_t
tg__strip_spaces(char *b, size_t n)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        if (!isspace((unsigned char) b[i])) {
            b[o++] = b[i];
        }
    }
    return o;
}

/* "{5}" -> "5", and trailing sentence punctuation. */
static size_t
tg__strip_wrapping(char *b, size_t n)
{
    for (;;) {
        size_t before = n;

        while (n > 0 && (b[n - 1] == '.' || b[n - 1] == ','
                         || b[n - 1] == ';'))
        {
            n--;
        }
        if (n >= 2 && b[0] == '{' && tg__match_brace(b, n, 0) == n - 1) {
            n = tg__erase(b, n - 1, 0, 1);
        }
        if (n == before) {
            return n;
        }
    }
}

/*
 * "x=5", "CE=107" -> the value.  Only a short identifier on the left
 * (letters, digits, _, braces, backslash commands) counts as a name whose
 * value is the answer; "a+b=5" is an equation and stays.
 */
static size_t
tg__assignment(char *b, size_t n)
{
    size_t i, eq = n, last_eq = n;

    for (i = 0; i < n; i++) {
        if (b[i] == '=') {
            if (eq == n) {
                eq = i;
            }
            last_eq = i;
        }
    }
    if (eq == n || eq == 0 || eq > 16 || last_eq + 1 >= n
        || !tg__is_alpha((unsigned char) b[0]))
    {
        return n;
    }
    for (i = eq; i < last_eq; i++) {
        if (b[i] == ',' || b[i] == ';') {
            return n;       /* "x=1,y=2" is a tuple of assignments */
        }
    }
    for (i = 0; i < eq; i++) {
        unsigned char c = (unsigned char) b[i];

        if (!(isalnum(c) || c == '_' || c == '{' || c == '}' || c == '\\'
              || c == '\'')) {
            return n;
        }
    }
    return tg__erase(b, n, 0, last_eq + 1);
}

/* "(B)", "B)", "(B)12" -> "B": a multiple-choice label. */
static size_t
tg__choice(char *b, size_t n)
{
    if (n >= 3 && b[0] == '(' && b[1] >= 'A' && b[1] <= 'Z'
        && b[2] == ')')
    {
        b[0] = b[1];
        return 1;
    }
    if (n == 2 && b[0] >= 'A' && b[0] <= 'Z' && b[1] == ')') {
        return 1;
    }
    return n;
}

/* Reads [0-9]+ or {[0-9]+} or one digit at *i; returns digits' span. */
static int
tg__frac_arg(const char *b, size_t n, size_t *i, size_t *s, size_t *e)
{
    if (*i < n && b[*i] == '{') {
        size_t j = *i + 1;

        while (j < n && isdigit((unsigned char) b[j])) {
            j++;
        }
        if (j == *i + 1 || j >= n || b[j] != '}') {
            return 0;
        }
        *s = *i + 1;
        *e = j;
        *i = j + 1;
        return 1;
    }
    if (*i < n && isdigit((unsigned char) b[*i])) {
        *s = *i;
        *e = *i + 1;
        *i += 1;
        return 1;
    }
    return 0;
}

/*
 * Numeric fractions get one spelling, "a/b", whatever the source wrote
 * ("\frac{1}{2}", "\frac12"), and "\sqrt{2}" becomes "\sqrt2".  Both
 * rewrites shrink the text.
 */
static size_t
tg__fracs(char *b, size_t n)
{
    size_t i = 0;

    while (i + 5 < n) {
        size_t j = i + 5, ns, ne, ds, de, nl, dl;

        if (memcmp(b + i, "\\frac", 5) != 0
            || !tg__frac_arg(b, n, &j, &ns, &ne)
            || !tg__frac_arg(b, n, &j, &ds, &de))
        {
            i++;
            continue;
        }
        nl = ne - ns;
        dl = de - ds;
        memmove(b + i, b + ns, nl);
        b[i + nl] = '/';
        memmove(b + i + nl + 1, b + ds, dl);
        n = tg__erase(b, n, i + nl + 1 + dl, j - (i + nl + 1 + dl));
        i += nl + 1 + dl;
    }
    for (i = 0; i + 8 <= n; i++) {
        if (memcmp(b + i, "\\sqrt{", 6) == 0
            && isdigit((unsigned char) b[i + 6]) && b[i + 7] == '}')
        {
            b[i + 5] = b[i + 6];
            n = tg__erase(b, n, i + 6, 2);
        }
    }
    return n;
}

/* A whole-string decimal number in canonical form: "+033.50" -> "33.5". */
static size_t
tg__number(char *b, size_t n)
{
    size_t i = 0, digits = 0, o, group = 0, dot = n;
    int commas = 0, neg = 0;

    if (n > 0 && (b[0] == '+' || b[0] == '-')) {
        neg = b[0] == '-';
        i = 1;
    }
    for (size_t j = i; j < n; j++) {
        if (isdigit((unsigned char) b[j])) {
            digits++;
            group++;
        } else if (b[j] == ',' && dot == n && digits > 0
                   && (commas == 0 ? group <= 3 : group == 3)) {
            commas++;
            group = 0;
        } else if (b[j] == '.' && dot == n && (commas == 0 || group == 3)) {
            dot = j;
            group = 0;
        } else {
            return n;
        }
    }
    if (digits == 0 || (commas > 0 && dot == n && group != 3)
        || (dot != n && dot + 1 == n))
    {
        return n;
    }
    o = 0;
    if (neg) {
        b[o++] = '-';
    }
    for (size_t j = i; j < n; j++) {
        if (b[j] != ',') {
            b[o++] = b[j];
        }
    }
    n = o;
    dot = n;
    for (size_t j = 0; j < n; j++) {
        if (b[j] == '.') {
            dot = j;
        }
    }
    if (dot != n) {
        while (n > dot + 1 && b[n - 1] == '0') {
            n--;
        }
        if (n == dot + 1) {
            n = dot;
        }
    }
    i = neg;
    while (i + 1 < n && b[i] == '0' && b[i + 1] != '.') {
        i++;
    }
    n = tg__erase(b, n, neg, i - neg);
    if (neg && (n == 2 && b[1] == '0')) {
        n = tg__erase(b, n, 0, 1);   /* "-0" */
    }
    return n;
}

int
tg_answer_normalize(const char *in, size_t len, char *out, size_t out_size)
{
    size_t n, i, prev;

    if (in == NULL || out == NULL || out_size == 0) {
        return -EINVAL;
    }
    if (len >= out_size) {
        out[0] = '\0';
        return -ENOSPC;
    }
    memmove(out, in, len);
    n = len;

    /*
     * One pass can make work for another ("\**," loses "**" and becomes
     * "\,"), so rounds repeat until nothing changes: normalizing twice
     * must give what normalizing once gave, or tg_answer_equal on an
     * already normalized answer would disagree with itself.  Every change
     * shrinks the text, so an unchanged length means a fixed point.
     */
    do {
        prev = n;
        for (i = 0; i < sizeof(tg__substs) / sizeof(tg__substs[0]); i++) {
            n = tg__substitute(out, n, &tg__substs[i]);
        }
        n = tg__text_pass(out, n);
        n = tg__unit_words(out, n);
        n = tg__strip_spaces(out, n);
        n = tg__strip_wrapping(out, n);
        n = tg__assignment(out, n);
        n = tg__strip_wrapping(out, n);
        n = tg__choice(out, n);
        n = tg__fracs(out, n);
        n = tg__number(out, n);
    } while (n < prev);
    out[n] = '\0';
    return (int) n;
}
