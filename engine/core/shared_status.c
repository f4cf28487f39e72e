/*
 * Status figures of a Redis link: connection, prefix routing, sessions.
 */

#include <errno.h>
#include <string.h>

#include "core/shared.h"


/* Prefix figures summed over the link's indexes (one per block/TTL). */
static void
tg__shared_prefix_sum(const tg_shared_t *s, tg_prefix_stats_t *sum)
{
    const tg_shared_index_t  *x;
    tg_prefix_stats_t         st;

    memset(sum, 0, sizeof(*sum));
    for (x = s ? s->indexes : NULL; x != NULL; x = x->next) {
        tg_prefix_get_stats(&x->idx, &st);
        sum->lookups += st.lookups;
        sum->hits += st.hits;
        sum->shared_lookups += st.shared_lookups;
        sum->local_lookups += st.local_lookups;
        sum->fallbacks += st.fallbacks;
        sum->records += st.records;
        sum->record_errors += st.record_errors;
        sum->local_evictions += st.local_evictions;
    }
}


int
tg_shared_status_json(const tg_shared_t *s, json_t *doc)
{
    tg_redis_stats_t    rs;
    tg_prefix_stats_t   ps;
    tg_session_stats_t  ss;
    json_t             *redis, *prefix, *sessions;

    memset(&rs, 0, sizeof(rs));
    rs.last_error = "";
    if (s != NULL && s->has_redis) {
        tg_redis_get_stats(&s->redis, &rs);
    }
    tg__shared_prefix_sum(s, &ps);
    memset(&ss, 0, sizeof(ss));
    if (s != NULL && s->sessions_ok) {
        ss = s->sessions.stats;
    }

    redis = json_pack("{s:s, s:b, s:b, s:f, s:I, s:I, s:I, s:I, s:s}",
                      "mode", tg_shared_mode(s),
                      "configured", s != NULL && s->has_redis,
                      "connected", rs.connected,
                      "rtt_ms", (double) rs.latency_us / 1000.0,
                      "commands", (json_int_t) rs.commands,
                      "errors", (json_int_t) rs.errors,
                      "timeouts", (json_int_t) rs.timeouts,
                      "reconnects", (json_int_t) rs.reconnects,
                      "last_error", rs.last_error ? rs.last_error : "");
    prefix = json_pack("{s:s, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I}",
                       "mode", strcmp(tg_shared_mode(s), "shared") == 0
                               ? "shared" : "local",
                       "lookups", (json_int_t) ps.lookups,
                       "hits", (json_int_t) ps.hits,
                       "hit_rate", ps.lookups
                                   ? (double) ps.hits / ps.lookups : 0.0,
                       "fallbacks", (json_int_t) ps.fallbacks,
                       "records", (json_int_t) ps.records,
                       "record_errors", (json_int_t) ps.record_errors,
                       "routed_to_holder",
                       (json_int_t) (s ? s->to_holder : 0),
                       "diverted_overloaded",
                       (json_int_t) (s ? s->diverted : 0));
    sessions = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
                         "s:I, s:I, s:I, s:I, s:I}",
                         "available", s != NULL && s->sessions_ok
                                      && rs.connected,
                         "gets", (json_int_t) ss.gets,
                         "appends", (json_int_t) ss.appends,
                         "busy", (json_int_t) ss.busy,
                         "not_owner", (json_int_t) ss.not_owner,
                         "unavailable", (json_int_t) ss.unavailable,
                         "write_retries", (json_int_t) ss.retries,
                         "lost_turns", (json_int_t) ss.lost,
                         "unknown_turns", (json_int_t) ss.unknown,
                         "unknown_settled_stored",
                         (json_int_t) ss.settled_stored,
                         "unknown_settled_not_stored",
                         (json_int_t) ss.settled_lost,
                         "lease_ms",
                         (json_int_t) (s ? s->sessions.conf.lease_ms : 0),
                         "lock_refreshes", (json_int_t) ss.refreshes,
                         "locks_lost", (json_int_t) ss.locks_lost);

    if (redis == NULL || prefix == NULL || sessions == NULL
        || json_object_set_new(doc, "redis", redis) != 0
        || json_object_set_new(doc, "prefix", prefix) != 0
        || json_object_set_new(doc, "sessions", sessions) != 0)
    {
        /* set_new takes the reference even when it fails */
        return -ENOMEM;
    }
    return 0;
}


/* The state mode and Redis's link and command counters. */
static int
tg__shared_prom_redis(const tg_shared_t *s, tg_buf_t *b)
{
    tg_redis_stats_t    rs;
    const char         *mode = tg_shared_mode(s);

    memset(&rs, 0, sizeof(rs));
    if (s != NULL && s->has_redis) {
        tg_redis_get_stats(&s->redis, &rs);
    }

    return tg_buf_printf(b,
        "# HELP thinkgate_redis_mode State mode: 1 for the active one.\n"
        "# TYPE thinkgate_redis_mode gauge\n"
        "thinkgate_redis_mode{mode=\"shared\"} %d\n"
        "thinkgate_redis_mode{mode=\"local\"} %d\n"
        "thinkgate_redis_mode{mode=\"off\"} %d\n"
        "# HELP thinkgate_redis_connected Whether Redis answers.\n"
        "# TYPE thinkgate_redis_connected gauge\n"
        "thinkgate_redis_connected %d\n"
        "# HELP thinkgate_redis_rtt_seconds Redis command round trip "
        "(moving average).\n"
        "# TYPE thinkgate_redis_rtt_seconds gauge\n"
        "thinkgate_redis_rtt_seconds %.6f\n"
        "# HELP thinkgate_redis_commands_total Redis commands sent.\n"
        "# TYPE thinkgate_redis_commands_total counter\n"
        "thinkgate_redis_commands_total %llu\n"
        "# HELP thinkgate_redis_errors_total Redis commands failed, lost "
        "or timed out.\n"
        "# TYPE thinkgate_redis_errors_total counter\n"
        "thinkgate_redis_errors_total %llu\n"
        "# HELP thinkgate_redis_reconnects_total Redis connections "
        "re-established.\n"
        "# TYPE thinkgate_redis_reconnects_total counter\n"
        "thinkgate_redis_reconnects_total %llu\n",
        strcmp(mode, "shared") == 0, strcmp(mode, "local") == 0,
        strcmp(mode, "off") == 0, rs.connected,
        (double) rs.latency_us / 1e6,
        (unsigned long long) rs.commands, (unsigned long long) rs.errors,
        (unsigned long long) rs.reconnects);
}


/* The prefix index's lookups, summed over its backends' indexes. */
static int
tg__shared_prom_prefix(const tg_shared_t *s, tg_buf_t *b)
{
    tg_prefix_stats_t  ps;

    tg__shared_prefix_sum(s, &ps);

    return tg_buf_printf(b,
        "# HELP thinkgate_prefix_lookups_total Prefix-index lookups.\n"
        "# TYPE thinkgate_prefix_lookups_total counter\n"
        "thinkgate_prefix_lookups_total %llu\n"
        "# HELP thinkgate_prefix_hits_total Lookups where a backend held "
        "the prefix.\n"
        "# TYPE thinkgate_prefix_hits_total counter\n"
        "thinkgate_prefix_hits_total %llu\n"
        "# HELP thinkgate_prefix_fallbacks_total Redis lookups answered "
        "by the local index.\n"
        "# TYPE thinkgate_prefix_fallbacks_total counter\n"
        "thinkgate_prefix_fallbacks_total %llu\n",
        (unsigned long long) ps.lookups, (unsigned long long) ps.hits,
        (unsigned long long) ps.fallbacks);
}


/* The session store's counters. */
static int
tg__shared_prom_sessions(const tg_shared_t *s, tg_buf_t *b)
{
    tg_session_stats_t  ss;

    memset(&ss, 0, sizeof(ss));
    if (s != NULL && s->sessions_ok) {
        ss = s->sessions.stats;
    }

    return tg_buf_printf(b,
        "# HELP thinkgate_sessions_gets_total Session reads.\n"
        "# TYPE thinkgate_sessions_gets_total counter\n"
        "thinkgate_sessions_gets_total %llu\n"
        "# HELP thinkgate_sessions_appends_total Session turns stored.\n"
        "# TYPE thinkgate_sessions_appends_total counter\n"
        "thinkgate_sessions_appends_total %llu\n"
        "# HELP thinkgate_sessions_busy_total Requests refused with 409.\n"
        "# TYPE thinkgate_sessions_busy_total counter\n"
        "thinkgate_sessions_busy_total %llu\n"
        "# HELP thinkgate_sessions_unavailable_total Requests refused "
        "with 503.\n"
        "# TYPE thinkgate_sessions_unavailable_total counter\n"
        "thinkgate_sessions_unavailable_total %llu\n"
        "# HELP thinkgate_sessions_unknown_turns_total Turns whose append "
        "got no reply: reported as maybe stored.\n"
        "# TYPE thinkgate_sessions_unknown_turns_total counter\n"
        "thinkgate_sessions_unknown_turns_total %llu\n"
        "# HELP thinkgate_sessions_locks_lost_total Lock heartbeats that "
        "found the lock gone.\n"
        "# TYPE thinkgate_sessions_locks_lost_total counter\n"
        "thinkgate_sessions_locks_lost_total %llu\n",
        (unsigned long long) ss.gets,
        (unsigned long long) ss.appends, (unsigned long long) ss.busy,
        (unsigned long long) ss.unavailable,
        (unsigned long long) ss.unknown,
        (unsigned long long) ss.locks_lost);
}


int
tg_shared_status_prometheus(const tg_shared_t *s, tg_buf_t *b)
{
    int  rc;

    rc = tg__shared_prom_redis(s, b);
    if (rc == 0) {
        rc = tg__shared_prom_prefix(s, b);
    }
    if (rc == 0) {
        rc = tg__shared_prom_sessions(s, b);
    }
    return rc;
}
