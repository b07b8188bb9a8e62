/* The standard process metrics (see hs/process.h), read from /proc on every scrape: a handful of small
 * files, cheap next to rendering the page, and always current. The names, types and units are those of the
 * Prometheus client libraries' process collectors, which `promtool check metrics` holds them to.
 */
#include "hs/process.h"

#include <dirent.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The first line of `path` into `line`; false when it cannot be read. */
static bool read_line(const char *path, char *line, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(line, (int)size, f) != NULL;
    fclose(f);
    return ok;
}

bool hs_process_stat_parse(const char *line, long ticks_per_second, double boot_time_seconds,
                           double *cpu_seconds, double *start_time_seconds)
{
    const char *p = strrchr(line, ')');
    if (!p || ticks_per_second <= 0)
        return false;
    /* After the name: field 3 (state) onwards; utime is field 14, stime 15, starttime 22 (proc(5)). */
    unsigned long long utime = 0, stime = 0, starttime = 0;
    int field = 2;
    for (p++; *p && field < 22;) {
        while (*p == ' ')
            p++;
        if (!*p || *p == '\n')
            break;
        field++;
        unsigned long long v = strtoull(p, NULL, 10);
        if (field == 14)
            utime = v;
        else if (field == 15)
            stime = v;
        else if (field == 22)
            starttime = v;
        p = strchr(p, ' ');
        if (!p)
            break;
    }
    if (field < 22)
        return false;
    *cpu_seconds = (double)(utime + stime) / (double)ticks_per_second;
    *start_time_seconds = boot_time_seconds + (double)starttime / (double)ticks_per_second;
    return true;
}

/* The `btime` line of /proc/stat: when the machine booted, in seconds since the epoch; 0 when unknown. */
static double boot_time_seconds(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    char line[512];
    double btime = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "btime ", 6) == 0) {
            btime = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return btime;
}

/* Entries of /proc/self/fd, less the one this count itself holds open; -1 when unknown. */
static double open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    if (!dir)
        return -1;
    int own = dirfd(dir);
    double n = 0;
    const struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (strtol(e->d_name, NULL, 10) != own)
            n++;
    }
    closedir(dir);
    return n;
}

bool hs_process_stats_read(hs_process_stats *out)
{
    *out = (hs_process_stats){.open_fds = -1, .max_fds = -1};
    char line[1024];
    if (!read_line("/proc/self/stat", line, sizeof line) ||
        !hs_process_stat_parse(line, sysconf(_SC_CLK_TCK), boot_time_seconds(), &out->cpu_seconds,
                               &out->start_time_seconds))
        return false;
    /* statm: size resident shared text lib data dt, in pages. */
    long page = sysconf(_SC_PAGESIZE);
    if (!read_line("/proc/self/statm", line, sizeof line) || page <= 0)
        return false;
    char *end;
    unsigned long long size = strtoull(line, &end, 10);
    unsigned long long resident = strtoull(end, NULL, 10);
    out->virtual_bytes = (double)size * (double)page;
    out->resident_bytes = (double)resident * (double)page;
    out->open_fds = open_fds();
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
        out->max_fds = (double)limit.rlim_cur;
    return out->open_fds >= 0;
}

void hs_process_metrics_refresh(hs_metrics *m)
{
    hs_gauge_set(hs_metrics_gauge_l(m, "hs_build_info",
                                    "Always 1; the labels say which healthsignals and librdkafka are running",
                                    "version", HS_VERSION, "librdkafka", rd_kafka_version_str(), NULL),
                 1);
    hs_process_stats st;
    if (!hs_process_stats_read(&st))
        return; /* not Linux, or no /proc: no process series rather than wrong ones */
    hs_gauge_set(hs_metrics_counter_mirror(m, "process_cpu_seconds_total",
                                           "Total user and system CPU time spent in seconds.", NULL),
                 st.cpu_seconds);
    hs_gauge_set(hs_metrics_gauge(m, "process_resident_memory_bytes", "Resident memory size in bytes.", NULL),
                 st.resident_bytes);
    hs_gauge_set(hs_metrics_gauge(m, "process_virtual_memory_bytes", "Virtual memory size in bytes.", NULL),
                 st.virtual_bytes);
    hs_gauge_set(hs_metrics_gauge(m, "process_start_time_seconds",
                                  "Start time of the process since unix epoch in seconds.", NULL),
                 st.start_time_seconds);
    hs_gauge_set(hs_metrics_gauge(m, "process_open_fds", "Number of open file descriptors.", NULL),
                 st.open_fds);
    if (st.max_fds >= 0)
        hs_gauge_set(hs_metrics_gauge(m, "process_max_fds", "Maximum number of open file descriptors.", NULL),
                     st.max_fds);
}
