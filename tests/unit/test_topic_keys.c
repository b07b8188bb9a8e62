/* Record keys from the topic registry (hs_topic_key): every topic's key layout, read through the value's
 * descriptor, gives byte for byte the record key, grouping key and refusal that the hand-written key
 * function of each topic gave before the registry replaced them (the expected values below are their
 * output, recorded when both existed side by side) — fixture messages of every keyed topic, including
 * escapes, every scope kind, unknown enum numbers, missing identity fields and keys too long. Changing a
 * key here changes the identity, and so the partition, of facts already on the topics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "healthsignals/v1/indicator.pb-c.h"
#include "healthsignals/v1/rule.pb-c.h"
#include "hs/json.h"
#include "hs/topic.h"

typedef struct key_case {
    const char *topic;
    const char *json; /* the value, in the JSON mapping */
    hs_err err;       /* what the key function gave: HS_OK with the keys, or the refusal */
    const char *key, *group, *message;
} key_case;

/* clang-format off */
static const key_case cases[] = {
    {HS_TOPIC_INDICATORS, "{\"indicator\":\"udredningsret.somatik.compliance\",\"scope\":{\"kind\":\"REGION\",\"code\":\"1084\"},\"period\":\"2023Q2\",\"value\":75}", HS_OK, "udredningsret.somatik.compliance/region:1084/2023Q2", "udredningsret.somatik.compliance", ""},
    {HS_TOPIC_INDICATORS, "{\"indicator\":\"a/b%c\",\"scope\":{\"kind\":\"NATIONAL\",\"code\":\"DK\"},\"period\":\"2023\"}", HS_OK, "a%2Fb%25c/national:DK/2023", "a/b%c", ""},
    {HS_TOPIC_INDICATORS, "{\"indicator\":\"x\",\"scope\":{\"kind\":\"MUNICIPALITY\",\"code\":\"101\"},\"period\":\"2023-05\"}", HS_OK, "x/municipality:101/2023-05", "x", ""},
    {HS_TOPIC_INDICATORS, "{\"indicator\":\"x\",\"scope\":{\"kind\":\"HOSPITAL\",\"code\":\"1084-rigshospitalet\"},\"period\":\"2023Q1\"}", HS_OK, "x/hospital:1084-rigshospitalet/2023Q1", "x", ""},
    {HS_TOPIC_INDICATORS, "{\"indicator\":\"x\",\"scope\":{\"code\":\"1084\"},\"period\":\"2023Q1\"}", HS_OK, "x/scope_kind_unspecified:1084/2023Q1", "x", ""},
    {HS_TOPIC_INDICATORS, "{\"indicator\":\"x\",\"scope\":{\"kind\":97,\"code\":\"1084\"},\"period\":\"2023Q1\"}", HS_OK, "x/unspecified:1084/2023Q1", "x", ""},
    {HS_TOPIC_INDICATORS, "{\"scope\":{\"kind\":\"REGION\",\"code\":\"1084\"},\"period\":\"2023Q2\"}", HS_ERR_VALIDATION, "", "", "indicator: required for the record key"},
    {HS_TOPIC_INDICATORS, "{\"indicator\":\"x\",\"period\":\"2023Q2\"}", HS_ERR_VALIDATION, "", "", "scope: required for the record key"},
    {HS_TOPIC_INDICATORS, "{\"indicator\":\"x\",\"scope\":{\"kind\":\"REGION\"},\"period\":\"2023Q2\"}", HS_ERR_VALIDATION, "", "", "scope: required for the record key"},
    {HS_TOPIC_INDICATORS, "{\"indicator\":\"x\",\"scope\":{\"kind\":\"REGION\",\"code\":\"1084\"}}", HS_ERR_VALIDATION, "", "", "period: required for the record key"},
    {HS_TOPIC_INDICATORS, "{}", HS_ERR_VALIDATION, "", "", "indicator: required for the record key"},
    {HS_TOPIC_BUDGET, "{\"unit\":\"danske-regioner\",\"line\":\"Drift/vedligehold\",\"year\":2023,\"kind\":\"EXPECTED_ACCOUNTS\"}", HS_OK, "danske-regioner/Drift%2Fvedligehold/2023/EXPECTED_ACCOUNTS", "danske-regioner", ""},
    {HS_TOPIC_BUDGET, "{\"unit\":\"u\",\"line\":\"Løn 100%\",\"year\":-4,\"kind\":\"ACCOUNTS\"}", HS_OK, "u/Løn 100%25/-4/ACCOUNTS", "u", ""},
    {HS_TOPIC_BUDGET, "{\"unit\":\"u\",\"line\":\"l\"}", HS_OK, "u/l/0/BUDGET_KIND_UNSPECIFIED", "u", ""},
    {HS_TOPIC_BUDGET, "{\"unit\":\"u\",\"line\":\"l\",\"year\":2024,\"kind\":42}", HS_OK, "u/l/2024/BUDGET_KIND_UNSPECIFIED", "u", ""},
    {HS_TOPIC_BUDGET, "{\"line\":\"l\",\"year\":2024}", HS_ERR_VALIDATION, "", "", "unit: required for the record key"},
    {HS_TOPIC_BUDGET, "{\"unit\":\"u\",\"year\":2024}", HS_ERR_VALIDATION, "", "", "line: required for the record key"},
    {"hs.budget-status.v1", "{\"unit\":\"danske-regioner\",\"line\":\"Resultat inkl. projektbevillinger\",\"year\":2023,\"kind\":\"BUDGET\",\"amountOre\":\"4220000000\",\"role\":\"TOTAL\"}", HS_OK, "danske-regioner/Resultat inkl. projektbevillinger/2023/BUDGET", "danske-regioner", ""},
    {"hs.budget-status.v1", "{\"line\":\"l\",\"year\":2024}", HS_ERR_VALIDATION, "", "", "unit: required for the record key"},
    {HS_TOPIC_CAPACITY, "{\"resource\":\"beds.icu\",\"scope\":{\"kind\":\"HOSPITAL\",\"code\":\"1084-rigshospitalet\"},\"period\":\"2024-03-01\"}", HS_OK, "beds.icu/hospital:1084-rigshospitalet/2024-03-01", "beds.icu", ""},
    {HS_TOPIC_CAPACITY, "{\"scope\":{\"kind\":\"REGION\",\"code\":\"1084\"},\"period\":\"2024-03-01\"}", HS_ERR_VALIDATION, "", "", "resource: required for the record key"},
    {HS_TOPIC_CAPACITY, "{\"resource\":\"r\",\"period\":\"2024-03-01\"}", HS_ERR_VALIDATION, "", "", "scope: required for the record key"},
    {HS_TOPIC_CAPACITY, "{\"resource\":\"r\",\"scope\":{\"kind\":\"REGION\",\"code\":\"1084\"}}", HS_ERR_VALIDATION, "", "", "period: required for the record key"},
    {HS_TOPIC_RULES, "{\"id\":\"akutplan/ventetid\",\"service\":\"targets\"}", HS_OK, "akutplan%2Fventetid", "targets", ""},
    {HS_TOPIC_RULES, "{\"id\":\"r1\"}", HS_OK, "r1", "", ""},
    {HS_TOPIC_RULES, "{\"service\":\"targets\"}", HS_ERR_VALIDATION, "", "", "id: required for the record key"},
    {HS_TOPIC_ALERTS, "{\"fingerprint\":\"0123456789abcdef\"}", HS_OK, "0123456789abcdef", "0123456789abcdef", ""},
    {HS_TOPIC_ALERTS, "{}", HS_ERR_VALIDATION, "", "", "fingerprint: required for the record key"},
    {HS_TOPIC_FACT_COUNTS, "{\"topic\":\"hs.indicators.v1\",\"group\":\"x.y\",\"facts\":\"3\"}", HS_OK, "x.y/hs.indicators.v1", "x.y", ""},
    {HS_TOPIC_FACT_COUNTS, "{\"topic\":\"hs.indicators.v1\"}", HS_OK, "/hs.indicators.v1", "", ""},
    {HS_TOPIC_FACT_COUNTS, "{\"group\":\"x.y\"}", HS_ERR_VALIDATION, "", "", "topic: required for the record key"},
    {HS_TOPIC_TARGET_STATUS, "{\"subject\":\"s\",\"rule\":\"akutplan/r\",\"scope\":{\"kind\":\"REGION\",\"code\":\"1081\"},\"period\":\"2023Q2\"}", HS_OK, "s/akutplan%2Fr/region:1081/2023Q2", "s", ""},
    {HS_TOPIC_TARGET_STATUS, "{\"rule\":\"r\",\"scope\":{\"kind\":\"REGION\",\"code\":\"1081\"},\"period\":\"2023Q2\"}", HS_ERR_VALIDATION, "", "", "subject: required for the record key"},
    {HS_TOPIC_TARGET_STATUS, "{\"subject\":\"s\",\"scope\":{\"kind\":\"REGION\",\"code\":\"1081\"},\"period\":\"2023Q2\"}", HS_ERR_VALIDATION, "", "", "rule: required for the record key"},
    {HS_TOPIC_TARGET_STATUS, "{\"subject\":\"s\",\"rule\":\"r\",\"period\":\"2023Q2\"}", HS_ERR_VALIDATION, "", "", "scope: required for the record key"},
    {HS_TOPIC_TARGET_STATUS, "{\"subject\":\"s\",\"rule\":\"r\",\"scope\":{\"kind\":\"REGION\",\"code\":\"1081\"}}", HS_ERR_VALIDATION, "", "", "period: required for the record key"},
    {HS_TOPIC_CAPACITY_STATUS, "{\"resource\":\"beds\",\"scope\":{\"kind\":\"NATIONAL\",\"code\":\"DK\"},\"period\":\"2024-03-01\"}", HS_OK, "beds/national:DK/2024-03-01", "beds", ""},
    {HS_TOPIC_CAPACITY_STATUS, "{\"scope\":{\"kind\":\"NATIONAL\",\"code\":\"DK\"},\"period\":\"2024-03-01\"}", HS_ERR_VALIDATION, "", "", "resource: required for the record key"},
    {HS_TOPIC_CAPACITY_STATUS, "{\"resource\":\"beds\",\"period\":\"2024-03-01\"}", HS_ERR_VALIDATION, "", "", "scope: required for the record key"},
    {HS_TOPIC_CAPACITY_STATUS, "{\"resource\":\"beds\",\"scope\":{\"kind\":\"NATIONAL\",\"code\":\"DK\"}}", HS_ERR_VALIDATION, "", "", "period: required for the record key"},
    {HS_TOPIC_VARIATION, "{\"indicator\":\"x/y\",\"period\":\"2023Q2\"}", HS_OK, "x%2Fy/2023Q2", "x/y", ""},
    {HS_TOPIC_VARIATION, "{\"period\":\"2023Q2\"}", HS_ERR_VALIDATION, "", "", "indicator: required for the record key"},
    {HS_TOPIC_VARIATION, "{\"indicator\":\"x\"}", HS_ERR_VALIDATION, "", "", "period: required for the record key"},
};
/* clang-format on */

/* A value of the case's topic from its JSON. */
static ProtobufCMessage *value_of(const key_case *c, const hs_topic **topic)
{
    *topic = hs_topic_find(c->topic);
    assert_non_null(*topic);
    json_error_t jerr;
    json_t *json = json_loads(c->json, 0, &jerr);
    assert_non_null(json);
    hs_error error = {0};
    ProtobufCMessage *value = hs_json_to_message((*topic)->value_type, json, &error);
    json_decref(json);
    if (!value)
        fail_msg("%s: %s", c->json, error.message);
    return value;
}

static void test_registry_keys_are_the_recorded_keys(void **state)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const key_case *c = &cases[i];
        const hs_topic *topic;
        ProtobufCMessage *value = value_of(c, &topic);
        char key[HS_KEY_MAX] = "", group[HS_KEY_MAX] = "";
        hs_error error = {0};
        hs_err err = hs_topic_key(topic, value, key, group, &error);
        if (err != c->err)
            fail_msg("%s %s: %d (%s), expected %d", c->topic, c->json, (int)err, error.message, (int)c->err);
        if (err) {
            assert_string_equal(error.message, c->message);
        } else {
            assert_string_equal(key, c->key);
            assert_string_equal(group, c->group);
            /* and admission agrees: the record key is the value's identity */
            assert_int_equal(hs_topic_admit(topic, hs_topic_partition(topic, group), key, value, NULL),
                             HS_OK);
        }
        protobuf_c_message_free_unpacked(value, NULL);
    }
}

/* Too long: a key past HS_KEY_MAX, a grouping key (not in the key) past it. */
static void test_too_long_keys_are_refused(void **state)
{
    char long_text[700];
    memset(long_text, 'a', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    Healthsignals__V1__Rule rule = HEALTHSIGNALS__V1__RULE__INIT;
    rule.id = "r";
    rule.service = long_text;
    Healthsignals__V1__IndicatorObservation obs = HEALTHSIGNALS__V1__INDICATOR_OBSERVATION__INIT;
    Healthsignals__V1__Scope scope = HEALTHSIGNALS__V1__SCOPE__INIT;
    scope.kind = HEALTHSIGNALS__V1__SCOPE_KIND__REGION;
    scope.code = "1084";
    obs.indicator = long_text;
    obs.scope = &scope;
    obs.period = "2023Q2";
    const struct {
        const char *topic;
        const ProtobufCMessage *value;
    } values[] = {{HS_TOPIC_RULES, &rule.base}, {HS_TOPIC_INDICATORS, &obs.base}};
    const char *const messages[] = {"grouping key longer than 511 bytes", "record key longer than 511 bytes"};
    for (size_t i = 0; i < 2; i++) {
        const hs_topic *topic = hs_topic_find(values[i].topic);
        char key[HS_KEY_MAX], group[HS_KEY_MAX];
        hs_error error = {0};
        assert_int_equal(hs_topic_key(topic, values[i].value, key, group, &error), HS_ERR_TOO_LARGE);
        assert_string_equal(error.message, messages[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_keys_are_the_recorded_keys),
        cmocka_unit_test(test_too_long_keys_are_refused),
    };
    return cmocka_run_group_tests_name("topic_keys", tests, NULL, NULL);
}
