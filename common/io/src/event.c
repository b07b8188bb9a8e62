/* CloudEvents envelope: headers on Kafka, JSON lines as text. The data mapping itself is hs/json.h; this
 * module only wraps it with the envelope attributes, finds the message type through the topic registry, and
 * checks the attributes it keeps (time, dataschema, extension names) so that nothing is silently lost.
 */
#include "hs/event.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack: no allocation per event id */
#include <xxhash.h>

#include "hs/json.h"
#include "hs/wire.h"

static void hex64(char *out, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = digits[v & 0xf];
}

void hs_event_id(char out[72], const char *topic, const char *key, const void *value, size_t value_len)
{
    XXH3_state_t state;
    XXH3_INITSTATE(&state);
    XXH3_128bits_reset(&state);
    /* Lengths are hashed with the bytes so that ("ab","c") and ("a","bc") differ. */
    const char *texts[] = {topic, key};
    for (int i = 0; i < 2; i++) {
        uint64_t len = strlen(texts[i]);
        XXH3_128bits_update(&state, &len, sizeof len);
        XXH3_128bits_update(&state, texts[i], len);
    }
    uint64_t len = value_len;
    XXH3_128bits_update(&state, &len, sizeof len);
    if (value_len)
        XXH3_128bits_update(&state, value, value_len);
    XXH128_hash_t hash = XXH3_128bits_digest(&state);
    hex64(out, hash.high64);
    hex64(out + 16, hash.low64);
    out[32] = '\0';
}

void hs_event_time_now(char out[40])
{
    /* The date and time of day change once a second: formatted then, per thread, and reused. */
    static _Thread_local time_t cached_second = -1;
    static _Thread_local char cached[32];
    static _Thread_local size_t cached_len;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec != cached_second) {
        struct tm tm;
        gmtime_r(&now.tv_sec, &tm);
        cached_len = strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_second = now.tv_sec;
    }
    long ms = now.tv_nsec / 1000000;
    memcpy(out, cached, cached_len);
    char *p = out + cached_len;
    *p++ = '.';
    *p++ = (char)('0' + ms / 100);
    *p++ = (char)('0' + ms / 10 % 10);
    *p++ = (char)('0' + ms % 10);
    *p++ = 'Z';
    *p = '\0';
}

void hs_event_dataschema(char out[160], const char *type)
{
    static const char prefix[] = "urn:healthsignals:proto:";
    size_t len = strlen(type), max = 160 - sizeof prefix;
    if (len > max)
        len = max;
    memcpy(out, prefix, sizeof prefix - 1);
    memcpy(out + sizeof prefix - 1, type, len);
    out[sizeof prefix - 1 + len] = '\0';
}

/* Reads `digits` decimal digits at *p into *value and advances *p; false if they are not all digits. */
static bool read_digits(const char **p, int digits, int *value)
{
    *value = 0;
    for (int i = 0; i < digits; i++, (*p)++) {
        if (**p < '0' || **p > '9')
            return false;
        *value = *value * 10 + (**p - '0');
    }
    return true;
}

bool hs_event_time_valid(const char *text)
{
    static const int month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = text;
    int year, month, day, hour, minute, second;
    if (!read_digits(&p, 4, &year) || *p++ != '-' || !read_digits(&p, 2, &month) || *p++ != '-' ||
        !read_digits(&p, 2, &day) || (*p != 'T' && *p != 't'))
        return false;
    p++;
    if (!read_digits(&p, 2, &hour) || *p++ != ':' || !read_digits(&p, 2, &minute) || *p++ != ':' ||
        !read_digits(&p, 2, &second))
        return false;
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month < 1 || month > 12 || day < 1 || day > month_days[month - 1] ||
        (month == 2 && day == 29 && !leap) || hour > 23 || minute > 59 || second > 60)
        return false;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'Z' || *p == 'z')
        return p[1] == '\0';
    int offset_hour, offset_minute;
    if (*p != '+' && *p != '-')
        return false;
    p++;
    return read_digits(&p, 2, &offset_hour) && *p++ == ':' && read_digits(&p, 2, &offset_minute) &&
           *p == '\0' && offset_hour <= 23 && offset_minute <= 59;
}

/* The attributes hs_event_meta holds, and the others CloudEvents defines: everything else is an extension. */
static bool is_core_attribute(const char *name)
{
    static const char *const core[] = {"specversion", "id",         "source",          "type",
                                       "time",        "subject",    "datacontenttype", "dataschema",
                                       "data",        "data_base64"};
    for (size_t i = 0; i < sizeof core / sizeof core[0]; i++)
        if (strcmp(name, core[i]) == 0)
            return true;
    return false;
}

void hs_event_add_headers(rd_kafka_headers_t *headers, const hs_event_meta *meta, const char *key,
                          bool has_value)
{
    rd_kafka_header_add(headers, "ce_specversion", -1, "1.0", -1);
    rd_kafka_header_add(headers, "ce_id", -1, meta->id, -1);
    rd_kafka_header_add(headers, "ce_source", -1, meta->source[0] ? meta->source : "/healthsignals", -1);
    rd_kafka_header_add(headers, "ce_type", -1, meta->type, -1);
    rd_kafka_header_add(headers, "ce_time", -1, meta->time, -1);
    if (key)
        rd_kafka_header_add(headers, "ce_subject", -1, key, -1);
    if (has_value) {
        if (meta->dataschema[0])
            rd_kafka_header_add(headers, "ce_dataschema", -1, meta->dataschema, -1);
        rd_kafka_header_add(headers, "content-type", -1, "application/protobuf", -1);
    }
    if (meta->extensions) {
        const char *name;
        const json_t *value;
        json_object_foreach((json_t *)meta->extensions, name, value)
        {
            char header[64];
            if (json_is_string(value) && snprintf(header, sizeof header, "ce_%s", name) < (int)sizeof header)
                rd_kafka_header_add(headers, header, -1, json_string_value(value),
                                    (ssize_t)json_string_length(value));
        }
    }
}

static void read_header(rd_kafka_headers_t *headers, const char *name, char *out, size_t size)
{
    const void *value;
    size_t len;
    if (rd_kafka_header_get_last(headers, name, &value, &len) != RD_KAFKA_RESP_ERR_NO_ERROR || !value)
        return;
    snprintf(out, size, "%.*s", (int)(len < size ? len : size - 1), (const char *)value);
}

void hs_event_read_headers(const rd_kafka_message_t *record, hs_event_meta *meta)
{
    memset(meta, 0, sizeof *meta);
    rd_kafka_headers_t *headers;
    if (rd_kafka_message_headers(record, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    read_header(headers, "ce_id", meta->id, sizeof meta->id);
    read_header(headers, "ce_source", meta->source, sizeof meta->source);
    read_header(headers, "ce_type", meta->type, sizeof meta->type);
    read_header(headers, "ce_time", meta->time, sizeof meta->time);
    read_header(headers, "ce_dataschema", meta->dataschema, sizeof meta->dataschema);
}

json_t *hs_event_read_extensions(const rd_kafka_message_t *record)
{
    rd_kafka_headers_t *headers;
    if (rd_kafka_message_headers(record, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    json_t *out = NULL;
    const char *name;
    const void *value;
    size_t len;
    for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &len) == RD_KAFKA_RESP_ERR_NO_ERROR;
         i++) {
        if (strncmp(name, "ce_", 3) != 0 || !name[3] || is_core_attribute(name + 3))
            continue;
        if (!out && !(out = json_object()))
            return NULL;
        json_object_set_new(out, name + 3, hs_json_string_escaped(value, value ? len : 0));
    }
    return out;
}

/* Sets the string attribute `name` of `event` to `text`, escaping what is not UTF-8: headers are bytes. */
static void set_text(json_t *event, const char *name, const char *text)
{
    json_object_set_new(event, name, hs_json_string_escaped(text, strlen(text)));
}

json_t *hs_event_to_json(const hs_event_meta *meta, const char *key, const ProtobufCMessage *value)
{
    json_t *event = json_object();
    if (!event)
        return NULL;
    json_object_set_new(event, "specversion", json_string("1.0"));
    set_text(event, "id", meta->id);
    set_text(event, "source", meta->source[0] ? meta->source : "/healthsignals");
    set_text(event, "type", meta->type);
    if (meta->time[0])
        set_text(event, "time", meta->time);
    if (key)
        set_text(event, "subject", key);
    if (value) {
        json_t *data = hs_json_from_message(value);
        if (!data) {
            json_decref(event);
            return NULL;
        }
        if (meta->dataschema[0])
            set_text(event, "dataschema", meta->dataschema);
        json_object_set_new(event, "datacontenttype", json_string("application/json"));
        json_object_set_new(event, "data", data);
    } else {
        json_object_set_new(event, "data", json_null());
    }
    return event;
}

/* Copies the optional string attribute `name` into `out`; an attribute of another type is an error. */
static hs_err attribute(const json_t *event, const char *name, char *out, size_t size, hs_error *error)
{
    const json_t *v = json_object_get(event, name);
    if (!v || json_is_null(v))
        return HS_OK;
    if (!json_is_string(v))
        return hs_error_set(error, HS_ERR_PARSE, "%s: expected a string", name);
    if (json_string_length(v) >= size)
        return hs_error_set(error, HS_ERR_PARSE, "%s: longer than %zu bytes", name, size - 1);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return HS_OK;
}

hs_err hs_event_extensions(const json_t *event, json_t **out, char dropped[256], hs_error *error)
{
    *out = NULL;
    if (dropped)
        dropped[0] = '\0';
    const char *name;
    const json_t *value;
    json_object_foreach((json_t *)event, name, value)
    {
        if (is_core_attribute(name) || json_is_null(value))
            continue;
        size_t len = strlen(name);
        if (len == 0 || len > 60 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789") != len) {
            json_decref(*out);
            *out = NULL;
            return hs_error_set(error, HS_ERR_PARSE,
                                "%.60s: not a CloudEvents attribute name (lowercase letters and digits)",
                                name);
        }
        if (strncmp(name, "hs", 2) == 0) {
            /* hspartition (hsctl tail: where the record was) describes no dead letter: left out silently. */
            if (dropped && strcmp(name, "hspartition") != 0 && strlen(dropped) + len + 3 < 256)
                snprintf(dropped + strlen(dropped), 256 - strlen(dropped), "%s%s", dropped[0] ? ", " : "",
                         name);
            continue;
        }
        json_t *text;
        if (json_is_string(value))
            text = json_incref((json_t *)value);
        else if (json_is_number(value) || json_is_boolean(value)) {
            char *dumped = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
            text = dumped ? json_string(dumped) : NULL;
            free(dumped);
        } else {
            json_decref(*out);
            *out = NULL;
            return hs_error_set(error, HS_ERR_PARSE,
                                "%s: an extension attribute is a string, number or boolean", name);
        }
        if (!*out)
            *out = json_object();
        if (!*out)
            json_decref(text);
        if (!text || !*out || json_object_set_new(*out, name, text) != 0) {
            json_decref(*out);
            *out = NULL;
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory reading extension attributes");
        }
    }
    return HS_OK;
}

/* The topic a dead letter came from (its `hssourcetopic`), which must carry messages; NULL after setting
 * `error` otherwise. */
static const hs_topic *dead_letter_topic(const json_t *event, hs_error *error)
{
    const char *name = json_string_value(json_object_get(event, "hssourcetopic"));
    const hs_topic *topic = name ? hs_topic_find(name) : NULL;
    if (!name)
        hs_error_set(error, HS_ERR_PARSE, "hssourcetopic: a dead letter needs its source topic");
    else if (!topic || !topic->value_type)
        hs_error_set(error, HS_ERR_PARSE, "hssourcetopic: \"%s\" is not a topic of facts", name);
    return topic && topic->value_type ? topic : NULL;
}

/* Decodes `data_base64`: the bytes must be a protobuf encoding of the topic's message. */
static ProtobufCMessage *decode_base64_data(const hs_topic *topic, const json_t *data, hs_error *error)
{
    if (!json_is_string(data)) {
        hs_error_set(error, HS_ERR_PARSE, "data_base64: expected a string");
        return NULL;
    }
    uint8_t *bytes;
    size_t len;
    if (hs_json_base64_decode(json_string_value(data), json_string_length(data), &bytes, &len, error) !=
        HS_OK) {
        hs_error_prefix(error, "data_base64");
        return NULL;
    }
    ProtobufCMessage *value = hs_wire_unpack(topic->value_type, NULL, len, bytes);
    free(bytes);
    if (!value)
        hs_error_set(error, HS_ERR_DECODE, "data_base64: %zu bytes that are not a protobuf %s", len,
                     topic->value_type->name);
    return value;
}

/* The value of an event: from `data` (JSON) or `data_base64`, or NULL with HS_OK for `"data": null`. */
static hs_err event_value(const json_t *event, const hs_topic *topic, ProtobufCMessage **value,
                          hs_error *error)
{
    const json_t *data = json_object_get(event, "data");
    const json_t *data_base64 = json_object_get(event, "data_base64");
    const char *content_type = json_string_value(json_object_get(event, "datacontenttype"));
    if (data && data_base64)
        return hs_error_set(error, HS_ERR_PARSE,
                            "data_base64: an event carries data or data_base64, not both");
    if (!data && !data_base64)
        return hs_error_set(error, HS_ERR_PARSE,
                            "data: missing (a tombstone, which deletes the fact, is \"data\": null)");
    if (data_base64) {
        if (content_type && strcmp(content_type, "application/protobuf") != 0 &&
            strcmp(content_type, "application/x-protobuf") != 0 &&
            strcmp(content_type, "application/octet-stream") != 0)
            return hs_error_set(error, HS_ERR_PARSE, "datacontenttype: data_base64 holds protobuf, not %s",
                                content_type);
        *value = decode_base64_data(topic, data_base64, error);
    } else if (json_is_null(data)) {
        return HS_OK;
    } else {
        if (content_type && strcmp(content_type, "application/json") != 0)
            return hs_error_set(error, HS_ERR_PARSE, "datacontenttype: data holds JSON, not %s",
                                content_type);
        *value = hs_json_to_message(topic->value_type, data, error);
        if (!*value)
            hs_error_prefix(error, "data");
    }
    return *value ? HS_OK : error ? error->code : HS_ERR_PARSE;
}

hs_err hs_event_from_json(const json_t *event, const hs_topic **topic, ProtobufCMessage **value,
                          hs_event_meta *meta, char key[HS_KEY_MAX], hs_error *error)
{
    *value = NULL;
    *topic = NULL;
    key[0] = '\0';
    memset(meta, 0, sizeof *meta);
    if (!json_is_object(event))
        return hs_error_set(error, HS_ERR_PARSE, "event: expected a JSON object");

    char specversion[16] = "";
    hs_err err;
    if ((err = attribute(event, "specversion", specversion, sizeof specversion, error)) ||
        (err = attribute(event, "id", meta->id, sizeof meta->id, error)) ||
        (err = attribute(event, "source", meta->source, sizeof meta->source, error)) ||
        (err = attribute(event, "type", meta->type, sizeof meta->type, error)) ||
        (err = attribute(event, "time", meta->time, sizeof meta->time, error)) ||
        (err = attribute(event, "dataschema", meta->dataschema, sizeof meta->dataschema, error)) ||
        (err = attribute(event, "subject", key, HS_KEY_MAX, error)))
        return err;
    if (strcmp(specversion, "1.0") != 0)
        return hs_error_set(error, HS_ERR_PARSE, "specversion: expected \"1.0\", got \"%s\"", specversion);
    if (meta->time[0] && !hs_event_time_valid(meta->time))
        return hs_error_set(error, HS_ERR_PARSE, "time: \"%s\" is not an RFC 3339 date-time", meta->time);
    if (!meta->type[0])
        return hs_error_set(error, HS_ERR_PARSE,
                            "type: required (e.g. \"healthsignals.v1.IndicatorObservation\")");
    if (strcmp(meta->type, HS_EVENT_TYPE_DEAD_LETTER) == 0) {
        /* The record it holds is republished as a new event: the dead letter's own attributes describe
         * the rejection, not the fact. */
        if (!(*topic = dead_letter_topic(event, error)))
            return HS_ERR_PARSE;
        meta->id[0] = meta->source[0] = meta->time[0] = meta->dataschema[0] = '\0';
        snprintf(meta->type, sizeof meta->type, "%s", (*topic)->value_type->name);
    } else if (!(*topic = hs_topic_find_by_type(meta->type))) {
        return hs_error_set(error, HS_ERR_PARSE, "type: unknown event type \"%s\"", meta->type);
    }
    char schema[160];
    hs_event_dataschema(schema, meta->type);
    if (meta->dataschema[0] && strcmp(meta->dataschema, schema) != 0)
        return hs_error_set(error, HS_ERR_PARSE, "dataschema: \"%s\", but %s is \"%s\"", meta->dataschema,
                            meta->type, schema);

    if ((err = event_value(event, *topic, value, error)))
        return err;
    if (!*value) {
        if (!key[0])
            return hs_error_set(error, HS_ERR_PARSE,
                                "subject: a tombstone (\"data\": null) needs the key to delete");
        return HS_OK;
    }
    if (!key[0]) {
        char group[HS_KEY_MAX];
        err = hs_topic_key(*topic, *value, key, group, error);
        if (err) {
            protobuf_c_message_free_unpacked(*value, NULL);
            *value = NULL;
            return err;
        }
    }
    return HS_OK;
}
