/* libFuzzer target for the CloudEvents JSON form (common/io/src/event.c), what hsctl publish and hsctl dlq
 * replay read from operators' files: any bytes jansson accepts are parsed as an event and its extension
 * attributes. An accepted event must carry a topic and either a message or a tombstone's key, and written
 * back (hs_event_to_json) it must parse to the same wire bytes; a rejected one must say why. The same bytes
 * are also checked as an RFC 3339 time and escaped as diagnostic text, which must always be valid JSON.
 * Run under ASan and UBSan by `ctest -R fuzz.event` in the sanitizer build; the seeds are in corpus/event/.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hs/event.h"
#include "hs/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stops the run with the input kept as a crash artifact. */
static void require(int condition)
{
    if (!condition)
        abort();
}

static uint8_t *packed(const ProtobufCMessage *msg, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *bytes = malloc(*len + 1);
    require(bytes && protobuf_c_message_pack(msg, bytes) == *len);
    return bytes;
}

/* An accepted event written back as JSON reads back: to the same key and record when its data came as JSON
 * (bytes from data_base64 may hold strings that are not UTF-8, which the JSON form repairs or escapes). */
static void check_round_trip(const hs_event_meta *meta, const char *key, const ProtobufCMessage *value,
                             bool same_bytes)
{
    json_t *again = hs_event_to_json(meta, key, value);
    require(again != NULL);
    const hs_topic *topic;
    ProtobufCMessage *back;
    hs_event_meta back_meta;
    char back_key[HS_KEY_MAX];
    hs_error error;
    require(hs_event_from_json(again, &topic, &back, &back_meta, back_key, &error) == HS_OK);
    require((back == NULL) == (value == NULL));
    require(!same_bytes || strcmp(back_key, key) == 0);
    if (value && same_bytes) {
        size_t a_len, b_len;
        uint8_t *a = packed(value, &a_len), *b = packed(back, &b_len);
        require(a_len == b_len && memcmp(a, b, a_len) == 0);
        free(a);
        free(b);
    }
    if (back)
        protobuf_c_message_free_unpacked(back, NULL);
    json_decref(again);
}

static void check_event(const json_t *event)
{
    const hs_topic *topic;
    ProtobufCMessage *value;
    hs_event_meta meta;
    char key[HS_KEY_MAX];
    hs_error error = {0};
    if (hs_event_from_json(event, &topic, &value, &meta, key, &error) != HS_OK) {
        require(value == NULL && error.message[0] != '\0');
    } else {
        require(topic != NULL && (value != NULL || key[0] != '\0'));
        check_round_trip(&meta, key, value, json_object_get(event, "data_base64") == NULL);
        if (value)
            protobuf_c_message_free_unpacked(value, NULL);
    }
    json_t *extensions;
    char dropped[256];
    if (hs_event_extensions(event, &extensions, dropped, &error) == HS_OK) {
        const char *name;
        json_t *v;
        json_object_foreach(extensions, name, v) require(json_is_string(v));
        json_decref(extensions);
    } else {
        require(extensions == NULL && error.message[0] != '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    require(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    (void)hs_event_time_valid(text);
    json_t *escaped = hs_json_string_escaped(text, size);
    require(escaped != NULL);
    char *dumped = json_dumps(escaped, JSON_ENCODE_ANY);
    require(dumped != NULL);
    free(dumped);
    json_decref(escaped);
    free(text);

    json_t *event = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (event) {
        check_event(event);
        json_decref(event);
    }
    return 0;
}
