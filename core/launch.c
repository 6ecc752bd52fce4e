#include "core/launch.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

enum { MAX_ENV = LAUNCH_MAX_STRINGS };

static bool port_used(const struct core *core, int port)
{
    return core->ports_used[port / 8] & (1u << (port % 8));
}

static void port_mark(struct core *core, int port, bool used)
{
    if (used)
        core->ports_used[port / 8] |= (unsigned char)(1u << (port % 8));
    else
        core->ports_used[port / 8] &= (unsigned char)~(1u << (port % 8));
}

/* Whether something outside Gantry already listens on the port (a process that is not a task). */
static bool port_free_on_host(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return true;
    int one = 1; /* a port in TIME_WAIT is free for a listener: only a real one blocks it */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool free_port = bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
    close(fd);
    return free_port;
}

/* The next free port of the range after the last one given, so a port just released (whose
 * target the lb may still be draining) is not handed out again at once. */
static int allocate_port(struct core *core)
{
    int lo = (int)core->cfg->core.host_port_min, hi = (int)core->cfg->core.host_port_max;
    int span = hi - lo + 1;
    static_assert(sizeof core->ports_used * 8 == 65536, "one bit per port");
    for (int i = 0; i < span; i++) {
        int port = lo + (core->next_port_offset + i) % span;
        if (port_used(core, port) || !port_free_on_host(port))
            continue;
        core->next_port_offset = (port - lo + 1) % span;
        return port;
    }
    return -1;
}

static int reserve_ports(struct core *core, struct core_task *task)
{
    task->n_ports = 0;
    size_t i, j;
    json_t *def, *pm;
    json_array_foreach(json_object_get(task->td, "containerDefinitions"), i, def)
    {
        json_array_foreach(json_object_get(def, "portMappings"), j, pm)
        {
            int port = (int)json_integer_value(json_object_get(pm, "hostPort"));
            if (port && (port_used(core, port) || !port_free_on_host(port)))
                port = -1;
            else if (!port)
                port = allocate_port(core);
            if (port < 0 ||
                (size_t)task->n_ports >= sizeof task->host_ports / sizeof task->host_ports[0]) {
                for (int k = 0; k < task->n_ports; k++)
                    port_mark(core, task->host_ports[k], false);
                task->n_ports = 0;
                return -1;
            }
            port_mark(core, port, true);
            task->host_ports[task->n_ports++] = port;
        }
    }
    return 0;
}

int launch_place(struct core *core, struct core_task *task, char *resource, size_t size)
{
    if (task->placed)
        return 0;
    if (core->used_memory_mib + task->memory_mib > core->instance_memory_mib) {
        snprintf(resource, size, "MEMORY");
        return -1;
    }
    if (core->used_cpu + task->cpu > core->instance_cpu) {
        snprintf(resource, size, "CPU");
        return -1;
    }
    if (reserve_ports(core, task) < 0) {
        snprintf(resource, size, "PORTS");
        return -1;
    }
    core->used_cpu += task->cpu;
    core->used_memory_mib += task->memory_mib;
    task->placed = true;
    json_object_set_new(task->doc, "containerInstanceArn",
                        json_string(instance_arn(core, task->cluster)));
    task->dirty = true;
    return 0;
}

void launch_account(struct core *core, struct core_task *task)
{
    if (!task->placed)
        return;
    core->used_cpu += task->cpu;
    core->used_memory_mib += task->memory_mib;
    for (int i = 0; i < task->n_ports; i++)
        if (task->host_ports[i] > 0 && task->host_ports[i] < 65536)
            port_mark(core, task->host_ports[i], true);
}

void launch_release(struct core *core, struct core_task *task)
{
    if (!task->placed)
        return;
    core->used_cpu -= task->cpu;
    core->used_memory_mib -= task->memory_mib;
    for (int i = 0; i < task->n_ports; i++)
        port_mark(core, task->host_ports[i], false);
    task->placed = false;
    task->dirty = true;
}

/* --- command lines and environments --- */

static int strings_add(struct launch_strings *s, char *text)
{
    if (!text || s->n >= MAX_ENV)
        return -1;
    s->items[s->n++] = text;
    s->items[s->n] = NULL;
    return 0;
}

void launch_strings_free(struct launch_strings *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->items[i]);
    s->n = 0;
}

static char *join(const char *a, const char *sep, const char *b)
{
    char *out = NULL;
    return asprintf(&out, "%s%s%s", a, sep, b) < 0 ? NULL : out;
}

const json_t *launch_container_override(const struct core_task *task, const char *name)
{
    size_t i;
    json_t *co;
    json_array_foreach(
        json_object_get(json_object_get(task->doc, "overrides"), "containerOverrides"), i, co)
    {
        if (strcmp(jstr(co, "name"), name) == 0)
            return co;
    }
    return NULL;
}

/* Sets NAME=VALUE, replacing an earlier NAME (the task definition overrides Gantry's defaults,
 * RunTask's overrides override the task definition). */
static int env_set(struct launch_strings *env, const char *name, const char *value)
{
    size_t len = strlen(name);
    char *text = join(name, "=", value);
    if (!text)
        return -1;
    for (int i = 0; i < env->n; i++) {
        if (strncmp(env->items[i], name, len) == 0 && env->items[i][len] == '=') {
            free(env->items[i]);
            env->items[i] = text;
            return 0;
        }
    }
    if (strings_add(env, text) < 0) {
        free(text);
        return -1;
    }
    return 0;
}

static int env_from_list(struct launch_strings *env, const json_t *list)
{
    size_t i;
    json_t *kv;
    json_array_foreach(list, i, kv)
    {
        const char *name = json_string_value(json_object_get(kv, "name"));
        const char *value = json_string_value(json_object_get(kv, "value"));
        if (name && env_set(env, name, value ? value : "") < 0)
            return -1;
    }
    return 0;
}

int launch_build_env(struct core *core, struct core_task *task, const json_t *def, int first_port,
                     bool for_docker, struct launch_strings *env)
{
    const char *path = getenv("PATH"), *home = getenv("HOME");
    char port_text[16];
    int rc = 0;
    if (!for_docker) { /* a container image brings its own */
        rc |= env_set(env, "PATH", path ? path : "/usr/local/bin:/usr/bin:/bin");
        rc |= env_set(env, "HOME", home ? home : "/");
    }
    rc |= env_set(env, "HOST", "127.0.0.1");
    rc |= env_set(env, "GANTRY_CLUSTER", task->cluster);
    rc |= env_set(env, "GANTRY_TASK_ID", task->id);
    rc |= env_set(env, "GANTRY_TASK_ARN", jstr(task->doc, "taskArn"));
    rc |= env_set(env, "GANTRY_CONTAINER_NAME", jstr(def, "name"));
    if (first_port >= 0) {
        snprintf(port_text, sizeof port_text, "%d", task->host_ports[first_port]);
        rc |= env_set(env, "PORT", port_text);
    }
    size_t i;
    json_t *pm;
    int k = first_port;
    json_array_foreach(json_object_get(def, "portMappings"), i, pm)
    {
        char name[32];
        snprintf(name, sizeof name, "PORT_%lld",
                 (long long)json_integer_value(json_object_get(pm, "containerPort")));
        snprintf(port_text, sizeof port_text, "%d", task->host_ports[k++]);
        rc |= env_set(env, name, port_text);
    }
    (void)core;
    rc |= env_from_list(env, json_object_get(def, "environment"));
    const json_t *co = launch_container_override(task, jstr(def, "name"));
    if (co)
        rc |= env_from_list(env, json_object_get(co, "environment"));
    return rc ? -1 : 0;
}

/* A relative program path with a '/' is taken from gantry-core's directory, not the task's work
 * directory, so `bin/gantry-demo-app` in a task definition means what it says in the repo. */
static char *program_path(struct core *core, const char *arg0)
{
    if (arg0[0] != '/' && strchr(arg0, '/'))
        return join(core->cwd, "/", arg0);
    return strdup(arg0);
}

static int append_args(struct core *core, struct launch_strings *argv, const json_t *list)
{
    size_t i;
    json_t *arg;
    json_array_foreach(list, i, arg)
    {
        const char *text = json_string_value(arg);
        char *copy = argv->n == 0 ? program_path(core, text) : strdup(text);
        if (strings_add(argv, copy) < 0) {
            free(copy);
            return -1;
        }
    }
    return 0;
}

/* entryPoint + command (RunTask's override replaces command); with neither, the image names the
 * program. */
static int build_argv(struct core *core, struct core_task *task, const json_t *def,
                      struct launch_strings *argv)
{
    const json_t *co = launch_container_override(task, jstr(def, "name"));
    const json_t *command = co && json_object_get(co, "command") ? json_object_get(co, "command")
                                                                 : json_object_get(def, "command");
    if (append_args(core, argv, json_object_get(def, "entryPoint")) < 0 ||
        append_args(core, argv, command) < 0)
        return -1;
    if (argv->n == 0) {
        char *program = program_path(core, jstr(def, "image"));
        if (strings_add(argv, program) < 0) {
            free(program);
            return -1;
        }
    }
    return 0;
}

static void limits_of(const json_t *td, struct runner_limits *limits)
{
    memset(limits, 0, sizeof *limits);
    const char *cpu = json_string_value(json_object_get(td, "cpu"));
    const char *memory = json_string_value(json_object_get(td, "memory"));
    limits->cpu_units = cpu ? atoi(cpu) : 0;
    int64_t hard = memory ? atoll(memory) : 0, soft = 0, shares = 0;
    size_t i;
    json_t *def;
    json_array_foreach(json_object_get(td, "containerDefinitions"), i, def)
    {
        shares += json_integer_value(json_object_get(def, "cpu"));
        if (!memory)
            hard += json_integer_value(json_object_get(def, "memory"));
        soft += json_integer_value(json_object_get(def, "memoryReservation"));
    }
    limits->cpu_shares = (int)shares;
    limits->memory_bytes = hard * 1024 * 1024;
    limits->memory_soft_bytes = soft * 1024 * 1024;
}

static void set_bindings(struct core_task *task)
{
    json_t *containers = json_object_get(task->doc, "containers");
    size_t i, j;
    json_t *def, *pm;
    int k = 0;
    json_array_foreach(json_object_get(task->td, "containerDefinitions"), i, def)
    {
        json_t *bindings = json_array();
        json_array_foreach(json_object_get(def, "portMappings"), j, pm)
        {
            json_array_append_new(bindings,
                                  json_pack("{s:s, s:O, s:i, s:O}", "bindIP", "127.0.0.1",
                                            "containerPort", json_object_get(pm, "containerPort"),
                                            "hostPort", task->host_ports[k++], "protocol",
                                            json_object_get(pm, "protocol")));
        }
        json_t *c = json_array_get(containers, i);
        json_object_set_new(c, "networkBindings", bindings);
        char runtime_id[80];
        if (task->containers[i].docker_id[0])
            snprintf(runtime_id, sizeof runtime_id, "%s", task->containers[i].docker_id);
        else
            snprintf(runtime_id, sizeof runtime_id, "%d", (int)task->containers[i].pid);
        json_object_set_new(c, "runtimeId", json_string(runtime_id));
    }
}

/* The host port of (container, containerPort), or -1. */
static int host_port_of(const struct core_task *task, const char *container, int64_t port)
{
    size_t i, j;
    json_t *def, *pm;
    int k = 0;
    json_array_foreach(json_object_get(task->td, "containerDefinitions"), i, def)
    {
        bool this_container = strcmp(jstr(def, "name"), container) == 0;
        json_array_foreach(json_object_get(def, "portMappings"), j, pm)
        {
            if (this_container && json_integer_value(json_object_get(pm, "containerPort")) == port)
                return task->host_ports[k];
            k++;
        }
    }
    return -1;
}

static void set_targets(struct core *core, struct core_task *task)
{
    struct core_service *svc =
        task->service[0] ? service_find(core, task->cluster, task->service) : NULL;
    task->n_targets = 0;
    if (!svc)
        return;
    size_t i;
    json_t *lb;
    json_array_foreach(json_object_get(svc->doc, "loadBalancers"), i, lb)
    {
        if (task->n_targets >= CORE_MAX_TARGETS)
            break;
        const char *arn = jstr(lb, "targetGroupArn");
        int port = host_port_of(task, jstr(lb, "containerName"),
                                json_integer_value(json_object_get(lb, "containerPort")));
        struct task_target *t = &task->targets[task->n_targets];
        if (port < 0 || service_lb_group(arn, t->group, sizeof t->group) < 0)
            continue;
        snprintf(t->group_arn, sizeof t->group_arn, "%s", arn);
        snprintf(t->addr, sizeof t->addr, "127.0.0.1:%d", port);
        t->registered = false;
        task->n_targets++;
    }
}

static int start_processes(struct core *core, struct core_task *task, char *why, size_t size)
{
    struct runner_container rc[TASKDEF_MAX_CONTAINERS];
    struct launch_strings argvs[TASKDEF_MAX_CONTAINERS], envs[TASKDEF_MAX_CONTAINERS];
    memset(argvs, 0, sizeof argvs);
    memset(envs, 0, sizeof envs);
    size_t i;
    json_t *def;
    int port_index = 0, failed = 0;
    json_array_foreach(json_object_get(task->td, "containerDefinitions"), i, def)
    {
        size_t n_ports = json_array_size(json_object_get(def, "portMappings"));
        if (build_argv(core, task, def, &argvs[i]) < 0 ||
            launch_build_env(core, task, def, n_ports ? port_index : -1, false, &envs[i]) < 0)
            failed = 1;
        port_index += (int)n_ports;
        rc[i] = (struct runner_container){
            .name = task->containers[i].name, .argv = argvs[i].items, .envp = envs[i].items};
    }
    char task_dir[PATH_MAX + 64];
    snprintf(task_dir, sizeof task_dir, "%s/tasks/%s", core->run_dir, task->id);
    struct runner_limits limits;
    limits_of(task->td, &limits);
    int result = -1;
    if (failed)
        snprintf(why, size, "a command line or environment is too large");
    else
        result = runner_start(&core->runner, task->id, task_dir, &limits, rc, task->n_containers,
                              why, size);
    for (int k = 0; k < task->n_containers; k++) {
        if (result == 0) {
            task->containers[k].pid = rc[k].pid;
            task->containers[k].start_ticks = rc[k].start_ticks;
            task->containers[k].running = true;
            launch_watch(core, &task->containers[k]);
        }
        launch_strings_free(&argvs[k]);
        launch_strings_free(&envs[k]);
    }
    return result;
}

int launch_start(struct core *core, struct core_task *task, char *why, size_t size)
{
    int rc = launch_is_docker(task) ? launch_docker_start(core, task, why, size)
                                    : start_processes(core, task, why, size);
    if (rc < 0)
        return -1;
    int64_t now = clock_wall_ms();
    for (int i = 0; i < task->n_containers; i++) {
        task->containers[i].health.started_ms = now;
        if (!launch_is_docker(task))
            health_start(core, task, i); /* dockerd probes its own containers */
    }
    set_bindings(task);
    set_targets(core, task);
    task->dirty = true;
    return 0;
}

bool launch_is_docker(const struct core_task *task)
{
    return strcmp(jstr(task->doc, "launchType"), "DOCKER") == 0;
}

void launch_signal(struct core *core, struct core_task *task, struct task_container *c, int sig)
{
    if (launch_is_docker(task)) {
        launch_docker_signal(core, task, c, sig);
        return;
    }
    /* a re-adopted process is signalled only while its pid is still that process */
    if (!c->adopted || runner_is_ours(c->pid, c->start_ticks))
        runner_signal(c->pid, sig);
}

void launch_done(struct core *core, struct core_task *task)
{
    for (int i = 0; i < task->n_containers; i++)
        health_stop(core, task, i);
    if (launch_is_docker(task))
        launch_docker_done(core, task);
    runner_task_done(&core->runner, task->id);
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

void launch_remove_dir(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
