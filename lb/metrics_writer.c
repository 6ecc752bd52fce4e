#include "lb/metrics_writer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <async.h>
#include <hiredis.h>

#include "common/log.h"
#include "lb/discovery.h"
#include "lb/lb.h"
#include "metrics/series.h"
#include "metrics/store.h"

enum {
    BACKOFF_MIN_MS = 100,
    BACKOFF_MAX_MS = 5000,
    STALL_MIN_MS = 5000, /* a write unanswered this long (or connect_timeout) ends the session */
};

static const char NAMESPACE[] = "AWS/ApplicationELB";

/* The HTTPCode_Target_* metrics and the counters behind them. */
static const struct {
    const char *metric;
    enum lb_counter counter;
} target_codes[] = {
    {"HTTPCode_Target_2XX_Count", LB_C_TARGET_2XX},
    {"HTTPCode_Target_3XX_Count", LB_C_TARGET_3XX},
    {"HTTPCode_Target_4XX_Count", LB_C_TARGET_4XX},
    {"HTTPCode_Target_5XX_Count", LB_C_TARGET_5XX},
};
enum { N_CODES = sizeof target_codes / sizeof target_codes[0] };

enum session { OFF, WAITING, CONNECTING, UP };

struct lb_metrics_writer {
    struct lb_ctx *ctx;
    struct ev_loop *loop;
    ev_periodic tick;
    ev_timer retry; /* WAITING: the next attempt; CONNECTING: the connect timeout */
    /* configuration */
    bool enabled; /* lb.metrics, and a Redis configured */
    char name[40];
    struct redis_url url;
    char url_text[NET_ADDR_TEXT_MAX + 32];
    int64_t connect_timeout_ms;
    struct metric_retention retention;
    /* the connection */
    enum session session;
    redisAsyncContext *ac;
    bool ever_up;
    bool failing; /* a failure was logged since the last "writing to" */
    int64_t backoff_ms;
    /* the write in flight */
    bool inflight;
    size_t inflight_points;
    ev_tstamp sent_at;
    bool dropping; /* seconds are being dropped, and it was logged */
    /* the second being built */
    struct metric_batch batch;
    int64_t second, last_second;
    unsigned mark; /* blocks written by this tick carry it */
    /* for /metrics */
    unsigned long long written, dropped;
    double flush_seconds;
};

/* What a group's or a target's block counted during one second. */
struct deltas {
    int64_t requests;
    int64_t codes[N_CODES];
    int64_t connection_errors;
    int64_t latency_count, latency_sum_us;
    struct metric_hist hist;
};

static void session_start(struct lb_metrics_writer *w);

/* --- the batch --- */

/* The series of `metric` with LoadBalancer, and TargetGroup and Target when given. */
static bool series_id(const struct lb_metrics_writer *w, const char *metric, const char *group,
                      const char *target, char *id, size_t size)
{
    struct metric_series s = {.ns = NAMESPACE, .name = metric};
    s.dims[s.n_dims++] = (struct metric_dim){"LoadBalancer", w->name};
    if (group)
        s.dims[s.n_dims++] = (struct metric_dim){"TargetGroup", group};
    if (target)
        s.dims[s.n_dims++] = (struct metric_dim){"Target", target};
    char why[160];
    if (metric_series_id(&s, id, size, why, sizeof why) >= 0)
        return true;
    /* names are validated by the configuration and discovery: this would be a bug */
    log_debug("metrics: no series for %s %s %s: %s", metric, group ? group : "",
              target ? target : "", why);
    return false;
}

static void add_sample(struct lb_metrics_writer *w, const char *metric, const char *group,
                       const char *target, double value)
{
    char id[METRIC_ID_MAX];
    if (w->enabled && series_id(w, metric, group, target, id, sizeof id))
        metric_batch_sample(&w->batch, id, w->second, value);
}

/* The lowest and highest bucket's values, in seconds: a histogram keeps no exact extremes. */
static void hist_range(const struct metric_hist *h, double *lo, double *hi)
{
    int first = -1, last = -1;
    for (int b = 0; b < METRIC_HIST_BUCKETS; b++)
        if (h->count[b]) {
            if (first < 0)
                first = b;
            last = b;
        }
    if (first >= 0) {
        *lo = metric_hist_value(first) / 1e6;
        *hi = metric_hist_value(last) / 1e6;
    }
}

/* TargetResponseTime: one datapoint of every response's seconds (Average = sum / count), and the
 * histogram in microseconds for percentiles. Nothing in a second without a response: a time
 * that was never measured is missing, as in CloudWatch. */
static void add_response_time(struct lb_metrics_writer *w, const char *group, const char *target,
                              const struct deltas *d)
{
    char id[METRIC_ID_MAX];
    if (!w->enabled || !series_id(w, "TargetResponseTime", group, target, id, sizeof id))
        return;
    if (d->latency_count > 0) {
        double sum = (double)d->latency_sum_us / 1e6, avg = sum / (double)d->latency_count;
        double lo = avg, hi = avg;
        hist_range(&d->hist, &lo, &hi);
        metric_batch_value(&w->batch, id, w->second, sum, (double)d->latency_count,
                           lo < avg ? lo : avg, hi > avg ? hi : avg);
    }
    metric_batch_hist(&w->batch, id, w->second, &d->hist);
}

/* --- taking what the workers counted --- */

static bool take(struct lb_stat_block *b, struct deltas *d)
{
    d->requests = lb_stat_take(b, LB_C_REQUESTS);
    bool any = d->requests != 0;
    for (int i = 0; i < N_CODES; i++)
        any |= (d->codes[i] = lb_stat_take(b, target_codes[i].counter)) != 0;
    any |= (d->connection_errors = lb_stat_take(b, LB_C_TARGET_CONNECTION_ERRORS)) != 0;
    any |= (d->latency_count = lb_stat_take(b, LB_C_LATENCY_COUNT)) != 0;
    d->latency_sum_us = lb_stat_take(b, LB_C_LATENCY_SUM_US);
    /* Most targets are idle most seconds: their histograms (buckets x workers) are not read. A
     * bucket bumped after the count was read is not lost: the next take has it. */
    if (d->latency_count)
        lb_stat_take_hist(b, &d->hist);
    else
        memset(&d->hist, 0, sizeof d->hist);
    return any;
}

/* The metrics groups and targets have in common. */
static void add_block(struct lb_metrics_writer *w, const char *group, const char *target,
                      const struct deltas *d)
{
    add_sample(w, "RequestCount", group, target, (double)d->requests);
    for (int i = 0; i < N_CODES; i++)
        add_sample(w, target_codes[i].metric, group, target, (double)d->codes[i]);
    add_sample(w, "TargetConnectionErrorCount", group, target, (double)d->connection_errors);
    add_response_time(w, group, target, d);
}

/* A target's block: always when it is in the routes in force, else only when it counted. */
static void write_target(struct lb_metrics_writer *w, struct lb_stat_block *b, bool routed)
{
    if (!b || b->mark == w->mark)
        return;
    b->mark = w->mark;
    struct deltas d;
    if (take(b, &d) || routed)
        add_block(w, b->name, b->target, &d);
}

struct host_counts {
    int healthy, unhealthy; /* ALB's: draining and unused targets are in neither */
};

static struct host_counts count_hosts(const struct lb_target_group *g)
{
    struct host_counts n = {0, 0};
    for (uint32_t t = 0; t < g->n_targets; t++) {
        int state = lb_tstate_state(g->targets[t].health);
        n.healthy += state == LB_TARGET_HEALTHY;
        n.unhealthy += state == LB_TARGET_UNHEALTHY || state == LB_TARGET_INITIAL;
    }
    return n;
}

/* A group of the routes in force: its counts, its host gauges, RequestCountPerTarget (ALB's:
 * requests over healthy targets; with none healthy, over the registered ones, at least 1), then
 * each of its targets. */
static void write_group(struct lb_metrics_writer *w, const struct lb_target_group *g,
                        struct lb_stat_block *b)
{
    b->mark = w->mark;
    struct deltas d;
    take(b, &d);
    add_block(w, g->name, NULL, &d);
    struct host_counts n = count_hosts(g);
    add_sample(w, "HealthyHostCount", g->name, NULL, n.healthy);
    add_sample(w, "UnHealthyHostCount", g->name, NULL, n.unhealthy);
    int per = n.healthy ? n.healthy : n.unhealthy; /* unhealthy: every registered one then */
    add_sample(w, "RequestCountPerTarget", g->name, NULL, (double)d.requests / (per ? per : 1));
    for (uint32_t t = 0; t < g->n_targets; t++)
        write_target(w, g->targets[t].stats, true);
}

/* The load balancer's own series, from every listener's block (a listener removed by a reload
 * keeps its block and its connections still count). */
static void write_load_balancer(struct lb_metrics_writer *w)
{
    int64_t requests = 0, active = 0, fresh = 0, bytes = 0, elb4 = 0, elb5 = 0;
    for (struct lb_stat_block *b = w->ctx->stats.blocks; b; b = b->next) {
        if (b->kind != LB_STAT_LISTENER)
            continue;
        requests += lb_stat_take(b, LB_C_REQUESTS);
        active += lb_stat_sum(b, LB_C_ACTIVE_CONNECTIONS);
        fresh += lb_stat_take(b, LB_C_NEW_CONNECTIONS);
        bytes += lb_stat_take(b, LB_C_BYTES_IN) + lb_stat_take(b, LB_C_BYTES_OUT);
        elb4 += lb_stat_take(b, LB_C_ELB_4XX);
        elb5 += lb_stat_take(b, LB_C_ELB_5XX);
    }
    add_sample(w, "RequestCount", NULL, NULL, (double)requests);
    add_sample(w, "ActiveConnectionCount", NULL, NULL, (double)active);
    add_sample(w, "NewConnectionCount", NULL, NULL, (double)fresh);
    add_sample(w, "ProcessedBytes", NULL, NULL, (double)bytes);
    add_sample(w, "HTTPCode_ELB_4XX_Count", NULL, NULL, (double)elb4);
    add_sample(w, "HTTPCode_ELB_5XX_Count", NULL, NULL, (double)elb5);
}

/* Groups no longer in the routes keep their blocks (a reload may bring them back): written for
 * a second only when requests still finished on them. */
static void write_other_groups(struct lb_metrics_writer *w)
{
    for (struct lb_stat_block *b = w->ctx->stats.blocks; b; b = b->next) {
        if (b->kind != LB_STAT_GROUP || b->mark == w->mark)
            continue;
        b->mark = w->mark;
        struct deltas d;
        if (take(b, &d))
            add_block(w, b->name, NULL, &d);
    }
}

/* Targets out of the routes in force: still in older generations (draining connections), or
 * gone altogether (their last counts, then their blocks are freed). */
static void write_other_targets(struct lb_metrics_writer *w)
{
    for (struct lb_tstate *t = w->ctx->health.targets; t; t = t->next)
        write_target(w, t->stats, false);
    struct lb_stat_block *retired = lb_stats_take_retired(&w->ctx->stats);
    while (retired) {
        struct lb_stat_block *next = retired->next;
        write_target(w, retired, false);
        lb_stat_block_free(retired);
        retired = next;
    }
}

/* Takes every block's deltas (always, so that counts never pile up across seconds) and, when
 * writing is on, puts them in the batch. */
static void collect(struct lb_metrics_writer *w)
{
    w->mark++;
    metric_batch_reset(&w->batch, &w->retention);
    struct lb_stats *stats = &w->ctx->stats;
    pthread_mutex_lock(&stats->lock);
    write_load_balancer(w);
    const struct lb_gen *gen = atomic_load(&w->ctx->current);
    for (uint32_t g = 0; g < gen->routes->n_groups; g++)
        write_group(w, &gen->routes->groups[g], gen->group_stats[g]);
    write_other_groups(w);
    pthread_mutex_unlock(&stats->lock);
    write_other_targets(w);
}

/* --- sending --- */

/* Logged once until a write succeeds again; while Redis is away the connection's own messages
 * say so, and the seconds are only counted. */
static void drop(struct lb_metrics_writer *w, size_t points, const char *why)
{
    w->dropped += points;
    if (!why || w->dropping)
        return;
    log_warn("metrics: dropping second %lld's %zu datapoints: %s (later seconds too, until a "
             "write succeeds)",
             (long long)w->second, points, why);
    w->dropping = true;
}

static void on_flushed(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct lb_metrics_writer *w = ac->data;
    redisReply *reply = r;
    if (!w || !reply || ac != w->ac) /* a connection going away: teardown counted it */
        return;
    w->inflight = false;
    if (reply->type == REDIS_REPLY_ERROR) {
        drop(w, w->inflight_points, reply->str);
        return;
    }
    w->written += w->inflight_points;
    w->flush_seconds = ev_time() - w->sent_at;
    if (w->dropping)
        log_info("metrics: writing to %s again", w->url_text);
    w->dropping = false;
}

static void send_batch(struct lb_metrics_writer *w)
{
    size_t points = w->batch.datapoints;
    int argc;
    const char **argv;
    const size_t *lens;
    if (points == 0)
        return;
    if (w->session != UP) {
        drop(w, points, NULL);
    } else if (w->inflight) {
        drop(w, points, "Redis has not answered the previous second's write yet");
    } else if (!metric_batch_command(&w->batch, &argc, &argv, &lens)) {
        drop(w, points, "out of memory building them");
    } else if (redisAsyncCommandArgv(w->ac, on_flushed, NULL, argc, argv, lens) != REDIS_OK) {
        drop(w, points, "hiredis refused the command");
    } else {
        w->inflight = true;
        w->inflight_points = points;
        w->sent_at = ev_time();
    }
}

/* --- the connection --- */

/* Forgets the connection; a write in flight is lost with it (it may have been applied). */
static void teardown(struct lb_metrics_writer *w)
{
    redisAsyncContext *ac = w->ac;
    w->ac = NULL;
    if (w->inflight)
        w->dropped += w->inflight_points;
    w->inflight = false;
    if (ac) { /* hiredis frees it after the callback running on it, if one is */
        ac->data = NULL;
        redisAsyncFree(ac);
    }
}

static void session_fail(struct lb_metrics_writer *w, const char *why)
{
    bool was_up = w->session == UP;
    teardown(w);
    w->session = WAITING;
    int64_t delay = w->backoff_ms;
    w->backoff_ms = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
    char in[32];
    value_format_duration(delay, in, sizeof in);
    if (was_up)
        log_warn("metrics: connection to %s lost: %s, retrying in %s (datapoints are dropped "
                 "meanwhile)",
                 w->url_text, why, in);
    else if (!w->failing)
        log_warn("metrics: cannot connect to %s: %s, retrying in %s (datapoints are dropped "
                 "meanwhile)",
                 w->url_text, why, in);
    else
        log_debug("metrics: still cannot connect to %s: %s, retrying in %s", w->url_text, why, in);
    w->failing = true;
    ev_timer_stop(w->loop, &w->retry);
    ev_timer_set(&w->retry, (double)delay / 1000.0, 0.);
    ev_timer_start(w->loop, &w->retry);
}

/* hiredis is about to free ac (after this callback): forget it, then retry. */
static void connection_lost(const redisAsyncContext *ac, const char *why)
{
    struct lb_metrics_writer *w = ac->data;
    if (!w || ac != w->ac)
        return;
    w->ac = NULL;
    ((redisAsyncContext *)ac)->data = NULL;
    session_fail(w, why);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK) /* up once PING (or SELECT) answers */
        connection_lost(ac, ac->errstr);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    connection_lost(ac, status == REDIS_OK ? "connection closed" : ac->errstr);
}

static void on_ready(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct lb_metrics_writer *w = ac->data;
    redisReply *reply = r;
    if (!w || !reply || ac != w->ac)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        char why[300];
        snprintf(why, sizeof why, "%s: %s", w->url.db ? "SELECT" : "PING", reply->str);
        session_fail(w, why);
        return;
    }
    ev_timer_stop(w->loop, &w->retry);
    w->session = UP;
    w->backoff_ms = BACKOFF_MIN_MS;
    w->dropping = false; /* "writing to" says it all */
    if (!w->ever_up || w->failing)
        log_info("metrics: writing to %s every second as LoadBalancer=%s", w->url_text, w->name);
    w->ever_up = true;
    w->failing = false;
}

static void session_start(struct lb_metrics_writer *w)
{
    w->session = CONNECTING;
    ev_timer_stop(w->loop, &w->retry);
    ev_timer_set(&w->retry, (double)w->connect_timeout_ms / 1000.0, 0.);
    ev_timer_start(w->loop, &w->retry);
    char err[300], db[16];
    if (!(w->ac = lb_redis_async_open(w->loop, &w->url, w, on_connect, on_disconnect, err,
                                      sizeof err))) {
        session_fail(w, err);
        return;
    }
    snprintf(db, sizeof db, "%d", w->url.db);
    int rc = w->url.db ? redisAsyncCommand(w->ac, on_ready, NULL, "SELECT %s", db)
                       : redisAsyncCommand(w->ac, on_ready, NULL, "PING");
    if (rc != REDIS_OK)
        session_fail(w, "cannot send the first command");
}

static void on_retry(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct lb_metrics_writer *w = t->data;
    if (w->session == WAITING) {
        session_start(w);
    } else if (w->session == CONNECTING) {
        char why[64], in[32];
        snprintf(why, sizeof why, "no answer within %s",
                 value_format_duration(w->connect_timeout_ms, in, sizeof in));
        session_fail(w, why);
    }
}

/* A Redis that takes a write and never answers (stopped, or a dead peer TCP has not noticed)
 * would hold every later second back: after a while it counts as lost. */
static void check_stall(struct lb_metrics_writer *w)
{
    int64_t stall_ms = w->connect_timeout_ms > STALL_MIN_MS ? w->connect_timeout_ms : STALL_MIN_MS;
    if (!w->inflight || (ev_now(w->loop) - w->sent_at) * 1000.0 < (double)stall_ms)
        return;
    char why[64], in[32];
    snprintf(why, sizeof why, "no answer for %s", value_format_duration(stall_ms, in, sizeof in));
    session_fail(w, why);
}

/* --- the tick --- */

/* At wall-clock second T+1: second T's datapoints. */
static void on_tick(struct ev_loop *loop, ev_periodic *p, int revents)
{
    (void)revents;
    struct lb_metrics_writer *w = p->data;
    int64_t second = (int64_t)floor(ev_now(loop)) - 1;
    if (second <= w->last_second) /* the clock went back: the next tick takes these counts */
        return;
    w->last_second = w->second = second;
    if (w->enabled)
        check_stall(w);
    collect(w);
    if (w->enabled)
        send_batch(w);
}

/* --- the API --- */

struct lb_metrics_writer *lb_metrics_writer_new(struct lb_ctx *ctx)
{
    struct lb_metrics_writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->ctx = ctx;
    w->loop = ctx->loop;
    w->backoff_ms = BACKOFF_MIN_MS;
    w->retention = (struct metric_retention){3600, 86400};
    metric_batch_init(&w->batch, &w->retention);
    ev_init(&w->retry, on_retry);
    w->retry.data = w;
    ev_periodic_init(&w->tick, on_tick, 0., 1., 0);
    w->tick.data = w;
    ev_periodic_start(w->loop, &w->tick);
    return w;
}

static void stop_session(struct lb_metrics_writer *w)
{
    teardown(w);
    ev_timer_stop(w->loop, &w->retry);
    w->session = OFF;
    w->failing = w->dropping = false;
    w->backoff_ms = BACKOFF_MIN_MS;
}

void lb_metrics_writer_configure(struct lb_metrics_writer *w, const struct gantry_config *cfg)
{
    bool enabled = cfg->lb.metrics && cfg->redis.url.addr.len;
    bool same_url = w->url.db == cfg->redis.url.db && w->url.addr.len == cfg->redis.url.addr.len &&
                    memcmp(&w->url.addr.ss, &cfg->redis.url.addr.ss, w->url.addr.len) == 0;
    snprintf(w->name, sizeof w->name, "%s", cfg->lb.name);
    w->connect_timeout_ms = cfg->redis.connect_timeout_ms;
    w->retention = (struct metric_retention){cfg->metrics.retention_ms / 1000,
                                             cfg->metrics.rollup_retention_ms / 1000};
    if (!enabled) {
        if (w->session != OFF)
            log_info("metrics: no longer written (%s)",
                     cfg->lb.metrics ? "no Redis configured" : "lb.metrics is off");
        stop_session(w);
        w->enabled = false;
        return;
    }
    w->enabled = true;
    if (w->session != OFF && same_url)
        return;
    stop_session(w);
    w->url = cfg->redis.url;
    lb_redis_url_text(&w->url, w->url_text, sizeof w->url_text);
    session_start(w);
}

void lb_metrics_writer_render(const struct lb_metrics_writer *w, struct buf *out)
{
    buf_printf(out,
               "# HELP gantry_lb_metrics_datapoints_written_total Datapoints written to the "
               "metric store (Redis answered).\n"
               "# TYPE gantry_lb_metrics_datapoints_written_total counter\n"
               "gantry_lb_metrics_datapoints_written_total %llu\n"
               "# HELP gantry_lb_metrics_datapoints_dropped_total Datapoints not written: Redis "
               "down, or the previous second's write not answered yet.\n"
               "# TYPE gantry_lb_metrics_datapoints_dropped_total counter\n"
               "gantry_lb_metrics_datapoints_dropped_total %llu\n"
               "# HELP gantry_lb_metrics_flush_seconds Round trip of the last write to the "
               "metric store.\n"
               "# TYPE gantry_lb_metrics_flush_seconds gauge\n"
               "gantry_lb_metrics_flush_seconds %.6f\n",
               w->written, w->dropped, w->flush_seconds);
}

void lb_metrics_writer_free(struct lb_metrics_writer *w)
{
    if (!w)
        return;
    stop_session(w);
    ev_periodic_stop(w->loop, &w->tick);
    metric_batch_free(&w->batch);
    free(w);
}
