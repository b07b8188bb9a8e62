/* The event envelope: CloudEvents 1.0. On Kafka, binary mode — the protobuf value is the record value and
 * the attributes travel as headers (ce_specversion, ce_id, ce_source, ce_type, ce_time, ce_subject = the
 * record key, ce_dataschema, content-type, and ce_<name> for each extension attribute). As text (hsctl,
 * tests, offline mode), structured mode — one CloudEvents JSON object per line whose `data` is the canonical
 * proto3 JSON of the value (or `data_base64` its protobuf bytes) and whose `subject` is the record key (the
 * fact's identity). A tombstone is an event with `"data": null`. Dead letters are events of their own type,
 * HS_EVENT_TYPE_DEAD_LETTER, whose value is the rejected record's bytes.
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

/* The ce_type of a dead letter on hs.dlq.v1; its value is the rejected record's bytes (no schema). */
#define HS_EVENT_TYPE_DEAD_LETTER "healthsignals.v1.DeadLetter"

typedef struct hs_event_meta {
    char id[72];          /* deterministic: see hs_event_id() */
    char source[128];     /* "/healthsignals/<service>" or the publisher, e.g. "/healthsignals/hsctl" */
    char type[128];       /* "healthsignals.v1.<Message>" */
    char time[40];        /* RFC 3339 */
    char dataschema[160]; /* hs_event_dataschema() of the type, or empty for none */
    /* Extension attributes to send as ce_<name> headers: a JSON object of strings (hs_event_extensions()),
     * borrowed, NULL for none. */
    const json_t *extensions;
} hs_event_meta;

/* The dataschema URI of a protobuf message type: "urn:healthsignals:proto:" + its full name, e.g.
 * "urn:healthsignals:proto:healthsignals.v1.IndicatorObservation". The package's major version (v1) is the
 * schema version: within it fields are only ever added (the schema-compatibility test checks it), so one
 * URI serves every revision. */
void hs_event_dataschema(char out[160], const char *type);

/* Whether `text` is an RFC 3339 date-time ("2023-09-04T10:15:00Z", "2023-09-04T12:15:00.5+02:00"), with
 * the calendar checked (no 2023-02-30, no hour 24). */
bool hs_event_time_valid(const char *text);

/* Deterministic event id: 32 hex digits of XXH3-128 over topic, key and value bytes, so the same fact
 * published twice has the same id and a subscriber can de-duplicate. Services derive theirs from the output
 * key and the input offsets instead (same function, those bytes as `value`). */
void hs_event_id(char out[72], const char *topic, const char *key, const void *value, size_t value_len);

/* The current time as RFC 3339 UTC with milliseconds ("2023-09-04T10:15:00.123Z"). */
void hs_event_time_now(char out[40]);

/* Appends the CloudEvents binary-mode headers of `meta` to `headers`: ce_subject when `key` is not NULL,
 * content-type and ce_dataschema only when has_value (a tombstone has no data to describe), and ce_<name>
 * for every extension in meta->extensions. */
void hs_event_add_headers(rd_kafka_headers_t *headers, const hs_event_meta *meta, const char *key,
                          bool has_value);

/* Reads the CloudEvents headers of a consumed record into `meta`; missing ones are left empty, and
 * meta->extensions is NULL (hs_event_read_extensions() has them). */
void hs_event_read_headers(const rd_kafka_message_t *record, hs_event_meta *meta);

/* The extension attributes of a consumed record (every ce_<name> header but those of hs_event_meta and
 * ce_specversion/ce_subject) as a new JSON object of strings, non-UTF-8 bytes escaped as \xNN; NULL when
 * there is none. */
json_t *hs_event_read_extensions(const rd_kafka_message_t *record);

/* The extension attributes of a structured-mode event: every attribute CloudEvents does not define, as a
 * new JSON object name -> string (numbers and booleans in their JSON text), which the caller json_decref()s
 * (*out NULL when there is none). Attributes whose names begin with "hs" are this project's diagnostics of
 * dead letters (hserror, hssourcetopic, ...: see hsctl tail) and are left out; their names go to `dropped`
 * (may be NULL), comma-separated — but for hspartition, the partition hsctl tail says a record was on, which
 * is left out silently (a republished record is placed by its grouping key). Errors: a name that is not
 * lowercase letters and digits (CloudEvents naming), a value that is an object or array. */
hs_err hs_event_extensions(const json_t *event, json_t **out, char dropped[256], hs_error *error);

/* The structured-mode JSON of an event: `value` NULL means a tombstone. Returns a new reference, NULL only
 * when out of memory. */
json_t *hs_event_to_json(const hs_event_meta *meta, const char *key, const ProtobufCMessage *value);

/* Parses one structured-mode event. The topic is found from `type` in the registry; `data` (proto3 JSON) or
 * `data_base64` (the protobuf bytes, which must decode as the topic's message) is decoded into *value (a new
 * message the caller frees with protobuf_c_message_free_unpacked(*value, NULL)), or *value is NULL for a
 * tombstone — `"data": null`, never a missing `data` — which must then carry its key in `subject`. A dead
 * letter (type HS_EVENT_TYPE_DEAD_LETTER, as hsctl tail prints them) stands for the record it holds: the
 * topic is its `hssourcetopic`, meta->type that topic's, and its own id, source and time are not kept. `key`
 * receives the subject, or the key computed from the value when there is no subject. `time` must be RFC 3339;
 * `dataschema`, when given, the topic's. Errors name the attribute or the data field path. */
hs_err hs_event_from_json(const json_t *event, const hs_topic **topic, ProtobufCMessage **value,
                          hs_event_meta *meta, char key[HS_KEY_MAX], hs_error *error);

#endif
