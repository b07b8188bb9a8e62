/* The targets service process: the targets calculation under the runtime, plus its domain gauges (rules,
 * facts held, alerts firing). Everything else — configuration, Kafka, exactly-once, rebuild, dead letters,
 * /metrics — is the runtime's (hs/runtime.h).
 */
#include "hs/runtime.h"
#include "targets.h"

static void targets_metrics(hs_metrics *metrics, void *const *states, size_t count)
{
    targets_stats stats = {0};
    for (size_t i = 0; i < count; i++)
        targets_stats_add(states[i], &stats);
    hs_gauge_set(hs_metrics_gauge(metrics, "hs_targets_rules", "Target rules held", NULL),
                 (double)stats.rules);
    hs_gauge_set(hs_metrics_gauge(metrics, "hs_targets_facts", "Indicator facts held", NULL),
                 (double)stats.facts);
    hs_gauge_set(
        hs_metrics_gauge(metrics, "hs_targets_alerts_firing", "Target alerts currently FIRING", NULL),
        (double)stats.alerts_firing);
}

int main(int argc, char **argv)
{
    static const hs_service service = {
        .calc = &targets_calc,
        .version = "0.1.0",
        .metrics = targets_metrics,
    };
    return hs_runtime_main(&service, argc, argv);
}
