# Plugins: one strategy per .c, each built to $(BUILD)/plugins/NAME.so, and
# plugins/common/, the helpers they share (answer extraction, the vote
# tally, sampled traces that vote, thought splitting), compiled into every
# plugin that needs them.  Plugins link
# nothing from the engine, so neither does common/.

TG_PLUGIN_CFLAGS = -Iplugins
TG_COMMON_ANSWER = plugins/common/answer.c plugins/common/answer_norm.c \
                   plugins/common/answer.h
TG_COMMON_VOTE   = plugins/common/vote.c plugins/common/vote.h \
                   $(TG_COMMON_ANSWER)
TG_COMMON_SAMPLES = plugins/common/samples.c plugins/common/samples.h \
                    $(TG_COMMON_VOTE)
TG_COMMON_THOUGHTS = plugins/common/thoughts.c plugins/common/thoughts.h
TG_COMMON_JUDGE  = plugins/common/judge.c plugins/common/judge.h
TG_COMMON_CLUSTER = plugins/common/cluster.c plugins/common/cluster.h

# Test helpers: recorded traces (../shared/traces or $(TG_TRACES_DIR)).
TG_TRACES_READER = tests/unit/traces_reader.c tests/unit/traces_reader.h

# --- plugin .so rules (one block per strategy) go here ---

# --- unit tests of plugins/common ---
$(eval $(call tg_unit_test,test_answer,$(TG_COMMON_ANSWER) \
    $(TG_TRACES_READER) tests/unit/test_answer.c, \
    $(TG_PLUGIN_CFLAGS) -Itests/unit -ljansson -lz))
$(eval $(call tg_unit_test,test_judge,$(TG_COMMON_JUDGE) \
    tests/unit/test_judge.c,$(TG_PLUGIN_CFLAGS) -lm))
$(eval $(call tg_unit_test,test_cluster,$(TG_COMMON_CLUSTER) \
    tests/unit/test_cluster.c,$(TG_PLUGIN_CFLAGS) -lm))
$(eval $(call tg_unit_test,test_vote,$(TG_COMMON_VOTE) \
    tests/unit/test_vote.c,$(TG_PLUGIN_CFLAGS)))
$(eval $(call tg_unit_test,test_thoughts,$(TG_COMMON_THOUGHTS) \
    $(TG_TRACES_READER) tests/unit/test_thoughts.c, \
    $(TG_PLUGIN_CFLAGS) -Itests/unit -ljansson -lz))
