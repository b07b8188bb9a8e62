/* Text without printf, for the paths that write it on every record or alert: decimal numbers, and text
 * assembled piece by piece into a fixed buffer. What snprintf would write, at a fraction of its cost (a
 * tenth of a busy service's loop was once spent in vfprintf).
 */
#ifndef HS_TEXT_H
#define HS_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* The most digits a 64-bit unsigned number has in decimal (18 446 744 073 709 551 615). */
#define HS_U64_DIGITS_MAX 20

/* Writes `v` in decimal, without leading zeros ("0" for 0) and without a terminating NUL, to `out`: exactly
 * the digits, nothing past them, so `out` needs room for as many as `v` has (HS_U64_DIGITS_MAX at most).
 * Returns their number, 1..HS_U64_DIGITS_MAX. */
size_t hs_u64_digits(char *out, uint64_t v);

/* Text written piece by piece into a fixed buffer: each piece is cut off where the buffer ends, as snprintf
 * would, and the text is always terminated. Cheaper than one snprintf with many arguments, which is what
 * made building alerts costly. */
typedef struct hs_text {
    char *buf;
    size_t size; /* of buf, at least 1 */
    size_t len;
} hs_text;

/* An empty text in `buf` (`size` >= 1). */
hs_text hs_text_in(char *buf, size_t size);

/* Appends `s`. */
void hs_text_add(hs_text *t, const char *s);

/* Appends each string up to the terminating NULL. */
void hs_text_cat(hs_text *t, ...) __attribute__((sentinel));

#endif
