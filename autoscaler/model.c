/* The autoscaler's model from the `autoscaler` section: each list item is Application Auto
 * Scaling's own JSON (kept whole by the config binder) and is checked here, member by member, so
 * that a typo is refused with its file:line:col rather than silently ignored. One error per item:
 * the first problem found, named by its member path ("StepScalingPolicyConfiguration.
 * StepAdjustments[1].ScalingAdjustment"). */
#include "autoscaler/model.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/autoscaler_config.h"
#include "metrics/series.h"

enum {
    WHY_MAX = 400,
    CAPACITY_MAX = 10000,
    COOLDOWN_MAX_S = 31536000, /* AWS's range for the cooldowns: a year */
    DEFAULT_COOLDOWN_S = 300,  /* AWS's default for ECS services, both policy kinds */
    ALARM_PERIOD_MAX_S = 86400,
};

/* AWS's range for TargetValue (PutScalingPolicy). */
static const double TARGET_VALUE_MIN = 8.515920e-109, TARGET_VALUE_MAX = 6.153776e+48;

static const char NAMESPACE_ECS[] = "ecs", DIMENSION_ECS[] = "ecs:service:DesiredCount";
/* The LoadBalancer dimension of a ResourceLabel naming only a target group: lb.name's default. */
static const char DEFAULT_LB_NAME[] = "gantry-lb";

/* ---- errors ------------------------------------------------------------------------------ */

/* Writes "path: message" (or "message" at the item's top level) into why; returns false so that a
 * check can `return fail(...)`. */
__attribute__((format(printf, 3, 4))) static bool fail(char *why, const char *path, const char *fmt,
                                                       ...)
{
    size_t used = 0;
    if (path && *path)
        used = (size_t)snprintf(why, WHY_MAX, "%s: ", path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why + used, WHY_MAX - used, fmt, ap);
    va_end(ap);
    return false;
}

/* "path.key", or "key" at the top level. Paths are short: a truncated one is still a useful
 * name (the result is checked only to tell the compiler so). */
static const char *join(char *buf, size_t size, const char *path, const char *key)
{
    if (snprintf(buf, size, "%s%s%s", path, *path ? "." : "", key) >= (int)size)
        buf[size - 1] = '\0';
    return buf;
}

static const char *indexed(char *buf, size_t size, const char *path, const char *key, size_t i)
{
    if (snprintf(buf, size, "%s%s%s[%zu]", path, *path ? "." : "", key, i) >= (int)size)
        buf[size - 1] = '\0';
    return buf;
}

static bool in_list(const char *key, const char *const *list)
{
    for (size_t i = 0; list && list[i]; i++)
        if (strcmp(key, list[i]) == 0)
            return true;
    return false;
}

/* Refuses members that are neither known nor on the ignored list (members AWS's own JSON carries
 * that Gantry has no use for: docs/autoscaler.md lists them). */
static bool check_members(const json_t *obj, const char *path, const char *const *known,
                          const char *const *ignored, char *why)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        if (in_list(key, known) || in_list(key, ignored))
            continue;
        char expected[300] = "";
        size_t used = 0;
        for (size_t i = 0; known[i] && used < sizeof expected; i++)
            used += (size_t)snprintf(expected + used, sizeof expected - used, "%s%s", i ? ", " : "",
                                     known[i]);
        return fail(why, path, "unknown member '%.64s' (expected %s)", key, expected);
    }
    return true;
}

/* ---- typed members ----------------------------------------------------------------------- */

static bool get_object(const json_t *obj, const char *path, const char *key, bool required,
                       const json_t **out, char *why)
{
    char p[200];
    *out = json_object_get(obj, key);
    if (!*out)
        return !required || fail(why, join(p, sizeof p, path, key), "is required");
    return json_is_object(*out) || fail(why, join(p, sizeof p, path, key), "must be a mapping");
}

static bool get_string(const json_t *obj, const char *path, const char *key, bool required,
                       size_t max, const char **out, char *why)
{
    char p[200];
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v)
        return !required || fail(why, join(p, sizeof p, path, key), "is required");
    *out = json_string_value(v);
    if (!*out || !**out || strlen(*out) > max)
        return fail(why, join(p, sizeof p, path, key), "must be a string of 1 to %zu characters",
                    max);
    return true;
}

static bool get_int(const json_t *obj, const char *path, const char *key, bool required,
                    long long lo, long long hi, long long *out, char *why)
{
    char p[200];
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return !required || fail(why, join(p, sizeof p, path, key), "is required");
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return fail(why, join(p, sizeof p, path, key), "must be an integer from %lld to %lld", lo,
                    hi);
    *out = json_integer_value(v);
    return true;
}

static bool get_number(const json_t *obj, const char *path, const char *key, bool required,
                       double *out, bool *present, char *why)
{
    char p[200];
    const json_t *v = json_object_get(obj, key);
    if (present)
        *present = v != NULL;
    if (!v)
        return !required || fail(why, join(p, sizeof p, path, key), "is required");
    if (!json_is_number(v))
        return fail(why, join(p, sizeof p, path, key), "must be a number");
    *out = json_number_value(v);
    return true;
}

static bool get_bool(const json_t *obj, const char *path, const char *key, bool *out, char *why)
{
    char p[200];
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return true;
    if (!json_is_boolean(v))
        return fail(why, join(p, sizeof p, path, key), "must be true or false");
    *out = json_is_true(v);
    return true;
}

/* An optional string member that must be one of `choices` (NULL-terminated); *index is left
 * alone when the member is absent (the caller's default). */
static bool get_choice(const json_t *obj, const char *path, const char *key, bool required,
                       const char *const *choices, int *index, char *why)
{
    const char *s;
    if (!get_string(obj, path, key, required, 200, &s, why))
        return false;
    if (!s)
        return true;
    for (int i = 0; choices[i]; i++)
        if (strcmp(s, choices[i]) == 0) {
            *index = i;
            return true;
        }
    char expected[300] = "", p[200];
    size_t used = 0;
    for (int i = 0; choices[i] && used < sizeof expected; i++)
        used += (size_t)snprintf(expected + used, sizeof expected - used, "%s%s",
                                 !i               ? ""
                                 : choices[i + 1] ? ", "
                                                  : " or ",
                                 choices[i]);
    return fail(why, join(p, sizeof p, path, key), "must be %s", expected);
}

/* ---- the scalable target's identity ------------------------------------------------------ */

/* ECS's cluster and service names: 1 to 255 letters, digits, hyphens and underscores. */
static bool ecs_name_valid(const char *s, size_t len)
{
    if (len < 1 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* ServiceNamespace and ScalableDimension: AWS requires them; Gantry scales ECS services' desired
 * counts only, so absent means exactly that and anything else is refused. */
static bool check_dimension(const json_t *in, char *why)
{
    const char *ns, *dim;
    if (!get_string(in, "", "ServiceNamespace", false, 64, &ns, why) ||
        !get_string(in, "", "ScalableDimension", false, 64, &dim, why))
        return false;
    if (ns && strcmp(ns, NAMESPACE_ECS) != 0)
        return fail(why, "ServiceNamespace",
                    "must be ecs (Gantry scales ECS services only), not '%.64s'", ns);
    if (dim && strcmp(dim, DIMENSION_ECS) != 0)
        return fail(why, "ScalableDimension", "must be ecs:service:DesiredCount, not '%.64s'", dim);
    return true;
}

/* ResourceId "service/CLUSTER/SERVICE" into its parts. */
static bool parse_resource_id(const json_t *in, char *resource_id, char *cluster, char *service,
                              char *why)
{
    const char *id;
    if (!check_dimension(in, why) ||
        !get_string(in, "", "ResourceId", true, AS_NAME_MAX - 1, &id, why))
        return false;
    const char *c = strncmp(id, "service/", 8) == 0 ? id + 8 : NULL;
    const char *slash = c ? strchr(c, '/') : NULL;
    if (!slash || !ecs_name_valid(c, (size_t)(slash - c)) ||
        !ecs_name_valid(slash + 1, strlen(slash + 1)))
        return fail(why, "ResourceId",
                    "must be service/CLUSTER/SERVICE (names of 1 to 255 letters, digits, '-' "
                    "and '_'), not '%.300s'",
                    id);
    snprintf(resource_id, AS_NAME_MAX, "%s", id);
    snprintf(cluster, AS_NAME_MAX, "%.*s", (int)(slash - c), c);
    snprintf(service, AS_NAME_MAX, "%s", slash + 1);
    return true;
}

/* ---- scalable targets -------------------------------------------------------------------- */

static bool parse_suspended(const json_t *in, struct as_target *t, char *why)
{
    static const char *const known[] = {"DynamicScalingInSuspended", "DynamicScalingOutSuspended",
                                        "ScheduledScalingSuspended", NULL};
    const json_t *s;
    const char *path = "SuspendedState";
    if (!get_object(in, "", path, false, &s, why))
        return false;
    return !s || (check_members(s, path, known, NULL, why) &&
                  get_bool(s, path, known[0], &t->in_suspended, why) &&
                  get_bool(s, path, known[1], &t->out_suspended, why) &&
                  get_bool(s, path, known[2], &t->scheduled_suspended, why));
}

static bool parse_target(const json_t *in, struct as_target *t, char *why)
{
    static const char *const known[] = {
        "ServiceNamespace", "ResourceId", "ScalableDimension", "MinCapacity", "MaxCapacity",
        "SuspendedState",   NULL};
    static const char *const ignored[] = {"RoleARN", "Tags", "CreationTime", "ScalableTargetARN",
                                          NULL};
    long long min = 0, max = 0;
    if (!json_is_object(in))
        return fail(why, "", "expected a mapping (RegisterScalableTarget's input)");
    if (!check_members(in, "", known, ignored, why) ||
        !parse_resource_id(in, t->resource_id, t->cluster, t->service, why) ||
        !get_int(in, "", "MinCapacity", true, 0, CAPACITY_MAX, &min, why) ||
        !get_int(in, "", "MaxCapacity", true, 0, CAPACITY_MAX, &max, why) ||
        !parse_suspended(in, t, why))
        return false;
    if (min > max)
        return fail(why, "MinCapacity", "%lld is more than MaxCapacity %lld", min, max);
    t->min_capacity = (int)min;
    t->max_capacity = (int)max;
    return true;
}

/* ---- metrics ----------------------------------------------------------------------------- */

/* The series id of (namespace, name, dimensions); why names `path` on failure. */
static bool build_series(struct as_metric *m, const char *ns, const char *name,
                         const struct metric_dim *dims, int n_dims, const char *path, char *why)
{
    struct metric_series s = {.ns = ns, .name = name, .n_dims = n_dims};
    memcpy(s.dims, dims, sizeof dims[0] * (size_t)n_dims);
    char problem[200];
    if (metric_series_id(&s, m->series, sizeof m->series, problem, sizeof problem) < 0)
        return fail(why, path, "%s", problem);
    return true;
}

/* Dimensions: [{Name, Value}, ...] (CloudWatch's shape). */
static bool parse_dimensions(const json_t *in, const char *path, struct metric_dim *dims, int *n,
                             char *why)
{
    static const char *const known[] = {"Name", "Value", NULL};
    char p[200];
    const json_t *list = json_object_get(in, "Dimensions");
    *n = 0;
    if (!list)
        return true;
    if (!json_is_array(list) || json_array_size(list) > METRIC_MAX_DIMS)
        return fail(why, join(p, sizeof p, path, "Dimensions"),
                    "must be a list of at most %d {Name, Value} mappings", METRIC_MAX_DIMS);
    size_t i;
    const json_t *d;
    json_array_foreach(list, i, d)
    {
        indexed(p, sizeof p, path, "Dimensions", i);
        if (!json_is_object(d))
            return fail(why, p, "must be a {Name, Value} mapping");
        if (!check_members(d, p, known, NULL, why) ||
            !get_string(d, p, "Name", true, METRIC_NAME_MAX, &dims[i].name, why) ||
            !get_string(d, p, "Value", true, METRIC_NAME_MAX, &dims[i].value, why))
            return false;
    }
    *n = (int)json_array_size(list);
    return true;
}

static bool parse_stat(const json_t *in, const char *path, const char *key, bool required,
                       struct metric_stat *stat, bool *present, char *why)
{
    const char *s;
    char p[200];
    if (!get_string(in, path, key, required, 20, &s, why))
        return false;
    *present = s != NULL;
    if (s && metric_stat_parse(s, stat) < 0)
        return fail(why, join(p, sizeof p, path, key),
                    "must be Average, Sum, Minimum, Maximum, SampleCount or a percentile such "
                    "as p99, not '%.32s'",
                    s);
    return true;
}

/* AWS counts RequestCountPerTarget per minute; Gantry's shorter periods scale a Sum of it. */
static void mark_per_minute(struct as_metric *m, const char *ns, const char *name)
{
    m->per_minute = strcmp(ns, "AWS/ApplicationELB") == 0 &&
                    strcmp(name, "RequestCountPerTarget") == 0 && m->stat.kind == METRIC_SUM;
}

/* A metric named in CloudWatch's way: Namespace, MetricName, Dimensions, Statistic (and, for an
 * alarm, ExtendedStatistic). */
static bool parse_cloudwatch_metric(const json_t *in, const char *path, bool extended,
                                    struct as_metric *m, char *why)
{
    const char *ns, *name;
    struct metric_dim dims[METRIC_MAX_DIMS];
    int n_dims;
    bool has_stat = false, has_ext = false;
    if (!get_string(in, path, "Namespace", true, METRIC_NAME_MAX, &ns, why) ||
        !get_string(in, path, "MetricName", true, METRIC_NAME_MAX, &name, why) ||
        !parse_dimensions(in, path, dims, &n_dims, why) ||
        !parse_stat(in, path, "Statistic", !extended, &m->stat, &has_stat, why) ||
        (extended && !parse_stat(in, path, "ExtendedStatistic", false, &m->stat, &has_ext, why)))
        return false;
    if (extended && has_stat == has_ext)
        return fail(why, path, "exactly one of Statistic and ExtendedStatistic is required");
    if (!build_series(m, ns, name, dims, n_dims, path, why))
        return false;
    mark_per_minute(m, ns, name);
    return true;
}

/* ALBRequestCountPerTarget's ResourceLabel, AWS's "app/LB/ID/targetgroup/NAME/ID", names the
 * series gantry-lb writes: LoadBalancer=LB (its lb.name), TargetGroup=NAME (the group's name);
 * the IDs are ignored. A label that is just a target group's name means lb.name's default. */
static bool alb_series(const char *label, struct as_metric *m, const char *path, char *why)
{
    char lb[256], group[256], id1[256], id2[256], rest[8];
    int n = sscanf(label, "app/%255[^/]/%255[^/]/targetgroup/%255[^/]/%255[^/]%7s", lb, id1, group,
                   id2, rest);
    if (n != 4) {
        if (strchr(label, '/'))
            return fail(why, path,
                        "must be app/LOAD-BALANCER/ID/targetgroup/TARGET-GROUP/ID or a gantry-lb "
                        "target group's name, not '%.200s'",
                        label);
        snprintf(lb, sizeof lb, "%s", DEFAULT_LB_NAME);
        snprintf(group, sizeof group, "%s", label);
    }
    struct metric_dim dims[2] = {{"LoadBalancer", lb}, {"TargetGroup", group}};
    m->stat = (struct metric_stat){METRIC_SUM, 0};
    m->per_minute = true;
    return build_series(m, "AWS/ApplicationELB", "RequestCountPerTarget", dims, 2, path, why);
}

static bool parse_predefined(const json_t *spec, const struct as_target *t, const char *path,
                             struct as_metric *m, char *why)
{
    static const char *const known[] = {"PredefinedMetricType", "ResourceLabel", NULL};
    static const char *const types[] = {"ECSServiceAverageCPUUtilization",
                                        "ECSServiceAverageMemoryUtilization",
                                        "ALBRequestCountPerTarget", NULL};
    int type = -1;
    const char *label;
    char p[200];
    if (!check_members(spec, path, known, NULL, why) ||
        !get_choice(spec, path, "PredefinedMetricType", true, types, &type, why) ||
        !get_string(spec, path, "ResourceLabel", type == 2, 1023, &label, why))
        return false;
    join(p, sizeof p, path, "ResourceLabel");
    if (type == 2)
        return alb_series(label, m, p, why);
    if (label)
        return fail(why, p, "only ALBRequestCountPerTarget takes a ResourceLabel");
    struct metric_dim dims[2] = {{"ClusterName", t->cluster}, {"ServiceName", t->service}};
    m->stat = (struct metric_stat){METRIC_AVERAGE, 0};
    return build_series(m, "AWS/ECS", type == 0 ? "CPUUtilization" : "MemoryUtilization", dims, 2,
                        path, why);
}

static bool parse_customized(const json_t *spec, const char *path, struct as_metric *m, char *why)
{
    static const char *const known[] = {"MetricName", "Namespace", "Dimensions", "Statistic", NULL};
    static const char *const ignored[] = {"Unit", NULL};
    return check_members(spec, path, known, ignored, why) &&
           parse_cloudwatch_metric(spec, path, false, m, why);
}

/* ---- target tracking --------------------------------------------------------------------- */

static bool get_cooldown(const json_t *in, const char *path, const char *key, int64_t *ms,
                         char *why)
{
    long long s = DEFAULT_COOLDOWN_S;
    if (!get_int(in, path, key, false, 0, COOLDOWN_MAX_S, &s, why))
        return false;
    *ms = (int64_t)s * 1000;
    return true;
}

static bool parse_tracking_metric(const json_t *c, const struct as_target *t, const char *path,
                                  struct as_policy *p, char *why)
{
    const json_t *pre, *custom;
    char sub[200];
    if (!get_object(c, path, "PredefinedMetricSpecification", false, &pre, why) ||
        !get_object(c, path, "CustomizedMetricSpecification", false, &custom, why))
        return false;
    if (!pre == !custom)
        return fail(why, path,
                    "exactly one of PredefinedMetricSpecification and "
                    "CustomizedMetricSpecification is required");
    if (pre)
        return parse_predefined(
            pre, t, join(sub, sizeof sub, path, "PredefinedMetricSpecification"), &p->metric, why);
    return parse_customized(custom, join(sub, sizeof sub, path, "CustomizedMetricSpecification"),
                            &p->metric, why);
}

static bool parse_tracking(const json_t *c, const struct as_target *t, struct as_policy *p,
                           char *why)
{
    static const char *const known[] = {"TargetValue",
                                        "PredefinedMetricSpecification",
                                        "CustomizedMetricSpecification",
                                        "ScaleOutCooldown",
                                        "ScaleInCooldown",
                                        "DisableScaleIn",
                                        NULL};
    const char *path = "TargetTrackingScalingPolicyConfiguration";
    char sub[200];
    if (!check_members(c, path, known, NULL, why) ||
        !get_number(c, path, "TargetValue", true, &p->target_value, NULL, why))
        return false;
    if (p->target_value < TARGET_VALUE_MIN || p->target_value > TARGET_VALUE_MAX)
        return fail(why, join(sub, sizeof sub, path, "TargetValue"),
                    "must be from 8.515920e-109 to 6.153776e+48");
    return parse_tracking_metric(c, t, path, p, why) &&
           get_cooldown(c, path, "ScaleOutCooldown", &p->scale_out_cooldown_ms, why) &&
           get_cooldown(c, path, "ScaleInCooldown", &p->scale_in_cooldown_ms, why) &&
           get_bool(c, path, "DisableScaleIn", &p->disable_scale_in, why);
}

/* ---- step scaling ------------------------------------------------------------------------ */

static bool parse_step(const json_t *in, const char *path, enum as_adjustment type,
                       struct as_step *s, char *why)
{
    static const char *const known[] = {"MetricIntervalLowerBound", "MetricIntervalUpperBound",
                                        "ScalingAdjustment", NULL};
    long long adj = 0;
    long long lo = type == AS_EXACT_CAPACITY               ? 0
                   : type == AS_PERCENT_CHANGE_IN_CAPACITY ? -100
                                                           : -CAPACITY_MAX;
    if (!json_is_object(in))
        return fail(why, path, "must be a mapping");
    if (!check_members(in, path, known, NULL, why) ||
        !get_number(in, path, known[0], false, &s->lower, &s->has_lower, why) ||
        !get_number(in, path, known[1], false, &s->upper, &s->has_upper, why) ||
        !get_int(in, path, known[2], true, lo, CAPACITY_MAX, &adj, why))
        return false;
    s->scaling_adjustment = (int)adj;
    if (!s->has_lower && !s->has_upper)
        return fail(why, path,
                    "MetricIntervalLowerBound and MetricIntervalUpperBound cannot both be absent");
    if (s->has_lower && s->has_upper && s->upper <= s->lower)
        return fail(why, path, "MetricIntervalUpperBound must be more than the lower bound");
    return true;
}

static int compare_steps(const void *a, const void *b)
{
    const struct as_step *x = a, *y = b;
    double lx = x->has_lower ? x->lower : -INFINITY, ly = y->has_lower ? y->lower : -INFINITY;
    return (lx > ly) - (lx < ly);
}

/* AWS's rules: no overlap, no gap, at most one step unbounded each way, and a step reaching below
 * (above) the threshold needs one unbounded below (above). Sorts the steps by lower bound. */
static bool check_steps(struct as_step *steps, int n, const char *path, char *why)
{
    qsort(steps, (size_t)n, sizeof steps[0], compare_steps);
    int no_lower = 0, no_upper = 0;
    for (int i = 0; i < n; i++) {
        no_lower += !steps[i].has_lower;
        no_upper += !steps[i].has_upper;
    }
    if (no_lower > 1 || no_upper > 1)
        return fail(why, path,
                    "at most one step may omit MetricIntervalLowerBound and one "
                    "MetricIntervalUpperBound");
    for (int i = 1; i < n; i++) {
        if (!steps[i - 1].has_upper || steps[i].lower < steps[i - 1].upper)
            return fail(why, path, "the steps' intervals overlap (at %g)", steps[i].lower);
        if (steps[i].lower > steps[i - 1].upper)
            return fail(why, path, "the steps leave a gap between %g and %g", steps[i - 1].upper,
                        steps[i].lower);
    }
    if (steps[0].has_lower && steps[0].lower < 0)
        return fail(why, path,
                    "a step with a negative lower bound needs a step without "
                    "MetricIntervalLowerBound");
    if (steps[n - 1].has_upper && steps[n - 1].upper > 0)
        return fail(why, path,
                    "a step with a positive upper bound needs a step without "
                    "MetricIntervalUpperBound");
    return true;
}

static bool parse_steps(const json_t *c, const char *path, struct as_policy *p, char *why)
{
    char sub[200];
    const json_t *list = json_object_get(c, "StepAdjustments");
    join(sub, sizeof sub, path, "StepAdjustments");
    if (!list)
        return fail(why, sub, "is required");
    if (!json_is_array(list) || json_array_size(list) < 1 || json_array_size(list) > AS_MAX_STEPS)
        return fail(why, sub, "must be a list of 1 to %d step adjustments", AS_MAX_STEPS);
    size_t i;
    const json_t *s;
    json_array_foreach(list, i, s)
    {
        char item[200];
        if (!parse_step(s, indexed(item, sizeof item, path, "StepAdjustments", i), p->adjustment,
                        &p->steps[i], why))
            return false;
    }
    p->n_steps = (int)json_array_size(list);
    return check_steps(p->steps, p->n_steps, sub, why);
}

static bool parse_step_config(const json_t *c, struct as_policy *p, char *why)
{
    static const char *const known[] = {
        "AdjustmentType",        "StepAdjustments",        "Cooldown",
        "MetricAggregationType", "MinAdjustmentMagnitude", NULL};
    static const char *const adjustments[] = {"ChangeInCapacity", "PercentChangeInCapacity",
                                              "ExactCapacity", NULL};
    static const char *const aggregations[] = {"Average", "Minimum", "Maximum", NULL};
    const char *path = "StepScalingPolicyConfiguration";
    int adjustment = 0, aggregation = AS_AGG_AVERAGE;
    long long magnitude = 0;
    char sub[200];
    if (!check_members(c, path, known, NULL, why) ||
        !get_choice(c, path, "AdjustmentType", true, adjustments, &adjustment, why) ||
        !get_choice(c, path, "MetricAggregationType", false, aggregations, &aggregation, why) ||
        !get_int(c, path, "MinAdjustmentMagnitude", false, 0, CAPACITY_MAX, &magnitude, why) ||
        !get_cooldown(c, path, "Cooldown", &p->cooldown_ms, why))
        return false;
    p->adjustment = (enum as_adjustment)adjustment;
    p->aggregation = (enum as_aggregation)aggregation;
    p->min_adjustment_magnitude = (int)magnitude;
    if (magnitude && p->adjustment != AS_PERCENT_CHANGE_IN_CAPACITY)
        return fail(why, join(sub, sizeof sub, path, "MinAdjustmentMagnitude"),
                    "only applies with AdjustmentType PercentChangeInCapacity");
    return parse_steps(c, path, p, why);
}

/* The CloudWatch alarm a step policy is attached to, in PutMetricAlarm's shape. */
static bool parse_alarm(const json_t *in, const struct config_autoscaler *cfg, struct as_alarm *a,
                        char *why)
{
    static const char *const known[] = {
        "AlarmName",          "MetricName", "Namespace",         "Dimensions", "Statistic",
        "ExtendedStatistic",  "Period",     "EvaluationPeriods", "Threshold",  "DatapointsToAlarm",
        "ComparisonOperator", NULL};
    static const char *const ignored[] = {
        "AlarmDescription",        "ActionsEnabled", "AlarmActions", "OKActions",
        "InsufficientDataActions", "Unit",           "Tags",         NULL};
    static const char *const comparisons[] = {"GreaterThanThreshold",
                                              "GreaterThanOrEqualToThreshold", "LessThanThreshold",
                                              "LessThanOrEqualToThreshold", NULL};
    const char *path = "Alarm", *name;
    long long period = cfg->period_ms / 1000, n = 0, m = 0;
    int comparison = 0;
    if (!check_members(in, path, known, ignored, why) ||
        !get_string(in, path, "AlarmName", true, AS_NAME_MAX - 1, &name, why) ||
        !parse_cloudwatch_metric(in, path, true, &a->metric, why) ||
        !get_int(in, path, "Period", false, 1, ALARM_PERIOD_MAX_S, &period, why) ||
        !get_int(in, path, "EvaluationPeriods", true, 1, AS_MAX_POINTS, &n, why) ||
        !get_int(in, path, "DatapointsToAlarm", false, 1, n, &m, why) ||
        !get_number(in, path, "Threshold", true, &a->threshold, NULL, why) ||
        !get_choice(in, path, "ComparisonOperator", true, comparisons, &comparison, why))
        return false;
    snprintf(a->name, sizeof a->name, "%s", name);
    a->period_ms = period * 1000;
    a->evaluation_periods = (int)n;
    a->datapoints_to_alarm = m ? (int)m : (int)n;
    a->comparison = (enum as_comparison)comparison;
    return true;
}

/* ---- policies ---------------------------------------------------------------------------- */

static const struct as_target *find_target(const struct as_model *m, const char *resource_id)
{
    for (size_t i = 0; i < m->n_targets; i++)
        if (strcmp(m->targets[i].resource_id, resource_id) == 0)
            return &m->targets[i];
    return NULL;
}

/* PolicyType, or when it is absent the one configuration given (AWS's default, StepScaling, would
 * make a target tracking JSON without PolicyType fail for no good reason). */
static bool policy_type(const json_t *in, enum as_policy_type *type, char *why)
{
    static const char *const types[] = {"TargetTrackingScaling", "StepScaling", NULL};
    const json_t *tt = json_object_get(in, "TargetTrackingScalingPolicyConfiguration");
    const json_t *step = json_object_get(in, "StepScalingPolicyConfiguration");
    int t = tt ? AS_TARGET_TRACKING : AS_STEP;
    if (!get_choice(in, "", "PolicyType", false, types, &t, why))
        return false;
    *type = (enum as_policy_type)t;
    if (t == AS_TARGET_TRACKING && step)
        return fail(why, "StepScalingPolicyConfiguration",
                    "not allowed with PolicyType TargetTrackingScaling");
    if (t == AS_STEP && tt)
        return fail(why, "TargetTrackingScalingPolicyConfiguration",
                    "not allowed with PolicyType StepScaling");
    if (t == AS_TARGET_TRACKING && json_object_get(in, "Alarm"))
        return fail(why, "Alarm",
                    "only a StepScaling policy takes an Alarm (target tracking makes its own)");
    return true;
}

static bool parse_policy(const json_t *in, const struct config_autoscaler *cfg,
                         const struct as_model *m, struct as_policy *p, char *why)
{
    static const char *const known[] = {"PolicyName",
                                        "ServiceNamespace",
                                        "ResourceId",
                                        "ScalableDimension",
                                        "PolicyType",
                                        "TargetTrackingScalingPolicyConfiguration",
                                        "StepScalingPolicyConfiguration",
                                        "Alarm",
                                        NULL};
    static const char *const ignored[] = {"PolicyARN", "Alarms", "CreationTime", NULL};
    const char *name;
    char cluster[AS_NAME_MAX], service[AS_NAME_MAX];
    const json_t *c;
    if (!json_is_object(in))
        return fail(why, "", "expected a mapping (PutScalingPolicy's input)");
    if (!check_members(in, "", known, ignored, why) ||
        !get_string(in, "", "PolicyName", true, AS_NAME_MAX - 1, &name, why) ||
        !parse_resource_id(in, p->resource_id, cluster, service, why) ||
        !policy_type(in, &p->type, why))
        return false;
    snprintf(p->name, sizeof p->name, "%s", name);
    const struct as_target *t = find_target(m, p->resource_id);
    if (!t)
        return fail(why, "ResourceId",
                    "no scalable target is registered for %s (add it to "
                    "'autoscaler.scalable_targets')",
                    p->resource_id);
    if (p->type == AS_TARGET_TRACKING)
        return get_object(in, "", "TargetTrackingScalingPolicyConfiguration", true, &c, why) &&
               parse_tracking(c, t, p, why);
    const json_t *alarm;
    return get_object(in, "", "StepScalingPolicyConfiguration", true, &c, why) &&
           parse_step_config(c, p, why) && get_object(in, "", "Alarm", true, &alarm, why) &&
           parse_alarm(alarm, cfg, &p->alarm, why);
}

/* ---- scheduled actions ------------------------------------------------------------------- */

/* StartTime / EndTime: ISO-8601 ("2024-03-01T08:00:00Z", "...+01:00", fractions ignored; no zone
 * is UTC, as the AWS CLI reads it) or Unix seconds. */
static bool parse_time(const json_t *v, int64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *out = json_integer_value(v);
        return true;
    }
    const char *s = json_string_value(v);
    struct tm tm = {0};
    int used = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6)
        return false;
    if (tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59)
        return false;
    const char *rest = s + used;
    if (*rest == '.')
        for (rest++; *rest >= '0' && *rest <= '9'; rest++)
            ;
    int offset_s = 0, oh, om, n = 0;
    if (*rest == '+' || *rest == '-') {
        if (sscanf(rest + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || rest[1 + n] || oh > 23 || om > 59)
            return false;
        offset_s = (*rest == '-' ? -1 : 1) * (oh * 3600 + om * 60);
    } else if (!(*rest == '\0' || (rest[0] == 'Z' && rest[1] == '\0'))) {
        return false;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (int64_t)timegm(&tm) - offset_s;
    return true;
}

static bool get_time(const json_t *in, const char *key, int64_t *out, char *why)
{
    const json_t *v = json_object_get(in, key);
    *out = 0;
    if (v && !parse_time(v, out))
        return fail(why, key,
                    "must be an ISO-8601 time such as 2024-03-01T08:00:00Z, or Unix seconds");
    return true;
}

static bool parse_schedule(const json_t *in, struct as_scheduled_action *a, char *why)
{
    const char *text, *tz;
    char problem[256];
    if (!get_string(in, "", "Schedule", true, 256, &text, why) ||
        !get_string(in, "", "Timezone", false, sizeof a->timezone - 1, &tz, why))
        return false;
    if (schedule_parse(text, &a->schedule, problem, sizeof problem) < 0)
        return fail(why, "Schedule", "%s", problem);
    if (tz && !schedule_timezone_valid(tz))
        return fail(why, "Timezone",
                    "'%.64s' is not a time zone this machine knows (an IANA name such as "
                    "Europe/Paris)",
                    tz);
    snprintf(a->schedule_text, sizeof a->schedule_text, "%s", text);
    snprintf(a->timezone, sizeof a->timezone, "%s", tz ? tz : "");
    if (!get_time(in, "StartTime", &a->start_s, why) || !get_time(in, "EndTime", &a->end_s, why))
        return false;
    if (a->start_s && a->end_s && a->end_s <= a->start_s)
        return fail(why, "EndTime", "must be after StartTime");
    return true;
}

static bool parse_target_action(const json_t *in, struct as_scheduled_action *a, char *why)
{
    static const char *const known[] = {"MinCapacity", "MaxCapacity", NULL};
    const char *path = "ScalableTargetAction";
    const json_t *t;
    long long min = -1, max = -1;
    if (!get_object(in, "", path, true, &t, why) || !check_members(t, path, known, NULL, why) ||
        !get_int(t, path, "MinCapacity", false, 0, CAPACITY_MAX, &min, why) ||
        !get_int(t, path, "MaxCapacity", false, 0, CAPACITY_MAX, &max, why))
        return false;
    a->has_min = min >= 0;
    a->has_max = max >= 0;
    if (!a->has_min && !a->has_max)
        return fail(why, path, "needs MinCapacity, MaxCapacity or both");
    if (a->has_min && a->has_max && min > max)
        return fail(why, path, "MinCapacity %lld is more than MaxCapacity %lld", min, max);
    a->min_capacity = (int)min;
    a->max_capacity = (int)max;
    return true;
}

static bool parse_action(const json_t *in, const struct as_model *m, struct as_scheduled_action *a,
                         char *why)
{
    static const char *const known[] = {"ScheduledActionName",
                                        "ServiceNamespace",
                                        "ResourceId",
                                        "ScalableDimension",
                                        "Schedule",
                                        "Timezone",
                                        "StartTime",
                                        "EndTime",
                                        "ScalableTargetAction",
                                        NULL};
    static const char *const ignored[] = {"ScheduledActionARN", "CreationTime", NULL};
    const char *name;
    char cluster[AS_NAME_MAX], service[AS_NAME_MAX];
    if (!json_is_object(in))
        return fail(why, "", "expected a mapping (PutScheduledAction's input)");
    if (!check_members(in, "", known, ignored, why) ||
        !get_string(in, "", "ScheduledActionName", true, AS_NAME_MAX - 1, &name, why) ||
        !parse_resource_id(in, a->resource_id, cluster, service, why) ||
        !parse_schedule(in, a, why) || !parse_target_action(in, a, why))
        return false;
    snprintf(a->name, sizeof a->name, "%s", name);
    if (!find_target(m, a->resource_id))
        return fail(why, "ResourceId",
                    "no scalable target is registered for %s (add it to "
                    "'autoscaler.scalable_targets')",
                    a->resource_id);
    return true;
}

/* ---- the model --------------------------------------------------------------------------- */

static void item_error(struct cfg_errors *errors, const struct cfg_json *item, const char *list,
                       size_t i, const char *why)
{
    struct cfg_ctx ctx = {.file = item->origin.file, .errors = errors};
    cfg_error_at(&ctx, &item->origin, "'autoscaler.%s[%zu]': %s", list, i, why);
}

/* Item i of a list as JSON; false (with the error recorded) when it does not parse. */
static bool load_item(const struct cfg_json *item, const char *list, size_t i,
                      struct cfg_errors *errors, json_t **in)
{
    json_error_t jerr;
    *in = json_loads(item->text, 0, &jerr);
    if (*in)
        return true;
    item_error(errors, item, list, i, "not valid JSON"); /* the binder made it: a bug */
    return false;
}

static void load_targets(const struct config_autoscaler *cfg, struct as_model *m,
                         struct cfg_errors *errors)
{
    const struct cfg_json *items = cfg->scalable_targets.items;
    for (size_t i = 0; i < cfg->scalable_targets.count; i++) {
        json_t *in;
        char why[WHY_MAX];
        struct as_target t = {0};
        if (!load_item(&items[i], "scalable_targets", i, errors, &in))
            continue;
        bool ok = parse_target(in, &t, why);
        if (ok && find_target(m, t.resource_id))
            ok = fail(why, "ResourceId", "%s is registered twice", t.resource_id);
        if (ok)
            m->targets[m->n_targets++] = t;
        else
            item_error(errors, &items[i], "scalable_targets", i, why);
        json_decref(in);
    }
}

static bool policy_exists(const struct as_model *m, const struct as_policy *p)
{
    for (size_t i = 0; i < m->n_policies; i++)
        if (strcmp(m->policies[i].resource_id, p->resource_id) == 0 &&
            strcmp(m->policies[i].name, p->name) == 0)
            return true;
    return false;
}

static void load_policies(const struct config_autoscaler *cfg, struct as_model *m,
                          struct cfg_errors *errors)
{
    const struct cfg_json *items = cfg->policies.items;
    for (size_t i = 0; i < cfg->policies.count; i++) {
        json_t *in;
        char why[WHY_MAX];
        struct as_policy *p = &m->policies[m->n_policies];
        if (!load_item(&items[i], "policies", i, errors, &in))
            continue;
        memset(p, 0, sizeof *p);
        bool ok = parse_policy(in, cfg, m, p, why);
        if (ok && policy_exists(m, p))
            ok = fail(why, "PolicyName", "another policy of %s is named %s", p->resource_id,
                      p->name);
        if (ok)
            m->n_policies++;
        else
            item_error(errors, &items[i], "policies", i, why);
        json_decref(in);
    }
}

static bool action_exists(const struct as_model *m, const struct as_scheduled_action *a)
{
    for (size_t i = 0; i < m->n_actions; i++)
        if (strcmp(m->actions[i].resource_id, a->resource_id) == 0 &&
            strcmp(m->actions[i].name, a->name) == 0)
            return true;
    return false;
}

static void load_actions(const struct config_autoscaler *cfg, struct as_model *m,
                         struct cfg_errors *errors)
{
    const struct cfg_json *items = cfg->scheduled_actions.items;
    for (size_t i = 0; i < cfg->scheduled_actions.count; i++) {
        json_t *in;
        char why[WHY_MAX];
        struct as_scheduled_action *a = &m->actions[m->n_actions];
        if (!load_item(&items[i], "scheduled_actions", i, errors, &in))
            continue;
        memset(a, 0, sizeof *a);
        bool ok = parse_action(in, m, a, why);
        if (ok && action_exists(m, a))
            ok = fail(why, "ScheduledActionName", "another scheduled action of %s is named %s",
                      a->resource_id, a->name);
        if (ok)
            m->n_actions++;
        else
            item_error(errors, &items[i], "scheduled_actions", i, why);
        json_decref(in);
    }
}

int as_model_load(const struct config_autoscaler *cfg, struct as_model *out,
                  struct cfg_errors *errors)
{
    size_t before = errors->total;
    memset(out, 0, sizeof *out);
    out->targets = calloc(cfg->scalable_targets.count + 1, sizeof *out->targets);
    out->policies = calloc(cfg->policies.count + 1, sizeof *out->policies);
    out->actions = calloc(cfg->scheduled_actions.count + 1, sizeof *out->actions);
    if (!out->targets || !out->policies || !out->actions) {
        as_model_free(out);
        struct cfg_ctx ctx = {.errors = errors};
        struct cfg_origin none = {"autoscaler", 0, 0};
        cfg_error_at(&ctx, &none, "out of memory");
        return -1;
    }
    load_targets(cfg, out, errors);
    load_policies(cfg, out, errors);
    load_actions(cfg, out, errors);
    if (errors->total == before)
        return 0;
    as_model_free(out);
    return -1;
}

void as_model_free(struct as_model *m)
{
    free(m->targets);
    free(m->policies);
    free(m->actions);
    memset(m, 0, sizeof *m);
}

void as_settings_from(const struct config_autoscaler *cfg, struct as_settings *out)
{
    out->period_ms = cfg->period_ms;
    out->scale_out_datapoints = (int)cfg->scale_out_datapoints;
    out->scale_out_periods = (int)cfg->scale_out_periods;
    out->scale_in_datapoints = (int)cfg->scale_in_datapoints;
    out->scale_out_tolerance = (double)cfg->scale_out_tolerance / 100.0;
    out->scale_in_tolerance = (double)cfg->scale_in_tolerance / 100.0;
}
