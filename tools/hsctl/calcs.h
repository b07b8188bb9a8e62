/* The registry of calculations available to `hsctl calc`. */
#ifndef HSCTL_CALCS_H
#define HSCTL_CALCS_H

#include <stddef.h>

#include "hs/calc.h"

/* The calculation of service `name`, or NULL. */
const hs_calc *hsctl_calc_find(const char *name);

/* All of them; `*count` receives their number. */
const hs_calc *const *hsctl_calc_all(size_t *count);

#endif
