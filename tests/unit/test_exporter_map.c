/* The exporter's mapping (services/exporter/exporter_map.c): Tabel 10 (docs/domain.md §10.4, cancer standard
 * pathway times; the rows the variation tests use) through the real variation calculation, its 2023Q2 record
 * mapped to hs_variation_spread 21, hs_variation_national_value 77 and each region's value and rank; a target
 * status MISSED, MET, and NO_BASELINE (no hs_target_met, no threshold); a capacity status of a hospital
 * (utilisation as a ratio, its region from its code); records refused (key not the value's identity, not the
 * message, a label not UTF-8); which period is the latest; and the OpenMetrics text of a history, byte for
 * byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "calcrun.h"
#include "exporter_map.h"
#include "healthsignals/v1/capacity_status.pb-c.h"
#include "healthsignals/v1/regional_variation.pb-c.h"
#include "healthsignals/v1/target_status.pb-c.h"
#include "hs/json.h"
#include "variation.h"

#define KRAEFT "kraeft.standardforloeb.compliance"

/* Tabel 10 — cancer standard pathway times met, %: the five regions in code order, then the nation. */
static const struct {
    const char *period;
    int values[6];
} tabel10[] = {
    {"2023Q1", {87, 77, 82, 79, 72, 79}},
    {"2023Q2", {87, 80, 79, 74, 66, 77}},
};
static const char *const codes[6] = {"1081", "1082", "1083", "1084", "1085", "DK"};

/* The protobuf bytes of `json` as a message of `desc`; *len receives their length. */
static uint8_t *packed(const ProtobufCMessageDescriptor *desc, const char *json, size_t *len)
{
    json_error_t jerr;
    json_t *j = json_loads(json, 0, &jerr);
    if (!j)
        fail_msg("bad JSON in the test: %s: %s", jerr.text, json);
    hs_error error = {0};
    ProtobufCMessage *msg = hs_json_to_message(desc, j, &error);
    json_decref(j);
    if (!msg)
        fail_msg("%s: %s", desc->name, error.message);
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *bytes = malloc(*len ? *len : 1);
    protobuf_c_message_pack(msg, bytes);
    protobuf_c_message_free_unpacked(msg, NULL);
    return bytes;
}

static xm_record *decoded(xm_table table, const char *key, const ProtobufCMessageDescriptor *desc,
                          const char *json)
{
    size_t len;
    uint8_t *bytes = packed(desc, json, &len);
    xm_record *r = NULL;
    hs_error error = {0};
    if (xm_record_decode(table, key, bytes, len, &r, &error) != HS_OK)
        fail_msg("%s: %s", key, error.message);
    free(bytes);
    return r;
}

static const char *label(const xm_sample *s, const char *name)
{
    for (const char *const *l = s->labels; l[0]; l += 2)
        if (strcmp(l[0], name) == 0)
            return l[1];
    return NULL;
}

/* The sample of family `name` whose label `match` (may be NULL) has `value`, or NULL. */
static const xm_sample *sample(const xm_record *r, const char *name, const char *match, const char *value)
{
    size_t n;
    const xm_family *families = xm_families(&n);
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(families[r->samples[i].family].name, name) == 0 &&
            (!match || (label(&r->samples[i], match) && strcmp(label(&r->samples[i], match), value) == 0)))
            return &r->samples[i];
    return NULL;
}

static double value_of(const xm_record *r, const char *name, const char *match, const char *value)
{
    const xm_sample *s = sample(r, name, match, value);
    if (!s)
        fail_msg("no %s{%s=\"%s\"}", name, match ? match : "", value ? value : "");
    return s->value;
}

/* --- variation: Tabel 10 through the calculation ----------------------------------------------------------
 */

static void test_tabel10_2023q2_spread_21(void **state)
{
    (void)state;
    char *input = NULL;
    size_t input_len = 0;
    FILE *f = open_memstream(&input, &input_len);
    for (size_t q = 0; q < sizeof tabel10 / sizeof tabel10[0]; q++)
        for (int i = 0; i < 6; i++)
            fprintf(f,
                    "{\"specversion\":\"1.0\",\"id\":\"t\",\"source\":\"test\",\"type\":\"healthsignals.v1."
                    "IndicatorObservation\",\"data\":{\"indicator\":\"" KRAEFT
                    "\",\"scope\":{\"code\":\"%s\"},"
                    "\"period\":\"%s\",\"value\":%d,\"unit\":\"PERCENT\"}}\n",
                    codes[i], tabel10[q].period, tabel10[q].values[i]);
    fclose(f);
    calcrun run = calcrun_run(&variation_calc, NULL, input, false);
    free(input);
    json_t *data = json_object_get(run.by_key, KRAEFT "/2023Q2");
    assert_non_null(data);
    char *json = json_dumps(data, JSON_COMPACT);
    xm_record *r =
        decoded(XM_VARIATION, KRAEFT "/2023Q2", &healthsignals__v1__regional_variation__descriptor, json);
    free(json);
    calcrun_free(&run);

    assert_string_equal(r->identity, "1|" KRAEFT);
    assert_float_equal(value_of(r, "hs_variation_spread", "period", "2023Q2"), 21, 0);
    assert_float_equal(value_of(r, "hs_variation_national_value", "period", "2023Q2"), 77, 0);
    const xm_sample *spread = sample(r, "hs_variation_spread", NULL, NULL);
    assert_string_equal(label(spread, "indicator"), KRAEFT);
    assert_string_equal(label(spread, "unit"), "percent");
    assert_null(label(spread, "region"));
    assert_float_equal(value_of(r, "hs_variation_region_value", "region", "1081"), 87, 0);
    assert_float_equal(value_of(r, "hs_variation_region_value", "region", "1085"), 66, 0);
    assert_float_equal(value_of(r, "hs_variation_region_rank", "region", "1081"), 1, 0);
    assert_float_equal(value_of(r, "hs_variation_region_rank", "region", "1085"), 5, 0);
    assert_string_equal(label(sample(r, "hs_variation_region_value", "region", "1085"), "region_name"),
                        "Sjælland");
    assert_int_equal(r->count, 2 + 2 * 5);
    /* Its period: the second quarter of 2023, ending 1 July 2023. */
    assert_int_equal(r->start, 1680307200);
    assert_int_equal(r->end, 1688169600);
    xm_record_free(r);
}

/* --- targets ----------------------------------------------------------------------------------------------
 */

#define STATUS_JSON(rule, code, kind, period, status, extra)                                                 \
    "{\"rule\":\"" rule "\",\"subject\":\"udredningsret.somatik.compliance\",\"scope\":{\"kind\":\"" kind    \
    "\",\"code\":\"" code "\"},\"period\":\"" period                                                         \
    "\",\"value\":61,\"unit\":\"PERCENT\",\"status\":\"" status "\"" extra "}"

static void test_target_missed_met_and_without_baseline(void **state)
{
    (void)state;
    xm_record *r = decoded(
        XM_TARGETS, "udredningsret.somatik.compliance/akutplan.x/region:1082/2023Q2",
        &healthsignals__v1__target_status__descriptor,
        STATUS_JSON("akutplan.x", "1082", "REGION", "2023Q2", "MISSED", ",\"target\":79,\"gap\":-18"));
    assert_float_equal(value_of(r, "hs_target_value", NULL, NULL), 61, 0);
    assert_float_equal(value_of(r, "hs_target_threshold", NULL, NULL), 79, 0);
    assert_float_equal(value_of(r, "hs_target_gap", NULL, NULL), -18, 0);
    assert_float_equal(value_of(r, "hs_target_met", NULL, NULL), 0, 0);
    const xm_sample *s = sample(r, "hs_target_met", NULL, NULL);
    const char *want[][2] = {{"indicator", "udredningsret.somatik.compliance"},
                             {"period", "2023Q2"},
                             {"region", "1082"},
                             {"region_name", "Midtjylland"},
                             {"rule", "akutplan.x"},
                             {"scope", "region:1082"},
                             {"unit", "percent"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_string_equal(s->labels[2 * i], want[i][0]); /* in name order */
        assert_string_equal(s->labels[2 * i + 1], want[i][1]);
    }
    assert_null(s->labels[2 * 7]);
    assert_string_equal(r->identity, "0|udredningsret.somatik.compliance/akutplan.x/region:1082");
    xm_record_free(r);

    r = decoded(XM_TARGETS, "udredningsret.somatik.compliance/akutplan.x/national:DK/2023Q2",
                &healthsignals__v1__target_status__descriptor,
                STATUS_JSON("akutplan.x", "DK", "NATIONAL", "2023Q2", "MET", ",\"target\":60,\"gap\":1"));
    assert_float_equal(value_of(r, "hs_target_met", "region", "DK"), 1, 0);
    assert_string_equal(label(sample(r, "hs_target_met", NULL, NULL), "region_name"), "Hele landet");
    xm_record_free(r);

    /* No baseline: neither met nor missed, and no target to compare with. */
    r = decoded(XM_TARGETS, "udredningsret.somatik.compliance/akutplan.x/region:1081/2019Q1",
                &healthsignals__v1__target_status__descriptor,
                STATUS_JSON("akutplan.x", "1081", "REGION", "2019Q1", "NO_BASELINE", ""));
    assert_non_null(sample(r, "hs_target_value", NULL, NULL));
    assert_null(sample(r, "hs_target_met", NULL, NULL));
    assert_null(sample(r, "hs_target_threshold", NULL, NULL));
    assert_null(sample(r, "hs_target_gap", NULL, NULL));
    assert_int_equal(r->count, 1);
    xm_record_free(r);
}

/* --- capacity ---------------------------------------------------------------------------------------------
 */

static void test_capacity_of_a_hospital(void **state)
{
    (void)state;
    xm_record *r = decoded(XM_CAPACITY, "beds.intensive/hospital:1084-rigshospitalet/2023Q2",
                           &healthsignals__v1__capacity_status__descriptor,
                           "{\"resource\":\"beds.intensive\",\"scope\":{\"kind\":\"HOSPITAL\",\"code\":"
                           "\"1084-rigshospitalet\"},\"period\":\"2023Q2\",\"available\":40,\"occupied\":34,"
                           "\"utilisationPct\":85,\"level\":3,\"rule\":\"capacity.default\"}");
    assert_float_equal(value_of(r, "hs_capacity_utilisation_ratio", NULL, NULL), 0.85, 1e-12);
    assert_float_equal(value_of(r, "hs_capacity_level", NULL, NULL), 3, 0);
    assert_float_equal(value_of(r, "hs_capacity_available", NULL, NULL), 40, 0);
    assert_float_equal(value_of(r, "hs_capacity_occupied", NULL, NULL), 34, 0);
    const xm_sample *s = sample(r, "hs_capacity_level", NULL, NULL);
    assert_string_equal(label(s, "scope"), "hospital:1084-rigshospitalet");
    assert_string_equal(label(s, "region"), "1084");
    assert_string_equal(label(s, "region_name"), "Hovedstaden");
    assert_string_equal(label(s, "rollup"), "false");
    assert_string_equal(label(s, "rule"), "capacity.default");
    xm_record_free(r);

    /* Nothing available: no utilisation at all, rather than a made-up one. */
    r = decoded(
        XM_CAPACITY, "beds.intensive/region:1081/2023Q2", &healthsignals__v1__capacity_status__descriptor,
        "{\"resource\":\"beds.intensive\",\"scope\":{\"kind\":\"REGION\",\"code\":\"1081\"},\"period\":"
        "\"2023Q2\",\"available\":0,\"occupied\":2,\"level\":4,\"rule\":\"capacity.default\","
        "\"rollup\":true}");
    assert_null(sample(r, "hs_capacity_utilisation_ratio", NULL, NULL));
    assert_string_equal(label(sample(r, "hs_capacity_level", NULL, NULL), "rollup"), "true");
    xm_record_free(r);
}

/* --- refused ----------------------------------------------------------------------------------------------
 */

static void test_records_refused(void **state)
{
    (void)state;
    const char *json =
        "{\"indicator\":\"" KRAEFT "\",\"period\":\"2023Q2\",\"unit\":\"PERCENT\",\"spread\":21}";
    size_t len;
    uint8_t *bytes = packed(&healthsignals__v1__regional_variation__descriptor, json, &len);
    xm_record *r = (xm_record *)1;
    hs_error error = {0};
    /* Another key than the value's identity would make the series of another key. */
    assert_int_equal(xm_record_decode(XM_VARIATION, KRAEFT "/2023Q1", bytes, len, &r, &error),
                     HS_ERR_KEY_MISMATCH);
    assert_null(r);
    free(bytes);

    const uint8_t garbage[] = {0xff, 0xff, 0xff};
    assert_int_equal(xm_record_decode(XM_VARIATION, KRAEFT "/2023Q2", garbage, sizeof garbage, &r, &error),
                     HS_ERR_VALIDATION);
    assert_non_null(strstr(error.message, "RegionalVariation"));

    bytes = packed(&healthsignals__v1__regional_variation__descriptor,
                   "{\"indicator\":\"" KRAEFT "\",\"period\":\"2023Q2\",\"unit\":\"PERCENT\",\"regions\":"
                   "[{\"code\":\"1081\",\"name\":\"Nord\\u00ff\"}]}",
                   &len);
    /* Latin-1 bytes in a label: Prometheus would refuse the whole page. */
    char *p = memchr(bytes, 0xc3, len);
    assert_non_null(p);
    p[0] = (char)0xff;
    assert_int_equal(xm_record_decode(XM_VARIATION, KRAEFT "/2023Q2", bytes, len, &r, &error),
                     HS_ERR_VALIDATION);
    assert_non_null(strstr(error.message, "UTF-8"));
    free(bytes);

    char identity[HS_KEY_MAX + 4];
    assert_int_equal(xm_identity(XM_CAPACITY, "beds.intensive/region:1081/2023Q2", identity, &error), HS_OK);
    assert_string_equal(identity, "2|beds.intensive/region:1081");
    assert_int_equal(xm_identity(XM_CAPACITY, "noperiod", identity, &error), HS_ERR_VALIDATION);
}

/* --- the latest period ------------------------------------------------------------------------------------
 */

static void test_latest_period_ends_last(void **state)
{
    (void)state;
    xm_record *year =
        decoded(XM_VARIATION, KRAEFT "/2023", &healthsignals__v1__regional_variation__descriptor,
                "{\"indicator\":\"" KRAEFT "\",\"period\":\"2023\",\"unit\":\"PERCENT\"}");
    xm_record *q4 =
        decoded(XM_VARIATION, KRAEFT "/2023Q4", &healthsignals__v1__regional_variation__descriptor,
                "{\"indicator\":\"" KRAEFT "\",\"period\":\"2023Q4\",\"unit\":\"PERCENT\"}");
    xm_record *q3 =
        decoded(XM_VARIATION, KRAEFT "/2023Q3", &healthsignals__v1__regional_variation__descriptor,
                "{\"indicator\":\"" KRAEFT "\",\"period\":\"2023Q3\",\"unit\":\"PERCENT\"}");
    assert_true(xm_later(year, q3)); /* ends later */
    assert_false(xm_later(q3, year));
    assert_true(xm_later(q4, year)); /* the same end, started later */
    assert_false(xm_later(year, q4));
    assert_false(xm_later(q4, q4));
    xm_record_free(year);
    xm_record_free(q4);
    xm_record_free(q3);
}

/* --- OpenMetrics ------------------------------------------------------------------------------------------
 */

static void test_openmetrics_of_a_history(void **state)
{
    (void)state;
    xm_record *records[] = {
        decoded(XM_VARIATION, KRAEFT "/2023Q2", &healthsignals__v1__regional_variation__descriptor,
                "{\"indicator\":\"" KRAEFT "\",\"period\":\"2023Q2\",\"unit\":\"PERCENT\",\"spread\":21,"
                "\"nationalValue\":77}"),
        decoded(XM_VARIATION, KRAEFT "/2022Q1", &healthsignals__v1__regional_variation__descriptor,
                "{\"indicator\":\"" KRAEFT "\",\"period\":\"2022Q1\",\"unit\":\"PERCENT\",\"spread\":11.5,"
                "\"nationalValue\":81,\"regions\":[{\"code\":\"1085\",\"name\":\"Sj\\u00e6lland \\\"x\\\"\","
                "\"value\":76,\"rank\":5}]}"),
    };
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    hs_error error = {0};
    assert_int_equal(xm_write_openmetrics(f, records, 2, &error), HS_OK);
    fclose(f);
    const char *want =
        "# HELP hs_variation_national_value The national value of an indicator, latest period, in the unit "
        "(hs.variation.v1)\n"
        "# TYPE hs_variation_national_value gauge\n"
        "hs_variation_national_value{indicator=\"" KRAEFT
        "\",period=\"2022Q1\",unit=\"percent\"} 81 1648771200\n"
        "hs_variation_national_value{indicator=\"" KRAEFT
        "\",period=\"2023Q2\",unit=\"percent\"} 77 1688169600\n"
        "# HELP hs_variation_region_rank A region's rank among the regions for an indicator, 1 = best, "
        "latest "
        "period (hs.variation.v1)\n"
        "# TYPE hs_variation_region_rank gauge\n"
        "hs_variation_region_rank{indicator=\"" KRAEFT "\",period=\"2022Q1\",region=\"1085\",region_name="
        "\"Sjælland \\\"x\\\"\",unit=\"percent\"} 5 1648771200\n"
        "# HELP hs_variation_region_value A region's value of an indicator, latest period, in the unit "
        "(hs.variation.v1)\n"
        "# TYPE hs_variation_region_value gauge\n"
        "hs_variation_region_value{indicator=\"" KRAEFT "\",period=\"2022Q1\",region=\"1085\",region_name="
        "\"Sjælland \\\"x\\\"\",unit=\"percent\"} 76 1648771200\n"
        "# HELP hs_variation_spread The regional variation of an indicator: best minus worst region, "
        "absolute, "
        "in the unit, latest period (hs.variation.v1)\n"
        "# TYPE hs_variation_spread gauge\n"
        "hs_variation_spread{indicator=\"" KRAEFT "\",period=\"2022Q1\",unit=\"percent\"} 11.5 1648771200\n"
        "hs_variation_spread{indicator=\"" KRAEFT "\",period=\"2023Q2\",unit=\"percent\"} 21 1688169600\n"
        "# EOF\n";
    assert_string_equal(text, want);
    free(text);
    xm_record_free(records[0]);
    xm_record_free(records[1]);

    /* Nothing to export is still a valid (empty) exposition. */
    text = NULL;
    f = open_memstream(&text, &len);
    assert_int_equal(xm_write_openmetrics(f, NULL, 0, &error), HS_OK);
    fclose(f);
    assert_string_equal(text, "# EOF\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tabel10_2023q2_spread_21),
        cmocka_unit_test(test_target_missed_met_and_without_baseline),
        cmocka_unit_test(test_capacity_of_a_hospital),
        cmocka_unit_test(test_records_refused),
        cmocka_unit_test(test_latest_period_ends_last),
        cmocka_unit_test(test_openmetrics_of_a_history),
    };
    return cmocka_run_group_tests_name("exporter_map", tests, NULL, NULL);
}
