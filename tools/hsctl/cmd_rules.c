/* hsctl rules: targets and thresholds as data. `apply` publishes the rules of a JSON file to hs.rules.v1
 * (one record per rule, keyed by id), validating each with the shared rules; `delete` publishes tombstones;
 * `list` reads the rules table (the compacted topic, latest value per id) and prints it as JSON lines.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "healthsignals/v1/rule.pb-c.h"
#include "hs/event.h"
#include "hs/json.h"
#include "hs/kafka.h"
#include "hs/validate.h"
#include "hs/wire.h"
#include "hs_cli.h"
#include "hsctl.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: hsctl rules apply FILE [--dry-run]\n"
            "       hsctl rules delete ID...\n"
            "       hsctl rules list [--service NAME]\n"
            "\n"
            "apply    publishes every rule of FILE to hs.rules.v1. FILE holds a JSON array of rules, or\n"
            "         an object with a \"rules\" array, each rule in the protobuf JSON mapping of\n"
            "         healthsignals.v1.Rule. Invalid rules are reported and not published; label\n"
            "         names must be [a-zA-Z_][a-zA-Z0-9_]*, not starting with __ (as Alertmanager's).\n"
            "         A rule the services hold already changes nothing: their committed outputs\n"
            "         reflect it, also after a crash or a change made while they were stopped\n"
            "delete   publishes a tombstone for each rule id: the services drop the rule and resolve\n"
            "         its alerts\n"
            "list     prints the current rules table, one rule per line, sorted by id\n");
}

static int delivery_failures;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    if (msg->err) {
        delivery_failures++;
        fprintf(stderr, "hsctl rules: rule %.*s not delivered: %s\n", (int)msg->key_len,
                (const char *)msg->key, rd_kafka_err2str(msg->err));
    }
}

static hs_err finish(rd_kafka_t *producer, const hsctl_globals *g, hs_err err)
{
    if (rd_kafka_flush(producer, g->timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR && err == HS_OK)
        err = hsctl_fail(HS_ERR_TIMEOUT, "rules not delivered within %d s", g->timeout_ms / 1000);
    rd_kafka_destroy(producer);
    if (err == HS_OK && delivery_failures)
        err = HS_ERR_KAFKA;
    return err;
}

static hs_err rules_apply(const char *path, bool dry_run, const hsctl_globals *g)
{
    json_error_t jerr;
    json_t *doc = strcmp(path, "-") == 0 ? json_loadf(stdin, JSON_REJECT_DUPLICATES, &jerr)
                                         : json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        return hsctl_fail(HS_ERR_PARSE, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    json_t *rules = json_is_array(doc) ? doc : json_object_get(doc, "rules");
    if (!json_is_array(rules)) {
        json_decref(doc);
        return hsctl_fail(HS_ERR_PARSE,
                          "%s: expected a JSON array of rules, or an object with a \"rules\" array", path);
    }

    const hs_topic *topic = hs_topic_find(HS_TOPIC_RULES);
    rd_kafka_t *producer = NULL;
    if (!dry_run) {
        const char *props[] = {"enable.idempotence", "true", "client.id", "hsctl", NULL};
        hs_err schemas = hsctl_schemas(g, topic); /* Confluent's wire format, with a registry */
        if (schemas) {
            json_decref(doc);
            return schemas;
        }
        producer = hsctl_client(RD_KAFKA_PRODUCER, g, props, on_delivery, NULL);
        if (!producer) {
            json_decref(doc);
            return HS_ERR_KAFKA;
        }
    }

    size_t index;
    json_t *item;
    long good = 0, bad = 0;
    hs_err err = HS_OK;
    json_array_foreach(rules, index, item)
    {
        hs_error error;
        const json_t *id = json_object_get(item, "id");
        ProtobufCMessage *rule = hs_json_to_message(&healthsignals__v1__rule__descriptor, item, &error);
        if (rule && hs_validate_message(rule, &error) == HS_OK) {
            good++;
            if (producer) {
                hs_event_meta meta = {.source = "/healthsignals/hsctl"};
                err = hs_kafka_produce(producer, topic, NULL, NULL, rule, &meta, &error);
                if (err != HS_OK)
                    hsctl_fail(err, "%s", error.message);
            }
        } else {
            bad++;
            fprintf(stderr, "%s: rules[%zu] (%s): %s\n", path, index,
                    json_is_string(id) ? json_string_value(id) : "no id", error.message);
        }
        if (rule)
            protobuf_c_message_free_unpacked(rule, NULL);
        if (err != HS_OK)
            break;
    }
    json_decref(doc);
    if (producer)
        err = finish(producer, g, err);
    fprintf(stderr, "hsctl rules: %s: %ld rules %s, %ld rejected\n", path, good,
            dry_run ? "valid (dry run)" : "published", bad);
    if (err != HS_OK)
        return err;
    return bad ? HS_ERR_VALIDATION : HS_OK;
}

static hs_err rules_delete(int count, char **ids, const hsctl_globals *g)
{
    const hs_topic *topic = hs_topic_find(HS_TOPIC_RULES);
    const char *props[] = {"enable.idempotence", "true", "client.id", "hsctl", NULL};
    rd_kafka_t *producer = hsctl_client(RD_KAFKA_PRODUCER, g, props, on_delivery, NULL);
    if (!producer)
        return HS_ERR_KAFKA;
    hs_err err = HS_OK;
    for (int i = 0; i < count && err == HS_OK; i++) {
        hs_error error;
        char key[HS_KEY_MAX];
        const char *parts[] = {ids[i]};
        hs_event_meta meta = {.source = "/healthsignals/hsctl"};
        err = hs_key_join(key, parts, 1, &error);
        if (err == HS_OK)
            err = hs_kafka_produce(producer, topic, key, key, NULL, &meta, &error);
        if (err != HS_OK)
            hsctl_fail(err, "%s", error.message);
        else
            fprintf(stderr, "hsctl rules: deleted %s\n", ids[i]);
    }
    return finish(producer, g, err);
}

/* One row of the rules table while it is read. */
typedef struct rule_row {
    char *key;
    char *line; /* NULL once deleted */
} rule_row;

static int compare_rows(const void *a, const void *b)
{
    return strcmp(((const rule_row *)a)->key, ((const rule_row *)b)->key);
}

static hs_err rules_list(const char *service, const hsctl_globals *g)
{
    rd_kafka_t *rk = hsctl_reader(g);
    if (!rk)
        return HS_ERR_KAFKA;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, HS_TOPIC_RULES, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);

    rule_row *rows = NULL;
    size_t count = 0, cap = 0;
    hs_err err = HS_OK;
    int waited_ms = 0;
    for (;;) {
        rd_kafka_message_t *record = rd_kafka_consumer_poll(rk, 200);
        if (!record) {
            waited_ms += 200;
            if (waited_ms > g->timeout_ms) {
                err =
                    hsctl_fail(HS_ERR_TIMEOUT, "no answer from the broker within %d s", g->timeout_ms / 1000);
                break;
            }
            continue;
        }
        if (record->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(record);
            break;
        }
        if (record->err) {
            err = hsctl_fail(HS_ERR_KAFKA, "reading %s: %s", HS_TOPIC_RULES, rd_kafka_message_errstr(record));
            rd_kafka_message_destroy(record);
            break;
        }
        char *key = strndup(record->key ? record->key : "", record->key_len);
        char *line = NULL;
        if (record->payload) {
            ProtobufCMessage *rule =
                hs_wire_unpack(&healthsignals__v1__rule__descriptor, NULL, record->len, record->payload);
            if (rule && (!service || strcmp(((Healthsignals__V1__Rule *)rule)->service, service) == 0))
                line = hs_json_encode_text(rule);
            else if (!rule)
                fprintf(stderr, "hsctl rules: record %s does not decode as a Rule; skipped\n", key);
            if (rule)
                protobuf_c_message_free_unpacked(rule, NULL);
        }
        size_t i;
        for (i = 0; i < count && strcmp(rows[i].key, key) != 0; i++)
            ;
        if (i == count) {
            if (count == cap) {
                cap = cap ? cap * 2 : 64;
                rows = realloc(rows, cap * sizeof *rows);
            }
            rows[count++] = (rule_row){key, line};
        } else {
            free(key);
            free(rows[i].line);
            rows[i].line = line;
        }
        rd_kafka_message_destroy(record);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);

    if (count)
        qsort(rows, count, sizeof *rows, compare_rows);
    for (size_t i = 0; i < count; i++) {
        if (err == HS_OK && rows[i].line)
            puts(rows[i].line);
        free(rows[i].key);
        free(rows[i].line);
    }
    free(rows);
    return err;
}

hs_err hsctl_rules(int argc, char **argv, const hsctl_globals *g)
{
    bool dry_run = false;
    const char *service = NULL;
    const hs_cli_option options[] = {
        {"dry-run", 0, HS_CLI_FLAG, &dry_run},
        {"service", 0, HS_CLI_TEXT, &service},
        {0},
    };
    hs_cli_parse("hsctl rules", argc, argv, options, false, usage);
    const char *action = optind < argc ? argv[optind++] : "";
    if (strcmp(action, "apply") == 0 && optind + 1 == argc)
        return rules_apply(argv[optind], dry_run, g);
    if (strcmp(action, "delete") == 0 && optind < argc)
        return rules_delete(argc - optind, argv + optind, g);
    if (strcmp(action, "list") == 0 && optind == argc)
        return rules_list(service, g);
    usage(stderr);
    return HS_ERR_USAGE;
}
