/* What the benchmark's C tools share: see benchkit.h. */
#include "benchkit.h"

#include <stdio.h>
#include <time.h>

const char *bench_prog = "bench";
long bench_delivery_errors;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (msg->err && bench_delivery_errors++ == 0)
        fprintf(stderr, "%s: delivery failed: %s\n", bench_prog, rd_kafka_err2str(msg->err));
}

rd_kafka_t *bench_client_new(rd_kafka_type_t type, const char *bootstrap, const char *const *props,
                             void (*rebalance)(rd_kafka_t *, rd_kafka_resp_err_t,
                                               rd_kafka_topic_partition_list_t *, void *))
{
    hs_error error;
    rd_kafka_conf_t *conf = hs_kafka_conf_new(bootstrap, &error);
    if (!conf) {
        fprintf(stderr, "%s: %s\n", bench_prog, error.message);
        return NULL;
    }
    for (; props[0]; props += 2)
        if (hs_kafka_conf_set(conf, props[0], props[1], &error) != HS_OK) {
            fprintf(stderr, "%s: %s\n", bench_prog, error.message);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    if (type == RD_KAFKA_PRODUCER)
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    else if (rebalance)
        rd_kafka_conf_set_rebalance_cb(conf, rebalance);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (rk)
        return rk;
    fprintf(stderr, "%s: %s\n", bench_prog, errstr);
    rd_kafka_conf_destroy(conf);
    return NULL;
}

rd_kafka_t *bench_committed_reader(const char *bootstrap, const char *group, const char *client_id)
{
    const char *props[] = {"group.id",
                           group,
                           "isolation.level",
                           "read_committed",
                           "enable.auto.commit",
                           "false",
                           "fetch.wait.max.ms",
                           "10",
                           "client.id",
                           client_id,
                           NULL};
    rd_kafka_t *rk = bench_client_new(RD_KAFKA_CONSUMER, bootstrap, props, NULL);
    if (rk)
        rd_kafka_poll_set_consumer(rk);
    return rk;
}

bool bench_produce(rd_kafka_t *producer, const hs_topic *topic, const ProtobufCMessage *message,
                   const char *source)
{
    for (;;) {
        hs_event_meta meta = {0};
        snprintf(meta.source, sizeof meta.source, "%s", source);
        hs_error error;
        hs_err err = hs_kafka_produce(producer, topic, NULL, NULL, message, &meta, &error);
        if (err == HS_OK)
            return true;
        if (err != HS_ERR_TIMEOUT) { /* anything but a full queue */
            fprintf(stderr, "%s: %s\n", bench_prog, error.message);
            return false;
        }
        rd_kafka_poll(producer, 10);
    }
}

uint64_t bench_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

double bench_now_s(void)
{
    return (double)bench_now_ns() / 1e9;
}
