#include "config/autoscaler_config.h"

#include <stddef.h>

#define LIST_OF(type) .elem_type = (type)

/* The defaults meet the reaction goals of docs/autoscaler.md: a load step is acted on within two
 * 5-second datapoints, a scale-in waits a minute of low datapoints, and noise within 10 % of the
 * target never moves the service. */
static const struct cfg_key autoscaler_keys[] = {
    {"ecs_endpoint", CFG_STRING, offsetof(struct config_autoscaler, ecs_endpoint),
     "http://127.0.0.1:9300", .max = 500,
     .help = "the ECS API the autoscaler drives (gantry-core, or Amazon ECS with sigv4)"},
    {"region", CFG_STRING, offsetof(struct config_autoscaler, region), "us-east-1", .max = 32,
     .help = "region for request signing"},
    {"sigv4", CFG_BOOL, offsetof(struct config_autoscaler, sigv4), "false",
     .help = "sign requests with AWS SigV4 (credentials from AWS_ACCESS_KEY_ID, "
             "AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)"},
    {"period", CFG_DURATION, offsetof(struct config_autoscaler, period_ms), "5s", 1000, 300000,
     .help = "the datapoint period: policies are evaluated once per period on its statistic"},
    {"scale_out_datapoints", CFG_INT, offsetof(struct config_autoscaler, scale_out_datapoints), "2",
     1, 60,
     .help = "target tracking scales out when this many of the last "
             "scale_out_periods datapoints are above the target"},
    {"scale_out_periods", CFG_INT, offsetof(struct config_autoscaler, scale_out_periods), "2", 1,
     60, .help = "the datapoints looked at for a scale-out"},
    {"scale_in_datapoints", CFG_INT, offsetof(struct config_autoscaler, scale_in_datapoints), "12",
     1, 60,
     .help = "target tracking scales in after this many datapoints in a row below the target"},
    {"scale_out_tolerance", CFG_INT, offsetof(struct config_autoscaler, scale_out_tolerance), "10",
     0, 100,
     .help = "percent above the target a datapoint must be to count as above (noise margin)"},
    {"scale_in_tolerance", CFG_INT, offsetof(struct config_autoscaler, scale_in_tolerance), "10", 0,
     100, .help = "percent below the target a datapoint must be to count as below"},
    {"scalable_targets", CFG_LIST, offsetof(struct config_autoscaler, scalable_targets), NULL,
     LIST_OF(CFG_JSON), .max_items = 100,
     .help = "scalable targets in RegisterScalableTarget's format (ResourceId "
             "service/CLUSTER/SERVICE, MinCapacity, MaxCapacity, SuspendedState)"},
    {"policies", CFG_LIST, offsetof(struct config_autoscaler, policies), NULL, LIST_OF(CFG_JSON),
     .max_items = 100,
     .help = "scaling policies in PutScalingPolicy's format (TargetTrackingScaling, or "
             "StepScaling with its Alarm)"},
    {"scheduled_actions", CFG_LIST, offsetof(struct config_autoscaler, scheduled_actions), NULL,
     LIST_OF(CFG_JSON), .max_items = 200,
     .help = "scheduled actions in PutScheduledAction's format (Schedule at()/rate()/cron(), "
             "Timezone, ScalableTargetAction)"},
};

static void check_autoscaler(struct cfg_ctx *ctx, void *obj, const struct ynode *map,
                             const char *path)
{
    (void)path;
    const struct config_autoscaler *a = obj;
    if (a->scale_out_datapoints > a->scale_out_periods)
        cfg_error_at_key(ctx, map, "scale_out_datapoints",
                         "'autoscaler.scale_out_datapoints' is more than "
                         "'autoscaler.scale_out_periods' (expected M of N with M <= N)");
}

const struct cfg_section autoscaler_config_section = {
    "autoscaler", CFG_KEYS(autoscaler_keys), sizeof(struct config_autoscaler), check_autoscaler};
