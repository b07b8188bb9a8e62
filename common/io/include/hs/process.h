/* The standard process metrics every /metrics page carries, under the names Prometheus' own client libraries
 * use (process_cpu_seconds_total, process_resident_memory_bytes, process_start_time_seconds,
 * process_open_fds, ...), so that dashboards and alerts written for any exporter work on our services; plus
 * hs_build_info, which says what is running. Linux only: read from /proc; elsewhere the process series are
 * left out. The runtime calls hs_process_metrics_refresh() whenever /metrics is rendered.
 */
#ifndef HS_PROCESS_H
#define HS_PROCESS_H

#include <stdbool.h>

#include "hs/metrics.h"

/* The version /metrics reports in hs_build_info: the CMake project version. */
#ifndef HS_VERSION
#define HS_VERSION "unknown"
#endif

typedef struct hs_process_stats {
    double cpu_seconds;        /* user + system CPU time, all threads */
    double start_time_seconds; /* since the Unix epoch, to the kernel's clock tick */
    double resident_bytes;
    double virtual_bytes;
    double open_fds;
    double max_fds; /* the soft limit on open files; -1 when unlimited */
} hs_process_stats;

/* Reads this process' figures from /proc/self/stat, /proc/self/statm, /proc/self/fd, /proc/stat and
 * getrlimit(). Returns false (and leaves `out` partly filled) when /proc cannot be read. */
bool hs_process_stats_read(hs_process_stats *out);

/* The CPU time and start time from one line of /proc/<pid>/stat, given the clock ticks per second and the
 * boot time (the `btime` of /proc/stat, seconds since the epoch). The process name, field 2, is in
 * parentheses and may itself hold spaces and ')', so the fields are counted from the last ')'. Returns
 * false for a line that does not have them. */
bool hs_process_stat_parse(const char *line, long ticks_per_second, double boot_time_seconds,
                           double *cpu_seconds, double *start_time_seconds);

/* Adds or refreshes, in `m`: process_cpu_seconds_total (counter), process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_start_time_seconds, process_open_fds, process_max_fds, and
 * hs_build_info{version, librdkafka} 1 (the librdkafka version is the library's at run time). */
void hs_process_metrics_refresh(hs_metrics *m);

#endif
