/* Container health checks: the task definition's healthCheck (CMD / CMD-SHELL, interval, timeout,
 * retries, startPeriod) for both launch types. docs/health-checks.md is the user's side of this.
 *
 * The pure part (health_params_from, health_observe, health_task_status) is Docker's and ECS's
 * rule: a probe that fails (non-zero exit, or no answer within timeout) counts against the
 * container; `retries` failures in a row make it UNHEALTHY; one success makes it HEALTHY (again);
 * failures within startPeriod of the container's start do not count until a first success has
 * ended the start period early.
 *
 * PROCESS tasks are probed by gantry-core itself (health_start/health_stop): one interval after
 * the start, then one interval after each probe ends (as Docker: never two probes of a container
 * at once), the command runs as a child process with the container's environment in the task's
 * work directory (CMD-SHELL through /bin/sh -c), in its own process group, stdin /dev/null and
 * output to run_dir/tasks/ID/NAME.health (the last probe's only); its group is SIGKILLed at
 * timeout, which counts as a failure. DOCKER tasks are probed by dockerd (the check is handed to
 * the container's Healthcheck: `command` below is Docker's Healthcheck.Test as it is) and their
 * status read back by launch_docker_poll().
 *
 * Either way the result goes through health_report(): it sets the container's healthStatus, the
 * task's (health_task_status), and stops the task when an essential container turns UNHEALTHY
 * ("Task failed container health checks", stopCode ServiceSchedulerInitiated, and a service
 * event); its service then replaces it. Only a check of the task definition counts, as in ECS: a
 * report for a container whose definition has none is ignored. */
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

#define HEALTH_STOP_REASON "Task failed container health checks"

struct health_params {
    bool enabled; /* the container definition has a usable healthCheck (not NONE) */
    bool shell;   /* CMD-SHELL: command[1] is run by /bin/sh -c (later words become $0, $1...) */
    /* Borrowed from the definition: the whole healthCheck.command, command[0] being "CMD" or
     * "CMD-SHELL" and the words to run from command[1] on (exactly Docker's Healthcheck.Test). */
    const json_t *command;
    int64_t interval_ms;     /* ECS's defaults and ranges: 30 s, 5 to 300 s */
    int64_t timeout_ms;      /* 5 s, 2 to 60 s */
    int64_t start_period_ms; /* 0, 0 to 300 s */
    int retries;             /* 3, 1 to 10 */
};

/* A container's health state, inside struct task_container (zeroed by the task's calloc). */
struct container_health {
    enum health_status status;
    int failures;       /* in a row */
    int64_t started_ms; /* the container's start (wall clock ms): startPeriod counts from it */
    /* PROCESS probing, owned by health.c */
    bool probing;         /* a probe is in flight: probe_pid is its process (group) */
    bool probe_timed_out; /* it was killed at its timeout (already counted as a failure) */
    pid_t probe_pid;
    int64_t probe_started_ms; /* monotonic */
    ev_timer timer;           /* the next probe; while probing, the probe's timeout */
    ev_child probe_child;
    char last_failure[200]; /* why the last probe failed, for the log line of UNHEALTHY */
};

/* Reads def's healthCheck (an already validated container definition): ECS's defaults for what
 * is absent, values outside ECS's ranges clamped to them. 0 (enabled false without a check, or
 * with NONE, Docker's way to say none), or -1 when it has an unusable command (a check that
 * cannot run: the caller treats it as no check). */
int health_params_from(const json_t *def, struct health_params *out);

/* One probe's result at now_ms (wall clock, as started_ms): updates h and returns its status.
 * A timeout is a failure like any other (ok false). Pure. */
enum health_status health_observe(struct container_health *h, const struct health_params *p,
                                  bool ok, int64_t now_ms);

/* ECS's task healthStatus from its n containers': UNHEALTHY when an essential container with a
 * check is, HEALTHY when every essential container with a check is HEALTHY (and there is one),
 * else UNKNOWN (checks of non-essential containers never count). Pure. */
enum health_status health_task_status(int n, const enum health_status status[],
                                      const bool essential[], const bool checked[]);

const char *health_status_name(enum health_status s); /* "UNKNOWN", "HEALTHY", "UNHEALTHY" */

/* PROCESS tasks: starts probing container `index` of a task whose processes have just started
 * (no-op without a check, or for a DOCKER task) / stops it (the container exited or the task is
 * done; a probe in flight is killed). health_stop is safe twice, and on a container that never
 * probed; it must run before the task is freed (the watchers live in the task). */
void health_start(struct core *core, struct core_task *task, int index);
void health_stop(struct core *core, struct core_task *task, int index);

/* A container's new status (from health_observe or dockerd; the same status again is a no-op):
 * updates the documents (task->dirty) and stops the task when an essential container is
 * UNHEALTHY. */
void health_report(struct core_task *task, int index, enum health_status status);

#endif
