#include "cli/output.h"

#include <string.h>
#include <unistd.h>

void output_init(struct output *o, const char *name, int width, int fd)
{
    memset(o, 0, sizeof *o);
    o->name = name;
    o->width = width;
    o->fd = fd;
    buf_init_fixed(&o->line, o->line_mem, sizeof o->line_mem);
}

static void keep_tail(struct output *o, const char *text, size_t n)
{
    char *slot = o->tail[o->tail_next % OUTPUT_TAIL_LINES];
    if (n >= OUTPUT_TAIL_LEN)
        n = OUTPUT_TAIL_LEN - 1;
    memcpy(slot, text, n);
    slot[n] = '\0';
    o->tail_next++;
}

static void emit(struct output *o, const char *text, size_t n)
{
    if (n && text[n - 1] == '\r') /* CRLF output must not leave a stray \r in the terminal */
        n--;
    char out[64 + OUTPUT_LINE_MAX + 2];
    int head = snprintf(out, 64, "%-*s | ", o->width, o->name);
    if (head < 0 || head >= 64)
        head = 0; /* a name too long for a prefix: print the line bare rather than lose it */
    memcpy(out + head, text, n);
    out[(size_t)head + n] = '\n';
    /* Output is best effort: a closed stdout must not stop the supervision. */
    ssize_t ignored = write(o->fd, out, (size_t)head + n + 1);
    (void)ignored;
    keep_tail(o, text, n);
}

void output_feed(struct output *o, const char *bytes, size_t n)
{
    while (n) {
        const char *nl = memchr(bytes, '\n', n);
        size_t piece = nl ? (size_t)(nl - bytes) : n;
        size_t room = buf_room(&o->line);
        if (piece > room)
            piece = room;
        buf_append(&o->line, bytes, piece);
        bytes += piece;
        n -= piece;
        bool complete = n && *bytes == '\n';
        if (complete) {
            bytes++;
            n--;
        }
        if (complete || buf_room(&o->line) == 0) {
            emit(o, buf_head(&o->line), buf_unread(&o->line));
            buf_reset(&o->line);
        }
    }
}

void output_flush(struct output *o)
{
    if (buf_unread(&o->line) == 0)
        return;
    emit(o, buf_head(&o->line), buf_unread(&o->line));
    buf_reset(&o->line);
}

size_t output_print_tail(const struct output *o, const char *header, FILE *out)
{
    size_t n = o->tail_next < OUTPUT_TAIL_LINES ? o->tail_next : OUTPUT_TAIL_LINES;
    if (n)
        fprintf(out, "%s\n", header);
    for (size_t i = o->tail_next - n; i < o->tail_next; i++)
        fprintf(out, "  %-*s | %s\n", o->width, o->name, o->tail[i % OUTPUT_TAIL_LINES]);
    return n;
}
