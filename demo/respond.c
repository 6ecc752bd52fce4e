#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "config/values.h"
#include "demo/demo.h"

enum { PATTERN_CHUNK = 65536 };

/* The default body's bytes; large bodies are written straight from here, never copied. */
static const char pattern[PATTERN_CHUNK] = {[0 ... PATTERN_CHUNK - 1] = 'x'};

/* ---- deciding ---- */

static bool path_is(struct http1_slice path, const char *want)
{
    return path.len == strlen(want) && memcmp(path.p, want, path.len) == 0;
}

static enum demo_route route_of(const struct http1_msg *m)
{
    bool get = m->method_id == HTTP1_METHOD_GET || m->method_id == HTTP1_METHOD_HEAD;
    bool post = m->method_id == HTTP1_METHOD_POST;
    if (path_is(m->path, "/echo"))
        return ROUTE_ECHO;
    if (get && path_is(m->path, "/health"))
        return ROUTE_HEALTH;
    if (post && path_is(m->path, "/health/fail"))
        return ROUTE_HEALTH_FAIL;
    if (post && path_is(m->path, "/health/ok"))
        return ROUTE_HEALTH_OK;
    return ROUTE_DEFAULT;
}

struct override {
    const char *key;
    int (*parse)(const char *text, int64_t *out);
    int64_t max;
    const char *expected;
    size_t offset;
};

static const struct override overrides[] = {
    {"size", value_parse_size, DEMO_MAX_BODY_SIZE, "a size such as 512, 16k or 1m, at most 64m",
     offsetof(struct demo_request, size)},
    {"latency", value_parse_duration_ms, DEMO_MAX_LATENCY_MS,
     "a duration such as 50ms or 2s, at most 60s", offsetof(struct demo_request, latency_ms)},
    {"cpu", value_parse_duration_ms, DEMO_MAX_CPU_MS, "a duration such as 5ms, at most 10s",
     offsetof(struct demo_request, cpu_ms)},
};

static void refuse(struct demo_request *req, const char *key, struct http1_slice value,
                   const char *expected)
{
    req->route = ROUTE_ERROR;
    req->status = 400;
    /* The value comes from the request-target, which the parser limits to URI characters. */
    int shown = value.len > 40 ? 40 : (int)value.len;
    snprintf(req->message, sizeof req->message, "invalid %s '%.*s%s' (expected %s)\n", key, shown,
             value.p, value.len > 40 ? "..." : "", expected);
}

/* One key=value of the query string; unknown keys are ignored. */
static void apply_param(struct demo_request *req, struct http1_slice param)
{
    const char *eq = memchr(param.p, '=', param.len);
    if (!eq)
        return;
    struct http1_slice key = {param.p, (size_t)(eq - param.p)};
    struct http1_slice value = {eq + 1, param.len - key.len - 1};
    for (size_t i = 0; i < sizeof overrides / sizeof overrides[0]; i++) {
        const struct override *o = &overrides[i];
        if (!path_is(key, o->key))
            continue;
        char text[32];
        int64_t parsed;
        if (value.len >= sizeof text) {
            refuse(req, o->key, value, o->expected);
            return;
        }
        memcpy(text, value.p, value.len);
        text[value.len] = '\0';
        if (o->parse(text, &parsed) < 0 || parsed > o->max) {
            refuse(req, o->key, value, o->expected);
            return;
        }
        *(int64_t *)((char *)req + o->offset) = parsed;
        return;
    }
}

static void apply_query(struct demo_request *req, struct http1_slice q)
{
    while (q.len && req->route != ROUTE_ERROR) {
        const char *amp = memchr(q.p, '&', q.len);
        size_t n = amp ? (size_t)(amp - q.p) : q.len;
        apply_param(req, (struct http1_slice){q.p, n});
        size_t skip = amp ? n + 1 : n;
        q.p += skip;
        q.len -= skip;
    }
}

void demo_plan(const struct demo_server *srv, const struct http1_msg *msg, struct demo_request *req)
{
    const struct demo_settings *s = srv->settings;
    req->route = route_of(msg);
    req->status = 200;
    req->message[0] = '\0';
    req->size = s->body_size;
    req->latency_ms = s->latency_ms;
    req->cpu_ms = s->cpu_ms;
    req->no_body = msg->method_id == HTTP1_METHOD_HEAD;
    req->keep_alive = msg->keep_alive;
    req->confirm_keep_alive = msg->keep_alive && msg->minor == 0;
    if (msg->query.len)
        apply_query(req, msg->query);
}

/* ---- writing ---- */

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

static char *put_u64(char *p, uint64_t v)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = digits[--n];
    return p;
}

static void refresh_date(struct demo_server *srv)
{
    int64_t now = (int64_t)ev_now(srv->loop);
    if (now == srv->date_second)
        return;
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    srv->date_len =
        strftime(srv->date, sizeof srv->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    srv->date_second = now;
}

int demo_put_head(struct demo_server *srv, struct buf *out, int status, int64_t content_length,
                  bool close, bool confirm_keep_alive)
{
    const char *reason = http1_reason(status);
    size_t reason_len = strlen(reason);
    refresh_date(srv);
    if (buf_reserve(out, 160 + reason_len + srv->date_len + srv->fixed_headers_len) < 0)
        return -1;
    char *p = buf_tail(out);
    char *start = p;
    p = PUT_LIT(p, "HTTP/1.1 ");
    p = put_u64(p, (uint64_t)status);
    *p++ = ' ';
    p = put(p, reason, reason_len);
    p = PUT_LIT(p, "\r\n");
    p = put(p, srv->date, srv->date_len);
    p = PUT_LIT(p, "Content-Type: text/plain\r\nContent-Length: ");
    p = put_u64(p, (uint64_t)content_length);
    p = PUT_LIT(p, "\r\n");
    p = put(p, srv->fixed_headers, srv->fixed_headers_len);
    if (close)
        p = PUT_LIT(p, "Connection: close\r\n");
    else if (confirm_keep_alive)
        p = PUT_LIT(p, "Connection: keep-alive\r\n");
    p = PUT_LIT(p, "\r\n");
    buf_commit(out, (size_t)(p - start));
    return 0;
}

int demo_put_text(struct demo_server *srv, struct buf *out, int status, const char *text,
                  bool no_body, bool close, bool confirm_keep_alive)
{
    size_t n = strlen(text);
    if (demo_put_head(srv, out, status, (int64_t)n, close, confirm_keep_alive) < 0)
        return -1;
    return no_body ? 0 : buf_append(out, text, n);
}

int demo_pattern_iov(int64_t left, struct iovec *iov)
{
    if (left <= 0)
        return 0;
    int64_t xs = left - 1 < PATTERN_CHUNK ? left - 1 : PATTERN_CHUNK;
    int n = 0;
    if (xs)
        iov[n++] = (struct iovec){(void *)pattern, (size_t)xs};
    if (xs == left - 1)
        iov[n++] = (struct iovec){(void *)"\n", 1};
    return n;
}

/* Written by the CPU burn so the compiler cannot drop the loop. */
static volatile uint64_t burn_sink;

void demo_burn_cpu(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    int64_t end = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + ms * 1000000;
    for (;;) {
        for (int i = 0; i < 10000; i++)
            burn_sink += (uint64_t)i;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        if ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec >= end)
            return;
    }
}
