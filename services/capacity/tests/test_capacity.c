/* The capacity calculation: utilisation and escalation levels (docs/domain.md §8), level bounds, hysteresis,
 * for_periods, roll-ups from sums, zero capacity, unknown resources and hospital codes, and alerts that fire
 * and resolve — through the offline driver, as `hsctl calc capacity` runs it, and through the pure helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "calcrun.h"
#include "capacity.h"
#include "hs/alert.h"

#define OBS(resource, kind, code, period, available, occupied)                                               \
    "{\"specversion\":\"1.0\",\"id\":\"t\",\"source\":\"test\",\"type\":\"healthsignals.v1."                 \
    "CapacityObservation\",\"data\":{\"resource\":\"" resource "\",\"scope\":{\"kind\":\"" kind              \
    "\",\"code\":\"" code "\"},\"period\":\"" period "\",\"available\":" available ",\"occupied\":" occupied \
    "}}\n"
#define MEDICAL(day, occupied) OBS("beds.medical", "REGION", "1085", "2023-01-" day, "100", occupied)
/* The tombstone of the medical-beds observation of Sjælland on 2023-01-`day`. */
#define MEDICAL_DELETED(day)                                                                                 \
    "{\"specversion\":\"1.0\",\"id\":\"t\",\"source\":\"test\",\"type\":"                                    \
    "\"healthsignals.v1.CapacityObservation\",\"subject\":\"beds.medical/region:1085/2023-01-" day           \
    "\",\"data\":null}\n"

/* Runs the capacity calculation over `rules` (may be NULL) and `input`; returns the final table (caller
 * frees). */
static char *run(const char *rules, const char *input, hs_offline_stats *stats)
{
    FILE *in = fmemopen((void *)input, strlen(input), "r");
    FILE *rules_in = rules ? fmemopen((void *)rules, strlen(rules), "r") : NULL;
    char *output = NULL;
    size_t output_len = 0;
    FILE *out = open_memstream(&output, &output_len);
    hs_offline_options options = {0};
    hs_error error;
    assert_int_equal(
        hs_offline_run(&capacity_calc, rules_in, "rules", in, "test", out, &options, stats, &error), HS_OK);
    fclose(in);
    if (rules_in)
        fclose(rules_in);
    fclose(out);
    return output;
}

/* The line of the output whose subject is `key`, copied into `line`; fails the test when absent. */
static const char *line_of(const char *out, const char *key, char *line, size_t size)
{
    char needle[512];
    snprintf(needle, sizeof needle, "\"subject\":\"%s\"", key);
    const char *at = strstr(out, needle);
    if (!at)
        fail_msg("no output %s in:\n%s", key, out);
    const char *begin = at, *end = strchr(at, '\n');
    while (begin > out && begin[-1] != '\n')
        begin--;
    snprintf(line, size, "%.*s", (int)(end - begin), begin);
    return line;
}

static void assert_contains(const char *text, const char *part)
{
    if (!strstr(text, part))
        fail_msg("'%s' not in: %s", part, text);
}

/* The line of the alert of `level` ("\"level\":\"4\"" among its labels), copied into `line`; NULL when
 * there is none. */
static const char *level_alert_line(const char *out, unsigned level, char *line, size_t size)
{
    char label[32];
    snprintf(label, sizeof label, "\"level\":\"%u\"", level);
    for (const char *at = strstr(out, "\"type\":\"healthsignals.v1.Alert\""); at;
         at = strstr(at + 1, "\"type\":\"healthsignals.v1.Alert\"")) {
        const char *begin = at, *end = strchr(at, '\n');
        while (begin > out && begin[-1] != '\n')
            begin--;
        snprintf(line, size, "%.*s", (int)(end - begin), begin);
        if (strstr(line, label))
            return line;
    }
    return NULL;
}

/* The alert line of the output (the first, when there are several). */
static const char *alert_line(const char *out, char *line, size_t size)
{
    const char *at = strstr(out, "\"type\":\"healthsignals.v1.Alert\"");
    if (!at)
        return NULL;
    const char *begin = at, *end = strchr(at, '\n');
    while (begin > out && begin[-1] != '\n')
        begin--;
    snprintf(line, size, "%.*s", (int)(end - begin), begin);
    return line;
}

static void test_domain_example_intensive_care_2021q4_is_level_1(void **state)
{
    hs_offline_stats stats;
    char *out = run(NULL, OBS("beds.intensive", "NATIONAL", "DK", "2021Q4", "415", "307"), &stats);
    char line[4096];
    line_of(out, "beds.intensive/national:DK/2021Q4", line, sizeof line);
    /* docs/domain.md §10.7: 307 patients / 415 beds = 74 % (73.98 unrounded), level 1 with the defaults. */
    assert_contains(line, "\"utilisationPct\":73.975903614457");
    assert_contains(line, "\"level\":1,");
    assert_contains(line, "\"levelThresholdsPct\":[85,92,97]");
    assert_contains(line, "\"rule\":\"capacity.default\"");
    assert_null(alert_line(out, line, sizeof line)); /* never fired: no alert */
    double pct = 0;
    assert_true(capacity_utilisation(415, 307, &pct));
    assert_float_equal(pct, 73.98, 0.005);
    free(out);
}

static void test_level_boundaries_exactly_at_thresholds(void **state)
{
    capacity_params p = capacity_params_default();
    assert_int_equal(capacity_threshold_level(100, 84.99, &p), 1);
    assert_int_equal(capacity_threshold_level(100, 85, &p), 2); /* exactly 85 % is level 2 */
    assert_int_equal(capacity_threshold_level(100, 91.99, &p), 2);
    assert_int_equal(capacity_threshold_level(100, 92, &p), 3);  /* exactly 92 % is level 3 */
    assert_int_equal(capacity_threshold_level(100, 97, &p), 4);  /* exactly 97 % is level 4 */
    assert_int_equal(capacity_threshold_level(100, 130, &p), 4); /* overcrowded */
}

static void test_zero_capacity_with_patients_is_level_4(void **state)
{
    capacity_params p = capacity_params_default();
    assert_int_equal(capacity_threshold_level(0, 3, &p), 4);
    assert_int_equal(capacity_threshold_level(0, 0, &p), 1);
    hs_offline_stats stats;
    char *out = run(NULL, OBS("beds.intensive", "REGION", "1081", "2023Q1", "0", "3"), &stats);
    char line[4096];
    line_of(out, "beds.intensive/region:1081/2023Q1", line, sizeof line);
    assert_contains(line, "\"level\":4,");
    assert_contains(line, "\"overcrowded\":true");
    assert_null(strstr(line, "utilisationPct")); /* no division by zero: absent */
    /* Level 4 at once: the alerts of level 3 (WARNING) and of level 4 (CRITICAL) both fire. */
    assert_non_null(level_alert_line(out, 3, line, sizeof line));
    assert_contains(line, "\"state\":\"FIRING\"");
    assert_contains(line, "\"severity\":\"WARNING\"");
    assert_non_null(level_alert_line(out, 4, line, sizeof line));
    assert_contains(line, "\"state\":\"FIRING\"");
    assert_contains(line, "\"severity\":\"CRITICAL\"");
    free(out);
}

static void test_overcrowding_is_allowed_and_reported(void **state)
{
    hs_offline_stats stats;
    char *out = run(NULL, OBS("beds.medical", "REGION", "1082", "2023Q1", "100", "112"), &stats);
    char line[4096];
    line_of(out, "beds.medical/region:1082/2023Q1", line, sizeof line);
    assert_contains(line, "\"utilisationPct\":112");
    assert_contains(line, "\"overcrowded\":true");
    assert_int_equal(stats.rejected, 0);
    free(out);
}

static void test_hysteresis_up_and_down(void **state)
{
    capacity_params p = capacity_params_default(); /* 85 / 92 / 97, hysteresis 2 points */
    /* Hovering around 92: 92 escalates to 3; 91 and 90.5 stay 3 (not below 92 - 2); 89.9 de-escalates to 2;
     * 91 stays 2 (below 92); 97 jumps to 4; 95.5 stays 4; 88 drops to 2 (below 95 and 90, not below 83). */
    const double occupied[] = {92, 91, 90.5, 89.9, 91, 97, 95.5, 88, 82.9};
    const unsigned want[] = {3, 3, 3, 2, 2, 4, 4, 2, 1};
    capacity_point points[9];
    unsigned levels[9];
    for (int i = 0; i < 9; i++)
        points[i] = (capacity_point){.ordinal = i, .available = 100, .occupied = occupied[i]};
    capacity_levels(points, 9, &p, levels);
    for (int i = 0; i < 9; i++)
        if (levels[i] != want[i])
            fail_msg("period %d (%.1f %%): level %u, want %u", i, occupied[i], levels[i], want[i]);
}

static void test_for_periods_delays_escalation_and_a_gap_resets_it(void **state)
{
    capacity_params p = capacity_params_default();
    p.for_periods = 2;
    capacity_point points[] = {{0, 100, 93}, {1, 100, 98}, {2, 100, 98}, {5, 100, 99}, {6, 100, 99}};
    unsigned levels[5];
    capacity_levels(points, 5, &p, levels);
    /* 93 alone: still 1; 93 then 98: two periods above 1, escalate to the lower of them (3); 98 is the first
     * period above 3 → 3; after the gap (ordinal 5) the count restarts: 99 → 3, then 99 again → 4. */
    const unsigned want[] = {1, 3, 3, 3, 4};
    for (int i = 0; i < 5; i++)
        assert_int_equal(levels[i], want[i]);
}

static void test_rollup_from_hospitals_to_region_to_nation_sums_not_averages(void **state)
{
    hs_offline_stats stats;
    /* Region 1084: two hospitals, 9 of 10 beds (90 %) and 50 of 100 (50 %): the mean of the percentages would
     * be 70 %, the sums give 59 / 110 = 53.6 %. The nation: 1084 rolled up, the other four observed. */
    char *out = run(NULL,
                    OBS("beds.surgical", "HOSPITAL", "1084-rigshospitalet", "2023Q1", "10", "9")
                        OBS("beds.surgical", "HOSPITAL", "1084-herlev", "2023Q1", "100", "50")
                            OBS("beds.surgical", "REGION", "1081", "2023Q1", "100", "80")
                                OBS("beds.surgical", "REGION", "1082", "2023Q1", "100", "80")
                                    OBS("beds.surgical", "REGION", "1083", "2023Q1", "100", "80")
                                        OBS("beds.surgical", "REGION", "1085", "2023Q1", "100", "80"),
                    &stats);
    char line[4096];
    line_of(out, "beds.surgical/region:1084/2023Q1", line, sizeof line);
    assert_contains(line, "\"available\":110,\"occupied\":59,\"utilisationPct\":53.636363636363");
    assert_contains(line, "\"rollup\":true");
    assert_contains(line, "\"members\":[\"hospital:1084-herlev\",\"hospital:1084-rigshospitalet\"]");
    /* Nation: (59 + 4 * 80) / (110 + 4 * 100) = 379 / 510 = 74.3 %. */
    line_of(out, "beds.surgical/national:DK/2023Q1", line, sizeof line);
    assert_contains(line, "\"available\":510,\"occupied\":379,");
    assert_contains(line, "\"rollup\":true");
    free(out);
}

static void test_observed_region_wins_over_rollup_and_partial_nation_is_not_rolled_up(void **state)
{
    hs_offline_stats stats;
    char *out = run(NULL,
                    OBS("beds.surgical", "HOSPITAL", "1084-herlev", "2023Q1", "100", "50")
                        OBS("beds.surgical", "REGION", "1084", "2023Q1", "300", "240"),
                    &stats);
    char line[4096];
    line_of(out, "beds.surgical/region:1084/2023Q1", line, sizeof line);
    assert_contains(line, "\"available\":300,\"occupied\":240,");
    assert_null(strstr(line, "rollup"));     /* false: the default, not printed */
    assert_null(strstr(out, "national:DK")); /* one region of five is not the nation */
    free(out);
}

static void test_demo_series_fires_escalates_and_resolves(void **state)
{
    hs_offline_stats stats;
    /* 86 88 90 93 94 96 97.5 98 99 97.25 88 86 % of 100 beds: levels 2 2 2 3 3 3 4 4 4 4 2 2. */
    char *out =
        run(NULL,
            MEDICAL("01", "86") MEDICAL("02", "88") MEDICAL("03", "90") MEDICAL("04", "93")
                MEDICAL("05", "94") MEDICAL("06", "96") MEDICAL("07", "97.5") MEDICAL("08", "98")
                    MEDICAL("09", "99") MEDICAL("10", "97.25") MEDICAL("11", "88") MEDICAL("12", "86"),
            &stats);
    char line[4096];
    assert_contains(line_of(out, "beds.medical/region:1085/2023-01-04", line, sizeof line), "\"level\":3,");
    assert_contains(line_of(out, "beds.medical/region:1085/2023-01-07", line, sizeof line), "\"level\":4,");
    assert_contains(line_of(out, "beds.medical/region:1085/2023-01-11", line, sizeof line),
                    "\"changePctPoints\":-9.25");
    assert_contains(line, "\"level\":2,");
    /* The level-3 alert (WARNING) fired on 01-04, the level-4 one (CRITICAL) on 01-07; both resolved 01-11.
     * startsAt / endsAt are the ends of those days, as every service's (issue 16, item 3: capacity took
     * their first days, 01-04 / 01-07 .. 01-11, where targets and variation take the ends). */
    assert_non_null(level_alert_line(out, 3, line, sizeof line));
    assert_contains(line, "\"state\":\"RESOLVED\"");
    assert_contains(line, "\"severity\":\"WARNING\"");
    assert_contains(line, "\"startsAt\":\"2023-01-05T00:00:00Z\"");
    assert_contains(line, "\"endsAt\":\"2023-01-12T00:00:00Z\"");
    /* As it resolved (Alertmanager keeps a resolved alert so): 01-11 at 88 %, not the later 01-12 at 86 %. */
    assert_contains(line, "\"period\":\"2023-01-11\"");
    assert_contains(line, "\"value\":88,");
    assert_contains(line, "\"alertname\":\"CapacityEscalation\"");
    assert_non_null(level_alert_line(out, 4, line, sizeof line));
    assert_contains(line, "\"state\":\"RESOLVED\"");
    assert_contains(line, "\"severity\":\"CRITICAL\"");
    assert_contains(line, "\"startsAt\":\"2023-01-08T00:00:00Z\"");
    assert_contains(line, "\"endsAt\":\"2023-01-12T00:00:00Z\"");
    free(out);
}

/* Issue 14, item 4: capacity alerts carried level and severity as labels, so an alert's identity changed as
 * it escalated, and a subscriber that knows an alert by its labels, as Alertmanager does, ended with ghosts.
 * Every record of one fingerprint carries the same labels, and such a subscriber's active alerts are the
 * table's firing ones after every change. */
static void test_escalation_never_changes_an_alerts_labels(void **state)
{
    /* 86 .. 99 .. 88 % of 100 beds in 1085: levels 2 2 2 3 3 3 4 4 4 4 2; 1084 at level 4 on 01-08. */
    calcrun r =
        calcrun_run(&capacity_calc, NULL,
                    MEDICAL("01", "86") MEDICAL("02", "88") MEDICAL("03", "90") MEDICAL("04", "93")
                        MEDICAL("05", "94") MEDICAL("06", "96") MEDICAL("07", "97.5") MEDICAL("08", "98")
                            OBS("beds.medical", "REGION", "1084", "2023-01-08", "100", "99")
                                MEDICAL("09", "99") MEDICAL("10", "97.25") MEDICAL("11", "88"),
                    true);
    json_t *labels_of = json_object(); /* fingerprint -> labels of its first record */
    json_t *active = json_object();    /* the subscriber: labels (as text) -> 1 while firing */
    json_t *firing = json_object();    /* the table: fingerprint -> 1 while firing */
    size_t alerts = 0, most_active = 0;
    char *save = NULL, *copy = strdup(r.text);
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *event = json_loads(line, 0, NULL);
        json_t *data = json_object_get(event, "data");
        if (strcmp(json_string_value(json_object_get(event, "type")), "healthsignals.v1.Alert") == 0) {
            alerts++;
            const char *fp = json_string_value(json_object_get(data, "fingerprint"));
            json_t *labels = json_object_get(data, "labels");
            json_t *first = json_object_get(labels_of, fp);
            if (!first)
                json_object_set(labels_of, fp, labels);
            else if (!json_equal(first, labels))
                fail_msg("alert %s changed its labels: %s -> %s", fp, json_dumps(first, JSON_SORT_KEYS),
                         json_dumps(labels, JSON_SORT_KEYS));
            char *identity = json_dumps(labels, JSON_SORT_KEYS | JSON_COMPACT);
            bool is_firing = strcmp(json_string_value(json_object_get(data, "state")), "FIRING") == 0;
            if (is_firing) {
                json_object_set_new(active, identity, json_true());
                json_object_set_new(firing, fp, json_true());
            } else {
                json_object_del(active, identity);
                json_object_del(firing, fp);
            }
            free(identity);
            if (json_object_size(active) != json_object_size(firing))
                fail_msg("after alert record %zu: %zu active by labels, %zu firing", alerts,
                         json_object_size(active), json_object_size(firing));
            most_active = json_object_size(active) > most_active ? json_object_size(active) : most_active;
        }
        json_decref(event);
    }
    free(copy);
    assert_int_equal(json_object_size(labels_of), 4); /* levels 3 and 4 of two scopes */
    assert_int_equal(most_active, 4);                 /* levels 3 and 4 of both scopes, 01-08 to 01-10 */
    assert_int_equal(json_object_size(firing), 2);    /* 1085's resolved; 1084's two fire */
    json_decref(labels_of);
    json_decref(active);
    json_decref(firing);
    calcrun_free(&r);
}

/* A rule that raises the alert level resolves the alert of the level below it, which no longer fires. */
static void test_raising_the_alert_level_resolves_the_lower_alert(void **state)
{
    hs_offline_stats stats;
    char *out = run(NULL,
                    MEDICAL("01", "93") "{\"specversion\":\"1.0\",\"id\":\"r\",\"source\":\"test\",\"type\":"
                                        "\"healthsignals.v1.Rule\",\"data\":{\"id\":\"capacity.medical\","
                                        "\"service\":\"capacity\",\"subject\":\"beds.medical\",\"kind\":"
                                        "\"ESCALATION_LEVELS\",\"alertLevel\":4}}\n",
                    &stats);
    assert_int_equal(stats.rejected, 0);
    char line[4096];
    assert_non_null(level_alert_line(out, 3, line, sizeof line));
    assert_contains(line, "\"state\":\"RESOLVED\"");
    assert_contains(line, "Resolved: alerts now start at level 4.");
    assert_null(level_alert_line(out, 4, line, sizeof line)); /* 93 % is level 3: never fired */
    free(out);
}

/* Issue 14, item 4: fingerprints were 16 hex digits in two services and 32 in capacity. Capacity's come
 * from the shared function, like every service's — and, issue 16 item 3, over the same identity as every
 * service's: the alertname, the scope, the subject, and the level that tells the alerts of a series apart
 * (it was "capacity:level-N" in place of a rule id no capacity alert carries). */
static void test_fingerprints_are_the_shared_16_hex_digits(void **state)
{
    hs_offline_stats stats;
    char *out = run(NULL, MEDICAL("01", "98"), &stats);
    char line[4096], fingerprint[HS_FINGERPRINT_MAX], needle[64];
    assert_int_equal(HS_FINGERPRINT_MAX, 17);
    hs_alert_fingerprint("CapacityEscalation", "region:1085", "beds.medical", "4", fingerprint);
    snprintf(needle, sizeof needle, "\"fingerprint\":\"%s\"", fingerprint);
    assert_contains(level_alert_line(out, 4, line, sizeof line), needle);
    hs_alert_fingerprint("CapacityEscalation", "region:1085", "beds.medical", "3", fingerprint);
    snprintf(needle, sizeof needle, "\"fingerprint\":\"%s\"", fingerprint);
    assert_contains(level_alert_line(out, 3, line, sizeof line), needle);
    free(out);
}

static void test_revision_lowering_occupancy_resolves_the_alert(void **state)
{
    hs_offline_stats stats;
    char *out = run(NULL, MEDICAL("01", "86") MEDICAL("02", "95") MEDICAL("02", "80"), &stats);
    char line[4096];
    assert_non_null(level_alert_line(out, 3, line, sizeof line));
    assert_contains(line, "\"state\":\"RESOLVED\"");
    assert_contains(line, "\"startsAt\":\"2023-01-03T00:00:00Z\"");
    assert_contains(line, "\"endsAt\":\"2023-01-03T00:00:00Z\"");
    free(out);
    out = run(NULL, MEDICAL("01", "86") MEDICAL("02", "95"), &stats);
    assert_contains(alert_line(out, line, sizeof line), "\"state\":\"FIRING\"");
    assert_contains(line, "\"severity\":\"WARNING\"");
    free(out);
}

static void test_rule_sets_thresholds_and_makes_a_resource_known(void **state)
{
    const char *rules =
        "[{\"id\":\"capacity.psych\",\"service\":\"capacity\",\"subject\":\"beds.psychiatric\","
        "\"kind\":\"ESCALATION_LEVELS\",\"levelThresholdsPct\":[70,80,90],\"alertLevel\":2,"
        "\"hysteresis\":1}]";
    hs_offline_stats stats;
    char *out = run(rules, OBS("beds.psychiatric", "REGION", "1083", "2023Q1", "100", "75"), &stats);
    char line[4096];
    line_of(out, "beds.psychiatric/region:1083/2023Q1", line, sizeof line);
    assert_contains(line, "\"level\":2,");
    assert_contains(line, "\"rule\":\"capacity.psych\"");
    assert_contains(alert_line(out, line, sizeof line), "\"state\":\"FIRING\"");
    free(out);
    out = run(NULL, OBS("beds.psychiatric", "REGION", "1083", "2023Q1", "100", "75"), &stats);
    assert_int_equal(stats.rejected, 1); /* no rule names it, not built in: unknown */
    assert_int_equal(stats.outputs, 0);
    free(out);
}

static void test_hospital_without_region_prefix_is_refused(void **state)
{
    char region[5];
    assert_true(capacity_hospital_region("1084-rigshospitalet", region));
    assert_string_equal(region, "1084");
    assert_false(capacity_hospital_region("rigshospitalet", region));
    assert_false(capacity_hospital_region("1086-x", region));
    assert_false(capacity_hospital_region("1084-", region));
    hs_offline_stats stats;
    char *out = run(NULL, OBS("beds.medical", "HOSPITAL", "rigshospitalet", "2023Q1", "10", "5"), &stats);
    assert_int_equal(stats.rejected, 1);
    free(out);
}

static void test_same_facts_twice_and_reverse_order_give_the_same_table(void **state)
{
    hs_offline_stats a, b;
    const char *facts = MEDICAL("01", "86") MEDICAL("02", "93") MEDICAL("03", "98") MEDICAL("04", "80");
    const char *reverse = MEDICAL("04", "80") MEDICAL("03", "98") MEDICAL("02", "93") MEDICAL("01", "86");
    char *forward = run(NULL, facts, &a);
    char *backward = run(NULL, reverse, &b);
    assert_string_equal(forward, backward);
    free(forward);
    free(backward);
}

static void test_tombstone_deletes_the_status(void **state)
{
    hs_offline_stats stats;
    char *out = run(NULL, MEDICAL("01", "86") MEDICAL_DELETED("01"), &stats);
    assert_int_equal(stats.outputs, 0);
    free(out);
}

/* When every observation of a scope is deleted, its FIRING alert is resolved (hs_alert_retire, as targets and
 * variation retire an alert with nothing left to evaluate): ended at the end of the period it showed. */
static void test_deleting_every_observation_resolves_the_alert(void **state)
{
    hs_offline_stats stats;
    char *out = run(NULL, MEDICAL("01", "95") MEDICAL_DELETED("01"), &stats);
    char line[4096];
    assert_non_null(level_alert_line(out, 3, line, sizeof line));
    assert_contains(line, "\"state\":\"RESOLVED\"");
    assert_contains(line, "\"startsAt\":\"2023-01-02T00:00:00Z\"");
    assert_contains(line, "\"endsAt\":\"2023-01-02T00:00:00Z\"");
    assert_contains(line, "Resolved: every observation of its scope was deleted.");
    free(out);
}

static void assert_no_infinity_or_nan(const char *out)
{
    if (strstr(out, "Infinity") || strstr(out, "NaN"))
        fail_msg("a figure that is not finite in the output:\n%s", out);
}

/* Issue 15, item 5: two hospitals at level 4 with 1e308 beds rolled up to a region with available =
 * Infinity, utilisation NaN and level 1. Such counts are refused (to the dead letters), and nothing of them
 * reaches an output. */
static void test_1e308_beds_are_refused_and_roll_up_nothing(void **state)
{
    hs_offline_stats stats;
    char *out = run(NULL,
                    OBS("beds.medical", "HOSPITAL", "1084-rigshospitalet", "2023Q1", "1e308", "9.8e307")
                        OBS("beds.medical", "HOSPITAL", "1084-herlev", "2023Q1", "1e308", "9.8e307"),
                    &stats);
    assert_int_equal(stats.rejected, 2);
    assert_no_infinity_or_nan(out);
    assert_null(strstr(out, "region:1084"));
    assert_null(alert_line(out, (char[4096]){0}, 4096));
    free(out);
}

/* The same two hospitals at the largest count validation admits (1e12): the region's sums are finite, its
 * utilisation is 98 % and it is at level 4, as both its members are. */
static void test_counts_at_the_bound_roll_up_to_finite_sums_and_level_4(void **state)
{
    hs_offline_stats stats;
    char *out = run(NULL,
                    OBS("beds.medical", "HOSPITAL", "1084-rigshospitalet", "2023Q1", "1e12", "9.8e11")
                        OBS("beds.medical", "HOSPITAL", "1084-herlev", "2023Q1", "1e12", "9.8e11"),
                    &stats);
    assert_int_equal(stats.rejected, 0);
    assert_no_infinity_or_nan(out);
    char line[4096];
    line_of(out, "beds.medical/region:1084/2023Q1", line, sizeof line);
    assert_contains(line, "\"available\":2000000000000,\"occupied\":1960000000000,\"utilisationPct\":98,");
    assert_contains(line, "\"level\":4,");
    free(out);
}

/* A capacity so small that occupied / available overflows (1e-300 beds, 1e10 patients) has no utilisation
 * figure, never Infinity: it counts as nothing available with patients present, level 4. */
static void test_utilisation_that_overflows_is_no_figure_and_level_4(void **state)
{
    double pct = -1;
    assert_false(capacity_utilisation(1e-300, 1e10, &pct));
    assert_float_equal(pct, -1, 0); /* untouched */
    capacity_params p = capacity_params_default();
    assert_int_equal(capacity_threshold_level(1e-300, 1e10, &p), 4);
    hs_offline_stats stats;
    char *out = run(NULL, OBS("beds.intensive", "REGION", "1081", "2023Q1", "1e-300", "1e10"), &stats);
    assert_no_infinity_or_nan(out);
    char line[4096];
    line_of(out, "beds.intensive/region:1081/2023Q1", line, sizeof line);
    assert_null(strstr(line, "utilisationPct"));
    assert_contains(line, "\"level\":4,");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_domain_example_intensive_care_2021q4_is_level_1),
        cmocka_unit_test(test_level_boundaries_exactly_at_thresholds),
        cmocka_unit_test(test_zero_capacity_with_patients_is_level_4),
        cmocka_unit_test(test_overcrowding_is_allowed_and_reported),
        cmocka_unit_test(test_hysteresis_up_and_down),
        cmocka_unit_test(test_for_periods_delays_escalation_and_a_gap_resets_it),
        cmocka_unit_test(test_rollup_from_hospitals_to_region_to_nation_sums_not_averages),
        cmocka_unit_test(test_observed_region_wins_over_rollup_and_partial_nation_is_not_rolled_up),
        cmocka_unit_test(test_demo_series_fires_escalates_and_resolves),
        cmocka_unit_test(test_escalation_never_changes_an_alerts_labels),
        cmocka_unit_test(test_raising_the_alert_level_resolves_the_lower_alert),
        cmocka_unit_test(test_fingerprints_are_the_shared_16_hex_digits),
        cmocka_unit_test(test_revision_lowering_occupancy_resolves_the_alert),
        cmocka_unit_test(test_rule_sets_thresholds_and_makes_a_resource_known),
        cmocka_unit_test(test_hospital_without_region_prefix_is_refused),
        cmocka_unit_test(test_same_facts_twice_and_reverse_order_give_the_same_table),
        cmocka_unit_test(test_tombstone_deletes_the_status),
        cmocka_unit_test(test_deleting_every_observation_resolves_the_alert),
        cmocka_unit_test(test_1e308_beds_are_refused_and_roll_up_nothing),
        cmocka_unit_test(test_counts_at_the_bound_roll_up_to_finite_sums_and_level_4),
        cmocka_unit_test(test_utilisation_that_overflows_is_no_figure_and_level_4),
    };
    return cmocka_run_group_tests_name("capacity", tests, NULL, NULL);
}
