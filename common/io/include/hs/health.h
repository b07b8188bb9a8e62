/* hs_health: what a service answers on /healthz and /readyz. The thread that does the work (the runtime's
 * loop) publishes; the HTTP thread reads, at any moment, even while the loop is blocked. The loop beats
 * at every turn and publishes why it is not ready (NULL when it is); the reader also weighs the beat's age:
 * a loop that has not turned for `busy_ms` is not ready ("... (event loop blocked for 7 s)"), and one that
 * has not turned for `stalled_ms` is not alive either — wedged beyond any wait the runtime makes by design,
 * which a restart is the remedy for. Thread-safe: every function may be called from any thread.
 */
#ifndef HS_HEALTH_H
#define HS_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

typedef struct hs_health hs_health;

#define HS_HEALTH_REASON_MAX 127 /* bytes of a published reason; longer ones are truncated */

/* What a reader sees. */
typedef struct hs_health_status {
    bool alive;             /* /healthz: 200, else 503 */
    bool ready;             /* /readyz: 200, else 503 */
    double blocked_seconds; /* since the last beat */
    char reason[192];       /* "ready", or why not: "rebuilding state", "event loop stalled for 130 s" */
} hs_health_status;

/* A new health record, not ready ("starting") and beaten now. `clock_ms` reads a monotonic clock in
 * milliseconds; NULL for CLOCK_MONOTONIC (tests pass their own). NULL when out of memory. */
hs_health *hs_health_new(uint64_t busy_ms, uint64_t stalled_ms, uint64_t (*clock_ms)(void));
void hs_health_free(hs_health *h); /* NULL is allowed */

/* The publisher has made progress (the loop turned; a start-up retry loop between attempts). */
void hs_health_beat(hs_health *h);

/* Why the publisher is not ready ("broker unreachable: 127.0.0.1:9092"), or NULL when it is. Copied
 * (truncated to HS_HEALTH_REASON_MAX bytes); also a beat. */
void hs_health_set_reason(hs_health *h, const char *reason);

/* The status now. */
void hs_health_read(hs_health *h, hs_health_status *out);

#endif
