/* The targets calculation through the offline driver, against the figures of docs/domain.md §10: Tabel 8
 * (udredningsret, 2023Q2 against the national target and against each scope's own 2018-19 average), Tabel 1
 * (waiting times against 2020Q1 + 2 days, Nordjylland met exactly at the boundary), the anaesthesia
 * base-year target (112 x 1.2 = 134.4) and the surgical-activity growth target; then the alert semantics:
 * fire, stay, resolve, for_periods, hysteresis, suspended periods, revisions, deleted and changed rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "calcrun.h"
#include "targets.h"

/* Targets derived by a division or a product of non-integers are compared with this tolerance. */
#define TOLERANCE 1e-9

#define FACT_X(indicator, scope, period, value, unit, extra)                                                 \
    "{\"specversion\":\"1.0\",\"id\":\"t\",\"source\":\"test\",\"type\":\"healthsignals.v1."                 \
    "IndicatorObservation\",\"data\":{\"indicator\":\"" indicator "\",\"scope\":{\"code\":\"" scope          \
    "\"},\"period\":\"" period "\",\"value\":" value ",\"unit\":\"" unit "\"" extra "}}\n"
#define FACT(indicator, scope, period, value, unit) FACT_X(indicator, scope, period, value, unit, "")
#define TOMBSTONE(key)                                                                                       \
    "{\"specversion\":\"1.0\",\"id\":\"t\",\"source\":\"test\",\"type\":\"healthsignals.v1."                 \
    "IndicatorObservation\",\"subject\":\"" key "\",\"data\":null}\n"
#define RULE(json)                                                                                           \
    "{\"specversion\":\"1.0\",\"id\":\"r\",\"source\":\"test\",\"type\":\"healthsignals.v1.Rule\","          \
    "\"data\":" json "}\n"
#define RULE_DELETED(id)                                                                                     \
    "{\"specversion\":\"1.0\",\"id\":\"r\",\"source\":\"test\",\"type\":\"healthsignals.v1.Rule\","          \
    "\"subject\":\"" id "\",\"data\":null}\n"

#define UDR     "udredningsret.somatik.compliance"
#define VENT    "ventetid.somatik.oplevet"
#define ANAEST  "anaestesi.hoveduddannelse.stillinger"
#define KIRURGI "kirurgi.produktionsvaerdi"

/* The national target of Tabel 8: baseline 82 (supplied), band 3 -> missed below 79; every scope. */
#define NATIONAL_TARGET(extra)                                                                               \
    RULE("{\"id\":\"national-target\",\"service\":\"targets\",\"subject\":\"" UDR "\",\"kind\":"             \
         "\"BASELINE_BAND\",\"direction\":\"HIGHER_IS_BETTER\",\"baselineValue\":82,\"band\":3" extra "}")

/* Tabel 8, 2023Q2: Hovedstaden 83, Midtjylland 61, Nordjylland 90, Sjælland 75, Syddanmark 67, nation 73. */
// clang-format off
#define TABEL8_2023Q2                                                                                        \
    FACT(UDR, "1084", "2023Q2", "83", "PERCENT")                                                             \
    FACT(UDR, "1082", "2023Q2", "61", "PERCENT")                                                             \
    FACT(UDR, "1081", "2023Q2", "90", "PERCENT")                                                             \
    FACT(UDR, "1085", "2023Q2", "75", "PERCENT")                                                             \
    FACT(UDR, "1083", "2023Q2", "67", "PERCENT")                                                             \
    FACT(UDR, "DK", "2023Q2", "73", "PERCENT")
// clang-format on

/* The output of one run: every output event by key, and the run's counts. */
typedef calcrun run_result;

static run_result run_with(const char *rules, const char *input, bool changes)
{
    return calcrun_run(&targets_calc, rules, input, changes);
}

static run_result run(const char *input)
{
    return run_with(NULL, input, false);
}

static void run_free(run_result *r)
{
    calcrun_free(r);
}

/* The status of `rule` for `scope` ("region:1082") in `period` of `subject`; fails the test if absent. */
static json_t *status(const run_result *r, const char *subject, const char *rule, const char *scope,
                      const char *period)
{
    char key[512];
    snprintf(key, sizeof key, "%s/%s/%s/%s", subject, rule, scope, period);
    json_t *data = json_object_get(r->by_key, key);
    if (!data)
        fail_msg("no status %s in:\n%s", key, r->text);
    return data;
}

static bool has_status(const run_result *r, const char *subject, const char *rule, const char *scope,
                       const char *period)
{
    char key[512];
    snprintf(key, sizeof key, "%s/%s/%s/%s", subject, rule, scope, period);
    return json_object_get(r->by_key, key) != NULL;
}

/* The alert of `rule` for the scope with `code`, or NULL. */
static json_t *alert(const run_result *r, const char *rule, const char *code)
{
    const char *key;
    json_t *data;
    json_object_foreach(r->by_key, key, data)
    {
        if (json_object_get(data, "fingerprint") &&
            strcmp(json_string_value(json_object_get(data, "rule")), rule) == 0 &&
            strcmp(json_string_value(json_object_get(json_object_get(data, "scope"), "code")), code) == 0)
            return data;
    }
    return NULL;
}

static const char *text_of(json_t *data, const char *field)
{
    const char *s = json_string_value(json_object_get(data, field));
    return s ? s : "";
}

static double number_of(json_t *data, const char *field)
{
    json_t *v = json_object_get(data, field);
    if (!json_is_number(v))
        fail_msg("field %s is not a number in %s", field, json_dumps(data, JSON_COMPACT));
    return json_number_value(v);
}

static void assert_status(const run_result *r, const char *subject, const char *rule, const char *scope,
                          const char *period, const char *expected)
{
    json_t *st = status(r, subject, rule, scope, period);
    if (strcmp(text_of(st, "status"), expected) != 0)
        fail_msg("%s %s %s: status %s, want %s", rule, scope, period, text_of(st, "status"), expected);
}

static void assert_alert_state(const run_result *r, const char *rule, const char *code, const char *expected)
{
    json_t *a = alert(r, rule, code);
    if (!a)
        fail_msg("no alert %s %s in:\n%s", rule, code, r->text);
    if (strcmp(text_of(a, "state"), expected) != 0)
        fail_msg("alert %s %s: %s, want %s", rule, code, text_of(a, "state"), expected);
}

/* The alert of `rule` in `code` is in state `expected` with these startsAt and endsAt. */
static void assert_alert_bounds(const run_result *r, const char *rule, const char *code, const char *expected,
                                const char *starts_at, const char *ends_at)
{
    assert_alert_state(r, rule, code, expected);
    json_t *a = alert(r, rule, code);
    assert_string_equal(text_of(a, "startsAt"), starts_at);
    assert_string_equal(text_of(a, "endsAt"), ends_at);
}

/* --- docs/domain.md §10.1: Tabel 8 -----------------------------------------------------------------------
 */

static void test_tabel8_2023q2_against_the_national_target(void **state)
{
    run_result r = run(NATIONAL_TARGET("") TABEL8_2023Q2);
    /* Baseline 82, band 3: missed below 79. */
    json_t *midt = status(&r, UDR, "national-target", "region:1082", "2023Q2");
    assert_float_equal(number_of(midt, "target"), 79, TOLERANCE);
    assert_float_equal(number_of(midt, "baseline"), 82, TOLERANCE);
    assert_string_equal(text_of(midt, "baselineMethod"), "BASELINE_SUPPLIED");
    assert_float_equal(number_of(midt, "gap"), -18, TOLERANCE);                   /* 61 - 79 */
    assert_status(&r, UDR, "national-target", "region:1082", "2023Q2", "MISSED"); /* Midtjylland 61 */
    assert_status(&r, UDR, "national-target", "region:1085", "2023Q2", "MISSED"); /* Sjælland 75 */
    assert_status(&r, UDR, "national-target", "region:1083", "2023Q2", "MISSED"); /* Syddanmark 67 */
    assert_status(&r, UDR, "national-target", "national:DK", "2023Q2", "MISSED"); /* the nation 73 */
    assert_status(&r, UDR, "national-target", "region:1084", "2023Q2", "MET");    /* Hovedstaden 83 */
    assert_status(&r, UDR, "national-target", "region:1081", "2023Q2", "MET");    /* Nordjylland 90 */
    assert_float_equal(number_of(status(&r, UDR, "national-target", "region:1081", "2023Q2"), "gap"), 11,
                       TOLERANCE); /* 90 - 79 */
    /* The four misses fire, the two mets raise nothing. */
    assert_alert_state(&r, "national-target", "1082", "FIRING");
    assert_alert_state(&r, "national-target", "1085", "FIRING");
    assert_alert_state(&r, "national-target", "1083", "FIRING");
    assert_alert_state(&r, "national-target", "DK", "FIRING");
    assert_null(alert(&r, "national-target", "1084"));
    assert_null(alert(&r, "national-target", "1081"));
    run_free(&r);
}

static void test_tabel8_2023q2_against_each_scopes_own_baseline(void **state)
{
    /* The 2018-19 averages of Tabel 8 (docs/domain.md §10.1), one rule each. */
#define OWN(id, code, avg)                                                                                   \
    RULE("{\"id\":\"own-" id "\",\"service\":\"targets\",\"subject\":\"" UDR "\",\"kind\":"                  \
         "\"BASELINE_BAND\",\"direction\":\"HIGHER_IS_BETTER\",\"baselineValue\":" avg ",\"band\":3,"        \
         "\"scopes\":[{\"code\":\"" code "\"}]}")
    run_result r = run(OWN("1084", "1084", "79") OWN("1082", "1082", "84") OWN("1081", "1081", "94") OWN(
        "1085", "1085", "79") OWN("1083", "1083", "82") OWN("dk", "DK", "83") TABEL8_2023Q2);
#undef OWN
    assert_status(&r, UDR, "own-1084", "region:1084", "2023Q2", "MET");    /* Hovedstaden 83 >= 79 - 3 = 76 */
    assert_status(&r, UDR, "own-1082", "region:1082", "2023Q2", "MISSED"); /* Midtjylland 61 < 84 - 3 = 81 */
    assert_status(&r, UDR, "own-1081", "region:1081", "2023Q2", "MISSED"); /* Nordjylland 90 < 94 - 3 = 91 */
    assert_status(&r, UDR, "own-1085", "region:1085", "2023Q2", "MISSED"); /* Sjælland 75 < 79 - 3 = 76 */
    assert_status(&r, UDR, "own-1083", "region:1083", "2023Q2", "MISSED"); /* Syddanmark 67 < 82 - 3 = 79 */
    assert_status(&r, UDR, "own-dk", "national:DK", "2023Q2", "MISSED");   /* the nation 73 < 83 - 3 = 80 */
    assert_float_equal(number_of(status(&r, UDR, "own-1081", "region:1081", "2023Q2"), "target"), 91,
                       TOLERANCE);
    assert_float_equal(number_of(status(&r, UDR, "own-1081", "region:1081", "2023Q2"), "gap"), -1, TOLERANCE);
    /* A rule with scopes evaluates only those: no Midtjylland status under Hovedstaden's rule. */
    assert_false(has_status(&r, UDR, "own-1084", "region:1082", "2023Q2"));
    run_free(&r);
}

static void test_epj_flags_are_carried_to_status_and_alert(void **state)
{
    /* Tabel 8: Syddanmark 2022Q2 63 % carries epj-transition; provisional marks 2023Q2. */
    run_result r = run(NATIONAL_TARGET("") FACT_X(UDR, "1083", "2022Q2", "63", "PERCENT",
                                                  ",\"qualityFlags\":[\"epj-transition\"]"));
    json_t *st = status(&r, UDR, "national-target", "region:1083", "2022Q2");
    assert_string_equal(json_string_value(json_array_get(json_object_get(st, "qualityFlags"), 0)),
                        "epj-transition");
    json_t *a = alert(&r, "national-target", "1083");
    assert_non_null(a);
    assert_string_equal(json_string_value(json_array_get(json_object_get(a, "qualityFlags"), 0)),
                        "epj-transition");
    assert_non_null(strstr(text_of(json_object_get(a, "annotations"), "description"), "epj-transition"));
    run_free(&r);
}

/* --- docs/domain.md §10.2: Tabel 1 -----------------------------------------------------------------------
 */

#define WAITING_TARGET                                                                                       \
    RULE("{\"id\":\"waiting\",\"service\":\"targets\",\"subject\":\"" VENT                                   \
         "\",\"kind\":\"BASELINE_MARGIN\","                                                                  \
         "\"direction\":\"LOWER_IS_BETTER\",\"baselinePeriods\":[\"2020Q1\"],\"margin\":2}")

/* Tabel 1: 2020Q1 and 2023Q2 per scope. */
// clang-format off
#define TABEL1                                                                                               \
    FACT(VENT, "1084", "2020Q1", "25", "DAYS")                                                               \
    FACT(VENT, "1084", "2023Q2", "37", "DAYS")                                                               \
    FACT(VENT, "1082", "2020Q1", "32", "DAYS")                                                               \
    FACT(VENT, "1082", "2023Q2", "49", "DAYS")                                                               \
    FACT(VENT, "1081", "2020Q1", "39", "DAYS")                                                               \
    FACT(VENT, "1081", "2023Q2", "41", "DAYS")                                                               \
    FACT(VENT, "1085", "2020Q1", "31", "DAYS")                                                               \
    FACT(VENT, "1085", "2023Q2", "38", "DAYS")                                                               \
    FACT(VENT, "1083", "2020Q1", "34", "DAYS")                                                               \
    FACT(VENT, "1083", "2023Q2", "48", "DAYS")                                                               \
    FACT(VENT, "DK", "2020Q1", "31", "DAYS")                                                                 \
    FACT(VENT, "DK", "2023Q2", "43", "DAYS")
// clang-format on

static void test_waiting_time_nordjylland_met_exactly_at_the_boundary(void **state)
{
    run_result r = run(WAITING_TARGET TABEL1);
    json_t *nord = status(&r, VENT, "waiting", "region:1081", "2023Q2");
    assert_string_equal(text_of(nord, "status"), "MET"); /* 41 = 39 + 2: at the target is met */
    assert_float_equal(number_of(nord, "target"), 41, TOLERANCE);
    assert_float_equal(number_of(nord, "gap"), 0, TOLERANCE);
    assert_float_equal(number_of(nord, "baseline"), 39, TOLERANCE);
    assert_string_equal(json_string_value(json_array_get(json_object_get(nord, "baselinePeriods"), 0)),
                        "2020Q1");
    /* Every other scope misses: nation 43 > 31 + 2 = 33. */
    json_t *dk = status(&r, VENT, "waiting", "national:DK", "2023Q2");
    assert_string_equal(text_of(dk, "status"), "MISSED");
    assert_float_equal(number_of(dk, "target"), 33, TOLERANCE);
    assert_float_equal(number_of(dk, "gap"), -10, TOLERANCE);              /* lower is better: 33 - 43 */
    assert_status(&r, VENT, "waiting", "region:1084", "2023Q2", "MISSED"); /* Hovedstaden 37 > 27 */
    assert_status(&r, VENT, "waiting", "region:1082", "2023Q2", "MISSED"); /* Midtjylland 49 > 34 */
    assert_status(&r, VENT, "waiting", "region:1085", "2023Q2", "MISSED"); /* Sjælland 38 > 33 */
    assert_status(&r, VENT, "waiting", "region:1083", "2023Q2", "MISSED"); /* Syddanmark 48 > 36 */
    /* The baseline period itself is not evaluated against itself. */
    assert_false(has_status(&r, VENT, "waiting", "region:1081", "2020Q1"));
    assert_null(alert(&r, "waiting", "1081"));
    assert_alert_state(&r, "waiting", "DK", "FIRING");
    run_free(&r);
}

/* --- the other kinds -------------------------------------------------------------------------------------
 */

#define ANAESTHESIA_TARGET                                                                                   \
    RULE("{\"id\":\"anaesthesia\",\"service\":\"targets\",\"subject\":\"" ANAEST "\",\"kind\":"              \
         "\"BASE_YEAR_GROWTH\",\"direction\":\"HIGHER_IS_BETTER\",\"basePeriod\":\"2019\",\"growthPct\":20," \
         "\"scopes\":[{\"code\":\"DK\"}]}")

static void test_anaesthesia_141_meets_134_4(void **state)
{
    run_result r = run(ANAESTHESIA_TARGET FACT(ANAEST, "DK", "2019", "112", "COUNT")
                           FACT(ANAEST, "DK", "2023", "141", "COUNT"));
    json_t *st = status(&r, ANAEST, "anaesthesia", "national:DK", "2023");
    assert_string_equal(text_of(st, "status"), "MET");                        /* 141 >= 134,4 */
    assert_float_equal(number_of(st, "target"), 134.4, TOLERANCE);            /* 112 x 1,2 */
    assert_float_equal(number_of(st, "gap"), 6.6, TOLERANCE);                 /* 141 - 134,4 */
    assert_float_equal(number_of(st, "changePct"), 25.892857142857142, 1e-6); /* 141 / 112 - 1 */
    assert_string_equal(text_of(st, "baselineMethod"), "BASELINE_BASE_PERIOD");
    assert_false(has_status(&r, ANAEST, "anaesthesia", "national:DK", "2019")); /* the base year */
    assert_null(alert(&r, "anaesthesia", "DK"));
    run_free(&r);
}

static void test_anaesthesia_130_misses_134_4(void **state)
{
    run_result r = run(ANAESTHESIA_TARGET FACT(ANAEST, "DK", "2019", "112", "COUNT")
                           FACT(ANAEST, "DK", "2023", "130", "COUNT"));
    json_t *st = status(&r, ANAEST, "anaesthesia", "national:DK", "2023");
    assert_string_equal(text_of(st, "status"), "MISSED");      /* 130 < 134,4 */
    assert_float_equal(number_of(st, "gap"), -4.4, TOLERANCE); /* 130 - 134,4 */
    assert_alert_state(&r, "anaesthesia", "DK", "FIRING");
    assert_string_equal(text_of(alert(&r, "anaesthesia", "DK"), "startsAt"),
                        "2024-01-01T00:00:00Z"); /* end of 2023 */
    run_free(&r);
}

static void test_surgical_activity_growth_q1_met_q2_missed(void **state)
{
    /* Akutplan target 2: +3 % on the same quarter of 2022. Reported: Q1 +9,4 % (met), Q2 +1,1 % (missed);
     * levels chosen so that the growth is exactly the printed one (1000 -> 1094, 1000 -> 1011). */
    run_result r = run(
        RULE("{\"id\":\"surgery\",\"service\":\"targets\",\"subject\":\"" KIRURGI "\",\"kind\":\"GROWTH\","
             "\"direction\":\"HIGHER_IS_BETTER\",\"growthPct\":3,\"scopes\":[{\"code\":\"DK\"}]}")
            FACT(KIRURGI, "DK", "2022Q1", "1000", "DKK") FACT(KIRURGI, "DK", "2022Q2", "1000", "DKK")
                FACT(KIRURGI, "DK", "2023Q1", "1094", "DKK") FACT(KIRURGI, "DK", "2023Q2", "1011", "DKK"));
    json_t *q1 = status(&r, KIRURGI, "surgery", "national:DK", "2023Q1");
    assert_string_equal(text_of(q1, "status"), "MET");
    assert_float_equal(number_of(q1, "changePct"), 9.4, TOLERANCE); /* +9,4 % */
    assert_float_equal(number_of(q1, "target"), 1030, TOLERANCE);   /* 1000 x 1,03 */
    json_t *q2 = status(&r, KIRURGI, "surgery", "national:DK", "2023Q2");
    assert_string_equal(text_of(q2, "status"), "MISSED");
    assert_float_equal(number_of(q2, "changePct"), 1.1, TOLERANCE); /* +1,1 % < 3 % */
    /* 2022 has no 2021 to compare with: NO_BASELINE, naming the missing period. */
    json_t *q1_2022 = status(&r, KIRURGI, "surgery", "national:DK", "2022Q1");
    assert_string_equal(text_of(q1_2022, "status"), "NO_BASELINE");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(q1_2022, "missingBaselinePeriods"), 0)), "2021Q1");
    assert_null(json_object_get(q1_2022, "target"));
    assert_alert_state(&r, "surgery", "DK", "FIRING");
    run_free(&r);
}

static void test_threshold_nursing_home_doctors(void **state)
{
    run_result r =
        run(RULE("{\"id\":\"nursing\",\"service\":\"targets\",\"subject\":\"plejehjem.laegedaekning\","
                 "\"kind\":\"THRESHOLD\",\"direction\":\"HIGHER_IS_BETTER\",\"threshold\":80}")
                FACT("plejehjem.laegedaekning", "DK", "2023Q2", "79", "PERCENT")
                    FACT("plejehjem.laegedaekning", "DK", "2023Q3", "90", "PERCENT"));
    assert_status(&r, "plejehjem.laegedaekning", "nursing", "national:DK", "2023Q2", "MISSED"); /* 79 < 80 */
    assert_status(&r, "plejehjem.laegedaekning", "nursing", "national:DK", "2023Q3", "MET"); /* 90 % >= 80 */
    json_t *a = alert(&r, "nursing", "DK");
    assert_string_equal(text_of(a, "state"), "RESOLVED");
    assert_string_equal(text_of(a, "startsAt"), "2023-07-01T00:00:00Z"); /* end of 2023Q2 */
    assert_string_equal(text_of(a, "endsAt"), "2023-10-01T00:00:00Z");   /* end of 2023Q3 */
    assert_null(json_object_get(status(&r, "plejehjem.laegedaekning", "nursing", "national:DK", "2023Q3"),
                                "baselineMethod"));
    run_free(&r);
}

static void test_starts_at_is_the_end_of_the_period_for_every_kind(void **state)
{
    /* The first day after the missed period, at midnight UTC: deterministic, never the wall clock. */
    static const struct {
        const char *period, *starts_at;
    } cases[] = {
        {"2023", "2024-01-01T00:00:00Z"},       {"2023H1", "2023-07-01T00:00:00Z"},
        {"2023Q4", "2024-01-01T00:00:00Z"},     {"2023-02", "2023-03-01T00:00:00Z"},
        {"2023W05", "2023-02-06T00:00:00Z"},    /* Monday 30 January .. Sunday 5 February */
        {"2020W53", "2021-01-04T00:00:00Z"},    /* ISO week 53 of 2020 ends on Sunday 3 January 2021 */
        {"2024-02-29", "2024-03-01T00:00:00Z"}, /* a leap day */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char input[2048];
        snprintf(input, sizeof input, "%s%s",
                 RULE("{\"id\":\"t\",\"service\":\"targets\",\"subject\":\"x.y\",\"kind\":\"THRESHOLD\","
                      "\"direction\":\"HIGHER_IS_BETTER\",\"threshold\":80}"),
                 FACT("x.y", "DK", "@", "70", "PERCENT")); /* 70 % < 80: missed, fires */
        /* the period goes where the FACT template has '@' */
        char *at = strchr(input, '@');
        assert_non_null(at);
        char tail[1024];
        snprintf(tail, sizeof tail, "%s", at + 1);
        snprintf(at, sizeof input - (size_t)(at - input), "%s%s", cases[i].period, tail);
        run_result r = run(input);
        json_t *a = alert(&r, "t", "DK");
        assert_non_null(a);
        assert_string_equal(text_of(a, "startsAt"), cases[i].starts_at);
        run_free(&r);
    }
}

/* --- baselines -------------------------------------------------------------------------------------------
 */

#define RANGE_RULE(extra)                                                                                    \
    RULE("{\"id\":\"range\",\"service\":\"targets\",\"subject\":\"" UDR "\",\"kind\":\"BASELINE_BAND\","     \
         "\"direction\":\"HIGHER_IS_BETTER\",\"baselineFrom\":\"2019Q1\",\"baselineTo\":\"2019Q2\","         \
         "\"band\":3,"                                                                                       \
         "\"scopes\":[{\"code\":\"1084\"}]" extra "}")

static void test_weighted_baseline_uses_volumes(void **state)
{
    /* (80 x 100 + 90 x 300) / 400 = 87,5; target 84,5 */
    run_result r = run(RANGE_RULE("") FACT_X(UDR, "1084", "2019Q1", "80", "PERCENT", ",\"volume\":\"100\"")
                           FACT_X(UDR, "1084", "2019Q2", "90", "PERCENT", ",\"volume\":\"300\"")
                               FACT(UDR, "1084", "2023Q2", "85", "PERCENT"));
    json_t *st = status(&r, UDR, "range", "region:1084", "2023Q2");
    assert_string_equal(text_of(st, "baselineMethod"), "BASELINE_WEIGHTED_MEAN");
    assert_float_equal(number_of(st, "baseline"), 87.5, TOLERANCE);
    assert_float_equal(number_of(st, "target"), 84.5, TOLERANCE);
    assert_string_equal(text_of(st, "status"), "MET"); /* 85 >= 84,5 */
    assert_int_equal(json_array_size(json_object_get(st, "baselinePeriods")), 2);
    run_free(&r);
}

static void test_unweighted_baseline_when_a_volume_is_missing_says_so(void **state)
{
    /* (80 + 90) / 2 = 85; target 82 — equal weights, because 2019Q2 has no volume */
    run_result r =
        run(RANGE_RULE("") FACT_X(UDR, "1084", "2019Q1", "80", "PERCENT", ",\"volume\":\"100\"")
                FACT(UDR, "1084", "2019Q2", "90", "PERCENT") FACT(UDR, "1084", "2023Q2", "83", "PERCENT"));
    json_t *st = status(&r, UDR, "range", "region:1084", "2023Q2");
    assert_string_equal(text_of(st, "baselineMethod"), "BASELINE_UNWEIGHTED_MEAN");
    assert_float_equal(number_of(st, "baseline"), 85, TOLERANCE);
    assert_string_equal(text_of(st, "status"), "MET"); /* 83 >= 82 (it would miss 84,5 weighted) */
    run_free(&r);
}

static void test_missing_baseline_period_is_no_baseline_not_a_guess(void **state)
{
    run_result r = run(RANGE_RULE("") FACT(UDR, "1084", "2019Q1", "80", "PERCENT")
                           FACT(UDR, "1084", "2023Q2", "60", "PERCENT"));
    json_t *st = status(&r, UDR, "range", "region:1084", "2023Q2");
    assert_string_equal(text_of(st, "status"), "NO_BASELINE");
    assert_string_equal(json_string_value(json_array_get(json_object_get(st, "missingBaselinePeriods"), 0)),
                        "2019Q2");
    assert_null(json_object_get(st, "baseline"));
    assert_null(alert(&r, "range", "1084")); /* NO_BASELINE is not evaluable: nothing fires */
    run_free(&r);
}

static void test_flagged_baseline_period_excluded_when_the_rule_says_so(void **state)
{
    const char *facts = FACT(UDR, "1084", "2019Q1", "80", "PERCENT")
        FACT_X(UDR, "1084", "2019Q2", "60", "PERCENT", ",\"qualityFlags\":[\"lpr3-transition\"]")
            FACT(UDR, "1084", "2023Q2", "76", "PERCENT");
    char input[4096];
    snprintf(input, sizeof input, "%s%s", RANGE_RULE(",\"excludeFlaggedFromBaseline\":true"), facts);
    run_result excluded = run(input);
    json_t *st = status(&excluded, UDR, "range", "region:1084", "2023Q2");
    assert_float_equal(number_of(st, "baseline"), 80, TOLERANCE); /* 2019Q2 left out */
    assert_string_equal(json_string_value(json_array_get(json_object_get(st, "excludedBaselinePeriods"), 0)),
                        "2019Q2");
    assert_string_equal(text_of(st, "status"), "MISSED"); /* 76 < 77 */
    assert_null(json_object_get(st, "qualityFlags"));     /* nothing flagged was used */
    snprintf(input, sizeof input, "%s%s", RANGE_RULE(""), facts);
    run_result included = run(input);
    st = status(&included, UDR, "range", "region:1084", "2023Q2");
    assert_float_equal(number_of(st, "baseline"), 70, TOLERANCE); /* (80 + 60) / 2 */
    assert_string_equal(json_string_value(json_array_get(json_object_get(st, "qualityFlags"), 0)),
                        "lpr3-transition"); /* carried on from the baseline */
    run_free(&excluded);
    run_free(&included);
}

static void test_baseline_fact_arriving_late_reevaluates_the_scope(void **state)
{
    run_result r =
        run(RANGE_RULE("") FACT(UDR, "1084", "2019Q1", "80", "PERCENT")
                FACT(UDR, "1084", "2023Q1", "70", "PERCENT") FACT(UDR, "1084", "2023Q2", "60", "PERCENT")
                    FACT(UDR, "1084", "2019Q2", "80", "PERCENT"));
    assert_status(&r, UDR, "range", "region:1084", "2023Q1", "MISSED"); /* 70 < 77 */
    assert_status(&r, UDR, "range", "region:1084", "2023Q2", "MISSED");
    assert_string_equal(text_of(alert(&r, "range", "1084"), "startsAt"), "2023-04-01T00:00:00Z");
    run_free(&r);
}

/* --- alert semantics -------------------------------------------------------------------------------------
 */

/* Sjælland in Tabel 8: 73 74 75 77 77 75 — below 79 in every quarter. */
// clang-format off
#define SJAELLAND                                                                                            \
    FACT(UDR, "1085", "2022Q1", "73", "PERCENT")                                                             \
    FACT(UDR, "1085", "2022Q2", "74", "PERCENT")                                                             \
    FACT(UDR, "1085", "2022Q3", "75", "PERCENT")                                                             \
    FACT(UDR, "1085", "2022Q4", "77", "PERCENT")                                                             \
    FACT(UDR, "1085", "2023Q1", "77", "PERCENT")                                                             \
    FACT(UDR, "1085", "2023Q2", "75", "PERCENT")
// clang-format on

static void test_missed_quarters_fire_one_alert_that_stays_firing(void **state)
{
    run_result r = run(NATIONAL_TARGET("") SJAELLAND);
    json_t *a = alert(&r, "national-target", "1085");
    assert_string_equal(text_of(a, "state"), "FIRING");
    assert_string_equal(text_of(a, "startsAt"), "2022-04-01T00:00:00Z"); /* end of 2022Q1, the first miss */
    assert_null(json_object_get(a, "endsAt"));
    assert_string_equal(text_of(a, "period"), "2023Q2");      /* evaluated on the latest period */
    assert_float_equal(number_of(a, "value"), 75, TOLERANCE); /* Sjælland 2023Q2 */
    assert_float_equal(number_of(a, "threshold"), 79, TOLERANCE);
    assert_int_equal(strlen(text_of(a, "fingerprint")), 16);
    json_t *labels = json_object_get(a, "labels");
    assert_string_equal(text_of(labels, "alertname"), "national-target");
    assert_string_equal(text_of(labels, "service"), "targets");
    assert_string_equal(text_of(labels, "scope"), "region:1085");
    assert_string_equal(text_of(labels, "subject"), UDR);
    assert_string_equal(text_of(labels, "severity"), "warning");
    const char *description = text_of(json_object_get(a, "annotations"), "description");
    assert_non_null(strstr(description, "Sjælland 2023Q2: 75% against the target 79%"));
    assert_non_null(strstr(description, "missed by 4"));
    /* One alert for the rule and scope: 2 outputs per quarter would mean an alert per quarter. */
    size_t alerts = 0;
    const char *key;
    json_t *data;
    json_object_foreach(r.by_key, key, data) alerts += json_object_get(data, "fingerprint") != NULL;
    assert_int_equal(alerts, 1);
    run_free(&r);
}

static void test_revision_turning_missed_into_met_resolves_the_alert(void **state)
{
    /* Sjælland 2023Q2 revised from 75 to 80 (revision 1): met, the alert resolves at the end of 2023Q2. */
    run_result r =
        run(NATIONAL_TARGET("") SJAELLAND FACT_X(UDR, "1085", "2023Q2", "80", "PERCENT", ",\"revision\":1"));
    assert_status(&r, UDR, "national-target", "region:1085", "2023Q2", "MET");
    assert_alert_bounds(&r, "national-target", "1085", "RESOLVED", "2022-04-01T00:00:00Z",
                        "2023-07-01T00:00:00Z");
    run_free(&r);
}

static void test_revision_removing_the_only_miss_still_resolves(void **state)
{
    /* The alert was published FIRING; after the revision nothing in the data misses, but it must not just go
     * silent: it is RESOLVED, keeping its startsAt. */
    run_result r = run(NATIONAL_TARGET("") FACT(UDR, "1085", "2023Q2", "75", "PERCENT")
                           FACT_X(UDR, "1085", "2023Q2", "80", "PERCENT", ",\"revision\":1"));
    assert_alert_bounds(&r, "national-target", "1085", "RESOLVED", "2023-07-01T00:00:00Z",
                        "2023-07-01T00:00:00Z");
    run_free(&r);
}

static void test_suspended_period_is_suspended_never_missed(void **state)
{
    /* 2020: the right was suspended in somatics. 60 % would miss 79, but is reported as SUSPENDED. */
    run_result r =
        run(NATIONAL_TARGET("") FACT_X(UDR, "1085", "2020Q2", "60", "PERCENT", ",\"suspended\":true"));
    json_t *st = status(&r, UDR, "national-target", "region:1085", "2020Q2");
    assert_string_equal(text_of(st, "status"), "SUSPENDED");
    assert_float_equal(number_of(st, "gap"), -19, TOLERANCE); /* what it would have been */
    assert_null(alert(&r, "national-target", "1085"));        /* and nothing fires */
    run_free(&r);
}

static void test_suspended_period_neither_fires_nor_resolves(void **state)
{
    /* Missed in 2021Q4, suspended (and above target) in 2022Q1: still FIRING, evaluated on 2021Q4. */
    run_result r = run(NATIONAL_TARGET("") FACT(UDR, "1085", "2021Q4", "70", "PERCENT")
                           FACT_X(UDR, "1085", "2022Q1", "90", "PERCENT", ",\"suspended\":true"));
    json_t *a = alert(&r, "national-target", "1085");
    assert_string_equal(text_of(a, "state"), "FIRING");
    assert_string_equal(text_of(a, "period"), "2021Q4");
    /* ... and a suspended miss between two mets does not fire. */
    run_result r2 = run(NATIONAL_TARGET("") FACT(UDR, "1084", "2021Q4", "82", "PERCENT")
                            FACT_X(UDR, "1084", "2022Q1", "60", "PERCENT", ",\"suspended\":true")
                                FACT(UDR, "1084", "2022Q2", "81", "PERCENT"));
    assert_null(alert(&r2, "national-target", "1084"));
    run_free(&r);
    run_free(&r2);
}

static void test_for_periods_2_fires_at_the_second_consecutive_miss(void **state)
{
    run_result one = run(NATIONAL_TARGET(",\"forPeriods\":2") FACT(UDR, "1085", "2022Q1", "73", "PERCENT"));
    assert_null(alert(&one, "national-target", "1085")); /* one miss: pending, no alert */
    run_result broken =
        run(NATIONAL_TARGET(",\"forPeriods\":2") FACT(UDR, "1085", "2022Q1", "73", "PERCENT")
                FACT(UDR, "1085", "2022Q2", "80", "PERCENT") FACT(UDR, "1085", "2022Q3", "75", "PERCENT"));
    assert_null(alert(&broken, "national-target", "1085")); /* miss, met, miss: never two in a row */
    run_result two = run(NATIONAL_TARGET(",\"forPeriods\":2") FACT(UDR, "1085", "2022Q1", "73", "PERCENT")
                             FACT(UDR, "1085", "2022Q2", "74", "PERCENT"));
    json_t *a = alert(&two, "national-target", "1085");
    assert_string_equal(text_of(a, "state"), "FIRING");
    assert_string_equal(text_of(a, "startsAt"), "2022-07-01T00:00:00Z"); /* fired with 2022Q2 */
    run_free(&one);
    run_free(&broken);
    run_free(&two);
}

static void test_hysteresis_resolves_only_when_better_by_the_margin(void **state)
{
    /* Target 79, hysteresis 2: 77 fires; 80 is met by 1 — still FIRING; 81 is met by 2 — RESOLVED. */
    run_result held = run(NATIONAL_TARGET(",\"hysteresis\":2") FACT(UDR, "1085", "2023Q1", "77", "PERCENT")
                              FACT(UDR, "1085", "2023Q2", "80", "PERCENT"));
    assert_status(&held, UDR, "national-target", "region:1085", "2023Q2", "MET");
    assert_alert_state(&held, "national-target", "1085", "FIRING");
    run_result resolved =
        run(NATIONAL_TARGET(",\"hysteresis\":2") FACT(UDR, "1085", "2023Q1", "77", "PERCENT")
                FACT(UDR, "1085", "2023Q2", "80", "PERCENT") FACT(UDR, "1085", "2023Q3", "81", "PERCENT"));
    json_t *a = alert(&resolved, "national-target", "1085");
    assert_string_equal(text_of(a, "state"), "RESOLVED");
    assert_string_equal(text_of(a, "endsAt"), "2023-10-01T00:00:00Z"); /* end of 2023Q3 */
    run_free(&held);
    run_free(&resolved);
}

static void test_resolved_alert_stays_as_it_resolved(void **state)
{
    /* Target 79: 2023Q1 75 fires, 2023Q2 80 resolves. The alert stays as it resolved, as Alertmanager keeps a
     * resolved alert: a later met period adds its status and nothing else; a revision of the resolving
     * period shows in the alert; a later miss fires a new episode. */
#define EPISODE FACT(UDR, "1085", "2023Q1", "75", "PERCENT") FACT(UDR, "1085", "2023Q2", "80", "PERCENT")
    run_result resolved = run_with(NULL, NATIONAL_TARGET("") EPISODE, true);
    run_result later =
        run_with(NULL, NATIONAL_TARGET("") EPISODE FACT(UDR, "1085", "2023Q3", "85", "PERCENT"), true);
    assert_int_equal(later.stats.changes, resolved.stats.changes + 1); /* the 2023Q3 status, no alert */
    json_t *a = alert(&later, "national-target", "1085");
    assert_string_equal(text_of(a, "state"), "RESOLVED");
    assert_string_equal(text_of(a, "period"), "2023Q2");
    assert_true(number_of(a, "value") == 80);
    assert_string_equal(text_of(a, "endsAt"), "2023-07-01T00:00:00Z");
    assert_non_null(strstr(text_of(json_object_get(a, "annotations"), "description"), "resolved in 2023Q2"));

    run_result revised = run(NATIONAL_TARGET("") EPISODE FACT(UDR, "1085", "2023Q3", "85", "PERCENT")
                                 FACT(UDR, "1085", "2023Q2", "81", "PERCENT"));
    a = alert(&revised, "national-target", "1085");
    assert_string_equal(text_of(a, "period"), "2023Q2");
    assert_true(number_of(a, "value") == 81); /* the resolving period's revision */

    run_result again = run(NATIONAL_TARGET("") EPISODE FACT(UDR, "1085", "2023Q3", "85", "PERCENT")
                               FACT(UDR, "1085", "2023Q4", "70", "PERCENT"));
    a = alert(&again, "national-target", "1085");
    assert_string_equal(text_of(a, "state"), "FIRING");
    assert_string_equal(text_of(a, "period"), "2023Q4");
    assert_string_equal(text_of(a, "startsAt"),
                        "2024-01-01T00:00:00Z"); /* a new episode, fired with 2023Q4 */
#undef EPISODE
    run_free(&resolved);
    run_free(&later);
    run_free(&revised);
    run_free(&again);
}

static void test_deleted_rule_resolves_its_alerts_and_deletes_its_statuses(void **state)
{
    run_result r = run(NATIONAL_TARGET("") SJAELLAND RULE_DELETED("national-target"));
    json_t *a = alert(&r, "national-target", "1085");
    assert_non_null(a); /* the key stays, RESOLVED */
    assert_string_equal(text_of(a, "state"), "RESOLVED");
    assert_string_equal(text_of(a, "endsAt"), "2023-07-01T00:00:00Z");
    assert_non_null(
        strstr(text_of(json_object_get(a, "annotations"), "description"), "the rule was deleted"));
    assert_false(has_status(&r, UDR, "national-target", "region:1085", "2023Q2"));
    assert_int_equal(r.stats.outputs, 1); /* only the resolved alert is left */
    run_free(&r);
}

static void test_rule_change_reevaluates_everything_under_it(void **state)
{
    /* Band 3 -> band 10: the target drops from 79 to 72, so Sjælland's 73..77 all meet it. */
    run_result r = run(NATIONAL_TARGET("") SJAELLAND RULE(
        "{\"id\":\"national-target\",\"service\":\"targets\",\"subject\":\"" UDR "\","
        "\"kind\":\"BASELINE_BAND\",\"direction\":\"HIGHER_IS_BETTER\",\"baselineValue\":82,"
        "\"band\":10}"));
    assert_status(&r, UDR, "national-target", "region:1085", "2022Q1", "MET"); /* 73 >= 72 */
    assert_status(&r, UDR, "national-target", "region:1085", "2023Q2", "MET"); /* 75 >= 72 */
    assert_alert_state(&r, "national-target", "1085", "RESOLVED");
    run_free(&r);
}

static void test_rule_narrowed_to_fewer_scopes_resolves_the_others(void **state)
{
    run_result r = run(NATIONAL_TARGET("") SJAELLAND NATIONAL_TARGET(",\"scopes\":[{\"code\":\"1084\"}]"));
    assert_false(has_status(&r, UDR, "national-target", "region:1085", "2023Q2"));
    assert_alert_state(&r, "national-target", "1085", "RESOLVED");
    run_free(&r);
}

static void test_fact_tombstone_deletes_its_status(void **state)
{
    run_result r = run(NATIONAL_TARGET("") FACT(UDR, "1085", "2023Q1", "80", "PERCENT")
                           FACT(UDR, "1085", "2023Q2", "75", "PERCENT") TOMBSTONE(UDR "/region:1085/2023Q2"));
    assert_false(has_status(&r, UDR, "national-target", "region:1085", "2023Q2"));
    assert_status(&r, UDR, "national-target", "region:1085", "2023Q1", "MET");
    assert_alert_state(&r, "national-target", "1085", "RESOLVED"); /* fired, and its evidence is gone */
    run_free(&r);
}

/* --- rules refused, idempotence, order -------------------------------------------------------------------
 */

static void test_rule_with_parameters_invalid_for_its_kind_is_refused(void **state)
{
    run_result r = run(
        /* BASELINE_BAND without a baseline */
        RULE("{\"id\":\"a\",\"service\":\"targets\",\"subject\":\"" UDR "\",\"kind\":\"BASELINE_BAND\","
             "\"direction\":\"HIGHER_IS_BETTER\",\"band\":3}")
        /* THRESHOLD with a margin */
        RULE("{\"id\":\"b\",\"service\":\"targets\",\"subject\":\"" UDR "\",\"kind\":\"THRESHOLD\","
             "\"direction\":\"HIGHER_IS_BETTER\",\"threshold\":80,\"margin\":2}")
        /* a supplied baseline and a range at once */
        RULE("{\"id\":\"c\",\"service\":\"targets\",\"subject\":\"" UDR "\",\"kind\":\"BASELINE_BAND\","
             "\"direction\":\"HIGHER_IS_BETTER\",\"baselineValue\":82,\"baselineFrom\":\"2016Q4\","
             "\"baselineTo\":\"2019Q4\"}")
        /* a kind of another service */
        RULE("{\"id\":\"d\",\"service\":\"targets\",\"subject\":\"" UDR "\",\"kind\":\"SPREAD\","
             "\"threshold\":10}")
        /* the same scope twice */
        RULE("{\"id\":\"e\",\"service\":\"targets\",\"subject\":\"" UDR "\",\"kind\":\"THRESHOLD\","
             "\"direction\":\"HIGHER_IS_BETTER\",\"threshold\":80,\"scopes\":[{\"code\":\"1084\"},"
             "{\"code\":\"Hovedstaden\"}]}") FACT(UDR, "1084", "2023Q2", "83", "PERCENT"));
    assert_int_equal(r.stats.rejected, 5);
    assert_int_equal(r.stats.outputs, 0);
    run_free(&r);
}

static void test_same_facts_twice_emit_nothing_new(void **state)
{
    const char *once = NATIONAL_TARGET("") SJAELLAND TABEL8_2023Q2;
    char *twice = malloc(2 * strlen(once) + 1);
    strcpy(twice, once);
    strcat(twice, once);
    run_result a = run_with(NULL, once, true);
    run_result b = run_with(NULL, twice, true);
    assert_int_equal(a.stats.changes, b.stats.changes); /* the replay changed nothing */
    run_free(&a);
    run_free(&b);
    free(twice);
}

static void test_final_table_does_not_depend_on_order(void **state)
{
    /* Rules first or last, facts forward or backward: the same final table. Waiting times: Nordjylland
     * 2022Q4 44 and 2023Q1 46 miss 41, 2023Q2 41 meets it — fired, then resolved, in either order. */
    const char *forward =
        WAITING_TARGET FACT(VENT, "1081", "2020Q1", "39", "DAYS") FACT(VENT, "1081", "2022Q4", "44", "DAYS")
            FACT(VENT, "1081", "2023Q1", "46", "DAYS") FACT(VENT, "1081", "2023Q2", "41", "DAYS");
    const char *backward = FACT(VENT, "1081", "2023Q2", "41", "DAYS")
        FACT(VENT, "1081", "2023Q1", "46", "DAYS") FACT(VENT, "1081", "2022Q4", "44", "DAYS")
            FACT(VENT, "1081", "2020Q1", "39", "DAYS") WAITING_TARGET;
    run_result a = run(forward);
    run_result b = run(backward);
    assert_string_equal(a.text, b.text);
    json_t *alert_nord = alert(&a, "waiting", "1081");
    assert_string_equal(text_of(alert_nord, "state"), "RESOLVED");
    assert_string_equal(text_of(alert_nord, "startsAt"), "2023-01-01T00:00:00Z"); /* fired with 2022Q4 */
    assert_string_equal(text_of(alert_nord, "endsAt"), "2023-07-01T00:00:00Z");   /* resolved with 2023Q2 */
    run_free(&a);
    run_free(&b);
}

static void test_rules_file_as_json_array(void **state)
{
    /* hsctl calc --rules takes the array of deploy/rules/akutplan.json. */
    const char *rules = "[{\"id\":\"national-target\",\"service\":\"targets\",\"subject\":\"" UDR "\","
                        "\"kind\":\"BASELINE_BAND\",\"direction\":\"HIGHER_IS_BETTER\",\"baselineValue\":82,"
                        "\"band\":3},{\"id\":\"other\",\"service\":\"variation\",\"subject\":\"" UDR "\","
                        "\"kind\":\"SPREAD\",\"threshold\":10}]";
    run_result r = run_with(rules, TABEL8_2023Q2, false);
    assert_status(&r, UDR, "national-target", "region:1082", "2023Q2", "MISSED"); /* 61 < 79 */
    assert_int_equal(r.stats.rejected, 0); /* another service's rule is skipped, not refused */
    run_free(&r);
}

/* --- incremental evaluation ------------------------------------------------------------------------------
 * A fact re-evaluates only the periods that can depend on it, and the alert replays from the first period
 * that changed. The same facts, applied one by one after the rules, must leave after every step exactly what
 * evaluating the rules from scratch over the facts so far (rules applied last) gives — in several orders,
 * with revisions of baseline, reference and ordinary periods, tombstones, re-additions and a suspended
 * period. The one difference allowed: an alert that fired on the way and that a later fact took every miss
 * from stays, RESOLVED, where the evaluation from scratch never raised it.
 */

// clang-format off
#define INCREMENTAL_RULES                                                                                    \
    RULE("{\"id\":\"inc-band\",\"service\":\"targets\",\"subject\":\"" UDR "\",\"kind\":\"BASELINE_BAND\","  \
         "\"direction\":\"HIGHER_IS_BETTER\",\"baselineFrom\":\"2020Q1\",\"baselineTo\":\"2020Q2\","         \
         "\"band\":3,\"hysteresis\":1,\"excludeFlaggedFromBaseline\":true}")                                 \
    RULE("{\"id\":\"inc-growth\",\"service\":\"targets\",\"subject\":\"" UDR "\",\"kind\":\"GROWTH\","       \
         "\"direction\":\"HIGHER_IS_BETTER\",\"growthPct\":3,\"forPeriods\":2}")                             \
    RULE("{\"id\":\"inc-margin\",\"service\":\"targets\",\"subject\":\"" UDR "\",\"kind\":"                  \
         "\"BASELINE_MARGIN\",\"direction\":\"HIGHER_IS_BETTER\",\"baselinePeriods\":[\"2021Q1\","           \
         "\"2020Q3\"],\"margin\":2}")                                                                        \
    RULE("{\"id\":\"inc-threshold\",\"service\":\"targets\",\"subject\":\"" UDR "\",\"kind\":\"THRESHOLD\"," \
         "\"direction\":\"HIGHER_IS_BETTER\",\"threshold\":78,\"forPeriods\":2,\"hysteresis\":2}")

static const char *const incremental_facts[] = {
    FACT(UDR, "1085", "2020Q1", "80", "PERCENT"), FACT(UDR, "DK", "2020Q1", "78", "PERCENT"),
    FACT(UDR, "1085", "2020Q2", "82", "PERCENT"), FACT(UDR, "DK", "2020Q2", "79", "PERCENT"),
    FACT(UDR, "1085", "2020Q3", "79", "PERCENT"), FACT(UDR, "DK", "2020Q3", "80", "PERCENT"),
    FACT(UDR, "1085", "2020Q4", "76", "PERCENT"), FACT(UDR, "DK", "2020Q4", "77", "PERCENT"),
    FACT(UDR, "1085", "2021Q1", "74", "PERCENT"), FACT(UDR, "DK", "2021Q1", "78", "PERCENT"),
    FACT(UDR, "1085", "2021Q2", "81", "PERCENT"), FACT(UDR, "DK", "2021Q2", "76", "PERCENT"),
    FACT(UDR, "1085", "2021Q3", "77", "PERCENT"), FACT(UDR, "DK", "2021Q3", "74", "PERCENT"),
    FACT(UDR, "1085", "2021Q4", "73", "PERCENT"), FACT(UDR, "DK", "2021Q4", "79", "PERCENT"),
    FACT(UDR, "1085", "2022Q1", "72", "PERCENT"), FACT(UDR, "DK", "2022Q1", "81", "PERCENT"),
    FACT(UDR, "1085", "2022Q2", "80", "PERCENT"), FACT(UDR, "DK", "2022Q2", "82", "PERCENT"),
    FACT(UDR, "1085", "2022Q3", "83", "PERCENT"), FACT(UDR, "DK", "2022Q3", "76", "PERCENT"),
    FACT(UDR, "1085", "2022Q4", "75", "PERCENT"), FACT(UDR, "DK", "2022Q4", "75", "PERCENT"),
    /* revisions: a baseline period (with a volume, then flagged out), an ordinary miss turned met */
    FACT_X(UDR, "1085", "2020Q1", "84", "PERCENT", ",\"volume\":\"100\""),
    FACT_X(UDR, "1085", "2020Q2", "80", "PERCENT", ",\"qualityFlags\":[\"epj-transition\"]"),
    FACT(UDR, "1085", "2021Q4", "79", "PERCENT"),
    /* tombstones of an ordinary, the latest and a baseline period; re-additions; a suspended period */
    TOMBSTONE(UDR "/region:1085/2021Q2"),
    FACT_X(UDR, "DK", "2021Q3", "70", "PERCENT", ",\"suspended\":true"),
    TOMBSTONE(UDR "/national:DK/2022Q4"),
    FACT(UDR, "1085", "2021Q2", "71", "PERCENT"),
    FACT(UDR, "DK", "2023Q1", "74", "PERCENT"),
    TOMBSTONE(UDR "/region:1085/2020Q1"),
    FACT(UDR, "1085", "2020Q1", "81", "PERCENT"),
    /* a reference period of GROWTH revised after the period that compares with it */
    FACT(UDR, "DK", "2021Q1", "72", "PERCENT"),
    /* the latest period revised, still missed: the alert's figures change, its history does not */
    FACT(UDR, "1085", "2022Q4", "74", "PERCENT"),
};
// clang-format on
#define N_INCREMENTAL_FACTS (sizeof incremental_facts / sizeof incremental_facts[0])

/* `before`, then incremental_facts[order[0..n-1]], then `after`, as one malloc'd input. */
static char *incremental_input(const char *before, const size_t *order, size_t n, const char *after)
{
    size_t len = strlen(before) + strlen(after) + 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(incremental_facts[order[i]]);
    char *text = malloc(len);
    assert_non_null(text);
    strcpy(text, before);
    for (size_t i = 0; i < n; i++)
        strcat(text, incremental_facts[order[i]]);
    strcat(text, after);
    return text;
}

/* Every output of `scratch` is in `streamed` with the same data; `streamed` has no other output but
 * RESOLVED alerts. */
static void assert_same_as_from_scratch(const run_result *streamed, const run_result *scratch, size_t step)
{
    const char *key;
    json_t *data;
    json_object_foreach(scratch->by_key, key, data)
    {
        json_t *got = json_object_get(streamed->by_key, key);
        if (!got || !json_equal(got, data)) {
            char *want = json_dumps(data, JSON_COMPACT), *have = got ? json_dumps(got, JSON_COMPACT) : NULL;
            fail_msg("after %zu facts, %s:\n  incremental: %s\n  from scratch: %s", step, key,
                     have ? have : "(absent)", want);
        }
    }
    json_object_foreach(streamed->by_key, key, data)
    {
        if (json_object_get(scratch->by_key, key))
            continue;
        if (!json_object_get(data, "fingerprint") || strcmp(text_of(data, "state"), "RESOLVED") != 0)
            fail_msg("after %zu facts, %s is absent from scratch:\n  %s", step, key, json_dumps(data, 0));
    }
}

/* order[i] = (i x step + offset) mod the count: every fact once when `step` is prime to the count. */
static void scattered_order(size_t *order, size_t step, size_t offset)
{
    bool seen[N_INCREMENTAL_FACTS] = {false};
    for (size_t i = 0; i < N_INCREMENTAL_FACTS; i++) {
        order[i] = (i * step + offset) % N_INCREMENTAL_FACTS;
        assert_false(seen[order[i]]);
        seen[order[i]] = true;
    }
}

/* Applies the facts in `order`, comparing after every one. */
static void check_incremental_order(const size_t *order)
{
    for (size_t n = 1; n <= N_INCREMENTAL_FACTS; n++) {
        char *streamed_input = incremental_input(INCREMENTAL_RULES, order, n, "");
        char *scratch_input = incremental_input("", order, n, INCREMENTAL_RULES);
        run_result streamed = run(streamed_input);
        run_result scratch = run(scratch_input);
        assert_int_equal(streamed.stats.rejected, 0);
        assert_same_as_from_scratch(&streamed, &scratch, n);
        run_free(&streamed);
        run_free(&scratch);
        free(streamed_input);
        free(scratch_input);
    }
}

static void test_incremental_update_equals_evaluation_from_scratch_at_every_step(void **state)
{
    size_t order[N_INCREMENTAL_FACTS];
    for (size_t i = 0; i < N_INCREMENTAL_FACTS; i++) /* as listed: time order, then the revisions */
        order[i] = i;
    check_incremental_order(order);
    for (size_t i = 0; i < N_INCREMENTAL_FACTS; i++) /* backwards: every period arrives before earlier ones */
        order[i] = N_INCREMENTAL_FACTS - 1 - i;
    check_incremental_order(order);
    scattered_order(order, 11, 5); /* scattered (36 facts) */
    check_incremental_order(order);
}

static void test_incremental_revisions_of_baseline_periods_reach_every_period(void **state)
{
    /* Sjælland's BASELINE_BAND baseline ends as 2020Q1 alone (81, re-added after its tombstone), since the
     * revised 2020Q2 is flagged and left out: the target of every later period moves to 78, so 2022Q4's 74
     * misses it. The nation's 2022Q4 was deleted: no status. */
    size_t forward[N_INCREMENTAL_FACTS];
    for (size_t i = 0; i < N_INCREMENTAL_FACTS; i++)
        forward[i] = i;
    char *streamed_input = incremental_input(INCREMENTAL_RULES, forward, N_INCREMENTAL_FACTS, "");
    run_result r = run(streamed_input);
    json_t *st = status(&r, UDR, "inc-band", "region:1085", "2022Q4");
    assert_float_equal(number_of(st, "baseline"), 81, TOLERANCE);
    assert_float_equal(number_of(st, "target"), 78, TOLERANCE);
    assert_string_equal(text_of(st, "status"), "MISSED");
    assert_string_equal(json_string_value(json_array_get(json_object_get(st, "excludedBaselinePeriods"), 0)),
                        "2020Q2");
    assert_false(has_status(&r, UDR, "inc-band", "national:DK", "2022Q4"));
    run_free(&r);
    free(streamed_input);
}

static void assert_no_infinity_or_nan(const char *out)
{
    if (strstr(out, "Infinity") || strstr(out, "NaN"))
        fail_msg("a figure that is not finite in the output:\n%s", out);
}

#define COUNT_RANGE_RULE                                                                                     \
    RULE("{\"id\":\"range\",\"service\":\"targets\",\"subject\":\"kontakter.antal\",\"kind\":"               \
         "\"BASELINE_BAND\",\"direction\":\"HIGHER_IS_BETTER\",\"baselineFrom\":\"2019Q1\",\"baselineTo\":"  \
         "\"2019Q2\",\"band\":3,\"scopes\":[{\"code\":\"1084\"}]}")

/* Issue 15, item 5: a baseline of two quarters at 1e308 (a COUNT) summed to Infinity, and the target, the
 * gap and the status followed it. Such values are refused; the baseline is then unknown (NO_BASELINE). */
static void test_1e308_values_are_refused_and_no_baseline_is_infinite(void **state)
{
    run_result r = run(COUNT_RANGE_RULE FACT("kontakter.antal", "1084", "2019Q1", "1e308", "COUNT")
                           FACT("kontakter.antal", "1084", "2019Q2", "1e308", "COUNT")
                               FACT("kontakter.antal", "1084", "2023Q2", "500", "COUNT"));
    assert_int_equal(r.stats.rejected, 2);
    assert_no_infinity_or_nan(r.text);
    assert_status(&r, "kontakter.antal", "range", "region:1084", "2023Q2", "NO_BASELINE");
    run_free(&r);
}

/* At the bound: values of 1e12 with volumes of 1e12 weigh to a finite baseline of 1e12. */
static void test_values_at_the_bound_give_a_finite_baseline(void **state)
{
    run_result r =
        run(COUNT_RANGE_RULE FACT_X("kontakter.antal", "1084", "2019Q1", "1e12", "COUNT",
                                    ",\"volume\":\"1000000000000\"")
                FACT_X("kontakter.antal", "1084", "2019Q2", "1e12", "COUNT", ",\"volume\":\"1000000000000\"")
                    FACT("kontakter.antal", "1084", "2023Q2", "1e12", "COUNT"));
    assert_int_equal(r.stats.rejected, 0);
    assert_no_infinity_or_nan(r.text);
    json_t *st = status(&r, "kontakter.antal", "range", "region:1084", "2023Q2");
    assert_string_equal(text_of(st, "baselineMethod"), "BASELINE_WEIGHTED_MEAN");
    assert_float_equal(number_of(st, "baseline"), 1e12, TOLERANCE);
    assert_string_equal(text_of(st, "status"), "MET");
    run_free(&r);
}

/* Growth from a base near 0 (1e-300) overflows: the change is no figure and is left out, never Infinity;
 * the target (1e-300 x 1.03) is finite and decides. */
static void test_growth_from_a_base_near_zero_leaves_the_change_out(void **state)
{
    run_result r = run(
        RULE("{\"id\":\"growth\",\"service\":\"targets\",\"subject\":\"kontakter.rate\",\"kind\":\"GROWTH\","
             "\"direction\":\"HIGHER_IS_BETTER\",\"growthPct\":3,\"scopes\":[{\"code\":\"DK\"}]}")
            FACT("kontakter.rate", "DK", "2022", "1e-300", "RATE")
                FACT("kontakter.rate", "DK", "2023", "1e9", "RATE"));
    assert_int_equal(r.stats.rejected, 0);
    assert_no_infinity_or_nan(r.text);
    json_t *st = status(&r, "kontakter.rate", "growth", "national:DK", "2023");
    assert_null(json_object_get(st, "changePct"));
    assert_string_equal(text_of(st, "status"), "MET");
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tabel8_2023q2_against_the_national_target),
        cmocka_unit_test(test_tabel8_2023q2_against_each_scopes_own_baseline),
        cmocka_unit_test(test_epj_flags_are_carried_to_status_and_alert),
        cmocka_unit_test(test_waiting_time_nordjylland_met_exactly_at_the_boundary),
        cmocka_unit_test(test_anaesthesia_141_meets_134_4),
        cmocka_unit_test(test_anaesthesia_130_misses_134_4),
        cmocka_unit_test(test_surgical_activity_growth_q1_met_q2_missed),
        cmocka_unit_test(test_threshold_nursing_home_doctors),
        cmocka_unit_test(test_starts_at_is_the_end_of_the_period_for_every_kind),
        cmocka_unit_test(test_weighted_baseline_uses_volumes),
        cmocka_unit_test(test_unweighted_baseline_when_a_volume_is_missing_says_so),
        cmocka_unit_test(test_missing_baseline_period_is_no_baseline_not_a_guess),
        cmocka_unit_test(test_flagged_baseline_period_excluded_when_the_rule_says_so),
        cmocka_unit_test(test_baseline_fact_arriving_late_reevaluates_the_scope),
        cmocka_unit_test(test_missed_quarters_fire_one_alert_that_stays_firing),
        cmocka_unit_test(test_revision_turning_missed_into_met_resolves_the_alert),
        cmocka_unit_test(test_revision_removing_the_only_miss_still_resolves),
        cmocka_unit_test(test_suspended_period_is_suspended_never_missed),
        cmocka_unit_test(test_suspended_period_neither_fires_nor_resolves),
        cmocka_unit_test(test_for_periods_2_fires_at_the_second_consecutive_miss),
        cmocka_unit_test(test_hysteresis_resolves_only_when_better_by_the_margin),
        cmocka_unit_test(test_deleted_rule_resolves_its_alerts_and_deletes_its_statuses),
        cmocka_unit_test(test_rule_change_reevaluates_everything_under_it),
        cmocka_unit_test(test_rule_narrowed_to_fewer_scopes_resolves_the_others),
        cmocka_unit_test(test_fact_tombstone_deletes_its_status),
        cmocka_unit_test(test_rule_with_parameters_invalid_for_its_kind_is_refused),
        cmocka_unit_test(test_resolved_alert_stays_as_it_resolved),
        cmocka_unit_test(test_same_facts_twice_emit_nothing_new),
        cmocka_unit_test(test_final_table_does_not_depend_on_order),
        cmocka_unit_test(test_rules_file_as_json_array),
        cmocka_unit_test(test_incremental_update_equals_evaluation_from_scratch_at_every_step),
        cmocka_unit_test(test_incremental_revisions_of_baseline_periods_reach_every_period),
        cmocka_unit_test(test_1e308_values_are_refused_and_no_baseline_is_infinite),
        cmocka_unit_test(test_values_at_the_bound_give_a_finite_baseline),
        cmocka_unit_test(test_growth_from_a_base_near_zero_leaves_the_change_out),
    };
    return cmocka_run_group_tests_name("targets", tests, NULL, NULL);
}
