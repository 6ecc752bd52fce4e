/* The tasks gantry-metrics samples, learnt from gantry-core's state in Redis (docs/core.md): every
 * cluster of the hash gantry:ecs:clusters, then HGETALL gantry:ecs:tasks:CLUSTER, whose values are
 * ECS Task documents plus gantry-core's `_gantry` (processes: name, pid, startTicks, running,
 * dockerId; service). Only RUNNING tasks of the PROCESS and DOCKER launch types are kept: a
 * PROCESS task's containers by pid and start time, a DOCKER task's by container id.
 *
 * Nothing read is trusted: a record that is not JSON, or whose fields have the wrong type or
 * values out of range, is skipped and counted, never a crash; names that could not be metric
 * dimensions (or a key in Redis) are refused the same way. */
#ifndef GANTRY_METRICS_TASK_LIST_H
#define GANTRY_METRICS_TASK_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/redis_sync.h"
#include "metrics/docker_stats.h"

enum {
    ECS_NAME_MAX = 255,           /* cluster and service names, as ECS limits them */
    ECS_TASK_ID_LEN = 32,         /* hex digits */
    ECS_TASK_MAX_CONTAINERS = 10, /* ECS's limit of containers in a task definition */
};

enum ecs_launch { ECS_LAUNCH_PROCESS, ECS_LAUNCH_DOCKER };

/* A running container: PROCESS tasks' by pid and start time, DOCKER tasks' by container id. */
struct ecs_process {
    pid_t pid;
    uint64_t start_ticks;
    char docker_id[DOCKER_STATS_ID_MAX + 1]; /* DOCKER: docker_stats_id_valid; else "" */
};

struct ecs_task {
    char cluster[ECS_NAME_MAX + 1];
    char service[ECS_NAME_MAX + 1]; /* "" for a task RunTask started */
    char id[ECS_TASK_ID_LEN + 1];
    enum ecs_launch launch;
    int cpu_units;  /* the task's reservation ("cpu"); 0: none */
    int memory_mib; /* its "memory" */
    /* The containers still running, in definition order. */
    struct ecs_process procs[ECS_TASK_MAX_CONTAINERS];
    int n_procs;
};

struct task_list {
    struct ecs_task *items;
    size_t n, cap;
    size_t skipped; /* damaged records met by the last fetch */
};

enum task_parse_result { TASK_PARSE_OK, TASK_PARSE_NOT_SAMPLED, TASK_PARSE_DAMAGED };

/* One record: the field (task id) and value of gantry:ecs:tasks:CLUSTER. TASK_PARSE_NOT_SAMPLED
 * for a sound record of a task that is not a RUNNING PROCESS or DOCKER task. A DOCKER task's
 * container whose id is not known yet ("") is left out, as one that is not running. Pure. */
enum task_parse_result task_record_parse(const char *cluster, const char *id, const char *json,
                                         size_t len, struct ecs_task *out);

/* A cluster or service name: 1 to 255 letters, digits, '-' and '_'. */
bool ecs_name_valid(const char *name);
/* "1024", "1 vCPU", "0.5 vcpu" (ECS's task-level forms) in CPU units; -1 when it does not read. */
int ecs_parse_cpu(const char *text);
/* "512", "1 GB", "0.5GB", "512 MiB" in MiB; -1 when it does not read. */
int ecs_parse_memory(const char *text);

void task_list_init(struct task_list *l);
void task_list_free(struct task_list *l);
void task_list_swap(struct task_list *a, struct task_list *b);

/* Reads every cluster's tasks from Redis into l (emptied first). 0, or -1 with r->error set when
 * Redis failed (l then holds what was read before the failure: callers keep their previous
 * list). A key of the wrong type counts as a damaged record, not as a failure. */
int task_list_fetch(struct redis_sync *r, struct task_list *l);

#endif
