/*
 * A registration's attachments: Redis link, embedder, plugins, model
 * lists.
 */

#include "core/embed_link.h"
#include "core/shared.h"
#include "plugin/loader.h"
#include "serve/model_fetch.h"
#include "serve/registration.h"
#include "strategy/host.h"


int
tg_serve_register(tg_conn_t *conn, char *err, size_t errlen)
{
    tg_engine_t  *e = conn->engine;
    int           rc;

    /* Each location's thinkgate_strategy against its plugin's option
     * table: a bad one refuses the configuration here, not a request. */
    rc = tg_host_check_strategies(e->plugins, conn->gen, err, errlen);
    if (rc != 0) {
        return rc;
    }

    /* The generation's Redis link (connection, prefix index, sessions). */
    rc = tg_shared_attach(e, conn->gen, err, errlen);
    if (rc != 0) {
        return rc;
    }

    /* The generation's embedder (thinkgate_embedder): a model that
     * cannot be opened, or device=cuda without a GPU, refuses it. */
    return tg_embed_attach(e, conn->gen, err, errlen);
}


void
tg_serve_active(tg_conn_t *conn)
{
    tg_engine_t  *e = conn->engine;

    /* A new generation means nginx -s reload: the operator may have
     * deployed plugins with it. */
    if (e->plugins != NULL && conn->gen->id > e->plugins_seen_gen) {
        e->plugins_seen_gen = conn->gen->id;
        (void) tg_plugin_refresh(e->plugins);
    }

    /* Backends without model= tell their names themselves. */
    tg_model_fetch_attach(e, conn->gen);
}
