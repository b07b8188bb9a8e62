/* hs_reader: whole topics read into a process that keeps them as tables and delivers them elsewhere (the
 * exporter's derived tables; the alertmanager sink's alerts). A plain Kafka consumer — no consumer group
 * offsets, so the tables are rebuilt on every start — assigned every partition of each topic from its
 * beginning, read_committed, its queue bridged into the caller's libuv loop (rd_kafka_queue_io_event_enable +
 * uv_poll), so every callback runs on the loop. The partitions are learnt off the loop, on libuv's thread
 * pool, with a back-off that doubles up to 30 s: a broker that is not up yet, or topics not created yet,
 * delay the rebuild — hs_reader_not_ready() says which, for /readyz — never the start.
 */
#ifndef HS_READER_H
#define HS_READER_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "hs/config.h"
#include "hs/err.h"
#include "hs/http.h"
#include "hs/metrics.h"

typedef struct hs_reader hs_reader;

/* What the reader calls, on the loop; `ctx` is hs_reader_start's. Only `record` is required. */
typedef struct hs_reader_callbacks {
    /* A record (a tombstone has a NULL payload). The message is the reader's: valid during the call. */
    void (*record)(void *ctx, const rd_kafka_message_t *msg);
    /* Around each batch of up to 2000 records read in one wake-up (e.g. to hold the metrics registry). */
    void (*batch_begin)(void *ctx);
    void (*batch_end)(void *ctx);
    /* Once, when every partition of every topic has been read to its end (the end at that time). Called
     * inside a batch. */
    void (*caught_up)(void *ctx);
    /* An error after the start that the reader cannot ride out (out of memory assigning partitions); the
     * caller stops. */
    void (*fatal)(void *ctx, const hs_error *error);
} hs_reader_callbacks;

/* Creates the consumer for `bootstrap` (HS_KAFKA_<PROPERTY> applies, hs_kafka_conf_new) named `client_id`,
 * and starts learning the partitions of the `count` topics. HS_ERR_CONFIG for a bad Kafka property,
 * HS_ERR_NOMEM; a broker that does not answer is not an error. `topics`, `callbacks` and `ctx` must outlive
 * the reader. */
hs_err hs_reader_start(uv_loop_t *loop, const char *bootstrap, const char *client_id,
                       const char *const *topics, size_t count, const hs_reader_callbacks *callbacks,
                       void *ctx, hs_reader **out, hs_error *error);

/* Why the reader has not caught up yet, for /readyz: "connecting to Kafka", "broker unreachable", "<topic>
 * does not exist (hsctl topics create)", "reading the topics"; NULL once caught up. A static string; safe
 * from any thread. */
const char *hs_reader_not_ready(const hs_reader *r);

/* Stops reading: closes the reader's handles on the loop. The caller then runs the loop until the handles
 * are closed (an attempt to reach the broker in flight finishes first, within 5 s) and calls
 * hs_reader_free. NULL is allowed. */
void hs_reader_close(hs_reader *r);

/* Closes the consumer and frees the reader, after hs_reader_close and the loop's run. NULL is allowed. */
void hs_reader_free(hs_reader *r);

/* For a process built around a reader and its loop (the exporter, the alertmanager sink). */

/* The options every such process takes, before its own: bootstrap-servers and http-addr ({NULL}-terminated).
 */
extern const hs_option hs_reader_options[];

typedef struct hs_reader_program {
    const char *program;                 /* the executable, which prefixes an error on stderr */
    const char *service;                 /* the log's "service" */
    const char *summary;                 /* --help's description */
    const hs_option *options;            /* its own options ({NULL}-terminated) */
    int (*run)(const hs_config *config); /* the work, after the configuration is logged: the exit status */
} hs_reader_program;

/* Its main(): tunes the allocator, names the log's service, loads the configuration from hs_reader_options,
 * `options`, argv and the environment (--help and --version answer and return HS_EXIT_OK; a bad argument
 * or setting goes to stderr and returns HS_EXIT_USAGE or HS_EXIT_CONFIG), logs it and runs `run`. */
int hs_reader_main(const hs_reader_program *p, int argc, char **argv);

/* Stops `loop` on SIGTERM or SIGINT (`handles`, which must outlive the loop's run): logs "stopping", sets
 * *stopping and arms a 10 s alarm, so that a stop that does not finish in time ends the process (SIGALRM's
 * default action). */
void hs_reader_stop_on_signals(uv_loop_t *loop, uv_signal_t handles[2], bool *stopping);

/* Its probes, for its HTTP handler (hs_http_serve_probes): /readyz answers ready when `ready`, else the
 * reader's reason (hs_reader_not_ready) or, once the reader has caught up, `rebuilding`. Safe from the HTTP
 * thread. */
void hs_reader_serve_probes(const hs_reader *r, bool ready, const char *rebuilding, hs_metrics *metrics,
                            const char *path, hs_http_response *out);

/* For its metrics' render hook: the process metrics (hs_process_metrics_refresh) and hs_ready, 1 when
 * `ready`. */
void hs_reader_refresh_metrics(hs_metrics *m, bool ready);

/* The end of such a process: closes the reader and every other handle of `loop`, runs the loop until they
 * are closed (an attempt to reach the broker in flight finishes first, within 5 s) and frees the reader.
 * NULL `r` is allowed. */
void hs_reader_shut_down(hs_reader *r, uv_loop_t *loop);

#endif
