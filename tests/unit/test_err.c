/* Error names leave the process (DLQ header `hs-error-code`, metric labels, hsctl's messages), so every code
 * must have its own stable name and a description.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hs/err.h"

static const hs_err all_codes[] = {
    HS_OK,           HS_ERR_DECODE,          HS_ERR_VALIDATION,   HS_ERR_TOO_LARGE,
    HS_ERR_PARSE,    HS_ERR_NOT_FOUND,       HS_ERR_USAGE,        HS_ERR_IO,
    HS_ERR_KAFKA,    HS_ERR_TIMEOUT,         HS_ERR_CONFIG,       HS_ERR_NOMEM,
    HS_ERR_INTERNAL, HS_ERR_WRONG_PARTITION, HS_ERR_KEY_MISMATCH,
};
#define CODE_CNT (sizeof all_codes / sizeof all_codes[0])

static void test_every_code_has_a_distinct_name(void **state)
{
    for (size_t i = 0; i < CODE_CNT; i++) {
        assert_string_not_equal(hs_err_name(all_codes[i]), "unknown");
        assert_string_not_equal(hs_err_str(all_codes[i]), "unknown error");
        for (size_t j = i + 1; j < CODE_CNT; j++)
            assert_string_not_equal(hs_err_name(all_codes[i]), hs_err_name(all_codes[j]));
    }
}

static void test_released_names_are_stable(void **state)
{
    assert_string_equal(hs_err_name(HS_ERR_DECODE), "decode");
    assert_string_equal(hs_err_name(HS_ERR_VALIDATION), "validation");
    assert_int_equal(HS_ERR_DECODE, 10);
    assert_int_equal(HS_ERR_VALIDATION, 11);
}

static void test_unknown_code_is_named_unknown(void **state)
{
    assert_string_equal(hs_err_name((hs_err)999), "unknown");
}

static void test_error_set_returns_code_and_formats_reason(void **state)
{
    hs_error error = {0};
    assert_int_equal(hs_error_set(&error, HS_ERR_VALIDATION, "%s: %d is above 100", "value", 130),
                     HS_ERR_VALIDATION);
    assert_int_equal(error.code, HS_ERR_VALIDATION);
    assert_string_equal(error.message, "value: 130 is above 100");
    hs_error_prefix(&error, "data.csv:%d", 7);
    assert_string_equal(error.message, "data.csv:7: value: 130 is above 100");
    assert_int_equal(hs_error_set(NULL, HS_ERR_PARSE, "ignored"), HS_ERR_PARSE);
}

static void test_long_reason_is_truncated_not_overflowed(void **state)
{
    hs_error error;
    char long_text[1000];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    hs_error_set(&error, HS_ERR_PARSE, "%s", long_text);
    assert_int_equal(strlen(error.message), sizeof error.message - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_has_a_distinct_name),
        cmocka_unit_test(test_released_names_are_stable),
        cmocka_unit_test(test_unknown_code_is_named_unknown),
        cmocka_unit_test(test_error_set_returns_code_and_formats_reason),
        cmocka_unit_test(test_long_reason_is_truncated_not_overflowed),
    };
    return cmocka_run_group_tests_name("err", tests, NULL, NULL);
}
