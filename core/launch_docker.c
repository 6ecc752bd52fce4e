/* The DOCKER launch type: a task's containers run in dockerd, through the Docker Engine API
 * (common/docker.h), on the host's network with the host ports launch_place() reserved.
 *
 * dockerd is the source of truth for what runs: every container carries labels naming its task
 * (gantry.task, gantry.cluster, gantry.service, gantry.container) and its owner (gantry.core: this
 * gantry-core's run directory, so two gantry-cores sharing one dockerd never touch each other's
 * containers). Each reconcile pass lists our containers once (launch_docker_poll) and reconciles
 * the tasks with what it sees: exits, health, containers gone, and containers no live task owns.
 * That listing is also how a restarted gantry-core finds its containers again: the task records
 * hold each container's id, and a container whose id no live task holds is removed.
 *
 * A daemon that cannot be reached changes nothing (it is not a task exit): starts fail with a
 * reason naming the socket, and the tasks keep their last known state until dockerd answers. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/docker.h"
#include "common/log.h"
#include "core/launch.h"

enum {
    LOGS_KEPT_BYTES = 1 << 20, /* the tail of a container's output saved when it is removed */
    LOGS_TAIL_LINES = 100000,
    NAME_MAX_LEN = 200,
};

#define LABEL_CORE "gantry.core"
#define LABEL_CLUSTER "gantry.cluster"
#define LABEL_SERVICE "gantry.service"
#define LABEL_TASK "gantry.task"
#define LABEL_TASK_ARN "gantry.task-arn"
#define LABEL_CONTAINER "gantry.container"
#define LABEL_TASKDEF "gantry.task-definition"
#define NS_PER_S INT64_C(1000000000)
#define MIB INT64_C(1048576)

/* The client for core.docker_socket, opened on first use (and again when a reload changed it);
 * NULL only when out of memory. */
static struct docker *client(struct core *core)
{
    const char *path = core->cfg->core.docker_socket;
    if (core->docker && strcmp(docker_socket_path(core->docker), path) != 0) {
        log_info("core.docker_socket is now %s", path);
        launch_docker_close(core);
    }
    if (!core->docker)
        core->docker = docker_open(path);
    return core->docker;
}

void launch_docker_close(struct core *core)
{
    docker_close(core->docker);
    core->docker = NULL;
}

static void owner_label(const struct core *core, char *out, size_t size)
{
    snprintf(out, size, LABEL_CORE "=%s", core->run_dir);
}

static int container_index(const struct core_task *task, const struct task_container *c)
{
    return (int)(c - task->containers);
}

static const json_t *container_def(const struct core_task *task, int index)
{
    return json_array_get(json_object_get(task->td, "containerDefinitions"), (size_t)index);
}

/* --- creating a container --- */

/* gantry-TASKID-NAME, in the characters dockerd accepts in a name. */
static void container_name(const struct core_task *task, const char *name, char *out, size_t size)
{
    char clean[NAME_MAX_LEN + 1];
    size_t n = 0;
    for (; name[n] && n < NAME_MAX_LEN; n++) {
        char ch = name[n];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
        clean[n] = ok ? ch : '_';
    }
    clean[n] = '\0';
    snprintf(out, size, "gantry-%s-%s", task->id, clean);
}

static json_t *labels_of(const struct core *core, const struct core_task *task, const json_t *def)
{
    /* the definition's dockerLabels first: ours, which the poll relies on, win */
    json_t *labels = json_is_object(json_object_get(def, "dockerLabels"))
                         ? json_deep_copy(json_object_get(def, "dockerLabels"))
                         : json_object();
    json_object_set_new(labels, LABEL_CORE, json_string(core->run_dir));
    json_object_set_new(labels, LABEL_CLUSTER, json_string(task->cluster));
    json_object_set_new(labels, LABEL_SERVICE, json_string(task->service));
    json_object_set_new(labels, LABEL_TASK, json_string(task->id));
    json_object_set_new(labels, LABEL_TASK_ARN, json_string(jstr(task->doc, "taskArn")));
    json_object_set_new(labels, LABEL_CONTAINER, json_string(jstr(def, "name")));
    json_object_set_new(labels, LABEL_TASKDEF, json_string(jstr(task->td, "taskDefinitionArn")));
    return labels;
}

/* ECS's healthCheck as dockerd's Healthcheck (durations in ns). Without one the image's own check
 * is turned off: ECS ignores it, and a health status nobody asked for would stop tasks. */
static json_t *healthcheck_of(const json_t *def)
{
    const json_t *hc = json_object_get(def, "healthCheck");
    if (!json_is_object(hc))
        return json_pack("{s:[s]}", "Test", "NONE");
    json_int_t interval = json_integer_value(json_object_get(hc, "interval"));
    json_int_t timeout = json_integer_value(json_object_get(hc, "timeout"));
    json_int_t retries = json_integer_value(json_object_get(hc, "retries"));
    json_int_t start = json_integer_value(json_object_get(hc, "startPeriod"));
    return json_pack("{s:O, s:I, s:I, s:I, s:I}", "Test", json_object_get(hc, "command"),
                     "Interval", (interval ? interval : 30) * NS_PER_S, "Timeout",
                     (timeout ? timeout : 5) * NS_PER_S, "StartPeriod", start * NS_PER_S, "Retries",
                     retries ? retries : 3);
}

/* Task-level cpu caps every container (NanoCpus); without it a container's own cpu does, and is
 * also its relative weight (CpuShares, ECS's meaning of a container's cpu). Memory: the
 * container's hard limit, else the task's; memoryReservation is the soft one. */
static json_t *host_config_of(const struct core_task *task, const json_t *def)
{
    json_t *host = json_pack("{s:s}", "NetworkMode", "host");
    int64_t task_cpu = atoll(jstr(task->td, "cpu"));
    int64_t cpu = json_integer_value(json_object_get(def, "cpu"));
    int64_t units = task_cpu ? task_cpu : cpu;
    if (units > 0)
        json_object_set_new(host, "NanoCpus", json_integer(units * NS_PER_S / 1024));
    if (cpu >= 2) /* dockerd's smallest weight */
        json_object_set_new(host, "CpuShares", json_integer(cpu));
    int64_t memory = json_integer_value(json_object_get(def, "memory"));
    if (!memory)
        memory = atoll(jstr(task->td, "memory"));
    int64_t soft = json_integer_value(json_object_get(def, "memoryReservation"));
    if (memory > 0)
        json_object_set_new(host, "Memory", json_integer(memory * MIB));
    if (soft > 0 && (memory <= 0 || soft < memory))
        json_object_set_new(host, "MemoryReservation", json_integer(soft * MIB));
    /* logConfiguration as given; else json-file, bounded, so that the logs can be read back */
    const json_t *lc = json_object_get(def, "logConfiguration");
    json_t *options = json_object_get(lc, "options");
    json_t *log = json_is_object(lc)
                      ? json_pack("{s:s, s:o}", "Type", jstr(lc, "logDriver"), "Config",
                                  options ? json_deep_copy(options) : json_object())
                      : json_pack("{s:s, s:{s:s, s:s}}", "Type", "json-file", "Config", "max-size",
                                  "10m", "max-file", "2");
    json_object_set_new(host, "LogConfig", log);
    return host;
}

/* entryPoint and command (RunTask's override replaces command); with neither the image's own. */
static void set_command(json_t *cfg, const struct core_task *task, const json_t *def)
{
    const json_t *co = launch_container_override(task, jstr(def, "name"));
    const json_t *command = co && json_object_get(co, "command") ? json_object_get(co, "command")
                                                                 : json_object_get(def, "command");
    if (json_is_array(json_object_get(def, "entryPoint")))
        json_object_set(cfg, "Entrypoint", json_object_get(def, "entryPoint"));
    if (json_is_array(command))
        json_object_set(cfg, "Cmd", (json_t *)command);
}

/* The body of POST /containers/create for container `index`, or NULL with why. */
static json_t *create_body(struct core *core, struct core_task *task, int index, int first_port,
                           char *why, size_t size)
{
    const json_t *def = container_def(task, index);
    struct launch_strings env = {0};
    if (launch_build_env(core, task, def, first_port, true, &env) < 0) {
        launch_strings_free(&env);
        snprintf(why, size, "container %s: the environment is too large", jstr(def, "name"));
        return NULL;
    }
    json_t *env_list = json_array();
    for (int i = 0; i < env.n; i++)
        json_array_append_new(env_list, json_string(env.items[i]));
    launch_strings_free(&env);
    int64_t stop_s = (task->containers[index].stop_timeout_ms + 999) / 1000;
    json_t *cfg =
        json_pack("{s:s, s:o, s:o, s:o, s:o, s:I}", "Image", jstr(def, "image"), "Env", env_list,
                  "Labels", labels_of(core, task, def), "Healthcheck", healthcheck_of(def),
                  "HostConfig", host_config_of(task, def), "StopTimeout", (json_int_t)stop_s);
    if (!cfg) {
        snprintf(why, size, "container %s: out of memory (or text that is not UTF-8)",
                 jstr(def, "name"));
        return NULL;
    }
    set_command(cfg, task, def);
    if (json_string_value(json_object_get(def, "workingDirectory")))
        json_object_set(cfg, "WorkingDir", json_object_get(def, "workingDirectory"));
    if (json_string_value(json_object_get(def, "user")))
        json_object_set(cfg, "User", json_object_get(def, "user"));
    return cfg;
}

static void create_failed(struct docker *d, int rc, const json_t *def, char *why, size_t size)
{
    if (rc == DOCKER_UNREACHABLE) /* "cannot reach dockerd at SOCKET: ..." */
        snprintf(why, size, "%s", docker_error(d));
    else if (rc == DOCKER_NOT_FOUND)
        snprintf(why, size,
                 "CannotPullContainerError: no such image %s in dockerd at %s (gantry-core does "
                 "not pull images: docker pull or docker import it first)",
                 jstr(def, "image"), docker_socket_path(d));
    else
        snprintf(why, size, "CannotCreateContainerError: container %s: %s", jstr(def, "name"),
                 docker_error(d));
}

static int create_container(struct core *core, struct docker *d, struct core_task *task, int index,
                            int first_port, char *why, size_t size)
{
    json_t *cfg = create_body(core, task, index, first_port, why, size);
    if (!cfg)
        return -1;
    struct task_container *c = &task->containers[index];
    char name[NAME_MAX_LEN + CORE_ID_LEN + 16];
    container_name(task, c->name, name, sizeof name);
    int rc = docker_create(d, name, cfg, c->docker_id);
    if (rc == DOCKER_CONFLICT) {
        /* a container of an earlier attempt at this task (created, never recorded): it goes */
        log_warn("task %s: container %s exists already; replaced", task->id, name);
        docker_remove(d, name, true);
        rc = docker_create(d, name, cfg, c->docker_id);
    }
    json_decref(cfg);
    if (rc != DOCKER_OK) {
        c->docker_id[0] = '\0';
        create_failed(d, rc, container_def(task, index), why, size);
        return -1;
    }
    return 0;
}

/* After a failed start: nothing of the task is left in dockerd (as far as it answers). */
static void remove_created(struct docker *d, struct core_task *task)
{
    for (int i = 0; i < task->n_containers; i++) {
        struct task_container *c = &task->containers[i];
        if (c->docker_id[0] && docker_remove(d, c->docker_id, true) == DOCKER_UNREACHABLE)
            log_warn("task %s: container %.12s stays in dockerd until it answers", task->id,
                     c->docker_id);
        c->docker_id[0] = '\0';
        c->running = false;
        c->pid = 0;
    }
}

/* Reads the container's pid. A container that already exited is still "running" here: the next
 * poll reads its exit code, so a container that exits at once ends as any other. */
static void note_started(struct docker *d, struct task_container *c)
{
    json_t *info = NULL;
    c->pid = 0;
    if (docker_inspect(d, c->docker_id, &info) == DOCKER_OK)
        c->pid = (pid_t)json_integer_value(json_object_get(json_object_get(info, "State"), "Pid"));
    json_decref(info);
    c->start_ticks = 0;
    c->running = true;
}

int launch_docker_start(struct core *core, struct core_task *task, char *why, size_t size)
{
    struct docker *d = client(core);
    if (!d) {
        snprintf(why, size, "out of memory");
        return -1;
    }
    int first_port = 0;
    for (int i = 0; i < task->n_containers; i++)
        task->containers[i].docker_id[0] = '\0';
    for (int i = 0; i < task->n_containers; i++) {
        size_t n_ports = json_array_size(json_object_get(container_def(task, i), "portMappings"));
        if (create_container(core, d, task, i, n_ports ? first_port : -1, why, size) < 0) {
            remove_created(d, task);
            return -1;
        }
        first_port += (int)n_ports;
    }
    for (int i = 0; i < task->n_containers; i++) {
        struct task_container *c = &task->containers[i];
        int rc = docker_start(d, c->docker_id);
        if (rc != DOCKER_OK) {
            if (rc == DOCKER_UNREACHABLE)
                snprintf(why, size, "%s", docker_error(d));
            else
                snprintf(why, size, "CannotStartContainerError: container %s: %s", c->name,
                         docker_error(d));
            remove_created(d, task);
            return -1;
        }
    }
    for (int i = 0; i < task->n_containers; i++)
        note_started(d, &task->containers[i]);
    return 0;
}

void launch_docker_signal(struct core *core, struct core_task *task, struct task_container *c,
                          int sig)
{
    struct docker *d = client(core);
    if (!d || !c->docker_id[0])
        return;
    int rc = docker_kill(d, c->docker_id, sig);
    /* not running (409) or gone (404): the next poll reports the exit; unreachable: logged */
    if (rc == DOCKER_FAILED)
        log_warn("task %s: container %s: signal %d not sent: %s", task->id, c->name, sig,
                 docker_error(d));
}

/* --- logs and removal --- */

static int make_dir(const char *path)
{
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* The container's last output into run_dir/tasks/ID/NAME.log, where `gantry logs` reads it. */
static void save_logs(struct core *core, struct docker *d, const struct core_task *task,
                      const struct task_container *c)
{
    char *text = NULL;
    size_t len = 0;
    int rc = docker_logs(d, c->docker_id, false, LOGS_TAIL_LINES, LOGS_KEPT_BYTES, &text, &len);
    if (rc != DOCKER_OK) {
        if (rc != DOCKER_NOT_FOUND) /* gone: removed behind our back, nothing to save */
            log_warn("task %s: container %s: logs not saved: %s", task->id, c->name,
                     docker_error(d));
        return;
    }
    char dir[PATH_MAX + CORE_ID_LEN + 16], path[sizeof dir + CORE_NAME_MAX + 8];
    snprintf(dir, sizeof dir, "%s/tasks", core->run_dir);
    int ok = make_dir(core->run_dir) == 0 && make_dir(dir) == 0;
    snprintf(dir, sizeof dir, "%s/tasks/%s", core->run_dir, task->id);
    snprintf(path, sizeof path, "%s/%s.log", dir, c->name);
    int fd =
        ok && make_dir(dir) == 0 ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
    size_t done = 0;
    while (fd >= 0 && done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    if (fd < 0 || done < len)
        log_warn("task %s: container %s: cannot write %s: %s", task->id, c->name, path,
                 strerror(errno));
    if (fd >= 0)
        close(fd);
    free(text);
}

static void remove_container(struct docker *d, const struct core_task *task,
                             const struct task_container *c)
{
    int rc = docker_remove(d, c->docker_id, true);
    if (rc != DOCKER_OK && rc != DOCKER_NOT_FOUND && rc != DOCKER_UNREACHABLE)
        log_warn("task %s: container %s: not removed: %s", task->id, c->name, docker_error(d));
    /* unreachable: the poll removes it once dockerd answers (its task is STOPPED by then) */
}

void launch_docker_done(struct core *core, struct core_task *task)
{
    struct docker *d = client(core);
    for (int i = 0; d && i < task->n_containers; i++) {
        struct task_container *c = &task->containers[i];
        if (!c->docker_id[0])
            continue;
        save_logs(core, d, task, c);
        remove_container(d, task, c);
    }
}

/* --- the poll --- */

static bool any_live_docker_task(const struct core *core)
{
    for (const struct core_task *t = core->tasks; t; t = t->next)
        if (t->last != TASK_STOPPED && launch_is_docker(t))
            return true;
    return false;
}

static struct task_container *container_named(struct core_task *task, const char *name)
{
    for (int i = 0; task && i < task->n_containers; i++)
        if (strcmp(task->containers[i].name, name) == 0)
            return &task->containers[i];
    return NULL;
}

/* A container that stopped: its exit code (and why, when dockerd says) to the scheduler. */
static void report_exit(struct docker *d, struct core_task *task, struct task_container *c)
{
    json_t *info = NULL;
    int rc = docker_inspect(d, c->docker_id, &info);
    if (rc == DOCKER_UNREACHABLE)
        return; /* the next poll asks again */
    if (rc != DOCKER_OK) {
        json_decref(info);
        scheduler_container_exited(task, c, -1, "the container is gone from dockerd");
        return;
    }
    const json_t *state = json_object_get(info, "State");
    int code = (int)json_integer_value(json_object_get(state, "ExitCode"));
    const char *error = jstr(state, "Error");
    const char *reason = json_is_true(json_object_get(state, "OOMKilled"))
                             ? "OutOfMemoryError: Container killed due to memory usage"
                         : error[0] ? error
                                    : NULL;
    scheduler_container_exited(task, c, code, reason);
    json_decref(info);
}

/* The health status in a listing's Status ("Up 5 seconds (healthy)"), or -1 when it has none. */
static int health_in_status(const char *status)
{
    if (strstr(status, "(unhealthy)"))
        return HEALTH_UNHEALTHY;
    if (strstr(status, "(healthy)"))
        return HEALTH_HEALTHY;
    if (strstr(status, "(health: starting)"))
        return HEALTH_UNKNOWN;
    return -1;
}

static void note_health(struct core_task *task, struct task_container *c, const char *status)
{
    if (task->desired != TASK_RUNNING)
        return; /* stopping: its last verdict stands (dockerd keeps probing meanwhile) */
    int index = container_index(task, c);
    int health = health_in_status(status);
    if (health < 0 || !json_is_object(json_object_get(container_def(task, index), "healthCheck")))
        return;
    if ((enum health_status)health != c->health.status)
        health_report(task, index, (enum health_status)health);
}

/* A container with our labels that no live task owns: its task is unknown (forgotten, or of a
 * record that was lost), STOPPED (its removal failed then), or holds another container. */
static void remove_orphan(struct core *core, struct docker *d, struct core_task *task,
                          struct task_container *c, const json_t *summary)
{
    const char *id = jstr(summary, "Id");
    const json_t *labels = json_object_get(summary, "Labels");
    const char *why = !task                        ? "its task is unknown"
                      : task->last == TASK_STOPPED ? "its task is STOPPED"
                      : !c                         ? "its task has no such container"
                                                   : "its task runs another container";
    log_info("removing container %.12s (task %s, container %s): %s", id, jstr(labels, LABEL_TASK),
             jstr(labels, LABEL_CONTAINER), why);
    if (task && c && task->last == TASK_STOPPED && strcmp(c->docker_id, id) == 0)
        save_logs(core, d, task, c);
    if (docker_remove(d, id, true) == DOCKER_FAILED)
        log_warn("container %.12s not removed: %s", id, docker_error(d));
}

/* One container of the listing: ours to watch, to adopt, or to remove. */
static void poll_one(struct core *core, struct docker *d, const json_t *summary)
{
    const json_t *labels = json_object_get(summary, "Labels");
    const char *id = jstr(summary, "Id");
    struct core_task *task = task_find(core, jstr(labels, LABEL_CLUSTER), jstr(labels, LABEL_TASK));
    struct task_container *c = container_named(task, jstr(labels, LABEL_CONTAINER));
    bool live = task && task->last != TASK_STOPPED && launch_is_docker(task) && c;
    if (live && !c->docker_id[0] && task->last >= TASK_RUNNING) {
        /* a running task whose record lost the id: found again by its labels */
        snprintf(c->docker_id, sizeof c->docker_id, "%s", id);
        task->dirty = true;
        log_info("task %s: container %s found again in dockerd (%.12s)", task->id, c->name, id);
    }
    if (!live || strcmp(c->docker_id, id) != 0) {
        remove_orphan(core, d, task, c, summary);
        return;
    }
    if (!c->running)
        return; /* its exit is known; it goes when the task is done */
    const char *state = jstr(summary, "State");
    if (strcmp(state, "running") == 0 || strcmp(state, "paused") == 0 ||
        strcmp(state, "restarting") == 0)
        note_health(task, c, jstr(summary, "Status"));
    else
        report_exit(d, task, c);
}

static bool listed(const json_t *list, const char *id)
{
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        if (strcmp(jstr(s, "Id"), id) == 0)
            return true;
    }
    return false;
}

/* Containers a live task runs that dockerd no longer has (removed behind our back). */
static void notice_gone(struct core *core, const json_t *list)
{
    for (struct core_task *t = core->tasks; t; t = t->next) {
        if (t->last == TASK_STOPPED || !launch_is_docker(t))
            continue;
        for (int i = 0; i < t->n_containers; i++) {
            struct task_container *c = &t->containers[i];
            if (c->running && c->docker_id[0] && !listed(list, c->docker_id))
                scheduler_container_exited(t, c, -1, "the container is gone from dockerd");
        }
    }
}

void launch_docker_poll(struct core *core)
{
    bool live = any_live_docker_task(core);
    /* with no DOCKER task, dockerd is asked once after start (a container a killed core created
     * but never recorded is removed), then not again */
    if (!live && !core->docker &&
        (core->docker_swept || access(core->cfg->core.docker_socket, F_OK) != 0))
        return;
    struct docker *d = client(core);
    if (!d)
        return;
    char label[PATH_MAX + 32];
    owner_label(core, label, sizeof label);
    json_t *list = NULL;
    int rc = docker_list(d, label, &list);
    core->docker_swept = true;
    if (rc != DOCKER_OK) {
        if (rc != DOCKER_UNREACHABLE) /* unreachable: the client logs it once */
            log_warn("DOCKER tasks: %s", docker_error(d));
        return;
    }
    size_t i;
    json_t *summary;
    json_array_foreach(list, i, summary)
    {
        poll_one(core, d, summary);
    }
    notice_gone(core, list);
    /* nothing of ours left to watch: the client goes until a DOCKER task needs it again */
    if (!live && json_array_size(list) == 0)
        launch_docker_close(core);
    json_decref(list);
}
