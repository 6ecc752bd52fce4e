#include "config/lb_config.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const lb_algorithm_names[] = {"round_robin", "least_outstanding_requests",
                                          "weighted_random", NULL};
const char *const lb_condition_field_names[] = {
    "host-header",  "path-pattern", "http-header", "http-request-method",
    "query-string", "source-ip",    NULL};
const char *const lb_action_type_names[] = {"forward", "redirect", "fixed-response", NULL};
static const char *const access_log_formats[] = {"common", "json", NULL};

#define LIST_OF(T) .elem_type = (T)

static const struct cfg_key target_keys[] = {
    {"address", CFG_ADDR, offsetof(struct lb_target_cfg, address), NULL,
     .help = "the target's IP:PORT"},
    {"weight", CFG_INT, offsetof(struct lb_target_cfg, weight), "1", 0, 999,
     .help = "share of requests relative to the group's other targets (weighted_random); 0 "
             "sends none"},
};
static void check_target(struct cfg_ctx *ctx, void *obj, const struct ynode *map, const char *path)
{
    const struct lb_target_cfg *t = obj;
    if (!t->address.len)
        cfg_error(ctx, map,
                  "'%s' needs an 'address' (expected an address such as "
                  "127.0.0.1:9001)",
                  path);
    else if (net_addr_family(&t->address) == AF_UNIX || net_addr_port(&t->address) == 0)
        cfg_error_at_key(ctx, map, "address",
                         "'%s.address' must be an IP address with a port "
                         "from 1 to 65535",
                         path);
}
static const struct cfg_section target_section = {"target", CFG_KEYS(target_keys),
                                                  sizeof(struct lb_target_cfg), check_target};

/* RFC 9110 5.6.2 token: what a header name may be made of. */
static bool is_token(const char *v)
{
    if (!*v)
        return false;
    for (const char *p = v; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p))
            return false;
    return true;
}

static const char *const targets_from_names[] = {"config", "redis", NULL};
static const char *const stickiness_types[] = {"lb_cookie", "app_cookie", NULL};

bool lb_matcher_matches(const struct lb_matcher *m, int status)
{
    for (int i = 0; i < m->n; i++)
        if (status >= m->lo[i] && status <= m->hi[i])
            return true;
    return false;
}

/* ALB's matcher syntax: codes from 200 to 499, single, ranged with '-', listed with ','. */
static int parse_matcher(const char *text, struct lb_matcher *m)
{
    m->n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long lo = strtol(p, &end, 10), hi = lo;
        if (end == p)
            return -1;
        if (*end == '-') {
            p = end + 1;
            hi = strtol(p, &end, 10);
            if (end == p)
                return -1;
        }
        if (lo < 200 || hi > 499 || lo > hi || m->n == LB_MATCHER_RANGES)
            return -1;
        m->lo[m->n] = (int)lo;
        m->hi[m->n++] = (int)hi;
        if (*end == ',')
            end++;
        else if (*end)
            return -1;
        p = end;
    }
    return m->n ? 0 : -1;
}

static const struct cfg_key health_check_keys[] = {
    {"enabled", CFG_BOOL, offsetof(struct lb_health_check_cfg, enabled), "true",
     .help = "whether targets are checked; unchecked targets count as healthy"},
    {"path", CFG_STRING, offsetof(struct lb_health_check_cfg, path), "/", .max = 1024,
     .help = "the path of the GET request"},
    {"port", CFG_STRING, offsetof(struct lb_health_check_cfg, port), "traffic-port", .max = 16,
     .help = "traffic-port (the target's own) or a port number"},
    {"interval", CFG_DURATION, offsetof(struct lb_health_check_cfg, interval_ms), "30s", 100,
     300000, .help = "time between two checks of a target"},
    {"timeout", CFG_DURATION, offsetof(struct lb_health_check_cfg, timeout_ms), "5s", 100, 120000,
     .help = "time a check may take; more is a failure (Target.Timeout)"},
    {"healthy_threshold", CFG_INT, offsetof(struct lb_health_check_cfg, healthy_threshold), "5", 1,
     10, .help = "checks in a row an unhealthy target must pass to be healthy again"},
    {"unhealthy_threshold", CFG_INT, offsetof(struct lb_health_check_cfg, unhealthy_threshold), "2",
     1, 10, .help = "checks in a row a target must fail to be unhealthy"},
    {"matcher", CFG_STRING, offsetof(struct lb_health_check_cfg, matcher), "200", .max = 64,
     .help = "the statuses that pass: 200, 200-299, 200,302"},
};

/* The parsed forms of matcher and port; -1 and -2 say which one is wrong. */
static int resolve_health_check(struct lb_health_check_cfg *hc)
{
    if (parse_matcher(hc->matcher, &hc->codes) < 0)
        return -1;
    char *end;
    long port = strtol(hc->port, &end, 10);
    if (strcmp(hc->port, "traffic-port") == 0)
        hc->port_number = 0;
    else if (*hc->port >= '0' && *hc->port <= '9' && *end == '\0' && port >= 1 && port <= 65535)
        hc->port_number = (int)port;
    else
        return -2;
    return 0;
}

static void check_health_check(struct cfg_ctx *ctx, void *obj, const struct ynode *map,
                               const char *path)
{
    struct lb_health_check_cfg *hc = obj;
    int resolved = resolve_health_check(hc);
    if (resolved == -1)
        cfg_error_at_key(ctx, map, "matcher",
                         "invalid value '%s' for '%s.matcher' (expected codes from 200 to 499 such "
                         "as 200, 200-299 or 200,302)",
                         hc->matcher, path);
    if (resolved == -2)
        cfg_error_at_key(ctx, map, "port",
                         "invalid value '%s' for '%s.port' (expected traffic-port or a port from 1 "
                         "to 65535)",
                         hc->port, path);
    if (hc->path[0] != '/' || strpbrk(hc->path, " \r\n\t"))
        cfg_error_at_key(ctx, map, "path",
                         "invalid value '%s' for '%s.path' (expected a path starting with / and "
                         "without spaces)",
                         hc->path, path);
    if (hc->timeout_ms >= hc->interval_ms)
        cfg_error_at_key(ctx, map, "timeout",
                         "'%s.timeout' must be shorter than '%s.interval' (expected timeout < "
                         "interval)",
                         path, path);
}
static const struct cfg_section health_check_section = {"health_check", CFG_KEYS(health_check_keys),
                                                        sizeof(struct lb_health_check_cfg),
                                                        check_health_check};

static const struct cfg_key stickiness_keys[] = {
    {"enabled", CFG_BOOL, offsetof(struct lb_stickiness_cfg, enabled), "false",
     .help = "keep a client on one target"},
    {"type", CFG_ENUM, offsetof(struct lb_stickiness_cfg, type), "lb_cookie",
     .choices = stickiness_types,
     .help = "lb_cookie: a cookie of the balancer's; app_cookie: follow the application's cookie"},
    {"duration", CFG_DURATION, offsetof(struct lb_stickiness_cfg, duration_ms), "1d", 1000,
     604800000, .help = "how long the balancer's cookie lasts"},
    {"cookie_name", CFG_STRING, offsetof(struct lb_stickiness_cfg, cookie_name), NULL, .max = 64,
     .help = "app_cookie: the application's cookie name"},
};

static void check_stickiness(struct cfg_ctx *ctx, void *obj, const struct ynode *map,
                             const char *path)
{
    const struct lb_stickiness_cfg *st = obj;
    if (st->enabled && st->type == LB_STICKY_APP_COOKIE && !st->cookie_name)
        cfg_error(ctx, map, "'%s' of type app_cookie needs a 'cookie_name'", path);
    if (st->cookie_name && !is_token(st->cookie_name))
        cfg_error_at_key(ctx, map, "cookie_name",
                         "invalid cookie name '%s' for '%s.cookie_name' (expected letters, digits "
                         "and !#$%%&'*+-.^_`|~)",
                         st->cookie_name, path);
}
static const struct cfg_section stickiness_section = {
    "stickiness", CFG_KEYS(stickiness_keys), sizeof(struct lb_stickiness_cfg), check_stickiness};

static const struct cfg_key target_group_keys[] = {
    {"name", CFG_STRING, offsetof(struct lb_target_group_cfg, name), NULL, .max = 32,
     .help = "the group's name, referred to by forward actions (letters, digits, '-' and '_')"},
    {"algorithm", CFG_ENUM, offsetof(struct lb_target_group_cfg, algorithm), "round_robin",
     .choices = lb_algorithm_names, .help = "how a request picks a target"},
    {"targets_from", CFG_ENUM, offsetof(struct lb_target_group_cfg, targets_from), "config",
     .choices = targets_from_names,
     .help = "config: `targets` below; redis: the members gantry-core registers (docs/redis.md)"},
    {"targets", CFG_LIST, offsetof(struct lb_target_group_cfg, targets), NULL,
     .section = &target_section, LIST_OF(CFG_SECTION), .max_items = 1000,
     .help = "the targets: a list of {address, weight}"},
    {"health_check", CFG_SECTION, offsetof(struct lb_target_group_cfg, health_check), NULL,
     .section = &health_check_section, .help = "active health checks"},
    {"deregistration_delay", CFG_DURATION,
     offsetof(struct lb_target_group_cfg, deregistration_delay_ms), "300s", 0, 3600000,
     .help = "how long a deregistered target may finish its requests"},
    {"slow_start", CFG_DURATION, offsetof(struct lb_target_group_cfg, slow_start_ms), "0s", 0,
     900000, .help = "a newly healthy target's share ramps up over this; 0: off"},
    {"stickiness", CFG_SECTION, offsetof(struct lb_target_group_cfg, stickiness), NULL,
     .section = &stickiness_section, .help = "sticky sessions"},
};

static bool valid_name(const char *name)
{
    if (!name || !*name)
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return false;
    return true;
}

/* Listeners and target groups are named, and referred to by name. */
static bool check_name(struct cfg_ctx *ctx, const struct ynode *map, const char *name,
                       const char *path)
{
    if (!name) {
        cfg_error(ctx, map, "'%s' needs a 'name'", path);
        return false;
    }
    if (!valid_name(name)) {
        cfg_error_at_key(ctx, map, "name",
                         "invalid name '%s' for '%s.name' (expected letters, digits, '-' and '_')",
                         name, path);
        return false;
    }
    return true;
}

static void check_target_group(struct cfg_ctx *ctx, void *obj, const struct ynode *map,
                               const char *path)
{
    const struct lb_target_group_cfg *g = obj;
    check_name(ctx, map, g->name, path);
}
static const struct cfg_section target_group_section = {"target group", CFG_KEYS(target_group_keys),
                                                        sizeof(struct lb_target_group_cfg),
                                                        check_target_group, .has_origin = true};

static const struct cfg_key weighted_group_keys[] = {
    {"name", CFG_STRING, offsetof(struct lb_weighted_group_cfg, name), NULL, .max = 32,
     .help = "a target group"},
    {"weight", CFG_INT, offsetof(struct lb_weighted_group_cfg, weight), "1", 0, 999,
     .help = "share of requests relative to the other groups of the action"},
};
static const struct cfg_section weighted_group_section = {
    "weighted target group", CFG_KEYS(weighted_group_keys), sizeof(struct lb_weighted_group_cfg)};

static const struct cfg_key action_keys[] = {
    {"type", CFG_ENUM, offsetof(struct lb_action_cfg, type), NULL, .choices = lb_action_type_names,
     .help = "what the action does"},
    {"target_group", CFG_STRING, offsetof(struct lb_action_cfg, target_group), NULL, .max = 32,
     .help = "forward: the one target group"},
    {"target_groups", CFG_LIST, offsetof(struct lb_action_cfg, target_groups), NULL,
     .section = &weighted_group_section, LIST_OF(CFG_SECTION), .max_items = 5,
     .help = "forward: several groups, a list of {name, weight}"},
    {"status", CFG_INT, offsetof(struct lb_action_cfg, status), NULL, 0, 599,
     .help = "redirect: 301 (default) or 302; fixed-response: 200 (default) to 599"},
    {"protocol", CFG_STRING, offsetof(struct lb_action_cfg, protocol), "#{protocol}", .max = 64,
     .help = "redirect: the new URL's scheme"},
    {"host", CFG_STRING, offsetof(struct lb_action_cfg, host), "#{host}", .max = 128,
     .help = "redirect: the new URL's host"},
    {"port", CFG_STRING, offsetof(struct lb_action_cfg, port), "#{port}", .max = 64,
     .help = "redirect: the new URL's port"},
    {"path", CFG_STRING, offsetof(struct lb_action_cfg, path), "/#{path}", .max = 128,
     .help = "redirect: the new URL's path"},
    {"query", CFG_STRING, offsetof(struct lb_action_cfg, query), "#{query}", .max = 128,
     .help = "redirect: the new URL's query, without '?'"},
    {"content_type", CFG_STRING, offsetof(struct lb_action_cfg, content_type), "text/plain",
     .max = 128, .help = "fixed-response: the Content-Type"},
    {"body", CFG_STRING, offsetof(struct lb_action_cfg, body), NULL, .max = 1024,
     .help = "fixed-response: the body"},
};

/* Visible ASCII only: a redirect's parts end up in a Location header. */
static bool visible_ascii(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return false;
    return true;
}

static bool is_port_or_var(const char *v)
{
    if (strcmp(v, "#{port}") == 0)
        return true;
    char *end;
    long port = strtol(v, &end, 10);
    return *v >= '0' && *v <= '9' && *end == '\0' && port >= 1 && port <= 65535;
}

/* As ALB: the parts are checked when loaded, and a redirect must change something. */
static void check_redirect(struct cfg_ctx *ctx, const struct lb_action_cfg *a,
                           const struct ynode *map, const char *path)
{
    static const char *const parts[] = {"host", "path", "query"};
    const char *values[] = {a->host, a->path, a->query};
    if (strcasecmp(a->protocol, "http") != 0 && strcasecmp(a->protocol, "https") != 0 &&
        strcmp(a->protocol, "#{protocol}") != 0)
        cfg_error_at_key(ctx, map, "protocol",
                         "invalid value '%s' for '%s.protocol' (expected HTTP, HTTPS or "
                         "#{protocol})",
                         a->protocol, path);
    if (!is_port_or_var(a->port))
        cfg_error_at_key(ctx, map, "port",
                         "invalid value '%s' for '%s.port' (expected a port from 1 to 65535 or "
                         "#{port})",
                         a->port, path);
    for (size_t i = 0; i < 3; i++)
        if (*values[i] && !visible_ascii(values[i]))
            cfg_error_at_key(ctx, map, parts[i],
                             "'%s.%s' holds spaces or control characters (expected visible "
                             "ASCII)",
                             path, parts[i]);
    if (a->path[0] != '/')
        cfg_error_at_key(ctx, map, "path", "'%s.path' must start with / (expected e.g. /#{path})",
                         path);
    if (strcmp(a->protocol, "#{protocol}") == 0 && strcmp(a->host, "#{host}") == 0 &&
        strcmp(a->port, "#{port}") == 0 && strcmp(a->path, "/#{path}") == 0 &&
        strcmp(a->query, "#{query}") == 0)
        cfg_error(ctx, map,
                  "'%s' redirects to the very URL requested, which would loop (expected a "
                  "change of protocol, host, port, path or query)",
                  path);
}

static void check_action(struct cfg_ctx *ctx, void *obj, const struct ynode *map, const char *path)
{
    struct lb_action_cfg *a = obj;
    if (!cfg_find_key(map, "type")) {
        cfg_error(ctx, map,
                  "'%s' needs a 'type' (expected one of: forward, redirect, "
                  "fixed-response)",
                  path);
        return;
    }
    bool one = a->target_group != NULL, many = a->target_groups.count > 0;
    if (a->type == LB_ACTION_FORWARD && one == many)
        cfg_error(ctx, map,
                  "'%s' forwards to 'target_group' or to 'target_groups', exactly one "
                  "of them",
                  path);
    if (a->type != LB_ACTION_FORWARD && (one || many))
        cfg_error(ctx, map, "'%s' is a %s action: 'target_group(s)' belong to forward actions",
                  path, lb_action_type_names[a->type]);
    if (a->type == LB_ACTION_REDIRECT) {
        if (a->status == 0)
            a->status = 301;
        if (a->status != 301 && a->status != 302)
            cfg_error_at_key(ctx, map, "status", "'%s.status' of a redirect must be 301 or 302",
                             path);
        check_redirect(ctx, a, map, path);
    }
    if (a->type == LB_ACTION_FIXED_RESPONSE) {
        if (a->status == 0)
            a->status = 200;
        if (a->status < 200)
            cfg_error_at_key(ctx, map, "status",
                             "'%s.status' of a fixed-response must be from "
                             "200 to 599",
                             path);
    }
}
static const struct cfg_section action_section = {"action", CFG_KEYS(action_keys),
                                                  sizeof(struct lb_action_cfg), check_action,
                                                  .has_origin = true};

static const struct cfg_key condition_keys[] = {
    {"field", CFG_ENUM, offsetof(struct lb_condition_cfg, field), NULL,
     .choices = lb_condition_field_names, .help = "what the condition looks at"},
    {"header_name", CFG_STRING, offsetof(struct lb_condition_cfg, header_name), NULL, .max = 40,
     .help = "http-header: the header's name"},
    {"values", CFG_LIST, offsetof(struct lb_condition_cfg, values), NULL, LIST_OF(CFG_STRING),
     .max_items = 16, .help = "the condition holds when any value matches"},
};

/* Characters ALB allows in each kind of condition value. */
static bool value_chars_ok(int field, const char *v)
{
    for (const char *p = v; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x21 || c > 0x7e)
            return false;
        if (field == LB_COND_HOST_HEADER && !isalnum(c) && !strchr("-.*?", c))
            return false;
        if (field == LB_COND_HTTP_REQUEST_METHOD && !isupper(c) && !strchr("-_", c))
            return false;
    }
    return true;
}

static void check_condition_value(struct cfg_ctx *ctx, const struct lb_condition_cfg *c,
                                  const struct ynode *values, size_t i, const char *path)
{
    const char *v = ((const char *const *)c->values.items)[i];
    const struct ynode *at = values->items[i];
    struct net_cidr cidr;
    if (!*v || strlen(v) > 128)
        cfg_error(ctx, at, "'%s.values[%zu]' must have 1 to 128 characters", path, i);
    else if (c->field == LB_COND_SOURCE_IP && net_cidr_parse(v, &cidr) < 0)
        cfg_error(ctx, at,
                  "invalid value '%s' for '%s.values[%zu]' (expected an IPv4 or IPv6 "
                  "network such as 10.0.0.0/8 or ::1/128)",
                  v, path, i);
    else if (c->field == LB_COND_PATH_PATTERN && v[0] != '/' && v[0] != '*')
        cfg_error(ctx, at,
                  "invalid value '%s' for '%s.values[%zu]' (expected a path pattern "
                  "starting with / or *)",
                  v, path, i);
    else if (c->field != LB_COND_SOURCE_IP && c->field != LB_COND_QUERY_STRING &&
             c->field != LB_COND_HTTP_HEADER && c->field != LB_COND_PATH_PATTERN &&
             !value_chars_ok(c->field, v))
        cfg_error(ctx, at, "invalid value '%s' for '%s.values[%zu]' (expected %s)", v, path, i,
                  c->field == LB_COND_HOST_HEADER
                      ? "a host name pattern of letters, digits, '-', '.', '*' and '?'"
                      : "an upper-case method name such as GET");
}

static void check_condition(struct cfg_ctx *ctx, void *obj, const struct ynode *map,
                            const char *path)
{
    const struct lb_condition_cfg *c = obj;
    if (!cfg_find_key(map, "field")) {
        cfg_error(ctx, map,
                  "'%s' needs a 'field' (expected one of: host-header, path-pattern, "
                  "http-header, http-request-method, query-string, source-ip)",
                  path);
        return;
    }
    if (c->values.count == 0) {
        cfg_error(ctx, map, "'%s' needs at least one of 'values'", path);
        return;
    }
    if (c->header_name && !is_token(c->header_name)) {
        cfg_error_at_key(ctx, map, "header_name",
                         "invalid header name '%s' for '%s.header_name' (expected letters, digits "
                         "and !#$%%&'*+-.^_`|~)",
                         c->header_name, path);
        return;
    }
    if ((c->field == LB_COND_HTTP_HEADER) != (c->header_name != NULL)) {
        cfg_error(ctx, map,
                  "'%s': 'header_name' goes with http-header conditions, and only "
                  "with them",
                  path);
        return;
    }
    const struct ynode *values = cfg_find_value(map, "values");
    for (size_t i = 0; i < c->values.count; i++)
        check_condition_value(ctx, c, values, i, path);
}
static const struct cfg_section condition_section = {
    "condition", CFG_KEYS(condition_keys), sizeof(struct lb_condition_cfg), check_condition};

static const struct cfg_key rule_keys[] = {
    {"priority", CFG_INT, offsetof(struct lb_rule_cfg, priority), NULL, 1, 50000,
     .help = "rules are evaluated from the lowest priority number up; unique per listener"},
    {"conditions", CFG_LIST, offsetof(struct lb_rule_cfg, conditions), NULL,
     .section = &condition_section, LIST_OF(CFG_SECTION), .max_items = 8,
     .help = "all must hold for the rule to apply"},
    {"action", CFG_SECTION, offsetof(struct lb_rule_cfg, action), NULL, .section = &action_section,
     .help = "what to do with a matching request"},
};
static void check_rule(struct cfg_ctx *ctx, void *obj, const struct ynode *map, const char *path)
{
    const struct lb_rule_cfg *r = obj;
    if (!cfg_find_key(map, "priority"))
        cfg_error(ctx, map, "'%s' needs a 'priority' (expected an integer from 1 to 50000)", path);
    else if (r->conditions.count == 0)
        cfg_error(ctx, map, "'%s' needs at least one condition", path);
    else if (!r->action.origin.file)
        cfg_error(ctx, map, "'%s' needs an 'action'", path);
}
static const struct cfg_section rule_section = {
    "rule", CFG_KEYS(rule_keys), sizeof(struct lb_rule_cfg), check_rule, .has_origin = true};

static const struct cfg_key listener_keys[] = {
    {"name", CFG_STRING, offsetof(struct lb_listener_cfg, name), NULL, .max = 32,
     .help = "the listener's name, used in metrics and logs"},
    {"listen", CFG_ADDR, offsetof(struct lb_listener_cfg, listen), NULL,
     .help = "address and port to accept clients on"},
    {"rules", CFG_LIST, offsetof(struct lb_listener_cfg, rules), NULL, .section = &rule_section,
     LIST_OF(CFG_SECTION), .max_items = 100, .help = "the rules, matched by priority"},
    {"default_action", CFG_SECTION, offsetof(struct lb_listener_cfg, default_action), NULL,
     .section = &action_section,
     .help = "what to do when no rule matches; none: a fixed-response 404"},
};
static void check_listener(struct cfg_ctx *ctx, void *obj, const struct ynode *map,
                           const char *path)
{
    const struct lb_listener_cfg *l = obj;
    if (!check_name(ctx, map, l->name, path))
        return;
    if (!l->listen.len)
        cfg_error(ctx, map,
                  "'%s' needs a 'listen' address (expected an address such as "
                  "127.0.0.1:8080)",
                  path);
}
static const struct cfg_section listener_section = {"listener", CFG_KEYS(listener_keys),
                                                    sizeof(struct lb_listener_cfg), check_listener,
                                                    .has_origin = true};

static const struct cfg_key access_log_keys[] = {
    {"enabled", CFG_BOOL, offsetof(struct lb_access_log_cfg, enabled), "false",
     .help = "one line per request"},
    {"format", CFG_ENUM, offsetof(struct lb_access_log_cfg, format), "common",
     .choices = access_log_formats, .help = "common (Common Log Format) or json (JSON lines)"},
    {"path", CFG_STRING, offsetof(struct lb_access_log_cfg, path), "-", .max = 200,
     .help = "file to append to; - is standard output"},
};
static const struct cfg_section access_log_section = {"access_log", CFG_KEYS(access_log_keys),
                                                      sizeof(struct lb_access_log_cfg)};

static const struct cfg_key lb_keys[] = {
    {"name", CFG_STRING, offsetof(struct config_lb, name), "gantry-lb", .max = 32,
     .help = "the load balancer's name: the LoadBalancer dimension of its metrics"},
    {"metrics", CFG_BOOL, offsetof(struct config_lb, metrics), "true",
     .help = "write request metrics to the metric store every second (needs redis.url or "
             "--redis)"},
    {"workers", CFG_INT, offsetof(struct config_lb, workers), "0", 0, 64,
     .help = "worker threads, each with its own event loop and listening sockets; 0: one per "
             "core"},
    {"admin", CFG_ADDR, offsetof(struct config_lb, admin), "127.0.0.1:9901",
     .help = "admin listener: /metrics, /healthz, /targets"},
    {"max_connections", CFG_INT, offsetof(struct config_lb, max_connections), "10000", 1, 1000000,
     .help = "client connections open at once, per gantry-lb process"},
    {"client_header_timeout", CFG_DURATION, offsetof(struct config_lb, client_header_timeout_ms),
     "10s", 100, 3600000, .help = "time a client has to send a request's headers (slowloris)"},
    {"idle_timeout", CFG_DURATION, offsetof(struct config_lb, idle_timeout_ms), "60s", 100, 3600000,
     .help = "how long an idle keep-alive client connection stays open"},
    {"connect_timeout", CFG_DURATION, offsetof(struct config_lb, connect_timeout_ms), "5s", 10,
     600000, .help = "time to connect to a target (then 502... or the next target)"},
    {"target_response_timeout", CFG_DURATION,
     offsetof(struct config_lb, target_response_timeout_ms), "60s", 10, 3600000,
     .help = "time a target has to answer a request (then 504)"},
    {"stop_timeout", CFG_DURATION, offsetof(struct config_lb, stop_timeout_ms), "30s", 0, 3600000,
     .help = "on SIGTERM, time in-flight requests have to finish"},
    {"max_request_line", CFG_SIZE, offsetof(struct config_lb, max_request_line), "8k", 256,
     1024 * 1024, .help = "longest request line (then 414)"},
    {"max_header_size", CFG_SIZE, offsetof(struct config_lb, max_header_size), "16k", 1024,
     1024 * 1024, .help = "largest request head, request line included (then 431)"},
    {"max_headers", CFG_INT, offsetof(struct config_lb, max_headers), "100", 1, 1000,
     .help = "most header fields in a request (then 431)"},
    {"max_body_size", CFG_SIZE, offsetof(struct config_lb, max_body_size), "100m", 0,
     (int64_t)1 << 40, .help = "largest request body (then 413); 0: no limit"},
    {"upstream_keepalive", CFG_INT, offsetof(struct config_lb, upstream_keepalive), "64", 0, 10000,
     .help = "idle connections kept per target and worker for reuse; 0: none"},
    {"upstream_idle_timeout", CFG_DURATION, offsetof(struct config_lb, upstream_idle_timeout_ms),
     "30s", 100, 3600000, .help = "how long an idle pooled target connection is kept"},
    {"max_upstream_connections", CFG_INT, offsetof(struct config_lb, max_upstream_connections),
     "10000", 1, 1000000, .help = "connections open at once to one target, per worker"},
    {"retries", CFG_INT, offsetof(struct config_lb, retries), "2", 0, 10,
     .help = "other targets a request may be tried on when its target cannot be reached"},
    {"retry_idempotent", CFG_BOOL, offsetof(struct config_lb, retry_idempotent), "false",
     .help = "also retry an idempotent request (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) the "
             "target may have seen, when it closed without answering"},
    {"access_log", CFG_SECTION, offsetof(struct config_lb, access_log), NULL,
     .section = &access_log_section, .help = "the access log"},
    {"listeners", CFG_LIST, offsetof(struct config_lb, listeners), NULL,
     .section = &listener_section, LIST_OF(CFG_SECTION), .max_items = 50, .help = "the listeners"},
    {"target_groups", CFG_LIST, offsetof(struct config_lb, target_groups), NULL,
     .section = &target_group_section, LIST_OF(CFG_SECTION), .max_items = 1000,
     .help = "the target groups"},
};

/* lb.name goes into metric series ids, which reserve '|', ',' and '=': ALB's own name rules
 * (and the listeners' and groups') keep it to characters that mean nothing there. */
static void check_lb(struct cfg_ctx *ctx, void *obj, const struct ynode *map, const char *path)
{
    (void)path;
    const struct config_lb *lb = obj;
    if (!valid_name(lb->name))
        cfg_error_at_key(ctx, map, "name",
                         "invalid name '%s' for 'lb.name' (expected 1 to 32 letters, digits, '-' "
                         "and '_')",
                         lb->name ? lb->name : "");
}

const struct cfg_section lb_config_section = {"lb", CFG_KEYS(lb_keys), sizeof(struct config_lb),
                                              check_lb};

struct lb_target_group_cfg *lb_config_find_group(const struct config_lb *lb, const char *name)
{
    struct lb_target_group_cfg *groups = lb->target_groups.items;
    for (size_t i = 0; i < lb->target_groups.count; i++)
        if (strcmp(groups[i].name, name) == 0)
            return &groups[i];
    return NULL;
}

static void unknown_group(struct cfg_ctx *ctx, const struct config_lb *lb,
                          const struct lb_action_cfg *a, const char *name)
{
    char names[256] = "";
    size_t used = 0;
    const struct lb_target_group_cfg *groups = lb->target_groups.items;
    for (size_t i = 0; i < lb->target_groups.count && used < sizeof names; i++)
        used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "",
                                 groups[i].name);
    cfg_error_at(ctx, &a->origin,
                 "forward to unknown target group '%s' (expected one of the "
                 "names in lb.target_groups: %s)",
                 name, *names ? names : "there are none");
}

static void validate_forward(struct cfg_ctx *ctx, const struct config_lb *lb,
                             const struct lb_action_cfg *a)
{
    if (!a->origin.file || a->type != LB_ACTION_FORWARD)
        return;
    if (a->target_group && !lb_config_find_group(lb, a->target_group))
        unknown_group(ctx, lb, a, a->target_group);
    const struct lb_weighted_group_cfg *groups = a->target_groups.items;
    int64_t total = 0;
    for (size_t i = 0; i < a->target_groups.count; i++) {
        total += groups[i].weight;
        if (!groups[i].name)
            cfg_error_at(ctx, &a->origin, "every entry of 'target_groups' needs a 'name'");
        else if (!lb_config_find_group(lb, groups[i].name))
            unknown_group(ctx, lb, a, groups[i].name);
    }
    if (a->target_groups.count && total == 0)
        cfg_error_at(ctx, &a->origin,
                     "the weights of 'target_groups' add up to 0 (expected "
                     "at least one weight above 0)");
}

static void default_to_404(struct lb_action_cfg *a)
{
    a->type = LB_ACTION_FIXED_RESPONSE;
    a->status = 404;
    a->content_type = "text/plain";
    a->body = "Not Found\n";
}

static void validate_listener(struct cfg_ctx *ctx, struct config_lb *lb, size_t index)
{
    struct lb_listener_cfg *listeners = lb->listeners.items, *l = &listeners[index];
    char a[NET_ADDR_TEXT_MAX];
    for (size_t j = 0; j < index; j++) {
        if (strcmp(listeners[j].name, l->name) == 0)
            cfg_error_at(ctx, &l->origin, "duplicate listener name '%s'", l->name);
        if (listeners[j].listen.len == l->listen.len &&
            memcmp(&listeners[j].listen.ss, &l->listen.ss, l->listen.len) == 0)
            cfg_error_at(ctx, &l->origin, "listeners '%s' and '%s' both listen on %s",
                         listeners[j].name, l->name, net_addr_format(&l->listen, a, sizeof a));
    }
    if (!l->default_action.origin.file)
        default_to_404(&l->default_action);
    validate_forward(ctx, lb, &l->default_action);
    struct lb_rule_cfg *rules = l->rules.items;
    for (size_t r = 0; r < l->rules.count; r++) {
        validate_forward(ctx, lb, &rules[r].action);
        for (size_t s = 0; s < r; s++)
            if (rules[s].priority == rules[r].priority)
                cfg_error_at(ctx, &rules[r].origin,
                             "listener '%s' has two rules with priority %lld", l->name,
                             (long long)rules[r].priority);
    }
}

void lb_config_validate(struct cfg_ctx *ctx, struct config_lb *lb)
{
    struct lb_target_group_cfg *groups = lb->target_groups.items;
    /* A group that never wrote health_check has only its defaults, which check_health_check
     * never saw: resolve them here (they are valid). */
    for (size_t i = 0; i < lb->target_groups.count; i++)
        resolve_health_check(&groups[i].health_check);
    for (size_t i = 0; i < lb->target_groups.count; i++)
        if (groups[i].targets_from == LB_TARGETS_FROM_REDIS && groups[i].targets.count)
            cfg_error_at(ctx, &groups[i].origin,
                         "target group '%s' takes its targets from Redis: 'targets' must be "
                         "empty (expected targets_from: config to list them here)",
                         groups[i].name);
    for (size_t i = 0; i < lb->target_groups.count; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(groups[i].name, groups[j].name) == 0)
                cfg_error_at(ctx, &groups[i].origin, "duplicate target group name '%s'",
                             groups[i].name);
    for (size_t i = 0; i < lb->listeners.count; i++)
        validate_listener(ctx, lb, i);
}
