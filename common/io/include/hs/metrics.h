/* hs_metrics: the registry behind a service's `/metrics` page. Counters, gauges and histograms are created on
 * first use by (name, labels) and rendered in the Prometheus text exposition format 0.0.4. The runtime counts
 * records, transactions and latencies into it; each service adds its domain gauges; hs_http serves the text.
 * Threads: lookups, removals and rendering may come from any thread (one lock guards the registry); the
 * update functions take no lock, and each series must be updated by one thread at a time (in a service,
 * the loop thread; the HTTP thread renders). Updates cost a plain load and store, as before.
 */
#ifndef HS_METRICS_H
#define HS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hs/err.h"

/* The Content-Type of hs_metrics_render()'s text, for the HTTP response. */
#define HS_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct hs_metrics hs_metrics;
typedef struct hs_counter hs_counter;     /* monotonic uint64 */
typedef struct hs_gauge hs_gauge;         /* double, up and down */
typedef struct hs_histogram hs_histogram; /* cumulative buckets + sum + count */

/* A new, empty registry; NULL when out of memory. */
hs_metrics *hs_metrics_new(void);

/* Frees the registry and every metric it created; every hs_counter/hs_gauge/hs_histogram pointer it handed
 * out dies with it. NULL is allowed. */
void hs_metrics_free(hs_metrics *m);

/* Finding or creating a metric. Every function returns the series of `name` with the given label set,
 * creating it on first use; the same (name, labels) always returns the same pointer, valid until
 * hs_metrics_free(). Lookup is one hash probe, so calling these per record works, but callers on a hot path
 * should cache the pointer once (at start-up, or per topic/partition when it is assigned).
 *
 * - `name` ([a-zA-Z_:][a-zA-Z0-9_:]*) and label names ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", no
 *   label twice; "le" is reserved in histograms) come from code and are checked with assert(). Counters
 *   should end in `_total`, units go in the name (`_seconds`, `_bytes`), as Prometheus recommends.
 * - `help` is required the first time a name is registered; later calls may pass NULL (or the same text).
 *   All series of one name share its type and help and render together; registering a name again as
 *   another type is a bug (assert).
 * - Labels either as one string in Prometheus syntax without braces, for labels fixed in code:
 *       hs_metrics_counter(m, "hs_transactions_total", "...", "outcome=\"committed\"")
 *   (NULL or "" for none; checked with assert, so never build it from runtime data), or as a
 *   NULL-terminated list of name, value pairs — the way to label with runtime data (topic names, error
 *   codes), whose values are escaped on output; a NULL value counts as "":
 *       hs_metrics_counter_l(m, "hs_records_in_total", "...", "topic", topic, "partition", part, NULL)
 *   Label order does not matter: both forms are stored sorted by label name, and the two forms of the same
 *   set find the same series. At most 16 labels.
 * - NULL means out of memory. Every update function accepts NULL and does nothing, so a caller may keep
 *   counting without checking.
 */
hs_counter *hs_metrics_counter(hs_metrics *m, const char *name, const char *help, const char *labels);
hs_counter *hs_metrics_counter_l(hs_metrics *m, const char *name, const char *help, ...)
    __attribute__((sentinel));
hs_gauge *hs_metrics_gauge(hs_metrics *m, const char *name, const char *help, const char *labels);
hs_gauge *hs_metrics_gauge_l(hs_metrics *m, const char *name, const char *help, ...)
    __attribute__((sentinel));

/* As hs_metrics_gauge_l, with the labels in an array: name, value, name, value, ..., NULL. For code that
 * builds label sets at run time, such as the exporter's gauges of a table (services/exporter). */
hs_gauge *hs_metrics_gauge_v(hs_metrics *m, const char *name, const char *help, const char *const *labels);

/* A counter that something else keeps, such as the CPU seconds the kernel counts for the process: set it
 * with hs_gauge_set() to the source's current value, never lower, and it renders as a counter whose value
 * may have a fraction (process_cpu_seconds_total 1.25). Same rules for names and labels as above. */
hs_gauge *hs_metrics_counter_mirror(hs_metrics *m, const char *name, const char *help, const char *labels);

/* As above, with the histogram's bucket upper bounds: `n` finite values in strictly increasing order (a
 * trailing +Inf is allowed and ignored; the +Inf bucket is always there). They are copied; a series that
 * already exists keeps its bounds, and passing different ones for it is a bug (assert). n may be 0. */
hs_histogram *hs_metrics_histogram(hs_metrics *m, const char *name, const char *help, const char *labels,
                                   const double *upper_bounds, size_t n);
hs_histogram *hs_metrics_histogram_l(hs_metrics *m, const char *name, const char *help,
                                     const double *upper_bounds, size_t n, ...) __attribute__((sentinel));

/* Removes the series of `name` with the given labels (name, value pairs, NULL-terminated, as for the _l
 * functions); returns whether there was one. For series that stop describing anything, such as the lag of
 * a partition this instance no longer consumes: rendering them on would report a stale value. Every
 * pointer to the removed series dies with it, so only series looked up at each use may be removed. A
 * family left without series is not rendered; the same (name, labels) later makes a new series from 0. */
bool hs_metrics_remove_l(hs_metrics *m, const char *name, ...) __attribute__((sentinel));

/* As hs_metrics_remove_l, with the labels in an array as for hs_metrics_gauge_v. */
bool hs_metrics_remove_v(hs_metrics *m, const char *name, const char *const *labels);

/* Holds the registry for a batch of lookups, updates and removals made by the calling thread: a render
 * waits until hs_metrics_unlock, so that a scrape sees all of the batch or none of it — a series replaced
 * by another (its label values changed) is never seen twice, nor missing. The calls in between take the
 * lock again (it is recursive). Keep batches short: /metrics waits for them. */
void hs_metrics_lock(hs_metrics *m);
void hs_metrics_unlock(hs_metrics *m);

void hs_counter_add(hs_counter *c, uint64_t n);
uint64_t hs_counter_value(const hs_counter *c); /* 0 for NULL */

void hs_gauge_set(hs_gauge *g, double v);
void hs_gauge_add(hs_gauge *g, double d);
double hs_gauge_value(const hs_gauge *g); /* 0 for NULL */

/* Counts `v` into the first bucket whose upper bound is >= v (NaN lands in +Inf only), and into _sum and
 * _count. */
void hs_histogram_observe(hs_histogram *h, double v);
uint64_t hs_histogram_count(const hs_histogram *h); /* 0 for NULL */
double hs_histogram_sum(const hs_histogram *h);     /* 0 for NULL */

/* Registers `cb` to run at the start of every hs_metrics_render(), in registration order, to refresh gauges
 * that are cheap to compute on demand (process RSS, a readiness flag). It runs on the rendering thread, so
 * it may read only what that thread may (the runtime refreshes gauges of its loop's state on the loop, see
 * runtime.c). The callback may create and update metrics; `ctx` is the caller's and must outlive the
 * registry.
 * HS_ERR_NOMEM when out of memory (the callback is then not registered). */
hs_err hs_metrics_on_render(hs_metrics *m, void (*cb)(void *ctx, hs_metrics *m), void *ctx);

/* Runs the render callbacks, then returns the whole registry as Prometheus text (malloc'd; the caller
 * frees it), or NULL when out of memory. Deterministic: families by name, series by label set (byte order
 * of the rendered labels, which are sorted by label name). Values: counters as integers; gauges, sums and
 * bucket bounds as the shortest text that reads back as the same double ("0.1", "1000000000000000",
 * "1e+300", "NaN", "+Inf", "-Inf"). */
char *hs_metrics_render(hs_metrics *m);

/* Writes `v` as the exposition formats read it (Go's ParseFloat), the way hs_metrics_render writes every
 * gauge: NaN, +Inf, -Inf, integers up to 2^53 exactly and without exponent, anything else as the shortest
 * %g text that reads back as the same double. `out` holds at least 32 bytes. */
void hs_metrics_format_value(double v, char *out, size_t size);

/* The resident set size of this process in bytes (from /proc/self/statm), and its peak (VmHWM in
 * /proc/self/status); 0 when unknown (not Linux, /proc not mounted). */
uint64_t hs_process_rss_bytes(void);
uint64_t hs_process_peak_rss_bytes(void);

#endif
