/* CSV input: a streaming, bounded-memory reader on libcsv (RFC 4180, strict quoting) and the converter from
 * rows of the indicator layout (docs/design.md §8) to validated IndicatorObservation values. `hsctl publish`
 * reads a file through both and reports each bad row by its line while the good rows go on; the reader
 * stops only for what makes the rest of the input unreadable.
 */
#ifndef HS_CSV_H
#define HS_CSV_H

#include <stddef.h>
#include <stdio.h>

#include "healthsignals/v1/indicator.pb-c.h"
#include "hs/err.h"

/* A record (one line, or several when a quoted field holds line breaks) longer than this, not counting its
 * final line break, is rejected as a row error without being held in memory. */
#define HS_CSV_MAX_LINE_BYTES 1048576 /* 1 MiB */
/* A record with more fields than this is rejected as a row error. */
#define HS_CSV_MAX_FIELDS 1024

/* One record as the reader delivers it. Every pointer is valid only during the callback. */
typedef struct hs_csv_row {
    long line;                 /* 1-based line where the record starts */
    long last_line;            /* line where it ends: `line`, unless a quoted field holds line breaks */
    long record;               /* 0 for the first record of the input (the header), then 1, 2, ... */
    size_t count;              /* number of fields; 0 when `error` is set */
    const char *const *fields; /* `count` NUL-terminated fields as written (unquoted, not trimmed; empty is
                                * ""); bytes are not checked for UTF-8 here */
    const hs_error *error;     /* NULL, or why this record could not be read (the reason names no line:
                                * that is `line`) */
} hs_csv_row;

/* Called once per record, in input order. Return 0 to go on, non-zero to stop reading. */
typedef int (*hs_csv_row_cb)(void *ctx, const hs_csv_row *row);

/* Reads CSV from `in` (comma-separated, '"' quotes, fields may span lines inside quotes, LF or CRLF line
 * ends, a UTF-8 byte order mark at the start skipped, blank lines skipped, no trimming) and calls `cb` for
 * each record, the header included. `name` (may be NULL) names the input in the reasons of structural
 * errors ("data.csv: empty file: no header").
 *
 * Row errors are delivered as rows with `error` set, and reading goes on:
 *   - a record longer than HS_CSV_MAX_LINE_BYTES ("line longer than 1048576 bytes"): the reader discards
 *     input up to the next line feed and resumes there. That resynchronises exactly when the long record is
 *     one line; if a quoted field spanned lines, the resumed lines are read as new records (and may fail).
 *   - malformed quoting (a '"' inside an unquoted field, or text after a closing quote): the rest of that
 *     line is discarded and reading resumes on the next line, with the same caveat.
 *   - a quoted field still open at the end of the input ("unterminated quoted field"): by RFC 4180 the
 *     field ran to the end, so the lines after the one it opened on are part of it and are not read.
 *   When a record that failed had run on over line ends inside a quoted field (an unbalanced quote, most
 *   often), each line after its first is also delivered as a row error of its own, "not read: inside the
 *   quoted field opened on line N (why)", so that no line disappears without a report.
 *   - more than HS_CSV_MAX_FIELDS fields, or a NUL byte in a field.
 * Structural errors stop the reader and are returned: HS_ERR_PARSE "empty file: no header" when the input
 * holds no record at all; HS_ERR_IO when reading fails; HS_ERR_NOMEM. Returns HS_OK otherwise, also when
 * the callback stopped the reader. */
hs_err hs_csv_read(FILE *in, const char *name, hs_csv_row_cb cb, void *ctx, hs_error *error);

/* --- The indicator layout ------------------------------------------------------------------------------ */

/* The columns of the indicator layout, in docs/design.md §8's order: the first four are required. */
typedef enum hs_csv_column {
    HS_CSV_INDICATOR,
    HS_CSV_SCOPE,
    HS_CSV_PERIOD,
    HS_CSV_VALUE,
    HS_CSV_UNIT,
    HS_CSV_VOLUME,
    HS_CSV_PROVISIONAL,
    HS_CSV_SUSPENDED,
    HS_CSV_FLAGS,
    HS_CSV_SOURCE,
    HS_CSV_COLUMN_COUNT
} hs_csv_column;

/* The header of an indicator file: which layout column each file column holds. A plain value. */
typedef struct hs_csv_header {
    size_t count;                              /* columns in the file */
    int index[HS_CSV_COLUMN_COUNT];            /* file column of each layout column, -1 when absent */
    hs_csv_column column[HS_CSV_COLUMN_COUNT]; /* layout column of each file column (first `count`) */
} hs_csv_header;

/* Reads the header row of an indicator file into `hdr`: column names of the layout, case-insensitive, in
 * any order; indicator, scope, period and value required; unknown or repeated names are an error naming
 * them. A row with `error` set fails with that error. HS_ERR_PARSE on failure. */
hs_err hs_csv_header_parse(hs_csv_header *hdr, const hs_csv_row *row, hs_error *error);

/* Releases what hs_csv_header_parse acquired (nothing today; call it anyway) and clears `hdr`. */
void hs_csv_header_free(hs_csv_header *hdr);

/* Builds one IndicatorObservation from a data row and validates it with hs_validate_indicator (so the scope
 * comes out as its code). Numbers use '.' as decimal separator ("74,5" fails with a hint), "NaN" and "inf"
 * are read and then refused as not finite; booleans are true/false, 1/0 or yes/no; flags are separated by
 * ';' or '|'; an empty optional field is absent; there is no default unit. On success `*out` is a malloc'd
 * message the caller frees with protobuf_c_message_free_unpacked(&(*out)->base, NULL); on failure `*out`
 * is NULL and the reason names the column ("value: 'abc' is not a number", "wrong number of columns: 5,
 * header has 10", "invalid UTF-8 in column source") but not the line (that is row->line); for a row that
 * spans lines it adds "(this row spans lines 3-6: a quoted field holds line breaks)". Codes: the row's
 * own error, HS_ERR_PARSE for text that does not read, validation's codes, HS_ERR_NOMEM. */
hs_err hs_indicator_from_csv(const hs_csv_header *hdr, const hs_csv_row *row,
                             Healthsignals__V1__IndicatorObservation **out, hs_error *error);

#endif
