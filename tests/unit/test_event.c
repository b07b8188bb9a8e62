/* The CloudEvents envelope: ids are deterministic (so duplicates can be recognised), the JSON form carries
 * the fact identity as subject and the proto3 JSON of the value as data, tombstones are "data": null, and a
 * malformed event is refused with the attribute it concerns.
 */
#define _XOPEN_SOURCE 700 /* strptime */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "healthsignals/v1/indicator.pb-c.h"
#include "hs/event.h"

static void test_event_id_is_deterministic_and_sensitive(void **state)
{
    char a[72], b[72], c[72], d[72];
    hs_event_id(a, "hs.indicators.v1", "k", "value", 5);
    hs_event_id(b, "hs.indicators.v1", "k", "value", 5);
    hs_event_id(c, "hs.indicators.v1", "k", "valuf", 5);
    hs_event_id(d, "hs.indicators.v1k", "", "value", 5); /* lengths are hashed: no concatenation clash */
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, d);
    assert_int_equal(strlen(a), 32);
    /* Pinned: ids already published must keep their value across versions of the code. */
    assert_string_equal(a, "abd12bbea4732d4c3007de74daa0a75c");
}

/* ce_time is RFC 3339 UTC with milliseconds, and the cached date part follows the clock. */
static void test_event_time_now_is_rfc3339_milliseconds(void **state)
{
    for (int i = 0; i < 3; i++) {
        struct timespec before, after;
        char text[40];
        clock_gettime(CLOCK_REALTIME, &before);
        hs_event_time_now(text);
        clock_gettime(CLOCK_REALTIME, &after);
        assert_int_equal(strlen(text), 24);
        struct tm tm = {0};
        const char *rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
        assert_non_null(rest);
        assert_true(rest[0] == '.' && rest[4] == 'Z');
        for (int d = 1; d <= 3; d++)
            assert_true(rest[d] >= '0' && rest[d] <= '9');
        time_t seconds = timegm(&tm);
        assert_true(seconds >= before.tv_sec && seconds <= after.tv_sec);
        long ms = strtol(rest + 1, NULL, 10);
        if (seconds == before.tv_sec && seconds == after.tv_sec)
            assert_true(ms >= before.tv_nsec / 1000000 && ms <= after.tv_nsec / 1000000);
        struct timespec pause = {0, 400L * 1000 * 1000}; /* across a second boundary at least once */
        nanosleep(&pause, NULL);
    }
}

static void test_json_round_trip_keeps_identity_and_data(void **state)
{
    Healthsignals__V1__Scope scope = HEALTHSIGNALS__V1__SCOPE__INIT;
    scope.kind = HEALTHSIGNALS__V1__SCOPE_KIND__NATIONAL;
    scope.code = "DK";
    Healthsignals__V1__IndicatorObservation obs = HEALTHSIGNALS__V1__INDICATOR_OBSERVATION__INIT;
    obs.indicator = "ventetid.somatik.oplevet";
    obs.scope = &scope;
    obs.period = "2023Q2";
    obs.value = 43; /* Tabel 1: the nation, 2023Q2, 43 days */
    obs.unit = HEALTHSIGNALS__V1__UNIT__DAYS;

    hs_event_meta meta = {.id = "abc",
                          .source = "/healthsignals/test",
                          .type = "healthsignals.v1.IndicatorObservation",
                          .time = "2023-09-04T10:00:00.000Z"};
    json_t *event = hs_event_to_json(&meta, "ventetid.somatik.oplevet/national:DK/2023Q2", &obs.base);
    assert_non_null(event);
    assert_string_equal(json_string_value(json_object_get(event, "specversion")), "1.0");
    assert_string_equal(json_string_value(json_object_get(event, "datacontenttype")), "application/json");

    const hs_topic *topic;
    ProtobufCMessage *value;
    hs_event_meta back;
    char key[HS_KEY_MAX];
    hs_error error;
    assert_int_equal(hs_event_from_json(event, &topic, &value, &back, key, &error), HS_OK);
    assert_string_equal(topic->name, "hs.indicators.v1");
    assert_string_equal(key, "ventetid.somatik.oplevet/national:DK/2023Q2");
    assert_string_equal(back.source, "/healthsignals/test");
    Healthsignals__V1__IndicatorObservation *decoded = (void *)value;
    assert_true(decoded->value == 43.0);
    assert_int_equal(decoded->unit, HEALTHSIGNALS__V1__UNIT__DAYS);
    protobuf_c_message_free_unpacked(value, NULL);
    json_decref(event);
}

static void test_tombstone_is_data_null_with_subject(void **state)
{
    hs_event_meta meta = {.type = "healthsignals.v1.IndicatorObservation"};
    json_t *event = hs_event_to_json(&meta, "a.b/region:1084/2023Q1", NULL);
    assert_true(json_is_null(json_object_get(event, "data")));

    const hs_topic *topic;
    ProtobufCMessage *value;
    char key[HS_KEY_MAX];
    assert_int_equal(hs_event_from_json(event, &topic, &value, &meta, key, NULL), HS_OK);
    assert_null(value);
    assert_string_equal(key, "a.b/region:1084/2023Q1");
    json_decref(event);
}

static void test_malformed_events_name_the_attribute(void **state)
{
    const hs_topic *topic;
    ProtobufCMessage *value;
    hs_event_meta meta;
    char key[HS_KEY_MAX];
    hs_error error;
    static const struct {
        const char *json;
        const char *reason;
    } cases[] = {
        {"[]", "event: expected a JSON object"},
        {"{\"specversion\":\"0.3\",\"type\":\"healthsignals.v1.Rule\"}",
         "specversion: expected \"1.0\", got \"0.3\""},
        {"{\"specversion\":\"1.0\"}", "type: required"},
        {"{\"specversion\":\"1.0\",\"type\":\"x.Y\"}", "type: unknown event type \"x.Y\""},
        {"{\"specversion\":\"1.0\",\"type\":\"healthsignals.v1.Rule\",\"data\":null}",
         "subject: a tombstone"},
        {"{\"specversion\":\"1.0\",\"type\":\"healthsignals.v1.Rule\",\"id\":5}", "id: expected a string"},
        {"{\"specversion\":\"1.0\",\"type\":\"healthsignals.v1.Rule\",\"data\":{\"idd\":\"x\"}}",
         "data: idd"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *event = json_loads(cases[i].json, 0, NULL);
        assert_non_null(event);
        assert_int_not_equal(hs_event_from_json(event, &topic, &value, &meta, key, &error), HS_OK);
        assert_null(value);
        if (strncmp(error.message, cases[i].reason, strlen(cases[i].reason)) != 0)
            fail_msg("case %zu: got '%s', want prefix '%s'", i, error.message, cases[i].reason);
        json_decref(event);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_id_is_deterministic_and_sensitive),
        cmocka_unit_test(test_event_time_now_is_rfc3339_milliseconds),
        cmocka_unit_test(test_json_round_trip_keeps_identity_and_data),
        cmocka_unit_test(test_tombstone_is_data_null_with_subject),
        cmocka_unit_test(test_malformed_events_name_the_attribute),
    };
    return cmocka_run_group_tests_name("event", tests, NULL, NULL);
}
