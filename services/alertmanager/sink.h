/* The alertmanager sink's I/O: hs.alerts.v1 read whole into a table, and every Alertmanager kept in step
 * with it through POST /api/v2/alerts — libcurl's multi interface driven by the libuv loop, no blocking
 * call on it. main.c reads the configuration and serves /metrics; README.md says what is sent when.
 */
#ifndef ALERTMANAGER_SINK_H
#define ALERTMANAGER_SINK_H

#include "hs/config.h"
#include "hs/err.h"

/* The options of the sink (main.c declares them for --help; sink.c reads them). */
extern const hs_option sink_options[];

/* Runs the sink until SIGTERM or SIGINT: returns the process exit status (0 after a clean stop). */
int sink_run(const hs_config *config);

#endif
