/* hsctl dlq: the operator's view of hs.dlq.v1 and the way back from it. `list` groups the dead letters by
 * service, error code and source topic (or prints each as a CloudEvents JSON line ready for a fix-up);
 * `replay` re-publishes the selected ones to their source topics — the original key and bytes, on the
 * partition the topic registry gives the key's grouping key, with CloudEvents headers — or, with --from,
 * the edited JSON lines of `list --json`. A dead letter that would only be rejected again (its bytes still
 * do not decode or validate) is skipped with its reason; one the service refuses again lands in the DLQ
 * again. The DLQ itself is only read: it keeps its records for 30 days whatever is replayed.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "hs/event.h"
#include "hs/json.h"
#include "hs/kafka.h"
#include "hs/validate.h"
#include "hs/wire.h"
#include "hs_cli.h"
#include "hsctl.h"

#define MAX_RANGES       16
#define MAX_LINE_BYTES   (1024 * 1024)
#define REPLAY_SOURCE    "/healthsignals/hsctl"
#define MAX_SKIP_REPORTS 50

static void usage(FILE *out)
{
    fprintf(out,
            "usage: hsctl dlq list [SELECTION] [--json]\n"
            "       hsctl dlq replay [SELECTION] [--dry-run]\n"
            "       hsctl dlq replay --from FILE [--dry-run]\n"
            "\n"
            "list     the dead letters of hs.dlq.v1 grouped by service, error code and source topic: how\n"
            "         many, where (partition:offsets of hs.dlq.v1) and the first error. --json prints\n"
            "         each one instead as a CloudEvents JSON line ready for a fix-up: \"data\" is the\n"
            "         rejected record decoded as its source topic's message (\"data_base64\" when it does\n"
            "         not decode), \"subject\" its key, and hsdlq, hserrorcode, hserror, hssourcetopic,\n"
            "         hssourcepartition, hssourceoffset, hsservice say where it came from and why.\n"
            "replay   re-publishes the selected dead letters to their source topics with their original\n"
            "         key and bytes (partitioned by grouping key, with CloudEvents headers, so a\n"
            "         wrong_partition dead letter lands where it belongs). One whose bytes still fail\n"
            "         to decode or validate, or whose key is not its value's identity, is skipped with\n"
            "         its reason: fix it through JSON instead. --from FILE (or -) publishes the\n"
            "         lines of 'dlq list --json' after editing, each validated as hsctl publish does,\n"
            "         to its source topic.\n"
            "\n"
            "SELECTION (every option given must match; none: all dead letters):\n"
            "  --service NAME         rejected by service NAME\n"
            "  --code CODE            with error code CODE (decode, validation, too_large, ...)\n"
            "  --source-topic TOPIC   rejected from TOPIC\n"
            "  --key KEY              with record key KEY\n"
            "  --offsets P:FROM[-[TO]] at partition P of hs.dlq.v1, offsets FROM to TO (inclusive; no TO:\n"
            "                         to the end); repeatable\n"
            "  --dry-run              replay: report what would be replayed, publish nothing\n"
            "\n"
            "Exit status: 0 all selected replayed (or listed); 1 some skipped or rejected; 3 Kafka error;\n"
            "4 no dead letter matches the selection (replay).\n");
}

/* --- selection ------------------------------------------------------------------------------------------ */

typedef struct offset_range {
    int32_t partition;
    int64_t from, to; /* inclusive; to INT64_MAX for "to the end" */
} offset_range;

typedef struct selection {
    const char *service, *code, *source_topic, *key;
    offset_range ranges[MAX_RANGES];
    int range_count;
} selection;

static hs_err parse_range(const char *text, offset_range *r)
{
    char *end;
    long partition = strtol(text, &end, 10);
    if (end == text || *end != ':' || partition < 0)
        return hsctl_fail(HS_ERR_USAGE, "--offsets %s: expected P:FROM[-[TO]]", text);
    const char *p = end + 1;
    long long from = strtoll(p, &end, 10);
    if (end == p || from < 0)
        return hsctl_fail(HS_ERR_USAGE, "--offsets %s: expected P:FROM[-[TO]]", text);
    long long to = from;
    if (*end == '-') {
        p = end + 1;
        to = *p ? strtoll(p, &end, 10) : INT64_MAX;
        if (*p && (end == p || to < from))
            return hsctl_fail(HS_ERR_USAGE, "--offsets %s: TO must be a number >= FROM", text);
        if (!*p)
            end = (char *)p;
    }
    if (*end)
        return hsctl_fail(HS_ERR_USAGE, "--offsets %s: expected P:FROM[-[TO]]", text);
    *r = (offset_range){(int32_t)partition, from, to};
    return HS_OK;
}

/* The last `name` header of `record` as a NUL-terminated copy in `out` (empty when missing). */
static void header_text(const rd_kafka_message_t *record, const char *name, char *out, size_t size)
{
    rd_kafka_headers_t *headers;
    const void *value;
    size_t len;
    out[0] = '\0';
    if (rd_kafka_message_headers(record, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(headers, name, &value, &len) == RD_KAFKA_RESP_ERR_NO_ERROR && value)
        snprintf(out, size, "%.*s", (int)(len < size ? len : size - 1), (const char *)value);
}

/* What a dead letter's headers say about it. */
typedef struct dead_letter {
    char service[64], code[32], source_topic[128], error[1024];
} dead_letter;

static void dead_letter_read(const rd_kafka_message_t *record, dead_letter *d)
{
    header_text(record, "hs-service", d->service, sizeof d->service);
    header_text(record, "hs-error-code", d->code, sizeof d->code);
    header_text(record, "hs-source-topic", d->source_topic, sizeof d->source_topic);
    header_text(record, "hs-error", d->error, sizeof d->error);
}

static bool selected(const selection *s, const rd_kafka_message_t *record, const dead_letter *d)
{
    if ((s->service && strcmp(s->service, d->service) != 0) || (s->code && strcmp(s->code, d->code) != 0) ||
        (s->source_topic && strcmp(s->source_topic, d->source_topic) != 0))
        return false;
    if (s->key && (!record->key || record->key_len != strlen(s->key) ||
                   memcmp(record->key, s->key, record->key_len) != 0))
        return false;
    if (s->range_count == 0)
        return true;
    for (int i = 0; i < s->range_count; i++) {
        const offset_range *r = &s->ranges[i];
        if (record->partition == r->partition && record->offset >= r->from && record->offset <= r->to)
            return true;
    }
    return false;
}

/* --- reading hs.dlq.v1 ---------------------------------------------------------------------------------- */

/* `previous` is the offset of the record before this one in its partition (-1 for none): offsets between
 * the two are transaction markers, not records. */
typedef void (*on_dead_letter)(void *ctx, const rd_kafka_message_t *record, const dead_letter *d,
                               int64_t previous);

/* Calls `fn` for every selected dead letter, from the beginning of each partition to its end now. */
static hs_err scan_dlq(const hsctl_globals *g, const selection *s, on_dead_letter fn, void *ctx)
{
    const hs_topic *dlq = hs_topic_find(HS_TOPIC_DLQ);
    rd_kafka_t *rk = hsctl_reader(g);
    if (!rk)
        return HS_ERR_KAFKA;
    hs_err err = HS_OK;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, dlq->name, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(rk, 0, rkt, &md, g->timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (kerr) {
        err = hsctl_fail(HS_ERR_KAFKA, "cannot read metadata of %s: %s", dlq->name, rd_kafka_err2str(kerr));
        goto out;
    }
    if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
        err = hsctl_topic_missing(md, dlq->name);
        goto out;
    }
    int partition_cnt = md->topics[0].partition_cnt, remaining = 0;
    int64_t *end = calloc((size_t)partition_cnt, sizeof *end);
    int64_t *previous = malloc((size_t)partition_cnt * sizeof *previous);
    for (int i = 0; i < partition_cnt; i++)
        previous[i] = -1;
    rd_kafka_topic_partition_list_t *assignment = rd_kafka_topic_partition_list_new(partition_cnt);
    for (int i = 0; i < partition_cnt && err == HS_OK; i++) {
        int32_t id = md->topics[0].partitions[i].id;
        int64_t low = 0, high = 0;
        kerr = hsctl_watermarks(rk, dlq->name, id, &low, &high, g->timeout_ms);
        if (kerr)
            err = hsctl_fail(HS_ERR_KAFKA, "cannot read offsets of %s [%d]: %s", dlq->name, id,
                             rd_kafka_err2str(kerr));
        if (id < 0 || id >= partition_cnt)
            continue; /* ids are 0..n-1 in Kafka */
        end[id] = high > low ? high : -1;
        if (high > low) {
            rd_kafka_topic_partition_list_add(assignment, dlq->name, id)->offset = low;
            remaining++;
        }
    }
    if (err == HS_OK && remaining)
        rd_kafka_assign(rk, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);
    /* Read each partition up to its end as it was when we started: dead letters produced meanwhile (a
     * replay's own rejects among them) are for the next run. */
    while (err == HS_OK && remaining > 0) {
        rd_kafka_message_t *record = rd_kafka_consumer_poll(rk, g->timeout_ms);
        if (!record) {
            err =
                hsctl_fail(HS_ERR_TIMEOUT, "no record from %s within %d s", dlq->name, g->timeout_ms / 1000);
            break;
        }
        int32_t p = record->partition;
        bool mine = p >= 0 && p < partition_cnt && end[p] >= 0, done = false;
        if (record->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            done = mine;
        } else if (record->err) {
            fprintf(stderr, "hsctl dlq: %s\n", rd_kafka_message_errstr(record));
        } else if (mine && record->offset < end[p]) {
            dead_letter d;
            dead_letter_read(record, &d);
            if (selected(s, record, &d))
                fn(ctx, record, &d, previous[p]);
            previous[p] = record->offset;
            done = record->offset + 1 >= end[p];
        }
        if (done) {
            end[p] = -1; /* this partition is read */
            remaining--;
        }
        rd_kafka_message_destroy(record);
    }
    free(end);
    free(previous);
out:
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return err;
}

/* --- list ----------------------------------------------------------------------------------------------- */

typedef struct dlq_group {
    dead_letter first; /* service, code and source topic of the group; the first error */
    long count;
    char where[256]; /* "P:FROM-TO, ..." of hs.dlq.v1 (a range spans transaction markers), "..." when long */
    int32_t last_partition;
    int64_t range_from, range_to;
    size_t where_len; /* of `where` up to the open range */
} dlq_group;

typedef struct list_run {
    dlq_group *groups;
    size_t count, cap;
    long total;
    bool json;
    hs_err err;
} list_run;

/* Rewrites the open range (last_partition:range_from-range_to) at the end of `where`. */
static void group_write_where(dlq_group *gr)
{
    size_t at = gr->where_len, size = sizeof gr->where;
    if (at + 24 >= size) {
        snprintf(gr->where + at, size - at, "...");
        return;
    }
    const char *sep = at ? ", " : "";
    if (gr->range_from == gr->range_to)
        snprintf(gr->where + at, size - at, "%s%" PRId32 ":%" PRId64, sep, gr->last_partition,
                 gr->range_from);
    else
        snprintf(gr->where + at, size - at, "%s%" PRId32 ":%" PRId64 "-%" PRId64, sep, gr->last_partition,
                 gr->range_from, gr->range_to);
}

static void group_add(dlq_group *gr, const rd_kafka_message_t *record, int64_t previous)
{
    if (gr->count > 0 && record->partition == gr->last_partition && previous == gr->range_to) {
        gr->range_to = record->offset;
    } else {
        if (gr->count > 0)
            gr->where_len = strlen(gr->where);
        gr->last_partition = record->partition;
        gr->range_from = gr->range_to = record->offset;
    }
    gr->count++;
    group_write_where(gr);
}

/* The JSON line of one dead letter for a fix-up: the rejected record as an event of its source topic. */
static json_t *fixup_json(const rd_kafka_message_t *record, const dead_letter *d)
{
    const hs_topic *source = hs_topic_find(d->source_topic);
    hs_event_meta meta = {.source = REPLAY_SOURCE};
    char *key = strndup(record->key ? (const char *)record->key : "", record->key_len);
    ProtobufCMessage *value = NULL;
    if (source && source->value_type) {
        snprintf(meta.type, sizeof meta.type, "%s", source->value_type->name);
        hs_event_dataschema(meta.dataschema, meta.type);
        if (record->payload)
            value = hs_wire_unpack(source->value_type, NULL, record->len, record->payload);
    } else {
        snprintf(meta.type, sizeof meta.type, "%s", HS_EVENT_TYPE_DEAD_LETTER);
    }
    json_t *event = key ? hs_event_to_json(&meta, key, value) : NULL;
    if (event && record->payload && !value) {
        char *b64 = hs_json_base64_encode(record->payload, record->len);
        json_object_del(event, "data");
        json_object_del(event, "dataschema");
        json_object_set_new(event, "data_base64", json_string(b64 ? b64 : ""));
        free(b64);
    }
    if (event) {
        char where[64];
        snprintf(where, sizeof where, "%s/%" PRId32 "/%" PRId64, HS_TOPIC_DLQ, record->partition,
                 record->offset);
        json_object_set_new(event, "hsdlq", json_string(where));
        hsctl_add_dead_letter_attrs(event, record);
        hsctl_add_header_attr(event, record, "ce_time", "hsdlqtime");
    }
    if (value)
        protobuf_c_message_free_unpacked(value, NULL);
    free(key);
    return event;
}

static void list_one(void *ctx, const rd_kafka_message_t *record, const dead_letter *d, int64_t previous)
{
    list_run *run = ctx;
    run->total++;
    if (run->json) {
        json_t *event = fixup_json(record, d);
        char *text = event ? json_dumps(event, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (text) {
            puts(text);
        } else {
            fprintf(stderr, "hsctl dlq: %s/%" PRId32 "/%" PRId64 " could not be printed: out of memory\n",
                    HS_TOPIC_DLQ, record->partition, record->offset);
            run->err = HS_ERR_NOMEM;
        }
        free(text);
        json_decref(event);
        return;
    }
    for (size_t i = 0; i < run->count; i++) {
        dlq_group *gr = &run->groups[i];
        if (strcmp(gr->first.service, d->service) == 0 && strcmp(gr->first.code, d->code) == 0 &&
            strcmp(gr->first.source_topic, d->source_topic) == 0) {
            group_add(gr, record, previous);
            return;
        }
    }
    if (run->count == run->cap) {
        size_t cap = run->cap ? run->cap * 2 : 16;
        dlq_group *groups = realloc(run->groups, cap * sizeof *groups);
        if (!groups) {
            run->err = HS_ERR_NOMEM;
            return;
        }
        run->groups = groups;
        run->cap = cap;
    }
    dlq_group *gr = &run->groups[run->count++];
    *gr = (dlq_group){.first = *d};
    group_add(gr, record, previous);
}

/* `text` for a terminal: bytes that are not UTF-8 escaped as \xNN, as everywhere else. */
static void print_escaped(const char *text)
{
    json_t *s = hs_json_string_escaped(text, strlen(text));
    fputs(s ? json_string_value(s) : "?", stdout);
    json_decref(s);
}

static hs_err dlq_list(const selection *s, bool json, const hsctl_globals *g)
{
    list_run run = {.json = json};
    hs_err err = scan_dlq(g, s, list_one, &run);
    if (err == HS_OK)
        err = run.err;
    if (!json && err == HS_OK) {
        if (run.count)
            printf("%-12s %-12s %-22s %8s  %-24s %s\n", "SERVICE", "CODE", "SOURCE TOPIC", "COUNT",
                   "AT (hs.dlq.v1 P:OFFSETS)", "FIRST ERROR");
        for (size_t i = 0; i < run.count; i++) {
            const dlq_group *gr = &run.groups[i];
            printf("%-12s %-12s %-22s %8ld  %-24s ", gr->first.service[0] ? gr->first.service : "-",
                   gr->first.code[0] ? gr->first.code : "-",
                   gr->first.source_topic[0] ? gr->first.source_topic : "-", gr->count, gr->where);
            print_escaped(gr->first.error);
            putchar('\n');
        }
        printf("%ld dead letter%s in %zu group%s\n", run.total, run.total == 1 ? "" : "s", run.count,
               run.count == 1 ? "" : "s");
    }
    free(run.groups);
    return err;
}

/* --- replay --------------------------------------------------------------------------------------------- */

typedef struct topic_count {
    const hs_topic *topic;
    long replayed;
} topic_count;

typedef struct replay_run {
    rd_kafka_t *producer; /* NULL for a dry run */
    const char *name;     /* --from FILE, for messages */
    long selected, skipped, undelivered;
    topic_count counts[32];
    size_t topics;
    char skip_reasons[512]; /* distinct reasons, for the summary */
    hs_err fatal;
} replay_run;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    replay_run *run = opaque;
    if (msg->err && run->undelivered++ < MAX_SKIP_REPORTS)
        fprintf(stderr, "hsctl dlq: record %.*s not delivered to %s: %s\n", (int)msg->key_len,
                (const char *)msg->key, rd_kafka_topic_name(msg->rkt), rd_kafka_err2str(msg->err));
}

static void count_replayed(replay_run *run, const hs_topic *topic)
{
    for (size_t i = 0; i < run->topics; i++) {
        if (run->counts[i].topic == topic) {
            run->counts[i].replayed++;
            return;
        }
    }
    if (run->topics < sizeof run->counts / sizeof run->counts[0])
        run->counts[run->topics++] = (topic_count){topic, 1};
}

/* Reports a skipped dead letter; `kind` is the short reason for the summary ("still invalid"). */
static void skip(replay_run *run, const char *where, const char *kind, const char *reason)
{
    run->skipped++;
    if (run->skipped <= MAX_SKIP_REPORTS) {
        json_t *escaped = hs_json_string_escaped(reason, strlen(reason));
        fprintf(stderr, "%s: skipped: %s\n", where, escaped ? json_string_value(escaped) : kind);
        json_decref(escaped);
    } else if (run->skipped == MAX_SKIP_REPORTS + 1) {
        fprintf(stderr, "hsctl dlq: more skipped; only the first %d are shown\n", MAX_SKIP_REPORTS);
    }
    if (!strstr(run->skip_reasons, kind)) {
        size_t len = strlen(run->skip_reasons);
        snprintf(run->skip_reasons + len, sizeof run->skip_reasons - len, "%s%s", len ? ", " : "", kind);
    }
}

/* Produces one record, waiting for queue space when the producer is ahead of the broker. */
static hs_err produce(replay_run *run, const hs_topic *topic, const char *key, const char *group,
                      const void *bytes, size_t len, const hs_event_meta *meta)
{
    count_replayed(run, topic);
    if (!run->producer)
        return HS_OK;
    for (;;) {
        hs_event_meta attempt = *meta;
        hs_error error;
        hs_err err = hs_kafka_produce_packed(run->producer, topic, key, group, bytes, len, &attempt, &error);
        if (err == HS_OK)
            return HS_OK;
        if (err != HS_ERR_TIMEOUT)
            return run->fatal = hsctl_fail(err, "%s", error.message);
        rd_kafka_poll(run->producer, 100);
    }
}

/* Whether the rejected record would pass what every service checks first (decode, size, validation, and
 * admission's key check: the key must be the value's identity). Its partition need not be checked: a replay
 * places it by its grouping key, which is how a wrong_partition dead letter is mended. */
static hs_err still_valid(const hs_topic *topic, const char *key, const rd_kafka_message_t *record,
                          hs_error *error)
{
    if (!record->payload)
        return HS_OK;
    hs_err err = hs_validate_size(record->len, error);
    if (err)
        return err;
    ProtobufCMessage *value = hs_wire_unpack(topic->value_type, NULL, record->len, record->payload);
    if (!value)
        return hs_error_set(error, HS_ERR_DECODE, "still not a valid %s", topic->value_type->name);
    err = hs_validate_message(value, error);
    char group[HS_KEY_MAX];
    if (err == HS_OK)
        err = hs_topic_check_key(topic, key, value, group, error);
    protobuf_c_message_free_unpacked(value, NULL);
    return err;
}

static void replay_one(void *ctx, const rd_kafka_message_t *record, const dead_letter *d, int64_t previous)
{
    replay_run *run = ctx;
    if (run->fatal)
        return;
    run->selected++;
    char where[HS_KEY_MAX + 64];
    snprintf(where, sizeof where, "%s/%" PRId32 "/%" PRId64, HS_TOPIC_DLQ, record->partition, record->offset);
    const hs_topic *topic = hs_topic_find(d->source_topic);
    if (!topic || !topic->value_type) {
        char reason[256];
        snprintf(reason, sizeof reason, "source topic \"%s\" is not a topic of facts", d->source_topic);
        skip(run, where, "no source topic", reason);
        return;
    }
    char key[HS_KEY_MAX], group[HS_KEY_MAX];
    if (!record->key || record->key_len == 0 || record->key_len >= HS_KEY_MAX ||
        memchr(record->key, '\0', record->key_len)) {
        skip(run, where, "no usable key", "the record key is missing, too long or holds a NUL byte");
        return;
    }
    memcpy(key, record->key, record->key_len);
    key[record->key_len] = '\0';
    hs_error error;
    if (hs_topic_group_of_key(topic, key, group, &error) != HS_OK) {
        skip(run, where, "no usable key", error.message);
        return;
    }
    if (still_valid(topic, key, record, &error) != HS_OK) {
        char reason[sizeof error.message + 80];
        snprintf(reason, sizeof reason, "%s (fix it through JSON: hsctl dlq list --json, then replay --from)",
                 error.message);
        skip(run, where, "still invalid", reason);
        return;
    }
    hs_event_meta meta = {.source = REPLAY_SOURCE};
    produce(run, topic, key, group, record->payload, record->payload ? record->len : 0, &meta);
    if (run->producer)
        rd_kafka_poll(run->producer, 0);
}

/* One edited line of `dlq list --json`: published like hsctl publish would, to its source topic. */
static void replay_line(replay_run *run, long line_no, const char *text, size_t len)
{
    char where[512];
    snprintf(where, sizeof where, "%s:%ld", run->name, line_no);
    run->selected++;
    json_error_t jerr;
    json_t *event = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!event) {
        char reason[300];
        snprintf(reason, sizeof reason, "invalid JSON at column %d: %s", jerr.column, jerr.text);
        skip(run, where, "invalid JSON", reason);
        return;
    }
    const hs_topic *topic;
    ProtobufCMessage *value;
    hs_event_meta meta;
    char key[HS_KEY_MAX], subject[HS_KEY_MAX] = "", group[HS_KEY_MAX];
    json_t *extensions = NULL;
    hs_error error;
    /* Copied: the event is released before they are compared. */
    char from[128] = "";
    const char *given_from = json_string_value(json_object_get(event, "hssourcetopic"));
    const char *given_subject = json_string_value(json_object_get(event, "subject"));
    if (given_from)
        snprintf(from, sizeof from, "%s", given_from);
    if (given_subject)
        snprintf(subject, sizeof subject, "%s", given_subject);
    hs_err err = hs_event_from_json(event, &topic, &value, &meta, key, &error);
    if (err == HS_OK)
        err = hs_event_extensions(event, &extensions, NULL, &error);
    json_decref(event);
    if (err == HS_OK && from[0] && strcmp(from, topic->name) != 0)
        err = hs_error_set(&error, HS_ERR_VALIDATION,
                           "type: %s belongs on %s, but the dead letter came from %s", meta.type, topic->name,
                           from);
    if (err == HS_OK && value && (err = hs_validate_message(value, &error)) == HS_OK)
        err = hs_topic_key(topic, value, key, group, &error);
    if (err == HS_OK && !value)
        err = hs_topic_group_of_key(topic, key, group, &error);
    if (err != HS_OK) {
        skip(run, where, "rejected", error.message);
    } else {
        if (subject[0] && strcmp(subject, key) != 0)
            fprintf(stderr, "%s: note: the fix changed the key from %s to %s; nothing deletes the old key\n",
                    where, subject, key);
        meta.type[0] = meta.dataschema[0] = '\0';
        if (!meta.source[0])
            snprintf(meta.source, sizeof meta.source, "%s", REPLAY_SOURCE);
        meta.extensions = extensions;
        uint8_t small[1024], *bytes = NULL;
        size_t bytes_len = value ? protobuf_c_message_get_packed_size(value) : 0;
        if (value && !(bytes = bytes_len <= sizeof small ? small : malloc(bytes_len)))
            run->fatal = hsctl_fail(HS_ERR_NOMEM, "out of memory packing a %zu-byte record", bytes_len);
        if (bytes)
            protobuf_c_message_pack(value, bytes);
        if (!run->fatal)
            produce(run, topic, key, group, bytes, bytes_len, &meta);
        if (bytes && bytes != small)
            free(bytes);
    }
    if (value)
        protobuf_c_message_free_unpacked(value, NULL);
    json_decref(extensions);
    if (run->producer)
        rd_kafka_poll(run->producer, 0);
}

static hs_err replay_from(replay_run *run, const char *path)
{
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!in)
        return hsctl_fail(HS_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    long len, line_no = 0;
    while (!run->fatal && (len = hsctl_read_line(in, &line, &cap, (size_t)MAX_LINE_BYTES)) != -1) {
        line_no++;
        char where[512];
        snprintf(where, sizeof where, "%s:%ld", path, line_no);
        if (len == -2) {
            run->selected++;
            skip(run, where, "line too long", "line longer than 1048576 bytes");
            continue;
        }
        const char *text = line;
        if (line_no == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            text += 3; /* a byte order mark */
            len -= 3;
        }
        if (strspn(text, " \t") == (size_t)len)
            continue;
        replay_line(run, line_no, text, (size_t)len);
    }
    free(line);
    if (in != stdin)
        fclose(in);
    return run->fatal;
}

static hs_err dlq_replay(const selection *s, const char *from, bool dry_run, const hsctl_globals *g)
{
    replay_run run = {.name = from};
    if (!dry_run) {
        const char *props[] = {"enable.idempotence", "true", "linger.ms", "20", "client.id", "hsctl", NULL};
        run.producer = hsctl_client(RD_KAFKA_PRODUCER, g, props, on_delivery, &run);
        if (!run.producer)
            return HS_ERR_KAFKA;
    }
    hs_err err = from ? replay_from(&run, from) : scan_dlq(g, s, replay_one, &run);
    if (err == HS_OK)
        err = run.fatal;
    if (run.producer) {
        if (rd_kafka_flush(run.producer, g->timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR && err == HS_OK)
            err = hsctl_fail(HS_ERR_TIMEOUT, "%d records still undelivered after %d s",
                             rd_kafka_outq_len(run.producer), g->timeout_ms / 1000);
        rd_kafka_destroy(run.producer);
    }
    const char *verb = dry_run ? "would replay" : "replayed";
    fprintf(stderr, "hsctl dlq replay: %ld selected", run.selected);
    for (size_t i = 0; i < run.topics; i++)
        fprintf(stderr, ", %s %ld to %s", verb, run.counts[i].replayed, run.counts[i].topic->name);
    if (run.topics == 0)
        fprintf(stderr, ", %s 0", verb);
    if (run.skipped)
        fprintf(stderr, ", skipped %ld (%s)", run.skipped, run.skip_reasons);
    fprintf(stderr, "%s\n", dry_run ? " (dry run, nothing published)" : "");
    if (err != HS_OK)
        return err;
    if (run.undelivered)
        return hsctl_fail(HS_ERR_KAFKA, "%ld records were not delivered", run.undelivered);
    if (run.selected == 0)
        return hsctl_fail(HS_ERR_NOT_FOUND, "no dead letter matches the selection");
    return run.skipped ? HS_ERR_VALIDATION : HS_OK;
}

/* --- the command ---------------------------------------------------------------------------------------- */

hs_err hsctl_dlq(int argc, char **argv, const hsctl_globals *g)
{
    const char *action = argc > 1 ? argv[1] : NULL;
    if (action && (strcmp(action, "--help") == 0 || strcmp(action, "-h") == 0)) {
        usage(stdout);
        return HS_OK;
    }
    bool list = action && strcmp(action, "list") == 0, replay = action && strcmp(action, "replay") == 0;
    if (!list && !replay) {
        usage(stderr);
        return HS_ERR_USAGE;
    }
    selection s = {0};
    const char *from = NULL;
    bool json = false, dry_run = false;
    const char *offsets[MAX_RANGES];
    hs_cli_texts offset_texts = {offsets, 0, MAX_RANGES};
    const hs_cli_option options[] = {
        {"service", 0, HS_CLI_TEXT, &s.service},
        {"code", 0, HS_CLI_TEXT, &s.code},
        {"source-topic", 0, HS_CLI_TEXT, &s.source_topic},
        {"key", 0, HS_CLI_TEXT, &s.key},
        {"offsets", 0, HS_CLI_TEXTS, &offset_texts},
        {"json", 0, HS_CLI_FLAG, &json},
        {"dry-run", 0, HS_CLI_FLAG, &dry_run},
        {"from", 0, HS_CLI_TEXT, &from},
        {0},
    };
    argc--, argv++; /* getopt from the action on */
    hs_cli_parse("hsctl dlq", argc, argv, options, false, usage);
    for (size_t i = 0; i < offset_texts.count; i++)
        if (parse_range(offsets[i], &s.ranges[s.range_count++]) != HS_OK)
            return HS_ERR_USAGE;
    if (optind < argc)
        return hsctl_fail(HS_ERR_USAGE, "unexpected argument '%s' (hsctl dlq --help)", argv[optind]);
    if (list && (from || dry_run))
        return hsctl_fail(HS_ERR_USAGE, "--from and --dry-run are for 'dlq replay'");
    if (replay && json)
        return hsctl_fail(HS_ERR_USAGE, "--json is for 'dlq list'");
    bool has_selection = s.service || s.code || s.source_topic || s.key || s.range_count;
    if (from && has_selection)
        return hsctl_fail(HS_ERR_USAGE,
                          "--from replays the lines of FILE: select them there, not with flags");
    if (s.source_topic && !hsctl_topic_arg(s.source_topic))
        return HS_ERR_NOT_FOUND;
    return list ? dlq_list(&s, json, g) : dlq_replay(&s, from, dry_run, g);
}
