#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "demo/demo.h"

/* Timeouts in seconds. */
#define HEADER_TIMEOUT 10.0 /* from the first byte of a head to its end */
#define IDLE_TIMEOUT 60.0   /* keep-alive between requests, and a stalled body or write */
#define LINGER_TIMEOUT 2.0  /* draining input after the last response, before close */
#define STOP_GRACE 5.0      /* in-flight requests at SIGTERM */

enum {
    READ_CHUNK = 16384,
    IN_MAX = 16384 + DEMO_MAX_REQUEST_BODY + 65536, /* head + an /echo body + a read */
    OUT_MAX = 4 * 1024 * 1024,
    OUT_HIGH = 65536,    /* above this, pipelined requests wait for the client to read */
    INLINE_BODY = 16384, /* larger default bodies are written from the pattern, not copied */
    ACCEPT_BATCH = 64,
};

enum conn_state {
    CONN_HEAD,    /* reading a request head (or idle) */
    CONN_BODY,    /* reading a request body */
    CONN_READY,   /* request complete, response not started */
    CONN_DELAY,   /* waiting for the request's latency */
    CONN_CLOSING, /* writing the last response */
    CONN_LINGER,  /* last response written, draining input until EOF */
};

struct conn {
    struct demo_server *srv;
    struct conn *prev, *next;
    ev_io io;
    ev_timer timer; /* the deadline below, re-armed lazily */
    ev_timer delay; /* a request's latency */
    int fd;
    int events;
    enum conn_state state;
    struct buf in, out;
    int64_t stream_left; /* default-body bytes to write after out, from the pattern */
    ev_tstamp deadline, armed;
    bool head_started;
    size_t head_seen; /* bytes of a partial head the parser has scanned */
    bool peer_eof;

    /* The request in progress. */
    struct demo_request req;
    enum http1_body body;
    int64_t body_left;
    struct http1_chunked chunked;
    size_t body_len; /* decoded body bytes so far */
    /* /echo keeps its head and decoded body at the front of `in` until it answers: the head is
     * in[0, echo_head), the body in[echo_head, echo_head + body_len); raw_off is how much of
     * `in` has been examined. */
    bool echo;
    size_t echo_head, raw_off;
};

static void conn_close(struct conn *c);
static int conn_flush(struct conn *c);
static int conn_process(struct conn *c);
static int close_if_spent(struct conn *c);

/* ---- deadlines ---- */

/* Most requests move the deadline later, which costs nothing here: the timer notices when it
 * fires. Only an earlier deadline re-arms it. */
static void set_deadline(struct conn *c, double timeout)
{
    struct ev_loop *loop = c->srv->loop;
    c->deadline = ev_now(loop) + timeout;
    if (ev_is_active(&c->timer) && c->deadline >= c->armed)
        return;
    ev_timer_stop(loop, &c->timer);
    ev_timer_set(&c->timer, timeout, 0.);
    ev_timer_start(loop, &c->timer);
    c->armed = c->deadline;
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct conn *c = w->data;
    ev_tstamp left = c->deadline - ev_now(loop);
    if (left > 0.001) {
        ev_timer_set(&c->timer, left, 0.);
        ev_timer_start(loop, &c->timer);
        c->armed = c->deadline;
        return;
    }
    conn_close(c);
}

/* ---- events ---- */

static bool has_output(const struct conn *c)
{
    return buf_unread(&c->out) || c->stream_left;
}

static bool backlogged(const struct conn *c)
{
    return buf_unread(&c->out) >= OUT_HIGH || c->stream_left;
}

static void update_events(struct conn *c)
{
    int want = 0;
    if (c->state == CONN_LINGER ||
        ((c->state == CONN_HEAD || c->state == CONN_BODY) && !c->peer_eof && !backlogged(c)))
        want |= EV_READ;
    if (has_output(c))
        want |= EV_WRITE;
    if (want == c->events)
        return;
    ev_io_stop(c->srv->loop, &c->io);
    ev_io_set(&c->io, c->fd, want);
    if (want)
        ev_io_start(c->srv->loop, &c->io);
    c->events = want;
}

/* ---- responses ---- */

static void reset_request(struct conn *c)
{
    c->body = HTTP1_BODY_NONE;
    c->body_left = 0;
    c->body_len = 0;
    c->echo = false;
    c->echo_head = c->raw_off = 0;
}

/* The last response: nothing more is read for requests, and the connection closes after it. */
static void respond_error(struct conn *c, int status, const char *why)
{
    char text[200];
    snprintf(text, sizeof text, "%d %s: %s\n", status, http1_reason(status), why);
    buf_reset(&c->in);
    reset_request(c);
    c->head_started = false;
    if (demo_put_text(c->srv, &c->out, status, text, false, true, false) < 0)
        buf_reset(&c->out); /* cannot happen below OUT_HIGH; close without an answer */
    c->state = CONN_CLOSING;
}

/* The bytes of the default body: small ones inline, large ones streamed from the pattern. */
static int put_default_body(struct conn *c, int64_t size)
{
    if (size > INLINE_BODY) {
        c->stream_left = size;
        return 0;
    }
    if (size == 0)
        return 0;
    if (buf_reserve(&c->out, (size_t)size) < 0)
        return -1;
    char *p = buf_tail(&c->out);
    memset(p, 'x', (size_t)size - 1);
    p[size - 1] = '\n';
    buf_commit(&c->out, (size_t)size);
    return 0;
}

/* The request line and headers as received (minus leading empty lines), then the body. */
static int put_echo(struct conn *c, bool close)
{
    const char *head = buf_head(&c->in);
    size_t skip = 0;
    while (skip + 2 <= c->echo_head && head[skip] == '\r' && head[skip + 1] == '\n')
        skip += 2;
    size_t head_len = c->echo_head - skip;
    int64_t total = (int64_t)(head_len + c->body_len);
    const struct demo_request *r = &c->req;
    if (demo_put_head(c->srv, &c->out, 200, total, close, r->confirm_keep_alive) < 0)
        return -1;
    if (r->no_body)
        return 0;
    if (buf_append(&c->out, head + skip, head_len) < 0)
        return -1;
    return buf_append(&c->out, head + c->echo_head, c->body_len);
}

static int put_response(struct conn *c, bool close)
{
    struct demo_server *srv = c->srv;
    const struct demo_request *r = &c->req;
    bool ka = r->confirm_keep_alive;
    switch (r->route) {
    case ROUTE_ERROR:
        return demo_put_text(srv, &c->out, r->status, r->message, r->no_body, close, ka);
    case ROUTE_HEALTH:
        return demo_put_text(srv, &c->out, srv->healthy ? 200 : 503,
                             srv->healthy ? "ok\n" : "failing\n", r->no_body, close, ka);
    case ROUTE_HEALTH_FAIL:
        if (srv->healthy)
            log_info("health set to failing");
        srv->healthy = false;
        return demo_put_text(srv, &c->out, 200, "health: failing\n", r->no_body, close, ka);
    case ROUTE_HEALTH_OK:
        if (!srv->healthy)
            log_info("health set to ok");
        srv->healthy = true;
        return demo_put_text(srv, &c->out, 200, "health: ok\n", r->no_body, close, ka);
    case ROUTE_ECHO:
        return put_echo(c, close);
    default:
        if (demo_put_head(srv, &c->out, 200, r->size, close, ka) < 0)
            return -1;
        return r->no_body ? 0 : put_default_body(c, r->size);
    }
}

static void finish_request(struct conn *c)
{
    bool close = !c->req.keep_alive || c->srv->stopping;
    if (put_response(c, close) < 0) {
        respond_error(c, 500, "response too large");
        return;
    }
    if (c->echo)
        buf_consume(&c->in, c->raw_off);
    reset_request(c);
    c->state = close ? CONN_CLOSING : CONN_HEAD;
    set_deadline(c, IDLE_TIMEOUT);
}

static void on_delay(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct conn *c = w->data;
    finish_request(c);
    if (conn_process(c) < 0 || conn_flush(c) < 0 || close_if_spent(c) < 0)
        return;
    update_events(c);
}

static void start_response(struct conn *c)
{
    if (c->req.cpu_ms)
        demo_burn_cpu(c->req.cpu_ms);
    if (c->req.latency_ms == 0) {
        finish_request(c);
        return;
    }
    c->state = CONN_DELAY;
    ev_timer_set(&c->delay, (double)c->req.latency_ms / 1000.0, 0.);
    ev_timer_start(c->srv->loop, &c->delay);
    set_deadline(c, (double)c->req.latency_ms / 1000.0 + IDLE_TIMEOUT);
}

/* ---- requests ---- */

static void begin_body(struct conn *c, const struct http1_msg *m)
{
    c->body = m->body;
    if (m->body == HTTP1_BODY_CHUNKED)
        http1_chunked_init(&c->chunked);
    else
        c->body_left = m->body == HTTP1_BODY_LENGTH ? m->content_length : 0;
    bool has_body = m->body == HTTP1_BODY_CHUNKED || c->body_left > 0;
    c->state = has_body ? CONN_BODY : CONN_READY;
    /* Ask for the body only when the client waits for our word and has not sent it anyway. */
    if (has_body && m->expect_continue && buf_unread(&c->in) == c->raw_off)
        buf_append_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
}

/* Returns true when a whole head was taken. */
static bool read_head(struct conn *c)
{
    struct demo_server *srv = c->srv;
    size_t avail = buf_unread(&c->in);
    if (avail == 0)
        return false;
    struct http1_msg *m = &srv->msg;
    size_t seen = c->head_started ? c->head_seen : 0;
    enum http1_result r = http1_parse_request(buf_head(&c->in), avail, seen, NULL, m);
    if (r == HTTP1_NEED_MORE) {
        if (!c->head_started)
            set_deadline(c, HEADER_TIMEOUT);
        c->head_started = true;
        c->head_seen = avail;
        return false;
    }
    c->head_started = false;
    if (r == HTTP1_ERROR) {
        respond_error(c, m->error_status, m->error);
        return false;
    }
    if (m->body == HTTP1_BODY_LENGTH && m->content_length > DEMO_MAX_REQUEST_BODY) {
        respond_error(c, 413, "request body larger than 1 MiB");
        return false;
    }
    demo_plan(srv, m, &c->req);
    c->echo = c->req.route == ROUTE_ECHO;
    if (c->echo)
        c->echo_head = c->raw_off = m->head_len;
    else
        buf_consume(&c->in, m->head_len);
    begin_body(c, m);
    return true;
}

static void take_length_body(struct conn *c)
{
    size_t avail = buf_unread(&c->in) - c->raw_off;
    size_t n = (uint64_t)c->body_left < avail ? (size_t)c->body_left : avail;
    c->body_left -= (int64_t)n;
    if (c->echo) {
        c->raw_off += n;
        c->body_len += n;
    } else {
        buf_consume(&c->in, n);
    }
}

/* Decodes in place: /echo's data moves down to the end of the decoded body, which never passes
 * the raw bytes still to decode. Returns -1 after answering an error. */
static int take_chunked_body(struct conn *c)
{
    while (buf_unread(&c->in) > c->raw_off) {
        char *base = buf_head(&c->in);
        size_t n;
        struct http1_slice data;
        enum http1_result r = http1_chunked_feed(&c->chunked, base + c->raw_off,
                                                 buf_unread(&c->in) - c->raw_off, &n, &data);
        if (r == HTTP1_ERROR) {
            respond_error(c, c->chunked.error_status, c->chunked.error);
            return -1;
        }
        if (c->body_len + data.len > DEMO_MAX_REQUEST_BODY) {
            respond_error(c, 413, "request body larger than 1 MiB");
            return -1;
        }
        if (c->echo) {
            memmove(base + c->echo_head + c->body_len, data.p, data.len);
            c->raw_off += n;
        } else {
            buf_consume(&c->in, n);
        }
        c->body_len += data.len;
        if (r == HTTP1_DONE) {
            c->body = HTTP1_BODY_NONE;
            return 0;
        }
    }
    return 0;
}

/* Returns true when the body is complete. */
static bool read_body(struct conn *c)
{
    if (c->body == HTTP1_BODY_CHUNKED) {
        if (take_chunked_body(c) < 0)
            return false;
    } else {
        take_length_body(c);
    }
    bool done = c->body == HTTP1_BODY_NONE || (c->body == HTTP1_BODY_LENGTH && !c->body_left);
    if (!done) {
        set_deadline(c, IDLE_TIMEOUT);
        return false;
    }
    c->state = CONN_READY;
    return true;
}

/* Answers every complete request in `in`, in order, until one must wait. Returns -1 if the
 * connection was closed. */
static int conn_process(struct conn *c)
{
    while (!backlogged(c)) {
        switch (c->state) {
        case CONN_HEAD:
            if (!read_head(c))
                return 0;
            break;
        case CONN_BODY:
            if (!read_body(c))
                return 0;
            break;
        case CONN_READY:
            start_response(c);
            break;
        default:
            return 0;
        }
    }
    return 0;
}

/* ---- I/O ---- */

static void start_linger(struct conn *c)
{
    shutdown(c->fd, SHUT_WR);
    buf_reset(&c->in);
    c->state = CONN_LINGER;
    set_deadline(c, LINGER_TIMEOUT);
}

static void consume_output(struct conn *c, size_t n)
{
    size_t from_out = n < buf_unread(&c->out) ? n : buf_unread(&c->out);
    buf_consume(&c->out, from_out);
    c->stream_left -= (int64_t)(n - from_out);
}

/* Writes what is pending, one writev per batch of responses. Returns -1 if it closed c. */
static int conn_flush(struct conn *c)
{
    while (has_output(c)) {
        struct iovec iov[3];
        int n = 0;
        if (buf_unread(&c->out))
            iov[n++] = (struct iovec){buf_head(&c->out), buf_unread(&c->out)};
        n += demo_pattern_iov(c->stream_left, iov + n);
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w < 0) {
            conn_close(c);
            return -1;
        }
        consume_output(c, (size_t)w);
        if (c->state != CONN_HEAD)
            set_deadline(c, IDLE_TIMEOUT);
    }
    if (has_output(c) || c->state != CONN_CLOSING)
        return 0;
    if (c->srv->stopping) {
        conn_close(c);
        return -1;
    }
    start_linger(c);
    return 0;
}

static int linger_read(struct conn *c)
{
    char scratch[4096];
    ssize_t n = read(c->fd, scratch, sizeof scratch);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
        return 0;
    conn_close(c);
    return -1;
}

/* Returns -1 if it closed c. */
static int conn_read(struct conn *c)
{
    if (c->state == CONN_LINGER)
        return linger_read(c);
    size_t room = IN_MAX - buf_unread(&c->in);
    if (room == 0) {
        respond_error(c, 413, "request too large");
        return 0;
    }
    if (buf_reserve(&c->in, room < READ_CHUNK ? room : READ_CHUNK) < 0) {
        conn_close(c);
        return -1;
    }
    ssize_t n = read(c->fd, buf_tail(&c->in), buf_room(&c->in));
    if (n > 0) {
        buf_commit(&c->in, (size_t)n);
        return 0;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n < 0 || (c->state == CONN_HEAD && buf_unread(&c->in) == 0 && !has_output(c))) {
        conn_close(c);
        return -1;
    }
    /* The client is done sending: answer what is complete, then close. */
    c->peer_eof = true;
    return 0;
}

/* After a peer's EOF, a connection with nothing left to answer goes. */
static int close_if_spent(struct conn *c)
{
    bool waiting = c->state == CONN_HEAD || c->state == CONN_BODY;
    if (!c->peer_eof || !waiting || has_output(c))
        return 0;
    conn_close(c);
    return -1;
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    struct conn *c = w->data;
    if ((revents & EV_WRITE) && conn_flush(c) < 0)
        return;
    if ((revents & EV_READ) && conn_read(c) < 0)
        return;
    if (conn_process(c) < 0 || conn_flush(c) < 0 || close_if_spent(c) < 0)
        return;
    update_events(c);
}

/* ---- connections ---- */

static void conn_open(struct demo_server *srv, int fd)
{
    struct conn *c = srv->free_conns;
    if (c)
        srv->free_conns = c->next;
    else if (!(c = malloc(sizeof *c))) {
        close(fd);
        return;
    }
    *c = (struct conn){.srv = srv, .fd = fd, .state = CONN_HEAD, .events = EV_READ};
    buf_init(&c->in, IN_MAX);
    buf_init(&c->out, OUT_MAX);
    ev_io_init(&c->io, on_io, fd, EV_READ);
    ev_init(&c->timer, on_timer);
    ev_init(&c->delay, on_delay);
    c->io.data = c->timer.data = c->delay.data = c;
    ev_io_start(srv->loop, &c->io);
    set_deadline(c, IDLE_TIMEOUT);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
}

static void conn_close(struct conn *c)
{
    struct demo_server *srv = c->srv;
    ev_io_stop(srv->loop, &c->io);
    ev_timer_stop(srv->loop, &c->timer);
    ev_timer_stop(srv->loop, &c->delay);
    close(c->fd);
    buf_free(&c->in);
    buf_free(&c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = srv->free_conns;
    srv->free_conns = c;
    srv->n_conns--;
    if (srv->stopping && srv->n_conns == 0)
        ev_break(srv->loop, EVBREAK_ALL);
}

static void on_accept_pause(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct demo_server *srv = w->data;
    if (!srv->stopping)
        ev_io_start(loop, &srv->accept_watcher);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct demo_server *srv = w->data;
    bool tcp = srv->settings->listen.ss.ss_family != AF_UNIX;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* The listener stays readable: pause rather than spin. */
                log_warn("accept: %s; pausing accepts for 100ms", strerror(errno));
                ev_io_stop(loop, &srv->accept_watcher);
                ev_timer_set(&srv->accept_pause, 0.1, 0.);
                ev_timer_start(loop, &srv->accept_pause);
            }
            return;
        }
        if (srv->n_conns >= DEMO_MAX_CONNS) {
            close(fd);
            continue;
        }
        if (tcp) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        conn_open(srv, fd);
    }
}

/* ---- the server ---- */

int demo_server_start(struct demo_server *srv, struct ev_loop *loop,
                      const struct demo_settings *settings, char *err, size_t errlen)
{
    memset(srv, 0, sizeof *srv);
    srv->loop = loop;
    srv->settings = settings;
    srv->healthy = true;
    srv->date_second = -1;
    srv->listen_fd = net_listen(&settings->listen, 4096, false, err, errlen);
    if (srv->listen_fd < 0)
        return -1;
    struct net_addr bound;
    if (net_bound_addr(srv->listen_fd, &bound) < 0) {
        snprintf(err, errlen, "getsockname: %s", strerror(errno));
        close(srv->listen_fd);
        return -1;
    }
    net_addr_format(&bound, srv->served_by, sizeof srv->served_by);
    int n = snprintf(srv->fixed_headers, sizeof srv->fixed_headers,
                     "X-Task-Id: %s\r\nX-Served-By: %s\r\n", settings->task_id, srv->served_by);
    srv->fixed_headers_len = (size_t)n;
    ev_io_init(&srv->accept_watcher, on_accept, srv->listen_fd, EV_READ);
    srv->accept_watcher.data = srv;
    ev_init(&srv->accept_pause, on_accept_pause);
    srv->accept_pause.data = srv;
    ev_io_start(loop, &srv->accept_watcher);
    return 0;
}

static void on_grace(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct demo_server *srv = w->data;
    log_warn("stop: %zu connections still busy after %.0fs; closing them", srv->n_conns,
             STOP_GRACE);
    while (srv->conns)
        conn_close(srv->conns);
    ev_break(loop, EVBREAK_ALL);
}

/* Whether a connection has a request in flight, which then finishes (with Connection: close). */
static bool busy(const struct conn *c)
{
    if (c->state == CONN_HEAD)
        return has_output(c);
    return c->state != CONN_LINGER;
}

void demo_server_stop(struct demo_server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    ev_io_stop(srv->loop, &srv->accept_watcher);
    ev_timer_stop(srv->loop, &srv->accept_pause);
    close(srv->listen_fd);
    srv->listen_fd = -1;
    struct conn *next;
    for (struct conn *c = srv->conns; c; c = next) {
        next = c->next;
        if (!busy(c))
            conn_close(c);
        else if (c->state == CONN_HEAD)
            c->state = CONN_CLOSING; /* its last response is being written */
    }
    log_info("stopping: %zu requests in flight", srv->n_conns);
    if (srv->n_conns == 0) {
        ev_break(srv->loop, EVBREAK_ALL);
        return;
    }
    ev_timer_init(&srv->grace, on_grace, STOP_GRACE, 0.);
    srv->grace.data = srv;
    ev_timer_start(srv->loop, &srv->grace);
}

void demo_server_free(struct demo_server *srv)
{
    while (srv->conns)
        conn_close(srv->conns);
    ev_timer_stop(srv->loop, &srv->grace);
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    while (srv->free_conns) {
        struct conn *c = srv->free_conns;
        srv->free_conns = c->next;
        free(c);
    }
}
