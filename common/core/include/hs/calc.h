/* The contract between a service's calculation and whatever drives it — the Kafka runtime, or the offline
 * mode (`hsctl calc`). A calculation is a pure state machine over tables: it is handed one fact at a time
 * (a decoded value, or a tombstone of a key) and emits the outputs whose value may have changed, each as a
 * new value or a deletion of an output key. It does no I/O and knows nothing of Kafka. The driver owns
 * everything else, including the rule that only outputs whose bytes changed are published: a calculation
 * may emit the same value again, and it is dropped.
 */
#ifndef HS_CALC_H
#define HS_CALC_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hs/err.h"
#include "hs/table.h"
#include "hs/topic.h"

/* Where a calculation's outputs go; provided by the driver (the runtime, or the offline mode), which embeds
 * it as the first member of its own emitter and implements `put`, and may implement `put_packed` for a
 * value its caller has packed already (NULL: `put` is used). */
typedef struct hs_emit hs_emit;
struct hs_emit {
    hs_err (*put)(hs_emit *self, const hs_topic *topic, const char *key, const ProtobufCMessage *value);
    hs_err (*put_packed)(hs_emit *self, const hs_topic *topic, const char *key, const uint8_t *bytes,
                         size_t len);
};

/* Emits `value` (a message of topic->value_type, packed and copied now: the caller keeps ownership) for
 * `key` of output `topic`, or a deletion of `key` when `value` is NULL. */
hs_err hs_emit_put(hs_emit *emit, const hs_topic *topic, const char *key, const ProtobufCMessage *value);

/* hs_emit_put() of a value its caller has packed anyway: `bytes` (`len` of them) must be exactly what
 * protobuf_c_message_pack(value) writes. A driver with `put_packed` takes the bytes and does not pack again;
 * any other gets `value`. */
hs_err hs_emit_put_packed(hs_emit *emit, const hs_topic *topic, const char *key,
                          const ProtobufCMessage *value, const uint8_t *bytes, size_t len);

typedef struct hs_calc {
    const char *name;           /* the service: "targets"; also the `service` its rules name */
    const char *description;    /* one line for --help and hsctl calc --list */
    const char *const *inputs;  /* NULL-terminated fact topics, e.g. {HS_TOPIC_INDICATORS, NULL} */
    const char *const *outputs; /* NULL-terminated output topics */
    bool uses_rules;            /* the driver feeds hs.rules.v1 records whose service is `name` */

    /* A new, empty state; NULL when out of memory. */
    void *(*create)(void);
    void (*destroy)(void *state);

    /* Applies one fact of `topic` with record key `key`: `value` is the decoded message, already
     * validated, or NULL for a tombstone. Emits every output the fact may have changed. Returns HS_OK, or
     * an error for a fact the calculation cannot use (the driver dead-letters it); on error the state is
     * as before the call. */
    hs_err (*apply)(void *state, const hs_topic *topic, const char *key, const ProtobufCMessage *value,
                    hs_emit *emit, hs_error *error);
} hs_calc;

#endif
