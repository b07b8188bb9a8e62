/* Structured logging: one JSON object per line on stderr with `ts` (RFC 3339, UTC, milliseconds), `level`,
 * `service`, `msg` and any fields the caller adds. Fields are given as a jansson json_pack() format and its
 * arguments, so a log line is built by the same library that writes every other JSON we emit.
 * Never log secrets: configuration values whose names suggest credentials are masked by the config module.
 */
#ifndef HS_LOG_H
#define HS_LOG_H

typedef enum hs_log_level {
    HS_LOG_DEBUG = 0,
    HS_LOG_INFO = 1,
    HS_LOG_WARN = 2,
    HS_LOG_ERROR = 3,
} hs_log_level;

/* Sets the `service` field of every following line; `name` is copied. Default "healthsignals". */
void hs_log_set_service(const char *name);

/* Lines below `level` are dropped. Default HS_LOG_INFO. */
void hs_log_set_level(hs_log_level level);

/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int hs_log_level_parse(const char *text);

/* Writes one line. `fields` is a json_pack() object format such as "{s:s, s:i}" followed by its
 * arguments, or NULL for none. A format error is reported in the line itself rather than lost. */
void hs_log(hs_log_level level, const char *msg, const char *fields, ...);

#endif
