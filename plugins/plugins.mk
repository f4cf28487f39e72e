# Plugins: one strategy per .c, each built to $(BUILD)/plugins/NAME.so, and
# plugins/common/, the helpers they share (answer extraction, thought
# splitting), compiled into every plugin that needs them.  Plugins link
# nothing from the engine, so neither does common/.

TG_PLUGIN_CFLAGS = -Iplugins
TG_COMMON_ANSWER = plugins/common/answer.c plugins/common/answer_norm.c \
                   plugins/common/answer.h
TG_COMMON_THOUGHTS = plugins/common/thoughts.c plugins/common/thoughts.h

# --- plugin .so rules (one block per strategy) go here ---

# --- unit tests of plugins/common ---
$(eval $(call tg_unit_test,test_answer,$(TG_COMMON_ANSWER) \
    tests/unit/test_answer.c,$(TG_PLUGIN_CFLAGS) -ljansson -lz))
$(eval $(call tg_unit_test,test_thoughts,$(TG_COMMON_THOUGHTS) \
    tests/unit/test_thoughts.c,$(TG_PLUGIN_CFLAGS) -ljansson -lz))
