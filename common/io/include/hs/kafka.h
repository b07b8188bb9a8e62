/* Kafka client plumbing shared by the services and hsctl: where the brokers are, librdkafka configuration
 * with the HS_KAFKA_<PROPERTY> pass-through (HS_KAFKA_SECURITY_PROTOCOL=SASL_SSL sets security.protocol),
 * and producing one registry-typed record with its grouping-key partition and CloudEvents headers.
 */
#ifndef HS_KAFKA_H
#define HS_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "hs/err.h"
#include "hs/event.h"
#include "hs/topic.h"

#define HS_DEFAULT_BOOTSTRAP "127.0.0.1:9092"

/* The transaction timeout of a service that commits every `commit_interval_ms`. The broker aborts a
 * transaction open longer than transaction.timeout.ms and fences its producer, so the timeout must outlast
 * one interval, the commit after it, and a broker restart in between:
 *   HS_KAFKA_TXN_TIMEOUT_MIN_MS (60 s, librdkafka's own default) or HS_KAFKA_TXN_TIMEOUT_INTERVALS
 *   intervals, whichever is longer (5 min for the longest interval, 60 s, well under the broker's default
 *   transaction.max.timeout.ms of 15 min).
 * Longer is not free: a crashed instance that does not come back with the same --instance-id leaves its
 * transaction open, and read_committed readers of its outputs wait that long for it to be aborted. */
#define HS_KAFKA_TXN_TIMEOUT_MIN_MS    60000LL
#define HS_KAFKA_TXN_TIMEOUT_INTERVALS 5
/* A timeout the user sets (HS_KAFKA_TRANSACTION_TIMEOUT_MS) must be at least this many intervals. */
#define HS_KAFKA_TXN_TIMEOUT_MIN_INTERVALS 3

/* Sets *timeout_ms to the transaction timeout for `commit_interval_ms` (> 0): `configured` (the value of
 * HS_KAFKA_TRANSACTION_TIMEOUT_MS, or NULL/"" when unset) if the user set one, else the derived value above.
 * Returns HS_ERR_CONFIG, naming the variable and the interval, when `configured` is not a number of
 * milliseconds or is shorter than HS_KAFKA_TXN_TIMEOUT_MIN_INTERVALS intervals: with it, every transaction
 * would be aborted by the broker before its commit. */
hs_err hs_kafka_txn_timeout_ms(long long commit_interval_ms, const char *configured, long long *timeout_ms,
                               hs_error *error);

/* The bootstrap servers: `flag` if given, else HS_BOOTSTRAP_SERVERS, else HS_DEFAULT_BOOTSTRAP. */
const char *hs_kafka_bootstrap(const char *flag);

/* A new librdkafka configuration with bootstrap.servers, our log callback, and every HS_KAFKA_<PROP>
 * variable of the environment applied (name lowercased, '_' -> '.'). HS_KAFKA_<PROP>_FILE=<path>, for a
 * <PROP> librdkafka knows (and no property <prop>.file of its own), sets <prop> to the contents of the file
 * without its trailing line end — the way to hand a secret (HS_KAFKA_SASL_PASSWORD_FILE,
 * HS_KAFKA_SSL_KEY_PASSWORD_FILE) to a process without it showing in `ps` or the environment; setting both
 * forms of one property is an error. Returns NULL and sets `error` (HS_ERR_CONFIG, naming the variable; a
 * secret's value never appears in it) if librdkafka rejects one or a file cannot be read. The caller owns
 * the result (it passes to rd_kafka_new(), or rd_kafka_conf_destroy()s it). */
rd_kafka_conf_t *hs_kafka_conf_new(const char *bootstrap, hs_error *error);

/* The largest secret file HS_KAFKA_<PROP>_FILE reads (a PEM key with its chain fits). */
#define HS_KAFKA_SECRET_FILE_MAX ((size_t)64 * 1024)

/* Whether librdkafka property `name` holds a secret (a password, a private key, a client secret): its value
 * never appears in a message or log. */
bool hs_kafka_property_is_secret(const char *name);

/* rd_kafka_conf_set() with the error as an hs_error naming the property (without the value, for a secret). */
hs_err hs_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, hs_error *error);

/* Produces `value` (a message of topic->value_type, or NULL for a tombstone of `key`) to `topic`: the
 * record key is the fact identity, the partition comes from the grouping key, the headers are the
 * CloudEvents binary-mode headers of `meta` (id, time, type and dataschema are filled in when empty) with
 * ce_subject = the key. For a tombstone,
 * `key` and `group` must be given; for a value they are computed when NULL. Asynchronous: delivery is
 * reported to the producer's delivery callback. */
hs_err hs_kafka_produce(rd_kafka_t *producer, const hs_topic *topic, const char *key, const char *group,
                        const ProtobufCMessage *value, hs_event_meta *meta, hs_error *error);

/* hs_kafka_produce() of a value already packed: `bytes` (`len` of them, copied; NULL for a tombstone) are a
 * message of topic->value_type, `key` its record key and `group` its grouping key, both required. For a
 * caller that has packed the value anyway (the runtime compares digests of packed outputs). */
hs_err hs_kafka_produce_packed(rd_kafka_t *producer, const hs_topic *topic, const char *key,
                               const char *group, const void *bytes, size_t len, hs_event_meta *meta,
                               hs_error *error);

#endif
