/* The `autoscaler` section: where gantry-autoscaler finds the ECS API, Gantry's evaluation
 * settings, and the scalable targets, policies and scheduled actions in Application Auto
 * Scaling's own JSON shapes (kept as JSON text; autoscaler/model.c validates them). */
#ifndef GANTRY_CONFIG_AUTOSCALER_CONFIG_H
#define GANTRY_CONFIG_AUTOSCALER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "config/schema.h"

struct config_autoscaler {
    const char *ecs_endpoint; /* the ECS API: gantry-core, or real Amazon ECS */
    const char *region;       /* for SigV4 */
    bool sigv4;               /* sign requests (credentials from AWS_ACCESS_KEY_ID, ...) */
    int64_t period_ms;
    int64_t scale_out_datapoints, scale_out_periods, scale_in_datapoints;
    int64_t scale_out_tolerance, scale_in_tolerance; /* percent */
    struct cfg_list scalable_targets;  /* struct cfg_json: RegisterScalableTarget inputs */
    struct cfg_list policies;          /* struct cfg_json: PutScalingPolicy inputs (+ Alarm) */
    struct cfg_list scheduled_actions; /* struct cfg_json: PutScheduledAction inputs */
};

extern const struct cfg_section autoscaler_config_section;

#endif
