/* The variation service process: the variation calculation under the runtime, plus its domain gauges
 * (rules, facts and variations held, alerts firing). Everything else — configuration, Kafka, exactly-once,
 * rebuild, dead letters, /metrics — is the runtime's (hs/runtime.h).
 */
#include "hs/runtime.h"
#include "variation.h"

static void variation_metrics(hs_metrics *metrics, void *const *states, size_t count)
{
    variation_stats stats = {0};
    for (size_t i = 0; i < count; i++)
        variation_stats_add(states[i], &stats);
    hs_gauge_set(hs_metrics_gauge(metrics, "hs_variation_rules", "Variation rules held", NULL),
                 (double)stats.rules);
    hs_gauge_set(hs_metrics_gauge(metrics, "hs_variation_facts", "Regional and national facts held", NULL),
                 (double)stats.facts);
    hs_gauge_set(
        hs_metrics_gauge(metrics, "hs_variation_variations", "Indicator x period variations held", NULL),
        (double)stats.variations);
    hs_gauge_set(
        hs_metrics_gauge(metrics, "hs_variation_alerts_firing", "Variation alerts currently FIRING", NULL),
        (double)stats.alerts_firing);
}

int main(int argc, char **argv)
{
    static const hs_service service = {
        .calc = &variation_calc,
        .version = "0.1.0",
        .metrics = variation_metrics,
    };
    return hs_runtime_main(&service, argc, argv);
}
