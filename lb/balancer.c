#include "lb/balancer.h"

#include <stdlib.h>

uint64_t lb_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void lb_picker_init(struct lb_picker *p, uint64_t seed, uint32_t n_targets)
{
    p->rng = seed;
    /* A random start: workers that all began on target 0 would hit it together. */
    p->cursor = n_targets ? (uint32_t)(lb_random(&p->rng) % n_targets) : 0;
}

struct lb_pickers *lb_pickers_new(const struct lb_routes *routes, uint64_t seed)
{
    struct lb_pickers *ps =
        calloc(1, sizeof *ps + (size_t)routes->n_groups * sizeof(struct lb_picker));
    if (!ps)
        return NULL;
    uint64_t s = seed;
    ps->rng = lb_random(&s);
    ps->n_groups = routes->n_groups;
    for (uint32_t i = 0; i < routes->n_groups; i++)
        lb_picker_init(&ps->group[i], lb_random(&s), routes->groups[i].n_targets);
    return ps;
}

void lb_pickers_free(struct lb_pickers *pickers)
{
    free(pickers);
}

static inline bool eligible(const struct lb_target *t, const bool *usable)
{
    return t->weight > 0 && (!usable || usable[t->index]);
}

static const struct lb_target *round_robin(const struct lb_target_group *g, struct lb_picker *p,
                                           const bool *usable)
{
    uint32_t n = g->n_targets, i = p->cursor < n ? p->cursor : 0;
    for (uint32_t tried = 0; tried < n; tried++) {
        const struct lb_target *t = &g->targets[i];
        if (++i == n)
            i = 0;
        if (eligible(t, usable)) {
            p->cursor = i;
            return t;
        }
    }
    return NULL;
}

/* Starting from the cursor and keeping the first of equals is what spreads ties; an idle target
 * cannot be beaten, so the scan stops there. */
static const struct lb_target *least_outstanding(const struct lb_target_group *g,
                                                 struct lb_picker *p, const bool *usable)
{
    uint32_t n = g->n_targets, i = p->cursor < n ? p->cursor : 0, best_next = 0;
    const struct lb_target *best = NULL;
    uint32_t best_load = UINT32_MAX;
    for (uint32_t tried = 0; tried < n && best_load > 0; tried++) {
        const struct lb_target *t = &g->targets[i];
        if (++i == n)
            i = 0;
        if (!eligible(t, usable))
            continue;
        uint32_t load = lb_target_outstanding(t);
        if (!best || load < best_load) {
            best = t;
            best_load = load;
            best_next = i;
        }
    }
    if (best)
        p->cursor = best_next;
    return best;
}

/* The first target whose cumulative weight exceeds r: target i owns [cum[i-1], cum[i]), a range
 * as wide as its weight, empty for weight 0. */
static uint32_t weighted_index(const struct lb_target_group *g, uint64_t r)
{
    uint32_t lo = 0, hi = g->n_targets - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (g->cum_weight[mid] > r)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* With some targets excluded: the usable weights summed, then a linear draw among them. */
static const struct lb_target *weighted_scan(const struct lb_target_group *g, struct lb_picker *p,
                                             const bool *usable)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < g->n_targets; i++)
        if (eligible(&g->targets[i], usable))
            total += g->targets[i].weight;
    if (total == 0)
        return NULL;
    uint64_t r = lb_random(&p->rng) % total;
    for (uint32_t i = 0; i < g->n_targets; i++) {
        const struct lb_target *t = &g->targets[i];
        if (!eligible(t, usable))
            continue;
        if (r < t->weight)
            return t;
        r -= t->weight;
    }
    return NULL; /* unreachable: r < total */
}

/* Rejection sampling first: a draw over all targets that lands on a usable one is still
 * proportional among the usable ones, and costs O(log n). Only when exclusions are so many that
 * draws keep missing does the O(n) scan run. */
enum { WEIGHTED_TRIES = 4 };

static const struct lb_target *weighted_random(const struct lb_target_group *g, struct lb_picker *p,
                                               const bool *usable)
{
    if (g->total_weight == 0)
        return NULL;
    for (int tries = 0; tries < WEIGHTED_TRIES; tries++) {
        const struct lb_target *t =
            &g->targets[weighted_index(g, lb_random(&p->rng) % g->total_weight)];
        if (!usable || usable[t->index])
            return t;
    }
    return weighted_scan(g, p, usable);
}

const struct lb_target *lb_pick(const struct lb_target_group *g, struct lb_picker *p,
                                const bool *usable)
{
    if (g->n_targets == 0)
        return NULL;
    switch (g->algorithm) {
    case LB_LEAST_OUTSTANDING_REQUESTS:
        return least_outstanding(g, p, usable);
    case LB_WEIGHTED_RANDOM:
        return weighted_random(g, p, usable);
    default:
        return round_robin(g, p, usable);
    }
}
