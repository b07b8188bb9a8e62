/* The topic registry: every topic healthsignals reads or writes, declared once — its value type, record-key
 * layout, grouping key (what chooses the partition), partition count, cleanup policy and retention. hsctl
 * creates topics from it, services subscribe through it, publishers key and partition records with it;
 * nothing else names a topic. A service adds a row for each output topic (common/core/src/topic.c); its keys
 * follow from the row (hs_topic_key), with no code of its own.
 */
#ifndef HS_TOPIC_H
#define HS_TOPIC_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include "healthsignals/v1/common.pb-c.h"
#include "hs/err.h"
#include "hs/key.h"

typedef struct hs_topic {
    const char *name;                             /* "hs.indicators.v1" */
    const ProtobufCMessageDescriptor *value_type; /* NULL: raw bytes (the DLQ) */
    const char
        *key_layout;      /* the record key: fields of value_type, '/'-separated ("indicator/scope/period") */
    const char *grouping; /* the field whose text is the grouping key ("indicator") */
    const char *key_may_be_empty; /* key fields that may be empty ("group"); NULL: none */
    const char *cleanup_policy;   /* "compact" or "delete" */
    const char *description;
    int64_t retention_ms;      /* -1 = forever */
    int32_t max_message_bytes; /* topic config max.message.bytes; 0 = the broker's default (about 1 MB) */
    int partitions;
    int global; /* read in full by every instance, not through the group (hs.rules.v1) */
} hs_topic;

/* Most fields in a key layout (and components hs_topic_group_of_key splits a key into). */
#define HS_KEY_PARTS_MAX 8

/* Room for a scope's key component (hs_topic_scope_component): kind, ':' and code, truncated to fit. */
#define HS_SCOPE_COMPONENT_MAX 160

/* Builds the record key (fact identity) and the grouping key of `value`, a message of the topic's type,
 * from the registry alone: the key is the fields `key_layout` names, in order, joined by hs_key_join — a
 * string as it is, a Scope as its key component ("region:1084"), an integer in decimal, an enum by its
 * value's name — and the grouping key is the field `grouping` names. A string or scope field of the key
 * must be set unless `key_may_be_empty` lists it (HS_ERR_VALIDATION "scope: required for the record key"):
 * a record without its identity could never be replaced or deleted. HS_ERR_TOO_LARGE for a key longer than
 * HS_KEY_MAX; HS_ERR_INTERNAL for a topic without a value type or a value of another type. */
hs_err hs_topic_key(const hs_topic *topic, const ProtobufCMessage *value, char key[HS_KEY_MAX],
                    char group[HS_KEY_MAX], hs_error *error);

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
#define HS_TOPIC_INDICATORS  "hs.indicators.v1"
#define HS_TOPIC_BUDGET      "hs.budget.v1"
#define HS_TOPIC_CAPACITY    "hs.capacity.v1"
#define HS_TOPIC_RULES       "hs.rules.v1"
#define HS_TOPIC_ALERTS      "hs.alerts.v1"
#define HS_TOPIC_DLQ         "hs.dlq.v1"
#define HS_TOPIC_FACT_COUNTS "hs.fact-counts.v1"

/* Outputs of the targets service. */
#define HS_TOPIC_TARGET_STATUS "hs.target-status.v1"

/* Outputs of the capacity service. */
#define HS_TOPIC_CAPACITY_STATUS "hs.capacity-status.v1"

/* Outputs of the variation service. */
#define HS_TOPIC_VARIATION "hs.variation.v1"

/* "region:1084" — the key component of a scope (kind in lowercase, then the code). */
void hs_topic_scope_component(const Healthsignals__V1__Scope *scope, char *out, size_t size);

#endif
