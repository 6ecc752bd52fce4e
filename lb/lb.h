/* gantry-lb's runtime: the process context, the configuration generations and the workers.
 *
 * Threads: the main thread loads configuration, owns the admin listener and handles signals;
 * each worker thread runs its own libev loop over its own SO_REUSEPORT listening sockets and
 * shares nothing on the request path.
 *
 * Generations: every (re)load builds an immutable struct lb_gen (routes, settings, sockets,
 * stats links). Workers switch to a new generation between requests, so a reload never drops a
 * connection or a request: a connection's next request uses the new rules. A generation is freed
 * once no worker uses it (refcount), and listening sockets whose address stays are carried over,
 * so nothing in the kernel's accept queue is lost. */
#ifndef GANTRY_LB_LB_H
#define GANTRY_LB_LB_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/daemon.h"
#include "common/http1.h"
#include "common/net.h"
#include "config/config.h"
#include "lb/balancer.h"
#include "lb/health.h"
#include "lb/router.h"
#include "lb/stats.h"

enum { LB_MAX_WORKERS = 64 };

/* What a generation needs of the configuration, copied so the config's memory can go. */
struct lb_settings {
    int64_t client_header_timeout_ms;
    int64_t idle_timeout_ms;
    int64_t connect_timeout_ms;
    int64_t target_response_timeout_ms;
    int64_t upstream_idle_timeout_ms;
    int64_t stop_timeout_ms;
    struct http1_limits limits;
    int64_t max_body_size;
    int64_t upstream_keepalive;
    int64_t max_upstream_connections;
    int64_t retries;
    bool retry_idempotent;
    bool access_log;
    int access_log_format;
};

/* A listening socket; one per listener and worker, shared by the generations that keep it. */
struct lb_socket {
    int fd;
    struct net_addr addr;  /* as configured (port 0: any) */
    struct net_addr bound; /* what it got */
    atomic_int refs;
};

struct lb_ctx;

struct lb_gen {
    struct lb_gen *next_dead; /* freed by the main thread, which owns target health */
    atomic_int refs;
    unsigned id;
    struct lb_ctx *ctx;
    struct lb_routes *routes;
    struct lb_settings settings;
    size_t n_listeners;
    size_t n_workers;
    struct lb_socket **sockets;            /* [listener * n_workers + worker] */
    struct lb_stat_block **listener_stats; /* [listener] */
    struct lb_stat_block **group_stats;    /* [group] */
};

struct lb_worker;
struct lb_access_log;

struct lb_discovery;
struct lb_metrics_writer;

struct lb_ctx {
    struct ev_loop *loop; /* the main thread's */
    struct daemon_args args;
    struct gantry_config cfg; /* the last configuration accepted */
    bool have_cfg;
    struct lb_discovery *discovery; /* when a target group's members come from Redis */
    bool quick;                     /* --to given: the listener and group come from the flags */
    struct daemon_signals signals;
    size_t n_workers;
    struct lb_worker *workers;
    struct lb_gen *_Atomic current; /* what workers switch to */
    unsigned next_gen_id;
    struct lb_stats stats;
    struct lb_health health; /* main thread */
    pthread_t main_thread;
    pthread_mutex_t dead_lock;
    pthread_mutex_t current_lock; /* switching `current` vs a worker taking a reference on it */
    struct lb_gen *dead;          /* released on a worker thread, to free on the main one */
    ev_timer health_poll;
    atomic_long connections;     /* client connections open, all workers */
    atomic_long max_connections; /* lb.max_connections, reloadable */
    bool stopping;
    ev_timer stop_timer;
    ev_async worker_news; /* a worker exited or applied a generation */
    atomic_int workers_running;
    unsigned announce_gen; /* a reloaded generation to report once every worker applies it */
    struct lb_access_log *access_log;
    struct lb_metrics_writer *metrics; /* the metric store's writer (main thread) */
    /* admin */
    int admin_fd;
    ev_io admin_io;
    struct net_addr admin_addr;
};

/* gen.c */
struct lb_gen *lb_gen_build(struct lb_ctx *ctx, const struct gantry_config *cfg,
                            const struct lb_gen *previous, char *err, size_t errlen);
/* ctx->current with a reference taken, atomically with respect to lb_gen_swap(). */
struct lb_gen *lb_gen_current(struct lb_ctx *ctx);
/* Makes gen current; returns the previous one, whose reference passes to the caller. */
struct lb_gen *lb_gen_swap(struct lb_ctx *ctx, struct lb_gen *gen);
void lb_gen_retain(struct lb_gen *gen);
/* Any thread; the last release frees the generation on the main thread (lb_gen_reap). */
void lb_gen_release(struct lb_gen *gen);
/* Main thread: frees the generations workers let go of. */
void lb_gen_reap(struct lb_ctx *ctx);

/* main.c: a new generation from ctx->cfg and the current membership (after a membership change
 * or a drain); 0, or -1 when it could not be built (the running one stays). */
int lb_rebuild(struct lb_ctx *ctx, const char *why);

/* worker.c */
int lb_workers_start(struct lb_ctx *ctx, char *err, size_t errlen);
/* Makes every worker pick up ctx->current. */
void lb_workers_notify(struct lb_ctx *ctx);
/* Stops accepting, finishes in-flight requests, then the worker threads exit. */
void lb_workers_stop(struct lb_ctx *ctx);
void lb_workers_join(struct lb_ctx *ctx);

/* admin.c */
int lb_admin_start(struct lb_ctx *ctx, const struct net_addr *addr, char *err, size_t errlen);
void lb_admin_stop(struct lb_ctx *ctx);

#endif
