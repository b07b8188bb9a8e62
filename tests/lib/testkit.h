/* The test kit: a service run in-process against an embedded broker, for C tests. It starts librdkafka's
 * mock cluster (with the topic registry's topics) inside the test process, runs a service's hs_runtime_main()
 * on a thread of its own, publishes facts the way hsctl does (registry key and partition, CloudEvents
 * headers), and waits for outputs by key. One kit, and one running service, per process at a time.
 */
#ifndef HS_TESTKIT_H
#define HS_TESTKIT_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h> /* after rdkafka.h, as it requires */
#include <stdbool.h>

#include "hs/runtime.h"

typedef struct hs_testkit hs_testkit;

/* Starts the embedded broker; NULL on failure (reason on stderr). Free with hs_testkit_free(). */
hs_testkit *hs_testkit_new(void);

/* The embedded broker's bootstrap servers. */
const char *hs_testkit_bootstrap(const hs_testkit *kit);

/* The embedded broker itself, for a test that injects errors (rd_kafka_mock_push_request_errors()). */
rd_kafka_mock_cluster_t *hs_testkit_cluster(hs_testkit *kit);

/* Runs `service` on a thread (fresh consumer group, HTTP on a free port, 20 ms commit interval). */
hs_err hs_testkit_start(hs_testkit *kit, const hs_service *service);

/* Publishes `value` to `topic` under its registry key, and waits until it is delivered. */
hs_err hs_testkit_publish(hs_testkit *kit, const char *topic, const ProtobufCMessage *value);

/* Publishes a tombstone for `key`. */
hs_err hs_testkit_delete(hs_testkit *kit, const char *topic, const char *key);

/* Waits until the latest record of `key` in output `topic` equals `want` (byte for byte once packed), or,
 * with `want` NULL, is a tombstone; returns false after `timeout_ms`. */
bool hs_testkit_await(hs_testkit *kit, const char *topic, const char *key, const ProtobufCMessage *want,
                      int timeout_ms);

/* Waits up to `timeout_ms` for the service to end by itself (a fatal error); returns its exit status, or -1
 * when it still runs. */
int hs_testkit_wait_exit(hs_testkit *kit, int timeout_ms);
/* Stops the service as SIGTERM would and returns its exit status. */
int hs_testkit_stop(hs_testkit *kit);

/* Stops the service if it runs, and the broker. */
void hs_testkit_free(hs_testkit *kit);

#endif
