/* What the benchmark's C tools share (tools/bench/load.c, targets_load.c, passthrough.c): Kafka clients
 * configured as the runtime's are, delivery errors counted, facts produced through hs_kafka_produce(), and
 * the clocks. Each tool names itself once (bench_prog) and every message is prefixed with that name. */
#ifndef HS_BENCHKIT_H
#define HS_BENCHKIT_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

#include "hs/kafka.h"
#include "hs/topic.h"

/* The tool's name, the prefix of its messages ("load", "passthrough", ...). */
extern const char *bench_prog;

/* Deliveries that failed, over every producer made by bench_client_new(); the first is printed. */
extern long bench_delivery_errors;

/* A client configured as the runtime's are: the bootstrap servers and HS_KAFKA_* from the environment first
 * (so that a benchmark setting reaches every loop alike), then `props` (name, value, ..., NULL). A producer
 * counts its failed deliveries; a consumer gets `rebalance` when it is not NULL. NULL, said on stderr, when
 * the configuration is refused. */
rd_kafka_t *bench_client_new(rd_kafka_type_t type, const char *bootstrap, const char *const *props,
                             void (*rebalance)(rd_kafka_t *, rd_kafka_resp_err_t,
                                               rd_kafka_topic_partition_list_t *, void *));

/* A read_committed consumer of group `group`, without auto-commit, fetching every 10 ms at most (a finish
 * line or a latency probe: it sees an output as soon as its transaction commits), polled through
 * rd_kafka_consumer_poll(). NULL, said on stderr, when it cannot be made. */
rd_kafka_t *bench_committed_reader(const char *bootstrap, const char *group, const char *client_id);

/* Produces `message` to `topic` through hs_kafka_produce() with CloudEvents source `source`, polling while
 * the producer's queue is full. False, said on stderr, on any other error. */
bool bench_produce(rd_kafka_t *producer, const hs_topic *topic, const ProtobufCMessage *message,
                   const char *source);

/* CLOCK_MONOTONIC in nanoseconds and in seconds. */
uint64_t bench_now_ns(void);
double bench_now_s(void);

#endif
