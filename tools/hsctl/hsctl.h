/* hsctl: the operator's command-line tool. One subcommand per file (cmd_<name>.c), each a function that
 * takes its own argv (argv[0] is the subcommand's name) and returns an hs_err, which main() turns into the
 * documented exit status (hs_err_exit_code). Shared helpers for the subcommands live in hsctl.c.
 */
#ifndef HSCTL_H
#define HSCTL_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>

#include "hs/err.h"
#include "hs/topic.h"

/* Options every subcommand accepts. */
typedef struct hsctl_globals {
    const char *bootstrap;           /* --bootstrap, else HS_BOOTSTRAP_SERVERS, else 127.0.0.1:9092 */
    int timeout_ms;                  /* --timeout SECONDS for broker operations (default 30 s) */
    const char *schema_registry_url; /* --schema-registry-url, else HS_SCHEMA_REGISTRY_URL, else NULL */
} hsctl_globals;

hs_err hsctl_topics(int argc, char **argv, const hsctl_globals *g);
hs_err hsctl_publish(int argc, char **argv, const hsctl_globals *g);
hs_err hsctl_tail(int argc, char **argv, const hsctl_globals *g);
hs_err hsctl_rules(int argc, char **argv, const hsctl_globals *g);
hs_err hsctl_calc(int argc, char **argv, const hsctl_globals *g);
hs_err hsctl_contracts(int argc, char **argv, const hsctl_globals *g);
hs_err hsctl_dlq(int argc, char **argv, const hsctl_globals *g);
hs_err hsctl_export(int argc, char **argv, const hsctl_globals *g);
hs_err hsctl_acls(int argc, char **argv, const hsctl_globals *g);

/* With a schema registry (g->schema_registry_url): registers `topic`'s value schema and frames the values
 * this process produces to it in Confluent's wire format (hs/schema_registry.h); HS_OK and nothing done
 * without one. Prints why it failed. */
hs_err hsctl_schemas(const hsctl_globals *g, const hs_topic *topic);

/* Prints "hsctl: <message>" to stderr and returns `err`. */
hs_err hsctl_fail(hs_err err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports why the metadata `md` of one topic, `name`, has no partitions — the principal may not describe it
 * (ACLs: HS_ERR_KAFKA), or it does not exist (HS_ERR_NOT_FOUND) — and returns that error. */
hs_err hsctl_topic_missing(const struct rd_kafka_metadata *md, const char *name);

/* The registry topic called `name`, or NULL after printing the known topics to stderr. */
const hs_topic *hsctl_topic_arg(const char *name);

/* A Kafka client of `type` for the broker in `g`; NULL after printing why. `extra` is a NULL-terminated
 * list of property/value pairs; `on_delivery` (may be NULL) receives producer delivery reports with `opaque`.
 * The caller rd_kafka_destroy()s it. */
rd_kafka_t *hsctl_client(rd_kafka_type_t type, const hsctl_globals *g, const char *const *extra,
                         void (*on_delivery)(rd_kafka_t *, const rd_kafka_message_t *, void *), void *opaque);

/* A consumer that reads committed records of partitions it assigns itself: it joins no group and commits
 * nothing, so reading moves no one's offsets; end of partition is reported. NULL after printing why. */
rd_kafka_t *hsctl_reader(const hsctl_globals *g);

/* The broker's metadata of `topic` (md->topics[0] is the topic, with at least one partition); the caller
 * rd_kafka_metadata_destroy()s it. NULL after printing why: HS_ERR_KAFKA when the broker does not answer,
 * HS_ERR_NOT_FOUND when the topic does not exist, in *err. */
const struct rd_kafka_metadata *hsctl_topic_metadata(rd_kafka_t *rk, const hsctl_globals *g,
                                                     const char *topic, hs_err *err);

/* Closes and destroys a consumer of hsctl_reader(). */
void hsctl_reader_free(rd_kafka_t *rk);

/* rd_kafka_query_watermark_offsets() that rides out the transient errors of a topic that was just created
 * or a leader that is moving (not leader, leader not available, unknown partition, transport), retrying
 * until `timeout_ms` has passed. */
rd_kafka_resp_err_t hsctl_watermarks(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t *low,
                                     int64_t *high, int timeout_ms);

/* Reads one line of any length from `in` into *line (grown with realloc; the caller frees). Returns its
 * length without the newline, or -1 at end of input. A line longer than `max` is consumed whole but
 * returned as -2, so that a reader can report it and go on. */
long hsctl_read_line(FILE *in, char **line, size_t *cap, size_t max);

/* A record of `topic` as a CloudEvents JSON object (cmd_tail.c): `data` decoded through the registry, or
 * `data_base64` with the dead-letter attributes for dead letters and records that do not decode; every
 * string escaped where it is not UTF-8. New reference; NULL only when out of memory. */
json_t *hsctl_record_to_json(const hs_topic *topic, const rd_kafka_message_t *record);

/* Sets attribute `attr` of `event` to the last `header` of `record`, escaped where it is not UTF-8. */
void hsctl_add_header_attr(json_t *event, const rd_kafka_message_t *record, const char *header,
                           const char *attr);

/* The hs-* headers of a dead letter as attributes hserrorcode, hserror, hssourcetopic, hssourcepartition,
 * hssourceoffset and hsservice. */
void hsctl_add_dead_letter_attrs(json_t *event, const rd_kafka_message_t *record);

#endif
