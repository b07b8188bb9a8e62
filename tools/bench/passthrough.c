/* passthrough: the benchmark's baseline (a) — the cheapest consume -> produce loop librdkafka allows, so
 * that the runtime's exactly-once loop (b) can be compared with the floor of what any Kafka loop costs on
 * the same machine and broker. One consumer (its own group, read_committed, offsets stored as consumed and
 * committed asynchronously every --commit-interval) and one idempotent producer, no transactions; each
 * record is produced to the output topic with its key, value and headers, to the same partition number.
 * No decoding, no state: this is a floor, not a correct loop (a crash may skip or repeat records).
 *
 *   usage: passthrough --bootstrap B --input TOPIC --output TOPIC [--group G] [--records N]
 *                      [--warmup-records W] [--commit-interval MS] [--from-end]
 *
 * It creates the output topic (partitions as the input's) if missing. With --records N it passes W + N
 * records, the first W unmeasured (connections, metadata, first batches), flushes, commits and prints one
 * line of `key=value` results about the N (see print_result); with --records 0 it runs until SIGINT/SIGTERM.
 * Configured as the runtime's clients are (HS_KAFKA_* from the environment, then its own settings), and on
 * the same malloc (hs/alloc.h), so that (a) stays the floor.
 * Run through tools/bench/run, which describes the figures.
 */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "benchkit.h"
#include "hs_cli.h"
#include "hs/alloc.h"
#include "hs/kafka.h"

#define OP_TIMEOUT_MS 30000

static volatile sig_atomic_t stop_requested;

static void on_signal(int signum)
{
    (void)signum;
    stop_requested = 1;
}

/* Prints the assignment, so that a caller can tell when the loop is in place; otherwise the default. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *partitions,
                         void *opaque)
{
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        fprintf(stderr, "passthrough: assigned %d partitions\n", partitions->cnt);
        rd_kafka_assign(rk, partitions);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

/* The partition count of `topic`, or -1 when it does not exist. */
static int partition_count(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int count = -1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, OP_TIMEOUT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1 && !md->topics[0].err)
        count = md->topics[0].partition_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return count;
}

/* Creates `output` with the partition count of `input` unless it exists; false on failure. */
static bool ensure_output(rd_kafka_t *rk, const char *input, const char *output)
{
    int partitions = partition_count(rk, input);
    if (partitions <= 0) {
        fprintf(stderr, "passthrough: input topic %s not found\n", input);
        return false;
    }
    char errstr[512];
    rd_kafka_NewTopic_t *topic = rd_kafka_NewTopic_new(output, partitions, -1, errstr, sizeof errstr);
    if (!topic) {
        fprintf(stderr, "passthrough: %s\n", errstr);
        return false;
    }
    rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &topic, 1, NULL, queue);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(queue, OP_TIMEOUT_MS + 5000);
    bool ok = false;
    if (ev) {
        size_t n = 0;
        const rd_kafka_topic_result_t **results =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
        if (!err && n == 1)
            err = rd_kafka_topic_result_error(results[0]);
        ok = !err || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS;
        if (!ok)
            fprintf(stderr, "passthrough: cannot create %s: %s\n", output, rd_kafka_err2str(err));
        rd_kafka_event_destroy(ev);
    } else {
        fprintf(stderr, "passthrough: creating %s timed out\n", output);
    }
    rd_kafka_queue_destroy(queue);
    rd_kafka_NewTopic_destroy(topic);
    return ok;
}

/* CPU seconds (user + system, all threads) this process has used. */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* The result line. rate: all N records over first consumed .. last output acknowledged (the loop's
 * throughput, everything durable); consume_rate: records 1..N over first .. N-th consumed (the producer's
 * queue lets the consumer run ahead); cpu_s: this process, first record to the end. */
static void print_result(long records, double first_s, double last_s, double flushed_s, double cpu_used_s)
{
    double busy = last_s - first_s, total = flushed_s - first_s;
    printf(
        "passthrough: records=%ld seconds=%.3f rate=%.0f consume_rate=%.0f cpu_s=%.2f delivery_errors=%ld\n",
        records, total, total > 0 ? (double)records / total : 0.0,
        records > 1 && busy > 0 ? (double)(records - 1) / busy : 0.0, cpu_used_s, bench_delivery_errors);
    fflush(stdout);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: passthrough --bootstrap B --input TOPIC --output TOPIC [--group G] [--records N]\n"
                 "                   [--warmup-records W] [--commit-interval MS] [--from-end]\n"
                 "  --records N          stop after W + N records and print the rate of the last N\n"
                 "                       (0: run until SIGTERM)\n"
                 "  --warmup-records W   records passed before the clock starts (default 0)\n"
                 "  --commit-interval MS commit consumed offsets asynchronously this often (default 100)\n"
                 "  --from-end           a group without committed offsets starts at the end, not the\n"
                 "                       beginning\n");
}

int main(int argc, char **argv)
{
    bench_prog = "passthrough";
    hs_alloc_tune(); /* as the runtime does */
    const char *bootstrap = "127.0.0.1:9092", *input = NULL, *output = NULL, *group = "bench-passthrough";
    long records = 0, warmup = 0, commit_interval_ms = 100;
    bool from_end = false;
    const hs_cli_option options[] = {
        {"bootstrap", 0, HS_CLI_TEXT, &bootstrap},
        {"input", 0, HS_CLI_TEXT, &input},
        {"output", 0, HS_CLI_TEXT, &output},
        {"group", 0, HS_CLI_TEXT, &group},
        {"records", 0, HS_CLI_LONG, &records},
        {"commit-interval", 0, HS_CLI_LONG, &commit_interval_ms},
        {"from-end", 0, HS_CLI_FLAG, &from_end},
        {"warmup-records", 0, HS_CLI_LONG, &warmup},
        {0},
    };
    hs_cli_parse("passthrough", argc, argv, options, false, usage);
    if (!input || !output || records < 0 || warmup < 0 || commit_interval_ms <= 0 || optind != argc) {
        usage(stderr);
        return 2;
    }

    /* The producer: idempotent, linger and compression as the runtime's producer (5 ms, lz4), no
     * transactions. */
    const char *producer_props[] = {
        "enable.idempotence", "true", "linger.ms", "5", "compression.type", "lz4", "client.id",
        "bench-passthrough",  NULL};
    rd_kafka_t *producer = bench_client_new(RD_KAFKA_PRODUCER, bootstrap, producer_props, on_rebalance);
    if (!producer || !ensure_output(producer, input, output))
        return 1;
    const char *consumer_props[] = {"group.id",
                                    group,
                                    "isolation.level",
                                    "read_committed",
                                    "enable.auto.commit",
                                    "false",
                                    "auto.offset.reset",
                                    from_end ? "latest" : "earliest",
                                    "client.id",
                                    "bench-passthrough",
                                    NULL};
    rd_kafka_t *consumer = bench_client_new(RD_KAFKA_CONSUMER, bootstrap, consumer_props, on_rebalance);
    if (!consumer)
        return 1;
    rd_kafka_poll_set_consumer(consumer);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, input, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        fprintf(stderr, "passthrough: cannot subscribe to %s: %s\n", input, rd_kafka_err2str(err));
        return 1;
    }
    rd_kafka_topic_t *out = rd_kafka_topic_new(producer, output, NULL);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    fprintf(stderr, "passthrough: %s -> %s, group %s, %s\n", input, output, group, hs_alloc_name());

    long done = 0;
    double first_s = 0, last_s = 0, first_cpu_s = 0,
           next_commit_s = bench_now_s() + (double)commit_interval_ms / 1000.0;
    while (!stop_requested && (records == 0 || done < warmup + records)) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(consumer, 100);
        rd_kafka_poll(producer, 0); /* serve delivery reports */
        if (msg && msg->err) {
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "passthrough: consumer: %s\n", rd_kafka_message_errstr(msg));
        } else if (msg) {
            if (done == warmup) {
                first_s = bench_now_s();
                first_cpu_s = cpu_s();
            }
            rd_kafka_headers_t *headers = NULL;
            rd_kafka_message_detach_headers(msg, &headers); /* ours now; the producer takes them over */
            while ((err = rd_kafka_producev(
                        producer, RD_KAFKA_V_RKT(out), RD_KAFKA_V_PARTITION(msg->partition),
                        RD_KAFKA_V_KEY(msg->key, msg->key_len), RD_KAFKA_V_VALUE(msg->payload, msg->len),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
                        RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(producer, 10);
            if (err) {
                if (headers)
                    rd_kafka_headers_destroy(headers);
                fprintf(stderr, "passthrough: produce: %s\n", rd_kafka_err2str(err));
                bench_delivery_errors++;
            }
            last_s = bench_now_s();
            done++;
        }
        if (msg)
            rd_kafka_message_destroy(msg);
        if (bench_now_s() >= next_commit_s) {
            rd_kafka_commit(consumer, NULL, 1); /* asynchronous; consumed offsets, stored automatically */
            next_commit_s = bench_now_s() + (double)commit_interval_ms / 1000.0;
        }
    }
    rd_kafka_flush(producer, OP_TIMEOUT_MS);
    double flushed_s = bench_now_s();
    rd_kafka_commit(consumer, NULL, 0); /* synchronous: a later run of the group resumes here */
    print_result(done > warmup ? done - warmup : 0, first_s, last_s, flushed_s, cpu_s() - first_cpu_s);

    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    rd_kafka_topic_destroy(out);
    rd_kafka_destroy(producer);
    return bench_delivery_errors ? 1 : 0;
}
