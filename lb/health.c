#include "lb/health.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/http1.h"
#include "common/log.h"
#include "lb/stats.h"

enum { CHECK_HEAD_MAX = 16 * 1024 };

const char *const lb_target_state_names[] = {"initial", "healthy", "unhealthy", "draining",
                                             "unused"};
const char *const lb_target_reason_names[] = {
    "",
    "Elb.InitialHealthChecking",
    "Target.FailedHealthChecks",
    "Target.ResponseCodeMismatch",
    "Target.Timeout",
    "Target.ConnectionFailed",
    "Target.DeregistrationInProgress",
    "Target.NotRegistered",
    "Target.HealthCheckDisabled",
};

static void on_interval(struct ev_loop *loop, ev_timer *w, int revents);
static void on_probe_io(struct ev_loop *loop, ev_io *w, int revents);
static void on_probe_timeout(struct ev_loop *loop, ev_timer *w, int revents);

static void set_state(struct lb_tstate *t, int state, int reason)
{
    int old = atomic_exchange(&t->state, state);
    atomic_store(&t->reason, reason);
    if (old == state)
        return;
    atomic_store(&t->since_ms, clock_wall_ms());
    if (state == LB_TARGET_HEALTHY)
        atomic_store(&t->healthy_since_ns, clock_mono_ns());
    if (t->registry->hooks.changed)
        t->registry->hooks.changed(t->registry->hooks.ctx, t, old);
}

void lb_health_init(struct lb_health *h, struct ev_loop *loop, const struct lb_health_hooks *hooks)
{
    memset(h, 0, sizeof *h);
    h->loop = loop;
    if (hooks)
        h->hooks = *hooks;
}

/* -- one check --------------------------------------------------------------------------------- */

static void probe_close(struct lb_tstate *t)
{
    struct ev_loop *loop = t->registry->loop;
    ev_io_stop(loop, &t->io);
    ev_timer_stop(loop, &t->timeout);
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    buf_free(&t->in);
    buf_free(&t->out);
}

static bool checks_move_it(const struct lb_tstate *t)
{
    int state = lb_tstate_state(t);
    return state != LB_TARGET_DRAINING && state != LB_TARGET_UNUSED;
}

static void probe_done(struct lb_tstate *t, bool passed, int reason)
{
    probe_close(t);
    if (!checks_move_it(t))
        return;
    int state = lb_tstate_state(t);
    if (passed) {
        t->fails = 0;
        t->passes++;
        if (state == LB_TARGET_INITIAL ||
            (state == LB_TARGET_UNHEALTHY && t->passes >= t->hc.healthy_threshold))
            set_state(t, LB_TARGET_HEALTHY, LB_REASON_NONE);
        return;
    }
    t->passes = 0;
    t->fails++;
    if (state == LB_TARGET_UNHEALTHY)
        atomic_store(&t->reason, reason); /* the latest reason it still fails for */
    else if (t->fails >= t->hc.unhealthy_threshold)
        set_state(t, LB_TARGET_UNHEALTHY, reason);
}

static void probe_start(struct lb_tstate *t)
{
    struct ev_loop *loop = t->registry->loop;
    if (t->fd >= 0)
        return; /* the previous check is still running: its timeout ends it */
    struct net_addr a = t->addr;
    if (t->hc.port_number)
        net_addr_set_port(&a, t->hc.port_number);
    t->fd = socket(net_addr_family(&a), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (t->fd < 0 ||
        (connect(t->fd, (struct sockaddr *)&a.ss, a.len) < 0 && errno != EINPROGRESS)) {
        probe_done(t, false, LB_REASON_FAILED_HEALTH_CHECKS);
        return;
    }
    buf_init(&t->in, CHECK_HEAD_MAX);
    buf_init(&t->out, 2048);
    buf_printf(&t->out,
               "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gantry-lb-health-check\r\n"
               "Connection: close\r\n\r\n",
               t->hc_path, t->addr_text);
    ev_io_init(&t->io, on_probe_io, t->fd, EV_WRITE);
    t->io.data = t;
    ev_io_start(loop, &t->io);
    ev_timer_init(&t->timeout, on_probe_timeout, (double)t->hc.timeout_ms / 1000.0, 0);
    t->timeout.data = t;
    ev_timer_start(loop, &t->timeout);
}

static void probe_write(struct ev_loop *loop, struct lb_tstate *t)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    ssize_t n = err ? -1 : write(t->fd, buf_head(&t->out), buf_unread(&t->out));
    if (n < 0 && !err && errno == EAGAIN)
        return;
    if (n < 0) {
        probe_done(t, false, LB_REASON_FAILED_HEALTH_CHECKS);
        return;
    }
    buf_consume(&t->out, (size_t)n);
    if (buf_unread(&t->out))
        return;
    ev_io_stop(loop, &t->io);
    ev_io_set(&t->io, t->fd, EV_READ);
    ev_io_start(loop, &t->io);
}

static void probe_read(struct lb_tstate *t)
{
    if (buf_reserve(&t->in, 1024) < 0) {
        probe_done(t, false, LB_REASON_RESPONSE_CODE_MISMATCH); /* a head past 16 KiB */
        return;
    }
    ssize_t n = read(t->fd, buf_tail(&t->in), buf_room(&t->in));
    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0) {
        probe_done(t, false, LB_REASON_FAILED_HEALTH_CHECKS);
        return;
    }
    buf_commit(&t->in, (size_t)n);
    struct http1_msg *m = malloc(sizeof *m);
    struct http1_limits limits = {CHECK_HEAD_MAX, CHECK_HEAD_MAX, HTTP1_MAX_HEADERS};
    enum http1_result r = m ? http1_parse_response(buf_head(&t->in), buf_unread(&t->in), 0, &limits,
                                                   HTTP1_METHOD_GET, m)
                            : HTTP1_ERROR;
    int status = m ? m->status : 0;
    free(m);
    if (r == HTTP1_NEED_MORE)
        return;
    if (r == HTTP1_ERROR || !lb_matcher_matches(&t->hc.codes, status))
        probe_done(t, false, LB_REASON_RESPONSE_CODE_MISMATCH);
    else
        probe_done(t, true, LB_REASON_NONE);
}

static void on_probe_io(struct ev_loop *loop, ev_io *w, int revents)
{
    struct lb_tstate *t = w->data;
    if (revents & EV_WRITE)
        probe_write(loop, t);
    else if (revents & EV_READ)
        probe_read(t);
}

static void on_probe_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    probe_done(w->data, false, LB_REASON_TIMEOUT);
}

static void on_interval(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    probe_start(w->data);
}

/* -- the registry ------------------------------------------------------------------------------ */

static void apply_settings(struct lb_tstate *t, const struct lb_target_group_cfg *g)
{
    struct ev_loop *loop = t->registry->loop;
    bool was_enabled = t->hc.enabled;
    int64_t was_interval = t->hc.interval_ms;
    t->hc = g->health_check;
    snprintf(t->hc_path, sizeof t->hc_path, "%s", g->health_check.path);
    t->hc.path = t->hc_path;
    t->hc.port = NULL;    /* the config's memory goes at the next reload */
    t->hc.matcher = NULL; /* (codes and port_number hold what is needed) */
    t->slow_start_ms = g->slow_start_ms;
    atomic_store(&t->slow_start_ns, g->slow_start_ms * 1000000);
    atomic_store(&t->checked, g->health_check.enabled);
    t->deregistration_delay_ms = g->deregistration_delay_ms;
    if (!t->hc.enabled) {
        ev_timer_stop(loop, &t->interval);
        probe_close(t);
        if (checks_move_it(t))
            set_state(t, LB_TARGET_HEALTHY, LB_REASON_NONE);
        return;
    }
    if (was_enabled && was_interval == t->hc.interval_ms && ev_is_active(&t->interval))
        return;
    double every = (double)t->hc.interval_ms / 1000.0;
    ev_timer_stop(loop, &t->interval);
    ev_timer_set(&t->interval, was_enabled ? every : 0, every); /* a new target: check at once */
    ev_timer_start(loop, &t->interval);
}

struct lb_tstate *lb_health_find(struct lb_health *h, const char *group,
                                 const struct net_addr *addr)
{
    for (struct lb_tstate *t = h->targets; t; t = t->next)
        if (strcmp(t->group, group) == 0 && t->addr.len == addr->len &&
            memcmp(&t->addr.ss, &addr->ss, addr->len) == 0)
            return t;
    return NULL;
}

struct lb_tstate *lb_health_get(struct lb_health *h, const struct lb_target_group_cfg *group,
                                const struct net_addr *addr, bool registered)
{
    struct lb_tstate *t = lb_health_find(h, group->name, addr);
    if (!t) {
        if (!(t = calloc(1, sizeof *t)))
            return NULL;
        t->registry = h;
        t->fd = -1;
        snprintf(t->group, sizeof t->group, "%s", group->name);
        t->addr = *addr;
        net_addr_format(addr, t->addr_text, sizeof t->addr_text);
        atomic_init(&t->state, LB_TARGET_INITIAL);
        atomic_init(&t->reason, LB_REASON_INITIAL_HEALTH_CHECKING);
        atomic_init(&t->since_ms, clock_wall_ms());
        ev_init(&t->interval, on_interval);
        t->interval.data = t;
        t->next = h->targets;
        h->targets = t;
    }
    if (t->refs++ == 0)
        t->registered = registered;
    apply_settings(t, group);
    return t;
}

void lb_health_register(struct lb_health *h, struct lb_tstate *t,
                        const struct lb_target_group_cfg *group)
{
    (void)h;
    if (t->registered)
        return;
    t->registered = true;
    t->drain_reported = false;
    if (lb_tstate_state(t) < LB_TARGET_DRAINING)
        return;
    /* back while draining or drained: a fresh start, checked at once */
    t->passes = t->fails = 0;
    set_state(t, LB_TARGET_INITIAL, LB_REASON_INITIAL_HEALTH_CHECKING);
    t->hc.enabled = false; /* so that apply_settings schedules a check now */
    apply_settings(t, group);
}

static void tstate_free(struct lb_health *h, struct lb_tstate *t)
{
    ev_timer_stop(h->loop, &t->interval);
    probe_close(t);
    struct lb_tstate **link = &h->targets;
    while (*link && *link != t)
        link = &(*link)->next;
    if (*link)
        *link = t->next;
    lb_stats_retire(t->stats); /* the metrics writer writes its last counts, then frees it */
    free(t);
}

void lb_health_put(struct lb_health *h, struct lb_tstate *t)
{
    if (t && --t->refs == 0)
        tstate_free(h, t);
}

void lb_health_free(struct lb_health *h)
{
    while (h->targets)
        tstate_free(h, h->targets);
}

void lb_health_deregister(struct lb_health *h, struct lb_tstate *t)
{
    (void)h;
    t->registered = false;
    if (!checks_move_it(t))
        return;
    t->drain_deadline_ns = clock_mono_ns() + t->deregistration_delay_ms * 1000000;
    set_state(t, LB_TARGET_DRAINING, LB_REASON_DEREGISTRATION);
}

bool lb_health_poll(struct lb_health *h)
{
    bool drained = false;
    int64_t now = clock_mono_ns();
    for (struct lb_tstate *t = h->targets; t; t = t->next) {
        if (atomic_exchange(&t->passive_down, false)) {
            t->passes = 0;
            if (t->registry->hooks.changed)
                t->registry->hooks.changed(t->registry->hooks.ctx, t,
                                           atomic_load(&t->passive_from));
        }
        if (lb_tstate_state(t) == LB_TARGET_DRAINING &&
            (atomic_load(&t->inflight) == 0 || now >= t->drain_deadline_ns)) {
            set_state(t, LB_TARGET_UNUSED, LB_REASON_NOT_REGISTERED);
            drained = true;
        }
    }
    return drained;
}

void lb_tstate_mark_down(struct lb_tstate *t)
{
    if (!atomic_load(&t->checked))
        return; /* nothing would bring it back */
    int state = lb_tstate_state(t);
    while (state == LB_TARGET_HEALTHY || state == LB_TARGET_INITIAL) {
        if (atomic_compare_exchange_weak(&t->state, &state, LB_TARGET_UNHEALTHY)) {
            atomic_store(&t->passive_from, state);
            atomic_store(&t->reason, LB_REASON_CONNECTION_FAILED);
            atomic_store(&t->since_ms, clock_wall_ms());
            atomic_store(&t->passive_down, true);
            return;
        }
    }
}
