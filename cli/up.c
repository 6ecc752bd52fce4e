#include "cli/up.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/redis_managed.h"
#include "cli/supervise.h"
#include "common/arena.h"
#include "common/buf.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/net.h"
#include "config/config.h"
#include "config/values.h"

struct up_ctx;

/* A program `gantry up` may run. */
struct program {
    const char *name;   /* prefix of its output, and its name in messages */
    const char *binary; /* a file next to bin/gantry; NULL: build() names the program */
    bool (*needed)(const struct up_ctx *ctx);
    /* Appends its arguments and environment, and sets how it tells it is ready; -1 (having said
     * why on stderr) when it cannot be run. */
    int (*build)(struct up_ctx *ctx, struct child_spec *spec);
    const char *scheme; /* its addresses are shown as SCHEME://ADDR/ in the summary */
};

enum { UP_MAX_PROGRAMS = 8 };
enum up_phase { UP_STARTING, UP_RUNNING, UP_STOPPING };

struct up_ctx {
    struct ev_loop *loop;
    struct daemon_args args;
    struct gantry_config cfg;
    struct arena arena; /* the programs' arguments and environment */
    char bin_dir[PATH_MAX];
    struct redis_managed redis; /* used when redis.url is empty */
    bool own_redis;
    const char *redis_url; /* what the daemons get with --redis */
    struct child_policy policy;
    struct child_hooks hooks;
    struct daemon_signals signals;

    struct child *children[UP_MAX_PROGRAMS]; /* started, in start order */
    const struct program *started[UP_MAX_PROGRAMS];
    size_t n_children;
    size_t next;     /* index in the program table of the next one to consider */
    size_t stopping; /* while UP_STOPPING: children[stopping - 1] is being stopped */
    enum up_phase phase;
    bool hurry; /* a second stop signal: SIGKILL what is left */
    bool done;  /* everything stopped: the loop must end (or not start) */
    int status;
};

static bool needs_own_redis(const struct up_ctx *ctx);
static bool always(const struct up_ctx *ctx);
static bool lb_configured(const struct up_ctx *ctx);
static bool demo_enabled(const struct up_ctx *ctx);
static bool autoscaling_configured(const struct up_ctx *ctx);
static int build_redis(struct up_ctx *ctx, struct child_spec *spec);
static int build_daemon(struct up_ctx *ctx, struct child_spec *spec);
static int build_demo(struct up_ctx *ctx, struct child_spec *spec);

/* What `gantry up` runs, in start order (and stopped in reverse). Redis comes first: everything
 * else depends on it. In reverse, gantry-lb stops taking traffic before gantry-core stops the
 * tasks behind it. gantry-autoscaler comes last, once the metrics it reads are being written and
 * the ECS API it calls serves, and stops first: no scaling while the stack goes down. It announces
 * no address (it serves nothing). */
static const struct program programs[] = {
    {"redis", NULL, needs_own_redis, build_redis},
    {"core", "gantry-core", always, build_daemon},
    {"lb", "gantry-lb", lb_configured, build_daemon, "http"},
    {"demo", "gantry-demo-app", demo_enabled, build_demo, "http"},
    {"metrics", "gantry-metrics", always, build_daemon, "http"},
    {"autoscaler", "gantry-autoscaler", autoscaling_configured, build_daemon},
};
#define N_PROGRAMS (sizeof programs / sizeof programs[0])
_Static_assert(N_PROGRAMS <= UP_MAX_PROGRAMS, "raise UP_MAX_PROGRAMS");

/* --- the table's predicates and builders --- */

/* A string for a spec, in the context's arena (specs must outlive their children); NULL when out
 * of memory, which the spec builders turn into an unusable spec. */
__attribute__((format(printf, 2, 3))) static const char *up_strf(struct up_ctx *ctx,
                                                                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n < 0 ? NULL : arena_alloc(&ctx->arena, (size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static bool always(const struct up_ctx *ctx)
{
    (void)ctx;
    return true;
}

static bool lb_configured(const struct up_ctx *ctx)
{
    return ctx->cfg.lb.listeners.count > 0;
}

static bool needs_own_redis(const struct up_ctx *ctx)
{
    return ctx->cfg.redis.url.addr.len == 0;
}

static bool demo_enabled(const struct up_ctx *ctx)
{
    return ctx->cfg.demo.enabled;
}

/* Without a scalable target the autoscaler would have nothing to do. */
static bool autoscaling_configured(const struct up_ctx *ctx)
{
    return ctx->cfg.autoscaler.scalable_targets.count > 0;
}

static int build_redis(struct up_ctx *ctx, struct child_spec *spec)
{
    char err[512];
    ctx->own_redis = true; /* from now on its lock is to be released */
    if (redis_managed_prepare(&ctx->redis, ctx->cfg.up.run_dir, err, sizeof err) < 0) {
        fprintf(stderr, "gantry: %s\n", err);
        return -1;
    }
    redis_managed_spec(&ctx->redis, ctx->cfg.up.redis_server, spec);
    ctx->redis_url = ctx->redis.url;
    return 0;
}

/* The gantry daemons read the same files, use the Redis `gantry up` runs (or was given) and log at
 * its level. For the rows of gantry-core, gantry-lb, ... */
static int build_daemon(struct up_ctx *ctx, struct child_spec *spec)
{
    for (size_t i = 0; i < ctx->args.n_config_files; i++) {
        child_spec_arg(spec, "-c");
        child_spec_arg(spec, ctx->args.config_files[i]);
    }
    child_spec_arg(spec, "--redis");
    child_spec_arg(spec, ctx->redis_url);
    if (ctx->args.log_level) {
        child_spec_arg(spec, "--log-level");
        child_spec_arg(spec, ctx->args.log_level);
    }
    return 0;
}

static const char *addr_host(const struct net_addr *a, char *out, size_t size)
{
    if (a->ss.ss_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->ss)->sin_addr, out,
                         (socklen_t)size);
    if (a->ss.ss_family == AF_INET6)
        return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, out,
                         (socklen_t)size);
    return NULL;
}

static int build_demo(struct up_ctx *ctx, struct child_spec *spec)
{
    const struct config_demo *d = &ctx->cfg.demo;
    char addr[NET_ADDR_TEXT_MAX], host[INET6_ADDRSTRLEN], latency[32], cpu[32];
    /* --listen also makes the address visible in `ps`. */
    child_spec_arg(spec, "--listen");
    child_spec_arg(spec, up_strf(ctx, "%s", net_addr_format(&d->listen, addr, sizeof addr)));
    /* The rest as the environment of a task, which is how gantry-core will configure it. */
    if (addr_host(&d->listen, host, sizeof host)) {
        child_spec_env(spec, up_strf(ctx, "HOST=%s", host));
        child_spec_env(spec, up_strf(ctx, "PORT=%d", net_addr_port(&d->listen)));
    }
    child_spec_env(spec, up_strf(ctx, "BODY_SIZE=%lld", (long long)d->body_size));
    child_spec_env(spec, up_strf(ctx, "LATENCY=%s",
                                 value_format_duration(d->latency_ms, latency, sizeof latency)));
    child_spec_env(spec, up_strf(ctx, "CPU=%s", value_format_duration(d->cpu_ms, cpu, sizeof cpu)));
    child_spec_env(spec, "TASK_ID=demo-1");
    if (ctx->args.log_level) {
        child_spec_arg(spec, "--log-level");
        child_spec_arg(spec, ctx->args.log_level);
    }
    return 0;
}

/* --- starting, in table order --- */

static void begin_stop(struct up_ctx *ctx, int status);

static struct child *current(const struct up_ctx *ctx)
{
    return ctx->n_children ? ctx->children[ctx->n_children - 1] : NULL;
}

static int start_program(struct up_ctx *ctx, const struct program *p)
{
    struct child_spec spec = {.name = p->name};
    if (p->binary) {
        child_spec_arg(&spec, up_strf(ctx, "%s/%s", ctx->bin_dir, p->binary));
        spec.hint = "build it: make";
    }
    if (p->build(ctx, &spec) < 0)
        return -1;
    struct child *c = child_new(ctx->loop, &spec, &ctx->policy, &ctx->hooks, ctx);
    if (!c) {
        fprintf(stderr, "gantry: cannot start %s: out of memory\n", p->name);
        return -1;
    }
    char err[512];
    if (child_start(c, err, sizeof err) < 0) {
        fprintf(stderr, "gantry: %s\n", err);
        child_free(c);
        return -1;
    }
    ctx->started[ctx->n_children] = p;
    ctx->children[ctx->n_children++] = c;
    return 0;
}

/* "redis unix:/run/redis.sock" or "demo http://127.0.0.1:8080/" into the summary; adds the
 * addresses to the readiness announcement. */
static void describe_child(struct up_ctx *ctx, size_t i, struct buf *summary, const char **addrs,
                           size_t *n_addrs)
{
    const char *const *a;
    size_t n = child_addrs(ctx->children[i], &a);
    const char *scheme = ctx->started[i]->scheme;
    buf_printf(summary, "%s%s", buf_unread(summary) ? ", " : "", ctx->started[i]->name);
    for (size_t k = 0; k < n; k++) {
        addrs[(*n_addrs)++] = a[k];
        if (scheme && strncmp(a[k], "unix:", 5) != 0)
            buf_printf(summary, " %s://%s/", scheme, a[k]);
        else
            buf_printf(summary, " %s", a[k]);
    }
}

static void announce_ready(struct up_ctx *ctx)
{
    ctx->phase = UP_RUNNING;
    const char *addrs[UP_MAX_PROGRAMS * CHILD_MAX_ADDRS];
    size_t n_addrs = 0;
    char mem[2048];
    struct buf summary;
    buf_init_fixed(&summary, mem, sizeof mem);
    if (!ctx->own_redis)
        buf_printf(&summary, "redis %s (external)", ctx->redis_url);
    for (size_t i = 0; i < ctx->n_children; i++)
        describe_child(ctx, i, &summary, addrs, &n_addrs);
    /* A line for people, on stdout with the programs' output, where they are looking; before the
     * announcement, so whoever waits for it finds the line there. */
    char line[2200];
    int len = snprintf(line, sizeof line, "gantry: up — %.*s; Ctrl-C to stop\n",
                       (int)buf_unread(&summary), buf_head(&summary));
    ssize_t ignored =
        write(STDOUT_FILENO, line, len < (int)sizeof line ? (size_t)len : sizeof line - 1);
    (void)ignored;
    daemon_ready(addrs, n_addrs);
}

static void start_next(struct up_ctx *ctx)
{
    while (ctx->next < N_PROGRAMS) {
        const struct program *p = &programs[ctx->next++];
        if (!p->needed(ctx))
            continue;
        if (start_program(ctx, p) < 0)
            begin_stop(ctx, 1);
        return; /* on to the next one when this one is ready */
    }
    announce_ready(ctx);
}

static bool same_file(int a, int b)
{
    struct stat sa, sb;
    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* A program that failed to start: say why, with its last lines, then stop the others. */
static void fail_start(struct up_ctx *ctx, struct child *c, const char *why)
{
    fprintf(stderr, "gantry: %s %s\n", child_name(c), why);
    /* Its lines went to stdout as they came; repeat them only where they were not seen. */
    if (!same_file(STDOUT_FILENO, STDERR_FILENO)) {
        char header[64];
        snprintf(header, sizeof header, "gantry: the last lines of %s:", child_name(c));
        child_print_tail(c, header, stderr);
    }
    begin_stop(ctx, 1);
}

/* --- stopping, in reverse order --- */

static void stop_next(struct up_ctx *ctx)
{
    while (ctx->stopping > 0) {
        if (!child_stop(ctx->children[ctx->stopping - 1], ctx->hurry))
            return; /* its exit brings us back here */
        ctx->stopping--;
    }
    ctx->done = true;
    ev_break(ctx->loop, EVBREAK_ALL);
}

static void begin_stop(struct up_ctx *ctx, int status)
{
    if (status)
        ctx->status = status;
    if (ctx->phase == UP_STOPPING)
        return;
    ctx->phase = UP_STOPPING;
    /* Programs wait for their turn to stop: none is to come back meanwhile. */
    for (size_t i = 0; i < ctx->n_children; i++)
        child_cancel_restart(ctx->children[i]);
    ctx->stopping = ctx->n_children;
    stop_next(ctx);
}

static void on_stop_signal(void *arg)
{
    struct up_ctx *ctx = arg;
    if (ctx->phase != UP_STOPPING) {
        log_info("stopping %zu program%s", ctx->n_children, ctx->n_children == 1 ? "" : "s");
        begin_stop(ctx, 0);
        return;
    }
    if (ctx->hurry)
        return;
    /* Asked twice: whoever is still stopping gets SIGKILL rather than its full stop timeout. */
    log_warn("asked again: killing what is left");
    ctx->hurry = true;
    ctx->status = 1;
    if (ctx->stopping > 0)
        child_stop(ctx->children[ctx->stopping - 1], true);
}

/* --- what the children report --- */

static void on_child_ready(struct child *c, void *arg)
{
    struct up_ctx *ctx = arg;
    const char *const *addrs;
    size_t n = child_addrs(c, &addrs);
    char mem[512];
    struct buf on;
    buf_init_fixed(&on, mem, sizeof mem - 1);
    for (size_t i = 0; i < n; i++)
        buf_printf(&on, "%s%s", i ? " " : " on ", addrs[i]);
    mem[on.len] = '\0';
    log_info("%s is ready%s", child_name(c), mem);
    if (ctx->phase == UP_STARTING && c == current(ctx))
        start_next(ctx);
}

static void on_child_exit(struct child *c, void *arg)
{
    struct up_ctx *ctx = arg;
    char how[96];
    child_exit_text(c, how, sizeof how);
    if (ctx->phase == UP_STOPPING) {
        if (!child_exit_clean(c)) {
            log_warn("%s %s", child_name(c), how);
            ctx->status = 1;
        } else {
            log_info("%s stopped", child_name(c));
        }
        if (ctx->stopping > 0 && c == ctx->children[ctx->stopping - 1]) {
            ctx->stopping--;
            stop_next(ctx);
        }
        return;
    }
    if (!child_ever_ready(c)) {
        char why[128];
        snprintf(why, sizeof why, "%s before it was ready", how);
        fail_start(ctx, c, why);
        return;
    }
    child_restart_later(c);
}

static void on_child_ready_timeout(struct child *c, void *arg)
{
    struct up_ctx *ctx = arg;
    char limit[32];
    value_format_duration(ctx->policy.ready_timeout_ms, limit, sizeof limit);
    if (ctx->phase == UP_STARTING && !child_ever_ready(c)) {
        char why[96];
        snprintf(why, sizeof why, "(pid %d) was not ready within %s (up.ready_timeout)",
                 (int)child_pid(c), limit);
        fail_start(ctx, c, why);
        return;
    }
    log_warn("%s (pid %d) not ready %s after its restart", child_name(c), (int)child_pid(c), limit);
}

/* --- the command --- */

static int find_bin_dir(struct up_ctx *ctx)
{
    /* The programs are the siblings of this very binary (bin/, or build/asan/bin/ for the ASan
     * build), not whatever PATH holds. */
    ssize_t n = readlink("/proc/self/exe", ctx->bin_dir, sizeof ctx->bin_dir - 1);
    if (n <= 0) {
        fprintf(stderr, "gantry: cannot find its own directory: /proc/self/exe: %s\n",
                strerror(errno));
        return -1;
    }
    ctx->bin_dir[n] = '\0';
    char *slash = strrchr(ctx->bin_dir, '/');
    if (slash)
        *slash = '\0';
    return 0;
}

/* With no -c file, `gantry up` runs the demo service behind gantry-lb on 127.0.0.1:8080, scaled
 * on its CPU by gantry-autoscaler: this text (config/examples/demo.yaml without its comments, with
 * the demo's absolute path; tests/system/test_gantry_up.py holds them to it), written into the run
 * directory so that every daemon reads the same file. */
static const char embedded_config[] =
    "# Written by `gantry up` run without -c: its embedded defaults (see "
    "config/examples/demo.yaml)\n"
    "demo: {enabled: false}\n"
    "core:\n"
    "  clusters: [default]\n"
    "  task_definitions:\n"
    "    - family: demo\n"
    "      cpu: \"256\"\n"
    "      containerDefinitions:\n"
    "        - name: web\n"
    "          image: gantry/demo-app\n"
    "          command: [\"%s/gantry-demo-app\"]\n"
    "          memoryReservation: 32\n"
    "          portMappings: [{containerPort: 8080}]\n"
    "          environment: [{name: CPU, value: 5ms}]\n"
    "  services:\n"
    "    - serviceName: demo\n"
    "      taskDefinition: demo\n"
    "      desiredCount: 2\n"
    "      loadBalancers: [{targetGroupArn: demo, containerName: web, containerPort: 8080}]\n"
    "lb:\n"
    "  listeners:\n"
    "    - name: web\n"
    "      listen: 127.0.0.1:8080\n"
    "      default_action: {type: forward, target_group: demo}\n"
    "  target_groups:\n"
    "    - name: demo\n"
    "      targets_from: redis\n"
    "      health_check: {path: /health, interval: 2s, timeout: 1s, healthy_threshold: 2}\n"
    "      deregistration_delay: 10s\n"
    "autoscaler:\n"
    "  scalable_targets:\n"
    "    - ServiceNamespace: ecs\n"
    "      ResourceId: service/default/demo\n"
    "      ScalableDimension: ecs:service:DesiredCount\n"
    "      MinCapacity: 1\n"
    "      MaxCapacity: 6\n"
    "  policies:\n"
    "    - PolicyName: demo-cpu50\n"
    "      ServiceNamespace: ecs\n"
    "      ResourceId: service/default/demo\n"
    "      ScalableDimension: ecs:service:DesiredCount\n"
    "      PolicyType: TargetTrackingScaling\n"
    "      TargetTrackingScalingPolicyConfiguration:\n"
    "        TargetValue: 50\n"
    "        PredefinedMetricSpecification: {PredefinedMetricType: "
    "ECSServiceAverageCPUUtilization}\n"
    "        ScaleOutCooldown: 30\n"
    "        ScaleInCooldown: 60\n";

static int use_embedded_config(struct up_ctx *ctx)
{
    static char path[] = "run/gantry-up.yaml";
    if (find_bin_dir(ctx) < 0)
        return -1;
    if (mkdir("run", 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "gantry: cannot create run/: %s\n", strerror(errno));
        return -1;
    }
    FILE *f = fopen(path, "w");
    int ok = f && fprintf(f, embedded_config, ctx->bin_dir) > 0;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok) {
        fprintf(stderr, "gantry: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    ctx->args.config_files[ctx->args.n_config_files++] = path;
    return 0;
}

static int prefix_width(const struct up_ctx *ctx)
{
    size_t width = 0;
    for (size_t i = 0; i < N_PROGRAMS; i++)
        if (programs[i].needed(ctx) && strlen(programs[i].name) > width)
            width = strlen(programs[i].name);
    return (int)width;
}

static int up_run(struct up_ctx *ctx)
{
    char url[160];
    const struct config_up *up = &ctx->cfg.up;
    if (find_bin_dir(ctx) < 0)
        return 1;
    supervise_init();
    ctx->loop = ev_default_loop(0); /* ev_child watchers work on the default loop only */
    if (!ctx->loop) {
        fprintf(stderr, "gantry: cannot initialise libev (bad LIBEV_FLAGS in the environment?)\n");
        return 1;
    }
    ctx->policy = (struct child_policy){
        .ready_timeout_ms = up->ready_timeout_ms,
        .stop_timeout_ms = up->stop_timeout_ms,
        .backoff_min_ms = up->restart_backoff_min_ms,
        .backoff_max_ms = up->restart_backoff_max_ms,
        .prefix_width = prefix_width(ctx),
    };
    ctx->hooks = (struct child_hooks){on_child_ready, on_child_exit, on_child_ready_timeout};
    ctx->redis_url =
        up_strf(ctx, "%s", value_format_redis_url(&ctx->cfg.redis.url, url, sizeof url));
    daemon_signals_start(ctx->loop, &ctx->signals, on_stop_signal, NULL, ctx);
    start_next(ctx);
    if (!ctx->done) /* a start may have failed before anything ran: nothing to wait for then */
        ev_run(ctx->loop, 0);
    daemon_signals_stop(ctx->loop, &ctx->signals);
    return ctx->status;
}

static void up_free(struct up_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_children; i++)
        child_free(ctx->children[i]);
    if (ctx->own_redis)
        redis_managed_release(&ctx->redis);
    arena_free(&ctx->arena);
    config_free(&ctx->cfg);
    if (ctx->loop)
        ev_loop_destroy(ctx->loop);
}

int up_main(int argc, char **argv)
{
    static const struct daemon_usage usage = {
        .name = "gantry up",
        .summary = "run the whole stack on this machine, in the foreground",
        .flags = DAEMON_TAKES_REDIS,
        .extra =
            "\nStarts its own redis-server when redis.url is empty, then gantry-core, gantry-lb\n"
            "(when lb.listeners is set), the standalone demo workload (demo.enabled),\n"
            "gantry-metrics and gantry-autoscaler (when autoscaler.scalable_targets is set),\n"
            "each once the previous one is ready; restarts what crashes; Ctrl-C (SIGINT) or\n"
            "SIGTERM stops everything, in reverse order. Without -c it runs its embedded\n"
            "defaults (written to run/gantry-up.yaml): the demo service, two tasks run by\n"
            "gantry-core, behind gantry-lb on http://127.0.0.1:8080/, scaled from 1 to 6 tasks\n"
            "on their CPU by gantry-autoscaler.\n",
    };
    struct up_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        fprintf(stderr, "gantry: out of memory\n");
        return 1;
    }
    int status = daemon_args_parse(argc, argv, &usage, &ctx->args);
    if (status == DAEMON_ARGS_GO_ON && ctx->args.first_operand < argc) {
        fprintf(stderr, "gantry up: unexpected argument '%s' (see gantry up --help)\n",
                argv[ctx->args.first_operand]);
        status = 2;
    }
    if (status == DAEMON_ARGS_GO_ON && ctx->args.n_config_files == 0 && !ctx->args.check &&
        use_embedded_config(ctx) < 0)
        status = 1;
    if (status == DAEMON_ARGS_GO_ON)
        status = config_daemon_start(&ctx->cfg, &ctx->args, "gantry");
    if (status >= 0) { /* done already: help, usage error, --check, or a bad configuration */
        free(ctx);
        return status;
    }
    status = up_run(ctx);
    up_free(ctx);
    free(ctx);
    return status;
}
