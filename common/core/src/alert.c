/* Alerts (see hs/alert.h). */
#include "hs/alert.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "hs/period.h"
#include "hs/topic.h"
#include "hs/validate.h"

void hs_alert_fingerprint(const char *alertname, const char *scope_component, const char *subject,
                          const char *qualifier, char out[HS_FINGERPRINT_MAX])
{
    /* XXH3 over length-prefixed parts, so that ("ab", "c") and ("a", "bc") differ; without a qualifier the
     * same digest as the targets service has always used, so rules' alerts keep their keys. */
    XXH3_state_t *state = XXH3_createState();
    uint64_t hash = 0;
    if (state) {
        XXH3_64bits_reset(state);
        const char *texts[] = {alertname, scope_component, subject, qualifier};
        for (int i = 0; i < 4 && texts[i]; i++) {
            uint64_t len = strlen(texts[i]);
            XXH3_64bits_update(state, &len, sizeof len);
            XXH3_64bits_update(state, texts[i], len);
        }
        hash = XXH3_64bits_digest(state);
        XXH3_freeState(state);
    }
    snprintf(out, HS_FINGERPRINT_MAX, "%016" PRIx64, hash);
}

void hs_alert_step(hs_alert_history *h, int32_t at, bool breached, double gap, double hysteresis,
                   unsigned for_periods)
{
    h->last = at;
    if (breached) {
        if (h->breach_run < UINT32_MAX)
            h->breach_run++;
        if (!h->firing && h->breach_run >= (for_periods ? for_periods : 1)) {
            h->firing = h->episode = true;
            h->fired = at;
            h->resolved = -1;
        }
        return;
    }
    h->breach_run = 0;
    if (h->firing && gap >= hysteresis) {
        h->firing = false;
        h->resolved = at;
    }
}

bool hs_alert_history_equal(const hs_alert_history *a, const hs_alert_history *b)
{
    return a->episode == b->episode && a->firing == b->firing && a->fired == b->fired &&
           a->resolved == b->resolved && a->last == b->last && a->breach_run == b->breach_run;
}

bool hs_alert_history_resolved(const hs_alert_history *h)
{
    return h->episode && !h->firing;
}

int32_t hs_alert_history_shown(const hs_alert_history *h)
{
    return hs_alert_history_resolved(h) ? h->resolved : h->last;
}

void hs_alert_bounds(const hs_alert_history *h, const hs_period *fired, const hs_period *resolved,
                     const hs_period *latest, const char *stored_starts_at, char starts_at[HS_RFC3339_MAX],
                     char ends_at[HS_RFC3339_MAX])
{
    starts_at[0] = ends_at[0] = '\0';
    if (h->episode) {
        if (fired)
            hs_period_end_rfc3339(fired, starts_at, HS_RFC3339_MAX);
        if (!h->firing && resolved)
            hs_period_end_rfc3339(resolved, ends_at, HS_RFC3339_MAX);
        return;
    }
    snprintf(starts_at, HS_RFC3339_MAX, "%s", stored_starts_at ? stored_starts_at : "");
    if (latest)
        hs_period_end_rfc3339(latest, ends_at, HS_RFC3339_MAX);
}

bool hs_alert_fingerprint_valid(const char *fingerprint)
{
    size_t len = fingerprint ? strnlen(fingerprint, HS_FINGERPRINT_MAX) : 0;
    if (len != HS_FINGERPRINT_MAX - 1)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((fingerprint[i] >= '0' && fingerprint[i] <= '9') ||
              (fingerprint[i] >= 'a' && fingerprint[i] <= 'f')))
            return false;
    return true;
}

const char *hs_severity_label(Healthsignals__V1__Severity severity)
{
    switch (severity) {
    case HEALTHSIGNALS__V1__SEVERITY__INFO: return "info";
    case HEALTHSIGNALS__V1__SEVERITY__WARNING: return "warning";
    case HEALTHSIGNALS__V1__SEVERITY__CRITICAL: return "critical";
    default: return "none";
    }
}

static int compare_labels(const void *a, const void *b)
{
    const Healthsignals__V1__Alert__LabelsEntry *const *la = a, *const *lb = b;
    return strcmp((*la)->key, (*lb)->key);
}

bool hs_alert_labels_build(hs_alert_labels *out, const char *const core[][2], size_t n_core,
                           const Healthsignals__V1__Rule *rule)
{
    size_t n_rule = rule ? rule->n_labels : 0, cap = n_core + n_rule;
    *out = (hs_alert_labels){0};
    out->entries = calloc(cap ? cap : 1, sizeof *out->entries);
    out->items = calloc(cap ? cap : 1, sizeof *out->items); // NOLINT(bugprone-sizeof-expression): pointers
    if (!out->entries || !out->items) {
        hs_alert_labels_free(out);
        return false;
    }
    for (size_t i = 0; i < cap; i++) {
        Healthsignals__V1__Alert__LabelsEntry init = HEALTHSIGNALS__V1__ALERT__LABELS_ENTRY__INIT;
        out->entries[i] = init;
    }
    size_t n = 0;
    for (size_t i = 0; i < n_core; i++) {
        out->entries[n].key = (char *)core[i][0];
        out->entries[n].value = (char *)core[i][1];
        out->items[n] = &out->entries[n];
        n++;
    }
    for (size_t i = 0; i < n_rule; i++) {
        bool taken = false;
        for (size_t k = 0; k < n_core && !taken; k++)
            taken = strcmp(rule->labels[i]->key, core[k][0]) == 0;
        /* A rule's map may repeat a key only through a malformed record; keep the first. */
        for (size_t k = n_core; k < n && !taken; k++)
            taken = strcmp(rule->labels[i]->key, out->entries[k].key) == 0;
        if (taken)
            continue;
        out->entries[n].key = rule->labels[i]->key;
        out->entries[n].value = rule->labels[i]->value;
        out->items[n] = &out->entries[n];
        n++;
    }
    qsort(out->items, n, sizeof *out->items, compare_labels); // NOLINT(bugprone-sizeof-expression): as above
    out->count = n;
    return true;
}

void hs_alert_labels_free(hs_alert_labels *labels)
{
    free(labels->entries);
    free(labels->items);
    *labels = (hs_alert_labels){0};
}

void hs_alert_store_init(hs_alert_store *store)
{
    hs_table_init(&store->alerts);
    store->firing = 0;
}

void hs_alert_store_free(hs_alert_store *store)
{
    hs_table_free(&store->alerts);
    store->firing = 0;
}

bool hs_alert_same_labels(const Healthsignals__V1__Alert *a, const Healthsignals__V1__Alert *b)
{
    if (a->n_labels != b->n_labels)
        return false;
    for (size_t i = 0; i < a->n_labels; i++)
        if (strcmp(a->labels[i]->key, b->labels[i]->key) != 0 ||
            strcmp(a->labels[i]->value, b->labels[i]->value) != 0)
            return false;
    return true;
}

/* An alert's labels are its identity to Alertmanager and to any subscriber that knows alerts by them: when
 * the labels of a FIRING alert change (its rule's labels or severity changed), the alert under its old
 * labels is resolved first, so that no subscriber is left with it active. */
static hs_err resolve_if_relabelled(hs_alert_store *store, const Healthsignals__V1__Alert *alert,
                                    hs_emit *emit, hs_error *error)
{
    Healthsignals__V1__Alert *was = hs_alert_stored(store, alert->fingerprint);
    if (!was)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory reading alert %s", alert->fingerprint);
    bool relabelled = !hs_alert_same_labels(was, alert);
    protobuf_c_message_free_unpacked(&was->base, NULL);
    return relabelled ? hs_alert_retire(store, alert->fingerprint, "its labels changed", emit, error) : HS_OK;
}

hs_err hs_alert_put(hs_alert_store *store, const Healthsignals__V1__Alert *alert, hs_emit *emit,
                    hs_error *error)
{
    /* One key form for every service's alerts, so that a subscriber of hs.alerts.v1 can rely on it. */
    if (!hs_alert_fingerprint_valid(alert->fingerprint))
        return hs_error_set(error, HS_ERR_INTERNAL,
                            "alert fingerprint '%.40s' is not 16 hex digits of "
                            "hs_alert_fingerprint",
                            alert->fingerprint ? alert->fingerprint : "");
    size_t len = 1 + protobuf_c_message_get_packed_size(&alert->base);
    uint8_t small[2048];
    uint8_t *bytes = len <= sizeof small ? small : malloc(len);
    if (!bytes)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory packing an alert");
    bool firing = alert->state == HEALTHSIGNALS__V1__ALERT_STATE__FIRING;
    bytes[0] = firing;
    protobuf_c_message_pack(&alert->base, bytes + 1);
    const hs_table_entry *old = hs_table_get(&store->alerts, alert->fingerprint);
    hs_err err = HS_OK;
    if (old && old->value[0] && !(old->value_len == len && memcmp(old->value, bytes, len) == 0)) {
        err = resolve_if_relabelled(store, alert, emit, error);
        old = hs_table_get(&store->alerts, alert->fingerprint); /* the retirement replaced it */
    }
    bool was_firing = old && old->value[0];
    hs_table_change change =
        err ? HS_TABLE_UNCHANGED : hs_table_put(&store->alerts, alert->fingerprint, bytes, len);
    if (change == HS_TABLE_NOMEM) {
        err = hs_error_set(error, HS_ERR_NOMEM, "out of memory storing an alert");
    } else if (err == HS_OK) {
        /* Emitted even when the store holds these bytes already: the driver drops what it emitted before,
         * and when it must emit everything again (the runtime reconciling a partition with changed rules),
         * it can only if the calculation emits it. */
        store->firing += firing && !was_firing;
        store->firing -= was_firing && !firing;
        err = hs_emit_put_packed(emit, hs_topic_find(HS_TOPIC_ALERTS), alert->fingerprint, &alert->base,
                                 bytes + 1, len - 1);
        if (err)
            hs_error_set(error, err, "emitting alert %s: %s", alert->fingerprint, hs_err_str(err));
    }
    if (bytes != small)
        free(bytes);
    return err;
}

hs_err hs_alert_put_described(hs_alert_store *store, const Healthsignals__V1__Alert *alert,
                              const char *summary, const char *description, hs_emit *emit, hs_error *error)
{
    Healthsignals__V1__Alert__AnnotationsEntry entries[2] = {
        HEALTHSIGNALS__V1__ALERT__ANNOTATIONS_ENTRY__INIT, HEALTHSIGNALS__V1__ALERT__ANNOTATIONS_ENTRY__INIT};
    entries[0].key = "description";
    entries[0].value = (char *)description;
    entries[1].key = "summary";
    entries[1].value = (char *)summary;
    Healthsignals__V1__Alert__AnnotationsEntry *annotations[2] = {&entries[0], &entries[1]};
    Healthsignals__V1__Alert described = *alert;
    described.n_annotations = 2;
    described.annotations = annotations;
    return hs_alert_put(store, &described, emit, error);
}

Healthsignals__V1__Alert *hs_alert_stored(const hs_alert_store *store, const char *fingerprint)
{
    const hs_table_entry *e = hs_table_get(&store->alerts, fingerprint);
    if (!e || e->value_len < 1)
        return NULL;
    return (Healthsignals__V1__Alert *)protobuf_c_message_unpack(&healthsignals__v1__alert__descriptor, NULL,
                                                                 e->value_len - 1, e->value + 1);
}

hs_err hs_alert_retire(hs_alert_store *store, const char *fingerprint, const char *reason, hs_emit *emit,
                       hs_error *error)
{
    Healthsignals__V1__Alert *alert = hs_alert_stored(store, fingerprint);
    if (!alert)
        return HS_OK;
    hs_err err = HS_OK;
    if (alert->state == HEALTHSIGNALS__V1__ALERT_STATE__FIRING) {
        hs_period period;
        char ends[HS_RFC3339_MAX] = "", description[1200] = "";
        if (hs_period_parse(alert->period, &period, NULL) == HS_OK)
            hs_period_end_rfc3339(&period, ends, sizeof ends);
        /* Borrowed strings go into the unpacked message for the put; the owned ones come back after, for
         * protobuf_c_message_free_unpacked. */
        Healthsignals__V1__Alert__AnnotationsEntry *described = NULL;
        char *owned_description = NULL, *owned_ends = alert->ends_at;
        for (size_t i = 0; i < alert->n_annotations; i++)
            if (strcmp(alert->annotations[i]->key, "description") == 0) {
                described = alert->annotations[i];
                owned_description = described->value;
                snprintf(description, sizeof description, "%s Resolved: %s.", owned_description, reason);
                described->value = description;
            }
        alert->ends_at = ends;
        alert->state = HEALTHSIGNALS__V1__ALERT_STATE__RESOLVED;
        err = hs_alert_put(store, alert, emit, error);
        alert->ends_at = owned_ends;
        if (described)
            described->value = owned_description;
    }
    protobuf_c_message_free_unpacked(&alert->base, NULL);
    return err;
}

/* The longest figure hs_figure writes without printf: "-" and 15 digits (whole numbers below 1e15), or "-",
 * 8 digits, "." and 2 (decimals below 2^31 hundredths), and the NUL. Smaller buffers take printf's path. */
#define FIGURE_FAST_BYTES 17

/* "-"?, `whole`, and "." with one or two decimals when `hundredths` is not 0 (trailing zero left out): what
 * "%.2f" and hs_figure's trimming make of the figure. `buf` holds FIGURE_FAST_BYTES. */
static const char *write_figure(char *buf, bool negative, uint64_t whole, unsigned hundredths)
{
    size_t k = 0;
    if (negative)
        buf[k++] = '-';
    k += hs_u64_digits(buf + k, whole);
    if (hundredths) {
        buf[k++] = '.';
        buf[k++] = (char)('0' + hundredths / 10);
        if (hundredths % 10)
            buf[k++] = (char)('0' + hundredths % 10);
    }
    buf[k] = '\0';
    return buf;
}

const char *hs_figure(double x, char *buf, size_t size)
{
    /* Whole numbers, most figures, without printf. */
    if (x > -1e15 && x < 1e15 && x == (double)(int64_t)x && size >= FIGURE_FAST_BYTES) {
        int64_t v = (int64_t)x;
        return write_figure(buf, v < 0, v < 0 ? (uint64_t)-v : (uint64_t)v, 0);
    }
    /* Figures with decimals, when x * 100 is far enough from a tie (.5) that rounding it to the nearest
     * integer cannot differ from printf's rounding of the exact binary value: below 2^31 the product is off
     * by at most 2^-22 from the exact one, well inside the 1e-6 kept clear of the tie. */
    double scaled = x * 100.0;
    if (scaled > -2147483648.0 && scaled < 2147483648.0 && size >= FIGURE_FAST_BYTES) {
        double floor_part = floor(scaled), frac = scaled - floor_part;
        if (fabs(frac - 0.5) > 1e-6) {
            int64_t cents = (int64_t)floor_part + (frac > 0.5);
            uint64_t u = cents < 0 ? (uint64_t)-cents : (uint64_t)cents;
            return write_figure(buf, cents < 0, u / 100, (unsigned)(u % 100));
        }
    }
    snprintf(buf, size, "%.2f", x);
    char *dot = strchr(buf, '.');
    if (dot) {
        char *end = buf + strlen(buf) - 1;
        while (end > dot && *end == '0')
            *end-- = '\0';
        if (end == dot)
            *end = '\0';
    }
    if (strcmp(buf, "-0") == 0)
        snprintf(buf, size, "0");
    return buf;
}

void hs_text_figure(hs_text *t, double x)
{
    char figure[64];
    hs_text_add(t, hs_figure(x, figure, sizeof figure));
}

const char *hs_unit_suffix(Healthsignals__V1__Unit unit)
{
    switch (unit) {
    case HEALTHSIGNALS__V1__UNIT__PERCENT: return "%";
    case HEALTHSIGNALS__V1__UNIT__DAYS: return " days";
    case HEALTHSIGNALS__V1__UNIT__WEEKS: return " weeks";
    case HEALTHSIGNALS__V1__UNIT__DKK: return " DKK";
    case HEALTHSIGNALS__V1__UNIT__FTE: return " FTE";
    default: return "";
    }
}

const char *hs_scope_display_name(Healthsignals__V1__ScopeKind kind, const char *code, char *buf, size_t size)
{
    const char *region = hs_region_name(code);
    if (kind == HEALTHSIGNALS__V1__SCOPE_KIND__REGION && region)
        return region;
    if (kind == HEALTHSIGNALS__V1__SCOPE_KIND__NATIONAL)
        return "Hele landet";
    snprintf(buf, size, "%s %s",
             kind == HEALTHSIGNALS__V1__SCOPE_KIND__HOSPITAL ? "hospital" : "municipality", code);
    return buf;
}
