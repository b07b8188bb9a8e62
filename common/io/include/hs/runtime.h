/* The service runtime: everything a service is besides its calculation (docs/design.md §12 runtime, §6
 * delivery, §3 tables). A service's main.c declares an hs_service and calls hs_runtime_main();
 * the runtime parses the configuration, runs one libuv loop that owns the process (Kafka queues bridged in
 * with rd_kafka_queue_io_event_enable + uv_poll, the commit timer, signals), and processes facts exactly
 * once: consume -> calculate -> produce only the outputs that changed, with the consumed offsets committed
 * in the same Kafka transaction. The HTTP endpoint (/metrics, /healthz, /readyz) answers from a thread of its
 * own, from what the loop publishes (hs/health.h, hs/metrics.h), so it answers while the loop waits.
 *
 * Per assigned partition it keeps the calculation's state and, for each output key, a digest of the value
 * last emitted (only changes are published). On assignment a partition is rebuilt: read from its beginning up
 * to the committed offset without emitting, then live. hs.rules.v1 is read in full by every instance, before
 * facts and whenever it changes; each committed offset carries the digest of the rules its partition's
 * outputs reflect, so that a rule change reaches the outputs exactly once (docs/reliability.md, "Rule
 * changes"). Records that do not decode or validate, that are not admitted (a key that is not the value's
 * identity, a partition that is not the grouping key's: hs_topic_admit in hs/topic.h), or that the
 * calculation refuses, go to hs.dlq.v1 inside the transaction; bad rules too, once per service.
 */
#ifndef HS_RUNTIME_H
#define HS_RUNTIME_H

#include <stddef.h>

#include "hs/calc.h"
#include "hs/config.h"
#include "hs/metrics.h"

typedef struct hs_service {
    const hs_calc *calc;
    const char *version;      /* printed by --version and in the start-up log */
    const hs_option *options; /* the service's own options ({NULL}-terminated), or NULL */
    /* Optional: refreshes the service's domain gauges before /metrics renders; `states` are the calculation
     * states of the assigned partitions. Runs on the loop thread. */
    void (*metrics)(hs_metrics *metrics, void *const *states, size_t count);
} hs_service;

/* Exit statuses of a service process (docs/running.md, "Running a service"). */
enum {
    HS_EXIT_OK = 0,    /* stopped by SIGTERM/SIGINT after committing */
    HS_EXIT_FATAL = 1, /* a fatal Kafka error (e.g. fenced by a newer instance) or an internal error */
    HS_EXIT_USAGE = 2, /* bad flags */
    HS_EXIT_CONFIG =
        6, /* invalid configuration or HS_KAFKA_* property, or the HTTP address cannot be bound */
};

/* Runs `service` until SIGTERM, SIGINT or hs_runtime_stop(); returns the process exit status. */
int hs_runtime_main(const hs_service *service, int argc, char **argv);

/* Asks the runtime running in this process to stop as on SIGTERM (commit, leave the group, return).
 * Safe from any thread; does nothing when none runs. For tests that run a service in a thread. */
void hs_runtime_stop(void);

#endif
