/* Alerts: what every service that raises alerts on hs.alerts.v1 shares, so that one alert reads like
 * another whichever service raised it — the stable fingerprint, the fire / stay / resolve step over a series
 * of evaluated periods and the startsAt / endsAt it gives, the identifying labels merged with a rule's own,
 * the severity as a label, and the figures and names the annotations are written with. What counts as a
 * breach in a period is the service's: it depends on what the service evaluates.
 */
#ifndef HS_ALERT_H
#define HS_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "healthsignals/v1/alert.pb-c.h"
#include "healthsignals/v1/common.pb-c.h"
#include "healthsignals/v1/rule.pb-c.h"
#include "hs/calc.h"
#include "hs/period.h"
#include "hs/table.h"
#include "hs/text.h"

/* Buffer size of a fingerprint: 16 hex digits and the NUL. */
#define HS_FINGERPRINT_MAX 17

/* The fingerprint of an alert, its record key on hs.alerts.v1: a 64-bit XXH3 digest of its identity, in 16
 * lowercase hex digits, the same function and the same parts for every service:
 *   - `alertname`: the alert's alertname label (a rule's alert: the rule id);
 *   - `scope_component`: its scope as in its scope label and the keys ("region:1085");
 *   - `subject`: its subject (the indicator or resource code);
 *   - `qualifier`: what tells apart alerts of one alertname, scope and subject, as one of its labels shows it
 *     (capacity: the escalation level, "4"), or NULL when nothing does.
 * The parts are length-prefixed, so ("ab", "c") and ("a", "bc") differ; a NULL qualifier is no part at all,
 * so a rule's alert keeps the key it has always had. Stable across versions: it is a record key. */
void hs_alert_fingerprint(const char *alertname, const char *scope_component, const char *subject,
                          const char *qualifier, char out[HS_FINGERPRINT_MAX]);

/* True when `fingerprint` has the form hs_alert_fingerprint writes: exactly 16 lowercase hex digits.
 * hs_alert_put refuses any other, and so does hs_validate_alert. */
bool hs_alert_fingerprint_valid(const char *fingerprint);

/* The alert state machine of docs/domain.md §6, shared by every service: over a series of
 * evaluable periods in time order, an alert fires after `for_periods` consecutive breached periods, stays
 * firing while breached, and resolves in the first period that is on the good side by at least the
 * hysteresis margin (a period on the good side by less keeps it firing, and ends the run of breaches). A
 * period that cannot be evaluated (suspended, no baseline) is not stepped at all: it neither fires nor
 * resolves. Periods are the caller's indices (into its series), so that a history can be kept per period as a
 * checkpoint. */
typedef struct hs_alert_history {
    bool episode;        /* the alert fired at least once */
    bool firing;         /* ... and is firing after the latest period */
    int32_t fired;       /* the period the last episode fired in (-1: none) */
    int32_t resolved;    /* the period it resolved in (-1: none, or firing) */
    int32_t last;        /* the latest evaluable period (-1: none) */
    uint32_t breach_run; /* consecutive breached periods up to `last` */
} hs_alert_history;

/* A history before any period. */
#define HS_ALERT_HISTORY_START ((hs_alert_history){.fired = -1, .resolved = -1, .last = -1})

/* Steps `h` through period `at`: `breached` (missed, worse than allowed), else `gap` is how far it is on the
 * good side (>= 0), which resolves a firing alert when it is at least `hysteresis`. `for_periods` 0 is 1. */
void hs_alert_step(hs_alert_history *h, int32_t at, bool breached, double gap, double hysteresis,
                   unsigned for_periods);

bool hs_alert_history_equal(const hs_alert_history *a, const hs_alert_history *b);

/* True when the alert fired and has resolved since. A resolved alert is frozen at the period it resolved in,
 * as Alertmanager keeps a resolved alert as it was when it resolved: later good periods change nothing it
 * shows, and later breaches either fire a new episode or (before for_periods of them) change nothing. */
bool hs_alert_history_resolved(const hs_alert_history *h);

/* The period the alert shows: the one it resolved in when resolved, else the latest evaluable one. */
int32_t hs_alert_history_shown(const hs_alert_history *h);

/* The alert's startsAt and endsAt from its history, never from the wall clock, so that a replay writes the
 * same bytes: the end of the period it fired in (`fired`), and the end of the period it resolved in
 * (`resolved`; "" while firing). Without an episode — the alert fired once, but a revision took away every
 * breach — it keeps the startsAt it was emitted with (`stored_starts_at`) and ends at the end of `latest`,
 * the period where the series now stands. Periods not needed may be NULL. */
void hs_alert_bounds(const hs_alert_history *h, const hs_period *fired, const hs_period *resolved,
                     const hs_period *latest, const char *stored_starts_at, char starts_at[HS_RFC3339_MAX],
                     char ends_at[HS_RFC3339_MAX]);

/* Whether two alerts carry the same labels (keys and values) in the same order; hs_alert_labels_build sorts
 * them, so alerts built by it compare as sets. Labels are an alert's identity, as in Alertmanager. */
bool hs_alert_same_labels(const Healthsignals__V1__Alert *a, const Healthsignals__V1__Alert *b);

/* The severity as Alertmanager's label value: "info", "warning", "critical" ("none" when unspecified). */
const char *hs_severity_label(Healthsignals__V1__Severity severity);

/* The labels of one alert, in the form protobuf-c wants for a map (an array of entry pointers). The strings
 * are borrowed from the arguments of hs_alert_labels_build. */
typedef struct hs_alert_labels {
    Healthsignals__V1__Alert__LabelsEntry *entries;
    Healthsignals__V1__Alert__LabelsEntry **items;
    size_t count;
} hs_alert_labels;

/* Builds the labels: the identifying `core` pairs {name, value} (alertname, service, scope, ...) and then
 * `rule`'s own labels (may be NULL), where a core name wins over a rule label of the same name; sorted by
 * name, for stable bytes. Returns false when out of memory (then `out` holds nothing to free). */
bool hs_alert_labels_build(hs_alert_labels *out, const char *const core[][2], size_t n_core,
                           const Healthsignals__V1__Rule *rule);
void hs_alert_labels_free(hs_alert_labels *labels);

/* The last alert emitted per fingerprint, which a calculation keeps so that an alert that fired can later
 * be resolved — by a revision, a deleted rule, or data that is gone — and a count of those FIRING, for the
 * service's gauge without unpacking every alert on each scrape. Entries are the packed Alert after one byte
 * that says whether it is FIRING. */
typedef struct hs_alert_store {
    hs_table alerts; /* fingerprint -> FIRING byte + packed Alert */
    size_t firing;
} hs_alert_store;

void hs_alert_store_init(hs_alert_store *store);
void hs_alert_store_free(hs_alert_store *store);

/* Emits `alert` (to hs.alerts.v1, key: its fingerprint) and stores it as the last emitted. A fingerprint
 * not of hs_alert_fingerprint's form is a bug of the caller: HS_ERR_INTERNAL, nothing emitted. When the
 * alert of the fingerprint is FIRING under other labels (its rule's labels or severity changed), that one is
 * first emitted RESOLVED ("Resolved: its labels changed.", as hs_alert_retire), so that a subscriber that
 * knows alerts by their labels never keeps one active that no longer fires. It is emitted even when the store
 * holds the same bytes: dropping repeats is the driver's (hs/calc.h), and a driver that must have every
 * output again (the runtime after a rule change it cannot prove committed) gets it. */
hs_err hs_alert_put(hs_alert_store *store, const Healthsignals__V1__Alert *alert, hs_emit *emit,
                    hs_error *error);

/* hs_alert_put() with the two annotations every alert carries, "description" and "summary" (in that order,
 * sorted by key as a map's entries are); whatever `alert` held as annotations is not used. */
hs_err hs_alert_put_described(hs_alert_store *store, const Healthsignals__V1__Alert *alert,
                              const char *summary, const char *description, hs_emit *emit, hs_error *error);

/* The last alert emitted for `fingerprint`, unpacked (free with protobuf_c_message_free_unpacked), or
 * NULL when none was (or out of memory). */
Healthsignals__V1__Alert *hs_alert_stored(const hs_alert_store *store, const char *fingerprint);

/* The alert of `fingerprint` is no longer evaluated (its rule was deleted or changed, or nothing is left to
 * evaluate): if its last state is FIRING, it is emitted RESOLVED, ending at the end of the period it last
 * showed, with "Resolved: <reason>." added to its description. Otherwise nothing happens. */
hs_err hs_alert_retire(hs_alert_store *store, const char *fingerprint, const char *reason, hs_emit *emit,
                       hs_error *error);

/* A figure for annotations: at most two decimals, no trailing zeros ("134.4", "79", "-18"). Returns buf. */
const char *hs_figure(double x, char *buf, size_t size);

/* Appends hs_figure(x). */
void hs_text_figure(hs_text *t, double x);

/* What follows a figure in text for its unit: "%", " days", " weeks", " DKK", " FTE", or "". */
const char *hs_unit_suffix(Healthsignals__V1__Unit unit);

/* A scope as people name it: the region's Danish name ("Sjælland"), "Hele landet" for the nation, else
 * "hospital CODE" / "municipality CODE" written into `buf`. */
const char *hs_scope_display_name(Healthsignals__V1__ScopeKind kind, const char *code, char *buf,
                                  size_t size);

#endif
