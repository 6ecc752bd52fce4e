/* The decision engine, with a fake clock: the examples of Application Auto Scaling's and EC2 Auto
 * Scaling's documentation replayed (target tracking's proportional capacity, the step adjustment
 * tables with an alarm threshold of 50, PercentChangeInCapacity's rounding and
 * MinAdjustmentMagnitude, the cooldown examples), then the rules between policies, cooldowns,
 * missing data, min/max, suspended states, deployments, and synthetic series: noise around the
 * target never acts over five simulated minutes, a 4x load step acts within the configured
 * datapoints. Each example's source is named beside it. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "autoscaler/engine.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MISSING NAN
/* Datapoints, oldest first; MISSING for a period without data. */
#define P(...) ((const double[]){__VA_ARGS__}), (int)N(((const double[]){__VA_ARGS__}))
#define MIN_MS 60000

/* ---- Helpers ----------------------------------------------------------------------------- */

static struct as_points points(const double *v, int n)
{
    struct as_points p = {.n = n};
    for (int i = 0; i < n; i++) {
        p.present[i] = !isnan(v[i]);
        p.value[i] = p.present[i] ? v[i] : 0;
    }
    return p;
}

/* n copies of v. */
static struct as_points flat(double v, int n)
{
    struct as_points p = {.n = n};
    for (int i = 0; i < n; i++) {
        p.present[i] = true;
        p.value[i] = v;
    }
    return p;
}

/* Gantry's defaults: 2 of 2 above to scale out, 12 below to scale in, 10 % tolerance. */
static const struct as_settings defaults = {5000, 2, 2, 12, 0.10, 0.10};

static struct as_target target(int min, int max)
{
    struct as_target t = {.min_capacity = min, .max_capacity = max};
    snprintf(t.resource_id, sizeof t.resource_id, "service/default/web-app");
    return t;
}

static struct as_policy tracking(const char *name, double target_value)
{
    struct as_policy p = {.type = AS_TARGET_TRACKING, .target_value = target_value};
    snprintf(p.name, sizeof p.name, "%s", name);
    snprintf(p.resource_id, sizeof p.resource_id, "service/default/web-app");
    p.scale_out_cooldown_ms = p.scale_in_cooldown_ms = 300000;
    return p;
}

/* A step policy on an alarm `cmp` threshold (1 of 1 datapoint), the steps given as
 * {has_lower, has_upper, lower, upper, adjustment}. */
static struct as_policy step(const char *name, enum as_adjustment adj, enum as_comparison cmp,
                             double threshold, const struct as_step *steps, int n)
{
    struct as_policy p = {.type = AS_STEP, .adjustment = adj, .n_steps = n};
    snprintf(p.name, sizeof p.name, "%s", name);
    snprintf(p.resource_id, sizeof p.resource_id, "service/default/web-app");
    snprintf(p.alarm.name, sizeof p.alarm.name, "%s-alarm", name);
    memcpy(p.steps, steps, sizeof steps[0] * (size_t)n);
    p.cooldown_ms = 300000;
    p.alarm.threshold = threshold;
    p.alarm.comparison = cmp;
    p.alarm.evaluation_periods = p.alarm.datapoints_to_alarm = 1;
    return p;
}

#define LO(l, a)                                                                                   \
    {                                                                                              \
        true, false, (l), 0, (a)                                                                   \
    } /* [l, +inf) */
#define HI(u, a)                                                                                   \
    {                                                                                              \
        false, true, 0, (u), (a)                                                                   \
    } /* (-inf, u] */
#define IN(l, u, a)                                                                                \
    {                                                                                              \
        true, true, (l), (u), (a)                                                                  \
    } /* between */

/* The scale-out steps of the EC2 Auto Scaling user guide's step adjustment example (alarm
 * threshold 50): [50, 60) +0, [60, 70) +10 %, [70, inf) +30 %. */
static const struct as_step guide_out[] = {IN(0, 10, 0), IN(10, 20, 10), LO(20, 30)};
/* ... and its scale-in steps: (40, 50] -0, (30, 40] -10 %, (-inf, 30] -30 %. */
static const struct as_step guide_in[] = {HI(-20, -30), IN(-20, -10, -10), IN(-10, 0, 0)};

/* One decision of one policy from a fresh state. */
static struct as_decision decide1(const struct as_target *t, const struct as_settings *s,
                                  const struct as_policy *p, struct as_points pts, int current)
{
    struct as_state st;
    struct as_decision d;
    const struct as_policy *list[] = {p};
    as_state_init(&st, t);
    as_decide(t, s, list, &pts, 1, current, false, 0, &st, &d);
    return d;
}

static const char *kind_name(enum as_kind k)
{
    static const char *const names[] = {"none", "out", "in", "clamp"};
    return names[k];
}

static void expect(const char *what, const struct as_decision *d, enum as_kind kind, int desired)
{
    int want = kind == AS_NONE ? d->current : desired;
    if (d->kind != kind || d->desired != want)
        fail_msg("%s: got %s to %d, want %s to %d", what, kind_name(d->kind), d->desired,
                 kind_name(kind), want);
}

/* ---- Target tracking --------------------------------------------------------------------- */

struct tt_case {
    const char *what;
    double target;
    const double *series;
    int n;
    int current, min, max;
    enum as_kind kind;
    int desired;
};

static const struct tt_case tt_cases[] = {
    /* Application Auto Scaling user guide (target tracking): a 50 % CPU target, 10 tasks at 75 %
     * -> ceil(10 * 75 / 50) = 15 */
    {"the guide's CPU example", 50, P(75, 75), 10, 1, 100, AS_SCALE_OUT, 15},
    {"ALBRequestCountPerTarget at 1000 per target, 4 tasks at 1500", 1000, P(1500, 1500), 4, 1, 20,
     AS_SCALE_OUT, 6},
    {"rounds up: 3 tasks at 70 % of 50 -> 4.2 -> 5", 50, P(70, 70), 3, 1, 10, AS_SCALE_OUT, 5},
    {"floating point: 10 * 70 / 35 is 20, not 21", 35, P(70, 70), 10, 1, 100, AS_SCALE_OUT, 20},
    {"clamped to MaxCapacity", 50, P(100, 100), 8, 1, 10, AS_SCALE_OUT, 10},
    {"at max already: nothing", 50, P(100, 100), 10, 1, 10, AS_NONE, 0},
    {"one of two above is not 2 of 2", 50, P(50, 75), 10, 1, 100, AS_NONE, 0},
    {"the older one above, the newest not", 50, P(75, 50), 10, 1, 100, AS_NONE, 0},
    {"the newest missing: no action", 50, P(75, 75, MISSING), 10, 1, 100, AS_NONE, 0},
    {"a missing datapoint is not above", 50, P(MISSING, 75), 10, 1, 100, AS_NONE, 0},
    {"within the tolerance (+10 %): nothing", 50, P(54.9, 54.9), 10, 1, 100, AS_NONE, 0},
    {"from zero tasks nothing is proportional", 50, P(75, 75), 0, 0, 10, AS_NONE, 0},
    {"scale in: 12 datapoints at 25 % -> 5", 50, P(25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25),
     10, 1, 100, AS_SCALE_IN, 5},
    {"scale in clamped to MinCapacity", 50, P(5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5), 10, 3, 100,
     AS_SCALE_IN, 3},
    {"11 below are not 12", 50, P(25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25), 10, 1, 100, AS_NONE,
     0},
    {"a missing one among the 12 stops the scale-in", 50,
     P(25, 25, 25, 25, 25, MISSING, 25, 25, 25, 25, 25, 25), 10, 1, 100, AS_NONE, 0},
    {"one above the lower tolerance among the 12", 50,
     P(25, 25, 25, 25, 25, 46, 25, 25, 25, 25, 25, 25), 10, 1, 100, AS_NONE, 0},
    {"within the tolerance (-10 %): nothing", 50,
     P(45.1, 45.1, 45.1, 45.1, 45.1, 45.1, 45.1, 45.1, 45.1, 45.1, 45.1, 45.1), 10, 1, 100, AS_NONE,
     0},
};

static void test_target_tracking(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(tt_cases); i++) {
        const struct tt_case *c = &tt_cases[i];
        struct as_target t = target(c->min, c->max);
        struct as_policy p = tracking("cpu", c->target);
        struct as_decision d = decide1(&t, &defaults, &p, points(c->series, c->n), c->current);
        expect(c->what, &d, c->kind, c->desired);
    }
}

static void test_disable_scale_in(void **state)
{
    (void)state;
    struct as_target t = target(1, 100);
    struct as_policy p = tracking("cpu", 50);
    p.disable_scale_in = true;
    struct as_decision d = decide1(&t, &defaults, &p, flat(10, 12), 10);
    expect("DisableScaleIn", &d, AS_NONE, 0);
    d = decide1(&t, &defaults, &p, flat(100, 2), 10);
    expect("DisableScaleIn still scales out", &d, AS_SCALE_OUT, 20);
}

/* Application Auto Scaling's texts, as DescribeScalingActivities shows them. */
static void test_texts(void **state)
{
    (void)state;
    struct as_target t = target(1, 100);
    struct as_policy p = tracking("cpu75-target-tracking-scaling-policy", 50);
    struct as_decision d = decide1(&t, &defaults, &p, flat(75, 2), 10);
    assert_string_equal(d.description, "Setting desired count to 15.");
    assert_string_equal(d.policy, "cpu75-target-tracking-scaling-policy");
    assert_int_equal(d.policy_index, 0);
    const char *prefix = "monitor alarm TargetTracking-service/default/web-app-AlarmHigh-";
    const char *suffix = " in state ALARM triggered policy cpu75-target-tracking-scaling-policy";
    assert_memory_equal(d.cause, prefix, strlen(prefix));
    /* the UUID-shaped id: 8-4-4-4-12 hex digits */
    const char *id = d.cause + strlen(prefix);
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        assert_true(dash ? id[i] == '-' : strchr("0123456789abcdef", id[i]) != NULL);
    }
    assert_string_equal(id + 36, suffix);
    struct as_decision again = decide1(&t, &defaults, &p, flat(80, 2), 10);
    assert_string_equal(again.cause, d.cause); /* the same alarm every time */

    d = decide1(&t, &defaults, &p, flat(10, 12), 10);
    assert_non_null(strstr(d.cause, "-AlarmLow-"));

    /* the user guide's scaling activity: "monitor alarm web-app-cpu-lt-25 in state ALARM
     * triggered policy web-app-cpu-lt-25", "Setting desired count to 1." */
    static const struct as_step down[] = {HI(0, -1)};
    struct as_policy s = step("web-app-cpu-lt-25", AS_CHANGE_IN_CAPACITY, AS_LT, 25, down, 1);
    snprintf(s.alarm.name, sizeof s.alarm.name, "web-app-cpu-lt-25");
    d = decide1(&t, &defaults, &s, flat(10, 1), 2);
    assert_string_equal(d.description, "Setting desired count to 1.");
    assert_string_equal(d.cause, "monitor alarm web-app-cpu-lt-25 in state ALARM triggered policy "
                                 "web-app-cpu-lt-25");
}

/* ---- Step scaling ------------------------------------------------------------------------ */

struct step_case {
    const char *what;
    enum as_adjustment adj;
    enum as_comparison cmp;
    const struct as_step *steps;
    int n_steps;
    int min_magnitude;
    double metric;
    int current;
    enum as_kind kind;
    int desired;
};

static const struct as_step plus_25[] = {LO(0, 25)}, minus_10[] = {HI(0, -10)},
                            plus_200[] = {LO(0, 200)}, plus_10[] = {LO(0, 10)},
                            exact_7[] = {LO(0, 7)}, minus_2[] = {HI(0, -2)};

static const struct step_case step_cases[] = {
    /* EC2 Auto Scaling user guide, step adjustments (threshold 50, 10 instances) */
    {"the guide: 55 is in [50, 60): +0", AS_PERCENT_CHANGE_IN_CAPACITY, AS_GT, guide_out, 3, 0, 55,
     10, AS_NONE, 0},
    {"the guide: 60 is in [60, 70): +10 % -> 11", AS_PERCENT_CHANGE_IN_CAPACITY, AS_GT, guide_out,
     3, 0, 60, 10, AS_SCALE_OUT, 11},
    {"the guide: 70 is in [70, inf): +30 % -> 13", AS_PERCENT_CHANGE_IN_CAPACITY, AS_GT, guide_out,
     3, 0, 70, 10, AS_SCALE_OUT, 13},
    {"the guide: 69.9 is still +10 %", AS_PERCENT_CHANGE_IN_CAPACITY, AS_GT, guide_out, 3, 0, 69.9,
     10, AS_SCALE_OUT, 11},
    {"the guide: 45 is in (40, 50]: -0", AS_PERCENT_CHANGE_IN_CAPACITY, AS_LT, guide_in, 3, 0, 45,
     10, AS_NONE, 0},
    {"the guide: 40 is in (30, 40]: -10 % -> 9", AS_PERCENT_CHANGE_IN_CAPACITY, AS_LT, guide_in, 3,
     0, 40, 10, AS_SCALE_IN, 9},
    {"the guide: 30 is in (-inf, 30]: -30 % -> 7", AS_PERCENT_CHANGE_IN_CAPACITY, AS_LT, guide_in,
     3, 0, 30, 10, AS_SCALE_IN, 7},
    {"not in ALARM (GreaterThan 50 at 50): nothing", AS_PERCENT_CHANGE_IN_CAPACITY, AS_GT,
     guide_out, 3, 0, 50, 10, AS_NONE, 0},
    /* MinAdjustmentMagnitude's documented example: 4 tasks, +25 % is 1, magnitude 2 -> +2 */
    {"+25 % of 4 is 1", AS_PERCENT_CHANGE_IN_CAPACITY, AS_GT, plus_25, 1, 0, 60, 4, AS_SCALE_OUT,
     5},
    {"+25 % of 4 with MinAdjustmentMagnitude 2 is 2", AS_PERCENT_CHANGE_IN_CAPACITY, AS_GT, plus_25,
     1, 2, 60, 4, AS_SCALE_OUT, 6},
    /* PercentChangeInCapacity's rounding (EC2 Auto Scaling user guide): 12.7 -> 12, 0.67 -> 1,
     * -6.67 -> -6, between 0 and -1 -> -1 */
    {"+10 % of 127 = 12.7 -> 12", AS_PERCENT_CHANGE_IN_CAPACITY, AS_GT, plus_10, 1, 0, 60, 127,
     AS_SCALE_OUT, 139},
    {"+25 % of 2 = 0.5 -> 1", AS_PERCENT_CHANGE_IN_CAPACITY, AS_GT, plus_25, 1, 0, 60, 2,
     AS_SCALE_OUT, 3},
    {"-10 % of 67 = -6.7 -> -6", AS_PERCENT_CHANGE_IN_CAPACITY, AS_LT, minus_10, 1, 0, 40, 67,
     AS_SCALE_IN, 61},
    {"-10 % of 3 = -0.3 -> -1", AS_PERCENT_CHANGE_IN_CAPACITY, AS_LT, minus_10, 1, 0, 40, 3,
     AS_SCALE_IN, 2},
    {"-10 % of 30 with MinAdjustmentMagnitude 5", AS_PERCENT_CHANGE_IN_CAPACITY, AS_LT, minus_10, 1,
     5, 40, 30, AS_SCALE_IN, 25},
    /* put-scaling-policy's example: +200 % (web-app-cpu-gt-75) */
    {"+200 % of 2 -> 6", AS_PERCENT_CHANGE_IN_CAPACITY, AS_GT, plus_200, 1, 0, 80, 2, AS_SCALE_OUT,
     6},
    /* the other adjustment types (Application Auto Scaling user guide) */
    {"ExactCapacity 7", AS_EXACT_CAPACITY, AS_GT, exact_7, 1, 0, 60, 3, AS_SCALE_OUT, 7},
    {"ExactCapacity 7 from 9 is a scale-in", AS_EXACT_CAPACITY, AS_GT, exact_7, 1, 0, 60, 9,
     AS_SCALE_IN, 7},
    {"ChangeInCapacity -2", AS_CHANGE_IN_CAPACITY, AS_LT, minus_2, 1, 0, 40, 5, AS_SCALE_IN, 3},
    {"ChangeInCapacity clamped to max 10", AS_CHANGE_IN_CAPACITY, AS_GT, plus_25, 1, 0, 60, 4,
     AS_SCALE_OUT, 10},
};

static void test_step_scaling(void **state)
{
    (void)state;
    struct as_target t = target(1, 10);
    t.max_capacity = 1000;
    for (size_t i = 0; i < N(step_cases); i++) {
        const struct step_case *c = &step_cases[i];
        struct as_policy p = step("step", c->adj, c->cmp, 50, c->steps, c->n_steps);
        p.min_adjustment_magnitude = c->min_magnitude;
        t.max_capacity = strstr(c->what, "max 10") ? 10 : 1000;
        const double v[] = {c->metric};
        struct as_decision d = decide1(&t, &defaults, &p, points(v, 1), c->current);
        expect(c->what, &d, c->kind, c->desired);
    }
}

/* The alarm's M of N, missing data and MetricAggregationType over its window. */
static void test_step_alarm(void **state)
{
    (void)state;
    struct as_target t = target(1, 100);
    struct as_policy p = step("s", AS_CHANGE_IN_CAPACITY, AS_GT, 50, guide_out, 3);
    p.alarm.evaluation_periods = 3;
    p.alarm.datapoints_to_alarm = 2;
    struct as_decision d = decide1(&t, &defaults, &p, points(P(65, MISSING, 65)), 10);
    expect("2 of 3 breaching, one missing: ALARM, average 65 -> [60,70) +10", &d, AS_SCALE_OUT, 20);
    d = decide1(&t, &defaults, &p, points(P(65, 40, 40)), 10);
    expect("1 of 3 breaching: OK", &d, AS_NONE, 0);
    d = decide1(&t, &defaults, &p, points(P(MISSING, MISSING, MISSING)), 10);
    expect("no data: nothing", &d, AS_NONE, 0);
    d = decide1(&t, &defaults, &p, points(P(55, 75, 40)), 10);
    expect("Average of 55, 75, 40 is 56.7: +0", &d, AS_NONE, 0);
    p.aggregation = AS_AGG_MAXIMUM;
    d = decide1(&t, &defaults, &p, points(P(55, 75, 40)), 10);
    expect("Maximum 75: +30", &d, AS_SCALE_OUT, 40);
}

/* ---- Cooldowns --------------------------------------------------------------------------- */

/* A target with its policies, state and fake clock, stepping as the daemon would. */
struct sim {
    struct as_target t;
    struct as_settings s;
    const struct as_policy *policies[4];
    struct as_points pts[4];
    int n;
    struct as_state st;
    int current;
    int64_t now_ms;
    bool deploying;
};

static void sim_init(struct sim *sim, int min, int max, int current)
{
    memset(sim, 0, sizeof *sim);
    sim->t = target(min, max);
    sim->s = defaults;
    sim->current = current;
    sim->now_ms = 1000000;
    as_state_init(&sim->st, &sim->t);
}

/* One decision at now_ms, carried out at once. */
static struct as_decision sim_step(struct sim *sim)
{
    struct as_decision d;
    as_decide(&sim->t, &sim->s, sim->policies, sim->pts, sim->n, sim->current, sim->deploying,
              sim->now_ms, &sim->st, &d);
    if (d.kind != AS_NONE) {
        as_state_acted(&sim->st, d.policy_index >= 0 ? sim->policies[d.policy_index] : NULL, &d,
                       sim->now_ms);
        sim->current = d.desired;
    }
    return d;
}

/* The StepScalingPolicyConfiguration Cooldown example: +2, then during the cooldown a step of
 * +3 adds only 1 (the 2 already added count), a repeat of +2 adds nothing, and after the
 * cooldown +2 adds 2 again. */
static void test_step_cooldown(void **state)
{
    (void)state;
    static const struct as_step two[] = {IN(0, 10, 2), LO(10, 3)};
    struct as_policy p = step("s", AS_CHANGE_IN_CAPACITY, AS_GT, 50, two, 2);
    p.cooldown_ms = 300000;
    struct sim sim;
    sim_init(&sim, 1, 100, 4);
    sim.policies[0] = &p;
    sim.n = 1;
    sim.pts[0] = flat(55, 1);
    struct as_decision d = sim_step(&sim);
    expect("+2", &d, AS_SCALE_OUT, 6);
    sim.now_ms += 60000;
    d = sim_step(&sim);
    expect("+2 again during the cooldown", &d, AS_NONE, 0);
    sim.pts[0] = flat(65, 1);
    d = sim_step(&sim);
    expect("+3 during the cooldown adds 1", &d, AS_SCALE_OUT, 7);
    sim.now_ms += 60000;
    d = sim_step(&sim);
    expect("+3 again: the first scale-out's base still counts", &d, AS_NONE, 0);
    sim.now_ms += 300000;
    sim.pts[0] = flat(55, 1);
    d = sim_step(&sim);
    expect("+2 after the cooldown", &d, AS_SCALE_OUT, 9);
}

/* Target tracking's cooldowns (TargetTrackingScalingPolicyConfiguration): scale-in waits out the
 * scale-out cooldown and its own; a scale-out during the scale-in cooldown happens at once and
 * ends it; a scale-out during the scale-out cooldown happens when it asks for more. */
static void test_tracking_cooldowns(void **state)
{
    (void)state;
    struct as_policy p = tracking("cpu", 50);
    struct sim sim;
    sim_init(&sim, 1, 100, 10);
    sim.policies[0] = &p;
    sim.n = 1;
    sim.pts[0] = flat(75, 2);
    struct as_decision d = sim_step(&sim);
    expect("out to 15", &d, AS_SCALE_OUT, 15);
    sim.now_ms += 10000;
    sim.pts[0] = flat(80, 2);
    d = sim_step(&sim);
    expect("more during the scale-out cooldown: ceil(15 * 80 / 50)", &d, AS_SCALE_OUT, 24);
    sim.now_ms += 10000;
    sim.pts[0] = flat(10, 12);
    d = sim_step(&sim);
    expect("scale-in during the scale-out cooldown", &d, AS_NONE, 0);
    sim.now_ms += 300000;
    d = sim_step(&sim);
    expect("scale-in after it: ceil(24 * 10 / 50)", &d, AS_SCALE_IN, 5);
    sim.now_ms += 10000;
    sim.pts[0] = flat(30, 12);
    d = sim_step(&sim);
    expect("another scale-in during the scale-in cooldown", &d, AS_NONE, 0);
    sim.pts[0] = flat(100, 2);
    d = sim_step(&sim);
    expect("scale-out during the scale-in cooldown: at once", &d, AS_SCALE_OUT, 10);
    assert_int_equal(sim.st.in_cooldown_until_ms, 0);
    sim.now_ms += 300000;
    sim.pts[0] = flat(20, 12);
    d = sim_step(&sim);
    expect("after both cooldowns", &d, AS_SCALE_IN, 4);
}

/* ---- Several policies -------------------------------------------------------------------- */

static void test_several_policies(void **state)
{
    (void)state;
    struct as_policy cpu = tracking("cpu", 50), mem = tracking("mem", 50);
    struct sim sim;
    sim_init(&sim, 1, 100, 10);
    sim.policies[0] = &cpu;
    sim.policies[1] = &mem;
    sim.n = 2;

    sim.pts[0] = flat(75, 12);
    sim.pts[1] = flat(10, 12);
    struct as_decision d = sim_step(&sim);
    expect("any asks out", &d, AS_SCALE_OUT, 15);
    assert_string_equal(d.policy, "cpu");

    sim_init(&sim, 1, 100, 10);
    sim.policies[0] = &cpu;
    sim.policies[1] = &mem;
    sim.n = 2;
    sim.pts[0] = flat(75, 2);
    sim.pts[1] = flat(100, 2);
    d = sim_step(&sim);
    expect("the largest wins", &d, AS_SCALE_OUT, 20);
    assert_string_equal(d.policy, "mem");
    assert_int_equal(d.policy_index, 1);

    sim_init(&sim, 1, 100, 10);
    sim.policies[0] = &cpu;
    sim.policies[1] = &mem;
    sim.n = 2;
    sim.pts[0] = flat(10, 12);
    sim.pts[1] = flat(50, 12);
    d = sim_step(&sim);
    expect("one at its target blocks the scale-in", &d, AS_NONE, 0);
    sim.pts[1] = flat(20, 12);
    d = sim_step(&sim);
    expect("all agree: the largest (most conservative) capacity", &d, AS_SCALE_IN, 4);

    mem.disable_scale_in = true;
    sim_init(&sim, 1, 100, 10);
    sim.policies[0] = &cpu;
    sim.policies[1] = &mem;
    sim.n = 2;
    sim.pts[0] = flat(10, 12);
    sim.pts[1] = flat(50, 12);
    d = sim_step(&sim);
    expect("a DisableScaleIn policy has no say in scale-in", &d, AS_SCALE_IN, 2);

    /* a scale-out-only step policy whose alarm is OK neither blocks nor asks */
    struct as_policy out = step("out", AS_CHANGE_IN_CAPACITY, AS_GT, 90, guide_out, 3);
    sim_init(&sim, 1, 100, 10);
    sim.policies[0] = &cpu;
    sim.policies[1] = &out;
    sim.n = 2;
    sim.pts[0] = flat(10, 12);
    sim.pts[1] = flat(10, 1);
    d = sim_step(&sim);
    expect("a step policy in OK does not block", &d, AS_SCALE_IN, 2);
}

/* ---- Bounds, suspension, deployments ----------------------------------------------------- */

static void test_clamp_and_schedule(void **state)
{
    (void)state;
    struct as_policy p = tracking("cpu", 50);
    struct sim sim;
    sim_init(&sim, 2, 10, 12);
    sim.policies[0] = &p;
    sim.n = 1;
    sim.pts[0] = flat(100, 2); /* whatever the metric says */
    struct as_decision d = sim_step(&sim);
    expect("above max: brought inside at once", &d, AS_CLAMP, 10);
    assert_string_equal(d.cause, "maximum capacity was set to 10");
    assert_string_equal(d.description, "Setting desired count to 10.");
    assert_int_equal(d.policy_index, -1);

    /* put-scheduled-action: MinCapacity 15 in the morning */
    struct as_scheduled_action a = {.has_min = true, .min_capacity = 15};
    as_state_schedule(&sim.st, &a);
    assert_int_equal(sim.st.min_capacity, 15);
    assert_int_equal(sim.st.max_capacity, 15); /* the max follows, as min <= max */
    sim.t.in_suspended = sim.t.out_suspended = true;
    sim.deploying = true;
    sim.pts[0] = flat(10, 12);
    d = sim_step(&sim);
    expect("below a new min: at once, suspended or deploying", &d, AS_CLAMP, 15);
    assert_string_equal(d.cause, "minimum capacity was set to 15");

    struct as_scheduled_action night = {
        .has_min = true, .has_max = true, .min_capacity = 1, .max_capacity = 4};
    as_state_schedule(&sim.st, &night);
    assert_int_equal(sim.st.min_capacity, 1);
    assert_int_equal(sim.st.max_capacity, 4);
    struct as_scheduled_action cap = {.has_max = true, .max_capacity = 0};
    as_state_schedule(&sim.st, &cap);
    assert_int_equal(sim.st.min_capacity, 0);
    assert_int_equal(sim.st.max_capacity, 0);
}

static void test_suspended_and_deploying(void **state)
{
    (void)state;
    struct as_policy p = tracking("cpu", 50);
    struct sim sim;
    sim_init(&sim, 1, 100, 10);
    sim.policies[0] = &p;
    sim.n = 1;
    sim.t.out_suspended = true;
    sim.pts[0] = flat(100, 12);
    struct as_decision d = sim_step(&sim);
    expect("DynamicScalingOutSuspended", &d, AS_NONE, 0);
    sim.t.out_suspended = false;
    sim.t.in_suspended = true;
    sim.pts[0] = flat(10, 12);
    d = sim_step(&sim);
    expect("DynamicScalingInSuspended", &d, AS_NONE, 0);
    sim.t.in_suspended = false;
    sim.deploying = true;
    d = sim_step(&sim);
    expect("no scale-in during a deployment", &d, AS_NONE, 0);
    sim.pts[0] = flat(100, 12);
    d = sim_step(&sim);
    expect("scale-out during a deployment", &d, AS_SCALE_OUT, 20);
}

/* ---- Synthetic series -------------------------------------------------------------------- */

/* Pushes one datapoint, dropping the oldest when full. */
static void push(struct as_points *p, double v)
{
    if (p->n == AS_MAX_POINTS) {
        memmove(p->value, p->value + 1, sizeof p->value[0] * (AS_MAX_POINTS - 1));
        memmove(p->present, p->present + 1, sizeof p->present[0] * (AS_MAX_POINTS - 1));
        p->n--;
    }
    p->value[p->n] = v;
    p->present[p->n] = true;
    p->n++;
}

/* Five simulated minutes at 5 s datapoints of noise within +/-5 % of the target (a fixed
 * pseudo-random walk): never an action. */
static void test_noise_never_acts(void **state)
{
    (void)state;
    struct as_policy p = tracking("cpu", 50);
    struct sim sim;
    sim_init(&sim, 1, 100, 10);
    sim.policies[0] = &p;
    sim.n = 1;
    unsigned seed = 12345;
    for (int i = 0; i < 5 * MIN_MS / 5000; i++) {
        seed = seed * 1103515245u + 12345u;
        double noise = ((double)(seed >> 16 & 0x7fff) / 0x7fff * 2 - 1) * 0.05;
        push(&sim.pts[0], 50 * (1 + noise));
        struct as_decision d = sim_step(&sim);
        if (d.kind != AS_NONE)
            fail_msg("acted at datapoint %d (%g): %s to %d", i, sim.pts[0].value[sim.pts[0].n - 1],
                     kind_name(d.kind), d.desired);
        sim.now_ms += 5000;
    }
}

/* A 4x load step (50 % -> 200 %) is acted on at the scale_out_datapoints-th datapoint after it,
 * with the proportional capacity at once; the same with 3 of 5. */
static void test_load_step_acts_within_datapoints(void **state)
{
    (void)state;
    static const int m_of_n[][2] = {{2, 2}, {1, 1}, {3, 5}};
    for (size_t k = 0; k < N(m_of_n); k++) {
        struct as_policy p = tracking("cpu", 50);
        struct sim sim;
        sim_init(&sim, 1, 100, 10);
        sim.s.scale_out_datapoints = m_of_n[k][0];
        sim.s.scale_out_periods = m_of_n[k][1];
        sim.policies[0] = &p;
        sim.n = 1;
        for (int i = 0; i < 20; i++)
            push(&sim.pts[0], 50);
        int acted_at = -1;
        for (int i = 1; i <= 10 && acted_at < 0; i++) {
            push(&sim.pts[0], 200);
            struct as_decision d = sim_step(&sim);
            if (d.kind == AS_SCALE_OUT) {
                acted_at = i;
                assert_int_equal(d.desired, 40);
            }
            sim.now_ms += 5000;
        }
        if (acted_at != m_of_n[k][0])
            fail_msg("%d of %d: acted at datapoint %d", m_of_n[k][0], m_of_n[k][1], acted_at);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_target_tracking),
        cmocka_unit_test(test_disable_scale_in),
        cmocka_unit_test(test_texts),
        cmocka_unit_test(test_step_scaling),
        cmocka_unit_test(test_step_alarm),
        cmocka_unit_test(test_step_cooldown),
        cmocka_unit_test(test_tracking_cooldowns),
        cmocka_unit_test(test_several_policies),
        cmocka_unit_test(test_clamp_and_schedule),
        cmocka_unit_test(test_suspended_and_deploying),
        cmocka_unit_test(test_noise_never_acts),
        cmocka_unit_test(test_load_step_acts_within_datapoints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
