#include "config/metrics_config.h"

#include <stddef.h>

static const struct cfg_key metrics_keys[] = {
    {"retention", CFG_DURATION, offsetof(struct config_metrics, retention_ms), "1h", 60000,
     604800000, .help = "how long 1-second datapoints are kept"},
    {"rollup_retention", CFG_DURATION, offsetof(struct config_metrics, rollup_retention_ms), "1d",
     3600000, 31536000000, .help = "how long 1-minute rollups are kept (for longer windows)"},
    {"admin", CFG_ADDR, offsetof(struct config_metrics, admin), "127.0.0.1:9902",
     .help = "gantry-metrics' admin listener: the latest values in Prometheus text on /metrics"},
    {"sample_interval", CFG_DURATION, offsetof(struct config_metrics, sample_interval_ms), "1s",
     100, 60000, .help = "how often gantry-metrics samples every running task"},
};

static void check_metrics(struct cfg_ctx *ctx, void *obj, const struct ynode *map, const char *path)
{
    (void)path;
    const struct config_metrics *m = obj;
    if (m->rollup_retention_ms < m->retention_ms)
        cfg_error_at_key(ctx, map, "rollup_retention",
                         "'metrics.rollup_retention' is shorter than 'metrics.retention' "
                         "(expected rollups kept at least as long)");
}

const struct cfg_section metrics_config_section = {"metrics", CFG_KEYS(metrics_keys),
                                                   sizeof(struct config_metrics), check_metrics};
