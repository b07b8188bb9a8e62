/* hs_table is the in-memory form of every compacted table: it must report exactly whether a put changed
 * anything (that is how only changed outputs get published), survive growth and deletions, and iterate
 * in key order when asked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hs/table.h"

static void test_put_reports_insert_update_and_unchanged(void **state)
{
    hs_table t;
    hs_table_init(&t);
    assert_int_equal(hs_table_put(&t, "k", "v1", 2), HS_TABLE_INSERTED);
    assert_int_equal(hs_table_put(&t, "k", "v1", 2), HS_TABLE_UNCHANGED);
    assert_int_equal(hs_table_put(&t, "k", "v2", 2), HS_TABLE_UPDATED);
    assert_int_equal(hs_table_put(&t, "k", "v2x", 3), HS_TABLE_UPDATED);
    assert_int_equal(t.count, 1);
    const hs_table_entry *e = hs_table_get(&t, "k");
    assert_non_null(e);
    assert_memory_equal(e->value, "v2x", 3);
    hs_table_free(&t);
}

static void test_empty_value_differs_from_absent(void **state)
{
    hs_table t;
    hs_table_init(&t);
    assert_null(hs_table_get(&t, "k"));
    assert_int_equal(hs_table_put(&t, "k", NULL, 0), HS_TABLE_INSERTED);
    assert_non_null(hs_table_get(&t, "k"));
    assert_int_equal(hs_table_put(&t, "k", NULL, 0), HS_TABLE_UNCHANGED);
    hs_table_free(&t);
}

static void test_many_keys_with_deletions_stay_consistent(void **state)
{
    hs_table t;
    hs_table_init(&t);
    char key[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        assert_int_equal(hs_table_put(&t, key, &i, sizeof i), HS_TABLE_INSERTED);
    }
    for (int i = 0; i < 20000; i += 2) {
        snprintf(key, sizeof key, "key-%d", i);
        assert_true(hs_table_delete(&t, key));
        assert_false(hs_table_delete(&t, key));
    }
    assert_int_equal(t.count, 10000);
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        const hs_table_entry *e = hs_table_get(&t, key);
        if (i % 2) {
            assert_non_null(e);
            assert_memory_equal(e->value, &i, sizeof i);
        } else {
            assert_null(e);
        }
    }
    /* Re-inserting into deleted slots works and iteration sees each live key once. */
    for (int i = 0; i < 20000; i += 2) {
        snprintf(key, sizeof key, "key-%d", i);
        assert_int_equal(hs_table_put(&t, key, &i, sizeof i), HS_TABLE_INSERTED);
    }
    size_t cursor = 0, seen = 0;
    while (hs_table_next(&t, &cursor))
        seen++;
    assert_int_equal(seen, 20000);
    hs_table_free(&t);
}

static void test_sorted_returns_keys_in_byte_order(void **state)
{
    hs_table t;
    hs_table_init(&t);
    const char *keys[] = {"b", "a/2", "a/10", "c", "a"};
    for (size_t i = 0; i < 5; i++)
        hs_table_put(&t, keys[i], "x", 1);
    size_t count;
    const hs_table_entry **sorted = hs_table_sorted(&t, &count);
    assert_int_equal(count, 5);
    assert_string_equal(sorted[0]->key, "a");
    assert_string_equal(sorted[1]->key, "a/10");
    assert_string_equal(sorted[2]->key, "a/2");
    assert_string_equal(sorted[3]->key, "b");
    assert_string_equal(sorted[4]->key, "c");
    free(sorted);
    hs_table_free(&t);
}

/* Entries live in an arena that deletions and growing values leave garbage in; compaction must move every
 * live entry intact and keep the arena within about twice the live bytes. */
static void test_compaction_keeps_entries_and_bounds_memory(void **state)
{
    hs_table t;
    hs_table_init(&t);
    char key[32], value[64];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 20000; i++) {
            snprintf(key, sizeof key, "key-%d", i);
            int len = snprintf(value, sizeof value, "value-%d-%0*d", i, 1 + round * 8, round);
            hs_table_put(&t, key, value, (size_t)len);
        }
        for (int i = round; i < 20000; i += 4) {
            snprintf(key, sizeof key, "key-%d", i);
            assert_true(hs_table_delete(&t, key));
        }
        assert_true(t.arena_bytes <= 2 * t.live_bytes + 4096);
    }
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        const hs_table_entry *e = hs_table_get(&t, key);
        if (i % 4 == 3) {
            assert_null(e);
            continue;
        }
        assert_non_null(e);
        int len = snprintf(value, sizeof value, "value-%d-%0*d", i, 1 + 3 * 8, 3);
        assert_int_equal(e->value_len, len);
        assert_memory_equal(e->value, value, (size_t)len);
        assert_string_equal(e->key, key);
    }
    hs_table_free(&t);
}

/* hs_array_grow: the same array while there is room, double the room when full (from `initial`), and on
 * an overflowing size NULL with the array and its room untouched. */
static void test_array_grow_doubles_when_full_and_refuses_overflow(void **state)
{
    (void)state;
    size_t cap = 0, count = 0;
    int *items = NULL;
    for (int i = 0; i < 100; i++) {
        int *grown = hs_array_grow(items, &cap, count, sizeof *grown, 4);
        assert_non_null(grown);
        items = grown;
        items[count++] = i;
        assert_true(cap >= count);
        if (count <= 4)
            assert_int_equal(cap, 4);
    }
    assert_int_equal(cap, 128); /* 4, 8, ..., 128 */
    for (int i = 0; i < 100; i++)
        assert_int_equal(items[i], i);
    assert_ptr_equal(hs_array_grow(items, &cap, 100, sizeof *items, 4), items); /* room left */
    size_t huge = SIZE_MAX / 2 + 1;
    assert_null(hs_array_grow(items, &huge, huge, 2, 4));
    assert_int_equal(huge, SIZE_MAX / 2 + 1);
    free(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_reports_insert_update_and_unchanged),
        cmocka_unit_test(test_empty_value_differs_from_absent),
        cmocka_unit_test(test_many_keys_with_deletions_stay_consistent),
        cmocka_unit_test(test_sorted_returns_keys_in_byte_order),
        cmocka_unit_test(test_compaction_keeps_entries_and_bounds_memory),
        cmocka_unit_test(test_array_grow_doubles_when_full_and_refuses_overflow),
    };
    return cmocka_run_group_tests_name("table", tests, NULL, NULL);
}
