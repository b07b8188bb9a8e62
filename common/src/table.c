/* Open-addressing hash table of text keys to byte values (see hs/table.h). Invariants, checked with assert:
 * capacity is 0 or a power of two; count <= used < capacity, so every probe sequence meets an empty slot.
 */
#include "hs/table.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static char deleted_marker;
#define HS_TABLE_DELETED (&deleted_marker)

static uint64_t hash_key(const char *key)
{
    return XXH3_64bits(key, strlen(key));
}

void hs_table_init(hs_table *table)
{
    memset(table, 0, sizeof *table);
}

void hs_table_free(hs_table *table)
{
    for (size_t i = 0; i < table->capacity; i++) {
        hs_table_entry *e = &table->slots[i];
        if (e->key && e->key != HS_TABLE_DELETED) {
            free(e->key);
            free(e->value);
        }
    }
    free(table->slots);
    hs_table_init(table);
}

/* The slot holding `key`, or the empty slot where it would go. */
static hs_table_entry *find_slot(const hs_table *table, const char *key, uint64_t hash)
{
    size_t mask = table->capacity - 1;
    hs_table_entry *first_deleted = NULL;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        hs_table_entry *e = &table->slots[i];
        if (!e->key)
            return first_deleted ? first_deleted : e;
        if (e->key == HS_TABLE_DELETED) {
            if (!first_deleted)
                first_deleted = e;
        } else if (e->hash == hash && strcmp(e->key, key) == 0) {
            return e;
        }
    }
}

static bool grow(hs_table *table)
{
    size_t capacity = table->capacity ? table->capacity * 2 : 16;
    /* Many deletions: rehash at the same size to clear the deleted slots. */
    if (table->capacity && table->count < table->capacity / 4)
        capacity = table->capacity;
    hs_table_entry *slots = calloc(capacity, sizeof *slots);
    if (!slots)
        return false;
    hs_table old = *table;
    table->slots = slots;
    table->capacity = capacity;
    table->used = table->count;
    for (size_t i = 0; i < old.capacity; i++) {
        hs_table_entry *e = &old.slots[i];
        if (e->key && e->key != HS_TABLE_DELETED)
            *find_slot(table, e->key, e->hash) = *e;
    }
    free(old.slots);
    return true;
}

hs_table_change hs_table_put(hs_table *table, const char *key, const void *value, size_t len)
{
    /* Keep the load (live + deleted) under 3/4. */
    if ((table->used + 1) * 4 > table->capacity * 3 && !grow(table))
        return HS_TABLE_NOMEM;
    assert(table->capacity && (table->capacity & (table->capacity - 1)) == 0);

    uint64_t hash = hash_key(key);
    hs_table_entry *e = find_slot(table, key, hash);
    bool present = e->key && e->key != HS_TABLE_DELETED;
    if (present && e->value_len == len && (len == 0 || memcmp(e->value, value, len) == 0))
        return HS_TABLE_UNCHANGED;

    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return HS_TABLE_NOMEM;
    if (len)
        memcpy(copy, value, len);
    if (present) {
        free(e->value);
        e->value = copy;
        e->value_len = len;
        return HS_TABLE_UPDATED;
    }
    char *key_copy = strdup(key);
    if (!key_copy) {
        free(copy);
        return HS_TABLE_NOMEM;
    }
    if (!e->key)
        table->used++;
    *e = (hs_table_entry){key_copy, copy, len, hash};
    table->count++;
    assert(table->count <= table->used && table->used < table->capacity);
    return HS_TABLE_INSERTED;
}

bool hs_table_delete(hs_table *table, const char *key)
{
    if (!table->capacity)
        return false;
    hs_table_entry *e = find_slot(table, key, hash_key(key));
    if (!e->key || e->key == HS_TABLE_DELETED)
        return false;
    free(e->key);
    free(e->value);
    *e = (hs_table_entry){HS_TABLE_DELETED, NULL, 0, 0};
    table->count--;
    return true;
}

const hs_table_entry *hs_table_get(const hs_table *table, const char *key)
{
    if (!table->capacity)
        return NULL;
    const hs_table_entry *e = find_slot(table, key, hash_key(key));
    return e->key && e->key != HS_TABLE_DELETED ? e : NULL;
}

const hs_table_entry *hs_table_next(const hs_table *table, size_t *cursor)
{
    while (*cursor < table->capacity) {
        const hs_table_entry *e = &table->slots[(*cursor)++];
        if (e->key && e->key != HS_TABLE_DELETED)
            return e;
    }
    return NULL;
}

static int compare_entries(const void *a, const void *b)
{
    return strcmp((*(const hs_table_entry *const *)a)->key, (*(const hs_table_entry *const *)b)->key);
}

const hs_table_entry **hs_table_sorted(const hs_table *table, size_t *count)
{
    *count = table->count;
    if (!table->count)
        return NULL;
    const hs_table_entry **sorted = malloc(table->count * sizeof(const hs_table_entry *));
    if (!sorted)
        return NULL;
    size_t cursor = 0, n = 0;
    const hs_table_entry *e;
    while ((e = hs_table_next(table, &cursor)))
        sorted[n++] = e;
    assert(n == table->count);
    qsort(sorted, n, sizeof(const hs_table_entry *), compare_entries);
    return sorted;
}
