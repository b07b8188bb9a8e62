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
#include "hs/json.h"
#include "records.h"

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
    /* Tabel 1: the nation, 2023Q2, 43 days */
    test_indicator r;
    test_indicator_init(&r, HEALTHSIGNALS__V1__SCOPE_KIND__NATIONAL, "DK", "ventetid.somatik.oplevet",
                        "2023Q2", 43, HEALTHSIGNALS__V1__UNIT__DAYS);

    hs_event_meta meta = {.id = "abc",
                          .source = "/healthsignals/test",
                          .type = "healthsignals.v1.IndicatorObservation",
                          .time = "2023-09-04T10:00:00.000Z"};
    json_t *event = hs_event_to_json(&meta, "ventetid.somatik.oplevet/national:DK/2023Q2", &r.obs.base);
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

/* An IndicatorObservation of Tabel 8 (Midtjylland, 2023Q2, 61 %) packed as protobuf; the caller frees. */
static uint8_t *packed_observation(size_t *len)
{
    test_indicator r;
    test_indicator_init(&r, HEALTHSIGNALS__V1__SCOPE_KIND__REGION, "1082", "udredningsret.somatik.compliance",
                        "2023Q2", 61, HEALTHSIGNALS__V1__UNIT__PERCENT);
    *len = protobuf_c_message_get_packed_size(&r.obs.base);
    uint8_t *bytes = malloc(*len);
    protobuf_c_message_pack(&r.obs.base, bytes);
    return bytes;
}

static json_t *event_with_base64(const char *type, const void *bytes, size_t len)
{
    char *b64 = hs_json_base64_encode(bytes, len);
    json_t *event = json_pack("{s:s, s:s, s:s, s:s}", "specversion", "1.0", "type", type, "subject",
                              "udredningsret.somatik.compliance/region:1082/2023Q2", "data_base64", b64);
    free(b64);
    return event;
}

/* data_base64 holds the message: it is decoded, never taken for a deletion. */
static void test_data_base64_is_the_message_not_a_tombstone(void **state)
{
    size_t len;
    uint8_t *bytes = packed_observation(&len);
    json_t *event = event_with_base64("healthsignals.v1.IndicatorObservation", bytes, len);
    const hs_topic *topic;
    ProtobufCMessage *value;
    hs_event_meta meta;
    char key[HS_KEY_MAX];
    hs_error error;
    assert_int_equal(hs_event_from_json(event, &topic, &value, &meta, key, &error), HS_OK);
    assert_non_null(value);
    assert_true(((Healthsignals__V1__IndicatorObservation *)value)->value == 61.0);
    protobuf_c_message_free_unpacked(value, NULL);
    json_decref(event);

    /* A dead letter as hsctl tail prints it stands for the record it holds, on its source topic. */
    event = event_with_base64(HS_EVENT_TYPE_DEAD_LETTER, bytes, len);
    json_object_set_new(event, "hssourcetopic", json_string("hs.indicators.v1"));
    json_object_set_new(event, "id", json_string("dead-letter-id"));
    assert_int_equal(hs_event_from_json(event, &topic, &value, &meta, key, &error), HS_OK);
    assert_string_equal(topic->name, "hs.indicators.v1");
    assert_string_equal(meta.type, "healthsignals.v1.IndicatorObservation");
    assert_string_equal(meta.id, ""); /* the dead letter's own id is not the fact's */
    assert_non_null(value);
    protobuf_c_message_free_unpacked(value, NULL);
    json_decref(event);
    free(bytes);
}

static void test_data_base64_that_is_not_the_message_is_rejected(void **state)
{
    static const struct {
        const char *json;
        const char *reason;
    } cases[] = {
        {"{\"specversion\":\"1.0\",\"type\":\"healthsignals.v1.IndicatorObservation\",\"subject\":\"a/"
         "national:DK/2023\","
         "\"data_base64\":\"//8=\"}",
         "data_base64: 2 bytes that are not a protobuf healthsignals.v1.IndicatorObservation"},
        {"{\"specversion\":\"1.0\",\"type\":\"healthsignals.v1.IndicatorObservation\",\"subject\":\"a/"
         "national:DK/2023\","
         "\"data_base64\":\"*\"}",
         "data_base64: not valid base64"},
        {"{\"specversion\":\"1.0\",\"type\":\"healthsignals.v1.IndicatorObservation\",\"subject\":\"a/"
         "national:DK/2023\","
         "\"data_base64\":\"\",\"data\":{}}",
         "data_base64: an event carries data or data_base64, not both"},
        {"{\"specversion\":\"1.0\",\"type\":\"healthsignals.v1.IndicatorObservation\",\"subject\":\"a/"
         "national:DK/2023\"}",
         "data: missing"},
        {"{\"specversion\":\"1.0\",\"type\":\"healthsignals.v1.DeadLetter\",\"data_base64\":\"\"}",
         "hssourcetopic: a dead letter needs its source topic"},
        {"{\"specversion\":\"1.0\",\"type\":\"healthsignals.v1.Rule\",\"time\":\"2023-13-01T00:00:00Z\","
         "\"data\":{}}",
         "time: \"2023-13-01T00:00:00Z\" is not an RFC 3339 date-time"},
        {"{\"specversion\":\"1.0\",\"type\":\"healthsignals.v1.Rule\",\"dataschema\":\"urn:x\",\"data\":{}}",
         "dataschema: \"urn:x\", but healthsignals.v1.Rule is"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *event = json_loads(cases[i].json, 0, NULL);
        assert_non_null(event);
        const hs_topic *topic;
        ProtobufCMessage *value;
        hs_event_meta meta;
        char key[HS_KEY_MAX];
        hs_error error;
        assert_int_not_equal(hs_event_from_json(event, &topic, &value, &meta, key, &error), HS_OK);
        assert_null(value);
        if (strncmp(error.message, cases[i].reason, strlen(cases[i].reason)) != 0)
            fail_msg("case %zu: got '%s', want prefix '%s'", i, error.message, cases[i].reason);
        json_decref(event);
    }
}

static void test_time_is_rfc3339_with_a_real_calendar(void **state)
{
    const char *valid[] = {"2023-09-04T10:15:00Z", "2023-09-04t10:15:00.123456z", "2024-02-29T23:59:60+02:00",
                           "2023-09-04T10:15:00.5-11:30"};
    const char *invalid[] = {"",
                             "2023-09-04",
                             "2023-09-04 10:15:00Z",
                             "2023-02-29T10:00:00Z",
                             "2023-04-31T10:00:00Z",
                             "2023-09-04T24:00:00Z",
                             "2023-09-04T10:15:00",
                             "2023-09-04T10:15:00.Z",
                             "2023-09-04T10:15:00+0200",
                             "2023-09-04T10:15:00Zjunk"};
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        if (!hs_event_time_valid(valid[i]))
            fail_msg("%s should be valid", valid[i]);
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        if (hs_event_time_valid(invalid[i]))
            fail_msg("'%s' should be invalid", invalid[i]);
}

/* Extension attributes travel as strings; the dead-letter diagnostics (hs...) are named, not kept. */
static void test_extensions_are_kept_and_named(void **state)
{
    json_t *event = json_loads("{\"specversion\":\"1.0\",\"type\":\"t\",\"traceparent\":\"00-ab-cd-01\","
                               "\"sequence\":7,\"hserror\":\"x\",\"hssourcetopic\":\"t\",\"data\":null}",
                               0, NULL);
    json_t *extensions;
    char dropped[256];
    hs_error error;
    assert_int_equal(hs_event_extensions(event, &extensions, dropped, &error), HS_OK);
    assert_int_equal(json_object_size(extensions), 2);
    assert_string_equal(json_string_value(json_object_get(extensions, "traceparent")), "00-ab-cd-01");
    assert_string_equal(json_string_value(json_object_get(extensions, "sequence")), "7");
    assert_string_equal(dropped, "hserror, hssourcetopic");
    json_decref(extensions);
    json_decref(event);

    event = json_loads("{\"Trace-Parent\":\"x\"}", 0, NULL);
    assert_int_equal(hs_event_extensions(event, &extensions, NULL, &error), HS_ERR_PARSE);
    assert_null(extensions);
    json_decref(event);
    event = json_loads("{\"nested\":{}}", 0, NULL);
    assert_int_equal(hs_event_extensions(event, &extensions, NULL, &error), HS_ERR_PARSE);
    json_decref(event);
}

static const char *header(rd_kafka_headers_t *headers, const char *name)
{
    const void *value;
    size_t len;
    if (rd_kafka_header_get_last(headers, name, &value, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    return value;
}

static void test_headers_carry_subject_dataschema_and_extensions(void **state)
{
    json_t *extensions = json_pack("{s:s}", "traceparent", "00-ab-cd-01");
    hs_event_meta meta = {
        .id = "1", .type = "healthsignals.v1.IndicatorObservation", .extensions = extensions};
    hs_event_dataschema(meta.dataschema, meta.type);
    assert_string_equal(meta.dataschema, "urn:healthsignals:proto:healthsignals.v1.IndicatorObservation");
    rd_kafka_headers_t *headers = rd_kafka_headers_new(8);
    hs_event_add_headers(headers, &meta, "a/national:DK/2023", true);
    assert_string_equal(header(headers, "ce_subject"), "a/national:DK/2023");
    assert_string_equal(header(headers, "ce_dataschema"), meta.dataschema);
    assert_string_equal(header(headers, "content-type"), "application/protobuf");
    assert_string_equal(header(headers, "ce_traceparent"), "00-ab-cd-01");
    rd_kafka_headers_destroy(headers);

    /* A tombstone has no data to describe: subject, but neither dataschema nor content-type. */
    headers = rd_kafka_headers_new(8);
    hs_event_add_headers(headers, &meta, "a/national:DK/2023", false);
    assert_string_equal(header(headers, "ce_subject"), "a/national:DK/2023");
    assert_null(header(headers, "ce_dataschema"));
    assert_null(header(headers, "content-type"));
    rd_kafka_headers_destroy(headers);
    json_decref(extensions);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_id_is_deterministic_and_sensitive),
        cmocka_unit_test(test_event_time_now_is_rfc3339_milliseconds),
        cmocka_unit_test(test_json_round_trip_keeps_identity_and_data),
        cmocka_unit_test(test_tombstone_is_data_null_with_subject),
        cmocka_unit_test(test_malformed_events_name_the_attribute),
        cmocka_unit_test(test_data_base64_is_the_message_not_a_tombstone),
        cmocka_unit_test(test_data_base64_that_is_not_the_message_is_rejected),
        cmocka_unit_test(test_time_is_rfc3339_with_a_real_calendar),
        cmocka_unit_test(test_extensions_are_kept_and_named),
        cmocka_unit_test(test_headers_carry_subject_dataschema_and_extensions),
    };
    return cmocka_run_group_tests_name("event", tests, NULL, NULL);
}
