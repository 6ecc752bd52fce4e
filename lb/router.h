/* The routing table: the `lb` configuration compiled into an immutable structure that every worker
 * thread reads without locks, plus the per-request decisions made from it.
 * - lb_routes_build() copies everything it keeps into its own arena, so the configuration can be
 *   freed (or reloaded) right after; patterns are precompiled, rules sorted by priority, forward
 *   actions point straight at their target groups. One lb_routes_free() releases it all, once no
 *   worker uses it any more (the engine's reload decides when).
 * - The only state that changes after the build is each target's `outstanding` counter, atomic,
 *   shared by all workers (see balancer.h).
 * - lb_route() applies ALB's semantics as promised in config/README.md: rules by ascending
 *   priority, the first whose conditions all hold (AND; a condition holds when any of its values
 *   matches, OR) decides, else the listener's default action. A request without Host holds no
 *   host-header condition, one without the header no http-header condition, whatever the
 *   patterns. It allocates nothing and costs O(rules * conditions * values) pattern matches. */
#ifndef GANTRY_LB_ROUTER_H
#define GANTRY_LB_ROUTER_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/arena.h"
#include "common/http1.h"
#include "common/net.h"
#include "config/lb_config.h"
#include "lb/match.h"

struct lb_tstate;
struct lb_stat_block;

struct lb_target {
    /* First and on a cache line of its own with the read-mostly fields next to it, so workers
     * bumping the counters of neighbouring targets do not invalidate each other's lines. */
    alignas(64) _Atomic uint32_t outstanding; /* requests in flight, all workers together */
    uint32_t weight;                          /* 0: never picked */
    uint32_t index;                           /* within its group: the `usable` mask's index */
    const char *address_text;                 /* "127.0.0.1:9001", for logs and metrics */
    struct net_addr address;
    struct lb_tstate *health;    /* shared by generations; set by the engine after the build */
    struct lb_stat_block *stats; /* its counters: health's, set with it */
    char sticky_id[17];          /* hex of a hash of group and address: the sticky cookie's value */
};

struct lb_target_group {
    const char *name;
    enum lb_algorithm algorithm;
    uint32_t index; /* within the routes: the per-worker picker's index */
    uint32_t n_targets;
    struct lb_target *targets;
    /* weighted_random: cumulative weights, cum[i] = weights of targets 0..i; total = last one. */
    uint64_t *cum_weight;
    uint64_t total_weight;
    /* stickiness, set by the engine after the build (lb/sticky.h) */
    bool sticky;
    int sticky_type; /* enum lb_stickiness_type */
    int64_t sticky_duration_s;
    char app_cookie[65];
};

struct lb_weighted_group {
    struct lb_target_group *group;
    uint32_t weight;
    uint32_t cum_weight; /* weights of this entry and the ones before it */
};

struct lb_action {
    enum lb_action_type type;
    int status; /* redirect: 301/302; fixed-response: 200 to 599 */
    /* forward */
    struct lb_weighted_group *groups;
    uint32_t n_groups;
    uint32_t total_weight;
    /* redirect: templates with #{protocol}, #{host}, #{port}, #{path}, #{query} */
    const char *protocol, *host, *port, *path, *query;
    /* fixed-response */
    const char *content_type;
    const char *body; /* never NULL; "" when none */
    size_t body_len;
};

struct lb_query_pattern {
    bool has_key; /* "key=value"; without '=' any parameter's value */
    struct lb_pattern key, value;
};

struct lb_condition {
    enum lb_condition_field field;
    uint32_t n_values;
    const char *header_name; /* http-header */
    size_t header_name_len;
    struct lb_pattern *patterns;      /* host, path, header, method */
    struct lb_query_pattern *queries; /* query-string */
    struct net_cidr *cidrs;           /* source-ip */
};

struct lb_rule {
    uint32_t priority;
    uint32_t n_conditions;
    struct lb_condition *conditions; /* cheapest field first: the outcome of an AND is the same */
    struct lb_action action;
};

struct lb_listener {
    const char *name;
    uint32_t index;
    int port;          /* the bound port (the engine sets it when the configuration says 0) */
    char port_text[8]; /* the same, for X-Forwarded-Port */
    struct net_addr listen;
    uint32_t n_rules;
    struct lb_rule *rules; /* ascending priority */
    struct lb_action default_action;
};

struct lb_routes {
    struct arena arena; /* holds everything below, this struct included */
    uint32_t n_listeners, n_groups;
    struct lb_listener *listeners;
    struct lb_target_group *groups;
};

/* NULL with a message in err when out of memory or when cfg is inconsistent (which validation
 * should have caught). */
struct lb_routes *lb_routes_build(const struct config_lb *cfg, char *err, size_t errlen);
void lb_routes_free(struct lb_routes *routes);

/* By name: NULL when there is none. Meant for setup and the admin API, not per request. */
const struct lb_listener *lb_routes_listener(const struct lb_routes *routes, const char *name);
struct lb_target_group *lb_routes_group(const struct lb_routes *routes, const char *name);

static inline const struct lb_listener *lb_routes_listener_at(const struct lb_routes *routes,
                                                              uint32_t index)
{
    return index < routes->n_listeners ? &routes->listeners[index] : NULL;
}

/* The action for a parsed request; client is the connection's peer (NULL or AF_UNIX: source-ip
 * conditions never hold). Never NULL. */
const struct lb_action *lb_route(const struct lb_listener *l, const struct http1_msg *req,
                                 const struct sockaddr *client);

/* A forward action's group: the same random number gives the same group; each group's share is
 * its weight over the total; weight 0 is never picked. NULL for other action types. */
struct lb_target_group *lb_action_pick_group(const struct lb_action *a, uint64_t random);

/* The Host of a request without its port ("[::1]:8080" gives "[::1]"); an empty slice when the
 * request has none. */
struct http1_slice lb_host_without_port(const struct http1_msg *req);

/* A redirect action's Location, NUL-terminated in out: the templates with the request's
 * variables substituted (protocol is the listener's, lower-case: "http"), assembled as
 * protocol://host[:port]/path[?query], the port left out when it is the protocol's default and
 * `?` when the query is empty. Returns its length, or 0 (out = "") when it does not fit, when the
 * protocol is not http or https, the port not 1 to 65535, the host empty, or any byte not visible
 * ASCII: a CR or LF would let a request inject headers into the response. */
size_t lb_redirect_location(const struct lb_action *a, const struct http1_msg *req,
                            const char *protocol, int listener_port, char *out, size_t size);

#endif
