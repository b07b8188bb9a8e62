/* The wire format of record values: bare protobuf (the default), or, opted into with a schema registry
 * (hs/schema_registry.h), Confluent's framing of the same bytes, which Confluent's and Apicurio's
 * serializers write and read (docs/producers.md, "Schema registry"):
 *
 *   byte 0      magic byte 0
 *   bytes 1-4   the schema id the registry gave the value's schema, big-endian
 *   then        the message indexes: the path of the value's message type in its .proto file, as the count
 *               followed by each index, every number a zigzag varint (Kafka's varint); the path [0] (the
 *               file's first message) is written as the single count 0
 *   then        the protobuf bytes of the value, as when bare
 *
 * Readers accept both, whatever they are configured with: a value that starts with byte 0 is framed, any
 * other is bare. No bare value can start with 0: a protobuf message's first byte is the tag of a field,
 * and field number 0 does not exist, so 0x00 is never a valid first byte (an empty message is no bytes at
 * all). A framed value is decoded as the topic's type only when its message indexes name that type in its
 * .proto file; its schema id is not checked against a registry (a consumer needs none to read), so a
 * writer's schema must be a version of the subject that the type can read, which the registry's
 * compatibility check (BACKWARD by default) ensures for what is registered under the topic's subject.
 */
#ifndef HS_WIRE_H
#define HS_WIRE_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hs/err.h"
#include "hs/topic.h"

#define HS_WIRE_MAGIC       0
#define HS_WIRE_MAX_INDEXES 16 /* nesting depth of a message path this reader accepts */
/* The longest header: magic, id, and a count and HS_WIRE_MAX_INDEXES indexes of at most 5 bytes each. */
#define HS_WIRE_HEADER_MAX (1 + 4 + 5 * (1 + HS_WIRE_MAX_INDEXES))

/* A message type's place in its .proto file: indexes[0] among the file's top-level messages, indexes[1]
 * among that message's nested messages, and so on (enums, services and fields are not counted). */
typedef struct hs_wire_path {
    int32_t indexes[HS_WIRE_MAX_INDEXES];
    size_t count;
} hs_wire_path;

/* What a framed value's header says. */
typedef struct hs_wire_frame {
    int32_t schema_id;
    hs_wire_path path;
    size_t header_len; /* the protobuf bytes start here */
} hs_wire_frame;

/* Writes the header of a value with `schema_id` and message `path` to `out`; returns its length. */
size_t hs_wire_header(uint8_t out[HS_WIRE_HEADER_MAX], int32_t schema_id, const hs_wire_path *path);

/* True when `bytes` (`len` of them) are framed: they start with the magic byte. */
bool hs_wire_is_framed(const uint8_t *bytes, size_t len);

/* Reads the header of a framed value. HS_ERR_DECODE when it is cut short, a varint runs over 5 bytes or
 * out of the value, the count is negative or above HS_WIRE_MAX_INDEXES, or an index is negative. */
hs_err hs_wire_parse(const uint8_t *bytes, size_t len, hs_wire_frame *frame, hs_error *error);

/* Kafka's zigzag varint of `value` (as in the message indexes) into `out`; returns its length (1..5). */
size_t hs_wire_put_varint(uint8_t out[5], int32_t value);

/* --- Schemas ---------------------------------------------------------------------------------------------
 */

/* The text of a .proto file of the contracts, embedded at build time from proto/. */
typedef struct hs_proto_source {
    const char *path; /* "healthsignals/v1/indicator.proto", as imported */
    const char *text;
} hs_proto_source;

/* Every .proto file of the contracts; `*count` receives their number. Static storage. */
const hs_proto_source *hs_proto_sources(size_t *count);

/* The embedded file at `path`, or NULL. */
const hs_proto_source *hs_proto_source_find(const char *path);

/* The path of message `full_name` ("healthsignals.v1.Rule", or a nested "pkg.Outer.Inner") in the .proto
 * source `text`, read as protoc would see its declarations (comments, strings and option values skipped).
 * HS_ERR_NOT_FOUND when the file does not declare it (another package, another file); HS_ERR_PARSE when the
 * braces do not balance or a path is deeper than HS_WIRE_MAX_INDEXES. */
hs_err hs_wire_message_path(const char *text, const char *full_name, hs_wire_path *path, hs_error *error);

/* The imports of the .proto source `text`, in order: calls `fn` with each imported path (not
 * NUL-terminated: `len` bytes). Stops at, and returns, the first error `fn` returns. */
hs_err hs_wire_imports(const char *text,
                       hs_err (*fn)(void *ctx, const char *path, size_t len, hs_error *error), void *ctx,
                       hs_error *error);

/* The embedded file that declares message type `descriptor`, and its path in it. HS_ERR_NOT_FOUND when no
 * embedded file does. */
hs_err hs_wire_locate(const ProtobufCMessageDescriptor *descriptor, const hs_proto_source **file,
                      hs_wire_path *path, hs_error *error);

/* --- This process's writers and readers ------------------------------------------------------------------
 */

/* From now on, values this process produces to `topic` are framed with `schema_id` (see the top). Set at
 * start-up, before the first record; thread-safe. HS_ERR_INTERNAL for a topic without a type. */
hs_err hs_wire_enable(const hs_topic *topic, int32_t schema_id, hs_error *error);

/* The schema id values of `topic` are framed with, or -1 when they go bare. */
int32_t hs_wire_schema_id(const hs_topic *topic);

/* The bytes to produce for a packed `value` of `topic` (`len` bytes): `value` itself when the topic goes
 * bare; otherwise header and value in `small` when they fit (`small_size` bytes), else in a new buffer the
 * caller frees. NULL only when out of memory. */
const uint8_t *hs_wire_frame_value(const hs_topic *topic, const uint8_t *value, size_t len, uint8_t *small,
                                   size_t small_size, size_t *out_len);

/* The protobuf bytes of a record value of message type `descriptor`: the value itself when bare; after the
 * header when framed and its message indexes name `descriptor`. HS_ERR_DECODE with the reason otherwise
 * ("framed value names message [1] of healthsignals/v1/rule.proto, not healthsignals.v1.Rule ([0])"). */
hs_err hs_wire_payload(const ProtobufCMessageDescriptor *descriptor, const uint8_t *bytes, size_t len,
                       const uint8_t **payload, size_t *payload_len, hs_error *error);

/* protobuf_c_message_unpack() of a record value, bare or framed (hs_wire_payload()); NULL when it is neither
 * a valid framing of `descriptor` nor a valid `descriptor`. */
ProtobufCMessage *hs_wire_unpack(const ProtobufCMessageDescriptor *descriptor, ProtobufCAllocator *allocator,
                                 size_t len, const uint8_t *bytes);

#endif
