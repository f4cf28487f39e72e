# Backend client (our own HTTP/1.1 client for http://, libcurl multi for
# https://, both on libuv), its response parser and the SSE parser.  The engine links
# TG_BACKEND_SRCS with TG_BACKEND_LIBS; no binary of our own.

TG_BACKEND_SRCS := engine/backend/client.c engine/backend/transfer.c \
                   engine/backend/h1client.c engine/backend/h1conn.c \
                   engine/backend/http1.c engine/backend/sse.c
TG_BACKEND_HDRS := engine/backend/client.h engine/backend/client_int.h \
                   engine/backend/h1client.h engine/backend/http1.h \
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
$(eval $(call tg_unit_test,test_http1,engine/backend/http1.c \
    engine/backend/http1.h tests/unit/test_http1.c,))
