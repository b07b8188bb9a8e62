/* The transactional producer's fatal errors, with the count service in-process and errors injected into the
 * embedded broker. librdkafka reports every fencing as one fatal error (RD_KAFKA_RESP_ERR__FENCED), whether
 * another instance with the same transactional.id has started or the broker aborted a transaction that
 * outlived transaction.timeout.ms (after a broker restart, say). The first must stop the service (exit 1: a
 * zombie must not go on); the second must not: the producer is replaced, every partition rewound to its
 * committed offset, and every fact still counted (issue 15, item 4).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "count.h"
#include "healthsignals/v1/diagnostics.pb-c.h"
#include "healthsignals/v1/indicator.pb-c.h"
#include "testkit.h"
#include "records.h"

#define COUNT_KEY "udredningsret.somatik.compliance/hs.indicators.v1"
#define END_TXN   26 /* Kafka's ApiKey of EndTxn (librdkafka's names for them are private) */

static const hs_service service = {.calc = &count_calc, .version = "test"};

/* The `i`th distinct fact of the count's one group. */
static void publish_fact(hs_testkit *kit, int i)
{
    static const char *const regions[] = {"1081", "1082", "1083", "1084", "1085"};
    char period[16];
    snprintf(period, sizeof period, "%dQ%d", 2000 + i / 4, 1 + i % 4);
    test_indicator r;
    test_indicator_init(&r, HEALTHSIGNALS__V1__SCOPE_KIND__REGION, regions[i % 5],
                        "udredningsret.somatik.compliance", period, 50 + i % 40,
                        HEALTHSIGNALS__V1__UNIT__PERCENT);
    assert_int_equal(hs_testkit_publish(kit, HS_TOPIC_INDICATORS, &r.obs.base), HS_OK);
}

static bool await_count(hs_testkit *kit, uint64_t facts, int timeout_ms)
{
    Healthsignals__V1__FactCount want = HEALTHSIGNALS__V1__FACT_COUNT__INIT;
    want.topic = HS_TOPIC_INDICATORS;
    want.group = "udredningsret.somatik.compliance";
    want.facts = facts;
    return hs_testkit_await(kit, HS_TOPIC_FACT_COUNTS, COUNT_KEY, &want.base, timeout_ms);
}

/* A commit fenced at once, its transaction a few milliseconds old: only another instance with the same
 * transactional.id can have done that, and this one stops with exit status 1. */
static void test_fenced_by_another_instance_exits_1(void **state)
{
    (void)state;
    hs_testkit *kit = hs_testkit_new();
    assert_non_null(kit);
    assert_int_equal(hs_testkit_start(kit, &service), HS_OK);
    publish_fact(kit, 0);
    assert_true(await_count(kit, 1, 30000));

    rd_kafka_mock_push_request_errors(hs_testkit_cluster(kit), END_TXN, 1, RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
    publish_fact(kit, 1);
    assert_int_equal(hs_testkit_wait_exit(kit, 30000), HS_EXIT_FATAL);
    hs_testkit_free(kit);
}

/* A commit that the broker keeps waiting (coordinator loading, retried) past the transaction timeout of 2 s,
 * then fences: what a broker that aborted the transaction for its age answers. The service goes on with a
 * new producer, counts every fact published before and after, and stops with exit status 0 when asked. */
static void test_fenced_after_the_transaction_timeout_recovers(void **state)
{
    (void)state;
    setenv("HS_KAFKA_TRANSACTION_TIMEOUT_MS", "2000", 1);
    setenv("HS_INSTANCE_ID", "faults", 1); /* transactional.id hs-count-faults */
    hs_testkit *kit = hs_testkit_new();
    assert_non_null(kit);
    /* Its transaction coordinator is broker 1, where the errors go. */
    rd_kafka_mock_coordinator_set(hs_testkit_cluster(kit), "transaction", "hs-count-faults", 1);
    assert_int_equal(hs_testkit_start(kit, &service), HS_OK);
    publish_fact(kit, 0);
    assert_true(await_count(kit, 1, 30000));
    unsetenv("HS_KAFKA_TRANSACTION_TIMEOUT_MS"); /* read at the start, which is over */
    unsetenv("HS_INSTANCE_ID");

    /* 6 x 500 ms = 3 s of retriable answers (each under the 1.9 s socket timeout librdkafka derives from the
     * transaction timeout), then the fencing: the next commit is fenced 3 s old. */
    rd_kafka_resp_err_t loading = RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS;
    assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(
                         hs_testkit_cluster(kit), 1, END_TXN, 7, loading, 500, loading, 500, loading, 500,
                         loading, 500, loading, 500, loading, 500, RD_KAFKA_RESP_ERR_PRODUCER_FENCED, 0),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    enum { BATCH = 20 };
    for (int i = 1; i <= BATCH; i++)
        publish_fact(kit, i);
    /* The fencing comes 3 s into that commit; the service must still run well after it. */
    assert_int_equal(hs_testkit_wait_exit(kit, 6000), -1);
    /* These are consumed while the commit hangs or after the new producer took over; either way their outputs
     * wait for the fenced commit, so the last count appears only when the service went on after it. */
    for (int i = BATCH + 1; i <= 2 * BATCH; i++)
        publish_fact(kit, i);
    assert_true(await_count(kit, 1 + 2 * BATCH, 60000));
    assert_int_equal(hs_testkit_stop(kit), HS_EXIT_OK);
    hs_testkit_free(kit);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fenced_by_another_instance_exits_1),
        cmocka_unit_test(test_fenced_after_the_transaction_timeout_recovers),
    };
    return cmocka_run_group_tests_name("producer_faults", tests, NULL, NULL);
}
