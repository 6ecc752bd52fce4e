/* Placing a task on this machine's container instance and starting it (the PROCESS launch type):
 * CPU and memory reservations, host ports, each container's command line and environment. */
#ifndef GANTRY_CORE_LAUNCH_H
#define GANTRY_CORE_LAUNCH_H

#include <stddef.h>

#include "core/core.h"

/* Reserves the task's cpu, memory and host ports. 0, or -1 with the resource that is short
 * ("CPU", "MEMORY" or "PORTS") in resource. */
int launch_place(struct core *core, struct core_task *task, char *resource, size_t size);
/* Gives back what launch_place() reserved. */
void launch_release(struct core *core, struct core_task *task);
/* Starts the placed task's containers and fills in its network bindings and, for a service's
 * task, the targets to register. 0, or -1 with why (every started process is gone again). */
int launch_start(struct core *core, struct core_task *task, char *why, size_t size);
/* The container's runtime watcher: started for each container launch_start() started. */
void launch_watch(struct core *core, struct task_container *c);

/* Removes a stopped task's directory (its work directory and logs). */
void launch_remove_dir(const char *path);

#endif
