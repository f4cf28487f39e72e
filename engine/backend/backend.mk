# Backend client (libcurl multi on libuv) and SSE parser.  The engine links
# TG_BACKEND_SRCS with TG_BACKEND_LIBS; no binary of our own.

TG_BACKEND_SRCS := engine/backend/client.c engine/backend/transfer.c \
                   engine/backend/sse.c
TG_BACKEND_HDRS := engine/backend/client.h engine/backend/client_int.h \
                   engine/backend/sse.h engine/util/queue.h
TG_BACKEND_LIBS := $(shell pkg-config --libs libuv libcurl 2>/dev/null \
                     || echo -luv -lcurl)

TG_HTTP_TEST_SRCS := $(TG_BACKEND_SRCS) $(TG_BACKEND_HDRS) \
                     tests/unit/http_server.c tests/unit/http_server.h \
                     tests/unit/test_http_client.c

$(eval $(call tg_unit_test,test_sse,engine/backend/sse.c \
    engine/backend/sse.h tests/unit/test_sse.c,))
$(eval $(call tg_unit_test,test_http_client,$(TG_HTTP_TEST_SRCS),\
    -Iengine $(TG_BACKEND_LIBS) -lpthread))
