/* count: the smallest service. For every grouping key of its input topics it counts the live facts
 * (distinct record keys; a tombstone removes one) and publishes a FactCount when the count changes. It has
 * no domain meaning: it exercises the runtime in tests and benchmarks, and is the template of a service.
 */
#ifndef COUNT_H
#define COUNT_H

#include "hs/calc.h"

/* The calculation, for the runtime and for `hsctl calc count`. Inputs: hs.indicators.v1 and
 * hs.capacity.v1. Output: hs.fact-counts.v1, key "<group>/<topic>". */
extern const hs_calc count_calc;

#endif
