/* hs_table: a hash table from text keys to byte values, the in-memory form of a compacted topic. The
 * runtime keeps one per output table (the digest of the value last emitted per key, so that only changes are
 * published), calculations keep their facts in them, and the offline mode keeps its output tables in them.
 * Open addressing with linear probing, power-of-two capacity, tombstone slots on delete. Keys and values are
 * copied in: each entry is one block of the table's own arena holding a small header, the key and the value,
 * so a million keys cost a million small blocks of a few large allocations, not two mallocs each.
 */
#ifndef HS_TABLE_H
#define HS_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One live entry. Entries live in the table's arena and move when it is compacted: a pointer to an entry,
 * its key or its value stays valid only until the next put or delete on the same table. */
typedef struct hs_table_entry {
    const uint8_t *value; /* value_len bytes inside this entry, after the key; not aligned (memcpy them) */
    size_t value_len;
    char key[]; /* NUL-terminated */
} hs_table_entry;

typedef struct hs_table_slot hs_table_slot;   /* table.c: an entry's hash and address */
typedef struct hs_table_block hs_table_block; /* table.c: one allocation of the arena */

typedef struct hs_table {
    hs_table_slot *slots;
    size_t capacity;        /* power of two, or 0 before the first put */
    size_t count;           /* live entries */
    size_t used;            /* live + deleted slots */
    hs_table_block *blocks; /* the arena, newest block first */
    size_t arena_bytes;     /* bytes handed out from the arena: live entries and garbage */
    size_t live_bytes;      /* bytes of live entries; the rest is reclaimed by compaction */
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
 * table, valid until the next put or delete). NULL when the table is empty or out of memory; `*count` says
 * which. */
const hs_table_entry **hs_table_sorted(const hs_table *table, size_t *count);

/* Room for one more element in a growable array: `items` holds `count` elements of `size` bytes in room for
 * *cap. When it is full, the room doubles (to `initial` from none) and the moved array is returned, with *cap
 * updated; otherwise `items` itself. NULL when out of memory or the size would overflow: then `items` and
 * *cap are unchanged and still the caller's. The one growth step of the calculations' arrays:
 *     tg_fact *grown = hs_array_grow(series->facts, &series->cap, series->count, sizeof *grown, 8);
 *     if (!grown) return false;
 *     series->facts = grown; */
void *hs_array_grow(void *items, size_t *cap, size_t count, size_t size, size_t initial);

#endif
