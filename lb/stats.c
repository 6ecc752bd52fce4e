#include "lb/stats.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const int64_t lb_latency_bounds_us[LB_LATENCY_BUCKETS] = {
    500,    1000,   2500,   5000,    10000,   25000,   50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

static void *zeroed_lines(size_t size)
{
    void *p = aligned_alloc(64, size);
    if (p)
        memset(p, 0, size);
    return p;
}

void lb_stat_block_free(struct lb_stat_block *b)
{
    if (!b)
        return;
    free(b->slots);
    free(b->hist);
    free(b);
}

/* Groups and targets also get latency histograms: one per worker, plus the writer's copy of the
 * counts it last took. */
static struct lb_stat_block *new_block(struct lb_stats *s, enum lb_stat_kind kind, const char *name)
{
    struct lb_stat_block *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->owner = s;
    b->n_slots = s->n_workers;
    b->kind = kind;
    snprintf(b->name, sizeof b->name, "%s", name);
    b->slots = zeroed_lines(b->n_slots * sizeof *b->slots);
    bool timed = kind == LB_STAT_GROUP || kind == LB_STAT_TARGET;
    if (timed)
        b->hist = zeroed_lines((b->n_slots + 1) * sizeof *b->hist);
    if (!b->slots || (timed && !b->hist)) {
        lb_stat_block_free(b);
        return NULL;
    }
    return b;
}

int lb_stats_init(struct lb_stats *s, size_t n_workers)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->n_workers = n_workers;
    s->process = new_block(s, LB_STAT_PROCESS, "");
    return s->process ? 0 : -1;
}

static void free_list(struct lb_stat_block *b)
{
    while (b) {
        struct lb_stat_block *next = b->next;
        lb_stat_block_free(b);
        b = next;
    }
}

void lb_stats_free(struct lb_stats *s)
{
    free_list(s->blocks);
    free_list(s->retired);
    lb_stat_block_free(s->process);
    pthread_mutex_destroy(&s->lock);
}

struct lb_stat_block *lb_stats_block(struct lb_stats *s, enum lb_stat_kind kind, const char *name)
{
    pthread_mutex_lock(&s->lock);
    struct lb_stat_block *b = s->blocks;
    while (b && !(b->kind == kind && strcmp(b->name, name) == 0))
        b = b->next;
    if (!b && (b = new_block(s, kind, name))) {
        b->next = s->blocks;
        s->blocks = b;
    }
    pthread_mutex_unlock(&s->lock);
    return b;
}

struct lb_stat_block *lb_stats_target_block(struct lb_stats *s, const char *group,
                                            const char *target)
{
    struct lb_stat_block *b = new_block(s, LB_STAT_TARGET, group);
    if (b)
        snprintf(b->target, sizeof b->target, "%s", target);
    return b;
}

void lb_stats_retire(struct lb_stat_block *b)
{
    if (!b)
        return;
    b->next = b->owner->retired;
    b->owner->retired = b;
}

struct lb_stat_block *lb_stats_take_retired(struct lb_stats *s)
{
    struct lb_stat_block *list = s->retired;
    s->retired = NULL;
    return list;
}

int64_t lb_stat_sum(const struct lb_stat_block *b, enum lb_counter c)
{
    int64_t total = 0;
    for (size_t i = 0; i < b->n_slots; i++)
        total += atomic_load_explicit(&b->slots[i].v[c], memory_order_relaxed);
    return total;
}

int64_t lb_stat_take(struct lb_stat_block *b, enum lb_counter c)
{
    int64_t now = lb_stat_sum(b, c), delta = now - b->taken[c];
    b->taken[c] = now;
    return delta;
}

void lb_stat_take_hist(struct lb_stat_block *b, struct metric_hist *out)
{
    memset(out, 0, sizeof *out);
    if (!b->hist)
        return;
    struct lb_hist_slot *taken = &b->hist[b->n_slots];
    for (int k = 0; k < METRIC_HIST_BUCKETS; k++) {
        uint32_t now = 0;
        for (size_t i = 0; i < b->n_slots; i++)
            now += atomic_load_explicit(&b->hist[i].count[k], memory_order_relaxed);
        uint32_t before = atomic_load_explicit(&taken->count[k], memory_order_relaxed);
        atomic_store_explicit(&taken->count[k], now, memory_order_relaxed);
        out->count[k] = (uint32_t)(now - before); /* modulo 2^32: counts wrap */
        out->total += out->count[k];
    }
}

void lb_count_latency(struct lb_stat_block *b, size_t worker, int64_t us, int bucket)
{
    lb_count(b, worker, LB_C_LATENCY_COUNT, 1);
    lb_count(b, worker, LB_C_LATENCY_SUM_US, us);
    _Atomic uint32_t *h = &b->hist[worker].count[bucket];
    atomic_store_explicit(h, atomic_load_explicit(h, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (b->kind != LB_STAT_GROUP) /* the Prometheus buckets are the groups' only */
        return;
    for (int i = 0; i < LB_LATENCY_BUCKETS; i++) {
        if (us <= lb_latency_bounds_us[i]) {
            lb_count(b, worker, (enum lb_counter)(LB_C_LATENCY_BUCKET0 + i), 1);
            return;
        }
    }
}

enum lb_counter lb_status_counter(int status)
{
    if (status < 200)
        return LB_C_STATUS_1XX;
    if (status < 300)
        return LB_C_STATUS_2XX;
    if (status < 400)
        return LB_C_STATUS_3XX;
    if (status < 500)
        return LB_C_STATUS_4XX;
    return LB_C_STATUS_5XX;
}

struct metric {
    const char *name;
    const char *help;
    const char *type;
    enum lb_stat_kind kind;
    enum lb_counter counter;
    const char *extra_label; /* e.g. code="2xx" */
};

static const struct metric metrics[] = {
    {"gantry_lb_new_connections_total", "Client connections accepted.", "counter", LB_STAT_LISTENER,
     LB_C_NEW_CONNECTIONS, NULL},
    {"gantry_lb_active_connections", "Client connections open now.", "gauge", LB_STAT_LISTENER,
     LB_C_ACTIVE_CONNECTIONS, NULL},
    {"gantry_lb_requests_total", "Requests received, by the status class the client got.",
     "counter", LB_STAT_LISTENER, LB_C_STATUS_1XX, "code=\"1xx\""},
    {NULL, NULL, NULL, LB_STAT_LISTENER, LB_C_STATUS_2XX, "code=\"2xx\""},
    {NULL, NULL, NULL, LB_STAT_LISTENER, LB_C_STATUS_3XX, "code=\"3xx\""},
    {NULL, NULL, NULL, LB_STAT_LISTENER, LB_C_STATUS_4XX, "code=\"4xx\""},
    {NULL, NULL, NULL, LB_STAT_LISTENER, LB_C_STATUS_5XX, "code=\"5xx\""},
    {"gantry_lb_received_bytes_total", "Bytes received from clients.", "counter", LB_STAT_LISTENER,
     LB_C_BYTES_IN, NULL},
    {"gantry_lb_sent_bytes_total", "Bytes sent to clients.", "counter", LB_STAT_LISTENER,
     LB_C_BYTES_OUT, NULL},
    {"gantry_lb_errors_total", "Responses and closes the balancer generated, by kind.", "counter",
     LB_STAT_LISTENER, LB_C_ERR_BAD_REQUEST, "kind=\"bad_request\""},
    {NULL, NULL, NULL, LB_STAT_LISTENER, LB_C_ERR_CLIENT_TIMEOUT, "kind=\"client_timeout\""},
    {NULL, NULL, NULL, LB_STAT_LISTENER, LB_C_ERR_502, "kind=\"502\""},
    {NULL, NULL, NULL, LB_STAT_LISTENER, LB_C_ERR_503, "kind=\"503\""},
    {NULL, NULL, NULL, LB_STAT_LISTENER, LB_C_ERR_504, "kind=\"504\""},
    {NULL, NULL, NULL, LB_STAT_LISTENER, LB_C_REJECTED_CONNECTIONS, "kind=\"rejected_connection\""},
    {"gantry_lb_target_responses_total", "Responses from targets, by status class.", "counter",
     LB_STAT_GROUP, LB_C_TARGET_2XX, "code=\"2xx\""},
    {NULL, NULL, NULL, LB_STAT_GROUP, LB_C_TARGET_3XX, "code=\"3xx\""},
    {NULL, NULL, NULL, LB_STAT_GROUP, LB_C_TARGET_4XX, "code=\"4xx\""},
    {NULL, NULL, NULL, LB_STAT_GROUP, LB_C_TARGET_5XX, "code=\"5xx\""},
    {"gantry_lb_target_requests_total", "Requests forwarded to the group.", "counter",
     LB_STAT_GROUP, LB_C_REQUESTS, NULL},
    {"gantry_lb_target_connection_errors_total",
     "Connections to targets that failed (refused, reset, timed out).", "counter", LB_STAT_GROUP,
     LB_C_TARGET_CONNECTION_ERRORS, NULL},
    {"gantry_lb_target_connections_total",
     "Target connections used: new or reused from the "
     "pool.",
     "counter", LB_STAT_GROUP, LB_C_TARGET_NEW_CONNECTIONS, "reused=\"false\""},
    {NULL, NULL, NULL, LB_STAT_GROUP, LB_C_TARGET_REUSED_CONNECTIONS, "reused=\"true\""},
    {"gantry_lb_retries_total",
     "Requests sent again on a new connection after a pooled one "
     "closed.",
     "counter", LB_STAT_GROUP, LB_C_RETRIES, NULL},
};

static const char *label_name(enum lb_stat_kind kind)
{
    return kind == LB_STAT_LISTENER ? "listener" : "target_group";
}

static void render_counter(struct lb_stats *s, struct buf *out, const struct metric *m,
                           const char *name)
{
    for (struct lb_stat_block *b = s->blocks; b; b = b->next) {
        if (b->kind != m->kind)
            continue;
        buf_printf(out, "%s{%s=\"%s\"%s%s} %lld\n", name, label_name(b->kind), b->name,
                   m->extra_label ? "," : "", m->extra_label ? m->extra_label : "",
                   (long long)lb_stat_sum(b, m->counter));
    }
}

static void render_latency(struct lb_stats *s, struct buf *out)
{
    const char *name = "gantry_lb_target_response_seconds";
    buf_printf(out,
               "# HELP %s Time from sending a request to a target to its response head.\n"
               "# TYPE %s histogram\n",
               name, name);
    for (struct lb_stat_block *b = s->blocks; b; b = b->next) {
        if (b->kind != LB_STAT_GROUP)
            continue;
        int64_t cumulative = 0;
        for (int i = 0; i < LB_LATENCY_BUCKETS; i++) {
            cumulative += lb_stat_sum(b, (enum lb_counter)(LB_C_LATENCY_BUCKET0 + i));
            buf_printf(out, "%s_bucket{target_group=\"%s\",le=\"%g\"} %lld\n", name, b->name,
                       (double)lb_latency_bounds_us[i] / 1e6, (long long)cumulative);
        }
        int64_t count = lb_stat_sum(b, LB_C_LATENCY_COUNT);
        buf_printf(out, "%s_bucket{target_group=\"%s\",le=\"+Inf\"} %lld\n", name, b->name,
                   (long long)count);
        buf_printf(out, "%s_sum{target_group=\"%s\"} %.6f\n", name, b->name,
                   (double)lb_stat_sum(b, LB_C_LATENCY_SUM_US) / 1e6);
        buf_printf(out, "%s_count{target_group=\"%s\"} %lld\n", name, b->name, (long long)count);
    }
}

void lb_stats_render(struct lb_stats *s, struct buf *out)
{
    pthread_mutex_lock(&s->lock);
    const char *name = NULL;
    for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++) {
        const struct metric *m = &metrics[i];
        if (m->name) {
            name = m->name;
            buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, m->help, name, m->type);
        }
        render_counter(s, out, m, name);
    }
    render_latency(s, out);
    pthread_mutex_unlock(&s->lock);
}
