/*
 * Which strategy a request runs, and with which options (DESIGN §4):
 *
 *   1. the body's "thinkgate": {"strategy": "ffs", "n": 8}
 *   2. the header X-Thinkgate-Strategy: ffs; n=8
 *   3. the location's thinkgate_strategy (meta "strategy": "ffs n=8")
 *   4. passthrough
 *
 * The first that names a strategy chooses it.  Options add up in rising
 * precedence: the location's and the header's count only when they name
 * the chosen strategy; the body's always do (a body may give options
 * without a name, for the strategy chosen elsewhere).  A client choice
 * (body or header) is refused with a 400 unless the location allows it
 * (thinkgate_client_strategy on): silently ignoring it would answer with
 * a strategy the client did not ask for.
 *
 * The location's text is parsed once: when a worker registers, each
 * thinkgate_strategy of its configuration (the document's "strategies")
 * is parsed and checked against its plugin's option table, and a refused
 * one refuses the registration (tg_host_check_strategies).  Requests use
 * that parsed selection, and check its options again only when the
 * plugin has been reloaded since (another option table may refuse them:
 * then 500 invalid_strategy, as before registration checked them).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strategy/host.h"

#define TG_SELECT_DEFAULT  "passthrough"

/* A location's thinkgate_strategy parsed once (tg_loc_strategy_t's
 * parsed, kept with its generation). */
typedef struct {
    tg_plugin_selection_t   sel;
    uint64_t                checked;    /* the plugin version (generation
                                           number) whose option table
                                           passed sel; 0: none yet */
} tg__loc_sel_t;

/* The location's selection for one request: its generation's, or parsed
 * now (a reasoning_effort level's, or a text the generation lacks). */
typedef struct {
    const tg_plugin_selection_t  *sel;
    tg_plugin_selection_t         own;
    tg__loc_sel_t                *cached;   /* NULL: sel is &own */
} tg__loc_t;

static int tg__select_add(const char **keys, const char **values,
    size_t *n, const tg_plugin_selection_t *sel);
static int tg__select_parse_client(tg_request_t *r,
    tg_plugin_selection_t *body, tg_plugin_selection_t *hdr,
    tg_oa_error_t *err);
static tg__loc_sel_t *tg__select_cached(tg_generation_t *g,
    const char *text);
static int tg__select_parse_location(tg_request_t *r, tg_host_req_t *hr,
    tg__loc_t *loc, tg_oa_error_t *err);
static int tg__select_acquire(tg_plugin_registry_t *reg, const char *name,
    const char *from, const tg_plugin_selection_t *body, tg_host_req_t *hr,
    tg_oa_error_t *err);
static int tg__select_options(tg_host_req_t *hr, const char *name,
    tg__loc_t *loc, const tg_plugin_selection_t *hdr,
    const tg_plugin_selection_t *body, tg_oa_error_t *err);
static int tg__select_loc_check(tg_host_req_t *hr, tg__loc_t *loc,
    const char **keys, const char **values, size_t n, tg_oa_error_t *err);
static int tg__check_one(tg_plugin_registry_t *reg, tg_loc_strategy_t *s,
    char *err, size_t errlen);
static void tg__loc_sel_free(void *parsed);


static int
tg__select_add(const char **keys, const char **values, size_t *n,
    const tg_plugin_selection_t *sel)
{
    size_t  i;

    for (i = 0; i < sel->n; i++) {
        if (*n >= 3 * TG_SELECTION_MAX) {
            return -E2BIG;
        }
        keys[*n] = sel->keys[i];
        values[*n] = sel->values[i];
        (*n)++;
    }
    return 0;
}


/*
 * The client's choice: the body's "thinkgate" object and the
 * X-Thinkgate-Strategy header, each refused unless the location allows
 * a client to choose.
 */
static int
tg__select_parse_client(tg_request_t *r, tg_plugin_selection_t *body,
    tg_plugin_selection_t *hdr, tg_oa_error_t *err)
{
    const char  *text;
    char         msg[512];
    int          client_ok, rc;

    client_ok = r->meta.client_strategy;

    if (r->oa.thinkgate != NULL) {
        if (!client_ok) {
            tg_oa_error_set(err, 400, "invalid_request_error",
                            "client_strategy_disabled", "thinkgate",
                            "Client strategy choice is disabled here "
                            "(thinkgate_client_strategy off): remove the "
                            "\"thinkgate\" object from the request.");
            return -EPERM;
        }
        rc = tg_plugin_selection_parse_json(r->oa.thinkgate, body, msg,
                                            sizeof(msg));
        if (rc != 0) {
            tg_oa_error_set(err, 400, "invalid_request_error",
                            "invalid_strategy", "thinkgate",
                            "Invalid \"thinkgate\" object: %s", msg);
            return rc;
        }
    }

    text = r->meta.h_strategy;
    if (text == NULL) {
        return 0;
    }
    if (!client_ok) {
        tg_oa_error_set(err, 400, "invalid_request_error",
                        "client_strategy_disabled", NULL,
                        "Client strategy choice is disabled here "
                        "(thinkgate_client_strategy off): remove the "
                        "X-Thinkgate-Strategy header.");
        return -EPERM;
    }
    rc = tg_plugin_selection_parse_header(text, strlen(text), hdr, msg,
                                          sizeof(msg));
    if (rc != 0) {
        tg_oa_error_set(err, 400, "invalid_request_error",
                        "invalid_strategy", NULL,
                        "Invalid X-Thinkgate-Strategy header: %s", msg);
    }
    return rc;
}


/* The generation's parsed form of a location's text; NULL when the
 * generation does not carry it (an engine client sending meta alone). */
static tg__loc_sel_t *
tg__select_cached(tg_generation_t *g, const char *text)
{
    size_t  i;

    for (i = 0; g != NULL && i < g->nstrategies; i++) {
        if (g->strategies[i].parsed != NULL
            && strcmp(g->strategies[i].text, text) == 0)
        {
            return g->strategies[i].parsed;
        }
    }
    return NULL;
}


/*
 * The location's thinkgate_strategy, or the strategy a reasoning_effort
 * level names in its stead; its options are checked as the location's
 * are.
 */
static int
tg__select_parse_location(tg_request_t *r, tg_host_req_t *hr,
    tg__loc_t *loc, tg_oa_error_t *err)
{
    const char   *text;
    char          msg[512];
    tg_effort_t   effort;
    int           rc;

    loc->sel = &loc->own;
    rc = tg__host_effort(hr, &effort, err);
    if (rc != 0) {
        return rc;
    }
    text = effort.strategy[0] != '\0' ? effort.strategy
           : r->meta.strategy;
    if (text == NULL || text[0] == '\0') {
        return 0;
    }
    if (text != effort.strategy) {
        loc->cached = tg__select_cached(r->gen, text);
        if (loc->cached != NULL) {
            loc->sel = &loc->cached->sel;
            return 0;
        }
    }
    rc = tg_plugin_selection_parse_args(text, strlen(text), &loc->own, msg,
                                        sizeof(msg));
    if (rc != 0) {
        tg_oa_error_set(err, 500, "server_error", "invalid_strategy",
                        NULL, "This location's thinkgate_strategy is "
                        "invalid: %s", msg);
    }
    return rc;
}


/*
 * Takes a reference on the chosen strategy's plugin.  An unknown name is
 * the client's error when the client chose it, the server's otherwise.
 */
static int
tg__select_acquire(tg_plugin_registry_t *reg, const char *name,
    const char *from, const tg_plugin_selection_t *body, tg_host_req_t *hr,
    tg_oa_error_t *err)
{
    char  msg[512];
    int   rc;

    if (reg == NULL) {
        tg_oa_error_set(err, 503, "server_error", "no_plugins", NULL,
                        "The engine runs without --plugin-dir: strategy "
                        "\"%s\" cannot be loaded.", name);
        return -ENOENT;
    }

    rc = tg_plugin_acquire(reg, name, &hr->version, msg, sizeof(msg));
    if (rc != 0) {
        hr->version = NULL;
        if ((rc == -ENOENT || rc == -EINVAL) && strcmp(from, "client") == 0) {
            tg_oa_error_set(err, 400, "invalid_request_error",
                            "unknown_strategy", body->name ? "thinkgate"
                                                           : NULL,
                            "Unknown strategy \"%.64s\": no such plugin.",
                            name);
        } else if (rc == -ENOENT || rc == -EINVAL) {
            tg_oa_error_set(err, strcmp(from, "default") == 0 ? 503 : 500,
                            "server_error", "missing_plugin", NULL,
                            "Strategy plugin \"%.64s\" is missing from the "
                            "plugin directory %s: %s", name,
                            tg_plugin_registry_dir(reg), msg);
        } else {
            tg_oa_error_set(err, 503, "server_error", "plugin_unavailable",
                            NULL, "Strategy plugin \"%.64s\" cannot be "
                            "loaded: %s", name, msg);
        }
        return rc;
    }
    hr->p = tg_plugin_version_plugin(hr->version);
    if (strlen(name) < sizeof(hr->strategy_buf)) {
        hr->strategy = strcpy(hr->strategy_buf, name);
    } else {
        hr->strategy = strdup(name);
    }
    if (hr->strategy == NULL) {
        tg_oa_error_set(err, 500, NULL, NULL, NULL, "out of memory");
        return -ENOMEM;
    }
    return 0;
}


/*
 * The location's options alone, n of them in keys/values: an error there
 * is the server's, not the client's.  Skipped when registration (or an
 * earlier request) passed them against this very plugin version.
 */
static int
tg__select_loc_check(tg_host_req_t *hr, tg__loc_t *loc, const char **keys,
    const char **values, size_t n, tg_oa_error_t *err)
{
    uint64_t  version;
    char      msg[512];
    int       rc;

    version = tg_plugin_version_generation(hr->version);
    if (loc->cached != NULL && loc->cached->checked == version) {
        return 0;
    }
    rc = tg_plugin_parse_options(hr->p, keys, values, n, &hr->opts, msg,
                                 sizeof(msg));
    if (rc != 0) {
        tg_oa_error_set(err, 500, "server_error", "invalid_strategy",
                        NULL, "This location's thinkgate_strategy is "
                        "invalid: %s", msg);
        return rc;
    }
    tg_opt_values_free(&hr->opts);
    if (loc->cached != NULL) {
        loc->cached->checked = version;
    }
    return 0;
}


/*
 * Parses the options that add up for the chosen strategy into hr->opts:
 * the location's and the header's when they name it, the body's always.
 */
static int
tg__select_options(tg_host_req_t *hr, const char *name, tg__loc_t *loc,
    const tg_plugin_selection_t *hdr, const tg_plugin_selection_t *body,
    tg_oa_error_t *err)
{
    const char  *keys[3 * TG_SELECTION_MAX];
    const char  *values[3 * TG_SELECTION_MAX];
    char         msg[512];
    size_t       n = 0;
    int          rc;

    if (loc->sel->name != NULL && strcmp(loc->sel->name, name) == 0) {
        (void) tg__select_add(keys, values, &n, loc->sel);
        rc = tg__select_loc_check(hr, loc, keys, values, n, err);
        if (rc != 0) {
            return rc;
        }
    }
    if (hdr->name != NULL && strcmp(hdr->name, name) == 0) {
        (void) tg__select_add(keys, values, &n, hdr);
    }
    (void) tg__select_add(keys, values, &n, body);

    rc = tg_plugin_parse_options(hr->p, keys, values, n, &hr->opts, msg,
                                 sizeof(msg));
    if (rc != 0) {
        tg_oa_error_set(err, rc == -ENOMEM ? 500 : 400,
                        "invalid_request_error", "invalid_strategy_option",
                        body->n ? "thinkgate" : NULL, "%s", msg);
    }
    return rc;
}


int
tg__host_select(tg_request_t *r, tg_host_req_t *hr, tg_oa_error_t *err)
{
    tg_plugin_selection_t   body = { 0 }, hdr = { 0 };
    tg__loc_t               loc = { NULL, { 0 }, NULL };
    const char             *name, *from;
    int                     rc;

    rc = tg__select_parse_client(r, &body, &hdr, err);
    if (rc != 0) {
        goto done;
    }
    rc = tg__select_parse_location(r, hr, &loc, err);
    if (rc != 0) {
        goto done;
    }

    if (body.name != NULL) {
        name = body.name;
        from = "client";
    } else if (hdr.name != NULL) {
        name = hdr.name;
        from = "client";
    } else if (loc.sel->name != NULL) {
        name = loc.sel->name;
        from = "location";
    } else {
        name = TG_SELECT_DEFAULT;
        from = "default";
    }

    rc = tg__select_acquire(r->engine->plugins, name, from, &body, hr, err);
    if (rc != 0) {
        goto done;
    }
    rc = tg__select_options(hr, name, &loc, &hdr, &body, err);

done:
    tg_plugin_selection_free(&body);
    tg_plugin_selection_free(&hdr);
    tg_plugin_selection_free(&loc.own);
    return rc;
}


/* ---- registration ----------------------------------------------------- */

static void
tg__loc_sel_free(void *parsed)
{
    tg__loc_sel_t  *ls = parsed;

    tg_plugin_selection_free(&ls->sel);
    free(ls);
}


/*
 * Parses one thinkgate_strategy text once (kept in s->parsed) and checks
 * it against its plugin: the strategy must exist and its options pass
 * the plugin's option table.  Without a plugin directory only the text
 * is checked (requests then answer 503 no_plugins as before).
 */
static int
tg__check_one(tg_plugin_registry_t *reg, tg_loc_strategy_t *s, char *err,
    size_t errlen)
{
    tg__loc_sel_t        *ls = s->parsed;
    tg_plugin_version_t  *v;
    tg_opt_values_t       vals = { 0 };
    char                  msg[256];
    int                   rc = 0;

    if (ls == NULL) {
        ls = calloc(1, sizeof(*ls));
        if (ls == NULL) {
            return -ENOMEM;
        }
        rc = tg_plugin_selection_parse_args(s->text, strlen(s->text),
                                            &ls->sel, msg, sizeof(msg));
        if (rc != 0) {
            free(ls);
            goto refused;
        }
        s->parsed = ls;
        s->parsed_free = tg__loc_sel_free;
    }
    if (reg == NULL) {
        return 0;
    }
    rc = tg_plugin_acquire(reg, ls->sel.name, &v, msg, sizeof(msg));
    if (rc != 0) {
        goto refused;
    }
    rc = tg_plugin_parse_options(tg_plugin_version_plugin(v),
                                 (const char *const *) ls->sel.keys,
                                 (const char *const *) ls->sel.values,
                                 ls->sel.n, &vals, msg, sizeof(msg));
    if (rc == 0) {
        ls->checked = tg_plugin_version_generation(v);
    }
    tg_opt_values_free(&vals);
    tg_plugin_release(v);
    if (rc == 0) {
        return 0;
    }

refused:
    if (rc == -ENOMEM) {
        return rc;
    }
    snprintf(err, errlen, "%.32s \"%.48s\" (%.96s): %s",
             s->directive != NULL ? s->directive : "thinkgate_strategy",
             s->text, s->where, msg);
    return rc < 0 ? rc : -EINVAL;
}


int
tg_host_check_strategies(tg_plugin_registry_t *reg, tg_generation_t *g,
    char *err, size_t errlen)
{
    size_t  i;
    int     rc;

    for (i = 0; i < g->nstrategies; i++) {
        rc = tg__check_one(reg, &g->strategies[i], err, errlen);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}
