/* mock-retention: measures how many records librdkafka's mock cluster (hs-broker) keeps. It produces N
 * records of S bytes over the partitions of a fresh topic, reads the topic back from the beginning, and
 * reports how many survived and the offsets each partition starts at. The mock keeps its log in memory and
 * drops the oldest message sets of a partition beyond a size limit, which is why restart, rebuild and
 * benchmark tests run on real Kafka. Run through tools/bench/run mock-retention.
 *   usage: mock-retention BOOTSTRAP [RECORDS [BYTES]]
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: mock-retention BOOTSTRAP [RECORDS [BYTES]]\n");
        return 2;
    }
    const char *bootstrap = argv[1];
    long records = argc > 2 ? strtol(argv[2], NULL, 10) : 100000;
    long bytes = argc > 3 ? strtol(argv[3], NULL, 10) : 200;
    if (records <= 0 || bytes <= 0 || bytes > 1000000) {
        fprintf(stderr, "mock-retention: RECORDS and BYTES must be positive (BYTES <= 1000000)\n");
        return 2;
    }
    char topic[64];
    snprintf(topic, sizeof topic, "mock-retention-%d", (int)getpid());
    char errstr[512];

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof errstr);
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!producer) {
        fprintf(stderr, "mock-retention: %s\n", errstr);
        return 1;
    }
    char *payload = malloc((size_t)bytes);
    memset(payload, 'x', (size_t)bytes);
    for (long i = 0; i < records; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%ld", i);
        while (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                 RD_KAFKA_V_VALUE(payload, (size_t)bytes),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(producer, 10);
        rd_kafka_poll(producer, 0);
    }
    rd_kafka_flush(producer, 60000);

    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(producer, topic, NULL);
    free(payload);
    if (rd_kafka_metadata(producer, 0, rkt, &md, 10000) || md->topic_cnt != 1) {
        fprintf(stderr, "mock-retention: no metadata for %s\n", topic);
        return 1;
    }
    long kept = 0;
    int partitions = md->topics[0].partition_cnt;
    printf("produced %ld records of %ld bytes over %d partitions (%.1f MB)\n", records, bytes, partitions,
           (double)records * (double)bytes / 1e6);
    for (int p = 0; p < partitions; p++) {
        int64_t low = 0, high = 0;
        rd_kafka_query_watermark_offsets(producer, topic, p, &low, &high, 10000);
        kept += (long)(high - low);
        printf("  partition %d: offsets %lld..%lld, %lld records kept\n", p, (long long)low, (long long)high,
               (long long)(high - low));
    }
    printf("kept %ld of %ld records; lost %ld (%.1f %%)\n", kept, records, records - kept,
           100.0 * (double)(records - kept) / (double)records);
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(producer);
    return 0;
}
