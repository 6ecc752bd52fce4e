/* gantry-metrics' daemon: every metrics.sample_interval, on wall-clock multiples of it (each
 * second by default), one pass: the task list from gantry-core's state in Redis, a sample of each
 * RUNNING PROCESS or DOCKER task (metrics/sampler.h; DOCKER tasks through dockerd at
 * core.docker_socket, the daemon gantry-core runs them with), ECS's metrics per task and per
 * service (metrics/ecs_report.h) written to the metric store in one batch, and kept for the admin
 * endpoint's /metrics (metrics/prom.h).
 *
 * Redis down: the pass samples the tasks it last learnt (so /metrics and the CPU baselines stay
 * current) and drops its datapoints; the outage is logged once, and its end with what was
 * dropped. The synchronous Redis client's backoff (250 ms doubling to 8 s) keeps a dead Redis
 * from costing a timeout every pass. SIGHUP reloads (a refused file changes nothing; the admin
 * address needs a restart), SIGTERM and SIGINT stop. */
#ifndef GANTRY_METRICS_DAEMON_H
#define GANTRY_METRICS_DAEMON_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/daemon.h"
#include "common/http_server.h"
#include "common/redis_sync.h"
#include "config/config.h"
#include "metrics/ecs_report.h"
#include "metrics/prom.h"
#include "metrics/sampler.h"
#include "metrics/store.h"
#include "metrics/task_list.h"

struct metrics_daemon {
    struct ev_loop *loop;
    struct daemon_args args;
    struct gantry_config cfg;
    struct daemon_signals signals;
    struct http_server admin;
    bool admin_running;
    ev_periodic tick;

    struct redis_sync redis;
    struct metric_retention retention;
    struct metric_batch batch;
    struct task_list tasks;   /* what the last successful read of Redis found */
    struct task_list fetched; /* the read in progress */
    struct task_usage *usage; /* one per task of `tasks` */
    size_t usage_cap;
    struct sampler sampler;
    struct ecs_report report; /* the last pass: what /metrics shows */

    struct metrics_counters counters;
    bool redis_down;            /* the outage was logged; its end is not yet */
    uint64_t dropped_at_outage; /* counters.datapoints_dropped when it began */
    size_t skipped_logged;      /* damaged records last reported in the log */
    int64_t last_pass_wall_ms;
};

/* The configuration from the files of -c, --redis, --log-level and --admin. 0, or -1 with errors
 * (cfg is then to be freed). */
int metrics_load_config(struct gantry_config *cfg, const struct daemon_args *args,
                        struct cfg_errors *errors);

/* Runs until stopped: d->args and d->cfg (loaded, which d owns from here) must be set, and
 * logging initialised. The exit status. */
int metrics_daemon_run(struct metrics_daemon *d);
/* Frees what the daemon holds, its configuration included. */
void metrics_daemon_free(struct metrics_daemon *d);

#endif
