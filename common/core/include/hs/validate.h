/* The one validation of healthsignals' contracts, shared by hsctl, every service and the dead-letter path
 * (docs/design.md §7): required fields, code syntax, scopes, periods, value ranges per unit, sizes.
 * A message that passes is safe to key, partition and calculate with; one that fails goes to hs.dlq.v1 with
 * the reason, which names the field ("value: 130 is above 100 for PERCENT"). Validation also normalises
 * scopes in place (region names to DST codes, the kind inferred), so that outputs always carry codes.
 */
#ifndef HS_VALIDATE_H
#define HS_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "healthsignals/v1/alert.pb-c.h"
#include "healthsignals/v1/budget.pb-c.h"
#include "healthsignals/v1/capacity.pb-c.h"
#include "healthsignals/v1/common.pb-c.h"
#include "healthsignals/v1/indicator.pb-c.h"
#include "healthsignals/v1/rule.pb-c.h"
#include "hs/err.h"

/* Limits. A record value larger than HS_MAX_RECORD_BYTES is refused before decoding. Exceeding a length or
 * count limit is HS_ERR_TOO_LARGE; every other failure is HS_ERR_VALIDATION. */
#define HS_MAX_RECORD_BYTES      (512 * 1024)
#define HS_VALIDATE_CODE_MAX     128 /* indicator, resource, rule id, budget unit: bytes */
#define HS_VALIDATE_FLAG_MAX     64  /* one quality flag: bytes */
#define HS_VALIDATE_FLAGS_MAX    16  /* quality flags per message */
#define HS_VALIDATE_SOURCE_MAX   512 /* source: bytes of UTF-8 */
#define HS_VALIDATE_HOSPITAL_MAX 32  /* hospital code: characters [A-Za-z0-9._-] */
#define HS_VALIDATE_LINE_MAX     128 /* budget line text: bytes of UTF-8 */
#define HS_VALIDATE_SERVICE_MAX  32  /* service name: [a-z-] */

/* The range of each unit (hs_unit_check_value); why each bound, in validate.c. The upper bounds are far
 * above any real figure of the unit and keep every sum and product the services compute finite. Capacity
 * counts (available, occupied, normed) and volumes are counts: at most HS_VALIDATE_COUNT_MAX. */
#define HS_VALIDATE_PERCENT_MAX 100.0 /* PERCENT 0..100 */
#define HS_VALIDATE_DAYS_MAX    1e9   /* DAYS 0..1e9 */
#define HS_VALIDATE_WEEKS_MAX   1e8   /* WEEKS 0..1e8 */
#define HS_VALIDATE_COUNT_MAX   1e12  /* COUNT 0..1e12; capacity counts; volume */
#define HS_VALIDATE_FTE_MAX     1e8   /* FTE 0..1e8 */
#define HS_VALIDATE_DKK_MAX     1e15  /* DKK -1e15..1e15 */
#define HS_VALIDATE_RATIO_MAX   1e9   /* RATIO 0..1e9 */
#define HS_VALIDATE_INDEX_MAX   1e9   /* INDEX 0..1e9 */
#define HS_VALIDATE_RATE_MAX    1e9   /* RATE 0..1e9 */

/* Bounds of a rule: beyond them a rule is a mistake (or an attack), not a target, and refusing it keeps
 * every service's work per rule small. */
/* |band|, |margin|, |hysteresis|, |growth_pct|, |baseline_value|, |threshold|: the widest unit's range */
#define HS_VALIDATE_RULE_NUMBER_MAX     1e15
#define HS_VALIDATE_FOR_PERIODS_MAX     1000 /* for_periods */
#define HS_VALIDATE_PERIODS_MAX         4000 /* baseline_periods, and periods in baseline_from..baseline_to */
#define HS_VALIDATE_REFERENCE_YEARS_MAX 100  /* reference_years */
#define HS_VALIDATE_SCOPES_MAX          256  /* scopes of one rule */
#define HS_VALIDATE_LABELS_MAX          32   /* labels of one rule */
#define HS_VALIDATE_LABEL_MAX           256  /* bytes of a label's value (names: HS_VALIDATE_CODE_MAX) */
#define HS_VALIDATE_SUMMARY_MAX         1024 /* bytes of UTF-8 */
#define HS_VALIDATE_DESCRIPTION_MAX     8192 /* bytes of UTF-8 */

/* --- Messages ------------------------------------------------------------------------------------------ */
/* Each checks one message and returns HS_OK, or the first failure with its reason in `error` (which may be
 * NULL). They normalise scopes in place (see hs_scope_normalize): the message must own its strings through
 * malloc, as one decoded with protobuf-c's default allocator or built with malloc/strdup does, so that
 * protobuf_c_message_free_unpacked(msg, NULL) frees the rewritten code. Nothing else is changed.
 * An enum field holding a number this version does not know (proto3 enums are open, so a message written
 * against a newer schema decodes with it) fails: "unit: 42 is unknown to this version of
 * healthsignals.v1.Unit" — every enum of the inputs decides a range, a direction, an identity or a rule, so
 * nothing may compute on one it cannot interpret. */

/* Required: indicator (code syntax), scope, period (hs_period_parse), unit; value finite and within the
 * unit's range (hs_unit_check_value); volume 0..HS_VALIDATE_COUNT_MAX when present; at most 16 quality flags
 * of flag syntax; source at most 512 bytes of UTF-8. */
hs_err hs_validate_indicator(Healthsignals__V1__IndicatorObservation *obs, hs_error *error);

/* The figures of an indicator observation alone: unit known, value within its range, volume (when present)
 * 0..HS_VALIDATE_COUNT_MAX — part of hs_validate_indicator, and what a calculation checks again before it
 * keeps a fact, so that its sums stay finite whichever path the fact came by. */
hs_err hs_validate_indicator_figures(const Healthsignals__V1__IndicatorObservation *obs, hs_error *error);

/* Required: resource (code syntax), scope, period, available (present); available, occupied and (when
 * present) normed finite and 0..HS_VALIDATE_COUNT_MAX; quality flags and source as for indicators. */
hs_err hs_validate_capacity(Healthsignals__V1__CapacityObservation *obs, hs_error *error);

/* Required: unit (code syntax: a lowercase slug), line (1..128 bytes of UTF-8), year 1900..2199, kind;
 * source as for indicators. The amount may be any int64 (income is negative). */
hs_err hs_validate_budget_line(Healthsignals__V1__BudgetLine *line, hs_error *error);

/* Required: id and subject (code syntax), service ([a-z-]{1,32}; which services exist is the registry's
 * concern, not this module's), kind. Direction is required for the kinds that compare a value with a target
 * in one direction: BASELINE_BAND, BASELINE_MARGIN, GROWTH, THRESHOLD, BASE_YEAR_GROWTH and
 * DEVIATION_FROM_NATIONAL. At most 256 scopes, valid (normalised in place); baseline_from, baseline_to,
 * base_period and baseline_periods parse as periods when given, baseline_from and baseline_to together, of
 * one kind, in order and at most 4000 periods apart; at most 4000 baseline_periods, none listed twice;
 * band, margin and hysteresis finite and >= 0; growth_pct, baseline_value and threshold finite; each of
 * these within +-1e15; for_periods at most 1000, reference_years at most 100; level_thresholds_pct empty or
 * exactly 3 values, finite, within 0..1000 and strictly increasing; alert_level 0..4; severity and direction
 * known values; summary (at most 1024 bytes) and description (8192) valid UTF-8; at most 32 labels, named
 * as Alertmanager requires ([a-zA-Z_][a-zA-Z0-9_]*, at most 128 bytes, not starting with "__"), each once,
 * with UTF-8 values of at most 256 bytes. The work is linear in the rule's size. */
hs_err hs_validate_rule(Healthsignals__V1__Rule *rule, hs_error *error);

/* Required: fingerprint (16 lowercase hex digits, as hs_alert_fingerprint writes every service's), state
 * (FIRING or RESOLVED), rule (code syntax).
 * When present: scope valid (normalised), period parses, subject of code syntax, value and threshold
 * finite, quality flags as for indicators. */
hs_err hs_validate_alert(Healthsignals__V1__Alert *alert, hs_error *error);

/* Dispatches on msg->descriptor to the validator of that message type (IndicatorObservation,
 * CapacityObservation, BudgetLine, Rule, Alert, or a bare Scope). A NULL message is HS_ERR_VALIDATION; a
 * message type without a validator is HS_ERR_INTERNAL (a bug in the caller). */
hs_err hs_validate_message(ProtobufCMessage *msg, hs_error *error);

/* HS_ERR_TOO_LARGE when a record value of `bytes` bytes exceeds HS_MAX_RECORD_BYTES, else HS_OK. */
hs_err hs_validate_size(size_t bytes, hs_error *error);

/* --- Scopes -------------------------------------------------------------------------------------------- */

/* Normalises `scope` in place. Accepted: region codes "1081".."1085" and region names, Danish or ASCII,
 * case-insensitive, with or without "Region " (Nordjylland, Midtjylland, Syddanmark, Hovedstaden,
 * Sjælland/Sjaelland); "DK", "Hele landet" or "Danmark" for the nation; a kind of SCOPE_KIND_UNSPECIFIED is
 * inferred from those (nation -> NATIONAL, region -> REGION). Code rules by kind: REGION a region; NATIONAL
 * "DK" (an empty code is taken as DK); HOSPITAL 1..32 characters [A-Za-z0-9._-]; MUNICIPALITY a 3-digit DST
 * municipality code 101..860. On success the kind is set and the code is canonical ("Sjaelland" ->
 * "1085"): a changed code is a fresh strdup and the old one is freed unless it is protobuf-c's static empty
 * string. On failure the scope is unchanged. HS_ERR_NOMEM when the copy fails. */
hs_err hs_scope_normalize(Healthsignals__V1__Scope *scope, hs_error *error);

/* Parses CSV or command-line text into `out`: "1084", "DK", "Sjaelland", "Region Hovedstaden", or
 * KIND:CODE with KIND one of REGION, NATIONAL, HOSPITAL, MUNICIPALITY, case-insensitive ("REGION:1084",
 * "HOSPITAL:ABC123", "MUNICIPALITY:101"); then normalises as above. `out` is initialised by the call; on
 * success out->code is malloc'd and owned by the caller (free() it, or let the enclosing message's
 * protobuf_c_message_free_unpacked free it); on failure out->code is protobuf-c's static empty string
 * (nothing to free). */
hs_err hs_scope_parse(const char *text, Healthsignals__V1__Scope *out, hs_error *error);

/* The region's Danish name for a canonical region code ("1085" -> "Sjælland"), or NULL for anything else.
 * The string is static. */
const char *hs_region_name(const char *code);

/* --- Units and values ---------------------------------------------------------------------------------- */

/* HS_OK when `value` is allowed in `unit`: finite, and within the unit's range (HS_VALIDATE_*_MAX above:
 * PERCENT 0..100; DAYS, WEEKS, COUNT, FTE, RATIO, INDEX and RATE from 0; DKK negative too).
 * UNIT_UNSPECIFIED fails with "unit is required", a unit number this version does not know (enums are open:
 * a newer schema's) with "N is unknown to this version of healthsignals.v1.Unit". The reason does not name
 * the field ("130 is above 100 for PERCENT"): callers prefix it. */
hs_err hs_unit_check_value(Healthsignals__V1__Unit unit, double value, hs_error *error);

/* The range of `unit` into *min and *max; false for UNIT_UNSPECIFIED or a number outside the enum. */
bool hs_unit_range(Healthsignals__V1__Unit unit, double *min, double *max);

/* Parses a unit by its enum name, case-insensitive ("PERCENT", "days"), or "%" for PERCENT. False (and
 * `out` untouched) for anything else, UNIT_UNSPECIFIED included. */
bool hs_unit_parse(const char *text, Healthsignals__V1__Unit *out);

/* The enum name of `unit` ("PERCENT"), or NULL for a number outside the enum. The string is static. */
const char *hs_unit_name(Healthsignals__V1__Unit unit);

/* The enum name of a rule kind ("BASELINE_BAND"), or "?" for a number outside the enum. Static. */
const char *hs_rule_kind_name(Healthsignals__V1__RuleKind kind);

/* --- Building blocks ----------------------------------------------------------------------------------- */

/* Checks `code` against the code syntax of indicators, resources, rule ids and budget unit slugs:
 * 1..HS_VALIDATE_CODE_MAX bytes of lowercase ASCII letters, digits, '.', '-' and '_', starting with a
 * letter, with no empty dot-separated segment ("a..b", "a."). `field` names it in the reason ("indicator is
 * required", "indicator: 'Foo' ..."). NULL counts as empty. */
hs_err hs_validate_code(const char *field, const char *code, hs_error *error);

/* True when the `len` bytes at `text` are well-formed UTF-8 (no overlong forms, surrogates or code points
 * above U+10FFFF). */
bool hs_validate_utf8(const char *text, size_t len);

#endif
