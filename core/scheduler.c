/* The service scheduler: a reconcile loop that drives every service to its desiredCount and every
 * task through ECS's lifecycle. It runs every reconcile_interval and, through core_kick(), right
 * after an API change or a child's exit.
 *
 * A task to start: placed (cpu, memory, ports) -> its processes started -> RUNNING -> its targets
 * registered. A task to stop: targets deregistered (DEACTIVATING) -> gantry-lb's drained mark or
 * the group's deregistration delay -> SIGTERM (STOPPING) -> SIGKILL after stopTimeout -> every
 * process gone -> STOPPED, resources released. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "core/deploy.h"
#include "core/launch.h"
#include "core/scheduled.h"
#include "core/targets.h"

static bool is_service_task(const struct core_task *t, const struct core_service *svc)
{
    return strcmp(t->cluster, svc->cluster) == 0 && strcmp(t->service, svc->name) == 0;
}

void scheduler_counts(struct core *core, const char *cluster, const char *service, int *running,
                      int *pending)
{
    *running = *pending = 0;
    for (struct core_task *t = core->tasks; t; t = t->next) {
        if (strcmp(t->cluster, cluster) != 0 || (service && strcmp(t->service, service) != 0))
            continue;
        if (t->last == TASK_RUNNING)
            (*running)++;
        else if (t->last < TASK_RUNNING)
            (*pending)++;
    }
}

/* --- services --- */

/* A task of the service failed to start or died young: count it, and past a few in a row make
 * the service wait before it starts more (1 s, doubling up to a minute), as ECS's throttle does
 * for a task definition that cannot run. */
static void note_failure(struct core *core, struct core_task *task)
{
    struct core_service *svc =
        task->service[0] ? service_find(core, task->cluster, task->service) : NULL;
    if (!svc || !svc->active)
        return;
    double started = json_number_value(json_object_get(task->doc, "startedAt"));
    int64_t now = clock_wall_ms();
    if (started > 0 && now - (int64_t)(started * 1000) >= TASK_FAILURE_WINDOW_MS) {
        svc->failures = 0; /* it ran a good while: a crash, not a task that cannot start */
        return;
    }
    deploy_task_failed(core, svc, task, "failed to start");
    if (++svc->failures <= SERVICE_FAILURES_BEFORE_BACKOFF)
        return;
    int shift = svc->failures - SERVICE_FAILURES_BEFORE_BACKOFF - 1;
    int64_t delay = shift >= 6 ? SERVICE_BACKOFF_MAX_MS : (int64_t)1000 << shift;
    svc->next_start_ms = now + (delay < SERVICE_BACKOFF_MAX_MS ? delay : SERVICE_BACKOFF_MAX_MS);
    service_event(core, svc,
                  "is unable to consistently start tasks successfully. For more information, see "
                  "the Troubleshooting section of the Amazon ECS Developer Guide.");
}

void scheduler_task_failed(struct core_task *task, const char *what)
{
    struct core_service *svc =
        task->service[0] ? service_find(task->core, task->cluster, task->service) : NULL;
    if (svc && svc->active)
        deploy_task_failed(task->core, svc, task, what);
}

/* A task of the service has run past the failure window: the service starts freely again. */
static void clear_failures(struct core *core, struct core_service *svc)
{
    int64_t now = clock_wall_ms();
    /* only the primary's tasks tell: an older revision's long-running tasks say nothing about
     * whether the new one can start */
    const char *primary = jstr(json_array_get(json_object_get(svc->doc, "deployments"), 0), "id");
    for (struct core_task *t = core->tasks; svc->failures && t; t = t->next) {
        double started = json_number_value(json_object_get(t->doc, "startedAt"));
        if (is_service_task(t, svc) && t->last == TASK_RUNNING && started > 0 &&
            strcmp(deploy_task_deployment(t), primary) == 0 &&
            now - (int64_t)(started * 1000) >= TASK_FAILURE_WINDOW_MS) {
            svc->failures = 0;
            svc->next_start_ms = 0;
        }
    }
}

static void announce(struct core *core, struct core_service *svc, const struct pass_events *ev)
{
    if (ev->n_started)
        service_event(core, svc, "has started %d tasks: %s.", ev->n_started, ev->started);
    if (ev->n_stopped)
        service_event(core, svc, "has stopped %d running tasks: %s.", ev->n_stopped, ev->stopped);
}

/* Registers the service's RUNNING tasks and deregisters its stopping ones, one event per group
 * and direction as ECS writes them. */
static void sync_targets(struct core *core, struct core_service *svc)
{
    size_t i;
    json_t *lb;
    json_array_foreach(json_object_get(svc->doc, "loadBalancers"), i, lb)
    {
        const char *arn = jstr(lb, "targetGroupArn");
        int registered = 0, deregistered = 0, draining = 0;
        for (struct core_task *t = core->tasks; t; t = t->next) {
            if (!is_service_task(t, svc))
                continue;
            for (int k = 0; k < t->n_targets; k++) {
                struct task_target *tt = &t->targets[k];
                if (strcmp(tt->group_arn, arn) != 0)
                    continue;
                bool want = t->desired == TASK_RUNNING && t->last == TASK_RUNNING;
                if (want && !tt->registered && targets_register(core, tt) == 0) {
                    registered++;
                    t->dirty = true;
                } else if (!want && tt->registered && targets_deregister(core, tt) == 0) {
                    deregistered++;
                    draining += t->last == TASK_RUNNING && !t->no_drain;
                    t->dirty = true;
                }
            }
        }
        if (registered)
            service_event(core, svc, "registered %d targets in (target-group %s)", registered, arn);
        if (deregistered)
            service_event(core, svc, "deregistered %d targets in (target-group %s)", deregistered,
                          arn);
        if (draining)
            service_event(core, svc, "has begun draining connections on %d tasks.", draining);
    }
}

static bool task_settled(const struct core_task *t)
{
    if (t->desired == TASK_STOPPED)
        return t->last == TASK_STOPPED;
    if (t->last != TASK_RUNNING)
        return false;
    for (int k = 0; k < t->n_targets; k++)
        if (!t->targets[k].registered)
            return false;
    return true;
}

static void check_steady(struct core *core, struct core_service *svc)
{
    int64_t want = json_integer_value(json_object_get(svc->doc, "desiredCount"));
    int64_t running = 0;
    bool settled = true;
    for (struct core_task *t = core->tasks; t; t = t->next) {
        if (!is_service_task(t, svc))
            continue;
        settled &= task_settled(t);
        running += t->desired == TASK_RUNNING && t->last == TASK_RUNNING;
    }
    if (!settled || running != want) {
        svc->steady = false;
        return;
    }
    deploy_settled(core, svc);
    if (svc->steady)
        return;
    svc->steady = true;
    svc->last_placement_failure[0] = '\0';
    service_event(core, svc, "has reached a steady state.");
}

static void reconcile_service(struct core *core, struct core_service *svc)
{
    if (svc->inactive_at_ms)
        return;
    struct pass_events ev = {0};
    clear_failures(core, svc);
    deploy_target_health(core, svc);
    if (!core->shutting_down)
        deploy_scale(core, svc, &ev);
    announce(core, svc, &ev);
    sync_targets(core, svc);
    if (svc->active) {
        check_steady(core, svc);
        return;
    }
    for (struct core_task *t = core->tasks; t; t = t->next)
        if (is_service_task(t, svc) && t->last != TASK_STOPPED)
            return;
    svc->inactive_at_ms = clock_wall_ms();
    json_object_set_new(svc->doc, "status", json_string("INACTIVE"));
    svc->dirty = true;
    log_info("service %s/%s is INACTIVE: every task stopped", svc->cluster, svc->name);
}

/* --- tasks --- */

void scheduler_container_exited(struct core_task *task, struct task_container *c, int exit_code,
                                const char *reason)
{
    if (!c->running)
        return;
    c->running = false;
    c->has_exit_code = exit_code >= 0;
    c->exit_code = exit_code;
    health_stop(task->core, task, (int)(c - task->containers));
    json_t *doc =
        json_array_get(json_object_get(task->doc, "containers"), (size_t)(c - task->containers));
    if (exit_code >= 0)
        json_object_set_new(doc, "exitCode", json_integer(exit_code));
    json_object_set_new(doc, "lastStatus", json_string("STOPPED"));
    if (reason)
        json_object_set_new(doc, "reason", json_string(reason));
    task->dirty = true;
    log_info("task %s: container %s exited with %d%s%s", task->id, c->name, exit_code,
             reason ? ": " : "", reason ? reason : "");
    /* the rest of the group (a shell's children) goes with it; a re-adopted process's pid is
     * no longer reserved for us once it is gone: its task's cgroup is cleaned up instead */
    if (!launch_is_docker(task) && !c->adopted)
        launch_signal(task->core, task, c, SIGKILL);
    if (c->pidfd >= 0) {
        ev_io_stop(task->core->loop, &c->exit_io);
        close(c->pidfd);
        c->pidfd = -1;
    }
    if (c->essential) {
        /* its targets go at once, even when it was already being drained */
        task->no_drain = true;
        if (task->desired == TASK_RUNNING) {
            note_failure(task->core, task);
            task_request_stop(task, "Essential container in task exited",
                              "EssentialContainerExited");
        }
    }
    core_kick(task->core);
}

static void on_child(struct ev_loop *loop, ev_child *w, int revents)
{
    (void)revents;
    ev_child_stop(loop, w);
    struct task_container *c = w->data;
    c->watched = false;
    int status = w->rstatus;
    char reason[64];
    if (WIFSIGNALED(status))
        snprintf(reason, sizeof reason, "killed by signal %d", WTERMSIG(status));
    scheduler_container_exited(c->task, c,
                               WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                               WIFSIGNALED(status) ? reason : NULL);
}

void launch_watch(struct core *core, struct task_container *c)
{
    ev_child_init(&c->child, on_child, c->pid, 0);
    c->child.data = c;
    ev_child_start(core->loop, &c->child);
    c->watched = true;
}

static void on_adopted_exit(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct task_container *c = w->data;
    scheduler_container_exited(c->task, c, -1,
                               "exited while re-adopted after a gantry-core restart (its exit "
                               "code is unknown)");
}

void launch_adopt(struct core *core, struct task_container *c)
{
    c->adopted = true;
    c->pidfd = runner_pidfd(c->pid, c->start_ticks);
    if (c->pidfd < 0)
        return; /* no pidfd_open: each reconcile pass looks (poll_adopted) */
    ev_io_init(&c->exit_io, on_adopted_exit, c->pidfd, EV_READ);
    c->exit_io.data = c;
    ev_io_start(core->loop, &c->exit_io);
}

static void poll_adopted(struct core *core)
{
    for (struct core_task *t = core->tasks; t; t = t->next) {
        for (int i = 0; i < t->n_containers; i++) {
            struct task_container *c = &t->containers[i];
            if (c->adopted && c->running && c->pidfd < 0 && !runner_is_ours(c->pid, c->start_ticks))
                scheduler_container_exited(t, c, -1,
                                           "exited while re-adopted after a gantry-core restart "
                                           "(its exit code is unknown)");
        }
    }
}

static bool any_running(const struct core_task *task)
{
    for (int i = 0; i < task->n_containers; i++)
        if (task->containers[i].running)
            return true;
    return false;
}

static void signal_all(struct core_task *task, int sig)
{
    for (int i = 0; i < task->n_containers; i++)
        if (task->containers[i].running)
            launch_signal(task->core, task, &task->containers[i], sig);
}

static void placement_failed(struct core *core, struct core_task *task, const char *resource)
{
    task_set_status(task, TASK_PENDING);
    struct core_service *svc =
        task->service[0] ? service_find(core, task->cluster, task->service) : NULL;
    if (!svc || strcmp(svc->last_placement_failure, resource) == 0)
        return;
    snprintf(svc->last_placement_failure, sizeof svc->last_placement_failure, "%s", resource);
    const char *arn = instance_arn(core, task->cluster);
    const char *id = strrchr(arn, '/');
    service_event(core, svc,
                  "was unable to place a task because no container instance met all of its "
                  "requirements. The closest matching (container-instance %s) has insufficient "
                  "%s available. For more information, see the Troubleshooting section of the "
                  "Amazon ECS Developer Guide.",
                  id ? id + 1 : arn,
                  strcmp(resource, "MEMORY") == 0 ? "memory"
                  : strcmp(resource, "CPU") == 0  ? "CPU units"
                                                  : "ports");
}

static void start_task(struct core *core, struct core_task *task)
{
    char resource[16], why[512];
    if (launch_place(core, task, resource, sizeof resource) < 0) {
        placement_failed(core, task, resource);
        return;
    }
    task_set_status(task, TASK_PENDING);
    if (launch_start(core, task, why, sizeof why) < 0) {
        log_warn("task %s cannot start: %s", task->id, why);
        char reason[600];
        /* a launch type that knows the error's ECS name gives it (CannotPullContainerError) */
        snprintf(reason, sizeof reason, "%s%s",
                 strncmp(why, "Cannot", 6) == 0 ? "" : "CannotStartContainerError: ", why);
        note_failure(core, task);
        task_request_stop(task, reason, "TaskFailedToStart");
        return;
    }
    task_set_status(task, TASK_RUNNING);
    log_info("task %s of %s running", task->id, jstr(task->td, "taskDefinitionArn"));
}

static void finish_task(struct core *core, struct core_task *task)
{
    task_set_status(task, TASK_DEPROVISIONING);
    for (int k = 0; k < task->n_targets; k++)
        targets_deregister(core, &task->targets[k]); /* normally done already */
    launch_release(core, task);
    launch_done(core, task);
    task_set_status(task, TASK_STOPPED);
    task->stopped_at_ms = clock_wall_ms();
}

static bool drained(struct core *core, struct core_task *task, int64_t now)
{
    if (task->no_drain || now >= task->drain_deadline_ms)
        return true;
    for (int k = 0; k < task->n_targets; k++)
        if (targets_drained(core, &task->targets[k]) != 1)
            return false;
    return true;
}

static void stop_task_step(struct core *core, struct core_task *task, int64_t now)
{
    switch (task->last) {
    case TASK_PROVISIONING:
    case TASK_PENDING:
    case TASK_ACTIVATING:
        if (any_running(task))
            break;
        finish_task(core, task);
        return;
    case TASK_RUNNING: {
        bool any_registered = false;
        int64_t delay = 0;
        for (int k = 0; k < task->n_targets; k++) {
            struct task_target *t = &task->targets[k];
            any_registered |= t->registered;
            int64_t d = targets_deregistration_delay_ms(core, t->group);
            delay = d > delay ? d : delay;
        }
        if (any_registered)
            return; /* the service's pass deregisters it first */
        task->drain_deadline_ms = now + delay;
        task_set_status(task, TASK_DEACTIVATING);
    }
        /* fall through */
    case TASK_DEACTIVATING:
        if (!drained(core, task, now))
            return;
        break;
    default:
        break;
    }
    if (task->last < TASK_STOPPING) {
        int64_t timeout = 0;
        for (int i = 0; i < task->n_containers; i++)
            if (task->containers[i].stop_timeout_ms > timeout)
                timeout = task->containers[i].stop_timeout_ms;
        task->kill_at_ms = now + timeout;
        task_set_status(task, TASK_STOPPING);
        signal_all(task, SIGTERM);
    }
    if (any_running(task)) {
        if (now >= task->kill_at_ms)
            signal_all(task, SIGKILL);
        return;
    }
    finish_task(core, task);
}

/* Returns whether it started (or tried to start) the task's processes. */
static bool task_step(struct core *core, struct core_task *task, int64_t now, bool may_start)
{
    if (task->last == TASK_STOPPED)
        return false;
    if (task->desired == TASK_RUNNING) {
        if (task->last >= TASK_RUNNING || !may_start)
            return false;
        start_task(core, task);
        return task->placed;
    }
    stop_task_step(core, task, now);
    return false;
}

/* STOPPED tasks are forgotten after the retention time, their work directory with them. */
static void forget_stopped(struct core *core, int64_t now)
{
    int64_t keep = core->cfg->core.stopped_task_retention_ms;
    for (struct core_task **p = &core->tasks; *p;) {
        struct core_task *t = *p;
        if (t->last != TASK_STOPPED || now - t->stopped_at_ms < keep) {
            p = &t->next;
            continue;
        }
        *p = t->next;
        json_array_append_new(core->pending_deletes,
                              json_pack("[s+, s]", "gantry:ecs:tasks:", t->cluster, t->id));
        char cmd_dir[PATH_MAX + 64];
        snprintf(cmd_dir, sizeof cmd_dir, "%s/tasks/%s", core->run_dir, t->id);
        launch_remove_dir(cmd_dir);
        task_free(t);
    }
    for (struct core_service **p = &core->services; *p;) {
        struct core_service *s = *p;
        if (!s->inactive_at_ms || now - s->inactive_at_ms < keep) {
            p = &s->next;
            continue;
        }
        *p = s->next;
        json_array_append_new(core->pending_deletes,
                              json_pack("[s+, s]", "gantry:ecs:services:", s->cluster, s->name));
        json_array_append_new(core->pending_deletes,
                              json_pack("[s+++]", "gantry:ecs:events:", s->cluster, ":", s->name));
        service_free(s);
    }
}

void scheduler_reconcile(struct core *core)
{
    int64_t now = clock_wall_ms();
    store_check_epoch(core);
    launch_docker_poll(core);
    poll_adopted(core);
    if (!core->shutting_down)
        scheduled_run_due(core, now);
    for (struct core_service *s = core->services; s; s = s->next)
        reconcile_service(core, s);
    int starts = 0;
    int64_t budget_end = clock_mono_ms() + CORE_START_BUDGET_MS;
    bool may_start = true;
    for (struct core_task *t = core->tasks; t; t = t->next) {
        starts += task_step(core, t, now, may_start);
        may_start = starts < CORE_STARTS_PER_PASS && clock_mono_ms() < budget_end;
    }
    if (!may_start)
        core_kick(core); /* the rest after the loop has served what waits */
    /* a second service pass registers what just started and notices what just stopped */
    for (struct core_service *s = core->services; s; s = s->next) {
        if (s->inactive_at_ms)
            continue;
        sync_targets(core, s);
        if (s->active && !core->shutting_down)
            check_steady(core, s);
    }
    forget_stopped(core, now);
    if (store_flush(core) < 0 && !core->store_failed_logged) {
        log_warn("state store: %s (retrying every reconcile)", core->redis.error);
        core->store_failed_logged = true;
    } else if (!core->store_failed) {
        core->store_failed_logged = false;
    }
}

static void on_reconcile(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    scheduler_reconcile(w->data);
}

static void on_kick(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)revents;
    ev_idle_stop(loop, w);
    scheduler_reconcile(w->data);
}

void core_kick(struct core *core)
{
    if (core->scheduler_running) /* before scheduler_start(), its first pass does the work */
        ev_idle_start(core->loop, &core->kick);
}

void scheduler_start(struct core *core)
{
    double every = (double)core->cfg->core.reconcile_interval_ms / 1000.0;
    ev_timer_init(&core->reconcile_timer, on_reconcile, every, every);
    core->reconcile_timer.data = core;
    ev_timer_start(core->loop, &core->reconcile_timer);
    ev_idle_init(&core->kick, on_kick);
    core->kick.data = core;
    core->scheduler_running = true;
    core_kick(core);
}

void scheduler_stop(struct core *core)
{
    core->scheduler_running = false;
    ev_timer_stop(core->loop, &core->reconcile_timer);
    ev_idle_stop(core->loop, &core->kick);
}
