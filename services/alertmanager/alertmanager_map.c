/* The alertmanager sink's mapping of an Alert to Alertmanager's API v2 JSON (alertmanager_map.h): label
 * names made valid rather than dropped, text made valid UTF-8, and the startsAt/endsAt that say to
 * Alertmanager whether the alert is active (endsAt in the future) or resolved (endsAt in the past).
 */
#include "alertmanager_map.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hs/event.h"
#include "hs/text.h"
#include "hs/validate.h"

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

void am_map_label_name(const char *name, char *out, size_t size)
{
    if (size == 0)
        return;
    size_t n = 0;
    if (!*name || !name_char(name[0], true) || strncmp(name, "__", 2) == 0)
        for (const char *p = "x_"; *p && n + 1 < size; p++)
            out[n++] = *p;
    for (const char *p = name; *p && n + 1 < size; p++)
        out[n++] = name_char(*p, false) ? *p : '_';
    out[n] = '\0';
}

/* The length of the well-formed UTF-8 sequence at `s` (of `left` bytes), or 0 when it is not one. */
static size_t utf8_sequence(const unsigned char *s, size_t left)
{
    size_t len = s[0] < 0x80             ? 1
                 : (s[0] & 0xE0) == 0xC0 ? 2
                 : (s[0] & 0xF0) == 0xE0 ? 3
                 : (s[0] & 0xF8) == 0xF0 ? 4
                                         : 0;
    if (len == 0 || len > left)
        return 0;
    return hs_validate_utf8((const char *)s, len) ? len : 0;
}

char *am_map_utf8(const char *text)
{
    size_t len = strlen(text);
    char *out = malloc(len * 3 + 1); /* each bad byte becomes the three bytes of U+FFFD */
    if (!out)
        return NULL;
    size_t n = 0;
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_sequence(s + i, len - i);
        if (k) {
            memcpy(out + n, s + i, k);
            n += k;
            i += k;
        } else {
            memcpy(out + n, "\xEF\xBF\xBD", 3);
            n += 3;
            i++;
        }
    }
    out[n] = '\0';
    return out;
}

/* The number written by the `n` decimal digits at `p` (checked by hs_event_time_valid). */
static int digits(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (p[i] - '0');
    return v;
}

bool am_map_time_parse(const char *text, int64_t *ms)
{
    /* hs_event_time_valid holds the text to YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM). */
    if (!text || !hs_event_time_valid(text))
        return false;
    struct tm tm = {.tm_year = digits(text, 4) - 1900,
                    .tm_mon = digits(text + 5, 2) - 1,
                    .tm_mday = digits(text + 8, 2),
                    .tm_hour = digits(text + 11, 2),
                    .tm_min = digits(text + 14, 2),
                    .tm_sec = digits(text + 17, 2)};
    int64_t result = (int64_t)timegm(&tm) * 1000;
    const char *p = text + 19;
    if (*p == '.') {
        int64_t scale = 100;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            result += (*p - '0') * scale;
    }
    if (*p == '+' || *p == '-') {
        int64_t offset_ms = ((int64_t)digits(p + 1, 2) * 60 + digits(p + 4, 2)) * 60000;
        result += *p == '+' ? -offset_ms : offset_ms;
    }
    *ms = result;
    return true;
}

void am_map_time_format(int64_t ms, char out[40])
{
    time_t seconds = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&seconds, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%03dZ", (int)(ms % 1000));
}

bool am_map_is_firing(const Healthsignals__V1__Alert *alert)
{
    return alert->state == HEALTHSIGNALS__V1__ALERT_STATE__FIRING;
}

/* Sets `name` (mapped) to `value` (made UTF-8) in `object`, with a numbered suffix when the mapped name is
 * taken already. */
static bool put_mapped(json_t *object, const char *name, const char *value)
{
    char mapped[AM_LABEL_NAME_MAX], unique[AM_LABEL_NAME_MAX + 16];
    am_map_label_name(name, mapped, sizeof mapped);
    snprintf(unique, sizeof unique, "%s", mapped);
    for (int n = 2; json_object_get(object, unique); n++)
        snprintf(unique, sizeof unique, "%s_%d", mapped, n);
    char *text = am_map_utf8(value ? value : "");
    bool ok = text && json_object_set_new(object, unique, json_string(text)) == 0;
    free(text);
    return ok;
}

/* The generator URL template with {fingerprint} and {rule} replaced, in `buf` (cut off at its end). */
static void generator_url(const char *template, const Healthsignals__V1__Alert *alert, char *buf, size_t size)
{
    hs_text t = hs_text_in(buf, size);
    for (const char *p = template; *p;) {
        if (strncmp(p, "{fingerprint}", 13) == 0) {
            hs_text_add(&t, alert->fingerprint);
            p += 13;
        } else if (strncmp(p, "{rule}", 6) == 0) {
            hs_text_add(&t, alert->rule);
            p += 6;
        } else {
            char one[2] = {*p++, '\0'};
            hs_text_add(&t, one);
        }
    }
}

static bool put_times(json_t *out, const Healthsignals__V1__Alert *alert, const am_map_options *options)
{
    int64_t starts_ms = options->now_ms, ends_ms = options->now_ms;
    if (!am_map_time_parse(alert->starts_at, &starts_ms) || starts_ms > options->now_ms)
        starts_ms = options->now_ms;
    if (am_map_is_firing(alert))
        ends_ms = options->now_ms + options->firing_for_ms;
    else if (!am_map_time_parse(alert->ends_at, &ends_ms) || ends_ms > options->now_ms)
        ends_ms = options->now_ms;
    if (ends_ms < starts_ms)
        ends_ms = starts_ms;
    char starts[40], ends[40];
    am_map_time_format(starts_ms, starts);
    am_map_time_format(ends_ms, ends);
    return json_object_set_new(out, "startsAt", json_string(starts)) == 0 &&
           json_object_set_new(out, "endsAt", json_string(ends)) == 0;
}

json_t *am_map_alert(const Healthsignals__V1__Alert *alert, const am_map_options *options, hs_error *error)
{
    if (alert->state != HEALTHSIGNALS__V1__ALERT_STATE__FIRING &&
        alert->state != HEALTHSIGNALS__V1__ALERT_STATE__RESOLVED) {
        hs_error_set(error, HS_ERR_VALIDATION, "alert %s is neither FIRING nor RESOLVED", alert->fingerprint);
        return NULL;
    }
    json_t *out = json_object(), *labels = json_object(), *annotations = json_object();
    bool ok = out && labels && annotations;
    for (size_t i = 0; ok && i < alert->n_labels; i++)
        ok = put_mapped(labels, alert->labels[i]->key, alert->labels[i]->value);
    if (ok && !json_object_get(labels, "alertname"))
        ok = put_mapped(labels, "alertname", alert->rule);
    for (size_t i = 0; ok && i < alert->n_annotations; i++)
        ok = put_mapped(annotations, alert->annotations[i]->key, alert->annotations[i]->value);
    ok = ok && put_times(out, alert, options);
    if (ok && options->generator_url && *options->generator_url) {
        char url[2048];
        generator_url(options->generator_url, alert, url, sizeof url);
        char *valid = am_map_utf8(url);
        ok = valid && json_object_set_new(out, "generatorURL", json_string(valid)) == 0;
        free(valid);
    }
    if (ok) {
        ok = json_object_set_new(out, "labels", labels) == 0 &&
             json_object_set_new(out, "annotations", annotations) == 0;
        labels = annotations = NULL;
    }
    json_decref(labels);
    json_decref(annotations);
    if (!ok) {
        json_decref(out);
        hs_error_set(error, HS_ERR_NOMEM, "out of memory mapping alert %s", alert->fingerprint);
        return NULL;
    }
    return out;
}
