/* hs_metrics renders what Prometheus scrapes from every service, so these tests compare the exact text of the
 * exposition format 0.0.4: HELP/TYPE once per name, series sorted, label values and help escaped, floats as
 * Go's ParseFloat reads them, histogram buckets cumulative up to +Inf.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <time.h>
#include <unistd.h>

#include "hs/metrics.h"
#include "hs/process.h"

/* Renders `m` and compares it with `expected`. */
static void assert_renders(hs_metrics *m, const char *expected)
{
    char *text = hs_metrics_render(m);
    assert_non_null(text);
    assert_string_equal(text, expected);
    free(text);
}

static void test_counter_without_labels(void **state)
{
    hs_metrics *m = hs_metrics_new();
    hs_counter *c = hs_metrics_counter(m, "hs_transactions_committed_total", "Transactions committed.", NULL);
    hs_counter_add(c, 3);
    hs_counter_add(c, 2);
    assert_int_equal(hs_counter_value(c), 5);
    assert_renders(m, "# HELP hs_transactions_committed_total Transactions committed.\n"
                      "# TYPE hs_transactions_committed_total counter\n"
                      "hs_transactions_committed_total 5\n");
    hs_metrics_free(m);
}

static void test_counter_with_labels_sorts_them_by_name(void **state)
{
    hs_metrics *m = hs_metrics_new();
    hs_counter *c = hs_metrics_counter(m, "hs_records_in_total", "Records consumed.",
                                       "topic=\"hs.indicators.v1\",partition=\"3\"");
    hs_counter_add(c, 7);
    assert_renders(m, "# HELP hs_records_in_total Records consumed.\n"
                      "# TYPE hs_records_in_total counter\n"
                      "hs_records_in_total{partition=\"3\",topic=\"hs.indicators.v1\"} 7\n");
    hs_metrics_free(m);
}

static void test_counter_beyond_2_pow_53_renders_exactly(void **state)
{
    hs_metrics *m = hs_metrics_new();
    hs_counter_add(hs_metrics_counter(m, "big_total", "Big.", ""), UINT64_MAX);
    assert_renders(m, "# HELP big_total Big.\n# TYPE big_total counter\nbig_total 18446744073709551615\n");
    hs_metrics_free(m);
}

static void test_label_values_from_runtime_data_are_escaped(void **state)
{
    hs_metrics *m = hs_metrics_new();
    hs_counter *c = hs_metrics_counter_l(m, "hs_dlq_total", "Records sent to the DLQ.", "reason",
                                         "say \"hi\"\\ back\nnow", "topic", NULL, NULL);
    hs_counter_add(c, 1);
    assert_renders(m, "# HELP hs_dlq_total Records sent to the DLQ.\n"
                      "# TYPE hs_dlq_total counter\n"
                      "hs_dlq_total{reason=\"say \\\"hi\\\"\\\\ back\\nnow\",topic=\"\"} 1\n");
    /* The same label set written in exposition syntax names the same series. */
    assert_ptr_equal(
        hs_metrics_counter(m, "hs_dlq_total", NULL, "topic=\"\",reason=\"say \\\"hi\\\"\\\\ back\\nnow\""),
        c);
    hs_metrics_free(m);
}

static void test_help_text_is_escaped(void **state)
{
    hs_metrics *m = hs_metrics_new();
    hs_gauge_set(hs_metrics_gauge(m, "g", "A \"quoted\" back\\slash\nand a second line.", NULL), 1);
    assert_renders(m, "# HELP g A \"quoted\" back\\\\slash\\nand a second line.\n# TYPE g gauge\ng 1\n");
    hs_metrics_free(m);
}

/* One gauge per value, rendered in name order: the text each double becomes. */
static void test_gauge_values_render_as_go_parses_them(void **state)
{
    static const struct {
        const char *name;
        double value;
        const char *text;
    } cases[] = {
        {"a_negative", -2.5, "-2.5"},
        {"b_tenth", 0.1, "0.1"},
        {"c_third", 1.0 / 3.0, "0.3333333333333333"},
        {"d_1e15", 1e15, "1000000000000000"},
        {"e_2_pow_53", 9007199254740992.0, "9007199254740992"},
        {"f_above_2_pow_53", 9007199254740994.0, "9007199254740994"}, /* %.16g, still exact */
        {"fz_1e20", 1e20, "1e+20"},
        {"g_huge", 1e300, "1e+300"},
        {"h_tiny", 1.5e-7, "1.5e-07"},
        {"i_nan", NAN, "NaN"},
        {"j_inf", INFINITY, "+Inf"},
        {"k_minus_inf", -INFINITY, "-Inf"},
        {"l_minus_zero", -0.0, "0"},
        {"m_rss", 123456789.0, "123456789"},
        {"n_sum", 0.1 + 0.2, "0.30000000000000004"},
    };
    hs_metrics *m = hs_metrics_new();
    char expected[4096] = "";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hs_gauge_set(hs_metrics_gauge(m, cases[i].name, "h", NULL), cases[i].value);
        size_t len = strlen(expected);
        snprintf(expected + len, sizeof expected - len, "# HELP %s h\n# TYPE %s gauge\n%s %s\n",
                 cases[i].name, cases[i].name, cases[i].name, cases[i].text);
    }
    assert_renders(m, expected);
    hs_metrics_free(m);
}

static void test_gauge_set_and_add(void **state)
{
    hs_metrics *m = hs_metrics_new();
    hs_gauge *g = hs_metrics_gauge_l(m, "hs_consumer_lag", "Records behind.", "partition", "0", NULL);
    hs_gauge_set(g, 10);
    hs_gauge_add(g, -12.5);
    assert_true(hs_gauge_value(g) == -2.5);
    hs_metrics_free(m);
}

/* Bounds 0.5, 1, 2.5; observations 0.25 0.5 | 1 | 2 | 8: a bound includes its own value (le). */
static void test_histogram_buckets_are_cumulative_with_inf_sum_and_count(void **state)
{
    static const double bounds[] = {0.5, 1, 2.5};
    hs_metrics *m = hs_metrics_new();
    hs_histogram *h =
        hs_metrics_histogram_l(m, "hs_commit_seconds", "Commit latency.", bounds, 3, "stage", "commit", NULL);
    hs_histogram *plain = hs_metrics_histogram(m, "hs_rebuild_seconds", "Rebuild time.", NULL, bounds, 3);
    const double observations[] = {0.25, 0.5, 1, 2, 8};
    for (size_t i = 0; i < 5; i++)
        hs_histogram_observe(h, observations[i]);
    hs_histogram_observe(plain, 3);
    assert_int_equal(hs_histogram_count(h), 5);
    assert_true(hs_histogram_sum(h) == 11.75);
    assert_renders(m, "# HELP hs_commit_seconds Commit latency.\n"
                      "# TYPE hs_commit_seconds histogram\n"
                      "hs_commit_seconds_bucket{stage=\"commit\",le=\"0.5\"} 2\n"
                      "hs_commit_seconds_bucket{stage=\"commit\",le=\"1\"} 3\n"
                      "hs_commit_seconds_bucket{stage=\"commit\",le=\"2.5\"} 4\n"
                      "hs_commit_seconds_bucket{stage=\"commit\",le=\"+Inf\"} 5\n"
                      "hs_commit_seconds_sum{stage=\"commit\"} 11.75\n"
                      "hs_commit_seconds_count{stage=\"commit\"} 5\n"
                      "# HELP hs_rebuild_seconds Rebuild time.\n"
                      "# TYPE hs_rebuild_seconds histogram\n"
                      "hs_rebuild_seconds_bucket{le=\"0.5\"} 0\n"
                      "hs_rebuild_seconds_bucket{le=\"1\"} 0\n"
                      "hs_rebuild_seconds_bucket{le=\"2.5\"} 0\n"
                      "hs_rebuild_seconds_bucket{le=\"+Inf\"} 1\n"
                      "hs_rebuild_seconds_sum 3\n"
                      "hs_rebuild_seconds_count 1\n");
    hs_metrics_free(m);
}

static void test_histogram_ignores_a_trailing_inf_bound(void **state)
{
    static const double bounds[] = {1, INFINITY};
    hs_metrics *m = hs_metrics_new();
    hs_histogram *h = hs_metrics_histogram(m, "x", "X.", NULL, bounds, 2);
    hs_histogram_observe(h, 5);
    assert_ptr_equal(hs_metrics_histogram(m, "x", NULL, NULL, bounds, 1), h);
    assert_renders(m, "# HELP x X.\n# TYPE x histogram\n"
                      "x_bucket{le=\"1\"} 0\nx_bucket{le=\"+Inf\"} 1\nx_sum 5\nx_count 1\n");
    hs_metrics_free(m);
}

static void test_same_name_and_labels_return_the_same_pointer(void **state)
{
    hs_metrics *m = hs_metrics_new();
    hs_counter *a = hs_metrics_counter_l(m, "hs_records_out_total", "Records produced.", "topic", "t1",
                                         "partition", "2", NULL);
    assert_non_null(a);
    assert_ptr_equal(
        hs_metrics_counter_l(m, "hs_records_out_total", NULL, "partition", "2", "topic", "t1", NULL), a);
    assert_ptr_equal(hs_metrics_counter(m, "hs_records_out_total", NULL, "partition=\"2\",topic=\"t1\""), a);
    assert_ptr_not_equal(hs_metrics_counter_l(m, "hs_records_out_total", NULL, "topic", "t1", NULL), a);
    assert_ptr_not_equal(
        hs_metrics_counter_l(m, "hs_records_out_total", NULL, "topic", "t2", "partition", "2", NULL), a);
    hs_gauge *g = hs_metrics_gauge(m, "hs_keys", "Keys in state.", NULL);
    assert_ptr_equal(hs_metrics_gauge(m, "hs_keys", "Keys in state.", ""), g);
    hs_metrics_free(m);
}

static void test_series_of_one_name_render_together_sorted_by_labels(void **state)
{
    hs_metrics *m = hs_metrics_new();
    hs_counter_add(
        hs_metrics_counter_l(m, "hs_records_in_total", "Records consumed.", "topic", "hs.rules.v1", NULL), 1);
    hs_counter_add(hs_metrics_counter(m, "hs_other_total", "Other.", NULL), 9);
    hs_counter_add(hs_metrics_counter_l(m, "hs_records_in_total", NULL, "topic", "hs.budget.v1", NULL), 2);
    hs_counter_add(hs_metrics_counter(m, "hs_records_in_total", NULL, NULL), 3);
    const char *expected = "# HELP hs_other_total Other.\n"
                           "# TYPE hs_other_total counter\n"
                           "hs_other_total 9\n"
                           "# HELP hs_records_in_total Records consumed.\n"
                           "# TYPE hs_records_in_total counter\n"
                           "hs_records_in_total 3\n"
                           "hs_records_in_total{topic=\"hs.budget.v1\"} 2\n"
                           "hs_records_in_total{topic=\"hs.rules.v1\"} 1\n";
    assert_renders(m, expected);
    assert_renders(m, expected); /* and the same again */
    hs_metrics_free(m);
}

static void test_a_removed_series_is_no_longer_rendered(void **state)
{
    hs_metrics *m = hs_metrics_new();
    hs_gauge_set(hs_metrics_gauge_l(m, "hs_consumer_lag", "Lag.", "topic", "t", "partition", "1", NULL), 5);
    hs_gauge_set(hs_metrics_gauge_l(m, "hs_consumer_lag", NULL, "topic", "t", "partition", "2", NULL), 7);
    hs_counter_add(hs_metrics_counter(m, "hs_other_total", "Other.", NULL), 1);

    /* Labels in any order find the series; a second removal or an unknown series finds nothing. */
    assert_true(hs_metrics_remove_l(m, "hs_consumer_lag", "partition", "1", "topic", "t", NULL));
    assert_false(hs_metrics_remove_l(m, "hs_consumer_lag", "topic", "t", "partition", "1", NULL));
    assert_false(hs_metrics_remove_l(m, "hs_consumer_lag", "topic", "t", NULL));
    assert_false(hs_metrics_remove_l(m, "hs_no_such_metric", NULL));
    assert_renders(m, "# HELP hs_consumer_lag Lag.\n"
                      "# TYPE hs_consumer_lag gauge\n"
                      "hs_consumer_lag{partition=\"2\",topic=\"t\"} 7\n"
                      "# HELP hs_other_total Other.\n"
                      "# TYPE hs_other_total counter\n"
                      "hs_other_total 1\n");

    /* The last series gone, the family is not rendered; asked for again, the series starts from 0. */
    assert_true(hs_metrics_remove_l(m, "hs_consumer_lag", "topic", "t", "partition", "2", NULL));
    assert_renders(m, "# HELP hs_other_total Other.\n"
                      "# TYPE hs_other_total counter\n"
                      "hs_other_total 1\n");
    hs_gauge *again = hs_metrics_gauge_l(m, "hs_consumer_lag", NULL, "topic", "t", "partition", "1", NULL);
    assert_non_null(again);
    assert_true(hs_gauge_value(again) == 0);
    assert_true(hs_metrics_remove_l(m, "hs_other_total", NULL));
    assert_renders(m, "# HELP hs_consumer_lag Lag.\n"
                      "# TYPE hs_consumer_lag gauge\n"
                      "hs_consumer_lag{partition=\"1\",topic=\"t\"} 0\n");
    hs_metrics_free(m);
}

static void test_many_series_stay_distinct(void **state)
{
    hs_metrics *m = hs_metrics_new();
    char part[16];
    for (int i = 0; i < 5000; i++) {
        snprintf(part, sizeof part, "%d", i);
        hs_counter_add(hs_metrics_counter_l(m, "hs_lag", "Lag.", "partition", part, NULL), (uint64_t)i);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(part, sizeof part, "%d", i);
        assert_int_equal(hs_counter_value(hs_metrics_counter_l(m, "hs_lag", NULL, "partition", part, NULL)),
                         i);
    }
    char *text = hs_metrics_render(m);
    assert_non_null(text);
    assert_non_null(strstr(
        text, "\nhs_lag{partition=\"0\"} 0\nhs_lag{partition=\"1\"} 1\nhs_lag{partition=\"10\"} 10\n"));
    free(text);
    hs_metrics_free(m);
}

typedef struct refresh {
    int calls;
} refresh;

static void refresh_gauges(void *ctx, hs_metrics *m)
{
    refresh *r = ctx;
    r->calls++;
    hs_gauge_set(hs_metrics_gauge(m, "hs_renders", "Renders so far.", NULL), r->calls);
}

static void test_render_callbacks_run_before_every_render(void **state)
{
    hs_metrics *m = hs_metrics_new();
    refresh r = {0};
    assert_int_equal(hs_metrics_on_render(m, refresh_gauges, &r), HS_OK);
    assert_renders(m, "# HELP hs_renders Renders so far.\n# TYPE hs_renders gauge\nhs_renders 1\n");
    assert_renders(m, "# HELP hs_renders Renders so far.\n# TYPE hs_renders gauge\nhs_renders 2\n");
    assert_int_equal(r.calls, 2);
    hs_metrics_free(m);
}

static void test_an_empty_registry_renders_nothing(void **state)
{
    hs_metrics *m = hs_metrics_new();
    assert_renders(m, "");
    hs_metrics_free(m);
}

static void test_updates_through_null_do_nothing(void **state)
{
    hs_counter_add(NULL, 1);
    hs_gauge_set(NULL, 1);
    hs_gauge_add(NULL, 1);
    hs_histogram_observe(NULL, 1);
    assert_int_equal(hs_counter_value(NULL), 0);
    hs_metrics_free(NULL);
}

static void test_process_rss_is_known_and_below_its_peak(void **state)
{
    uint64_t rss = hs_process_rss_bytes();
    uint64_t peak = hs_process_peak_rss_bytes();
    assert_true(rss > 0);
    assert_true(rss <= peak);
}

/* --- Threads: the HTTP thread renders while the loop thread updates ---------------------------------- */

typedef struct renderer {
    hs_metrics *m;
    atomic_bool stop;
    int renders;
    int inconsistent; /* renders whose histogram _count differed from its +Inf bucket */
} renderer;

static void *render_repeatedly(void *arg)
{
    renderer *r = arg;
    while (!atomic_load(&r->stop) || r->renders == 0) {
        char *text = hs_metrics_render(r->m);
        assert_non_null(text);
        const char *inf = strstr(text, "h_seconds_bucket{le=\"+Inf\"} ");
        const char *count = strstr(text, "h_seconds_count ");
        if (inf && count &&
            strtoull(inf + strlen("h_seconds_bucket{le=\"+Inf\"} "), NULL, 10) !=
                strtoull(count + strlen("h_seconds_count "), NULL, 10))
            r->inconsistent++;
        r->renders++;
        free(text);
    }
    return NULL;
}

/* Series created, updated and removed on one thread while another renders: no torn structure (ASan and
 * TSan builds run this too), a histogram's _count always equals its +Inf bucket, and nothing is lost. */
static void test_rendering_on_another_thread_while_the_owner_updates(void **state)
{
    static const double bounds[] = {0.001, 0.01, 0.1};
    hs_metrics *m = hs_metrics_new();
    hs_counter *c = hs_metrics_counter(m, "c_total", "Counted.", NULL);
    hs_histogram *h = hs_metrics_histogram(m, "h_seconds", "Observed.", NULL, bounds, 3);
    renderer r = {.m = m};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, render_repeatedly, &r), 0);
    char partition[16];
    for (int i = 0; i < 200000; i++) {
        hs_counter_add(c, 1);
        hs_histogram_observe(h, (double)(i % 7) / 100.0);
        if (i % 100 == 0) { /* a partition's lag appears, the previous one's goes */
            snprintf(partition, sizeof partition, "%d", i);
            hs_gauge_set(hs_metrics_gauge_l(m, "lag", "Lag.", "partition", partition, NULL), i);
            snprintf(partition, sizeof partition, "%d", i - 100);
            hs_metrics_remove_l(m, "lag", "partition", partition, NULL);
        }
    }
    atomic_store(&r.stop, true);
    pthread_join(thread, NULL);
    assert_true(r.renders > 0);
    assert_int_equal(r.inconsistent, 0);
    char *text = hs_metrics_render(m);
    assert_non_null(strstr(text, "c_total 200000\n"));
    assert_non_null(strstr(text, "h_seconds_count 200000\n"));
    assert_non_null(strstr(text, "lag{partition=\"199900\"} 199900\n"));
    assert_null(strstr(text, "lag{partition=\"199800\"}"));
    free(text);
    hs_metrics_free(m);
}

/* Labels in an array (hs_metrics_gauge_v, hs_metrics_remove_v) find the same series as the _l forms. */
static void test_array_labels_find_the_series_of_the_list_forms(void **state)
{
    hs_metrics *m = hs_metrics_new();
    const char *labels[] = {"region", "1081", "indicator", "a\"b", NULL};
    hs_gauge *g = hs_metrics_gauge_v(m, "hs_x", "X.", labels);
    assert_ptr_equal(g, hs_metrics_gauge_l(m, "hs_x", NULL, "indicator", "a\"b", "region", "1081", NULL));
    hs_gauge_set(g, 21);
    assert_renders(m, "# HELP hs_x X.\n# TYPE hs_x gauge\nhs_x{indicator=\"a\\\"b\",region=\"1081\"} 21\n");
    assert_true(hs_metrics_remove_v(m, "hs_x", labels));
    assert_false(hs_metrics_remove_v(m, "hs_x", labels));
    assert_renders(m, "");
    hs_metrics_free(m);
}

typedef struct batch_renderer {
    hs_metrics *m;
    atomic_bool stop;
    long renders, torn;
} batch_renderer;

/* Renders until stopped, counting the renders that do not show exactly one series of "latest". */
static void *render_batches(void *arg)
{
    batch_renderer *r = arg;
    while (!atomic_load(&r->stop) || r->renders == 0) {
        char *text = hs_metrics_render(r->m);
        int series = 0;
        for (const char *p = text; (p = strstr(p, "\nlatest{")); p++)
            series++;
        r->torn += series != 1;
        r->renders++;
        free(text);
    }
    return NULL;
}

/* A series replaced by another under hs_metrics_lock — removed first, then its successor added, the order
 * that would show neither in between — is seen by every render exactly once. */
static void test_a_batch_under_the_lock_is_rendered_whole(void **state)
{
    hs_metrics *m = hs_metrics_new();
    hs_gauge_set(hs_metrics_gauge_l(m, "latest", "The latest.", "period", "0", NULL), 0);
    hs_gauge_set(hs_metrics_gauge(m, "before", "Rendered first.", NULL), 1);
    batch_renderer r = {.m = m};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, render_batches, &r), 0);
    char period[16];
    for (int i = 1; i <= 2000; i++) {
        hs_metrics_lock(m);
        snprintf(period, sizeof period, "%d", i - 1);
        assert_true(hs_metrics_remove_l(m, "latest", "period", period, NULL));
        nanosleep(&(struct timespec){.tv_nsec = 50000}, NULL); /* a gap a render would fall into */
        snprintf(period, sizeof period, "%d", i);
        hs_gauge_set(hs_metrics_gauge_l(m, "latest", NULL, "period", period, NULL), i);
        hs_metrics_unlock(m);
    }
    atomic_store(&r.stop, true);
    pthread_join(thread, NULL);
    assert_true(r.renders > 0);
    assert_int_equal(r.torn, 0);
    hs_metrics_free(m);
}

static void test_a_mirrored_counter_renders_as_a_counter_with_its_fraction(void **state)
{
    hs_metrics *m = hs_metrics_new();
    hs_gauge_set(hs_metrics_counter_mirror(m, "process_cpu_seconds_total", "CPU.", NULL), 1.25);
    assert_renders(m, "# HELP process_cpu_seconds_total CPU.\n"
                      "# TYPE process_cpu_seconds_total counter\n"
                      "process_cpu_seconds_total 1.25\n");
    hs_metrics_free(m);
}

/* A process name may hold spaces and ')' (prctl sets it freely): the fields are counted from the last ')'.
 * utime 150 + stime 50 ticks at 100 Hz = 2 s; starttime 12345 ticks after a boot at 1700000000. */
static void test_process_stat_is_parsed_past_a_name_with_parentheses(void **state)
{
    const char *line = "4242 (count) (x y)) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 50 0 0 20 0 9 0 12345 "
                       "1000000 500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
    double cpu = -1, start = -1;
    assert_true(hs_process_stat_parse(line, 100, 1700000000, &cpu, &start));
    assert_true(cpu == 2.0);
    assert_true(start == 1700000123.45);
    assert_false(hs_process_stat_parse("4242 (count) S 1 2 3\n", 100, 0, &cpu, &start));
    assert_false(hs_process_stat_parse("no parenthesis at all", 100, 0, &cpu, &start));
}

/* The value of the series `name` (without labels) in a rendered page; fails the test when absent. */
static double rendered_value(const char *text, const char *name)
{
    char prefix[128];
    snprintf(prefix, sizeof prefix, "\n%s ", name);
    const char *at = strstr(text, prefix);
    assert_non_null(at);
    return strtod(at + strlen(prefix), NULL);
}

static void assert_type(const char *text, const char *name, const char *type)
{
    char line[160];
    snprintf(line, sizeof line, "# TYPE %s %s\n", name, type);
    assert_non_null(strstr(text, line));
}

static void test_process_metrics_have_the_standard_names_types_and_sane_values(void **state)
{
    time_t before = time(NULL);
    hs_metrics *m = hs_metrics_new();
    hs_process_metrics_refresh(m);
    char *text = hs_metrics_render(m);
    assert_non_null(text);
    assert_type(text, "process_cpu_seconds_total", "counter");
    assert_type(text, "process_resident_memory_bytes", "gauge");
    assert_type(text, "process_virtual_memory_bytes", "gauge");
    assert_type(text, "process_start_time_seconds", "gauge");
    assert_type(text, "process_open_fds", "gauge");
    assert_type(text, "hs_build_info", "gauge");
    assert_true(rendered_value(text, "process_cpu_seconds_total") >= 0);
    double rss = rendered_value(text, "process_resident_memory_bytes");
    assert_true(rss > 0);
    assert_true(rss <= rendered_value(text, "process_virtual_memory_bytes"));
    /* This test process started before the test began, and not a day earlier (the clock tick rounds down). */
    double start = rendered_value(text, "process_start_time_seconds");
    assert_true(start <= (double)before + 1);
    assert_true(start > (double)before - 86400);
    /* stdin, stdout and stderr at least. */
    assert_true(rendered_value(text, "process_open_fds") >= 3);
    free(text);
    hs_metrics_free(m);
}

static void test_process_cpu_seconds_grow_with_work(void **state)
{
    hs_process_stats before, after;
    assert_true(hs_process_stats_read(&before));
    /* Burn CPU until the kernel's count moves: no wall-clock bound, only the counter's own progress. */
    volatile double x = 0;
    do {
        for (int i = 0; i < 1000000; i++)
            x += i * 0.5;
        assert_true(hs_process_stats_read(&after));
    } while (after.cpu_seconds <= before.cpu_seconds);
    assert_true(x > 0); /* read, so that clang sees the busy work used */
    assert_true(after.cpu_seconds > before.cpu_seconds);
    assert_true(after.start_time_seconds == before.start_time_seconds);
}

static void test_process_open_fds_counts_a_newly_opened_file(void **state)
{
    hs_process_stats before, during, after;
    assert_true(hs_process_stats_read(&before));
    int fd = open("/dev/null", O_RDONLY);
    assert_true(fd >= 0);
    assert_true(hs_process_stats_read(&during));
    close(fd);
    assert_true(hs_process_stats_read(&after));
    assert_true(during.open_fds == before.open_fds + 1);
    assert_true(after.open_fds == before.open_fds);
}

static void test_build_info_names_the_version_and_the_running_librdkafka(void **state)
{
    hs_metrics *m = hs_metrics_new();
    hs_process_metrics_refresh(m);
    char *text = hs_metrics_render(m);
    char line[256];
    snprintf(line, sizeof line, "\nhs_build_info{librdkafka=\"%s\",version=\"%s\"} 1\n",
             rd_kafka_version_str(), HS_VERSION);
    assert_non_null(strstr(text, line));
    assert_string_not_equal(HS_VERSION, "unknown");
    /* A second refresh updates the same series instead of adding lines. */
    hs_process_metrics_refresh(m);
    char *again = hs_metrics_render(m);
    const char *first = strstr(again, "hs_build_info{");
    assert_non_null(first);
    assert_null(strstr(first + 1, "hs_build_info{"));
    free(again);
    free(text);
    hs_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_without_labels),
        cmocka_unit_test(test_counter_with_labels_sorts_them_by_name),
        cmocka_unit_test(test_counter_beyond_2_pow_53_renders_exactly),
        cmocka_unit_test(test_label_values_from_runtime_data_are_escaped),
        cmocka_unit_test(test_help_text_is_escaped),
        cmocka_unit_test(test_gauge_values_render_as_go_parses_them),
        cmocka_unit_test(test_gauge_set_and_add),
        cmocka_unit_test(test_histogram_buckets_are_cumulative_with_inf_sum_and_count),
        cmocka_unit_test(test_histogram_ignores_a_trailing_inf_bound),
        cmocka_unit_test(test_same_name_and_labels_return_the_same_pointer),
        cmocka_unit_test(test_series_of_one_name_render_together_sorted_by_labels),
        cmocka_unit_test(test_a_removed_series_is_no_longer_rendered),
        cmocka_unit_test(test_many_series_stay_distinct),
        cmocka_unit_test(test_render_callbacks_run_before_every_render),
        cmocka_unit_test(test_an_empty_registry_renders_nothing),
        cmocka_unit_test(test_updates_through_null_do_nothing),
        cmocka_unit_test(test_process_rss_is_known_and_below_its_peak),
        cmocka_unit_test(test_rendering_on_another_thread_while_the_owner_updates),
        cmocka_unit_test(test_array_labels_find_the_series_of_the_list_forms),
        cmocka_unit_test(test_a_batch_under_the_lock_is_rendered_whole),
        cmocka_unit_test(test_a_mirrored_counter_renders_as_a_counter_with_its_fraction),
        cmocka_unit_test(test_process_stat_is_parsed_past_a_name_with_parentheses),
        cmocka_unit_test(test_process_metrics_have_the_standard_names_types_and_sane_values),
        cmocka_unit_test(test_process_cpu_seconds_grow_with_work),
        cmocka_unit_test(test_process_open_fds_counts_a_newly_opened_file),
        cmocka_unit_test(test_build_info_names_the_version_and_the_running_librdkafka),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
