/* Configuration is the first thing a service does and the first thing an operator gets wrong: every value
 * must come from the right place (default < HS_* environment < flag), every mistake must stop start-up with
 * a message naming the flag or variable and what it expects, --help must document every setting, and a
 * secret must never reach a log line.
 */
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "hs/config.h"
#include "hs/log.h"

/* What the runtime would declare for every service, and one service's own option. */
static const hs_option runtime_options[] = {
    {.name = "bootstrap-servers",
     .type = HS_OPTION_STRING,
     .default_value = "127.0.0.1:9092",
     .help = "Kafka bootstrap servers"},
    {.name = "http-addr",
     .type = HS_OPTION_ADDRESS,
     .default_value = "127.0.0.1:9464",
     .help = "where /metrics, /healthz and /readyz listen"},
    {.name = "commit-interval",
     .type = HS_OPTION_DURATION_MS,
     .default_value = "500ms",
     .help = "how often the open transaction commits",
     .min = 10,
     .max = 60000},
    {.name = "workers",
     .type = HS_OPTION_INT,
     .default_value = "4",
     .help = "calculation threads",
     .min = 1,
     .max = 64},
    {.name = "dry-run",
     .type = HS_OPTION_BOOL,
     .default_value = "false",
     .help = "calculate, but publish nothing"},
    {.name = "sasl-password",
     .type = HS_OPTION_STRING,
     .default_value = "",
     .help = "SASL password",
     .secret = true},
    {.name = NULL},
};
static const hs_option service_options[] = {
    {.name = "rules-topic",
     .type = HS_OPTION_STRING,
     .default_value = "hs.rules.v1",
     .help = "where the rules are read from"},
    {.name = NULL},
};
static const hs_option *const all_options[] = {runtime_options, service_options, NULL};

#define NO_ARGS   ((char *[]){"svc", NULL})
#define ARGS(...) ((char *[]){"svc", __VA_ARGS__, NULL})
#define NO_ENV    ((char *[]){NULL})
#define ENV(...)  ((char *[]){__VA_ARGS__, NULL})

/* Loads `sets` from `argv` (NULL-terminated, program name first) and `envp`; help goes to `help_out`. */
static hs_err load_sets(const hs_option *const *sets, char **argv, char **envp, FILE *help_out, bool *help,
                        hs_config **out, hs_error *error)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    bool help_requested;
    hs_err err = hs_config_load(out, "svc", "A test service.", "1.2.3", sets, argc, argv, envp, help_out,
                                help ? help : &help_requested, error);
    if (err != HS_OK)
        assert_null(*out);
    return err;
}

static hs_err load(char **argv, char **envp, hs_config **out, hs_error *error)
{
    return load_sets(all_options, argv, envp, NULL, NULL, out, error);
}

/* Loads and expects failure with `code` and exactly `message`. */
static void assert_load_fails(char **argv, char **envp, hs_err code, const char *message)
{
    hs_config *c = NULL;
    hs_error error = {0};
    assert_int_equal(load(argv, envp, &c, &error), code);
    assert_int_equal(error.code, code);
    assert_string_equal(error.message, message);
}

/* What `fn(c)` writes to stderr (fd 2); the caller frees it. */
static char *capture_stderr(void (*fn)(const hs_config *), const hs_config *c)
{
    fflush(stderr);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    fn(c);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    long size = ftell(tmp);
    assert_true(size >= 0);
    char *text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    rewind(tmp);
    assert_int_equal(fread(text, 1, (size_t)size, tmp), (size_t)size);
    fclose(tmp);
    return text;
}

static void test_defaults_apply_when_nothing_is_set(void **state)
{
    hs_config *c;
    hs_error error;
    assert_int_equal(load(NO_ARGS, NO_ENV, &c, &error), HS_OK);
    assert_string_equal(hs_config_string(c, "bootstrap-servers"), "127.0.0.1:9092");
    assert_int_equal(hs_config_duration_ms(c, "commit-interval"), 500);
    assert_int_equal(hs_config_int(c, "workers"), 4);
    assert_false(hs_config_bool(c, "dry-run"));
    assert_string_equal(hs_config_string(c, "sasl-password"), "");
    assert_string_equal(hs_config_string(c, "rules-topic"), "hs.rules.v1");
    const char *host;
    int port;
    hs_config_address(c, "http-addr", &host, &port);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9464);
    assert_string_equal(hs_config_origin(c, "workers"), "default");
    assert_int_equal(hs_config_argc(c), 0);
    hs_config_free(c);
}

static void test_environment_overrides_default(void **state)
{
    hs_config *c;
    hs_error error;
    char **env = ENV("PATH=/usr/bin", "HS_BOOTSTRAP_SERVERS=kafka-1:9092,kafka-2:9092", "HS_WORKERS=8",
                     "HS_RULES_TOPIC=test.rules");
    assert_int_equal(load(NO_ARGS, env, &c, &error), HS_OK);
    assert_string_equal(hs_config_string(c, "bootstrap-servers"), "kafka-1:9092,kafka-2:9092");
    assert_int_equal(hs_config_int(c, "workers"), 8);
    assert_string_equal(hs_config_string(c, "rules-topic"), "test.rules");
    assert_string_equal(hs_config_origin(c, "workers"), "env");
    assert_string_equal(hs_config_origin(c, "commit-interval"), "default");
    hs_config_free(c);
}

static void test_flag_overrides_environment(void **state)
{
    hs_config *c;
    hs_error error;
    assert_int_equal(load(ARGS("--workers", "16"), ENV("HS_WORKERS=8"), &c, &error), HS_OK);
    assert_int_equal(hs_config_int(c, "workers"), 16);
    assert_string_equal(hs_config_origin(c, "workers"), "flag");
    hs_config_free(c);
}

static void test_flag_value_may_follow_an_equals_sign(void **state)
{
    hs_config *c;
    hs_error error;
    assert_int_equal(load(ARGS("--bootstrap-servers=b:9092", "--http-addr=:8080"), NO_ENV, &c, &error),
                     HS_OK);
    assert_string_equal(hs_config_string(c, "bootstrap-servers"), "b:9092");
    assert_string_equal(hs_config_string(c, "http-addr"), ":8080");
    hs_config_free(c);
}

static void test_repeated_flag_keeps_the_last_value(void **state)
{
    hs_config *c;
    hs_error error;
    assert_int_equal(load(ARGS("--workers", "2", "--workers=3"), NO_ENV, &c, &error), HS_OK);
    assert_int_equal(hs_config_int(c, "workers"), 3);
    hs_config_free(c);
}

/* Each form of a bool, and what it must read as. */
static bool bool_from(char **argv, char **envp)
{
    hs_config *c;
    hs_error error;
    assert_int_equal(load(argv, envp, &c, &error), HS_OK);
    bool value = hs_config_bool(c, "dry-run");
    hs_config_free(c);
    return value;
}

static void test_bool_accepts_switch_negation_and_words(void **state)
{
    assert_true(bool_from(ARGS("--dry-run"), NO_ENV));
    assert_false(bool_from(ARGS("--no-dry-run"), ENV("HS_DRY_RUN=true")));
    assert_true(bool_from(ARGS("--dry-run=yes"), NO_ENV));
    assert_true(bool_from(ARGS("--dry-run=1"), NO_ENV));
    assert_false(bool_from(ARGS("--dry-run=false"), ENV("HS_DRY_RUN=1")));
    assert_false(bool_from(ARGS("--dry-run=no"), NO_ENV));
    assert_false(bool_from(ARGS("--dry-run=0"), NO_ENV));
    assert_true(bool_from(NO_ARGS, ENV("HS_DRY_RUN=YES")));
    assert_true(bool_from(NO_ARGS, ENV("HS_DRY_RUN=true")));
    assert_false(bool_from(NO_ARGS, ENV("HS_DRY_RUN=no")));
    /* A switch does not swallow the next argument. */
    hs_config *c;
    hs_error error;
    assert_int_equal(load(ARGS("--dry-run", "true"), NO_ENV, &c, &error), HS_OK);
    assert_int_equal(hs_config_argc(c), 1);
    hs_config_free(c);
}

static void test_bool_rejects_other_words(void **state)
{
    assert_load_fails(NO_ARGS, ENV("HS_DRY_RUN=maybe"), HS_ERR_CONFIG,
                      "HS_DRY_RUN: 'maybe' is not a boolean (true/false, 1/0, yes/no)");
    assert_load_fails(ARGS("--dry-run=on"), NO_ENV, HS_ERR_CONFIG,
                      "--dry-run: 'on' is not a boolean (true/false, 1/0, yes/no)");
    assert_load_fails(ARGS("--no-dry-run=1"), NO_ENV, HS_ERR_USAGE,
                      "flag --no-dry-run takes no value (see --help)");
}

static long long duration_from(const char *text)
{
    hs_config *c;
    hs_error error;
    char arg[64];
    snprintf(arg, sizeof arg, "--commit-interval=%s", text);
    assert_int_equal(load(ARGS(arg), NO_ENV, &c, &error), HS_OK);
    long long ms = hs_config_duration_ms(c, "commit-interval");
    hs_config_free(c);
    return ms;
}

static void test_duration_units(void **state)
{
    assert_int_equal(duration_from("250ms"), 250);
    assert_int_equal(duration_from("2s"), 2000);
    assert_int_equal(duration_from("1.5s"), 1500);
    assert_int_equal(duration_from("0.25s"), 250);
    assert_int_equal(duration_from("1m"), 60000);
    assert_int_equal(duration_from("750"), 750); /* a plain number is milliseconds */
    assert_int_equal(duration_from("10ms"), 10); /* the minimum itself */

    hs_option hours[] = {
        {.name = "retention", .type = HS_OPTION_DURATION_MS, .default_value = "1h", .help = "how long"},
        {.name = NULL}};
    const hs_option *const sets[] = {hours, NULL};
    hs_config *c;
    hs_error error;
    assert_int_equal(load_sets(sets, ARGS("--retention", "0.5h"), NO_ENV, NULL, NULL, &c, &error), HS_OK);
    assert_int_equal(hs_config_duration_ms(c, "retention"), 30 * 60 * 1000);
    hs_config_free(c);
}

static void test_duration_errors_say_what_a_duration_looks_like(void **state)
{
    assert_load_fails(NO_ARGS, ENV("HS_COMMIT_INTERVAL=5x"), HS_ERR_CONFIG,
                      "HS_COMMIT_INTERVAL: '5x' is not a duration (e.g. 500ms, 2s, 1m)");
    assert_load_fails(ARGS("--commit-interval", "-1s"), NO_ENV, HS_ERR_CONFIG,
                      "--commit-interval: '-1s' is not a duration (e.g. 500ms, 2s, 1m)");
    assert_load_fails(ARGS("--commit-interval", "1 s"), NO_ENV, HS_ERR_CONFIG,
                      "--commit-interval: '1 s' is not a duration (e.g. 500ms, 2s, 1m)");
    assert_load_fails(ARGS("--commit-interval", "20.5ms"), NO_ENV, HS_ERR_CONFIG,
                      "--commit-interval: '20.5ms' is not a whole number of milliseconds");
    assert_load_fails(ARGS("--commit-interval=99999999999999999999h"), NO_ENV, HS_ERR_CONFIG,
                      "--commit-interval: '99999999999999999999h' is out of range");
    /* commit-interval accepts 10ms..60000ms; the bounds are shown as durations. */
    assert_load_fails(ARGS("--commit-interval", "2m"), NO_ENV, HS_ERR_CONFIG,
                      "--commit-interval: '2m' is out of range: must be 10ms..1m");
}

static void test_int_range_error_names_the_variable_or_flag(void **state)
{
    assert_load_fails(NO_ARGS, ENV("HS_WORKERS=0"), HS_ERR_CONFIG,
                      "HS_WORKERS: '0' is out of range: must be 1..64");
    assert_load_fails(ARGS("--workers", "65"), NO_ENV, HS_ERR_CONFIG,
                      "--workers: '65' is out of range: must be 1..64");
}

static void test_int_rejects_anything_but_a_decimal_integer(void **state)
{
    assert_load_fails(NO_ARGS, ENV("HS_WORKERS=4x"), HS_ERR_CONFIG, "HS_WORKERS: '4x' is not an integer");
    assert_load_fails(NO_ARGS, ENV("HS_WORKERS= 4"), HS_ERR_CONFIG, "HS_WORKERS: ' 4' is not an integer");
    assert_load_fails(NO_ARGS, ENV("HS_WORKERS=0x10"), HS_ERR_CONFIG, "HS_WORKERS: '0x10' is not an integer");
    assert_load_fails(NO_ARGS, ENV("HS_WORKERS=99999999999999999999"), HS_ERR_CONFIG,
                      "HS_WORKERS: '99999999999999999999' is out of range");
}

static void test_one_sided_range_says_at_least(void **state)
{
    hs_option options[] = {{.name = "partitions",
                            .type = HS_OPTION_INT,
                            .default_value = "4",
                            .help = "partitions",
                            .min = 1,
                            .max = LLONG_MAX},
                           {.name = NULL}};
    const hs_option *const sets[] = {options, NULL};
    hs_config *c = NULL;
    hs_error error;
    assert_int_equal(load_sets(sets, ARGS("--partitions=-3"), NO_ENV, NULL, NULL, &c, &error), HS_ERR_CONFIG);
    assert_string_equal(error.message, "--partitions: '-3' is out of range: must be at least 1");
    assert_int_equal(load_sets(sets, ARGS("--partitions=+3000000"), NO_ENV, NULL, NULL, &c, &error), HS_OK);
    assert_int_equal(hs_config_int(c, "partitions"), 3000000);
    hs_config_free(c);
}

/* The host and port an address reads as, or -1 as the port when it is refused. */
static int address_port(const char *text, char *host, size_t size)
{
    hs_config *c;
    hs_error error;
    char arg[300];
    snprintf(arg, sizeof arg, "--http-addr=%s", text);
    if (load(ARGS(arg), NO_ENV, &c, &error) != HS_OK) {
        assert_int_equal(error.code, HS_ERR_CONFIG);
        return -1;
    }
    const char *h;
    int port;
    hs_config_address(c, "http-addr", &h, &port);
    snprintf(host, size, "%s", h);
    hs_config_free(c);
    return port;
}

static void test_address_accepts_host_port_bracketed_v6_and_bare_port(void **state)
{
    char host[256];
    assert_int_equal(address_port("0.0.0.0:9464", host, sizeof host), 9464);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(address_port("[::1]:80", host, sizeof host), 80);
    assert_string_equal(host, "::1");
    assert_int_equal(address_port("[fe80::1%eth0]:80", host, sizeof host), 80);
    assert_string_equal(host, "fe80::1%eth0");
    assert_int_equal(address_port(":9464", host, sizeof host), 9464);
    assert_string_equal(host, "");
    assert_int_equal(address_port("metrics_host.local:0", host, sizeof host), 0);
    assert_int_equal(address_port("localhost:65535", host, sizeof host), 65535);
}

static void test_address_rejects_what_is_not_host_port(void **state)
{
    char host[256];
    assert_int_equal(address_port("localhost", host, sizeof host), -1);
    assert_int_equal(address_port("localhost:", host, sizeof host), -1);
    assert_int_equal(address_port("::1:80", host, sizeof host), -1); /* IPv6 needs brackets */
    assert_int_equal(address_port("[::1]", host, sizeof host), -1);
    assert_int_equal(address_port("[not-v6]:80", host, sizeof host), -1);
    assert_int_equal(address_port("a b:80", host, sizeof host), -1);
    assert_int_equal(address_port("host:http", host, sizeof host), -1);
    assert_load_fails(NO_ARGS, ENV("HS_HTTP_ADDR=localhost"), HS_ERR_CONFIG,
                      "HS_HTTP_ADDR: 'localhost' is not an address (host:port, [v6]:port or :port)");
    assert_load_fails(NO_ARGS, ENV("HS_HTTP_ADDR=localhost:65536"), HS_ERR_CONFIG,
                      "HS_HTTP_ADDR: 'localhost:65536': the port must be 0..65535");
}

static void test_unknown_flag_is_a_usage_error(void **state)
{
    assert_load_fails(ARGS("--frob"), NO_ENV, HS_ERR_USAGE, "unknown flag --frob (see --help)");
    assert_load_fails(ARGS("--frob=1"), NO_ENV, HS_ERR_USAGE, "unknown flag --frob (see --help)");
    assert_load_fails(ARGS("-x"), NO_ENV, HS_ERR_USAGE, "unknown flag -x (see --help)");
    assert_load_fails(ARGS("--no-workers"), NO_ENV, HS_ERR_USAGE,
                      "unknown flag --no-workers: did you mean --workers? (see --help)");
}

static void test_unknown_flag_close_to_a_known_one_suggests_it(void **state)
{
    assert_load_fails(ARGS("--bootstrap-server", "b:9092"), NO_ENV, HS_ERR_USAGE,
                      "unknown flag --bootstrap-server: did you mean --bootstrap-servers? (see --help)");
}

static void test_flag_without_its_value_is_a_usage_error(void **state)
{
    assert_load_fails(ARGS("--workers"), NO_ENV, HS_ERR_USAGE, "flag --workers needs a value (see --help)");
}

static void test_unknown_environment_variable_suggests_the_closest_name(void **state)
{
    assert_load_fails(NO_ARGS, ENV("HS_BOOTSTRAP_SERVER=b:9092"), HS_ERR_CONFIG,
                      "unknown environment variable HS_BOOTSTRAP_SERVER: did you mean HS_BOOTSTRAP_SERVERS? "
                      "(see --help)");
    assert_load_fails(
        NO_ARGS, ENV("HS_BOOTSTRAP=b:9092"), HS_ERR_CONFIG,
        "unknown environment variable HS_BOOTSTRAP: did you mean HS_BOOTSTRAP_SERVERS? (see --help)");
    assert_load_fails(NO_ARGS, ENV("HS_LOGLEVEL=debug"), HS_ERR_CONFIG,
                      "unknown environment variable HS_LOGLEVEL: did you mean HS_LOG_LEVEL? (see --help)");
}

static void test_unknown_environment_variable_far_from_every_name(void **state)
{
    assert_load_fails(NO_ARGS, ENV("HS_FROBNICATE=1"), HS_ERR_CONFIG,
                      "unknown environment variable HS_FROBNICATE (see --help)");
}

static void test_kafka_pass_through_log_level_and_script_variables_are_not_errors(void **state)
{
    hs_config *c;
    hs_error error;
    char **env = ENV("HS_KAFKA_SECURITY_PROTOCOL=SASL_SSL", "HS_KAFKA_SASL_PASSWORD=s3cret",
                     "HS_BUILD_DIR=/b", "HS_CACHE_DIR=/c", "HS_BROKER_KIND=mock", "HS_LOCAL_KAFKA_PORT=19092",
                     "HS_LOCAL_KAFKA_CONTROLLER_PORT=19093", "HS_FIXTURES_DIR=/f", "HS_BENCH_KAFKA_DIR=/b",
                     "HS_LOG_LEVEL=error", "hs_lowercase=not ours", "HOME=/root");
    assert_int_equal(load(NO_ARGS, env, &c, &error), HS_OK);
    hs_config_free(c);
    hs_log_set_level(HS_LOG_INFO); /* HS_LOG_LEVEL=error took effect; restore the default */
}

/* A reader (the sink, the exporter) takes the writers' schema registry settings of a shared environment. */
static void test_schema_registry_settings_are_not_errors_where_undeclared(void **state)
{
    hs_config *c;
    hs_error error;
    char **env =
        ENV("HS_SCHEMA_REGISTRY_URL=http://registry:8081", "HS_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO=u:p",
            "HS_SCHEMA_REGISTRY_BEARER_AUTH_TOKEN=t", "HS_SCHEMA_REGISTRY_SSL_CA_LOCATION=/ca.pem");
    assert_int_equal(load(NO_ARGS, env, &c, &error), HS_OK);
    hs_config_free(c);
    assert_load_fails(NO_ARGS, ENV("HS_SCHEMA_REGISTRY_URI=http://registry:8081"), HS_ERR_CONFIG,
                      "unknown environment variable HS_SCHEMA_REGISTRY_URI (see --help)");
}

static void test_invalid_log_level_stops_start_up(void **state)
{
    assert_load_fails(NO_ARGS, ENV("HS_LOG_LEVEL=loud"), HS_ERR_CONFIG,
                      "HS_LOG_LEVEL: 'loud' is not a log level (debug, info, warn, error)");
    assert_load_fails(ARGS("--log-level", "verbose"), NO_ENV, HS_ERR_CONFIG,
                      "--log-level: 'verbose' is not a log level (debug, info, warn, error)");
}

static void test_log_level_flag_overrides_environment(void **state)
{
    hs_config *c;
    hs_error error;
    assert_int_equal(load(ARGS("--log-level=debug"), ENV("HS_LOG_LEVEL=error"), &c, &error), HS_OK);
    char *line = capture_stderr(hs_config_log, c); /* at info: written only because debug took effect */
    assert_non_null(strstr(line, "\"log-level\":{\"value\":\"debug\",\"origin\":\"flag\"}"));
    free(line);
    hs_config_free(c);
    hs_log_set_level(HS_LOG_INFO);
}

static void test_empty_environment_variable_counts_as_unset(void **state)
{
    hs_config *c;
    hs_error error;
    assert_int_equal(load(NO_ARGS, ENV("HS_WORKERS=", "HS_NOT_AN_OPTION="), &c, &error), HS_OK);
    assert_int_equal(hs_config_int(c, "workers"), 4);
    assert_string_equal(hs_config_origin(c, "workers"), "default");
    hs_config_free(c);
}

static void test_required_option_missing_stops_start_up(void **state)
{
    hs_option options[] = {{.name = "region",
                            .type = HS_OPTION_STRING,
                            .default_value = NULL,
                            .help = "region code (1081..1085)"},
                           {.name = NULL}};
    const hs_option *const sets[] = {options, NULL};
    hs_config *c = NULL;
    hs_error error;
    assert_int_equal(load_sets(sets, NO_ARGS, NO_ENV, NULL, NULL, &c, &error), HS_ERR_CONFIG);
    assert_string_equal(error.message, "missing required setting: set --region or HS_REGION");
    assert_int_equal(load_sets(sets, ARGS("--region="), NO_ENV, NULL, NULL, &c, &error), HS_ERR_CONFIG);
    assert_int_equal(load_sets(sets, NO_ARGS, ENV("HS_REGION=1084"), NULL, NULL, &c, &error), HS_OK);
    assert_string_equal(hs_config_string(c, "region"), "1084");
    hs_config_free(c);
}

/* The help text `argv` produces; the caller frees it. */
static char *help_of(char **argv, char **envp)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    assert_non_null(out);
    hs_config *c = (hs_config *)1;
    hs_error error;
    bool help = false;
    assert_int_equal(load_sets(all_options, argv, envp, out, &help, &c, &error), HS_OK);
    fclose(out);
    assert_true(help);
    assert_null(c);
    return text;
}

static void test_help_documents_every_flag_its_variable_and_default(void **state)
{
    char *text = help_of(ARGS("--help"), NO_ENV);
    assert_non_null(strstr(text, "usage: svc [OPTIONS]\n"));
    assert_non_null(strstr(text, "A test service."));
    for (const hs_option *const *set = all_options; *set; set++) {
        for (const hs_option *o = *set; o->name; o++) {
            char flag[80], env[80], def[120];
            snprintf(flag, sizeof flag, o->type == HS_OPTION_BOOL ? "--[no-]%s" : "--%s ", o->name);
            int n = snprintf(env, sizeof env, "(env HS_");
            for (const char *p = o->name; *p; p++)
                env[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
            env[n] = '\0';
            snprintf(def, sizeof def, "default %s)", o->default_value);
            assert_non_null(strstr(text, flag));
            assert_non_null(strstr(text, env));
            if (*o->default_value)
                assert_non_null(strstr(text, def));
        }
    }
    assert_non_null(strstr(text, "--commit-interval DURATION"));
    assert_non_null(
        strstr(text, "how often the open transaction commits (env HS_COMMIT_INTERVAL, default 500ms)\n"));
    assert_non_null(strstr(text, "HS_KAFKA_<PROPERTY>"));
    assert_non_null(strstr(text, "HS_LOG_LEVEL"));
    assert_non_null(strstr(text, "Exit status: 0 ok;"));
    free(text);
}

static void test_help_is_given_whatever_the_environment_holds(void **state)
{
    char *text = help_of(ARGS("--workers", "2", "-h"), ENV("HS_FROB=1", "HS_WORKERS=many"));
    assert_non_null(strstr(text, "--workers N"));
    free(text);
}

static void test_version_prints_program_and_version(void **state)
{
    char *text = help_of(ARGS("--version"), NO_ENV);
    assert_string_equal(text, "svc 1.2.3\n");
    free(text);
}

static void test_log_line_masks_secrets_and_shows_origins(void **state)
{
    hs_config *c;
    hs_error error;
    char **env = ENV("HS_SASL_PASSWORD=hunter2", "HS_KAFKA_SASL_PASSWORD=kafka-secret", "HS_WORKERS=8");
    assert_int_equal(load(ARGS("--dry-run"), env, &c, &error), HS_OK);
    char *line = capture_stderr(hs_config_log, c);
    assert_null(strstr(line, "hunter2"));
    assert_null(strstr(line, "kafka-secret"));
    assert_non_null(strchr(line, '\n'));
    assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1); /* one line */

    json_error_t jerr;
    json_t *log = json_loads(line, 0, &jerr);
    assert_non_null(log);
    assert_string_equal(json_string_value(json_object_get(log, "msg")), "configuration");
    json_t *config = json_object_get(log, "config");
    assert_string_equal(json_string_value(json_object_get(json_object_get(config, "sasl-password"), "value")),
                        "***");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(config, "workers"), "value")), 8);
    assert_string_equal(json_string_value(json_object_get(json_object_get(config, "workers"), "origin")),
                        "env");
    assert_true(json_is_true(json_object_get(json_object_get(config, "dry-run"), "value")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(config, "dry-run"), "origin")),
                        "flag");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(config, "commit-interval"), "value")), "500ms");
    json_t *kafka = json_object_get(log, "kafka");
    assert_int_equal(json_array_size(kafka), 1);
    assert_string_equal(json_string_value(json_array_get(kafka, 0)), "HS_KAFKA_SASL_PASSWORD");
    json_decref(log);
    free(line);
    hs_config_free(c);
}

static void test_secret_value_never_appears_in_an_error(void **state)
{
    hs_option options[] = {{.name = "pin",
                            .type = HS_OPTION_INT,
                            .default_value = "0",
                            .help = "a numeric secret",
                            .secret = true},
                           {.name = NULL}};
    const hs_option *const sets[] = {options, NULL};
    hs_config *c = NULL;
    hs_error error;
    assert_int_equal(load_sets(sets, NO_ARGS, ENV("HS_PIN=12x34"), NULL, NULL, &c, &error), HS_ERR_CONFIG);
    assert_string_equal(error.message, "HS_PIN: '***' is not an integer");
}

/* --- secrets from files: HS_<NAME>_FILE of a secret option (docs/security.md) -------------------------- */

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_secret_option_reads_its_file(void **state)
{
    (void)state;
    char path[64], var[128];
    snprintf(path, sizeof path, "/tmp/hs-test-config-secret-%d", (int)getpid());
    write_text(path, "pa55-from-file\n");
    snprintf(var, sizeof var, "HS_SASL_PASSWORD_FILE=%s", path);
    hs_config *c = NULL;
    hs_error error = {0};
    assert_int_equal(load(NO_ARGS, ENV(var), &c, &error), HS_OK);
    assert_string_equal(hs_config_string(c, "sasl-password"), "pa55-from-file");
    assert_string_equal(hs_config_origin(c, "sasl-password"), "file");
    char *log = capture_stderr(hs_config_log, c);
    assert_null(strstr(log, "pa55-from-file"));
    free(log);
    hs_config_free(c);

    /* Both forms: which one counts would be a guess. */
    assert_load_fails(NO_ARGS, ENV(var, "HS_SASL_PASSWORD=other"), HS_ERR_CONFIG,
                      "both HS_SASL_PASSWORD and HS_SASL_PASSWORD_FILE are set: set one");
    unlink(path);
    char missing[160];
    snprintf(missing, sizeof missing, "HS_SASL_PASSWORD_FILE: cannot open '%s': No such file or directory",
             path);
    assert_load_fails(NO_ARGS, ENV(var), HS_ERR_CONFIG, missing);
}

static void test_file_form_is_only_for_secrets(void **state)
{
    (void)state;
    hs_config *c = NULL;
    hs_error error = {0};
    assert_int_equal(load(NO_ARGS, ENV("HS_WORKERS_FILE=/tmp/x"), &c, &error), HS_ERR_CONFIG);
    assert_non_null(strstr(error.message, "unknown environment variable HS_WORKERS_FILE"));
}

static void test_secret_given_as_a_flag_is_warned_of(void **state)
{
    (void)state;
    hs_config *c = NULL;
    hs_error error = {0};
    assert_int_equal(load(ARGS("--sasl-password", "on-the-command-line"), NO_ENV, &c, &error), HS_OK);
    char *log = capture_stderr(hs_config_log, c);
    assert_non_null(strstr(log, "a secret was given as a flag"));
    assert_non_null(strstr(log, "HS_SASL_PASSWORD_FILE"));
    assert_null(strstr(log, "on-the-command-line"));
    free(log);
    hs_config_free(c);
}

static void test_positional_arguments_keep_their_order(void **state)
{
    hs_config *c;
    hs_error error;
    assert_int_equal(
        load(ARGS("in.ndjson", "--workers", "2", "-", "--", "--workers", "out"), NO_ENV, &c, &error), HS_OK);
    assert_int_equal(hs_config_int(c, "workers"), 2);
    assert_int_equal(hs_config_argc(c), 4);
    char *const *argv = hs_config_argv(c);
    assert_string_equal(argv[0], "in.ndjson");
    assert_string_equal(argv[1], "-");
    assert_string_equal(argv[2], "--workers");
    assert_string_equal(argv[3], "out");
    assert_null(argv[4]);
    hs_config_free(c);
}

/* Runs `fn` in a child process with stderr silenced; returns its wait status. */
static int in_child(void (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *null = freopen("/dev/null", "w", stderr);
        (void)null;
        fn();
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void load_duplicate_names(void)
{
    const hs_option *const sets[] = {runtime_options, runtime_options, NULL};
    hs_config *c;
    hs_error error;
    hs_err err = load_sets(sets, NO_ARGS, NO_ENV, NULL, NULL, &c, &error);
    _exit(err == HS_ERR_INTERNAL ? 3 : 4);
}

static void test_duplicate_option_names_are_a_bug(void **state)
{
    int status = in_child(load_duplicate_names);
#ifdef NDEBUG
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 3); /* HS_ERR_INTERNAL */
#else
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT); /* assert() */
#endif
}

static void read_undeclared_name(void)
{
    hs_config *c;
    hs_error error;
    if (load(NO_ARGS, NO_ENV, &c, &error) == HS_OK)
        hs_config_int(c, "worker");
}

static void test_reading_an_undeclared_option_aborts(void **state)
{
    int status = in_child(read_undeclared_name);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_apply_when_nothing_is_set),
        cmocka_unit_test(test_environment_overrides_default),
        cmocka_unit_test(test_flag_overrides_environment),
        cmocka_unit_test(test_flag_value_may_follow_an_equals_sign),
        cmocka_unit_test(test_repeated_flag_keeps_the_last_value),
        cmocka_unit_test(test_bool_accepts_switch_negation_and_words),
        cmocka_unit_test(test_bool_rejects_other_words),
        cmocka_unit_test(test_duration_units),
        cmocka_unit_test(test_duration_errors_say_what_a_duration_looks_like),
        cmocka_unit_test(test_int_range_error_names_the_variable_or_flag),
        cmocka_unit_test(test_int_rejects_anything_but_a_decimal_integer),
        cmocka_unit_test(test_one_sided_range_says_at_least),
        cmocka_unit_test(test_address_accepts_host_port_bracketed_v6_and_bare_port),
        cmocka_unit_test(test_address_rejects_what_is_not_host_port),
        cmocka_unit_test(test_unknown_flag_is_a_usage_error),
        cmocka_unit_test(test_unknown_flag_close_to_a_known_one_suggests_it),
        cmocka_unit_test(test_flag_without_its_value_is_a_usage_error),
        cmocka_unit_test(test_unknown_environment_variable_suggests_the_closest_name),
        cmocka_unit_test(test_unknown_environment_variable_far_from_every_name),
        cmocka_unit_test(test_kafka_pass_through_log_level_and_script_variables_are_not_errors),
        cmocka_unit_test(test_schema_registry_settings_are_not_errors_where_undeclared),
        cmocka_unit_test(test_invalid_log_level_stops_start_up),
        cmocka_unit_test(test_log_level_flag_overrides_environment),
        cmocka_unit_test(test_empty_environment_variable_counts_as_unset),
        cmocka_unit_test(test_required_option_missing_stops_start_up),
        cmocka_unit_test(test_help_documents_every_flag_its_variable_and_default),
        cmocka_unit_test(test_help_is_given_whatever_the_environment_holds),
        cmocka_unit_test(test_version_prints_program_and_version),
        cmocka_unit_test(test_log_line_masks_secrets_and_shows_origins),
        cmocka_unit_test(test_secret_value_never_appears_in_an_error),
        cmocka_unit_test(test_secret_option_reads_its_file),
        cmocka_unit_test(test_file_form_is_only_for_secrets),
        cmocka_unit_test(test_secret_given_as_a_flag_is_warned_of),
        cmocka_unit_test(test_positional_arguments_keep_their_order),
        cmocka_unit_test(test_duplicate_option_names_are_a_bug),
        cmocka_unit_test(test_reading_an_undeclared_option_aborts),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
