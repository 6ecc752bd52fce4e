/* The admin listener, on the main thread (loopback by default): /healthz, /metrics (Prometheus
 * text) and /targets (JSON). One request per connection; small and never on a worker's path. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "lb/lb.h"
#include "lb/metrics_writer.h"

enum { ADMIN_HEAD_MAX = 8192, ADMIN_TIMEOUT_S = 5 };

struct admin_conn {
    struct lb_ctx *ctx;
    ev_io io;
    ev_timer timer;
    struct buf in, out;
};

static void admin_close(struct ev_loop *loop, struct admin_conn *a)
{
    ev_io_stop(loop, &a->io);
    ev_timer_stop(loop, &a->timer);
    close(a->io.fd);
    buf_free(&a->in);
    buf_free(&a->out);
    free(a);
}

static void render_targets(struct lb_ctx *ctx, struct buf *out)
{
    struct lb_gen *gen = atomic_load(&ctx->current);
    json_t *groups = json_array();
    for (uint32_t g = 0; g < gen->routes->n_groups; g++) {
        const struct lb_target_group *group = &gen->routes->groups[g];
        json_t *targets = json_array();
        for (uint32_t t = 0; t < group->n_targets; t++) {
            const struct lb_target *target = &group->targets[t];
            const struct lb_tstate *h = target->health;
            int reason = atomic_load(&h->reason);
            json_array_append_new(
                targets, json_pack("{s:s, s:i, s:i, s:s, s:s, s:I}", "address",
                                   target->address_text, "weight", (json_int_t)target->weight,
                                   "outstanding", (json_int_t)lb_target_outstanding(target),
                                   "state", lb_target_state_names[lb_tstate_state(h)], "reason",
                                   lb_target_reason_names[reason], "since",
                                   (json_int_t)atomic_load(&h->since_ms)));
        }
        json_array_append_new(groups,
                              json_pack("{s:s, s:s, s:o}", "name", group->name, "algorithm",
                                        lb_algorithm_names[group->algorithm], "targets", targets));
    }
    json_t *root =
        json_pack("{s:i, s:o}", "generation", (json_int_t)gen->id, "target_groups", groups);
    char *text = json_dumps(root, JSON_INDENT(2));
    if (text)
        buf_printf(out, "%s\n", text);
    free(text);
    json_decref(root);
}

/* ALB's HealthyHostCount and UnHealthyHostCount: draining and unused targets are in neither. */
static void render_host_counts(const struct lb_gen *gen, struct buf *out)
{
    static const char *const names[2] = {"gantry_lb_healthy_hosts", "gantry_lb_unhealthy_hosts"};
    for (int kind = 0; kind < 2; kind++) {
        buf_printf(out, "# HELP %s Targets %s, per target group.\n# TYPE %s gauge\n", names[kind],
                   kind ? "unhealthy or not yet checked" : "healthy", names[kind]);
        for (uint32_t g = 0; g < gen->routes->n_groups; g++) {
            const struct lb_target_group *group = &gen->routes->groups[g];
            int n = 0;
            for (uint32_t t = 0; t < group->n_targets; t++) {
                int state = lb_tstate_state(group->targets[t].health);
                n += kind ? (state == LB_TARGET_UNHEALTHY || state == LB_TARGET_INITIAL)
                          : state == LB_TARGET_HEALTHY;
            }
            buf_printf(out, "%s{target_group=\"%s\"} %d\n", names[kind], group->name, n);
        }
    }
}

static void render_metrics(struct lb_ctx *ctx, struct buf *out)
{
    lb_stats_render(&ctx->stats, out);
    struct lb_gen *gen = atomic_load(&ctx->current);
    buf_printf(out,
               "# HELP gantry_lb_config_generation The configuration in force (1 at start, "
               "+1 per successful reload).\n# TYPE gantry_lb_config_generation gauge\n"
               "gantry_lb_config_generation %u\n",
               gen->id);
    render_host_counts(gen, out);
    buf_printf(out,
               "# HELP gantry_lb_workers Worker threads.\n# TYPE gantry_lb_workers gauge\n"
               "gantry_lb_workers %zu\n",
               ctx->n_workers);
    if (ctx->metrics)
        lb_metrics_writer_render(ctx->metrics, out);
}

static void respond(struct admin_conn *a, int status, const char *type, struct buf *body, bool head)
{
    buf_printf(&a->out,
               "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
               "Connection: close\r\n\r\n",
               status, http1_reason(status), type, body ? buf_unread(body) : 0);
    if (body && !head) /* HEAD: the same head, no body */
        buf_append(&a->out, buf_head(body), buf_unread(body));
}

static void answer(struct admin_conn *a, const struct http1_msg *m)
{
    bool head = m->method_id == HTTP1_METHOD_HEAD;
    struct buf body;
    buf_init(&body, 64 * 1024 * 1024);
    if (m->method_id != HTTP1_METHOD_GET && m->method_id != HTTP1_METHOD_HEAD) {
        buf_append_str(&body, "only GET\n");
        respond(a, 405, "text/plain", &body, head);
    } else if (http1_slice_eq(m->path, "/healthz")) {
        buf_append_str(&body, a->ctx->stopping ? "stopping\n" : "ok\n");
        respond(a, a->ctx->stopping ? 503 : 200, "text/plain", &body, head);
    } else if (http1_slice_eq(m->path, "/metrics")) {
        render_metrics(a->ctx, &body);
        respond(a, 200, "text/plain; version=0.0.4", &body, head);
    } else if (http1_slice_eq(m->path, "/targets")) {
        render_targets(a->ctx, &body);
        respond(a, 200, "application/json", &body, head);
    } else {
        buf_append_str(&body, "not found: try /healthz, /metrics or /targets\n");
        respond(a, 404, "text/plain", &body, head);
    }
    buf_free(&body);
}

static void on_admin_conn(struct ev_loop *loop, ev_io *io, int revents)
{
    struct admin_conn *a = io->data;
    if (revents & EV_READ) {
        if (buf_reserve(&a->in, 1024) < 0) {
            admin_close(loop, a);
            return;
        }
        ssize_t n = read(io->fd, buf_tail(&a->in), buf_room(&a->in));
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            admin_close(loop, a);
            return;
        }
        buf_commit(&a->in, (size_t)n);
        struct http1_msg *m = malloc(sizeof *m);
        enum http1_result r = m ? http1_parse_request(buf_head(&a->in), buf_unread(&a->in), 0,
                                                      &http1_default_limits, m)
                                : HTTP1_ERROR;
        if (r == HTTP1_NEED_MORE) {
            free(m);
            return;
        }
        if (r == HTTP1_DONE)
            answer(a, m);
        else
            respond(a, m ? m->error_status : 500, "text/plain", NULL, false);
        free(m);
        ev_io_stop(loop, io);
        ev_io_set(io, io->fd, EV_WRITE);
        ev_io_start(loop, io);
    }
    if (buf_unread(&a->out) == 0)
        return;
    ssize_t w = write(io->fd, buf_head(&a->out), buf_unread(&a->out));
    if (w < 0 && errno == EAGAIN)
        return;
    if (w <= 0) {
        admin_close(loop, a);
        return;
    }
    buf_consume(&a->out, (size_t)w);
    if (buf_unread(&a->out) == 0)
        admin_close(loop, a);
}

static void on_admin_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    admin_close(loop, t->data);
}

static void on_admin_accept(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct lb_ctx *ctx = io->data;
    int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    struct admin_conn *a = calloc(1, sizeof *a);
    if (!a) {
        close(fd);
        return;
    }
    a->ctx = ctx;
    buf_init(&a->in, ADMIN_HEAD_MAX);
    buf_init(&a->out, 64 * 1024 * 1024);
    ev_io_init(&a->io, on_admin_conn, fd, EV_READ);
    a->io.data = a;
    ev_timer_init(&a->timer, on_admin_timeout, ADMIN_TIMEOUT_S, 0);
    a->timer.data = a;
    ev_io_start(loop, &a->io);
    ev_timer_start(loop, &a->timer);
}

int lb_admin_start(struct lb_ctx *ctx, const struct net_addr *addr, char *err, size_t errlen)
{
    ctx->admin_fd = net_listen(addr, 64, false, err, errlen);
    if (ctx->admin_fd < 0)
        return -1;
    net_bound_addr(ctx->admin_fd, &ctx->admin_addr);
    ev_io_init(&ctx->admin_io, on_admin_accept, ctx->admin_fd, EV_READ);
    ctx->admin_io.data = ctx;
    ev_io_start(ctx->loop, &ctx->admin_io);
    return 0;
}

void lb_admin_stop(struct lb_ctx *ctx)
{
    if (ctx->admin_fd <= 0)
        return;
    ev_io_stop(ctx->loop, &ctx->admin_io);
    close(ctx->admin_fd);
    ctx->admin_fd = -1;
}
