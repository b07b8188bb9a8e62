/* Open-addressing hash table of text keys to byte values (see hs/table.h). The slot array holds each entry's
 * hash and address; the entries themselves (header, key, value) are bump-allocated from an arena of blocks
 * that grow with the table, so a large table costs a few large allocations and freeing it is cheap. Deleted
 * and replaced entries become garbage in the arena; when garbage outweighs the live entries, a put or delete
 * compacts the arena by copying the live entries into fresh blocks, which keeps memory within about twice the
 * live bytes at an amortised constant cost per operation.
 *
 * Invariants, checked with assert: capacity is 0 or a power of two; count <= used < capacity, so every probe
 * sequence meets an empty slot; live_bytes <= arena_bytes.
 */
#include "hs/table.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct hs_table_slot {
    uint64_t hash;
    hs_table_entry *entry; /* NULL: empty; DELETED: a deleted entry's slot, kept for the probe sequences */
};

struct hs_table_block {
    hs_table_block *next;
    size_t size; /* bytes after this header */
    size_t used;
};

static hs_table_entry deleted_marker;
#define DELETED (&deleted_marker)

#define ENTRY_ALIGN               _Alignof(hs_table_entry)
#define BLOCK_MIN_BYTES           256
#define BLOCK_MAX_BYTES           ((size_t)1 << 20)
#define COMPACT_MIN_GARBAGE_BYTES 4096 /* below this, garbage is not worth a copy of the table */

static uint64_t hash_key(const char *key, size_t key_len)
{
    return XXH3_64bits(key, key_len);
}

static size_t entry_size(size_t key_len, size_t value_len)
{
    size_t size = sizeof(hs_table_entry) + key_len + 1 + value_len;
    return (size + ENTRY_ALIGN - 1) & ~(ENTRY_ALIGN - 1);
}

static size_t entry_size_of(const hs_table_entry *e)
{
    return entry_size(strlen(e->key), e->value_len);
}

static bool live(const hs_table_slot *s)
{
    return s->entry && s->entry != DELETED;
}

void hs_table_init(hs_table *table)
{
    memset(table, 0, sizeof *table);
}

static void blocks_free(hs_table_block *block)
{
    while (block) {
        hs_table_block *next = block->next;
        free(block);
        block = next;
    }
}

void hs_table_free(hs_table *table)
{
    blocks_free(table->blocks);
    free(table->slots);
    hs_table_init(table);
}

/* `size` bytes of the arena, ENTRY_ALIGN-aligned; NULL when out of memory. A new block is as large as the
 * arena so far (within bounds), so the number of blocks grows with the logarithm of a small table's size and
 * linearly, in 1 MiB steps, for a large one. */
static void *arena_alloc(hs_table *table, size_t size)
{
    hs_table_block *block = table->blocks;
    if (!block || block->size - block->used < size) {
        size_t want = table->arena_bytes;
        want = want < BLOCK_MIN_BYTES ? BLOCK_MIN_BYTES : want > BLOCK_MAX_BYTES ? BLOCK_MAX_BYTES : want;
        if (want < size)
            want = size;
        block = malloc(sizeof *block + want);
        if (!block)
            return NULL;
        block->next = table->blocks;
        block->size = want;
        block->used = 0;
        table->blocks = block;
    }
    static_assert(sizeof(hs_table_block) % ENTRY_ALIGN == 0, "entries after a block header stay aligned");
    void *p = (char *)(block + 1) + block->used;
    block->used += size;
    table->arena_bytes += size;
    return p;
}

/* A new entry in the arena holding copies of `key` and `value`; NULL when out of memory. */
static hs_table_entry *entry_new(hs_table *table, const char *key, size_t key_len, const void *value,
                                 size_t len)
{
    size_t size = entry_size(key_len, len);
    hs_table_entry *e = arena_alloc(table, size);
    if (!e)
        return NULL;
    memcpy(e->key, key, key_len + 1);
    uint8_t *bytes = (uint8_t *)e->key + key_len + 1;
    if (len)
        memcpy(bytes, value, len);
    e->value = bytes;
    e->value_len = len;
    table->live_bytes += size;
    return e;
}

/* Copies the live entries into fresh blocks and frees the old ones. Out of memory midway, the entries not
 * yet copied stay where they are and both sets of blocks are kept: the table stays whole, just not compact.
 */
static void compact(hs_table *table)
{
    hs_table_block *old = table->blocks;
    size_t old_arena_bytes = table->arena_bytes;
    table->blocks = NULL;
    table->arena_bytes = table->live_bytes = 0;
    for (size_t i = 0; i < table->capacity; i++) {
        hs_table_slot *s = &table->slots[i];
        if (!live(s))
            continue;
        const hs_table_entry *e = s->entry;
        hs_table_entry *copy = entry_new(table, e->key, strlen(e->key), e->value, e->value_len);
        if (!copy) {
            hs_table_block **tail = &table->blocks;
            while (*tail)
                tail = &(*tail)->next;
            *tail = old;
            table->arena_bytes += old_arena_bytes;
            for (size_t j = i; j < table->capacity; j++)
                if (live(&table->slots[j]))
                    table->live_bytes += entry_size_of(table->slots[j].entry);
            return;
        }
        s->entry = copy;
    }
    blocks_free(old);
}

static void maybe_compact(hs_table *table)
{
    size_t garbage = table->arena_bytes - table->live_bytes;
    if (garbage >= COMPACT_MIN_GARBAGE_BYTES && garbage > table->live_bytes)
        compact(table);
}

/* The slot holding `key`, or the empty (or first deleted) slot where it would go. */
static hs_table_slot *find_slot(const hs_table *table, const char *key, uint64_t hash)
{
    size_t mask = table->capacity - 1;
    hs_table_slot *first_deleted = NULL;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        hs_table_slot *s = &table->slots[i];
        if (!s->entry)
            return first_deleted ? first_deleted : s;
        if (s->entry == DELETED) {
            if (!first_deleted)
                first_deleted = s;
        } else if (s->hash == hash && strcmp(s->entry->key, key) == 0) {
            return s;
        }
    }
}

static bool grow(hs_table *table)
{
    size_t capacity = table->capacity ? table->capacity * 2 : 16;
    /* Many deletions: rehash at the same size to clear the deleted slots. */
    if (table->capacity && table->count < table->capacity / 4)
        capacity = table->capacity;
    hs_table_slot *slots = calloc(capacity, sizeof *slots);
    if (!slots)
        return false;
    hs_table_slot *old = table->slots;
    size_t old_capacity = table->capacity;
    table->slots = slots;
    table->capacity = capacity;
    table->used = table->count;
    for (size_t i = 0; i < old_capacity; i++)
        if (live(&old[i]))
            *find_slot(table, old[i].entry->key, old[i].hash) = old[i];
    free(old);
    return true;
}

hs_table_change hs_table_put(hs_table *table, const char *key, const void *value, size_t len)
{
    /* Keep the load (live + deleted) under 3/4. */
    if ((table->used + 1) * 4 > table->capacity * 3 && !grow(table))
        return HS_TABLE_NOMEM;
    assert(table->capacity && (table->capacity & (table->capacity - 1)) == 0);

    size_t key_len = strlen(key);
    uint64_t hash = hash_key(key, key_len);
    hs_table_slot *s = find_slot(table, key, hash);
    if (live(s)) {
        hs_table_entry *e = s->entry;
        if (e->value_len == len && (len == 0 || memcmp(e->value, value, len) == 0))
            return HS_TABLE_UNCHANGED;
        if (entry_size(key_len, len) == entry_size(key_len, e->value_len)) {
            /* The new value fits the entry's block: overwrite it there. */
            if (len)
                memcpy((uint8_t *)e->value, value, len);
            e->value_len = len;
            return HS_TABLE_UPDATED;
        }
        size_t old_size = entry_size(key_len, e->value_len);
        hs_table_entry *replacement = entry_new(table, key, key_len, value, len);
        if (!replacement)
            return HS_TABLE_NOMEM;
        table->live_bytes -= old_size;
        s->entry = replacement;
        maybe_compact(table);
        return HS_TABLE_UPDATED;
    }

    hs_table_entry *e = entry_new(table, key, key_len, value, len);
    if (!e)
        return HS_TABLE_NOMEM;
    if (!s->entry)
        table->used++;
    s->hash = hash;
    s->entry = e;
    table->count++;
    assert(table->count <= table->used && table->used < table->capacity);
    assert(table->live_bytes <= table->arena_bytes);
    return HS_TABLE_INSERTED;
}

bool hs_table_delete(hs_table *table, const char *key)
{
    if (!table->capacity)
        return false;
    size_t key_len = strlen(key);
    hs_table_slot *s = find_slot(table, key, hash_key(key, key_len));
    if (!live(s))
        return false;
    table->live_bytes -= entry_size(key_len, s->entry->value_len);
    s->entry = DELETED;
    table->count--;
    maybe_compact(table);
    return true;
}

const hs_table_entry *hs_table_get(const hs_table *table, const char *key)
{
    if (!table->capacity)
        return NULL;
    const hs_table_slot *s = find_slot(table, key, hash_key(key, strlen(key)));
    return live(s) ? s->entry : NULL;
}

const hs_table_entry *hs_table_next(const hs_table *table, size_t *cursor)
{
    while (*cursor < table->capacity) {
        const hs_table_slot *s = &table->slots[(*cursor)++];
        if (live(s))
            return s->entry;
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

void *hs_array_grow(void *items, size_t *cap, size_t count, size_t size, size_t initial)
{
    if (count < *cap && items)
        return items;
    size_t room = *cap ? 2 * *cap : (initial ? initial : 1);
    if (room < *cap || (size && room > SIZE_MAX / size))
        return NULL;
    void *grown = realloc(items, room * (size ? size : 1));
    if (grown)
        *cap = room;
    return grown;
}
