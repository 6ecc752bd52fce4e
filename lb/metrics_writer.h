/* gantry-lb's writer of the metric store (metrics/store.h): CloudWatch's AWS/ApplicationELB
 * metrics, every second, per load balancer, target group and target (docs/lb.md lists them).
 *
 * Workers only count, as they always do (lb/stats.h: their own slots, relaxed adds, no lock).
 * Everything else happens here, on the main thread: a libev periodic timer fires on every
 * wall-clock second T+1, takes what the blocks counted since the last tick (the sums of the
 * workers' slots minus what was taken before), builds one metric_batch labelled with second T
 * and sends it as one EVAL on its own hiredis async connection. Counts are written every second,
 * zeros included, for the groups and targets of the configuration in force (a missing second
 * means that gantry-lb or Redis was down); a group or target that left it is written only for
 * the seconds in which it still counted something, then no more.
 *
 * Never queued: while the previous second's write has not been answered, or Redis is down, a
 * second's datapoints are dropped and counted (gantry_lb_metrics_datapoints_dropped_total on
 * /metrics), so a slow Redis costs memory and time for one batch at most. The connection comes
 * back with backoff (100 ms doubling to 5 s); one that leaves a write unanswered for
 * max(redis.connect_timeout, 5 s) counts as lost. Without a Redis configured (redis.url or
 * --redis) or with lb.metrics off, nothing is written and nothing is logged, but the deltas are
 * still taken, so that enabling it later writes only what comes after. */
#ifndef GANTRY_LB_METRICS_WRITER_H
#define GANTRY_LB_METRICS_WRITER_H

#include "common/buf.h"
#include "config/config.h"

struct lb_ctx;
struct lb_metrics_writer;

/* Starts the timer; ctx->current must be set. NULL when out of memory. */
struct lb_metrics_writer *lb_metrics_writer_new(struct lb_ctx *ctx);
/* Applies lb.name, lb.metrics, redis.url, redis.connect_timeout and the metrics retention: at
 * start and after every accepted reload. A new Redis address means a new connection. */
void lb_metrics_writer_configure(struct lb_metrics_writer *w, const struct gantry_config *cfg);
/* Its own counters, in Prometheus text. */
void lb_metrics_writer_render(const struct lb_metrics_writer *w, struct buf *out);
/* Stops the timer and closes the connection (a write in flight is abandoned). NULL is fine. */
void lb_metrics_writer_free(struct lb_metrics_writer *w);

#endif
