/* variation: the regional variation of every indicator in every period (docs/domain.md §7), as the quarterly
 * reports on the national health targets state it — the national figure, the best and the worst region and
 * the variation (spread) between them, each region's rank and its deviation from the nation. Rules of service
 * "variation" raise alerts on hs.alerts.v1: SPREAD (the spread above a threshold) and DEVIATION_FROM_NATIONAL
 * (a region worse than the nation by more than a threshold), with the alert semantics of docs/domain.md §6.
 */
#ifndef VARIATION_H
#define VARIATION_H

#include <stddef.h>

#include "hs/calc.h"

/* The calculation, for the runtime and for `hsctl calc variation`. Inputs: hs.indicators.v1 (facts of
 * scope REGION and NATIONAL; other scopes are not part of a regional comparison and are ignored) and the
 * rules of service "variation". Outputs: hs.variation.v1 (key indicator/period) and hs.alerts.v1 (key: the
 * alert's fingerprint). */
extern const hs_calc variation_calc;

/* Figures of the calculation states of one process, for the service's gauges. */
typedef struct variation_stats {
    size_t rules;         /* rules held: every state holds every rule, so the most any state holds */
    size_t facts;         /* regional and national facts held, summed over the states */
    size_t variations;    /* indicator x period variations held, summed */
    size_t alerts_firing; /* alerts whose last state is FIRING, summed */
} variation_stats;

/* Adds the figures of `state` (a variation_calc state) to `stats`. */
void variation_stats_add(const void *state, variation_stats *stats);

#endif
