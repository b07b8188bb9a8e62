/* The variation calculation (see variation.h). State: per indicator, its cells — one per period, holding
 * the fact of each of the five regions and the national fact, in period order; the rules of service
 * "variation", sorted by id; and the last Alert emitted per fingerprint. hs.indicators.v1 is partitioned by
 * the indicator, so every scope of an indicator is here together.
 *
 * A fact changes one cell: its variation is computed again and emitted (the driver publishes it only when
 * its bytes changed, so a revision of one region's value changes exactly that one output), and the alerts of
 * the rules about the indicator are replayed over its periods. A rule change recomputes the variations of its
 * indicator (a rule may set the direction) and its alerts. An alert is a function of the series: the periods
 * of the shortest period kind are walked in time order through the Alertmanager-like state machine of
 * docs/domain.md §6: the final alerts do not depend on arrival order; startsAt / endsAt: end of the period
 * in which the alert fired / resolved, never the wall clock, so a replay and `hsctl calc` give the same
 * bytes.
 */
#include "variation.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "healthsignals/v1/alert.pb-c.h"
#include "healthsignals/v1/indicator.pb-c.h"
#include "healthsignals/v1/regional_variation.pb-c.h"
#include "healthsignals/v1/rule.pb-c.h"
#include "hs/alert.h"
#include "hs/flags.h"
#include "hs/key.h"
#include "hs/period.h"
#include "hs/rules.h"
#include "hs/validate.h"

#define SERVICE_NAME "variation"
#define N_REGIONS    5
/* Figures are printed rounded and a weighted mean is not exact in binary: values this close (relative)
 * are equal — tied regions, a spread exactly at its threshold. */
#define EQUAL_TOLERANCE 1e-9

typedef Healthsignals__V1__IndicatorObservation fact_msg;
typedef Healthsignals__V1__Rule rule_msg;
typedef Healthsignals__V1__Alert alert_msg;

/* The regions in DST code order; a region's index here is its index in a cell. */
static const char *const region_codes[N_REGIONS] = {"1081", "1082", "1083", "1084", "1085"};

static int region_index(const char *code)
{
    for (int i = 0; i < N_REGIONS; i++)
        if (strcmp(code, region_codes[i]) == 0)
            return i;
    return -1;
}

static bool equal(double a, double b)
{
    return fabs(a - b) <= EQUAL_TOLERANCE * fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* --- state ---------------------------------------------------------------------------------------------- */

/* One fact of a cell: what the variation needs of an IndicatorObservation. */
typedef struct vr_fact {
    bool present;
    bool has_volume;
    bool provisional;
    bool suspended;
    double value;
    int64_t volume;
    Healthsignals__V1__Unit unit;
    char **flags;
    size_t n_flags;
} vr_fact;

/* One indicator in one period. */
typedef struct vr_cell {
    hs_period period;
    char period_text[HS_PERIOD_TEXT_MAX];
    vr_fact region[N_REGIONS];
    vr_fact national;
} vr_cell;

typedef struct vr_indicator {
    char *code;
    vr_cell *cells; /* in hs_period_compare order */
    size_t n_cells, cap_cells;
} vr_indicator;

typedef struct vr_state {
    hs_table index; /* indicator code -> index into `indicators` (size_t) */
    vr_indicator *indicators;
    size_t n_indicators, cap_indicators;
    hs_rule_set rules;     /* the rules of service "variation", sorted by id */
    hs_alert_store alerts; /* the last Alert emitted per fingerprint */
    size_t facts;
} vr_state;

static void fact_clear(vr_fact *f)
{
    for (size_t i = 0; i < f->n_flags; i++)
        free(f->flags[i]);
    free(f->flags);
    *f = (vr_fact){0};
}

/* Replaces `f` with the content of `obs`; false (and `f` unchanged) when out of memory. */
static bool fact_set(vr_fact *f, const fact_msg *obs)
{
    vr_fact fresh = {
        .present = true,
        .has_volume = obs->_volume_case == HEALTHSIGNALS__V1__INDICATOR_OBSERVATION___VOLUME_VOLUME,
        .provisional = obs->provisional,
        .suspended = obs->suspended,
        .value = obs->value,
        .volume = obs->volume,
        .unit = obs->unit,
    };
    if (obs->n_quality_flags) {
        fresh.flags = calloc(obs->n_quality_flags, sizeof *fresh.flags);
        if (!fresh.flags)
            return false;
        for (size_t i = 0; i < obs->n_quality_flags; i++, fresh.n_flags++)
            if (!(fresh.flags[i] = strdup(obs->quality_flags[i]))) {
                fact_clear(&fresh);
                return false;
            }
    }
    fact_clear(f);
    *f = fresh;
    return true;
}

static size_t cell_regions(const vr_cell *c)
{
    size_t n = 0;
    for (int i = 0; i < N_REGIONS; i++)
        n += c->region[i].present;
    return n;
}

static void cell_clear(vr_cell *c)
{
    for (int i = 0; i < N_REGIONS; i++)
        fact_clear(&c->region[i]);
    fact_clear(&c->national);
}

static void *variation_create(void)
{
    vr_state *s = calloc(1, sizeof *s);
    if (s) {
        hs_table_init(&s->index);
        hs_alert_store_init(&s->alerts);
    }
    return s;
}

static void variation_destroy(void *state)
{
    vr_state *s = state;
    for (size_t i = 0; i < s->n_indicators; i++) {
        vr_indicator *ind = &s->indicators[i];
        for (size_t c = 0; c < ind->n_cells; c++)
            cell_clear(&ind->cells[c]);
        free(ind->cells);
        free(ind->code);
    }
    free(s->indicators);
    hs_rule_set_free(&s->rules);
    hs_table_free(&s->index);
    hs_alert_store_free(&s->alerts);
    free(s);
}

/* The indicator `code`, or NULL. Valid until the next indicator is added. */
static vr_indicator *indicator_find(const vr_state *s, const char *code)
{
    const hs_table_entry *e = hs_table_get(&s->index, code);
    if (!e)
        return NULL;
    size_t at;
    memcpy(&at, e->value, sizeof at);
    return &s->indicators[at];
}

static vr_indicator *indicator_add(vr_state *s, const char *code)
{
    vr_indicator *grown =
        hs_array_grow(s->indicators, &s->cap_indicators, s->n_indicators, sizeof *grown, 16);
    if (!grown)
        return NULL;
    s->indicators = grown;
    size_t at = s->n_indicators;
    char *copy = strdup(code);
    if (!copy || hs_table_put(&s->index, code, &at, sizeof at) == HS_TABLE_NOMEM) {
        free(copy);
        return NULL;
    }
    s->indicators[at] = (vr_indicator){.code = copy};
    s->n_indicators++;
    return &s->indicators[at];
}

/* The position of `p` in the indicator's cells: where it is (*found) or would be inserted. */
static size_t cell_position(const vr_indicator *ind, const hs_period *p, bool *found)
{
    size_t lo = 0, hi = ind->n_cells;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = hs_period_compare(&ind->cells[mid].period, p);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static vr_cell *cell_insert(vr_indicator *ind, size_t at, const hs_period *p)
{
    vr_cell *grown = hs_array_grow(ind->cells, &ind->cap_cells, ind->n_cells, sizeof *grown, 8);
    if (!grown)
        return NULL;
    ind->cells = grown;
    memmove(&ind->cells[at + 1], &ind->cells[at], (ind->n_cells - at) * sizeof *ind->cells);
    ind->n_cells++;
    vr_cell *c = &ind->cells[at];
    *c = (vr_cell){.period = *p};
    hs_period_format(p, c->period_text, sizeof c->period_text);
    return c;
}

static void cell_remove(vr_indicator *ind, size_t at)
{
    cell_clear(&ind->cells[at]);
    memmove(&ind->cells[at], &ind->cells[at + 1], (ind->n_cells - at - 1) * sizeof *ind->cells);
    ind->n_cells--;
}

/* --- the variation of one cell -------------------------------------------------------------------------- */

/* Which way is better for `indicator`: the direction of the first rule about it (in id order) that states
 * one; otherwise from the unit — durations (waiting times) are better lower, everything else higher. */
static void direction_of(const vr_state *s, const char *indicator, Healthsignals__V1__Unit unit,
                         Healthsignals__V1__Direction *direction, Healthsignals__V1__DirectionSource *source)
{
    for (size_t i = 0; i < s->rules.count; i++)
        if (strcmp(s->rules.items[i]->subject, indicator) == 0 &&
            s->rules.items[i]->direction != HEALTHSIGNALS__V1__DIRECTION__DIRECTION_UNSPECIFIED) {
            *direction = s->rules.items[i]->direction;
            *source = HEALTHSIGNALS__V1__DIRECTION_SOURCE__DIRECTION_FROM_RULE;
            return;
        }
    *direction = unit == HEALTHSIGNALS__V1__UNIT__DAYS || unit == HEALTHSIGNALS__V1__UNIT__WEEKS
                     ? HEALTHSIGNALS__V1__DIRECTION__LOWER_IS_BETTER
                     : HEALTHSIGNALS__V1__DIRECTION__HIGHER_IS_BETTER;
    *source = HEALTHSIGNALS__V1__DIRECTION_SOURCE__DIRECTION_FROM_UNIT;
}

/* The computed variation of a cell. */
typedef struct vr_result {
    Healthsignals__V1__Unit unit;
    Healthsignals__V1__Direction direction;
    Healthsignals__V1__DirectionSource direction_source;
    size_t n;                 /* regions present */
    int order[N_REGIONS];     /* their indexes, best first, ties in code order */
    uint32_t rank[N_REGIONS]; /* by region index; 0 = no fact */
    double deviation[N_REGIONS];
    double national;
    Healthsignals__V1__NationalSource national_source;
    double best, worst, spread;
    bool provisional, suspended;
} vr_result;

/* a strictly better than b under `direction`. */
static bool better(Healthsignals__V1__Direction direction, double a, double b)
{
    if (equal(a, b))
        return false;
    return direction == HEALTHSIGNALS__V1__DIRECTION__LOWER_IS_BETTER ? a < b : a > b;
}

static void compute(const vr_state *s, const char *indicator, const vr_cell *c, vr_result *r)
{
    *r = (vr_result){0};
    /* The unit is the cell's (check_unit keeps one unit per cell); the direction may follow from it. */
    r->unit = c->national.present ? c->national.unit : HEALTHSIGNALS__V1__UNIT__UNIT_UNSPECIFIED;
    for (int i = 0; i < N_REGIONS && !r->unit; i++)
        if (c->region[i].present)
            r->unit = c->region[i].unit;
    direction_of(s, indicator, r->unit, &r->direction, &r->direction_source);
    for (int i = 0; i < N_REGIONS; i++) {
        const vr_fact *f = &c->region[i];
        if (!f->present)
            continue;
        r->provisional |= f->provisional;
        r->suspended |= f->suspended;
        /* Insertion into the order, best first; a tie goes after the regions already there (code order). */
        size_t at = r->n;
        while (at > 0 && better(r->direction, f->value, c->region[r->order[at - 1]].value))
            at--;
        memmove(&r->order[at + 1], &r->order[at], (r->n - at) * sizeof r->order[0]);
        r->order[at] = i;
        r->n++;
    }
    r->provisional |= c->national.present && c->national.provisional;
    r->suspended |= c->national.present && c->national.suspended;
    if (r->n == 0)
        return;

    for (size_t k = 0; k < r->n; k++) {
        double v = c->region[r->order[k]].value;
        bool tied = k > 0 && equal(v, c->region[r->order[k - 1]].value);
        r->rank[r->order[k]] = tied ? r->rank[r->order[k - 1]] : (uint32_t)(k + 1);
    }
    r->best = c->region[r->order[0]].value;
    r->worst = c->region[r->order[r->n - 1]].value;
    r->spread = fabs(r->best - r->worst);

    /* National: the published figure; else weighted by the regions' volumes; else the plain mean. The sums
     * cannot overflow: values are at most 1e15 in magnitude and volumes at most 1e12 (apply_fact), so the
     * weighted sum of five regions stays below 1e28. */
    double sum = 0, weighted = 0, weights = 0;
    bool all_volumes = true;
    for (size_t k = 0; k < r->n; k++) {
        const vr_fact *f = &c->region[r->order[k]];
        sum += f->value;
        all_volumes &= f->has_volume && f->volume >= 0;
        weighted += f->has_volume ? f->value * (double)f->volume : 0;
        weights += f->has_volume ? (double)f->volume : 0;
    }
    if (c->national.present) {
        r->national = c->national.value;
        r->national_source = HEALTHSIGNALS__V1__NATIONAL_SOURCE__NATIONAL_PUBLISHED;
    } else if (all_volumes && weights > 0) {
        r->national = weighted / weights;
        r->national_source = HEALTHSIGNALS__V1__NATIONAL_SOURCE__NATIONAL_WEIGHTED;
    } else {
        r->national = sum / (double)r->n;
        r->national_source = HEALTHSIGNALS__V1__NATIONAL_SOURCE__NATIONAL_UNWEIGHTED;
    }
    bool lower = r->direction == HEALTHSIGNALS__V1__DIRECTION__LOWER_IS_BETTER;
    for (size_t k = 0; k < r->n; k++) {
        double v = c->region[r->order[k]].value;
        r->deviation[r->order[k]] = lower ? r->national - v : v - r->national;
    }
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The quality flags of `facts`, sorted, without repeats, into `out` (borrowed strings). */
static bool flags_union(const vr_fact *const *facts, size_t n, hs_flags *out)
{
    for (size_t i = 0; i < n; i++)
        if (facts[i]->present && !hs_flags_add_all(out, facts[i]->flags, facts[i]->n_flags))
            return false;
    hs_flags_sort_unique(out);
    return true;
}

static bool cell_flags(const vr_cell *c, hs_flags *out)
{
    const vr_fact *facts[N_REGIONS + 1];
    for (int i = 0; i < N_REGIONS; i++)
        facts[i] = &c->region[i];
    facts[N_REGIONS] = &c->national;
    return flags_union(facts, N_REGIONS + 1, out);
}

static hs_err variation_key(const char *indicator, const vr_cell *c, char key[HS_KEY_MAX], hs_error *error)
{
    const char *parts[] = {indicator, c->period_text};
    return hs_key_join(key, parts, 2, error);
}

/* Emits the variation of cell `c` of `ind`, or its deletion when no region has a fact. */
static hs_err emit_variation(const vr_state *s, const vr_indicator *ind, const vr_cell *c, hs_emit *emit,
                             hs_error *error)
{
    char key[HS_KEY_MAX];
    hs_err err = variation_key(ind->code, c, key, error);
    if (err)
        return err;
    const hs_topic *topic = hs_topic_find(HS_TOPIC_VARIATION);
    vr_result r;
    compute(s, ind->code, c, &r);
    if (r.n == 0) {
        err = hs_emit_put(emit, topic, key, NULL);
        return err ? hs_error_set(error, err, "emitting the deletion of %s: %s", key, hs_err_str(err))
                   : HS_OK;
    }

    Healthsignals__V1__RegionValue values[N_REGIONS];
    Healthsignals__V1__RegionValue *regions[N_REGIONS];
    const char *best[N_REGIONS], *worst[N_REGIONS], *missing[N_REGIONS];
    size_t n_best = 0, n_worst = 0, n_missing = 0;
    hs_flags region_flags[N_REGIONS] = {0}, flags = {0};
    bool ok = cell_flags(c, &flags);
    for (size_t k = 0; k < r.n; k++) {
        int i = r.order[k];
        const vr_fact *f = &c->region[i];
        Healthsignals__V1__RegionValue init = HEALTHSIGNALS__V1__REGION_VALUE__INIT;
        values[k] = init;
        values[k].code = (char *)region_codes[i];
        values[k].name = (char *)hs_region_name(region_codes[i]);
        values[k].value = f->value;
        if (f->has_volume) {
            values[k]._volume_case = HEALTHSIGNALS__V1__REGION_VALUE___VOLUME_VOLUME;
            values[k].volume = f->volume;
        }
        values[k].rank = r.rank[i];
        values[k].deviation_from_national = r.deviation[i];
        values[k].provisional = f->provisional;
        values[k].suspended = f->suspended;
        const vr_fact *own[] = {f};
        ok = ok && flags_union(own, 1, &region_flags[k]);
        values[k].n_quality_flags = region_flags[k].count;
        values[k].quality_flags = (char **)region_flags[k].items;
        regions[k] = &values[k];
        if (r.rank[i] == 1)
            best[n_best++] = region_codes[i];
        if (equal(f->value, r.worst))
            worst[n_worst++] = region_codes[i];
    }
    for (int i = 0; i < N_REGIONS; i++)
        if (!c->region[i].present)
            missing[n_missing++] = region_codes[i];
    /* The lists name regions in code order; `order` put ties in code order already. */
    qsort(best, n_best, sizeof *best, compare_strings);
    qsort(worst, n_worst, sizeof *worst, compare_strings);

    Healthsignals__V1__RegionalVariation v = HEALTHSIGNALS__V1__REGIONAL_VARIATION__INIT;
    v.indicator = ind->code;
    v.period = (char *)c->period_text;
    v.unit = r.unit;
    v.direction = r.direction;
    v.direction_source = r.direction_source;
    v.n_regions = r.n;
    v.regions = regions;
    v.n_missing_regions = n_missing;
    v.missing_regions = (char **)missing;
    v.national_value = r.national;
    v.national_source = r.national_source;
    v.n_best_regions = n_best;
    v.best_regions = (char **)best;
    v.n_worst_regions = n_worst;
    v.worst_regions = (char **)worst;
    v.best_value = r.best;
    v.worst_value = r.worst;
    v.spread = r.spread;
    v.provisional = r.provisional;
    v.suspended = r.suspended;
    v.n_quality_flags = flags.count;
    v.quality_flags = (char **)flags.items;
    if (ok) {
        err = hs_emit_put(emit, topic, key, &v.base);
        if (err)
            hs_error_set(error, err, "emitting %s: %s", key, hs_err_str(err));
    } else {
        err = hs_error_set(error, HS_ERR_NOMEM, "out of memory building the variation %s", key);
    }
    for (size_t k = 0; k < r.n; k++)
        hs_flags_free(&region_flags[k]);
    hs_flags_free(&flags);
    return err;
}

/* --- alerts -----------------------------------------------------------------------------------------------
 */

static bool is_spread(const rule_msg *rule)
{
    return rule->kind == HEALTHSIGNALS__V1__RULE_KIND__SPREAD;
}

/* The regions a DEVIATION_FROM_NATIONAL rule watches (its scopes, or all five), as a bit set by index. */
static unsigned rule_regions(const rule_msg *rule)
{
    if (rule->n_scopes == 0)
        return (1U << N_REGIONS) - 1;
    unsigned set = 0;
    for (size_t i = 0; i < rule->n_scopes; i++) {
        int at = region_index(rule->scopes[i]->code);
        if (at >= 0)
            set |= 1U << at;
    }
    return set;
}

/* The alert's scope: the nation for SPREAD (it compares all regions), the region for a deviation. */
static void alert_scope(const rule_msg *rule, int region, Healthsignals__V1__Scope *scope,
                        char component[160])
{
    Healthsignals__V1__Scope init = HEALTHSIGNALS__V1__SCOPE__INIT;
    *scope = init;
    if (is_spread(rule)) {
        scope->kind = HEALTHSIGNALS__V1__SCOPE_KIND__NATIONAL;
        scope->code = "DK";
    } else {
        scope->kind = HEALTHSIGNALS__V1__SCOPE_KIND__REGION;
        scope->code = (char *)region_codes[region];
    }
    hs_topic_scope_component(scope, component, 160);
}

/* One evaluable period of an alert's series. */
typedef struct vr_eval {
    size_t cell;  /* index into the indicator's cells */
    bool missed;  /* worse than the rule allows */
    double gap;   /* distance to the threshold, positive = better; >= 0 when not missed */
    double value; /* the spread, or the region's value */
    double threshold;
} vr_eval;

/* The alert state machine of docs/domain.md §6 (hs/alert.h) over a series, by cell index: a period worse than
 * the rule allows is a breach, a better one resolves by the rule's hysteresis. */
typedef struct vr_history {
    hs_alert_history alert;
    vr_eval last;       /* the latest evaluable period (when alert.last >= 0) */
    vr_eval at_resolve; /* the period it resolved in: what a resolved alert shows, as Alertmanager keeps a
                           resolved alert as it was when it resolved */
} vr_history;

static vr_history history_start(void)
{
    return (vr_history){.alert = HS_ALERT_HISTORY_START};
}

static void history_step(const rule_msg *rule, vr_history *h, const vr_eval *ev)
{
    hs_alert_step(&h->alert, (int32_t)ev->cell, ev->missed, ev->gap, rule->hysteresis, rule->for_periods);
    h->last = *ev;
    if (hs_alert_history_resolved(&h->alert) && h->alert.resolved == (int32_t)ev->cell)
        h->at_resolve = *ev;
}

/* The evaluation of `rule` for `region` (ignored for SPREAD) in a cell; false when not evaluable: too few
 * regions, the region has no fact, or the right was suspended (a suspended period neither fires nor
 * resolves). */
static bool evaluate(const rule_msg *rule, int region, const vr_cell *c, const vr_result *r, vr_eval *ev)
{
    if (is_spread(rule)) {
        if (r->n < 2 || r->suspended)
            return false;
        ev->value = r->spread;
        ev->threshold = rule->threshold;
        ev->gap = rule->threshold - r->spread;
        ev->missed = r->spread > rule->threshold && !equal(r->spread, rule->threshold);
        return true;
    }
    const vr_fact *f = &c->region[region];
    if (!f->present || f->suspended || (c->national.present && c->national.suspended))
        return false;
    bool lower = r->direction == HEALTHSIGNALS__V1__DIRECTION__LOWER_IS_BETTER;
    double deviation = r->deviation[region];
    ev->value = f->value;
    ev->threshold = lower ? r->national + rule->threshold : r->national - rule->threshold;
    ev->gap = deviation + rule->threshold;
    ev->missed = deviation < -rule->threshold && !equal(deviation, -rule->threshold);
    return true;
}

/* Replays the periods of the shortest period kind of `ind` (days before weeks before ... years: the
 * finest series is the one followed) in time order; `results` holds the variation of each of its cells. */
static vr_history replay(const rule_msg *rule, int region, const vr_indicator *ind, const vr_result *results)
{
    vr_history h = history_start();
    hs_period_kind kind = HS_PERIOD_YEAR;
    for (size_t i = 0; i < ind->n_cells; i++)
        if (ind->cells[i].period.kind > kind)
            kind = ind->cells[i].period.kind;
    for (size_t i = 0; i < ind->n_cells; i++) {
        const vr_cell *c = &ind->cells[i];
        if (c->period.kind != kind)
            continue;
        vr_eval ev = {.cell = i};
        if (evaluate(rule, region, c, &results[i], &ev))
            history_step(rule, &h, &ev);
    }
    return h;
}

/* "Nordjylland, Syddanmark": the regions of `r` whose value equals `value`. */
static void regions_named(const vr_cell *c, const vr_result *r, double value, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t k = 0; k < r->n && used < size; k++)
        if (equal(c->region[r->order[k]].value, value))
            used += (size_t)snprintf(out + used, size - used, "%s%s", used ? ", " : "",
                                     hs_region_name(region_codes[r->order[k]]));
}

/* What follows a difference of values in text: percentages differ by percentage points. */
static const char *difference_suffix(Healthsignals__V1__Unit unit)
{
    return unit == HEALTHSIGNALS__V1__UNIT__PERCENT ? " percentage points" : hs_unit_suffix(unit);
}

static const char *national_how(Healthsignals__V1__NationalSource source)
{
    switch (source) {
    case HEALTHSIGNALS__V1__NATIONAL_SOURCE__NATIONAL_PUBLISHED: return "published";
    case HEALTHSIGNALS__V1__NATIONAL_SOURCE__NATIONAL_WEIGHTED: return "weighted by volume";
    default: return "unweighted mean of the regions";
    }
}

/* The summary and description of an alert from the period it shows (`c`): the latest evaluated one, or the
 * one it resolved in. */
static void alert_texts(const rule_msg *rule, int region, const vr_cell *c, const vr_result *r,
                        const vr_history *h, const char *since, char *summary, size_t summary_size,
                        char *description, size_t description_size)
{
    const char *title = *rule->summary ? rule->summary : rule->id;
    const char *diff = difference_suffix(r->unit), *unit = hs_unit_suffix(r->unit);
    char thr[64], a[64], b[64], d[64], best[160], worst[160];
    hs_figure(rule->threshold, thr, sizeof thr);
    if (is_spread(rule)) {
        regions_named(c, r, r->best, best, sizeof best);
        regions_named(c, r, r->worst, worst, sizeof worst);
        snprintf(summary, summary_size, "%s: regional variation of %s %s %s%s", title, rule->subject,
                 h->alert.firing ? "above" : "back within", thr, diff);
        snprintf(description, description_size,
                 "%s%s: variation %s%s between the best (%s, %s%s) and the worst (%s, %s%s) region, "
                 "threshold %s%s; %s.",
                 c->period_text, r->provisional ? " (provisional)" : "", hs_figure(r->spread, d, sizeof d),
                 diff, best, hs_figure(r->best, a, sizeof a), unit, worst, hs_figure(r->worst, b, sizeof b),
                 unit, thr, diff, since);
        return;
    }
    const char *name = hs_region_name(region_codes[region]);
    double deviation = r->deviation[region];
    snprintf(summary, summary_size, "%s: %s %s the nation by more than %s%s", title, name,
             h->alert.firing ? "worse than" : "no longer worse than", thr, diff);
    char compared[128];
    if (equal(deviation, 0))
        snprintf(compared, sizeof compared, "level with it");
    else
        snprintf(compared, sizeof compared, "%s by %s%s", deviation < 0 ? "worse" : "better",
                 hs_figure(fabs(deviation), d, sizeof d), diff);
    snprintf(description, description_size,
             "%s %s%s: %s%s against the nation's %s%s (%s): %s, threshold %s%s; %s.", name, c->period_text,
             r->provisional ? " (provisional)" : "", hs_figure(c->region[region].value, a, sizeof a), unit,
             hs_figure(r->national, b, sizeof b), unit, national_how(r->national_source), compared, thr, diff,
             since);
}

/* Builds and emits the alert of `rule` for `region` from its replayed history `h`; `stored` is the last
 * alert emitted for the fingerprint, or NULL. */
static hs_err alert_emit(vr_state *s, const rule_msg *rule, int region, const vr_indicator *ind,
                         const vr_result *results, const char *fingerprint, const vr_history *h,
                         const alert_msg *stored, hs_emit *emit, hs_error *error)
{
    const vr_eval *shown = hs_alert_history_resolved(&h->alert) ? &h->at_resolve : &h->last;
    const vr_cell *c = &ind->cells[shown->cell];
    const vr_result r = results[shown->cell];
    Healthsignals__V1__Scope scope;
    char component[160], starts[HS_RFC3339_MAX] = "", ends[HS_RFC3339_MAX] = "",
                         since[HS_PERIOD_TEXT_MAX + 32];
    alert_scope(rule, region, &scope, component);
    const hs_alert_history *a = &h->alert;
    bool firing = a->episode && a->firing;
    hs_alert_bounds(a, a->fired >= 0 ? &ind->cells[a->fired].period : NULL,
                    a->resolved >= 0 ? &ind->cells[a->resolved].period : NULL, &c->period,
                    stored ? stored->starts_at : NULL, starts, ends);
    if (a->episode)
        snprintf(since, sizeof since, "%s %s", firing ? "firing since" : "resolved in",
                 ind->cells[firing ? a->fired : a->resolved].period_text);
    else /* a revision took away every miss: resolved where the series now stands */
        snprintf(since, sizeof since, "resolved by a revision");

    alert_msg alert = HEALTHSIGNALS__V1__ALERT__INIT;
    alert.fingerprint = (char *)fingerprint;
    alert.state = firing ? HEALTHSIGNALS__V1__ALERT_STATE__FIRING : HEALTHSIGNALS__V1__ALERT_STATE__RESOLVED;
    alert.severity = rule->severity ? rule->severity : HEALTHSIGNALS__V1__SEVERITY__WARNING;
    alert.rule = rule->id;
    alert.service = SERVICE_NAME;
    alert.scope = &scope;
    alert.subject = rule->subject;
    alert.period = (char *)c->period_text;
    alert.value = shown->value;
    alert.threshold = shown->threshold;
    alert.starts_at = starts;
    alert.ends_at = ends;

    const char *const core[][2] = {{"alertname", rule->id},
                                   {"service", SERVICE_NAME},
                                   {"scope", component},
                                   {"subject", rule->subject},
                                   {"severity", hs_severity_label(alert.severity)}};
    hs_alert_labels labels;
    hs_flags flags = {0};
    if (!hs_alert_labels_build(&labels, core, sizeof core / sizeof core[0], rule)) {
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory building an alert");
    }
    hs_err err = HS_OK;
    bool ok = is_spread(rule)
                  ? cell_flags(c, &flags)
                  : flags_union((const vr_fact *const[]){&c->region[region], &c->national}, 2, &flags);
    if (!ok) {
        err = hs_error_set(error, HS_ERR_NOMEM, "out of memory building an alert");
        goto done;
    }
    alert.n_labels = labels.count;
    alert.labels = labels.items;

    char summary[512], description[1024];
    alert_texts(rule, region, c, &r, h, since, summary, sizeof summary, description, sizeof description);
    alert.n_quality_flags = flags.count;
    alert.quality_flags = (char **)flags.items;
    err = hs_alert_put_described(&s->alerts, &alert, summary, description, emit, error);
done:
    hs_alert_labels_free(&labels);
    hs_flags_free(&flags);
    return err;
}

/* Replays `rule` for `region` over its indicator and emits the alert, or retires it when nothing is left
 * to evaluate. An alert is emitted only once it has fired; afterwards it stays in the table. */
static hs_err evaluate_alert(vr_state *s, const rule_msg *rule, int region, const vr_indicator *ind,
                             const vr_result *results, hs_emit *emit, hs_error *error)
{
    Healthsignals__V1__Scope scope;
    char component[160], fingerprint[HS_FINGERPRINT_MAX];
    alert_scope(rule, region, &scope, component);
    hs_alert_fingerprint(rule->id, component, rule->subject, NULL, fingerprint);
    vr_history h = ind ? replay(rule, region, ind, results) : history_start();
    if (h.alert.last < 0)
        return hs_alert_retire(&s->alerts, fingerprint, "no period left to evaluate", emit, error);
    alert_msg *stored = h.alert.episode ? NULL : hs_alert_stored(&s->alerts, fingerprint);
    hs_err err = h.alert.episode || stored
                     ? alert_emit(s, rule, region, ind, results, fingerprint, &h, stored, emit, error)
                     : HS_OK;
    if (stored)
        protobuf_c_message_free_unpacked(&stored->base, NULL);
    return err;
}

/* Every alert of `rule` over `ind` (NULL: its subject has no facts) and the variations of its cells. */
static hs_err evaluate_rule_alerts(vr_state *s, const rule_msg *rule, const vr_indicator *ind,
                                   const vr_result *results, hs_emit *emit, hs_error *error)
{
    if (is_spread(rule))
        return evaluate_alert(s, rule, -1, ind, results, emit, error);
    unsigned regions = rule_regions(rule);
    for (int i = 0; i < N_REGIONS; i++) {
        hs_err err = regions & (1U << i) ? evaluate_alert(s, rule, i, ind, results, emit, error) : HS_OK;
        if (err)
            return err;
    }
    return HS_OK;
}

/* Every alert of every rule about `subject`. The variation of each of its cells is computed once here and
 * shared by all the replays (a deviation rule replays the series once per region). */
static hs_err evaluate_subject_alerts(vr_state *s, const char *subject, hs_emit *emit, hs_error *error)
{
    const vr_indicator *ind = indicator_find(s, subject);
    vr_result *results = NULL;
    if (ind && ind->n_cells) {
        if (!(results = malloc(ind->n_cells * sizeof *results)))
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory evaluating the alerts of %s", subject);
        for (size_t i = 0; i < ind->n_cells; i++)
            compute(s, ind->code, &ind->cells[i], &results[i]);
    }
    hs_err err = HS_OK;
    for (size_t i = 0; err == HS_OK && i < s->rules.count; i++)
        if (strcmp(s->rules.items[i]->subject, subject) == 0)
            err = evaluate_rule_alerts(s, s->rules.items[i], ind, results, emit, error);
    free(results);
    return err;
}

/* --- rules ------------------------------------------------------------------------------------------------
 */

/* What the variation service asks of a rule beyond the shared validation (hs_validate_rule). */
static hs_err rule_check(const rule_msg *rule, hs_error *error)
{
    if (rule->kind != HEALTHSIGNALS__V1__RULE_KIND__SPREAD &&
        rule->kind != HEALTHSIGNALS__V1__RULE_KIND__DEVIATION_FROM_NATIONAL)
        return hs_error_set(error, HS_ERR_VALIDATION,
                            "rule %s: kind %s is not a variation rule (SPREAD or DEVIATION_FROM_NATIONAL)",
                            rule->id, hs_rule_kind_name(rule->kind));
    if (rule->_threshold_case != HEALTHSIGNALS__V1__RULE___THRESHOLD_THRESHOLD)
        return hs_error_set(error, HS_ERR_VALIDATION, "rule %s: threshold is required for %s", rule->id,
                            hs_rule_kind_name(rule->kind));
    if (rule->threshold < 0)
        return hs_error_set(error, HS_ERR_VALIDATION,
                            "rule %s: threshold %g is negative (a distance in the indicator's unit)",
                            rule->id, rule->threshold);
    if (is_spread(rule) && rule->n_scopes)
        return hs_error_set(error, HS_ERR_VALIDATION,
                            "rule %s: SPREAD compares all five regions; scopes must be empty", rule->id);
    for (size_t i = 0; i < rule->n_scopes; i++)
        if (rule->scopes[i]->kind != HEALTHSIGNALS__V1__SCOPE_KIND__REGION)
            return hs_error_set(error, HS_ERR_VALIDATION,
                                "rule %s: scopes[%zu]: '%s' is not a region (a deviation is a region's)",
                                rule->id, i, rule->scopes[i]->code);
    return HS_OK;
}

/* Does `rule` (may be NULL) still raise the alert `old` raised for `region` (-1 for SPREAD)? */
static bool rule_raises(const rule_msg *rule, const rule_msg *old, int region)
{
    if (!rule || rule->kind != old->kind || strcmp(rule->subject, old->subject) != 0)
        return false;
    return is_spread(rule) || (rule_regions(rule) & (1U << region));
}

static hs_err retire_alert(vr_state *s, const rule_msg *rule, int region, const char *reason, hs_emit *emit,
                           hs_error *error)
{
    Healthsignals__V1__Scope scope;
    char component[160], fingerprint[HS_FINGERPRINT_MAX];
    alert_scope(rule, region, &scope, component);
    hs_alert_fingerprint(rule->id, component, rule->subject, NULL, fingerprint);
    return hs_alert_retire(&s->alerts, fingerprint, reason, emit, error);
}

/* Recomputes and emits every variation of `indicator` (a rule about it may have changed its direction). */
static hs_err emit_indicator(const vr_state *s, const char *indicator, hs_emit *emit, hs_error *error)
{
    const vr_indicator *ind = indicator_find(s, indicator);
    for (size_t i = 0; ind && i < ind->n_cells; i++) {
        hs_err err = emit_variation(s, ind, &ind->cells[i], emit, error);
        if (err)
            return err;
    }
    return HS_OK;
}

static hs_err apply_rule(vr_state *s, const char *key, const rule_msg *value, hs_emit *emit, hs_error *error)
{
    hs_err err;
    if (value && (err = rule_check(value, error)) != HS_OK)
        return err;
    rule_msg *fresh = value ? hs_rule_copy(value) : NULL, *old;
    if (value && !fresh)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory storing a rule");
    if ((err = hs_rule_set_put(&s->rules, value ? value->id : key, fresh, &old, error)) != HS_OK) {
        protobuf_c_message_free_unpacked(&fresh->base, NULL);
        return err;
    }
    if (!old && !fresh)
        return HS_OK;

    /* The old rule's alerts that the new one does not raise any more resolve; then everything under the
     * old and the new subject is computed again. */
    err = HS_OK;
    if (old && is_spread(old) && !rule_raises(fresh, old, -1))
        err = retire_alert(s, old, -1, fresh ? "the rule changed" : "the rule was deleted", emit, error);
    for (int i = 0; old && !is_spread(old) && err == HS_OK && i < N_REGIONS; i++)
        if ((rule_regions(old) & (1U << i)) && !rule_raises(fresh, old, i))
            err = retire_alert(s, old, i, fresh ? "the rule changed" : "the rule was deleted", emit, error);
    if (err == HS_OK && old)
        err = emit_indicator(s, old->subject, emit, error);
    if (err == HS_OK && fresh && (!old || strcmp(old->subject, fresh->subject) != 0))
        err = emit_indicator(s, fresh->subject, emit, error);
    /* Every rule about the subjects: a direction set or removed here changes the others' deviations. */
    if (err == HS_OK && old)
        err = evaluate_subject_alerts(s, old->subject, emit, error);
    if (err == HS_OK && fresh && (!old || strcmp(old->subject, fresh->subject) != 0))
        err = evaluate_subject_alerts(s, fresh->subject, emit, error);
    if (old)
        protobuf_c_message_free_unpacked(&old->base, NULL);
    return err;
}

/* --- facts ------------------------------------------------------------------------------------------------
 */

/* The slot of a cell a scope key component ("region:1084", "national:DK") fills: 0..4 a region, N_REGIONS
 * the nation, -1 a scope the regional comparison does not use (hospital, municipality). */
static int slot_of(const char *component)
{
    if (strncmp(component, "region:", 7) == 0)
        return region_index(component + 7);
    return strcmp(component, "national:DK") == 0 ? N_REGIONS : -1;
}

static vr_fact *cell_slot(vr_cell *c, int slot)
{
    return slot == N_REGIONS ? &c->national : &c->region[slot];
}

/* Another fact of the cell in another unit: the figures cannot be compared, so the new one is refused. */
static hs_err check_unit(const vr_cell *c, int slot, const fact_msg *obs, hs_error *error)
{
    for (int i = 0; i <= N_REGIONS; i++) {
        const vr_fact *f = i == N_REGIONS ? &c->national : &c->region[i];
        if (i != slot && f->present && f->unit != obs->unit)
            return hs_error_set(error, HS_ERR_VALIDATION,
                                "%s %s: unit %s differs from %s of the %s fact of the same period",
                                obs->indicator, obs->period, hs_unit_name(obs->unit), hs_unit_name(f->unit),
                                i == N_REGIONS ? "national" : hs_region_name(region_codes[i]));
    }
    return HS_OK;
}

static hs_err apply_fact(vr_state *s, const char *key, const fact_msg *obs, hs_emit *emit, hs_error *error)
{
    /* The identity from the record key, which a tombstone has too: indicator / kind:code / period. */
    char storage[HS_KEY_MAX];
    char *parts[3];
    hs_period period;
    if (hs_key_split(key, storage, parts, 3) != 3 || hs_period_parse(parts[2], &period, NULL) != HS_OK)
        return obs ? hs_error_set(error, HS_ERR_VALIDATION, "key '%.200s' is not indicator/scope/period", key)
                   : HS_OK; /* a tombstone of a key never stored */
    int slot = slot_of(parts[1]);
    if (slot < 0)
        return HS_OK;
    vr_indicator *ind = indicator_find(s, parts[0]);
    bool found = false;
    size_t at = ind ? cell_position(ind, &period, &found) : 0;
    vr_cell *c = found ? &ind->cells[at] : NULL;
    if (obs) {
        /* Validated already; checked again because the national mean's sums are finite only for figures
         * within their unit's range (hs/validate.h). */
        if (hs_validate_indicator_figures(obs, error) != HS_OK)
            return HS_ERR_VALIDATION;
        if (c && check_unit(c, slot, obs, error) != HS_OK)
            return HS_ERR_VALIDATION;
        if (!ind && !(ind = indicator_add(s, parts[0])))
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory storing %s", key);
        if (!c && !(c = cell_insert(ind, at, &period)))
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory storing %s", key);
        vr_fact *f = cell_slot(c, slot);
        bool had = f->present;
        if (!fact_set(f, obs)) {
            if (!had && cell_regions(c) == 0 && !c->national.present)
                cell_remove(ind, at);
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory storing %s", key);
        }
        s->facts += !had;
    } else {
        if (!c || !cell_slot(c, slot)->present)
            return HS_OK;
        fact_clear(cell_slot(c, slot));
        s->facts--;
    }

    hs_err err = emit_variation(s, ind, c, emit, error);
    if (err == HS_OK && cell_regions(c) == 0 && !c->national.present)
        cell_remove(ind, at);
    return err == HS_OK ? evaluate_subject_alerts(s, ind->code, emit, error) : err;
}

static hs_err variation_apply(void *state, const hs_topic *topic, const char *key,
                              const ProtobufCMessage *value, hs_emit *emit, hs_error *error)
{
    vr_state *s = state;
    if (strcmp(topic->name, HS_TOPIC_RULES) == 0)
        return apply_rule(s, key, (const rule_msg *)value, emit, error);
    if (strcmp(topic->name, HS_TOPIC_INDICATORS) == 0)
        return apply_fact(s, key, (const fact_msg *)value, emit, error);
    return hs_error_set(error, HS_ERR_INTERNAL, "%s is not an input of variation", topic->name);
}

void variation_stats_add(const void *state, variation_stats *stats)
{
    const vr_state *s = state;
    if (s->rules.count > stats->rules)
        stats->rules = s->rules.count;
    stats->facts += s->facts;
    for (size_t i = 0; i < s->n_indicators; i++)
        for (size_t c = 0; c < s->indicators[i].n_cells; c++)
            stats->variations += cell_regions(&s->indicators[i].cells[c]) > 0;
    stats->alerts_firing += s->alerts.firing;
}

static const char *const inputs[] = {HS_TOPIC_INDICATORS, NULL};
static const char *const outputs[] = {HS_TOPIC_VARIATION, HS_TOPIC_ALERTS, NULL};

const hs_calc variation_calc = {
    .name = SERVICE_NAME,
    .description = "regional variation per indicator and period: best, worst, spread, national; alerts",
    .inputs = inputs,
    .outputs = outputs,
    .uses_rules = true,
    .create = variation_create,
    .destroy = variation_destroy,
    .apply = variation_apply,
};
