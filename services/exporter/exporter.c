/* The exporter's I/O (exporter.h). One libuv loop: an hs_reader (hs/reader.h) reading every partition of the
 * derived tables from the beginning (no group offsets: the tables are rebuilt on every start, as the
 * alertmanager sink rebuilds hs.alerts.v1; a broker or topics not there yet delay the rebuild), the records
 * by key, and per series identity (the key without its
 * period) the records of every period, of which the latest is on /metrics. /metrics and the probes are
 * served by hs_http's thread, which reads only the registry and the `ready` flag; the loop changes the
 * registry in batches under hs_metrics_lock, so that a scrape never sees a series half replaced.
 */
#include "exporter.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "exporter_map.h"
#include "hs/http.h"
#include "hs/kafka.h"
#include "hs/reader.h"
#include "hs/log.h"
#include "hs/metrics.h"
#include "hs/process.h"
#include "hs/runtime.h"
#include "hs/table.h"

const hs_option exporter_options[] = {
    {.name = "topics",
     .type = HS_OPTION_STRING,
     .default_value = HS_TOPIC_TARGET_STATUS "," HS_TOPIC_VARIATION "," HS_TOPIC_CAPACITY_STATUS,
     .help = "comma-separated derived tables to export (of the default ones)"},
    {.name = NULL},
};

/* The records of one series identity: one per period; `exported` is the one on /metrics (the latest), NULL
 * before the tables are rebuilt. */
typedef struct member {
    xm_record *record;
} member;

typedef struct group {
    member *members;
    size_t count, cap;
    xm_record *exported;
} group;

typedef struct table_state {
    bool read;      /* one of the tables read (--topics) */
    hs_gauge *keys; /* records held */
    hs_counter *rejected;
    size_t count;
} table_state;

typedef struct exporter {
    const hs_config *config;
    uv_loop_t loop;
    uv_signal_t signals[2]; /* SIGTERM, SIGINT */
    hs_reader *reader;
    const char *topics[XM_TABLE_COUNT]; /* the topics read */
    size_t topic_count;
    int exit_code;     /* HS_EXIT_FATAL when the loop stopped on an error after the start */
    atomic_bool ready; /* written on the loop, read by the HTTP thread */
    bool stopping;
    table_state tables[XM_TABLE_COUNT];
    hs_table records; /* "<table>|<key>" -> xm_record * */
    hs_table groups;  /* identity -> group * */
    hs_metrics *metrics;
    hs_http *http;
    hs_gauge *series; /* samples on /metrics from the tables */
    size_t series_count;
} exporter;

/* --- the tables ------------------------------------------------------------------------------------------
 */

/* hs_tables hold pointers, as the bytes of the pointer. */
static void *entry_pointer(const hs_table_entry *e)
{
    void *p = NULL;
    if (e)
        memcpy(&p, e->value, sizeof p);
    return p;
}

static void *pointer_get(const hs_table *table, const char *key)
{
    return entry_pointer(hs_table_get(table, key));
}

static bool pointer_put(hs_table *table, const char *key, void *p)
{
    return hs_table_put(table, key, &p, sizeof p) != HS_TABLE_NOMEM;
}

static void publish(exporter *x, const xm_record *r)
{
    size_t n;
    const xm_family *families = xm_families(&n);
    for (size_t i = 0; i < r->count; i++) {
        const xm_sample *s = &r->samples[i];
        hs_gauge_set(
            hs_metrics_gauge_v(x->metrics, families[s->family].name, families[s->family].help, s->labels),
            s->value);
    }
    x->series_count += r->count;
}

static void unpublish(exporter *x, const xm_record *r)
{
    size_t n;
    const xm_family *families = xm_families(&n);
    for (size_t i = 0; i < r->count; i++)
        hs_metrics_remove_v(x->metrics, families[r->samples[i].family].name, r->samples[i].labels);
    x->series_count -= r->count;
}

static xm_record *latest_of(const group *g)
{
    xm_record *latest = NULL;
    for (size_t i = 0; i < g->count; i++)
        if (!latest || xm_later(g->members[i].record, latest))
            latest = g->members[i].record;
    return latest;
}

/* Puts the group's latest record on /metrics in place of the one there (both under the caller's lock). */
static void export_latest(exporter *x, group *g)
{
    xm_record *latest = latest_of(g);
    if (g->exported)
        unpublish(x, g->exported);
    g->exported = latest;
    if (latest)
        publish(x, latest);
}

/* Replaces (record != NULL) or deletes the record of `key` in `table`. Takes `record`. */
static void apply(exporter *x, xm_table table, const char *key, const char *identity_of, xm_record *record)
{
    char identity[HS_KEY_MAX + 4], record_key[HS_KEY_MAX + 4];
    snprintf(identity, sizeof identity, "%s", identity_of); /* `record`, which may hold it, may be freed */
    snprintf(record_key, sizeof record_key, "%d|%s", (int)table, key);
    group *g = pointer_get(&x->groups, identity);
    if (!g) {
        if (!record)
            return; /* a tombstone of a key we do not hold */
        g = calloc(1, sizeof *g);
        if (!g || !pointer_put(&x->groups, identity, g)) {
            free(g);
            xm_record_free(record);
            hs_log(HS_LOG_ERROR, "out of memory: record dropped", "{s:s}", "key", key);
            return;
        }
    }
    bool ready = atomic_load(&x->ready);
    if (ready && g->exported) { /* off /metrics before the record its labels point into may be freed */
        unpublish(x, g->exported);
        g->exported = NULL;
    }
    xm_record *old = pointer_get(&x->records, record_key);
    if (old) {
        for (size_t i = 0; i < g->count; i++)
            if (g->members[i].record == old) {
                g->members[i] = g->members[--g->count];
                break;
            }
        hs_table_delete(&x->records, record_key);
        xm_record_free(old);
        x->tables[table].count--;
    }
    if (record) {
        if (g->count == g->cap) {
            size_t cap = g->cap ? g->cap * 2 : 4;
            member *members = realloc(g->members, cap * sizeof *members);
            if (members) {
                g->members = members;
                g->cap = cap;
            }
        }
        if (g->count < g->cap && pointer_put(&x->records, record_key, record)) {
            g->members[g->count++] = (member){record};
            x->tables[table].count++;
        } else {
            hs_log(HS_LOG_ERROR, "out of memory: record dropped", "{s:s}", "key", key);
            xm_record_free(record);
        }
    }
    if (g->count == 0) {
        hs_table_delete(&x->groups, identity);
        free(g->members);
        free(g);
    } else if (ready) {
        export_latest(x, g);
    }
    hs_gauge_set(x->tables[table].keys, (double)x->tables[table].count);
}

/* One record of a derived table. One that does not decode, or whose key is not its value's identity, is
 * logged and counted and leaves the table as it was. */
static void apply_record(exporter *x, const rd_kafka_message_t *msg)
{
    xm_table table;
    if (!xm_table_of(rd_kafka_topic_name(msg->rkt), &table))
        return;
    char key[HS_KEY_MAX];
    hs_error error = {0};
    if (!msg->key || msg->key_len == 0 || msg->key_len >= sizeof key) {
        hs_error_set(&error, HS_ERR_VALIDATION, "no key, or one longer than %d bytes", HS_KEY_MAX - 1);
    } else {
        memcpy(key, msg->key, msg->key_len);
        key[msg->key_len] = '\0';
        if (memchr(key, '\0', msg->key_len)) {
            hs_error_set(&error, HS_ERR_VALIDATION, "key holds a NUL byte");
        } else if (!msg->payload) {
            char identity[HS_KEY_MAX + 4];
            if (xm_identity(table, key, identity, &error) == HS_OK) {
                apply(x, table, key, identity, NULL);
                return;
            }
        } else {
            xm_record *record;
            if (xm_record_decode(table, key, msg->payload, msg->len, &record, &error) == HS_OK) {
                apply(x, table, key, record->identity, record);
                return;
            }
        }
    }
    hs_log(HS_LOG_WARN, "record skipped", "{s:s, s:i, s:I, s:s}", "topic", xm_table_topic(table), "partition",
           (int)msg->partition, "offset", (json_int_t)msg->offset, "error", error.message);
    hs_counter_add(x->tables[table].rejected, 1);
}

/* --- Kafka: hs_reader's callbacks, on the loop ------------------------------------------------------------
 */

/* Every table read to its end once: every series' latest period goes on /metrics at once. */
static void on_rebuilt(exporter *x)
{
    hs_metrics_lock(x->metrics);
    size_t cursor = 0;
    const hs_table_entry *e;
    while ((e = hs_table_next(&x->groups, &cursor))) {
        group *g = entry_pointer(e);
        export_latest(x, g);
    }
    hs_gauge_set(x->series, (double)x->series_count);
    atomic_store(&x->ready, true);
    hs_metrics_unlock(x->metrics);
    hs_log(HS_LOG_INFO, "tables rebuilt", "{s:i, s:i, s:i, s:i}", "target_status",
           (int)x->tables[XM_TARGETS].count, "variation", (int)x->tables[XM_VARIATION].count,
           "capacity_status", (int)x->tables[XM_CAPACITY].count, "series", (int)x->series_count);
}

static void on_record(void *ctx, const rd_kafka_message_t *msg)
{
    apply_record(ctx, msg);
}

/* A scrape sees a batch whole or not at all. */
static void on_batch_begin(void *ctx)
{
    exporter *x = ctx;
    hs_metrics_lock(x->metrics);
}

static void on_batch_end(void *ctx)
{
    exporter *x = ctx;
    hs_gauge_set(x->series, (double)x->series_count);
    hs_metrics_unlock(x->metrics);
}

static void on_caught_up(void *ctx)
{
    on_rebuilt(ctx);
}

static void on_fatal(void *ctx, const hs_error *error)
{
    exporter *x = ctx;
    (void)error; /* logged by the reader */
    x->exit_code = HS_EXIT_FATAL;
    uv_stop(&x->loop);
}

static const hs_reader_callbacks reader_callbacks = {
    .record = on_record,
    .batch_begin = on_batch_begin,
    .batch_end = on_batch_end,
    .caught_up = on_caught_up,
    .fatal = on_fatal,
};

/* Marks the tables named in --topics to be read. */
static hs_err select_tables(exporter *x, hs_error *error)
{
    const char *list = hs_config_string(x->config, "topics");
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), p);
        xm_table table;
        if (len > 0 && !xm_table_of(name, &table))
            return hs_error_set(error, HS_ERR_CONFIG,
                                "HS_TOPICS: '%s' is not a derived table the exporter "
                                "maps (%s, %s, %s)",
                                name, xm_table_topic(XM_TARGETS), xm_table_topic(XM_VARIATION),
                                xm_table_topic(XM_CAPACITY));
        if (len > 0)
            x->tables[table].read = true;
        p += len + (comma ? 1 : 0);
    }
    for (int t = 0; t < XM_TABLE_COUNT; t++)
        if (x->tables[t].read)
            return HS_OK;
    return hs_error_set(error, HS_ERR_CONFIG, "HS_TOPICS: no table to export");
}

/* --- metrics, HTTP, signals ----------------------------------------------------------------------------- */

/* A render hook: runs on the HTTP thread, so it reads only what is thread-safe. */
static void refresh_gauges(void *ctx, hs_metrics *m)
{
    exporter *x = ctx;
    hs_reader_refresh_metrics(m, atomic_load(&x->ready));
}

/* On the HTTP thread (hs/http.h): reads the registry (thread-safe), `ready` and the reader's reason only. */
static void on_http(void *ctx, const char *path, hs_http_response *out)
{
    exporter *x = ctx;
    hs_reader_serve_probes(x->reader, atomic_load(&x->ready), "rebuilding the derived tables", x->metrics,
                           path, out);
}

static hs_err start(exporter *x, hs_error *error)
{
    if (select_tables(x, error) != HS_OK)
        return error->code;
    x->metrics = hs_metrics_new();
    if (!x->metrics)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    for (int t = 0; t < XM_TABLE_COUNT; t++) {
        if (!x->tables[t].read)
            continue;
        const char *topic = xm_table_topic((xm_table)t);
        x->tables[t].keys = hs_metrics_gauge_l(x->metrics, "hs_exporter_keys",
                                               "Records held of a derived table (its keys, every period)",
                                               "topic", topic, NULL);
        x->tables[t].rejected = hs_metrics_counter_l(
            x->metrics, "hs_exporter_records_rejected_total",
            "Records of a derived table that do not decode or whose key is not their identity (skipped)",
            "topic", topic, NULL);
    }
    x->series =
        hs_metrics_gauge(x->metrics, "hs_exporter_series",
                         "Series of the derived tables on this page (the latest period of each)", NULL);
    hs_metrics_on_render(x->metrics, refresh_gauges, x);
    /* Before the HTTP thread, which reads x->reader for /readyz. */
    for (int t = 0; t < XM_TABLE_COUNT; t++)
        if (x->tables[t].read)
            x->topics[x->topic_count++] = xm_table_topic((xm_table)t);
    if (hs_reader_start(&x->loop, hs_config_string(x->config, "bootstrap-servers"), "hs-exporter", x->topics,
                        x->topic_count, &reader_callbacks, x, &x->reader, error) != HS_OK)
        return error->code;
    if (hs_http_start(hs_config_string(x->config, "http-addr"), NULL, on_http, x, &x->http, error) != HS_OK)
        return error->code;
    hs_log(HS_LOG_INFO, "http endpoint listening", "{s:i}", "port", hs_http_port(x->http));
    hs_reader_stop_on_signals(&x->loop, x->signals, &x->stopping);
    return HS_OK;
}

static void stop(exporter *x)
{
    x->stopping = true;
    if (x->http)
        hs_http_stop(x->http);
    hs_reader_shut_down(x->reader, &x->loop);
    size_t cursor = 0;
    const hs_table_entry *e;
    while ((e = hs_table_next(&x->records, &cursor))) {
        xm_record *r = entry_pointer(e);
        xm_record_free(r);
    }
    cursor = 0;
    while ((e = hs_table_next(&x->groups, &cursor))) {
        group *g = entry_pointer(e);
        free(g->members);
        free(g);
    }
    hs_table_free(&x->records);
    hs_table_free(&x->groups);
    hs_metrics_free(x->metrics);
}

int exporter_run(const hs_config *config)
{
    static exporter x; /* static: the loop's handles point into it */
    x = (exporter){.config = config};
    hs_table_init(&x.records);
    hs_table_init(&x.groups);
    uv_loop_init(&x.loop);
    hs_error error = {0};
    hs_err err = start(&x, &error);
    int exit_code = HS_EXIT_OK;
    if (err != HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot start", "{s:s}", "error", error.message);
        exit_code = err == HS_ERR_CONFIG ? HS_EXIT_CONFIG : HS_EXIT_FATAL;
    } else {
        hs_log(HS_LOG_INFO, "running", "{s:s}", "topics", hs_config_string(config, "topics"));
        uv_run(&x.loop, UV_RUN_DEFAULT);
        exit_code = x.exit_code;
    }
    stop(&x);
    uv_loop_close(&x.loop);
    hs_log(HS_LOG_INFO, "stopped", "{s:i}", "exit", exit_code);
    return exit_code;
}
