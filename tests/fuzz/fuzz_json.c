/* libFuzzer target for the JSON text form of events (common/io/src/json.c). Any bytes jansson accepts are
 * decoded as every message type of the topic registry; a message that decodes must encode again, and that
 * JSON (as a tree and as text) must decode to the same wire bytes. A rejected input must say why; with its
 * unknown fields dropped (--ignore-unknown-fields), it must not be rejected for one. Run under
 * ASan and UBSan by `ctest -R fuzz.json` in the sanitizer build; the seeds are in corpus/json/.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hs/json.h"
#include "hs/topic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stops the run with the input kept as a crash artifact: what the mapper wrote, it must read back alike. */
static void require(int condition)
{
    if (!condition)
        abort();
}

static void require_same_wire(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t a_len = protobuf_c_message_get_packed_size(a), b_len = protobuf_c_message_get_packed_size(b);
    require(a_len == b_len);
    uint8_t *a_bytes = malloc(a_len + 1), *b_bytes = malloc(b_len + 1);
    require(a_bytes && b_bytes);
    require(protobuf_c_message_pack(a, a_bytes) == a_len && protobuf_c_message_pack(b, b_bytes) == b_len);
    require(memcmp(a_bytes, b_bytes, a_len) == 0);
    free(a_bytes);
    free(b_bytes);
}

/* Re-encodes a decoded message and checks that both the tree and the text decode to the same bytes. */
static void check_round_trip(const ProtobufCMessage *msg)
{
    hs_error error;
    json_t *json = hs_json_from_message(msg);
    require(json != NULL);
    ProtobufCMessage *from_tree = hs_json_to_message(msg->descriptor, json, &error);
    require(from_tree != NULL);
    require_same_wire(msg, from_tree);
    json_decref(json);

    char *text = hs_json_encode_text(msg);
    require(text != NULL);
    ProtobufCMessage *from_text = hs_json_decode_text(msg->descriptor, text, strlen(text), &error);
    require(from_text != NULL);
    require_same_wire(msg, from_text);
    free(text);

    protobuf_c_message_free_unpacked(from_tree, NULL);
    protobuf_c_message_free_unpacked(from_text, NULL);
}

/* hs_json_drop_unknown_fields (--ignore-unknown-fields): what it leaves has no unknown field at any depth, so
 * dropping again removes nothing and decoding never fails for one; input that decoded had none to drop. */
static void check_drop_unknown(const ProtobufCMessageDescriptor *desc, const json_t *json, bool decoded)
{
    json_t *copy = json_deep_copy(json);
    if (!copy)
        return;
    size_t dropped = hs_json_drop_unknown_fields(desc, copy, NULL, NULL);
    require(!decoded || dropped == 0);
    require(hs_json_drop_unknown_fields(desc, copy, NULL, NULL) == 0);
    hs_error error = {0};
    ProtobufCMessage *msg = hs_json_to_message(desc, copy, &error);
    static const char unknown[] = ": unknown field"; /* how the decoder ends that reason ("scope.x: ...") */
    size_t len = strlen(error.message);
    require(msg != NULL || len < sizeof unknown - 1 ||
            strcmp(error.message + len - (sizeof unknown - 1), unknown) != 0);
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
    json_decref(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t parse_error;
    json_t *json =
        json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &parse_error);
    if (!json)
        return 0;
    size_t count;
    const hs_topic *topics = hs_topic_all(&count);
    for (size_t i = 0; i < count; i++) {
        if (!topics[i].value_type)
            continue;
        hs_error error = {0};
        ProtobufCMessage *msg = hs_json_to_message(topics[i].value_type, json, &error);
        check_drop_unknown(topics[i].value_type, json, msg != NULL);
        if (!msg) {
            require(error.code == HS_ERR_PARSE || error.code == HS_ERR_NOMEM);
            require(error.message[0] != '\0');
            continue;
        }
        check_round_trip(msg);
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    json_decref(json);
    return 0;
}
