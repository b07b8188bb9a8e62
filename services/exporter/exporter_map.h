/* The exporter's mapping, pure and shared: a record of a derived table (hs.target-status.v1, hs.variation.v1,
 * hs.capacity-status.v1) becomes Prometheus samples — metric family, label set, value. The service
 * (exporter.c) serves the samples of each series' latest period on /metrics; `hsctl export --format
 * openmetrics` writes the samples of every period, stamped with the period's end. README.md lists the
 * metrics; unit.test_exporter_map checks the mapping.
 */
#ifndef EXPORTER_MAP_H
#define EXPORTER_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

#include "hs/err.h"
#include "hs/key.h"
#include "hs/period.h"

/* The derived tables the exporter reads. */
typedef enum xm_table {
    XM_TARGETS,   /* hs.target-status.v1 */
    XM_VARIATION, /* hs.variation.v1 */
    XM_CAPACITY,  /* hs.capacity-status.v1 */
    XM_TABLE_COUNT,
} xm_table;

/* The topic of `table` ("hs.variation.v1"). */
const char *xm_table_topic(xm_table table);

/* The table read from `topic`; false for a topic the exporter does not map. */
bool xm_table_of(const char *topic, xm_table *out);

/* One metric family: every one is a gauge. */
typedef struct xm_family {
    const char *name;
    const char *help;
} xm_family;

/* Every family, in name order; `*count` receives their number. Static storage. */
const xm_family *xm_families(size_t *count);

/* Most labels a sample has. */
#define XM_LABELS_MAX 8

/* One sample: family (an index into xm_families), labels as name, value pairs ending in NULL (the form of
 * hs_metrics_gauge_v) and value. The label values point into the record the sample belongs to. */
typedef struct xm_sample {
    size_t family;
    double value;
    const char *labels[2 * XM_LABELS_MAX + 1];
} xm_sample;

/* One record of a derived table and its samples. */
typedef struct xm_record {
    xm_table table;
    ProtobufCMessage *message;     /* decoded, owned; label values point into it */
    char identity[HS_KEY_MAX + 4]; /* the table's number, '|', the key without its period: one series set */
    char key[HS_KEY_MAX];
    hs_period period;
    int64_t start, end; /* the period's first instant and its end, Unix seconds */
    /* Label values that are not fields of the message. */
    char scope[HS_KEY_MAX]; /* the scope as keys write it: "region:1081", "national:DK", "hospital:..." */
    char region[40];        /* the scope's region: "1081", "DK" for the nation, a hospital's from its code */
    char unit[16];          /* "percent", "days", ... */
    xm_sample *samples;
    size_t count;
} xm_record;

/* Decodes the record with `key` and value `payload` (`len` bytes) of `table` into a new xm_record with its
 * samples (*out, freed with xm_record_free). Refused, with HS_ERR_VALIDATION and the reason, and nothing
 * allocated: a value that is not the table's message, a key that is not the value's identity (two keys
 * would then make the same series), a period that does not parse, a label value that is not UTF-8. */
hs_err xm_record_decode(xm_table table, const char *key, const void *payload, size_t len, xm_record **out,
                        hs_error *error);

void xm_record_free(xm_record *record);

/* The identity (xm_record.identity) of `key` in `table`, for a tombstone, which has only its key. */
hs_err xm_identity(xm_table table, const char *key, char out[HS_KEY_MAX + 4], hs_error *error);

/* Whether `a` is a later period of its series than `b`: it ends later, or ends at the same time and starts
 * later (2023Q4 over 2023), or covers the same days and has the larger key (a stable choice). */
bool xm_later(const xm_record *a, const xm_record *b);

/* Writes `records` (any order) as one OpenMetrics text: per family, its HELP and TYPE, then its series in
 * label order, each one's samples in time order with the timestamp of their period's end; then "# EOF".
 * What `promtool tsdb create-blocks-from openmetrics` reads. HS_ERR_IO when writing fails, HS_ERR_NOMEM. */
hs_err xm_write_openmetrics(FILE *out, xm_record *const *records, size_t count, hs_error *error);

#endif
