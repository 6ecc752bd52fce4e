#include "autoscaler/daemon.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoscaler/activities.h"
#include "common/clock.h"
#include "common/log.h"

/* Metrics of the last seconds may still be on their way (gantry-lb and gantry-metrics flush once
 * a second): a period is read once this much past its end. */
enum { METRIC_LAG_MS = 2000 };

int autoscaler_load_config(struct gantry_config *cfg, struct as_model *model,
                           const struct daemon_args *args, struct cfg_errors *errors)
{
    memset(model, 0, sizeof *model);
    if (config_load_args(cfg, args, errors) < 0)
        return -1;
    return as_model_load(&cfg->autoscaler, model, errors);
}

/* --- datapoints --- */

static int points_needed(const struct as_policy *p, const struct as_settings *s)
{
    int n = p->type == AS_STEP                              ? p->alarm.evaluation_periods
            : s->scale_in_datapoints > s->scale_out_periods ? s->scale_in_datapoints
                                                            : s->scale_out_periods;
    return n < 1 ? 1 : n > AS_MAX_POINTS ? AS_MAX_POINTS : n;
}

static const struct as_metric *policy_metric(const struct as_policy *p)
{
    return p->type == AS_STEP ? &p->alarm.metric : &p->metric;
}

static int running_at(const struct as_run *run, int64_t t_ms, int fallback);

static int64_t policy_period_s(const struct autoscaler *a, const struct as_policy *p)
{
    int64_t ms =
        p->type == AS_STEP && p->alarm.period_ms ? p->alarm.period_ms : a->settings.period_ms;
    return ms / 1000 < 1 ? 1 : ms / 1000;
}

/* The statistic of each of the last n periods ending at end_s; a period without data, or with a
 * value that is not a finite number (a damaged record), is missing, never zero.
 *
 * Target tracking assumes its metric is inversely proportional to the capacity, and a datapoint
 * describes the tasks that ran during its period: while a scale-out's tasks are still starting,
 * fewer ran than are now desired. Such a datapoint is read as it would be at the desired
 * capacity (value * running then / desired), so that the same high datapoints, read again before
 * the new tasks serve, do not scale out a second time. */
static void read_points(struct autoscaler *a, const struct as_policy *p, const struct as_run *run,
                        int desired, int64_t end_s, struct as_points *out)
{
    const struct as_metric *m = policy_metric(p);
    int64_t period_s = policy_period_s(a, p);
    int n = points_needed(p, &a->settings);
    memset(out, 0, sizeof *out);
    out->n = n;
    for (int i = 0; i < n; i++) {
        int64_t stop = end_s - (int64_t)(n - 1 - i) * period_s;
        struct metric_window w;
        double v;
        if (metric_read_window(&a->redis, m->series, stop - period_s, stop, &a->retention, &w) <
                0 ||
            !metric_window_value(&w, m->stat, &v) || !isfinite(v))
            continue;
        if (m->per_minute)
            v = v * 60.0 / (double)period_s;
        if (p->type == AS_TARGET_TRACKING && desired > 0) {
            int then = running_at(run, (stop - period_s) * 1000, desired);
            if (then > 0 && then < desired)
                v = v * then / desired;
        }
        out->value[i] = v;
        out->present[i] = true;
    }
}

/* --- one target --- */

static void note_running(struct as_run *run, int64_t now_ms, int running)
{
    run->sample_ms[run->next_sample] = now_ms;
    run->sample_running[run->next_sample] = running;
    run->next_sample = (run->next_sample + 1) % AS_CAPACITY_SAMPLES;
    if (run->n_samples < AS_CAPACITY_SAMPLES)
        run->n_samples++;
}

/* The running count at time t_ms: the latest sample at or before it, else the oldest known. */
static int running_at(const struct as_run *run, int64_t t_ms, int fallback)
{
    int best = -1, oldest = -1;
    int64_t best_ms = 0, oldest_ms = 0;
    for (int i = 0; i < run->n_samples; i++) {
        int64_t ms = run->sample_ms[i];
        if (ms <= t_ms && (best < 0 || ms > best_ms)) {
            best = i;
            best_ms = ms;
        }
        if (oldest < 0 || ms < oldest_ms) {
            oldest = i;
            oldest_ms = ms;
        }
    }
    int i = best >= 0 ? best : oldest;
    return i >= 0 ? run->sample_running[i] : fallback;
}

static void log_failure(struct as_run *run, const char *what)
{
    if (strcmp(run->last_error, what) == 0)
        return;
    snprintf(run->last_error, sizeof run->last_error, "%s", what);
    log_warn("%s: %s", run->resource_id, what);
}

static void fire_scheduled(struct autoscaler *a, const struct as_target *t, struct as_run *run,
                           int64_t now_s)
{
    for (size_t i = 0; i < a->model.n_actions; i++) {
        const struct as_scheduled_action *act = &a->model.actions[i];
        if (strcmp(act->resource_id, t->resource_id) != 0 || a->action_next[i] < 0 ||
            now_s < a->action_next[i])
            continue;
        char why[160];
        a->action_next[i] =
            schedule_next(&act->schedule, now_s, now_s, act->timezone, why, sizeof why);
        if (t->scheduled_suspended || (act->start_s && now_s < act->start_s) ||
            (act->end_s && now_s > act->end_s))
            continue;
        as_state_schedule(&run->state, act);
        log_info("%s: scheduled action %s: capacity %d to %d", t->resource_id, act->name,
                 run->state.min_capacity, run->state.max_capacity);
    }
}

static void act(struct autoscaler *a, const struct as_target *t, struct as_run *run,
                const struct as_policy *policy, const struct as_decision *d)
{
    double start = (double)clock_wall_ms() / 1000.0;
    int rc = ecs_update_desired(&a->ecs, t->cluster, t->service, d->desired);
    struct activity activity = {.resource_id = t->resource_id,
                                .description = d->description,
                                .cause = d->cause,
                                .start = start,
                                .end = (double)clock_wall_ms() / 1000.0,
                                .successful = rc == 0,
                                .status_message = rc == 0 ? "" : a->ecs.error};
    activity_record(&a->redis, &activity);
    if (rc < 0) {
        log_failure(run, a->ecs.error);
        return;
    }
    run->last_error[0] = '\0';
    as_state_acted(&run->state, policy, d, clock_wall_ms());
    log_info("%s: %s (%s)", t->resource_id, d->description, d->cause);
}

static void evaluate_target(struct autoscaler *a, size_t index, int64_t now_ms)
{
    const struct as_target *t = &a->model.targets[index];
    struct as_run *run = &a->runs[index];
    fire_scheduled(a, t, run, now_ms / 1000);
    struct ecs_service_state svc;
    if (ecs_describe_service(&a->ecs, t->cluster, t->service, &svc) < 0) {
        log_failure(run, a->ecs.error);
        return;
    }
    if (!svc.active)
        return;
    if (run->last_error[0]) {
        log_info("%s: the ECS API answers again", t->resource_id);
        run->last_error[0] = '\0';
    }
    if (svc.desired < 0 || svc.desired > 100000 || svc.running < 0)
        return;
    note_running(run, now_ms, svc.running);
    const struct as_policy *policies[AS_MAX_POLICIES_PER_TARGET];
    struct as_points *points = a->points;
    int n = 0;
    int64_t end_s = (now_ms - METRIC_LAG_MS) / 1000;
    for (size_t i = 0; i < a->model.n_policies && n < AS_MAX_POLICIES_PER_TARGET; i++) {
        const struct as_policy *p = &a->model.policies[i];
        if (strcmp(p->resource_id, t->resource_id) != 0)
            continue;
        int64_t policy_end = end_s;
        if (p->type == AS_STEP) {
            /* an alarm is evaluated once per Period, on whole periods, as CloudWatch does: not
             * again at every tick of a shorter autoscaler.period */
            int64_t period_s = policy_period_s(a, p);
            policy_end = end_s - end_s % period_s;
            if (a->step_last_end[i] == policy_end)
                continue;
            a->step_last_end[i] = policy_end;
        }
        policies[n] = p;
        read_points(a, p, run, svc.desired, policy_end, &points[n]);
        n++;
    }
    struct as_decision d;
    if (!as_decide(t, &a->settings, policies, points, n, svc.desired, svc.deployment_in_progress,
                   now_ms, &run->state, &d) ||
        d.kind == AS_NONE || d.desired == svc.desired)
        return;
    act(a, t, run, d.policy_index >= 0 && d.policy_index < n ? policies[d.policy_index] : NULL, &d);
}

void autoscaler_evaluate(struct autoscaler *a, int64_t now_ms)
{
    for (size_t i = 0; i < a->model.n_targets; i++)
        evaluate_target(a, i, now_ms);
}

/* --- the model in force --- */

static void plan_actions(struct autoscaler *a, int64_t now_s)
{
    free(a->action_next);
    a->action_next = calloc(a->model.n_actions ? a->model.n_actions : 1, sizeof *a->action_next);
    for (size_t i = 0; a->action_next && i < a->model.n_actions; i++) {
        const struct as_scheduled_action *act = &a->model.actions[i];
        char why[160];
        a->action_next[i] =
            schedule_next(&act->schedule, now_s, now_s - 1, act->timezone, why, sizeof why);
    }
}

/* New runs for the model's targets; a target that was there before keeps its state (its
 * cooldowns and a scheduled action's capacity) unless its configured capacity changed. */
static int adopt_model(struct autoscaler *a, struct as_model *model)
{
    struct as_run *runs = calloc(model->n_targets ? model->n_targets : 1, sizeof *runs);
    if (!runs)
        return -1;
    for (size_t i = 0; i < model->n_targets; i++) {
        const struct as_target *t = &model->targets[i];
        snprintf(runs[i].resource_id, sizeof runs[i].resource_id, "%s", t->resource_id);
        as_state_init(&runs[i].state, t);
        for (size_t j = 0; j < a->model.n_targets; j++) {
            const struct as_target *old = &a->model.targets[j];
            if (strcmp(old->resource_id, t->resource_id) != 0)
                continue;
            /* cooldowns and the running-count history survive; the capacity bounds in force
             * are the new file's (a scheduled action's apply again at its next time) */
            struct as_state fresh = runs[i].state;
            runs[i] = a->runs[j];
            runs[i].state.min_capacity = fresh.min_capacity;
            runs[i].state.max_capacity = fresh.max_capacity;
        }
    }
    int64_t *step_last_end =
        calloc(model->n_policies ? model->n_policies : 1, sizeof *step_last_end);
    if (!step_last_end) {
        free(runs);
        return -1;
    }
    as_model_free(&a->model);
    free(a->runs);
    free(a->step_last_end);
    a->model = *model;
    a->runs = runs;
    a->step_last_end = step_last_end;
    memset(model, 0, sizeof *model);
    plan_actions(a, clock_wall_ms() / 1000);
    return 0;
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    autoscaler_evaluate(w->data, clock_wall_ms());
}

static void on_stop(void *arg)
{
    struct autoscaler *a = arg;
    log_info("stopping");
    ev_timer_stop(a->loop, &a->tick);
    daemon_signals_stop(a->loop, &a->signals);
    ev_break(a->loop, EVBREAK_ALL);
}

static void on_reload(void *arg)
{
    struct autoscaler *a = arg;
    struct gantry_config *next = calloc(1, sizeof *next);
    struct as_model model;
    struct cfg_errors errors;
    if (!next)
        return;
    if (autoscaler_load_config(next, &model, &a->args, &errors) < 0) {
        config_log_refused_reload(&errors);
        as_model_free(&model);
        config_free(next);
        free(next);
        return;
    }
    if (adopt_model(a, &model) < 0) {
        as_model_free(&model);
        config_free(next);
        free(next);
        return;
    }
    config_free(&a->cfg);
    a->cfg = *next;
    free(next);
    int64_t period_before = a->settings.period_ms;
    as_settings_from(&a->cfg.autoscaler, &a->settings);
    if (a->settings.period_ms != period_before) { /* else reloads must not postpone the ticks */
        double every = (double)a->settings.period_ms / 1000.0;
        ev_timer_stop(a->loop, &a->tick);
        ev_timer_set(&a->tick, every, every);
        ev_timer_start(a->loop, &a->tick);
    }
    log_info("configuration reloaded: %zu scalable targets, %zu policies, %zu scheduled actions",
             a->model.n_targets, a->model.n_policies, a->model.n_actions);
}

int autoscaler_run(struct autoscaler *a)
{
    a->loop = ev_default_loop(0);
    struct redis_url url = a->cfg.redis.url;
    if (!url.addr.len) {
        char why[160];
        value_parse_redis_url("redis://127.0.0.1:6379", &url, why, sizeof why);
    }
    redis_sync_init(&a->redis, &url, a->cfg.redis.connect_timeout_ms);
    a->retention.seconds_s = a->cfg.metrics.retention_ms / 1000;
    a->retention.minutes_s = a->cfg.metrics.rollup_retention_ms / 1000;
    const struct config_autoscaler *ac = &a->cfg.autoscaler;
    if (ecs_client_init(&a->ecs, ac->ecs_endpoint, ac->region, ac->sigv4) < 0) {
        log_error("cannot set up libcurl");
        return 1;
    }
    as_settings_from(ac, &a->settings);
    struct as_model model = a->model;
    memset(&a->model, 0, sizeof a->model);
    if (adopt_model(a, &model) < 0)
        return 1;
    double every = (double)a->settings.period_ms / 1000.0;
    ev_timer_init(&a->tick, on_tick, every, every);
    a->tick.data = a;
    ev_timer_start(a->loop, &a->tick);
    daemon_signals_start(a->loop, &a->signals, on_stop, on_reload, a);
    log_info("%zu scalable targets, %zu policies, %zu scheduled actions; ECS API %s, every %.1fs",
             a->model.n_targets, a->model.n_policies, a->model.n_actions, ac->ecs_endpoint, every);
    daemon_ready(NULL, 0);
    ev_run(a->loop, 0);
    log_info("stopped");
    return 0;
}

void autoscaler_free(struct autoscaler *a)
{
    as_model_free(&a->model);
    free(a->runs);
    free(a->action_next);
    free(a->step_last_end);
    ecs_client_free(&a->ecs);
    redis_sync_close(&a->redis);
    config_free(&a->cfg);
}
