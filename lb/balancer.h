/* Target selection within a target group, the three ALB routing algorithms:
 * - round_robin: the next target in order (weights are ignored, as ALB does, but 0 never sends);
 * - least_outstanding_requests: the fewest requests in flight across all workers (the targets'
 *   atomic counters); ties go round-robin so equal load spreads instead of piling on the first;
 * - weighted_random: each target with probability weight / total.
 * A picker is one worker's state for one group (cursor, PRNG), never shared between threads, so
 * picking takes no lock; the only shared writes are the relaxed atomic counters. `usable`, indexed
 * by lb_target.index, lets the engine exclude targets (connection limits, health, draining)
 * without rebuilding anything; NULL means all are usable. Weight 0 targets are never picked.
 * Picking allocates nothing: O(targets) at worst, O(log targets) for weighted_random when most
 * targets are usable. */
#ifndef GANTRY_LB_BALANCER_H
#define GANTRY_LB_BALANCER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lb/health.h"
#include "lb/router.h"

struct lb_picker {
    uint64_t rng;    /* splitmix64 state */
    uint32_t cursor; /* round_robin's next target; least_outstanding's first to try on a tie */
};

/* One worker's pickers, one per target group of a routes structure: the picker for group g is
 * &pickers->group[g->index]. Made again with the routes on every reload. */
struct lb_pickers {
    uint64_t rng; /* the worker's own random numbers, for lb_action_pick_group() */
    uint32_t n_groups;
    struct lb_picker group[];
};

/* seed differs per worker (its index will do), so workers start on different targets and draw
 * different random numbers. NULL when out of memory. */
struct lb_pickers *lb_pickers_new(const struct lb_routes *routes, uint64_t seed);
void lb_pickers_free(struct lb_pickers *pickers);

static inline struct lb_picker *lb_picker_for(struct lb_pickers *pickers,
                                              const struct lb_target_group *g)
{
    return &pickers->group[g->index];
}

void lb_picker_init(struct lb_picker *p, uint64_t seed, uint32_t n_targets);

/* splitmix64: the next random number from *state (any seed, 0 included, is fine). */
uint64_t lb_random(uint64_t *state);

/* A usable target of g, or NULL when none is (no target, all excluded or of weight 0). */
const struct lb_target *lb_pick(const struct lb_target_group *g, struct lb_picker *p,
                                const bool *usable);

/* The routes are shared read-only; the outstanding counter is their one mutable part, atomic, so
 * it is updated through a const target (the object itself was never const). Relaxed ordering: it
 * is a load estimate, nothing is published through it. */
static inline void lb_target_begin(const struct lb_target *t)
{
    atomic_fetch_add_explicit((_Atomic uint32_t *)&t->outstanding, 1, memory_order_relaxed);
}

static inline void lb_target_end(const struct lb_target *t)
{
    atomic_fetch_sub_explicit((_Atomic uint32_t *)&t->outstanding, 1, memory_order_relaxed);
}

/* Requests in flight to the target. The engine counts them in the target's health record,
 * which outlives reloads and membership changes (a per-generation count would start again at 0
 * each time while the old requests are still running); routes built without one (unit tests)
 * use the target's own counter. */
static inline uint32_t lb_target_outstanding(const struct lb_target *t)
{
    if (t->health)
        return (uint32_t)atomic_load_explicit(&t->health->inflight, memory_order_relaxed);
    return atomic_load_explicit((_Atomic uint32_t *)&t->outstanding, memory_order_relaxed);
}

#endif
