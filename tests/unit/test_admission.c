/* Admission (hs/topic.h): what a service computes on. A record must sit on the partition that Kafka's murmur2
 * of its grouping key chooses among the registry's partitions, and its key must be its value's identity;
 * anything else would be counted apart from, or twice beside, the facts it belongs with (issue 14: a
 * producer's default partitioner split kraeft.standardforloeb.compliance over two partitions and its count
 * fell from 42 to 1). The expected partitions are from Kafka's own murmur2 vectors (UtilsTest.testMurmur2),
 * so that the rule is Java's, not merely ours.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "healthsignals/v1/budget.pb-c.h"
#include "healthsignals/v1/capacity.pb-c.h"
#include "healthsignals/v1/indicator.pb-c.h"
#include "hs/topic.h"
#include "records.h"

static const hs_topic *topic(const char *name)
{
    const hs_topic *t = hs_topic_find(name);
    assert_non_null(t);
    return t;
}

static void test_expected_partition_is_java_murmur2_of_the_grouping_key(void **state)
{
    /* Utils.murmur2("foobar") = -790332482, toPositive 1357151166: 8 partitions -> 6, 4 -> 2.
     * Utils.murmur2("21") = -973932308, toPositive 1173551340: 8 -> 4, 4 -> 0.
     * Utils.murmur2("abc") = 479470107: 8 -> 3. */
    assert_int_equal(hs_topic_partition(topic(HS_TOPIC_INDICATORS), "foobar"), 6);
    assert_int_equal(hs_topic_partition(topic(HS_TOPIC_CAPACITY), "21"), 4);
    assert_int_equal(hs_topic_partition(topic(HS_TOPIC_INDICATORS), "abc"), 3);
    assert_int_equal(hs_topic_partition(topic(HS_TOPIC_BUDGET), "foobar"), 2);
    assert_int_equal(hs_topic_partition(topic(HS_TOPIC_BUDGET), "21"), 0);
}

static void test_record_on_its_grouping_keys_partition_is_admitted(void **state)
{
    hs_error error = {0};
    assert_int_equal(hs_topic_check_partition(topic(HS_TOPIC_INDICATORS), "foobar", 6, &error), HS_OK);
    assert_int_equal(hs_topic_check_partition(topic(HS_TOPIC_BUDGET), "foobar", 2, &error), HS_OK);
}

static void test_record_on_another_partition_names_the_expected_one(void **state)
{
    hs_error error = {0};
    assert_int_equal(hs_topic_check_partition(topic(HS_TOPIC_INDICATORS), "foobar", 3, &error),
                     HS_ERR_WRONG_PARTITION);
    assert_string_equal(error.message,
                        "record on partition 3, its grouping key 'foobar' belongs on partition 6 of 8");
    assert_int_equal(hs_topic_check_partition(topic(HS_TOPIC_BUDGET), "21", 1, &error),
                     HS_ERR_WRONG_PARTITION);
    assert_string_equal(error.message,
                        "record on partition 1, its grouping key '21' belongs on partition 0 of 4");
}

static void test_the_global_rules_topic_has_no_wrong_partition(void **state)
{
    assert_int_equal(hs_topic_check_partition(topic(HS_TOPIC_RULES), "targets", 0, NULL), HS_OK);
}

/* An IndicatorObservation of `indicator` for `region` in 2023Q2. */
static Healthsignals__V1__IndicatorObservation
observation(const char *indicator, Healthsignals__V1__Scope *scope, const char *region)
{
    *scope = (Healthsignals__V1__Scope)HEALTHSIGNALS__V1__SCOPE__INIT;
    scope->kind = HEALTHSIGNALS__V1__SCOPE_KIND__REGION;
    scope->code = (char *)region;
    Healthsignals__V1__IndicatorObservation obs = HEALTHSIGNALS__V1__INDICATOR_OBSERVATION__INIT;
    obs.indicator = (char *)indicator;
    obs.scope = scope;
    obs.period = "2023Q2";
    obs.value = 42;
    obs.unit = HEALTHSIGNALS__V1__UNIT__PERCENT;
    return obs;
}

static void test_indicator_fact_with_its_own_key_on_its_partition_is_admitted(void **state)
{
    Healthsignals__V1__Scope scope;
    Healthsignals__V1__IndicatorObservation obs = observation("foobar", &scope, "1084");
    hs_error error = {0};
    assert_int_equal(
        hs_topic_admit(topic(HS_TOPIC_INDICATORS), 6, "foobar/region:1084/2023Q2", &obs.base, &error), HS_OK);
}

static void test_indicator_key_that_is_not_the_values_identity_names_both(void **state)
{
    Healthsignals__V1__Scope scope;
    Healthsignals__V1__IndicatorObservation obs = observation("foobar", &scope, "1082");
    hs_error error = {0};
    assert_int_equal(
        hs_topic_admit(topic(HS_TOPIC_INDICATORS), 6, "foobar/region:1081/2023Q2", &obs.base, &error),
        HS_ERR_KEY_MISMATCH);
    assert_string_equal(error.message, "record key 'foobar/region:1081/2023Q2' is not its value's identity "
                                       "'foobar/region:1082/2023Q2' (indicator/scope/period)");
}

static void test_indicator_key_of_another_grouping_key_is_a_mismatch_not_a_partition_error(void **state)
{
    /* The key says "abc" (partition 3), the value "foobar" (6): the key is wrong, wherever the record is. */
    Healthsignals__V1__Scope scope;
    Healthsignals__V1__IndicatorObservation obs = observation("foobar", &scope, "1084");
    hs_error error = {0};
    assert_int_equal(
        hs_topic_admit(topic(HS_TOPIC_INDICATORS), 3, "abc/region:1084/2023Q2", &obs.base, &error),
        HS_ERR_KEY_MISMATCH);
}

static void test_indicator_fact_on_the_wrong_partition_is_refused(void **state)
{
    Healthsignals__V1__Scope scope;
    Healthsignals__V1__IndicatorObservation obs =
        observation("kraeft.standardforloeb.compliance", &scope, "1084");
    hs_error error = {0};
    /* toPositive(murmur2) = 759423447, % 8 = 7; a client's default partitioner hashing the whole key chose
     * another partition. */
    assert_int_equal(hs_topic_admit(topic(HS_TOPIC_INDICATORS), 1,
                                    "kraeft.standardforloeb.compliance/region:1084/2023Q2", &obs.base,
                                    &error),
                     HS_ERR_WRONG_PARTITION);
    assert_string_equal(error.message,
                        "record on partition 1, its grouping key 'kraeft.standardforloeb.compliance' "
                        "belongs on partition 7 of 8");
    assert_int_equal(hs_topic_admit(topic(HS_TOPIC_INDICATORS), 7,
                                    "kraeft.standardforloeb.compliance/region:1084/2023Q2", &obs.base,
                                    &error),
                     HS_OK);
}

static void test_capacity_key_that_is_not_the_values_identity_names_both(void **state)
{
    test_capacity r;
    test_capacity_init(&r, HEALTHSIGNALS__V1__SCOPE_KIND__REGION, "1084", "21", "2023-07-14");
    hs_error error = {0};
    assert_int_equal(
        hs_topic_admit(topic(HS_TOPIC_CAPACITY), 4, "21/region:1084/2023-07-14", &r.obs.base, &error), HS_OK);
    assert_int_equal(
        hs_topic_admit(topic(HS_TOPIC_CAPACITY), 4, "21/region:1084/2023-07-15", &r.obs.base, &error),
        HS_ERR_KEY_MISMATCH);
    assert_string_equal(error.message, "record key '21/region:1084/2023-07-15' is not its value's identity "
                                       "'21/region:1084/2023-07-14' (resource/scope/period)");
}

static void test_budget_key_that_is_not_the_values_identity_names_both(void **state)
{
    Healthsignals__V1__BudgetLine line = HEALTHSIGNALS__V1__BUDGET_LINE__INIT;
    line.unit = "foobar";
    line.line = "Sygehuse";
    line.year = 2024;
    line.kind = HEALTHSIGNALS__V1__BUDGET_KIND__BUDGET;
    hs_error error = {0};
    assert_int_equal(
        hs_topic_admit(topic(HS_TOPIC_BUDGET), 2, "foobar/Sygehuse/2024/BUDGET", &line.base, &error), HS_OK);
    assert_int_equal(
        hs_topic_admit(topic(HS_TOPIC_BUDGET), 2, "foobar/Sygehuse/2024/ACCOUNTS", &line.base, &error),
        HS_ERR_KEY_MISMATCH);
    assert_string_equal(error.message,
                        "record key 'foobar/Sygehuse/2024/ACCOUNTS' is not its value's identity "
                        "'foobar/Sygehuse/2024/BUDGET' (unit/line/year/kind)");
}

static void test_tombstone_is_placed_by_its_keys_grouping_key(void **state)
{
    hs_error error = {0};
    const hs_topic *t = topic(HS_TOPIC_INDICATORS);
    assert_int_equal(hs_topic_admit(t, 6, "foobar/region:1084/2023Q2", NULL, &error), HS_OK);
    assert_int_equal(hs_topic_admit(t, 5, "foobar/region:1084/2023Q2", NULL, &error), HS_ERR_WRONG_PARTITION);
    assert_string_equal(error.message,
                        "record on partition 5, its grouping key 'foobar' belongs on partition 6 of 8");
    assert_int_equal(hs_topic_admit(t, 6, "foobar/bad%escape", NULL, &error), HS_ERR_VALIDATION);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expected_partition_is_java_murmur2_of_the_grouping_key),
        cmocka_unit_test(test_record_on_its_grouping_keys_partition_is_admitted),
        cmocka_unit_test(test_record_on_another_partition_names_the_expected_one),
        cmocka_unit_test(test_the_global_rules_topic_has_no_wrong_partition),
        cmocka_unit_test(test_indicator_fact_with_its_own_key_on_its_partition_is_admitted),
        cmocka_unit_test(test_indicator_key_that_is_not_the_values_identity_names_both),
        cmocka_unit_test(test_indicator_key_of_another_grouping_key_is_a_mismatch_not_a_partition_error),
        cmocka_unit_test(test_indicator_fact_on_the_wrong_partition_is_refused),
        cmocka_unit_test(test_capacity_key_that_is_not_the_values_identity_names_both),
        cmocka_unit_test(test_budget_key_that_is_not_the_values_identity_names_both),
        cmocka_unit_test(test_tombstone_is_placed_by_its_keys_grouping_key),
    };
    return cmocka_run_group_tests_name("admission", tests, NULL, NULL);
}
