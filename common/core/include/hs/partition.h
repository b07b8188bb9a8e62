/* Partition choice, compatible with Kafka's Java client. A record's key is its fact identity, but its
 * partition is chosen from the topic's grouping key (docs/design.md §5), hashed with the same
 * murmur2 the Java producer's default partitioner uses, so that a record published from Java, from
 * librdkafka's "murmur2_random" partitioner or from healthsignals lands in the same partition.
 */
#ifndef HS_PARTITION_H
#define HS_PARTITION_H

#include <stddef.h>
#include <stdint.h>

/* Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2) of `len` bytes at `data`, returned as the
 * signed 32-bit value Java returns. `data` may be NULL when `len` is 0. */
int32_t hs_partition_murmur2(const void *data, size_t len);

/* The partition of a record whose grouping key is `key` in a topic of `partition_cnt` partitions:
 * toPositive(murmur2(key)) % partition_cnt, as Kafka's default partitioner. `partition_cnt` must be > 0. */
int32_t hs_partition_for_key(const void *key, size_t len, int32_t partition_cnt);

#endif
