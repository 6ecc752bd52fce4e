#include "lb/membership.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "lb/discovery.h"

static bool from_redis(const struct lb_target_group_cfg *g)
{
    return g->targets_from == LB_TARGETS_FROM_REDIS;
}

static bool is_member(const struct lb_member *members, size_t n, const struct net_addr *addr)
{
    for (size_t i = 0; i < n; i++)
        if (members[i].addr.len == addr->len &&
            memcmp(&members[i].addr.ss, &addr->ss, addr->len) == 0)
            return true;
    return false;
}

static void on_members(void *arg, const char *group, const struct lb_member *members, size_t n)
{
    struct lb_ctx *ctx = arg;
    const struct lb_target_group_cfg *g = lb_config_find_group(&ctx->cfg.lb, group);
    if (!g || !from_redis(g))
        return;
    for (struct lb_tstate *t = ctx->health.targets; t; t = t->next) {
        if (strcmp(t->group, group) != 0)
            continue;
        bool member = is_member(members, n, &t->addr);
        if (!member && t->registered)
            lb_health_deregister(&ctx->health, t);
        else if (member && !t->registered)
            lb_health_register(&ctx->health, t, g);
    }
    log_info("target group %s: %zu members from Redis", group, n);
    lb_rebuild(ctx, "membership");
}

int lb_membership_follow(struct lb_ctx *ctx)
{
    const struct lb_target_group_cfg *groups = ctx->cfg.lb.target_groups.items;
    const char *names[1000];
    size_t n = 0;
    for (size_t i = 0; i < ctx->cfg.lb.target_groups.count && n < 1000; i++)
        if (from_redis(&groups[i]))
            names[n++] = groups[i].name;
    if (n == 0) {
        lb_membership_stop(ctx);
        return 0;
    }
    if (!ctx->discovery) {
        struct lb_discovery_options opts = {
            .url = ctx->cfg.redis.url, .connect_timeout_ms = ctx->cfg.redis.connect_timeout_ms};
        struct lb_discovery_hooks hooks = {on_members, ctx};
        if (!(ctx->discovery = lb_discovery_new(ctx->loop, &opts, &hooks)))
            return -1;
    }
    return lb_discovery_set_groups(ctx->discovery, names, n);
}

/* A redis group's targets: its members, and the targets still draining out of it. */
static void overlay_group(struct lb_ctx *ctx, struct lb_target_group_cfg *g, struct arena *arena)
{
    const struct lb_member *members = NULL;
    size_t n = 0;
    if (ctx->discovery)
        lb_discovery_members(ctx->discovery, g->name, &members, &n);
    size_t draining = 0;
    for (struct lb_tstate *t = ctx->health.targets; t; t = t->next)
        draining += strcmp(t->group, g->name) == 0 && !t->registered &&
                    lb_tstate_state(t) == LB_TARGET_DRAINING && !is_member(members, n, &t->addr);
    struct lb_target_cfg *targets = arena_alloc(arena, (n + draining + 1) * sizeof *targets);
    if (!targets) {
        g->targets.count = 0;
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        targets[k++] = (struct lb_target_cfg){members[i].addr, members[i].weight};
    for (struct lb_tstate *t = ctx->health.targets; t; t = t->next)
        if (strcmp(t->group, g->name) == 0 && !t->registered &&
            lb_tstate_state(t) == LB_TARGET_DRAINING && !is_member(members, n, &t->addr))
            targets[k++] = (struct lb_target_cfg){t->addr, 1};
    g->targets.items = targets;
    g->targets.count = k;
}

void lb_membership_overlay(struct lb_ctx *ctx, const struct gantry_config *cfg,
                           struct gantry_config *out, struct arena *arena)
{
    *out = *cfg;
    size_t n = cfg->lb.target_groups.count;
    struct lb_target_group_cfg *groups = arena_alloc(arena, (n + 1) * sizeof *groups);
    if (!groups)
        return;
    if (n)
        memcpy(groups, cfg->lb.target_groups.items, n * sizeof *groups);
    for (size_t i = 0; i < n; i++)
        if (from_redis(&groups[i]))
            overlay_group(ctx, &groups[i], arena);
    out->lb.target_groups.items = groups;
}

/* The field the target has in Redis: the member's own spelling ("localhost:9001" stays so),
 * remembered for when it has left the members. */
static const char *redis_field(struct lb_ctx *ctx, struct lb_tstate *t)
{
    const struct lb_member *members = NULL;
    size_t n = 0;
    if (ctx->discovery && lb_discovery_members(ctx->discovery, t->group, &members, &n))
        for (size_t i = 0; i < n; i++)
            if (members[i].addr.len == t->addr.len &&
                memcmp(&members[i].addr.ss, &t->addr.ss, t->addr.len) == 0)
                snprintf(t->redis_field, sizeof t->redis_field, "%s", members[i].text);
    return t->redis_field[0] ? t->redis_field : t->addr_text;
}

void lb_membership_publish(struct lb_ctx *ctx, struct lb_tstate *t)
{
    if (!ctx->discovery)
        return;
    const struct lb_target_group_cfg *g = lb_config_find_group(&ctx->cfg.lb, t->group);
    if (!g || !from_redis(g))
        return;
    lb_discovery_publish_state(
        ctx->discovery, t->group, t->addr_text, lb_target_state_names[lb_tstate_state(t)],
        lb_target_reason_names[atomic_load(&t->reason)], atomic_load(&t->since_ms));
}

bool lb_membership_drained(struct lb_ctx *ctx)
{
    bool any = false;
    for (struct lb_tstate *t = ctx->health.targets; t; t = t->next) {
        if (t->registered || t->drain_reported || lb_tstate_state(t) != LB_TARGET_UNUSED)
            continue;
        t->drain_reported = true;
        any = true;
        if (ctx->discovery)
            lb_discovery_mark_drained(ctx->discovery, t->group, redis_field(ctx, t),
                                      clock_wall_ms());
    }
    return any;
}

void lb_membership_stop(struct lb_ctx *ctx)
{
    if (ctx->discovery)
        lb_discovery_free(ctx->discovery);
    ctx->discovery = NULL;
}
