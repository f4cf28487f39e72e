# `make bench`: every executable file directly in bench/ is a benchmark
# entry point (bench/overhead, bench/relay, bench/scale, and whatever later
# issues add; not bench/soak, which is `make soak`, nor bench/callgrind,
# which is `make callgrind`).  Each prints its
# table and writes build/bench/NAME.json and NAME.png, stamped with the
# commit and this run's id (TG_BENCH_RUN_ID); bench/report.py then renders
# all JSON into README.md's Performance block, and refuses when they are
# not all of one run on one commit (so a benchmark that failed and left an
# older JSON fails the report too).  A benchmark never fails on speed; a
# non-zero exit means it could not run, and `make bench` reports that at
# the end.  `make bench BENCH="..."` runs a subset and leaves README.md
# alone: its JSON cannot make one run with the others.

# overhead and relay take about 2 and 2.5 minutes each here with LiteLLM's
# rows (without them, 45 s each).
BENCH_TIMEOUT ?= 420
# bench/judge embeds every trace prefix of ../shared/traces three times and
# asks SmolLM2 (seconds a call): it gets longer.
BENCH_JUDGE_TIMEOUT ?= 3600
# bench/strategies runs 12 configurations over all 16 trace files: about
# 20 minutes here, past BENCH_TIMEOUT.
BENCH_STRATEGIES_TIMEOUT ?= 1800
# bench/embed (three rounds of 256 traces, our embedder against
# onnxruntime) took 420 s here on a busy day and was cut at the limit.
BENCH_EMBED_TIMEOUT ?= 1200
# bench/judge's embed judge embeds every trace prefix three times: all
# problems take about an hour here, so make bench samples the first 6 of
# each file (BENCH_JUDGE_ARGS= runs all).
BENCH_JUDGE_ARGS ?= --embed-max-problems 6
# bench/embed (the CPU embedder vs onnxruntime) and bench/device-check
# (cuBLAS vs CPU on a GPU machine, "no GPU" and exit 0 elsewhere) are
# entry points like the others.
# `make bench BENCH="overhead relay"` runs only those.
BENCH ?=

.PHONY: bench bench-report soak callgrind

# overhead and relay measure the LiteLLM proxy too: mk/litellm.sh installs
# it once (pinned, into $(BUILD)/litellm/venv, never the system Python),
# or says why not, and the benchmarks then skip its rows.
bench: all
	@mkdir -p $(BUILD)/bench
	@if [ -z "$(BENCH)" ] || case " $(BENCH) " in *" overhead "*|*" relay "*) \
	  true ;; *) false ;; esac; then BUILD=$(BUILD) bash mk/litellm.sh; fi
	@failed=""; \
	export TG_BENCH_RUN_ID="bench-$$(date -u +%Y%m%dT%H%M%SZ)-$$$$"; \
	for f in bench/*; do \
	  [ -f "$$f" ] && [ -x "$$f" ] || continue; \
	  [ "$$f" = bench/soak ] && continue; \
	  [ "$$f" = bench/callgrind ] && continue; \
	  if [ -n "$(BENCH)" ]; then \
	    case " $(BENCH) " in *" $${f#bench/} "*) ;; *) continue ;; esac; \
	  fi; \
	  echo "== $$f"; \
	  start=$$(date +%s); \
	  limit=$(BENCH_TIMEOUT); \
	  args=""; \
	  [ "$${f#bench/}" = strategies ] && limit=$(BENCH_STRATEGIES_TIMEOUT); \
	  [ "$${f#bench/}" = embed ] && limit=$(BENCH_EMBED_TIMEOUT); \
	  [ "$${f#bench/}" = judge ] && limit=$(BENCH_JUDGE_TIMEOUT) \
	    && args="$(BENCH_JUDGE_ARGS)"; \
	  timeout -k 10 $$limit "$$f" $$args || failed="$$failed $$f"; \
	  echo "== $$f: $$(( $$(date +%s) - start )) s"; \
	done; \
	if [ -z "$(BENCH)" ]; then \
	  python3 bench/report.py || failed="$$failed bench/report.py"; \
	else \
	  echo "bench: a subset (BENCH=$(BENCH)): README.md left alone"; \
	fi; \
	if [ -n "$$failed" ]; then echo "bench: failed:$$failed"; exit 1; fi

bench-report:
	python3 bench/report.py

# `make soak [SOAK_S=600]`: bench/soak, mixed load against two gateways
# under injected faults (bench/README.md); writes build/bench/soak.json
# and fails when a request failed other than cleanly, a stream leaked, a
# session turn was lost or RSS grew.  Not part of `make test` or `make
# bench`.
SOAK_S ?= 120
SOAK_SEED ?= 1

soak: all
	@mkdir -p $(BUILD)/bench
	python3 bench/soak --seconds $(SOAK_S) --seed $(SOAK_SEED)

# `make callgrind [CALLGRIND_N=2000]`: bench/callgrind, the user-space
# instructions per small non-streamed request of the engine and of the
# nginx process (thinkgate_pass and proxy_pass), counted by valgrind's
# callgrind, so repeatable on a busy machine; with the engine's system
# calls per request (strace).  Not part of `make test` or `make bench`.
CALLGRIND_N ?= 2000

callgrind: all
	python3 bench/callgrind --requests $(CALLGRIND_N) --syscalls

# thinkgate-handoff (bench/handoff.c): the cost of one hand-off between two
# processes on one CPU and across two; bench/overhead prints it beside its
# CPU figures.
ALL_TARGETS += $(BUILD)/bin/thinkgate-handoff

$(BUILD)/bin/thinkgate-handoff: bench/handoff.c | $(BUILD)/bin
	$(CC) $(CFLAGS_BASE) -o $@ bench/handoff.c
