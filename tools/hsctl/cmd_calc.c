/* hsctl calc: a service's calculation without a broker (docs/design.md §13). CloudEvents JSON lines
 * in on stdin (or --input FILE), the final output table out on stdout, sorted by key — or every change in
 * order with --changes. Same calculation code as the running service.
 */
#include <errno.h>
#include <string.h>

#include "calcs.h"
#include "hs/offline.h"
#include "hs_cli.h"
#include "hsctl.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: hsctl calc SERVICE [--rules FILE] [--changes] [--input FILE] [--ignore-unknown-fields]\n"
            "                  < in.ndjson > out.ndjson\n"
            "       hsctl calc --list\n"
            "\n"
            "Runs SERVICE's calculation offline: CloudEvents JSON lines in, and out the final output\n"
            "table (one line per output key, sorted by key), or with --changes every change in order.\n"
            "\n"
            "  --rules FILE    rules to load first: JSON lines of Rule events, or a JSON array of rules\n"
            "                  as for 'hsctl rules apply'\n"
            "  --changes       print every output change as it happens\n"
            "  --input FILE    read events from FILE instead of standard input\n"
            "  --ignore-unknown-fields\n"
            "                  skip fields of \"data\" this version does not know (each reported on\n"
            "                  stderr) instead of rejecting the event, as hsctl publish does\n"
            "  --list          list the services hsctl can run\n");
}

hs_err hsctl_calc(int argc, char **argv, const hsctl_globals *g)
{
    (void)g;
    const char *rules_path = NULL, *input_path = NULL;
    hs_offline_options options = {0};
    bool list = false;
    const hs_cli_option table[] = {
        {"rules", 0, HS_CLI_TEXT, &rules_path},
        {"changes", 0, HS_CLI_FLAG, &options.changes},
        {"input", 0, HS_CLI_TEXT, &input_path},
        {"list", 0, HS_CLI_FLAG, &list},
        {"ignore-unknown-fields", 0, HS_CLI_FLAG, &options.ignore_unknown_fields},
        {0},
    };
    hs_cli_parse("hsctl calc", argc, argv, table, false, usage);
    if (list) {
        size_t count;
        const hs_calc *const *all = hsctl_calc_all(&count);
        for (size_t i = 0; i < count; i++)
            printf("%-12s %s\n", all[i]->name, all[i]->description);
        return HS_OK;
    }
    if (optind + 1 != argc) {
        usage(stderr);
        return HS_ERR_USAGE;
    }
    const hs_calc *calc = hsctl_calc_find(argv[optind]);
    if (!calc)
        return hsctl_fail(HS_ERR_NOT_FOUND, "no calculation named '%s' (hsctl calc --list)", argv[optind]);

    FILE *rules = NULL, *in = stdin;
    if (rules_path && !(rules = fopen(rules_path, "rb")))
        return hsctl_fail(HS_ERR_IO, "cannot open %s: %s", rules_path, strerror(errno));
    if (input_path && !(in = fopen(input_path, "rb"))) {
        if (rules)
            fclose(rules);
        return hsctl_fail(HS_ERR_IO, "cannot open %s: %s", input_path, strerror(errno));
    }

    hs_offline_stats stats;
    hs_error error;
    hs_err err = hs_offline_run(calc, rules, rules_path, in, input_path ? input_path : "-", stdout, &options,
                                &stats, &error);
    if (rules)
        fclose(rules);
    if (in != stdin)
        fclose(in);
    fflush(stdout);
    if (err != HS_OK)
        return hsctl_fail(err, "%s", error.message);
    char unknown[64] = "";
    if (stats.unknown_fields)
        snprintf(unknown, sizeof unknown, ", %ld unknown fields ignored", stats.unknown_fields);
    fprintf(stderr, "hsctl calc %s: %ld facts applied, %ld rejected, %ld output changes, %ld output keys%s\n",
            calc->name, stats.facts, stats.rejected, stats.changes, stats.outputs, unknown);
    return stats.rejected ? HS_ERR_VALIDATION : HS_OK;
}
