/* Quality flags (see hs/flags.h). */
#include "hs/flags.h"

#include <stdlib.h>
#include <string.h>

bool hs_flags_add(hs_flags *flags, const char *flag)
{
    if (flags->count == flags->cap) {
        size_t cap = flags->cap ? 2 * flags->cap : 8;
        const char **items = realloc((void *)flags->items, cap * sizeof *items);
        if (!items)
            return false;
        flags->items = items;
        flags->cap = cap;
    }
    flags->items[flags->count++] = flag;
    return true;
}

bool hs_flags_add_all(hs_flags *flags, char *const *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!hs_flags_add(flags, items[i]))
            return false;
    return true;
}

static int compare_flags(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void hs_flags_sort_unique(hs_flags *flags)
{
    if (!flags->count)
        return;
    qsort((void *)flags->items, flags->count, sizeof *flags->items, compare_flags);
    size_t kept = 1;
    for (size_t i = 1; i < flags->count; i++)
        if (strcmp(flags->items[i], flags->items[kept - 1]) != 0)
            flags->items[kept++] = flags->items[i];
    flags->count = kept;
}

void hs_flags_free(hs_flags *flags)
{
    free((void *)flags->items);
    *flags = (hs_flags){0};
}
