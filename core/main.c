/* gantry-core: the ECS-compatible orchestration core. Loads its state from Redis, applies the
 * configuration's declared clusters, task definitions and services, serves the ECS API and runs
 * the service scheduler. SIGHUP re-reads the configuration and applies its declared state again
 * (a refused file changes nothing); SIGTERM stops every task (deregistered first) and exits. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "core/bootstrap.h"
#include "core/core.h"
#include "core/launch.h"
#include "core/scheduled.h"
#include "core/targets.h"

/* Under `gantry up`'s default stop timeout (10 s), so the core finishes its tasks itself. */
enum { SHUTDOWN_MAX_MS = 8000, REDIS_START_WAIT_MS = 10000 };

struct core_main {
    struct core core;
    struct gantry_config cfg;
    struct daemon_args args;
    struct daemon_signals signals;
    ev_timer shutdown_timer;
    int64_t shutdown_deadline_ms;
};

static bool owned_by_a_task(void *ctx, const char *task_id, const char *container, pid_t pid)
{
    struct core *core = ctx;
    for (struct core_task *t = core->tasks; t; t = t->next) {
        if (strcmp(t->id, task_id) != 0 || t->last == TASK_STOPPED)
            continue;
        for (int i = 0; i < t->n_containers; i++)
            if (t->containers[i].running && t->containers[i].pid == pid &&
                strcmp(t->containers[i].name, container) == 0)
                return true;
    }
    return false;
}

/* Tasks a previous gantry-core left running (it was killed, or crashed): their processes are
 * re-adopted when they are still the ones it started (pid and start time: a reused pid is never
 * touched), those that died meanwhile are noticed (the scheduler replaces their tasks), and
 * processes it started but never recorded are killed. DOCKER containers are found again by
 * their labels in the scheduler's first pass (launch_docker_poll). */
static void adopt_previous_tasks(struct core *core)
{
    runner_kill_orphans(core->run_dir, owned_by_a_task, core);
    int adopted = 0, lost = 0;
    for (struct core_task *t = core->tasks; t; t = t->next) {
        if (t->last == TASK_STOPPED)
            continue;
        launch_account(core, t);
        if (launch_is_docker(t))
            continue;
        for (int i = 0; i < t->n_containers; i++) {
            struct task_container *c = &t->containers[i];
            if (!c->running)
                continue;
            if (runner_is_ours(c->pid, c->start_ticks)) {
                launch_adopt(core, c);
                if (t->last == TASK_RUNNING)
                    health_start(core, t, i);
                adopted++;
                continue;
            }
            c->adopted = true; /* its pid may be anyone's now: never signalled */
            scheduler_container_exited(t, c, -1, "exited while gantry-core was not running");
            lost++;
        }
    }
    if (adopted || lost)
        log_info("re-adopted %d running container process(es) of an earlier gantry-core; %d had "
                 "exited meanwhile",
                 adopted, lost);
}

static void model_clear(struct core *core);

static int load_state(struct core *core)
{
    char why[512];
    int64_t deadline = clock_mono_ms() + REDIS_START_WAIT_MS;
    for (;;) {
        if (store_load(core, why, sizeof why) == 0)
            return 0;
        model_clear(core); /* what a failed load read is read again whole */
        if (clock_mono_ms() >= deadline)
            break;
        usleep(200 * 1000);
    }
    log_error("cannot load the state from Redis: %s", why);
    return -1;
}

static bool all_stopped(struct core *core)
{
    for (struct core_task *t = core->tasks; t; t = t->next)
        for (int i = 0; i < t->n_containers; i++)
            if (t->containers[i].running)
                return false;
    return true;
}

static void on_shutdown_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct core_main *m = w->data;
    struct core *core = &m->core;
    scheduler_reconcile(core);
    bool done = all_stopped(core);
    if (!done && clock_mono_ms() < m->shutdown_deadline_ms)
        return;
    if (!done) {
        log_warn("shutdown: tasks still running after %d ms; killed", SHUTDOWN_MAX_MS);
        for (struct core_task *t = core->tasks; t; t = t->next)
            for (int i = 0; i < t->n_containers; i++)
                if (t->containers[i].running)
                    launch_signal(core, t, &t->containers[i], SIGKILL);
    }
    ev_timer_stop(loop, w);
    ev_break(loop, EVBREAK_ALL);
}

/* Every task stops as in a scale-in (targets deregistered, SIGTERM, SIGKILL after stopTimeout),
 * without waiting for a drain: the machine's tasks are going away with their core. */
static void on_stop(void *arg)
{
    struct core_main *m = arg;
    struct core *core = &m->core;
    log_info("stopping: every task stops");
    core->shutting_down = true;
    http_server_stop(&core->api);
    scheduler_stop(core);
    daemon_signals_stop(core->loop, &m->signals);
    for (struct core_task *t = core->tasks; t; t = t->next) {
        if (t->last == TASK_STOPPED)
            continue;
        task_request_stop(t, "gantry-core was stopped", "ServiceSchedulerInitiated");
        t->no_drain = true;
        for (int i = 0; i < t->n_containers; i++)
            if (t->containers[i].stop_timeout_ms > SHUTDOWN_MAX_MS - 1000)
                t->containers[i].stop_timeout_ms = SHUTDOWN_MAX_MS - 1000;
    }
    m->shutdown_deadline_ms = clock_mono_ms() + SHUTDOWN_MAX_MS;
    ev_timer_init(&m->shutdown_timer, on_shutdown_tick, 0.0, 0.05);
    m->shutdown_timer.data = m;
    ev_timer_start(core->loop, &m->shutdown_timer);
}

static int load_config(struct gantry_config *cfg, const struct daemon_args *args,
                       struct cfg_errors *errors)
{
    if (config_load_args(cfg, args, errors) < 0 ||
        config_addr_override(errors, "--listen", args->listen, &cfg->core.listen) < 0)
        return -1;
    int rc = bootstrap_validate(&cfg->core, errors);
    return scheduled_validate(&cfg->core, errors) < 0 ? -1 : rc;
}

static void on_reload(void *arg)
{
    struct core_main *m = arg;
    struct gantry_config *next = malloc(sizeof *next);
    struct cfg_errors errors;
    if (!next)
        return;
    if (load_config(next, &m->args, &errors) < 0) {
        config_log_refused_reload(&errors);
        config_free(next);
        free(next);
        return;
    }
    /* The API keeps its address (a new one needs a restart); everything else takes effect. */
    next->core.listen = m->cfg.core.listen;
    config_free(&m->cfg);
    m->cfg = *next;
    free(next);
    m->core.cfg = &m->cfg;
    bootstrap_apply(&m->core);
    scheduled_apply(&m->core);
    if (store_flush(&m->core) < 0)
        log_warn("state store: %s", m->core.redis.error);
    core_kick(&m->core);
    log_info("configuration reloaded");
}

static int core_init(struct core_main *m)
{
    struct core *core = &m->core;
    core->loop = ev_default_loop(0);
    core->cfg = &m->cfg;
    core->clusters = json_object();
    core->instances = json_object();
    core->taskdefs = json_object();
    core->pending_deletes = json_array();
    core->pending_events = json_array();
    if (!getcwd(core->cwd, sizeof core->cwd)) {
        log_error("cannot read the working directory: %s", strerror(errno));
        return -1;
    }
    const char *run = m->cfg.core.run_dir;
    if (run[0] == '/')
        snprintf(core->run_dir, sizeof core->run_dir, "%s", run);
    else
        snprintf(core->run_dir, sizeof core->run_dir, "%.2000s/%.200s", core->cwd, run);
    /* run_dir/tasks/ID is created with the first task (runner_start): nothing on disk before. */
    struct redis_url url = m->cfg.redis.url;
    if (!url.addr.len) {
        char why[160];
        value_parse_redis_url("redis://127.0.0.1:6379", &url, why, sizeof why);
    }
    redis_sync_init(&core->redis, &url, m->cfg.redis.connect_timeout_ms);
    runner_init(&core->runner, m->cfg.core.cgroups);
    instance_detect(core);
    return 0;
}

/* Forgets the model in memory (not in Redis): before a load is tried again, and at exit. */
static void model_clear(struct core *core)
{
    while (core->tasks) {
        struct core_task *t = core->tasks;
        core->tasks = t->next;
        task_free(t);
    }
    while (core->services) {
        struct core_service *s = core->services;
        core->services = s->next;
        service_free(s);
    }
    json_object_clear(core->clusters);
    json_object_clear(core->instances);
    json_object_clear(core->taskdefs);
    json_array_clear(core->pending_deletes);
    json_array_clear(core->pending_events);
}

static void core_free(struct core *core)
{
    model_clear(core);
    scheduled_free(core);
    json_decref(core->clusters);
    json_decref(core->instances);
    json_decref(core->taskdefs);
    json_decref(core->pending_deletes);
    json_decref(core->pending_events);
    redis_sync_close(&core->redis);
}

static int run(struct core_main *m)
{
    struct core *core = &m->core;
    if (core_init(m) < 0 || load_state(core) < 0)
        return 1;
    adopt_previous_tasks(core);
    bootstrap_apply(core);
    scheduled_apply(core);
    if (store_flush(core) < 0)
        log_warn("state store: %s", core->redis.error);
    char why[256];
    if (api_start(core, why, sizeof why) < 0) {
        log_error("cannot listen: %s", why);
        return 1;
    }
    scheduler_start(core);
    daemon_signals_start(core->loop, &m->signals, on_stop, on_reload, m);
    char addr[NET_ADDR_TEXT_MAX], url[NET_ADDR_TEXT_MAX + 16];
    net_addr_format(&core->api.bound, addr, sizeof addr);
    snprintf(url, sizeof url, "http://%s", addr);
    const char *ready[] = {url};
    log_info("ECS API on %s", url);
    daemon_ready(ready, 1);
    ev_run(core->loop, 0);
    launch_docker_close(core);
    if (store_flush(core) < 0)
        log_warn("state store: the last state was not written: %s", core->redis.error);
    log_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    static struct core_main m; /* large (the port bitmap): not on the stack */
    struct daemon_usage usage = {
        .name = "gantry-core",
        .summary = "the ECS-compatible orchestration core (API, state in Redis, scheduler)",
        .flags = DAEMON_TAKES_REDIS | DAEMON_TAKES_LISTEN,
    };
    int rc = daemon_args_parse(argc, argv, &usage, &m.args);
    if (rc != DAEMON_ARGS_GO_ON)
        return rc;
    struct cfg_errors errors;
    int failed = load_config(&m.cfg, &m.args, &errors) < 0;
    if (failed)
        config_print_errors(&errors, stderr);
    if (m.args.check && !failed)
        printf("configuration OK\n");
    if (m.args.check || failed) {
        config_free(&m.cfg);
        return failed ? 1 : 0;
    }
    log_init("gantry-core", (enum log_level)m.cfg.log.level);
    rc = run(&m);
    core_free(&m.core);
    config_free(&m.cfg);
    return rc;
}
