/* The offline driver of a calculation (docs/design.md §13): CloudEvents JSON lines in, the output
 * table out, with the same calculation code and the same change rule as the running service — an output
 * is printed only when its packed bytes differ from the last ones emitted for its key.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "healthsignals/v1/rule.pb-c.h"
#include "hs/calc.h"
#include "hs/offline.h"
#include "hs/event.h"
#include "hs/json.h"
#include "hs/validate.h"
#include "hs/wire.h"

#define MAX_LINE_BYTES (1024 * 1024)

typedef struct offline_emit {
    hs_emit base; /* first: the calculation sees only this */
    const hs_calc *calc;
    hs_table *tables; /* one per output topic, in calc->outputs order */
    size_t table_cnt;
    FILE *out; /* non-NULL: print each change as it happens */
    const char *source;
    long changes;
    hs_err failure; /* first failure to emit (out of memory, wrong topic) */
    bool ignore_unknown_fields;
} offline_emit;

static size_t output_index(const offline_emit *emit, const hs_topic *topic)
{
    for (size_t i = 0; i < emit->table_cnt; i++)
        if (strcmp(emit->calc->outputs[i], topic->name) == 0)
            return i;
    return emit->table_cnt;
}

static void print_event(FILE *out, const hs_topic *topic, const char *source, const char *key,
                        const uint8_t *bytes, size_t len, bool deleted)
{
    hs_event_meta meta = {0};
    snprintf(meta.source, sizeof meta.source, "%s", source);
    snprintf(meta.type, sizeof meta.type, "%s", topic->value_type->name);
    hs_event_id(meta.id, topic->name, key, bytes, len);
    ProtobufCMessage *value = deleted ? NULL : hs_wire_unpack(topic->value_type, NULL, len, bytes);
    json_t *event = hs_event_to_json(&meta, key, value);
    char *text = event ? json_dumps(event, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (text)
        fprintf(out, "%s\n", text);
    free(text);
    json_decref(event);
    if (value)
        protobuf_c_message_free_unpacked(value, NULL);
}

static hs_err offline_put(hs_emit *base, const hs_topic *topic, const char *key,
                          const ProtobufCMessage *value)
{
    offline_emit *emit = (offline_emit *)base;
    size_t i = output_index(emit, topic);
    if (i == emit->table_cnt || (value && value->descriptor != topic->value_type))
        return emit->failure = HS_ERR_INTERNAL;
    if (!value) {
        if (hs_table_delete(&emit->tables[i], key)) {
            emit->changes++;
            if (emit->out)
                print_event(emit->out, topic, emit->source, key, NULL, 0, true);
        }
        return HS_OK;
    }
    size_t len = protobuf_c_message_get_packed_size(value);
    uint8_t *bytes = malloc(len ? len : 1);
    if (!bytes)
        return emit->failure = HS_ERR_NOMEM;
    protobuf_c_message_pack(value, bytes);
    hs_table_change change = hs_table_put(&emit->tables[i], key, bytes, len);
    if (change == HS_TABLE_NOMEM) {
        free(bytes);
        return emit->failure = HS_ERR_NOMEM;
    }
    if (change != HS_TABLE_UNCHANGED) {
        emit->changes++;
        if (emit->out)
            print_event(emit->out, topic, emit->source, key, bytes, len, false);
    }
    free(bytes);
    return HS_OK;
}

static bool is_input(const hs_calc *calc, const hs_topic *topic)
{
    if (calc->uses_rules && strcmp(topic->name, HS_TOPIC_RULES) == 0)
        return true;
    for (const char *const *t = calc->inputs; *t; t++)
        if (strcmp(*t, topic->name) == 0)
            return true;
    return false;
}

/* An event read back by `hsctl tail` says which partition its record was on (the extension attribute
 * "hspartition"); a record the running service refused for its partition is refused here too, so that
 * `hsctl calc` over a tailed topic computes what the service computed. Events without it (written for
 * `hsctl publish`, which partitions by the rule) have no partition to check. */
static hs_err check_tailed_partition(const json_t *event, const hs_topic *topic, const char *key,
                                     hs_error *error)
{
    const json_t *partition = json_object_get(event, "hspartition");
    if (!partition || json_is_null(partition))
        return HS_OK;
    if (!json_is_integer(partition) || json_integer_value(partition) < 0 ||
        json_integer_value(partition) > INT32_MAX)
        return hs_error_set(error, HS_ERR_PARSE, "hspartition: expected a partition number");
    char group[HS_KEY_MAX];
    hs_err err = hs_topic_group_of_key(topic, key, group, error);
    return err ? err : hs_topic_check_partition(topic, group, (int32_t)json_integer_value(partition), error);
}

/* Applies one parsed event; returns a failure for the caller to report, or HS_OK. Rules of other services
 * are skipped silently, as the running service skips them. */
static hs_err apply_event(const hs_calc *calc, void *state, const json_t *event, offline_emit *emit,
                          hs_error *error)
{
    const hs_topic *topic;
    ProtobufCMessage *value;
    hs_event_meta meta;
    char key[HS_KEY_MAX];
    hs_err err = hs_event_from_json(event, &topic, &value, &meta, key, error);
    if (err)
        return err;
    if (!is_input(calc, topic)) {
        err = hs_error_set(error, HS_ERR_VALIDATION, "%s is not an input of %s", topic->name, calc->name);
    } else if (value && (err = hs_validate_message(value, error)) == HS_OK) {
        /* The identity after normalisation; a subject given beside the data must be it, as the running
         * service admits a record under no other key (hs_topic_admit) and hsctl publish sends none. */
        char group[HS_KEY_MAX];
        const json_t *subject = json_object_get(event, "subject");
        if (json_is_string(subject) && json_string_length(subject) > 0) {
            if ((err = hs_topic_check_key(topic, key, value, group, error)) != HS_OK)
                hs_error_prefix(error, "subject");
        } else {
            err = hs_topic_key(topic, value, key, group, error);
        }
    }
    if (err == HS_OK && !topic->global)
        err = check_tailed_partition(event, topic, key, error);
    if (err == HS_OK && value && value->descriptor == &healthsignals__v1__rule__descriptor &&
        strcmp(((const Healthsignals__V1__Rule *)value)->service, calc->name) != 0)
        goto done; /* a rule for another service */
    if (err == HS_OK)
        err = calc->apply(state, topic, key, value, &emit->base, error);
done:
    if (value)
        protobuf_c_message_free_unpacked(value, NULL);
    return err;
}

/* Where an input event came from, for the report of each unknown field skipped in it. */
typedef struct unknown_report {
    const char *where; /* "NAME:LINE" or "NAME: rules[I]" */
    hs_offline_stats *stats;
} unknown_report;

static void report_unknown(void *ctx, const char *path)
{
    unknown_report *r = ctx;
    r->stats->unknown_fields++;
    fprintf(stderr, "%s: ignored unknown field data.%s\n", r->where, path);
}

/* options->ignore_unknown_fields, as hsctl publish --ignore-unknown-fields: drops from the event's data what
 * the type it names does not know. */
static void drop_unknown(const offline_emit *emit, json_t *event, const char *where, hs_offline_stats *stats)
{
    const json_t *type = json_object_get(event, "type");
    const hs_topic *topic = json_is_string(type) ? hs_topic_find_by_type(json_string_value(type)) : NULL;
    if (!emit->ignore_unknown_fields || !topic || !topic->value_type)
        return;
    unknown_report report = {.where = where, .stats = stats};
    hs_json_drop_unknown_fields(topic->value_type, json_object_get(event, "data"), report_unknown, &report);
}

/* Reads `in` as JSON lines, or — when it starts with '[' — as one JSON array of Rule objects. */
static hs_err run_stream(const hs_calc *calc, void *state, FILE *in, const char *name, offline_emit *emit,
                         hs_offline_stats *stats, bool rules_file)
{
    int first = getc(in);
    while (first == ' ' || first == '\n' || first == '\r' || first == '\t')
        first = getc(in);
    if (first == EOF)
        return HS_OK;
    ungetc(first, in);

    if (first == '[' && rules_file) {
        json_error_t jerr;
        json_t *array = json_loadf(in, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_array(array)) {
            fprintf(stderr, "%s:%d:%d: %s\n", name, jerr.line, jerr.column,
                    array ? "expected an array" : jerr.text);
            json_decref(array);
            stats->rejected++;
            return HS_OK;
        }
        size_t i;
        json_t *rule;
        json_array_foreach(array, i, rule)
        {
            /* Wrap each rule as the event `hsctl rules apply` would publish. */
            json_t *event = json_pack("{s:s, s:s, s:s, s:s, s:O}", "specversion", "1.0", "id", "", "source",
                                      name, "type", "healthsignals.v1.Rule", "data", rule);
            hs_error error;
            char where[300];
            snprintf(where, sizeof where, "%s: rules[%zu]", name, i);
            if (event)
                drop_unknown(emit, event, where, stats);
            if (apply_event(calc, state, event, emit, &error) == HS_OK) {
                stats->facts++;
            } else {
                stats->rejected++;
                fprintf(stderr, "%s: rules[%zu]: %s\n", name, i, error.message);
            }
            json_decref(event);
            if (emit->failure)
                break;
        }
        json_decref(array);
        return emit->failure;
    }

    char *line = NULL;
    size_t cap = 0, len = 0;
    long line_no = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, in)) != -1) {
        line_no++;
        len = (size_t)n;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (strspn(line, " \t") == len)
            continue;
        if (len > (size_t)MAX_LINE_BYTES) {
            stats->rejected++;
            fprintf(stderr, "%s:%ld: line longer than %d bytes\n", name, line_no, MAX_LINE_BYTES);
            continue;
        }
        json_error_t jerr;
        json_t *event = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
        if (event) {
            char where[300];
            snprintf(where, sizeof where, "%s:%ld", name, line_no);
            drop_unknown(emit, event, where, stats);
        }
        hs_error error;
        hs_err err = event ? apply_event(calc, state, event, emit, &error)
                           : hs_error_set(&error, HS_ERR_PARSE, "invalid JSON at column %d: %s", jerr.column,
                                          jerr.text);
        json_decref(event);
        if (err == HS_OK) {
            stats->facts++;
        } else {
            stats->rejected++;
            fprintf(stderr, "%s:%ld: %s\n", name, line_no, error.message);
        }
        if (emit->failure)
            break;
    }
    free(line);
    return emit->failure;
}

hs_err hs_offline_run(const hs_calc *calc, FILE *rules, const char *rules_name, FILE *in, const char *in_name,
                      FILE *out, const hs_offline_options *options, hs_offline_stats *stats, hs_error *error)
{
    memset(stats, 0, sizeof *stats);
    char source[160];
    snprintf(source, sizeof source, "/healthsignals/%s", calc->name);

    size_t table_cnt = 0;
    while (calc->outputs[table_cnt])
        table_cnt++;
    offline_emit emit = {.base = {.put = offline_put},
                         .calc = calc,
                         .table_cnt = table_cnt,
                         .out = options->changes ? out : NULL,
                         .source = options->source ? options->source : source,
                         .ignore_unknown_fields = options->ignore_unknown_fields};
    emit.tables = calloc(table_cnt ? table_cnt : 1, sizeof *emit.tables);
    void *state = calc->create();
    if (!emit.tables || !state) {
        free(emit.tables);
        if (state)
            calc->destroy(state);
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory starting %s", calc->name);
    }
    for (size_t i = 0; i < table_cnt; i++) {
        hs_table_init(&emit.tables[i]);
        if (!hs_topic_find(calc->outputs[i]) || !hs_topic_find(calc->outputs[i])->value_type) {
            calc->destroy(state);
            free(emit.tables);
            return hs_error_set(error, HS_ERR_INTERNAL, "%s: output %s is not a registered typed topic",
                                calc->name, calc->outputs[i]);
        }
    }

    hs_err err = rules ? run_stream(calc, state, rules, rules_name, &emit, stats, true) : HS_OK;
    if (err == HS_OK)
        err = run_stream(calc, state, in, in_name, &emit, stats, false);

    for (size_t i = 0; i < table_cnt; i++) {
        const hs_topic *topic = hs_topic_find(calc->outputs[i]);
        size_t count = 0;
        const hs_table_entry **sorted = hs_table_sorted(&emit.tables[i], &count);
        stats->outputs += (long)count;
        for (size_t k = 0; err == HS_OK && !options->changes && sorted && k < count; k++)
            print_event(out, topic, emit.source, sorted[k]->key, sorted[k]->value, sorted[k]->value_len,
                        false);
        free(sorted);
        hs_table_free(&emit.tables[i]);
    }
    free(emit.tables);
    calc->destroy(state);
    stats->changes = emit.changes;
    if (err != HS_OK)
        return hs_error_set(error, err, "%s: %s", calc->name, hs_err_str(err));
    return HS_OK;
}
