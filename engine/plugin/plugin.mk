# Strategy plugin loader and registry.  The engine links
# TG_PLUGIN_LOADER_SRCS with TG_PLUGIN_LOADER_LIBS (and -Iengine); no
# binary of our own.  The unit test loads small plugins built from
# tests/plugins/ into $(BUILD)/tests/plugins/.

TG_PLUGIN_LOADER_SRCS := engine/plugin/loader.c engine/plugin/open.c \
                         engine/plugin/check.c \
                         engine/plugin/options.c engine/plugin/selection.c \
                         engine/plugin/list.c
TG_PLUGIN_LOADER_HDRS := engine/plugin/loader.h engine/plugin/loader_int.h \
                         engine/plugin/options.h
TG_PLUGIN_LOADER_LIBS := -ldl $(shell pkg-config --libs jansson 2>/dev/null \
                                || echo -ljansson) -lm

# Test plugins: name.so from tests/plugins/name.c, plus variants of one
# source built with -D flags (a second version, broken descriptors).
TG_TEST_PLUGIN_DIR := $(BUILD)/tests/plugins
TG_TEST_PLUGIN_CFLAGS = -std=gnu11 -g -O2 -Wall -Wextra -Werror -Iinclude \
                        -shared -fPIC

TG_TEST_PLUGINS := $(addprefix $(TG_TEST_PLUGIN_DIR)/, \
    good.so good_v2.so bad_abi.so old_abi.so no_symbol.so load_fails.so \
    bad_sig.so small_size.so no_start.so \
    bad_opt_dup.so bad_opt_type.so bad_opt_default.so bad_opt_bounds.so \
    bad_opt_enum.so bad_opt_name.so bad_opt_minmax.so)

$(TG_TEST_PLUGIN_DIR):
	mkdir -p $@

$(TG_TEST_PLUGIN_DIR)/good.so: tests/plugins/good.c include/thinkgate/plugin.h | $(TG_TEST_PLUGIN_DIR)
	$(CC) $(TG_TEST_PLUGIN_CFLAGS) -DVERSION='"1.0"' -o $@ $<

$(TG_TEST_PLUGIN_DIR)/good_v2.so: tests/plugins/good.c include/thinkgate/plugin.h | $(TG_TEST_PLUGIN_DIR)
	$(CC) $(TG_TEST_PLUGIN_CFLAGS) -DVERSION='"2.0"' -o $@ $<

$(TG_TEST_PLUGIN_DIR)/bad_abi.so $(TG_TEST_PLUGIN_DIR)/no_symbol.so \
$(TG_TEST_PLUGIN_DIR)/load_fails.so: $(TG_TEST_PLUGIN_DIR)/%.so: tests/plugins/%.c include/thinkgate/plugin.h | $(TG_TEST_PLUGIN_DIR)
	$(CC) $(TG_TEST_PLUGIN_CFLAGS) -o $@ $<

# An ABI-1 descriptor (bad_abi.c's other variant).
$(TG_TEST_PLUGIN_DIR)/old_abi.so: tests/plugins/bad_abi.c include/thinkgate/plugin.h | $(TG_TEST_PLUGIN_DIR)
	$(CC) $(TG_TEST_PLUGIN_CFLAGS) -DCASE_abi1 -o $@ $<

# bad_desc.c and bad_options.c: one broken thing per variant, chosen by
# -DCASE_<the variant's name>.
$(TG_TEST_PLUGIN_DIR)/bad_sig.so $(TG_TEST_PLUGIN_DIR)/small_size.so \
$(TG_TEST_PLUGIN_DIR)/no_start.so: $(TG_TEST_PLUGIN_DIR)/%.so: tests/plugins/bad_desc.c include/thinkgate/plugin.h | $(TG_TEST_PLUGIN_DIR)
	$(CC) $(TG_TEST_PLUGIN_CFLAGS) -DCASE_$* -o $@ $<

$(TG_TEST_PLUGIN_DIR)/bad_opt_%.so: tests/plugins/bad_options.c include/thinkgate/plugin.h | $(TG_TEST_PLUGIN_DIR)
	$(CC) $(TG_TEST_PLUGIN_CFLAGS) -DCASE_$* -o $@ $<

# The test finds the plugins through TG_TEST_PLUGIN_DIR, compiled in; -I
# and -D given with the libraries apply to the whole command line.
$(eval $(call tg_unit_test,test_loader,tests/unit/test_loader.c \
    $(TG_PLUGIN_LOADER_SRCS) $(TG_PLUGIN_LOADER_HDRS) $(TG_TEST_PLUGINS), \
    -Iengine -DTG_TEST_PLUGIN_DIR='"$(abspath $(TG_TEST_PLUGIN_DIR))"' \
    $(TG_PLUGIN_LOADER_LIBS)))
