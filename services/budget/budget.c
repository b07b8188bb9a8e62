/* The budget calculation (see budget.h). State: every budget line held (unit, line, year, kind, amount),
 * the rules of service "budget" sorted by id, the status keys published per unit (to delete those that no
 * longer exist) and the last Alert per fingerprint. hs.budget.v1 is partitioned by the unit, so all of a
 * unit's lines are here together.
 *
 * Every change — a line, its tombstone, a rule — computes the unit's statuses again from the lines (all of
 * them: a unit has tens of lines a year), emits them (the driver publishes only those whose bytes changed,
 * so a revision of one leaf changes exactly that leaf and the totals above it, and the variances and
 * year-on-year figures that read them) and deletes the statuses that no longer exist. The outputs are a
 * function of the lines and rules held, so they do not depend on arrival order; alert times are the end of
 * the budget year (never the wall clock), so a replay and `hsctl calc` give the same bytes.
 *
 * A change is first computed without emitting: a line that has no place in the unit's chart, or that makes
 * a total overflow, is refused with the state as before, and so is a rule under which a total overflows.
 */
#include "budget.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "healthsignals/v1/alert.pb-c.h"
#include "healthsignals/v1/budget.pb-c.h"
#include "healthsignals/v1/rule.pb-c.h"
#include "hs/alert.h"
#include "hs/flags.h"
#include "hs/key.h"
#include "hs/period.h"
#include "hs/rules.h"
#include "hs/validate.h"
#include "ledger.h"

#define SERVICE_NAME "budget"
#define N_KINDS      4 /* BudgetKind values 1..3 are used; index by the value */

#define FLAG_INDEXATION "indexation-mismatch"
#define FLAG_MISMATCH   "printed-total-mismatch"
#define FLAG_UNASSIGNED "unassigned-line"

typedef Healthsignals__V1__BudgetLine line_msg;
typedef Healthsignals__V1__BudgetStatus status_msg;
typedef Healthsignals__V1__Rule rule_msg;
typedef Healthsignals__V1__Alert alert_msg;

typedef struct bg_line {
    char *unit, *line;
    int year;
    int kind; /* 1..3 */
    int64_t amount;
} bg_line;

typedef struct bg_state {
    bg_line *lines;
    size_t n_lines, cap_lines;
    hs_rule_set rules;  /* the rules of service "budget" */
    hs_table published; /* status key -> its unit: what is published and not deleted */
    hs_table printed;   /* printed-total alert fingerprint -> its unit: FIRING ones */
    hs_alert_store alerts;
} bg_state;

static const char *kind_name(int kind)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&healthsignals__v1__budget_kind__descriptor, kind);
    return v ? v->name : "BUDGET_KIND_UNSPECIFIED";
}

static void *budget_create(void)
{
    bg_state *s = calloc(1, sizeof *s);
    if (s) {
        hs_table_init(&s->published);
        hs_table_init(&s->printed);
        hs_alert_store_init(&s->alerts);
    }
    return s;
}

static void budget_destroy(void *state)
{
    bg_state *s = state;
    for (size_t i = 0; i < s->n_lines; i++) {
        free(s->lines[i].unit);
        free(s->lines[i].line);
    }
    free(s->lines);
    hs_rule_set_free(&s->rules);
    hs_table_free(&s->published);
    hs_table_free(&s->printed);
    hs_alert_store_free(&s->alerts);
    free(s);
}

static long line_find(const bg_state *s, const char *unit, const char *line, int year, int kind)
{
    for (size_t i = 0; i < s->n_lines; i++) {
        const bg_line *l = &s->lines[i];
        if (l->year == year && l->kind == kind && strcmp(l->line, line) == 0 && strcmp(l->unit, unit) == 0)
            return (long)i;
    }
    return -1;
}

/* --- rules ---------------------------------------------------------------------------------------------- */

static bool rule_applies(const rule_msg *r, const char *unit)
{
    if (r->n_budget_units == 0)
        return true;
    for (size_t i = 0; i < r->n_budget_units; i++)
        if (strcmp(r->budget_units[i], unit) == 0)
            return true;
    return false;
}

/* The chart of `unit`: the first BUDGET_CHART rule (in id order) that lists the unit, else the first that
 * lists no units; NULL when none. */
static const rule_msg *chart_of(const bg_state *s, const char *unit)
{
    const rule_msg *any = NULL;
    for (size_t i = 0; i < s->rules.count; i++) {
        const rule_msg *r = s->rules.items[i];
        if (r->kind != HEALTHSIGNALS__V1__RULE_KIND__BUDGET_CHART)
            continue;
        if (r->n_budget_units && rule_applies(r, unit))
            return r;
        if (!r->n_budget_units && !any)
            any = r;
    }
    return any;
}

/* A chart rule as the structure of sums ledger.h computes; `defs` (n_budget_totals of them) borrow from
 * the rule. */
static hs_err chart_plan(const rule_msg *chart, budget_sum_def *defs, budget_sums *sums, hs_error *error)
{
    for (size_t i = 0; i < chart->n_budget_totals; i++) {
        const Healthsignals__V1__BudgetTotal *t = chart->budget_totals[i];
        defs[i] = (budget_sum_def){t->line, (const char *const *)t->parts, t->n_parts};
    }
    return budget_sums_plan(defs, chart->n_budget_totals, "total", sums, error);
}

static hs_err rule_check(const rule_msg *r, hs_error *error)
{
    switch (r->kind) {
    case HEALTHSIGNALS__V1__RULE_KIND__BUDGET_CHART: {
        if (r->n_budget_totals == 0)
            return hs_error_set(error, HS_ERR_VALIDATION, "rule %s: a BUDGET_CHART needs budget_totals",
                                r->id);
        for (size_t i = 0; i < r->n_budget_totals; i++) {
            const Healthsignals__V1__BudgetTotal *t = r->budget_totals[i];
            if (!t->line || !*t->line || strlen(t->line) > HS_VALIDATE_LINE_MAX)
                return hs_error_set(error, HS_ERR_VALIDATION,
                                    "rule %s: budget_totals[%zu].line must be 1-%d bytes", r->id, i,
                                    HS_VALIDATE_LINE_MAX);
            if (t->tolerance_ore < 0)
                return hs_error_set(error, HS_ERR_VALIDATION,
                                    "rule %s: total \"%s\": tolerance_ore is negative", r->id, t->line);
        }
        budget_sum_def *defs = calloc(r->n_budget_totals, sizeof *defs);
        if (!defs)
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory checking rule %s", r->id);
        budget_sums sums;
        hs_err err = chart_plan(r, defs, &sums, error);
        if (err == HS_OK)
            budget_sums_free(&sums);
        else
            hs_error_prefix(error, "rule %s", r->id);
        free(defs);
        return err;
    }
    case HEALTHSIGNALS__V1__RULE_KIND__BUDGET_VARIANCE:
        if (!r->budget_line || !*r->budget_line)
            return hs_error_set(error, HS_ERR_VALIDATION, "rule %s: a BUDGET_VARIANCE needs budget_line",
                                r->id);
        if (r->_threshold_ore_case == HEALTHSIGNALS__V1__RULE___THRESHOLD_ORE_THRESHOLD_ORE &&
            r->threshold_ore < 0)
            return hs_error_set(error, HS_ERR_VALIDATION, "rule %s: threshold_ore is negative", r->id);
        if (r->_threshold_case == HEALTHSIGNALS__V1__RULE___THRESHOLD_THRESHOLD && !(r->threshold >= 0))
            return hs_error_set(error, HS_ERR_VALIDATION, "rule %s: threshold (percent) is negative", r->id);
        return HS_OK;
    case HEALTHSIGNALS__V1__RULE_KIND__BUDGET_SAVINGS:
        if (!r->budget_line || !*r->budget_line)
            return hs_error_set(error, HS_ERR_VALIDATION,
                                "rule %s: a BUDGET_SAVINGS needs budget_line (lasting)", r->id);
        if (r->target_ore <= 0)
            return hs_error_set(error, HS_ERR_VALIDATION, "rule %s: target_ore must be > 0", r->id);
        if (r->first_year > r->last_year || r->last_year - r->first_year >= 200)
            return hs_error_set(error, HS_ERR_VALIDATION,
                                "rule %s: first_year..last_year (%d..%d) is not 1-200 years", r->id,
                                (int)r->first_year, (int)r->last_year);
        return HS_OK;
    case HEALTHSIGNALS__V1__RULE_KIND__BUDGET_INDEXATION:
        if (!r->budget_line || !*r->budget_line)
            return hs_error_set(error, HS_ERR_VALIDATION, "rule %s: a BUDGET_INDEXATION needs budget_line",
                                r->id);
        if (r->factor_millionths <= 0)
            return hs_error_set(error, HS_ERR_VALIDATION, "rule %s: factor_millionths must be > 0", r->id);
        if (r->first_year > r->last_year || r->last_year - r->first_year >= 200)
            return hs_error_set(error, HS_ERR_VALIDATION,
                                "rule %s: first_year..last_year (%d..%d) is not 1-200 years", r->id,
                                (int)r->first_year, (int)r->last_year);
        return HS_OK;
    default:
        return hs_error_set(error, HS_ERR_VALIDATION,
                            "rule %s: kind %s is not a budget rule (BUDGET_CHART, BUDGET_VARIANCE, "
                            "BUDGET_SAVINGS, BUDGET_INDEXATION)",
                            r->id, hs_rule_kind_name(r->kind));
    }
}

/* Whether `line` is one a BUDGET_SAVINGS or BUDGET_INDEXATION rule of `unit` reads. */
static bool rule_line(const bg_state *s, const char *unit, const char *line)
{
    for (size_t i = 0; i < s->rules.count; i++) {
        const rule_msg *r = s->rules.items[i];
        if (!rule_applies(r, unit))
            continue;
        if (r->kind == HEALTHSIGNALS__V1__RULE_KIND__BUDGET_SAVINGS &&
            (strcmp(r->budget_line, line) == 0 || strcmp(r->budget_one_off_line, line) == 0))
            return true;
        if (r->kind == HEALTHSIGNALS__V1__RULE_KIND__BUDGET_INDEXATION && strcmp(r->budget_line, line) == 0)
            return true;
    }
    return false;
}

/* The BUDGET_INDEXATION rule (the first in id order) that derives `line` of `unit` in `year`, or NULL. */
static const rule_msg *indexation_of(const bg_state *s, const char *unit, const char *line, int year)
{
    for (size_t i = 0; i < s->rules.count; i++) {
        const rule_msg *r = s->rules.items[i];
        if (r->kind == HEALTHSIGNALS__V1__RULE_KIND__BUDGET_INDEXATION && rule_applies(r, unit) &&
            strcmp(r->budget_line, line) == 0 && year >= r->first_year && year <= r->last_year)
            return r;
    }
    return NULL;
}

/* --- one unit's statuses
 * ------------------------------------------------------------------------------------ */

/* A year x kind of the unit, with the totals computed. */
typedef struct bg_cell {
    int year, kind;
    int64_t *values; /* per chart total */
    bool *present;
} bg_cell;

typedef struct bg_unit {
    const bg_state *s;
    const char *unit;
    const rule_msg *chart; /* NULL: no chart, no statuses */
    budget_sum_def *defs;
    budget_sums sums;
    bg_cell *cells;
    size_t n_cells;
    int leaf_year, leaf_kind; /* the cell budget_sums_eval is at */
} bg_unit;

static void unit_free(bg_unit *u)
{
    for (size_t i = 0; i < u->n_cells; i++) {
        free(u->cells[i].values);
        free(u->cells[i].present);
    }
    free(u->cells);
    if (u->chart)
        budget_sums_free(&u->sums);
    free(u->defs);
}

static bool leaf_amount(void *ctx, const char *name, int64_t *amount)
{
    const bg_unit *u = ctx;
    long at = line_find(u->s, u->unit, name, u->leaf_year, u->leaf_kind);
    if (at < 0)
        return false;
    *amount = u->s->lines[at].amount;
    return true;
}

static int compare_cells(const void *a, const void *b)
{
    const bg_cell *x = a, *y = b;
    return x->year != y->year ? (x->year < y->year ? -1 : 1) : x->kind - y->kind;
}

/* Computes every total of `unit` in every year x kind it has lines in. */
static hs_err unit_compute(const bg_state *s, const char *unit, bg_unit *u, hs_error *error)
{
    *u = (bg_unit){.s = s, .unit = unit, .chart = chart_of(s, unit)};
    if (!u->chart)
        return HS_OK;
    size_t n_totals = u->chart->n_budget_totals;
    budget_sum_def *defs = calloc(n_totals, sizeof *defs);
    hs_err err = defs ? chart_plan(u->chart, defs, &u->sums, error)
                      : hs_error_set(error, HS_ERR_NOMEM, "out of memory computing %s", unit);
    if (err) {
        free(defs);
        u->chart = NULL;
        return err;
    }
    u->defs = defs;
    for (size_t i = 0; i < s->n_lines; i++) {
        const bg_line *l = &s->lines[i];
        if (strcmp(l->unit, unit) != 0)
            continue;
        bool seen = false;
        for (size_t c = 0; c < u->n_cells && !seen; c++)
            seen = u->cells[c].year == l->year && u->cells[c].kind == l->kind;
        if (seen)
            continue;
        bg_cell *grown = realloc(u->cells, (u->n_cells + 1) * sizeof *grown);
        if (!grown)
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory computing %s", unit);
        u->cells = grown;
        bg_cell *c = &u->cells[u->n_cells++];
        *c = (bg_cell){.year = l->year,
                       .kind = l->kind,
                       .values = calloc(n_totals ? n_totals : 1, sizeof(int64_t)),
                       .present = calloc(n_totals ? n_totals : 1, sizeof(bool))};
        if (!c->values || !c->present)
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory computing %s", unit);
    }
    if (u->n_cells)
        qsort(u->cells, u->n_cells, sizeof *u->cells, compare_cells);
    for (size_t c = 0; c < u->n_cells; c++) {
        u->leaf_year = u->cells[c].year;
        u->leaf_kind = u->cells[c].kind;
        if ((err = budget_sums_eval(&u->sums, leaf_amount, u, u->cells[c].values, u->cells[c].present,
                                    error))) {
            hs_error_prefix(error, "%s %d %s", unit, u->cells[c].year, kind_name(u->cells[c].kind));
            return err;
        }
    }
    return HS_OK;
}

/* The amount of `line` (a total or a leaf) of the unit in year x kind: true when there is one. */
static bool unit_amount(const bg_unit *u, const char *line, int year, int kind, int64_t *amount)
{
    long t = budget_sums_find(&u->sums, line);
    if (t >= 0) {
        for (size_t c = 0; c < u->n_cells; c++)
            if (u->cells[c].year == year && u->cells[c].kind == kind) {
                *amount = u->cells[c].values[t];
                return u->cells[c].present[t];
            }
        return false;
    }
    long at = line_find(u->s, u->unit, line, year, kind);
    if (at < 0)
        return false;
    *amount = u->s->lines[at].amount;
    return true;
}

/* Fills `st` (the strings borrowed) for `line` of cell `c`; false when the line has no status there. */
static bool status_build(const bg_unit *u, const bg_cell *c, const char *line, status_msg *st, char **flags)
{
    healthsignals__v1__budget_status__init(st);
    st->unit = (char *)u->unit;
    st->line = (char *)line;
    st->year = c->year;
    st->kind = (Healthsignals__V1__BudgetKind)c->kind;
    st->chart = u->chart->id;
    long t = budget_sums_find(&u->sums, line);
    long fact = line_find(u->s, u->unit, line, c->year, c->kind);
    if (t >= 0) {
        if (!c->present[t])
            return false;
        st->amount_ore = c->values[t];
        st->role = HEALTHSIGNALS__V1__BUDGET_LINE_ROLE__TOTAL;
        if (fact >= 0) {
            int64_t printed = u->s->lines[fact].amount, diff;
            st->_printed_ore_case = HEALTHSIGNALS__V1__BUDGET_STATUS___PRINTED_ORE_PRINTED_ORE;
            st->_printed_difference_ore_case =
                HEALTHSIGNALS__V1__BUDGET_STATUS___PRINTED_DIFFERENCE_ORE_PRINTED_DIFFERENCE_ORE;
            st->printed_ore = printed;
            st->printed_mismatch =
                !budget_printed_ok(c->values[t], printed, u->chart->budget_totals[t]->tolerance_ore, &diff);
            st->printed_difference_ore = diff;
            if (st->printed_mismatch)
                flags[st->n_quality_flags++] = FLAG_MISMATCH;
        }
    } else {
        if (fact < 0)
            return false;
        st->amount_ore = u->s->lines[fact].amount;
        st->role = budget_sums_is_leaf(&u->sums, line) || rule_line(u->s, u->unit, line)
                       ? HEALTHSIGNALS__V1__BUDGET_LINE_ROLE__LEAF
                       : HEALTHSIGNALS__V1__BUDGET_LINE_ROLE__UNASSIGNED;
        /* A line an indexation rule derives: what the formula gives from the year before (computable: the
         * change was checked by indexation_check before it was taken). */
        const rule_msg *ix = indexation_of(u->s, u->unit, line, c->year);
        int64_t before, indexed;
        if (ix && c->year > INT32_MIN && unit_amount(u, line, c->year - 1, c->kind, &before) &&
            budget_index(before, ix->cut_ore, ix->factor_millionths, &indexed, NULL) == HS_OK) {
            st->_indexed_ore_case = HEALTHSIGNALS__V1__BUDGET_STATUS___INDEXED_ORE_INDEXED_ORE;
            st->indexed_ore = indexed;
            st->_indexed_difference_ore_case =
                HEALTHSIGNALS__V1__BUDGET_STATUS___INDEXED_DIFFERENCE_ORE_INDEXED_DIFFERENCE_ORE;
            st->indexed_difference_ore =
                st->amount_ore - indexed; /* both checked: no overflow (index_check) */
            if (st->indexed_difference_ore != 0)
                flags[st->n_quality_flags++] = FLAG_INDEXATION;
        }
        if (st->role == HEALTHSIGNALS__V1__BUDGET_LINE_ROLE__UNASSIGNED)
            flags[st->n_quality_flags++] = FLAG_UNASSIGNED;
    }
    st->quality_flags = flags;
    int64_t budget, other, v;
    if (unit_amount(u, line, c->year, HEALTHSIGNALS__V1__BUDGET_KIND__BUDGET, &budget)) {
        if (unit_amount(u, line, c->year, HEALTHSIGNALS__V1__BUDGET_KIND__EXPECTED_ACCOUNTS, &other) &&
            budget_variance(budget, other, &v)) {
            st->_variance_expected_ore_case =
                HEALTHSIGNALS__V1__BUDGET_STATUS___VARIANCE_EXPECTED_ORE_VARIANCE_EXPECTED_ORE;
            st->variance_expected_ore = v;
        }
        if (unit_amount(u, line, c->year, HEALTHSIGNALS__V1__BUDGET_KIND__ACCOUNTS, &other) &&
            budget_variance(budget, other, &v)) {
            st->_variance_accounts_ore_case =
                HEALTHSIGNALS__V1__BUDGET_STATUS___VARIANCE_ACCOUNTS_ORE_VARIANCE_ACCOUNTS_ORE;
            st->variance_accounts_ore = v;
        }
    }
    int64_t previous, change;
    double pct;
    if (c->year > INT32_MIN && unit_amount(u, line, c->year - 1, c->kind, &previous) &&
        budget_year_change(previous, st->amount_ore, &change, &pct)) {
        st->_previous_year_ore_case = HEALTHSIGNALS__V1__BUDGET_STATUS___PREVIOUS_YEAR_ORE_PREVIOUS_YEAR_ORE;
        st->_year_change_ore_case = HEALTHSIGNALS__V1__BUDGET_STATUS___YEAR_CHANGE_ORE_YEAR_CHANGE_ORE;
        st->previous_year_ore = previous;
        st->year_change_ore = change;
        if (!isnan(pct)) {
            st->_year_change_pct_case = HEALTHSIGNALS__V1__BUDGET_STATUS___YEAR_CHANGE_PCT_YEAR_CHANGE_PCT;
            st->year_change_pct = pct;
        }
    }
    return true;
}

static hs_err status_key(const char *unit, const char *line, int year, int kind, char key[HS_KEY_MAX],
                         hs_error *error)
{
    char y[16];
    snprintf(y, sizeof y, "%d", year);
    const char *parts[] = {unit, line, y, kind_name(kind)};
    return hs_key_join(key, parts, 4, error);
}

/* --- alerts ------------------------------------------------------------------------------------------------
 */

static void year_end(int year, char out[HS_RFC3339_MAX])
{
    char text[16];
    hs_period p;
    snprintf(text, sizeof text, "%d", year);
    out[0] = '\0';
    if (hs_period_parse(text, &p, NULL) == HS_OK)
        hs_period_end_rfc3339(&p, out, HS_RFC3339_MAX);
}

static const char *dkk(int64_t ore, char *buf, size_t size)
{
    budget_format_dkk(ore, buf, size);
    return buf;
}

static hs_err alert_emit(bg_state *s, const rule_msg *rule, const char *fingerprint, const char *unit,
                         const char *line, const char *kind, int year, bool firing, int fired_year,
                         double value, double threshold, const char *summary, const char *description,
                         const char *finding, hs_emit *emit, hs_error *error)
{
    char period[16], starts[HS_RFC3339_MAX], ends[HS_RFC3339_MAX] = "";
    snprintf(period, sizeof period, "%d", year);
    year_end(fired_year, starts);
    if (!firing)
        year_end(year, ends);
    alert_msg alert = HEALTHSIGNALS__V1__ALERT__INIT;
    alert.fingerprint = (char *)fingerprint;
    alert.state = firing ? HEALTHSIGNALS__V1__ALERT_STATE__FIRING : HEALTHSIGNALS__V1__ALERT_STATE__RESOLVED;
    alert.severity = finding ? HEALTHSIGNALS__V1__SEVERITY__INFO
                             : (rule->severity ? rule->severity : HEALTHSIGNALS__V1__SEVERITY__WARNING);
    alert.rule = rule->id;
    alert.service = SERVICE_NAME;
    alert.subject = rule->subject;
    alert.period = period;
    alert.value = value;
    alert.threshold = threshold;
    alert.starts_at = starts;
    alert.ends_at = ends;
    /* A printed-total alert is one per line x year x kind: those are labels too (and its fingerprint's
     * qualifier); a variance or savings alert is one per rule x unit, whatever the year it shows. */
    const char *const core[][2] = {
        {"alertname", rule->id}, {"service", SERVICE_NAME},  {"unit", unit},
        {"line", line},          {"subject", rule->subject}, {"severity", hs_severity_label(alert.severity)},
        {"year", period},        {"kind", kind ? kind : ""}};
    hs_alert_labels labels;
    if (!hs_alert_labels_build(&labels, core, sizeof core / sizeof core[0] - (kind ? 0 : 2), rule))
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory building an alert");
    alert.n_labels = labels.count;
    alert.labels = labels.items;
    char *flag = (char *)finding;
    if (finding) {
        alert.n_quality_flags = 1;
        alert.quality_flags = &flag;
    }
    hs_err err = hs_alert_put_described(&s->alerts, &alert, summary, description, emit, error);
    hs_alert_labels_free(&labels);
    return err;
}

/* A printed total that does not add up: an INFO alert per unit x total x year x kind, FIRING while it does
 * not; `fingerprints` collects those FIRING now. */
static hs_err printed_alert(bg_state *s, const bg_unit *u, const status_msg *st, hs_table *now, hs_emit *emit,
                            hs_error *error)
{
    char identity[HS_KEY_MAX], fingerprint[HS_FINGERPRINT_MAX];
    hs_err err = status_key(u->unit, st->line, st->year, st->kind, identity, error);
    if (err)
        return err;
    hs_alert_fingerprint(u->chart->id, u->unit, u->chart->subject, identity + strlen(u->unit) + 1,
                         fingerprint);
    if (hs_table_put(now, fingerprint, u->unit, strlen(u->unit) + 1) == HS_TABLE_NOMEM)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    char a[40], b[40], d[40], t[40], summary[256], description[768];
    snprintf(summary, sizeof summary, "%s: the printed \"%s\" does not add up", u->unit, st->line);
    snprintf(description, sizeof description,
             "%s %d %s: \"%s\" is printed as %s DKK but its lines add up to %s DKK (difference %s DKK, "
             "tolerance %s DKK, chart %s). The computed figure is used.",
             u->unit, (int)st->year, kind_name((int)st->kind), st->line, dkk(st->printed_ore, a, sizeof a),
             dkk(st->amount_ore, b, sizeof b), dkk(st->printed_difference_ore, d, sizeof d),
             dkk(u->chart->budget_totals[budget_sums_find(&u->sums, st->line)]->tolerance_ore, t, sizeof t),
             u->chart->id);
    return alert_emit(s, u->chart, fingerprint, u->unit, st->line, kind_name((int)st->kind), st->year, true,
                      st->year, (double)st->printed_ore / 100.0, (double)st->amount_ore / 100.0, summary,
                      description, FLAG_MISMATCH, emit, error);
}

/* An index factor in millionths as the papers print it: 1 034 000 -> "1,034". */
static const char *factor_text(int64_t millionths, char *buf, size_t size)
{
    char fraction[8];
    snprintf(fraction, sizeof fraction, "%06lld", (long long)(millionths % 1000000));
    for (int i = 5; i >= 0 && fraction[i] == '0'; i--)
        fraction[i] = '\0';
    snprintf(buf, size, "%lld%s%s", (long long)(millionths / 1000000), fraction[0] ? "," : "", fraction);
    return buf;
}

/* A derived rate that is not what its formula gives: an INFO alert per rule x unit x line x year x kind,
 * FIRING while they differ; `now` collects the fingerprints FIRING now. */
static hs_err indexation_alert(bg_state *s, const bg_unit *u, const status_msg *st, hs_table *now,
                               hs_emit *emit, hs_error *error)
{
    const rule_msg *ix = indexation_of(s, u->unit, st->line, st->year);
    char identity[HS_KEY_MAX], fingerprint[HS_FINGERPRINT_MAX];
    hs_err err = status_key(u->unit, st->line, st->year, st->kind, identity, error);
    if (err)
        return err;
    hs_alert_fingerprint(ix->id, u->unit, ix->subject, identity + strlen(u->unit) + 1, fingerprint);
    if (hs_table_put(now, fingerprint, u->unit, strlen(u->unit) + 1) == HS_TABLE_NOMEM)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    int64_t before = 0;
    unit_amount(u, st->line, st->year - 1, (int)st->kind, &before); /* there: the status has indexed_ore */
    char a[40], b[40], c[40], d[40], f[32], summary[256], description[768];
    snprintf(summary, sizeof summary, "%s: \"%s\" is not what its indexation gives", u->unit, st->line);
    snprintf(description, sizeof description,
             "%s %d %s: \"%s\" is %s DKK, but (the year before's %s DKK - %s DKK) x %s = %s DKK (rule %s).",
             u->unit, (int)st->year, kind_name((int)st->kind), st->line, dkk(st->amount_ore, a, sizeof a),
             dkk(before, b, sizeof b), dkk(ix->cut_ore, c, sizeof c),
             factor_text(ix->factor_millionths, f, sizeof f), dkk(st->indexed_ore, d, sizeof d), ix->id);
    return alert_emit(s, ix, fingerprint, u->unit, st->line, kind_name((int)st->kind), st->year, true,
                      st->year, (double)st->amount_ore / 100.0, (double)st->indexed_ore / 100.0, summary,
                      description, FLAG_INDEXATION, emit, error);
}

/* Every line an indexation rule derives in `u` can be computed: the formula and the difference from what
 * arrived do not overflow. */
static hs_err indexation_check(const bg_state *s, const bg_unit *u, hs_error *error)
{
    for (size_t i = 0; i < s->n_lines; i++) {
        const bg_line *l = &s->lines[i];
        if (strcmp(l->unit, u->unit) != 0)
            continue;
        const rule_msg *ix = indexation_of(s, u->unit, l->line, l->year);
        int64_t before, indexed, diff;
        if (!ix || l->year == INT32_MIN || !unit_amount(u, l->line, l->year - 1, l->kind, &before))
            continue;
        hs_err err = budget_index(before, ix->cut_ore, ix->factor_millionths, &indexed, error);
        if (err == HS_OK && !budget_sub(l->amount, indexed, &diff))
            err = hs_error_set(error, HS_ERR_VALIDATION, "the difference from the indexed figure overflows");
        if (err) {
            hs_error_prefix(error, "%s \"%s\" %d: rule %s", u->unit, l->line, l->year, ix->id);
            return err;
        }
    }
    return HS_OK;
}

/* Whether the other kind's figure is worse than the budget beyond the rule's thresholds. */
static bool variance_worse(const rule_msg *r, int64_t budget, int64_t variance)
{
    if (variance >= 0)
        return false;
    uint64_t shortfall = (uint64_t)0 - (uint64_t)variance;
    bool has_ore = r->_threshold_ore_case == HEALTHSIGNALS__V1__RULE___THRESHOLD_ORE_THRESHOLD_ORE;
    bool has_pct = r->_threshold_case == HEALTHSIGNALS__V1__RULE___THRESHOLD_THRESHOLD;
    if (has_ore && shortfall > (uint64_t)r->threshold_ore)
        return true;
    if (has_pct && budget != 0 && (double)shortfall / fabs((double)budget) * 100.0 > r->threshold)
        return true;
    return !has_ore && !has_pct;
}

/* One year of a BUDGET_VARIANCE rule for one unit. */
typedef struct bg_eval {
    int year, kind; /* the kind compared with the budget: ACCOUNTS when there are some, else EXPECTED */
    int64_t budget, other, variance;
} bg_eval;

/* How far `e` is on the good side of the rule's threshold, in DKK (>= 0 when not breached). */
static double variance_gap(const rule_msg *r, const bg_eval *e)
{
    double v = (double)e->variance / 100.0, gap = v;
    if (r->_threshold_ore_case == HEALTHSIGNALS__V1__RULE___THRESHOLD_ORE_THRESHOLD_ORE)
        gap = v + (double)r->threshold_ore / 100.0;
    if (r->_threshold_case == HEALTHSIGNALS__V1__RULE___THRESHOLD_THRESHOLD) {
        double by_pct = v + r->threshold / 100.0 * fabs((double)e->budget) / 100.0;
        gap = r->_threshold_ore_case == HEALTHSIGNALS__V1__RULE___THRESHOLD_ORE_THRESHOLD_ORE
                  ? fmin(gap, by_pct)
                  : by_pct;
    }
    return gap > 0 ? gap : 0;
}

/* A BUDGET_VARIANCE rule for one unit: the years in order, each compared on its accounts when there are
 * some, else on its expected accounts, through the alert state machine of docs/domain.md §6 (for_periods,
 * hysteresis in DKK); retired when no year can be evaluated. */
static hs_err variance_alert(bg_state *s, const rule_msg *r, const bg_unit *u, hs_emit *emit, hs_error *error)
{
    char fingerprint[HS_FINGERPRINT_MAX];
    hs_alert_fingerprint(r->id, u->unit, r->subject, NULL, fingerprint);
    bg_eval *evals = calloc(u->n_cells ? u->n_cells : 1, sizeof *evals);
    if (!evals)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory evaluating %s", r->id);
    size_t n = 0;
    hs_alert_history h = HS_ALERT_HISTORY_START;
    for (size_t c = 0; c < u->n_cells; c++) {
        int year = u->cells[c].year;
        if (c > 0 && u->cells[c - 1].year == year)
            continue;
        bg_eval e = {.year = year, .kind = HEALTHSIGNALS__V1__BUDGET_KIND__ACCOUNTS};
        if (!unit_amount(u, r->budget_line, year, HEALTHSIGNALS__V1__BUDGET_KIND__BUDGET, &e.budget))
            continue;
        if (!unit_amount(u, r->budget_line, year, e.kind, &e.other)) {
            e.kind = HEALTHSIGNALS__V1__BUDGET_KIND__EXPECTED_ACCOUNTS;
            if (!unit_amount(u, r->budget_line, year, e.kind, &e.other))
                continue;
        }
        if (!budget_variance(e.budget, e.other, &e.variance))
            continue;
        evals[n] = e;
        hs_alert_step(&h, (int32_t)n, variance_worse(r, e.budget, e.variance), variance_gap(r, &e),
                      r->hysteresis, r->for_periods);
        n++;
    }
    if (!h.episode) {
        free(evals);
        return hs_alert_retire(&s->alerts, fingerprint,
                               n ? "no longer worse than budget" : "nothing left to evaluate", emit, error);
    }
    bool resolved = hs_alert_history_resolved(&h);
    const bg_eval *shown = &evals[hs_alert_history_shown(&h)];
    int fired = evals[h.fired].year;
    char a[40], b[40], d[40], t[64] = "", summary[256], description[768];
    if (r->_threshold_ore_case == HEALTHSIGNALS__V1__RULE___THRESHOLD_ORE_THRESHOLD_ORE)
        snprintf(t, sizeof t, "%s DKK", dkk(r->threshold_ore, a, sizeof a));
    if (r->_threshold_case == HEALTHSIGNALS__V1__RULE___THRESHOLD_THRESHOLD) {
        char f[32];
        size_t len = strlen(t);
        snprintf(t + len, sizeof t - len, "%s%s %%", len ? " or " : "", hs_figure(r->threshold, f, sizeof f));
    }
    snprintf(summary, sizeof summary, "%s: \"%s\" %s", u->unit, r->budget_line,
             resolved ? "back within budget" : "worse than budget");
    snprintf(
        description, sizeof description,
        "%s %d: \"%s\" budget %s DKK, %s %s DKK, variance %s DKK (budget - actual, positive = better than "
        "budget); allowed shortfall %s; %s %d.",
        u->unit, shown->year, r->budget_line, dkk(shown->budget, a, sizeof a),
        shown->kind == HEALTHSIGNALS__V1__BUDGET_KIND__ACCOUNTS ? "accounts" : "expected accounts",
        dkk(shown->other, b, sizeof b), dkk(shown->variance, d, sizeof d), *t ? t : "none",
        resolved ? "resolved in" : "firing since", resolved ? shown->year : fired);
    double threshold = r->_threshold_ore_case == HEALTHSIGNALS__V1__RULE___THRESHOLD_ORE_THRESHOLD_ORE
                           ? -(double)r->threshold_ore / 100.0
                           : 0.0;
    hs_err err =
        alert_emit(s, r, fingerprint, u->unit, r->budget_line, NULL, shown->year, !resolved, fired,
                   (double)shown->variance / 100.0, threshold, summary, description, NULL, emit, error);
    free(evals);
    return err;
}

/* The realised savings of `line` in `year`: the accounts when there are some, else the expected accounts;
 * 0 when neither. *has says whether there was a figure. */
static int64_t savings_of(const bg_unit *u, const char *line, int year, bool *has)
{
    int64_t amount = 0;
    if (!line || !*line)
        return 0;
    if (unit_amount(u, line, year, HEALTHSIGNALS__V1__BUDGET_KIND__ACCOUNTS, &amount) ||
        unit_amount(u, line, year, HEALTHSIGNALS__V1__BUDGET_KIND__EXPECTED_ACCOUNTS, &amount)) {
        *has = true;
        return amount;
    }
    return 0;
}

/* A BUDGET_SAVINGS rule for one unit (ledger.h budget_savings): each year of the period with a figure is a
 * step of the shared alert state machine, breached while the cumulative savings are behind the cumulative
 * pro-rata target. With emit NULL only checks that the savings can be computed (no negative savings, no
 * overflow), for a change before it is taken. */
static hs_err savings_alert(bg_state *s, const rule_msg *r, const bg_unit *u, hs_emit *emit, hs_error *error)
{
    size_t span = (size_t)(r->last_year - r->first_year) + 1, n = 0;
    budget_savings_year *years = calloc(span, sizeof *years);
    if (!years)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory evaluating %s", r->id);
    for (int y = r->first_year; y <= r->last_year; y++) {
        bool has = false;
        budget_savings_year v = {.year = y};
        v.lasting = savings_of(u, r->budget_line, y, &has);
        v.one_off = savings_of(u, r->budget_one_off_line, y, &has);
        if (has)
            years[n++] = v;
    }
    hs_err err = budget_savings(r->target_ore, r->first_year, r->last_year, years, n, error);
    if (err) {
        hs_error_prefix(error, "%s: rule %s", u->unit, r->id);
        free(years);
        return err;
    }
    if (!emit) {
        free(years);
        return HS_OK;
    }
    char fingerprint[HS_FINGERPRINT_MAX];
    hs_alert_fingerprint(r->id, u->unit, r->subject, NULL, fingerprint);
    hs_alert_history h = HS_ALERT_HISTORY_START;
    for (size_t i = 0; i < n; i++) /* years[] is in year order */
        hs_alert_step(&h, (int32_t)i, years[i].behind, years[i].behind ? 0 : (double)years[i].gap / 100.0,
                      r->hysteresis, r->for_periods);
    if (!h.episode) {
        free(years);
        return hs_alert_retire(&s->alerts, fingerprint,
                               n ? "no longer behind the target" : "nothing left to evaluate", emit, error);
    }
    bool resolved = hs_alert_history_resolved(&h);
    const budget_savings_year *shown = &years[hs_alert_history_shown(&h)];
    char a[40], b[40], c[40], d[40], t[40], g[40], summary[256], description[768];
    snprintf(summary, sizeof summary, "%s: savings %s the pro-rata target", u->unit,
             resolved ? "back on" : "behind");
    snprintf(description, sizeof description,
             "%s %d: savings %s DKK (%s lasting + %s one-off); %s DKK realised since %d against %s DKK due "
             "(%s DKK over %d-%d, pro rata); %s %d.",
             u->unit, shown->year, dkk(shown->realised, a, sizeof a), dkk(shown->lasting, b, sizeof b),
             dkk(shown->one_off, c, sizeof c), dkk(shown->cumulative, d, sizeof d), (int)r->first_year,
             dkk(shown->cumulative_target, t, sizeof t), dkk(r->target_ore, g, sizeof g), (int)r->first_year,
             (int)r->last_year, resolved ? "resolved in" : "firing since",
             resolved ? shown->year : years[h.fired].year);
    err = alert_emit(s, r, fingerprint, u->unit, r->budget_line, NULL, shown->year, !resolved,
                     years[h.fired].year, (double)shown->cumulative / 100.0,
                     (double)shown->cumulative_target / 100.0, summary, description, NULL, emit, error);
    free(years);
    return err;
}

/* --- recomputing a unit
 * -------------------------------------------------------------------------------------- */

/* Deletes what `table` holds for `unit` and `now` does not: statuses (a tombstone each) or printed-total
 * alerts (retired); then makes `table`'s entries for the unit those of `now`. */
static hs_err reconcile(bg_state *s, hs_table *table, const hs_table *now, const char *unit, bool alerts,
                        hs_emit *emit, hs_error *error)
{
    size_t n = 0;
    const hs_table_entry **sorted = hs_table_sorted(table, &n);
    if (!sorted && n)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    char **gone = calloc(n ? n : 1, sizeof *gone);
    if (!gone) {
        free(sorted);
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    }
    size_t n_gone = 0;
    hs_err err = HS_OK;
    for (size_t i = 0; err == HS_OK && i < n; i++)
        if (strcmp((const char *)sorted[i]->value, unit) == 0 && !hs_table_get(now, sorted[i]->key) &&
            !(gone[n_gone++] = strdup(sorted[i]->key)))
            err = hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    free(sorted);
    for (size_t i = 0; err == HS_OK && i < n_gone; i++) {
        if (alerts)
            err = hs_alert_retire(&s->alerts, gone[i], "the figure agrees now", emit, error);
        else
            err = hs_emit_put(emit, hs_topic_find(HS_TOPIC_BUDGET_STATUS), gone[i], NULL);
        if (err == HS_OK)
            hs_table_delete(table, gone[i]);
    }
    for (size_t i = 0; i < n_gone; i++)
        free(gone[i]);
    free(gone);
    size_t cursor = 0;
    for (const hs_table_entry *e; err == HS_OK && (e = hs_table_next(now, &cursor));)
        if (hs_table_put(table, e->key, e->value, e->value_len) == HS_TABLE_NOMEM)
            err = hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    return err;
}

/* Computes `unit` again and emits its statuses and alerts. With emit NULL, only computes: the check that
 * the unit's figures are computable (no overflow) before a change is taken. */
static hs_err unit_update(bg_state *s, const char *unit, hs_emit *emit, hs_error *error)
{
    bg_unit u;
    hs_err err = unit_compute(s, unit, &u, error);
    if (err == HS_OK && !emit)
        err = indexation_check(s, &u, error);
    for (size_t i = 0; err == HS_OK && !emit && i < s->rules.count; i++)
        if (s->rules.items[i]->kind == HEALTHSIGNALS__V1__RULE_KIND__BUDGET_SAVINGS &&
            rule_applies(s->rules.items[i], unit))
            err = savings_alert(s, s->rules.items[i], &u, NULL, error);
    if (err || !emit) {
        unit_free(&u);
        return err;
    }
    hs_table keys, firing;
    hs_table_init(&keys);
    hs_table_init(&firing);
    const hs_topic *topic = hs_topic_find(HS_TOPIC_BUDGET_STATUS);
    /* Every line of every cell (the leaves that arrived, then the totals), in cell order. */
    for (size_t c = 0; err == HS_OK && u.chart && c < u.n_cells; c++) {
        size_t n_totals = u.chart->n_budget_totals;
        for (size_t k = 0; err == HS_OK && k < n_totals + s->n_lines; k++) {
            const char *line;
            if (k < n_totals) {
                line = u.chart->budget_totals[k]->line;
            } else {
                const bg_line *l = &s->lines[k - n_totals];
                if (l->year != u.cells[c].year || l->kind != u.cells[c].kind || strcmp(l->unit, unit) != 0 ||
                    budget_sums_find(&u.sums, l->line) >= 0)
                    continue; /* another cell's, or the printed figure of a total (shown on the total) */
                line = l->line;
            }
            status_msg st;
            char *flags[2];
            if (!status_build(&u, &u.cells[c], line, &st, flags))
                continue;
            char key[HS_KEY_MAX], group[HS_KEY_MAX];
            if ((err = hs_topic_key(topic, &st.base, key, group, error)))
                break;
            if (hs_table_put(&keys, key, unit, strlen(unit) + 1) == HS_TABLE_NOMEM) {
                err = hs_error_set(error, HS_ERR_NOMEM, "out of memory");
                break;
            }
            err = hs_emit_put(emit, topic, key, &st.base);
            if (err == HS_OK && st.printed_mismatch)
                err = printed_alert(s, &u, &st, &firing, emit, error);
            if (err == HS_OK && st._indexed_difference_ore_case && st.indexed_difference_ore != 0)
                err = indexation_alert(s, &u, &st, &firing, emit, error);
        }
    }
    if (err == HS_OK)
        err = reconcile(s, &s->published, &keys, unit, false, emit, error);
    if (err == HS_OK)
        err = reconcile(s, &s->printed, &firing, unit, true, emit, error);
    for (size_t i = 0; err == HS_OK && i < s->rules.count; i++) {
        const rule_msg *r = s->rules.items[i];
        if (r->kind == HEALTHSIGNALS__V1__RULE_KIND__BUDGET_VARIANCE && rule_applies(r, unit))
            err = variance_alert(s, r, &u, emit, error);
        else if (r->kind == HEALTHSIGNALS__V1__RULE_KIND__BUDGET_SAVINGS && rule_applies(r, unit))
            err = savings_alert(s, r, &u, emit, error);
    }
    hs_table_free(&keys);
    hs_table_free(&firing);
    unit_free(&u);
    return err;
}

/* The units held, each once, in first-seen order (borrowed strings); NULL with *n 0 when none. */
static const char **units_of(const bg_state *s, size_t *n, bool *nomem)
{
    *n = 0;
    *nomem = false;
    if (!s->n_lines)
        return NULL;
    const char **units = calloc(s->n_lines, sizeof *units);
    if (!units) {
        *nomem = true;
        return NULL;
    }
    for (size_t i = 0; i < s->n_lines; i++) {
        bool seen = false;
        for (size_t j = 0; j < *n && !seen; j++)
            seen = strcmp(units[j], s->lines[i].unit) == 0;
        if (!seen)
            units[(*n)++] = s->lines[i].unit;
    }
    return units;
}

/* --- applying facts and rules
 * -------------------------------------------------------------------------------- */

static hs_err apply_line(bg_state *s, const char *key, const line_msg *value, hs_emit *emit, hs_error *error)
{
    char storage[HS_KEY_MAX];
    char *parts[4];
    if (hs_key_split(key, storage, parts, 4) != 4)
        return value ? hs_error_set(error, HS_ERR_VALIDATION, "key '%.200s' is not unit/line/year/kind", key)
                     : HS_OK;
    if (!value) { /* a tombstone: the line is gone */
        char *end;
        long year = strtol(parts[2], &end, 10);
        const ProtobufCEnumValue *kv = protobuf_c_enum_descriptor_get_value_by_name(
            &healthsignals__v1__budget_kind__descriptor, parts[3]);
        long at = *end || !kv ? -1 : line_find(s, parts[0], parts[1], (int)year, kv->value);
        if (at < 0)
            return HS_OK;
        bg_line gone = s->lines[at];
        s->lines[at] = s->lines[--s->n_lines];
        hs_err err = unit_update(s, gone.unit, emit, error);
        free(gone.unit);
        free(gone.line);
        return err;
    }
    if (value->kind < HEALTHSIGNALS__V1__BUDGET_KIND__BUDGET ||
        value->kind > HEALTHSIGNALS__V1__BUDGET_KIND__ACCOUNTS)
        return hs_error_set(error, HS_ERR_VALIDATION, "%s: unknown kind %d", key, (int)value->kind);
    const rule_msg *chart = chart_of(s, value->unit);
    if (chart && !chart->budget_allow_unassigned) {
        bool placed = false;
        for (size_t i = 0; i < chart->n_budget_totals && !placed; i++) {
            const Healthsignals__V1__BudgetTotal *t = chart->budget_totals[i];
            placed = strcmp(t->line, value->line) == 0;
            for (size_t p = 0; p < t->n_parts && !placed; p++)
                placed = strcmp(t->parts[p], value->line) == 0;
        }
        placed = placed || rule_line(s, value->unit, value->line);
        if (!placed)
            return hs_error_set(
                error, HS_ERR_VALIDATION,
                "%s: line \"%s\" has no place in chart %s (rule budget_allow_unassigned keeps it "
                "as an unassigned line)",
                key, value->line, chart->id);
    }
    long at = line_find(s, value->unit, value->line, value->year, (int)value->kind);
    if (at >= 0) {
        int64_t before = s->lines[at].amount;
        s->lines[at].amount = value->amount_ore;
        hs_err err = unit_update(s, value->unit, NULL, error);
        if (err) {
            s->lines[at].amount = before;
            return err;
        }
        return unit_update(s, value->unit, emit, error);
    }
    if (s->n_lines == s->cap_lines) {
        size_t cap = s->cap_lines ? 2 * s->cap_lines : 64;
        bg_line *grown = realloc(s->lines, cap * sizeof *grown);
        if (!grown)
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory storing %s", key);
        s->lines = grown;
        s->cap_lines = cap;
    }
    bg_line l = {.unit = strdup(value->unit),
                 .line = strdup(value->line),
                 .year = value->year,
                 .kind = (int)value->kind,
                 .amount = value->amount_ore};
    if (!l.unit || !l.line) {
        free(l.unit);
        free(l.line);
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory storing %s", key);
    }
    s->lines[s->n_lines++] = l;
    hs_err err = unit_update(s, l.unit, NULL, error);
    if (err) {
        s->n_lines--;
        free(l.unit);
        free(l.line);
        return err;
    }
    return unit_update(s, l.unit, emit, error);
}

/* Every unit computed (emit NULL: only checked) under the rules as they are now. */
static hs_err all_units(bg_state *s, hs_emit *emit, hs_error *error)
{
    size_t n;
    bool nomem;
    const char **units = units_of(s, &n, &nomem);
    if (nomem)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    hs_err err = HS_OK;
    for (size_t i = 0; err == HS_OK && i < n; i++)
        err = unit_update(s, units[i], emit, error);
    free(units);
    return err;
}

static hs_err apply_rule(bg_state *s, const char *key, const rule_msg *value, hs_emit *emit, hs_error *error)
{
    hs_err err;
    if (value && (err = rule_check(value, error)) != HS_OK)
        return err;
    rule_msg *fresh = value ? hs_rule_copy(value) : NULL, *old, *back;
    if (value && !fresh)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory storing a rule");
    const char *id = value ? value->id : key;
    if ((err = hs_rule_set_put(&s->rules, id, fresh, &old, error)) != HS_OK) {
        protobuf_c_message_free_unpacked(&fresh->base, NULL);
        return err;
    }
    if (!old && !fresh)
        return HS_OK;
    /* Every unit must be computable under the new rules (no total overflows): else the old rule goes back. */
    if ((err = all_units(s, NULL, error)) != HS_OK) {
        hs_rule_set_put(&s->rules, id, old, &back, NULL); /* cannot fail: the room is there */
        if (back)
            protobuf_c_message_free_unpacked(&back->base, NULL);
        return err;
    }
    /* A variance or savings rule that changed or went: its alerts are evaluated again below, or retired when
     * the rule is gone or no longer applies to a unit. */
    if (old && old->kind != HEALTHSIGNALS__V1__RULE_KIND__BUDGET_CHART) {
        size_t n;
        bool nomem;
        const char **units = units_of(s, &n, &nomem);
        if (nomem)
            err = hs_error_set(error, HS_ERR_NOMEM, "out of memory");
        for (size_t i = 0; err == HS_OK && i < n; i++) {
            if (fresh && rule_applies(fresh, units[i]) && strcmp(fresh->subject, old->subject) == 0)
                continue;
            char fingerprint[HS_FINGERPRINT_MAX];
            hs_alert_fingerprint(old->id, units[i], old->subject, NULL, fingerprint);
            err = hs_alert_retire(&s->alerts, fingerprint,
                                  fresh ? "the rule changed" : "the rule was deleted", emit, error);
        }
        free(units);
    }
    if (old)
        protobuf_c_message_free_unpacked(&old->base, NULL);
    return err == HS_OK ? all_units(s, emit, error) : err;
}

static hs_err budget_apply(void *state, const hs_topic *topic, const char *key, const ProtobufCMessage *value,
                           hs_emit *emit, hs_error *error)
{
    bg_state *s = state;
    if (strcmp(topic->name, HS_TOPIC_RULES) == 0)
        return apply_rule(s, key, (const rule_msg *)value, emit, error);
    if (strcmp(topic->name, HS_TOPIC_BUDGET) == 0)
        return apply_line(s, key, (const line_msg *)value, emit, error);
    return hs_error_set(error, HS_ERR_INTERNAL, "%s is not an input of budget", topic->name);
}

void budget_stats_add(const void *state, budget_stats *stats)
{
    const bg_state *s = state;
    if (s->rules.count > stats->rules)
        stats->rules = s->rules.count;
    stats->lines += s->n_lines;
    stats->statuses += s->published.count;
    stats->alerts_firing += s->alerts.firing;
}

static const char *const inputs[] = {HS_TOPIC_BUDGET, NULL};
static const char *const outputs[] = {HS_TOPIC_BUDGET_STATUS, HS_TOPIC_ALERTS, NULL};

const hs_calc budget_calc = {
    .name = SERVICE_NAME,
    .description =
        "budget lines rolled up by a chart of accounts: totals, printed totals checked, variance; alerts",
    .inputs = inputs,
    .outputs = outputs,
    .uses_rules = true,
    .create = budget_create,
    .destroy = budget_destroy,
    .apply = budget_apply,
};
