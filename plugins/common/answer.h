/*
 * thinkgate — answer extraction from model output, shared by plugins.
 *
 * Strategies vote on, compare and check final answers; this file turns a
 * model's text into one short canonical answer string.  The rules:
 *
 *   1. The last \boxed{...} (or \fbox{...}, braces nested, or "\boxed 5")
 *      whose normalized content fits the answer format wins.  Boxes count
 *      anywhere, thinking included, because models often box the answer
 *      just before </think> and then run out of tokens.
 *   2. Otherwise the last "answer is ...", "Answer: ..." or "Final Answer"
 *      phrase that fits, but only in the final-answer part: after the last
 *      </think> (or gpt-oss's "<|channel|>final<|message|>").  Without one
 *      the whole text counts, unless the caller says the text is a
 *      reasoning model's (TG_ANSWER_F_REASONING): its thinking muses
 *      "perhaps the answer is 17, but..." all the time.
 *   3. Multiple choice (TG_ANSWER_CHOICE) reads an option letter standing
 *      alone -- "(C)", "C", "**C**", "\text{(C)}" -- from boxes and from
 *      those phrases and "option C", "choice (C)", "the choice among
 *      the given options is (C)" (unless the sentence lists more options
 *      or rules the one named out), also after a box that names no
 *      option ("\boxed{42} ... the correct choice is (C)"); a Unicode
 *      space may follow the letter ("(C)\u202f0.77c"); never a capital
 *      that starts a word ("**Answer", "Carbon").  A box that names an
 *      option and repeats its text ("\boxed{(B) 3536}") gives the letter;
 *      an integer box ending a derivation ("\boxed{147 + 147 = 294}")
 *      gives the value after its last '='.
 *
 * Nothing here allocates, keeps global state or depends on the engine;
 * every function is thread-safe.  Functions return the length written or
 * a negative errno code (-EINVAL bad argument, -ENOSPC output too small).
 * Output strings are always NUL-terminated when out_size > 0.
 */
#ifndef TG_ANSWER_H
#define TG_ANSWER_H

#include <stddef.h>

/* Longest answer, normalized or raw, the scanner keeps; longer boxes are
 * derivations rather than answers and are ignored. */
#define TG_ANSWER_MAX  256

typedef enum {
    TG_ANSWER_ANY = 0,        /* any non-empty normalized text */
    TG_ANSWER_INTEGER,        /* an integer within [int_min, int_max] */
    TG_ANSWER_CHOICE          /* one letter among the first `choices` */
} tg_answer_format_e;

/* Only boxes count; no "answer is" phrase fallback. */
#define TG_ANSWER_F_BOXED_ONLY  0x1u
/* The text is a reasoning model's output: without </think> it is all
 * thinking, so phrases are not trusted there. */
#define TG_ANSWER_F_REASONING   0x2u

typedef struct {
    tg_answer_format_e  format;
    long long           int_min;     /* TG_ANSWER_INTEGER bounds */
    long long           int_max;
    unsigned            choices;     /* TG_ANSWER_CHOICE: 2..26 letters */
    unsigned            flags;       /* TG_ANSWER_F_* */
} tg_answer_opts_t;

/* Defaults: any format, no flags. */
void tg_answer_opts_default(tg_answer_opts_t *opts);

/*
 * Sets *opts for a benchmark name from a table of known formats (prefix
 * match, case-insensitive: "aime*" is an integer 0..999, "gpqa*" a letter
 * A-D, ...).  Returns 0, or -ENOENT (opts then hold the defaults) for an
 * unknown benchmark.  Flags are left as they were.
 */
int tg_answer_opts_for_bench(const char *bench, tg_answer_opts_t *opts);

/*
 * Sets *opts to a multiple-choice format when the problem text offers
 * lettered options: "(A) ... (B) ..." anywhere, in order, or lines that
 * start with "A)", "A." or "A:" then "B)", ... -- at least two, from A.
 * Returns the number of options found (opts->choices), or 0 when the
 * problem offers none (opts then unchanged).  Flags are kept.
 */
int tg_answer_opts_for_problem(const char *problem, size_t len,
                               tg_answer_opts_t *opts);

/* 1 when a normalized answer fits the format in opts (NULL: any). */
int tg_answer_fits(const char *norm, size_t len, const tg_answer_opts_t *opts);

/*
 * Extracts the normalized final answer of text[0..len) into out.  opts may
 * be NULL (defaults).  Returns its length, 0 when there is no answer (out
 * is then ""), -ENOSPC when out_size is too small, -EINVAL on bad args.
 */
int tg_answer_extract(const char *text, size_t len, char *out,
                      size_t out_size);
int tg_answer_extract_opts(const char *text, size_t len,
                           const tg_answer_opts_t *opts, char *out,
                           size_t out_size);

/*
 * The final answer of a model output given as its thinking
 * (reasoning[0..rlen)) and its content (content[0..clen)), the way a
 * reasoning parser hands them over, by the rules above applied to
 * reasoning + "</think>" + content without building that text: the last
 * fitting box anywhere (the content's come last), else a phrase in the
 * content, which is all final answer.  Without thinking the content is
 * read as one whole text with opts as given.  Either text may be NULL when
 * its length is 0.  Returns as tg_answer_extract_opts.
 */
int tg_answer_extract_split(const char *reasoning, size_t rlen,
                            const char *content, size_t clen,
                            const tg_answer_opts_t *opts, char *out,
                            size_t out_size);

/*
 * Where a reasoning model's text ends its thinking: the last "</think>"
 * or gpt-oss's "<|channel|>final<|message|>" (with the "<|end|><|start|>
 * assistant" that precedes it in harmony format).  Returns 1 and sets
 * *think_len (the thinking's bytes) and *final_off (where the final answer
 * starts), as a reasoning parser splits them; 0 when there is no marker.
 */
int tg_answer_final_split(const char *text, size_t len, size_t *think_len,
                          size_t *final_off);

/*
 * Normalizes one answer: LaTeX spacing, \left/\right, $, \text{} unwrapped
 * (units after a number dropped), \dfrac/\tfrac -> \frac, numeric
 * \frac{a}{b} -> a/b, degrees and %, "x = 5" -> 5, "(B)" -> B, numbers
 * canonical (no leading zeros, no thousands commas, no trailing .0).
 * out may equal in.  Returns the length, or -ENOSPC when out_size <= the
 * result's length, -EINVAL on bad args.
 */
int tg_answer_normalize(const char *in, size_t len, char *out,
                        size_t out_size);

/*
 * 1 when two raw answers are the same after normalization, or both are
 * rational numbers of the same value ("0.5", "1/2", "\frac{1}{2}").
 * Answers longer than TG_ANSWER_MAX are compared byte for byte.  An empty
 * answer (no answer) equals nothing, not even another empty one.
 */
int tg_answer_equal(const char *a, const char *b);

/*
 * Incremental box scanner for streamed text: feed deltas as they come and
 * read the last box that fits so far at any moment; a box split across
 * deltas is handled.  Feeding a whole text in one call gives the same
 * result as rule 1 of tg_answer_extract_opts.  The struct is the caller's
 * (embed it), about 600 bytes, no cleanup needed.
 */
typedef struct {
    tg_answer_opts_t  opts;
    size_t            offset;      /* bytes fed so far */
    size_t            last_end;    /* offset just past the last box taken */
    unsigned          boxes;       /* complete boxes seen, fitting or not */
    unsigned          kw_match[2]; /* bytes of "\boxed", "\fbox" matched */
    unsigned          depth;       /* brace depth inside a box */
    unsigned char     state;
    unsigned char     escaped;
    unsigned char     overflow;
    size_t            cur_len;
    char              cur[TG_ANSWER_MAX];
    size_t            last_len;
    char              last[TG_ANSWER_MAX];  /* normalized, NUL-terminated */
} tg_answer_scan_t;

void tg_answer_scan_init(tg_answer_scan_t *scan,
                         const tg_answer_opts_t *opts);
void tg_answer_scan_feed(tg_answer_scan_t *scan, const char *delta,
                         size_t len);
/* Ends the stream: a pending "\boxed 5" token is completed. */
void tg_answer_scan_finish(tg_answer_scan_t *scan);
/* The last fitting normalized box so far ("" and 0 when none). */
static inline const char *
tg_answer_scan_last(const tg_answer_scan_t *scan, size_t *len)
{
    if (len != NULL) {
        *len = scan->last_len;
    }
    return scan->last;
}

/*
 * The raw content span [*start, *end) of the last complete box in a text
 * prefix, fitting or not.  Returns 1 when found, 0 when none.
 */
int tg_answer_last_boxed(const char *text, size_t len, size_t *start,
                         size_t *end);

#endif /* TG_ANSWER_H */
