/* Record keys. A record's key is the identity of the fact it carries (docs/design.md §3, §4): its
 * components joined with '/', each escaped so that a component may itself contain '/' — '%' becomes "%25"
 * and '/' becomes "%2F", nothing else changes, so keys stay readable ("udredningsret.somatik.compliance/
 * region:1084/2023Q2"). Keys are text and compared as bytes.
 */
#ifndef HS_KEY_H
#define HS_KEY_H

#include <stddef.h>

#include "hs/err.h"

/* Longest key, terminator included. Longer keys are refused (HS_ERR_TOO_LARGE). */
#define HS_KEY_MAX 512

/* Joins `count` components into `out` (HS_KEY_MAX bytes), escaping each. */
hs_err hs_key_join(char out[HS_KEY_MAX], const char *const *parts, size_t count, hs_error *error);

/* Splits `key` into at most `max` components, unescaping each into `storage` (HS_KEY_MAX bytes, owned by
 * the caller; `parts` point into it). Returns the number of components, or -1 if the key has more than
 * `max` components, is too long, or holds an invalid escape. */
int hs_key_split(const char *key, char storage[HS_KEY_MAX], char **parts, size_t max);

#endif
