/* The autoscaler's model: the JSON examples of Application Auto Scaling's documentation (the
 * put-scaling-policy, register-scalable-target and put-scheduled-action examples of the API
 * reference and the AWS CLI) parse unchanged into the series and settings they mean; every bad
 * input is refused with its exact message and the item's file:line:col. JSON in the tables is
 * written with ' for ". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "autoscaler/model.h"
#include "config/autoscaler_config.h"
#include "metrics/series.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The scalable target of the AWS examples, registered in every case below unless replaced. */
#define WEB_APP                                                                                    \
    "{'ServiceNamespace':'ecs','ResourceId':'service/default/web-app',"                            \
    "'ScalableDimension':'ecs:service:DesiredCount','MinCapacity':1,'MaxCapacity':10}"
/* A policy head for service/default/web-app. */
#define HEAD(name, type)                                                                           \
    "'PolicyName':'" name "','ServiceNamespace':'ecs','ResourceId':'service/default/web-app',"     \
    "'ScalableDimension':'ecs:service:DesiredCount','PolicyType':'" type "'"
#define TT(config)                                                                                 \
    "{" HEAD("cpu", "TargetTrackingScaling") ",'TargetTrackingScalingPolicyConfiguration':" config \
                                             "}"
#define CPU75                                                                                      \
    "{'TargetValue':75.0,'PredefinedMetricSpecification':{'PredefinedMetricType':'"                \
    "ECSServiceAverageCPUUtilization'}}"
#define ALARM                                                                                      \
    "'Alarm':{'AlarmName':'web-app-cpu-gt-75','MetricName':'CPUUtilization','Namespace':'AWS/"     \
    "ECS',"                                                                                        \
    "'Dimensions':[{'Name':'ClusterName','Value':'default'},{'Name':'ServiceName','Value':'web-"   \
    "app'}],"                                                                                      \
    "'Statistic':'Average','Period':60,'EvaluationPeriods':3,'Threshold':75,"                      \
    "'ComparisonOperator':'GreaterThanThreshold'}"
#define STEP(config)                                                                               \
    "{" HEAD("step", "StepScaling") ",'StepScalingPolicyConfiguration':" config "," ALARM "}"
#define STEPS(steps) STEP("{'AdjustmentType':'ChangeInCapacity','StepAdjustments':[" steps "]}")
#define ACTION(extra)                                                                              \
    "{'ScheduledActionName':'morning','ServiceNamespace':'ecs','ResourceId':'service/default/"     \
    "web-app',"                                                                                    \
    "'ScalableDimension':'ecs:service:DesiredCount','Schedule':'cron(0 8 * * ? *)'" extra "}"
#define ACTION_MIN ",'ScalableTargetAction':{'MinCapacity':3}"

enum list { TARGETS, POLICIES, ACTIONS };

/* ---- Helpers ----------------------------------------------------------------------------- */

static char *json_q(const char *text)
{
    char *s = strdup(text);
    assert_non_null(s);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    return s;
}

struct fixture {
    struct config_autoscaler cfg;
    struct cfg_json targets[2], policies[2], actions[1];
};

/* The configuration's defaults, WEB_APP as its target, and `text` as item 0 of `list` (the
 * replaced target when list is TARGETS), at as.yaml:LINE:5 where LINE is 10 + the list. */
static void fixture_init(struct fixture *f, enum list list, const char *text)
{
    memset(f, 0, sizeof *f);
    f->cfg.period_ms = 5000;
    f->cfg.scale_out_datapoints = f->cfg.scale_out_periods = 2;
    f->cfg.scale_in_datapoints = 12;
    f->cfg.scale_out_tolerance = f->cfg.scale_in_tolerance = 10;
    f->targets[0] = (struct cfg_json){json_q(list == TARGETS ? text : WEB_APP), {"as.yaml", 10, 5}};
    f->cfg.scalable_targets = (struct cfg_list){f->targets, 1};
    if (list == POLICIES) {
        f->policies[0] = (struct cfg_json){json_q(text), {"as.yaml", 11, 5}};
        f->cfg.policies = (struct cfg_list){f->policies, 1};
    }
    if (list == ACTIONS) {
        f->actions[0] = (struct cfg_json){json_q(text), {"as.yaml", 12, 5}};
        f->cfg.scheduled_actions = (struct cfg_list){f->actions, 1};
    }
}

static void fixture_free(struct fixture *f)
{
    free((char *)f->targets[0].text);
    free((char *)f->targets[1].text);
    free((char *)f->policies[0].text);
    free((char *)f->policies[1].text);
    free((char *)f->actions[0].text);
}

static void load_ok(enum list list, const char *text, struct as_model *m)
{
    struct fixture f;
    struct cfg_errors errors = {0};
    fixture_init(&f, list, text);
    int rc = as_model_load(&f.cfg, m, &errors);
    if (rc != 0)
        fail_msg("refused: %s\n  %s", errors.messages[0], text);
    fixture_free(&f);
}

/* ---- Good inputs: AWS's examples --------------------------------------------------------- */

struct good_policy {
    const char *what, *json;
    enum as_policy_type type;
    const char *series;
    enum metric_stat_kind stat;
    bool per_minute;
    double target;
    int64_t out_cooldown_ms, in_cooldown_ms;
};

static const struct good_policy good_policies[] = {
    {"put-scaling-policy example 1: CPU at 75 %, cooldowns of 60 s",
     TT("{'TargetValue':75.0,'PredefinedMetricSpecification':{'PredefinedMetricType':"
        "'ECSServiceAverageCPUUtilization'},'ScaleOutCooldown':60,'ScaleInCooldown':60}"),
     AS_TARGET_TRACKING, "AWS/ECS|CPUUtilization|ClusterName=default,ServiceName=web-app",
     METRIC_AVERAGE, false, 75.0, 60000, 60000},
    {"cooldowns default to 300 s for ECS", TT(CPU75), AS_TARGET_TRACKING,
     "AWS/ECS|CPUUtilization|ClusterName=default,ServiceName=web-app", METRIC_AVERAGE, false, 75.0,
     300000, 300000},
    {"memory",
     TT("{'TargetValue':50,'PredefinedMetricSpecification':{'PredefinedMetricType':"
        "'ECSServiceAverageMemoryUtilization'},'DisableScaleIn':true}"),
     AS_TARGET_TRACKING, "AWS/ECS|MemoryUtilization|ClusterName=default,ServiceName=web-app",
     METRIC_AVERAGE, false, 50.0, 300000, 300000},
    {"ALBRequestCountPerTarget with AWS's ResourceLabel",
     TT("{'TargetValue':1000.0,'PredefinedMetricSpecification':{'PredefinedMetricType':"
        "'ALBRequestCountPerTarget','ResourceLabel':'app/EC2Co-EcsEl-1TKLTMITMM0EO/"
        "f37c06a68c1748aa/targetgroup/EC2Co-Defau-LDNM7Q3ZH1ZN/6d4ea56ca2d6a18d'}}"),
     AS_TARGET_TRACKING,
     "AWS/ApplicationELB|RequestCountPerTarget|LoadBalancer=EC2Co-EcsEl-1TKLTMITMM0EO,"
     "TargetGroup=EC2Co-Defau-LDNM7Q3ZH1ZN",
     METRIC_SUM, true, 1000.0, 300000, 300000},
    {"ALBRequestCountPerTarget naming a gantry-lb target group",
     TT("{'TargetValue':600,'PredefinedMetricSpecification':{'PredefinedMetricType':"
        "'ALBRequestCountPerTarget','ResourceLabel':'web'}}"),
     AS_TARGET_TRACKING,
     "AWS/ApplicationELB|RequestCountPerTarget|LoadBalancer=gantry-lb,TargetGroup=web", METRIC_SUM,
     true, 600.0, 300000, 300000},
    {"the user guide's customized metric (Unit ignored), dimensions sorted",
     TT("{'TargetValue':50.0,'CustomizedMetricSpecification':{'MetricName':'MyUtilizationMetric',"
        "'Namespace':'MyNamespace','Dimensions':[{'Name':'Zed','Value':'z'},{'Name':"
        "'MyOptionalMetricDimensionName','Value':'MyOptionalMetricDimensionValue'}],"
        "'Statistic':'Average','Unit':'Percent'}}"),
     AS_TARGET_TRACKING,
     "MyNamespace|MyUtilizationMetric|MyOptionalMetricDimensionName=MyOptionalMetricDimensionValue,"
     "Zed=z",
     METRIC_AVERAGE, false, 50.0, 300000, 300000},
    {"a customized Sum of RequestCountPerTarget counts per minute",
     TT("{'TargetValue':100,'CustomizedMetricSpecification':{'MetricName':'RequestCountPerTarget',"
        "'Namespace':'AWS/ApplicationELB','Dimensions':[{'Name':'TargetGroup','Value':'web'}],"
        "'Statistic':'Sum'}}"),
     AS_TARGET_TRACKING, "AWS/ApplicationELB|RequestCountPerTarget|TargetGroup=web", METRIC_SUM,
     true, 100.0, 300000, 300000},
    {"PolicyType absent: the configuration given says which",
     "{'PolicyName':'cpu','ResourceId':'service/default/web-app',"
     "'TargetTrackingScalingPolicyConfiguration':" CPU75 "}",
     AS_TARGET_TRACKING, "AWS/ECS|CPUUtilization|ClusterName=default,ServiceName=web-app",
     METRIC_AVERAGE, false, 75.0, 300000, 300000},
    {"put-scaling-policy's step example (scale-out.json) with its alarm, Describe members ignored",
     "{" HEAD(
         "web-app-cpu-gt-75",
         "StepScaling") ",'PolicyARN':'arn:aws:autoscaling:x',"
                        "'CreationTime':1462561899.23,'Alarms':[{'AlarmName':'web-app-cpu-gt-75'}],"
                        "'StepScalingPolicyConfiguration':{'AdjustmentType':'"
                        "PercentChangeInCapacity',"
                        "'StepAdjustments':[{'MetricIntervalLowerBound':0,'ScalingAdjustment':200}]"
                        ",'Cooldown':60}," ALARM "}",
     AS_STEP, "AWS/ECS|CPUUtilization|ClusterName=default,ServiceName=web-app", METRIC_AVERAGE,
     false, 0, 0, 0},
};

static void test_good_policies(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(good_policies); i++) {
        const struct good_policy *c = &good_policies[i];
        struct as_model m;
        load_ok(POLICIES, c->json, &m);
        assert_int_equal(m.n_policies, 1);
        const struct as_policy *p = &m.policies[0];
        const struct as_metric *metric = p->type == AS_STEP ? &p->alarm.metric : &p->metric;
        if (p->type != c->type || strcmp(metric->series, c->series) != 0 ||
            metric->stat.kind != c->stat || metric->per_minute != c->per_minute)
            fail_msg("%s: type %d series %s stat %d per_minute %d", c->what, p->type,
                     metric->series, metric->stat.kind, metric->per_minute);
        if (c->type == AS_TARGET_TRACKING &&
            (p->target_value != c->target || p->scale_out_cooldown_ms != c->out_cooldown_ms ||
             p->scale_in_cooldown_ms != c->in_cooldown_ms))
            fail_msg("%s: target %g cooldowns %lld %lld", c->what, p->target_value,
                     (long long)p->scale_out_cooldown_ms, (long long)p->scale_in_cooldown_ms);
        as_model_free(&m);
    }
}

static void test_step_policy_fields(void **state)
{
    (void)state;
    struct as_model m;
    /* the steps given out of order come back sorted by lower bound */
    load_ok(POLICIES,
            STEP("{'AdjustmentType':'PercentChangeInCapacity','MinAdjustmentMagnitude':2,"
                 "'MetricAggregationType':'Maximum','StepAdjustments':["
                 "{'MetricIntervalLowerBound':20,'ScalingAdjustment':30},"
                 "{'MetricIntervalLowerBound':0,'MetricIntervalUpperBound':10,"
                 "'ScalingAdjustment':0},"
                 "{'MetricIntervalLowerBound':10,'MetricIntervalUpperBound':20,"
                 "'ScalingAdjustment':10}]}"),
            &m);
    const struct as_policy *p = &m.policies[0];
    assert_int_equal(p->adjustment, AS_PERCENT_CHANGE_IN_CAPACITY);
    assert_int_equal(p->aggregation, AS_AGG_MAXIMUM);
    assert_int_equal(p->min_adjustment_magnitude, 2);
    assert_int_equal(p->cooldown_ms, 300000);
    assert_int_equal(p->n_steps, 3);
    assert_true(p->steps[0].lower == 0 && p->steps[1].lower == 10 && p->steps[2].lower == 20);
    assert_false(p->steps[2].has_upper);
    assert_string_equal(p->alarm.name, "web-app-cpu-gt-75");
    assert_int_equal(p->alarm.evaluation_periods, 3);
    assert_int_equal(p->alarm.datapoints_to_alarm, 3);
    assert_int_equal(p->alarm.period_ms, 60000);
    assert_int_equal(p->alarm.comparison, AS_GT);
    assert_true(p->alarm.threshold == 75);
    as_model_free(&m);
}

/* The series a policy reads is the one its writer names through metric_series_id: gantry-lb's
 * LoadBalancer and TargetGroup dimensions, in whatever order they are listed; a percentile is the
 * statistic metric_stat_parse reads. */
static void test_series_match_the_writers(void **state)
{
    (void)state;
    struct metric_series lb = {.ns = "AWS/ApplicationELB", .name = "RequestCountPerTarget"};
    lb.dims[lb.n_dims++] = (struct metric_dim){"TargetGroup", "api"};
    lb.dims[lb.n_dims++] = (struct metric_dim){"LoadBalancer", "edge"};
    char id[METRIC_ID_MAX], why[160];
    assert_true(metric_series_id(&lb, id, sizeof id, why, sizeof why) > 0);
    struct as_model m;
    load_ok(POLICIES,
            TT("{'TargetValue':600,'PredefinedMetricSpecification':{'PredefinedMetricType':"
               "'ALBRequestCountPerTarget','ResourceLabel':'app/edge/50dc6c495c0c9188/targetgroup/"
               "api/943f017f100becff'}}"),
            &m);
    assert_string_equal(m.policies[0].metric.series, id);
    as_model_free(&m);

    struct metric_stat p99;
    assert_int_equal(metric_stat_parse("p99", &p99), 0);
    load_ok(POLICIES,
            TT("{'TargetValue':0.25,'CustomizedMetricSpecification':{'MetricName':"
               "'TargetResponseTime','Namespace':'AWS/ApplicationELB','Dimensions':[{'Name':"
               "'TargetGroup','Value':'api'},{'Name':'LoadBalancer','Value':'edge'}],"
               "'Statistic':'p99'}}"),
            &m);
    assert_int_equal(m.policies[0].metric.stat.kind, p99.kind);
    assert_true(m.policies[0].metric.stat.q == p99.q);
    assert_string_equal(m.policies[0].metric.series,
                        "AWS/ApplicationELB|TargetResponseTime|LoadBalancer=edge,TargetGroup=api");
    as_model_free(&m);
}

static void test_good_target_and_action(void **state)
{
    (void)state;
    struct as_model m;
    load_ok(TARGETS,
            "{'ResourceId':'service/my-cluster/my_service-2','MinCapacity':0,'MaxCapacity':"
            "10000,'RoleARN':'arn:aws:iam::1:role/x','SuspendedState':{"
            "'DynamicScalingInSuspended':true,'DynamicScalingOutSuspended':false,"
            "'ScheduledScalingSuspended':true}}",
            &m);
    const struct as_target *t = &m.targets[0];
    assert_string_equal(t->cluster, "my-cluster");
    assert_string_equal(t->service, "my_service-2");
    assert_int_equal(t->min_capacity, 0);
    assert_int_equal(t->max_capacity, 10000);
    assert_true(t->in_suspended && !t->out_suspended && t->scheduled_suspended);
    as_model_free(&m);

    /* put-scheduled-action's example, with a timezone and a window */
    load_ok(ACTIONS,
            ACTION(",'Timezone':'America/New_York','StartTime':'2024-03-01T08:00:00Z',"
                   "'EndTime':'2024-03-31T08:00:00.000+01:00','ScalableTargetAction':{"
                   "'MinCapacity':2,'MaxCapacity':8}"),
            &m);
    const struct as_scheduled_action *a = &m.actions[0];
    assert_string_equal(a->schedule_text, "cron(0 8 * * ? *)");
    assert_string_equal(a->timezone, "America/New_York");
    assert_int_equal(a->start_s, 1709280000);
    assert_int_equal(a->end_s, 1711868400);
    assert_true(a->has_min && a->has_max && a->min_capacity == 2 && a->max_capacity == 8);
    as_model_free(&m);

    load_ok(ACTIONS, ACTION(ACTION_MIN), &m);
    assert_true(m.actions[0].has_min && !m.actions[0].has_max);
    as_model_free(&m);
}

/* ---- Bad inputs: each message exactly ---------------------------------------------------- */

struct bad {
    enum list list;
    const char *json;
    const char *message; /* after "as.yaml:LINE:5: 'autoscaler.LIST[0]': " */
};

static const struct bad bads[] = {
    /* scalable targets */
    {TARGETS, "[1]", "expected a mapping (RegisterScalableTarget's input)"},
    {TARGETS, "{'ResourceId':'service/a/b','MinCapacity':1,'MaxCapacity':2,'MaxCapcity':3}",
     "unknown member 'MaxCapcity' (expected ServiceNamespace, ResourceId, ScalableDimension, "
     "MinCapacity, MaxCapacity, SuspendedState)"},
    {TARGETS,
     "{'ServiceNamespace':'dynamodb','ResourceId':'table/x','MinCapacity':1,'MaxCapacity':2}",
     "ServiceNamespace: must be ecs (Gantry scales ECS services only), not 'dynamodb'"},
    {TARGETS,
     "{'ScalableDimension':'ecs:service:Foo','ResourceId':'service/a/"
     "b','MinCapacity':1,'MaxCapacity':2}",
     "ScalableDimension: must be ecs:service:DesiredCount, not 'ecs:service:Foo'"},
    {TARGETS, "{'MinCapacity':1,'MaxCapacity':2}", "ResourceId: is required"},
    {TARGETS, "{'ResourceId':'service/a','MinCapacity':1,'MaxCapacity':2}",
     "ResourceId: must be service/CLUSTER/SERVICE (names of 1 to 255 letters, digits, '-' and "
     "'_'), not 'service/a'"},
    {TARGETS, "{'ResourceId':'service/a/b.c','MinCapacity':1,'MaxCapacity':2}",
     "ResourceId: must be service/CLUSTER/SERVICE (names of 1 to 255 letters, digits, '-' and "
     "'_'), not 'service/a/b.c'"},
    {TARGETS, "{'ResourceId':'service/a/b','MaxCapacity':2}", "MinCapacity: is required"},
    {TARGETS, "{'ResourceId':'service/a/b','MinCapacity':1,'MaxCapacity':10001}",
     "MaxCapacity: must be an integer from 0 to 10000"},
    {TARGETS, "{'ResourceId':'service/a/b','MinCapacity':1.5,'MaxCapacity':2}",
     "MinCapacity: must be an integer from 0 to 10000"},
    {TARGETS, "{'ResourceId':'service/a/b','MinCapacity':3,'MaxCapacity':2}",
     "MinCapacity: 3 is more than MaxCapacity 2"},
    {TARGETS,
     "{'ResourceId':'service/a/b','MinCapacity':1,'MaxCapacity':2,'SuspendedState':{"
     "'DynamicScalingInSuspended':'yes'}}",
     "SuspendedState.DynamicScalingInSuspended: must be true or false"},
    {TARGETS,
     "{'ResourceId':'service/a/b','MinCapacity':1,'MaxCapacity':2,'SuspendedState':{'In':true}}",
     "SuspendedState: unknown member 'In' (expected DynamicScalingInSuspended, "
     "DynamicScalingOutSuspended, ScheduledScalingSuspended)"},
    /* policies */
    {POLICIES,
     "{'PolicyName':'x','ResourceId':'service/default/"
     "other','TargetTrackingScalingPolicyConfiguration':" CPU75 "}",
     "ResourceId: no scalable target is registered for service/default/other (add it to "
     "'autoscaler.scalable_targets')"},
    {POLICIES, "{'ResourceId':'service/default/web-app'}", "PolicyName: is required"},
    {POLICIES, "{" HEAD("x", "SimpleScaling") "}",
     "PolicyType: must be TargetTrackingScaling or StepScaling"},
    {POLICIES, "{" HEAD("x", "TargetTrackingScaling") "}",
     "TargetTrackingScalingPolicyConfiguration: is required"},
    {POLICIES,
     "{" HEAD("x", "StepScaling") ",'TargetTrackingScalingPolicyConfiguration':" CPU75 "}",
     "TargetTrackingScalingPolicyConfiguration: not allowed with PolicyType StepScaling"},
    {POLICIES,
     TT("{'TargetValue':'50','PredefinedMetricSpecification':{'PredefinedMetricType':'"
        "ECSServiceAverageCPUUtilization'}}"),
     "TargetTrackingScalingPolicyConfiguration.TargetValue: must be a number"},
    {POLICIES,
     TT("{'PredefinedMetricSpecification':{'PredefinedMetricType':'ECSServiceAverageCPUUtilization'"
        "}}"),
     "TargetTrackingScalingPolicyConfiguration.TargetValue: is required"},
    {POLICIES,
     TT("{'TargetValue':0,'PredefinedMetricSpecification':{'PredefinedMetricType':'"
        "ECSServiceAverageCPUUtilization'}}"),
     "TargetTrackingScalingPolicyConfiguration.TargetValue: must be from 8.515920e-109 to "
     "6.153776e+48"},
    {POLICIES, TT("{'TargetValue':50}"),
     "TargetTrackingScalingPolicyConfiguration: exactly one of PredefinedMetricSpecification and "
     "CustomizedMetricSpecification is required"},
    {POLICIES,
     TT("{'TargetValue':50,'ScaleOutCoolDown':60,'PredefinedMetricSpecification':{'"
        "PredefinedMetricType':'ECSServiceAverageCPUUtilization'}}"),
     "TargetTrackingScalingPolicyConfiguration: unknown member 'ScaleOutCoolDown' (expected "
     "TargetValue, PredefinedMetricSpecification, CustomizedMetricSpecification, "
     "ScaleOutCooldown, ScaleInCooldown, DisableScaleIn)"},
    {POLICIES,
     TT("{'TargetValue':50,'ScaleInCooldown':-1,'PredefinedMetricSpecification':{'"
        "PredefinedMetricType':'ECSServiceAverageCPUUtilization'}}"),
     "TargetTrackingScalingPolicyConfiguration.ScaleInCooldown: must be an integer from 0 to "
     "31536000"},
    {POLICIES,
     TT("{'TargetValue':50,'PredefinedMetricSpecification':{'PredefinedMetricType':'"
        "EC2SpotFleetRequestAverageCPUUtilization'}}"),
     "TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.PredefinedMetricType:"
     " must be ECSServiceAverageCPUUtilization, ECSServiceAverageMemoryUtilization or "
     "ALBRequestCountPerTarget"},
    {POLICIES,
     TT("{'TargetValue':50,'PredefinedMetricSpecification':{'PredefinedMetricType':'"
        "ALBRequestCountPerTarget'}}"),
     "TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.ResourceLabel: is "
     "required"},
    {POLICIES,
     TT("{'TargetValue':50,'PredefinedMetricSpecification':{'PredefinedMetricType':'"
        "ALBRequestCountPerTarget','ResourceLabel':'app/lb/1/web'}}"),
     "TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.ResourceLabel: must "
     "be app/LOAD-BALANCER/ID/targetgroup/TARGET-GROUP/ID or a gantry-lb target group's name, "
     "not 'app/lb/1/web'"},
    {POLICIES,
     TT("{'TargetValue':50,'PredefinedMetricSpecification':{'PredefinedMetricType':'"
        "ECSServiceAverageCPUUtilization','ResourceLabel':'web'}}"),
     "TargetTrackingScalingPolicyConfiguration.PredefinedMetricSpecification.ResourceLabel: only "
     "ALBRequestCountPerTarget takes a ResourceLabel"},
    {POLICIES,
     TT("{'TargetValue':50,'CustomizedMetricSpecification':{'MetricName':'m','Namespace':'n','"
        "Statistic':'Median'}}"),
     "TargetTrackingScalingPolicyConfiguration.CustomizedMetricSpecification.Statistic: must be "
     "Average, Sum, Minimum, Maximum, SampleCount or a percentile such as p99, not 'Median'"},
    {POLICIES,
     TT("{'TargetValue':50,'CustomizedMetricSpecification':{'MetricName':'m','Namespace':'n'}}"),
     "TargetTrackingScalingPolicyConfiguration.CustomizedMetricSpecification.Statistic: is "
     "required"},
    {POLICIES,
     TT("{'TargetValue':50,'CustomizedMetricSpecification':{'MetricName':'m','Namespace':'n','"
        "Statistic':'Sum','Dimensions':[{'Name':'a'}]}}"),
     "TargetTrackingScalingPolicyConfiguration.CustomizedMetricSpecification.Dimensions[0].Value:"
     " is required"},
    {POLICIES,
     TT("{'TargetValue':50,'CustomizedMetricSpecification':{'MetricName':'m|x','Namespace':'n','"
        "Statistic':'Sum'}}"),
     "TargetTrackingScalingPolicyConfiguration.CustomizedMetricSpecification: the namespace or "
     "metric name holds '|', ',', '=' or a control character"},
    {POLICIES,
     TT("{'TargetValue':50,'CustomizedMetricSpecification':{'MetricName':'m','Namespace':'n','"
        "Statistic':'Sum','Metrics':[]}}"),
     "TargetTrackingScalingPolicyConfiguration.CustomizedMetricSpecification: unknown member "
     "'Metrics' (expected MetricName, Namespace, Dimensions, Statistic)"},
    {POLICIES,
     "{" HEAD("x", "TargetTrackingScaling") ",'TargetTrackingScalingPolicyConfiguration':" CPU75
                                            "," ALARM "}",
     "Alarm: only a StepScaling policy takes an Alarm (target tracking makes its own)"},
    /* step policies */
    {POLICIES, STEP("{'StepAdjustments':[{'MetricIntervalLowerBound':0,'ScalingAdjustment':1}]}"),
     "StepScalingPolicyConfiguration.AdjustmentType: is required"},
    {POLICIES, STEP("{'AdjustmentType':'ChangeInCapacity'}"),
     "StepScalingPolicyConfiguration.StepAdjustments: is required"},
    {POLICIES, STEPS(""),
     "StepScalingPolicyConfiguration.StepAdjustments: must be a list of 1 to 20 step adjustments"},
    {POLICIES, STEPS("{'ScalingAdjustment':1}"),
     "StepScalingPolicyConfiguration.StepAdjustments[0]: MetricIntervalLowerBound and "
     "MetricIntervalUpperBound cannot both be absent"},
    {POLICIES, STEPS("{'MetricIntervalLowerBound':0}"),
     "StepScalingPolicyConfiguration.StepAdjustments[0].ScalingAdjustment: is required"},
    {POLICIES,
     STEPS("{'MetricIntervalLowerBound':10,'MetricIntervalUpperBound':5,'ScalingAdjustment':1}"),
     "StepScalingPolicyConfiguration.StepAdjustments[0]: MetricIntervalUpperBound must be more "
     "than the lower bound"},
    {POLICIES,
     STEPS("{'MetricIntervalLowerBound':0,'MetricIntervalUpperBound':20,'ScalingAdjustment':1},{'"
           "MetricIntervalLowerBound':10,'ScalingAdjustment':2}"),
     "StepScalingPolicyConfiguration.StepAdjustments: the steps' intervals overlap (at 10)"},
    {POLICIES,
     STEPS("{'MetricIntervalLowerBound':0,'MetricIntervalUpperBound':10,'ScalingAdjustment':1},{'"
           "MetricIntervalLowerBound':15,'ScalingAdjustment':2}"),
     "StepScalingPolicyConfiguration.StepAdjustments: the steps leave a gap between 10 and 15"},
    {POLICIES,
     STEPS("{'MetricIntervalLowerBound':0,'ScalingAdjustment':1},{'MetricIntervalLowerBound':10,'"
           "ScalingAdjustment':2}"),
     "StepScalingPolicyConfiguration.StepAdjustments: at most one step may omit "
     "MetricIntervalLowerBound and one MetricIntervalUpperBound"},
    {POLICIES,
     STEPS("{'MetricIntervalLowerBound':-10,'MetricIntervalUpperBound':0,'ScalingAdjustment':-1}"),
     "StepScalingPolicyConfiguration.StepAdjustments: a step with a negative lower bound needs a "
     "step without MetricIntervalLowerBound"},
    {POLICIES,
     STEPS("{'MetricIntervalLowerBound':0,'MetricIntervalUpperBound':10,'ScalingAdjustment':1}"),
     "StepScalingPolicyConfiguration.StepAdjustments: a step with a positive upper bound needs a "
     "step without MetricIntervalUpperBound"},
    {POLICIES,
     STEP("{'AdjustmentType':'ExactCapacity','StepAdjustments':[{'MetricIntervalLowerBound':0,'"
          "ScalingAdjustment':-1}]}"),
     "StepScalingPolicyConfiguration.StepAdjustments[0].ScalingAdjustment: must be an integer "
     "from 0 to 10000"},
    {POLICIES,
     STEP("{'AdjustmentType':'ChangeInCapacity','MinAdjustmentMagnitude':2,'StepAdjustments':[{'"
          "MetricIntervalLowerBound':0,'ScalingAdjustment':1}]}"),
     "StepScalingPolicyConfiguration.MinAdjustmentMagnitude: only applies with AdjustmentType "
     "PercentChangeInCapacity"},
    {POLICIES,
     STEP("{'AdjustmentType':'ChangeInCapacity','MetricAggregationType':'Sum','StepAdjustments':[{'"
          "MetricIntervalLowerBound':0,'ScalingAdjustment':1}]}"),
     "StepScalingPolicyConfiguration.MetricAggregationType: must be Average, Minimum or Maximum"},
    {POLICIES,
     "{" HEAD(
         "x",
         "StepScaling") ",'StepScalingPolicyConfiguration':{'AdjustmentType':'ChangeInCapacity','"
                        "StepAdjustments':[{'MetricIntervalLowerBound':0,'ScalingAdjustment':1}]}}",
     "Alarm: is required"},
    {POLICIES,
     "{" HEAD(
         "x",
         "StepScaling") ",'StepScalingPolicyConfiguration':{'AdjustmentType':'ChangeInCapacity','"
                        "StepAdjustments':[{'MetricIntervalLowerBound':0,'ScalingAdjustment':1}]},"
                        "'Alarm':{'AlarmName':'a','MetricName':'m','Namespace':'n','Statistic':'"
                        "Average','EvaluationPeriods':3,'DatapointsToAlarm':4,'Threshold':1,'"
                        "ComparisonOperator':'GreaterThanThreshold'}}",
     "Alarm.DatapointsToAlarm: must be an integer from 1 to 3"},
    {POLICIES,
     "{" HEAD(
         "x",
         "StepScaling") ",'StepScalingPolicyConfiguration':{'AdjustmentType':'ChangeInCapacity','"
                        "StepAdjustments':[{'MetricIntervalLowerBound':0,'ScalingAdjustment':1}]},"
                        "'Alarm':{'AlarmName':'a','MetricName':'m','Namespace':'n','Statistic':'"
                        "Average','EvaluationPeriods':3,'Threshold':1,'ComparisonOperator':'"
                        "GreaterThan'}}",
     "Alarm.ComparisonOperator: must be GreaterThanThreshold, GreaterThanOrEqualToThreshold, "
     "LessThanThreshold or LessThanOrEqualToThreshold"},
    {POLICIES,
     "{" HEAD(
         "x",
         "StepScaling") ",'StepScalingPolicyConfiguration':{'AdjustmentType':'ChangeInCapacity','"
                        "StepAdjustments':[{'MetricIntervalLowerBound':0,'ScalingAdjustment':1}]},"
                        "'Alarm':{'AlarmName':'a','MetricName':'m','Namespace':'n','Statistic':'"
                        "Average','ExtendedStatistic':'p99','EvaluationPeriods':3,'Threshold':1,'"
                        "ComparisonOperator':'GreaterThanThreshold'}}",
     "Alarm: exactly one of Statistic and ExtendedStatistic is required"},
    {POLICIES,
     "{" HEAD(
         "x",
         "StepScaling") ",'StepScalingPolicyConfiguration':{'AdjustmentType':'ChangeInCapacity','"
                        "StepAdjustments':[{'MetricIntervalLowerBound':0,'ScalingAdjustment':1}]},"
                        "'Alarm':{'AlarmName':'a','MetricName':'m','Namespace':'n','Statistic':'"
                        "Average','EvaluationPeriods':3,'Threshold':1,'ComparisonOperator':'"
                        "GreaterThanThreshold','TreatMissingData':'breaching'}}",
     "Alarm: unknown member 'TreatMissingData' (expected AlarmName, MetricName, Namespace, "
     "Dimensions, Statistic, ExtendedStatistic, Period, EvaluationPeriods, Threshold, "
     "DatapointsToAlarm, ComparisonOperator)"},
    /* scheduled actions */
    {ACTIONS, ACTION(""), "ScalableTargetAction: is required"},
    {ACTIONS, ACTION(",'ScalableTargetAction':{}"),
     "ScalableTargetAction: needs MinCapacity, MaxCapacity or both"},
    {ACTIONS, ACTION(",'ScalableTargetAction':{'MinCapacity':5,'MaxCapacity':2}"),
     "ScalableTargetAction: MinCapacity 5 is more than MaxCapacity 2"},
    {ACTIONS, ACTION(",'Timezone':'Mars/Olympus'" ACTION_MIN),
     "Timezone: 'Mars/Olympus' is not a time zone this machine knows (an IANA name such as "
     "Europe/Paris)"},
    {ACTIONS, ACTION(",'StartTime':'tomorrow'" ACTION_MIN),
     "StartTime: must be an ISO-8601 time such as 2024-03-01T08:00:00Z, or Unix seconds"},
    {ACTIONS,
     ACTION(",'StartTime':'2024-03-02T00:00:00Z','EndTime':'2024-03-01T00:00:00Z'" ACTION_MIN),
     "EndTime: must be after StartTime"},
    {ACTIONS,
     "{'ScheduledActionName':'a','ResourceId':'service/default/web-app','Schedule':'cron(0 24 * * "
     "? *)'" ACTION_MIN "}",
     "Schedule: cron(...): field 2 (hours): 24 is out of range 0-23"},
    {ACTIONS,
     "{'ScheduledActionName':'a','ResourceId':'service/default/nope','Schedule':'rate(5 "
     "minutes)'" ACTION_MIN "}",
     "ResourceId: no scalable target is registered for service/default/nope (add it to "
     "'autoscaler.scalable_targets')"},
    {ACTIONS, ACTION(",'Scheduled':1" ACTION_MIN),
     "unknown member 'Scheduled' (expected ScheduledActionName, ServiceNamespace, ResourceId, "
     "ScalableDimension, Schedule, Timezone, StartTime, EndTime, ScalableTargetAction)"},
};

static void test_bad_inputs(void **state)
{
    (void)state;
    static const char *const names[] = {"scalable_targets", "policies", "scheduled_actions"};
    for (size_t i = 0; i < N(bads); i++) {
        const struct bad *c = &bads[i];
        struct fixture f;
        struct cfg_errors errors = {0};
        struct as_model m;
        fixture_init(&f, c->list, c->json);
        char want[CFG_ERROR_LEN];
        snprintf(want, sizeof want, "as.yaml:%d:5: 'autoscaler.%s[0]': %s", 10 + (int)c->list,
                 names[c->list], c->message);
        if (as_model_load(&f.cfg, &m, &errors) != -1)
            fail_msg("case %zu accepted: %s", i, c->json);
        if (errors.count != 1 || strcmp(errors.messages[0], want) != 0)
            fail_msg("case %zu: %zu errors, got\n  %s\nwant\n  %s", i, errors.count,
                     errors.messages[0], want);
        assert_null(m.policies);
        fixture_free(&f);
    }
}

/* Duplicates are refused on the second item; the first stays. */
static void test_duplicates(void **state)
{
    (void)state;
    struct fixture f;
    struct cfg_errors errors = {0};
    struct as_model m;
    fixture_init(&f, POLICIES, TT(CPU75));
    f.targets[1] = (struct cfg_json){json_q(WEB_APP), {"b.yaml", 3, 7}};
    f.cfg.scalable_targets.count = 2;
    f.policies[1] = (struct cfg_json){json_q(TT(CPU75)), {"b.yaml", 9, 7}};
    f.cfg.policies.count = 2;
    assert_int_equal(as_model_load(&f.cfg, &m, &errors), -1);
    assert_int_equal(errors.count, 2);
    assert_string_equal(errors.messages[0], "b.yaml:3:7: 'autoscaler.scalable_targets[1]': "
                                            "ResourceId: service/default/web-app is registered "
                                            "twice");
    assert_string_equal(errors.messages[1], "b.yaml:9:7: 'autoscaler.policies[1]': PolicyName: "
                                            "another policy of service/default/web-app is named "
                                            "cpu");
    fixture_free(&f);
}

static void test_settings(void **state)
{
    (void)state;
    struct fixture f;
    struct as_settings s;
    fixture_init(&f, TARGETS, WEB_APP);
    as_settings_from(&f.cfg, &s);
    assert_int_equal(s.period_ms, 5000);
    assert_int_equal(s.scale_out_datapoints, 2);
    assert_int_equal(s.scale_out_periods, 2);
    assert_int_equal(s.scale_in_datapoints, 12);
    assert_true(s.scale_out_tolerance == 0.10 && s.scale_in_tolerance == 0.10);
    fixture_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_policies),
        cmocka_unit_test(test_step_policy_fields),
        cmocka_unit_test(test_series_match_the_writers),
        cmocka_unit_test(test_good_target_and_action),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
