/* The test kit (see testkit.h): embedded broker, service thread, publishing and awaiting outputs. Outputs
 * are read by one consumer assigned to every partition of the awaited topics, which keeps the latest value
 * of each key in an hs_table, so that awaiting a key is a lookup after draining what arrived.
 */
#include "testkit.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hs/kafka.h"
#include "hs/table.h"

struct hs_testkit {
    rd_kafka_t *host; /* the client instance the mock cluster lives in */
    rd_kafka_mock_cluster_t *cluster;
    char bootstrap[256];
    rd_kafka_t *producer;
    rd_kafka_t *reader;
    char assigned[8][128]; /* output topics the reader follows */
    int assigned_cnt;
    hs_table latest; /* "<topic> <key>" -> packed value; an empty entry marks a tombstone */

    pthread_t thread;
    bool running;
    atomic_bool finished;
    int exit_status;
    const hs_service *service;
    char group[64];
};

hs_testkit *hs_testkit_new(void)
{
    hs_testkit *kit = calloc(1, sizeof *kit);
    char errstr[512];
    kit->host = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), errstr, sizeof errstr);
    kit->cluster = kit->host ? rd_kafka_mock_cluster_new(kit->host, 1) : NULL;
    if (!kit->cluster) {
        fprintf(stderr, "testkit: cannot start the mock cluster: %s\n", errstr);
        hs_testkit_free(kit);
        return NULL;
    }
    size_t count;
    const hs_topic *topics = hs_topic_all(&count);
    for (size_t i = 0; i < count; i++)
        rd_kafka_mock_topic_create(kit->cluster, topics[i].name, topics[i].partitions, 1);
    snprintf(kit->bootstrap, sizeof kit->bootstrap, "%s", rd_kafka_mock_cluster_bootstraps(kit->cluster));

    hs_error error;
    rd_kafka_conf_t *conf = hs_kafka_conf_new(kit->bootstrap, &error);
    hs_kafka_conf_set(conf, "enable.idempotence", "true", &error);
    kit->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);

    conf = hs_kafka_conf_new(kit->bootstrap, &error);
    hs_kafka_conf_set(conf, "group.id", "hs-testkit-reader", &error);
    hs_kafka_conf_set(conf, "enable.auto.commit", "false", &error);
    kit->reader = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!kit->producer || !kit->reader) {
        fprintf(stderr, "testkit: cannot create clients: %s\n", errstr);
        hs_testkit_free(kit);
        return NULL;
    }
    rd_kafka_poll_set_consumer(kit->reader);
    hs_table_init(&kit->latest);
    return kit;
}

const char *hs_testkit_bootstrap(const hs_testkit *kit)
{
    return kit->bootstrap;
}

rd_kafka_mock_cluster_t *hs_testkit_cluster(hs_testkit *kit)
{
    return kit->cluster;
}

static void *service_thread(void *arg)
{
    hs_testkit *kit = arg;
    char *argv[] = {(char *)kit->service->calc->name,
                    "--bootstrap-servers",
                    kit->bootstrap,
                    "--group-id",
                    kit->group,
                    "--http-addr",
                    "127.0.0.1:0",
                    "--commit-interval",
                    "20ms",
                    NULL};
    kit->exit_status = hs_runtime_main(kit->service, (int)(sizeof argv / sizeof argv[0]) - 1, argv);
    atomic_store(&kit->finished, true);
    return NULL;
}

hs_err hs_testkit_start(hs_testkit *kit, const hs_service *service)
{
    if (kit->running)
        return HS_ERR_USAGE;
    kit->service = service;
    snprintf(kit->group, sizeof kit->group, "hs-testkit-%s-%d-%ld", service->calc->name, (int)getpid(),
             (long)time(NULL));
    atomic_store(&kit->finished, false);
    if (pthread_create(&kit->thread, NULL, service_thread, kit) != 0)
        return HS_ERR_INTERNAL;
    kit->running = true;
    return HS_OK;
}

static hs_err publish(hs_testkit *kit, const hs_topic *topic, const char *key, const char *group,
                      const ProtobufCMessage *value)
{
    hs_event_meta meta = {.source = "/healthsignals/testkit"};
    hs_error error;
    hs_err err = hs_kafka_produce(kit->producer, topic, key, group, value, &meta, &error);
    if (err) {
        fprintf(stderr, "testkit: %s\n", error.message);
        return err;
    }
    return rd_kafka_flush(kit->producer, 10000) ? HS_ERR_TIMEOUT : HS_OK;
}

hs_err hs_testkit_publish(hs_testkit *kit, const char *topic_name, const ProtobufCMessage *value)
{
    const hs_topic *topic = hs_topic_find(topic_name);
    return topic ? publish(kit, topic, NULL, NULL, value) : HS_ERR_NOT_FOUND;
}

hs_err hs_testkit_delete(hs_testkit *kit, const char *topic_name, const char *key)
{
    const hs_topic *topic = hs_topic_find(topic_name);
    char group[HS_KEY_MAX];
    if (!topic || hs_topic_group_of_key(topic, key, group, NULL) != HS_OK)
        return HS_ERR_NOT_FOUND;
    return publish(kit, topic, key, group, NULL);
}

/* Follows `topic` from its beginning (once). */
static void follow(hs_testkit *kit, const hs_topic *topic)
{
    for (int i = 0; i < kit->assigned_cnt; i++)
        if (strcmp(kit->assigned[i], topic->name) == 0)
            return;
    if (kit->assigned_cnt == 8)
        return;
    snprintf(kit->assigned[kit->assigned_cnt++], sizeof kit->assigned[0], "%s", topic->name);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(64);
    for (int a = 0; a < kit->assigned_cnt; a++) {
        const hs_topic *t = hs_topic_find(kit->assigned[a]);
        for (int p = 0; p < t->partitions; p++)
            rd_kafka_topic_partition_list_add(parts, t->name, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    /* Re-assigning restarts every followed topic from its beginning; the table absorbs the replay. */
    rd_kafka_assign(kit->reader, parts);
    rd_kafka_topic_partition_list_destroy(parts);
}

bool hs_testkit_await(hs_testkit *kit, const char *topic_name, const char *key, const ProtobufCMessage *want,
                      int timeout_ms)
{
    const hs_topic *topic = hs_topic_find(topic_name);
    if (!topic)
        return false;
    follow(kit, topic);
    char slot[HS_KEY_MAX + 160];
    snprintf(slot, sizeof slot, "%s %s", topic_name, key);
    size_t want_len = want ? protobuf_c_message_get_packed_size(want) : 0;
    uint8_t *want_bytes = malloc(want_len ? want_len : 1);
    if (want)
        protobuf_c_message_pack(want, want_bytes);

    bool matched = false;
    for (int waited = 0; !matched && waited <= timeout_ms; waited += 50) {
        rd_kafka_message_t *msg;
        while ((msg = rd_kafka_consumer_poll(kit->reader, 50))) {
            if (!msg->err && msg->key) {
                char entry[HS_KEY_MAX + 160];
                snprintf(entry, sizeof entry, "%s %.*s", rd_kafka_topic_name(msg->rkt), (int)msg->key_len,
                         (const char *)msg->key);
                hs_table_put(&kit->latest, entry, msg->payload, msg->payload ? msg->len : 0);
            }
            rd_kafka_message_destroy(msg);
        }
        const hs_table_entry *e = hs_table_get(&kit->latest, slot);
        matched =
            e && e->value_len == want_len && (want_len == 0 || memcmp(e->value, want_bytes, want_len) == 0);
    }
    free(want_bytes);
    return matched;
}

int hs_testkit_wait_exit(hs_testkit *kit, int timeout_ms)
{
    for (int waited = 0; kit->running && !atomic_load(&kit->finished) && waited < timeout_ms; waited += 20)
        usleep(20 * 1000);
    if (!kit->running || !atomic_load(&kit->finished))
        return -1;
    pthread_join(kit->thread, NULL);
    kit->running = false;
    return kit->exit_status;
}

int hs_testkit_stop(hs_testkit *kit)
{
    if (!kit->running)
        return -1;
    /* The runtime may still be starting: ask until it has finished. */
    while (!atomic_load(&kit->finished)) {
        hs_runtime_stop();
        usleep(20 * 1000);
    }
    pthread_join(kit->thread, NULL);
    kit->running = false;
    return kit->exit_status;
}

void hs_testkit_free(hs_testkit *kit)
{
    if (!kit)
        return;
    if (kit->running)
        hs_testkit_stop(kit);
    if (kit->reader) {
        rd_kafka_consumer_close(kit->reader);
        rd_kafka_destroy(kit->reader);
    }
    if (kit->producer)
        rd_kafka_destroy(kit->producer);
    if (kit->cluster)
        rd_kafka_mock_cluster_destroy(kit->cluster);
    if (kit->host)
        rd_kafka_destroy(kit->host);
    hs_table_free(&kit->latest);
    free(kit);
}
