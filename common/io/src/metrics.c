/* The Prometheus metrics registry (see hs/metrics.h). Each series is its own allocation, so the pointers
 * handed out never move; one hs_table maps "name{labels}" to its series (the one-probe lookup of the hot
 * path), another maps a name to its family (type, help, series). Labels are kept in one canonical form —
 * sorted by name, values escaped — so that the key, the sort order and the rendered text are the same
 * string. Families and series are sorted when rendering, not when created.
 *
 * Threads: the registry's structure (the tables, families, series lists, hooks) is guarded by one mutex,
 * taken by lookups, removals and rendering, and recursive so that hs_metrics_lock can hold it over a batch;
 * values are atomics, updated without the lock — by one writer per series, so a relaxed load and store
 * suffice (no locked instruction on the record path) — and read by the renderer. A histogram's _count is
 * rendered as the sum of its buckets, so that it always equals the +Inf bucket even when an observation lands
 * mid-render.
 */
#include "hs/metrics.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hs/table.h"

#define MAX_LABELS 16

typedef enum metric_kind {
    KIND_COUNTER,
    KIND_GAUGE,
    KIND_HISTOGRAM,
    KIND_MIRRORED_COUNTER, /* a counter kept elsewhere, held in a gauge (hs_metrics_counter_mirror) */
} metric_kind;

static const char *const kind_names[] = {"counter", "gauge", "histogram", "counter"};

struct hs_counter {
    _Atomic uint64_t value;
};

struct hs_gauge {
    _Atomic double value;
};

struct hs_histogram {
    double *bounds;           /* n finite upper bounds, strictly increasing */
    _Atomic uint64_t *counts; /* n + 1 observations per bucket, not cumulative; [n] is the +Inf bucket */
    size_t n;
    _Atomic double sum;
    _Atomic uint64_t count;
};

typedef struct family family;

typedef struct series {
    family *family;
    char *labels; /* canonical: a="x",b="y\"z" sorted by label name; "" for none */
    union {
        hs_counter counter;
        hs_gauge gauge;
        hs_histogram histogram;
    } u;
} series;

struct family {
    char *name;
    char *help;
    metric_kind kind;
    series **series; /* owned, with the series */
    size_t count;
    size_t cap;
};

typedef struct render_hook {
    void (*cb)(void *ctx, hs_metrics *m);
    void *ctx;
} render_hook;

struct hs_metrics {
    pthread_mutex_t lock;    /* guards everything below (not the values: see the top of this file) */
    hs_table series_by_key;  /* "name{labels}" -> series * (the pointer's bytes) */
    hs_table family_by_name; /* name -> family * */
    family **families;       /* owned */
    size_t family_count;
    size_t family_cap;
    render_hook *hooks;
    size_t hook_count;
    size_t hook_cap;
};

/* One label of a lookup, pointing into the caller's strings. */
typedef struct label {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
    bool escaped; /* value is already in exposition syntax (it came from a labels string) */
} label;

/* --- A growable string, with room for short keys on the stack ------------------------------------------ */

typedef struct buf {
    char *data; /* inline_ or malloc'd; always NUL-terminated */
    size_t len;
    size_t cap;
    bool failed; /* an allocation failed; the content is incomplete */
    char inline_[256];
} buf;

static void buf_init(buf *b)
{
    b->data = b->inline_;
    b->len = 0;
    b->cap = sizeof b->inline_;
    b->failed = false;
    b->data[0] = '\0';
}

static void buf_free(buf *b)
{
    if (b->data != b->inline_)
        free(b->data);
    buf_init(b);
}

static bool buf_reserve(buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra < b->cap)
        return true;
    size_t cap = b->cap * 2;
    while (cap <= b->len + extra)
        cap *= 2;
    char *data = b->data == b->inline_ ? malloc(cap) : realloc(b->data, cap);
    if (!data) {
        b->failed = true;
        return false;
    }
    if (b->data == b->inline_)
        memcpy(data, b->inline_, b->len + 1);
    b->data = data;
    b->cap = cap;
    return true;
}

static void buf_append(buf *b, const char *s, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_puts(buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

static void buf_putc(buf *b, char c)
{
    buf_append(b, &c, 1);
}

/* The content as a malloc'd string the caller frees (NULL when out of memory); `b` is left empty. */
static char *buf_detach(buf *b)
{
    char *s = NULL;
    if (b->failed) {
        buf_free(b);
    } else if (b->data == b->inline_) {
        s = strdup(b->inline_);
    } else {
        s = b->data; /* handed over: nothing left to free */
    }
    buf_init(b);
    return s;
}

/* Appends `s` with the exposition format's escapes: backslash and newline always, the double quote only
 * inside label values (HELP text keeps it). */
static void buf_escaped(buf *b, const char *s, size_t n, bool quote)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            buf_append(b, "\\\\", 2);
        else if (s[i] == '\n')
            buf_append(b, "\\n", 2);
        else if (s[i] == '"' && quote)
            buf_append(b, "\\\"", 2);
        else
            buf_putc(b, s[i]);
    }
}

/* --- Names, labels and numbers ------------------------------------------------------------------------- */

static bool is_alpha_(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names, [a-zA-Z_][a-zA-Z0-9_]* for label names. */
static bool valid_name(const char *s, size_t len, bool colons)
{
    if (len == 0 || is_digit(s[0]))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!is_alpha_(s[i]) && !is_digit(s[i]) && !(colons && s[i] == ':'))
            return false;
    return true;
}

static size_t label_name_len(const char *s)
{
    size_t n = 0;
    while (is_alpha_(s[n]) || is_digit(s[n]))
        n++;
    return n;
}

/* Splits a labels string (`a="x",b="y\"z"`, fixed in code) into `out`; returns the count. A malformed
 * string is a bug: it fails the assert, and without asserts parsing stops at the fault. */
static size_t parse_labels(const char *text, label *out)
{
    size_t n = 0;
    const char *p = text ? text : "";
    while (*p && n < MAX_LABELS) {
        label *l = &out[n];
        l->name = p;
        l->name_len = label_name_len(p);
        p += l->name_len;
        if (p[0] != '=' || p[1] != '"') {
            assert(!"labels: expected name=\"value\"");
            break;
        }
        p += 2;
        l->value = p;
        while (*p && *p != '"' && *p != '\n') {
            if (*p == '\\') {
                assert((p[1] == '\\' || p[1] == '"' || p[1] == 'n') &&
                       "labels: only \\\\, \\\" and \\n escapes");
                if (p[1] == '\0')
                    break;
                p++;
            }
            p++;
        }
        if (*p != '"') {
            assert(!"labels: unterminated value");
            break;
        }
        l->value_len = (size_t)(p - l->value);
        l->escaped = true;
        n++;
        p++;
        if (*p == ',')
            p++;
        else if (*p) {
            assert(!"labels: expected ',' between labels");
            break;
        }
    }
    assert(*p == '\0' && "labels: more than MAX_LABELS");
    return n;
}

/* Reads NULL-terminated name, value pairs; returns the count. */
static size_t collect_labels(va_list ap, label *out)
{
    size_t n = 0;
    const char *name;
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        assert(n < MAX_LABELS && "more than MAX_LABELS labels");
        if (n == MAX_LABELS)
            break;
        if (!value)
            value = "";
        out[n++] = (label){name, strlen(name), value, strlen(value), false};
    }
    return n;
}

/* Reads name, value pairs from a NULL-terminated array; returns the count. */
static size_t collect_labels_v(const char *const *labels, label *out)
{
    size_t n = 0;
    for (; labels && labels[0]; labels += 2) {
        assert(n < MAX_LABELS && "more than MAX_LABELS labels");
        if (n == MAX_LABELS)
            break;
        const char *value = labels[1] ? labels[1] : "";
        out[n++] = (label){labels[0], strlen(labels[0]), value, strlen(value), false};
    }
    return n;
}

static int label_name_cmp(const label *a, const label *b)
{
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(a->name, b->name, n);
    if (c)
        return c;
    return (a->name_len > b->name_len) - (a->name_len < b->name_len);
}

/* Insertion sort by label name (there are a handful), then the checks that need the sorted order. Returns
 * false for a bad label set: a bug, so it also fails an assert. */
static bool sort_labels(label *labels, size_t n, metric_kind kind)
{
    for (size_t i = 1; i < n; i++) {
        label l = labels[i];
        size_t j = i;
        for (; j > 0 && label_name_cmp(&labels[j - 1], &l) > 0; j--)
            labels[j] = labels[j - 1];
        labels[j] = l;
    }
    for (size_t i = 0; i < n; i++) {
        const label *l = &labels[i];
        bool valid = valid_name(l->name, l->name_len, false);
        bool reserved = l->name_len >= 2 && l->name[0] == '_' && l->name[1] == '_';
        bool le = kind == KIND_HISTOGRAM && l->name_len == 2 && memcmp(l->name, "le", 2) == 0;
        bool twice = i > 0 && label_name_cmp(&labels[i - 1], l) == 0;
        assert(valid && "invalid label name");
        assert(!reserved && "label names starting with __ are reserved");
        assert(!le && "le is the bucket label of a histogram");
        assert(!twice && "label given twice");
        if (!valid || reserved || le || twice)
            return false;
    }
    return true;
}

/* hs/metrics.h */
void hs_metrics_format_value(double v, char *out, size_t size)
{
    if (isnan(v))
        snprintf(out, size, "NaN");
    else if (isinf(v))
        snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
    else if (v == 0)
        snprintf(out, size, "0");
    else if (v == floor(v) && fabs(v) <= 9007199254740992.0)
        snprintf(out, size, "%.0f", v);
    else
        for (int precision = 15; precision <= 17; precision++) {
            snprintf(out, size, "%.*g", precision, v);
            if (strtod(out, NULL) == v)
                break;
        }
}

/* --- The registry -------------------------------------------------------------------------------------- */

/* The hs_tables map text to a pointer, stored as the bytes of a void *. */
static bool index_put(hs_table *index, const char *key, void *p)
{
    return hs_table_put(index, key, &p, sizeof p) != HS_TABLE_NOMEM;
}

static void *index_get(const hs_table *index, const char *key)
{
    const hs_table_entry *e = hs_table_get(index, key);
    void *p = NULL;
    if (e)
        memcpy(&p, e->value, sizeof p);
    return p;
}

/* Makes room for one more element in a growable array of `size`-byte elements: returns the array, moved
 * perhaps (and *cap updated), or NULL when out of memory (the old array is left as it was). */
static void *grow_array(void *items, size_t count, size_t *cap, size_t size)
{
    if (count < *cap)
        return items;
    size_t new_cap = *cap ? *cap * 2 : 8;
    void *p = realloc(items, new_cap * size);
    if (p)
        *cap = new_cap;
    return p;
}

hs_metrics *hs_metrics_new(void)
{
    hs_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE); /* hs_metrics_lock holds it over lookups */
    pthread_mutex_init(&m->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    hs_table_init(&m->series_by_key);
    hs_table_init(&m->family_by_name);
    return m;
}

static void series_free(series *s)
{
    if (!s)
        return;
    if (s->family->kind == KIND_HISTOGRAM) {
        free(s->u.histogram.bounds);
        free(s->u.histogram.counts);
    }
    free(s->labels);
    free(s);
}

static void family_free(family *f)
{
    for (size_t i = 0; i < f->count; i++)
        series_free(f->series[i]);
    free(f->series);
    free(f->name);
    free(f->help);
    free(f);
}

void hs_metrics_free(hs_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->family_count; i++)
        family_free(m->families[i]);
    free(m->families);
    free(m->hooks);
    hs_table_free(&m->series_by_key);
    hs_table_free(&m->family_by_name);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* The family `name`, created (and registered) when new; NULL when out of memory or, a bug, when `name`
 * exists with another type. */
static family *family_get(hs_metrics *m, metric_kind kind, const char *name, const char *help)
{
    family *f = index_get(&m->family_by_name, name);
    if (f) {
        assert(f->kind == kind && "metric registered again as another type");
        assert((!help || strcmp(help, f->help) == 0) && "metric registered again with another help text");
        return f->kind == kind ? f : NULL;
    }
    assert(help && "help is required when a metric name is first registered");
    family **families = grow_array(m->families, m->family_count, &m->family_cap, sizeof(family *));
    if (!families)
        return NULL;
    m->families = families;
    f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->kind = kind;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (!f->name || !f->help || !index_put(&m->family_by_name, name, f)) {
        family_free(f);
        return NULL;
    }
    m->families[m->family_count++] = f;
    return f;
}

/* Bounds without a trailing +Inf; checks they increase. */
static size_t finite_bounds(const double *bounds, size_t n)
{
    if (n > 0 && isinf(bounds[n - 1]) && bounds[n - 1] > 0)
        n--;
    for (size_t i = 0; i < n; i++)
        assert(isfinite(bounds[i]) && (i == 0 || bounds[i - 1] < bounds[i]) &&
               "histogram bounds must be finite and strictly increasing");
    return n;
}

#ifndef NDEBUG
static bool same_bounds(const hs_histogram *h, const double *bounds, size_t n)
{
    n = finite_bounds(bounds, n);
    return n == h->n && (n == 0 || memcmp(h->bounds, bounds, n * sizeof *bounds) == 0);
}
#endif

static series *series_new(family *f, const char *labels, size_t labels_len, const double *bounds, size_t n)
{
    series *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->family = f;
    s->labels = strndup(labels, labels_len);
    if (!s->labels) {
        free(s);
        return NULL;
    }
    if (f->kind == KIND_HISTOGRAM) {
        hs_histogram *h = &s->u.histogram;
        h->n = finite_bounds(bounds, n);
        h->bounds = malloc((h->n ? h->n : 1) * sizeof *h->bounds);
        h->counts = calloc(h->n + 1, sizeof *h->counts);
        if (!h->bounds || !h->counts) {
            series_free(s);
            return NULL;
        }
        if (h->n)
            memcpy(h->bounds, bounds, h->n * sizeof *h->bounds);
    }
    return s;
}

/* The index key of a series into `key` (buf_init()ed here; the caller frees it): name{a="x",b="y"} with the
 * labels sorted; the braces keep "name" apart from a family named "name{...". Returns where the labels
 * start in it. */
static size_t series_key(buf *key, const char *name, const label *labels, size_t nlabels)
{
    buf_init(key);
    buf_puts(key, name);
    size_t labels_at = key->len + 1;
    buf_putc(key, '{');
    for (size_t i = 0; i < nlabels; i++) {
        if (i)
            buf_putc(key, ',');
        buf_append(key, labels[i].name, labels[i].name_len);
        buf_append(key, "=\"", 2);
        if (labels[i].escaped)
            buf_append(key, labels[i].value, labels[i].value_len);
        else
            buf_escaped(key, labels[i].value, labels[i].value_len, true);
        buf_putc(key, '"');
    }
    buf_putc(key, '}');
    return labels_at;
}

/* The series of (name, labels), created when new; NULL when out of memory or, a bug that also fails an
 * assert, for a bad name or label set or a type clash. */
static series *series_get(hs_metrics *m, metric_kind kind, const char *name, const char *help, label *labels,
                          size_t nlabels, const double *bounds, size_t nbounds)
{
    bool valid = m && name && valid_name(name, strlen(name), true);
    assert(valid && "invalid metric name");
    if (!valid || !sort_labels(labels, nlabels, kind))
        return NULL;

    buf key;
    size_t labels_at = series_key(&key, name, labels, nlabels);

    pthread_mutex_lock(&m->lock);
    series *s = key.failed ? NULL : index_get(&m->series_by_key, key.data);
    if (s) {
        assert(s->family->kind == kind && "metric registered again as another type");
        assert((kind != KIND_HISTOGRAM || same_bounds(&s->u.histogram, bounds, nbounds)) &&
               "histogram registered again with other bounds");
        if (s->family->kind != kind)
            s = NULL;
    } else if (!key.failed) {
        family *f = family_get(m, kind, name, help);
        series **room = f ? grow_array(f->series, f->count, &f->cap, sizeof(series *)) : NULL;
        if (room) {
            f->series = room;
            s = series_new(f, key.data + labels_at, key.len - labels_at - 1, bounds, nbounds);
            if (s && !index_put(&m->series_by_key, key.data, s)) {
                series_free(s);
                s = NULL;
            }
            if (s)
                f->series[f->count++] = s;
        }
    }
    pthread_mutex_unlock(&m->lock);
    buf_free(&key);
    return s;
}

hs_counter *hs_metrics_counter(hs_metrics *m, const char *name, const char *help, const char *labels)
{
    label l[MAX_LABELS];
    series *s = series_get(m, KIND_COUNTER, name, help, l, parse_labels(labels, l), NULL, 0);
    return s ? &s->u.counter : NULL;
}

hs_counter *hs_metrics_counter_l(hs_metrics *m, const char *name, const char *help, ...)
{
    label l[MAX_LABELS];
    va_list ap;
    va_start(ap, help);
    size_t n = collect_labels(ap, l);
    va_end(ap);
    series *s = series_get(m, KIND_COUNTER, name, help, l, n, NULL, 0);
    return s ? &s->u.counter : NULL;
}

hs_gauge *hs_metrics_gauge(hs_metrics *m, const char *name, const char *help, const char *labels)
{
    label l[MAX_LABELS];
    series *s = series_get(m, KIND_GAUGE, name, help, l, parse_labels(labels, l), NULL, 0);
    return s ? &s->u.gauge : NULL;
}

hs_gauge *hs_metrics_gauge_l(hs_metrics *m, const char *name, const char *help, ...)
{
    label l[MAX_LABELS];
    va_list ap;
    va_start(ap, help);
    size_t n = collect_labels(ap, l);
    va_end(ap);
    series *s = series_get(m, KIND_GAUGE, name, help, l, n, NULL, 0);
    return s ? &s->u.gauge : NULL;
}

hs_gauge *hs_metrics_gauge_v(hs_metrics *m, const char *name, const char *help, const char *const *labels)
{
    label l[MAX_LABELS];
    series *s = series_get(m, KIND_GAUGE, name, help, l, collect_labels_v(labels, l), NULL, 0);
    return s ? &s->u.gauge : NULL;
}

hs_gauge *hs_metrics_counter_mirror(hs_metrics *m, const char *name, const char *help, const char *labels)
{
    label l[MAX_LABELS];
    series *s = series_get(m, KIND_MIRRORED_COUNTER, name, help, l, parse_labels(labels, l), NULL, 0);
    return s ? &s->u.gauge : NULL;
}

hs_histogram *hs_metrics_histogram(hs_metrics *m, const char *name, const char *help, const char *labels,
                                   const double *upper_bounds, size_t n)
{
    label l[MAX_LABELS];
    series *s = series_get(m, KIND_HISTOGRAM, name, help, l, parse_labels(labels, l), upper_bounds, n);
    return s ? &s->u.histogram : NULL;
}

hs_histogram *hs_metrics_histogram_l(hs_metrics *m, const char *name, const char *help,
                                     const double *upper_bounds, size_t n, ...)
{
    label l[MAX_LABELS];
    va_list ap;
    va_start(ap, n);
    size_t count = collect_labels(ap, l);
    va_end(ap);
    series *s = series_get(m, KIND_HISTOGRAM, name, help, l, count, upper_bounds, n);
    return s ? &s->u.histogram : NULL;
}

static bool remove_series(hs_metrics *m, const char *name, label *l, size_t n);

bool hs_metrics_remove_l(hs_metrics *m, const char *name, ...)
{
    label l[MAX_LABELS];
    va_list ap;
    va_start(ap, name);
    size_t n = collect_labels(ap, l);
    va_end(ap);
    return remove_series(m, name, l, n);
}

bool hs_metrics_remove_v(hs_metrics *m, const char *name, const char *const *labels)
{
    label l[MAX_LABELS];
    return remove_series(m, name, l, collect_labels_v(labels, l));
}

void hs_metrics_lock(hs_metrics *m)
{
    pthread_mutex_lock(&m->lock);
}

void hs_metrics_unlock(hs_metrics *m)
{
    pthread_mutex_unlock(&m->lock);
}

static bool remove_series(hs_metrics *m, const char *name, label *l, size_t n)
{
    if (!m || !name)
        return false;
    pthread_mutex_lock(&m->lock);
    family *f = index_get(&m->family_by_name, name);
    series *s = NULL;
    if (f && sort_labels(l, n, f->kind)) {
        buf key;
        series_key(&key, name, l, n);
        s = key.failed ? NULL : index_get(&m->series_by_key, key.data);
        if (s)
            hs_table_delete(&m->series_by_key, key.data);
        buf_free(&key);
    }
    for (size_t i = 0; s && i < f->count; i++)
        if (f->series[i] == s) {
            f->series[i] = f->series[--f->count]; /* rendering sorts them again */
            break;
        }
    pthread_mutex_unlock(&m->lock);
    series_free(s);
    return s != NULL;
}

/* --- Updates ------------------------------------------------------------------------------------------- */

/* One writer per series (hs/metrics.h): a relaxed load and store, which the renderer reads whole. */
#define RELAXED_ADD(var, n)                                                                                  \
    atomic_store_explicit(&(var), atomic_load_explicit(&(var), memory_order_relaxed) + (n),                  \
                          memory_order_relaxed)

void hs_counter_add(hs_counter *c, uint64_t n)
{
    if (c)
        RELAXED_ADD(c->value, n);
}

uint64_t hs_counter_value(const hs_counter *c)
{
    return c ? atomic_load_explicit(&c->value, memory_order_relaxed) : 0;
}

void hs_gauge_set(hs_gauge *g, double v)
{
    if (g)
        atomic_store_explicit(&g->value, v, memory_order_relaxed);
}

void hs_gauge_add(hs_gauge *g, double d)
{
    if (g)
        RELAXED_ADD(g->value, d);
}

double hs_gauge_value(const hs_gauge *g)
{
    return g ? atomic_load_explicit(&g->value, memory_order_relaxed) : 0;
}

void hs_histogram_observe(hs_histogram *h, double v)
{
    if (!h)
        return;
    /* Binary search for the first bound >= v; NaN compares false everywhere and ends in +Inf. */
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= h->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    RELAXED_ADD(h->counts[lo], 1);
    RELAXED_ADD(h->count, 1);
    RELAXED_ADD(h->sum, v);
}

uint64_t hs_histogram_count(const hs_histogram *h)
{
    return h ? atomic_load_explicit(&h->count, memory_order_relaxed) : 0;
}

double hs_histogram_sum(const hs_histogram *h)
{
    return h ? atomic_load_explicit(&h->sum, memory_order_relaxed) : 0;
}

/* --- Rendering ----------------------------------------------------------------------------------------- */

hs_err hs_metrics_on_render(hs_metrics *m, void (*cb)(void *ctx, hs_metrics *m), void *ctx)
{
    assert(m && cb);
    pthread_mutex_lock(&m->lock);
    render_hook *hooks = grow_array(m->hooks, m->hook_count, &m->hook_cap, sizeof *hooks);
    if (hooks) {
        m->hooks = hooks;
        m->hooks[m->hook_count++] = (render_hook){cb, ctx};
    }
    pthread_mutex_unlock(&m->lock);
    return hooks ? HS_OK : HS_ERR_NOMEM;
}

static int family_cmp(const void *a, const void *b)
{
    return strcmp((*(family *const *)a)->name, (*(family *const *)b)->name);
}

static int series_cmp(const void *a, const void *b)
{
    return strcmp((*(series *const *)a)->labels, (*(series *const *)b)->labels);
}

/* One sample line: name+suffix{labels,extra} value */
static void put_sample(buf *out, const family *f, const char *suffix, const series *s, const char *extra,
                       const char *value)
{
    buf_puts(out, f->name);
    buf_puts(out, suffix);
    if (s->labels[0] || extra) {
        buf_putc(out, '{');
        buf_puts(out, s->labels);
        if (s->labels[0] && extra)
            buf_putc(out, ',');
        if (extra)
            buf_puts(out, extra);
        buf_putc(out, '}');
    }
    buf_putc(out, ' ');
    buf_puts(out, value);
    buf_putc(out, '\n');
}

static void put_histogram(buf *out, const family *f, const series *s)
{
    const hs_histogram *h = &s->u.histogram;
    char value[32], bound[32], le[48];
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= h->n; i++) {
        cumulative += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        if (i < h->n)
            hs_metrics_format_value(h->bounds[i], bound, sizeof bound);
        else
            snprintf(bound, sizeof bound, "+Inf");
        snprintf(le, sizeof le, "le=\"%s\"", bound);
        snprintf(value, sizeof value, "%" PRIu64, cumulative);
        put_sample(out, f, "_bucket", s, le, value);
    }
    hs_metrics_format_value(atomic_load_explicit(&h->sum, memory_order_relaxed), value, sizeof value);
    put_sample(out, f, "_sum", s, NULL, value);
    snprintf(value, sizeof value, "%" PRIu64, cumulative); /* = the +Inf bucket, whatever lands meanwhile */
    put_sample(out, f, "_count", s, NULL, value);
}

char *hs_metrics_render(hs_metrics *m)
{
    /* By index, without the lock (hooks look metrics up): a hook may register another, which runs too. */
    for (size_t i = 0;; i++) {
        pthread_mutex_lock(&m->lock);
        render_hook hook = i < m->hook_count ? m->hooks[i] : (render_hook){NULL, NULL};
        pthread_mutex_unlock(&m->lock);
        if (!hook.cb)
            break;
        hook.cb(hook.ctx, m);
    }

    pthread_mutex_lock(&m->lock);
    if (m->family_count)
        qsort(m->families, m->family_count, sizeof(family *), family_cmp);
    buf out;
    buf_init(&out);
    char value[32];
    for (size_t i = 0; i < m->family_count; i++) {
        family *f = m->families[i];
        if (f->count == 0)
            continue; /* every series removed, or left behind by an allocation failure */
        qsort(f->series, f->count, sizeof(series *), series_cmp);
        buf_puts(&out, "# HELP ");
        buf_puts(&out, f->name);
        buf_putc(&out, ' ');
        buf_escaped(&out, f->help, strlen(f->help), false);
        buf_puts(&out, "\n# TYPE ");
        buf_puts(&out, f->name);
        buf_putc(&out, ' ');
        buf_puts(&out, kind_names[f->kind]);
        buf_putc(&out, '\n');
        for (size_t j = 0; j < f->count; j++) {
            const series *s = f->series[j];
            switch (f->kind) {
            case KIND_COUNTER:
                snprintf(value, sizeof value, "%" PRIu64, hs_counter_value(&s->u.counter));
                put_sample(&out, f, "", s, NULL, value);
                break;
            case KIND_GAUGE:
            case KIND_MIRRORED_COUNTER:
                hs_metrics_format_value(hs_gauge_value(&s->u.gauge), value, sizeof value);
                put_sample(&out, f, "", s, NULL, value);
                break;
            case KIND_HISTOGRAM: put_histogram(&out, f, s); break;
            }
        }
    }
    pthread_mutex_unlock(&m->lock);
    return buf_detach(&out);
}

/* --- Process ------------------------------------------------------------------------------------------- */

uint64_t hs_process_rss_bytes(void)
{
    /* statm: size resident shared text lib data dt, in pages. */
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    char line[256];
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    if (!ok || page <= 0)
        return 0;
    char *end;
    strtoull(line, &end, 10);
    unsigned long long resident = strtoull(end, NULL, 10);
    return (uint64_t)resident * (uint64_t)page;
}

uint64_t hs_process_peak_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    uint64_t peak = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            peak = (uint64_t)strtoull(line + 6, NULL, 10) * 1024; /* "VmHWM:     1234 kB" */
            break;
        }
    }
    fclose(f);
    return peak;
}
