/* Names and descriptions of hs_err codes. The names are part of the contract: they appear in the DLQ header
 * `hs-error-code` and in metrics labels, so they never change once released.
 */
#include "hs/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

hs_err hs_error_set(hs_error *error, hs_err code, const char *fmt, ...)
{
    if (!error)
        return code;
    error->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error->message, sizeof error->message, fmt, ap);
    va_end(ap);
    return code;
}

void hs_error_prefix(hs_error *error, const char *fmt, ...)
{
    if (!error)
        return;
    char prefix[128];
    char old[sizeof error->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, error->message, sizeof old);
    /* prefix + ": " + the old reason, cut to fit (a long reason loses its end, never the prefix). */
    size_t cap = sizeof error->message;
    int n = snprintf(error->message, cap, "%s: ", prefix);
    if (n > 0 && (size_t)n < cap) {
        size_t len = strnlen(old, cap - (size_t)n - 1);
        memcpy(error->message + n, old, len);
        error->message[(size_t)n + len] = '\0';
    }
}

int hs_err_exit_code(hs_err err)
{
    switch (err) {
    case HS_OK: return 0;
    case HS_ERR_DECODE:
    case HS_ERR_VALIDATION:
    case HS_ERR_TOO_LARGE:
    case HS_ERR_PARSE:
    case HS_ERR_WRONG_PARTITION:
    case HS_ERR_KEY_MISMATCH: return 1;
    case HS_ERR_USAGE: return 2;
    case HS_ERR_KAFKA:
    case HS_ERR_TIMEOUT: return 3;
    case HS_ERR_NOT_FOUND: return 4;
    case HS_ERR_IO: return 5;
    case HS_ERR_CONFIG: return 6;
    case HS_ERR_NOMEM:
    case HS_ERR_INTERNAL: return 70;
    }
    return 70;
}

const char *hs_err_name(hs_err err)
{
    switch (err) {
    case HS_OK: return "ok";
    case HS_ERR_DECODE: return "decode";
    case HS_ERR_VALIDATION: return "validation";
    case HS_ERR_TOO_LARGE: return "too_large";
    case HS_ERR_PARSE: return "parse";
    case HS_ERR_NOT_FOUND: return "not_found";
    case HS_ERR_USAGE: return "usage";
    case HS_ERR_WRONG_PARTITION: return "wrong_partition";
    case HS_ERR_KEY_MISMATCH: return "key_mismatch";
    case HS_ERR_IO: return "io";
    case HS_ERR_KAFKA: return "kafka";
    case HS_ERR_TIMEOUT: return "timeout";
    case HS_ERR_CONFIG: return "config";
    case HS_ERR_NOMEM: return "nomem";
    case HS_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}

const char *hs_err_str(hs_err err)
{
    switch (err) {
    case HS_OK: return "success";
    case HS_ERR_DECODE: return "record could not be decoded";
    case HS_ERR_VALIDATION: return "record failed validation";
    case HS_ERR_TOO_LARGE: return "record or field too large";
    case HS_ERR_PARSE: return "input could not be parsed";
    case HS_ERR_NOT_FOUND: return "not found";
    case HS_ERR_USAGE: return "wrong usage";
    case HS_ERR_WRONG_PARTITION: return "record not on its grouping key's partition";
    case HS_ERR_KEY_MISMATCH: return "record key is not its value's identity";
    case HS_ERR_IO: return "input/output error";
    case HS_ERR_KAFKA: return "Kafka error";
    case HS_ERR_TIMEOUT: return "timed out";
    case HS_ERR_CONFIG: return "invalid configuration";
    case HS_ERR_NOMEM: return "out of memory";
    case HS_ERR_INTERNAL: return "internal error";
    }
    return "unknown error";
}
