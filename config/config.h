/* Gantry's configuration: one schema for every daemon, so one file can hold every component's
 * section and each daemon validates all of it. Files are applied in order over the built-in
 * defaults: a later file's keys override an earlier one's, sections merge key by key, and a list
 * is replaced whole. Loading never touches a running configuration: reload loads into a new
 * struct and swaps only on success. Every key is documented in config/README.md. */
#ifndef GANTRY_CONFIG_CONFIG_H
#define GANTRY_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/arena.h"
#include "common/daemon.h"
#include "common/net.h"
#include "config/autoscaler_config.h"
#include "config/core_config.h"
#include "config/lb_config.h"
#include "config/metrics_config.h"
#include "config/schema.h"
#include "config/values.h"

struct config_log {
    int level; /* enum log_level */
};

struct config_redis {
    struct redis_url url; /* not set: `gantry up` runs its own redis-server */
    int64_t connect_timeout_ms;
};

struct config_up {
    const char *run_dir;
    const char *redis_server;
    int64_t ready_timeout_ms;
    int64_t stop_timeout_ms;
    int64_t restart_backoff_min_ms;
    int64_t restart_backoff_max_ms;
};

struct config_demo {
    bool enabled;
    struct net_addr listen;
    int64_t body_size;
    int64_t latency_ms;
    int64_t cpu_ms;
};

struct gantry_config {
    struct arena arena;
    struct config_log log;
    struct config_redis redis;
    struct config_up up;
    struct config_demo demo;
    struct config_lb lb;
    struct config_core core;
    struct config_metrics metrics;
    struct config_autoscaler autoscaler;
};

const struct cfg_section *config_schema(void);

/* Defaults, then each file in order. Returns 0, or -1 with errors (cfg is then to be freed). */
int config_load(struct gantry_config *cfg, const char *const *files, size_t n_files,
                struct cfg_errors *errors);
/* config_load() with the files of -c, then the --redis and --log-level overrides. */
int config_load_args(struct gantry_config *cfg, const struct daemon_args *args,
                     struct cfg_errors *errors);
void config_free(struct gantry_config *cfg);
/* A command-line address (--listen, --admin) over the configuration's: 0, or -1 with the error
 * "command line: FLAG 'TEXT': why" added to errors. A NULL text changes nothing. */
int config_addr_override(struct cfg_errors *errors, const char *flag, const char *text,
                         struct net_addr *dst);
void config_print_errors(const struct cfg_errors *errors, FILE *out);
/* The errors of a refused reload, each logged as "reload refused: ERROR", then that the running
 * configuration stays. */
void config_log_refused_reload(const struct cfg_errors *errors);

/* The common start of every daemon: loads the configuration from args, and for --check prints
 * "configuration OK" or the errors. Returns -1 to go on (cfg loaded, logging set up), else the
 * exit status (0 or 1). */
int config_daemon_start(struct gantry_config *cfg, const struct daemon_args *args,
                        const char *component);

#endif
