/* Configuration of a service process: option declarations in, one checked value per option out. The flags
 * are read first, only as text, so that --help and --version answer whatever the environment holds; then the
 * HS_* environment is applied over the defaults and the flags over it, each value parsed by its type as it
 * is applied, so that an error names the flag or variable the bad value came from.
 */
#include "hs/config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hs/log.h"

#define NAME_MAX_LEN  48
#define ENV_NAME_SIZE (sizeof "HS_" + NAME_MAX_LEN)
#define SECOND_MS     1000LL
#define MINUTE_MS     (60 * SECOND_MS)
#define HOUR_MS       (60 * MINUTE_MS)

/* HS_* variables that are not options and never an error (see hs_config_load in config.h). */
static const char kafka_prefix[] = "HS_KAFKA_";
static const char log_level_var[] = "HS_LOG_LEVEL";
static const char *const script_vars[] = {"HS_BUILD_DIR", "HS_CACHE_DIR", "HS_BROKER_KIND", "HS_FIXTURES_DIR",
                                          "HS_BENCH_KAFKA_DIR"};
static const char script_prefix[] = "HS_LOCAL_KAFKA_";
/* Read by hs_http_start() (hs/http.h); hs_config_log notes which are set, never their values. */
static const char *const http_vars[] = {"HS_HTTP_TOKEN", "HS_HTTP_TOKEN_FILE", "HS_HTTP_TLS_CERT_FILE",
                                        "HS_HTTP_TLS_KEY_FILE"};
/* Settings of the processes that write values, set for every program of a deployment alike: a program that
 * does not declare them (a reader, which takes Confluent-framed and bare values without a registry) lets them
 * be (hs/schema_registry.h). */
static const char *const shared_vars[] = {"HS_SCHEMA_REGISTRY_URL", "HS_SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
                                          "HS_SCHEMA_REGISTRY_BEARER_AUTH_TOKEN",
                                          "HS_SCHEMA_REGISTRY_SSL_CA_LOCATION"};

static const char origin_default[] = "default";
static const char origin_env[] = "env";
static const char origin_flag[] = "flag";
static const char origin_file[] = "file"; /* a secret option's HS_<NAME>_FILE */
static const char file_suffix[] = "_FILE";
#define SECRET_FILE_MAX ((size_t)64 * 1024)

typedef struct config_value {
    const hs_option *option;      /* the caller's declaration (static storage) */
    char env_name[ENV_NAME_SIZE]; /* "HS_BOOTSTRAP_SERVERS" */
    char *text;                   /* malloc'd: the value as written; NULL while a required option is unset */
    char *host;                   /* ADDRESS: malloc'd host part, else NULL */
    long long number;             /* INT and DURATION_MS (ms): the value; BOOL: 0 or 1; ADDRESS: the port */
    const char *origin;           /* origin_default, _env or _flag; NULL while unset */
    const char *flag_text;        /* during the load only: the flag's value (argv's, or "true"/"false") */
} config_value;

struct hs_config {
    char *program;
    config_value *values; /* one per declared option, in declaration order */
    size_t count;
    char **args; /* the positional arguments (argv's strings), then NULL */
    int arg_count;
    char **kafka_vars; /* malloc'd names of the HS_KAFKA_* variables set (values are not kept) */
    size_t kafka_count;
    const char *log_level_flag;   /* during the load only: --log-level's value (argv's), or NULL */
    int log_level;                /* HS_LOG_LEVEL or --log-level: an hs_log_level, or -1 when not set */
    const char *log_level_origin; /* origin_env or origin_flag, when set */
};

/* --- parsing values ---------------------------------------------------------------------------------- */

typedef enum parse_result { PARSE_OK, PARSE_SYNTAX, PARSE_RANGE, PARSE_FRACTION } parse_result;

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A decimal integer with an optional sign and nothing else (no spaces, no base prefixes). */
static parse_result parse_integer(const char *text, long long *out)
{
    const char *digits = text[0] == '+' || text[0] == '-' ? text + 1 : text;
    if (!is_digit(digits[0]))
        return PARSE_SYNTAX;
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (*end != '\0')
        return PARSE_SYNTAX;
    if (errno == ERANGE)
        return PARSE_RANGE;
    *out = value;
    return PARSE_OK;
}

/* "250ms", "2s", "1.5s", "1m", "1h", or a plain number of milliseconds, computed exactly in integers; a value
 * that is not a whole number of milliseconds ("1.5ms") is refused rather than rounded. */
static parse_result parse_duration(const char *text, long long *ms)
{
    const char *p = text;
    if (!is_digit(*p))
        return PARSE_SYNTAX; /* also "", "-1s", ".5s" and " 1s" */
    long long whole = 0;
    bool overflow = false;
    for (; is_digit(*p); p++) {
        int digit = *p - '0';
        if (whole > (LLONG_MAX - digit) / 10)
            overflow = true;
        else
            whole = whole * 10 + digit;
    }
    const char *frac = p;
    size_t frac_len = 0;
    if (*p == '.') {
        frac = ++p;
        while (is_digit(*p))
            p++;
        frac_len = (size_t)(p - frac);
        if (frac_len == 0)
            return PARSE_SYNTAX;
    }
    long long unit_ms;
    if (strcmp(p, "") == 0 || strcmp(p, "ms") == 0)
        unit_ms = 1;
    else if (strcmp(p, "s") == 0)
        unit_ms = SECOND_MS;
    else if (strcmp(p, "m") == 0)
        unit_ms = MINUTE_MS;
    else if (strcmp(p, "h") == 0)
        unit_ms = HOUR_MS;
    else
        return PARSE_SYNTAX;
    if (overflow || whole > LLONG_MAX / unit_ms)
        return PARSE_RANGE;

    /* The fraction: f / 10^k of a unit is whole milliseconds only if 10^k divides f * unit_ms. With trailing
     * zeros gone and unit_ms at most 2^7 * 3^2 * 5^5, that needs k <= 7, so nine digits bound every case and
     * keep f * unit_ms far from overflow. */
    while (frac_len > 0 && frac[frac_len - 1] == '0')
        frac_len--;
    if (frac_len > 9)
        return PARSE_FRACTION;
    long long f = 0, scale = 1;
    for (size_t i = 0; i < frac_len; i++) {
        f = f * 10 + (frac[i] - '0');
        scale *= 10;
    }
    if (f * unit_ms % scale != 0)
        return PARSE_FRACTION;
    long long extra = f * unit_ms / scale;
    if (whole * unit_ms > LLONG_MAX - extra)
        return PARSE_RANGE;
    *ms = whole * unit_ms + extra;
    return PARSE_OK;
}

static bool parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes"};
    static const char *const no[] = {"false", "0", "no"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* A host name or IPv4 address: letters, digits, '-', '.', '_' (compose service names), as a resolver would
 * take it; whether it resolves is for whoever binds or connects. */
static bool is_host_name(const char *host, size_t len)
{
    if (len > 253)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)host[i];
        if (!isalnum(ch) && ch != '-' && ch != '.' && ch != '_')
            return false;
    }
    return true;
}

/* An IPv6 address as inet_pton reads it, with an optional zone ("fe80::1%eth0"). */
static bool is_ipv6(const char *host, size_t len)
{
    char buf[INET6_ADDRSTRLEN + 32];
    if (len >= sizeof buf)
        return false;
    memcpy(buf, host, len);
    buf[len] = '\0';
    char *zone = strchr(buf, '%');
    if (zone) {
        *zone++ = '\0';
        if (!*zone || !is_host_name(zone, strlen(zone)))
            return false;
    }
    struct in6_addr addr;
    return inet_pton(AF_INET6, buf, &addr) == 1;
}

/* "host:port", "[v6]:port" or ":port". On success *host is a malloc'd copy of the host part. */
static hs_err parse_address(const char *label, const char *text, const char *shown, long long *port,
                            char **host, hs_error *error)
{
    const char *host_start = text, *port_text;
    size_t host_len;
    bool ok;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        ok = close && close[1] == ':';
        host_start = text + 1;
        host_len = ok ? (size_t)(close - host_start) : 0;
        ok = ok && is_ipv6(host_start, host_len);
        port_text = ok ? close + 2 : "";
    } else {
        const char *colon = strrchr(text, ':');
        host_len = colon ? (size_t)(colon - text) : 0;
        ok = colon && is_host_name(text, host_len); /* a bare IPv6 address fails here: it needs brackets */
        port_text = ok ? colon + 1 : "";
    }
    size_t port_digits = strspn(port_text, "0123456789");
    if (!ok || port_digits == 0 || port_text[port_digits] != '\0')
        return hs_error_set(error, HS_ERR_CONFIG,
                            "%s: '%.80s' is not an address (host:port, [v6]:port or :port)", label, shown);
    long value = port_digits > 5 ? 65536 : strtol(port_text, NULL, 10);
    if (value > 65535)
        return hs_error_set(error, HS_ERR_CONFIG, "%s: '%.80s': the port must be 0..65535", label, shown);
    *host = strndup(host_start, host_len);
    if (!*host)
        return hs_error_set(error, HS_ERR_NOMEM, "%s: out of memory", label);
    *port = value;
    return HS_OK;
}

/* A bound of an option, for messages: a duration in its largest whole unit ("10m"), an integer as is. */
static void format_bound(const hs_option *o, long long value, char *buf, size_t size)
{
    if (o->type != HS_OPTION_DURATION_MS || value == 0)
        snprintf(buf, size, "%lld", value);
    else if (value % HOUR_MS == 0)
        snprintf(buf, size, "%lldh", value / HOUR_MS);
    else if (value % MINUTE_MS == 0)
        snprintf(buf, size, "%lldm", value / MINUTE_MS);
    else if (value % SECOND_MS == 0)
        snprintf(buf, size, "%llds", value / SECOND_MS);
    else
        snprintf(buf, size, "%lldms", value);
}

static hs_err check_range(const hs_option *o, const char *label, const char *shown, long long value,
                          hs_error *error)
{
    if ((o->min == 0 && o->max == 0) || (value >= o->min && value <= o->max))
        return HS_OK;
    char lo[32], hi[32];
    format_bound(o, o->min, lo, sizeof lo);
    format_bound(o, o->max, hi, sizeof hi);
    if (o->max == LLONG_MAX)
        return hs_error_set(error, HS_ERR_CONFIG, "%s: '%.80s' is out of range: must be at least %s", label,
                            shown, lo);
    if (o->min == LLONG_MIN)
        return hs_error_set(error, HS_ERR_CONFIG, "%s: '%.80s' is out of range: must be at most %s", label,
                            shown, hi);
    return hs_error_set(error, HS_ERR_CONFIG, "%s: '%.80s' is out of range: must be %s..%s", label, shown, lo,
                        hi);
}

/* Parses `text` as a value of `o`. `label` names where it came from ("--workers", "HS_WORKERS"); a secret's
 * text never appears in a message. On success *host is NULL or, for an ADDRESS, a malloc'd host. */
static hs_err parse_value(const hs_option *o, const char *label, const char *text, long long *number,
                          char **host, hs_error *error)
{
    const char *shown = o->secret ? "***" : text;
    *host = NULL;
    switch (o->type) {
    case HS_OPTION_STRING: return HS_OK;
    case HS_OPTION_INT:
        switch (parse_integer(text, number)) {
        case PARSE_OK: return check_range(o, label, shown, *number, error);
        case PARSE_RANGE:
            return hs_error_set(error, HS_ERR_CONFIG, "%s: '%.80s' is out of range", label, shown);
        default: return hs_error_set(error, HS_ERR_CONFIG, "%s: '%.80s' is not an integer", label, shown);
        }
    case HS_OPTION_DURATION_MS:
        switch (parse_duration(text, number)) {
        case PARSE_OK: return check_range(o, label, shown, *number, error);
        case PARSE_RANGE:
            return hs_error_set(error, HS_ERR_CONFIG, "%s: '%.80s' is out of range", label, shown);
        case PARSE_FRACTION:
            return hs_error_set(error, HS_ERR_CONFIG, "%s: '%.80s' is not a whole number of milliseconds",
                                label, shown);
        default:
            return hs_error_set(error, HS_ERR_CONFIG, "%s: '%.80s' is not a duration (e.g. 500ms, 2s, 1m)",
                                label, shown);
        }
    case HS_OPTION_BOOL: {
        bool value;
        if (!parse_bool(text, &value))
            return hs_error_set(error, HS_ERR_CONFIG,
                                "%s: '%.80s' is not a boolean (true/false, 1/0, yes/no)", label, shown);
        *number = value;
        return HS_OK;
    }
    case HS_OPTION_ADDRESS: return parse_address(label, text, shown, number, host, error);
    }
    return hs_error_set(error, HS_ERR_INTERNAL, "%s: unknown option type %d", label, (int)o->type);
}

/* Parses `text` and, only if it is valid, makes it the value of `v`. */
static hs_err set_value(config_value *v, const char *text, const char *origin, const char *label,
                        hs_error *error)
{
    long long number = 0;
    char *host;
    hs_err err = parse_value(v->option, label, text, &number, &host, error);
    if (err != HS_OK)
        return err;
    char *copy = strdup(text);
    if (!copy) {
        free(host);
        return hs_error_set(error, HS_ERR_NOMEM, "%s: out of memory", label);
    }
    free(v->text);
    free(v->host);
    v->text = copy;
    v->host = host;
    v->number = number;
    v->origin = origin;
    return HS_OK;
}

/* --- the declarations ---------------------------------------------------------------------------------- */

/* A mistake in the option declarations is a bug of the program, not of its user: it fails every start. */
static hs_err declaration_bug(hs_error *error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static hs_err declaration_bug(hs_error *error, const char *fmt, ...)
{
    char reason[sizeof error->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
#ifndef NDEBUG
    fprintf(stderr, "hs_config: bug in the option declarations: %s\n", reason);
#endif
    assert(!"bug in the option declarations");
    return hs_error_set(error, HS_ERR_INTERNAL, "bug in the option declarations: %s", reason);
}

static bool is_http_var(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof http_vars / sizeof http_vars[0]; i++)
        if (strlen(http_vars[i]) == len && strncmp(name, http_vars[i], len) == 0)
            return true;
    return false;
}

static bool is_script_var(const char *name, size_t len)
{
    if (len >= sizeof script_prefix - 1 && strncmp(name, script_prefix, sizeof script_prefix - 1) == 0)
        return true;
    for (size_t i = 0; i < sizeof script_vars / sizeof script_vars[0]; i++)
        if (strlen(script_vars[i]) == len && strncmp(name, script_vars[i], len) == 0)
            return true;
    return false;
}

static bool is_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || is_digit(ch) || ch == '-';
}

static config_value *find_value(const hs_config *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->count; i++)
        if (strncmp(c->values[i].option->name, name, len) == 0 && c->values[i].option->name[len] == '\0')
            return &c->values[i];
    return NULL;
}

static config_value *find_env(const hs_config *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->count; i++)
        if (strlen(c->values[i].env_name) == len && strncmp(c->values[i].env_name, name, len) == 0)
            return &c->values[i];
    return NULL;
}

/* Checks one declaration and appends it to c->values with its default. */
static hs_err add_option(hs_config *c, const hs_option *o, hs_error *error)
{
    const char *name = o->name;
    size_t len = strlen(name);
    bool well_formed = len > 0 && len <= NAME_MAX_LEN && name[0] >= 'a' && name[0] <= 'z' &&
                       name[len - 1] != '-' && !strstr(name, "--") && strncmp(name, "no-", 3) != 0;
    for (size_t i = 0; i < len; i++)
        well_formed = well_formed && is_name_char(name[i]);
    if (!well_formed)
        return declaration_bug(error,
                               "option name '%.60s' is not lowercase letters, digits and single '-', or "
                               "begins with 'no-' or is too long",
                               name);
    if (strcmp(name, "help") == 0 || strcmp(name, "version") == 0 || strcmp(name, "log-level") == 0)
        return declaration_bug(error, "--%s is built in", name);
    if (find_value(c, name, len))
        return declaration_bug(error, "option --%s is declared twice", name);
    if ((unsigned)o->type > HS_OPTION_ADDRESS || !o->help || o->min > o->max)
        return declaration_bug(error, "option --%s has an invalid type, no help or min > max", name);

    config_value *v = &c->values[c->count];
    memcpy(v->env_name, "HS_", 3);
    for (size_t i = 0; i <= len; i++)
        v->env_name[3 + i] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
    if (strncmp(v->env_name, kafka_prefix, sizeof kafka_prefix - 1) == 0 ||
        is_script_var(v->env_name, len + 3))
        return declaration_bug(error, "option --%s would read %s, which is reserved", name, v->env_name);
    v->option = o;
    c->count++;

    if (!o->default_value)
        return HS_OK;
    char label[sizeof "default of --" + NAME_MAX_LEN];
    snprintf(label, sizeof label, "default of --%s", name);
    hs_err err = set_value(v, o->default_value, origin_default, label, error);
    if (err == HS_ERR_CONFIG)
        return declaration_bug(error, "%s", error ? error->message : label);
    return err;
}

static hs_err add_options(hs_config *c, const hs_option *const *option_sets, hs_error *error)
{
    size_t total = 0;
    for (const hs_option *const *set = option_sets; set && *set; set++)
        for (const hs_option *o = *set; o->name; o++)
            total++;
    c->values = calloc(total ? total : 1, sizeof *c->values);
    if (!c->values)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory for %zu options", total);
    for (const hs_option *const *set = option_sets; set && *set; set++) {
        for (const hs_option *o = *set; o->name; o++) {
            hs_err err = add_option(c, o, error);
            if (err != HS_OK)
                return err;
        }
    }
    return HS_OK;
}

/* --- suggestions for unknown names --------------------------------------------------------------------- */

/* Levenshtein distance, ignoring case; SIZE_MAX for names too long to be worth comparing. */
static size_t edit_distance(const char *a, size_t a_len, const char *b, size_t b_len)
{
    size_t row[128];
    if (a_len >= sizeof row / sizeof row[0] || b_len >= sizeof row / sizeof row[0])
        return SIZE_MAX;
    for (size_t j = 0; j <= b_len; j++)
        row[j] = j;
    for (size_t i = 1; i <= a_len; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b_len; j++) {
            size_t above = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diagonal + cost;
            if (above + 1 < best)
                best = above + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[b_len];
}

/* True when the `n` bytes at `needle` occur, ignoring case, within the `len` bytes at `haystack`. */
static bool contains_ignoring_case(const char *haystack, size_t len, const char *needle, size_t n)
{
    for (size_t i = 0; i + n <= len; i++)
        if (strncasecmp(haystack + i, needle, n) == 0)
            return true;
    return false;
}

/* How far `known` is from what the user typed (`given`, not terminated), or SIZE_MAX when it is not close
 * enough to suggest: a few typos (a quarter of the name, at least two), or one name inside the other
 * ("BOOTSTRAP" in "BOOTSTRAP_SERVERS"). */
static size_t closeness(const char *given, size_t given_len, const char *known)
{
    size_t known_len = strlen(known);
    size_t d = edit_distance(given, given_len, known, known_len);
    size_t limit = known_len / 4 > 2 ? known_len / 4 : 2;
    if (d == SIZE_MAX || d <= limit)
        return d;
    bool inside = given_len < known_len
                      ? given_len >= 4 && contains_ignoring_case(known, known_len, given, given_len)
                      : known_len >= 4 && contains_ignoring_case(given, given_len, known, known_len);
    return inside ? d : SIZE_MAX;
}

/* Writes the (at most three) known names closest to `given` into `out` as "A, B or C" with `prefix` before
 * each, or "" when none is close. `as_env`: the candidates are the HS_* names, else the flags. */
static void suggest(const hs_config *c, const char *given, size_t given_len, bool as_env, const char *prefix,
                    char *out, size_t size)
{
    enum { MAX_SHOWN = 3 };
    const char *best[MAX_SHOWN];
    size_t best_d[MAX_SHOWN], shown = 0;
    static const char *const env_builtins[] = {log_level_var};
    static const char *const flag_builtins[] = {"help", "version", "log-level"};
    size_t builtin_count = as_env ? 1 : 3;
    for (size_t i = 0; i < c->count + builtin_count; i++) {
        const char *known = i < c->count
                                ? (as_env ? c->values[i].env_name : c->values[i].option->name)
                                : (as_env ? env_builtins[i - c->count] : flag_builtins[i - c->count]);
        /* Every HS_* name shares "HS_": compare what follows it. */
        size_t skip = as_env ? 3 : 0;
        size_t d = closeness(given + skip, given_len - skip, known + skip);
        if (d == SIZE_MAX)
            continue;
        /* Insertion into the short list, closest first, earlier declarations first among equals. */
        size_t at = shown;
        while (at > 0 && best_d[at - 1] > d)
            at--;
        if (at >= MAX_SHOWN)
            continue;
        size_t last = shown < MAX_SHOWN ? shown : MAX_SHOWN - 1;
        for (size_t k = last; k > at; k--) {
            best[k] = best[k - 1];
            best_d[k] = best_d[k - 1];
        }
        best[at] = known;
        best_d[at] = d;
        if (shown < MAX_SHOWN)
            shown++;
    }
    out[0] = '\0';
    size_t used = 0;
    for (size_t k = 0; k < shown && used < size; k++) {
        const char *sep = k == 0 ? "" : k + 1 == shown ? " or " : ", ";
        int n = snprintf(out + used, size - used, "%s%s%s", sep, prefix, best[k]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* --- the flags ---------------------------------------------------------------------------------------- */

typedef enum flag_outcome { FLAGS_READ, FLAGS_HELP, FLAGS_VERSION } flag_outcome;

static hs_err unknown_flag(const hs_config *c, const char *arg, size_t len, hs_error *error)
{
    char hint[200] = "";
    if (strncmp(arg, "--", 2) == 0)
        suggest(c, arg + 2, len - 2, false, "--", hint, sizeof hint);
    if (hint[0])
        return hs_error_set(error, HS_ERR_USAGE, "unknown flag %.*s: did you mean %s? (see --help)", (int)len,
                            arg, hint);
    return hs_error_set(error, HS_ERR_USAGE, "unknown flag %.*s (see --help)", (int)len, arg);
}

/* Reads argv into each value's flag_text and c->args, without judging the values yet. */
static hs_err read_flags(hs_config *c, int argc, char **argv, flag_outcome *outcome, hs_error *error)
{
    *outcome = FLAGS_READ;
    c->args = calloc(argc > 0 ? (size_t)argc : 1, sizeof *c->args);
    if (!c->args)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory for %d arguments", argc);
    bool flags_ended = false;
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        if (flags_ended || arg[0] != '-' || strcmp(arg, "-") == 0) {
            c->args[c->arg_count++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            flags_ended = true;
            continue;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            *outcome = FLAGS_HELP;
            return HS_OK;
        }
        if (strcmp(arg, "--version") == 0) {
            *outcome = FLAGS_VERSION;
            return HS_OK;
        }
        if (arg[1] != '-')
            return unknown_flag(c, arg, strlen(arg), error);

        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const char **slot;
        bool takes_value;
        config_value *v = find_value(c, name, len);
        config_value *negated =
            !v && len > 3 && strncmp(name, "no-", 3) == 0 ? find_value(c, name + 3, len - 3) : NULL;
        if (v) {
            slot = &v->flag_text;
            takes_value = v->option->type != HS_OPTION_BOOL;
        } else if (negated && negated->option->type == HS_OPTION_BOOL) {
            if (eq)
                return hs_error_set(error, HS_ERR_USAGE, "flag --%.*s takes no value (see --help)", (int)len,
                                    name);
            negated->flag_text = "false";
            continue;
        } else if (len == strlen("log-level") && strncmp(name, "log-level", len) == 0) {
            slot = &c->log_level_flag;
            takes_value = true;
        } else {
            return unknown_flag(c, arg, (size_t)(name - arg) + len, error);
        }

        if (eq)
            *slot = eq + 1;
        else if (!takes_value)
            *slot = "true";
        else if (i + 1 < argc)
            *slot = argv[++i];
        else
            return hs_error_set(error, HS_ERR_USAGE, "flag --%s needs a value (see --help)", name);
    }
    return HS_OK;
}

/* --- the environment ---------------------------------------------------------------------------------- */

/* HS_LOG_LEVEL and --log-level, which are not options: checked here, applied when the load succeeds. */
static hs_err set_log_level(hs_config *c, const char *text, const char *origin, const char *label,
                            hs_error *error)
{
    if (c->log_level_origin == origin_env && origin == origin_env)
        return HS_OK; /* listed twice in envp: the first counts */
    int level = hs_log_level_parse(text);
    if (level < 0)
        return hs_error_set(error, HS_ERR_CONFIG, "%s: '%.80s' is not a log level (debug, info, warn, error)",
                            label, text);
    c->log_level = level;
    c->log_level_origin = origin;
    return HS_OK;
}

static hs_err note_kafka_var(hs_config *c, const char *name, size_t len, hs_error *error)
{
    char **grown = realloc(c->kafka_vars, (c->kafka_count + 1) * sizeof *grown);
    if (!grown)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    c->kafka_vars = grown;
    c->kafka_vars[c->kafka_count] = strndup(name, len);
    if (!c->kafka_vars[c->kafka_count])
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    c->kafka_count++;
    return HS_OK;
}

/* Whether `envp` sets `name` (the first `len` characters) to a non-empty value. */
static bool env_sets(char **envp, const char *name, size_t len)
{
    for (char **entry = envp; entry && *entry; entry++)
        if (strncmp(*entry, name, len) == 0 && (*entry)[len] == '=' && (*entry)[len + 1] != '\0')
            return true;
    return false;
}

/* The secret option whose HS_<NAME>_FILE variable `name` is, or NULL. */
static config_value *secret_of_file_var(const hs_config *c, const char *name, size_t len)
{
    size_t suffix_len = sizeof file_suffix - 1;
    if (len <= suffix_len || strncmp(name + len - suffix_len, file_suffix, suffix_len) != 0)
        return NULL;
    config_value *v = find_env(c, name, len - suffix_len);
    return v && v->option->secret ? v : NULL;
}

/* HS_<NAME>_FILE=path of a secret option: its value is the file's contents (docs/security.md). */
static hs_err apply_secret_file(config_value *v, const char *name, size_t len, const char *path, char **envp,
                                hs_error *error)
{
    char variable[ENV_NAME_SIZE + sizeof file_suffix];
    snprintf(variable, sizeof variable, "%.*s", (int)len, name);
    if (env_sets(envp, v->env_name, strlen(v->env_name)))
        return hs_error_set(error, HS_ERR_CONFIG, "both %s and %s are set: set one", v->env_name, variable);
    if (v->origin == origin_file)
        return HS_OK; /* listed twice in envp: the first counts */
    char *secret;
    hs_err err = hs_config_read_file(variable, path, SECRET_FILE_MAX, &secret, error);
    if (err != HS_OK || !secret)
        return err != HS_OK ? err : hs_error_set(error, HS_ERR_INTERNAL, "%s: no value read", variable);
    err = set_value(v, secret, origin_file, variable, error);
    hs_secret_wipe(secret, strlen(secret));
    free(secret);
    return err;
}

/* Applies the HS_* variables of `envp` over the defaults. Of a variable listed twice, the first counts, as
 * for getenv(). */
static hs_err apply_environment(hs_config *c, char **envp, hs_error *error)
{
    for (char **entry = envp; entry && *entry; entry++) {
        const char *name = *entry;
        const char *eq = strchr(name, '=');
        if (strncmp(name, "HS_", 3) != 0 || !eq || eq[1] == '\0') /* not ours, or empty: unset */
            continue;
        size_t len = (size_t)(eq - name);
        const char *text = eq + 1;
        if (is_http_var(name, len))
            continue; /* hs_http_start() reads and logs them */
        if (strncmp(name, kafka_prefix, sizeof kafka_prefix - 1) == 0) {
            hs_err err = note_kafka_var(c, name, len, error);
            if (err != HS_OK)
                return err;
            continue;
        }
        if (is_script_var(name, len))
            continue;
        if (len == sizeof log_level_var - 1 && strncmp(name, log_level_var, len) == 0) {
            hs_err err = set_log_level(c, text, origin_env, log_level_var, error);
            if (err != HS_OK)
                return err;
            continue;
        }
        config_value *v = find_env(c, name, len);
        config_value *secret = v ? NULL : secret_of_file_var(c, name, len);
        if (secret) {
            hs_err err = apply_secret_file(secret, name, len, text, envp, error);
            if (err != HS_OK)
                return err;
            continue;
        }
        /* A shared variable, or the _FILE form of one, that this program does not declare: not an error. */
        size_t suffix_len = sizeof file_suffix - 1;
        size_t bare_len = len > suffix_len && strncmp(name + len - suffix_len, file_suffix, suffix_len) == 0
                              ? len - suffix_len
                              : len;
        bool shared = false;
        for (size_t i = 0; !v && i < sizeof shared_vars / sizeof shared_vars[0]; i++)
            shared = shared || (strlen(shared_vars[i]) == len && strncmp(name, shared_vars[i], len) == 0) ||
                     (strlen(shared_vars[i]) == bare_len && strncmp(name, shared_vars[i], bare_len) == 0);
        if (shared)
            continue;
        if (!v) {
            char hint[200];
            suggest(c, name, len, true, "", hint, sizeof hint);
            if (hint[0])
                return hs_error_set(error, HS_ERR_CONFIG,
                                    "unknown environment variable %.*s: did you mean %s? (see --help)",
                                    (int)len, name, hint);
            return hs_error_set(error, HS_ERR_CONFIG, "unknown environment variable %.*s (see --help)",
                                (int)(len < 80 ? len : 80), name);
        }
        if (v->origin == origin_env)
            continue;
        hs_err err = set_value(v, text, origin_env, v->env_name, error);
        if (err != HS_OK)
            return err;
    }
    return HS_OK;
}

/* --- help ---------------------------------------------------------------------------------------------- */

/* The flag as --help shows it: "--workers N", "--[no-]dry-run". */
static void flag_synopsis(const hs_option *o, char *buf, size_t size)
{
    static const char *const placeholders[] = {
        [HS_OPTION_STRING] = "VALUE",         [HS_OPTION_INT] = "N",
        [HS_OPTION_DURATION_MS] = "DURATION", [HS_OPTION_BOOL] = "",
        [HS_OPTION_ADDRESS] = "HOST:PORT",
    };
    if (o->type == HS_OPTION_BOOL)
        snprintf(buf, size, "--[no-]%s", o->name);
    else
        snprintf(buf, size, "--%s %s", o->name, placeholders[o->type]);
}

/* One line of the option table: the synopsis padded to `width`, or on a line of its own when longer. */
static void write_help_line(FILE *out, int width, const char *synopsis, const char *text)
{
    if ((int)strlen(synopsis) > width)
        fprintf(out, "  %s\n  %-*s  %s\n", synopsis, width, "", text);
    else
        fprintf(out, "  %-*s  %s\n", width, synopsis, text);
}

static void write_help(const hs_config *c, const char *summary, FILE *out)
{
    enum { MAX_WIDTH = 30 };
    int width = (int)strlen("HS_KAFKA_<PROPERTY>");
    char synopsis[sizeof "--[no-]" + NAME_MAX_LEN + 16];
    for (size_t i = 0; i < c->count; i++) {
        flag_synopsis(c->values[i].option, synopsis, sizeof synopsis);
        int len = (int)strlen(synopsis);
        if (len > width)
            width = len > MAX_WIDTH ? MAX_WIDTH : len;
    }

    fprintf(out, "usage: %s [OPTIONS]\n\n", c->program);
    if (summary && *summary)
        fprintf(out, "%s\n\n", summary);
    fprintf(out, "Options (a flag overrides its environment variable, which overrides the default):\n");
    for (size_t i = 0; i < c->count; i++) {
        const hs_option *o = c->values[i].option;
        char text[512];
        const char *def = o->default_value;
        flag_synopsis(o, synopsis, sizeof synopsis);
        char env[ENV_NAME_SIZE * 2 + 16];
        if (o->secret) /* the file form first: a flag or the environment shows a secret to others */
            snprintf(env, sizeof env, "%s%s or %s", c->values[i].env_name, file_suffix,
                     c->values[i].env_name);
        else
            snprintf(env, sizeof env, "%s", c->values[i].env_name);
        if (!def)
            snprintf(text, sizeof text, "%s (env %s, required)", o->help, env);
        else if (!*def)
            snprintf(text, sizeof text, "%s (env %s)", o->help, env);
        else
            snprintf(text, sizeof text, "%s (env %s, default %s)", o->help, env, o->secret ? "***" : def);
        write_help_line(out, width, synopsis, text);
    }
    write_help_line(out, width, "--log-level LEVEL", "debug, info, warn or error (env HS_LOG_LEVEL)");
    write_help_line(out, width, "-h, --help", "show this help and exit");
    write_help_line(out, width, "--version", "print the version and exit");
    fprintf(out, "\nEnvironment:\n");
    write_help_line(out, width, "HS_KAFKA_<PROPERTY>",
                    "any librdkafka property, in capitals with '_' for '.':");
    write_help_line(out, width, "", "HS_KAFKA_SECURITY_PROTOCOL=SASL_SSL sets security.protocol");
    write_help_line(out, width, "", "HS_KAFKA_<PROPERTY>_FILE=PATH: the value from a file (passwords)");
    write_help_line(out, width, "HS_HTTP_TOKEN_FILE", "bearer token /metrics requires (or HS_HTTP_TOKEN)");
    write_help_line(out, width, "HS_HTTP_TLS_CERT_FILE", "HTTPS: PEM certificate (chain) of the endpoint,");
    write_help_line(out, width, "HS_HTTP_TLS_KEY_FILE", "and its PEM private key (docs/security.md)");
    write_help_line(out, width, "HS_LOG_LEVEL", "debug, info, warn or error");
    fprintf(out,
            "  An empty HS_* variable counts as unset; any other HS_* variable stops start-up.\n"
            "\n"
            "Exit status: 0 ok; 1 bad input; 2 usage; 3 Kafka error or timeout; 4 not found; 5 I/O error;\n"
            "6 invalid configuration; 70 internal error.\n");
}

/* --- loading ------------------------------------------------------------------------------------------ */

static hs_err apply_flags(hs_config *c, hs_error *error)
{
    if (c->log_level_flag) {
        hs_err err = set_log_level(c, c->log_level_flag, origin_flag, "--log-level", error);
        c->log_level_flag = NULL;
        if (err != HS_OK)
            return err;
    }
    for (size_t i = 0; i < c->count; i++) {
        config_value *v = &c->values[i];
        if (!v->flag_text)
            continue;
        char label[sizeof "--" + NAME_MAX_LEN];
        snprintf(label, sizeof label, "--%s", v->option->name);
        hs_err err = set_value(v, v->flag_text, origin_flag, label, error);
        v->flag_text = NULL;
        if (err != HS_OK)
            return err;
    }
    return HS_OK;
}

static hs_err check_complete(const hs_config *c, hs_error *error)
{
    for (size_t i = 0; i < c->count; i++) {
        const config_value *v = &c->values[i];
        if (!v->option->default_value && (!v->text || !*v->text))
            return hs_error_set(error, HS_ERR_CONFIG, "missing required setting: set --%s or %s",
                                v->option->name, v->env_name);
    }
    return HS_OK;
}

hs_err hs_config_load(hs_config **out, const char *program, const char *summary, const char *version,
                      const hs_option *const *option_sets, int argc, char **argv, char **envp, FILE *help_out,
                      bool *help_requested, hs_error *error)
{
    assert(out && program && version && help_requested);
    *out = NULL;
    *help_requested = false;
    hs_config *c = calloc(1, sizeof *c);
    if (c)
        c->program = strdup(program);
    if (!c || !c->program) {
        free(c);
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    }
    c->log_level = -1;

    flag_outcome outcome = FLAGS_READ;
    hs_err err = add_options(c, option_sets, error);
    if (err == HS_OK)
        err = read_flags(c, argc, argv, &outcome, error);
    if (err == HS_OK && outcome != FLAGS_READ) {
        FILE *to = help_out ? help_out : stdout;
        if (outcome == FLAGS_HELP)
            write_help(c, summary, to);
        else
            fprintf(to, "%s %s\n", program, version);
        fflush(to);
        *help_requested = true;
        hs_config_free(c);
        return HS_OK;
    }
    if (err == HS_OK)
        err = apply_environment(c, envp, error);
    if (err == HS_OK)
        err = apply_flags(c, error);
    if (err == HS_OK)
        err = check_complete(c, error);
    if (err != HS_OK) {
        hs_config_free(c);
        return err;
    }
    if (c->log_level >= 0)
        hs_log_set_level((hs_log_level)c->log_level);
    *out = c;
    return HS_OK;
}

/* --- reading ------------------------------------------------------------------------------------------ */

/* The value of `name`, which must be declared (and of `type`, unless `type` is -1): a mismatch is a bug in
 * the program, so it stops the program, in release builds too — a silent 0 would be worse. */
static const config_value *lookup(const hs_config *c, const char *name, int type)
{
    assert(c && name);
    const config_value *v = find_value(c, name, strlen(name));
    if (!v) {
        fprintf(stderr, "hs_config: no option --%s is declared (a bug)\n", name);
        abort();
    }
    if (type >= 0 && (int)v->option->type != type) {
        fprintf(stderr, "hs_config: option --%s is read as the wrong type (a bug)\n", name);
        abort();
    }
    return v;
}

const char *hs_config_string(const hs_config *c, const char *name)
{
    return lookup(c, name, -1)->text;
}

long long hs_config_int(const hs_config *c, const char *name)
{
    return lookup(c, name, HS_OPTION_INT)->number;
}

long long hs_config_duration_ms(const hs_config *c, const char *name)
{
    return lookup(c, name, HS_OPTION_DURATION_MS)->number;
}

bool hs_config_bool(const hs_config *c, const char *name)
{
    return lookup(c, name, HS_OPTION_BOOL)->number != 0;
}

void hs_config_address(const hs_config *c, const char *name, const char **host, int *port)
{
    const config_value *v = lookup(c, name, HS_OPTION_ADDRESS);
    *host = v->host;
    *port = (int)v->number;
}

const char *hs_config_origin(const hs_config *c, const char *name)
{
    return lookup(c, name, -1)->origin;
}

/* A JSON string of `text`, which came from the environment or argv and need not be UTF-8. */
static json_t *json_text(const char *text)
{
    json_t *s = json_string(text);
    return s ? s : json_string("(not UTF-8)");
}

void hs_config_log(const hs_config *c)
{
    json_t *settings = json_object();
    for (size_t i = 0; i < c->count; i++) {
        const config_value *v = &c->values[i];
        json_t *value;
        if (v->option->secret && *v->text)
            value = json_string("***");
        else if (v->option->type == HS_OPTION_INT)
            value = json_integer(v->number);
        else if (v->option->type == HS_OPTION_BOOL)
            value = json_boolean(v->number);
        else
            value = json_text(v->text);
        json_object_set_new(settings, v->option->name,
                            json_pack("{s:o, s:s}", "value", value, "origin", v->origin));
    }
    static const char *const level_names[] = {"debug", "info", "warn", "error"};
    if (c->log_level >= 0)
        json_object_set_new(
            settings, "log-level",
            json_pack("{s:s, s:s}", "value", level_names[c->log_level], "origin", c->log_level_origin));
    for (size_t i = 0; i < c->count; i++)
        if (c->values[i].option->secret && c->values[i].origin == origin_flag && *c->values[i].text)
            hs_log(HS_LOG_WARN,
                   "a secret was given as a flag, which every user of this machine can read (ps): set it "
                   "in a file named by its _FILE variable instead (docs/security.md)",
                   "{s:s, s:s+}", "flag", c->values[i].option->name, "instead", c->values[i].env_name,
                   "_FILE");
    json_t *kafka = json_array();
    for (size_t i = 0; i < c->kafka_count; i++)
        json_array_append_new(kafka, json_text(c->kafka_vars[i]));
    /* "O" (not "o"): hs_log does not consume its arguments when the level is filtered out. */
    hs_log(HS_LOG_INFO, "configuration", "{s:s, s:O, s:O}", "program", c->program, "config", settings,
           "kafka", kafka);
    json_decref(settings);
    json_decref(kafka);
}

hs_err hs_config_read_file(const char *variable, const char *path, size_t max, char **out, hs_error *error)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return hs_error_set(error, HS_ERR_CONFIG, "%s: cannot open '%.200s': %s", variable, path,
                            strerror(errno));
    char *text = malloc(max + 1);
    if (!text) {
        fclose(f);
        return hs_error_set(error, HS_ERR_NOMEM, "%s: out of memory", variable);
    }
    size_t len = fread(text, 1, max + 1, f);
    int read_errno = ferror(f) ? errno : 0;
    fclose(f);
    hs_err err = HS_OK;
    if (read_errno)
        err = hs_error_set(error, HS_ERR_CONFIG, "%s: cannot read '%.200s': %s", variable, path,
                           strerror(read_errno));
    else if (len > max)
        err =
            hs_error_set(error, HS_ERR_CONFIG, "%s: '%.200s' is larger than %zu bytes", variable, path, max);
    else {
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
            len--;
        text[len] = '\0';
        if (len == 0)
            err = hs_error_set(error, HS_ERR_CONFIG, "%s: '%.200s' is empty", variable, path);
        else if (memchr(text, '\0', len))
            err = hs_error_set(error, HS_ERR_CONFIG, "%s: '%.200s' holds a NUL byte", variable, path);
    }
    if (err != HS_OK) {
        hs_secret_wipe(text, max + 1);
        free(text);
        return err;
    }
    *out = text;
    return HS_OK;
}

void hs_secret_wipe(void *buf, size_t len)
{
    /* volatile: the stores must happen although the buffer is freed right after. */
    volatile unsigned char *p = buf;
    while (len--)
        *p++ = 0;
}

int hs_config_argc(const hs_config *c)
{
    return c->arg_count;
}

char *const *hs_config_argv(const hs_config *c)
{
    return c->args;
}

void hs_config_free(hs_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->count; i++) {
        free(c->values[i].text);
        free(c->values[i].host);
    }
    for (size_t i = 0; i < c->kafka_count; i++)
        free(c->kafka_vars[i]);
    free(c->kafka_vars);
    free(c->values);
    free(c->args);
    free(c->program);
    free(c);
}
