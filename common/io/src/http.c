/* The HTTP endpoint (see hs/http.h): libmicrohttpd in "external epoll" mode, driven by a private libuv loop
 * on a thread of its own. MHD keeps its sockets in an epoll set of its own and does its work only inside
 * MHD_run(); we watch that epoll descriptor with a uv_poll_t and call MHD_run(), and after every run re-arm a
 * uv_timer_t from MHD_get_timeout() (idle timeouts, and work MHD left pending on sockets it watches
 * edge-triggered: see schedule()).
 *
 * We accept connections ourselves and hand them to MHD (MHD_add_connection), rather than give MHD the
 * listening socket, for two reasons. MHD 0.9.75 takes its listening socket out of its epoll set when it
 * reaches its connection limit and puts it back only at the start of a later MHD_run(); when the
 * connections then close in one run, nothing is left to wake the caller for that later run (no socket in the
 * set, no timeout), and the endpoint never accepts again — the listen queue fills, the clients' sockets sit
 * in CLOSE-WAIT. And a server that stops accepting at its limit lets idle or slowloris clients that fill the
 * limit starve the probes. So at the limit a newcomer evicts the oldest connection that has not completed a
 * request (see admit()), and a sweep drops every connection slower than the exchange deadline: the listen
 * queue is drained at once, whatever the clients do.
 *
 * Security (docs/security.md): HS_HTTP_TOKEN_FILE (or HS_HTTP_TOKEN) makes every path but the probes
 * (/healthz, /readyz: a kubelet sends no token) answer 401 unless the request carries "Authorization: Bearer
 * <token>"; HS_HTTP_TLS_CERT_FILE and HS_HTTP_TLS_KEY_FILE serve HTTPS (MHD's GnuTLS, which also does the
 * handshake of the connections we hand it). Without a token, an endpoint bound beyond loopback is warned of.
 */
#include "hs/http.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "hs/config.h"
#include "hs/log.h"
#include "hs/metrics.h"

#define HTTP_LISTEN_BACKLOG   128
#define HTTP_ACCEPT_BATCH     16  /* connections accepted per wake-up before MHD gets a turn */
#define HTTP_SWEEP_MS         250 /* how often the exchange deadline is checked, and a paused accept resumed */
#define HTTP_DEFAULT_TYPE     "text/plain; charset=utf-8"
#define HTTP_ALLOWED_METHODS  "GET, HEAD"
#define HTTP_NOT_ALLOWED_TEXT "method not allowed\n"
#define HTTP_UNAUTHORIZED_TEXT                                                                               \
    "unauthorized: this endpoint needs its bearer token (Authorization: Bearer ...)\n"
#define HTTP_AUTHENTICATE    "Bearer realm=\"healthsignals\""
#define HTTP_TOKEN_MIN_BYTES 16
#define HTTP_FILE_MAX_BYTES  ((size_t)256 * 1024) /* a PEM certificate chain fits */

/* One connection MHD holds, in the order its current exchange began (oldest first). */
typedef struct client client;
struct client {
    client *prev, *next;
    int fd;
    uint64_t exchange_start_ms; /* accept, or the end of the previous response (uv_now of the HTTP loop) */
    bool answering;             /* request complete, response under way: not evicted (the deadline holds) */
    bool dropped;               /* shut down by us; MHD closes it at its next run */
};

struct hs_http {
    uv_loop_t loop; /* the HTTP thread's own */
    uv_thread_t thread;
    uv_poll_t listen_poll;  /* the listening socket */
    uv_poll_t mhd_poll;     /* MHD's epoll descriptor */
    uv_timer_t mhd_timer;   /* MHD_get_timeout() */
    uv_timer_t sweep_timer; /* the exchange deadline; also resumes accepting after EMFILE */
    uv_async_t stop_async;  /* hs_http_stop() */
    struct MHD_Daemon *daemon;
    int listen_fd;
    hs_http_handler handler;
    void *ctx;
    hs_http_limits limits;
    int port;
    client *oldest, *newest; /* every connection MHD holds */
    unsigned held;           /* connections MHD holds, dropped ones included */
    unsigned live;           /* of those, not dropped: what max_connections bounds */
    bool accept_paused;
    bool stopping;
    char *token;    /* the bearer token every path but the probes needs, or NULL */
    char *tls_cert; /* PEM, or NULL: plain HTTP */
    char *tls_key;  /* PEM; wiped and freed at stop */
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

/* --- Connections -----------------------------------------------------------------------------------------
 */

static void client_unlink(hs_http *http, client *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        http->oldest = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        http->newest = c->prev;
    c->prev = c->next = NULL;
}

static void client_append(hs_http *http, client *c)
{
    c->prev = http->newest;
    c->next = NULL;
    if (http->newest)
        http->newest->next = c;
    else
        http->oldest = c;
    http->newest = c;
}

/* Disconnects `c` without closing its descriptor, which stays MHD's: the socket reads end-of-file, and MHD
 * closes the connection at its next run (the shutdown wakes its epoll set). */
static void client_drop(hs_http *http, client *c)
{
    if (c->dropped)
        return;
    c->dropped = true;
    http->live--;
    shutdown(c->fd, SHUT_RDWR);
}

/* MHD_OPTION_NOTIFY_CONNECTION: a connection starts or ends. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    hs_http *http = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        client *c = calloc(1, sizeof *c);
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!c || !info) {
            /* Untracked, it would escape the deadline: refuse it. MHD closes it after the shutdown. */
            free(c);
            if (info)
                shutdown(info->connect_fd, SHUT_RDWR);
            return;
        }
        c->fd = info->connect_fd;
        c->exchange_start_ms = uv_now(&http->loop);
        client_append(http, c);
        http->held++;
        http->live++;
        *socket_context = c;
        return;
    }
    client *c = *socket_context;
    if (!c)
        return;
    if (!c->dropped)
        http->live--;
    http->held--;
    client_unlink(http, c);
    free(c);
    *socket_context = NULL;
}

static client *client_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

/* MHD_OPTION_NOTIFY_COMPLETED: a request has been answered (or abandoned); on keep-alive the next exchange
 * begins, with a deadline of its own. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode code)
{
    hs_http *http = cls;
    client *c = client_of(conn);
    if (!c)
        return;
    c->answering = false;
    c->exchange_start_ms = uv_now(&http->loop);
    client_unlink(http, c);
    client_append(http, c);
}

/* Makes room for one more connection: at the limit, the oldest connection still waiting for (the rest of) a
 * request is dropped — an idle keep-alive, a client that connected and said nothing, a slowloris. Those
 * being answered are left alone; when every connection is, the newcomer is refused. Dropped connections
 * still count against MHD's own limit (twice ours) until it has closed them. */
static bool admit(hs_http *http)
{
    if (http->held >= 2 * http->limits.max_connections)
        return false;
    if (http->live < http->limits.max_connections)
        return true;
    for (client *c = http->oldest; c; c = c->next)
        if (!c->dropped && !c->answering) {
            client_drop(http, c);
            return true;
        }
    return false;
}

/* Drops every connection whose exchange has taken longer than the deadline. */
static void sweep(hs_http *http)
{
    uint64_t now = uv_now(&http->loop);
    uint64_t limit_ms = (uint64_t)http->limits.exchange_seconds * 1000u;
    for (client *c = http->oldest; c && now - c->exchange_start_ms >= limit_ms; c = c->next)
        client_drop(http, c);
}

/* --- Requests ------------------------------------------------------------------------------------------ */

/* Queues one complete response. `body` (malloc'd, or NULL) is owned from here on; `header` (may be NULL) is
 * one more response header with `header_value`. */
static enum MHD_Result reply(struct MHD_Connection *conn, int status, const char *content_type, char *body,
                             const char *header, const char *header_value)
{
    struct MHD_Response *response =
        body ? MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!response) {
        free(body);
        return MHD_NO; /* out of memory: MHD closes the connection */
    }
    enum MHD_Result ok = MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (ok == MHD_YES && header)
        ok = MHD_add_response_header(response, header, header_value);
    if (ok == MHD_YES)
        ok = MHD_queue_response(conn, (unsigned int)status, response);
    MHD_destroy_response(response); /* MHD keeps its own reference while sending */
    return ok;
}

/* Whether `conn` may have `path`: the probes always, anything else with "Authorization: Bearer <token>",
 * compared in time independent of where it differs. */
static bool authorized(const hs_http *http, struct MHD_Connection *conn, const char *path)
{
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0)
        return true;
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    static const char scheme[] = "Bearer ";
    if (!given || strncasecmp(given, scheme, sizeof scheme - 1) != 0)
        return false;
    given += sizeof scheme - 1;
    size_t want_len = strlen(http->token), given_len = strlen(given);
    unsigned char diff = want_len != given_len;
    for (size_t i = 0; i < want_len; i++)
        diff |= (unsigned char)(http->token[i] ^ (i < given_len ? given[i] : 0));
    return diff == 0;
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
    client *c = client_of(conn);
    if (c)
        c->answering = true; /* the headers are in: the request is no slowloris, whatever comes next */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, HTTP_DEFAULT_TYPE, strdup(HTTP_NOT_ALLOWED_TEXT),
                     MHD_HTTP_HEADER_ALLOW, HTTP_ALLOWED_METHODS);
    if (!*req_cls) {
        *req_cls = http; /* a marker, not owned: "headers seen" */
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* a body on a GET means nothing: read and dropped */
        return MHD_YES;
    }

    if (http->token && !authorized(http, conn, url))
        return reply(conn, MHD_HTTP_UNAUTHORIZED, HTTP_DEFAULT_TYPE, strdup(HTTP_UNAUTHORIZED_TEXT),
                     MHD_HTTP_HEADER_WWW_AUTHENTICATE, HTTP_AUTHENTICATE);

    hs_http_response out = {.status = MHD_HTTP_OK, .content_type = HTTP_DEFAULT_TYPE, .body = NULL};
    http->handler(http->ctx, url, &out);
    assert(out.status >= 100 && out.status <= 599 && out.content_type);
    if (out.status < 100 || out.status > 599)
        out.status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    return reply(conn, out.status, out.content_type ? out.content_type : HTTP_DEFAULT_TYPE, out.body, NULL,
                 NULL);
}

/* MHD's messages are nearly all about one client ("closed by remote side with incomplete request"): at debug
 * level, so that a burst of connections cannot flood the service's log. A server that cannot start says so
 * through hs_http_start()'s error. */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char text[512];
    vsnprintf(text, sizeof text, fmt, ap);
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    hs_log(HS_LOG_DEBUG, "HTTP server", "{s:s}", "detail", text);
}

/* --- The HTTP thread's loop ------------------------------------------------------------------------------
 */

static void on_mhd_timer(uv_timer_t *timer);

/* Re-arms the timer for MHD's next deadline. MHD_get_timeout() answers 0 when MHD has work left that the
 * epoll descriptor will not signal again: sockets are in MHD's set edge-triggered, so data MHD did not
 * finish with in one run (a new connection, a request read but not yet answered, a response still being
 * written) shows up only on MHD's own ready list. Otherwise it is the nearest connection timeout, or none. */
static void schedule(hs_http *http)
{
    MHD_UNSIGNED_LONG_LONG timeout_ms;
    if (MHD_get_timeout(http->daemon, &timeout_ms) == MHD_YES)
        uv_timer_start(&http->mhd_timer, on_mhd_timer, (uint64_t)timeout_ms, 0);
    else
        uv_timer_stop(&http->mhd_timer);
}

static void run(hs_http *http)
{
    if (http->stopping)
        return;
    MHD_run(http->daemon);
    schedule(http);
}

static void on_mhd_poll(uv_poll_t *handle, int status, int events)
{
    if (status < 0)
        hs_log(HS_LOG_WARN, "HTTP server: polling failed", "{s:s}", "error", uv_strerror(status));
    run(handle->data);
}

static void on_mhd_timer(uv_timer_t *timer)
{
    run(timer->data);
}

static void on_listen(uv_poll_t *handle, int status, int events);

/* accept() ran out of descriptors (or memory): the pending connection stays in the listen queue and the
 * socket stays readable, so stop watching it for a moment rather than spin; the sweep resumes. */
static void pause_accepting(hs_http *http, int err)
{
    if (http->accept_paused)
        return;
    http->accept_paused = true;
    uv_poll_stop(&http->listen_poll);
    hs_log(HS_LOG_WARN, "HTTP server: cannot accept a connection", "{s:s}", "error", strerror(err));
}

static void on_listen(uv_poll_t *handle, int status, int events)
{
    hs_http *http = handle->data;
    for (int n = 0; n < HTTP_ACCEPT_BATCH && !http->stopping; n++) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        int fd = accept(http->listen_fd, (struct sockaddr *)&peer, &peer_len);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                pause_accepting(http, errno);
            break; /* EAGAIN: the queue is empty; anything else concerned that one connection */
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC); /* MHD makes it non-blocking */
        if (!admit(http)) {
            close(fd); /* every connection is being answered: refused at once, not queued */
            continue;
        }
        /* MHD closes `fd` itself when it cannot take it. */
        MHD_add_connection(http->daemon, fd, (const struct sockaddr *)&peer, peer_len);
    }
    run(http); /* the new connections, and the dropped ones to close */
}

static void on_sweep(uv_timer_t *timer)
{
    hs_http *http = timer->data;
    sweep(http);
    if (http->accept_paused) {
        http->accept_paused = false;
        uv_poll_start(&http->listen_poll, UV_READABLE, on_listen);
    }
    run(http);
}

static void on_stop(uv_async_t *async)
{
    hs_http *http = async->data;
    http->stopping = true;
    uv_close((uv_handle_t *)&http->listen_poll, NULL);
    uv_close((uv_handle_t *)&http->mhd_poll, NULL);
    uv_close((uv_handle_t *)&http->mhd_timer, NULL);
    uv_close((uv_handle_t *)&http->sweep_timer, NULL);
    uv_close((uv_handle_t *)&http->stop_async, NULL);
}

static void thread_main(void *arg)
{
    hs_http *http = arg;
    uv_run(&http->loop, UV_RUN_DEFAULT);
    /* Out of the loop's epoll set now: MHD may close its descriptors and every connection. */
    MHD_stop_daemon(http->daemon);
    http->daemon = NULL;
}

/* --- Start and stop --------------------------------------------------------------------------------------
 */

static bool valid_limits(const hs_http_limits *limits)
{
    return limits->max_connections >= 1 && limits->max_connections <= 65536 &&
           limits->exchange_seconds >= 1 && limits->max_request_bytes >= 4096;
}

/* The loop and its handles, before the thread starts (so nothing here races with it). */
static int init_loop(hs_http *http)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info)
        return UV_ENOTSUP;
    int rc = uv_loop_init(&http->loop);
    if (rc != 0)
        return rc;
    uv_poll_init(&http->loop, &http->listen_poll, http->listen_fd);
    uv_poll_init(&http->loop, &http->mhd_poll, info->epoll_fd);
    uv_timer_init(&http->loop, &http->mhd_timer);
    uv_timer_init(&http->loop, &http->sweep_timer);
    uv_async_init(&http->loop, &http->stop_async, on_stop);
    http->listen_poll.data = http->mhd_poll.data = http->mhd_timer.data = http->sweep_timer.data =
        http->stop_async.data = http;
    uv_poll_start(&http->listen_poll, UV_READABLE, on_listen);
    uv_poll_start(&http->mhd_poll, UV_READABLE, on_mhd_poll);
    uv_timer_start(&http->sweep_timer, on_sweep, HTTP_SWEEP_MS, HTTP_SWEEP_MS);
    return 0;
}

/* Undoes init_loop() when the thread could not start. */
static void close_loop(hs_http *http)
{
    on_stop(&http->stop_async);
    uv_run(&http->loop, UV_RUN_DEFAULT);
    uv_loop_close(&http->loop);
}

static void free_security(hs_http *http)
{
    if (http->token)
        hs_secret_wipe(http->token, strlen(http->token));
    if (http->tls_key)
        hs_secret_wipe(http->tls_key, strlen(http->tls_key));
    free(http->token);
    free(http->tls_cert);
    free(http->tls_key);
    http->token = http->tls_cert = http->tls_key = NULL;
}

static const char *nonempty_env(const char *name)
{
    const char *value = getenv(name);
    return value && *value ? value : NULL;
}

/* The token and TLS files of the environment (see the top of this file). */
static hs_err load_security(hs_http *http, hs_error *error)
{
    const char *token = nonempty_env("HS_HTTP_TOKEN"), *token_file = nonempty_env("HS_HTTP_TOKEN_FILE");
    if (token && token_file)
        return hs_error_set(error, HS_ERR_CONFIG,
                            "both HS_HTTP_TOKEN and HS_HTTP_TOKEN_FILE are set: set one");
    hs_err err = HS_OK;
    if (token_file)
        err = hs_config_read_file("HS_HTTP_TOKEN_FILE", token_file, 4096, &http->token, error);
    else if (token && !(http->token = strdup(token)))
        err = hs_error_set(error, HS_ERR_NOMEM, "HTTP server: out of memory");
    if (err == HS_OK && http->token) {
        const char *from = token_file ? "HS_HTTP_TOKEN_FILE" : "HS_HTTP_TOKEN";
        size_t len = strlen(http->token);
        for (size_t i = 0; i < len && err == HS_OK; i++)
            if (http->token[i] <= ' ' || http->token[i] > '~')
                err = hs_error_set(error, HS_ERR_CONFIG,
                                   "%s: the token must be printable ASCII without spaces", from);
        if (err == HS_OK && len < HTTP_TOKEN_MIN_BYTES)
            err = hs_error_set(error, HS_ERR_CONFIG,
                               "%s: the token has %zu characters, too few to be a secret (at least %d; e.g. "
                               "openssl rand -hex 32)",
                               from, len, HTTP_TOKEN_MIN_BYTES);
    }
    const char *cert = nonempty_env("HS_HTTP_TLS_CERT_FILE"), *key = nonempty_env("HS_HTTP_TLS_KEY_FILE");
    if (err == HS_OK && (!cert != !key))
        err = hs_error_set(error, HS_ERR_CONFIG,
                           "HTTPS needs both HS_HTTP_TLS_CERT_FILE and "
                           "HS_HTTP_TLS_KEY_FILE (%s is not set)",
                           cert ? "HS_HTTP_TLS_KEY_FILE" : "HS_HTTP_TLS_CERT_FILE");
    if (err == HS_OK && cert) {
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS))
            err = hs_error_set(error, HS_ERR_CONFIG,
                               "HS_HTTP_TLS_CERT_FILE: this libmicrohttpd was built without TLS");
        if (err == HS_OK)
            err = hs_config_read_file("HS_HTTP_TLS_CERT_FILE", cert, HTTP_FILE_MAX_BYTES, &http->tls_cert,
                                      error);
        if (err == HS_OK)
            err =
                hs_config_read_file("HS_HTTP_TLS_KEY_FILE", key, HTTP_FILE_MAX_BYTES, &http->tls_key, error);
    }
    if (err != HS_OK)
        free_security(http);
    return err;
}

/* Whether the listening socket `fd` is bound to a loopback address only. */
static bool bound_to_loopback(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return false;
    if (ss.ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)&ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

hs_err hs_http_start(const char *address, const hs_http_limits *limits, hs_http_handler handler, void *ctx,
                     hs_http **out, hs_error *error)
{
    assert(address && handler && out);
    *out = NULL;
    hs_http_limits chosen = limits ? *limits : HS_HTTP_LIMITS_DEFAULT;
    if (!valid_limits(&chosen))
        return hs_error_set(error, HS_ERR_CONFIG,
                            "HTTP server: limits out of range (connections 1..65536, exchange >= 1 s, "
                            "request >= 4096 bytes)");
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
    http->limits = chosen;
    http->listen_fd = fd;
    http->port = bound_port(fd);
    err = load_security(http, error);
    if (err != HS_OK) {
        close(fd);
        free(http);
        return err;
    }
    bool loopback = bound_to_loopback(fd);
    hs_log(HS_LOG_INFO, "http endpoint security", "{s:b, s:b, s:b}", "tls", http->tls_cert != NULL, "token",
           http->token != NULL, "loopback", loopback);
    if (!loopback && !http->token)
        hs_log(HS_LOG_WARN,
               "the HTTP endpoint is reachable beyond loopback and /metrics needs no token: set "
               "HS_HTTP_TOKEN_FILE (and HS_HTTP_TLS_CERT_FILE, HS_HTTP_TLS_KEY_FILE; docs/security.md)",
               "{s:s}", "address", address);
    struct MHD_OptionItem tls_options[] = {
        {MHD_OPTION_HTTPS_MEM_KEY, 0, http->tls_key},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, http->tls_cert},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_OptionItem no_options[] = {{MHD_OPTION_END, 0, NULL}};

    /* No MHD_USE_INTERNAL_POLLING_THREAD: MHD does its work in MHD_run(), on our thread. No listening
     * socket either: we accept (see the top of this file). MHD's limit is twice ours, for the connections
     * dropped but not yet closed. The logger goes first so that start-up messages reach it too. */
    http->daemon = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET | (http->tls_cert ? MHD_USE_TLS : 0), 0,
        NULL, NULL, on_request, http, MHD_OPTION_ARRAY, http->tls_cert ? tls_options : no_options,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_CONNECTION_LIMIT, 2 * chosen.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, chosen.exchange_seconds, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        chosen.max_request_bytes, MHD_OPTION_NOTIFY_CONNECTION, on_connection, http,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, http, MHD_OPTION_END);
    if (!http->daemon) {
        close(fd);
        bool tls = http->tls_cert != NULL;
        free_security(http);
        free(http);
        return hs_error_set(error, tls ? HS_ERR_CONFIG : HS_ERR_IO,
                            tls ? "cannot start the HTTPS server on %s: is HS_HTTP_TLS_KEY_FILE the key of "
                                  "HS_HTTP_TLS_CERT_FILE, both PEM? (see the log at debug level)"
                                : "cannot start the HTTP server on %s (see the log)",
                            address);
    }
    int rc = init_loop(http);
    if (rc == 0) {
        rc = uv_thread_create(&http->thread, thread_main, http);
        if (rc != 0)
            close_loop(http);
    }
    if (rc != 0) {
        MHD_stop_daemon(http->daemon);
        close(fd);
        free_security(http);
        free(http);
        return hs_error_set(error, HS_ERR_IO, "cannot run the HTTP server of %s: %s", address,
                            uv_strerror(rc));
    }
    *out = http;
    return HS_OK;
}

int hs_http_port(const hs_http *http)
{
    return http->port;
}

void hs_http_stop(hs_http *http)
{
    if (!http)
        return;
#ifndef NDEBUG
    uv_thread_t self = uv_thread_self();
    assert(!uv_thread_equal(&self, &http->thread)); /* not from the handler */
#endif
    uv_async_send(&http->stop_async);
    uv_thread_join(&http->thread);
    uv_loop_close(&http->loop);
    close(http->listen_fd);
    free_security(http);
    free(http);
}

void hs_http_serve_probes(const char *path, hs_metrics *metrics, const char *not_ready, hs_http_response *out)
{
    if (strcmp(path, "/metrics") == 0) {
        out->content_type = HS_METRICS_CONTENT_TYPE;
        out->body = hs_metrics_render(metrics);
    } else if (strcmp(path, "/healthz") == 0) {
        out->body = strdup("ok\n");
    } else if (strcmp(path, "/readyz") == 0) {
        char body[256];
        snprintf(body, sizeof body, "%s%s\n", not_ready ? "not ready: " : "",
                 not_ready ? not_ready : "ready");
        out->status = not_ready ? 503 : 200;
        out->body = strdup(body);
    } else {
        out->status = 404;
        out->body = strdup("not found: try /metrics, /healthz or /readyz\n");
    }
}
