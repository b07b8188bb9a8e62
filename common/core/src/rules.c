/* The rules a calculation holds (see hs/rules.h). */
#include "hs/rules.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hs/table.h"

typedef Healthsignals__V1__Rule rule_msg;

void hs_rule_set_free(hs_rule_set *set)
{
    for (size_t i = 0; i < set->count; i++)
        protobuf_c_message_free_unpacked(&set->items[i]->base, NULL);
    free(set->items);
    *set = (hs_rule_set){0};
}

rule_msg *hs_rule_copy(const rule_msg *rule)
{
    size_t len = protobuf_c_message_get_packed_size(&rule->base);
    uint8_t *bytes = malloc(len ? len : 1);
    if (!bytes)
        return NULL;
    protobuf_c_message_pack(&rule->base, bytes);
    rule_msg *copy =
        (rule_msg *)protobuf_c_message_unpack(&healthsignals__v1__rule__descriptor, NULL, len, bytes);
    free(bytes);
    return copy;
}

hs_err hs_rule_set_put(hs_rule_set *set, const char *id, rule_msg *fresh, rule_msg **old, hs_error *error)
{
    size_t lo = 0, hi = set->count;
    while (lo < hi) { /* the first rule whose id is not below `id` */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(set->items[mid]->id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t at = lo;
    bool had = at < set->count && strcmp(set->items[at]->id, id) == 0;
    *old = had ? set->items[at] : NULL;
    if (had && fresh) {
        set->items[at] = fresh;
    } else if (had) {
        /* An array of pointers: sizeof *set->items is a pointer's size, meant. */
        memmove(&set->items[at], &set->items[at + 1],
                (set->count - at - 1) * sizeof *set->items); // NOLINT(bugprone-sizeof-expression)
        set->count--;
    } else if (fresh) {
        // NOLINTNEXTLINE(bugprone-sizeof-expression)
        rule_msg **grown = hs_array_grow(set->items, &set->cap, set->count, sizeof *grown, 8);
        if (!grown)
            return hs_error_set(error, HS_ERR_NOMEM, "out of memory storing rule %s", id);
        set->items = grown;
        memmove(&set->items[at + 1], &set->items[at],
                (set->count - at) * sizeof *set->items); // NOLINT(bugprone-sizeof-expression)
        set->items[at] = fresh;
        set->count++;
    }
    return HS_OK;
}
