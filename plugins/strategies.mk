# Strategy plugins: passthrough, self_consistency, ffs, deepprune and
# trimr, each built to
# $(BUILD)/plugins/NAME.so from its .c and the plugins/common/ sources it
# needs.  Compiled with -fvisibility=hidden so that the only dynamic
# symbol is the descriptor, thinkgate_plugin (marked visibility default in
# the source); the rule checks that with nm -D, so a helper that leaks into
# the dynamic table (and could bind to another plugin's copy) fails the
# build.  Included by the top-level Makefile after plugins/plugins.mk.

# plugins/plugins.mk defines these; the fallbacks keep this file usable
# on its own.
TG_PLUGIN_CFLAGS ?= -Iplugins
TG_COMMON_ANSWER ?= plugins/common/answer.c plugins/common/answer_norm.c \
                    plugins/common/answer.h
TG_COMMON_VOTE ?= plugins/common/vote.c plugins/common/vote.h \
                  $(TG_COMMON_ANSWER)
TG_COMMON_SAMPLES ?= plugins/common/samples.c plugins/common/samples.h \
                     $(TG_COMMON_VOTE)
TG_TRACES_READER ?= tests/unit/traces_reader.c tests/unit/traces_reader.h
TG_COMMON_JUDGE ?= plugins/common/judge.c plugins/common/judge.h
TG_COMMON_CLUSTER ?= plugins/common/cluster.c plugins/common/cluster.h

# DeepPrune is three files (the strategy, its judges, its summary) and one
# header.
TG_DEEPPRUNE_SRC = plugins/deepprune_judge.c plugins/deepprune_summary.c \
                   plugins/deepprune.h \
                   $(TG_COMMON_CLUSTER) $(TG_COMMON_JUDGE) $(TG_COMMON_SAMPLES)

# TrimR: the strategy, its stream watcher and its verifiers, one header.
TG_COMMON_THOUGHTS ?= plugins/common/thoughts.c plugins/common/thoughts.h
TG_TRIMR_SRC = plugins/trimr_watch.c plugins/trimr_verify.c plugins/trimr.h \
               $(TG_COMMON_THOUGHTS) $(TG_COMMON_JUDGE) $(TG_COMMON_SAMPLES)

TG_STRATEGY_CFLAGS = $(CFLAGS_BASE) $(TG_PLUGIN_CFLAGS) -fPIC \
                     -fvisibility=hidden
TG_PLUGIN_HDRS     = include/thinkgate/plugin.h

# $(call tg_strategy_so,NAME,EXTRA_SOURCES[,LIBS]): the .so rule of one
# strategy; LIBS are system libraries it needs (-lm).
define tg_strategy_so
$(BUILD)/plugins/$(1).so: plugins/$(1).c $(2) $(TG_PLUGIN_HDRS) \
        plugins/strategies.mk | $(BUILD)/plugins
	$$(CC) $$(TG_STRATEGY_CFLAGS) -shared -Wl,-z,defs -o $$@.tmp \
	    plugins/$(1).c $$(filter %.c,$(2)) $(3)
	@bad=$$$$(nm -D --defined-only $$@.tmp | awk '{ print $$$$NF }' \
	    | grep -vx 'thinkgate_plugin' | grep -v '^_' || true); \
	if [ -n "$$$$bad" ]; then \
	    echo "$$@: exports more than thinkgate_plugin: $$$$bad" >&2; \
	    rm -f $$@.tmp; exit 1; \
	fi
	mv $$@.tmp $$@
ALL_TARGETS += $(BUILD)/plugins/$(1).so
endef

$(eval $(call tg_strategy_so,passthrough,))
$(eval $(call tg_strategy_so,self_consistency,$(TG_COMMON_SAMPLES)))
$(eval $(call tg_strategy_so,ffs,$(TG_COMMON_SAMPLES)))
$(eval $(call tg_strategy_so,auto,$(TG_COMMON_SAMPLES)))
$(eval $(call tg_strategy_so,deepprune,$(TG_DEEPPRUNE_SRC),-lm))
$(eval $(call tg_strategy_so,trimr,$(TG_TRIMR_SRC),-lm))

# Symbolic-MoE: the strategy, its experts and the skills helpers (lexicon,
# profiles, recruitment); jansson parses the profile files at load().
TG_COMMON_SKILLS = plugins/common/skills.c plugins/common/lexicon.c \
                   plugins/common/skills.h
TG_MOE_SRC = plugins/symbolic_moe_experts.c plugins/symbolic_moe_pool.c \
             plugins/symbolic_moe.h \
             $(TG_COMMON_SKILLS) $(TG_COMMON_VOTE)
$(eval $(call tg_strategy_so,symbolic_moe,$(TG_MOE_SRC),-ljansson -lm))

# The test plugin that runs deepprune's judges (deepprune_judge.c, as the
# plugin has it) on given prefixes, for bench/judge.
TG_JUDGE_PROBE := $(BUILD)/tests/plugins/judge_probe.so
ALL_TARGETS += $(TG_JUDGE_PROBE)

$(TG_JUDGE_PROBE): tests/plugins/judge_probe.c $(TG_DEEPPRUNE_SRC) \
    include/thinkgate/plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(TG_STRATEGY_CFLAGS) -shared -Wl,-z,defs -o $@ \
	    tests/plugins/judge_probe.c $(filter %.c,$(TG_DEEPPRUNE_SRC)) -lm

# Unit tests: each links its plugin's .c directly (no dlopen) with the
# fake host (tests/unit/fake_host*.c) and the helpers every plugin test
# shares (tests/unit/plugin_test_util.c).
TG_FAKE_HOST = tests/unit/fake_host.c tests/unit/fake_host_loop.c \
               tests/unit/fake_host_api.c tests/unit/fake_host_async.c \
               tests/unit/fake_host.h tests/unit/fake_host_int.h \
               tests/unit/plugin_test_util.c tests/unit/plugin_test_util.h
TG_FAKE_LIBS = $(TG_PLUGIN_CFLAGS) -Itests/unit -lm

$(eval $(call tg_unit_test,test_plugin_passthrough,plugins/passthrough.c \
    $(TG_FAKE_HOST) tests/unit/test_plugin_passthrough.c,$(TG_FAKE_LIBS)))
$(eval $(call tg_unit_test,test_plugin_self_consistency, \
    plugins/self_consistency.c $(TG_COMMON_SAMPLES) $(TG_FAKE_HOST) \
    tests/unit/test_plugin_self_consistency.c,$(TG_FAKE_LIBS)))
$(eval $(call tg_unit_test,test_plugin_ffs,plugins/ffs.c \
    $(TG_COMMON_SAMPLES) $(TG_FAKE_HOST) tests/unit/test_plugin_ffs.c, \
    $(TG_FAKE_LIBS)))

$(eval $(call tg_unit_test,test_plugin_auto,plugins/auto.c \
    $(TG_COMMON_SAMPLES) $(TG_FAKE_HOST) tests/unit/test_plugin_auto.c, \
    $(TG_FAKE_LIBS)))

$(eval $(call tg_unit_test,test_plugin_deepprune,plugins/deepprune.c \
    $(TG_DEEPPRUNE_SRC) $(TG_FAKE_HOST) tests/unit/test_plugin_deepprune.c, \
    $(TG_FAKE_LIBS)))

$(eval $(call tg_unit_test,test_plugin_symbolic_moe,plugins/symbolic_moe.c \
    $(TG_MOE_SRC) $(TG_FAKE_HOST) tests/unit/test_plugin_symbolic_moe.c, \
    $(TG_FAKE_LIBS) -ljansson))
$(eval $(call tg_unit_test,test_skills,$(TG_COMMON_SKILLS) \
    tests/unit/test_skills.c,$(TG_PLUGIN_CFLAGS) -ljansson -lm))
$(eval $(call tg_unit_test,test_plugin_trimr,plugins/trimr.c \
    $(TG_TRIMR_SRC) $(TG_FAKE_HOST) tests/unit/test_plugin_trimr.c, \
    $(TG_FAKE_LIBS)))

# The replay test runs the voting strategies over ../shared/traces; it
# #includes both plugin sources (renaming each descriptor), so they are
# prerequisites here rather than sources of the macro.
$(eval $(call tg_unit_test,test_plugin_replay,$(TG_DEEPPRUNE_SRC) \
    $(TG_FAKE_HOST) $(TG_TRACES_READER) tests/unit/test_plugin_replay.c, \
    $(TG_FAKE_LIBS) -ljansson -lz))
$(BUILD)/tests/test_plugin_replay $(BUILD)/asan/tests/test_plugin_replay: \
    plugins/self_consistency.c plugins/ffs.c plugins/deepprune.c

# The aux_probe test plugin (tests/plugins/) against the fake host: the
# aux result fields and kv as the fake host serves them.
$(eval $(call tg_unit_test,test_aux_probe,tests/plugins/aux_probe.c \
    $(TG_COMMON_JUDGE) $(TG_FAKE_HOST) tests/unit/test_aux_probe.c, \
    $(TG_FAKE_LIBS)))

# bench/strategies' baselines read each recorded trace's answer with the
# plugins' own extractor (bench/answers.c).
TG_ANSWERS_TOOL := $(BUILD)/bin/thinkgate-answers
ALL_TARGETS += $(TG_ANSWERS_TOOL)

$(TG_ANSWERS_TOOL): bench/answers.c $(TG_COMMON_ANSWER)
	@mkdir -p $(dir $@)
	$(CC) $(TG_STRATEGY_CFLAGS) -o $@ bench/answers.c \
	    $(filter %.c,$(TG_COMMON_ANSWER)) -ljansson -lz
