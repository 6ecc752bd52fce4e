#include "metrics/ecs_report.h"

#include <stdlib.h>
#include <string.h>

#include "metrics/series.h"

static const double MIB = 1024.0 * 1024.0;

void ecs_report_init(struct ecs_report *r)
{
    memset(r, 0, sizeof *r);
}

void ecs_report_free(struct ecs_report *r)
{
    free(r->rows);
    memset(r, 0, sizeof *r);
}

static int reserve_rows(struct ecs_report *r, size_t n)
{
    if (n <= r->cap)
        return 0;
    size_t cap = r->cap ? r->cap : 16;
    while (cap < n)
        cap *= 2;
    struct ecs_row *rows = realloc(r->rows, cap * sizeof *rows);
    if (!rows)
        return -1;
    r->rows = rows;
    r->cap = cap;
    return 0;
}

static void task_row(struct ecs_row *row, const struct ecs_task *t, const struct task_usage *u)
{
    memset(row, 0, sizeof *row);
    memcpy(row->cluster, t->cluster, sizeof row->cluster);
    memcpy(row->service, t->service, sizeof row->service);
    memcpy(row->task, t->id, sizeof row->task);
    row->cpu_reserved = t->cpu_units;
    row->memory_reserved = t->memory_mib;
    row->has_cpu = u->has_cpu;
    if (u->has_cpu) {
        row->cpu_used = u->cpu_cores * ECS_CPU_UNITS_PER_CORE;
        /* ECS measures a task without a CPU reservation against one vCPU. */
        row->cpu_basis = t->cpu_units > 0 ? t->cpu_units : ECS_CPU_UNITS_PER_CORE;
    }
    row->has_memory = u->has_memory;
    if (u->has_memory) {
        row->memory_used = (double)u->memory_bytes / MIB;
        row->memory_basis = t->memory_mib;
    }
}

static int row_order(const void *a, const void *b)
{
    const struct ecs_row *x = a, *y = b;
    int c = strcmp(x->cluster, y->cluster);
    c = c ? c : strcmp(x->service, y->service);
    return c ? c : strcmp(x->task, y->task);
}

/* Adds a task's row into its service's. */
static void add_to_service(struct ecs_row *svc, const struct ecs_row *t)
{
    svc->cpu_reserved += t->cpu_reserved;
    svc->memory_reserved += t->memory_reserved;
    svc->has_cpu |= t->has_cpu;
    svc->cpu_used += t->cpu_used;
    svc->cpu_basis += t->cpu_basis;
    svc->has_memory |= t->has_memory;
    svc->memory_used += t->memory_used;
    svc->memory_basis += t->memory_basis;
}

/* The tasks' rows are sorted: each service's tasks are one run. */
static int add_services(struct ecs_report *r)
{
    for (size_t i = 0; i < r->n_tasks; i++) {
        const struct ecs_row *t = &r->rows[i];
        if (!t->service[0])
            continue;
        struct ecs_row *last = r->n > r->n_tasks ? &r->rows[r->n - 1] : NULL;
        if (!last || strcmp(last->cluster, t->cluster) != 0 ||
            strcmp(last->service, t->service) != 0) {
            if (reserve_rows(r, r->n + 1) < 0)
                return -1;
            t = &r->rows[i]; /* the rows may have moved */
            last = &r->rows[r->n++];
            memset(last, 0, sizeof *last);
            memcpy(last->cluster, t->cluster, sizeof last->cluster);
            memcpy(last->service, t->service, sizeof last->service);
        }
        add_to_service(last, t);
    }
    return 0;
}

int ecs_report_build(struct ecs_report *r, const struct task_list *tasks,
                     const struct task_usage *usage)
{
    r->n = r->n_tasks = 0;
    if (reserve_rows(r, tasks->n) < 0)
        return -1;
    for (size_t i = 0; i < tasks->n; i++)
        if (usage[i].sampled)
            task_row(&r->rows[r->n++], &tasks->items[i], &usage[i]);
    r->n_tasks = r->n;
    if (r->n_tasks > 1) /* qsort wants an array, even of nothing */
        qsort(r->rows, r->n_tasks, sizeof *r->rows, row_order);
    if (add_services(r) < 0) {
        r->n = r->n_tasks = 0;
        return -1;
    }
    return 0;
}

bool ecs_row_cpu_percent(const struct ecs_row *row, double *out)
{
    if (!row->has_cpu || row->cpu_basis <= 0)
        return false;
    *out = row->cpu_used / row->cpu_basis * 100.0;
    return true;
}

bool ecs_row_memory_percent(const struct ecs_row *row, double *out)
{
    if (!row->has_memory || row->memory_basis <= 0)
        return false;
    *out = row->memory_used / row->memory_basis * 100.0;
    return true;
}

/* The series id of a metric of the row; false when it cannot be named. */
static bool row_series(const struct ecs_row *row, const char *ns, const char *name, char *id,
                       size_t size)
{
    struct metric_series s = {.ns = ns, .name = name};
    s.dims[s.n_dims++] = (struct metric_dim){"ClusterName", row->cluster};
    if (row->service[0])
        s.dims[s.n_dims++] = (struct metric_dim){"ServiceName", row->service};
    if (row->task[0])
        s.dims[s.n_dims++] = (struct metric_dim){"TaskId", row->task};
    char why[128];
    return metric_series_id(&s, id, size, why, sizeof why) >= 0;
}

static bool write_one(const struct ecs_row *row, struct metric_batch *b, int64_t second,
                      const char *ns, const char *name, double value)
{
    char id[METRIC_ID_MAX];
    if (!row_series(row, ns, name, id, sizeof id))
        return false;
    metric_batch_sample(b, id, second, value);
    return true;
}

static bool write_row(const struct ecs_row *row, struct metric_batch *b, int64_t second)
{
    static const char ecs[] = "AWS/ECS", ci[] = "ECS/ContainerInsights";
    double pct;
    bool ok = true;
    if (ecs_row_cpu_percent(row, &pct))
        ok &= write_one(row, b, second, ecs, "CPUUtilization", pct);
    if (ecs_row_memory_percent(row, &pct))
        ok &= write_one(row, b, second, ecs, "MemoryUtilization", pct);
    if (row->has_cpu)
        ok &= write_one(row, b, second, ci, "CpuUtilized", row->cpu_used);
    ok &= write_one(row, b, second, ci, "CpuReserved", row->cpu_reserved);
    if (row->has_memory)
        ok &= write_one(row, b, second, ci, "MemoryUtilized", row->memory_used);
    ok &= write_one(row, b, second, ci, "MemoryReserved", row->memory_reserved);
    return ok;
}

size_t ecs_report_write(const struct ecs_report *r, struct metric_batch *b, int64_t second)
{
    size_t failed = 0;
    for (size_t i = 0; i < r->n; i++)
        failed += !write_row(&r->rows[i], b, second);
    return failed;
}
