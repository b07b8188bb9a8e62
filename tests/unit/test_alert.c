/* The alert toolkit every alerting service shares (hs/alert.h): fingerprints, labels, the store of the last
 * alert per fingerprint with its FIRING count, retiring an alert, and the figures of annotations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hs/alert.h"

/* An emitter that remembers what was put. */
typedef struct recorder {
    hs_emit base;
    int puts;
    int packed; /* of them, through put_packed */
    char last_key[64];
    Healthsignals__V1__Alert *last; /* unpacked copy of the last value */
    char resolved_labels[64];       /* the first label's value of the last RESOLVED alert put */
} recorder;

static hs_err record_put(hs_emit *self, const hs_topic *topic, const char *key, const ProtobufCMessage *value)
{
    recorder *r = (recorder *)self;
    assert_string_equal(topic->name, HS_TOPIC_ALERTS);
    r->puts++;
    snprintf(r->last_key, sizeof r->last_key, "%s", key);
    if (r->last)
        protobuf_c_message_free_unpacked(&r->last->base, NULL);
    size_t len = protobuf_c_message_get_packed_size(value);
    uint8_t *bytes = malloc(len ? len : 1);
    assert_non_null(bytes);
    protobuf_c_message_pack(value, bytes);
    r->last = healthsignals__v1__alert__unpack(NULL, len, bytes);
    free(bytes);
    if (r->last->state == HEALTHSIGNALS__V1__ALERT_STATE__RESOLVED)
        snprintf(r->resolved_labels, sizeof r->resolved_labels, "%s",
                 r->last->n_labels ? r->last->labels[0]->value : "");
    return HS_OK;
}

/* As record_put, for a driver that takes packed values: they must be the message's exact bytes. */
static hs_err record_put_packed(hs_emit *self, const hs_topic *topic, const char *key, const uint8_t *bytes,
                                size_t len)
{
    recorder *r = (recorder *)self;
    Healthsignals__V1__Alert *value = healthsignals__v1__alert__unpack(NULL, len, bytes);
    assert_non_null(value);
    size_t again = protobuf_c_message_get_packed_size(&value->base);
    uint8_t *repacked = malloc(again ? again : 1);
    assert_non_null(repacked);
    protobuf_c_message_pack(&value->base, repacked);
    assert_int_equal(again, len);
    assert_memory_equal(repacked, bytes, len);
    free(repacked);
    hs_err err = record_put(self, topic, key, &value->base);
    protobuf_c_message_free_unpacked(&value->base, NULL);
    r->packed++;
    return err;
}

static void recorder_free(recorder *r)
{
    if (r->last)
        protobuf_c_message_free_unpacked(&r->last->base, NULL);
}

static void test_fingerprint_is_stable_and_length_prefixed(void **state)
{
    (void)state;
    char a[HS_FINGERPRINT_MAX], b[HS_FINGERPRINT_MAX], c[HS_FINGERPRINT_MAX];
    hs_alert_fingerprint("rule", "region:1085", "kraeft", NULL, a);
    hs_alert_fingerprint("rule", "region:1085", "kraeft", NULL, b);
    hs_alert_fingerprint("rule", "region:108", "5kraeft", NULL, c);
    assert_int_equal(strlen(a), 16);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c); /* the parts are length-prefixed: moving a character changes it */
}

/* Issue 16, item 3: one function and one identity for every service's alerts. A rule's alert (no qualifier)
 * keeps the key it has always had — the digest below is the one the targets and variation services wrote
 * before the qualifier existed — and a qualifier (capacity's level) is a part of its own. */
static void test_fingerprint_keeps_rule_alert_keys_and_qualifier_is_a_part(void **state)
{
    (void)state;
    char a[HS_FINGERPRINT_MAX], b[HS_FINGERPRINT_MAX], c[HS_FINGERPRINT_MAX];
    hs_alert_fingerprint("rule", "region:1085", "kraeft", NULL, a);
    assert_string_equal(a, "60beee6274218e98");
    hs_alert_fingerprint("CapacityEscalation", "region:1085", "beds.medical", "3", a);
    hs_alert_fingerprint("CapacityEscalation", "region:1085", "beds.medical", "4", b);
    hs_alert_fingerprint("CapacityEscalation", "region:1085", "beds.medical", NULL, c);
    assert_true(hs_alert_fingerprint_valid(a));
    assert_string_not_equal(a, b);
    assert_string_not_equal(a, c);
    hs_alert_fingerprint("CapacityEscalation", "region:1085", "beds.medical", "", b);
    assert_string_not_equal(b, c); /* an empty qualifier is a part; only NULL is none */
    hs_alert_fingerprint("CapacityEscalation", "region:1085", "beds.medical3", NULL, b);
    assert_string_not_equal(a, b); /* length-prefixed: the level is not the subject's tail */
}

/* The steps of one series: 'x' breached, 'o' met by a wide margin, '-' met within the hysteresis. */
static hs_alert_history stepped(const char *steps, unsigned for_periods)
{
    hs_alert_history h = HS_ALERT_HISTORY_START;
    for (int32_t i = 0; steps[i]; i++)
        hs_alert_step(&h, i, steps[i] == 'x', steps[i] == 'o' ? 5.0 : 0.5, 1.0, for_periods);
    return h;
}

/* Fire after for_periods consecutive breaches; a met period ends the run; stay firing while breached and
 * while met within the hysteresis; resolve when met by it; fire again as a new episode. */
static void test_step_fires_stays_and_resolves(void **state)
{
    (void)state;
    hs_alert_history h = HS_ALERT_HISTORY_START;
    assert_int_equal(h.last, -1);
    assert_int_equal(hs_alert_history_shown(&h), -1);
    h = stepped("xxoxx", 3); /* two runs of two: never three in a row */
    assert_false(h.episode);
    assert_int_equal(h.breach_run, 2);
    assert_int_equal(h.last, 4);
    h = stepped("xxox", 0); /* 0 is 1: the first breach fires */
    assert_true(h.episode && h.firing);
    assert_int_equal(h.fired, 3); /* the last episode */
    assert_int_equal(h.resolved, -1);
    h = stepped("oxxx--x-", 3);
    assert_true(h.firing); /* '-' is met, but not by the hysteresis margin */
    assert_int_equal(h.fired, 3);
    assert_int_equal(h.breach_run, 0);
    assert_int_equal(hs_alert_history_shown(&h), 7);
    h = stepped("oxxx--x-oxx", 3);
    assert_true(h.episode && !h.firing && hs_alert_history_resolved(&h));
    assert_int_equal(h.resolved, 8);
    assert_int_equal(hs_alert_history_shown(&h), 8); /* frozen where it resolved */
    assert_int_equal(h.last, 10);
    h = stepped("oxxx--x-oxxx", 3);
    assert_true(h.firing);
    assert_int_equal(h.fired, 11);
    assert_int_equal(h.resolved, -1);
    hs_alert_history same = stepped("oxxx--x-oxxx", 3), other = stepped("oxxx--x-oxx", 3);
    assert_true(hs_alert_history_equal(&h, &same));
    assert_false(hs_alert_history_equal(&h, &other));
    /* With no hysteresis, a met period at exactly the target (gap 0) resolves. */
    h = HS_ALERT_HISTORY_START;
    hs_alert_step(&h, 0, true, 0.0, 0.0, 1);
    hs_alert_step(&h, 1, false, 0.0, 0.0, 1);
    assert_true(hs_alert_history_resolved(&h));
}

/* startsAt / endsAt are the ends of the periods the alert fired and resolved in; an alert a revision resolved
 * (no episode left) keeps its startsAt and ends at the end of the latest period. */
static void test_bounds_are_the_ends_of_periods(void **state)
{
    (void)state;
    hs_period q1 = {HS_PERIOD_QUARTER, 2023, 1}, q2 = {HS_PERIOD_QUARTER, 2023, 2},
              w = {HS_PERIOD_WEEK, 2020, 1};
    char starts[HS_RFC3339_MAX], ends[HS_RFC3339_MAX];
    hs_alert_history h = stepped("x", 1);
    hs_alert_bounds(&h, &q1, NULL, &q1, NULL, starts, ends);
    assert_string_equal(starts, "2023-04-01T00:00:00Z");
    assert_string_equal(ends, "");
    h = stepped("xo", 1);
    hs_alert_bounds(&h, &q1, &q2, &q2, NULL, starts, ends);
    assert_string_equal(starts, "2023-04-01T00:00:00Z");
    assert_string_equal(ends, "2023-07-01T00:00:00Z");
    h = stepped("oo", 1);
    hs_alert_bounds(&h, NULL, NULL, &w, "2019-01-01T00:00:00Z", starts, ends);
    assert_string_equal(starts, "2019-01-01T00:00:00Z");
    assert_string_equal(ends, "2020-01-06T00:00:00Z"); /* the Monday after ISO week 2020W01 */
}

static void test_labels_core_wins_and_sorted(void **state)
{
    (void)state;
    Healthsignals__V1__Rule__LabelsEntry team = HEALTHSIGNALS__V1__RULE__LABELS_ENTRY__INIT,
                                         sev = HEALTHSIGNALS__V1__RULE__LABELS_ENTRY__INIT,
                                         again = HEALTHSIGNALS__V1__RULE__LABELS_ENTRY__INIT;
    team.key = "team";
    team.value = "akut";
    sev.key = "severity";
    sev.value = "page-everyone"; /* a rule cannot override an identifying label */
    again.key = "team";
    again.value = "other"; /* a repeated key: the first is kept */
    Healthsignals__V1__Rule__LabelsEntry *entries[] = {&team, &sev, &again};
    Healthsignals__V1__Rule rule = HEALTHSIGNALS__V1__RULE__INIT;
    rule.n_labels = 3;
    rule.labels = entries;
    const char *const core[][2] = {{"severity", "warning"}, {"alertname", "r1"}, {"scope", "national:DK"}};
    hs_alert_labels labels;
    assert_true(hs_alert_labels_build(&labels, core, 3, &rule));
    assert_int_equal(labels.count, 4);
    const char *want[][2] = {
        {"alertname", "r1"}, {"scope", "national:DK"}, {"severity", "warning"}, {"team", "akut"}};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(labels.items[i]->key, want[i][0]);
        assert_string_equal(labels.items[i]->value, want[i][1]);
    }
    hs_alert_labels_free(&labels);
    assert_true(hs_alert_labels_build(&labels, core, 3, NULL));
    assert_int_equal(labels.count, 3);
    hs_alert_labels_free(&labels);
}

static Healthsignals__V1__Alert alert_of(const char *fingerprint, Healthsignals__V1__AlertState state,
                                         Healthsignals__V1__Alert__AnnotationsEntry **annotations)
{
    Healthsignals__V1__Alert a = HEALTHSIGNALS__V1__ALERT__INIT;
    a.fingerprint = (char *)fingerprint;
    a.state = state;
    a.period = "2023Q2";
    a.starts_at = "2023-07-01T00:00:00Z";
    a.n_annotations = annotations ? 1 : 0;
    a.annotations = annotations;
    return a;
}

/* Issue 14, item 4: fingerprints were 16 hex digits in two services and 32 in capacity. Every service's
 * come from hs_alert_fingerprint, and the store refuses any other form, so no service can emit its own. */
static void test_store_refuses_a_fingerprint_not_of_the_shared_form(void **state)
{
    (void)state;
    char fp[HS_FINGERPRINT_MAX];
    hs_alert_fingerprint("CapacityEscalation", "region:1085", "beds.medical", "4", fp);
    assert_true(hs_alert_fingerprint_valid(fp));
    assert_false(hs_alert_fingerprint_valid("b79d87321a3f00669ae1723bacefed71")); /* capacity's old 32 */
    assert_false(hs_alert_fingerprint_valid("3F2A9C0D11E4B7A5"));                 /* upper case */
    assert_false(hs_alert_fingerprint_valid("3f2a9c0d11e4b7a"));
    assert_false(hs_alert_fingerprint_valid(""));
    assert_false(hs_alert_fingerprint_valid(NULL));
    hs_alert_store store;
    hs_alert_store_init(&store);
    recorder r = {.base = {.put = record_put}};
    hs_error error;
    Healthsignals__V1__Alert old =
        alert_of("b79d87321a3f00669ae1723bacefed71", HEALTHSIGNALS__V1__ALERT_STATE__FIRING, NULL);
    assert_int_equal(hs_alert_put(&store, &old, &r.base, &error), HS_ERR_INTERNAL);
    assert_int_equal(r.puts, 0);
    assert_int_equal(store.firing, 0);
    Healthsignals__V1__Alert good = alert_of(fp, HEALTHSIGNALS__V1__ALERT_STATE__FIRING, NULL);
    assert_int_equal(hs_alert_put(&store, &good, &r.base, &error), HS_OK);
    assert_int_equal(r.puts, 1);
    recorder_free(&r);
    hs_alert_store_free(&store);
}

/* Issue 14, item 4: an alert's labels are its identity to Alertmanager. When a FIRING alert's labels change
 * (its rule's severity was raised), it is first resolved under the old labels, then fires under the new
 * ones: a subscriber that knows alerts by their labels has one active, as one fires. */
static void test_relabelled_firing_alert_is_resolved_under_its_old_labels_first(void **state)
{
    (void)state;
    Healthsignals__V1__Alert__LabelsEntry warning = HEALTHSIGNALS__V1__ALERT__LABELS_ENTRY__INIT,
                                          critical = HEALTHSIGNALS__V1__ALERT__LABELS_ENTRY__INIT;
    warning.key = critical.key = "severity";
    warning.value = "warning";
    critical.value = "critical";
    Healthsignals__V1__Alert__LabelsEntry *old_labels[] = {&warning}, *new_labels[] = {&critical};
    hs_alert_store store;
    hs_alert_store_init(&store);
    recorder r = {.base = {.put = record_put}};
    hs_error error;
    Healthsignals__V1__Alert a = alert_of("aaaaaaaaaaaaaaaa", HEALTHSIGNALS__V1__ALERT_STATE__FIRING, NULL);
    a.n_labels = 1;
    a.labels = old_labels;
    assert_int_equal(hs_alert_put(&store, &a, &r.base, &error), HS_OK);
    a.period = "2023Q3"; /* the same labels, a later period: just the new value */
    assert_int_equal(hs_alert_put(&store, &a, &r.base, &error), HS_OK);
    assert_int_equal(r.puts, 2);
    a.labels = new_labels;
    assert_int_equal(hs_alert_put(&store, &a, &r.base, &error), HS_OK);
    assert_int_equal(r.puts, 4); /* the old one RESOLVED, then the new one FIRING */
    assert_string_equal(r.resolved_labels, "warning");
    assert_int_equal(r.last->state, HEALTHSIGNALS__V1__ALERT_STATE__FIRING);
    assert_string_equal(r.last->labels[0]->value, "critical");
    assert_int_equal(store.firing, 1);
    recorder_free(&r);
    hs_alert_store_free(&store);
}

/* The store counts FIRING alerts as they are put; retiring resolves a FIRING alert at the end of its
 * period with the reason, and leaves a RESOLVED one alone. */
static void test_store_counts_firing_and_retire_resolves(void **state)
{
    (void)state;
    Healthsignals__V1__Alert__AnnotationsEntry described = HEALTHSIGNALS__V1__ALERT__ANNOTATIONS_ENTRY__INIT;
    described.key = "description";
    described.value = "Sjælland 2023Q2: 66% against 69%.";
    Healthsignals__V1__Alert__AnnotationsEntry *annotations[] = {&described};
    hs_alert_store store;
    hs_alert_store_init(&store);
    recorder r = {.base = {.put = record_put}};
    hs_error error;

    Healthsignals__V1__Alert a =
        alert_of("aaaaaaaaaaaaaaaa", HEALTHSIGNALS__V1__ALERT_STATE__FIRING, annotations);
    Healthsignals__V1__Alert b =
        alert_of("bbbbbbbbbbbbbbbb", HEALTHSIGNALS__V1__ALERT_STATE__FIRING, annotations);
    assert_int_equal(hs_alert_put(&store, &a, &r.base, &error), HS_OK);
    assert_int_equal(hs_alert_put(&store, &a, &r.base, &error), HS_OK); /* again: still one firing */
    assert_int_equal(hs_alert_put(&store, &b, &r.base, &error), HS_OK);
    assert_int_equal(store.firing, 2);
    b.state = HEALTHSIGNALS__V1__ALERT_STATE__RESOLVED;
    assert_int_equal(hs_alert_put(&store, &b, &r.base, &error), HS_OK);
    assert_int_equal(store.firing, 1);
    assert_int_equal(r.puts, 4); /* the same alert again is emitted again: the driver drops it */

    Healthsignals__V1__Alert *stored = hs_alert_stored(&store, "aaaaaaaaaaaaaaaa");
    assert_non_null(stored);
    assert_int_equal(stored->state, HEALTHSIGNALS__V1__ALERT_STATE__FIRING);
    protobuf_c_message_free_unpacked(&stored->base, NULL);
    assert_null(hs_alert_stored(&store, "cccccccccccccccc"));

    assert_int_equal(hs_alert_retire(&store, "aaaaaaaaaaaaaaaa", "the rule was deleted", &r.base, &error),
                     HS_OK);
    assert_int_equal(r.puts, 5);
    assert_string_equal(r.last_key, "aaaaaaaaaaaaaaaa");
    assert_int_equal(r.last->state, HEALTHSIGNALS__V1__ALERT_STATE__RESOLVED);
    assert_string_equal(r.last->ends_at, "2023-07-01T00:00:00Z"); /* the end of 2023Q2 */
    assert_string_equal(r.last->annotations[0]->value,
                        "Sjælland 2023Q2: 66% against 69%. Resolved: the rule was deleted.");
    assert_int_equal(store.firing, 0);
    /* Already resolved, or never emitted: nothing to retire. */
    assert_int_equal(hs_alert_retire(&store, "bbbbbbbbbbbbbbbb", "gone", &r.base, &error), HS_OK);
    assert_int_equal(hs_alert_retire(&store, "cccccccccccccccc", "gone", &r.base, &error), HS_OK);
    assert_int_equal(r.puts, 5);

    recorder_free(&r);
    hs_alert_store_free(&store);
}

/* A driver with put_packed gets the alert's exact bytes (the store packs them anyway), every time;
 * hs_alert_put_described() sets the two annotations, description first. */
static void test_store_hands_packed_alerts_to_a_driver_that_takes_them(void **state)
{
    (void)state;
    hs_alert_store store;
    hs_alert_store_init(&store);
    recorder r = {.base = {.put = record_put, .put_packed = record_put_packed}};
    hs_error error;
    Healthsignals__V1__Alert a = alert_of("dddddddddddddddd", HEALTHSIGNALS__V1__ALERT_STATE__FIRING, NULL);
    const char *summary = "Nordjylland misses the target";
    const char *description = "Nordjylland 2023Q2: 62% against 69%.";
    for (int i = 0; i < 2; i++)
        assert_int_equal(hs_alert_put_described(&store, &a, summary, description, &r.base, &error), HS_OK);
    a.state = HEALTHSIGNALS__V1__ALERT_STATE__RESOLVED;
    assert_int_equal(hs_alert_put_described(&store, &a, summary, description, &r.base, &error), HS_OK);
    assert_int_equal(r.puts, 3);
    assert_int_equal(r.packed, 3);
    assert_int_equal(r.last->state, HEALTHSIGNALS__V1__ALERT_STATE__RESOLVED);
    assert_int_equal(r.last->n_annotations, 2);
    assert_string_equal(r.last->annotations[0]->key, "description");
    assert_string_equal(r.last->annotations[0]->value, description);
    assert_string_equal(r.last->annotations[1]->key, "summary");
    assert_string_equal(r.last->annotations[1]->value, summary);
    assert_int_equal(store.firing, 0);
    recorder_free(&r);
    hs_alert_store_free(&store);
}

/* What hs_figure promises: "%.2f" with trailing zeros (and a bare point) trimmed, "-0" as "0". */
static void figure_reference(double x, char *out, size_t size)
{
    snprintf(out, size, "%.2f", x);
    char *dot = strchr(out, '.');
    if (dot) {
        char *end = out + strlen(out) - 1;
        while (end > dot && *end == '0')
            *end-- = '\0';
        if (end == dot)
            *end = '\0';
    }
    if (strcmp(out, "-0") == 0)
        snprintf(out, size, "0");
}

static void test_figures_and_names(void **state)
{
    (void)state;
    char buf[64];
    assert_string_equal(hs_figure(134.4, buf, sizeof buf), "134.4");
    assert_string_equal(hs_figure(79, buf, sizeof buf), "79");
    assert_string_equal(hs_figure(-18.005, buf, sizeof buf), "-18"); /* rounded to two decimals: -18.00 */
    assert_string_equal(hs_figure(-0.001, buf, sizeof buf), "0");
    assert_string_equal(hs_figure(-0.0, buf, sizeof buf), "0");
    assert_string_equal(hs_figure(-41, buf, sizeof buf), "-41");
    /* Whole numbers take a path without printf: the same text as "%.2f" with the zeros trimmed. */
    const double wholes[] = {0,
                             1,
                             -1,
                             9,
                             10,
                             -10,
                             99,
                             100,
                             1000,
                             2147483648.0,
                             -2147483649.0,
                             999999999999999.0,
                             -999999999999999.0,
                             1e15,
                             -1e15,
                             123456789012345678.0};
    for (size_t i = 0; i < sizeof wholes / sizeof wholes[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "%.0f", wholes[i]);
        assert_string_equal(hs_figure(wholes[i], buf, sizeof buf), want);
    }
    for (int v = -2000; v <= 2000; v += 7) {
        char want[64];
        snprintf(want, sizeof want, "%d", v);
        assert_string_equal(hs_figure(v, buf, sizeof buf), want);
    }
    /* Figures with decimals take a path without printf too, except near a tie: every one the same text as
     * "%.2f" with the zeros trimmed, ties (exact in binary: 0.125, 2.5 hundredths) and near-ties included. */
    const double decimals[] = {
        0.125,       -0.125,       0.375,        1.005,       2.675, -2.675, 0.045,       1.115, 0.005,
        -0.005,      0.015,        99.995,       41.1,        39.45, 134.4,  0.1,         0.2,   -0.3,
        21474836.47, 21474836.475, -21474836.48, 21474836.49, 1e-9,  -1e-9,  5e-3 + 1e-12};
    for (size_t i = 0; i < sizeof decimals / sizeof decimals[0]; i++) {
        char want[64];
        figure_reference(decimals[i], want, sizeof want);
        assert_string_equal(hs_figure(decimals[i], buf, sizeof buf), want);
    }
    /* The longest figures of both paths, into buffers of every size from 1 up, each exactly that large (an
     * overrun shows under the sanitizers): the text of a buffer large enough, snprintf's truncation below. */
    const double longest[] = {-999999999999999.0, 999999999999999.0, -21474836.47, 21474836.47, -0.01};
    for (size_t i = 0; i < sizeof longest / sizeof longest[0]; i++)
        for (size_t size = 1; size <= 24; size++) {
            char want[64];
            figure_reference(longest[i], want, size);
            char *exact = malloc(size);
            assert_non_null(exact);
            assert_string_equal(hs_figure(longest[i], exact, size), want);
            free(exact);
        }
    uint64_t seed = 42;
    for (int i = 0; i < 200000; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        int64_t mantissa = (int64_t)(seed >> 20) % 100000000 - 50000000;
        static const double scales[] = {1, 10, 100, 1000, 10000, 1e5, 1e6};
        double x = (double)mantissa / scales[(seed >> 8) % 7];
        if (i % 3 == 0)
            x += ((double)(seed & 0xff) - 128.0) * 1e-9; /* off the decimal grid, near ties */
        char want[64];
        figure_reference(x, want, sizeof want);
        assert_string_equal(hs_figure(x, buf, sizeof buf), want);
    }
    assert_string_equal(hs_unit_suffix(HEALTHSIGNALS__V1__UNIT__DAYS), " days");
    assert_string_equal(hs_severity_label(HEALTHSIGNALS__V1__SEVERITY__CRITICAL), "critical");
    assert_string_equal(hs_scope_display_name(HEALTHSIGNALS__V1__SCOPE_KIND__REGION, "1085", buf, sizeof buf),
                        "Sjælland");
    assert_string_equal(hs_scope_display_name(HEALTHSIGNALS__V1__SCOPE_KIND__NATIONAL, "DK", buf, sizeof buf),
                        "Hele landet");
    assert_string_equal(hs_scope_display_name(HEALTHSIGNALS__V1__SCOPE_KIND__HOSPITAL, "1084-rigshospitalet",
                                              buf, sizeof buf),
                        "hospital 1084-rigshospitalet");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fingerprint_is_stable_and_length_prefixed),
        cmocka_unit_test(test_fingerprint_keeps_rule_alert_keys_and_qualifier_is_a_part),
        cmocka_unit_test(test_step_fires_stays_and_resolves),
        cmocka_unit_test(test_bounds_are_the_ends_of_periods),
        cmocka_unit_test(test_store_refuses_a_fingerprint_not_of_the_shared_form),
        cmocka_unit_test(test_relabelled_firing_alert_is_resolved_under_its_old_labels_first),
        cmocka_unit_test(test_labels_core_wins_and_sorted),
        cmocka_unit_test(test_store_counts_firing_and_retire_resolves),
        cmocka_unit_test(test_store_hands_packed_alerts_to_a_driver_that_takes_them),
        cmocka_unit_test(test_figures_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
