/* The calculations hsctl can run offline. Each service adds its hs_calc here when it lands. */
#include "calcs.h"

#include <string.h>

#include "budget.h"
#include "capacity.h"
#include "count.h"
#include "targets.h"
#include "variation.h"

static const hs_calc *const calcs[] = {
    &count_calc, &capacity_calc, &targets_calc, &variation_calc, &budget_calc,
};

const hs_calc *hsctl_calc_find(const char *name)
{
    for (size_t i = 0; i < sizeof calcs / sizeof calcs[0]; i++)
        if (strcmp(calcs[i]->name, name) == 0)
            return calcs[i];
    return NULL;
}

const hs_calc *const *hsctl_calc_all(size_t *count)
{
    *count = sizeof calcs / sizeof calcs[0];
    return calcs;
}
