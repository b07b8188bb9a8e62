/* The generic mapper between protobuf-c messages and canonical proto3 JSON (see hs/json.h). Both directions
 * walk the ProtobufCMessageDescriptor: each field's label, type and offsets say where its value lives in the
 * C struct and how it is written in JSON. Encoding builds a jansson tree; decoding fills a fresh message,
 * checks every value against its field and, on the first one that does not fit, reports the path to it.
 * Field presence follows protobuf-c's own packer, so that JSON and the wire format agree on what is set.
 */
#include "hs/json.h"

#include <assert.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How deep messages may nest in JSON input: bounds the recursion that hostile input to a recursive type
 * could otherwise drive to stack exhaustion. */
#define JSON_MAX_DEPTH 64

/* ---- descriptors -------------------------------------------------------------------------------------- */

static const void *const_member(const ProtobufCMessage *msg, unsigned offset)
{
    return (const char *)msg + offset;
}

static void *member(ProtobufCMessage *msg, unsigned offset)
{
    return (char *)msg + offset;
}

size_t hs_json_element_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM: return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    }
    return 0;
}

/* The .proto spelling of a scalar type, for error reasons ("out of range for int32"). */
static const char *type_name(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32: return "int32";
    case PROTOBUF_C_TYPE_SINT32: return "sint32";
    case PROTOBUF_C_TYPE_SFIXED32: return "sfixed32";
    case PROTOBUF_C_TYPE_INT64: return "int64";
    case PROTOBUF_C_TYPE_SINT64: return "sint64";
    case PROTOBUF_C_TYPE_SFIXED64: return "sfixed64";
    case PROTOBUF_C_TYPE_UINT32: return "uint32";
    case PROTOBUF_C_TYPE_FIXED32: return "fixed32";
    case PROTOBUF_C_TYPE_UINT64: return "uint64";
    case PROTOBUF_C_TYPE_FIXED64: return "fixed64";
    case PROTOBUF_C_TYPE_FLOAT: return "float";
    case PROTOBUF_C_TYPE_DOUBLE: return "double";
    case PROTOBUF_C_TYPE_BOOL: return "bool";
    case PROTOBUF_C_TYPE_ENUM: return "enum";
    case PROTOBUF_C_TYPE_STRING: return "string";
    case PROTOBUF_C_TYPE_BYTES: return "bytes";
    case PROTOBUF_C_TYPE_MESSAGE: return "message";
    }
    return "unknown";
}

static bool is_integer_type(ProtobufCType type)
{
    return type <= PROTOBUF_C_TYPE_FIXED64;
}

static bool is_signed_type(ProtobufCType type)
{
    return type <= PROTOBUF_C_TYPE_SFIXED64;
}

static bool is_64bit_type(ProtobufCType type)
{
    return hs_json_element_size(type) == 8;
}

/* Fields whose C member is a pointer (NULL when absent) rather than a value with a has_ flag. */
static bool is_pointer_type(ProtobufCType type)
{
    return type == PROTOBUF_C_TYPE_STRING || type == PROTOBUF_C_TYPE_MESSAGE;
}

static bool ends_with(const char *text, const char *suffix)
{
    size_t len = strlen(text), suffix_len = strlen(suffix);
    return len >= suffix_len && strcmp(text + len - suffix_len, suffix) == 0;
}

/* protobuf-c descriptors do not mark map entries, so a map is recognised by its shape: a repeated field of a
 * message type named "...Entry" that has exactly `key = 1` (integral, bool or string) and `value = 2`. */
static bool field_is_map(const ProtobufCFieldDescriptor *field)
{
    if (field->label != PROTOBUF_C_LABEL_REPEATED || field->type != PROTOBUF_C_TYPE_MESSAGE)
        return false;
    const ProtobufCMessageDescriptor *entry = field->descriptor;
    if (!ends_with(entry->short_name, "Entry") || entry->n_fields != 2)
        return false;
    const ProtobufCFieldDescriptor *key = &entry->fields[0], *value = &entry->fields[1];
    bool key_type_ok = is_integer_type(key->type) || key->type == PROTOBUF_C_TYPE_BOOL ||
                       key->type == PROTOBUF_C_TYPE_STRING;
    return key->id == 1 && strcmp(key->name, "key") == 0 && key_type_ok && value->id == 2 &&
           strcmp(value->name, "value") == 0 && value->label != PROTOBUF_C_LABEL_REPEATED;
}

/* The next character of the JSON name of a proto field name, as protoc computes json_name: each '_' is
 * dropped and the letter after it upper-cased ("quality_flags" -> "qualityFlags"). Advances `*p`; returns
 * '\0' at the end. */
static char json_name_next(const char **p)
{
    bool upper = false;
    for (; **p == '_'; (*p)++)
        upper = true;
    char c = **p;
    if (c)
        (*p)++;
    return upper && c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* Writes the JSON name of proto field `name` into `buf` when it fits in `cap` bytes, else into a malloc'd
 * string. Returns the name (the caller frees it when it is not `buf`); NULL when out of memory. */
static char *json_name(const char *name, char *buf, size_t cap)
{
    char *out = strlen(name) < cap ? buf : malloc(strlen(name) + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    while ((out[n] = json_name_next(&name)) != '\0')
        n++;
    return out;
}

void hs_json_field_name(const char *name, char *out, size_t size)
{
    size_t n = 0;
    char c;
    while (n + 1 < size && (c = json_name_next(&name)) != '\0')
        out[n++] = c;
    if (size)
        out[n] = '\0';
}

bool hs_json_field_is_map(const ProtobufCFieldDescriptor *field)
{
    return field_is_map(field);
}

/* Whether `key` is the JSON name of proto field `name`, compared without building the name. */
static bool is_json_name(const char *name, const char *key)
{
    char c;
    do {
        c = json_name_next(&name);
        if (*key++ != c)
            return false;
    } while (c);
    return true;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *desc, const char *key)
{
    for (unsigned i = 0; i < desc->n_fields; i++) {
        if (strcmp(desc->fields[i].name, key) == 0 || is_json_name(desc->fields[i].name, key))
            return &desc->fields[i];
    }
    return NULL;
}

static const ProtobufCFieldDescriptor *find_field_by_id(const ProtobufCMessageDescriptor *desc, uint32_t id)
{
    for (unsigned i = 0; i < desc->n_fields; i++) {
        if (desc->fields[i].id == id)
            return &desc->fields[i];
    }
    return NULL;
}

/* A new message of type `desc` in its initial state, allocated with malloc so that
 * protobuf_c_message_free_unpacked() can free it; NULL when out of memory. */
static ProtobufCMessage *new_message(const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *msg = malloc(desc->sizeof_message);
    if (msg)
        protobuf_c_message_init(desc, msg);
    return msg;
}

/* ---- UTF-8 -------------------------------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at the start of the `n` > 0 bytes at `s`, or 0 when there is none
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_sequence_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    }
    return len;
}

/* Number of bytes in `s` that do not begin a well-formed UTF-8 sequence. */
static size_t utf8_invalid_bytes(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t bad = 0;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence_len(p + i, len - i);
        bad += n == 0;
        i += n ? n : 1;
    }
    return bad;
}

/* A malloc'd copy of `s` with each of its `bad` invalid bytes replaced by U+FFFD (EF BF BD), or with `escape`
 * by the four characters \xNN; its length goes to `*out_len`. NULL when out of memory. */
static char *utf8_repaired(const char *s, size_t len, size_t bad, bool escape, size_t *out_len)
{
    static const char hex[] = "0123456789abcdef";
    char *out = malloc(len + 3 * bad + 1);
    if (!out)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t seq = utf8_sequence_len(p + i, len - i);
        if (seq) {
            memcpy(out + n, p + i, seq);
            n += seq;
            i += seq;
        } else if (escape) {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[p[i] >> 4];
            out[n++] = hex[p[i] & 0xf];
            i++;
        } else {
            memcpy(out + n, "\xEF\xBF\xBD", 3);
            n += 3;
            i++;
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

char *hs_json_utf8_replaced(const char *text)
{
    if (!text)
        return NULL;
    size_t len = strlen(text), out_len;
    return utf8_repaired(text, len, utf8_invalid_bytes(text, len), false, &out_len);
}

json_t *hs_json_string_escaped(const char *s, size_t len)
{
    if (!s)
        return json_string("");
    size_t bad = utf8_invalid_bytes(s, len);
    if (bad == 0)
        return json_stringn_nocheck(s, len);
    size_t escaped_len;
    char *escaped = utf8_repaired(s, len, bad, true, &escaped_len);
    if (!escaped)
        return NULL;
    json_t *json = json_stringn_nocheck(escaped, escaped_len);
    free(escaped);
    return json;
}

/* ---- base64 (RFC 4648) -------------------------------------------------------------------------------- */

static const char base64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The standard, padded base64 of `len` bytes as a malloc'd string of `*out_len` characters; NULL when out of
 * memory. */
static char *base64_encode(const uint8_t *data, size_t len, size_t *out_len)
{
    size_t n = (len + 2) / 3 * 4;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t group = (uint32_t)data[i] << 16;
        if (i + 1 < len)
            group |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len)
            group |= data[i + 2];
        *o++ = base64_alphabet[(group >> 18) & 63];
        *o++ = base64_alphabet[(group >> 12) & 63];
        *o++ = i + 1 < len ? base64_alphabet[(group >> 6) & 63] : '=';
        *o++ = i + 2 < len ? base64_alphabet[group & 63] : '=';
    }
    *o = '\0';
    *out_len = n;
    return out;
}

/* The 6-bit value of a base64 character of either alphabet (standard "+/" or URL-safe "-_"), or -1. */
static int base64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

typedef enum base64_status { BASE64_OK, BASE64_INVALID, BASE64_NOMEM } base64_status;

/* Decodes base64 text of either alphabet, padded (to a multiple of 4 characters) or not, into a malloc'd
 * buffer in `*out` (data NULL for no bytes). Leftover bits of a final partial group are ignored, as the
 * proto3 parsers do. */
static base64_status base64_decode(const char *text, size_t len, ProtobufCBinaryData *out)
{
    size_t padding = 0;
    while (padding < 2 && len > padding && text[len - 1 - padding] == '=')
        padding++;
    if (padding > 0 && len % 4 != 0)
        return BASE64_INVALID;
    len -= padding;
    if (len % 4 == 1)
        return BASE64_INVALID;
    for (size_t i = 0; i < len; i++) {
        if (base64_value(text[i]) < 0)
            return BASE64_INVALID;
    }
    size_t n = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
    if (n == 0) {
        *out = (ProtobufCBinaryData){0, NULL};
        return BASE64_OK;
    }
    uint8_t *data = malloc(n);
    if (!data)
        return BASE64_NOMEM;
    uint32_t group = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        group = group << 6 | (uint32_t)base64_value(text[i]);
        if (i % 4 == 3) {
            data[o++] = (uint8_t)(group >> 16);
            data[o++] = (uint8_t)(group >> 8);
            data[o++] = (uint8_t)group;
        }
    }
    if (len % 4 == 2) {
        data[o++] = (uint8_t)(group >> 4);
    } else if (len % 4 == 3) {
        data[o++] = (uint8_t)(group >> 10);
        data[o++] = (uint8_t)(group >> 2);
    }
    assert(o == n);
    out->len = n;
    out->data = data;
    return BASE64_OK;
}

char *hs_json_base64_encode(const void *data, size_t len)
{
    size_t out_len;
    return base64_encode(data, data ? len : 0, &out_len);
}

hs_err hs_json_base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len, hs_error *error)
{
    ProtobufCBinaryData bytes;
    *out = NULL;
    *out_len = 0;
    switch (base64_decode(text, len, &bytes)) {
    case BASE64_OK: break;
    case BASE64_INVALID: return hs_error_set(error, HS_ERR_PARSE, "not valid base64");
    case BASE64_NOMEM: return hs_error_set(error, HS_ERR_NOMEM, "out of memory decoding base64");
    }
    *out = bytes.data;
    *out_len = bytes.len;
    return HS_OK;
}

/* ---- message -> JSON ---------------------------------------------------------------------------------- */

static json_t *message_to_json(const ProtobufCMessage *msg);

/* A JSON string of the `len` bytes at `s`. jansson takes only UTF-8, and a field must not vanish because a
 * byte of it is broken, so invalid bytes become U+FFFD (see hs_json_from_message). */
static json_t *string_to_json(const char *s, size_t len)
{
    size_t bad = utf8_invalid_bytes(s, len);
    if (bad == 0)
        return json_stringn_nocheck(s, len);
    size_t repaired_len;
    char *repaired = utf8_repaired(s, len, bad, false, &repaired_len);
    if (!repaired)
        return NULL;
    json_t *json = json_stringn_nocheck(repaired, repaired_len);
    free(repaired);
    return json;
}

/* Sets `key` (`len` bytes, repaired like string_to_json) in `object` to `value`, taking the reference to
 * `value` in every case; 0 or -1 when out of memory. */
static int object_set(json_t *object, const char *key, size_t len, json_t *value)
{
    if (!value)
        return -1;
    size_t bad = utf8_invalid_bytes(key, len);
    if (bad == 0)
        return json_object_setn_new_nocheck(object, key, len, value);
    size_t repaired_len;
    char *repaired = utf8_repaired(key, len, bad, false, &repaired_len);
    if (!repaired) {
        json_decref(value);
        return -1;
    }
    int rc = json_object_setn_new_nocheck(object, repaired, repaired_len, value);
    free(repaired);
    return rc;
}

/* JSON has no NaN or infinities; proto3 JSON spells them as strings. */
static json_t *real_to_json(double value)
{
    if (isnan(value))
        return json_string("NaN");
    if (isinf(value))
        return json_string(value > 0 ? "Infinity" : "-Infinity");
    /* Whole numbers (most published figures: 83 %, 43 days) print as 83, not jansson's 83.0; below 2^53 the
     * integer is exact, and readers take it back as the same double. -0.0 keeps its sign as a real. */
    if (value == trunc(value) && fabs(value) < 9007199254740992.0 && !(value == 0 && signbit(value)))
        return json_integer((json_int_t)value);
    return json_real(value);
}

/* 64-bit integers are strings: JSON readers that hold numbers as doubles would round them above 2^53. */
static json_t *int64_to_json(int64_t value)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, value);
    return json_string(text);
}

static json_t *uint64_to_json(uint64_t value)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, value);
    return json_string(text);
}

static json_t *enum_to_json(const ProtobufCEnumDescriptor *desc, int value)
{
    const ProtobufCEnumValue *known = protobuf_c_enum_descriptor_get_value(desc, value);
    return known ? json_string(known->name) : json_integer(value);
}

static json_t *bytes_to_json(const ProtobufCBinaryData *bytes)
{
    size_t len;
    char *text = base64_encode(bytes->data, bytes->len, &len);
    if (!text)
        return NULL;
    json_t *json = json_stringn_nocheck(text, len);
    free(text);
    return json;
}

/* JSON of the single value of `field` stored at `slot` (a struct member or an element of a repeated array);
 * NULL when out of memory. */
static json_t *value_to_json(const ProtobufCFieldDescriptor *field, const void *slot)
{
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: return json_integer(*(const int32_t *)slot);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return json_integer(*(const uint32_t *)slot);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: return int64_to_json(*(const int64_t *)slot);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return uint64_to_json(*(const uint64_t *)slot);
    case PROTOBUF_C_TYPE_FLOAT: return real_to_json(*(const float *)slot);
    case PROTOBUF_C_TYPE_DOUBLE: return real_to_json(*(const double *)slot);
    case PROTOBUF_C_TYPE_BOOL: return json_boolean(*(const protobuf_c_boolean *)slot);
    case PROTOBUF_C_TYPE_ENUM: return enum_to_json(field->descriptor, *(const int *)slot);
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)slot;
        return s ? string_to_json(s, strlen(s)) : json_string("");
    }
    case PROTOBUF_C_TYPE_BYTES: return bytes_to_json(slot);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)slot;
        return sub ? message_to_json(sub) : json_object();
    }
    }
    return NULL;
}

/* Whether the proto3 scalar at `slot` has its default value; the same test as protobuf-c's packer, so that a
 * value JSON leaves out is one the wire format leaves out too (-0.0 included). */
static bool value_is_default(const ProtobufCFieldDescriptor *field, const void *slot)
{
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM: return *(const uint32_t *)slot == 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return *(const uint64_t *)slot == 0;
    case PROTOBUF_C_TYPE_FLOAT: return *(const float *)slot == 0;
    case PROTOBUF_C_TYPE_DOUBLE: return *(const double *)slot == 0;
    case PROTOBUF_C_TYPE_BOOL: return *(const protobuf_c_boolean *)slot == 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)slot;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)slot)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE: return *(ProtobufCMessage *const *)slot == NULL;
    }
    return true;
}

/* Whether `field` of `msg` is written: the rules of protobuf-c's packer, per label. */
static bool field_is_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field)
{
    const void *slot = const_member(msg, field->offset);
    const void *quantifier = const_member(msg, field->quantifier_offset);
    if (field->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)quantifier > 0;
    if (field->label == PROTOBUF_C_LABEL_REQUIRED)
        return true;
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        if (*(const uint32_t *)quantifier != field->id)
            return false;
        return !is_pointer_type(field->type) || *(void *const *)slot != NULL;
    }
    if (field->label == PROTOBUF_C_LABEL_OPTIONAL) {
        if (!is_pointer_type(field->type))
            return *(const protobuf_c_boolean *)quantifier;
        const void *ptr = *(void *const *)slot;
        return ptr != NULL && ptr != field->default_value;
    }
    return !value_is_default(field, slot);
}

static json_t *repeated_to_json(const ProtobufCFieldDescriptor *field, const void *array, size_t n)
{
    json_t *json = json_array();
    size_t size = hs_json_element_size(field->type);
    for (size_t i = 0; json && i < n; i++) {
        json_t *value = value_to_json(field, (const char *)array + i * size);
        if (!value || json_array_append_new(json, value) != 0) {
            json_decref(json);
            json = NULL;
        }
    }
    return json;
}

/* Sets the key and value of one map entry in `object`; JSON keys are strings, so integer and bool keys are
 * written as text. A later entry with the same key replaces an earlier one, as in every protobuf
 * implementation. Returns 0, or -1 when out of memory. */
static int map_entry_set(json_t *object, const ProtobufCMessage *entry)
{
    const ProtobufCFieldDescriptor *key_field = &entry->descriptor->fields[0];
    const ProtobufCFieldDescriptor *value_field = &entry->descriptor->fields[1];
    const void *slot = const_member(entry, key_field->offset);
    char text[24];
    const char *key = text;
    switch (key_field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: snprintf(text, sizeof text, "%" PRId32, *(const int32_t *)slot); break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: snprintf(text, sizeof text, "%" PRIu32, *(const uint32_t *)slot); break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: snprintf(text, sizeof text, "%" PRId64, *(const int64_t *)slot); break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: snprintf(text, sizeof text, "%" PRIu64, *(const uint64_t *)slot); break;
    case PROTOBUF_C_TYPE_BOOL: key = *(const protobuf_c_boolean *)slot ? "true" : "false"; break;
    default: key = *(char *const *)slot ? *(char *const *)slot : ""; break;
    }
    json_t *value = value_to_json(value_field, const_member(entry, value_field->offset));
    return object_set(object, key, strlen(key), value);
}

/* A map field (repeated entry messages with key and value, see field_is_map) as a JSON object. */
static json_t *map_to_json(ProtobufCMessage *const *entries, size_t n)
{
    json_t *json = json_object();
    for (size_t i = 0; json && i < n; i++) {
        if (entries[i] && map_entry_set(json, entries[i]) != 0) {
            json_decref(json);
            json = NULL;
        }
    }
    return json;
}

static json_t *field_to_json(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field)
{
    const void *slot = const_member(msg, field->offset);
    if (field->label != PROTOBUF_C_LABEL_REPEATED)
        return value_to_json(field, slot);
    size_t n = *(const size_t *)const_member(msg, field->quantifier_offset);
    const void *array = *(void *const *)slot;
    return field_is_map(field) ? map_to_json(array, n) : repeated_to_json(field, array, n);
}

static json_t *message_to_json(const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    assert(desc && desc->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
    json_t *json = json_object();
    /* protobuf-c keeps fields sorted by number, so keys come out in field-number order. */
    for (unsigned i = 0; json && i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &desc->fields[i];
        if (!field_is_present(msg, field))
            continue;
        char buf[64];
        char *name = json_name(field->name, buf, sizeof buf);
        json_t *value = name ? field_to_json(msg, field) : NULL;
        if (!value || json_object_set_new_nocheck(json, name, value) != 0) {
            json_decref(json);
            json = NULL;
        }
        if (name != buf)
            free(name);
    }
    return json;
}

json_t *hs_json_from_message(const ProtobufCMessage *msg)
{
    return message_to_json(msg);
}

char *hs_json_encode_text(const ProtobufCMessage *msg)
{
    json_t *json = hs_json_from_message(msg);
    if (!json)
        return NULL;
    char *text = json_dumps(json, JSON_COMPACT);
    json_decref(json);
    return text;
}

/* ---- JSON -> message: reading values ------------------------------------------------------------------ */

/* The state of one decode: where it is (the path of the value being read, for error reasons) and how deep. */
typedef struct decoder {
    hs_error *error;
    unsigned depth;
    size_t path_len;
    char path[192];
} decoder;

/* Appends `prefix` and `segment` to the path; returns the previous length, to be given back to path_pop().
 * A path too long for the buffer is cut (the error reason is cut to 256 bytes anyway). */
static size_t path_push(decoder *d, const char *prefix, const char *segment)
{
    size_t old = d->path_len;
    size_t room = sizeof d->path - old;
    int n = snprintf(d->path + old, room, "%s%s", prefix, segment);
    if (n > 0)
        d->path_len = (size_t)n < room ? old + (size_t)n : sizeof d->path - 1;
    return old;
}

/* "name" at the top, ".name" below it: the path of field or map key `name`. */
static size_t path_push_name(decoder *d, const char *name)
{
    return path_push(d, d->path_len ? "." : "", name);
}

static size_t path_push_index(decoder *d, size_t index)
{
    char text[32];
    snprintf(text, sizeof text, "[%zu]", index);
    return path_push(d, "", text);
}

static void path_pop(decoder *d, size_t len)
{
    d->path_len = len;
    d->path[len] = '\0';
}

/* Records the error that ends the decode, prefixed with the current path; returns false, for
 * `return fail(...)`. */
__attribute__((format(printf, 3, 4))) static bool fail(decoder *d, hs_err code, const char *fmt, ...)
{
    char reason[200];
    va_list ap;
    va_start(ap, fmt);
    /* clang-analyzer's valist check misfires when clang-tidy is given several files (LLVM bug 41311). */
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (d->path_len)
        hs_error_set(d->error, code, "%s: %s", d->path, reason);
    else
        hs_error_set(d->error, code, "%s", reason);
    return false;
}

static bool fail_nomem(decoder *d)
{
    return fail(d, HS_ERR_NOMEM, "out of memory");
}

static const char *json_type_name(const json_t *json)
{
    switch (json_typeof(json)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER:
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

static bool fail_type(decoder *d, const char *expected, const json_t *json)
{
    return fail(d, HS_ERR_PARSE, "expected %s, got %s", expected, json_type_name(json));
}

/* A short rendering of a scalar for an error reason: 2147483648, 1.5, "abc". */
static void describe(const json_t *json, char *buf, size_t cap)
{
    if (json_is_integer(json))
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(json));
    else if (json_is_real(json))
        snprintf(buf, cap, "%.17g", json_real_value(json));
    else if (json_is_string(json))
        snprintf(buf, cap, "\"%.40s%s\"", json_string_value(json),
                 json_string_length(json) > 40 ? "..." : "");
    else
        snprintf(buf, cap, "%s", json_type_name(json));
}

/* The text of a JSON string, or NULL when it holds a NUL, which a C string cannot. */
static const char *string_text(const json_t *json)
{
    const char *text = json_string_value(json);
    return strlen(text) == json_string_length(json) ? text : NULL;
}

/* Whether `s` is a number in JSON syntax: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool is_json_number(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9')
            s++;
    else
        return false;
    if (*s == '.') {
        if (!(*++s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

typedef enum number_status {
    NUMBER_OK,
    NUMBER_NOT_A_NUMBER,
    NUMBER_NOT_INTEGER,
    NUMBER_OUT_OF_RANGE
} number_status;

/* An integer as read from JSON: sign and magnitude, wide enough to check both the int64 and uint64 ranges. */
typedef struct integer {
    bool negative;
    uint64_t magnitude;
} integer;

static number_status integer_from_real(double value, integer *out)
{
    if (!isfinite(value) || value != floor(value))
        return NUMBER_NOT_INTEGER;
    if (fabs(value) >= 18446744073709551616.0) /* 2^64 */
        return NUMBER_OUT_OF_RANGE;
    out->negative = value < 0;
    out->magnitude = (uint64_t)fabs(value);
    return NUMBER_OK;
}

/* Reads an integer from a string: plain decimal digits exactly (the canonical form of 64-bit values, which
 * must not pass through a double), else any JSON number that is a whole number ("1e3"). */
static number_status integer_from_text(const char *s, integer *out)
{
    const char *p = s;
    out->negative = *p == '-';
    p += out->negative;
    uint64_t magnitude = 0;
    bool overflow = false;
    const char *digits = p;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned digit = (unsigned)(*p - '0');
        overflow |= magnitude > (UINT64_MAX - digit) / 10;
        magnitude = magnitude * 10 + digit;
    }
    if (*p == '\0' && p > digits) {
        out->magnitude = magnitude;
        return overflow ? NUMBER_OUT_OF_RANGE : NUMBER_OK;
    }
    if (!is_json_number(s))
        return NUMBER_NOT_A_NUMBER;
    errno = 0;
    double value = strtod(s, NULL);
    if (errno == ERANGE && isinf(value))
        return NUMBER_OUT_OF_RANGE;
    return integer_from_real(value, out);
}

static bool integer_fits(integer value, ProtobufCType type)
{
    if (value.negative && value.magnitude != 0 && !is_signed_type(type))
        return false;
    uint64_t max;
    if (is_signed_type(type))
        max = (is_64bit_type(type) ? (uint64_t)INT64_MAX : (uint64_t)INT32_MAX) + value.negative;
    else
        max = is_64bit_type(type) ? UINT64_MAX : UINT32_MAX;
    return value.magnitude <= max;
}

/* Stores an integer known to fit `type` (integer_fits) into the member at `slot`. */
static void integer_store(integer value, ProtobufCType type, void *slot)
{
    uint64_t bits = value.negative ? 0 - value.magnitude : value.magnitude; /* two's complement */
    if (is_64bit_type(type))
        *(uint64_t *)slot = bits;
    else
        *(uint32_t *)slot = (uint32_t)bits;
}

static bool fail_number(decoder *d, number_status status, const json_t *json, const char *type)
{
    char text[64];
    describe(json, text, sizeof text);
    if (status == NUMBER_NOT_A_NUMBER)
        return fail(d, HS_ERR_PARSE, "%s is not a number", text);
    if (status == NUMBER_NOT_INTEGER)
        return fail(d, HS_ERR_PARSE, "%s is not an integer", text);
    return fail(d, HS_ERR_PARSE, "%s is out of range for %s", text, type);
}

/* Reads an integer of `type` from a JSON number or string into `*out`; proto3 accepts both for every
 * integer type. */
static bool read_integer(decoder *d, const json_t *json, ProtobufCType type, integer *out)
{
    number_status status;
    if (json_is_integer(json)) {
        json_int_t value = json_integer_value(json);
        out->negative = value < 0;
        out->magnitude = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
        status = NUMBER_OK;
    } else if (json_is_real(json)) {
        status = integer_from_real(json_real_value(json), out);
    } else if (json_is_string(json)) {
        const char *text = string_text(json);
        status = text ? integer_from_text(text, out) : NUMBER_NOT_A_NUMBER;
    } else {
        return fail_type(d, "an integer", json);
    }
    if (status == NUMBER_OK && !integer_fits(*out, type))
        status = NUMBER_OUT_OF_RANGE;
    return status == NUMBER_OK || fail_number(d, status, json, type_name(type));
}

static bool decode_integer(decoder *d, const json_t *json, ProtobufCType type, void *slot)
{
    integer value = {0};
    if (!read_integer(d, json, type, &value))
        return false;
    integer_store(value, type, slot);
    return true;
}

/* Reads a float or double: a JSON number, a numeric string, or "NaN", "Infinity", "-Infinity". */
static bool decode_real(decoder *d, const json_t *json, ProtobufCType type, void *slot)
{
    double value;
    if (json_is_number(json)) {
        value = json_number_value(json);
    } else if (json_is_string(json)) {
        const char *text = string_text(json);
        if (text && strcmp(text, "NaN") == 0) {
            value = NAN;
        } else if (text && strcmp(text, "Infinity") == 0) {
            value = INFINITY;
        } else if (text && strcmp(text, "-Infinity") == 0) {
            value = -INFINITY;
        } else if (text && is_json_number(text)) {
            errno = 0;
            value = strtod(text, NULL);
            if (errno == ERANGE && isinf(value))
                return fail_number(d, NUMBER_OUT_OF_RANGE, json, type_name(type));
        } else {
            return fail_number(d, NUMBER_NOT_A_NUMBER, json, type_name(type));
        }
    } else {
        return fail_type(d, "a number", json);
    }
    if (type == PROTOBUF_C_TYPE_DOUBLE) {
        *(double *)slot = value;
        return true;
    }
    if (isfinite(value) && fabs(value) > FLT_MAX)
        return fail_number(d, NUMBER_OUT_OF_RANGE, json, "float");
    *(float *)slot = (float)value;
    return true;
}

static bool decode_bool(decoder *d, const json_t *json, void *slot)
{
    if (!json_is_boolean(json))
        return fail_type(d, "a boolean", json);
    *(protobuf_c_boolean *)slot = json_is_true(json);
    return true;
}

/* An enum by value name, or by number (open enums keep numbers they do not know). */
static bool decode_enum(decoder *d, const json_t *json, const ProtobufCEnumDescriptor *desc, void *slot)
{
    if (json_is_string(json)) {
        const char *name = string_text(json);
        const ProtobufCEnumValue *known =
            name ? protobuf_c_enum_descriptor_get_value_by_name(desc, name) : NULL;
        if (!known) {
            char text[64];
            describe(json, text, sizeof text);
            return fail(d, HS_ERR_PARSE, "%s is not a value of enum %s", text, desc->name);
        }
        *(int *)slot = known->value;
        return true;
    }
    if (!json_is_number(json))
        return fail_type(d, "an enum name or number", json);
    return decode_integer(d, json, PROTOBUF_C_TYPE_INT32, slot);
}

/* A malloc'd copy of `len` bytes of text; false (after reporting it) when out of memory. */
static bool copy_text(decoder *d, const char *text, size_t len, char **out)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return fail_nomem(d);
    memcpy(copy, text, len);
    copy[len] = '\0';
    *out = copy;
    return true;
}

static bool decode_string(decoder *d, const json_t *json, void *slot)
{
    if (!json_is_string(json))
        return fail_type(d, "a string", json);
    const char *text = string_text(json);
    if (!text)
        return fail(d, HS_ERR_PARSE, "a string must not contain a NUL character");
    return copy_text(d, text, json_string_length(json), (char **)slot);
}

static bool decode_bytes(decoder *d, const json_t *json, void *slot)
{
    if (!json_is_string(json))
        return fail_type(d, "a base64 string", json);
    base64_status status = base64_decode(json_string_value(json), json_string_length(json), slot);
    if (status == BASE64_NOMEM)
        return fail_nomem(d);
    return status == BASE64_OK || fail(d, HS_ERR_PARSE, "not valid base64");
}

static bool decode_message(decoder *d, const json_t *json, const ProtobufCMessageDescriptor *desc,
                           ProtobufCMessage **out);

/* Reads one value of `field` into `slot` (a struct member or an array element), writing `slot` only on
 * success so that a failed decode leaves nothing half-owned. */
static bool decode_value(decoder *d, const json_t *json, const ProtobufCFieldDescriptor *field, void *slot)
{
    switch (field->type) {
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: return decode_real(d, json, field->type, slot);
    case PROTOBUF_C_TYPE_BOOL: return decode_bool(d, json, slot);
    case PROTOBUF_C_TYPE_ENUM: return decode_enum(d, json, field->descriptor, slot);
    case PROTOBUF_C_TYPE_STRING: return decode_string(d, json, slot);
    case PROTOBUF_C_TYPE_BYTES: return decode_bytes(d, json, slot);
    case PROTOBUF_C_TYPE_MESSAGE: return decode_message(d, json, field->descriptor, slot);
    default: return decode_integer(d, json, field->type, slot);
    }
}

/* ---- JSON -> message: fields -------------------------------------------------------------------------- */

/* Whether `text` is exactly how `value` is written: no sign on zero, no leading zeros, no exponent. Map keys
 * must be, or "1" and "01" would be two JSON keys for one map key. */
static bool is_canonical_integer(const char *text, integer value)
{
    char canonical[24];
    snprintf(canonical, sizeof canonical, "%s%" PRIu64, value.negative && value.magnitude ? "-" : "",
             value.magnitude);
    return strcmp(text, canonical) == 0;
}

/* Reads a map key, which JSON gives as text, into the key member of an entry. */
static bool decode_map_key(decoder *d, const char *key, size_t len, const ProtobufCFieldDescriptor *field,
                           void *slot)
{
    if (strlen(key) != len)
        return fail(d, HS_ERR_PARSE, "a map key must not contain a NUL character");
    if (field->type == PROTOBUF_C_TYPE_STRING)
        return copy_text(d, key, len, (char **)slot);
    if (field->type == PROTOBUF_C_TYPE_BOOL) {
        if (strcmp(key, "true") != 0 && strcmp(key, "false") != 0)
            return fail(d, HS_ERR_PARSE, "map key is not true or false");
        *(protobuf_c_boolean *)slot = strcmp(key, "true") == 0;
        return true;
    }
    integer value = {0};
    number_status status = integer_from_text(key, &value);
    if (status == NUMBER_OK && !integer_fits(value, field->type))
        status = NUMBER_OUT_OF_RANGE;
    if (status == NUMBER_OUT_OF_RANGE)
        return fail(d, HS_ERR_PARSE, "map key is out of range for %s", type_name(field->type));
    if (status != NUMBER_OK || !is_canonical_integer(key, value))
        return fail(d, HS_ERR_PARSE, "map key is not an integer in plain decimal");
    integer_store(value, field->type, slot);
    return true;
}

/* Allocates the array of a repeated field with `n` zeroed elements and hands it to the message at once, so
 * that protobuf_c_message_free_unpacked() frees it and whatever elements are filled if a later one fails. */
static void *repeated_alloc(decoder *d, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field,
                            size_t n)
{
    void *array = calloc(n, hs_json_element_size(field->type));
    if (!array) {
        fail_nomem(d);
        return NULL;
    }
    *(void **)member(msg, field->offset) = array;
    *(size_t *)member(msg, field->quantifier_offset) = n;
    return array;
}

/* One key/value pair of a map as a new entry message in `*slot`, stored there before it is filled so that
 * the enclosing message owns it even if the key or value is rejected. */
static bool decode_map_entry(decoder *d, const char *key, size_t key_len, const json_t *value,
                             const ProtobufCMessageDescriptor *entry_desc, ProtobufCMessage **slot)
{
    ProtobufCMessage *entry = *slot = new_message(entry_desc);
    if (!entry)
        return fail_nomem(d);
    const ProtobufCFieldDescriptor *key_field = &entry_desc->fields[0], *value_field = &entry_desc->fields[1];
    return decode_map_key(d, key, key_len, key_field, member(entry, key_field->offset)) &&
           decode_value(d, value, value_field, member(entry, value_field->offset));
}

static bool decode_map(decoder *d, const json_t *json, ProtobufCMessage *msg,
                       const ProtobufCFieldDescriptor *field)
{
    if (!json_is_object(json))
        return fail_type(d, "an object", json);
    size_t n = json_object_size(json);
    if (n == 0)
        return true;
    ProtobufCMessage **entries = repeated_alloc(d, msg, field, n);
    if (!entries)
        return false;
    const char *key;
    size_t key_len, i = 0;
    json_t *value;
    json_t *object = (json_t *)json; /* jansson's iterators take a non-const object; nothing is modified */
    json_object_keylen_foreach(object, key, key_len, value)
    {
        size_t path = path_push_name(d, key);
        bool ok = decode_map_entry(d, key, key_len, value, field->descriptor, &entries[i++]);
        path_pop(d, path);
        if (!ok)
            return false;
    }
    return true;
}

static bool decode_repeated(decoder *d, const json_t *json, ProtobufCMessage *msg,
                            const ProtobufCFieldDescriptor *field)
{
    if (!json_is_array(json))
        return fail_type(d, "an array", json);
    size_t n = json_array_size(json);
    if (n == 0)
        return true;
    char *array = repeated_alloc(d, msg, field, n);
    if (!array)
        return false;
    size_t size = hs_json_element_size(field->type);
    for (size_t i = 0; i < n; i++) {
        size_t path = path_push_index(d, i);
        bool ok = decode_value(d, json_array_get(json, i), field, array + i * size);
        path_pop(d, path);
        if (!ok)
            return false;
    }
    return true;
}

/* A single (not repeated) field; marks it present the way its label says (oneof case, has_ flag). */
static bool decode_single(decoder *d, const json_t *json, ProtobufCMessage *msg,
                          const ProtobufCFieldDescriptor *field)
{
    bool in_oneof = field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF;
    uint32_t *oneof_case = in_oneof ? member(msg, field->quantifier_offset) : NULL;
    if (oneof_case && *oneof_case != 0) {
        const ProtobufCFieldDescriptor *other = find_field_by_id(msg->descriptor, *oneof_case);
        return fail(d, HS_ERR_PARSE, "only one field of a oneof may be set, and %s is set already",
                    other ? other->name : "another");
    }
    if (!decode_value(d, json, field, member(msg, field->offset)))
        return false;
    if (oneof_case)
        *oneof_case = field->id;
    else if (field->label == PROTOBUF_C_LABEL_OPTIONAL && !is_pointer_type(field->type))
        *(protobuf_c_boolean *)member(msg, field->quantifier_offset) = 1;
    return true;
}

/* Reports the first key of `json` that names no field of `desc`: a misspelt name is the likeliest mistake
 * and the most useful thing to be told. */
static bool check_field_names(decoder *d, const json_t *json, const ProtobufCMessageDescriptor *desc)
{
    const char *key;
    size_t key_len;
    json_t *value;
    json_t *object = (json_t *)json; /* jansson's iterators take a non-const object; nothing is modified */
    json_object_keylen_foreach(object, key, key_len, value)
    {
        if (strlen(key) != key_len || !find_field(desc, key)) {
            size_t path = path_push_name(d, key);
            fail(d, HS_ERR_PARSE, "unknown field");
            path_pop(d, path);
            return false;
        }
    }
    return true;
}

/* Reads `field` from the object `json`, where it may be given under its JSON name `name` or its proto name
 * (not both: a field is set once). Absent or null leaves the default. */
static bool decode_field(decoder *d, const json_t *json, ProtobufCMessage *msg,
                         const ProtobufCFieldDescriptor *field, const char *name)
{
    json_t *by_json_name = json_object_get(json, name);
    json_t *by_proto_name = strcmp(name, field->name) != 0 ? json_object_get(json, field->name) : NULL;
    json_t *value = by_json_name ? by_json_name : by_proto_name;
    size_t path = path_push_name(d, by_json_name ? name : field->name);
    bool ok = true;
    if (by_json_name && by_proto_name)
        ok = fail(d, HS_ERR_PARSE, "given twice, also as \"%s\"", field->name);
    else if (!value || json_is_null(value))
        ok = true;
    else if (field_is_map(field))
        ok = decode_map(d, value, msg, field);
    else if (field->label == PROTOBUF_C_LABEL_REPEATED)
        ok = decode_repeated(d, value, msg, field);
    else
        ok = decode_single(d, value, msg, field);
    path_pop(d, path);
    return ok;
}

static bool decode_fields(decoder *d, const json_t *json, ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    if (!check_field_names(d, json, desc))
        return false;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        char buf[64];
        char *name = json_name(desc->fields[i].name, buf, sizeof buf);
        if (!name)
            return fail_nomem(d);
        bool ok = decode_field(d, json, msg, &desc->fields[i], name);
        if (name != buf)
            free(name);
        if (!ok)
            return false;
    }
    return true;
}

static bool decode_message(decoder *d, const json_t *json, const ProtobufCMessageDescriptor *desc,
                           ProtobufCMessage **out)
{
    assert(desc && desc->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
    if (!json_is_object(json))
        return fail_type(d, "an object", json);
    if (d->depth >= JSON_MAX_DEPTH)
        return fail(d, HS_ERR_PARSE, "messages nested deeper than %d levels", JSON_MAX_DEPTH);
    ProtobufCMessage *msg = new_message(desc);
    if (!msg)
        return fail_nomem(d);
    d->depth++;
    bool ok = decode_fields(d, json, msg);
    d->depth--;
    if (!ok) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return false;
    }
    *out = msg;
    return true;
}

ProtobufCMessage *hs_json_to_message(const ProtobufCMessageDescriptor *desc, const json_t *json,
                                     hs_error *error)
{
    decoder d = {.error = error};
    ProtobufCMessage *msg = NULL;
    if (!json) {
        hs_error_set(error, HS_ERR_PARSE, "expected an object, got nothing");
        return NULL;
    }
    return decode_message(&d, json, desc, &msg) ? msg : NULL;
}

ProtobufCMessage *hs_json_decode_text(const ProtobufCMessageDescriptor *desc, const char *text, size_t len,
                                      hs_error *error)
{
    json_error_t parse_error;
    json_t *json = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &parse_error);
    if (!json) {
        hs_err code = json_error_code(&parse_error) == json_error_out_of_memory ? HS_ERR_NOMEM : HS_ERR_PARSE;
        hs_error_set(error, code, "line %d column %d: %s", parse_error.line, parse_error.column,
                     parse_error.text);
        return NULL;
    }
    ProtobufCMessage *msg = hs_json_to_message(desc, json, error);
    json_decref(json);
    return msg;
}

/* ---- JSON written against a newer schema ----------------------------------------------------------------
 */

/* One walk of hs_json_drop_unknown_fields: the path of the object being walked, for the report. */
typedef struct unknown_walk {
    hs_json_unknown_fn on_unknown;
    void *ctx;
    size_t dropped;
    unsigned depth;
    char path[192];
} unknown_walk;

static void drop_unknown(unknown_walk *w, const ProtobufCMessageDescriptor *desc, json_t *object);

/* Descends into `value` if it is an object meant as a message of `desc` (anything else is left for
 * hs_json_to_message to judge), with `segment` appended to the path meanwhile. */
static void drop_unknown_in(unknown_walk *w, const ProtobufCMessageDescriptor *desc, json_t *value,
                            const char *separator, const char *segment)
{
    if (!json_is_object(value) || w->depth >= JSON_MAX_DEPTH)
        return;
    size_t len = strlen(w->path);
    snprintf(w->path + len, sizeof w->path - len, "%s%s", len ? separator : "", segment);
    w->depth++;
    drop_unknown(w, desc, value);
    w->depth--;
    w->path[len] = '\0';
}

/* The message-typed values under a known field: a submessage, the elements of a list, the values of a map. */
static void drop_unknown_under(unknown_walk *w, const ProtobufCFieldDescriptor *field, const char *key,
                               json_t *value)
{
    if (field->type != PROTOBUF_C_TYPE_MESSAGE)
        return;
    if (field_is_map(field)) {
        const ProtobufCMessageDescriptor *entry_desc = field->descriptor;
        const ProtobufCFieldDescriptor *map_value = &entry_desc->fields[1];
        if (map_value->type != PROTOBUF_C_TYPE_MESSAGE || !json_is_object(value))
            return;
        const char *map_key;
        json_t *entry;
        json_object_foreach(value, map_key, entry)
        {
            char segment[128];
            snprintf(segment, sizeof segment, "%s.%s", key, map_key);
            drop_unknown_in(w, map_value->descriptor, entry, ".", segment);
        }
    } else if (field->label == PROTOBUF_C_LABEL_REPEATED) {
        if (!json_is_array(value))
            return;
        for (size_t i = 0; i < json_array_size(value); i++) {
            char segment[128];
            snprintf(segment, sizeof segment, "%s[%zu]", key, i);
            drop_unknown_in(w, field->descriptor, json_array_get(value, i), ".", segment);
        }
    } else {
        drop_unknown_in(w, field->descriptor, value, ".", key);
    }
}

static void drop_unknown(unknown_walk *w, const ProtobufCMessageDescriptor *desc, json_t *object)
{
    const char *key;
    json_t *value;
    void *tmp;
    json_object_foreach_safe(object, tmp, key, value)
    {
        const ProtobufCFieldDescriptor *field = find_field(desc, key);
        if (field) {
            drop_unknown_under(w, field, key, value);
            continue;
        }
        char path[sizeof w->path + 64];
        snprintf(path, sizeof path, "%s%s%.60s", w->path, w->path[0] ? "." : "", key);
        if (w->on_unknown)
            w->on_unknown(w->ctx, path);
        w->dropped++;
        json_object_del(object, key);
    }
}

size_t hs_json_drop_unknown_fields(const ProtobufCMessageDescriptor *desc, json_t *json,
                                   hs_json_unknown_fn on_unknown, void *ctx)
{
    assert(desc && desc->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
    unknown_walk w = {.on_unknown = on_unknown, .ctx = ctx};
    if (json_is_object(json))
        drop_unknown(&w, desc, json);
    return w.dropped;
}
