/* budget: budget and accounts lines rolled up by a chart of accounts (docs/domain.md §12). Rules of service
 * "budget" say what a chart is (BUDGET_CHART: which lines make up which total) and what to watch
 * (BUDGET_VARIANCE: the expected accounts worse than the budget). The calculation publishes one BudgetStatus
 * per unit x line x year x kind on hs.budget-status.v1 — every leaf and every computed total, a printed total
 * checked against the computed one, the variances against the other kinds and the change on the year before
 * — and alerts on hs.alerts.v1: a printed total that does not add up (INFO) and a variance beyond its
 * threshold. The arithmetic is ledger.h.
 */
#ifndef BUDGET_H
#define BUDGET_H

#include <stddef.h>

#include "hs/calc.h"

/* The output topic of budget statuses (its row: common/core/src/topic.c). */
#define HS_TOPIC_BUDGET_STATUS "hs.budget-status.v1"

/* The calculation, for the runtime and for `hsctl calc budget`. Inputs: hs.budget.v1 and the rules of
 * service "budget". Outputs: hs.budget-status.v1 (key unit/line/year/kind) and hs.alerts.v1 (key: the
 * alert's fingerprint). */
extern const hs_calc budget_calc;

/* Figures of the calculation states of one process, for the service's gauges. */
typedef struct budget_stats {
    size_t rules;         /* rules held: every state holds every rule, so the most any state holds */
    size_t lines;         /* budget lines held, summed over the states */
    size_t statuses;      /* statuses published and not deleted, summed */
    size_t alerts_firing; /* alerts whose last state is FIRING, summed */
} budget_stats;

/* Adds the figures of `state` (a budget_calc state) to `stats`. */
void budget_stats_add(const void *state, budget_stats *stats);

#endif
