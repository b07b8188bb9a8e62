/* CSV is how published figures enter healthsignals (`hsctl publish --csv`): every row of the real files in
 * tests/fixtures/ (copied from the steering documents' tables) must read, every bad row must be reported by
 * its line with a reason a user can act on, the good rows around it must still arrive, and no input — a
 * 10 MB line included — may crash the reader or make it hold more than a bounded amount of memory.
 */
#define _GNU_SOURCE /* fopencookie, to stream a 10 MB line without holding it */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hs/csv.h"

#if defined(__SANITIZE_ADDRESS__)
#define HS_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HS_TEST_ASAN 1
#endif
#endif
#ifdef HS_TEST_ASAN
#include <sanitizer/allocator_interface.h>
#endif

/* --- a collecting consumer, as hsctl publish is one ---------------------------------------------------- */

#define MAX_KEPT 64

typedef struct collected {
    hs_csv_header header;
    bool have_header;
    hs_err header_err;
    char header_reason[300];
    int rows; /* data rows seen */
    int good; /* converted and valid */
    int bad;  /* rejected */
    long good_lines[MAX_KEPT];
    Healthsignals__V1__IndicatorObservation *kept[MAX_KEPT];
    char bad_reports[8][300]; /* the first rejected rows, "line N: reason" */
    hs_err bad_codes[8];
    int stop_after; /* stop after this many data rows; 0 = never */
} collected;

static int collect(void *ctx, const hs_csv_row *row)
{
    collected *c = ctx;
    hs_error error = {0};
    if (!c->have_header) {
        c->header_err = hs_csv_header_parse(&c->header, row, &error);
        if (c->header_err != HS_OK) {
            snprintf(c->header_reason, sizeof c->header_reason, "line %ld: %s", row->line, error.message);
            return 1;
        }
        c->have_header = true;
        return 0;
    }
    c->rows++;
    Healthsignals__V1__IndicatorObservation *obs = NULL;
    hs_err err = hs_indicator_from_csv(&c->header, row, &obs, &error);
    if (err == HS_OK) {
        assert_non_null(obs);
        if (c->good < MAX_KEPT) {
            c->good_lines[c->good] = row->line;
            c->kept[c->good] = obs;
        } else {
            protobuf_c_message_free_unpacked(&obs->base, NULL);
        }
        c->good++;
    } else {
        assert_null(obs);
        if (c->bad < 8) {
            snprintf(c->bad_reports[c->bad], sizeof c->bad_reports[c->bad], "line %ld: %s", row->line,
                     error.message);
            c->bad_codes[c->bad] = err;
        }
        c->bad++;
    }
    return c->stop_after && c->rows >= c->stop_after;
}

static void release(collected *c)
{
    for (int i = 0; i < c->good && i < MAX_KEPT; i++)
        protobuf_c_message_free_unpacked(&c->kept[i]->base, NULL);
    if (c->have_header)
        hs_csv_header_free(&c->header);
}

/* Reads `text` (of `len` bytes) through hs_csv_read into `c`. */
static hs_err read_bytes(const char *text, size_t len, collected *c, hs_error *error)
{
    memset(c, 0, sizeof *c);
    FILE *in = fmemopen((void *)text, len, "r");
    assert_non_null(in);
    hs_err err = hs_csv_read(in, "test.csv", collect, c, error);
    fclose(in);
    return err;
}

static hs_err read_text(const char *text, collected *c)
{
    hs_error error = {0};
    hs_err err = read_bytes(text, strlen(text), c, &error);
    if (err != HS_OK)
        fail_msg("hs_csv_read: %s", error.message);
    return err;
}

#define HEADER "indicator,scope,period,value,unit,volume,provisional,suspended,flags,source\n"
#define GOOD_ROW(region, value)                                                                              \
    "udredningsret.somatik.compliance," region ",2023Q2," value ",PERCENT,,true,false,,LPR\n"

/* Reads a text with one bad row between two good ones; asserts that and returns the bad row's report. */
static const char *only_bad_report(const char *bad_row, collected *c)
{
    char text[1024];
    snprintf(text, sizeof text, "%s%s%s%s", HEADER, GOOD_ROW("1084", "83"), bad_row, GOOD_ROW("1081", "90"));
    read_text(text, c);
    assert_true(c->have_header);
    assert_int_equal(c->good, 2);
    assert_int_equal(c->bad, 1);
    return c->bad_reports[0];
}

/* --- the real files ------------------------------------------------------------------------------------ */

static FILE *open_fixture(const char *name)
{
    char path[4096];
    const char *dir = getenv("HS_FIXTURES_DIR");
    if (dir) {
        snprintf(path, sizeof path, "%s/%s", dir, name);
    } else {
        /* this file is tests/unit/test_csv.c; the fixtures are tests/fixtures/ */
        const char *file = __FILE__;
        const char *end = strrchr(file, '/');
        while (end && end > file && end[-1] != '/')
            end--;
        int len = end ? (int)(end - file) : 0;
        snprintf(path, sizeof path, "%.*sfixtures/%s", len, file, name);
    }
    FILE *in = fopen(path, "rb");
    if (!in)
        fail_msg("cannot open fixture %s", path);
    return in;
}

static void read_fixture(const char *name, collected *c)
{
    memset(c, 0, sizeof *c);
    FILE *in = open_fixture(name);
    hs_error error = {0};
    hs_err err = hs_csv_read(in, name, collect, c, &error);
    fclose(in);
    if (err != HS_OK)
        fail_msg("%s: %s", name, error.message);
    if (c->bad)
        fail_msg("%s: %s", name, c->bad_reports[0]);
    assert_true(c->have_header);
}

static const Healthsignals__V1__IndicatorObservation *find(const collected *c, const char *code,
                                                           const char *period)
{
    for (int i = 0; i < c->good && i < MAX_KEPT; i++)
        if (strcmp(c->kept[i]->scope->code, code) == 0 && strcmp(c->kept[i]->period, period) == 0)
            return c->kept[i];
    fail_msg("no row for %s %s", code, period);
    return NULL;
}

static void test_udredningsret_file_reads_all_36_rows(void **state)
{
    collected c;
    read_fixture("udredningsret-somatik.csv", &c);
    assert_int_equal(c.rows, 36); /* 6 scopes x 6 quarters 2022Q1..2023Q2 */
    assert_int_equal(c.good, 36);
    assert_int_equal(c.good_lines[0], 2);
    assert_int_equal(c.good_lines[35], 37);
    release(&c);
}

static void test_udredningsret_figures_match_tabel_8(void **state)
{
    collected c;
    read_fixture("udredningsret-somatik.csv", &c);
    /* Tabel 8: Midtjylland 2023Q2 61 %, the latest quarter, provisional. */
    const Healthsignals__V1__IndicatorObservation *mid = find(&c, "1082", "2023Q2");
    assert_string_equal(mid->indicator, "udredningsret.somatik.compliance");
    assert_int_equal(mid->scope->kind, HEALTHSIGNALS__V1__SCOPE_KIND__REGION);
    assert_true(mid->value == 61);
    assert_int_equal(mid->unit, HEALTHSIGNALS__V1__UNIT__PERCENT);
    assert_true(mid->provisional);
    assert_false(mid->suspended);
    assert_int_equal(mid->n_quality_flags, 0);
    assert_int_equal(mid->_volume_case, HEALTHSIGNALS__V1__INDICATOR_OBSERVATION___VOLUME__NOT_SET);
    /* Nordjylland 2022Q2: 80 %, in the EPJ transition. */
    const Healthsignals__V1__IndicatorObservation *nord = find(&c, "1081", "2022Q2");
    assert_true(nord->value == 80);
    assert_false(nord->provisional);
    assert_int_equal(nord->n_quality_flags, 1);
    assert_string_equal(nord->quality_flags[0], "epj-transition");
    assert_string_equal(nord->source, "Landspatientregistret via Danske Regioner dashboard 2023-09-04");
    /* The nation, 2022Q1: 74 where the regional mean is 75.8 (national is weighted by volume). */
    const Healthsignals__V1__IndicatorObservation *dk = find(&c, "DK", "2022Q1");
    assert_int_equal(dk->scope->kind, HEALTHSIGNALS__V1__SCOPE_KIND__NATIONAL);
    assert_true(dk->value == 74);
    release(&c);
}

static void test_ventetid_file_reads_all_42_rows(void **state)
{
    collected c;
    read_fixture("ventetid-somatik.csv", &c);
    assert_int_equal(c.rows, 42); /* 6 scopes x (2020Q1 + 6 quarters) */
    assert_int_equal(c.good, 42);
    /* Tabel 1: Nordjylland 2023Q2 41 days = 2020Q1's 39 + 2, met exactly at the boundary. */
    const Healthsignals__V1__IndicatorObservation *nord = find(&c, "1081", "2023Q2");
    assert_true(nord->value == 41);
    assert_int_equal(nord->unit, HEALTHSIGNALS__V1__UNIT__DAYS);
    assert_true(find(&c, "1081", "2020Q1")->value == 39);
    release(&c);
}

static void test_kraeft_file_reads_all_42_rows(void **state)
{
    collected c;
    read_fixture("kraeft-standardforloeb.csv", &c);
    assert_int_equal(c.rows, 42);
    assert_int_equal(c.good, 42);
    /* Tabel 10, 2023Q2: highest Nordjylland 87, lowest Sjælland 66. */
    assert_true(find(&c, "1081", "2023Q2")->value == 87);
    assert_true(find(&c, "1085", "2023Q2")->value == 66);
    release(&c);
}

static void test_udredning_forloebstid_file_reads_all_36_rows(void **state)
{
    collected c;
    read_fixture("udredning-somatik-forloebstid.csv", &c);
    assert_int_equal(c.rows, 36);
    assert_int_equal(c.good, 36);
    /* Tabel 9: Sjælland 2022Q1 68 days; Syddanmark's 2022 quarters carry epj-transition. */
    assert_true(find(&c, "1085", "2022Q1")->value == 68);
    assert_string_equal(find(&c, "1083", "2022Q3")->quality_flags[0], "epj-transition");
    release(&c);
}

/* --- malformed input, one behaviour each --------------------------------------------------------------- */

#define UNBALANCED_ROW "udredningsret.somatik.compliance,\"1085,2023Q2,75,PERCENT,,,,,x\n"

/* Issue 15, item 8: an unbalanced quote swallowed the good rows up to the next quote without reporting them.
 * By RFC 4180 the open quote runs to the end of the input, so the rows after it are part of the field: the
 * good row before it is kept, and every line after it is reported, naming the line the quote opened on. */
static void test_unbalanced_quote_is_reported_at_the_line_it_opens(void **state)
{
    collected c;
    read_text(HEADER GOOD_ROW("1084", "83") UNBALANCED_ROW GOOD_ROW("1081", "90") GOOD_ROW("1082", "61"), &c);
    assert_int_equal(c.good, 1);
    assert_int_equal(c.good_lines[0], 2);
    assert_int_equal(c.bad, 3);
    assert_string_equal(c.bad_reports[0], "line 3: unterminated quoted field: the quote opened on line 3 is "
                                          "never closed, so lines 4-5 are inside it and not read");
    assert_string_equal(c.bad_reports[1], "line 4: not read: inside the quoted field opened on line 3 (never "
                                          "closed)");
    assert_string_equal(c.bad_reports[2], "line 5: not read: inside the quoted field opened on line 3 (never "
                                          "closed)");
    assert_int_equal(c.bad_codes[2], HS_ERR_PARSE);
    release(&c);

    /* At the end of the input, without a line feed after it: the one line is the whole field. */
    read_text(HEADER GOOD_ROW("1084", "83") "udredningsret.somatik.compliance,\"1085", &c);
    assert_int_equal(c.good, 1);
    assert_int_equal(c.bad, 1);
    assert_string_equal(c.bad_reports[0], "line 3: unterminated quoted field: the closing '\"' is missing");
    release(&c);
}

/* The next quote closes the field and malformed quoting follows it: the lines in between are reported one
 * by one, and reading resumes after the line of the closing quote. */
static void test_rows_up_to_the_next_quote_are_reported_and_reading_resumes_after_it(void **state)
{
    collected c;
    read_text(
        HEADER GOOD_ROW("1084", "83") UNBALANCED_ROW GOOD_ROW("1081", "90") GOOD_ROW(
            "1082",
            "61") "udredningsret.somatik.compliance,1083,2023Q2,67,PERCENT,,,,,\"LPR\"\n" GOOD_ROW("1083",
                                                                                                   "67"),
        &c);
    assert_int_equal(c.good, 2);
    assert_int_equal(c.good_lines[0], 2);
    assert_int_equal(c.good_lines[1], 7);
    assert_int_equal(c.bad, 4);
    assert_string_equal(
        c.bad_reports[0],
        "line 3: malformed quoting on line 6: a '\"' inside an unquoted field, or text after a "
        "closing quote; the quoted field opened on line 3 takes lines 4-6 into this record");
    for (int i = 1; i < 4; i++) {
        char want[160];
        snprintf(want, sizeof want,
                 "line %d: not read: inside the quoted field opened on line 3 (malformed quoting on line 6)",
                 3 + i);
        assert_string_equal(c.bad_reports[i], want);
    }
    release(&c);
}

/* A quote that a later '"' closes cleanly makes one row of several lines: its reason names them. */
static void test_row_spanning_lines_that_fails_names_its_lines(void **state)
{
    collected c;
    read_text(HEADER GOOD_ROW("1084", "83")
                  UNBALANCED_ROW GOOD_ROW("1081", "90") "LPR\"\n" GOOD_ROW("1083", "67"),
              &c);
    assert_int_equal(c.good, 2);
    assert_int_equal(c.good_lines[1], 6);
    assert_int_equal(c.bad, 1);
    assert_string_equal(c.bad_reports[0], "line 3: wrong number of columns: 2, header has 10 (this row spans "
                                          "lines 3-5: a quoted field holds line breaks)");
    release(&c);
}

static void test_quote_inside_unquoted_field_is_reported_and_the_next_line_read(void **state)
{
    collected c;
    const char *report =
        only_bad_report("udredningsret.somatik.compliance,10\"82,2023Q2,61,PERCENT,,,,,x\n", &c);
    assert_string_equal(report,
                        "line 3: malformed quoting: a '\"' inside an unquoted field, or text after a closing "
                        "quote");
    assert_int_equal(c.good_lines[1], 4);
    release(&c);
}

static void test_text_after_a_closing_quote_is_malformed_quoting(void **state)
{
    collected c;
    const char *report =
        only_bad_report("udredningsret.somatik.compliance,\"1082\"x,2023Q2,61,PERCENT,,,,,x\n", &c);
    assert_non_null(strstr(report, "line 3: malformed quoting"));
    release(&c);
}

static void test_wrong_column_count_names_both_counts(void **state)
{
    collected c;
    const char *report = only_bad_report("udredningsret.somatik.compliance,1082,2023Q2,61,PERCENT\n", &c);
    assert_string_equal(report, "line 3: wrong number of columns: 5, header has 10");
    assert_int_equal(c.bad_codes[0], HS_ERR_PARSE);
    release(&c);
}

static void test_value_that_is_not_a_number_is_rejected(void **state)
{
    collected c;
    const char *report =
        only_bad_report("udredningsret.somatik.compliance,1082,2023Q2,abc,PERCENT,,false,false,,x\n", &c);
    assert_string_equal(report, "line 3: value: 'abc' is not a number");
    assert_int_equal(c.bad_codes[0], HS_ERR_PARSE);
    release(&c);
}

static void test_nan_value_is_not_finite(void **state)
{
    collected c;
    const char *report =
        only_bad_report("udredningsret.somatik.compliance,1082,2023Q2,NaN,PERCENT,,false,false,,x\n", &c);
    assert_string_equal(report, "line 3: value: NaN is not a finite number");
    assert_int_equal(c.bad_codes[0], HS_ERR_VALIDATION);
    release(&c);
}

static void test_unknown_region_is_named(void **state)
{
    collected c;
    const char *report =
        only_bad_report("udredningsret.somatik.compliance,Sjællandx,2023Q2,75,PERCENT,,false,false,,x\n", &c);
    assert_string_equal(report, "line 3: scope: unknown region 'Sjællandx'");
    release(&c);
}

static void test_bad_period_says_what_is_wrong(void **state)
{
    collected c;
    const char *report =
        only_bad_report("udredningsret.somatik.compliance,1082,2023Q5,61,PERCENT,,false,false,,x\n", &c);
    assert_string_equal(report, "line 3: period '2023Q5': quarter must be 1-4");
    release(&c);
}

static void test_percent_of_130_is_above_the_range(void **state)
{
    collected c;
    const char *report =
        only_bad_report("udredningsret.somatik.compliance,1082,2023Q2,130,PERCENT,,false,false,,x\n", &c);
    assert_string_equal(report, "line 3: value: 130 is above 100 for PERCENT");
    release(&c);
}

static void test_empty_file_has_no_header(void **state)
{
    collected c;
    hs_error error = {0};
    assert_int_equal(read_bytes("", 0, &c, &error), HS_ERR_PARSE);
    assert_string_equal(error.message, "test.csv: empty file: no header");
    /* blank lines and a byte order mark are no header either */
    assert_int_equal(read_bytes("\xEF\xBB\xBF\r\n\n", 5, &c, &error), HS_ERR_PARSE);
    assert_string_equal(error.message, "test.csv: empty file: no header");
}

/* A FILE that yields a header, a good row, a 10 MB line and a good row, generated on the fly, and records
 * the most memory the process held while it was read. */
typedef struct long_line_source {
    size_t produced;
    size_t baseline;
    size_t peak;
} long_line_source;

#define LONG_LINE_BYTES (10u * 1024 * 1024)

static size_t allocated_bytes(void)
{
#ifdef HS_TEST_ASAN
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
#endif
}

static ssize_t long_line_read(void *cookie, char *buf, size_t size)
{
    long_line_source *src = cookie;
    static const char head[] = HEADER GOOD_ROW("1084", "83");
    static const char tail[] = "\n" GOOD_ROW("1081", "90");
    size_t head_len = sizeof head - 1, tail_len = sizeof tail - 1;
    size_t total = head_len + LONG_LINE_BYTES + tail_len;
    size_t used = allocated_bytes();
    if (used > src->peak)
        src->peak = used;
    size_t n = 0;
    while (n < size && src->produced < total) {
        size_t at = src->produced;
        if (at < head_len)
            buf[n] = head[at];
        else if (at < head_len + LONG_LINE_BYTES)
            buf[n] = 'x'; /* one huge field: the case where libcsv itself would buffer it all */
        else
            buf[n] = tail[at - head_len - LONG_LINE_BYTES];
        n++;
        src->produced++;
    }
    return (ssize_t)n;
}

static void test_10_mb_line_is_a_row_error_in_bounded_memory(void **state)
{
    long_line_source src = {0};
    src.baseline = allocated_bytes();
    cookie_io_functions_t io = {.read = long_line_read};
    FILE *in = fopencookie(&src, "r", io);
    assert_non_null(in);
    collected c;
    memset(&c, 0, sizeof c);
    hs_error error = {0};
    assert_int_equal(hs_csv_read(in, "long.csv", collect, &c, &error), HS_OK);
    fclose(in);
    /* The good rows before and after are delivered; the long line is one error at its own line. */
    assert_int_equal(c.good, 2);
    assert_int_equal(c.good_lines[0], 2);
    assert_int_equal(c.good_lines[1], 4);
    assert_int_equal(c.bad, 1);
    assert_string_equal(c.bad_reports[0], "line 3: line longer than 1048576 bytes");
    assert_int_equal(c.bad_codes[0], HS_ERR_PARSE);
    /* Bounded: the reader never held more than a few MiB, far below the 10 MB line. */
    size_t held = src.peak > src.baseline ? src.peak - src.baseline : 0;
    print_message("peak memory while reading a 10 MB line: %zu KiB\n", held / 1024);
    assert_true(held < 4u * 1024 * 1024);
    release(&c);
}

static void test_line_of_exactly_1_mib_is_accepted_and_one_byte_more_is_not(void **state)
{
    size_t limit = HS_CSV_MAX_LINE_BYTES;
    const char *prefix = "udredningsret.somatik.compliance,1082,2023Q2,61,PERCENT,,false,false,,";
    size_t prefix_len = strlen(prefix);
    size_t header_len = strlen(HEADER);
    char *text = malloc(header_len + limit + 3);
    for (int extra = 0; extra <= 1; extra++) {
        /* the source column fills the line to the limit (+1); the row itself then fails validation (source
         * longer than 512 bytes) when it is read, which proves that it was */
        memcpy(text, HEADER, header_len);
        memcpy(text + header_len, prefix, prefix_len);
        memset(text + header_len + prefix_len, 's', limit + (size_t)extra - prefix_len);
        memcpy(text + header_len + limit + (size_t)extra, "\r\n", 2);
        collected c;
        hs_error error = {0};
        assert_int_equal(read_bytes(text, header_len + limit + (size_t)extra + 2, &c, &error), HS_OK);
        assert_int_equal(c.bad, 1);
        assert_string_equal(c.bad_reports[0], extra ? "line 2: line longer than 1048576 bytes"
                                                    : "line 2: source: longer than 512 bytes");
        release(&c);
    }
    free(text);
}

static void test_invalid_utf8_is_named_by_column(void **state)
{
    collected c;
    const char *report = only_bad_report(
        "udredningsret.somatik.compliance,1082,2023Q2,61,PERCENT,,false,false,,Sj\xE6lland\n", &c);
    assert_string_equal(report, "line 3: invalid UTF-8 in column source");
    release(&c);
}

static void test_danish_decimal_comma_gets_a_hint(void **state)
{
    collected c;
    const char *report = only_bad_report(
        "udredningsret.somatik.compliance,1082,2023Q2,\"74,5\",PERCENT,,false,false,,x\n", &c);
    assert_string_equal(report, "line 3: value: '74,5' is not a number (use '.' as decimal separator)");
    release(&c);
    /* unquoted, the comma splits the field: one column too many */
    report =
        only_bad_report("udredningsret.somatik.compliance,1082,2023Q2,74,5,PERCENT,,false,false,,x\n", &c);
    assert_string_equal(report, "line 3: wrong number of columns: 11, header has 10");
    release(&c);
}

static void test_good_rows_before_and_after_bad_rows_are_delivered(void **state)
{
    collected c;
    read_text(HEADER GOOD_ROW("1084", "83")                                      /* line 2 */
              "udredningsret.somatik.compliance,1082,2023Q2,abc,PERCENT,,,,,x\n" /* line 3: not a number */
              GOOD_ROW("1082", "61")                                             /* line 4 */
              "a,b\"c,d\n"                                                       /* line 5: quoting */
              GOOD_ROW("1085", "75")                                             /* line 6 */
              "x,y\n"                                                            /* line 7: columns */
              GOOD_ROW("1081", "90"),                                            /* line 8 */
              &c);
    assert_int_equal(c.good, 4);
    assert_int_equal(c.good_lines[0], 2);
    assert_int_equal(c.good_lines[1], 4);
    assert_int_equal(c.good_lines[2], 6);
    assert_int_equal(c.good_lines[3], 8);
    assert_int_equal(c.bad, 3);
    assert_non_null(strstr(c.bad_reports[0], "line 3: value"));
    assert_non_null(strstr(c.bad_reports[1], "line 5: malformed quoting"));
    assert_non_null(strstr(c.bad_reports[2], "line 7: wrong number of columns"));
    release(&c);
}

/* --- the reader ---------------------------------------------------------------------------------------- */

typedef struct lines_seen {
    int count;
    long line[16];
    char first[16][300];
    size_t fields[16];
} lines_seen;

static int record_lines(void *ctx, const hs_csv_row *row)
{
    lines_seen *s = ctx;
    if (s->count < 16) {
        s->line[s->count] = row->line;
        s->fields[s->count] = row->count;
        snprintf(s->first[s->count], sizeof s->first[0], "%s",
                 row->error ? row->error->message : row->fields[0]);
    }
    s->count++;
    return 0;
}

static lines_seen read_lines(const char *text, size_t len)
{
    lines_seen s = {0};
    FILE *in = fmemopen((void *)text, len, "r");
    hs_error error = {0};
    assert_int_equal(hs_csv_read(in, NULL, record_lines, &s, &error), HS_OK);
    fclose(in);
    return s;
}

static void test_quoted_field_over_the_limit_across_lines_is_a_row_error(void **state)
{
    /* Line 2 opens a quoted field and fills the limit exactly; its line break pushes the record over it. */
    size_t limit = HS_CSV_MAX_LINE_BYTES;
    const char *head = "h1,h2\n\"";
    const char *rest = "\nmore\",x\nnext,row\n";
    size_t head_len = strlen(head), rest_len = strlen(rest);
    char *text = malloc(head_len + limit + rest_len);
    memcpy(text, head, head_len);
    memset(text + head_len, 'q', limit - 1); /* the opening quote is the first byte of the line */
    memcpy(text + head_len + limit - 1, rest, rest_len);
    lines_seen s = read_lines(text, head_len + limit - 1 + rest_len);
    assert_int_equal(s.count, 4);
    assert_int_equal(s.line[1], 2);
    assert_string_equal(s.first[1], "record longer than 1048576 bytes (a quoted field runs on to line 3)");
    assert_int_equal(s.line[2], 3); /* the line it ran on to, not read: reported on its own */
    assert_string_equal(s.first[2],
                        "not read: inside the quoted field opened on line 2 (its record is too long)");
    assert_int_equal(s.line[3], 4);
    assert_string_equal(s.first[3], "next");
    free(text);
}

static void test_record_lines_count_line_breaks_inside_quoted_fields(void **state)
{
    const char text[] = "h1,h2\n"
                        "\"multi\nline\nfield\",x\n" /* lines 2-4 */
                        "\n"                         /* line 5: blank, skipped */
                        "after,y\n";                 /* line 6 */
    lines_seen s = read_lines(text, sizeof text - 1);
    assert_int_equal(s.count, 3);
    assert_int_equal(s.line[0], 1);
    assert_int_equal(s.line[1], 2);
    assert_string_equal(s.first[1], "multi\nline\nfield");
    assert_int_equal(s.line[2], 6);
    assert_string_equal(s.first[2], "after");
}

static void test_crlf_line_ends_are_accepted(void **state)
{
    const char text[] = "h1,h2\r\na,\"b\r\nc\"\r\n\r\nd,e\r\n";
    lines_seen s = read_lines(text, sizeof text - 1);
    assert_int_equal(s.count, 3);
    assert_int_equal(s.line[1], 2);
    assert_int_equal(s.fields[1], 2);
    assert_int_equal(s.line[2], 5);
    assert_string_equal(s.first[2], "d");
}

static void test_crlf_split_between_two_reads_is_one_line_end(void **state)
{
    /* The reader reads 64 KiB at a time: put the CR of a CRLF as the last byte of the first read. */
    size_t chunk = 64 * 1024;
    char *text = malloc(chunk + 16);
    memset(text, 'a', chunk - 1);
    text[chunk - 1] = '\r';
    memcpy(text + chunk, "\nb\n", 3);
    lines_seen s = read_lines(text, chunk + 3);
    assert_int_equal(s.count, 2);
    assert_int_equal(s.fields[0], 1);
    assert_int_equal(s.line[1], 2);
    assert_string_equal(s.first[1], "b");
    free(text);
}

static void test_byte_order_mark_is_skipped(void **state)
{
    collected c;
    read_text("\xEF\xBB\xBF" HEADER GOOD_ROW("1084", "83"), &c);
    assert_true(c.have_header);
    assert_int_equal(c.good, 1);
    release(&c);
}

static void test_last_record_without_a_line_feed_is_read(void **state)
{
    const char text[] = "h1,h2\nlast,row";
    lines_seen s = read_lines(text, sizeof text - 1);
    assert_int_equal(s.count, 2);
    assert_string_equal(s.first[1], "last");
    assert_int_equal(s.fields[1], 2);
}

static void test_fields_are_not_trimmed(void **state)
{
    const char text[] = "h\n a ,\tb\n";
    lines_seen s = read_lines(text, sizeof text - 1);
    assert_string_equal(s.first[1], " a ");
}

static void test_nul_byte_in_a_field_is_a_row_error(void **state)
{
    const char text[] = "h1,h2\na\0b,c\nd,e\n";
    lines_seen s = read_lines(text, sizeof text - 1);
    assert_int_equal(s.count, 3);
    assert_string_equal(s.first[1], "field 1 contains a NUL byte");
    assert_int_equal(s.fields[1], 0);
    assert_string_equal(s.first[2], "d");
}

static void test_more_than_1024_fields_is_a_row_error(void **state)
{
    size_t n = 1025;
    char *text = malloc(2 * n + 8);
    size_t len = 0;
    text[len++] = 'h';
    text[len++] = '\n';
    for (size_t i = 0; i < n; i++) {
        text[len++] = 'f';
        text[len++] = i + 1 < n ? ',' : '\n';
    }
    memcpy(text + len, "ok\n", 3);
    len += 3;
    lines_seen s = read_lines(text, len);
    assert_int_equal(s.count, 3);
    assert_string_equal(s.first[1], "more than 1024 fields");
    assert_string_equal(s.first[2], "ok");
    free(text);
}

static int stop_at_second(void *ctx, const hs_csv_row *row)
{
    int *seen = ctx;
    (*seen)++;
    return row->record == 1;
}

static void test_callback_returning_non_zero_stops_the_reader(void **state)
{
    const char text[] = "h\n1\n2\n3\n";
    int seen = 0;
    FILE *in = fmemopen((void *)text, sizeof text - 1, "r");
    assert_int_equal(hs_csv_read(in, NULL, stop_at_second, &seen, NULL), HS_OK);
    fclose(in);
    assert_int_equal(seen, 2);
}

/* --- the indicator layout ------------------------------------------------------------------------------ */

static void test_header_columns_may_come_in_any_order(void **state)
{
    collected c;
    read_text("Value,period,SCOPE,indicator,unit\n"
              "61,2023Q2,Midtjylland,udredningsret.somatik.compliance,%\n",
              &c);
    assert_int_equal(c.good, 1);
    assert_string_equal(c.kept[0]->scope->code, "1082");
    assert_true(c.kept[0]->value == 61);
    assert_int_equal(c.kept[0]->unit, HEALTHSIGNALS__V1__UNIT__PERCENT);
    release(&c);
}

static void test_unknown_header_columns_are_named(void **state)
{
    collected c;
    read_text("indicator,scope,period,value,region,comment\n", &c);
    assert_false(c.have_header);
    assert_int_equal(c.header_err, HS_ERR_PARSE);
    assert_string_equal(c.header_reason,
                        "line 1: header: unknown columns: region, comment (the layout is "
                        "indicator,scope,period,value[,unit,volume,provisional,suspended,flags,"
                        "source])");
}

static void test_header_without_required_columns_is_rejected(void **state)
{
    collected c;
    read_text("indicator,scope,unit\n", &c);
    assert_string_equal(c.header_reason, "line 1: header: missing required columns: period, value");
    read_text("indicator,scope,period,value,value\n", &c);
    assert_string_equal(c.header_reason, "line 1: header: column value appears twice");
}

static void test_without_a_unit_column_every_row_lacks_its_unit(void **state)
{
    collected c;
    read_text("indicator,scope,period,value\nudredningsret.somatik.compliance,1082,2023Q2,61\n", &c);
    assert_true(c.have_header);
    assert_int_equal(c.bad, 1);
    assert_string_equal(c.bad_reports[0], "line 2: unit is required");
    release(&c);
}

static void test_unknown_unit_is_named(void **state)
{
    collected c;
    const char *report =
        only_bad_report("udredningsret.somatik.compliance,1082,2023Q2,61,procent,,false,false,,x\n", &c);
    assert_string_equal(report, "line 3: unit: unknown unit 'procent'");
    release(&c);
}

static void test_booleans_volume_and_flags_are_read(void **state)
{
    collected c;
    read_text(HEADER "udredningsret.somatik.compliance,1083,2022Q2,63,PERCENT,1234,yes,1,epj-transition;lpr3-"
                     "transition|manual,LPR\n"
                     "udredningsret.somatik.compliance,1083,2022Q3,62,PERCENT,,No,FALSE,,\n",
              &c);
    assert_int_equal(c.good, 2);
    const Healthsignals__V1__IndicatorObservation *a = c.kept[0];
    assert_int_equal(a->_volume_case, HEALTHSIGNALS__V1__INDICATOR_OBSERVATION___VOLUME_VOLUME);
    assert_int_equal(a->volume, 1234);
    assert_true(a->provisional);
    assert_true(a->suspended);
    assert_int_equal(a->n_quality_flags, 3);
    assert_string_equal(a->quality_flags[0], "epj-transition");
    assert_string_equal(a->quality_flags[1], "lpr3-transition");
    assert_string_equal(a->quality_flags[2], "manual");
    const Healthsignals__V1__IndicatorObservation *b = c.kept[1];
    assert_int_equal(b->_volume_case, HEALTHSIGNALS__V1__INDICATOR_OBSERVATION___VOLUME__NOT_SET);
    assert_false(b->provisional);
    assert_int_equal(b->n_quality_flags, 0);
    assert_string_equal(b->source, "");
    release(&c);
}

static void test_bad_optional_fields_are_named(void **state)
{
    collected c;
    const char *report =
        only_bad_report("udredningsret.somatik.compliance,1082,2023Q2,61,PERCENT,12.5,false,false,,x\n", &c);
    assert_string_equal(report, "line 3: volume: '12.5' is not a whole number");
    release(&c);
    report = only_bad_report("udredningsret.somatik.compliance,1082,2023Q2,61,PERCENT,,maybe,false,,x\n", &c);
    assert_string_equal(report, "line 3: provisional: 'maybe' is not a boolean (true/false, 1/0, yes/no)");
    release(&c);
    report =
        only_bad_report("udredningsret.somatik.compliance,1082,2023Q2,61,PERCENT,,false,false,a;;b,x\n", &c);
    assert_string_equal(report, "line 3: flags: empty flag in 'a;;b' (separate flags by ';' or '|')");
    release(&c);
    report =
        only_bad_report("udredningsret.somatik.compliance,1082,2023Q2,61,PERCENT,-4,false,false,,x\n", &c);
    assert_string_equal(report, "line 3: volume: -4 is negative");
    release(&c);
}

static void test_numbers_use_a_decimal_point_and_exponents(void **state)
{
    collected c;
    read_text(HEADER "udredningsret.somatik.compliance,1082,2023Q2,74.5,PERCENT,,,,,\n"
                     "ventetid.somatik.oplevet,DK,2023Q2,4.3e1,DAYS,,,,,\n",
              &c);
    assert_int_equal(c.good, 2);
    assert_true(c.kept[0]->value == 74.5);
    assert_true(c.kept[1]->value == 43);
    release(&c);
    const char *report = only_bad_report("ventetid.somatik.oplevet,DK,2023Q2,1e999,DAYS,,,,,\n", &c);
    assert_string_equal(report, "line 3: value: '1e999' is out of range");
    release(&c);
    report = only_bad_report("ventetid.somatik.oplevet,DK,2023Q2, 43,DAYS,,,,,\n", &c);
    assert_string_equal(report, "line 3: value: ' 43' is not a number");
    release(&c);
}

static void test_row_error_from_the_reader_passes_through_the_converter(void **state)
{
    hs_csv_header header;
    const char *names[] = {"indicator", "scope", "period", "value"};
    hs_csv_row header_row = {.line = 1, .record = 0, .count = 4, .fields = names};
    assert_int_equal(hs_csv_header_parse(&header, &header_row, NULL), HS_OK);
    hs_error reason = {.code = HS_ERR_PARSE, .message = "line longer than 1048576 bytes"};
    hs_csv_row row = {.line = 3, .record = 2, .count = 0, .fields = NULL, .error = &reason};
    Healthsignals__V1__IndicatorObservation *obs = (void *)&header; /* must be reset to NULL */
    hs_error error = {0};
    assert_int_equal(hs_indicator_from_csv(&header, &row, &obs, &error), HS_ERR_PARSE);
    assert_null(obs);
    assert_string_equal(error.message, "line longer than 1048576 bytes");
    hs_csv_header_free(&header);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_udredningsret_file_reads_all_36_rows),
        cmocka_unit_test(test_udredningsret_figures_match_tabel_8),
        cmocka_unit_test(test_ventetid_file_reads_all_42_rows),
        cmocka_unit_test(test_kraeft_file_reads_all_42_rows),
        cmocka_unit_test(test_udredning_forloebstid_file_reads_all_36_rows),
        cmocka_unit_test(test_unbalanced_quote_is_reported_at_the_line_it_opens),
        cmocka_unit_test(test_rows_up_to_the_next_quote_are_reported_and_reading_resumes_after_it),
        cmocka_unit_test(test_row_spanning_lines_that_fails_names_its_lines),
        cmocka_unit_test(test_quote_inside_unquoted_field_is_reported_and_the_next_line_read),
        cmocka_unit_test(test_text_after_a_closing_quote_is_malformed_quoting),
        cmocka_unit_test(test_wrong_column_count_names_both_counts),
        cmocka_unit_test(test_value_that_is_not_a_number_is_rejected),
        cmocka_unit_test(test_nan_value_is_not_finite),
        cmocka_unit_test(test_unknown_region_is_named),
        cmocka_unit_test(test_bad_period_says_what_is_wrong),
        cmocka_unit_test(test_percent_of_130_is_above_the_range),
        cmocka_unit_test(test_empty_file_has_no_header),
        cmocka_unit_test(test_10_mb_line_is_a_row_error_in_bounded_memory),
        cmocka_unit_test(test_line_of_exactly_1_mib_is_accepted_and_one_byte_more_is_not),
        cmocka_unit_test(test_invalid_utf8_is_named_by_column),
        cmocka_unit_test(test_danish_decimal_comma_gets_a_hint),
        cmocka_unit_test(test_good_rows_before_and_after_bad_rows_are_delivered),
        cmocka_unit_test(test_quoted_field_over_the_limit_across_lines_is_a_row_error),
        cmocka_unit_test(test_record_lines_count_line_breaks_inside_quoted_fields),
        cmocka_unit_test(test_crlf_line_ends_are_accepted),
        cmocka_unit_test(test_crlf_split_between_two_reads_is_one_line_end),
        cmocka_unit_test(test_byte_order_mark_is_skipped),
        cmocka_unit_test(test_last_record_without_a_line_feed_is_read),
        cmocka_unit_test(test_fields_are_not_trimmed),
        cmocka_unit_test(test_nul_byte_in_a_field_is_a_row_error),
        cmocka_unit_test(test_more_than_1024_fields_is_a_row_error),
        cmocka_unit_test(test_callback_returning_non_zero_stops_the_reader),
        cmocka_unit_test(test_header_columns_may_come_in_any_order),
        cmocka_unit_test(test_unknown_header_columns_are_named),
        cmocka_unit_test(test_header_without_required_columns_is_rejected),
        cmocka_unit_test(test_without_a_unit_column_every_row_lacks_its_unit),
        cmocka_unit_test(test_unknown_unit_is_named),
        cmocka_unit_test(test_booleans_volume_and_flags_are_read),
        cmocka_unit_test(test_bad_optional_fields_are_named),
        cmocka_unit_test(test_numbers_use_a_decimal_point_and_exponents),
        cmocka_unit_test(test_row_error_from_the_reader_passes_through_the_converter),
    };
    return cmocka_run_group_tests_name("csv", tests, NULL, NULL);
}
