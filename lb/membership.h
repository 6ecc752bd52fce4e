/* Target groups whose members live in Redis (targets_from: redis; docs/redis.md), on the main
 * thread. Membership reports from lb/discovery become generations like a reload does: a new
 * member starts `initial`, a member that left drains (it stays in the routes as `draining`
 * until nothing is in flight or deregistration_delay passes), and a drained one is marked in
 * Redis and leaves the routes. Target health changes are published to Redis as they happen. */
#ifndef GANTRY_LB_MEMBERSHIP_H
#define GANTRY_LB_MEMBERSHIP_H

#include "common/arena.h"
#include "config/config.h"
#include "lb/lb.h"

/* Follows the redis groups of ctx->cfg, starting or stopping the Redis client as needed. */
int lb_membership_follow(struct lb_ctx *ctx);
/* cfg with every redis group's targets replaced by its members plus its draining targets;
 * memory from `arena`, which must outlive the build that uses it. */
void lb_membership_overlay(struct lb_ctx *ctx, const struct gantry_config *cfg,
                           struct gantry_config *out, struct arena *arena);
/* Health changed: published to Redis. */
void lb_membership_publish(struct lb_ctx *ctx, struct lb_tstate *t);
/* Drains that ended: marked in Redis; returns true when any did (the routes must drop them). */
bool lb_membership_drained(struct lb_ctx *ctx);
void lb_membership_stop(struct lb_ctx *ctx);

#endif
