/* Configuration generations: building one from a loaded configuration (routes, settings,
 * listening sockets, stats blocks) and freeing it once the last worker lets go. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "lb/lb.h"
#include "lb/sticky.h"

enum { LISTEN_BACKLOG = 4096 };

static void settings_from_config(struct lb_settings *s, const struct config_lb *lb)
{
    s->client_header_timeout_ms = lb->client_header_timeout_ms;
    s->idle_timeout_ms = lb->idle_timeout_ms;
    s->connect_timeout_ms = lb->connect_timeout_ms;
    s->target_response_timeout_ms = lb->target_response_timeout_ms;
    s->upstream_idle_timeout_ms = lb->upstream_idle_timeout_ms;
    s->stop_timeout_ms = lb->stop_timeout_ms;
    s->limits.max_head = (size_t)lb->max_header_size;
    s->limits.max_line = (size_t)lb->max_request_line;
    s->limits.max_headers = (size_t)lb->max_headers;
    s->max_body_size = lb->max_body_size;
    s->upstream_keepalive = lb->upstream_keepalive;
    s->max_upstream_connections = lb->max_upstream_connections;
    s->retries = lb->retries;
    s->retry_idempotent = lb->retry_idempotent;
    s->access_log = lb->access_log.enabled;
    s->access_log_format = lb->access_log.format;
}

static void socket_release(struct lb_socket *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        close(s->fd);
        free(s);
    }
}

static bool same_addr(const struct net_addr *a, const struct net_addr *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* The previous generation's socket for the same address and worker, so that a reload keeps the
 * very socket (and its accept queue) rather than opening a new one. */
static struct lb_socket *reusable_socket(const struct lb_gen *prev, const struct net_addr *addr,
                                         size_t worker)
{
    if (!prev || worker >= prev->n_workers)
        return NULL;
    for (size_t l = 0; l < prev->n_listeners; l++) {
        struct lb_socket *s = prev->sockets[l * prev->n_workers + worker];
        if (same_addr(&s->addr, addr) || same_addr(&s->bound, addr))
            return s; /* the same address, or the port a "port 0" listener got */
    }
    return NULL;
}

static struct lb_socket *open_socket(const struct net_addr *addr, char *err, size_t errlen)
{
    struct lb_socket *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->fd = net_listen(addr, LISTEN_BACKLOG, true, err, errlen);
    if (s->fd < 0) {
        free(s);
        return NULL;
    }
    s->addr = *addr;
    atomic_init(&s->refs, 1);
    return s;
}

/* Port 0 asks for any free port: the first worker's socket gets one, the others bind the same
 * port, and the listener learns it for X-Forwarded-Port and redirects. */
static void learn_port(struct lb_listener *l, struct lb_socket *first, struct net_addr *addr)
{
    struct net_addr bound;
    if (l->port != 0 || net_bound_addr(first->fd, &bound) < 0)
        return;
    l->port = net_addr_port(&bound);
    snprintf(l->port_text, sizeof l->port_text, "%d", l->port);
    net_addr_set_port(addr, l->port);
}

static int attach_sockets(struct lb_gen *gen, const struct lb_gen *prev, char *err, size_t errlen)
{
    for (size_t l = 0; l < gen->n_listeners; l++) {
        struct lb_listener *listener = &gen->routes->listeners[l];
        struct net_addr addr = listener->listen;
        for (size_t w = 0; w < gen->n_workers; w++) {
            struct lb_socket *s = reusable_socket(prev, &listener->listen, w);
            if (s)
                atomic_fetch_add(&s->refs, 1);
            else if (!(s = open_socket(&addr, err, errlen)))
                return -1;
            if (s->refs == 1) { /* new: remember both forms a reload may name it by */
                s->addr = listener->listen;
                net_bound_addr(s->fd, &s->bound);
            }
            gen->sockets[l * gen->n_workers + w] = s;
            if (w == 0)
                learn_port(listener, s, &addr);
        }
    }
    return 0;
}

static int attach_stats(struct lb_gen *gen, struct lb_stats *stats)
{
    for (size_t l = 0; l < gen->n_listeners; l++)
        if (!(gen->listener_stats[l] =
                  lb_stats_block(stats, LB_STAT_LISTENER, gen->routes->listeners[l].name)))
            return -1;
    for (size_t g = 0; g < gen->routes->n_groups; g++)
        if (!(gen->group_stats[g] =
                  lb_stats_block(stats, LB_STAT_GROUP, gen->routes->groups[g].name)))
            return -1;
    return 0;
}

static void detach_health(struct lb_gen *gen)
{
    for (uint32_t g = 0; gen->routes && g < gen->routes->n_groups; g++)
        for (uint32_t t = 0; t < gen->routes->groups[g].n_targets; t++)
            lb_health_put(&gen->ctx->health, gen->routes->groups[g].targets[t].health);
}

/* Every target shares the state of its (group, address) with the generations before it, so that
 * a reload keeps what the checks learned, and its counters with it. */
static int attach_health(struct lb_gen *gen, const struct config_lb *lb)
{
    for (uint32_t g = 0; g < gen->routes->n_groups; g++) {
        struct lb_target_group *group = &gen->routes->groups[g];
        const struct lb_target_group_cfg *cfg = lb_config_find_group(lb, group->name);
        for (uint32_t t = 0; t < group->n_targets; t++) {
            struct lb_target *target = &group->targets[t];
            struct lb_tstate *h = lb_health_get(&gen->ctx->health, cfg, &target->address, true);
            if (!(target->health = h))
                return -1;
            if (!h->stats &&
                !(h->stats = lb_stats_target_block(&gen->ctx->stats, h->group, h->addr_text)))
                return -1;
            target->stats = h->stats;
        }
    }
    return 0;
}

static void gen_free(struct lb_gen *gen)
{
    detach_health(gen);
    if (gen->sockets)
        for (size_t i = 0; i < gen->n_listeners * gen->n_workers; i++)
            socket_release(gen->sockets[i]);
    free(gen->sockets);
    free(gen->listener_stats);
    free(gen->group_stats);
    if (gen->routes)
        lb_routes_free(gen->routes);
    free(gen);
}

struct lb_gen *lb_gen_build(struct lb_ctx *ctx, const struct gantry_config *cfg,
                            const struct lb_gen *previous, char *err, size_t errlen)
{
    struct lb_gen *gen = calloc(1, sizeof *gen);
    if (!gen) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&gen->refs, 1);
    gen->ctx = ctx;
    gen->id = ++ctx->next_gen_id;
    gen->n_workers = ctx->n_workers;
    settings_from_config(&gen->settings, &cfg->lb);
    if (!(gen->routes = lb_routes_build(&cfg->lb, err, errlen)))
        goto fail;
    gen->n_listeners = gen->routes->n_listeners;
    gen->sockets = calloc(gen->n_listeners * gen->n_workers + 1, sizeof *gen->sockets);
    gen->listener_stats = calloc(gen->n_listeners + 1, sizeof *gen->listener_stats);
    gen->group_stats = calloc(gen->routes->n_groups + 1, sizeof *gen->group_stats);
    if (!gen->sockets || !gen->listener_stats || !gen->group_stats ||
        attach_stats(gen, &ctx->stats) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    lb_sticky_setup(gen->routes, &cfg->lb);
    /* Sockets first: a build that fails on a busy port must not have applied its health-check
     * settings to the target states the running generation shares. */
    if (attach_sockets(gen, previous, err, errlen) < 0)
        goto fail;
    if (attach_health(gen, &cfg->lb) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return gen;
fail:
    gen_free(gen);
    return NULL;
}

struct lb_gen *lb_gen_current(struct lb_ctx *ctx)
{
    pthread_mutex_lock(&ctx->current_lock);
    struct lb_gen *gen = atomic_load(&ctx->current);
    lb_gen_retain(gen);
    pthread_mutex_unlock(&ctx->current_lock);
    return gen;
}

struct lb_gen *lb_gen_swap(struct lb_ctx *ctx, struct lb_gen *gen)
{
    pthread_mutex_lock(&ctx->current_lock);
    struct lb_gen *old = atomic_load(&ctx->current);
    atomic_store(&ctx->current, gen);
    pthread_mutex_unlock(&ctx->current_lock);
    return old;
}

void lb_gen_retain(struct lb_gen *gen)
{
    atomic_fetch_add(&gen->refs, 1);
}

void lb_gen_release(struct lb_gen *gen)
{
    if (!gen || atomic_fetch_sub(&gen->refs, 1) != 1)
        return;
    struct lb_ctx *ctx = gen->ctx;
    if (pthread_equal(pthread_self(), ctx->main_thread)) {
        gen_free(gen);
        return;
    }
    pthread_mutex_lock(&ctx->dead_lock);
    gen->next_dead = ctx->dead;
    ctx->dead = gen;
    pthread_mutex_unlock(&ctx->dead_lock);
    ev_async_send(ctx->loop, &ctx->worker_news);
}

void lb_gen_reap(struct lb_ctx *ctx)
{
    pthread_mutex_lock(&ctx->dead_lock);
    struct lb_gen *dead = ctx->dead;
    ctx->dead = NULL;
    pthread_mutex_unlock(&ctx->dead_lock);
    while (dead) {
        struct lb_gen *next = dead->next_dead;
        gen_free(dead);
        dead = next;
    }
}
