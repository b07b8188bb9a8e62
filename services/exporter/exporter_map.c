/* The exporter's mapping (exporter_map.h): derived records to Prometheus samples, and the OpenMetrics text of
 * a table's history. Pure: no Kafka, no registry. Label names are written in name order, so that a sample's
 * label list is already the canonical order of the exposition formats.
 */
#include "exporter_map.h"

#include <stdlib.h>
#include <string.h>

#include "healthsignals/v1/capacity_status.pb-c.h"
#include "healthsignals/v1/regional_variation.pb-c.h"
#include "healthsignals/v1/target_status.pb-c.h"
#include "hs/metrics.h"
#include "hs/topic.h"
#include "hs/validate.h"
#include "hs/wire.h"

/* The families, in name order (xm_families); the enum indexes them. */
enum {
    F_CAPACITY_AVAILABLE,
    F_CAPACITY_LEVEL,
    F_CAPACITY_OCCUPIED,
    F_CAPACITY_UTILISATION,
    F_TARGET_GAP,
    F_TARGET_MET,
    F_TARGET_THRESHOLD,
    F_TARGET_VALUE,
    F_VARIATION_NATIONAL,
    F_VARIATION_REGION_RANK,
    F_VARIATION_REGION_VALUE,
    F_VARIATION_SPREAD,
    F_COUNT,
};

static const xm_family families[F_COUNT] = {
    [F_CAPACITY_AVAILABLE] =
        {"hs_capacity_available",
         "Units of a resource available (beds, places, slots) in the scope, latest period "
         "(hs.capacity-status.v1)"},
    [F_CAPACITY_LEVEL] = {"hs_capacity_level",
                          "Escalation level 1 (normal) to 4 (extreme pressure) of a resource in the scope, "
                          "latest period (hs.capacity-status.v1)"},
    [F_CAPACITY_OCCUPIED] =
        {"hs_capacity_occupied",
         "Units of a resource in use in the scope, latest period (hs.capacity-status.v1)"},
    [F_CAPACITY_UTILISATION] =
        {"hs_capacity_utilisation_ratio",
         "Occupied / available units of a resource in the scope, latest period; absent "
         "when nothing is available (hs.capacity-status.v1)"},
    [F_TARGET_GAP] = {"hs_target_gap",
                      "Value minus target (target minus value when lower is better) of a target rule, in the "
                      "unit; positive is better than the target, latest period (hs.target-status.v1)"},
    [F_TARGET_MET] = {"hs_target_met",
                      "1 when the target rule is met in the latest period, 0 when missed; absent when "
                      "suspended or without a baseline (hs.target-status.v1)"},
    [F_TARGET_THRESHOLD] = {"hs_target_threshold",
                            "The value a target rule requires in the latest period, in the unit "
                            "(hs.target-status.v1)"},
    [F_TARGET_VALUE] = {"hs_target_value",
                        "The indicator's value a target rule is evaluated on, latest period, in the unit "
                        "(hs.target-status.v1)"},
    [F_VARIATION_NATIONAL] =
        {"hs_variation_national_value",
         "The national value of an indicator, latest period, in the unit (hs.variation.v1)"},
    [F_VARIATION_REGION_RANK] =
        {"hs_variation_region_rank",
         "A region's rank among the regions for an indicator, 1 = best, latest period "
         "(hs.variation.v1)"},
    [F_VARIATION_REGION_VALUE] = {"hs_variation_region_value",
                                  "A region's value of an indicator, latest period, in the unit "
                                  "(hs.variation.v1)"},
    [F_VARIATION_SPREAD] = {"hs_variation_spread",
                            "The regional variation of an indicator: best minus worst region, absolute, in "
                            "the unit, latest period (hs.variation.v1)"},
};

static const char *const topics[XM_TABLE_COUNT] = {
    [XM_TARGETS] = HS_TOPIC_TARGET_STATUS,
    [XM_VARIATION] = HS_TOPIC_VARIATION,
    [XM_CAPACITY] = HS_TOPIC_CAPACITY_STATUS,
};

static const ProtobufCMessageDescriptor *const types[XM_TABLE_COUNT] = {
    [XM_TARGETS] = &healthsignals__v1__target_status__descriptor,
    [XM_VARIATION] = &healthsignals__v1__regional_variation__descriptor,
    [XM_CAPACITY] = &healthsignals__v1__capacity_status__descriptor,
};

const char *xm_table_topic(xm_table table)
{
    return table < XM_TABLE_COUNT ? topics[table] : NULL;
}

bool xm_table_of(const char *topic, xm_table *out)
{
    for (int t = 0; t < XM_TABLE_COUNT; t++)
        if (topic && strcmp(topic, topics[t]) == 0) {
            *out = (xm_table)t;
            return true;
        }
    return false;
}

const xm_family *xm_families(size_t *count)
{
    *count = F_COUNT;
    return families;
}

/* --- Records ----------------------------------------------------------------------------------------------
 */

hs_err xm_identity(xm_table table, const char *key, char out[HS_KEY_MAX + 4], hs_error *error)
{
    char storage[HS_KEY_MAX], *parts[8];
    int n = hs_key_split(key, storage, parts, 8);
    if (n < 2)
        return hs_error_set(error, HS_ERR_VALIDATION,
                            "key '%.200s' does not split into its parts and a period", key);
    char without_period[HS_KEY_MAX];
    hs_err err = hs_key_join(without_period, (const char *const *)parts, (size_t)n - 1, error);
    if (err != HS_OK)
        return err;
    snprintf(out, HS_KEY_MAX + 4, "%d|%s", (int)table, without_period);
    return HS_OK;
}

bool xm_later(const xm_record *a, const xm_record *b)
{
    if (a->end != b->end)
        return a->end > b->end;
    if (a->start != b->start)
        return a->start > b->start;
    return strcmp(a->key, b->key) > 0;
}

void xm_record_free(xm_record *record)
{
    if (!record)
        return;
    if (record->message)
        protobuf_c_message_free_unpacked(record->message, NULL);
    free(record->samples);
    free(record);
}

/* Fills the record's region and returns its region name: the nation ("DK", "Hele landet"), a region, or a
 * hospital's region from the DST code that begins its code; "" for anything else. */
static const char *set_region(xm_record *r, const Healthsignals__V1__Scope *scope)
{
    const char *code = scope && scope->code ? scope->code : "";
    r->region[0] = '\0';
    switch (scope ? scope->kind : HEALTHSIGNALS__V1__SCOPE_KIND__SCOPE_KIND_UNSPECIFIED) {
    case HEALTHSIGNALS__V1__SCOPE_KIND__NATIONAL:
        snprintf(r->region, sizeof r->region, "%s", code);
        return "Hele landet";
    case HEALTHSIGNALS__V1__SCOPE_KIND__REGION:
        snprintf(r->region, sizeof r->region, "%s", code);
        return hs_region_name(code) ? hs_region_name(code) : "";
    case HEALTHSIGNALS__V1__SCOPE_KIND__HOSPITAL: {
        char prefix[5];
        snprintf(prefix, sizeof prefix, "%s", code);
        const char *name = hs_region_name(prefix);
        if (name)
            snprintf(r->region, sizeof r->region, "%s", prefix);
        return name ? name : "";
    }
    default: return "";
    }
}

static void set_unit(xm_record *r, Healthsignals__V1__Unit unit)
{
    const char *name = hs_unit_name(unit);
    size_t n = 0;
    for (; name && name[n] && n + 1 < sizeof r->unit; n++)
        r->unit[n] = (char)(name[n] >= 'A' && name[n] <= 'Z' ? name[n] - 'A' + 'a' : name[n]);
    r->unit[n] = '\0';
}

/* Appends a sample whose labels are the NULL-terminated name, value pairs that follow `value`. */
static xm_sample *add(xm_record *r, size_t family, double value)
{
    xm_sample *s = &r->samples[r->count++];
    s->family = family;
    s->value = value;
    return s;
}

static void set_labels(xm_sample *s, const char *const *labels)
{
    size_t i = 0;
    for (; labels[i] && i < (size_t)2 * XM_LABELS_MAX; i += 2) {
        s->labels[i] = labels[i];
        s->labels[i + 1] = labels[i + 1] ? labels[i + 1] : "";
    }
    s->labels[i] = NULL;
}

static hs_err map_target(xm_record *r, const Healthsignals__V1__TargetStatus *t, hs_error *error)
{
    const char *region_name = set_region(r, t->scope);
    set_unit(r, t->unit);
    const char *labels[] = {"indicator", t->subject,    "period",    t->period, "region",
                            r->region,   "region_name", region_name, "rule",    t->rule,
                            "scope",     r->scope,      "unit",      r->unit,   NULL};
    r->samples = calloc(4, sizeof *r->samples);
    if (!r->samples)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    set_labels(add(r, F_TARGET_VALUE, t->value), labels);
    if (t->_target_case == HEALTHSIGNALS__V1__TARGET_STATUS___TARGET_TARGET)
        set_labels(add(r, F_TARGET_THRESHOLD, t->target), labels);
    if (t->_gap_case == HEALTHSIGNALS__V1__TARGET_STATUS___GAP_GAP)
        set_labels(add(r, F_TARGET_GAP, t->gap), labels);
    if (t->status == HEALTHSIGNALS__V1__TARGET_STATE__MET ||
        t->status == HEALTHSIGNALS__V1__TARGET_STATE__MISSED)
        set_labels(add(r, F_TARGET_MET, t->status == HEALTHSIGNALS__V1__TARGET_STATE__MET ? 1 : 0), labels);
    return HS_OK;
}

static hs_err map_variation(xm_record *r, const Healthsignals__V1__RegionalVariation *v, hs_error *error)
{
    set_unit(r, v->unit);
    r->samples = calloc(2 + 2 * v->n_regions, sizeof *r->samples);
    if (!r->samples)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    const char *labels[] = {"indicator", v->indicator, "period", v->period, "unit", r->unit, NULL};
    set_labels(add(r, F_VARIATION_SPREAD, v->spread), labels);
    set_labels(add(r, F_VARIATION_NATIONAL, v->national_value), labels);
    for (size_t i = 0; i < v->n_regions; i++) {
        const Healthsignals__V1__RegionValue *region = v->regions[i];
        for (size_t j = 0; j < i; j++)
            if (strcmp(v->regions[j]->code, region->code) == 0)
                return hs_error_set(error, HS_ERR_VALIDATION, "region %.40s appears twice", region->code);
        const char *region_labels[] = {"indicator", v->indicator, "period",      v->period,
                                       "region",    region->code, "region_name", region->name,
                                       "unit",      r->unit,      NULL};
        set_labels(add(r, F_VARIATION_REGION_VALUE, region->value), region_labels);
        set_labels(add(r, F_VARIATION_REGION_RANK, region->rank), region_labels);
    }
    return HS_OK;
}

static hs_err map_capacity(xm_record *r, const Healthsignals__V1__CapacityStatus *c, hs_error *error)
{
    const char *region_name = set_region(r, c->scope);
    r->samples = calloc(4, sizeof *r->samples);
    if (!r->samples)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    const char *labels[] = {"period",    c->period,  "region",    r->region, "region_name",
                            region_name, "resource", c->resource, "rollup",  c->rollup ? "true" : "false",
                            "rule",      c->rule,    "scope",     r->scope,  NULL};
    if (c->_utilisation_pct_case == HEALTHSIGNALS__V1__CAPACITY_STATUS___UTILISATION_PCT_UTILISATION_PCT)
        set_labels(add(r, F_CAPACITY_UTILISATION, c->utilisation_pct / 100), labels);
    set_labels(add(r, F_CAPACITY_LEVEL, c->level), labels);
    set_labels(add(r, F_CAPACITY_AVAILABLE, c->available), labels);
    set_labels(add(r, F_CAPACITY_OCCUPIED, c->occupied), labels);
    return HS_OK;
}

static hs_err labels_utf8(const xm_sample *s, hs_error *error)
{
    for (size_t k = 0; s->labels[k]; k += 2)
        if (!hs_validate_utf8(s->labels[k + 1], strlen(s->labels[k + 1])))
            return hs_error_set(error, HS_ERR_VALIDATION, "label %s: value is not UTF-8", s->labels[k]);
    return HS_OK;
}

/* The scope and period of the message, whatever its table. */
static void scope_and_period(const xm_record *r, const Healthsignals__V1__Scope **scope, const char **period)
{
    *scope = NULL;
    switch (r->table) {
    case XM_TARGETS:
        *scope = ((const Healthsignals__V1__TargetStatus *)r->message)->scope;
        *period = ((const Healthsignals__V1__TargetStatus *)r->message)->period;
        break;
    case XM_VARIATION: *period = ((const Healthsignals__V1__RegionalVariation *)r->message)->period; break;
    default:
        *scope = ((const Healthsignals__V1__CapacityStatus *)r->message)->scope;
        *period = ((const Healthsignals__V1__CapacityStatus *)r->message)->period;
        break;
    }
}

hs_err xm_record_decode(xm_table table, const char *key, const void *payload, size_t len, xm_record **out,
                        hs_error *error)
{
    *out = NULL;
    if (table >= XM_TABLE_COUNT)
        return hs_error_set(error, HS_ERR_INTERNAL, "no such derived table");
    if (!key || strlen(key) >= HS_KEY_MAX)
        return hs_error_set(error, HS_ERR_VALIDATION, "key missing or longer than %d bytes", HS_KEY_MAX - 1);
    xm_record *r = calloc(1, sizeof *r);
    if (!r)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    r->table = table;
    snprintf(r->key, sizeof r->key, "%s", key);
    r->message = hs_wire_unpack(types[table], NULL, len, payload); /* bare or Confluent-framed (hs/wire.h) */
    hs_err err = HS_OK;
    char group[HS_KEY_MAX];
    if (!r->message) {
        err = hs_error_set(error, HS_ERR_VALIDATION, "value is not a %s", types[table]->name);
        goto fail;
    }
    /* The key must be the value's identity: labels come from the value, the series' identity from the key. */
    if ((err = hs_topic_check_key(hs_topic_find(topics[table]), key, r->message, group, error)) != HS_OK ||
        (err = xm_identity(table, key, r->identity, error)) != HS_OK)
        goto fail;
    const Healthsignals__V1__Scope *scope;
    const char *period;
    scope_and_period(r, &scope, &period);
    if ((err = hs_period_parse(period, &r->period, error)) != HS_OK)
        goto fail;
    hs_period_unix_bounds(&r->period, &r->start, &r->end);
    if (scope)
        hs_topic_scope_component(scope, r->scope, sizeof r->scope);
    switch (table) {
    case XM_TARGETS: err = map_target(r, (const void *)r->message, error); break;
    case XM_VARIATION: err = map_variation(r, (const void *)r->message, error); break;
    default: err = map_capacity(r, (const void *)r->message, error); break;
    }
    if (err != HS_OK)
        goto fail;
    /* Prometheus refuses a whole scrape for one label value that is not UTF-8. */
    for (size_t i = 0; r->samples && i < r->count; i++)
        if ((err = labels_utf8(&r->samples[i], error)) != HS_OK)
            goto fail;
    *out = r;
    return HS_OK;
fail:
    xm_record_free(r);
    return err;
}

/* --- OpenMetrics ------------------------------------------------------------------------------------------
 */

/* One line of the output, before sorting. */
typedef struct om_line {
    size_t family;
    char *series; /* {a="x",b="y"}, escaped; owned */
    int64_t timestamp;
    double value;
} om_line;

static int om_line_cmp(const void *pa, const void *pb)
{
    const om_line *a = pa, *b = pb;
    if (a->family != b->family)
        return a->family < b->family ? -1 : 1;
    int c = strcmp(a->series, b->series);
    if (c)
        return c;
    return (a->timestamp > b->timestamp) - (a->timestamp < b->timestamp);
}

/* Writes `s` escaped as OpenMetrics escapes label values and HELP text: backslash, double quote, newline. */
static void put_escaped(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', out);
        if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
}

/* The label set of `s` as {a="x",...} into a malloc'd string (labels are in name order already). */
static char *series_text(const xm_sample *s)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f)
        return NULL;
    fputc('{', f);
    for (const char *const *l = s->labels; l[0]; l += 2) {
        fprintf(f, "%s%s=\"", l == s->labels ? "" : ",", l[0]);
        put_escaped(f, l[1]);
        fputc('"', f);
    }
    fputc('}', f);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

hs_err xm_write_openmetrics(FILE *out, xm_record *const *records, size_t count, hs_error *error)
{
    size_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += records[i]->count;
    om_line *lines = calloc(total ? total : 1, sizeof *lines);
    if (!lines)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    size_t n = 0;
    hs_err err = HS_OK;
    for (size_t i = 0; i < count && err == HS_OK; i++)
        for (size_t j = 0; j < records[i]->count; j++) {
            const xm_sample *s = &records[i]->samples[j];
            lines[n] = (om_line){s->family, series_text(s), records[i]->end, s->value};
            if (!lines[n++].series) {
                err = hs_error_set(error, HS_ERR_NOMEM, "out of memory");
                break;
            }
        }
    if (err == HS_OK) {
        qsort(lines, n, sizeof *lines, om_line_cmp);
        for (size_t i = 0; i < n; i++) {
            const xm_family *f = &families[lines[i].family];
            if (i == 0 || lines[i].family != lines[i - 1].family) {
                fprintf(out, "# HELP %s ", f->name);
                put_escaped(out, f->help);
                fprintf(out, "\n# TYPE %s gauge\n", f->name);
            } else if (strcmp(lines[i].series, lines[i - 1].series) == 0 &&
                       lines[i].timestamp == lines[i - 1].timestamp) {
                continue; /* the same series and instant twice: OpenMetrics allows one sample */
            }
            char value[32];
            hs_metrics_format_value(lines[i].value, value, sizeof value);
            fprintf(out, "%s%s %s %lld\n", f->name, lines[i].series, value, (long long)lines[i].timestamp);
        }
        fputs("# EOF\n", out);
        if (fflush(out) != 0 || ferror(out))
            err = hs_error_set(error, HS_ERR_IO, "cannot write the OpenMetrics text");
    }
    for (size_t i = 0; i < n; i++)
        free(lines[i].series);
    free(lines);
    return err;
}
