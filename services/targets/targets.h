/* targets: evaluates the health-policy targets of the steering documents (docs/domain.md §5) on indicators.
 * Rules (hs.rules.v1, service "targets") say what a target is — a band around a baseline, a margin over a
 * baseline, growth against a year earlier, an absolute threshold, growth against a base year — and the
 * calculation publishes one TargetStatus per rule x scope x period (hs.target-status.v1) and one Alert per
 * rule x scope (hs.alerts.v1) that fires while the target is missed and resolves when it is met again.
 */
#ifndef TARGETS_H
#define TARGETS_H

#include <stddef.h>

#include "hs/calc.h"

/* The calculation, for the runtime and for `hsctl calc targets`. Inputs: hs.indicators.v1 and the rules of
 * service "targets". Outputs: hs.target-status.v1 (key subject/rule/scope/period) and hs.alerts.v1 (key:
 * the alert's fingerprint). */
extern const hs_calc targets_calc;

/* Figures of the calculation states of one process, for the service's gauges. */
typedef struct targets_stats {
    size_t rules;         /* rules held: every state holds every rule, so the most any state holds */
    size_t facts;         /* facts held, summed over the states */
    size_t alerts_firing; /* alerts whose last state is FIRING, summed */
} targets_stats;

/* Adds the figures of `state` (a targets_calc state) to `stats`. */
void targets_stats_add(const void *state, targets_stats *stats);

#endif
