# engine/embed: the sentence embedder (embed.h) and thinkgate-embed.
# Included by the top-level Makefile after engine/embed/wordpiece.mk
# (TG_WORDPIECE_SRCS, the tokenizer) and before engine/engine.mk, which
# links TG_EMBED_SRCS and TG_WORDPIECE_SRCS into thinkgated with
# TG_EMBED_LIBS.
#
# Objects under $(BUILD)/obj/engine/embed/ are built by the rule below
# (it is more specific than the engine's), so the engine and the tool link
# the same code built the same way: -O3 and vectorised elementwise loops
# (bert_ops.c picks AVX2 or AVX-512 clones at run time; no -march).
# CUDA is loaded with dlopen at run time: nothing of it at link time.

TG_EMBED_SRCS := engine/embed/safetensors.c engine/embed/bert.c \
                 engine/embed/bert_forward.c engine/embed/bert_ops.c \
                 engine/embed/pool.c engine/embed/gemm_cpu.c \
                 engine/embed/gemm_avx512.c \
                 engine/embed/gemm_cuda.c engine/embed/embed.c
TG_EMBED_HDRS := engine/embed/embed.h engine/embed/bert.h \
                 engine/embed/bert_int.h engine/embed/pool.h \
                 engine/embed/gemm_avx512.h \
                 engine/embed/bert_ops.h engine/embed/gemm.h \
                 engine/embed/safetensors.h engine/embed/wordpiece.h
TG_EMBED_PKGS := openblas jansson
TG_EMBED_CFLAGS := $(CFLAGS_BASE) -O3 -fno-math-errno -fopenmp-simd \
                   -Iengine \
                   $(shell pkg-config --cflags $(TG_EMBED_PKGS) 2>/dev/null)
TG_EMBED_LIBS := $(shell pkg-config --libs $(TG_EMBED_PKGS) 2>/dev/null \
                   || echo -lopenblas -ljansson) -lpthread -ldl -lm

TG_EMBED_TOOL_SRCS := engine/embed/tool.c $(TG_EMBED_SRCS) \
                      $(TG_WORDPIECE_SRCS)
TG_EMBED_TOOL_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(TG_EMBED_TOOL_SRCS))

$(BUILD)/obj/engine/embed/%.o: engine/embed/%.c
	@mkdir -p $(dir $@)
	$(CC) $(TG_EMBED_CFLAGS) -MMD -MP -c -o $@ $<

# The tokenizer is written alongside; until its sources exist the tool
# cannot link, and `make` stays green without it.
ifneq ($(TG_WORDPIECE_SRCS),)
ifeq ($(filter-out $(wildcard $(TG_WORDPIECE_SRCS)),$(TG_WORDPIECE_SRCS)),)
ALL_TARGETS += $(BUILD)/bin/thinkgate-embed
endif
endif

$(BUILD)/bin/thinkgate-embed: $(TG_EMBED_TOOL_OBJS) | $(BUILD)/bin
	$(CC) $(TG_EMBED_CFLAGS) -o $@ $(TG_EMBED_TOOL_OBJS) $(TG_EMBED_LIBS)

-include $(TG_EMBED_TOOL_OBJS:.o=.d)

$(eval $(call tg_unit_test,test_embed,tests/unit/test_embed.c \
    $(TG_EMBED_SRCS) $(TG_WORDPIECE_SRCS) $(TG_EMBED_HDRS),\
    -Iengine -fopenmp-simd \
    $(shell pkg-config --cflags openblas 2>/dev/null) $(TG_EMBED_LIBS)))

# The CPU stand-in for libcudart/libcublas (fake_cuda.c) that lets
# tests/e2e/test_embed_model.py run the cuBLAS backend without a GPU.
TG_FAKE_CUDA := $(BUILD)/tests/fake_cuda/libcudart.so.13 \
                $(BUILD)/tests/fake_cuda/libcublas.so.13
ALL_TARGETS += $(TG_FAKE_CUDA)

$(TG_FAKE_CUDA): tests/unit/fake_cuda.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -fopenmp-simd -fPIC -shared -o $@ $<
