#include "lb/router.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Building ---------------------------------------------------------------------------- */

struct builder {
    struct lb_routes *routes;
    struct arena *arena;
    char *err;
    size_t errlen;
    char where[96]; /* what is being built, for the message: "listener 'web', rule 10" */
};

__attribute__((format(printf, 2, 3))) static int fail(struct builder *b, const char *fmt, ...)
{
    if (!b->errlen)
        return -1;
    int n = snprintf(b->err, b->errlen, "%s%s", b->where, *b->where ? ": " : "");
    size_t used = n < 0 ? 0 : (size_t)n < b->errlen ? (size_t)n : b->errlen - 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err + used, b->errlen - used, fmt, ap);
    va_end(ap);
    return -1;
}

static int out_of_memory(struct builder *b)
{
    return fail(b, "out of memory building the routing table");
}

/* Zeroed storage for n items; never NULL for n == 0, so NULL always means out of memory. */
static void *alloc_array(struct builder *b, size_t n, size_t size, size_t align)
{
    if (size && n > (SIZE_MAX - align) / size)
        return NULL;
    char *p = arena_alloc(b->arena, n * size + align - 1);
    if (!p)
        return NULL;
    return (void *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
}

#define ALLOC_N(b, ptr, n)                                                                         \
    ((ptr) = alloc_array((b), (n), sizeof *(ptr), alignof(__typeof__(*(ptr)))))

static const char *copy_str(struct builder *b, const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *c = arena_strdup(b->arena, s);
    if (!c)
        *oom = true;
    return c;
}

static int build_group(struct builder *b, const struct lb_target_group_cfg *cfg, uint32_t index)
{
    struct lb_target_group *g = &b->routes->groups[index];
    const struct lb_target_cfg *targets = cfg->targets.items;
    bool oom = false;
    g->name = copy_str(b, cfg->name, &oom);
    g->algorithm = (enum lb_algorithm)cfg->algorithm;
    g->index = index;
    g->n_targets = (uint32_t)cfg->targets.count;
    if (oom || !ALLOC_N(b, g->targets, g->n_targets) || !ALLOC_N(b, g->cum_weight, g->n_targets))
        return out_of_memory(b);
    for (uint32_t i = 0; i < g->n_targets; i++) {
        struct lb_target *t = &g->targets[i];
        char text[NET_ADDR_TEXT_MAX];
        atomic_init(&t->outstanding, 0);
        t->weight = (uint32_t)targets[i].weight;
        t->index = i;
        t->address = targets[i].address;
        t->address_text = copy_str(b, net_addr_format(&t->address, text, sizeof text), &oom);
        g->total_weight += t->weight;
        g->cum_weight[i] = g->total_weight;
    }
    return oom ? out_of_memory(b) : 0;
}

static struct lb_target_group *find_group(const struct lb_routes *routes, const char *name)
{
    for (uint32_t i = 0; i < routes->n_groups; i++)
        if (strcmp(routes->groups[i].name, name) == 0)
            return &routes->groups[i];
    return NULL;
}

static int build_forward(struct builder *b, struct lb_action *a, const struct lb_action_cfg *cfg)
{
    const struct lb_weighted_group_cfg *many = cfg->target_groups.items;
    a->n_groups = cfg->target_group ? 1 : (uint32_t)cfg->target_groups.count;
    if (a->n_groups == 0)
        return fail(b, "a forward action has no target group");
    if (!ALLOC_N(b, a->groups, a->n_groups))
        return out_of_memory(b);
    for (uint32_t i = 0; i < a->n_groups; i++) {
        const char *name = cfg->target_group ? cfg->target_group : many[i].name;
        struct lb_weighted_group *w = &a->groups[i];
        w->group = name ? find_group(b->routes, name) : NULL;
        if (!w->group)
            return fail(b, "forward to unknown target group '%s'", name ? name : "");
        w->weight = cfg->target_group ? 1 : (uint32_t)many[i].weight;
        a->total_weight += w->weight;
        w->cum_weight = a->total_weight;
    }
    if (a->total_weight == 0)
        return fail(b, "the weights of a forward action's target groups add up to 0");
    return 0;
}

static int build_action(struct builder *b, struct lb_action *a, const struct lb_action_cfg *cfg)
{
    bool oom = false;
    a->type = (enum lb_action_type)cfg->type;
    a->status = (int)cfg->status;
    switch (a->type) {
    case LB_ACTION_FORWARD:
        return build_forward(b, a, cfg);
    case LB_ACTION_REDIRECT:
        a->protocol = copy_str(b, cfg->protocol ? cfg->protocol : "#{protocol}", &oom);
        a->host = copy_str(b, cfg->host ? cfg->host : "#{host}", &oom);
        a->port = copy_str(b, cfg->port ? cfg->port : "#{port}", &oom);
        a->path = copy_str(b, cfg->path ? cfg->path : "/#{path}", &oom);
        a->query = copy_str(b, cfg->query ? cfg->query : "#{query}", &oom);
        break;
    case LB_ACTION_FIXED_RESPONSE:
        a->content_type = copy_str(b, cfg->content_type ? cfg->content_type : "text/plain", &oom);
        a->body = copy_str(b, cfg->body ? cfg->body : "", &oom);
        a->body_len = a->body ? strlen(a->body) : 0;
        break;
    default:
        return fail(b, "unknown action type %d", cfg->type);
    }
    return oom ? out_of_memory(b) : 0;
}

/* The order conditions are tried in: an AND gives the same answer in any order, so the cheap
 * tests go first and the header scan and query parsing run only when the rest holds. */
static int field_cost(enum lb_condition_field f)
{
    switch (f) {
    case LB_COND_HTTP_REQUEST_METHOD:
        return 0;
    case LB_COND_SOURCE_IP:
        return 1;
    case LB_COND_HOST_HEADER:
        return 2;
    case LB_COND_PATH_PATTERN:
        return 3;
    case LB_COND_HTTP_HEADER:
        return 4;
    default:
        return 5;
    }
}

static int compile_query(struct builder *b, struct lb_query_pattern *q, const char *value)
{
    const char *eq = strchr(value, '=');
    const char *v = eq ? eq + 1 : value;
    q->has_key = eq && eq != value;
    if (q->has_key) {
        char *key = arena_strndup(b->arena, value, (size_t)(eq - value));
        if (!key || lb_pattern_compile(&q->key, b->arena, key, true) < 0)
            return out_of_memory(b);
    }
    return lb_pattern_compile(&q->value, b->arena, v, true) < 0 ? out_of_memory(b) : 0;
}

static int compile_value(struct builder *b, struct lb_condition *c, uint32_t i, const char *value)
{
    switch (c->field) {
    case LB_COND_SOURCE_IP:
        if (net_cidr_parse(value, &c->cidrs[i]) < 0)
            return fail(b, "invalid source-ip network '%s'", value);
        return 0;
    case LB_COND_QUERY_STRING:
        return compile_query(b, &c->queries[i], value);
    default: {
        /* Host names and header values compare case-insensitively; paths and methods exactly. */
        bool nocase = c->field == LB_COND_HOST_HEADER || c->field == LB_COND_HTTP_HEADER;
        if (lb_pattern_compile(&c->patterns[i], b->arena, value, nocase) < 0)
            return out_of_memory(b);
        return 0;
    }
    }
}

static bool alloc_values(struct builder *b, struct lb_condition *c)
{
    switch (c->field) {
    case LB_COND_SOURCE_IP:
        return ALLOC_N(b, c->cidrs, c->n_values) != NULL;
    case LB_COND_QUERY_STRING:
        return ALLOC_N(b, c->queries, c->n_values) != NULL;
    default:
        return ALLOC_N(b, c->patterns, c->n_values) != NULL;
    }
}

/* Lower-cased once, so that a request's header names are the only ones folded. */
static const char *lower_copy(struct builder *b, const char *s, bool *oom)
{
    char *c = (char *)copy_str(b, s, oom);
    for (char *p = c; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + ('a' - 'A'));
    return c;
}

static int build_condition(struct builder *b, struct lb_condition *c,
                           const struct lb_condition_cfg *cfg)
{
    const char *const *values = cfg->values.items;
    bool oom = false;
    c->field = (enum lb_condition_field)cfg->field;
    c->n_values = (uint32_t)cfg->values.count;
    if (c->field > LB_COND_SOURCE_IP)
        return fail(b, "unknown condition field %d", cfg->field);
    if (c->field == LB_COND_HTTP_HEADER && !cfg->header_name)
        return fail(b, "an http-header condition has no header_name");
    if (c->field == LB_COND_HTTP_HEADER) {
        c->header_name = lower_copy(b, cfg->header_name, &oom);
        c->header_name_len = strlen(cfg->header_name);
    }
    if (oom || !alloc_values(b, c))
        return out_of_memory(b);
    for (uint32_t i = 0; i < c->n_values; i++)
        if (compile_value(b, c, i, values[i]) < 0)
            return -1;
    return 0;
}

static void sort_conditions(struct lb_condition *c, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        struct lb_condition x = c[i];
        uint32_t j = i;
        for (; j > 0 && field_cost(c[j - 1].field) > field_cost(x.field); j--)
            c[j] = c[j - 1];
        c[j] = x;
    }
}

static int build_rule(struct builder *b, struct lb_rule *r, const struct lb_rule_cfg *cfg)
{
    const struct lb_condition_cfg *conds = cfg->conditions.items;
    r->priority = (uint32_t)cfg->priority;
    r->n_conditions = (uint32_t)cfg->conditions.count;
    if (!ALLOC_N(b, r->conditions, r->n_conditions))
        return out_of_memory(b);
    for (uint32_t i = 0; i < r->n_conditions; i++)
        if (build_condition(b, &r->conditions[i], &conds[i]) < 0)
            return -1;
    sort_conditions(r->conditions, r->n_conditions);
    return build_action(b, &r->action, &cfg->action);
}

static int by_priority(const void *x, const void *y)
{
    const struct lb_rule *a = x, *b = y;
    return (a->priority > b->priority) - (a->priority < b->priority);
}

static int build_listener(struct builder *b, const struct lb_listener_cfg *cfg, uint32_t index)
{
    struct lb_listener *l = &b->routes->listeners[index];
    const struct lb_rule_cfg *rules = cfg->rules.items;
    bool oom = false;
    l->name = copy_str(b, cfg->name, &oom);
    l->index = index;
    l->listen = cfg->listen;
    l->port = net_addr_port(&cfg->listen);
    snprintf(l->port_text, sizeof l->port_text, "%d", l->port);
    l->n_rules = (uint32_t)cfg->rules.count;
    if (oom || !ALLOC_N(b, l->rules, l->n_rules))
        return out_of_memory(b);
    for (uint32_t i = 0; i < l->n_rules; i++) {
        snprintf(b->where, sizeof b->where, "listener '%s', rule %lld", cfg->name,
                 (long long)rules[i].priority);
        if (build_rule(b, &l->rules[i], &rules[i]) < 0)
            return -1;
    }
    qsort(l->rules, l->n_rules, sizeof *l->rules, by_priority);
    snprintf(b->where, sizeof b->where, "listener '%s', default action", cfg->name);
    if (build_action(b, &l->default_action, &cfg->default_action) < 0)
        return -1;
    *b->where = '\0';
    return 0;
}

static int build(struct builder *b, const struct config_lb *cfg)
{
    struct lb_routes *r = b->routes;
    const struct lb_target_group_cfg *groups = cfg->target_groups.items;
    const struct lb_listener_cfg *listeners = cfg->listeners.items;
    r->n_groups = (uint32_t)cfg->target_groups.count;
    r->n_listeners = (uint32_t)cfg->listeners.count;
    if (!ALLOC_N(b, r->groups, r->n_groups) || !ALLOC_N(b, r->listeners, r->n_listeners))
        return out_of_memory(b);
    for (uint32_t i = 0; i < r->n_groups; i++)
        if (build_group(b, &groups[i], i) < 0)
            return -1;
    for (uint32_t i = 0; i < r->n_listeners; i++)
        if (build_listener(b, &listeners[i], i) < 0)
            return -1;
    return 0;
}

struct lb_routes *lb_routes_build(const struct config_lb *cfg, char *err, size_t errlen)
{
    char scratch[256];
    struct arena arena = {0};
    struct lb_routes *routes = arena_alloc(&arena, sizeof *routes);
    if (!routes) {
        snprintf(err, errlen, "out of memory building the routing table");
        return NULL;
    }
    /* From here on the arena lives inside what it allocated; lb_routes_free() copies it out. */
    routes->arena = arena;
    struct builder b = {routes, &routes->arena, scratch, sizeof scratch};
    if (build(&b, cfg) < 0) {
        snprintf(err, errlen, "%s", scratch);
        lb_routes_free(routes);
        return NULL;
    }
    return routes;
}

void lb_routes_free(struct lb_routes *routes)
{
    if (!routes)
        return;
    struct arena arena = routes->arena;
    arena_free(&arena);
}

const struct lb_listener *lb_routes_listener(const struct lb_routes *routes, const char *name)
{
    for (uint32_t i = 0; i < routes->n_listeners; i++)
        if (strcmp(routes->listeners[i].name, name) == 0)
            return &routes->listeners[i];
    return NULL;
}

struct lb_target_group *lb_routes_group(const struct lb_routes *routes, const char *name)
{
    return find_group(routes, name);
}

/* ---- Matching ---------------------------------------------------------------------------- */

/* What several conditions look at, worked out once per request. */
struct request_view {
    const struct http1_msg *req;
    const struct sockaddr *client;
    struct http1_slice host;
};

struct http1_slice lb_host_without_port(const struct http1_msg *req)
{
    if (!req->has_host || !req->host.p)
        return (struct http1_slice){"", 0};
    struct http1_slice h = req->host;
    /* An IPv6 literal keeps its brackets, as in a URL; its colons are not a port. */
    const char *end = h.len && h.p[0] == '[' ? memchr(h.p, ']', h.len) : NULL;
    if (end)
        return (struct http1_slice){h.p, (size_t)(end - h.p) + 1};
    const char *colon = memchr(h.p, ':', h.len);
    if (colon)
        h.len = (size_t)(colon - h.p);
    return h;
}

static bool any_pattern(const struct lb_condition *c, struct http1_slice s)
{
    for (uint32_t i = 0; i < c->n_values; i++)
        if (lb_pattern_match(&c->patterns[i], s.p, s.len))
            return true;
    return false;
}

/* Every occurrence of the header counts: ALB matches if any of them does. */
static bool header_holds(const struct lb_condition *c, const struct http1_msg *req)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct http1_header *h = &req->headers[i];
        if (h->name.len == c->header_name_len &&
            lb_eq_lower(c->header_name, h->name.p, h->name.len) && any_pattern(c, h->value))
            return true;
    }
    return false;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Query keys and values longer than this are compared as received, undecoded: decoding only
 * shrinks, so whatever fits here decodes completely, and nothing is ever truncated into a false
 * match. Condition values have at most 128 characters, so real matches are far below it. */
enum { QUERY_DECODE_MAX = 1024 };

/* Percent-decodes s into buf when it has anything to decode; a `%` not followed by two hex digits
 * stays as it is. `+` stays too: it means a space only in HTML forms, not in URLs (RFC 3986). */
static struct http1_slice percent_decode(struct http1_slice s, char *buf)
{
    if (s.len > QUERY_DECODE_MAX || !memchr(s.p, '%', s.len))
        return s;
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        int hi, lo;
        if (s.p[i] == '%' && i + 2 < s.len && (hi = hex_digit(s.p[i + 1])) >= 0 &&
            (lo = hex_digit(s.p[i + 2])) >= 0) {
            buf[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            buf[n++] = s.p[i];
        }
    }
    return (struct http1_slice){buf, n};
}

static bool query_param_matches(const struct lb_condition *c, struct http1_slice key,
                                struct http1_slice value)
{
    for (uint32_t i = 0; i < c->n_values; i++) {
        const struct lb_query_pattern *q = &c->queries[i];
        if ((!q->has_key || lb_pattern_match(&q->key, key.p, key.len)) &&
            lb_pattern_match(&q->value, value.p, value.len))
            return true;
    }
    return false;
}

static bool query_holds(const struct lb_condition *c, struct http1_slice query)
{
    char kbuf[QUERY_DECODE_MAX], vbuf[QUERY_DECODE_MAX];
    const char *p = query.p, *end = query.p + query.len;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        struct http1_slice param = {p, (size_t)((amp ? amp : end) - p)};
        p = amp ? amp + 1 : end;
        if (param.len == 0)
            continue;
        const char *eq = memchr(param.p, '=', param.len);
        struct http1_slice key = {param.p, eq ? (size_t)(eq - param.p) : param.len};
        struct http1_slice value = {eq ? eq + 1 : param.p + param.len,
                                    eq ? param.len - key.len - 1 : 0};
        if (query_param_matches(c, percent_decode(key, kbuf), percent_decode(value, vbuf)))
            return true;
    }
    return false;
}

static bool source_holds(const struct lb_condition *c, const struct sockaddr *client)
{
    if (!client)
        return false;
    for (uint32_t i = 0; i < c->n_values; i++)
        if (net_cidr_contains(&c->cidrs[i], client))
            return true;
    return false;
}

static bool condition_holds(const struct lb_condition *c, const struct request_view *v)
{
    switch (c->field) {
    case LB_COND_HOST_HEADER:
        return v->req->has_host && any_pattern(c, v->host);
    case LB_COND_PATH_PATTERN:
        return any_pattern(c, v->req->path);
    case LB_COND_HTTP_HEADER:
        return header_holds(c, v->req);
    case LB_COND_HTTP_REQUEST_METHOD:
        return any_pattern(c, v->req->method);
    case LB_COND_QUERY_STRING:
        return query_holds(c, v->req->query);
    case LB_COND_SOURCE_IP:
        return source_holds(c, v->client);
    }
    return false;
}

static bool rule_holds(const struct lb_rule *r, const struct request_view *v)
{
    for (uint32_t i = 0; i < r->n_conditions; i++)
        if (!condition_holds(&r->conditions[i], v))
            return false;
    return true;
}

const struct lb_action *lb_route(const struct lb_listener *l, const struct http1_msg *req,
                                 const struct sockaddr *client)
{
    struct request_view v = {req, client, lb_host_without_port(req)};
    for (uint32_t i = 0; i < l->n_rules; i++)
        if (rule_holds(&l->rules[i], &v))
            return &l->rules[i].action;
    return &l->default_action;
}

struct lb_target_group *lb_action_pick_group(const struct lb_action *a, uint64_t random)
{
    if (a->type != LB_ACTION_FORWARD || a->n_groups == 0)
        return NULL;
    if (a->n_groups == 1)
        return a->groups[0].group;
    uint64_t r = random % a->total_weight;
    for (uint32_t i = 0; i < a->n_groups; i++)
        if (r < a->groups[i].cum_weight)
            return a->groups[i].group;
    return NULL; /* unreachable: r < total_weight == the last cum_weight */
}

/* ---- Redirects --------------------------------------------------------------------------- */

struct location {
    char *p;
    size_t size, len; /* len stays below size: room for the NUL */
    bool overflow;
};

static void put(struct location *o, const char *s, size_t n)
{
    if (o->overflow || n >= o->size - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

struct redirect_vars {
    struct http1_slice protocol, host, port, path, query;
};

static const struct http1_slice *variable(const struct redirect_vars *v, const char *name,
                                          size_t len)
{
#define NAMED(text) (len == sizeof(text) - 1 && memcmp(name, text, len) == 0)
    if (NAMED("protocol"))
        return &v->protocol;
    if (NAMED("host"))
        return &v->host;
    if (NAMED("port"))
        return &v->port;
    if (NAMED("path"))
        return &v->path;
    if (NAMED("query"))
        return &v->query;
#undef NAMED
    return NULL;
}

/* Copies tmpl with each #{variable} replaced; an unknown #{...} stays as written. */
static void expand(struct location *o, const char *tmpl, const struct redirect_vars *v)
{
    const char *t = tmpl;
    for (const char *var; (var = strstr(t, "#{")) != NULL;) {
        const char *close = strchr(var + 2, '}');
        if (!close)
            break;
        const struct http1_slice *value = variable(v, var + 2, (size_t)(close - var - 2));
        put(o, t, (size_t)(var - t));
        if (value)
            put(o, value->p, value->len);
        else
            put(o, var, (size_t)(close + 1 - var));
        t = close + 1;
    }
    put(o, t, strlen(t));
}

static int default_port(const char *scheme, size_t len)
{
    if (len == 4 && memcmp(scheme, "http", 4) == 0)
        return 80;
    if (len == 5 && memcmp(scheme, "https", 5) == 0)
        return 443;
    return -1;
}

/* The scheme, lower-cased in place after "protocol://" has been written; its default port, or -1
 * when it is neither http nor https. */
static int put_protocol(struct location *o, const char *tmpl, const struct redirect_vars *v)
{
    expand(o, tmpl, v);
    if (o->overflow)
        return -1;
    for (size_t i = 0; i < o->len; i++)
        if (o->p[i] >= 'A' && o->p[i] <= 'Z')
            o->p[i] = (char)(o->p[i] + ('a' - 'A'));
    int port = default_port(o->p, o->len);
    put(o, "://", 3);
    return port;
}

/* The expanded port as a number from 1 to 65535, or -1. */
static long expand_port(const char *tmpl, const struct redirect_vars *v)
{
    char buf[16];
    struct location o = {buf, sizeof buf, 0, false};
    expand(&o, tmpl, v);
    if (o.overflow || o.len == 0 || o.len > 5)
        return -1;
    long port = 0;
    for (size_t i = 0; i < o.len; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        port = port * 10 + (buf[i] - '0');
    }
    return port >= 1 && port <= 65535 ? port : -1;
}

/* Inserts c at pos once what follows is known, so that no room is needed for a byte that may
 * turn out not to be written. */
static void insert_at(struct location *o, size_t pos, char c)
{
    if (o->overflow || o->len + 1 >= o->size) {
        o->overflow = true;
        return;
    }
    memmove(o->p + pos + 1, o->p + pos, o->len - pos);
    o->p[pos] = c;
    o->len++;
}

/* ALB's paths are absolute: one is made so when the template does not start with `/`. */
static void put_path(struct location *o, const char *tmpl, const struct redirect_vars *v)
{
    size_t start = o->len;
    expand(o, tmpl, v);
    if (o->len == start || o->p[start] != '/')
        insert_at(o, start, '/');
}

/* An empty query leaves out the `?` too. */
static void put_query(struct location *o, const char *tmpl, const struct redirect_vars *v)
{
    size_t start = o->len;
    expand(o, tmpl, v);
    if (o->len > start)
        insert_at(o, start, '?');
}

static bool visible_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

static size_t refuse(char *out)
{
    out[0] = '\0';
    return 0;
}

static struct redirect_vars request_vars(const struct http1_msg *req, const char *protocol,
                                         char *port, size_t port_size, int listener_port)
{
    struct redirect_vars v = {.host = lb_host_without_port(req), .path = req->path};
    v.protocol = (struct http1_slice){protocol, strlen(protocol)};
    int n = snprintf(port, port_size, "%d", listener_port);
    v.port = (struct http1_slice){port, n > 0 ? (size_t)n : 0};
    if (v.path.len && v.path.p[0] == '/') {
        v.path.p++;
        v.path.len--;
    }
    if (req->query.p)
        v.query = req->query;
    else
        v.query = (struct http1_slice){"", 0};
    return v;
}

size_t lb_redirect_location(const struct lb_action *a, const struct http1_msg *req,
                            const char *protocol, int listener_port, char *out, size_t size)
{
    if (size == 0)
        return 0;
    out[0] = '\0';
    if (a->type != LB_ACTION_REDIRECT)
        return 0;
    char port_text[16];
    struct redirect_vars v =
        request_vars(req, protocol ? protocol : "http", port_text, sizeof port_text, listener_port);
    struct location o = {out, size, 0, false};
    int default_port_number = put_protocol(&o, a->protocol, &v);
    size_t host_start = o.len;
    expand(&o, a->host, &v);
    bool empty_host = o.len == host_start;
    long port = expand_port(a->port, &v);
    if (default_port_number < 0 || empty_host || port < 0)
        return refuse(out);
    if (port != default_port_number) {
        char text[8];
        int n = snprintf(text, sizeof text, ":%ld", port);
        put(&o, text, (size_t)n);
    }
    put_path(&o, a->path, &v);
    put_query(&o, a->query, &v);
    if (o.overflow || !visible_ascii(out, o.len))
        return refuse(out);
    out[o.len] = '\0';
    return o.len;
}
