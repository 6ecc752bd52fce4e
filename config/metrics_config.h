/* The `metrics` section: how long the metric store keeps datapoints (read by every writer and
 * reader of metrics, since writers set the keys' expiry) and gantry-metrics' own settings. */
#ifndef GANTRY_CONFIG_METRICS_CONFIG_H
#define GANTRY_CONFIG_METRICS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/net.h"
#include "config/schema.h"

struct config_metrics {
    int64_t retention_ms;        /* 1-second datapoints */
    int64_t rollup_retention_ms; /* 1-minute rollups */
    struct net_addr admin;       /* gantry-metrics: Prometheus text on /metrics */
    int64_t sample_interval_ms;  /* gantry-metrics: how often tasks are sampled */
};

extern const struct cfg_section metrics_config_section;

#endif
