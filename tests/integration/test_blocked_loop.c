/* The HTTP endpoint of a running service while its loop is blocked. The count calculation is wrapped so that
 * one marked fact holds the loop inside apply() for 12 s, as a Kafka call waiting out its 30 s timeout
 * would: meanwhile /healthz must answer 200, /readyz 503 "... (event loop blocked for N s)" once 5 s have
 * passed, and /metrics 200 with hs_event_loop_blocked_seconds above 0 — each within a 3 s client timeout —
 * and /readyz 200 again once the loop runs. The service runs in-process (hs_runtime_main on a thread)
 * against the test kit's embedded broker, with its HTTP endpoint on a port picked here.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "count.h"
#include "healthsignals/v1/indicator.pb-c.h"
#include "testkit.h"
#include "records.h"

#define BLOCKING_VALUE 42.5 /* the fact that blocks the loop */
#define BLOCK_SECONDS  12

static hs_err blocking_apply(void *state, const hs_topic *topic, const char *key,
                             const ProtobufCMessage *value, hs_emit *emit, hs_error *error)
{
    const Healthsignals__V1__IndicatorObservation *obs = (const void *)value;
    if (value && value->descriptor == &healthsignals__v1__indicator_observation__descriptor &&
        obs->value == BLOCKING_VALUE)
        sleep(BLOCK_SECONDS);
    return count_calc.apply(state, topic, key, value, emit, error);
}

static hs_calc blocking_calc;
static hs_service blocking_service = {.calc = &blocking_calc, .version = "test"};

typedef struct service_run {
    pthread_t thread;
    char bootstrap[256], group[64], http_addr[32];
    int exit_status;
} service_run;

static void *service_main(void *arg)
{
    service_run *run = arg;
    char *argv[] = {"count",       "--bootstrap-servers", run->bootstrap,      "--group-id", run->group,
                    "--http-addr", run->http_addr,        "--commit-interval", "20ms",       NULL};
    run->exit_status = hs_runtime_main(&blocking_service, (int)(sizeof argv / sizeof argv[0]) - 1, argv);
    return NULL;
}

/* A loopback port nothing listens on now (the service binds it right after). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* GET `path`: the status (0: no answer within 3 s) and the body in `body`. */
static int get(int port, const char *path, char *body, size_t size)
{
    body[0] = '\0';
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char text[65536];
    size_t len = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        snprintf(text, sizeof text, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
        if (send(fd, text, strlen(text), MSG_NOSIGNAL) > 0) {
            ssize_t n;
            while (len < sizeof text - 1 && (n = recv(fd, text + len, sizeof text - 1 - len, 0)) > 0)
                len += (size_t)n;
        }
    }
    close(fd);
    text[len] = '\0';
    const char *end_of_head = strstr(text, "\r\n\r\n");
    if (strncmp(text, "HTTP/1.1 ", 9) != 0 || !end_of_head)
        return 0;
    snprintf(body, size, "%s", end_of_head + 4);
    return atoi(text + 9);
}

static bool wait_status(int port, const char *path, int status, int timeout_s)
{
    char body[65536];
    for (double end = now_seconds() + timeout_s; now_seconds() < end; usleep(200 * 1000))
        if (get(port, path, body, sizeof body) == status)
            return true;
    return false;
}

static void publish_fact(hs_testkit *kit, double value)
{
    test_indicator r;
    test_indicator_init(&r, HEALTHSIGNALS__V1__SCOPE_KIND__REGION, "1081", "udredningsret.somatik.compliance",
                        "2023Q2", value, HEALTHSIGNALS__V1__UNIT__PERCENT);
    assert_int_equal(hs_testkit_publish(kit, HS_TOPIC_INDICATORS, &r.obs.base), HS_OK);
}

static void test_probes_answer_while_the_loop_is_blocked(void **state)
{
    blocking_calc = count_calc;
    blocking_calc.apply = blocking_apply;
    hs_testkit *kit = hs_testkit_new();
    assert_non_null(kit);
    service_run run = {0};
    snprintf(run.bootstrap, sizeof run.bootstrap, "%s", hs_testkit_bootstrap(kit));
    snprintf(run.group, sizeof run.group, "hs-blocked-loop-%d", (int)getpid());
    int port = free_port();
    snprintf(run.http_addr, sizeof run.http_addr, "127.0.0.1:%d", port);
    assert_int_equal(pthread_create(&run.thread, NULL, service_main, &run), 0);
    assert_true(wait_status(port, "/readyz", 200, 60));

    publish_fact(kit, BLOCKING_VALUE);
    /* The loop takes the fact and blocks: /readyz turns 503 within the 5 s threshold (and a beat). */
    double blocked_from = now_seconds();
    char body[65536];
    int answered = 0, not_ready = 0, blocked_metric = 0;
    double slowest = 0, first_not_ready = 0;
    while (now_seconds() - blocked_from < BLOCK_SECONDS - 2) {
        static const char *const paths[] = {"/healthz", "/readyz", "/metrics"};
        for (size_t i = 0; i < 3; i++) {
            double start = now_seconds();
            int status = get(port, paths[i], body, sizeof body);
            double took = now_seconds() - start;
            slowest = took > slowest ? took : slowest;
            answered += status != 0;
            if (i == 0)
                assert_int_equal(status, 200);
            if (i == 1 && status == 503 && strstr(body, "event loop blocked for") && not_ready++ == 0)
                first_not_ready = now_seconds() - blocked_from;
            if (i == 2 && status == 200 && strstr(body, "hs_event_loop_blocked_seconds ") &&
                !strstr(body, "hs_event_loop_blocked_seconds 0\n"))
                blocked_metric++;
        }
        usleep(500 * 1000);
    }
    print_message(
        "probes while the loop was blocked: %d answered, slowest %.3f s; /readyz 503 from %.1f s on\n",
        answered, slowest, first_not_ready);
    assert_true(not_ready > 0);
    assert_true(blocked_metric > 0);
    /* Unblocked, the service is ready again. */
    assert_true(wait_status(port, "/readyz", 200, 60));

    hs_runtime_stop();
    pthread_join(run.thread, NULL);
    assert_int_equal(run.exit_status, HS_EXIT_OK);
    hs_testkit_free(kit);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probes_answer_while_the_loop_is_blocked),
    };
    return cmocka_run_group_tests_name("blocked_loop", tests, NULL, NULL);
}
