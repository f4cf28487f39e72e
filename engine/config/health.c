/*
 * Backend circuit breakers (config/health.h).
 */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config/health.h"
#include "log.h"


static void tg__health_open(tg_health_t *h, uint64_t now_ms,
    const char *why);
static void tg__health_close(tg_health_t *h, uint64_t now_ms);
static unsigned tg__health_window_failures(const tg_health_t *h);


void
tg_health_configure(tg_health_t *h, const char *name,
    const tg_health_conf_t *conf)
{
    h->name = name;
    h->fails = conf->fails;
    h->cooloff_ms = conf->cooloff_ms;
    h->error_rate = conf->error_rate;
    h->enabled = conf->fails > 0 || conf->error_rate > 0;

    /* A reload that turns breaking off must not leave it open. */
    if (!h->enabled && h->state != TG_HEALTH_CLOSED) {
        h->state = TG_HEALTH_CLOSED;
        h->probing = 0;
        h->consecutive = 0;
        h->window = 0;
        h->nwindow = 0;
    }
}


int
tg_health_usable(const tg_health_t *h, uint64_t now_ms)
{
    switch (h->state) {
    case TG_HEALTH_CLOSED:
        return 1;
    case TG_HEALTH_HALF_OPEN:
        return !h->probing;
    case TG_HEALTH_OPEN:
        return now_ms >= h->open_until_ms;
    }
    return 1;
}


void
tg_health_take(tg_health_t *h, uint64_t now_ms)
{
    if (h->state == TG_HEALTH_OPEN && now_ms >= h->open_until_ms) {
        h->state = TG_HEALTH_HALF_OPEN;
        h->since_ms = now_ms;
        tg_log_info("backend %s: circuit half-open after %lld ms, probing",
                    h->name, (long long) h->cooloff_ms);
    }
    if (h->state == TG_HEALTH_HALF_OPEN) {
        h->probing = 1;
    }
}


void
tg_health_record(tg_health_t *h, tg_health_outcome_e outcome,
    const char *err, uint64_t now_ms)
{
    char  why[96];

    if (outcome == TG_HEALTH_NEUTRAL) {
        if (h->state == TG_HEALTH_HALF_OPEN) {
            h->probing = 0;
        }
        return;
    }

    if (outcome == TG_HEALTH_FAIL && err != NULL) {
        snprintf(h->last_error, sizeof(h->last_error), "%s", err);
    }

    switch (h->state) {

    case TG_HEALTH_OPEN:
        /* Transfers that started before it opened say nothing new. */
        return;

    case TG_HEALTH_HALF_OPEN:
        if (outcome == TG_HEALTH_OK) {
            tg__health_close(h, now_ms);
        } else {
            tg__health_open(h, now_ms, "the half-open probe failed");
        }
        return;

    case TG_HEALTH_CLOSED:
        break;
    }

    if (h->nwindow < TG_HEALTH_WINDOW) {
        h->nwindow++;
    }
    h->window = (h->window << 1) | (outcome == TG_HEALTH_FAIL);

    if (outcome == TG_HEALTH_OK) {
        h->consecutive = 0;
        return;
    }

    h->consecutive++;

    if (!h->enabled) {
        return;
    }

    if (h->fails > 0 && h->consecutive >= (uint64_t) h->fails) {
        snprintf(why, sizeof(why), "%llu consecutive failures",
                 (unsigned long long) h->consecutive);
        tg__health_open(h, now_ms, why);
        return;
    }

    if (h->error_rate > 0 && h->nwindow >= TG_HEALTH_MIN_SAMPLES
        && (int64_t) tg__health_window_failures(h) * 100
           >= h->error_rate * (int64_t) h->nwindow)
    {
        snprintf(why, sizeof(why), "%u failures in the last %u transfers",
                 tg__health_window_failures(h), h->nwindow);
        tg__health_open(h, now_ms, why);
    }
}


const char *
tg_health_state_name(tg_health_state_e state)
{
    switch (state) {
    case TG_HEALTH_CLOSED:
        return "closed";
    case TG_HEALTH_HALF_OPEN:
        return "half_open";
    case TG_HEALTH_OPEN:
        return "open";
    }
    return "closed";
}


uint64_t
tg_health_now_ms(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}


static void
tg__health_open(tg_health_t *h, uint64_t now_ms, const char *why)
{
    h->state = TG_HEALTH_OPEN;
    h->probing = 0;
    h->open_until_ms = now_ms + (uint64_t) h->cooloff_ms;
    h->since_ms = now_ms;
    h->opened++;
    tg_log_warn("backend %s: circuit open (%s; last error: %s); no traffic "
                "for %lld ms", h->name, why,
                h->last_error[0] ? h->last_error : "none",
                (long long) h->cooloff_ms);
}


static void
tg__health_close(tg_health_t *h, uint64_t now_ms)
{
    h->state = TG_HEALTH_CLOSED;
    h->probing = 0;
    h->consecutive = 0;
    h->window = 0;
    h->nwindow = 0;
    h->since_ms = now_ms;
    h->closed++;
    tg_log_warn("backend %s: circuit closed, the probe succeeded", h->name);
}


static unsigned
tg__health_window_failures(const tg_health_t *h)
{
    uint32_t  w;

    w = h->nwindow >= 32 ? h->window
                         : h->window & ((UINT32_C(1) << h->nwindow) - 1);
    return (unsigned) __builtin_popcount(w);
}
