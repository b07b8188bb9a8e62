/* hs/text.h: decimal numbers and piecewise text without printf. Both are on the hot path of every record
 * (event ids name the input offset) and every alert, and both must write exactly what snprintf would.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hs/text.h"

/* hs_u64_digits(v) against snprintf's "%" PRIu64, into a heap buffer of exactly the digits' size, so that
 * a write past them is caught by the sanitizer build. */
static void assert_digits(uint64_t v)
{
    char expected[32];
    int n = snprintf(expected, sizeof expected, "%" PRIu64, v);
    char *out = malloc((size_t)n);
    assert_non_null(out);
    assert_int_equal(hs_u64_digits(out, v), (size_t)n);
    assert_memory_equal(out, expected, (size_t)n);
    free(out);
}

static void test_digits_edges(void **state)
{
    (void)state;
    assert_digits(0);
    assert_digits(1);
    assert_digits(9);
    assert_digits(UINT64_MAX);
    assert_digits(UINT64_MAX - 1);
    assert_digits((uint64_t)INT64_MAX + 1);
    /* Every power of ten and its neighbours: where the digit count changes. */
    for (uint64_t p = 10; p <= UINT64_MAX / 10; p *= 10) {
        assert_digits(p - 1);
        assert_digits(p);
        assert_digits(p + 1);
    }
    assert_digits(10000000000000000000u);
    char out[HS_U64_DIGITS_MAX];
    assert_int_equal(hs_u64_digits(out, UINT64_MAX), HS_U64_DIGITS_MAX);
}

static void test_digits_random(void **state)
{
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15u; /* xorshift64: reproducible, spread over every digit count */
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        assert_digits(x >> (x % 64));
    }
}

static void test_text_pieces(void **state)
{
    (void)state;
    char buf[64];
    hs_text t = hs_text_in(buf, sizeof buf);
    assert_string_equal(buf, "");
    hs_text_add(&t, "Nordjylland");
    hs_text_cat(&t, ": ", "41", " days", NULL);
    hs_text_add(&t, "");
    assert_string_equal(buf, "Nordjylland: 41 days");
    assert_int_equal(t.len, strlen(buf));
}

/* Cut off where the buffer ends, exactly as snprintf would, for every buffer size; and always terminated. */
static void test_text_truncates_like_snprintf(void **state)
{
    (void)state;
    const char *pieces[] = {"udredningsret", " ", "2023Q2", ": ", "79", "%", " against the target ", "81.3"};
    char whole[128];
    size_t whole_len = 0;
    for (size_t i = 0; i < sizeof pieces / sizeof *pieces; i++)
        whole_len += (size_t)snprintf(whole + whole_len, sizeof whole - whole_len, "%s", pieces[i]);
    for (size_t size = 1; size <= strlen(whole) + 2; size++) {
        char *buf = malloc(size);
        assert_non_null(buf);
        hs_text t = hs_text_in(buf, size);
        for (size_t i = 0; i < sizeof pieces / sizeof *pieces; i++)
            hs_text_add(&t, pieces[i]);
        char expected[128];
        snprintf(expected, size, "%s", whole);
        assert_string_equal(buf, expected);
        assert_int_equal(t.len, strlen(expected));
        free(buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digits_edges),
        cmocka_unit_test(test_digits_random),
        cmocka_unit_test(test_text_pieces),
        cmocka_unit_test(test_text_truncates_like_snprintf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
