/* capacity: utilisation and escalation levels from capacity observations (docs/domain.md §8). Every
 * CapacityObservation on hs.capacity.v1 becomes a CapacityStatus on hs.capacity-status.v1 — utilisation,
 * change from the previous period, an OPEL-style escalation level 1..4 with hysteresis — and regions and the
 * nation without an observation of their own get roll-ups summed from their members. A level at or above the
 * alert level raises a capacity alert on hs.alerts.v1, which resolves when the level falls back below it.
 */
#ifndef CAPACITY_H
#define CAPACITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hs/calc.h"

/* The calculation, for the runtime and for `hsctl calc capacity`. Inputs: hs.capacity.v1 and the
 * ESCALATION_LEVELS rules of service "capacity" on hs.rules.v1. Outputs: hs.capacity-status.v1 (key
 * resource/scope/period) and hs.alerts.v1 (key: fingerprint). */
extern const hs_calc capacity_calc;

/* Built-in defaults, used for a resource and scope no rule covers. */
#define CAPACITY_DEFAULT_THRESHOLD_2_PCT       85.0 /* level 2 from 85 % */
#define CAPACITY_DEFAULT_THRESHOLD_3_PCT       92.0 /* level 3 from 92 % */
#define CAPACITY_DEFAULT_THRESHOLD_4_PCT       97.0 /* level 4 from 97 % */
#define CAPACITY_DEFAULT_HYSTERESIS_PCT_POINTS 2.0
#define CAPACITY_DEFAULT_ALERT_LEVEL           3
#define CAPACITY_DEFAULT_RULE                  "capacity.default"

/* How one resource in one scope turns utilisation into levels: from a rule, or the defaults. */
typedef struct capacity_params {
    double thresholds_pct[3];     /* utilisation at which levels 2, 3, 4 start; strictly increasing */
    double hysteresis_pct_points; /* de-escalate only below the current level's threshold minus this */
    unsigned for_periods;         /* consecutive periods above the level before escalating; 0 = 1 */
    unsigned alert_level;         /* 1..4 */
} capacity_params;

/* One period of a series (one resource, one scope, one period kind), in period order. */
typedef struct capacity_point {
    int64_t ordinal;  /* hs_period_ordinal: consecutive periods differ by 1 */
    double available; /* units available */
    double occupied;  /* units in use */
} capacity_point;

/* The defaults above. */
capacity_params capacity_params_default(void);

/* True when `resource` is one of the built-in resources, known without a rule: beds.intensive,
 * beds.medical, beds.surgical, slots.operating, slots.outpatient. */
bool capacity_resource_builtin(const char *resource);

/* The region code ("1084") a hospital code names by the convention "<region code>-<name>"
 * ("1084-rigshospitalet"). Returns false for a code that does not follow it. */
bool capacity_hospital_region(const char *hospital_code, char region[5]);

/* Utilisation in percent, occupied / available * 100; false (and *pct untouched) when nothing is
 * available, or so little that the quotient is not a finite number (it is then never emitted, and counts
 * as nothing available). */
bool capacity_utilisation(double available, double occupied, double *pct);

/* The level the thresholds alone give: 1 + the number of thresholds the utilisation reaches (a value
 * exactly at a threshold is in the higher level). Nothing available with anything occupied is level 4;
 * nothing available and nothing occupied is level 1. `available` and `occupied` must be finite (counts
 * within HS_VALIDATE_COUNT_MAX, or sums of them): asserted, since a NaN would otherwise choose level 1. */
unsigned capacity_threshold_level(double available, double occupied, const capacity_params *params);

/* The levels of a series of `count` points in period order, into `levels` (count entries): start at level
 * 1; escalate to the lowest threshold level of the last for_periods points once that many consecutive
 * periods (ordinals without a gap) lie above the current level; de-escalate one level at a time while the
 * utilisation is below the current level's threshold minus the hysteresis. Depends only on the points. */
void capacity_levels(const capacity_point *points, size_t count, const capacity_params *params,
                     unsigned *levels);

#endif
