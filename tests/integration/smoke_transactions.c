/* Smoke test of the broker path every service relies on: a protobuf-encoded IndicatorObservation goes
 * through a Kafka transaction that commits, one that aborts, and one more that commits; a read_committed
 * consumer must see exactly the two committed records, in order, and decode them back, while a
 * read_uncommitted consumer proves the aborted record really reached the log. Runs against whatever
 * HS_BOOTSTRAP_SERVERS names: hs-broker in the integration tier, real Kafka in the e2e tier (HS_BROKER_KIND
 * says which, because librdkafka 2.0's mock cannot hide aborted records; see the test body).
 * The transactional idiom follows librdkafka's examples/transactions.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "healthsignals/v1/indicator.pb-c.h"
#include "hs/partition.h"

#define TIMEOUT_MS 30000

static const char *bootstrap;
static int broker_hides_aborted; /* HS_BROKER_KIND=kafka: 1, =mock: 0 */
static char topic[128];

static const char *indicator_code = "udredningsret.somatik.compliance";

/* Encodes the Tabel 8 figure (docs/domain.md §10.1) for `region` in 2023Q2; the caller frees. */
static uint8_t *encode_observation(const char *region, double value_pct, size_t *len)
{
    Healthsignals__V1__IndicatorObservation obs = HEALTHSIGNALS__V1__INDICATOR_OBSERVATION__INIT;
    Healthsignals__V1__Scope scope = HEALTHSIGNALS__V1__SCOPE__INIT;
    scope.kind = HEALTHSIGNALS__V1__SCOPE_KIND__REGION;
    scope.code = (char *)region;
    obs.indicator = (char *)indicator_code;
    obs.scope = &scope;
    obs.period = "2023Q2";
    obs.value = value_pct;
    obs.unit = HEALTHSIGNALS__V1__UNIT__PERCENT;
    obs.provisional = 1;
    *len = healthsignals__v1__indicator_observation__get_packed_size(&obs);
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    healthsignals__v1__indicator_observation__pack(&obs, buf);
    return buf;
}

static rd_kafka_t *new_client(rd_kafka_type_t type, const char *const *props)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr),
                     RD_KAFKA_CONF_OK);
    for (; props && props[0]; props += 2)
        if (rd_kafka_conf_set(conf, props[0], props[1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
            fail_msg("%s=%s: %s", props[0], props[1], errstr);
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (!rk)
        fail_msg("rd_kafka_new: %s", errstr);
    return rk;
}

static void check(rd_kafka_error_t *error, const char *what)
{
    if (error) {
        const char *text = rd_kafka_error_string(error);
        fail_msg("%s: %s", what, text);
    }
}

/* The number of partitions of `topic`, waiting for auto-creation to settle. */
static int partition_count(rd_kafka_t *rk)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    for (int attempt = 0; attempt < 60; attempt++) {
        const struct rd_kafka_metadata *md;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            int count = md->topic_cnt == 1 && !md->topics[0].err ? md->topics[0].partition_cnt : 0;
            rd_kafka_metadata_destroy(md);
            if (count > 0) {
                rd_kafka_topic_destroy(rkt);
                return count;
            }
        }
        usleep(250 * 1000);
    }
    rd_kafka_topic_destroy(rkt);
    fail_msg("topic %s never appeared in the metadata", topic);
    return 0;
}

static void produce(rd_kafka_t *rk, int32_t partition, const char *region, double value_pct)
{
    char key[128];
    size_t len;
    snprintf(key, sizeof key, "%s/REGION:%s/2023Q2", indicator_code, region);
    uint8_t *value = encode_observation(region, value_pct, &len);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE(value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADER("ce_specversion", "1.0", -1),
        RD_KAFKA_V_HEADER("ce_type", "healthsignals.v1.IndicatorObservation", -1),
        RD_KAFKA_V_HEADER("content-type", "application/protobuf", -1), RD_KAFKA_V_END);
    free(value);
    if (err)
        fail_msg("produce: %s", rd_kafka_err2str(err));
}

/* Reads `partition` from the beginning with the given isolation level until `want` records arrived or the
 * end of the partition was reached with fewer; returns the decoded values in `values_pct`. */
static int consume_values(const char *isolation, int32_t partition, double *values_pct, int want)
{
    const char *props[] = {
        "group.id", "hs-smoke",           "isolation.level", isolation, "enable.partition.eof",
        "true",     "enable.auto.commit", "false",           NULL};
    rd_kafka_t *rk = new_client(RD_KAFKA_CONSUMER, props);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, partition)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);

    int got = 0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000 > TIMEOUT_MS)
            break;
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 500);
        if (!msg)
            continue;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(msg);
            if (got >= want)
                break;
            continue;
        }
        if (msg->err) {
            /* Topic not yet known to a fresh consumer: keep polling until the timeout. */
            rd_kafka_message_destroy(msg);
            continue;
        }
        Healthsignals__V1__IndicatorObservation *obs =
            healthsignals__v1__indicator_observation__unpack(NULL, msg->len, msg->payload);
        assert_non_null(obs);
        assert_string_equal(obs->indicator, indicator_code);
        assert_string_equal(obs->period, "2023Q2");
        assert_int_equal(obs->unit, HEALTHSIGNALS__V1__UNIT__PERCENT);
        if (got < want + 1)
            values_pct[got] = obs->value;
        got++;
        healthsignals__v1__indicator_observation__free_unpacked(obs, NULL);
        rd_kafka_message_destroy(msg);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return got;
}

static void test_aborted_transaction_is_invisible_to_read_committed(void **state)
{
    char txn_id[160];
    snprintf(txn_id, sizeof txn_id, "%s-producer", topic);
    const char *props[] = {"transactional.id", txn_id, "enable.idempotence", "true", NULL};
    rd_kafka_t *producer = new_client(RD_KAFKA_PRODUCER, props);

    /* The partition is chosen from the grouping key (the indicator), as every service does. */
    int32_t partition =
        hs_partition_for_key(indicator_code, strlen(indicator_code), partition_count(producer));

    check(rd_kafka_init_transactions(producer, TIMEOUT_MS), "init_transactions");

    /* Tabel 8, 2023Q2: Hovedstaden 83 — committed. */
    check(rd_kafka_begin_transaction(producer), "begin #1");
    produce(producer, partition, "1084", 83);
    check(rd_kafka_commit_transaction(producer, TIMEOUT_MS), "commit #1");

    /* A wrong figure that must never become visible — aborted. */
    check(rd_kafka_begin_transaction(producer), "begin #2");
    produce(producer, partition, "1082", 13);
    assert_int_equal(rd_kafka_flush(producer, TIMEOUT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    check(rd_kafka_abort_transaction(producer, TIMEOUT_MS), "abort #2");

    /* Midtjylland 61 — committed after the aborted one, so the aborted record sits between two commits. */
    check(rd_kafka_begin_transaction(producer), "begin #3");
    produce(producer, partition, "1082", 61);
    check(rd_kafka_commit_transaction(producer, TIMEOUT_MS), "commit #3");
    rd_kafka_destroy(producer);

    double committed[4] = {0};
    if (broker_hides_aborted) {
        int n = consume_values("read_committed", partition, committed, 2);
        assert_int_equal(n, 2);
        assert_true(committed[0] == 83.0);
        assert_true(committed[1] == 61.0);
    } else {
        /* librdkafka 2.0's mock answers every Fetch with an empty aborted-transactions list and the high
         * watermark as last stable offset, so read_committed cannot hide an aborted record there. This
         * asserts the documented limit (docs/running.md, "Brokers"): if a newer mock fixes it, this fails and
         * the doc and this test must be updated. The real guarantee is asserted against Kafka (e2e). */
        int n = consume_values("read_committed", partition, committed, 3);
        assert_int_equal(n, 3);
        assert_true(committed[0] == 83.0);
        assert_true(committed[2] == 61.0);
        fprintf(stderr, "smoke_transactions: note: hs-broker (librdkafka mock) shows aborted records to "
                        "read_committed consumers; exactly-once visibility is asserted in the e2e tier\n");
    }

    /* The aborted record is in the log: only the isolation level hides it. */
    double all[4] = {0};
    int n = consume_values("read_uncommitted", partition, all, 3);
    assert_int_equal(n, 3);
    assert_true(all[0] == 83.0);
    assert_true(all[1] == 13.0);
    assert_true(all[2] == 61.0);
}

int main(void)
{
    bootstrap = getenv("HS_BOOTSTRAP_SERVERS");
    if (!bootstrap || !*bootstrap) {
        fprintf(stderr, "smoke_transactions: HS_BOOTSTRAP_SERVERS is not set; this test needs a broker "
                        "(run it through ctest, which starts one)\n");
        return 1;
    }
    const char *kind = getenv("HS_BROKER_KIND");
    if (!kind || (strcmp(kind, "kafka") != 0 && strcmp(kind, "mock") != 0)) {
        fprintf(stderr, "smoke_transactions: HS_BROKER_KIND must be 'kafka' or 'mock'\n");
        return 1;
    }
    broker_hides_aborted = strcmp(kind, "kafka") == 0;
    snprintf(topic, sizeof topic, "hs.smoke.%ld.%d", (long)time(NULL), (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aborted_transaction_is_invisible_to_read_committed),
    };
    return cmocka_run_group_tests_name("smoke_transactions", tests, NULL, NULL);
}
