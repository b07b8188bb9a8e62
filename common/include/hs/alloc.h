/* hs_alloc: which malloc the process runs on, and its settings. Builds link jemalloc (HS_JEMALLOC, the
 * default; not under the sanitizers, which bring their own allocator): a service frees on one thread what
 * another allocated (consumed records come from librdkafka's fetch thread, delivered ones go back from the
 * commit's), and glibc's arenas serialise that on a lock. The settings are compiled in (MALLOC_CONF in the
 * environment still overrides them); README.md, "Benchmarks", has the measurements behind them.
 */
#ifndef HS_ALLOC_H
#define HS_ALLOC_H

/* "jemalloc <version>", "AddressSanitizer malloc", "glibc <version> malloc" or "system malloc": for the
 * start-up log line. */
const char *hs_alloc_name(void);

/* Applies the settings that cannot be compiled in (glibc: the mmap threshold). Call first thing in main. */
void hs_alloc_tune(void);

#endif
