/* The alertmanager sink's mapping: one Alert of hs.alerts.v1 as one alert of Alertmanager's API v2
 * (POST /api/v2/alerts), as JSON. Pure: the wall clock and the settings come in as arguments, nothing is
 * read or written elsewhere, so the unit tests (tests/unit/test_alertmanager_map.c) pin what Alertmanager
 * receives. When the sink sends what is the sink's (sink.c); what it sends is this file's.
 */
#ifndef ALERTMANAGER_MAP_H
#define ALERTMANAGER_MAP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "healthsignals/v1/alert.pb-c.h"
#include "hs/err.h"

/* Buffer size of a mapped label name: names are at most 128 bytes by validation; a mapped one at most two
 * bytes longer, plus a collision suffix. */
#define AM_LABEL_NAME_MAX 160

typedef struct am_map_options {
    int64_t now_ms;            /* the wall clock, milliseconds since the epoch */
    int64_t firing_for_ms;     /* a FIRING alert is sent with endsAt = now + this (> 0) */
    const char *generator_url; /* NULL or "": no generatorURL; "{fingerprint}" and "{rule}" are replaced */
} am_map_options;

/* Writes `name` as a label name Alertmanager accepts ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__"):
 * every other byte becomes '_', a name that is empty, starts with a digit or starts with "__" gets the
 * prefix "x_". A valid name is written unchanged. Truncated to `size` - 1 bytes. */
void am_map_label_name(const char *name, char *out, size_t size);

/* `text` as valid UTF-8: every byte that does not start a well-formed sequence becomes U+FFFD. Returns a
 * malloc'd string (the caller frees it), NULL when out of memory. */
char *am_map_utf8(const char *text);

/* Parses an RFC 3339 date-time ("2023-07-01T00:00:00Z", "2023-07-01T02:00:00.5+02:00") into milliseconds
 * since the epoch. False when `text` is not one. */
bool am_map_time_parse(const char *text, int64_t *ms);

/* Writes `ms` as RFC 3339 UTC with milliseconds ("2023-07-01T00:00:00.000Z"). */
void am_map_time_format(int64_t ms, char out[40]);

/* The Alertmanager alert of `alert`, a new JSON object (the caller owns it):
 *   labels       the alert's labels, names mapped by am_map_label_name (a name that maps onto one already
 *                present gets "_2", "_3", ...), values made valid UTF-8; when the alert carries no
 *                "alertname", its rule is added as one (Alertmanager groups by it)
 *   annotations  the alert's annotations, mapped the same way
 *   startsAt     the alert's starts_at; now when it has none or it does not parse
 *   endsAt       FIRING: now + firing_for_ms, so that Alertmanager keeps it active until the next resend
 *                and resolves it by itself if the sink goes silent; RESOLVED: the alert's ends_at, or now
 *                when it has none, is in the future or does not parse — never before startsAt (which
 *                Alertmanager refuses)
 *   generatorURL the option's template with {fingerprint} and {rule} replaced, when given
 * NULL with `error` set: HS_ERR_VALIDATION for an alert neither FIRING nor RESOLVED, HS_ERR_NOMEM. */
json_t *am_map_alert(const Healthsignals__V1__Alert *alert, const am_map_options *options, hs_error *error);

/* True when the alert would be shown active by Alertmanager: FIRING. */
bool am_map_is_firing(const Healthsignals__V1__Alert *alert);

#endif
