/* The HTTP endpoint of a running service while its loop is blocked, and waits that must not block it. The
 * count calculation is wrapped so that one marked fact holds the loop inside apply() for 12 s, as a Kafka
 * call waiting out its 30 s timeout would: meanwhile /healthz must answer 200, /readyz 503 "... (event loop
 * blocked for N s)" once 5 s have passed, and /metrics 200 with hs_event_loop_blocked_seconds above 0 — each
 * within a 3 s client timeout — and /readyz 200 again once the loop runs. The service runs in-process
 * (hs_runtime_main on a thread) against the test kit's embedded broker, with its HTTP endpoint on a port
 * picked here.
 *
 * Second: the committed offsets of an assignment come slowly (the group coordinator answers OffsetFetch
 * after 2.5 s, four times, with a retriable error). Before, the rebalance callback waited for them on the
 * loop (up to 4 x 30 s, then exit 1): /readyz said "event loop blocked". Now they are read on a thread:
 * /healthz and /readyz answer at once throughout, /readyz 503 "reading the committed offsets ...", and the
 * service becomes ready once they are in.
 *
 * Third: a bad record (a share of 130 %) arrives while a commit waits for the broker (EndTxn answered after
 * 2.5 s, four times, with a retriable error). Before, the dead letter waited for that commit on the loop:
 * "event loop blocked". Now it is deferred to the next transaction like an output: the probes answer at once
 * and the record is dead-lettered.
 *
 * Fourth (its own ctest, integration.rules_load_wait, 40 s): hs.rules.v1 cannot be read for over 30 s at the
 * start (its ListOffsets answered after 3 s with an error, 9 times). Before, the service exited after 30 s
 * ("cannot read hs.rules.v1 to its end"); now it waits on, /readyz saying why, and becomes ready once the
 * rules are in.
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

/* Kafka's ApiKeys (librdkafka's names for them are private) */
#define LIST_OFFSETS   2
#define OFFSET_FETCH   9
#define END_TXN        26
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
static int free_port(void);

/* Runs the service on a thread against the kit's broker, in the group `name`-<pid> (NULL: the one in
 * run->group already), its HTTP endpoint on a free port, which it returns. */
static int service_start(service_run *run, hs_testkit *kit, const char *name)
{
    snprintf(run->bootstrap, sizeof run->bootstrap, "%s", hs_testkit_bootstrap(kit));
    if (name)
        snprintf(run->group, sizeof run->group, "%s-%d", name, (int)getpid());
    int port = free_port();
    snprintf(run->http_addr, sizeof run->http_addr, "127.0.0.1:%d", port);
    assert_int_equal(pthread_create(&run->thread, NULL, service_main, run), 0);
    return port;
}

/* Stops it (exit 0 expected) and the kit's broker. */
static void service_stop(service_run *run, hs_testkit *kit)
{
    hs_runtime_stop();
    pthread_join(run->thread, NULL);
    assert_int_equal(run->exit_status, HS_EXIT_OK);
    hs_testkit_free(kit);
}

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
    int port = service_start(&run, kit, "hs-blocked-loop");
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

    service_stop(&run, kit);
}

static void test_slow_committed_offsets_do_not_block_the_loop(void **state)
{
    blocking_calc = count_calc;
    hs_testkit *kit = hs_testkit_new();
    assert_non_null(kit);
    service_run run = {0};
    snprintf(run.group, sizeof run.group, "hs-slow-offsets-%d", (int)getpid());
    rd_kafka_mock_coordinator_set(hs_testkit_cluster(kit), "group", run.group, 1);
    rd_kafka_resp_err_t loading = RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS;
    assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(hs_testkit_cluster(kit), 1, OFFSET_FETCH, 4,
                                                                  loading, 2500, loading, 2500, loading, 2500,
                                                                  loading, 2500),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    double started = now_seconds();
    int port = service_start(&run, kit, NULL);

    char body[65536];
    int answered = 0, reading = 0, blocked = 0, ready = 0;
    double slowest = 0, ready_after = 0;
    while (now_seconds() - started < 40 && !ready) {
        static const char *const paths[] = {"/healthz", "/readyz"};
        for (size_t i = 0; i < 2; i++) {
            double start = now_seconds();
            int status = get(port, paths[i], body, sizeof body);
            double took = now_seconds() - start;
            slowest = took > slowest ? took : slowest;
            answered += status != 0;
            reading += i == 1 && status == 503 && strstr(body, "reading the committed offsets");
            blocked += i == 1 && strstr(body, "event loop blocked") != NULL;
            if (i == 1 && status == 200) {
                ready = 1;
                ready_after = now_seconds() - started;
            }
        }
        usleep(250 * 1000);
    }
    print_message("slow committed offsets: %d probes answered, slowest %.3f s; %d said reading the committed "
                  "offsets, %d event loop blocked; ready after %.1f s\n",
                  answered, slowest, reading, blocked, ready_after);
    assert_true(ready);
    assert_true(reading > 0);
    assert_int_equal(blocked, 0);
    assert_true(slowest < 1.0);

    service_stop(&run, kit);
}

static void test_dead_letter_during_a_slow_commit_does_not_block_the_loop(void **state)
{
    blocking_calc = count_calc;
    hs_testkit *kit = hs_testkit_new();
    assert_non_null(kit);
    service_run run = {0};
    int port = service_start(&run, kit, "hs-slow-commit");
    assert_true(wait_status(port, "/readyz", 200, 60));

    rd_kafka_resp_err_t loading = RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS;
    assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(hs_testkit_cluster(kit), 1, END_TXN, 4,
                                                                  loading, 2500, loading, 2500, loading, 2500,
                                                                  loading, 2500),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    publish_fact(kit, 10); /* its transaction's commit waits */
    usleep(500 * 1000);
    publish_fact(kit, 130); /* refused: a dead letter while that commit waits */
    double from = now_seconds();
    char body[65536];
    int blocked = 0, dead_lettered = 0;
    double slowest = 0;
    while (now_seconds() - from < 14 && !dead_lettered) {
        static const char *const paths[] = {"/healthz", "/readyz", "/metrics"};
        for (size_t i = 0; i < 3; i++) {
            double start = now_seconds();
            int status = get(port, paths[i], body, sizeof body);
            double took = now_seconds() - start;
            slowest = took > slowest ? took : slowest;
            if (i == 0)
                assert_int_equal(status, 200);
            blocked += i == 1 && strstr(body, "event loop blocked") != NULL;
            dead_lettered = i == 2 && strstr(body, "hs_records_dlq_total{") != NULL;
        }
        usleep(250 * 1000);
    }
    /* The commit is done within ~10 s; the dead letter's transaction commits after it. */
    print_message(
        "dead letter during a slow commit: slowest probe %.3f s, %d event loop blocked, dead-lettered "
        "after %.1f s\n",
        slowest, blocked, now_seconds() - from);
    assert_true(dead_lettered);
    assert_int_equal(blocked, 0);
    assert_true(slowest < 1.5);
    assert_true(wait_status(port, "/readyz", 200, 30));

    service_stop(&run, kit);
}

static void test_rules_unreadable_for_longer_than_30_s_do_not_end_the_service(void **state)
{
    blocking_calc = count_calc;
    blocking_calc.uses_rules = true; /* the count calculation, as a service with rules (none are published) */
    hs_testkit *kit = hs_testkit_new();
    assert_non_null(kit);
    /* 9 ListOffsets answers (the rules consumer's first request), each after 3 s: the rules cannot be read
     * for more than 30 s. */
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION;
    assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(hs_testkit_cluster(kit), 1, LIST_OFFSETS, 9,
                                                                  e, 3000, e, 3000, e, 3000, e, 3000, e, 3000,
                                                                  e, 3000, e, 3000, e, 3000, e, 3000),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    service_run run = {0};
    double started = now_seconds();
    int port = service_start(&run, kit, "hs-rules-wait");
    char body[65536];
    int said_why = 0, ready = 0;
    while (now_seconds() - started < 90 && !ready) {
        int status = get(port, "/readyz", body, sizeof body);
        said_why += status == 503 && strstr(body, "hs.rules.v1 not read to its end yet") != NULL;
        ready = status == 200;
        usleep(500 * 1000);
    }
    print_message("rules unreadable at the start: ready after %.1f s, /readyz said why %d times\n",
                  now_seconds() - started, said_why);
    assert_true(ready);
    assert_true(now_seconds() - started > 30); /* it did wait beyond the old 30 s */
    assert_true(said_why > 0);

    service_stop(&run, kit);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    if (argc > 2)
        cmocka_set_skip_filter(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probes_answer_while_the_loop_is_blocked),
        cmocka_unit_test(test_slow_committed_offsets_do_not_block_the_loop),
        cmocka_unit_test(test_dead_letter_during_a_slow_commit_does_not_block_the_loop),
        cmocka_unit_test(test_rules_unreadable_for_longer_than_30_s_do_not_end_the_service),
    };
    return cmocka_run_group_tests_name("blocked_loop", tests, NULL, NULL);
}
