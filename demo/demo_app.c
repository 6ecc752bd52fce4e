/* gantry-demo-app's start: settings come from the defaults, then the config file's demo section,
 * then the environment (how `gantry up` and the tests configure a task), then the flags. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/daemon.h"
#include "common/log.h"
#include "config/config.h"
#include "demo/demo.h"

#define PROGRAM "gantry-demo-app"

/* The probe mode's flags (--probe PATH [--port N]), filled by on_option. */
struct probe_args {
    const char *path;
    const char *port;
};

enum { PROBE_PATH_MAX = 2000 };

static const struct daemon_option options[] = {
    {"probe", true,
     "--probe PATH          probe mode: GET http://$HOST:$PORT/PATH once, exit 0 on a 2xx\n"
     "                        answer within 2 s, else 1 with the reason on stderr"},
    {"port", true,
     "--port N              with --probe: the port to probe (default $PORT, else 8080)"},
    {NULL, false, NULL},
};

/* A path sent as is in a request line: '/' first, no spaces or control characters. */
static bool valid_probe_path(const char *path)
{
    size_t n = strlen(path);
    if (path[0] != '/' || n > PROBE_PATH_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)path[i] <= ' ' || (unsigned char)path[i] >= 127)
            return false;
    return true;
}

static int on_option(void *ctx, const struct daemon_option *option, const char *arg)
{
    struct probe_args *probe = ctx;
    if (strcmp(option->name, "probe") == 0) {
        if (!valid_probe_path(arg)) {
            fprintf(stderr,
                    PROGRAM ": --probe '%s': a path such as /health (starting with '/', "
                            "no spaces)\n",
                    arg);
            return -1;
        }
        probe->path = arg;
    } else {
        probe->port = arg;
    }
    return 0;
}

#define USAGE_EXTRA                                                                                \
    "\nenvironment (overrides the config file's demo section; flags override both):\n"             \
    "  PORT        port to serve on (0: any free port), on HOST\n"                                 \
    "  HOST        address to serve on (default 127.0.0.1)\n"                                      \
    "  BODY_SIZE   default response body size, e.g. 16k\n"                                         \
    "  LATENCY     default delay before each response, e.g. 50ms\n"                                \
    "  CPU         default CPU time burnt per request, e.g. 5ms\n"                                 \
    "  TASK_ID     identity sent in X-Task-Id (default $GANTRY_TASK_ID, else demo)\n"              \
    "\nendpoints:\n"                                                                               \
    "  GET /?size=1k&latency=50ms&cpu=5ms   a body of size bytes (query optional)\n"               \
    "  GET /health                          200 ok, or 503 after POST /health/fail\n"              \
    "  POST /health/fail, POST /health/ok   flip the health check\n"                               \
    "  GET|POST /echo                       the request's head and body, as received\n"            \
    "\nprobe mode, a container health check without a shell (HOST and PORT as above):\n"           \
    "  gantry-demo-app --probe /health      exit 0: a 2xx answer within 2 s; 1: anything else\n"

/* The environment's settings, each one only when set and not empty. */
struct env_settings {
    const char *host;
    bool has_port, has_body_size, has_latency, has_cpu;
    int64_t port, body_size, latency_ms, cpu_ms;
    const char *task_id;
};

static const char *env_get(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int env_invalid(const char *name, const char *value, const char *expected)
{
    fprintf(stderr, PROGRAM ": %s='%s' is invalid (expected %s)\n", name, value, expected);
    return -1;
}

static int env_number(const char *name, int (*parse)(const char *, int64_t *), int64_t min,
                      int64_t max, const char *expected, bool *has, int64_t *out)
{
    const char *v = env_get(name);
    if (!v)
        return 0;
    if (parse(v, out) < 0 || *out < min || *out > max)
        return env_invalid(name, v, expected);
    *has = true;
    return 0;
}

static bool valid_task_id(const char *id)
{
    size_t n = strlen(id);
    if (n > DEMO_TASK_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (id[i] <= ' ' || id[i] > '~')
            return false;
    return true;
}

static int read_env(struct env_settings *e)
{
    memset(e, 0, sizeof *e);
    e->host = env_get("HOST");
    e->task_id = env_get("TASK_ID");
    if (!e->task_id) /* set by gantry-core for the tasks it runs */
        e->task_id = env_get("GANTRY_TASK_ID");
    if (env_number("PORT", value_parse_int, 0, 65535, "a port number from 0 to 65535", &e->has_port,
                   &e->port) < 0 ||
        env_number("BODY_SIZE", value_parse_size, 0, DEMO_MAX_BODY_SIZE,
                   "a size such as 512, 16k or 1m, at most 64m", &e->has_body_size,
                   &e->body_size) < 0 ||
        env_number("LATENCY", value_parse_duration_ms, 0, DEMO_MAX_LATENCY_MS,
                   "a duration such as 50ms or 2s, at most 60s", &e->has_latency,
                   &e->latency_ms) < 0 ||
        env_number("CPU", value_parse_duration_ms, 0, DEMO_MAX_CPU_MS,
                   "a duration such as 5ms, at most 10s", &e->has_cpu, &e->cpu_ms) < 0)
        return -1;
    if (e->task_id && !valid_task_id(e->task_id))
        return env_invalid("TASK_ID", e->task_id, "1 to 128 visible ASCII characters");
    return 0;
}

/* HOST and PORT; either alone keeps the other from `base` (127.0.0.1 for the host). */
static int env_listen(const struct env_settings *e, const struct net_addr *base,
                      struct net_addr *out)
{
    const char *host = e->host ? e->host : "127.0.0.1";
    int base_port = net_addr_port(base);
    int64_t port = e->has_port ? e->port : base_port >= 0 ? base_port : 8080;
    char text[NET_ADDR_TEXT_MAX + 16], why[160];
    bool bare_v6 = strchr(host, ':') && host[0] != '[';
    snprintf(text, sizeof text, bare_v6 ? "[%s]:%lld" : "%s:%lld", host, (long long)port);
    if (net_addr_parse(text, out, why, sizeof why) < 0) {
        fprintf(stderr, PROGRAM ": HOST='%s' is invalid: %s\n", host, why);
        return -1;
    }
    return 0;
}

static void apply_env(struct demo_settings *s, const struct env_settings *e)
{
    if (e->has_body_size)
        s->body_size = e->body_size;
    if (e->has_latency)
        s->latency_ms = e->latency_ms;
    if (e->has_cpu)
        s->cpu_ms = e->cpu_ms;
    snprintf(s->task_id, sizeof s->task_id, "%s", e->task_id ? e->task_id : "demo");
}

static void on_stop(void *ctx)
{
    demo_server_stop(ctx);
}

static int serve(const struct demo_settings *settings)
{
    struct ev_loop *loop = EV_DEFAULT;
    static struct demo_server srv; /* holds a parsed request: kept off the stack */
    char err[256], size[32], latency[32], cpu[32];
    if (demo_server_start(&srv, loop, settings, err, sizeof err) < 0) {
        log_error("%s", err);
        return 1;
    }
    struct daemon_signals signals;
    daemon_signals_start(loop, &signals, on_stop, NULL, &srv);
    log_info("task %s: body_size %s, latency %s, cpu %s", settings->task_id,
             value_format_size(settings->body_size, size, sizeof size),
             value_format_duration(settings->latency_ms, latency, sizeof latency),
             value_format_duration(settings->cpu_ms, cpu, sizeof cpu));
    const char *addrs[] = {srv.served_by};
    daemon_ready(addrs, 1);
    ev_run(loop, 0);
    daemon_signals_stop(loop, &signals);
    demo_server_free(&srv);
    log_info("stopped");
    return 0;
}

/* --probe: HOST and PORT from the environment (a task's own), --port over PORT. */
static int probe(const struct probe_args *pa)
{
    const char *host = env_get("HOST"), *port_text = pa->port ? pa->port : env_get("PORT");
    int64_t port = 8080;
    if (port_text && (value_parse_int(port_text, &port) < 0 || port < 1 || port > 65535)) {
        fprintf(stderr, PROGRAM ": probe: %s '%s' is invalid (expected a port from 1 to 65535)\n",
                pa->port ? "--port" : "PORT", port_text);
        return 1;
    }
    return demo_probe(host ? host : "127.0.0.1", (int)port, pa->path);
}

int main(int argc, char **argv)
{
    struct probe_args probe_args = {0};
    const struct daemon_usage usage = {
        .name = PROGRAM,
        .summary = "the demo workload, a small HTTP/1.1 server for tests, demos and benchmarks",
        .flags = DAEMON_TAKES_LISTEN,
        .extra = USAGE_EXTRA,
        .options = options,
        .on_option = on_option,
        .ctx = &probe_args,
    };
    struct daemon_args args;
    int rc = daemon_args_parse(argc, argv, &usage, &args);
    if (rc != DAEMON_ARGS_GO_ON)
        return rc;
    if (args.first_operand < argc) {
        fprintf(stderr, PROGRAM ": unexpected argument '%s' (see --help)\n",
                argv[args.first_operand]);
        return 2;
    }
    if (probe_args.port && !probe_args.path) {
        fprintf(stderr,
                PROGRAM ": --port goes with --probe (to serve on a port: PORT or --listen)\n");
        return 2;
    }
    if (probe_args.path)
        return probe(&probe_args);
    /* Flags and environment are checked before the config so that --check covers them too. */
    struct net_addr flag_listen;
    char why[160];
    if (args.listen && net_addr_parse(args.listen, &flag_listen, why, sizeof why) < 0) {
        fprintf(stderr, PROGRAM ": --listen '%s': %s\n", args.listen, why);
        return 2;
    }
    struct env_settings env;
    if (read_env(&env) < 0)
        return 1;
    struct net_addr env_addr;
    if ((env.host || env.has_port) && env_listen(&env, &(struct net_addr){0}, &env_addr) < 0)
        return 1;

    struct gantry_config cfg;
    rc = config_daemon_start(&cfg, &args, PROGRAM);
    if (rc >= 0)
        return rc;
    struct demo_settings settings = {
        .listen = cfg.demo.listen,
        .body_size = cfg.demo.body_size,
        .latency_ms = cfg.demo.latency_ms,
        .cpu_ms = cfg.demo.cpu_ms,
    };
    if (env.host || env.has_port)
        env_listen(&env, &cfg.demo.listen, &settings.listen);
    config_free(&cfg);
    apply_env(&settings, &env);
    if (args.listen)
        settings.listen = flag_listen;
    return serve(&settings);
}
