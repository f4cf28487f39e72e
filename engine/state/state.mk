# engine/state: the Redis connection, the Lua scripts' callers, the prefix
# index and sessions.  Included by the top-level Makefile after
# mk/config.mk; the engine links $(TG_STATE_SRCS) with $(TG_STATE_CFLAGS)
# and $(TG_STATE_LIBS).

TG_STATE_SRCS := \
    engine/state/sha1.c \
    engine/state/redis.c \
    engine/state/redis_cmd.c \
    engine/state/redis_ev.c \
    engine/state/script.c \
    engine/state/prefix.c \
    engine/state/prefix_local.c \
    engine/state/session.c \
    engine/state/session_op.c

# The compiled-in fallback for --lua-dir (see tg_redis_default_lua_dir).
TG_STATE_CFLAGS := -DTG_LUA_DIR='"$(abspath lua)"'
TG_STATE_LIBS   := -lhiredis -lxxhash

# Unit tests start their own redis-server and read the scripts from here.
TG_STATE_TEST_FLAGS := -Iengine $(TG_STATE_CFLAGS) \
    -DTG_TEST_LUA_DIR='"$(abspath lua)"' $(TG_STATE_LIBS) -luv

$(eval $(call tg_unit_test,test_redis,tests/unit/test_redis.c \
    tests/unit/redis_server.c $(TG_STATE_SRCS) engine/log.c,\
    -Itests/unit $(TG_STATE_TEST_FLAGS)))
$(eval $(call tg_unit_test,test_prefix,tests/unit/test_prefix.c \
    tests/unit/redis_server.c $(TG_STATE_SRCS) engine/log.c,\
    -Itests/unit $(TG_STATE_TEST_FLAGS)))
