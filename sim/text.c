/*
 * Text helpers: the pre-tokenizer that cuts a recorded output into exactly
 * its recorded token count, whitespace normalization, answer extraction and
 * JSON string escaping.
 *
 * Tokens never split a UTF-8 sequence.  The pre-tokenizer sees words (with
 * one leading space), whitespace runs and single punctuation marks, like a
 * BPE tokenizer's first pass; a recording has more tokens than that, so the
 * longest pieces are split further, in proportion to their length.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "sim.h"

enum { TG_SIM_C_SPACE, TG_SIM_C_WORD, TG_SIM_C_PUNCT };

static int tg_sim_is_word(const char *s, size_t len);
static int tg_sim_class(unsigned char c);
static size_t tg_sim_decode(const char *text, size_t len, uint32_t *off);
static size_t tg_sim_piece_starts(const char *text, const uint32_t *off,
                                  size_t n_cp, uint32_t *ps);

uint64_t
tg_sim_hash(uint64_t h, const void *p, size_t len)
{
    const unsigned char *s = p;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static int
tg_sim_class(unsigned char c)
{
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
        return TG_SIM_C_SPACE;
    /* Non-ASCII code points (first byte >= 0x80) count as letters. */
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
        || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80)
        return TG_SIM_C_WORD;
    return TG_SIM_C_PUNCT;
}

/* Code point start offsets into off[0..n], off[n] = len.  A stray
 * continuation byte counts as its own code point so nothing is lost. */
static size_t
tg_sim_decode(const char *text, size_t len, uint32_t *off)
{
    size_t i = 0, n = 0;

    while (i < len) {
        unsigned char c = (unsigned char) text[i];
        size_t w = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3
                 : c >= 0xc0 ? 2 : 1;
        size_t j;

        if (off != NULL)
            off[n] = (uint32_t) i;
        for (j = 1; j < w && i + j < len; j++) {
            if (((unsigned char) text[i + j] & 0xc0) != 0x80)
                break;
        }
        i += j;
        n++;
    }
    if (off != NULL)
        off[n] = (uint32_t) len;
    return n;
}

static size_t
tg_sim_piece_starts(const char *text, const uint32_t *off, size_t n_cp,
                    uint32_t *ps)
{
    size_t i, n = 0;
    int prev = -1, prev2 = -1;

    for (i = 0; i < n_cp; i++) {
        int c = tg_sim_class((unsigned char) text[off[i]]);
        int cont = 0;

        if (i > 0) {
            if (c == TG_SIM_C_SPACE && prev == TG_SIM_C_SPACE)
                cont = 1;
            else if (c == TG_SIM_C_WORD && prev == TG_SIM_C_WORD)
                cont = 1;
            else if (c == TG_SIM_C_WORD && text[off[i - 1]] == ' '
                     && prev2 != TG_SIM_C_SPACE)
                cont = 1;          /* " word": the space joins the word */
        }
        if (!cont) {
            if (ps != NULL)
                ps[n] = (uint32_t) i;
            n++;
        }
        prev2 = prev;
        prev = c;
    }
    return n;
}

uint32_t
tg_sim_count_pieces(const char *text, size_t len)
{
    uint32_t *off;
    size_t n_cp, n;

    n_cp = tg_sim_decode(text, len, NULL);
    off = malloc((n_cp + 1) * sizeof(*off));
    if (off == NULL)
        return (uint32_t) (len / 4 + 1);
    tg_sim_decode(text, len, off);
    n = tg_sim_piece_starts(text, off, n_cp, NULL);
    free(off);
    return (uint32_t) n;
}

int
tg_sim_cut(const char *text, size_t len, uint32_t k, uint32_t *starts)
{
    uint32_t *off = NULL, *ps = NULL;
    size_t n_cp, P, i, t = 0;

    if (k == 0)
        return 0;
    n_cp = tg_sim_decode(text, len, NULL);
    off = malloc((n_cp + 1) * sizeof(*off));
    ps = malloc((n_cp + 1) * sizeof(*ps));
    if (off == NULL || ps == NULL) {
        free(off);
        free(ps);
        return -ENOMEM;
    }
    tg_sim_decode(text, len, off);
    P = tg_sim_piece_starts(text, off, n_cp, ps);
    ps[P] = (uint32_t) n_cp;

    if (k >= n_cp) {
        /* More tokens than code points: one each, then empty tokens. */
        for (i = 0; i < k; i++)
            starts[i] = i < n_cp ? off[i] : (uint32_t) len;
    } else if (k >= P) {
        /* Split pieces further; piece i takes a share of the extra
         * splits proportional to its length beyond one code point. */
        size_t extra = k - P, cap_total = n_cp - P, cum = 0;

        for (i = 0; i < P; i++) {
            size_t plen = ps[i + 1] - ps[i], cap = plen - 1, s, j;

            s = cap_total == 0 ? 0
                : (size_t) (((unsigned long long) (cum + cap) * extra)
                            / cap_total
                            - ((unsigned long long) cum * extra)
                              / cap_total);
            cum += cap;
            for (j = 0; j <= s; j++)
                starts[t++] = off[ps[i] + (j * plen) / (s + 1)];
        }
    } else {
        /* Fewer tokens than pieces: group neighbouring pieces. */
        for (i = 0; i < k; i++)
            starts[i] = off[ps[(size_t) (((unsigned long long) i * P) / k)]];
    }
    free(off);
    free(ps);
    return 0;
}

int
tg_sim_plan_build(tg_sim_plan_t *plan, const char *text, size_t len,
                  uint32_t n_tokens, int split_think)
{
    const char *tag = NULL;
    size_t rlen = len, astart = len, alen = 0;
    uint32_t nr, na, tagn = 0, n;

    memset(plan, 0, sizeof(*plan));
    plan->text = text;
    plan->len = len;
    if (split_think)
        tag = memmem(text, len, TG_SIM_THINK_END, TG_SIM_THINK_END_LEN);
    if (tag != NULL) {
        rlen = (size_t) (tag - text);
        astart = rlen + TG_SIM_THINK_END_LEN;
        alen = len - astart;
        tagn = 1;
    }
    if (n_tokens == 0) {
        nr = tg_sim_count_pieces(text, rlen);
        na = tg_sim_count_pieces(text + astart, alen);
    } else {
        /* Share the recorded count between thinking and answer by their
         * code point counts; a non-empty part gets at least one token. */
        size_t cr = tg_sim_decode(text, rlen, NULL);
        size_t ca = tg_sim_decode(text + astart, alen, NULL);
        uint32_t m = n_tokens > tagn ? n_tokens - tagn : 0;

        nr = cr + ca == 0 ? 0
             : (uint32_t) (((unsigned long long) m * cr + (cr + ca) / 2)
                           / (cr + ca));
        if (cr > 0 && nr == 0)
            nr = 1;
        if (ca > 0 && nr >= m && m >= 2)
            nr = m - 1;
        na = m > nr ? m - nr : 0;
        if (ca > 0 && na == 0)
            na = 1;
        if (cr == 0 && ca == 0 && tagn == 0)
            nr = m;            /* empty text: empty tokens keep the count */
    }
    if (!split_think) {
        nr = nr + na;
        na = 0;
    }
    n = nr + tagn + na;
    plan->cuts = malloc(((size_t) n + 1) * sizeof(uint32_t));
    if (plan->cuts == NULL)
        return -ENOMEM;
    if (tg_sim_cut(text, rlen, nr, plan->cuts) != 0)
        goto failed;
    if (tagn)
        plan->cuts[nr] = (uint32_t) rlen;
    if (tg_sim_cut(text + astart, alen, na, plan->cuts + nr + tagn) != 0)
        goto failed;
    for (uint32_t i = nr + tagn; i < n; i++)
        plan->cuts[i] += (uint32_t) astart;
    plan->cuts[n] = (uint32_t) len;
    plan->n = n;
    plan->reason_n = split_think ? nr : 0;
    plan->tag = tagn;
    return 0;

failed:
    free(plan->cuts);
    plan->cuts = NULL;
    return -ENOMEM;
}

void
tg_sim_plan_free(tg_sim_plan_t *plan)
{
    free(plan->cuts);
    plan->cuts = NULL;
}

char *
tg_sim_norm_ws(const char *s, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    size_t i, n = 0;
    int space = 0;

    if (out == NULL)
        return NULL;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];

        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
            || c == '\v') {
            space = 1;
            continue;
        }
        if (space && n > 0)
            out[n++] = ' ';
        space = 0;
        out[n++] = (char) c;
    }
    out[n] = '\0';
    if (out_len != NULL)
        *out_len = n;
    return out;
}

static const char *
tg_sim_memrmem(const char *h, size_t hlen, const char *n, size_t nlen)
{
    size_t i;

    if (nlen > hlen)
        return NULL;
    for (i = hlen - nlen + 1; i-- > 0;) {
        if (memcmp(h + i, n, nlen) == 0)
            return h + i;
    }
    return NULL;
}

/* Two or more letters and nothing else: a word, not an answer. */
static int
tg_sim_is_word(const char *s, size_t len)
{
    size_t i;

    if (len < 2)
        return 0;
    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
            return 0;
    }
    return 1;
}

size_t
tg_sim_extract_answer(const char *text, size_t len, char *out,
                      size_t outlen)
{
    size_t hlen = len, n;
    const char *p;

    if (outlen == 0)
        return 0;
    /* The last non-empty \boxed{...} whose braces close inside text (an
     * empty box, "put the answer in \boxed{}", states nothing). */
    while ((p = tg_sim_memrmem(text, hlen, "\\boxed{", 7)) != NULL) {
        const char *q = p + 7, *end = text + len;
        int depth = 1;

        while (q < end && depth > 0) {
            if (*q == '{')
                depth++;
            else if (*q == '}')
                depth--;
            q++;
        }
        if (depth == 0 && q - 1 > p + 7) {
            n = (size_t) (q - 1 - (p + 7));
            if (n >= outlen)
                n = outlen - 1;
            memcpy(out, p + 7, n);
            out[n] = '\0';
            return n;
        }
        hlen = (size_t) (p - text);
    }
    /* Else the last "answer is X": X runs to white space or a sentence
     * end, without $ or \( wrappers. */
    for (hlen = len; hlen >= 9; ) {
        const char *q, *end = text + len, *s;
        size_t i;

        p = NULL;
        for (i = hlen - 9 + 1; i-- > 0;) {
            if (strncasecmp(text + i, "answer is", 9) == 0) {
                p = text + i;
                break;
            }
        }
        if (p == NULL)
            break;
        q = p + 9;
        while (q < end && (*q == ' ' || *q == ':' || *q == '$' || *q == '*'))
            q++;
        if (q + 1 < end && q[0] == '\\' && (q[1] == '(' || q[1] == '['))
            q += 2;
        while (q < end && *q == ' ')
            q++;
        s = q;
        while (q < end && *q != ' ' && *q != '\n' && *q != '\t'
               && *q != '$' && *q != ',' && *q != ';' && *q != '*'
               && !(q[0] == '\\' && q + 1 < end
                    && (q[1] == ')' || q[1] == ']')))
            q++;
        while (q > s && (q[-1] == '.' || q[-1] == '!' || q[-1] == '?'))
            q--;
        /* "the answer is \boxed{" with the box still open (a guide or a
         * probe) states nothing yet, nor does a word ("the answer is the
         * number of..."); a single letter is a choice. */
        if (q > s && !((size_t) (q - s) >= 6
                       && memcmp(s, "\\boxed", 6) == 0)
            && !tg_sim_is_word(s, (size_t) (q - s))) {
            n = (size_t) (q - s);
            if (n >= outlen)
                n = outlen - 1;
            memcpy(out, s, n);
            out[n] = '\0';
            return n;
        }
        hlen = (size_t) (p - text) + 8;   /* keep looking further back */
        if (hlen < 9 || p == text)
            break;
    }
    out[0] = '\0';
    return 0;
}

int
tg_sim_json_str(struct evbuffer *buf, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[512];
    size_t i, n = 0;

    tmp[n++] = '"';
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];

        if (n > sizeof(tmp) - 8) {
            if (evbuffer_add(buf, tmp, n) != 0)
                return -ENOMEM;
            n = 0;
        }
        if (c == '"' || c == '\\') {
            tmp[n++] = '\\';
            tmp[n++] = (char) c;
        } else if (c == '\n') {
            tmp[n++] = '\\';
            tmp[n++] = 'n';
        } else if (c == '\r') {
            tmp[n++] = '\\';
            tmp[n++] = 'r';
        } else if (c == '\t') {
            tmp[n++] = '\\';
            tmp[n++] = 't';
        } else if (c < 0x20 || c == 0x7f) {
            tmp[n++] = '\\';
            tmp[n++] = 'u';
            tmp[n++] = '0';
            tmp[n++] = '0';
            tmp[n++] = hex[c >> 4];
            tmp[n++] = hex[c & 15];
        } else {
            tmp[n++] = (char) c;
        }
    }
    tmp[n++] = '"';
    return evbuffer_add(buf, tmp, n) == 0 ? 0 : -ENOMEM;
}
