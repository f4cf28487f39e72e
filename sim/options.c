/*
 * Command line: one table row per flag (name, type, slot, default, bounds,
 * doc), so parsing, defaults and --help cannot disagree.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>

#include "sim.h"

typedef enum {
    TG_SIM_OPT_FLAG, TG_SIM_OPT_INT, TG_SIM_OPT_LL, TG_SIM_OPT_DOUBLE,
    TG_SIM_OPT_STR, TG_SIM_OPT_LISTEN
} tg_sim_opt_type_t;

typedef struct {
    const char        *name;
    tg_sim_opt_type_t  type;
    size_t             offset;
    const char        *def;
    double             min, max;
    const char        *doc;
} tg_sim_opt_row_t;

#define TG_SIM_OFF(f) offsetof(tg_sim_options_t, f)

static const tg_sim_opt_row_t tg_sim_opt_rows[] = {
    { "listen", TG_SIM_OPT_LISTEN, 0, "127.0.0.1:8000", 0, 0,
      "HOST:PORT to serve the OpenAI API on" },
    { "traces", TG_SIM_OPT_STR, TG_SIM_OFF(traces), NULL, 0, 0,
      "replay recorded traces from a .jsonl(.gz) file or a directory of "
      "them; without it the sim synthesizes traces" },
    { "think-inline", TG_SIM_OPT_FLAG, TG_SIM_OFF(think_inline), "0", 0, 1,
      "send thinking inside content (llama.cpp style) instead of "
      "delta.reasoning_content" },
    { "tokens-per-step", TG_SIM_OPT_INT, TG_SIM_OFF(tokens_per_step), "1",
      1, 4096, "tokens each running stream gets per decode step (the "
      "stream interval: one chunk per step)" },
    { "step-ms", TG_SIM_OPT_DOUBLE, TG_SIM_OFF(step_ms), "20", 0, 1e6,
      "decode step time in ms for a batch of one" },
    { "step-ms-per-seq", TG_SIM_OPT_DOUBLE, TG_SIM_OFF(step_ms_per_seq),
      "0.05", 0, 1e6, "extra step time in ms per running stream" },
    { "prefill-ms-per-1k", TG_SIM_OPT_DOUBLE, TG_SIM_OFF(prefill_ms_per_1k),
      "20", 0, 1e6, "prefill time in ms per 1000 uncached prompt tokens" },
    { "max-concurrency", TG_SIM_OPT_INT, TG_SIM_OFF(max_concurrency), "256",
      1, 1000000, "streams (sequences) decoding at once; more wait in a "
      "FIFO queue" },
    { "max-queue", TG_SIM_OPT_INT, TG_SIM_OFF(max_queue), "10000", 0,
      10000000, "streams that may wait; beyond it requests get 429" },
    { "speed", TG_SIM_OPT_DOUBLE, TG_SIM_OFF(speed), "1", 0, 1e6,
      "time scale: 1 real time, 2 twice as fast, 0 no sleeping (same "
      "order of events)" },
    { "prefix-cache-blocks", TG_SIM_OPT_INT, TG_SIM_OFF(prefix_cache_blocks),
      "8192", 0, 100000000, "prefix cache size in blocks of 16 tokens "
      "(0 disables it)" },
    { "seed", TG_SIM_OPT_LL, TG_SIM_OFF(seed), "0", -1e18, 1e18,
      "seed of the synthetic traces" },
    { "error-rate", TG_SIM_OPT_DOUBLE, TG_SIM_OFF(error_rate), "0.2", 0, 1,
      "share of synthetic traces that end with a wrong answer" },
    { "model", TG_SIM_OPT_STR, TG_SIM_OFF(model), "thinkgate-sim", 0, 0,
      "model name served in synthetic mode" },
    { "judge-model", TG_SIM_OPT_STR, TG_SIM_OFF(judge_model), NULL, 0, 0,
      "answer chat and completions requests for this model as a SIMULATED "
      "Yes/No judge of two recorded trace prefixes (needs --traces; see "
      "sim/README.md)" },
    { "judge-auroc", TG_SIM_OPT_DOUBLE, TG_SIM_OFF(judge_auroc), "0.87",
      0.01, 0.999, "the AUROC with which the judge's P(Yes) separates "
      "pairs with the same recorded final answer from the rest" },
    { "judge-seed", TG_SIM_OPT_LL, TG_SIM_OFF(judge_seed), "0", -1e18, 1e18,
      "seed of the judge's per-pair draws" },
    { "converge", TG_SIM_OPT_DOUBLE, TG_SIM_OFF(converge), "0", 0, 1,
      "a continuation whose recorded prefix covers at least this share of "
      "its sample's thinking answers with the sample's recorded final "
      "answer: a SIMULATED model that has made up its mind (0: off, the "
      "last answer the prefix states; needs --traces)" },
    { "swap-ms", TG_SIM_OPT_DOUBLE, TG_SIM_OFF(swap_ms), "0", 0, 1e7,
      "a server that holds one model at a time (llama-swap, Ollama): a "
      "request for another model waits for the running streams to drain, "
      "then the load takes this long and counts in model_swaps (0: off)" },
};

#define TG_SIM_N_ROWS (sizeof(tg_sim_opt_rows) / sizeof(tg_sim_opt_rows[0]))

static int tg_sim_opt_set(tg_sim_options_t *opt, const tg_sim_opt_row_t *r,
                          const char *v, char *err, size_t errlen);
static int tg_sim_opt_listen(tg_sim_options_t *opt, const char *v);

void
tg_sim_options_help(FILE *out)
{
    size_t i;

    fprintf(out, "usage: thinkgate-sim [options]\n\n"
            "An OpenAI-compatible reasoning-model simulator: replays "
            "recorded traces\nor synthesizes them, paced like continuous "
            "batching on a GPU.\n\noptions (--name VALUE or "
            "--name=VALUE):\n");
    for (i = 0; i < TG_SIM_N_ROWS; i++) {
        const tg_sim_opt_row_t *r = &tg_sim_opt_rows[i];
        const char *arg = r->type == TG_SIM_OPT_FLAG ? "" :
                          r->type == TG_SIM_OPT_STR ? " STR" :
                          r->type == TG_SIM_OPT_LISTEN ? " HOST:PORT" :
                          r->type == TG_SIM_OPT_DOUBLE ? " F" : " N";
        fprintf(out, "  --%s%s\n      %s", r->name, arg, r->doc);
        if (r->def != NULL && r->type != TG_SIM_OPT_FLAG)
            fprintf(out, " (default %s)", r->def);
        fprintf(out, "\n");
    }
    fprintf(out, "  --help\n      print this help\n\n"
            "endpoints: POST /v1/chat/completions, POST /v1/completions, "
            "GET /v1/models,\n           GET /sim/stats, POST /sim/reset, "
            "GET /sim/judge\n");
}

int
tg_sim_options_parse(tg_sim_options_t *opt, int argc, char **argv,
                     char *err, size_t errlen)
{
    size_t i;
    int a;

    memset(opt, 0, sizeof(*opt));
    for (i = 0; i < TG_SIM_N_ROWS; i++) {
        if (tg_sim_opt_rows[i].def != NULL
            && tg_sim_opt_set(opt, &tg_sim_opt_rows[i],
                              tg_sim_opt_rows[i].def, err, errlen) != 0)
            return -1;
    }

    for (a = 1; a < argc; a++) {
        const char *arg = argv[a], *eq, *val = NULL;
        size_t nlen;
        const tg_sim_opt_row_t *r = NULL;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return 1;
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s'", arg);
            return -1;
        }
        arg += 2;
        eq = strchr(arg, '=');
        nlen = eq ? (size_t) (eq - arg) : strlen(arg);
        for (i = 0; i < TG_SIM_N_ROWS; i++) {
            if (strlen(tg_sim_opt_rows[i].name) == nlen
                && strncmp(tg_sim_opt_rows[i].name, arg, nlen) == 0) {
                r = &tg_sim_opt_rows[i];
                break;
            }
        }
        if (r == NULL) {
            snprintf(err, errlen, "unknown option '--%.*s' (see --help)",
                     (int) nlen, arg);
            return -1;
        }
        if (r->type == TG_SIM_OPT_FLAG) {
            if (eq != NULL) {
                snprintf(err, errlen, "--%s takes no value", r->name);
                return -1;
            }
            val = "1";
        } else if (eq != NULL) {
            val = eq + 1;
        } else if (a + 1 < argc) {
            val = argv[++a];
        } else {
            snprintf(err, errlen, "--%s needs a value", r->name);
            return -1;
        }
        if (tg_sim_opt_set(opt, r, val, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int
tg_sim_opt_set(tg_sim_options_t *opt, const tg_sim_opt_row_t *r,
               const char *v, char *err, size_t errlen)
{
    char *end;
    void *slot = (char *) opt + r->offset;
    double d;

    switch (r->type) {
    case TG_SIM_OPT_LISTEN:
        if (tg_sim_opt_listen(opt, v) != 0)
            goto bad;
        return 0;
    case TG_SIM_OPT_STR:
        if (*v == '\0')
            goto bad;
        *(const char **) slot = v;
        return 0;
    case TG_SIM_OPT_FLAG:
        *(int *) slot = strcmp(v, "1") == 0;
        return 0;
    default:
        break;
    }

    errno = 0;
    d = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || d < r->min || d > r->max)
        goto bad;
    if (r->type == TG_SIM_OPT_DOUBLE) {
        *(double *) slot = d;
        return 0;
    }
    if (d != (double) (long long) d)
        goto bad;
    if (r->type == TG_SIM_OPT_INT)
        *(int *) slot = (int) d;
    else
        *(long long *) slot = (long long) d;
    return 0;

bad:
    if (r->type == TG_SIM_OPT_INT || r->type == TG_SIM_OPT_LL
        || r->type == TG_SIM_OPT_DOUBLE)
        snprintf(err, errlen, "invalid value '%s' for --%s (a %s from %g "
                 "to %g)", v, r->name,
                 r->type == TG_SIM_OPT_DOUBLE ? "number" : "whole number",
                 r->min, r->max);
    else
        snprintf(err, errlen, "invalid value '%s' for --%s", v, r->name);
    return -1;
}

static int
tg_sim_opt_listen(tg_sim_options_t *opt, const char *v)
{
    const char *colon = strrchr(v, ':');
    char *end;
    long port;
    size_t hlen;

    if (colon == NULL || colon == v)
        return -1;
    hlen = (size_t) (colon - v);
    if (hlen >= sizeof(opt->listen_host))
        return -1;
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port < 0
        || port > 65535)
        return -1;
    memcpy(opt->listen_host, v, hlen);
    opt->listen_host[hlen] = '\0';
    opt->listen_port = (int) port;
    return 0;
}
