/* The decision engine (engine.h states the rules). Each policy first makes a proposal on its own
 * (scale out to N, scale in to N, or nothing); the proposals are then combined, clamped and held
 * against the cooldowns. Nothing here reads a clock or does I/O. */
#include "autoscaler/engine.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ceil() of a capacity computed in floating point: 10 * 0.7 / 0.35 must give 20, not 21. */
static const double CEIL_SLACK = 1e-9;

struct proposal {
    enum as_kind kind; /* AS_NONE, AS_SCALE_OUT or AS_SCALE_IN */
    int desired;
};

/* ---- target tracking --------------------------------------------------------------------- */

static bool is_above(double v, const struct as_policy *p, const struct as_settings *s)
{
    return v > p->target_value * (1.0 + s->scale_out_tolerance);
}

static bool is_below(double v, const struct as_policy *p, const struct as_settings *s)
{
    return v < p->target_value * (1.0 - s->scale_in_tolerance);
}

/* How many of the last `window` datapoints are present and satisfy `test`. */
static int count_last(const struct as_points *pts, int window, const struct as_policy *p,
                      const struct as_settings *s,
                      bool (*test)(double, const struct as_policy *, const struct as_settings *))
{
    int n = 0;
    for (int i = pts->n - 1; i >= 0 && i >= pts->n - window; i--)
        n += pts->present[i] && test(pts->value[i], p, s);
    return n;
}

static struct proposal tracking_proposal(const struct as_policy *p, const struct as_settings *s,
                                         const struct as_points *pts, int current)
{
    struct proposal none = {AS_NONE, current};
    if (pts->n < 1 || !pts->present[pts->n - 1])
        return none;
    double want = (double)current * pts->value[pts->n - 1] / p->target_value;
    int desired = (int)fmin(ceil(want - CEIL_SLACK), 1e6);
    if (desired > current &&
        count_last(pts, s->scale_out_periods, p, s, is_above) >= s->scale_out_datapoints)
        return (struct proposal){AS_SCALE_OUT, desired};
    if (desired < current && !p->disable_scale_in && pts->n >= s->scale_in_datapoints &&
        count_last(pts, s->scale_in_datapoints, p, s, is_below) == s->scale_in_datapoints)
        return (struct proposal){AS_SCALE_IN, desired};
    return none;
}

/* ---- step scaling ------------------------------------------------------------------------ */

static bool breaches(const struct as_alarm *a, double v)
{
    switch (a->comparison) {
    case AS_GT:
        return v > a->threshold;
    case AS_GTE:
        return v >= a->threshold;
    case AS_LT:
        return v < a->threshold;
    case AS_LTE:
        return v <= a->threshold;
    }
    return false;
}

/* The alarm's window aggregated by MetricAggregationType, when the alarm is in ALARM. */
static bool alarm_value(const struct as_policy *p, const struct as_points *pts, double *out)
{
    const struct as_alarm *a = &p->alarm;
    int breaching = 0, present = 0;
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    for (int i = pts->n - 1; i >= 0 && i >= pts->n - a->evaluation_periods; i--) {
        if (!pts->present[i])
            continue;
        double v = pts->value[i];
        breaching += breaches(a, v);
        present++;
        sum += v;
        lo = fmin(lo, v);
        hi = fmax(hi, v);
    }
    if (breaching < a->datapoints_to_alarm)
        return false;
    *out = p->aggregation == AS_AGG_MINIMUM   ? lo
           : p->aggregation == AS_AGG_MAXIMUM ? hi
                                              : sum / present;
    return true;
}

/* StepAdjustment's bounds: above the threshold the lower bound is inclusive and the upper
 * exclusive, below it the other way round. Exactly at the threshold counts as the alarm's side:
 * above for a Greater* alarm, below for a Less* one. */
static const struct as_step *pick_step(const struct as_policy *p, double v)
{
    double diff = v - p->alarm.threshold;
    bool upper_side = p->alarm.comparison == AS_GT || p->alarm.comparison == AS_GTE;
    bool above = diff > 0 || (diff == 0 && upper_side);
    for (int i = 0; i < p->n_steps; i++) {
        const struct as_step *st = &p->steps[i];
        bool lower_ok = !st->has_lower || (above ? diff >= st->lower : diff > st->lower);
        bool upper_ok = !st->has_upper || (above ? diff < st->upper : diff <= st->upper);
        if (lower_ok && upper_ok)
            return st;
    }
    return NULL;
}

/* PercentChangeInCapacity's change, rounded as AWS documents: between 0 and 1 to 1, between -1
 * and 0 to -1, above 1 down, below -1 up (towards zero); then at least MinAdjustmentMagnitude. */
static int percent_change(int base, int percent, int min_magnitude)
{
    double raw = (double)base * percent / 100.0;
    int change = raw > 0 && raw < 1    ? 1
                 : raw < 0 && raw > -1 ? -1
                 : raw > 0             ? (int)floor(raw + CEIL_SLACK)
                                       : (int)ceil(raw - CEIL_SLACK);
    if (change > 0 && change < min_magnitude)
        change = min_magnitude;
    if (change < 0 && -change < min_magnitude)
        change = -min_magnitude;
    return change;
}

static struct proposal step_proposal(const struct as_policy *p, const struct as_points *pts,
                                     int current, const struct as_state *st, bool out_cooldown)
{
    struct proposal none = {AS_NONE, current};
    double v;
    const struct as_step *step = alarm_value(p, pts, &v) ? pick_step(p, v) : NULL;
    if (!step)
        return none;
    int adj = step->scaling_adjustment;
    /* during a scale-out cooldown, the capacity the cooldown's scale-out added counts as part of
     * this one: +2 then +3 adds 1 */
    int base = adj > 0 && out_cooldown ? st->out_cooldown_base : current;
    long desired = p->adjustment == AS_EXACT_CAPACITY ? adj
                   : p->adjustment == AS_CHANGE_IN_CAPACITY
                       ? (long)base + adj
                       : (long)base + percent_change(base, adj, p->min_adjustment_magnitude);
    if (desired < 0)
        desired = 0;
    if (desired > current)
        return (struct proposal){AS_SCALE_OUT, (int)desired};
    if (desired < current)
        return (struct proposal){AS_SCALE_IN, (int)desired};
    return none;
}

/* ---- texts ------------------------------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The alarm target tracking would have created: AWS names it TargetTracking-RESOURCE-AlarmHigh-
 * UUID; Gantry's UUID-shaped part is a hash of the resource, policy and side, so it is the same
 * at every decision and across restarts. */
static void tracking_alarm_name(const struct as_policy *p, bool high, char *out, size_t size)
{
    const char *side = high ? "AlarmHigh" : "AlarmLow";
    uint64_t a = fnv1a(fnv1a(fnv1a(14695981039346656037ULL, p->resource_id), p->name), side);
    uint64_t b = fnv1a(a, "gantry");
    snprintf(out, size, "TargetTracking-%.200s-%s-%08x-%04x-%04x-%04x-%012llx", p->resource_id,
             side, (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xffff,
             (unsigned)(b >> 48), (unsigned long long)(b & 0xffffffffffffULL));
}

static void describe(struct as_decision *d, const struct as_policy *p, int index)
{
    char alarm[300];
    d->policy_index = index;
    snprintf(d->policy, sizeof d->policy, "%s", p->name);
    snprintf(d->description, sizeof d->description, "Setting desired count to %d.", d->desired);
    if (p->type == AS_TARGET_TRACKING)
        tracking_alarm_name(p, d->kind == AS_SCALE_OUT, alarm, sizeof alarm);
    else
        snprintf(alarm, sizeof alarm, "%.255s", p->alarm.name);
    snprintf(d->cause, sizeof d->cause,
             "monitor alarm %.262s in state ALARM triggered policy %.200s", alarm, p->name);
}

static bool clamp_decision(struct as_decision *d, int desired, const char *bound)
{
    d->kind = AS_CLAMP;
    d->desired = desired;
    snprintf(d->description, sizeof d->description, "Setting desired count to %d.", desired);
    snprintf(d->cause, sizeof d->cause, "%s capacity was set to %d", bound, desired);
    return true;
}

/* ---- combining --------------------------------------------------------------------------- */

/* The index of the proposal of `kind` with the largest capacity (the first on a tie), or -1. */
static int largest(const struct proposal *props, int n, enum as_kind kind)
{
    int best = -1;
    for (int i = 0; i < n; i++)
        if (props[i].kind == kind && (best < 0 || props[i].desired > props[best].desired))
            best = i;
    return best;
}

/* AWS's rule for several target tracking policies: scale in only if all of those with scale-in
 * enabled are ready to. */
static bool tracking_agrees_in(const struct as_policy *const *policies,
                               const struct proposal *props, int n)
{
    for (int i = 0; i < n; i++)
        if (policies[i]->type == AS_TARGET_TRACKING && !policies[i]->disable_scale_in &&
            props[i].kind != AS_SCALE_IN)
            return false;
    return true;
}

void as_state_init(struct as_state *st, const struct as_target *t)
{
    memset(st, 0, sizeof *st);
    st->min_capacity = t->min_capacity;
    st->max_capacity = t->max_capacity;
}

bool as_decide(const struct as_target *t, const struct as_settings *s,
               const struct as_policy *const *policies, const struct as_points *points, int n,
               int current, bool deployment_in_progress, int64_t now_ms, struct as_state *st,
               struct as_decision *out)
{
    memset(out, 0, sizeof *out);
    out->kind = AS_NONE;
    out->current = current;
    out->desired = current;
    out->policy_index = -1;
    if (current < st->min_capacity)
        return clamp_decision(out, st->min_capacity, "minimum");
    if (current > st->max_capacity)
        return clamp_decision(out, st->max_capacity, "maximum");
    bool out_cooldown = now_ms < st->out_cooldown_until_ms;
    struct proposal props[n > 0 ? n : 1];
    for (int i = 0; i < n; i++)
        props[i] = policies[i]->type == AS_TARGET_TRACKING
                       ? tracking_proposal(policies[i], s, &points[i], current)
                       : step_proposal(policies[i], &points[i], current, st, out_cooldown);
    int best = largest(props, n, AS_SCALE_OUT);
    if (best >= 0) { /* a policy asking for more: never a scale-in then */
        int desired =
            props[best].desired < st->max_capacity ? props[best].desired : st->max_capacity;
        if (t->out_suspended || desired <= current ||
            (out_cooldown && desired <= st->out_cooldown_capacity))
            return false;
        out->kind = AS_SCALE_OUT;
        out->desired = desired;
        describe(out, policies[best], best);
        return true;
    }
    best = largest(props, n, AS_SCALE_IN);
    if (best < 0 || t->in_suspended || deployment_in_progress || out_cooldown ||
        now_ms < st->in_cooldown_until_ms || !tracking_agrees_in(policies, props, n))
        return false;
    int desired = props[best].desired > st->min_capacity ? props[best].desired : st->min_capacity;
    if (desired >= current)
        return false;
    out->kind = AS_SCALE_IN;
    out->desired = desired;
    describe(out, policies[best], best);
    return true;
}

void as_state_acted(struct as_state *st, const struct as_policy *policy,
                    const struct as_decision *d, int64_t now_ms)
{
    if (!policy || d->kind == AS_CLAMP || d->kind == AS_NONE)
        return;
    bool tracking = policy->type == AS_TARGET_TRACKING;
    if (d->kind == AS_SCALE_OUT) {
        /* a scale-out inside a running cooldown keeps that cooldown's base: what the first one
         * added still counts */
        if (now_ms >= st->out_cooldown_until_ms)
            st->out_cooldown_base = d->current;
        st->out_cooldown_until_ms =
            now_ms + (tracking ? policy->scale_out_cooldown_ms : policy->cooldown_ms);
        st->out_cooldown_capacity = d->desired;
        st->in_cooldown_until_ms = 0; /* a scale-out ends the scale-in cooldown */
        return;
    }
    st->in_cooldown_until_ms =
        now_ms + (tracking ? policy->scale_in_cooldown_ms : policy->cooldown_ms);
}

void as_state_schedule(struct as_state *st, const struct as_scheduled_action *a)
{
    if (a->has_min) {
        st->min_capacity = a->min_capacity;
        if (!a->has_max && st->max_capacity < st->min_capacity)
            st->max_capacity = st->min_capacity;
    }
    if (a->has_max) {
        st->max_capacity = a->max_capacity;
        if (!a->has_min && st->min_capacity > st->max_capacity)
            st->min_capacity = st->max_capacity;
    }
}
