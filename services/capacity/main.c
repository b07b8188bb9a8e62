/* The capacity service process: the capacity calculation under the runtime. Everything else —
 * configuration, Kafka, exactly-once, rebuild, dead letters, /metrics — is the runtime's (hs/runtime.h).
 */
#include "capacity.h"
#include "hs/runtime.h"

int main(int argc, char **argv)
{
    static const hs_service service = {
        .calc = &capacity_calc,
        .version = "0.1.0",
    };
    return hs_runtime_main(&service, argc, argv);
}
