/* hs-broker: the embedded Kafka broker of the demo and the integration tier. It runs librdkafka's mock
 * cluster (rdkafka_mock.h) in this process and serves the Kafka protocol on 127.0.0.1. The mock brokers
 * listen on ports the OS picks, so hs-broker also listens on the requested bootstrap port and relays each
 * bootstrap connection to the first mock broker; clients then learn the brokers' own addresses from the
 * metadata, exactly as with a real cluster. libuv owns the process: the relay, and SIGINT/SIGTERM to stop.
 * Limits of the mock are measured and documented in docs/running.md ("Brokers").
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "hs/log.h"
#include "hs/topic.h"
#include "hs_cli.h"

#define RELAY_HIGH_WATER (1u << 20) /* stop reading a side while its peer has 1 MiB unwritten */

/* One relayed connection: a client that dialled the bootstrap port, and our connection to a mock broker.
 * Owned by the loop; freed when both handles have closed. */
typedef struct relay {
    uv_tcp_t client;
    uv_tcp_t upstream;
    uv_connect_t connect_req;
    int open_handles;
    bool closing;
} relay;

typedef struct write_req {
    uv_write_t req;
    uv_buf_t buf;
} write_req;

static struct sockaddr_in upstream_addr; /* the first mock broker */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: hs-broker [--port PORT] [--brokers N] [--partitions N] [--topic NAME[:PARTITIONS]]...\n"
            "\n"
            "Runs an embedded Kafka cluster (librdkafka's mock cluster) on 127.0.0.1 and prints its\n"
            "bootstrap address on the first line of standard output. Stops on SIGINT or SIGTERM.\n"
            "Data lives in memory only, and the mock drops the oldest records once a partition holds a few\n"
            "MB: use it for demos and integration tests, and real Kafka (tools/kafka) for anything else.\n"
            "\n"
            "  -p, --port PORT          bootstrap port on 127.0.0.1 (default 9092; 0 = any free port)\n"
            "  -b, --brokers N          number of brokers in the cluster (default 1, at most 16)\n"
            "  -n, --partitions N       partitions of topics created with --topic NAME (default 4)\n"
            "  -t, --topic NAME[:P]     create a topic (repeatable); others are created on first use\n"
            "      --no-registry        do not create the topics of the healthsignals topic registry\n"
            "                           (by default they exist from the start, with their partitions,\n"
            "                           because the mock cluster does not implement CreateTopics)\n"
            "  -h, --help               show this help\n"
            "\n"
            "Environment: HS_LOG_LEVEL (debug, info, warn, error; default info).\n");
}

/* `value` of `flag` if it is within min..max; else says so and exits 2. */
static long in_range(const char *flag, long value, long min, long max)
{
    if (value < min || value > max) {
        fprintf(stderr, "hs-broker: %s must be a whole number from %ld to %ld, got %ld\n", flag, min, max,
                value);
        exit(2);
    }
    return value;
}

static long parse_number(const char *flag, const char *text, long min, long max)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || *text == '\0' || *end != '\0') {
        fprintf(stderr, "hs-broker: %s must be a whole number from %ld to %ld, got '%s'\n", flag, min, max,
                text);
        exit(2);
    }
    return in_range(flag, value, min, max);
}

static void on_closed(uv_handle_t *handle)
{
    relay *r = handle->data;
    if (--r->open_handles == 0)
        free(r);
}

static void relay_close(relay *r)
{
    if (r->closing)
        return;
    r->closing = true;
    uv_close((uv_handle_t *)&r->client, on_closed);
    uv_close((uv_handle_t *)&r->upstream, on_closed);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static uv_stream_t *peer_of(relay *r, uv_stream_t *side)
{
    return side == (uv_stream_t *)&r->client ? (uv_stream_t *)&r->upstream : (uv_stream_t *)&r->client;
}

static void on_read(uv_stream_t *side, ssize_t nread, const uv_buf_t *buf);

static void on_written(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    uv_stream_t *stream = req->handle;
    relay *r = stream->data;
    free(w->buf.base);
    free(w);
    if (status < 0) {
        relay_close(r);
        return;
    }
    /* Resume the side feeding this stream once the backlog has drained. */
    if (!r->closing && uv_stream_get_write_queue_size(stream) < RELAY_HIGH_WATER / 2)
        uv_read_start(peer_of(r, stream), on_alloc, on_read);
}

static void on_read(uv_stream_t *side, ssize_t nread, const uv_buf_t *buf)
{
    relay *r = side->data;
    if (nread <= 0) {
        free(buf->base);
        if (nread < 0) /* EOF or error on either side ends the whole relay */
            relay_close(r);
        return;
    }
    uv_stream_t *peer = peer_of(r, side);
    write_req *w = malloc(sizeof *w);
    if (!w) {
        free(buf->base);
        relay_close(r);
        return;
    }
    w->buf = uv_buf_init(buf->base, (unsigned)nread);
    if (uv_write(&w->req, peer, &w->buf, 1, on_written) < 0) {
        free(w->buf.base);
        free(w);
        relay_close(r);
        return;
    }
    if (uv_stream_get_write_queue_size(peer) >= RELAY_HIGH_WATER)
        uv_read_stop(side);
}

static void on_upstream_connected(uv_connect_t *req, int status)
{
    relay *r = req->data;
    if (status < 0) {
        hs_log(HS_LOG_WARN, "relay to mock broker failed", "{s:s}", "error", uv_strerror(status));
        relay_close(r);
        return;
    }
    uv_read_start((uv_stream_t *)&r->client, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&r->upstream, on_alloc, on_read);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    relay *r = calloc(1, sizeof *r);
    if (!r)
        return;
    uv_tcp_init(server->loop, &r->client);
    uv_tcp_init(server->loop, &r->upstream);
    r->client.data = r->upstream.data = r->connect_req.data = r;
    r->open_handles = 2;
    if (uv_accept(server, (uv_stream_t *)&r->client) < 0 ||
        uv_tcp_connect(&r->connect_req, &r->upstream, (const struct sockaddr *)&upstream_addr,
                       on_upstream_connected) < 0)
        relay_close(r);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    hs_log(HS_LOG_INFO, "stopping", "{s:i}", "signal", signum);
    uv_stop(handle->loop);
}

/* At shutdown: relays free themselves once both their handles close; every other handle is static. */
static void close_any(uv_handle_t *handle, void *arg)
{
    if (handle->data)
        relay_close(handle->data);
    else if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

/* librdkafka logs through here, so the broker's own messages are JSON lines like ours. */
static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    hs_log(level <= 4 ? HS_LOG_WARN : HS_LOG_DEBUG, buf, "{s:s}", "facility", fac);
}

int main(int argc, char **argv)
{
    long port = 9092, brokers = 1, default_partitions = 4;
    bool no_registry = false;
    const char *topics[256];
    hs_cli_texts topic_texts = {topics, 0, sizeof topics / sizeof topics[0]};
    const hs_cli_option options[] = {
        {"port", 'p', HS_CLI_LONG, &port},
        {"brokers", 'b', HS_CLI_LONG, &brokers},
        {"partitions", 'n', HS_CLI_LONG, &default_partitions},
        {"topic", 't', HS_CLI_TEXTS, &topic_texts},
        {"no-registry", 0, HS_CLI_FLAG, &no_registry},
        {0},
    };
    hs_cli_parse("hs-broker", argc, argv, options, false, usage);
    in_range("--port", port, 0, 65535);
    in_range("--brokers", brokers, 1, 16);
    in_range("--partitions", default_partitions, 1, 1024);
    int topic_cnt = (int)topic_texts.count;
    if (optind < argc) {
        fprintf(stderr, "hs-broker: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    hs_log_set_service("hs-broker");
    const char *level = getenv("HS_LOG_LEVEL");
    if (level && hs_log_level_parse(level) >= 0)
        hs_log_set_level((hs_log_level)hs_log_level_parse(level));

    /* The mock cluster lives inside an ordinary client instance. */
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, on_kafka_log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        hs_log(HS_LOG_ERROR, "cannot create Kafka client", "{s:s}", "error", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *cluster = rd_kafka_mock_cluster_new(rk, (int)brokers);
    if (!cluster) {
        hs_log(HS_LOG_ERROR, "cannot create mock cluster", NULL);
        rd_kafka_destroy(rk);
        return 1;
    }

    size_t registry_cnt = 0;
    const hs_topic *registry = no_registry ? NULL : hs_topic_all(&registry_cnt);
    for (size_t i = 0; i < registry_cnt; i++) {
        bool named = false; /* a --topic flag for a registry topic overrides the registry */
        for (int t = 0; t < topic_cnt; t++) {
            size_t len = strcspn(topics[t], ":");
            named |= strlen(registry[i].name) == len && strncmp(topics[t], registry[i].name, len) == 0;
        }
        if (named)
            continue;
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(cluster, registry[i].name, registry[i].partitions, 1);
        if (err) {
            hs_log(HS_LOG_ERROR, "cannot create topic", "{s:s, s:s}", "topic", registry[i].name, "error",
                   rd_kafka_err2str(err));
            rd_kafka_mock_cluster_destroy(cluster);
            rd_kafka_destroy(rk);
            return 1;
        }
    }
    for (int i = 0; i < topic_cnt; i++) {
        char name[256];
        long partitions = default_partitions;
        snprintf(name, sizeof name, "%s", topics[i]);
        char *colon = strrchr(name, ':');
        if (colon) {
            *colon = '\0';
            partitions = parse_number("--topic partitions", colon + 1, 1, 1024);
        }
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster, name, (int)partitions, 1);
        if (err) {
            hs_log(HS_LOG_ERROR, "cannot create topic", "{s:s, s:s}", "topic", name, "error",
                   rd_kafka_err2str(err));
            rd_kafka_mock_cluster_destroy(cluster);
            rd_kafka_destroy(rk);
            return 1;
        }
    }

    /* The first mock broker's address, for the relay: "127.0.0.1:PORT[,...]". */
    const char *mock_bootstraps = rd_kafka_mock_cluster_bootstraps(cluster);
    const char *colon = strchr(mock_bootstraps, ':');
    long mock_port = colon ? strtol(colon + 1, NULL, 10) : 0;
    if (mock_port <= 0 || mock_port > 65535 ||
        uv_ip4_addr("127.0.0.1", (int)mock_port, &upstream_addr) != 0) {
        hs_log(HS_LOG_ERROR, "unexpected mock bootstrap address", "{s:s}", "bootstraps", mock_bootstraps);
        return 1;
    }

    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t server;
    struct sockaddr_in listen_addr;
    uv_tcp_init(loop, &server);
    server.data = NULL;
    uv_ip4_addr("127.0.0.1", (int)port, &listen_addr);
    int rc = uv_tcp_bind(&server, (const struct sockaddr *)&listen_addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server, 128, on_connection);
    if (rc < 0) {
        hs_log(HS_LOG_ERROR, "cannot listen on the bootstrap port", "{s:i, s:s}", "port", (int)port, "error",
               uv_strerror(rc));
        fprintf(stderr, "hs-broker: cannot listen on 127.0.0.1:%ld: %s\n", port, uv_strerror(rc));
        rd_kafka_mock_cluster_destroy(cluster);
        rd_kafka_destroy(rk);
        return 1;
    }
    struct sockaddr_in bound;
    int bound_len = sizeof bound;
    uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &bound_len);
    int bound_port = ntohs(bound.sin_port);

    uv_signal_t sigint, sigterm;
    uv_signal_init(loop, &sigint);
    uv_signal_init(loop, &sigterm);
    sigint.data = sigterm.data = NULL;
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);

    char bootstrap[32];
    snprintf(bootstrap, sizeof bootstrap, "127.0.0.1:%d", bound_port);
    printf("%s\n", bootstrap);
    fflush(stdout);
    hs_log(HS_LOG_INFO, "broker ready", "{s:s, s:s}", "bootstrap", bootstrap, "brokers", mock_bootstraps);

    uv_run(loop, UV_RUN_DEFAULT);

    uv_walk(loop, close_any, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    rd_kafka_mock_cluster_destroy(cluster);
    rd_kafka_destroy(rk);
    hs_log(HS_LOG_INFO, "stopped", NULL);
    return 0;
}
