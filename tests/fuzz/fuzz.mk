# libFuzzer harnesses (tests/fuzz/README.md), built with clang into
# $(BUILD)/fuzz/bin/.  `make fuzz [FUZZ_S=60]` runs each for FUZZ_S
# seconds and writes $(BUILD)/fuzz/summary.json; `make test-fuzz` (part of
# `make test`) replays tests/fuzz/regress/ and runs each for
# FUZZ_TEST_S seconds.  Included by the top-level Makefile after
# mk/config.mk, sim/sim.mk and engine/engine.mk.  module_end needs
# nginx-dev and the module's configure (mk/module.sh), as `make all` does.

FUZZ_CC      ?= clang
FUZZ_S       ?= 60
FUZZ_TEST_S  ?= 8
FUZZ_CFLAGS   = -std=gnu11 -g -O1 -Wall -Wextra -Werror -Iinclude \
                -D_GNU_SOURCE -fno-strict-aliasing -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined -Itests/fuzz
FUZZ_BIN      = $(BUILD)/fuzz/bin

TG_FUZZ_JLOAD = engine/util/jload.c engine/util/jstr.c engine/util/buf.c

# name, sources (the harness first), extra flags and libraries
TG_FUZZ_HARNESSES :=
define tg_fuzz
$(FUZZ_BIN)/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(2) tests/fuzz/fuzz.h \
    $(wildcard include/thinkgate/*.h) tests/fuzz/fuzz.mk
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) -o $$@ tests/fuzz/fuzz_$(1).c \
	    $(filter %.c,$(2)) $(3)
TG_FUZZ_HARNESSES += $(1)
endef

$(eval $(call tg_fuzz,request,engine/openai/request.c \
    engine/openai/chunk.c engine/openai/responses.c engine/openai/responses_out.c \
    engine/util/jdump.c $(TG_FUZZ_JLOAD) \
    engine/log.c,-Iengine -ljansson -lm))
$(eval $(call tg_fuzz,sse,engine/backend/sse.c,-Iengine))
$(eval $(call tg_fuzz,http1,engine/backend/http1.c,-Iengine))
$(eval $(call tg_fuzz,chunk,engine/openai/chunk.c,-Iengine -ljansson))
$(eval $(call tg_fuzz,jload,$(TG_FUZZ_JLOAD),-Iengine -ljansson -lm))
$(eval $(call tg_fuzz,meta,engine/core/meta.c engine/openai/chunk.c \
    $(TG_FUZZ_JLOAD),-Iengine -ljansson -lm))
$(eval $(call tg_fuzz,ring,$(TG_FUZZ_JLOAD),-Iengine -ljansson -lm))
$(eval $(call tg_fuzz,config,engine/config/generation.c \
    engine/config/document.c engine/config/fields.c engine/config/models.c \
    engine/config/locations.c engine/route/pool.c engine/config/health.c \
    engine/log.c,-Iengine -ljansson))
$(eval $(call tg_fuzz,answer,plugins/common/answer.c \
    plugins/common/answer_norm.c,-Iplugins))
$(eval $(call tg_fuzz,thoughts,plugins/common/thoughts.c,-Iplugins))
$(eval $(call tg_fuzz,sim_request,$(TG_SIM_LIB_SRC),-Isim $(TG_SIM_CFLAGS) \
    $(TG_SIM_LIBS) -lm))

# The module's END parsing, against nginx's headers as mk/module.sh
# configures them (nginx-dev); without nginx-dev there is no such harness.
NGX_SRC       ?= /usr/share/nginx/src
ifneq ($(wildcard $(NGX_SRC)/conf_flags),)
TG_FUZZ_NGX_I  = $(addprefix -I$(NGX_SRC)/src/,core event event/modules \
                   os/unix http http/modules http/v2) -I$(BUILD)/nginx \
                 -Ingx_module -Wno-unused-parameter
$(eval $(call tg_fuzz,module_end,ngx_module/ngx_http_thinkgate_vars.c \
    ngx_module/ngx_http_thinkgate.h $(BUILD)/nginx/ngx_auto_config.h,\
    $(TG_FUZZ_NGX_I)))

$(BUILD)/nginx/ngx_auto_config.h:
	bash mk/module.sh
endif

TG_FUZZ_BINS := $(patsubst %,$(FUZZ_BIN)/fuzz_%,$(TG_FUZZ_HARNESSES))

.PHONY: fuzz fuzz-build test-fuzz

fuzz-build: $(TG_FUZZ_BINS)

fuzz:
	bash mk/deps.sh --fuzz
	$(MAKE) --no-print-directory fuzz-build
	BUILD=$(BUILD) bash mk/fuzz.sh run $(FUZZ_S) $(TG_FUZZ_HARNESSES)

# Without clang (mk/deps.sh installs it) the harnesses cannot be built:
# say so rather than fail the rest of `make test`.
test-fuzz:
	@if command -v $(FUZZ_CC) >/dev/null 2>&1; then \
	    $(MAKE) --no-print-directory fuzz-build && \
	    BUILD=$(BUILD) bash mk/fuzz.sh test $(FUZZ_TEST_S) \
	        $(TG_FUZZ_HARNESSES); \
	else \
	    echo "fuzz: $(FUZZ_CC) not found, harnesses skipped (make deps)"; \
	fi
