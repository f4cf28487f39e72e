# The WordPiece tokenizer of all-MiniLM-L6-v2 (engine/embed/wordpiece.h).
# Included by the top-level Makefile after mk/config.mk, before engine.mk
# and embed.mk, which link TG_WORDPIECE_SRCS into the embedder.
#
# wordpiece_tables.c is generated and committed; regenerate it with
#   python3 engine/embed/gen_unicode.py \
#       --reference build/models/all-MiniLM-L6-v2/tokenizer.json

TG_WORDPIECE_SRCS := engine/embed/wordpiece.c engine/embed/wordpiece_norm.c \
                     engine/embed/wordpiece_tables.c
TG_WORDPIECE_HDRS := engine/embed/wordpiece.h engine/embed/wordpiece_int.h

$(eval $(call tg_unit_test,test_wordpiece,tests/unit/test_wordpiece.c \
    $(TG_WORDPIECE_SRCS) $(TG_WORDPIECE_HDRS),-Iengine))

# Ids of JSON strings on stdin, for tests/e2e/test_embed_tokenizer.py.
ALL_TARGETS += $(BUILD)/tests/wordpiece_ids

$(BUILD)/tests/wordpiece_ids: tests/unit/wordpiece_ids.c $(TG_WORDPIECE_SRCS) \
                              $(TG_WORDPIECE_HDRS) | $(BUILD)/tests
	$(CC) $(CFLAGS_BASE) -Iengine -o $@ $(filter %.c,$^) \
	    $(shell pkg-config --cflags --libs jansson 2>/dev/null || echo -ljansson)
