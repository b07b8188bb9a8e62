/* The rules a calculation holds: owned copies of the Rule messages of its service, sorted by id, replaced
 * and deleted by id as hs.rules.v1 changes. Shared by the services that read rules, so that each keeps only
 * what it does with a rule.
 */
#ifndef HS_RULES_H
#define HS_RULES_H

#include <stddef.h>

#include "healthsignals/v1/rule.pb-c.h"
#include "hs/err.h"

typedef struct hs_rule_set {
    Healthsignals__V1__Rule **items; /* sorted by id */
    size_t count, cap;
} hs_rule_set;

/* Frees every rule held and the array; the set is empty after. */
void hs_rule_set_free(hs_rule_set *set);

/* A copy of `rule` that owns all its memory (free with protobuf_c_message_free_unpacked); NULL when out of
 * memory. */
Healthsignals__V1__Rule *hs_rule_copy(const Healthsignals__V1__Rule *rule);

/* Puts `fresh` (its id is `id`; the set owns it from now on) in the place of the rule called `id`, or
 * deletes that rule when `fresh` is NULL. *old receives the rule it replaced or deleted (the caller owns it
 * now), or NULL when there was none. HS_ERR_NOMEM, with the set unchanged and `fresh` still the caller's,
 * when the array cannot grow; putting a rule back right after it was replaced or deleted never needs to. */
hs_err hs_rule_set_put(hs_rule_set *set, const char *id, Healthsignals__V1__Rule *fresh,
                       Healthsignals__V1__Rule **old, hs_error *error);

#endif
