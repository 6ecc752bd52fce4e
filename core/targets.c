/* A task's targets in gantry-lb's target groups, through the Redis contract of docs/redis.md:
 * register = HSET gantry:targets:GROUP ADDR 1 + HDEL of an old drained mark + PUBLISH, in one
 * transaction; deregister = HDEL + PUBLISH; drained = gantry-lb's mark in gantry:drained:GROUP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "core/core.h"
#include "core/targets.h"

int64_t targets_deregistration_delay_ms(const struct core *core, const char *group)
{
    const struct lb_target_group_cfg *groups = core->cfg->lb.target_groups.items;
    for (size_t i = 0; i < core->cfg->lb.target_groups.count; i++)
        if (strcmp(groups[i].name, group) == 0)
            return groups[i].deregistration_delay_ms;
    return TARGETS_DEFAULT_DEREGISTRATION_DELAY_MS;
}

static int write_target(struct core *core, const struct task_target *t, bool add)
{
    char key[CORE_NAME_MAX + 32], drained[CORE_NAME_MAX + 32];
    snprintf(key, sizeof key, "gantry:targets:%s", t->group);
    snprintf(drained, sizeof drained, "gantry:drained:%s", t->group);
    struct redis_cmd cmds[3];
    const char *hset[] = {"HSET", key, t->addr, "1"};
    const char *hdel[] = {"HDEL", key, t->addr};
    const char *unmark[] = {"HDEL", drained, t->addr};
    const char *publish[] = {"PUBLISH", "gantry:targets", t->group};
    size_t n = 0;
    if (add) {
        redis_cmd_set(&cmds[n++], 4, hset);
        redis_cmd_set(&cmds[n++], 3, unmark);
    } else {
        redis_cmd_set(&cmds[n++], 3, hdel);
    }
    redis_cmd_set(&cmds[n++], 3, publish);
    if (redis_sync_multi(&core->redis, cmds, n) < 0) {
        log_warn("target %s in %s: cannot %s: %s", t->addr, t->group,
                 add ? "register" : "deregister", core->redis.error);
        return -1;
    }
    log_info("target %s %s group %s", t->addr, add ? "registered in" : "deregistered from",
             t->group);
    return 0;
}

int targets_register(struct core *core, struct task_target *t)
{
    if (t->registered)
        return 0;
    if (write_target(core, t, true) < 0)
        return -1;
    t->registered = true;
    return 0;
}

int targets_deregister(struct core *core, struct task_target *t)
{
    if (!t->registered)
        return 0;
    if (write_target(core, t, false) < 0)
        return -1;
    t->registered = false;
    return 0;
}

int targets_drained(struct core *core, const struct task_target *t)
{
    redisReply *r =
        redis_sync_command(&core->redis, "HEXISTS gantry:drained:%s %s", t->group, t->addr);
    if (!r)
        return -1;
    int drained = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return drained;
}
