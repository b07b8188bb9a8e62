/* load: the benchmark's load generator and latency probe. It publishes valid IndicatorObservation facts to
 * hs.indicators.v1 through hs_kafka_produce() (registry key, murmur2 partition of the indicator, CloudEvents
 * headers), as fast as possible or at a fixed rate, and in latency mode reads an output topic with
 * isolation.level=read_committed and matches every output to the fact that caused it.
 *
 * Fact j of a run is indicator "bench.<run>.g<g>" (g = j mod M, M = --indicators), scope hospital "h<k>"
 * (k = j div M), period 2023Q2: every fact is a new key, so the count service emits one FactCount per fact,
 * and the k-th fact of group g is the one whose FactCount says k + 1. A pass-through output is a copy of
 * the fact, so its indicator and scope name it directly. Latency = the moment the output is returned to
 * this read_committed consumer - the moment the fact was handed to the producer (its CreateTime), both on
 * this process's monotonic clock.
 *
 *   usage: load --bootstrap B --run ID [--records N] [--indicators M] [--rate R]
 *               [--latency TOPIC --duration S [--warmup S] [--wait S]]
 *
 * Prints one line of `key=value` results. Run through tools/bench/run, which describes the figures.
 */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "healthsignals/v1/diagnostics.pb-c.h"
#include "healthsignals/v1/indicator.pb-c.h"
#include "benchkit.h"
#include "hs_cli.h"
#include "hs/kafka.h"
#include "hs/topic.h"

#define OP_TIMEOUT_MS 30000

typedef struct options {
    const char *bootstrap, *run, *latency_topic;
    long records, indicators;
    double rate, duration_s, warmup_s, wait_s;
} options;

/* What the latency probe knows about the facts of this run; arrays indexed by fact number. */
typedef struct probe {
    rd_kafka_t *consumer;
    bool copies;       /* outputs are copies of the facts (pass-through), not FactCounts */
    char prefix[96];   /* "bench.<run>.g" */
    uint64_t *sent_ns; /* when fact j was handed to the producer; 0 = not sent yet */
    uint32_t *latency_us;
    bool *seen;
    long received, duplicates, foreign;
} probe;

/* Produces fact `j`; retries while the producer's queue is full. */
static bool produce_fact(rd_kafka_t *producer, const hs_topic *topic, const options *o, long j)
{
    char indicator[128], code[32];
    snprintf(indicator, sizeof indicator, "bench.%s.g%ld", o->run, j % o->indicators);
    long k = j / o->indicators; /* the k-th fact of its group */
    snprintf(code, sizeof code, "h%ld", k);
    Healthsignals__V1__Scope scope = HEALTHSIGNALS__V1__SCOPE__INIT;
    scope.kind = HEALTHSIGNALS__V1__SCOPE_KIND__HOSPITAL;
    scope.code = code;
    Healthsignals__V1__IndicatorObservation obs = HEALTHSIGNALS__V1__INDICATOR_OBSERVATION__INIT;
    obs.indicator = indicator;
    obs.scope = &scope;
    obs.period = "2023Q2";
    obs.value = (double)k;
    obs.unit = HEALTHSIGNALS__V1__UNIT__COUNT;
    obs.source = "tools/bench/load";
    return bench_produce(producer, topic, &obs.base, "/healthsignals/bench-load");
}

/* Publishes one fact of another run ("<run>-warm") and waits for its delivery, so that the producer has its
 * idempotent producer id, metadata and connections before the clock starts: otherwise the first facts of a
 * paced run wait in the producer's queue and their latency is the client's start-up, not the loop's. */
static bool warm_up(rd_kafka_t *producer, const hs_topic *topic, const options *o)
{
    char run[64];
    snprintf(run, sizeof run, "%s-warm", o->run);
    options warm = *o;
    warm.run = run;
    if (!produce_fact(producer, topic, &warm, 0))
        return false;
    if (rd_kafka_flush(producer, OP_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR || bench_delivery_errors) {
        fprintf(stderr, "load: the warm-up fact was not delivered\n");
        return false;
    }
    return true;
}

/* --- the latency probe ------------------------------------------------------------------------------------
 */

/* Assigns every partition of the output topic at its current end, so only outputs from now on are read. */
static bool probe_start(probe *p, const options *o)
{
    char group[64];
    snprintf(group, sizeof group, "bench-load-probe-%s", o->run);
    p->consumer = bench_committed_reader(o->bootstrap, group, "bench-load-probe");
    if (!p->consumer)
        return false;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(p->consumer, o->latency_topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(p->consumer, 0, rkt, &md, OP_TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    if (err || md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt <= 0) {
        fprintf(stderr, "load: output topic %s not found\n", o->latency_topic);
        if (md)
            rd_kafka_metadata_destroy(md);
        return false;
    }
    int partitions = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_partition_list_t *assignment = rd_kafka_topic_partition_list_new(partitions);
    for (int32_t part = 0; part < partitions; part++) {
        int64_t low = 0, high = 0;
        err =
            rd_kafka_query_watermark_offsets(p->consumer, o->latency_topic, part, &low, &high, OP_TIMEOUT_MS);
        if (err) {
            fprintf(stderr, "load: offsets of %s/%d: %s\n", o->latency_topic, (int)part,
                    rd_kafka_err2str(err));
            rd_kafka_topic_partition_list_destroy(assignment);
            return false;
        }
        rd_kafka_topic_partition_list_add(assignment, o->latency_topic, part)->offset = high;
    }
    err = rd_kafka_assign(p->consumer, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);
    if (err) {
        fprintf(stderr, "load: assign: %s\n", rd_kafka_err2str(err));
        return false;
    }
    p->copies = strcmp(o->latency_topic, HS_TOPIC_FACT_COUNTS) != 0;
    snprintf(p->prefix, sizeof p->prefix, "bench.%s.g", o->run);
    p->sent_ns = calloc((size_t)o->records, sizeof *p->sent_ns);
    p->latency_us = calloc((size_t)o->records, sizeof *p->latency_us);
    p->seen = calloc((size_t)o->records, sizeof *p->seen);
    return p->sent_ns && p->latency_us && p->seen;
}

/* The fact number an output stands for, or -1 when it is not one of this run's. */
static long probe_fact_of(const probe *p, const options *o, const rd_kafka_message_t *msg)
{
    const char *indicator = NULL;
    long k = -1;
    ProtobufCMessage *value = NULL;
    if (!msg->payload)
        return -1; /* a tombstone: never caused by a new fact */
    if (p->copies) {
        Healthsignals__V1__IndicatorObservation *obs =
            healthsignals__v1__indicator_observation__unpack(NULL, msg->len, msg->payload);
        if (obs && obs->scope && obs->scope->code && obs->scope->code[0] == 'h') {
            indicator = obs->indicator;
            k = strtol(obs->scope->code + 1, NULL, 10);
        }
        value = obs ? &obs->base : NULL;
    } else {
        Healthsignals__V1__FactCount *count =
            healthsignals__v1__fact_count__unpack(NULL, msg->len, msg->payload);
        if (count) {
            indicator = count->group;
            k = (long)count->facts - 1;
        }
        value = count ? &count->base : NULL;
    }
    long j = -1;
    size_t prefix_len = strlen(p->prefix);
    if (indicator && k >= 0 && strncmp(indicator, p->prefix, prefix_len) == 0) {
        long g = strtol(indicator + prefix_len, NULL, 10);
        if (g >= 0 && g < o->indicators)
            j = k * o->indicators + g;
    }
    if (value)
        protobuf_c_message_free_unpacked(value, NULL);
    return j < o->records ? j : -1;
}

/* Reads what the consumer has, waiting at most timeout_ms for the first record. */
static void probe_poll(probe *p, const options *o, int timeout_ms)
{
    for (;;) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(p->consumer, timeout_ms);
        if (!msg)
            return;
        uint64_t at = bench_now_ns();
        timeout_ms = 0;
        if (msg->err) {
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "load: probe: %s\n", rd_kafka_message_errstr(msg));
            rd_kafka_message_destroy(msg);
            continue;
        }
        long j = probe_fact_of(p, o, msg);
        rd_kafka_message_destroy(msg);
        if (j < 0 || !p->sent_ns[j]) {
            p->foreign++;
        } else if (p->seen[j]) {
            p->duplicates++;
        } else {
            p->seen[j] = true;
            uint64_t us = (at - p->sent_ns[j]) / 1000u;
            p->latency_us[j] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
            p->received++;
        }
    }
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Writes, per second of sending, the facts sent and their median and largest latency to stderr: shows
 * whether latency is steady or grows (the loop falling behind), and when a stall happened. */
static void probe_timeline(const probe *p, long sent)
{
    if (!sent)
        return;
    uint64_t start = p->sent_ns[0];
    long j = 0;
    fprintf(stderr, "load: second  sent  received  p50_ms  max_ms\n");
    for (int second = 0; j < sent; second++) {
        uint64_t end = start + (uint64_t)(second + 1) * 1000000000u;
        long first = j, received = 0;
        for (; j < sent && p->sent_ns[j] < end; j++)
            received += p->seen[j];
        uint32_t *window = malloc((size_t)(received ? received : 1) * sizeof *window);
        long n = 0;
        for (long k = first; window && k < j; k++)
            if (p->seen[k])
                window[n++] = p->latency_us[k];
        if (window && n)
            qsort(window, (size_t)n, sizeof *window, compare_u32);
        uint32_t median_us = n ? window[n / 2] : 0, max_us = n ? window[n - 1] : 0;
        fprintf(stderr, "load: %6d %6ld %9ld %7.1f %7.1f\n", second, j - first, received, median_us / 1000.0,
                max_us / 1000.0);
        free(window);
    }
}

/* Prints the latency distribution of the facts sent after the warm-up. */
static void probe_report(const probe *p, const options *o, long sent, double rate, uint64_t measure_from_ns)
{
    uint32_t *measured = malloc((size_t)(sent ? sent : 1) * sizeof *measured);
    long n = 0, missing = 0;
    for (long j = 0; j < sent && measured; j++) {
        if (p->sent_ns[j] < measure_from_ns)
            continue;
        if (p->seen[j])
            measured[n++] = p->latency_us[j];
        else
            missing++;
    }
    if (measured && n)
        qsort(measured, (size_t)n, sizeof *measured, compare_u32);
    probe_timeline(p, sent);
#define PCT(q) (n ? (double)measured[(long)((double)(n - 1) * (q))] / 1000.0 : 0.0)
    printf("load: latency sent=%ld rate=%.0f measured=%ld missing=%ld duplicates=%ld foreign=%ld p50_ms=%.1f "
           "p90_ms=%.1f p99_ms=%.1f p999_ms=%.1f max_ms=%.1f\n",
           sent, rate, n, missing, p->duplicates, p->foreign, PCT(0.5), PCT(0.9), PCT(0.99), PCT(0.999),
           PCT(1.0));
#undef PCT
    fflush(stdout);
    free(measured);
}

static void probe_free(probe *p)
{
    if (p->consumer) {
        rd_kafka_consumer_close(p->consumer);
        rd_kafka_destroy(p->consumer);
    }
    free(p->sent_ns);
    free(p->latency_us);
    free(p->seen);
}

/* --- main -------------------------------------------------------------------------------------------------
 */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: load --bootstrap B --run ID [--records N] [--indicators M] [--rate R]\n"
            "            [--latency TOPIC --duration S [--warmup S] [--wait S]]\n"
            "  --run ID         names this run's indicators bench.ID.g0 .. g(M-1) ([a-z0-9-])\n"
            "  --records N      facts to publish (default 100000; latency mode: rate x (warmup + duration))\n"
            "  --indicators M   groups the facts are spread over (default 1000)\n"
            "  --rate R         facts per second (default 0: as fast as possible)\n"
            "  --latency TOPIC  read TOPIC read_committed and report the latency of each fact's output\n"
            "                   (hs.fact-counts.v1: FactCounts; any other: copies of the facts)\n"
            "  --duration S     seconds measured (latency mode), after --warmup S (default 2) not measured\n"
            "  --wait S         seconds to wait for the last outputs after sending (default 10)\n");
}

static bool parse_options(options *o, int argc, char **argv)
{
    *o = (options){.records = -1, .indicators = 1000, .warmup_s = 2, .wait_s = 10};
    const hs_cli_option table[] = {
        {"bootstrap", 0, HS_CLI_TEXT, &o->bootstrap},   {"run", 0, HS_CLI_TEXT, &o->run},
        {"records", 0, HS_CLI_LONG, &o->records},       {"indicators", 0, HS_CLI_LONG, &o->indicators},
        {"rate", 0, HS_CLI_DOUBLE, &o->rate},           {"latency", 0, HS_CLI_TEXT, &o->latency_topic},
        {"duration", 0, HS_CLI_DOUBLE, &o->duration_s}, {"warmup", 0, HS_CLI_DOUBLE, &o->warmup_s},
        {"wait", 0, HS_CLI_DOUBLE, &o->wait_s},         {0},
    };
    hs_cli_parse("load", argc, argv, table, false, usage);
    o->bootstrap = hs_kafka_bootstrap(o->bootstrap);
    if (!o->run || optind != argc || o->indicators <= 0 || o->rate < 0 || o->warmup_s < 0 || o->wait_s < 0)
        return false;
    for (const char *c = o->run; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
            return false;
    if (o->latency_topic && (o->rate <= 0 || o->duration_s <= 0))
        return false;
    if (o->records < 0)
        o->records = o->latency_topic ? (long)(o->rate * (o->warmup_s + o->duration_s)) : 100000;
    return o->records > 0;
}

int main(int argc, char **argv)
{
    bench_prog = "load";
    options o;
    if (!parse_options(&o, argc, argv)) {
        usage(stderr);
        return 2;
    }
    const hs_topic *topic = hs_topic_find(HS_TOPIC_INDICATORS);
    /* Bulk loads batch (linger 20 ms, as hsctl publish); a paced latency run sends at once (1 ms). */
    const char *producer_props[] = {"enable.idempotence", "true",       "linger.ms", o.rate > 0 ? "1" : "20",
                                    "client.id",          "bench-load", NULL};
    rd_kafka_t *producer = bench_client_new(RD_KAFKA_PRODUCER, o.bootstrap, producer_props, NULL);
    if (!producer)
        return 3;
    probe p = {0};
    if (o.latency_topic && !probe_start(&p, &o)) {
        probe_free(&p);
        rd_kafka_destroy(producer);
        return 3;
    }

    if (o.rate > 0 && !warm_up(producer, topic, &o)) {
        probe_free(&p);
        rd_kafka_destroy(producer);
        return 3;
    }

    uint64_t start_ns = bench_now_ns();
    uint64_t measure_from_ns = start_ns + (uint64_t)(o.warmup_s * 1e9);
    long sent = 0;
    bool ok = true;
    while (ok && sent < o.records) {
        uint64_t now = bench_now_ns();
        /* Pacing: fact j is due at start + j / rate; a late loop catches up at once. */
        long due = o.rate > 0 ? (long)((double)(now - start_ns) / 1e9 * o.rate) + 1 : o.records;
        if (due > o.records)
            due = o.records;
        for (; ok && sent < due; sent++) {
            if (p.sent_ns)
                p.sent_ns[sent] = bench_now_ns();
            ok = produce_fact(producer, topic, &o, sent);
            if (o.rate <= 0 && sent % 1024 == 0)
                rd_kafka_poll(producer, 0);
        }
        rd_kafka_poll(producer, 0);
        if (o.rate > 0 && sent < o.records) {
            /* Sleep until the next fact is due, at least 1 ms: facts go out in 1 ms batches at high rates,
             * and the probe never spins (it would take a core from the broker and the service). */
            double next_s = (double)sent / o.rate - (double)(bench_now_ns() - start_ns) / 1e9;
            int wait_ms = next_s > 0.001 ? (int)(next_s * 1000) : 1;
            if (p.consumer)
                probe_poll(&p, &o, wait_ms);
            else if (wait_ms)
                rd_kafka_poll(producer, wait_ms);
        }
    }
    double send_s = (double)(bench_now_ns() - start_ns) / 1e9;
    if (rd_kafka_flush(producer, OP_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
        fprintf(stderr, "load: %d records still undelivered\n", rd_kafka_outq_len(producer));
    double flushed_s = (double)(bench_now_ns() - start_ns) / 1e9;

    if (p.consumer) {
        /* Wait for the outputs of every measured fact, or until --wait runs out. */
        uint64_t deadline = bench_now_ns() + (uint64_t)(o.wait_s * 1e9);
        while (p.received < o.records && bench_now_ns() < deadline)
            probe_poll(&p, &o, 50);
        probe_report(&p, &o, sent, send_s > 0 ? (double)sent / send_s : 0, measure_from_ns);
    } else {
        printf("load: records=%ld seconds=%.3f rate=%.0f delivery_errors=%ld\n", sent, flushed_s,
               flushed_s > 0 ? (double)sent / flushed_s : 0.0, bench_delivery_errors);
    }
    probe_free(&p);
    rd_kafka_destroy(producer);
    return ok && !bench_delivery_errors ? 0 : 1;
}
