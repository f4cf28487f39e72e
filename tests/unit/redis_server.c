/*
 * A real redis-server for unit tests (redis_server.h).
 */

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "redis_server.h"


uint64_t
tg_test_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}


int
tg_test_redis_installed(void)
{
    return system("command -v redis-server >/dev/null 2>&1") == 0;
}


static int
tg_test_free_port(void)
{
    struct sockaddr_in  a;
    socklen_t           len = sizeof(a);
    int                 fd, port;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *) &a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}


void
tg_test_redis_start(tg_test_redis_t *s, const char *password)
{
    char            port[16], log[96], sock[96];
    redisContext   *c;
    redisReply     *r;
    uint64_t        t0;

    if (s->port == 0) {
        s->port = tg_test_free_port();
    }
    if (s->dir[0] == '\0') {
        snprintf(s->dir, sizeof(s->dir), "/tmp/tg-redis-XXXXXX");
        cr_assert_not_null(mkdtemp(s->dir));
    }
    snprintf(port, sizeof(port), "%d", s->port);
    snprintf(log, sizeof(log), "%s/redis.log", s->dir);
    snprintf(sock, sizeof(sock), "%s/redis.sock", s->dir);

    s->pid = fork();
    cr_assert_geq(s->pid, 0);
    if (s->pid == 0) {
        if (password != NULL) {
            execlp("redis-server", "redis-server", "--port", port, "--bind",
                   "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
                   s->dir, "--logfile", log, "--enable-debug-command",
                   "yes", "--unixsocket", sock, "--requirepass", password,
                   (char *) NULL);
        } else {
            execlp("redis-server", "redis-server", "--port", port, "--bind",
                   "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
                   s->dir, "--logfile", log, "--enable-debug-command",
                   "yes", "--unixsocket", sock, (char *) NULL);
        }
        _exit(127);
    }

    /* Any reply to PING (NOAUTH included) means it is serving. */
    t0 = tg_test_now_ms();
    for ( ;; ) {
        struct timeval  tv = { 0, 200000 };

        c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
        if (c != NULL && !c->err) {
            r = redisCommand(c, "PING");
            if (r != NULL) {
                freeReplyObject(r);
                redisFree(c);
                return;
            }
        }
        if (c != NULL) {
            redisFree(c);
        }
        cr_assert_lt(tg_test_now_ms() - t0, 5000,
                     "redis-server did not start");
        usleep(20000);
    }
}


void
tg_test_redis_kill(tg_test_redis_t *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGCONT);
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}


void
tg_test_redis_remove(tg_test_redis_t *s)
{
    char  path[96];

    tg_test_redis_kill(s);
    if (s->dir[0] == '\0') {
        return;
    }
    snprintf(path, sizeof(path), "%s/redis.log", s->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/redis.sock", s->dir);
    unlink(path);
    rmdir(s->dir);
    s->dir[0] = '\0';
}
