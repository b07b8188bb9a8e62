/* The targets calculation (see targets.h). State: the rules of service "targets", indexed by subject; every
 * indicator fact, as a time-ordered series per indicator and scope (a rule may arrive after its facts, and a
 * rule change re-evaluates everything under it); and the last Alert emitted per fingerprint. A fact
 * re-evaluates only the rules whose subject is its indicator and whose scopes hold its scope, and of each
 * only the periods that can depend on it: its own (all of the scope's periods when it is a baseline period)
 * and for GROWTH the period a year later. The alert is a function of the series: its evaluated periods are
 * replayed in time order through the Alertmanager-like state machine (docs/domain.md §6): final alerts do not
 * depend on arrival order. To keep a fact's cost independent of the length of its series, each rule keeps a
 * track of each series it covers (tg_track): every period's last evaluation, with the state machine's
 * checkpoint after it, so the replay starts at the first period that changed. startsAt / endsAt are the end
 * of the period in which the alert fired / resolved — deterministic, never the wall clock, so that a replay
 * and `hsctl calc` produce the same bytes.
 */
#include "targets.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "healthsignals/v1/alert.pb-c.h"
#include "healthsignals/v1/indicator.pb-c.h"
#include "healthsignals/v1/rule.pb-c.h"
#include "healthsignals/v1/target_status.pb-c.h"
#include "hs/alert.h"
#include "hs/flags.h"
#include "hs/key.h"
#include "hs/period.h"
#include "hs/validate.h"

#define SERVICE_NAME "targets"

/* Longest computed baseline (periods from baseline_from to baseline_to): ten years of days. */
#define BASELINE_PERIODS_MAX 4000
/* GROWTH compares with at most this many years earlier. */
#define REFERENCE_YEARS_MAX 100
/* Figures are printed rounded and sums of binary fractions are not exact: a value within this relative
 * distance of its target counts as exactly at it (gap 0, met), so that 41 = 39 + 2 is met however it was
 * computed. */
#define AT_TARGET_TOLERANCE 1e-9

typedef Healthsignals__V1__Rule rule_msg;
typedef Healthsignals__V1__IndicatorObservation fact_msg;

/* --- facts and series ----------------------------------------------------------------------------------- */

/* One fact, as much of an IndicatorObservation as an evaluation needs. Owns its flags. */
typedef struct tg_fact {
    hs_period period;
    char period_text[HS_PERIOD_TEXT_MAX];
    int64_t first_day, end_day; /* the days it covers: [first_day, end_day) */
    double value;
    int64_t volume;
    bool has_volume, provisional, suspended;
    Healthsignals__V1__Unit unit;
    char **flags;
    size_t n_flags;
} tg_fact;

typedef struct tg_track tg_track;

/* Every fact of one indicator in one scope, ordered by (end_day, first_day): the order of time, and unique
 * per period, since no two periods cover the same days; and, per rule that covers it, the rule's track of
 * it (the last evaluation of every period, see tg_track). Owns its strings, facts and tracks. */
typedef struct tg_series {
    char *indicator;
    Healthsignals__V1__ScopeKind scope_kind;
    char *scope_code;
    tg_fact *facts;
    size_t count, cap;
    tg_track *tracks; /* each with `cap` points, in step with `facts` */
    size_t n_tracks, cap_tracks;
} tg_series;

static void tracks_free(tg_series *s);

static void fact_clear(tg_fact *f)
{
    for (size_t i = 0; i < f->n_flags; i++)
        free(f->flags[i]);
    free(f->flags);
    f->flags = NULL;
    f->n_flags = 0;
}

static void series_clear(tg_series *s)
{
    for (size_t i = 0; i < s->count; i++)
        fact_clear(&s->facts[i]);
    tracks_free(s);
    free(s->facts);
    free(s->indicator);
    free(s->scope_code);
    memset(s, 0, sizeof *s);
}

/* Position of the period covering [first_day, end_day) in `s`, or where it would be inserted; *found says
 * which. */
static size_t series_position(const tg_series *s, int64_t first_day, int64_t end_day, bool *found)
{
    size_t lo = 0, hi = s->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const tg_fact *f = &s->facts[mid];
        if (f->end_day < end_day || (f->end_day == end_day && f->first_day < first_day))
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < s->count && s->facts[lo].end_day == end_day && s->facts[lo].first_day == first_day;
    return lo;
}

/* series_position() of the days period `p` covers. */
static size_t series_position_of(const tg_series *s, const hs_period *p, bool *found)
{
    int64_t first_day, end_day;
    hs_period_days(p, &first_day, &end_day);
    return series_position(s, first_day, end_day, found);
}

/* The fact of period `p` in `s`, or NULL. */
static const tg_fact *series_find(const tg_series *s, const hs_period *p)
{
    if (!s)
        return NULL;
    bool found;
    size_t i = series_position_of(s, p, &found);
    return found ? &s->facts[i] : NULL;
}

/* Fills `f` from `obs` (validated, so the period parses). HS_ERR_NOMEM leaves `f` without flags. */
static hs_err fact_from_message(const fact_msg *obs, tg_fact *f, hs_error *error)
{
    memset(f, 0, sizeof *f);
    if (hs_period_parse(obs->period, &f->period, error) != HS_OK)
        return error ? error->code : HS_ERR_VALIDATION;
    hs_period_format(&f->period, f->period_text, sizeof f->period_text);
    int64_t first_day, end_day;
    hs_period_days(&f->period, &first_day, &end_day);
    f->first_day = first_day;
    f->end_day = end_day;
    f->value = obs->value;
    f->has_volume = obs->_volume_case == HEALTHSIGNALS__V1__INDICATOR_OBSERVATION___VOLUME_VOLUME;
    f->volume = f->has_volume ? obs->volume : 0;
    f->provisional = obs->provisional;
    f->suspended = obs->suspended;
    f->unit = obs->unit;
    if (obs->n_quality_flags) {
        f->flags = calloc(obs->n_quality_flags, sizeof *f->flags);
        if (!f->flags)
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory storing a fact");
        for (size_t i = 0; i < obs->n_quality_flags; i++) {
            if (!(f->flags[f->n_flags] = strdup(obs->quality_flags[i]))) {
                fact_clear(f);
                return hs_error_set(error, HS_ERR_NOMEM, "out of memory storing a fact");
            }
            f->n_flags++;
        }
    }
    return HS_OK;
}

/* --- rules ---------------------------------------------------------------------------------------------- */

typedef struct tg_scope {
    Healthsignals__V1__ScopeKind kind;
    char code[40]; /* validated: a region, DK, a hospital code (<= 32) or a municipality code */
} tg_scope;

/* A rule of this service with its parameters parsed. Owns `msg` (unpacked with the default allocator). */
typedef struct tg_rule {
    rule_msg *msg;
    uint64_t serial;  /* this version of the rule, unique in its state: names its tracks */
    tg_scope *scopes; /* the rule's scopes, or the five regions and the nation */
    size_t n_scopes;
    hs_period *baseline; /* BASELINE_BAND range or BASELINE_MARGIN list, in time order; or the base period */
    size_t n_baseline;
    int64_t evaluated_from_day; /* periods starting before this day belong to the baseline: not evaluated */
    unsigned reference_years;   /* GROWTH */
    unsigned for_periods;       /* consecutive missed evaluable periods before firing, >= 1 */
} tg_rule;

/* Frees what `r` owns and zeroes it. */
static void rule_clear(tg_rule *r)
{
    if (r->msg)
        protobuf_c_message_free_unpacked(&r->msg->base, NULL);
    free(r->scopes);
    free(r->baseline);
    memset(r, 0, sizeof *r);
}

/* The kind parameters of a rule, as bits, so that each kind can say which it takes. */
enum {
    P_BASELINE_VALUE = 1 << 0,
    P_BASELINE_RANGE = 1 << 1,
    P_BASELINE_PERIODS = 1 << 2,
    P_BAND = 1 << 3,
    P_MARGIN = 1 << 4,
    P_GROWTH = 1 << 5,
    P_REFERENCE_YEARS = 1 << 6,
    P_BASE_PERIOD = 1 << 7,
    P_THRESHOLD = 1 << 8,
    P_LEVELS = 1 << 9,
};

static const struct {
    unsigned bit;
    const char *name;
} param_names[] = {
    {P_BASELINE_VALUE, "baseline_value"},
    {P_BASELINE_RANGE, "baseline_from/baseline_to"},
    {P_BASELINE_PERIODS, "baseline_periods"},
    {P_BAND, "band"},
    {P_MARGIN, "margin"},
    {P_GROWTH, "growth_pct"},
    {P_REFERENCE_YEARS, "reference_years"},
    {P_BASE_PERIOD, "base_period"},
    {P_THRESHOLD, "threshold"},
    {P_LEVELS, "level_thresholds_pct/alert_level"},
};

static unsigned params_given(const rule_msg *m)
{
    unsigned given = 0;
    if (m->_baseline_value_case == HEALTHSIGNALS__V1__RULE___BASELINE_VALUE_BASELINE_VALUE)
        given |= P_BASELINE_VALUE;
    if ((m->baseline_from && *m->baseline_from) || (m->baseline_to && *m->baseline_to))
        given |= P_BASELINE_RANGE;
    if (m->n_baseline_periods)
        given |= P_BASELINE_PERIODS;
    if (m->band != 0)
        given |= P_BAND;
    if (m->margin != 0)
        given |= P_MARGIN;
    if (m->growth_pct != 0)
        given |= P_GROWTH;
    if (m->reference_years != 0)
        given |= P_REFERENCE_YEARS;
    if (m->base_period && *m->base_period)
        given |= P_BASE_PERIOD;
    if (m->_threshold_case == HEALTHSIGNALS__V1__RULE___THRESHOLD_THRESHOLD)
        given |= P_THRESHOLD;
    if (m->n_level_thresholds_pct || m->alert_level)
        given |= P_LEVELS;
    return given;
}

/* Checks that `m` carries exactly the parameters its kind uses (hs_validate_rule has checked their syntax).
 */
static hs_err rule_check_params(const rule_msg *m, hs_error *error)
{
    unsigned allowed;
    switch (m->kind) {
    case HEALTHSIGNALS__V1__RULE_KIND__BASELINE_BAND:
        allowed = P_BASELINE_VALUE | P_BASELINE_RANGE | P_BAND;
        break;
    case HEALTHSIGNALS__V1__RULE_KIND__BASELINE_MARGIN:
        allowed = P_BASELINE_VALUE | P_BASELINE_PERIODS | P_MARGIN;
        break;
    case HEALTHSIGNALS__V1__RULE_KIND__GROWTH: allowed = P_GROWTH | P_REFERENCE_YEARS; break;
    case HEALTHSIGNALS__V1__RULE_KIND__THRESHOLD: allowed = P_THRESHOLD; break;
    case HEALTHSIGNALS__V1__RULE_KIND__BASE_YEAR_GROWTH: allowed = P_BASE_PERIOD | P_GROWTH; break;
    default:
        return hs_error_set(error, HS_ERR_VALIDATION, "kind: %s is not a kind the targets service evaluates",
                            hs_rule_kind_name(m->kind));
    }
    unsigned given = params_given(m);
    for (size_t i = 0; i < sizeof param_names / sizeof param_names[0]; i++)
        if ((given & param_names[i].bit) && !(allowed & param_names[i].bit))
            return hs_error_set(error, HS_ERR_VALIDATION, "%s: not a parameter of %s", param_names[i].name,
                                hs_rule_kind_name(m->kind));
    const char *needs = NULL;
    unsigned computed =
        m->kind == HEALTHSIGNALS__V1__RULE_KIND__BASELINE_BAND ? P_BASELINE_RANGE : P_BASELINE_PERIODS;
    switch (m->kind) {
    case HEALTHSIGNALS__V1__RULE_KIND__BASELINE_BAND:
    case HEALTHSIGNALS__V1__RULE_KIND__BASELINE_MARGIN:
        if ((given & P_BASELINE_VALUE) && (given & computed))
            return hs_error_set(error, HS_ERR_VALIDATION, "baseline_value: give it or %s, not both",
                                computed == P_BASELINE_RANGE ? "baseline_from/baseline_to"
                                                             : "baseline_periods");
        if (!(given & (P_BASELINE_VALUE | computed)))
            needs = computed == P_BASELINE_RANGE ? "baseline_value or baseline_from/baseline_to"
                                                 : "baseline_value or baseline_periods";
        break;
    case HEALTHSIGNALS__V1__RULE_KIND__THRESHOLD:
        if (!(given & P_THRESHOLD))
            needs = "threshold";
        break;
    case HEALTHSIGNALS__V1__RULE_KIND__BASE_YEAR_GROWTH:
        if (!(given & P_BASE_PERIOD))
            needs = "base_period";
        break;
    default: break;
    }
    if (needs)
        return hs_error_set(error, HS_ERR_VALIDATION, "%s needs %s", hs_rule_kind_name(m->kind), needs);
    if (m->reference_years > REFERENCE_YEARS_MAX)
        return hs_error_set(error, HS_ERR_VALIDATION, "reference_years: %u is more than %d",
                            (unsigned)m->reference_years, REFERENCE_YEARS_MAX);
    return HS_OK;
}

static int compare_periods_in_time(const void *a, const void *b)
{
    const hs_period *pa = a, *pb = b;
    int64_t fa, ea, fb, eb;
    hs_period_days(pa, &fa, &ea);
    hs_period_days(pb, &fb, &eb);
    if (ea != eb)
        return ea < eb ? -1 : 1;
    return fa < fb ? -1 : fa > fb;
}

/* The periods a computed baseline is made of: baseline_from..baseline_to (BASELINE_BAND), the listed
 * periods (BASELINE_MARGIN) or the base period (BASE_YEAR_GROWTH); none for the other kinds or a supplied
 * baseline. */
static hs_err rule_parse_baseline(tg_rule *r, hs_error *error)
{
    const rule_msg *m = r->msg;
    r->evaluated_from_day = INT64_MIN;
    size_t n = 0;
    hs_period from = {0}, to = {0};
    if (m->kind == HEALTHSIGNALS__V1__RULE_KIND__BASELINE_BAND && m->baseline_from && *m->baseline_from) {
        if (hs_period_parse(m->baseline_from, &from, error) || hs_period_parse(m->baseline_to, &to, error))
            return HS_ERR_VALIDATION;
        int64_t span = hs_period_ordinal(&to) - hs_period_ordinal(&from) + 1;
        if (span < 1 || span > BASELINE_PERIODS_MAX)
            return hs_error_set(error, HS_ERR_VALIDATION,
                                "baseline_from..baseline_to: %" PRId64 " periods, want 1..%d", span,
                                BASELINE_PERIODS_MAX);
        n = (size_t)span;
    } else if (m->kind == HEALTHSIGNALS__V1__RULE_KIND__BASELINE_MARGIN) {
        n = m->n_baseline_periods;
    } else if (m->kind == HEALTHSIGNALS__V1__RULE_KIND__BASE_YEAR_GROWTH) {
        n = 1;
    }
    if (n == 0)
        return HS_OK;
    if (!(r->baseline = calloc(n, sizeof *r->baseline)))
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory parsing a rule");
    if (m->kind == HEALTHSIGNALS__V1__RULE_KIND__BASELINE_BAND) {
        for (size_t i = 0; i < n; i++)
            r->baseline[i] = hs_period_add(&from, (int64_t)i);
    } else if (m->kind == HEALTHSIGNALS__V1__RULE_KIND__BASELINE_MARGIN) {
        for (size_t i = 0; i < n; i++)
            if (hs_period_parse(m->baseline_periods[i], &r->baseline[i], error))
                return HS_ERR_VALIDATION;
        /* Sorted first, so that a period listed twice is found next to itself: n log n, not n². */
        qsort(r->baseline, n, sizeof *r->baseline, compare_periods_in_time);
        for (size_t i = 1; i < n; i++) {
            if (hs_period_compare(&r->baseline[i - 1], &r->baseline[i]) != 0)
                continue;
            char text[HS_PERIOD_TEXT_MAX];
            hs_period_format(&r->baseline[i], text, sizeof text);
            return hs_error_set(error, HS_ERR_VALIDATION, "baseline_periods: '%s' is listed twice", text);
        }
    } else if (hs_period_parse(m->base_period, &r->baseline[0], error)) {
        return HS_ERR_VALIDATION;
    }
    r->n_baseline = n;
    int64_t first_day, end_day;
    hs_period_days(&r->baseline[n - 1], &first_day, &end_day);
    r->evaluated_from_day = end_day;
    return HS_OK;
}

static hs_err rule_parse_scopes(tg_rule *r, hs_error *error)
{
    static const tg_scope everywhere[] = {
        {HEALTHSIGNALS__V1__SCOPE_KIND__REGION, "1081"}, {HEALTHSIGNALS__V1__SCOPE_KIND__REGION, "1082"},
        {HEALTHSIGNALS__V1__SCOPE_KIND__REGION, "1083"}, {HEALTHSIGNALS__V1__SCOPE_KIND__REGION, "1084"},
        {HEALTHSIGNALS__V1__SCOPE_KIND__REGION, "1085"}, {HEALTHSIGNALS__V1__SCOPE_KIND__NATIONAL, "DK"},
    };
    const rule_msg *m = r->msg;
    size_t n = m->n_scopes ? m->n_scopes : sizeof everywhere / sizeof everywhere[0];
    if (!(r->scopes = calloc(n, sizeof *r->scopes)))
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory parsing a rule");
    for (size_t i = 0; i < n; i++) {
        if (!m->n_scopes) {
            r->scopes[i] = everywhere[i];
            continue;
        }
        const Healthsignals__V1__Scope *scope = m->scopes[i];
        if (strlen(scope->code) >= sizeof r->scopes[i].code)
            return hs_error_set(error, HS_ERR_VALIDATION, "scopes[%zu]: code too long", i);
        r->scopes[i].kind = scope->kind;
        snprintf(r->scopes[i].code, sizeof r->scopes[i].code, "%s", scope->code);
        for (size_t j = 0; j < i; j++)
            if (r->scopes[j].kind == scope->kind && strcmp(r->scopes[j].code, scope->code) == 0)
                return hs_error_set(error, HS_ERR_VALIDATION, "scopes[%zu]: '%s' is listed twice", i,
                                    scope->code);
    }
    r->n_scopes = n;
    return HS_OK;
}

/* Fills `r` (owned by the caller: rule_clear) from the validated message `m`, with a copy of it; or returns
 * an error, `r` zeroed, for parameters its kind cannot use. */
static hs_err rule_init(tg_rule *r, const rule_msg *m, hs_error *error)
{
    memset(r, 0, sizeof *r);
    hs_err err = rule_check_params(m, error);
    if (err)
        return err;
    size_t len = protobuf_c_message_get_packed_size(&m->base);
    uint8_t *bytes = malloc(len ? len : 1);
    if (bytes) {
        protobuf_c_message_pack(&m->base, bytes);
        r->msg =
            (rule_msg *)protobuf_c_message_unpack(&healthsignals__v1__rule__descriptor, NULL, len, bytes);
    }
    free(bytes);
    if (!r->msg) {
        hs_error_set(error, HS_ERR_NOMEM, "out of memory storing a rule");
        return HS_ERR_NOMEM;
    }
    r->reference_years = m->reference_years ? m->reference_years : 1;
    r->for_periods = m->for_periods ? m->for_periods : 1;
    err = rule_parse_scopes(r, error);
    if (err == HS_OK)
        err = rule_parse_baseline(r, error);
    if (err)
        rule_clear(r);
    return err;
}

static bool rule_covers(const tg_rule *r, const char *indicator, Healthsignals__V1__ScopeKind kind,
                        const char *code)
{
    if (strcmp(r->msg->subject, indicator) != 0)
        return false;
    for (size_t i = 0; i < r->n_scopes; i++)
        if (r->scopes[i].kind == kind && strcmp(r->scopes[i].code, code) == 0)
            return true;
    return false;
}

/* A period is evaluated unless it starts before the computed baseline ends (it is part of the baseline, or
 * earlier). */
static bool rule_evaluates(const tg_rule *r, const tg_fact *f)
{
    return f->first_day >= r->evaluated_from_day;
}

static bool rule_has_baseline_period(const tg_rule *r, const hs_period *p)
{
    for (size_t i = 0; i < r->n_baseline; i++)
        if (hs_period_compare(&r->baseline[i], p) == 0)
            return true;
    return false;
}

static bool higher_is_better(const tg_rule *r)
{
    return r->msg->direction != HEALTHSIGNALS__V1__DIRECTION__LOWER_IS_BETTER;
}

/* --- state ---------------------------------------------------------------------------------------------- */

struct tg_baseline;
static struct tg_baseline *baseline_new(void);
static void baseline_free(struct tg_baseline *b);

typedef struct tg_state {
    tg_rule *rules; /* in arrival order */
    size_t n_rules, cap_rules;
    tg_series *series; /* every series, in arrival order; never removed, so an index stays valid */
    size_t n_series, cap_series;
    hs_table series_index; /* "indicator/scope" -> index into `series` (size_t) */
    size_t facts;
    hs_alert_store alerts;     /* the last Alert emitted per fingerprint (an alert, once emitted, stays) */
    hs_table rules_by_subject; /* subject -> size_t[]: indices into `rules`; rebuilt when !rules_indexed */
    bool rules_indexed;
    hs_table rules_by_id;        /* id -> size_t: index into `rules`, so that applying n rules is not n² */
    uint64_t next_serial;        /* the serial of the next rule version */
    struct tg_baseline *scratch; /* reused for the per-period baselines of GROWTH; owned */
} tg_state;

static void *targets_create(void)
{
    tg_state *s = calloc(1, sizeof *s);
    if (s && !(s->scratch = baseline_new())) {
        free(s);
        return NULL;
    }
    if (s) {
        hs_table_init(&s->series_index);
        hs_alert_store_init(&s->alerts);
        hs_table_init(&s->rules_by_subject);
        hs_table_init(&s->rules_by_id);
        s->next_serial = 1;
    }
    return s;
}

/* The series of an entry of s->series_index, or NULL. Valid until the next series is added. */
static tg_series *series_of_entry(const tg_state *s, const hs_table_entry *e)
{
    if (!e)
        return NULL;
    size_t index;
    memcpy(&index, e->value, sizeof index);
    assert(index < s->n_series);
    return &s->series[index];
}

static void targets_destroy(void *state)
{
    tg_state *s = state;
    for (size_t i = 0; i < s->n_rules; i++)
        rule_clear(&s->rules[i]);
    free(s->rules);
    for (size_t i = 0; i < s->n_series; i++)
        series_clear(&s->series[i]);
    free(s->series);
    hs_table_free(&s->series_index);
    hs_alert_store_free(&s->alerts);
    hs_table_free(&s->rules_by_subject);
    hs_table_free(&s->rules_by_id);
    baseline_free(s->scratch);
    free(s->scratch);
    free(s);
}

static void scope_component(Healthsignals__V1__ScopeKind kind, const char *code, char out[160])
{
    Healthsignals__V1__Scope scope = HEALTHSIGNALS__V1__SCOPE__INIT;
    scope.kind = kind;
    scope.code = (char *)code;
    hs_topic_scope_component(&scope, out, 160);
}

static hs_err series_key(const char *indicator, const char *scope_component_text, char key[HS_KEY_MAX],
                         hs_error *error)
{
    const char *parts[] = {indicator, scope_component_text};
    return hs_key_join(key, parts, 2, error);
}

static tg_series *series_get(const tg_state *s, const char *indicator, Healthsignals__V1__ScopeKind kind,
                             const char *code)
{
    char component[160], key[HS_KEY_MAX];
    scope_component(kind, code, component);
    if (series_key(indicator, component, key, NULL) != HS_OK)
        return NULL;
    return series_of_entry(s, hs_table_get(&s->series_index, key));
}

/* --- baselines and evaluation --------------------------------------------------------------------------- */

/* Growable list of periods used while evaluating (by value). */
typedef struct tg_periods {
    hs_period *items;
    size_t count, cap;
} tg_periods;

static bool periods_push(tg_periods *l, const hs_period *p)
{
    hs_period *items = hs_array_grow(l->items, &l->cap, l->count, sizeof *items, 8);
    if (!items)
        return false;
    l->items = items;
    l->items[l->count++] = *p;
    return true;
}

/* The baseline of one evaluation: for BASELINE_BAND / BASELINE_MARGIN / BASE_YEAR_GROWTH the same for every
 * period of a series, for GROWTH the period `reference_years` earlier. */
typedef struct tg_baseline {
    Healthsignals__V1__BaselineMethod method;
    bool known;
    double value;
    tg_periods used, excluded, missing;
    hs_flags flags;   /* quality flags of the facts used */
    bool provisional; /* a fact used is provisional */
} tg_baseline;

static void baseline_reset(tg_baseline *b)
{
    b->method = HEALTHSIGNALS__V1__BASELINE_METHOD__BASELINE_METHOD_UNSPECIFIED;
    b->known = b->provisional = false;
    b->value = 0;
    b->used.count = b->excluded.count = b->missing.count = b->flags.count = 0;
}

/* A new, empty baseline (baseline_free, then free); NULL when out of memory. */
static tg_baseline *baseline_new(void)
{
    return calloc(1, sizeof(tg_baseline));
}

static void baseline_free(tg_baseline *b)
{
    free(b->used.items);
    free(b->excluded.items);
    free(b->missing.items);
    hs_flags_free(&b->flags);
}

/* Averages the facts of `periods` in `series`, weighted by volume when every one has a volume (and they do
 * not sum to 0), else with equal weights. Any period without a fact makes the baseline unknown; flagged
 * periods are left out when the rule says so. Returns false when out of memory. The sums cannot overflow:
 * values are at most 1e15 in magnitude and volumes at most 1e12 (apply_fact), and a baseline has at most
 * BASELINE_PERIODS_MAX periods, so the weighted sum stays below 1e31. */
static bool baseline_mean(const tg_rule *r, const tg_series *series, const hs_period *periods, size_t n,
                          tg_baseline *b)
{
    double sum = 0, weighted = 0, volume = 0;
    bool all_volumes = true;
    for (size_t i = 0; i < n; i++) {
        const tg_fact *f = series_find(series, &periods[i]);
        if (!f) {
            if (!periods_push(&b->missing, &periods[i]))
                return false;
            continue;
        }
        if (f->n_flags && r->msg->exclude_flagged_from_baseline) {
            if (!periods_push(&b->excluded, &periods[i]))
                return false;
            continue;
        }
        if (!periods_push(&b->used, &periods[i]))
            return false;
        if (!hs_flags_add_all(&b->flags, f->flags, f->n_flags))
            return false;
        b->provisional |= f->provisional;
        sum += f->value;
        all_volumes &= f->has_volume;
        weighted += f->value * (double)f->volume;
        volume += (double)f->volume;
    }
    if (b->missing.count || !b->used.count)
        return true; /* unknown: NO_BASELINE */
    b->known = true;
    if (all_volumes && volume > 0) {
        b->method = HEALTHSIGNALS__V1__BASELINE_METHOD__BASELINE_WEIGHTED_MEAN;
        b->value = weighted / volume;
    } else {
        b->method = HEALTHSIGNALS__V1__BASELINE_METHOD__BASELINE_UNWEIGHTED_MEAN;
        b->value = sum / (double)b->used.count;
    }
    return true;
}

/* Computes the baseline of rule `r` for fact `f` of `series` into `b` (reset first). Returns false when out
 * of memory. */
static bool baseline_compute(const tg_rule *r, const tg_series *series, const tg_fact *f, tg_baseline *b)
{
    baseline_reset(b);
    const rule_msg *m = r->msg;
    switch (m->kind) {
    case HEALTHSIGNALS__V1__RULE_KIND__BASELINE_BAND:
    case HEALTHSIGNALS__V1__RULE_KIND__BASELINE_MARGIN:
        if (m->_baseline_value_case == HEALTHSIGNALS__V1__RULE___BASELINE_VALUE_BASELINE_VALUE) {
            b->method = HEALTHSIGNALS__V1__BASELINE_METHOD__BASELINE_SUPPLIED;
            b->known = true;
            b->value = m->baseline_value;
            return true;
        }
        return baseline_mean(r, series, r->baseline, r->n_baseline, b);
    case HEALTHSIGNALS__V1__RULE_KIND__GROWTH: {
        hs_period earlier;
        bool ok =
            !hs_period_year_earlier(&f->period, (int)r->reference_years, &earlier) ||
            baseline_mean(r, series, &earlier, 1, b); /* no such period (week 53, 29 February): unknown */
        b->method = HEALTHSIGNALS__V1__BASELINE_METHOD__BASELINE_REFERENCE_PERIOD;
        return ok;
    }
    case HEALTHSIGNALS__V1__RULE_KIND__BASE_YEAR_GROWTH: {
        bool ok = baseline_mean(r, series, r->baseline, 1, b);
        b->method = HEALTHSIGNALS__V1__BASELINE_METHOD__BASELINE_BASE_PERIOD;
        return ok;
    }
    default: return true; /* THRESHOLD: no baseline */
    }
}

/* One period evaluated under one rule. */
typedef struct tg_eval {
    const tg_fact *fact;
    Healthsignals__V1__TargetState state;
    bool has_target;
    double target, gap; /* gap > 0: better than the target */
    bool has_change;
    double change_pct;
} tg_eval;

/* Evaluates `f` under `r` with baseline `b` (from baseline_compute for this fact, or shared by the series
 * for the kinds whose baseline does not depend on the period). */
static tg_eval evaluate(const tg_rule *r, const tg_fact *f, const tg_baseline *b)
{
    const rule_msg *m = r->msg;
    tg_eval ev = {.fact = f, .state = HEALTHSIGNALS__V1__TARGET_STATE__NO_BASELINE};
    bool higher = higher_is_better(r);
    switch (m->kind) {
    case HEALTHSIGNALS__V1__RULE_KIND__BASELINE_BAND:
        ev.has_target = b->known;
        ev.target = higher ? b->value - m->band : b->value + m->band;
        break;
    case HEALTHSIGNALS__V1__RULE_KIND__BASELINE_MARGIN:
        ev.has_target = b->known;
        ev.target = higher ? b->value - m->margin : b->value + m->margin;
        break;
    case HEALTHSIGNALS__V1__RULE_KIND__GROWTH:
    case HEALTHSIGNALS__V1__RULE_KIND__BASE_YEAR_GROWTH:
        /* value >= base x (1 + growth): as base x (100 + growth) / 100, exact for whole-number figures
         * (112 x 120 / 100 = 134.4, correctly rounded). */
        ev.has_target = b->known;
        ev.target = b->value * (100.0 + m->growth_pct) / 100.0;
        if (b->known && b->value != 0) {
            ev.has_change = true;
            ev.change_pct = (f->value - b->value) * 100.0 / b->value;
        }
        break;
    case HEALTHSIGNALS__V1__RULE_KIND__THRESHOLD:
        ev.has_target = true;
        ev.target = m->threshold;
        break;
    default: break;
    }
    /* A figure that is not finite is no figure: a target a rule's parameters push past DBL_MAX (growth_pct
     * 1e300 on a baseline of 1e15) is unknown, and a change from a baseline near 0 (1e-300) is left out,
     * rather than Infinity in an output or a NaN deciding MET or MISSED. */
    if (ev.has_target && !isfinite(ev.target))
        ev.has_target = false;
    if (ev.has_change && !isfinite(ev.change_pct))
        ev.has_change = false;
    if (ev.has_target) {
        ev.gap = higher ? f->value - ev.target : ev.target - f->value;
        double scale = fabs(ev.target) > 1 ? fabs(ev.target) : 1;
        if (fabs(ev.gap) <= AT_TARGET_TOLERANCE * scale)
            ev.gap = 0;
        ev.state =
            ev.gap >= 0 ? HEALTHSIGNALS__V1__TARGET_STATE__MET : HEALTHSIGNALS__V1__TARGET_STATE__MISSED;
    } else {
        ev.target = 0;
    }
    if (f->suspended)
        ev.state = HEALTHSIGNALS__V1__TARGET_STATE__SUSPENDED;
    return ev;
}

/* MET and MISSED periods count for alerts; SUSPENDED and NO_BASELINE ones neither fire nor resolve. */
static bool evaluable(Healthsignals__V1__TargetState state)
{
    return state == HEALTHSIGNALS__V1__TARGET_STATE__MET || state == HEALTHSIGNALS__V1__TARGET_STATE__MISSED;
}

/* --- TargetStatus --------------------------------------------------------------------------------------- */

static hs_err status_key(const tg_rule *r, const tg_series *series, const char *period, char key[HS_KEY_MAX],
                         hs_error *error)
{
    char component[160];
    scope_component(series->scope_kind, series->scope_code, component);
    const char *parts[] = {r->msg->subject, r->msg->id, component, period};
    return hs_key_join(key, parts, 4, error);
}

/* The quality flags of an evaluation: the fact's and the baseline's, sorted, unique. `out` is reset. */
static bool eval_flags(const tg_fact *f, const tg_baseline *b, hs_flags *out)
{
    out->count = 0;
    for (size_t i = 0; i < f->n_flags; i++)
        if (!hs_flags_add(out, f->flags[i]))
            return false;
    for (size_t i = 0; i < b->flags.count; i++)
        if (!hs_flags_add(out, b->flags.items[i]))
            return false;
    hs_flags_sort_unique(out);
    return true;
}

/* Period texts of `l` as a malloc'd block: `count` pointers followed by the texts. NULL when empty or out
 * of memory (*ok says which). */
static char **period_texts(const tg_periods *l, bool *ok)
{
    *ok = true;
    if (!l->count)
        return NULL;
    char **texts = malloc(l->count * (sizeof(char *) + HS_PERIOD_TEXT_MAX));
    if (!texts) {
        *ok = false;
        return NULL;
    }
    char *storage = (char *)(texts + l->count);
    for (size_t i = 0; i < l->count; i++) {
        texts[i] = storage + i * HS_PERIOD_TEXT_MAX;
        hs_period_format(&l->items[i], texts[i], HS_PERIOD_TEXT_MAX);
    }
    return texts;
}

static hs_err emit_status(const tg_rule *r, const tg_series *series, const tg_eval *ev, const tg_baseline *b,
                          hs_emit *emit, hs_error *error)
{
    const rule_msg *m = r->msg;
    const tg_fact *f = ev->fact;
    char key[HS_KEY_MAX];
    hs_err err = status_key(r, series, f->period_text, key, error);
    if (err)
        return err;

    Healthsignals__V1__Scope scope = HEALTHSIGNALS__V1__SCOPE__INIT;
    scope.kind = series->scope_kind;
    scope.code = series->scope_code;
    Healthsignals__V1__TargetStatus st = HEALTHSIGNALS__V1__TARGET_STATUS__INIT;
    st.rule = m->id;
    st.kind = m->kind;
    st.direction = m->direction;
    st.scope = &scope;
    st.subject = m->subject;
    st.period = (char *)f->period_text;
    st.value = f->value;
    st.unit = f->unit;
    st.status = ev->state;
    st.provisional = f->provisional || b->provisional;
    if (ev->has_target) {
        st._target_case = HEALTHSIGNALS__V1__TARGET_STATUS___TARGET_TARGET;
        st.target = ev->target;
        st._gap_case = HEALTHSIGNALS__V1__TARGET_STATUS___GAP_GAP;
        st.gap = ev->gap;
    }
    if (b->known && b->method != HEALTHSIGNALS__V1__BASELINE_METHOD__BASELINE_METHOD_UNSPECIFIED) {
        st._baseline_case = HEALTHSIGNALS__V1__TARGET_STATUS___BASELINE_BASELINE;
        st.baseline = b->value;
    }
    if (ev->has_change) {
        st._change_pct_case = HEALTHSIGNALS__V1__TARGET_STATUS___CHANGE_PCT_CHANGE_PCT;
        st.change_pct = ev->change_pct;
    }
    st.baseline_method = b->method;

    hs_flags flags = {0};
    bool ok_used, ok_excluded, ok_missing;
    char **used = period_texts(&b->used, &ok_used);
    char **excluded = period_texts(&b->excluded, &ok_excluded);
    char **missing = period_texts(&b->missing, &ok_missing);
    if (eval_flags(f, b, &flags) && ok_used && ok_excluded && ok_missing) {
        st.n_quality_flags = flags.count;
        st.quality_flags = (char **)flags.items;
        st.n_baseline_periods = b->used.count;
        st.baseline_periods = used;
        st.n_excluded_baseline_periods = b->excluded.count;
        st.excluded_baseline_periods = excluded;
        st.n_missing_baseline_periods = b->missing.count;
        st.missing_baseline_periods = missing;
        err = hs_emit_put(emit, hs_topic_find(HS_TOPIC_TARGET_STATUS), key, &st.base);
        if (err)
            hs_error_set(error, err, "emitting %s: %s", key, hs_err_str(err));
    } else {
        err = hs_error_set(error, HS_ERR_NOMEM, "out of memory evaluating %s", key);
    }
    hs_flags_free(&flags);
    free(used);
    free(excluded);
    free(missing);
    return err;
}

/* --- alerts --------------------------------------------------------------------------------------------- */

/* The alert state machine (hs/alert.h) after some prefix of a series' evaluated periods, whose indices into
 * the series' facts are its periods, so that a checkpoint of it can be kept per period (tg_point). MET and
 * MISSED periods are stepped: a miss is a breach, a met period resolves by the rule's hysteresis. */
typedef hs_alert_history tg_history;

/* What the alert shows: the outcome of the replay, with the period it shows (hs_alert_history_shown)
 * evaluated in full. */
typedef struct tg_outcome {
    const tg_history *history;
    const tg_fact *fired, *resolved;
    tg_eval shown;
} tg_outcome;

/* How the target was derived, for the description: "baseline 82 (supplied) - band 3", "baseline 31 (mean of
 * 2020Q1) + margin 2", "100 in 2022Q2 +3%". */
static void target_basis(const tg_rule *r, const tg_baseline *b, hs_text *out)
{
    const rule_msg *m = r->msg;
    char first[HS_PERIOD_TEXT_MAX] = "", last[HS_PERIOD_TEXT_MAX] = "";
    if (b->used.count) {
        hs_period_format(&b->used.items[0], first, sizeof first);
        hs_period_format(&b->used.items[b->used.count - 1], last, sizeof last);
    }
    switch (m->kind) {
    case HEALTHSIGNALS__V1__RULE_KIND__BASELINE_BAND:
    case HEALTHSIGNALS__V1__RULE_KIND__BASELINE_MARGIN: {
        bool band = m->kind == HEALTHSIGNALS__V1__RULE_KIND__BASELINE_BAND;
        hs_text_add(out, "baseline ");
        hs_text_figure(out, b->value);
        if (b->method == HEALTHSIGNALS__V1__BASELINE_METHOD__BASELINE_SUPPLIED)
            hs_text_add(out, " (supplied");
        else
            hs_text_cat(out,
                        b->method == HEALTHSIGNALS__V1__BASELINE_METHOD__BASELINE_WEIGHTED_MEAN
                            ? " (weighted mean of "
                            : " (mean of ",
                        first, b->used.count > 1 ? ".." : "", b->used.count > 1 ? last : "", NULL);
        hs_text_cat(out, higher_is_better(r) ? ") -" : ") +", band ? " band " : " margin ", NULL);
        hs_text_figure(out, band ? m->band : m->margin);
        break;
    }
    case HEALTHSIGNALS__V1__RULE_KIND__GROWTH:
    case HEALTHSIGNALS__V1__RULE_KIND__BASE_YEAR_GROWTH:
        hs_text_figure(out, b->value);
        hs_text_cat(out, " in ", first, m->growth_pct >= 0 ? " +" : " ", NULL);
        hs_text_figure(out, m->growth_pct);
        hs_text_add(out, "%");
        break;
    default: hs_text_add(out, "threshold"); break;
    }
}

static Healthsignals__V1__Severity alert_severity(const tg_rule *r)
{
    return r->msg->severity ? r->msg->severity : HEALTHSIGNALS__V1__SEVERITY__WARNING;
}

/* Builds and emits the alert of `r` in `series` from its replayed history. `b` is the baseline of the
 * latest evaluable period; `stored` the last alert emitted for the fingerprint, or NULL. */
static hs_err alert_emit(tg_state *s, const tg_rule *r, const tg_series *series, const char *fingerprint,
                         const tg_outcome *h, const tg_baseline *b, const Healthsignals__V1__Alert *stored,
                         hs_emit *emit, hs_error *error)
{
    const rule_msg *m = r->msg;
    const tg_fact *f = h->shown.fact;
    char component[160], name_buf[64], starts[HS_RFC3339_MAX], ends[HS_RFC3339_MAX];
    scope_component(series->scope_kind, series->scope_code, component);
    const char *name =
        hs_scope_display_name(series->scope_kind, series->scope_code, name_buf, sizeof name_buf);
    bool firing = h->history->episode && h->history->firing;
    hs_alert_bounds(h->history, h->fired ? &h->fired->period : NULL,
                    h->resolved ? &h->resolved->period : NULL, &f->period, stored ? stored->starts_at : NULL,
                    starts, ends);

    Healthsignals__V1__Scope scope = HEALTHSIGNALS__V1__SCOPE__INIT;
    scope.kind = series->scope_kind;
    scope.code = series->scope_code;
    Healthsignals__V1__Alert alert = HEALTHSIGNALS__V1__ALERT__INIT;
    alert.fingerprint = (char *)fingerprint;
    alert.state = firing ? HEALTHSIGNALS__V1__ALERT_STATE__FIRING : HEALTHSIGNALS__V1__ALERT_STATE__RESOLVED;
    alert.severity = alert_severity(r);
    alert.rule = m->id;
    alert.service = SERVICE_NAME;
    alert.scope = &scope;
    alert.subject = m->subject;
    alert.period = (char *)f->period_text;
    alert.value = f->value;
    alert.threshold = h->shown.target;
    alert.starts_at = starts;
    alert.ends_at = ends;

    /* Labels: the identifying ones, then the rule's own (an identifying name wins), sorted by name. */
    const char *const core[][2] = {{"alertname", m->id},
                                   {"service", SERVICE_NAME},
                                   {"scope", component},
                                   {"subject", m->subject},
                                   {"severity", hs_severity_label(alert.severity)}};
    hs_alert_labels labels;
    if (!hs_alert_labels_build(&labels, core, sizeof core / sizeof core[0], m))
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory building an alert");
    hs_flags flags = {0};
    hs_err err = HS_OK;
    if (!eval_flags(f, b, &flags)) {
        err = hs_error_set(error, HS_ERR_NOMEM, "out of memory building an alert");
        goto done;
    }
    alert.n_labels = labels.count;
    alert.labels = labels.items;

    /* Annotations: summary and description, with the figures. */
    char summary_buf[512], description_buf[1024];
    hs_text summary = hs_text_in(summary_buf, sizeof summary_buf);
    hs_text_cat(&summary, *m->summary ? m->summary : m->id, ": ", name,
                firing ? " misses the target" : " meets the target again", NULL);

    /* "Midtjylland 2023Q2 (provisional): 61% against the target 79% (baseline 82 (supplied) - band 3):
     * missed by 18; firing since 2022Q1." */
    const char *unit = hs_unit_suffix(f->unit);
    hs_text d = hs_text_in(description_buf, sizeof description_buf);
    hs_text_cat(&d, name, " ", f->period_text, f->provisional ? " (provisional): " : ": ", NULL);
    hs_text_figure(&d, f->value);
    hs_text_cat(&d, unit, " against the target ", NULL);
    hs_text_figure(&d, h->shown.target);
    hs_text_cat(&d, unit, " (", NULL);
    target_basis(r, b, &d);
    hs_text_add(&d, h->shown.state == HEALTHSIGNALS__V1__TARGET_STATE__MISSED ? "): missed by "
                    : h->shown.gap > 0                                        ? "): met, better by "
                                                                              : "): met exactly");
    if (h->shown.gap != 0)
        hs_text_figure(&d, fabs(h->shown.gap));
    if (h->history->episode)
        hs_text_cat(&d, firing ? "; firing since " : "; resolved in ",
                    (firing ? h->fired : h->resolved)->period_text, NULL);
    else
        hs_text_add(&d, "; resolved by a revision");
    for (size_t i = 0; i < flags.count; i++)
        hs_text_cat(&d, i ? ", " : "; quality flags: ", flags.items[i], NULL);
    hs_text_add(&d, ".");
    alert.n_quality_flags = flags.count;
    alert.quality_flags = (char **)flags.items;
    err = hs_alert_put_described(&s->alerts, &alert, summary_buf, description_buf, emit, error);
done:
    hs_alert_labels_free(&labels);
    hs_flags_free(&flags);
    return err;
}

/* --- evaluating a rule in a series ---------------------------------------------------------------------- */

/* One period of a series as a rule last evaluated it: what the alert's replay needs, and the alert state
 * machine's checkpoint after it. */
typedef struct tg_point {
    Healthsignals__V1__TargetState state; /* UNSPECIFIED: not evaluated (in or before the baseline) */
    bool dirty;                           /* its fact was stored or replaced since: evaluate before use */
    double gap;
    tg_history after; /* valid for the points before the track's replay_from */
} tg_point;

/* What makes a fact cost only the periods that can depend on it: one rule's incremental evaluation of one
 * series. Its points are in step with the series' facts (inserted, replaced and removed with them); the
 * baseline is the rule's for the series when it is the same for every period (every kind but GROWTH),
 * recomputed when one of its periods changes. It belongs to one version of the rule (`rule_serial`); a new
 * version gets a new track, and a track is given up (valid false) when an update fails half-way. */
struct tg_track {
    uint64_t rule_serial;
    bool valid;
    tg_point *points;     /* the series' `cap` of them */
    size_t dirty;         /* points marked dirty */
    size_t replay_from;   /* points[replay_from..] need their checkpoint recomputed */
    int64_t touched_from; /* the first and the last point the latest update evaluated, -1 none */
    int64_t touched_to;
    bool structural;      /* a fact was inserted or removed since the last alert decision */
    tg_baseline baseline; /* borrows flag strings from the baseline's facts */
    tg_history shown;     /* the history the last alert decision was made on */
};

static void tracks_free(tg_series *series)
{
    for (size_t i = 0; i < series->n_tracks; i++) {
        free(series->tracks[i].points);
        baseline_free(&series->tracks[i].baseline);
    }
    free(series->tracks);
    series->tracks = NULL;
    series->n_tracks = series->cap_tracks = 0;
}

/* Drops the track of rule version `serial` from `series`, if it has one. */
static void series_drop_track(tg_series *series, uint64_t serial)
{
    for (size_t i = 0; i < series->n_tracks; i++) {
        tg_track *t = &series->tracks[i];
        if (t->rule_serial != serial)
            continue;
        free(t->points);
        baseline_free(&t->baseline);
        series->tracks[i] = series->tracks[--series->n_tracks];
        return;
    }
}

/* Room for one more fact in `series`, for its tracks too. False when out of memory (nothing changed). */
static bool series_reserve(tg_series *series)
{
    if (series->count < series->cap)
        return true;
    size_t cap = series->cap ? 2 * series->cap : 8;
    tg_fact *facts = realloc(series->facts, cap * sizeof *facts);
    if (!facts)
        return false;
    series->facts = facts;
    for (size_t i = 0; i < series->n_tracks; i++) {
        tg_point *points = realloc(series->tracks[i].points, cap * sizeof *points);
        if (!points)
            return false; /* the tracks grown so far keep their larger arrays: harmless */
        series->tracks[i].points = points;
    }
    series->cap = cap;
    return true;
}

/* Inserts `fact` at `at` (series_reserve first), with a dirty point in every track. */
static void series_insert(tg_series *series, size_t at, const tg_fact *fact)
{
    assert(series->count < series->cap && at <= series->count && series->count < INT32_MAX);
    memmove(&series->facts[at + 1], &series->facts[at], (series->count - at) * sizeof *series->facts);
    series->facts[at] = *fact;
    for (size_t i = 0; i < series->n_tracks; i++) {
        tg_track *t = &series->tracks[i];
        memmove(&t->points[at + 1], &t->points[at], (series->count - at) * sizeof *t->points);
        memset(&t->points[at], 0, sizeof t->points[at]);
        t->points[at].dirty = true;
        t->dirty++;
        t->structural = true;
        if (at < t->replay_from)
            t->replay_from = at;
    }
    series->count++;
}

/* Replaces the fact at `at` by `fact` (which the series takes over), marking its points dirty. */
static void series_replace(tg_series *series, size_t at, const tg_fact *fact)
{
    fact_clear(&series->facts[at]);
    series->facts[at] = *fact;
    for (size_t i = 0; i < series->n_tracks; i++) {
        tg_track *t = &series->tracks[i];
        if (!t->points[at].dirty) {
            t->points[at].dirty = true;
            t->dirty++;
        }
        if (at < t->replay_from)
            t->replay_from = at;
    }
}

/* Removes the fact at `at` and its points. */
static void series_remove(tg_series *series, size_t at)
{
    assert(at < series->count);
    fact_clear(&series->facts[at]);
    memmove(&series->facts[at], &series->facts[at + 1], (series->count - at - 1) * sizeof *series->facts);
    for (size_t i = 0; i < series->n_tracks; i++) {
        tg_track *t = &series->tracks[i];
        if (t->points[at].dirty)
            t->dirty--;
        memmove(&t->points[at], &t->points[at + 1], (series->count - at - 1) * sizeof *t->points);
        t->structural = true;
        if (at < t->replay_from)
            t->replay_from = at;
    }
    series->count--;
}

/* Which statuses of a series to emit: all, or the facts of at most two periods. */
typedef struct tg_affected {
    bool all;
    hs_period periods[2];
    size_t count;
} tg_affected;

/* Finds or creates the track of `r` in `series`. *fresh says that it holds nothing yet (new, or given up
 * after an error): everything must be evaluated. NULL when out of memory. */
static tg_track *series_track(tg_series *series, const tg_rule *r, bool *fresh)
{
    for (size_t i = 0; i < series->n_tracks; i++) {
        tg_track *t = &series->tracks[i];
        if (t->rule_serial == r->serial) {
            *fresh = !t->valid;
            return t;
        }
    }
    tg_track *tracks =
        hs_array_grow(series->tracks, &series->cap_tracks, series->n_tracks, sizeof *tracks, 4);
    if (!tracks)
        return NULL;
    series->tracks = tracks;
    tg_track *t = &series->tracks[series->n_tracks];
    memset(t, 0, sizeof *t);
    if (series->cap && !(t->points = calloc(series->cap, sizeof *t->points)))
        return NULL;
    t->rule_serial = r->serial;
    series->n_tracks++;
    *fresh = true;
    return t;
}

/* Evaluates one period (index `i`) of `series` under `r` into its point, and emits its status when
 * `emit_it`. */
static hs_err track_evaluate(tg_state *s, const tg_rule *r, const tg_series *series, tg_track *t, size_t i,
                             bool emit_it, hs_emit *emit, hs_error *error)
{
    const tg_fact *f = &series->facts[i];
    tg_point *pt = &t->points[i];
    hs_err err = HS_OK;
    if (!rule_evaluates(r, f)) {
        pt->state = HEALTHSIGNALS__V1__TARGET_STATE__TARGET_STATE_UNSPECIFIED;
    } else {
        const tg_baseline *b = &t->baseline;
        if (r->msg->kind == HEALTHSIGNALS__V1__RULE_KIND__GROWTH) {
            if (!baseline_compute(r, series, f, s->scratch))
                return hs_error_set(error, HS_ERR_NOMEM, "out of memory computing a baseline");
            b = s->scratch;
        }
        tg_eval ev = evaluate(r, f, b);
        if (emit_it)
            err = emit_status(r, series, &ev, b, emit, error);
        pt->state = ev.state;
        pt->gap = ev.gap;
    }
    if (pt->dirty) {
        pt->dirty = false;
        t->dirty--;
    }
    if (i < t->replay_from)
        t->replay_from = i;
    if (t->touched_from < 0 || t->touched_from > (int64_t)i)
        t->touched_from = (int64_t)i;
    if (t->touched_to < (int64_t)i)
        t->touched_to = (int64_t)i;
    return err;
}

/* Brings the points of `t` up to date after a change of `series`: every point when `full` (a new track, a
 * changed baseline, a rule change), else only the points of the affected periods and those marked dirty.
 * Emits the status of every point it evaluates that `affected` names (every one, when `full`). */
static hs_err track_update(tg_state *s, const tg_rule *r, const tg_series *series, tg_track *t,
                           const tg_affected *affected, bool full, hs_emit *emit, hs_error *error)
{
    hs_err err = HS_OK;
    t->touched_from = t->touched_to = -1;
    if (full) {
        /* The baseline of every kind but GROWTH is the same for all periods: computed once here, and again
         * only when one of its periods changes (which makes the update full). */
        if (r->msg->kind != HEALTHSIGNALS__V1__RULE_KIND__GROWTH &&
            !baseline_compute(r, series, &series->facts[0], &t->baseline))
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory computing a baseline");
        for (size_t i = 0; err == HS_OK && i < series->count; i++)
            err = track_evaluate(s, r, series, t, i, true, emit, error);
        return err;
    }
    for (size_t k = 0; err == HS_OK && k < affected->count; k++) {
        bool found;
        const hs_period *p = &affected->periods[k];
        size_t i = series_position_of(series, p, &found);
        if (found)
            err = track_evaluate(s, r, series, t, i, true, emit, error);
    }
    /* Points left dirty by an earlier failure: evaluated, and their statuses emitted, now. */
    for (size_t i = 0; err == HS_OK && t->dirty && i < series->count; i++)
        if (t->points[i].dirty)
            err = track_evaluate(s, r, series, t, i, true, emit, error);
    return err;
}

/* Replays the alert state machine over the points from t->replay_from on, from the checkpoint before it,
 * and returns the history after the last period. */
static tg_history track_replay(const tg_rule *r, const tg_series *series, tg_track *t)
{
    size_t from = t->replay_from < series->count ? t->replay_from : series->count;
    tg_history h = from ? t->points[from - 1].after : HS_ALERT_HISTORY_START;
    for (size_t i = from; i < series->count; i++) {
        tg_point *pt = &t->points[i];
        assert(!pt->dirty);
        if (evaluable(pt->state))
            hs_alert_step(&h, (int32_t)i, pt->state == HEALTHSIGNALS__V1__TARGET_STATE__MISSED, pt->gap,
                          r->msg->hysteresis, r->for_periods);
        pt->after = h;
    }
    t->replay_from = series->count;
    return h;
}

/* Emits the alert of `r` in `series` for the replayed history `h`: the period it shows
 * (hs_alert_history_shown) is evaluated again in full for the alert's figures. `had` says an alert was
 * emitted for `fingerprint` before.
 */
static hs_err alert_update(tg_state *s, const tg_rule *r, const tg_series *series, const tg_track *t,
                           const tg_history *h, const char *fingerprint, bool had, hs_emit *emit,
                           hs_error *error)
{
    const tg_fact *shown = &series->facts[hs_alert_history_shown(h)];
    const tg_baseline *b = &t->baseline;
    if (r->msg->kind == HEALTHSIGNALS__V1__RULE_KIND__GROWTH) {
        if (!baseline_compute(r, series, shown, s->scratch))
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory computing a baseline");
        b = s->scratch;
    }
    tg_outcome outcome = {
        .history = h,
        .fired = h->fired >= 0 ? &series->facts[h->fired] : NULL,
        .resolved = h->resolved >= 0 ? &series->facts[h->resolved] : NULL,
        .shown = evaluate(r, shown, b),
    };
    /* Without an episode the alert is one that a revision resolved: it keeps the startsAt it had. */
    Healthsignals__V1__Alert *stored = had && !h->episode ? hs_alert_stored(&s->alerts, fingerprint) : NULL;
    if (had && !h->episode && !stored)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory reading an alert");
    hs_err err = alert_emit(s, r, series, fingerprint, &outcome, b, stored, emit, error);
    if (stored)
        protobuf_c_message_free_unpacked(&stored->base, NULL);
    return err;
}

/* Evaluates `r` in one scope after a change of `series` (which may be NULL: no facts in the scope): brings
 * the rule's track of the series up to date, emitting the statuses of the affected periods, replays the alert
 * state machine from the first period that changed, and emits the alert unless nothing it shows can have
 * changed. With a rule change or a baseline period in `affected`, every period is evaluated again. */
static hs_err evaluate_scope(tg_state *s, const tg_rule *r, const tg_scope *scope, tg_series *series,
                             const tg_affected *affected, hs_emit *emit, hs_error *error)
{
    hs_err err = HS_OK;
    tg_history h = HS_ALERT_HISTORY_START;
    tg_track *t = NULL;
    bool full = affected->all;
    if (series && !series->count)
        series_drop_track(series, r->serial); /* nothing left to keep: the next fact starts afresh */
    if (series && series->count) {
        bool fresh = false;
        if (!(t = series_track(series, r, &fresh)))
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory evaluating a rule");
        full |= fresh;
        t->valid = false; /* until the update and the alert are through */
        err = track_update(s, r, series, t, affected, full, emit, error);
        if (err)
            return err;
        h = track_replay(r, series, t);
    }

    char component[160], fingerprint[HS_FINGERPRINT_MAX];
    scope_component(scope->kind, scope->code, component);
    hs_alert_fingerprint(r->msg->id, component, r->msg->subject, NULL, fingerprint);
    bool had = hs_table_get(&s->alerts.alerts, fingerprint) != NULL;
    if (h.last >= 0 && (h.episode || had)) {
        /* The alert shows the history and the latest evaluable period (its fact and baseline), nothing else:
         * unchanged history, no period at or after the latest re-evaluated and no insertion or removal
         * (which moves the indices) mean an unchanged alert. */
        bool changed;
        if (hs_alert_history_resolved(
                &h)) /* only the episode and the evaluation of its resolving period count */
            changed = full || t->structural || !hs_alert_history_resolved(&t->shown) ||
                      t->shown.fired != h.fired || t->shown.resolved != h.resolved ||
                      (t->touched_from >= 0 && t->touched_from <= h.resolved && t->touched_to >= h.resolved);
        else
            changed =
                full || t->structural || t->touched_to >= h.last || !hs_alert_history_equal(&h, &t->shown);
        if (changed)
            err = alert_update(s, r, series, t, &h, fingerprint, had, emit, error);
    } else if (had) {
        err = hs_alert_retire(&s->alerts, fingerprint, "no evaluable period left", emit, error);
    }
    if (t && err == HS_OK) {
        t->shown = h;
        t->structural = false;
        t->valid = true;
    }
    return err;
}

/* Evaluates every scope of `r`, emitting every status and alert. */
static hs_err evaluate_rule(tg_state *s, const tg_rule *r, hs_emit *emit, hs_error *error)
{
    tg_affected all = {.all = true};
    for (size_t i = 0; i < r->n_scopes; i++) {
        tg_series *series = series_get(s, r->msg->subject, r->scopes[i].kind, r->scopes[i].code);
        hs_err err = evaluate_scope(s, r, &r->scopes[i], series, &all, emit, error);
        if (err)
            return err;
    }
    return HS_OK;
}

/* Takes back what `old` produced and `fresh` (the rule's new version, or NULL when deleted) will not: the
 * statuses of periods it no longer evaluates, and the alerts of scopes it no longer covers. */
static hs_err retract_rule(tg_state *s, const tg_rule *old, const tg_rule *fresh, hs_emit *emit,
                           hs_error *error)
{
    const hs_topic *status_topic = hs_topic_find(HS_TOPIC_TARGET_STATUS);
    for (size_t i = 0; i < old->n_scopes; i++) {
        const tg_scope *scope = &old->scopes[i];
        bool covered = fresh && rule_covers(fresh, old->msg->subject, scope->kind, scope->code);
        tg_series *series = series_get(s, old->msg->subject, scope->kind, scope->code);
        if (series)
            series_drop_track(series, old->serial);
        for (size_t k = 0; series && k < series->count; k++) {
            const tg_fact *f = &series->facts[k];
            if (!rule_evaluates(old, f) || (covered && rule_evaluates(fresh, f)))
                continue;
            char key[HS_KEY_MAX];
            hs_err err = status_key(old, series, f->period_text, key, error);
            if (err == HS_OK && (err = hs_emit_put(emit, status_topic, key, NULL)) != HS_OK)
                hs_error_set(error, err, "deleting %s: %s", key, hs_err_str(err));
            if (err)
                return err;
        }
        if (!covered) {
            char component[160], fingerprint[HS_FINGERPRINT_MAX];
            scope_component(scope->kind, scope->code, component);
            hs_alert_fingerprint(old->msg->id, component, old->msg->subject, NULL, fingerprint);
            hs_err err =
                hs_alert_retire(&s->alerts, fingerprint,
                                fresh ? "the rule no longer covers it" : "the rule was deleted", emit, error);
            if (err)
                return err;
        }
    }
    return HS_OK;
}

static hs_err apply_rule(tg_state *s, const char *key, const rule_msg *value, hs_emit *emit, hs_error *error)
{
    tg_rule fresh = {0}, old = {0};
    if (value) {
        hs_err err = rule_init(&fresh, value, error);
        if (err)
            return err;
        fresh.serial = s->next_serial++;
    }
    const char *id = value ? value->id : key;
    bool reindex_failed = false;
    const hs_table_entry *known = hs_table_get(&s->rules_by_id, id);
    size_t at = s->n_rules;
    if (known)
        memcpy(&at, known->value, sizeof at);
    assert(at <= s->n_rules);
    bool had = at < s->n_rules;
    if (!had && !value)
        return HS_OK;
    if (had)
        old = s->rules[at];
    if (!had) {
        tg_rule *rules = hs_array_grow(s->rules, &s->cap_rules, s->n_rules, sizeof *rules, 8);
        if (!rules) {
            rule_clear(&fresh);
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory storing a rule");
        }
        s->rules = rules;
        if (hs_table_put(&s->rules_by_id, id, &at, sizeof at) == HS_TABLE_NOMEM) {
            rule_clear(&fresh);
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory storing a rule");
        }
        s->rules[s->n_rules++] = fresh;
    } else if (value) {
        s->rules[at] = fresh;
    } else {
        /* Removed in place, keeping the arrival order; the rules after it move down one. */
        hs_table_delete(&s->rules_by_id, id);
        memmove(&s->rules[at], &s->rules[at + 1], (s->n_rules - at - 1) * sizeof *s->rules);
        s->n_rules--;
        for (size_t k = at; k < s->n_rules && !reindex_failed; k++)
            reindex_failed =
                hs_table_put(&s->rules_by_id, s->rules[k].msg->id, &k, sizeof k) == HS_TABLE_NOMEM;
    }
    s->rules_indexed = false;
    /* `fresh` and the array share the new rule's memory; `old` alone owns the old rule's now. */
    hs_err err = reindex_failed ? hs_error_set(error, HS_ERR_NOMEM, "out of memory indexing the rules")
                 : had          ? retract_rule(s, &old, value ? &fresh : NULL, emit, error)
                                : HS_OK;
    if (err == HS_OK && value)
        err = evaluate_rule(s, &fresh, emit, error);
    if (had)
        rule_clear(&old);
    return err;
}

/* --- facts ---------------------------------------------------------------------------------------------- */

/* The statuses a fact of period `p` can change under `r`: its own, every one of the series when `p` is a
 * baseline period, and for GROWTH the period that compares with it. */
static tg_affected affected_by(const tg_rule *r, const hs_period *p)
{
    tg_affected a = {.all = rule_has_baseline_period(r, p), .periods = {*p}, .count = 1};
    hs_period later;
    if (r->msg->kind == HEALTHSIGNALS__V1__RULE_KIND__GROWTH &&
        hs_period_year_earlier(p, -(int)r->reference_years, &later))
        a.periods[a.count++] = later;
    return a;
}

/* Rebuilds s->rules_by_subject: for each subject, the indices of its rules in s->rules, in order, so that a
 * fact looks at the few rules of its indicator instead of all. */
static hs_err index_rules(tg_state *s, hs_error *error)
{
    hs_table_free(&s->rules_by_subject);
    hs_table_init(&s->rules_by_subject);
    if (!s->n_rules) {
        s->rules_indexed = true;
        return HS_OK;
    }
    size_t *indices = malloc(s->n_rules * sizeof *indices); /* room for a subject that has every rule */
    if (!indices)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory indexing the rules");
    hs_err err = HS_OK;
    for (size_t i = 0; err == HS_OK && i < s->n_rules; i++) {
        const char *subject = s->rules[i].msg->subject;
        const hs_table_entry *e = hs_table_get(&s->rules_by_subject, subject);
        size_t n = e ? e->value_len / sizeof *indices : 0;
        assert(n < s->n_rules);
        if (n)
            memcpy(indices, e->value, n * sizeof *indices);
        indices[n] = i;
        if (hs_table_put(&s->rules_by_subject, subject, indices, (n + 1) * sizeof *indices) == HS_TABLE_NOMEM)
            err = hs_error_set(error, HS_ERR_NOMEM, "out of memory indexing the rules");
    }
    free(indices);
    s->rules_indexed = err == HS_OK;
    return err;
}

/* A new, empty series for the indicator and scope of `obs`, under `key`; NULL when out of memory. */
static tg_series *series_add(tg_state *s, const char *key, const fact_msg *obs)
{
    tg_series *grown = hs_array_grow(s->series, &s->cap_series, s->n_series, sizeof *grown, 16);
    if (!grown)
        return NULL;
    s->series = grown;
    tg_series *series = &s->series[s->n_series];
    memset(series, 0, sizeof *series);
    series->indicator = strdup(obs->indicator);
    series->scope_code = strdup(obs->scope->code);
    series->scope_kind = obs->scope->kind;
    size_t index = s->n_series;
    if (!series->indicator || !series->scope_code ||
        hs_table_put(&s->series_index, key, &index, sizeof index) == HS_TABLE_NOMEM) {
        series_clear(series);
        return NULL;
    }
    s->n_series++;
    return series;
}

/* Stores `obs` in its series (creating the series), replacing the fact of the same period. */
static hs_err store_fact(tg_state *s, const char *series_key_text, const fact_msg *obs, tg_series **out,
                         hs_error *error)
{
    tg_fact fact;
    hs_err err = fact_from_message(obs, &fact, error);
    if (err)
        return err;
    tg_series *series = series_of_entry(s, hs_table_get(&s->series_index, series_key_text));
    if (!series && !(series = series_add(s, series_key_text, obs))) {
        fact_clear(&fact);
        hs_error_set(error, HS_ERR_NOMEM, "out of memory storing a fact");
        return HS_ERR_NOMEM;
    }
    bool found;
    size_t at = series_position(series, fact.first_day, fact.end_day, &found);
    if (found) {
        series_replace(series, at, &fact);
    } else {
        if (!series_reserve(series)) {
            fact_clear(&fact);
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory storing a fact");
        }
        series_insert(series, at, &fact);
        s->facts++;
    }
    *out = series;
    return HS_OK;
}

static hs_err apply_fact(tg_state *s, const char *key, const fact_msg *obs, hs_emit *emit, hs_error *error)
{
    /* The identity from the record key, which a tombstone has too: indicator / kind:code / period. */
    char storage[HS_KEY_MAX], skey[HS_KEY_MAX];
    char *parts[3];
    hs_period period;
    if (hs_key_split(key, storage, parts, 3) != 3 || hs_period_parse(parts[2], &period, NULL) != HS_OK)
        return obs ? hs_error_set(error, HS_ERR_VALIDATION, "key '%.200s' is not indicator/scope/period", key)
                   : HS_OK; /* a tombstone of a key we never stored */
    hs_err err = series_key(parts[0], parts[1], skey, error);
    if (err)
        return err;

    tg_series *series = NULL;
    if (obs) {
        /* Validated already; checked again because the baselines' sums are finite only for figures within
         * their unit's range (hs/validate.h). */
        if ((err = hs_validate_indicator_figures(obs, error)) != HS_OK)
            return err;
        if ((err = store_fact(s, skey, obs, &series, error)) != HS_OK || !series)
            return err ? err : HS_ERR_INTERNAL;
    } else {
        series = series_of_entry(s, hs_table_get(&s->series_index, skey));
        bool found = false;
        size_t at = series ? series_position_of(series, &period, &found) : 0;
        if (!found)
            return HS_OK;
        series_remove(series, at);
        s->facts--;
    }

    const hs_topic *status_topic = hs_topic_find(HS_TOPIC_TARGET_STATUS);
    if (!s->rules_indexed && (err = index_rules(s, error)) != HS_OK)
        return err;
    const hs_table_entry *subject_rules = hs_table_get(&s->rules_by_subject, series->indicator);
    size_t n_subject_rules = subject_rules ? subject_rules->value_len / sizeof(size_t) : 0;
    for (size_t k = 0; k < n_subject_rules; k++) {
        size_t i;
        memcpy(&i, subject_rules->value + k * sizeof i, sizeof i);
        assert(i < s->n_rules);
        const tg_rule *r = &s->rules[i];
        if (!rule_covers(r, series->indicator, series->scope_kind, series->scope_code))
            continue;
        if (!obs) {
            char status[HS_KEY_MAX];
            char text[HS_PERIOD_TEXT_MAX];
            hs_period_format(&period, text, sizeof text);
            if ((err = status_key(r, series, text, status, error)) != HS_OK ||
                (err = hs_emit_put(emit, status_topic, status, NULL)) != HS_OK)
                return err;
        }
        tg_scope scope = {.kind = series->scope_kind};
        snprintf(scope.code, sizeof scope.code, "%s", series->scope_code);
        tg_affected affected = affected_by(r, &period);
        if ((err = evaluate_scope(s, r, &scope, series, &affected, emit, error)) != HS_OK)
            return err;
    }
    return HS_OK;
}

static hs_err targets_apply(void *state, const hs_topic *topic, const char *key,
                            const ProtobufCMessage *value, hs_emit *emit, hs_error *error)
{
    tg_state *s = state;
    if (strcmp(topic->name, HS_TOPIC_RULES) == 0)
        return apply_rule(s, key, (const rule_msg *)value, emit, error);
    if (strcmp(topic->name, HS_TOPIC_INDICATORS) == 0)
        return apply_fact(s, key, (const fact_msg *)value, emit, error);
    return hs_error_set(error, HS_ERR_INTERNAL, "%s is not an input of targets", topic->name);
}

void targets_stats_add(const void *state, targets_stats *stats)
{
    const tg_state *s = state;
    if (s->n_rules > stats->rules)
        stats->rules = s->n_rules;
    stats->facts += s->facts;
    stats->alerts_firing += s->alerts.firing;
}

static const char *const targets_inputs[] = {HS_TOPIC_INDICATORS, NULL};
static const char *const targets_outputs[] = {HS_TOPIC_TARGET_STATUS, HS_TOPIC_ALERTS, NULL};

const hs_calc targets_calc = {
    .name = SERVICE_NAME,
    .description = "health-policy targets: a status per rule, scope and period; alerts while missed",
    .inputs = targets_inputs,
    .outputs = targets_outputs,
    .uses_rules = true,
    .create = targets_create,
    .destroy = targets_destroy,
    .apply = targets_apply,
};
