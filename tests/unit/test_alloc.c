/* The allocator a build links (hs/alloc.h): with HS_JEMALLOC, malloc really is jemalloc's and runs with the
 * settings compiled into common/io/src/alloc.c; otherwise the name says which malloc it is.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <cmocka.h>

#include "hs/alloc.h"

#ifdef HS_JEMALLOC
#include <jemalloc/jemalloc.h>

static uint64_t thread_allocated(void)
{
    uint64_t bytes = 0;
    size_t len = sizeof bytes;
    assert_int_equal(mallctl("thread.allocated", &bytes, &len, NULL, 0), 0);
    return bytes;
}

static void test_malloc_is_jemalloc(void **state)
{
    assert_true(strncmp(hs_alloc_name(), "jemalloc 5.", 11) == 0);
    uint64_t before = thread_allocated();
    void *p = malloc(1 << 20);
    assert_non_null(p);
    memset(p, 1, 1 << 20);
    assert_true(thread_allocated() - before >= 1 << 20); /* counted by jemalloc, so allocated by it */
    free(p);
}

static void test_settings_are_compiled_in(void **state)
{
    if (getenv("MALLOC_CONF"))
        skip(); /* the environment overrides them, as documented */
    unsigned narenas = 0;
    ssize_t dirty = -2, muzzy = -2;
    size_t len = sizeof narenas;
    assert_int_equal(mallctl("opt.narenas", &narenas, &len, NULL, 0), 0);
    len = sizeof dirty;
    assert_int_equal(mallctl("opt.dirty_decay_ms", &dirty, &len, NULL, 0), 0);
    len = sizeof muzzy;
    assert_int_equal(mallctl("opt.muzzy_decay_ms", &muzzy, &len, NULL, 0), 0);
    assert_int_equal(narenas, 2);
    assert_int_equal(dirty, 1000);
    assert_int_equal(muzzy, 0);
}
#else

static void test_name_says_which_malloc(void **state)
{
    const char *name = hs_alloc_name();
#if defined(HS_ALLOC_ASAN)
    assert_string_equal(name, "AddressSanitizer malloc");
#elif defined(HS_ALLOC_TSAN)
    assert_string_equal(name, "ThreadSanitizer malloc");
#elif defined(__GLIBC__)
    assert_true(strncmp(name, "glibc ", 6) == 0);
#else
    assert_string_equal(name, "system malloc");
#endif
    hs_alloc_tune(); /* harmless to call again */
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
#ifdef HS_JEMALLOC
        cmocka_unit_test(test_malloc_is_jemalloc),
        cmocka_unit_test(test_settings_are_compiled_in),
#else
        cmocka_unit_test(test_name_says_which_malloc),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
