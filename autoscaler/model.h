/* The autoscaler's model, read from the configuration (autoscaler.scalable_targets, .policies,
 * .scheduled_actions) in Application Auto Scaling's own shapes (RegisterScalableTarget,
 * PutScalingPolicy, PutScheduledAction inputs), so a policy JSON from the AWS documentation works
 * unchanged. Parsing is pure (model.c): every error names its file:line:col and the member.
 *
 * Gantry's own evaluation settings (autoscaler.period, ...) are in struct as_settings. */
#ifndef GANTRY_AUTOSCALER_MODEL_H
#define GANTRY_AUTOSCALER_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/schedule.h"
#include "config/config.h"
#include "metrics/store.h"

enum {
    AS_NAME_MAX = 256,
    AS_MAX_DIMENSIONS = 10,
    AS_MAX_STEPS = 20,
    AS_MAX_POINTS = 64, /* datapoints kept per policy: enough for every window used */
};

/* A metric as CloudWatch names it; `series` is the metric store's id ("NS|Name|K=V,...",
 * metrics/series.h), built by the parser. */
struct as_metric {
    char series[1024];
    struct metric_stat stat;
    /* ALBRequestCountPerTarget (and any Sum of RequestCountPerTarget): AWS counts requests per
     * minute; Gantry's shorter periods scale the Sum to a per-minute rate */
    bool per_minute;
};

struct as_target {
    char resource_id[AS_NAME_MAX]; /* "service/CLUSTER/SERVICE" */
    char cluster[AS_NAME_MAX], service[AS_NAME_MAX];
    int min_capacity, max_capacity; /* as configured */
    bool in_suspended, out_suspended, scheduled_suspended;
};

enum as_policy_type { AS_TARGET_TRACKING, AS_STEP };
enum as_adjustment { AS_CHANGE_IN_CAPACITY, AS_PERCENT_CHANGE_IN_CAPACITY, AS_EXACT_CAPACITY };
enum as_comparison { AS_GT, AS_GTE, AS_LT, AS_LTE };
enum as_aggregation { AS_AGG_AVERAGE, AS_AGG_MINIMUM, AS_AGG_MAXIMUM };

struct as_step {
    bool has_lower, has_upper; /* MetricIntervalLowerBound / UpperBound, relative to Threshold */
    double lower, upper;
    int scaling_adjustment;
};

struct as_alarm { /* the CloudWatch alarm a step policy is attached to ("Alarm": PutMetricAlarm) */
    char name[AS_NAME_MAX];
    struct as_metric metric;
    double threshold;
    enum as_comparison comparison;
    int evaluation_periods;  /* N */
    int datapoints_to_alarm; /* M (default N) */
    int64_t period_ms;       /* the alarm's Period (default: autoscaler.period) */
};

struct as_policy {
    char name[AS_NAME_MAX];
    char resource_id[AS_NAME_MAX];
    enum as_policy_type type;
    /* target tracking */
    double target_value;
    struct as_metric metric;
    int64_t scale_out_cooldown_ms, scale_in_cooldown_ms; /* AWS's default 300 s for ECS */
    bool disable_scale_in;
    /* step */
    enum as_adjustment adjustment;
    struct as_step steps[AS_MAX_STEPS];
    int n_steps;
    int64_t cooldown_ms;
    enum as_aggregation aggregation;
    int min_adjustment_magnitude; /* 0: none */
    struct as_alarm alarm;
};

struct as_scheduled_action {
    char name[AS_NAME_MAX];
    char resource_id[AS_NAME_MAX];
    char schedule_text[300];
    struct schedule schedule;
    char timezone[64];
    int64_t start_s, end_s; /* StartTime / EndTime (Unix seconds; 0: none) */
    bool has_min, has_max;
    int min_capacity, max_capacity;
};

/* Gantry's evaluation settings (autoscaler.* keys, documented in config/README.md). */
struct as_settings {
    int64_t period_ms;          /* one datapoint per period */
    int scale_out_datapoints;   /* M of ... */
    int scale_out_periods;      /* ... N periods above the target */
    int scale_in_datapoints;    /* consecutive periods below the target to scale in */
    double scale_in_tolerance;  /* below target * (1 - this) counts as below */
    double scale_out_tolerance; /* above target * (1 + this) counts as above */
};

struct as_model {
    struct as_target *targets;
    size_t n_targets;
    struct as_policy *policies;
    size_t n_policies;
    struct as_scheduled_action *actions;
    size_t n_actions;
};

/* Builds the model from the autoscaler section; errors are "file:line:col: 'autoscaler.policies[0]
 * ': TargetTrackingScalingPolicyConfiguration.TargetValue: ..." (up to the errors' limit). A
 * policy or action naming a ResourceId that no scalable target registers is an error, as AWS's
 * ObjectNotFoundException. 0 or -1. */
struct config_autoscaler;
int as_model_load(const struct config_autoscaler *cfg, struct as_model *out,
                  struct cfg_errors *errors);
void as_model_free(struct as_model *m);
void as_settings_from(const struct config_autoscaler *cfg, struct as_settings *out);

#endif
