/* The CSV reader and the indicator-row converter. The reader cuts its input into physical lines itself and
 * feeds them to libcsv, so that it knows each record's starting line and can refuse an over-long record
 * before libcsv buffers it: memory stays within a few times HS_CSV_MAX_LINE_BYTES whatever the input.
 * After a row error the parser is reset and reading resumes at the next line feed (see csv.h).
 */
#include "hs/csv.h"

#include <assert.h>
#include <csv.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hs/validate.h"

#define CHUNK_BYTES    65536 /* read size */
#define PARSER_BLOCK   65536 /* libcsv grows its field buffer by this much at a time */
#define PARSER_OPTIONS (CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL)
#define QUOTE_MAX      40 /* user text quoted in a reason is cut to this many bytes */

/* --- The reader ---------------------------------------------------------------------------------------- */

typedef struct reader {
    struct csv_parser parser;
    hs_csv_row_cb cb;
    void *ctx;
    long line;        /* the physical line being fed, 1-based */
    long record_line; /* where the open record started */
    long field_line;  /* where the open record's current field started: where its quote opened, if it has
                       * one that runs on past a line end */
    bool after_lf;    /* the last byte processed was a line feed */
    long records;     /* rows delivered so far, error rows included */
    bool in_record;   /* a record has begun and not yet ended */
    size_t span;      /* bytes of the open record so far, or of the current line while none is open */
    bool skipping;    /* discarding input up to the next line feed after a row error */
    bool pending_cr;  /* the previous chunk ended in a CR that has not been fed yet */
    bool stopped;     /* the callback asked to stop */
    hs_err fatal;     /* a structural failure met inside a libcsv callback */
    hs_error fatal_error;
    /* The open record's fields: NUL-terminated, back to back in `text`, field i at text + starts[i]. */
    char *text;
    size_t text_len, text_cap;
    size_t *starts;
    size_t count, starts_cap;
    const char **fields; /* built from starts[] when the record is delivered */
    size_t fields_cap;
    bool rejected; /* the open record already failed; its remaining fields are ignored */
    hs_error reject_reason;
} reader;

/* libcsv trims spaces and tabs around unquoted fields unless told that nothing is a space: fields are taken
 * as written, and strict validation decides. */
static int no_space(unsigned char c)
{
    (void)c;
    return 0;
}

static bool parser_init(reader *r)
{
    if (csv_init(&r->parser, PARSER_OPTIONS) != 0)
        return false;
    csv_set_space_func(&r->parser, no_space);
    csv_set_blk_size(&r->parser, PARSER_BLOCK);
    return true;
}

/* Grows `*buf` (of `*cap` elements of `size` bytes) to hold at least `need` elements. */
static bool grow(void **buf, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t new_cap = *cap ? *cap : 16;
    while (new_cap < need)
        new_cap *= 2;
    void *p = realloc(*buf, new_cap * size);
    if (!p)
        return false;
    *buf = p;
    *cap = new_cap;
    return true;
}

static void set_fatal_nomem(reader *r)
{
    r->fatal = hs_error_set(&r->fatal_error, HS_ERR_NOMEM, "out of memory reading CSV");
}

/* Forgets the open record. */
static void clear_record(reader *r)
{
    r->text_len = 0;
    r->count = 0;
    r->rejected = false;
    r->in_record = false;
}

static void begin_record(reader *r)
{
    if (!r->in_record) {
        r->in_record = true;
        r->record_line = r->line;
        r->field_line = r->line;
    }
}

/* Hands one row to the callback: the open record's fields, or `row_error`. */
static void deliver(reader *r, long line, const hs_error *row_error)
{
    hs_csv_row row = {.line = line,
                      .last_line = row_error ? line : r->line,
                      .record = r->records++,
                      .count = 0,
                      .fields = NULL,
                      .error = row_error};
    if (!row_error) {
        if (!grow((void **)&r->fields, &r->fields_cap, r->count, sizeof *r->fields)) {
            set_fatal_nomem(r);
            return;
        }
        for (size_t i = 0; i < r->count; i++)
            r->fields[i] = r->text + r->starts[i];
        row.count = r->count;
        row.fields = r->fields;
    }
    if (r->cb(r->ctx, &row) != 0)
        r->stopped = true;
}

/* Reports the lines after the first of a record that failed while a quoted field ran on over line ends,
 * `first`..`last`: they were read as part of that field, so none of them became a row, good or bad, and
 * each is reported on its own, naming the line where the quote opened and `why` the record failed. */
static void deliver_swallowed(reader *r, long first, long last, const char *why)
{
    for (long line = first; line <= last && !r->stopped && !r->fatal; line++) {
        hs_error reason;
        hs_error_set(&reason, HS_ERR_PARSE, "not read: inside the quoted field opened on line %ld (%s)",
                     r->field_line, why);
        deliver(r, line, &reason);
    }
}

/* libcsv's field callback. */
static void on_field(void *data, size_t len, void *ctx)
{
    reader *r = ctx;
    if (r->stopped || r->fatal)
        return;
    begin_record(r);
    r->field_line = r->line; /* a field ends at a delimiter on this line: the next one starts here */
    if (r->rejected)
        return;
    if (r->count == HS_CSV_MAX_FIELDS) {
        r->rejected = true;
        hs_error_set(&r->reject_reason, HS_ERR_PARSE, "more than %d fields", HS_CSV_MAX_FIELDS);
        return;
    }
    if (len > 0 && memchr(data, '\0', len)) {
        r->rejected = true;
        hs_error_set(&r->reject_reason, HS_ERR_PARSE, "field %zu contains a NUL byte", r->count + 1);
        return;
    }
    if (!grow((void **)&r->text, &r->text_cap, r->text_len + len + 1, 1) ||
        !grow((void **)&r->starts, &r->starts_cap, r->count + 1, sizeof *r->starts)) {
        set_fatal_nomem(r);
        return;
    }
    if (len > 0)
        memcpy(r->text + r->text_len, data, len);
    r->text[r->text_len + len] = '\0';
    r->starts[r->count++] = r->text_len;
    r->text_len += len + 1;
}

/* libcsv's end-of-record callback. */
static void on_record(int terminator, void *ctx)
{
    (void)terminator;
    reader *r = ctx;
    if (r->stopped || r->fatal)
        return;
    begin_record(r);
    deliver(r, r->record_line, r->rejected ? &r->reject_reason : NULL);
    clear_record(r);
}

/* After a row error: a fresh parser, no open record, and the rest of the line discarded. */
static void resynchronise(reader *r, bool line_ended)
{
    csv_free(&r->parser);
    if (!parser_init(r))
        r->fatal = hs_error_set(&r->fatal_error, HS_ERR_INTERNAL, "libcsv failed to initialise");
    clear_record(r);
    r->span = 0;
    r->pending_cr = false;
    if (line_ended)
        r->line++;
    else
        r->skipping = true;
}

/* Feeds `len` bytes to libcsv. On a parse error reports the record and resynchronises; returns false when
 * the rest of the segment must not be fed. */
static bool feed(reader *r, const char *data, size_t len, bool line_ends)
{
    csv_parse(&r->parser, data, len, on_field, on_record, r);
    int status = csv_error(&r->parser);
    if (status == CSV_SUCCESS)
        return true;
    if (status != CSV_EPARSE) {
        set_fatal_nomem(r);
        return false;
    }
    long start = r->in_record ? r->record_line : r->line;
    hs_error reason;
    if (start == r->line)
        hs_error_set(&reason, HS_ERR_PARSE,
                     "malformed quoting: a '\"' inside an unquoted field, or text after a closing quote");
    else
        hs_error_set(
            &reason, HS_ERR_PARSE,
            "malformed quoting on line %ld: a '\"' inside an unquoted field, or text after a closing "
            "quote; the quoted field opened on line %ld takes lines %ld-%ld into this record",
            r->line, r->field_line, start + 1, r->line);
    deliver(r, start, &reason);
    if (start != r->line) {
        char why[64];
        snprintf(why, sizeof why, "malformed quoting on line %ld", r->line);
        deliver_swallowed(r, start + 1, r->line, why);
    }
    resynchronise(r, line_ends);
    return false;
}

/* Processes one segment: the bytes of one physical line up to and including its line feed (`has_lf`), or
 * the part of a line that a chunk holds. */
static void process_segment(reader *r, const char *seg, size_t len, bool has_lf)
{
    r->after_lf = has_lf;
    if (r->skipping) {
        if (has_lf) {
            r->skipping = false;
            r->line++;
        }
        return;
    }
    size_t body = has_lf ? len - 1 : len; /* the bytes before the line feed */
    /* A CR at the end of a chunk may be the first half of a CRLF: hold it until the next byte is known. */
    bool hold_cr = !has_lf && body > 0 && seg[body - 1] == '\r';
    size_t feed_len = hold_cr ? len - 1 : len;
    size_t counted = hold_cr ? body - 1 : body;
    if (has_lf && body > 0 && seg[body - 1] == '\r')
        counted--; /* CRLF: the CR belongs to the line end */
    bool lead_cr = r->pending_cr;
    r->pending_cr = false;
    if (lead_cr && !(has_lf && body == 0))
        counted++; /* the held CR was not followed by LF: it is data (or a lone CR line end) */

    if (!r->in_record) {
        for (size_t i = 0; i < feed_len; i++) {
            if (seg[i] != '\r' && seg[i] != '\n') { /* libcsv skips line-end bytes between records */
                begin_record(r);
                break;
            }
        }
    }
    /* span exceeds the limit only by the line feed of a record still open, which is then too long already */
    assert(r->span <= (size_t)HS_CSV_MAX_LINE_BYTES + 1);
    if (r->span > HS_CSV_MAX_LINE_BYTES || counted > HS_CSV_MAX_LINE_BYTES - r->span) {
        long start = r->in_record ? r->record_line : r->line;
        hs_error reason;
        if (start == r->line)
            hs_error_set(&reason, HS_ERR_PARSE, "line longer than %d bytes", HS_CSV_MAX_LINE_BYTES);
        else
            hs_error_set(&reason, HS_ERR_PARSE,
                         "record longer than %d bytes (a quoted field runs on to line %ld)",
                         HS_CSV_MAX_LINE_BYTES, r->line);
        deliver(r, start, &reason);
        if (start != r->line)
            deliver_swallowed(r, start + 1, r->line, "its record is too long");
        resynchronise(r, has_lf);
        return;
    }
    r->span += counted;
    if (lead_cr && !feed(r, "\r", 1, has_lf))
        return;
    if (!feed(r, seg, feed_len, has_lf))
        return;
    r->pending_cr = hold_cr;
    if (has_lf) {
        r->line++;
        if (r->in_record)
            r->span++; /* a line break inside a quoted field is part of the record */
        else
            r->span = 0;
    }
}

/* The end of the input: a held CR, the last record without a line end, or an unterminated quote. */
static void finish(reader *r)
{
    if (r->stopped || r->fatal || r->skipping)
        return;
    if (r->pending_cr) {
        r->pending_cr = false;
        if (!feed(r, "\r", 1, true))
            return;
    }
    if (r->stopped || r->fatal)
        return;
    if (csv_fini(&r->parser, on_field, on_record, r) != 0) {
        if (csv_error(&r->parser) == CSV_EPARSE) {
            /* By RFC 4180 the field runs to the end of the input: every line after the one it opened on is
             * inside it, and is reported, rather than lost without a word. */
            long start = r->in_record ? r->record_line : r->line;
            long last = r->after_lf ? r->line - 1 : r->line;
            hs_error reason;
            if (last <= start)
                hs_error_set(&reason, HS_ERR_PARSE, "unterminated quoted field: the closing '\"' is missing");
            else
                hs_error_set(&reason, HS_ERR_PARSE,
                             "unterminated quoted field: the quote opened on line %ld is never closed, so "
                             "lines %ld-%ld are inside it and not read",
                             r->field_line, start + 1, last);
            deliver(r, start, &reason);
            deliver_swallowed(r, start + 1, last, "never closed");
        } else {
            set_fatal_nomem(r);
        }
    }
}

hs_err hs_csv_read(FILE *in, const char *name, hs_csv_row_cb cb, void *ctx, hs_error *error)
{
    const char *prefix = name ? name : "";
    const char *colon = name ? ": " : "";
    reader r = {.cb = cb, .ctx = ctx, .line = 1, .fatal = HS_OK};
    char *chunk = malloc(CHUNK_BYTES);
    if (!chunk || !parser_init(&r)) {
        free(chunk);
        return hs_error_set(error, HS_ERR_NOMEM, "%s%sout of memory reading CSV", prefix, colon);
    }
    hs_err err = HS_OK;
    bool first = true;
    while (!r.stopped && !r.fatal) {
        size_t have = fread(chunk, 1, CHUNK_BYTES, in);
        if (have == 0) {
            if (ferror(in))
                err = hs_error_set(error, HS_ERR_IO, "%s%sread error: %s", prefix, colon, strerror(errno));
            break;
        }
        size_t pos = 0;
        if (first && have >= 3 && memcmp(chunk, "\xEF\xBB\xBF", 3) == 0)
            pos = 3; /* UTF-8 byte order mark */
        first = false;
        while (pos < have && !r.stopped && !r.fatal) {
            const char *lf = memchr(chunk + pos, '\n', have - pos);
            size_t len = lf ? (size_t)(lf - (chunk + pos)) + 1 : have - pos;
            process_segment(&r, chunk + pos, len, lf != NULL);
            pos += len;
        }
    }
    if (err == HS_OK)
        finish(&r);
    if (err == HS_OK && r.fatal)
        err = hs_error_set(error, r.fatal, "%s%s%s", prefix, colon, r.fatal_error.message);
    if (err == HS_OK && r.records == 0)
        err = hs_error_set(error, HS_ERR_PARSE, "%s%sempty file: no header", prefix, colon);
    csv_free(&r.parser);
    free(chunk);
    free(r.text);
    free(r.starts);
    free(r.fields);
    return err;
}

/* --- The indicator layout ------------------------------------------------------------------------------ */

static const char *const column_names[HS_CSV_COLUMN_COUNT] = {
    [HS_CSV_INDICATOR] = "indicator",
    [HS_CSV_SCOPE] = "scope",
    [HS_CSV_PERIOD] = "period",
    [HS_CSV_VALUE] = "value",
    [HS_CSV_UNIT] = "unit",
    [HS_CSV_VOLUME] = "volume",
    [HS_CSV_PROVISIONAL] = "provisional",
    [HS_CSV_SUSPENDED] = "suspended",
    [HS_CSV_FLAGS] = "flags",
    [HS_CSV_SOURCE] = "source",
};

#define REQUIRED_COLUMNS 4 /* indicator, scope, period, value */

/* Appends `text` to the list in `buf` (", "-separated), cutting rather than overflowing. */
static void append_name(char *buf, size_t size, const char *text)
{
    size_t used = strlen(buf);
    if (used + 1 < size)
        snprintf(buf + used, size - used, "%s%.*s", used ? ", " : "", QUOTE_MAX, text);
}

hs_err hs_csv_header_parse(hs_csv_header *hdr, const hs_csv_row *row, hs_error *error)
{
    memset(hdr, 0, sizeof *hdr);
    for (int c = 0; c < HS_CSV_COLUMN_COUNT; c++)
        hdr->index[c] = -1;
    if (row->error) {
        if (error)
            *error = *row->error;
        return row->error->code;
    }
    char unknown[160] = "";
    for (size_t i = 0; i < row->count; i++) {
        int found = -1;
        for (int c = 0; c < HS_CSV_COLUMN_COUNT && found < 0; c++)
            if (strcasecmp(row->fields[i], column_names[c]) == 0)
                found = c;
        if (found < 0) {
            append_name(unknown, sizeof unknown, row->fields[i][0] ? row->fields[i] : "(empty)");
            continue;
        }
        if (hdr->index[found] >= 0)
            return hs_error_set(error, HS_ERR_PARSE, "header: column %s appears twice", column_names[found]);
        hdr->index[found] = (int)i;
    }
    if (unknown[0])
        return hs_error_set(
            error, HS_ERR_PARSE,
            "header: unknown columns: %s (the layout is indicator,scope,period,value[,unit,volume,"
            "provisional,suspended,flags,source])",
            unknown);
    char missing[160] = "";
    for (int c = 0; c < REQUIRED_COLUMNS; c++)
        if (hdr->index[c] < 0)
            append_name(missing, sizeof missing, column_names[c]);
    if (missing[0])
        return hs_error_set(error, HS_ERR_PARSE, "header: missing required columns: %s", missing);
    /* Every column is known and none repeats, so there are at most HS_CSV_COLUMN_COUNT of them. */
    assert(row->count <= HS_CSV_COLUMN_COUNT);
    hdr->count = row->count;
    for (int c = 0; c < HS_CSV_COLUMN_COUNT; c++)
        if (hdr->index[c] >= 0)
            hdr->column[hdr->index[c]] = (hs_csv_column)c;
    return HS_OK;
}

void hs_csv_header_free(hs_csv_header *hdr)
{
    if (hdr)
        memset(hdr, 0, sizeof *hdr);
}

/* The text of layout column `c` in `row`, "" when the file has no such column. */
static const char *field_of(const hs_csv_header *hdr, const hs_csv_row *row, hs_csv_column c)
{
    return hdr->index[c] >= 0 ? row->fields[hdr->index[c]] : "";
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Skips a run of digits; returns how many there were. */
static size_t skip_digits(const char **p)
{
    size_t n = 0;
    while (is_digit(**p)) {
        (*p)++;
        n++;
    }
    return n;
}

/* "74,5" or "1.234,5": a number in Danish notation. */
static bool looks_danish(const char *text)
{
    return strchr(text, ',') && strspn(text, "+-0123456789.,") == strlen(text) && strpbrk(text, "0123456789");
}

/* A decimal number: [+-]digits[.digits][e[+-]digits]; also NaN and Inf (refused later as not finite). */
static hs_err parse_number(const char *column, const char *text, double *out, hs_error *error)
{
    const char *t = text + (text[0] == '+' || text[0] == '-');
    if (strcasecmp(t, "nan") == 0) {
        *out = NAN;
        return HS_OK;
    }
    if (strcasecmp(t, "inf") == 0 || strcasecmp(t, "infinity") == 0) {
        *out = text[0] == '-' ? -INFINITY : INFINITY;
        return HS_OK;
    }
    const char *p = t;
    bool ok = skip_digits(&p) > 0;
    if (ok && *p == '.') {
        p++;
        ok = skip_digits(&p) > 0;
    }
    if (ok && (*p == 'e' || *p == 'E')) {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        ok = skip_digits(&p) > 0;
    }
    if (!ok || *p != '\0')
        return hs_error_set(error, HS_ERR_PARSE, "%s: '%.*s' is not a number%s", column, QUOTE_MAX, text,
                            looks_danish(t) ? " (use '.' as decimal separator)" : "");
    errno = 0;
    double value = strtod(text, NULL);
    if (errno == ERANGE && isinf(value))
        return hs_error_set(error, HS_ERR_PARSE, "%s: '%.*s' is out of range", column, QUOTE_MAX, text);
    *out = value; /* an underflow reads as (nearly) zero, which is what was meant */
    return HS_OK;
}

static hs_err parse_whole(const char *column, const char *text, int64_t *out, hs_error *error)
{
    const char *p = text + (text[0] == '+' || text[0] == '-');
    if (skip_digits(&p) == 0 || *p != '\0')
        return hs_error_set(error, HS_ERR_PARSE, "%s: '%.*s' is not a whole number", column, QUOTE_MAX, text);
    errno = 0;
    long long value = strtoll(text, NULL, 10);
    if (errno == ERANGE)
        return hs_error_set(error, HS_ERR_PARSE, "%s: '%.*s' is out of range", column, QUOTE_MAX, text);
    *out = value;
    return HS_OK;
}

static hs_err parse_bool(const char *column, const char *text, protobuf_c_boolean *out, hs_error *error)
{
    static const char *const yes[] = {"true", "1", "yes"};
    static const char *const no[] = {"false", "0", "no"};
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = 1;
            return HS_OK;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = 0;
            return HS_OK;
        }
    }
    return hs_error_set(error, HS_ERR_PARSE, "%s: '%.*s' is not a boolean (true/false, 1/0, yes/no)", column,
                        QUOTE_MAX, text);
}

/* A copy of `text` for a string field, or the field's default (the static empty string) when empty. */
static hs_err set_string(char **field, const char *text, hs_error *error)
{
    if (!*text)
        return HS_OK;
    char *copy = strdup(text);
    if (!copy)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    *field = copy;
    return HS_OK;
}

/* Splits "a;b|c" into obs->quality_flags. Syntax of each flag is validation's business. */
static hs_err parse_flags(const char *text, Healthsignals__V1__IndicatorObservation *obs, hs_error *error)
{
    size_t n = 1;
    for (const char *p = text; *p; p++)
        n += *p == ';' || *p == '|';
    if (n > HS_VALIDATE_FLAGS_MAX)
        return hs_error_set(error, HS_ERR_TOO_LARGE, "flags: %zu flags, at most %d", n,
                            HS_VALIDATE_FLAGS_MAX);
    obs->quality_flags = calloc(n, sizeof *obs->quality_flags);
    if (!obs->quality_flags)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    const char *p = text;
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(p, ";|");
        if (len == 0)
            return hs_error_set(error, HS_ERR_PARSE,
                                "flags: empty flag in '%.*s' (separate flags by ';' or '|')", QUOTE_MAX,
                                text);
        char *flag = strndup(p, len);
        if (!flag)
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
        obs->quality_flags[obs->n_quality_flags++] = flag;
        p += len + (p[len] != '\0');
    }
    return HS_OK;
}

/* Fills `obs` from the row's text; every allocation hangs off `obs` at once, so that freeing `obs` frees
 * everything whatever step fails. */
static hs_err fill_indicator(Healthsignals__V1__IndicatorObservation *obs, const hs_csv_header *hdr,
                             const hs_csv_row *row, hs_error *error)
{
    hs_err err = set_string(&obs->indicator, field_of(hdr, row, HS_CSV_INDICATOR), error);
    if (err != HS_OK)
        return err;
    obs->scope = malloc(sizeof *obs->scope);
    if (!obs->scope)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    err = hs_scope_parse(field_of(hdr, row, HS_CSV_SCOPE), obs->scope, error);
    if (err == HS_OK)
        err = set_string(&obs->period, field_of(hdr, row, HS_CSV_PERIOD), error);
    if (err != HS_OK)
        return err;

    const char *text = field_of(hdr, row, HS_CSV_VALUE);
    if (!*text)
        return hs_error_set(error, HS_ERR_VALIDATION, "value is required");
    err = parse_number("value", text, &obs->value, error);
    if (err != HS_OK)
        return err;
    text = field_of(hdr, row, HS_CSV_UNIT);
    if (*text && !hs_unit_parse(text, &obs->unit))
        return hs_error_set(error, HS_ERR_PARSE, "unit: unknown unit '%.*s'", QUOTE_MAX, text);
    text = field_of(hdr, row, HS_CSV_VOLUME);
    if (*text) {
        err = parse_whole("volume", text, &obs->volume, error);
        if (err != HS_OK)
            return err;
        obs->_volume_case = HEALTHSIGNALS__V1__INDICATOR_OBSERVATION___VOLUME_VOLUME;
    }
    text = field_of(hdr, row, HS_CSV_PROVISIONAL);
    if (*text && (err = parse_bool("provisional", text, &obs->provisional, error)) != HS_OK)
        return err;
    text = field_of(hdr, row, HS_CSV_SUSPENDED);
    if (*text && (err = parse_bool("suspended", text, &obs->suspended, error)) != HS_OK)
        return err;
    text = field_of(hdr, row, HS_CSV_FLAGS);
    if (*text && (err = parse_flags(text, obs, error)) != HS_OK)
        return err;
    return set_string(&obs->source, field_of(hdr, row, HS_CSV_SOURCE), error);
}

static hs_err indicator_from_row(const hs_csv_header *hdr, const hs_csv_row *row,
                                 Healthsignals__V1__IndicatorObservation **out, hs_error *error)
{
    for (int c = 0; c < REQUIRED_COLUMNS; c++)
        if (hdr->index[c] < 0 || (size_t)hdr->index[c] >= hdr->count)
            return hs_error_set(error, HS_ERR_PARSE, "header has no column %s", column_names[c]);
    if (row->count != hdr->count)
        return hs_error_set(error, HS_ERR_PARSE, "wrong number of columns: %zu, header has %zu", row->count,
                            hdr->count);
    for (size_t i = 0; i < row->count; i++)
        if (!hs_validate_utf8(row->fields[i], strlen(row->fields[i])))
            return hs_error_set(error, HS_ERR_PARSE, "invalid UTF-8 in column %s",
                                column_names[hdr->column[i]]);

    Healthsignals__V1__IndicatorObservation *obs = malloc(sizeof *obs);
    if (!obs)
        return hs_error_set(error, HS_ERR_NOMEM, "out of memory");
    healthsignals__v1__indicator_observation__init(obs);
    hs_err err = fill_indicator(obs, hdr, row, error);
    if (err == HS_OK)
        err = hs_validate_indicator(obs, error);
    if (err != HS_OK) {
        protobuf_c_message_free_unpacked(&obs->base, NULL);
        return err;
    }
    *out = obs;
    return HS_OK;
}

hs_err hs_indicator_from_csv(const hs_csv_header *hdr, const hs_csv_row *row,
                             Healthsignals__V1__IndicatorObservation **out, hs_error *error)
{
    *out = NULL;
    if (row->error) {
        if (error)
            *error = *row->error;
        return row->error->code;
    }
    hs_err err = indicator_from_row(hdr, row, out, error);
    if (err != HS_OK && error && row->last_line > row->line) {
        /* The lines after the first went into this row through a quoted field: say so, or they would be
         * lost without a word (an unbalanced quote that a later '"' happens to close). */
        hs_error inner = *error;
        hs_error_set(error, err, "%s (this row spans lines %ld-%ld: a quoted field holds line breaks)",
                     inner.message, row->line, row->last_line);
    }
    return err;
}
