/* gantry-lb: the L7 load balancer. Loads the configuration (or builds one from the quick-mode
 * flags), binds every listener in every worker before saying it is ready, reloads on SIGHUP
 * (a refused configuration leaves the running one in place) and stops gracefully on SIGTERM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "lb/access_log.h"
#include "lb/engine.h"
#include "lb/lb.h"
#include "lb/membership.h"
#include "lb/metrics_writer.h"

enum { MAX_QUICK_TARGETS = 64 };

struct quick_mode {
    const char *targets[MAX_QUICK_TARGETS];
    size_t n_targets;
    const char *workers;
    const char *algorithm;
    struct buf yaml;
};

static const struct daemon_option lb_options[] = {
    {"to", true, "--to ADDR             quick mode: a target (repeatable); needs --listen"},
    {"workers", true, "--workers N           worker threads (overrides lb.workers)"},
    {"algorithm", true,
     "--algorithm NAME      quick mode: round_robin, "
     "least_outstanding_requests or weighted_random"},
    {NULL, false, NULL},
};

/* Quick-mode values go into YAML between double quotes: refuse what could break out of them. */
static bool safe_value(const char *v)
{
    return strpbrk(v, "\"\\\n\r") == NULL && strlen(v) < 200;
}

static int on_option(void *arg, const struct daemon_option *o, const char *value)
{
    struct quick_mode *q = arg;
    if (!safe_value(value)) {
        fprintf(stderr, "gantry-lb: --%s '%s': invalid characters\n", o->name, value);
        return -1;
    }
    if (strcmp(o->name, "to") == 0) {
        if (q->n_targets == MAX_QUICK_TARGETS) {
            fprintf(stderr, "gantry-lb: at most %d --to options\n", MAX_QUICK_TARGETS);
            return -1;
        }
        q->targets[q->n_targets++] = value;
    } else if (strcmp(o->name, "workers") == 0) {
        q->workers = value;
    } else {
        q->algorithm = value;
    }
    return 0;
}

/* The flags become configuration text, so they are validated like a file. */
static void build_quick_yaml(struct quick_mode *q, const struct daemon_args *args)
{
    buf_init(&q->yaml, 64 * 1024);
    if (!q->workers && !q->n_targets)
        return;
    buf_append_str(&q->yaml, "lb:\n");
    if (q->workers)
        buf_printf(&q->yaml, "  workers: \"%s\"\n", q->workers);
    if (!q->n_targets)
        return;
    buf_printf(&q->yaml,
               "  listeners:\n    - name: quick\n      listen: \"%s\"\n"
               "      default_action: {type: forward, target_group: quick}\n"
               "  target_groups:\n    - name: quick\n      algorithm: \"%s\"\n      targets:\n",
               args->listen ? args->listen : "127.0.0.1:8080",
               q->algorithm ? q->algorithm : "round_robin");
    for (size_t i = 0; i < q->n_targets; i++)
        buf_printf(&q->yaml, "        - address: \"%s\"\n", q->targets[i]);
    buf_append(&q->yaml, "", 1); /* NUL-terminated text */
}

/* --listen and --admin, over what the files say. In quick mode --listen is the quick
 * listener's address, already in the generated text. */
static int apply_address_flags(struct gantry_config *cfg, const struct daemon_args *args,
                               bool quick)
{
    char err[128];
    if (args->admin && net_addr_parse(args->admin, &cfg->lb.admin, err, sizeof err) < 0) {
        fprintf(stderr, "gantry-lb: --admin '%s': %s\n", args->admin, err);
        return -1;
    }
    if (!args->listen || quick)
        return 0;
    if (cfg->lb.listeners.count == 0) {
        fprintf(stderr, "gantry-lb: --listen needs --to ADDR (quick mode) or a listener in the "
                        "configuration\n");
        return -1;
    }
    struct lb_listener_cfg *first = cfg->lb.listeners.items;
    if (net_addr_parse(args->listen, &first->listen, err, sizeof err) < 0) {
        fprintf(stderr, "gantry-lb: --listen '%s': %s\n", args->listen, err);
        return -1;
    }
    return 0;
}

static size_t worker_count(const struct gantry_config *cfg)
{
    if (cfg->lb.workers > 0)
        return (size_t)cfg->lb.workers;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores < 1 ? 1 : cores > LB_MAX_WORKERS ? LB_MAX_WORKERS : (size_t)cores;
}

static int open_access_log(struct lb_ctx *ctx, const struct gantry_config *cfg)
{
    if (!cfg->lb.access_log.enabled || ctx->access_log)
        return 0;
    char err[256];
    ctx->access_log =
        lb_access_log_open(cfg->lb.access_log.path, cfg->lb.access_log.format == LB_LOG_JSON,
                           ctx->n_workers, err, sizeof err);
    if (!ctx->access_log) {
        log_error("%s", err);
        return -1;
    }
    lb_access_log_start(ctx->access_log, ctx->loop);
    return 0;
}

/* -- reload and stop --------------------------------------------------------------------------- */

static void publish_gen(struct lb_ctx *ctx, struct lb_gen *gen)
{
    struct lb_gen *old = lb_gen_swap(ctx, gen);
    ctx->announce_gen = gen->id; /* "in force" once every worker has switched to it */
    lb_workers_notify(ctx);
    lb_gen_release(old);
}

/* A generation from cfg, with the Redis groups' current members in it. */
static struct lb_gen *build_from(struct lb_ctx *ctx, const struct gantry_config *cfg, char *err,
                                 size_t errlen)
{
    struct arena arena = {0};
    struct gantry_config overlay;
    lb_membership_overlay(ctx, cfg, &overlay, &arena);
    struct lb_gen *gen = lb_gen_build(ctx, &overlay, atomic_load(&ctx->current), err, errlen);
    arena_free(&arena);
    return gen;
}

int lb_rebuild(struct lb_ctx *ctx, const char *why)
{
    char err[256];
    struct lb_gen *gen = build_from(ctx, &ctx->cfg, err, sizeof err);
    if (!gen) {
        log_error("cannot apply the %s change: %s", why, err);
        return -1;
    }
    publish_gen(ctx, gen);
    return 0;
}

static void reload(void *arg)
{
    struct lb_ctx *ctx = arg;
    struct gantry_config cfg;
    struct cfg_errors errors;
    log_info("reloading the configuration");
    if (config_load_args(&cfg, &ctx->args, &errors) < 0 ||
        apply_address_flags(&cfg, &ctx->args, ctx->quick) < 0) {
        for (size_t i = 0; i < errors.count; i++)
            log_error("%s", errors.messages[i]);
        log_error("reload refused: configuration %u stays in force",
                  atomic_load(&ctx->current)->id);
        config_free(&cfg);
        return;
    }
    if (worker_count(&cfg) != ctx->n_workers)
        log_warn("lb.workers changes take effect at the next start; keeping %zu workers",
                 ctx->n_workers);
    char err[256] = "the access log cannot be opened";
    struct lb_gen *gen =
        open_access_log(ctx, &cfg) < 0 ? NULL : build_from(ctx, &cfg, err, sizeof err);
    if (!gen) {
        log_error("reload refused: %s; configuration %u stays in force", err,
                  atomic_load(&ctx->current)->id);
        config_free(&cfg);
        return;
    }
    log_set_level((enum log_level)cfg.log.level);
    atomic_store(&ctx->max_connections, cfg.lb.max_connections);
    config_free(&ctx->cfg);
    ctx->cfg = cfg;
    if (lb_membership_follow(ctx) < 0)
        log_error("cannot follow the target groups in Redis: out of memory");
    publish_gen(ctx, gen);
    lb_metrics_writer_configure(ctx->metrics, &ctx->cfg);
}

static void stop(void *arg)
{
    struct lb_ctx *ctx = arg;
    if (ctx->stopping)
        return;
    log_info("stopping: finishing in-flight requests");
    lb_workers_stop(ctx);
}

static bool all_workers_applied(const struct lb_ctx *ctx, unsigned gen_id)
{
    for (size_t i = 0; i < ctx->n_workers; i++)
        if (atomic_load(&ctx->workers[i].applied_gen) != gen_id)
            return false;
    return true;
}

static void on_health_changed(void *arg, struct lb_tstate *t, int old_state)
{
    lb_membership_publish(arg, t);
    int state = lb_tstate_state(t), reason = atomic_load(&t->reason);
    log_info("target %s %s: %s -> %s%s%s%s", t->group, t->addr_text,
             lb_target_state_names[old_state], lb_target_state_names[state], reason ? " (" : "",
             lb_target_reason_names[reason], reason ? ")" : "");
}

/* Passive marks and drains: a drain that ended takes its target out of the routes. */
static void poll_health(struct lb_ctx *ctx)
{
    lb_health_poll(&ctx->health);
    if (lb_membership_drained(ctx))
        lb_rebuild(ctx, "drained target");
}

static void on_health_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    poll_health(w->data);
}

static void on_worker_news(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)revents;
    struct lb_ctx *ctx = a->data;
    lb_gen_reap(ctx);
    poll_health(ctx);
    if (atomic_load(&ctx->workers_running) == 0) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    if (ctx->announce_gen && all_workers_applied(ctx, ctx->announce_gen)) {
        log_info("configuration %u in force", ctx->announce_gen);
        ctx->announce_gen = 0;
    }
}

/* -- start ------------------------------------------------------------------------------------- */

static void announce(struct lb_ctx *ctx)
{
    struct lb_gen *gen = atomic_load(&ctx->current);
    char texts[64][NET_ADDR_TEXT_MAX];
    const char *addrs[64];
    size_t n = 0;
    for (size_t l = 0; l < gen->n_listeners && n < 63; l++) {
        struct net_addr bound;
        net_bound_addr(gen->sockets[l * gen->n_workers]->fd, &bound);
        addrs[n] = net_addr_format(&bound, texts[n], sizeof texts[n]);
        n++;
    }
    addrs[n] = net_addr_format(&ctx->admin_addr, texts[n], sizeof texts[n]);
    n++;
    if (gen->n_listeners == 0)
        log_warn("no listener configured: only the admin listener runs");
    daemon_ready(addrs, n);
}

static int run(struct lb_ctx *ctx, struct gantry_config *cfg)
{
    char err[256];
    ctx->n_workers = worker_count(cfg);
    atomic_store(&ctx->max_connections, cfg->lb.max_connections);
    ctx->loop = EV_DEFAULT;
    ctx->main_thread = pthread_self();
    pthread_mutex_init(&ctx->dead_lock, NULL);
    pthread_mutex_init(&ctx->current_lock, NULL);
    struct lb_health_hooks hooks = {on_health_changed, ctx};
    lb_health_init(&ctx->health, ctx->loop, &hooks);
    ev_timer_init(&ctx->health_poll, on_health_poll, 0.1, 0.1);
    ctx->health_poll.data = ctx;
    ev_timer_start(ctx->loop, &ctx->health_poll);
    if (lb_stats_init(&ctx->stats, ctx->n_workers) < 0 || open_access_log(ctx, cfg) < 0)
        return 1;
    ctx->cfg = *cfg; /* ctx owns it from here */
    ctx->have_cfg = true;
    if (lb_membership_follow(ctx) < 0)
        return 1;
    struct lb_gen *gen = build_from(ctx, &ctx->cfg, err, sizeof err);
    if (!gen) {
        log_error("%s", err);
        return 1;
    }
    atomic_store(&ctx->current, gen);
    if (!(ctx->metrics = lb_metrics_writer_new(ctx))) {
        log_error("out of memory");
        return 1;
    }
    lb_metrics_writer_configure(ctx->metrics, &ctx->cfg);
    if (lb_admin_start(ctx, &ctx->cfg.lb.admin, err, sizeof err) < 0) {
        log_error("admin listener: %s", err);
        return 1;
    }
    ev_async_init(&ctx->worker_news, on_worker_news);
    ctx->worker_news.data = ctx;
    ev_async_start(ctx->loop, &ctx->worker_news);
    daemon_signals_start(ctx->loop, &ctx->signals, stop, reload, ctx);
    if (lb_workers_start(ctx, err, sizeof err) < 0) {
        log_error("%s", err);
        lb_workers_stop(ctx);
        return 1;
    }
    log_info("%zu workers, configuration %u", ctx->n_workers, gen->id);
    announce(ctx);
    ev_run(ctx->loop, 0);
    return 0;
}

static void cleanup(struct lb_ctx *ctx)
{
    lb_workers_join(ctx);
    lb_admin_stop(ctx);
    if (ctx->loop) {
        daemon_signals_stop(ctx->loop, &ctx->signals);
        ev_async_stop(ctx->loop, &ctx->worker_news);
    }
    lb_membership_stop(ctx);
    lb_metrics_writer_free(ctx->metrics);
    lb_access_log_close(ctx->access_log, ctx->loop);
    lb_gen_release(atomic_load(&ctx->current));
    if (ctx->loop) {
        lb_gen_reap(ctx);
        ev_timer_stop(ctx->loop, &ctx->health_poll);
        lb_health_free(&ctx->health);
        pthread_mutex_destroy(&ctx->dead_lock);
        pthread_mutex_destroy(&ctx->current_lock);
    }
    if (ctx->have_cfg)
        config_free(&ctx->cfg);
    if (ctx->stats.process)
        lb_stats_free(&ctx->stats);
}

int main(int argc, char **argv)
{
    struct lb_ctx ctx = {.admin_fd = -1};
    struct quick_mode quick = {0};
    struct daemon_usage usage = {
        .name = "gantry-lb",
        .summary = "Gantry's L7 load balancer (listeners, rules, target groups)",
        .flags = DAEMON_TAKES_LISTEN | DAEMON_TAKES_ADMIN | DAEMON_TAKES_REDIS,
        .extra = "       gantry-lb --listen ADDR --to ADDR [--to ADDR]... [--workers N]\n"
                 "                 [--algorithm NAME] [--admin ADDR]   (quick mode)\n",
        .options = lb_options,
        .on_option = on_option,
        .ctx = &quick,
    };
    int rc = daemon_args_parse(argc, argv, &usage, &ctx.args);
    if (rc != DAEMON_ARGS_GO_ON)
        return rc;
    if (ctx.args.first_operand < argc) {
        fprintf(stderr, "gantry-lb: unexpected argument '%s' (see --help)\n",
                argv[ctx.args.first_operand]);
        return 2;
    }
    build_quick_yaml(&quick, &ctx.args);
    if (buf_unread(&quick.yaml)) {
        ctx.args.extra_config = buf_head(&quick.yaml);
        ctx.args.extra_config_name = "command line";
    }
    ctx.quick = quick.n_targets > 0;
    struct gantry_config cfg;
    rc = config_daemon_start(&cfg, &ctx.args, "gantry-lb");
    if (rc < 0 && apply_address_flags(&cfg, &ctx.args, ctx.quick) < 0)
        rc = 1;
    if (rc >= 0) {
        if (rc == 1 && !ctx.args.check)
            config_free(&cfg);
        buf_free(&quick.yaml);
        return rc;
    }
    rc = run(&ctx, &cfg);
    if (!ctx.have_cfg) /* run() takes it over once it starts */
        config_free(&cfg);
    cleanup(&ctx);
    buf_free(&quick.yaml);
    log_info("stopped");
    return rc;
}
