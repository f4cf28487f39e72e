/*
 * Request parsing shared by http.c: the validated form of a generation
 * request and the OpenAI-shaped error a bad one gets.
 */
#ifndef TG_SIM_REQUEST_H
#define TG_SIM_REQUEST_H

#include <jansson.h>

#include "sim.h"

#define TG_SIM_MAX_N 128
#define TG_SIM_MAX_STOPS 16

typedef struct {
    int          kind;
    const char  *model;
    int          n;
    int          stream;
    int          include_usage;
    int          continuous_usage;  /* usage in every chunk (vLLM) */
    uint32_t     max_tokens;
    int          has_seed;
    long long    seed;
    int          logprobs;
    int          top_logprobs;
    const char  *stops[TG_SIM_MAX_STOPS];
    size_t       n_stops;
    int          continue_final;
    /* chat: the last user message and the message to continue */
    char        *user;
    size_t       user_len;
    char        *cont;
    size_t       cont_len;
    /* completions: the raw prompt */
    const char  *prompt;
    size_t       prompt_len;
    /* the rendered prompt, for prompt tokens and the prefix cache */
    struct evbuffer *rendered;
} tg_sim_parsed_t;

typedef struct {
    int         status;
    const char *type;
    const char *param;
    const char *code;
    char        msg[512];
} tg_sim_err_t;

int tg_sim_fail(tg_sim_err_t *e, int status, const char *param,
                const char *code, const char *fmt, const char *arg);
/* Fields every generation request shares (model, n, limits, stream...). */
int tg_sim_parse_common(tg_sim_t *sim, json_t *body, tg_sim_parsed_t *p,
                        tg_sim_err_t *e);
int tg_sim_parse_chat(json_t *body, tg_sim_parsed_t *p, tg_sim_err_t *e);
int tg_sim_parse_completion(json_t *body, tg_sim_parsed_t *p,
                            tg_sim_err_t *e);

/* embed.c: POST /v1/embeddings.  0 with the reply in out, or -1 with e
 * filled (400 bad input, 404 unknown model). */
int tg_sim_embed_reply(tg_sim_t *sim, const char *raw, size_t len,
                       struct evbuffer *out, tg_sim_err_t *e);
/* The vector of one text: dim floats, L2-normalised. */
void tg_sim_embed_vector(const char *text, size_t len, size_t dim, float *v);

/* judge.c: a request for --judge-model.  0 with the reply in out, or -1
 * with e filled (400 for a bad request or a prompt it cannot match). */
int tg_sim_judge_reply(tg_sim_t *sim, json_t *body, int kind,
                       struct evbuffer *out, tg_sim_err_t *e);

#endif
