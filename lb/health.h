/* Target health, shared by every configuration generation: one lb_tstate per (group, address).
 *
 * The main thread owns the registry, runs the active checks (once per process, not per worker)
 * and makes every state transition. Workers read a target's state with one atomic load, so they
 * all see a change at once; a worker that cannot connect to a target marks it down (passive health)
 * with an atomic flag, and the main thread picks the mark up. States and reason codes are ALB's:
 *   initial -> healthy after one passing check; healthy -> unhealthy after unhealthy_threshold
 *   failures in a row; unhealthy -> healthy after healthy_threshold passes in a row; a
 *   deregistered target is draining until nothing is in flight or deregistration_delay passes,
 *   then unused. Without checks (enabled: false) a target is healthy. */
#ifndef GANTRY_LB_HEALTH_H
#define GANTRY_LB_HEALTH_H

#include <ev.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/net.h"
#include "config/lb_config.h"

enum lb_target_state {
    LB_TARGET_INITIAL,
    LB_TARGET_HEALTHY,
    LB_TARGET_UNHEALTHY,
    LB_TARGET_DRAINING,
    LB_TARGET_UNUSED,
};

enum lb_target_reason {
    LB_REASON_NONE,
    LB_REASON_INITIAL_HEALTH_CHECKING, /* Elb.InitialHealthChecking */
    LB_REASON_FAILED_HEALTH_CHECKS,    /* Target.FailedHealthChecks */
    LB_REASON_RESPONSE_CODE_MISMATCH,  /* Target.ResponseCodeMismatch */
    LB_REASON_TIMEOUT,                 /* Target.Timeout */
    LB_REASON_CONNECTION_FAILED,       /* Target.ConnectionFailed: a worker could not connect */
    LB_REASON_DEREGISTRATION,          /* Target.DeregistrationInProgress */
    LB_REASON_NOT_REGISTERED,          /* Target.NotRegistered */
    LB_REASON_HEALTH_CHECK_DISABLED,   /* Target.HealthCheckDisabled */
};

extern const char *const lb_target_state_names[];
extern const char *const lb_target_reason_names[];

struct lb_health;
struct lb_stat_block;

struct lb_tstate {
    struct lb_tstate *next;
    struct lb_health *registry;
    char group[40];
    char addr_text[NET_ADDR_TEXT_MAX];
    struct net_addr addr;
    /* read by workers */
    _Atomic int state;                /* enum lb_target_state */
    _Atomic int reason;               /* enum lb_target_reason */
    _Atomic int64_t since_ms;         /* wall clock of the last change */
    _Atomic int64_t healthy_since_ns; /* monotonic: slow start ramps from it */
    /* Every request bumps it: a cache line of its own, away from what every pick reads. */
    alignas(64) _Atomic int inflight; /* requests in flight to it, all workers and generations */
    char inflight_pad[60];
    _Atomic int64_t slow_start_ns; /* the group's slow_start, read by workers */
    atomic_bool checked;           /* health checks on: passive marks apply */
    atomic_bool passive_down;      /* set by a worker that could not connect */
    _Atomic int passive_from;      /* the state it was in then, for the log */
    struct lb_stat_block *stats;   /* its counters (lb/stats.h); retired with it */
    /* main thread only */
    int refs; /* generations whose routes hold it */
    bool registered;
    bool drain_reported;
    char redis_field[NET_ADDR_TEXT_MAX]; /* its field in Redis, as the member was written */
    int64_t drain_deadline_ns;
    struct lb_health_check_cfg hc;
    char hc_path[1024];
    int64_t slow_start_ms;
    int64_t deregistration_delay_ms;
    int passes, fails;
    int fd;
    ev_io io;
    ev_timer interval, timeout;
    struct buf in;
    struct buf out;
};

struct lb_health_hooks {
    /* A target changed state (on the main thread): log it, publish it. */
    void (*changed)(void *ctx, struct lb_tstate *t, int old_state);
    void *ctx;
};

struct lb_health {
    struct ev_loop *loop;
    struct lb_tstate *targets;
    struct lb_health_hooks hooks;
};

void lb_health_init(struct lb_health *h, struct ev_loop *loop, const struct lb_health_hooks *hooks);
/* Every target, checks stopped; called at exit. */
void lb_health_free(struct lb_health *h);
/* The state of (group, address), made on first use (initial, checks started; `registered` as
 * given) and taking the group's current settings; +1 reference. */
struct lb_tstate *lb_health_get(struct lb_health *h, const struct lb_target_group_cfg *group,
                                const struct net_addr *addr, bool registered);
/* -1 reference; the last one stops its checks and frees it. */
void lb_health_put(struct lb_health *h, struct lb_tstate *t);
struct lb_tstate *lb_health_find(struct lb_health *h, const char *group,
                                 const struct net_addr *addr);
/* A target that had left its group is registered again: it starts over as initial. */
void lb_health_register(struct lb_health *h, struct lb_tstate *t,
                        const struct lb_target_group_cfg *group);
/* A registered target left its group: it drains. */
void lb_health_deregister(struct lb_health *h, struct lb_tstate *t);
/* Applies workers' passive marks and ends the drains that are over; returns true when a draining
 * target became unused (the caller rebuilds routes without it). */
bool lb_health_poll(struct lb_health *h);

/* Worker side. */
static inline int lb_tstate_state(const struct lb_tstate *t)
{
    return atomic_load_explicit(&t->state, memory_order_relaxed);
}
/* A worker could not connect: the target is taken out at once; the checks bring it back. */
void lb_tstate_mark_down(struct lb_tstate *t);

#endif
