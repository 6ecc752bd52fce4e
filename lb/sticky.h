/* Sticky sessions, as ALB's: with lb_cookie the balancer sets its own cookie (GantryLB) naming
 * the target that answered; with app_cookie it sets GantryLBApp whenever the application sets
 * its cookie. A request carrying the cookie goes to that target while it is usable, else to
 * another, and the cookie is rewritten. The value is an opaque hash of group and address: stable
 * across reloads and balancer nodes, and it names only targets the group has. */
#ifndef GANTRY_LB_STICKY_H
#define GANTRY_LB_STICKY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/http1.h"
#include "config/lb_config.h"
#include "lb/router.h"

#define LB_STICKY_COOKIE_NAME "GantryLB"
#define LB_STICKY_APP_COOKIE_NAME "GantryLBApp"

/* Copies the groups' stickiness settings and gives every target its id (gen build). */
void lb_sticky_setup(struct lb_routes *routes, const struct config_lb *cfg);
/* The target the request's cookie names, or -1. */
int lb_sticky_target(const struct lb_target_group *g, const struct http1_msg *req);
/* Whether a response sets the application's cookie (app_cookie stickiness). */
bool lb_sticky_app_cookie_set(const struct lb_target_group *g, const struct http1_msg *resp);
/* "Set-Cookie: GantryLB=...; Max-Age=...; Path=/\r\n" into out; returns its length or 0. */
size_t lb_sticky_set_cookie(const struct lb_target_group *g, const struct lb_target *t, char *out,
                            size_t size);

#endif
