/* The test kit itself, with the count service in-process: facts published, outputs awaited by key, a
 * tombstone deletes, and the service stops as on SIGTERM with exit status 0. And, with an error injected
 * into the embedded broker, the runtime's abort path: a commit that fails while the loop consumes on aborts,
 * rewinds and loses nothing.
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
#include "hs/kafka.h"
#include "testkit.h"
#include "records.h"

static void publish_fact_in(hs_testkit *kit, const char *region, const char *period, double value_pct)
{
    test_indicator r;
    test_indicator_init(&r, HEALTHSIGNALS__V1__SCOPE_KIND__REGION, region, "udredningsret.somatik.compliance",
                        period, value_pct, HEALTHSIGNALS__V1__UNIT__PERCENT);
    assert_int_equal(hs_testkit_publish(kit, HS_TOPIC_INDICATORS, &r.obs.base), HS_OK);
}

static void publish_fact(hs_testkit *kit, const char *region, double value_pct)
{
    publish_fact_in(kit, region, "2023Q2", value_pct);
}

#define COUNT_KEY "udredningsret.somatik.compliance/hs.indicators.v1"

/* The `facts` of every FactCount record of COUNT_KEY in hs.fact-counts.v1, in offset order (one partition),
 * as a consumer with `isolation` reads them; returns how many, at most `max`. */
static size_t read_counts(hs_testkit *kit, const char *isolation, uint64_t *out, size_t max)
{
    hs_error error;
    rd_kafka_conf_t *conf = hs_kafka_conf_new(hs_testkit_bootstrap(kit), &error);
    assert_non_null(conf);
    const char *props[][2] = {{"group.id", "test-testkit-reader"},
                              {"isolation.level", isolation},
                              {"enable.partition.eof", "true"},
                              {"enable.auto.commit", "false"}};
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
        assert_int_equal(hs_kafka_conf_set(conf, props[i][0], props[i][1], &error), HS_OK);
    char errstr[256];
    rd_kafka_t *reader = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    assert_non_null(reader);
    const hs_topic *topic = hs_topic_find(HS_TOPIC_FACT_COUNTS);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(topic->partitions);
    for (int p = 0; p < topic->partitions; p++)
        rd_kafka_topic_partition_list_add(parts, topic->name, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(reader, parts);
    rd_kafka_topic_partition_list_destroy(parts);

    size_t n = 0;
    int at_end = 0;
    for (int idle = 0; at_end < topic->partitions && idle < 200;) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(reader, 50);
        if (!msg) {
            idle++;
            continue;
        }
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            at_end++;
        } else if (!msg->err && msg->key && msg->payload && msg->key_len == strlen(COUNT_KEY) &&
                   memcmp(msg->key, COUNT_KEY, msg->key_len) == 0) {
            Healthsignals__V1__FactCount *count =
                healthsignals__v1__fact_count__unpack(NULL, msg->len, msg->payload);
            assert_non_null(count);
            if (n < max)
                out[n++] = count->facts;
            healthsignals__v1__fact_count__free_unpacked(count, NULL);
        }
        rd_kafka_message_destroy(msg);
    }
    rd_kafka_consumer_close(reader);
    rd_kafka_destroy(reader);
    return n;
}

static void test_service_runs_in_process_and_outputs_can_be_awaited(void **state)
{
    static const hs_service service = {.calc = &count_calc, .version = "test"};
    hs_testkit *kit = hs_testkit_new();
    assert_non_null(kit);
    assert_int_equal(hs_testkit_start(kit, &service), HS_OK);

    /* Tabel 8, 2023Q2: Hovedstaden 83, Midtjylland 61, Sjælland 75. */
    publish_fact(kit, "1084", 83);
    publish_fact(kit, "1082", 61);
    publish_fact(kit, "1085", 75);
    Healthsignals__V1__FactCount want = HEALTHSIGNALS__V1__FACT_COUNT__INIT;
    want.topic = HS_TOPIC_INDICATORS;
    want.group = "udredningsret.somatik.compliance";
    want.facts = 3;
    const char *key = COUNT_KEY;
    assert_true(hs_testkit_await(kit, HS_TOPIC_FACT_COUNTS, key, &want.base, 30000));

    assert_int_equal(
        hs_testkit_delete(kit, HS_TOPIC_INDICATORS, "udredningsret.somatik.compliance/region:1082/2023Q2"),
        HS_OK);
    want.facts = 2;
    assert_true(hs_testkit_await(kit, HS_TOPIC_FACT_COUNTS, key, &want.base, 30000));

    assert_int_equal(hs_testkit_stop(kit), HS_EXIT_OK);
    hs_testkit_free(kit);
}

/* A commit whose TxnOffsetCommit fails (an abortable error) while the loop consumes on: the runtime aborts
 * the transaction, drops the outputs it held back for the next one, rewinds every partition to what was
 * committed, and counts every fact again exactly once. The embedded broker (librdkafka's mock) does not
 * hide aborted transactions from read_committed consumers, so the test sees each attempt: the count's
 * records must be 1 (committed before the failures), then attempts that each restart at 2, the last of them
 * complete — 2, 3, ..., 1 + MORE, every count once — and at least one before it (the abort). */
static void test_a_failed_commit_aborts_rewinds_and_loses_nothing(void **state)
{
    static const hs_service service = {.calc = &count_calc, .version = "test"};
    hs_testkit *kit = hs_testkit_new();
    assert_non_null(kit);
    assert_int_equal(hs_testkit_start(kit, &service), HS_OK);
    Healthsignals__V1__FactCount want = HEALTHSIGNALS__V1__FACT_COUNT__INIT;
    want.topic = HS_TOPIC_INDICATORS;
    want.group = "udredningsret.somatik.compliance";

    publish_fact_in(kit, "1084", "1999Q4", 83);
    want.facts = 1;
    assert_true(hs_testkit_await(kit, HS_TOPIC_FACT_COUNTS, COUNT_KEY, &want.base, 30000));

    /* The next two commits fail when they send their offsets, after 300 ms each: long enough for facts to
     * arrive meanwhile, whose outputs the runtime holds back for the next transaction. */
    const int16_t txn_offset_commit = 28; /* Kafka's ApiKey (librdkafka's names for them are private) */
    assert_int_equal(
        rd_kafka_mock_broker_push_request_error_rtts(hs_testkit_cluster(kit), 1, txn_offset_commit, 2,
                                                     RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED, 300,
                                                     RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED, 300),
        RD_KAFKA_RESP_ERR_NO_ERROR);
    enum { MORE = 120 }; /* new facts: 5 regions x 2000Q1..2029Q4, none the first one's key */
    static const char *const regions[] = {"1081", "1082", "1083", "1084", "1085"};
    for (int i = 0; i < MORE; i++) {
        char period[16];
        snprintf(period, sizeof period, "%dQ%d", 2000 + i / 4, 1 + i % 4);
        publish_fact_in(kit, regions[i % 5], period, 50 + i % 40);
    }
    want.facts = 1 + MORE;
    assert_true(hs_testkit_await(kit, HS_TOPIC_FACT_COUNTS, COUNT_KEY, &want.base, 60000));
    assert_int_equal(hs_testkit_stop(kit), HS_EXIT_OK);

    uint64_t counts[8 * (1 + MORE)] = {0};
    size_t n = read_counts(kit, "read_uncommitted", counts, sizeof counts / sizeof counts[0]);
    assert_true(n >= 1 + MORE);
    assert_int_equal(counts[0], 1);
    size_t last_attempt = 0, attempts = 0;
    for (size_t i = 1; i < n; i++) {
        if (counts[i] == 2) { /* an attempt starts */
            last_attempt = i;
            attempts++;
        } else {
            assert_int_equal(counts[i], counts[i - 1] + 1); /* within an attempt: no gap, no repeat */
        }
    }
    assert_true(attempts >= 2);               /* at least one aborted before the one that committed */
    assert_int_equal(n - last_attempt, MORE); /* the last attempt: 2 .. 1 + MORE */
    assert_int_equal(counts[n - 1], 1 + MORE);
    hs_testkit_free(kit);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_runs_in_process_and_outputs_can_be_awaited),
        cmocka_unit_test(test_a_failed_commit_aborts_rewinds_and_loses_nothing),
    };
    return cmocka_run_group_tests_name("testkit", tests, NULL, NULL);
}
