#include "common/http_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"

/* REQUEST_TIMEOUT: a request must arrive whole within it of its first byte (a client that
 * trickles bytes cannot hold a connection for long); between requests the idle timeout runs. */
enum { HEAD_MAX = 16 * 1024, READ_CHUNK = 16 * 1024 };
static const double REQUEST_TIMEOUT = 10.0;

struct http_conn {
    struct http_conn *next, **prev;
    struct http_server *server;
    int fd;
    ev_io io;
    ev_timer idle;
    struct buf in;
    struct buf out;
    size_t parsed_len;
    bool close_after_write;
    bool continue_sent; /* "100 Continue" for the request being read */
    bool mid_request;   /* bytes of a request are in: its deadline runs, not the idle timer */
};

static void conn_close(struct http_conn *c)
{
    ev_io_stop(c->server->loop, &c->io);
    ev_timer_stop(c->server->loop, &c->idle);
    close(c->fd);
    *c->prev = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->server->n_conns--;
    buf_free(&c->in);
    buf_free(&c->out);
    free(c);
}

static void conn_want(struct http_conn *c, int events)
{
    if (c->io.events == events)
        return;
    ev_io_stop(c->server->loop, &c->io);
    ev_io_set(&c->io, c->fd, events);
    ev_io_start(c->server->loop, &c->io);
}

static void queue_response(struct http_conn *c, const struct http_response *r, bool keep_alive)
{
    buf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
               r->status, http1_reason(r->status), r->content_type ? r->content_type : "text/plain",
               r->body_len, r->extra_headers, keep_alive ? "" : "Connection: close\r\n");
    if (r->body_len)
        buf_append(&c->out, r->body, r->body_len);
    if (!keep_alive)
        c->close_after_write = true;
}

static void queue_error(struct http_conn *c, int status, const char *why)
{
    char body[256];
    int n = snprintf(body, sizeof body, "%s\n", why);
    struct http_response r = {.status = status, .body = body, .body_len = (size_t)n};
    queue_response(c, &r, false);
}

/* The body of a chunked request, decoded into a new buffer; -1 when incomplete, -2 when bad. */
static int decode_chunked(const char *p, size_t len, size_t max, struct buf *body, size_t *used,
                          int *status)
{
    struct http1_chunked ch;
    http1_chunked_init(&ch);
    size_t off = 0;
    for (;;) {
        size_t consumed = 0;
        struct http1_slice data = {0};
        enum http1_result r = http1_chunked_feed(&ch, p + off, len - off, &consumed, &data);
        off += consumed;
        if (data.len && (buf_unread(body) + data.len > max || buf_append(body, data.p, data.len))) {
            *status = 413;
            return -2;
        }
        if (r == HTTP1_DONE) {
            *used = off;
            return 0;
        }
        if (r == HTTP1_ERROR) {
            *status = ch.error_status;
            return -2;
        }
        if (off >= len)
            return -1;
    }
}

/* Handles the first complete request in c->in, if there is one. Returns 1 when one was handled,
 * 0 when more bytes are needed, -1 when the connection must close after the queued answer. */
static int handle_one(struct http_conn *c)
{
    struct http_server *s = c->server;
    struct http1_msg msg;
    struct http1_limits limits = http1_default_limits;
    limits.max_head = HEAD_MAX;
    size_t avail = buf_unread(&c->in);
    enum http1_result pr =
        http1_parse_request(buf_head(&c->in), avail, c->parsed_len, &limits, &msg);
    /* Resuming the search for the head's end is only right while the head is incomplete: once it
     * is whole, a wait for the body must find it again from the start. */
    c->parsed_len = pr == HTTP1_NEED_MORE ? avail : 0;
    if (pr == HTTP1_NEED_MORE)
        return 0;
    if (pr == HTTP1_ERROR) {
        queue_error(c, msg.error_status, msg.error);
        return -1;
    }
    const char *rest = buf_head(&c->in) + msg.head_len;
    size_t rest_len = avail - msg.head_len;
    struct buf chunked_body = {0};
    const char *body = rest;
    size_t body_len = 0, used = 0;
    if (msg.body == HTTP1_BODY_LENGTH) {
        if ((uint64_t)msg.content_length > s->max_body) {
            queue_error(c, 413, "request body too large");
            return -1;
        }
        if (rest_len < (size_t)msg.content_length) {
            /* A client that sent Expect: 100-continue waits for this before its body. */
            if (msg.expect_continue && !c->continue_sent) {
                buf_append_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
                c->continue_sent = true;
            }
            return 0;
        }
        body_len = used = (size_t)msg.content_length;
    } else if (msg.body == HTTP1_BODY_CHUNKED) {
        buf_init(&chunked_body, s->max_body + 1);
        int status = 400;
        int rc = decode_chunked(rest, rest_len, s->max_body, &chunked_body, &used, &status);
        if (rc != 0) {
            buf_free(&chunked_body);
            if (rc == -1)
                return 0;
            queue_error(c, status, "bad chunked body");
            return -1;
        }
        body = buf_head(&chunked_body);
        body_len = buf_unread(&chunked_body);
    }
    struct http_request req = {.msg = &msg, .body = body, .body_len = body_len};
    struct http_response resp = {.status = 500};
    s->handler(s->ctx, &req, &resp);
    queue_response(c, &resp, msg.keep_alive);
    free(resp.body);
    buf_free(&chunked_body);
    buf_consume(&c->in, msg.head_len + used);
    c->parsed_len = 0;
    c->continue_sent = false;
    return msg.keep_alive ? 1 : -1;
}

static void conn_flush(struct http_conn *c)
{
    while (buf_unread(&c->out)) {
        ssize_t n = send(c->fd, buf_head(&c->out), buf_unread(&c->out), MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            conn_want(c, EV_WRITE);
            return;
        }
        if (n <= 0) {
            conn_close(c);
            return;
        }
        buf_consume(&c->out, (size_t)n);
    }
    buf_reset(&c->out);
    if (c->close_after_write) {
        conn_close(c);
        return;
    }
    conn_want(c, EV_READ);
}

static void conn_process(struct http_conn *c)
{
    int rc;
    while ((rc = handle_one(c)) == 1)
        ;
    if (rc == -1)
        c->close_after_write = true;
    if (rc == 0 && buf_unread(&c->in) == 0)
        buf_reset(&c->in);
    conn_flush(c);
}

/* The connection's one timer: the idle timeout between requests, the request's deadline once
 * its first byte is in. */
static void arm_timer(struct http_conn *c)
{
    bool mid = buf_unread(&c->in) > 0;
    if (mid && c->mid_request)
        return; /* the deadline keeps running */
    c->mid_request = mid;
    c->idle.repeat = mid ? REQUEST_TIMEOUT : c->server->idle_timeout;
    ev_timer_again(c->server->loop, &c->idle);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct http_conn *c = w->data;
    (void)loop;
    if (revents & EV_WRITE) {
        conn_flush(c);
        return;
    }
    if (c->close_after_write)
        return;
    if (buf_reserve(&c->in, READ_CHUNK) < 0) {
        queue_error(c, 413, "request too large");
        conn_flush(c);
        return;
    }
    ssize_t n = recv(c->fd, buf_tail(&c->in), buf_room(&c->in), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    buf_commit(&c->in, (size_t)n);
    conn_process(c);
}

static void on_io_then_timer(struct ev_loop *loop, ev_io *w, int revents)
{
    struct http_conn *c = w->data;
    struct http_server *s = c->server;
    int before = s->n_conns;
    on_io(loop, w, revents);
    /* on_io may have closed (freed) c; nothing else opens or closes a connection meanwhile */
    if (s->n_conns == before)
        arm_timer(c);
}

static void on_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    conn_close(w->data);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct http_server *s = w->data;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (s->n_conns >= s->max_conns) {
            close(fd); /* over the limit: the client retries, the server stays bounded */
            continue;
        }
        struct http_conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->server = s;
        c->fd = fd;
        buf_init(&c->in, HEAD_MAX + s->max_body + 64 * 1024);
        buf_init(&c->out, 64 * 1024 * 1024);
        ev_io_init(&c->io, on_io_then_timer, fd, EV_READ);
        c->io.data = c;
        ev_timer_init(&c->idle, on_idle, 0, s->idle_timeout);
        c->idle.data = c;
        ev_io_start(loop, &c->io);
        ev_timer_again(loop, &c->idle);
        c->next = s->conns;
        c->prev = &s->conns;
        if (s->conns)
            s->conns->prev = &c->next;
        s->conns = c;
        s->n_conns++;
    }
}

int http_server_start(struct http_server *s, struct ev_loop *loop, const struct net_addr *addr,
                      size_t max_body, http_handler_fn handler, void *ctx, char *why,
                      size_t why_size)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->max_body = max_body;
    s->max_conns = 256;
    s->idle_timeout = 60.0;
    s->handler = handler;
    s->ctx = ctx;
    s->fd = net_listen(addr, 128, false, why, why_size);
    if (s->fd < 0)
        return -1;
    net_bound_addr(s->fd, &s->bound);
    ev_io_init(&s->accept_watcher, on_accept, s->fd, EV_READ);
    s->accept_watcher.data = s;
    ev_io_start(loop, &s->accept_watcher);
    return 0;
}

void http_server_stop(struct http_server *s)
{
    if (s->fd <= 0)
        return;
    ev_io_stop(s->loop, &s->accept_watcher);
    close(s->fd);
    s->fd = -1;
    while (s->conns)
        conn_close(s->conns);
}
