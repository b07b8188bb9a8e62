/* Period parsing and calendar arithmetic. Every period maps onto a day number (days since 0001-01-01, a
 * Monday in the proleptic Gregorian calendar), which gives ISO weeks, day spans for hs_period_contains and
 * consecutive ordinals without tables or time zones; <time.h> is deliberately not used (mktime depends on
 * the process's time zone and range). The arithmetic is defined for years 1..9999.
 */
#include "hs/period.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#define ARITH_YEAR_MIN 1
#define ARITH_YEAR_MAX 9999

static bool is_leap(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    assert(month >= 1 && month <= 12);
    return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

static int days_in_year(int year)
{
    return is_leap(year) ? 366 : 365;
}

/* Day number of 1 January of `year` (year >= 1), 0001-01-01 being day 0. */
static int64_t year_start(int year)
{
    int64_t y = (int64_t)year - 1;
    return y * 365 + y / 4 - y / 100 + y / 400;
}

/* Day of the year (1-366) of a calendar date. */
static int day_of_year(int year, int month, int day)
{
    int doy = day;
    for (int m = 1; m < month; m++)
        doy += days_in_month(year, m);
    return doy;
}

/* Inverse of day_of_year. */
static void month_and_day(int year, int doy, int *month, int *day)
{
    int m = 1;
    while (m < 12 && doy > days_in_month(year, m)) {
        doy -= days_in_month(year, m);
        m++;
    }
    *month = m;
    *day = doy;
}

/* Day number of the Monday that starts ISO week 1 of `iso_year`: the week holding 4 January. Day 0 is a
 * Monday, so day % 7 is the weekday (0 = Monday) and a Monday's day number is a multiple of 7. */
static int64_t week1_monday(int iso_year)
{
    int64_t jan4 = year_start(iso_year) + 3;
    return jan4 - jan4 % 7;
}

/* 52 or 53: the number of ISO weeks of `iso_year`. */
static int iso_weeks(int iso_year)
{
    return (int)((week1_monday(iso_year + 1) - week1_monday(iso_year)) / 7);
}

/* The calendar year holding day number `day` (>= 0). */
static int year_of_day(int64_t day)
{
    assert(day >= 0);
    int64_t year = day * 400 / 146097 + 1; /* 146097 days in 400 Gregorian years: at most one off */
    while (year > 1 && year_start((int)year) > day)
        year--;
    while (year_start((int)year + 1) <= day)
        year++;
    return (int)year;
}

/* The largest index of `kind` in `year`, or 0 for an unknown kind. */
static int max_index(hs_period_kind kind, int year)
{
    switch (kind) {
    case HS_PERIOD_YEAR: return 1;
    case HS_PERIOD_HALF: return 2;
    case HS_PERIOD_QUARTER: return 4;
    case HS_PERIOD_MONTH: return 12;
    case HS_PERIOD_WEEK: return iso_weeks(year);
    case HS_PERIOD_DAY: return days_in_year(year);
    }
    return 0;
}

/* True when the arithmetic below is defined for `p`. */
static bool in_arith_range(const hs_period *p)
{
    if (!p || p->year < ARITH_YEAR_MIN || p->year > ARITH_YEAR_MAX)
        return false;
    int max = max_index(p->kind, p->year);
    return max > 0 && p->index >= 1 && p->index <= max;
}

bool hs_period_is_valid(const hs_period *p)
{
    return in_arith_range(p) && p->year >= HS_PERIOD_YEAR_MIN && p->year <= HS_PERIOD_YEAR_MAX;
}

int64_t hs_period_ordinal(const hs_period *p)
{
    if (!in_arith_range(p))
        return INT64_MIN;
    int64_t year = p->year;
    switch (p->kind) {
    case HS_PERIOD_YEAR: return year;
    case HS_PERIOD_HALF: return year * 2 + p->index - 1;
    case HS_PERIOD_QUARTER: return year * 4 + p->index - 1;
    case HS_PERIOD_MONTH: return year * 12 + p->index - 1;
    case HS_PERIOD_WEEK: return week1_monday(p->year) / 7 + p->index - 1;
    case HS_PERIOD_DAY: return year_start(p->year) + p->index - 1;
    }
    return INT64_MIN;
}

/* Inverse of hs_period_ordinal for an ordinal within years 1..9999. */
static hs_period from_ordinal(hs_period_kind kind, int64_t ordinal)
{
    hs_period p = {.kind = kind, .year = 0, .index = 1};
    switch (kind) {
    case HS_PERIOD_YEAR: p.year = (int)ordinal; break;
    case HS_PERIOD_HALF:
        p.year = (int)(ordinal / 2);
        p.index = (int)(ordinal % 2) + 1;
        break;
    case HS_PERIOD_QUARTER:
        p.year = (int)(ordinal / 4);
        p.index = (int)(ordinal % 4) + 1;
        break;
    case HS_PERIOD_MONTH:
        p.year = (int)(ordinal / 12);
        p.index = (int)(ordinal % 12) + 1;
        break;
    case HS_PERIOD_WEEK: {
        /* A week belongs to the ISO year of its Thursday. */
        int64_t monday = ordinal * 7;
        p.year = year_of_day(monday + 3);
        p.index = (int)((monday - week1_monday(p.year)) / 7) + 1;
        break;
    }
    case HS_PERIOD_DAY:
        p.year = year_of_day(ordinal);
        p.index = (int)(ordinal - year_start(p.year)) + 1;
        break;
    }
    assert(in_arith_range(&p));
    return p;
}

hs_period hs_period_add(const hs_period *p, int64_t steps)
{
    if (!in_arith_range(p))
        return p ? *p : (hs_period){0};
    hs_period first = {.kind = p->kind, .year = ARITH_YEAR_MIN, .index = 1};
    hs_period last = {.kind = p->kind, .year = ARITH_YEAR_MAX, .index = max_index(p->kind, ARITH_YEAR_MAX)};
    int64_t lo = hs_period_ordinal(&first);
    int64_t hi = hs_period_ordinal(&last);
    int64_t ordinal = hs_period_ordinal(p);
    /* Compared against the distance to the ends, so that no sum can overflow. */
    if (steps > 0 && steps > hi - ordinal)
        ordinal = hi;
    else if (steps < 0 && steps < lo - ordinal)
        ordinal = lo;
    else
        ordinal += steps;
    return from_ordinal(p->kind, ordinal);
}

bool hs_period_year_earlier(const hs_period *p, int years, hs_period *out)
{
    if (!in_arith_range(p))
        return false;
    int64_t target = (int64_t)p->year - years;
    if (target < HS_PERIOD_YEAR_MIN || target > HS_PERIOD_YEAR_MAX)
        return false;
    hs_period result = {.kind = p->kind, .year = (int)target, .index = p->index};
    if (p->kind == HS_PERIOD_DAY) {
        int month, day;
        month_and_day(p->year, p->index, &month, &day);
        if (day > days_in_month(result.year, month))
            return false; /* 29 February */
        result.index = day_of_year(result.year, month, day);
    } else if (p->kind == HS_PERIOD_WEEK && p->index > iso_weeks(result.year)) {
        return false;
    }
    *out = result;
    return true;
}

int hs_period_compare(const hs_period *a, const hs_period *b)
{
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    int64_t oa = hs_period_ordinal(a);
    int64_t ob = hs_period_ordinal(b);
    return (oa > ob) - (oa < ob);
}

/* First and last day number covered by a period of a month-based kind: months first_month..last_month. */
static void month_span(int year, int first_month, int last_month, int64_t *first, int64_t *last)
{
    *first = year_start(year) + day_of_year(year, first_month, 1) - 1;
    *last = year_start(year) + day_of_year(year, last_month, days_in_month(year, last_month)) - 1;
}

/* The days a period covers, as day numbers. */
static void day_span(const hs_period *p, int64_t *first, int64_t *last)
{
    *first = *last = 0;
    switch (p->kind) {
    case HS_PERIOD_YEAR: month_span(p->year, 1, 12, first, last); return;
    case HS_PERIOD_HALF: month_span(p->year, p->index * 6 - 5, p->index * 6, first, last); return;
    case HS_PERIOD_QUARTER: month_span(p->year, p->index * 3 - 2, p->index * 3, first, last); return;
    case HS_PERIOD_MONTH: month_span(p->year, p->index, p->index, first, last); return;
    case HS_PERIOD_WEEK:
        *first = week1_monday(p->year) + (int64_t)(p->index - 1) * 7;
        *last = *first + 6;
        return;
    case HS_PERIOD_DAY:
        *first = year_start(p->year) + p->index - 1;
        *last = *first;
        return;
    }
    assert(!"unknown period kind");
}

bool hs_period_contains(const hs_period *outer, const hs_period *inner)
{
    if (!in_arith_range(outer) || !in_arith_range(inner))
        return false;
    int64_t outer_first, outer_last, inner_first, inner_last;
    day_span(outer, &outer_first, &outer_last);
    day_span(inner, &inner_first, &inner_last);
    return inner_first >= outer_first && inner_last <= outer_last;
}

/* `v` (0 <= v < 10^width) as exactly `width` digits, zero-padded. */
static size_t put_digits(char *out, int v, int width)
{
    for (int i = width - 1; i >= 0; i--, v /= 10)
        out[i] = (char)('0' + v % 10);
    return (size_t)width;
}

int hs_period_format(const hs_period *p, char *buf, size_t size)
{
    if (!in_arith_range(p)) {
        if (buf && size > 0)
            buf[0] = '\0';
        return -1;
    }
    /* What "%04d", "%04dQ%d", "%04d-%02d", ... print (the year is 1-9999, every index in range), without
     * printf: a period is formatted for every key and status the services write. */
    char text[HS_PERIOD_TEXT_MAX];
    size_t n = put_digits(text, p->year, 4);
    switch (p->kind) {
    case HS_PERIOD_YEAR: break;
    case HS_PERIOD_HALF:
        text[n++] = 'H';
        text[n++] = (char)('0' + p->index);
        break;
    case HS_PERIOD_QUARTER:
        text[n++] = 'Q';
        text[n++] = (char)('0' + p->index);
        break;
    case HS_PERIOD_MONTH:
        text[n++] = '-';
        n += put_digits(text + n, p->index, 2);
        break;
    case HS_PERIOD_WEEK:
        text[n++] = 'W';
        n += put_digits(text + n, p->index, 2);
        break;
    case HS_PERIOD_DAY: {
        int month, day;
        month_and_day(p->year, p->index, &month, &day);
        text[n++] = '-';
        n += put_digits(text + n, month, 2);
        text[n++] = '-';
        n += put_digits(text + n, day, 2);
        break;
    }
    default: return -1;
    }
    text[n] = '\0';
    if (buf && size > 0) { /* as snprintf: truncated to fit, always terminated, the full length returned */
        size_t copied = n < size - 1 ? n : size - 1;
        memcpy(buf, text, copied);
        buf[copied] = '\0';
    }
    return (int)n;
}

/* Reads exactly `n` ASCII digits at `s` into `out`; false if any of them is not a digit. */
static bool read_digits(const char *s, size_t n, int *out)
{
    int value = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        value = value * 10 + (s[i] - '0');
    }
    *out = value;
    return true;
}

/* The reasons quote the text, cut so that a long input cannot crowd out the reason. */
#define PERIOD_QUOTE           "period '%.24s%s'"
#define PERIOD_ARGS(text, len) (text), ((len) > 24 ? "..." : "")

hs_err hs_period_parse(const char *text, hs_period *out, hs_error *error)
{
    if (!text || !*text)
        return hs_error_set(error, HS_ERR_VALIDATION, "period is empty");
    size_t len = strnlen(text, 32);
    hs_period p = {.kind = HS_PERIOD_YEAR, .year = 0, .index = 1};
    int month = 0, day = 0;
    bool form_ok = len >= 4 && read_digits(text, 4, &p.year);
    if (form_ok) {
        switch (len) {
        case 4: break;
        case 6:
            p.kind = text[4] == 'H' ? HS_PERIOD_HALF : HS_PERIOD_QUARTER;
            form_ok = (text[4] == 'H' || text[4] == 'Q') && read_digits(text + 5, 1, &p.index);
            break;
        case 7:
            p.kind = text[4] == 'W' ? HS_PERIOD_WEEK : HS_PERIOD_MONTH;
            form_ok = (text[4] == 'W' || text[4] == '-') && read_digits(text + 5, 2, &p.index);
            break;
        case 10:
            p.kind = HS_PERIOD_DAY;
            form_ok = text[4] == '-' && text[7] == '-' && read_digits(text + 5, 2, &month) &&
                      read_digits(text + 8, 2, &day);
            break;
        default: form_ok = false; break;
        }
    }
    if (!form_ok)
        return hs_error_set(error, HS_ERR_VALIDATION,
                            PERIOD_QUOTE ": expected YYYY, YYYYHn, YYYYQn, YYYY-MM, YYYYWww or YYYY-MM-DD",
                            PERIOD_ARGS(text, len));
    if (p.year < HS_PERIOD_YEAR_MIN || p.year > HS_PERIOD_YEAR_MAX)
        return hs_error_set(error, HS_ERR_VALIDATION, PERIOD_QUOTE ": year must be %d-%d",
                            PERIOD_ARGS(text, len), HS_PERIOD_YEAR_MIN, HS_PERIOD_YEAR_MAX);
    switch (p.kind) {
    case HS_PERIOD_YEAR: break;
    case HS_PERIOD_HALF:
        if (p.index < 1 || p.index > 2)
            return hs_error_set(error, HS_ERR_VALIDATION, PERIOD_QUOTE ": half must be 1-2",
                                PERIOD_ARGS(text, len));
        break;
    case HS_PERIOD_QUARTER:
        if (p.index < 1 || p.index > 4)
            return hs_error_set(error, HS_ERR_VALIDATION, PERIOD_QUOTE ": quarter must be 1-4",
                                PERIOD_ARGS(text, len));
        break;
    case HS_PERIOD_MONTH:
        if (p.index < 1 || p.index > 12)
            return hs_error_set(error, HS_ERR_VALIDATION, PERIOD_QUOTE ": month must be 01-12",
                                PERIOD_ARGS(text, len));
        break;
    case HS_PERIOD_WEEK:
        if (p.index < 1 || p.index > 53)
            return hs_error_set(error, HS_ERR_VALIDATION, PERIOD_QUOTE ": week must be 01-53",
                                PERIOD_ARGS(text, len));
        if (p.index > iso_weeks(p.year))
            return hs_error_set(error, HS_ERR_VALIDATION, PERIOD_QUOTE ": %d has only %d ISO weeks",
                                PERIOD_ARGS(text, len), p.year, iso_weeks(p.year));
        break;
    case HS_PERIOD_DAY:
        if (month < 1 || month > 12)
            return hs_error_set(error, HS_ERR_VALIDATION, PERIOD_QUOTE ": month must be 01-12",
                                PERIOD_ARGS(text, len));
        if (day < 1 || day > days_in_month(p.year, month))
            return hs_error_set(error, HS_ERR_VALIDATION, PERIOD_QUOTE ": day must be 01-%02d in %04d-%02d",
                                PERIOD_ARGS(text, len), days_in_month(p.year, month), p.year, month);
        p.index = day_of_year(p.year, month, day);
        break;
    }
    assert(hs_period_is_valid(&p));
    *out = p;
    return HS_OK;
}

/* Day number (days since 0001-01-01, as above) of 1970-01-01: the origin of the public day numbers. */
#define UNIX_EPOCH_DAY 719162
static_assert(UNIX_EPOCH_DAY == 1969 * 365 + 1969 / 4 - 1969 / 100 + 1969 / 400, "year_start(1970)");

bool hs_period_days(const hs_period *p, int64_t *first, int64_t *end)
{
    *first = *end = 0;
    if (!in_arith_range(p))
        return false;
    int64_t last;
    day_span(p, first, &last);
    *first -= UNIX_EPOCH_DAY;
    *end = last + 1 - UNIX_EPOCH_DAY;
    return true;
}

int hs_day_rfc3339(int64_t day, char *buf, size_t size)
{
    /* 0001-01-01 .. 10000-01-01, which still prints in four digits plus one */
    if (day < -UNIX_EPOCH_DAY || day > year_start(ARITH_YEAR_MAX + 1) - UNIX_EPOCH_DAY) {
        if (buf && size > 0)
            buf[0] = '\0';
        return -1;
    }
    int64_t n = day + UNIX_EPOCH_DAY;
    int year = year_of_day(n), month, dom;
    month_and_day(year, (int)(n - year_start(year) + 1), &month, &dom);
    return snprintf(buf, size, "%04d-%02d-%02dT00:00:00Z", year, month, dom);
}

int hs_period_end_rfc3339(const hs_period *p, char *buf, size_t size)
{
    int64_t first, end;
    if (!hs_period_days(p, &first, &end))
        return -1;
    return hs_day_rfc3339(end, buf, size);
}

bool hs_period_unix_bounds(const hs_period *p, int64_t *start, int64_t *end)
{
    int64_t first, end_day;
    if (!hs_period_days(p, &first, &end_day))
        return false;
    *start = first * 86400;
    *end = end_day * 86400;
    return true;
}
