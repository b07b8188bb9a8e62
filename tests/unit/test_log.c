/* The JSON-lines logger (common/io/src/log.c): a line keeps every field, and a field whose text is not UTF-8
 * (a record key, an error quoting the bytes it refused) is written with those bytes escaped as \xNN instead
 * of taking the whole line's fields with it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "hs/log.h"

static FILE *capture;
static int saved_stderr;

/* Sends stderr to a temporary file until captured_line(). */
static void capture_start(void)
{
    capture = tmpfile();
    assert_non_null(capture);
    fflush(stderr);
    saved_stderr = dup(fileno(stderr));
    dup2(fileno(capture), fileno(stderr));
}

/* Restores stderr and returns the one line written meanwhile, parsed (NULL if it is not JSON). */
static json_t *captured_line(void)
{
    fflush(stderr);
    dup2(saved_stderr, fileno(stderr));
    close(saved_stderr);
    rewind(capture);
    json_t *line = json_loadf(capture, 0, NULL);
    fclose(capture);
    return line;
}

static void test_fields_that_are_not_utf8_are_escaped_not_lost(void **state)
{
    capture_start();
    hs_log(HS_LOG_WARN, "record sent to the dead-letter queue", "{s:s, s:i, s:I, s:s, s:s}", "topic",
           "hs.indicators.v1", "partition", 3, "offset", (json_int_t)17, "code", "validation", "error",
           "scope.code: unknown region '\xff\xfe'");
    json_t *line = captured_line();
    assert_non_null(line);
    assert_null(json_object_get(line, "log_format_error"));
    assert_string_equal(json_string_value(json_object_get(line, "topic")), "hs.indicators.v1");
    assert_int_equal(json_integer_value(json_object_get(line, "partition")), 3);
    assert_int_equal(json_integer_value(json_object_get(line, "offset")), 17);
    assert_string_equal(json_string_value(json_object_get(line, "error")),
                        "scope.code: unknown region '\\xff\\xfe'");
    json_decref(line);
}

static void test_valid_fields_and_format_errors(void **state)
{
    capture_start();
    hs_log(HS_LOG_ERROR, "m", "{s:s, s:f, s:b, s:s?}", "region", "Sj\xc3\xa6lland", "share", 0.5, "ok", 1,
           "none", NULL);
    json_t *line = captured_line();
    assert_string_equal(json_string_value(json_object_get(line, "region")), "Sj\xc3\xa6lland");
    assert_true(json_real_value(json_object_get(line, "share")) == 0.5);
    assert_true(json_is_true(json_object_get(line, "ok")));
    assert_true(json_is_null(json_object_get(line, "none")));
    json_decref(line);
    /* A format the logger cannot build is reported in the line, which is still written. */
    capture_start();
    hs_log(HS_LOG_ERROR, "m", "[s]", "\xff");
    line = captured_line();
    assert_non_null(json_object_get(line, "log_format_error"));
    assert_string_equal(json_string_value(json_object_get(line, "msg")), "m");
    json_decref(line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_that_are_not_utf8_are_escaped_not_lost),
        cmocka_unit_test(test_valid_fields_and_format_errors),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
