/* The alertmanager sink's mapping (services/alertmanager/alertmanager_map.h): what Alertmanager receives for
 * an Alert of hs.alerts.v1 — labels valid for Alertmanager (mapped, never dropped), endsAt in the future
 * while FIRING so that it stays active until the next resend, endsAt now or before once RESOLVED.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alertmanager_map.h"

/* 2026-12-03T12:00:00Z */
#define NOW_MS        1796299200000LL
#define INTERVAL_MS   60000LL
#define FIRING_FOR_MS (4 * INTERVAL_MS)

typedef struct fixture {
    Healthsignals__V1__Alert alert;
    Healthsignals__V1__Alert__LabelsEntry label_entries[4], *labels[4];
    Healthsignals__V1__Alert__AnnotationsEntry annotation_entries[2], *annotations[2];
} fixture;

/* Nordjylland's waiting-time alert of the targets service, FIRING since 2023Q1. */
static void fixture_init(fixture *f)
{
    healthsignals__v1__alert__init(&f->alert);
    f->alert.fingerprint = "0123456789abcdef";
    f->alert.state = HEALTHSIGNALS__V1__ALERT_STATE__FIRING;
    f->alert.rule = "akutplan.ventetid.somatik";
    f->alert.starts_at = "2023-01-01T00:00:00Z";
    f->alert.ends_at = "";
    static const char *const labels[][2] = {{"alertname", "TargetMissed"},
                                            {"plan", "akutplan"},
                                            {"scope", "region:1081"},
                                            {"severity", "warning"}};
    for (size_t i = 0; i < 4; i++) {
        healthsignals__v1__alert__labels_entry__init(&f->label_entries[i]);
        f->label_entries[i].key = (char *)labels[i][0];
        f->label_entries[i].value = (char *)labels[i][1];
        f->labels[i] = &f->label_entries[i];
    }
    f->alert.labels = f->labels;
    f->alert.n_labels = 4;
    static const char *const annotations[][2] = {{"description", "Ventetid 43 dage, mål 41"},
                                                 {"summary", "Nordjylland misses the target"}};
    for (size_t i = 0; i < 2; i++) {
        healthsignals__v1__alert__annotations_entry__init(&f->annotation_entries[i]);
        f->annotation_entries[i].key = (char *)annotations[i][0];
        f->annotation_entries[i].value = (char *)annotations[i][1];
        f->annotations[i] = &f->annotation_entries[i];
    }
    f->alert.annotations = f->annotations;
    f->alert.n_annotations = 2;
}

static json_t *map(const Healthsignals__V1__Alert *alert, const char *generator_url)
{
    am_map_options options = {
        .now_ms = NOW_MS, .firing_for_ms = FIRING_FOR_MS, .generator_url = generator_url};
    hs_error error = {0};
    json_t *out = am_map_alert(alert, &options, &error);
    assert_non_null(out);
    return out;
}

static const char *text_at(json_t *obj, const char *a, const char *b)
{
    json_t *v = json_object_get(obj, a);
    if (b)
        v = json_object_get(v, b);
    return json_string_value(v);
}

static int64_t time_at(json_t *obj, const char *name)
{
    int64_t ms = 0;
    assert_true(am_map_time_parse(text_at(obj, name, NULL), &ms));
    return ms;
}

static void test_firing_ends_in_the_future_by_four_intervals(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    json_t *out = map(&f.alert, NULL);
    assert_string_equal(text_at(out, "startsAt", NULL), "2023-01-01T00:00:00.000Z");
    assert_true(time_at(out, "endsAt") == NOW_MS + FIRING_FOR_MS);
    assert_null(json_object_get(out, "generatorURL"));
    json_decref(out);
}

static void test_labels_and_annotations_carried(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    json_t *out = map(&f.alert, NULL);
    assert_int_equal(json_object_size(json_object_get(out, "labels")), 4);
    assert_string_equal(text_at(out, "labels", "alertname"), "TargetMissed");
    assert_string_equal(text_at(out, "labels", "scope"), "region:1081");
    assert_string_equal(text_at(out, "labels", "severity"), "warning");
    assert_string_equal(text_at(out, "labels", "plan"), "akutplan");
    assert_string_equal(text_at(out, "annotations", "description"), "Ventetid 43 dage, mål 41");
    assert_string_equal(text_at(out, "annotations", "summary"), "Nordjylland misses the target");
    json_decref(out);
}

static void test_resolved_ends_at_its_end(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    f.alert.state = HEALTHSIGNALS__V1__ALERT_STATE__RESOLVED;
    f.alert.ends_at = "2023-07-01T00:00:00Z"; /* the end of 2023Q2, the quarter that met the target */
    json_t *out = map(&f.alert, NULL);
    assert_string_equal(text_at(out, "endsAt", NULL), "2023-07-01T00:00:00.000Z");
    assert_true(time_at(out, "endsAt") <= NOW_MS);
    json_decref(out);
}

static void test_resolved_without_end_or_in_the_future_ends_now(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    f.alert.state = HEALTHSIGNALS__V1__ALERT_STATE__RESOLVED;
    const char *ends[] = {"", "2099-01-01T00:00:00Z", "not a time"};
    for (size_t i = 0; i < 3; i++) {
        f.alert.ends_at = (char *)ends[i];
        json_t *out = map(&f.alert, NULL);
        assert_true(time_at(out, "endsAt") == NOW_MS);
        json_decref(out);
    }
}

static void test_resolved_never_ends_before_it_starts(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    f.alert.state = HEALTHSIGNALS__V1__ALERT_STATE__RESOLVED;
    f.alert.starts_at = "2023-04-01T00:00:00Z";
    f.alert.ends_at = "2023-01-01T00:00:00Z";
    json_t *out = map(&f.alert, NULL);
    assert_true(time_at(out, "endsAt") >= time_at(out, "startsAt"));
    json_decref(out);
}

static void test_start_in_the_future_or_missing_is_now(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    f.alert.starts_at = "";
    json_t *out = map(&f.alert, NULL);
    assert_true(time_at(out, "startsAt") == NOW_MS);
    json_decref(out);
    f.alert.starts_at = "2099-01-01T00:00:00+02:00";
    out = map(&f.alert, NULL);
    assert_true(time_at(out, "startsAt") == NOW_MS);
    json_decref(out);
}

static void test_unspecified_state_refused(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    f.alert.state = HEALTHSIGNALS__V1__ALERT_STATE__ALERT_STATE_UNSPECIFIED;
    am_map_options options = {.now_ms = NOW_MS, .firing_for_ms = FIRING_FOR_MS};
    hs_error error = {0};
    assert_null(am_map_alert(&f.alert, &options, &error));
    assert_int_equal(error.code, HS_ERR_VALIDATION);
}

static void test_label_names_mapped_to_valid_ones(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"team_name", "team_name"},
        {"team-name", "team_name"},
        {"0owner", "x_0owner"},
        {"__meta", "x___meta"},
        {"", "x_"},
        {"før", "f__r"},
        {"a.b c", "a_b_c"},
        {"_ok", "_ok"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[AM_LABEL_NAME_MAX];
        am_map_label_name(cases[i][0], out, sizeof out);
        assert_string_equal(out, cases[i][1]);
    }
}

static void test_colliding_mapped_names_both_kept(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    f.label_entries[1].key = "team-a"; /* the labels are sorted by name, as the services write them */
    f.label_entries[2].key = "team_a";
    json_t *out = map(&f.alert, NULL);
    assert_int_equal(json_object_size(json_object_get(out, "labels")), 4);
    assert_string_equal(text_at(out, "labels", "team_a"), "akutplan");
    assert_string_equal(text_at(out, "labels", "team_a_2"), "region:1081");
    json_decref(out);
}

static void test_invalid_utf8_replaced_not_dropped(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    f.label_entries[1].value = "bad\xff\xc3"; /* a stray byte and a cut-off sequence */
    json_t *out = map(&f.alert, NULL);
    assert_string_equal(text_at(out, "labels", "plan"), "bad\xEF\xBF\xBD\xEF\xBF\xBD");
    json_decref(out);
}

static void test_alertname_from_rule_when_missing(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    f.alert.labels = f.labels + 1;
    f.alert.n_labels = 3;
    json_t *out = map(&f.alert, NULL);
    assert_string_equal(text_at(out, "labels", "alertname"), "akutplan.ventetid.somatik");
    json_decref(out);
}

static void test_generator_url_template(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f);
    json_t *out = map(&f.alert, "https://grafana.example/d/alerts?rule={rule}&fp={fingerprint}");
    assert_string_equal(
        text_at(out, "generatorURL", NULL),
        "https://grafana.example/d/alerts?rule=akutplan.ventetid.somatik&fp=0123456789abcdef");
    json_decref(out);
}

static void test_time_parse_offsets_and_fractions(void **state)
{
    (void)state;
    int64_t a = 0, b = 0;
    assert_true(am_map_time_parse("2023-07-01T02:00:00.5+02:00", &a));
    assert_true(am_map_time_parse("2023-07-01T00:00:00Z", &b));
    assert_true(a == b + 500);
    assert_false(am_map_time_parse("2023-02-30T00:00:00Z", &a));
    char text[40];
    am_map_time_format(b + 7, text);
    assert_string_equal(text, "2023-07-01T00:00:00.007Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_firing_ends_in_the_future_by_four_intervals),
        cmocka_unit_test(test_labels_and_annotations_carried),
        cmocka_unit_test(test_resolved_ends_at_its_end),
        cmocka_unit_test(test_resolved_without_end_or_in_the_future_ends_now),
        cmocka_unit_test(test_resolved_never_ends_before_it_starts),
        cmocka_unit_test(test_start_in_the_future_or_missing_is_now),
        cmocka_unit_test(test_unspecified_state_refused),
        cmocka_unit_test(test_label_names_mapped_to_valid_ones),
        cmocka_unit_test(test_colliding_mapped_names_both_kept),
        cmocka_unit_test(test_invalid_utf8_replaced_not_dropped),
        cmocka_unit_test(test_alertname_from_rule_when_missing),
        cmocka_unit_test(test_generator_url_template),
        cmocka_unit_test(test_time_parse_offsets_and_fractions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
