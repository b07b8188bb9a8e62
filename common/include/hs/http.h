/* hs_http: the service's HTTP endpoint (/metrics, /healthz, /readyz), on libmicrohttpd driven by the
 * service's libuv loop — no thread of its own. MHD runs in epoll mode; its epoll descriptor is watched with a
 * uv_poll_t and its timeouts with a uv_timer_t, so requests are answered on the loop thread, between Kafka
 * events, and the handler may read the service's state without locks. GET and HEAD only; at most 64
 * connections, each closed after 10 s without progress, so a slow client cannot hold the service.
 */
#ifndef HS_HTTP_H
#define HS_HTTP_H

#include <uv.h>

#include "hs/err.h"

typedef struct hs_http hs_http;

/* What the handler answers. hs_http sets the defaults before calling it. */
typedef struct hs_http_response {
    int status;               /* HTTP status (100..599), default 200 */
    const char *content_type; /* default "text/plain; charset=utf-8"; a static string */
    char *body;               /* malloc'd by the handler, or NULL for an empty body; hs_http frees it */
} hs_http_response;

/* Called on the loop thread for every GET and HEAD request (for HEAD the body is measured, not sent).
 * `path` is the decoded URL path without the query ("/metrics"), valid during the call. Fill `out`; an
 * unknown path is the handler's to answer (404). */
typedef void (*hs_http_handler)(void *ctx, const char *path, hs_http_response *out);

/* Listens on `address` and answers requests with `handler` on `loop`:
 *   "127.0.0.1:9464", "[::1]:9464", "localhost:9464", or ":9464" for every interface (IPv6 and IPv4);
 *   port 0 takes any free port (see hs_http_port).
 * On success *out owns the server until hs_http_stop(). HS_ERR_CONFIG when `address` cannot be parsed or
 * resolved, HS_ERR_IO when it cannot be bound (the message names the address and the reason, e.g. "Address
 * already in use"), HS_ERR_NOMEM. On failure nothing is left to free or close. */
hs_err hs_http_start(uv_loop_t *loop, const char *address, hs_http_handler handler, void *ctx, hs_http **out,
                     hs_error *error);

/* The bound TCP port. */
int hs_http_port(const hs_http *http);

/* Stops answering at once: closes the loop handles and, once the loop has run their close callbacks, the
 * daemon, its connections and the listening socket, and frees `http`. The caller keeps running the loop
 * until it ends (as after any uv_close). Safe to call from the handler. NULL is allowed. */
void hs_http_stop(hs_http *http);

#endif
