/* hs_http: the service's HTTP endpoint (/metrics, /healthz, /readyz), on libmicrohttpd in a thread of its
 * own, so that the probes answer whatever the service's loop is doing (blocked on Kafka for 30 s, starting
 * up, stopping). The thread runs a private libuv loop: it accepts connections itself and hands them to MHD,
 * which runs in epoll mode on that loop. GET and HEAD only. Bounded whatever the clients do: at most
 * `max_connections` at a time (a newcomer beyond that evicts the oldest connection that has not completed a
 * request, or is closed at once if every one is being answered), each request must arrive and its response
 * go out within `exchange_seconds`, and the request line and headers must fit in `max_request_bytes` (else
 * 431). The handler therefore runs on the HTTP thread, never on the caller's: whatever it reads must be
 * thread-safe (the runtime publishes readiness and metrics for it, see runtime.c).
 */
#ifndef HS_HTTP_H
#define HS_HTTP_H

#include <stddef.h>

#include "hs/err.h"

typedef struct hs_http hs_http;

/* What the handler answers. hs_http sets the defaults before calling it. */
typedef struct hs_http_response {
    int status;               /* HTTP status (100..599), default 200 */
    const char *content_type; /* default "text/plain; charset=utf-8"; a static string */
    char *body;               /* malloc'd by the handler, or NULL for an empty body; hs_http frees it */
} hs_http_response;

/* Called on the HTTP thread for every GET and HEAD request (for HEAD the body is measured, not sent), one
 * request at a time: a handler that takes long delays every other client, so it should answer within a
 * second or so. `path` is the decoded URL path without the query ("/metrics"), valid during the call. Fill
 * `out`; an unknown path is the handler's to answer (404). */
typedef void (*hs_http_handler)(void *ctx, const char *path, hs_http_response *out);

/* The answers of a process whose endpoint serves only /metrics and the probes (the exporter, a sink): for its
 * handler. /metrics renders `metrics`; /healthz "ok"; /readyz 200 "ready" when `not_ready` is NULL, else 503
 * "not ready: <not_ready>"; any other path 404 naming these. The runtime's services answer /readyz with more
 * (hs/health.h). */
struct hs_metrics;
void hs_http_serve_probes(const char *path, struct hs_metrics *metrics, const char *not_ready,
                          hs_http_response *out);

/* The server's bounds; hs_http_start() takes NULL for the defaults (HS_HTTP_LIMITS_DEFAULT). */
typedef struct hs_http_limits {
    unsigned max_connections;  /* open at a time (>= 1) */
    unsigned exchange_seconds; /* from accept (or the end of the previous response) to the end of the next
                                  response: a client slower than this is disconnected (>= 1) */
    size_t max_request_bytes;  /* MHD's memory per connection, which holds the request line and headers:
                                  a request that does not fit gets 431 (>= 4096) */
} hs_http_limits;

#define HS_HTTP_LIMITS_DEFAULT                                                                               \
    ((hs_http_limits){.max_connections = 64, .exchange_seconds = 10, .max_request_bytes = 16384})

/* Listens on `address` and answers requests with `handler` from a thread of its own:
 *   "127.0.0.1:9464", "[::1]:9464", "localhost:9464", or ":9464" for every interface (IPv6 and IPv4);
 *   port 0 takes any free port (see hs_http_port).
 * `limits` NULL means HS_HTTP_LIMITS_DEFAULT. On success *out owns the server (and its thread) until
 * hs_http_stop(). HS_ERR_CONFIG when `address` cannot be parsed or resolved or `limits` are out of the
 * ranges above, HS_ERR_IO when it cannot be bound (the message names the address and the reason, e.g.
 * "Address already in use") or the thread cannot start, HS_ERR_NOMEM. On failure nothing is left to free or
 * close. */
hs_err hs_http_start(const char *address, const hs_http_limits *limits, hs_http_handler handler, void *ctx,
                     hs_http **out, hs_error *error);

/* The bound TCP port. */
int hs_http_port(const hs_http *http);

/* Stops answering and returns once the thread has ended: every connection and the listening socket are
 * closed and `http` is freed; the handler is not called any more. Not from the handler (the thread would
 * wait for itself). NULL is allowed. */
void hs_http_stop(hs_http *http);

#endif
