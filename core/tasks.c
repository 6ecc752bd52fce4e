/* Tasks: the ECS Task document, its status changes, and RunTask / StopTask / ListTasks /
 * DescribeTasks. Starting and stopping processes is the scheduler's (scheduler.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "core/core.h"
#include "core/params.h"

static const char *const status_names[] = {
    [TASK_PROVISIONING] = "PROVISIONING",     [TASK_PENDING] = "PENDING",
    [TASK_ACTIVATING] = "ACTIVATING",         [TASK_RUNNING] = "RUNNING",
    [TASK_DEACTIVATING] = "DEACTIVATING",     [TASK_STOPPING] = "STOPPING",
    [TASK_DEPROVISIONING] = "DEPROVISIONING", [TASK_STOPPED] = "STOPPED",
};

const char *task_status_name(enum task_status s)
{
    return status_names[s];
}

static int status_from_name(const char *name)
{
    for (int i = 0; name && i <= TASK_STOPPED; i++)
        if (strcmp(name, status_names[i]) == 0)
            return i;
    return -1;
}

static void bump_version(struct core_task *task)
{
    json_int_t v = json_integer_value(json_object_get(task->doc, "version"));
    json_object_set_new(task->doc, "version", json_integer(v + 1));
    task->dirty = true;
}

void task_set_status(struct core_task *task, enum task_status s)
{
    if (task->last == s)
        return;
    log_debug("task %s: %s -> %s", task->id, status_names[task->last], status_names[s]);
    task->last = s;
    json_object_set_new(task->doc, "lastStatus", json_string(status_names[s]));
    json_t *containers = json_object_get(task->doc, "containers");
    size_t i;
    json_t *c;
    json_array_foreach(containers, i, c)
    {
        /* containers follow the task until they have a status of their own (they stopped) */
        const char *cs = json_string_value(json_object_get(c, "lastStatus"));
        if (!cs || strcmp(cs, "STOPPED") != 0)
            json_object_set_new(c, "lastStatus",
                                json_string(s >= TASK_STOPPED   ? "STOPPED"
                                            : s >= TASK_RUNNING ? "RUNNING"
                                                                : "PENDING"));
    }
    double now = core_now();
    if (s == TASK_RUNNING) {
        json_object_set_new(task->doc, "startedAt", json_real(now));
        json_object_set_new(task->doc, "connectivity", json_string("CONNECTED"));
        json_object_set_new(task->doc, "connectivityAt", json_real(now));
    }
    if (s == TASK_STOPPED) {
        json_object_set_new(task->doc, "stoppedAt", json_real(now));
        json_object_set_new(task->doc, "executionStoppedAt", json_real(now));
        json_object_set_new(task->doc, "connectivity", json_string("DISCONNECTED"));
    }
    bump_version(task);
}

void task_request_stop(struct core_task *task, const char *reason, const char *stop_code)
{
    if (task->desired == TASK_STOPPED)
        return;
    task->desired = TASK_STOPPED;
    json_object_set_new(task->doc, "desiredStatus", json_string("STOPPED"));
    json_object_set_new(task->doc, "stoppingAt", json_real(core_now()));
    if (reason && !json_object_get(task->doc, "stoppedReason"))
        json_object_set_new(task->doc, "stoppedReason", json_string(reason));
    if (stop_code && !json_object_get(task->doc, "stopCode"))
        json_object_set_new(task->doc, "stopCode", json_string(stop_code));
    bump_version(task);
    core_kick(task->core);
}

static json_t *container_doc(struct core *core, const char *task_arn, const json_t *def)
{
    char id[CORE_ID_LEN + 1], arn[700];
    core_new_id(id);
    const char *task_id = strrchr(task_arn, '/');
    core_arn(core, arn, sizeof arn, "container/%s", task_id ? task_id + 1 : id);
    size_t used = strlen(arn);
    snprintf(arn + used, sizeof arn - used, "/%s", id);
    json_t *c =
        json_pack("{s:s, s:s, s:O, s:O, s:s, s:[], s:s}", "containerArn", arn, "taskArn", task_arn,
                  "name", json_object_get(def, "name"), "image", json_object_get(def, "image"),
                  "lastStatus", "PENDING", "networkBindings", "healthStatus", "UNKNOWN");
    static const char *const copied[] = {"cpu", "memory", "memoryReservation", NULL};
    for (size_t i = 0; copied[i]; i++) {
        json_t *v = json_object_get(def, copied[i]);
        if (json_is_integer(v)) {
            char text[32];
            snprintf(text, sizeof text, "%lld", (long long)json_integer_value(v));
            json_object_set_new(c, copied[i], json_string(text));
        }
    }
    return c;
}

/* What the task definition says of the container named c->name: essential, stopTimeout. */
static void container_settings(const struct core *core, const json_t *td, struct task_container *c)
{
    c->essential = true;
    c->stop_timeout_ms = core->cfg->core.stop_timeout_ms;
    size_t i;
    json_t *def;
    json_array_foreach(json_object_get(td, "containerDefinitions"), i, def)
    {
        if (strcmp(jstr(def, "name"), c->name) != 0)
            continue;
        c->essential = !json_is_false(json_object_get(def, "essential"));
        json_t *stop = json_object_get(def, "stopTimeout");
        if (json_is_integer(stop))
            c->stop_timeout_ms = json_integer_value(stop) * 1000;
    }
}

struct core_task *task_create(struct core *core, const char *cluster, json_t *td,
                              const char *service, const char *started_by, const char *group,
                              const json_t *overrides, const char *launch_type)
{
    struct core_task *task = calloc(1, sizeof *task);
    if (!task)
        return NULL;
    task->core = core;
    core_new_id(task->id);
    snprintf(task->cluster, sizeof task->cluster, "%s", cluster);
    snprintf(task->service, sizeof task->service, "%s", service ? service : "");
    task->td = json_incref(td);
    taskdef_reservation(td, &task->cpu, &task->memory_mib);
    char task_arn[600], cluster_arn[600], group_text[300];
    core_arn(core, task_arn, sizeof task_arn, "task/%s/%s", cluster, task->id);
    core_arn(core, cluster_arn, sizeof cluster_arn, "cluster/%s", cluster);
    if (group)
        snprintf(group_text, sizeof group_text, "%s", group);
    else if (service)
        snprintf(group_text, sizeof group_text, "service:%s", service);
    else
        snprintf(group_text, sizeof group_text, "family:%s", jstr(td, "family"));
    char cpu[16], memory[16];
    snprintf(cpu, sizeof cpu, "%d", task->cpu);
    snprintf(memory, sizeof memory, "%d", task->memory_mib);
    task->doc = json_pack(
        "{s:s, s:s, s:O, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:f, s:s, s:s, s:[], s:[], s:[]}",
        "taskArn", task_arn, "clusterArn", cluster_arn, "taskDefinitionArn",
        json_object_get(td, "taskDefinitionArn"), "lastStatus", "PROVISIONING", "desiredStatus",
        "RUNNING", "launchType", launch_type, "cpu", cpu, "memory", memory, "group", group_text,
        "version", (json_int_t)1, "createdAt", core_now(), "healthStatus", "UNKNOWN",
        "availabilityZone", "local", "attachments", "tags", "containers");
    if (!task->doc) { /* out of memory, or text jansson refuses: no half-made task */
        json_decref(task->td);
        free(task);
        return NULL;
    }
    if (started_by)
        json_object_set_new(task->doc, "startedBy", json_string(started_by));
    json_object_set_new(task->doc, "overrides",
                        overrides ? json_deep_copy(overrides)
                                  : json_pack("{s:[], s:[]}", "containerOverrides",
                                              "inferenceAcceleratorOverrides"));
    json_t *containers = json_object_get(task->doc, "containers");
    json_t *defs = json_object_get(td, "containerDefinitions");
    size_t i;
    json_t *def;
    json_array_foreach(defs, i, def)
    {
        json_array_append_new(containers, container_doc(core, task_arn, def));
        struct task_container *c = &task->containers[task->n_containers++];
        snprintf(c->name, sizeof c->name, "%s", jstr(def, "name"));
        container_settings(core, td, c);
        c->pidfd = -1;
        c->task = task;
    }
    task->last = TASK_PROVISIONING;
    task->desired = TASK_RUNNING;
    task->dirty = true;
    task->next = core->tasks;
    core->tasks = task;
    return task;
}

void task_free(struct core_task *task)
{
    for (int i = 0; i < task->n_containers; i++) {
        struct task_container *c = &task->containers[i];
        if (c->watched)
            ev_child_stop(task->core->loop, &c->child);
        if (c->pidfd >= 0) {
            ev_io_stop(task->core->loop, &c->exit_io);
            close(c->pidfd);
        }
        health_stop(task->core, task, i);
    }
    json_decref(task->doc);
    json_decref(task->td);
    free(task);
}

json_t *task_describe(struct core_task *task)
{
    return json_deep_copy(task->doc);
}

struct core_task *task_find(struct core *core, const char *cluster, const char *id_or_arn)
{
    char id[CORE_NAME_MAX];
    if (!core_arn_name(id_or_arn, "task", id, sizeof id))
        return NULL;
    for (struct core_task *t = core->tasks; t; t = t->next)
        if (strcmp(t->id, id) == 0 && strcmp(t->cluster, cluster) == 0)
            return t;
    return NULL;
}

/* 32 lower-case hex digits, as core_new_id() makes them: an id is also a directory name under
 * run_dir/tasks, so a damaged record must never name "../..". */
static bool task_id_valid(const char *id)
{
    size_t n = strlen(id);
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return n == CORE_ID_LEN;
}

void task_load(struct core *core, const char *cluster, const char *id, json_t *record)
{
    json_t *doc = json_deep_copy(record);
    json_t *rt = json_incref(json_object_get(doc, "_gantry"));
    json_object_del(doc, "_gantry");
    struct api_error err;
    const char *td_arn = json_string_value(json_object_get(doc, "taskDefinitionArn"));
    json_t *td = td_arn ? taskdef_find(core, td_arn, &err) : NULL;
    int last = status_from_name(json_string_value(json_object_get(doc, "lastStatus")));
    if (!td || last < 0 || !task_id_valid(id)) {
        log_warn("state store: task %s of cluster %s is unreadable; forgotten", id, cluster);
        json_decref(doc);
        json_decref(rt);
        json_array_append_new(core->pending_deletes,
                              json_pack("[s+, s]", "gantry:ecs:tasks:", cluster, id));
        return;
    }
    struct core_task *task = calloc(1, sizeof *task);
    if (!task) {
        json_decref(doc);
        json_decref(rt);
        return;
    }
    task->core = core;
    snprintf(task->id, sizeof task->id, "%s", id);
    snprintf(task->cluster, sizeof task->cluster, "%s", cluster);
    snprintf(task->service, sizeof task->service, "%s", jstr(rt, "service"));
    task->doc = doc;
    task->td = json_incref(td);
    taskdef_reservation(td, &task->cpu, &task->memory_mib);
    task->last = (enum task_status)last;
    const char *desired = json_string_value(json_object_get(doc, "desiredStatus"));
    task->desired = desired && strcmp(desired, "STOPPED") == 0 ? TASK_STOPPED : TASK_RUNNING;
    json_t *procs = json_object_get(rt, "processes");
    size_t i;
    json_t *p;
    json_array_foreach(procs, i, p)
    {
        if (i >= TASKDEF_MAX_CONTAINERS)
            break;
        struct task_container *c = &task->containers[task->n_containers++];
        snprintf(c->name, sizeof c->name, "%s", jstr(p, "name"));
        c->pid = (pid_t)json_integer_value(json_object_get(p, "pid"));
        c->start_ticks = (uint64_t)json_integer_value(json_object_get(p, "startTicks"));
        c->running = json_is_true(json_object_get(p, "running"));
        snprintf(c->docker_id, sizeof c->docker_id, "%s", jstr(p, "dockerId"));
        container_settings(core, td, c);
        c->health.started_ms = json_integer_value(json_object_get(p, "startedMs"));
        c->pidfd = -1;
        c->task = task;
    }
    json_t *targets = json_object_get(rt, "targets");
    json_array_foreach(targets, i, p)
    {
        if (i >= CORE_MAX_TARGETS)
            break;
        struct task_target *t = &task->targets[task->n_targets++];
        snprintf(t->group, sizeof t->group, "%s", jstr(p, "group"));
        snprintf(t->group_arn, sizeof t->group_arn, "%s", jstr(p, "groupArn"));
        snprintf(t->addr, sizeof t->addr, "%s", jstr(p, "addr"));
        t->registered = json_is_true(json_object_get(p, "registered"));
    }
    json_t *ports = json_object_get(rt, "hostPorts");
    json_array_foreach(ports, i, p)
    {
        if ((size_t)task->n_ports < sizeof task->host_ports / sizeof task->host_ports[0])
            task->host_ports[task->n_ports++] = (int)json_integer_value(p);
    }
    task->placed = json_is_true(json_object_get(rt, "placed"));
    task->drain_deadline_ms = json_integer_value(json_object_get(rt, "drainDeadlineMs"));
    task->kill_at_ms = json_integer_value(json_object_get(rt, "killAtMs"));
    task->no_drain = json_is_true(json_object_get(rt, "noDrain"));
    if (task->last == TASK_STOPPED)
        task->stopped_at_ms =
            (int64_t)(json_number_value(json_object_get(doc, "stoppedAt")) * 1000);
    json_decref(rt);
    task->next = core->tasks;
    core->tasks = task;
}

/* --- actions --- */

/* A container override's command (strings) and environment ({name, value} strings, names
 * without '='), checked as RegisterTaskDefinition checks the definition's own. */
static int override_lists_valid(const json_t *co, size_t i, struct api_error *err)
{
    json_t *command = json_object_get(co, "command");
    json_t *env = json_object_get(co, "environment");
    if ((command && !json_is_array(command)) || (env && !json_is_array(env)))
        return api_fail(err, "SerializationException",
                        "overrides.containerOverrides[%zu]: command and environment must be lists",
                        i);
    size_t k;
    json_t *item;
    json_array_foreach(command, k, item)
    {
        if (!json_is_string(item) || strlen(json_string_value(item)) != json_string_length(item))
            return api_fail(err, "SerializationException",
                            "overrides.containerOverrides[%zu].command[%zu] must be a string", i,
                            k);
    }
    json_array_foreach(env, k, item)
    {
        const char *name = json_string_value(json_object_get(item, "name"));
        json_t *value = json_object_get(item, "value");
        if (!name || !*name || strchr(name, '=') || strlen(name) > 255 ||
            (value && !json_is_string(value)))
            return api_fail(err, "InvalidParameterException",
                            "overrides.containerOverrides[%zu].environment[%zu]: a name (no '=') "
                            "and a string value",
                            i, k);
    }
    return 0;
}

static int overrides_param(json_t *in, const json_t *td, json_t **overrides, struct api_error *err)
{
    *overrides = NULL;
    json_t *o = json_object_get(in, "overrides");
    if (!o || json_is_null(o))
        return 0;
    if (!json_is_object(o))
        return api_fail(err, "SerializationException", "'overrides' must be an object");
    json_t *list = json_object_get(o, "containerOverrides");
    if (list && !json_is_array(list))
        return api_fail(err, "SerializationException",
                        "'overrides.containerOverrides' must be a list");
    size_t i;
    json_t *co;
    json_array_foreach(list, i, co)
    {
        const char *name = json_string_value(json_object_get(co, "name"));
        if (!json_is_object(co) || !name)
            return api_fail(err, "InvalidParameterException",
                            "overrides.containerOverrides[%zu].name is required", i);
        bool found = false;
        size_t j;
        json_t *def;
        json_array_foreach(json_object_get(td, "containerDefinitions"), j, def)
        {
            found |= strcmp(jstr(def, "name"), name) == 0;
        }
        if (!found)
            return api_fail(err, "InvalidParameterException",
                            "Override for container named %.255s is not a container in the "
                            "TaskDefinition.",
                            name);
        if (override_lists_valid(co, i, err) < 0)
            return -1;
    }
    *overrides = json_deep_copy(o);
    if (!json_object_get(*overrides, "containerOverrides"))
        json_object_set_new(*overrides, "containerOverrides", json_array());
    if (!json_object_get(*overrides, "inferenceAcceleratorOverrides"))
        json_object_set_new(*overrides, "inferenceAcceleratorOverrides", json_array());
    return 0;
}

int launch_type_param(json_t *in, const json_t *td, const char **out, struct api_error *err)
{
    const char *lt;
    if (param_string(in, "launchType", false, &lt, err) < 0)
        return -1;
    if (!lt)
        lt = taskdef_default_launch_type(td); /* DOCKER for a FARGATE/EC2-only definition */
    if (strcmp(lt, "PROCESS") == 0 || strcmp(lt, "DOCKER") == 0) {
        *out = strcmp(lt, "PROCESS") == 0 ? "PROCESS" : "DOCKER";
        return 0;
    }
    if (strcmp(lt, "EC2") == 0 || strcmp(lt, "FARGATE") == 0 || strcmp(lt, "EXTERNAL") == 0)
        return api_fail(err, "InvalidParameterException",
                        "launchType %s: gantry-core runs tasks as processes (PROCESS) or Docker "
                        "containers (DOCKER)",
                        lt);
    return api_fail(err, "InvalidParameterException",
                    "launchType: '%.32s' is not one of PROCESS, DOCKER, EC2, FARGATE, EXTERNAL",
                    lt);
}

int act_run_task(struct core *core, json_t *in, json_t **out, struct api_error *err)
{
    const char *cluster_ref, *td_ref, *started_by, *group, *launch_type;
    int64_t count = 1;
    char cluster[CORE_NAME_MAX];
    if (param_string(in, "cluster", false, &cluster_ref, err) < 0 ||
        param_string(in, "taskDefinition", true, &td_ref, err) < 0 ||
        param_int(in, "count", false, 1, 10, &count, err) < 0 ||
        param_string(in, "startedBy", false, &started_by, err) < 0 ||
        param_string(in, "group", false, &group, err) < 0)
        return -1;
    if (started_by && strlen(started_by) > 128)
        return api_fail(err, "InvalidParameterException", "startedBy: at most 128 characters");
    if (group && strlen(group) > 255)
        return api_fail(err, "InvalidParameterException", "group: at most 255 characters");
    if (!cluster_find(core, cluster_ref, cluster, err))
        return -1;
    json_t *td = taskdef_find(core, td_ref, err);
    if (!td)
        return -1;
    if (!json_is_string(json_object_get(td, "status")) || strcmp(jstr(td, "status"), "ACTIVE") != 0)
        return api_fail(err, "ClientException", "TaskDefinition is inactive");
    json_t *overrides;
    if (launch_type_param(in, td, &launch_type, err) < 0 ||
        overrides_param(in, td, &overrides, err) < 0)
        return -1;
    json_t *tasks = json_array(), *failures = json_array();
    for (int64_t i = 0; i < count; i++) {
        struct core_task *task =
            task_create(core, cluster, td, NULL, started_by, group, overrides, launch_type);
        if (task)
            json_array_append_new(tasks, task_describe(task));
        else /* ECS accounts for every task asked for */
            json_array_append_new(failures, json_pack("{s:s, s:s}", "reason", "RESOURCE:MEMORY",
                                                      "detail", "gantry-core is out of memory"));
    }
    json_decref(overrides);
    *out = json_pack("{s:o, s:o}", "tasks", tasks, "failures", failures);
    return 0;
}

int act_stop_task(struct core *core, json_t *in, json_t **out, struct api_error *err)
{
    const char *cluster_ref, *task_ref, *reason;
    char cluster[CORE_NAME_MAX];
    if (param_string(in, "cluster", false, &cluster_ref, err) < 0 ||
        param_string(in, "task", true, &task_ref, err) < 0 ||
        param_string(in, "reason", false, &reason, err) < 0)
        return -1;
    if (reason && strlen(reason) > 255)
        return api_fail(err, "InvalidParameterException", "reason: at most 255 characters");
    if (!cluster_find(core, cluster_ref, cluster, err))
        return -1;
    struct core_task *task = task_find(core, cluster, task_ref);
    if (!task)
        return api_fail(err, "InvalidParameterException", "The referenced task was not found.");
    task_request_stop(task, reason ? reason : "Task stopped by user", "UserInitiated");
    *out = json_pack("{s:o}", "task", task_describe(task));
    return 0;
}

static bool task_matches(const struct core_task *t, const char *service, const char *family,
                         const char *started_by, const char *desired)
{
    if (service && strcmp(t->service, service) != 0)
        return false;
    if (family && strcmp(jstr(t->td, "family"), family) != 0)
        return false;
    const char *sb = json_string_value(json_object_get(t->doc, "startedBy"));
    if (started_by && (!sb || strcmp(sb, started_by) != 0))
        return false;
    /* ECS: desiredStatus RUNNING (the default) lists tasks meant to run, STOPPED the others;
     * PENDING is accepted and lists nothing ("no task has PENDING as its desired status"). */
    if (strcmp(desired, "STOPPED") == 0)
        return t->desired == TASK_STOPPED;
    if (strcmp(desired, "PENDING") == 0)
        return false;
    return t->desired == TASK_RUNNING;
}

static int compare_tasks(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

int act_list_tasks(struct core *core, json_t *in, json_t **out, struct api_error *err)
{
    const char *cluster_ref, *service_ref, *family, *started_by, *desired, *instance, *lt;
    char cluster[CORE_NAME_MAX], service[CORE_NAME_MAX];
    if (param_string(in, "cluster", false, &cluster_ref, err) < 0 ||
        param_string(in, "serviceName", false, &service_ref, err) < 0 ||
        param_string(in, "family", false, &family, err) < 0 ||
        param_string(in, "startedBy", false, &started_by, err) < 0 ||
        param_string(in, "desiredStatus", false, &desired, err) < 0 ||
        param_string(in, "containerInstance", false, &instance, err) < 0 ||
        param_string(in, "launchType", false, &lt, err) < 0)
        return -1;
    if (!cluster_find(core, cluster_ref, cluster, err))
        return -1;
    if (family && !taskdef_valid_name(family))
        return api_fail(err, "InvalidParameterException", "family must match ^[a-zA-Z0-9\\-_]+$");
    if (desired && strcmp(desired, "RUNNING") != 0 && strcmp(desired, "PENDING") != 0 &&
        strcmp(desired, "STOPPED") != 0)
        return api_fail(err, "InvalidParameterException",
                        "desiredStatus: expected RUNNING, PENDING or STOPPED");
    if (service_ref) {
        if (!core_arn_name(service_ref, "service", service, sizeof service))
            return api_fail(err, "InvalidParameterException", "'%.300s' is not a service ARN",
                            service_ref);
        if (!service_find(core, cluster, service))
            return api_fail(err, "ServiceNotFoundException", "Service not found.");
    }
    json_t *arns = json_array();
    for (struct core_task *t = core->tasks; t; t = t->next) {
        if (strcmp(t->cluster, cluster) != 0 ||
            !task_matches(t, service_ref ? service : NULL, family, started_by,
                          desired ? desired : "RUNNING"))
            continue;
        if (lt && strcmp(jstr(t->doc, "launchType"), lt) != 0)
            continue;
        if (instance && !strstr(instance_arn(core, cluster), instance))
            continue;
        json_array_append(arns, json_object_get(t->doc, "taskArn"));
    }
    /* a stable order for nextToken: by ARN */
    size_t n = json_array_size(arns);
    json_t **items = calloc(n ? n : 1, sizeof *items);
    for (size_t i = 0; items && i < n; i++)
        items[i] = json_array_get(arns, i);
    if (items)
        qsort(items, n, sizeof *items, compare_tasks);
    json_t *sorted = json_array();
    for (size_t i = 0; items && i < n; i++)
        json_array_append(sorted, items[i]);
    free(items);
    json_decref(arns);
    *out = json_object();
    int rc = paginate(in, sorted, 100, 100, "taskArns", *out, err);
    json_decref(sorted);
    return rc;
}

int act_describe_tasks(struct core *core, json_t *in, json_t **out, struct api_error *err)
{
    const char *cluster_ref;
    json_t *refs;
    char cluster[CORE_NAME_MAX];
    if (param_string(in, "cluster", false, &cluster_ref, err) < 0 ||
        param_strings(in, "tasks", true, 100, &refs, err) < 0)
        return -1;
    if (json_array_size(refs) == 0)
        return api_fail(err, "InvalidParameterException", "Tasks cannot be empty.");
    if (!cluster_find(core, cluster_ref, cluster, err))
        return -1;
    json_t *tasks = json_array(), *failures = json_array();
    *out = json_pack("{s:o, s:o}", "tasks", tasks, "failures", failures);
    size_t i;
    json_t *ref;
    json_array_foreach(refs, i, ref)
    {
        struct core_task *t = task_find(core, cluster, json_string_value(ref));
        if (t)
            json_array_append_new(tasks, task_describe(t));
        else
            json_array_append_new(failures,
                                  json_pack("{s:O, s:s}", "arn", ref, "reason", "MISSING"));
    }
    return 0;
}
