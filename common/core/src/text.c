/* Text without printf (see hs/text.h). */
#include "hs/text.h"

#include <stdarg.h>
#include <string.h>

size_t hs_u64_digits(char *out, uint64_t v)
{
    char reversed[HS_U64_DIGITS_MAX];
    size_t n = 0;
    do
        reversed[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (size_t k = 0; k < n; k++)
        out[k] = reversed[n - 1 - k];
    return n;
}

hs_text hs_text_in(char *buf, size_t size)
{
    buf[0] = '\0';
    return (hs_text){.buf = buf, .size = size, .len = 0};
}

void hs_text_add(hs_text *t, const char *s)
{
    size_t room = t->size - 1 - t->len, n = strlen(s);
    if (n > room)
        n = room;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

void hs_text_cat(hs_text *t, ...)
{
    va_list pieces;
    va_start(pieces, t);
    for (const char *s; (s = va_arg(pieces, const char *)) != NULL;)
        hs_text_add(t, s);
    va_end(pieces);
}
