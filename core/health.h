/* Container health checks: the task definition's healthCheck (CMD / CMD-SHELL, interval, timeout,
 * retries, startPeriod) for both launch types.
 *
 * The pure part (health_params_from, health_observe) is Docker's and ECS's rule: a probe that
 * fails (non-zero exit, or no answer within timeout) counts against the container; `retries`
 * failures in a row make it UNHEALTHY; one success makes it HEALTHY; failures within startPeriod
 * of the container's start do not count (a success there still does).
 *
 * PROCESS tasks are probed by gantry-core itself (health_start/health_stop): every interval the
 * command runs with the container's environment in the task's work directory (CMD-SHELL through
 * /bin/sh -c), killed after timeout. DOCKER tasks are probed by dockerd (the check is handed to
 * the container's Healthcheck) and their status read back by launch_docker_poll().
 *
 * Either way the result goes through health_report(): it sets the container's healthStatus, the
 * task's (UNHEALTHY when an essential container is, HEALTHY when every essential container that
 * has a check is, else UNKNOWN, as ECS), and stops the task when an essential container turns
 * UNHEALTHY ("Task failed container health checks"); its service then replaces it. */
#ifndef GANTRY_CORE_HEALTH_H
#define GANTRY_CORE_HEALTH_H

#include <ev.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct core;
struct core_task;

enum health_status { HEALTH_UNKNOWN, HEALTH_HEALTHY, HEALTH_UNHEALTHY };

struct health_params {
    bool enabled;           /* the container definition has a healthCheck */
    bool shell;             /* CMD-SHELL: command[0] is run by /bin/sh -c */
    const json_t *command;  /* borrowed: the words after "CMD" / "CMD-SHELL" */
    int64_t interval_ms;    /* ECS's defaults: 30 s */
    int64_t timeout_ms;     /* 5 s */
    int64_t start_period_ms; /* 0 */
    int retries;            /* 3 */
};

/* A container's health state, inside struct task_container. */
struct container_health {
    enum health_status status;
    int failures;       /* in a row */
    int64_t started_ms; /* the container's start (wall clock ms): startPeriod counts from it */
    /* PROCESS probing, owned by health.c */
    bool probing;
    pid_t probe_pid;
    int64_t probe_started_ms;
    ev_timer timer;
    ev_child probe_child;
};

/* Reads def's healthCheck (an already validated container definition). 0, or -1 when it has an
 * unusable command (a check that cannot run: treated as no check). */
int health_params_from(const json_t *def, struct health_params *out);

/* One probe's result at now_ms: updates h and returns its status. Pure. */
enum health_status health_observe(struct container_health *h, const struct health_params *p,
                                  bool ok, int64_t now_ms);

const char *health_status_name(enum health_status s); /* "UNKNOWN", "HEALTHY", "UNHEALTHY" */

/* PROCESS tasks: starts probing container `index` of a RUNNING task (no-op without a check) /
 * stops it (the container exited or the task is stopping; a probe in flight is killed). */
void health_start(struct core *core, struct core_task *task, int index);
void health_stop(struct core *core, struct core_task *task, int index);

/* A container's new status (from health_observe or dockerd): updates the documents and stops the
 * task when an essential container is UNHEALTHY. */
void health_report(struct core_task *task, int index, enum health_status status);

#endif
