/* The text form of every event: one generic mapper between any protobuf-c message and the canonical proto3
 * JSON mapping (docs/design.md §8), driven by the message descriptor, so that no message type
 * is mapped by hand. The CLI, offline mode and tests read and write events through it; CloudEvents envelopes
 * put its output under "data".
 */
#ifndef HS_JSON_H
#define HS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "hs/err.h"

/* Canonical proto3 JSON of `msg` as a new jansson object, which the caller json_decref()s; NULL only when out
 * of memory. Keys are the lowerCamelCase field names in field-number order. A field is left out when it has
 * its default value (0, false, "", empty list or map, enum 0, absent submessage), except a field inside a
 * oneof (how this project marks presence), which is written whenever its oneof selects it, even if zero.
 * 64-bit integers are decimal strings, enums their names (a number not in the enum stays a number), bytes
 * standard base64, non-finite floats the strings "NaN", "Infinity" and "-Infinity". A string that is not
 * valid UTF-8 is written with each byte that does not begin a well-formed sequence replaced by U+FFFD, so a
 * field never disappears; such a string therefore does not round-trip byte for byte. */
json_t *hs_json_from_message(const ProtobufCMessage *msg);

/* Builds a new message of type `desc` from the JSON object `json` (which is not modified). On success returns
 * the message, which the caller frees with protobuf_c_message_free_unpacked(msg, NULL): everything in it is
 * allocated with malloc. On failure returns NULL and sets `error` (which may be NULL) to HS_ERR_PARSE, or
 * HS_ERR_NOMEM, with a reason that starts with the path of the offending field: "scope.code: expected a
 * string, got number", "labels.team: ...", "qualityFlags[2]: ...", "volum: unknown field".
 * Accepted: both the lowerCamelCase and the proto name of a field (not both at once); null for "default";
 * integers as JSON numbers or decimal strings (exponent forms too, if the value is a whole number in range);
 * floats as numbers, numeric strings or "NaN"/"Infinity"/"-Infinity"; enums by name or number; bytes as
 * standard or URL-safe base64, padded or not. Everything else (wrong JSON types, unknown fields, fractions or
 * out-of-range values for integers, strings holding NUL, nesting deeper than 64 messages) is rejected. */
ProtobufCMessage *hs_json_to_message(const ProtobufCMessageDescriptor *desc, const json_t *json,
                                     hs_error *error);

/* Called with the path of each unknown field hs_json_drop_unknown_fields removes ("scope.region",
 * "labels.team.extra", "items[2].note"); the string lives until the call returns. */
typedef void (*hs_json_unknown_fn)(void *ctx, const char *path);

/* The proto3 JSON mapping's "ignore unknown fields" option, for JSON written against a newer schema: removes
 * from `json` (an object to be read as a message of type `desc`) every member that names no field, at any
 * depth — in submessages, in lists and in maps of messages — so that hs_json_to_message() then reads the
 * rest. Calls `on_unknown` (which may be NULL) for each and returns how many were removed. Everything else,
 * including a known field of the wrong JSON type and an enum name this version does not know, is left for
 * hs_json_to_message() to refuse: only the fields a reader cannot know are ignored, never a bad value. */
size_t hs_json_drop_unknown_fields(const ProtobufCMessageDescriptor *desc, json_t *json,
                                   hs_json_unknown_fn on_unknown, void *ctx);

/* hs_json_from_message() as compact JSON text: a malloc'd, NUL-terminated string the caller free()s; NULL
 * only when out of memory. Doubles are printed with 17 significant digits (jansson's "%.17g"), so that every
 * value reads back exactly: 0.1 appears as 0.10000000000000001. */
char *hs_json_encode_text(const ProtobufCMessage *msg);

/* hs_json_to_message() from the `len` bytes of JSON text at `text` (which need not be NUL-terminated).
 * Syntax errors and duplicate keys are HS_ERR_PARSE with the reason "line L column C: ...". */
ProtobufCMessage *hs_json_decode_text(const ProtobufCMessageDescriptor *desc, const char *text, size_t len,
                                      hs_error *error);

/* The JSON name protoc gives the proto field `name` ("quality_flags" -> "qualityFlags"), the key
 * hs_json_from_message() writes, into `out` (at most `size` - 1 bytes, always terminated). For describing
 * the mapping elsewhere (hsctl contracts asyncapi). */
void hs_json_field_name(const char *name, char *out, size_t size);

/* Whether `field` is a map (protobuf-c marks none: a repeated "...Entry" message of key = 1, value = 2),
 * which the JSON mapping writes as an object. */
bool hs_json_field_is_map(const ProtobufCFieldDescriptor *field);

/* The size of one element of a repeated field of `type` in the arrays protobuf-c lays out (4 for an enum, a
 * pointer for a string or a message). */
size_t hs_json_element_size(ProtobufCType type);
/* A JSON string of the `len` bytes at `s` for diagnostics (error messages, keys, headers): each byte that
 * does not begin a well-formed UTF-8 sequence is written as the four characters \xNN, so the text is valid
 * JSON, nothing is dropped and the operator sees the bytes it quotes. New reference; NULL only when out of
 * memory. `s` NULL gives "". */
json_t *hs_json_string_escaped(const char *s, size_t len);

/* `text` as valid UTF-8: a malloc'd copy, which the caller free()s, with every byte that does not begin a
 * well-formed sequence replaced by U+FFFD (as hs_json_from_message() writes strings); NULL when out of memory
 * or `text` is NULL. For text that must be UTF-8 on the way out (Alertmanager's labels and annotations). */
char *hs_json_utf8_replaced(const char *text);

/* Standard, padded base64 of `len` bytes (`data` may be NULL for none): a malloc'd, NUL-terminated string the
 * caller free()s; NULL only when out of memory. */
char *hs_json_base64_encode(const void *data, size_t len);

/* Decodes base64 of either alphabet, padded or not, into a malloc'd buffer in `*out` (NULL for no bytes) of
 * `*out_len` bytes, which the caller free()s. HS_ERR_PARSE "not valid base64", or HS_ERR_NOMEM. */
hs_err hs_json_base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len, hs_error *error);

#endif
