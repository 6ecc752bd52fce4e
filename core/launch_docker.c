/* The DOCKER launch type: not built yet (a placeholder that keeps gantry-core linking). */
#include <stdio.h>

#include "core/launch.h"

int launch_docker_start(struct core *core, struct core_task *task, char *why, size_t size)
{
    (void)core;
    (void)task;
    snprintf(why, size, "the DOCKER launch type is not available");
    return -1;
}

void launch_docker_signal(struct core *core, struct core_task *task, struct task_container *c,
                          int sig)
{
    (void)core;
    (void)task;
    (void)c;
    (void)sig;
}

void launch_docker_done(struct core *core, struct core_task *task)
{
    (void)core;
    (void)task;
}

void launch_docker_poll(struct core *core)
{
    (void)core;
}

void launch_docker_close(struct core *core)
{
    (void)core;
}
