/* The capacity calculation (see capacity.h). State: per resource the live observations (record key ->
 * capacity_fact) and the status keys last emitted; the capacity rules (id -> packed Rule); the alerts last
 * emitted (fingerprint -> packed Alert). hs.capacity.v1 is partitioned by resource, so every scope of a
 * resource is here together: a changed fact recomputes the whole resource — roll-ups, every series' levels
 * in period order, and the alerts — and emits it all; the driver publishes only what changed.
 */
#include "capacity.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "healthsignals/v1/alert.pb-c.h"
#include "healthsignals/v1/capacity.pb-c.h"
#include "healthsignals/v1/capacity_status.pb-c.h"
#include "healthsignals/v1/rule.pb-c.h"
#include "hs/alert.h"
#include "hs/period.h"
#include "hs/validate.h"

#define SERVICE  "capacity"
#define CODE_MAX 48 /* a scope code: "DK", "1084", a hospital (32), a municipality */

static const char *const builtin_resources[] = {"beds.intensive", "beds.medical", "beds.surgical",
                                                "slots.operating", "slots.outpatient"};
static const char *const region_codes[] = {"1081", "1082", "1083", "1084", "1085"};

/* One observation as kept in the state (the table value bytes). */
typedef struct capacity_fact {
    hs_period period;
    int scope_kind;
    char scope_code[CODE_MAX];
    double available, occupied, normed;
    bool has_normed, provisional;
} capacity_fact;

typedef struct capacity_resource {
    char *name;
    hs_table facts;   /* record key -> capacity_fact */
    hs_table outputs; /* status keys emitted (and not deleted) -> nothing */
} capacity_resource;

typedef struct capacity_state {
    capacity_resource *resources; /* owned; a few, one per resource seen */
    size_t count, capacity;
    hs_table rules;        /* rule id -> packed Rule (service "capacity") */
    hs_alert_store alerts; /* the last Alert emitted per fingerprint */
} capacity_state;

/* A status being computed: an observation, or a roll-up of its members. */
typedef struct capacity_entry {
    capacity_fact fact;
    bool rollup;
    char **members; /* malloc'd "kind:code" strings, sorted; NULL for an observation */
    size_t n_members;
    unsigned level, threshold_level;
} capacity_entry;

typedef struct entry_list {
    capacity_entry *items;
    size_t count, capacity;
} entry_list;

/* --- pure building blocks (capacity.h) --------------------------------------------------------------------
 */

capacity_params capacity_params_default(void)
{
    capacity_params p = {
        .thresholds_pct = {CAPACITY_DEFAULT_THRESHOLD_2_PCT, CAPACITY_DEFAULT_THRESHOLD_3_PCT,
                           CAPACITY_DEFAULT_THRESHOLD_4_PCT},
        .hysteresis_pct_points = CAPACITY_DEFAULT_HYSTERESIS_PCT_POINTS,
        .for_periods = 0,
        .alert_level = CAPACITY_DEFAULT_ALERT_LEVEL,
    };
    return p;
}

bool capacity_resource_builtin(const char *resource)
{
    for (size_t i = 0; i < sizeof builtin_resources / sizeof builtin_resources[0]; i++)
        if (strcmp(builtin_resources[i], resource) == 0)
            return true;
    return false;
}

bool capacity_hospital_region(const char *hospital_code, char region[5])
{
    for (size_t i = 0; i < sizeof region_codes / sizeof region_codes[0]; i++)
        if (strncmp(hospital_code, region_codes[i], 4) == 0 && hospital_code[4] == '-' && hospital_code[5]) {
            memcpy(region, region_codes[i], 5);
            return true;
        }
    return false;
}

bool capacity_utilisation(double available, double occupied, double *pct)
{
    if (!(available > 0))
        return false;
    /* A tiny `available` (1e-300 beds) can make the quotient overflow: such a utilisation is no figure, and
     * is treated as nothing available, never emitted as Infinity. */
    double quotient = occupied / available * 100.0;
    if (!isfinite(quotient))
        return false;
    *pct = quotient;
    return true;
}

/* Utilisation for comparisons: nothing available with patients present counts as infinitely full. */
static double effective_utilisation(double available, double occupied)
{
    double pct;
    if (capacity_utilisation(available, occupied, &pct))
        return pct;
    return occupied > 0 ? INFINITY : 0.0;
}

unsigned capacity_threshold_level(double available, double occupied, const capacity_params *params)
{
    /* The calculation passes only counts it checked (apply_observation) and their sums, which stay finite:
     * a NaN here would choose level 1 silently, so it is a bug, not input. */
    assert(isfinite(available) && isfinite(occupied));
    double pct = effective_utilisation(available, occupied);
    unsigned level = 1;
    for (int i = 0; i < 3; i++)
        if (pct >= params->thresholds_pct[i])
            level = (unsigned)i + 2;
    return level;
}

void capacity_levels(const capacity_point *points, size_t count, const capacity_params *params,
                     unsigned *levels)
{
    size_t needed = params->for_periods > 1 ? params->for_periods : 1;
    unsigned level = 1;
    size_t streak = 0; /* consecutive periods ending here whose threshold level is above `level` */
    for (size_t i = 0; i < count; i++) {
        unsigned raw = capacity_threshold_level(points[i].available, points[i].occupied, params);
        if (raw > level) {
            bool consecutive = i > 0 && points[i].ordinal == points[i - 1].ordinal + 1;
            streak = consecutive && streak > 0 ? streak + 1 : 1;
            if (streak >= needed) {
                unsigned lowest = raw; /* the level held through the last `needed` periods */
                for (size_t k = i + 1 - needed; k < i; k++) {
                    unsigned r = capacity_threshold_level(points[k].available, points[k].occupied, params);
                    lowest = r < lowest ? r : lowest;
                }
                level = lowest;
                streak = 0;
            }
        } else {
            streak = 0;
            double pct = effective_utilisation(points[i].available, points[i].occupied);
            while (level > 1 && pct < params->thresholds_pct[level - 2] - params->hysteresis_pct_points)
                level--;
        }
        levels[i] = level;
    }
}

/* --- state ------------------------------------------------------------------------------------------------
 */

static void *capacity_create(void)
{
    capacity_state *s = calloc(1, sizeof *s);
    if (s) {
        hs_table_init(&s->rules);
        hs_alert_store_init(&s->alerts);
    }
    return s;
}

static void capacity_destroy(void *state)
{
    capacity_state *s = state;
    for (size_t i = 0; i < s->count; i++) {
        free(s->resources[i].name);
        hs_table_free(&s->resources[i].facts);
        hs_table_free(&s->resources[i].outputs);
    }
    free(s->resources);
    hs_table_free(&s->rules);
    hs_alert_store_free(&s->alerts);
    free(s);
}

/* The state of `name`, created when `create`; NULL when absent or out of memory. */
static capacity_resource *resource_find(capacity_state *s, const char *name, bool create)
{
    for (size_t i = 0; i < s->count; i++)
        if (strcmp(s->resources[i].name, name) == 0)
            return &s->resources[i];
    if (!create)
        return NULL;
    capacity_resource *grown = hs_array_grow(s->resources, &s->capacity, s->count, sizeof *grown, 4);
    if (!grown)
        return NULL;
    s->resources = grown;
    capacity_resource *r = &s->resources[s->count];
    r->name = strdup(name);
    if (!r->name)
        return NULL;
    hs_table_init(&r->facts);
    hs_table_init(&r->outputs);
    s->count++;
    return r;
}

/* The capacity rules about `resource`, unpacked, sorted by id (the caller frees with rules_free). */
static Healthsignals__V1__Rule **rules_of(const capacity_state *s, const char *resource, size_t *count)
{
    size_t n = 0, cursor = 0;
    Healthsignals__V1__Rule **rules = calloc(s->rules.count + 1, sizeof(Healthsignals__V1__Rule *));
    const hs_table_entry *e;
    while (rules && (e = hs_table_next(&s->rules, &cursor))) {
        Healthsignals__V1__Rule *r = healthsignals__v1__rule__unpack(NULL, e->value_len, e->value);
        if (r && strcmp(r->subject, resource) == 0)
            rules[n++] = r;
        else if (r)
            healthsignals__v1__rule__free_unpacked(r, NULL);
    }
    for (size_t i = 1; i < n; i++) /* insertion sort by id: a handful of rules */
        for (size_t k = i; k > 0 && strcmp(rules[k - 1]->id, rules[k]->id) > 0; k--) {
            Healthsignals__V1__Rule *t = rules[k];
            rules[k] = rules[k - 1];
            rules[k - 1] = t;
        }
    *count = n;
    return rules;
}

static void rules_free(Healthsignals__V1__Rule **rules, size_t count)
{
    for (size_t i = 0; i < count; i++)
        healthsignals__v1__rule__free_unpacked(rules[i], NULL);
    free(rules);
}

/* The first rule (by id) that covers the scope: its scopes list it, or it lists none. NULL: defaults. */
static const Healthsignals__V1__Rule *rule_for(Healthsignals__V1__Rule *const *rules, size_t count, int kind,
                                               const char *code)
{
    for (size_t i = 0; i < count; i++) {
        if (rules[i]->n_scopes == 0)
            return rules[i];
        for (size_t k = 0; k < rules[i]->n_scopes; k++)
            if ((int)rules[i]->scopes[k]->kind == kind && strcmp(rules[i]->scopes[k]->code, code) == 0)
                return rules[i];
    }
    return NULL;
}

static capacity_params params_of(const Healthsignals__V1__Rule *rule)
{
    capacity_params p = capacity_params_default();
    if (!rule)
        return p;
    if (rule->n_level_thresholds_pct == 3)
        memcpy(p.thresholds_pct, rule->level_thresholds_pct, sizeof p.thresholds_pct);
    p.hysteresis_pct_points = rule->hysteresis;
    p.for_periods = rule->for_periods;
    if (rule->alert_level >= 1 && rule->alert_level <= 4)
        p.alert_level = rule->alert_level;
    return p;
}

/* --- roll-ups ---------------------------------------------------------------------------------------------
 */

static bool entry_push(entry_list *list, const capacity_entry *entry)
{
    capacity_entry *grown = hs_array_grow(list->items, &list->capacity, list->count, sizeof *grown, 16);
    if (!grown)
        return false;
    list->items = grown;
    list->items[list->count++] = *entry;
    return true;
}

static void entries_free(entry_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        for (size_t k = 0; k < list->items[i].n_members; k++)
            free(list->items[i].members[k]);
        free(list->items[i].members);
    }
    free(list->items);
}

static int compare_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* An entry of scope (kind, code) in `period`, among the first `count` entries; NULL when none. */
static const capacity_entry *entry_find(const entry_list *list, size_t count, int kind, const char *code,
                                        const hs_period *period)
{
    for (size_t i = 0; i < count; i++) {
        const capacity_fact *f = &list->items[i].fact;
        if (f->scope_kind == kind && strcmp(f->scope_code, code) == 0 &&
            hs_period_compare(&f->period, period) == 0)
            return &list->items[i];
    }
    return NULL;
}

/* Whether the entry is a member of the roll-up into (kind, code): a hospital of the region, or a region of
 * the nation. */
static bool member_of(const capacity_fact *f, int kind, const char *code)
{
    char region[5];
    if (kind == HEALTHSIGNALS__V1__SCOPE_KIND__REGION)
        return f->scope_kind == HEALTHSIGNALS__V1__SCOPE_KIND__HOSPITAL &&
               capacity_hospital_region(f->scope_code, region) && strcmp(region, code) == 0;
    return f->scope_kind == HEALTHSIGNALS__V1__SCOPE_KIND__REGION;
}

/* Adds the roll-up of (kind, code) in `period` when it has no entry of its own and has members among the
 * entries (the nation: all five regions): sums of available, occupied (and normed, when every member has
 * one). The sums cannot overflow: every member's counts are at most HS_VALIDATE_COUNT_MAX (1e12), so even
 * a billion members sum below 1e21, nowhere near DBL_MAX. */
static bool add_rollup(entry_list *list, int kind, const char *code, const hs_period *period)
{
    size_t count = list->count;
    if (entry_find(list, count, kind, code, period))
        return true; /* the scope's own observation wins */
    capacity_entry sum = {.rollup = true};
    sum.fact.period = *period;
    sum.fact.scope_kind = kind;
    snprintf(sum.fact.scope_code, sizeof sum.fact.scope_code, "%s", code);
    sum.fact.has_normed = true;
    for (size_t i = 0; i < count; i++) {
        const capacity_fact *f = &list->items[i].fact;
        if (hs_period_compare(&f->period, period) != 0 || !member_of(f, kind, code))
            continue;
        char **grown = realloc(sum.members, (sum.n_members + 1) * sizeof *grown);
        char name[CODE_MAX + 16];
        Healthsignals__V1__Scope scope = HEALTHSIGNALS__V1__SCOPE__INIT;
        scope.kind = (Healthsignals__V1__ScopeKind)f->scope_kind;
        scope.code = (char *)f->scope_code;
        hs_topic_scope_component(&scope, name, sizeof name);
        if (!grown || !(grown[sum.n_members] = strdup(name))) {
            free(grown ? grown : sum.members);
            return false; /* leaks nothing but the strings so far: acceptable only on OOM */
        }
        sum.members = grown;
        sum.n_members++;
        sum.fact.available += f->available;
        sum.fact.occupied += f->occupied;
        sum.fact.normed += f->normed;
        sum.fact.has_normed = sum.fact.has_normed && f->has_normed;
        sum.fact.provisional = sum.fact.provisional || f->provisional;
    }
    /* A region sums the hospitals present; the nation needs all five regions, since a partial sum would
     * pass for the nation while it understates it. */
    size_t needed =
        kind == HEALTHSIGNALS__V1__SCOPE_KIND__NATIONAL ? sizeof region_codes / sizeof region_codes[0] : 1;
    if (sum.n_members < needed) {
        for (size_t k = 0; k < sum.n_members; k++)
            free(sum.members[k]);
        free(sum.members);
        return true;
    }
    if (!sum.fact.has_normed)
        sum.fact.normed = 0;
    qsort(sum.members, sum.n_members, sizeof *sum.members, compare_text);
    if (!entry_push(list, &sum)) {
        for (size_t k = 0; k < sum.n_members; k++)
            free(sum.members[k]);
        free(sum.members);
        return false;
    }
    return true;
}

static int compare_period(const void *a, const void *b)
{
    return hs_period_compare(a, b);
}

/* Orders entries into series: by scope kind, code, period kind, then period. */
static int compare_entry(const void *a, const void *b)
{
    const capacity_fact *x = &((const capacity_entry *)a)->fact, *y = &((const capacity_entry *)b)->fact;
    if (x->scope_kind != y->scope_kind)
        return x->scope_kind < y->scope_kind ? -1 : 1;
    int c = strcmp(x->scope_code, y->scope_code);
    if (c)
        return c;
    return hs_period_compare(&x->period, &y->period);
}

/* The observations of `r` plus the roll-ups: per period, regions from hospitals, then the nation from the
 * regions (observed or rolled up). */
static bool collect_entries(const capacity_resource *r, entry_list *list)
{
    size_t cursor = 0;
    const hs_table_entry *e;
    hs_period *periods = malloc((r->facts.count + 1) * sizeof *periods);
    if (!periods)
        return false;
    size_t n_periods = 0;
    while ((e = hs_table_next(&r->facts, &cursor))) {
        capacity_entry entry = {0};
        memcpy(&entry.fact, e->value, sizeof entry.fact);
        if (!entry_push(list, &entry)) {
            free(periods);
            return false;
        }
        periods[n_periods++] = entry.fact.period;
    }
    qsort(periods, n_periods, sizeof *periods, compare_period);
    bool okay = true;
    for (size_t i = 0; okay && i < n_periods; i++) {
        if (i > 0 && hs_period_compare(&periods[i - 1], &periods[i]) == 0)
            continue;
        for (size_t k = 0; okay && k < sizeof region_codes / sizeof region_codes[0]; k++)
            okay = add_rollup(list, HEALTHSIGNALS__V1__SCOPE_KIND__REGION, region_codes[k], &periods[i]);
        okay = okay && add_rollup(list, HEALTHSIGNALS__V1__SCOPE_KIND__NATIONAL, "DK", &periods[i]);
    }
    free(periods);
    if (okay && list->count > 0)
        qsort(list->items, list->count, sizeof *list->items, compare_entry);
    return okay;
}

/* --- outputs ----------------------------------------------------------------------------------------------
 */

static void period_text(const hs_period *p, char out[HS_PERIOD_TEXT_MAX])
{
    hs_period_format(p, out, HS_PERIOD_TEXT_MAX);
}

static hs_err emit_status(const char *resource, const capacity_entry *entry, const capacity_entry *previous,
                          const capacity_params *params, const char *rule, hs_table *emitted, hs_emit *emit,
                          hs_error *error)
{
    const capacity_fact *f = &entry->fact;
    Healthsignals__V1__CapacityStatus st = HEALTHSIGNALS__V1__CAPACITY_STATUS__INIT;
    Healthsignals__V1__Scope scope = HEALTHSIGNALS__V1__SCOPE__INIT;
    char period[HS_PERIOD_TEXT_MAX];
    period_text(&f->period, period);
    scope.kind = (Healthsignals__V1__ScopeKind)f->scope_kind;
    scope.code = (char *)f->scope_code;
    st.resource = (char *)resource;
    st.scope = &scope;
    st.period = period;
    st.available = f->available;
    st.occupied = f->occupied;
    double pct, previous_pct;
    if (capacity_utilisation(f->available, f->occupied, &pct)) {
        st._utilisation_pct_case = HEALTHSIGNALS__V1__CAPACITY_STATUS___UTILISATION_PCT_UTILISATION_PCT;
        st.utilisation_pct = pct;
        if (previous &&
            capacity_utilisation(previous->fact.available, previous->fact.occupied, &previous_pct)) {
            st._change_pct_points_case =
                HEALTHSIGNALS__V1__CAPACITY_STATUS___CHANGE_PCT_POINTS_CHANGE_PCT_POINTS;
            st.change_pct_points = pct - previous_pct;
        }
    }
    st.level = entry->level;
    st.threshold_level = entry->threshold_level;
    st.n_level_thresholds_pct = 3;
    st.level_thresholds_pct = (double *)params->thresholds_pct;
    st.hysteresis_pct_points = params->hysteresis_pct_points;
    st.for_periods = params->for_periods;
    st.alert_level = params->alert_level;
    st.rule = (char *)rule;
    st.rollup = entry->rollup;
    st.n_members = entry->n_members;
    st.members = entry->members;
    st.overcrowded = f->occupied > f->available;
    st.provisional = f->provisional;
    if (f->has_normed) {
        st._normed_case = HEALTHSIGNALS__V1__CAPACITY_STATUS___NORMED_NORMED;
        st.normed = f->normed;
    }
    const hs_topic *topic = hs_topic_find(HS_TOPIC_CAPACITY_STATUS);
    char key[HS_KEY_MAX], group[HS_KEY_MAX];
    hs_err err = hs_topic_key(topic, &st.base, key, group, error);
    if (err)
        return err;
    if (hs_table_put(emitted, key, "", 0) == HS_TABLE_NOMEM)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    return hs_emit_put(emit, topic, key, &st.base);
}

/* The alertname of every capacity alert. */
#define ALERTNAME "CapacityEscalation"

/* The fingerprint of the alert of `level` for one resource and scope: the shared function of every service
 * (hs/alert.h) over the alert's identity as its record shows it — alertname, scope, subject (the resource)
 * and the level that tells apart the alerts of one series. Independent of the rule that sets the
 * thresholds, so that applying one does not change which alert is which. */
static void fingerprint_of(const char *resource, const char *scope_component, unsigned level,
                           char out[HS_FINGERPRINT_MAX])
{
    char level_text[12];
    snprintf(level_text, sizeof level_text, "%u", level);
    hs_alert_fingerprint(ALERTNAME, scope_component, resource, level_text, out);
}

/* The severity of the alert of a level: CRITICAL at 4, WARNING at 3, INFO below. It is a label, and an
 * alert's labels never change: a series that escalates from 3 to 4 fires the level-4 alert beside the
 * level-3 one rather than changing the level-3 alert's severity. */
static Healthsignals__V1__Severity severity_of(unsigned level)
{
    return level >= 4   ? HEALTHSIGNALS__V1__SEVERITY__CRITICAL
           : level == 3 ? HEALTHSIGNALS__V1__SEVERITY__WARNING
                        : HEALTHSIGNALS__V1__SEVERITY__INFO;
}

/* The alert of `level` over a series (its levels computed), through the shared state machine: the levels
 * hold the rule's for_periods and hysteresis already, so a period at or above `level` is a breach that fires
 * at once, and one below resolves. */
static hs_alert_history level_history(const capacity_entry *series, size_t n, unsigned level)
{
    hs_alert_history h = HS_ALERT_HISTORY_START;
    for (size_t i = 0; i < n; i++)
        hs_alert_step(&h, (int32_t)i, series[i].level >= level, 0.0, 0.0, 1);
    return h;
}

/* One alert of a series as it is emitted: which, and what it shows. */
typedef struct level_alert {
    unsigned level;                /* the alert's level: it fires while the series is at or above it */
    const capacity_params *params; /* the series' thresholds */
    const char *resource, *scope_text, *rule_id;
    const Healthsignals__V1__Rule *rule; /* NULL: the defaults */
} level_alert;

/* Writes the annotations of `a` showing `shown` in `period`. The current level, utilisation and figures
 * change over the alert's life, so they are here and never in a label. */
static void level_alert_texts(const level_alert *a, const capacity_entry *shown, const char *period,
                              bool firing, char *summary, size_t summary_size, char *description,
                              size_t description_size)
{
    double pct = 0, threshold = a->level >= 2 ? a->params->thresholds_pct[a->level - 2] : 0.0;
    snprintf(summary, summary_size, "%s %s: escalation level %u%s", a->resource, a->scope_text, a->level,
             firing ? "" : " (resolved)");
    if (capacity_utilisation(shown->fact.available, shown->fact.occupied, &pct))
        snprintf(description, description_size,
                 "%s in %s, %s: utilisation %.1f %% (%.0f of %.0f), level %u; this alert fires at level %u "
                 "and above (%.1f %%).",
                 a->resource, a->scope_text, period, pct, shown->fact.occupied, shown->fact.available,
                 shown->level, a->level, threshold);
    else
        snprintf(
            description, description_size,
            "%s in %s, %s: no capacity available with %.0f occupied, level %u; this alert fires at level "
            "%u and above.",
            a->resource, a->scope_text, period, shown->fact.occupied, shown->level, a->level);
}

/* The alert of one level of one series (its entries in period order, levels computed): FIRING while the
 * latest period's level is at or above `a->level`; RESOLVED once an episode ended, or when the alert fired
 * before and the facts (a revision) no longer show it. Nothing when it never fired. Its labels — alertname,
 * service, resource, scope, level, severity and the rule's own — are the same in every state it is
 * emitted in. */
static hs_err emit_level_alert(capacity_state *s, const level_alert *a, const capacity_entry *series,
                               size_t n, hs_emit *emit, hs_error *error)
{
    const capacity_entry *last = &series[n - 1];
    Healthsignals__V1__Scope scope = HEALTHSIGNALS__V1__SCOPE__INIT;
    scope.kind = (Healthsignals__V1__ScopeKind)last->fact.scope_kind;
    scope.code = (char *)last->fact.scope_code;
    char fingerprint[HS_FINGERPRINT_MAX];
    fingerprint_of(a->resource, a->scope_text, a->level, fingerprint);

    hs_alert_history h = level_history(series, n, a->level);
    Healthsignals__V1__Alert *remembered = hs_alert_stored(&s->alerts, fingerprint);
    if (!h.episode && !remembered)
        return HS_OK; /* never fired */

    /* A resolved episode shows the period it resolved in, as Alertmanager keeps a resolved alert as it was
     * when it resolved; later periods below the level change nothing in it. startsAt / endsAt: the ends of
     * the periods it fired and resolved in, as every service's. */
    const capacity_entry *shown = &series[hs_alert_history_shown(&h)];
    char period[HS_PERIOD_TEXT_MAX], starts_at[HS_RFC3339_MAX], ends_at[HS_RFC3339_MAX];
    period_text(&shown->fact.period, period);
    bool firing = h.episode && h.firing;
    hs_alert_bounds(&h, h.fired >= 0 ? &series[h.fired].fact.period : NULL,
                    h.resolved >= 0 ? &series[h.resolved].fact.period : NULL, &shown->fact.period,
                    remembered ? remembered->starts_at : NULL, starts_at, ends_at);
    if (remembered)
        healthsignals__v1__alert__free_unpacked(remembered, NULL);

    char summary[256], description[512], level_text[4];
    level_alert_texts(a, shown, period, firing, summary, sizeof summary, description, sizeof description);
    snprintf(level_text, sizeof level_text, "%u", a->level);
    Healthsignals__V1__Severity severity = severity_of(a->level);
    /* The identifying labels, then the rule's own (an identifying name wins), sorted by name. */
    const char *const core[][2] = {{"alertname", ALERTNAME},  {"service", SERVICE},
                                   {"resource", a->resource}, {"scope", a->scope_text},
                                   {"level", level_text},     {"severity", hs_severity_label(severity)}};
    hs_alert_labels labels;
    if (!hs_alert_labels_build(&labels, core, sizeof core / sizeof core[0], a->rule))
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory building an alert");
    double pct = 0;
    capacity_utilisation(shown->fact.available, shown->fact.occupied, &pct);
    Healthsignals__V1__Alert alert = HEALTHSIGNALS__V1__ALERT__INIT;
    alert.fingerprint = fingerprint;
    alert.state = firing ? HEALTHSIGNALS__V1__ALERT_STATE__FIRING : HEALTHSIGNALS__V1__ALERT_STATE__RESOLVED;
    alert.severity = severity;
    alert.rule = (char *)a->rule_id;
    alert.service = SERVICE;
    alert.scope = &scope;
    alert.subject = (char *)a->resource;
    alert.period = period;
    alert.value = pct;
    alert.threshold = a->level >= 2 ? a->params->thresholds_pct[a->level - 2] : 0.0;
    alert.n_labels = labels.count;
    alert.labels = labels.items;
    alert.starts_at = starts_at;
    alert.ends_at = ends_at;
    hs_err err = hs_alert_put_described(&s->alerts, &alert, summary, description, emit, error);
    hs_alert_labels_free(&labels);
    return err;
}

/* The alerts of one series: one per level from the alert level to 4, each with its own fingerprint and
 * labels, so that an escalation fires another alert and never changes one that fired. The alert of a level
 * below the alert level (a rule raised it) is resolved, if it was firing. */
static hs_err emit_alerts(capacity_state *s, const char *resource, const capacity_entry *series, size_t n,
                          const capacity_params *params, const char *rule_id,
                          const Healthsignals__V1__Rule *rule, hs_emit *emit, hs_error *error)
{
    Healthsignals__V1__Scope scope = HEALTHSIGNALS__V1__SCOPE__INIT;
    scope.kind = (Healthsignals__V1__ScopeKind)series[n - 1].fact.scope_kind;
    scope.code = (char *)series[n - 1].fact.scope_code;
    char scope_text[CODE_MAX + 16];
    hs_topic_scope_component(&scope, scope_text, sizeof scope_text);
    hs_err err = HS_OK;
    for (unsigned level = 1; level <= 4 && !err; level++) {
        level_alert a = {.level = level,
                         .params = params,
                         .resource = resource,
                         .scope_text = scope_text,
                         .rule_id = rule_id,
                         .rule = rule};
        if (level >= params->alert_level) {
            err = emit_level_alert(s, &a, series, n, emit, error);
        } else {
            char fingerprint[HS_FINGERPRINT_MAX], reason[64];
            fingerprint_of(resource, scope_text, level, fingerprint);
            snprintf(reason, sizeof reason, "alerts now start at level %u", params->alert_level);
            err = hs_alert_retire(&s->alerts, fingerprint, reason, emit, error);
        }
    }
    return err;
}

/* Resolves the remembered FIRING alerts of `resource` whose scope has no series any more (every fact of the
 * scope deleted): the last emitted alert, RESOLVED at the end of its period (hs_alert_retire). */
static hs_err resolve_orphans(capacity_state *s, const char *resource, const entry_list *list, hs_emit *emit,
                              hs_error *error)
{
    size_t cursor = 0, n = 0;
    const hs_table_entry *e;
    char **orphans = calloc(s->alerts.alerts.count + 1, sizeof(char *));
    if (!orphans)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    while ((e = hs_table_next(&s->alerts.alerts, &cursor))) {
        Healthsignals__V1__Alert *a = hs_alert_stored(&s->alerts, e->key);
        if (!a)
            continue;
        bool mine = strcmp(a->subject, resource) == 0 && a->state == HEALTHSIGNALS__V1__ALERT_STATE__FIRING;
        for (size_t i = 0; mine && i < list->count; i++)
            mine = !((int)a->scope->kind == list->items[i].fact.scope_kind &&
                     strcmp(a->scope->code, list->items[i].fact.scope_code) == 0);
        if (mine)
            orphans[n++] = strdup(a->fingerprint);
        healthsignals__v1__alert__free_unpacked(a, NULL);
    }
    hs_err err = HS_OK;
    for (size_t i = 0; i < n; i++) {
        if (!err)
            err = orphans[i] ? hs_alert_retire(&s->alerts, orphans[i],
                                               "every observation of its scope was deleted", emit, error)
                             : hs_error_set(error, HS_ERR_NOMEM, "out of memory");
        free(orphans[i]);
    }
    free(orphans);
    return err;
}

/* Recomputes everything of one resource and emits it: statuses (deleting those that no longer exist) and
 * alerts. */
static hs_err recompute(capacity_state *s, capacity_resource *r, hs_emit *emit, hs_error *error)
{
    entry_list list = {0};
    hs_table emitted;
    hs_table_init(&emitted);
    size_t n_rules = 0;
    Healthsignals__V1__Rule **rules = rules_of(s, r->name, &n_rules);
    hs_err err = HS_OK;
    if (!rules || !collect_entries(r, &list)) {
        err = hs_error_set(error, HS_ERR_NOMEM, "out of memory recomputing %s", r->name);
        goto done;
    }
    capacity_point *points = malloc((list.count + 1) * sizeof *points);
    unsigned *levels = malloc((list.count + 1) * sizeof *levels);
    for (size_t begin = 0, end; points && levels && !err && begin < list.count; begin = end) {
        const capacity_fact *first = &list.items[begin].fact;
        for (end = begin + 1; end < list.count; end++) {
            const capacity_fact *f = &list.items[end].fact;
            if (f->scope_kind != first->scope_kind || strcmp(f->scope_code, first->scope_code) != 0 ||
                f->period.kind != first->period.kind)
                break;
        }
        const Healthsignals__V1__Rule *rule = rule_for(rules, n_rules, first->scope_kind, first->scope_code);
        capacity_params params = params_of(rule);
        const char *rule_id = rule ? rule->id : CAPACITY_DEFAULT_RULE;
        for (size_t i = begin; i < end; i++) {
            points[i - begin].ordinal = hs_period_ordinal(&list.items[i].fact.period);
            points[i - begin].available = list.items[i].fact.available;
            points[i - begin].occupied = list.items[i].fact.occupied;
        }
        capacity_levels(points, end - begin, &params, levels);
        for (size_t i = begin; i < end && !err; i++) {
            capacity_entry *entry = &list.items[i];
            entry->level = levels[i - begin];
            entry->threshold_level =
                capacity_threshold_level(entry->fact.available, entry->fact.occupied, &params);
            const capacity_entry *previous =
                i > begin && points[i - begin - 1].ordinal + 1 == points[i - begin].ordinal
                    ? &list.items[i - 1]
                    : NULL;
            err = emit_status(r->name, entry, previous, &params, rule_id, &emitted, emit, error);
        }
        /* One alert per resource x scope: from the scope's series of the shortest period kind, which
         * sorts last. */
        bool last_series_of_scope = end == list.count ||
                                    list.items[end].fact.scope_kind != first->scope_kind ||
                                    strcmp(list.items[end].fact.scope_code, first->scope_code) != 0;
        if (!err && last_series_of_scope)
            err =
                emit_alerts(s, r->name, &list.items[begin], end - begin, &params, rule_id, rule, emit, error);
    }
    if (!err && (!points || !levels))
        err = hs_error_set(error, HS_ERR_NOMEM, "out of memory recomputing %s", r->name);
    free(points);
    free(levels);
    if (!err)
        err = resolve_orphans(s, r->name, &list, emit, error);
    /* Statuses emitted before but not now: deleted. */
    size_t cursor = 0;
    const hs_table_entry *e;
    while (!err && (e = hs_table_next(&r->outputs, &cursor)))
        if (!hs_table_get(&emitted, e->key))
            err = hs_emit_put(emit, hs_topic_find(HS_TOPIC_CAPACITY_STATUS), e->key, NULL);
    if (!err) {
        hs_table_free(&r->outputs);
        r->outputs = emitted;
        hs_table_init(&emitted);
    }
done:
    hs_table_free(&emitted);
    entries_free(&list);
    if (rules)
        rules_free(rules, n_rules);
    return err;
}

/* --- apply ------------------------------------------------------------------------------------------------
 */

static hs_err apply_rule(capacity_state *s, const char *key, const Healthsignals__V1__Rule *rule,
                         hs_emit *emit, hs_error *error)
{
    if (rule && strcmp(rule->service, SERVICE) != 0)
        return HS_OK; /* another service's rule */
    if (rule && rule->kind != HEALTHSIGNALS__V1__RULE_KIND__ESCALATION_LEVELS)
        return hs_error_set(error, HS_ERR_VALIDATION,
                            "rule %s: the capacity service evaluates ESCALATION_LEVELS "
                            "rules only",
                            rule->id);
    char old_subject[HS_VALIDATE_CODE_MAX + 1] = "";
    const hs_table_entry *known = hs_table_get(&s->rules, key);
    if (known) {
        Healthsignals__V1__Rule *old = healthsignals__v1__rule__unpack(NULL, known->value_len, known->value);
        if (old)
            snprintf(old_subject, sizeof old_subject, "%s", old->subject);
        if (old)
            healthsignals__v1__rule__free_unpacked(old, NULL);
    }
    if (rule) {
        size_t len = protobuf_c_message_get_packed_size(&rule->base);
        uint8_t *bytes = malloc(len ? len : 1);
        if (!bytes)
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
        protobuf_c_message_pack(&rule->base, bytes);
        hs_table_change change = hs_table_put(&s->rules, key, bytes, len);
        free(bytes);
        if (change == HS_TABLE_NOMEM)
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    } else if (!hs_table_delete(&s->rules, key)) {
        return HS_OK; /* tombstone of a rule we never had */
    }
    hs_err err = HS_OK;
    capacity_resource *r = old_subject[0] ? resource_find(s, old_subject, false) : NULL;
    if (r)
        err = recompute(s, r, emit, error);
    r = rule && strcmp(rule->subject, old_subject) != 0 ? resource_find(s, rule->subject, false) : NULL;
    if (!err && r)
        err = recompute(s, r, emit, error);
    return err;
}

/* True when a capacity rule names `resource` as its subject. */
static bool resource_has_rule(const capacity_state *s, const char *resource)
{
    size_t n = 0;
    Healthsignals__V1__Rule **rules = rules_of(s, resource, &n);
    if (rules)
        rules_free(rules, n);
    return n > 0;
}

static hs_err apply_observation(capacity_state *s, const hs_topic *topic, const char *key,
                                const Healthsignals__V1__CapacityObservation *obs, hs_emit *emit,
                                hs_error *error)
{
    char group[HS_KEY_MAX];
    if (!obs) {
        hs_err err = hs_topic_group_of_key(topic, key, group, error);
        if (err)
            return err;
        capacity_resource *r = resource_find(s, group, false);
        if (!r || !hs_table_delete(&r->facts, key))
            return HS_OK; /* tombstone of a fact we never had */
        return recompute(s, r, emit, error);
    }
    if (!capacity_resource_builtin(obs->resource) && !resource_has_rule(s, obs->resource))
        return hs_error_set(error, HS_ERR_VALIDATION,
                            "resource '%s' is unknown: not built in and no capacity rule names it",
                            obs->resource);
    if (obs->_available_case != HEALTHSIGNALS__V1__CAPACITY_OBSERVATION___AVAILABLE_AVAILABLE)
        return hs_error_set(error, HS_ERR_VALIDATION, "available is required");
    /* Validation has refused these already; the calculation does not depend on it, since its sums are
     * finite only for counts within the bound. */
    if (!(obs->available >= 0 && obs->available <= HS_VALIDATE_COUNT_MAX) ||
        !(obs->occupied >= 0 && obs->occupied <= HS_VALIDATE_COUNT_MAX) ||
        (obs->_normed_case == HEALTHSIGNALS__V1__CAPACITY_OBSERVATION___NORMED_NORMED &&
         !(obs->normed >= 0 && obs->normed <= HS_VALIDATE_COUNT_MAX)))
        return hs_error_set(error, HS_ERR_VALIDATION, "available, occupied and normed must be counts 0-%.0f",
                            HS_VALIDATE_COUNT_MAX);
    capacity_fact fact;
    memset(&fact, 0, sizeof fact);
    hs_err err = hs_period_parse(obs->period, &fact.period, error);
    if (err)
        return err;
    char region[5];
    if (obs->scope->kind == HEALTHSIGNALS__V1__SCOPE_KIND__HOSPITAL &&
        !capacity_hospital_region(obs->scope->code, region))
        return hs_error_set(error, HS_ERR_VALIDATION,
                            "hospital '%s': the code must begin with its region's code, e.g. "
                            "'1084-rigshospitalet'",
                            obs->scope->code);
    if (strlen(obs->scope->code) >= sizeof fact.scope_code)
        return hs_error_set(error, HS_ERR_TOO_LARGE, "scope code too long");
    fact.scope_kind = (int)obs->scope->kind;
    memcpy(fact.scope_code, obs->scope->code, strlen(obs->scope->code) + 1);
    fact.available = obs->available;
    fact.occupied = obs->occupied;
    fact.has_normed = obs->_normed_case == HEALTHSIGNALS__V1__CAPACITY_OBSERVATION___NORMED_NORMED;
    fact.normed = fact.has_normed ? obs->normed : 0;
    fact.provisional = obs->provisional;

    capacity_resource *r = resource_find(s, obs->resource, true);
    if (!r)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    if (hs_table_put(&r->facts, key, &fact, sizeof fact) == HS_TABLE_NOMEM)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory storing %s", key);
    return recompute(s, r, emit, error);
}

static hs_err capacity_apply(void *state, const hs_topic *topic, const char *key,
                             const ProtobufCMessage *value, hs_emit *emit, hs_error *error)
{
    capacity_state *s = state;
    if (strcmp(topic->name, HS_TOPIC_RULES) == 0)
        return apply_rule(s, key, (const Healthsignals__V1__Rule *)value, emit, error);
    if (strcmp(topic->name, HS_TOPIC_CAPACITY) == 0)
        return apply_observation(s, topic, key, (const Healthsignals__V1__CapacityObservation *)value, emit,
                                 error);
    return hs_error_set(error, HS_ERR_VALIDATION, "%s is not an input of capacity", topic->name);
}

static const char *const capacity_inputs[] = {HS_TOPIC_CAPACITY, NULL};
static const char *const capacity_outputs[] = {HS_TOPIC_CAPACITY_STATUS, HS_TOPIC_ALERTS, NULL};

const hs_calc capacity_calc = {
    .name = SERVICE,
    .description =
        "utilisation and escalation levels 1-4 from capacity observations, with roll-ups and alerts",
    .inputs = capacity_inputs,
    .outputs = capacity_outputs,
    .uses_rules = true,
    .create = capacity_create,
    .destroy = capacity_destroy,
    .apply = capacity_apply,
};
