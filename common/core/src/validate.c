/* Validation of the event contracts. Each message validator walks its fields in declaration order and stops
 * at the first failure, so a reason always names one field. Scopes are resolved by one function
 * (resolve_scope) that both the in-place normaliser and the text parser use; unit names come from the
 * protobuf-c enum descriptor, so the .proto file stays the only list of units.
 */
#include "hs/validate.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hs/alert.h"
#include "hs/period.h"

/* User text quoted in a reason is cut to this many bytes, so that the reason itself survives. */
#define QUOTE_MAX 40

/* --- Small helpers ------------------------------------------------------------------------------------- */

/* Writes `value` as a reason shows it: "130", "74.5", "NaN", "Infinity". Returns `buf` or a literal. */
static const char *number_text(double value, char buf[32])
{
    if (isnan(value))
        return "NaN";
    if (isinf(value))
        return value > 0 ? "Infinity" : "-Infinity";
    snprintf(buf, 32, "%.15g", value);
    if (strtod(buf, NULL) != value) /* the shortest form that reads back as the same double */
        snprintf(buf, 32, "%.17g", value);
    return buf;
}

/* Enums are open in proto3: protobuf-c keeps a number it does not know, and the JSON mapping accepts one, so
 * a message written against a newer schema arrives with it. No calculation can know what such a value means
 * (a unit's range and direction, a kind's rule), so it is refused here, with a reason that says it is new
 * rather than wrong: "unit: 42 is unknown to this version of healthsignals.v1.Unit". */
static hs_err check_enum(const char *field, const ProtobufCEnumDescriptor *descriptor, int value,
                         hs_error *error)
{
    if (protobuf_c_enum_descriptor_get_value(descriptor, value))
        return HS_OK;
    return hs_error_set(error, HS_ERR_VALIDATION, "%s: %d is unknown to this version of %s", field, value,
                        descriptor->name);
}

bool hs_validate_utf8(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t extra;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) {
            extra = 1;
            cp = c & 0x1F;
            min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            extra = 2;
            cp = c & 0x0F;
            min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            extra = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false; /* a continuation byte, or 0xF8..0xFF */
        }
        if (len - i <= extra)
            return false; /* truncated sequence */
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false; /* overlong, out of range, or a UTF-16 surrogate */
        i += extra + 1;
    }
    return true;
}

/* The code syntax, with its length limit as a parameter (codes 128, quality flags 64). */
static hs_err check_code(const char *field, const char *code, size_t max, hs_error *error)
{
    if (!code || !*code)
        return hs_error_set(error, HS_ERR_VALIDATION, "%s is required", field);
    size_t len = strnlen(code, max + 1);
    if (len > max)
        return hs_error_set(error, HS_ERR_TOO_LARGE, "%s: longer than %zu bytes", field, max);
    if (code[0] < 'a' || code[0] > 'z')
        return hs_error_set(error, HS_ERR_VALIDATION, "%s: '%.*s' must start with a lowercase letter a-z",
                            field, QUOTE_MAX, code);
    for (size_t i = 0; i < len; i++) {
        char c = code[i];
        bool allowed = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
        if (!allowed)
            return hs_error_set(error, HS_ERR_VALIDATION,
                                "%s: '%.*s' may hold only lowercase letters a-z, digits, '.', '-' and '_'",
                                field, QUOTE_MAX, code);
        if (c == '.' && (code[i + 1] == '.' || code[i + 1] == '\0'))
            return hs_error_set(error, HS_ERR_VALIDATION, "%s: '%.*s' has an empty segment", field, QUOTE_MAX,
                                code);
    }
    return HS_OK;
}

hs_err hs_validate_code(const char *field, const char *code, hs_error *error)
{
    return check_code(field, code, HS_VALIDATE_CODE_MAX, error);
}

/* Free text: at most `max` bytes of UTF-8; empty allowed unless `required`. */
static hs_err check_text(const char *field, const char *text, size_t max, bool required, hs_error *error)
{
    if (!text || !*text)
        return required ? hs_error_set(error, HS_ERR_VALIDATION, "%s is required", field) : HS_OK;
    size_t len = strnlen(text, max + 1);
    if (len > max)
        return hs_error_set(error, HS_ERR_TOO_LARGE, "%s: longer than %zu bytes", field, max);
    if (!hs_validate_utf8(text, len))
        return hs_error_set(error, HS_ERR_VALIDATION, "%s: invalid UTF-8", field);
    return HS_OK;
}

/* A period field; an empty one is an error only when `required`. On success `*given` says whether it was
 * there and `out` (when given) holds it. */
static hs_err check_period(const char *field, const char *text, bool required, bool *given, hs_period *out,
                           hs_error *error)
{
    *given = text && *text;
    if (!*given)
        return required ? hs_error_set(error, HS_ERR_VALIDATION, "%s is required", field) : HS_OK;
    hs_err err = hs_period_parse(text, out, error);
    if (err != HS_OK && strcmp(field, "period") != 0)
        hs_error_prefix(error, "%s", field); /* the reason already says "period '...'" */
    return err;
}

/* A number field: finite, and >= 0 when `non_negative`. */
static hs_err check_number(const char *field, double value, bool non_negative, hs_error *error)
{
    char buf[32];
    if (!isfinite(value))
        return hs_error_set(error, HS_ERR_VALIDATION, "%s: %s is not a finite number", field,
                            number_text(value, buf));
    if (non_negative && value < 0)
        return hs_error_set(error, HS_ERR_VALIDATION, "%s: %s is negative", field, number_text(value, buf));
    return HS_OK;
}

/* A count of things (beds, places, slots): a number field, and at most HS_VALIDATE_COUNT_MAX. */
static hs_err check_count(const char *field, double value, hs_error *error)
{
    char buf[32], bound[32];
    hs_err err = check_number(field, value, true, error);
    if (err == HS_OK && value > HS_VALIDATE_COUNT_MAX)
        err = hs_error_set(error, HS_ERR_VALIDATION, "%s: %s is above %s for a count", field,
                           number_text(value, buf), number_text(HS_VALIDATE_COUNT_MAX, bound));
    return err;
}

static hs_err check_flags(char *const *flags, size_t count, hs_error *error)
{
    if (count > HS_VALIDATE_FLAGS_MAX)
        return hs_error_set(error, HS_ERR_TOO_LARGE, "quality_flags: %zu flags, at most %d", count,
                            HS_VALIDATE_FLAGS_MAX);
    for (size_t i = 0; i < count; i++) {
        char field[40];
        snprintf(field, sizeof field, "quality_flags[%zu]", i);
        hs_err err = check_code(field, flags[i], HS_VALIDATE_FLAG_MAX, error);
        if (err != HS_OK)
            return err;
        for (size_t j = 0; j < i; j++)
            if (strcmp(flags[i], flags[j]) == 0)
                return hs_error_set(error, HS_ERR_VALIDATION, "quality_flags: '%s' appears twice", flags[i]);
    }
    return HS_OK;
}

/* --- Scopes -------------------------------------------------------------------------------------------- */

static const struct region {
    const char *code;
    const char *name;   /* as printed */
    const char *folded; /* lowercase, Danish letters kept */
    const char *ascii;  /* lowercase, æ written ae */
} regions[] = {
    {"1081", "Nordjylland", "nordjylland", "nordjylland"},
    {"1082", "Midtjylland", "midtjylland", "midtjylland"},
    {"1083", "Syddanmark", "syddanmark", "syddanmark"},
    {"1084", "Hovedstaden", "hovedstaden", "hovedstaden"},
    {"1085", "Sjælland", "sjælland", "sjaelland"},
};

#define REGION_COUNT (sizeof regions / sizeof regions[0])

/* Compares `text` with `lower` (lowercase UTF-8), folding ASCII letters and the Danish capitals Æ, Ø and Å
 * of `text` to lowercase. */
static bool equal_folded(const char *text, const char *lower)
{
    const unsigned char *t = (const unsigned char *)text;
    const unsigned char *l = (const unsigned char *)lower;
    while (*t && *l) {
        unsigned char c = *t;
        if (c == 0xC3 && (t[1] == 0x86 || t[1] == 0x98 || t[1] == 0x85)) {
            /* Æ Ø Å (U+00C6, U+00D8, U+00C5) are 0x20 below æ ø å in their second byte */
            if (l[0] != 0xC3 || l[1] != t[1] + 0x20)
                return false;
            t += 2;
            l += 2;
            continue;
        }
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c != *l)
            return false;
        t++;
        l++;
    }
    return *t == *l;
}

/* The index into regions[] of a region code or name, or -1. */
static int find_region(const char *text)
{
    for (size_t i = 0; i < REGION_COUNT; i++)
        if (strcmp(text, regions[i].code) == 0)
            return (int)i;
    const char *name = strncasecmp(text, "region ", 7) == 0 ? text + 7 : text;
    for (size_t i = 0; i < REGION_COUNT; i++)
        if (equal_folded(name, regions[i].folded) || equal_folded(name, regions[i].ascii))
            return (int)i;
    return -1;
}

static bool is_nation(const char *text)
{
    return equal_folded(text, "dk") || equal_folded(text, "hele landet") || equal_folded(text, "danmark");
}

const char *hs_region_name(const char *code)
{
    if (!code)
        return NULL;
    for (size_t i = 0; i < REGION_COUNT; i++)
        if (strcmp(code, regions[i].code) == 0)
            return regions[i].name;
    return NULL;
}

static bool hospital_code_ok(const char *code)
{
    size_t len = strnlen(code, HS_VALIDATE_HOSPITAL_MAX + 1);
    if (len == 0 || len > HS_VALIDATE_HOSPITAL_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = code[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

static bool municipality_code_ok(const char *code)
{
    for (int i = 0; i < 3; i++)
        if (code[i] < '0' || code[i] > '9')
            return false;
    if (code[3] != '\0')
        return false;
    int number = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
    return number >= 101 && number <= 860;
}

/* Decides the canonical kind and code of a scope given as `kind` and `code` (NULL = empty), without touching
 * memory. Returns the canonical code — a static string, or `code` itself — and sets `*kind_out`; or returns
 * NULL with the reason in `error` (always HS_ERR_VALIDATION). `field` names the scope in reasons. */
static const char *resolve_scope(Healthsignals__V1__ScopeKind kind, const char *code, const char *field,
                                 Healthsignals__V1__ScopeKind *kind_out, hs_error *error)
{
    if (!code)
        code = "";
    int region;
    switch (kind) {
    case HEALTHSIGNALS__V1__SCOPE_KIND__SCOPE_KIND_UNSPECIFIED:
        if (!*code)
            break;
        if (is_nation(code)) {
            *kind_out = HEALTHSIGNALS__V1__SCOPE_KIND__NATIONAL;
            return "DK";
        }
        region = find_region(code);
        if (region < 0) {
            hs_error_set(error, HS_ERR_VALIDATION, "%s: unknown region '%.*s'", field, QUOTE_MAX, code);
            return NULL;
        }
        *kind_out = HEALTHSIGNALS__V1__SCOPE_KIND__REGION;
        return regions[region].code;
    case HEALTHSIGNALS__V1__SCOPE_KIND__NATIONAL:
        if (*code && !is_nation(code)) {
            hs_error_set(error, HS_ERR_VALIDATION, "%s: a NATIONAL scope has code DK, not '%.*s'", field,
                         QUOTE_MAX, code);
            return NULL;
        }
        *kind_out = kind;
        return "DK";
    case HEALTHSIGNALS__V1__SCOPE_KIND__REGION:
        if (!*code)
            break;
        region = find_region(code);
        if (region < 0) {
            hs_error_set(error, HS_ERR_VALIDATION, "%s: unknown region '%.*s'", field, QUOTE_MAX, code);
            return NULL;
        }
        *kind_out = kind;
        return regions[region].code;
    case HEALTHSIGNALS__V1__SCOPE_KIND__HOSPITAL:
        if (!hospital_code_ok(code)) {
            hs_error_set(error, HS_ERR_VALIDATION,
                         "%s: hospital code '%.*s' must be 1-%d characters A-Z, a-z, 0-9, '.', '-' or '_'",
                         field, QUOTE_MAX, code, HS_VALIDATE_HOSPITAL_MAX);
            return NULL;
        }
        *kind_out = kind;
        return code;
    case HEALTHSIGNALS__V1__SCOPE_KIND__MUNICIPALITY:
        if (!municipality_code_ok(code)) {
            hs_error_set(error, HS_ERR_VALIDATION,
                         "%s: municipality code '%.*s' must be a 3-digit DST code 101-860", field, QUOTE_MAX,
                         code);
            return NULL;
        }
        *kind_out = kind;
        return code;
    default: {
        char kind_field[48];
        snprintf(kind_field, sizeof kind_field, "%s.kind", field);
        check_enum(kind_field, &healthsignals__v1__scope_kind__descriptor, (int)kind, error);
        return NULL;
    }
    }
    hs_error_set(error, HS_ERR_VALIDATION, "%s: code is required", field);
    return NULL;
}

/* Replaces scope->code by `canonical` unless they are equal. */
static hs_err set_scope_code(Healthsignals__V1__Scope *scope, const char *canonical, hs_error *error)
{
    if (scope->code && strcmp(scope->code, canonical) == 0)
        return HS_OK;
    char *copy = strdup(canonical);
    if (!copy)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory normalising a scope");
    if (scope->code && scope->code != protobuf_c_empty_string)
        free(scope->code);
    scope->code = copy;
    return HS_OK;
}

static hs_err normalize_scope(Healthsignals__V1__Scope *scope, const char *field, hs_error *error)
{
    if (!scope)
        return hs_error_set(error, HS_ERR_VALIDATION, "%s is required", field);
    Healthsignals__V1__ScopeKind kind = scope->kind;
    const char *canonical = resolve_scope(scope->kind, scope->code, field, &kind, error);
    if (!canonical)
        return HS_ERR_VALIDATION;
    hs_err err = set_scope_code(scope, canonical, error);
    if (err == HS_OK)
        scope->kind = kind;
    return err;
}

hs_err hs_scope_normalize(Healthsignals__V1__Scope *scope, hs_error *error)
{
    return normalize_scope(scope, "scope", error);
}

hs_err hs_scope_parse(const char *text, Healthsignals__V1__Scope *out, hs_error *error)
{
    static const struct {
        const char *name;
        Healthsignals__V1__ScopeKind kind;
    } kinds[] = {
        {"REGION", HEALTHSIGNALS__V1__SCOPE_KIND__REGION},
        {"NATIONAL", HEALTHSIGNALS__V1__SCOPE_KIND__NATIONAL},
        {"HOSPITAL", HEALTHSIGNALS__V1__SCOPE_KIND__HOSPITAL},
        {"MUNICIPALITY", HEALTHSIGNALS__V1__SCOPE_KIND__MUNICIPALITY},
    };
    healthsignals__v1__scope__init(out);
    if (!text || !*text)
        return hs_error_set(error, HS_ERR_VALIDATION, "scope is required");
    Healthsignals__V1__ScopeKind kind = HEALTHSIGNALS__V1__SCOPE_KIND__SCOPE_KIND_UNSPECIFIED;
    const char *code = text;
    const char *colon = strchr(text, ':');
    if (colon) {
        size_t len = (size_t)(colon - text);
        bool found = false;
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0] && !found; i++) {
            if (strlen(kinds[i].name) == len && strncasecmp(text, kinds[i].name, len) == 0) {
                kind = kinds[i].kind;
                found = true;
            }
        }
        if (!found)
            return hs_error_set(
                error, HS_ERR_VALIDATION,
                "scope: unknown kind '%.*s' (expected REGION, NATIONAL, HOSPITAL or MUNICIPALITY)",
                (int)(len < QUOTE_MAX ? len : QUOTE_MAX), text);
        code = colon + 1;
    }
    const char *canonical = resolve_scope(kind, code, "scope", &kind, error);
    if (!canonical)
        return HS_ERR_VALIDATION;
    char *copy = strdup(canonical);
    if (!copy)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory parsing a scope");
    out->kind = kind;
    out->code = copy;
    return HS_OK;
}

/* --- Units --------------------------------------------------------------------------------------------- */

const char *hs_unit_name(Healthsignals__V1__Unit unit)
{
    const ProtobufCEnumValue *value =
        protobuf_c_enum_descriptor_get_value(&healthsignals__v1__unit__descriptor, (int)unit);
    return value ? value->name : NULL;
}

const char *hs_rule_kind_name(Healthsignals__V1__RuleKind kind)
{
    const ProtobufCEnumValue *value =
        protobuf_c_enum_descriptor_get_value(&healthsignals__v1__rule_kind__descriptor, (int)kind);
    return value ? value->name : "?";
}

bool hs_unit_parse(const char *text, Healthsignals__V1__Unit *out)
{
    if (!text)
        return false;
    if (strcmp(text, "%") == 0) {
        *out = HEALTHSIGNALS__V1__UNIT__PERCENT;
        return true;
    }
    const ProtobufCEnumDescriptor *d = &healthsignals__v1__unit__descriptor;
    for (unsigned i = 0; i < d->n_values; i++) {
        if (d->values[i].value != HEALTHSIGNALS__V1__UNIT__UNIT_UNSPECIFIED &&
            strcasecmp(text, d->values[i].name) == 0) {
            *out = (Healthsignals__V1__Unit)d->values[i].value;
            return true;
        }
    }
    return false;
}

/* The range of each unit. The lower bounds are the units' meaning (a share, a duration, a count cannot be
 * negative; money can). The upper bounds are magnitudes no real figure of the unit comes near: each is at
 * least a thousand times the largest figure of its unit in the Danish health sector, so that no published
 * figure is ever refused, while a figure like 1e308 beds is. They are also what keeps the calculations
 * finite: every bound is at most 1e15 and every volume at most 1e12, so a product of a value and a volume
 * is below 1e27 and no sum a service computes (of at most millions of terms) comes anywhere near
 * DBL_MAX (1.8e308). Why each bound, from the largest real figure of the unit:
 *   PERCENT 0..100       a share of something; growth and change are computed by rules, not published
 *   DAYS    0..1e9       a lifetime is 4e4 days; totals of days (the nation's bed-days) are 5e6 a year
 *   WEEKS   0..1e8       the same spans in weeks (1e9 days / 7, rounded down to a power of ten)
 *   COUNT   0..1e12      patients, beds, courses, slots: the largest yearly count of the sector
 *                        (laboratory analyses) is about 1e9; Denmark has 6e6 inhabitants
 *   FTE     0..1e8       the regions employ 1.3e5 full-time equivalents, the labour force is 3e6
 *   DKK     -1e15..1e15  the regions' yearly budget is 1.3e11 DKK, Denmark's GDP 2.8e12 DKK
 *   RATIO   0..1e9       a ratio of two counts: at most a population (6e6) per one
 *   INDEX   0..1e9       base 100; the documents' indices are 93-147
 *   RATE    0..1e9       per population: 7 GP contacts a year per person are 7e5 per 100 000 */
static const struct unit_range {
    Healthsignals__V1__Unit unit;
    double min, max;
} unit_ranges[] = {
    {HEALTHSIGNALS__V1__UNIT__PERCENT, 0, HS_VALIDATE_PERCENT_MAX},
    {HEALTHSIGNALS__V1__UNIT__DAYS, 0, HS_VALIDATE_DAYS_MAX},
    {HEALTHSIGNALS__V1__UNIT__WEEKS, 0, HS_VALIDATE_WEEKS_MAX},
    {HEALTHSIGNALS__V1__UNIT__COUNT, 0, HS_VALIDATE_COUNT_MAX},
    {HEALTHSIGNALS__V1__UNIT__FTE, 0, HS_VALIDATE_FTE_MAX},
    {HEALTHSIGNALS__V1__UNIT__DKK, -HS_VALIDATE_DKK_MAX, HS_VALIDATE_DKK_MAX},
    {HEALTHSIGNALS__V1__UNIT__RATIO, 0, HS_VALIDATE_RATIO_MAX},
    {HEALTHSIGNALS__V1__UNIT__INDEX, 0, HS_VALIDATE_INDEX_MAX},
    {HEALTHSIGNALS__V1__UNIT__RATE, 0, HS_VALIDATE_RATE_MAX},
};

bool hs_unit_range(Healthsignals__V1__Unit unit, double *min, double *max)
{
    for (size_t i = 0; i < sizeof unit_ranges / sizeof unit_ranges[0]; i++)
        if (unit_ranges[i].unit == unit) {
            *min = unit_ranges[i].min;
            *max = unit_ranges[i].max;
            return true;
        }
    return false;
}

hs_err hs_unit_check_value(Healthsignals__V1__Unit unit, double value, hs_error *error)
{
    char buf[32], bound[32];
    if (unit == HEALTHSIGNALS__V1__UNIT__UNIT_UNSPECIFIED)
        return hs_error_set(error, HS_ERR_VALIDATION, "unit is required");
    const char *name = hs_unit_name(unit);
    double min, max;
    if (!name || !hs_unit_range(unit, &min, &max))
        return hs_error_set(error, HS_ERR_VALIDATION, "%d is unknown to this version of %s", (int)unit,
                            healthsignals__v1__unit__descriptor.name);
    if (!isfinite(value))
        return hs_error_set(error, HS_ERR_VALIDATION, "%s is not a finite number", number_text(value, buf));
    if (value > max)
        return hs_error_set(error, HS_ERR_VALIDATION, "%s is above %s for %s", number_text(value, buf),
                            number_text(max, bound), name);
    if (value < min)
        return hs_error_set(error, HS_ERR_VALIDATION, "%s is below %s for %s", number_text(value, buf),
                            number_text(min, bound), name);
    return HS_OK;
}

/* --- Messages ------------------------------------------------------------------------------------------ */

/* An observation's identity, all of it required: its code (`field`), scope (normalized) and period. */
static hs_err check_observation_identity(const char *field, const char *code, Healthsignals__V1__Scope *scope,
                                         const char *period, hs_error *error)
{
    hs_err err = check_code(field, code, HS_VALIDATE_CODE_MAX, error);
    if (err == HS_OK)
        err = normalize_scope(scope, "scope", error);
    bool given;
    hs_period parsed;
    if (err == HS_OK)
        err = check_period("period", period, true, &given, &parsed, error);
    return err;
}

/* An observation's provenance: its quality flags and its free-text source. */
static hs_err check_provenance(char *const *flags, size_t count, const char *source, hs_error *error)
{
    hs_err err = check_flags(flags, count, error);
    return err == HS_OK ? check_text("source", source, HS_VALIDATE_SOURCE_MAX, false, error) : err;
}

hs_err hs_validate_indicator_figures(const Healthsignals__V1__IndicatorObservation *obs, hs_error *error)
{
    if (obs->unit == HEALTHSIGNALS__V1__UNIT__UNIT_UNSPECIFIED)
        return hs_error_set(error, HS_ERR_VALIDATION, "unit is required");
    hs_err err = check_enum("unit", &healthsignals__v1__unit__descriptor, (int)obs->unit, error);
    if (err != HS_OK)
        return err;
    err = hs_unit_check_value(obs->unit, obs->value, error);
    if (err != HS_OK) {
        hs_error_prefix(error, "value");
        return err;
    }
    if (obs->_volume_case != HEALTHSIGNALS__V1__INDICATOR_OBSERVATION___VOLUME_VOLUME)
        return HS_OK;
    if (obs->volume < 0)
        return hs_error_set(error, HS_ERR_VALIDATION, "volume: %lld is negative", (long long)obs->volume);
    if ((double)obs->volume > HS_VALIDATE_COUNT_MAX)
        return hs_error_set(error, HS_ERR_VALIDATION, "volume: %lld is above %lld for a count",
                            (long long)obs->volume, (long long)HS_VALIDATE_COUNT_MAX);
    return HS_OK;
}

hs_err hs_validate_indicator(Healthsignals__V1__IndicatorObservation *obs, hs_error *error)
{
    if (!obs)
        return hs_error_set(error, HS_ERR_VALIDATION, "indicator observation is missing");
    hs_err err = check_observation_identity("indicator", obs->indicator, obs->scope, obs->period, error);
    if (err != HS_OK)
        return err;
    err = hs_validate_indicator_figures(obs, error);
    if (err == HS_OK)
        err = check_provenance(obs->quality_flags, obs->n_quality_flags, obs->source, error);
    return err;
}

hs_err hs_validate_capacity(Healthsignals__V1__CapacityObservation *obs, hs_error *error)
{
    if (!obs)
        return hs_error_set(error, HS_ERR_VALIDATION, "capacity observation is missing");
    hs_err err = check_observation_identity("resource", obs->resource, obs->scope, obs->period, error);
    if (err != HS_OK)
        return err;
    if (obs->_available_case != HEALTHSIGNALS__V1__CAPACITY_OBSERVATION___AVAILABLE_AVAILABLE)
        return hs_error_set(error, HS_ERR_VALIDATION, "available is required");
    err = check_count("available", obs->available, error);
    if (err == HS_OK)
        err = check_count("occupied", obs->occupied, error);
    if (err == HS_OK && obs->_normed_case == HEALTHSIGNALS__V1__CAPACITY_OBSERVATION___NORMED_NORMED)
        err = check_count("normed", obs->normed, error);
    if (err == HS_OK)
        err = check_provenance(obs->quality_flags, obs->n_quality_flags, obs->source, error);
    return err;
}

hs_err hs_validate_budget_line(Healthsignals__V1__BudgetLine *line, hs_error *error)
{
    if (!line)
        return hs_error_set(error, HS_ERR_VALIDATION, "budget line is missing");
    hs_err err = check_code("unit", line->unit, HS_VALIDATE_CODE_MAX, error);
    if (err == HS_OK)
        err = check_text("line", line->line, HS_VALIDATE_LINE_MAX, true, error);
    if (err != HS_OK)
        return err;
    if (line->year < HS_PERIOD_YEAR_MIN || line->year > HS_PERIOD_YEAR_MAX)
        return hs_error_set(error, HS_ERR_VALIDATION, "year: %d is outside %d-%d", (int)line->year,
                            HS_PERIOD_YEAR_MIN, HS_PERIOD_YEAR_MAX);
    if (line->kind == HEALTHSIGNALS__V1__BUDGET_KIND__BUDGET_KIND_UNSPECIFIED)
        return hs_error_set(error, HS_ERR_VALIDATION, "kind is required");
    if ((err = check_enum("kind", &healthsignals__v1__budget_kind__descriptor, (int)line->kind, error)))
        return err;
    return check_text("source", line->source, HS_VALIDATE_SOURCE_MAX, false, error);
}

static hs_err check_service(const char *service, hs_error *error)
{
    if (!service || !*service)
        return hs_error_set(error, HS_ERR_VALIDATION, "service is required");
    size_t len = strnlen(service, HS_VALIDATE_SERVICE_MAX + 1);
    bool ok = len <= HS_VALIDATE_SERVICE_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = (service[i] >= 'a' && service[i] <= 'z') || service[i] == '-';
    if (!ok)
        return hs_error_set(error, HS_ERR_VALIDATION,
                            "service: '%.*s' must be 1-%d lowercase letters a-z or '-'", QUOTE_MAX, service,
                            HS_VALIDATE_SERVICE_MAX);
    return HS_OK;
}

/* The kinds that compare a value with a target in one direction, and so need to know which is better. */
static bool kind_needs_direction(Healthsignals__V1__RuleKind kind)
{
    switch (kind) {
    case HEALTHSIGNALS__V1__RULE_KIND__BASELINE_BAND:
    case HEALTHSIGNALS__V1__RULE_KIND__BASELINE_MARGIN:
    case HEALTHSIGNALS__V1__RULE_KIND__GROWTH:
    case HEALTHSIGNALS__V1__RULE_KIND__THRESHOLD:
    case HEALTHSIGNALS__V1__RULE_KIND__BASE_YEAR_GROWTH:
    case HEALTHSIGNALS__V1__RULE_KIND__DEVIATION_FROM_NATIONAL: return true;
    default: return false;
    }
}

/* A rule's numeric parameter: finite (and >= 0 when `non_negative`) and within a plausible magnitude. */
static hs_err check_rule_number(const char *field, double value, bool non_negative, hs_error *error)
{
    hs_err err = check_number(field, value, non_negative, error);
    if (err == HS_OK && fabs(value) > HS_VALIDATE_RULE_NUMBER_MAX) {
        char buf[32];
        err = hs_error_set(error, HS_ERR_VALIDATION, "%s: %s is beyond +-%g", field, number_text(value, buf),
                           HS_VALIDATE_RULE_NUMBER_MAX);
    }
    return err;
}

/* A listed period and where it was listed, for finding the ones listed twice by sorting. */
typedef struct listed_period {
    hs_period period;
    size_t at;
} listed_period;

static int compare_listed(const void *a, const void *b)
{
    const listed_period *x = a, *y = b;
    if (x->period.kind != y->period.kind)
        return x->period.kind < y->period.kind ? -1 : 1;
    if (x->period.year != y->period.year)
        return x->period.year < y->period.year ? -1 : 1;
    if (x->period.index != y->period.index)
        return x->period.index < y->period.index ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

/* baseline_periods: at most HS_VALIDATE_PERIODS_MAX, each a period, none listed twice. Sorted, so that
 * 4000 periods cost a few thousand comparisons rather than eight million. */
static hs_err check_baseline_periods(const Healthsignals__V1__Rule *rule, hs_error *error)
{
    size_t n = rule->n_baseline_periods;
    if (n == 0)
        return HS_OK;
    if (n > HS_VALIDATE_PERIODS_MAX)
        return hs_error_set(error, HS_ERR_TOO_LARGE, "baseline_periods: %zu periods, at most %d", n,
                            HS_VALIDATE_PERIODS_MAX);
    listed_period *listed = malloc(n * sizeof *listed);
    if (!listed)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory checking baseline_periods");
    hs_err err = HS_OK;
    for (size_t i = 0; err == HS_OK && i < n; i++) {
        char field[40];
        bool given;
        snprintf(field, sizeof field, "baseline_periods[%zu]", i);
        err = check_period(field, rule->baseline_periods[i], true, &given, &listed[i].period, error);
        listed[i].at = i;
    }
    if (err == HS_OK)
        qsort(listed, n, sizeof *listed, compare_listed);
    for (size_t i = 1; err == HS_OK && i < n; i++)
        if (listed[i].period.kind == listed[i - 1].period.kind &&
            listed[i].period.year == listed[i - 1].period.year &&
            listed[i].period.index == listed[i - 1].period.index)
            err = hs_error_set(error, HS_ERR_VALIDATION, "baseline_periods[%zu]: '%.*s' is listed twice",
                               listed[i].at, QUOTE_MAX, rule->baseline_periods[listed[i].at]);
    free(listed);
    return err;
}

static hs_err check_rule_periods(const Healthsignals__V1__Rule *rule, hs_error *error)
{
    bool from_given, to_given, given;
    hs_period from, to, period;
    hs_err err = check_period("baseline_from", rule->baseline_from, false, &from_given, &from, error);
    if (err == HS_OK)
        err = check_period("baseline_to", rule->baseline_to, false, &to_given, &to, error);
    if (err != HS_OK)
        return err;
    if (from_given != to_given)
        return hs_error_set(error, HS_ERR_VALIDATION, "%s is required with %s",
                            from_given ? "baseline_to" : "baseline_from",
                            from_given ? "baseline_from" : "baseline_to");
    if (from_given && from.kind != to.kind)
        return hs_error_set(error, HS_ERR_VALIDATION,
                            "baseline_to: '%s' is not the same kind of period as '%s'", rule->baseline_to,
                            rule->baseline_from);
    if (from_given && hs_period_compare(&from, &to) > 0)
        return hs_error_set(error, HS_ERR_VALIDATION, "baseline_from: '%s' is after baseline_to '%s'",
                            rule->baseline_from, rule->baseline_to);
    if (from_given && hs_period_ordinal(&to) - hs_period_ordinal(&from) + 1 > HS_VALIDATE_PERIODS_MAX)
        return hs_error_set(error, HS_ERR_TOO_LARGE, "baseline_from..baseline_to: more than %d periods",
                            HS_VALIDATE_PERIODS_MAX);
    err = check_period("base_period", rule->base_period, false, &given, &period, error);
    if (err == HS_OK)
        err = check_baseline_periods(rule, error);
    return err;
}

static hs_err check_level_thresholds(const Healthsignals__V1__Rule *rule, hs_error *error)
{
    char a[32], b[32];
    size_t n = rule->n_level_thresholds_pct;
    if (n == 0)
        return HS_OK; /* the defaults 85, 92, 97 */
    if (n != 3)
        return hs_error_set(error, HS_ERR_VALIDATION,
                            "level_thresholds_pct: %zu values, expected 3 (levels 2, 3, 4)", n);
    for (size_t i = 0; i < n; i++) {
        double pct = rule->level_thresholds_pct[i];
        if (!isfinite(pct) || pct < 0 || pct > 1000)
            return hs_error_set(error, HS_ERR_VALIDATION, "level_thresholds_pct[%zu]: %s is outside 0-1000",
                                i, number_text(pct, a));
        if (i > 0 && pct <= rule->level_thresholds_pct[i - 1])
            return hs_error_set(error, HS_ERR_VALIDATION,
                                "level_thresholds_pct[%zu]: %s is not above the previous level's %s", i,
                                number_text(pct, a), number_text(rule->level_thresholds_pct[i - 1], b));
    }
    return HS_OK;
}

/* A rule's labels go onto its alerts as they are, and Alertmanager refuses an alert whose label names are
 * not Prometheus names (400, "invalid label name"): [a-zA-Z_][a-zA-Z0-9_]*, without the "__" that Prometheus
 * keeps for itself. Values must be UTF-8. */
static hs_err check_labels(const Healthsignals__V1__Rule *rule, hs_error *error)
{
    if (rule->n_labels > HS_VALIDATE_LABELS_MAX)
        return hs_error_set(error, HS_ERR_TOO_LARGE, "labels: %zu labels, at most %d", rule->n_labels,
                            HS_VALIDATE_LABELS_MAX);
    for (size_t i = 0; i < rule->n_labels; i++) {
        const char *name = rule->labels[i]->key ? rule->labels[i]->key : "";
        const char *value = rule->labels[i]->value ? rule->labels[i]->value : "";
        size_t len = strnlen(name, HS_VALIDATE_CODE_MAX + 1);
        if (len == 0)
            return hs_error_set(error, HS_ERR_VALIDATION, "labels: a label has an empty name");
        if (len > HS_VALIDATE_CODE_MAX)
            return hs_error_set(error, HS_ERR_TOO_LARGE, "labels: '%.*s...' is longer than %d bytes",
                                QUOTE_MAX, name, HS_VALIDATE_CODE_MAX);
        bool ok = !(name[0] >= '0' && name[0] <= '9');
        for (size_t k = 0; ok && k < len; k++)
            ok = (name[k] >= 'a' && name[k] <= 'z') || (name[k] >= 'A' && name[k] <= 'Z') ||
                 (name[k] >= '0' && name[k] <= '9') || name[k] == '_';
        if (!ok)
            return hs_error_set(
                error, HS_ERR_VALIDATION,
                "labels: '%.*s' is not a label name Alertmanager accepts: letters, digits and "
                "'_', not starting with a digit",
                QUOTE_MAX, name);
        if (strncmp(name, "__", 2) == 0)
            return hs_error_set(error, HS_ERR_VALIDATION,
                                "labels: '%.*s' starts with '__', which Prometheus reserves", QUOTE_MAX,
                                name);
        if (strnlen(value, HS_VALIDATE_LABEL_MAX + 1) > HS_VALIDATE_LABEL_MAX)
            return hs_error_set(error, HS_ERR_TOO_LARGE, "labels: the value of '%s' is longer than %d bytes",
                                name, HS_VALIDATE_LABEL_MAX);
        if (!hs_validate_utf8(value, strlen(value)))
            return hs_error_set(error, HS_ERR_VALIDATION, "labels: the value of '%s' is not valid UTF-8",
                                name);
        for (size_t k = 0; k < i; k++)
            if (strcmp(name, rule->labels[k]->key) == 0)
                return hs_error_set(error, HS_ERR_VALIDATION, "labels: '%s' appears twice", name);
    }
    return HS_OK;
}

hs_err hs_validate_rule(Healthsignals__V1__Rule *rule, hs_error *error)
{
    if (!rule)
        return hs_error_set(error, HS_ERR_VALIDATION, "rule is missing");
    hs_err err = check_code("id", rule->id, HS_VALIDATE_CODE_MAX, error);
    if (err == HS_OK)
        err = check_service(rule->service, error);
    if (err == HS_OK)
        err = check_code("subject", rule->subject, HS_VALIDATE_CODE_MAX, error);
    if (err != HS_OK)
        return err;
    if (rule->kind == HEALTHSIGNALS__V1__RULE_KIND__RULE_KIND_UNSPECIFIED)
        return hs_error_set(error, HS_ERR_VALIDATION, "kind is required");
    if ((err = check_enum("kind", &healthsignals__v1__rule_kind__descriptor, (int)rule->kind, error)))
        return err;
    if ((err =
             check_enum("direction", &healthsignals__v1__direction__descriptor, (int)rule->direction, error)))
        return err;
    if (rule->direction == HEALTHSIGNALS__V1__DIRECTION__DIRECTION_UNSPECIFIED &&
        kind_needs_direction(rule->kind))
        return hs_error_set(error, HS_ERR_VALIDATION, "direction is required for kind %s",
                            hs_rule_kind_name(rule->kind));
    if ((err = check_enum("severity", &healthsignals__v1__severity__descriptor, (int)rule->severity, error)))
        return err;
    if (rule->n_scopes > HS_VALIDATE_SCOPES_MAX)
        return hs_error_set(error, HS_ERR_TOO_LARGE, "scopes: %zu scopes, at most %d", rule->n_scopes,
                            HS_VALIDATE_SCOPES_MAX);
    for (size_t i = 0; i < rule->n_scopes; i++) {
        char field[40];
        snprintf(field, sizeof field, "scopes[%zu]", i);
        err = normalize_scope(rule->scopes[i], field, error);
        if (err != HS_OK)
            return err;
    }
    if (rule->for_periods > HS_VALIDATE_FOR_PERIODS_MAX)
        return hs_error_set(error, HS_ERR_VALIDATION, "for_periods: %u is more than %d",
                            (unsigned)rule->for_periods, HS_VALIDATE_FOR_PERIODS_MAX);
    if (rule->reference_years > HS_VALIDATE_REFERENCE_YEARS_MAX)
        return hs_error_set(error, HS_ERR_VALIDATION, "reference_years: %u is more than %d",
                            (unsigned)rule->reference_years, HS_VALIDATE_REFERENCE_YEARS_MAX);
    err = check_rule_periods(rule, error);
    if (err == HS_OK)
        err = check_rule_number("band", rule->band, true, error);
    if (err == HS_OK)
        err = check_rule_number("margin", rule->margin, true, error);
    if (err == HS_OK)
        err = check_rule_number("hysteresis", rule->hysteresis, true, error);
    if (err == HS_OK)
        err = check_rule_number("growth_pct", rule->growth_pct, false, error);
    if (err == HS_OK && rule->_baseline_value_case == HEALTHSIGNALS__V1__RULE___BASELINE_VALUE_BASELINE_VALUE)
        err = check_rule_number("baseline_value", rule->baseline_value, false, error);
    if (err == HS_OK && rule->_threshold_case == HEALTHSIGNALS__V1__RULE___THRESHOLD_THRESHOLD)
        err = check_rule_number("threshold", rule->threshold, false, error);
    if (err == HS_OK)
        err = check_level_thresholds(rule, error);
    if (err == HS_OK && rule->alert_level > 4)
        err = hs_error_set(error, HS_ERR_VALIDATION, "alert_level: %u is not a level 1-4 (0 = 3)",
                           (unsigned)rule->alert_level);
    if (err == HS_OK)
        err = check_text("summary", rule->summary, HS_VALIDATE_SUMMARY_MAX, false, error);
    if (err == HS_OK)
        err = check_text("description", rule->description, HS_VALIDATE_DESCRIPTION_MAX, false, error);
    if (err == HS_OK)
        err = check_labels(rule, error);
    return err;
}

hs_err hs_validate_alert(Healthsignals__V1__Alert *alert, hs_error *error)
{
    if (!alert)
        return hs_error_set(error, HS_ERR_VALIDATION, "alert is missing");
    const char *fp = alert->fingerprint ? alert->fingerprint : "";
    if (!*fp)
        return hs_error_set(error, HS_ERR_VALIDATION, "fingerprint is required");
    if (!hs_alert_fingerprint_valid(fp))
        return hs_error_set(error, HS_ERR_VALIDATION,
                            "fingerprint: '%.*s' is not 16 lowercase hex digits (hs_alert_fingerprint)",
                            QUOTE_MAX, fp);
    if (alert->state == HEALTHSIGNALS__V1__ALERT_STATE__ALERT_STATE_UNSPECIFIED)
        return hs_error_set(error, HS_ERR_VALIDATION, "state is required");
    hs_err err = check_enum("state", &healthsignals__v1__alert_state__descriptor, (int)alert->state, error);
    if (err == HS_OK)
        err = check_enum("severity", &healthsignals__v1__severity__descriptor, (int)alert->severity, error);
    if (err != HS_OK)
        return err;
    err = check_code("rule", alert->rule, HS_VALIDATE_CODE_MAX, error);
    if (err == HS_OK && alert->scope)
        err = normalize_scope(alert->scope, "scope", error);
    if (err == HS_OK && alert->subject && *alert->subject)
        err = check_code("subject", alert->subject, HS_VALIDATE_CODE_MAX, error);
    bool given;
    hs_period period;
    if (err == HS_OK)
        err = check_period("period", alert->period, false, &given, &period, error);
    if (err == HS_OK)
        err = check_number("value", alert->value, false, error);
    if (err == HS_OK)
        err = check_number("threshold", alert->threshold, false, error);
    if (err == HS_OK)
        err = check_flags(alert->quality_flags, alert->n_quality_flags, error);
    return err;
}

hs_err hs_validate_message(ProtobufCMessage *msg, hs_error *error)
{
    if (!msg)
        return hs_error_set(error, HS_ERR_VALIDATION, "message is missing");
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    if (d == &healthsignals__v1__indicator_observation__descriptor)
        return hs_validate_indicator((Healthsignals__V1__IndicatorObservation *)msg, error);
    if (d == &healthsignals__v1__capacity_observation__descriptor)
        return hs_validate_capacity((Healthsignals__V1__CapacityObservation *)msg, error);
    if (d == &healthsignals__v1__budget_line__descriptor)
        return hs_validate_budget_line((Healthsignals__V1__BudgetLine *)msg, error);
    if (d == &healthsignals__v1__rule__descriptor)
        return hs_validate_rule((Healthsignals__V1__Rule *)msg, error);
    if (d == &healthsignals__v1__alert__descriptor)
        return hs_validate_alert((Healthsignals__V1__Alert *)msg, error);
    if (d == &healthsignals__v1__scope__descriptor)
        return hs_scope_normalize((Healthsignals__V1__Scope *)msg, error);
    return hs_error_set(error, HS_ERR_INTERNAL, "no validation for message type %s",
                        d && d->name ? d->name : "(unknown)");
}

hs_err hs_validate_size(size_t bytes, hs_error *error)
{
    if (bytes > (size_t)HS_MAX_RECORD_BYTES)
        return hs_error_set(error, HS_ERR_TOO_LARGE, "record of %zu bytes exceeds the limit of %d bytes",
                            bytes, HS_MAX_RECORD_BYTES);
    return HS_OK;
}
