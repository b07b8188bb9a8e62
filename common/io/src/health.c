/* Liveness and readiness, published by the loop and read by the HTTP thread (see hs/health.h). The beat is
 * one atomic, stored at every loop turn without a lock; the reason changes rarely and is a short string, so
 * it is copied under a mutex (the reader gets it whole). Ages are judged by the reader, at read time, so that
 * a loop that is blocked — and cannot publish anything — is still reported.
 */
#include "hs/health.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct hs_health {
    uint64_t busy_ms, stalled_ms;
    uint64_t (*clock_ms)(void);
    _Atomic uint64_t beat_ms;
    pthread_mutex_t lock;
    char reason[HS_HEALTH_REASON_MAX + 1]; /* "" when ready; under lock */
};

static uint64_t monotonic_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

hs_health *hs_health_new(uint64_t busy_ms, uint64_t stalled_ms, uint64_t (*clock_ms)(void))
{
    hs_health *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->busy_ms = busy_ms;
    h->stalled_ms = stalled_ms;
    h->clock_ms = clock_ms ? clock_ms : monotonic_ms;
    pthread_mutex_init(&h->lock, NULL);
    snprintf(h->reason, sizeof h->reason, "starting");
    atomic_store(&h->beat_ms, h->clock_ms());
    return h;
}

void hs_health_free(hs_health *h)
{
    if (!h)
        return;
    pthread_mutex_destroy(&h->lock);
    free(h);
}

void hs_health_beat(hs_health *h)
{
    atomic_store_explicit(&h->beat_ms, h->clock_ms(), memory_order_relaxed);
}

void hs_health_set_reason(hs_health *h, const char *reason)
{
    pthread_mutex_lock(&h->lock);
    snprintf(h->reason, sizeof h->reason, "%s", reason ? reason : "");
    pthread_mutex_unlock(&h->lock);
    hs_health_beat(h);
}

void hs_health_read(hs_health *h, hs_health_status *out)
{
    char reason[sizeof h->reason];
    pthread_mutex_lock(&h->lock);
    memcpy(reason, h->reason, sizeof reason);
    pthread_mutex_unlock(&h->lock);
    uint64_t now = h->clock_ms(), beat = atomic_load_explicit(&h->beat_ms, memory_order_relaxed);
    uint64_t age_ms = now > beat ? now - beat : 0;
    out->blocked_seconds = (double)age_ms / 1000.0;
    out->alive = age_ms < h->stalled_ms;
    out->ready = out->alive && age_ms < h->busy_ms && reason[0] == '\0';
    unsigned long long age_s = (unsigned long long)(age_ms / 1000u);
    if (!out->alive)
        snprintf(out->reason, sizeof out->reason, "event loop stalled for %llu s", age_s);
    else if (age_ms >= h->busy_ms)
        snprintf(out->reason, sizeof out->reason, "%s (event loop blocked for %llu s)",
                 reason[0] ? reason : "no progress", age_s);
    else
        snprintf(out->reason, sizeof out->reason, "%s", reason[0] ? reason : "ready");
}
