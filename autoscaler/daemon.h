/* gantry-autoscaler's daemon: once per autoscaler.period it reads each policy's datapoints from
 * the metric store (the same reads `gantry metrics get` does), asks the engine (engine.h) what
 * each scalable target's desired count should be, and carries it out through the ECS API
 * (ecs_client.h), recording each scaling activity in Redis (activities.h). Scheduled actions fire
 * on their schedule. SIGHUP reloads the configuration: a file that is refused (file:line:col)
 * keeps the running policies; cooldowns survive a reload. */
#ifndef GANTRY_AUTOSCALER_DAEMON_H
#define GANTRY_AUTOSCALER_DAEMON_H

#include <ev.h>

#include "autoscaler/ecs_client.h"
#include "autoscaler/engine.h"
#include "autoscaler/model.h"
#include "common/daemon.h"
#include "common/redis_sync.h"
#include "config/config.h"

enum { AS_CAPACITY_SAMPLES = 128 };

/* What the daemon keeps per scalable target: the engine's state, the last failure logged, and
 * the running count at each recent evaluation (a datapoint is proportional to the tasks that ran
 * during its period, not to the count at the time it is read). */
struct as_run {
    char resource_id[AS_NAME_MAX];
    struct as_state state;
    char last_error[1024];
    int64_t sample_ms[AS_CAPACITY_SAMPLES];
    int sample_running[AS_CAPACITY_SAMPLES];
    int n_samples, next_sample;
};

enum { AS_MAX_POLICIES_PER_TARGET = 64 };

struct autoscaler {
    struct ev_loop *loop;
    struct gantry_config cfg;
    struct daemon_args args;
    struct daemon_signals signals;
    struct redis_sync redis;
    struct ecs_client ecs;
    struct metric_retention retention;
    struct as_model model;
    struct as_settings settings;
    struct as_run *runs;    /* one per model.targets, same index */
    int64_t *action_next;   /* per model.actions: next fire (Unix s), -1 never */
    int64_t *step_last_end; /* per model.policies: the alarm period a step policy last saw */
    ev_timer tick;
    struct as_points points[AS_MAX_POLICIES_PER_TARGET]; /* one target's, during its evaluation */
};

/* Loads and checks the configuration (the model too): 0, or -1 with errors. */
int autoscaler_load_config(struct gantry_config *cfg, struct as_model *model,
                           const struct daemon_args *args, struct cfg_errors *errors);
int autoscaler_run(struct autoscaler *a); /* the exit status */
void autoscaler_free(struct autoscaler *a);

/* One evaluation of every target at now_ms (the tick; exposed for tests). */
void autoscaler_evaluate(struct autoscaler *a, int64_t now_ms);

#endif
