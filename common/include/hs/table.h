/* hs_table: a hash table from text keys to byte values, the in-memory form of a compacted topic. The
 * runtime keeps one per input partition (the materialised facts) and one per output table (the last value
 * emitted per key, so that only changes are published); the offline mode keeps the same. Open addressing
 * with linear probing, power-of-two capacity, tombstone slots on delete. Keys and values are copied in.
 */
#ifndef HS_TABLE_H
#define HS_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hs_table_entry {
    char *key; /* NULL: empty slot; HS_TABLE_DELETED: deleted slot */
    uint8_t *value;
    size_t value_len;
    uint64_t hash;
} hs_table_entry;

typedef struct hs_table {
    hs_table_entry *slots;
    size_t capacity; /* power of two, or 0 before the first put */
    size_t count;    /* live entries */
    size_t used;     /* live + deleted slots */
} hs_table;

/* How a put changed the table: lets a caller publish only what changed. */
typedef enum hs_table_change {
    HS_TABLE_UNCHANGED = 0, /* the key already held exactly these bytes */
    HS_TABLE_INSERTED = 1,
    HS_TABLE_UPDATED = 2,
    HS_TABLE_NOMEM = -1,
} hs_table_change;

void hs_table_init(hs_table *table);
void hs_table_free(hs_table *table);

/* Stores a copy of `value` (len may be 0) under a copy of `key`. */
hs_table_change hs_table_put(hs_table *table, const char *key, const void *value, size_t len);

/* Removes `key`; returns true if it was present. */
bool hs_table_delete(hs_table *table, const char *key);

/* The entry for `key`, or NULL. Valid until the next put or delete. */
const hs_table_entry *hs_table_get(const hs_table *table, const char *key);

/* Iteration: pass *cursor = 0 first; returns the next live entry or NULL at the end. Order is arbitrary;
 * the table must not change during iteration. */
const hs_table_entry *hs_table_next(const hs_table *table, size_t *cursor);

/* The live entries sorted by key, in a malloc'd array the caller frees (the entries stay owned by the
 * table). NULL when the table is empty or out of memory; `*count` says which. */
const hs_table_entry **hs_table_sorted(const hs_table *table, size_t *count);

#endif
