/* The alertmanager sink's I/O (sink.h). One libuv loop drives everything: an hs_reader (hs/reader.h) that
 * reads every partition of hs.alerts.v1 from the beginning (no group offsets: the table is rebuilt on every
 * start; a broker not up yet delays the rebuild, never the start), the table of alerts by fingerprint, and
 * one delivery state per Alertmanager whose POSTs run on libcurl's multi interface (curl_multi_socket_action,
 * sockets watched by uv_poll_t, curl's timeout by a uv_timer_t). /metrics and the probes are served by
 * hs_http's own thread, which reads only the metrics registry, the `ready` flag and the reader's reason for
 * not being ready. Each POST carries every alert Alertmanager should hold: the FIRING ones, with endsAt a few
 * resend intervals ahead, and the RESOLVED ones until each Alertmanager has accepted them `resolved-sends`
 * times. A failed POST is retried with capped exponential back-off; the Alertmanagers do not wait for each
 * other. Delivery is at least once: see README.md, "At least once".
 */
#include "sink.h"

#include <curl/curl.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "alertmanager_map.h"
#include "hs/alert.h"
#include "hs/http.h"
#include "hs/kafka.h"
#include "hs/key.h"
#include "hs/log.h"
#include "hs/metrics.h"
#include "hs/process.h"
#include "hs/reader.h"
#include "hs/runtime.h"
#include "hs/table.h"
#include "hs/validate.h"
#include "hs/wire.h"

#define MAX_TARGETS    8
#define FIRING_RESENDS 4                 /* a FIRING alert's endsAt is this many resend intervals ahead */
#define BACKOFF_FIRST  250               /* ms: the first retry of a failed POST */
#define RESPONSE_KEEP  512               /* bytes of an Alertmanager's answer kept for the log */
#define ENTRY_KEY_MAX  (HS_KEY_MAX + 24) /* a key of `alerts` or of `retired` */

const hs_option sink_options[] = {
    {.name = "bootstrap-servers",
     .type = HS_OPTION_STRING,
     .default_value = HS_DEFAULT_BOOTSTRAP,
     .help = "Kafka bootstrap servers"},
    {.name = "http-addr",
     .type = HS_OPTION_ADDRESS,
     .default_value = "127.0.0.1:9464",
     .help = "address of /metrics, /healthz and /readyz (port 0: any free port)"},
    {.name = "alertmanager-urls",
     .type = HS_OPTION_STRING,
     .default_value = "http://127.0.0.1:9093",
     .help = "comma-separated Alertmanager base URLs; every alert goes to each (at most 8)"},
    {.name = "resend-interval",
     .type = HS_OPTION_DURATION_MS,
     .default_value = "60s",
     .help = "re-send every FIRING alert this often (below Alertmanager's resolve_timeout)",
     .min = 100,
     .max = 3600000},
    {.name = "post-timeout",
     .type = HS_OPTION_DURATION_MS,
     .default_value = "10s",
     .help = "time one POST may take, connecting included",
     .min = 100,
     .max = 600000},
    {.name = "retry-max",
     .type = HS_OPTION_DURATION_MS,
     .default_value = "30s",
     .help = "longest wait before retrying a failed POST (back-off doubles from 250ms; never above "
             "resend-interval)",
     .min = 100,
     .max = 3600000},
    {.name = "resolved-sends",
     .type = HS_OPTION_INT,
     .default_value = "3",
     .help = "times each Alertmanager must accept a RESOLVED alert before it is no longer sent",
     .min = 1,
     .max = 100},
    {.name = "generator-url",
     .type = HS_OPTION_STRING,
     .default_value = "",
     .help = "generatorURL of every alert ({fingerprint} and {rule} are replaced); empty: none"},
    {.name = "tls-ca-file",
     .type = HS_OPTION_STRING,
     .default_value = "",
     .help = "CA certificates (PEM) to verify https Alertmanagers with; empty: the system's"},
    {.name = "tls-cert-file",
     .type = HS_OPTION_STRING,
     .default_value = "",
     .help = "client certificate (PEM) for Alertmanagers that require one"},
    {.name = "tls-key-file", .type = HS_OPTION_STRING, .default_value = "", .help = "its private key (PEM)"},
    {.name = "tls-insecure-skip-verify",
     .type = HS_OPTION_BOOL,
     .default_value = "false",
     .help = "do not verify the Alertmanagers' certificates (testing only)"},
    {.name = "basic-auth-user",
     .type = HS_OPTION_STRING,
     .default_value = "",
     .help = "HTTP basic auth user"},
    {.name = "basic-auth-password",
     .type = HS_OPTION_STRING,
     .secret = true,
     .default_value = "",
     .help = "HTTP basic auth password"},
    {.name = "bearer-token",
     .type = HS_OPTION_STRING,
     .secret = true,
     .default_value = "",
     .help = "sent as 'Authorization: Bearer TOKEN'"},
    {.name = NULL},
};

typedef struct sink sink;

/* One alert of the table. */
typedef struct sink_alert {
    Healthsignals__V1__Alert *alert; /* unpacked; owned */
    int resolved_sent[MAX_TARGETS];  /* times each Alertmanager accepted it RESOLVED */
} sink_alert;

/* One Alertmanager and its delivery state. At most one POST is in flight per Alertmanager; `dirty` says
 * that the table changed (or a resend is due) since the body in flight was built. */
typedef struct target {
    sink *s;
    int index;
    char url[1024];  /* .../api/v2/alerts */
    char name[1024]; /* the base URL without credentials: the metrics' label */
    CURL *easy;      /* the POST in flight, or NULL */
    char *body;
    struct curl_slist *headers;
    char response[RESPONSE_KEEP];
    size_t response_len;
    char (*resolved)[ENTRY_KEY_MAX]; /* the RESOLVED alerts the POST in flight carries (keys) */
    size_t resolved_count;
    bool dirty;
    int64_t backoff_ms, next_attempt_ms;
    uv_timer_t retry;
    hs_counter *posts_ok, *posts_http_error, *posts_transport_error, *retries;
    hs_gauge *last_success;
} target;

/* A socket libcurl asked us to watch. */
typedef struct curl_watch {
    uv_poll_t poll;
    curl_socket_t fd;
    sink *s;
} curl_watch;

struct sink {
    const hs_config *config;
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    uv_timer_t resend, curl_timer;
    hs_reader *reader; /* hs.alerts.v1, read whole into the loop; set before the HTTP thread starts */
    atomic_bool ready; /* the table is rebuilt; written on the loop, read by the HTTP thread */
    bool stopping;
    bool batch_changed; /* a record of the reader's current batch changed the table */
    int exit_code;      /* HS_EXIT_FATAL when the loop stopped on an error after the start */
    hs_table alerts;    /* fingerprint -> sink_alert *: the table of hs.alerts.v1 */
    hs_table retired;   /* "fingerprint~N" -> sink_alert *: alerts replaced under other labels, to resolve */
    uint64_t retired_seq;
    CURLM *multi;
    target targets[MAX_TARGETS];
    int target_count;
    int resolved_sends;
    int64_t resend_ms, retry_max_ms;
    hs_metrics *metrics;
    hs_http *http;
    hs_counter *rejected;
    hs_gauge *held, *firing; /* the table's, set on the loop whenever it changes */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the table -------------------------------------------------------------------------------------------
 */

/* What the tables hold for an alert: its address (the bytes of this struct; hs_table copies them). */
typedef struct alert_ref {
    sink_alert *alert;
} alert_ref;

static sink_alert *entry_alert(const hs_table_entry *e)
{
    alert_ref ref;
    memcpy(&ref, e->value, sizeof ref);
    return ref.alert;
}

static bool table_put_alert(hs_table *table, const char *key, sink_alert *a)
{
    alert_ref ref = {a};
    return hs_table_put(table, key, &ref, sizeof ref) != HS_TABLE_NOMEM;
}

static sink_alert *alert_get(const hs_table *table, const char *fingerprint)
{
    const hs_table_entry *e = hs_table_get(table, fingerprint);
    return e ? entry_alert(e) : NULL;
}

static void alert_free(sink_alert *a)
{
    if (a) {
        protobuf_c_message_free_unpacked(&a->alert->base, NULL);
        free(a);
    }
}

static void alert_delete(hs_table *table, const char *fingerprint)
{
    alert_free(alert_get(table, fingerprint));
    hs_table_delete(table, fingerprint);
}

/* Whether the alert goes into a POST to target `t`: FIRING, or RESOLVED and not yet accepted by it
 * `resolved-sends` times. */
static bool alert_due(const sink *s, const sink_alert *a, int t)
{
    return am_map_is_firing(a->alert) || a->resolved_sent[t] < s->resolved_sends;
}

/* Whether some Alertmanager is still owed the alert. */
static bool any_due(const sink *s, const sink_alert *a)
{
    for (int t = 0; t < s->target_count; t++)
        if (alert_due(s, a, t))
            return true;
    return false;
}

/* Moves the alert `old`, held under `key`, from the table to `retired`, to be sent RESOLVED `resolved-sends`
 * times: FIRING, it is resolved now (its ends_at is empty, as a FIRING alert's is: the mapping ends it now);
 * RESOLVED and not yet delivered, it is delivered. Out of memory, it is dropped (Alertmanager lets it expire
 * at its endsAt). */
static void retire(sink *s, const char *key, sink_alert *old)
{
    if (am_map_is_firing(old->alert)) {
        old->alert->state = HEALTHSIGNALS__V1__ALERT_STATE__RESOLVED;
        memset(old->resolved_sent, 0, sizeof old->resolved_sent);
    }
    char retired_key[ENTRY_KEY_MAX];
    snprintf(retired_key, sizeof retired_key, "%s~%llu", key, (unsigned long long)++s->retired_seq);
    if (table_put_alert(&s->retired, retired_key, old))
        hs_table_delete(&s->alerts, key); /* the entry, not the alert: it lives on in `retired` */
    else
        alert_delete(&s->alerts, key);
}

/* The alert held under `key` is replaced by `next` under other labels (its rule's labels or severity
 * changed). Alertmanager knows alerts by their labels, so the old one is kept apart and sent RESOLVED
 * `resolved-sends` times: FIRING, it is resolved now; RESOLVED and not yet delivered, it is delivered. The
 * service emits that RESOLVED record itself (hs_alert_put), right before the FIRING one under the new labels,
 * but the table holds only the latest record of a key and the two usually arrive together. */
static void retire_if_relabelled(sink *s, const char *key, const Healthsignals__V1__Alert *next, bool history)
{
    sink_alert *old = alert_get(&s->alerts, key);
    if (!old || history || hs_alert_same_labels(old->alert, next) || !any_due(s, old))
        return;
    retire(s, key, old);
}

/* A tombstone for `key`: the alert is gone from hs.alerts.v1 (its rule deleted, or the key removed by hand).
 * Alertmanager still holds it while its endsAt lies ahead, so it is retired like an alert replaced under
 * other labels: a FIRING one resolved there now, a RESOLVED one not yet delivered still delivered. A
 * tombstone from the rebuild older than a FIRING alert's endsAt reaches needs nothing sent: every
 * Alertmanager has let the alert expire by itself. Returns whether the table changed. */
static bool delete_alert(sink *s, const char *key, bool history)
{
    sink_alert *old = alert_get(&s->alerts, key);
    if (!old)
        return false;
    if (history || !any_due(s, old)) {
        alert_delete(&s->alerts, key);
        return true;
    }
    retire(s, key, old);
    return true;
}

/* The table's gauges, on the loop (the HTTP thread only renders them). */
static void update_table_gauges(sink *s)
{
    size_t firing = 0, cursor = 0;
    const hs_table_entry *e;
    while ((e = hs_table_next(&s->alerts, &cursor)))
        firing += am_map_is_firing(entry_alert(e)->alert);
    hs_gauge_set(s->held, (double)s->alerts.count);
    hs_gauge_set(s->firing, (double)firing);
}

static void mark_all_dirty(sink *s)
{
    for (int t = 0; t < s->target_count; t++)
        s->targets[t].dirty = true;
}

static void flush_all(sink *s);

/* `alert` is now held under its labels: a retired alert under the same labels (the labels changed and
 * changed back before it was sent often enough) is no longer to be resolved — the same label set is the same
 * alert to Alertmanager, and sending it RESOLVED next to the FIRING one would resolve what fires. */
static void unretire_same_labels(sink *s, const Healthsignals__V1__Alert *alert)
{
    for (bool found = true; found;) { /* the table may not change while iterated: one deletion per pass */
        found = false;
        size_t cursor = 0;
        const hs_table_entry *e;
        while (!found && (e = hs_table_next(&s->retired, &cursor)))
            if (hs_alert_same_labels(entry_alert(e)->alert, alert)) {
                char key[ENTRY_KEY_MAX];
                snprintf(key, sizeof key, "%s", e->key);
                alert_delete(&s->retired, key);
                found = true;
            }
    }
}

/* One record of hs.alerts.v1. A RESOLVED alert is sent to every Alertmanager `resolved-sends` times —
 * unless it comes from the rebuild and resolved longer ago than a FIRING alert's endsAt reaches: by then
 * every Alertmanager has resolved it by itself, and sending the topic's whole history would only be noise.
 * A record that does not decode or validate leaves the alert as it was. Returns whether the table changed. */
static bool apply_record(sink *s, const rd_kafka_message_t *msg)
{
    char key[HS_KEY_MAX];
    if (!msg->key || msg->key_len == 0 || msg->key_len >= sizeof key) {
        hs_counter_add(s->rejected, 1);
        return false;
    }
    memcpy(key, msg->key, msg->key_len);
    key[msg->key_len] = '\0';
    rd_kafka_timestamp_type_t type;
    int64_t record_ms = rd_kafka_message_timestamp(msg, &type);
    bool history = !s->ready && record_ms >= 0 && now_ms() - record_ms > FIRING_RESENDS * s->resend_ms;
    if (!msg->payload)
        return delete_alert(s, key, history);
    Healthsignals__V1__Alert *alert = (Healthsignals__V1__Alert *)hs_wire_unpack(
        &healthsignals__v1__alert__descriptor, NULL, msg->len, msg->payload);
    hs_error error = {0};
    if (!alert || hs_validate_alert(alert, &error) != HS_OK) {
        hs_log(HS_LOG_WARN, "alert record skipped", "{s:s, s:i, s:I, s:s}", "key", key, "partition",
               (int)msg->partition, "offset", (json_int_t)msg->offset, "error",
               alert ? error.message : "not a healthsignals.v1.Alert");
        if (alert)
            protobuf_c_message_free_unpacked(&alert->base, NULL);
        hs_counter_add(s->rejected, 1);
        return false;
    }
    sink_alert *a = calloc(1, sizeof *a);
    if (!a) {
        protobuf_c_message_free_unpacked(&alert->base, NULL);
        return false;
    }
    a->alert = alert;
    for (int t = 0; t < MAX_TARGETS; t++)
        a->resolved_sent[t] = history ? s->resolved_sends : 0;
    retire_if_relabelled(s, key, alert, history);
    unretire_same_labels(s, alert);
    alert_delete(&s->alerts, key);
    if (!table_put_alert(&s->alerts, key, a)) {
        alert_free(a);
        return false;
    }
    return true;
}

/* --- Alertmanager delivery -------------------------------------------------------------------------------
 */

static size_t on_response(char *data, size_t size, size_t n, void *ctx)
{
    target *t = ctx;
    size_t len = size * n, room = sizeof t->response - 1 - t->response_len;
    size_t keep = len < room ? len : room;
    memcpy(t->response + t->response_len, data, keep);
    t->response_len += keep;
    t->response[t->response_len] = '\0';
    return len;
}

/* The JSON array of what target `t` should hold now; the RESOLVED alerts in it are noted in t->resolved.
 * NULL when there is nothing to send (or out of memory). */
static char *build_body(sink *s, target *t)
{
    am_map_options options = {.now_ms = now_ms(),
                              .firing_for_ms = FIRING_RESENDS * s->resend_ms,
                              .generator_url = hs_config_string(s->config, "generator-url")};
    json_t *array = json_array();
    t->resolved = calloc(s->alerts.count + s->retired.count + 1, sizeof *t->resolved);
    t->resolved_count = 0;
    /* Retired alerts first: should one share its labels with a held alert, Alertmanager keeps the last. */
    const hs_table *tables[] = {&s->retired, &s->alerts};
    for (size_t k = 0; k < 2; k++) {
        size_t cursor = 0;
        const hs_table_entry *e;
        while (array && t->resolved && (e = hs_table_next(tables[k], &cursor))) {
            sink_alert *a = entry_alert(e);
            if (!alert_due(s, a, t->index))
                continue;
            hs_error error = {0};
            json_t *mapped = am_map_alert(a->alert, &options, &error);
            if (!mapped) {
                hs_log(HS_LOG_WARN, "alert not sent", "{s:s, s:s}", "key", e->key, "error", error.message);
                continue;
            }
            json_array_append_new(array, mapped);
            if (!am_map_is_firing(a->alert))
                snprintf(t->resolved[t->resolved_count++], ENTRY_KEY_MAX, "%s", e->key);
        }
    }
    char *body = array && json_array_size(array) > 0 ? json_dumps(array, JSON_COMPACT) : NULL;
    json_decref(array);
    if (!body) {
        free(t->resolved);
        t->resolved = NULL;
    }
    return body;
}

static void on_retry(uv_timer_t *timer)
{
    target *t = timer->data;
    flush_all(t->s);
}

/* Sets the TLS and authentication options the configuration asks for. */
static void set_security(const hs_config *c, CURL *easy)
{
    const char *ca = hs_config_string(c, "tls-ca-file"), *cert = hs_config_string(c, "tls-cert-file"),
               *key = hs_config_string(c, "tls-key-file"), *user = hs_config_string(c, "basic-auth-user");
    if (*ca)
        curl_easy_setopt(easy, CURLOPT_CAINFO, ca);
    if (*cert)
        curl_easy_setopt(easy, CURLOPT_SSLCERT, cert);
    if (*key)
        curl_easy_setopt(easy, CURLOPT_SSLKEY, key);
    if (hs_config_bool(c, "tls-insecure-skip-verify")) {
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (*user) {
        curl_easy_setopt(easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(easy, CURLOPT_USERNAME, user);
        curl_easy_setopt(easy, CURLOPT_PASSWORD, hs_config_string(c, "basic-auth-password"));
    }
}

/* Starts a POST to `t` when one is due: something changed, none is in flight, the back-off has passed. */
static void flush_target(sink *s, target *t)
{
    if (!s->ready || s->stopping || t->easy || !t->dirty)
        return;
    int64_t now = now_ms();
    if (now < t->next_attempt_ms) {
        uv_timer_start(&t->retry, on_retry, (uint64_t)(t->next_attempt_ms - now), 0);
        return;
    }
    t->dirty = false;
    t->body = build_body(s, t);
    if (!t->body)
        return; /* nothing to hold: nothing to say */
    t->response_len = 0;
    t->response[0] = '\0';
    t->headers = curl_slist_append(NULL, "Content-Type: application/json");
    /* No "Expect: 100-continue" (libcurl's default for larger bodies): an Alertmanager behind a proxy that
     * does not answer it would cost a second per POST. */
    t->headers = curl_slist_append(t->headers, "Expect:");
    const char *token = hs_config_string(s->config, "bearer-token");
    if (*token) {
        char header[4096];
        snprintf(header, sizeof header, "Authorization: Bearer %s", token);
        t->headers = curl_slist_append(t->headers, header);
    }
    t->easy = curl_easy_init();
    if (!t->easy) {
        hs_log(HS_LOG_ERROR, "curl_easy_init failed", NULL);
        t->dirty = true;
        return;
    }
    curl_easy_setopt(t->easy, CURLOPT_URL, t->url);
    curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->body);
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, (long)hs_config_duration_ms(s->config, "post-timeout"));
    curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_response);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    set_security(s->config, t->easy);
    curl_multi_add_handle(s->multi, t->easy);
    hs_log(HS_LOG_DEBUG, "POST", "{s:s, s:I}", "alertmanager", t->name, "bytes", (json_int_t)strlen(t->body));
}

static void flush_all(sink *s)
{
    for (int t = 0; t < s->target_count; t++)
        flush_target(s, &s->targets[t]);
}

/* Target `t` accepted the RESOLVED alert of `key`. A retired alert accepted often enough by every
 * Alertmanager is forgotten. */
static void count_resolved_sent(sink *s, const target *t, const char *key)
{
    bool retired = strchr(key, '~') != NULL;
    sink_alert *a = alert_get(retired ? &s->retired : &s->alerts, key);
    if (!a || am_map_is_firing(a->alert))
        return;
    a->resolved_sent[t->index]++;
    if (retired && !any_due(s, a))
        alert_delete(&s->retired, key);
}

static void post_finished(sink *s, target *t, CURLcode result)
{
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    bool ok = result == CURLE_OK && status >= 200 && status < 300;
    hs_log(HS_LOG_DEBUG, "POST done", "{s:s, s:i, s:s}", "alertmanager", t->name, "status", (int)status,
           "result", curl_easy_strerror(result));
    if (ok) {
        hs_counter_add(t->posts_ok, 1);
        hs_gauge_set(t->last_success, (double)now_ms() / 1000.0);
        if (t->backoff_ms)
            hs_log(HS_LOG_INFO, "alertmanager accepts alerts again", "{s:s}", "alertmanager", t->name);
        t->backoff_ms = 0;
        t->next_attempt_ms = 0;
        for (size_t i = 0; i < t->resolved_count; i++)
            count_resolved_sent(s, t, t->resolved[i]);
    } else {
        hs_counter_add(result == CURLE_OK ? t->posts_http_error : t->posts_transport_error, 1);
        hs_counter_add(t->retries, 1);
        t->backoff_ms = t->backoff_ms ? t->backoff_ms * 2 : BACKOFF_FIRST;
        if (t->backoff_ms > s->retry_max_ms)
            t->backoff_ms = s->retry_max_ms;
        t->next_attempt_ms = now_ms() + t->backoff_ms;
        t->dirty = true;
        hs_log(HS_LOG_WARN, "POST to alertmanager failed", "{s:s, s:s, s:i, s:s, s:I}", "alertmanager",
               t->name, "error", result == CURLE_OK ? "HTTP status" : curl_easy_strerror(result), "status",
               (int)status, "response", t->response, "retry_in_ms", (json_int_t)t->backoff_ms);
    }
    curl_multi_remove_handle(s->multi, t->easy);
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    free(t->body);
    free(t->resolved);
    t->easy = NULL;
    t->headers = NULL;
    t->body = NULL;
    t->resolved = NULL;
    t->resolved_count = 0;
    flush_target(s, t);
}

static void check_finished(sink *s)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(s->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        target *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        post_finished(s, t, msg->data.result);
    }
}

/* --- libcurl on the libuv loop (the pattern of curl's docs/examples/multi-uv.c) ---------------------------
 */

static void on_curl_socket_ready(uv_poll_t *poll, int status, int events)
{
    curl_watch *w = poll->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(w->s->multi, w->fd, flags, &running);
    check_finished(w->s);
}

static void free_on_close(uv_handle_t *handle)
{
    free(handle->data);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int action, void *ctx, void *socket_ctx)
{
    (void)easy;
    sink *s = ctx;
    curl_watch *w = socket_ctx;
    if (action == CURL_POLL_REMOVE) {
        if (w) {
            uv_poll_stop(&w->poll);
            uv_close((uv_handle_t *)&w->poll, free_on_close);
            curl_multi_assign(s->multi, fd, NULL);
        }
        return 0;
    }
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w)
            return -1;
        w->fd = fd;
        w->s = s;
        uv_poll_init_socket(&s->loop, &w->poll, fd);
        w->poll.data = w;
        curl_multi_assign(s->multi, fd, w);
    }
    int events = 0;
    if (action & CURL_POLL_IN)
        events |= UV_READABLE;
    if (action & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&w->poll, events, on_curl_socket_ready);
    return 0;
}

static void on_curl_timeout(uv_timer_t *timer)
{
    sink *s = timer->data;
    int running;
    curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_finished(s);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *ctx)
{
    (void)multi;
    sink *s = ctx;
    if (timeout_ms < 0)
        uv_timer_stop(&s->curl_timer);
    else /* even 0 runs from the loop, never inside libcurl's call that set it */
        uv_timer_start(&s->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* --- Kafka (hs/reader.h: every partition of hs.alerts.v1 from the beginning, on the loop)
 * -------------------
 */

static void on_batch_begin(void *ctx)
{
    sink *s = ctx;
    s->batch_changed = false;
}

static void on_record(void *ctx, const rd_kafka_message_t *msg)
{
    sink *s = ctx;
    hs_log(HS_LOG_DEBUG, "alert record", "{s:i, s:I, s:b, s:b}", "partition", (int)msg->partition, "offset",
           (json_int_t)msg->offset, "deletion", msg->payload == NULL, "live", s->ready);
    s->batch_changed |= apply_record(s, msg);
}

/* The table is rebuilt: from now on it is sent. */
static void on_caught_up(void *ctx)
{
    sink *s = ctx;
    atomic_store(&s->ready, true);
    update_table_gauges(s);
    hs_log(HS_LOG_INFO, "alerts table rebuilt", "{s:i}", "alerts", (int)s->alerts.count);
    mark_all_dirty(s);
    flush_all(s);
}

static void on_batch_end(void *ctx)
{
    sink *s = ctx;
    if (s->batch_changed && s->ready && !s->stopping) {
        update_table_gauges(s);
        mark_all_dirty(s);
        flush_all(s);
    }
}

static void on_reader_fatal(void *ctx, const hs_error *error)
{
    sink *s = ctx;
    hs_log(HS_LOG_ERROR, "stopping", "{s:s}", "error", error->message);
    s->exit_code = HS_EXIT_FATAL;
    uv_stop(&s->loop);
}

static const hs_reader_callbacks reader_callbacks = {.record = on_record,
                                                     .batch_begin = on_batch_begin,
                                                     .batch_end = on_batch_end,
                                                     .caught_up = on_caught_up,
                                                     .fatal = on_reader_fatal};

/* --- targets, metrics, HTTP, signals ---------------------------------------------------------------------
 */

/* The base URL without "user:password@", for logs and metric labels. */
static void url_without_credentials(const char *url, char *out, size_t size)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *at = strchr(host, '@'), *slash = strchr(host, '/');
    if (at && (!slash || at < slash))
        snprintf(out, size, "%.*s%s", (int)(host - url), url, at + 1);
    else
        snprintf(out, size, "%s", url);
}

static hs_err add_target(sink *s, const char *base, size_t len, hs_error *error)
{
    while (len && (base[len - 1] == '/' || base[len - 1] == ' '))
        len--;
    while (len && *base == ' ')
        base++, len--;
    if (len == 0)
        return HS_OK;
    if (s->target_count == MAX_TARGETS)
        return hs_error_set(error, HS_ERR_CONFIG, "HS_ALERTMANAGER_URLS: more than %d Alertmanagers",
                            MAX_TARGETS);
    if (len >= 900 || (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0))
        return hs_error_set(error, HS_ERR_CONFIG,
                            "HS_ALERTMANAGER_URLS: '%.*s' is not an http:// or https:// URL", (int)len, base);
    target *t = &s->targets[s->target_count];
    t->s = s;
    t->index = s->target_count++;
    snprintf(t->url, sizeof t->url, "%.*s/api/v2/alerts", (int)len, base);
    char plain[1024];
    snprintf(plain, sizeof plain, "%.*s", (int)len, base);
    url_without_credentials(plain, t->name, sizeof t->name);
    uv_timer_init(&s->loop, &t->retry);
    t->retry.data = t;
    const char *posts = "hs_alertmanager_posts_total", *posts_help = "POSTs to an Alertmanager, by result";
    t->posts_ok = hs_metrics_counter_l(s->metrics, posts, posts_help, "alertmanager", t->name, "result",
                                       "success", NULL);
    t->posts_http_error = hs_metrics_counter_l(s->metrics, posts, posts_help, "alertmanager", t->name,
                                               "result", "http_error", NULL);
    t->posts_transport_error = hs_metrics_counter_l(s->metrics, posts, posts_help, "alertmanager", t->name,
                                                    "result", "transport_error", NULL);
    t->retries = hs_metrics_counter_l(s->metrics, "hs_alertmanager_retries_total",
                                      "Failed POSTs scheduled for a retry, by Alertmanager", "alertmanager",
                                      t->name, NULL);
    t->last_success = hs_metrics_gauge_l(s->metrics, "hs_alertmanager_last_success_timestamp_seconds",
                                         "When an Alertmanager last accepted a POST (Unix time)",
                                         "alertmanager", t->name, NULL);
    return HS_OK;
}

static hs_err add_targets(sink *s, hs_error *error)
{
    const char *urls = hs_config_string(s->config, "alertmanager-urls");
    for (const char *p = urls; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (add_target(s, p, len, error) != HS_OK)
            return error->code;
        p += len + (comma ? 1 : 0);
    }
    if (s->target_count == 0)
        return hs_error_set(error, HS_ERR_CONFIG, "HS_ALERTMANAGER_URLS: no Alertmanager URL given");
    return HS_OK;
}

/* A render hook: runs on the HTTP thread, so it reads only what is thread-safe. */
static void refresh_gauges(void *ctx, hs_metrics *m)
{
    sink *s = ctx;
    hs_process_metrics_refresh(m);
    hs_gauge_set(hs_metrics_gauge(m, "hs_ready", "1 when /readyz answers ready", NULL),
                 atomic_load(&s->ready) ? 1 : 0);
}

/* On the HTTP thread (hs/http.h): reads the registry (thread-safe) and the `ready` flag only. */
static void on_http(void *ctx, const char *path, hs_http_response *out)
{
    sink *s = ctx;
    if (strcmp(path, "/metrics") == 0) {
        out->content_type = HS_METRICS_CONTENT_TYPE;
        out->body = hs_metrics_render(s->metrics);
    } else if (strcmp(path, "/healthz") == 0) {
        out->body = strdup("ok\n");
    } else if (strcmp(path, "/readyz") == 0) {
        bool ready = atomic_load(&s->ready);
        const char *why =
            hs_reader_not_ready(s->reader); /* "broker unreachable", "reading the topics", ... */
        out->status = ready ? 200 : 503;
        char body[160];
        snprintf(body, sizeof body, "%s%s\n", ready ? "" : "not ready: ",
                 ready ? "ready"
                 : why ? why
                       : "rebuilding the alerts table");
        out->body = strdup(body);
    } else {
        out->status = 404;
        out->body = strdup("not found: try /metrics, /healthz or /readyz\n");
    }
}

static void on_resend(uv_timer_t *timer)
{
    sink *s = timer->data;
    mark_all_dirty(s);
    flush_all(s);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    sink *s = handle->data;
    hs_log(HS_LOG_INFO, "stopping", "{s:i}", "signal", signum);
    s->stopping = true;
    alarm(10); /* the stop must finish within 10 s; SIGALRM's default action ends the process otherwise */
    uv_stop(&s->loop);
}

static void close_handle(uv_handle_t *handle, void *arg)
{
    (void)arg;
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

static hs_err start(sink *s, hs_error *error)
{
    s->metrics = hs_metrics_new();
    s->multi = curl_multi_init();
    if (!s->metrics || !s->multi)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    s->rejected = hs_metrics_counter(s->metrics, "hs_alertmanager_records_rejected_total",
                                     "Records of hs.alerts.v1 that are not a valid Alert (skipped)", NULL);
    s->held = hs_metrics_gauge(s->metrics, "hs_alertmanager_alerts",
                               "Alerts held (the table of hs.alerts.v1)", NULL);
    s->firing =
        hs_metrics_gauge(s->metrics, "hs_alertmanager_alerts_firing", "Alerts held that are FIRING", NULL);
    hs_metrics_on_render(s->metrics, refresh_gauges, s);
    if (add_targets(s, error) != HS_OK)
        return error->code;
    if (*hs_config_string(s->config, "basic-auth-user") && *hs_config_string(s->config, "bearer-token"))
        return hs_error_set(error, HS_ERR_CONFIG,
                            "HS_BASIC_AUTH_USER and HS_BEARER_TOKEN: both set; Alertmanager takes one "
                            "Authorization header, set either");
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETDATA, s);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERDATA, s);
    uv_timer_init(&s->loop, &s->curl_timer);
    s->curl_timer.data = s;
    /* Before the HTTP thread, which reads s->reader; a broker not up yet delays the rebuild, not this. */
    static const char *const topics[] = {HS_TOPIC_ALERTS};
    if (hs_reader_start(&s->loop, hs_config_string(s->config, "bootstrap-servers"), "hs-alertmanager-sink",
                        topics, 1, &reader_callbacks, s, &s->reader, error) != HS_OK)
        return error->code;
    if (hs_http_start(hs_config_string(s->config, "http-addr"), NULL, on_http, s, &s->http, error) != HS_OK)
        return error->code;
    hs_log(HS_LOG_INFO, "http endpoint listening", "{s:i}", "port", hs_http_port(s->http));
    uv_timer_init(&s->loop, &s->resend);
    s->resend.data = s;
    uv_timer_start(&s->resend, on_resend, (uint64_t)s->resend_ms, (uint64_t)s->resend_ms);
    uv_signal_init(&s->loop, &s->sigterm);
    uv_signal_init(&s->loop, &s->sigint);
    s->sigterm.data = s->sigint.data = s;
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    return HS_OK;
}

static void stop(sink *s)
{
    s->stopping = true;
    for (int i = 0; i < s->target_count; i++) {
        target *t = &s->targets[i];
        if (t->easy) {
            curl_multi_remove_handle(s->multi, t->easy);
            curl_easy_cleanup(t->easy);
        }
        curl_slist_free_all(t->headers);
        free(t->body);
        free(t->resolved);
    }
    /* Before the walk: libcurl hands back its sockets (CURL_POLL_REMOVE), whose watches close themselves. */
    curl_multi_cleanup(s->multi);
    s->multi = NULL;
    if (s->http)
        hs_http_stop(s->http);
    hs_reader_close(s->reader);
    uv_walk(&s->loop, close_handle, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT); /* an attempt to reach the broker in flight finishes first (<= 5 s) */
    hs_reader_free(s->reader);
    hs_table *tables[] = {&s->alerts, &s->retired};
    for (size_t k = 0; k < 2; k++) {
        size_t cursor = 0;
        const hs_table_entry *e;
        while ((e = hs_table_next(tables[k], &cursor))) {
            sink_alert *a = entry_alert(e);
            alert_free(a);
        }
        hs_table_free(tables[k]);
    }
    hs_metrics_free(s->metrics);
}

int sink_run(const hs_config *config)
{
    static sink s; /* static: the loop's handles point into it */
    s = (sink){.config = config};
    s.resend_ms = hs_config_duration_ms(config, "resend-interval");
    s.retry_max_ms = hs_config_duration_ms(config, "retry-max");
    if (s.retry_max_ms > s.resend_ms) /* a recovered Alertmanager hears from us within one interval */
        s.retry_max_ms = s.resend_ms;
    s.resolved_sends = (int)hs_config_int(config, "resolved-sends");
    hs_table_init(&s.alerts);
    hs_table_init(&s.retired);
    uv_loop_init(&s.loop);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    hs_error error = {0};
    hs_err err = start(&s, &error);
    int exit_code = HS_EXIT_OK;
    if (err != HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot start", "{s:s}", "error", error.message);
        exit_code = err == HS_ERR_CONFIG ? HS_EXIT_CONFIG : HS_EXIT_FATAL;
    } else {
        hs_log(HS_LOG_INFO, "running", "{s:i, s:I}", "alertmanagers", s.target_count, "resend_interval_ms",
               (json_int_t)s.resend_ms);
        uv_run(&s.loop, UV_RUN_DEFAULT);
        exit_code = s.exit_code;
    }
    stop(&s);
    uv_loop_close(&s.loop);
    curl_global_cleanup();
    hs_log(HS_LOG_INFO, "stopped", "{s:i}", "exit", exit_code);
    return exit_code;
}
