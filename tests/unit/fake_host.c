/*
 * thinkgate — the fake strategy host: its lifecycle, options, scripts and
 * results.  See fake_host.h for the model and fake_host_int.h for how the
 * other files divide the rest.
 *
 * Test code: it favours being obviously right over being fast, and keeps
 * one request per host, so the tg_req_t the plugin sees is the host.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_host_int.h"

static int fake__opt_parse(fake_host_t *h, const tg_option_t *o,
    const char *v, fake_opt_t *out);

fake_host_t  *fake_host_current;


fake_host_t *
fake_host_new(const tg_plugin_t *plugin)
{
    fake_host_t        *h;
    const tg_option_t  *o;
    char                err[256] = "";
    size_t              i;

    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return NULL;
    }
    h->plugin = plugin;
    h->step = 1;
    h->client_n = 1;
    h->winner = -1;
    h->cancel_at = UINT64_MAX;
    h->info.endpoint = TG_ENDPOINT_CHAT;
    h->info.stream = 1;
    h->info.model = "fake-model";
    h->info.body = "{\"messages\":[]}";
    h->info.body_len = strlen(h->info.body);
    h->info.problem = "What is 1+1?";
    h->info.problem_len = strlen(h->info.problem);
    h->info.pool = "default";
    h->info.strategy = plugin->name;
    h->info.id = 1;

    for (o = plugin->options; o != NULL && o->name != NULL; o++) {
        h->nopts++;
    }
    if (h->nopts > 0) {
        h->opts = calloc(h->nopts, sizeof(fake_opt_t));
        if (h->opts == NULL) {
            free(h);
            return NULL;
        }
    }
    for (i = 0; i < h->nopts; i++) {
        o = &plugin->options[i];
        if (o->def != NULL
            && fake__opt_parse(h, o, o->def, &h->opts[i]) != 0)
        {
            fprintf(stderr, "fake host: %s: default of \"%s\" is invalid: "
                    "%s\n", plugin->name, o->name, h->err);
            fake__violation(h, "option \"%s\": bad default", o->name);
        }
    }
    if (plugin->state_size > 0) {
        h->state = calloc(1, plugin->state_size);
        if (h->state == NULL) {
            free(h->opts);
            free(h);
            return NULL;
        }
    }
    if (plugin->load(fake_host_api(), err, sizeof(err)) != 0) {
        fprintf(stderr, "fake host: %s refused to load: %s\n", plugin->name,
                err);
        free(h->state);
        free(h->opts);
        free(h);
        return NULL;
    }
    return h;
}


void
fake_host_free(fake_host_t *h)
{
    fake_block_t  *b;
    fake_job_t    *j;
    size_t         i;

    if (h == NULL) {
        return;
    }
    if (h->plugin->unload != NULL) {
        h->plugin->unload();
    }
    while ((b = h->arena) != NULL) {
        h->arena = b->next;
        free(b);
    }
    while ((j = h->jobs) != NULL) {
        h->jobs = j->next;
        free(j->value);
        free(j->vectors);
        free(j->sim);
        free(j);
    }
    for (i = 0; i < h->ntraces; i++) {
        free(h->traces[i]->messages);
        free(h->traces[i]);
    }
    for (i = 0; i < h->nsummary; i++) {
        free(h->summary[i].key);
        free(h->summary[i].json);
    }
    for (i = 0; i < h->ncounters; i++) {
        free(h->counters[i].name);
    }
    for (i = 0; i < h->nkv; i++) {
        free(h->kv[i].key);
        free(h->kv[i].value);
    }
    for (i = 0; i < h->naux && i < FAKE_HOST_MAX_AUX; i++) {
        free(h->aux_text[i]);
        free(h->aux_stop[i]);
    }
    free(h->continue_append);
    free(h->pools);
    free(h->kv);
    free(h->counters);
    free(h->summary);
    free(h->out_reasoning.p);
    free(h->out_content.p);
    free(h->fail_message);
    free(h->aux_reply);
    free(h->aux_reasoning);
    free(h->aux_error);
    free(h->opts);
    free(h->state);
    free(h);
}


void
fake__violation(fake_host_t *h, const char *fmt, ...)
{
    va_list  ap;

    if (h->violations++ == 0) {
        va_start(ap, fmt);
        vsnprintf(h->violation, sizeof(h->violation), fmt, ap);
        va_end(ap);
    }
}


int
fake__buf_add(fake_host_t *h, fake_buf_t *b, const char *s, size_t len)
{
    size_t  cap;
    char   *p;

    if (b->len + len + 1 > b->cap) {
        cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1) {
            cap *= 2;
        }
        p = realloc(b->p, cap);
        if (p == NULL) {
            fake__violation(h, "fake host out of memory");
            return -ENOMEM;
        }
        b->p = p;
        b->cap = cap;
    }
    if (len > 0) {
        memcpy(b->p + b->len, s, len);
    }
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}



/* One over the request's end: calls that start work after finish/fail are
 * plugin bugs the real host would only log. */
int
fake__check_open(fake_host_t *h, const char *what)
{
    if (fake__over(h)) {
        fake__violation(h, "%s() after the request ended", what);
        snprintf(h->err, sizeof(h->err), "the request has ended");
        return -ECANCELED;
    }
    return 0;
}



/* ---- options ---- */

static int
fake__opt_parse(fake_host_t *h, const tg_option_t *o, const char *v,
    fake_opt_t *out)
{
    char        *end;
    const char  *c;
    size_t       len = strlen(v);
    double       d;

    memset(out, 0, sizeof(*out));
    switch (o->type) {
    case TG_OPT_INT:
        errno = 0;
        out->i = strtoll(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0') {
            goto bad;
        }
        if ((double) out->i < o->min || (double) out->i > o->max) {
            goto range;
        }
        out->d = (double) out->i;
        break;
    case TG_OPT_DOUBLE:
        d = strtod(v, &end);
        if (end == v || *end != '\0' || d != d) {
            goto bad;
        }
        if (d < o->min || d > o->max) {
            goto range;
        }
        out->d = d;
        break;
    case TG_OPT_BOOL:
        if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1")) {
            out->i = 1;
        } else if (strcmp(v, "off") && strcmp(v, "false") && strcmp(v, "0")) {
            goto bad;
        }
        break;
    case TG_OPT_STRING:
        if (len > 256) {
            goto bad;
        }
        break;
    case TG_OPT_ENUM:
        for (c = o->choices; c != NULL && *c != '\0'; ) {
            size_t  w = strcspn(c, "|");

            if (w == len && strncmp(c, v, len) == 0) {
                break;
            }
            c += w;
            c += *c == '|';
        }
        if (c == NULL || *c == '\0') {
            goto bad;
        }
        break;
    default:
        goto bad;
    }
    if (len >= sizeof(out->s)) {
        goto bad;
    }
    memcpy(out->s, v, len + 1);
    out->set = 1;
    return 0;

bad:
    snprintf(h->err, sizeof(h->err), "invalid value \"%s\" for \"%s\"", v,
             o->name);
    return -EINVAL;
range:
    snprintf(h->err, sizeof(h->err), "\"%s\" must be within %g..%g, not %s",
             o->name, o->min, o->max, v);
    return -EINVAL;
}


int
fake_host_set_options(fake_host_t *h, const char *text)
{
    char        buf[1024], *tok, *save = NULL, *eq;
    fake_opt_t  val;
    size_t      i;

    if (strlen(text) >= sizeof(buf)) {
        snprintf(h->err, sizeof(h->err), "options too long");
        return -EINVAL;
    }
    strcpy(buf, text);
    for (tok = strtok_r(buf, " ", &save); tok != NULL;
         tok = strtok_r(NULL, " ", &save))
    {
        eq = strchr(tok, '=');
        if (eq == NULL) {
            snprintf(h->err, sizeof(h->err), "\"%s\" has no value", tok);
            return -EINVAL;
        }
        *eq = '\0';
        for (i = 0; i < h->nopts; i++) {
            if (strcmp(h->plugin->options[i].name, tok) == 0) {
                break;
            }
        }
        if (i == h->nopts) {
            snprintf(h->err, sizeof(h->err), "unknown option \"%s\"", tok);
            return -EINVAL;
        }
        if (fake__opt_parse(h, &h->plugin->options[i], eq + 1, &val) != 0) {
            return -EINVAL;
        }
        h->opts[i] = val;
    }
    return 0;
}


const char *
fake_host_error(const fake_host_t *h)
{
    return h->err;
}


void
fake_host_set_request(fake_host_t *h, const tg_request_info_t *info)
{
    h->info = *info;
    if (h->info.strategy == NULL) {
        h->info.strategy = h->plugin->name;
    }
}


int
fake_host_add_trace(fake_host_t *h, const fake_trace_script_t *s)
{
    if (h->nscripts == FAKE_HOST_MAX_TRACES) {
        return -ENOSPC;
    }
    h->scripts[h->nscripts++] = *s;
    return 0;
}


void
fake_host_set_step(fake_host_t *h, uint64_t ms)
{
    h->step = ms > 0 ? ms : 1;
}


void
fake_host_cancel_at(fake_host_t *h, uint64_t ms)
{
    h->cancel_at = ms;
}


void
fake_host_set_aux_reply(fake_host_t *h, const char *content,
    uint64_t delay_ms)
{
    free(h->aux_reply);
    h->aux_reply = content != NULL ? strdup(content) : NULL;
    h->aux_delay = delay_ms;
}


void
fake_host_set_aux_top(fake_host_t *h, const tg_logprob_t *top, size_t n)
{
    size_t  i, len;

    h->aux_ntop = 0;
    for (i = 0; i < n && i < FAKE_HOST_MAX_TOP; i++) {
        len = top[i].token_len < sizeof(h->aux_top_text[i])
              ? top[i].token_len : sizeof(h->aux_top_text[i]) - 1;
        memcpy(h->aux_top_text[i], top[i].token, len);
        h->aux_top_text[i][len] = '\0';
        h->aux_top[i].token = h->aux_top_text[i];
        h->aux_top[i].token_len = len;
        h->aux_top[i].logprob = top[i].logprob;
        h->aux_ntop++;
    }
}


void
fake_host_set_aux_failure(fake_host_t *h, int status, const char *error)
{
    free(h->aux_error);
    h->aux_error = error != NULL ? strdup(error) : NULL;
    h->aux_status = status < 0 ? status : 0;
}


int
fake_host_add_aux(fake_host_t *h, const fake_aux_script_t *s)
{
    if (h->naux_scripts >= FAKE_HOST_MAX_AUX) {
        return -ENOSPC;
    }
    h->aux_scripts[h->naux_scripts++] = *s;
    return 0;
}


size_t
fake_host_aux_started(const fake_host_t *h)
{
    return h->naux;
}


const char *
fake_host_aux_text(const fake_host_t *h, size_t i)
{
    return i < h->naux && i < FAKE_HOST_MAX_AUX ? h->aux_text[i] : NULL;
}


const char *
fake_host_aux_stop(const fake_host_t *h, size_t i)
{
    return i < h->naux && i < FAKE_HOST_MAX_AUX ? h->aux_stop[i] : NULL;
}


const char *
fake_host_continue_append(const fake_host_t *h)
{
    return h->continue_append;
}


void
fake_host_set_kv_down(fake_host_t *h, int down)
{
    h->kv_down = !!down;
}


void
fake_host_set_backends(fake_host_t *h, const tg_backend_info_t *b, size_t n)
{
    h->nbackends = n < FAKE_HOST_MAX_BACKENDS ? n : FAKE_HOST_MAX_BACKENDS;
    memcpy(h->backends, b, h->nbackends * sizeof(*b));
}


void
fake_host_set_embedder(fake_host_t *h, int on)
{
    h->embedder = !!on;
}


void
fake_host_set_aux_reasoning(fake_host_t *h, const char *reasoning)
{
    free(h->aux_reasoning);
    h->aux_reasoning = reasoning != NULL ? strdup(reasoning) : NULL;
}


void
fake_host_set_client_n(fake_host_t *h, uint32_t n)
{
    h->client_n = n > 0 ? n : 1;
}


void
fake_host_set_pools(fake_host_t *h, const char *names)
{
    free(h->pools);
    h->pools = names != NULL ? strdup(names) : NULL;
}


int
fake__pool_known(fake_host_t *h, const char *pool)
{
    const char  *p;
    size_t       len;

    if (pool == NULL || h->pools == NULL) {
        return 0;
    }
    len = strlen(pool);
    for (p = h->pools; (p = strstr(p, pool)) != NULL; p += len) {
        if ((p == h->pools || p[-1] == ' ')
            && (p[len] == ' ' || p[len] == '\0'))
        {
            return 0;
        }
    }
    snprintf(h->err, sizeof(h->err), "no pool \"%.64s\" in this "
             "configuration", pool);
    return -ENOENT;
}


/* ---- results ---- */

fake_end_t fake_host_end(const fake_host_t *h) { return h->end; }
int fake_host_end_calls(const fake_host_t *h) { return h->end_calls; }
int fake_host_winner(const fake_host_t *h) { return h->winner; }
int fake_host_fail_status(const fake_host_t *h) { return h->fail_status; }
uint32_t fake_host_usage_tokens(const fake_host_t *h) { return h->usage; }
uint64_t fake_host_end_ms(const fake_host_t *h) { return h->end_ms; }
int fake_host_violations(const fake_host_t *h) { return h->violations; }
const char *fake_host_violation(const fake_host_t *h) { return h->violation; }
int fake_host_destroyed(const fake_host_t *h) { return h->destroyed; }
size_t fake_host_traces_started(const fake_host_t *h) { return h->ntraces; }


const char *
fake_host_fail_message(const fake_host_t *h)
{
    return h->fail_message ? h->fail_message : "";
}


const char *
fake_host_finish_reason(const fake_host_t *h)
{
    return h->finish_reason ? h->finish_reason : "";
}


const char *
fake_host_out_reasoning(const fake_host_t *h)
{
    return h->out_reasoning.p ? h->out_reasoning.p : "";
}


const char *
fake_host_out_content(const fake_host_t *h)
{
    return h->out_content.p ? h->out_content.p : "";
}


size_t
fake_host_traces_cancelled(const fake_host_t *h)
{
    size_t  i, n = 0;

    for (i = 0; i < h->ntraces; i++) {
        n += h->traces[i]->state == TG_TRACE_CANCELLED;
    }
    return n;
}


uint64_t
fake_host_tokens(const fake_host_t *h)
{
    uint64_t  n = 0;
    size_t    i;

    for (i = 0; i < h->ntraces; i++) {
        n += h->traces[i]->produced;
    }
    return n;
}


const fake_trace_result_t *
fake_host_trace(const fake_host_t *h, size_t i)
{
    fake_trace_result_t  *r;
    tg_trace_t           *t;

    if (i >= h->ntraces) {
        return NULL;
    }
    t = h->traces[i];
    r = &t->result;
    r->state = t->state;
    r->tokens = t->produced;
    r->ended_ms = t->ended_ms;
    r->cancelled_by_plugin = t->cancelled_by_plugin;
    r->end_order = t->end_order;
    r->flags = t->spec.flags;
    r->backend = t->spec.backend;
    r->seed_mode = t->spec.seed_mode;
    r->seed = t->spec.seed;
    r->pool = t->spec.pool;
    r->messages_json = t->messages;
    return r;
}


const char *
fake_host_summary(const fake_host_t *h, const char *key)
{
    size_t  i;

    for (i = 0; i < h->nsummary; i++) {
        if (strcmp(h->summary[i].key, key) == 0) {
            return h->summary[i].json;
        }
    }
    return NULL;
}


int64_t
fake_host_counter(const fake_host_t *h, const char *name)
{
    size_t  i;

    for (i = 0; i < h->ncounters; i++) {
        if (strcmp(h->counters[i].name, name) == 0) {
            return h->counters[i].value;
        }
    }
    return 0;
}
