/* The test kit itself, with the count service in-process: facts published, outputs awaited by key, a
 * tombstone deletes, and the service stops as on SIGTERM with exit status 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "count.h"
#include "healthsignals/v1/diagnostics.pb-c.h"
#include "healthsignals/v1/indicator.pb-c.h"
#include "testkit.h"

static void publish_fact(hs_testkit *kit, const char *region, double value_pct)
{
    Healthsignals__V1__Scope scope = HEALTHSIGNALS__V1__SCOPE__INIT;
    scope.kind = HEALTHSIGNALS__V1__SCOPE_KIND__REGION;
    scope.code = (char *)region;
    Healthsignals__V1__IndicatorObservation obs = HEALTHSIGNALS__V1__INDICATOR_OBSERVATION__INIT;
    obs.indicator = "udredningsret.somatik.compliance";
    obs.scope = &scope;
    obs.period = "2023Q2";
    obs.value = value_pct;
    obs.unit = HEALTHSIGNALS__V1__UNIT__PERCENT;
    assert_int_equal(hs_testkit_publish(kit, HS_TOPIC_INDICATORS, &obs.base), HS_OK);
}

static void test_service_runs_in_process_and_outputs_can_be_awaited(void **state)
{
    static const hs_service service = {.calc = &count_calc, .version = "test"};
    hs_testkit *kit = hs_testkit_new();
    assert_non_null(kit);
    assert_int_equal(hs_testkit_start(kit, &service), HS_OK);

    /* Tabel 8, 2023Q2: Hovedstaden 83, Midtjylland 61, Sjælland 75. */
    publish_fact(kit, "1084", 83);
    publish_fact(kit, "1082", 61);
    publish_fact(kit, "1085", 75);
    Healthsignals__V1__FactCount want = HEALTHSIGNALS__V1__FACT_COUNT__INIT;
    want.topic = HS_TOPIC_INDICATORS;
    want.group = "udredningsret.somatik.compliance";
    want.facts = 3;
    const char *key = "udredningsret.somatik.compliance/hs.indicators.v1";
    assert_true(hs_testkit_await(kit, HS_TOPIC_FACT_COUNTS, key, &want.base, 30000));

    assert_int_equal(
        hs_testkit_delete(kit, HS_TOPIC_INDICATORS, "udredningsret.somatik.compliance/region:1082/2023Q2"),
        HS_OK);
    want.facts = 2;
    assert_true(hs_testkit_await(kit, HS_TOPIC_FACT_COUNTS, key, &want.base, 30000));

    assert_int_equal(hs_testkit_stop(kit), HS_EXIT_OK);
    hs_testkit_free(kit);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_runs_in_process_and_outputs_can_be_awaited),
    };
    return cmocka_run_group_tests_name("testkit", tests, NULL, NULL);
}
