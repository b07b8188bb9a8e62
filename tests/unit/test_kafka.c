/* The transaction timeout a service runs with (hs_kafka_txn_timeout_ms): derived from the commit interval so
 * that no commit comes later than the broker's patience, and a user's own HS_KAFKA_TRANSACTION_TIMEOUT_MS
 * refused at start-up when it would have every transaction aborted (issue 15, item 3: a 60 s interval
 * against the fixed 30 s timeout fenced the service on every late commit).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hs/kafka.h"

static long long derived(long long interval_ms)
{
    long long timeout = 0;
    hs_error error = {0};
    assert_int_equal(hs_kafka_txn_timeout_ms(interval_ms, NULL, &timeout, &error), HS_OK);
    return timeout;
}

static void test_short_intervals_get_one_minute(void **state)
{
    (void)state;
    assert_int_equal(derived(1), 60000);
    assert_int_equal(derived(100), 60000); /* the default interval */
    assert_int_equal(derived(12000), 60000);
}

static void test_long_intervals_get_five_intervals(void **state)
{
    (void)state;
    assert_int_equal(derived(45000), 225000);
    assert_int_equal(derived(60000), 300000); /* the longest interval: under the broker's 15 min maximum */
}

static void test_derived_always_outlasts_the_interval(void **state)
{
    (void)state;
    for (long long interval = 1; interval <= 60000; interval += 997)
        assert_true(derived(interval) >= HS_KAFKA_TXN_TIMEOUT_MIN_INTERVALS * interval);
}

static void test_empty_setting_counts_as_unset(void **state)
{
    (void)state;
    long long timeout = 0;
    hs_error error = {0};
    assert_int_equal(hs_kafka_txn_timeout_ms(45000, "", &timeout, &error), HS_OK);
    assert_int_equal(timeout, 225000);
}

static void test_users_timeout_is_kept_when_long_enough(void **state)
{
    (void)state;
    long long timeout = 0;
    hs_error error = {0};
    assert_int_equal(hs_kafka_txn_timeout_ms(100, "10000", &timeout, &error), HS_OK);
    assert_int_equal(timeout, 10000);
    assert_int_equal(hs_kafka_txn_timeout_ms(45000, "135000", &timeout, &error), HS_OK);
    assert_int_equal(timeout, 135000);
}

static void test_users_timeout_below_three_intervals_is_refused(void **state)
{
    (void)state;
    long long timeout = 7;
    hs_error error = {0};
    /* The case: the old fixed 30 s with a 45 s interval. */
    assert_int_equal(hs_kafka_txn_timeout_ms(45000, "30000", &timeout, &error), HS_ERR_CONFIG);
    assert_non_null(strstr(error.message, "HS_KAFKA_TRANSACTION_TIMEOUT_MS=30000 is too short"));
    assert_non_null(strstr(error.message, "45000 ms"));
    assert_non_null(strstr(error.message, "at least 135000"));
    assert_int_equal(timeout, 7); /* untouched */
    assert_int_equal(hs_kafka_txn_timeout_ms(45000, "134999", &timeout, &error), HS_ERR_CONFIG);
}

static void test_users_timeout_must_be_a_number(void **state)
{
    (void)state;
    long long timeout = 0;
    hs_error error = {0};
    const char *bad[] = {"60s", "abc", "-5", "0", " 60000", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(hs_kafka_txn_timeout_ms(100, bad[i], &timeout, &error), HS_ERR_CONFIG);
        assert_non_null(strstr(error.message, "is not a number of milliseconds"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_intervals_get_one_minute),
        cmocka_unit_test(test_long_intervals_get_five_intervals),
        cmocka_unit_test(test_derived_always_outlasts_the_interval),
        cmocka_unit_test(test_empty_setting_counts_as_unset),
        cmocka_unit_test(test_users_timeout_is_kept_when_long_enough),
        cmocka_unit_test(test_users_timeout_below_three_intervals_is_refused),
        cmocka_unit_test(test_users_timeout_must_be_a_number),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
