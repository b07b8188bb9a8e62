/* Record keys are fact identities: joining must be reversible for any component text, and keys must stay
 * readable for the common case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hs/key.h"

static void test_plain_components_join_with_slashes(void **state)
{
    char key[HS_KEY_MAX];
    const char *parts[] = {"udredningsret.somatik.compliance", "region:1084", "2023Q2"};
    assert_int_equal(hs_key_join(key, parts, 3, NULL), HS_OK);
    assert_string_equal(key, "udredningsret.somatik.compliance/region:1084/2023Q2");
}

static void test_slash_and_percent_are_escaped_and_split_back(void **state)
{
    char key[HS_KEY_MAX], storage[HS_KEY_MAX];
    char *parts[4];
    const char *in[] = {"a/b", "50%", "", "x"};
    assert_int_equal(hs_key_join(key, in, 4, NULL), HS_OK);
    assert_string_equal(key, "a%2Fb/50%25//x");
    assert_int_equal(hs_key_split(key, storage, parts, 4), 4);
    assert_string_equal(parts[0], "a/b");
    assert_string_equal(parts[1], "50%");
    assert_string_equal(parts[2], "");
    assert_string_equal(parts[3], "x");
}

static void test_utf8_components_pass_through(void **state)
{
    char key[HS_KEY_MAX];
    const char *parts[] = {"danske-regioner", "Øvrige kontingenter", "2023", "BUDGET"};
    assert_int_equal(hs_key_join(key, parts, 4, NULL), HS_OK);
    assert_string_equal(key, "danske-regioner/Øvrige kontingenter/2023/BUDGET");
}

static void test_too_long_key_is_refused(void **state)
{
    char key[HS_KEY_MAX], big[HS_KEY_MAX];
    memset(big, '/', sizeof big - 1); /* every byte escapes to three */
    big[sizeof big - 1] = '\0';
    const char *parts[] = {big};
    hs_error error;
    assert_int_equal(hs_key_join(key, parts, 1, &error), HS_ERR_TOO_LARGE);
    assert_string_equal(key, "");
}

static void test_split_rejects_bad_escape_and_too_many_parts(void **state)
{
    char storage[HS_KEY_MAX];
    char *parts[2];
    assert_int_equal(hs_key_split("a%2xb", storage, parts, 2), -1);
    assert_int_equal(hs_key_split("a/b/c", storage, parts, 2), -1);
    assert_int_equal(hs_key_split("a/b", storage, parts, 2), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_components_join_with_slashes),
        cmocka_unit_test(test_slash_and_percent_are_escaped_and_split_back),
        cmocka_unit_test(test_utf8_components_pass_through),
        cmocka_unit_test(test_too_long_key_is_refused),
        cmocka_unit_test(test_split_rejects_bad_escape_and_too_many_parts),
    };
    return cmocka_run_group_tests_name("key", tests, NULL, NULL);
}
