/* The topic registry: every topic healthsignals reads or writes, declared once — its value type, record-key
 * layout, grouping key (what chooses the partition), partition count, cleanup policy and retention. hsctl
 * creates topics from it, services subscribe through it, publishers key and partition records with it;
 * nothing else names a topic. Each service issue adds its output topics here.
 */
#ifndef HS_TOPIC_H
#define HS_TOPIC_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include "healthsignals/v1/common.pb-c.h"
#include "hs/err.h"
#include "hs/key.h"

/* Builds the record key (fact identity) and the grouping key of `value`, which is of the topic's type. */
typedef hs_err (*hs_topic_key_fn)(const ProtobufCMessage *value, char key[HS_KEY_MAX], char group[HS_KEY_MAX],
                                  hs_error *error);

typedef struct hs_topic {
    const char *name;                             /* "hs.indicators.v1" */
    const ProtobufCMessageDescriptor *value_type; /* NULL: raw bytes (the DLQ) */
    const char *key_layout;                       /* documentation: "indicator/scope/period" */
    const char *grouping;                         /* documentation: "indicator" */
    hs_topic_key_fn key_of;                       /* NULL for raw-bytes topics */
    const char *cleanup_policy;                   /* "compact" or "delete" */
    const char *description;
    int64_t retention_ms;      /* -1 = forever */
    int32_t max_message_bytes; /* topic config max.message.bytes; 0 = the broker's default (about 1 MB) */
    int partitions;
    int global; /* read in full by every instance, not through the group (hs.rules.v1) */
} hs_topic;

/* Every registered topic, in a fixed order; `*count` receives their number. Static storage. */
const hs_topic *hs_topic_all(size_t *count);

/* The topic named `name`, or NULL. */
const hs_topic *hs_topic_find(const char *name);

/* The topic whose value type has the full protobuf name `type_name` ("healthsignals.v1.Rule"), or NULL.
 * When several topics share a type, the first registered wins. */
const hs_topic *hs_topic_find_by_type(const char *type_name);

/* The grouping key of a record from its record key alone (for tombstones, which carry no value): every
 * registered key layout begins with its grouping key, except hs.rules.v1, whose single partition makes the
 * grouping key irrelevant. Returns HS_ERR_VALIDATION for a key that does not split. */
hs_err hs_topic_group_of_key(const hs_topic *topic, const char *key, char group[HS_KEY_MAX], hs_error *error);

/* The partition for a grouping key in `topic`, with Kafka's murmur2 (hs/partition.h), modulo the registry's
 * partition count — never the count a broker reports: the count is part of the contract, so that the
 * partition of a grouping key cannot change under a running system (docs/producers.md). */
int32_t hs_topic_partition(const hs_topic *topic, const char *group);

/* --- Admission: what a service accepts as a fact -------------------------------------------------------
 * A service computes on a record only if it is where every other revision of its fact and every other fact
 * of its grouping key is; anything else would be silently counted twice, or apart from the facts it belongs
 * with. Both checks run after decoding and validation (which normalises scopes, so the identity is the
 * canonical one); the runtime dead-letters what they refuse, with their reason. */

/* Checks that `key` is the record key of `value` (a validated message of the topic's type), or, for a
 * tombstone (`value` NULL), that it splits as a key of this topic; fills `group` with its grouping key.
 * HS_ERR_KEY_MISMATCH naming both keys: "record key 'a/region:1081/2023Q2' is not its value's identity
 * 'a/region:1082/2023Q2' (indicator/scope/period)"; HS_ERR_VALIDATION for a tombstone key that does not
 * split; the key function's error for a value without its identity fields. */
hs_err hs_topic_check_key(const hs_topic *topic, const char *key, const ProtobufCMessage *value,
                          char group[HS_KEY_MAX], hs_error *error);

/* Checks that a record whose grouping key is `group` was found on `partition`: HS_ERR_WRONG_PARTITION with
 * "record on partition 3, its grouping key 'x' belongs on partition 5 of 8" otherwise. A global topic (read
 * in full by every instance) has no wrong partition. */
hs_err hs_topic_check_partition(const hs_topic *topic, const char *group, int32_t partition, hs_error *error);

/* Both checks, in that order: whether the record at `partition` with `key` and `value` (NULL: a tombstone)
 * may be computed on. */
hs_err hs_topic_admit(const hs_topic *topic, int32_t partition, const char *key,
                      const ProtobufCMessage *value, hs_error *error);

/* Dead letters carry the rejected record whole, plus headers, so the DLQ accepts records larger than the
 * broker's default limit; the runtime's producer allows the same. */
#define HS_DLQ_MAX_MESSAGE_BYTES (4 * 1024 * 1024)

/* Well-known topic names, so that a typo is a compile error. */
#define HS_TOPIC_INDICATORS "hs.indicators.v1"
#define HS_TOPIC_BUDGET     "hs.budget.v1"
#define HS_TOPIC_CAPACITY   "hs.capacity.v1"
#define HS_TOPIC_RULES      "hs.rules.v1"
/* The rules each consumer group's partitions have applied, written by the services in the transactions of
 * their outputs (docs/reliability.md, "Rule changes"). */
#define HS_TOPIC_APPLIED_RULES "hs.applied-rules.v1"
#define HS_TOPIC_ALERTS        "hs.alerts.v1"
#define HS_TOPIC_DLQ           "hs.dlq.v1"
#define HS_TOPIC_FACT_COUNTS   "hs.fact-counts.v1"

/* Outputs of the targets service. */
#define HS_TOPIC_TARGET_STATUS "hs.target-status.v1"

/* Outputs of the capacity service. */
#define HS_TOPIC_CAPACITY_STATUS "hs.capacity-status.v1"

/* Outputs of the variation service. */
#define HS_TOPIC_VARIATION "hs.variation.v1"

/* "region:1084" — the key component of a scope (kind in lowercase, then the code). */
void hs_topic_scope_component(const Healthsignals__V1__Scope *scope, char *out, size_t size);

#endif
