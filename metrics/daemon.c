#include "metrics/daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"

/* A /metrics body is bounded like gantry-lb's: far more than thousands of tasks need. */
enum { PROM_BODY_MAX = 64 * 1024 * 1024, ADMIN_MAX_BODY = 0 };

int metrics_load_config(struct gantry_config *cfg, const struct daemon_args *args,
                        struct cfg_errors *errors)
{
    if (config_load_args(cfg, args, errors) < 0 ||
        config_addr_override(errors, "--admin", args->admin, &cfg->metrics.admin) < 0)
        return -1;
    return 0;
}

/* --- Redis --- */

static void open_redis(struct metrics_daemon *d)
{
    struct redis_url url = d->cfg.redis.url;
    if (!url.addr.len) {
        char why[160];
        value_parse_redis_url("redis://127.0.0.1:6379", &url, why, sizeof why);
    }
    redis_sync_init(&d->redis, &url, d->cfg.redis.connect_timeout_ms);
}

static void set_retention(struct metrics_daemon *d)
{
    d->retention.seconds_s = d->cfg.metrics.retention_ms / 1000;
    d->retention.minutes_s = d->cfg.metrics.rollup_retention_ms / 1000;
}

/* An outage is logged when it begins and when it ends, never once per pass. dropped_before: the
 * count before this pass dropped anything. */
static void note_redis(struct metrics_daemon *d, bool ok, uint64_t dropped_before)
{
    d->counters.redis_up = ok;
    if (!ok && !d->redis_down) {
        d->redis_down = true;
        d->dropped_at_outage = dropped_before;
        log_warn("%s; datapoints are dropped until it answers again", d->redis.error);
    } else if (ok && d->redis_down) {
        d->redis_down = false;
        log_info("Redis at %s answers again; %llu datapoints were dropped meanwhile",
                 d->redis.url_text,
                 (unsigned long long)(d->counters.datapoints_dropped - d->dropped_at_outage));
    }
}

/* The task list of this pass: read again, else (Redis failed) the last one read. */
static bool refresh_tasks(struct metrics_daemon *d)
{
    if (task_list_fetch(&d->redis, &d->fetched) < 0)
        return false;
    task_list_swap(&d->tasks, &d->fetched);
    d->counters.records_skipped = d->tasks.skipped;
    if (d->tasks.skipped && d->tasks.skipped != d->skipped_logged)
        log_warn("%zu damaged task record%s in Redis skipped (malformed JSON or fields)",
                 d->tasks.skipped, d->tasks.skipped == 1 ? "" : "s");
    else if (!d->tasks.skipped && d->skipped_logged)
        log_info("no damaged task record in Redis any more");
    d->skipped_logged = d->tasks.skipped;
    return true;
}

static int sample_tasks(struct metrics_daemon *d)
{
    size_t n = d->tasks.n ? d->tasks.n : 1;
    if (n > d->usage_cap) {
        struct task_usage *u = realloc(d->usage, n * sizeof *u);
        if (!u)
            return -1;
        d->usage = u;
        d->usage_cap = n;
    }
    if (sampler_run(&d->sampler, &d->tasks, d->usage) < 0 ||
        ecs_report_build(&d->report, &d->tasks, d->usage) < 0)
        return -1;
    d->counters.tasks = d->report.n_tasks;
    d->counters.docker_streams = sampler_docker_streams(&d->sampler);
    return 0;
}

/* The second a pass's datapoints belong to: the one the sampled interval lies in (its middle), so
 * that on 1-second passes at each second's start, a pass reports the second that just ended. */
static int64_t pass_second(struct metrics_daemon *d, int64_t wall_ms)
{
    int64_t interval = d->cfg.metrics.sample_interval_ms;
    int64_t prev = d->last_pass_wall_ms;
    if (!prev || wall_ms - prev > 2 * interval || wall_ms <= prev)
        prev = wall_ms - interval; /* the first pass, or one after a stall or a clock step */
    d->last_pass_wall_ms = wall_ms;
    return (prev + (wall_ms - prev) / 2) / 1000;
}

/* Writes the pass's datapoints; false when Redis did not take them (they are dropped). */
static bool write_pass(struct metrics_daemon *d, int64_t second)
{
    metric_batch_reset(&d->batch, &d->retention);
    size_t unnamed = ecs_report_write(&d->report, &d->batch, second);
    if (unnamed)
        log_debug("%zu rows could not be named as metric series", unnamed);
    uint64_t n = d->batch.datapoints;
    if (d->batch.failed) {
        log_error("out of memory: the datapoints of this pass are dropped");
        d->counters.datapoints_dropped += n;
        return true; /* not Redis' fault */
    }
    if (metric_batch_send(&d->batch, &d->redis) < 0) {
        d->counters.datapoints_dropped += n;
        return false;
    }
    d->counters.datapoints_written += n;
    return true;
}

static void run_pass(struct metrics_daemon *d)
{
    int64_t started = clock_mono_ns(), wall_ms = clock_wall_ms();
    bool ok = refresh_tasks(d);
    if (sample_tasks(d) < 0) {
        log_error("out of memory: this pass is skipped");
        return;
    }
    uint64_t dropped_before = d->counters.datapoints_dropped;
    ok = write_pass(d, pass_second(d, wall_ms)) && ok;
    note_redis(d, ok, dropped_before);
    d->counters.samples++;
    d->counters.last_sample_seconds = (double)(clock_mono_ns() - started) / 1e9;
    log_debug("pass: %zu tasks, %zu datapoints in %.1f ms", d->report.n_tasks, d->batch.datapoints,
              d->counters.last_sample_seconds * 1000);
}

static void on_tick(struct ev_loop *loop, ev_periodic *w, int revents)
{
    (void)loop;
    (void)revents;
    run_pass(w->data);
}

/* Passes on wall-clock multiples of the interval: every daemon writing per-second datapoints
 * cuts its seconds at the same instants. */
static void start_ticks(struct metrics_daemon *d)
{
    ev_periodic_init(&d->tick, on_tick, 0.0, (double)d->cfg.metrics.sample_interval_ms / 1000.0,
                     NULL);
    d->tick.data = d;
    ev_periodic_start(d->loop, &d->tick);
}

/* gantry-core's core.docker_socket: the daemon that runs the DOCKER tasks. */
static void set_docker_socket(struct metrics_daemon *d)
{
    if (sampler_set_docker_socket(&d->sampler, d->cfg.core.docker_socket) < 0)
        log_error("out of memory: DOCKER tasks stay sampled through %s",
                  d->sampler.docker_socket ? d->sampler.docker_socket : "no dockerd");
}

/* --- the admin endpoint --- */

static void answer_text(struct http_response *resp, int status, const char *text)
{
    resp->status = status;
    resp->content_type = "text/plain";
    resp->body = strdup(text);
    resp->body_len = resp->body ? strlen(text) : 0;
}

static void answer_metrics(struct metrics_daemon *d, struct http_response *resp)
{
    struct buf body;
    buf_init(&body, PROM_BODY_MAX);
    if (prom_render(&d->report, &d->counters, &body) < 0) {
        buf_free(&body);
        answer_text(resp, 500, "out of memory\n");
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4";
    resp->body = buf_head(&body); /* never consumed: the start of its allocation, which the
                                     server frees */
    resp->body_len = buf_unread(&body);
}

static void on_admin(void *ctx, const struct http_request *req, struct http_response *resp)
{
    struct metrics_daemon *d = ctx;
    const struct http1_msg *m = req->msg;
    if (m->method_id != HTTP1_METHOD_GET) {
        answer_text(resp, 405, "only GET\n");
        snprintf(resp->extra_headers, sizeof resp->extra_headers, "Allow: GET\r\n");
    } else if (http1_slice_eq(m->path, "/metrics")) {
        answer_metrics(d, resp);
    } else if (http1_slice_eq(m->path, "/healthz")) {
        answer_text(resp, 200, "ok\n");
    } else {
        answer_text(resp, 404, "not found: try /metrics or /healthz\n");
    }
}

/* --- signals --- */

static bool same_redis(const struct gantry_config *a, const struct gantry_config *b)
{
    char x[160], y[160];
    return strcmp(redis_url_text(&a->redis.url, x, sizeof x),
                  redis_url_text(&b->redis.url, y, sizeof y)) == 0 &&
           a->redis.url.db == b->redis.url.db &&
           a->redis.connect_timeout_ms == b->redis.connect_timeout_ms;
}

static bool same_addr(const struct net_addr *a, const struct net_addr *b)
{
    char x[NET_ADDR_TEXT_MAX], y[NET_ADDR_TEXT_MAX];
    return strcmp(net_addr_format(a, x, sizeof x), net_addr_format(b, y, sizeof y)) == 0;
}

/* Takes the new configuration over: what changed takes effect now, but the admin address. */
static void apply_config(struct metrics_daemon *d, struct gantry_config *next)
{
    if (!same_addr(&next->metrics.admin, &d->cfg.metrics.admin))
        log_warn("metrics.admin changes take effect at the next start");
    next->metrics.admin = d->cfg.metrics.admin;
    bool new_interval = next->metrics.sample_interval_ms != d->cfg.metrics.sample_interval_ms;
    bool new_redis = !same_redis(next, &d->cfg);
    config_free(&d->cfg);
    d->cfg = *next;
    log_set_level((enum log_level)d->cfg.log.level);
    set_retention(d);
    if (new_interval) {
        ev_periodic_stop(d->loop, &d->tick);
        start_ticks(d);
        d->last_pass_wall_ms = 0;
    }
    if (new_redis) {
        redis_sync_close(&d->redis);
        open_redis(d);
    }
    sampler_load_mounts(&d->sampler);
    set_docker_socket(d);
}

static void on_reload(void *arg)
{
    struct metrics_daemon *d = arg;
    struct gantry_config *next = malloc(sizeof *next);
    struct cfg_errors errors;
    if (!next) {
        log_error("reload refused: out of memory");
        return;
    }
    if (metrics_load_config(next, &d->args, &errors) < 0) {
        config_log_refused_reload(&errors);
        config_free(next);
        free(next);
        return;
    }
    apply_config(d, next);
    free(next);
    log_info("configuration reloaded");
}

static void on_stop(void *arg)
{
    struct metrics_daemon *d = arg;
    log_info("stopping");
    ev_periodic_stop(d->loop, &d->tick);
    daemon_signals_stop(d->loop, &d->signals);
    ev_break(d->loop, EVBREAK_ALL);
}

/* --- running --- */

int metrics_daemon_run(struct metrics_daemon *d)
{
    d->loop = ev_default_loop(0);
    set_retention(d);
    metric_batch_init(&d->batch, &d->retention);
    task_list_init(&d->tasks);
    task_list_init(&d->fetched);
    sampler_init(&d->sampler);
    set_docker_socket(d);
    ecs_report_init(&d->report);
    open_redis(d);
    char why[256];
    if (http_server_start(&d->admin, d->loop, &d->cfg.metrics.admin, ADMIN_MAX_BODY, on_admin, d,
                          why, sizeof why) < 0) {
        log_error("admin listener: %s", why);
        return 1;
    }
    d->admin_running = true;
    start_ticks(d);
    daemon_signals_start(d->loop, &d->signals, on_stop, on_reload, d);
    char addr[NET_ADDR_TEXT_MAX];
    const char *ready[] = {net_addr_format(&d->admin.bound, addr, sizeof addr)};
    log_info("sampling every %lld ms into Redis at %s; admin on %s",
             (long long)d->cfg.metrics.sample_interval_ms, d->redis.url_text, addr);
    daemon_ready(ready, 1);
    ev_run(d->loop, 0);
    log_info("stopped");
    return 0;
}

void metrics_daemon_free(struct metrics_daemon *d)
{
    if (d->admin_running)
        http_server_stop(&d->admin);
    d->admin_running = false;
    redis_sync_close(&d->redis);
    metric_batch_free(&d->batch);
    task_list_free(&d->tasks);
    task_list_free(&d->fetched);
    sampler_free(&d->sampler);
    ecs_report_free(&d->report);
    free(d->usage);
    d->usage = NULL;
    config_free(&d->cfg);
}
