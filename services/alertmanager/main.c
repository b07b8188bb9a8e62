/* The alertmanager sink process: its configuration (hs_reader_options and sink_options in sink.c, --help)
 * and logging; the work is sink.c's. It owns no calculation, only delivery: hs.alerts.v1 to Alertmanager's
 * API v2 (README.md).
 */
#include "hs/reader.h"
#include "sink.h"

int main(int argc, char **argv)
{
    static const hs_reader_program program = {
        .program = "alertmanager-sink",
        .service = "alertmanager",
        .summary =
            "The healthsignals alertmanager sink: keeps Alertmanagers in step with hs.alerts.v1 through "
            "POST /api/v2/alerts.",
        .options = sink_options,
        .run = sink_run,
    };
    return hs_reader_main(&program, argc, argv);
}
