/* gantry-lb's counters. Each worker thread writes only its own slot of a block (relaxed atomic
 * stores of a single writer: plain adds on x86, no lock, no shared cache line); the main thread
 * sums the slots when /metrics is read and when the metrics writer (lb/metrics_writer.h) takes
 * each second's deltas. Listener and group blocks are kept by name in a registry that outlives
 * configuration reloads, so their counters never reset on SIGHUP. A target's block belongs to
 * its health record (lb/health.h), shared by the generations that route to it: it lives as long
 * as some generation does, then is retired, so that the writer can write what it counted last
 * before freeing it (targets come and go with tasks: their blocks must not pile up). */
#ifndef GANTRY_LB_STATS_H
#define GANTRY_LB_STATS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/net.h"
#include "metrics/hist.h"

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
    LB_C_ELB_4XX,              /* responses the balancer made itself, by class */
    LB_C_ELB_5XX,
    /* target groups and targets (LB_C_REQUESTS too: requests forwarded) */
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

/* A worker's target response times in metrics/hist.h's buckets. 32-bit counts: the
 * writer takes them every second and subtracts modulo 2^32, so they may wrap; they halve the
 * memory of a target's block, which the histogram dominates. */
struct lb_hist_slot {
    _Atomic uint32_t count[METRIC_HIST_BUCKETS];
} __attribute__((aligned(64)));

enum lb_stat_kind { LB_STAT_LISTENER, LB_STAT_GROUP, LB_STAT_PROCESS, LB_STAT_TARGET };

struct lb_stats;

struct lb_stat_block {
    struct lb_stat_block *next;
    struct lb_stats *owner;
    enum lb_stat_kind kind;
    char name[40];                  /* the listener or target group */
    char target[NET_ADDR_TEXT_MAX]; /* LB_STAT_TARGET: its HOST:PORT */
    size_t n_slots;
    struct lb_stat_slot *slots; /* one per worker */
    struct lb_hist_slot *hist;  /* groups and targets: one per worker, then the writer's copy */
    /* main thread only: the metrics writer's */
    int64_t taken[LB_C_COUNT]; /* the sums at its last lb_stat_take() */
    unsigned mark;             /* the flush that wrote it last */
};

struct lb_stats {
    pthread_mutex_t lock; /* taken to add blocks, never on the request path */
    size_t n_workers;
    struct lb_stat_block *blocks;
    struct lb_stat_block *process;
    struct lb_stat_block *retired; /* targets' blocks gone with their target (main thread) */
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

/* A target's block, outside the registry (its health record holds it); NULL when out of memory.
 * Main thread. */
struct lb_stat_block *lb_stats_target_block(struct lb_stats *s, const char *group,
                                            const char *target);
/* The target is gone: its block waits on the retired list for the writer's last flush. */
void lb_stats_retire(struct lb_stat_block *b);
/* The retired blocks, handed to the caller (free each with lb_stat_block_free()). */
struct lb_stat_block *lb_stats_take_retired(struct lb_stats *s);
void lb_stat_block_free(struct lb_stat_block *b);

int64_t lb_stat_sum(const struct lb_stat_block *b, enum lb_counter c);
/* A target response time of `us` microseconds, in `bucket` = metric_hist_bucket(us): counted
 * once per response in its group's block and once in its target's. */
void lb_count_latency(struct lb_stat_block *b, size_t worker, int64_t us, int bucket);
enum lb_counter lb_status_counter(int status);

/* For the metrics writer (main thread): what the block counted since the last take. */
int64_t lb_stat_take(struct lb_stat_block *b, enum lb_counter c);
/* The same for the latency histogram (empty for blocks without one). */
void lb_stat_take_hist(struct lb_stat_block *b, struct metric_hist *out);

/* Appends every counter in Prometheus text format. */
void lb_stats_render(struct lb_stats *s, struct buf *out);

#endif
