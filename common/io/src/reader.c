/* hs_reader (hs/reader.h): topics read whole into a libuv loop. The metadata of the topics is asked for on
 * libuv's thread pool, one attempt at a time, each waiting at most METADATA_WAIT; the loop meanwhile serves
 * nothing of the reader's but stays free for the caller's timers and signals. Once every topic has
 * partitions, all of them are assigned from the beginning and the consumer's queue wakes the loop through a
 * pipe.
 */
#include "hs/reader.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hs/alloc.h"
#include "hs/kafka.h"
#include "hs/log.h"
#include "hs/process.h"
#include "hs/runtime.h"

#define POLL_BATCH    2000  /* records per wake-up before the loop gets a turn */
#define METADATA_WAIT 5000  /* ms one attempt to learn the partitions may take */
#define RETRY_FIRST   250   /* ms before the second attempt; doubling */
#define RETRY_MAX     30000 /* ms: the cap of the back-off */
#define TOPICS_MAX    16
#define NOT_READY_MAX 200

typedef struct topic_state {
    const char *name;
    int partitions;
    bool *eof; /* per partition: read to its end once */
} topic_state;

struct hs_reader {
    uv_loop_t *loop;
    const hs_reader_callbacks *cb;
    void *ctx;
    rd_kafka_t *consumer;
    rd_kafka_queue_t *queue;
    int fds[2];
    uv_poll_t poll;
    uv_timer_t retry;
    uv_work_t work;
    bool polling, work_running, closing, caught_up;
    topic_state topics[TOPICS_MAX];
    size_t topic_count;
    /* One attempt's outcome, written on the pool thread and read on the loop after it (uv_queue_work orders
     * them). */
    int found[TOPICS_MAX];
    hs_error attempt_error;
    int attempt_missing; /* the index of a topic a broker said does not exist, or -1 */
    int attempts;
    int64_t backoff_ms, started_ms, next_log_ms;
    /* hs_reader_not_ready's answer: a static string, or one of `missing`, which never change once written. */
    _Atomic(const char *) not_ready;
    char missing[TOPICS_MAX][NOT_READY_MAX]; /* "<topic> does not exist (hsctl topics create)" */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *hs_reader_not_ready(const hs_reader *r)
{
    return atomic_load(&r->not_ready);
}

static void poke(hs_reader *r)
{
    ssize_t n = write(r->fds[1], "1", 1);
    (void)n; /* a full pipe already means "awake" */
}

/* --- reading ------------------------------------------------------------------------------------------ */

static void on_eof(hs_reader *r, const rd_kafka_message_t *msg)
{
    if (r->caught_up)
        return;
    const char *name = rd_kafka_topic_name(msg->rkt);
    for (size_t t = 0; t < r->topic_count; t++)
        if (strcmp(r->topics[t].name, name) == 0 && msg->partition >= 0 &&
            msg->partition < r->topics[t].partitions)
            r->topics[t].eof[msg->partition] = true;
    for (size_t t = 0; t < r->topic_count; t++)
        for (int p = 0; p < r->topics[t].partitions; p++)
            if (!r->topics[t].eof[p])
                return;
    r->caught_up = true;
    atomic_store(&r->not_ready, NULL);
    if (r->cb->caught_up)
        r->cb->caught_up(r->ctx);
}

static void on_readable(uv_poll_t *poll, int status, int events)
{
    (void)status;
    (void)events;
    hs_reader *r = poll->data;
    char buf[64];
    while (read(r->fds[0], buf, sizeof buf) > 0)
        ;
    if (r->cb->batch_begin)
        r->cb->batch_begin(r->ctx);
    for (int n = 0; n < POLL_BATCH && !r->closing; n++) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(r->consumer, 0);
        if (!msg)
            break;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            on_eof(r, msg);
        else if (msg->err)
            hs_log(HS_LOG_WARN, "consumer error", "{s:s}", "error", rd_kafka_message_errstr(msg));
        else
            r->cb->record(r->ctx, msg);
        rd_kafka_message_destroy(msg);
        if (n == POLL_BATCH - 1)
            poke(r); /* more may be queued: come back after the loop has had its turn */
    }
    if (r->cb->batch_end)
        r->cb->batch_end(r->ctx);
}

/* Every partition of every topic from the beginning, now that their numbers are known. */
static hs_err assign_all(hs_reader *r, hs_error *error)
{
    rd_kafka_topic_partition_list_t *all = rd_kafka_topic_partition_list_new(64);
    if (!all)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    for (size_t t = 0; t < r->topic_count; t++) {
        topic_state *ts = &r->topics[t];
        ts->partitions = r->found[t];
        ts->eof = calloc((size_t)ts->partitions, sizeof *ts->eof);
        if (!ts->eof) {
            rd_kafka_topic_partition_list_destroy(all);
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
        }
        for (int p = 0; p < ts->partitions; p++)
            rd_kafka_topic_partition_list_add(all, ts->name, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(r->consumer, all);
    rd_kafka_topic_partition_list_destroy(all);
    if (pipe(r->fds) != 0)
        return hs_error_set(error, HS_ERR_IO, "pipe: %s", strerror(errno));
    for (int k = 0; k < 2; k++) {
        fcntl(r->fds[k], F_SETFL, fcntl(r->fds[k], F_GETFL) | O_NONBLOCK);
        fcntl(r->fds[k], F_SETFD, FD_CLOEXEC);
    }
    r->queue = rd_kafka_queue_get_consumer(r->consumer);
    rd_kafka_queue_io_event_enable(r->queue, r->fds[1], "1", 1);
    uv_poll_init(r->loop, &r->poll, r->fds[0]);
    r->poll.data = r;
    r->polling = true;
    uv_poll_start(&r->poll, UV_READABLE, on_readable);
    atomic_store(&r->not_ready, "reading the topics");
    poke(r); /* serve whatever is already queued */
    return HS_OK;
}

/* --- learning the partitions, off the loop ----------------------------------------------------------- */

/* On the pool: the partitions of every topic, or the first error. */
static void metadata_work(uv_work_t *req)
{
    hs_reader *r = req->data;
    r->attempt_error = (hs_error){0};
    r->attempt_missing = -1;
    for (size_t t = 0; t < r->topic_count; t++) {
        r->found[t] = 0;
        rd_kafka_topic_t *topic = rd_kafka_topic_new(r->consumer, r->topics[t].name, NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(r->consumer, 0, topic, &md, METADATA_WAIT);
        if (err) {
            hs_error_set(&r->attempt_error, HS_ERR_KAFKA, "cannot read the metadata of %s: %s",
                         r->topics[t].name, rd_kafka_err2str(err));
        } else if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
            hs_error_set(&r->attempt_error, HS_ERR_KAFKA, "%s: %s (hsctl topics create)", r->topics[t].name,
                         md->topic_cnt == 1 && md->topics[0].err ? rd_kafka_err2str(md->topics[0].err)
                                                                 : "no partitions");
            r->attempt_missing = (int)t;
        } else {
            r->found[t] = md->topics[0].partition_cnt;
        }
        if (md)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(topic);
        if (r->found[t] == 0)
            return;
    }
}

static void start_attempt(hs_reader *r);

static void on_retry(uv_timer_t *timer)
{
    start_attempt(timer->data);
}

/* On the loop, after an attempt: assign, or try again after the back-off. */
static void metadata_done(uv_work_t *req, int status)
{
    hs_reader *r = req->data;
    r->work_running = false;
    if (r->closing || status != 0)
        return;
    r->attempts++;
    if (r->attempt_error.code == HS_OK) {
        hs_error error = {0};
        if (assign_all(r, &error) != HS_OK) {
            hs_log(HS_LOG_ERROR, "cannot read the topics", "{s:s}", "error", error.message);
            if (r->cb->fatal)
                r->cb->fatal(r->ctx, &error);
            return;
        }
        if (r->attempts > 1)
            hs_log(HS_LOG_INFO, "broker reachable", "{s:i, s:I}", "attempts", r->attempts, "waited_ms",
                   (json_int_t)(now_ms() - r->started_ms));
        return;
    }
    bool missing = r->attempt_missing >= 0;
    atomic_store(&r->not_ready, missing ? r->missing[r->attempt_missing] : "broker unreachable");
    int64_t waited = now_ms() - r->started_ms;
    if (waited >= r->next_log_ms) { /* at 1, 2, 4, ... 32 s, then every minute */
        hs_log(HS_LOG_WARN, missing ? "topic missing, still trying" : "broker unreachable, still trying",
               "{s:I, s:i, s:s}", "waited_ms", (json_int_t)waited, "attempts", r->attempts, "error",
               r->attempt_error.message);
        r->next_log_ms = r->next_log_ms < 30000 ? r->next_log_ms * 2 : waited + 60000;
    }
    uv_timer_start(&r->retry, on_retry, (uint64_t)r->backoff_ms, 0);
    r->backoff_ms = r->backoff_ms * 2 < RETRY_MAX ? r->backoff_ms * 2 : RETRY_MAX;
}

static void start_attempt(hs_reader *r)
{
    if (r->closing || r->work_running)
        return;
    r->work.data = r;
    if (uv_queue_work(r->loop, &r->work, metadata_work, metadata_done) == 0)
        r->work_running = true;
}

/* --- life cycle --------------------------------------------------------------------------------------- */

hs_err hs_reader_start(uv_loop_t *loop, const char *bootstrap, const char *client_id,
                       const char *const *topics, size_t count, const hs_reader_callbacks *callbacks,
                       void *ctx, hs_reader **out, hs_error *error)
{
    *out = NULL;
    if (count == 0 || count > TOPICS_MAX || !callbacks || !callbacks->record)
        return hs_error_set(error, HS_ERR_INTERNAL, "hs_reader_start: 1..%d topics and a record callback",
                            TOPICS_MAX);
    hs_reader *r = calloc(1, sizeof *r);
    if (!r)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    *r = (hs_reader){.loop = loop, .cb = callbacks, .ctx = ctx, .fds = {-1, -1}, .topic_count = count};
    for (size_t t = 0; t < count; t++) {
        r->topics[t].name = topics[t];
        snprintf(r->missing[t], sizeof r->missing[t], "%s does not exist (hsctl topics create)", topics[t]);
    }
    rd_kafka_conf_t *conf = hs_kafka_conf_new(bootstrap, error);
    if (!conf) {
        free(r);
        return error->code;
    }
    /* No group offsets are ever committed: the group id only names the client to the brokers. */
    const char *props[] = {
        "group.id", client_id,         "enable.auto.commit", "false",     "enable.partition.eof",
        "true",     "isolation.level", "read_committed",     "client.id", client_id,
        NULL};
    for (const char *const *p = props; *p; p += 2)
        if (hs_kafka_conf_set(conf, p[0], p[1], error) != HS_OK) {
            rd_kafka_conf_destroy(conf);
            free(r);
            return error->code;
        }
    char errstr[512];
    r->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!r->consumer) {
        rd_kafka_conf_destroy(conf);
        free(r);
        return hs_error_set(error, HS_ERR_CONFIG, "%s", errstr);
    }
    rd_kafka_poll_set_consumer(r->consumer);
    atomic_store(&r->not_ready, "connecting to Kafka");
    uv_timer_init(loop, &r->retry);
    r->retry.data = r;
    r->backoff_ms = RETRY_FIRST;
    r->started_ms = now_ms();
    r->next_log_ms = 1000;
    start_attempt(r);
    *out = r;
    return HS_OK;
}

void hs_reader_close(hs_reader *r)
{
    if (!r || r->closing)
        return;
    r->closing = true;
    uv_close((uv_handle_t *)&r->retry, NULL);
    if (r->polling)
        uv_close((uv_handle_t *)&r->poll, NULL);
}

void hs_reader_free(hs_reader *r)
{
    if (!r)
        return;
    if (r->queue)
        rd_kafka_queue_destroy(r->queue);
    if (r->consumer) {
        rd_kafka_consumer_close(r->consumer);
        rd_kafka_destroy(r->consumer);
    }
    for (int k = 0; k < 2; k++)
        if (r->fds[k] >= 0)
            close(r->fds[k]);
    for (size_t t = 0; t < r->topic_count; t++)
        free(r->topics[t].eof);
    free(r);
}

static void on_stop_signal(uv_signal_t *handle, int signum)
{
    bool *stopping = handle->data;
    hs_log(HS_LOG_INFO, "stopping", "{s:i}", "signal", signum);
    *stopping = true;
    alarm(10); /* the stop must finish within 10 s; SIGALRM's default action ends the process otherwise */
    uv_stop(handle->loop);
}

void hs_reader_stop_on_signals(uv_loop_t *loop, uv_signal_t handles[2], bool *stopping)
{
    static const int signals[] = {SIGTERM, SIGINT};
    for (size_t i = 0; i < 2; i++) {
        uv_signal_init(loop, &handles[i]);
        handles[i].data = stopping;
        uv_signal_start(&handles[i], on_stop_signal, signals[i]);
    }
}

static void close_handle(uv_handle_t *handle, void *arg)
{
    (void)arg;
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

void hs_reader_shut_down(hs_reader *r, uv_loop_t *loop)
{
    hs_reader_close(r);
    uv_walk(loop, close_handle, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    hs_reader_free(r);
}

void hs_reader_serve_probes(const hs_reader *r, bool ready, const char *rebuilding, hs_metrics *metrics,
                            const char *path, hs_http_response *out)
{
    const char *why = hs_reader_not_ready(r); /* "broker unreachable", "reading the topics", ... */
    hs_http_serve_probes(path, metrics, ready ? NULL : why ? why : rebuilding, out);
}

void hs_reader_refresh_metrics(hs_metrics *m, bool ready)
{
    hs_process_metrics_refresh(m);
    hs_gauge_set(hs_metrics_gauge(m, "hs_ready", "1 when /readyz answers ready", NULL), ready ? 1 : 0);
}

const hs_option hs_reader_options[] = {
    {.name = "bootstrap-servers",
     .type = HS_OPTION_STRING,
     .default_value = HS_DEFAULT_BOOTSTRAP,
     .help = "Kafka bootstrap servers"},
    {.name = "http-addr",
     .type = HS_OPTION_ADDRESS,
     .default_value = "127.0.0.1:9464",
     .help = "address of /metrics, /healthz and /readyz (port 0: any free port)"},
    {.name = NULL},
};

int hs_reader_main(const hs_reader_program *p, int argc, char **argv)
{
    hs_alloc_tune();
    hs_log_set_service(p->service);
    const hs_option *sets[] = {hs_reader_options, p->options, NULL};
    bool help = false;
    hs_error error = {0};
    hs_config *config = NULL;
    extern char **environ;
    hs_err err = hs_config_load(&config, argv[0], p->summary, HS_VERSION, sets, argc, argv, environ, stdout,
                                &help, &error);
    if (help)
        return HS_EXIT_OK;
    if (err != HS_OK) {
        fprintf(stderr, "%s: %s\n", p->program, error.message);
        return err == HS_ERR_USAGE ? HS_EXIT_USAGE : HS_EXIT_CONFIG;
    }
    hs_config_log(config);
    int exit_code = p->run(config);
    hs_config_free(config);
    return exit_code;
}
