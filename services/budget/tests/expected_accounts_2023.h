/* The leaves of the Danish Regions' expected-accounts table for 2023, in DKK (docs/domain.md §10.9), for the
 * budget service's tests. */
#ifndef BUDGET_TEST_EXPECTED_ACCOUNTS_2023_H
#define BUDGET_TEST_EXPECTED_ACCOUNTS_2023_H

#include <stdint.h>

typedef struct leaf {
    const char *line;
    int64_t budget, expected;
} leaf;

static const leaf table[] = {
    {"Kontingent", -152100000, -152500000},
    {"Øvrige kontingenter", -105400000, -105400000},
    {"Øvrige indtægter", -27900000, -27800000},
    {"Løn", 197200000, 196400000},
    {"Øvrige personaleudgifter", 31900000, 31100000},
    {"Drift af huse", 13700000, 16600000},
    {"Fremmede tjenesteydelser", 28600000, 24100000},
    {"Mødeaktiviteter", 9500000, 10200000},
    {"Øvrig drift", 47400000, 38700000},
    {"Tilskud", 3300000, 3300000},
    {"Kapitalindtægter", -7500000, -17800000},
    {"Kapitaludgifter", 500000, 1900000},
    {"Projektbevillinger", 3000000, 3000000},
};
#define N_LEAVES (sizeof table / sizeof table[0])

#endif
