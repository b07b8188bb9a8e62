/* The service runtime (see hs/runtime.h for the contract). One libuv loop owns the process; librdkafka's
 * queues wake it through pipes (rd_kafka_queue_io_event_enable). The transactional consume-process-produce
 * cycle follows librdkafka's examples/transactions.c: begin a transaction at the first live record, produce
 * outputs and dead letters into it, and at the commit interval (or after commit-records records) send the
 * consumed offsets to it and commit. An abortable error aborts, and every assigned partition is rebuilt from
 * its last committed offset, because the in-memory state already holds the effect of the aborted records.
 *
 * Every Kafka call is made from the loop thread except the commit's own two: sending the offsets and
 * committing take several broker round trips (tens of milliseconds on a busy broker), so they run on a short
 * thread of their own while the loop consumes and calculates on. librdkafka accepts no record into a
 * committing transaction, and the records consumed meanwhile belong to the next one anyway, so their outputs
 * are deferred and produced into the next transaction when the commit is done. Should it fail, they are
 * dropped with the rest: the rewind consumes their records again.
 *
 * Rules are input too, but every instance reads all of hs.rules.v1 outside the group, so no consumed offset
 * records which rules a partition's committed outputs were computed with. The commit records it instead:
 * every committed offset carries, as its metadata, the digest of the service's rule set that the
 * partition's outputs reflect, and a rule change makes the next transaction carry the new digest for every
 * live partition, with the change's outputs, even for a partition that consumed no fact. A partition is
 * rebuilt with the rules read now; if its committed digest differs (a change made while no instance had it
 * live, or one whose transaction never committed), its committed outputs may predate the change, so once
 * live it applies every rule again and emits every output they determine, changed or not; the transaction
 * with the last of them commits the new digest (rules_reconcile). A rule change met while a partition
 * rebuilds is applied silently and reconciled the same way. Bad rules are dead-lettered once per service, by
 * the instance that has partition 0 of the first input (rules_dlq_owner). All rule work is done in time
 * slices of the loop (on_rules_wake, on_rules_work). docs/running.md ("Running a service") and reliability.md
 * ("Rule changes") say what this guarantees.
 *
 * The HTTP endpoint answers from a thread of its own (hs_http), because the loop blocks by design (a commit
 * waited for, rd_kafka_committed() in the rebalance callback, 30 s timeouts, start-up). The loop publishes
 * what the probes need instead of being asked: its readiness and a beat at every turn (hs_health; see
 * "HTTP endpoint" below for the API), and the gauges of its own state on request, with a bounded wait.
 *
 * The broker may be away at any time, and the loop never waits for it: the commit thread resumes its calls
 * for as long as librdkafka calls them retriable, and the transactional producer is made ready
 * (init_transactions) on a connect thread of its own, at start-up and whenever a fatal error that is not a
 * fencing by another instance makes the runtime replace it (producer_failed: the broker aborted a
 * transaction for its age, say, after a restart). Meanwhile /readyz says why (kafka_not_ready).
 */
#include "hs/runtime.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <xxhash.h>

#include "healthsignals/v1/rule.pb-c.h"
#include "hs/alloc.h"
#include "hs/event.h"
#include "hs/health.h"
#include "hs/http.h"
#include "hs/kafka.h"
#include "hs/log.h"
#include "hs/process.h"
#include "hs/schema_registry.h"
#include "hs/text.h"
#include "hs/validate.h"
#include "hs/wire.h"

#define MAX_INPUTS  4
#define MAX_OUTPUTS 4
#define POLL_BATCH  2000 /* records per wake-up before the loop gets a turn */
#define RULES_SLICE_NS                                                                                       \
    ((uint64_t)10 * 1000000u) /* rule changes applied per loop turn: at most this long, and one */
#define OP_TIMEOUT_MS 30000
/* What the probes say of a loop that does not turn (hs/health.h): not ready after 5 s (the loop turns at
 * least every HEALTH_BEAT_MS when all is well), and not alive after 120 s, four times the longest wait the
 * runtime makes by design. */
#define HEALTH_BUSY_MS    5000
#define HEALTH_STALLED_MS (4 * (uint64_t)OP_TIMEOUT_MS)
#define HEALTH_BEAT_MS    1000
#define REFRESH_WAIT_MS   1000 /* the longest /metrics waits for the loop to refresh its gauges */

static const char starting_reason[] = "starting: connecting to Kafka";
/* A transactional call that waits for the broker is made in slices of this long, each resumed while
 * librdkafka calls its timeout retriable, so that a stop is noticed between two of them. */
#define KAFKA_SLICE_MS 1000
/* Between two producers that failed to initialise: the first wait, doubled up to the last. */
#define RECONNECT_BACKOFF_MS     1000
#define RECONNECT_BACKOFF_MAX_MS 30000
/* "Still waiting for the broker" is logged after 1, 2, 4, ... s, then every this long. */
#define UNREACHABLE_LOG_MAX_MS 60000
/* Tries at reading the committed offsets of an assignment (each up to OP_TIMEOUT_MS) before giving up. */
#define COMMITTED_ATTEMPTS 4

/* The runtime's own options; a service's follow them. */
static const hs_option runtime_options[] = {
    {.name = "bootstrap-servers",
     .type = HS_OPTION_STRING,
     .default_value = HS_DEFAULT_BOOTSTRAP,
     .help = "Kafka bootstrap servers"},
    {.name = "group-id",
     .type = HS_OPTION_STRING,
     .default_value = "",
     .help = "consumer group of the service's instances (default hs-<service>)"},
    {.name = "instance-id",
     .type = HS_OPTION_STRING,
     .default_value = "",
     .help = "this instance's stable name, part of its transactional.id (default <hostname>-<pid>)"},
    {.name = "http-addr",
     .type = HS_OPTION_ADDRESS,
     .default_value = "127.0.0.1:9464",
     .help = "address of /metrics, /healthz and /readyz (port 0: any free port)"},
    {.name = "commit-interval",
     .type = HS_OPTION_DURATION_MS,
     .default_value = "100ms",
     .help = "commit the open transaction at least this often",
     .min = 1,
     .max = 60000},
    /* A transaction costs the broker about the same whatever its size (measured: 25-50 ms of CPU each), so
     * under load a commit should carry as many records as one interval brings; but its commit has to flush
     * every output first, and beyond some 20 000 records that took longer than the interval itself. */
    {.name = "commit-records",
     .type = HS_OPTION_INT,
     .default_value = "20000",
     .help = "commit the open transaction after this many consumed records",
     .min = 1,
     .max = 10000000},
    /* Confluent's wire format (hs/wire.h, hs/schema_registry.h), named as Confluent's clients name them
     * (schema.registry.url, basic.auth.user.info, bearer.auth.token, ssl.ca.location). */
    {.name = "schema-registry-url",
     .type = HS_OPTION_STRING,
     .default_value = "",
     .help = "register the output topics' schemas here and write values in Confluent's wire format "
             "(default: none, bare protobuf)"},
    {.name = "schema-registry-basic-auth-user-info",
     .type = HS_OPTION_STRING,
     .secret = true,
     .default_value = "",
     .help = "USER:PASSWORD for the schema registry (HTTP basic authentication)"},
    {.name = "schema-registry-bearer-auth-token",
     .type = HS_OPTION_STRING,
     .secret = true,
     .default_value = "",
     .help = "bearer token for the schema registry"},
    {.name = "schema-registry-ssl-ca-location",
     .type = HS_OPTION_STRING,
     .default_value = "",
     .help = "PEM file of the CAs that sign the schema registry's certificate (default: the system's)"},
    {.name = NULL},
};

typedef struct part_state {
    int32_t partition;
    void *calc_state;
    hs_table outputs[MAX_OUTPUTS];        /* digest of the value last emitted per output key, by topic */
    bool assigned[MAX_INPUTS];            /* by input topic */
    bool live[MAX_INPUTS];                /* rebuild finished */
    int64_t rebuild_end[MAX_INPUTS];      /* records below this offset are replayed without emitting */
    int64_t next_offset[MAX_INPUTS];      /* next offset to consume; -1 before the first record */
    int64_t committed_offset[MAX_INPUTS]; /* what the last transaction committed */
    uint64_t rebuild_started_ns;
    /* Rules as exactly-once input (see "Rule changes" below): the digest of the rule set that the outputs
     * this partition has produced reflect, committed ones and those of the open transaction; unknown when
     * the committed offsets carry none (a new group, a commit of an older version) */
    uint64_t output_rules;
    bool output_rules_known;
    uint64_t committed_rules[MAX_INPUTS]; /* the digest the group's committed offset carries, by input */
    bool committed_rules_known[MAX_INPUTS];
    /* Partition 0 of the first input only: hs.rules.v1 offsets below these have been searched for bad rules
     * and those dead-lettered, by the transactions committed / by those and the open one (-1: never). */
    int64_t committed_rules_dlq, rules_dlq_next;
    /* Rule work left, done in time slices between loop turns (on_rules_work): every rule applied to a fresh
     * state, silently, before any fact (its inputs are paused meanwhile); or applied again to reconcile. */
    enum { RULES_WORK_NONE, RULES_WORK_FRESH, RULES_WORK_RECONCILE, RULES_WORK_DIFF } rules_work;
    int diff_phase;      /* RULES_WORK_DIFF: 0 retracting the rules gone, 1 applying new and changed */
    size_t rules_cursor; /* hs_table_next() cursor into the table the work goes through */
    uint64_t rules_work_version; /* rt->rules_version the cursor belongs to: a change starts it again */
    /* The rules the partition's outputs reflect, as hs.applied-rules.v1 holds them for it — its committed
     * records and those of the open transaction, written with the outputs they accompany (key -> packed
     * Rule; see "The applied rules" below). Read back from that topic whenever the state is (re)built
     * (applied_loading, the inputs paused meanwhile); applied_digest is their digest. */
    hs_table applied;
    hs_table retracting; /* keys of `applied` the running RULES_WORK_DIFF has retracted, deleted at its end */
    uint64_t applied_digest;
    int64_t dropped_from[MAX_INPUTS]; /* the first record fetched while waiting (dropped, fetched again) */
    /* Assigned, its committed offset not read yet (offsets_job): 0, or the offsets_seq a reading must have
     * begun after to count (one begun before may predate a commit by the partition's previous owner). */
    uint64_t offsets_pending[MAX_INPUTS];
    bool applied_loading;
    bool build_pending;           /* a fresh state, built once its committed offsets are read (part_build) */
    bool eof_dropped[MAX_INPUTS]; /* the end of the partition was met while waiting */
} part_state;

/* The input whose offset metadata carries the rules dead-letter position: the first input's partition 0. */
static bool dlq_input(const part_state *ps, size_t i)
{
    return ps->partition == 0 && i == 0;
}

/* Where the transaction is. While a commit runs on its thread (commit_main), outputs wait in `deferred`. */
typedef enum txn_state {
    TXN_NONE,       /* no transaction begun */
    TXN_OPEN,       /* begun: outputs and dead letters are produced into it */
    TXN_COMMITTING, /* being committed by rt->commit.thread; nothing else touches the producer meanwhile */
    TXN_RECOVERING, /* the producer failed and is being replaced by rt->connect.thread; rt->producer is NULL
                     * and nothing is consumed until it is done */
} txn_state;

/* An output of the next transaction, produced when the commit in flight is done. Deferred outputs lie one
 * after the other in one buffer that every commit reuses (a malloc and a free for each of them cost a tenth
 * of the loop's time under load): this header, then the key and the cause, each NUL-terminated, and the
 * packed value; the next header starts at the next multiple of its alignment. */
typedef struct deferred_output {
    uint32_t output; /* index into rt->outputs, or DEFERRED_DEAD_LETTER */
    uint32_t key_len, cause_len;
    bool deletion;
    size_t value_len;
    /* A dead letter: the key and value are the rejected record's bytes (either may be absent), the cause is
     * the reason; where it came from and why. */
    bool has_key;
    const char *source_topic; /* static storage: the registry's name */
    int32_t source_partition;
    int64_t source_offset;
    hs_err code;
} deferred_output;

#define DEFERRED_DEAD_LETTER UINT32_MAX

typedef struct deferred_buffer {
    uint8_t *data;
    size_t len, cap;
} deferred_buffer;

/* Above this a drained buffer is given back rather than kept for the next commit. */
#define DEFERRED_KEEP_BYTES ((size_t)16 << 20)

/* One commit, handed to its thread. The thread writes only `error` and `finished`. */
typedef struct commit_job {
    uv_thread_t thread;
    bool threaded; /* false: the thread could not be started and the commit ran on the loop */
    rd_kafka_topic_partition_list_t *offsets;
    rd_kafka_consumer_group_metadata_t *group; /* NULL when no offsets moved */
    rd_kafka_error_t *error;
    atomic_bool finished;
    uint64_t started_ns, offsets_sent_ns, finished_ns; /* for the debug log of each commit */
    uint64_t txn_begun_ns;                             /* when the transaction being committed began */
    size_t records;                                    /* consumed records the transaction carries */
    bool aborted; /* the commit failed and the thread aborted the transaction: rewind */
} commit_job;

/* The transactional producer's start: a producer made ready for transactions (init_transactions) on a
 * thread of its own, retried for as long as the broker cannot be reached, so that the loop answers probes
 * and signals meanwhile. At start-up it takes the producer just configured; after a fatal error (recovery)
 * it destroys the failed one, makes a new one and also reads the committed offsets of `committed`, which the
 * rewind starts from: a commit whose outcome the failure hid may have completed. */
typedef struct connect_job {
    uv_thread_t thread;
    bool running;
    rd_kafka_t *old_producer;                   /* recovery: destroyed first */
    rd_kafka_t *producer;                       /* in: the producer to initialise, or NULL to make one;
                                                 * out: ready for transactions (NULL when abandoned) */
    rd_kafka_topic_partition_list_t *committed; /* recovery: the assigned partitions, their committed offsets
                                                 * filled in; NULL at start-up */
    hs_err err;                                 /* out: HS_OK, or why the service cannot go on */
    hs_error error;
    int attempts;         /* init_transactions calls that timed out or failed */
    bool schemas_pending; /* start-up with a schema registry: the output schemas are registered first */
    uint64_t started_ns;  /* for the log */
    bool threaded;        /* false: the thread could not be started and the job ran on the loop */
    atomic_bool finished;
} connect_job;

/* The committed offsets of newly assigned partitions, read on a thread of its own so that the loop goes on
 * (probes, other partitions, commits) while the broker takes its time: the rebalance callback assigns the
 * partitions paused, and they are built once their committed offsets are in (on_offsets_done). */
typedef struct offsets_job {
    uv_thread_t thread;
    bool running, threaded;
    uint64_t seq; /* rt->offsets_seq when it began */
    rd_kafka_topic_partition_list_t *list;
    atomic_bool finished;
    int attempts;
    uint64_t started_ns;
} offsets_job;

typedef struct wake {
    uv_poll_t poll;
    int fds[2]; /* pipe: librdkafka writes the read end awake */
} wake;

typedef struct runtime {
    const hs_service *service;
    const hs_calc *calc;
    hs_config *config;
    uv_loop_t loop;
    char source[128];
    char group_id[256];
    char txn_id[320];
    hs_event_meta output_meta[MAX_OUTPUTS]; /* each output topic's CloudEvents source and type, filled in */

    rd_kafka_t *consumer, *producer, *rules_consumer, *applied_consumer;
    rd_kafka_queue_t *consumer_queue, *producer_queue, *rules_queue, *applied_queue;
    wake consumer_wake, producer_wake, rules_wake, applied_wake;
    uv_timer_t commit_timer;
    uv_signal_t sigterm, sigint;
    uv_async_t stop_request; /* hs_runtime_stop(), from any thread */
    hs_http *http;
    hs_health *health;            /* published by the loop, read by the HTTP thread */
    const char *published_reason; /* the not_ready_reason() last published (loop only) */
    uv_prepare_t health_prepare;  /* publishes at every turn */
    uv_timer_t health_timer;      /* makes the loop turn at least every HEALTH_BEAT_MS */
    atomic_bool loop_turning;     /* uv_run() has begun and not returned: a refresh can be served */
    struct {                      /* /metrics asks the loop to refresh the gauges of its state */
        uv_async_t async;
        uv_mutex_t lock;
        uv_cond_t done_cond;
        uint64_t requested, done; /* under lock */
    } refresh;

    const hs_topic *inputs[MAX_INPUTS];
    size_t input_cnt;
    const hs_topic *outputs[MAX_OUTPUTS];
    size_t output_cnt;
    const hs_topic *dlq;

    part_state **parts; /* by partition number */
    size_t part_cap;
    hs_table rules;         /* this service's rules: key -> packed Rule */
    uint64_t rules_digest;  /* of `rules`: the sum of rule_digest() over its entries (0: no rules) */
    int64_t rules_read_end; /* hs.rules.v1 records below this offset have been read into `rules` */
    uint64_t rules_version; /* counts the changes of `rules`: an iteration over it started before is void */
    uv_idle_t rules_work;   /* runs on_rules_work while a partition has rule work left */
    uv_timer_t rules_load_timer; /* says so every OP_TIMEOUT_MS while the rules are not read to their end */
    uint64_t rules_load_waits;   /* how many times it did */
    bool rules_work_active;
    bool rules_loaded, assignment_seen;
    atomic_bool brokers_down; /* also written by delivery reports served on the commit thread */
    uv_thread_t loop_thread;

    txn_state txn;
    int applied_out;   /* index of hs.applied-rules.v1 in `outputs` (a service with rules), else -1 */
    long txn_records;  /* live records consumed into the open (while committing: the next) transaction */
    bool next_txn;     /* while committing: the next transaction has records */
    bool commit_due;   /* while committing: the commit timer fired */
    commit_job commit; /* the commit in flight */
    uv_async_t commit_done;
    uint64_t txn_begun_ns;    /* when the open transaction began: a fencing of an older one was the broker's
                               * timeout, not another instance */
    long long txn_timeout_ms; /* transaction.timeout.ms (hs_kafka_txn_timeout_ms) */
    connect_job connect;      /* the producer's (re)start in flight */
    uv_async_t connect_done;
    offsets_job offsets;  /* committed offsets being read for an assignment */
    uint64_t offsets_seq; /* counts the readings begun */
    uv_async_t offsets_done;
    bool consuming_paused; /* the consumers' wakes are stopped: a commit holds the loop back, or recovery */
    atomic_bool abandon;   /* stopping: the threads give up waiting for the broker */
    /* Why Kafka cannot be used now, for /readyz ("broker unreachable"); NULL when it can. A string in static
     * storage, written by the loop and the threads. */
    _Atomic(const char *) kafka_not_ready;
    deferred_buffer deferred; /* outputs of the next transaction, in order */
    uint64_t rewinds;         /* how many times rewind_all() ran */
    long commit_records;
    bool stopping;
    bool schemas_registered; /* the connect thread has been asked to register the schemas (once) */
    int exit_code;

    hs_metrics *metrics;
    hs_counter *records_in[MAX_INPUTS], *records_out[MAX_OUTPUTS]; /* by topic, looked up once */
    hs_counter *txn_committed, *txn_aborted, *producer_recoveries;
    hs_histogram *commit_seconds, *calc_seconds;
    hs_gauge *rebuild_seconds;
} runtime;

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void fatal(runtime *rt, const char *what, const char *detail)
{
    hs_log(HS_LOG_ERROR, what, "{s:s}", "error", detail ? detail : "");
    rt->exit_code = HS_EXIT_FATAL;
    rt->stopping = true;
    uv_stop(&rt->loop);
}

static int input_index(const runtime *rt, const char *topic)
{
    for (size_t i = 0; i < rt->input_cnt; i++)
        if (strcmp(rt->inputs[i]->name, topic) == 0)
            return (int)i;
    return -1;
}

static int output_index(const runtime *rt, const hs_topic *topic)
{
    for (size_t i = 0; i < rt->output_cnt; i++)
        if (rt->outputs[i] == topic)
            return (int)i;
    return -1;
}

/* --- metrics ---------------------------------------------------------------------------------------------
 */

static hs_counter *topic_counter(runtime *rt, const char *name, const char *help, const char *topic)
{
    return hs_metrics_counter_l(rt->metrics, name, help, "topic", topic, NULL);
}

/* --- transactions ----------------------------------------------------------------------------------------
 */

/* Begins a transaction unless one is open. Returns false when none can be: the producer is being replaced,
 * or has just failed (producer_check() acts on that at the next record), or the error stopped the service. */
static bool txn_begin(runtime *rt)
{
    if (rt->txn == TXN_OPEN)
        return true;
    if (rt->txn == TXN_COMMITTING) {
        rt->next_txn = true; /* begun when the commit in flight is done */
        return true;
    }
    if (rt->txn == TXN_RECOVERING)
        return false;
    rd_kafka_error_t *error = rd_kafka_begin_transaction(rt->producer);
    if (error) {
        if (!rd_kafka_error_is_fatal(error))
            fatal(rt, "cannot begin a transaction", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return false;
    }
    rt->txn = TXN_OPEN;
    rt->txn_begun_ns = now_ns();
    return true;
}

static void state_reset(runtime *rt, part_state *ps);
static void rules_work_fresh(runtime *rt, part_state *ps);
static void rules_work_finish(runtime *rt, part_state *ps);
static void on_rules_work(uv_idle_t *handle);
static void mark_live(runtime *rt, part_state *ps, int i);
static hs_err subscribe_inputs(runtime *rt, hs_error *error);
static void rules_load_done(runtime *rt);
static void consume_pause(runtime *rt);
static void consume_resume(runtime *rt);
static void producer_failed(runtime *rt, uint64_t txn_begun_ns, const char *detail);
static void produce_deferred(runtime *rt);
static bool part_live(const runtime *rt, const part_state *ps);
static void rules_from_commits(runtime *rt, part_state *ps);
static void part_went_live(runtime *rt, part_state *ps);
static void applied_load_start(runtime *rt, part_state *ps);
static void applied_read_start(runtime *rt);
static void inputs_pause(runtime *rt, const part_state *ps, bool pause);
static void drain_wake(wake *w);
static void serve_sliced(runtime *rt, rd_kafka_t *consumer, wake *w,
                         void (*on_message)(runtime *rt, const rd_kafka_message_t *msg));
static void dead_letter_produce(runtime *rt, const char *topic, int32_t source_partition,
                                int64_t source_offset, const void *key, size_t key_len, const void *value,
                                size_t value_len, hs_err code, const char *reason);
static void offsets_main(void *arg);
static bool part_waiting(const runtime *rt, const part_state *ps);

/* --- rule changes in the commit ---------------------------------------------------------------------------
 * Every committed offset of a service with rules carries, as its offset metadata, the digest of the rule
 * set that the partition's committed outputs reflect ("hs-rules=<16 hex digits>", well below the broker's
 * offset.metadata.max.bytes of 4096). The digest is order-free (a sum of one 64-bit XXH3 per rule over its
 * key and packed bytes), so every instance that has read the same rules computes the same one, and a change
 * updates it in O(1). Partition 0 of the first input also carries how far hs.rules.v1 has been searched for
 * bad rules, which that partition's transactions dead-letter (",dlq=<offset>"; see rules_dlq_owner). */

#define RULES_META_PREFIX "hs-rules="
#define RULES_META_DLQ    ",dlq="
#define RULES_META_MAX    64

static uint64_t rule_digest(const char *key, const void *value, size_t len)
{
    return XXH3_64bits_withSeed(value, len, XXH3_64bits(key, strlen(key)));
}

/* Writes the metadata for `digest` and, when `dlq` >= 0, the rules dead-letter position; returns its length.
 */
static size_t rules_meta_format(uint64_t digest, int64_t dlq, char out[RULES_META_MAX])
{
    static const char hex[] = "0123456789abcdef";
    size_t n = sizeof RULES_META_PREFIX - 1;
    memcpy(out, RULES_META_PREFIX, n);
    for (int k = 0; k < 16; k++)
        out[n++] = hex[(digest >> (60 - 4 * k)) & 0xF];
    if (dlq >= 0) {
        memcpy(out + n, RULES_META_DLQ, sizeof RULES_META_DLQ - 1);
        n += sizeof RULES_META_DLQ - 1;
        n += hs_u64_digits(out + n, (uint64_t)dlq);
    }
    out[n] = '\0';
    assert(n < RULES_META_MAX);
    return n;
}

/* The digest in committed offset metadata, and the dead-letter position (-1 when it carries none); false
 * for no metadata or anything else (an older version's commit). */
static bool rules_meta_parse(const void *metadata, size_t size, uint64_t *digest, int64_t *dlq)
{
    const char *text = metadata;
    size_t n = sizeof RULES_META_PREFIX - 1;
    *dlq = -1;
    if (!text || size < n + 16 || memcmp(text, RULES_META_PREFIX, n) != 0)
        return false;
    uint64_t d = 0;
    for (size_t end = n + 16; n < end; n++) {
        char c = text[n];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return false;
        d = d << 4 | (uint64_t)v;
    }
    if (size > n) {
        size_t tag = sizeof RULES_META_DLQ - 1;
        if (size - n <= tag || size - n > tag + 18 || memcmp(text + n, RULES_META_DLQ, tag) != 0)
            return false;
        int64_t position = 0;
        for (n += tag; n < size; n++) {
            if (text[n] < '0' || text[n] > '9')
                return false;
            position = position * 10 + (text[n] - '0');
        }
        *dlq = position;
    }
    *digest = d;
    return true;
}

/* A committed offset of input `i` of `ps`, with what its metadata says: the rule-set digest the partition's
 * committed outputs reflect and, for the dead-letter owner's input, how far hs.rules.v1 was searched. */
static void take_committed(part_state *ps, size_t i, const rd_kafka_topic_partition_t *tp)
{
    ps->committed_offset[i] = tp->offset;
    int64_t dlq;
    ps->committed_rules_known[i] =
        rules_meta_parse(tp->metadata, tp->metadata_size, &ps->committed_rules[i], &dlq);
    if (dlq_input(ps, i))
        ps->committed_rules_dlq = dlq;
}

/* Whether input `i` of a partition must be committed for its rules alone: the partition is live and
 * reconciled, and the group's committed offset does not carry the digest its outputs now reflect (a rule
 * changed, even if no fact of the partition was consumed since). */
static bool rules_commit_due(const runtime *rt, const part_state *ps, size_t i)
{
    return rt->calc->uses_rules && ps->output_rules_known && part_live(rt, ps) &&
           (!ps->committed_rules_known[i] || ps->committed_rules[i] != ps->output_rules ||
            (dlq_input(ps, i) && ps->committed_rules_dlq != ps->rules_dlq_next));
}

static void discard_deferred(runtime *rt)
{
    deferred_buffer *b = &rt->deferred;
    b->len = 0;
    if (b->cap > DEFERRED_KEEP_BYTES) {
        free(b->data);
        *b = (deferred_buffer){0};
    }
}

/* After an abort: every assigned partition starts again from its beginning and is rebuilt up to what was
 * last committed, since the in-memory state holds the effects of the aborted records. */
static void rewind_all(runtime *rt)
{
    rt->rewinds++;
    rd_kafka_topic_partition_list_t *seek = rd_kafka_topic_partition_list_new(16);
    for (size_t p = 0; p < rt->part_cap; p++) {
        part_state *ps = rt->parts[p];
        if (!ps || ps->build_pending)
            continue; /* not built yet: it will be once its committed offsets are in */
        state_reset(rt, ps);
        for (size_t i = 0; i < MAX_INPUTS; i++) {
            ps->dropped_from[i] = -1; /* all of it is fetched again */
            ps->eof_dropped[i] = false;
        }
        for (size_t i = 0; i < rt->input_cnt; i++) {
            if (!ps->assigned[i])
                continue;
            ps->rebuild_end[i] = ps->committed_offset[i] > 0 ? ps->committed_offset[i] : 0;
            ps->live[i] = false;
            ps->next_offset[i] = -1;
            rd_kafka_topic_partition_list_add(seek, rt->inputs[i]->name, ps->partition)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
        }
        rules_from_commits(rt, ps); /* the aborted outputs are gone: what is committed counts again */
        if (rt->calc->uses_rules)
            applied_load_start(rt, ps); /* and the applied rules they were committed with */
        else
            rules_work_fresh(rt, ps); /* the inputs with nothing committed go live */
    }
    applied_read_start(rt);
    if (seek->cnt) {
        rd_kafka_error_t *error = rd_kafka_seek_partitions(rt->consumer, seek, OP_TIMEOUT_MS);
        if (error) {
            fatal(rt, "cannot rewind after an aborted transaction", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
    }
    rd_kafka_topic_partition_list_destroy(seek);
}

/* Aborts the open transaction (or the one whose commit failed) and rewinds; what was consumed after the last
 * committed offsets, deferred outputs included, is consumed again. */
static void txn_abort(runtime *rt, const char *reason)
{
    hs_log(HS_LOG_WARN, "aborting the transaction and rewinding", "{s:s}", "reason", reason);
    discard_deferred(rt);
    rt->next_txn = false;
    rt->txn_records = 0;
    rd_kafka_error_t *error = rd_kafka_abort_transaction(rt->producer, OP_TIMEOUT_MS);
    if (error) {
        fatal(rt, "cannot abort the transaction", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return;
    }
    rt->txn = TXN_NONE;
    hs_counter_add(rt->txn_aborted, 1);
    rewind_all(rt);
}

/* The offsets to commit: the next offset of every live partition that moved since the last commit, and the
 * position of every partition whose rules digest changed; for a service with rules each carries the digest
 * its partition's outputs reflect. */
static rd_kafka_topic_partition_list_t *pending_offsets(runtime *rt)
{
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(16);
    for (size_t p = 0; p < rt->part_cap; p++) {
        part_state *ps = rt->parts[p];
        for (size_t i = 0; ps && i < rt->input_cnt; i++) {
            bool moved = ps->next_offset[i] > ps->committed_offset[i];
            if (!ps->assigned[i] || !(moved || rules_commit_due(rt, ps, i)))
                continue;
            rd_kafka_topic_partition_t *tp =
                rd_kafka_topic_partition_list_add(offsets, rt->inputs[i]->name, ps->partition);
            /* Not moved: the same position again (0 when nothing was ever committed or consumed). */
            tp->offset = moved                         ? ps->next_offset[i]
                         : ps->committed_offset[i] > 0 ? ps->committed_offset[i]
                                                       : 0;
            if (rt->calc->uses_rules && ps->output_rules_known) {
                char meta[RULES_META_MAX];
                size_t len =
                    rules_meta_format(ps->output_rules, dlq_input(ps, i) ? ps->rules_dlq_next : -1, meta);
                tp->metadata = strdup(meta); /* freed with the list */
                tp->metadata_size = tp->metadata ? len : 0;
            }
        }
    }
    return offsets;
}

/* Whether a transactional call that returned `error` should be made again: librdkafka calls it retriable
 * (the broker did not answer in time; the call goes on where it was) and the service is not stopping. Then
 * the error is destroyed, and /readyz says why the service waits. */
static bool retry_call(runtime *rt, rd_kafka_error_t *error)
{
    if (!error || !rd_kafka_error_is_retriable(error) || atomic_load(&rt->abandon))
        return false;
    rd_kafka_error_destroy(error);
    atomic_store(&rt->kafka_not_ready, "broker unreachable (a commit is waiting for it)");
    uv_sleep(10); /* a call that fails at once must not spin */
    return true;
}

/* The commit thread: the blocking calls of a commit (examples/transactions.c). Each waits in slices and is
 * resumed while librdkafka says it may be, however long the broker is away: the broker aborts a transaction
 * that outlives transaction.timeout.ms, which then fails here as fenced and the producer is replaced
 * (producer_failed). A commit that fails otherwise is aborted here too, so that the loop never waits for the
 * broker. Meanwhile the loop makes no call on the producer: the delivery reports that
 * rd_kafka_commit_transaction() serves while it flushes run here. */
static void commit_main(void *arg)
{
    runtime *rt = arg;
    commit_job *job = &rt->commit;
    rd_kafka_error_t *error = NULL;
    if (job->group)
        while (retry_call(rt, error = rd_kafka_send_offsets_to_transaction(rt->producer, job->offsets,
                                                                           job->group, KAFKA_SLICE_MS)))
            ;
    job->offsets_sent_ns = now_ns();
    if (!error)
        while (retry_call(rt, error = rd_kafka_commit_transaction(rt->producer, KAFKA_SLICE_MS)))
            ;
    job->finished_ns = now_ns();
    job->aborted = false;
    if (error && !rd_kafka_error_is_fatal(error) && !atomic_load(&rt->abandon)) {
        rd_kafka_error_t *abort_error;
        /* -1: the remaining transaction time, as librdkafka recommends for an abort. */
        while (retry_call(rt, abort_error = rd_kafka_abort_transaction(rt->producer, -1)))
            ;
        job->aborted = !abort_error;
        if (abort_error) {
            rd_kafka_error_destroy(error);
            error = abort_error; /* fatal, or the producer is replaced all the same */
        }
    }
    atomic_store(&rt->kafka_not_ready, NULL);
    job->error = error;
    atomic_store(&job->finished, true);
    uv_async_send(&rt->commit_done);
}

/* Starts committing the open transaction with the offsets consumed so far and returns at once; the loop
 * consumes on into the next transaction until commit_complete() runs. */
static void txn_commit_start(runtime *rt)
{
    assert(rt->txn == TXN_OPEN && rt->deferred.len == 0);
    commit_job *job = &rt->commit;
    job->offsets = pending_offsets(rt);
    job->group = job->offsets->cnt ? rd_kafka_consumer_group_metadata(rt->consumer) : NULL;
    job->error = NULL;
    atomic_store(&job->finished, false);
    job->started_ns = now_ns();
    job->txn_begun_ns = rt->txn_begun_ns;
    job->records = rt->txn_records;
    rt->txn = TXN_COMMITTING;
    rt->txn_records = 0;
    rt->next_txn = false;
    rt->commit_due = false;
    job->threaded = uv_thread_create(&job->thread, commit_main, rt) == 0;
    if (!job->threaded)
        commit_main(rt); /* no thread to be had: commit on the loop, as a blocking commit would */
}

/* Finishes the commit in flight, waiting for its thread: on success the offsets count as committed and the
 * next transaction begins with the deferred outputs; after an abort everything is rewound; a fatal error
 * replaces the producer, or stops the service when another instance fenced it (producer_failed). */
static void commit_complete(runtime *rt)
{
    assert(rt->txn == TXN_COMMITTING);
    commit_job *job = &rt->commit;
    if (job->threaded)
        uv_thread_join(&job->thread);
    rd_kafka_error_t *error = job->error;
    rd_kafka_topic_partition_list_t *offsets = job->offsets;
    if (job->group)
        rd_kafka_consumer_group_metadata_destroy(job->group);
    job->group = NULL;
    job->offsets = NULL;
    job->error = NULL;

    if (!error) {
        rt->txn = TXN_NONE;
        for (int k = 0; k < offsets->cnt; k++) {
            rd_kafka_topic_partition_t *tp = &offsets->elems[k];
            part_state *ps = rt->parts[tp->partition];
            int i = input_index(rt, tp->topic);
            if (ps && i >= 0)
                take_committed(ps, i, tp);
        }
        hs_counter_add(rt->txn_committed, 1);
        uint64_t completed_ns = now_ns();
        hs_histogram_observe(rt->commit_seconds, (double)(completed_ns - job->started_ns) / 1e9);
        hs_log(HS_LOG_DEBUG, "transaction committed", "{s:I, s:f, s:f, s:f}", "records",
               (json_int_t)job->records, "send_offsets_ms",
               (double)(job->offsets_sent_ns - job->started_ns) / 1e6, "commit_ms",
               (double)(job->finished_ns - job->offsets_sent_ns) / 1e6, "noticed_after_ms",
               (double)(completed_ns - job->finished_ns) / 1e6);
        rd_kafka_poll(rt->producer,
                      0); /* delivery reports left unserved while the thread owned the producer */
        if (rt->next_txn && txn_begin(rt))
            produce_deferred(rt);
        if (rt->commit_due && rt->txn == TXN_OPEN && !rt->stopping)
            txn_commit_start(rt); /* the timer fired meanwhile: the next transaction is due already */
    } else if (rt->stopping) {
        /* Given up for the stop: the broker aborts the transaction after transaction.timeout.ms, or at once
         * when this instance comes back with the same --instance-id. */
        discard_deferred(rt);
        rt->txn = TXN_NONE;
        hs_log(HS_LOG_WARN, "transaction left uncommitted at the stop", "{s:s}", "error",
               rd_kafka_error_string(error));
    } else if (job->aborted) {
        hs_log(HS_LOG_WARN, "transaction aborted, rewinding", "{s:s}", "reason",
               rd_kafka_error_string(error));
        discard_deferred(rt);
        rt->next_txn = false;
        rt->txn_records = 0;
        rt->txn = TXN_NONE;
        hs_counter_add(rt->txn_aborted, 1);
        rewind_all(rt);
    } else {
        discard_deferred(rt);
        rt->txn = TXN_NONE;
        producer_failed(rt, job->txn_begun_ns, rd_kafka_error_string(error));
    }
    if (error)
        rd_kafka_error_destroy(error);
    rd_kafka_topic_partition_list_destroy(offsets);
    if (rt->consuming_paused && rt->txn != TXN_RECOVERING && !rt->stopping)
        consume_resume(rt); /* held back while the commit ran (txn_commit_full) */
}

/* Waits for the commit in flight, if any, and completes it. */
static void commit_wait(runtime *rt)
{
    if (rt->txn == TXN_COMMITTING)
        commit_complete(rt);
}

/* Completes the commit in flight if its thread is done. Called between records too, not only when the loop
 * gets its turn: otherwise a commit that finishes while the loop works through a batch of records waits for
 * the end of the batch before its deferred outputs go out and the next commit starts (with the targets
 * service a batch took 20-76 ms, during which no commit was in flight). */
static void commit_poll(runtime *rt)
{
    if (rt->txn == TXN_COMMITTING && atomic_load(&rt->commit.finished))
        commit_complete(rt);
}

static void on_commit_done(uv_async_t *handle)
{
    /* Sends coalesce, and commit_wait() or commit_poll() may have completed this commit already and started
     * another. */
    commit_poll(handle->data);
}

/* Commits everything consumed so far before returning: for a revocation and the shutdown. */
static void txn_commit_now(runtime *rt)
{
    commit_wait(rt);
    if (rt->txn == TXN_OPEN)
        txn_commit_start(rt);
    commit_wait(rt);
}

/* commit-records reached: commit now. While a commit is still in flight, consuming stops until it is done
 * (commit_complete starts the next one then), so that a slow commit holds consumption back instead of
 * letting deferred outputs pile up — without blocking the loop, which a commit waiting for an unreachable
 * broker would do for as long as the broker is away. */
static void txn_commit_full(runtime *rt)
{
    if (rt->txn == TXN_COMMITTING) {
        rt->commit_due = true;
        consume_pause(rt);
    } else if (rt->txn == TXN_OPEN) {
        txn_commit_start(rt);
    }
}

/* --- the producer's lifecycle: start, fatal errors, replacement -------------------------------------------
 */

static rd_kafka_t *producer_new(runtime *rt, hs_error *error);
static void finish_start(runtime *rt);
static void on_consumer_wake(uv_poll_t *handle, int status, int events);
static void on_rules_wake(uv_poll_t *handle, int status, int events);
static void on_producer_wake(uv_poll_t *handle, int status, int events);
static void poke(wake *w);

/* Stops taking records (and rule changes) off the consumers' queues, without blocking the loop: while a
 * commit holds consumption back (txn_commit_full) and while the producer is replaced. */
static void consume_pause(runtime *rt)
{
    if (rt->consuming_paused || !rt->consumer)
        return;
    rt->consuming_paused = true;
    uv_poll_stop(&rt->consumer_wake.poll);
    if (rt->rules_consumer)
        uv_poll_stop(&rt->rules_wake.poll);
}

static void consume_resume(runtime *rt)
{
    if (!rt->consuming_paused)
        return;
    rt->consuming_paused = false;
    uv_poll_start(&rt->consumer_wake.poll, UV_READABLE, on_consumer_wake);
    poke(&rt->consumer_wake);
    if (rt->rules_consumer) {
        uv_poll_start(&rt->rules_wake.poll, UV_READABLE, on_rules_wake);
        poke(&rt->rules_wake);
    }
}

/* Logs that the broker is still out of reach after 1, 2, 4, ... s of waiting, then once a minute. */
static void log_unreachable(connect_job *job, uint64_t *next_log_ms, uint64_t *log_interval_ms,
                            const char *waiting_for, const char *error)
{
    uint64_t waited_ms = (now_ns() - job->started_ns) / 1000000u;
    if (waited_ms < *next_log_ms)
        return;
    hs_log(HS_LOG_WARN, "broker unreachable, still trying", "{s:s, s:I, s:i, s:s}", "waiting_for",
           waiting_for, "waited_ms", (json_int_t)waited_ms, "attempts", job->attempts, "error", error);
    *next_log_ms = waited_ms + *log_interval_ms;
    *log_interval_ms =
        *log_interval_ms * 2 < UNREACHABLE_LOG_MAX_MS ? *log_interval_ms * 2 : UNREACHABLE_LOG_MAX_MS;
}

/* Sleeps `ms` unless the service stops meanwhile. */
static void sleep_unless_abandoned(runtime *rt, uint64_t ms)
{
    for (uint64_t slept = 0; slept < ms && !atomic_load(&rt->abandon); slept += 100)
        uv_sleep(100);
}

/* init_transactions() until it succeeds, the service stops, or an error says it never will. A timeout means
 * the broker (the transaction coordinator) cannot be reached: librdkafka reconnects meanwhile with its own
 * capped exponential back-off (reconnect.backoff.ms, reconnect.backoff.max.ms) and the call resumes. Any
 * other failure destroys the producer and makes a new one after a back-off that doubles up to 30 s. */
static bool connect_init(runtime *rt, connect_job *job)
{
    uint64_t backoff_ms = RECONNECT_BACKOFF_MS, next_log_ms = 1000, log_interval_ms = 1000;
    while (!atomic_load(&rt->abandon)) {
        if (!job->producer && !(job->producer = producer_new(rt, &job->error))) {
            job->err = job->error.code;
            return false;
        }
        rd_kafka_error_t *error = rd_kafka_init_transactions(job->producer, KAFKA_SLICE_MS);
        if (!error)
            return true;
        rd_kafka_resp_err_t code = rd_kafka_error_code(error);
        job->attempts++;
        char reason[256];
        snprintf(reason, sizeof reason, "%s", rd_kafka_error_string(error));
        bool retriable = rd_kafka_error_is_retriable(error);
        rd_kafka_error_destroy(error);
        if (code == RD_KAFKA_RESP_ERR_INVALID_TRANSACTION_TIMEOUT) {
            job->err = hs_error_set(&job->error, HS_ERR_CONFIG,
                                    "transaction.timeout.ms %lld is outside the range the broker allows "
                                    "(its transaction.max.timeout.ms): shorten --commit-interval or "
                                    "HS_KAFKA_TRANSACTION_TIMEOUT_MS, or raise the broker's limit",
                                    rt->txn_timeout_ms);
            return false;
        }
        if (code == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED ||
            code == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED) {
            job->err = hs_error_set(&job->error, HS_ERR_KAFKA, "cannot initialise transactions: %s", reason);
            return false;
        }
        atomic_store(&rt->kafka_not_ready, "broker unreachable");
        if (retriable) {
            log_unreachable(job, &next_log_ms, &log_interval_ms, "init_transactions", reason);
            continue;
        }
        hs_log(HS_LOG_WARN, "cannot initialise transactions; retrying with a new producer", "{s:s, s:I}",
               "error", reason, "backoff_ms", (json_int_t)backoff_ms);
        rd_kafka_destroy(job->producer);
        job->producer = NULL;
        sleep_unless_abandoned(rt, backoff_ms);
        backoff_ms = backoff_ms * 2 < RECONNECT_BACKOFF_MAX_MS ? backoff_ms * 2 : RECONNECT_BACKOFF_MAX_MS;
    }
    return false;
}

/* The committed offsets of job->committed, asked for until the broker answers or the service stops. */
static bool connect_committed(runtime *rt, connect_job *job)
{
    uint64_t next_log_ms = 1000, log_interval_ms = 1000;
    if (job->committed->cnt == 0)
        return true;
    while (!atomic_load(&rt->abandon)) {
        rd_kafka_resp_err_t err = rd_kafka_committed(rt->consumer, job->committed, KAFKA_SLICE_MS);
        for (int k = 0; !err && k < job->committed->cnt; k++)
            err = job->committed->elems[k].err;
        if (!err)
            return true;
        job->attempts++;
        atomic_store(&rt->kafka_not_ready, "broker unreachable");
        log_unreachable(job, &next_log_ms, &log_interval_ms, "committed offsets", rd_kafka_err2str(err));
        sleep_unless_abandoned(rt, 100);
    }
    return false;
}

/* The output topics' schemas registered in the schema registry (hs/schema_registry.h), their values framed
 * from then on; retried while the registry cannot be reached (not ready meanwhile: "schema registry
 * unreachable"), after a back-off that doubles up to 30 s. A refusal (credentials, an incompatible schema)
 * stops the service. Before the producer's first record: nothing is produced bare by mistake. */
static bool connect_schemas(runtime *rt, connect_job *job)
{
    hs_schema_registry_options options = {
        .url = hs_config_string(rt->config, "schema-registry-url"),
        .user_info = hs_config_string(rt->config, "schema-registry-basic-auth-user-info"),
        .bearer_token = hs_config_string(rt->config, "schema-registry-bearer-auth-token"),
        .ca_location = hs_config_string(rt->config, "schema-registry-ssl-ca-location"),
        .timeout_ms = 10000,
    };
    uint64_t backoff_ms = RECONNECT_BACKOFF_MS;
    int attempts = 0;
    while (!atomic_load(&rt->abandon)) {
        hs_error error = {0};
        hs_err err = hs_schema_registry_register(&options, rt->outputs, rt->output_cnt, &error);
        if (err == HS_OK) {
            job->schemas_pending = false;
            atomic_store(&rt->kafka_not_ready, "connecting to Kafka");
            for (size_t i = 0; i < rt->output_cnt; i++)
                if (rt->outputs[i]->value_type)
                    hs_log(HS_LOG_INFO, "schema registered", "{s:s, s:s, s:i}", "topic", rt->outputs[i]->name,
                           "subject_suffix", "-value", "schema_id", (int)hs_wire_schema_id(rt->outputs[i]));
            return true;
        }
        if (err != HS_ERR_IO) {
            job->err = err;
            job->error = error;
            return false;
        }
        attempts++;
        atomic_store(&rt->kafka_not_ready, "schema registry unreachable");
        hs_log(HS_LOG_WARN, "schema registry unreachable, still trying", "{s:s, s:i, s:I}", "error",
               error.message, "attempts", attempts, "backoff_ms", (json_int_t)backoff_ms);
        sleep_unless_abandoned(rt, backoff_ms);
        backoff_ms = backoff_ms * 2 < RECONNECT_BACKOFF_MAX_MS ? backoff_ms * 2 : RECONNECT_BACKOFF_MAX_MS;
    }
    return false;
}

/* The connect thread (connect_job). */
static void connect_main(void *arg)
{
    runtime *rt = arg;
    connect_job *job = &rt->connect;
    if (job->old_producer) {
        /* Its transaction is lost anyway; nothing it still holds may be sent. */
        rd_kafka_purge(job->old_producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_destroy(job->old_producer);
        job->old_producer = NULL;
    }
    if (job->schemas_pending && !connect_schemas(rt, job)) {
        if (job->producer)
            rd_kafka_destroy(job->producer);
        job->producer = NULL;
    } else if (connect_init(rt, job) && job->committed && !connect_committed(rt, job)) {
        rd_kafka_destroy(job->producer); /* abandoned */
        job->producer = NULL;
    }
    if (job->err == HS_OK && atomic_load(&rt->abandon) && job->producer) {
        rd_kafka_destroy(job->producer);
        job->producer = NULL;
    }
    atomic_store(&job->finished, true);
    uv_async_send(&rt->connect_done);
}

/* Starts the connect thread: `fresh` is the producer to initialise (start-up) or NULL; `old` the failed one
 * to destroy first and `committed` the partitions to read the committed offsets of (recovery). */
static void connect_start(runtime *rt, rd_kafka_t *fresh, rd_kafka_t *old,
                          rd_kafka_topic_partition_list_t *committed)
{
    connect_job *job = &rt->connect;
    assert(!job->running);
    job->producer = fresh;
    job->old_producer = old;
    job->committed = committed;
    job->err = HS_OK;
    job->error = (hs_error){0};
    job->attempts = 0;
    job->schemas_pending =
        !old && !rt->schemas_registered && *hs_config_string(rt->config, "schema-registry-url");
    rt->schemas_registered = rt->schemas_registered || job->schemas_pending;
    job->started_ns = now_ns();
    atomic_store(&job->finished, false);
    job->running = true;
    atomic_store(&rt->kafka_not_ready, old ? "replacing the transactional producer" : "connecting to Kafka");
    job->threaded = uv_thread_create(&job->thread, connect_main, rt) == 0;
    if (!job->threaded)
        connect_main(rt); /* no thread to be had: wait here */
}

/* Waits for the connect thread; what it made is left in rt->connect. */
static void connect_join(runtime *rt)
{
    connect_job *job = &rt->connect;
    if (!job->running)
        return;
    if (job->threaded)
        uv_thread_join(&job->thread);
    job->running = false;
    atomic_store(&rt->kafka_not_ready, NULL);
}

/* The assigned partitions, to read their committed offsets. */
static rd_kafka_topic_partition_list_t *assigned_partitions(const runtime *rt)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
    for (size_t p = 0; p < rt->part_cap; p++)
        for (size_t i = 0; rt->parts[p] && i < rt->input_cnt; i++)
            if (rt->parts[p]->assigned[i])
                rd_kafka_topic_partition_list_add(list, rt->inputs[i]->name, rt->parts[p]->partition);
    return list;
}

/* Replaces the failed producer: consuming stops, the connect thread destroys it, makes a new one and reads
 * the committed offsets; on_connect_done() rewinds every partition to them and consumes on. */
static void recovery_start(runtime *rt, const char *reason)
{
    assert(rt->txn != TXN_COMMITTING && rt->txn != TXN_RECOVERING);
    hs_log(HS_LOG_WARN, "replacing the transactional producer after a fatal error", "{s:s}", "error", reason);
    discard_deferred(rt);
    rt->next_txn = rt->commit_due = false;
    rt->txn_records = 0;
    rt->txn = TXN_RECOVERING;
    rt->rewinds++; /* what was consumed since the last commit is consumed again */
    consume_pause(rt);
    uv_poll_stop(&rt->producer_wake.poll);
    rd_kafka_queue_destroy(rt->producer_queue);
    rt->producer_queue = NULL;
    rd_kafka_t *old = rt->producer;
    rt->producer = NULL;
    connect_start(rt, NULL, old, assigned_partitions(rt));
}

/* The producer raised a fatal error (`detail`: where it surfaced). librdkafka reports a fencing the same way
 * (RD_KAFKA_RESP_ERR__FENCED) whoever bumped the producer's epoch, so its cause is told by the age of the
 * transaction: the broker aborts a transaction for its age only once it is older than
 * transaction.timeout.ms. Fenced younger than that: another instance with the same transactional.id has
 * initialised, and this one, the zombie, stops (exit 1). Fenced older (the broker was away or restarted
 * while the transaction ran), or any other fatal error but a refused authorisation: the producer is
 * replaced and everything since the last commit consumed again, as after an abort. */
static void producer_failed(runtime *rt, uint64_t txn_begun_ns, const char *detail)
{
    char reason[512];
    rd_kafka_resp_err_t code = rd_kafka_fatal_error(rt->producer, reason, sizeof reason);
    if (!code)
        snprintf(reason, sizeof reason, "%s", detail);
    double age_ms = txn_begun_ns ? (double)(now_ns() - txn_begun_ns) / 1e6 : 0;
    if (code == RD_KAFKA_RESP_ERR__FENCED && age_ms < (double)rt->txn_timeout_ms) {
        hs_log(HS_LOG_ERROR, "fenced by another instance with the same transactional.id (--instance-id)",
               "{s:f, s:I}", "transaction_age_ms", age_ms, "transaction_timeout_ms",
               (json_int_t)rt->txn_timeout_ms);
        fatal(rt, "stopping: this instance is a zombie", reason);
        return;
    }
    if (code == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED ||
        code == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED) {
        fatal(rt, "not authorised for transactions", reason);
        return;
    }
    recovery_start(rt, reason);
}

/* Acts on a fatal error the producer raised since the last look: librdkafka reports it to the error callback
 * and fails every call on the producer from then on. Called between records, on the producer's wake and on
 * the commit timer. Returns whether the producer can be used. */
static bool producer_check(runtime *rt)
{
    if (rt->txn == TXN_RECOVERING || !rt->producer)
        return false;
    if (!rd_kafka_fatal_error(rt->producer, NULL, 0))
        return true;
    if (rt->txn == TXN_COMMITTING)
        consume_pause(rt); /* the commit fails with it, and commit_complete() acts */
    else
        producer_failed(rt, rt->txn == TXN_OPEN ? rt->txn_begun_ns : 0, "fatal error");
    return false;
}

/* The connect thread is done: at start-up the consumers start; after a recovery every partition is rewound
 * to its committed offset with the new producer. */
static void on_connect_done(uv_async_t *handle)
{
    runtime *rt = handle->data;
    connect_job *job = &rt->connect;
    if (!job->running || !atomic_load(&job->finished))
        return;
    connect_join(rt);
    rd_kafka_topic_partition_list_t *committed = job->committed;
    job->committed = NULL;
    if (job->err != HS_OK) {
        fatal(rt,
              job->schemas_pending ? "cannot register the output schemas"
                                   : "cannot start the transactional producer",
              job->error.message);
        if (job->err == HS_ERR_CONFIG)
            rt->exit_code = HS_EXIT_CONFIG;
    } else if (job->producer && !rt->stopping) {
        rt->producer = job->producer;
        job->producer = NULL;
        rt->producer_queue = rd_kafka_queue_get_main(rt->producer);
        if (!committed) {
            hs_log(HS_LOG_INFO, "transactions initialised", "{s:f, s:i}", "seconds",
                   (double)(now_ns() - job->started_ns) / 1e9, "attempts", job->attempts);
            finish_start(rt);
        } else {
            rd_kafka_queue_io_event_enable(rt->producer_queue, rt->producer_wake.fds[1], "1", 1);
            uv_poll_start(&rt->producer_wake.poll, UV_READABLE, on_producer_wake);
            for (int k = 0; k < committed->cnt; k++) {
                rd_kafka_topic_partition_t *tp = &committed->elems[k];
                part_state *ps = rt->parts[tp->partition];
                int i = input_index(rt, tp->topic);
                /* The broker's word, or what this instance knows it committed when the broker has less (the
                 * embedded broker keeps no offsets sent in a transaction). */
                if (ps && i >= 0 && tp->offset > ps->committed_offset[i])
                    take_committed(ps, i, tp); /* with the rule-set digest that commit carried */
            }
            rt->txn = TXN_NONE;
            hs_counter_add(rt->producer_recoveries, 1);
            hs_log(HS_LOG_INFO, "transactional producer replaced, rewinding", "{s:f, s:i}", "seconds",
                   (double)(now_ns() - job->started_ns) / 1e9, "attempts", job->attempts);
            rewind_all(rt);
            consume_resume(rt);
        }
    }
    if (committed)
        rd_kafka_topic_partition_list_destroy(committed);
}

/* --- emitting --------------------------------------------------------------------------------------------
 */

typedef struct runtime_emit {
    hs_emit base; /* first: the calculation sees only this */
    runtime *rt;
    part_state *ps;
    bool silent;            /* rebuilding: update the last-emitted table only */
    bool force;             /* reconciling: emit even what the last-emitted table holds already */
    char cause[HS_KEY_MAX]; /* input topic/partition/offset: with the output key, the output's event id */
} runtime_emit;

static hs_err produce_output(runtime *rt, size_t i, const char *key, const uint8_t *bytes, size_t len,
                             const char *cause, hs_error *error)
{
    const hs_topic *topic = rt->outputs[i];
    hs_event_meta meta = rt->output_meta[i];
    hs_event_id(meta.id, topic->name, key, cause, strlen(cause));
    char group[HS_KEY_MAX];
    if (hs_topic_group_of_key(topic, key, group, error) != HS_OK)
        return error->code;
    for (;;) {
        hs_event_meta attempt = meta;
        hs_err err = hs_kafka_produce_packed(rt->producer, topic, key, group, bytes, len, &attempt, error);
        if (err != HS_ERR_TIMEOUT) /* queue full: let deliveries drain, then retry */
            return err;
        rd_kafka_poll(rt->producer, 10);
    }
}

static size_t deferred_align(size_t n)
{
    const size_t a = _Alignof(deferred_output);
    return (n + a - 1) / a * a;
}

/* Appends an output (or, filled in by the caller, a dead letter) to the deferred buffer; NULL when out of
 * memory. */
static deferred_output *defer_record(deferred_buffer *b, size_t i, const char *key, size_t key_len,
                                     const uint8_t *bytes, size_t len, const char *cause)
{
    size_t cause_len = strlen(cause);
    size_t start = deferred_align(b->len);
    size_t need = start + sizeof(deferred_output) + key_len + 1 + cause_len + 1 + len;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : (size_t)64 * 1024;
        while (cap < need)
            cap *= 2;
        uint8_t *data = realloc(b->data, cap);
        if (!data)
            return NULL;
        b->data = data;
        b->cap = cap;
    }
    deferred_output *d = (deferred_output *)(b->data + start);
    *d = (deferred_output){.output = (uint32_t)i,
                           .key_len = (uint32_t)key_len,
                           .cause_len = (uint32_t)cause_len,
                           .deletion = !bytes,
                           .value_len = len};
    char *text = (char *)(d + 1);
    if (key_len)
        memcpy(text, key, key_len);
    text[key_len] = '\0';
    memcpy(text + key_len + 1, cause, cause_len + 1);
    if (bytes && len)
        memcpy(text + key_len + 1 + cause_len + 1, bytes, len);
    b->len = need;
    return d;
}

static hs_err defer_output(deferred_buffer *b, size_t i, const char *key, const uint8_t *bytes, size_t len,
                           const char *cause)
{
    return defer_record(b, i, key, strlen(key), bytes, len, cause) ? HS_OK : HS_ERR_NOMEM;
}

/* Produces an output into the open transaction, or defers it to the next one while a commit is in flight.
 * `bytes` is the value packed (NULL for a deletion); the caller keeps them. */
static hs_err emit_output(runtime *rt, size_t i, const char *key, const uint8_t *bytes, size_t len,
                          const char *cause)
{
    if (!txn_begin(rt))
        return HS_ERR_KAFKA;
    if (rt->txn == TXN_COMMITTING)
        return defer_output(&rt->deferred, i, key, bytes, len, cause);
    const hs_topic *topic = rt->outputs[i];
    hs_error error;
    hs_err err = produce_output(rt, i, key, bytes, len, cause, &error);
    if (err) {
        hs_log(HS_LOG_ERROR, "cannot produce an output", "{s:s, s:s, s:s}", "topic", topic->name, "key", key,
               "error", error.message);
        return err;
    }
    hs_counter_add(rt->records_out[i], 1);
    return HS_OK;
}

/* Produces the outputs deferred while the last commit ran into the transaction that has just begun. */
static void produce_deferred(runtime *rt)
{
    assert(rt->txn == TXN_OPEN);
    hs_err err = HS_OK;
    deferred_buffer *b = &rt->deferred;
    /* The transaction is open, so emit_output() produces at once and never appends to the buffer. */
    for (size_t at = 0; at < b->len && err == HS_OK;) {
        const deferred_output *d = (const deferred_output *)(b->data + at);
        const char *key = (const char *)(d + 1);
        const char *cause = key + d->key_len + 1;
        const uint8_t *value = (const uint8_t *)cause + d->cause_len + 1;
        if (d->output == DEFERRED_DEAD_LETTER)
            dead_letter_produce(rt, d->source_topic, d->source_partition, d->source_offset,
                                d->has_key ? key : NULL, d->key_len, d->deletion ? NULL : value, d->value_len,
                                d->code, cause);
        else
            err = emit_output(rt, d->output, key, d->deletion ? NULL : value, d->value_len, cause);
        at = deferred_align((size_t)(value + d->value_len - b->data));
    }
    discard_deferred(rt);
    if (err == HS_OK)
        return;
    /* The transaction now lacks outputs of records whose offsets it would commit: it must never commit. */
    txn_abort(rt, "cannot produce a deferred output");
    fatal(rt, "cannot produce a deferred output", hs_err_str(err));
}

/* A value of output `i`, packed: emitted unless its digest says the key holds these bytes already. */
static hs_err put_bytes(runtime_emit *emit, size_t i, const char *key, const uint8_t *bytes, size_t len)
{
    XXH128_canonical_t digest;
    XXH128_canonicalFromHash(&digest, XXH3_128bits(bytes, len));
    hs_table_change change = hs_table_put(&emit->ps->outputs[i], key, digest.digest, sizeof digest.digest);
    if (change == HS_TABLE_NOMEM)
        return HS_ERR_NOMEM;
    if ((change == HS_TABLE_UNCHANGED && !emit->force) || emit->silent)
        return HS_OK;
    return emit_output(emit->rt, i, key, bytes, len, emit->cause);
}

/* The last-emitted table keeps a 128-bit XXH3 digest of each output's packed bytes, not the bytes: it is only
 * ever compared, a digest is a fraction of a value's size, and two different values share one with a
 * probability (about 2^-128 per pair) far below that of a memory error. */
static hs_err runtime_put(hs_emit *base, const hs_topic *topic, const char *key,
                          const ProtobufCMessage *value)
{
    runtime_emit *emit = (runtime_emit *)base;
    runtime *rt = emit->rt;
    int i = output_index(rt, topic);
    if (i < 0 || (value && value->descriptor != topic->value_type))
        return HS_ERR_INTERNAL;
    hs_table *outputs = &emit->ps->outputs[i];

    if (!value) {
        if ((!hs_table_delete(outputs, key) && !emit->force) || emit->silent)
            return HS_OK;
        return emit_output(rt, (size_t)i, key, NULL, 0, emit->cause);
    }
    uint8_t small[512];
    size_t len = protobuf_c_message_get_packed_size(value);
    uint8_t *bytes = len <= sizeof small ? small : malloc(len);
    if (!bytes)
        return HS_ERR_NOMEM;
    protobuf_c_message_pack(value, bytes);
    hs_err err = put_bytes(emit, (size_t)i, key, bytes, len);
    if (bytes != small)
        free(bytes);
    return err;
}

/* runtime_put() of a value the calculation has packed already (the alert store does). */
static hs_err runtime_put_packed(hs_emit *base, const hs_topic *topic, const char *key, const uint8_t *bytes,
                                 size_t len)
{
    runtime_emit *emit = (runtime_emit *)base;
    int i = output_index(emit->rt, topic);
    if (i < 0 || !bytes) /* a deletion goes through put */
        return HS_ERR_INTERNAL;
    return put_bytes(emit, (size_t)i, key, bytes, len);
}

/* --- partition state -------------------------------------------------------------------------------------
 */

static void state_reset(runtime *rt, part_state *ps)
{
    if (ps->calc_state)
        rt->calc->destroy(ps->calc_state);
    ps->calc_state = rt->calc->create();
    for (size_t i = 0; i < rt->output_cnt; i++) {
        hs_table_free(&ps->outputs[i]);
        hs_table_init(&ps->outputs[i]);
    }
    ps->rebuild_started_ns = now_ns();
}

static part_state *state_get(runtime *rt, int32_t partition, bool create)
{
    if ((size_t)partition >= rt->part_cap) {
        if (!create)
            return NULL;
        size_t cap = (size_t)partition + 1;
        part_state **parts = realloc(rt->parts, cap * sizeof(part_state *));
        if (!parts)
            return NULL;
        memset(parts + rt->part_cap, 0, (cap - rt->part_cap) * sizeof(part_state *));
        rt->parts = parts;
        rt->part_cap = cap;
    }
    if (!rt->parts[partition] && create) {
        part_state *ps = calloc(1, sizeof *ps);
        if (!ps)
            return NULL;
        ps->partition = partition;
        for (size_t i = 0; i < MAX_INPUTS; i++)
            ps->next_offset[i] = ps->committed_offset[i] = -1;
        ps->committed_rules_dlq = ps->rules_dlq_next = -1;
        state_reset(rt, ps);
        rt->parts[partition] = ps;
    }
    return rt->parts[partition];
}

static void state_free(runtime *rt, part_state *ps)
{
    hs_table_free(&ps->applied);
    hs_table_free(&ps->retracting);
    if (ps->calc_state)
        rt->calc->destroy(ps->calc_state);
    for (size_t i = 0; i < rt->output_cnt; i++)
        hs_table_free(&ps->outputs[i]);
    free(ps);
}

static bool state_has_inputs(const runtime *rt, const part_state *ps)
{
    for (size_t i = 0; i < rt->input_cnt; i++)
        if (ps->assigned[i])
            return true;
    return false;
}

/* Applies one rule of the rules table to the partition's state through `emit`. */
static void apply_rule_entry(runtime *rt, part_state *ps, const hs_table_entry *e, runtime_emit *emit)
{
    ProtobufCMessage *rule =
        hs_wire_unpack(&healthsignals__v1__rule__descriptor, NULL, e->value_len, e->value);
    if (!rule)
        return;
    hs_error error;
    if (rt->calc->apply(ps->calc_state, hs_topic_find(HS_TOPIC_RULES), e->key, rule, &emit->base, &error) !=
        HS_OK)
        hs_log(HS_LOG_WARN, "rule refused by the calculation", "{s:s, s:s}", "rule", e->key, "error",
               error.message);
    protobuf_c_message_free_unpacked(rule, NULL);
}

/* Every assigned input of the partition is live. */
static bool part_live(const runtime *rt, const part_state *ps)
{
    bool any = false;
    for (size_t i = 0; i < rt->input_cnt; i++) {
        if (ps->assigned[i] && !ps->live[i])
            return false;
        any |= ps->assigned[i];
    }
    return any;
}

/* What the partition's committed outputs reflect, from its inputs' committed offset metadata: known when
 * every assigned input carries the same digest. */
static void rules_from_commits(runtime *rt, part_state *ps)
{
    ps->output_rules_known = rt->calc->uses_rules;
    bool first = true, committed = false;
    for (size_t i = 0; i < rt->input_cnt; i++) {
        if (!ps->assigned[i])
            continue;
        if (!ps->committed_rules_known[i] || (!first && ps->committed_rules[i] != ps->output_rules))
            ps->output_rules_known = false;
        ps->output_rules = ps->committed_rules[i];
        committed |= ps->committed_rules_known[i] || ps->committed_offset[i] >= 0;
        first = false;
    }
    if (!committed) { /* nothing committed by the group: no output, so no rule reflected */
        ps->output_rules_known = rt->calc->uses_rules;
        ps->output_rules = 0;
    }
    ps->rules_dlq_next = ps->committed_rules_dlq;
}

/* --- the applied rules -----------------------------------------------------------------------------------
 * The digest in the commit says *whether* a partition's outputs reflect the current rules, not *which* rules
 * they reflect; without those, a rule deleted or narrowed while no instance had the partition live left its
 * outputs behind. So every service with rules keeps, in the compacted topic hs.applied-rules.v1, the rules
 * each partition of its consumer group has applied to its outputs — key group/partition/rule id, value the
 * rule's bytes, a tombstone when the rule is gone — written in the same transaction as the outputs they
 * explain and the offsets (with the digest) they are committed with. When a partition's state is (re)built,
 * its applied rules are read back first (read_committed, to the end of the group's partition of the topic);
 * if their digest is the committed one, the state is rebuilt with *them*, silently, and once live the
 * difference to the current rules is applied as a live change would be (RULES_WORK_DIFF): a rule gone is
 * deleted (its statuses deleted, its alerts resolved), a changed or new one applied, each writing its record
 * of the topic in the transaction of its outputs. A crash anywhere leaves committed outputs, applied rules
 * and digest that agree, so the restart applies exactly the difference still missing: every output affected
 * once. If they do not agree (offsets committed by an older version, a topic deleted), the partition is
 * rebuilt with the current rules and reconciled by emitting all of its outputs (RULES_WORK_RECONCILE), after
 * which its applied rules are written in full. */

/* The record key of rule `rule` in partition `partition`'s applied rules. */
static hs_err applied_key(const runtime *rt, int32_t partition, const char *rule, char out[HS_KEY_MAX],
                          hs_error *error)
{
    char number[16];
    snprintf(number, sizeof number, "%" PRId32, partition);
    const char *parts[] = {rt->group_id, number, rule};
    return hs_key_join(out, parts, 3, error);
}

/* The keys the running RULES_WORK_DIFF retracted leave `applied` (deleting while it is iterated would not
 * do: a delete may rehash the table). */
static void applied_flush(part_state *ps)
{
    if (!ps->retracting.count)
        return;
    size_t cursor = 0;
    const hs_table_entry *e;
    while ((e = hs_table_next(&ps->retracting, &cursor)))
        hs_table_delete(&ps->applied, e->key);
    hs_table_free(&ps->retracting);
    hs_table_init(&ps->retracting);
}

/* Records in the open transaction that the partition's outputs now reflect rule `key` as `bytes` (NULL: not
 * at all), and keeps `applied` and its digest in step (`deferred`: a deletion is only noted in `retracting`,
 * for a caller iterating `applied`). Returns false when the service cannot go on. */
static bool applied_write(runtime *rt, part_state *ps, const char *key, const void *bytes, size_t len,
                          const char *cause, bool deferred)
{
    if (!deferred)
        applied_flush(ps);
    const hs_table_entry *old = hs_table_get(&ps->applied, key);
    if (deferred && hs_table_get(&ps->retracting, key))
        old = NULL;
    if (bytes ? old && old->value_len == len && memcmp(old->value, bytes, len) == 0 : !old)
        return true;
    uint64_t old_digest = old ? rule_digest(key, old->value, old->value_len) : 0;
    char record_key[HS_KEY_MAX];
    hs_error error;
    if (applied_key(rt, ps->partition, key, record_key, &error) != HS_OK) {
        fatal(rt, "cannot record an applied rule (group id and rule id too long together)", error.message);
        return false;
    }
    if (emit_output(rt, (size_t)rt->applied_out, record_key, bytes, bytes ? len : 0, cause) != HS_OK) {
        if (producer_check(rt))
            fatal(rt, "cannot record an applied rule", key);
        return false;
    }
    hs_table_change change = HS_TABLE_UNCHANGED;
    if (bytes)
        change = hs_table_put(&ps->applied, key, bytes, len);
    else if (deferred)
        change = hs_table_put(&ps->retracting, key, "", 0);
    else
        hs_table_delete(&ps->applied, key);
    if (change == HS_TABLE_NOMEM) {
        fatal(rt, "out of memory recording an applied rule", key);
        return false;
    }
    ps->applied_digest += (bytes ? rule_digest(key, bytes, len) : 0) - old_digest;
    if (ps->output_rules_known)
        ps->output_rules = ps->applied_digest;
    return true;
}

/* The cause of the outputs a rule set's application emits, part of their event ids: it names the rule set,
 * so that an application redone after a crash gives the same ids. */
static void rules_cause(const runtime *rt, char out[HS_KEY_MAX])
{
    char meta[RULES_META_MAX];
    rules_meta_format(rt->rules_digest, -1, meta);
    snprintf(out, HS_KEY_MAX, "%s/%s", HS_TOPIC_RULES, meta);
}

/* After a reconciliation with the current rules: the applied rules become the current rules, in full. */
static bool applied_write_all(runtime *rt, part_state *ps)
{
    char cause[HS_KEY_MAX];
    rules_cause(rt, cause);
    size_t cursor = 0;
    const hs_table_entry *e;
    while ((e = hs_table_next(&ps->applied, &cursor)))
        if (!hs_table_get(&rt->rules, e->key) && !applied_write(rt, ps, e->key, NULL, 0, cause, true))
            return false;
    applied_flush(ps);
    for (cursor = 0; (e = hs_table_next(&rt->rules, &cursor));)
        if (!applied_write(rt, ps, e->key, e->value, e->value_len, cause, false))
            return false;
    return true;
}

/* The partition's state is to be (re)built: its applied rules are read back first, its inputs paused until
 * then (applied_read_start starts the reading for every partition waiting). */
static void applied_load_start(runtime *rt, part_state *ps)
{
    ps->applied_loading = true;
    ps->rules_work = RULES_WORK_NONE;
    inputs_pause(rt, ps, true);
}

/* Reads the group's partition of hs.applied-rules.v1 from its beginning for every partition waiting for its
 * applied rules (again from the beginning when one was already being read: a read serves them all). */
static void applied_read_start(runtime *rt)
{
    bool any = false;
    for (size_t p = 0; p < rt->part_cap; p++) {
        part_state *ps = rt->parts[p];
        if (!ps || !ps->applied_loading)
            continue;
        hs_table_free(&ps->applied);
        hs_table_init(&ps->applied);
        hs_table_free(&ps->retracting);
        hs_table_init(&ps->retracting);
        ps->applied_digest = 0;
        any = true;
    }
    if (!any || !rt->applied_consumer)
        return;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, HS_TOPIC_APPLIED_RULES,
                                      hs_topic_partition(hs_topic_find(HS_TOPIC_APPLIED_RULES), rt->group_id))
        ->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t err = rd_kafka_assign(rt->applied_consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err)
        fatal(rt, "cannot read hs.applied-rules.v1", rd_kafka_err2str(err));
}

/* One record of hs.applied-rules.v1: a rule applied to a partition of this group that waits for them. */
static void applied_record(runtime *rt, const rd_kafka_message_t *msg)
{
    char key[HS_KEY_MAX], storage[HS_KEY_MAX];
    char *parts[3];
    if (!msg->key || msg->key_len == 0 || msg->key_len >= HS_KEY_MAX)
        return;
    memcpy(key, msg->key, msg->key_len);
    key[msg->key_len] = '\0';
    if (hs_key_split(key, storage, parts, 3) != 3 || strcmp(parts[0], rt->group_id) != 0)
        return;
    char *end;
    long partition = strtol(parts[1], &end, 10);
    if (*end || partition < 0 || partition > INT32_MAX)
        return;
    part_state *ps = state_get(rt, (int32_t)partition, false);
    if (!ps || !ps->applied_loading)
        return;
    const hs_table_entry *old = hs_table_get(&ps->applied, parts[2]);
    uint64_t old_digest = old ? rule_digest(parts[2], old->value, old->value_len) : 0;
    if (msg->payload) {
        if (hs_table_put(&ps->applied, parts[2], msg->payload, msg->len) == HS_TABLE_NOMEM) {
            fatal(rt, "out of memory reading the applied rules", parts[2]);
            return;
        }
        ps->applied_digest += rule_digest(parts[2], msg->payload, msg->len) - old_digest;
    } else if (hs_table_delete(&ps->applied, parts[2])) {
        ps->applied_digest -= old_digest;
    }
}

static void partition_at_end(runtime *rt, part_state *ps, int i);
static void part_go_on(runtime *rt, part_state *ps);
static void input_go_on(runtime *rt, part_state *ps, size_t i);

/* The partition's applied rules are read: its state is built with them if they are what its committed
 * outputs reflect (the committed digest says so), else with the current rules; the inputs go on. */
static void applied_loaded(runtime *rt, part_state *ps)
{
    ps->applied_loading = false;
    if (ps->output_rules_known && ps->output_rules != ps->applied_digest)
        ps->output_rules_known = false;
    hs_log(HS_LOG_INFO, "applied rules read", "{s:i, s:i, s:s}", "partition", (int)ps->partition, "rules",
           (int)ps->applied.count, "outputs_reflect",
           ps->output_rules_known ? "these rules" : "unknown rules (reconciled once live)");
    part_go_on(rt, ps);
}

/* The partition has what it waited for (its committed offsets, its applied rules): what was fetched
 * meanwhile is fetched again, its inputs go on, its state gets its rules first. */
static void part_go_on(runtime *rt, part_state *ps)
{
    rules_work_fresh(rt, ps); /* the rules first (its inputs paused until then), or live now */
    for (size_t i = 0; i < rt->input_cnt; i++)
        if (ps->assigned[i])
            input_go_on(rt, ps, i);
}

/* The end of the group's partition of hs.applied-rules.v1: every partition waiting has its applied rules. */
static void applied_read_done(runtime *rt)
{
    for (size_t p = 0; p < rt->part_cap && !rt->stopping; p++)
        if (rt->parts[p] && rt->parts[p]->applied_loading)
            applied_loaded(rt, rt->parts[p]);
}

/* One record or event of hs.applied-rules.v1. */
static void applied_message(runtime *rt, const rd_kafka_message_t *msg)
{
    if (!msg->err)
        applied_record(rt, msg);
    else if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        applied_read_done(rt);
    else
        hs_log(HS_LOG_WARN, "reading the applied rules (does hs.applied-rules.v1 exist? hsctl topics create)",
               "{s:s}", "error", rd_kafka_message_errstr(msg));
}

/* hs.applied-rules.v1, read on the loop in slices like the rules. */
static void on_applied_wake(uv_poll_t *handle, int status, int events)
{
    runtime *rt = handle->data;
    serve_sliced(rt, rt->applied_consumer, &rt->applied_wake, applied_message);
}

static void rules_work_start(runtime *rt, part_state *ps, int work);
static void rules_dlq_catch_up(runtime *rt, part_state *ps);

/* Once a partition is live: if its committed outputs may have been computed with other rules than those its
 * state now holds (a rule changed while no instance had it live, or before the transaction with the change's
 * outputs committed), every rule is applied again and every output it determines emitted, whether or not it
 * differs from what the state holds; the transaction that commits the last of them carries the new digest.
 * The work is done in slices (on_rules_work); facts meanwhile are processed live as usual. */
static void rules_reconcile(runtime *rt, part_state *ps)
{
    if (!rt->calc->uses_rules || !part_live(rt, ps) || ps->rules_work != RULES_WORK_NONE ||
        ps->applied_loading || (ps->output_rules_known && ps->output_rules == rt->rules_digest))
        return;
    if (ps->output_rules_known) {
        hs_log(HS_LOG_INFO, "applying the rule changes the partition's outputs do not reflect yet",
               "{s:i, s:i, s:i}", "partition", (int)ps->partition, "applied", (int)ps->applied.count, "rules",
               (int)rt->rules.count);
        rules_work_start(rt, ps, RULES_WORK_DIFF);
        return;
    }
    hs_log(HS_LOG_INFO, "re-evaluating the partition against the current rules", "{s:i, s:s, s:i}",
           "partition", (int)ps->partition, "committed",
           ps->output_rules_known ? "other rules" : "no rules digest", "rules", (int)rt->rules.count);
    rules_work_start(rt, ps, RULES_WORK_RECONCILE);
}

/* The inputs of a partition, paused (no fetching, so no fact) or resumed. */
static void inputs_pause(runtime *rt, const part_state *ps, bool pause)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)rt->input_cnt);
    for (size_t i = 0; i < rt->input_cnt; i++)
        if (ps->assigned[i])
            rd_kafka_topic_partition_list_add(list, rt->inputs[i]->name, ps->partition);
    rd_kafka_resp_err_t err = pause ? rd_kafka_pause_partitions(rt->consumer, list)
                                    : rd_kafka_resume_partitions(rt->consumer, list);
    if (err)
        fatal(rt, pause ? "cannot pause a partition" : "cannot resume a partition", rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(list);
}

/* A fresh partition state needs every rule before any fact: its inputs wait, paused, until the slices have
 * applied them; then the inputs with nothing to rebuild go live. */
static void rules_work_fresh(runtime *rt, part_state *ps)
{
    /* Known: built with the rules its outputs reflect (the difference comes once live); else the current. */
    size_t rules = ps->output_rules_known ? ps->applied.count : rt->rules.count;
    if (rt->calc->uses_rules && rules) {
        rules_work_start(rt, ps, RULES_WORK_FRESH);
        inputs_pause(rt, ps, true);
        return;
    }
    for (size_t i = 0; i < rt->input_cnt; i++)
        if (ps->assigned[i] && ps->rebuild_end[i] == 0)
            mark_live(rt, ps, (int)i);
}

static void rules_work_start(runtime *rt, part_state *ps, int work)
{
    ps->rules_work = work;
    ps->rules_cursor = 0;
    ps->rules_work_version = rt->rules_version;
    ps->diff_phase = 0;
    if (!rt->rules_work_active) {
        uv_idle_start(&rt->rules_work, on_rules_work);
        rt->rules_work_active = true;
    }
    if (work == RULES_WORK_RECONCILE || work == RULES_WORK_DIFF)
        txn_begin(rt); /* the digest must be committed even when no output changes */
}

/* The partition's rule work is through: a fresh state lets its facts in, a reconciled one records that its
 * outputs (those of the open transaction) reflect the rules. */
static void rules_work_done(runtime *rt, part_state *ps)
{
    int work = ps->rules_work;
    ps->rules_work = RULES_WORK_NONE;
    if (work == RULES_WORK_FRESH) {
        inputs_pause(rt, ps, false);
        for (size_t i = 0; i < rt->input_cnt; i++)
            if (ps->assigned[i] && ps->rebuild_end[i] == 0)
                mark_live(rt, ps, (int)i);
    } else {
        /* Reconciled: the outputs reflect the current rules, which become its applied rules in full. A
         * difference applied: they are already. */
        if (work == RULES_WORK_RECONCILE && !applied_write_all(rt, ps))
            return;
        ps->output_rules = ps->applied_digest;
        ps->output_rules_known = true;
        txn_begin(rt);
        rules_dlq_catch_up(rt, ps);
    }
}

/* RULES_WORK_DIFF until `deadline_ns` (0: to the end): the rules the partition's outputs reflect become the
 * current ones, as live changes — first every applied rule that is gone is deleted, then every new or changed
 * rule applied — each with its record of hs.applied-rules.v1 in the transaction of its outputs. */
static bool rules_diff_step(runtime *rt, part_state *ps, uint64_t deadline_ns)
{
    if (ps->rules_work_version != rt->rules_version) {
        ps->rules_cursor = 0;
        ps->diff_phase = 0;
        ps->rules_work_version = rt->rules_version;
    }
    runtime_emit emit = {.base = {.put = runtime_put, .put_packed = runtime_put_packed}, .rt = rt, .ps = ps};
    rules_cause(rt, emit.cause);
    const hs_topic *rules_topic = hs_topic_find(HS_TOPIC_RULES);
    uint64_t rewinds = rt->rewinds;
    const hs_table_entry *e;
    if (ps->diff_phase == 0) {
        while ((e = hs_table_next(&ps->applied, &ps->rules_cursor))) {
            if (hs_table_get(&rt->rules, e->key) || hs_table_get(&ps->retracting, e->key))
                continue;
            char key[HS_KEY_MAX];
            snprintf(key, sizeof key, "%s", e->key);
            hs_error error;
            if (rt->calc->apply(ps->calc_state, rules_topic, key, NULL, &emit.base, &error) != HS_OK)
                hs_log(HS_LOG_WARN, "rule deletion refused by the calculation", "{s:s, s:s}", "rule", key,
                       "error", error.message);
            if (rt->rewinds != rewinds || rt->stopping ||
                !applied_write(rt, ps, key, NULL, 0, emit.cause, true) || rt->rewinds != rewinds)
                return false;
            hs_log(HS_LOG_INFO, "rule deleted while the partition was not live: its outputs retracted",
                   "{s:s, s:i}", "rule", key, "partition", (int)ps->partition);
            if (deadline_ns && now_ns() >= deadline_ns)
                return false;
        }
        applied_flush(ps);
        ps->diff_phase = 1;
        ps->rules_cursor = 0;
    }
    while ((e = hs_table_next(&rt->rules, &ps->rules_cursor))) {
        const hs_table_entry *a = hs_table_get(&ps->applied, e->key);
        if (a && a->value_len == e->value_len && memcmp(a->value, e->value, e->value_len) == 0)
            continue;
        apply_rule_entry(rt, ps, e, &emit);
        if (rt->rewinds != rewinds || rt->stopping ||
            !applied_write(rt, ps, e->key, e->value, e->value_len, emit.cause, false) ||
            rt->rewinds != rewinds)
            return false;
        if (deadline_ns && now_ns() >= deadline_ns)
            return false;
    }
    return true;
}

/* Applies the partition's next rules until `deadline_ns` (0: all of them); returns true when its work is
 * through. A change of the rules table since the work began starts it again from the first rule (applying a
 * rule twice is harmless; skipping one is not, and a changed table's iteration order is not the old one). */
static bool rules_work_step(runtime *rt, part_state *ps, uint64_t deadline_ns)
{
    if (ps->rules_work == RULES_WORK_DIFF)
        return rules_diff_step(rt, ps, deadline_ns);
    if (ps->rules_work_version != rt->rules_version) {
        ps->rules_cursor = 0;
        ps->rules_work_version = rt->rules_version;
    }
    runtime_emit emit = {.base = {.put = runtime_put, .put_packed = runtime_put_packed},
                         .rt = rt,
                         .ps = ps,
                         .silent = ps->rules_work == RULES_WORK_FRESH,
                         .force = ps->rules_work == RULES_WORK_RECONCILE};
    if (emit.force) /* the cause names the rule set: a reconciliation redone gives the same event ids */
        rules_cause(rt, emit.cause);
    /* A fresh state whose outputs reflect known rules is built with those (RULES_WORK_DIFF follows). */
    const hs_table *rules =
        ps->rules_work == RULES_WORK_FRESH && ps->output_rules_known ? &ps->applied : &rt->rules;
    const hs_table_entry *e;
    uint64_t rewinds = rt->rewinds;
    while ((e = hs_table_next(rules, &ps->rules_cursor))) {
        apply_rule_entry(rt, ps, e, &emit);
        if (rt->rewinds != rewinds || rt->stopping)
            return false; /* an emit waited for a failed commit: everything was rewound */
        if (deadline_ns && now_ns() >= deadline_ns)
            return false;
    }
    return true;
}

/* Finishes the partition's rule work now, for a fact or the end of a partition met before the slices did
 * (a record fetched before the pause). */
static void rules_work_finish(runtime *rt, part_state *ps)
{
    if (ps->rules_work != RULES_WORK_NONE && rules_work_step(rt, ps, 0))
        rules_work_done(rt, ps);
}

/* One slice of rule work: RULES_SLICE_NS of it, partition after partition; stops when none is left. */
static void on_rules_work(uv_idle_t *handle)
{
    runtime *rt = handle->data;
    if (rt->txn ==
        TXN_RECOVERING) { /* nothing can be emitted; the rewind that ends it starts the work again */
        uv_idle_stop(&rt->rules_work);
        rt->rules_work_active = false;
        return;
    }
    uint64_t deadline = now_ns() + RULES_SLICE_NS;
    bool left = false;
    for (size_t p = 0; p < rt->part_cap && !rt->stopping; p++) {
        part_state *ps = rt->parts[p];
        if (!ps || ps->rules_work == RULES_WORK_NONE)
            continue;
        if (now_ns() < deadline && rules_work_step(rt, ps, deadline))
            rules_work_done(rt, ps);
        else
            left = true;
        /* a rewind (in a step, or in what done started) gave other partitions work again */
        left |= ps == rt->parts[p] && ps->rules_work != RULES_WORK_NONE;
    }
    for (size_t p = 0; p < rt->part_cap && !left; p++)
        left = rt->parts[p] && rt->parts[p]->rules_work != RULES_WORK_NONE;
    if (!left) {
        uv_idle_stop(&rt->rules_work);
        rt->rules_work_active = false;
    }
}

/* Bad rules are dead-lettered once per service (per consumer group), not once per instance: by the
 * instance that has partition 0 of the first input live, in that partition's transactions, whose committed
 * offset records how far hs.rules.v1 has been searched (committed_rules_dlq). NULL when this instance is not
 * that one now. */
static part_state *rules_dlq_owner(const runtime *rt)
{
    part_state *ps = rt->part_cap ? rt->parts[0] : NULL;
    return ps && ps->assigned[0] && part_live(rt, ps) && ps->output_rules_known ? ps : NULL;
}

/* A partition is live: reconcile its outputs with the rules, and see to the rules' dead letters. */
static void part_went_live(runtime *rt, part_state *ps)
{
    rules_reconcile(rt, ps);
    rules_dlq_catch_up(rt, ps);
}

/* When the partition is the dead-letter owner and the rules read so far go beyond what its commits have
 * searched for bad rules: reads hs.rules.v1 again from there (process_rule only dead-letters what it reads
 * again). */
static void rules_dlq_catch_up(runtime *rt, part_state *ps)
{
    if (!rt->rules_consumer || rules_dlq_owner(rt) != ps)
        return;
    if (ps->rules_dlq_next < 0)
        ps->rules_dlq_next = 0;
    if (ps->rules_dlq_next >= rt->rules_read_end)
        return;
    hs_log(HS_LOG_INFO, "reading the rules again for bad ones to dead-letter", "{s:I, s:I}", "from",
           (json_int_t)ps->rules_dlq_next, "to", (json_int_t)rt->rules_read_end);
    rd_kafka_topic_partition_list_t *seek = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(seek, HS_TOPIC_RULES, 0)->offset = ps->rules_dlq_next;
    rd_kafka_error_t *error = rd_kafka_seek_partitions(rt->rules_consumer, seek, OP_TIMEOUT_MS);
    if (error) {
        fatal(rt, "cannot read the rules again", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    rd_kafka_topic_partition_list_destroy(seek);
}

static void mark_live(runtime *rt, part_state *ps, int i)
{
    if (ps->live[i])
        return;
    ps->live[i] = true;
    double seconds = (double)(now_ns() - ps->rebuild_started_ns) / 1e9;
    hs_gauge_set(rt->rebuild_seconds, seconds);
    hs_log(HS_LOG_INFO, "partition rebuilt, now live", "{s:s, s:i, s:I, s:f}", "topic", rt->inputs[i]->name,
           "partition", (int)ps->partition, "committed_offset", (json_int_t)ps->rebuild_end[i], "seconds",
           seconds);
    part_went_live(rt, ps);
}

/* --- dead letters ----------------------------------------------------------------------------------------
 */

/* The CloudEvents headers of a dead letter: an event of its own type from this service, about the record at
 * topic/partition/offset (its id derives from that position, so a dead letter produced again after an
 * aborted transaction keeps its id), whose subject is the rejected record's key and whose data are the
 * rejected bytes as they came (no schema: they may be anything). */
static void dead_letter_envelope(const runtime *rt, const char *topic, int32_t partition, int64_t offset,
                                 const void *key, size_t key_len, bool has_value, rd_kafka_headers_t *headers)
{
    hs_event_meta meta = {.type = HS_EVENT_TYPE_DEAD_LETTER};
    snprintf(meta.source, sizeof meta.source, "/healthsignals/%s", rt->calc->name);
    char position[HS_KEY_MAX];
    snprintf(position, sizeof position, "%s/%s/%" PRId32 "/%" PRId64, rt->calc->name, topic, partition,
             offset);
    hs_event_id(meta.id, rt->dlq->name, "", position, strlen(position));
    hs_event_time_now(meta.time);
    hs_event_add_headers(headers, &meta, NULL, false);
    if (key)
        rd_kafka_header_add(headers, "ce_subject", -1, key, (ssize_t)key_len);
    if (has_value)
        rd_kafka_header_add(headers, "content-type", -1, "application/octet-stream", -1);
}

/* Produces a dead letter into the open transaction. */
static void dead_letter_produce(runtime *rt, const char *topic, int32_t source_partition,
                                int64_t source_offset, const void *key, size_t key_len, const void *value,
                                size_t value_len, hs_err code, const char *reason)
{
    char partition[16], offset[32];
    snprintf(partition, sizeof partition, "%" PRId32, source_partition);
    snprintf(offset, sizeof offset, "%" PRId64, source_offset);
    rd_kafka_headers_t *headers = rd_kafka_headers_new(16);
    dead_letter_envelope(rt, topic, source_partition, source_offset, key, key_len, value != NULL, headers);
    rd_kafka_header_add(headers, "hs-error-code", -1, hs_err_name(code), -1);
    rd_kafka_header_add(headers, "hs-error", -1, reason, -1);
    rd_kafka_header_add(headers, "hs-source-topic", -1, topic, -1);
    rd_kafka_header_add(headers, "hs-source-partition", -1, partition, -1);
    rd_kafka_header_add(headers, "hs-source-offset", -1, offset, -1);
    rd_kafka_header_add(headers, "hs-service", -1, rt->calc->name, -1);
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(rt->producer, RD_KAFKA_V_TOPIC(rt->dlq->name),
                                    RD_KAFKA_V_PARTITION(source_partition % rt->dlq->partitions),
                                    RD_KAFKA_V_KEY(key, key ? key_len : 0),
                                    RD_KAFKA_V_VALUE((void *)value, value ? value_len : 0),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
                                    RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(rt->producer, 10);
    if (err) {
        rd_kafka_headers_destroy(headers);
        hs_log(HS_LOG_ERROR, "cannot produce a dead letter", "{s:s}", "error", rd_kafka_err2str(err));
    }
}

/* A rejected record to hs.dlq.v1, in the open transaction — or, while a commit is in flight, deferred to the
 * next one like an output: the loop never waits for the commit (which waits for the broker for as long as it
 * is away). Either way it is committed with the offsets that pass the record, so exactly once: an abort
 * discards it with the rest and the record is met again. */
static void dead_letter(runtime *rt, const rd_kafka_message_t *msg, hs_err code, const char *reason)
{
    const char *topic = rd_kafka_topic_name(msg->rkt);
    const hs_topic *registered = hs_topic_find(topic);
    hs_log(HS_LOG_WARN, "record sent to the dead-letter queue", "{s:s, s:i, s:I, s:s, s:s}", "topic", topic,
           "partition", (int)msg->partition, "offset", (json_int_t)msg->offset, "code", hs_err_name(code),
           "error", reason);
    if (!registered || !txn_begin(rt))
        return;
    if (rt->txn == TXN_COMMITTING) {
        deferred_output *d =
            defer_record(&rt->deferred, DEFERRED_DEAD_LETTER, msg->key, msg->key ? msg->key_len : 0,
                         msg->payload, msg->payload ? msg->len : 0, reason);
        if (!d) {
            fatal(rt, "out of memory deferring a dead letter", NULL);
            return;
        }
        d->deletion = !msg->payload;
        d->has_key = msg->key != NULL;
        d->source_topic = registered->name;
        d->source_partition = msg->partition;
        d->source_offset = msg->offset;
        d->code = code;
    } else {
        dead_letter_produce(rt, registered->name, msg->partition, msg->offset, msg->key, msg->key_len,
                            msg->payload, msg->len, code, reason);
    }
    hs_counter_add(
        hs_metrics_counter_l(rt->metrics, "hs_records_dlq_total",
                             "Records sent to the dead-letter queue, by source topic and error code", "topic",
                             topic, "code", hs_err_name(code), NULL),
        1);
}

/* --- consuming -------------------------------------------------------------------------------------------
 */

/* "topic/partition/offset": which input record caused an output (part of its event id). What
 * snprintf("%s/%d/%lld") writes, without its cost on every record. */
static void format_cause(char *out, size_t size, const char *topic, int32_t partition, int64_t offset)
{
    size_t topic_len = strlen(topic);
    if (topic_len + 2 * (size_t)HS_U64_DIGITS_MAX + 3 > size || partition < 0 || offset < 0) {
        snprintf(out, size, "%s/%" PRId32 "/%" PRId64, topic, partition, offset);
        return;
    }
    memcpy(out, topic, topic_len);
    size_t n = topic_len;
    out[n++] = '/';
    n += hs_u64_digits(out + n, (uint64_t)partition);
    out[n++] = '/';
    n += hs_u64_digits(out + n, (uint64_t)offset);
    out[n] = '\0';
}

/* The record key of `msg`, as text, into `key`: HS_ERR_VALIDATION for a record without a key or with one
 * too long to be a fact's identity (hs/key.h), which the caller dead-letters. */
static hs_err record_key(const rd_kafka_message_t *msg, char key[HS_KEY_MAX], hs_error *error)
{
    if (!msg->key || msg->key_len == 0 || msg->key_len >= HS_KEY_MAX)
        return hs_error_set(error, HS_ERR_VALIDATION, "record key missing or longer than %d bytes",
                            HS_KEY_MAX - 1);
    memcpy(key, msg->key, msg->key_len);
    key[msg->key_len] = '\0';
    return HS_OK;
}

static void process_fact(runtime *rt, const rd_kafka_message_t *msg)
{
    const char *topic_name = rd_kafka_topic_name(msg->rkt);
    int i = input_index(rt, topic_name);
    part_state *ps = i >= 0 ? state_get(rt, msg->partition, false) : NULL;
    if (!ps || !ps->assigned[i])
        return; /* a record of a partition revoked a moment ago */
    if (ps->applied_loading || ps->build_pending || ps->offsets_pending[i]) {
        /* fetched before its inputs paused: fetched again once it has what it waits for */
        if (ps->dropped_from[i] < 0)
            ps->dropped_from[i] = msg->offset;
        return;
    }
    if (ps->rules_work == RULES_WORK_FRESH)
        rules_work_finish(rt, ps); /* fetched before its inputs paused: the rules come first */
    const hs_topic *topic = rt->inputs[i];
    bool silent = msg->offset < ps->rebuild_end[i];
    if (!silent)
        mark_live(rt, ps, i);
    hs_counter_add(rt->records_in[i], 1);

    char key[HS_KEY_MAX];
    hs_error error = {0};
    hs_err err;
    ProtobufCMessage *value = NULL;
    if ((err = record_key(msg, key, &error)) == HS_OK) {
        if (msg->payload) {
            err = hs_validate_size(msg->len, &error);
            const uint8_t *bytes = NULL;
            size_t len = 0;
            if (err == HS_OK) /* bare, or in Confluent's wire format (hs/wire.h) */
                err = hs_wire_payload(topic->value_type, msg->payload, msg->len, &bytes, &len, &error);
            if (err == HS_OK) {
                value = protobuf_c_message_unpack(topic->value_type, NULL, len, bytes);
                if (!value)
                    err = hs_error_set(&error, HS_ERR_DECODE, "value is not a valid %s",
                                       topic->value_type->name);
            }
            if (err == HS_OK)
                err = hs_validate_message(value, &error);
        }
        /* Admission: a record whose key is not its value's identity, or that is not on its grouping key's
         * partition, would be computed apart from the facts it belongs with (hs/topic.h). */
        if (err == HS_OK)
            err = hs_topic_admit(topic, msg->partition, key, value, &error);
    }
    if (err == HS_OK) {
        runtime_emit emit = {.base = {.put = runtime_put, .put_packed = runtime_put_packed},
                             .rt = rt,
                             .ps = ps,
                             .silent = silent};
        format_cause(emit.cause, sizeof emit.cause, topic_name, msg->partition, msg->offset);
        uint64_t started = now_ns();
        err = rt->calc->apply(ps->calc_state, topic, key, value, &emit.base, &error);
        hs_histogram_observe(rt->calc_seconds, (double)(now_ns() - started) / 1e9);
        if (err == HS_ERR_KAFKA || err == HS_ERR_NOMEM || err == HS_ERR_INTERNAL) {
            if (value)
                protobuf_c_message_free_unpacked(value, NULL);
            /* A producer that failed is replaced, and this record consumed again after the rewind. */
            if (err != HS_ERR_KAFKA || producer_check(rt))
                fatal(rt, "cannot apply a fact", hs_err_str(err));
            return;
        }
    }
    if (value)
        protobuf_c_message_free_unpacked(value, NULL);
    uint64_t rewinds = rt->rewinds;
    if (err != HS_OK && !silent) /* a bad record met during a rebuild was dead-lettered the first time */
        dead_letter(rt, msg, err, error.message);
    if (rt->rewinds != rewinds)
        return; /* the commit it waited for failed: this record is consumed again */

    ps->next_offset[i] = msg->offset + 1;
    if (!silent) {
        if (!txn_begin(rt))
            return;
        if (++rt->txn_records >= rt->commit_records)
            txn_commit_full(rt);
    }
}

/* At the end of the partition everything up to the committed offset has been read, even when the last
 * committed offsets are transaction markers that carry no record. */
static void partition_at_end(runtime *rt, part_state *ps, int i)
{
    if (ps->rules_work == RULES_WORK_FRESH)
        rules_work_finish(rt, ps);
    mark_live(rt, ps, i);
}

static void on_partition_eof(runtime *rt, const rd_kafka_message_t *msg)
{
    int i = input_index(rt, rd_kafka_topic_name(msg->rkt));
    part_state *ps = i >= 0 ? state_get(rt, msg->partition, false) : NULL;
    if (ps && ps->assigned[i] && (ps->applied_loading || ps->build_pending || ps->offsets_pending[i]))
        ps->eof_dropped[i] = true; /* met again once it has them */
    else if (ps && ps->assigned[i])
        partition_at_end(rt, ps, i);
}

/* Whether the partition waits for its committed offsets or its applied rules: records fetched meanwhile are
 * dropped (and fetched again). */
static bool part_waiting(const runtime *rt, const part_state *ps)
{
    if (ps->applied_loading)
        return true;
    for (size_t i = 0; i < rt->input_cnt; i++)
        if (ps->assigned[i] && ps->offsets_pending[i])
            return true;
    return false;
}

/* Asks for the committed offsets of every assigned partition waiting for them, on the offsets thread,
 * unless a reading is in flight (its end starts the next). */
static void offsets_start(runtime *rt)
{
    offsets_job *job = &rt->offsets;
    if (job->running || rt->stopping)
        return;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(16);
    for (size_t p = 0; p < rt->part_cap; p++)
        for (size_t i = 0; rt->parts[p] && i < rt->input_cnt; i++)
            if (rt->parts[p]->assigned[i] && rt->parts[p]->offsets_pending[i])
                rd_kafka_topic_partition_list_add(list, rt->inputs[i]->name, rt->parts[p]->partition);
    if (!list->cnt) {
        rd_kafka_topic_partition_list_destroy(list);
        return;
    }
    job->list = list;
    job->seq = ++rt->offsets_seq;
    job->attempts = 0;
    job->started_ns = now_ns();
    atomic_store(&job->finished, false);
    job->running = true;
    job->threaded = uv_thread_create(&job->thread, offsets_main, rt) == 0;
    if (!job->threaded)
        offsets_main(rt); /* no thread to be had: on the loop, as before */
}

/* The offsets thread: rd_kafka_committed() in 1 s slices until the broker answers or the service stops —
 * never an exit: the group coordinator has just answered, and the broker may come back. */
static void offsets_main(void *arg)
{
    runtime *rt = arg;
    offsets_job *job = &rt->offsets;
    uint64_t next_log_ms = 1000, log_interval_ms = 1000;
    while (!atomic_load(&rt->abandon)) {
        rd_kafka_resp_err_t err = rd_kafka_committed(rt->consumer, job->list, KAFKA_SLICE_MS);
        for (int k = 0; !err && k < job->list->cnt; k++)
            err = job->list->elems[k].err;
        if (!err)
            break;
        job->attempts++;
        uint64_t waited_ms = (now_ns() - job->started_ns) / 1000000u;
        if (waited_ms >= next_log_ms) {
            hs_log(HS_LOG_WARN, "cannot read the committed offsets yet, still trying", "{s:s, s:I, s:i}",
                   "error", rd_kafka_err2str(err), "waited_ms", (json_int_t)waited_ms, "attempts",
                   job->attempts);
            next_log_ms = waited_ms + log_interval_ms;
            log_interval_ms =
                log_interval_ms * 2 < UNREACHABLE_LOG_MAX_MS ? log_interval_ms * 2 : UNREACHABLE_LOG_MAX_MS;
        }
        sleep_unless_abandoned(rt, 100);
    }
    atomic_store(&job->finished, true);
    uv_async_send(&rt->offsets_done);
}

static void offsets_join(runtime *rt)
{
    offsets_job *job = &rt->offsets;
    if (job->running && job->threaded)
        uv_thread_join(&job->thread);
    job->running = false;
    if (job->list)
        rd_kafka_topic_partition_list_destroy(job->list);
    job->list = NULL;
}

/* An input of a partition that has waited: a record fetched meanwhile is fetched again, the end of the
 * partition met meanwhile is met now. */
static void input_go_on(runtime *rt, part_state *ps, size_t i)
{
    if (ps->dropped_from[i] >= 0) {
        rd_kafka_topic_partition_list_t *seek = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(seek, rt->inputs[i]->name, ps->partition)->offset =
            ps->dropped_from[i];
        rd_kafka_error_t *error = rd_kafka_seek_partitions(rt->consumer, seek, 0);
        if (error) {
            fatal(rt, "cannot rewind a partition", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
        rd_kafka_topic_partition_list_destroy(seek);
    }
    if (ps->rules_work != RULES_WORK_FRESH) /* else when its rules are applied (rules_work_done) */
        inputs_pause(rt, ps, false);
    if (ps->eof_dropped[i] && ps->dropped_from[i] < 0)
        partition_at_end(rt, ps, (int)i);
    else if (ps->rules_work != RULES_WORK_FRESH && ps->rebuild_end[i] == 0)
        mark_live(rt, ps, (int)i);
    ps->dropped_from[i] = -1;
    ps->eof_dropped[i] = false;
}

/* A partition's state is (re)built: its applied rules first (a service with rules), else at once. */
static void part_build(runtime *rt, part_state *ps)
{
    ps->build_pending = false;
    rules_from_commits(rt, ps);
    if (rt->calc->uses_rules)
        applied_load_start(rt, ps); /* then part_go_on() */
    else
        part_go_on(rt, ps);
}

/* The committed offsets are in: every partition waiting for them that the reading counts for takes them and
 * is built; those assigned meanwhile get a reading of their own. */
static void on_offsets_done(uv_async_t *handle)
{
    runtime *rt = handle->data;
    offsets_job *job = &rt->offsets;
    if (!job->running || !atomic_load(&job->finished))
        return;
    if (job->threaded)
        uv_thread_join(&job->thread);
    job->running = false;
    rd_kafka_topic_partition_list_t *list = job->list;
    job->list = NULL;
    bool complete = !atomic_load(&rt->abandon) && !rt->stopping;
    for (int k = 0; complete && k < list->cnt; k++) {
        rd_kafka_topic_partition_t *tp = &list->elems[k];
        int i = input_index(rt, tp->topic);
        part_state *ps = i >= 0 ? state_get(rt, tp->partition, false) : NULL;
        if (!ps || !ps->assigned[i] || !ps->offsets_pending[i] || ps->offsets_pending[i] > job->seq)
            continue; /* revoked, or assigned again after the reading began */
        int64_t offset = tp->offset;
        ps->offsets_pending[i] = 0;
        ps->rebuild_end[i] = offset > 0 ? offset : 0;
        take_committed(ps, (size_t)i, tp);
        ps->committed_offset[i] = offset > 0 ? offset : -1; /* a stored offset, or none (-1) */
        hs_log(HS_LOG_INFO, "partition assigned", "{s:s, s:i, s:I, s:f}", "topic", tp->topic, "partition",
               (int)tp->partition, "committed_offset", (json_int_t)offset, "offsets_read_s",
               (double)(now_ns() - job->started_ns) / 1e9);
    }
    if (complete)
        for (size_t p = 0; p < rt->part_cap && !rt->stopping; p++) {
            part_state *ps = rt->parts[p];
            if (!ps || part_waiting(rt, ps))
                continue;
            if (ps->build_pending) {
                part_build(rt, ps);
                continue;
            }
            /* An input added to a state built already (not with the eager protocol the group uses, where a
             * rebalance revokes everything first): it goes on from its beginning. */
            for (size_t i = 0; i < rt->input_cnt; i++)
                if (ps->assigned[i] && !ps->live[i] && ps->next_offset[i] < 0)
                    input_go_on(rt, ps, i);
        }
    rd_kafka_topic_partition_list_destroy(list);
    applied_read_start(rt);
    offsets_start(rt); /* partitions assigned while it ran */
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *partitions,
                         void *opaque)
{
    runtime *rt = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* Rebuild: start every partition at its beginning and replay silently up to the committed offset.
         * The committed offsets are read on a thread (offsets_start): the partitions are assigned paused
         * meanwhile, and built once they are in (on_offsets_done). */
        for (int k = 0; k < partitions->cnt; k++) {
            rd_kafka_topic_partition_t *tp = &partitions->elems[k];
            int i = input_index(rt, tp->topic);
            part_state *ps = state_get(rt, tp->partition, true);
            if (i < 0 || !ps) {
                fatal(rt, "cannot take an assigned partition", tp->topic);
                return;
            }
            if (!state_has_inputs(rt, ps)) {
                ps->build_pending = true;
                for (size_t j = 0; j < MAX_INPUTS; j++) {
                    ps->dropped_from[j] = -1;
                    ps->eof_dropped[j] = false;
                }
            }
            ps->assigned[i] = true;
            ps->rebuild_end[i] = 0;
            ps->committed_offset[i] = -1;
            ps->committed_rules_known[i] = false;
            ps->next_offset[i] = -1;
            ps->live[i] = false;
            ps->offsets_pending[i] = rt->offsets_seq + 1; /* the next reading begun counts */
            ps->dropped_from[i] = -1;
            ps->eof_dropped[i] = false;
            tp->offset = RD_KAFKA_OFFSET_BEGINNING;
        }
        rt->assignment_seen = true;
        rd_kafka_assign(rk, partitions);
        for (int k = 0; k < partitions->cnt && !rt->stopping; k++) {
            part_state *ps = state_get(rt, partitions->elems[k].partition, false);
            if (ps)
                inputs_pause(rt, ps, true);
        }
        offsets_start(rt);
    } else {
        /* Revoked: commit what was processed for them (an abortable failure aborts), then drop their state.
         */
        txn_commit_now(rt);
        for (int k = 0; k < partitions->cnt; k++) {
            rd_kafka_topic_partition_t *tp = &partitions->elems[k];
            int i = input_index(rt, tp->topic);
            part_state *ps = state_get(rt, tp->partition, false);
            if (i < 0 || !ps)
                continue;
            ps->assigned[i] = false;
            ps->live[i] = false;
            char partition[16];
            snprintf(partition, sizeof partition, "%" PRId32, tp->partition);
            hs_metrics_remove_l(rt->metrics, "hs_consumer_lag", "topic", tp->topic, "partition", partition,
                                NULL); /* another instance reports it now */
            if (!state_has_inputs(rt, ps)) {
                state_free(rt, ps);
                rt->parts[tp->partition] = NULL;
            }
            hs_log(HS_LOG_INFO, "partition revoked", "{s:s, s:i}", "topic", tp->topic, "partition",
                   (int)tp->partition);
        }
        rd_kafka_assign(rk, NULL);
    }
}

static void drain_wake(wake *w)
{
    char buf[64];
    while (read(w->fds[0], buf, sizeof buf) > 0)
        ;
}

static void poke(wake *w)
{
    ssize_t n = write(w->fds[1], "1", 1);
    (void)n; /* a full pipe already means "awake" */
}

static void on_consumer_wake(uv_poll_t *handle, int status, int events)
{
    runtime *rt = handle->data;
    drain_wake(&rt->consumer_wake);
    for (int n = 0; n < POLL_BATCH && !rt->stopping && !rt->consuming_paused; n++) {
        commit_poll(rt);
        if (!producer_check(rt))
            return;
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rt->consumer, 0);
        if (!msg)
            return;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            on_partition_eof(rt, msg);
        else if (msg->err)
            hs_log(HS_LOG_WARN, "consumer error", "{s:s}", "error", rd_kafka_message_errstr(msg));
        else
            process_fact(rt, msg);
        rd_kafka_message_destroy(msg);
    }
    poke(&rt->consumer_wake); /* more may be queued: come back after the loop has had its turn */
}

static void on_producer_wake(uv_poll_t *handle, int status, int events)
{
    runtime *rt = handle->data;
    drain_wake(&rt->producer_wake);
    if (rt->txn != TXN_COMMITTING && rt->txn != TXN_RECOVERING) { /* the thread serves it meanwhile */
        rd_kafka_poll(rt->producer, 0);
        producer_check(rt);
    }
}

/* Stores a rule of this service (`rule` NULL: deletes it) in the rules table and keeps the table's digest;
 * returns whether the table changed. */
static bool rules_store(runtime *rt, const char *key, const rd_kafka_message_t *msg, bool present)
{
    const hs_table_entry *old = hs_table_get(&rt->rules, key);
    uint64_t old_digest = old ? rule_digest(key, old->value, old->value_len) : 0;
    bool changed;
    if (present) {
        hs_table_change change = hs_table_put(&rt->rules, key, msg->payload, msg->len);
        if (change == HS_TABLE_NOMEM) {
            fatal(rt, "out of memory storing a rule", key);
            return false;
        }
        changed = change != HS_TABLE_UNCHANGED;
        if (changed)
            rt->rules_digest += rule_digest(key, msg->payload, msg->len) - old_digest;
    } else {
        changed = hs_table_delete(&rt->rules, key);
        rt->rules_digest -= old_digest;
    }
    rt->rules_version += changed;
    return changed;
}

/* A changed rule of this service, applied to every partition: a live partition emits what it changes, and
 * its next commit carries the new digest; a partition still rebuilding applies it silently and is
 * reconciled when it goes live (its committed outputs predate the change). */
static void rule_apply_all(runtime *rt, const char *key, const Healthsignals__V1__Rule *rule,
                           const rd_kafka_message_t *msg)
{
    const hs_topic *rules_topic = hs_topic_find(HS_TOPIC_RULES);
    bool emitted = false;
    for (size_t p = 0; p < rt->part_cap; p++) {
        part_state *ps = rt->parts[p];
        if (!ps || ps->applied_loading)
            continue; /* built once its applied rules are read, with those or the current ones */
        bool live = part_live(rt, ps) && ps->rules_work != RULES_WORK_FRESH;
        if (ps->output_rules_known && !live)
            continue; /* built with the rules its outputs reflect: the difference is applied once live */
        runtime_emit emit = {.base = {.put = runtime_put, .put_packed = runtime_put_packed},
                             .rt = rt,
                             .ps = ps,
                             .silent = !live};
        format_cause(emit.cause, sizeof emit.cause, HS_TOPIC_RULES, msg->partition, msg->offset);
        hs_error error;
        if (rt->calc->apply(ps->calc_state, rules_topic, key, rule ? &rule->base : NULL, &emit.base,
                            &error) != HS_OK)
            hs_log(HS_LOG_WARN, "rule refused by the calculation", "{s:s, s:s}", "rule", key, "error",
                   error.message);
        /* Its applied rules (and digest) follow, in the transaction of the outputs; a partition being
         * reconciled keeps its old digest until the reconciliation is through. */
        if (live && ps->output_rules_known &&
            !applied_write(rt, ps, key, rule ? msg->payload : NULL, rule ? msg->len : 0, emit.cause, false))
            return;
        emitted |= live;
    }
    if (emitted)
        txn_begin(rt); /* the new digest is committed even when the change emitted nothing */
}

static hs_err drop_output(hs_emit *self, const hs_topic *topic, const char *key,
                          const ProtobufCMessage *value)
{
    return HS_OK;
}

/* Whether the calculation takes `rule`: applied to a state of its own, empty, whose outputs go nowhere. */
static hs_err calc_takes_rule(runtime *rt, const char *key, const Healthsignals__V1__Rule *rule,
                              hs_error *error)
{
    void *scratch = rt->calc->create();
    if (!scratch)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory checking a rule");
    hs_emit nowhere = {.put = drop_output};
    hs_err err = rt->calc->apply(scratch, hs_topic_find(HS_TOPIC_RULES), key, &rule->base, &nowhere, error);
    rt->calc->destroy(scratch);
    return err;
}

/* A service name as rules give it ([a-z-]{1,32}): a rule naming one is that service's to judge. */
static bool names_a_service(const char *service)
{
    size_t len = service ? strlen(service) : 0;
    return len > 0 && len <= HS_VALIDATE_SERVICE_MAX && strspn(service, "abcdefghijklmnopqrstuvwxyz-") == len;
}

/* Reads one record of hs.rules.v1: HS_OK with `*rule` this service's rule (NULL for a tombstone or a rule of
 * another service; `*ours` whether the key is this service's concern), or the error that makes the record a
 * bad rule for this service — its key, its size, its bytes, its validation, or the calculation's refusal. A
 * record that names another service is that service's to judge; one that names none is every service's. */
static hs_err rule_read(runtime *rt, const rd_kafka_message_t *msg, const char *key,
                        Healthsignals__V1__Rule **rule, bool *ours, hs_error *error)
{
    *rule = NULL;
    *ours = hs_table_get(&rt->rules, key) != NULL;
    if (!msg->payload)
        return HS_OK;
    hs_err err = hs_validate_size(msg->len, error);
    if (err != HS_OK)
        return err;
    Healthsignals__V1__Rule *r = (Healthsignals__V1__Rule *)hs_wire_unpack(
        &healthsignals__v1__rule__descriptor, NULL, msg->len, msg->payload);
    if (!r)
        return hs_error_set(error, HS_ERR_DECODE, "value is not a valid %s",
                            healthsignals__v1__rule__descriptor.name);
    if (names_a_service(r->service) && strcmp(r->service, rt->calc->name) != 0) {
        protobuf_c_message_free_unpacked(&r->base, NULL);
        return HS_OK; /* another service's rule: gone for this one if it was ours before */
    }
    err = hs_validate_rule(r, error);
    if (err == HS_OK)
        err = calc_takes_rule(rt, key, r, error);
    if (err != HS_OK) {
        protobuf_c_message_free_unpacked(&r->base, NULL);
        return err;
    }
    *rule = r;
    *ours = true;
    return HS_OK;
}

/* One record of hs.rules.v1 (`loading`: read before the inputs are subscribed, when there is no partition
 * yet): update the rules table and, when this service's rule changed, apply it to every partition. A bad rule
 * changes nothing (a rule it would replace stays) and goes to hs.dlq.v1 from the dead-letter owner's
 * transaction (rules_dlq_owner) when that owner's commits have not searched its offset yet. A record below
 * rules_read_end is one read again for that alone. */
static void process_rule(runtime *rt, const rd_kafka_message_t *msg, bool loading)
{
    bool again = msg->offset < rt->rules_read_end;
    if (!again)
        rt->rules_read_end = msg->offset + 1;
    char key[HS_KEY_MAX] = "";
    Healthsignals__V1__Rule *rule = NULL;
    bool ours = false;
    hs_error error = {0};
    hs_err err;
    if ((err = record_key(msg, key, &error)) == HS_OK)
        err = rule_read(rt, msg, key, &rule, &ours, &error);
    if (err == HS_ERR_NOMEM || err == HS_ERR_INTERNAL || err == HS_ERR_KAFKA) {
        fatal(rt, "cannot read a rule", error.message);
        return;
    }
    part_state *owner = rules_dlq_owner(rt);
    if (err != HS_OK && owner && msg->offset >= owner->rules_dlq_next) {
        uint64_t rewinds = rt->rewinds;
        dead_letter(rt, msg, err, error.message);
        if (rt->rewinds != rewinds)
            return; /* the commit it waited for failed: the owner reads the rules again when live */
    } else if (err != HS_OK && !again) {
        hs_log(HS_LOG_WARN, "ignoring an invalid rule", "{s:s, s:I, s:s}", "rule", key, "offset",
               (json_int_t)msg->offset, "error", error.message);
    }
    if (owner && msg->offset >= owner->rules_dlq_next)
        owner->rules_dlq_next = msg->offset + 1;
    if (err == HS_OK && !again && ours) {
        if (rules_store(rt, key, msg, rule != NULL) && !loading) {
            hs_log(HS_LOG_INFO, rule ? "rule changed" : "rule deleted", "{s:s}", "rule", key);
            rule_apply_all(rt, key, rule, msg);
        }
    }
    if (rule)
        protobuf_c_message_free_unpacked(&rule->base, NULL);
}

/* One record or event of hs.rules.v1. */
static void rules_message(runtime *rt, const rd_kafka_message_t *msg)
{
    if (!msg->err)
        process_rule(rt, msg, !rt->rules_loaded);
    else if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && !rt->rules_loaded)
        rules_load_done(rt);
    else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        hs_log(HS_LOG_WARN, "reading the rules", "{s:s}", "error", rd_kafka_message_errstr(msg));
}

/* Rule changes, one time slice per loop turn: a change is applied to every partition at once, but the turn
 * ends once RULES_SLICE_NS have gone, so that a batch of thousands of changes (a large rules file) leaves
 * the loop free between slices for facts, commits and the HTTP endpoint. */
static void on_rules_wake(uv_poll_t *handle, int status, int events)
{
    runtime *rt = handle->data;
    serve_sliced(rt, rt->rules_consumer, &rt->rules_wake, rules_message);
}

/* Serves a consumer of the loop's own (the rules, the applied rules): each record or event to `on_message`,
 * for at most RULES_SLICE_NS per turn; when more may be queued, it comes back after the loop's turn. */
static void serve_sliced(runtime *rt, rd_kafka_t *consumer, wake *w,
                         void (*on_message)(runtime *rt, const rd_kafka_message_t *msg))
{
    drain_wake(w);
    uint64_t started = now_ns();
    while (!rt->stopping) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(consumer, 0);
        if (!msg)
            return;
        on_message(rt, msg);
        rd_kafka_message_destroy(msg);
        if (now_ns() - started >= RULES_SLICE_NS)
            break;
    }
    poke(w);
}

/* Subscribes to the input topics: at once for a service without rules, else once the rules are read. */
static hs_err subscribe_inputs(runtime *rt, hs_error *error)
{
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new((int)rt->input_cnt);
    for (size_t i = 0; i < rt->input_cnt; i++)
        rd_kafka_topic_partition_list_add(topics, rt->inputs[i]->name, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rt->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err)
        return hs_error_set(error, HS_ERR_KAFKA, "cannot subscribe: %s", rd_kafka_err2str(err));
    return HS_OK;
}

/* hs.rules.v1 read to its end for the first time: every fact is processed with all rules known. */
static void rules_load_done(runtime *rt)
{
    rt->rules_loaded = true;
    uv_timer_stop(&rt->rules_load_timer);
    hs_log(HS_LOG_INFO, "rules loaded", "{s:i}", "rules", (int)rt->rules.count);
    hs_error error;
    if (subscribe_inputs(rt, &error) != HS_OK)
        fatal(rt, "cannot subscribe", error.message);
}

/* The rules are not read to their end after OP_TIMEOUT_MS (and every OP_TIMEOUT_MS after): the service goes
 * on waiting — the broker may come back, the topic be created — and says why (log, /readyz). Before, it
 * exited after the first 30 s. */
static void on_rules_load_timeout(uv_timer_t *timer)
{
    runtime *rt = timer->data;
    if (rt->rules_loaded)
        return;
    rt->rules_load_waits++;
    hs_log(HS_LOG_WARN,
           "hs.rules.v1 not read to its end yet, still trying (does it exist? hsctl topics create)",
           "{s:I, s:I}", "waited_s", (json_int_t)(rt->rules_load_waits * OP_TIMEOUT_MS / 1000), "rules_read",
           (json_int_t)rt->rules.count);
}

/* --- loop plumbing ---------------------------------------------------------------------------------------
 */

static bool wake_start(runtime *rt, wake *w, rd_kafka_queue_t *queue, uv_poll_cb cb)
{
    if (pipe(w->fds) != 0)
        return false;
    for (int k = 0; k < 2; k++) {
        fcntl(w->fds[k], F_SETFL, fcntl(w->fds[k], F_GETFL) | O_NONBLOCK);
        fcntl(w->fds[k], F_SETFD, FD_CLOEXEC);
    }
    rd_kafka_queue_io_event_enable(queue, w->fds[1], "1", 1);
    uv_poll_init(&rt->loop, &w->poll, w->fds[0]);
    w->poll.data = rt;
    uv_poll_start(&w->poll, UV_READABLE, cb);
    poke(w); /* serve whatever is already queued */
    return true;
}

static void on_commit_timer(uv_timer_t *timer)
{
    runtime *rt = timer->data;
    /* The consumer is polled at least once an interval, records or not: librdkafka counts an instance that
     * has not polled for max.poll.interval.ms (5 min) as stuck and takes it out of the group, and the wake
     * pipe alone would leave an idle service unpolled (it then never rejoined). */
    poke(&rt->consumer_wake);
    if (!producer_check(rt))
        return;
    if (rt->txn == TXN_COMMITTING)
        rt->commit_due = true; /* a slow commit: the next one starts as soon as it is done */
    else if (rt->txn == TXN_OPEN)
        txn_commit_start(rt);
}

/* The runtime running in this process, for hs_runtime_stop(); one at a time. */
static _Atomic(uv_async_t *) running_stop_request;

void hs_runtime_stop(void)
{
    uv_async_t *request = running_stop_request;
    if (request)
        uv_async_send(request);
}

static void on_stop_request(uv_async_t *handle)
{
    runtime *rt = handle->data;
    hs_log(HS_LOG_INFO, "stopping", "{s:s}", "reason", "hs_runtime_stop");
    rt->stopping = true;
    atomic_store(&rt->abandon, true);
    uv_stop(&rt->loop);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    runtime *rt = handle->data;
    hs_log(HS_LOG_INFO, "stopping", "{s:i}", "signal", signum);
    rt->stopping = true;
    atomic_store(&rt->abandon, true); /* no more waiting for a broker that is away */
    alarm(10); /* the stop must finish within 10 s; SIGALRM's default action ends the process otherwise */
    uv_stop(&rt->loop);
}

static bool all_live(const runtime *rt)
{
    for (size_t p = 0; p < rt->part_cap; p++)
        for (size_t i = 0; rt->parts[p] && i < rt->input_cnt; i++)
            if (rt->parts[p]->assigned[i] && !rt->parts[p]->live[i])
                return false;
    return true;
}

/* --- HTTP endpoint -----------------------------------------------------------------------------------------
 */

/* The handler runs on the HTTP thread and reads only what the loop publishes:
 *   - readiness: hs_health_set_reason(rt->health, reason or NULL) from any thread, and hs_health_beat() to
 *     say "making progress". The loop publishes not_ready_reason() at every turn (on_health_prepare), so a
 *     condition of the loop's goes into not_ready_reason(); code that blocks outside the loop (start-up,
 *     a retry loop) sets its reason itself ("starting: connecting to Kafka", "broker unreachable: ...") and
 *     beats between attempts. A flag another thread sets (brokers_down) is also read by the handler itself.
 *   - gauges of the loop's state: refreshed on the loop when /metrics asks (on_refresh), waited for at most
 *     REFRESH_WAIT_MS and not at all when the loop is blocked; /metrics then shows their last values.
 *   - everything else in /metrics is thread-safe in the registry (hs/metrics.h).
 */

static const char *not_ready_reason(runtime *rt)
{
    if (rt->stopping)
        return "stopping";
    const char *kafka = atomic_load(&rt->kafka_not_ready); /* "broker unreachable" */
    if (kafka)
        return kafka;
    if (rt->calc->uses_rules && !rt->rules_loaded)
        return rt->rules_load_waits ? "loading rules: hs.rules.v1 not read to its end yet (is the broker "
                                      "reachable? does the topic exist? hsctl topics create)"
                                    : "loading rules";
    if (!rt->assignment_seen)
        return "waiting for a partition assignment";
    if (rt->offsets.running)
        return "reading the committed offsets of assigned partitions";
    if (!all_live(rt))
        return "rebuilding state";
    if (atomic_load(&rt->brokers_down))
        return "no broker reachable";
    return NULL;
}

/* The loop's turn: a beat, and its readiness when it changed (the reasons are static strings). */
static void on_health_prepare(uv_prepare_t *handle)
{
    runtime *rt = handle->data;
    atomic_store(&rt->loop_turning, true);
    const char *reason = not_ready_reason(rt);
    if (reason != rt->published_reason) {
        rt->published_reason = reason;
        hs_health_set_reason(rt->health, reason);
    } else {
        hs_health_beat(rt->health);
    }
}

static void on_health_timer(uv_timer_t *handle)
{
    (void)handle; /* only there to make the loop turn, and so beat, when nothing else happens */
}

/* The HTTP thread's readiness: the loop's, unless a thread has seen every broker down since. */
static void read_health(runtime *rt, hs_health_status *st)
{
    hs_health_read(rt->health, st);
    const char *kafka = atomic_load(&rt->kafka_not_ready); /* set by the connect and commit threads too */
    if (st->alive && st->ready && kafka) {
        st->ready = false;
        snprintf(st->reason, sizeof st->reason, "%s", kafka);
    }
    if (st->alive && st->ready && atomic_load(&rt->brokers_down)) {
        st->ready = false;
        snprintf(st->reason, sizeof st->reason, "no broker reachable");
    }
}

/* Gauges the HTTP thread computes itself, at every render (a render hook). */
static void refresh_process_gauges(void *ctx, hs_metrics *m)
{
    runtime *rt = ctx;
    hs_health_status st;
    read_health(rt, &st);
    hs_process_metrics_refresh(m);
    /* Deprecated for process_resident_memory_bytes (docs/running.md, "Metrics"); kept one
     * release so that existing dashboards keep working. */
    hs_gauge_set(hs_metrics_gauge_l(m, "hs_process_resident_bytes",
                                    "Resident set size of the process (deprecated: use "
                                    "process_resident_memory_bytes)",
                                    NULL),
                 (double)hs_process_rss_bytes());
    hs_gauge_set(hs_metrics_gauge_l(m, "hs_ready", "1 when /readyz answers ready", NULL), st.ready ? 1 : 0);
    hs_gauge_set(hs_metrics_gauge_l(m, "hs_event_loop_blocked_seconds",
                                    "Seconds since the event loop last turned (0 when it runs freely)", NULL),
                 st.blocked_seconds * 1000.0 < 2.0 * HEALTH_BEAT_MS ? 0 : st.blocked_seconds);
}

/* Gauges of the loop's own state; on the loop thread. */
static void refresh_loop_gauges(runtime *rt)
{
    hs_metrics *m = rt->metrics;
    double keys = 0, uncommitted = 0;
    void *states[1024];
    size_t state_cnt = 0;
    for (size_t p = 0; p < rt->part_cap; p++) {
        part_state *ps = rt->parts[p];
        if (!ps)
            continue;
        if (state_cnt < sizeof states / sizeof states[0])
            states[state_cnt++] = ps->calc_state;
        for (size_t i = 0; i < rt->output_cnt; i++)
            keys += (double)ps->outputs[i].count;
        for (size_t i = 0; i < rt->input_cnt; i++) {
            if (!ps->assigned[i])
                continue;
            if (ps->next_offset[i] > ps->committed_offset[i])
                uncommitted += (double)(ps->next_offset[i] -
                                        (ps->committed_offset[i] > 0 ? ps->committed_offset[i] : 0));
            int64_t low = 0, high = 0;
            char partition[16];
            snprintf(partition, sizeof partition, "%" PRId32, ps->partition);
            if (rd_kafka_get_watermark_offsets(rt->consumer, rt->inputs[i]->name, ps->partition, &low,
                                               &high) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                high >= 0) {
                int64_t position = ps->next_offset[i] >= 0 ? ps->next_offset[i] : low;
                hs_gauge_set(hs_metrics_gauge_l(m, "hs_consumer_lag",
                                                "Records not yet consumed, by input partition", "topic",
                                                rt->inputs[i]->name, "partition", partition, NULL),
                             (double)(high > position ? high - position : 0));
            }
        }
    }
    hs_gauge_set(
        hs_metrics_gauge_l(m, "hs_state_keys", "Output keys held in state (last emitted values)", NULL),
        keys);
    /* 0 exactly when everything consumed is committed: what a crash now would make the service redo. */
    hs_gauge_set(hs_metrics_gauge_l(m, "hs_uncommitted_records",
                                    "Input records consumed whose transaction has not committed yet", NULL),
                 uncommitted);
    if (rt->service->metrics)
        rt->service->metrics(m, states, state_cnt);
}

/* The loop's side of a /metrics request. */
static void on_refresh(uv_async_t *handle)
{
    runtime *rt = handle->data;
    uv_mutex_lock(&rt->refresh.lock);
    uint64_t requested = rt->refresh.requested;
    uv_mutex_unlock(&rt->refresh.lock);
    refresh_loop_gauges(rt);
    uv_mutex_lock(&rt->refresh.lock);
    rt->refresh.done = requested;
    uv_cond_broadcast(&rt->refresh.done_cond);
    uv_mutex_unlock(&rt->refresh.lock);
}

/* The HTTP thread's side: asks the loop to refresh its gauges and waits for it, at most REFRESH_WAIT_MS, and
 * not at all when the loop has not turned for a beat (it is blocked, and /metrics shows the last values). */
static void refresh_from_http(runtime *rt)
{
    hs_health_status st;
    hs_health_read(rt->health, &st);
    if (!atomic_load(&rt->loop_turning) || st.blocked_seconds * 1000.0 >= 2.0 * HEALTH_BEAT_MS)
        return;
    uv_mutex_lock(&rt->refresh.lock);
    uint64_t ticket = ++rt->refresh.requested;
    uv_async_send(&rt->refresh.async);
    uint64_t deadline = uv_hrtime() + (uint64_t)REFRESH_WAIT_MS * 1000000u;
    while (rt->refresh.done < ticket) {
        uint64_t now = uv_hrtime();
        if (now >= deadline ||
            uv_cond_timedwait(&rt->refresh.done_cond, &rt->refresh.lock, deadline - now) == UV_ETIMEDOUT)
            break;
    }
    uv_mutex_unlock(&rt->refresh.lock);
}

static char *text_line(const char *text)
{
    size_t size = strlen(text) + 2;
    char *line = malloc(size);
    if (line)
        snprintf(line, size, "%s\n", text);
    return line;
}

/* On the HTTP thread (hs/http.h): reads only what the loop publishes (see above). /healthz: 200 while the
 * loop turns (blocked up to HEALTH_STALLED_MS by design), 503 once it has not for longer. /readyz: 200
 * "ready", or 503 and the reason. */
static void on_http(void *ctx, const char *path, hs_http_response *out)
{
    runtime *rt = ctx;
    hs_health_status st;
    if (strcmp(path, "/metrics") == 0) {
        refresh_from_http(rt);
        out->content_type = HS_METRICS_CONTENT_TYPE;
        out->body = hs_metrics_render(rt->metrics);
    } else if (strcmp(path, "/healthz") == 0) {
        read_health(rt, &st);
        out->status = st.alive ? 200 : 503;
        out->body = text_line(st.alive ? "ok" : st.reason);
    } else if (strcmp(path, "/readyz") == 0) {
        read_health(rt, &st);
        out->status = st.ready ? 200 : 503;
        out->body = text_line(st.reason);
    } else {
        out->status = 404;
        out->body = strdup("not found: try /metrics, /healthz or /readyz\n");
    }
}

static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    runtime *rt = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        atomic_store(&rt->brokers_down, true);
    uv_thread_t self = uv_thread_self();
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal_reason[512];
        rd_kafka_fatal_error(rk, fatal_reason, sizeof fatal_reason);
        if (rd_kafka_type(rk) == RD_KAFKA_CONSUMER && uv_thread_equal(&self, &rt->loop_thread)) {
            fatal(rt, "fatal Kafka error", fatal_reason);
            return;
        }
        /* The producer's: producer_check() decides, between records, whether it is replaced. */
        hs_log(HS_LOG_ERROR, "fatal Kafka error", "{s:s, s:s}", "client", rd_kafka_name(rk), "reason",
               fatal_reason);
        return;
    }
    hs_log(HS_LOG_WARN, "Kafka error", "{s:s, s:s, s:s}", "client", rd_kafka_name(rk), "code",
           rd_kafka_err2name((rd_kafka_resp_err_t)err), "reason", reason);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    runtime *rt = opaque;
    if (!msg->err) {
        atomic_store(&rt->brokers_down, false);
        return;
    }
    /* A failed delivery inside a transaction makes the commit fail, which aborts and rewinds. */
    hs_log(HS_LOG_WARN, "output not delivered", "{s:s, s:s}", "topic", rd_kafka_topic_name(msg->rkt), "error",
           rd_kafka_err2str(msg->err));
}

/* --- start-up and shutdown -------------------------------------------------------------------------------
 */

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *partitions,
                         void *opaque);

/* Whether the environment sets librdkafka property `name` (HS_KAFKA_<NAME>, as hs_kafka_conf_new reads it).
 */
static bool environment_sets(const char *name)
{
    char variable[256] = "HS_KAFKA_";
    size_t n = strlen(variable);
    for (; *name && n + 1 < sizeof variable; name++)
        variable[n++] = *name == '.' ? '_' : (char)toupper((unsigned char)*name);
    variable[n] = '\0';
    const char *value = getenv(variable);
    return value && *value;
}

/* A Kafka client of the runtime; `group_member` consumers get the rebalance callback. `props` (name, value
 * pairs, NULL-terminated) are what exactly-once needs and override the environment; `defaults` are tuning
 * that an HS_KAFKA_* variable may override. */
static rd_kafka_t *client_new(runtime *rt, rd_kafka_type_t type, bool group_member, const char *const *props,
                              const char *const *defaults, hs_error *error)
{
    rd_kafka_conf_t *conf = hs_kafka_conf_new(hs_config_string(rt->config, "bootstrap-servers"), error);
    if (!conf)
        return NULL;
    for (; defaults && defaults[0]; defaults += 2)
        if (!environment_sets(defaults[0]) &&
            hs_kafka_conf_set(conf, defaults[0], defaults[1], error) != HS_OK) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    for (; props && props[0]; props += 2)
        if (hs_kafka_conf_set(conf, props[0], props[1], error) != HS_OK) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    rd_kafka_conf_set_opaque(conf, rt);
    rd_kafka_conf_set_error_cb(conf, on_kafka_error);
    if (type == RD_KAFKA_PRODUCER)
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    if (group_member)
        rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        hs_error_set(error, HS_ERR_CONFIG, "%s", errstr);
    }
    return rk;
}

/* The group id and the transactional id (rt->txn_id) from the configuration. */
static void kafka_names(runtime *rt)
{
    char instance[192], hostname[128] = "localhost";
    const char *configured = hs_config_string(rt->config, "instance-id");
    gethostname(hostname, sizeof hostname - 1);
    if (*configured)
        snprintf(instance, sizeof instance, "%s", configured);
    else
        snprintf(instance, sizeof instance, "%s-%d", hostname, (int)getpid());
    snprintf(rt->txn_id, sizeof rt->txn_id, "hs-%s-%s", rt->calc->name, instance);
    const char *group = hs_config_string(rt->config, "group-id");
    if (*group)
        snprintf(rt->group_id, sizeof rt->group_id, "%s", group);
    else
        snprintf(rt->group_id, sizeof rt->group_id, "hs-%s", rt->calc->name);
}

/* A new transactional producer, not yet initialised (that waits for the broker: connect_main). It makes
 * no connection yet, so a configuration librdkafka refuses stops the start at once (HS_ERR_CONFIG). */
static rd_kafka_t *producer_new(runtime *rt, hs_error *error)
{
    char max_bytes[32], txn_timeout[32];
    snprintf(max_bytes, sizeof max_bytes, "%d", HS_DLQ_MAX_MESSAGE_BYTES + 64 * 1024);
    snprintf(txn_timeout, sizeof txn_timeout, "%lld", rt->txn_timeout_ms);
    const char *txn_id = rt->txn_id;
    /* transaction.timeout.ms: derived from the commit interval, or the user's, checked against it
     * (hs_kafka_txn_timeout_ms). librdkafka bounds message.timeout.ms and socket.timeout.ms by it. */
    const char *producer_props[] = {"transactional.id",  txn_id,      "transaction.timeout.ms",
                                    txn_timeout,         "client.id", txn_id,
                                    "message.max.bytes", max_bytes,   NULL};
    /* retry.backoff.ms: right after a commit the coordinator is still writing the transaction markers and
     * answers the next transaction's AddOffsetsToTxn with CONCURRENT_TRANSACTIONS; librdkafka 2.0 retries
     * that after retry.backoff.ms, 100 ms by default, which measured as a 100 ms stall in about half of all
     * commits. The markers take milliseconds, so retry after 10 ms (the Java client retries this case
     * after 20 ms).
     * compression.type lz4: outputs are small protobuf records with CloudEvents headers that repeat from one
     * record to the next; lz4 batches are a fraction of their size, which the broker writes, replicates and
     * serves for less (measured: the broker's CPU per output about halved), for a little CPU here. */
    const char *producer_defaults[] = {"linger.ms", "5", "retry.backoff.ms", "10", "compression.type",
                                       "lz4",       NULL};
    return client_new(rt, RD_KAFKA_PRODUCER, false, producer_props, producer_defaults, error);
}

/* The consumers, once the producer is ready: hs.rules.v1 read to its end, then the inputs subscribed. */
static hs_err start_consumers(runtime *rt, hs_error *error)
{
    const char *txn_id = rt->txn_id;
    if (rt->calc->uses_rules) {
        const char *rules_props[] = {"group.id",
                                     rt->group_id,
                                     "isolation.level",
                                     "read_committed",
                                     "enable.auto.commit",
                                     "false",
                                     "enable.partition.eof",
                                     "true",
                                     "client.id",
                                     txn_id,
                                     NULL};
        rt->rules_consumer = client_new(rt, RD_KAFKA_CONSUMER, false, rules_props, NULL, error);
        if (!rt->rules_consumer)
            return error->code;
        rd_kafka_poll_set_consumer(rt->rules_consumer);
        rd_kafka_topic_partition_list_t *rules = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(rules, HS_TOPIC_RULES, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rt->rules_consumer, rules);
        rd_kafka_topic_partition_list_destroy(rules);
        /* hs.applied-rules.v1: assigned whenever a partition's state is (re)built (applied_read_start). */
        rt->applied_consumer = client_new(rt, RD_KAFKA_CONSUMER, false, rules_props, NULL, error);
        if (!rt->applied_consumer)
            return error->code;
        rd_kafka_poll_set_consumer(rt->applied_consumer);
        /* Read on the loop (on_rules_wake), in slices; the inputs are subscribed once they are all in. */
    }

    const char *consumer_props[] = {"group.id",
                                    rt->group_id,
                                    "isolation.level",
                                    "read_committed",
                                    "enable.auto.commit",
                                    "false",
                                    "enable.auto.offset.store",
                                    "false",
                                    "auto.offset.reset",
                                    "earliest",
                                    "enable.partition.eof",
                                    "true",
                                    "client.id",
                                    txn_id,
                                    NULL};
    rt->consumer = client_new(rt, RD_KAFKA_CONSUMER, true, consumer_props, NULL, error);
    if (!rt->consumer)
        return error->code;
    rd_kafka_poll_set_consumer(rt->consumer);
    if (!rt->rules_consumer && subscribe_inputs(rt, error) != HS_OK)
        return error->code;
    hs_log(HS_LOG_INFO, "connected", "{s:s, s:s, s:s}", "bootstrap",
           hs_config_string(rt->config, "bootstrap-servers"), "group", rt->group_id, "transactional_id",
           txn_id);
    return HS_OK;
}

/* The rest of the start, once the producer is ready for transactions: the consumers, the wakes of the
 * Kafka queues, the commit timer. */
static void finish_start(runtime *rt)
{
    hs_error error = {0};
    hs_err err = start_consumers(rt, &error);
    if (err != HS_OK) {
        fatal(rt, "cannot start", error.message);
        if (err == HS_ERR_CONFIG)
            rt->exit_code = HS_EXIT_CONFIG;
        return;
    }
    rt->consumer_queue = rd_kafka_queue_get_consumer(rt->consumer);
    wake_start(rt, &rt->consumer_wake, rt->consumer_queue, on_consumer_wake);
    wake_start(rt, &rt->producer_wake, rt->producer_queue, on_producer_wake);
    if (rt->rules_consumer) {
        rt->rules_queue = rd_kafka_queue_get_consumer(rt->rules_consumer);
        wake_start(rt, &rt->rules_wake, rt->rules_queue, on_rules_wake);
        rt->applied_queue = rd_kafka_queue_get_consumer(rt->applied_consumer);
        wake_start(rt, &rt->applied_wake, rt->applied_queue, on_applied_wake);
        uv_timer_start(&rt->rules_load_timer, on_rules_load_timeout, OP_TIMEOUT_MS, OP_TIMEOUT_MS);
    }
    uv_timer_init(&rt->loop, &rt->commit_timer);
    rt->commit_timer.data = rt;
    uint64_t interval = (uint64_t)hs_config_duration_ms(rt->config, "commit-interval");
    uv_timer_start(&rt->commit_timer, on_commit_timer, interval, interval);
    hs_log(HS_LOG_INFO, "running", "{s:s, s:s, s:I}", "version", rt->service->version, "allocator",
           hs_alloc_name(), "transaction_timeout_ms", (json_int_t)rt->txn_timeout_ms);
}

static void shutdown_kafka(runtime *rt)
{
    connect_join(rt); /* a producer still being started or replaced: given up (rt->abandon) */
    if (rt->connect.producer)
        rd_kafka_destroy(rt->connect.producer);
    rt->connect.producer = NULL;
    if (rt->connect.committed)
        rd_kafka_topic_partition_list_destroy(rt->connect.committed);
    rt->connect.committed = NULL;
    offsets_join(rt); /* a reading of committed offsets: given up (rt->abandon) */
    if (rt->producer && rt->txn != TXN_RECOVERING)
        txn_commit_now(rt); /* waits for a commit in flight, then commits the rest */
    if (rt->consumer) {
        /* Leaves the group; the revoke callback commits anything still open. */
        rd_kafka_consumer_close(rt->consumer);
        if (rt->consumer_queue)
            rd_kafka_queue_destroy(rt->consumer_queue);
        rd_kafka_destroy(rt->consumer);
    }
    if (rt->rules_consumer) {
        rd_kafka_consumer_close(rt->rules_consumer);
        if (rt->rules_queue)
            rd_kafka_queue_destroy(rt->rules_queue);
        rd_kafka_destroy(rt->rules_consumer);
    }
    if (rt->applied_consumer) {
        rd_kafka_consumer_close(rt->applied_consumer);
        if (rt->applied_queue)
            rd_kafka_queue_destroy(rt->applied_queue);
        rd_kafka_destroy(rt->applied_consumer);
    }
    if (rt->producer) {
        if (rt->txn == TXN_OPEN && !rd_kafka_fatal_error(rt->producer, NULL, 0)) {
            rd_kafka_error_t *error = rd_kafka_abort_transaction(rt->producer, 5000);
            if (error)
                rd_kafka_error_destroy(error);
        }
        if (rt->txn != TXN_NONE || rd_kafka_fatal_error(rt->producer, NULL, 0))
            /* Uncommitted, and the broker is away or the producer failed: nothing left is worth waiting
             * for, and the stop must finish within its 10 s. */
            rd_kafka_purge(rt->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(rt->producer, 5000);
        if (rt->producer_queue)
            rd_kafka_queue_destroy(rt->producer_queue);
        rd_kafka_destroy(rt->producer);
    }
}

static void close_handle(uv_handle_t *handle, void *arg)
{
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

static hs_err resolve_topics(runtime *rt, hs_error *error)
{
    for (const char *const *t = rt->calc->inputs; *t; t++) {
        const hs_topic *topic = hs_topic_find(*t);
        if (!topic || !topic->value_type || rt->input_cnt == MAX_INPUTS)
            return hs_error_set(error, HS_ERR_INTERNAL, "input %s is not a registered typed topic", *t);
        rt->records_in[rt->input_cnt] =
            topic_counter(rt, "hs_records_in_total", "Input records consumed, by topic", topic->name);
        rt->inputs[rt->input_cnt++] = topic;
    }
    for (const char *const *t = rt->calc->outputs; *t; t++) {
        const hs_topic *topic = hs_topic_find(*t);
        if (!topic || !topic->value_type || rt->output_cnt == MAX_OUTPUTS)
            return hs_error_set(error, HS_ERR_INTERNAL, "output %s is not a registered typed topic", *t);
        rt->records_out[rt->output_cnt] =
            topic_counter(rt, "hs_records_out_total", "Output records produced, by topic", topic->name);
        hs_event_meta *meta = &rt->output_meta[rt->output_cnt];
        *meta = (hs_event_meta){0};
        snprintf(meta->source, sizeof meta->source, "%s", rt->source);
        snprintf(meta->type, sizeof meta->type, "%s", topic->value_type->name);
        rt->outputs[rt->output_cnt++] = topic;
    }
    rt->applied_out = -1;
    if (rt->calc->uses_rules) { /* written with the outputs, in their transactions */
        const hs_topic *topic = hs_topic_find(HS_TOPIC_APPLIED_RULES);
        if (!topic || rt->output_cnt == MAX_OUTPUTS)
            return hs_error_set(error, HS_ERR_INTERNAL, "no room for %s", HS_TOPIC_APPLIED_RULES);
        rt->records_out[rt->output_cnt] =
            topic_counter(rt, "hs_records_out_total", "Output records produced, by topic", topic->name);
        hs_event_meta *meta = &rt->output_meta[rt->output_cnt];
        *meta = (hs_event_meta){0};
        snprintf(meta->source, sizeof meta->source, "%s", rt->source);
        snprintf(meta->type, sizeof meta->type, "%s", healthsignals__v1__rule__descriptor.name);
        rt->applied_out = (int)rt->output_cnt;
        rt->outputs[rt->output_cnt++] = topic;
    }
    rt->dlq = hs_topic_find(HS_TOPIC_DLQ);
    return HS_OK;
}

static void setup_metrics(runtime *rt)
{
    static const double commit_buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
    static const double calc_buckets[] = {1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 1e-2, 0.1};
    rt->metrics = hs_metrics_new();
    rt->txn_committed = hs_metrics_counter_l(rt->metrics, "hs_transactions_committed_total",
                                             "Kafka transactions committed", NULL);
    rt->txn_aborted = hs_metrics_counter_l(rt->metrics, "hs_transactions_aborted_total",
                                           "Kafka transactions aborted (the partitions were rebuilt)", NULL);
    rt->producer_recoveries = hs_metrics_counter_l(rt->metrics, "hs_producer_recoveries_total",
                                                   "Transactional producers replaced after a fatal error "
                                                   "other than fencing (the partitions were rebuilt)",
                                                   NULL);
    rt->commit_seconds = hs_metrics_histogram_l(
        rt->metrics, "hs_commit_seconds", "Time to send offsets and commit a transaction", commit_buckets,
        sizeof commit_buckets / sizeof commit_buckets[0], NULL);
    rt->calc_seconds = hs_metrics_histogram_l(rt->metrics, "hs_calculation_seconds",
                                              "Time the calculation takes for one fact", calc_buckets,
                                              sizeof calc_buckets / sizeof calc_buckets[0], NULL);
    rt->rebuild_seconds =
        hs_metrics_gauge_l(rt->metrics, "hs_rebuild_seconds", "Duration of the last partition rebuild", NULL);
    hs_metrics_on_render(rt->metrics, refresh_process_gauges, rt);
}

/* What the HTTP thread reads, set up before it starts: readiness ("starting"), the loop's beat, and the
 * refresh of the loop's gauges. The handles act once the loop runs. */
static hs_err setup_health(runtime *rt, hs_error *error)
{
    rt->health = hs_health_new(HEALTH_BUSY_MS, HEALTH_STALLED_MS, NULL);
    if (!rt->health)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    uv_mutex_init(&rt->refresh.lock);
    uv_cond_init(&rt->refresh.done_cond);
    uv_async_init(&rt->loop, &rt->refresh.async, on_refresh);
    uv_prepare_init(&rt->loop, &rt->health_prepare);
    uv_timer_init(&rt->loop, &rt->health_timer);
    rt->refresh.async.data = rt->health_prepare.data = rt->health_timer.data = rt;
    uv_prepare_start(&rt->health_prepare, on_health_prepare);
    uv_timer_start(&rt->health_timer, on_health_timer, HEALTH_BEAT_MS, HEALTH_BEAT_MS);
    return HS_OK;
}

int hs_runtime_main(const hs_service *service, int argc, char **argv)
{
    hs_alloc_tune();
    runtime rt = {.service = service, .calc = service->calc, .exit_code = HS_EXIT_OK};
    hs_log_set_service(service->calc->name); /* the level comes from HS_LOG_LEVEL / --log-level (config) */

    static const hs_option none[] = {{.name = NULL}};
    const hs_option *sets[] = {runtime_options, service->options ? service->options : none, NULL};
    char summary[256];
    snprintf(summary, sizeof summary, "The healthsignals %s service: %s.", service->calc->name,
             service->calc->description);
    bool help = false;
    hs_error error = {0};
    extern char **environ;
    hs_err err = hs_config_load(&rt.config, argv[0], summary, service->version, sets, argc, argv, environ,
                                stdout, &help, &error);
    if (help)
        return HS_EXIT_OK;
    if (err != HS_OK) {
        fprintf(stderr, "%s: %s\n", service->calc->name, error.message);
        return err == HS_ERR_USAGE ? HS_EXIT_USAGE : HS_EXIT_CONFIG;
    }
    hs_config_log(rt.config);
    if (hs_kafka_txn_timeout_ms(hs_config_duration_ms(rt.config, "commit-interval"),
                                getenv("HS_KAFKA_TRANSACTION_TIMEOUT_MS"), &rt.txn_timeout_ms,
                                &error) != HS_OK) {
        fprintf(stderr, "%s: %s\n", service->calc->name, error.message);
        hs_config_free(rt.config);
        return HS_EXIT_CONFIG;
    }
    rt.commit_records = (long)hs_config_int(rt.config, "commit-records");
    snprintf(rt.source, sizeof rt.source, "/healthsignals/%s", service->calc->name);
    hs_table_init(&rt.rules);
    rt.loop_thread = uv_thread_self();
    setup_metrics(&rt);
    uv_loop_init(&rt.loop);

    int exit_code = HS_EXIT_OK;
    rd_kafka_t *producer = NULL;
    if (resolve_topics(&rt, &error) != HS_OK || setup_health(&rt, &error) != HS_OK ||
        hs_http_start(hs_config_string(rt.config, "http-addr"), NULL, on_http, &rt, &rt.http, &error) !=
            HS_OK) {
        hs_log(HS_LOG_ERROR, "cannot start", "{s:s}", "error", error.message);
        exit_code = HS_EXIT_CONFIG;
    } else {
        hs_log(HS_LOG_INFO, "http endpoint listening", "{s:i}", "port", hs_http_port(rt.http));
        /* The probes say why the service is not ready yet; the loop, running from below, says more. */
        hs_health_set_reason(rt.health, starting_reason);
        rt.published_reason = starting_reason; /* differs from every not_ready_reason(), NULL included */
        kafka_names(&rt);
        producer = producer_new(&rt, &error);
        if (!producer) {
            hs_log(HS_LOG_ERROR, "cannot start", "{s:s}", "error", error.message);
            exit_code = error.code == HS_ERR_CONFIG ? HS_EXIT_CONFIG : HS_EXIT_FATAL;
        }
    }

    if (exit_code == HS_EXIT_OK) {
        /* The loop runs from here on, answering probes and signals while the producer waits for the broker
         * (connect_main); finish_start() starts the rest once it is ready. */
        uv_async_init(&rt.loop, &rt.commit_done, on_commit_done);
        rt.commit_done.data = &rt;
        uv_idle_init(&rt.loop, &rt.rules_work);
        rt.rules_work.data = &rt;
        uv_timer_init(&rt.loop, &rt.rules_load_timer); /* started with the rules consumer (finish_start) */
        rt.rules_load_timer.data = &rt;
        uv_async_init(&rt.loop, &rt.connect_done, on_connect_done);
        rt.connect_done.data = &rt;
        uv_async_init(&rt.loop, &rt.offsets_done, on_offsets_done);
        rt.offsets_done.data = &rt;
        uv_signal_init(&rt.loop, &rt.sigterm);
        uv_signal_init(&rt.loop, &rt.sigint);
        rt.sigterm.data = rt.sigint.data = &rt;
        uv_signal_start(&rt.sigterm, on_signal, SIGTERM);
        uv_signal_start(&rt.sigint, on_signal, SIGINT);
        uv_async_init(&rt.loop, &rt.stop_request, on_stop_request);
        rt.stop_request.data = &rt;
        running_stop_request = &rt.stop_request;
        connect_start(&rt, producer, NULL, NULL);
        uv_run(&rt.loop, UV_RUN_DEFAULT);
        atomic_store(&rt.loop_turning, false);
        exit_code = rt.exit_code;
    }

    running_stop_request = NULL;
    rt.stopping = true;
    if (rt.health)
        hs_health_set_reason(rt.health, "stopping");
    shutdown_kafka(&rt);
    hs_http_stop(rt.http); /* its thread has ended: nothing reads rt from here on */
    uv_walk(&rt.loop, close_handle, NULL);
    uv_run(&rt.loop, UV_RUN_DEFAULT);
    uv_loop_close(&rt.loop);
    if (rt.health) {
        uv_mutex_destroy(&rt.refresh.lock);
        uv_cond_destroy(&rt.refresh.done_cond);
        hs_health_free(rt.health);
    }
    wake *wakes[] = {&rt.consumer_wake, &rt.producer_wake, &rt.rules_wake, &rt.applied_wake};
    for (size_t w = 0; w < sizeof wakes / sizeof wakes[0]; w++)
        for (int k = 0; k < 2; k++)
            if (wakes[w]->fds[k] > 0)
                close(wakes[w]->fds[k]);
    for (size_t p = 0; p < rt.part_cap; p++)
        if (rt.parts[p])
            state_free(&rt, rt.parts[p]);
    free(rt.parts);
    free(rt.deferred.data);
    hs_table_free(&rt.rules);
    hs_metrics_free(rt.metrics);
    hs_config_free(rt.config);
    hs_log(HS_LOG_INFO, "stopped", "{s:i}", "exit", exit_code);
    return exit_code;
}
