
/*
 * thinkgate nginx module: thinkgate_status.  The engine renders the
 * status (a REQUEST of kind "status"); when it is not connected the worker
 * answers itself, so that monitoring sees the outage rather than a 503.
 */


#include "ngx_http_thinkgate.h"




ngx_int_t
ngx_http_thinkgate_status_handler(ngx_http_request_t *r)
{
    return ngx_http_thinkgate_start(r, NGX_HTTP_THINKGATE_KIND_STATUS);
}


ngx_int_t
ngx_http_thinkgate_status_offline(ngx_http_request_t *r)
{
    u_char     *p, *last;
    size_t      size;
    ngx_str_t   format;

    size = 512;

    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_arg(r, (u_char *) "format", 6, &format) == NGX_OK
        && format.len == 10
        && ngx_strncmp(format.data, "prometheus", 10) == 0)
    {
        last = ngx_slprintf(p, p + size,
                   "# HELP thinkgate_engine_connected Whether this worker "
                   "is registered with the engine.\n"
                   "# TYPE thinkgate_engine_connected gauge\n"
                   "thinkgate_engine_connected 0\n"
                   "# HELP thinkgate_worker_inflight Requests in flight "
                   "in this worker.\n"
                   "# TYPE thinkgate_worker_inflight gauge\n"
                   "thinkgate_worker_inflight{pid=\"%P\"} %ui\n",
                   ngx_pid, ngx_http_thinkgate_engine_inflight());

        return ngx_http_thinkgate_send_body(r, NGX_HTTP_OK,
                                            "text/plain; version=0.0.4", p,
                                            last - p);
    }

    last = ngx_slprintf(p, p + size,
                        "{\"engine\":{\"connected\":false},"
                        "\"worker\":{\"pid\":%P,\"in_flight\":%ui}}\n",
                        ngx_pid, ngx_http_thinkgate_engine_inflight());

    return ngx_http_thinkgate_send_json(r, NGX_HTTP_OK, p, last - p);
}
