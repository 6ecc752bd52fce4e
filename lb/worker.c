/* Worker threads: each runs its own event loop over its own listening sockets, picks up new
 * configuration generations between requests, and keeps the pools of buffers and of target
 * connections that its client connections share. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "lb/engine.h"

enum { ACCEPT_BATCH = 64, MAX_FREE_BUFS = 64, MAX_FREE_SMALL = 256 };

/* -- pooled I/O buffers ------------------------------------------------------------------------ */

void *lb_buf_get(struct lb_worker *w)
{
    void *mem = w->free_bufs;
    if (mem) {
        memcpy(&w->free_bufs, mem, sizeof(void *));
        w->n_free_bufs--;
        return mem;
    }
    return malloc(w->buf_size);
}

void lb_buf_put(struct lb_worker *w, void *mem)
{
    if (w->n_free_bufs >= MAX_FREE_BUFS) { /* a burst's buffers go back to the system */
        free(mem);
        return;
    }
    memcpy(mem, &w->free_bufs, sizeof(void *));
    w->free_bufs = mem;
    w->n_free_bufs++;
}

int lb_buf_attach(struct lb_worker *w, struct buf *b)
{
    if (b->data)
        return 0;
    void *mem = lb_buf_get(w);
    if (!mem)
        return -1;
    buf_init_fixed(b, mem, w->buf_size);
    return 0;
}

void lb_buf_detach(struct lb_worker *w, struct buf *b)
{
    if (!b->data || buf_unread(b))
        return;
    lb_buf_put(w, b->data);
    *b = (struct buf){0};
}

void lb_sbuf_prepare(struct lb_worker *w, struct buf *b)
{
    if (b->data || b->max < LB_SMALL_BLOCK)
        return;
    void *mem = w->free_small;
    if (mem) {
        memcpy(&w->free_small, mem, sizeof(void *));
        w->n_free_small--;
    } else if (!(mem = malloc(LB_SMALL_BLOCK))) {
        return; /* the append that follows will try again, and fail cleanly */
    }
    b->data = mem;
    b->cap = LB_SMALL_BLOCK;
    b->off = b->len = 0;
}

void lb_sbuf_release(struct lb_worker *w, struct buf *b)
{
    if (!b->data || buf_unread(b))
        return;
    if (b->cap == LB_SMALL_BLOCK && w->n_free_small < MAX_FREE_SMALL) {
        memcpy(b->data, &w->free_small, sizeof(void *));
        w->free_small = b->data;
        w->n_free_small++;
    } else {
        free(b->data);
    }
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

ssize_t lb_client_read(struct lb_client *c)
{
    struct lb_worker *w = c->w;
    lb_sbuf_prepare(w, &c->in);
    size_t room = c->in.max - buf_unread(&c->in);
    if (room == 0)
        return -3;
    for (;;) {
        ssize_t n = read(c->ep.fd, w->scratch, room < w->buf_size ? room : w->buf_size);
        if (n > 0)
            return buf_append(&c->in, w->scratch, (size_t)n) < 0 ? -2 : n;
        if (n == 0)
            return 0;
        if (errno != EINTR)
            return errno == EAGAIN ? -1 : -2;
    }
}

/* -- target connection pools ------------------------------------------------------------------- */

static size_t addr_hash(const struct net_addr *a)
{
    size_t h = 1469598103934665603ULL;
    const unsigned char *p = (const unsigned char *)&a->ss;
    for (socklen_t i = 0; i < a->len; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h % LB_POOL_BUCKETS;
}

struct lb_pool *lb_pool_for(struct lb_worker *w, const struct net_addr *addr)
{
    size_t h = addr_hash(addr);
    for (struct lb_pool *p = w->pools[h]; p; p = p->next)
        if (p->addr.len == addr->len && memcmp(&p->addr.ss, &addr->ss, addr->len) == 0) {
            p->refs++;
            return p;
        }
    struct lb_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->addr = *addr;
    p->refs = 1;
    p->next = w->pools[h];
    w->pools[h] = p;
    return p;
}

static void pool_free_if_done(struct lb_worker *w, struct lb_pool *pool)
{
    if (pool->refs > 0 || pool->n_open > 0 || pool->releasing)
        return;
    struct lb_pool **link = &w->pools[addr_hash(&pool->addr)];
    while (*link && *link != pool)
        link = &(*link)->next;
    if (*link)
        *link = pool->next;
    free(pool);
}

/* A pool no generation maps any more closes its idle connections and goes once the busy ones are
 * done (the last lb_upstream_close() of it frees it). */
void lb_pool_unref(struct lb_worker *w, struct lb_pool *pool)
{
    if (pool->refs > 0)
        pool->refs--;
    if (pool->refs > 0)
        return;
    pool->releasing = true; /* closing its idle connections must not free it under our feet */
    while (pool->idle)
        lb_upstream_close(pool->idle);
    pool->releasing = false;
    pool_free_if_done(w, pool);
}

void lb_pool_closed_one(struct lb_worker *w, struct lb_pool *pool)
{
    pool->n_open--;
    pool_free_if_done(w, pool);
}

/* -- generations ------------------------------------------------------------------------------- */

static void on_accept(struct ev_loop *loop, ev_io *io, int revents);

static void wgen_free(struct lb_worker *w, struct lb_wgen *wg)
{
    const struct lb_routes *routes = wg->gen->routes;
    for (size_t g = 0; wg->pools && g < routes->n_groups; g++) {
        for (size_t t = 0; wg->pools[g] && t < routes->groups[g].n_targets; t++)
            if (wg->pools[g][t])
                lb_pool_unref(w, wg->pools[g][t]);
        free(wg->pools[g]);
    }
    free(wg->pools);
    if (wg->pickers)
        lb_pickers_free(wg->pickers);
    free(wg->accepts);
    free(wg->usable);
    lb_gen_release(wg->gen);
    free(wg);
}

static struct lb_wgen *wgen_new(struct lb_worker *w, struct lb_gen *gen)
{
    struct lb_wgen *wg = calloc(1, sizeof *wg);
    if (!wg)
        return NULL;
    lb_gen_retain(gen);
    wg->gen = gen;
    const struct lb_routes *routes = gen->routes;
    size_t largest = 1;
    wg->pools = calloc(routes->n_groups + 1, sizeof *wg->pools);
    wg->accepts = calloc(gen->n_listeners + 1, sizeof *wg->accepts);
    wg->pickers = lb_pickers_new(routes, w->rng ^ (gen->id * 0x9e3779b97f4a7c15ULL));
    bool failed = !wg->pools || !wg->accepts || !wg->pickers;
    for (size_t g = 0; !failed && g < routes->n_groups; g++) {
        const struct lb_target_group *group = &routes->groups[g];
        largest = group->n_targets > largest ? group->n_targets : largest;
        wg->pools[g] = calloc(group->n_targets + 1, sizeof *wg->pools[g]);
        failed = !wg->pools[g];
        for (size_t t = 0; !failed && t < group->n_targets; t++)
            failed = !(wg->pools[g][t] = lb_pool_for(w, &group->targets[t].address));
    }
    if (!failed)
        failed = !(wg->usable = calloc(largest, sizeof *wg->usable));
    if (failed) {
        wgen_free(w, wg);
        return NULL;
    }
    for (size_t l = 0; l < gen->n_listeners; l++) {
        ev_io_init(&wg->accepts[l], on_accept, gen->sockets[l * gen->n_workers + w->id]->fd,
                   EV_READ);
        wg->accepts[l].data = wg;
    }
    return wg;
}

void lb_wgen_unuse(struct lb_worker *w, struct lb_wgen *wg)
{
    if (--wg->users > 0)
        return;
    struct lb_wgen **link = &w->gens;
    while (*link && *link != wg)
        link = &(*link)->next;
    if (*link)
        *link = wg->next;
    wgen_free(w, wg);
}

static void accepts_watch(struct lb_worker *w, struct lb_wgen *wg, bool on)
{
    for (size_t l = 0; l < wg->gen->n_listeners; l++) {
        if (on)
            ev_io_start(w->loop, &wg->accepts[l]);
        else
            ev_io_stop(w->loop, &wg->accepts[l]);
    }
}

/* A draining target gets no new request, so its idle pooled connections are of no more use:
 * they close now rather than at their idle timeout (the busy ones close after their response). */
static void close_draining_pools(struct lb_wgen *wg)
{
    const struct lb_routes *routes = wg->gen->routes;
    for (uint32_t g = 0; g < routes->n_groups; g++)
        for (uint32_t t = 0; t < routes->groups[g].n_targets; t++) {
            int state = lb_tstate_state(routes->groups[g].targets[t].health);
            struct lb_pool *pool = wg->pools[g][t];
            while ((state == LB_TARGET_DRAINING || state == LB_TARGET_UNUSED) && pool->idle)
                lb_upstream_close(pool->idle);
        }
}

static void switch_generation(struct lb_worker *w)
{
    /* Reading the current generation and taking a reference on it must be one step: the main
     * thread may publish the next one and drop its own reference in between. */
    struct lb_gen *gen = lb_gen_current(w->ctx);
    if (w->stopping || (w->current && w->current->gen == gen)) {
        lb_gen_release(gen);
        return;
    }
    struct lb_wgen *wg = wgen_new(w, gen);
    lb_gen_release(gen); /* wgen_new took its own */
    if (!wg) {
        log_error("worker %zu: out of memory switching to configuration %u; keeping %u", w->id,
                  gen->id, w->current ? w->current->gen->id : 0);
        return;
    }
    wg->users = 1;
    wg->next = w->gens;
    w->gens = wg;
    close_draining_pools(wg);
    struct lb_wgen *old = w->current;
    w->current = wg;
    if (old)
        accepts_watch(w, old, false);
    accepts_watch(w, wg, true);
    if (old)
        lb_wgen_unuse(w, old);
    atomic_store(&w->applied_gen, gen->id);
    ev_async_send(w->ctx->loop, &w->ctx->worker_news);
}

/* -- accepting --------------------------------------------------------------------------------- */

static void on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    struct lb_wgen *wg = io->data;
    struct lb_worker *w = ev_userdata(loop);
    size_t listener = (size_t)(io - wg->accepts);
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        int fd = accept4(io->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                log_warn("accept: %s", strerror(errno));
            return; /* EAGAIN, or a transient error: the next readiness retries */
        }
        if (atomic_fetch_add(&w->ctx->connections, 1) >= atomic_load(&w->ctx->max_connections)) {
            atomic_fetch_sub(&w->ctx->connections, 1);
            lb_count(wg->gen->listener_stats[listener], w->id, LB_C_REJECTED_CONNECTIONS, 1);
            close(fd);
            continue;
        }
        lb_client_accept(w, wg, listener, fd, (struct sockaddr *)&peer);
    }
}

/* -- stopping ---------------------------------------------------------------------------------- */

static void finish_if_idle(struct lb_worker *w)
{
    if (w->stopping && w->n_clients == 0)
        ev_break(w->loop, EVBREAK_ALL);
}

static void on_stop_deadline(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct lb_worker *w = t->data;
    if (w->n_clients)
        log_warn("worker %zu: stop timeout: closing %zu connections", w->id, w->n_clients);
    while (w->clients)
        lb_client_close(w->clients);
    finish_if_idle(w);
}

/* A stopping worker's listening sockets stop listening now, not when the process exits: new
 * connections are refused at once (or go to a worker still accepting) instead of waiting in an
 * accept queue nobody reads. The descriptors stay open until the generation lets them go. */
static void close_queued(int fd)
{
    int queued;
    while ((queued = accept4(fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
        close(queued);
}

/* Connections already in the accept queue are not reset by shutdown(): they are taken and
 * closed, before and after it, so that no client waits for the process to exit. */
static void shut_listeners(struct lb_worker *w, const struct lb_gen *gen)
{
    for (size_t l = 0; l < gen->n_listeners; l++) {
        int fd = gen->sockets[l * gen->n_workers + w->id]->fd;
        close_queued(fd);
        shutdown(fd, SHUT_RDWR);
        close_queued(fd);
    }
}

static void begin_stop(struct lb_worker *w)
{
    if (w->stopping)
        return;
    w->stopping = true;
    if (w->current) {
        accepts_watch(w, w->current, false);
        shut_listeners(w, w->current->gen);
    }
    for (struct lb_client *c = w->clients, *next; c; c = next) {
        next = c->next;
        lb_client_stop(c);
    }
    double grace = w->current ? (double)w->current->gen->settings.stop_timeout_ms / 1000.0 : 0;
    ev_timer_init(&w->stop_timer, on_stop_deadline, grace, 0);
    w->stop_timer.data = w;
    ev_timer_start(w->loop, &w->stop_timer);
    finish_if_idle(w);
}

void lb_worker_client_gone(struct lb_worker *w)
{
    finish_if_idle(w);
}

static void on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop;
    (void)revents;
    struct lb_worker *w = a->data;
    if (w->ctx->stopping)
        begin_stop(w);
    else
        switch_generation(w);
}

/* -- the thread -------------------------------------------------------------------------------- */

static void close_all_pools(struct lb_worker *w)
{
    for (size_t h = 0; h < LB_POOL_BUCKETS; h++)
        for (struct lb_pool *p = w->pools[h]; p; p = p->next)
            while (p->idle)
                lb_upstream_close(p->idle);
}

static void worker_cleanup(struct lb_worker *w)
{
    ev_timer_stop(w->loop, &w->stop_timer);
    ev_async_stop(w->loop, &w->wake);
    close_all_pools(w);
    if (w->current)
        accepts_watch(w, w->current, false);
    struct lb_wgen *current = w->current;
    w->current = NULL;
    if (current)
        lb_wgen_unuse(w, current);
    while (w->gens) { /* only reachable if clients leaked a reference: free anyway */
        struct lb_wgen *wg = w->gens;
        w->gens = wg->next;
        wgen_free(w, wg);
    }
    for (size_t h = 0; h < LB_POOL_BUCKETS; h++)
        while (w->pools[h]) {
            struct lb_pool *p = w->pools[h];
            w->pools[h] = p->next;
            free(p);
        }
    while (w->free_bufs) {
        void *mem = w->free_bufs;
        memcpy(&w->free_bufs, mem, sizeof(void *));
        free(mem);
    }
    while (w->free_small) {
        void *mem = w->free_small;
        memcpy(&w->free_small, mem, sizeof(void *));
        free(mem);
    }
    free(w->scratch);
    w->scratch = NULL;
}

static void *worker_main(void *arg)
{
    struct lb_worker *w = arg;
    switch_generation(w);
    ev_run(w->loop, 0);
    worker_cleanup(w);
    atomic_fetch_sub(&w->ctx->workers_running, 1);
    ev_async_send(w->ctx->loop, &w->ctx->worker_news);
    return NULL;
}

uint64_t lb_worker_random(struct lb_worker *w)
{
    /* xorshift64*: fast, and each worker has its own state */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 2685821657736338717ULL;
}

const char *lb_worker_date(struct lb_worker *w)
{
    int64_t second = (int64_t)ev_now(w->loop);
    if (second != w->date_second) {
        time_t t = (time_t)second;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(w->date, sizeof w->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        w->date_second = second;
    }
    return w->date;
}

size_t lb_client_buffer_size(const struct lb_settings *s)
{
    /* A whole request head must fit, plus room to see that it is too large. */
    size_t size = s->limits.max_head + 1024;
    return size < 16 * 1024 ? 16 * 1024 : size;
}

int lb_workers_start(struct lb_ctx *ctx, char *err, size_t errlen)
{
    ctx->workers = calloc(ctx->n_workers, sizeof *ctx->workers);
    if (!ctx->workers) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct lb_gen *gen = atomic_load(&ctx->current);
    for (size_t i = 0; i < ctx->n_workers; i++) {
        struct lb_worker *w = &ctx->workers[i];
        w->ctx = ctx;
        w->id = i;
        /* Target connections' pooled buffers and the read scratch; a client's own buffer follows
         * max_header_size of the generation it is in (lb_client_buffer_size). */
        w->buf_size = lb_client_buffer_size(&gen->settings);
        w->scratch = malloc(w->buf_size);
        if (!w->scratch) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        w->rng = (uint64_t)clock_wall_ms() * 6364136223846793005ULL + i * 1442695040888963407ULL +
                 (uint64_t)getpid();
        w->rng |= 1;
        w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
        if (!w->loop) {
            snprintf(err, errlen, "cannot create an event loop");
            return -1;
        }
        ev_set_userdata(w->loop, w);
        ev_async_init(&w->wake, on_wake);
        w->wake.data = w;
        ev_async_start(w->loop, &w->wake);
        ev_timer_init(&w->stop_timer, on_stop_deadline, 0, 0);
        atomic_fetch_add(&ctx->workers_running, 1);
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        w->started = rc == 0;
        if (rc != 0) {
            atomic_fetch_sub(&ctx->workers_running, 1);
            snprintf(err, errlen, "pthread_create: %s", strerror(rc));
            return -1;
        }
    }
    return 0;
}

void lb_workers_notify(struct lb_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_workers; i++)
        if (ctx->workers[i].loop)
            ev_async_send(ctx->workers[i].loop, &ctx->workers[i].wake);
}

void lb_workers_stop(struct lb_ctx *ctx)
{
    ctx->stopping = true;
    lb_workers_notify(ctx);
}

void lb_workers_join(struct lb_ctx *ctx)
{
    for (size_t i = 0; ctx->workers && i < ctx->n_workers; i++) {
        struct lb_worker *w = &ctx->workers[i];
        if (!w->loop)
            continue;
        if (w->started)
            pthread_join(w->thread, NULL);
        ev_loop_destroy(w->loop);
        w->loop = NULL;
    }
    free(ctx->workers);
    ctx->workers = NULL;
}
