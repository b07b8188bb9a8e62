/* read_raw: prints every committed record of a topic as it is on the wire, one JSON object per line —
 * partition, offset, key and value in base64 (null when absent) and every header as [name, base64 value] —
 * for tests that check what no decoding tool shows: the exact headers (CloudEvents binary mode) and bytes.
 *   usage: read_raw BOOTSTRAP TOPIC
 */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hs/json.h"
#include "rawclient.h"

static json_t *bytes_json(const void *data, size_t len)
{
    if (!data)
        return json_null();
    char *b64 = hs_json_base64_encode(data, len);
    json_t *out = json_string(b64 ? b64 : "");
    free(b64);
    return out;
}

static json_t *record_json(const rd_kafka_message_t *record)
{
    json_t *headers = json_array();
    rd_kafka_headers_t *hdrs;
    if (rd_kafka_message_headers(record, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *value;
        size_t len;
        for (size_t i = 0;
             rd_kafka_header_get_all(hdrs, i, &name, &value, &len) == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
            json_array_append_new(headers, json_pack("[s, o]", name, bytes_json(value, len)));
    }
    return json_pack("{s:i, s:I, s:o, s:o, s:o}", "partition", (int)record->partition, "offset",
                     (json_int_t)record->offset, "key", bytes_json(record->key, record->key_len), "value",
                     bytes_json(record->payload, record->len), "headers", headers);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: read_raw BOOTSTRAP TOPIC\n");
        return 2;
    }
    char group[64];
    snprintf(group, sizeof group, "read-raw-%d", (int)getpid());
    const char *const props[][2] = {{"bootstrap.servers", argv[1]},
                                    {"group.id", group},
                                    {"isolation.level", "read_committed"},
                                    {"enable.partition.eof", "true"},
                                    {"enable.auto.commit", "false"}};
    rd_kafka_t *rk = raw_client("read_raw", RD_KAFKA_CONSUMER, props, sizeof props / sizeof props[0]);
    if (!rk)
        return 1;
    rd_kafka_poll_set_consumer(rk);
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, argv[2], NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 30000);
    rd_kafka_topic_destroy(rkt);
    if (err || md->topics[0].err) {
        fprintf(stderr, "read_raw: metadata of %s: %s\n", argv[2],
                rd_kafka_err2str(err ? err : md->topics[0].err));
        return 1;
    }
    int partitions = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *assignment = rd_kafka_topic_partition_list_new(partitions);
    for (int i = 0; i < partitions; i++)
        rd_kafka_topic_partition_list_add(assignment, argv[2], md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    rd_kafka_assign(rk, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);
    int ended = 0, status = 0;
    while (ended < partitions) {
        rd_kafka_message_t *record = rd_kafka_consumer_poll(rk, 30000);
        if (!record) {
            fprintf(stderr, "read_raw: nothing from %s within 30 s\n", argv[2]);
            status = 1;
            break;
        }
        if (record->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            ended++;
        } else if (record->err) {
            fprintf(stderr, "read_raw: %s\n", rd_kafka_message_errstr(record));
        } else {
            json_t *line = record_json(record);
            char *text = json_dumps(line, JSON_COMPACT);
            puts(text);
            free(text);
            json_decref(line);
        }
        rd_kafka_message_destroy(record);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return status;
}
