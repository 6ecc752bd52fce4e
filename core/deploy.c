#include "core/deploy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "core/targets.h"

/* ECS's circuit breaker threshold: half the desired count, within [3, 200]. */
enum { BREAKER_MIN = 3, BREAKER_MAX = 200 };

static bool of_service(const struct core_task *t, const struct core_service *svc)
{
    return strcmp(t->cluster, svc->cluster) == 0 && strcmp(t->service, svc->name) == 0;
}

const char *deploy_task_deployment(const struct core_task *t)
{
    return jstr(t->doc, "startedBy");
}

static json_t *deployments(const struct core_service *svc)
{
    return json_object_get(svc->doc, "deployments");
}

static json_t *primary(const struct core_service *svc)
{
    return json_array_get(deployments(svc), 0);
}

static bool in_deployment(const struct core_task *t, const json_t *dep)
{
    return strcmp(deploy_task_deployment(t), jstr(dep, "id")) == 0;
}

static json_t *deployment_of(const struct core_service *svc, const struct core_task *t)
{
    size_t i;
    json_t *dep;
    json_array_foreach(deployments(svc), i, dep)
    {
        if (in_deployment(t, dep))
            return dep;
    }
    return NULL;
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Values read back from Redis are bounded as the API bounds them: no damaged record can make the
 * percentages' arithmetic overflow. */
static int64_t desired_count(const struct core_service *svc)
{
    return svc->active
               ? clamp(json_integer_value(json_object_get(svc->doc, "desiredCount")), 0, 1000)
               : 0;
}

static int64_t config_int(const struct core_service *svc, const char *key, int64_t dflt, int64_t lo,
                          int64_t hi)
{
    json_t *v = json_object_get(json_object_get(svc->doc, "deploymentConfiguration"), key);
    return json_is_integer(v) ? clamp(json_integer_value(v), lo, hi) : dflt;
}

static bool breaker_flag(const struct core_service *svc, const char *key)
{
    json_t *cb = json_object_get(json_object_get(svc->doc, "deploymentConfiguration"),
                                 "deploymentCircuitBreaker");
    return json_is_true(json_object_get(cb, key));
}

/* Whether an essential container of the task definition has a healthCheck: then the task is
 * healthy only once the check says so. */
static bool has_essential_check(const json_t *td)
{
    size_t i;
    json_t *def;
    json_array_foreach(json_object_get(td, "containerDefinitions"), i, def)
    {
        struct health_params p; /* "NONE", or a command that cannot run: no check */
        if (!json_is_false(json_object_get(def, "essential")) && health_params_from(def, &p) == 0 &&
            p.enabled)
            return true;
    }
    return false;
}

bool deploy_task_healthy(const struct core_service *svc, const struct core_task *t)
{
    (void)svc;
    if (t->desired != TASK_RUNNING || t->last != TASK_RUNNING)
        return false;
    const char *health = jstr(t->doc, "healthStatus");
    if (strcmp(health, "UNHEALTHY") == 0 ||
        (has_essential_check(t->td) && strcmp(health, "HEALTHY") != 0))
        return false;
    for (int k = 0; k < t->n_targets; k++)
        if (!t->targets[k].registered || strcmp(t->targets[k].health, "healthy") != 0)
            return false;
    return true;
}

/* Known to be failing: not running (yet), a container UNHEALTHY, or a target the lb says is
 * unhealthy. A task whose health is merely unknown (no lb record yet, Redis unreadable) is
 * neither healthy nor this: it is kept. */
static bool task_unhealthy(const struct core_task *t)
{
    if (t->last != TASK_RUNNING || strcmp(jstr(t->doc, "healthStatus"), "UNHEALTHY") == 0)
        return true;
    for (int k = 0; k < t->n_targets; k++)
        if (strcmp(t->targets[k].health, "unhealthy") == 0)
            return true;
    return false;
}

/* --- gantry-lb's view of the targets --- */

static void read_group_health(struct core *core, struct core_service *svc, const char *group)
{
    redisReply *r = redis_sync_command(&core->redis, "HGETALL gantry:health:%s", group);
    if (!r) {
        svc->health_unknown = true; /* Redis unreachable: nothing is stopped on this view */
        return;
    }
    for (struct core_task *t = core->tasks; t; t = t->next) {
        if (!of_service(t, svc) || t->last == TASK_STOPPED)
            continue;
        double started_ms = json_number_value(json_object_get(t->doc, "startedAt")) * 1000;
        for (int k = 0; k < t->n_targets; k++) {
            struct task_target *tt = &t->targets[k];
            if (strcmp(tt->group, group) != 0)
                continue;
            tt->health[0] = '\0';
            for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
                if (!r->element[i]->str || strcmp(r->element[i]->str, tt->addr) != 0 ||
                    !r->element[i + 1]->str)
                    continue;
                json_t *v = json_loads(r->element[i + 1]->str, 0, NULL);
                int64_t since = (int64_t)json_number_value(json_object_get(v, "since"));
                /* a record older than the task is its address's previous holder's */
                if (since >= (int64_t)started_ms - 1000) {
                    snprintf(tt->health, sizeof tt->health, "%s", jstr(v, "state"));
                    tt->health_since_ms = since;
                }
                json_decref(v);
            }
        }
    }
    freeReplyObject(r);
}

static void replace_unhealthy(struct core *core, struct core_service *svc, int64_t now)
{
    int64_t grace_ms =
        json_integer_value(json_object_get(svc->doc, "healthCheckGracePeriodSeconds")) * 1000;
    for (struct core_task *t = core->tasks; t; t = t->next) {
        if (!of_service(t, svc) || t->desired != TASK_RUNNING || t->last != TASK_RUNNING)
            continue;
        double started_ms = json_number_value(json_object_get(t->doc, "startedAt")) * 1000;
        for (int k = 0; k < t->n_targets; k++) {
            struct task_target *tt = &t->targets[k];
            if (!tt->registered || strcmp(tt->health, "unhealthy") != 0 ||
                now - (int64_t)started_ms < grace_ms || now - tt->health_since_ms < grace_ms)
                continue;
            char reason[700];
            snprintf(reason, sizeof reason, "Task failed ELB health checks in (target-group %s)",
                     tt->group_arn);
            service_event(core, svc, "(task %s) failed ELB health checks in (target-group %s)",
                          t->id, tt->group_arn);
            task_request_stop(t, reason, "ServiceSchedulerInitiated");
            deploy_task_failed(core, svc, t, "failed ELB health checks");
            break;
        }
    }
}

void deploy_target_health(struct core *core, struct core_service *svc)
{
    size_t i;
    json_t *lb;
    char group[CORE_NAME_MAX];
    svc->health_unknown = false;
    json_array_foreach(json_object_get(svc->doc, "loadBalancers"), i, lb)
    {
        if (service_lb_group(jstr(lb, "targetGroupArn"), group, sizeof group) == 0)
            read_group_health(core, svc, group);
    }
    if (svc->active && !svc->health_unknown &&
        json_array_size(json_object_get(svc->doc, "loadBalancers")))
        replace_unhealthy(core, svc, clock_wall_ms());
}

/* --- scaling --- */

static void note_task(char *list, size_t size, int *count, const char *id)
{
    size_t used = strlen(list);
    if (used + CORE_ID_LEN + 10 < size)
        snprintf(list + used, size - used, "%s(task %s)", used ? " " : "", id);
    (*count)++;
}

static void stop(struct core_task *t, const char *deployment, struct pass_events *ev)
{
    char reason[200];
    snprintf(reason, sizeof reason, "Scaling activity initiated by (deployment %s)", deployment);
    task_request_stop(t, reason, "ServiceSchedulerInitiated");
    note_task(ev->stopped, sizeof ev->stopped, &ev->n_stopped, t->id);
}

/* The task of the primary to stop first when it has too many: one not yet running, else the
 * newest. */
static struct core_task *primary_victim(struct core *core, struct core_service *svc,
                                        const json_t *dep)
{
    struct core_task *best = NULL;
    double best_created = -1;
    for (struct core_task *t = core->tasks; t; t = t->next) {
        if (!of_service(t, svc) || t->desired != TASK_RUNNING || (dep && !in_deployment(t, dep)))
            continue;
        if (t->last < TASK_RUNNING)
            return t;
        double created = json_number_value(json_object_get(t->doc, "createdAt"));
        if (created > best_created) {
            best = t;
            best_created = created;
        }
    }
    return best;
}

struct census {
    int64_t primary;     /* tasks of the primary meant to run */
    int64_t older;       /* tasks of older deployments meant to run */
    int64_t alive;       /* every task of the service not STOPPED yet (draining ones too) */
    int64_t older_alive; /* older deployments' tasks not STOPPED yet */
    int64_t healthy;     /* tasks meant to run that are healthy */
};

static struct census count_tasks(struct core *core, struct core_service *svc, const json_t *dep)
{
    struct census c = {0};
    for (struct core_task *t = core->tasks; t; t = t->next) {
        if (!of_service(t, svc))
            continue;
        c.alive += t->last != TASK_STOPPED;
        c.older_alive += t->last != TASK_STOPPED && !(dep && in_deployment(t, dep));
        if (t->desired != TASK_RUNNING)
            continue;
        if (dep && in_deployment(t, dep))
            c.primary++;
        else
            c.older++;
        c.healthy += deploy_task_healthy(svc, t);
    }
    return c;
}

static void start_primary(struct core *core, struct core_service *svc, const json_t *dep,
                          int64_t count, struct pass_events *ev)
{
    if (count <= 0 || clock_wall_ms() < svc->next_start_ms)
        return; /* backing off: the timer's next passes come back to it */
    const char *launch_type = json_string_value(json_object_get(svc->doc, "launchType"));
    for (int64_t i = 0; i < count; i++) {
        struct core_task *t = task_create(core, svc->cluster, svc->td, svc->name, jstr(dep, "id"),
                                          NULL, NULL, launch_type ? launch_type : "PROCESS");
        if (!t)
            break;
        note_task(ev->started, sizeof ev->started, &ev->n_started, t->id);
    }
}

/* Older deployments' tasks: those not healthy go at once; healthy ones while the service keeps
 * minimumHealthyPercent of its desired count healthy. */
static void stop_older(struct core *core, struct core_service *svc, const json_t *dep,
                       int64_t budget, struct pass_events *ev)
{
    const char *id = jstr(dep, "id");
    for (int healthy_pass = 0; healthy_pass < 2; healthy_pass++) {
        for (struct core_task *t = core->tasks; t; t = t->next) {
            if (!of_service(t, svc) || t->desired != TASK_RUNNING || in_deployment(t, dep))
                continue;
            bool healthy = deploy_task_healthy(svc, t);
            if (healthy_pass == 0 ? !task_unhealthy(t) : !healthy)
                continue;
            if (healthy && budget <= 0)
                return;
            budget -= healthy;
            stop(t, id, ev);
        }
    }
}

/* Deployments other than the primary that have no task left are over (ECS drops them). */
static void drop_finished(struct core *core, struct core_service *svc)
{
    json_t *list = deployments(svc);
    for (size_t i = json_array_size(list); i-- > 1;) {
        json_t *dep = json_array_get(list, i);
        bool has_tasks = false;
        for (struct core_task *t = core->tasks; t && !has_tasks; t = t->next)
            has_tasks = of_service(t, svc) && t->last != TASK_STOPPED && in_deployment(t, dep);
        if (!has_tasks) {
            json_array_remove(list, i);
            svc->dirty = true;
        }
    }
}

void deploy_scale(struct core *core, struct core_service *svc, struct pass_events *ev)
{
    json_t *dep = primary(svc);
    int64_t want = desired_count(svc);
    struct census c = count_tasks(core, svc, dep);
    if (!svc->active || !dep) { /* deleted: everything goes */
        for (struct core_task *t; (t = primary_victim(core, svc, NULL));)
            stop(t, dep ? jstr(dep, "id") : "ecs-svc", ev);
        return;
    }
    bool failed = strcmp(jstr(dep, "rolloutState"), "FAILED") == 0;
    int64_t max_total = want * config_int(svc, "maximumPercent", 200, 100, 10000) / 100;
    int64_t min_healthy = (want * config_int(svc, "minimumHealthyPercent", 100, 0, 100) + 99) / 100;
    int64_t to_start = want - c.primary;
    /* while older tasks are still around (draining ones too), maximumPercent holds */
    if (c.older_alive > 0 && to_start > max_total - c.alive)
        to_start = max_total - c.alive;
    if (!failed)
        start_primary(core, svc, dep, to_start, ev);
    for (int64_t extra = c.primary - want; extra > 0; extra--) {
        struct core_task *t = primary_victim(core, svc, dep);
        if (!t)
            break;
        stop(t, jstr(dep, "id"), ev);
    }
    if (c.older > 0 && !svc->health_unknown)
        stop_older(core, svc, dep, c.healthy - min_healthy, ev);
    drop_finished(core, svc);
}

/* --- completion and the circuit breaker --- */

static void set_rollout(struct core_service *svc, json_t *dep, const char *state, const char *why)
{
    json_object_set_new(dep, "rolloutState", json_string(state));
    json_object_set_new(dep, "rolloutStateReason", json_string(why));
    json_object_set_new(dep, "updatedAt", json_real(core_now()));
    svc->dirty = true;
}

/* A primary task that counts toward completion: healthy, and, when nothing watches its health
 * (no load balancer, no health check), alive past the window in which a task that dies counts as
 * failing to start, so a revision that crashes a few seconds in never completes. */
static bool proven(const struct core_service *svc, const struct core_task *t, int64_t now)
{
    if (!deploy_task_healthy(svc, t))
        return false;
    if (t->n_targets > 0 || has_essential_check(t->td))
        return true;
    double started = json_number_value(json_object_get(t->doc, "startedAt"));
    return started > 0 && now - (int64_t)(started * 1000) >= TASK_FAILURE_WINDOW_MS;
}

void deploy_settled(struct core *core, struct core_service *svc)
{
    json_t *dep = primary(svc);
    if (!dep || strcmp(jstr(dep, "rolloutState"), "IN_PROGRESS") != 0)
        return;
    int64_t proven_tasks = 0, now = clock_wall_ms();
    for (struct core_task *t = core->tasks; t; t = t->next) {
        if (!of_service(t, svc) || t->last == TASK_STOPPED)
            continue;
        if (!in_deployment(t, dep))
            return; /* an older deployment still has tasks */
        proven_tasks += t->desired == TASK_RUNNING && proven(svc, t, now);
    }
    /* the service's first deployment completes at its first steady state, as before any rolling
     * update: there is nothing to roll back to */
    if (json_is_true(json_object_get(dep, "_rolling")) && proven_tasks < desired_count(svc))
        return;
    set_rollout(svc, dep, "COMPLETED", "ECS deployment completed.");
    while (json_array_size(deployments(svc)) > 1)
        json_array_remove(deployments(svc), 1);
    json_object_set_new(svc->doc, "_lastCompleted",
                        json_pack("{s:s, s:O}", "id", jstr(dep, "id"), "taskDefinition",
                                  json_object_get(dep, "taskDefinition")));
    service_event(core, svc, "(deployment %s) deployment completed.", jstr(dep, "id"));
}

static int64_t breaker_threshold(const struct core_service *svc)
{
    int64_t t = (desired_count(svc) + 1) / 2;
    return t < BREAKER_MIN ? BREAKER_MIN : t > BREAKER_MAX ? BREAKER_MAX : t;
}

/* dep (a new reference, stolen) becomes the PRIMARY deployment running td; the others are
 * ACTIVE from now on. */
static void make_primary(struct core_service *svc, json_t *dep, json_t *td)
{
    size_t i;
    json_t *d;
    json_array_foreach(deployments(svc), i, d)
    {
        json_object_set_new(d, "status", json_string("ACTIVE"));
    }
    json_array_insert_new(deployments(svc), 0, dep);
    json_decref(svc->td);
    svc->td = json_incref(td);
    json_object_set(svc->doc, "taskDefinition", json_object_get(td, "taskDefinitionArn"));
    svc->steady = false;
    svc->dirty = true;
}

static void roll_back(struct core *core, struct core_service *svc, json_t *failed)
{
    json_t *last = json_object_get(svc->doc, "_lastCompleted");
    struct api_error err;
    json_t *td = last ? taskdef_find(core, jstr(last, "taskDefinition"), &err) : NULL;
    if (!td) {
        service_event(core, svc,
                      "(deployment %s) cannot roll back: no deployment completed before it.",
                      jstr(failed, "id"));
        return;
    }
    const char *old_id = jstr(last, "id");
    json_t *dep = deploy_new_doc(td, desired_count(svc), jstr(svc->doc, "launchType"));
    char why[200];
    snprintf(why, sizeof why, "ECS deployment circuit breaker: rolling back to deploymentId %s.",
             old_id);
    json_object_set_new(dep, "rolloutStateReason", json_string(why));
    json_object_set_new(dep, "_rollback", json_true()); /* if it fails too, it stays FAILED */
    json_object_set_new(dep, "_rolling", json_true());
    /* the tasks still running the completed revision are the rollback's: none is replaced */
    for (struct core_task *t = core->tasks; t; t = t->next) {
        if (of_service(t, svc) && strcmp(deploy_task_deployment(t), old_id) == 0) {
            json_object_set(t->doc, "startedBy", json_object_get(dep, "id"));
            t->dirty = true;
        }
    }
    make_primary(svc, dep, td); /* the start throttle stays: a rollback that fails too backs off */
    service_event(core, svc, "(deployment %s) rolling back to deployment %s.", jstr(dep, "id"),
                  old_id);
}

void deploy_task_failed(struct core *core, struct core_service *svc, const struct core_task *t,
                        const char *what)
{
    json_t *dep = deployment_of(svc, t);
    if (!dep)
        return;
    json_object_set_new(dep, "failedTasks",
                        json_integer(json_integer_value(json_object_get(dep, "failedTasks")) + 1));
    svc->dirty = true;
    if (dep != primary(svc) || !breaker_flag(svc, "enable") ||
        strcmp(jstr(dep, "rolloutState"), "IN_PROGRESS") != 0 ||
        json_integer_value(json_object_get(dep, "failedTasks")) < breaker_threshold(svc))
        return;
    char why[200];
    snprintf(why, sizeof why, "ECS deployment circuit breaker: tasks %s.", what);
    set_rollout(svc, dep, "FAILED", why);
    service_event(core, svc, "(deployment %s) deployment failed: tasks %s.", jstr(dep, "id"), what);
    log_warn("service %s/%s: deployment %s FAILED after %lld failed tasks", svc->cluster, svc->name,
             jstr(dep, "id"), (long long)json_integer_value(json_object_get(dep, "failedTasks")));
    if (breaker_flag(svc, "rollback") && !json_is_true(json_object_get(dep, "_rollback")))
        roll_back(core, svc, dep);
}

/* --- documents --- */

json_t *deploy_new_doc(const json_t *td, int64_t desired, const char *launch_type)
{
    char id[CORE_ID_LEN + 1], dep_id[64];
    core_new_id(id);
    snprintf(dep_id, sizeof dep_id, "ecs-svc/%.19s", id);
    double now = core_now();
    return json_pack("{s:s, s:s, s:O, s:I, s:i, s:i, s:i, s:f, s:f, s:s, s:s, s:s}", "id", dep_id,
                     "status", "PRIMARY", "taskDefinition",
                     json_object_get(td, "taskDefinitionArn"), "desiredCount", (json_int_t)desired,
                     "pendingCount", 0, "runningCount", 0, "failedTasks", 0, "createdAt", now,
                     "updatedAt", now, "launchType", launch_type, "rolloutState", "IN_PROGRESS",
                     "rolloutStateReason", "ECS deployment in progress.");
}

void deploy_start(struct core *core, struct core_service *svc, json_t *td)
{
    json_t *dep = deploy_new_doc(td, desired_count(svc), jstr(svc->doc, "launchType"));
    json_object_set_new(dep, "_rolling", json_true()); /* completes once its tasks are proven */
    make_primary(svc, dep, td);
    svc->failures = 0;
    svc->next_start_ms = 0;
    svc->dirty = true;
    log_info("service %s/%s: deployment %s of %s", svc->cluster, svc->name, jstr(dep, "id"),
             jstr(td, "taskDefinitionArn"));
    core_kick(core);
}

void deploy_describe(struct core *core, const struct core_service *svc, json_t *out)
{
    json_object_del(out, "_lastCompleted");
    json_t *list = json_object_get(out, "deployments");
    size_t i;
    json_t *dep;
    json_array_foreach(list, i, dep)
    {
        json_object_del(dep, "_rollback");
        json_object_del(dep, "_rolling");
        int64_t running = 0, pending = 0, desired = 0;
        for (struct core_task *t = core->tasks; t; t = t->next) {
            if (!of_service(t, svc) || !in_deployment(t, dep))
                continue;
            running += t->last == TASK_RUNNING;
            pending += t->last < TASK_RUNNING;
            desired += t->desired == TASK_RUNNING;
        }
        json_object_set_new(dep, "runningCount", json_integer(running));
        json_object_set_new(dep, "pendingCount", json_integer(pending));
        json_object_set_new(dep, "desiredCount",
                            json_integer(i == 0 ? desired_count(svc) : desired));
    }
}
