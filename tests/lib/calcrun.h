/* Runs a calculation offline (hs_offline_run) over CloudEvents lines held in memory, for the unit tests of
 * the services: the output as text and as a table, key -> data. A driver failure fails the running cmocka
 * test.
 */
#ifndef HS_TEST_CALCRUN_H
#define HS_TEST_CALCRUN_H

#include <jansson.h>
#include <stdbool.h>

#include "hs/calc.h"
#include "hs/offline.h"

typedef struct calcrun {
    json_t *by_key; /* output key (the event's subject) -> data, the last of each key */
    hs_offline_stats stats;
    char *text; /* the driver's output: the final table, or every change with `changes` */
} calcrun;

/* Runs `calc` over `rules` (may be NULL) and then `input`; with `changes`, text holds every change. */
calcrun calcrun_run(const hs_calc *calc, const char *rules, const char *input, bool changes);

void calcrun_free(calcrun *run);

#endif
