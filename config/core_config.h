/* The `core` section: gantry-core's API address, the ARNs' region and account, where tasks run
 * (run directory, host port range, this machine's capacity) and what the core declares at start
 * (clusters, task definitions and services in ECS's own JSON shapes, kept as JSON text for the
 * core to validate with the API's own rules). */
#ifndef GANTRY_CONFIG_CORE_CONFIG_H
#define GANTRY_CONFIG_CORE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/net.h"
#include "config/schema.h"

struct config_core {
    struct net_addr listen;
    const char *region;
    const char *account;
    const char *run_dir;
    int64_t host_port_min, host_port_max;
    int64_t reconcile_interval_ms;
    int64_t stop_timeout_ms;
    int64_t stopped_task_retention_ms;
    int64_t instance_cpu;    /* CPU units; 0: 1024 per core of this machine */
    int64_t instance_memory; /* bytes; 0: this machine's memory */
    bool cgroups;
    const char *docker_socket; /* the Docker Engine API's unix socket (DOCKER tasks) */
    int64_t max_request_size;
    struct cfg_list clusters;         /* const char * */
    struct cfg_list task_definitions; /* struct cfg_json: RegisterTaskDefinition inputs */
    struct cfg_list services;         /* struct cfg_json: CreateService inputs */
    struct cfg_list scheduled_tasks;  /* struct cfg_json: name, scheduleExpression, RunTask's */
};

extern const struct cfg_section core_config_section;

#endif
