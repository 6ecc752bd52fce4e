#include "config/config.h"

#include <stddef.h>
#include <string.h>

#include "common/log.h"

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

static const struct cfg_key log_keys[] = {
    {"level", CFG_ENUM, offsetof(struct config_log, level), "info", .choices = log_levels,
     .help = "least severe level logged"},
};

static const struct cfg_key redis_keys[] = {
    {"url", CFG_REDIS_URL, offsetof(struct config_redis, url), NULL,
     .help = "the cluster's Redis; empty: `gantry up` starts its own, daemons use "
             "redis://127.0.0.1:6379"},
    {"connect_timeout", CFG_DURATION, offsetof(struct config_redis, connect_timeout_ms), "2s", 100,
     60000, .help = "time allowed to connect to Redis"},
};

static const struct cfg_key up_keys[] = {
    {"run_dir", CFG_STRING, offsetof(struct config_up, run_dir), "run", .max = 200,
     .help = "directory for the managed Redis's data and sockets (relative to the working "
             "directory)"},
    {"redis_server", CFG_STRING, offsetof(struct config_up, redis_server), "redis-server",
     .max = 200, .help = "redis-server program started when redis.url is empty"},
    {"ready_timeout", CFG_DURATION, offsetof(struct config_up, ready_timeout_ms), "10s", 100,
     600000, .help = "time a program has to report ready before `gantry up` gives up"},
    {"stop_timeout", CFG_DURATION, offsetof(struct config_up, stop_timeout_ms), "10s", 0, 600000,
     .help = "time a program has to exit after SIGTERM before it is killed"},
    {"restart_backoff_min", CFG_DURATION, offsetof(struct config_up, restart_backoff_min_ms),
     "500ms", 10, 600000, .help = "delay before restarting a crashed program; doubles per crash"},
    {"restart_backoff_max", CFG_DURATION, offsetof(struct config_up, restart_backoff_max_ms), "30s",
     10, 3600000, .help = "longest delay between restarts"},
};

static const struct cfg_key demo_keys[] = {
    {"enabled", CFG_BOOL, offsetof(struct config_demo, enabled), "true",
     .help = "whether `gantry up` runs the demo workload"},
    {"listen", CFG_ADDR, offsetof(struct config_demo, listen), "127.0.0.1:8080",
     .help = "address the demo workload serves on"},
    {"body_size", CFG_SIZE, offsetof(struct config_demo, body_size), "16", 0, 64 * 1024 * 1024,
     .help = "default response body size"},
    {"latency", CFG_DURATION, offsetof(struct config_demo, latency_ms), "0s", 0, 60000,
     .help = "default delay added to each response"},
    {"cpu", CFG_DURATION, offsetof(struct config_demo, cpu_ms), "0s", 0, 10000,
     .help = "default CPU time burnt per request"},
};

static void check_up(struct cfg_ctx *ctx, void *obj, const struct ynode *map, const char *path)
{
    (void)path;
    const struct config_up *up = obj;
    if (up->restart_backoff_min_ms > up->restart_backoff_max_ms)
        cfg_error_at_key(ctx, map, "restart_backoff_min",
                         "'up.restart_backoff_min' is longer than 'up.restart_backoff_max' "
                         "(expected min <= max)");
}

static const struct cfg_section log_section = {"log", CFG_KEYS(log_keys),
                                               sizeof(struct config_log)};
static const struct cfg_section redis_section = {"redis", CFG_KEYS(redis_keys),
                                                 sizeof(struct config_redis)};
static const struct cfg_section up_section = {"up", CFG_KEYS(up_keys), sizeof(struct config_up),
                                              check_up};
static const struct cfg_section demo_section = {"demo", CFG_KEYS(demo_keys),
                                                sizeof(struct config_demo)};

/* Every component's section is listed here; a new component adds its line. */
static const struct cfg_key root_keys[] = {
    {"log", CFG_SECTION, offsetof(struct gantry_config, log), .section = &log_section,
     .help = "logging of every daemon"},
    {"redis", CFG_SECTION, offsetof(struct gantry_config, redis), .section = &redis_section,
     .help = "the cluster's key/value store"},
    {"up", CFG_SECTION, offsetof(struct gantry_config, up), .section = &up_section,
     .help = "`gantry up`, the one-machine supervisor"},
    {"demo", CFG_SECTION, offsetof(struct gantry_config, demo), .section = &demo_section,
     .help = "the demo workload run by `gantry up`"},
    {"lb", CFG_SECTION, offsetof(struct gantry_config, lb), .section = &lb_config_section,
     .help = "gantry-lb, the L7 load balancer"},
    {"core", CFG_SECTION, offsetof(struct gantry_config, core), .section = &core_config_section,
     .help = "gantry-core, the ECS-compatible orchestration core"},
    {"metrics", CFG_SECTION, offsetof(struct gantry_config, metrics),
     .section = &metrics_config_section, .help = "the metric store and gantry-metrics"},
    {"autoscaler", CFG_SECTION, offsetof(struct gantry_config, autoscaler),
     .section = &autoscaler_config_section, .help = "gantry-autoscaler, scaling services"},
};

static const struct cfg_section root_section = {"", CFG_KEYS(root_keys),
                                                sizeof(struct gantry_config)};

const struct cfg_section *config_schema(void)
{
    return &root_section;
}

static int load(struct gantry_config *cfg, const char *const *files, size_t n_files,
                const char *text_name, const char *text, struct cfg_errors *errors)
{
    memset(errors, 0, sizeof *errors);
    struct arena arena = {0};
    struct cfg_ctx ctx = {.arena = &arena, .file = "(defaults)", .errors = errors};
    cfg_apply_defaults(&ctx, &root_section, cfg);
    for (size_t i = 0; i < n_files; i++) {
        ctx.file = files[i];
        cfg_bind_file(&ctx, &root_section, cfg);
    }
    if (text) {
        ctx.file = text_name;
        cfg_bind_text(&ctx, &root_section, cfg, text, strlen(text));
    }
    if (errors->count == 0) /* what spans files is checked once they are all merged */
        lb_config_validate(&ctx, &cfg->lb);
    cfg->arena = arena; /* defaults wiped the struct, arena included */
    return errors->count ? -1 : 0;
}

int config_addr_override(struct cfg_errors *errors, const char *flag, const char *text,
                         struct net_addr *dst)
{
    char why[160];
    if (!text || net_addr_parse(text, dst, why, sizeof why) == 0)
        return 0;
    struct cfg_ctx ctx = {.file = "command line", .errors = errors};
    cfg_error(&ctx, NULL, "%s '%.64s': %s", flag, text, why);
    return -1;
}

int config_load(struct gantry_config *cfg, const char *const *files, size_t n_files,
                struct cfg_errors *errors)
{
    return load(cfg, files, n_files, NULL, NULL, errors);
}

static int apply_overrides(struct gantry_config *cfg, const struct daemon_args *args,
                           struct cfg_errors *errors)
{
    char why[160];
    struct cfg_ctx ctx = {.arena = &cfg->arena, .file = "command line", .errors = errors};
    if (args->redis_url &&
        value_parse_redis_url(args->redis_url, &cfg->redis.url, why, sizeof why) < 0)
        cfg_error(&ctx, NULL,
                  "--redis '%s': %s (expected a Redis URL such as "
                  "redis://127.0.0.1:6379 or unix:/path/redis.sock)",
                  args->redis_url, why);
    enum log_level level;
    if (args->log_level) {
        if (log_level_parse(args->log_level, &level) < 0)
            cfg_error(&ctx, NULL, "--log-level '%s' (expected one of: debug, info, warn, error)",
                      args->log_level);
        else
            cfg->log.level = (int)level;
    }
    return errors->count ? -1 : 0;
}

int config_load_args(struct gantry_config *cfg, const struct daemon_args *args,
                     struct cfg_errors *errors)
{
    if (load(cfg, args->config_files, args->n_config_files, args->extra_config_name,
             args->extra_config, errors) < 0)
        return -1;
    return apply_overrides(cfg, args, errors);
}

void config_free(struct gantry_config *cfg)
{
    arena_free(&cfg->arena);
}

void config_print_errors(const struct cfg_errors *errors, FILE *out)
{
    for (size_t i = 0; i < errors->count; i++)
        fprintf(out, "%s\n", errors->messages[i]);
    if (errors->dropped)
        fprintf(out, "(%zu more errors not shown)\n", errors->dropped);
}

int config_daemon_start(struct gantry_config *cfg, const struct daemon_args *args,
                        const char *component)
{
    struct cfg_errors errors;
    int failed = config_load_args(cfg, args, &errors) < 0;
    if (args->check) {
        if (failed)
            config_print_errors(&errors, stderr);
        else
            printf("configuration OK\n");
        config_free(cfg);
        return failed ? 1 : 0;
    }
    if (failed) {
        config_print_errors(&errors, stderr);
        config_free(cfg);
        return 1;
    }
    log_init(component, (enum log_level)cfg->log.level);
    return -1;
}

void config_log_refused_reload(const struct cfg_errors *errors)
{
    for (size_t i = 0; i < errors->count; i++)
        log_error("reload refused: %s", errors->messages[i]);
    log_error("reload refused: the running configuration stays");
}
