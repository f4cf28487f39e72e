/*
 * thinkgate-sim: an OpenAI-compatible reasoning-model simulator.
 *
 * The pieces, each in its own file:
 *   options.c  command line table, defaults and --help
 *   text.c     cutting text into tokens, whitespace normalization, answer
 *              extraction, JSON string escaping
 *   traces.c   loading recorded traces (gzipped JSONL) and finding them
 *   synth.c    deterministic synthetic reasoning traces
 *   cache.c    the prefix cache (LRU of prompt blocks)
 *   sched.c    continuous batching: queue, prefill, decode steps, stats
 *   render.c   OpenAI JSON for chunks and whole responses
 *   request.c  parsing and validating requests (request.h)
 *   http.c     evhttp handlers: routing and choosing the text
 *   judge.c    a simulated Yes/No judge of chosen AUROC
 *   continue.c the reply to a continuation (--converge)
 *   main.c     process setup
 * Everything but main.c links into the unit tests.
 */
#ifndef TG_SIM_H
#define TG_SIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct event_base;
struct event;
struct evhttp;
struct evhttp_request;
struct evhttp_connection;
struct evbuffer;

/* ---- options ---------------------------------------------------------- */

typedef struct {
    char        listen_host[256];
    int         listen_port;
    const char *traces;          /* file or directory; NULL: synthetic */
    int         think_inline;
    int         tokens_per_step;
    double      step_ms;
    double      step_ms_per_seq;
    double      prefill_ms_per_1k;
    int         max_concurrency;
    int         max_queue;
    double      speed;
    int         prefix_cache_blocks;
    long long   seed;
    double      error_rate;
    const char *model;
    const char *judge_model;     /* NULL: no simulated judge */
    double      judge_auroc;
    long long   judge_seed;
    double      converge;        /* 0: off; else the share of thinking */
    double      swap_ms;         /* 0: off; else a model change's delay */
} tg_sim_options_t;

/* Fills *opt with the defaults, then applies argv.  Returns 0, 1 when
 * --help was printed, or -1 with a message in err. */
int tg_sim_options_parse(tg_sim_options_t *opt, int argc, char **argv,
                         char *err, size_t errlen);
void tg_sim_options_help(FILE *out);

/* ---- text ------------------------------------------------------------- */

#define TG_SIM_THINK_END "</think>"
#define TG_SIM_THINK_END_LEN 8

/*
 * A plan is a completion text cut into tokens: token i is the bytes
 * [cuts[i], cuts[i+1]).  Tokens [0, reason_n) are thinking; when tag is 1,
 * token reason_n is the "</think>" separator; the rest is the answer.
 */
typedef struct {
    const char *text;
    size_t      len;
    uint32_t   *cuts;            /* n + 1 entries */
    uint32_t    n;
    uint32_t    reason_n;
    uint32_t    tag;
    int         finish_length;   /* the recording says it was cut off */
} tg_sim_plan_t;

/* Number of tokens the built-in pre-tokenizer sees in text. */
uint32_t tg_sim_count_pieces(const char *text, size_t len);

/* Writes k token start offsets (relative to text) into starts; k == 0
 * writes nothing.  Returns 0 or -ENOMEM. */
int tg_sim_cut(const char *text, size_t len, uint32_t k, uint32_t *starts);

/* Builds plan for text with exactly n_tokens tokens (0: as many as the
 * pre-tokenizer sees).  split_think: separate thinking at "</think>"; text
 * without the tag is then all thinking.  plan->cuts is malloc'd. */
int tg_sim_plan_build(tg_sim_plan_t *plan, const char *text, size_t len,
                      uint32_t n_tokens, int split_think);
void tg_sim_plan_free(tg_sim_plan_t *plan);

/* Collapses whitespace runs to one space and trims; malloc'd, NUL-ended. */
char *tg_sim_norm_ws(const char *s, size_t len, size_t *out_len);

/* The last answer stated in text: the last \boxed{...} (nested braces),
 * else the last "answer is X".  Returns the length written (0: none). */
size_t tg_sim_extract_answer(const char *text, size_t len, char *out,
                             size_t outlen);

/* Appends s as a JSON string literal (with quotes) to buf. */
int tg_sim_json_str(struct evbuffer *buf, const char *s, size_t len);

uint64_t tg_sim_hash(uint64_t h, const void *p, size_t len);
#define TG_SIM_HASH_INIT 0xcbf29ce484222325ULL

/* ---- traces ----------------------------------------------------------- */

typedef struct {
    char          *output;
    size_t         output_len;
    uint32_t       completion_tokens;
    long long      sample_id;
    int            finish_length;
    char          *answer;       /* recorded final answer; NULL: none */
    tg_sim_plan_t  plan;         /* built on first use */
    int            planned;
} tg_sim_sample_t;

typedef struct {
    const char      *model;      /* interned in the store */
    char            *problem;    /* as recorded */
    char            *norm;       /* whitespace-normalized */
    size_t           norm_len;
    tg_sim_sample_t *samples;
    size_t           count, cap;
    uint64_t         next;       /* per-problem counter for seedless picks */
} tg_sim_problem_t;

typedef struct {
    char             **models;
    size_t             n_models;
    tg_sim_problem_t **problems;
    size_t             n_problems, cap_problems;
    tg_sim_problem_t **table;    /* open addressing on (model, norm) */
    size_t             table_size;
    size_t             n_samples;
} tg_sim_traces_t;

/* Loads a .jsonl(.gz) file or every such file of a directory (sorted). */
tg_sim_traces_t *tg_sim_traces_load(const char *path, char *err,
                                    size_t errlen);
void tg_sim_traces_free(tg_sim_traces_t *t);
int tg_sim_traces_has_model(const tg_sim_traces_t *t, const char *model);
/* The problem whose normalized text equals the normalized query, else the
 * longest recorded problem the query contains. */
tg_sim_problem_t *tg_sim_traces_find(tg_sim_traces_t *t, const char *model,
                                     const char *query, size_t len);
/* The longest recorded problem contained verbatim (after normalization)
 * in prompt; *end receives the byte offset in prompt right after it. */
tg_sim_problem_t *tg_sim_traces_find_in(tg_sim_traces_t *t,
                                        const char *model,
                                        const char *prompt, size_t len,
                                        size_t *end);
/* The sample's plan, cut on first use.  NULL on allocation failure. */
const tg_sim_plan_t *tg_sim_sample_plan(tg_sim_sample_t *s);
/* Finds where text continues a recorded sample: the sample with the
 * longest common prefix with text starting at some anchor.  Returns the
 * sample or NULL; *prefix_len is the length of the common prefix. */
tg_sim_sample_t *tg_sim_traces_match_prefix(tg_sim_problem_t *p,
                                            const char *text, size_t len,
                                            size_t *prefix_len);
/* The common prefix of text (from the anchor on) with one sample: 0
 * unless text holds the sample's first 32 bytes (all, when shorter). */
size_t tg_sim_sample_common(const tg_sim_sample_t *s, const char *text,
                            size_t len);

/* ---- continuation (continue.c) ---------------------------------------- */

/* What a continuation reply was made from (for tests and logs). */
typedef struct {
    int     matched;             /* a recorded sample starts the text */
    size_t  prefix_len;          /* bytes of it the text repeats */
    double  coverage;            /* prefix_len / the sample's thinking */
    int     converged;           /* the recorded final answer was used */
    int     open_box;            /* the text ends in an open \boxed{ */
    int     answered;            /* the reply states an answer */
} tg_sim_continue_info_t;

/* Whether the text after a completions prompt's recorded problem holds
 * model text to continue: anything but white space after the last chat
 * template markup (special tokens, a role word after one, "<think>"). */
int tg_sim_continue_wanted(const char *text, size_t len);
/* Bytes of the sample's output before "</think>" (all of it without). */
size_t tg_sim_sample_think_len(const tg_sim_sample_t *s);
/*
 * The reply to a request that continues text: "\boxed{X}" with X the
 * last answer stated in the matched recorded prefix (or in text itself
 * when no sample of prob, which may be NULL, starts it), or "I have not
 * reached a final answer yet.".  converge > 0: a prefix covering at least
 * that share of the sample's thinking answers with its recorded answer.
 * Text ending in an open "\boxed{" gets "X}" ("}" with no answer).
 * A prefix several samples share is the one seed picks (seed >= 0:
 * sample seed mod count), else the lowest sample_id's.
 * malloc'd, NUL-ended; NULL when out of memory.
 */
char *tg_sim_continue_reply(tg_sim_problem_t *prob, const char *text,
                            size_t len, double converge, long long seed,
                            tg_sim_continue_info_t *info);

/* ---- synthetic -------------------------------------------------------- */

/* A deterministic trace for prompt: thinking, "</think>", answer.
 * malloc'd text; the same arguments give the same bytes. */
char *tg_sim_synth_trace(const char *prompt, size_t len, uint64_t seed,
                         uint64_t sample, double error_rate,
                         size_t *out_len);
/* Synthetic problem number i for a seed (malloc'd); *answer its answer. */
char *tg_sim_synth_problem(uint64_t seed, uint64_t i, long long *answer);

/* ---- prefix cache ----------------------------------------------------- */

#define TG_SIM_BLOCK_BYTES 64     /* about 16 tokens at 4 bytes a token */
#define TG_SIM_BLOCK_TOKENS 16

typedef struct tg_sim_cache_s tg_sim_cache_t;

tg_sim_cache_t *tg_sim_cache_new(size_t capacity);
void tg_sim_cache_free(tg_sim_cache_t *c);
/* Looks up the chain of blocks of text (salted with model), then records
 * them all as most recently used.  Returns the number of leading blocks
 * that were cached; *total receives the number of full blocks. */
size_t tg_sim_cache_lookup_insert(tg_sim_cache_t *c, const char *model,
                                  const char *text, size_t len,
                                  size_t *total);
size_t tg_sim_cache_size(const tg_sim_cache_t *c);

/* ---- scheduler -------------------------------------------------------- */

enum { TG_SIM_CHAT = 0, TG_SIM_COMPLETION = 1 };
enum { TG_SIM_QUEUED = 0, TG_SIM_PREFILL, TG_SIM_RUNNING, TG_SIM_DONE };
/* POST /sim/fault: what the next generation requests do instead of
 * answering (for soak and fault tests). */
enum { TG_SIM_FAULT_NONE = 0, TG_SIM_FAULT_HANG, TG_SIM_FAULT_GARBAGE,
       TG_SIM_FAULT_CLOSE };

typedef struct {
    tg_sim_plan_t  own;          /* used when the text is not a sample's */
    char          *own_text;
    const tg_sim_plan_t *plan;
    uint32_t       pos;          /* tokens emitted */
    uint32_t       end;          /* tokens to emit */
    size_t         end_byte;     /* text is clipped here (stop strings) */
    int            finish_length;
    int            started;
    int            done;
} tg_sim_choice_t;

typedef struct tg_sim_s tg_sim_t;

typedef struct tg_sim_req_s {
    tg_sim_t                 *sim;
    struct evhttp_request    *http;
    struct evhttp_connection *conn;
    struct tg_sim_req_s      *prev, *next;
    struct event             *prefill_ev;
    struct evbuffer          *out;
    int           state;
    int           kind;
    int           stream;
    int           include_usage;
    int           continuous_usage;  /* usage in every chunk */
    int           logprobs;
    int           top_logprobs;
    int           inline_think;  /* thinking goes in content */
    int           closed;
    char          id[48];
    long long     created;
    char         *model;
    uint32_t      prompt_tokens;
    uint32_t      cached_tokens;
    int           n;
    int           n_active;
    int           fault;         /* TG_SIM_FAULT_HANG or _CLOSE, else 0 */
    uint32_t      fault_after;   /* decode steps before the fault */
    uint32_t      steps_done;
    tg_sim_choice_t choices[];
} tg_sim_req_t;

typedef struct {
    unsigned long long requests;
    unsigned long long tokens_generated;
    unsigned long long tokens_after_close;
    unsigned long long cancelled_streams;
    unsigned long long completed_streams;
    unsigned long long prefix_cache_hits;
    unsigned long long prefix_cache_misses;
    unsigned long long rejected;
    unsigned long long steps;
    unsigned long long model_swaps;  /* admissions that changed model */
    unsigned long long faults;       /* requests given an armed fault */
    unsigned long long peak_open_streams;  /* most open_streams at once */
} tg_sim_stats_t;

typedef struct {
    tg_sim_req_t *head, *tail;
} tg_sim_list_t;

/* What the simulated judge answered, for GET /sim/judge and the stats. */
typedef struct {
    double        *p_yes;        /* per judged pair, in answer order */
    unsigned char *same;         /* 1: the recorded answers are equal */
    size_t         n, cap;
    unsigned long long requests;   /* answered (200) */
    unsigned long long unmatched;  /* 400: no problem or < 2 prefixes */
    unsigned long long yes;        /* answered "Yes" */
    unsigned long long dropped;    /* answered but not logged (log full) */
    unsigned long long ambiguous;  /* a prefix that several samples share */
} tg_sim_judge_log_t;

struct tg_sim_s {
    tg_sim_options_t   opt;
    struct event_base *base;
    struct evhttp     *http;
    tg_sim_traces_t   *traces;
    tg_sim_cache_t    *cache;
    tg_sim_list_t      queue;     /* FIFO of requests waiting for slots */
    tg_sim_list_t      prefill;
    tg_sim_list_t      running;
    int                running_streams;
    int                queued_streams;
    int                open_streams;
    struct event      *step_ev;
    int                step_pending;
    int                in_step;
    double             next_step_at; /* monotonic ms of the planned step */
    uint64_t           synth_counter;
    uint64_t           req_counter;
    tg_sim_stats_t     stats;
    char               loaded_model[256]; /* --swap-ms: the model now in
                                             memory; "" before the first */
    double             loaded_at;  /* monotonic ms when its load ends */
    double             judge_mu;  /* binormal separation for judge_auroc */
    tg_sim_judge_log_t judge;
    int                fault_mode; /* POST /sim/fault: armed fault */
    long long          fault_left; /* requests still to get it */
    uint32_t           fault_after;
};

int tg_sim_init(tg_sim_t *sim, struct event_base *base);
void tg_sim_destroy(tg_sim_t *sim);

/* Allocates a request with n choices (zeroed). */
tg_sim_req_t *tg_sim_req_new(tg_sim_t *sim, int n);
void tg_sim_req_free(tg_sim_req_t *req);
/* Sets a choice's text plan and applies max_tokens (0: none) and stop
 * strings. */
void tg_sim_choice_limit(tg_sim_choice_t *c, uint32_t max_tokens,
                         const char *const *stops, size_t n_stops);
/* Queues or starts req.  Returns 0, or -EAGAIN when the queue is full
 * (the caller still owns req then). */
int tg_sim_submit(tg_sim_t *sim, tg_sim_req_t *req);
/* Advances every running stream by one step (exposed for tests). */
void tg_sim_step(tg_sim_t *sim);
double tg_sim_now_ms(void);

/* ---- rendering -------------------------------------------------------- */

/* One streamed chunk for choice i covering tokens [from, to). */
int tg_sim_render_chunk(tg_sim_req_t *req, int i, uint32_t from,
                        uint32_t to, int last, struct evbuffer *out);
/* The role chunk that opens a streamed chat choice. */
int tg_sim_render_role(tg_sim_req_t *req, int i, struct evbuffer *out);
/* The usage chunk (choices: []) and the [DONE] line. */
int tg_sim_render_stream_end(tg_sim_req_t *req, struct evbuffer *out);
/* The whole non-streamed response. */
int tg_sim_render_full(tg_sim_req_t *req, struct evbuffer *out);
/* An OpenAI-shaped error body. */
int tg_sim_render_error(struct evbuffer *out, const char *message,
                        const char *type, const char *param,
                        const char *code);
uint32_t tg_sim_completion_tokens(const tg_sim_req_t *req);
uint32_t tg_sim_choice_reasoning_tokens(const tg_sim_choice_t *c);

/* ---- simulated judge (judge.c) ---------------------------------------- */

/* sqrt(2) * Phi^-1(auroc): the distance between the two classes' normal
 * score distributions that gives that AUROC. */
double tg_sim_judge_mu(double auroc);
/* Whether two samples' recorded final answers are equal (no answer
 * equals nothing). */
int tg_sim_judge_same(const tg_sim_sample_t *a, const tg_sim_sample_t *b);
/* The pair's draw key: problem, the two sample ids in either order, seed. */
uint64_t tg_sim_judge_key(const tg_sim_problem_t *p, long long sid_a,
                          long long sid_b, long long seed);
/* The judge's logit for a pair: +mu/2 (same) or -mu/2, plus a standard
 * normal drawn from key.  P(Yes) = 1 / (1 + exp(-z)). */
double tg_sim_judge_z(double mu, int same, uint64_t key);
/* Finds the recorded problem in text (verbatim, any model) and the two
 * samples whose prefixes it shows ("Reasoning A:" / "Reasoning B:"
 * sections, else the first two prefixes after the problem).  A prefix
 * that several samples share is the lowest sample_id's (*ambiguous set).
 * Returns 0; -1: no recorded problem; -2: fewer than two prefixes. */
int tg_sim_judge_match(tg_sim_traces_t *t, const char *text, size_t len,
                       tg_sim_problem_t **p, tg_sim_sample_t **a,
                       tg_sim_sample_t **b, size_t *a_len, size_t *b_len,
                       int *ambiguous);
/* Sets judge_mu; 0, or -1 with a message (the judge needs traces). */
int tg_sim_judge_init(tg_sim_t *sim, char *err, size_t errlen);
void tg_sim_judge_reset(tg_sim_t *sim);
void tg_sim_judge_free(tg_sim_t *sim);
/* GET /sim/judge: the log of judged pairs as JSON. */
int tg_sim_judge_render_log(tg_sim_t *sim, struct evbuffer *out);

/* ---- http ------------------------------------------------------------- */

int tg_sim_http_setup(tg_sim_t *sim);

#endif
