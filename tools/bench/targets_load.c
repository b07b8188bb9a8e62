/* targets_load: the data of the targets benchmark (issue #5; tools/bench/targets runs it). It generates one
 * deterministic scenario — every scope the targets service evaluates by default (the five regions and the
 * nation) x M indicators x Q quarters of IndicatorObservation facts, and 3 rules per indicator for service
 * "targets" — and writes the rules as a JSON array (for `hsctl rules apply` and `hsctl calc --rules`), the
 * facts as CloudEvents JSON lines (for `hsctl calc`, the offline reference), and/or publishes the facts to
 * hs.indicators.v1 through hs_kafka_produce() (registry key, murmur2 partition of the indicator,
 * CloudEvents headers) as fast as the producer goes. With --await N it is the benchmark's finish line
 * instead: a read_committed consumer of hs.target-status.v1 and hs.alerts.v1 from their current ends, which
 * prints the wall-clock time at which the N-th output became visible.
 *
 *   usage: targets_load [--indicators M] [--quarters Q] [--rules FILE] [--facts FILE]
 *                       [--publish --bootstrap B]
 *          targets_load --await N --bootstrap B [--timeout S]
 *
 * The data: indicator "bench.targets.i<n>" is a share in percent (even n, higher is better) or a waiting
 * time in days (odd n, lower is better); its series per scope has a level of its own, a covid shift from
 * 2020Q2 that wears off, and a deterministic wobble, so that targets are met and missed and alerts fire and
 * resolve. Quarters run from 2014Q1 in time order; each quarter is published for every indicator and scope
 * before the next (how the quarterly figures arrive). 2019Q1-Q2 carry `lpr3-transition`, the latest quarter
 * is provisional, every fact has a volume. Each indicator has a BASELINE_BAND rule (2016Q4..2019Q4, band 3,
 * flagged quarters left out, hysteresis 1) and two of BASELINE_MARGIN (2020Q1 + 2), THRESHOLD and GROWTH
 * (3 % on the year before), the last with forPeriods 2 — the kinds and parameters of the akutplan rules.
 */
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "healthsignals/v1/indicator.pb-c.h"
#include "healthsignals/v1/rule.pb-c.h"
#include "benchkit.h"
#include "hs_cli.h"
#include "hs/event.h"
#include "hs/json.h"
#include "hs/kafka.h"
#include "hs/topic.h"

#define OP_TIMEOUT_MS 30000
#define FIRST_YEAR    2014
#define N_SCOPES      6

typedef struct options {
    long indicators, quarters;
    const char *rules_path, *facts_path, *bootstrap;
    bool publish;
    long await_outputs; /* --await N, 0 = not */
    double timeout_s;
} options;

static const struct {
    Healthsignals__V1__ScopeKind kind;
    const char *code;
} scopes[N_SCOPES] = {
    {HEALTHSIGNALS__V1__SCOPE_KIND__REGION, "1081"}, {HEALTHSIGNALS__V1__SCOPE_KIND__REGION, "1082"},
    {HEALTHSIGNALS__V1__SCOPE_KIND__REGION, "1083"}, {HEALTHSIGNALS__V1__SCOPE_KIND__REGION, "1084"},
    {HEALTHSIGNALS__V1__SCOPE_KIND__REGION, "1085"}, {HEALTHSIGNALS__V1__SCOPE_KIND__NATIONAL, "DK"},
};

/* A deterministic number in [0, 1) from three small integers (splitmix64 of their combination). */
static double wobble(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t z = a * 0x9E3779B97F4A7C15u + b * 0xBF58476D1CE4E5B9u + c * 0x94D049BB133111EBu + 1;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

static bool is_percent(long indicator)
{
    return indicator % 2 == 0;
}

static void indicator_code(long indicator, char out[64])
{
    snprintf(out, 64, "bench.targets.i%03ld", indicator);
}

/* The value of `indicator` in scope `s` in quarter `q` (0 = 2014Q1), rounded to one decimal as published
 * figures are. Percent: a level of 72..90, 7 points lower from 2020Q2, recovering 0.4 a quarter; days: a
 * level of 30..45, 12 days longer from 2020Q2, shortening 0.5 a quarter. */
static double fact_value(long indicator, int s, long q)
{
    double level = wobble((uint64_t)indicator, (uint64_t)s, 1000);
    double noise = wobble((uint64_t)indicator, (uint64_t)s, (uint64_t)q) - 0.5;
    long since_covid = q - (2020L - FIRST_YEAR) * 4 - 1; /* quarters since 2020Q2 */
    double v;
    if (is_percent(indicator)) {
        v = 72 + 18 * level + 5 * noise;
        if (since_covid >= 0)
            v -= 7 - 0.4 * (double)(since_covid < 17 ? since_covid : 17);
        v = v > 100 ? 100 : v;
    } else {
        v = 30 + 15 * level + 6 * noise;
        if (since_covid >= 0)
            v += 12 - 0.5 * (double)(since_covid < 24 ? since_covid : 24);
    }
    return (double)(long)(v * 10 + 0.5) / 10;
}

/* Fills `obs` (and the buffers it points into) with fact (indicator, s, q). */
static void fact_fill(Healthsignals__V1__IndicatorObservation *obs, Healthsignals__V1__Scope *scope,
                      char indicator_text[64], char period[16], char **flags, long indicator, int s, long q,
                      long quarters)
{
    static char lpr3[] = "lpr3-transition";
    Healthsignals__V1__IndicatorObservation init = HEALTHSIGNALS__V1__INDICATOR_OBSERVATION__INIT;
    Healthsignals__V1__Scope scope_init = HEALTHSIGNALS__V1__SCOPE__INIT;
    *obs = init;
    *scope = scope_init;
    scope->kind = scopes[s].kind;
    scope->code = (char *)scopes[s].code;
    indicator_code(indicator, indicator_text);
    int year = FIRST_YEAR + (int)(q / 4); /* q < 400 */
    snprintf(period, 16, "%dQ%d", year, (int)(q % 4) + 1);
    obs->indicator = indicator_text;
    obs->scope = scope;
    obs->period = period;
    obs->value = fact_value(indicator, s, q);
    obs->unit = is_percent(indicator) ? HEALTHSIGNALS__V1__UNIT__PERCENT : HEALTHSIGNALS__V1__UNIT__DAYS;
    obs->_volume_case = HEALTHSIGNALS__V1__INDICATOR_OBSERVATION___VOLUME_VOLUME;
    obs->volume =
        (s == N_SCOPES - 1 ? 12000 : 1500) + (int64_t)(900 * wobble((uint64_t)indicator, 7, (uint64_t)q));
    obs->provisional = q == quarters - 1;
    if (year == 2019 && q % 4 < 2) {
        flags[0] = lpr3;
        obs->quality_flags = flags;
        obs->n_quality_flags = 1;
    }
    obs->source = "tools/bench/targets_load";
}

/* --- rules ---------------------------------------------------------------------------------------------- */

enum second_kind { MARGIN, THRESHOLD, GROWTH };

/* Rule `which` (0..2) of `indicator` as a JSON object (a new reference; NULL when out of memory). */
static json_t *rule_json(long indicator, int which)
{
    char subject[64], id[96];
    indicator_code(indicator, subject);
    bool percent = is_percent(indicator);
    Healthsignals__V1__Rule r = HEALTHSIGNALS__V1__RULE__INIT;
    r.service = "targets";
    r.subject = subject;
    r.id = id;
    r.direction = percent ? HEALTHSIGNALS__V1__DIRECTION__HIGHER_IS_BETTER
                          : HEALTHSIGNALS__V1__DIRECTION__LOWER_IS_BETTER;
    r.severity = which == 0 ? HEALTHSIGNALS__V1__SEVERITY__CRITICAL : HEALTHSIGNALS__V1__SEVERITY__WARNING;
    char *baseline_periods[] = {"2020Q1"};
    Healthsignals__V1__Rule__LabelsEntry plan = HEALTHSIGNALS__V1__RULE__LABELS_ENTRY__INIT;
    plan.key = "plan";
    plan.value = "bench";
    Healthsignals__V1__Rule__LabelsEntry *labels[] = {&plan};
    r.labels = labels;
    r.n_labels = 1;
    if (which == 0) {
        snprintf(id, sizeof id, "bench.%s.band", subject + strlen("bench."));
        r.kind = HEALTHSIGNALS__V1__RULE_KIND__BASELINE_BAND;
        r.baseline_from = "2016Q4";
        r.baseline_to = "2019Q4";
        r.band = 3;
        r.hysteresis = 1;
        r.exclude_flagged_from_baseline = true;
        r.summary = "Back to the pre-covid level (weighted 2016Q4-2019Q4, band 3)";
    } else {
        /* Indicator n has two of the three other kinds: (n + which - 1) mod 3 for which = 1, 2. */
        enum second_kind kind = (enum second_kind)((indicator + which - 1) % 3);
        r.for_periods = which == 2 ? 2 : 1;
        switch (kind) {
        case MARGIN:
            snprintf(id, sizeof id, "bench.%s.margin", subject + strlen("bench."));
            r.kind = HEALTHSIGNALS__V1__RULE_KIND__BASELINE_MARGIN;
            r.baseline_periods = baseline_periods;
            r.n_baseline_periods = 1;
            r.margin = 2;
            r.summary = "Within 2 of 2020Q1";
            break;
        case THRESHOLD:
            snprintf(id, sizeof id, "bench.%s.threshold", subject + strlen("bench."));
            r.kind = HEALTHSIGNALS__V1__RULE_KIND__THRESHOLD;
            r._threshold_case = HEALTHSIGNALS__V1__RULE___THRESHOLD_THRESHOLD;
            r.threshold = percent ? 80 : 40;
            r.summary = percent ? "At least 80 %" : "At most 40 days";
            break;
        case GROWTH:
            snprintf(id, sizeof id, "bench.%s.growth", subject + strlen("bench."));
            r.kind = HEALTHSIGNALS__V1__RULE_KIND__GROWTH;
            r.growth_pct = percent ? 3 : -3;
            r.reference_years = 1;
            r.summary = percent ? "3 % above the year before" : "3 % below the year before";
            break;
        }
    }
    return hs_json_from_message(&r.base);
}

static bool write_rules(const options *o)
{
    json_t *rules = json_array();
    for (long i = 0; rules && i < o->indicators; i++)
        for (int which = 0; which < 3; which++) {
            json_t *rule = rule_json(i, which);
            if (!rule || json_array_append_new(rules, rule) != 0) {
                json_decref(rules);
                rules = NULL;
                break;
            }
        }
    if (!rules || json_dump_file(rules, o->rules_path, JSON_INDENT(1)) != 0) {
        fprintf(stderr, "targets_load: cannot write %s\n", o->rules_path);
        json_decref(rules);
        return false;
    }
    json_decref(rules);
    return true;
}

/* --- facts ---------------------------------------------------------------------------------------------- */

/* Bulk load: batch as hsctl publish and tools/bench/load do. */
static const char *const producer_props[] = {"enable.idempotence", "true", "linger.ms", "20", "client.id",
                                             "bench-targets-load", NULL};

/* Writes one fact as a CloudEvents JSON line (the fixed id and time keep the file deterministic). */
static bool write_fact(FILE *out, const Healthsignals__V1__IndicatorObservation *obs)
{
    hs_event_meta meta = {.id = "bench",
                          .source = "/healthsignals/bench-targets-load",
                          .type = "healthsignals.v1.IndicatorObservation",
                          .time = "2024-01-01T00:00:00Z"};
    json_t *event = hs_event_to_json(&meta, NULL, &obs->base);
    bool ok = event && json_dumpf(event, out, JSON_COMPACT) == 0 && fputc('\n', out) != EOF;
    json_decref(event);
    return ok;
}

/* Generates every fact in publishing order, writing and/or publishing each. */
static bool generate_facts(const options *o)
{
    FILE *out = NULL;
    rd_kafka_t *producer = NULL;
    if (o->facts_path && !(out = fopen(o->facts_path, "w"))) {
        perror(o->facts_path);
        return false;
    }
    if (o->publish && !(producer = bench_client_new(RD_KAFKA_PRODUCER, o->bootstrap, producer_props, NULL))) {
        if (out)
            fclose(out);
        return false;
    }
    const hs_topic *topic = hs_topic_find(HS_TOPIC_INDICATORS);
    double start = bench_now_s();
    long sent = 0;
    bool ok = true;
    for (long q = 0; ok && q < o->quarters; q++)
        for (long i = 0; ok && i < o->indicators; i++)
            for (int s = 0; ok && s < N_SCOPES; s++) {
                Healthsignals__V1__IndicatorObservation obs;
                Healthsignals__V1__Scope scope;
                char indicator[64], period[16], *flags[1];
                fact_fill(&obs, &scope, indicator, period, flags, i, s, q, o->quarters);
                if (out)
                    ok = write_fact(out, &obs);
                if (ok && producer) {
                    ok = bench_produce(producer, topic, &obs.base, "/healthsignals/bench-targets-load");
                    if (++sent % 1024 == 0)
                        rd_kafka_poll(producer, 0);
                }
            }
    if (out && fclose(out) != 0)
        ok = false;
    if (producer) {
        if (rd_kafka_flush(producer, OP_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "targets_load: %d records still undelivered\n", rd_kafka_outq_len(producer));
            ok = false;
        }
        double seconds = bench_now_s() - start;
        printf("targets_load: records=%ld seconds=%.3f rate=%.0f delivery_errors=%ld\n", sent, seconds,
               seconds > 0 ? (double)sent / seconds : 0.0, bench_delivery_errors);
        rd_kafka_destroy(producer);
    }
    return ok && !bench_delivery_errors;
}

/* --- the finish line ------------------------------------------------------------------------------------ */

static double wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

/* Adds every partition of `topic` to `list` at its current end. False when the broker cannot say. */
static bool assign_at_end(rd_kafka_t *rk, const char *topic, rd_kafka_topic_partition_list_t *list)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, OP_TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    bool ok = !err && md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0;
    for (int32_t p = 0; ok && p < md->topics[0].partition_cnt; p++) {
        int64_t low = 0, high = 0;
        err = rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, OP_TIMEOUT_MS);
        ok = !err;
        if (ok)
            rd_kafka_topic_partition_list_add(list, topic, p)->offset = high;
    }
    if (!ok)
        fprintf(stderr, "targets_load: the end of %s: %s\n", topic,
                err ? rd_kafka_err2str(err) : "no such topic");
    if (md)
        rd_kafka_metadata_destroy(md);
    return ok;
}

/* Reads both output topics with read_committed from their ends as they are now; prints "ready", then, once
 * `o->await_outputs` records have been read, the wall-clock time of the last. The records of an aborted
 * transaction are never returned, so every record counted was committed. */
static bool await_outputs(const options *o)
{
    rd_kafka_t *rk = bench_committed_reader(o->bootstrap, "bench-targets-await", "bench-targets-await");
    if (!rk)
        return false;
    rd_kafka_topic_partition_list_t *assignment = rd_kafka_topic_partition_list_new(16);
    bool ok = assign_at_end(rk, HS_TOPIC_TARGET_STATUS, assignment) &&
              assign_at_end(rk, HS_TOPIC_ALERTS, assignment) && !rd_kafka_assign(rk, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);
    long seen = 0;
    double last_ms = 0, deadline = bench_now_s() + o->timeout_s;
    if (ok) {
        printf("targets_load: ready\n");
        fflush(stdout);
    }
    while (ok && seen < o->await_outputs && bench_now_s() < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
        if (!msg)
            continue;
        if (!msg->err) {
            seen++;
            last_ms = wall_ms();
        } else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            fprintf(stderr, "targets_load: %s\n", rd_kafka_message_errstr(msg));
        }
        rd_kafka_message_destroy(msg);
    }
    if (ok)
        printf("targets_load: outputs=%ld expected=%ld last_ms=%.0f\n", seen, o->await_outputs, last_ms);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return ok && seen >= o->await_outputs;
}

/* --- main ----------------------------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: targets_load [--indicators M] [--quarters Q] [--rules FILE] [--facts FILE]\n"
            "                    [--publish --bootstrap B]\n"
            "  --indicators M   indicators (default 500); 3 rules each, 6 scopes each\n"
            "  --quarters Q     quarters from 2014Q1 (default 40), 1..400\n"
            "  --rules FILE     write the rules as a JSON array (hsctl rules apply / calc --rules)\n"
            "  --facts FILE     write the facts as CloudEvents JSON lines (hsctl calc)\n"
            "  --publish        publish the facts to hs.indicators.v1 at --bootstrap\n"
            "  --await N        read hs.target-status.v1 and hs.alerts.v1 (read_committed) from their\n"
            "                   ends: print 'ready', then when N outputs were read, the time of the last\n"
            "  --timeout S      give up waiting after S seconds (default 1800)\n");
}

int main(int argc, char **argv)
{
    bench_prog = "targets_load";
    options o = {.indicators = 500, .quarters = 40, .timeout_s = 1800};
    const hs_cli_option table[] = {
        {"indicators", 0, HS_CLI_LONG, &o.indicators},
        {"quarters", 0, HS_CLI_LONG, &o.quarters},
        {"rules", 0, HS_CLI_TEXT, &o.rules_path},
        {"facts", 0, HS_CLI_TEXT, &o.facts_path},
        {"publish", 0, HS_CLI_FLAG, &o.publish},
        {"bootstrap", 0, HS_CLI_TEXT, &o.bootstrap},
        {"await", 0, HS_CLI_LONG, &o.await_outputs},
        {"timeout", 0, HS_CLI_DOUBLE, &o.timeout_s},
        {0},
    };
    hs_cli_parse("targets_load", argc, argv, table, false, usage);
    if (optind != argc || o.indicators <= 0 || o.indicators > 100000 || o.quarters <= 0 || o.quarters > 400 ||
        o.await_outputs < 0 || o.timeout_s <= 0 ||
        !(o.rules_path || o.facts_path || o.publish || o.await_outputs)) {
        usage(stderr);
        return 2;
    }
    o.bootstrap = hs_kafka_bootstrap(o.bootstrap);
    if (o.await_outputs)
        return await_outputs(&o) ? 0 : 1;
    if (o.rules_path && !write_rules(&o))
        return 1;
    if ((o.facts_path || o.publish) && !generate_facts(&o))
        return 1;
    return 0;
}
