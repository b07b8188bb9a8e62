/* The one error type of healthsignals, after curl's CURLcode: every module returns an hs_err, the runtime
 * logs it, the dead-letter queue carries it in the `hs-error-code` header and hsctl turns it into its exit
 * status. Codes are stable (they leave the process); add new ones at the end of their group, never renumber.
 */
#ifndef HS_ERR_H
#define HS_ERR_H

typedef enum hs_err {
    HS_OK = 0,
    /* The outside world: bad input. */
    HS_ERR_DECODE = 10,     /* bytes are not a valid encoding of the expected message */
    HS_ERR_VALIDATION = 11, /* a decoded message breaks a rule of the contract */
    HS_ERR_TOO_LARGE = 12,  /* a record or field exceeds its size limit */
    HS_ERR_PARSE = 13,      /* text input (CSV, JSON, command line) could not be read */
    HS_ERR_NOT_FOUND = 14,  /* a named thing (topic, key, service) does not exist */
    HS_ERR_USAGE = 15,      /* a command was called wrongly */
    /* The outside world: a record where it does not belong (admission, hs/topic.h). */
    HS_ERR_WRONG_PARTITION = 16, /* a fact is not on its grouping key's partition */
    HS_ERR_KEY_MISMATCH = 17,    /* a record's key is not the identity of its value */
    /* The outside world: the environment. */
    HS_ERR_IO = 20,      /* a file or socket operation failed */
    HS_ERR_KAFKA = 21,   /* the broker or the Kafka client reported an error */
    HS_ERR_TIMEOUT = 22, /* an operation did not complete in time */
    HS_ERR_CONFIG = 23,  /* a setting is unknown or invalid */
    /* Ourselves. */
    HS_ERR_NOMEM = 30,    /* an allocation failed */
    HS_ERR_INTERNAL = 31, /* a bug: an invariant did not hold */
} hs_err;

/* An error code with its human-readable reason. The reason names what it concerns — a field path
 * ("scope.code"), a CSV line, a setting — so that it can be shown to a user as it is. */
typedef struct hs_error {
    hs_err code;
    char message[256];
} hs_error;

/* Sets `error` (which may be NULL) to `code` and the printf-style reason, truncating a long reason; returns
 * `code`, so that `return hs_error_set(error, HS_ERR_VALIDATION, "...")` reads naturally. */
hs_err hs_error_set(hs_error *error, hs_err code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefixes the reason already in `error` with `prefix` and ": " (for nesting, e.g. a line number). */
void hs_error_prefix(hs_error *error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The process exit status for `err`, shared by every command-line tool (documented in docs/hsctl.md):
 * 0 ok; 1 bad input (some rows or records rejected); 2 usage; 3 Kafka or timeout; 4 not found;
 * 5 I/O; 6 configuration; 70 internal error or out of memory. */
int hs_err_exit_code(hs_err err);

/* Returns the stable, lowercase name of `err` ("decode", "validation", ...); never NULL. */
const char *hs_err_name(hs_err err);

/* Returns a one-line English description of `err`; never NULL. */
const char *hs_err_str(hs_err err);

#endif
