/* hsctl publish: validate facts and publish the good ones. Input is CSV (indicator data, in the layout of
 * docs/design.md §8) or CloudEvents JSON lines. Each row is validated with the shared hs/validate.h; a bad
 * row is reported as FILE:LINE: reason and skipped, the good ones are published with the idempotent
 * producer, keyed by fact identity and partitioned by grouping key, with the CloudEvents attributes the
 * input event brought (id, source, time, extensions) as headers. Data given as data_base64 must decode as the
 * topic's message: bytes are never mistaken for a deletion. The exit status is 0 only if every row was good
 * and every record was delivered.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hs/csv.h"
#include "hs/event.h"
#include "hs/json.h"
#include "hs/kafka.h"
#include "hs/validate.h"
#include "hs_cli.h"
#include "hsctl.h"
#include "ledger.h"

#define MAX_LINE_BYTES        (1024 * 1024)
#define MAX_REPORTED_FAILURES 20

typedef struct publish_run {
    const hs_topic *topic;
    const char *name; /* input name for messages: the file, or "-" */
    rd_kafka_t *producer;
    bool dry_run;
    bool ignore_unknown;   /* --ignore-unknown-fields */
    bool dropped_reported; /* the note on dead-letter attributes was printed */
    const char *source;
    long rows, published, rejected;
    long delivered, undelivered;
    rd_kafka_resp_err_t first_error;       /* of the first record not delivered */
    long unknown_fields, unknown_reported; /* fields --ignore-unknown-fields dropped; how many were shown */
    long line_no;                          /* the line being read, for reports */
    struct timespec started, last_progress;
} publish_run;

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: hsctl publish TOPIC (--csv FILE | --ndjson FILE | -) [--dry-run] [--source URI]\n"
        "                     [--ignore-unknown-fields]\n"
        "\n"
        "Validates every row and publishes the good ones to TOPIC. Bad rows are reported as\n"
        "FILE:LINE: reason on stderr and not published. FILE '-' reads standard input.\n"
        "\n"
        "  --csv FILE       indicator data as CSV (hs.indicators.v1), header\n"
        "                   indicator,scope,period,value[,unit,volume,provisional,suspended,flags,source];\n"
        "                   or budget lines (hs.budget.v1), header unit,line,year,kind,amount_dkk\n"
        "                   [,revision,source]: kind BUDGET, EXPECTED_ACCOUNTS or ACCOUNTS, amounts in\n"
        "                   kroner, plain (-152100000, 25.85) or Danish (-152.100.000, 25,85)\n"
        "  --ndjson FILE    CloudEvents JSON, one event per line: \"data\" in proto3 JSON or\n"
        "                   \"data_base64\" the protobuf bytes (as hsctl tail prints dead letters);\n"
        "                   \"data\": null with a \"subject\" publishes a tombstone (deletes the fact\n"
        "                   with that key). The event's id, source, time and extension attributes\n"
        "                   (traceparent, ...) are kept as ce_* headers; an invalid time is rejected.\n"
        "                   A \"subject\" beside data must be the data's identity (the record key)\n"
        "  -                same as --ndjson -\n"
        "  --dry-run        validate only; publish nothing\n"
        "  --source URI     CloudEvents source of events that carry none (default /healthsignals/hsctl)\n"
        "  --ignore-unknown-fields\n"
        "                   for JSON written against a newer schema: skip fields of \"data\" that\n"
        "                   this version does not know (each reported on stderr as FILE:LINE, and\n"
        "                   counted in the summary) instead of rejecting the line; values of known\n"
        "                   fields are checked as always (an enum number this version does not\n"
        "                   know is still rejected)\n"
        "\n"
        "Exit status 0 only if every row was good and every record was delivered; 1 if rows were\n"
        "rejected (the good ones are still published); 3 if the broker failed.\n");
}

static double seconds_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void progress(publish_run *run)
{
    if (seconds_since(&run->last_progress) < 2.0)
        return;
    clock_gettime(CLOCK_MONOTONIC, &run->last_progress);
    fprintf(stderr, "hsctl publish: %s: %ld rows read, %ld %s, %ld rejected (%.0f rows/s)\n", run->name,
            run->rows, run->published, run->dry_run ? "valid" : "published", run->rejected,
            (double)run->rows / seconds_since(&run->started));
}

static void reject(publish_run *run, long line, const char *reason)
{
    run->rejected++;
    fprintf(stderr, "%s:%ld: %s\n", run->name, line, reason);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    publish_run *run = opaque;
    if (!msg->err) {
        run->delivered++;
        return;
    }
    if (run->undelivered == 0)
        run->first_error = msg->err;
    if (run->undelivered++ < MAX_REPORTED_FAILURES)
        fprintf(stderr, "hsctl publish: record %.*s not delivered: %s\n", (int)msg->key_len,
                (const char *)msg->key, rd_kafka_err2str(msg->err));
}

/* Produces one validated record, waiting for queue space if the producer is ahead of the broker. `in` (NULL
 * for CSV rows) holds the attributes the input event brought — id, source, time, extensions — which the
 * record keeps; what it lacks is filled in (the source from --source). */
static hs_err publish_record(publish_run *run, long line, const char *key, const ProtobufCMessage *value,
                             const hs_event_meta *in)
{
    run->published++;
    if (run->dry_run)
        return HS_OK;
    hs_event_meta meta = {0};
    if (in) {
        meta = *in;
        meta.type[0] = meta.dataschema[0] = '\0'; /* the topic's, checked by hs_event_from_json() */
    }
    if (!meta.source[0])
        snprintf(meta.source, sizeof meta.source, "%s", run->source);
    char group[HS_KEY_MAX];
    hs_error error;
    if (!value && hs_topic_group_of_key(run->topic, key, group, &error) != HS_OK) {
        run->published--;
        reject(run, line, error.message);
        return HS_OK;
    }
    for (;;) {
        hs_event_meta attempt = meta;
        hs_err err = hs_kafka_produce(run->producer, run->topic, value ? NULL : key, value ? NULL : group,
                                      value, &attempt, &error);
        if (err == HS_OK)
            return HS_OK;
        if (err != HS_ERR_TIMEOUT) /* not a full queue: a real failure */
            return hsctl_fail(err, "%s", error.message);
        rd_kafka_poll(run->producer, 100);
    }
}

/* --- CloudEvents JSON lines ------------------------------------------------------------------------------
 */

static void on_unknown_field(void *ctx, const char *path)
{
    publish_run *run = ctx;
    run->unknown_fields++;
    if (run->unknown_reported++ < MAX_REPORTED_FAILURES)
        fprintf(stderr, "%s:%ld: ignored unknown field data.%s\n", run->name, run->line_no, path);
}

/* --ignore-unknown-fields: drops what this version does not know from the event's data, if the event is of
 * the topic's type (any other event is rejected as it is). */
static void drop_unknown_fields(publish_run *run, json_t *event)
{
    const json_t *type = json_object_get(event, "type");
    json_t *data = json_object_get(event, "data");
    if (json_is_string(type) && hs_topic_find_by_type(json_string_value(type)) == run->topic)
        hs_json_drop_unknown_fields(run->topic->value_type, data, on_unknown_field, run);
}

static hs_err publish_ndjson(publish_run *run, FILE *in)
{
    char *line = NULL;
    size_t cap = 0;
    long len, line_no = 0;
    hs_err fatal = HS_OK;
    while (fatal == HS_OK && (len = hsctl_read_line(in, &line, &cap, (size_t)MAX_LINE_BYTES)) != -1) {
        line_no++;
        if (len == -2) {
            run->rows++;
            reject(run, line_no, "line longer than 1048576 bytes");
            continue;
        }
        char *text = line;
        if (line_no == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            text += 3; /* a UTF-8 byte order mark, as editors on Windows write */
            len -= 3;
        }
        if (len == 0 || strspn(text, " \t") == (size_t)len)
            continue; /* blank lines separate nothing and are not rows */
        run->rows++;

        json_error_t jerr;
        json_t *event = json_loadb(text, (size_t)len, JSON_REJECT_DUPLICATES, &jerr);
        if (!event) {
            char reason[300];
            snprintf(reason, sizeof reason, "invalid JSON at column %d: %s", jerr.column, jerr.text);
            reject(run, line_no, reason);
            continue;
        }
        run->line_no = line_no;
        if (run->ignore_unknown)
            drop_unknown_fields(run, event);
        const hs_topic *topic;
        ProtobufCMessage *value;
        hs_event_meta meta;
        char key[HS_KEY_MAX];
        hs_error error;
        hs_err err = hs_event_from_json(event, &topic, &value, &meta, key, &error);
        const json_t *subject = json_object_get(event, "subject");
        bool has_subject = json_is_string(subject) && json_string_length(subject) > 0;
        json_t *extensions = NULL;
        char dropped[256];
        if (err == HS_OK)
            err = hs_event_extensions(event, &extensions, dropped, &error);
        json_decref(event);
        meta.extensions = extensions;
        if (err == HS_OK && dropped[0] && !run->dropped_reported) {
            /* Dead-letter diagnostics describe the rejection, not the fact: said once, not carried. */
            fprintf(stderr, "%s:%ld: note: attributes %s describe a dead letter and are not published\n",
                    run->name, line_no, dropped);
            run->dropped_reported = true;
        }
        if (err == HS_OK && topic != run->topic) {
            err = hs_error_set(&error, HS_ERR_VALIDATION, "type: %s belongs on %s, not %s", meta.type,
                               topic->name, run->topic->name);
        }
        if (err == HS_OK && value)
            err = hs_validate_message(value, &error);
        if (err == HS_OK && value) {
            /* Validation may normalise identity fields (region names to codes): the key is the result's
             * identity. A subject given beside the data must be that identity: the services admit a record
             * under no other key (hs_topic_admit), and publishing under another would leave the fact the
             * subject names in place. */
            char group[HS_KEY_MAX];
            if (has_subject && (err = hs_topic_check_key(topic, key, value, group, &error)) != HS_OK)
                hs_error_prefix(&error, "subject");
            else if (!has_subject)
                err = hs_topic_key(topic, value, key, group, &error);
        }
        if (err == HS_OK)
            fatal = publish_record(run, line_no, key, value, &meta);
        else
            reject(run, line_no, error.message);
        if (value)
            protobuf_c_message_free_unpacked(value, NULL);
        json_decref(extensions);
        if (run->producer)
            rd_kafka_poll(run->producer, 0);
        progress(run);
    }
    free(line);
    return fatal;
}

/* --- CSV (indicator data) ------------------------------------------------------------------------------- */

typedef struct csv_run {
    publish_run *run;
    hs_csv_header header;
    bool have_header;
    hs_err fatal;
} csv_run;

static int on_csv_row(void *ctx, const hs_csv_row *row)
{
    csv_run *c = ctx;
    publish_run *run = c->run;
    hs_error error;
    if (!c->have_header) {
        if (hs_csv_header_parse(&c->header, row, &error) != HS_OK) {
            c->fatal = hsctl_fail(HS_ERR_PARSE, "%s:%ld: %s", run->name, row->line, error.message);
            return 1;
        }
        c->have_header = true;
        return 0;
    }
    run->rows++;
    Healthsignals__V1__IndicatorObservation *obs = NULL;
    if (hs_indicator_from_csv(&c->header, row, &obs, &error) != HS_OK) {
        reject(run, row->line, error.message);
    } else {
        c->fatal = publish_record(run, row->line, NULL, &obs->base, NULL);
        protobuf_c_message_free_unpacked(&obs->base, NULL);
    }
    if (run->producer)
        rd_kafka_poll(run->producer, 0);
    progress(run);
    return c->fatal != HS_OK;
}

/* --- CSV (budget lines) --------------------------------------------------------------------------------- */

enum { BL_UNIT, BL_LINE, BL_YEAR, BL_KIND, BL_AMOUNT, BL_REVISION, BL_SOURCE, BL_COLUMNS };
static const char *const budget_columns[BL_COLUMNS] = {"unit",       "line",     "year",  "kind",
                                                       "amount_dkk", "revision", "source"};

typedef struct budget_csv_run {
    publish_run *run;
    int index[BL_COLUMNS]; /* file column of each layout column, -1 when absent */
    size_t count;          /* columns in the file */
    bool have_header;
    hs_err fatal;
} budget_csv_run;

static hs_err budget_header(budget_csv_run *c, const hs_csv_row *row, hs_error *error)
{
    if (row->error)
        return hs_error_set(error, HS_ERR_PARSE, "%s", row->error->message);
    for (int k = 0; k < BL_COLUMNS; k++)
        c->index[k] = -1;
    for (size_t i = 0; i < row->count; i++) {
        int k = 0;
        while (k < BL_COLUMNS && strcasecmp(row->fields[i], budget_columns[k]) != 0)
            k++;
        if (k == BL_COLUMNS)
            return hs_error_set(error, HS_ERR_PARSE,
                                "header: unknown column '%.60s' (budget lines: unit,line,year,kind,amount_dkk"
                                "[,revision,source])",
                                row->fields[i]);
        if (c->index[k] >= 0)
            return hs_error_set(error, HS_ERR_PARSE, "header: column '%s' given twice", budget_columns[k]);
        c->index[k] = (int)i;
    }
    for (int k = 0; k <= BL_AMOUNT; k++)
        if (c->index[k] < 0)
            return hs_error_set(error, HS_ERR_PARSE, "header: column '%s' is required", budget_columns[k]);
    c->count = row->count;
    return HS_OK;
}

/* One BudgetLine from a data row, validated; `*out` malloc'd (free with protobuf_c_message_free_unpacked). */
static hs_err budget_from_row(const budget_csv_run *c, const hs_csv_row *row,
                              Healthsignals__V1__BudgetLine **out, hs_error *error)
{
    *out = NULL;
    if (row->error)
        return hs_error_set(error, row->error->code, "%s", row->error->message);
    if (row->count != c->count)
        return hs_error_set(error, HS_ERR_PARSE, "wrong number of columns: %zu, header has %zu", row->count,
                            c->count);
    const char *f[BL_COLUMNS];
    for (int k = 0; k < BL_COLUMNS; k++)
        f[k] = c->index[k] >= 0 ? row->fields[c->index[k]] : "";
    char *end;
    errno = 0;
    long year = strtol(f[BL_YEAR], &end, 10);
    if (!*f[BL_YEAR] || *end || errno || year < INT32_MIN || year > INT32_MAX)
        return hs_error_set(error, HS_ERR_PARSE, "year: '%.40s' is not a year", f[BL_YEAR]);
    const ProtobufCEnumValue *kind =
        protobuf_c_enum_descriptor_get_value_by_name(&healthsignals__v1__budget_kind__descriptor, f[BL_KIND]);
    if (!kind || kind->value == 0)
        return hs_error_set(error, HS_ERR_PARSE, "kind: '%.40s' is not BUDGET, EXPECTED_ACCOUNTS or ACCOUNTS",
                            f[BL_KIND]);
    int64_t ore;
    if (budget_parse_dkk(f[BL_AMOUNT], &ore, error) != HS_OK) {
        hs_error_prefix(error, "amount_dkk");
        return HS_ERR_PARSE;
    }
    unsigned long revision = 0;
    if (*f[BL_REVISION]) {
        errno = 0;
        revision = strtoul(f[BL_REVISION], &end, 10);
        if (*end || errno || revision > UINT32_MAX || f[BL_REVISION][0] == '-')
            return hs_error_set(error, HS_ERR_PARSE, "revision: '%.40s' is not a whole number",
                                f[BL_REVISION]);
    }
    Healthsignals__V1__BudgetLine line = HEALTHSIGNALS__V1__BUDGET_LINE__INIT;
    line.unit = (char *)f[BL_UNIT];
    line.line = (char *)f[BL_LINE];
    line.year = (int32_t)year;
    line.kind = (Healthsignals__V1__BudgetKind)kind->value;
    line.amount_ore = ore;
    line.revision = (uint32_t)revision;
    line.source = (char *)f[BL_SOURCE];
    /* An owned copy, so that validation may normalise it in place. */
    size_t len = protobuf_c_message_get_packed_size(&line.base);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    protobuf_c_message_pack(&line.base, buf);
    *out = healthsignals__v1__budget_line__unpack(NULL, len, buf);
    free(buf);
    if (!*out)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    hs_err err = hs_validate_budget_line(*out, error);
    if (err) {
        protobuf_c_message_free_unpacked(&(*out)->base, NULL);
        *out = NULL;
    }
    return err;
}

static int on_budget_row(void *ctx, const hs_csv_row *row)
{
    budget_csv_run *c = ctx;
    publish_run *run = c->run;
    hs_error error;
    if (!c->have_header) {
        if (budget_header(c, row, &error) != HS_OK) {
            c->fatal = hsctl_fail(HS_ERR_PARSE, "%s:%ld: %s", run->name, row->line, error.message);
            return 1;
        }
        c->have_header = true;
        return 0;
    }
    run->rows++;
    Healthsignals__V1__BudgetLine *line;
    if (budget_from_row(c, row, &line, &error) != HS_OK) {
        reject(run, row->line, error.message);
    } else {
        c->fatal = publish_record(run, row->line, NULL, &line->base, NULL);
        protobuf_c_message_free_unpacked(&line->base, NULL);
    }
    if (run->producer)
        rd_kafka_poll(run->producer, 0);
    progress(run);
    return c->fatal != HS_OK;
}

static hs_err publish_csv(publish_run *run, FILE *in)
{
    bool budget = strcmp(run->topic->name, HS_TOPIC_BUDGET) == 0;
    if (!budget && strcmp(run->topic->name, HS_TOPIC_INDICATORS) != 0)
        return hsctl_fail(HS_ERR_USAGE,
                          "--csv is for indicator data (%s) and budget lines (%s); use --ndjson for %s",
                          HS_TOPIC_INDICATORS, HS_TOPIC_BUDGET, run->topic->name);
    csv_run c = {.run = run};
    budget_csv_run b = {.run = run};
    hs_error error;
    hs_err err = budget ? hs_csv_read(in, run->name, on_budget_row, &b, &error)
                        : hs_csv_read(in, run->name, on_csv_row, &c, &error);
    if (budget)
        c.fatal = b.fatal;
    if (c.have_header)
        hs_csv_header_free(&c.header);
    if (c.fatal != HS_OK)
        return c.fatal;
    if (err != HS_OK) {
        /* A structural error (empty file, read error) ends the file; its reason already names it. */
        run->rejected++;
        fprintf(stderr, "%s\n", error.message);
    }
    return HS_OK;
}

/* --- the command ---------------------------------------------------------------------------------------- */

hs_err hsctl_publish(int argc, char **argv, const hsctl_globals *g)
{
    const char *csv = NULL, *ndjson = NULL;
    publish_run run = {.source = "/healthsignals/hsctl"};
    const hs_cli_option options[] = {
        {"csv", 0, HS_CLI_TEXT, &csv},
        {"ndjson", 0, HS_CLI_TEXT, &ndjson},
        {"dry-run", 0, HS_CLI_FLAG, &run.dry_run},
        {"source", 0, HS_CLI_TEXT, &run.source},
        {"ignore-unknown-fields", 0, HS_CLI_FLAG, &run.ignore_unknown},
        {0},
    };
    hs_cli_parse("hsctl publish", argc, argv, options, false, usage);
    const char *topic_name = optind < argc ? argv[optind++] : NULL;
    if (optind < argc && strcmp(argv[optind], "-") == 0 && !csv && !ndjson) {
        ndjson = "-";
        optind++;
    }
    if (!topic_name || optind < argc || (!csv == !ndjson)) {
        usage(stderr);
        return HS_ERR_USAGE;
    }
    run.topic = hsctl_topic_arg(topic_name);
    if (!run.topic)
        return HS_ERR_NOT_FOUND;
    if (!run.topic->value_type)
        return hsctl_fail(HS_ERR_USAGE, "%s carries raw records and cannot be published to", run.topic->name);

    const char *path = csv ? csv : ndjson;
    run.name = path;
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!in)
        return hsctl_fail(HS_ERR_IO, "cannot open %s: %s", path, strerror(errno));

    if (!run.dry_run) {
        const char *props[] = {"enable.idempotence", "true", "linger.ms", "20", "client.id", "hsctl", NULL};
        hs_err schemas = hsctl_schemas(g, run.topic); /* Confluent's wire format, with a registry */
        if (schemas) {
            if (in != stdin)
                fclose(in);
            return schemas;
        }
        run.producer = hsctl_client(RD_KAFKA_PRODUCER, g, props, on_delivery, &run);
        if (!run.producer) {
            if (in != stdin)
                fclose(in);
            return HS_ERR_KAFKA;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &run.started);
    run.last_progress = run.started;

    hs_err err = csv ? publish_csv(&run, in) : publish_ndjson(&run, in);
    if (in != stdin)
        fclose(in);

    char fatal[512] = "";
    rd_kafka_resp_err_t fatal_code = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (run.producer) {
        rd_kafka_resp_err_t ferr = rd_kafka_flush(run.producer, g->timeout_ms);
        long pending = rd_kafka_outq_len(run.producer);
        /* A fatal error (the idempotent producer refused its producer id: no WRITE ACL anywhere) purges
         * every record: its reason, not "purged", is what the user needs. */
        fatal_code = rd_kafka_fatal_error(run.producer, fatal, sizeof fatal);
        rd_kafka_destroy(run.producer);
        if (ferr && err == HS_OK)
            err = hsctl_fail(HS_ERR_TIMEOUT, "%ld records still undelivered after %d s", pending,
                             g->timeout_ms / 1000);
    }

    char unknown[64] = "";
    if (run.unknown_fields)
        snprintf(unknown, sizeof unknown, ", %ld unknown fields ignored", run.unknown_fields);
    fprintf(stderr, "hsctl publish: %s: %ld rows, %ld %s, %ld rejected%s%s\n", run.name, run.rows,
            run.published, run.dry_run ? "valid (dry run, nothing published)" : "published", run.rejected,
            unknown, run.undelivered ? ", some not delivered" : "");
    if (err != HS_OK)
        return err;
    if (run.undelivered) {
        rd_kafka_resp_err_t cause = fatal_code ? fatal_code : run.first_error;
        bool denied = cause == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                      cause == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED;
        return hsctl_fail(HS_ERR_KAFKA, "%ld records were not delivered to %s: %s%s", run.undelivered,
                          run.topic->name, fatal_code ? fatal : rd_kafka_err2str(run.first_error),
                          denied ? " (not authorized: the Kafka principal has no WRITE ACL for the topic; "
                                   "deploy/kafka/acls, docs/security.md)"
                                 : "");
    }
    return run.rejected ? HS_ERR_VALIDATION : HS_OK;
}
