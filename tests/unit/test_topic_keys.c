/* Record keys from the topic registry (hs_topic_key): every topic's key layout, read through the value's
 * descriptor, gives the same record key, grouping key and refusal as the hand-written key function it
 * replaced — fixture messages of every keyed topic, including escapes, every scope kind, missing identity
 * fields and keys too long.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "healthsignals/v1/indicator.pb-c.h"
#include "healthsignals/v1/rule.pb-c.h"
#include "hs/json.h"
#include "hs/topic.h"

typedef struct key_case {
    const char *topic;
    const char *json; /* the value, in the JSON mapping */
} key_case;

/* clang-format off */
static const key_case cases[] = {
    {HS_TOPIC_INDICATORS, "{\"indicator\":\"udredningsret.somatik.compliance\",\"scope\":{\"kind\":\"REGION\",\"code\":\"1084\"},\"period\":\"2023Q2\",\"value\":75}"},
    {HS_TOPIC_INDICATORS, "{\"indicator\":\"a/b%c\",\"scope\":{\"kind\":\"NATIONAL\",\"code\":\"DK\"},\"period\":\"2023\"}"},
    {HS_TOPIC_INDICATORS, "{\"indicator\":\"x\",\"scope\":{\"kind\":\"MUNICIPALITY\",\"code\":\"101\"},\"period\":\"2023-05\"}"},
    {HS_TOPIC_INDICATORS, "{\"indicator\":\"x\",\"scope\":{\"kind\":\"HOSPITAL\",\"code\":\"1084-rigshospitalet\"},\"period\":\"2023Q1\"}"},
    {HS_TOPIC_INDICATORS, "{\"indicator\":\"x\",\"scope\":{\"code\":\"1084\"},\"period\":\"2023Q1\"}"},
    {HS_TOPIC_INDICATORS, "{\"indicator\":\"x\",\"scope\":{\"kind\":97,\"code\":\"1084\"},\"period\":\"2023Q1\"}"},
    {HS_TOPIC_INDICATORS, "{\"scope\":{\"kind\":\"REGION\",\"code\":\"1084\"},\"period\":\"2023Q2\"}"},
    {HS_TOPIC_INDICATORS, "{\"indicator\":\"x\",\"period\":\"2023Q2\"}"},
    {HS_TOPIC_INDICATORS, "{\"indicator\":\"x\",\"scope\":{\"kind\":\"REGION\"},\"period\":\"2023Q2\"}"},
    {HS_TOPIC_INDICATORS, "{\"indicator\":\"x\",\"scope\":{\"kind\":\"REGION\",\"code\":\"1084\"}}"},
    {HS_TOPIC_INDICATORS, "{}"},
    {HS_TOPIC_BUDGET, "{\"unit\":\"danske-regioner\",\"line\":\"Drift/vedligehold\",\"year\":2023,\"kind\":\"EXPECTED_ACCOUNTS\"}"},
    {HS_TOPIC_BUDGET, "{\"unit\":\"u\",\"line\":\"Løn 100%\",\"year\":-4,\"kind\":\"ACCOUNTS\"}"},
    {HS_TOPIC_BUDGET, "{\"unit\":\"u\",\"line\":\"l\"}"},
    {HS_TOPIC_BUDGET, "{\"unit\":\"u\",\"line\":\"l\",\"year\":2024,\"kind\":42}"},
    {HS_TOPIC_BUDGET, "{\"line\":\"l\",\"year\":2024}"},
    {HS_TOPIC_BUDGET, "{\"unit\":\"u\",\"year\":2024}"},
    {HS_TOPIC_CAPACITY, "{\"resource\":\"beds.icu\",\"scope\":{\"kind\":\"HOSPITAL\",\"code\":\"1084-rigshospitalet\"},\"period\":\"2024-03-01\"}"},
    {HS_TOPIC_CAPACITY, "{\"scope\":{\"kind\":\"REGION\",\"code\":\"1084\"},\"period\":\"2024-03-01\"}"},
    {HS_TOPIC_CAPACITY, "{\"resource\":\"r\",\"period\":\"2024-03-01\"}"},
    {HS_TOPIC_CAPACITY, "{\"resource\":\"r\",\"scope\":{\"kind\":\"REGION\",\"code\":\"1084\"}}"},
    {HS_TOPIC_RULES, "{\"id\":\"akutplan/ventetid\",\"service\":\"targets\"}"},
    {HS_TOPIC_RULES, "{\"id\":\"r1\"}"},
    {HS_TOPIC_RULES, "{\"service\":\"targets\"}"},
    {HS_TOPIC_ALERTS, "{\"fingerprint\":\"0123456789abcdef\"}"},
    {HS_TOPIC_ALERTS, "{}"},
    {HS_TOPIC_FACT_COUNTS, "{\"topic\":\"hs.indicators.v1\",\"group\":\"x.y\",\"facts\":\"3\"}"},
    {HS_TOPIC_FACT_COUNTS, "{\"topic\":\"hs.indicators.v1\"}"},
    {HS_TOPIC_FACT_COUNTS, "{\"group\":\"x.y\"}"},
    {HS_TOPIC_TARGET_STATUS, "{\"subject\":\"s\",\"rule\":\"akutplan/r\",\"scope\":{\"kind\":\"REGION\",\"code\":\"1081\"},\"period\":\"2023Q2\"}"},
    {HS_TOPIC_TARGET_STATUS, "{\"rule\":\"r\",\"scope\":{\"kind\":\"REGION\",\"code\":\"1081\"},\"period\":\"2023Q2\"}"},
    {HS_TOPIC_TARGET_STATUS, "{\"subject\":\"s\",\"scope\":{\"kind\":\"REGION\",\"code\":\"1081\"},\"period\":\"2023Q2\"}"},
    {HS_TOPIC_TARGET_STATUS, "{\"subject\":\"s\",\"rule\":\"r\",\"period\":\"2023Q2\"}"},
    {HS_TOPIC_TARGET_STATUS, "{\"subject\":\"s\",\"rule\":\"r\",\"scope\":{\"kind\":\"REGION\",\"code\":\"1081\"}}"},
    {HS_TOPIC_CAPACITY_STATUS, "{\"resource\":\"beds\",\"scope\":{\"kind\":\"NATIONAL\",\"code\":\"DK\"},\"period\":\"2024-03-01\"}"},
    {HS_TOPIC_CAPACITY_STATUS, "{\"scope\":{\"kind\":\"NATIONAL\",\"code\":\"DK\"},\"period\":\"2024-03-01\"}"},
    {HS_TOPIC_CAPACITY_STATUS, "{\"resource\":\"beds\",\"period\":\"2024-03-01\"}"},
    {HS_TOPIC_CAPACITY_STATUS, "{\"resource\":\"beds\",\"scope\":{\"kind\":\"NATIONAL\",\"code\":\"DK\"}}"},
    {HS_TOPIC_VARIATION, "{\"indicator\":\"x/y\",\"period\":\"2023Q2\"}"},
    {HS_TOPIC_VARIATION, "{\"period\":\"2023Q2\"}"},
    {HS_TOPIC_VARIATION, "{\"indicator\":\"x\"}"},
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

static void test_registry_keys_equal_the_key_functions(void **state)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const hs_topic *topic;
        ProtobufCMessage *value = value_of(&cases[i], &topic);
        char key[HS_KEY_MAX] = "", group[HS_KEY_MAX] = "", old_key[HS_KEY_MAX] = "", old_group[HS_KEY_MAX] = "";
        hs_error error = {0}, old_error = {0};
        hs_err err = hs_topic_key(topic, value, key, group, &error);
        hs_err old = topic->key_of(value, old_key, old_group, &old_error);
        assert_int_equal(err, old);
        if (old) {
            assert_string_equal(error.message, old_error.message);
        } else {
            assert_string_equal(key, old_key);
            assert_string_equal(group, old_group);
        }
        protobuf_c_message_free_unpacked(value, NULL);
    }
}

/* Too long: a key past HS_KEY_MAX, a grouping key (not in the key) past it. */
static void test_too_long_keys_are_refused_alike(void **state)
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
    for (size_t i = 0; i < 2; i++) {
        const hs_topic *topic = hs_topic_find(values[i].topic);
        char key[HS_KEY_MAX], group[HS_KEY_MAX], old_key[HS_KEY_MAX], old_group[HS_KEY_MAX];
        hs_error error = {0}, old_error = {0};
        hs_err err = hs_topic_key(topic, values[i].value, key, group, &error);
        hs_err old = topic->key_of(values[i].value, old_key, old_group, &old_error);
        assert_int_equal(err, HS_ERR_TOO_LARGE);
        assert_int_equal(err, old);
        assert_string_equal(error.message, old_error.message);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_keys_equal_the_key_functions),
        cmocka_unit_test(test_too_long_keys_are_refused_alike),
    };
    return cmocka_run_group_tests_name("topic_keys", tests, NULL, NULL);
}
