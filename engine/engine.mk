# thinkgated, the engine.  Included by the top-level Makefile after
# mk/config.mk and engine/backend/backend.mk (TG_BACKEND_SRCS).

TG_ENGINE_PKGS   := libuv jansson libcurl
TG_ENGINE_CFLAGS := $(CFLAGS_BASE) -Iengine $(TG_STATE_CFLAGS) \
                    $(shell pkg-config --cflags $(TG_ENGINE_PKGS) 2>/dev/null)
TG_ENGINE_LIBS   := $(shell pkg-config --libs $(TG_ENGINE_PKGS) 2>/dev/null \
                      || echo -luv -ljansson -lcurl) $(TG_STATE_LIBS)

# Everything but main.c, so that unit tests can link the components.
TG_ENGINE_LIB_SRCS := \
    engine/log.c \
    engine/util/buf.c \
    engine/util/cpu.c \
    engine/util/jstr.c \
    engine/util/jdump.c \
    engine/util/jload.c \
    engine/openai/chunk.c \
    engine/config/generation.c \
    engine/config/document.c \
    engine/config/fields.c \
    engine/config/models.c \
    engine/config/locations.c \
    engine/openai/request.c \
    engine/openai/responses.c \
    engine/openai/responses_out.c \
    engine/route/pool.c \
    engine/route/group.c \
    engine/config/health.c \
    engine/core/request.c \
    engine/core/meta.c \
    engine/core/trace.c \
    engine/core/group_wait.c \
    engine/serve/dispatch.c \
    engine/serve/prep.c \
    engine/serve/prep_session.c \
    engine/serve/prep_response.c \
    engine/core/effort.c \
    engine/core/shared.c \
    engine/core/shared_status.c \
    engine/serve/keys.c \
    engine/strategy/host.c \
    engine/strategy/host_api.c \
    engine/strategy/host_async.c \
    engine/strategy/host_trace.c \
    engine/strategy/host_body.c \
    engine/strategy/host_aux.c \
    engine/strategy/host_kv.c \
    engine/strategy/host_sse.c \
    engine/strategy/host_output.c \
    engine/strategy/host_choice.c \
    engine/strategy/host_reply.c \
    engine/strategy/host_responses.c \
    engine/strategy/host_select.c \
    engine/strategy/host_budget.c \
    engine/score/score.c \
    engine/score/embed_pool.c \
    engine/strategy/host_score.c \
    engine/core/embed_link.c \
    engine/serve/model_fetch.c \
    engine/serve/health_check.c \
    engine/serve/registration.c \
    engine/serve/admin.c \
    engine/serve/status.c \
    engine/transport/conn.c \
    engine/transport/register.c \
    engine/transport/affinity.c \
    engine/transport/listener.c

# The plugin loader (engine/plugin/, its own fragment plugin.mk is
# included after this one, hence the wildcard).
TG_ENGINE_SRCS := engine/main.c $(TG_ENGINE_LIB_SRCS) $(TG_STATE_SRCS) \
                  $(wildcard engine/plugin/*.c)

# The embedder and its tokenizer (engine/embed/embed.mk, wordpiece.mk):
# built by embed.mk's own rule (-O3), linked with OpenBLAS.
TG_ENGINE_SRCS += $(TG_EMBED_SRCS) $(TG_WORDPIECE_SRCS)
TG_ENGINE_LIBS += $(TG_EMBED_LIBS)

# The backend client is written alongside; until its sources exist the
# engine binary cannot link, and `make` stays green without it.
TG_ENGINE_BACKEND := $(filter-out $(wildcard $(TG_BACKEND_SRCS)),\
                       $(TG_BACKEND_SRCS))

ifneq ($(TG_BACKEND_SRCS),)
ifeq ($(TG_ENGINE_BACKEND),)

TG_ENGINE_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,\
                    $(TG_ENGINE_SRCS) $(TG_BACKEND_SRCS))

ALL_TARGETS += $(BUILD)/bin/thinkgated

$(BUILD)/bin/thinkgated: $(TG_ENGINE_OBJS) | $(BUILD)/bin
	$(CC) $(TG_ENGINE_CFLAGS) -o $@ $(TG_ENGINE_OBJS) $(TG_ENGINE_LIBS) \
	    -ldl -lm

$(BUILD)/obj/engine/%.o: engine/%.c
	@mkdir -p $(dir $@)
	$(CC) $(TG_ENGINE_CFLAGS) -MMD -MP -c -o $@ $<

-include $(TG_ENGINE_OBJS:.o=.d)

endif
endif

# Unit tests link the components they test, nothing of libuv's loop.
TG_ENGINE_TEST_FLAGS := -Iengine -ljansson

$(eval $(call tg_unit_test,test_ring,tests/unit/test_ring.c,-lpthread))
$(eval $(call tg_unit_test,test_request,tests/unit/test_request.c \
    engine/openai/request.c engine/openai/chunk.c engine/openai/responses.c \
    engine/openai/responses_out.c engine/util/jload.c engine/util/jstr.c \
    engine/util/jdump.c engine/util/buf.c engine/log.c,\
    $(TG_ENGINE_TEST_FLAGS) -lm))
$(eval $(call tg_unit_test,test_responses,tests/unit/test_responses.c \
    engine/openai/request.c engine/openai/chunk.c engine/openai/responses.c \
    engine/openai/responses_out.c engine/util/jload.c engine/util/jstr.c \
    engine/util/jdump.c engine/util/buf.c engine/log.c,\
    $(TG_ENGINE_TEST_FLAGS) -lm))
$(eval $(call tg_unit_test,test_config,tests/unit/test_config.c \
    engine/config/generation.c engine/config/document.c \
    engine/config/fields.c engine/config/models.c engine/route/pool.c \
    engine/config/locations.c engine/config/health.c engine/log.c,\
    $(TG_ENGINE_TEST_FLAGS)))
$(eval $(call tg_unit_test,test_conf_keys,tests/unit/test_conf_keys.c \
    engine/config/generation.c engine/config/document.c \
    engine/config/fields.c engine/config/models.c engine/route/pool.c \
    engine/config/locations.c engine/config/health.c engine/log.c,\
    $(TG_ENGINE_TEST_FLAGS)))
$(eval $(call tg_unit_test,test_route_group,tests/unit/test_route_group.c \
    engine/route/group.c engine/route/pool.c engine/config/health.c \
    engine/log.c,$(TG_ENGINE_TEST_FLAGS)))
$(eval $(call tg_unit_test,test_effort,tests/unit/test_effort.c \
    engine/core/effort.c,$(TG_ENGINE_TEST_FLAGS)))
$(eval $(call tg_unit_test,test_health,tests/unit/test_health.c \
    engine/config/generation.c engine/config/document.c \
    engine/config/fields.c engine/config/models.c engine/route/pool.c \
    engine/config/locations.c engine/config/health.c engine/log.c,\
    $(TG_ENGINE_TEST_FLAGS)))
$(eval $(call tg_unit_test,test_config_models,tests/unit/test_config_models.c \
    engine/config/generation.c engine/config/document.c \
    engine/config/fields.c engine/config/models.c engine/config/health.c \
    engine/config/locations.c engine/log.c,$(TG_ENGINE_TEST_FLAGS)))
$(eval $(call tg_unit_test,test_cpu,tests/unit/test_cpu.c \
    engine/util/cpu.c,-Iengine))
$(eval $(call tg_unit_test,test_queue,tests/unit/test_queue.c \
    engine/util/queue.h,-Iengine))
$(eval $(call tg_unit_test,test_jload,tests/unit/test_jload.c \
    engine/util/jload.c engine/util/jstr.c engine/util/buf.c,\
    $(TG_ENGINE_TEST_FLAGS) -lm))
$(eval $(call tg_unit_test,test_chunk,tests/unit/test_chunk.c \
    engine/openai/chunk.c engine/util/jstr.c engine/util/jdump.c \
    engine/util/buf.c,\
    $(TG_ENGINE_TEST_FLAGS)))
$(eval $(call tg_unit_test,test_keys,tests/unit/test_keys.c \
    engine/serve/keys.c engine/core/meta.c engine/openai/chunk.c \
    engine/openai/request.c engine/openai/responses.c \
    engine/openai/responses_out.c engine/util/jload.c engine/util/jstr.c \
    engine/util/jdump.c engine/util/buf.c engine/log.c,\
    $(TG_ENGINE_TEST_FLAGS) -lm))
$(eval $(call tg_unit_test,test_meta,tests/unit/test_meta.c \
    engine/core/meta.c engine/openai/chunk.c engine/util/jload.c \
    engine/util/jstr.c engine/util/jdump.c engine/util/buf.c,\
    $(TG_ENGINE_TEST_FLAGS) -lm))
# core/request.c alone: transport, traces, generations and the hooks
# above are fakes in the test.
$(eval $(call tg_unit_test,test_core_request,tests/unit/test_core_request.c \
    engine/core/request.c engine/core/meta.c engine/openai/chunk.c \
    engine/openai/request.c engine/openai/responses.c \
    engine/openai/responses_out.c engine/util/jload.c engine/util/jstr.c \
    engine/util/jdump.c engine/util/buf.c engine/log.c,\
    $(TG_ENGINE_TEST_FLAGS) -luv -lm))
$(eval $(call tg_unit_test,test_embed_pool,tests/unit/test_embed_pool.c \
    engine/score/embed_pool.c engine/util/cpu.c,-Iengine -luv -lpthread))

# The test plugin that touches every host API entry (tests/e2e/
# test_plugins.py).  Built beside the loader's test plugins, never into
# the production plugin directory.
TG_ABI_PROBE := $(BUILD)/tests/plugins/abi_probe.so
ALL_TARGETS += $(TG_ABI_PROBE)

$(TG_ABI_PROBE): tests/plugins/abi_probe.c include/thinkgate/plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -fPIC -fvisibility=hidden -shared -Wl,-z,defs \
	    -o $@ $< -lm

# The plugin host's unit test (tests/unit/test_host.c): host*.c as they
# are, with the real plugin loader, the real openai/ and util/ code, and
# the host_probe test plugin, against fakes of core (tests/unit/
# fake_core.c).  The plugin loads from $(BUILD)/tests/plugins.
TG_HOST_PROBE := $(BUILD)/tests/plugins/host_probe.so

$(TG_HOST_PROBE): tests/plugins/host_probe.c include/thinkgate/plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -fPIC -fvisibility=hidden -shared -Wl,-z,defs \
	    -o $@ $<

TG_HOST_TEST_SRCS := $(wildcard engine/strategy/host*.c) \
    $(wildcard engine/plugin/*.c) engine/core/effort.c engine/core/meta.c \
    engine/score/score.c \
    engine/openai/request.c engine/openai/responses.c \
    engine/openai/responses_out.c engine/openai/chunk.c \
    engine/util/buf.c engine/util/jstr.c engine/util/jdump.c \
    engine/util/jload.c engine/log.c

$(eval $(call tg_unit_test,test_host,tests/unit/test_host.c \
    tests/unit/fake_core.c tests/unit/fake_core.h $(TG_HOST_TEST_SRCS) \
    $(TG_HOST_PROBE),-Iengine -Itests/unit \
    -DTG_TEST_PLUGIN_DIR='"$(abspath $(BUILD)/tests/plugins)"' \
    $(shell pkg-config --cflags libuv 2>/dev/null) -luv -ljansson -ldl -lm))

# The test plugin for aux requests to model servers and kv (tests/e2e/
# test_aux_judge.py, test_kv.py), with plugins/common/judge compiled in.
TG_AUX_PROBE := $(BUILD)/tests/plugins/aux_probe.so
ALL_TARGETS += $(TG_AUX_PROBE)

$(TG_AUX_PROBE): tests/plugins/aux_probe.c plugins/common/judge.c \
    plugins/common/judge.h include/thinkgate/plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -Iplugins -fPIC -fvisibility=hidden -shared \
	    -Wl,-z,defs -o $@ tests/plugins/aux_probe.c plugins/common/judge.c \
	    -lm

# The test plugin that calls score_kind() on a request's texts (tests/e2e/
# test_embed_score.py, bench/embed_score).
TG_SCORE_PROBE := $(BUILD)/tests/plugins/score_probe.so
ALL_TARGETS += $(TG_SCORE_PROBE)

$(TG_SCORE_PROBE): tests/plugins/score_probe.c include/thinkgate/plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -fPIC -fvisibility=hidden -shared -Wl,-z,defs \
	    -o $@ $<
