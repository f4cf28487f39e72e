/*
 * thinkgate-handoff: what one hand-off between two processes costs on this
 * machine, on one CPU and across two.
 *
 * Two processes play ping-pong, each sleeping in epoll_wait() between
 * turns, as an nginx worker and the engine do with their doorbells, in
 * both of the doorbells' ways (protocol.h): "socket", one byte each way
 * over a unix socketpair, each side reading what came; "eventfd", 1
 * written to the other side's eventfd, the first side (as the worker)
 * watching its own edge-triggered with no read, the second (as the
 * engine) level-triggered with one read.  Prints one JSON line per
 * doorbell and layout: both on the first CPU, one on each of the first
 * two, and both left to the scheduler; CPU time (user + system, from
 * getrusage) and wall time per round trip, each side's CPU averaged.
 *
 * usage: thinkgate-handoff [round trips per layout, default 20000]
 */

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
tg_cpu_s(void)
{
    struct rusage  u;

    getrusage(RUSAGE_SELF, &u);
    return (double) (u.ru_utime.tv_sec + u.ru_stime.tv_sec)
           + (double) (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}


static double
tg_now_s(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


/* A doorbell: the socket (rd == wr) or two eventfds. */
typedef struct {
    int  rd, wr;
    int  eventfd, edge;
} tg_bell_t;


static int
tg_ring(const tg_bell_t *b)
{
    static const uint64_t  one = 1;

    if (b->eventfd) {
        return write(b->wr, &one, sizeof(one)) == sizeof(one) ? 0 : -1;
    }
    return send(b->wr, "x", 1, MSG_DONTWAIT) == 1 ? 0 : -1;
}


/* What a woken side reads: all the socket holds, the eventfd's count
 * when watched level-triggered, nothing when edge-triggered. */
static int
tg_take(const tg_bell_t *b)
{
    char  buf[64];

    if (b->eventfd) {
        return b->edge || read(b->rd, buf, 8) == 8 ? 0 : -1;
    }
    return recv(b->rd, buf, sizeof(buf), 0) > 0 ? 0 : -1;
}


/* One side: cpu < 0 leaves it to the scheduler.  Returns its CPU seconds
 * for the n round trips, or a negative value on an error. */
static double
tg_side(const tg_bell_t *b, int first, long n, int cpu)
{
    struct epoll_event  ev, out[4];
    cpu_set_t           set;
    double              c0;
    long                i;
    int                 ep, k;

    if (cpu >= 0) {
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) != 0) {
            return -1;
        }
    }
    ep = epoll_create1(0);
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | (b->edge ? EPOLLET : 0);
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, b->rd, &ev) != 0) {
        return -1;
    }

    c0 = tg_cpu_s();
    if (first && tg_ring(b) != 0) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        do {
            k = epoll_wait(ep, out, 4, -1);
        } while (k < 0 && errno == EINTR);
        if (k < 0 || tg_take(b) != 0) {
            return -1;
        }
        if ((!first || i + 1 < n) && tg_ring(b) != 0) {
            return -1;
        }
    }
    close(ep);
    return tg_cpu_s() - c0;
}


static int
tg_layout(const char *name, int efd, long n, int cpu_a, int cpu_b)
{
    int        sv[2], pp[2], ev[2] = { -1, -1 }, status;
    double     t0, wall, a, b = -1;
    pid_t      pid;
    tg_bell_t  side_a, side_b;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || pipe(pp) != 0
        || (efd && ((ev[0] = eventfd(0, EFD_NONBLOCK)) < 0
                        || (ev[1] = eventfd(0, EFD_NONBLOCK)) < 0)))
    {
        perror("thinkgate-handoff");
        return -1;
    }
    if (efd) {
        /* a (the worker) reads ev[0] edge-triggered, b (the engine)
         * ev[1] level-triggered */
        side_a = (tg_bell_t) { ev[0], ev[1], 1, 1 };
        side_b = (tg_bell_t) { ev[1], ev[0], 1, 0 };
    } else {
        side_a = (tg_bell_t) { sv[0], sv[0], 0, 0 };
        side_b = (tg_bell_t) { sv[1], sv[1], 0, 0 };
    }
    t0 = tg_now_s();
    pid = fork();
    if (pid < 0) {
        perror("thinkgate-handoff: fork");
        return -1;
    }
    if (pid == 0) {
        close(sv[0]);
        b = tg_side(&side_b, 0, n, cpu_b);
        _exit(write(pp[1], &b, sizeof(b)) == sizeof(b) ? 0 : 1);
    }
    close(sv[1]);
    a = tg_side(&side_a, 1, n, cpu_a);
    wall = tg_now_s() - t0;
    if (read(pp[0], &b, sizeof(b)) != sizeof(b)) {
        b = -1;
    }
    waitpid(pid, &status, 0);
    close(sv[0]);
    close(pp[0]);
    close(pp[1]);
    if (efd) {
        close(ev[0]);
        close(ev[1]);
    }
    if (a < 0 || b < 0) {
        fprintf(stderr, "thinkgate-handoff: %s: a side failed\n", name);
        return -1;
    }
    printf("{\"doorbell\": \"%s\", \"layout\": \"%s\", \"cpus\": [%d, %d], "
           "\"round_trips\": %ld, \"cpu_us_per_round_trip_per_side\": %.2f, "
           "\"wall_us_per_round_trip\": %.2f}\n",
           efd ? "eventfd" : "socket", name, cpu_a, cpu_b, n,
           (a + b) / 2 * 1e6 / (double) n, wall * 1e6 / (double) n);
    fflush(stdout);
    return 0;
}


int
main(int argc, char **argv)
{
    cpu_set_t  set;
    long       n = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
    int        cpus[2], k = 0, i;

    if (n <= 0) {
        fprintf(stderr, "usage: thinkgate-handoff [round trips > 0]\n");
        return 2;
    }
    if (sched_getaffinity(0, sizeof(set), &set) != 0) {
        perror("thinkgate-handoff: sched_getaffinity");
        return 1;
    }
    for (i = 0; i < CPU_SETSIZE && k < 2; i++) {
        if (CPU_ISSET(i, &set)) {
            cpus[k++] = i;
        }
    }
    for (i = 0; i < 2; i++) {
        if (tg_layout("one CPU", i, n, cpus[0], cpus[0]) != 0
            || (k == 2 && tg_layout("two CPUs", i, n, cpus[0], cpus[1]) != 0)
            || tg_layout("scheduler", i, n, -1, -1) != 0)
        {
            return 1;
        }
    }
    return 0;
}
