/* Byte buffers. Unread bytes are data[off, len). A growable buffer reallocates as it fills, never
 * beyond `max` (so a peer cannot make it unbounded); a fixed buffer wraps caller memory and never
 * reallocates. Appends fail with -1 rather than exceed the limit: the caller decides what that
 * means (a 431, a closed connection, a refused config). */
#ifndef GANTRY_COMMON_BUF_H
#define GANTRY_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
    char *data;
    size_t off; /* first unread byte */
    size_t len; /* end of the bytes written */
    size_t cap;
    size_t max;
    bool fixed;
};

void buf_init(struct buf *b, size_t max);
void buf_init_fixed(struct buf *b, void *mem, size_t cap);
void buf_free(struct buf *b);

static inline size_t buf_unread(const struct buf *b)
{
    return b->len - b->off;
}
static inline char *buf_head(const struct buf *b)
{
    return b->data + b->off;
}
static inline char *buf_tail(const struct buf *b)
{
    return b->data + b->len;
}
static inline size_t buf_room(const struct buf *b)
{
    return b->cap - b->len;
}

/* Makes room for `extra` more bytes after len (compacting first); -1 past the limit or on ENOMEM.
 */
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *bytes, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Marks n bytes written directly at buf_tail() (after a read(2), say). */
void buf_commit(struct buf *b, size_t n);
/* Drops n unread bytes from the front. */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
/* Gives a growable buffer's memory back while keeping its limit: an idle connection holds none. */
void buf_release(struct buf *b);

#endif
