#include "lb/sticky.h"

#include <stdio.h>
#include <string.h>

static const char *cookie_name(const struct lb_target_group *g)
{
    return g->sticky_type == LB_STICKY_APP_COOKIE ? LB_STICKY_APP_COOKIE_NAME
                                                  : LB_STICKY_COOKIE_NAME;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

void lb_sticky_setup(struct lb_routes *routes, const struct config_lb *cfg)
{
    for (uint32_t i = 0; i < routes->n_groups; i++) {
        struct lb_target_group *g = &routes->groups[i];
        const struct lb_target_group_cfg *gc = lb_config_find_group(cfg, g->name);
        g->sticky = gc && gc->stickiness.enabled;
        if (gc) {
            g->sticky_type = gc->stickiness.type;
            g->sticky_duration_s = gc->stickiness.duration_ms / 1000;
            snprintf(g->app_cookie, sizeof g->app_cookie, "%s",
                     gc->stickiness.cookie_name ? gc->stickiness.cookie_name : "");
        }
        for (uint32_t t = 0; t < g->n_targets; t++) {
            uint64_t h = fnv1a(fnv1a(1469598103934665603ULL, g->name), g->targets[t].address_text);
            snprintf(g->targets[t].sticky_id, sizeof g->targets[t].sticky_id, "%016llx",
                     (unsigned long long)h);
        }
    }
}

/* The value of cookie `name` in a Cookie header value ("a=1; b=2"), or an empty slice. */
static struct http1_slice find_cookie(struct http1_slice header, const char *name)
{
    size_t n = strlen(name);
    const char *p = header.p, *end = header.p + header.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ';'))
            p++;
        const char *pair = p;
        while (p < end && *p != ';')
            p++;
        if ((size_t)(p - pair) > n && memcmp(pair, name, n) == 0 && pair[n] == '=')
            return (struct http1_slice){pair + n + 1, (size_t)(p - pair) - n - 1};
    }
    return (struct http1_slice){NULL, 0};
}

int lb_sticky_target(const struct lb_target_group *g, const struct http1_msg *req)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        if (!http1_slice_eq(req->headers[i].name, "cookie"))
            continue;
        struct http1_slice v = find_cookie(req->headers[i].value, cookie_name(g));
        if (v.len != 16)
            continue;
        for (uint32_t t = 0; t < g->n_targets; t++)
            if (memcmp(g->targets[t].sticky_id, v.p, 16) == 0)
                return (int)t;
    }
    return -1;
}

bool lb_sticky_app_cookie_set(const struct lb_target_group *g, const struct http1_msg *resp)
{
    size_t n = strlen(g->app_cookie);
    for (size_t i = 0; n && i < resp->n_headers; i++) {
        const struct http1_header *h = &resp->headers[i];
        if (http1_slice_eq(h->name, "set-cookie") && h->value.len > n &&
            memcmp(h->value.p, g->app_cookie, n) == 0 && h->value.p[n] == '=')
            return true;
    }
    return false;
}

size_t lb_sticky_set_cookie(const struct lb_target_group *g, const struct lb_target *t, char *out,
                            size_t size)
{
    int n = snprintf(out, size, "Set-Cookie: %s=%s; Max-Age=%lld; Path=/\r\n", cookie_name(g),
                     t->sticky_id, (long long)g->sticky_duration_s);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}
