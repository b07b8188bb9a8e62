/* C11 threads on POSIX threads, for the ThreadSanitizer build only (CMake HS_TSAN; tools/test tier tsan).
 *
 * librdkafka starts its threads with thrd_create and synchronises them with mtx_* and cnd_*. glibc
 * implements those by calling its pthread internals directly, past the interceptors through which TSan learns
 * of threads and locks: a librdkafka thread is then unknown to TSan and the first intercepted call it makes
 * crashes the process (SEGV in the TSan runtime at start-up). Defined in the executable, these definitions
 * take the place of glibc's for every shared library, librdkafka included, and each one calls the pthread
 * function that TSan intercepts. Same types and results as glibc's (its mtx_t and cnd_t are pthread's).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

typedef struct thread_start {
    thrd_start_t func;
    void *arg;
} thread_start;

static void *run_thread(void *p)
{
    thread_start start = *(thread_start *)p;
    free(p);
    /* thrd_join's int travels as pthread's void *, as in glibc. */
    return (void *)(intptr_t)start.func(start.arg); // NOLINT(performance-no-int-to-ptr)
}

static int result(int err)
{
    switch (err) {
    case 0: return thrd_success;
    case ETIMEDOUT: return thrd_timedout;
    case EBUSY: return thrd_busy;
    case ENOMEM: return thrd_nomem;
    default: return thrd_error;
    }
}

int thrd_create(thrd_t *thread, thrd_start_t func, void *arg)
{
    thread_start *start = malloc(sizeof *start);
    if (!start)
        return thrd_nomem;
    *start = (thread_start){.func = func, .arg = arg};
    int err = pthread_create((pthread_t *)thread, NULL, run_thread, start);
    if (err)
        free(start);
    return result(err);
}

int thrd_join(thrd_t thread, int *res)
{
    void *value = NULL;
    int err = pthread_join((pthread_t)thread, &value);
    if (!err && res)
        *res = (int)(intptr_t)value;
    return result(err);
}

int thrd_detach(thrd_t thread)
{
    return result(pthread_detach((pthread_t)thread));
}

int mtx_init(mtx_t *mutex, int type)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    if (type & mtx_recursive)
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    int err = pthread_mutex_init((pthread_mutex_t *)mutex, &attr);
    pthread_mutexattr_destroy(&attr);
    return result(err);
}

int mtx_lock(mtx_t *mutex)
{
    return result(pthread_mutex_lock((pthread_mutex_t *)mutex));
}

int mtx_trylock(mtx_t *mutex)
{
    return result(pthread_mutex_trylock((pthread_mutex_t *)mutex));
}

int mtx_timedlock(mtx_t *restrict mutex, const struct timespec *restrict deadline)
{
    return result(pthread_mutex_timedlock((pthread_mutex_t *)mutex, deadline));
}

int mtx_unlock(mtx_t *mutex)
{
    return result(pthread_mutex_unlock((pthread_mutex_t *)mutex));
}

void mtx_destroy(mtx_t *mutex)
{
    pthread_mutex_destroy((pthread_mutex_t *)mutex);
}

int cnd_init(cnd_t *cond)
{
    return result(pthread_cond_init((pthread_cond_t *)cond, NULL));
}

int cnd_signal(cnd_t *cond)
{
    return result(pthread_cond_signal((pthread_cond_t *)cond));
}

int cnd_broadcast(cnd_t *cond)
{
    return result(pthread_cond_broadcast((pthread_cond_t *)cond));
}

int cnd_wait(cnd_t *cond, mtx_t *mutex)
{
    return result(pthread_cond_wait((pthread_cond_t *)cond, (pthread_mutex_t *)mutex));
}

int cnd_timedwait(cnd_t *restrict cond, mtx_t *restrict mutex, const struct timespec *restrict deadline)
{
    return result(pthread_cond_timedwait((pthread_cond_t *)cond, (pthread_mutex_t *)mutex, deadline));
}

void cnd_destroy(cnd_t *cond)
{
    pthread_cond_destroy((pthread_cond_t *)cond);
}

void call_once(once_flag *flag, void (*func)(void))
{
    pthread_once((pthread_once_t *)flag, func);
}
