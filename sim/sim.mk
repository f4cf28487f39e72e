# thinkgate-sim: build/bin/thinkgate-sim and its unit tests.
# Included by the top-level Makefile after mk/config.mk.

TG_SIM_PKGS   := libevent jansson zlib
TG_SIM_CFLAGS := $(shell pkg-config --cflags $(TG_SIM_PKGS) 2>/dev/null)
TG_SIM_LIBS   := $(shell pkg-config --libs $(TG_SIM_PKGS) 2>/dev/null \
                   || echo -levent -ljansson -lz)
TG_SIM_LIB_SRC := sim/options.c sim/text.c sim/traces.c sim/synth.c \
                  sim/cache.c sim/sched.c sim/render.c sim/request.c \
                  sim/http.c sim/embed.c sim/judge.c \
                  sim/continue.c
TG_SIM_OBJ    := $(patsubst sim/%.c,$(BUILD)/obj/sim/%.o,\
                   $(TG_SIM_LIB_SRC) sim/main.c)

ALL_TARGETS += $(BUILD)/bin/thinkgate-sim

$(BUILD)/obj/sim/%.o: sim/%.c sim/sim.h sim/request.h | $(BUILD)/obj/sim
	$(CC) $(CFLAGS_BASE) $(TG_SIM_CFLAGS) -c -o $@ $<

$(BUILD)/obj/sim:
	mkdir -p $@

$(BUILD)/bin/thinkgate-sim: $(TG_SIM_OBJ) | $(BUILD)/bin
	$(CC) $(CFLAGS_BASE) -o $@ $(TG_SIM_OBJ) $(TG_SIM_LIBS) -lm

$(eval $(call tg_unit_test,test_sim,tests/unit/test_sim.c $(TG_SIM_LIB_SRC) sim/sim.h sim/request.h,-Isim $(TG_SIM_CFLAGS) $(TG_SIM_LIBS) -lm))
