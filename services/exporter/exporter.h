/* The exporter's I/O: the derived tables (hs.target-status.v1, hs.variation.v1, hs.capacity-status.v1) read
 * whole into memory, and the latest period of every series served on /metrics for Prometheus to scrape.
 * main.c reads the configuration; exporter_map.c maps records to samples; README.md lists the metrics.
 */
#ifndef EXPORTER_H
#define EXPORTER_H

#include "hs/config.h"

/* The options of the exporter (main.c declares them for --help; exporter.c reads them). */
extern const hs_option exporter_options[];

/* Runs the exporter until SIGTERM or SIGINT: returns the process exit status (0 after a clean stop). */
int exporter_run(const hs_config *config);

#endif
