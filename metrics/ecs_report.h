/* From one pass's samples to ECS's metrics, per task and per service (docs/metrics.md):
 *
 *   namespace AWS/ECS:               CPUUtilization, MemoryUtilization (percent)
 *   namespace ECS/ContainerInsights: CpuUtilized, CpuReserved (CPU units, 1024 per core),
 *                                    MemoryUtilized, MemoryReserved (MiB)
 *   dimensions: ClusterName, ServiceName, TaskId (per task; a task RunTask started has no
 *               ServiceName) and ClusterName, ServiceName (per service)
 *
 *   CPUUtilization    = CPU used (units) / CPU reserved (units) * 100, a task reserving no CPU
 *                       being measured against one vCPU (1024 units)
 *   MemoryUtilization = memory used (MiB) / memory reserved (MiB) * 100
 *
 * A service's values are its tasks' totals, used over reserved (as ECS defines the service
 * metric), over the tasks that have the value this pass: a task's first pass has no CPU value, and
 * it then counts neither in the service's CPU used nor in what that is divided by. */
#ifndef GANTRY_METRICS_ECS_REPORT_H
#define GANTRY_METRICS_ECS_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics/sampler.h"
#include "metrics/store.h"
#include "metrics/task_list.h"

enum { ECS_CPU_UNITS_PER_CORE = 1024 };

struct ecs_row {
    char cluster[ECS_NAME_MAX + 1];
    char service[ECS_NAME_MAX + 1]; /* "" for a task RunTask started */
    char task[ECS_TASK_ID_LEN + 1]; /* "" for a service's row */
    bool has_cpu, has_memory;
    double cpu_used;        /* CpuUtilized, units */
    double cpu_reserved;    /* CpuReserved, units, as declared */
    double cpu_basis;       /* what CPUUtilization divides by (see above) */
    double memory_used;     /* MemoryUtilized, MiB */
    double memory_reserved; /* MemoryReserved, MiB */
    double memory_basis;    /* what MemoryUtilization divides by */
};

struct ecs_report {
    /* The tasks' rows (sorted by cluster, service, task), then the services'. */
    struct ecs_row *rows;
    size_t n, n_tasks, cap;
};

void ecs_report_init(struct ecs_report *r);
void ecs_report_free(struct ecs_report *r);

/* The rows of one pass: usage[i] is tasks->items[i]'s (tasks not sampled have no row). 0, or -1
 * when memory runs out (the report is then empty). */
int ecs_report_build(struct ecs_report *r, const struct task_list *tasks,
                     const struct task_usage *usage);

/* The utilisations of a row; false when it has none (no CPU value yet, nothing reserved). */
bool ecs_row_cpu_percent(const struct ecs_row *row, double *out);
bool ecs_row_memory_percent(const struct ecs_row *row, double *out);

/* Every datapoint of the report into the batch, at that second. Returns how many rows could not
 * be named as series (never expected: names are validated when read). */
size_t ecs_report_write(const struct ecs_report *r, struct metric_batch *b, int64_t second);

#endif
