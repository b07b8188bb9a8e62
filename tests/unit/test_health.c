/* hs_health decides what /healthz and /readyz say, from the reason the loop publishes and the age of its last
 * beat. A fake clock stands in for time, so the thresholds are checked exactly and nothing sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hs/health.h"

static uint64_t fake_now_ms;

static uint64_t fake_clock(void)
{
    return fake_now_ms;
}

/* Ready after 5 s without a beat is "blocked", alive until 120 s, as the runtime configures it. */
static hs_health *new_health(void)
{
    fake_now_ms = 1000000;
    hs_health *h = hs_health_new(5000, 120000, fake_clock);
    assert_non_null(h);
    return h;
}

static void test_a_new_record_is_alive_but_starting(void **state)
{
    hs_health *h = new_health();
    hs_health_status st;
    hs_health_read(h, &st);
    assert_true(st.alive);
    assert_false(st.ready);
    assert_string_equal(st.reason, "starting");
    hs_health_free(h);
}

static void test_the_published_reason_decides_while_the_loop_turns(void **state)
{
    hs_health *h = new_health();
    hs_health_status st;
    hs_health_set_reason(h, "rebuilding state");
    hs_health_read(h, &st);
    assert_false(st.ready);
    assert_string_equal(st.reason, "rebuilding state");
    hs_health_set_reason(h, NULL);
    hs_health_read(h, &st);
    assert_true(st.ready);
    assert_true(st.alive);
    assert_string_equal(st.reason, "ready");
    hs_health_free(h);
}

static void test_a_loop_blocked_for_5_s_is_not_ready_but_alive(void **state)
{
    hs_health *h = new_health();
    hs_health_set_reason(h, NULL);
    hs_health_status st;
    fake_now_ms += 4999;
    hs_health_read(h, &st);
    assert_true(st.ready);
    fake_now_ms += 1;
    hs_health_read(h, &st);
    assert_false(st.ready);
    assert_true(st.alive);
    assert_string_equal(st.reason, "no progress (event loop blocked for 5 s)");
    /* A beat (the loop turned) makes it ready again. */
    hs_health_beat(h);
    hs_health_read(h, &st);
    assert_true(st.ready);
    assert_true(st.blocked_seconds == 0);
    hs_health_free(h);
}

static void test_a_blocked_loop_keeps_the_reason_it_last_published(void **state)
{
    hs_health *h = new_health();
    hs_health_set_reason(h, "starting: connecting to Kafka");
    fake_now_ms += 12000;
    hs_health_status st;
    hs_health_read(h, &st);
    assert_false(st.ready);
    assert_string_equal(st.reason, "starting: connecting to Kafka (event loop blocked for 12 s)");
    hs_health_free(h);
}

static void test_a_loop_stalled_for_120_s_is_not_alive(void **state)
{
    hs_health *h = new_health();
    hs_health_set_reason(h, NULL);
    hs_health_status st;
    fake_now_ms += 119999;
    hs_health_read(h, &st);
    assert_true(st.alive);
    fake_now_ms += 1;
    hs_health_read(h, &st);
    assert_false(st.alive);
    assert_false(st.ready);
    assert_string_equal(st.reason, "event loop stalled for 120 s");
    hs_health_free(h);
}

static void test_a_long_reason_is_truncated_not_overflowed(void **state)
{
    hs_health *h = new_health();
    char long_reason[1000];
    memset(long_reason, 'x', sizeof long_reason - 1);
    long_reason[sizeof long_reason - 1] = '\0';
    hs_health_set_reason(h, long_reason);
    hs_health_status st;
    hs_health_read(h, &st);
    assert_false(st.ready);
    assert_int_equal(strlen(st.reason), HS_HEALTH_REASON_MAX);
    hs_health_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_new_record_is_alive_but_starting),
        cmocka_unit_test(test_the_published_reason_decides_while_the_loop_turns),
        cmocka_unit_test(test_a_loop_blocked_for_5_s_is_not_ready_but_alive),
        cmocka_unit_test(test_a_blocked_loop_keeps_the_reason_it_last_published),
        cmocka_unit_test(test_a_loop_stalled_for_120_s_is_not_alive),
        cmocka_unit_test(test_a_long_reason_is_truncated_not_overflowed),
    };
    return cmocka_run_group_tests_name("health", tests, NULL, NULL);
}
