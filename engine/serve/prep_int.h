/*
 * Private to serve/prep.c and serve/prep_session.c.
 */

#ifndef TG_SERVE_PREP_INT_H
#define TG_SERVE_PREP_INT_H

#include "core/shared.h"
#include "serve/prep.h"
#include "state/prefix.h"
#include "state/session.h"

/* Past this many bytes a non-streamed answer is not parsed for the
 * session: the turn is not stored and the lock released. */
#define TG_PREP_MAX_ANSWER  (8u << 20)

struct tg_prep_s {
    tg_request_t        *r;
    tg_pool_t           *pool;
    tg_shared_t         *link;

    /* prefix routing */
    tg_prefix_index_t   *idx;
    tg_prefix_op_t      *prefix_op;
    char                *prompt;        /* rendered, for lookup/record */
    size_t               prompt_len;
    unsigned             prefix_blocks; /* held by the chosen backend */
    const char          *routed_by;     /* "prefix", "session" or NULL */

    /* session */
    tg_session_store_t  *st;
    tg_session_op_t     *session_op;
    char                 id[TG_SESSION_ID_MAX + 1];
    char                 owner[TG_SESSION_OWNER_LEN + 1];
    char                 token[TG_SESSION_TOKEN_MAX];
    json_t              *turn;          /* the client's messages */
    tg_session_op_t     *append_op;
    uv_timer_t          *beat;          /* the lock's heartbeat */
    tg_prep_stored_cb    stored_cb;
    void                *stored_data;
    unsigned             turns;         /* stored before this request, then
                                           after it when stored */
    unsigned             dropping;      /* this append dropped as many */
    int                  stored;        /* 1 stored, -1 not, -2 unknown (a
                                           copy was sent, its reply lost),
                                           0 not yet */
    const char          *store_error;   /* why not (static text) */
    uint64_t             dropped;       /* dropped before this request */
    unsigned             session:1;
    unsigned             locked:1;
    unsigned             tap_failed:1;
    tg_buf_t             pending;       /* partial SSE event, or body */
    tg_buf_t             answer;        /* content of choice 0 */

    /* stored responses (prep_response.c) */
    tg_redis_cmd_t      *resp_cmd;      /* a GET or SET in flight */
    int                  resp_stored;   /* 1 stored, -1 not, 0 not tried */
    const char          *resp_store_error;  /* why not (static text) */
    unsigned             resp_delete:1; /* DELETE /responses/{id} */
};

/* prep.c: the next step after the session one. */
void tg__prep_route(tg_prep_t *p);
/* prep.c: starts the strategy; errors are answered. */
void tg__prep_start(tg_prep_t *p);

/* prep_session.c */
int tg__prep_session(tg_prep_t *p, const char *id, size_t len,
    tg_oa_error_t *err);
void tg__prep_session_close(tg_prep_t *p);

/* prep_response.c */
int tg__prep_response_load(tg_prep_t *p, tg_oa_error_t *err);
void tg__prep_response_close(tg_prep_t *p);

#endif /* TG_SERVE_PREP_INT_H */
