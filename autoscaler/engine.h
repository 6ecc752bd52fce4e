/* The decision engine: a pure function of (the target and its policies, each policy's recent
 * datapoints, the current capacity, the clock and what the engine did before). No I/O: the
 * daemon reads the metrics, calls as_decide once per period and acts on the decision.
 *
 * Semantics are Application Auto Scaling's (docs/autoscaler.md says which page each rule is from):
 * - target tracking proposes ceil(current * metric / TargetValue) once the metric has been above
 *   the target (by scale_out_tolerance) in scale_out_datapoints of the last scale_out_periods
 *   datapoints, or below it (by scale_in_tolerance) in each of the last scale_in_datapoints, the
 *   metric being the newest datapoint; a policy missing the datapoints it needs proposes nothing
 *   (the newest one must be present; a missing one never counts as above or below);
 * - step scaling: the alarm is in ALARM when datapoints_to_alarm of the last evaluation_periods
 *   breach the threshold; the datapoints of that window, aggregated by MetricAggregationType
 *   (Average, Minimum, Maximum), minus the threshold pick the step (the lower bound inclusive and
 *   the upper exclusive above the threshold, the other way round below it, as StepAdjustment
 *   documents); ChangeInCapacity / PercentChangeInCapacity (rounded as AWS does, at least
 *   MinAdjustmentMagnitude) / ExactCapacity; no step covering the value: no proposal;
 * - several policies: scale out if any asks (the largest capacity wins); scale in only if every
 *   target tracking policy with scale-in enabled asks (AWS's rule for target tracking), a step
 *   policy's scale-in needing no one's agreement but the target tracking ones' (a step policy
 *   whose alarm is not in ALARM proposes nothing and blocks nothing); the largest of the
 *   scale-in capacities wins;
 * - cooldowns as AWS documents them: during a scale-out cooldown a scale-out happens only if it
 *   sets more than the cooldown's scale-out did, and a step policy's change is counted from the
 *   capacity before that scale-out ("the capacity added by the initiating scale-out is
 *   calculated as part of the desired capacity for the next scale-out"); scale-in waits out
 *   scale-out and scale-in cooldowns; a scale-out during a scale-in cooldown happens at once and
 *   ends that cooldown;
 * - min/max: the result is clamped; a capacity outside (a changed min/max, a scheduled action)
 *   is brought inside at once, whatever the metrics, the suspended states or a deployment say;
 *   DynamicScalingIn/OutSuspended stop the policies' scale-ins/outs;
 * - no scale-in while the service has a deployment in progress (ECS turns scale-in off then). */
#ifndef GANTRY_AUTOSCALER_ENGINE_H
#define GANTRY_AUTOSCALER_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "autoscaler/model.h"

/* One policy's datapoints, oldest first; points[n-1] is the newest complete period. A missing
 * datapoint (no data in that period) has present[i] false: never read as zero. */
struct as_points {
    double value[AS_MAX_POINTS];
    bool present[AS_MAX_POINTS];
    int n;
};

/* What the engine remembers per scalable target between calls (kept by the daemon). */
struct as_state {
    int64_t out_cooldown_until_ms; /* 0: none */
    int out_cooldown_capacity;     /* the capacity the scale-out that started it set */
    int out_cooldown_base;         /* the capacity before that scale-out */
    int64_t in_cooldown_until_ms;
    int min_capacity, max_capacity; /* in force: the configured ones or a scheduled action's */
};

enum as_kind { AS_NONE, AS_SCALE_OUT, AS_SCALE_IN, AS_CLAMP };

struct as_decision {
    enum as_kind kind;
    int desired;
    int current;              /* the capacity decided from */
    int policy_index;         /* into the policies given to as_decide; -1 for AS_CLAMP */
    char policy[AS_NAME_MAX]; /* the policy that decided ("" for AS_CLAMP) */
    /* Application Auto Scaling's texts: "Setting desired count to 4." and "monitor alarm
     * TargetTracking-service/default/web-AlarmHigh-<id> in state ALARM triggered policy cpu"
     * (AlarmLow for a scale-in; <id> a stable UUID-shaped hash of the resource and policy, as AWS
     * names the alarms it creates; a step policy's own AlarmName), or "minimum capacity was set
     * to 2" / "maximum capacity was set to 5" for AS_CLAMP */
    char description[128];
    char cause[512];
};

/* Inputs for one target: its policies (pointers into the model) and their datapoints (the same
 * index), n of each: a target tracking policy's at autoscaler.period, a step policy's at its
 * alarm's Period. Returns true when out holds something to do (kind != AS_NONE); the state is
 * not changed (as_state_acted does that once the daemon has acted). */
void as_state_init(struct as_state *st, const struct as_target *t);
bool as_decide(const struct as_target *t, const struct as_settings *s,
               const struct as_policy *const *policies, const struct as_points *points, int n,
               int current, bool deployment_in_progress, int64_t now_ms, struct as_state *st,
               struct as_decision *out);
/* The decision was carried out (UpdateService succeeded) at now_ms: cooldowns start (policy:
 * policies[d->policy_index]; NULL for AS_CLAMP, which starts none). */
void as_state_acted(struct as_state *st, const struct as_policy *policy,
                    const struct as_decision *d, int64_t now_ms);
/* A scheduled action fires: its MinCapacity/MaxCapacity become the ones in force (the daemon
 * skips it when the target's ScheduledScalingSuspended). Given one bound only, the other moves
 * with it if they would cross, as AWS keeps min <= max. */
void as_state_schedule(struct as_state *st, const struct as_scheduled_action *a);

#endif
