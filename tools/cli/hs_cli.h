/* Command-line options of the tools (hsctl, hs-broker, the benchmark's programs) as a table instead of a
 * getopt_long switch: each option names the variable it sets and how its value is read, checked the same way
 * everywhere (a number is the whole argument, or the tool says so and refuses; ranges are the tool's to
 * check).
 *
 *   long records = 100000; const char *bootstrap = NULL; bool dry_run = false;
 *   const hs_cli_option options[] = {
 *       {"bootstrap", 'b', HS_CLI_TEXT, &bootstrap},
 *       {"records", 0, HS_CLI_LONG, &records},
 *       {"dry-run", 0, HS_CLI_FLAG, &dry_run},
 *       {0},
 *   };
 *   hs_cli_parse("load", argc, argv, options, false, usage);   then argv[optind..] are the operands
 *
 * --help (and -h) is always an option. Parsing is getopt_long's: its messages, its `optind`, its permutation
 * (unless stop_at_operand: then parsing stops at the first operand, e.g. a subcommand). */
#ifndef HS_CLI_H
#define HS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h> /* optind */

typedef enum hs_cli_kind {
    HS_CLI_FLAG,   /* bool *: set to true; takes no value */
    HS_CLI_TEXT,   /* const char **: the value as given */
    HS_CLI_LONG,   /* long *: a whole number */
    HS_CLI_DOUBLE, /* double *: a finite number */
    HS_CLI_TEXTS,  /* hs_cli_texts *: every value of a repeated option, in order */
} hs_cli_kind;

/* The values of a repeated option: `items` has room for `capacity` of them. */
typedef struct hs_cli_texts {
    const char **items;
    size_t count, capacity;
} hs_cli_texts;

typedef struct hs_cli_option {
    const char *name; /* the long name, without "--"; NULL ends the table */
    char short_name;  /* e.g. 'n' for -n, or 0 */
    hs_cli_kind kind;
    void *target;
} hs_cli_option;

/* Reads the options of argv per `options` (ended by {0}), or ends the program: --help prints usage(stdout)
 * and exits 0; a refused option is said on stderr (getopt_long's message, or "PROG: --NAME must be ...") and
 * usage(stderr) exits 2. Returns with optind at the first operand. */
void hs_cli_parse(const char *prog, int argc, char **argv, const hs_cli_option *options, bool stop_at_operand,
                  void (*usage)(FILE *out));

#endif
