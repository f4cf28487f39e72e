/*
 * Backend health: a circuit breaker per backend.
 *
 * Closed, a backend gets traffic; `fails` consecutive failures (transport
 * errors, 5xx, failed active checks) or, with `error_rate`, that share of
 * failures among the last outcomes open it.  Open, it gets no new
 * transfer for `cooloff_ms`; then one probe (the next transfer picked for
 * it, or the next active check) is let through: half-open.  The probe's
 * success closes the breaker, its failure opens it for another cool-off.
 *
 * The breaker lives in the backend's shared counters entry, so that it
 * holds across a reload; its settings are those of the newest generation
 * naming the backend.  Every function takes the time (a monotonic clock in
 * milliseconds, tg_health_now_ms()) so that tests can drive it.
 */

#ifndef TG_CONFIG_HEALTH_H
#define TG_CONFIG_HEALTH_H

#include <stdint.h>

typedef enum {
    TG_HEALTH_CLOSED = 0,
    TG_HEALTH_HALF_OPEN,
    TG_HEALTH_OPEN
} tg_health_state_e;

/* What one transfer or check came to. */
typedef enum {
    TG_HEALTH_OK = 0,
    TG_HEALTH_FAIL,
    TG_HEALTH_NEUTRAL       /* cancelled: says nothing about the backend */
} tg_health_outcome_e;

/* The outcomes the error rate is taken over, and how many must be seen
 * before it may open the breaker. */
#define TG_HEALTH_WINDOW       32
#define TG_HEALTH_MIN_SAMPLES  10

typedef struct {
    const char          *path;          /* active check; NULL: none */
    int64_t              interval_ms;   /* between active checks */
    int64_t              fails;         /* consecutive failures; 0: off */
    int64_t              cooloff_ms;    /* open this long before a probe */
    int64_t              error_rate;    /* percent, 1..100; 0: off */
} tg_health_conf_t;

typedef struct {
    const char          *name;          /* for the log; borrowed */
    int                  enabled;       /* fails or error_rate set */
    int64_t              fails;
    int64_t              cooloff_ms;
    int64_t              error_rate;
    tg_health_state_e    state;
    unsigned             probing;       /* a half-open probe is out */
    uint64_t             consecutive;   /* failures in a row */
    uint32_t             window;        /* bit i: outcome i failed */
    unsigned             nwindow;       /* outcomes in the window */
    uint64_t             open_until_ms; /* open: no probe before */
    uint64_t             since_ms;      /* the state's start */
    uint64_t             opened;        /* transitions to open, ever */
    uint64_t             closed;        /* transitions back to closed */
    uint64_t             checks;        /* active checks answered */
    uint64_t             check_failures;
    uint64_t             last_check_ms; /* start of the last check */
    char                 last_error[160];
} tg_health_t;

/* Applies conf (a newer generation's settings) and keeps the state. */
void tg_health_configure(tg_health_t *h, const char *name,
    const tg_health_conf_t *conf);

/* 1 when a new transfer may go to the backend now (closed, half-open
 * without a probe out, or open past its cool-off); changes nothing. */
int tg_health_usable(const tg_health_t *h, uint64_t now_ms);

/* The backend was picked: an open breaker past its cool-off becomes
 * half-open with this transfer as its probe. */
void tg_health_take(tg_health_t *h, uint64_t now_ms);

/* A transfer or an active check ended; err (may be NULL) says why it
 * failed.  A failure or success while open (transfers that started
 * before it opened) changes nothing. */
void tg_health_record(tg_health_t *h, tg_health_outcome_e outcome,
    const char *err, uint64_t now_ms);

const char *tg_health_state_name(tg_health_state_e state);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t tg_health_now_ms(void);

#endif /* TG_CONFIG_HEALTH_H */
