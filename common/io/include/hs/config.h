/* The configuration of a service process (docs/design.md §12, "Configuration"). A program declares its
 * options once — the runtime's common ones, then the service's own — and each option is read from a default,
 * then from its environment variable HS_<NAME>, then from its flag --<name>, each overriding the one before.
 * --help documents all three. Anything unknown or invalid stops start-up with a message naming the flag or
 * variable; HS_KAFKA_<PROPERTY> is passed through to librdkafka by hs_kafka_conf_new(), not read here.
 */
#ifndef HS_CONFIG_H
#define HS_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "hs/err.h"

typedef enum hs_option_type {
    HS_OPTION_STRING,      /* any text */
    HS_OPTION_INT,         /* a decimal integer, optionally signed */
    HS_OPTION_DURATION_MS, /* "250ms", "2s", "1.5s", "1m", "1h"; a plain number is milliseconds */
    HS_OPTION_BOOL,        /* true/false, 1/0, yes/no (any case); as a flag --name or --no-name */
    HS_OPTION_ADDRESS,     /* "host:port", "[v6]:port" or ":port", port 0..65535; checked, not resolved */
} hs_option_type;

/* One option, declared in static storage (the config keeps pointers to it), best with designated
 * initializers: {.name = "workers", .type = HS_OPTION_INT, .default_value = "4", .help = "...", .min = 1,
 * .max = 64}. An array of options ends with an entry whose `name` is NULL. */
typedef struct hs_option {
    const char *name; /* "bootstrap-servers": flag --bootstrap-servers, environment HS_BOOTSTRAP_SERVERS;
                       * lowercase letters, digits and '-', at most 48 characters */
    hs_option_type type;
    bool secret;               /* shown as "***" in hs_config_log, --help and error messages */
    const char *default_value; /* as a user would write it ("500ms", "127.0.0.1:9464"); NULL = required, and a
                                * required value may not be empty */
    const char *help;          /* one line for --help */
    long long min, max;        /* INT and DURATION_MS (in ms): the accepted range, both inclusive; 0, 0 =
                                * unbounded (use LLONG_MIN or LLONG_MAX to leave one side open) */
} hs_option;

/* The loaded configuration: owned by the caller of hs_config_load, released with hs_config_free. */
typedef struct hs_config hs_config;

/* Builds the configuration of `program` (named in --help and --version) from `option_sets`, a NULL-terminated
 * array of option arrays: the runtime's common options followed by the service's own. Values come from each
 * option's default, then the environment `envp` (as `environ`; NULL = empty), then the flags in
 * argv[1..argc-1], each overriding the one before.
 *
 * Flags: "--name value" and "--name=value"; a bool is "--name" (true), "--no-name" (false) or "--name=VALUE";
 * a flag given twice keeps the last value; "--" ends the flags. Arguments that are not flags ("-" included)
 * are positional and may come between flags; hs_config_argv() returns them in order. Built in: --help (-h),
 * --version and --log-level LEVEL.
 *
 * Environment: an HS_* variable with an empty value counts as unset (so a compose file can blank one). A
 * secret option also takes HS_<NAME>_FILE=PATH, its value the file's contents without the trailing line end
 * (origin "file"; setting both forms is an error); a secret given as a flag is warned of by hs_config_log,
 * since `ps` shows it to every user. Every
 * other HS_* variable must be an option's HS_<NAME>, or one of these, which are never an error here:
 *   HS_KAFKA_<PROPERTY>  librdkafka pass-through, applied and validated by hs_kafka_conf_new(); only their
 *                        names are noted here, for hs_config_log
 *   HS_LOG_LEVEL         debug, info, warn or error, overridden by the built-in flag --log-level: checked
 *                        here and applied with hs_log_set_level() when the load succeeds (when neither is
 *                        given, the level the program set before stays)
 *   HS_HTTP_TOKEN, HS_HTTP_TOKEN_FILE, HS_HTTP_TLS_CERT_FILE, HS_HTTP_TLS_KEY_FILE
 *                        the HTTP endpoint's bearer token and TLS, read by hs_http_start() (hs/http.h)
 *   HS_BUILD_DIR, HS_CACHE_DIR, HS_BROKER_KIND, HS_FIXTURES_DIR, HS_BENCH_KAFKA_DIR, HS_LOCAL_KAFKA_*
 *                        read by the project's scripts and tests, which may be set in the same shell
 *   HS_SCHEMA_REGISTRY_URL, HS_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO, HS_SCHEMA_REGISTRY_BEARER_AUTH_TOKEN,
 *   HS_SCHEMA_REGISTRY_SSL_CA_LOCATION
 *                        the writers' schema registry settings (hs/schema_registry.h), when the program does
 *                        not declare them as options: a reader of a shared environment lets them be
 * Option names that would collide with these (log-level, kafka-*, build-dir, ...) are a bug, like duplicate
 * names, invalid names or a default that does not parse: asserted, and HS_ERR_INTERNAL without assertions.
 *
 * Returns HS_OK with a new configuration in *out, or an error with *out NULL:
 *   HS_ERR_USAGE   a flag that cannot be read: "unknown flag --frob (see --help)", or "unknown flag
 *                  --bootstrap-server: did you mean --bootstrap-servers? (see --help)" when a known flag is
 *                  close; a missing value; a value given to --no-name;
 *   HS_ERR_CONFIG  a value that is invalid for its type or range, naming where it came from
 *                  ("HS_COMMIT_INTERVAL: '5x' is not a duration (e.g. 500ms, 2s, 1m)", "--workers: '0' is
 *                  out of range: must be 1..64"); an unknown HS_* variable, with the closest known names
 *                  ("unknown environment variable HS_BOOTSTRAP_SERVER: did you mean HS_BOOTSTRAP_SERVERS?
 *                  (see --help)"); a required option not set or empty;
 *   HS_ERR_NOMEM.
 * Flags are read before the environment is checked, so --help and --version work whatever the environment
 * holds: "--help"/"-h" writes the help text to `help_out` (NULL = stdout) — the usage line, `summary`, each
 * option as "  --name VALUE   help (env HS_NAME, default X)", then HS_KAFKA_<PROPERTY>, HS_LOG_LEVEL and the
 * exit statuses — and "--version" writes "PROGRAM VERSION"; either sets *help_requested, returns HS_OK and
 * leaves *out NULL: the caller exits 0. `help_requested` must not be NULL; `version` must not be NULL.
 * `argv` must outlive the configuration (positional arguments point into it). */
hs_err hs_config_load(hs_config **out, const char *program, const char *summary, const char *version,
                      const hs_option *const *option_sets, int argc, char **argv, char **envp, FILE *help_out,
                      bool *help_requested, hs_error *error);

/* The accessors below take an option's name; a name that was not declared, or an accessor of another type,
 * is a bug and aborts with a message. */

/* The value as written (for any type; a bool set by --name or --no-name reads "true" or "false"). Valid until
 * hs_config_free. */
const char *hs_config_string(const hs_config *c, const char *name);

/* The value of an INT option. */
long long hs_config_int(const hs_config *c, const char *name);

/* The value of a DURATION_MS option, in milliseconds. */
long long hs_config_duration_ms(const hs_config *c, const char *name);

/* The value of a BOOL option. */
bool hs_config_bool(const hs_config *c, const char *name);

/* The parts of an ADDRESS option: `*host` is "" for ":port" and has no brackets for "[v6]:port" (valid until
 * hs_config_free); `*port` is 0..65535. */
void hs_config_address(const hs_config *c, const char *name, const char **host, int *port);

/* Where the value came from, for the start-up log: "default", "env", "file" or "flag". Static storage. */
const char *hs_config_origin(const hs_config *c, const char *name);

/* Logs the effective configuration as one JSON line via hs_log at info level: {"msg":"configuration",
 * "program":..., "config":{"NAME":{"value":V,"origin":"env"},...}, "kafka":["HS_KAFKA_...",...]} — V is a
 * number for INT, true/false for BOOL, the text as written otherwise, and "***" for a non-empty secret;
 * "log-level" is there when HS_LOG_LEVEL or --log-level set it; the HS_KAFKA_* variables are listed by name
 * only, since their values may be credentials. */
void hs_config_log(const hs_config *c);

/* The positional arguments, in argv order: hs_config_argc() of them, then a NULL. The strings are argv's. */
int hs_config_argc(const hs_config *c);
char *const *hs_config_argv(const hs_config *c);

/* Reads the file `path` that variable `variable` names (HS_KAFKA_SASL_PASSWORD_FILE, HS_HTTP_TOKEN_FILE, a
 * PEM file): its whole contents, at most `max` bytes, without trailing line ends. *out is malloc'd (the
 * caller wipes a secret with hs_secret_wipe and frees it). HS_ERR_CONFIG naming the variable and the path
 * (never the contents) when it cannot be read, is larger than `max`, empty, or holds a NUL byte;
 * HS_ERR_NOMEM. */
hs_err hs_config_read_file(const char *variable, const char *path, size_t max, char **out, hs_error *error);

/* Overwrites `len` bytes of `buf` with zeros in a way the compiler keeps (before a secret is freed). */
void hs_secret_wipe(void *buf, size_t len);

/* Releases `c` and everything it owns; NULL is allowed. */
void hs_config_free(hs_config *c);

#endif
