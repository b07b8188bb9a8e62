/* produce_raw: writes one record with arbitrary bytes to a topic, for tests that must feed a service what no
 * well-behaved publisher would — garbage, oversized values, tombstones. The value comes from a file ("-" for
 * none: a tombstone) or is N bytes of filler ("@N"). PARTITION "=GROUP" is the partition the topic registry
 * gives that grouping key, as every publisher would choose it. Each NAME=VALUE after the value is a header
 * (a dead letter written by hand, for instance).
 *   usage: produce_raw BOOTSTRAP TOPIC (PARTITION | =GROUP) KEY (FILE | - | @N) [NAME=VALUE...]
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include "hs/topic.h"
#include "rawclient.h"
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: produce_raw BOOTSTRAP TOPIC PARTITION KEY (FILE | - | @N) [NAME=VALUE...]\n");
        return 2;
    }
    char *value = NULL;
    size_t len = 0;
    if (argv[5][0] == '@') {
        len = strtoul(argv[5] + 1, NULL, 10);
        value = malloc(len ? len : 1);
        memset(value, 'x', len);
    } else if (strcmp(argv[5], "-") != 0) {
        FILE *f = fopen(argv[5], "rb");
        if (!f) {
            perror(argv[5]);
            return 1;
        }
        fseek(f, 0, SEEK_END);
        len = (size_t)ftell(f);
        rewind(f);
        value = malloc(len ? len : 1);
        if (fread(value, 1, len, f) != len) {
            perror(argv[5]);
            return 1;
        }
        fclose(f);
    }
    int32_t partition = (int32_t)strtol(argv[3], NULL, 10);
    if (argv[3][0] == '=') {
        const hs_topic *topic = hs_topic_find(argv[2]);
        if (!topic) {
            fprintf(stderr, "produce_raw: %s is not in the topic registry\n", argv[2]);
            return 2;
        }
        partition = hs_topic_partition(topic, argv[3] + 1);
    }
    const char *const props[][2] = {{"bootstrap.servers", argv[1]}, {"message.max.bytes", "4000000"}};
    rd_kafka_t *rk = raw_client("produce_raw", RD_KAFKA_PRODUCER, props, sizeof props / sizeof props[0]);
    if (!rk)
        return 1;
    rd_kafka_headers_t *headers = rd_kafka_headers_new(8);
    for (int i = 6; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "produce_raw: header '%s' is not NAME=VALUE\n", argv[i]);
            return 2;
        }
        rd_kafka_header_add(headers, argv[i], eq - argv[i], eq + 1, -1);
    }
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(argv[2]), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(argv[4], strlen(argv[4])), RD_KAFKA_V_VALUE(value, len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
    if (err)
        rd_kafka_headers_destroy(headers);
    if (!err)
        err = rd_kafka_flush(rk, 30000);
    free(value);
    rd_kafka_destroy(rk);
    if (err) {
        fprintf(stderr, "produce_raw: %s\n", rd_kafka_err2str(err));
        return 1;
    }
    return 0;
}
