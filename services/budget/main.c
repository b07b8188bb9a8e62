/* The budget service process: the budget calculation under the runtime, plus its domain gauges (rules,
 * lines and statuses held, alerts firing). Everything else — configuration, Kafka, exactly-once, rebuild,
 * dead letters, /metrics — is the runtime's (hs/runtime.h).
 */
#include "budget.h"
#include "hs/runtime.h"

static void budget_metrics(hs_metrics *metrics, void *const *states, size_t count)
{
    budget_stats stats = {0};
    for (size_t i = 0; i < count; i++)
        budget_stats_add(states[i], &stats);
    hs_gauge_set(hs_metrics_gauge(metrics, "hs_budget_rules", "Budget rules held", NULL),
                 (double)stats.rules);
    hs_gauge_set(hs_metrics_gauge(metrics, "hs_budget_lines", "Budget lines held", NULL),
                 (double)stats.lines);
    hs_gauge_set(hs_metrics_gauge(metrics, "hs_budget_statuses", "Budget statuses published", NULL),
                 (double)stats.statuses);
    hs_gauge_set(hs_metrics_gauge(metrics, "hs_budget_alerts_firing", "Budget alerts currently FIRING", NULL),
                 (double)stats.alerts_firing);
}

int main(int argc, char **argv)
{
    static const hs_service service = {
        .calc = &budget_calc,
        .version = "0.1.0",
        .metrics = budget_metrics,
    };
    return hs_runtime_main(&service, argc, argv);
}
