/* Client connections: reading request heads, routing them, answering what the balancer answers
 * itself, and the end of every request (counters, access log, keep-alive or close). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "lb/access_log.h"
#include "lb/engine.h"

static void on_client_io(struct ev_loop *loop, ev_io *io, int revents);
static void on_client_timer(struct ev_loop *loop, ev_timer *t, int revents);
static void process_head(struct lb_client *c);

static const struct lb_settings *settings(const struct lb_client *c)
{
    return &c->wg->gen->settings;
}

void lb_client_arm_timer(struct lb_client *c, int64_t ms)
{
    ev_timer_stop(c->w->loop, &c->timer);
    if (ms <= 0)
        return;
    ev_timer_set(&c->timer, (double)ms / 1000.0, 0);
    ev_timer_start(c->w->loop, &c->timer);
}

static void peer_to_text(struct lb_client *c)
{
    const void *addr = c->peer.sa.sa_family == AF_INET6 ? (const void *)&c->peer.in6.sin6_addr
                                                        : (const void *)&c->peer.in4.sin_addr;
    if (c->peer.sa.sa_family != AF_INET && c->peer.sa.sa_family != AF_INET6) {
        snprintf(c->peer_text, sizeof c->peer_text, "unix");
        return;
    }
    inet_ntop(c->peer.sa.sa_family, addr, c->peer_text, sizeof c->peer_text);
    if (c->peer.sa.sa_family == AF_INET6 && strncmp(c->peer_text, "::ffff:", 7) == 0 &&
        strchr(c->peer_text, '.')) /* an IPv4 client on a dual-stack socket */
        memmove(c->peer_text, c->peer_text + 7, strlen(c->peer_text + 7) + 1);
}

void lb_client_accept(struct lb_worker *w, struct lb_wgen *wg, size_t listener, int fd,
                      const struct sockaddr *peer)
{
    struct lb_client *c = calloc(1, sizeof *c);
    if (!c) {
        atomic_fetch_sub(&w->ctx->connections, 1);
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->w = w;
    c->wg = wg;
    wg->users++;
    c->listener = &wg->gen->routes->listeners[listener];
    c->stats = wg->gen->listener_stats[listener];
    memcpy(&c->peer, peer,
           peer->sa_family == AF_INET6  ? sizeof c->peer.in6
           : peer->sa_family == AF_INET ? sizeof c->peer.in4
                                        : sizeof c->peer.sa);
    peer_to_text(c);
    c->ep.fd = fd;
    ev_init(&c->ep.io, on_client_io);
    c->ep.io.data = c;
    ev_init(&c->timer, on_client_timer);
    c->timer.data = c;
    buf_init(&c->ep.out, LB_OUT_LIMIT * 2);
    buf_init(&c->in, lb_client_buffer_size(&wg->gen->settings));
    c->state = CLIENT_HEAD;
    c->next = w->clients;
    if (w->clients)
        w->clients->prev = c;
    w->clients = c;
    w->n_clients++;
    lb_count(c->stats, w->id, LB_C_NEW_CONNECTIONS, 1);
    lb_count(c->stats, w->id, LB_C_ACTIVE_CONNECTIONS, 1);
    lb_endpoint_watch(w->loop, &c->ep, EV_READ);
    lb_client_arm_timer(c, settings(c)->client_header_timeout_ms);
}

void lb_client_close(struct lb_client *c)
{
    struct lb_worker *w = c->w;
    if (c->up)
        lb_proxy_abort(c);
    lb_client_release_target(c);
    ev_timer_stop(w->loop, &c->timer);
    lb_endpoint_watch(w->loop, &c->ep, 0);
    close(c->ep.fd);
    buf_reset(&c->in);
    buf_reset(&c->ep.out);
    lb_sbuf_release(w, &c->in);
    lb_sbuf_release(w, &c->ep.out);
    free(c->log_request);
    lb_count(c->stats, w->id, LB_C_ACTIVE_CONNECTIONS, -1);
    atomic_fetch_sub(&w->ctx->connections, 1);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->n_clients--;
    lb_wgen_unuse(w, c->wg);
    free(c);
    lb_worker_client_gone(w);
}

void lb_client_stop(struct lb_client *c)
{
    c->keep_alive = false;
    if (c->state == CLIENT_HEAD && buf_unread(&c->in) == 0)
        lb_client_close(c);
}

void lb_client_count_error(struct lb_client *c, enum lb_counter kind)
{
    lb_count(c->stats, c->w->id, kind, 1);
}

/* -- answers the balancer makes ---------------------------------------------------------------- */

void lb_client_respond(struct lb_client *c, int status, const char *content_type, const char *body,
                       size_t body_len, const char *location, bool close)
{
    struct lb_worker *w = c->w;
    if (close)
        c->keep_alive = false;
    c->status = status;
    if (status >= 400) /* ALB's HTTPCode_ELB_4XX/5XX: what the balancer answered itself */
        lb_count(c->stats, w->id, status < 500 ? LB_C_ELB_4XX : LB_C_ELB_5XX, 1);
    struct buf *out = &c->ep.out;
    lb_sbuf_prepare(w, out);
    buf_printf(out,
               "HTTP/1.1 %d %s\r\nServer: gantry\r\n%sContent-Type: %s\r\n"
               "Content-Length: %zu\r\n",
               status, http1_reason(status), lb_worker_date(w), content_type, body_len);
    if (location)
        buf_printf(out, "Location: %s\r\n", location);
    if (!c->keep_alive)
        buf_append_str(out, "Connection: close\r\n");
    else if (c->http10)
        buf_append_str(out, "Connection: keep-alive\r\n");
    buf_append(out, "\r\n", 2);
    c->head_out = (int64_t)buf_unread(out);
    if (c->method != HTTP1_METHOD_HEAD)
        buf_append(out, body, body_len);
    c->state = CLIENT_RESPOND;
    lb_client_flush(c);
}

static void respond_error(struct lb_client *c, int status, const char *detail, bool close)
{
    char body[256];
    int n = snprintf(body, sizeof body, "%d %s%s%s\n", status, http1_reason(status),
                     detail ? ": " : "", detail ? detail : "");
    lb_client_respond(c, status, "text/plain; charset=utf-8", body,
                      (size_t)n < sizeof body ? (size_t)n : sizeof body - 1, NULL, close);
}

void lb_client_flush(struct lb_client *c)
{
    size_t passed, written;
    enum lb_flush r = lb_endpoint_flush(&c->ep, &passed, &written);
    c->bytes_out += (int64_t)written;
    if (r == LB_FLUSH_ERROR) {
        lb_client_close(c);
        return;
    }
    if (r == LB_FLUSH_PENDING) {
        lb_endpoint_watch(c->w->loop, &c->ep, EV_WRITE);
        lb_client_arm_timer(c, settings(c)->idle_timeout_ms);
        return;
    }
    lb_client_request_done(c);
}

/* -- the end of a request ---------------------------------------------------------------------- */

static void log_access(struct lb_client *c)
{
    struct lb_access_log *log = c->w->ctx->access_log;
    if (!log || !settings(c)->access_log || !c->log_request)
        return;
    /* log_request holds "METHOD\0target\0host" */
    const char *method = c->log_request;
    const char *target = method + strlen(method) + 1;
    const char *host = target + strlen(target) + 1;
    struct lb_access_entry e = {
        .client = c->peer_text,
        .method = method,
        .method_len = strlen(method),
        .target = target,
        .target_len = strlen(target),
        .host = host,
        .host_len = strlen(host),
        .listener = c->listener->name,
        .target_addr = c->target ? c->target->address_text : "",
        .status = c->status,
        .bytes_sent = c->bytes_out,
        .body_bytes = c->bytes_out > c->head_out ? c->bytes_out - c->head_out : 0,
        .http_minor = c->http10 ? 0 : 1,
        .duration_us = (clock_mono_ns() - c->started_ns) / 1000,
        .request_id = c->request_id,
        .request_id_len = strlen(c->request_id),
        .wall_ms = clock_wall_ms(),
    };
    lb_access_log_add(log, c->w->id, &e);
}

/* A connection's next request uses the configuration in force when it arrives. */
static bool follow_generation(struct lb_client *c)
{
    struct lb_worker *w = c->w;
    if (!w->current || c->wg == w->current)
        return true;
    const struct lb_listener *l = lb_routes_listener(w->current->gen->routes, c->listener->name);
    if (!l || l->listen.len != c->listener->listen.len ||
        memcmp(&l->listen.ss, &c->listener->listen.ss, l->listen.len) != 0)
        return false; /* its listener is gone: the connection ends with this request */
    struct lb_wgen *old = c->wg;
    c->wg = w->current;
    c->wg->users++;
    c->listener = l;
    c->stats = c->wg->gen->listener_stats[l->index];
    c->in.max = lb_client_buffer_size(&c->wg->gen->settings);
    if (c->in.max < c->in.len) /* a smaller limit after a reload: what is read stays */
        c->in.max = c->in.len;
    lb_wgen_unuse(w, old);
    return true;
}

void lb_client_request_done(struct lb_client *c)
{
    struct lb_worker *w = c->w;
    lb_count(c->stats, w->id, lb_status_counter(c->status), 1);
    lb_count(c->stats, w->id, LB_C_BYTES_OUT, c->bytes_out);
    log_access(c);
    free(c->log_request);
    c->log_request = NULL;
    lb_client_release_target(c);
    c->served_one = true;
    if (!c->keep_alive || w->stopping || !follow_generation(c)) {
        lb_client_close(c);
        return;
    }
    c->state = CLIENT_HEAD;
    c->parsed = 0;
    lb_endpoint_watch(w->loop, &c->ep, EV_READ);
    if (buf_unread(&c->in)) {
        /* A pipelined request is already here. It is taken from the loop, not from here: an
         * answer the balancer makes itself ends in this function again, and a long pipeline
         * would otherwise recurse once per request until the stack ran out. */
        lb_client_arm_timer(c, settings(c)->client_header_timeout_ms);
        ev_feed_event(w->loop, &c->ep.io, EV_READ);
        return;
    }
    lb_sbuf_release(w, &c->in); /* an idle connection holds no buffer */
    lb_sbuf_release(w, &c->ep.out);
    lb_client_arm_timer(c, settings(c)->idle_timeout_ms);
}

/* -- reading and routing requests -------------------------------------------------------------- */

static void remember_request(struct lb_client *c, const struct http1_msg *m)
{
    if (!c->w->ctx->access_log || !settings(c)->access_log)
        return;
    size_t cap = 1024;
    size_t tl = m->target.len < cap ? m->target.len : cap;
    size_t hl = m->host.len < 256 ? m->host.len : 256;
    char *p = malloc(m->method.len + tl + hl + 3);
    if (!p)
        return;
    memcpy(p, m->method.p, m->method.len);
    p[m->method.len] = '\0';
    memcpy(p + m->method.len + 1, m->target.p, tl);
    p[m->method.len + 1 + tl] = '\0';
    memcpy(p + m->method.len + tl + 2, m->host.p, hl);
    p[m->method.len + tl + 2 + hl] = '\0';
    c->log_request = p;
}

static bool body_too_large(const struct lb_client *c, const struct http1_msg *m)
{
    int64_t max = settings(c)->max_body_size;
    return max > 0 && m->content_length > max;
}

/* A request the balancer answers itself: its body, if any, must not be taken for the next
 * request. One already in the buffer is skipped; one still to come closes the connection. */
void lb_client_skip_request(struct lb_client *c, const struct http1_msg *m)
{
    size_t total = m->head_len;
    bool whole_body = m->body == HTTP1_BODY_NONE ||
                      (m->body == HTTP1_BODY_LENGTH &&
                       (uint64_t)m->content_length <= buf_unread(&c->in) - m->head_len);
    if (whole_body && m->body == HTTP1_BODY_LENGTH)
        total += (size_t)m->content_length;
    if (!whole_body)
        c->keep_alive = false;
    buf_consume(&c->in, whole_body ? total : buf_unread(&c->in));
}

static void answer_action(struct lb_client *c, const struct lb_action *a, struct http1_msg *m)
{
    if (a->type == LB_ACTION_FIXED_RESPONSE) {
        lb_client_skip_request(c, m);
        lb_client_respond(c, a->status, a->content_type, a->body, a->body_len, NULL, false);
        return;
    }
    char location[2048];
    size_t n = lb_redirect_location(a, m, "http", c->listener->port, location, sizeof location);
    lb_client_skip_request(c, m);
    if (n == 0) {
        respond_error(c, 500, "cannot build the redirect location", true);
        return;
    }
    lb_client_respond(c, a->status, "text/plain", "", 0, location, false);
}

/* Only WebSocket upgrades are tunnelled, as ALB does; any other Upgrade (h2c, say) is dropped
 * with the other hop-by-hop fields and the request goes on as plain HTTP/1.1. */
static bool is_websocket_upgrade(const struct http1_msg *m)
{
    if (!m->upgrade)
        return false;
    const struct http1_header *h = http1_header_find(m, "upgrade");
    return h && h->value.len == 9 && http1_slice_eq(h->value, "websocket");
}

static void handle_request(struct lb_client *c, struct http1_msg *m)
{
    struct lb_worker *w = c->w;
    /* A keep-alive connection may have slept through a reload: its request uses the rules in
     * force now. When its listener is gone, the old rules serve this last request. */
    bool listener_kept = follow_generation(c);
    c->started_ns = clock_mono_ns();
    c->method = m->method_id;
    c->http10 = m->minor == 0;
    c->keep_alive = m->keep_alive && !w->stopping && listener_kept;
    c->expect_continue = m->expect_continue;
    c->upgrade = is_websocket_upgrade(m);
    c->bytes_out = 0;
    c->head_out = 0;
    c->status = 0;
    c->request_id[0] = '\0';
    c->retries = 0;
    c->replayed = false;
    c->may_have_seen = false;
    c->n_tried = 0;
    lb_body_init(&c->req_body, HTTP1_BODY_NONE, 0, false); /* no state from the last request */
    c->group = NULL;
    c->staged = false;
    c->replayable = false;
    lb_count(c->stats, w->id, LB_C_REQUESTS, 1);
    lb_count(c->stats, w->id, LB_C_BYTES_IN, (int64_t)m->head_len);
    remember_request(c, m);
    if (body_too_large(c, m)) {
        lb_client_count_error(c, LB_C_ERR_BAD_REQUEST);
        lb_client_skip_request(c, m);
        respond_error(c, 413, "the body exceeds max_body_size", true);
        return;
    }
    const struct lb_action *a = lb_route(c->listener, m, &c->peer.sa);
    if (a->type != LB_ACTION_FORWARD) {
        answer_action(c, a, m);
        return;
    }
    struct lb_target_group *group = lb_action_pick_group(a, lb_worker_random(w));
    lb_proxy_start(c, group);
}

static void process_head(struct lb_client *c)
{
    struct lb_worker *w = c->w;
    struct http1_msg *m = &w->msg;
    enum http1_result r = http1_parse_request(buf_head(&c->in), buf_unread(&c->in), c->parsed,
                                              &settings(c)->limits, m);
    c->parsed = buf_unread(&c->in);
    if (r == HTTP1_NEED_MORE)
        return;
    if (r == HTTP1_ERROR) {
        lb_client_count_error(c, LB_C_ERR_BAD_REQUEST);
        c->method = HTTP1_METHOD_OTHER;
        c->http10 = false;
        c->started_ns = clock_mono_ns();
        buf_consume(&c->in, buf_unread(&c->in));
        respond_error(c, m->error_status, m->error, true); /* what follows can't be trusted */
        return;
    }
    ev_timer_stop(w->loop, &c->timer);
    handle_request(c, m);
}

static void read_head(struct lb_client *c)
{
    bool was_empty = buf_unread(&c->in) == 0;
    ssize_t n = lb_client_read(c);
    if (n == -1) {
        if (!was_empty) /* bytes read before (a pipelined request): parse them now */
            process_head(c);
        return;
    }
    if (n == -3) { /* full: a head past every limit (the parser says so first) */
        lb_client_count_error(c, LB_C_ERR_BAD_REQUEST);
        buf_consume(&c->in, buf_unread(&c->in));
        respond_error(c, 431, "request header section too large", true);
        return;
    }
    if (n <= 0) { /* the client closed or failed: mid-request, nothing to answer */
        if (!was_empty)
            lb_client_count_error(c, LB_C_ERR_CLIENT_TIMEOUT);
        lb_client_close(c);
        return;
    }
    if (was_empty && c->served_one) /* a keep-alive connection's next request begins */
        lb_client_arm_timer(c, settings(c)->client_header_timeout_ms);
    process_head(c);
}

static void on_client_io(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    struct lb_client *c = io->data;
    switch (c->state) {
    case CLIENT_HEAD:
        if (revents & EV_READ)
            read_head(c);
        return;
    case CLIENT_RESPOND:
        if (revents & EV_WRITE)
            lb_client_flush(c);
        return;
    case CLIENT_FORWARD:
    case CLIENT_TUNNEL:
        if (revents & EV_WRITE) {
            lb_proxy_client_flushed(c);
            return; /* c may be gone */
        }
        if (revents & EV_READ)
            lb_proxy_client_readable(c);
        return;
    }
}

static void on_client_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct lb_client *c = t->data;
    if (c->state == CLIENT_HEAD && buf_unread(&c->in) > 0) {
        lb_client_count_error(c, LB_C_ERR_CLIENT_TIMEOUT);
        c->method = HTTP1_METHOD_OTHER;
        c->started_ns = clock_mono_ns();
        buf_consume(&c->in, buf_unread(&c->in));
        respond_error(c, 408, "the request head took too long", true);
        return;
    }
    if (c->state != CLIENT_HEAD)
        lb_client_count_error(c, LB_C_ERR_CLIENT_TIMEOUT);
    lb_client_close(c); /* idle keep-alive, or a client that stopped reading */
}
