#include "lb/io.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

void lb_endpoint_watch(struct ev_loop *loop, struct lb_endpoint *e, int events)
{
    if (e->events == events && (events == 0) == !ev_is_active(&e->io))
        return;
    ev_io_stop(loop, &e->io);
    e->events = events;
    if (!events)
        return;
    ev_io_set(&e->io, e->fd, events);
    ev_io_start(loop, &e->io);
}

enum lb_flush lb_endpoint_flush(struct lb_endpoint *e, size_t *passed, size_t *written)
{
    *passed = 0;
    *written = 0;
    while (!lb_endpoint_idle(e)) {
        struct iovec iov[2];
        int n = 0;
        size_t head = buf_unread(&e->out);
        if (head)
            iov[n++] = (struct iovec){buf_head(&e->out), head};
        if (e->pass_len)
            iov[n++] = (struct iovec){(void *)e->pass, e->pass_len};
        ssize_t w = writev(e->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? LB_FLUSH_PENDING : LB_FLUSH_ERROR;
        }
        size_t from_out = (size_t)w < head ? (size_t)w : head;
        buf_consume(&e->out, from_out);
        size_t from_pass = (size_t)w - from_out;
        e->pass += from_pass;
        e->pass_len -= from_pass;
        *passed += from_pass;
        *written += (size_t)w;
    }
    if (e->pass_len == 0)
        e->pass = NULL;
    return LB_FLUSH_DONE;
}

ssize_t lb_read(int fd, struct buf *b)
{
    for (;;) {
        ssize_t n = read(fd, buf_tail(b), buf_room(b));
        if (n > 0) {
            buf_commit(b, (size_t)n);
            return n;
        }
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN ? -1 : -2;
    }
}
