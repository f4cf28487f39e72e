/*
 * engine/openai/request.c and responses.c: a client's body through
 * tg_oa_parse or tg_oa_responses_parse, as the first byte picks.  A body
 * is accepted with a validated document, or refused with an OpenAI
 * error whose rendering is JSON; the rest of the input also goes through tg_oa_endpoint as a URI.
 */
#include <errno.h>

#include <jansson.h>

#include "log.h"
#include "openai/request.h"
#include "openai/responses.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    tg_log_level = -1;
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg_fuzz_in_t      in = { data, size };
    tg_oa_request_t   rq;
    tg_oa_error_t     err;
    json_error_t      jerr;
    json_t           *doc;
    char             *text;
    int               endpoint, rc, pick;

    pick = tg_fuzz_byte(&in) % 3;
    endpoint = pick == 1 ? TG_OA_COMPLETIONS : TG_OA_CHAT;
    (void) tg_oa_endpoint((const char *) in.p, in.n);

    memset(&rq, 0, sizeof(rq));
    memset(&err, 0, sizeof(err));
    rc = pick == 2 ? tg_oa_responses_parse(&rq, (const char *) in.p, in.n,
                                           &err)
                   : tg_oa_parse(&rq, endpoint, (const char *) in.p, in.n,
                                 &err);

    if (rc == 0) {
        /* A Responses body becomes a chat request with its messages. */
        tg_fuzz_check((pick == 2) == (rq.responses != NULL));
        tg_fuzz_check(pick != 2
                      || json_is_array(json_object_get(rq.body,
                                                       "messages")));
        tg_fuzz_check(json_is_object(rq.body));
        tg_fuzz_check(rq.endpoint == endpoint);
        tg_fuzz_check(json_object_get(rq.body, "thinkgate") == NULL);
        tg_fuzz_check(rq.thinkgate == NULL || json_is_object(rq.thinkgate));
        tg_fuzz_check(rq.model == NULL || strlen(rq.model) < in.n);
        /* What goes to a backend must dump and load back. */
        text = json_dumps(rq.body, JSON_COMPACT);
        tg_fuzz_check(text != NULL);
        doc = json_loads(text, 0, &jerr);
        tg_fuzz_check(doc != NULL);
        json_decref(doc);
        free(text);
        tg_oa_request_free(&rq);
        return 0;
    }

    tg_fuzz_check(rc == -EINVAL || rc == -ENOMEM);
    tg_fuzz_check(err.status >= 400 && err.status <= 599);
    tg_fuzz_check(memchr(err.message, '\0', sizeof(err.message)) != NULL);
    tg_fuzz_check(memchr(err.param, '\0', sizeof(err.param)) != NULL);
    text = tg_oa_error_render(&err);
    tg_fuzz_check(text != NULL);
    doc = json_loads(text, 0, &jerr);
    /* The message quotes the client's bytes; the rendering must still be
     * a JSON document (a cut inside a UTF-8 sequence would not be). */
    tg_fuzz_check(doc != NULL);
    tg_fuzz_check(json_is_object(json_object_get(doc, "error")));
    json_decref(doc);
    free(text);
    return 0;
}
