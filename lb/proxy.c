/* Forwarding a request to a target and its response back: connections to targets (new or from
 * the worker's pool), request and response heads rewritten as a proxy must (hop-by-hop fields,
 * X-Forwarded-*, X-Request-Id), bodies streamed both ways, 1xx responses relayed, upgrades
 * tunnelled, and the balancer's own 502, 503 and 504 when a target fails. */
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "lb/engine.h"
#include "lb/sticky.h"

static void on_upstream_io(struct ev_loop *loop, ev_io *io, int revents);
static void on_upstream_timer(struct ev_loop *loop, ev_timer *t, int revents);
static void send_request(struct lb_upstream *u);
static void pump_response(struct lb_upstream *u);
static void tunnel_update(struct lb_client *c);

static const struct lb_settings *settings(const struct lb_client *c)
{
    return &c->wg->gen->settings;
}

static struct lb_stat_block *group_stats(const struct lb_client *c)
{
    return c->wg->gen->group_stats[c->group->index];
}

/* Counted for the group and for the target that failed. */
static void count_connection_error(const struct lb_client *c)
{
    lb_count(group_stats(c), c->w->id, LB_C_TARGET_CONNECTION_ERRORS, 1);
    if (c->target)
        lb_count(c->target->stats, c->w->id, LB_C_TARGET_CONNECTION_ERRORS, 1);
}

static void arm_upstream_timer(struct lb_upstream *u, int64_t ms)
{
    ev_timer_stop(u->w->loop, &u->timer);
    if (ms <= 0)
        return;
    ev_timer_set(&u->timer, (double)ms / 1000.0, 0);
    ev_timer_start(u->w->loop, &u->timer);
}

/* -- target connections ------------------------------------------------------------------------ */

void lb_upstream_close(struct lb_upstream *u)
{
    struct lb_worker *w = u->w;
    struct lb_pool *pool = u->pool;
    if (u->state == UP_IDLE) {
        struct lb_upstream **link = &pool->idle;
        while (*link && *link != u)
            link = &(*link)->next_idle;
        if (*link)
            *link = u->next_idle;
        pool->n_idle--;
    }
    ev_timer_stop(w->loop, &u->timer);
    lb_endpoint_watch(w->loop, &u->ep, 0);
    close(u->ep.fd);
    buf_reset(&u->in);
    lb_buf_detach(w, &u->in);
    buf_reset(&u->ep.out);
    lb_sbuf_release(w, &u->ep.out);
    free(u);
    lb_pool_closed_one(w, pool);
}

static struct lb_upstream *upstream_alloc(struct lb_worker *w, struct lb_pool *pool, int fd)
{
    struct lb_upstream *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->w = w;
    u->pool = pool;
    u->ep.fd = fd;
    ev_init(&u->ep.io, on_upstream_io);
    u->ep.io.data = u;
    ev_init(&u->timer, on_upstream_timer);
    u->timer.data = u;
    /* A request head may be as large as max_header_size allows (1 MiB), plus what is added. */
    buf_init(&u->ep.out, 1024 * 1024 + 2 * LB_OUT_LIMIT);
    pool->n_open++;
    return u;
}

/* A new connection; *failed is set when it was refused at once (loopback does that). */
static struct lb_upstream *upstream_connect(struct lb_worker *w, struct lb_pool *pool, bool *failed)
{
    *failed = false;
    int fd = socket(net_addr_family(&pool->addr), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *failed = true;
        return NULL; /* errno says why */
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = connect(fd, (const struct sockaddr *)&pool->addr.ss, pool->addr.len);
    if (rc < 0 && errno != EINPROGRESS) {
        int why = errno;
        close(fd);
        errno = why; /* for the caller: the target's fault or ours */
        *failed = true;
        return NULL;
    }
    struct lb_upstream *u = upstream_alloc(w, pool, fd);
    if (!u) {
        close(fd);
        *failed = true;
        return NULL;
    }
    u->state = rc == 0 ? UP_SENDING : UP_CONNECTING;
    return u;
}

static struct lb_upstream *pool_take(struct lb_pool *pool)
{
    struct lb_upstream *u = pool->idle;
    if (!u)
        return NULL;
    pool->idle = u->next_idle;
    pool->n_idle--;
    u->next_idle = NULL;
    u->reused = true;
    ev_timer_stop(u->w->loop, &u->timer);
    return u;
}

static void pool_give(struct lb_upstream *u, int64_t keepalive, int64_t idle_ms)
{
    struct lb_pool *pool = u->pool;
    if (pool->refs == 0 || (int64_t)pool->n_idle >= keepalive || buf_unread(&u->in) ||
        u->w->stopping) {
        lb_upstream_close(u);
        return;
    }
    u->client = NULL;
    u->state = UP_IDLE;
    u->parsed = 0;
    lb_buf_detach(u->w, &u->in);
    lb_sbuf_release(u->w, &u->ep.out);
    u->next_idle = pool->idle;
    pool->idle = u;
    pool->n_idle++;
    /* Watching reads tells at once when the target closes the idle connection. */
    lb_endpoint_watch(u->w->loop, &u->ep, EV_READ);
    arm_upstream_timer(u, idle_ms);
}

/* -- the request head sent to the target --------------------------------------------------------
 */

static bool name_is(struct http1_slice name, const char *lower, size_t len)
{
    return name.len == len && http1_slice_eq(name, lower);
}

/* A random (version 4) UUID: 8-4-4-4-12 hex digits. */
/* Some servers read '_' as '-' in header names, so "Content_Length" could frame a request
 * differently behind the balancer than in front of it. Names that would then mean a framing,
 * connection or forwarding header are dropped; other names with '_' pass. */
static bool smuggles_by_underscore(struct http1_slice name)
{
    static const char *const guarded[] = {
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "upgrade",
        "proxy-connection",
        "host",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-port",
        "expect",
    };
    if (!memchr(name.p, '_', name.len))
        return false;
    char lower[24];
    if (name.len >= sizeof lower)
        return false;
    for (size_t i = 0; i < name.len; i++) {
        char ch = name.p[i] == '_' ? '-' : name.p[i];
        lower[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    lower[name.len] = '\0';
    for (size_t i = 0; i < sizeof guarded / sizeof guarded[0]; i++)
        if (strcmp(lower, guarded[i]) == 0)
            return true;
    return false;
}

static void make_request_id(struct lb_worker *w, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t bits[2] = {lb_worker_random(w), lb_worker_random(w)};
    bits[0] = (bits[0] & ~0xf000ULL) | 0x4000ULL;                        /* version 4 */
    bits[1] = (bits[1] & 0x3fffffffffffffffULL) | 0x8000000000000000ULL; /* variant 1 */
    size_t o = 0;
    for (int i = 0; i < 32 && o + 2 < size; i++) {
        if (i == 8 || i == 12 || i == 16 || i == 20)
            out[o++] = '-';
        out[o++] = hex[(bits[i / 16] >> (60 - 4 * (i % 16))) & 0xf];
    }
    out[o] = '\0';
}

static void copy_request_id(struct lb_client *c, struct http1_slice v)
{
    size_t n = v.len < sizeof c->request_id - 1 ? v.len : sizeof c->request_id - 1;
    memcpy(c->request_id, v.p, n);
    c->request_id[n] = '\0';
}

static int append_field(struct buf *out, struct http1_slice name, struct http1_slice value)
{
    int failed = buf_append(out, name.p, name.len);
    failed |= buf_append(out, ": ", 2);
    failed |= buf_append(out, value.p, value.len);
    failed |= buf_append(out, "\r\n", 2);
    return failed;
}

/* Fields the balancer drops from a request because it writes them itself or because they would
 * mean something else behind it. */
static bool dropped_request_field(const struct http1_msg *m, struct http1_slice name, bool absolute)
{
    return http1_is_hop_by_hop(m, name) || name_is(name, "x-forwarded-for", 15) ||
           name_is(name, "x-forwarded-proto", 17) || name_is(name, "x-forwarded-port", 16) ||
           name_is(name, "expect", 6) || name_is(name, "trailer", 7) ||
           (absolute && name_is(name, "host", 4)) || smuggles_by_underscore(name);
}

/* X-Forwarded-For: what the client sent (every occurrence, in order), then the client itself. */
static int append_forwarded_for(struct lb_client *c, const struct http1_msg *m, struct buf *out)
{
    int failed = buf_append_str(out, "X-Forwarded-For: ");
    for (size_t i = 0; i < m->n_headers; i++) {
        const struct http1_header *h = &m->headers[i];
        if (!name_is(h->name, "x-forwarded-for", 15) || h->value.len == 0)
            continue;
        failed |= buf_append(out, h->value.p, h->value.len);
        failed |= buf_append(out, ", ", 2);
    }
    failed |= buf_append_str(out, c->peer_text);
    failed |= buf_append_str(out, "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: ");
    failed |= buf_append_str(out, c->listener->port_text);
    failed |= buf_append(out, "\r\n", 2);
    return failed;
}

/* The request line and Host. An absolute-form target goes on in origin form with the host it
 * names (RFC 9112 3.2.2: the target must see the host the request was routed by); an HTTP/1.0
 * request without Host gets the target's address, since it goes on as HTTP/1.1. */
static int append_request_line(struct lb_client *c, const struct http1_msg *m, struct buf *out)
{
    bool absolute = m->form == HTTP1_FORM_ABSOLUTE;
    int failed = buf_append(out, m->method.p, m->method.len);
    failed |= buf_append(out, " ", 1);
    if (absolute) {
        failed |= buf_append(out, m->path.p, m->path.len);
        if (m->query.p) {
            failed |= buf_append(out, "?", 1);
            failed |= buf_append(out, m->query.p, m->query.len);
        }
    } else {
        failed |= buf_append(out, m->target.p, m->target.len);
    }
    failed |= buf_append_str(out, " HTTP/1.1\r\n");
    const struct http1_slice host = {"Host", 4};
    if (absolute)
        failed |= append_field(out, host, m->host);
    else if (!m->has_host)
        failed |= append_field(
            out, host,
            (struct http1_slice){c->target->address_text, strlen(c->target->address_text)});
    return failed;
}

static int build_request_head(struct lb_client *c, const struct http1_msg *m, struct buf *out)
{
    bool absolute = m->form == HTTP1_FORM_ABSOLUTE;
    int failed = append_request_line(c, m, out);
    const struct http1_header *upgrade = NULL;
    for (size_t i = 0; i < m->n_headers; i++) {
        const struct http1_header *h = &m->headers[i];
        if (c->upgrade && name_is(h->name, "upgrade", 7))
            upgrade = h;
        if (dropped_request_field(m, h->name, absolute))
            continue;
        if (name_is(h->name, "x-request-id", 12) && !c->request_id[0])
            copy_request_id(c, h->value);
        failed |= append_field(out, h->name, h->value);
    }
    failed |= append_forwarded_for(c, m, out);
    if (!c->request_id[0]) {
        make_request_id(c->w, c->request_id, sizeof c->request_id);
        failed |= append_field(out, (struct http1_slice){"X-Request-Id", 12},
                               (struct http1_slice){c->request_id, strlen(c->request_id)});
    }
    if (upgrade) {
        failed |= buf_append_str(out, "Connection: upgrade\r\n");
        failed |= append_field(out, upgrade->name, upgrade->value);
    }
    if (m->body == HTTP1_BODY_CHUNKED)
        failed |= buf_append_str(out, "Transfer-Encoding: chunked\r\n");
    failed |= buf_append(out, "\r\n", 2);
    return failed ? -1 : 0;
}

/* Whether the whole request (head and Content-Length body) is in the client's buffer; sets
 * request_len when it is. */
static bool whole_in_buffer(struct lb_client *c, const struct http1_msg *m)
{
    size_t have = buf_unread(&c->in) - m->head_len;
    bool whole = m->body == HTTP1_BODY_NONE ||
                 (m->body == HTTP1_BODY_LENGTH && (uint64_t)m->content_length <= have);
    if (whole)
        c->request_len =
            m->head_len + (m->body == HTTP1_BODY_LENGTH ? (size_t)m->content_length : 0);
    return whole;
}

/* Stages the request for u: its head, then what the client's buffer holds of the body. A request
 * that is whole in the buffer stays there (replayable) until the response head comes. */
static int stage_request(struct lb_client *c, struct lb_upstream *u, const struct http1_msg *m)
{
    buf_reset(&u->ep.out);
    u->ep.pass = NULL;
    u->ep.pass_len = 0;
    c->staged = true;
    lb_sbuf_prepare(c->w, &u->ep.out);
    if (build_request_head(c, m, &u->ep.out) < 0)
        return -1;
    if (whole_in_buffer(c, m)) {
        c->replayable = true;
        if (c->request_len > m->head_len) {
            u->ep.pass = buf_head(&c->in) + m->head_len;
            u->ep.pass_len = c->request_len - m->head_len;
        }
        lb_body_init(&c->req_body, HTTP1_BODY_NONE, 0, false);
        lb_count(c->stats, c->w->id, LB_C_BYTES_IN, (int64_t)(c->request_len - m->head_len));
        return 0;
    }
    c->replayable = false;
    buf_consume(&c->in, m->head_len);
    lb_body_init(&c->req_body, m->body, m->content_length, true);
    lb_body_limit(&c->req_body, settings(c)->max_body_size);
    const char *error = NULL;
    if (lb_body_stage(&c->req_body, &c->in, &u->ep, LB_OUT_LIMIT, &error) != LB_BODY_OK)
        return -1;
    return 0;
}

/* The client's body is malformed or too large: the target has part of a request it will never
 * see the end of, so both connections go once the client has its answer. */
static void refuse_body(struct lb_client *c, struct lb_upstream *u, const char *error)
{
    int status = c->req_body.too_large ? 413 : 400;
    lb_upstream_close(u);
    c->up = NULL;
    lb_client_count_error(c, LB_C_ERR_BAD_REQUEST);
    char body[160];
    int n = snprintf(body, sizeof body, "%d %s: %s\n", status, http1_reason(status),
                     error ? error : "bad request body");
    lb_client_respond(c, status, "text/plain; charset=utf-8", body, (size_t)n, NULL, true);
}

/* -- failures ---------------------------------------------------------------------------------- */

static void respond_gateway_error(struct lb_client *c, int status, const char *detail)
{
    char body[160];
    int n = snprintf(body, sizeof body, "%d %s: %s\n", status, http1_reason(status), detail);
    lb_client_count_error(c, status == 503   ? LB_C_ERR_503
                             : status == 504 ? LB_C_ERR_504
                                             : LB_C_ERR_502);
    if (!c->staged) /* failed before a target had it: still the request just parsed */
        lb_client_skip_request(c, &c->w->msg);
    else if (c->replayable) {
        buf_consume(&c->in, c->request_len);
        c->replayable = false;
    } else if (!c->req_body.done) {
        c->keep_alive = false; /* the rest of the body is still on its way */
    }
    lb_client_respond(c, status, "text/plain; charset=utf-8", body, (size_t)n, NULL, false);
}

/* Why an exchange with a target failed before a byte of its response. */
enum lb_failure {
    FAIL_CONNECT,         /* refused, unreachable: the target never saw the request */
    FAIL_CONNECT_TIMEOUT, /* the same, slowly */
    FAIL_CLOSED,          /* closed or reset after the request went: it may have seen it */
    FAIL_BAD_RESPONSE,
    FAIL_TIMEOUT, /* no answer in time */
    FAIL_INTERNAL,
};

static bool is_idempotent(enum http1_method m)
{
    return m == HTTP1_METHOD_GET || m == HTTP1_METHOD_HEAD || m == HTTP1_METHOD_PUT ||
           m == HTTP1_METHOD_DELETE || m == HTTP1_METHOD_OPTIONS || m == HTTP1_METHOD_TRACE;
}

enum retry { NO_RETRY, RETRY_SAME_TARGET, RETRY_OTHER_TARGET };

/* A request is sent again only while it is whole in the client's buffer, and never to a target
 * that may have seen it unless it is idempotent and the configuration allows it. A pooled
 * connection the target had closed is not the target's failure: the same target gets the request
 * on a new connection, once. */
static enum retry retry_for(struct lb_client *c, const struct lb_upstream *u, enum lb_failure kind)
{
    if (!c->replayable)
        return NO_RETRY;
    bool idempotent = is_idempotent(c->method);
    /* The stale keep-alive race: a pooled connection the target closed as the request went.
     * The target may still have read it, so only an idempotent request goes again. */
    if (kind == FAIL_CLOSED && u && u->reused && !c->replayed && idempotent) {
        c->may_have_seen = true;
        return RETRY_SAME_TARGET;
    }
    if (kind == FAIL_CLOSED)
        c->may_have_seen = true;
    if (c->retries >= settings(c)->retries)
        return NO_RETRY;
    /* Once a target may have seen the request, no other target gets it, unless allowed. */
    if (c->may_have_seen && !(settings(c)->retry_idempotent && idempotent))
        return NO_RETRY;
    if (kind == FAIL_CONNECT || kind == FAIL_CONNECT_TIMEOUT || kind == FAIL_CLOSED)
        return RETRY_OTHER_TARGET;
    return NO_RETRY;
}

static const struct lb_target *pick_target(struct lb_client *c);
static struct lb_upstream *open_upstream(struct lb_client *c, bool fresh);
static void exchange_failed(struct lb_client *c, enum lb_failure kind, int status,
                            const char *detail);

static void target_begin(struct lb_client *c, const struct lb_target *t)
{
    c->target = t;
    lb_target_begin(t);
    atomic_fetch_add_explicit(&t->health->inflight, 1, memory_order_relaxed);
}

void lb_client_release_target(struct lb_client *c)
{
    if (!c->target)
        return;
    lb_target_end(c->target);
    atomic_fetch_sub_explicit(&c->target->health->inflight, 1, memory_order_relaxed);
    c->target = NULL;
}

/* Sends the request (whole in the client's buffer) again, on target t. */
static void resend(struct lb_client *c, bool fresh)
{
    struct http1_msg *m = &c->w->msg;
    if (http1_parse_request(buf_head(&c->in), c->request_len, 0, &settings(c)->limits, m) !=
        HTTP1_DONE) {
        exchange_failed(c, FAIL_INTERNAL, 502, "internal error replaying the request");
        return;
    }
    c->request_id[0] = '\0';
    struct lb_upstream *u = open_upstream(c, fresh);
    if (!u)
        return;
    if (stage_request(c, u, m) < 0) {
        lb_upstream_close(u);
        c->up = NULL;
        exchange_failed(c, FAIL_INTERNAL, 502, "request too large to forward");
        return;
    }
    if (u->state == UP_SENDING)
        send_request(u);
    else
        lb_endpoint_watch(c->w->loop, &u->ep, EV_WRITE);
}

static void exchange_failed_on(struct lb_client *c, const struct lb_upstream *u,
                               enum lb_failure kind, int status, const char *detail)
{
    enum retry retry = retry_for(c, u, kind);
    if (kind == FAIL_CONNECT || kind == FAIL_CONNECT_TIMEOUT) {
        count_connection_error(c);
        lb_tstate_mark_down(c->target->health); /* no waiting for the next check */
    } else if (retry == NO_RETRY && kind != FAIL_INTERNAL) {
        count_connection_error(c);
    }
    if (retry == RETRY_OTHER_TARGET) {
        if (c->n_tried < LB_MAX_TRIED)
            c->tried[c->n_tried++] = c->target->index;
        lb_client_release_target(c);
        const struct lb_target *next = pick_target(c);
        if (!next) {
            respond_gateway_error(c, status, detail);
            return;
        }
        c->retries++;
        target_begin(c, next);
    } else if (retry == RETRY_SAME_TARGET) {
        c->replayed = true;
    } else {
        respond_gateway_error(c, status, detail);
        return;
    }
    lb_count(group_stats(c), c->w->id, LB_C_RETRIES, 1);
    resend(c, retry == RETRY_SAME_TARGET);
}

static void exchange_failed(struct lb_client *c, enum lb_failure kind, int status,
                            const char *detail)
{
    exchange_failed_on(c, NULL, kind, status, detail);
}

/* The target failed before a byte of response: close its connection, then retry or answer. */
static void upstream_failed(struct lb_upstream *u, enum lb_failure kind, int status,
                            const char *detail)
{
    struct lb_client *c = u->client;
    struct lb_upstream copy = *u; /* what retry_for needs to know of it, once it is closed */
    lb_upstream_close(u);
    c->up = NULL;
    exchange_failed_on(c, &copy, kind, status, detail);
}

/* A connection for c's target: the pool's newest idle one (unless fresh), else a new one. NULL
 * after the failure was handled (a retry or an answer). */
static struct lb_upstream *open_upstream(struct lb_client *c, bool fresh)
{
    struct lb_pool *pool = c->wg->pools[c->group->index][c->target->index];
    struct lb_upstream *u = fresh ? NULL : pool_take(pool);
    if (u) {
        lb_count(group_stats(c), c->w->id, LB_C_TARGET_REUSED_CONNECTIONS, 1);
    } else {
        bool failed;
        u = upstream_connect(c->w, pool, &failed);
        if (!u) {
            /* Out of descriptors, ports or memory here is not the target's failure. */
            bool local = errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                         errno == ENOMEM || errno == EADDRNOTAVAIL;
            exchange_failed(c, local ? FAIL_INTERNAL : FAIL_CONNECT, 502,
                            local ? "no resources to connect to the target"
                                  : "the target refused the connection");
            return NULL;
        }
        lb_count(group_stats(c), c->w->id, LB_C_TARGET_NEW_CONNECTIONS, 1);
        if (u->state == UP_CONNECTING)
            arm_upstream_timer(u, settings(c)->connect_timeout_ms);
    }
    u->client = c;
    u->got_bytes = false;
    u->parsed = 0;
    if (u->state == UP_IDLE)
        u->state = UP_SENDING;
    c->up = u;
    return u;
}

/* -- starting ---------------------------------------------------------------------------------- */

static bool tried(const struct lb_client *c, uint32_t index)
{
    for (unsigned i = 0; i < c->n_tried; i++)
        if (c->tried[i] == index)
            return true;
    return false;
}

/* Slow start: a target healthy for less than slow_start takes each request it is picked for with
 * a probability growing linearly from 0 to 1, so its share ramps up as ALB's does. */
static bool slow_start_admits(struct lb_client *c, const struct lb_tstate *h, int64_t now)
{
    int64_t ramp_ns = atomic_load_explicit(&h->slow_start_ns, memory_order_relaxed);
    if (ramp_ns <= 0)
        return true;
    int64_t elapsed = now - atomic_load_explicit(&h->healthy_since_ns, memory_order_relaxed);
    if (elapsed >= ramp_ns)
        return true;
    return (lb_worker_random(c->w) >> 11) * (double)ramp_ns < (double)elapsed * (1ULL << 53);
}

static bool any_healthy(const struct lb_client *c, const struct lb_target_group *g)
{
    for (uint32_t t = 0; t < g->n_targets; t++)
        if (lb_tstate_state(g->targets[t].health) == LB_TARGET_HEALTHY &&
            g->targets[t].weight > 0 && !tried(c, t))
            return true;
    return false;
}

/* Healthy (or, as ALB does, any not draining when none is healthy: fail open), not tried already
 * for this request, not at the connection limit. */
static bool target_usable(const struct lb_client *c, const struct lb_target_group *g, uint32_t t,
                          bool some_healthy)
{
    if (g->targets[t].weight == 0) /* a sticky cookie must not reach it either */
        return false;
    int state = lb_tstate_state(g->targets[t].health);
    bool live = state == LB_TARGET_HEALTHY ||
                (!some_healthy && (state == LB_TARGET_INITIAL || state == LB_TARGET_UNHEALTHY));
    struct lb_pool *pool = c->wg->pools[g->index][t];
    return live && !tried(c, t) &&
           (int64_t)(pool->n_open - pool->n_idle) < settings(c)->max_upstream_connections;
}

/* A pass that honours slow start comes first; if it leaves nothing, one without. */
static const struct lb_target *pick_target(struct lb_client *c)
{
    const struct lb_target_group *g = c->group;
    bool *usable = c->wg->usable;
    bool some_healthy = any_healthy(c, g);
    int64_t now = clock_mono_ns();
    for (int pass = 0; pass < 2; pass++) {
        bool ramping = false;
        for (uint32_t t = 0; t < g->n_targets; t++) {
            const struct lb_tstate *h = g->targets[t].health;
            bool admitted = pass == 1 || lb_tstate_state(h) != LB_TARGET_HEALTHY ||
                            slow_start_admits(c, h, now);
            ramping |= !admitted;
            usable[t] = admitted && target_usable(c, g, t, some_healthy);
        }
        const struct lb_target *target = lb_pick(g, lb_picker_for(c->wg->pickers, g), usable);
        if (target || !ramping)
            return target;
    }
    return NULL;
}

/* The target a sticky cookie names, while it is usable; else the usual pick (and the response
 * will carry the new target's cookie). */
static const struct lb_target *choose_target(struct lb_client *c, const struct http1_msg *m)
{
    const struct lb_target_group *g = c->group;
    if (g->sticky) {
        int t = lb_sticky_target(g, m);
        if (t >= 0 && target_usable(c, g, (uint32_t)t, any_healthy(c, g)))
            return &g->targets[t];
    }
    return pick_target(c);
}

static void send_continue(struct lb_client *c)
{
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    ssize_t n = write(c->ep.fd, line, sizeof line - 1);
    if (n < (ssize_t)sizeof line - 1) /* rare: the rest goes out ahead of the response */
        buf_append(&c->ep.out, line + (n > 0 ? n : 0), sizeof line - 1 - (size_t)(n > 0 ? n : 0));
}

void lb_proxy_start(struct lb_client *c, struct lb_target_group *group)
{
    struct http1_msg *m = &c->w->msg;
    c->group = group;
    c->state = CLIENT_FORWARD;
    lb_count(group_stats(c), c->w->id, LB_C_REQUESTS, 1);
    c->target = choose_target(c, m);
    if (!c->target) {
        respond_gateway_error(c, 503,
                              group->n_targets ? "no target can take the request"
                                               : "the target group has no targets");
        return;
    }
    target_begin(c, c->target);
    /* A request counts for the first target it goes to, once, as it does for the group: one
     * sent again elsewhere is still one request. */
    lb_count(c->target->stats, c->w->id, LB_C_REQUESTS, 1);
    /* Known before the first connection, so that a connection refused at once is retried like
     * one refused later. */
    c->replayable = whole_in_buffer(c, m);
    struct lb_upstream *u = open_upstream(c, false);
    if (!u)
        return;
    if (stage_request(c, u, m) < 0) {
        refuse_body(c, u,
                    c->req_body.too_large ? "the body exceeds max_body_size" : "bad request body");
        return;
    }
    if (c->expect_continue && !c->replayable)
        send_continue(c);
    if (u->state == UP_CONNECTING)
        lb_endpoint_watch(c->w->loop, &u->ep, EV_WRITE);
    else
        send_request(u);
}

/* -- sending the request ----------------------------------------------------------------------- */

static void request_sent(struct lb_upstream *u)
{
    struct lb_client *c = u->client;
    u->state = UP_WAITING;
    u->sent_ns = clock_mono_ns();
    lb_endpoint_watch(u->w->loop, &u->ep, EV_READ);
    arm_upstream_timer(u, settings(c)->target_response_timeout_ms);
}

static void send_request(struct lb_upstream *u)
{
    struct lb_client *c = u->client;
    size_t passed, written;
    enum lb_flush r = lb_endpoint_flush(&u->ep, &passed, &written);
    if (!c->replayable && passed)
        buf_consume(&c->in, passed);
    if (r == LB_FLUSH_ERROR) {
        upstream_failed(u, FAIL_CLOSED, 502, "the target closed the connection");
        return;
    }
    if (r == LB_FLUSH_PENDING) {
        lb_endpoint_watch(u->w->loop, &u->ep, EV_READ | EV_WRITE);
        arm_upstream_timer(u, settings(c)->target_response_timeout_ms);
        return;
    }
    if (c->replayable || c->req_body.done) {
        request_sent(u);
        return;
    }
    const char *error = NULL;
    if (lb_body_stage(&c->req_body, &c->in, &u->ep, LB_OUT_LIMIT, &error) != LB_BODY_OK) {
        refuse_body(c, u, error);
        return;
    }
    if (!lb_endpoint_idle(&u->ep)) {
        send_request(u);
        return;
    }
    /* The body's next bytes are still with the client. */
    lb_endpoint_watch(u->w->loop, &u->ep, EV_READ);
    lb_endpoint_watch(c->w->loop, &c->ep, EV_READ);
    lb_client_arm_timer(c, settings(c)->idle_timeout_ms);
}

void lb_proxy_client_readable(struct lb_client *c)
{
    struct lb_upstream *u = c->up;
    if (c->state == CLIENT_TUNNEL) {
        tunnel_update(c);
        return;
    }
    if (!u || u->state != UP_SENDING || !lb_endpoint_idle(&u->ep)) {
        lb_endpoint_watch(c->w->loop, &c->ep, 0);
        return;
    }
    ssize_t n = lb_client_read(c);
    if (n == -1)
        return;
    if (n == -3) { /* nothing was staged from it, so it is not full of body: can't happen */
        lb_client_close(c);
        return;
    }
    if (n <= 0) { /* the client went away in the middle of its body */
        lb_client_count_error(c, LB_C_ERR_CLIENT_TIMEOUT);
        lb_client_close(c);
        return;
    }
    lb_count(c->stats, c->w->id, LB_C_BYTES_IN, n);
    ev_timer_stop(c->w->loop, &c->timer);
    send_request(u);
}

/* -- the response ------------------------------------------------------------------------------ */

static int build_response_head(struct lb_client *c, const struct http1_msg *r, struct buf *out)
{
    lb_sbuf_prepare(c->w, out);
    char status[4] = {(char)('0' + r->status / 100 % 10), (char)('0' + r->status / 10 % 10),
                      (char)('0' + r->status % 10), ' '};
    int failed = buf_append(out, "HTTP/1.1 ", 9);
    failed |= buf_append(out, status, 4);
    failed |= buf_append(out, r->reason.p, r->reason.len);
    failed |= buf_append(out, "\r\n", 2);
    const struct http1_header *upgrade = NULL;
    for (size_t i = 0; i < r->n_headers; i++) {
        const struct http1_header *h = &r->headers[i];
        if (r->status == 101 && name_is(h->name, "upgrade", 7))
            upgrade = h;
        /* Trailers are dropped on the way (common/http1.h), so is their announcement. */
        if (http1_is_hop_by_hop(r, h->name) || name_is(h->name, "trailer", 7))
            continue;
        failed |= append_field(out, h->name, h->value);
    }
    if (r->status == 101) {
        if (upgrade)
            failed |= buf_printf(out, "Connection: upgrade\r\nUpgrade: %.*s\r\n",
                                 (int)upgrade->value.len, upgrade->value.p);
    } else if (r->status >= 200) {
        const struct lb_target_group *g = c->group;
        char cookie[160];
        size_t n;
        if (g->sticky &&
            (g->sticky_type == LB_STICKY_LB_COOKIE || lb_sticky_app_cookie_set(g, r)) &&
            (n = lb_sticky_set_cookie(g, c->target, cookie, sizeof cookie)))
            failed |= buf_append(out, cookie, n);
        if (r->body == HTTP1_BODY_CHUNKED && !c->http10)
            failed |= buf_append_str(out, "Transfer-Encoding: chunked\r\n");
        if (!c->keep_alive)
            failed |= buf_append_str(out, "Connection: close\r\n");
        else if (c->http10)
            failed |= buf_append_str(out, "Connection: keep-alive\r\n");
    }
    failed |= buf_append(out, "\r\n", 2);
    return failed ? -1 : 0;
}

static void response_complete(struct lb_upstream *u)
{
    struct lb_client *c = u->client;
    c->up = NULL;
    ev_timer_stop(u->w->loop, &u->timer);
    int state = lb_tstate_state(c->target->health);
    if (u->keep_alive && state != LB_TARGET_DRAINING && state != LB_TARGET_UNUSED)
        pool_give(u, settings(c)->upstream_keepalive, settings(c)->upstream_idle_timeout_ms);
    else
        lb_upstream_close(u);
    lb_client_request_done(c);
}

/* The group's counters and the target's: a few relaxed adds to the worker's own slots. */
static void count_response(struct lb_client *c, const struct lb_upstream *u, int status)
{
    struct lb_stat_block *g = group_stats(c), *t = c->target->stats;
    int64_t us = (clock_mono_ns() - u->sent_ns) / 1000;
    int bucket = metric_hist_bucket(us);
    lb_count_latency(g, c->w->id, us, bucket);
    lb_count_latency(t, c->w->id, us, bucket);
    enum lb_counter k = status < 300   ? LB_C_TARGET_2XX
                        : status < 400 ? LB_C_TARGET_3XX
                        : status < 500 ? LB_C_TARGET_4XX
                                       : LB_C_TARGET_5XX;
    if (status >= 200) {
        lb_count(g, c->w->id, k, 1);
        lb_count(t, c->w->id, k, 1);
    }
}

/* Returns 1 when the final head is in, 0 to wait for more, -1 after failing the exchange. */
static int take_response_head(struct lb_upstream *u)
{
    struct lb_client *c = u->client;
    struct http1_msg *r = &u->w->msg;
    struct http1_limits limits = {u->w->buf_size - 1, u->w->buf_size, HTTP1_MAX_HEADERS};
    for (;;) {
        enum http1_result res = http1_parse_response(buf_head(&u->in), buf_unread(&u->in),
                                                     u->parsed, &limits, c->method, r);
        u->parsed = buf_unread(&u->in);
        if (res == HTTP1_NEED_MORE)
            return 0;
        if (res == HTTP1_ERROR) {
            upstream_failed(u, FAIL_BAD_RESPONSE, 502, "the target sent an invalid response");
            return -1;
        }
        if (c->replayable) { /* the target has the request: it will not be sent again */
            buf_consume(&c->in, c->request_len);
            c->replayable = false;
        }
        if (r->status >= 200 || r->status == 101)
            break;
        if (!c->http10) /* 100 Continue, 103 Early Hints: relayed, never to HTTP/1.0 clients */
            build_response_head(c, r, &c->ep.out);
        buf_consume(&u->in, r->head_len);
        u->parsed = 0;
    }
    count_response(c, u, r->status);
    c->status = r->status;
    bool sending = u->state == UP_SENDING;
    if (sending) { /* it answered before taking the whole body: neither side can be reused */
        c->keep_alive = false;
        buf_reset(&u->ep.out);
        u->ep.pass = NULL;
        u->ep.pass_len = 0;
    }
    if (r->status == 101 && c->upgrade) {
        c->keep_alive = false;
        build_response_head(c, r, &c->ep.out);
        buf_consume(&u->in, r->head_len);
        c->state = CLIENT_TUNNEL;
        u->state = UP_TUNNEL;
        ev_timer_stop(u->w->loop, &u->timer);
        return 1;
    }
    if (r->body == HTTP1_BODY_CLOSE || (r->body == HTTP1_BODY_CHUNKED && c->http10))
        c->keep_alive = false;
    u->keep_alive = r->keep_alive && r->body != HTTP1_BODY_CLOSE && !sending;
    lb_body_init(&u->resp_body, r->body, r->content_length, !c->http10);
    size_t before = buf_unread(&c->ep.out);
    if (build_response_head(c, r, &c->ep.out) < 0) {
        upstream_failed(u, FAIL_BAD_RESPONSE, 502, "the target's response head is too large");
        return -1;
    }
    c->head_out += (int64_t)(buf_unread(&c->ep.out) - before);
    buf_consume(&u->in, r->head_len);
    u->state = UP_BODY;
    return 1;
}

static void read_response(struct lb_upstream *u)
{
    struct lb_client *c = u->client;
    if (lb_buf_attach(u->w, &u->in) < 0 || buf_reserve(&u->in, 1) < 0) {
        upstream_failed(u, FAIL_BAD_RESPONSE, 502, "the target's response head is too large");
        return;
    }
    ssize_t n = lb_read(u->ep.fd, &u->in);
    if (n == -1)
        return;
    if (n <= 0) {
        if (u->state == UP_BODY && lb_body_eof(&u->resp_body)) {
            u->keep_alive = false;
            pump_response(u);
        } else if (u->state == UP_BODY) { /* cut short: the client cannot be told otherwise */
            count_connection_error(c);
            lb_client_close(c);
        } else {
            if (u->got_bytes) /* it had begun answering: it has the request */
                upstream_failed(u, FAIL_BAD_RESPONSE, 502,
                                "the target closed the connection mid-response");
            else
                upstream_failed(u, FAIL_CLOSED, 502, "the target closed the connection");
        }
        return;
    }
    u->got_bytes = true;
    if (u->state == UP_SENDING || u->state == UP_WAITING) {
        int r = take_response_head(u);
        if (r <= 0)
            return;
        if (u->state == UP_TUNNEL) {
            tunnel_update(c);
            return;
        }
    }
    pump_response(u);
}

/* Moves the response body to the client for as long as both sides allow. */
static void pump_response(struct lb_upstream *u)
{
    struct lb_client *c = u->client;
    struct ev_loop *loop = u->w->loop;
    for (;;) {
        /* Stage first, so that a head and the body behind it leave in one writev. */
        if (c->ep.pass_len == 0 && buf_unread(&u->in) && !u->resp_body.done) {
            const char *error = NULL;
            if (lb_body_stage(&u->resp_body, &u->in, &c->ep, LB_OUT_LIMIT, &error) != LB_BODY_OK) {
                count_connection_error(c);
                lb_client_close(c);
                return;
            }
        }
        if (!lb_endpoint_idle(&c->ep)) {
            size_t passed, written;
            enum lb_flush r = lb_endpoint_flush(&c->ep, &passed, &written);
            c->bytes_out += (int64_t)written;
            buf_consume(&u->in, passed);
            if (r == LB_FLUSH_ERROR) {
                lb_client_close(c);
                return;
            }
            if (r == LB_FLUSH_PENDING) {
                lb_endpoint_watch(loop, &c->ep, EV_WRITE);
                lb_endpoint_watch(loop, &u->ep, 0);
                ev_timer_stop(loop, &u->timer);
                lb_client_arm_timer(c, settings(c)->idle_timeout_ms);
                return;
            }
        }
        if (u->resp_body.done) {
            response_complete(u);
            return;
        }
        if (buf_unread(&u->in) == 0)
            break;
        size_t before = buf_unread(&u->in);
        const char *error = NULL;
        if (lb_body_stage(&u->resp_body, &u->in, &c->ep, LB_OUT_LIMIT, &error) != LB_BODY_OK) {
            count_connection_error(c);
            lb_client_close(c);
            return;
        }
        if (lb_endpoint_idle(&c->ep) && buf_unread(&u->in) == before)
            break; /* a partial chunk line: more is needed from the target */
    }
    /* The client's watcher is left as it is: stopping and restarting it each request costs an
     * epoll_ctl; if the client speaks meanwhile, lb_proxy_client_readable() mutes it then. */
    if (c->ep.events & EV_WRITE)
        lb_endpoint_watch(loop, &c->ep, EV_READ);
    ev_timer_stop(loop, &c->timer);
    lb_endpoint_watch(loop, &u->ep, EV_READ);
    arm_upstream_timer(u, settings(c)->target_response_timeout_ms);
}

void lb_proxy_client_flushed(struct lb_client *c)
{
    if (c->state == CLIENT_TUNNEL) {
        tunnel_update(c);
        return;
    }
    if (c->up)
        pump_response(c->up);
    else
        lb_client_flush(c); /* an answer of the balancer's own after a failure */
}

/* -- upgrades: bytes both ways ------------------------------------------------------------------
 */

static ssize_t read_upstream(struct lb_upstream *u)
{
    if (lb_buf_attach(u->w, &u->in) < 0 || buf_reserve(&u->in, 1) < 0)
        return -2;
    return lb_read(u->ep.fd, &u->in);
}

/* Moves what one side has read to the other; returns -1 when the tunnel is over. from_client
 * says which side `from` is (they read into different kinds of buffer). */
static int tunnel_move(struct lb_client *c, bool from_client, bool *progress)
{
    struct lb_endpoint *to = from_client ? &c->up->ep : &c->ep;
    struct buf *from_in = from_client ? &c->in : &c->up->in;
    for (;;) {
        /* Bytes already read go first: those that came with the 101 head, say. */
        if (lb_endpoint_idle(to) && buf_unread(from_in)) {
            to->pass = buf_head(from_in);
            to->pass_len = buf_unread(from_in);
        }
        if (!lb_endpoint_idle(to)) {
            size_t passed, written;
            enum lb_flush r = lb_endpoint_flush(to, &passed, &written);
            buf_consume(from_in, passed);
            *progress |= written > 0;
            if (r == LB_FLUSH_ERROR)
                return -1;
            if (r == LB_FLUSH_PENDING)
                return 0;
            if (buf_unread(from_in))
                continue; /* `out` went first; what was read waits behind it */
        }
        ssize_t n = from_client ? lb_client_read(c) : read_upstream(c->up);
        if (n == -1)
            return 0;
        if (n <= 0)
            return -1;
        *progress = true;
    }
}

static void tunnel_update(struct lb_client *c)
{
    struct lb_upstream *u = c->up;
    struct lb_worker *w = c->w;
    bool progress = false;
    if (tunnel_move(c, true, &progress) < 0 || tunnel_move(c, false, &progress) < 0) {
        lb_client_close(c);
        return;
    }
    /* Read a side only when the other has taken everything read from it before. */
    lb_endpoint_watch(w->loop, &c->ep,
                      (lb_endpoint_idle(&u->ep) ? EV_READ : 0) |
                          (lb_endpoint_idle(&c->ep) ? 0 : EV_WRITE));
    lb_endpoint_watch(w->loop, &u->ep,
                      (lb_endpoint_idle(&c->ep) ? EV_READ : 0) |
                          (lb_endpoint_idle(&u->ep) ? 0 : EV_WRITE));
    if (progress || !ev_is_active(&c->timer))
        lb_client_arm_timer(c, settings(c)->idle_timeout_ms);
}

/* -- events ------------------------------------------------------------------------------------ */

static void connected(struct lb_upstream *u)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(u->ep.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        upstream_failed(u, FAIL_CONNECT, 502, "the target refused the connection");
        return;
    }
    u->state = UP_SENDING;
    ev_timer_stop(u->w->loop, &u->timer);
    send_request(u);
}

static void on_upstream_io(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    struct lb_upstream *u = io->data;
    switch (u->state) {
    case UP_CONNECTING:
        if (revents & EV_WRITE)
            connected(u);
        return;
    case UP_SENDING:
        if (revents & EV_READ) {
            read_response(u);
            return; /* u may be gone */
        }
        send_request(u);
        return;
    case UP_WAITING:
    case UP_BODY:
        read_response(u);
        return;
    case UP_IDLE: /* a pooled connection spoke or closed: it can't be used any more */
        lb_upstream_close(u);
        return;
    case UP_TUNNEL:
        tunnel_update(u->client);
        return;
    }
}

static void on_upstream_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct lb_upstream *u = t->data;
    struct lb_client *c = u->client;
    switch (u->state) {
    case UP_IDLE:
        lb_upstream_close(u);
        return;
    case UP_CONNECTING:
        upstream_failed(u, FAIL_CONNECT_TIMEOUT, 504, "connecting to the target timed out");
        return;
    case UP_SENDING:
    case UP_WAITING:
        upstream_failed(u, FAIL_TIMEOUT, 504, "the target did not answer in time");
        return;
    case UP_BODY:
    case UP_TUNNEL:
        lb_client_close(c); /* the response had begun: all that is left is to cut it */
        return;
    }
}

void lb_proxy_abort(struct lb_client *c)
{
    struct lb_upstream *u = c->up;
    c->up = NULL;
    if (u)
        lb_upstream_close(u);
}
