/* hsctl tail: print a topic's records as CloudEvents JSON lines, decoded through the topic registry.
 * It reads without joining a consumer group (partitions are assigned), with read_committed isolation, so it
 * shows what services see and moves no one's offsets. Tombstones print with "data": null; records that do
 * not decode, and dead letters, print their bytes as data_base64 with the reason. Every record is printed:
 * keys, headers and errors that are not UTF-8 are escaped (\xNN), and a record that still cannot be printed
 * is named on stderr and fails the run. Every line carries its record's partition ("hspartition"), so that
 * hsctl calc over a tailed topic refuses what the services refused for its partition.
 */
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hs/event.h"
#include "hs/json.h"
#include "hs/wire.h"
#include "hs_cli.h"
#include "hsctl.h"

static volatile sig_atomic_t stop_requested;

static void on_sigint(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: hsctl tail TOPIC [--from-beginning] [--follow] [-n N] [--key KEY]\n"
            "\n"
            "Prints records of TOPIC as CloudEvents JSON lines (read_committed, no consumer group).\n"
            "\n"
            "  --from-beginning   start at the first record of each partition\n"
            "  -n, --lines N      without --from-beginning: start N records before the end of each\n"
            "                     partition (default 10); with it: stop after N records\n"
            "  -f, --follow       keep printing new records until Ctrl-C\n"
            "  -k, --key KEY      only records whose key is KEY\n"
            "  --format FORMAT    json (default): CloudEvents JSON lines; text: one readable line per\n"
            "                     record, the key then the data's fields as name=value\n"
            "\n"
            "Records that do not decode, and dead letters (hs.dlq.v1), print their bytes as data_base64\n"
            "and their errors as hserrorcode, hserror, hssourcetopic, ...; text that is not UTF-8 is\n"
            "printed with those bytes as \\xNN. For dead letters see also 'hsctl dlq'.\n");
}

/* Appends the fields of `value` to `out` as name=value, nested names joined with '.'. */
static void flatten(FILE *out, const char *prefix, const json_t *value)
{
    if (json_is_object(value)) {
        const char *name;
        json_t *item;
        json_object_foreach((json_t *)value, name, item)
        {
            char path[256];
            snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", name);
            flatten(out, path, item);
        }
        return;
    }
    fprintf(out, " %s=", prefix);
    if (json_is_array(value)) {
        size_t i;
        json_t *item;
        json_array_foreach(value, i, item)
        {
            char *text = json_is_string(item) ? NULL : json_dumps(item, JSON_ENCODE_ANY | JSON_COMPACT);
            fprintf(out, "%s%s", i ? "," : "", text ? text : json_string_value(item));
            free(text);
        }
    } else if (json_is_string(value)) {
        const char *text = json_string_value(value);
        fprintf(out, strpbrk(text, " \t") ? "\"%s\"" : "%s", text);
    } else {
        char *text = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
        fputs(text ? text : "?", out);
        free(text);
    }
}

/* The readable form of one event: key, then its data flattened, or what kind of record it is. */
static void print_text(FILE *out, const json_t *event)
{
    const char *subject = json_string_value(json_object_get(event, "subject"));
    fprintf(out, "%-56s", subject ? subject : "(no key)");
    const json_t *data = json_object_get(event, "data");
    if (json_object_get(event, "data_base64")) {
        fputs(" dead letter:", out);
        const char *attrs[] = {"hserrorcode", "hserror", "hssourcetopic", "hssourceoffset", "hsdecodeerror"};
        for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++) {
            const json_t *v = json_object_get(event, attrs[i]);
            if (v)
                flatten(out, attrs[i], v);
        }
    } else if (!data || json_is_null(data)) {
        fputs(" (deleted)", out);
    } else {
        flatten(out, "", data);
    }
    fputc('\n', out);
}

void hsctl_add_header_attr(json_t *event, const rd_kafka_message_t *record, const char *header,
                           const char *attr)
{
    rd_kafka_headers_t *headers;
    const void *value;
    size_t len;
    if (rd_kafka_message_headers(record, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(headers, header, &value, &len) == RD_KAFKA_RESP_ERR_NO_ERROR && value)
        json_object_set_new(event, attr, hs_json_string_escaped(value, len));
}

void hsctl_add_dead_letter_attrs(json_t *event, const rd_kafka_message_t *record)
{
    static const char *const headers[][2] = {
        {"hs-error-code", "hserrorcode"},       {"hs-error", "hserror"},
        {"hs-source-topic", "hssourcetopic"},   {"hs-source-partition", "hssourcepartition"},
        {"hs-source-offset", "hssourceoffset"}, {"hs-service", "hsservice"},
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++)
        hsctl_add_header_attr(event, record, headers[i][0], headers[i][1]);
}

/* Adds the record's extension attributes (ce_<name> headers) to its JSON form. */
static void add_extensions(json_t *event, const rd_kafka_message_t *record)
{
    json_t *extensions = hs_event_read_extensions(record);
    if (extensions) {
        json_object_update_missing(event, extensions);
        json_decref(extensions);
    }
}

json_t *hsctl_record_to_json(const hs_topic *topic, const rd_kafka_message_t *record)
{
    hs_event_meta meta;
    hs_event_read_headers(record, &meta);
    char *key = strndup(record->key ? (const char *)record->key : "", record->key_len);
    if (!key)
        return NULL;
    if (!meta.type[0])
        snprintf(meta.type, sizeof meta.type, "%s",
                 topic->value_type ? topic->value_type->name : HS_EVENT_TYPE_DEAD_LETTER);

    json_t *event = NULL;
    const char *decode_error = NULL;
    if (!record->payload) {
        event = hs_event_to_json(&meta, key, NULL);
    } else if (topic->value_type) {
        ProtobufCMessage *value =
            hs_wire_unpack(topic->value_type, NULL, record->len, (const uint8_t *)record->payload);
        if (value) {
            event = hs_event_to_json(&meta, key, value);
            protobuf_c_message_free_unpacked(value, NULL);
        } else {
            decode_error = "value is not a valid protobuf encoding of the topic's type";
        }
    }
    if (!event && (event = hs_event_to_json(&meta, key, NULL))) {
        /* Raw bytes: dead letters, and records that do not decode. */
        char *b64 = hs_json_base64_encode(record->payload, record->len);
        json_object_del(event, "data");
        json_object_set_new(event, "data_base64", json_string(b64 ? b64 : ""));
        free(b64);
        if (decode_error)
            json_object_set_new(event, "hsdecodeerror", json_string(decode_error));
        hsctl_add_dead_letter_attrs(event, record);
    }
    if (event && !topic->value_type && !record->payload)
        hsctl_add_dead_letter_attrs(event, record); /* a dead-lettered tombstone: "data": null, and why */
    if (event) {
        /* Where the record was: hsctl calc refuses, as the services do, a record not on its grouping key's
         * partition (an attribute of this project's, which hsctl publish does not carry). */
        json_object_set_new(event, "hspartition", json_integer(record->partition));
        add_extensions(event, record);
    }
    free(key);
    return event;
}

hs_err hsctl_tail(int argc, char **argv, const hsctl_globals *g)
{
    bool from_beginning = false, follow = false, text_format = false;
    long lines = LONG_MIN; /* not given: every record */
    const char *only_key = NULL;
    const char *format = "json";
    const hs_cli_option options[] = {
        {"from-beginning", 0, HS_CLI_FLAG, &from_beginning},
        {"follow", 'f', HS_CLI_FLAG, &follow},
        {"lines", 'n', HS_CLI_LONG, &lines},
        {"key", 'k', HS_CLI_TEXT, &only_key},
        {"format", 0, HS_CLI_TEXT, &format},
        {0},
    };
    hs_cli_parse("hsctl tail", argc, argv, options, false, usage);
    if (lines == LONG_MIN)
        lines = -1;
    else if (lines < 0)
        return hsctl_fail(HS_ERR_USAGE, "-n must be a whole number >= 0");
    if (strcmp(format, "text") != 0 && strcmp(format, "json") != 0)
        return hsctl_fail(HS_ERR_USAGE, "--format must be json or text");
    text_format = strcmp(format, "text") == 0;
    if (optind + 1 != argc) {
        usage(stderr);
        return HS_ERR_USAGE;
    }
    const hs_topic *topic = hsctl_topic_arg(argv[optind]);
    if (!topic)
        return HS_ERR_NOT_FOUND;

    rd_kafka_t *rk = hsctl_reader(g);
    if (!rk)
        return HS_ERR_KAFKA;

    /* Partitions of the topic, from the broker. */
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic->name, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(rk, 0, rkt, &md, g->timeout_ms);
    rd_kafka_topic_destroy(rkt);
    hs_err err = HS_OK;
    if (kerr) {
        err = hsctl_fail(HS_ERR_KAFKA, "cannot read metadata of %s from %s: %s", topic->name,
                         g->bootstrap ? g->bootstrap : "the broker", rd_kafka_err2str(kerr));
        goto out;
    }
    if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
        err = hsctl_topic_missing(md, topic->name);
        goto out;
    }

    int partition_cnt = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *assignment = rd_kafka_topic_partition_list_new(partition_cnt);
    for (int i = 0; i < partition_cnt; i++) {
        int32_t id = md->topics[0].partitions[i].id;
        int64_t low = 0, high = 0;
        kerr = hsctl_watermarks(rk, topic->name, id, &low, &high, g->timeout_ms);
        if (kerr) {
            rd_kafka_topic_partition_list_destroy(assignment);
            err = hsctl_fail(HS_ERR_KAFKA, "cannot read offsets of %s [%d]: %s", topic->name, id,
                             rd_kafka_err2str(kerr));
            goto out;
        }
        long back = lines < 0 ? 10 : lines;
        int64_t start = from_beginning ? low : (high - back > low ? high - back : low);
        rd_kafka_topic_partition_list_add(assignment, topic->name, id)->offset = start;
    }
    rd_kafka_assign(rk, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);

    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    /* Each partition reports its end once per catch-up; count distinct partitions (ids are 0..n-1). */
    bool *ended = calloc((size_t)partition_cnt, sizeof *ended);
    int at_end = 0;
    long printed = 0;
    while (!stop_requested) {
        rd_kafka_message_t *record = rd_kafka_consumer_poll(rk, 200);
        if (!record)
            continue;
        if (record->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            int32_t p = record->partition;
            rd_kafka_message_destroy(record);
            if (p >= 0 && p < partition_cnt && !ended[p]) {
                ended[p] = true;
                at_end++;
            }
            if (at_end >= partition_cnt && !follow)
                break;
            continue;
        }
        if (record->err) {
            fprintf(stderr, "hsctl tail: %s\n", rd_kafka_message_errstr(record));
            rd_kafka_message_destroy(record);
            continue;
        }
        if (!only_key ||
            (record->key_len == strlen(only_key) && memcmp(record->key, only_key, record->key_len) == 0)) {
            json_t *event = hsctl_record_to_json(topic, record);
            char *text = event && !text_format ? json_dumps(event, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
            if (event && text_format) {
                print_text(stdout, event);
            } else if (text) {
                puts(text);
            } else {
                /* Out of memory: say which record is missing from the output, never skip it quietly. */
                fprintf(stderr, "hsctl tail: %s [%" PRId32 "] offset %" PRId64 " could not be printed\n",
                        topic->name, record->partition, record->offset);
                err = HS_ERR_NOMEM;
            }
            free(text);
            json_decref(event);
            printed++;
            if (follow)
                fflush(stdout);
        }
        rd_kafka_message_destroy(record);
        if (from_beginning && lines >= 0 && printed >= lines)
            break;
    }
    fflush(stdout);
    free(ended);

out:
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return err;
}
