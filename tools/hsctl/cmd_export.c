/* hsctl export: the derived tables' whole history for Prometheus. Reads hs.target-status.v1, hs.variation.v1
 * and hs.capacity-status.v1 (or those named) like `hsctl tail --from-beginning` — every partition,
 * read_committed, no consumer group — keeps the latest record of every key (a tombstone deletes it), and
 * writes every record's samples as OpenMetrics text stamped with its period's end: the metrics of the
 * exporter (services/exporter, same names and labels), for every period the compacted topics hold, which
 * `promtool tsdb create-blocks-from openmetrics` backfills into Prometheus.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "exporter_map.h"
#include "hs/table.h"
#include "hs_cli.h"
#include "hsctl.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: hsctl export --format openmetrics [--topic TOPIC]... [--output FILE]\n"
                 "\n"
                 "Writes the derived tables' history, every period of every series, as OpenMetrics text\n"
                 "with each sample stamped with the end of its period: the exporter's metrics\n"
                 "(services/exporter/README.md) for Prometheus to backfill:\n"
                 "  promtool tsdb create-blocks-from openmetrics FILE DATA_DIR\n"
                 "\n"
                 "  --format FORMAT   openmetrics (the only one)\n"
                 "  --topic TOPIC     a derived table to export: hs.target-status.v1, hs.variation.v1 or\n"
                 "                    hs.capacity-status.v1; repeat for several (default: all three)\n"
                 "  -o, --output FILE write to FILE (replaced only when complete) instead of stdout\n"
                 "\n"
                 "Records that do not decode are named on stderr and left out (exit status 1).\n");
}

/* The record an entry of the tables below holds: its address, as the bytes of a pointer. */
static xm_record *entry_record(const hs_table_entry *e)
{
    void *p;
    memcpy(&p, e->value, sizeof p);
    return p;
}

/* Reads `table` whole into `records` ("<key>" -> xm_record *); returns the number of records skipped in
 * *skipped. */
static hs_err read_table(rd_kafka_t *rk, const hsctl_globals *g, xm_table table, hs_table *records,
                         long *skipped)
{
    const char *name = xm_table_topic(table);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, name, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(rk, 0, rkt, &md, g->timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (kerr)
        return hsctl_fail(HS_ERR_KAFKA, "cannot read metadata of %s: %s", name, rd_kafka_err2str(kerr));
    if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
        rd_kafka_metadata_destroy(md);
        return hsctl_topic_missing(md, name);
    }
    int partitions = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *assignment = rd_kafka_topic_partition_list_new(partitions);
    int open = 0;
    hs_err err = HS_OK;
    for (int i = 0; i < partitions && err == HS_OK; i++) {
        int32_t id = md->topics[0].partitions[i].id;
        int64_t low = 0, high = 0;
        kerr = hsctl_watermarks(rk, name, id, &low, &high, g->timeout_ms);
        if (kerr)
            err = hsctl_fail(HS_ERR_KAFKA, "cannot read offsets of %s [%d]: %s", name, id,
                             rd_kafka_err2str(kerr));
        else if (high > low) { /* an empty partition has nothing to wait for */
            rd_kafka_topic_partition_list_add(assignment, name, id)->offset = low;
            open++;
        }
    }
    rd_kafka_metadata_destroy(md);
    if (err == HS_OK)
        rd_kafka_assign(rk, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);
    while (err == HS_OK && open > 0) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, g->timeout_ms);
        if (!msg) {
            err = hsctl_fail(HS_ERR_KAFKA, "%s: no record within %d s", name, g->timeout_ms / 1000);
            break;
        }
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            open--;
        } else if (msg->err) {
            fprintf(stderr, "hsctl export: %s\n", rd_kafka_message_errstr(msg));
        } else {
            char key[HS_KEY_MAX];
            hs_error error = {0};
            xm_record *record = NULL;
            if (!msg->key || msg->key_len == 0 || msg->key_len >= sizeof key) {
                hs_error_set(&error, HS_ERR_VALIDATION, "no key, or one longer than %d bytes",
                             HS_KEY_MAX - 1);
            } else {
                memcpy(key, msg->key, msg->key_len);
                key[msg->key_len] = '\0';
                if (!msg->payload ||
                    xm_record_decode(table, key, msg->payload, msg->len, &record, &error) == HS_OK) {
                    const hs_table_entry *e = hs_table_get(records, key);
                    if (e) {
                        xm_record_free(entry_record(e));
                        hs_table_delete(records, key);
                    }
                    void *p = record;
                    if (record && hs_table_put(records, key, &p, sizeof p) == HS_TABLE_NOMEM) {
                        xm_record_free(record);
                        err = hsctl_fail(HS_ERR_NOMEM, "out of memory");
                    }
                }
            }
            if (error.code != HS_OK) {
                fprintf(stderr, "hsctl export: %s [%" PRId32 "] offset %" PRId64 " skipped: %s\n", name,
                        msg->partition, msg->offset, error.message);
                (*skipped)++;
            }
        }
        rd_kafka_message_destroy(msg);
    }
    rd_kafka_assign(rk, NULL);
    return err;
}

hs_err hsctl_export(int argc, char **argv, const hsctl_globals *g)
{
    const char *format = NULL, *output = NULL;
    bool wanted[XM_TABLE_COUNT] = {false}, any = false;
    const char *topics[XM_TABLE_COUNT * 4];
    hs_cli_texts topic_texts = {topics, 0, sizeof topics / sizeof topics[0]};
    const hs_cli_option options[] = {
        {"format", 0, HS_CLI_TEXT, &format},
        {"topic", 0, HS_CLI_TEXTS, &topic_texts},
        {"output", 'o', HS_CLI_TEXT, &output},
        {0},
    };
    hs_cli_parse("hsctl export", argc, argv, options, false, usage);
    for (size_t i = 0; i < topic_texts.count; i++) {
        xm_table table;
        if (!xm_table_of(topics[i], &table))
            return hsctl_fail(HS_ERR_USAGE, "--topic %s: not a derived table (%s, %s or %s)", topics[i],
                              xm_table_topic(XM_TARGETS), xm_table_topic(XM_VARIATION),
                              xm_table_topic(XM_CAPACITY));
        wanted[table] = any = true;
    }
    if (optind != argc || !format) {
        usage(stderr);
        return HS_ERR_USAGE;
    }
    if (strcmp(format, "openmetrics") != 0)
        return hsctl_fail(HS_ERR_USAGE, "--format %s: the format is openmetrics", format);
    for (int t = 0; t < XM_TABLE_COUNT && !any; t++)
        wanted[t] = true;

    rd_kafka_t *rk = hsctl_reader(g);
    if (!rk)
        return HS_ERR_KAFKA;
    hs_table records[XM_TABLE_COUNT];
    long skipped = 0;
    hs_err err = HS_OK;
    for (int t = 0; t < XM_TABLE_COUNT; t++) {
        hs_table_init(&records[t]);
        if (wanted[t] && err == HS_OK)
            err = read_table(rk, g, (xm_table)t, &records[t], &skipped);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);

    size_t count = 0;
    for (int t = 0; t < XM_TABLE_COUNT; t++)
        count += records[t].count;
    xm_record **all = calloc(count ? count : 1, sizeof *all); // NOLINT(bugprone-sizeof-expression): pointers
    if (!all && err == HS_OK)
        err = hsctl_fail(HS_ERR_NOMEM, "out of memory");
    size_t n = 0;
    for (int t = 0; t < XM_TABLE_COUNT; t++) {
        size_t cursor = 0;
        const hs_table_entry *e;
        while ((e = hs_table_next(&records[t], &cursor))) {
            xm_record *r = entry_record(e);
            if (all)
                all[n++] = r;
            else
                xm_record_free(r);
        }
        hs_table_free(&records[t]);
    }
    if (err == HS_OK) {
        char tmp[4096];
        FILE *out = stdout;
        if (output) {
            snprintf(tmp, sizeof tmp, "%s.tmp", output);
            out = fopen(tmp, "w");
            if (!out)
                err = hsctl_fail(HS_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
        }
        hs_error error = {0};
        if (out && xm_write_openmetrics(out, all, n, &error) != HS_OK)
            err = hsctl_fail(error.code, "%s%s%s", output ? output : "", output ? ": " : "", error.message);
        if (output && out) {
            if (fclose(out) != 0 && err == HS_OK)
                err = hsctl_fail(HS_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
            if (err == HS_OK && rename(tmp, output) != 0)
                err = hsctl_fail(HS_ERR_IO, "cannot rename %s to %s: %s", tmp, output, strerror(errno));
            if (err != HS_OK)
                remove(tmp);
        }
    }
    for (size_t i = 0; i < n; i++)
        xm_record_free(all[i]);
    free(all);
    if (err == HS_OK && skipped > 0)
        err = hsctl_fail(HS_ERR_VALIDATION, "%ld records skipped (named above)", skipped);
    return err;
}
