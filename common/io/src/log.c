/* JSON-lines logger. Each line is assembled in memory and written with one fwrite() so that lines from
 * several threads (librdkafka's log callback runs on its own threads) never interleave mid-line. A field
 * that is not UTF-8 (a record's key, an error quoting bad bytes) is written with those bytes escaped as
 * \xNN: jansson refuses such strings, and with them every field of the line.
 */
#include "hs/log.h"

#include <ctype.h>
#include <stdbool.h>

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hs/json.h"

static char log_service[64] = "healthsignals";
static hs_log_level log_min_level = HS_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void hs_log_set_service(const char *name)
{
    snprintf(log_service, sizeof log_service, "%s", name);
}

void hs_log_set_level(hs_log_level level)
{
    log_min_level = level;
}

int hs_log_level_parse(const char *text)
{
    for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++)
        if (strcmp(text, level_names[i]) == 0)
            return i;
    return -1;
}

static void format_now(char *buf, size_t size)
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03ldZ", now.tv_nsec / 1000000);
}

/* A string argument as JSON, escaped where it is not UTF-8; NULL is null when `nullable`. */
static json_t *text_field(const char *text, bool nullable)
{
    if (!text)
        return nullable ? json_null() : json_string("");
    return hs_json_string_escaped(text, strlen(text));
}

/* The fields object of a json_pack() format such as "{s:s, s:i, s:O}", built here instead of by jansson so
 * that strings that are not UTF-8 are escaped rather than failing the whole object. Knows the value formats
 * s, s?, i, I, f, b, n, O and O?; returns NULL (and sets `why`) for anything else. */
static json_t *fields_escaped(const char *fmt, va_list ap, const char **why)
{
    const char *p = fmt;
    while (isspace((unsigned char)*p))
        p++;
    if (*p++ != '{') {
        *why = "format is not an object";
        return NULL;
    }
    json_t *fields = json_object();
    for (;;) {
        while (isspace((unsigned char)*p) || *p == ',' || *p == ':')
            p++;
        if (*p == '}')
            return fields;
        if (*p++ != 's') {
            *why = "unsupported key format";
            break;
        }
        const char *name = va_arg(ap, const char *);
        while (isspace((unsigned char)*p) || *p == ':')
            p++;
        char spec = *p++;
        bool nullable = *p == '?';
        p += nullable;
        json_t *value;
        switch (spec) {
        case 's': value = text_field(va_arg(ap, const char *), nullable); break;
        case 'i': value = json_integer(va_arg(ap, int)); break;
        case 'I': value = json_integer(va_arg(ap, json_int_t)); break;
        case 'f': value = json_real(va_arg(ap, double)); break;
        case 'b': value = json_boolean(va_arg(ap, int)); break;
        case 'n': value = json_null(); break;
        case 'O': { /* not 'o': jansson has already taken that reference, even though it failed */
            json_t *given = va_arg(ap, json_t *);
            value = given ? json_incref(given) : nullable ? json_null() : NULL;
            break;
        }
        default: *why = "unsupported value format"; goto fail;
        }
        if (!name || !value) {
            json_decref(value);
            *why = !name ? "NULL key" : "NULL value";
            break;
        }
        if (json_object_set_new(fields, name, value) != 0) {
            *why = "key is not UTF-8";
            break;
        }
    }
fail:
    json_decref(fields);
    return NULL;
}

void hs_log(hs_log_level level, const char *msg, const char *fields, ...)
{
    if (level < log_min_level)
        return;

    char ts[40];
    format_now(ts, sizeof ts);

    json_t *line = json_object();
    json_object_set_new(line, "ts", json_string(ts));
    json_object_set_new(line, "level", json_string(level_names[level]));
    json_object_set_new(line, "service", text_field(log_service, false));
    json_object_set_new(line, "msg", text_field(msg, false));

    if (fields) {
        json_error_t error;
        va_list ap, again;
        va_start(ap, fields);
        va_copy(again, ap);
        json_t *extra = json_vpack_ex(&error, 0, fields, ap);
        const char *why = error.text;
        if (!extra) /* most likely a string that is not UTF-8: build it again, escaped */
            extra = fields_escaped(fields, again, &why);
        va_end(again);
        va_end(ap);
        if (extra)
            json_object_update(line, extra);
        else
            json_object_set_new(line, "log_format_error", text_field(why, false));
        json_decref(extra);
    }

    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    if (!text)
        return;
    size_t len = strlen(text);
    text[len] = '\n'; /* overwrite the terminator: one write of the whole line */
    fwrite(text, 1, len + 1, stderr);
    fflush(stderr);
    free(text);
}
