/* libFuzzer target for the CSV path of `hsctl publish`: arbitrary bytes go through hs_csv_read and every
 * row through hs_indicator_from_csv, as hsctl does, so that the sanitizers can find crashes, leaks and
 * undefined behaviour. It also checks two properties: a converted message passes validation again unchanged
 * (normalisation is idempotent), and any field that parses as a period formats back to the same text.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hs/csv.h"
#include "hs/period.h"
#include "hs/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fuzz_run {
    hs_csv_header header;
    long rows;
} fuzz_run;

/* The full layout, used when the input's own header is unusable so that the converter still sees rows. */
static hs_csv_header full_layout(void)
{
    static const char *const names[] = {"indicator", "scope",       "period",    "value", "unit",
                                        "volume",    "provisional", "suspended", "flags", "source"};
    hs_csv_row row = {.line = 1, .record = 0, .count = 10, .fields = names, .error = NULL};
    hs_csv_header header;
    if (hs_csv_header_parse(&header, &row, NULL) != HS_OK)
        abort();
    return header;
}

static void check_periods_round_trip(const hs_csv_row *row)
{
    for (size_t i = 0; i < row->count; i++) {
        hs_period period;
        if (hs_period_parse(row->fields[i], &period, NULL) != HS_OK)
            continue;
        char text[HS_PERIOD_TEXT_MAX];
        if (hs_period_format(&period, text, sizeof text) < 0 || strcmp(text, row->fields[i]) != 0)
            abort(); /* parsing is strict, so the canonical text is the only text that parses */
    }
}

static int on_row(void *ctx, const hs_csv_row *row)
{
    fuzz_run *run = ctx;
    if (!row->error && (row->count == 0 || !row->fields))
        abort(); /* a record always has at least one field */
    if (row->record == 0) {
        if (hs_csv_header_parse(&run->header, row, NULL) != HS_OK)
            run->header = full_layout();
        return 0;
    }
    run->rows++;
    if (!row->error)
        check_periods_round_trip(row);
    Healthsignals__V1__IndicatorObservation *obs = NULL;
    hs_error error;
    if (hs_indicator_from_csv(&run->header, row, &obs, &error) == HS_OK) {
        char *code = strdup(obs->scope->code);
        if (!code || hs_validate_indicator(obs, NULL) != HS_OK || strcmp(code, obs->scope->code) != 0)
            abort();
        free(code);
        protobuf_c_message_free_unpacked(&obs->base, NULL);
    } else if (obs || !error.message[0]) {
        abort(); /* a failure leaves nothing behind and always says why */
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* fmemopen wants a non-const buffer; reading it never writes, but keep libFuzzer's input untouched. */
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);
    FILE *in = fmemopen(copy, size, "r");
    if (in) {
        fuzz_run run = {.rows = 0};
        hs_error error;
        hs_csv_read(in, "fuzz", on_row, &run, &error);
        fclose(in);
        hs_csv_header_free(&run.header);
    }
    free(copy);
    return 0;
}
