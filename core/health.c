/* Container health checks: not built yet (a placeholder that keeps gantry-core linking). */
#include "core/health.h"

#include "core/core.h"

int health_params_from(const json_t *def, struct health_params *out)
{
    (void)def;
    *out = (struct health_params){0};
    return 0;
}

enum health_status health_observe(struct container_health *h, const struct health_params *p,
                                  bool ok, int64_t now_ms)
{
    (void)p;
    (void)ok;
    (void)now_ms;
    return h->status;
}

const char *health_status_name(enum health_status s)
{
    return s == HEALTH_HEALTHY ? "HEALTHY" : s == HEALTH_UNHEALTHY ? "UNHEALTHY" : "UNKNOWN";
}

void health_start(struct core *core, struct core_task *task, int index)
{
    (void)core;
    (void)task;
    (void)index;
}

void health_stop(struct core *core, struct core_task *task, int index)
{
    (void)core;
    (void)task;
    (void)index;
}

void health_report(struct core_task *task, int index, enum health_status status)
{
    (void)task;
    (void)index;
    (void)status;
}
