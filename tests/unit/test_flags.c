/* Quality flags (hs/flags.h): gathered from several facts, carried sorted and without repeats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hs/flags.h"

static void test_sorted_without_repeats(void **state)
{
    (void)state;
    char *nordjylland[] = {"epj-transition"};
    char *nation[] = {"lpr3-transition", "epj-transition"};
    hs_flags flags = {0};
    assert_true(hs_flags_add_all(&flags, nation, 2));
    assert_true(hs_flags_add_all(&flags, nordjylland, 1));
    assert_true(hs_flags_add(&flags, "epj-transition"));
    hs_flags_sort_unique(&flags);
    assert_int_equal(flags.count, 2);
    assert_string_equal(flags.items[0], "epj-transition");
    assert_string_equal(flags.items[1], "lpr3-transition");
    hs_flags_free(&flags);
    assert_null(flags.items);
    assert_int_equal(flags.count, 0);
}

static void test_empty_and_growth(void **state)
{
    (void)state;
    hs_flags flags = {0};
    hs_flags_sort_unique(&flags); /* nothing to sort */
    assert_int_equal(flags.count, 0);
    const char *names[] = {"j", "i", "h", "g", "f", "e", "d", "c", "b", "a"};
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < 10; i++)
            assert_true(hs_flags_add(&flags, names[i])); /* past the first capacity of 8 */
    assert_int_equal(flags.count, 30);
    hs_flags_sort_unique(&flags);
    assert_int_equal(flags.count, 10);
    for (size_t i = 0; i < 10; i++)
        assert_string_equal(flags.items[i], names[9 - i]);
    hs_flags_free(&flags);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sorted_without_repeats),
        cmocka_unit_test(test_empty_and_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
