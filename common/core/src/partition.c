/* Kafka-compatible murmur2 and partition choice. A transcription of the algorithm (not of any code) in
 * Kafka's Utils.murmur2: 32-bit arithmetic with wrap-around, little-endian 4-byte blocks, seed 0x9747b28c.
 * Unsigned arithmetic here gives the same bits as Java's wrapping signed ints without C's undefined overflow.
 */
#include "hs/partition.h"

#include <assert.h>

int32_t hs_partition_murmur2(const void *data, size_t len)
{
    const uint8_t *p = data;
    const uint32_t m = 0x5bd1e995u;
    const int r = 24;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t blocks = len / 4;

    for (size_t i = 0; i < blocks; i++) {
        const uint8_t *b = p + i * 4;
        uint32_t k = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }

    /* The 1-3 trailing bytes, folded in from the highest (Java's switch falls through the same way).
     * No pointer arithmetic when there are none: `data` may be NULL for an empty key. */
    size_t rest = len & 3;
    if (rest > 0) {
        const uint8_t *tail = p + blocks * 4;
        if (rest >= 3)
            h ^= (uint32_t)tail[2] << 16;
        if (rest >= 2)
            h ^= (uint32_t)tail[1] << 8;
        h ^= tail[0];
        h *= m;
    }

    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)h;
}

int32_t hs_partition_for_key(const void *key, size_t len, int32_t partition_cnt)
{
    assert(partition_cnt > 0);
    uint32_t positive = (uint32_t)hs_partition_murmur2(key, len) & 0x7fffffffu;
    return (int32_t)(positive % (uint32_t)partition_cnt);
}
