#include "config/core_config.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>

#define LIST_OF(type) .elem_type = (type)

static const struct cfg_key core_keys[] = {
    {"listen", CFG_ADDR, offsetof(struct config_core, listen), "127.0.0.1:9300",
     .help = "address of the ECS-compatible API (loopback: it has no authentication)"},
    {"region", CFG_STRING, offsetof(struct config_core, region), "us-east-1", .max = 32,
     .help = "region written in ARNs"},
    {"account", CFG_STRING, offsetof(struct config_core, account), "000000000000", .max = 12,
     .help = "account id written in ARNs (12 digits)"},
    {"run_dir", CFG_STRING, offsetof(struct config_core, run_dir), "run", .max = 200,
     .help = "directory holding tasks' work directories and logs (run_dir/tasks/ID)"},
    {"host_port_min", CFG_INT, offsetof(struct config_core, host_port_min), "20000", 1, 65535,
     .help = "first host port given to a containerPort without a hostPort"},
    {"host_port_max", CFG_INT, offsetof(struct config_core, host_port_max), "29999", 1, 65535,
     .help = "last host port of that range"},
    {"reconcile_interval", CFG_DURATION, offsetof(struct config_core, reconcile_interval_ms), "1s",
     50, 60000,
     .help = "how often the scheduler compares services with their tasks (it also runs after "
             "every change)"},
    {"stop_timeout", CFG_DURATION, offsetof(struct config_core, stop_timeout_ms), "30s", 0, 120000,
     .help = "time between SIGTERM and SIGKILL for a container without stopTimeout (ECS's "
             "default)"},
    {"stopped_task_retention", CFG_DURATION,
     offsetof(struct config_core, stopped_task_retention_ms), "1h", 1000, 86400000,
     .help = "how long a STOPPED task stays visible to DescribeTasks and ListTasks"},
    {"instance_cpu", CFG_INT, offsetof(struct config_core, instance_cpu), "0", 0, 1048576,
     .help = "CPU units this machine offers to tasks; 0: 1024 per core"},
    {"instance_memory", CFG_SIZE, offsetof(struct config_core, instance_memory), "0", 0,
     INT64_C(1) << 50, .help = "memory this machine offers to tasks; 0: all of it"},
    {"cgroups", CFG_BOOL, offsetof(struct config_core, cgroups), "true",
     .help = "enforce tasks' cpu and memory with cgroups (v1 or v2) where the kernel allows; "
             "else rlimits and a warning"},
    {"docker_socket", CFG_STRING, offsetof(struct config_core, docker_socket),
     "/var/run/docker.sock", .max = 200,
     .help = "unix socket of the Docker Engine API, for DOCKER tasks"},
    {"max_request_size", CFG_SIZE, offsetof(struct config_core, max_request_size), "256k", 33000,
     16 * 1024 * 1024, .help = "largest API request body accepted"},
    {"clusters", CFG_LIST, offsetof(struct config_core, clusters), NULL, LIST_OF(CFG_STRING),
     .max_items = 100, .help = "clusters created at start if missing"},
    {"task_definitions", CFG_LIST, offsetof(struct config_core, task_definitions), NULL,
     LIST_OF(CFG_JSON), .max_items = 100,
     .help = "task definitions in ECS's RegisterTaskDefinition format, registered at start "
             "unless the family's latest revision is the same"},
    {"services", CFG_LIST, offsetof(struct config_core, services), NULL, LIST_OF(CFG_JSON),
     .max_items = 100,
     .help = "services in ECS's CreateService format (cluster, serviceName, taskDefinition, "
             "desiredCount, loadBalancers), created at start or updated to this"},
    {"scheduled_tasks", CFG_LIST, offsetof(struct config_core, scheduled_tasks), NULL,
     LIST_OF(CFG_JSON), .max_items = 100,
     .help = "tasks run on a schedule (name, scheduleExpression rate()/cron()/at(), timezone, "
             "state, and RunTask's cluster, taskDefinition, count, launchType, overrides)"},
};

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
            return false;
    return true;
}

static void check_core(struct cfg_ctx *ctx, void *obj, const struct ynode *map, const char *path)
{
    (void)path;
    const struct config_core *core = obj;
    if (core->host_port_min > core->host_port_max)
        cfg_error_at_key(ctx, map, "host_port_min",
                         "'core.host_port_min' is above 'core.host_port_max' (expected min <= "
                         "max)");
    size_t n = strlen(core->account);
    bool digits = n == 12;
    for (size_t i = 0; digits && i < n; i++)
        digits = isdigit((unsigned char)core->account[i]);
    if (!digits)
        cfg_error_at_key(ctx, map, "account",
                         "invalid value '%s' for 'core.account' (expected 12 digits)",
                         core->account);
    bool region_ok = core->region[0] != '\0';
    for (const char *p = core->region; region_ok && *p; p++)
        region_ok = islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-';
    if (!region_ok)
        cfg_error_at_key(ctx, map, "region",
                         "invalid value '%s' for 'core.region' (expected lower-case letters, "
                         "digits and dashes, such as us-east-1)",
                         core->region);
    const char *const *clusters = core->clusters.items;
    for (size_t i = 0; i < core->clusters.count; i++)
        if (!valid_name(clusters[i]))
            cfg_error(ctx, cfg_find_value(map, "clusters"),
                      "invalid cluster name '%.64s' in 'core.clusters' (expected 1 to 255 "
                      "letters, digits, '-' and '_')",
                      clusters[i]);
}

const struct cfg_section core_config_section = {"core", CFG_KEYS(core_keys),
                                                sizeof(struct config_core), check_core};
