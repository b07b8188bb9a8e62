/* Escaped '/'-joined record keys; see hs/key.h for the format. */
#include "hs/key.h"

#include <string.h>

hs_err hs_key_join(char out[HS_KEY_MAX], const char *const *parts, size_t count, hs_error *error)
{
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        if (i > 0) {
            if (n + 1 >= HS_KEY_MAX)
                goto too_long;
            out[n++] = '/';
        }
        for (const char *c = parts[i] ? parts[i] : ""; *c; c++) {
            const char *esc = *c == '%' ? "%25" : *c == '/' ? "%2F" : NULL;
            size_t len = esc ? 3 : 1;
            if (n + len >= HS_KEY_MAX)
                goto too_long;
            if (esc)
                memcpy(out + n, esc, 3);
            else
                out[n] = *c;
            n += len;
        }
    }
    out[n] = '\0';
    return HS_OK;

too_long:
    out[0] = '\0';
    return hs_error_set(error, HS_ERR_TOO_LARGE, "record key longer than %d bytes", HS_KEY_MAX - 1);
}

int hs_key_split(const char *key, char storage[HS_KEY_MAX], char **parts, size_t max)
{
    if (strlen(key) >= HS_KEY_MAX || max == 0)
        return -1;
    size_t count = 0, n = 0;
    parts[count++] = storage;
    for (const char *c = key; *c; c++) {
        if (*c == '/') {
            storage[n++] = '\0';
            if (count == max)
                return -1;
            parts[count++] = storage + n;
        } else if (*c == '%') {
            if (strncmp(c, "%25", 3) == 0)
                storage[n++] = '%';
            else if (strncmp(c, "%2F", 3) == 0)
                storage[n++] = '/';
            else
                return -1;
            c += 2;
        } else {
            storage[n++] = *c;
        }
    }
    storage[n] = '\0';
    return (int)count;
}
