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
/* A PROCESS container of a task a previous gantry-core started, still running (runner_is_ours):
 * watched through a pidfd from now on. */
void launch_adopt(struct core *core, struct task_container *c);
/* A task read back from Redis holds resources (placed): counted as used again. */
void launch_account(struct core *core, struct core_task *task);

/* A container's argv or environment under construction (NULL-terminated items, owned). */
enum { LAUNCH_MAX_STRINGS = 512 };
struct launch_strings {
    char *items[LAUNCH_MAX_STRINGS + 1];
    int n;
};
void launch_strings_free(struct launch_strings *s);
/* The container's environment: HOST, PORT (its first host port; first_port is the index of its
 * first mapping in task->host_ports, -1 when it has none), PORT_<containerPort>, GANTRY_*, then
 * the definition's environment, then RunTask's override; PATH and HOME from gantry-core's own
 * unless for_docker (an image brings its own). 0 or -1 (too large). */
int launch_build_env(struct core *core, struct core_task *task, const json_t *def, int first_port,
                     bool for_docker, struct launch_strings *env);
/* RunTask's containerOverrides entry for the container named, or NULL. */
const json_t *launch_container_override(const struct core_task *task, const char *name);

/* Dispatch on the task's launch type. */
bool launch_is_docker(const struct core_task *task);
/* Sends sig to a running container (PROCESS: its process group; DOCKER: dockerd's kill). */
void launch_signal(struct core *core, struct core_task *task, struct task_container *c, int sig);
/* Every container of the task has exited: what is left of it goes (cgroup; DOCKER: the logs are
 * saved to the task directory and the containers removed). */
void launch_done(struct core *core, struct core_task *task);

/* --- launch_docker.c: the DOCKER launch type, through the Docker Engine API (core/docker.h) ---
 * launch_docker_start: creates and starts the placed task's containers (host network, the host
 * ports of launch_place, labels gantry.cluster/gantry.service/gantry.task/gantry.container,
 * NanoCpus/Memory/MemoryReservation from the task definition, the healthCheck as Healthcheck);
 * 0, or -1 with why (nothing of the task is left in dockerd). launch_docker_poll: once per
 * reconcile pass, one listing of dockerd's containers with our labels: exits are reported with
 * scheduler_container_exited(), health with health_report(), containers of tasks re-adopted after
 * a restart are found again, and containers no live task owns are removed. Engine errors are
 * logged (never fatal): a daemon that is down makes starts fail with a reason. */
int launch_docker_start(struct core *core, struct core_task *task, char *why, size_t size);
void launch_docker_signal(struct core *core, struct core_task *task, struct task_container *c,
                          int sig);
void launch_docker_done(struct core *core, struct core_task *task);
void launch_docker_poll(struct core *core);
void launch_docker_close(struct core *core);

/* Removes a stopped task's directory (its work directory and logs). */
void launch_remove_dir(const char *path);

#endif
