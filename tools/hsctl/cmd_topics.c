/* hsctl topics: create the registry's topics on the broker with their partitions and configuration, list
 * them with their state on the broker, describe one, or tell the partition of grouping keys. The registry
 * (hs/topic.h) is the only source of topic names, partition counts and cleanup policies.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "hs_cli.h"
#include "hsctl.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: hsctl topics create [--replication-factor N]\n"
                 "       hsctl topics list\n"
                 "       hsctl topics describe TOPIC\n"
                 "       hsctl topics partition TOPIC GROUPING_KEY...\n"
                 "\n"
                 "create    creates every topic of the registry that does not exist yet (existing ones are\n"
                 "          left as they are and reported)\n"
                 "list      the registry's topics, their layout and whether they exist on the broker\n"
                 "describe  one topic: registry entry, partitions with leaders and offsets\n"
                 "partition the partition a record with each grouping key belongs on (murmur2 of the\n"
                 "          grouping key modulo the registry's count; docs/producers.md), one\n"
                 "          \"GROUPING_KEY PARTITION\" line each; needs no broker\n"
                 "\n"
                 "  --replication-factor N   replicas per partition (default: the broker's default)\n");
}

/* Metadata for all topics; NULL after printing why. */
static const struct rd_kafka_metadata *fetch_metadata(rd_kafka_t *rk, const hsctl_globals *g)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, g->timeout_ms);
    if (err) {
        hsctl_fail(HS_ERR_KAFKA, "cannot reach the broker: %s", rd_kafka_err2str(err));
        return NULL;
    }
    return md;
}

static const struct rd_kafka_metadata_topic *find_topic(const struct rd_kafka_metadata *md, const char *name)
{
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, name) == 0 && !md->topics[i].err)
            return &md->topics[i];
    return NULL;
}

/* Creates the registry's topics that the broker lacks; existing ones are reported, not touched, so the
 * command is idempotent and sends no CreateTopics request when there is nothing to create. */
static hs_err topics_create(rd_kafka_t *rk, const hsctl_globals *g, int replication)
{
    const struct rd_kafka_metadata *md = fetch_metadata(rk, g);
    if (!md)
        return HS_ERR_KAFKA;
    size_t all_cnt, count = 0;
    const hs_topic *all = hs_topic_all(&all_cnt);
    rd_kafka_NewTopic_t **new_topics = calloc(all_cnt, sizeof(rd_kafka_NewTopic_t *));
    char errstr[512];
    hs_err result = HS_OK;
    for (size_t i = 0; i < all_cnt; i++) {
        const struct rd_kafka_metadata_topic *existing = find_topic(md, all[i].name);
        if (existing) {
            printf("exists   %s", all[i].name);
            if (existing->partition_cnt != all[i].partitions) {
                printf(" with %d partitions, registry says %d: records may land in the wrong partition",
                       existing->partition_cnt, all[i].partitions);
                result = HS_ERR_CONFIG;
            }
            printf("\n");
            continue;
        }
        rd_kafka_NewTopic_t *t =
            rd_kafka_NewTopic_new(all[i].name, all[i].partitions, replication, errstr, sizeof errstr);
        rd_kafka_NewTopic_set_config(t, "cleanup.policy", all[i].cleanup_policy);
        if (all[i].max_message_bytes > 0) {
            char max_bytes[32];
            snprintf(max_bytes, sizeof max_bytes, "%" PRId32, all[i].max_message_bytes);
            rd_kafka_NewTopic_set_config(t, "max.message.bytes", max_bytes);
        }
        if (all[i].retention_ms > 0) {
            char retention[32];
            snprintf(retention, sizeof retention, "%" PRId64, all[i].retention_ms);
            rd_kafka_NewTopic_set_config(t, "retention.ms", retention);
        }
        new_topics[count++] = t;
    }
    rd_kafka_metadata_destroy(md);
    if (count == 0) {
        free(new_topics);
        return result;
    }
    rd_kafka_queue_t *queue = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(options, g->timeout_ms, errstr, sizeof errstr);
    rd_kafka_CreateTopics(rk, new_topics, count, options, queue);
    rd_kafka_event_t *event = rd_kafka_queue_poll(queue, g->timeout_ms + 5000);

    if (!event) {
        result = hsctl_fail(HS_ERR_TIMEOUT, "no answer to CreateTopics within %d s", g->timeout_ms / 1000);
    } else if (rd_kafka_event_error(event)) {
        result = hsctl_fail(HS_ERR_KAFKA, "CreateTopics failed: %s", rd_kafka_event_error_string(event));
    } else {
        size_t n;
        const rd_kafka_topic_result_t **results =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &n);
        for (size_t i = 0; i < n; i++) {
            rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
            const char *name = rd_kafka_topic_result_name(results[i]);
            if (!err) {
                printf("created  %s\n", name);
            } else if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                printf("exists   %s\n", name);
            } else {
                printf("FAILED   %s: %s\n", name, rd_kafka_topic_result_error_string(results[i]));
                result = HS_ERR_KAFKA;
            }
        }
    }
    if (event)
        rd_kafka_event_destroy(event);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_queue_destroy(queue);
    rd_kafka_NewTopic_destroy_array(new_topics, count);
    free(new_topics);
    return result;
}

static hs_err topics_list(rd_kafka_t *rk, const hsctl_globals *g)
{
    const struct rd_kafka_metadata *md = fetch_metadata(rk, g);
    if (!md)
        return HS_ERR_KAFKA;
    size_t count;
    const hs_topic *all = hs_topic_all(&count);
    printf("%-22s %-10s %-8s %-24s %-12s %s\n", "TOPIC", "PARTITIONS", "CLEANUP", "KEY", "GROUPING",
           "ON BROKER");
    for (size_t i = 0; i < count; i++) {
        const struct rd_kafka_metadata_topic *t = find_topic(md, all[i].name);
        char state[64];
        if (!t)
            snprintf(state, sizeof state, "missing");
        else if (t->partition_cnt != all[i].partitions)
            snprintf(state, sizeof state, "yes, %d partitions (registry says %d)", t->partition_cnt,
                     all[i].partitions);
        else
            snprintf(state, sizeof state, "yes");
        printf("%-22s %-10d %-8s %-24s %-12s %s\n", all[i].name, all[i].partitions, all[i].cleanup_policy,
               all[i].key_layout, all[i].grouping, state);
    }
    rd_kafka_metadata_destroy(md);
    return HS_OK;
}

static hs_err topics_describe(rd_kafka_t *rk, const hsctl_globals *g, const char *name)
{
    const hs_topic *topic = hsctl_topic_arg(name);
    if (!topic)
        return HS_ERR_NOT_FOUND;
    printf("topic:        %s\n", topic->name);
    printf("description:  %s\n", topic->description);
    printf("value:        %s\n", topic->value_type ? topic->value_type->name : "raw bytes (original record)");
    printf("key:          %s\n", topic->key_layout);
    printf("grouping key: %s\n", topic->grouping);
    printf("partitions:   %d\n", topic->partitions);
    printf("cleanup:      %s", topic->cleanup_policy);
    if (topic->retention_ms > 0)
        printf(", retention %" PRId64 " days", topic->retention_ms / (int64_t)(24 * 3600 * 1000));
    printf("\n");

    const struct rd_kafka_metadata *md = fetch_metadata(rk, g);
    if (!md)
        return HS_ERR_KAFKA;
    const struct rd_kafka_metadata_topic *t = find_topic(md, topic->name);
    hs_err err = HS_OK;
    if (!t) {
        printf("on broker:    missing (hsctl topics create)\n");
        err = HS_ERR_NOT_FOUND;
    } else {
        printf("on broker:    %d partitions\n", t->partition_cnt);
        printf("  %-9s %-7s %-12s %s\n", "PARTITION", "LEADER", "LOW", "HIGH");
        for (int i = 0; i < t->partition_cnt; i++) {
            int64_t low = -1, high = -1;
            hsctl_watermarks(rk, topic->name, t->partitions[i].id, &low, &high, g->timeout_ms);
            printf("  %-9d %-7d %-12" PRId64 " %" PRId64 "\n", t->partitions[i].id, t->partitions[i].leader,
                   low, high);
        }
    }
    rd_kafka_metadata_destroy(md);
    return err;
}

/* The partition of each grouping key: what a producer outside the project must pass explicitly, and what the
 * reason of a wrong_partition dead letter names. */
static hs_err topics_partition(const char *name, char **keys, int count)
{
    const hs_topic *topic = hsctl_topic_arg(name);
    if (!topic)
        return HS_ERR_NOT_FOUND;
    if (!topic->value_type || topic->global)
        return hsctl_fail(HS_ERR_USAGE, "%s is not partitioned by a grouping key", topic->name);
    for (int i = 0; i < count; i++)
        printf("%s %d\n", keys[i], (int)hs_topic_partition(topic, keys[i]));
    return HS_OK;
}

hs_err hsctl_topics(int argc, char **argv, const hsctl_globals *g)
{
    int replication = -1;
    long replication_factor = LONG_MIN; /* not given: the broker's default */
    const hs_cli_option options[] = {
        {"replication-factor", 0, HS_CLI_LONG, &replication_factor},
        {0},
    };
    hs_cli_parse("hsctl topics", argc, argv, options, false, usage);
    if (replication_factor != LONG_MIN) {
        if (replication_factor < 1 || replication_factor > 32)
            return hsctl_fail(HS_ERR_USAGE, "--replication-factor must be 1..32");
        replication = (int)replication_factor;
    }
    const char *action = optind < argc ? argv[optind++] : NULL;
    if (action && strcmp(action, "partition") == 0) {
        if (argc - optind < 2) {
            usage(stderr);
            return HS_ERR_USAGE;
        }
        return topics_partition(argv[optind], argv + optind + 1, argc - optind - 1);
    }
    bool describe = action && strcmp(action, "describe") == 0;
    if (!action || (describe ? optind + 1 != argc : optind != argc) ||
        (!describe && strcmp(action, "create") != 0 && strcmp(action, "list") != 0)) {
        usage(stderr);
        return HS_ERR_USAGE;
    }
    const char *props[] = {"client.id", "hsctl", NULL};
    rd_kafka_t *rk = hsctl_client(RD_KAFKA_PRODUCER, g, props, NULL, NULL);
    if (!rk)
        return HS_ERR_KAFKA;
    hs_err err = strcmp(action, "create") == 0 ? topics_create(rk, g, replication)
                 : describe                    ? topics_describe(rk, g, argv[optind])
                                               : topics_list(rk, g);
    rd_kafka_destroy(rk);
    return err;
}
