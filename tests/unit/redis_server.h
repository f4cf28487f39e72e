/*
 * A real redis-server for unit tests: started on a free loopback port in
 * a temporary directory, without persistence, with DEBUG allowed and a
 * unix socket beside its log.  Shared by test_redis.c and test_prefix.c.
 */

#ifndef TG_TEST_REDIS_SERVER_H
#define TG_TEST_REDIS_SERVER_H

#include <stdint.h>
#include <sys/types.h>

typedef struct {
    pid_t   pid;        /* 0 when not running */
    int     port;       /* 0: a free one is chosen at the first start */
    char    dir[64];    /* "" until the first start creates it */
} tg_test_redis_t;

/* 1 when redis-server is on PATH (tests skip otherwise). */
int tg_test_redis_installed(void);

/* Starts (or restarts, on the same port and directory) and waits until it
 * answers; password NULL for none.  Asserts on failure. */
void tg_test_redis_start(tg_test_redis_t *s, const char *password);

/* SIGKILL (after SIGCONT, in case a test stopped it) and reap. */
void tg_test_redis_kill(tg_test_redis_t *s);

/* Kills it and removes its directory. */
void tg_test_redis_remove(tg_test_redis_t *s);

uint64_t tg_test_now_ms(void);

#endif /* TG_TEST_REDIS_SERVER_H */
