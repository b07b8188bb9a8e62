/* The exporter process: its configuration (exporter_options in exporter.c, --help) and logging; the work is
 * exporter.c's. It owns no calculation, only delivery: the derived tables to Prometheus (README.md).
 */
#include <stdio.h>

#include "exporter.h"
#include "hs/alloc.h"
#include "hs/config.h"
#include "hs/log.h"
#include "hs/runtime.h"

int main(int argc, char **argv)
{
    hs_alloc_tune();
    hs_log_set_service("exporter");
    const hs_option *sets[] = {exporter_options, NULL};
    bool help = false;
    hs_error error = {0};
    hs_config *config = NULL;
    extern char **environ;
    hs_err err = hs_config_load(&config, argv[0],
                                "The healthsignals exporter: serves the latest period of every series of the "
                                "derived tables (target status, regional variation, capacity status) on "
                                "/metrics for Prometheus.",
                                HS_VERSION, sets, argc, argv, environ, stdout, &help, &error);
    if (help)
        return HS_EXIT_OK;
    if (err != HS_OK) {
        fprintf(stderr, "exporter: %s\n", error.message);
        return err == HS_ERR_USAGE ? HS_EXIT_USAGE : HS_EXIT_CONFIG;
    }
    hs_config_log(config);
    int exit_code = exporter_run(config);
    hs_config_free(config);
    return exit_code;
}
