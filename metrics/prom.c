#include "metrics/prom.h"

#include <inttypes.h>
#include <string.h>

int prom_escape_label(struct buf *out, const char *value)
{
    int rc = 0;
    for (const char *p = value; *p && rc == 0; p++) {
        size_t run = strcspn(p, "\\\"\n");
        rc = buf_append(out, p, run);
        p += run;
        if (!*p || rc < 0)
            break;
        rc = buf_append_str(out, *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : "\\n");
    }
    return rc;
}

static bool get_cpu_pct(const struct ecs_row *r, double *v)
{
    return ecs_row_cpu_percent(r, v);
}

static bool get_mem_pct(const struct ecs_row *r, double *v)
{
    return ecs_row_memory_percent(r, v);
}

static bool get_cpu_used(const struct ecs_row *r, double *v)
{
    *v = r->cpu_used;
    return r->has_cpu;
}

static bool get_cpu_reserved(const struct ecs_row *r, double *v)
{
    *v = r->cpu_reserved;
    return true;
}

static bool get_mem_used(const struct ecs_row *r, double *v)
{
    *v = r->memory_used;
    return r->has_memory;
}

static bool get_mem_reserved(const struct ecs_row *r, double *v)
{
    *v = r->memory_reserved;
    return true;
}

struct family {
    const char *name; /* after gantry_ecs_ (tasks) or gantry_ecs_service_ (services) */
    const char *help;
    bool (*get)(const struct ecs_row *r, double *v);
};

static const struct family families[] = {
    {"cpu_utilization_percent",
     "CPU used over CPU reserved (one vCPU for a task reserving none), percent (AWS/ECS "
     "CPUUtilization).",
     get_cpu_pct},
    {"memory_utilization_percent",
     "Memory used over memory reserved, percent (AWS/ECS MemoryUtilization).", get_mem_pct},
    {"cpu_utilized_units", "CPU used, in CPU units (1024 per core) (CpuUtilized).", get_cpu_used},
    {"cpu_reserved_units", "CPU reserved, in CPU units (CpuReserved).", get_cpu_reserved},
    {"memory_utilized_mib", "Memory used, MiB (MemoryUtilized).", get_mem_used},
    {"memory_reserved_mib", "Memory reserved, MiB (MemoryReserved).", get_mem_reserved},
};

static int render_row(struct buf *out, const char *metric, const struct ecs_row *r, double v)
{
    int rc = buf_printf(out, "%s{cluster=\"", metric);
    rc |= prom_escape_label(out, r->cluster);
    if (r->service[0]) {
        rc |= buf_append_str(out, "\",service=\"");
        rc |= prom_escape_label(out, r->service);
    }
    if (r->task[0]) {
        rc |= buf_append_str(out, "\",task=\"");
        rc |= prom_escape_label(out, r->task);
    }
    rc |= buf_printf(out, "\"} %.10g\n", v);
    return rc;
}

/* One family over the rows [from, to), with its HELP and TYPE lines. */
static int render_family(struct buf *out, const struct family *f, bool services,
                         const struct ecs_row *rows, size_t from, size_t to)
{
    char metric[96];
    snprintf(metric, sizeof metric, "gantry_ecs_%s%s", services ? "service_" : "", f->name);
    int rc = buf_printf(out, "# HELP %s %s%s\n# TYPE %s gauge\n", metric,
                        services ? "Per service: " : "Per task: ", f->help, metric);
    for (size_t i = from; i < to && rc == 0; i++) {
        double v;
        if (f->get(&rows[i], &v))
            rc = render_row(out, metric, &rows[i], v);
    }
    return rc;
}

static int render_counters(struct buf *out, const struct metrics_counters *c)
{
    return buf_printf(
        out,
        "# HELP gantry_metrics_samples_total Sampling passes since start.\n"
        "# TYPE gantry_metrics_samples_total counter\ngantry_metrics_samples_total %" PRIu64 "\n"
        "# HELP gantry_metrics_tasks Tasks sampled by the last pass.\n"
        "# TYPE gantry_metrics_tasks gauge\ngantry_metrics_tasks %" PRIu64 "\n"
        "# HELP gantry_metrics_records_skipped Damaged task records in Redis, skipped by the "
        "last read.\n"
        "# TYPE gantry_metrics_records_skipped gauge\ngantry_metrics_records_skipped %" PRIu64 "\n"
        "# HELP gantry_metrics_datapoints_written_total Datapoints written to the metric store.\n"
        "# TYPE gantry_metrics_datapoints_written_total counter\n"
        "gantry_metrics_datapoints_written_total %" PRIu64 "\n"
        "# HELP gantry_metrics_datapoints_dropped_total Datapoints lost: Redis unreachable or "
        "refusing.\n"
        "# TYPE gantry_metrics_datapoints_dropped_total counter\n"
        "gantry_metrics_datapoints_dropped_total %" PRIu64 "\n"
        "# HELP gantry_metrics_last_sample_duration_seconds How long the last pass took.\n"
        "# TYPE gantry_metrics_last_sample_duration_seconds gauge\n"
        "gantry_metrics_last_sample_duration_seconds %.6f\n"
        "# HELP gantry_metrics_redis_up Whether the last exchange with Redis worked.\n"
        "# TYPE gantry_metrics_redis_up gauge\ngantry_metrics_redis_up %d\n"
        "# HELP gantry_metrics_docker_streams Stats streams open to dockerd: one per container "
        "of the RUNNING DOCKER tasks.\n"
        "# TYPE gantry_metrics_docker_streams gauge\ngantry_metrics_docker_streams %" PRIu64 "\n",
        c->samples, c->tasks, c->records_skipped, c->datapoints_written, c->datapoints_dropped,
        c->last_sample_seconds, c->redis_up ? 1 : 0, c->docker_streams);
}

int prom_render(const struct ecs_report *r, const struct metrics_counters *c, struct buf *out)
{
    int rc = 0;
    size_t n = sizeof families / sizeof families[0];
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = render_family(out, &families[i], false, r->rows, 0, r->n_tasks);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = render_family(out, &families[i], true, r->rows, r->n_tasks, r->n);
    return rc == 0 ? render_counters(out, c) : rc;
}
