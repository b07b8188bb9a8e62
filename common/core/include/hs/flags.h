/* Quality flags gathered from several facts: a result computed from figures flagged "epj-transition" or
 * "lpr3-transition" carries every flag of its inputs, sorted and without repeats (docs/domain.md §3, "Data
 * breaks"). The strings are borrowed from the facts, which must outlive the list.
 */
#ifndef HS_FLAGS_H
#define HS_FLAGS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct hs_flags {
    const char **items;
    size_t count, cap;
} hs_flags;

/* Appends `flag`; false when out of memory (the list is unchanged). */
bool hs_flags_add(hs_flags *flags, const char *flag);

/* Appends `n` flags of a fact (its quality_flags array); false when out of memory. */
bool hs_flags_add_all(hs_flags *flags, char *const *items, size_t n);

/* Sorts the list and drops repeats: the form results carry. */
void hs_flags_sort_unique(hs_flags *flags);

/* Frees the list's array (not the strings) and empties it. */
void hs_flags_free(hs_flags *flags);

#endif
