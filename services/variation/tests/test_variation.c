/* The variation calculation through the offline driver, against docs/domain.md §10: Tabel 10 (cancer
 * standard pathway times; 2023Q2 best Nordjylland 87, worst Sjælland 66, variation 21; 2020Q1 Syddanmark 86,
 * Sjælland 74, 12), Tabel 8 (udredningsret) and Tabel 9 (days to complete assessment, lower is better), every
 * quarter against best / worst / spread worked out by hand below; ranks, ties, a missing region, the national
 * value (published, weighted by volume, unweighted), a revision changing exactly one output; then the SPREAD
 * and DEVIATION_FROM_NATIONAL alerts: fire, stay, resolve, for_periods, hysteresis, suspended periods,
 * revisions and deleted rules; and bad rules and facts refused.
 *
 * The printed figures are whole numbers and every expected value here is a difference or a mean of them, so
 * comparisons are exact up to binary rounding (TOLERANCE), not up to the ±1 of recomputing a rounded figure.
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
#include "variation.h"

#define TOLERANCE 1e-9

#define KRAEFT "kraeft.standardforloeb.compliance"
#define UDR    "udredningsret.somatik.compliance"
#define FORLOB "udredning.somatik.forloebstid"
#define VENT   "ventetid.somatik.oplevet"

/* One table of docs/domain.md §10: per quarter the regions in code order (1081 Nordjylland, 1082 Midtjylland,
 * 1083 Syddanmark, 1084 Hovedstaden, 1085 Sjælland) and the nation. */
typedef struct quarter_row {
    const char *period;
    int region[5];
    int national;
} quarter_row;

static const char *const codes[5] = {"1081", "1082", "1083", "1084", "1085"};

/* Tabel 10 — cancer standard pathway times met, %. */
static const quarter_row tabel10[] = {
    {"2020Q1", {78, 78, 86, 82, 74}, 80}, {"2022Q1", {87, 80, 82, 80, 76}, 81},
    {"2022Q2", {88, 77, 76, 72, 64}, 74}, {"2022Q3", {88, 81, 79, 74, 68}, 77},
    {"2022Q4", {86, 77, 81, 79, 70}, 79}, {"2023Q1", {87, 77, 82, 79, 72}, 79},
    {"2023Q2", {87, 80, 79, 74, 66}, 77},
};

/* Tabel 8 — udredningsret met in somatics, %. */
static const quarter_row tabel8[] = {
    {"2022Q1", {92, 67, 65, 82, 73}, 74}, {"2022Q2", {80, 66, 63, 81, 74}, 72},
    {"2022Q3", {85, 64, 62, 81, 75}, 71}, {"2022Q4", {85, 64, 64, 84, 77}, 73},
    {"2023Q1", {90, 63, 64, 85, 77}, 74}, {"2023Q2", {90, 61, 67, 83, 75}, 73},
};

/* Tabel 9 — average days to complete assessment, somatics (lower is better). */
static const quarter_row tabel9[] = {
    {"2022Q1", {54, 58, 67, 42, 68}, 58}, {"2022Q2", {48, 58, 67, 43, 65}, 57},
    {"2022Q3", {56, 62, 69, 46, 69}, 60}, {"2022Q4", {58, 64, 69, 44, 69}, 61},
    {"2023Q1", {58, 64, 70, 43, 65}, 60}, {"2023Q2", {59, 65, 66, 44, 63}, 59},
};

/* What the report states for one quarter, worked out by hand from the table: best and worst region(s)
 * (comma-separated codes, every tied region), their values and the variation. */
typedef struct expected_row {
    const char *period;
    const char *best;
    int best_value;
    const char *worst;
    int worst_value;
    int spread;
} expected_row;

static const expected_row tabel10_expected[] = {
    {"2020Q1", "1083", 86, "1085", 74, 12}, /* domain.md §10.5: Syddanmark 86, Sjælland 74, variation 12 */
    {"2022Q1", "1081", 87, "1085", 76, 11},
    {"2022Q2", "1081", 88, "1085", 64, 24},
    {"2022Q3", "1081", 88, "1085", 68, 20},
    {"2022Q4", "1081", 86, "1085", 70, 16},
    {"2023Q1", "1081", 87, "1085", 72, 15},
    {"2023Q2", "1081", 87, "1085", 66, 21}, /* domain.md §10.5: Nordjylland 87, Sjælland 66, variation 21 */
};

static const expected_row tabel8_expected[] = {
    {"2022Q1", "1081", 92, "1083", 65, 27}, {"2022Q2", "1084", 81, "1083", 63, 18},
    {"2022Q3", "1081", 85, "1083", 62, 23}, {"2022Q4", "1081", 85, "1082,1083", 64, 21}, /* a tie */
    {"2023Q1", "1081", 90, "1082", 63, 27}, {"2023Q2", "1081", 90, "1082", 61, 29},
};

/* Lower is better: the best region has the fewest days. */
static const expected_row tabel9_expected[] = {
    {"2022Q1", "1084", 42, "1085", 68, 26},      {"2022Q2", "1084", 43, "1083", 67, 24},
    {"2022Q3", "1084", 46, "1083,1085", 69, 23}, {"2022Q4", "1084", 44, "1083,1085", 69, 25},
    {"2023Q1", "1084", 43, "1083", 70, 27},      {"2023Q2", "1084", 44, "1083", 66, 22},
};

/* --- building input ------------------------------------------------------------------------------------- */

/* A growing text of CloudEvents lines. */
typedef struct text {
    char *data;
    size_t len;
    FILE *f;
} text;

static void text_open(text *t)
{
    t->data = NULL;
    t->len = 0;
    t->f = open_memstream(&t->data, &t->len);
    assert_non_null(t->f);
}

static char *text_close(text *t)
{
    fclose(t->f);
    return t->data;
}

/* One IndicatorObservation event; `extra` is more JSON members of data, starting with a comma, or "". */
static void fact(text *t, const char *indicator, const char *scope, const char *period, double value,
                 const char *unit, const char *extra)
{
    fprintf(
        t->f,
        "{\"specversion\":\"1.0\",\"id\":\"t\",\"source\":\"test\",\"type\":\"healthsignals.v1."
        "IndicatorObservation\",\"data\":{\"indicator\":\"%s\",\"scope\":{\"code\":\"%s\"},\"period\":\"%s\","
        "\"value\":%.17g,\"unit\":\"%s\"%s}}\n",
        indicator, scope, period, value, unit, extra);
}

static void tombstone(text *t, const char *key)
{
    fprintf(t->f,
            "{\"specversion\":\"1.0\",\"id\":\"t\",\"source\":\"test\",\"type\":\"healthsignals.v1."
            "IndicatorObservation\",\"subject\":\"%s\",\"data\":null}\n",
            key);
}

static void rule(text *t, const char *json)
{
    fprintf(t->f,
            "{\"specversion\":\"1.0\",\"id\":\"r\",\"source\":\"test\",\"type\":\"healthsignals.v1.Rule\","
            "\"data\":%s}\n",
            json);
}

static void rule_deleted(text *t, const char *id)
{
    fprintf(t->f,
            "{\"specversion\":\"1.0\",\"id\":\"r\",\"source\":\"test\",\"type\":\"healthsignals.v1.Rule\","
            "\"subject\":\"%s\",\"data\":null}\n",
            id);
}

/* Every fact of a table, the nation included unless `with_national` is false. */
static void table_facts(text *t, const char *indicator, const char *unit, const quarter_row *rows, size_t n,
                        bool with_national)
{
    for (size_t q = 0; q < n; q++) {
        for (int i = 0; i < 5; i++)
            fact(t, indicator, codes[i], rows[q].period, rows[q].region[i], unit, "");
        if (with_national)
            fact(t, indicator, "DK", rows[q].period, rows[q].national, unit, "");
    }
}

/* --- running ----------------------------------------------------------------------------------------------
 */

typedef calcrun run_result;

static run_result run_with(const char *rules, const char *input, bool changes)
{
    return calcrun_run(&variation_calc, rules, input, changes);
}

static void run_free(run_result *r)
{
    calcrun_free(r);
}

static json_t *variation(const run_result *r, const char *indicator, const char *period)
{
    char key[256];
    snprintf(key, sizeof key, "%s/%s", indicator, period);
    json_t *data = json_object_get(r->by_key, key);
    if (!data || json_is_null(data))
        fail_msg("no variation %s in:\n%s", key, r->text);
    return data;
}

/* The alert of `rule` for the scope with `code`, or NULL. */
static json_t *alert(const run_result *r, const char *rule_id, const char *code)
{
    const char *key;
    json_t *data;
    json_object_foreach(r->by_key, key, data)
    {
        if (json_object_get(data, "fingerprint") &&
            strcmp(json_string_value(json_object_get(data, "rule")), rule_id) == 0 &&
            strcmp(json_string_value(json_object_get(json_object_get(data, "scope"), "code")), code) == 0)
            return data;
    }
    return NULL;
}

static double number(json_t *obj, const char *field)
{
    json_t *v = json_object_get(obj, field);
    return v ? json_number_value(v) : 0.0; /* proto3 JSON leaves zeros out */
}

static const char *string(json_t *obj, const char *field)
{
    json_t *v = json_object_get(obj, field);
    return v ? json_string_value(v) : "";
}

/* A list of strings as "a,b". */
static void joined(json_t *list, char *out, size_t size)
{
    size_t used = 0, i;
    json_t *item;
    out[0] = '\0';
    json_array_foreach(list, i, item) used +=
        (size_t)snprintf(out + used, size - used, "%s%s", i ? "," : "", json_string_value(item));
}

/* The region entry of `code` in a variation. */
static json_t *region(json_t *v, const char *code)
{
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(v, "regions"), i,
                       item) if (strcmp(string(item, "code"), code) == 0) return item;
    fail_msg("region %s missing", code);
    return NULL;
}

static void check_table(const char *indicator, const char *unit, const quarter_row *rows,
                        const expected_row *expected, size_t n)
{
    text t;
    text_open(&t);
    table_facts(&t, indicator, unit, rows, n, true);
    char *input = text_close(&t);
    run_result r = run_with(NULL, input, false);
    assert_int_equal(r.stats.rejected, 0);
    for (size_t q = 0; q < n; q++) {
        json_t *v = variation(&r, indicator, expected[q].period);
        char best[64], worst[64];
        joined(json_object_get(v, "bestRegions"), best, sizeof best);
        joined(json_object_get(v, "worstRegions"), worst, sizeof worst);
        if (strcmp(best, expected[q].best) != 0 || strcmp(worst, expected[q].worst) != 0)
            fail_msg("%s %s: best %s worst %s, expected %s and %s", indicator, expected[q].period, best,
                     worst, expected[q].best, expected[q].worst);
        assert_float_equal(number(v, "bestValue"), expected[q].best_value, TOLERANCE);
        assert_float_equal(number(v, "worstValue"), expected[q].worst_value, TOLERANCE);
        assert_float_equal(number(v, "spread"), expected[q].spread, TOLERANCE);
        /* The published national figure, never the mean of the regions. */
        assert_float_equal(number(v, "nationalValue"), rows[q].national, TOLERANCE);
        assert_string_equal(string(v, "nationalSource"), "NATIONAL_PUBLISHED");
        assert_int_equal(json_array_size(json_object_get(v, "regions")), 5);
        assert_null(json_object_get(v, "missingRegions"));
    }
    assert_int_equal(json_object_size(r.by_key), n);
    run_free(&r);
    free(input);
}

/* --- the tables -------------------------------------------------------------------------------------------
 */

static void test_tabel10_every_quarter(void **state)
{
    (void)state;
    check_table(KRAEFT, "PERCENT", tabel10, tabel10_expected, sizeof tabel10 / sizeof tabel10[0]);
}

static void test_tabel8_every_quarter(void **state)
{
    (void)state;
    check_table(UDR, "PERCENT", tabel8, tabel8_expected, sizeof tabel8 / sizeof tabel8[0]);
}

static void test_tabel9_every_quarter_lower_is_better(void **state)
{
    (void)state;
    check_table(FORLOB, "DAYS", tabel9, tabel9_expected, sizeof tabel9 / sizeof tabel9[0]);
}

/* 2023Q2 of Tabel 10 in full: ranks 1..5 and the deviations from the published national 77. */
static void test_ranks_and_deviation_from_national(void **state)
{
    (void)state;
    text t;
    text_open(&t);
    table_facts(&t, KRAEFT, "PERCENT", &tabel10[6], 1, true);
    char *input = text_close(&t);
    run_result r = run_with(NULL, input, false);
    json_t *v = variation(&r, KRAEFT, "2023Q2");
    assert_string_equal(string(v, "direction"), "HIGHER_IS_BETTER");
    assert_string_equal(string(v, "directionSource"), "DIRECTION_FROM_UNIT");
    /* Best first: Nordjylland 87 (+10), Midtjylland 80 (+3), Syddanmark 79 (+2), Hovedstaden 74 (-3),
     * Sjælland 66 (-11). */
    const char *order[] = {"1081", "1082", "1083", "1084", "1085"};
    const double deviation[] = {10, 3, 2, -3, -11};
    json_t *regions = json_object_get(v, "regions");
    for (size_t i = 0; i < 5; i++) {
        json_t *entry = json_array_get(regions, i);
        assert_string_equal(string(entry, "code"), order[i]);
        assert_int_equal((int)number(entry, "rank"), (int)i + 1);
        assert_float_equal(number(entry, "deviationFromNational"), deviation[i], TOLERANCE);
    }
    assert_string_equal(string(region(v, "1085"), "name"), "Sjælland");
    run_free(&r);
    free(input);
}

/* Tabel 1, 2023Q2, waiting days: the lowest ranks first and a shorter wait than the nation is positive. */
static void test_waiting_times_rank_lowest_first(void **state)
{
    (void)state;
    text t;
    text_open(&t);
    const quarter_row q = {"2023Q2", {41, 49, 48, 37, 38}, 43};
    table_facts(&t, VENT, "DAYS", &q, 1, true);
    char *input = text_close(&t);
    run_result r = run_with(NULL, input, false);
    json_t *v = variation(&r, VENT, "2023Q2");
    assert_string_equal(string(v, "direction"), "LOWER_IS_BETTER");
    const char *order[] = {"1084", "1085", "1081", "1083", "1082"}; /* 37, 38, 41, 48, 49 */
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(string(json_array_get(json_object_get(v, "regions"), i), "code"), order[i]);
    assert_float_equal(number(v, "spread"), 12, TOLERANCE);
    assert_float_equal(number(region(v, "1084"), "deviationFromNational"), 6, TOLERANCE);  /* 43 - 37 */
    assert_float_equal(number(region(v, "1082"), "deviationFromNational"), -6, TOLERANCE); /* 43 - 49 */
    run_free(&r);
    free(input);
}

/* Tabel 8, 2022Q4: Midtjylland and Syddanmark both 64 share rank 4 and are both worst; a tie for best too. */
static void test_ties_share_rank(void **state)
{
    (void)state;
    text t;
    text_open(&t);
    table_facts(&t, UDR, "PERCENT", &tabel8[3], 1, true);
    const quarter_row both_best = {"2023Q3", {85, 85, 70, 60, 70}, 75};
    table_facts(&t, UDR, "PERCENT", &both_best, 1, true);
    char *input = text_close(&t);
    run_result r = run_with(NULL, input, false);
    json_t *v = variation(&r, UDR, "2022Q4");
    /* 85 (1081) 1, 84 (1084) 2, 77 (1085) 3, 64 (1082) 4, 64 (1083) 4. */
    assert_int_equal((int)number(region(v, "1081"), "rank"), 1);
    assert_int_equal((int)number(region(v, "1084"), "rank"), 2);
    assert_int_equal((int)number(region(v, "1085"), "rank"), 3);
    assert_int_equal((int)number(region(v, "1082"), "rank"), 4);
    assert_int_equal((int)number(region(v, "1083"), "rank"), 4);
    v = variation(&r, UDR, "2023Q3");
    char best[64], worst[64];
    joined(json_object_get(v, "bestRegions"), best, sizeof best);
    joined(json_object_get(v, "worstRegions"), worst, sizeof worst);
    assert_string_equal(best, "1081,1082");
    assert_string_equal(worst, "1084");
    /* 85, 85 share 1; 70, 70 share 3; 60 is 5th: ranks skip after a tie. */
    assert_int_equal((int)number(region(v, "1082"), "rank"), 1);
    assert_int_equal((int)number(region(v, "1083"), "rank"), 3);
    assert_int_equal((int)number(region(v, "1085"), "rank"), 3);
    assert_int_equal((int)number(region(v, "1084"), "rank"), 5);
    assert_float_equal(number(v, "spread"), 25, TOLERANCE);
    run_free(&r);
    free(input);
}

/* Syddanmark without a figure: a result on four regions, which says so. */
static void test_missing_region(void **state)
{
    (void)state;
    text t;
    text_open(&t);
    for (int i = 0; i < 5; i++)
        if (strcmp(codes[i], "1083") != 0)
            fact(&t, KRAEFT, codes[i], "2020Q1", tabel10[0].region[i], "PERCENT", "");
    char *input = text_close(&t);
    run_result r = run_with(NULL, input, false);
    json_t *v = variation(&r, KRAEFT, "2020Q1");
    assert_int_equal(json_array_size(json_object_get(v, "regions")), 4);
    char missing[64], best[64];
    joined(json_object_get(v, "missingRegions"), missing, sizeof missing);
    assert_string_equal(missing, "1083");
    /* Without Syddanmark's 86 the best is Hovedstaden's 82, the variation 82 - 74 = 8. */
    joined(json_object_get(v, "bestRegions"), best, sizeof best);
    assert_string_equal(best, "1084");
    assert_float_equal(number(v, "spread"), 8, TOLERANCE);
    run_free(&r);
    free(input);
}

/* No national fact: with every region's volume the nation is the volume-weighted mean; without, the
 * unweighted mean, labelled so — Tabel 8 2022Q1's regions average 75,8 where the nation printed 74. */
static void test_national_weighting(void **state)
{
    (void)state;
    text t;
    text_open(&t);
    /* 2022Q1 of Tabel 8, with volumes: (92*1000 + 67*3000 + 65*2500 + 82*4000 + 73*1500) / 12000. */
    const int volume[5] = {1000, 3000, 2500, 4000, 1500};
    for (int i = 0; i < 5; i++) {
        char extra[64];
        snprintf(extra, sizeof extra, ",\"volume\":\"%d\"", volume[i]);
        fact(&t, UDR, codes[i], "2022Q1", tabel8[0].region[i], "PERCENT", extra);
    }
    for (int i = 0; i < 5; i++)
        fact(&t, UDR, codes[i], "2022Q2", tabel8[1].region[i], "PERCENT",
             i == 2 ? ",\"volume\":\"900\"" : "");
    char *input = text_close(&t);
    run_result r = run_with(NULL, input, false);
    json_t *v = variation(&r, UDR, "2022Q1");
    assert_string_equal(string(v, "nationalSource"), "NATIONAL_WEIGHTED");
    const double weighted = (92.0 * 1000 + 67.0 * 3000 + 65.0 * 2500 + 82.0 * 4000 + 73.0 * 1500) / 12000.0;
    assert_float_equal(number(v, "nationalValue"), weighted, TOLERANCE); /* 74.6 */
    assert_float_equal(number(region(v, "1082"), "deviationFromNational"), 67 - weighted, TOLERANCE);
    assert_string_equal(string(region(v, "1084"), "volume"), "4000"); /* int64: a string in proto3 JSON */
    /* 2022Q2: only Syddanmark has a volume: unweighted, (80 + 66 + 63 + 81 + 74) / 5 = 72.8. */
    v = variation(&r, UDR, "2022Q2");
    assert_string_equal(string(v, "nationalSource"), "NATIONAL_UNWEIGHTED");
    assert_float_equal(number(v, "nationalValue"), 72.8, TOLERANCE);
    run_free(&r);
    free(input);

    /* Tabel 8 2022Q1 without volumes and without the nation: 75.8, unweighted. */
    text_open(&t);
    table_facts(&t, UDR, "PERCENT", &tabel8[0], 1, false);
    input = text_close(&t);
    r = run_with(NULL, input, false);
    v = variation(&r, UDR, "2022Q1");
    assert_string_equal(string(v, "nationalSource"), "NATIONAL_UNWEIGHTED");
    assert_float_equal(number(v, "nationalValue"), 75.8, TOLERANCE);
    run_free(&r);
    free(input);
}

/* A revision of one region's value changes exactly one output; the same value again changes nothing. */
static void test_revision_changes_one_output(void **state)
{
    (void)state;
    text t;
    text_open(&t);
    table_facts(&t, KRAEFT, "PERCENT", tabel10, 7, true);
    char *base = text_close(&t);
    run_result before = run_with(NULL, base, true);

    /* Q4 2022 cancer-pathway compliance: a region's figure revised (as the nation's 79 was to 75). */
    text_open(&t);
    fputs(base, t.f);
    fact(&t, KRAEFT, "1084", "2022Q4", 75, "PERCENT", ",\"revision\":1");
    fact(&t, KRAEFT, "1082", "2023Q1", 77, "PERCENT", ",\"revision\":1"); /* same value: no change */
    char *revised = text_close(&t);
    run_result after = run_with(NULL, revised, true);
    assert_int_equal(after.stats.changes, before.stats.changes + 1);
    json_t *v = variation(&after, KRAEFT, "2022Q4");
    assert_float_equal(number(region(v, "1084"), "value"), 75, TOLERANCE);
    assert_int_equal((int)number(region(v, "1084"), "rank"), 4); /* 86, 81 (1083), 77 (1082), 75, 70 */
    run_free(&before);
    run_free(&after);
    free(base);
    free(revised);
}

/* The same facts in reverse order give the same final table; a tombstone of the last region deletes it. */
static void test_order_independence_and_tombstones(void **state)
{
    (void)state;
    text t;
    text_open(&t);
    table_facts(&t, KRAEFT, "PERCENT", tabel10, 7, true);
    char *forward = text_close(&t);
    /* Reverse the lines. */
    size_t n = 0;
    char *lines[64];
    char *copy = strdup(forward), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        lines[n++] = line;
    text_open(&t);
    while (n > 0)
        fprintf(t.f, "%s\n", lines[--n]);
    char *backward = text_close(&t);
    run_result a = run_with(NULL, forward, false), b = run_with(NULL, backward, false);
    assert_string_equal(a.text, b.text);
    run_free(&a);
    run_free(&b);

    text_open(&t);
    fputs(forward, t.f);
    for (int i = 0; i < 5; i++) {
        char key[128];
        snprintf(key, sizeof key, KRAEFT "/region:%s/2020Q1", codes[i]);
        tombstone(&t, key);
    }
    char *deleted = text_close(&t);
    run_result c = run_with(NULL, deleted, false);
    assert_null(json_object_get(c.by_key, KRAEFT "/2020Q1"));
    assert_non_null(json_object_get(c.by_key, KRAEFT "/2022Q1"));
    run_free(&c);
    free(forward);
    free(backward);
    free(deleted);
    free(copy);
}

/* A rule's direction wins over the unit's. */
static void test_direction_from_rule(void **state)
{
    (void)state;
    text rules, t;
    text_open(&rules);
    rule(&rules, "{\"id\":\"kraeft.spread\",\"service\":\"variation\",\"subject\":\"" KRAEFT
                 "\",\"kind\":\"SPREAD\",\"direction\":\"LOWER_IS_BETTER\",\"threshold\":100}");
    char *rules_text = text_close(&rules);
    text_open(&t);
    table_facts(&t, KRAEFT, "PERCENT", &tabel10[6], 1, true);
    char *input = text_close(&t);
    run_result r = run_with(rules_text, input, false);
    json_t *v = variation(&r, KRAEFT, "2023Q2");
    assert_string_equal(string(v, "directionSource"), "DIRECTION_FROM_RULE");
    char best[64];
    joined(json_object_get(v, "bestRegions"), best, sizeof best);
    assert_string_equal(best, "1085");
    assert_float_equal(number(region(v, "1085"), "deviationFromNational"), 11, TOLERANCE);
    run_free(&r);
    free(input);
    free(rules_text);
}

/* Quality flags and provisional status carried from the inputs. */
static void test_flags_and_provisional_carried(void **state)
{
    (void)state;
    text t;
    text_open(&t);
    for (int i = 0; i < 5; i++)
        fact(&t, UDR, codes[i], "2022Q2", tabel8[1].region[i], "PERCENT",
             i == 0 ? ",\"qualityFlags\":[\"epj-transition\"]" : "");
    fact(&t, UDR, "DK", "2022Q2", 72, "PERCENT",
         ",\"provisional\":true,\"qualityFlags\":[\"lpr3-transition\"]");
    char *input = text_close(&t);
    run_result r = run_with(NULL, input, false);
    json_t *v = variation(&r, UDR, "2022Q2");
    char flags[128];
    joined(json_object_get(v, "qualityFlags"), flags, sizeof flags);
    assert_string_equal(flags, "epj-transition,lpr3-transition");
    assert_true(json_is_true(json_object_get(v, "provisional")));
    joined(json_object_get(region(v, "1081"), "qualityFlags"), flags, sizeof flags);
    assert_string_equal(flags, "epj-transition");
    assert_null(json_object_get(region(v, "1082"), "qualityFlags"));
    run_free(&r);
    free(input);
}

/* --- alerts -----------------------------------------------------------------------------------------------
 */

#define SPREAD_RULE(extra)                                                                                   \
    "{\"id\":\"kraeft.spread\",\"service\":\"variation\",\"subject\":\"" KRAEFT                              \
    "\",\"kind\":\"SPREAD\",\"direction\":\"HIGHER_IS_BETTER\",\"threshold\":15" extra "}"
#define DEVIATION_RULE(extra)                                                                                \
    "{\"id\":\"kraeft.behind\",\"service\":\"variation\",\"subject\":\"" KRAEFT                              \
    "\",\"kind\":\"DEVIATION_FROM_NATIONAL\",\"direction\":\"HIGHER_IS_BETTER\",\"threshold\":8" extra "}"

static run_result run_rules(const char *rules_json, const quarter_row *rows, size_t n, const char *more)
{
    text rules, t;
    text_open(&rules);
    rule(&rules, rules_json);
    char *rules_text = text_close(&rules);
    text_open(&t);
    table_facts(&t, KRAEFT, "PERCENT", rows, n, true);
    if (more)
        fputs(more, t.f);
    char *input = text_close(&t);
    run_result r = run_with(rules_text, input, false);
    free(rules_text);
    free(input);
    return r;
}

/* Spreads of Tabel 10: 12, 11, 24, 20, 16, 15, 21 against 15: fires in 2022Q2, stays through 2022Q4, 15 is
 * at the threshold (not above) and resolves in 2023Q1, 21 fires again in 2023Q2. */
static void test_spread_alert_fires_stays_resolves(void **state)
{
    (void)state;
    run_result r = run_rules(SPREAD_RULE(""), tabel10, 6, NULL); /* up to 2023Q1 */
    json_t *a = alert(&r, "kraeft.spread", "DK");
    assert_non_null(a);
    assert_string_equal(string(a, "state"), "RESOLVED");
    assert_string_equal(string(a, "startsAt"), "2022-07-01T00:00:00Z"); /* end of 2022Q2 */
    assert_string_equal(string(a, "endsAt"), "2023-04-01T00:00:00Z");   /* end of 2023Q1 */
    assert_float_equal(number(a, "value"), 15, TOLERANCE);
    run_free(&r);

    r = run_rules(SPREAD_RULE(""), tabel10, 7, NULL);
    a = alert(&r, "kraeft.spread", "DK");
    assert_string_equal(string(a, "state"), "FIRING");
    assert_string_equal(string(a, "period"), "2023Q2");
    assert_string_equal(string(a, "startsAt"), "2023-07-01T00:00:00Z");
    assert_float_equal(number(a, "value"), 21, TOLERANCE);
    assert_float_equal(number(a, "threshold"), 15, TOLERANCE);
    assert_string_equal(string(json_object_get(a, "labels"), "alertname"), "kraeft.spread");
    assert_string_equal(string(json_object_get(a, "labels"), "service"), "variation");
    assert_string_equal(string(json_object_get(a, "labels"), "scope"), "national:DK");
    assert_non_null(strstr(string(json_object_get(a, "annotations"), "description"), "Nordjylland, 87%"));
    run_free(&r);

    /* With the first five quarters only, the spread 16 of 2022Q4 is still above: firing since 2022Q2. */
    r = run_rules(SPREAD_RULE(""), tabel10, 5, NULL);
    a = alert(&r, "kraeft.spread", "DK");
    assert_string_equal(string(a, "state"), "FIRING");
    assert_string_equal(string(a, "startsAt"), "2022-07-01T00:00:00Z");
    assert_string_equal(string(a, "period"), "2022Q4");
    run_free(&r);

    /* Against 21: 24 fires in 2022Q2, 20 resolves in 2022Q3; 16, 15 and 21 are not above it. The resolved
     * alert stays as it resolved, as Alertmanager keeps it: 2022Q3 and its 20, not the latest 2023Q2. */
    r = run_rules("{\"id\":\"kraeft.spread\",\"service\":\"variation\",\"subject\":\"" KRAEFT
                  "\",\"kind\":\"SPREAD\",\"threshold\":21}",
                  tabel10, 7, NULL);
    a = alert(&r, "kraeft.spread", "DK");
    assert_string_equal(string(a, "state"), "RESOLVED");
    assert_string_equal(string(a, "period"), "2022Q3");
    assert_string_equal(string(a, "endsAt"), "2022-10-01T00:00:00Z");
    assert_float_equal(number(a, "value"), 20, TOLERANCE);
    assert_non_null(strstr(string(json_object_get(a, "annotations"), "description"), "2022Q3: variation 20"));
    run_free(&r);

    /* Never above 30: no alert at all. */
    r = run_rules("{\"id\":\"kraeft.spread\",\"service\":\"variation\",\"subject\":\"" KRAEFT
                  "\",\"kind\":\"SPREAD\",\"threshold\":30}",
                  tabel10, 7, NULL);
    assert_null(alert(&r, "kraeft.spread", "DK"));
    run_free(&r);
}

/* Sjælland against the nation in Tabel 10: -6, -5, -10, -9, -9, -7, -11 against 8: fires in 2022Q2; in
 * 2023Q1 (-7) it is within 8, so it resolves — unless the hysteresis of 2 asks for -6 or better. */
static void test_deviation_alert_and_hysteresis(void **state)
{
    (void)state;
    run_result r = run_rules(DEVIATION_RULE(""), tabel10, 6, NULL);
    json_t *a = alert(&r, "kraeft.behind", "1085");
    assert_string_equal(string(a, "state"), "RESOLVED");
    assert_string_equal(string(a, "endsAt"), "2023-04-01T00:00:00Z");
    assert_float_equal(number(a, "value"), 72, TOLERANCE);
    assert_float_equal(number(a, "threshold"), 71, TOLERANCE); /* national 79 - 8 */
    /* Only Sjælland ever was more than 8 behind: no other region has an alert. */
    for (int i = 0; i < 4; i++)
        assert_null(alert(&r, "kraeft.behind", codes[i]));
    run_free(&r);

    r = run_rules(DEVIATION_RULE(",\"hysteresis\":2"), tabel10, 6, NULL);
    a = alert(&r, "kraeft.behind", "1085");
    assert_string_equal(string(a, "state"), "FIRING");
    assert_string_equal(string(a, "startsAt"), "2022-07-01T00:00:00Z");
    run_free(&r);

    /* Scopes: only Hovedstaden watched; it is never more than 8 behind. */
    r = run_rules(DEVIATION_RULE(",\"scopes\":[{\"code\":\"Hovedstaden\"}]"), tabel10, 7, NULL);
    assert_null(alert(&r, "kraeft.behind", "1085"));
    assert_null(alert(&r, "kraeft.behind", "1084"));
    run_free(&r);
}

/* for_periods 2: Sjælland's first miss (2022Q2) does not fire, the second in a row (2022Q3) does. */
static void test_for_periods(void **state)
{
    (void)state;
    run_result r = run_rules(DEVIATION_RULE(",\"forPeriods\":2"), tabel10, 3, NULL);
    assert_null(alert(&r, "kraeft.behind", "1085"));
    run_free(&r);
    r = run_rules(DEVIATION_RULE(",\"forPeriods\":2"), tabel10, 4, NULL);
    json_t *a = alert(&r, "kraeft.behind", "1085");
    assert_string_equal(string(a, "state"), "FIRING");
    assert_string_equal(string(a, "startsAt"), "2022-10-01T00:00:00Z"); /* end of 2022Q3 */
    run_free(&r);
}

/* A suspended period neither fires nor resolves. */
static void test_suspended_period(void **state)
{
    (void)state;
    text t;
    text_open(&t);
    /* 2023Q1 (spread 15, which would resolve) suspended: the alert of 2022Q2 stays firing. */
    fact(&t, KRAEFT, "DK", "2023Q1", 79, "PERCENT", ",\"suspended\":true");
    char *more = text_close(&t);
    run_result r = run_rules(SPREAD_RULE(""), tabel10, 6, more);
    json_t *a = alert(&r, "kraeft.spread", "DK");
    assert_string_equal(string(a, "state"), "FIRING");
    assert_string_equal(string(a, "period"), "2022Q4");
    assert_true(json_is_true(json_object_get(variation(&r, KRAEFT, "2023Q1"), "suspended")));
    run_free(&r);
    free(more);
}

/* A revision that takes the miss away resolves the alert; a deleted rule resolves its firing alerts. */
static void test_revision_and_deleted_rule_resolve(void **state)
{
    (void)state;
    text t;
    text_open(&t);
    /* 2022Q2..Q4 revised so that Sjælland is within 8: 64 -> 70, 68 -> 72, 70 -> 72. */
    fact(&t, KRAEFT, "1085", "2022Q2", 70, "PERCENT", ",\"revision\":1");
    fact(&t, KRAEFT, "1085", "2022Q3", 72, "PERCENT", ",\"revision\":1");
    fact(&t, KRAEFT, "1085", "2022Q4", 72, "PERCENT", ",\"revision\":1");
    char *more = text_close(&t);
    run_result r = run_rules(DEVIATION_RULE(""), tabel10, 5, more);
    json_t *a = alert(&r, "kraeft.behind", "1085");
    assert_non_null(a);
    assert_string_equal(string(a, "state"), "RESOLVED");
    /* Applied one by one, the revisions moved the episode (2022Q3, then 2022Q4 alone) before the last took
     * it away: the alert keeps the start it was last emitted with. */
    assert_string_equal(string(a, "startsAt"), "2023-01-01T00:00:00Z");
    assert_non_null(strstr(string(json_object_get(a, "annotations"), "description"), "revision"));
    run_free(&r);
    free(more);

    text_open(&t);
    rule_deleted(&t, "kraeft.behind");
    more = text_close(&t);
    r = run_rules(DEVIATION_RULE(""), tabel10, 7, more);
    a = alert(&r, "kraeft.behind", "1085");
    assert_string_equal(string(a, "state"), "RESOLVED");
    assert_string_equal(string(a, "endsAt"), "2023-07-01T00:00:00Z");
    assert_non_null(strstr(string(json_object_get(a, "annotations"), "description"), "rule was deleted"));
    run_free(&r);
    free(more);
}

/* --- bad input --------------------------------------------------------------------------------------------
 */

static void test_bad_rules_and_facts_refused(void **state)
{
    (void)state;
    text rules, t;
    text_open(&rules);
    rule(&rules, "{\"id\":\"wrong-kind\",\"service\":\"variation\",\"subject\":\"" KRAEFT
                 "\",\"kind\":\"THRESHOLD\",\"direction\":\"HIGHER_IS_BETTER\",\"threshold\":80}");
    rule(&rules, "{\"id\":\"no-threshold\",\"service\":\"variation\",\"subject\":\"" KRAEFT
                 "\",\"kind\":\"SPREAD\"}");
    rule(&rules, "{\"id\":\"negative\",\"service\":\"variation\",\"subject\":\"" KRAEFT
                 "\",\"kind\":\"SPREAD\",\"threshold\":-1}");
    rule(&rules, "{\"id\":\"national-scope\",\"service\":\"variation\",\"subject\":\"" KRAEFT
                 "\",\"kind\":\"DEVIATION_FROM_NATIONAL\",\"direction\":\"HIGHER_IS_BETTER\",\"threshold\":1,"
                 "\"scopes\":[{\"code\":\"DK\"}]}");
    char *rules_text = text_close(&rules);
    text_open(&t);
    table_facts(&t, KRAEFT, "PERCENT", &tabel10[0], 1, true);
    fact(&t, KRAEFT, "1081", "2020Q1", 30, "DAYS", ""); /* another unit than the others of the period */
    /* A hospital is not part of the regional comparison: accepted and ignored. */
    fputs("{\"specversion\":\"1.0\",\"id\":\"t\",\"source\":\"test\",\"type\":\"healthsignals.v1."
          "IndicatorObservation\",\"data\":{\"indicator\":\"" KRAEFT "\",\"scope\":{\"kind\":\"HOSPITAL\","
          "\"code\":\"1084-rigshospitalet\"},\"period\":\"2020Q1\",\"value\":99,\"unit\":\"PERCENT\"}}\n",
          t.f);
    char *input = text_close(&t);
    run_result r = run_with(rules_text, input, false);
    assert_int_equal(r.stats.rejected, 5);
    json_t *v = variation(&r, KRAEFT, "2020Q1");
    assert_float_equal(number(region(v, "1081"), "value"), 78, TOLERANCE); /* the refused revision left out */
    assert_float_equal(number(v, "spread"), 12, TOLERANCE);
    assert_int_equal(json_object_size(r.by_key), 1);
    run_free(&r);
    free(rules_text);
    free(input);
}

static void assert_no_infinity_or_nan(const char *out)
{
    if (strstr(out, "Infinity") || strstr(out, "NaN"))
        fail_msg("a figure that is not finite in the output:\n%s", out);
}

/* Issue 15, item 5: with two regions at 1e308 (a COUNT), the unweighted national mean summed to Infinity.
 * Such values are refused, and the other regions' variation is computed without them. */
static void test_1e308_values_are_refused_and_the_nation_stays_finite(void **state)
{
    (void)state;
    text t;
    text_open(&t);
    fact(&t, "kontakter.antal", "1081", "2023Q2", 1e308, "COUNT", "");
    fact(&t, "kontakter.antal", "1082", "2023Q2", 1e308, "COUNT", "");
    fact(&t, "kontakter.antal", "1083", "2023Q2", 400, "COUNT", "");
    fact(&t, "kontakter.antal", "1084", "2023Q2", 600, "COUNT", "");
    char *input = text_close(&t);
    run_result r = run_with(NULL, input, false);
    assert_int_equal(r.stats.rejected, 2);
    assert_no_infinity_or_nan(r.text);
    json_t *v = variation(&r, "kontakter.antal", "2023Q2");
    assert_float_equal(number(v, "nationalValue"), 500, TOLERANCE); /* (400 + 600) / 2 */
    assert_int_equal(json_array_size(json_object_get(v, "regions")), 2);
    run_free(&r);
    free(input);
}

/* Values and volumes at the largest validation admits give finite figures: five regions at 1e12 with
 * volumes of 1e12 weigh to a national 1e12 (the weighted sum is 5e24), and DKK at -1e15 and 1e15 spread
 * to 2e15. */
static void test_values_at_the_bound_give_finite_figures(void **state)
{
    (void)state;
    text t;
    text_open(&t);
    for (int i = 0; i < 5; i++)
        fact(&t, "kontakter.antal", codes[i], "2023Q2", 1e12, "COUNT", ",\"volume\":\"1000000000000\"");
    fact(&t, "driftsresultat", "1081", "2023", 1e15, "DKK", "");
    fact(&t, "driftsresultat", "1082", "2023", -1e15, "DKK", "");
    char *input = text_close(&t);
    run_result r = run_with(NULL, input, false);
    assert_int_equal(r.stats.rejected, 0);
    assert_no_infinity_or_nan(r.text);
    json_t *v = variation(&r, "kontakter.antal", "2023Q2");
    assert_string_equal(string(v, "nationalSource"), "NATIONAL_WEIGHTED");
    assert_float_equal(number(v, "nationalValue"), 1e12, TOLERANCE);
    v = variation(&r, "driftsresultat", "2023");
    assert_float_equal(number(v, "spread"), 2e15, TOLERANCE);
    run_free(&r);
    free(input);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tabel10_every_quarter),
        cmocka_unit_test(test_tabel8_every_quarter),
        cmocka_unit_test(test_tabel9_every_quarter_lower_is_better),
        cmocka_unit_test(test_ranks_and_deviation_from_national),
        cmocka_unit_test(test_waiting_times_rank_lowest_first),
        cmocka_unit_test(test_ties_share_rank),
        cmocka_unit_test(test_missing_region),
        cmocka_unit_test(test_national_weighting),
        cmocka_unit_test(test_revision_changes_one_output),
        cmocka_unit_test(test_order_independence_and_tombstones),
        cmocka_unit_test(test_direction_from_rule),
        cmocka_unit_test(test_flags_and_provisional_carried),
        cmocka_unit_test(test_spread_alert_fires_stays_resolves),
        cmocka_unit_test(test_deviation_alert_and_hysteresis),
        cmocka_unit_test(test_for_periods),
        cmocka_unit_test(test_suspended_period),
        cmocka_unit_test(test_revision_and_deleted_rule_resolve),
        cmocka_unit_test(test_bad_rules_and_facts_refused),
        cmocka_unit_test(test_1e308_values_are_refused_and_the_nation_stays_finite),
        cmocka_unit_test(test_values_at_the_bound_give_finite_figures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
