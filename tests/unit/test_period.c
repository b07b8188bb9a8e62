/* Periods are part of every fact's key and the backbone of baselines ("weighted average 2016Q4..2019Q4",
 * "same period a year earlier", "base year 2019"), so parsing must be strict and the arithmetic exact across
 * year boundaries, leap years and ISO years with 53 weeks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "hs/period.h"

static hs_period parsed(const char *text)
{
    hs_period p = {0};
    hs_error error = {0};
    if (hs_period_parse(text, &p, &error) != HS_OK)
        fail_msg("%s: %s", text, error.message);
    return p;
}

/* Whether the period `outer` contains the period `inner` (both parsed). */
static bool contains(const char *outer, const char *inner)
{
    hs_period o = parsed(outer);
    hs_period i = parsed(inner);
    return hs_period_contains(&o, &i);
}

static void assert_formats_as(const hs_period *p, const char *expected)
{
    char buf[HS_PERIOD_TEXT_MAX];
    assert_int_equal(hs_period_format(p, buf, sizeof buf), (int)strlen(expected));
    assert_string_equal(buf, expected);
}

static void assert_rejected(const char *text, const char *reason)
{
    hs_period p = {.kind = HS_PERIOD_YEAR, .year = 1999, .index = 1};
    hs_error error = {0};
    assert_int_equal(hs_period_parse(text, &p, &error), HS_ERR_VALIDATION);
    if (reason)
        assert_string_equal(error.message, reason);
    /* out is untouched on failure */
    assert_int_equal(p.year, 1999);
}

static void test_parse_accepts_each_of_the_six_forms(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        hs_period_kind kind;
        int index; /* a day's is its day of the year */
    } forms[] = {
        {"2023", HS_PERIOD_YEAR, 1},     {"2023H2", HS_PERIOD_HALF, 2},  {"2023Q2", HS_PERIOD_QUARTER, 2},
        {"2023-07", HS_PERIOD_MONTH, 7}, {"2023W05", HS_PERIOD_WEEK, 5}, {"2023-07-14", HS_PERIOD_DAY, 195},
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        hs_period p = parsed(forms[i].text);
        assert_int_equal(p.kind, forms[i].kind);
        assert_int_equal(p.year, 2023);
        assert_int_equal(p.index, forms[i].index);
    }
}

static void test_parse_stores_a_day_as_day_of_year(void **state)
{
    assert_int_equal(parsed("2023-01-01").index, 1);
    assert_int_equal(parsed("2023-07-14").index, 195); /* 181 days in January-June 2023, + 14 */
    assert_int_equal(parsed("2023-12-31").index, 365);
    assert_int_equal(parsed("2024-12-31").index, 366);
}

static void test_parse_reason_names_the_broken_rule(void **state)
{
    assert_rejected("2023Q5", "period '2023Q5': quarter must be 1-4");
    assert_rejected("2023Q0", "period '2023Q0': quarter must be 1-4");
    assert_rejected("2023H3", "period '2023H3': half must be 1-2");
    assert_rejected("2023-13", "period '2023-13': month must be 01-12");
    assert_rejected("2023-00", "period '2023-00': month must be 01-12");
    assert_rejected("2023W00", "period '2023W00': week must be 01-53");
    assert_rejected("2023W54", "period '2023W54': week must be 01-53");
    assert_rejected("2023-07-32", "period '2023-07-32': day must be 01-31 in 2023-07");
    assert_rejected("2023-13-01", "period '2023-13-01': month must be 01-12");
}

static void test_parse_rejects_spaces_case_and_wrong_widths(void **state)
{
    const char *reason_suffix = ": expected YYYY, YYYYHn, YYYYQn, YYYY-MM, YYYYWww or YYYY-MM-DD";
    const char *bad[] = {" 2023",   "2023 ",      "2023q2",    "2023w05",       "2023-7",
                         "23Q2",    "2023Q02",    "2023-7-14", "2023-07-1",     "2023W5",
                         "2023/07", "2023Q",      "20230714",  "2023-07-14T00", "２０２３",
                         "+2023",   "2023-07-1x", "2023Q2\n",  "Q2 2023",       "2023 Q2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        hs_period p;
        hs_error error = {0};
        assert_int_equal(hs_period_parse(bad[i], &p, &error), HS_ERR_VALIDATION);
        assert_non_null(strstr(error.message, reason_suffix));
    }
}

static void test_parse_rejects_years_outside_1900_to_2199(void **state)
{
    assert_rejected("1899", "period '1899': year must be 1900-2199");
    assert_rejected("2200Q1", "period '2200Q1': year must be 1900-2199");
    assert_rejected("0000", "period '0000': year must be 1900-2199");
    assert_int_equal(parsed("1900-01-01").year, 1900);
    assert_int_equal(parsed("2199-12-31").year, 2199);
}

static void test_parse_accepts_week_53_only_in_years_that_have_one(void **state)
{
    /* 2020 and 2026 start on a Wednesday/Thursday: 53 ISO weeks. 2021 and 2023 have 52. */
    assert_int_equal(parsed("2020W53").index, 53);
    assert_int_equal(parsed("2026W53").index, 53);
    assert_int_equal(parsed("2015W53").index, 53);
    assert_rejected("2021W53", "period '2021W53': 2021 has only 52 ISO weeks");
    assert_rejected("2023W53", "period '2023W53': 2023 has only 52 ISO weeks");
}

static void test_parse_accepts_only_real_calendar_days(void **state)
{
    assert_int_equal(parsed("2024-02-29").index, 60);
    assert_int_equal(parsed("2000-02-29").index, 60); /* divisible by 400: leap */
    assert_rejected("2023-02-29", "period '2023-02-29': day must be 01-28 in 2023-02");
    assert_rejected("1900-02-29", "period '1900-02-29': day must be 01-28 in 1900-02"); /* by 100: common */
    assert_rejected("2023-04-31", "period '2023-04-31': day must be 01-30 in 2023-04");
    assert_rejected("2023-07-00", "period '2023-07-00': day must be 01-31 in 2023-07");
}

static void test_parse_rejects_empty_and_null_text(void **state)
{
    assert_rejected("", "period is empty");
    assert_rejected(NULL, "period is empty");
}

static void test_parse_quotes_long_input_cut_short(void **state)
{
    hs_period p;
    hs_error error = {0};
    assert_int_equal(hs_period_parse("2023Q1-and-then-a-lot-more-text-after-it", &p, &error),
                     HS_ERR_VALIDATION);
    assert_non_null(strstr(error.message, "period '2023Q1-and-then-a-lot-mo...'"));
}

static void test_format_round_trips_every_form(void **state)
{
    const char *texts[] = {"2023",    "2023H1",     "2023Q2",  "2023-07",
                           "2023W05", "2023-07-14", "2020W53", "2024-02-29"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        hs_period p = parsed(texts[i]);
        assert_formats_as(&p, texts[i]);
    }
}

static void test_format_returns_needed_length_when_truncated(void **state)
{
    hs_period p = parsed("2023-07-14");
    char small[5];
    assert_int_equal(hs_period_format(&p, small, sizeof small), 10);
    assert_string_equal(small, "2023");
    hs_period invalid = {0};
    char buf[HS_PERIOD_TEXT_MAX] = "x";
    assert_int_equal(hs_period_format(&invalid, buf, sizeof buf), -1);
    assert_string_equal(buf, "");
}

static void test_consecutive_quarters_have_consecutive_ordinals(void **state)
{
    hs_period q4 = parsed("2023Q4");
    hs_period q1 = parsed("2024Q1");
    assert_int_equal(hs_period_ordinal(&q1) - hs_period_ordinal(&q4), 1);
}

static void test_ordinals_are_consecutive_over_three_centuries_of_every_kind(void **state)
{
    /* Walk every period from 1900 to 2199 of each kind: each step adds one to the ordinal, and the
     * formatted text of each step parses back to the same period. 109 573 days, 15 653 weeks. */
    const char *firsts[] = {"1900", "1900H1", "1900Q1", "1900-01", "1900W01", "1900-01-01"};
    const long expected_counts[] = {300, 600, 1200, 3600, 15653, 109573};
    for (size_t k = 0; k < 6; k++) {
        hs_period p = parsed(firsts[k]);
        long count = 1;
        for (;;) {
            hs_period next = hs_period_add(&p, 1);
            if (next.year > HS_PERIOD_YEAR_MAX)
                break;
            assert_int_equal(hs_period_ordinal(&next), hs_period_ordinal(&p) + 1);
            char buf[HS_PERIOD_TEXT_MAX];
            assert_in_range(hs_period_format(&next, buf, sizeof buf), 4, 10);
            hs_period back = parsed(buf);
            assert_int_equal(back.kind, next.kind);
            assert_int_equal(back.year, next.year);
            assert_int_equal(back.index, next.index);
            p = next;
            count++;
        }
        assert_int_equal(count, expected_counts[k]);
    }
}

/* hs_period_add(`from`, `steps`) is `want`. */
static void assert_added(const char *from, int64_t steps, const char *want)
{
    hs_period p = parsed(from);
    hs_period sum = hs_period_add(&p, steps);
    assert_formats_as(&sum, want);
}

static void test_add_crosses_year_boundaries(void **state)
{
    assert_added("2023Q4", 1, "2024Q1");
    assert_added("2024Q1", -1, "2023Q4");
    assert_added("2023-12", 1, "2024-01");
    assert_added("2023H2", 1, "2024H1");
    assert_added("2023-12-31", 1, "2024-01-01");
    assert_added("2024-02-28", 1, "2024-02-29");
}

static void test_add_steps_through_iso_week_53(void **state)
{
    assert_added("2020W52", 1, "2020W53");
    assert_added("2020W53", 1, "2021W01");
    assert_added("2021W52", 1, "2022W01");
}

static void test_baseline_2016q4_to_2019q4_spans_13_quarters(void **state)
{
    /* docs/domain.md §5: the udredningsret baseline is the weighted average Q4 2016 - Q4 2019. */
    hs_period from = parsed("2016Q4");
    hs_period to = parsed("2019Q4");
    assert_int_equal(hs_period_ordinal(&to) - hs_period_ordinal(&from) + 1, 13);
    hs_period last = hs_period_add(&from, 12);
    assert_formats_as(&last, "2019Q4");
}

static void test_add_saturates_instead_of_overflowing(void **state)
{
    hs_period p = parsed("2023Q2");
    hs_period far = hs_period_add(&p, INT64_MAX);
    assert_formats_as(&far, "9999Q4");
    assert_false(hs_period_is_valid(&far)); /* outside the parseable years */
    hs_period early = hs_period_add(&p, INT64_MIN);
    assert_formats_as(&early, "0001Q1");
    hs_period d = parsed("2023-07-14");
    hs_period d_far = hs_period_add(&d, INT64_MAX);
    assert_formats_as(&d_far, "9999-12-31");
}

static void test_year_earlier_gives_the_same_period(void **state)
{
    hs_period out;
    hs_period p = parsed("2023Q2");
    assert_true(hs_period_year_earlier(&p, 1, &out));
    assert_formats_as(&out, "2022Q2");
    /* base year 2019 for the anaesthesia training positions (docs/domain.md §10.6) */
    p = parsed("2023");
    assert_true(hs_period_year_earlier(&p, 4, &out));
    assert_formats_as(&out, "2019");
    p = parsed("2023-03-01");
    assert_true(hs_period_year_earlier(&p, 1, &out));
    assert_formats_as(&out, "2022-03-01");
    p = parsed("2023W05");
    assert_true(hs_period_year_earlier(&p, -3, &out)); /* negative: later */
    assert_formats_as(&out, "2026W05");
}

static void test_year_earlier_of_week_53_without_week_53_is_false(void **state)
{
    hs_period out = {.kind = HS_PERIOD_YEAR, .year = 1999, .index = 1};
    hs_period p = parsed("2020W53");
    assert_false(hs_period_year_earlier(&p, 1, &out)); /* 2019 has 52 weeks */
    assert_int_equal(out.year, 1999);
    assert_true(hs_period_year_earlier(&p, 5, &out)); /* 2015 has 53 */
    assert_formats_as(&out, "2015W53");
}

static void test_year_earlier_of_leap_day_in_common_year_is_false(void **state)
{
    hs_period out;
    hs_period p = parsed("2024-02-29");
    assert_false(hs_period_year_earlier(&p, 1, &out));
    assert_true(hs_period_year_earlier(&p, 4, &out));
    assert_formats_as(&out, "2020-02-29");
}

static void test_year_earlier_outside_the_parseable_years_is_false(void **state)
{
    hs_period out;
    hs_period p = parsed("1900Q1");
    assert_false(hs_period_year_earlier(&p, 1, &out));
    p = parsed("2199Q1");
    assert_false(hs_period_year_earlier(&p, -1, &out));
    assert_false(hs_period_year_earlier(&p, INT32_MIN, &out));
}

static void test_compare_orders_one_kind_by_time(void **state)
{
    hs_period a = parsed("2022Q4");
    hs_period b = parsed("2023Q1");
    assert_true(hs_period_compare(&a, &b) < 0);
    assert_true(hs_period_compare(&b, &a) > 0);
    assert_int_equal(hs_period_compare(&a, &a), 0);
    hs_period w1 = parsed("2020W53");
    hs_period w2 = parsed("2021W01");
    assert_true(hs_period_compare(&w1, &w2) < 0);
}

static void test_compare_orders_across_kinds_by_kind_first(void **state)
{
    hs_period year = parsed("2199");
    hs_period half = parsed("1900H1");
    hs_period quarter = parsed("1900Q1");
    hs_period day = parsed("1900-01-01");
    hs_period week = parsed("2199W01");
    assert_true(hs_period_compare(&year, &half) < 0);
    assert_true(hs_period_compare(&half, &quarter) < 0);
    assert_true(hs_period_compare(&week, &day) < 0);
    assert_true(hs_period_compare(&day, &year) > 0);
}

static void test_year_contains_its_halves_quarters_months_weeks_and_days(void **state)
{
    const char *inside[] = {"2023H1",  "2023H2",  "2023Q2",     "2023-07",
                            "2023W05", "2023W52", "2023-07-14", "2023"};
    for (size_t i = 0; i < sizeof inside / sizeof *inside; i++)
        assert_true(contains("2023", inside[i]));
    const char *outside[] = {"2022Q4", "2024-01", "2024-01-01", "2022"};
    for (size_t i = 0; i < sizeof outside / sizeof *outside; i++)
        assert_false(contains("2023", outside[i]));
}

static void test_half_contains_its_quarters_only(void **state)
{
    assert_true(contains("2023H1", "2023Q2"));
    assert_true(contains("2023H1", "2023-06"));
    assert_false(contains("2023H1", "2023Q3"));
    /* not symmetric */
    assert_false(contains("2023Q2", "2023H1"));
}

static void test_iso_week_is_contained_by_its_days(void **state)
{
    /* 2020W01 runs 2019-12-30 .. 2020-01-05; 2023W05 runs 2023-01-30 .. 2023-02-05. */
    assert_false(contains("2019", "2020W01"));
    assert_false(contains("2020", "2020W01"));
    assert_false(contains("2023-01", "2023W05"));
    assert_true(contains("2023Q1", "2023W05"));
    assert_true(contains("2023W05", "2023-01-30")); /* Monday */
    assert_true(contains("2023W05", "2023-02-05")); /* Sunday */
    assert_false(contains("2023W05", "2023-02-06"));
}

static void test_zeroed_struct_is_not_a_period(void **state)
{
    hs_period zero = {0};
    hs_period y = parsed("2023");
    assert_false(hs_period_is_valid(&zero));
    assert_int_equal(hs_period_ordinal(&zero), INT64_MIN);
    assert_false(hs_period_contains(&y, &zero));
    hs_period same = hs_period_add(&zero, 1);
    assert_int_equal(same.kind, 0);
}

/* The end of a period, as alerts stamp startsAt / endsAt: midnight UTC after its last day. */
static void test_end_rfc3339_is_midnight_after_the_last_day(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"2023Q2", "2023-07-01T00:00:00Z"},     {"2023Q4", "2024-01-01T00:00:00Z"},
        {"2023", "2024-01-01T00:00:00Z"},       {"2023H1", "2023-07-01T00:00:00Z"},
        {"2024-02", "2024-03-01T00:00:00Z"},    {"2023-02", "2023-03-01T00:00:00Z"},
        {"2024-02-29", "2024-03-01T00:00:00Z"}, {"2023-12-31", "2024-01-01T00:00:00Z"},
        {"2023W05", "2023-02-06T00:00:00Z"}, /* Monday 30 January .. Sunday 5 February */
        {"2020W53", "2021-01-04T00:00:00Z"}, /* ISO week 53 of 2020 ends on Sunday 3 January 2021 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hs_period p = parsed(cases[i][0]);
        char buf[HS_RFC3339_MAX];
        assert_int_equal(hs_period_end_rfc3339(&p, buf, sizeof buf), (int)strlen(cases[i][1]));
        assert_string_equal(buf, cases[i][1]);
    }
    hs_period zero = {0};
    char buf[HS_RFC3339_MAX];
    assert_int_equal(hs_period_end_rfc3339(&zero, buf, sizeof buf), -1);
}

/* Civil days (issue 16, item 3: the one place periods become days; targets and capacity each had a copy).
 * The first day of a period, as capacity stamped alerts with until it took the end like every service:
 * 2021Q4 starts on 1 October, ISO week 1 of 2020 on Monday 2019-12-30, a day on itself. */
static void test_days_run_from_the_first_day_to_the_day_after_the_last(void **state)
{
    (void)state;
    const char *cases[][3] = {
        {"2021Q4", "2021-10-01T00:00:00Z", "2022-01-01T00:00:00Z"},
        {"2020W01", "2019-12-30T00:00:00Z", "2020-01-06T00:00:00Z"},
        {"2024-03-01", "2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z"},
        {"2024-02", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"},
        {"2023H2", "2023-07-01T00:00:00Z", "2024-01-01T00:00:00Z"},
        {"1970", "1970-01-01T00:00:00Z", "1971-01-01T00:00:00Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hs_period p = parsed(cases[i][0]);
        int64_t first, end;
        char buf[HS_RFC3339_MAX];
        assert_true(hs_period_days(&p, &first, &end));
        assert_int_equal(hs_day_rfc3339(first, buf, sizeof buf), 20);
        assert_string_equal(buf, cases[i][1]);
        hs_day_rfc3339(end, buf, sizeof buf);
        assert_string_equal(buf, cases[i][2]);
    }
    hs_period epoch = parsed("1970-01-01"), zero = {0};
    int64_t first = -1, end = -1;
    assert_true(hs_period_days(&epoch, &first, &end));
    assert_int_equal(first, 0);
    assert_int_equal(end, 1);
    assert_false(hs_period_days(&zero, &first, &end));
    assert_int_equal(first, 0);
    assert_int_equal(end, 0);
}

/* Every day of 1900..2199 against the C library's own calendar (timegm / gmtime_r): the day number is the
 * Unix day, and its date is the same. The ends of the range: 0001-01-01 and 10000-01-01, nothing beyond. */
static void test_days_agree_with_the_c_library_over_three_centuries(void **state)
{
    (void)state;
    hs_period day = parsed("1900-01-01");
    for (int n = 0; day.year < 2200; n++, day = hs_period_add(&day, 1)) {
        int64_t first, end;
        assert_true(hs_period_days(&day, &first, &end));
        assert_int_equal(end, first + 1);
        time_t t = (time_t)first * 86400;
        struct tm tm;
        assert_non_null(gmtime_r(&t, &tm));
        char want[HS_RFC3339_MAX], got[HS_RFC3339_MAX], text[HS_PERIOD_TEXT_MAX];
        strftime(want, sizeof want, "%Y-%m-%dT00:00:00Z", &tm);
        hs_day_rfc3339(first, got, sizeof got);
        assert_string_equal(got, want);
        hs_period_format(&day, text, sizeof text);
        assert_memory_equal(got, text, 10);
    }
    char buf[HS_RFC3339_MAX];
    hs_period year1 = {HS_PERIOD_DAY, 1, 1};
    int64_t first, end;
    assert_true(hs_period_days(&year1, &first, &end));
    assert_int_equal(hs_day_rfc3339(first, buf, sizeof buf), 20);
    assert_string_equal(buf, "0001-01-01T00:00:00Z");
    assert_int_equal(hs_day_rfc3339(first - 1, buf, sizeof buf), -1);
    assert_string_equal(buf, "");
    hs_period last = {HS_PERIOD_DAY, 9999, 365};
    assert_true(hs_period_days(&last, &first, &end));
    assert_int_equal(hs_day_rfc3339(end, buf, sizeof buf), 21);
    assert_string_equal(buf, "10000-01-01T00:00:00Z");
    assert_int_equal(hs_day_rfc3339(end + 1, buf, sizeof buf), -1);
}

/* hs_period_unix_bounds: the Unix seconds of the first midnight and of the end that hs_period_end_rfc3339
 * writes (checked against timegm), for every kind. */
static void test_unix_bounds_are_the_first_midnight_and_the_end(void **state)
{
    (void)state;
    const struct {
        const char *period;
        int64_t start, end;
    } cases[] = {
        {"2023Q2", 1680307200, 1688169600},     /* 2023-04-01 .. 2023-07-01 */
        {"2022Q1", 1640995200, 1648771200},     /* 2022-01-01 .. 2022-04-01 */
        {"1970", 0, 31536000},                  /* the epoch itself */
        {"2024-02-29", 1709164800, 1709251200}, /* a leap day */
        {"2020W53", 1609113600, 1609718400},    /* Monday 28 December 2020 .. Monday 4 January 2021 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hs_period p = parsed(cases[i].period);
        int64_t start = -1, end = -1;
        assert_true(hs_period_unix_bounds(&p, &start, &end));
        assert_int_equal(start, cases[i].start);
        assert_int_equal(end, cases[i].end);
    }
    hs_period zero = {0};
    int64_t start = 7, end = 7;
    assert_false(hs_period_unix_bounds(&zero, &start, &end));
    assert_int_equal(start, 7);
    assert_int_equal(end, 7);
}

/* hs_period_format writes without printf: the text of every period of every kind in years of one to four
 * digits is what printf's "%04d..." makes of it (a day: the date it parses back to), and a short buffer gets
 * what snprintf would put there. */
static void test_format_matches_printf(void **state)
{
    static const int years[] = {1, 9, 10, 99, 100, 999, 1000, 1900, 2000, 2020, 2023, 2024, 9999};
    static const hs_period_kind kinds[] = {HS_PERIOD_YEAR,  HS_PERIOD_HALF, HS_PERIOD_QUARTER,
                                           HS_PERIOD_MONTH, HS_PERIOD_WEEK, HS_PERIOD_DAY};
    size_t formatted = 0;
    for (size_t y = 0; y < sizeof years / sizeof years[0]; y++)
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            for (int index = 1; index <= 366; index++) {
                hs_period p = {.kind = kinds[k], .year = years[y], .index = index};
                char buf[HS_PERIOD_TEXT_MAX], want[32] = "";
                int n = hs_period_format(&p, buf, sizeof buf);
                if (n < 0)
                    continue;
                formatted++;
                switch (kinds[k]) {
                case HS_PERIOD_YEAR: snprintf(want, sizeof want, "%04d", p.year); break;
                case HS_PERIOD_HALF: snprintf(want, sizeof want, "%04dH%d", p.year, p.index); break;
                case HS_PERIOD_QUARTER: snprintf(want, sizeof want, "%04dQ%d", p.year, p.index); break;
                case HS_PERIOD_MONTH: snprintf(want, sizeof want, "%04d-%02d", p.year, p.index); break;
                case HS_PERIOD_WEEK: snprintf(want, sizeof want, "%04dW%02d", p.year, p.index); break;
                case HS_PERIOD_DAY: {
                    int month = 0, day = 0;
                    assert_int_equal(sscanf(buf + 4, "-%2d-%2d", &month, &day), 2);
                    snprintf(want, sizeof want, "%04d-%02d-%02d", p.year, month, day);
                    if (p.year >= HS_PERIOD_YEAR_MIN && p.year <= HS_PERIOD_YEAR_MAX) {
                        hs_period back = parsed(buf);
                        assert_int_equal(back.index, p.index);
                    }
                    break;
                }
                }
                assert_string_equal(buf, want);
                assert_int_equal(n, (int)strlen(want));
                for (size_t size = 0; size <= strlen(want); size++) {
                    char small[HS_PERIOD_TEXT_MAX] = "##########", expect[HS_PERIOD_TEXT_MAX] = "##########";
                    assert_int_equal(hs_period_format(&p, small, size), n);
                    snprintf(expect, size, "%s", want);
                    assert_memory_equal(small, expect, sizeof small);
                }
            }
    assert_true(formatted > 13 * (1 + 2 + 4 + 12 + 52 + 365));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_accepts_each_of_the_six_forms),
        cmocka_unit_test(test_parse_stores_a_day_as_day_of_year),
        cmocka_unit_test(test_parse_reason_names_the_broken_rule),
        cmocka_unit_test(test_parse_rejects_spaces_case_and_wrong_widths),
        cmocka_unit_test(test_parse_rejects_years_outside_1900_to_2199),
        cmocka_unit_test(test_parse_accepts_week_53_only_in_years_that_have_one),
        cmocka_unit_test(test_parse_accepts_only_real_calendar_days),
        cmocka_unit_test(test_parse_rejects_empty_and_null_text),
        cmocka_unit_test(test_parse_quotes_long_input_cut_short),
        cmocka_unit_test(test_format_round_trips_every_form),
        cmocka_unit_test(test_format_returns_needed_length_when_truncated),
        cmocka_unit_test(test_consecutive_quarters_have_consecutive_ordinals),
        cmocka_unit_test(test_ordinals_are_consecutive_over_three_centuries_of_every_kind),
        cmocka_unit_test(test_add_crosses_year_boundaries),
        cmocka_unit_test(test_add_steps_through_iso_week_53),
        cmocka_unit_test(test_baseline_2016q4_to_2019q4_spans_13_quarters),
        cmocka_unit_test(test_add_saturates_instead_of_overflowing),
        cmocka_unit_test(test_year_earlier_gives_the_same_period),
        cmocka_unit_test(test_year_earlier_of_week_53_without_week_53_is_false),
        cmocka_unit_test(test_year_earlier_of_leap_day_in_common_year_is_false),
        cmocka_unit_test(test_year_earlier_outside_the_parseable_years_is_false),
        cmocka_unit_test(test_compare_orders_one_kind_by_time),
        cmocka_unit_test(test_compare_orders_across_kinds_by_kind_first),
        cmocka_unit_test(test_year_contains_its_halves_quarters_months_weeks_and_days),
        cmocka_unit_test(test_half_contains_its_quarters_only),
        cmocka_unit_test(test_iso_week_is_contained_by_its_days),
        cmocka_unit_test(test_zeroed_struct_is_not_a_period),
        cmocka_unit_test(test_end_rfc3339_is_midnight_after_the_last_day),
        cmocka_unit_test(test_days_run_from_the_first_day_to_the_day_after_the_last),
        cmocka_unit_test(test_days_agree_with_the_c_library_over_three_centuries),
        cmocka_unit_test(test_unix_bounds_are_the_first_midnight_and_the_end),
        cmocka_unit_test(test_format_matches_printf),
    };
    return cmocka_run_group_tests_name("period", tests, NULL, NULL);
}
