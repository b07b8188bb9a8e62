/* The event envelope: CloudEvents 1.0. On Kafka, binary mode — the protobuf value is the record value and
 * the attributes travel as headers (ce_specversion, ce_id, ce_source, ce_type, ce_time, content-type). As
 * text (hsctl, tests, offline mode), structured mode — one CloudEvents JSON object per line whose `data` is
 * the canonical proto3 JSON of the value and whose `subject` is the record key (the fact's identity).
 * A tombstone is an event with `"data": null`.
 */
#ifndef HS_EVENT_H
#define HS_EVENT_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "hs/err.h"
#include "hs/key.h"
#include "hs/topic.h"

typedef struct hs_event_meta {
    char id[72];      /* deterministic: see hs_event_id() */
    char source[128]; /* "/healthsignals/<service>" or the publisher, e.g. "/healthsignals/hsctl" */
    char type[128];   /* "healthsignals.v1.<Message>" */
    char time[40];    /* RFC 3339, UTC */
} hs_event_meta;

/* Deterministic event id: 32 hex digits of XXH3-128 over topic, key and value bytes, so the same fact
 * published twice has the same id and a subscriber can de-duplicate. Services derive theirs from the output
 * key and the input offsets instead (same function, those bytes as `value`). */
void hs_event_id(char out[72], const char *topic, const char *key, const void *value, size_t value_len);

/* The current time as RFC 3339 UTC with milliseconds ("2023-09-04T10:15:00.123Z"). */
void hs_event_time_now(char out[40]);

/* Appends the CloudEvents binary-mode headers of `meta` to `headers` (content-type only when has_value). */
void hs_event_add_headers(rd_kafka_headers_t *headers, const hs_event_meta *meta, bool has_value);

/* Reads the CloudEvents headers of a consumed record into `meta`; missing ones are left empty. */
void hs_event_read_headers(const rd_kafka_message_t *record, hs_event_meta *meta);

/* The structured-mode JSON of an event: `value` NULL means a tombstone. Returns a new reference, NULL only
 * when out of memory. */
json_t *hs_event_to_json(const hs_event_meta *meta, const char *key, const ProtobufCMessage *value);

/* Parses one structured-mode event. The topic is found from `type` in the registry; `data` is decoded into
 * *value (a new message the caller frees with protobuf_c_message_free_unpacked(*value, NULL)), or *value is
 * NULL for a tombstone, which must then carry its key in `subject`. `key` receives the subject, or the key
 * computed from the value when there is no subject. Errors name the attribute or the data field path. */
hs_err hs_event_from_json(const json_t *event, const hs_topic **topic, ProtobufCMessage **value,
                          hs_event_meta *meta, char key[HS_KEY_MAX], hs_error *error);

#endif
