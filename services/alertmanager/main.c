/* The alertmanager sink process: its configuration (sink_options in sink.c, --help) and logging; the work
 * is sink.c's. It owns no calculation, only delivery: hs.alerts.v1 to Alertmanager's API v2 (README.md).
 */
#include <stdio.h>

#include "hs/alloc.h"
#include "hs/config.h"
#include "hs/log.h"
#include "hs/runtime.h"
#include "sink.h"

int main(int argc, char **argv)
{
    hs_alloc_tune();
    hs_log_set_service("alertmanager");
    const hs_option *sets[] = {sink_options, NULL};
    bool help = false;
    hs_error error = {0};
    hs_config *config = NULL;
    extern char **environ;
    hs_err err = hs_config_load(&config, argv[0],
                                "The healthsignals alertmanager sink: keeps Alertmanagers in step with "
                                "hs.alerts.v1 through POST /api/v2/alerts.",
                                "0.1.0", sets, argc, argv, environ, stdout, &help, &error);
    if (help)
        return HS_EXIT_OK;
    if (err != HS_OK) {
        fprintf(stderr, "alertmanager-sink: %s\n", error.message);
        return err == HS_ERR_USAGE ? HS_EXIT_USAGE : HS_EXIT_CONFIG;
    }
    hs_config_log(config);
    int exit_code = sink_run(config);
    hs_config_free(config);
    return exit_code;
}
