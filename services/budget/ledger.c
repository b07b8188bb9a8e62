/* The arithmetic of the budget service (see ledger.h). */
#include "ledger.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Products of an amount (|x| < 2^63) and a weight or factor (< 2^63) need 126 bits. */
__extension__ typedef unsigned __int128 u128;

bool budget_add(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

bool budget_sub(int64_t a, int64_t b, int64_t *out)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

/* --- structures of sums ------------------------------------------------------------------------------------
 */

long budget_sums_find(const budget_sums *sums, const char *name)
{
    for (size_t i = 0; i < sums->n_defs; i++)
        if (strcmp(sums->defs[i].name, name) == 0)
            return (long)i;
    return -1;
}

static long defs_find(const budget_sum_def *defs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(defs[i].name, name) == 0)
            return (long)i;
    return -1;
}

bool budget_sums_is_leaf(const budget_sums *sums, const char *name)
{
    if (budget_sums_find(sums, name) >= 0)
        return false;
    for (size_t i = 0; i < sums->n_defs; i++)
        for (size_t p = 0; p < sums->defs[i].n_parts; p++)
            if (strcmp(sums->defs[i].parts[p], name) == 0)
                return true;
    return false;
}

enum { UNSEEN, VISITING, DONE };

/* Depth-first: appends `at` to order after its sub-sums; a VISITING sum met again is a cycle. The depth is
 * bounded by n (every sum is visited once), and structures are tens of sums. */
static hs_err visit(const budget_sum_def *defs, size_t n, size_t at, unsigned char *mark, size_t *order,
                    size_t *n_order, const char *what, hs_error *error)
{
    if (mark[at] == DONE)
        return HS_OK;
    if (mark[at] == VISITING)
        return hs_error_set(error, HS_ERR_VALIDATION, "%s \"%s\" contains itself (a cycle)", what,
                            defs[at].name);
    mark[at] = VISITING;
    for (size_t p = 0; p < defs[at].n_parts; p++) {
        long sub = defs_find(defs, n, defs[at].parts[p]);
        if (sub >= 0) {
            hs_err err = visit(defs, n, (size_t)sub, mark, order, n_order, what, error);
            if (err)
                return err;
        }
    }
    mark[at] = DONE;
    order[(*n_order)++] = at;
    return HS_OK;
}

hs_err budget_sums_plan(const budget_sum_def *defs, size_t n, const char *what, budget_sums *out,
                        hs_error *error)
{
    *out = (budget_sums){0};
    for (size_t i = 0; i < n; i++) {
        if (defs_find(defs, i, defs[i].name) >= 0)
            return hs_error_set(error, HS_ERR_VALIDATION, "%s \"%s\" is defined twice", what, defs[i].name);
        if (defs[i].n_parts == 0)
            return hs_error_set(error, HS_ERR_VALIDATION, "%s \"%s\" has no parts", what, defs[i].name);
        for (size_t p = 0; p < defs[i].n_parts; p++)
            for (size_t q = 0; q < p; q++)
                if (strcmp(defs[i].parts[p], defs[i].parts[q]) == 0)
                    return hs_error_set(error, HS_ERR_VALIDATION, "%s \"%s\" names \"%s\" twice", what,
                                        defs[i].name, defs[i].parts[p]);
    }
    size_t *order = calloc(n ? n : 1, sizeof *order);
    unsigned char *mark = calloc(n ? n : 1, 1);
    if (!order || !mark) {
        free(order);
        free(mark);
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory planning the %ss", what);
    }
    size_t n_order = 0;
    for (size_t i = 0; i < n; i++) {
        hs_err err = visit(defs, n, i, mark, order, &n_order, what, error);
        if (err) {
            free(order);
            free(mark);
            return err;
        }
    }
    free(mark);
    *out = (budget_sums){.defs = defs, .n_defs = n, .order = order};
    return HS_OK;
}

void budget_sums_free(budget_sums *sums)
{
    free(sums->order);
    *sums = (budget_sums){0};
}

hs_err budget_sums_eval(const budget_sums *sums, budget_leaf_fn leaf, void *ctx, int64_t *values,
                        bool *present, hs_error *error)
{
    for (size_t k = 0; k < sums->n_defs; k++) {
        size_t i = sums->order[k];
        const budget_sum_def *d = &sums->defs[i];
        int64_t total = 0;
        bool any = false;
        for (size_t p = 0; p < d->n_parts; p++) {
            int64_t amount;
            bool has;
            long sub = budget_sums_find(sums, d->parts[p]);
            if (sub >= 0) {
                has = present[sub];
                amount = values[sub];
            } else {
                has = leaf(ctx, d->parts[p], &amount);
            }
            if (!has)
                continue;
            any = true;
            if (!budget_add(total, amount, &total))
                return hs_error_set(error, HS_ERR_VALIDATION, "\"%s\" overflows adding \"%s\"", d->name,
                                    d->parts[p]);
        }
        values[i] = total;
        present[i] = any;
    }
    return HS_OK;
}

/* --- printed totals, variance, year on year
 * ------------------------------------------------------------------- */

bool budget_printed_ok(int64_t computed, int64_t printed, int64_t tolerance, int64_t *difference)
{
    if (!budget_sub(printed, computed, difference)) {
        *difference = printed > computed ? INT64_MAX : INT64_MIN;
        return false;
    }
    if (tolerance < 0)
        tolerance = 0;
    return *difference <= tolerance && *difference >= -tolerance;
}

bool budget_variance(int64_t budget, int64_t other, int64_t *variance)
{
    return budget_sub(budget, other, variance);
}

bool budget_year_change(int64_t previous, int64_t current, int64_t *change, double *pct)
{
    if (!budget_sub(current, previous, change))
        return false;
    /* |previous| as a double is exact enough: a percentage, not money. */
    *pct = previous == 0 ? NAN : (double)*change / fabs((double)previous) * 100.0;
    return true;
}

/* --- indexation
 * ------------------------------------------------------------------------------------------------- */

/* |x| of an int64 as unsigned, INT64_MIN included. */
static uint64_t magnitude(int64_t x)
{
    return x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
}

/* The unsigned magnitude m with sign `negative` as int64, if it fits. */
static bool signed_of(u128 m, bool negative, int64_t *out)
{
    if (negative) {
        if (m > (u128)INT64_MAX + 1)
            return false;
        *out = m == (u128)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
    } else {
        if (m > (u128)INT64_MAX)
            return false;
        *out = (int64_t)m;
    }
    return true;
}

hs_err budget_index(int64_t rate, int64_t cut, int64_t factor_millionths, int64_t *out, hs_error *error)
{
    if (factor_millionths < 0)
        return hs_error_set(error, HS_ERR_VALIDATION, "index factor %lld millionths is negative",
                            (long long)factor_millionths);
    int64_t base;
    if (!budget_sub(rate, cut, &base))
        return hs_error_set(error, HS_ERR_VALIDATION, "rate - cut overflows");
    u128 product = (u128)magnitude(base) * (u128)factor_millionths;
    /* Half away from zero: on the magnitude, then the sign. */
    u128 rounded = (product + 500000) / 1000000;
    if (!signed_of(rounded, base < 0, out))
        return hs_error_set(error, HS_ERR_VALIDATION, "indexed rate overflows");
    return HS_OK;
}

/* --- allocation by key
 * --------------------------------------------------------------------------------------- */

hs_err budget_allocate(int64_t amount, const int64_t *weights, size_t n, int64_t *parts, hs_error *error)
{
    uint64_t total_weight = 0;
    for (size_t i = 0; i < n; i++) {
        if (weights[i] < 0)
            return hs_error_set(error, HS_ERR_VALIDATION, "weight %zu is negative (%lld)", i + 1,
                                (long long)weights[i]);
        if (__builtin_add_overflow(total_weight, (uint64_t)weights[i], &total_weight) ||
            total_weight > (uint64_t)INT64_MAX)
            return hs_error_set(error, HS_ERR_VALIDATION, "the weights add up beyond int64");
    }
    if (total_weight == 0)
        return hs_error_set(error, HS_ERR_VALIDATION, "every weight is zero: nothing to allocate by");
    uint64_t whole = magnitude(amount);
    uint64_t given = 0;
    /* Pass 1: the floors. The remainders are recomputed in pass 2 rather than stored. */
    for (size_t i = 0; i < n; i++) {
        u128 share = (u128)whole * (u128)weights[i];
        uint64_t floor = (uint64_t)(share / total_weight);
        parts[i] = (int64_t)floor; /* <= whole, fits as magnitude below (whole <= 2^63) */
        given += floor;
    }
    uint64_t left = whole - given; /* < number of parts with a non-zero remainder */
    /* Pass 2: one øre each to the largest remainders, ties to the lower index. Each round takes the best
     * part not yet served; `left` < n, so at most n rounds of n. */
    unsigned char *served = NULL;
    unsigned char served_small[64] = {0};
    if (left) {
        served = n <= sizeof served_small ? served_small : calloc(n, 1);
        if (!served)
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory allocating over %zu parts", n);
    }
    for (; left > 0; left--) {
        size_t best = n;
        uint64_t best_rem = 0;
        for (size_t i = 0; i < n; i++) {
            if (served[i])
                continue;
            uint64_t rem = (uint64_t)(((u128)whole * (u128)weights[i]) % total_weight);
            if (best == n || rem > best_rem) {
                best = i;
                best_rem = rem;
            }
        }
        served[best] = 1;
        parts[best] = (int64_t)((uint64_t)parts[best] + 1);
    }
    if (served && served != served_small)
        free(served);
    for (size_t i = 0; i < n; i++) {
        int64_t v;
        if (!signed_of((u128)(uint64_t)parts[i], amount < 0, &v))
            return hs_error_set(error, HS_ERR_INTERNAL, "allocated part %zu does not fit", i + 1);
        parts[i] = v;
    }
    return HS_OK;
}

/* --- savings
 * ------------------------------------------------------------------------------------------------ */

hs_err budget_savings(int64_t total, int first, int last, budget_savings_year *years, size_t n,
                      hs_error *error)
{
    if (last < first)
        return hs_error_set(error, HS_ERR_VALIDATION, "savings period %d..%d is empty", first, last);
    if (total < 0)
        return hs_error_set(error, HS_ERR_VALIDATION, "savings target is negative");
    size_t span = (size_t)(last - first) + 1;
    if (span > 200)
        return hs_error_set(error, HS_ERR_VALIDATION, "savings period %d..%d is longer than 200 years", first,
                            last);
    int64_t weights[200], shares[200] = {0};
    for (size_t i = 0; i < span; i++)
        weights[i] = 1;
    hs_err err = budget_allocate(total, weights, span, shares, error);
    if (err)
        return err;
    for (size_t i = 0; i < n; i++) {
        budget_savings_year *y = &years[i];
        if (y->year < first || y->year > last)
            return hs_error_set(error, HS_ERR_VALIDATION, "savings of %d are outside the period %d..%d",
                                y->year, first, last);
        for (size_t j = 0; j < i; j++)
            if (years[j].year == y->year)
                return hs_error_set(error, HS_ERR_VALIDATION, "savings of %d are given twice", y->year);
        if (y->lasting < 0 || y->one_off < 0)
            return hs_error_set(error, HS_ERR_VALIDATION, "savings of %d are negative", y->year);
        if (!budget_add(y->lasting, y->one_off, &y->realised))
            return hs_error_set(error, HS_ERR_VALIDATION, "savings of %d overflow", y->year);
        y->target = shares[y->year - first];
    }
    for (size_t i = 0; i < n; i++) {
        budget_savings_year *y = &years[i];
        y->cumulative = 0;
        y->cumulative_target = 0;
        for (size_t j = 0; j < n; j++)
            if (years[j].year <= y->year && !budget_add(y->cumulative, years[j].realised, &y->cumulative))
                return hs_error_set(error, HS_ERR_VALIDATION, "cumulative savings to %d overflow", y->year);
        for (int k = first; k <= y->year; k++)
            y->cumulative_target += shares[k - first]; /* a share of total: the sum is at most total */
        if (!budget_sub(y->cumulative, y->cumulative_target, &y->gap))
            return hs_error_set(error, HS_ERR_VALIDATION, "savings gap of %d overflows", y->year);
        y->behind = y->gap < 0;
    }
    return HS_OK;
}

/* --- amounts as text ---------------------------------------------------------------------------------------
 */

hs_err budget_parse_dkk(const char *text, int64_t *ore, hs_error *error)
{
    const char *s = text;
    bool negative = false;
    if (*s == '-' || *s == '+') {
        negative = *s == '-';
        s++;
    } else if (strncmp(s, "\xE2\x88\x92", 3) == 0) { /* U+2212 MINUS SIGN */
        negative = true;
        s += 3;
    }
    /* The decimal separator: a comma; or a dot when it is the only dot and one or two digits follow it. */
    const char *comma = strchr(s, ',');
    const char *dot = strchr(s, '.');
    const char *decimal = comma;
    if (!comma && dot && !strchr(dot + 1, '.')) {
        size_t after = strlen(dot + 1);
        if (after >= 1 && after <= 2)
            decimal = dot;
    }
    uint64_t whole = 0;
    size_t digits = 0, group = 0;
    bool grouped = false;
    const char *p = s;
    for (; *p && p != decimal; p++) {
        if (*p >= '0' && *p <= '9') {
            if (whole > (UINT64_MAX - 9) / 10)
                return hs_error_set(error, HS_ERR_PARSE, "amount \"%s\" is too large", text);
            whole = whole * 10 + (uint64_t)(*p - '0');
            digits++;
            group++;
        } else if (*p == '.' && digits > 0 && (grouped ? group == 3 : group <= 3)) {
            grouped = true;
            group = 0;
        } else {
            return hs_error_set(error, HS_ERR_PARSE, "amount \"%s\" is not a DKK amount", text);
        }
    }
    if (digits == 0 || (grouped && group != 3))
        return hs_error_set(error, HS_ERR_PARSE, "amount \"%s\" is not a DKK amount", text);
    uint64_t cents = 0;
    if (p == decimal) {
        p++;
        size_t n = 0;
        for (; *p; p++, n++) {
            if (*p < '0' || *p > '9' || n >= 2)
                return hs_error_set(error, HS_ERR_PARSE, "amount \"%s\": at most two decimals, digits only",
                                    text);
            cents = cents * 10 + (uint64_t)(*p - '0');
        }
        if (n == 0)
            return hs_error_set(error, HS_ERR_PARSE, "amount \"%s\" has no decimals after its separator",
                                text);
        if (n == 1)
            cents *= 10;
    }
    u128 total = (u128)whole * 100 + cents;
    if (!signed_of(total, negative, ore))
        return hs_error_set(error, HS_ERR_PARSE, "amount \"%s\" is too large", text);
    return HS_OK;
}

void budget_format_dkk(int64_t ore, char *buf, size_t size)
{
    uint64_t m = magnitude(ore);
    uint64_t kr = m / 100, cents = m % 100;
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)kr);
    char grouped[48];
    size_t g = 0;
    if (ore < 0)
        grouped[g++] = '-';
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            grouped[g++] = '.';
        grouped[g++] = digits[i];
    }
    grouped[g] = '\0';
    if (cents)
        snprintf(buf, size, "%s,%02llu", grouped, (unsigned long long)cents);
    else
        snprintf(buf, size, "%s", grouped);
}
