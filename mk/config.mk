# Shared build settings.  Every component fragment (sim/sim.mk,
# engine/engine.mk, plugins/plugins.mk, ...) is included by the top-level
# Makefile after this file and uses these variables.

# The first rule of the build is `all`, whatever the fragments define.
.DEFAULT_GOAL := all

BUILD      ?= build
CC         ?= cc
OPT        ?= -O2
CFLAGS_BASE = -std=gnu11 -g $(OPT) -Wall -Wextra -Werror -Iinclude \
              -D_GNU_SOURCE -fno-strict-aliasing
ASAN_FLAGS  = -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined
CUDA_HOME  ?= /usr/local/cuda

# Binaries and plugins a component adds for `make all`.
ALL_TARGETS :=
# Unit-test binaries (Criterion) run by `make test-unit`, plain and ASan.
UNIT_TESTS  :=

# $(call tg_unit_test,NAME,SOURCES,LDLIBS): a Criterion test binary built
# twice, plain into $(BUILD)/tests/NAME and with ASan+UBSan into
# $(BUILD)/asan/tests/NAME; both run in `make test`.
define tg_unit_test
$(BUILD)/tests/$(1): $(2) $(wildcard include/thinkgate/*.h) | $(BUILD)/tests
	$$(CC) $$(CFLAGS_BASE) -o $$@ $(filter %.c,$(2)) $(3) -lcriterion
$(BUILD)/asan/tests/$(1): $(2) $(wildcard include/thinkgate/*.h) | $(BUILD)/asan/tests
	$$(CC) $$(CFLAGS_BASE) $$(ASAN_FLAGS) -o $$@ $(filter %.c,$(2)) $(3) -lcriterion
UNIT_TESTS += $(BUILD)/tests/$(1) $(BUILD)/asan/tests/$(1)
endef

$(BUILD)/bin $(BUILD)/tests $(BUILD)/asan/tests $(BUILD)/plugins $(BUILD)/obj:
	mkdir -p $@
