/* The exporter process: its configuration (hs_reader_options and exporter_options in exporter.c, --help)
 * and logging; the work is exporter.c's. It owns no calculation, only delivery: the derived tables to
 * Prometheus (README.md).
 */
#include "exporter.h"
#include "hs/reader.h"

int main(int argc, char **argv)
{
    static const hs_reader_program program = {
        .program = "exporter",
        .service = "exporter",
        .summary =
            "The healthsignals exporter: serves the latest period of every series of the derived tables "
            "(target status, regional variation, capacity status) on /metrics for Prometheus.",
        .options = exporter_options,
        .run = exporter_run,
    };
    return hs_reader_main(&program, argc, argv);
}
