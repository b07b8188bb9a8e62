/* The transaction timeout a service runs with (hs_kafka_txn_timeout_ms): derived from the commit interval so
 * that no commit comes later than the broker's patience, and a user's own HS_KAFKA_TRANSACTION_TIMEOUT_MS
 * refused at start-up when it would have every transaction aborted (issue 15, item 3: a 60 s interval
 * against the fixed 30 s timeout fenced the service on every late commit).
 * And secrets through HS_KAFKA_<PROP>_FILE (hs_kafka_conf_new): read from the file, never in a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* --- secrets from files (HS_KAFKA_<PROP>_FILE) ------------------------------------------------------------
 */

#define SECRET "s3cret-Pa55word"

static char secret_path[64];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int secret_setup(void **state)
{
    (void)state;
    snprintf(secret_path, sizeof secret_path, "/tmp/hs-test-kafka-secret-%d", (int)getpid());
    unsetenv("HS_KAFKA_SASL_PASSWORD");
    unsetenv("HS_KAFKA_SASL_PASSWORD_FILE");
    return 0;
}

static int secret_teardown(void **state)
{
    (void)state;
    unlink(secret_path);
    unsetenv("HS_KAFKA_SASL_PASSWORD");
    unsetenv("HS_KAFKA_SASL_PASSWORD_FILE");
    return 0;
}

static void assert_property(rd_kafka_conf_t *conf, const char *name, const char *expected)
{
    char value[256];
    size_t size = sizeof value;
    assert_int_equal(rd_kafka_conf_get(conf, name, value, &size), RD_KAFKA_CONF_OK);
    assert_string_equal(value, expected);
}

static void test_password_file_sets_the_property_without_its_line_end(void **state)
{
    (void)state;
    write_file(secret_path, SECRET "\n");
    setenv("HS_KAFKA_SASL_PASSWORD_FILE", secret_path, 1);
    hs_error error = {0};
    rd_kafka_conf_t *conf = hs_kafka_conf_new("127.0.0.1:1", &error);
    assert_non_null(conf);
    assert_property(conf, "sasl.password", SECRET);
    rd_kafka_conf_destroy(conf);

    write_file(secret_path, SECRET "\r\n"); /* written on Windows */
    conf = hs_kafka_conf_new("127.0.0.1:1", &error);
    assert_non_null(conf);
    assert_property(conf, "sasl.password", SECRET);
    rd_kafka_conf_destroy(conf);
}

static void test_value_and_file_together_are_refused(void **state)
{
    (void)state;
    write_file(secret_path, SECRET);
    setenv("HS_KAFKA_SASL_PASSWORD_FILE", secret_path, 1);
    setenv("HS_KAFKA_SASL_PASSWORD", "other" SECRET, 1);
    hs_error error = {0};
    assert_null(hs_kafka_conf_new("127.0.0.1:1", &error));
    assert_int_equal(error.code, HS_ERR_CONFIG);
    assert_non_null(strstr(error.message, "both HS_KAFKA_SASL_PASSWORD and HS_KAFKA_SASL_PASSWORD_FILE"));
    assert_null(strstr(error.message, SECRET));
}

static void test_unreadable_or_empty_file_is_a_clear_error(void **state)
{
    (void)state;
    setenv("HS_KAFKA_SASL_PASSWORD_FILE", "/nonexistent/hs-password", 1);
    hs_error error = {0};
    assert_null(hs_kafka_conf_new("127.0.0.1:1", &error));
    assert_int_equal(error.code, HS_ERR_CONFIG);
    assert_non_null(
        strstr(error.message, "HS_KAFKA_SASL_PASSWORD_FILE: cannot open '/nonexistent/hs-password'"));

    write_file(secret_path, "\n");
    setenv("HS_KAFKA_SASL_PASSWORD_FILE", secret_path, 1);
    assert_null(hs_kafka_conf_new("127.0.0.1:1", &error));
    assert_non_null(strstr(error.message, "is empty"));
}

static void test_file_suffix_of_an_unknown_property_is_refused(void **state)
{
    (void)state;
    write_file(secret_path, SECRET);
    setenv("HS_KAFKA_SASL_PASWORD_FILE", secret_path, 1); /* a typo */
    hs_error error = {0};
    rd_kafka_conf_t *conf = hs_kafka_conf_new("127.0.0.1:1", &error);
    unsetenv("HS_KAFKA_SASL_PASWORD_FILE");
    assert_null(conf);
    assert_non_null(strstr(error.message, "HS_KAFKA_SASL_PASWORD_FILE: no Kafka property sasl.pasword"));
    assert_null(strstr(error.message, SECRET));
}

static void test_secret_properties_are_known(void **state)
{
    (void)state;
    const char *secret[] = {"sasl.password",
                            "ssl.key.password",
                            "ssl.keystore.password",
                            "ssl.key.pem",
                            "ssl_key",
                            "sasl.oauthbearer.client.secret",
                            "sasl.oauthbearer.config"};
    for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++)
        assert_true(hs_kafka_property_is_secret(secret[i]));
    assert_false(hs_kafka_property_is_secret("sasl.username"));
    assert_false(hs_kafka_property_is_secret("ssl.key.location"));
    assert_false(hs_kafka_property_is_secret("security.protocol"));
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
        cmocka_unit_test_setup_teardown(test_password_file_sets_the_property_without_its_line_end,
                                        secret_setup, secret_teardown),
        cmocka_unit_test_setup_teardown(test_value_and_file_together_are_refused, secret_setup,
                                        secret_teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_or_empty_file_is_a_clear_error, secret_setup,
                                        secret_teardown),
        cmocka_unit_test_setup_teardown(test_file_suffix_of_an_unknown_property_is_refused, secret_setup,
                                        secret_teardown),
        cmocka_unit_test(test_secret_properties_are_known),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
