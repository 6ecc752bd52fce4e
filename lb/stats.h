/* gantry-lb's counters. Each worker thread writes only its own slot of a block (relaxed atomic
 * stores of a single writer: plain adds on x86, no lock, no shared cache line); the admin thread
 * sums the slots when /metrics is read. Blocks are kept by name in a registry that outlives
 * configuration reloads, so counters of a listener or target group never reset on SIGHUP. */
#ifndef GANTRY_LB_STATS_H
#define GANTRY_LB_STATS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Target response time buckets, upper bounds in microseconds (Prometheus histogram, seconds). */
#define LB_LATENCY_BUCKETS 14
extern const int64_t lb_latency_bounds_us[LB_LATENCY_BUCKETS];

enum lb_counter {
    /* listeners */
    LB_C_NEW_CONNECTIONS,
    LB_C_ACTIVE_CONNECTIONS, /* a gauge: incremented and decremented */
    LB_C_REQUESTS,
    LB_C_STATUS_1XX, /* the status the client got, by class */
    LB_C_STATUS_2XX,
    LB_C_STATUS_3XX,
    LB_C_STATUS_4XX,
    LB_C_STATUS_5XX,
    LB_C_BYTES_IN,
    LB_C_BYTES_OUT,
    /* errors the balancer generated, by kind */
    LB_C_ERR_BAD_REQUEST,    /* 400, 413, 414, 431, 501, 505 */
    LB_C_ERR_CLIENT_TIMEOUT, /* 408 or an idle close mid-request */
    LB_C_ERR_502,
    LB_C_ERR_503,
    LB_C_ERR_504,
    LB_C_REJECTED_CONNECTIONS, /* over max_connections */
    /* target groups */
    LB_C_TARGET_2XX,
    LB_C_TARGET_3XX,
    LB_C_TARGET_4XX,
    LB_C_TARGET_5XX,
    LB_C_TARGET_CONNECTION_ERRORS,
    LB_C_TARGET_NEW_CONNECTIONS,
    LB_C_TARGET_REUSED_CONNECTIONS,
    LB_C_RETRIES,
    LB_C_LATENCY_COUNT,
    LB_C_LATENCY_SUM_US,
    LB_C_LATENCY_BUCKET0, /* LB_LATENCY_BUCKETS of them */
    LB_C_COUNT = LB_C_LATENCY_BUCKET0 + LB_LATENCY_BUCKETS,
};

struct lb_stat_slot {
    _Atomic int64_t v[LB_C_COUNT];
} __attribute__((aligned(64)));

enum lb_stat_kind { LB_STAT_LISTENER, LB_STAT_GROUP, LB_STAT_PROCESS };

struct lb_stat_block {
    struct lb_stat_block *next;
    enum lb_stat_kind kind;
    char name[40];
    size_t n_slots;
    struct lb_stat_slot *slots; /* one per worker */
};

struct lb_stats {
    pthread_mutex_t lock; /* taken to add blocks, never on the request path */
    size_t n_workers;
    struct lb_stat_block *blocks;
    struct lb_stat_block *process;
};

int lb_stats_init(struct lb_stats *s, size_t n_workers);
void lb_stats_free(struct lb_stats *s);
/* The block of that kind and name, created on first use; NULL only when out of memory. */
struct lb_stat_block *lb_stats_block(struct lb_stats *s, enum lb_stat_kind kind, const char *name);

static inline void lb_count(struct lb_stat_block *b, size_t worker, enum lb_counter c, int64_t n)
{
    _Atomic int64_t *v = &b->slots[worker].v[c];
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

int64_t lb_stat_sum(const struct lb_stat_block *b, enum lb_counter c);
void lb_count_latency(struct lb_stat_block *b, size_t worker, int64_t us);
enum lb_counter lb_status_counter(int status);

/* Appends every counter in Prometheus text format. */
void lb_stats_render(struct lb_stats *s, struct buf *out);

#endif
