/*
 * engine/openai/request.c and responses.c: a client's body through
 * tg_oa_parse or tg_oa_responses_parse, as the first byte picks.  A body
 * is accepted with a validated document, or refused with an OpenAI
 * error whose rendering is JSON; the rest of the input also goes through tg_oa_endpoint as a URI.
 * A chat or completions body also goes through tg_oa_parse_kept, which
 * must give the same verdict, error, fields and tree as tg_oa_parse,
 * whether its text's scan answered or not.
 */
#include <errno.h>

#include <jansson.h>

#include "log.h"
#include "openai/request.h"
#include "openai/responses.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);
static void tg_fuzz_kept(int endpoint, const char *p, size_t n, int rc,
    tg_oa_request_t *rq, const tg_oa_error_t *err);

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

    if (pick != 2) {
        tg_fuzz_kept(endpoint, (const char *) in.p, in.n, rc, &rq, &err);
    }

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


/* tg_oa_parse_kept against tg_oa_parse's result (rc, rq, err). */
static void
tg_fuzz_kept(int endpoint, const char *p, size_t n, int rc,
    tg_oa_request_t *rq, const tg_oa_error_t *err)
{
    tg_oa_request_t  kq;
    tg_oa_error_t    kerr;
    int              krc;
    int64_t          a, b;
    char             buf[32];
    const char      *s1, *s2;
    static const char *const  names[] = { "n", "seed", "logprobs", "echo",
        "reasoning_effort", "stream", "max_tokens", "user" };
    size_t           i;

    memset(&kerr, 0, sizeof(kerr));
    krc = tg_oa_parse_kept(&kq, endpoint, p, n, &kerr);
    tg_fuzz_check(krc == rc);
    if (rc != 0) {
        tg_fuzz_check(kerr.status == err->status);
        tg_fuzz_check(strcmp(kerr.message, err->message) == 0);
        tg_fuzz_check(strcmp(kerr.param, err->param) == 0);
        tg_fuzz_check(strcmp(kerr.code, err->code) == 0);
        return;
    }
    tg_fuzz_check(kq.endpoint == rq->endpoint);
    tg_fuzz_check(kq.stream == rq->stream);
    tg_fuzz_check((kq.model == NULL) == (rq->model == NULL));
    tg_fuzz_check(kq.model == NULL || strcmp(kq.model, rq->model) == 0);
    tg_fuzz_check((kq.thinkgate == NULL) == (rq->thinkgate == NULL));
    tg_fuzz_check(kq.thinkgate == NULL
                  || json_equal(kq.thinkgate, rq->thinkgate));
    /* The members read without the tree are the tree's. */
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        tg_fuzz_check(tg_oa_int(&kq, names[i], &a) == tg_oa_int(rq, names[i],
                                                                 &b));
        tg_fuzz_check(!tg_oa_int(&kq, names[i], &a) || a == b);
        tg_fuzz_check(tg_oa_given(&kq, names[i]) == tg_oa_given(rq,
                                                                names[i]));
        s1 = tg_oa_str(&kq, names[i], buf, sizeof(buf));
        s2 = tg_oa_str(rq, names[i], NULL, 0);
        tg_fuzz_check((s1 == NULL) == (s2 == NULL));
        tg_fuzz_check(s1 == NULL || strcmp(s1, s2) == 0);
    }
    tg_fuzz_check(json_equal(tg_oa_body(&kq), rq->body));
    tg_oa_request_free(&kq);
}
