/*
 * thinkgate worker <-> engine protocol: registration over the unix socket,
 * frame types and payloads in the shared-memory rings (ring.h).
 *
 * Registration
 * ------------
 * A worker connects to the engine's SOCK_STREAM unix socket and sends one
 * tg_register_t, with the memfd of its shared region (created with
 * MFD_ALLOW_SEALING and sealed against shrinking and growing, so that
 * neither side can make the other's mapping fault) attached as
 * SCM_RIGHTS to that first sendmsg(), followed by conf_len bytes of the
 * configuration document (JSON, below).  The engine checks the peer's
 * credentials (SO_PEERCRED), maps and checks the region (tg_shm_check),
 * parses the document and answers with one tg_register_reply_t.  status 0
 * means registered; otherwise message says why and the engine closes.
 *
 * After registration the socket carries only doorbells: single bytes
 * TG_DOORBELL, meaning "look at the rings" (a ring turned non-empty, or
 * room was freed for a waiting producer).  The receiver reads every pending
 * byte and then services both rings.  EOF on the socket means the peer is
 * gone: the engine cancels every request of that worker; the worker fails
 * every request in flight (SSE error event when streaming) and reconnects
 * with backoff.
 *
 * Eventfd doorbells (TG_REG_F_EVENTFD): a worker may attach two eventfds
 * after the memfd, in the same SCM_RIGHTS (memfd, then the one the worker
 * writes to ring the engine, then the one the engine writes to ring the
 * worker), and set the flag.  An engine that takes them answers with the
 * flag set in its reply's flags; from then on each side rings by writing
 * 1 to its eventfd instead of sending a byte, and the socket carries
 * nothing after the reply (EOF still means the peer is gone; a byte that
 * comes anyway is still a doorbell).  A reply without the flag means
 * socket doorbells, as above.  Why: an eventfd write and read cost a
 * third of a unix socket's byte (no socket buffer), and a reader that
 * watches an eventfd edge-triggered needs no read at all (bench/handoff
 * measures both).  The flag with the descriptors missing, or ones that
 * are not eventfds, is refused.
 *
 * Configuration document (JSON object, the http-level configuration):
 *   {"backends": [{"name", "url", "model", "max_inflight",
 *                  "api_key_env", "connect_timeout_ms", "idle_timeout_ms",
 *                  "tls_verify", "native_effort",
 *                  "skills": {"math": 0.9, ...}, "health",
 *                  "health_interval_ms", "fails", "cooloff_ms",
 *                  "error_rate"}, ...],
 *    "pools":    [{"name", "backends": ["name", ...],
 *                  "policy": "least_inflight" | "round_robin" | "prefix"
 *                            | "grouped",
 *                  "block", "ttl_ms", "window_ms"}, ...],
 *   (a backend's keys after "url" and a pool's after "backends", their
 *   bounds and defaults: the schema in conf_keys.h)
 *    "plugins":  ["ffs", ...],                (thinkgate_plugin; may be [])
 *    "redis":    {"addr": "host:port" | "unix:/path", "db", "prefix",
 *                 "password_env", "connect_timeout_ms", "timeout_ms"}
 *                | null,                       (thinkgate_redis)
 *    "embedder": {"path", "threads", "device": "auto" | "cpu" | "cuda",
 *                 "max_batch"} | null,        (thinkgate_embedder)
 *   (Redis's keys after "addr" and the embedder's after "path", their
 *   bounds and defaults: the schema in conf_keys.h as well)
 *    "models":   [{"name", "pool", "model"}, ...],  (thinkgate_model;
 *                 "model" "" or null: the backend's own name)
 *    "locations": [{"pool", "strategy", "effort", "client_strategy",
 *                   "timeout_ms", "deadline_ms", "max_body",
 *                   "session"}, ...],
 *                (what every request of a location shares, as the REQUEST
 *                 meta below would carry it, each distinct set once; a
 *                 request's meta names its entry by index, "loc".  The
 *                 engine checks the types, and that "pool" names a pool,
 *                 at registration.  Absent in older documents: then each
 *                 meta carries the members itself)
 *    "strategies": [{"strategy": "ffs n=8",
 *                    "where": "location /x/ at FILE:LINE",
 *                    "directive": "thinkgate_strategy"
 *                               | "thinkgate_effort LEVEL"}, ...]}
 *                (each distinct strategy text of a thinkgate_strategy, or
 *                 of a thinkgate_effort level's strategy= and options,
 *                 once per directive, where it was read first; the engine
 *                 checks each against its plugin's option table at
 *                 registration and refuses the document naming a bad one.
 *                 Absent in older documents: then requests check the
 *                 location's text themselves; "directive" absent:
 *                 thinkgate_strategy)
 * Durations are integers in milliseconds; every key is always present
 * (the module writes its merged defaults).
 * Unknown keys are errors in the engine, so module and engine stay in step.
 * The engine keeps one generation per distinct document; requests from a
 * registration use that registration's generation.
 *
 * Requests
 * --------
 * REQUEST (worker -> engine): the first frame's payload is
 *     uint32_t meta_len | meta (JSON, meta_len bytes) | body bytes
 * (meta itself must fit the first frame: a worker answers 400 to a request
 * whose method, URI, args and forwarded headers do not)
 * and when the body does not fit, TG_FRAME_F_MORE is set and further
 * REQUEST frames with the same id carry only body bytes; the last has no
 * MORE flag.  meta:
 *   {"kind": "api" | "status" | "admin",
 *    "method": "POST", "uri": "/v1/chat/completions", "args": "a=b",
 *    "loc": 0,                              (the location's entry of the
 *                                            document's "locations": it
 *                                            gives the members from
 *                                            "pool" to "session" below,
 *                                            which the module then leaves
 *                                            out; given both ways, the
 *                                            entry's count)
 *    "pool": "reasoners",                   (thinkgate_pass POOL; api
 *                                            only; absent: route by the
 *                                            body's "model")
 *    "strategy": "ffs n=8",                 (location default, optional)
 *    "effort": {"high": "budget=none strategy=ffs n=8", ...},
 *                                           (thinkgate_effort, optional;
 *                                            strategy= and its options
 *                                            under TG_EFFORT_STRATEGY_MAX
 *                                            bytes)
 *    "client_strategy": true,
 *    "timeout_ms": 60000,
 *    "max_body": 1048576,                   (thinkgate_max_body: also
 *                                            bounds a session's history)
 *    "session": false,
 *    "key": "alice",                        (thinkgate_auth: the key's
 *                                            name; see engine/serve/keys.h)
 *    "key_models": "a,b", "key_strategies": "ffs",
 *    "key_limits": {"rpm", "tpm", "tpd", "window_ms"},
 *                                           (a key of the key file)
 *    "key_store": "redis", "key_sha256": HEX (a key kept in Redis: the
 *                                            engine reads its record by
 *                                            digest, or by "key" when
 *                                            thinkgate_auth_key named it)
 *    "headers": {"authorization": "...", "x-thinkgate-strategy": "...",
 *                "x-thinkgate-session": "...", "x-request-id": "..."}}
 * ("args" and "headers" are left out when empty; absent reads as empty.)
 * For kind "api" the engine maps uri to the endpoint by its suffix
 * (/chat/completions, /completions, /models) and answers 404 otherwise.
 *
 * CANCEL (worker -> engine), no payload: the client left; the engine aborts
 * every trace of the request and sends nothing more for that id except,
 * optionally, END.
 *
 * WINDOW (worker -> engine), payload uint32_t: flow-control credit.  Each
 * request starts with TG_INITIAL_WINDOW bytes of credit for DATA payloads;
 * the worker returns credit as nginx hands the bytes to the client's
 * socket.  The engine never sends DATA beyond the credit: it pauses the
 * backend transfer instead (a slow client slows only its own backends).
 *
 * HEAD (engine -> worker): tg_head_t, then header lines
 * "Name: value\r\n" (Content-Type among them).  At most one per request,
 * before any DATA.
 * DATA (engine -> worker): body bytes, forwarded with flush.
 * END (engine -> worker): the response is complete.  Payload: figures for
 * the $thinkgate_NAME log variables, possibly empty, as lines
 * "NAME=VALUE\n" with NAME in [a-z0-9_] and VALUE without newlines
 * (numbers as decimal text, structured values as compact JSON), so that the
 * worker needs no JSON parser.
 * ERROR (engine -> worker): tg_head_t (status) followed by an OpenAI-shaped
 * error body.  Before HEAD the worker answers with that status and body;
 * after HEAD of a streamed response it sends "data: BODY\n\n" and ends the
 * stream; after HEAD of a non-streamed response whose body the worker
 * still holds (it sends such answers whole, with Content-Length, at END)
 * it answers with the ERROR's status and body instead; when part of the
 * body already left, it closes the connection, so the client sees a
 * truncated response rather than a wrong one.  ERROR ends the request like
 * END.  END before HEAD is a protocol error (the worker answers 502).
 */

#ifndef THINKGATE_PROTOCOL_H
#define THINKGATE_PROTOCOL_H

#include <stdint.h>

#define TG_REG_MAGIC        0x47455254u     /* "TREG" */
#define TG_DOORBELL         'D'
#define TG_INITIAL_WINDOW   (256u * 1024)

/* The most bytes of a thinkgate_effort level's strategy and options, its
 * NUL included (nginx -t refuses more; engine/core/effort.h) */
#define TG_EFFORT_STRATEGY_MAX  512

enum {
    TG_FRAME_PAD     = 0,
    /* worker -> engine */
    TG_FRAME_REQUEST = 1,
    TG_FRAME_CANCEL  = 2,
    TG_FRAME_WINDOW  = 3,
    /* engine -> worker */
    TG_FRAME_HEAD    = 16,
    TG_FRAME_DATA    = 17,
    TG_FRAME_END     = 18,
    TG_FRAME_ERROR   = 19
};

#define TG_FRAME_F_MORE     0x0001  /* REQUEST body continues */

#define TG_HEAD_F_STREAM    0x0001  /* body is an SSE stream */


typedef struct {
    uint32_t    magic;          /* TG_REG_MAGIC */
    uint32_t    version;        /* TG_PROTO_VERSION */
    uint32_t    pid;            /* the worker's pid, for logs and status */
    uint32_t    ring_size;      /* each ring's data size */
    uint64_t    shm_size;       /* bytes of the passed memfd */
    uint32_t    conf_len;       /* bytes of configuration JSON that follow */
    uint32_t    flags;          /* TG_REG_F_* */
} tg_register_t;

/* Two eventfds follow the memfd: doorbells go through them (above). */
#define TG_REG_F_EVENTFD    0x0001u


typedef struct {
    uint32_t    magic;          /* TG_REG_MAGIC */
    uint32_t    version;        /* the engine's TG_PROTO_VERSION */
    int32_t     status;         /* 0, or a negative errno-style code */
    uint32_t    generation;     /* configuration generation assigned */
    uint32_t    flags;          /* TG_REG_F_* the engine took */
    char        message[236];   /* NUL-terminated reason when status < 0 */
} tg_register_reply_t;


typedef struct {
    uint32_t    status;         /* HTTP status */
    uint32_t    flags;          /* TG_HEAD_F_* */
} tg_head_t;


#endif /* THINKGATE_PROTOCOL_H */
