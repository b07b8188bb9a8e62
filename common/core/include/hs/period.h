/* Periods: the time a figure covers, as docs/domain.md §2 writes them ("2023", "2023H1", "2023Q2", "2023-07",
 * "2023W05", "2023-07-14"). Parsing is strict, because a period is part of a fact's key; once parsed, a
 * period is a kind plus a consecutive ordinal, so "the next quarter", "the same quarter a year earlier" and
 * "2016Q4..2019Q4" (a baseline range) are integer arithmetic. Calendar: proleptic Gregorian, ISO 8601 weeks.
 */
#ifndef HS_PERIOD_H
#define HS_PERIOD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hs/err.h"

/* Kinds, declared from the longest to the shortest: the order of the enum is the order of
 * hs_period_compare across kinds. */
typedef enum hs_period_kind {
    HS_PERIOD_YEAR = 1, /* "2023" */
    HS_PERIOD_HALF,     /* "2023H1" */
    HS_PERIOD_QUARTER,  /* "2023Q2" */
    HS_PERIOD_MONTH,    /* "2023-07" */
    HS_PERIOD_WEEK,     /* "2023W05": ISO 8601 week of the ISO week-numbering year */
    HS_PERIOD_DAY,      /* "2023-07-14" */
} hs_period_kind;

/* One period, a plain value (no ownership). `index` is 1 for a year, the half 1-2, the quarter 1-4, the
 * month 1-12, the ISO week 1-53 (then `year` is the ISO week-numbering year, which differs from the
 * calendar year around New Year), or the day of the year 1-366 for a day. A zeroed struct is not a
 * period. */
typedef struct hs_period {
    hs_period_kind kind;
    int year;
    int index;
} hs_period;

/* Years hs_period_parse accepts. Arithmetic (add, ordinal, format) works over years 1..9999. */
#define HS_PERIOD_YEAR_MIN 1900
#define HS_PERIOD_YEAR_MAX 2199

/* Buffer size that holds any formatted period: "2023-07-14" and its NUL. */
#define HS_PERIOD_TEXT_MAX 11

/* Parses `text` strictly: exactly one of the six forms, ASCII digits of exact width, uppercase 'H', 'Q'
 * and 'W', no spaces, a year within HS_PERIOD_YEAR_MIN..MAX, week 53 only in a year that has one, real
 * calendar days. On failure returns HS_ERR_VALIDATION with a reason naming what is wrong ("period
 * '2023Q5': quarter must be 1-4") and leaves `out` untouched. `text` may be NULL (reported as empty). */
hs_err hs_period_parse(const char *text, hs_period *out, hs_error *error);

/* True when `p` is a period hs_period_parse could have produced (kind, index and year within range). */
bool hs_period_is_valid(const hs_period *p);

/* Writes the canonical text of `p` into `buf` (at most `size` bytes including the NUL, like snprintf) and
 * returns the length of the text, or -1 when `p` is not a period of years 1..9999. A return >= `size`
 * means the text was truncated; HS_PERIOD_TEXT_MAX is always enough. */
int hs_period_format(const hs_period *p, char *buf, size_t size);

/* A number such that consecutive periods of one kind have consecutive ordinals (2023Q4 + 1 = 2024Q1;
 * 2020W53 + 1 = 2021W01). Ordinals of different kinds are not comparable. `p` must be a period of years
 * 1..9999 (hs_period_is_valid, or a result of hs_period_add); otherwise returns INT64_MIN. */
int64_t hs_period_ordinal(const hs_period *p);

/* The period `steps` periods of the same kind after `p` (before it when negative). The result saturates
 * at the first period of year 1 and the last of year 9999; check hs_period_is_valid before storing it in a
 * message. An invalid `p` is returned unchanged. */
hs_period hs_period_add(const hs_period *p, int64_t steps);

/* The same period `years` years earlier (later when negative): 2023Q2 -> 2022Q2, 2023W05 -> 2022W05. Returns
 * false, leaving `out` untouched, when that period does not exist: ISO week 53 of a year with 52 weeks,
 * 29 February of a common year, or a year outside HS_PERIOD_YEAR_MIN..MAX. */
bool hs_period_year_earlier(const hs_period *p, int years, hs_period *out);

/* Orders periods: by ordinal within one kind (2022Q4 < 2023Q1); across kinds, by kind first in the order of
 * hs_period_kind (every year before every half, ..., every week before every day), then by ordinal. That
 * makes a total order for sorting keys; comparing across kinds says nothing about time. Returns <0, 0, >0. */
int hs_period_compare(const hs_period *a, const hs_period *b);

/* True when every day of `inner` lies within `outer`: 2023 contains 2023H1, 2023Q2, 2023-07, 2023W05 and
 * 2023-07-14; 2023H1 contains 2023Q2; a period contains itself. ISO weeks count by their days, so the
 * week 2020W01 (2019-12-30 .. 2020-01-05) lies in neither 2019 nor 2020, and no month contains 2023W05 if
 * it straddles a month boundary. */
bool hs_period_contains(const hs_period *outer, const hs_period *inner);

/* Civil days: a day is its number of days since 1970-01-01 (negative before), in the proleptic Gregorian
 * calendar, UTC — the one place the services turn periods into days and days into dates. */

/* The days `p` covers, as the half-open range [*first, *end) of day numbers: its first day, and the day after
 * its last (the first day of the next period of its kind). 2023Q2 -> 2023-04-01 .. 2023-07-01; 2020W01 ->
 * Monday 2019-12-30 .. 2020-01-06. Returns false, both 0, when `p` is not a period of years 1..9999. */
bool hs_period_days(const hs_period *p, int64_t *first, int64_t *end);

/* Buffer size that holds any result of hs_day_rfc3339 / hs_period_end_rfc3339 and its NUL. */
#define HS_RFC3339_MAX 32

/* Writes midnight UTC at the start of day number `day` as an RFC 3339 timestamp ("2023-07-01T00:00:00Z") into
 * `buf` like snprintf; returns the length, or -1 (and "" when size > 0) for a day outside the years
 * 1..10000. */
int hs_day_rfc3339(int64_t day, char *buf, size_t size);

/* Writes the end of `p` as an RFC 3339 timestamp, midnight UTC after its last day ("2023Q2" ->
 * "2023-07-01T00:00:00Z"), into `buf` like snprintf; returns the length, or -1 when `p` is not a period of
 * years 1..9999. Services stamp alerts with it (startsAt/endsAt = the end of the period in which an alert
 * fired / resolved), never with the wall clock, so that a replay produces the same bytes. */
int hs_period_end_rfc3339(const hs_period *p, char *buf, size_t size);

/* The first instant of `p` and the instant after its last day, both midnight UTC, in seconds since the Unix
 * epoch ("2023Q2" -> 1680307200 and 1688169600, the end being hs_period_end_rfc3339's); false, leaving both
 * untouched, when `p` is not a period of years 1..9999. The exporter stamps a period's figures with its end
 * and takes the period that ends last as a series' latest. */
bool hs_period_unix_bounds(const hs_period *p, int64_t *start, int64_t *end);

#endif
