/* JSON-lines logger. Each line is assembled in memory and written with one fwrite() so that lines from
 * several threads (librdkafka's log callback runs on its own threads) never interleave mid-line.
 */
#include "hs/log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

void hs_log(hs_log_level level, const char *msg, const char *fields, ...)
{
    if (level < log_min_level)
        return;

    char ts[40];
    format_now(ts, sizeof ts);

    json_t *line = json_object();
    json_object_set_new(line, "ts", json_string(ts));
    json_object_set_new(line, "level", json_string(level_names[level]));
    json_object_set_new(line, "service", json_string(log_service));
    json_object_set_new(line, "msg", json_string(msg ? msg : ""));

    if (fields) {
        json_error_t error;
        va_list ap;
        va_start(ap, fields);
        json_t *extra = json_vpack_ex(&error, 0, fields, ap);
        va_end(ap);
        if (extra)
            json_object_update(line, extra);
        else
            json_object_set_new(line, "log_format_error", json_string(error.text));
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
