/*
 * The sim's request parser (sim/request.c) as sim/http.c drives it: a
 * chat or completions body (the first byte picks) through json_loadb,
 * tg_sim_parse_common and the endpoint's parser; the same bytes also go
 * to the embeddings endpoint (sim/embed.c).
 */
#include <event2/buffer.h>

#include "request.h"
#include "sim.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg_fuzz_in_t      in = { data, size };
    tg_sim_t          sim;
    tg_sim_parsed_t   p;
    tg_sim_err_t      e;
    json_error_t      jerr;
    json_t           *body;
    struct evbuffer  *out;
    size_t            i;
    int               kind, rc;

    memset(&sim, 0, sizeof(sim));
    sim.opt.model = "sim";
    kind = (tg_fuzz_byte(&in) & 1) ? TG_SIM_COMPLETION : TG_SIM_CHAT;

    memset(&p, 0, sizeof(p));
    memset(&e, 0, sizeof(e));
    p.kind = kind;
    p.rendered = evbuffer_new();
    tg_fuzz_check(p.rendered != NULL);

    body = json_loadb((const char *) in.p, in.n, 0, &jerr);
    if (json_is_object(body)) {
        rc = tg_sim_parse_common(&sim, body, &p, &e);
        if (rc == 0) {
            rc = kind == TG_SIM_CHAT ? tg_sim_parse_chat(body, &p, &e)
                                     : tg_sim_parse_completion(body, &p, &e);
        }
        if (rc == 0) {
            tg_fuzz_check(p.n >= 1 && p.n <= TG_SIM_MAX_N);
            tg_fuzz_check(p.n_stops <= TG_SIM_MAX_STOPS);
            for (i = 0; i < p.n_stops; i++) {
                tg_fuzz_check(p.stops[i] != NULL);
            }
            tg_fuzz_check(kind != TG_SIM_CHAT || p.user != NULL);
            tg_fuzz_check(kind == TG_SIM_CHAT || p.prompt != NULL);
        } else {
            tg_fuzz_check(e.status >= 400 && e.status <= 599);
            tg_fuzz_check(memchr(e.msg, '\0', sizeof(e.msg)) != NULL);
        }
    }
    json_decref(body);
    free(p.user);
    free(p.cont);
    evbuffer_free(p.rendered);

    out = evbuffer_new();
    tg_fuzz_check(out != NULL);
    memset(&e, 0, sizeof(e));
    rc = tg_sim_embed_reply(&sim, (const char *) in.p, in.n, out, &e);
    tg_fuzz_check(rc == 0 || (e.status >= 400 && e.status <= 599));
    evbuffer_free(out);
    return 0;
}
