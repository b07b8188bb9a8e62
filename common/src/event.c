/* CloudEvents envelope: headers on Kafka, JSON lines as text. The data mapping itself is hs/json.h; this
 * module only wraps it with the envelope attributes and finds the message type through the topic registry.
 */
#include "hs/event.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack: no allocation per event id */
#include <xxhash.h>

#include "hs/json.h"

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

void hs_event_add_headers(rd_kafka_headers_t *headers, const hs_event_meta *meta, bool has_value)
{
    rd_kafka_header_add(headers, "ce_specversion", -1, "1.0", -1);
    rd_kafka_header_add(headers, "ce_id", -1, meta->id, -1);
    rd_kafka_header_add(headers, "ce_source", -1, meta->source[0] ? meta->source : "/healthsignals", -1);
    rd_kafka_header_add(headers, "ce_type", -1, meta->type, -1);
    rd_kafka_header_add(headers, "ce_time", -1, meta->time, -1);
    if (has_value)
        rd_kafka_header_add(headers, "content-type", -1, "application/protobuf", -1);
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
}

json_t *hs_event_to_json(const hs_event_meta *meta, const char *key, const ProtobufCMessage *value)
{
    json_t *event = json_object();
    if (!event)
        return NULL;
    json_object_set_new(event, "specversion", json_string("1.0"));
    json_object_set_new(event, "id", json_string(meta->id));
    json_object_set_new(event, "source", json_string(meta->source[0] ? meta->source : "/healthsignals"));
    json_object_set_new(event, "type", json_string(meta->type));
    if (meta->time[0])
        json_object_set_new(event, "time", json_string(meta->time));
    if (key)
        json_object_set_new(event, "subject", json_string(key));
    if (value) {
        json_t *data = hs_json_from_message(value);
        if (!data) {
            json_decref(event);
            return NULL;
        }
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
        (err = attribute(event, "subject", key, HS_KEY_MAX, error)))
        return err;
    if (strcmp(specversion, "1.0") != 0)
        return hs_error_set(error, HS_ERR_PARSE, "specversion: expected \"1.0\", got \"%s\"", specversion);
    if (!meta->type[0])
        return hs_error_set(error, HS_ERR_PARSE,
                            "type: required (e.g. \"healthsignals.v1.IndicatorObservation\")");
    *topic = hs_topic_find_by_type(meta->type);
    if (!*topic)
        return hs_error_set(error, HS_ERR_PARSE, "type: unknown event type \"%s\"", meta->type);

    const json_t *data = json_object_get(event, "data");
    if (!data || json_is_null(data)) {
        if (!key[0])
            return hs_error_set(error, HS_ERR_PARSE,
                                "subject: a tombstone (\"data\": null) needs the key to delete");
        return HS_OK;
    }
    *value = hs_json_to_message((*topic)->value_type, data, error);
    if (!*value) {
        hs_error_prefix(error, "data");
        return error ? error->code : HS_ERR_PARSE;
    }
    if (!key[0]) {
        char group[HS_KEY_MAX];
        err = (*topic)->key_of(*value, key, group, error);
        if (err) {
            protobuf_c_message_free_unpacked(*value, NULL);
            *value = NULL;
            return err;
        }
    }
    return HS_OK;
}
