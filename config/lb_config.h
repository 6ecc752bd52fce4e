/* The `lb` section: gantry-lb's listeners, rules and target groups, modelled on an Application
 * Load Balancer (listener > rules by priority > actions; target groups of ip:port targets).
 * Cross references (a rule forwarding to a target group) are checked by lb_config_validate()
 * after every file is merged, so a group may be defined in another file than the rule. */
#ifndef GANTRY_CONFIG_LB_CONFIG_H
#define GANTRY_CONFIG_LB_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/net.h"
#include "config/schema.h"

enum lb_algorithm { LB_ROUND_ROBIN, LB_LEAST_OUTSTANDING_REQUESTS, LB_WEIGHTED_RANDOM };

enum lb_condition_field {
    LB_COND_HOST_HEADER,
    LB_COND_PATH_PATTERN,
    LB_COND_HTTP_HEADER,
    LB_COND_HTTP_REQUEST_METHOD,
    LB_COND_QUERY_STRING,
    LB_COND_SOURCE_IP,
};

enum lb_action_type { LB_ACTION_FORWARD, LB_ACTION_REDIRECT, LB_ACTION_FIXED_RESPONSE };

enum lb_access_log_format { LB_LOG_COMMON, LB_LOG_JSON };

struct lb_target_cfg {
    struct net_addr address;
    int64_t weight;
};

enum lb_targets_from { LB_TARGETS_FROM_CONFIG, LB_TARGETS_FROM_REDIS };
enum lb_stickiness_type { LB_STICKY_LB_COOKIE, LB_STICKY_APP_COOKIE };

/* "200", "200-299" or "200,302": up to LB_MATCHER_RANGES ranges of status codes. */
enum { LB_MATCHER_RANGES = 8 };
struct lb_matcher {
    int n;
    int lo[LB_MATCHER_RANGES], hi[LB_MATCHER_RANGES];
};

struct lb_health_check_cfg {
    bool enabled;
    const char *path;
    const char *port; /* "traffic-port" or a number */
    int64_t interval_ms;
    int64_t timeout_ms;
    int64_t healthy_threshold;
    int64_t unhealthy_threshold;
    const char *matcher;
    struct lb_matcher codes; /* matcher, parsed */
    int port_number;         /* 0: the traffic port */
};

struct lb_stickiness_cfg {
    bool enabled;
    int type; /* enum lb_stickiness_type */
    int64_t duration_ms;
    const char *cookie_name; /* app_cookie: the application's cookie */
};

struct lb_target_group_cfg {
    struct cfg_origin origin;
    const char *name;
    int algorithm;           /* enum lb_algorithm */
    int targets_from;        /* enum lb_targets_from */
    struct cfg_list targets; /* struct lb_target_cfg */
    struct lb_health_check_cfg health_check;
    int64_t deregistration_delay_ms;
    int64_t slow_start_ms;
    struct lb_stickiness_cfg stickiness;
};

bool lb_matcher_matches(const struct lb_matcher *m, int status);

struct lb_weighted_group_cfg {
    const char *name;
    int64_t weight;
};

struct lb_action_cfg {
    struct cfg_origin origin; /* file NULL: the action was never written */
    int type;                 /* enum lb_action_type */
    const char *target_group;
    struct cfg_list target_groups; /* struct lb_weighted_group_cfg */
    int64_t status;                /* redirect: 301 or 302; fixed-response: 200 to 599 */
    const char *protocol, *host, *port, *path, *query; /* redirect, with #{...} variables */
    const char *content_type, *body;                   /* fixed-response */
};

struct lb_condition_cfg {
    int field;               /* enum lb_condition_field */
    const char *header_name; /* http-header only */
    struct cfg_list values;  /* const char * */
};

struct lb_rule_cfg {
    struct cfg_origin origin;
    int64_t priority;
    struct cfg_list conditions; /* struct lb_condition_cfg */
    struct lb_action_cfg action;
};

struct lb_listener_cfg {
    struct cfg_origin origin;
    const char *name;
    struct net_addr listen;
    struct cfg_list rules; /* struct lb_rule_cfg */
    struct lb_action_cfg default_action;
};

struct lb_access_log_cfg {
    bool enabled;
    int format; /* enum lb_access_log_format */
    const char *path;
};

struct config_lb {
    const char *name; /* the LoadBalancer dimension of its metrics */
    bool metrics;     /* write them to the metric store (when Redis is configured) */
    int64_t workers;
    struct net_addr admin;
    int64_t max_connections;
    int64_t client_header_timeout_ms;
    int64_t idle_timeout_ms;
    int64_t connect_timeout_ms;
    int64_t target_response_timeout_ms;
    int64_t stop_timeout_ms;
    int64_t max_request_line;
    int64_t max_header_size;
    int64_t max_headers;
    int64_t max_body_size;
    int64_t upstream_keepalive;
    int64_t upstream_idle_timeout_ms;
    int64_t max_upstream_connections;
    int64_t retries;
    bool retry_idempotent;
    struct lb_access_log_cfg access_log;
    struct cfg_list listeners;     /* struct lb_listener_cfg */
    struct cfg_list target_groups; /* struct lb_target_group_cfg */
};

extern const struct cfg_section lb_config_section;
extern const char *const lb_algorithm_names[];
extern const char *const lb_condition_field_names[];
extern const char *const lb_action_type_names[];

/* Checks what spans several sections or files: unique names, addresses and priorities, and that
 * every forward names an existing target group. Fills in the defaults that depend on the action
 * type (a listener with no default action answers 404). */
void lb_config_validate(struct cfg_ctx *ctx, struct config_lb *lb);
struct lb_target_group_cfg *lb_config_find_group(const struct config_lb *lb, const char *name);

#endif
