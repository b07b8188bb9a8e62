/* The budget arithmetic (ledger.h) against the figures of docs/domain.md §12 (the Danish Regions' expected
 * accounts 2023, the membership fee, the research pools, the procurement savings): every total of the
 * expected-accounts table from its leaves, each variance, the fee, the phase-in, 344 = 139 + 205 against
 * 200 a year; allocation sums exact for awkward keys; overflow refused, never wrapped.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "expected_accounts_2023.h"
#include "ledger.h"

#define MIO(x) ((int64_t)(x)*100000000) /* mio. kr. in øre */
#define KR(x)  ((int64_t)(x)*100)

/* The chart as deploy/rules/budget.json states it. */
static const char *const income[] = {"Kontingent", "Øvrige kontingenter", "Øvrige indtægter"};
static const char *const staff[] = {"Løn", "Øvrige personaleudgifter"};
static const char *const expenses[] = {"Drift af huse", "Fremmede tjenesteydelser", "Mødeaktiviteter",
                                       "Øvrig drift", "Tilskud"};
static const char *const operating[] = {"Indtægter i alt", "Personaleudgifter i alt",
                                        "Øvrige udgifter i alt"};
static const char *const capital[] = {"Kapitalindtægter", "Kapitaludgifter"};
static const char *const result[] = {"Driftsresultat", "Kapitalposter i alt"};
static const char *const result_incl[] = {"Resultat", "Projektbevillinger"};

#define DEF(n, p)                                                                                            \
    {                                                                                                        \
        (n), (p), sizeof(p) / sizeof((p)[0])                                                                 \
    }
/* Deliberately not in evaluation order: the plan orders it. */
static const budget_sum_def chart[] = {
    DEF("Resultat inkl. projektbevillinger", result_incl),
    DEF("Resultat", result),
    DEF("Driftsresultat", operating),
    DEF("Indtægter i alt", income),
    DEF("Personaleudgifter i alt", staff),
    DEF("Øvrige udgifter i alt", expenses),
    DEF("Kapitalposter i alt", capital),
};
#define N_TOTALS (sizeof chart / sizeof chart[0])

typedef struct leaves {
    const leaf *rows;
    size_t n;
    bool expected;
    const char *skip; /* a line left out */
    const char *revised;
    int64_t revised_to;
} leaves;

static bool leaf_of(void *ctx, const char *name, int64_t *amount)
{
    const leaves *l = ctx;
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->rows[i].line, name) == 0) {
            if (l->skip && strcmp(l->skip, name) == 0)
                return false;
            *amount = KR(l->expected ? l->rows[i].expected : l->rows[i].budget);
            if (l->revised && strcmp(l->revised, name) == 0)
                *amount = l->revised_to;
            return true;
        }
    return false;
}

static int64_t total_of(const budget_sums *sums, const int64_t *values, const char *name)
{
    long at = budget_sums_find(sums, name);
    assert_true(at >= 0);
    return values[at];
}

static void test_chart_rolls_up_the_published_totals(void **unused)
{
    budget_sums sums;
    hs_error error = {0};
    assert_int_equal(budget_sums_plan(chart, N_TOTALS, "total", &sums, &error), HS_OK);
    int64_t b[N_TOTALS], e[N_TOTALS];
    bool bp[N_TOTALS], ep[N_TOTALS];
    leaves lb = {table, N_LEAVES, false, NULL, NULL, 0}, le = {table, N_LEAVES, true, NULL, NULL, 0};
    assert_int_equal(budget_sums_eval(&sums, leaf_of, &lb, b, bp, &error), HS_OK);
    assert_int_equal(budget_sums_eval(&sums, leaf_of, &le, e, ep, &error), HS_OK);
    for (size_t i = 0; i < N_TOTALS; i++)
        assert_true(bp[i] && ep[i]);
    /* Budget / expected, DKK: income -285.4 / -285.7 mio., staff 229.1 / 227.5, other expenses 102.5 / 92.9,
     * operating result 46.2 / 34.7 (printed), capital items -7.0 / -15.9 (printed), result 39.2 / 18.8,
     * result incl. project grants 42.2 / 21.8 (printed). */
    assert_int_equal(total_of(&sums, b, "Indtægter i alt"), KR(-285400000));
    assert_int_equal(total_of(&sums, e, "Indtægter i alt"), KR(-285700000));
    assert_int_equal(total_of(&sums, b, "Personaleudgifter i alt"), KR(229100000));
    assert_int_equal(total_of(&sums, e, "Personaleudgifter i alt"), KR(227500000));
    assert_int_equal(total_of(&sums, b, "Øvrige udgifter i alt"), KR(102500000));
    assert_int_equal(total_of(&sums, e, "Øvrige udgifter i alt"), KR(92900000));
    assert_int_equal(total_of(&sums, b, "Driftsresultat"), KR(46200000));
    assert_int_equal(total_of(&sums, e, "Driftsresultat"), KR(34700000));
    assert_int_equal(total_of(&sums, b, "Kapitalposter i alt"), KR(-7000000));
    assert_int_equal(total_of(&sums, e, "Kapitalposter i alt"), KR(-15900000));
    assert_int_equal(total_of(&sums, b, "Resultat"), KR(39200000));
    assert_int_equal(total_of(&sums, e, "Resultat"), KR(18800000));
    assert_int_equal(total_of(&sums, b, "Resultat inkl. projektbevillinger"), KR(42200000));
    assert_int_equal(total_of(&sums, e, "Resultat inkl. projektbevillinger"), KR(21800000));

    /* The variances as printed: operating result +11.5 mio. (improvement), result incl. project grants
     * +20.4 mio.; capital items -7.0 - -15.9 = +8.9 mio. (more capital income); per line, Løn +0.8 mio.
     * (less spent), Kontingent +0.4 mio. (more income). */
    int64_t v;
    assert_true(
        budget_variance(total_of(&sums, b, "Driftsresultat"), total_of(&sums, e, "Driftsresultat"), &v));
    assert_int_equal(v, KR(11500000));
    assert_true(budget_variance(total_of(&sums, b, "Resultat inkl. projektbevillinger"),
                                total_of(&sums, e, "Resultat inkl. projektbevillinger"), &v));
    assert_int_equal(v, KR(20400000));
    assert_true(budget_variance(total_of(&sums, b, "Kapitalposter i alt"),
                                total_of(&sums, e, "Kapitalposter i alt"), &v));
    assert_int_equal(v, KR(8900000));
    assert_true(budget_variance(KR(197200000), KR(196400000), &v));
    assert_int_equal(v, KR(800000));
    assert_true(budget_variance(KR(-152100000), KR(-152500000), &v));
    assert_int_equal(v, KR(400000));
    budget_sums_free(&sums);
}

static void test_printed_totals_checked(void **unused)
{
    int64_t d;
    /* The printed operating result agrees with the computed one to the øre. */
    assert_true(budget_printed_ok(KR(46200000), KR(46200000), 0, &d));
    assert_int_equal(d, 0);
    /* A misprint of 100 000 kr. is a finding; the difference is printed - computed. */
    assert_false(budget_printed_ok(KR(46200000), KR(46300000), 0, &d));
    assert_int_equal(d, KR(100000));
    /* Within a tolerance of 1 kr. either way (rounded papers), beyond it not. */
    assert_true(budget_printed_ok(KR(46200000), KR(46200000) - 100, 100, &d));
    assert_int_equal(d, -100);
    assert_false(budget_printed_ok(KR(46200000), KR(46200000) + 101, 100, &d));
    /* An overflowing difference is a finding, not a wrap. */
    assert_false(budget_printed_ok(INT64_MIN, INT64_MAX, 0, &d));
    assert_int_equal(d, INT64_MAX);
}

static void test_revision_changes_exactly_the_totals_above(void **unused)
{
    budget_sums sums;
    hs_error error = {0};
    assert_int_equal(budget_sums_plan(chart, N_TOTALS, "total", &sums, &error), HS_OK);
    int64_t before[N_TOTALS], after[N_TOTALS];
    bool p[N_TOTALS];
    leaves l = {table, N_LEAVES, true, NULL, NULL, 0};
    assert_int_equal(budget_sums_eval(&sums, leaf_of, &l, before, p, &error), HS_OK);
    l.revised = "Løn";
    l.revised_to = KR(196400000) + KR(1000);
    assert_int_equal(budget_sums_eval(&sums, leaf_of, &l, after, p, &error), HS_OK);
    for (size_t i = 0; i < N_TOTALS; i++) {
        const char *name = chart[i].name;
        bool above = strcmp(name, "Personaleudgifter i alt") == 0 || strcmp(name, "Driftsresultat") == 0 ||
                     strcmp(name, "Resultat") == 0 || strcmp(name, "Resultat inkl. projektbevillinger") == 0;
        assert_int_equal(after[i] - before[i], above ? KR(1000) : 0);
    }
    /* A missing leaf counts as nothing; a total with no part present is absent. */
    static const char *const only_capital[] = {"Kapitalindtægter"};
    static const budget_sum_def small[] = {DEF("Kapital", only_capital)};
    budget_sums s2;
    assert_int_equal(budget_sums_plan(small, 1, "total", &s2, &error), HS_OK);
    l.skip = "Kapitalindtægter";
    int64_t v[1];
    bool pr[1];
    assert_int_equal(budget_sums_eval(&s2, leaf_of, &l, v, pr, &error), HS_OK);
    assert_false(pr[0]);
    assert_true(budget_sums_is_leaf(&sums, "Løn"));
    assert_false(budget_sums_is_leaf(&sums, "Driftsresultat"));
    assert_false(budget_sums_is_leaf(&sums, "Husleje"));
    budget_sums_free(&s2);
    budget_sums_free(&sums);
}

static bool huge_leaf(void *ctx, const char *name, int64_t *amount)
{
    *amount = INT64_MAX / 2 + 1;
    return true;
}

static void test_structures_refused_and_overflow_detected(void **unused)
{
    budget_sums sums;
    hs_error error = {0};
    static const char *const ab[] = {"A", "B"}, *const ba[] = {"B", "x"}, *const self[] = {"S"},
                             *const twice[] = {"x", "x"};
    static const budget_sum_def cycle[] = {DEF("B", ab), DEF("A", ba)};
    assert_int_equal(budget_sums_plan(cycle, 2, "group", &sums, &error), HS_ERR_VALIDATION);
    assert_non_null(strstr(error.message, "cycle"));
    static const budget_sum_def direct[] = {DEF("S", self)};
    assert_int_equal(budget_sums_plan(direct, 1, "group", &sums, &error), HS_ERR_VALIDATION);
    assert_non_null(strstr(error.message, "\"S\" contains itself"));
    static const budget_sum_def dup[] = {DEF("T", ab), DEF("T", ba)};
    assert_int_equal(budget_sums_plan(dup, 2, "total", &sums, &error), HS_ERR_VALIDATION);
    assert_non_null(strstr(error.message, "defined twice"));
    static const budget_sum_def dup_part[] = {DEF("T", twice)};
    assert_int_equal(budget_sums_plan(dup_part, 1, "total", &sums, &error), HS_ERR_VALIDATION);
    static const budget_sum_def empty[] = {{"E", NULL, 0}};
    assert_int_equal(budget_sums_plan(empty, 1, "total", &sums, &error), HS_ERR_VALIDATION);

    static const char *const two[] = {"a", "b"};
    static const budget_sum_def sum2[] = {DEF("T", two)};
    assert_int_equal(budget_sums_plan(sum2, 1, "total", &sums, &error), HS_OK);
    int64_t v[1];
    bool p[1];
    assert_int_equal(budget_sums_eval(&sums, huge_leaf, NULL, v, p, &error), HS_ERR_VALIDATION);
    assert_non_null(strstr(error.message, "\"T\" overflows"));
    budget_sums_free(&sums);

    int64_t r;
    assert_false(budget_add(INT64_MAX, 1, &r));
    assert_false(budget_sub(INT64_MIN, 1, &r));
    assert_false(budget_variance(INT64_MAX, -1, &r));
}

typedef struct unit_amounts {
    const char *const *units;
    const int64_t *amounts;
    size_t n;
} unit_amounts;

static bool unit_leaf(void *ctx, const char *name, int64_t *amount)
{
    const unit_amounts *u = ctx;
    for (size_t i = 0; i < u->n; i++)
        if (strcmp(u->units[i], name) == 0) {
            *amount = u->amounts[i];
            return true;
        }
    return false;
}

static void test_consolidation_sums_members_line_by_line(void **unused)
{
    /* A group of groups: the regions = east + west; membership is the same structure as a chart. */
    static const char *const east[] = {"hovedstaden", "sjaelland"};
    static const char *const west[] = {"nordjylland", "midtjylland", "syddanmark"};
    static const char *const all[] = {"oest", "vest"};
    static const budget_sum_def groups[] = {DEF("regionerne", all), DEF("oest", east), DEF("vest", west)};
    budget_sums sums;
    hs_error error = {0};
    assert_int_equal(budget_sums_plan(groups, 3, "group", &sums, &error), HS_OK);
    /* The budgeted membership fee (152.1 mio. kr.) allocated over the five regions by illustrative
     * population-sized weights, then
     * consolidated again: the group is the whole, to the øre. */
    static const char *const units[] = {"nordjylland", "midtjylland", "syddanmark", "hovedstaden",
                                        "sjaelland"};
    static const int64_t population[] = {591740, 1341770, 1226510, 1883620, 842620};
    int64_t fees[5];
    assert_int_equal(budget_allocate(KR(152100000), population, 5, fees, &error), HS_OK);
    unit_amounts u = {units, fees, 5};
    int64_t v[3];
    bool p[3];
    assert_int_equal(budget_sums_eval(&sums, unit_leaf, &u, v, p, &error), HS_OK);
    assert_int_equal(total_of(&sums, v, "regionerne"), KR(152100000));
    assert_int_equal(total_of(&sums, v, "oest"), fees[3] + fees[4]);
    assert_int_equal(total_of(&sums, v, "vest"), fees[0] + fees[1] + fees[2]);
    /* A member without the line leaves the group present with the others' sum. */
    u.n = 4; /* no sjaelland */
    assert_int_equal(budget_sums_eval(&sums, unit_leaf, &u, v, p, &error), HS_OK);
    assert_int_equal(total_of(&sums, v, "oest"), fees[3]);
    assert_true(p[budget_sums_find(&sums, "oest")]);
    budget_sums_free(&sums);
}

static void test_membership_fee_indexation(void **unused)
{
    /* rate(2024) = (rate(2023) - cut) × (1 + price index) = (25,70 - 0,70) × 1,034 = 25,85 kr. */
    int64_t rate;
    hs_error error = {0};
    assert_int_equal(budget_index(2570, 70, 1034000, &rate, &error), HS_OK);
    assert_int_equal(rate, 2585);
    /* Half away from zero: 0,01 × 1,5 = 0,015 -> 0,02; -0,015 -> -0,02. */
    assert_int_equal(budget_index(1, 0, 1500000, &rate, &error), HS_OK);
    assert_int_equal(rate, 2);
    assert_int_equal(budget_index(-1, 0, 1500000, &rate, &error), HS_OK);
    assert_int_equal(rate, -2);
    assert_int_equal(budget_index(2570, 70, -1, &rate, &error), HS_ERR_VALIDATION);
    assert_int_equal(budget_index(INT64_MAX, 0, 2000000, &rate, &error), HS_ERR_VALIDATION);
    assert_int_equal(budget_index(INT64_MIN, 1, 1000000, &rate, &error), HS_ERR_VALIDATION);
}

static void test_research_pools_phase_in(void **unused)
{
    /* Medicine pool + prevention pool = published total, mio. kr., 2024..2029. */
    static const struct {
        int year;
        int medicine, prevention, total;
    } pools[] = {{2024, 10, 7, 17},  {2025, 22, 8, 30},  {2026, 26, 9, 35},
                 {2027, 30, 10, 40}, {2028, 34, 11, 45}, {2029, 38, 12, 50}};
    static const char *const parts[] = {"Medicinpulje", "Forebyggelsespulje"};
    static const budget_sum_def def[] = {DEF("Forskningspuljer i alt", parts)};
    budget_sums sums;
    hs_error error = {0};
    assert_int_equal(budget_sums_plan(def, 1, "total", &sums, &error), HS_OK);
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) {
        leaf row[] = {{"Medicinpulje", pools[i].medicine * 1000000LL, 0},
                      {"Forebyggelsespulje", pools[i].prevention * 1000000LL, 0}};
        leaves l = {row, 2, false, NULL, NULL, 0};
        int64_t v[1], d;
        bool p[1];
        assert_int_equal(budget_sums_eval(&sums, leaf_of, &l, v, p, &error), HS_OK);
        assert_true(budget_printed_ok(v[0], MIO(pools[i].total), 0, &d));
        /* A schedule printed one million off is caught. */
        assert_false(budget_printed_ok(v[0], MIO(pools[i].total + 1), 0, &d));
        assert_int_equal(d, MIO(1));
        if (i > 0) { /* the phase-in only grows */
            int64_t change;
            double pct;
            assert_true(budget_year_change(MIO(pools[i - 1].total), v[0], &change, &pct));
            assert_true(change > 0);
        }
    }
    /* Year on year: 17 -> 30 is +13 mio., +76.47 %; from zero there is no percentage. */
    int64_t change;
    double pct;
    assert_true(budget_year_change(MIO(17), MIO(30), &change, &pct));
    assert_int_equal(change, MIO(13));
    assert_true(fabs(pct - 1300.0 / 17.0) < 1e-9);
    assert_true(budget_year_change(0, MIO(17), &change, &pct));
    assert_true(isnan(pct));
    /* Against a negative (income) line the percentage is of its magnitude: -152.1 -> -152.5 is -0.26 %. */
    assert_true(budget_year_change(KR(-152100000), KR(-152500000), &change, &pct));
    assert_int_equal(change, KR(-400000));
    assert_true(pct < 0);
    budget_sums_free(&sums);
}

static int64_t sum_of(const int64_t *v, size_t n)
{
    int64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    return s;
}

static void test_allocation_by_largest_remainder(void **unused)
{
    hs_error error = {0};
    int64_t parts[8];
    /* 1/3 each of 100 øre: 34, 33, 33 — the tie goes to the first. */
    static const int64_t thirds[] = {1, 1, 1};
    assert_int_equal(budget_allocate(100, thirds, 3, parts, &error), HS_OK);
    assert_int_equal(parts[0], 34);
    assert_int_equal(parts[1], 33);
    assert_int_equal(parts[2], 33);
    /* Negative amounts (income) mirror positive ones. */
    assert_int_equal(budget_allocate(-100, thirds, 3, parts, &error), HS_OK);
    assert_int_equal(parts[0], -34);
    assert_int_equal(sum_of(parts, 3), -100);
    /* A prime amount over a zero weight and awkward weights: exact, the zero weight gets nothing. */
    static const int64_t awkward[] = {7, 0, 13, 1, 29};
    assert_int_equal(budget_allocate(1000003, awkward, 5, parts, &error), HS_OK);
    assert_int_equal(sum_of(parts, 5), 1000003);
    assert_int_equal(parts[1], 0);
    /* floor(1000003 × 7/50) = 140000 r 21, ×13: 260000 r 39, ×1: 20000 r 3, ×29: 580001 r 37: the 2 øre left
     * go to the remainders 39 and 37. */
    assert_int_equal(parts[0], 140000);
    assert_int_equal(parts[2], 260001);
    assert_int_equal(parts[3], 20000);
    assert_int_equal(parts[4], 580002);
    /* The Danish Regions' budgeted membership fee (152.1 mio. kr.) over the five regions by weights of the
     * size of their populations (illustrative, rounded to tens; not a published key). */
    static const int64_t population[] = {591740, 1341770, 1226510, 1883620, 842620};
    assert_int_equal(budget_allocate(KR(152100000), population, 5, parts, &error), HS_OK);
    assert_int_equal(sum_of(parts, 5), KR(152100000));
    for (size_t i = 0; i < 5; i++) {
        double exact = 15210000000.0 * (double)population[i] / (double)sum_of(population, 5);
        assert_true(fabs((double)parts[i] - exact) < 1.0);
    }
    /* Extremes: the largest amount over weights that need 126-bit products. */
    static const int64_t big[] = {INT64_MAX / 3, INT64_MAX / 3, 1};
    assert_int_equal(budget_allocate(INT64_MAX, big, 3, parts, &error), HS_OK);
    assert_true((uint64_t)parts[0] + (uint64_t)parts[1] + (uint64_t)parts[2] == (uint64_t)INT64_MAX);
    assert_int_equal(budget_allocate(INT64_MIN, thirds, 3, parts, &error), HS_OK);
    assert_true((uint64_t)parts[0] + (uint64_t)parts[1] + (uint64_t)parts[2] == (uint64_t)INT64_MIN);
    /* Refused: a negative weight, all zero, weights summing beyond int64. */
    static const int64_t negative[] = {1, -1}, zeros[] = {0, 0}, huge[] = {INT64_MAX, 1};
    assert_int_equal(budget_allocate(1, negative, 2, parts, &error), HS_ERR_VALIDATION);
    assert_int_equal(budget_allocate(1, zeros, 2, parts, &error), HS_ERR_VALIDATION);
    assert_int_equal(budget_allocate(1, huge, 2, parts, &error), HS_ERR_VALIDATION);
    /* Many parts (beyond the small stack buffer): still exact, ties to the lower indexes. */
    int64_t w[100], out[100];
    for (size_t i = 0; i < 100; i++)
        w[i] = 1;
    assert_int_equal(budget_allocate(12345, w, 100, out, &error), HS_OK);
    assert_int_equal(sum_of(out, 100), 12345);
    assert_int_equal(out[44], 124);
    assert_int_equal(out[45], 123);
}

static void test_savings_against_the_pro_rata_target(void **unused)
{
    /* 1 bn kr. over 2021..2025 (from the 2020 level), "200 mio. a year"; 2021: 344 = 139 lasting + 205
     * one-off, ahead by 144; a 2022 of 40 puts the cumulative 384 behind the 400 due. */
    budget_savings_year years[] = {{.year = 2022, .lasting = MIO(40)},
                                   {.year = 2021, .lasting = MIO(139), .one_off = MIO(205)}};
    hs_error error = {0};
    assert_int_equal(budget_savings(MIO(1000), 2021, 2025, years, 2, &error), HS_OK);
    assert_int_equal(years[1].realised, MIO(344));
    assert_int_equal(years[1].target, MIO(200));
    assert_int_equal(years[1].cumulative_target, MIO(200));
    assert_int_equal(years[1].gap, MIO(144));
    assert_false(years[1].behind);
    assert_int_equal(years[0].cumulative, MIO(384));
    assert_int_equal(years[0].cumulative_target, MIO(400));
    assert_int_equal(years[0].gap, MIO(-16));
    assert_true(years[0].behind);
    /* Over the six years 2020..2025 the shares still sum to exactly 1 bn: 166 666 666,67 kr. four times and
     * ,66 twice. */
    budget_savings_year all[6];
    for (int i = 0; i < 6; i++)
        all[i] = (budget_savings_year){.year = 2020 + i};
    assert_int_equal(budget_savings(MIO(1000), 2020, 2025, all, 6, &error), HS_OK);
    int64_t s = 0;
    for (int i = 0; i < 6; i++)
        s += all[i].target;
    assert_int_equal(s, MIO(1000));
    assert_int_equal(all[0].target, 16666666667);
    assert_int_equal(all[5].target, 16666666666);
    assert_int_equal(all[5].cumulative_target, MIO(1000));
    /* Refused: a year outside the period, twice, negative savings, an empty period. */
    budget_savings_year bad[] = {{.year = 2026}};
    assert_int_equal(budget_savings(MIO(1000), 2021, 2025, bad, 1, &error), HS_ERR_VALIDATION);
    budget_savings_year twice[] = {{.year = 2021}, {.year = 2021}};
    assert_int_equal(budget_savings(MIO(1000), 2021, 2025, twice, 2, &error), HS_ERR_VALIDATION);
    budget_savings_year neg[] = {{.year = 2021, .one_off = -1}};
    assert_int_equal(budget_savings(MIO(1000), 2021, 2025, neg, 1, &error), HS_ERR_VALIDATION);
    assert_int_equal(budget_savings(MIO(1000), 2025, 2021, NULL, 0, &error), HS_ERR_VALIDATION);
}

static void test_amounts_as_text(void **unused)
{
    int64_t ore;
    hs_error error = {0};
    static const struct {
        const char *text;
        int64_t ore;
    } good[] = {
        {"-152100000", KR(-152100000)},
        {"-152.100.000", KR(-152100000)},
        {"25,85", 2585},
        {"25.85", 2585},
        {"-1.234,5", -123450},
        {"\xE2\x88\x92"
         "7.000.000",
         KR(-7000000)},
        {"0", 0},
        {"+3", 300},
        {"152.100", KR(152100)},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(budget_parse_dkk(good[i].text, &ore, &error), HS_OK);
        assert_int_equal(ore, good[i].ore);
    }
    static const char *const bad[] = {
        "", "-", "1,234", "12.34.5", "1..000", ".5", "1,", "1e6", "abc", "99999999999999999999", "1.00.000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(budget_parse_dkk(bad[i], &ore, &error), HS_ERR_PARSE);
    char buf[32];
    budget_format_dkk(KR(-152100000), buf, sizeof buf);
    assert_string_equal(buf, "-152.100.000");
    budget_format_dkk(2585, buf, sizeof buf);
    assert_string_equal(buf, "25,85");
    budget_format_dkk(INT64_MIN, buf, sizeof buf);
    assert_string_equal(buf, "-92.233.720.368.547.758,08");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chart_rolls_up_the_published_totals),
        cmocka_unit_test(test_printed_totals_checked),
        cmocka_unit_test(test_revision_changes_exactly_the_totals_above),
        cmocka_unit_test(test_structures_refused_and_overflow_detected),
        cmocka_unit_test(test_consolidation_sums_members_line_by_line),
        cmocka_unit_test(test_membership_fee_indexation),
        cmocka_unit_test(test_research_pools_phase_in),
        cmocka_unit_test(test_allocation_by_largest_remainder),
        cmocka_unit_test(test_savings_against_the_pro_rata_target),
        cmocka_unit_test(test_amounts_as_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
