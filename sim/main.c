/*
 * thinkgate-sim entry point: options, traces, one event loop.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>

#include "sim.h"

static void
tg_sim_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void) sig;
    (void) what;
    event_base_loopbreak(arg);
}

/* What the options ask for beyond the traces: the judge, the event base,
 * the scheduler and the listening socket; -1 after saying why not. */
static int
tg_sim_setup(tg_sim_t *sim)
{
    char err[512];

    if (sim->opt.converge > 0 && sim->traces == NULL) {
        fprintf(stderr, "thinkgate-sim: --converge needs --traces: it "
                "answers with recorded final answers\n");
        return -1;
    }
    if (tg_sim_judge_init(sim, err, sizeof(err)) != 0) {
        fprintf(stderr, "thinkgate-sim: %s\n", err);
        return -1;
    }
    sim->base = event_base_new();
    if (sim->base == NULL) {
        fprintf(stderr, "thinkgate-sim: event_base_new failed\n");
        return -1;
    }
    if (tg_sim_init(sim, sim->base) != 0) {
        fprintf(stderr, "thinkgate-sim: out of memory\n");
        return -1;
    }
    if (tg_sim_http_setup(sim) != 0) {
        fprintf(stderr, "thinkgate-sim: cannot listen on %s:%d\n",
                sim->opt.listen_host, sim->opt.listen_port);
        return -1;
    }
    return 0;
}

/* The start-up lines on stderr: what is loaded, what is simulated, where
 * it listens. */
static void
tg_sim_announce(const tg_sim_t *sim)
{
    if (sim->traces != NULL)
        fprintf(stderr, "thinkgate-sim: %zu traces, %zu problems, %zu "
                "models\n", sim->traces->n_samples, sim->traces->n_problems,
                sim->traces->n_models);
    if (sim->opt.judge_model != NULL)
        fprintf(stderr, "thinkgate-sim: model `%s` is a SIMULATED judge of "
                "AUROC %g (seed %lld)\n", sim->opt.judge_model,
                sim->opt.judge_auroc, sim->opt.judge_seed);
    if (sim->opt.converge > 0)
        fprintf(stderr, "thinkgate-sim: continuations answer as a "
                "SIMULATED model at convergence %g\n", sim->opt.converge);
    fprintf(stderr, "thinkgate-sim listening on %s:%d\n",
            sim->opt.listen_host, sim->opt.listen_port);
}

int
main(int argc, char **argv)
{
    static tg_sim_t sim;
    struct event *sigint = NULL, *sigterm = NULL;
    char err[512];
    int rc;

    rc = tg_sim_options_parse(&sim.opt, argc, argv, err, sizeof(err));
    if (rc == 1) {
        tg_sim_options_help(stdout);
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "thinkgate-sim: %s\n", err);
        return 2;
    }
    /* A client that goes away must not kill the sim with SIGPIPE. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        perror("thinkgate-sim: signal");
        return 1;
    }
    if (sim.opt.traces != NULL) {
        sim.traces = tg_sim_traces_load(sim.opt.traces, err, sizeof(err));
        if (sim.traces == NULL) {
            fprintf(stderr, "thinkgate-sim: %s\n", err);
            return 1;
        }
    }
    if (tg_sim_setup(&sim) != 0)
        goto failed;
    sigint = evsignal_new(sim.base, SIGINT, tg_sim_signal_cb, sim.base);
    sigterm = evsignal_new(sim.base, SIGTERM, tg_sim_signal_cb, sim.base);
    if (sigint == NULL || sigterm == NULL || evsignal_add(sigint, NULL) != 0
        || evsignal_add(sigterm, NULL) != 0) {
        fprintf(stderr, "thinkgate-sim: cannot install signal handlers\n");
        goto failed;
    }
    tg_sim_announce(&sim);
    if (event_base_dispatch(sim.base) < 0) {
        fprintf(stderr, "thinkgate-sim: event loop failed\n");
        goto failed;
    }
    rc = 0;
    goto done;

failed:
    rc = 1;
done:
    if (sigint != NULL)
        event_free(sigint);
    if (sigterm != NULL)
        event_free(sigterm);
    tg_sim_destroy(&sim);
    if (sim.http != NULL)
        evhttp_free(sim.http);
    if (sim.base != NULL)
        event_base_free(sim.base);
    tg_sim_traces_free(sim.traces);
    return rc;
}
