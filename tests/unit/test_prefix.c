/*
 * Prefix index (engine/state/prefix.c, prefix_local.c): the block hash
 * chain, the local index's semantics, the routing decision, and lookups
 * and records through a real redis-server that the Redis tests start on a
 * free loopback port (skipped when redis-server is not installed).
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "state/prefix.h"

#include "needs.h"
#include "redis_server.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define t_assert_no_leaks() \
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "leaks (see above)")
#else
#define t_assert_no_leaks()
#endif

#define BLK  256        /* block=64 tokens at 4 bytes a token */

static uv_loop_t          loop;
static uv_timer_t         tick;
static tg_test_redis_t    srv;
static tg_redis_t         rd;
static int                rd_open, rd_closed;
static tg_prefix_index_t  ix, iy;
static int                ix_closed;
static char               prompt_a[4 * BLK + 10], prompt_b[4 * BLK + 10];

static uint64_t
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

#define RUN_UNTIL(cond, ms)                                                  \
    do {                                                                     \
        uint64_t  t0_ = now_ms();                                            \
        while (!(cond) && now_ms() - t0_ < (uint64_t) (ms)) {                \
            uv_run(&loop, UV_RUN_ONCE);                                      \
        }                                                                    \
    } while (0)

static void
on_tick(uv_timer_t *t)
{
    (void) t;
}

static void
fill_prompts(void)
{
    size_t  i;

    /* a and b share their first two blocks and differ after. */
    for (i = 0; i < sizeof(prompt_a); i++) {
        prompt_a[i] = (char) ('a' + i % 23);
        prompt_b[i] = (i < 2 * BLK) ? prompt_a[i] : (char) ('A' + i % 19);
    }
}

static void
setup_loop(void)
{
    tg_log_level = -1;
    fill_prompts();
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(uv_timer_init(&loop, &tick), 0);
    cr_assert_eq(uv_timer_start(&tick, on_tick, 5, 5), 0);
}

static void
on_ix_closed(tg_prefix_index_t *idx)
{
    (void) idx;
    ix_closed++;
}

static void
on_rd_closed(tg_redis_t *r)
{
    (void) r;
    rd_closed = 1;
}

static void
setup_redis(void)
{
    tg_redis_conf_t     conf;

    if (!tg_test_redis_installed()) {
        TG_TEST_MISSING("redis-server is not installed");
    }
    setup_loop();
    memset(&srv, 0, sizeof(srv));
    tg_test_redis_start(&srv, NULL);

    memset(&conf, 0, sizeof(conf));
    conf.host = "localhost";    /* resolved off the loop */
    conf.port = srv.port;
    conf.prefix = "tp:";
    conf.connect_timeout_ms = 300;
    conf.command_timeout_ms = 150;
    cr_assert_eq(tg_redis_init(&rd, &loop, &conf), 0, "%s", rd.error);
    rd_open = 1;
    RUN_UNTIL(tg_redis_connected(&rd), 3000);
    cr_assert(tg_redis_connected(&rd), "%s", rd.error);
}

static void
teardown(void)
{
    if (rd_open) {
        tg_redis_close(&rd, on_rd_closed);
        RUN_UNTIL(rd_closed, 2000);
        cr_assert(rd_closed);
    }
    uv_close((uv_handle_t *) &tick, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0, "handles left on the loop");
    t_assert_no_leaks();
    tg_test_redis_remove(&srv);
}

static void
open_index(tg_prefix_index_t *idx, tg_redis_t *r, uint64_t ttl_ms,
    unsigned cap, size_t entries)
{
    tg_prefix_conf_t  conf;
    char              err[256];

    memset(&conf, 0, sizeof(conf));
    conf.ttl_ms = ttl_ms;
    conf.cap = cap;
    conf.local_entries = entries;
    cr_assert_eq(tg_prefix_init(idx, &loop, r, TG_TEST_LUA_DIR, &conf, err,
                                sizeof(err)), 0, "%s", err);
}

static void
close_index(tg_prefix_index_t *idx)
{
    int  before = ix_closed;

    tg_prefix_close(idx, on_ix_closed);
    RUN_UNTIL(ix_closed > before, 2000);
    cr_assert_eq(ix_closed, before + 1);
}

/* One lookup's answer. */
typedef struct {
    int       calls;
    int       status;
    int       shared;
    size_t    n;
    char      name[8][32];
    unsigned  blocks[8];
} look_t;

static void
on_look(tg_prefix_index_t *idx, int status, const tg_prefix_match_t *m,
    size_t n, int shared, void *data)
{
    look_t  *l = data;
    size_t   i;

    (void) idx;
    l->calls++;
    l->status = status;
    l->shared = shared;
    l->n = n;
    for (i = 0; i < n && i < 8; i++) {
        snprintf(l->name[i], sizeof(l->name[i]), "%s", m[i].backend);
        l->blocks[i] = m[i].blocks;
    }
}

static look_t
look(tg_prefix_index_t *idx, const char *prompt, size_t len)
{
    look_t  l;

    memset(&l, 0, sizeof(l));
    cr_assert_eq(tg_prefix_lookup(idx, prompt, len, "qwq", on_look, &l,
                                  NULL), 0);
    cr_assert_eq(l.calls, 0, "callback before return");
    RUN_UNTIL(l.calls, 2000);
    cr_assert_eq(l.calls, 1);
    cr_assert_eq(l.status, 0);
    return l;
}


Test(prefix_hash, chain_salt_and_whole_blocks, .init = setup_loop,
     .fini = teardown)
{
    uint64_t  a[8], b[8], c[8];

    cr_assert_eq(tg_prefix_hash_blocks(prompt_a, sizeof(prompt_a), "qwq",
                                       64, a, 8), 4, "partial block dropped");
    cr_assert_eq(tg_prefix_hash_blocks(prompt_b, sizeof(prompt_b), "qwq",
                                       64, b, 8), 4);
    cr_assert_eq(a[0], b[0]);
    cr_assert_eq(a[1], b[1]);
    cr_assert_neq(a[2], b[2]);
    cr_assert_neq(a[3], b[3]);

    /* The model salts the first block, and the chain carries it on. */
    cr_assert_eq(tg_prefix_hash_blocks(prompt_a, sizeof(prompt_a), "llama",
                                       64, c, 8), 4);
    cr_assert_neq(a[0], c[0]);
    cr_assert_neq(a[3], c[3]);

    /* A block's hash depends on everything before it: the same text at
     * block 1 after a different block 0 hashes differently. */
    memcpy(prompt_b, "X", 1);
    cr_assert_eq(tg_prefix_hash_blocks(prompt_b, sizeof(prompt_b), "qwq",
                                       64, c, 8), 4);
    cr_assert_neq(a[1], c[1]);

    cr_assert_eq(tg_prefix_hash_blocks(prompt_a, BLK - 1, "qwq", 64, c, 8),
                 0);
    cr_assert_eq(tg_prefix_hash_blocks(prompt_a, sizeof(prompt_a), "qwq",
                                       64, c, 2), 2, "at most max");
    cr_assert_eq(tg_prefix_hash_blocks(prompt_a, sizeof(prompt_a), "qwq",
                                       16, c, 8), 8, "block=16: 64 bytes");
}

Test(prefix_local, longest_holder_first, .init = setup_loop,
     .fini = teardown)
{
    tg_prefix_stats_t  st;
    look_t             l;

    open_index(&ix, NULL, 0, 0, 0);
    cr_assert_str_eq(tg_prefix_mode(&ix), "local");

    l = look(&ix, prompt_a, sizeof(prompt_a));
    cr_assert_eq(l.n, 0);

    cr_assert_eq(tg_prefix_record(&ix, prompt_b, sizeof(prompt_b), "qwq",
                                  "b1"), 0);
    cr_assert_eq(tg_prefix_record(&ix, prompt_a, sizeof(prompt_a), "qwq",
                                  "b0"), 0);
    l = look(&ix, prompt_a, sizeof(prompt_a));
    cr_assert_eq(l.shared, 0);
    cr_assert_eq(l.n, 2);
    cr_assert_str_eq(l.name[0], "b0");
    cr_assert_eq(l.blocks[0], 4);
    cr_assert_str_eq(l.name[1], "b1");
    cr_assert_eq(l.blocks[1], 2, "b holds a's first two blocks");

    /* A different model shares nothing. */
    memset(&l, 0, sizeof(l));
    cr_assert_eq(tg_prefix_lookup(&ix, prompt_a, sizeof(prompt_a), "other",
                                  on_look, &l, NULL), 0);
    RUN_UNTIL(l.calls, 2000);
    cr_assert_eq(l.n, 0);

    cr_assert_eq(tg_prefix_lookup(&ix, prompt_a, 10, "qwq", on_look, &l,
                                  NULL), -ENOENT);
    cr_assert_eq(tg_prefix_record(&ix, prompt_a, 10, "qwq", "b0"), -ENOENT);
    cr_assert_eq(tg_prefix_record(&ix, prompt_a, sizeof(prompt_a), "qwq",
                                  ""), -EINVAL);

    tg_prefix_get_stats(&ix, &st);
    cr_assert_str_eq(st.mode, "local");
    cr_assert_eq(st.lookups, 3);
    cr_assert_eq(st.hits, 1);
    cr_assert_eq(st.local_lookups, 3);
    cr_assert_eq(st.records, 2);
    close_index(&ix);
}

Test(prefix_local, ttl_and_cap, .init = setup_loop, .fini = teardown)
{
    look_t  l;

    open_index(&ix, NULL, 60, 2, 0);
    cr_assert_eq(tg_prefix_record(&ix, prompt_a, sizeof(prompt_a), "qwq",
                                  "b0"), 0);
    RUN_UNTIL(0, 15);
    cr_assert_eq(tg_prefix_record(&ix, prompt_a, sizeof(prompt_a), "qwq",
                                  "b1"), 0);
    RUN_UNTIL(0, 15);
    cr_assert_eq(tg_prefix_record(&ix, prompt_a, sizeof(prompt_a), "qwq",
                                  "b2"), 0);
    l = look(&ix, prompt_a, sizeof(prompt_a));
    cr_assert_eq(l.n, 2, "cap=2 dropped the oldest");
    cr_assert_str_eq(l.name[0], "b2");
    cr_assert_str_eq(l.name[1], "b1");

    RUN_UNTIL(0, 100);
    l = look(&ix, prompt_a, sizeof(prompt_a));
    cr_assert_eq(l.n, 0, "older than the TTL");
    close_index(&ix);
}

Test(prefix_local, bounded_table_evicts, .init = setup_loop,
     .fini = teardown)
{
    tg_prefix_stats_t  st;
    char               p[BLK];
    int                i;
    look_t             l;

    open_index(&ix, NULL, 0, 0, 16);
    memset(p, 'x', sizeof(p));
    for (i = 0; i < 200; i++) {
        snprintf(p, sizeof(p), "prompt %d", i);
        cr_assert_eq(tg_prefix_record(&ix, p, sizeof(p), "qwq", "b0"), 0);
    }
    tg_prefix_get_stats(&ix, &st);
    cr_assert_gt(st.local_evictions, 0);
    l = look(&ix, p, sizeof(p));
    cr_assert_eq(l.n, 1, "the newest record survives");
    close_index(&ix);
}

Test(prefix_local, cancel_and_close, .init = setup_loop, .fini = teardown)
{
    tg_prefix_op_t  *op;
    look_t           a, b;

    open_index(&ix, NULL, 0, 0, 0);
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    cr_assert_eq(tg_prefix_lookup(&ix, prompt_a, sizeof(prompt_a), "qwq",
                                  on_look, &a, &op), 0);
    tg_prefix_cancel(op);
    cr_assert_eq(tg_prefix_lookup(&ix, prompt_a, sizeof(prompt_a), "qwq",
                                  on_look, &b, NULL), 0);
    tg_prefix_close(&ix, on_ix_closed);
    cr_assert_eq(b.calls, 1);
    cr_assert_eq(b.status, -ECANCELED);
    RUN_UNTIL(ix_closed, 2000);
    cr_assert_eq(a.calls, 0);
}

Test(prefix_choose, margin_rule)
{
    tg_prefix_candidate_t  c[3] = {
        { "b0", 10, 0, 0 },
        { "b1", 12, 0, 5 },
        { "b2", 3, 0, 2 },
    };
    tg_prefix_margin_t     m = TG_PREFIX_MARGIN_DEFAULT;
    tg_prefix_margin_t     strict = { 0, 0 };

    /* Least loaded is b2 (3): b1 may run max(4, 1) = 4 more; it runs 9. */
    cr_assert_eq(tg_prefix_choose(c, 3, &m), 0 + 2);
    c[2].in_flight = 8;     /* allowed max(4, 4): 12 - 8 = 4, not more */
    cr_assert_eq(tg_prefix_choose(c, 3, &m), 1);
    c[2].in_flight = 7;     /* 12 - 7 = 5 > 4 */
    cr_assert_eq(tg_prefix_choose(c, 3, &m), 2);

    /* The percentage wins when loads are high: max(4, 50% of 20) = 10. */
    c[0].in_flight = 30;
    c[1].in_flight = 30;
    c[2].in_flight = 20;
    cr_assert_eq(tg_prefix_choose(c, 3, &m), 1);
    c[1].in_flight = 31;
    cr_assert_eq(tg_prefix_choose(c, 3, &m), 2);
    cr_assert_eq(tg_prefix_choose(c, 3, &strict), 2);

    /* A holder at its max_inflight is not eligible; the next longest
     * holder is. */
    c[1].max_inflight = 31;
    c[2].in_flight = 29;
    cr_assert_eq(tg_prefix_choose(c, 3, &m), 2);

    /* Nobody holds anything: least in flight, first on ties. */
    c[0].matched_blocks = c[1].matched_blocks = c[2].matched_blocks = 0;
    c[0].in_flight = 5;
    c[1].in_flight = 5;
    c[1].max_inflight = 0;
    c[2].in_flight = 5;
    cr_assert_eq(tg_prefix_choose(c, 3, NULL), 0);

    /* Equal prefixes: the less loaded holder. */
    c[1].matched_blocks = c[2].matched_blocks = 3;
    c[2].in_flight = 4;
    cr_assert_eq(tg_prefix_choose(c, 3, &m), 2);

    /* All full. */
    c[0].max_inflight = 5;
    c[1].max_inflight = 5;
    c[2].max_inflight = 4;
    cr_assert_eq(tg_prefix_choose(c, 3, &m), -1);
    cr_assert_eq(tg_prefix_choose(c, 0, &m), -1);
}

Test(prefix_redis, shared_between_gateways, .init = setup_redis,
     .fini = teardown)
{
    tg_prefix_stats_t  st;
    look_t             l;

    /* Two indexes on one Redis stand for two gateways. */
    open_index(&ix, &rd, 0, 0, 0);
    open_index(&iy, &rd, 0, 0, 0);
    cr_assert_str_eq(tg_prefix_mode(&ix), "shared");

    cr_assert_eq(tg_prefix_record(&ix, prompt_a, sizeof(prompt_a), "qwq",
                                  "b0"), 0);
    cr_assert_eq(tg_prefix_record(&ix, prompt_b, sizeof(prompt_b), "qwq",
                                  "b1"), 0);
    l = look(&iy, prompt_a, sizeof(prompt_a));
    cr_assert_eq(l.shared, 1);
    cr_assert_eq(l.n, 2);
    cr_assert_str_eq(l.name[0], "b0");
    cr_assert_eq(l.blocks[0], 4);
    cr_assert_str_eq(l.name[1], "b1");
    cr_assert_eq(l.blocks[1], 2);

    tg_prefix_get_stats(&iy, &st);
    cr_assert_str_eq(st.mode, "shared");
    cr_assert_eq(st.shared_lookups, 1);
    cr_assert_eq(st.hits, 1);
    tg_prefix_get_stats(&ix, &st);
    cr_assert_eq(st.record_errors, 0);

    /* Redis gone: local mode; the gateway that recorded still knows. */
    tg_test_redis_kill(&srv);
    RUN_UNTIL(!tg_redis_connected(&rd), 2000);
    cr_assert_str_eq(tg_prefix_mode(&ix), "local");
    l = look(&ix, prompt_a, sizeof(prompt_a));
    cr_assert_eq(l.shared, 0);
    cr_assert_eq(l.n, 2);
    l = look(&iy, prompt_a, sizeof(prompt_a));
    cr_assert_eq(l.n, 0);
    cr_assert_eq(tg_prefix_record(&iy, prompt_a, sizeof(prompt_a), "qwq",
                                  "b2"), 0, "records never fail");

    /* Redis back: shared again. */
    tg_test_redis_start(&srv, NULL);
    RUN_UNTIL(tg_redis_connected(&rd), 8000);
    cr_assert_str_eq(tg_prefix_mode(&iy), "shared");
    cr_assert_eq(tg_prefix_record(&iy, prompt_a, sizeof(prompt_a), "qwq",
                                  "b2"), 0);
    l = look(&ix, prompt_a, sizeof(prompt_a));
    cr_assert_eq(l.shared, 1);
    cr_assert_eq(l.n, 1, "a fresh Redis holds only the new record");
    cr_assert_str_eq(l.name[0], "b2");

    close_index(&ix);
    close_index(&iy);
}

Test(prefix_redis, timeout_falls_back_to_local, .init = setup_redis,
     .fini = teardown)
{
    tg_prefix_stats_t  st;
    look_t             l;

    open_index(&ix, &rd, 0, 0, 0);
    cr_assert_eq(tg_prefix_record(&ix, prompt_a, sizeof(prompt_a), "qwq",
                                  "b0"), 0);
    l = look(&ix, prompt_a, sizeof(prompt_a));
    cr_assert_eq(l.shared, 1);

    kill(srv.pid, SIGSTOP);
    l = look(&ix, prompt_a, sizeof(prompt_a));
    cr_assert_eq(l.shared, 0, "answered locally after the timeout");
    cr_assert_eq(l.n, 1);
    cr_assert_str_eq(l.name[0], "b0");
    tg_prefix_get_stats(&ix, &st);
    cr_assert_eq(st.fallbacks, 1);
    kill(srv.pid, SIGCONT);
    close_index(&ix);
}

Test(prefix_redis, close_cancels_pending, .init = setup_redis,
     .fini = teardown)
{
    look_t  l;

    open_index(&ix, &rd, 0, 0, 0);
    kill(srv.pid, SIGSTOP);
    memset(&l, 0, sizeof(l));
    cr_assert_eq(tg_prefix_lookup(&ix, prompt_a, sizeof(prompt_a), "qwq",
                                  on_look, &l, NULL), 0);
    cr_assert_eq(tg_prefix_record(&ix, prompt_a, sizeof(prompt_a), "qwq",
                                  "b0"), 0);
    close_index(&ix);
    cr_assert_eq(l.calls, 1);
    cr_assert_eq(l.status, -ECANCELED);
    kill(srv.pid, SIGCONT);
}
