/* hsctl contracts: the contracts healthsignals offers other systems, generated from the code that defines
 * them rather than written by hand. `asyncapi` prints the AsyncAPI 3.0 document of every topic: from the
 * topic registry (hs/topic.h) its channels — key layout, grouping-key partitioning, partitions, cleanup
 * policy —, from the protobuf-c descriptors its messages with the JSON schema of their canonical proto3
 * JSON mapping (hs/json.h), with the CloudEvents headers, and from the calculations (calcs.h) which service
 * receives and sends what. The output is committed as docs/asyncapi.json; the lint tier regenerates and
 * compares it, and validates it with the AsyncAPI project's parser (tests/lint/asyncapi.sh).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "calcs.h"
#include "hs/json.h"
#include "hs_cli.h"
#include "hsctl.h"

/* Version of the AsyncAPI Kafka bindings used (github.com/asyncapi/bindings, kafka/). */
#define KAFKA_BINDING_VERSION "0.5.0"
/* The record value's content type, as the ce content-type header says (common/io/src/event.c). */
#define VALUE_CONTENT_TYPE "application/protobuf"

static void usage(FILE *out)
{
    fprintf(out, "usage: hsctl contracts asyncapi [--output FILE]\n"
                 "\n"
                 "asyncapi  the AsyncAPI 3.0 document (JSON) of every topic in the registry: channels,\n"
                 "          messages with their JSON schema, keys, partitioning, headers, topic\n"
                 "          configuration, and the services' operations; committed as docs/asyncapi.json\n"
                 "\n"
                 "  -o, --output FILE   write to FILE instead of standard output\n");
}

/* --- JSON schemas of the canonical proto3 JSON mapping ------------------------------------------------- */

#define INTEGER_TEXT "written as a number; parsers also accept a decimal string"

static json_t *ref_to(const char *section, const char *name)
{
    char ref[256];
    snprintf(ref, sizeof ref, "#/components/%s/%s", section, name);
    return json_pack("{s:s}", "$ref", ref);
}

/* An enum is written by name; the mapping's parsers also accept the number. */
static json_t *enum_schema(const ProtobufCEnumDescriptor *desc)
{
    json_t *values = json_array();
    for (unsigned i = 0; i < desc->n_values; i++)
        json_array_append_new(values, json_string(desc->values[i].name));
    for (unsigned i = 0; i < desc->n_values; i++)
        json_array_append_new(values, json_integer(desc->values[i].value));
    return json_pack("{s:s, s:s, s:[s,s], s:o, s:s}", "title", desc->short_name, "description",
                     "A protobuf enum: written as the value's name; parsers also accept its number.", "type",
                     "string", "integer", "enum", values, "x-protobuf-type", desc->name);
}

/* The schema of one value of `field` (not the repeated/map wrapping). Message and enum types are added to
 * `schemas` (components/schemas) once, under their full protobuf name, and referenced. */
static json_t *message_schema_ref(const ProtobufCMessageDescriptor *desc, json_t *schemas);

static json_t *value_schema(const ProtobufCFieldDescriptor *field, json_t *schemas)
{
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_pack("{s:[s,s], s:s, s:I, s:I, s:s, s:s}", "type", "integer", "string", "format", "int32",
                         "minimum", (json_int_t)INT32_MIN, "maximum", (json_int_t)INT32_MAX, "pattern",
                         "^-?[0-9]+$", "description", INTEGER_TEXT);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_pack("{s:[s,s], s:s, s:i, s:I, s:s, s:s}", "type", "integer", "string", "format",
                         "uint32", "minimum", 0, "maximum", (json_int_t)UINT32_MAX, "pattern", "^[0-9]+$",
                         "description", INTEGER_TEXT);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        int is_signed = field->type != PROTOBUF_C_TYPE_UINT64 && field->type != PROTOBUF_C_TYPE_FIXED64;
        return json_pack("{s:[s,s], s:s, s:s, s:s}", "type", "string", "integer", "format",
                         is_signed ? "int64" : "uint64", "pattern", is_signed ? "^-?[0-9]+$" : "^[0-9]+$",
                         "description",
                         "64-bit integer: written as a decimal string; parsers also accept a number");
    }
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_pack(
            "{s:[s,s], s:s, s:s, s:s}", "type", "number", "string", "format",
            field->type == PROTOBUF_C_TYPE_FLOAT ? "float" : "double", "pattern",
            "^(NaN|-?Infinity|-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][-+]?[0-9]+)?)$", "description",
            "written as a number, and as the strings NaN, Infinity and -Infinity for the non-finite "
            "values; parsers also accept a number in a string");
    case PROTOBUF_C_TYPE_BOOL: return json_pack("{s:s}", "type", "boolean");
    case PROTOBUF_C_TYPE_STRING: return json_pack("{s:s}", "type", "string");
    case PROTOBUF_C_TYPE_BYTES: return json_pack("{s:s, s:s}", "type", "string", "contentEncoding", "base64");
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *desc = field->descriptor;
        if (!json_object_get(schemas, desc->name))
            json_object_set_new(schemas, desc->name, enum_schema(desc));
        return ref_to("schemas", desc->name);
    }
    case PROTOBUF_C_TYPE_MESSAGE: return message_schema_ref(field->descriptor, schemas);
    }
    return json_object(); /* a type protobuf-c does not know yet: any value */
}

/* The number of fields in the oneof of `field` (protobuf-c gives the members one shared case member). */
static unsigned oneof_members(const ProtobufCMessageDescriptor *message,
                              const ProtobufCFieldDescriptor *field)
{
    unsigned n = 0;
    for (unsigned i = 0; i < message->n_fields; i++)
        if ((message->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            message->fields[i].quantifier_offset == field->quantifier_offset)
            n++;
    return n;
}

static json_t *field_schema(const ProtobufCMessageDescriptor *message, const ProtobufCFieldDescriptor *field,
                            json_t *schemas)
{
    json_t *schema;
    if (hs_json_field_is_map(field)) {
        const ProtobufCMessageDescriptor *entry = field->descriptor;
        schema = json_pack("{s:s, s:o}", "type", "object", "additionalProperties",
                           value_schema(&entry->fields[1], schemas));
    } else if (field->label == PROTOBUF_C_LABEL_REPEATED) {
        schema = json_pack("{s:s, s:o}", "type", "array", "items", value_schema(field, schemas));
    } else {
        schema = value_schema(field, schemas);
        if (json_object_get(schema, "$ref")) /* draft-07 ignores siblings of $ref: wrap it */
            schema = json_pack("{s:[o]}", "allOf", schema);
    }
    json_t *proto = json_pack("{s:s, s:i}", "name", field->name, "number", (int)field->id);
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        /* A proto3 `optional` field reaches protobuf-c as a one-field oneof (tools/proto-lower): in JSON it
         * is present whenever set, even when zero. A oneof of several fields holds at most one of them. */
        bool alone = oneof_members(message, field) == 1;
        json_object_set_new(proto, alone ? "optional" : "oneof", json_true());
        json_object_set_new(schema, "description",
                            json_string(alone ? "present when known, even if zero; absent means unknown"
                                              : "at most one field of its oneof is present"));
    }
    json_object_set_new(schema, "x-protobuf-field", proto);
    return schema;
}

static json_t *message_schema_ref(const ProtobufCMessageDescriptor *desc, json_t *schemas)
{
    if (json_object_get(schemas, desc->name))
        return ref_to("schemas", desc->name);
    /* Registered before its fields are walked, so that a recursive type refers to itself. */
    json_t *schema = json_object();
    json_object_set(schemas, desc->name, schema);
    json_t *properties = json_object();
    json_object_set_new(schema, "title", json_string(desc->short_name));
    json_object_set_new(schema, "type", json_string("object"));
    json_object_set_new(
        schema, "description",
        json_string("The canonical proto3 JSON mapping of the protobuf message: lowerCamelCase "
                    "keys (parsers also accept the proto names); fields at their default "
                    "value are left out."));
    json_object_set_new(schema, "properties", properties);
    json_object_set_new(schema, "x-protobuf-type", json_string(desc->name));
    /* protobuf-c keeps fields in field-number order: the order the mapping writes them in. */
    for (unsigned i = 0; i < desc->n_fields; i++) {
        char name[128];
        hs_json_field_name(desc->fields[i].name, name, sizeof name);
        json_object_set_new(properties, name, field_schema(desc, &desc->fields[i], schemas));
    }
    json_decref(schema);
    return ref_to("schemas", desc->name);
}

/* --- Messages: payload, key, headers ------------------------------------------------------------------- */

static json_t *header(const char *description)
{
    return json_pack("{s:s, s:s}", "type", "string", "description", description);
}

/* The CloudEvents 1.0 attributes in Kafka binary mode (common/io/src/event.c), for a value of type
 * `type_name`; a tombstone (`with_value` false) carries no content-type. */
static json_t *cloudevents_headers(const char *type_name, bool with_value)
{
    json_t *props = json_object();
    json_t *specversion = header("CloudEvents spec version");
    json_object_set_new(specversion, "const", json_string("1.0"));
    json_object_set_new(props, "ce_specversion", specversion);
    json_object_set_new(props, "ce_id",
                        header("Event id, deterministic: 32 hex digits of XXH3-128 over topic, key and value "
                               "(a service's outputs: over the output key and the input offsets), so that a "
                               "subscriber can de-duplicate"));
    json_object_set_new(props, "ce_source",
                        header("Who published it: /healthsignals/<service> for a service's outputs, "
                               "/healthsignals/hsctl or the publisher's own source for facts"));
    json_t *type = header("The protobuf message type of the value");
    json_object_set_new(type, "const", json_string(type_name));
    json_object_set_new(props, "ce_type", type);
    json_t *time = header("When the event was produced, RFC 3339 UTC with milliseconds");
    json_object_set_new(time, "format", json_string("date-time"));
    json_object_set_new(props, "ce_time", time);
    json_object_set_new(props, "ce_subject", header("The record key (the fact's identity)"));
    json_t *dataschema = header("The schema of the value: the protobuf message type, as a URI");
    json_object_set_new(dataschema, "format", json_string("uri-reference"));
    json_object_set_new(props, "ce_dataschema", dataschema);
    json_t *required = json_pack("[s,s,s,s,s]", "ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time");
    if (with_value) {
        json_t *content_type = header("The value's encoding: binary protobuf");
        json_object_set_new(content_type, "const", json_string(VALUE_CONTENT_TYPE));
        json_object_set_new(props, "content-type", content_type);
        json_array_append_new(required, json_string("content-type"));
    }
    return json_pack("{s:s, s:s, s:o, s:o}", "type", "object", "description",
                     "Kafka record headers: the CloudEvents 1.0 attributes in the Kafka protocol binding's "
                     "binary mode (ce_subject and ce_dataschema where the publisher sets them)",
                     "required", required, "properties", props);
}

/* The Kafka message binding: the record key's layout. */
static json_t *key_binding(const hs_topic *topic)
{
    char text[512];
    snprintf(
        text, sizeof text,
        "%s: the value's identity fields joined by '/', each escaped ('%%' as %%25, '/' as %%2F); a scope "
        "as kind:code (region:1084). The same key always names the same fact: a later value replaces "
        "it, a record without a value (tombstone) deletes it.",
        topic->key_layout);
    json_t *key = json_pack("{s:s, s:s}", "type", "string", "description", text);
    return json_pack("{s:{s:o, s:s}}", "kafka", "key", key, "bindingVersion", KAFKA_BINDING_VERSION);
}

static json_t *value_message(const hs_topic *topic, json_t *schemas)
{
    const ProtobufCMessageDescriptor *type = topic->value_type;
    char summary[256];
    snprintf(summary, sizeof summary, "%s on %s", type->short_name, topic->name);
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s}", "name", type->short_name, "title",
                     type->short_name, "summary", summary, "contentType", VALUE_CONTENT_TYPE, "headers",
                     cloudevents_headers(type->name, true), "payload", message_schema_ref(type, schemas),
                     "bindings", key_binding(topic), "x-protobuf-type", type->name);
}

static json_t *tombstone_message(const hs_topic *topic)
{
    const ProtobufCMessageDescriptor *type = topic->value_type;
    char name[160], summary[256];
    snprintf(name, sizeof name, "%sTombstone", type->short_name);
    snprintf(summary, sizeof summary, "Deletes the %s of its key from %s (a record without a value)",
             type->short_name, topic->name);
    return json_pack("{s:s, s:s, s:s, s:o, s:{s:s}, s:o}", "name", name, "title", name, "summary", summary,
                     "headers", cloudevents_headers(type->name, false), "payload", "type", "null", "bindings",
                     key_binding(topic));
}

/* hs.dlq.v1: the rejected record as it was, with the runtime's error headers (common/io/src/runtime.c). */
static json_t *dead_letter_message(const hs_topic *topic)
{
    json_t *props = json_object();
    json_object_set_new(props, "hs-error-code",
                        header("The error's name, e.g. PARSE or VALIDATION (hs_err)"));
    json_object_set_new(props, "hs-error", header("Why the record was rejected, for people"));
    json_object_set_new(props, "hs-source-topic", header("The topic the record was consumed from"));
    json_object_set_new(props, "hs-source-partition", header("Its partition, in decimal"));
    json_object_set_new(props, "hs-source-offset", header("Its offset, in decimal"));
    json_object_set_new(props, "hs-service", header("The service that rejected it"));
    json_t *headers = json_pack("{s:s, s:s, s:[s,s,s,s,s,s], s:o}", "type", "object", "description",
                                "The error headers, after the rejected record's own headers", "required",
                                "hs-error-code", "hs-error", "hs-source-topic", "hs-source-partition",
                                "hs-source-offset", "hs-service", "properties", props);
    json_t *key =
        json_pack("{s:s, s:s}", "type", "string", "description", "The rejected record's key, unchanged");
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:{s:s, s:s}, s:{s:{s:o, s:s}}}", "name", "DeadLetter",
                     "title", "DeadLetter", "summary", topic->description, "contentType",
                     "application/octet-stream", "headers", headers, "payload", "type", "string",
                     "description", "The rejected record's value bytes, unchanged", "bindings", "kafka",
                     "key", key, "bindingVersion", KAFKA_BINDING_VERSION);
}

/* --- Channels: one per topic --------------------------------------------------------------------------- */

static json_t *channel_binding(const hs_topic *topic)
{
    json_t *config = json_pack("{s:[s], s:I}", "cleanup.policy", topic->cleanup_policy, "retention.ms",
                               (json_int_t)topic->retention_ms);
    if (topic->max_message_bytes)
        json_object_set_new(config, "max.message.bytes", json_integer(topic->max_message_bytes));
    return json_pack("{s:{s:s, s:i, s:o, s:s}}", "kafka", "topic", topic->name, "partitions",
                     topic->partitions, "topicConfiguration", config, "bindingVersion",
                     KAFKA_BINDING_VERSION);
}

static json_t *partitioning(const hs_topic *topic)
{
    if (!topic->value_type)
        /* As the runtime produces them (common/io/src/runtime.c, the DLQ record). */
        return json_pack(
            "{s:s, s:i, s:s}", "algorithm", "source partition", "partitions", topic->partitions,
            "description",
            "partition = the rejected record's partition modulo the partition count, so that the "
            "dead letters of one input partition stay in their order");
    char text[512];
    snprintf(text, sizeof text,
             "partition = (murmur2(grouping key as UTF-8) & 0x7fffffff) %% %d, the Java client's default "
             "partitioner (Kafka's murmur2), so that everything one calculation needs meets in one "
             "partition. The grouping key is the value's %s field%s.",
             topic->partitions, topic->grouping,
             topic->global ? "; the topic has one partition and every instance reads it all" : "");
    return json_pack("{s:s, s:s, s:i, s:b, s:s}", "groupingKey", topic->grouping, "algorithm", "murmur2",
                     "partitions", topic->partitions, "readInFull", topic->global, "description", text);
}

static json_t *channel(const hs_topic *topic, json_t *messages, json_t *schemas)
{
    json_t *refs = json_object();
    if (topic->value_type) {
        const char *name = topic->value_type->short_name;
        char tombstone[160];
        snprintf(tombstone, sizeof tombstone, "%sTombstone", name);
        json_object_set_new(messages, name, value_message(topic, schemas));
        json_object_set_new(messages, tombstone, tombstone_message(topic));
        json_object_set_new(refs, name, ref_to("messages", name));
        json_object_set_new(refs, tombstone, ref_to("messages", tombstone));
    } else {
        json_object_set_new(messages, "DeadLetter", dead_letter_message(topic));
        json_object_set_new(refs, "DeadLetter", ref_to("messages", "DeadLetter"));
    }
    char description[768];
    snprintf(description, sizeof description,
             "%s. Record key: %s. Grouping key: %s. %d partition%s, cleanup.policy=%s%s.", topic->description,
             topic->key_layout, topic->grouping, topic->partitions, topic->partitions == 1 ? "" : "s",
             topic->cleanup_policy,
             topic->retention_ms < 0 ? " (a table: the latest value per key is kept)" : "");
    return json_pack("{s:s, s:s, s:o, s:o, s:o}", "address", topic->name, "description", description,
                     "messages", refs, "bindings", channel_binding(topic), "x-partitioning",
                     partitioning(topic));
}

/* --- Operations: who receives and sends what ----------------------------------------------------------- */

static void add_operation(json_t *ops, const char *who, const char *action, const char *topic_name,
                          const char *summary, const char *group)
{
    char id[256], ref[256];
    snprintf(id, sizeof id, "%s.%s.%s", who, action, topic_name);
    snprintf(ref, sizeof ref, "#/channels/%s", topic_name);
    json_t *op =
        json_pack("{s:s, s:{s:s}, s:s}", "action", action, "channel", "$ref", ref, "summary", summary);
    if (group)
        json_object_set_new(op, "bindings",
                            json_pack("{s:{s:{s:s, s:s}, s:s}}", "kafka", "groupId", "type", "string",
                                      "default", group, "bindingVersion", KAFKA_BINDING_VERSION));
    json_object_set_new(ops, id, op);
}

static bool listed(const char *const *topics, const char *name)
{
    for (; topics && *topics; topics++)
        if (strcmp(*topics, name) == 0)
            return true;
    return false;
}

static json_t *operations(void)
{
    json_t *ops = json_object();
    size_t calc_count, topic_count;
    const hs_calc *const *calcs = hsctl_calc_all(&calc_count);
    const hs_topic *topics = hs_topic_all(&topic_count);
    /* Facts: the topics with a value type that no service writes; hsctl publish (or any system) sends them.
     */
    for (size_t t = 0; t < topic_count; t++) {
        bool output = !topics[t].value_type;
        for (size_t c = 0; c < calc_count && !output; c++)
            output = listed(calcs[c]->outputs, topics[t].name);
        if (!output)
            add_operation(ops, "hsctl", "send", topics[t].name,
                          "hsctl publish (or any producer keying and partitioning as the channel says)",
                          NULL);
    }
    for (size_t c = 0; c < calc_count; c++) {
        const hs_calc *calc = calcs[c];
        char group[128], summary[256];
        snprintf(group, sizeof group, "hs-%s", calc->name);
        snprintf(summary, sizeof summary, "The %s service: %s", calc->name, calc->description);
        if (calc->uses_rules)
            add_operation(ops, calc->name, "receive", HS_TOPIC_RULES,
                          "Reads the whole rules table, every instance, before any fact", NULL);
        for (const char *const *in = calc->inputs; in && *in; in++)
            add_operation(ops, calc->name, "receive", *in, summary, group);
        for (const char *const *out = calc->outputs; out && *out; out++)
            add_operation(ops, calc->name, "send", *out, summary, NULL);
        add_operation(ops, calc->name, "send", HS_TOPIC_DLQ, "Rejected input, inside the same transaction",
                      NULL);
    }
    return ops;
}

/* --- The document -------------------------------------------------------------------------------------- */

static json_t *asyncapi_document(void)
{
    json_t *channels = json_object(), *messages = json_object(), *schemas = json_object();
    size_t count;
    const hs_topic *topics = hs_topic_all(&count);
    for (size_t i = 0; i < count; i++)
        json_object_set_new(channels, topics[i].name, channel(&topics[i], messages, schemas));
    const char *description =
        "The Kafka topics of healthsignals, generated by `hsctl contracts asyncapi` from the topic registry, "
        "the protobuf descriptors and the services' calculations. Every value is a protobuf message of the "
        "package healthsignals.v1 (proto/healthsignals/v1/, the schema source; the payload schemas here "
        "describe its canonical proto3 JSON mapping, the text form hsctl reads and writes). Topics holding "
        "facts and results are compacted tables: the key is the identity, the latest value wins, a tombstone "
        "deletes. Producers are transactional; read with isolation.level=read_committed.";
    return json_pack("{s:s, s:{s:s, s:s, s:s}, s:s, s:{s:{s:s, s:s, s:s}}, s:o, s:o, s:{s:o, s:o}}",
                     "asyncapi", "3.0.0", "info", "title", "healthsignals", "version", HS_VERSION,
                     "description", description, "defaultContentType", VALUE_CONTENT_TYPE, "servers", "local",
                     "host", "127.0.0.1:9092", "protocol", "kafka", "description",
                     "The default bootstrap server; set HS_BOOTSTRAP_SERVERS for any other cluster",
                     "channels", channels, "operations", operations(), "components", "messages", messages,
                     "schemas", schemas);
}

/* Writes `text` and a newline to `output`, or to standard output when NULL. A file is written beside it and
 * renamed into place, so that a failed run leaves the committed document as it was. */
static hs_err write_text(const char *output, const char *text)
{
    if (!output) {
        bool ok = fputs(text, stdout) >= 0 && fputc('\n', stdout) != EOF && fflush(stdout) == 0;
        return ok ? HS_OK : hsctl_fail(HS_ERR_IO, "cannot write standard output: %s", strerror(errno));
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", output) >= (int)sizeof tmp)
        return hsctl_fail(HS_ERR_USAGE, "--output path too long");
    FILE *out = fopen(tmp, "w");
    if (!out)
        return hsctl_fail(HS_ERR_IO, "cannot write %s: %s", output, strerror(errno));
    bool ok = fputs(text, out) >= 0 && fputc('\n', out) != EOF;
    ok = fclose(out) == 0 && ok;
    if (!ok || rename(tmp, output) != 0) {
        int saved = errno;
        remove(tmp);
        return hsctl_fail(HS_ERR_IO, "cannot write %s: %s", output, strerror(saved));
    }
    return HS_OK;
}

static hs_err contracts_asyncapi(const char *output)
{
    json_t *doc = asyncapi_document();
    if (!doc)
        return hsctl_fail(HS_ERR_INTERNAL, "could not build the AsyncAPI document");
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(doc);
    if (!text)
        return hsctl_fail(HS_ERR_NOMEM, "out of memory");
    hs_err err = write_text(output, text);
    free(text);
    return err;
}

hs_err hsctl_contracts(int argc, char **argv, const hsctl_globals *g)
{
    (void)g;
    const char *output = NULL;
    const hs_cli_option options[] = {
        {"output", 'o', HS_CLI_TEXT, &output},
        {0},
    };
    hs_cli_parse("hsctl contracts", argc, argv, options, false, usage);
    if (optind + 1 != argc || strcmp(argv[optind], "asyncapi") != 0) {
        usage(stderr);
        return HS_ERR_USAGE;
    }
    return contracts_asyncapi(output);
}
