/* The offline driver (hsctl calc): a calculation run over CloudEvents JSON lines, with no broker — the other
 * driver of the hs_calc contract (hs/calc.h) beside the runtime (docs/design.md §13).
 */
#ifndef HS_OFFLINE_H
#define HS_OFFLINE_H

#include <stdbool.h>
#include <stdio.h>

#include "hs/calc.h"
#include "hs/err.h"

typedef struct hs_offline_options {
    bool changes;               /* print every change in order, instead of the final table sorted by key */
    const char *source;         /* CloudEvents source of the outputs; default "/healthsignals/<calc name>" */
    bool ignore_unknown_fields; /* skip (and report) fields of "data" this version does not know */
} hs_offline_options;

/* Counts of one offline run, for the summary line. */
typedef struct hs_offline_stats {
    long facts;          /* input events applied */
    long rejected;       /* input events that failed to parse, validate or apply (reported on stderr) */
    long changes;        /* output changes after de-duplication */
    long outputs;        /* keys in the final output table */
    long unknown_fields; /* fields skipped by ignore_unknown_fields */
} hs_offline_stats;

/* Runs `calc` over CloudEvents JSON lines: first `rules` (may be NULL; JSON lines, or a JSON array of
 * Rule objects as for `hsctl rules apply`), then `in`. Writes the final output table (one CloudEvents line
 * per output key, sorted by topic then key) or, with options->changes, each change as it happens, to `out`.
 * Bad input lines are reported on stderr as NAME:LINE: reason and skipped. Returns HS_OK, or the error that
 * stopped the run. */
hs_err hs_offline_run(const hs_calc *calc, FILE *rules, const char *rules_name, FILE *in, const char *in_name,
                      FILE *out, const hs_offline_options *options, hs_offline_stats *stats, hs_error *error);

#endif
