/* The count calculation through the offline driver: the smallest end-to-end check of the calculation
 * contract — facts in, output table out, only changes emitted, tombstones and revisions handled, and the
 * same final table whatever order the facts arrive in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "count.h"
#include "healthsignals/v1/diagnostics.pb-c.h"
#include "healthsignals/v1/indicator.pb-c.h"
#include "hs/offline.h"

#define FACT(indicator, region, period, value)                                                               \
    "{\"specversion\":\"1.0\",\"id\":\"t\",\"source\":\"test\",\"type\":\"healthsignals.v1."                 \
    "IndicatorObservation\","                                                                                \
    "\"data\":{\"indicator\":\"" indicator "\",\"scope\":{\"kind\":\"REGION\",\"code\":\"" region            \
    "\"},\"period\":\"" period "\",\"value\":" value ",\"unit\":\"PERCENT\"}}\n"
#define TOMBSTONE(key)                                                                                       \
    "{\"specversion\":\"1.0\",\"id\":\"t\",\"source\":\"test\",\"type\":\"healthsignals.v1."                 \
    "IndicatorObservation\","                                                                                \
    "\"subject\":\"" key "\",\"data\":null}\n"

/* Runs the count calculation over `input`; returns the output text (caller frees). */
static char *run_count(const char *input, bool changes, hs_offline_stats *stats)
{
    FILE *in = fmemopen((void *)input, strlen(input), "r");
    char *output = NULL;
    size_t output_len = 0;
    FILE *out = open_memstream(&output, &output_len);
    hs_offline_options options = {.changes = changes};
    hs_error error;
    assert_int_equal(hs_offline_run(&count_calc, NULL, NULL, in, "test", out, &options, stats, &error),
                     HS_OK);
    fclose(in);
    fclose(out);
    return output;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static void test_counts_facts_per_indicator(void **state)
{
    hs_offline_stats stats;
    char *out = run_count(FACT("a.x", "1084", "2023Q1", "83") FACT("a.x", "1082", "2023Q1", "61")
                              FACT("b.y", "1084", "2023Q1", "37"),
                          false, &stats);
    assert_int_equal(stats.facts, 3);
    assert_int_equal(stats.outputs, 2);
    assert_int_equal(count_lines(out), 2);
    /* Sorted by key: "a.x/hs.indicators.v1" before "b.y/...". */
    assert_non_null(strstr(out, "\"subject\":\"a.x/hs.indicators.v1\""));
    assert_non_null(strstr(out, "\"group\":\"a.x\",\"facts\":\"2\""));
    assert_non_null(strstr(out, "\"group\":\"b.y\",\"facts\":\"1\""));
    assert_true(strstr(out, "a.x/hs.indicators.v1") < strstr(out, "b.y/hs.indicators.v1"));
    free(out);
}

static void test_same_facts_twice_emit_nothing_new(void **state)
{
    hs_offline_stats once, twice;
    const char *facts = FACT("a.x", "1084", "2023Q1", "83") FACT("a.x", "1082", "2023Q1", "61");
    char *a = run_count(facts, true, &once);
    char *doubled = malloc(2 * strlen(facts) + 1);
    strcpy(doubled, facts);
    strcat(doubled, facts);
    char *b = run_count(doubled, true, &twice);
    assert_int_equal(once.changes, 2);
    assert_int_equal(twice.changes, 2); /* the replay changed nothing */
    free(a);
    free(b);
    free(doubled);
}

static void test_revision_does_not_count_twice(void **state)
{
    hs_offline_stats stats;
    char *out =
        run_count(FACT("a.x", "1084", "2022Q4", "79") FACT("a.x", "1084", "2022Q4", "75"), false, &stats);
    assert_non_null(strstr(out, "\"facts\":\"1\""));
    free(out);
}

static void test_tombstone_removes_fact_and_deletes_empty_group(void **state)
{
    hs_offline_stats stats;
    char *out = run_count(FACT("a.x", "1084", "2023Q1", "83") FACT("a.x", "1082", "2023Q1", "61")
                              TOMBSTONE("a.x/region:1084/2023Q1") TOMBSTONE("a.x/region:1082/2023Q1")
                                  TOMBSTONE("a.x/region:1082/2023Q1"),
                          true, &stats);
    /* changes: 1, 2, 1, deleted — the repeated tombstone changes nothing */
    assert_int_equal(stats.changes, 4);
    assert_int_equal(stats.outputs, 0);
    assert_non_null(strstr(out, "\"data\":null"));
    free(out);
}

static void test_final_table_does_not_depend_on_order(void **state)
{
    hs_offline_stats s1, s2;
    char *forward = run_count(FACT("a.x", "1084", "2023Q1", "83") FACT("b.y", "1082", "2023Q1", "61")
                                  FACT("a.x", "1085", "2023Q1", "75"),
                              false, &s1);
    char *backward = run_count(FACT("a.x", "1085", "2023Q1", "75") FACT("b.y", "1082", "2023Q1", "61")
                                   FACT("a.x", "1084", "2023Q1", "83"),
                               false, &s2);
    assert_string_equal(forward, backward);
    free(forward);
    free(backward);
}

static void test_bad_lines_are_reported_and_skipped(void **state)
{
    hs_offline_stats stats;
    char *out = run_count(
        "not json\n" FACT("a.x", "1084", "2023Q1", "130") FACT("a.x", "1084", "2023Q1", "83"), false, &stats);
    assert_int_equal(stats.rejected, 2); /* invalid JSON, and 130 % */
    assert_int_equal(stats.facts, 1);
    assert_non_null(strstr(out, "\"facts\":\"1\""));
    free(out);
}

/* The count keeps a fact as its key alone and takes the group from the key: a record whose key names
 * another group than its value never reaches it — the driver's admission refuses it (hs_topic_admit), here
 * the offline driver's, and the count stays what the admitted facts make it. */
static void test_a_key_naming_another_group_never_reaches_the_count(void **state)
{
    hs_offline_stats stats;
    char *out = run_count(
        "{\"specversion\":\"1.0\",\"id\":\"t\",\"source\":\"test\",\"type\":\"healthsignals.v1."
        "IndicatorObservation\",\"subject\":\"b.y/region:1084/2023Q1\",\"data\":{\"indicator\":\"a.x\","
        "\"scope\":{\"kind\":\"REGION\",\"code\":\"1084\"},\"period\":\"2023Q1\",\"value\":83,"
        "\"unit\":\"PERCENT\"}}\n" FACT("a.x", "1082", "2023Q1", "61"),
        false, &stats);
    assert_int_equal(stats.rejected, 1);
    assert_int_equal(stats.facts, 1);
    assert_non_null(strstr(out, "\"group\":\"a.x\""));
    assert_non_null(strstr(out, "\"facts\":\"1\""));
    assert_null(strstr(out, "b.y"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_facts_per_indicator),
        cmocka_unit_test(test_same_facts_twice_emit_nothing_new),
        cmocka_unit_test(test_revision_does_not_count_twice),
        cmocka_unit_test(test_tombstone_removes_fact_and_deletes_empty_group),
        cmocka_unit_test(test_final_table_does_not_depend_on_order),
        cmocka_unit_test(test_bad_lines_are_reported_and_skipped),
        cmocka_unit_test(test_a_key_naming_another_group_never_reaches_the_count),
    };
    return cmocka_run_group_tests_name("count", tests, NULL, NULL);
}
