/* Container health checks (contract in health.h).
 *
 * A PROCESS container's probing is a small state machine on two watchers in its struct
 * container_health: `timer` waits an interval, then starts a probe and becomes that probe's
 * timeout; `probe_child` sees the probe end, which re-arms `timer` for the next interval. So a
 * container never has two probes at once, however long they take, and nothing is allocated
 * between probes (the command line and environment are built for each, then freed).
 *
 * Probes are started with posix_spawn(): gantry-core may run threads (libcurl's), and glibc's
 * posix_spawn does its work between clone and exec without touching malloc, which a forked child
 * of a threaded process must not do. */
#include "core/health.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "core/core.h"
#include "core/launch.h"

/* ECS's defaults and ranges (seconds; retries a count). */
enum {
    INTERVAL_DEFAULT = 30,
    INTERVAL_MIN = 5,
    INTERVAL_MAX = 300,
    TIMEOUT_DEFAULT = 5,
    TIMEOUT_MIN = 2,
    TIMEOUT_MAX = 60,
    RETRIES_DEFAULT = 3,
    RETRIES_MIN = 1,
    RETRIES_MAX = 10,
    START_PERIOD_DEFAULT = 0,
    START_PERIOD_MAX = 300,
};

/* ---- The pure rules ------------------------------------------------------------------------ */

/* A member in seconds: the default when absent, clamped to [min, max] (a record read back from
 * Redis could hold anything; a zero interval would make the timer spin). */
static int64_t seconds_member(const json_t *hc, const char *key, int64_t def, int64_t min,
                              int64_t max)
{
    const json_t *v = json_object_get(hc, key);
    int64_t s = json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
    return s < min ? min : s > max ? max : s;
}

int health_params_from(const json_t *def, struct health_params *out)
{
    const json_t *hc = json_object_get(def, "healthCheck");
    *out = (struct health_params){
        .interval_ms =
            seconds_member(hc, "interval", INTERVAL_DEFAULT, INTERVAL_MIN, INTERVAL_MAX) * 1000,
        .timeout_ms =
            seconds_member(hc, "timeout", TIMEOUT_DEFAULT, TIMEOUT_MIN, TIMEOUT_MAX) * 1000,
        .start_period_ms =
            seconds_member(hc, "startPeriod", START_PERIOD_DEFAULT, 0, START_PERIOD_MAX) * 1000,
        .retries = (int)seconds_member(hc, "retries", RETRIES_DEFAULT, RETRIES_MIN, RETRIES_MAX),
    };
    if (!json_is_object(hc))
        return 0;
    const json_t *cmd = json_object_get(hc, "command");
    const char *kind = json_string_value(json_array_get(cmd, 0));
    if (!kind)
        return -1;
    if (strcmp(kind, "NONE") == 0)
        return 0;
    bool shell = strcmp(kind, "CMD-SHELL") == 0;
    if ((!shell && strcmp(kind, "CMD") != 0) || json_array_size(cmd) < 2)
        return -1;
    for (size_t i = 1; i < json_array_size(cmd); i++)
        if (!json_is_string(json_array_get(cmd, i)))
            return -1;
    /* a program named "" cannot be executed; an empty shell line is a valid (passing) one */
    if (!shell && !*json_string_value(json_array_get(cmd, 1)))
        return -1;
    out->enabled = true;
    out->shell = shell;
    out->command = cmd;
    return 0;
}

enum health_status health_observe(struct container_health *h, const struct health_params *p,
                                  bool ok, int64_t now_ms)
{
    if (ok) {
        h->failures = 0;
        h->status = HEALTH_HEALTHY;
        return h->status;
    }
    /* Docker's start period: a container still starting up may fail without it counting, until
     * its first success (after which status is no longer UNKNOWN) says it has started. */
    if (h->status == HEALTH_UNKNOWN && now_ms - h->started_ms < p->start_period_ms)
        return h->status;
    if (++h->failures >= p->retries)
        h->status = HEALTH_UNHEALTHY;
    return h->status;
}

enum health_status health_task_status(int n, const enum health_status status[],
                                      const bool essential[], const bool checked[])
{
    int counted = 0, healthy = 0;
    for (int i = 0; i < n; i++) {
        if (!essential[i] || !checked[i])
            continue;
        if (status[i] == HEALTH_UNHEALTHY)
            return HEALTH_UNHEALTHY;
        counted++;
        healthy += status[i] == HEALTH_HEALTHY;
    }
    return counted > 0 && healthy == counted ? HEALTH_HEALTHY : HEALTH_UNKNOWN;
}

const char *health_status_name(enum health_status s)
{
    return s == HEALTH_HEALTHY ? "HEALTHY" : s == HEALTH_UNHEALTHY ? "UNHEALTHY" : "UNKNOWN";
}

/* ---- The documents ------------------------------------------------------------------------- */

static const json_t *container_def(const struct core_task *task, int index)
{
    return json_array_get(json_object_get(task->td, "containerDefinitions"), (size_t)index);
}

static bool has_check(const struct core_task *task, int index, struct health_params *p)
{
    return health_params_from(container_def(task, index), p) == 0 && p->enabled;
}

static enum health_status status_from_name(const char *name)
{
    return strcmp(name, "HEALTHY") == 0     ? HEALTH_HEALTHY
           : strcmp(name, "UNHEALTHY") == 0 ? HEALTH_UNHEALTHY
                                            : HEALTH_UNKNOWN;
}

/* The task document's healthStatus, from its containers' documents (which are what survives a
 * restart of gantry-core, unlike the structs). */
static void update_task_status(struct core_task *task)
{
    enum health_status status[TASKDEF_MAX_CONTAINERS];
    bool essential[TASKDEF_MAX_CONTAINERS], checked[TASKDEF_MAX_CONTAINERS];
    json_t *docs = json_object_get(task->doc, "containers");
    struct health_params p;
    for (int i = 0; i < task->n_containers; i++) {
        status[i] = status_from_name(jstr(json_array_get(docs, (size_t)i), "healthStatus"));
        essential[i] = task->containers[i].essential;
        checked[i] = has_check(task, i, &p);
    }
    enum health_status s = health_task_status(task->n_containers, status, essential, checked);
    json_object_set_new(task->doc, "healthStatus", json_string(health_status_name(s)));
}

static void stop_unhealthy(struct core_task *task, const struct task_container *c)
{
    log_warn("task %s: essential container %s failed its health checks: the task stops", task->id,
             c->name);
    struct core_service *svc =
        task->service[0] ? service_find(task->core, task->cluster, task->service) : NULL;
    if (svc)
        service_event(task->core, svc, "(task %s) failed container health checks.", task->id);
    task_request_stop(task, HEALTH_STOP_REASON, "ServiceSchedulerInitiated");
    scheduler_task_failed(task, "failed container health checks"); /* the circuit breaker's */
}

void health_report(struct core_task *task, int index, enum health_status status)
{
    struct health_params p;
    if (index < 0 || index >= task->n_containers || !has_check(task, index, &p))
        return; /* ECS counts only the task definition's checks (not an image's HEALTHCHECK) */
    struct task_container *c = &task->containers[index];
    c->health.status = status;
    json_t *doc = json_array_get(json_object_get(task->doc, "containers"), (size_t)index);
    const char *name = health_status_name(status);
    if (!doc || strcmp(jstr(doc, "healthStatus"), name) == 0)
        return;
    json_object_set_new(doc, "healthStatus", json_string(name));
    update_task_status(task);
    task->dirty = true;
    if (status == HEALTH_UNHEALTHY && c->health.last_failure[0])
        log_info("task %s: container %s is UNHEALTHY (the last failure: %s)", task->id, c->name,
                 c->health.last_failure);
    else
        log_info("task %s: container %s is %s", task->id, c->name, name);
    if (status == HEALTH_UNHEALTHY && c->essential && task->desired == TASK_RUNNING)
        stop_unhealthy(task, c);
}

/* ---- PROCESS probes ------------------------------------------------------------------------- */

static void on_probe_exit(struct ev_loop *loop, ev_child *w, int revents);

static int index_of(const struct task_container *c)
{
    return (int)(c - c->task->containers);
}

/* Probing ends when the task is asked to stop: the status it stopped with (UNHEALTHY when that
 * is why) stays, rather than what a process shutting down answers. */
static bool may_probe(const struct task_container *c)
{
    return c->running && c->task->desired == TASK_RUNNING;
}

static void arm(struct core *core, struct task_container *c, int64_t after_ms)
{
    ev_timer_stop(core->loop, &c->health.timer);
    ev_timer_set(&c->health.timer, (double)after_ms / 1000.0, 0.0);
    ev_timer_start(core->loop, &c->health.timer);
}

/* run_dir/tasks/ID/SUFFIX; -1 when it does not fit. */
static int task_path(const struct core_task *task, const char *suffix, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/tasks/%s/%s", task->core->run_dir, task->id, suffix);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* The first line of the last probe's output (for the log), "" when it wrote nothing. */
static void output_line(const struct task_container *c, char *out, size_t size)
{
    char name[CORE_NAME_MAX + 16], path[PATH_MAX];
    out[0] = '\0';
    snprintf(name, sizeof name, "%s.health", c->name);
    if (task_path(c->task, name, path, sizeof path) < 0)
        return;
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    if (fgets(out, (int)size, f))
        out[strcspn(out, "\r\n")] = '\0';
    else
        out[0] = '\0';
    fclose(f);
}

/* One probe's result: counted (health_observe) and reported. */
static void record(struct task_container *c, bool ok, const char *why)
{
    struct health_params p;
    struct core_task *task = c->task;
    int index = index_of(c);
    if (!has_check(task, index, &p))
        return;
    if (!ok) {
        char line[120];
        output_line(c, line, sizeof line);
        snprintf(c->health.last_failure, sizeof c->health.last_failure, "%s%s%s", why,
                 line[0] ? ": " : "", line);
        log_debug("task %s: container %s: health check failed: %s", task->id, c->name,
                  c->health.last_failure);
    }
    health_report(task, index, health_observe(&c->health, &p, ok, clock_wall_ms()));
}

static int strings_add(struct launch_strings *s, char *text)
{
    if (!text || s->n >= LAUNCH_MAX_STRINGS) {
        free(text);
        return -1;
    }
    s->items[s->n++] = text;
    s->items[s->n] = NULL;
    return 0;
}

static char *path_join(const char *dir, const char *name)
{
    char *out = NULL;
    return asprintf(&out, "%s/%s", dir, name) < 0 ? NULL : out;
}

static bool executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* CMD's program as a container's would be found: a relative path with a '/' from gantry-core's
 * directory (as launch.c's program_path), a bare name in the container's PATH (relative entries
 * from the work directory, where exec would look for them). NULL when there is none. */
static char *find_program(const struct core *core, const char *word, const char *work_dir,
                          char *const *envp)
{
    if (word[0] == '/')
        return strdup(word);
    if (strchr(word, '/'))
        return path_join(core->cwd, word);
    const char *path = "/usr/local/bin:/usr/bin:/bin";
    for (int i = 0; envp[i]; i++)
        if (strncmp(envp[i], "PATH=", 5) == 0)
            path = envp[i] + 5;
    for (const char *dir = path;; dir++) {
        size_t len = strcspn(dir, ":");
        char *d = len ? strndup(dir, len) : strdup(".");
        char *base = d && d[0] != '/' ? path_join(work_dir, d) : d;
        char *candidate = base ? path_join(base, word) : NULL;
        if (base != d)
            free(base);
        free(d);
        if (candidate && executable(candidate))
            return candidate;
        free(candidate);
        dir += len;
        if (!*dir)
            return NULL;
    }
}

/* The index of container `index`'s first port in task->host_ports, -1 when it has none. */
static int first_port_of(const struct core_task *task, int index)
{
    const json_t *defs = json_object_get(task->td, "containerDefinitions");
    int k = 0;
    for (int i = 0; i < index; i++)
        k += (int)json_array_size(json_object_get(json_array_get(defs, (size_t)i), "portMappings"));
    return json_array_size(json_object_get(container_def(task, index), "portMappings")) ? k : -1;
}

/* The probe's argv (argv->items[0] the program to execute); -1 with why. */
static int build_argv(const struct core *core, const struct health_params *p, const char *work_dir,
                      char *const *envp, struct launch_strings *argv, char *why, size_t size)
{
    size_t n = json_array_size(p->command);
    if (p->shell &&
        (strings_add(argv, strdup("/bin/sh")) < 0 || strings_add(argv, strdup("-c")) < 0))
        goto too_large;
    for (size_t i = 1; i < n; i++) {
        const char *word = json_string_value(json_array_get(p->command, i));
        char *text = !p->shell && i == 1 ? find_program(core, word, work_dir, envp) : strdup(word);
        if (!text && !p->shell && i == 1) {
            snprintf(why, size, "cannot run '%s': no such program", word);
            return -1;
        }
        if (strings_add(argv, text) < 0)
            goto too_large;
    }
    return 0;
too_large:
    snprintf(why, size, "the command line is too large");
    return -1;
}

/* Starts the probe process: its own group, the task's work directory, stdin /dev/null, stdout and
 * stderr to NAME.health. Every signal gets its default disposition and none is blocked: the
 * daemon ignores SIGPIPE, and dispositions survive exec. -1 with why. */
static int spawn(char *const *argv, char *const *envp, const char *work_dir, const char *output,
                 pid_t *pid, char *why, size_t size)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    int err = posix_spawn_file_actions_addchdir_np(&fa, work_dir);
    if (!err)
        err = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!err)
        err = posix_spawn_file_actions_addopen(&fa, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!err)
        err = posix_spawn_file_actions_adddup2(&fa, 1, 2);
    /* the daemon's sockets and the tasks' log files are no probe's business */
    if (!err)
        err = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (!err)
        err = posix_spawnattr_setpgroup(&attr, 0);
    if (!err)
        err = posix_spawnattr_setsigdefault(&attr, &all);
    if (!err)
        err = posix_spawnattr_setsigmask(&attr, &none);
    if (!err)
        err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                                  POSIX_SPAWN_SETSIGMASK);
    if (!err)
        err = posix_spawn(pid, argv[0], &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (err)
        snprintf(why, size, "cannot run '%s': %s", argv[0], strerror(err));
    return err ? -1 : 0;
}

/* Builds and starts one probe of c; -1 with why (a probe that cannot run is a failed one). */
static int probe_start(struct core *core, struct task_container *c, const struct health_params *p,
                       char *why, size_t size)
{
    struct core_task *task = c->task;
    int index = index_of(c);
    char work_dir[PATH_MAX], output[PATH_MAX], name[CORE_NAME_MAX + 16];
    snprintf(name, sizeof name, "%s.health", c->name);
    if (task_path(task, "work", work_dir, sizeof work_dir) < 0 ||
        task_path(task, name, output, sizeof output) < 0) {
        snprintf(why, size, "the task's directory name is too long");
        return -1;
    }
    struct launch_strings env = {0}, argv = {0};
    int rc = -1;
    if (launch_build_env(core, task, container_def(task, index), first_port_of(task, index), false,
                         &env) < 0)
        snprintf(why, size, "the environment is too large");
    else if (build_argv(core, p, work_dir, env.items, &argv, why, size) == 0)
        rc = spawn(argv.items, env.items, work_dir, output, &c->health.probe_pid, why, size);
    launch_strings_free(&env);
    launch_strings_free(&argv);
    return rc;
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct task_container *c = w->data;
    struct container_health *h = &c->health;
    struct core *core = c->task->core;
    struct health_params p;
    if (!has_check(c->task, index_of(c), &p))
        return;
    if (h->probing) {
        /* its timeout; unless it has just ended (reaped, its callback not run yet) */
        if (ev_is_pending(&h->probe_child))
            return;
        h->probe_timed_out = true;
        killpg(h->probe_pid, SIGKILL); /* unreaped: the group id is still this probe's */
        char why[64];
        snprintf(why, sizeof why, "no answer within %llds", (long long)(p.timeout_ms / 1000));
        record(c, false, why); /* now, not when the killed group is reaped */
        return;                /* the probe's exit arms the next one */
    }
    if (!may_probe(c))
        return; /* the task is stopping: health_stop() comes with its end */
    char why[PATH_MAX + 64];
    if (probe_start(core, c, &p, why, sizeof why) < 0) {
        record(c, false, why);
        if (may_probe(c))
            arm(core, c, p.interval_ms);
        return;
    }
    h->probing = true;
    h->probe_timed_out = false;
    h->probe_started_ms = clock_mono_ms();
    /* A pid of ours and of no container: the scheduler's watchers never see this exit. Started
     * before the loop runs again, so even a probe that has already exited is reaped here. */
    ev_child_init(&h->probe_child, on_probe_exit, h->probe_pid, 0);
    h->probe_child.data = c;
    ev_child_start(loop, &h->probe_child);
    arm(core, c, p.timeout_ms);
}

static void on_probe_exit(struct ev_loop *loop, ev_child *w, int revents)
{
    (void)revents;
    ev_child_stop(loop, w);
    struct task_container *c = w->data;
    struct container_health *h = &c->health;
    struct core *core = c->task->core;
    int status = w->rstatus;
    bool timed_out = h->probe_timed_out;
    h->probing = false;
    h->probe_pid = 0;
    ev_timer_stop(loop, &h->timer);
    log_debug("task %s: container %s: health check ended after %lld ms", c->task->id, c->name,
              (long long)(clock_mono_ms() - h->probe_started_ms));
    if (!timed_out) {
        char why[64];
        if (WIFEXITED(status))
            snprintf(why, sizeof why, "exit status %d", WEXITSTATUS(status));
        else
            snprintf(why, sizeof why, "killed by signal %d", WTERMSIG(status));
        record(c, WIFEXITED(status) && WEXITSTATUS(status) == 0, why);
    }
    struct health_params p;
    if (may_probe(c) && has_check(c->task, index_of(c), &p))
        arm(core, c, p.interval_ms);
}

void health_start(struct core *core, struct core_task *task, int index)
{
    struct health_params p;
    if (index < 0 || index >= task->n_containers || launch_is_docker(task))
        return;
    if (health_params_from(container_def(task, index), &p) < 0) {
        log_warn("task %s: container %s: its healthCheck command cannot run: not checked", task->id,
                 task->containers[index].name);
        return;
    }
    struct task_container *c = &task->containers[index];
    struct container_health *h = &c->health;
    if (!p.enabled || h->probing || ev_is_active(&h->timer))
        return;
    h->status = HEALTH_UNKNOWN;
    h->failures = 0;
    h->last_failure[0] = '\0';
    /* Docker's first probe comes one interval after the start, not at once. */
    ev_timer_init(&h->timer, on_timer, (double)p.interval_ms / 1000.0, 0.0);
    h->timer.data = c;
    ev_timer_start(core->loop, &h->timer);
}

void health_stop(struct core *core, struct core_task *task, int index)
{
    if (index < 0 || index >= task->n_containers)
        return;
    struct container_health *h = &task->containers[index].health;
    ev_timer_stop(core->loop, &h->timer); /* a no-op on a watcher that never started */
    if (!h->probing)
        return;
    /* A pending exit means the probe was reaped already: its pid may be anyone's by now. */
    if (!ev_is_pending(&h->probe_child))
        killpg(h->probe_pid, SIGKILL);
    /* libev reaps every child, watched or not: the killed probe leaves no zombie */
    ev_child_stop(core->loop, &h->probe_child);
    h->probing = false;
    h->probe_pid = 0;
}
