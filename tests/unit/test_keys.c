/*
 * Client keys in the engine (engine/serve/keys.c) without Redis: rights
 * (403), this gateway's own windows (429 with Retry-After, reset after
 * the window), what the "thinkgate" object says remains, and the bounded
 * Prometheus labels.  The request output, the Redis link and the loop's
 * clock are stand-ins defined here.
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "serve/keys.h"
#include "core/shared.h"

/* ---- stand-ins -------------------------------------------------------- */

static uint64_t  now_ms;
static int       answered;          /* status of the last answer */
static char      answer_headers[256];
static char      answer_body[1024];
static int       nexts;             /* continuations called */

uint64_t
uv_now(const uv_loop_t *loop)
{
    (void) loop;
    return now_ms;
}

tg_shared_t *
tg_shared_of(tg_engine_t *e, const tg_generation_t *g)
{
    (void) e;
    (void) g;
    return NULL;
}

int
tg_redis_connected(const tg_redis_t *r)
{
    (void) r;
    return 0;
}

int
tg_redis_command(tg_redis_t *r, int argc, const char **argv,
    const size_t *argvlen, tg_redis_cb cb, void *data,
    tg_redis_cmd_t **handle)
{
    (void) r; (void) argc; (void) argv; (void) argvlen; (void) cb;
    (void) data; (void) handle;
    return -ENOTCONN;
}

int
tg_redis_script_call(tg_redis_t *r, tg_redis_script_t *s, int nkeys,
    const char *const *keys, int nargs, const char *const *args,
    tg_redis_cb cb, void *data, tg_redis_cmd_t **handle)
{
    (void) r; (void) s; (void) nkeys; (void) keys; (void) nargs;
    (void) args; (void) cb; (void) data; (void) handle;
    return -ENOTCONN;
}

void
tg_redis_cancel(tg_redis_cmd_t *c)
{
    (void) c;
}

int
tg_request_head(tg_request_t *r, int status, unsigned flags,
    const char *headers)
{
    (void) r;
    (void) flags;
    answered = status;
    snprintf(answer_headers, sizeof(answer_headers), "%s",
             headers ? headers : "");
    answer_body[0] = '\0';
    return 0;
}

int
tg_request_data(tg_request_t *r, const void *p, size_t n)
{
    size_t  have = strlen(answer_body);

    (void) r;
    if (have + n < sizeof(answer_body)) {
        memcpy(answer_body + have, p, n);
        answer_body[have + n] = '\0';
    }
    return 0;
}

int
tg_request_end(tg_request_t *r, json_t *figures)
{
    (void) r;
    json_decref(figures);
    return 0;
}

int
tg_request_error(tg_request_t *r, const tg_oa_error_t *err)
{
    (void) r;
    answered = err->status;
    snprintf(answer_body, sizeof(answer_body), "%s", err->message);
    return 0;
}

/* ---- helpers ---------------------------------------------------------- */

static tg_engine_t  engine;

static void
next_cb(tg_request_t *r)
{
    (void) r;
    nexts++;
}

static tg_request_t *
request(const char *meta)
{
    tg_request_t   *r;
    tg_oa_error_t   err;
    json_error_t    jerr;

    r = calloc(1, sizeof(*r));
    cr_assert(r != NULL);
    r->engine = &engine;
    cr_assert_eq(tg_meta_read(&r->meta, meta, strlen(meta), &jerr), 0,
                 "%s", jerr.text);
    cr_assert_eq(tg_keys_meta(r, &err), 0, "%s", err.message);
    answered = 0;
    nexts = 0;
    return r;
}

static void
done(tg_request_t *r, uint64_t spent)
{
    tg_keys_close(r, spent);
    tg_keys_free_request(r);
    tg_meta_free(&r->meta);
    free(r);
}

static void
setup(void)
{
    memset(&engine, 0, sizeof(engine));
    engine.keys = tg_keys_new(2);
    now_ms = 1000000;
}

static void
teardown(void)
{
    tg_keys_free(engine.keys);
}

#define KEY(name, extra) \
    "{\"kind\":\"api\",\"key\":\"" name "\",\"key_models\":\"\"," \
    "\"key_strategies\":\"\",\"key_limits\":{" extra "}}"

TestSuite(keys, .init = setup, .fini = teardown);

/* ---- rights ----------------------------------------------------------- */

Test(keys, rights_by_model_pool_and_strategy)
{
    tg_request_t   *r;
    tg_oa_error_t   err;

    r = request("{\"kind\":\"api\",\"key\":\"alice\",\"key_models\":"
                "\"gpt-x,reasoners\",\"key_strategies\":\"ffs\"}");
    r->oa.model = "gpt-x";
    cr_assert_eq(tg_keys_allow_model(r, &err), 0);
    r->oa.model = "other";
    r->pool_name = "reasoners";
    cr_assert_eq(tg_keys_allow_model(r, &err), 0, "a pool grants");
    r->pool_name = "small";
    cr_assert_eq(tg_keys_allow_model(r, &err), -EPERM);
    cr_assert_eq(err.status, 403);
    cr_assert_str_eq(err.code, "model_not_allowed");
    cr_assert_str_eq(err.param, "model");
    cr_assert(strstr(err.message, "`other`") != NULL, "%s", err.message);
    /* a prefix of a listed name is not that name */
    r->oa.model = "gpt";
    cr_assert_eq(tg_keys_allow_model(r, &err), -EPERM);

    cr_assert_eq(tg_keys_allow_strategy(r, "ffs", &err), 0);
    cr_assert_eq(tg_keys_allow_strategy(r, "passthrough", &err), -EPERM);
    cr_assert_str_eq(err.code, "strategy_not_allowed");
    cr_assert(strstr(err.message, "`passthrough`") != NULL);
    done(r, 0);

    r = request(KEY("bob", ""));
    r->oa.model = "anything";
    cr_assert_eq(tg_keys_allow_model(r, &err), 0, "empty: any model");
    cr_assert_eq(tg_keys_allow_strategy(r, "trimr", &err), 0);
    done(r, 0);
}

Test(keys, no_key_no_checks)
{
    tg_request_t   *r;
    tg_oa_error_t   err;
    json_t         *o = json_object();

    r = request("{\"kind\":\"api\"}");
    cr_assert_null(r->key);
    cr_assert_eq(tg_keys_allow_model(r, &err), 0);
    tg_keys_admit(r, next_cb);
    cr_assert_eq(nexts, 1);
    cr_assert_eq(tg_keys_summary(r, o, 10), 0);
    cr_assert_eq(json_object_size(o), 0);
    json_decref(o);
    done(r, 10);
}

/* ---- windows ---------------------------------------------------------- */

Test(keys, token_window_refuses_once_full_then_resets)
{
    tg_request_t  *r;
    json_t        *o;

    /* 100 tokens per 10 s */
    r = request(KEY("alice", "\"tpm\":100,\"window_ms\":10000"));
    tg_keys_admit(r, next_cb);
    cr_assert_eq(nexts, 1);
    o = json_object();
    cr_assert_eq(tg_keys_summary(r, o, 60), 0);
    cr_assert_eq(json_integer_value(json_object_get(o,
                                   "key_tokens_remaining")), 40);
    cr_assert_eq(json_integer_value(json_object_get(o,
                                   "key_tokens_spent")), 60);
    json_decref(o);
    done(r, 60);

    /* 60 < 100: admitted, and it may overshoot */
    now_ms += 3000;
    r = request(KEY("alice", "\"tpm\":100,\"window_ms\":10000"));
    tg_keys_admit(r, next_cb);
    cr_assert_eq(nexts, 1);
    o = json_object();
    cr_assert_eq(tg_keys_summary(r, o, 50), 0);
    cr_assert_eq(json_integer_value(json_object_get(o,
                                   "key_tokens_remaining")), 0);
    json_decref(o);
    done(r, 50);

    /* 110 >= 100: refused until the window ends, 7 s from now */
    r = request(KEY("alice", "\"tpm\":100,\"window_ms\":10000"));
    tg_keys_admit(r, next_cb);
    cr_assert_eq(nexts, 0);
    cr_assert_eq(answered, 429);
    cr_assert(strstr(answer_headers, "Retry-After: 7\r\n") != NULL,
              "%s", answer_headers);
    cr_assert(strstr(answer_body, "\"rate_limit_exceeded\"") != NULL);
    cr_assert(strstr(answer_body, "\"tokens\"") != NULL, "%s", answer_body);
    done(r, 0);

    /* a refused request is not charged; after the window: admitted */
    now_ms += 6500;
    r = request(KEY("alice", "\"tpm\":100,\"window_ms\":10000"));
    tg_keys_admit(r, next_cb);
    cr_assert_eq(answered, 429);
    cr_assert(strstr(answer_headers, "Retry-After: 1\r\n") != NULL);
    done(r, 0);
    now_ms += 500;
    r = request(KEY("alice", "\"tpm\":100,\"window_ms\":10000"));
    tg_keys_admit(r, next_cb);
    cr_assert_eq(nexts, 1);
    cr_assert_eq(answered, 0);
    done(r, 10);
}

Test(keys, requests_and_day)
{
    tg_request_t  *r;
    int            i;

    for (i = 0; i < 2; i++) {
        r = request(KEY("rpm2", "\"rpm\":2"));
        tg_keys_admit(r, next_cb);
        cr_assert_eq(nexts, 1);
        done(r, 0);
    }
    r = request(KEY("rpm2", "\"rpm\":2"));
    tg_keys_admit(r, next_cb);
    cr_assert_eq(answered, 429);
    cr_assert(strstr(answer_body, "\"requests\"") != NULL);
    cr_assert(strstr(answer_headers, "Retry-After: 60\r\n") != NULL);
    done(r, 0);

    r = request(KEY("daily", "\"tpd\":5"));
    tg_keys_admit(r, next_cb);
    done(r, 5);
    now_ms += 3600000;
    r = request(KEY("daily", "\"tpd\":5"));
    tg_keys_admit(r, next_cb);
    cr_assert_eq(answered, 429);
    cr_assert(strstr(answer_body, "\"insufficient_quota\"") != NULL);
    cr_assert(strstr(answer_headers, "Retry-After: 82800\r\n") != NULL,
              "%s", answer_headers);
    done(r, 0);
}

Test(keys, a_burst_cannot_pass_the_request_limit_together)
{
    tg_request_t  *a, *b, *c;
    json_t        *o = json_object();

    /* three requests in flight at once: the third is refused */
    a = request(KEY("burst", "\"rpm\":2"));
    tg_keys_admit(a, next_cb);
    b = request(KEY("burst", "\"rpm\":2"));
    tg_keys_admit(b, next_cb);
    cr_assert_eq(nexts, 1);
    cr_assert_eq(tg_keys_summary(b, o, 0), 0);
    cr_assert_eq(json_integer_value(json_object_get(o,
                                   "key_requests_remaining")), 0);
    c = request(KEY("burst", "\"rpm\":2"));
    tg_keys_admit(c, next_cb);
    cr_assert_eq(answered, 429);
    done(c, 0);
    done(b, 0);
    done(a, 0);
    json_decref(o);
}

Test(keys, a_client_gone_before_admission_is_not_charged)
{
    tg_request_t  *r;

    r = request(KEY("c", "\"rpm\":1"));
    done(r, 500);           /* closed before tg_keys_admit */
    r = request(KEY("c", "\"rpm\":1"));
    tg_keys_admit(r, next_cb);
    cr_assert_eq(nexts, 1);
    done(r, 0);
}

/* ---- metrics ---------------------------------------------------------- */

Test(keys, prometheus_labels_are_bounded)
{
    static const char *const names[] = { "k1", "k2", "k3", "k4", "other" };
    tg_request_t  *r;
    tg_buf_t       b = { 0 };
    char           meta[256], *text;
    size_t         i;

    for (i = 0; i < 5; i++) {
        snprintf(meta, sizeof(meta), KEY("%s", ""), names[i]);
        r = request(meta);
        tg_keys_admit(r, next_cb);
        done(r, 10 * (i + 1));
    }
    r = request(KEY("k1", ""));
    cr_assert_eq(tg_keys_status_prometheus(r, &b), 0);
    done(r, 0);
    cr_assert_eq(tg_buf_append(&b, "", 1), 0);
    text = (char *) tg_buf_ptr(&b);
    cr_assert(strstr(text, "thinkgate_key_tokens_total{key=\"k1\"} 10\n"));
    cr_assert(strstr(text, "thinkgate_key_tokens_total{key=\"k2\"} 20\n"));
    cr_assert(strstr(text, "{key=\"k3\"}") == NULL, "%s", text);
    /* k3, k4 and the key named "other" */
    cr_assert(strstr(text, "thinkgate_key_tokens_total{key=\"other\"} "
                     "120\n"), "%s", text);
    cr_assert(strstr(text, "thinkgate_key_requests_total{key=\"other\"} "
                     "3\n"));
    cr_assert(strstr(text, "thinkgate_key_limits_shared 0\n"));
    tg_buf_free(&b);
}
