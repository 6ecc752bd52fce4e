#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
    *b = (struct buf){.max = max};
}

void buf_init_fixed(struct buf *b, void *mem, size_t cap)
{
    *b = (struct buf){.data = mem, .cap = cap, .max = cap, .fixed = true};
}

void buf_free(struct buf *b)
{
    if (!b->fixed)
        free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

static void compact(struct buf *b)
{
    if (b->off == 0)
        return;
    memmove(b->data, b->data + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
}

int buf_reserve(struct buf *b, size_t extra)
{
    if (buf_room(b) >= extra)
        return 0;
    compact(b);
    if (buf_room(b) >= extra)
        return 0;
    if (b->fixed || extra > b->max - b->len)
        return -1;
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > b->max / 2 ? b->max : cap * 2;
    if (cap > b->max)
        cap = b->max;
    char *data = realloc(b->data, cap);
    if (!data)
        return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *bytes, size_t n)
{
    if (buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, bytes, n);
    b->len += n;
    return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n + 1) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void buf_commit(struct buf *b, size_t n)
{
    b->len += n;
}

void buf_consume(struct buf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

void buf_reset(struct buf *b)
{
    b->off = b->len = 0;
}

void buf_release(struct buf *b)
{
    if (b->fixed || buf_unread(b))
        return;
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}
