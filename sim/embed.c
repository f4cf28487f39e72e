/*
 * POST /v1/embeddings: deterministic vectors from the text, in the OpenAI
 * response shape, so that embedding pools and aux embedding calls can be
 * tested without a model.
 *
 * A vector is signed feature hashing of the lower-cased text's character
 * 3-grams and words, L2-normalised: equal texts give equal vectors,
 * texts sharing words and fragments point the same way, unrelated texts
 * are near orthogonal.  Nothing about it is a trained embedding; it is
 * labelled by the model name the request gave.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "request.h"

#define TG_SIM_EMBED_DIM     384        /* all-MiniLM-L6-v2's */
#define TG_SIM_EMBED_MAX_DIM 4096
#define TG_SIM_EMBED_MAX_IN  2048       /* OpenAI's limit per request */

static void
tg_sim_embed_add(float *v, size_t dim, const unsigned char *p, size_t n,
                 uint64_t salt)
{
    uint64_t h = tg_sim_hash(0xcbf29ce484222325ULL ^ salt, p, n);

    /* The high bit picks the sign, so that collisions cancel on average
     * instead of piling up. */
    v[(h >> 1) % dim] += (h >> 63) ? -1.0f : 1.0f;
}

void
tg_sim_embed_vector(const char *text, size_t len, size_t dim, float *v)
{
    unsigned char *low = malloc(len + 1);
    size_t i, w = 0;
    double norm = 0;

    memset(v, 0, dim * sizeof(float));
    if (low == NULL)
        return;
    for (i = 0; i < len; i++)
        low[i] = (unsigned char) tolower((unsigned char) text[i]);
    for (i = 0; i + 3 <= len; i++)
        tg_sim_embed_add(v, dim, low + i, 3, 3);
    for (i = 0; i <= len; i++) {
        if (i == len || !isalnum(low[i])) {
            if (i > w)
                tg_sim_embed_add(v, dim, low + w, i - w, 1);
            w = i + 1;
        }
    }
    /* Shorter than one 3-gram and no word: still a vector of its own. */
    if (len < 3)
        tg_sim_embed_add(v, dim, low, len, 7);
    free(low);
    for (i = 0; i < dim; i++)
        norm += (double) v[i] * v[i];
    norm = sqrt(norm);
    for (i = 0; norm > 0 && i < dim; i++)
        v[i] = (float) (v[i] / norm);
}

/* The texts of "input": a string or a non-empty array of strings. */
static int
tg_sim_embed_inputs(json_t *input, json_t **list, tg_sim_err_t *e)
{
    size_t i;
    json_t *x;

    if (json_is_string(input)) {
        *list = json_pack("[O]", input);
    } else if (json_is_array(input) && json_array_size(input) > 0
               && json_array_size(input) <= TG_SIM_EMBED_MAX_IN) {
        json_array_foreach(input, i, x) {
            if (!json_is_string(x))
                return tg_sim_fail(e, 400, "input", NULL, "'input' must be "
                                   "a string or an array of strings (the "
                                   "sim takes no token ids)%s", NULL);
        }
        *list = json_incref(input);
    } else {
        return tg_sim_fail(e, 400, "input", NULL, "'input' must be a string "
                           "or an array of 1 to 2048 strings%s", NULL);
    }
    if (*list == NULL)
        return tg_sim_fail(e, 500, NULL, NULL, "out of memory%s", NULL);
    json_array_foreach(*list, i, x) {
        if (json_string_length(x) == 0) {
            json_decref(*list);
            *list = NULL;
            return tg_sim_fail(e, 400, "input", NULL, "'input' must not "
                               "hold an empty string%s", NULL);
        }
    }
    return 0;
}

/* 'model', 'dimensions' and 'encoding_format' (only "float"). */
static int
tg_sim_embed_params(tg_sim_t *sim, json_t *body, const char **model,
                    size_t *dim, tg_sim_err_t *e)
{
    json_t *v = json_object_get(body, "model");
    const char *fmt;

    if (!json_is_string(v))
        return tg_sim_fail(e, 400, "model", NULL, "'model' must be a string "
                           "naming a model%s", NULL);
    *model = json_string_value(v);
    if (sim->traces != NULL ? !tg_sim_traces_has_model(sim->traces, *model)
                            : strcmp(*model, sim->opt.model) != 0)
        return tg_sim_fail(e, 404, "model", "model_not_found",
                           "The model `%s` does not exist.", *model);
    v = json_object_get(body, "dimensions");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1
            || json_integer_value(v) > TG_SIM_EMBED_MAX_DIM)
            return tg_sim_fail(e, 400, "dimensions", NULL, "'dimensions' "
                               "must be an integer from 1 to 4096%s", NULL);
        *dim = (size_t) json_integer_value(v);
    }
    fmt = json_string_value(json_object_get(body, "encoding_format"));
    if (json_object_get(body, "encoding_format") != NULL
        && (fmt == NULL || strcmp(fmt, "float") != 0))
        return tg_sim_fail(e, 400, "encoding_format", NULL,
                           "'encoding_format' must be \"float\" (the sim "
                           "sends no base64)%s", NULL);
    return 0;
}

/* One entry of data: the embedding of input i, x; vec is scratch of dim
 * floats. */
static int
tg_sim_embed_entry(struct evbuffer *out, size_t i, json_t *x, size_t dim,
                   float *vec)
{
    size_t j;

    tg_sim_embed_vector(json_string_value(x), json_string_length(x), dim,
                        vec);
    if (evbuffer_add_printf(out, "%s{\"object\":\"embedding\",\"index\":"
                            "%zu,\"embedding\":[", i ? "," : "", i) < 0)
        return -1;
    for (j = 0; j < dim; j++)
        if (evbuffer_add_printf(out, "%s%.7g", j ? "," : "",
                                (double) vec[j]) < 0)
            return -1;
    return evbuffer_add_printf(out, "]}") < 0 ? -1 : 0;
}

/* The reply: one embedding per input, the model and the usage (a token
 * per four bytes); -1 when out of memory. */
static int
tg_sim_embed_render(json_t *list, const char *model, size_t dim,
                    struct evbuffer *out)
{
    size_t i, tokens = 0;
    json_t *x;
    float *vec = malloc(dim * sizeof(float));
    int rc = -1;

    if (vec == NULL || evbuffer_add_printf(out, "{\"object\":\"list\","
                                           "\"data\":[") < 0)
        goto done;
    json_array_foreach(list, i, x) {
        tokens += (json_string_length(x) + 3) / 4;
        if (tg_sim_embed_entry(out, i, x, dim, vec) != 0)
            goto done;
    }
    if (evbuffer_add_printf(out, "],\"model\":") < 0
        || tg_sim_json_str(out, model, strlen(model)) != 0
        || evbuffer_add_printf(out, ",\"usage\":{\"prompt_tokens\":%zu,"
                               "\"total_tokens\":%zu}}\n", tokens,
                               tokens) < 0)
        goto done;
    rc = 0;
done:
    free(vec);
    return rc;
}

int
tg_sim_embed_reply(tg_sim_t *sim, const char *raw, size_t len,
                   struct evbuffer *out, tg_sim_err_t *e)
{
    json_error_t jerr;
    json_t *body, *list = NULL;
    const char *model = NULL;
    size_t dim = TG_SIM_EMBED_DIM;
    int rc = -1;

    body = json_loadb(raw ? raw : "", len, 0, &jerr);
    if (!json_is_object(body)) {
        tg_sim_fail(e, 400, NULL, NULL, "the body must be a JSON object: %s",
                    body == NULL ? jerr.text : "not an object");
        goto done;
    }
    if (tg_sim_embed_params(sim, body, &model, &dim, e) != 0
        || tg_sim_embed_inputs(json_object_get(body, "input"), &list, e) != 0)
        goto done;
    if (tg_sim_embed_render(list, model, dim, out) != 0) {
        tg_sim_fail(e, 500, NULL, NULL, "out of memory%s", NULL);
        goto done;
    }
    sim->stats.requests++;
    rc = 0;
done:
    json_decref(list);
    json_decref(body);
    return rc;
}
