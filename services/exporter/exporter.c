/* The exporter's I/O (exporter.h). One libuv loop: a plain Kafka consumer assigned every partition of the
 * derived tables from the beginning (no group offsets: the tables are rebuilt on every start, as the
 * alertmanager sink rebuilds hs.alerts.v1), the records by key, and per series identity (the key without its
 * period) the records of every period, of which the latest is on /metrics. /metrics and the probes are
 * served by hs_http's thread, which reads only the registry and the `ready` flag; the loop changes the
 * registry in batches under hs_metrics_lock, so that a scrape never sees a series half replaced.
 */
#include "exporter.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "exporter_map.h"
#include "hs/http.h"
#include "hs/kafka.h"
#include "hs/log.h"
#include "hs/metrics.h"
#include "hs/process.h"
#include "hs/runtime.h"
#include "hs/table.h"

#define POLL_BATCH    2000  /* records per wake-up before the loop gets a turn */
#define METADATA_WAIT 30000 /* ms to learn the partitions of a table */

const hs_option exporter_options[] = {
    {.name = "bootstrap-servers",
     .type = HS_OPTION_STRING,
     .default_value = HS_DEFAULT_BOOTSTRAP,
     .help = "Kafka bootstrap servers"},
    {.name = "http-addr",
     .type = HS_OPTION_ADDRESS,
     .default_value = "127.0.0.1:9464",
     .help = "address of /metrics, /healthz and /readyz (port 0: any free port)"},
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
    bool read; /* one of the tables read (--topics) */
    int partitions;
    bool *eof;      /* per partition: read to its end once */
    hs_gauge *keys; /* records held */
    hs_counter *rejected;
    size_t count;
} table_state;

typedef struct exporter {
    const hs_config *config;
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    uv_poll_t kafka_poll;
    int kafka_fds[2];
    rd_kafka_t *consumer;
    rd_kafka_queue_t *queue;
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

/* --- Kafka ---------------------------------------------------------------------------------------------- */

static void kafka_poke(exporter *x)
{
    ssize_t n = write(x->kafka_fds[1], "1", 1);
    (void)n; /* a full pipe already means "awake" */
}

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

static void on_partition_eof(exporter *x, const rd_kafka_message_t *msg)
{
    xm_table table;
    if (atomic_load(&x->ready) || !xm_table_of(rd_kafka_topic_name(msg->rkt), &table))
        return;
    table_state *t = &x->tables[table];
    if (msg->partition >= 0 && msg->partition < t->partitions)
        t->eof[msg->partition] = true;
    for (int k = 0; k < XM_TABLE_COUNT; k++)
        for (int p = 0; x->tables[k].read && p < x->tables[k].partitions; p++)
            if (!x->tables[k].eof[p])
                return;
    on_rebuilt(x);
}

static void on_kafka_ready(uv_poll_t *poll, int status, int events)
{
    (void)status;
    (void)events;
    exporter *x = poll->data;
    char buf[64];
    while (read(x->kafka_fds[0], buf, sizeof buf) > 0)
        ;
    hs_metrics_lock(x->metrics); /* a scrape sees the whole batch or none of it */
    for (int n = 0; n < POLL_BATCH && !x->stopping; n++) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(x->consumer, 0);
        if (!msg)
            break;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            on_partition_eof(x, msg);
        else if (msg->err)
            hs_log(HS_LOG_WARN, "consumer error", "{s:s}", "error", rd_kafka_message_errstr(msg));
        else
            apply_record(x, msg);
        rd_kafka_message_destroy(msg);
        if (n == POLL_BATCH - 1)
            kafka_poke(x); /* more may be queued: come back after the loop has had its turn */
    }
    hs_gauge_set(x->series, (double)x->series_count);
    hs_metrics_unlock(x->metrics);
}

/* The number of partitions of `topic`, from the cluster's metadata; 0 with `error` set. */
static int topic_partitions(rd_kafka_t *rk, const char *name, hs_error *error)
{
    rd_kafka_topic_t *topic = rd_kafka_topic_new(rk, name, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, topic, &md, METADATA_WAIT);
    int partitions = 0;
    if (err)
        hs_error_set(error, HS_ERR_KAFKA, "cannot read the metadata of %s: %s", name, rd_kafka_err2str(err));
    else if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0)
        hs_error_set(error, HS_ERR_KAFKA, "%s: %s (hsctl topics create)", name,
                     md->topic_cnt == 1 && md->topics[0].err ? rd_kafka_err2str(md->topics[0].err)
                                                             : "no partitions");
    else
        partitions = md->topics[0].partition_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(topic);
    return partitions;
}

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

static hs_err start_kafka(exporter *x, hs_error *error)
{
    rd_kafka_conf_t *conf = hs_kafka_conf_new(hs_config_string(x->config, "bootstrap-servers"), error);
    if (!conf)
        return error->code;
    /* No group offsets are ever committed: the group id only names the client to the brokers. */
    const char *props[] = {
        "group.id", "hs-exporter",     "enable.auto.commit", "false",     "enable.partition.eof",
        "true",     "isolation.level", "read_committed",     "client.id", "hs-exporter",
        NULL};
    for (const char *const *p = props; *p; p += 2)
        if (hs_kafka_conf_set(conf, p[0], p[1], error) != HS_OK) {
            rd_kafka_conf_destroy(conf);
            return error->code;
        }
    char errstr[512];
    x->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!x->consumer) {
        rd_kafka_conf_destroy(conf);
        return hs_error_set(error, HS_ERR_CONFIG, "%s", errstr);
    }
    rd_kafka_poll_set_consumer(x->consumer);
    rd_kafka_topic_partition_list_t *all = rd_kafka_topic_partition_list_new(64);
    if (!all)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    for (int t = 0; t < XM_TABLE_COUNT; t++) {
        table_state *ts = &x->tables[t];
        if (!ts->read)
            continue;
        ts->partitions = topic_partitions(x->consumer, xm_table_topic((xm_table)t), error);
        if (ts->partitions == 0) {
            rd_kafka_topic_partition_list_destroy(all);
            return error->code;
        }
        ts->eof = calloc((size_t)ts->partitions, sizeof *ts->eof);
        if (!ts->eof) {
            rd_kafka_topic_partition_list_destroy(all);
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
        }
        for (int p = 0; p < ts->partitions; p++)
            rd_kafka_topic_partition_list_add(all, xm_table_topic((xm_table)t), p)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(x->consumer, all);
    rd_kafka_topic_partition_list_destroy(all);

    if (pipe(x->kafka_fds) != 0)
        return hs_error_set(error, HS_ERR_IO, "pipe: %s", strerror(errno));
    for (int k = 0; k < 2; k++) {
        fcntl(x->kafka_fds[k], F_SETFL, fcntl(x->kafka_fds[k], F_GETFL) | O_NONBLOCK);
        fcntl(x->kafka_fds[k], F_SETFD, FD_CLOEXEC);
    }
    x->queue = rd_kafka_queue_get_consumer(x->consumer);
    rd_kafka_queue_io_event_enable(x->queue, x->kafka_fds[1], "1", 1);
    uv_poll_init(&x->loop, &x->kafka_poll, x->kafka_fds[0]);
    x->kafka_poll.data = x;
    uv_poll_start(&x->kafka_poll, UV_READABLE, on_kafka_ready);
    kafka_poke(x); /* serve whatever is already queued */
    return HS_OK;
}

/* --- metrics, HTTP, signals ----------------------------------------------------------------------------- */

/* A render hook: runs on the HTTP thread, so it reads only what is thread-safe. */
static void refresh_gauges(void *ctx, hs_metrics *m)
{
    exporter *x = ctx;
    hs_process_metrics_refresh(m);
    hs_gauge_set(hs_metrics_gauge(m, "hs_ready", "1 when /readyz answers ready", NULL),
                 atomic_load(&x->ready) ? 1 : 0);
}

static void on_http(void *ctx, const char *path, hs_http_response *out)
{
    exporter *x = ctx;
    if (strcmp(path, "/metrics") == 0) {
        out->content_type = HS_METRICS_CONTENT_TYPE;
        out->body = hs_metrics_render(x->metrics);
    } else if (strcmp(path, "/healthz") == 0) {
        out->body = strdup("ok\n");
    } else if (strcmp(path, "/readyz") == 0) {
        bool ready = atomic_load(&x->ready);
        out->status = ready ? 200 : 503;
        out->body = strdup(ready ? "ready\n" : "rebuilding the derived tables\n");
    } else {
        out->status = 404;
        out->body = strdup("not found: try /metrics, /healthz or /readyz\n");
    }
}

static void on_signal(uv_signal_t *handle, int signum)
{
    exporter *x = handle->data;
    hs_log(HS_LOG_INFO, "stopping", "{s:i}", "signal", signum);
    x->stopping = true;
    alarm(10); /* the stop must finish within 10 s; SIGALRM's default action ends the process otherwise */
    uv_stop(&x->loop);
}

static void close_handle(uv_handle_t *handle, void *arg)
{
    (void)arg;
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
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
    if (hs_http_start(hs_config_string(x->config, "http-addr"), NULL, on_http, x, &x->http, error) != HS_OK)
        return error->code;
    hs_log(HS_LOG_INFO, "http endpoint listening", "{s:i}", "port", hs_http_port(x->http));
    if (start_kafka(x, error) != HS_OK)
        return error->code;
    uv_signal_init(&x->loop, &x->sigterm);
    uv_signal_init(&x->loop, &x->sigint);
    x->sigterm.data = x->sigint.data = x;
    uv_signal_start(&x->sigterm, on_signal, SIGTERM);
    uv_signal_start(&x->sigint, on_signal, SIGINT);
    return HS_OK;
}

static void stop(exporter *x)
{
    x->stopping = true;
    if (x->http)
        hs_http_stop(x->http);
    uv_walk(&x->loop, close_handle, NULL);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    if (x->queue)
        rd_kafka_queue_destroy(x->queue);
    if (x->consumer) {
        rd_kafka_consumer_close(x->consumer);
        rd_kafka_destroy(x->consumer);
    }
    for (int k = 0; k < 2; k++)
        if (x->kafka_fds[k] >= 0)
            close(x->kafka_fds[k]);
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
    for (int t = 0; t < XM_TABLE_COUNT; t++)
        free(x->tables[t].eof);
    hs_metrics_free(x->metrics);
}

int exporter_run(const hs_config *config)
{
    static exporter x; /* static: the loop's handles point into it */
    x = (exporter){.config = config, .kafka_fds = {-1, -1}};
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
    }
    stop(&x);
    uv_loop_close(&x.loop);
    hs_log(HS_LOG_INFO, "stopped", "{s:i}", "exit", exit_code);
    return exit_code;
}
