/* Command-line options as a table: see hs_cli.h. */
#include "hs_cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_OPTIONS 64
#define HELP_VALUE  256 /* getopt_long's value for --help; the table's own options are 257 + their index */

/* Reads `text` as the value of option `o`; false (said on stderr) when it is not one. */
static bool assign(const char *prog, const hs_cli_option *o, const char *text)
{
    char *end = NULL;
    switch (o->kind) {
    case HS_CLI_FLAG: *(bool *)o->target = true; return true;
    case HS_CLI_TEXT: *(const char **)o->target = text; return true;
    case HS_CLI_TEXTS: {
        hs_cli_texts *texts = o->target;
        if (texts->count == texts->capacity) {
            fprintf(stderr, "%s: too many --%s options (at most %zu)\n", prog, o->name, texts->capacity);
            return false;
        }
        texts->items[texts->count++] = text;
        return true;
    }
    case HS_CLI_LONG: {
        errno = 0;
        long number = strtol(text, &end, 10);
        if (errno || *text == '\0' || *end != '\0') {
            fprintf(stderr, "%s: --%s must be a whole number, got '%s'\n", prog, o->name, text);
            return false;
        }
        *(long *)o->target = number;
        return true;
    }
    case HS_CLI_DOUBLE: {
        errno = 0;
        double number = strtod(text, &end);
        if (errno || *text == '\0' || *end != '\0' || !isfinite(number)) {
            fprintf(stderr, "%s: --%s must be a number, got '%s'\n", prog, o->name, text);
            return false;
        }
        *(double *)o->target = number;
        return true;
    }
    }
    return false;
}

void hs_cli_parse(const char *prog, int argc, char **argv, const hs_cli_option *options, bool stop_at_operand,
                  void (*usage)(FILE *out))
{
    struct option long_options[MAX_OPTIONS + 2];
    char short_options[2 * MAX_OPTIONS + 4];
    size_t n = 0, s = 0;
    if (stop_at_operand)
        short_options[s++] = '+';
    short_options[s++] = 'h';
    for (; options[n].name; n++) {
        if (n == MAX_OPTIONS) {
            fprintf(stderr, "%s: more than %d options in its table\n", prog, MAX_OPTIONS);
            exit(2);
        }
        int has_arg = options[n].kind == HS_CLI_FLAG ? no_argument : required_argument;
        long_options[n] = (struct option){options[n].name, has_arg, NULL, HELP_VALUE + 1 + (int)n};
        if (options[n].short_name) {
            short_options[s++] = options[n].short_name;
            if (has_arg == required_argument)
                short_options[s++] = ':';
        }
    }
    long_options[n] = (struct option){"help", no_argument, NULL, HELP_VALUE};
    long_options[n + 1] = (struct option){NULL, 0, NULL, 0};
    short_options[s] = '\0';

    int opt;
    while ((opt = getopt_long(argc, argv, short_options, long_options, NULL)) != -1) {
        if (opt == HELP_VALUE || opt == 'h') {
            usage(stdout);
            exit(0);
        }
        const hs_cli_option *o = NULL;
        if (opt > HELP_VALUE)
            o = &options[opt - HELP_VALUE - 1];
        for (size_t i = 0; !o && i < n; i++)
            if (options[i].short_name && options[i].short_name == opt)
                o = &options[i];
        if (!o || !assign(prog, o, optarg)) { /* getopt_long said what it did not know */
            usage(stderr);
            exit(2);
        }
    }
}
