/* The topic registry: every topic of docs/design.md §4 is registered with its layout; record keys are the
 * fact identity and the partition follows the grouping key only, so all facts of one indicator meet in
 * one partition.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "healthsignals/v1/budget.pb-c.h"
#include "healthsignals/v1/indicator.pb-c.h"
#include "hs/partition.h"
#include "hs/topic.h"

static void test_core_topics_are_registered_as_designed(void **state)
{
    const hs_topic *t = hs_topic_find("hs.indicators.v1");
    assert_non_null(t);
    assert_string_equal(t->value_type->name, "healthsignals.v1.IndicatorObservation");
    assert_string_equal(t->cleanup_policy, "compact");
    assert_string_equal(hs_topic_find("hs.dlq.v1")->cleanup_policy, "delete");
    assert_true(hs_topic_find("hs.dlq.v1")->retention_ms == 30LL * 24 * 3600 * 1000);
    assert_true(hs_topic_find("hs.rules.v1")->global);
    assert_non_null(hs_topic_find("hs.budget.v1"));
    assert_non_null(hs_topic_find("hs.capacity.v1"));
    assert_non_null(hs_topic_find("hs.alerts.v1"));
    assert_null(hs_topic_find("hs.nothing.v1"));
    assert_ptr_equal(hs_topic_find_by_type("healthsignals.v1.Rule"), hs_topic_find("hs.rules.v1"));
}

static void test_indicator_key_is_identity_and_group_is_indicator(void **state)
{
    Healthsignals__V1__Scope scope = HEALTHSIGNALS__V1__SCOPE__INIT;
    scope.kind = HEALTHSIGNALS__V1__SCOPE_KIND__REGION;
    scope.code = "1085";
    Healthsignals__V1__IndicatorObservation obs = HEALTHSIGNALS__V1__INDICATOR_OBSERVATION__INIT;
    obs.indicator = "udredningsret.somatik.compliance";
    obs.scope = &scope;
    obs.period = "2023Q2";
    obs.value = 75;

    const hs_topic *t = hs_topic_find(HS_TOPIC_INDICATORS);
    char key[HS_KEY_MAX], group[HS_KEY_MAX];
    assert_int_equal(hs_topic_key(t, &obs.base, key, group, NULL), HS_OK);
    assert_string_equal(key, "udredningsret.somatik.compliance/region:1085/2023Q2");
    assert_string_equal(group, "udredningsret.somatik.compliance");

    /* A revision has the same identity, and so the same key. */
    obs.value = 77;
    obs.revision = 1;
    char again[HS_KEY_MAX];
    assert_int_equal(hs_topic_key(t, &obs.base, again, group, NULL), HS_OK);
    assert_string_equal(again, key);

    /* Another scope of the same indicator: another key, the same partition. */
    scope.code = "1081";
    char other[HS_KEY_MAX], other_group[HS_KEY_MAX];
    assert_int_equal(hs_topic_key(t, &obs.base, other, other_group, NULL), HS_OK);
    assert_string_not_equal(other, key);
    assert_int_equal(hs_topic_partition(t, other_group), hs_topic_partition(t, group));
    assert_int_equal(hs_topic_partition(t, group), hs_partition_for_key(group, strlen(group), t->partitions));
}

static void test_budget_key_escapes_line_names(void **state)
{
    Healthsignals__V1__BudgetLine line = HEALTHSIGNALS__V1__BUDGET_LINE__INIT;
    line.unit = "danske-regioner";
    line.line = "Drift/vedligehold";
    line.year = 2023;
    line.kind = HEALTHSIGNALS__V1__BUDGET_KIND__EXPECTED_ACCOUNTS;
    char key[HS_KEY_MAX], group[HS_KEY_MAX];
    assert_int_equal(hs_topic_key(hs_topic_find(HS_TOPIC_BUDGET), &line.base, key, group, NULL), HS_OK);
    assert_string_equal(key, "danske-regioner/Drift%2Fvedligehold/2023/EXPECTED_ACCOUNTS");
    assert_string_equal(group, "danske-regioner");
}

static void test_missing_identity_field_is_refused(void **state)
{
    Healthsignals__V1__IndicatorObservation obs = HEALTHSIGNALS__V1__INDICATOR_OBSERVATION__INIT;
    obs.indicator = "x.y";
    char key[HS_KEY_MAX], group[HS_KEY_MAX];
    hs_error error;
    assert_int_equal(hs_topic_key(hs_topic_find(HS_TOPIC_INDICATORS), &obs.base, key, group, &error),
                     HS_ERR_VALIDATION);
    assert_string_equal(error.message, "scope: required for the record key");
}

static void test_group_of_key_is_its_first_component(void **state)
{
    char group[HS_KEY_MAX];
    const hs_topic *t = hs_topic_find(HS_TOPIC_INDICATORS);
    assert_int_equal(hs_topic_group_of_key(t, "ventetid.somatik.oplevet/national:DK/2023Q2", group, NULL),
                     HS_OK);
    assert_string_equal(group, "ventetid.somatik.oplevet");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_topics_are_registered_as_designed),
        cmocka_unit_test(test_indicator_key_is_identity_and_group_is_indicator),
        cmocka_unit_test(test_budget_key_escapes_line_names),
        cmocka_unit_test(test_missing_identity_field_is_refused),
        cmocka_unit_test(test_group_of_key_is_its_first_component),
    };
    return cmocka_run_group_tests_name("topic", tests, NULL, NULL);
}
