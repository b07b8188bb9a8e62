/* The budget calculation through the offline driver, with the shipped chart (deploy/rules/budget.json) and
 * the leaves of the Danish Regions' expected accounts 2023 (docs/domain.md §12): every total and variance
 * as published, a revision changing exactly the totals above its leaf, year on year, printed totals checked
 * (INFO alert fires and resolves), the variance alert fires, stays and resolves, order independence, and
 * bad input refused (a line outside the chart, overflow, an unknown kind, a chart with a cycle).
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

#include "budget.h"
#include "calcrun.h"
#include "expected_accounts_2023.h"

#define UNIT "danske-regioner"

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static char *shipped_rules(void)
{
    return read_file(HS_SOURCE_DIR "/deploy/rules/budget.json");
}

/* A growing string of CloudEvents lines. */
typedef struct text {
    char *s;
    size_t len;
} text;

static void add(text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    t->s = realloc(t->s, t->len + (size_t)n + 1);
    assert_non_null(t->s);
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

static void add_line(text *t, const char *unit, const char *line, int year, const char *kind, long long ore)
{
    add(t,
        "{\"specversion\":\"1.0\",\"id\":\"\",\"source\":\"/test\",\"type\":\"healthsignals.v1.BudgetLine\","
        "\"data\":{\"unit\":\"%s\",\"line\":\"%s\",\"year\":%d,\"kind\":\"%s\",\"amountOre\":\"%lld\"}}\n",
        unit, line, year, kind, ore);
}

static void add_tombstone(text *t, const char *key)
{
    add(t,
        "{\"specversion\":\"1.0\",\"id\":\"\",\"source\":\"/test\",\"type\":\"healthsignals.v1.BudgetLine\","
        "\"subject\":\"%s\",\"data\":null}\n",
        key);
}

/* The table's leaves for 2023, budget then expected (or reversed). */
static void add_table(text *t, int year, bool reversed)
{
    for (size_t k = 0; k < 2 * N_LEAVES; k++) {
        size_t i = reversed ? 2 * N_LEAVES - 1 - k : k;
        size_t row = i % N_LEAVES;
        bool expected = i >= N_LEAVES;
        add_line(t, UNIT, table[row].line, year, expected ? "EXPECTED_ACCOUNTS" : "BUDGET",
                 (expected ? table[row].expected : table[row].budget) * 100);
    }
}

static json_t *status(const calcrun *r, const char *line, int year, const char *kind)
{
    char key[256];
    snprintf(key, sizeof key, UNIT "/%s/%d/%s", line, year, kind);
    return json_object_get(r->by_key, key);
}

/* A field of a status as int64 (JSON int64 is a string). */
static long long ore(const json_t *st, const char *field)
{
    const json_t *v = json_object_get(st, field);
    assert_non_null(v);
    return strtoll(json_string_value(v), NULL, 10);
}

static bool has(const json_t *st, const char *field)
{
    return json_object_get(st, field) != NULL;
}

static json_t *alert_for(const calcrun *r, const char *rule, const char *line)
{
    const char *key;
    json_t *v;
    json_object_foreach(r->by_key, key, v)
    {
        const json_t *labels = json_object_get(v, "labels");
        if (json_object_get(v, "fingerprint") &&
            strcmp(json_string_value(json_object_get(v, "rule")), rule) == 0 &&
            strcmp(json_string_value(json_object_get(labels, "line")), line) == 0)
            return v;
    }
    return NULL;
}

static const char *state_of(const json_t *alert)
{
    return json_string_value(json_object_get(alert, "state"));
}

static void test_published_totals_and_variances(void **unused)
{
    char *rules = shipped_rules();
    text in = {0};
    add_table(&in, 2023, false);
    calcrun r = calcrun_run(&budget_calc, rules, in.s, false);
    assert_int_equal(r.stats.rejected, 0);
    static const struct {
        const char *line;
        long long budget, expected;
    } totals[] = {
        {"Indtægter i alt", -285400000, -285700000},
        {"Personaleudgifter i alt", 229100000, 227500000},
        {"Øvrige udgifter i alt", 102500000, 92900000},
        {"Driftsresultat", 46200000, 34700000},
        {"Kapitalposter i alt", -7000000, -15900000},
        {"Resultat", 39200000, 18800000},
        {"Resultat inkl. projektbevillinger", 42200000, 21800000},
    };
    for (size_t i = 0; i < sizeof totals / sizeof totals[0]; i++) {
        json_t *b = status(&r, totals[i].line, 2023, "BUDGET"),
               *e = status(&r, totals[i].line, 2023, "EXPECTED_ACCOUNTS");
        assert_non_null(b);
        assert_non_null(e);
        assert_string_equal(json_string_value(json_object_get(b, "role")), "TOTAL");
        assert_int_equal(ore(b, "amountOre"), totals[i].budget * 100);
        assert_int_equal(ore(e, "amountOre"), totals[i].expected * 100);
        assert_int_equal(ore(b, "varianceExpectedOre"), (totals[i].budget - totals[i].expected) * 100);
        assert_false(has(b, "printedOre"));
    }
    /* The papers' "Forskel": operating result +11.5 mio., result incl. project grants +20.4 mio. */
    assert_int_equal(ore(status(&r, "Driftsresultat", 2023, "BUDGET"), "varianceExpectedOre"), 1150000000LL);
    assert_int_equal(ore(status(&r, "Resultat inkl. projektbevillinger", 2023, "EXPECTED_ACCOUNTS"),
                         "varianceExpectedOre"),
                     2040000000LL);
    /* Leaves are there as they arrived, with their variance; no accounts, no variance against them. */
    json_t *lon = status(&r, "Løn", 2023, "EXPECTED_ACCOUNTS");
    assert_string_equal(json_string_value(json_object_get(lon, "role")), "LEAF");
    assert_int_equal(ore(lon, "varianceExpectedOre"), 80000000LL);
    assert_false(has(lon, "varianceAccountsOre"));
    /* 26 leaves + 14 totals; the operating result is better than budget: no alert FIRING. */
    size_t statuses = 0;
    const char *key;
    json_t *v;
    json_object_foreach(r.by_key, key, v) statuses += json_object_get(v, "fingerprint") == NULL;
    assert_int_equal(statuses, 40);
    json_t *a = alert_for(&r, "budget.danske-regioner.driftsresultat", "Driftsresultat");
    assert_true(a == NULL || strcmp(state_of(a), "RESOLVED") == 0);
    calcrun_free(&r);
    free(in.s);
    free(rules);
}

static void test_order_independence(void **unused)
{
    char *rules = shipped_rules();
    text a = {0}, b = {0};
    add_table(&a, 2023, false);
    add_table(&b, 2023, true);
    calcrun ra = calcrun_run(&budget_calc, rules, a.s, false),
            rb = calcrun_run(&budget_calc, rules, b.s, false);
    /* The statuses are the same whatever the order. */
    const char *key;
    json_t *v;
    size_t n = 0;
    json_object_foreach(ra.by_key, key, v)
    {
        if (json_object_get(v, "fingerprint"))
            continue;
        assert_true(json_equal(v, json_object_get(rb.by_key, key)));
        n++;
    }
    assert_int_equal(n, 40);
    calcrun_free(&ra);
    calcrun_free(&rb);
    free(a.s);
    free(b.s);
    free(rules);
}

static void test_revision_changes_exactly_the_totals_above(void **unused)
{
    char *rules = shipped_rules();
    text in = {0};
    add_table(&in, 2023, false);
    size_t before_len = in.len;
    add_line(&in, UNIT, "Løn", 2023, "EXPECTED_ACCOUNTS", (196400000LL + 1000) * 100);
    calcrun r = calcrun_run(&budget_calc, rules, in.s, true);
    /* The changes after the revision: the leaf, the totals above it (staff, operating result, result, result
     * incl. project grants) and the BUDGET statuses of those lines whose variance reads them. */
    const char *after = r.text;
    calcrun base = calcrun_run(&budget_calc, rules, (in.s[before_len] = '\0', in.s), true);
    after += strlen(base.text);
    static const char *const changed[] = {
        UNIT "/Løn/2023/EXPECTED_ACCOUNTS",
        UNIT "/Løn/2023/BUDGET",
        UNIT "/Personaleudgifter i alt/2023/EXPECTED_ACCOUNTS",
        UNIT "/Personaleudgifter i alt/2023/BUDGET",
        UNIT "/Driftsresultat/2023/EXPECTED_ACCOUNTS",
        UNIT "/Driftsresultat/2023/BUDGET",
        UNIT "/Resultat/2023/EXPECTED_ACCOUNTS",
        UNIT "/Resultat/2023/BUDGET",
        UNIT "/Resultat inkl. projektbevillinger/2023/EXPECTED_ACCOUNTS",
        UNIT "/Resultat inkl. projektbevillinger/2023/BUDGET",
    };
    size_t lines = 0;
    for (const char *p = after; *p; p = strchr(p, '\n') + 1) {
        json_t *event = json_loads(p, JSON_DISABLE_EOF_CHECK, NULL);
        assert_non_null(event);
        const char *subject = json_string_value(json_object_get(event, "subject"));
        bool expected = false;
        for (size_t i = 0; i < sizeof changed / sizeof changed[0]; i++)
            expected |= strcmp(subject, changed[i]) == 0;
        if (!expected)
            fail_msg("unexpected change of %s", subject);
        json_decref(event);
        lines++;
    }
    assert_int_equal(lines, sizeof changed / sizeof changed[0]);
    calcrun_free(&r);
    calcrun_free(&base);
    free(in.s);
    free(rules);
}

static void test_year_on_year(void **unused)
{
    char *rules = shipped_rules();
    text in = {0};
    add_table(&in, 2023, false);
    /* 2024's membership fee at 25,85 kr. per inhabitant instead of 25,70 (docs/domain.md §12): a budget of
     * 152.1 × 25,85 / 25,70 mio. kr., to the øre. */
    add_line(&in, UNIT, "Kontingent", 2024, "BUDGET", -15298774319LL);
    calcrun r = calcrun_run(&budget_calc, rules, in.s, false);
    json_t *k = status(&r, "Kontingent", 2024, "BUDGET");
    assert_int_equal(ore(k, "previousYearOre"), -15210000000LL);
    assert_int_equal(ore(k, "yearChangeOre"), -88774319LL);
    double pct = json_number_value(json_object_get(k, "yearChangePct"));
    assert_true(pct < -0.58 && pct > -0.59);
    /* 2024's income total is only the fee so far; its year change reads 2023's computed total. */
    json_t *income = status(&r, "Indtægter i alt", 2024, "BUDGET");
    assert_int_equal(ore(income, "amountOre"), -15298774319LL);
    assert_int_equal(ore(income, "previousYearOre"), -28540000000LL);
    /* No expected accounts for 2024 yet: no variance. */
    assert_false(has(k, "varianceExpectedOre"));
    calcrun_free(&r);
    free(in.s);
    free(rules);
}

static void test_printed_total_checked_and_alerted(void **unused)
{
    char *rules = shipped_rules();
    text in = {0};
    add_table(&in, 2023, false);
    /* The operating result printed as in the paper: agrees. */
    add_line(&in, UNIT, "Driftsresultat", 2023, "BUDGET", 4620000000LL);
    /* The expected result printed 100 000 kr. off: a finding, the computed figure stays. */
    add_line(&in, UNIT, "Driftsresultat", 2023, "EXPECTED_ACCOUNTS", 3480000000LL);
    calcrun r = calcrun_run(&budget_calc, rules, in.s, false);
    assert_int_equal(r.stats.rejected, 0);
    json_t *b = status(&r, "Driftsresultat", 2023, "BUDGET"),
           *e = status(&r, "Driftsresultat", 2023, "EXPECTED_ACCOUNTS");
    assert_int_equal(ore(b, "printedOre"), 4620000000LL);
    assert_int_equal(ore(b, "printedDifferenceOre"), 0);
    assert_false(has(b, "printedMismatch"));
    assert_int_equal(ore(e, "amountOre"), 3470000000LL);
    assert_int_equal(ore(e, "printedOre"), 3480000000LL);
    assert_int_equal(ore(e, "printedDifferenceOre"), 10000000LL);
    assert_true(json_is_true(json_object_get(e, "printedMismatch")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(e, "qualityFlags"), 0)),
                        "printed-total-mismatch");
    json_t *a = alert_for(&r, "budget.danske-regioner.chart", "Driftsresultat");
    assert_non_null(a);
    assert_string_equal(state_of(a), "FIRING");
    assert_string_equal(json_string_value(json_object_get(a, "severity")), "INFO");
    const char *description =
        json_string_value(json_object_get(json_object_get(a, "annotations"), "description"));
    assert_non_null(strstr(description, "printed as 34.800.000 DKK"));
    assert_non_null(strstr(description, "add up to 34.700.000 DKK"));
    calcrun_free(&r);

    /* A corrected print resolves it. */
    add_line(&in, UNIT, "Driftsresultat", 2023, "EXPECTED_ACCOUNTS", 3470000000LL);
    r = calcrun_run(&budget_calc, rules, in.s, false);
    a = alert_for(&r, "budget.danske-regioner.chart", "Driftsresultat");
    assert_string_equal(state_of(a), "RESOLVED");
    assert_string_equal(json_string_value(json_object_get(a, "endsAt")), "2024-01-01T00:00:00Z");
    assert_false(has(status(&r, "Driftsresultat", 2023, "EXPECTED_ACCOUNTS"), "printedMismatch"));
    calcrun_free(&r);
    free(in.s);
    free(rules);
}

static void test_variance_alert_fires_stays_resolves(void **unused)
{
    char *rules = shipped_rules();
    text in = {0};
    add_table(&in, 2023, false);
    /* 2024: expected operating result 6 mio. worse than its budget (threshold 5 mio.): fires. */
    add_line(&in, UNIT, "Løn", 2024, "BUDGET", 20000000000LL);
    add_line(&in, UNIT, "Løn", 2024, "EXPECTED_ACCOUNTS", 20600000000LL);
    calcrun r = calcrun_run(&budget_calc, rules, in.s, false);
    json_t *a = alert_for(&r, "budget.danske-regioner.driftsresultat", "Driftsresultat");
    assert_non_null(a);
    assert_string_equal(state_of(a), "FIRING");
    assert_string_equal(json_string_value(json_object_get(a, "period")), "2024");
    assert_string_equal(json_string_value(json_object_get(a, "startsAt")), "2025-01-01T00:00:00Z");
    assert_true(json_number_value(json_object_get(a, "value")) == -6000000.0);
    calcrun_free(&r);
    /* 4.9 mio. worse: within the threshold, resolved in 2024. */
    add_line(&in, UNIT, "Løn", 2024, "EXPECTED_ACCOUNTS", 20490000000LL);
    r = calcrun_run(&budget_calc, rules, in.s, false);
    a = alert_for(&r, "budget.danske-regioner.driftsresultat", "Driftsresultat");
    assert_string_equal(state_of(a), "RESOLVED");
    calcrun_free(&r);
    /* The accounts, once there, are compared instead of the expected accounts: 8 mio. worse fires. */
    add_line(&in, UNIT, "Løn", 2024, "ACCOUNTS", 20800000000LL);
    r = calcrun_run(&budget_calc, rules, in.s, false);
    a = alert_for(&r, "budget.danske-regioner.driftsresultat", "Driftsresultat");
    assert_string_equal(state_of(a), "FIRING");
    assert_int_equal(ore(status(&r, "Løn", 2024, "BUDGET"), "varianceAccountsOre"), -800000000LL);
    calcrun_free(&r);
    /* The 2024 lines deleted: nothing left worse than budget, resolved. */
    add_tombstone(&in, UNIT "/Løn/2024/ACCOUNTS");
    add_tombstone(&in, UNIT "/Løn/2024/EXPECTED_ACCOUNTS");
    add_tombstone(&in, UNIT "/Løn/2024/BUDGET");
    r = calcrun_run(&budget_calc, rules, in.s, false);
    a = alert_for(&r, "budget.danske-regioner.driftsresultat", "Driftsresultat");
    assert_string_equal(state_of(a), "RESOLVED");
    assert_null(status(&r, "Løn", 2024, "BUDGET"));
    assert_null(status(&r, "Driftsresultat", 2024, "BUDGET"));
    calcrun_free(&r);
    free(in.s);
    free(rules);
}

static void test_savings_against_the_pro_rata_target(void **unused)
{
    /* The shipped rule: 1 bn kr. over 2021..2025, 200 mio. a year. 2021: 344 = 139 lasting + 205 one-off,
     * 144 ahead: no alert. 2022: 40 more, 384 against 400 due: behind, FIRING. A 2022 one-off of 20 (404):
     * RESOLVED in 2022. */
    char *rules = shipped_rules();
    text in = {0};
    add_line(&in, "regionerne", "Indkøbsbesparelser, varige", 2021, "ACCOUNTS", 13900000000LL);
    add_line(&in, "regionerne", "Indkøbsbesparelser, engangs", 2021, "ACCOUNTS", 20500000000LL);
    calcrun r = calcrun_run(&budget_calc, rules, in.s, false);
    assert_int_equal(r.stats.rejected, 0);
    json_t *a = alert_for(&r, "budget.regionerne.procurement-savings", "Indkøbsbesparelser, varige");
    assert_true(a == NULL || strcmp(state_of(a), "RESOLVED") == 0);
    calcrun_free(&r);
    add_line(&in, "regionerne", "Indkøbsbesparelser, varige", 2022, "ACCOUNTS", 4000000000LL);
    r = calcrun_run(&budget_calc, rules, in.s, false);
    a = alert_for(&r, "budget.regionerne.procurement-savings", "Indkøbsbesparelser, varige");
    assert_non_null(a);
    assert_string_equal(state_of(a), "FIRING");
    assert_string_equal(json_string_value(json_object_get(a, "period")), "2022");
    assert_true(json_number_value(json_object_get(a, "value")) == 384000000.0);
    assert_true(json_number_value(json_object_get(a, "threshold")) == 400000000.0);
    const char *description =
        json_string_value(json_object_get(json_object_get(a, "annotations"), "description"));
    assert_non_null(strstr(description, "384.000.000 DKK realised since 2021 against 400.000.000 DKK due"));
    calcrun_free(&r);
    add_line(&in, "regionerne", "Indkøbsbesparelser, engangs", 2022, "ACCOUNTS", 2000000000LL);
    r = calcrun_run(&budget_calc, rules, in.s, false);
    a = alert_for(&r, "budget.regionerne.procurement-savings", "Indkøbsbesparelser, varige");
    assert_string_equal(state_of(a), "RESOLVED");
    assert_string_equal(json_string_value(json_object_get(a, "endsAt")), "2023-01-01T00:00:00Z");
    calcrun_free(&r);
    /* Negative savings are refused, the state as before (still resolved). */
    add_line(&in, "regionerne", "Indkøbsbesparelser, engangs", 2023, "ACCOUNTS", -1);
    r = calcrun_run(&budget_calc, rules, in.s, false);
    assert_int_equal(r.stats.rejected, 1);
    assert_string_equal(
        state_of(alert_for(&r, "budget.regionerne.procurement-savings", "Indkøbsbesparelser, varige")),
        "RESOLVED");
    calcrun_free(&r);
    free(in.s);
    free(rules);
}

static void test_phase_in_schedule_checked(void **unused)
{
    /* The research pools' phase-in (docs/domain.md §10.9) as a chart: the total of each year is the
     * medicine pool + the prevention pool, and the printed total of each year is checked: 17, 30, 35, 40,
     * 45, 50 mio. kr. all add up; a 2027 printed as 41 does not (INFO alert for that year only). */
    const char *chart =
        "[{\"id\":\"budget.forskningspuljer\",\"service\":\"budget\",\"subject\":\"forskningspuljer\","
        "\"kind\":\"BUDGET_CHART\",\"budgetUnits\":[\"forskning\"],\"budgetTotals\":[{\"line\":\"I alt\","
        "\"parts\":[\"Medicinpulje\",\"Forebyggelsespulje\"]}]}]";
    static const int pools[][4] = {{2024, 10, 7, 17},  {2025, 22, 8, 30},  {2026, 26, 9, 35},
                                   {2027, 30, 10, 41}, {2028, 34, 11, 45}, {2029, 38, 12, 50}};
    text in = {0};
    for (size_t i = 0; i < 6; i++) {
        add_line(&in, "forskning", "Medicinpulje", pools[i][0], "BUDGET", pools[i][1] * 100000000LL);
        add_line(&in, "forskning", "Forebyggelsespulje", pools[i][0], "BUDGET", pools[i][2] * 100000000LL);
        add_line(&in, "forskning", "I alt", pools[i][0], "BUDGET", pools[i][3] * 100000000LL);
    }
    calcrun r = calcrun_run(&budget_calc, chart, in.s, false);
    assert_int_equal(r.stats.rejected, 0);
    size_t firing = 0;
    for (size_t i = 0; i < 6; i++) {
        char key[64];
        snprintf(key, sizeof key, "forskning/I alt/%d/BUDGET", pools[i][0]);
        json_t *st = json_object_get(r.by_key, key);
        bool misprinted = pools[i][0] == 2027;
        assert_int_equal(ore(st, "amountOre"), (pools[i][1] + pools[i][2]) * 100000000LL);
        assert_int_equal(ore(st, "printedDifferenceOre"), misprinted ? 100000000LL : 0);
        assert_int_equal(json_is_true(json_object_get(st, "printedMismatch")), misprinted);
        if (i > 0) /* the phase-in grows every year */
            assert_true(ore(st, "yearChangeOre") > 0);
    }
    const char *k;
    json_t *v;
    json_object_foreach(r.by_key, k, v)
    {
        if (!json_object_get(v, "fingerprint"))
            continue;
        assert_string_equal(state_of(v), "FIRING");
        assert_string_equal(json_string_value(json_object_get(json_object_get(v, "labels"), "year")), "2027");
        firing++;
    }
    assert_int_equal(firing, 1);
    calcrun_free(&r);
    free(in.s);
}

static void test_fee_indexation_checked(void **unused)
{
    /* The shipped rule: the fee per inhabitant of 2024 = (that of 2023 - 0,70) x 1,034 = 25,85 kr.
     * (docs/domain.md §10.9). 25,85 agrees; 25,90 is a finding and an INFO alert; corrected, it resolves. */
    char *rules = shipped_rules();
    text in = {0};
    add_line(&in, UNIT, "Kontingent pr. indbygger", 2023, "BUDGET", 2570);
    add_line(&in, UNIT, "Kontingent pr. indbygger", 2024, "BUDGET", 2585);
    calcrun r = calcrun_run(&budget_calc, rules, in.s, false);
    assert_int_equal(r.stats.rejected, 0);
    json_t *st = status(&r, "Kontingent pr. indbygger", 2024, "BUDGET");
    assert_string_equal(json_string_value(json_object_get(st, "role")), "LEAF");
    assert_int_equal(ore(st, "indexedOre"), 2585);
    assert_int_equal(ore(st, "indexedDifferenceOre"), 0);
    assert_false(has(st, "qualityFlags"));
    assert_false(has(status(&r, "Kontingent pr. indbygger", 2023, "BUDGET"), "indexedOre"));
    assert_null(alert_for(&r, "budget.danske-regioner.fee-indexation", "Kontingent pr. indbygger"));
    calcrun_free(&r);

    add_line(&in, UNIT, "Kontingent pr. indbygger", 2024, "BUDGET", 2590);
    r = calcrun_run(&budget_calc, rules, in.s, false);
    st = status(&r, "Kontingent pr. indbygger", 2024, "BUDGET");
    assert_int_equal(ore(st, "indexedDifferenceOre"), 5);
    assert_string_equal(json_string_value(json_array_get(json_object_get(st, "qualityFlags"), 0)),
                        "indexation-mismatch");
    json_t *a = alert_for(&r, "budget.danske-regioner.fee-indexation", "Kontingent pr. indbygger");
    assert_non_null(a);
    assert_string_equal(state_of(a), "FIRING");
    assert_string_equal(json_string_value(json_object_get(a, "severity")), "INFO");
    const char *description =
        json_string_value(json_object_get(json_object_get(a, "annotations"), "description"));
    assert_non_null(strstr(description,
                           "is 25,90 DKK, but (the year before's 25,70 DKK - 0,70 DKK) x 1,034 = 25,85 DKK"));
    calcrun_free(&r);

    add_line(&in, UNIT, "Kontingent pr. indbygger", 2024, "BUDGET", 2585);
    r = calcrun_run(&budget_calc, rules, in.s, false);
    assert_string_equal(
        state_of(alert_for(&r, "budget.danske-regioner.fee-indexation", "Kontingent pr. indbygger")),
        "RESOLVED");
    calcrun_free(&r);
    free(in.s);
    free(rules);
}

static void test_bad_input_refused(void **unused)
{
    char *rules = shipped_rules();
    text in = {0};
    add_table(&in, 2023, false);
    /* A line outside the chart. */
    add_line(&in, UNIT, "Husleje", 2023, "BUDGET", 100);
    /* An amount that makes a total overflow int64: refused, the total stays. */
    add_line(&in, UNIT, "Tilskud", 2023, "BUDGET", INT64_MAX);
    calcrun r = calcrun_run(&budget_calc, rules, in.s, false);
    assert_int_equal(r.stats.rejected, 2);
    assert_null(status(&r, "Husleje", 2023, "BUDGET"));
    assert_int_equal(ore(status(&r, "Tilskud", 2023, "BUDGET"), "amountOre"), 330000000LL);
    assert_int_equal(ore(status(&r, "Driftsresultat", 2023, "BUDGET"), "amountOre"), 4620000000LL);
    calcrun_free(&r);

    /* A chart that keeps unassigned lines takes it, with a finding. */
    const char *lenient =
        "[{\"id\":\"budget.lenient\",\"service\":\"budget\",\"subject\":\"lenient\",\"kind\":\"BUDGET_"
        "CHART\","
        "\"budgetAllowUnassigned\":true,\"budgetTotals\":[{\"line\":\"Drift\",\"parts\":[\"Løn\"]}]}]";
    text one = {0};
    add_line(&one, "x", "Løn", 2023, "BUDGET", 500);
    add_line(&one, "x", "Husleje", 2023, "BUDGET", 100);
    r = calcrun_run(&budget_calc, lenient, one.s, false);
    assert_int_equal(r.stats.rejected, 0);
    json_t *h = json_object_get(r.by_key, "x/Husleje/2023/BUDGET");
    assert_string_equal(json_string_value(json_object_get(h, "role")), "UNASSIGNED");
    assert_string_equal(json_string_value(json_array_get(json_object_get(h, "qualityFlags"), 0)),
                        "unassigned-line");
    assert_int_equal(ore(json_object_get(r.by_key, "x/Drift/2023/BUDGET"), "amountOre"), 500);
    calcrun_free(&r);

    /* A new version of the chart under which a total overflows is refused; the old version stays. */
    text huge = {0};
    add_line(&huge, "x", "Løn", 2023, "BUDGET", INT64_MAX / 2 + 1);
    add_line(&huge, "x", "Husleje", 2023, "BUDGET", INT64_MAX / 2 + 1);
    add(&huge, "{\"specversion\":\"1.0\",\"id\":\"\",\"source\":\"/test\",\"type\":\"healthsignals.v1.Rule\","
               "\"data\":{\"id\":\"budget.lenient\",\"service\":\"budget\",\"subject\":\"lenient\","
               "\"kind\":\"BUDGET_CHART\",\"budgetTotals\":[{\"line\":\"Drift\",\"parts\":[\"Løn\","
               "\"Husleje\"]}]}}\n");
    r = calcrun_run(&budget_calc, lenient, huge.s, false);
    assert_int_equal(r.stats.rejected, 1);
    assert_int_equal(ore(json_object_get(r.by_key, "x/Drift/2023/BUDGET"), "amountOre"), INT64_MAX / 2 + 1);
    calcrun_free(&r);
    free(huge.s);

    /* Bad rules: a cycle in the chart, a variance rule without its line, a kind of another service. */
    const char *bad =
        "[{\"id\":\"budget.cycle\",\"service\":\"budget\",\"subject\":\"c\",\"kind\":\"BUDGET_CHART\","
        "\"budgetTotals\":[{\"line\":\"A\",\"parts\":[\"B\"]},{\"line\":\"B\",\"parts\":[\"A\",\"x\"]}]},"
        "{\"id\":\"budget.noline\",\"service\":\"budget\",\"subject\":\"v\",\"kind\":\"BUDGET_VARIANCE\"},"
        "{\"id\":\"budget.spread\",\"service\":\"budget\",\"subject\":\"s\",\"kind\":\"SPREAD\","
        "\"threshold\":1}]";
    r = calcrun_run(&budget_calc, bad, one.s, false);
    assert_int_equal(r.stats.rejected, 3);
    /* With no chart the lines are held and nothing is published. */
    assert_int_equal(json_object_size(r.by_key), 0);
    calcrun_free(&r);
    free(one.s);
    free(in.s);
    free(rules);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_totals_and_variances),
        cmocka_unit_test(test_order_independence),
        cmocka_unit_test(test_revision_changes_exactly_the_totals_above),
        cmocka_unit_test(test_year_on_year),
        cmocka_unit_test(test_printed_total_checked_and_alerted),
        cmocka_unit_test(test_variance_alert_fires_stays_resolves),
        cmocka_unit_test(test_savings_against_the_pro_rata_target),
        cmocka_unit_test(test_phase_in_schedule_checked),
        cmocka_unit_test(test_fee_indexation_checked),
        cmocka_unit_test(test_bad_input_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
