/* The arithmetic of the budget service (docs/domain.md §12, figures §10.9): money is int64
 * øre (1/100 DKK); income is negative, expenses positive, so a positive result is a deficit. Every sum and
 * difference is checked: an overflow is bad input (HS_ERR_VALIDATION naming what overflowed), never a
 * wrong number. Nothing here allocates except budget_sums_plan (the evaluation order of a structure) and
 * nothing knows of protobuf, Kafka or time: the calculation (budget.c) and the unit tests call it alike.
 *
 * One structure serves the chart of accounts and consolidation alike: a set of named sums, each the sum of
 * named parts, where a part is either another sum or a leaf. A chart's sums are its totals over account
 * lines (operating result = income total + staff total + expenses total); a consolidation's sums are group
 * units over member units. The structure is data (rules); budget_sums_plan checks it (no sum defined twice,
 * no cycle) and orders it so that every sum is computed after its parts.
 */
#ifndef BUDGET_LEDGER_H
#define BUDGET_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hs/err.h"

/* a + b into *out; false (and *out untouched) on int64 overflow. */
bool budget_add(int64_t a, int64_t b, int64_t *out);
/* a - b into *out; false on overflow. */
bool budget_sub(int64_t a, int64_t b, int64_t *out);

/* --- structures of sums: the chart of accounts, consolidation ---------------------------------------------
 */

typedef struct budget_sum_def {
    const char *name;         /* the total line ("Driftsresultat") or the group unit ("regionerne") */
    const char *const *parts; /* the lines / units it adds up: leaves or other sums */
    size_t n_parts;
} budget_sum_def;

/* A checked structure: `order` lists the indexes of `defs` so that every sum comes after the sums among its
 * parts. Borrowed `defs`; owned `order`. */
typedef struct budget_sums {
    const budget_sum_def *defs;
    size_t n_defs;
    size_t *order;
} budget_sums;

/* Checks and orders `n` definitions: a name defined twice, a sum with no parts, a part named twice in one
 * sum, or a cycle (a sum that contains itself, through other sums or directly) is HS_ERR_VALIDATION naming
 * it; what names a "sum" or a "member" in the messages is `what` ("total", "group"). HS_ERR_NOMEM when out
 * of memory. On success budget_sums_free releases it. */
hs_err budget_sums_plan(const budget_sum_def *defs, size_t n, const char *what, budget_sums *out,
                        hs_error *error);
void budget_sums_free(budget_sums *sums);

/* The index of the sum called `name`, or -1. */
long budget_sums_find(const budget_sums *sums, const char *name);
/* Whether `name` is a part of some sum without being a sum itself: a leaf that has a place in the
 * structure. */
bool budget_sums_is_leaf(const budget_sums *sums, const char *name);

/* Looks up the amount of a leaf: true with *amount set when `name` has one, false when it has none. */
typedef bool (*budget_leaf_fn)(void *ctx, const char *name, int64_t *amount);

/* Computes every sum from the leaves: values[i] and present[i] for defs[i] (arrays of n_defs). A sum is
 * present when at least one of its parts is; an absent part counts as nothing. Overflow of any sum is
 * HS_ERR_VALIDATION naming the sum (values then unspecified). */
hs_err budget_sums_eval(const budget_sums *sums, budget_leaf_fn leaf, void *ctx, int64_t *values,
                        bool *present, hs_error *error);

/* --- printed totals, variance, year on year
 * ------------------------------------------------------------------- */

/* A total printed in a paper against the computed one: *difference = printed - computed; true when it is
 * within `tolerance` øre (>= 0) either way, false when it is a finding. Overflow of the difference counts as
 * a finding with *difference = INT64_MAX or INT64_MIN by sign. */
bool budget_printed_ok(int64_t computed, int64_t printed, int64_t tolerance, int64_t *difference);

/* The variance of the steering papers ("Forskel"): budget - other (expected accounts or accounts), so that a
 * positive variance is better than budget whatever the line (more income is more negative, less spending is
 * less positive). False on overflow. Docs/domain.md: operating result 46 200 000 - 34 700 000 = +11 500 000.
 */
bool budget_variance(int64_t budget, int64_t other, int64_t *variance);

/* Year-on-year change of one line: *change = current - previous; *pct = change / |previous| * 100, or NAN
 * (no percentage) when previous is 0. False on overflow. */
bool budget_year_change(int64_t previous, int64_t current, int64_t *change, double *pct);

/* --- indexation
 * ------------------------------------------------------------------------------------------------- */

/* A rate derived from another year's by the published formula (rate - cut) × factor, where factor is the
 * exact decimal factor_millionths / 1 000 000 (1,034 = 1 034 000), rounded half away from zero to the øre.
 * Docs/domain.md: (25,70 - 0,70) × 1,034 = 25,85 kr., i.e. (2570 - 70) × 1 034 000 / 1e6 = 2585 øre.
 * HS_ERR_VALIDATION on a negative factor or overflow. */
hs_err budget_index(int64_t rate, int64_t cut, int64_t factor_millionths, int64_t *out, hs_error *error);

/* --- allocation by key
 * --------------------------------------------------------------------------------------- */

/* Distributes `amount` øre (either sign) over n parts by the weights (each >= 0, at least one > 0) with
 * largest-remainder rounding: each part gets the floor of its exact share of |amount|, and the øre left over
 * go one each to the parts with the largest remainders, ties to the lower index; the sign is then applied.
 * The parts sum exactly to `amount`; a zero weight gets 0. HS_ERR_VALIDATION on a negative weight, all
 * weights zero, or a sum of weights beyond int64. */
hs_err budget_allocate(int64_t amount, const int64_t *weights, size_t n, int64_t *parts, hs_error *error);

/* --- savings against a target ----------------------------------------------------------------------------
 */

typedef struct budget_savings_year {
    int64_t lasting;    /* realised lasting savings of the year, øre (>= 0) */
    int64_t one_off;    /* realised one-off savings of the year, øre (>= 0) */
    int64_t realised;   /* lasting + one_off */
    int64_t target;     /* the year's share of the target */
    int64_t cumulative; /* realised, first_year..year */
    int64_t cumulative_target;
    int64_t gap; /* cumulative - cumulative_target: negative = behind the pro-rata target */
    int year;    /* the year, set by the caller */
    bool behind; /* gap < 0 */
} budget_savings_year;

/* Savings against a target of `total` øre over the years first..last: each year's target is its pro-rata
 * share (budget_allocate of the total over the years with equal weights, so the shares sum exactly to the
 * total: 1 bn over 2021..2025 is 200 mio. a year). `years` (n of them, any order, years inside the range,
 * each at most once, lasting and one_off filled in) get the rest filled in, in place; the cumulative figures
 * count the years of the range up to and including the year, a missing year as no savings.
 * HS_ERR_VALIDATION on an empty range, a year outside it or twice, negative savings or overflow. */
hs_err budget_savings(int64_t total, int first, int last, budget_savings_year *years, size_t n,
                      hs_error *error);

/* --- amounts as text ---------------------------------------------------------------------------------------
 */

/* Reads a DKK amount as the papers and the shared CSV print it into øre: "-152100000", "-152.100.000",
 * "25,85", "-1.234,5", "25.85" (a single dot followed by one or two digits is a decimal point; dots in
 * groups of three are thousands separators), "−" (U+2212) as minus. At most two decimals. HS_ERR_PARSE on
 * anything else or on overflow. */
hs_err budget_parse_dkk(const char *text, int64_t *ore, hs_error *error);

/* Writes øre as DKK the Danish way, "-152.100.000" or "25,85" (decimals only when there are øre), into
 * buf (at least 32 bytes). */
void budget_format_dkk(int64_t ore, char *buf, size_t size);

#endif
