/* The HTTP endpoint on libmicrohttpd, driven by the libuv loop (see hs/http.h). MHD runs in "external epoll"
 * mode: it keeps its sockets in an epoll set of its own and does its work only inside MHD_run(). We watch
 * that epoll descriptor with a uv_poll_t (readable = something is ready inside) and call MHD_run(); after
 * every run a uv_timer_t is re-armed from MHD_get_timeout(), which covers idle-connection timeouts and the
 * work MHD has left pending on sockets it watches edge-triggered (see schedule()). We bind the listening
 * socket ourselves, so that a failure can name the address and errno, and hand it to MHD.
 */
#include "hs/http.h"

#include <assert.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hs/log.h"

#define HTTP_MAX_CONNECTIONS  64u
#define HTTP_TIMEOUT_SECONDS  10u
#define HTTP_LISTEN_BACKLOG   64
#define HTTP_DEFAULT_TYPE     "text/plain; charset=utf-8"
#define HTTP_ALLOWED_METHODS  "GET, HEAD"
#define HTTP_NOT_ALLOWED_TEXT "method not allowed\n"

struct hs_http {
    uv_poll_t poll;   /* MHD's epoll descriptor */
    uv_timer_t timer; /* MHD_get_timeout() */
    struct MHD_Daemon *daemon;
    hs_http_handler handler;
    void *ctx;
    int port;
    int open_handles; /* of poll and timer, not yet through their close callback */
    bool stopping;
};

/* --- The address --------------------------------------------------------------------------------------- */

/* Splits "host:port", "[v6]:port" or ":port" into `host` ("" for every interface) and `port`. */
static hs_err split_address(const char *address, char *host, size_t host_size, char *port, size_t port_size,
                            hs_error *error)
{
    const char *colon;
    const char *host_start = address;
    size_t host_len;
    if (address[0] == '[') {
        const char *bracket = strchr(address, ']');
        if (!bracket || bracket[1] != ':')
            return hs_error_set(error, HS_ERR_CONFIG, "HTTP address '%s': expected [IPv6]:port", address);
        host_start = address + 1;
        host_len = (size_t)(bracket - host_start);
        colon = bracket + 1;
    } else {
        colon = strrchr(address, ':');
        if (!colon)
            return hs_error_set(error, HS_ERR_CONFIG, "HTTP address '%s': expected host:port", address);
        host_len = (size_t)(colon - address);
        if (memchr(address, ':', host_len))
            return hs_error_set(error, HS_ERR_CONFIG,
                                "HTTP address '%s': an IPv6 address goes in brackets, as in [::1]:9464",
                                address);
    }
    const char *digits = colon + 1;
    size_t digits_len = strspn(digits, "0123456789");
    long value = digits_len > 0 && digits_len <= 5 ? strtol(digits, NULL, 10) : -1;
    if (digits[digits_len] != '\0' || value < 0 || value > 65535)
        return hs_error_set(error, HS_ERR_CONFIG, "HTTP address '%s': the port must be a number 0..65535",
                            address);
    if (host_len >= host_size)
        return hs_error_set(error, HS_ERR_CONFIG, "HTTP address '%s': host name too long", address);
    memcpy(host, host_start, host_len);
    host[host_len] = '\0';
    snprintf(port, port_size, "%ld", value);
    return HS_OK;
}

/* A listening, non-blocking socket bound to `sa`, or -1 with errno set. */
static int listen_on(const struct sockaddr *sa, socklen_t sa_len, bool dual_stack)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int on = 1, off = 0;
    /* SO_REUSEADDR lets a restarted service bind while old connections sit in TIME_WAIT; on Linux it does
     * not let two sockets listen on one port. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        (dual_stack && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) ||
        bind(fd, sa, sa_len) != 0 || listen(fd, HTTP_LISTEN_BACKLOG) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* Binds `address`: *fd_out receives the listening socket. */
static hs_err bind_address(const char *address, int *fd_out, hs_error *error)
{
    char host[256] = "", port[8] = "";
    hs_err err = split_address(address, host, sizeof host, port, sizeof port, error);
    if (err != HS_OK)
        return err;

    int fd;
    if (host[0] == '\0') {
        /* Every interface: one IPv6 socket that takes IPv4 too, or IPv4 alone where there is no IPv6. */
        struct sockaddr_in6 any6 = {.sin6_family = AF_INET6, .sin6_addr = in6addr_any};
        struct sockaddr_in any4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
        any6.sin6_port = any4.sin_port = htons((uint16_t)strtol(port, NULL, 10));
        fd = listen_on((const struct sockaddr *)&any6, sizeof any6, true);
        if (fd < 0 && errno == EAFNOSUPPORT)
            fd = listen_on((const struct sockaddr *)&any4, sizeof any4, false);
    } else {
        struct addrinfo hints = {
            .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
        struct addrinfo *found = NULL;
        int rc = getaddrinfo(host, port, &hints, &found);
        if (rc != 0)
            return hs_error_set(error, HS_ERR_CONFIG, "HTTP address '%s': %s", address, gai_strerror(rc));
        /* The first address that can be bound ("localhost" may give ::1 and 127.0.0.1). */
        fd = -1;
        errno = EADDRNOTAVAIL;
        for (const struct addrinfo *ai = found; ai && fd < 0; ai = ai->ai_next)
            fd = listen_on(ai->ai_addr, ai->ai_addrlen, false);
        int saved = errno;
        freeaddrinfo(found);
        errno = saved;
    }
    if (fd < 0)
        return hs_error_set(error, HS_ERR_IO, "cannot listen for HTTP on %s: %s", address, strerror(errno));
    *fd_out = fd;
    return HS_OK;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)&ss)->sin_port);
}

/* --- Requests ------------------------------------------------------------------------------------------ */

/* Queues one complete response. `body` (malloc'd, or NULL) is owned from here on. */
static enum MHD_Result reply(struct MHD_Connection *conn, int status, const char *content_type, char *body,
                             const char *allow)
{
    struct MHD_Response *response =
        body ? MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!response) {
        free(body);
        return MHD_NO; /* out of memory: MHD closes the connection */
    }
    enum MHD_Result ok = MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (ok == MHD_YES && allow)
        ok = MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow);
    if (ok == MHD_YES)
        ok = MHD_queue_response(conn, (unsigned int)status, response);
    MHD_destroy_response(response); /* MHD keeps its own reference while sending */
    return ok;
}

/* MHD's access handler, called several times per request. Other methods are refused on the first call, from
 * the headers alone (MHD then closes the connection rather than read a body we do not want). GET and HEAD are
 * answered on the second call, once MHD has the whole request: a response queued earlier makes MHD close the
 * connection after it, and Prometheus scrapes over keep-alive. (MHD 0.9.75 refuses a response queued while
 * a body is still arriving, so a body sent with a GET is read and dropped, then the GET answered.) */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    hs_http *http = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, HTTP_DEFAULT_TYPE, strdup(HTTP_NOT_ALLOWED_TEXT),
                     HTTP_ALLOWED_METHODS);
    if (!*req_cls) {
        *req_cls = http; /* a marker, not owned: "headers seen" */
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* a body on a GET means nothing: read and dropped */
        return MHD_YES;
    }

    hs_http_response out = {.status = MHD_HTTP_OK, .content_type = HTTP_DEFAULT_TYPE, .body = NULL};
    http->handler(http->ctx, url, &out);
    assert(out.status >= 100 && out.status <= 599 && out.content_type);
    if (out.status < 100 || out.status > 599)
        out.status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    return reply(conn, out.status, out.content_type ? out.content_type : HTTP_DEFAULT_TYPE, out.body, NULL);
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char text[512];
    vsnprintf(text, sizeof text, fmt, ap);
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    hs_log(HS_LOG_WARN, "HTTP server", "{s:s}", "detail", text);
}

/* --- The loop ------------------------------------------------------------------------------------------ */

static void on_timer(uv_timer_t *timer);

/* Re-arms the timer for MHD's next deadline. MHD_get_timeout() answers 0 when MHD has work left that the
 * epoll descriptor will not signal again: sockets are in MHD's set edge-triggered, so data MHD did not
 * finish with in one run (a new connection, a request read but not yet answered, a response still being
 * written) shows up only on MHD's own ready list. Otherwise it is the nearest connection timeout, or none. */
static void schedule(hs_http *http)
{
    if (http->stopping)
        return;
    MHD_UNSIGNED_LONG_LONG timeout_ms;
    if (MHD_get_timeout(http->daemon, &timeout_ms) == MHD_YES)
        uv_timer_start(&http->timer, on_timer, (uint64_t)timeout_ms, 0);
    else
        uv_timer_stop(&http->timer);
}

static void run(hs_http *http)
{
    if (http->stopping)
        return;
    MHD_run(http->daemon);
    schedule(http);
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
    if (status < 0)
        hs_log(HS_LOG_WARN, "HTTP server: polling failed", "{s:s}", "error", uv_strerror(status));
    run(handle->data);
}

static void on_timer(uv_timer_t *timer)
{
    run(timer->data);
}

static void on_closed(uv_handle_t *handle)
{
    hs_http *http = handle->data;
    if (--http->open_handles > 0)
        return;
    /* Out of the loop's epoll set now: MHD may close its descriptors (listening socket included). */
    MHD_stop_daemon(http->daemon);
    free(http);
}

hs_err hs_http_start(uv_loop_t *loop, const char *address, hs_http_handler handler, void *ctx, hs_http **out,
                     hs_error *error)
{
    assert(loop && address && handler && out);
    *out = NULL;
    int fd = -1;
    hs_err err = bind_address(address, &fd, error);
    if (err != HS_OK)
        return err;

    hs_http *http = calloc(1, sizeof *http);
    if (!http) {
        close(fd);
        return hs_error_set(error, HS_ERR_NOMEM, "HTTP server: out of memory");
    }
    http->handler = handler;
    http->ctx = ctx;
    http->port = bound_port(fd);

    /* No MHD_USE_INTERNAL_POLLING_THREAD: MHD does its work in MHD_run(), on this thread. The logger goes
     * first so that start-up messages reach it too. */
    http->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, http,
                                    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET,
                                    fd, MHD_OPTION_CONNECTION_LIMIT, HTTP_MAX_CONNECTIONS,
                                    MHD_OPTION_CONNECTION_TIMEOUT, HTTP_TIMEOUT_SECONDS, MHD_OPTION_END);
    if (!http->daemon) {
        /* Whether MHD has closed `fd` differs between its failure paths. Closing it again could close a
         * descriptor another thread (librdkafka's) has opened since, so a failed start may leak it instead;
         * it happens only when MHD lacks epoll or memory, and start-up failures end the process. */
        free(http);
        return hs_error_set(error, HS_ERR_IO, "cannot start the HTTP server on %s (see the log)", address);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    int rc = info ? uv_poll_init(loop, &http->poll, info->epoll_fd) : UV_ENOTSUP;
    if (rc != 0) {
        MHD_stop_daemon(http->daemon);
        free(http);
        return hs_error_set(error, HS_ERR_IO, "cannot watch the HTTP server of %s: %s", address,
                            uv_strerror(rc));
    }
    uv_timer_init(loop, &http->timer);
    http->poll.data = http->timer.data = http;
    http->open_handles = 2;
    rc = uv_poll_start(&http->poll, UV_READABLE, on_poll);
    if (rc != 0) {
        /* Not seen in practice (libuv answers 0 for a fresh handle); the handles exist now, so they close
         * the asynchronous way and free `http` on the loop's next run. */
        hs_http_stop(http);
        return hs_error_set(error, HS_ERR_IO, "cannot watch the HTTP server of %s: %s", address,
                            uv_strerror(rc));
    }
    schedule(http);
    *out = http;
    return HS_OK;
}

int hs_http_port(const hs_http *http)
{
    return http->port;
}

void hs_http_stop(hs_http *http)
{
    if (!http || http->stopping)
        return;
    http->stopping = true;
    uv_close((uv_handle_t *)&http->poll, on_closed);
    uv_close((uv_handle_t *)&http->timer, on_closed);
}
