/* hs_http serves /metrics, /healthz and /readyz from a thread of its own. Each test starts a real server on
 * loopback, speaks HTTP to it over sockets (a tiny blocking client below), then stops it. Beyond the basics:
 * the server stays reachable after bursts of idle connections and under a slowloris, drops clients slower
 * than its deadline, refuses oversized headers, and at its connection limit evicts the oldest idle
 * connection or refuses the newcomer at once. The figures the load tests measure are printed.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "hs/http.h"
#include "hs/metrics.h"

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define BIG_BYTES    (4u * 1024u * 1024u)

/* --- The server side: a handler like the runtime's ----------------------------------------------------- */

typedef struct served {
    int calls;
    char last_path[256];
} served;

static void handler(void *ctx, const char *path, hs_http_response *out)
{
    served *s = ctx;
    s->calls++;
    snprintf(s->last_path, sizeof s->last_path, "%s", path);
    if (strcmp(path, "/metrics") == 0) {
        out->content_type = METRICS_TYPE;
        out->body = strdup("hs_up 1\n");
    } else if (strcmp(path, "/healthz") == 0) {
        out->body = strdup("ok\n");
    } else if (strcmp(path, "/big") == 0) {
        out->body = malloc(BIG_BYTES + 1);
        for (size_t i = 0; i < BIG_BYTES; i++)
            out->body[i] = (char)('a' + i % 26);
        out->body[BIG_BYTES] = '\0';
    } else {
        out->status = 404;
        out->body = strdup("not found\n");
    }
}

/* --- The client side: blocking sockets, one request per connection unless told ------------------------- */

typedef struct reply {
    int status; /* 0: no reply */
    char content_type[128];
    char allow[64];
    long content_length; /* -1: no header */
    char *body;          /* malloc'd, NUL-terminated */
    size_t body_len;
} reply;

static void reply_free(reply *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* A connection to the server, or -1. Connecting gives up after 20 s (a server that does not accept leaves it
 * in the listen queue, or drops its SYNs, for minutes), and so does every read after it. */
static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int err = 0;
    socklen_t len = sizeof err;
    if ((rc != 0 && errno != EINPROGRESS) || (rc != 0 && poll(&p, 1, 20000) != 1) ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

static bool send_all(int fd, const char *text)
{
    size_t len = strlen(text);
    while (len > 0) {
        ssize_t n = send(fd, text, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        text += n;
        len -= (size_t)n;
    }
    return true;
}

/* The value of header `name` in the header block `head`, copied into `out` ("" when absent). */
static void header_value(const char *head, const char *name, char *out, size_t size)
{
    out[0] = '\0';
    size_t name_len = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *start = line + 2;
        if (strncasecmp(start, name, name_len) == 0 && start[name_len] == ':') {
            start += name_len + 1;
            while (*start == ' ')
                start++;
            size_t len = strcspn(start, "\r\n");
            snprintf(out, size, "%.*s", (int)(len < size ? len : size - 1), start);
            return;
        }
    }
}

/* Reads one response from `fd`: up to EOF, or, with `until_length`, only as far as Content-Length says (the
 * connection stays open). HEAD responses have no body whatever Content-Length says. */
static void read_reply(int fd, bool until_length, bool head_request, reply *r)
{
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    size_t cap = 1 << 16, len = 0;
    char *data = malloc(cap + 1);
    char *end_of_head = NULL;
    for (;;) {
        if (len == cap) {
            cap *= 2;
            data = realloc(data, cap + 1);
        }
        ssize_t n = recv(fd, data + len, cap - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        data[len] = '\0';
        if (!end_of_head)
            end_of_head = strstr(data, "\r\n\r\n");
        if (until_length && end_of_head) {
            char value[32];
            *end_of_head = '\0';
            header_value(data, "Content-Length", value, sizeof value);
            *end_of_head = '\r';
            size_t want = (size_t)(end_of_head - data) + 4 + (head_request ? 0 : strtoul(value, NULL, 10));
            if (len >= want)
                break;
        }
    }
    data[len] = '\0';
    end_of_head = strstr(data, "\r\n\r\n");
    if (strncmp(data, "HTTP/1.1 ", 9) != 0 || !end_of_head) {
        free(data);
        return;
    }
    *end_of_head = '\0';
    r->status = atoi(data + 9);
    header_value(data, "Content-Type", r->content_type, sizeof r->content_type);
    header_value(data, "Allow", r->allow, sizeof r->allow);
    char value[32];
    header_value(data, "Content-Length", value, sizeof value);
    if (value[0])
        r->content_length = strtol(value, NULL, 10);
    r->body_len = len - (size_t)(end_of_head + 4 - data);
    r->body = malloc(r->body_len + 1);
    memcpy(r->body, end_of_head + 4, r->body_len);
    r->body[r->body_len] = '\0';
    free(data);
}

/* One request on its own connection ("Connection: close"), read to EOF. */
static void request(int port, const char *method, const char *path, reply *r)
{
    memset(r, 0, sizeof *r);
    int fd = connect_to(port);
    if (fd < 0)
        return;
    char text[512];
    snprintf(text, sizeof text, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n", method, path,
             strcmp(method, "POST") == 0 ? "Content-Length: 0\r\n" : "");
    if (send_all(fd, text))
        read_reply(fd, false, false, r);
    close(fd);
}

/* --- The harness: the server on its thread, the client in the test's ------------------------------------ */

typedef struct scenario scenario;
struct scenario {
    hs_http_limits limits; /* all 0: the defaults */
    hs_http *http;
    int port;
    served served; /* written by the server's thread, read once it has stopped */
    reply replies[4];
    int kept_fd;   /* a connection the client leaves open across the stop, or -1 */
    double waited; /* seconds, for the timing figures */
};

/* Starts the server on `address`, runs `client` against it, and stops the server. */
static void run_scenario(scenario *s, const char *address, void (*client)(scenario *s))
{
    s->kept_fd = -1;
    hs_error error = {0};
    const hs_http_limits *limits = s->limits.max_connections ? &s->limits : NULL;
    assert_int_equal(hs_http_start(address, limits, handler, &s->served, &s->http, &error), HS_OK);
    s->port = hs_http_port(s->http);
    assert_true(s->port > 0);
    client(s);
    hs_http_stop(s->http);
}

static void free_replies(scenario *s)
{
    for (size_t i = 0; i < sizeof s->replies / sizeof s->replies[0]; i++)
        reply_free(&s->replies[i]);
}

/* --- Tests --------------------------------------------------------------------------------------------- */

static void get_metrics(scenario *s)
{
    request(s->port, "GET", "/metrics", &s->replies[0]);
    request(s->port, "GET", "/metrics?name[]=hs_up", &s->replies[1]);
}

static void test_get_returns_the_handlers_body_and_content_type(void **state)
{
    scenario s = {0};
    run_scenario(&s, "127.0.0.1:0", get_metrics);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s.replies[i].status, 200);
        assert_string_equal(s.replies[i].content_type, METRICS_TYPE);
        assert_int_equal(s.replies[i].content_length, 8);
        assert_string_equal(s.replies[i].body, "hs_up 1\n");
    }
    /* The query is not part of the path. */
    assert_int_equal(s.served.calls, 2);
    assert_string_equal(s.served.last_path, "/metrics");
    free_replies(&s);
}

static void get_unknown_and_healthz(scenario *s)
{
    request(s->port, "GET", "/nope", &s->replies[0]);
    request(s->port, "GET", "/healthz", &s->replies[1]);
}

static void test_unknown_path_gets_the_handlers_404_and_default_type(void **state)
{
    scenario s = {0};
    run_scenario(&s, "127.0.0.1:0", get_unknown_and_healthz);
    assert_int_equal(s.replies[0].status, 404);
    assert_string_equal(s.replies[0].body, "not found\n");
    assert_int_equal(s.replies[1].status, 200);
    assert_string_equal(s.replies[1].content_type, "text/plain; charset=utf-8");
    assert_string_equal(s.replies[1].body, "ok\n");
    free_replies(&s);
}

static void post_and_delete(scenario *s)
{
    request(s->port, "POST", "/metrics", &s->replies[0]);
    request(s->port, "DELETE", "/metrics", &s->replies[1]);
}

static void test_other_methods_get_405_with_allow_and_skip_the_handler(void **state)
{
    scenario s = {0};
    run_scenario(&s, "127.0.0.1:0", post_and_delete);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s.replies[i].status, 405);
        assert_string_equal(s.replies[i].allow, "GET, HEAD");
    }
    assert_int_equal(s.served.calls, 0);
    free_replies(&s);
}

static void get_with_body(scenario *s)
{
    int fd = connect_to(s->port);
    send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
    read_reply(fd, false, false, &s->replies[0]);
    close(fd);
}

static void test_a_body_sent_with_a_get_is_ignored(void **state)
{
    scenario s = {0};
    run_scenario(&s, "127.0.0.1:0", get_with_body);
    assert_int_equal(s.replies[0].status, 200);
    assert_string_equal(s.replies[0].body, "hs_up 1\n");
    assert_int_equal(s.served.calls, 1);
    free_replies(&s);
}

static void head_metrics(scenario *s)
{
    request(s->port, "HEAD", "/metrics", &s->replies[0]);
}

static void test_head_has_the_headers_of_get_but_no_body(void **state)
{
    scenario s = {0};
    run_scenario(&s, "127.0.0.1:0", head_metrics);
    assert_int_equal(s.replies[0].status, 200);
    assert_string_equal(s.replies[0].content_type, METRICS_TYPE);
    assert_int_equal(s.replies[0].content_length, 8);
    assert_int_equal(s.replies[0].body_len, 0);
    assert_int_equal(s.served.calls, 1);
    free_replies(&s);
}

static void get_big(scenario *s)
{
    request(s->port, "GET", "/big", &s->replies[0]);
}

static void assert_big_body(const reply *r)
{
    assert_int_equal(r->status, 200);
    assert_int_equal(r->body_len, BIG_BYTES);
    for (size_t i = 0; i < BIG_BYTES; i += 4099)
        assert_int_equal(r->body[i], 'a' + i % 26);
}

static void test_a_body_of_several_megabytes_arrives_whole(void **state)
{
    scenario s = {0};
    run_scenario(&s, "127.0.0.1:0", get_big);
    assert_big_body(&s.replies[0]);
    free_replies(&s);
}

/* Client A opens a connection and sends half a request; client B is served meanwhile; then A finishes. */
static void slow_and_fast(scenario *s)
{
    int slow = connect_to(s->port);
    send_all(slow, "GET /metrics HTTP/1.1\r\nHost: x\r\n");
    request(s->port, "GET", "/healthz", &s->replies[0]);
    send_all(slow, "Connection: close\r\n\r\n");
    read_reply(slow, false, false, &s->replies[1]);
    close(slow);
}

static void test_a_slow_client_does_not_hold_up_another(void **state)
{
    scenario s = {0};
    run_scenario(&s, "127.0.0.1:0", slow_and_fast);
    assert_int_equal(s.replies[0].status, 200);
    assert_string_equal(s.replies[0].body, "ok\n");
    assert_int_equal(s.replies[1].status, 200);
    assert_string_equal(s.replies[1].body, "hs_up 1\n");
    free_replies(&s);
}

typedef struct worker {
    int port;
    reply big;
    int ok;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    request(w->port, "GET", "/big", &w->big);
    for (int i = 0; i < 20; i++) {
        reply r;
        request(w->port, "GET", "/metrics", &r);
        w->ok += r.status == 200 && r.body && strcmp(r.body, "hs_up 1\n") == 0;
        reply_free(&r);
    }
    return NULL;
}

static worker workers[2];

static void two_at_once(scenario *s)
{
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) {
        workers[i] = (worker){.port = s->port};
        pthread_create(&threads[i], NULL, worker_main, &workers[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
}

static void test_two_concurrent_clients_are_both_served(void **state)
{
    scenario s = {0};
    run_scenario(&s, "127.0.0.1:0", two_at_once);
    for (int i = 0; i < 2; i++) {
        assert_big_body(&workers[i].big);
        assert_int_equal(workers[i].ok, 20);
        reply_free(&workers[i].big);
    }
    assert_int_equal(s.served.calls, 42);
}

/* A keep-alive connection, answered and left open: stopping the server must close it. */
static void keep_alive(scenario *s)
{
    s->kept_fd = connect_to(s->port);
    send_all(s->kept_fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    read_reply(s->kept_fd, true, false, &s->replies[0]);
    send_all(s->kept_fd, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    read_reply(s->kept_fd, true, true, &s->replies[1]);
}

static void test_stop_closes_open_keep_alive_connections(void **state)
{
    scenario s = {0};
    run_scenario(&s, "127.0.0.1:0", keep_alive);
    assert_int_equal(s.replies[0].status, 200);
    assert_string_equal(s.replies[0].body, "hs_up 1\n");
    assert_int_equal(s.replies[1].status, 200);
    assert_int_equal(s.replies[1].body_len, 0);
    /* The server is gone: the kept connection reads end-of-file. */
    char c;
    assert_int_equal(recv(s.kept_fd, &c, 1, 0), 0);
    close(s.kept_fd);
    free_replies(&s);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A client that connects and says nothing: the exchange deadline (10 s by default) closes it, which only
 * happens if the server acts on a clock — no socket event would wake it. */
static void silent_client(scenario *s)
{
    int fd = connect_to(s->port);
    double start = now_seconds();
    char c;
    ssize_t n = recv(fd, &c, 1, 0);
    s->waited = n == 0 ? now_seconds() - start : -1;
    close(fd);
}

static void test_an_idle_connection_is_closed_after_the_timeout(void **state)
{
    scenario s = {0};
    run_scenario(&s, "127.0.0.1:0", silent_client);
    assert_true(s.waited >= 9.0);
    assert_true(s.waited < 15.0);
}

/* --- Under load: bursts, slowloris, big headers ----------------------------------------------------------
 */

/* Opens `n` connections without waiting for them, waits until each is connected (in the server's listen
 * queue or accepted) or has failed, then closes them all. */
static void burst(int port, int n)
{
    int *fds = malloc((size_t)n * sizeof *fds);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fds[i] < 0) { /* out of descriptors (a low RLIMIT_NOFILE): a smaller burst */
            n = i;
            break;
        }
        connect(fds[i], (struct sockaddr *)&sa, sizeof sa);
    }
    for (int i = 0; i < n; i++) {
        struct pollfd p = {.fd = fds[i], .events = POLLOUT};
        poll(&p, 1, 3000); /* a SYN the full listen queue dropped is retried after 1 s, then 3 s */
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
}

static void bursts_then_get(scenario *s)
{
    static const int sizes[] = {200, 1000, 200, 1000};
    for (size_t round = 0; round < sizeof sizes / sizeof sizes[0]; round++) {
        burst(s->port, sizes[round]);
        reply r;
        double start = now_seconds();
        request(s->port, "GET", "/healthz", &r);
        double waited = now_seconds() - start;
        s->waited = waited > s->waited ? waited : s->waited;
        s->replies[0].status += r.status == 200;
        reply_free(&r);
    }
}

/* The wedge: after a burst of idle connections, closed, the endpoint never answered again (MHD had
 * taken its listening socket out of its epoll set at the connection limit). Every round must be answered. */
static void test_bursts_of_idle_connections_do_not_wedge_the_endpoint(void **state)
{
    struct rlimit files;
    getrlimit(RLIMIT_NOFILE, &files);
    if (files.rlim_cur < 2048 && files.rlim_max >= 2048) {
        files.rlim_cur = 2048;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    scenario s = {0};
    run_scenario(&s, "127.0.0.1:0", bursts_then_get);
    assert_int_equal(s.replies[0].status, 4);
    print_message("slowest answer after a burst: %.3f s\n", s.waited);
}

/* 64 slowloris connections, each sending its request a header line at a time, every `interval_ms`. */
typedef struct trickle {
    int port;
    int interval_ms;
    int fds[64];
    atomic_int rounds; /* header lines sent on every connection */
    atomic_bool stop;
} trickle;

static void *trickle_main(void *arg)
{
    trickle *t = arg;
    for (int i = 0; i < 64; i++) {
        t->fds[i] = connect_to(t->port);
        send_all(t->fds[i], "GET /metrics HTTP/1.1\r\n");
    }
    while (!atomic_load(&t->stop)) {
        for (int i = 0; i < 64; i++)
            send_all(t->fds[i], "X-Slow: yes\r\n"); /* fails quietly once the server has dropped it */
        atomic_fetch_add(&t->rounds, 1);
        for (int waited = 0; waited < t->interval_ms && !atomic_load(&t->stop); waited += 50)
            usleep(50 * 1000);
    }
    for (int i = 0; i < 64; i++)
        close(t->fds[i]);
    return NULL;
}

static void metrics_under_slowloris(scenario *s)
{
    trickle t = {.port = s->port, .interval_ms = 2000};
    pthread_t thread;
    pthread_create(&thread, NULL, trickle_main, &t);
    while (atomic_load(&t.rounds) < 2) /* every connection open and one header line in */
        usleep(10 * 1000);
    for (int i = 0; i < 3; i++) {
        double start = now_seconds();
        request(s->port, "GET", "/metrics", &s->replies[i]);
        double waited = now_seconds() - start;
        s->waited = waited > s->waited ? waited : s->waited;
    }
    atomic_store(&t.stop, true);
    pthread_join(thread, NULL);
}

/* The slowloris (64 connections sending a header line every few seconds) took every connection and
 * starved /metrics. */
static void test_a_slowloris_does_not_starve_metrics(void **state)
{
    scenario s = {0};
    run_scenario(&s, "127.0.0.1:0", metrics_under_slowloris);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s.replies[i].status, 200);
        assert_string_equal(s.replies[i].body, "hs_up 1\n");
    }
    print_message("slowest /metrics under slowloris: %.3f s\n", s.waited);
    free_replies(&s);
}

/* One slowloris connection, a header line a second: the server must drop it after the exchange deadline
 * (10 s by default) although it is never idle. s->waited: seconds until it was dropped, -1 if not in 30 s. */
static void one_trickler(scenario *s)
{
    int fd = connect_to(s->port);
    double start = now_seconds();
    s->waited = -1;
    send_all(fd, "GET /metrics HTTP/1.1\r\n");
    while (now_seconds() - start < 30) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1000) == 1) {
            char c;
            if (recv(fd, &c, 1, 0) <= 0)
                s->waited = now_seconds() - start;
            break;
        }
        send_all(fd, "X-Slow: yes\r\n");
    }
    close(fd);
}

static void test_a_request_slower_than_the_deadline_is_dropped(void **state)
{
    scenario s = {0};
    run_scenario(&s, "127.0.0.1:0", one_trickler);
    print_message("trickling connection dropped after %.3f s\n", s.waited);
    assert_true(s.waited >= 9.0);
    assert_true(s.waited < 15.0);
}

/* A GET whose headers take `header_bytes`. */
static void get_with_header(int port, size_t header_bytes, reply *r)
{
    char *text = malloc(header_bytes + 128);
    size_t len = (size_t)sprintf(text, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: ");
    memset(text + len, 'a', header_bytes);
    strcpy(text + len + header_bytes, "\r\n\r\n");
    int fd = connect_to(port);
    memset(r, 0, sizeof *r);
    if (fd >= 0 && send_all(fd, text))
        read_reply(fd, false, false, r);
    close(fd);
    free(text);
}

static void small_and_big_headers(scenario *s)
{
    get_with_header(s->port, 2000, &s->replies[0]);
    get_with_header(s->port, 20000, &s->replies[1]);
    get_with_header(s->port, 2000, &s->replies[2]);
}

static void test_request_headers_beyond_the_limit_get_431(void **state)
{
    scenario s = {0};
    run_scenario(&s, "127.0.0.1:0", small_and_big_headers);
    assert_int_equal(s.replies[0].status, 200);
    assert_int_equal(s.replies[1].status, 431);
    assert_int_equal(s.replies[2].status, 200);
    free_replies(&s);
}

/* With room for two: A and B connect and say nothing, then C asks. C is answered, A (the oldest waiting) is
 * disconnected to make room, B is left alone. */
static void evict_for_newcomer(scenario *s)
{
    int a = connect_to(s->port);
    int b = connect_to(s->port);
    request(s->port, "GET", "/healthz", &s->replies[0]);
    char c;
    s->replies[1].status = (int)recv(a, &c, 1, 0);            /* 0: end of file */
    s->replies[2].status = (int)recv(b, &c, 1, MSG_DONTWAIT); /* -1: still open */
    s->replies[3].status = errno;
    close(a);
    close(b);
}

static void test_at_the_limit_a_newcomer_evicts_the_oldest_idle_connection(void **state)
{
    scenario s = {.limits = {.max_connections = 2, .exchange_seconds = 60, .max_request_bytes = 16384}};
    run_scenario(&s, "127.0.0.1:0", evict_for_newcomer);
    assert_int_equal(s.replies[0].status, 200);
    assert_int_equal(s.replies[1].status, 0);
    assert_int_equal(s.replies[2].status, -1);
    assert_true(s.replies[3].status == EAGAIN || s.replies[3].status == EWOULDBLOCK);
    free_replies(&s);
}

/* With room for one: A asks for a body of megabytes and reads only its first bytes, so its response stays
 * under way; B is then refused at once (not queued until A's deadline), and C is answered once A has gone. */
static void refuse_while_answering(scenario *s)
{
    int a = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(a, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(a, (struct sockaddr *)&sa, sizeof sa), 0);
    send_all(a, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    char head[16];
    assert_int_equal(recv(a, head, sizeof head, MSG_WAITALL), (ssize_t)sizeof head);
    double start = now_seconds();
    request(s->port, "GET", "/healthz", &s->replies[0]);
    s->waited = now_seconds() - start;
    close(a);
    /* A's slot is free once the server has seen it close: ask until answered (a bounded number of times). */
    for (int i = 0; i < 200 && s->replies[1].status != 200; i++) {
        reply_free(&s->replies[1]);
        request(s->port, "GET", "/healthz", &s->replies[1]);
        if (s->replies[1].status != 200)
            usleep(50 * 1000);
    }
}

static void test_at_the_limit_with_every_connection_answering_a_newcomer_is_refused(void **state)
{
    scenario s = {.limits = {.max_connections = 1, .exchange_seconds = 60, .max_request_bytes = 16384}};
    run_scenario(&s, "127.0.0.1:0", refuse_while_answering);
    print_message("newcomer refused after %.3f s\n", s.waited);
    assert_int_equal(s.replies[0].status, 0);
    assert_int_equal(s.replies[1].status, 200);
    free_replies(&s);
}

static void test_every_interface_is_reachable_on_ipv4_loopback(void **state)
{
    scenario s = {0};
    run_scenario(&s, ":0", get_metrics);
    assert_int_equal(s.replies[0].status, 200);
    free_replies(&s);
}

static void test_ipv6_loopback_in_brackets(void **state)
{
    hs_http *http = NULL;
    hs_error error = {0};
    hs_err err = hs_http_start("[::1]:0", NULL, handler, NULL, &http, &error);
    if (err == HS_ERR_IO && strstr(error.message, "Cannot assign requested address"))
        skip(); /* no IPv6 on this machine's loopback */
    assert_int_equal(err, HS_OK);
    assert_true(hs_http_port(http) > 0);
    hs_http_stop(http);
}

static void test_a_port_in_use_fails_with_io_naming_the_address(void **state)
{
    hs_http *first = NULL, *second = NULL;
    hs_error error = {0};
    assert_int_equal(hs_http_start("127.0.0.1:0", NULL, handler, NULL, &first, &error), HS_OK);
    char address[64];
    snprintf(address, sizeof address, "127.0.0.1:%d", hs_http_port(first));
    assert_int_equal(hs_http_start(address, NULL, handler, NULL, &second, &error), HS_ERR_IO);
    assert_int_equal(error.code, HS_ERR_IO);
    assert_null(second);
    assert_non_null(strstr(error.message, address));
    assert_non_null(strstr(error.message, strerror(EADDRINUSE)));
    hs_http_stop(first);
}

static int open_descriptors(void)
{
    int n = 0;
    DIR *dir = opendir("/proc/self/fd");
    if (!dir)
        return -1;
    while (readdir(dir))
        n++;
    closedir(dir);
    return n;
}

static void test_unparseable_addresses_are_configuration_errors(void **state)
{
    static const char *const bad[] = {"",
                                      "9464",
                                      "127.0.0.1",
                                      "127.0.0.1:",
                                      "127.0.0.1:x",
                                      "127.0.0.1:65536",
                                      "::1:9464",
                                      "[::1]9464",
                                      "[::1",
                                      ":-1",
                                      "no.such.host.invalid:9464"};
    int before = open_descriptors();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hs_http *http = NULL;
        hs_error error = {0};
        assert_int_equal(hs_http_start(bad[i], NULL, handler, NULL, &http, &error), HS_ERR_CONFIG);
        assert_null(http);
        assert_non_null(strstr(error.message, "HTTP address"));
    }
    /* Nothing was left open. */
    assert_int_equal(open_descriptors(), before);
}

static void test_limits_out_of_range_are_configuration_errors(void **state)
{
    static const hs_http_limits bad[] = {
        {.max_connections = 0, .exchange_seconds = 10, .max_request_bytes = 16384},
        {.max_connections = 64, .exchange_seconds = 0, .max_request_bytes = 16384},
        {.max_connections = 64, .exchange_seconds = 10, .max_request_bytes = 100},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hs_http *http = NULL;
        hs_error error = {0};
        assert_int_equal(hs_http_start("127.0.0.1:0", &bad[i], handler, NULL, &http, &error), HS_ERR_CONFIG);
        assert_null(http);
        assert_non_null(strstr(error.message, "limits out of range"));
    }
}

static void test_stop_closes_every_descriptor(void **state)
{
    int before = open_descriptors();
    scenario s = {0};
    run_scenario(&s, "127.0.0.1:0", get_metrics);
    free_replies(&s);
    assert_int_equal(open_descriptors(), before);
}

/* hs_http_serve_probes: what a process with only /metrics and the probes answers (the exporter). */
static void test_serve_probes_answers_metrics_healthz_and_readyz_with_its_reason(void **state)
{
    (void)state;
    hs_metrics *m = hs_metrics_new();
    hs_gauge_set(hs_metrics_gauge(m, "hs_x", "X.", NULL), 21);
    struct {
        const char *path, *not_ready;
        int status;
        const char *body;
    } cases[] = {
        {"/metrics", "broker unreachable", 200, "# HELP hs_x X.\n# TYPE hs_x gauge\nhs_x 21\n"},
        {"/healthz", "broker unreachable", 200, "ok\n"},
        {"/readyz", "broker unreachable", 503, "not ready: broker unreachable\n"},
        {"/readyz", NULL, 200, "ready\n"},
        {"/other", NULL, 404, "not found: try /metrics, /healthz or /readyz\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hs_http_response out = {.status = 200};
        hs_http_serve_probes(cases[i].path, m, cases[i].not_ready, &out);
        assert_int_equal(out.status, cases[i].status);
        assert_string_equal(out.body, cases[i].body);
        free(out.body);
    }
    hs_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_returns_the_handlers_body_and_content_type),
        cmocka_unit_test(test_serve_probes_answers_metrics_healthz_and_readyz_with_its_reason),
        cmocka_unit_test(test_unknown_path_gets_the_handlers_404_and_default_type),
        cmocka_unit_test(test_other_methods_get_405_with_allow_and_skip_the_handler),
        cmocka_unit_test(test_a_body_sent_with_a_get_is_ignored),
        cmocka_unit_test(test_head_has_the_headers_of_get_but_no_body),
        cmocka_unit_test(test_a_body_of_several_megabytes_arrives_whole),
        cmocka_unit_test(test_a_slow_client_does_not_hold_up_another),
        cmocka_unit_test(test_two_concurrent_clients_are_both_served),
        cmocka_unit_test(test_stop_closes_open_keep_alive_connections),
        cmocka_unit_test(test_an_idle_connection_is_closed_after_the_timeout),
        cmocka_unit_test(test_bursts_of_idle_connections_do_not_wedge_the_endpoint),
        cmocka_unit_test(test_a_slowloris_does_not_starve_metrics),
        cmocka_unit_test(test_a_request_slower_than_the_deadline_is_dropped),
        cmocka_unit_test(test_request_headers_beyond_the_limit_get_431),
        cmocka_unit_test(test_at_the_limit_a_newcomer_evicts_the_oldest_idle_connection),
        cmocka_unit_test(test_at_the_limit_with_every_connection_answering_a_newcomer_is_refused),
        cmocka_unit_test(test_every_interface_is_reachable_on_ipv4_loopback),
        cmocka_unit_test(test_ipv6_loopback_in_brackets),
        cmocka_unit_test(test_a_port_in_use_fails_with_io_naming_the_address),
        cmocka_unit_test(test_unparseable_addresses_are_configuration_errors),
        cmocka_unit_test(test_limits_out_of_range_are_configuration_errors),
        cmocka_unit_test(test_stop_closes_every_descriptor),
    };
    return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
