/* One side of a proxied exchange: a non-blocking socket, its libev watcher, and what is waiting to
 * be written to it: `out` (bytes the balancer produced: a rewritten head, re-encoded chunks) and
 * then `pass` (bytes passed through untouched, which stay in the other side's input buffer until
 * they are written: no copy). */
#ifndef GANTRY_LB_IO_H
#define GANTRY_LB_IO_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

struct lb_endpoint {
    int fd;
    int events; /* EV_READ | EV_WRITE currently watched */
    ev_io io;
    struct buf out;
    const char *pass;
    size_t pass_len;
};

enum lb_flush { LB_FLUSH_DONE, LB_FLUSH_PENDING, LB_FLUSH_ERROR };

/* Watches exactly `events` (0 stops the watcher). */
void lb_endpoint_watch(struct ev_loop *loop, struct lb_endpoint *e, int events);
static inline bool lb_endpoint_idle(const struct lb_endpoint *e)
{
    return buf_unread(&e->out) == 0 && e->pass_len == 0;
}
/* Writes out, then pass, with one writev; *passed says how many pass bytes went (the caller
 * consumes them from where they live). DONE: nothing left; PENDING: wait for EV_WRITE. */
enum lb_flush lb_endpoint_flush(struct lb_endpoint *e, size_t *passed, size_t *written);
/* Reads into b (which must have room); returns bytes read, 0 at EOF, -1 with EAGAIN, or -2 on
 * an error. */
ssize_t lb_read(int fd, struct buf *b);

#endif
