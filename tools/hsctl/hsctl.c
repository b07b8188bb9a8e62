/* hsctl's entry point: global options, dispatch to the subcommands, and the helpers they share. Every
 * subcommand documents itself with --help; the exit status of every failure follows hs_err_exit_code().
 */
#include "hs_cli.h"
#include "hsctl.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hs/kafka.h"
#include "hs/log.h"
#include "hs/schema_registry.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: hsctl [--bootstrap SERVERS] [--timeout SECONDS] [--schema-registry-url URL] COMMAND "
            "[ARGS...]\n"
            "\n"
            "The healthsignals operator tool.\n"
            "\n"
            "Commands:\n"
            "  topics create|list|describe   create the registry's topics, or show them\n"
            "  publish TOPIC (--csv FILE | --ndjson FILE | -)\n"
            "                                validate and publish facts (CSV for indicator data, or\n"
            "                                CloudEvents JSON lines)\n"
            "  tail TOPIC                    print records as CloudEvents JSON lines\n"
            "  rules apply FILE | list       publish rules from a JSON file, or list the rules table\n"
            "  calc SERVICE                  run a service's calculation offline (JSON lines in and out)\n"
            "  contracts asyncapi            print the AsyncAPI 3.0 document of every topic\n"
            "  dlq list | replay             the dead letters of hs.dlq.v1 by service, error and source\n"
            "                                topic; re-publish them to their source topics after a fix\n"
            "  export --format openmetrics   the derived tables' history, every period, as OpenMetrics\n"
            "                                for Prometheus to backfill (promtool tsdb create-blocks-from)\n"
            "  acls [SERVICE...]             the Kafka ACLs of least privilege of each service\n"
            "                                (deploy/kafka/acls applies them)\n"
            "\n"
            "Run 'hsctl COMMAND --help' for a command's options.\n"
            "\n"
            "Options:\n"
            "  -b, --bootstrap SERVERS   Kafka bootstrap servers (default: $HS_BOOTSTRAP_SERVERS, else %s)\n"
            "  -t, --timeout SECONDS     time limit for broker operations (default 30)\n"
            "  --schema-registry-url URL publish and rules apply register the topic's schema there and\n"
            "                            write values in Confluent's wire format (default:\n"
            "                            $HS_SCHEMA_REGISTRY_URL, else bare protobuf); every reader\n"
            "                            reads both\n"
            "  -h, --help                show this help\n"
            "\n"
            "Environment:\n"
            "  HS_BOOTSTRAP_SERVERS      Kafka bootstrap servers\n"
            "  HS_KAFKA_<PROPERTY>       any librdkafka property, e.g. HS_KAFKA_SECURITY_PROTOCOL=SASL_SSL\n"
            "  HS_LOG_LEVEL              debug, info, warn or error (default warn)\n"
            "  HS_SCHEMA_REGISTRY_URL    a Confluent-compatible schema registry (see --schema-registry-url)\n"
            "  HS_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO  USER:PASSWORD for it\n"
            "  HS_SCHEMA_REGISTRY_BEARER_AUTH_TOKEN     a bearer token for it\n"
            "  HS_SCHEMA_REGISTRY_SSL_CA_LOCATION       PEM file of the CAs of its certificate\n"
            "\n"
            "Exit status: 0 ok; 1 bad input (rows or records rejected); 2 usage; 3 Kafka error or timeout;\n"
            "4 not found; 5 I/O error; 6 invalid configuration; 70 internal error.\n",
            HS_DEFAULT_BOOTSTRAP);
}

hs_err hsctl_schemas(const hsctl_globals *g, const hs_topic *topic)
{
    if (!g->schema_registry_url || !*g->schema_registry_url || !topic->value_type)
        return HS_OK;
    hs_schema_registry_options options = {
        .url = g->schema_registry_url,
        .user_info = getenv("HS_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"),
        .bearer_token = getenv("HS_SCHEMA_REGISTRY_BEARER_AUTH_TOKEN"),
        .ca_location = getenv("HS_SCHEMA_REGISTRY_SSL_CA_LOCATION"),
        .timeout_ms = g->timeout_ms < 10000 ? g->timeout_ms : 10000,
    };
    hs_error error = {0};
    const hs_topic *topics[] = {topic};
    hs_err err = hs_schema_registry_register(&options, topics, 1, &error);
    if (err)
        return hsctl_fail(err, "%s", error.message);
    return HS_OK;
}

hs_err hsctl_fail(hs_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hsctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return err;
}

hs_err hsctl_topic_missing(const struct rd_kafka_metadata *md, const char *name)
{
    rd_kafka_resp_err_t kerr = md && md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_NO_ERROR;
    if (kerr == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
        return hsctl_fail(HS_ERR_KAFKA,
                          "not authorized to read topic %s: the Kafka principal has no ACL for it "
                          "(deploy/kafka/acls; docs/security.md)",
                          name);
    return hsctl_fail(HS_ERR_NOT_FOUND, "topic %s does not exist on the broker (hsctl topics create)", name);
}

const hs_topic *hsctl_topic_arg(const char *name)
{
    const hs_topic *topic = hs_topic_find(name);
    if (topic)
        return topic;
    size_t count;
    const hs_topic *all = hs_topic_all(&count);
    fprintf(stderr, "hsctl: unknown topic '%s'; known topics:", name);
    for (size_t i = 0; i < count; i++)
        fprintf(stderr, " %s", all[i].name);
    fputc('\n', stderr);
    return NULL;
}

rd_kafka_t *hsctl_client(rd_kafka_type_t type, const hsctl_globals *g, const char *const *extra,
                         void (*on_delivery)(rd_kafka_t *, const rd_kafka_message_t *, void *), void *opaque)
{
    hs_error error;
    rd_kafka_conf_t *conf = hs_kafka_conf_new(hs_kafka_bootstrap(g->bootstrap), &error);
    if (!conf) {
        hsctl_fail(error.code, "%s", error.message);
        return NULL;
    }
    for (; extra && extra[0]; extra += 2) {
        if (hs_kafka_conf_set(conf, extra[0], extra[1], &error) != HS_OK) {
            rd_kafka_conf_destroy(conf);
            hsctl_fail(error.code, "%s", error.message);
            return NULL;
        }
    }
    if (on_delivery)
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, opaque);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        hsctl_fail(HS_ERR_KAFKA, "cannot create Kafka client: %s", errstr);
    }
    return rk;
}

rd_kafka_t *hsctl_reader(const hsctl_globals *g)
{
    /* librdkafka wants a group.id for a consumer even when it only assigns; a unique one stays unused. */
    char group[64];
    snprintf(group, sizeof group, "hsctl-reader-%d", (int)getpid());
    const char *props[] = {"group.id",
                           group,
                           "isolation.level",
                           "read_committed",
                           "enable.partition.eof",
                           "true",
                           "enable.auto.commit",
                           "false",
                           "client.id",
                           "hsctl",
                           NULL};
    rd_kafka_t *rk = hsctl_client(RD_KAFKA_CONSUMER, g, props, NULL, NULL);
    if (rk)
        rd_kafka_poll_set_consumer(rk);
    return rk;
}

void hsctl_reader_free(rd_kafka_t *rk)
{
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

const struct rd_kafka_metadata *hsctl_topic_metadata(rd_kafka_t *rk, const hsctl_globals *g,
                                                     const char *topic, hs_err *err)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(rk, 0, rkt, &md, g->timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (kerr) {
        *err = hsctl_fail(HS_ERR_KAFKA, "cannot read metadata of %s from %s: %s", topic,
                          g->bootstrap ? g->bootstrap : "the broker", rd_kafka_err2str(kerr));
        return NULL;
    }
    if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
        *err = hsctl_topic_missing(md, topic); /* "not authorized" or "does not exist" */
        rd_kafka_metadata_destroy(md);
        return NULL;
    }
    return md;
}

rd_kafka_resp_err_t hsctl_watermarks(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t *low,
                                     int64_t *high, int timeout_ms)
{
    for (int waited_ms = 0;; waited_ms += 200) {
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(rk, topic, partition, low, high, timeout_ms);
        bool transient = err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
                         err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                         err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                         err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
        if (!transient || waited_ms >= timeout_ms)
            return err;
        usleep(200 * 1000);
    }
}

long hsctl_read_line(FILE *in, char **line, size_t *cap, size_t max)
{
    size_t len = 0;
    bool too_long = false;
    int c;
    while ((c = getc(in)) != EOF && c != '\n') {
        if (too_long)
            continue;
        if (len + 1 >= *cap) {
            size_t grown = *cap ? *cap * 2 : 256;
            char *p = realloc(*line, grown);
            if (!p)
                return -2;
            *line = p;
            *cap = grown;
        }
        (*line)[len++] = (char)c;
        if (len > max)
            too_long = true;
    }
    if (c == EOF && len == 0 && !too_long)
        return -1;
    if (too_long)
        return -2;
    if (len > 0 && (*line)[len - 1] == '\r')
        len--;
    if (!*line) {
        *line = malloc(1);
        *cap = 1;
    }
    (*line)[len] = '\0';
    return (long)len;
}

int main(int argc, char **argv)
{
    hsctl_globals g = {
        .bootstrap = NULL, .timeout_ms = 30000, .schema_registry_url = getenv("HS_SCHEMA_REGISTRY_URL")};
    hs_log_set_service("hsctl");
    hs_log_set_level(HS_LOG_WARN);
    const char *level = getenv("HS_LOG_LEVEL");
    if (level && hs_log_level_parse(level) >= 0)
        hs_log_set_level((hs_log_level)hs_log_level_parse(level));

    long timeout_s = 30;
    const hs_cli_option options[] = {
        {"bootstrap", 'b', HS_CLI_TEXT, &g.bootstrap},
        {"timeout", 't', HS_CLI_LONG, &timeout_s},
        {"schema-registry-url", 0, HS_CLI_TEXT, &g.schema_registry_url},
        {0},
    };
    /* Stop at the first operand, the command: its own options are parsed by the subcommand. */
    hs_cli_parse("hsctl", argc, argv, options, true, usage);
    if (timeout_s < 1 || timeout_s > 3600)
        return hs_err_exit_code(hsctl_fail(HS_ERR_USAGE, "--timeout must be 1..3600 seconds"));
    g.timeout_ms = (int)timeout_s * 1000;
    if (optind >= argc) {
        usage(stderr);
        return hs_err_exit_code(HS_ERR_USAGE);
    }

    static const struct {
        const char *name;
        hs_err (*run)(int, char **, const hsctl_globals *);
    } commands[] = {
        {"topics", hsctl_topics}, {"publish", hsctl_publish}, {"tail", hsctl_tail},
        {"rules", hsctl_rules},   {"calc", hsctl_calc},       {"contracts", hsctl_contracts},
        {"dlq", hsctl_dlq},       {"export", hsctl_export},   {"acls", hsctl_acls},
    };
    const char *name = argv[optind];
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(name, commands[i].name) == 0) {
            int sub_argc = argc - optind;
            char **sub_argv = argv + optind;
            optind = 0; /* reset getopt for the subcommand (GNU: 0 also re-initialises) */
            return hs_err_exit_code(commands[i].run(sub_argc, sub_argv, &g));
        }
    }
    fprintf(stderr, "hsctl: unknown command '%s'\n", name);
    usage(stderr);
    return hs_err_exit_code(HS_ERR_USAGE);
}
