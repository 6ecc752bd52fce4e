/* gantry-metrics' admin endpoint, GET /metrics: the latest pass in Prometheus' text format
 * (version 0.0.4), per task (labels cluster, service, task; a task RunTask started has no service
 * label) and per service (cluster, service), plus the daemon's own counters. Label values are
 * escaped as the format wants (backslash, double quote, newline). */
#ifndef GANTRY_METRICS_PROM_H
#define GANTRY_METRICS_PROM_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "metrics/ecs_report.h"

struct metrics_counters {
    uint64_t samples;            /* passes */
    uint64_t tasks;              /* tasks sampled by the last pass */
    uint64_t records_skipped;    /* damaged task records met by the last read of the tasks */
    uint64_t datapoints_written; /* accepted by Redis */
    uint64_t datapoints_dropped; /* lost: Redis unreachable or refusing */
    double last_sample_seconds;  /* how long the last pass took */
    uint64_t docker_streams;     /* stats streams open to dockerd */
    bool redis_up;               /* the last exchange with Redis worked */
};

/* Appends the exposition to out. -1 when out is full. */
int prom_render(const struct ecs_report *r, const struct metrics_counters *c, struct buf *out);

/* value with \, " and newline escaped, as a label value; -1 when out is full. */
int prom_escape_label(struct buf *out, const char *value);

#endif
