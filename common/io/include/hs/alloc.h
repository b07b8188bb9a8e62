/* hs_alloc: which malloc the process runs on, and its settings. Builds link jemalloc (HS_JEMALLOC, the
 * default; not under the sanitizers, which bring their own allocator): a service frees on one thread what
 * another allocated (consumed records come from librdkafka's fetch thread, delivered ones go back from the
 * commit's), and glibc's arenas serialise that on a lock. The settings are compiled in (MALLOC_CONF in the
 * environment still overrides them); docs/benchmarks.md has the measurements behind them.
 */
#ifndef HS_ALLOC_H
#define HS_ALLOC_H

/* Whether the compiler builds this code under a sanitizer that brings its own malloc (whichever way it was
 * asked for: HS_SANITIZE, HS_TSAN or -fsanitize in CFLAGS): HS_ALLOC_ASAN or HS_ALLOC_TSAN. */
#if defined(__SANITIZE_ADDRESS__) /* gcc */
#define HS_ALLOC_ASAN 1
#elif defined(__SANITIZE_THREAD__)
#define HS_ALLOC_TSAN 1
#elif defined(__has_feature) /* clang */
#if __has_feature(address_sanitizer)
#define HS_ALLOC_ASAN 1
#elif __has_feature(thread_sanitizer)
#define HS_ALLOC_TSAN 1
#endif
#endif

/* "jemalloc <version>", "AddressSanitizer malloc", "ThreadSanitizer malloc", "glibc <version> malloc" or
 * "system malloc": for the start-up log line. */
const char *hs_alloc_name(void);

/* Applies the settings that cannot be compiled in (glibc: the mmap threshold). Call first thing in main. */
void hs_alloc_tune(void);

#endif
